#!/usr/bin/env python3
"""Channel cases for DingTalk, Feishu/Lark, PagerDuty and the generic webhook (issue 4).

    python3 channels_ops.py CASE --lib libmpinotify.so --send-tool mpinotify-send --progs DIR --sink mpn_sink.py

Each case emulates the service on a loopback sink (its success, error and rate-limit
answers, HTTPS with a test CA) and checks what arrived: how many requests, the exact
payload shape, signatures recomputed here from what was received, sizes measured on the
received bytes, and mentions on failures only.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import urllib.parse

from harness import Sink, check, main, reports
from scenarios import NP, crash

CASES = {}
RAW_SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sink", "ops_raw_sink.py")
MOBILES = ["13800000000", "13900000000"]


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def sink(t, name, **kw):
    """A loopback sink whose records also hold each body as received ("raw", "raw_len")."""
    saved, t.paths.sink = t.paths.sink, RAW_SINK
    try:
        return Sink(t, name, **kw)
    finally:
        t.paths.sink = saved


def raw(p):
    return base64.b64decode(p["raw"])


def one(s):
    posts = s.posts()
    check(len(posts) == 1, f"sink {s.name}: expected exactly 1 POST, got {len(posts)}")
    return posts[0]


def send(t, url, title="Nightly run", message="all steps done", severity=None, env=None, test=False):
    args = ["--url", url] + (["--test"] if test else ["--title", title, "--message", message])
    return t.send(args + (["--severity", severity] if severity else []), env)


def send_big(t, url, text, title="Big report", severity="error", env=None):
    """mpinotify-send --message - with `text` on standard input (1 MiB does not fit in argv)."""
    path = os.path.join(t.dir, "big.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    tool = t.need_send()
    cmd = ["sh", "-c", 'f=$1; shift; exec "$@" < "$f"', "sh", path, tool, "--url", url, "--title", title,
           "--message", "-", "--severity", severity]
    return t.run(cmd, "mpinotify-send --message - (1 MiB)", env)


def big_text():
    """About 1 MiB that costs more as JSON than as text: quotes, backslashes, control and multi-byte characters."""
    line = 'step "42" \\ tab\there \x01 日本 ünï <at id=all></at> @13800000000\n'
    n = (1 << 20) // len(line.encode()) - 1
    return line * n


def sent_ok(r, n=1):
    check(r.rc == 0, f"mpinotify-send exit status {r.rc}, expected 0")
    check(len([l for l in r.out.splitlines() if l.startswith("ok ")]) == n, f"expected {n} 'ok' line(s): {r.out!r}")


def sent_failed(r, reason):
    check(r.rc == 1, f"mpinotify-send exit status {r.rc}, expected 1")
    lines = [l for l in r.out.splitlines() if l.startswith("FAILED ")]
    check(len(lines) == 1 and re.search(reason, lines[0]), f"expected one FAILED line matching {reason!r}: {r.out!r}")


def query(path):
    """The raw (still percent-encoded) query parameters of a request path."""
    q = path.split("?", 1)[1] if "?" in path else ""
    return dict(kv.split("=", 1) for kv in q.split("&") if "=" in kv)


def b64hmac(key, msg):
    return base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


# --- DingTalk --------------------------------------------------------------------

def check_dingtalk_sign(p, secret):
    """The signature recomputed from the received timestamp, and percent-encoded exactly once."""
    q = query(p["path"])
    check("timestamp" in q and "sign" in q, f"no timestamp/sign in {p['path']!r}")
    ts, sign = q["timestamp"], q["sign"]
    check(re.fullmatch(r"\d{13}", ts) is not None, f"timestamp {ts!r} is not in milliseconds")
    check(abs(int(ts) / 1000 - p["time"]) < 3600, f"timestamp {ts} is not within the hour DingTalk accepts")
    want = b64hmac(secret.encode(), f"{ts}\n{secret}".encode())
    check(urllib.parse.unquote(sign) == want, f"sign {sign!r} decodes to something else than {want!r}")
    check(sign == urllib.parse.quote(want, safe=""), f"sign {sign!r} is not {want!r} percent-encoded once")
    check("%25" not in sign and not re.search(r"[+/=]", sign), f"sign {sign!r} encoded twice or not at all")


def check_dingtalk_shape(b, title, mention):
    check(set(b) == ({"msgtype", "markdown", "at"} if mention else {"msgtype", "markdown"}),
          f"DingTalk body keys {sorted(b)}")
    check(b["msgtype"] == "markdown" and set(b["markdown"]) == {"title", "text"}, f"DingTalk body {b!r}")
    head, text = b["markdown"]["title"], b["markdown"]["text"]
    check(text.startswith(f"#### {head}\n"), f"markdown.title {head!r} is not the text's first heading: {text[:200]!r}")
    check(title in head, f"title {title!r} not in {head!r}")
    return text


@case
def dingtalk_channel(t):
    tls = t.make_tls()
    env = {"MPINOTIFY_CA_BUNDLE": tls["ca"]}
    secret = "SECops" + os.urandom(12).hex()
    opts = f"&secret={secret}&keyword=MPI&at={'%2C'.join(MOBILES)}&at_all=yes"  # a comma separates channels
    ok = sink(t, "dt_ok", tls=tls)
    url = ok.url(f"/robot/send?access_token=tok1{opts}", kind="dingtalk")
    sent_ok(send(t, url, "disk full", "scratch is full", "error", env))
    sent_ok(send(t, url, "disk filling", "scratch at 90%", "warning", env))
    check(len(ok.posts()) == 2, f"expected 2 POSTs, got {len(ok.posts())}")
    fail_p, warn_p = ok.posts()
    for p in (fail_p, warn_p):
        check(p["path"].startswith("/robot/send?access_token=tok1&timestamp="), f"path {p['path']!r}")
        check_dingtalk_sign(p, secret)
    # A failure: keyword in title and text, the text, mentions in "at" and as @tokens.
    b = fail_p["body"]
    text = check_dingtalk_shape(b, "disk full", True)
    check("MPI" in b["markdown"]["title"] and "scratch is full" in text, f"keyword or text missing: {b!r}")
    check(b["at"] == {"atMobiles": MOBILES, "isAtAll": True}, f"at {b['at']!r}")
    check(all(f"@{m}" in text for m in MOBILES), f"no @mobile tokens in {text!r}")
    # A warning: no mention anywhere.
    text = check_dingtalk_shape(warn_p["body"], "disk filling", False)
    check(not any(f"@{m}" in text for m in MOBILES), f"a warning mentions someone: {text!r}")

    # Errors in a 200 body: 310000 is final (one request), 130101 is retried.
    bad = sink(t, "dt_310", script=[{"body": {"errcode": 310000, "errmsg": "sign not match"}}] * 3)
    sent_failed(send(t, bad.url("/robot/send?access_token=tok2&secret=SECwrong", kind="dingtalk")),
                r"errcode 310000: sign not match")
    one(bad)
    busy = sink(t, "dt_130101", script=[{"body": {"errcode": 130101, "errmsg": "send too fast"}}])
    sent_ok(send(t, busy.url("/robot/send?access_token=tok3", kind="dingtalk")))
    posts = busy.posts()
    check(len(posts) == 2 and len(busy.accepted()) == 1, f"130101 then ok: {len(posts)} POSTs, {len(busy.accepted())} accepted")
    check(posts[0]["body"] == posts[1]["body"], "the retry is not the same message")

    # 1 MiB of text: the body stays within 20000 bytes, the title whole.
    big = sink(t, "dt_big")
    sent_ok(send_big(t, big.url("/robot/send?access_token=tok4&at=13800000000", kind="dingtalk"), big_text()))
    p = one(big)
    check(p["raw_len"] <= 20000, f"DingTalk body of {p['raw_len']} bytes > 20000")
    check(p["raw_len"] > 19000, f"DingTalk body of {p['raw_len']} bytes: shortened far more than needed")
    text = check_dingtalk_shape(json.loads(raw(p)), "Big report", True)
    check("(shortened)" in text and text.rstrip().endswith("@13800000000"), f"end of text {text[-200:]!r}")


# --- Feishu / Lark -----------------------------------------------------------------

def card(b):
    """The card's markdown contents and its note, after checking the card's shape."""
    check(b.get("msg_type") == "interactive" and isinstance(b.get("card"), dict), f"Feishu body {str(b)[:300]!r}")
    c = b["card"]
    check(c["header"]["title"]["tag"] == "plain_text" and isinstance(c["header"]["title"]["content"], str),
          f"header {c['header']!r}")
    md, notes = [], []
    for e in c["elements"]:
        if e["tag"] == "div":
            check(e["text"]["tag"] == "lark_md", f"element {e!r}")
            md.append(e["text"]["content"])
        else:
            check(e["tag"] == "note", f"element {e!r}")
            notes.append(e)
    check(len(notes) == 1, f"expected one note element, got {len(notes)}")
    return md


def check_feishu_sign(b, secret):
    ts = b.get("timestamp")
    check(isinstance(ts, str) and ts.isdigit() and len(ts) == 10, f"timestamp {ts!r} is not a string of seconds")
    want = b64hmac(f"{ts}\n{secret}".encode(), b"")
    check(b.get("sign") == want, f"sign {b.get('sign')!r} != {want!r} recomputed from timestamp {ts}")


@case
def feishu_channel(t):
    tls = t.make_tls()
    env = {"MPINOTIFY_CA_BUNDLE": tls["ca"]}
    secret = "ops" + os.urandom(12).hex()
    ok = sink(t, "fs_ok", tls=tls)
    url = ok.url(f"/open-apis/bot/v2/hook/tok1?secret={secret}&at_all=yes", kind="feishu")
    for sev in ("critical", "warning", "info"):
        sent_ok(send(t, url, f"run {sev}", f"text of {sev} <at id=all></at>", sev, env))
    sent_ok(send(t, url, env=env, test=True))
    posts = ok.posts()
    check(len(posts) == 4, f"expected 4 POSTs, got {len(posts)}")
    for p, colour, title in zip(posts, ("red", "orange", "blue", "green"),
                                ("run critical", "run warning", "run info", "mpinotify test message")):
        b = p["body"]
        check(set(b) == {"msg_type", "card", "timestamp", "sign"}, f"Feishu body keys {sorted(b)}")
        check_feishu_sign(b, secret)
        md = card(b)
        check(b["card"]["header"]["title"]["content"] == title, f"card title {b['card']['header']!r}")
        check(b["card"]["header"]["template"] == colour, f"{title}: template {b['card']['header']['template']!r} != {colour}")
        mention = "<at id=all></at>" in md
        check(mention == (colour == "red"), f"{title}: <at id=all> in the card: {mention}")
        check(not any("<at id=all>" in m for m in md if m != "<at id=all></at>"), f"{title}: the text's own <at> was not defused")
    check(any("text of critical" in m for m in card(posts[0]["body"])), "the text is not in the card")

    # Errors in the body: 19021 is final, 11232 is retried.
    bad = sink(t, "fs_19021", script=[{"body": {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}}] * 3)
    sent_failed(send(t, bad.url("/open-apis/bot/v2/hook/tok2?secret=wrong", kind="feishu")), r"code 19021: sign match fail")
    one(bad)
    busy = sink(t, "fs_11232", script=[{"body": {"code": 11232, "msg": "frequency limited"}}])
    sent_ok(send(t, busy.url("/open-apis/bot/v2/hook/tok3", kind="feishu")))
    check(len(busy.posts()) == 2 and len(busy.accepted()) == 1,
          f"11232 then ok: {len(busy.posts())} POSTs, {len(busy.accepted())} accepted")

    # 1 MiB of text: within 20 KB (signature included), the title whole, @all kept.
    big = sink(t, "fs_big")
    sent_ok(send_big(t, big.url(f"/open-apis/bot/v2/hook/tok4?secret={secret}&at_all=yes", kind="feishu"), big_text()))
    p = one(big)
    check(18000 < p["raw_len"] <= 19500, f"Feishu body of {p['raw_len']} bytes (limit 20 KB, aim 19000)")
    b = json.loads(raw(p))
    check_feishu_sign(b, secret)
    md = card(b)
    check(b["card"]["header"]["title"]["content"] == "Big report", "the title was changed")
    check("<at id=all></at>" in md and any("(shortened)" in m for m in md), "mention or shortening mark missing")


# --- PagerDuty ----------------------------------------------------------------------

PD_KEYS = {"routing_key", "event_action", "dedup_key", "payload", "client"}
PD_ACCEPTED = {"status": 202, "body": {"status": "success", "message": "Event processed", "dedup_key": "k"}}


def check_pd(b, key, severity, klass):
    check(set(b) == PD_KEYS, f"PagerDuty body keys {sorted(b)}")
    check(b["routing_key"] == key and b["event_action"] == "trigger" and b["client"] == "mpinotify", f"body {b!r}")
    p = b["payload"]
    check({"summary", "source", "severity", "timestamp", "class", "custom_details"} <= set(p) <=
          {"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"},
          f"payload keys {sorted(p)}")
    check(p["severity"] == severity and p["class"] == klass, f"severity/class {p['severity']!r}/{p['class']!r}")
    check(isinstance(b["dedup_key"], str) and 0 < len(b["dedup_key"]) <= 255, f"dedup_key {b['dedup_key']!r}")
    check(len(p["summary"]) <= 1024, f"summary of {len(p['summary'])} characters")
    return p


@case
def pagerduty_channel(t):
    tls = t.make_tls()
    env = {"MPINOTIFY_CA_BUNDLE": tls["ca"]}
    key = "R" + os.urandom(16).hex()[:31]
    ok = sink(t, "pd_ok", tls=tls, script=[PD_ACCEPTED] * 4)
    url = ok.url(f"/v2/enqueue?routing_key={key}", kind="pagerduty")
    for sev in ("info", "warning", "error", "critical"):
        sent_ok(send(t, url, f"run {sev}", "details", sev, env))
    posts = ok.posts()
    check(len(posts) == 4 and all(p["status"] == 202 for p in posts), f"expected 4 POSTs answered 202: {len(posts)}")
    keys = set()
    for p, sev in zip(posts, ("info", "warning", "error", "critical")):
        pl = check_pd(p["body"], key, sev, "message")
        check(pl["summary"] == f"run {sev}" and pl["source"] == socket.gethostname(), f"summary/source {pl!r}")
        check(pl["custom_details"].get("Text") == "details", f"custom_details {pl['custom_details']!r}")
        check(re.fullmatch(r"mpinotify:msg_[0-9a-f]{32}", p["body"]["dedup_key"]) is not None,
              f"dedup_key {p['body']['dedup_key']!r} is not derived from the message id")
        keys.add(p["body"]["dedup_key"])
    check(len(keys) == 4, "different messages share a dedup_key")

    # 400 is final; 429 with Retry-After is retried, and the retry keeps the dedup_key.
    bad = sink(t, "pd_400", script=[{"status": 400, "body": {"status": "invalid event", "message": "Event object is invalid"}}] * 3)
    sent_failed(send(t, bad.url("/v2/enqueue?routing_key=short", kind="pagerduty")), r"HTTP 400")
    one(bad)
    busy = sink(t, "pd_429", script=[{"status": 429, "headers": {"Retry-After": "1"}}, PD_ACCEPTED])
    sent_ok(send(t, busy.url(f"/v2/enqueue?routing_key={key}", kind="pagerduty"), severity="error"))
    posts = busy.posts()
    check(len(posts) == 2 and len(busy.accepted()) == 1 and posts[1]["status"] == 202,
          f"429 then 202: {len(posts)} POSTs, {len(busy.accepted())} accepted")
    check(posts[0]["body"] == posts[1]["body"], "the retry is not the same event (dedup_key included)")

    # 1 MiB of text and a 2000-character title: within 512 KB, the summary within 1024 characters.
    big = sink(t, "pd_big", script=[PD_ACCEPTED])
    sent_ok(send_big(t, big.url(f"/v2/enqueue?routing_key={key}", kind="pagerduty"), big_text(), title="ü" * 2000))
    p = one(big)
    check(500000 < p["raw_len"] <= 512000, f"PagerDuty body of {p['raw_len']} bytes (limit 512 KB)")
    pl = check_pd(json.loads(raw(p)), key, "error", "message")
    check(pl["summary"].startswith("ü" * 900) and pl["summary"].endswith("(shortened)"), "summary not shortened")
    check(pl["custom_details"]["Text"].endswith("(shortened)"), "text not shortened")


# --- generic webhook -----------------------------------------------------------------

def check_stdwebhook(p, secret):
    """Standard Webhooks: the signature over the received bytes, the key base64 after whsec_."""
    h = {k.lower(): v for k, v in p["headers"].items()}
    msg_id, ts = h.get("webhook-id"), h.get("webhook-timestamp")
    check(msg_id and ts and ts.isdigit(), f"webhook-id/webhook-timestamp headers {h!r}")
    signed = msg_id.encode() + b"." + ts.encode() + b"." + raw(p)
    want = "v1," + b64hmac(base64.b64decode(secret[len("whsec_"):]), signed)
    check(want in h.get("webhook-signature", "").split(" "), f"webhook-signature {h.get('webhook-signature')!r} != {want!r}")
    return h


@case
def webhook_options(t):
    tls = t.make_tls()
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    env = {"MPINOTIFY_CA_BUNDLE": tls["ca"], "MPNT_OPS_TOKEN": "Bearer ops-token-value"}
    s = sink(t, "wh_put", tls=tls, script=[{"status": 500}])
    url = s.url("/hook?method=PUT&header=X-Team:ops&header=Authorization:env:MPNT_OPS_TOKEN&secret=" +
                urllib.parse.quote(secret, safe=""))
    sent_ok(send(t, url, "put me", "body text", "warning", env))
    recs = [r for r in s.records() if "method" in r]
    check(len(recs) == 2 and [r["status"] for r in recs] == [500, 200], f"expected 500 then 200: {[r.get('status') for r in recs]}")
    ids = []
    for r in recs:
        check(r["method"] == "PUT", f"method {r['method']!r}, expected PUT")
        h = check_stdwebhook(r, secret)
        check(h.get("x-team") == "ops" and h.get("authorization") == "Bearer ops-token-value", f"headers {h!r}")
        check(r["body"]["title"] == "put me" and r["body"]["text"] == "body text", f"body {r['body']!r}")
        ids.append(h["webhook-id"])
    check(ids[0] == ids[1] == recs[0]["body"]["id"], f"webhook-id {ids} differs across the retry or from the body's id")

    # POST by default; 1 MiB arrives whole (webhooks have no limit).
    big = sink(t, "wh_big")
    text = big_text()
    sent_ok(send_big(t, big.url("/hook"), text))
    p = one(big)
    check(p["body"]["text"] == text.rstrip("\n"), f"the text arrived changed: {len(p['body']['text'])} characters")
    check(p["raw_len"] > len(text.encode()), f"body of {p['raw_len']} bytes for {len(text.encode())} bytes of text")
    check("webhook-signature" not in {k.lower() for k in p["headers"]}, "signed without a secret")


# --- one crash, every ops channel ------------------------------------------------------

@case
def ops_crash_channels(t):
    dt, fs, pd, wh = sink(t, "dingtalk"), sink(t, "feishu"), sink(t, "pagerduty", script=[PD_ACCEPTED]), sink(t, "webhook")
    urls = [dt.url(f"/robot/send?access_token=tok&keyword=MPI&at={MOBILES[0]}", kind="dingtalk"),
            fs.url("/open-apis/bot/v2/hook/tok?at_all=yes&secret=sec", kind="feishu"),
            pd.url("/v2/enqueue?routing_key=Rkey", kind="pagerduty"), wh.url()]
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": " ".join(urls)}, t.paths.prog("mpi_crash"), 139)
    [r] = reports(wh, 1, world_size=NP)
    title, sig, leader = r["title"], r["signature"], r["leader"]["hostname"]

    b = one(dt)["body"]
    text = check_dingtalk_shape(b, title, True)
    check(b["at"] == {"atMobiles": [MOBILES[0]], "isAtAll": False} and f"@{MOBILES[0]}" in text, f"at {b.get('at')!r}")
    for want in ("MPI", "- **Signal:** SIGSEGV", f"- **Signature:** {sig}", "- **Ranks:** 3 of 8", "**Rank list:** 1,3,6", "> #0"):
        check(want in text, f"{want!r} not in the DingTalk text {text!r}")
    check(re.search(r"^> #\d+ +bad_fn", text, re.M) is not None, f"bad_fn not in the quoted backtrace: {text!r}")

    b = one(fs)["body"]
    md = card(b)
    check(b["card"]["header"]["template"] == "red" and b["card"]["header"]["title"]["content"] == title, f"header {b['card']['header']!r}")
    check("<at id=all></at>" in md and any(m.startswith("**Backtrace**\n```\n") and "bad_fn" in m for m in md),
          f"card markdown {md!r}")
    check(any(f"**Signature:** {sig}" in m for m in md) and "**Rank list:** 1,3,6" in md, f"card markdown {md!r}")

    b = one(pd)["body"]
    pl = check_pd(b, "Rkey", "critical", "crash")
    check(b["dedup_key"] == f"mpinotify:{t.paths.case}:{sig}", f"dedup_key {b['dedup_key']!r}")
    check(pl["source"] == leader and pl["component"] == t.paths.case and pl["summary"] == title, f"payload {pl!r}")
    cd = pl["custom_details"]
    check(cd.get("Rank list") == "1,3,6" and cd.get("Signature") == sig and "bad_fn" in cd.get("Backtrace", ""),
          f"custom_details {cd!r}")


if __name__ == "__main__":
    sys.exit(main(CASES))
