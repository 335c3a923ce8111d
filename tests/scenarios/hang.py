#!/usr/bin/env python3
"""Hangs (CTest hang.*, issue 15): each rank knows which blocking MPI call its application threads
are in and since when (lib/runtime/mpi_waits.c, lib/mpi/waits.c). One CTest entry runs one case:

    python3 hang.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

What a rank knows is read from its MPINOTIFY_DEBUG lines, one per MPINOTIFY_HANG_TIMEOUT period:

    mpinotify[rank 0 pid 123]: waits: thread 123 in MPI_Allreduce for 2.0 s; last progress never;
        overdue (MPINOTIFY_HANG_TIMEOUT=2)
    mpinotify[rank 2 pid 125]: waits: thread 125 not in MPI; last progress 0.2 s ago; not overdue (...)

A stalling rank sleeps outside MPI for a few seconds while the others wait for it, so every job
ends by itself. The waited times are lower bounds the library guarantees (it dates a call by the
first look that saw it); no check here measures how long anything took.
"""
import os
import re
import subprocess

from harness import case, check, main, need_python

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


if __name__ == "__main__":
    raise SystemExit(main())
