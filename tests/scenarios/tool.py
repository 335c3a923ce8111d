#!/usr/bin/env python3
"""mpinotify-run as a tool (CTest tool.*): its --help, the exit status it passes on (healthy,
crashed, a rank's exit status), and the signals that stop a job. One CTest entry runs one case:

    python3 tool.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

timeout_no_orphans: a job that never ends by itself runs under `timeout -s SIG 5`, once with
mpirun alone (the baseline) and once under mpinotify-run. Every process of a job carries a unique
marker in its environment (and its command line), so what is left of it afterwards can be found.
Open MPI's mpirun ends its ranks on the first SIGINT, SIGTERM or SIGHUP, but takes a second one
within 5 s as "forcibly terminate" and exits at once, leaving them running; `timeout` signals its
child and then its whole process group, so a wrapper that shares the launcher's group and
forwards what it gets delivers that second copy.
"""
import os
import sys
import time
import uuid

from harness import NP, Sink, case, check, main, python_with

# timeout_no_orphans runs 4 ranks.
SIGNAL_NP = 4
STOP_AFTER_S = 5
# The ranks are given this long to start before the signal comes: a job that had not started
# would prove nothing. A rank's own child makes the leftovers visible: only the launcher's
# clean teardown (SIGTERM then SIGKILL to each rank's process group) ends it.
CHILD_JOB = 'sleep 3600 & exec "$0" --stagger 3600000 segv=1 "$1"'
SPIN_PY = """\
import sys
from mpi4py import MPI
comm = MPI.COMM_WORLD
if comm.rank == 1:
    while True:   # a rank stuck in a loop; the others wait for it in an allreduce
        pass
comm.allreduce(1)
"""


# --- exit statuses and --help ----------------------------------------------------------

def tool_status(t, args, crash_ranks=None):
    sink = Sink(t)
    launcher = t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), args, preload=False)
    base = t.run(launcher, "baseline")
    r = t.tool(["--url", sink.url(), "--name", t.paths.case], launcher)
    check(r.rc == base.rc, f"mpinotify-run exited {r.rc}, the launcher alone {base.rc}")
    crashes = [b for b in sink.bodies() if isinstance(b, dict) and b.get("event") == "crash"]
    if crash_ranks is None:
        check(not crashes, f"{len(crashes)} crash report(s) for a job that did not crash")
    else:  # proves the tool really preloaded the library into the ranks
        check(len(crashes) == 1 and crashes[0]["ranks"] == crash_ranks,
              f"expected one crash report for ranks {crash_ranks}, got {[b['ranks'] for b in crashes]}")
    return base


@case
def status_healthy(t):
    base = tool_status(t, [])
    check(base.rc == 0, f"baseline healthy job exited {base.rc}")


@case
def status_segv(t):
    base = tool_status(t, ["segv=1,3,6"], [1, 3, 6])
    check(base.rc == 139, f"baseline crash exited {base.rc}, expected 139")


@case
def status_exit3(t):
    base = tool_status(t, ["--exit", "2:3"])
    check(base.rc != 0, "baseline with a rank exiting 3 exited 0: test premise broken")


@case
def help(t):
    r = t.tool(["--help"], [])
    check(r.rc == 0, f"mpinotify-run --help exited {r.rc}")
    check("usage" in (r.out + r.err).lower(), "mpinotify-run --help printed no usage")


# --- signals that stop a job --------------------------------------------------------------

def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def job_processes(marker):
    """(pid, name) of every live process that carries `marker` in its environment or argv."""
    env_entry, arg = f"MPN_TEST_JOB={marker}".encode(), marker.encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        env = _read(f"/proc/{d}/environ").split(b"\0")
        argv = _read(f"/proc/{d}/cmdline").split(b"\0")
        if env_entry in env or arg in argv:
            found.append((int(d), _read(f"/proc/{d}/comm").decode(errors="replace").strip()))
    return found


