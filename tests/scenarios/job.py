#!/usr/bin/env python3
"""Job messages (CTest job.*): the lifecycle messages of mpinotify-run (started, completed,
failed), the root cause of a failed job, and ranks that die without a chance to report
(issue 5, points 6-8). One CTest entry runs one case:

    python3 job.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

Every job runs under the real mpinotify-run and mpirun at NP ranks; the checks are on what
the loopback sink received (count, fields) and on exit statuses, never on timings.
"""
import os
import subprocess
import sys
import time

from harness import NP, Sink, case, check, check_report, main, skip

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")


def run_job(t, prog, args, env=None, tool_args=(), preload=False, label="mpinotify-run", sink_name="sink"):
    """mpinotify-run around mpirun; a webhook and a Slack channel on one sink (a mention shows only on Slack)."""
    sink = Sink(t, name=sink_name)
    launcher = t.mpirun_cmd(NP, t.paths.prog(prog), args, preload=preload)
    urls = ["--url", sink.url("/hook"), "--url", sink.url("/slack", kind="slack")]
    r = t.tool(urls + list(tool_args), launcher, env, label=label)
    return sink, r


def against_baseline(t, prog, args, status, sink_name="sink"):
    """The job alone (the exit status the test expects), then under mpinotify-run: the same status."""
    base = t.run(t.mpirun_cmd(NP, t.paths.prog(prog), args, preload=False), "baseline")
    check(base.rc == status, f"baseline exit status {base.rc}, expected {status}: test premise")
    sink, r = run_job(t, prog, args, sink_name=sink_name)
    check(r.rc == base.rc, f"mpinotify-run exited {r.rc}, the launcher alone {base.rc}")
    return sink, r, at(sink, "/hook")


def at(sink, path):
    return [p["body"] for p in sink.posts() if p["path"] == path]


def kinds(bodies):
    return [(b.get("event"), b.get("status")) for b in bodies]


def slack_texts(sink):
    return [str(b.get("text", "")) for b in at(sink, "/slack")]


def check_job(b, status, world_size=NP):
    check(b.get("schema") == "mpinotify/1" and b.get("event") == "job", f"not a job message: {b!r}")
    check(b.get("status") == status, f"status {b.get('status')!r} != {status!r}")
    check(b.get("reported_by") == "launcher", f"reported_by {b.get('reported_by')!r}")
    check(isinstance(b.get("id"), str) and b["id"].startswith("msg_"), f"id {b.get('id')!r}")
    job = b.get("job")
    check(isinstance(job, dict) and all(k in job for k in ("name", "command", "slurm_job_id", "duration_s")),
          f"job object {job!r} lacks name, command, slurm_job_id or duration_s")
    check("mpi_" in (job.get("command") or ""), f"job command {job.get('command')!r} is not the launcher's")
    if world_size is not None:
        check(b.get("world_size") == world_size, f"world_size {b.get('world_size')!r} != {world_size}")
    return b


def check_mentions(sink, failed):
    """On Slack, the job's messages carry a mention (<!here>) when the job failed, never otherwise."""
    jobs = [text for text in slack_texts(sink) if "] Job " in text]
    check(jobs, f"no job message on Slack: {slack_texts(sink)}")
    for text in jobs:
        is_failed = " failed (exit status " in text
        check(("<!here>" in text) == is_failed, f"Slack text {text[:160]!r}: a mention only on failure")
    check(any(" failed (exit status " in text for text in jobs) == failed, f"Slack job messages: {jobs}")


def one(items, what):
    check(len(items) == 1, f"expected exactly one {what}, got {len(items)}")
    return items[0]


def crash_bodies(bodies):
    return [b for b in bodies if b.get("event") == "crash"]


def job_bodies(bodies, status=None):
    return [b for b in bodies if b.get("event") == "job" and (status is None or b.get("status") == status)]


