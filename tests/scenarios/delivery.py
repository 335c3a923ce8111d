#!/usr/bin/env python3
"""Delivery (CTest delivery.*): what reaches a channel that hangs, fails, answers 429 or presents
a bad certificate; retries, Retry-After and rate limits; the spool and mpinotify-send --flush;
mpinotify-send --test; proxies; secrets never shown; and the loopback sink's self-test. One
CTest entry runs one case:

    python3 delivery.py CASE --lib libmpinotify.so --run-tool mpinotify-run --send-tool mpinotify-send \
        --progs DIR --sink mpn_sink.py

A job that crashes is given a budget (MPINOTIFY_TIMEOUT_MS) from the fault to the end of its
handling. The bounds on elapsed time below are hang checks (budget + 30 s), never benchmarks;
the only lower bounds are those a limiter or Retry-After guarantees.
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

from harness import (NP, SLACK_S, Sink, case, check, check_report, crash, free_port, main, no_spooled, reports,
                     wait_for)


def raises(fn, exc):
    """The exception of type `exc` that fn() raised, or None."""
    try:
        fn()
    except exc as e:
        return e
    return None


# --- a webhook that hangs, fails or presents a bad certificate ---------------------

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


# --- delivery engine: retries, rate limits, spool (issue 3) ---------------------------

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


if __name__ == "__main__":
    sys.exit(main())
