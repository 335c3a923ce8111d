#!/usr/bin/env python3
"""Crashes under mpirun (CTest crash.*): a signal on some ranks is reported once per bug, with
the right ranks, signal and backtrace; jobs that must stay untouched (healthy, non-MPI, C++
exceptions caught, disabled) send nothing; the configuration that changes how a crash is
reported (election fallback, a bad URL, the console panel). One CTest entry runs one case:

    python3 crash.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

Crash jobs are compared with a baseline run of the same job without the library:
the exit status must be the same. No check here measures time.
"""
import os
import re
import signal
import sys
import threading
import time

from harness import NP, Sink, case, check, crash, functions, main, reports


def ranks_of(bodies):
    return sorted(b["ranks"] for b in bodies)


# --- crashes and their reports ---------------------------------------------------

@case
def crash_three_same(t):
    sink = Sink(t)
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("mpi_crash"), 139)
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [1, 3, 6], f"ranks {b['ranks']} != [1, 3, 6]")
    check(b["election"] == "ok", f"election {b['election']!r}")
    check(b["signal"] == "SIGSEGV", f"signal {b['signal']!r}")
    check(b["fault_address"] is not None and int(b["fault_address"], 16) == 0, f"fault_address {b['fault_address']!r} != 0x0")
    check("bad_fn" in functions(b), f"bad_fn not among backtrace functions {functions(b)}")
    check(b["job"]["name"] == t.paths.case, f"job name {b['job']['name']!r} != MPINOTIFY_JOB_NAME {t.paths.case!r}")


def two_groups(t, kind_a, kind_b, fn_a, fn_b, signal, status):
    sink = Sink(t)
    crash(t, [f"{kind_a}=1,3", f"{kind_b}=5,6"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("mpi_crash"), status)
    bodies = sorted(reports(sink, 2, world_size=NP), key=lambda b: b["ranks"])
    check(ranks_of(bodies) == [[1, 3], [5, 6]], f"rank sets {ranks_of(bodies)} != [[1, 3], [5, 6]]")
    check(bodies[0]["signature"] != bodies[1]["signature"], f"both reports have signature {bodies[0]['signature']}")
    for b, fn in ((bodies[0], fn_a), (bodies[1], fn_b)):
        check(b["signal"] == signal, f"signal {b['signal']!r} != {signal}")
        check(fn in functions(b), f"ranks {b['ranks']}: {fn} not among backtrace functions {functions(b)}")


@case
def two_bugs(t):
    two_groups(t, "segv", "segv2", "bad_fn", "other_bad_fn", "SIGSEGV", 139)


@case
def abort_sites(t):
    two_groups(t, "abort1", "abort2", "abort_site_a", "abort_site_b", "SIGABRT", 134)


@case
def assert_sites(t):
    two_groups(t, "assert1", "assert2", "assert_site_a", "assert_site_b", "SIGABRT", 134)


@case
def staggered_same_bug(t):
    # Rank r faults r*300 ms after the others: the later ones hit an already reported
    # signature (or are killed by mpirun first); either way one message in total.
    sink = Sink(t)
    crash(t, ["--stagger", "300", "segv=all"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("mpi_crash"), 139)
    [b] = reports(sink, 1, world_size=NP)
    check(0 in b["ranks"], f"rank 0 faulted first but ranks are {b['ranks']}")


@case
def crash_in_o2_shlib(t):
    sink = Sink(t)
    crash(t, ["2,5"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("crash_in_lib"), 139)
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [2, 5], f"ranks {b['ranks']} != [2, 5]")
    frames = [f for f in b["backtrace"] if f.get("function") == "crashlib_store"]
    check(frames, f"crashlib_store not among backtrace functions {functions(b)}")
    check(frames[0]["module"].endswith("libcrashlib.so"), f"crashlib_store's module {frames[0]['module']!r} does not end with libcrashlib.so")


@case
def fortran_crash(t):
    prog = t.paths.prog("crash_fortran", "no Fortran compiler or MPI Fortran bindings at configure time")
    sink = Sink(t)
    crash(t, ["2", "5"], {"MPINOTIFY_URLS": sink.url()}, prog, 139)
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [2, 5], f"ranks {b['ranks']} != [2, 5]")
    check(any("fortran_bad_fn" in (f or "") for f in functions(b)), f"fortran_bad_fn not among backtrace functions {functions(b)}")


@case
def fork_child_crash(t):
    sink = Sink(t)
    r = crash(t, ["3"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("fork_crash"), 139)
    parent = re.search(r"parent rank 3 pid (\d+)", r.out)
    child = re.search(r"child pid (\d+)", r.out)
    check(parent and child, "fork_crash did not print the parent's and the child's pid")
    check(re.search(r"child status \d+ signaled 11", r.out), "the forked child did not die of SIGSEGV: test premise broken")
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [3], f"ranks {b['ranks']} != [3]")
    pids = [p["pid"] for p in b["processes"]]
    check(pids == [int(parent[1])], f"processes' pids {pids}, expected only the parent {parent[1]} (child was {child[1]})")


# --- file and line of frames (issue 15: libdw, lib/capture/lines.c) ----------------

PROGS_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "progs")