@case
def completed(t):
    # By default a healthy job whose ranks all armed gives one message: completed.
    sink, r = run_job(t, "mpi_crash", [])
    check(r.rc == 0, f"a healthy job under mpinotify-run exited {r.rc}")
    completed = one(at(sink, "/hook"), "message for a healthy job")
    check_job(completed, "completed")
    # Asked for, "started" comes first and counts every rank.
    sink, r = run_job(t, "mpi_crash", [], tool_args=["--job-events", "all"], sink_name="sink_all")
    check(r.rc == 0, f"a healthy job under mpinotify-run exited {r.rc}")
    bodies = at(sink, "/hook")
    check(kinds(bodies) == [("job", "started"), ("job", "completed")],
          f"--job-events all: expected exactly started then completed, got {kinds(bodies)}")
    started, completed = bodies
    check_job(started, "started")
    check(started.get("ranks_armed") == NP, f"ranks_armed {started.get('ranks_armed')!r} != {NP}")
    check(started.get("ranks") == list(range(NP)), f"started ranks {started.get('ranks')!r}")
    check(isinstance(started.get("hosts"), list) and len(started["hosts"]) >= 1 and all(started["hosts"]),
          f"hosts {started.get('hosts')!r}")
    check(started.get("severity") == "info", f"started severity {started.get('severity')!r}")
    check_job(completed, "completed")
    check(completed.get("exit_status") == 0, f"exit_status {completed.get('exit_status')!r}")
    d = completed.get("duration_s")
    check(isinstance(d, (int, float)) and d >= 0 and completed["job"].get("duration_s") == d,
          f"duration_s {d!r} / job.duration_s {completed['job'].get('duration_s')!r}")
    check(completed.get("severity") == "info", f"completed severity {completed.get('severity')!r}")
    for b in bodies:
        check("root_cause" not in b and "output_tail" not in b, f"{b.get('status')} message has failure fields")
    check(len(at(sink, "/slack")) == 2, f"Slack got {len(at(sink, '/slack'))} messages, expected 2")
    check_mentions(sink, failed=False)


@case
def slow_start(t):
    # Ranks that take longer than the start's wait (10 s) to reach MPI_Init: a wrapper that sets
    # up for 13 s, then execs the program. They are starting, not failing to arm: a healthy job
    # gives one message (completed), no "started" warning. Asked for, "started" waits for them.
    prog = t.paths.prog("mpi_crash")
    wrapper = ["sh", "-c", f"sleep 13; exec {prog}"]
    for events, expected in ((None, [("job", "completed")]), ("all", [("job", "started"), ("job", "completed")])):
        sink = Sink(t, name=f"sink_{events}")
        launcher = t.mpirun_cmd(NP, wrapper[0], wrapper[1:], preload=False)
        args = ["--url", sink.url("/hook")] + (["--job-events", events] if events else [])
        r = t.tool(args, launcher, label=f"slow start, job events {events}")
        check(r.rc == 0, f"the job exited {r.rc}")
        bodies = at(sink, "/hook")
        check(kinds(bodies) == expected, f"job events {events}: expected {expected}, got {kinds(bodies)}: "
              f"{[b.get('title') for b in bodies]}")
        if events:
            started = bodies[0]
            check(started.get("ranks_armed") == NP and started.get("severity") == "info",
                  f"started {started.get('title')!r}, severity {started.get('severity')!r}")


@case
def preload_broken(t):
    # The ranks' loader cannot find the library: mpinotify-run's -x LD_PRELOAD is overridden
    # by a later -x with a missing path, so no rank arms the notifier and says hello.
    sink = Sink(t)
    launcher = t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), preload=False,
                            opts=["-x", "LD_PRELOAD=/nonexistent/libmpinotify.so"])
    r = t.tool(["--url", sink.url("/hook")], launcher)
    check(r.rc == 0, f"the job exited {r.rc}")
    check("cannot be preloaded" in r.err, "the loader did not complain: the preload was not broken, test premise")
    bodies = at(sink, "/hook")
    check(kinds(bodies) == [("job", "started"), ("job", "completed")], f"got {kinds(bodies)}")
    started = check_job(bodies[0], "started")
    check(started.get("ranks_armed") == 0, f"ranks_armed {started.get('ranks_armed')!r} != 0")
    check(started.get("severity") == "warning", f"a job with no rank armed: severity {started.get('severity')!r}")
    check("0 of 8" in started.get("title", ""), f"title {started.get('title')!r} does not say 0 of 8")
    # No rank got as far as the library: none could say why, and the text says what that leaves.
    check(started.get("ranks_unarmed") == 0 and started.get("unarmed_reasons") == [],
          f"ranks_unarmed {started.get('ranks_unarmed')!r}, unarmed_reasons {started.get('unarmed_reasons')!r}")
    check("8 are not preloaded, or never called MPI_Init" in started.get("text", ""), f"text {started.get('text')!r}")


