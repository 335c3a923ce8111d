#!/usr/bin/env python3
"""Hangs (CTest hang.*, issue 15): each rank knows which blocking MPI call its application threads
are in and since when (lib/runtime/mpi_waits.c, lib/mpi/waits.c). One CTest entry runs one case:

    python3 hang.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

What a rank knows is read from its MPINOTIFY_DEBUG lines, one per MPINOTIFY_HANG_TIMEOUT period:

    mpinotify[rank 0 pid 123]: waits: thread 123 in MPI_Allreduce for 2.0 s; last progress never;
        overdue (MPINOTIFY_HANG_TIMEOUT=2)
    mpinotify[rank 2 pid 125]: waits: thread 125 not in MPI; last progress 0.2 s ago; not overdue (...)

A stalling rank sleeps outside MPI for a few seconds while the others wait for it, so every job
ends by itself. The message cases (one_rank_stuck and after) check what arrives at the sink: one
`hang` message naming the suspect and each group, one follow-up when the job recovers. The waited times are lower bounds the library guarantees (it dates a call by the
first look that saw it); no check here measures how long anything took.
"""
import os
import re
import subprocess

from harness import Sink, case, check, main, need_python

NP = 4
TIMEOUT = "2"      # MPINOTIFY_HANG_TIMEOUT of the stalling jobs
STALL_S = "6"      # how long the stalling rank stays out of MPI: three periods
PY_PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "progs", "py")
MPI_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib", "mpi", "mpi.h")

WAITS = re.compile(r"^mpinotify\[rank (\d+) pid \d+\]: waits: (.*); last progress ([^;]+); (overdue|not overdue) "
                   r"\(MPINOTIFY_HANG_TIMEOUT=(\d+)\)$")
THREAD = re.compile(r"^thread (\d+) (?:in (MPI_\w+) for ([0-9.]+) s|not in MPI)$")


def waits_lines(r):
    """{rank: [(threads, progress, overdue, timeout)]}, threads as [(tid, call or None, seconds)]."""
    out = {}
    for line in r.err.splitlines():
        m = WAITS.match(line.strip())
        if not m:
            continue
        threads = []
        for part in m.group(2).split("; "):
            t = THREAD.match(part)
            check(t is not None, f"a waits: line's thread part {part!r} is malformed: {line!r}")
            threads.append((int(t.group(1)), t.group(2), float(t.group(3) or 0)))
        out.setdefault(int(m.group(1)), []).append((threads, m.group(3), m.group(4) == "overdue", int(m.group(5))))
    return out


def stall_env(extra=None):
    env = {"MPINOTIFY_DEBUG": "1", "MPINOTIFY_HANG_TIMEOUT": TIMEOUT}
    env.update(extra or {})
    return env


def check_stall(r, np, stalled, call, progress=False):
    """Every rank but `stalled` saw its one application thread in `call` for the timeout or longer
    (overdue); `stalled` was never in MPI and never overdue. Only the application's thread is
    followed: the agent's own MPI calls (the election's) are never counted."""
    check(r.rc == 0, f"the job exited {r.rc}")
    lines = waits_lines(r)
    check(sorted(lines) == list(range(np)), f"waits: lines from ranks {sorted(lines)}, expected 0..{np - 1}")
    for rank, seen in lines.items():
        for threads, prog, overdue, timeout in seen:
            check(timeout == int(TIMEOUT), f"rank {rank}: MPINOTIFY_HANG_TIMEOUT={timeout}")
            check(len(threads) == 1, f"rank {rank}: {len(threads)} threads followed, expected the main one: {threads}")
        if rank == stalled:
            check(all(t[1] is None and not o for ts, _, o, _ in seen for t in ts),
                  f"the stalling rank {rank} was seen in MPI or overdue: {seen}")
            check(progress == all(p.endswith(" s ago") for _, p, _, _ in seen),
                  f"rank {rank}'s last progress: {[p for _, p, _, _ in seen]}")
        else:
            longest = max(t[2] for ts, _, _, _ in seen for t in ts if t[1] == call) if any(
                t[1] == call for ts, _, _, _ in seen for t in ts) else None
            check(longest is not None and longest >= float(TIMEOUT),
                  f"rank {rank} never seen in {call} for {TIMEOUT} s or more: {seen}")
            check(any(o for _, _, o, _ in seen), f"rank {rank} never overdue: {seen}")
            check(all(t[1] in (call, None) for ts, _, _, _ in seen for t in ts), f"rank {rank}: other calls in {seen}")


