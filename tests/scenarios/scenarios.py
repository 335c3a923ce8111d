#!/usr/bin/env python3
"""mpinotify end-to-end scenarios. One CTest entry runs one case:

    python3 scenarios.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

Crash jobs are compared with a baseline run of the same job without the library:
the exit status must be the same. No check here measures time.
"""
import base64
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

from harness import Sink, check, check_event, check_report, fail, free_port, functions, main, reports, skip

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


# --- delivery engine: retries, rate limits, spool, relay (issue 3) -----------------
#
# A job that crashes is given a budget (MPINOTIFY_TIMEOUT_MS) from the fault to the end
# of its handling. The bounds on elapsed time below are hang checks (budget + 30 s), never
# benchmarks; the only lower bounds are those a limiter or Retry-After guarantees.

SLACK_S = 30


def crash_timed(t, env, args=("segv=1,3,6",), expect_status=139):
    """crash() on mpi_crash, then checks the job ended within its budget (hang check)."""
    r = crash(t, list(args), env, t.paths.prog("mpi_crash"), expect_status)
    budget_s = int(env.get("MPINOTIFY_TIMEOUT_MS", "10000")) / 1000
    check(r.elapsed < budget_s + SLACK_S,
          f"the job ran {r.elapsed:.1f} s, beyond its budget {budget_s} s + {SLACK_S} s: the channel held it")
    return r


def one_accepted(sink, n_posts):
    """Exactly `n_posts` POSTs (the retries), the last one the only accepted, all the same message."""
    posts = sink.posts()
    check(len(posts) == n_posts, f"expected exactly {n_posts} POSTs (failed attempts, then one accepted), got {len(posts)}")
    ok = sink.accepted()
    check(len(ok) == 1 and ok[0] == posts[-1],
          f"expected exactly one accepted POST, the last; statuses {[p['status'] for p in posts]}, accepted {len(ok)}")
    bodies = [json.dumps(p["body"], sort_keys=True) for p in posts]
    check(len(set(bodies)) == 1, "the retries did not carry the same message (bodies differ)")
    return posts


def no_spooled(t, why, spool=None):
    left = t.spooled(spool)
    check(not left, f"{why}: {len(left)} message(s) left in the spool: {[m['_file'] for m in left]}")