# What a rank gets when its MPI_Init call reaches the preloaded library while no loaded library
# defines PMPI_Init: code that looks MPI_Init up in the global namespace (ctypes.CDLL(None),
# dlsym(RTLD_DEFAULT)) to see whether MPI is there finds the library's wrapper.
NO_MPI_INIT = """\
import ctypes, sys
rc = ctypes.CDLL(None).MPI_Init(None, None)
sys.stdout.write(f"MPI_Init returned {rc}\\n")   # one write: mpirun does not split it
"""
NO_PMPI = "cannot find the MPI library's PMPI_Init_thread (no loaded library defines it)"


@case
def unarmed_reason(t):
    sink = Sink(t)
    script = os.path.join(t.dir, "mpi_init_without_mpi.py")
    with open(script, "w") as f:
        f.write(NO_MPI_INIT)
    launcher = t.mpirun_cmd(NP, sys.executable, [script], preload=False)
    r = t.tool(["--url", sink.url("/hook")], launcher, label="MPI_Init without an MPI")
    check(r.rc == 0, f"the job exited {r.rc}")
    check(r.out.count("MPI_Init returned 16") == NP, "MPI_Init did not reach the library's wrapper and fail with "
          "MPI_ERR_OTHER on every rank: test premise")
    check("cannot find the MPI library's PMPI_Init_thread" in r.err, "the ranks did not warn: test premise")
    bodies = at(sink, "/hook")
    check(kinds(bodies) == [("job", "started"), ("job", "completed")], f"got {kinds(bodies)}")
    started = check_job(bodies[0], "started")
    check(started.get("ranks_armed") == 0 and started.get("ranks_unarmed") == NP,
          f"ranks_armed {started.get('ranks_armed')!r} / ranks_unarmed {started.get('ranks_unarmed')!r}, "
          f"expected 0 / {NP}")
    check(started.get("unarmed_reasons") == [{"reason": NO_PMPI, "count": NP}],
          f"unarmed_reasons {started.get('unarmed_reasons')!r}")
    check(started.get("severity") == "warning", f"severity {started.get('severity')!r}")
    text = started.get("text", "")
    check(f"Only 0 of {NP} ranks armed the notifier: {NP} have it preloaded but could not arm ({NO_PMPI})" in text,
          f"the text does not name the cause: {text!r}")
    check("not preloaded" not in text, f"the text still suspects the preload: {text!r}")

    # Told not to arm (MPINOTIFY_DISABLE for the ranks only): counted, with that reason, and no warning.
    sink2 = Sink(t, name="sink2")
    launcher = t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), preload=False, opts=["-x", "MPINOTIFY_DISABLE=1"])
    r = t.tool(["--url", sink2.url("/hook"), "--job-events", "started"], launcher, label="MPINOTIFY_DISABLE=1 ranks")
    check(r.rc == 0, f"the job exited {r.rc}")
    started = check_job(one(at(sink2, "/hook"), "started message"), "started")
    check(started.get("ranks_armed") == 0 and started.get("ranks_unarmed") == NP
          and started.get("unarmed_reasons") == [{"reason": "disabled by MPINOTIFY_DISABLE", "count": NP}],
          f"ranks_armed {started.get('ranks_armed')!r}, ranks_unarmed {started.get('ranks_unarmed')!r}, "
          f"unarmed_reasons {started.get('unarmed_reasons')!r}")
    check(started.get("severity") == "info", f"ranks disabled on purpose: severity {started.get('severity')!r}")
    check(f"{NP} do not use it (disabled by MPINOTIFY_DISABLE)" in started.get("text", ""), f"text {started.get('text')!r}")


def check_outcome(b, status, victims, signature):
    """A failure's message with the job's end merged into it: the "job" member says how the job ended."""
    job = b.get("job")
    check(isinstance(job, dict) and job.get("status") == "failed" and job.get("exit_status") == status,
          f"job {job!r}: not failed with exit status {status}")
    check(job.get("world_size") == NP and job.get("victims") == victims and isinstance(job.get("duration_s"), float),
          f"job {job!r}: world_size, victims ({victims}) or duration_s")
    reps = job.get("reports")
    check(isinstance(reps, list) and len(reps) == 1 and reps[0].get("signature") == signature,
          f"job reports {reps!r}")
    tail = b.get("output_tail")
    check(isinstance(tail, list) and tail and all(isinstance(x, str) for x in tail) and len(tail) <= 30,
          f"output_tail {tail!r}")
    return job


