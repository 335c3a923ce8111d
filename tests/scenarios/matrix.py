#!/usr/bin/env python3
"""The failure matrix (CTest matrix.*, issue 6), at 8 ranks unless said:

    python3 matrix.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

tests/progs/matrix_prog (preloaded) or matrix_linked (linked, armed before MPI_Init) fails in
one mode per case; each job is compared with a baseline run with MPINOTIFY_DISABLE=1: the exit
status must be the same, the job must end within its budget (MPINOTIFY_TIMEOUT_MS) + 30 s, and
the failure must arrive exactly once (or, where the ranks cannot elect, at most once per node
marked "election": "failed"), or stay in the spool when the notifier could not send it. The
harness's hang guard fails any job that runs 120 s. No check here measures time otherwise.
The cases of the matrix that are delivery failures live in delivery.py (tests/README.md).
"""
import glob
import os
import shutil
import subprocess
import sys

from harness import NP, SLACK_S, Sink, case, check, functions, main, reports, skip

BUDGET_MS = 10000


def job(t, mode, ranks, env, expect, prog="matrix_prog", np=NP, launch=None, common=None):
    """The job without (MPINOTIFY_DISABLE=1) and with the library; statuses agree, within budget.
    `launch` goes before the program (a wrapper), `common` into both jobs' environments."""
    path = t.paths.prog(prog)
    linked = prog == "matrix_linked"
    cmd = (launch or []) + [path]
    common = common or {}
    env = dict({"MPINOTIFY_TIMEOUT_MS": str(BUDGET_MS)}, **common, **env)
    base = t.mpirun(np, cmd[0], cmd[1:] + [mode, ranks], preload=not linked,
                    env=dict(common, MPINOTIFY_DISABLE="1"), label="baseline (MPINOTIFY_DISABLE=1)")
    if base.rc != expect and ("AddressSanitizer" in base.err or "did not end the process" in base.err):
        skip(f"under AddressSanitizer the program's own fault ({mode}) is ASan's to catch: the baseline exits "
             f"{base.rc}, not {expect}; this case runs in the regular build")
    check(base.rc == expect, f"baseline exit status {base.rc}, expected {expect}: test premise broken")
    r = t.mpirun(np, cmd[0], cmd[1:] + [mode, ranks], preload=not linked, env=env)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    budget_s = int(env["MPINOTIFY_TIMEOUT_MS"]) / 1000
    check(r.elapsed < budget_s + SLACK_S, f"the job ran {r.elapsed:.1f} s, beyond its budget {budget_s} s + {SLACK_S} s")
    return r


def records(t):
    """The handlers' minimal crash records left in the spool: {path: {key: value}}."""
    out = {}
    for path in glob.glob(os.path.join(t.spool, "crash-*.rec")):
        with open(path, encoding="utf-8", errors="replace") as f:
            out[path] = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    return out


def one_report(sink, ranks, signal, election="ok"):
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == ranks, f"ranks {b['ranks']} != {ranks}")
    check(b["signal"] == signal, f"signal {b['signal']!r} != {signal}")
    check(b["election"] == election, f"election {b['election']!r} != {election!r}")
    return b


def crash_case(t, mode, ranks, signal, expect, want_ranks, prog="matrix_prog", election="ok"):
    sink = Sink(t)
    r = job(t, mode, ranks, {"MPINOTIFY_URLS": sink.url()}, expect, prog)
    return one_report(sink, want_ranks, signal, election), r


# --- faults in the application ------------------------------------------------------

def overflow_case(t, mode, ranks):
    """Ranks `ranks` ("2,5") recurse without bound in `mode`: one report, `recurse` in it."""
    listed = [int(r) for r in ranks.split(",")]
    b, _ = crash_case(t, mode, ranks, "SIGSEGV", 139, listed)
    check("recurse" in functions(b), f"recurse not among backtrace functions {functions(b)}")