def retry_crash(t, script):
    sink = Sink(t, script=script)
    crash_timed(t, {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_TIMEOUT_MS": "15000"})
    posts = one_accepted(sink, len(script) + 1)
    for p in posts:
        check_report(p["body"], NP)
    check(posts[-1]["body"]["ranks"] == [1, 3, 6], f"ranks {posts[-1]['body']['ranks']} != [1, 3, 6]")
    no_spooled(t, "delivered, yet")
    return posts


@case
def retry_500(t):
    retry_crash(t, [{"status": 500}, {"status": 503}])


@case
def retry_429(t):
    # Retry-After: 2 is longer than any first backoff: the gap shows the header was honoured.
    posts = retry_crash(t, [{"status": 429, "headers": {"Retry-After": "2"}, "body": {"error": "slow down"}}])
    gap = posts[1]["time"] - posts[0]["time"]
    check(gap >= 1.9, f"the retry came {gap:.2f} s after a 429 with Retry-After: 2")


@case
def retry_429_json(t):
    # The same with the JSON body's retry_after (seconds), through mpinotify-send.
    sink = Sink(t, script=[{"status": 429, "body": {"retry_after": 2}}])
    r = t.send(["--url", sink.url(), "--title", "retry json", "--message", "m"], {"MPINOTIFY_TIMEOUT_MS": "15000"})
    check(r.rc == 0, f"mpinotify-send exited {r.rc} although the second attempt was accepted")
    posts = one_accepted(sink, 2)
    check(posts[0]["body"].get("event") == "message" and posts[0]["body"].get("title") == "retry json",
          f"body {posts[0]['body']!r} is not the message sent")
    gap = posts[1]["time"] - posts[0]["time"]
    check(gap >= 1.9, f"the retry came {gap:.2f} s after a 429 with retry_after 2 in the body")
    no_spooled(t, "delivered, yet")


@case
def retry_body_error(t):
    # DingTalk answers HTTP 200 with a non-zero errcode on errors: that is a failure, retried.
    script = [{"status": 200, "body": {"errcode": 130101, "errmsg": "send too fast"}}]
    sink = Sink(t, script=script)
    url = sink.url("/robot/send?access_token=tok123", kind="dingtalk")
    crash_timed(t, {"MPINOTIFY_URLS": url, "MPINOTIFY_TIMEOUT_MS": "15000"})
    posts = one_accepted(sink, 2)
    for p in posts:
        check(p["path"] == "/robot/send?access_token=tok123", f"DingTalk request path {p['path']!r}")
        b = p["body"]
        check(isinstance(b, dict) and b.get("msgtype") in ("markdown", "text", "actionCard"),
              f"not a DingTalk robot message: {b!r}")
        check("SIGSEGV" in json.dumps(b), "the DingTalk message does not say SIGSEGV")
    no_spooled(t, "delivered, yet")


def spool_messages(t, url, n, title="m"):
    """Send `n` messages to a channel that refuses; each must end in the spool."""
    for i in range(n):
        r = t.send(["--url", url, "--title", f"{title}{i}", "--message", f"body {i}"],
                   {"MPINOTIFY_TIMEOUT_MS": "1500"}, label=f"send {title}{i} (refused)")
        check(r.rc != 0, "mpinotify-send exited 0 although its only channel refused the connection")
        check(len(t.spooled()) == i + 1, f"after {i + 1} undelivered message(s) the spool holds {len(t.spooled())}")


@case
def rate_limit(t):
    port = free_port()
    url = f"webhook+http://127.0.0.1:{port}/hook?rate=2/s"
    spool_messages(t, url, 5)
    sink = Sink(t, port=port)
    r = t.send(["--flush"], label="flush")
    check(r.rc == 0, f"flush exited {r.rc} with a healthy sink")
    posts = sink.posts()
    titles = sorted(p["body"].get("title") for p in posts if isinstance(p["body"], dict))
    check(len(posts) == 5 and titles == [f"m{i}" for i in range(5)], f"flush delivered {titles}, want m0..m4 once each")
    check(all(p["path"] == "/hook" for p in posts), f"option rate= was forwarded: paths {[p['path'] for p in posts]}")
    # rate=2/s is a sliding window: at most 2 sends START in any second, so any 3 consecutive
    # arrivals span about a second. The sink sees arrivals, not starts: a loaded machine (the
    # sanitizer build at -j2) can delay one arrival by a few hundred ms, hence 0.6 s. Without the
    # limiter all five arrive within milliseconds.
    times = sorted(p["time"] for p in posts)
    spans = [c - a for a, c in zip(times, times[2:])]
    check(min(spans) >= 0.6, f"rate=2/s, yet 3 consecutive messages arrived within {min(spans):.3f} s "
                             f"(gaps {['%.3f' % (b - a) for a, b in zip(times, times[1:])]} s)")
    no_spooled(t, "after a successful flush")


def flush_delivers(t, port, spooled, env=None, tls=None):
    """The sink is healthy again on `port`: one flush delivers the spooled crash, a second sends nothing."""
    sink = Sink(t, "healthy", port=port, tls=tls)
    r = t.send(["--flush"], env, label="flush #1")
    check(r.rc == 0, f"flush exited {r.rc} with the sink healthy again")
    check(len(r.lines("out")) >= 1, "flush printed no line for the message it delivered")
    [b] = reports(sink, 1, world_size=NP)
    check(b["id"] == spooled["message"]["id"], f"delivered id {b['id']!r} != spooled id {spooled['message']['id']!r}")
    check(b["ranks"] == [1, 3, 6], f"ranks {b['ranks']} != [1, 3, 6]")
    no_spooled(t, "after a successful flush")
    r2 = t.send(["--flush"], env, label="flush #2")
    check(r2.rc == 0, f"second flush of an empty spool exited {r2.rc}")
    check(len(sink.posts()) == 1, f"the second flush sent {len(sink.posts()) - 1} more request(s)")
    return sink


def spooled_crash(t, url):
    """Exactly one undelivered crash message, for `url`, in the spool."""
    msgs = t.spooled()
    check(len(msgs) == 1, f"expected the crash message in the spool (1 *.msg), found {len(msgs)}")
    m = msgs[0]
    check(m["message"].get("event") == "crash" and m["message"].get("ranks") == [1, 3, 6],
          f"spooled message is not the crash of ranks [1, 3, 6]: {m['message'].get('event')!r} {m['message'].get('ranks')!r}")
    check(m["channel"] == url, f"spooled channel {m['channel']!r} != configured {url!r}")
    return m


@case
def spool_down_flush(t):
    t.need_send()
    port = free_port()
    url = f"webhook+http://127.0.0.1:{port}/hook"
    crash_timed(t, {"MPINOTIFY_URLS": url, "MPINOTIFY_TIMEOUT_MS": "4000"})
    flush_delivers(t, port, spooled_crash(t, url))


@case
def spool_slow_flush(t):
    t.need_send()
    slow = Sink(t, "slow", "slow", delay=60)
    crash_timed(t, {"MPINOTIFY_URLS": slow.url(), "MPINOTIFY_TIMEOUT_MS": "3000"})
    check(slow.posts(), "no request reached the slow sink: the slow path was not exercised")
    m = spooled_crash(t, slow.url())
    slow.stop()
    flush_delivers(t, slow.port, m)


@case
def spool_500_flush(t):
    t.need_send()
    failing = Sink(t, "failing", "500")
    crash_timed(t, {"MPINOTIFY_URLS": failing.url(), "MPINOTIFY_TIMEOUT_MS": "4000"})
    check(failing.posts(), "no request reached the failing sink")
    check(not failing.accepted(), "the failing sink accepted something")
    m = spooled_crash(t, failing.url())
    failing.stop()
    flush_delivers(t, failing.port, m)


@case
def spool_tls_flush(t):
    t.need_send()
    tls = t.make_tls()
    sink = Sink(t, "tls", tls=tls)
    crash_timed(t, {"MPINOTIFY_URLS": sink.url(), "MPINOTIFY_CA_BUNDLE": tls["wrong_ca"], "MPINOTIFY_TIMEOUT_MS": "4000"})
    reports(sink, 0)
    check(wait_for(lambda: any(r.get("event") == "tls_error" for r in sink.records())),
          "no TLS handshake was attempted: the verification failure path was not exercised")
    m = spooled_crash(t, sink.url())
    r = t.send(["--flush"], {"MPINOTIFY_CA_BUNDLE": tls["wrong_ca"], "MPINOTIFY_TIMEOUT_MS": "3000"}, label="flush (wrong CA)")
    check(r.rc != 0, "flush with the wrong CA exited 0")
    reports(sink, 0)
    check(len(t.spooled()) == 1, f"a failed flush changed the spool: {len(t.spooled())} message(s)")
    sink.stop()
    flush_delivers(t, sink.port, m, {"MPINOTIFY_CA_BUNDLE": tls["ca"]}, tls=tls)


@case
def relay_refused_direct(t):
    # The ranks' direct route goes through a proxy that refuses (port 9, nothing listens);
    # the launcher's does not. The ranks keep their own spool, so the launcher's end-of-job
    # flush cannot be what delivers: only the relay can. A first run with the relay off
    # shows the premise: the direct route really fails and the message stays with the ranks.
    sink = Sink(t)
    refusing = "http://127.0.0.1:9"

    def job(label, extra):
        rank_spool = os.path.join(t.dir, label + "-spool")
        os.mkdir(rank_spool, 0o700)
        launcher = ["mpirun", "--oversubscribe", "-np", str(NP), "-x", f"http_proxy={refusing}",
                    "env", f"http_proxy={refusing}", f"HTTP_PROXY={refusing}", f"MPINOTIFY_SPOOL={rank_spool}", *extra,
                    t.paths.prog("mpi_crash"), "segv=1,3,6"]
        r = t.tool(["--url", sink.url()], launcher, {"MPINOTIFY_TIMEOUT_MS": "10000", "MPINOTIFY_JOB_EVENTS": "none"},
                   label=label)
        check(r.rc == 139, f"[{label}] mpinotify-run exited {r.rc}, expected the crash status 139")
        check(r.elapsed < 10 + SLACK_S, f"[{label}] the job ran {r.elapsed:.1f} s")
        return rank_spool

    rank_spool = job("relay-off", ["MPINOTIFY_RELAY=off"])
    check(not sink.posts(), "with MPINOTIFY_RELAY=off the report still arrived: the ranks' direct route "
                            "was not blocked by the refusing proxy, so this test cannot show the relay")
    check(len(t.spooled(rank_spool)) == 1, "with the relay off the undelivered report is not in the ranks' spool")
    rank_spool = job("relay-auto", [])
    [b] = reports(sink, 1, world_size=NP)
    check(b["ranks"] == [1, 3, 6], f"ranks {b['ranks']} != [1, 3, 6]")
    no_spooled(t, "relayed and delivered, yet the ranks' spool", rank_spool)
    no_spooled(t, "relayed and delivered, yet the launcher's spool")


@case
def relay_forged(t):
    # Forged, garbage, altered, stale and replayed frames get 403 and deliver nothing; one
    # genuine frame (sealed with the job's key) is delivered, so the relay is not refusing all.
    sink = Sink(t)
    forge = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay_forge.py")
    genuine = sink.url("/genuine")
    r = t.tool(["--url", sink.url("/configured")], [sys.executable, forge, genuine],
               {"MPINOTIFY_TIMEOUT_MS": "4000", "MPINOTIFY_JOB_EVENTS": "none"})
    check(r.rc == 0, f"the forging job (exit 0 only when every forged frame got HTTP 403) ended with {r.rc}")
    forged = [line for line in r.lines("out") if line.startswith("forged ")]
    check(len(forged) >= 3 and all(line.endswith(" 403") for line in forged), f"forge results: {forged}")
    have_key = any(line.startswith("genuine ") for line in r.lines("out"))
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401  (what relay_forge.py seals with)
        check(have_key, "no genuine frame was tried: MPINOTIFY_RELAY_KEY was not 64 hex digits in the job")
    except ImportError:
        pass  # only random-content frames: the genuine/replay half is not run
    posts = sink.posts()
    want = ["/genuine"] if have_key else []
    check([p["path"] for p in posts] == want, f"the sink received {[p['path'] for p in posts]}, expected {want}: "
                                              "a forged or replayed frame was delivered, or the genuine one was not")
    if have_key:
        check(posts[0]["body"].get("title") == "genuine", f"delivered {posts[0]['body']!r}, not the genuine message")


@case
def relay_concurrent(t):
    # Clients that connect and stall do not hold the others: while 20 connections sit on half a
    # request, 160 hellos and 40 relayed messages from 40 concurrent clients are all accepted,
    # every hello is counted (the "started" message) and every message delivered; the stalled
    # connections are answered 408 at their deadline. Outcomes only: no timing is asserted.
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401  (what relay_flood.py seals with)
    except ImportError:
        skip("the Python cryptography module is needed to seal frames")
    sink = Sink(t)
    flood = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay_flood.py")
    r = t.tool(["--url", sink.url("/job")], [sys.executable, flood, sink.url("/relayed")],
               {"MPINOTIFY_TIMEOUT_MS": "20000"})
    out = r.lines("out")
    valid = [line.split() for line in out if line.startswith("valid ")]
    stalled = [line.split() for line in out if line.startswith("stalled ")]
    check(len(valid) == 200 and all(v[3] == "200" for v in valid),
          f"{len(valid)} valid frames, not all answered 200: {[' '.join(v) for v in valid if v[3] != '200'][:20]}")
    check(len(stalled) == 20 and all(s[3] == "408" for s in stalled),
          f"stalled connections' answers (each should be 408): {[' '.join(s) for s in stalled]}")
    check(r.rc == 0, f"the flooding job (exit 0 only when every answer was as expected) ended with {r.rc}")
    jobs = [p["body"] for p in sink.posts() if p["path"] == "/job"]
    started = [b for b in jobs if b.get("status") == "started"]
    check(len(started) == 1, f"expected one started message, got {[b.get('status') for b in jobs]}")
    s = started[0]
    check(s.get("ranks_armed") == 160 and s.get("world_size") == 160 and s.get("ranks") == list(range(160)),
          f"started: ranks_armed {s.get('ranks_armed')!r} of world_size {s.get('world_size')!r}, "
          f"ranks {s.get('ranks')!r}: hellos were lost")
    relayed = sorted(p["body"].get("title", "") for p in sink.posts() if p["path"] == "/relayed")
    want = sorted(f"flood {n}" for n in range(40))
    check(relayed == want, f"relayed messages delivered: {relayed}, expected {want}")


# -- secrets -----------------------------------------------------------------------

def secret_values(n):
    """Distinct random values: long enough that any 12-character window is unmistakable."""
    return [os.urandom(12).hex() for _ in range(n)]


def leaks(text, secrets):
    """The secrets of which `text` shows any 12 consecutive characters."""
    return [s for s in secrets if any(s[i:i + 12] in text for i in range(len(s) - 11))]


@case
def secrets_never_shown(t):
    t.need_send()
    ok, e500 = Sink(t, "ok"), Sink(t, "e500", "500")
    refused = free_port()
    names = ["pw_a", "hdr_a", "sign_a", "tok_b", "sec_b", "tok_c", "sec_c", "hdr_d",
             "cfg_tok", "cfg_sec", "cfg_sign", "cfg_pw", "pw_g", "hdr_g", "tok_h", "tok_i", "tok_list"]
    S = dict(zip(names, secret_values(len(names))))

    def secret_file(name, value):
        path = os.path.join(t.dir, name)
        with open(path, "w") as f:
            f.write(value + "\n")  # the trailing newline is stripped
        os.chmod(path, 0o600)
        return path

    P, P5 = ok.port, e500.port
    urls = [
        # userinfo password, a header value and a signing secret, inline
        f"webhook+http://alice:{S['pw_a']}@127.0.0.1:{P}/a-hook?header=X-Api-Key:{S['hdr_a']}&secret={S['sign_a']}",
        # query value from env:, signing secret from file:
        f"dingtalk+http://127.0.0.1:{P}/robot/send?access_token=env:MPNT_TOK_B&secret=file:{secret_file('sec_b', S['sec_b'])}",
        # a whole channel from env: (path token and secret inside)
        "env:MPNT_CHAN_C",
        # a whole channel from file:
        "file:" + secret_file("chan_d", f"webhook+http://127.0.0.1:{P}/d-hook?header=X-Api-Key:{S['hdr_d']}"),
        # failing channels: refused, 500
        f"webhook+http://bob:{S['pw_g']}@127.0.0.1:{refused}/g-hook?header=X-Api-Key:{S['hdr_g']}",
        f"feishu+http://127.0.0.1:{P5}/open-apis/bot/v2/hook/{S['tok_h']}",
    ]
    # a bad option: a configuration error line naming the channel. mpinotify-send refuses to
    # send anything then (exit 2), so it gets this channel only in one run of its own.
    bad = f"dingtalk+http://127.0.0.1:{P}/robot/send?access_token={S['tok_i']}&rate=bogus"
    config = os.path.join(t.dir, "mpinotify.ini")
    with open(config, "w") as f:
        f.write(f"""[mpinotify]
timeout_ms = 4000

[channel cfgding]
url = dingtalk+http://127.0.0.1:{P}/robot/send?access_token=env:MPNT_CFG_TOK
secret = file:{secret_file('cfg_sec', S['cfg_sec'])}

[channel cfghook]
url = webhook+http://carol:{S['cfg_pw']}@127.0.0.1:{P}/f-hook
secret = env:MPNT_CFG_SIGN
""")
    env = {
        "MPINOTIFY_URLS": " ".join(urls), "MPINOTIFY_CONFIG": config, "MPINOTIFY_DEBUG": "1",
        "MPINOTIFY_TIMEOUT_MS": "4000",
        "MPNT_TOK_B": S["tok_b"], "MPNT_CFG_TOK": S["cfg_tok"], "MPNT_CFG_SIGN": S["cfg_sign"],
        "MPNT_CHAN_C": f"feishu+http://127.0.0.1:{P}/open-apis/bot/v2/hook/{S['tok_c']}?secret={S['sec_c']}",
    }
    env_bad = dict(env, MPINOTIFY_URLS=env["MPINOTIFY_URLS"] + " " + bad)
    secrets = list(S.values())
    runs = [crash_timed(t, env_bad)]
    launcher = t.mpirun_cmd(NP, t.paths.prog("mpi_crash"), ["segv=1,3,6"], preload=False)
    runs.append(t.tool(["--url", f"webhook+http://127.0.0.1:{P}/run-hook?header=X-Api-Key:{S['tok_list']}"],
                       launcher, env_bad, label="mpinotify-run"))
    check(runs[-1].rc == 139, f"mpinotify-run exited {runs[-1].rc}, expected 139")
    for r in runs:
        errs = [line for line in r.lines("err") if "rate" in line and "bogus" in line]
        check(errs, f"job [{r.label}]: no configuration error line for the channel with rate=bogus")
    runs.append(t.send(["--test"], env_bad, label="mpinotify-send --test (bad option)"))
    check(runs[-1].rc == 2, f"mpinotify-send --test with a bad option exited {runs[-1].rc}, expected 2")
    for args in (["--test"], ["--list"], ["--flush"],
                 ["--url", f"webhook+http://dave:{S['pw_g']}@127.0.0.1:{refused}/x?header=X-Api-Key:{S['hdr_g']}",
                  "--title", "t", "--message", "m"]):
        runs.append(t.send(args, env, label="mpinotify-send " + args[-1]))
    check(any(line.startswith("FAILED ") for line in runs[-4].lines("out")),
          "mpinotify-send --test printed no FAILED line although two channels fail")
    for r in runs:
        for stream, text in (("stdout", r.out), ("stderr", r.err)):
            shown = leaks(text, secrets)
            check(not shown, f"job [{r.label}] {stream} shows secret(s) {[n for n in names if S[n] in shown]}")
    for sink in (ok, e500):
        for rec in sink.records():
            shown = leaks(json.dumps(rec.get("body")), secrets)
            check(not shown, f"a message body at sink {sink.name} ({rec.get('path')}) holds secret(s) "
                             f"{[n for n in names if S[n] in shown]}")
    # Each working channel got its secrets resolved and used: the checks above are not vacuous.
    # Every missing use is listed, not only the first.
    recs, missing = ok.posts(), []

    def at(pred, what):
        hits = [r for r in recs if pred(r)]
        if not hits:
            missing.append(what)
        return hits

    def hdr(r, k):
        return {a.lower(): b for a, b in r["headers"].items()}.get(k.lower(), "")

    def signed_query(r):
        return "&timestamp=" in r["path"] and "&sign=" in r["path"]

    a = at(lambda r: r["path"] == "/a-hook", "the inline webhook (path /a-hook, options not forwarded)")
    if a and not any(hdr(r, "X-Api-Key") == S["hdr_a"] for r in a):
        missing.append("the inline webhook's header=X-Api-Key:... was not sent")
    basic = "Basic " + base64.b64encode(f"alice:{S['pw_a']}".encode()).decode()
    if a and not any(hdr(r, "Authorization") == basic for r in a):
        missing.append("the inline webhook's userinfo password was not sent as basic auth")
    at(lambda r: r["path"].startswith(f"/robot/send?access_token={S['tok_b']}"),
       "dingtalk with access_token=env:NAME (resolved token in the query)")
    at(lambda r: (S["tok_b"] in r["path"] or "MPNT_TOK_B" in r["path"]) and signed_query(r),
       "dingtalk with secret=file:... (timestamp and sign in the query)")
    at(lambda r: r["path"] == f"/open-apis/bot/v2/hook/{S['tok_c']}", "the whole channel from env: (feishu)")
    at(lambda r: r["path"] == f"/open-apis/bot/v2/hook/{S['tok_c']}" and isinstance(r["body"], dict)
       and r["body"].get("sign") and r["body"].get("timestamp"), "feishu with secret= (timestamp and sign in the body)")
    d = at(lambda r: r["path"] == "/d-hook", "the whole channel from file:")
    if d and not any(hdr(r, "X-Api-Key") == S["hdr_d"] for r in d):
        missing.append("the file: channel's header was not sent")
    at(lambda r: r["path"].startswith(f"/robot/send?access_token={S['cfg_tok']}"),
       "the config file's dingtalk channel (access_token=env:NAME resolved)")
    at(lambda r: (S["cfg_tok"] in r["path"] or "MPNT_CFG_TOK" in r["path"]) and signed_query(r),
       "the config file's dingtalk channel signed with secret = file:...")
    f = at(lambda r: r["path"] == "/f-hook", "the config file's webhook channel")
    basic = "Basic " + base64.b64encode(f"carol:{S['cfg_pw']}".encode()).decode()
    if f and not any(hdr(r, "Authorization") == basic for r in f):
        missing.append("the config file's webhook userinfo password was not sent as basic auth")
    if not e500.posts():
        missing.append("the failing (500) channel was never tried")
    if any(S["tok_i"] in r["path"] for r in recs):
        missing.append("the channel with a bad option (rate=bogus) was used anyway")
    check(not missing, "no secret was shown, but these ways of configuring one were not used as configured: "
                       + "; ".join(missing))


# -- mpinotify-send --test ------------------------------------------------------------

def fails_to_resolve_fast(host):
    start = time.monotonic()
    try:
        socket.getaddrinfo(host, 80)
    except socket.gaierror:
        return time.monotonic() - start < 2
    return False


@case
def send_test_mixed(t):
    tls, other = t.make_tls(), t.make_tls("tls_other")
    ok, feishu, e500 = Sink(t, "ok"), Sink(t, "feishu"), Sink(t, "e500", "500")
    slow = Sink(t, "slow", "slow", delay=60)
    errc = Sink(t, "errcode", script=[{"status": 200, "body": {"errcode": 310000, "errmsg": "keywords not in content"}}] * 50)
    https_ok, https_bad = Sink(t, "https_ok", tls=tls), Sink(t, "https_bad", tls=other)
    refused = free_port()
    token = secret_values(1)[0]
    channels = [  # (url, expected outcome, reason pattern, key to find its line)
        (ok.url("/hook"), "ok", None, f":{ok.port}/"),
        (feishu.url("/open-apis/bot/v2/hook/abc", kind="feishu"), "ok", None, f":{feishu.port}/"),
        (https_ok.url(), "ok", None, f":{https_ok.port}/"),
        (e500.url(), "FAILED", r"HTTP 500", f":{e500.port}/"),
        (f"webhook+http://127.0.0.1:{refused}/hook", "FAILED", r"(?i)connect|refused", f":{refused}/"),
        (errc.url(f"/robot/send?access_token={token}", kind="dingtalk"), "FAILED", r"errcode 310000", f":{errc.port}/"),
        (https_bad.url(), "FAILED", r"(?i)TLS|certificate|SSL", f":{https_bad.port}/"),
        (slow.url("/hook?timeout_ms=1500"), "FAILED", r"(?i)time", f":{slow.port}/"),
    ]
    if fails_to_resolve_fast("mpinotify-test.invalid"):  # else a resolver that hangs would make it a timeout
        channels.append(("webhook+http://mpinotify-test.invalid/hook", "FAILED", r"(?i)resolve|DNS", "mpinotify-test.invalid"))
    else:
        print("note: mpinotify-test.invalid does not fail to resolve within 2 s here: no unresolvable channel")
    args = [a for url, *_ in channels for a in ("--url", url)] + ["--test"]
    r = t.send(args, {"MPINOTIFY_CA_BUNDLE": tls["ca"], "MPINOTIFY_TIMEOUT_MS": "6000"}, label="--test (mixed)")
    check(r.rc == 1, f"--test with failing channels exited {r.rc}, expected 1")
    lines = [line for line in r.lines("out") if line.startswith(("ok ", "FAILED "))]
    check(len(lines) == len(channels), f"expected {len(channels)} result lines, got {len(lines)}: {lines}")
    for url, outcome, reason, key in channels:
        mine = [line for line in lines if key in line]
        check(len(mine) == 1, f"expected one line for {url} (containing {key!r}), got {mine}")
        check(mine[0].startswith(outcome + " "), f"{url}: line {mine[0]!r} does not start with {outcome!r}")
        if reason:
            check(re.search(reason, mine[0]), f"{url}: line {mine[0]!r} does not give the reason /{reason}/")
    check(token not in r.out + r.err, "the DingTalk access token is shown in the output")
    test_bodies = [b for b in ok.bodies() + https_ok.bodies() if isinstance(b, dict) and b.get("event") == "test"]
    check(len(ok.posts()) == 1 and len(https_ok.posts()) == 1 and len(feishu.posts()) == 1 and len(test_bodies) == 2,
          "each working channel did not get exactly one test message (webhooks: event \"test\")")
    r = t.send(["--url", ok.url("/again"), "--test"], label="--test (all ok)")
    check(r.rc == 0, f"--test with only working channels exited {r.rc}")
    check([line.split()[0] for line in r.lines("out") if line.startswith(("ok ", "FAILED "))] == ["ok"],
          f"--test with one working channel printed {r.lines('out')}")
    r = t.send(["--no-such-option"], label="bad usage")
    check(r.rc == 2, f"mpinotify-send --no-such-option exited {r.rc}, expected 2 (usage error)")


@case
def proxy_honoured(t):
    proxy = Sink(t, "proxy")
    r = t.send(["--url", "webhook+http://example.invalid/hook", "--title", "via proxy", "--message", "m"],
               {"http_proxy": f"http://127.0.0.1:{proxy.port}", "MPINOTIFY_TIMEOUT_MS": "5000"})
    check(r.rc == 0, f"mpinotify-send through the proxy exited {r.rc}")
    posts = proxy.posts()
    check(len(posts) == 1 and posts[0]["path"] == "http://example.invalid/hook",
          f"the proxy saw {[p['path'] for p in posts]}, expected one POST for http://example.invalid/hook")
    check(isinstance(posts[0]["body"], dict) and posts[0]["body"].get("title") == "via proxy", "the proxied body is not the message")


# --- the sink itself ---------------------------------------------------------------

@case
def sink_selftest(t):
    tls = t.make_tls()
    ok, e500, hang, sec = Sink(t, "ok"), Sink(t, "e500", "500"), Sink(t, "hang", "hang"), Sink(t, "tls", tls=tls)

    def post(sink, data, ctx=None, timeout=10, path="/p"):
        req = urllib.request.Request(f"{sink.scheme}://127.0.0.1:{sink.port}{path}", data=data,
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

    # Scripted answers in order, then the mode; each record carries the status served.
    port = free_port()
    e = raises(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5), urllib.error.URLError)
    check(e is not None, f"free_port() {port} is not free")
    script = [{"status": 500}, {"status": 429, "headers": {"Retry-After": "1"}},
              {"status": 200, "body": {"errcode": 130101, "errmsg": "send too fast"}}]
    sc = Sink(t, "script", port=port, script=script)
    check(sc.port == port, f"--port {port}: the sink bound {sc.port}")

    def answer(path, data=b"{}"):
        try:
            r = post(sc, data, path=path)
            return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as he:
            return he.code, dict(he.headers), json.loads(he.read() or b"null")

    got = [answer("/robot/send?access_token=x") for _ in range(5)] + [answer("/open-apis/bot/v2/hook/x"), answer("/p")]
    want = [500, 429, 200, 200, 200, 200, 200]
    check([g[0] for g in got] == want, f"scripted statuses {[g[0] for g in got]} != {want}")
    check(got[1][1].get("Retry-After") == "1", f"scripted header not served: {got[1][1]}")
    check(got[2][2] == {"errcode": 130101, "errmsg": "send too fast"}, f"scripted body {got[2][2]!r}")
    check(got[3][2] == {"errcode": 0, "errmsg": "ok"}, f"mode ok on /robot/send answered {got[3][2]!r}")
    check(got[5][2] == {"code": 0, "msg": "success"}, f"mode ok on /open-apis/ answered {got[5][2]!r}")
    check(got[6][2] == {"ok": True}, f"mode ok on /p answered {got[6][2]!r}")
    recs = sc.posts()
    check([r["status"] for r in recs] == want, f"recorded statuses {[r['status'] for r in recs]} != {want}")
    check(len(sc.accepted()) == 4, f"accepted() counted {len(sc.accepted())} of 7 (want 4: errcode 130101 is a failure)")
    times = [r["time"] for r in recs]
    check(times == sorted(times), "receive times are not in order")
    slow = Sink(t, "slow", "slow", delay=1.5)
    start = time.time()
    check(post(slow, b"{}").status == 200, "mode slow did not answer 200")
    check(time.time() - start >= 1.4, "mode slow answered before its --delay")
    e = raises(lambda: post(slow, b"{}", timeout=0.5), (TimeoutError, urllib.error.URLError))
    check(e is not None and len(slow.posts()) == 2, "mode slow answered within 0.5 s, or did not record")
    check(hang.posts()[0]["status"] is None, "mode hang recorded a status it never served")


# -- a channel kind of the program's own ----------------------------------------------

@case
def custom_channel_crash(t):
    # A linked program registers "memo" before MPI_Init; MPINOTIFY_URLS names a memo:// channel.
    # Its crash is reported once, through the program's function, with a spooled copy removed after.
    memo = os.path.join(t.dir, "memo.jsonl")
    prog = t.paths.prog("custom_channel")
    base = t.mpirun(NP, prog, ["1,3,6"], preload=False, env={"MPINOTIFY_DISABLE": "1"})
    r = t.mpirun(NP, prog, ["1,3,6"], preload=False, env={"MPINOTIFY_URLS": f"memo://{memo}"})
    check(r.rc == base.rc == 139, f"exit status {r.rc} with the memo channel, {base.rc} disabled (want 139)")
    check(os.path.exists(memo), "the memo channel's function was never called")
    with open(memo) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    check(len(lines) == 1, f"expected one report in the memo file, got {len(lines)}")
    check_report(lines[0], world_size=NP)
    check(lines[0]["ranks"] == [1, 3, 6], f"ranks {lines[0]['ranks']} != [1, 3, 6]")
    check(not any("unknown channel kind" in line for line in r.lines()), "memo:// was reported as unknown")
    check(not [f for f in os.listdir(t.spool) if f.endswith(".msg")], "the delivered report stayed in the spool")


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


if __name__ == "__main__":
    sys.exit(main(CASES))