def one_on_slack(sink, words):
    """Slack got exactly one message, with a mention (a failure), saying every one of `words`."""
    texts = slack_texts(sink)
    check(len(texts) == 1, f"Slack got {len(texts)} messages, expected one: {[x[:80] for x in texts]}")
    posted = str([p["body"] for p in sink.posts() if p["path"] == "/slack"][0])
    check("<!here>" in texts[0], f"Slack text {texts[0][:160]!r}: no mention on a failure")
    for w in words:
        check(w in posted, f"Slack message does not say {w!r}: {posted[:400]}")


@case
def crash_root_cause(t):
    # One segfault ends the job: one message per channel, the rank's crash report with the
    # job's end merged into it (exit status, victims, the launcher's last lines).
    sink, r, bodies = against_baseline(t, "mpi_crash", ["segv=3"], 139)
    check(kinds(bodies) == [("crash", None)], f"expected one message, the crash; got {kinds(bodies)}")
    crash = bodies[0]
    check_report(crash, NP)
    check(crash["ranks"] == [3] and crash.get("reported_by") == "rank", f"crash {crash['ranks']} by {crash.get('reported_by')}")
    check(crash.get("severity") == "critical", f"severity {crash.get('severity')!r}")
    check_outcome(crash, 139, NP - 1, crash["signature"])
    check(any("noticed that process rank 3" in x for x in crash["output_tail"]),
          f"the launcher's last lines are not in {crash['output_tail']!r}")
    check("noticed that process rank 3" in r.err, "the launcher's stderr did not pass through mpinotify-run")
    one_on_slack(sink, ["SIGSEGV", "exit status 139"])


@case
def root_cause_first(t):
    # Two failures a second apart: an exception reported on rank 6 (the rank goes on, so its
    # report goes at once), then rank 2 exits with status 3 and the launcher ends the job.
    # Two unique failures, two messages in total: the exception, and the exit that ended the
    # job with the job's end merged into it, naming the exception as the root cause whatever
    # order the reports arrive in. Rank 2 failed on its own (not a victim), the rest are victims.
    # With console:// too, the exception's panel passes through, but the merged message's
    # output_tail does not quote it (a message repeating its own panel says nothing new).
    sink, r = run_job(t, "mpi_events", ["exc=6:ValueError", "sleep=1000", "exit=2:3"], tool_args=["--url", "console://"])
    check(r.rc == 3, f"the job exited {r.rc}, expected 3: test premise (a rank exits with status 3)")
    bodies = at(sink, "/hook")
    check(sorted(kinds(bodies)) == [("exception", None), ("exit", None)],
          f"expected exactly the exception and the exit (with the job's end), got {kinds(bodies)}")
    exc = next(b for b in bodies if b.get("event") == "exception")
    ended = next(b for b in bodies if b.get("event") == "exit")
    check(exc["ranks"] == [6] and (exc.get("job") or {}).get("status") is None,
          f"the exception's message {exc.get('ranks')} / {exc.get('job')}")
    check("=== mpinotify: " in r.err, "the rank's console panel did not pass through mpinotify-run")
    check(not any("mpinotify: " in x or x.startswith("| ") for x in ended.get("output_tail") or []),
          f"output_tail quotes a console panel: {ended.get('output_tail')}")
    check(ended["ranks"] == [2] and ended.get("exit_status") == 3, f"exit message ranks {ended['ranks']}")
    job = ended.get("job") or {}
    check(job.get("status") == "failed" and job.get("exit_status") == 3, f"job {job!r}")
    rc = job.get("root_cause") or {}
    check(rc.get("event") == "exception" and rc.get("ranks") == [6] and rc.get("reported_by") == "rank",
          f"job.root_cause {rc!r} is not the exception on rank 6 (the first failure)")
    check("Root cause, reported before: " in ended.get("text", "") and "ValueError" in ended.get("text", ""),
          f"the text does not name the root cause: {ended.get('text')!r}")
    reps = job.get("reports") or []
    check(sorted(x.get("event") for x in reps) == ["exception", "exit"], f"reports {reps!r}")
    check(job.get("victims") == NP - 2, f"victims {job.get('victims')!r} != {NP - 2}")
    check(len(at(sink, "/slack")) == 2, f"Slack got {len(at(sink, '/slack'))} messages, expected 2")


