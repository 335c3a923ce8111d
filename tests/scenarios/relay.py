#!/usr/bin/env python3
"""The relay (CTest relay.*): mpinotify-run's loopback relay delivers what ranks cannot send
themselves, refuses forged, altered, stale and replayed frames, and is not held by clients that
stall. One CTest entry runs one case:

    python3 relay.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

The "jobs" of `forged` and `concurrent` are helpers/relay_forge.py and helpers/relay_flood.py,
run under mpinotify-run. Bounds on elapsed time are hang checks (budget + 30 s), never benchmarks.
"""
import os
import sys

from harness import NP, SLACK_S, Sink, case, check, main, no_spooled, reports, skip

HELPERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers")


@case
def refused_direct(t):
    # The ranks' direct route goes through a proxy that refuses (port 9, nothing listens);
    # the launcher's does not. The ranks keep their own spool, so the launcher's end-of-job
    # flush cannot be what delivers: only the relay can. A first run with the relay off
    # shows the premise: the direct route really fails and the message stays with the ranks.
    sink = Sink(t)
    refusing = "http://127.0.0.1:9"

    def job(label, extra):
        rank_spool = os.path.join(t.dir, label + "-spool")
        os.mkdir(rank_spool, 0o700)
        launcher = t.mpirun_cmd(NP, "env", [f"http_proxy={refusing}", f"HTTP_PROXY={refusing}",
                                            f"MPINOTIFY_SPOOL={rank_spool}", *extra, t.paths.prog("mpi_crash"),
                                            "segv=1,3,6"], preload=False, opts=["-x", f"http_proxy={refusing}"])
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
def forged(t):
    # Forged, garbage, altered, stale and replayed frames get 403 and deliver nothing; one
    # genuine frame (sealed with the job's key) is delivered, so the relay is not refusing all.
    sink = Sink(t)
    forge = os.path.join(HELPERS, "relay_forge.py")
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
def concurrent(t):
    # Clients that connect and stall do not hold the others: while 20 connections sit on half a
    # request, 160 hellos and 40 relayed messages from 40 concurrent clients are all accepted,
    # every hello is counted (the "started" message) and every message delivered; the stalled
    # connections are answered 408 at their deadline. Outcomes only: no timing is asserted.
    try:
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401  (what relay_flood.py seals with)
    except ImportError:
        skip("the Python cryptography module is needed to seal frames")
    sink = Sink(t)
    flood = os.path.join(HELPERS, "relay_flood.py")
    r = t.tool(["--url", sink.url("/job"), "--job-events", "all"], [sys.executable, flood, sink.url("/relayed")],
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


if __name__ == "__main__":
    sys.exit(main())
