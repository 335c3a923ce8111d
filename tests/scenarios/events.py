#!/usr/bin/env python3
"""Events beside crashes (CTest events.*), at 8 ranks: exceptions, exits, alerts and progress the
program reports through mpinotify.h (tests/progs/mpi_events.c); uncaught C++ exceptions
(std::terminate, tests/progs/cxx_uncaught.cpp); MPI errors and MPI_Abort (issue 5,
tests/progs/mpi_errors.c and mpi_abort_fortran). One CTest entry runs one case:

    python3 events.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

Every job is compared with a baseline run with MPINOTIFY_DISABLE=1: the exit status must be the
same. No check here measures time.
"""
import datetime
import re
import sys

from harness import HEX16, NP, Sink, case, check, check_event, functions, main


# -- events reported by the program (mpinotify.h: exceptions, exits, alerts, progress) ----

def events_job(t, args, env=None, expect=0, name="sink"):
    """tests/progs/mpi_events with the sink as its channel; returns (sink, job result)."""
    sink = Sink(t, name)
    env = dict(env or {}, MPINOTIFY_URLS=sink.url())
    prog = t.paths.prog("mpi_events")
    base = t.mpirun(NP, prog, args, preload=False, env={"MPINOTIFY_DISABLE": "1"})
    r = t.mpirun(NP, prog, args, preload=False, env=env)
    check(base.rc == expect, f"baseline (library disabled) exit status {base.rc}, expected {expect}")
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return sink, r


@case
def exception_same_all(t):
    # The same exception on every rank: one message listing all of them.
    sink, _ = events_job(t, ["exc=all:ValueError:epoch 3"])
    bodies = sink.bodies()
    check(len(bodies) == 1, f"expected one message for the same exception on every rank, got {len(bodies)}")
    b = check_event(bodies[0], "exception", NP)
    check(b["ranks"] == list(range(NP)), f"ranks {b['ranks']}, expected all {NP}")
    e = b.get("exception") or {}
    check(e.get("type") == "ValueError" and e.get("context") == "epoch 3", f"exception {e!r}")
    check(isinstance(e.get("message"), str) and e["message"].startswith("bad value on rank "), f"message {e!r}")
    check(b["title"].startswith("ValueError on 8 of 8 ranks"), f"title {b['title']!r}")
    check("site_a" in functions(b), f"the call site site_a is not in the backtrace {functions(b)}")


@case
def exception_two_kinds(t):
    # Two different exceptions (and the same type from another call site): one message each.
    sink, _ = events_job(t, ["exc=all:ValueError", "exc=1,2:KeyError", "exc2=5:ValueError"])
    bodies = sink.bodies()
    check(len(bodies) == 3, f"expected 3 messages (ValueError, KeyError, ValueError at another site), got {len(bodies)}")
    by = {(b["exception"]["type"], tuple(b["ranks"])): b for b in bodies}
    check(set(by) == {("ValueError", tuple(range(NP))), ("KeyError", (1, 2)), ("ValueError", (5,))},
          f"messages for {sorted(by)}")
    for b in bodies:
        check_event(b, "exception", NP)
    check(len({b["signature"] for b in bodies}) == 3, "two different failures share a signature")


@case
def exception_message_in_signature(t):
    # MPINOTIFY_EXCEPTION_SIGNATURE=type,site,context,message: the per-rank messages now differ.
    sink, _ = events_job(t, ["exc=0,1:ValueError"], {"MPINOTIFY_EXCEPTION_SIGNATURE": "type,site,context,message"})
    bodies = sink.bodies()
    check(len(bodies) == 2 and sorted(b["ranks"] for b in bodies) == [[0], [1]],
          f"with the message in the signature, expected one message per rank, got {[b['ranks'] for b in bodies]}")