@case
def sigkill(t):
    # A rank killed outright cannot report: the launcher's crash message names it, with the
    # job's end merged into it; one message per channel.
    sink, r, bodies = against_baseline(t, "mpi_events", ["kill=5"], 137)   # 128 + SIGKILL
    check(kinds(bodies) == [("crash", None)], f"expected one message, the crash; got {kinds(bodies)}")
    c = bodies[0]
    check(c.get("reported_by") == "launcher", f"reported_by {c.get('reported_by')!r}")
    check(c.get("ranks") == [5] and c.get("signal") == "SIGKILL" and c.get("signal_number") == 9,
          f"crash names ranks {c.get('ranks')} signal {c.get('signal')} {c.get('signal_number')}")
    p = one(c.get("processes") or [], "process in the crash message")
    check(isinstance(p, dict) and p.get("rank") == 5 and isinstance(p.get("pid"), int) and p["pid"] > 0
          and isinstance(p.get("hostname"), str) and p["hostname"], f"process {p!r} lacks rank 5, pid or hostname")
    for k in ("backtrace", "election", "leader", "fault_address"):
        check(k in c and c[k] is None, f"{k} is {c.get(k, 'missing')!r}, expected null")
    check(c.get("world_size") == NP and c.get("schema") == "mpinotify/1", f"world_size/schema {c.get('world_size')}/{c.get('schema')}")
    check_outcome(c, 137, NP - 1, c["signature"])
    one_on_slack(sink, ["SIGKILL", "exit status 137"])


@case
def sigkill_two(t):
    # Two ranks killed outright at once (two OOM kills): Open MPI names one; the other ended
    # without a word while the rest said they were torn down (SIGTERM). One message names both.
    sink, r, bodies = against_baseline(t, "mpi_events", ["kill=2,5"], 137)
    check(kinds(bodies) == [("crash", None)], f"expected one message, the crash; got {kinds(bodies)}")
    c = bodies[0]
    check(c.get("reported_by") == "launcher" and c.get("signal") == "SIGKILL", f"crash {c.get('reported_by')} {c.get('signal')}")
    check(c.get("ranks") == [2, 5], f"crash names ranks {c.get('ranks')}, expected both killed ranks [2, 5]")
    procs = c.get("processes") or []
    check(sorted(p.get("rank") for p in procs) == [2, 5] and all(isinstance(p.get("pid"), int) and p["pid"] > 0 for p in procs),
          f"processes {procs!r}: not ranks 2 and 5 with their pids")
    check("SIGKILL on 2 of" in (c.get("title") or ""), f"title {c.get('title')!r}")
    check("without a word" in (c.get("text") or ""), f"text does not say which rank was silent: {c.get('text')!r}")
    job = c.get("job") or {}
    check(job.get("victims") == NP - 2 and job.get("exit_status") == 137, f"job {job!r}: victims {NP - 2}, status 137")
    one_on_slack(sink, ["SIGKILL", "exit status 137"])


@case
def sigkill_teardown_late(t):
    # Rank 5 killed outright; rank 3 cannot run its SIGTERM handler (blocked here, a loaded node in
    # life), so the teardown's SIGKILL ends it 1 s later without a word. It died in the teardown, not
    # with rank 5: the message names rank 5 alone.
    sink, r, bodies = against_baseline(t, "mpi_events", ["deafterm=3", "kill=5"], 137)
    check(kinds(bodies) == [("crash", None)], f"expected one message, the crash; got {kinds(bodies)}")
    c = bodies[0]
    check(c.get("ranks") == [5] and c.get("signal") == "SIGKILL",
          f"crash names ranks {c.get('ranks')} ({c.get('signal')}), expected rank 5 alone: rank 3 died in the teardown")
    check("without a word" not in (c.get("text") or ""), f"text names a silent rank: {c.get('text')!r}")
    job = c.get("job") or {}
    check(job.get("victims") == NP - 1 and job.get("exit_status") == 137, f"job {job!r}: victims {NP - 1}, status 137")


