#!/usr/bin/env python3
"""mpinotify end-to-end scenarios. One CTest entry runs one case:

    python3 scenarios.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

Crash jobs are compared with a baseline run of the same job without the library:
the exit status must be the same. No check here measures time.
"""
import re
import ssl
import sys
import time
import urllib.error
import urllib.request

from harness import Sink, check, functions, main, reports

NP = 8
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def wait_for(pred, tries=50):
    """Poll for something another process writes asynchronously (not a timing check)."""
    for _ in range(tries):
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def crash(t, args, env, prog, expect_status=None):
    """Run a job without and with the library; the exit statuses must agree."""
    base = t.mpirun(NP, prog, args, preload=False)
    if expect_status is not None:
        check(base.rc == expect_status, f"baseline (no library) exit status {base.rc}, expected {expect_status}: test premise broken")
    r = t.mpirun(NP, prog, args, env=env)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return r


def raises(fn, exc):
    """The exception of type `exc` that fn() raised, or None."""
    try:
        fn()
    except exc as e:
        return e
    return None


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
def console_panel(t):
    r = crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": "console://"}, t.paths.prog("mpi_crash"), 139)
    panels = [m for m in map(CONSOLE_MARKER.search, r.lines("err")) if m]
    check(len(panels) == 1, f"expected exactly one console panel (marker {CONSOLE_MARKER.pattern!r}), found {len(panels)}")
    check(panels[0].groups() == ("SIGSEGV", "3", "8"), f"panel header says {panels[0][0]!r}, expected SIGSEGV on 3 of 8")


# --- delivery ----------------------------------------------------------------------

@case
def webhook_hang(t):
    # A webhook that never answers must not hang the job: it ends with its crash status.
    sink = Sink(t, mode="hang")
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_TIMEOUT_MS": "3000"}, t.paths.prog("mpi_crash"), 139)
    check(sink.posts(), "no request reached the hanging sink: the hang path was not exercised")


@case
def webhook_500(t):
    # Retries on 5xx are allowed, but they must all be the same report (no flood of others).
    sink = Sink(t, mode="500")
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url()}, t.paths.prog("mpi_crash"), 139)
    bodies = sink.bodies()
    check(bodies, "no request reached the sink")
    reports(sink, len(bodies), world_size=NP)
    check(len({b["signature"] for b in bodies}) == 1, "retries carried different signatures")


@case
def https_ok(t):
    tls = t.make_tls()
    sink = Sink(t, tls=tls)
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_CA_BUNDLE": tls["ca"]}, t.paths.prog("mpi_crash"), 139)
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [1, 3, 6], f"ranks {b['ranks']} != [1, 3, 6]")


@case
def https_wrong_ca(t):
    tls = t.make_tls()
    sink = Sink(t, tls=tls)
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_CA_BUNDLE": tls["wrong_ca"]}, t.paths.prog("mpi_crash"), 139)
    reports(sink, 0)
    check(wait_for(lambda: any(r.get("event") == "tls_error" for r in sink.records())),
          "no TLS handshake was attempted: the verification failure path was not exercised")


# --- mpinotify-run -----------------------------------------------------------------

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
def tool_status_healthy(t):
    base = tool_status(t, [])
    check(base.rc == 0, f"baseline healthy job exited {base.rc}")


@case
def tool_status_segv(t):
    base = tool_status(t, ["segv=1,3,6"], [1, 3, 6])
    check(base.rc == 139, f"baseline crash exited {base.rc}, expected 139")


@case
def tool_status_exit3(t):
    base = tool_status(t, ["--exit", "2:3"])
    check(base.rc != 0, "baseline with a rank exiting 3 exited 0: test premise broken")


@case
def tool_help(t):
    r = t.tool(["--help"], [])
    check(r.rc == 0, f"mpinotify-run --help exited {r.rc}")
    check("usage" in (r.out + r.err).lower(), "mpinotify-run --help printed no usage")


# --- the sink itself ---------------------------------------------------------------

@case
def sink_selftest(t):
    tls = t.make_tls()
    ok, e500, hang, sec = Sink(t, "ok"), Sink(t, "e500", "500"), Sink(t, "hang", "hang"), Sink(t, "tls", tls=tls)

    def post(sink, data, ctx=None, timeout=10):
        req = urllib.request.Request(f"{sink.scheme}://127.0.0.1:{sink.port}/p", data=data,
                                     headers={"Content-Type": "application/json"})
        return urllib.request.urlopen(req, timeout=timeout, context=ctx)

    check(post(ok, b'{"a": 1}').status == 200, "mode ok did not answer 200")
    post(ok, b"not json")
    check([p["body"] for p in ok.posts()] == [{"a": 1}, "not json"], "bodies not recorded as JSON / raw text")
    check(all(p["path"] == "/p" and p["headers"].get("Content-Type") == "application/json" for p in ok.posts()),
          "path or headers not recorded")
    e = raises(lambda: post(e500, b"{}"), urllib.error.HTTPError)
    check(e is not None and e.code == 500 and len(e500.posts()) == 1, f"mode 500: answer {e!r}, {len(e500.posts())} recorded")
    e = raises(lambda: post(hang, b"{}", timeout=2), (TimeoutError, urllib.error.URLError))
    check(e is not None and len(hang.posts()) == 1, "mode hang answered, or did not record the request")
    check(post(sec, b'{"tls": 1}', ssl.create_default_context(cafile=tls["ca"])).status == 200, "https with the test CA failed")
    e = raises(lambda: post(sec, b"{}", ssl.create_default_context(cafile=tls["wrong_ca"])), urllib.error.URLError)
    check(e is not None, "https verified with the wrong CA")
    check([p["body"] for p in sec.posts()] == [{"tls": 1}], "https POST not recorded exactly once")
    check(wait_for(lambda: any(r.get("event") == "tls_error" for r in sec.records())), "failed handshake not recorded")


if __name__ == "__main__":
    sys.exit(main(CASES))