@case
def stall_allreduce(t):
    # Rank 2 sleeps outside MPI (calling mpn_progress every second); ranks 0, 1, 3 wait for it in
    # MPI_Allreduce: they are "in MPI_Allreduce for >= 2 s" and overdue, it is "not in MPI".
    r = t.mpirun(NP, t.paths.prog("mpi_waits"), ["stall", "2", STALL_S, "progress"], env=stall_env())
    check_stall(r, NP, 2, "MPI_Allreduce", progress=True)
    check(r.out.count(" done") == NP, f"not every rank finished: {r.out!r}")


@case
def every_call(t):
    # Every followed call once, each result checked: the wrappers pass arguments and results on
    # unchanged, followed (the default), with hang detection off, and with the library disabled.
    prog = t.paths.prog("mpi_waits")
    for env in ({}, {"MPINOTIFY_HANG_TIMEOUT": "0"}, {"MPINOTIFY_DISABLE": "1"}):
        r = t.mpirun(NP, prog, ["every"], env=env, label=f"every {env}")
        check(r.rc == 0 and r.out.count("every call ok") == NP, f"{env}: exit {r.rc}, output {r.out!r}")


@case
def fortran_barrier(t):
    # Open MPI's mpi_barrier_ calls PMPI_Barrier: the library defines it too, so Fortran waits count.
    prog = t.paths.prog("waits_fortran", "no Fortran compiler or MPI Fortran bindings")
    r = t.mpirun(3, prog, ["1", STALL_S], env=stall_env())
    check_stall(r, 3, 1, "MPI_Barrier")


@case
def py_stall(t):
    # mpi4py: rank 1 sleeps reporting mpinotify.progress; the others wait in comm.Allreduce.
    py = need_python("mpi4py")
    r = t.mpirun(3, py, [os.path.join(PY_PROGS, "ranks.py"), "stall=1"], env=stall_env())
    check_stall(r, 3, 1, "MPI_Allreduce", progress=True)


@case
def hang_off(t):
    # MPINOTIFY_HANG_TIMEOUT=0: no sampling, no waits: lines; the job is untouched.
    r = t.mpirun(3, t.paths.prog("mpi_waits"), ["stall", "1", "3"], env=stall_env({"MPINOTIFY_HANG_TIMEOUT": "0"}))
    check(r.rc == 0 and not waits_lines(r), f"exit {r.rc}; waits: lines {waits_lines(r)}")


@case
def bad_settings(t):
    # A bad value is one error line for the job (rank 0), naming the variable; the default is used.
    r = t.mpirun(NP, t.paths.prog("mpi_waits"), ["stall", "1", "3"],
                 env=stall_env({"MPINOTIFY_HANG_TIMEOUT": "soon", "MPINOTIFY_HANG_ACTION": "kill"}))
    check(r.rc == 0, f"the job exited {r.rc}")
    for var, value, default in (("MPINOTIFY_HANG_TIMEOUT", "soon", "using 600"),
                                ("MPINOTIFY_HANG_ACTION", "kill", "using report")):
        said = [line for line in r.err.splitlines() if f'{var}="{value}"' in line]
        check(len(said) == 1 and default in said[0] and "error" in said[0],
              f"{var}={value}: expected one error line, got {said}")
    check(not waits_lines(r), "waits: lines within 3 s: the default period (600 s) is not in use")


@case
def run_option(t):
    # mpinotify-run --hang-timeout S reaches every rank (MPINOTIFY_HANG_TIMEOUT); a bad value is a
    # usage error (exit 2) before anything starts.
    launcher = ["mpirun", "--oversubscribe", "-np", str(NP), t.paths.prog("mpi_waits"), "stall", "3", STALL_S]
    r = t.tool(["--hang-timeout", TIMEOUT, "--job-events", "none"], launcher, env={"MPINOTIFY_DEBUG": "1"})
    check_stall(r, NP, 3, "MPI_Allreduce")
    bad = t.tool(["--hang-timeout", "-5"], ["true"], label="mpinotify-run --hang-timeout -5")
    check(bad.rc == 2 and "--hang-timeout" in bad.err, f"exit {bad.rc}, stderr {bad.err!r}")


@case
def exports(t):
    # Each call of MPN__WAIT_CALLS leaves the library as MPI_X and PMPI_X (cmake/exports.map).
    with open(MPI_H) as f:
        text = f.read()
    block = text[text.index("#define MPN__WAIT_CALLS(X)"):text.index("enum {", text.index("#define MPN__WAIT_CALLS"))]
    calls = re.findall(r"\bX\((\w+),", block)
    check(len(calls) == 35, f"{len(calls)} calls read from mpi.h: {calls}")
    nm = subprocess.run(["nm", "-D", "--defined-only", t.paths.lib], capture_output=True, text=True)
    have = {line.split()[-1] for line in nm.stdout.splitlines() if line.strip()}
    missing = [p + c for c in calls for p in ("MPI_", "PMPI_") if p + c not in have]
    check(nm.returncode == 0 and not missing, f"not exported: {missing}")