@case
def node_lost(t):
    # A node lost mid-job: two named hosts on this machine (UTS namespaces, Open MPI's rsh agent
    # entering them); rank 2 kills its node: the daemon, its ranks (2 and 3). mpirun says "ORTE has lost communication
    # with a remote daemon ... on node nodeB"; one message names the node and both of its ranks.
    if subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode != 0:
        skip("cannot make UTS namespaces here (unshare --uts needs CAP_SYS_ADMIN)")
    opts = ["--mca", "plm_rsh_agent", os.path.join(HELPERS, "uts_rsh.sh"), "--host", "nodeA:2,nodeB:2"]
    prog = t.paths.prog("mpi_events")
    base = t.run(t.mpirun_cmd(4, prog, ["nodedown=2"], preload=False, opts=opts), "baseline")
    check(base.rc != 0 and "lost communication with a remote daemon" in base.err + base.out,
          f"baseline: exit status {base.rc} without Open MPI's lost-daemon notice: test premise")
    sink = Sink(t)
    urls = ["--url", sink.url("/hook"), "--url", sink.url("/slack", kind="slack")]
    r = t.tool(urls, t.mpirun_cmd(4, prog, ["nodedown=2"], preload=False, opts=opts))
    check(r.rc == base.rc, f"mpinotify-run exited {r.rc}, the launcher alone {base.rc}")
    bodies = at(sink, "/hook")
    check(kinds(bodies) == [("node_lost", None)], f"expected one message, the lost node; got {kinds(bodies)}")
    m = bodies[0]
    check(m.get("lost_host") == "nodeB" and m.get("ranks") == [2, 3] and m.get("reported_by") == "launcher",
          f"lost_host {m.get('lost_host')!r}, ranks {m.get('ranks')}, reported_by {m.get('reported_by')!r}")
    check(all(p.get("hostname") == "nodeB" and isinstance(p.get("pid"), int) for p in m.get("processes") or []),
          f"processes {m.get('processes')!r}")
    check((m.get("title") or "").startswith("Node nodeB lost on 2 of 4 ranks"), f"title {m.get('title')!r}")
    job = m.get("job") or {}
    check(job.get("status") == "failed" and job.get("victims") == 2, f"job {job!r}: failed, the 2 ranks of nodeA victims")
    one_on_slack(sink, ["nodeB", "lost"])


@case
def output_tail(t):
    # A failing launcher (no MPI) prints a webhook URL with its token and the relay's key.
    # mpinotify-run passes its output on unchanged; the failed message's output_tail holds
    # the last lines with the URL masked and the key starred.
    token = "T0SECRETTOKEN" + "x" * 12
    script = ("for i in $(seq 1 40); do echo line $i; done; "
              f"echo 'posting to https://hooks.example.com/services/{token}?key=abc'; "
              "echo relay key $MPINOTIFY_RELAY_KEY; echo wandb $WANDB_API_KEY; echo to stderr >&2; exit 3")
    wandb = "wb" + "0123456789abcdef" * 2   # a secret by its variable's name, not by its form
    sink = Sink(t)
    r = t.tool(["--url", sink.url("/hook")], ["sh", "-c", script], env={"WANDB_API_KEY": wandb})
    check(r.rc == 3, f"mpinotify-run exited {r.rc}, the launcher 3")
    check(token in r.out and "line 1\n" in r.out and "to stderr" in r.err, "the launcher's output was not passed on whole")
    key = [line.split()[-1] for line in r.lines("out") if line.startswith("relay key ")]
    check(key and len(key[0]) == 64, f"the launcher did not see MPINOTIFY_RELAY_KEY: {key}")
    failed = one(job_bodies(at(sink, "/hook"), "failed"), "failed job message")
    tail = failed.get("output_tail")
    check(isinstance(tail, list) and len(tail) == 30, f"output_tail has {len(tail or [])} lines, expected the last 30")
    check(tail[-1] == "to stderr" or "to stderr" in tail, f"stderr lines missing from {tail}")
    check("line 40" in tail and "line 1" not in tail, f"not the last lines: {tail}")
    body = str(failed)
    check(token not in body and key[0] not in body, "the failed message shows the token or the relay key")
    check(wandb in r.out and wandb not in body and "wandb ***" in tail, "WANDB_API_KEY's value is not masked in the tail")
    check(any("hooks.example.com" in x and "***" in x for x in tail), f"the URL line is not there, masked: {tail}")
    check(failed.get("root_cause") is None and failed.get("victims") is None,
          f"no rank ever registered: root_cause {failed.get('root_cause')!r}, victims {failed.get('victims')!r}")


# What rank 0 prints before the job ends, and the line the failed message must quote: LAMMPS's
# error line, a Python traceback's last line (a chained one: the exception that ended it),
# gfortran's runtime error, the C++ runtime's terminate with its what().
WORDS = [
    (["ERROR: Unknown command: frobnicate all 3.0 (src/input.cpp:274)", "Last command: frobnicate all 3.0"],
     "ERROR: Unknown command: frobnicate all 3.0 (src/input.cpp:274)"),
    (["Traceback (most recent call last):", '  File "train.py", line 9, in <module>', "    load()",
      "KeyError: 'checkpoint'", "", "During handling of the above exception, another exception occurred:", "",
      "Traceback (most recent call last):", '  File "train.py", line 11, in <module>',
      "RuntimeError: no checkpoint to resume from"],
     "RuntimeError: no checkpoint to resume from"),
    (["At line 12 of file solver.f90", "Fortran runtime error: Index '13' of dimension 1 of array 'a' above upper bound of 10"],
     "Fortran runtime error: Index '13' of dimension 1 of array 'a' above upper bound of 10 (solver.f90:12)"),
    (["terminate called after throwing an instance of 'std::runtime_error'", "  what():  mesh file not found"],
     "std::runtime_error: mesh file not found"),
]