def marker_line(source, marker):
    """The line of `source` (in tests/progs) that holds the comment `marker`."""
    with open(os.path.join(PROGS_SRC, source)) as f:
        found = [i for i, text in enumerate(f, 1) if marker in text]
    check(len(found) == 1, f"marker {marker} found {len(found)} times in {source}: test premise broken")
    return found[0]


def frame_at(b, i):
    bt = b["backtrace"]
    check(len(bt) > i, f"backtrace has {len(bt)} frames, wanted frame {i}: {bt!r}")
    return bt[i]


def lines_job(t, prog, sink_name="sink"):
    sink = Sink(t, sink_name)
    crash(t, ["1"], {"MPINOTIFY_URLS": sink.url()}, prog, 139, np=2)
    [b] = reports(sink, 1, world_size=2)
    check(b["ranks"] == [1], f"ranks {b['ranks']} != [1]")
    return b


@case
def lines_c_o2(t):
    # -g -O2: frame 0 is the faulting statement's line, frame 1 the call's.
    b = lines_job(t, t.paths.prog("lines_crash"))
    top, caller = frame_at(b, 0), frame_at(b, 1)
    check(top["function"] == "store_at", f"frame 0 is {top['function']!r}, not store_at: {b['backtrace']!r}")
    for fr, marker in ((top, "LINES-FAULT"), (caller, "LINES-CALL")):
        want = marker_line("lines_crash.c", marker)
        check((fr.get("file") or "").endswith("lines_crash.c") and fr.get("line") == want,
              f"frame {fr['index']} ({fr['function']}) at {fr.get('file')}:{fr.get('line')}, expected lines_crash.c:{want}")
        check(fr.get("inlined") is False, f"frame {fr['index']} has inlined {fr.get('inlined')!r}, expected false")


@case
def lines_stripped(t):
    # The same program stripped: the same report and signature, no file or line anywhere.
    full = lines_job(t, t.paths.prog("lines_crash"))
    b = lines_job(t, t.paths.prog("stripped/lines_crash"), "stripped")
    check(all({"file", "line", "inlined"} <= set(fr) for fr in b["backtrace"]),
          f"frames without file, line or inlined (null, null, false when unknown): {b['backtrace']!r}")
    files = [(fr.get("file"), fr.get("line")) for fr in b["backtrace"] if (fr.get("module") or "").endswith("/lines_crash")]
    check(files and all(f == (None, None) for f in files), f"the stripped program's frames have file/line {files}")
    check(b["signature"] == full["signature"],
          f"signature {b['signature']} stripped != {full['signature']} with debug information")
    offsets = lambda body: [fr["offset"] for fr in body["backtrace"] if not fr.get("inlined")][:3]
    check(offsets(b) == offsets(full), f"frames differ: stripped {offsets(b)}, with debug information {offsets(full)}")