# -- the hang message (runtime/hang.c) ----------------------------------------------------------

ENV = {"MPINOTIFY_HANG_TIMEOUT": "2"}


def job(t, args, env=None, np=NP, expect=0, python=False):
    sink = Sink(t)
    e = dict(ENV, MPINOTIFY_URLS=sink.url())
    e.update(env or {})
    if python:
        prog, args = need_python("mpi4py"), [os.path.abspath(os.path.join(PY_PROGS, "hang.py"))] + list(args)
    else:
        prog = t.paths.prog("mpi_hang")
    r = t.mpirun(np, prog, args, env=e)
    check(r.rc == expect, f"exit status {r.rc}, expected {expect}")
    return sink, [b for b in sink.bodies() if isinstance(b, dict)]


def by_event(bodies, event):
    return [b for b in bodies if b.get("event") == event]


def check_hang(bodies, stuck, where_stuck, where_waiting, waiting_call="MPI_Allreduce"):
    """One hang message naming rank `stuck` as the suspect, out of MPI in `where_stuck`, the
    others in MPI (in `waiting_call`, one group, where given; mpi4py's lowercase collectives are
    made of several calls) at `where_waiting`; one follow-up saying the job recovered."""
    hangs = by_event(bodies, "hang")
    check(len(hangs) == 1, f"expected one hang message, got {len(hangs)}: {[b.get('title') for b in bodies]}")
    h = hangs[0]
    check(h.get("suspects") == [stuck] and h.get("ranks") == [stuck],
          f"suspects {h.get('suspects')!r}, ranks {h.get('ranks')!r}: expected [{stuck}]")
    check(isinstance(h.get("stuck_for_s"), int) and h["stuck_for_s"] >= 2, f"stuck_for_s {h.get('stuck_for_s')!r}")
    groups = {tuple(g.get("ranks") or []): g for g in h.get("groups") or []}
    others = tuple(r for r in range(NP) if r != stuck)
    s = groups.get((stuck,), {})
    check(s.get("state") == "not in MPI" and s.get("mpi_call") is None and where_stuck in (s.get("where") or ""),
          f"the suspect's group {s!r}")
    waiting = [g for k, g in groups.items() if k != (stuck,)]
    check(sorted(r for g in waiting for r in g["ranks"]) == list(others), f"groups {sorted(groups)}")
    for w in waiting:
        call = w.get("mpi_call")
        check(call and (w.get("state") or "").startswith(f"in {call} for ") and where_waiting in (w.get("where") or ""),
              f"a waiting group {w!r}")
    if waiting_call:
        check(len(waiting) == 1 and waiting[0]["mpi_call"] == waiting_call, f"the waiting groups {waiting!r}")
    title = h.get("title") or ""
    check(title.startswith(f"Job {h['job']['name']} hung for ") and f"rank {stuck} is in" in title and
          title.index(f"rank {stuck} is in") < title.index(" wait"), f"title {title!r} does not lead with the suspect")
    check(h.get("severity") == "error", f"severity {h.get('severity')!r}")
    rec = by_event(bodies, "hang_recovered")
    check(len(rec) == 1 and "recovered" in (rec[0].get("title") or ""),
          f"expected one follow-up saying the job recovered, got {[b.get('title') for b in rec]}")
    check(len(bodies) == 2, f"expected the hang and its follow-up only, got {[b.get('event') for b in bodies]}")
    return h


@case
def one_rank_stuck(t):
    # Rank 2 computes for 8 s while the others wait in MPI_Allreduce.
    _, bodies = job(t, ["stuck=2:8", "wait=3"])
    h = check_hang(bodies, 2, "compute_loss, mpi_hang.c:", "train_step, mpi_hang.c:")
    waiting = [g for g in h["groups"] if g.get("mpi_call")][0]
    frames = [f.get("function") or "" for f in waiting.get("backtrace") or []]
    check(frames[:1] and frames[0].startswith("train_step") and "main" in frames,
          f"the waiting group's backtrace {frames} does not start at the caller of MPI_Allreduce")
    check(frames[0] and waiting["backtrace"][0].get("line"), f"no line in {waiting['backtrace'][0]!r}")