@case
def exit_one_rank(t):
    # exit(1) on one rank while MPI is up: one message, the job's status unchanged.
    sink, r = events_job(t, ["exit=3:1"], expect=1)
    bodies = sink.bodies()
    check(len(bodies) == 1, f"expected one message, got {len(bodies)}")
    b = check_event(bodies[0], "exit", NP)
    check(b["ranks"] == [3] and b.get("exit_status") == 1, f"ranks {b['ranks']}, exit_status {b.get('exit_status')}")
    check(b["title"].startswith("exit status 1 on 1 of 8 ranks"), f"title {b['title']!r}")


@case
def exit_zero_silent(t):
    # A rank that exits 0 after MPI_Finalize, and a healthy job: nothing to report.
    sink, _ = events_job(t, [])
    check(not sink.posts(), f"a healthy job sent {len(sink.posts())} message(s)")


@case
def alert_rules(t):
    # Cooldown per (detector, severity) in steps, escalation never muted by a warning's cooldown,
    # and the cap; every rank raises the same alerts: one message per alert that is not muted.
    steps = ["alert=all:nan_loss:warning:100",    # sent
             "alert=all:nan_loss:warning:150",    # muted: cooldown 100
             "alert=all:nan_loss:critical:160",   # sent: a critical is not muted by the warning
             "alert=all:nan_loss:critical:200",   # muted: the critical's own cooldown
             "alert=all:nan_loss:warning:250",    # sent: 150 steps after the last warning
             "alert=all:grad_norm:warning:250",   # sent: another detector
             "alert=all:throughput:warning:300"]  # muted: the cap (4)
    sink, r = events_job(t, steps, {"MPINOTIFY_ALERT_COOLDOWN": "100", "MPINOTIFY_ALERT_CAP": "4"})
    rcs = re.findall(r"^alert (\S+) (\S+) (\d+) rc=(\d+)$", r.out, re.M)
    muted = {(d, s, int(st)) for d, s, st, rc in rcs if int(rc) == 25}   # MPN_E_MUTED
    sent = {(d, s, int(st)) for d, s, st, rc in rcs if int(rc) == 0}
    want_sent = {("nan_loss", "warning", 100), ("nan_loss", "critical", 160), ("nan_loss", "warning", 250),
                 ("grad_norm", "warning", 250)}
    check(sent == want_sent, f"sent {sorted(sent)}, expected {sorted(want_sent)}")
    check(len(muted) == 3, f"muted {sorted(muted)}, expected 3")
    bodies = sink.bodies()
    check(len(bodies) == 4, f"expected 4 alert messages, got {len(bodies)}")
    got = {(b["alert"]["detector"], b["alert"]["severity"], b["alert"]["step"]) for b in bodies}
    check(got == want_sent, f"alerts that arrived {sorted(got)}")
    for b in bodies:
        check_event(b, "alert", NP)
        check(b["ranks"] == list(range(NP)), f"alert from ranks {b['ranks']}, expected all")
        a = b["alert"]
        check(a["recommendation"] == "lower the learning rate" and a["metrics"] == {"loss": 1.5, "grad_norm": 120.0},
              f"alert fields {a!r}")
        check(b["severity"] == a["severity"], f"severity {b['severity']} != alert severity {a['severity']}")


@case
def progress_every(t):
    # Off by default; with MPINOTIFY_PROGRESS_EVERY=10, steps 10 and 20 of 5..20 give one message each.
    steps = ["progress=0:5:40", "progress=0:10:40", "progress=0:15:40", "progress=0:20:40"]
    sink, _ = events_job(t, steps)
    check(not sink.posts(), f"progress is off by default, yet {len(sink.posts())} message(s) arrived")
    sink, _ = events_job(t, steps, {"MPINOTIFY_PROGRESS_EVERY": "10"}, name="every10")
    bodies = sink.bodies()
    check(sorted(b["progress"]["step"] for b in bodies) == [10, 20], f"progress steps {[b.get('progress') for b in bodies]}")
    for b in bodies:
        check_event(b, "progress", NP)
        check(b["severity"] == "info" and b["progress"]["total"] == 40, f"progress message {b['progress']!r}")


# --- uncaught C++ exceptions (std::terminate) ---------------------------------------------