@case
def lines_fortran_inlined(t):
    # ratio is inlined into the main program at -O2: its own frame, marked inlined, then the caller.
    prog = t.paths.prog("lines_inline", "no Fortran compiler or MPI Fortran bindings at configure time")
    sink = Sink(t)
    crash(t, ["1", "0"], {"MPINOTIFY_URLS": sink.url()}, prog, 136, np=2)
    [b] = reports(sink, 1, world_size=2)
    check(b["signal"] == "SIGFPE", f"signal {b['signal']!r}")
    inl, caller = frame_at(b, 0), frame_at(b, 1)
    fault, call = marker_line("lines_inline.f90", "LINES-FAULT"), marker_line("lines_inline.f90", "LINES-CALL")
    check(inl.get("inlined") is True and "ratio" in (inl.get("function") or ""),
          f"frame 0 is not the inlined ratio: {inl!r}")
    check((inl.get("file") or "").endswith("lines_inline.f90") and inl.get("line") == fault,
          f"frame 0 at {inl.get('file')}:{inl.get('line')}, expected lines_inline.f90:{fault}")
    check(inl.get("function_offset") is None, f"an inlined frame has function_offset {inl.get('function_offset')!r}")
    check(caller.get("inlined") is False and caller.get("offset") == inl.get("offset"),
          f"frame 1 is not the physical frame ratio was inlined into: {caller!r}")
    check((caller.get("file") or "").endswith("lines_inline.f90") and caller.get("line") == call,
          f"frame 1 ({caller.get('function')}) at {caller.get('file')}:{caller.get('line')}, expected lines_inline.f90:{call}")


@case
def lines_console_text(t):
    # The console panel shows "function (file:line)", a short path, and marks inlined frames.
    r = crash(t, ["1"], {"MPINOTIFY_URLS": "console://"}, t.paths.prog("lines_crash"), 139, np=2)
    want = f"store_at (progs/lines_crash.c:{marker_line('lines_crash.c', 'LINES-FAULT')})"
    check(any(want in line for line in r.lines("err")), f"the console panel does not show {want!r}")


# --- jobs that must stay untouched -----------------------------------------------

@case
def cxx_exceptions_preload(t):
    prog = t.paths.prog("cxx_exceptions", "no C++ compiler or MPI C++ support at configure time")
    sink = Sink(t)
    base = t.mpirun(2, prog, ["20000"], preload=False)
    r = t.mpirun(2, prog, ["20000"], env={"MPINOTIFY_URLS": sink.url()})
    check(base.rc == 0 and r.rc == 0, f"exit status {r.rc} with the library, {base.rc} without (both must be 0)")
    want = sorted(base.lines("out"))
    check(len([line for line in want if "checksum" in line]) == 2, "baseline did not print two checksum lines: test premise broken")
    check(sorted(r.lines("out")) == want, f"stdout under preload {sorted(r.lines('out'))} != without {want}")
    reports(sink, 0)


@case
def healthy(t):
    sink = Sink(t)
    r = t.mpirun(NP, t.paths.prog("mpi_crash"), env={"MPINOTIFY_URLS": sink.url()})
    check(r.rc == 0, f"healthy job exited {r.rc}")
    reports(sink, 0)