@case
def mismatched_collective(t):
    # Ranks 1 and 2 wait in MPI_Barrier, ranks 0 and 3 in MPI_Allreduce: a deadlock. Both groups are
    # named; MPINOTIFY_HANG_ACTION=abort ends the job.
    _, bodies = job(t, ["mismatch=1,2"], env={"MPINOTIFY_HANG_ACTION": "abort"}, expect=1)
    hangs = by_event(bodies, "hang")
    check(len(hangs) == 1, f"expected one hang message, got {[b.get('title') for b in bodies]}")
    groups = {tuple(g.get("ranks") or []): g.get("mpi_call") for g in hangs[0].get("groups") or []}
    check(groups == {(0, 3): "MPI_Allreduce", (1, 2): "MPI_Barrier"}, f"groups {groups!r}")
    check(hangs[0].get("suspects") in ([1, 2], [0, 3]), f"suspects {hangs[0].get('suspects')!r}")
    check("sync_barrier" in (hangs[0].get("title") or ""), f"title {hangs[0].get('title')!r}")


@case
def rank_finalized(t):
    # Rank 0 calls MPI_Finalize while the others wait for it in MPI_Allreduce (an off-by-one in its
    # step count): it is named, in MPI_Finalize; MPINOTIFY_HANG_ACTION=abort ends the job.
    _, bodies = job(t, ["early=0"], env={"MPINOTIFY_HANG_ACTION": "abort"}, expect=1)
    hangs = by_event(bodies, "hang")
    check(len(hangs) == 1, f"expected one hang message, got {[b.get('title') for b in bodies]}")
    groups = {tuple(g.get("ranks") or []): g for g in hangs[0].get("groups") or []}
    check(set(groups) == {(0,), (1, 2, 3)} and groups[(0,)].get("mpi_call") == "MPI_Finalize" and
          groups[(1, 2, 3)].get("mpi_call") == "MPI_Allreduce", f"groups {groups!r}")
    check(hangs[0].get("suspects") == [0] and "main" in (groups[(0,)].get("where") or ""),
          f"suspects {hangs[0].get('suspects')!r}, where {groups[(0,)].get('where')!r}")


@case
def abort_under_run(t):
    # Under mpinotify-run, a hang that ends the job (MPINOTIFY_HANG_ACTION=abort) is the job's failure:
    # one message, the hang with the job's end in it.
    sink = Sink(t)
    r = t.tool(["--url", sink.url(), "--hang-timeout", "2"], t.mpirun_cmd(NP, t.paths.prog("mpi_hang"), ["early=0"],
               preload=False), env={"MPINOTIFY_HANG_ACTION": "abort"})
    check(r.rc == 1, f"mpinotify-run exited {r.rc}, expected MPI_Abort's 1")
    bodies = [b for b in sink.bodies() if isinstance(b, dict)]
    check([b.get("event") for b in bodies] == ["hang"], f"expected one message, the hang; got {[b.get('title') for b in bodies]}")
    job = bodies[0].get("job") or {}
    check(job.get("exit_status") == 1 and job.get("status") == "failed", f"job {job!r}: not the job's end, failed with 1")


@case
def suspect_not_disturbed(t):
    # Reading where a rank blocked in the kernel is (sleep, read, poll) must not end its call early:
    # rank 1 sleeps 8 s in one sleep(); the hang is reported, and the sleep ran its whole course.
    sink = Sink(t)
    r = t.mpirun(NP, t.paths.prog("mpi_hang"), ["sleepy=1:8", "wait=2"], env=dict(ENV, MPINOTIFY_URLS=sink.url()))
    check(r.rc == 0, f"exit status {r.rc}")
    check("rank 1: sleep left 0" in r.out, f"the suspect's sleep was cut short: {r.out!r}")
    hangs = [b for b in sink.bodies() if isinstance(b, dict) and b.get("event") == "hang"]
    check(len(hangs) == 1 and hangs[0].get("suspects") == [1], f"hang messages {[b.get('title') for b in hangs]}")
    s = [g for g in hangs[0]["groups"] if g["ranks"] == [1]]
    check(s and "main" in (s[0].get("where") or ""), f"the suspect's group {s!r}")


@case
def python_rank_stuck(t):
    # The same in Python: the groups say where in Python each rank is.
    _, bodies = job(t, ["1", "8"], python=True)
    h = check_hang(bodies, 1, "compute_loss, hang.py:", "train_step, hang.py:", waiting_call=None)
    stuck = [g for g in h["groups"] if g.get("ranks") == [1]][0]
    tb = stuck.get("traceback") or []
    check(tb and tb[-1].get("function") == "compute_loss", f"the suspect's traceback {tb!r}")


