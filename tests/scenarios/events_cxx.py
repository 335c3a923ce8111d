#!/usr/bin/env python3
"""Uncaught C++ exceptions (std::terminate): one CTest entry runs one case:

    python3 events_cxx.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

The program (tests/progs/cxx_uncaught.cpp) is a plain C++ MPI program with the library preloaded.
Every job is compared with a baseline run with MPINOTIFY_DISABLE=1: the exit status must be the same.
"""
import datetime
import re
import sys

from harness import Sink, check, main

NP = 8
CASES = {}
WHY_MISSING = "no C++ compiler or MPI C++ support at configure time"
CONTEXT = "uncaught (std::terminate)"
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def run(t, args, sink, expect_status=134):
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
    base, r = run(t, ["throw=2:runtime_error"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [2])
    for job in (base, r):
        verbose_terminate(job, "std::runtime_error")


@case
def cxx_uncaught_same(t):
    sink = Sink(t)
    run(t, ["throw=1,3,6:runtime_error"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [1, 3, 6])


@case
def cxx_uncaught_nonstd(t):
    # Not std::exception: the type is named, there is no what(). Two types, two messages.
    sink = Sink(t)
    run(t, ["throw=2:custom", "throw=5:int"], sink)
    bodies = sorted(only_exceptions(sink, 2), key=lambda b: b.get("ranks"))
    check_exception(bodies[0], "model::DivergedError", None, [2])
    check_exception(bodies[1], "int", None, [5])
    check(bodies[0]["signature"] != bodies[1]["signature"], "two exception types share a signature")


@case
def cxx_uncaught_chain(t):
    # The program set its own terminate handler before MPI_Init, where the preloaded library arms:
    # the exception is reported, then the program's handler runs as it would without the library.
    sink = Sink(t)
    base, r = run(t, ["throw=3:runtime_error", "handler=before"], sink)
    [b] = only_exceptions(sink, 1)
    check_exception(b, "std::runtime_error", "loss is nan", [3])
    for job in (base, r):
        check("cxx_uncaught: own terminate handler" in job.err, f"[{job.label}] the program's own handler did not run")


@case
def cxx_uncaught_healthy(t):
    # Nothing thrown: the helper is loaded and nothing arrives.
    sink = Sink(t)
    run(t, [], sink, expect_status=0)
    only_exceptions(sink, 0)


if __name__ == "__main__":
    sys.exit(main(CASES))