@case
def overflow_main(t):
    overflow_case(t, "overflow_main", "2,5")


@case
def overflow_thread(t):
    # Only an alternate stack lets the handler run on a thread whose stack is exhausted:
    # the library gives one to every thread created once it is armed (lib/capture/threads.c).
    overflow_case(t, "overflow_thread", "2,5")


@case
def overflow_early_thread(t):
    # A thread the rank started before MPI_Init (a runtime's pool: the preloaded library
    # is not armed yet) overflows later: it got its alternate stack at creation because a
    # launcher started the process as a rank.
    overflow_case(t, "overflow_early_thread", "1,6")


@case
def two_threads(t):
    # Two threads of one rank fault at the same moment: one report, the rank once.
    b, _ = crash_case(t, "two_threads", "3", "SIGSEGV", 139, [3])
    check("bad_fn" in functions(b), f"bad_fn not among backtrace functions {functions(b)}")


def fault_in_mpi(t, mode):
    b, _ = crash_case(t, mode, "1,6", "SIGSEGV", 139, [1, 6])
    mods = [os.path.basename(f["module"]) for f in b["backtrace"]]
    check(any(m.startswith(("libmpi", "libopen-pal", "mca_")) for m in mods),
          f"no frame inside Open MPI ({mods}): the fault did not happen inside the MPI call")


@case
def fault_in_mpi_allreduce(t):
    fault_in_mpi(t, "mpi_allreduce")


@case
def fault_in_mpi_send(t):
    fault_in_mpi(t, "mpi_send")


def other_handler(t, mode):
    b, r = crash_case(t, mode, "1,4", "SIGSEGV", 139, [1, 4])
    for rank in (1, 4):
        n = r.out.count(f"theirs: SIGSEGV on rank {rank}\n")
        check(n == 1, f"the other library's handler ran {n} time(s) on rank {rank}, expected once")
    check("bad_fn" in functions(b), f"bad_fn not among backtrace functions {functions(b)}")


@case
def handler_before(t):
    other_handler(t, "handler_before")


@case
def handler_after(t):
    other_handler(t, "handler_after")


@case
def double_free(t):
    crash_case(t, "double_free", "2,7", "SIGABRT", 134, [2, 7])


@case
def heap_corrupt(t):
    crash_case(t, "heap_corrupt", "2,7", "SIGABRT", 134, [2, 7])


# --- before MPI_Init: mpirun's own failures ---------------------------------------------
# Open MPI 4.1's mpirun itself, when ranks die while others still start up and connect to it,
# hangs (every rank already a zombie) or dies of SIGPIPE, with "PMIX ERROR: UNREACHABLE", with
# or without the notifier (measured: a fifth to a quarter of such jobs). matrix_prog's faulting
# ranks therefore wait until the others are in MPI_Init ($MATRIX_SYNC_DIR), which mpirun
# survives; should it fail on its own anyway, the job runs again, up to ATTEMPTS times, and
# the first job mpirun ran through is judged, as strictly as any other.

ATTEMPTS = 3
# A job still running then is hung (killed); one beyond budget + slack fails anyway. At most
# 2 * ATTEMPTS jobs of 45 s stay within CTest's 300 s.
GUARD_S = BUDGET_MS // 1000 + SLACK_S + 5


def mpirun_trouble(r):
    """Why `r` is mpirun failing on its own, or None: it hung once every rank had ended
    (a rank still alive is a hang that may be ours), died of SIGPIPE, or PMIx said UNREACHABLE."""
    if r.hung:
        if not r.stuck[1:] or any(state != "Z" for _, _, state in r.stuck[1:]):
            return None
        return f"mpirun hung once every rank had ended (killed after {r.elapsed:.0f} s)"
    if r.rc == -13:
        return "mpirun died of SIGPIPE (exit status -13)"
    if "PMIX ERROR: UNREACHABLE" in r.err and r.rc != 139:   # a job that ended as it should is judged
        return f"mpirun exited {r.rc} after PMIx's UNREACHABLE"
    return None