@case
def long_compute_is_not_a_hang(t):
    # Every rank computes for 6 s: nobody waits, nothing to report.
    _, bodies = job(t, ["compute=6"])
    check(bodies == [], f"expected no message, got {[b.get('title') for b in bodies]}")


@case
def message_off(t):
    # MPINOTIFY_HANG_TIMEOUT=0: hang detection is off.
    _, bodies = job(t, ["stuck=2:6", "wait=2"], env={"MPINOTIFY_HANG_TIMEOUT": "0"})
    check(bodies == [], f"expected no message with detection off, got {[b.get('title') for b in bodies]}")


@case
def action_abort(t):
    # MPINOTIFY_HANG_ACTION=abort: the job ends after the message instead of waiting 100 s.
    _, bodies = job(t, ["stuck=2:100"], env={"MPINOTIFY_HANG_ACTION": "abort"}, expect=1)
    hangs = by_event(bodies, "hang")
    check(len(hangs) == 1 and hangs[0].get("suspects") == [2], f"hang messages {[b.get('title') for b in hangs]}")


@case
def stacks_view(t):
    # mpinotify-send --stacks PID asks a running job where every rank is, without stopping it
    # (hang detection off here): the groups come back as JSON; with --send the rank sends them too.
    import json
    import time
    tool = t.need_send()
    sink = Sink(t)
    env = t.env({"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_HANG_TIMEOUT": "0"})
    cmd = t.mpirun_cmd(NP, t.paths.prog("mpi_hang"), ["stuck=2:20", "wait=2"])
    job = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    t.cleanups.append(lambda: job.poll() is None and os.killpg(job.pid, 9))
    ranks = []
    for _ in range(100):  # the ranks' processes, once they exist (not a timing check)
        ranks = subprocess.run(["pgrep", "-x", "-P", ",".join(str(p) for p in [job.pid] + _children(job.pid)),
                                "mpi_hang"], capture_output=True, text=True).stdout.split()
        if len(ranks) == NP:
            break
        time.sleep(0.1)
    check(len(ranks) == NP, f"found rank processes {ranks}")
    time.sleep(2)  # past MPI_Init: ranks 0, 1, 3 wait for rank 2
    r = subprocess.run([tool, "--stacks", ranks[0], "--json", "--send"], capture_output=True, text=True, timeout=60)
    shown = subprocess.run([tool, "--stacks", ranks[3]], capture_output=True, text=True, timeout=60)
    out, err = job.communicate(timeout=90)
    check(shown.returncode == 0 and "rank 2 is in compute_loss" in shown.stdout and "not in MPI" in shown.stdout and
          "ranks 0-1,3 wait in MPI_Allreduce" in shown.stdout, f"the printed view: {shown.stdout!r} {shown.stderr!r}")
    check(r.returncode == 0, f"mpinotify-send --stacks exited {r.returncode}: {r.stderr}")
    check(job.returncode == 0, f"the job exited {job.returncode} (it must go on after the view): {err.decode()[-500:]}")
    v = json.loads(r.stdout)
    groups = {tuple(g["ranks"]): g for g in v.get("groups") or []}
    check(set(groups) == {(2,), (0, 1, 3)}, f"groups {sorted(groups)}")
    check(groups[(2,)]["state"] == "not in MPI" and "compute_loss" in groups[(2,)]["where"], f"{groups[(2,)]!r}")
    check(groups[(0, 1, 3)]["mpi_call"] == "MPI_Allreduce", f"{groups[(0, 1, 3)]!r}")
    check(v.get("suspects") == [2], f"suspects {v.get('suspects')!r}")
    sent = [b for b in sink.bodies() if isinstance(b, dict)]
    check([b.get("event") for b in sent] == ["stacks"] and sent[0].get("groups") == v["groups"],
          f"sent {[b.get('event') for b in sent]}: expected the view once, as event stacks")
    bad = subprocess.run([tool, "--stacks", str(job.pid), "--timeout-ms", "2000"], capture_output=True, text=True)
    check(bad.returncode == 1 and "no process" in bad.stderr, f"asking a finished job: {bad.returncode} {bad.stderr!r}")
    me = subprocess.run([tool, "--stacks", str(os.getpid())], capture_output=True, text=True)
    check(me.returncode == 1 and "no libmpinotify" in me.stderr, f"asking a process without the library: {me.returncode} {me.stderr!r}")


def _children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out] + [c for p in out for c in _children(int(p))]


if __name__ == "__main__":
    raise SystemExit(main())