WHY_MISSING = "no C++ compiler or MPI C++ support at configure time"
CONTEXT = "uncaught (std::terminate)"


def cxx_job(t, args, sink, expect_status=134):
    """The job with MPINOTIFY_DISABLE=1, then armed: the exit statuses must agree."""
    prog = t.paths.prog("cxx_uncaught", WHY_MISSING)
    base = t.mpirun(NP, prog, args, env={"MPINOTIFY_DISABLE": "1"}, label="baseline (MPINOTIFY_DISABLE=1)")
    check(base.rc == expect_status, f"baseline exit status {base.rc}, expected {expect_status}: test premise broken")
    r = t.mpirun(NP, prog, args, env={"MPINOTIFY_URLS": sink.url()})
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return base, r


def check_exception(b, type_, message, ranks):
    """One uncaught-exception message: the common fields and the exception's."""
    check(isinstance(b, dict) and b.get("schema") == "mpinotify/1", f"not an mpinotify/1 message: {b!r}")
    check(b.get("event") == "exception", f"event is {b.get('event')!r}, not 'exception'")
    check(b.get("severity") == "critical", f"severity {b.get('severity')!r} != 'critical'")
    check(isinstance(b.get("signature"), str) and HEX16.match(b["signature"]), f"signature {b.get('signature')!r}")
    try:
        datetime.datetime.fromisoformat(str(b.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        check(False, f"timestamp {b.get('timestamp')!r} is not ISO 8601")
    check(b.get("ranks") == ranks, f"ranks {b.get('ranks')!r} != {ranks}")
    check(b.get("world_size") == NP, f"world_size {b.get('world_size')!r} != {NP}")
    check(b.get("election") == "ok", f"election {b.get('election')!r}")
    check(b.get("reported_by") == "rank", f"reported_by {b.get('reported_by')!r}")
    procs = b.get("processes")
    check(isinstance(procs, list) and sorted(p.get("rank") for p in procs) == ranks, f"processes {procs!r}")
    check(isinstance(b.get("leader"), dict) and b["leader"].get("rank") == ranks[0], f"leader {b.get('leader')!r}")
    check(b.get("title", "").startswith(f"uncaught {type_} on {len(ranks)} of {NP} ranks"), f"title {b.get('title')!r}")
    exc = b.get("exception")
    want = {"type": type_, "message": message, "context": CONTEXT, "uncaught": True}
    check(exc == want, f"exception {exc!r} != {want!r}")
    check(b.get("text") == message, f"text {b.get('text')!r} != {message!r}")
    # The throw site leads the backtrace: std::terminate, __cxa_throw and our handler are left out.
    bt = b.get("backtrace")
    check(isinstance(bt, list) and bt, f"backtrace {bt!r} is empty")
    top = bt[0].get("function") or ""
    check(top.startswith("train_step"), f"backtrace starts at {top!r}, not at the throw site train_step: {bt[:4]!r}")
    check(not any("libstdc++" in (f.get("module") or "") or "mpinotify" in (f.get("module") or "") for f in bt[:2]),
          f"runtime or library frames at the top of the backtrace: {bt[:2]!r}")
    return b


def only_exceptions(sink, n):
    """Exactly n messages, all uncaught exceptions: the SIGABRT after each is never a second, "crash", one."""
    bodies = sink.bodies()
    kinds = [b.get("event") if isinstance(b, dict) else b for b in bodies]
    check(len(bodies) == n, f"expected exactly {n} message(s), got {len(bodies)}: events {kinds}")
    check(all(k == "exception" for k in kinds),
          f"events {kinds}: the SIGABRT of std::abort was reported as a crash (besides or instead of the exception)")
    return bodies


def verbose_terminate(r, type_):
    """libstdc++'s own handler still ran (we chain to it): its line is in the job's output."""
    check(f"terminate called after throwing an instance of '{type_}'" in r.err,
          f"[{r.label}] libstdc++'s terminate message for {type_} is missing: the previous handler did not run")


@case
def cxx_uncaught(t):
    sink = Sink(t)
    base, r = cxx_job(t, ["throw=2:runtime_error"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [2])
    for job in (base, r):
        verbose_terminate(job, "std::runtime_error")


@case
def cxx_uncaught_same(t):
    sink = Sink(t)
    cxx_job(t, ["throw=1,3,6:runtime_error"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [1, 3, 6])


@case
def cxx_uncaught_nonstd(t):
    # Not std::exception: the type is named, there is no what(). Two types, two messages.
    sink = Sink(t)
    cxx_job(t, ["throw=2:custom", "throw=5:int"], sink)
    bodies = sorted(only_exceptions(sink, 2), key=lambda b: b.get("ranks"))
    check_exception(bodies[0], "model::DivergedError", None, [2])
    check_exception(bodies[1], "int", None, [5])
    check(bodies[0]["signature"] != bodies[1]["signature"], "two exception types share a signature")


@case
def cxx_uncaught_chain(t):
    # The program set its own terminate handler before MPI_Init, where the preloaded library arms:
    # the exception is reported, then the program's handler runs as it would without the library.
    sink = Sink(t)
    base, r = cxx_job(t, ["throw=3:runtime_error", "handler=before"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [3])
    for job in (base, r):
        check("cxx_uncaught: own terminate handler" in job.err, f"[{job.label}] the program's own handler did not run")


@case
def cxx_uncaught_healthy(t):
    # Nothing thrown: the helper is loaded and nothing arrives.
    sink = Sink(t)
    cxx_job(t, [], sink, expect_status=0)
    only_exceptions(sink, 0)


# --- MPI errors and MPI_Abort ----------------------------------------------------------------

def errors_job(t, args, expect=None, prog="mpi_errors", why_missing=None):
    """The program with and without (MPINOTIFY_DISABLE=1) the library; returns (sink, result, baseline)."""
    sink = Sink(t)
    path = t.paths.prog(prog, why_missing)
    base = t.mpirun(NP, path, args, env={"MPINOTIFY_DISABLE": "1"}, label="baseline (MPINOTIFY_DISABLE=1)")
    if expect is not None:
        check(base.rc == expect, f"baseline exit status {base.rc}, expected {expect}: test premise broken")
    r = t.mpirun(NP, path, args, env={"MPINOTIFY_URLS": sink.url()})
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return sink, r, base


def one_mpi_error(sink, ranks, handler, severity, communicator="MPI_COMM_WORLD"):
    """Exactly one mpi_error message for MPI_ERR_RANK in MPI_Send from `ranks`; returns it."""
    bodies = sink.bodies()
    check(len(bodies) == 1, f"expected exactly one message, got {len(bodies)}")
    b = check_event(bodies[0], "mpi_error", NP)
    check(b["ranks"] == ranks, f"ranks {b['ranks']}, expected {ranks}")
    check(b["severity"] == severity, f"severity {b['severity']!r}, expected {severity!r}")
    e = b.get("mpi_error") or {}
    want = {"error_class": "MPI_ERR_RANK", "error_code": 6, "handler": handler, "communicator": communicator,
            "function": "MPI_Send"}
    got = {k: e.get(k) for k in want}
    check(got == want, f"mpi_error fields {got}, expected {want}")
    check(e.get("error_string") == "MPI_ERR_RANK: invalid rank", f"error_string {e.get('error_string')!r}")
    check(b["title"].startswith(f"MPI_ERR_RANK in MPI_Send: invalid rank on {len(ranks)} of {NP} ranks"),
          f"title {b['title']!r}")
    fns = functions(b)
    check(fns and fns[0] == "bad_send", f"the top frame is not the call site bad_send: {fns}")
    return b


@case
def mpi_error_fatal(t):
    # MPI_ERRORS_ARE_FATAL (the default): one message, then the job aborts as it would without us.
    sink, r, base = errors_job(t, ["fatal=2,5"])
    check(base.rc != 0, f"baseline exit status {base.rc}: an error under MPI_ERRORS_ARE_FATAL must end the job")
    one_mpi_error(sink, [2, 5], "fatal", "critical")
    check("finished" not in r.out, "the job went on after a fatal MPI error")
    # Open MPI's own "MPI_ERRORS_ARE_FATAL" text is not checked: when ranks abort at the same moment
    # mpirun may garble it (ORTE_ERROR_LOG ... show_help.c), with or without the library.


@case
def mpi_error_return(t):
    # MPI_ERRORS_RETURN set by the program: one message, the call returns the error, the job finishes.
    sink, r, _ = errors_job(t, ["return=all"], expect=0)
    got = re.findall(r"^rank (\d+) send returned (\d+) class (\d+)", r.out, re.M)
    check(sorted(int(g[0]) for g in got) == list(range(NP)) and all(g[1:] == ("6", "6") for g in got),
          f"the ranks did not all see MPI_ERR_RANK (6) returned: {got}")
    check("finished" in r.out, "the job did not finish after the returned error")
    one_mpi_error(sink, list(range(NP)), "return", "error")


@case
def mpi_error_comm(t):
    # MPI_ERRORS_RETURN on a dup of MPI_COMM_WORLD (which stays fatal); the error is on a split of
    # the dup: it inherits the dup's choice, so the call returns and the job finishes.
    sink, r, _ = errors_job(t, ["comm_return=3"], expect=0)
    check(re.search(r"^rank 3 split send returned 6 class 6", r.out, re.M), "rank 3 did not see MPI_ERR_RANK returned")
    check("finished" in r.out, "the job did not finish after the returned error")
    b = one_mpi_error(sink, [3], "return", "error", communicator="other")
    check(b["mpi_error"].get("communicator_name") == "halves", f"communicator_name in {b['mpi_error']}")


@case
def mpi_errhandler_get(t):
    # MPI_Comm_get_errhandler gives back what the program set (predefined or its own handler,
    # inherited by dups, freed by the caller); the program's handler is called after the report.
    sink, r, base = errors_job(t, ["get=4"], expect=0)
    for res in (base, r):
        oks = re.findall(r"^rank \d+ get ok$", res.out, re.M)
        check(len(oks) == NP and "MISMATCH" not in res.out, f"job [{res.label}]: not every rank printed 'get ok'")
        check(re.search(r"^rank 4 user handler called with class 6$", res.out, re.M),
              f"job [{res.label}]: the program's handler was not called on rank 4")
    b = one_mpi_error(sink, [4], "user", "error", communicator="other")
    check(b["leader"]["rank"] == 4, f"leader {b['leader']}")


def abort_job(t, prog, args, code, site, why_missing=None):
    sink, r, base = errors_job(t, args, prog=prog, why_missing=why_missing)
    check(base.rc != 0, f"baseline exit status {base.rc}: MPI_Abort must end the job")
    bodies = sink.bodies()
    check(len(bodies) == 1, f"expected exactly one message, got {len(bodies)}")
    b = check_event(bodies[0], "mpi_error", NP)
    check(b["ranks"] == [3] and b["severity"] == "critical", f"ranks {b['ranks']}, severity {b['severity']}")
    e = b.get("mpi_error")
    check(e == {"function": "MPI_Abort", "error_code": code, "abort": True}, f"mpi_error {e!r}")
    check(b["title"].startswith(f"MPI_Abort({code}) on 1 of {NP} ranks"), f"title {b['title']!r}")
    fns = functions(b)
    check(fns and site in (fns[0] or ""), f"the top frame is not the call site {site}: {fns}")
    return r


@case
def mpi_abort(t):
    # MPI_Abort on one rank: one message with its code, the job's status as without the library.
    abort_job(t, "mpi_errors", ["abort=3:7"], 7, "abort_site")


@case
def mpi_abort_fortran(t):
    # Fortran's MPI_ABORT reaches the library through PMPI_Abort.
    abort_job(t, "mpi_abort_fortran", ["3", "9"], 9, "fortran_abort_site",
              "no Fortran compiler or MPI Fortran bindings at configure time")


if __name__ == "__main__":
    sys.exit(main())
