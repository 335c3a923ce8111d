#!/usr/bin/env python3
"""Jobs on several hosts (CTest multihost.*): a bed of 4 hosts made of namespaces on this
machine (tests/scenarios/helpers/bed.py): h0 is the launch node, where the sink, mpinotify-run and
mpirun run; the ranks run on h1-h3, two each, started by Open MPI's rsh agent entering each
host. The sink listens on h0's loopback only: the other hosts cannot reach the service, so
every report they make goes through mpinotify-run's relay. One CTest entry runs one case:

    python3 multihost.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

Skipped, with the reason, where namespaces cannot be made. Checks are on what the sink
received and on exit statuses, never on timings.
"""
import os
import sys

from harness import Sink, case, check, check_report, main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
from bed import Bed  # noqa: E402  (a helper, not an area)

NP = 6  # two ranks on each of h1, h2, h3: ranks 0,1 on h1; 2,3 on h2; 4,5 on h3
HOST_OF = {0: "h1", 1: "h1", 2: "h2", 3: "h2", 4: "h3", 5: "h3"}


def job(t, bed, prog, args, label):
    return t.mpirun_cmd(NP, t.paths.prog(prog), args, preload=False, opts=bed.mpirun_opts())


def run(t, bed, prog, args, tool_args=()):
    """The job alone (its exit status), then under mpinotify-run: the same status. The webhook's bodies."""
    base = t.run(job(t, bed, prog, args, "baseline"), "baseline")
    sink = Sink(t)
    urls = ["--url", sink.url("/hook"), "--url", sink.url("/slack", kind="slack")]
    r = t.tool(urls + list(tool_args), job(t, bed, prog, args, "mpinotify-run"))
    check(r.rc == base.rc, f"mpinotify-run exited {r.rc}, the launcher alone {base.rc}")
    check("cannot reach the launcher's relay" not in r.err, "a rank could not reach the relay")
    return sink, r, [p["body"] for p in sink.posts() if p["path"] == "/hook"], base


def events(bodies):
    return [b.get("event") for b in bodies]


def hosts_of(msg):
    return {p.get("rank"): p.get("hostname") for p in msg.get("processes") or []}


@case
def crash_two_hosts(t):
    # One bug on a rank of h1 and a rank of h2: one message, each rank with its own host.
    bed = Bed(t)
    sink, r, bodies, base = run(t, bed, "mpi_crash", ["segv=1,2"])
    check(base.rc == 139, f"baseline exit status {base.rc}, expected 139: test premise")
    check(events(bodies) == ["crash"], f"expected one message, the crash; got {events(bodies)}")
    c = check_report(bodies[0], NP)
    check(c.get("ranks") == [1, 2], f"ranks {c.get('ranks')}, expected [1, 2]")
    check(hosts_of(c) == {1: "h1", 2: "h2"}, f"processes {c.get('processes')!r}: not each rank with its host")
    job = c.get("job") or {}
    check(sorted(job.get("hosts") or []) == ["h1", "h2", "h3"], f"job hosts {job.get('hosts')!r}")


@case
def two_failures_two_hosts(t):
    # Two different bugs, one on h1 (rank 0) and one on h3 (rank 5): two messages, each naming its
    # own rank and host; the job's end is merged into the first one only.
    bed = Bed(t)
    sink, r, bodies, base = run(t, bed, "mpi_crash", ["segv=0", "segv2=5"])
    check(base.rc == 139, f"baseline exit status {base.rc}, expected 139: test premise")
    check(events(bodies) == ["crash", "crash"], f"expected two crash messages; got {events(bodies)}")
    by_rank = {tuple(b.get("ranks") or []): b for b in bodies}
    check(set(by_rank) == {(0,), (5,)}, f"ranks {[b.get('ranks') for b in bodies]}, expected [0] and [5]")
    check(hosts_of(by_rank[(0,)]) == {0: "h1"} and hosts_of(by_rank[(5,)]) == {5: "h3"},
          f"processes {[b.get('processes') for b in bodies]}: not each rank with its host")
    check(by_rank[(0,)]["signature"] != by_rank[(5,)]["signature"], "two bugs share a signature")
    ends = [b for b in bodies if (b.get("job") or {}).get("status") == "failed"]
    check(len(ends) == 1, f"the job's end is in {len(ends)} messages, expected one")


@case
def launch_name_unknown(t):
    # The hosts cannot resolve the launch node's name (h0), nor reach the service: the relay's
    # addresses still reach them, every rank counts as armed, and the report arrives once.
    bed = Bed(t, launch_name_known=False)
    sink, r, bodies, base = run(t, bed, "mpi_crash", ["segv=3"], tool_args=["--job-events", "started,failed"])
    check(events(bodies) == ["job", "crash"], f"expected started then the crash; got {events(bodies)}")
    started = bodies[0]
    check(started.get("status") == "started" and started.get("ranks_armed") == NP and started.get("severity") == "info",
          f"started: status {started.get('status')!r}, ranks_armed {started.get('ranks_armed')!r} of {NP}, "
          f"severity {started.get('severity')!r}")
    c = check_report(bodies[1], NP)
    check(c.get("ranks") == [3] and hosts_of(c) == {3: "h2"}, f"crash ranks {c.get('ranks')}, processes {c.get('processes')!r}")