@case
def application_words(t):
    # Every rank finalizes, then exits 1 (the LAMMPS pattern): no rank can report, the launcher's
    # failed message names the application's own explanation in its title, field and text.
    for i, (lines, said) in enumerate(WORDS):
        sink, r, bodies = against_baseline(t, "error_exit", ["1"] + lines, 1, sink_name=f"sink{i}")
        check(kinds(bodies) == [("job", "failed")], f"expected exactly one message, failed; got {kinds(bodies)}")
        failed = bodies[0]
        check(failed.get("application_error") == said,
              f"application_error {failed.get('application_error')!r}, expected {said!r}")
        check(said in (failed.get("title") or ""), f"title {failed.get('title')!r} does not quote {said!r}")
        check((failed.get("text") or "").startswith("The application said: " + said),
              f"text does not start with the application's words: {failed.get('text')!r:.200}")
        one_on_slack(sink, [said])
        # Every rank exits 1 after MPI_Finalize; those whose exit the launcher saw before it ended the
        # others (at least the first, which Open MPI names) are the root cause, the status said once.
        root = failed.get("root_cause") or {}
        ranks = root.get("ranks") or []
        check(root.get("event") == "exit" and root.get("exit_status") == 1 and ranks and set(ranks) <= set(range(NP))
              and root.get("reported_by") == "launcher", f"root_cause {root!r}: not the ranks' exits")
        title = failed.get("title") or ""
        check(f"exit status 1 on rank{'s' if len(ranks) > 1 else ''} {ranks[0]}" in title, f"title {title!r} does not name the ranks")
        check(title.count("exit status") == 1, f"title {title!r} repeats the exit status")
        check(failed.get("victims") == 0, f"every rank finalized, yet victims {failed.get('victims')!r}")


@case
def abort_words(t):
    # A rank says why, then calls MPI_Abort: one message per channel, the abort's report with
    # the job's end in it, quoting the application's line in its title.
    said = "ERROR: rank 2 cannot go on: mesh.dat has no cells (code 5)"
    sink, r, bodies = against_baseline(t, "mpi_errors", ["abort=2:5"], 5)
    check(len(bodies) == 1 and bodies[0].get("event") != "job", f"expected one message, the abort; got {kinds(bodies)}")
    b = bodies[0]
    check(b.get("ranks") == [2] and b.get("reported_by") == "rank", f"ranks {b.get('ranks')} by {b.get('reported_by')}")
    check(b.get("application_error") == said, f"application_error {b.get('application_error')!r}")
    check(said in (b.get("title") or ""), f"title {b.get('title')!r} does not quote the application")
    check((b.get("text") or "").startswith("The application said: " + said), f"text {b.get('text')!r:.200}")
    check_outcome(b, 5, NP - 1, b["signature"])
    one_on_slack(sink, [said, "exit status 5"])


@case
def exit_bounded(t):
    # A webhook that accepts and never answers, and a spool holding an earlier job's messages
    # for it: mpinotify-run still returns within its documented bound (10 s) after the launcher
    # ended, the exit status passed on, the undelivered reports spooled and said in one line.
    sink = Sink(t, mode="hang")
    url = sink.url("/hook")
    for i in range(3):   # an earlier job's leftovers, to the same dead end
        t.run([t.paths.send_tool, "--url", url, "--timeout-ms", "200", "--title", f"earlier {i}", "--message", "left over"],
              f"earlier {i}", hang_ok=True)
    before = len(t.spooled())
    check(before >= 3, f"the earlier job left {before} spooled message(s), expected 3: test premise")
    marker = os.path.join(t.dir, "launcher_ended")
    launcher = ["sh", "-c", " ".join(t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), ["segv=1"], preload=False))
                + f"; rc=$?; python3 -c 'import time; print(time.time())' > {marker}; echo $rc >> {marker}; exit $rc"]
    r = t.tool(["--url", url], launcher)
    ended = time.time()
    launcher_end, launcher_rc = open(marker).read().split()
    check(int(launcher_rc) > 0 and r.rc == int(launcher_rc),
          f"mpinotify-run exited {r.rc}, the launcher {launcher_rc}: the status is not passed on")
    # The promise users read (README, --help): at most 10 s after the launcher, whatever the services do.
    check(ended - float(launcher_end) < 10, f"mpinotify-run returned {ended - float(launcher_end):.1f} s after the "
          "launcher (documented bound: 10 s)")
    said = [line for line in r.lines("err") if "not delivered within" in line]
    check(len(said) == 1, f"expected one line about what stayed undelivered, got {said}")
    check(len(t.spooled()) > before, "the job's undelivered messages were not spooled")