def attempts(t, label, prog, env_for):
    """Up to ATTEMPTS runs of before_init until mpirun does not fail on its own; `env_for(n)`
    gives attempt n's environment and what to return with its result. (None, None) if it
    always failed."""
    for n in range(1, ATTEMPTS + 1):
        sync = os.path.join(t.dir, f"sync-{label.split()[0]}-{n}")
        spool = os.path.join(t.dir, f"spool-{label.split()[0]}-{n}")
        os.mkdir(sync)
        os.mkdir(spool, 0o700)
        env, extra = env_for(n)
        r = t.mpirun(NP, t.paths.prog(prog), ["before_init", "1,3,6"], preload=prog != "matrix_linked",
                     env=dict(env, MATRIX_SYNC_DIR=sync, MPINOTIFY_SPOOL=spool), label=f"{label}, attempt {n}",
                     guard=GUARD_S, hang_ok=True)
        why = mpirun_trouble(r)
        if not why:
            check(not r.hung, f"job [{r.label}] hung with a rank still alive (killed after {GUARD_S} s)")
            return r, extra
        print(f"NOTE: mpirun's own failure, not judged: job [{r.label}]: {why}")
    return None, None


def before_init_job(t, prog, max_reports):
    """before_init's baseline and job with the library (ranks 1, 3, 6 fault); returns the job
    judged and its sink. No attempt, judged or not, may bring more than `max_reports`: a
    duplicate is never excused as mpirun's trouble."""
    base, _ = attempts(t, "baseline (MPINOTIFY_DISABLE=1)", prog, lambda n: ({"MPINOTIFY_DISABLE": "1"}, None))
    if base is None:
        skip(f"mpirun failed on its own in all {ATTEMPTS} baseline runs: no exit status to compare with")
    check(base.rc == 139, f"baseline exit status {base.rc}, expected 139: test premise broken")

    sinks = []

    def with_sink(n):
        sinks.append(Sink(t, name=f"sink{n}"))
        return {"MPINOTIFY_URLS": sinks[-1].url(), "MPINOTIFY_TIMEOUT_MS": str(BUDGET_MS)}, sinks[-1]

    r, sink = attempts(t, "library", prog, with_sink)
    for i, s in enumerate(sinks, 1):
        n = len(s.posts())
        check(n <= max_reports, f"attempt {i} brought {n} reports, at most {max_reports} allowed")
    check(r is not None, f"mpirun failed on its own in all {ATTEMPTS} runs with the library, "
                         "while the baseline ran: the notifier must not change the job's fate")
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    budget_s = BUDGET_MS / 1000
    check(r.elapsed < budget_s + SLACK_S, f"the job ran {r.elapsed:.1f} s, beyond its budget {budget_s} s + {SLACK_S} s")
    return r, sink


@case
def before_init_preload(t):
    # Preloaded, the library arms in MPI_Init: a process that fails before it is untouched
    # and silent (as any process the job starts that is not a rank).
    _, sink = before_init_job(t, "matrix_prog", 0)
    reports(sink, 0)


def node_report(b):
    """A report the node sent without an election: it names its own rank alone, one of 1, 3, 6."""
    check(len(b["ranks"]) == 1 and b["ranks"][0] in (1, 3, 6), f"ranks {b['ranks']}: the reporting rank alone")
    check(b["election"] == "failed", f"election {b['election']!r}, expected 'failed'")


@case
def before_init_linked(t):
    # Linked, the library is armed from the start: before MPI_Init there is no election,
    # so the node reports once, marked so.
    _, sink = before_init_job(t, "matrix_linked", 1)
    [b] = reports(sink, 1)
    node_report(b)


