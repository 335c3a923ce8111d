#!/usr/bin/env python3
"""mpinotify scenarios for MPI errors and MPI_Abort (issue 5), at 8 ranks:

    python3 events_mpierr.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

tests/progs/mpi_errors (C) and mpi_abort_fortran run with the library preloaded, the loopback
sink as the channel, and are compared with a baseline run with MPINOTIFY_DISABLE=1: the exit
status must be the same. No check here measures time.
"""
import re
import sys

from harness import Sink, check, check_event, functions, main

NP = 8
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


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
    sys.exit(main(CASES))