@case
def leftovers_background(t):
    # An earlier job left messages in the spool for a webhook that never answers. They are
    # delivered in the background: this job's own message arrives, mpinotify-run returns about
    # as fast as without them (waiting for them would cost its whole exit bound, 8 s), and they
    # stay spooled, not lost.
    dead = Sink(t, mode="hang", name="dead")
    for i in range(3):
        t.run([t.paths.send_tool, "--url", dead.url("/old"), "--timeout-ms", "200", "--title", f"earlier {i}",
               "--message", "left over"], f"earlier {i}", hang_ok=True)
    before = len(t.spooled())
    check(before >= 3, f"the earlier job left {before} spooled message(s), expected 3: test premise")
    env = {"MPINOTIFY_TIMEOUT_MS": "20000"}
    times = []
    for label in ("with leftovers", "baseline"):
        if label == "baseline":
            for name in os.listdir(t.spool):   # the same job with an empty spool
                if name.endswith(".msg"):
                    os.unlink(os.path.join(t.spool, name))
        sink = Sink(t, name=f"sink_{label.split()[0]}")
        start = time.time()
        r = t.tool(["--url", sink.url("/hook")], t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), ["segv=1"]), env, label=label)
        times.append(time.time() - start)
        check(r.rc == 139, f"{label}: mpinotify-run exited {r.rc}, expected 139")
        check(len(at(sink, "/hook")) == 1, f"{label}: the job's message did not arrive: {kinds(at(sink, '/hook'))}")
        if label == "with leftovers":
            check(len(t.spooled()) >= before, f"the earlier job's messages were lost: {len(t.spooled())} < {before}")
    check(times[0] < times[1] + 4, f"mpinotify-run took {times[0]:.1f} s with an earlier job's leftovers, "
          f"{times[1]:.1f} s without: the leftovers held the exit")


@case
def events_switch(t):
    sink, r = run_job(t, "mpi_crash", [], env={"MPINOTIFY_JOB_EVENTS": "failed"})
    check(r.rc == 0, f"a healthy job exited {r.rc}")
    check(not sink.posts(), f"MPINOTIFY_JOB_EVENTS=failed and a healthy job, yet {kinds(sink.bodies())} arrived")
    # A wrong list is a usage error.
    bad = t.tool(["--job-events", "begun"], ["true"], label="--job-events begun")
    check(bad.rc == 2 and "--job-events" in bad.err, f"--job-events begun: exit {bad.rc}")


@case
def events_option(t):
    sink, r = run_job(t, "mpi_crash", [], env={"MPINOTIFY_JOB_EVENTS": "none"}, tool_args=["--job-events", "completed"])
    check(r.rc == 0, f"a healthy job exited {r.rc}")
    check(kinds(at(sink, "/hook")) == [("job", "completed")], f"--job-events completed: {kinds(at(sink, '/hook'))}")


@case
def slurm(t):
    env = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "slurm-train", "MPINOTIFY_JOB_NAME": "",
           "MPINOTIFY_JOB_EVENTS": "started"}
    sink, r = run_job(t, "mpi_crash", [], env=env)
    check(r.rc == 0, f"a healthy job exited {r.rc}")
    b = one(at(sink, "/hook"), "message at /hook")
    check_job(b, "started")
    job = b["job"]
    check(job.get("slurm_job_id") == "4242", f"slurm_job_id {job.get('slurm_job_id')!r}")
    check(job.get("name") == "slurm-train" and job.get("slurm_job_name") == "slurm-train",
          f"job name {job.get('name')!r} / slurm_job_name {job.get('slurm_job_name')!r}")


if __name__ == "__main__":
    sys.exit(main())