@case
def after_finalize(t):
    # After MPI_Finalize the ranks cannot elect: one report for the node, marked so.
    sink = Sink(t)
    job(t, "after_finalize", "1,3,6", {"MPINOTIFY_URLS": sink.url()}, 139)
    [b] = reports(sink, 1, world_size=NP)
    node_report(b)


# --- faults in the notifier ------------------------------------------------------------

@case
def smashed_stack(t):
    # The notifier's own work meets garbage: the handler's and the agent's unwinders walk
    # a stack overwritten with junk pointers. The report arrives, or its record stays.
    sink = Sink(t)
    job(t, "smashed_stack", "3", {"MPINOTIFY_URLS": sink.url()}, 139)
    posts = sink.posts()
    if posts:
        one_report(sink, [3], "SIGSEGV")
    else:
        recs = records(t)
        check(len(recs) == 1, f"no report arrived and {len(recs)} crash record(s) stayed in the spool")


@case
def agent_fault(t):
    # The notifier's thread faults (SIGSEGV sent to it) while it is delivering rank 2's
    # SIGABRT to a sink that never answers: the job still ends by SIGABRT (134), within
    # its budget, and the handler's record of the abort stays in the spool.
    sink = Sink(t, mode="hang")
    r = job(t, "agent_fault", "2", {"MPINOTIFY_URLS": sink.url()}, 134)
    check("sends SIGSEGV to the agent thread" in r.out, "the agent thread was not found: test premise broken")
    check(not sink.accepted(), "a report was accepted by a sink that never answers")
    recs = list(records(t).values())
    check(len(recs) == 1, f"expected the abort's crash record in the spool, found {len(recs)}")
    check(recs[0].get("signal") == "6 SIGABRT" and recs[0].get("rank") == "2",
          f"the record is not rank 2's SIGABRT: {recs[0]!r}")


# --- delivery -------------------------------------------------------------------------

@case
def webhook_429(t):
    # A channel that answers 429 to every attempt: the job is not held, the report is spooled.
    script = [{"status": 429, "headers": {"Retry-After": "1"}}] * 100
    sink = Sink(t, script=script)
    job(t, "segv", "2,7", {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_TIMEOUT_MS": "5000"}, 139)
    posts = sink.posts()
    check(posts and all(p["status"] == 429 for p in posts), f"statuses {[p['status'] for p in posts]}, expected only 429s")
    msgs = t.spooled()
    check(len(msgs) == 1 and msgs[0]["message"].get("ranks") == [2, 7],
          f"expected the crash of ranks [2, 7] in the spool, found {[m['message'].get('ranks') for m in msgs]}")
    check(len({p["body"]["id"] for p in posts}) == 1, "the attempts carried different messages")


# --- containers ------------------------------------------------------------------------

@case
def pid1(t):
    # Each rank is PID 1 of its own PID namespace (unshare, as root). Signals a PID 1
    # sends itself with the default action are ignored by the kernel, so the chain's
    # re-raise must not be what ends the process.
    unshare = shutil.which("unshare")
    if not unshare or os.geteuid() != 0:
        skip("needs root and unshare(1) to make a rank PID 1 of a PID namespace")
    probe = subprocess.run([unshare, "--pid", "--fork", "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        skip(f"unshare --pid failed here: {probe.stderr.decode(errors='replace').strip()}")
    sink = Sink(t)
    launch = [unshare, "--pid", "--fork", "--mount-proc"]
    job(t, "two_threads", "1,3", {"MPINOTIFY_URLS": sink.url()}, 139, launch=launch, np=4,
        common={"OMPI_MCA_btl": "self,tcp"})   # shared memory's single copy needs the peers' PIDs
    [b] = reports(sink, 1, world_size=4)
    check(b["ranks"] == [1, 3], f"ranks {b['ranks']} != [1, 3]")
    check(all(p["pid"] == 1 for p in b["processes"]), f"processes {b['processes']}: the ranks were not PID 1")


if __name__ == "__main__":
    sys.exit(main())