@case
def no_finalize(t):
    sink = Sink(t)
    crash(t, ["--no-finalize"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("mpi_crash"))
    reports(sink, 0)


@case
def preload_non_mpi_silent(t):
    # Processes that never call MPI_Init (shells, helpers) must stay silent under preload.
    sink = Sink(t)
    prog = t.paths.prog("plain_crash")
    env = {"MPINOTIFY_URLS": sink.url(), "LD_PRELOAD": t.paths.lib}
    base = t.run([prog], "direct baseline")
    r = t.run([prog], "direct preload", env)
    check(base.rc == -11 and r.rc == base.rc, f"direct run: status {r.rc} with preload, {base.rc} without (want -11)")
    check("mpinotify" not in r.err.lower(), "the library printed something in a non-MPI process")
    crash(t, [], {"MPINOTIFY_URLS": sink.url()}, prog, 139)
    reports(sink, 0)


@case
def signature_stable_solo(t):
    # Linked, never calls MPI: a world of one. Two processes (two ASLR layouts) of
    # the same binary and bug must give the same signature.
    sink = Sink(t)
    prog = t.paths.prog("solo_crash")
    runs = [t.run([prog], f"solo #{i}", {"MPINOTIFY_URLS": sink.url()}) for i in (1, 2)]
    for r in runs:
        check(r.rc == -11, f"solo_crash ended with {r.rc}, expected death by SIGSEGV (-11)")
    found = [re.search(r"pid (\d+) active (\d)", r.out) for r in runs]
    check(all(m and m[2] == "1" for m in found), "mpn_is_active() was not 1 at program start in a linked program")
    pids = [int(m[1]) for m in found]
    bodies = sorted(reports(sink, 2, world_size=1), key=lambda b: b["leader"]["pid"])
    for b in bodies:
        check(b["ranks"] == [0], f"ranks {b['ranks']} != [0]")
        check("bad_fn" in functions(b), f"bad_fn not among backtrace functions {functions(b)}")
    check(sorted(b["processes"][0]["pid"] for b in bodies) == sorted(pids), f"reported pids differ from the processes' {pids}")
    check(bodies[0]["signature"] == bodies[1]["signature"],
          f"signatures differ across processes: {bodies[0]['signature']} vs {bodies[1]['signature']}")


# --- configuration -----------------------------------------------------------------

@case
def election_fallback_per_node(t):
    """Without MPI_THREAD_MULTIPLE the ranks cannot elect; one node still sends one message, marked so."""
    sink = Sink(t)
    env = {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_MPI_THREAD": "keep"}
    crash(t, ["segv=1,3,6"], env, t.paths.prog("mpi_crash"), 139)
    [b] = reports(sink, 1, world_size=NP)   # every rank runs on this one node
    check(b["election"] == "failed", f"election {b['election']!r}, expected 'failed'")
    check("MPI_THREAD_MULTIPLE" in b.get("election_error", ""), f"election_error {b.get('election_error')!r} does not say why")
    check(len(b["ranks"]) == 1 and b["ranks"][0] in (1, 3, 6), f"ranks {b['ranks']}: the reporting rank alone")
    check(b["mpi_thread_level"] == "MPI_THREAD_SINGLE", f"mpi_thread_level {b['mpi_thread_level']!r}")


@case
def disable(t):
    sink = Sink(t)
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_DISABLE": "1"}, t.paths.prog("mpi_crash"), 139)
    reports(sink, 0)


@case
def bad_url(t):
    r = t.mpirun(NP, t.paths.prog("mpi_crash"), env={"MPINOTIFY_URLS": "webhook+http://[bad"})
    check(r.rc == 0, f"healthy job with a malformed URL exited {r.rc}")
    errs = [line for line in r.lines("err") if "mpinotify" in line.lower() and "url" in line.lower()]
    outs = [line for line in r.lines("out") if "mpinotify" in line.lower()]
    check(len(errs) == 1 and not outs, f"expected exactly one 'mpinotify ... URL' line on stderr (none on stdout), got {errs + outs}")


# The panel's first line, e.g. "=== mpinotify: SIGSEGV on 3 of 8 ranks (job x) ===".
CONSOLE_MARKER = re.compile(r"=== mpinotify: (\w+) on (\d+) of (\d+) ranks?\b")


@case
def signal_from_outside(t):
    # `kill -SEGV` from another process (a user, a batch system) is no fault: the report says
    # who sent it (sent_by_pid) and has no fault address, and every channel says "sent by pid N".
    sink = Sink(t)
    sent = {}

    ready = os.path.join(t.dir, "ready")

    def send_segv():   # once rank 2 is past MPI_Init (it wrote its pid), as a user's kill would
        for _ in range(1200):
            try:
                pid = int(open(f"{ready}.2").read())
            except (OSError, ValueError):
                time.sleep(0.05)
                continue
            os.kill(pid, signal.SIGSEGV)
            sent["pid"] = pid
            return

    killer = threading.Thread(target=send_segv)
    killer.start()
    r = t.mpirun(NP, t.paths.prog("mpi_events"), [f"ready={ready}", "sleep=20000"],
                 env={"MPINOTIFY_URLS": sink.url() + " console://"}, label="kill -SEGV rank 2")
    killer.join()
    check(sent.get("pid"), "rank 2's process was not found: test premise")
    check(r.rc != 0, f"the job exited {r.rc} after a rank got SIGSEGV")
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [2] and b["signal"] == "SIGSEGV", f"ranks {b['ranks']} signal {b['signal']!r}")
    check(b.get("sent_by_pid") == os.getpid(), f"sent_by_pid {b.get('sent_by_pid')!r}, expected this test's {os.getpid()}")
    check(b.get("fault_address") is None, f"fault_address {b.get('fault_address')!r} for a signal sent by a process")
    check(f"sent by pid {os.getpid()}" in r.err, "the console panel does not say who sent the signal")


@case
def console_panel(t):
    r = crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": "console://"}, t.paths.prog("mpi_crash"), 139)
    panels = [m for m in map(CONSOLE_MARKER.search, r.lines("err")) if m]
    check(len(panels) == 1, f"expected exactly one console panel (marker {CONSOLE_MARKER.pattern!r}), found {len(panels)}")
    check(panels[0].groups() == ("SIGSEGV", "3", "8"), f"panel header says {panels[0][0]!r}, expected SIGSEGV on 3 of 8")



# --- the rank's own words (rank_output, issue 13) -----------------------------------

def rank_output_job(t, args, env=None, np=4):
    sink = Sink(t)
    e = {"MPINOTIFY_URLS": sink.url()}
    e.update(env or {})
    base = t.mpirun(np, t.paths.prog("rank_output"), args, preload=False)
    check(base.rc == 139, f"baseline (no library) exit status {base.rc}, expected 139: test premise broken")
    r = t.mpirun(np, t.paths.prog("rank_output"), args, env=e)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    [b] = reports(sink, 1, world_size=np)
    return base, r, b


@case
def rank_output_words(t):
    # Rank 2 prints 41 "step N ok" lines, an ERROR line on stderr, then faults.
    _, r, b = rank_output_job(t, ["words", "2"])
    out = b.get("rank_output")
    check(isinstance(out, list) and len(out) == 20, f"rank_output {out!r} is not the last 20 lines")
    check(out[-1] == "ERROR: boom on rank 2", f"the last line of rank_output is {out[-1]!r}")
    check(out[-2] == "rank 2 step 41 ok", f"the line before the ERROR is {out[-2]!r}")
    steps = re.findall(r"rank 2 step (\d+) ok", r.out)
    check(steps == [str(i) for i in range(1, 42)], f"mpirun's output lost or reordered lines: {steps}")
    check("ERROR: boom on rank 2" in r.err, "the ERROR line is missing from mpirun's standard error")


@case
def rank_output_passthrough(t):
    # About 1 MB of numbered lines and a last line without a newline, then a fault: mpirun's
    # standard output has them byte for byte, as without the library.
    n = 24000
    base, r, b = rank_output_job(t, ["flood", "2", str(n)])
    want = "".join(f"rank 2 line {i:07d} of a long run of output\n" for i in range(n)) + "rank 2 partial last line"

    def rank2(out):   # mpirun may put another rank's one line anywhere in rank 2's stream, even mid-line
        for other in (0, 1, 3):
            out = out.replace(f"rank {other} started\n", "", 1)
        return out
    check(want in rank2(base.out), "test premise: the baseline's output does not hold the flood whole")
    check(want in rank2(r.out), f"mpirun's output differs from what rank 2 wrote ({len(r.out)} bytes, expected {len(want)}+)")
    out = b.get("rank_output") or []
    check(out[-1:] == ["rank 2 partial last line"], f"rank_output ends {out[-2:]!r}")


@case
def rank_output_off(t):
    on = t.mpirun(4, t.paths.prog("rank_output"), ["probe"], label="default")
    check(sorted(re.findall(r"ring (\w+) copiers (\d+)", on.out)) == [("yes", "1")] * 4,
          f"with the default, every rank has a ring and one copier: {on.out!r}")
    off = t.mpirun(4, t.paths.prog("rank_output"), ["probe"], env={"MPINOTIFY_RANK_OUTPUT": "0"}, label="off")
    check(sorted(re.findall(r"ring (\w+) copiers (\d+)", off.out)) == [("no", "0")] * 4,
          f"MPINOTIFY_RANK_OUTPUT=0 left a ring or a copier: {off.out!r}")
    _, r, b = rank_output_job(t, ["words", "2"], {"MPINOTIFY_RANK_OUTPUT": "0"})
    check(b.get("rank_output") is None, f"rank_output {b.get('rank_output')!r} with MPINOTIFY_RANK_OUTPUT=0")
    check(len(re.findall(r"rank 2 step \d+ ok", r.out)) == 41, "lines missing from mpirun's output")


@case
def rank_output_secret(t):
    secret, token = "s3cr3t-value-4711", "hf_abcdefghij0123456789"
    _, r, b = rank_output_job(t, ["secret", "2"], {"MPINOTIFY_SECRET_TEST": secret, "HF_TOKEN": token})
    out = b.get("rank_output") or []
    check(secret in r.err and token in r.err, "test premise: the rank did not print the secrets")
    check(out and out[-1] == "connecting with token *** and key *** to the store", f"rank_output {out!r}")
    check(not any(secret in line or token in line for line in out), f"a secret in rank_output: {out!r}")


if __name__ == "__main__":
    sys.exit(main())