def leftovers(marker, grace_s=1.0):
    """What is still there once `grace_s` has passed (processes already exiting get that long)."""
    deadline = time.monotonic() + grace_s
    while True:
        left = job_processes(marker)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def end_all(marker):
    """SIGKILL what a job left behind (by pid), so that one run cannot disturb the next."""
    for pid, _ in job_processes(marker):
        try:
            os.kill(pid, 9)
        except OSError:
            pass


def stop_job(t, sig, launcher, label, tool=False, preserve=True):
    """`timeout -s SIG` around the job (mpirun alone, or under mpinotify-run); returns the
    result and what was left of the job once timeout returned."""
    marker = "mpnjob-" + uuid.uuid4().hex
    t.cleanups.append(lambda: end_all(marker))
    cmd = ["timeout"] + (["--preserve-status"] if preserve else []) + ["-s", sig, str(STOP_AFTER_S)]
    if tool:
        cmd += [t.paths.run_tool, "--url", "console://", "--job-events", "all", "--"]   # "started": the premise below
    cmd += [a.replace("@MARK@", marker) for a in launcher]
    r = t.run(cmd, label, env={"MPN_TEST_JOB": marker})
    left = leftovers(marker)
    end_all(marker)
    check(r.elapsed >= STOP_AFTER_S - 0.5, f"job [{label}] ended after {r.elapsed:.1f} s by itself, before the "
          f"signal: test premise")
    return r, left


def names(left):
    return ", ".join(f"{pid} {name}" for pid, name in left)


def compare(t, sig, launcher, what):
    """The job alone, then under mpinotify-run: the same status; nothing left by mpinotify-run."""
    check(t.paths.run_tool and os.path.exists(t.paths.run_tool), "mpinotify-run was not built")
    base, base_left = stop_job(t, sig, launcher, f"{what}, SIG{sig}, mpirun alone")
    r, left = stop_job(t, sig, launcher, f"{what}, SIG{sig}, under mpinotify-run", tool=True)
    if base_left:   # mpirun's own race with timeout's two copies: not this test's business
        print(f"note: mpirun alone left {names(base_left)} (its own race with timeout's two signals)")
    check(not left, f"{what}, SIG{sig}: after mpinotify-run exited, processes of the job remained: {names(left)}")
    check(r.rc == base.rc, f"{what}, SIG{sig}: timeout reported {r.rc} for mpinotify-run, {base.rc} for mpirun alone")
    # The launcher got one copy of the signal and ended the job itself: the last resort
    # (ending what outlived the launcher) had nothing to do.
    check("still ran" not in r.err and "could not be ended" not in r.err,
          f"{what}, SIG{sig}: processes outlived the launcher and had to be ended by mpinotify-run")
    check("Job " in r.err and " started" in r.err, f"{what}, SIG{sig}: no job message on the console: premise")
    return r


@case
def timeout_no_orphans(t):
    child_job = t.mpirun_cmd(SIGNAL_NP, "sh", ["-c", CHILD_JOB, t.paths.prog("mpi_crash"), "@MARK@"], preload=False)
    for sig in ("TERM", "INT", "HUP"):
        compare(t, sig, child_job, "ranks with a child each")
    # Without --preserve-status, timeout says 124 (it stopped the command), as for mpirun alone.
    r, left = stop_job(t, "TERM", child_job, "SIGTERM, no --preserve-status, under mpinotify-run", tool=True,
                       preserve=False)
    check(not left, f"after mpinotify-run exited, processes of the job remained: {names(left)}")
    check(r.rc == 124, f"timeout reported {r.rc}, expected 124")
    py = python_with("mpi4py")
    if py is None:
        print("note: no python3 with mpi4py: the Python variant is left out")
        return
    script = os.path.join(t.dir, "spin.py")
    with open(script, "w") as f:
        f.write(SPIN_PY)
    compare(t, "TERM", t.mpirun_cmd(SIGNAL_NP, py, [script, "@MARK@"], preload=False), "mpi4py, a rank spinning")


if __name__ == "__main__":
    sys.exit(main())