@case
def sigkill_remote(t):
    # A rank on h3 killed outright: the launcher's crash message names it with its host.
    bed = Bed(t)
    sink, r, bodies, base = run(t, bed, "mpi_events", ["kill=4"])
    check(base.rc == 137, f"baseline exit status {base.rc}, expected 137: test premise")
    check(events(bodies) == ["crash"], f"expected one message, the crash; got {events(bodies)}")
    c = bodies[0]
    check(c.get("reported_by") == "launcher" and c.get("ranks") == [4] and c.get("signal") == "SIGKILL",
          f"crash by {c.get('reported_by')!r}, ranks {c.get('ranks')}, signal {c.get('signal')!r}")
    p = (c.get("processes") or [{}])[0]
    check(p.get("hostname") == "h3" and isinstance(p.get("pid"), int) and p["pid"] > 0, f"process {p!r}: not rank 4 on h3")


@case
def node_lost(t):
    # Host h2 goes down (its daemon and both of its ranks killed): one node_lost message.
    bed = Bed(t)
    sink, r, bodies, base = run(t, bed, "mpi_events", ["nodedown=2"])
    check(base.rc != 0 and "lost communication" in base.err, f"baseline exit status {base.rc} without Open MPI's "
                                                             "lost-daemon notice: test premise")
    check(events(bodies) == ["node_lost"], f"expected one message, the lost node; got {events(bodies)}")
    m = bodies[0]
    check(m.get("lost_host") == "h2" and m.get("ranks") == [2, 3] and hosts_of(m) == {2: "h2", 3: "h2"},
          f"lost_host {m.get('lost_host')!r}, ranks {m.get('ranks')}, processes {m.get('processes')!r}")
    check((m.get("job") or {}).get("victims") == NP - 2, f"job {m.get('job')!r}: the other 4 ranks are victims")


@case
def fallback_shared_spool(t):
    # No election (MPINOTIFY_MPI_THREAD=keep: one report per node) and one spool shared by every
    # host (a shared file system): the same bug on h1 and h2 is one report from each node; the
    # claims that keep a node to one report are per host, so neither node silences the other.
    # No mpinotify-run: the ranks reach the sink on the bed's network (10.77.0.1).
    bed = Bed(t)
    sink = Sink(t, bind=bed.address("h0"))
    shared = os.path.join(bed.dir, "spool")
    env = {"MPINOTIFY_URLS": sink.url("/hook"), "MPINOTIFY_MPI_THREAD": "keep", "MPINOTIFY_SPOOL": shared}
    opts = bed.mpirun_opts() + [x for name in env for x in ("-x", name)]
    r = t.run(t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), ["segv=1,2"], opts=opts), "mpirun", env)
    check(r.rc == 139, f"mpirun exited {r.rc}, expected 139: test premise")
    bodies = sorted((p["body"] for p in sink.posts()), key=lambda b: b.get("ranks") or [])
    check(len(bodies) == 2, f"expected one report from each of h1 and h2, got {len(bodies)}: "
                            f"{[(b.get('ranks'), hosts_of(b)) for b in bodies]}")
    for b, rank in zip(bodies, (1, 2)):
        check_report(b, NP)
        check(b.get("ranks") == [rank] and hosts_of(b) == {rank: HOST_OF[rank]},
              f"report {b.get('ranks')} {b.get('processes')!r}: expected rank {rank} on {HOST_OF[rank]}")


@case
def leader_hands_off(t):
    # No mpinotify-run (no relay). The same bug on rank 1 (h1) and rank 2 (h2); the service is on a
    # network h2 and h3 reach and h1 does not. Rank 1 leads, cannot connect, and hands the report to
    # rank 2, next in line on another host: one message, naming both ranks, sent by rank 2; no copy
    # left in the spool for a later flush to send again.
    bed = Bed(t)
    sink = Sink(t, bind=bed.service_net(["h2", "h3"]))
    spool = os.path.join(bed.dir, "spool")
    env = {"MPINOTIFY_URLS": sink.url("/hook"), "MPINOTIFY_SPOOL": spool}
    opts = bed.mpirun_opts() + [x for name in env for x in ("-x", name)]
    r = t.run(t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), ["segv=1,2"], opts=opts), "mpirun", env)
    check(r.rc == 139, f"mpirun exited {r.rc}, expected 139: test premise")
    bodies = [p["body"] for p in sink.posts()]
    check(events(bodies) == ["crash"], f"expected one message, the crash; got {events(bodies)}")
    c = check_report(bodies[0], NP)
    check(c.get("ranks") == [1, 2] and hosts_of(c) == {1: "h1", 2: "h2"},
          f"ranks {c.get('ranks')}, processes {c.get('processes')!r}: expected ranks 1 (h1) and 2 (h2)")
    leader = c.get("leader") or {}
    check(leader.get("rank") == 2 and leader.get("hostname") == "h2",
          f"leader {leader!r}: expected rank 2 on h2, the rank the report was handed to")
    check("next in line" in r.err, "rank 1 did not say it handed the report on")
    left = [f for f in os.listdir(spool) if not f.startswith(".")] if os.path.isdir(spool) else []
    check(not [f for f in left if f.endswith(".msg")], f"copies left in the spool: {left}")


if __name__ == "__main__":
    sys.exit(main())
