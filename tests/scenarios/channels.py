#!/usr/bin/env python3
"""Channel formats (CTest channels.*, issue 4): each service emulated on a loopback sink that
answers as the service does (its success, error and rate-limit answers, HTTPS with a test CA),
then what arrived is checked: how many requests, the exact payload shape, signatures recomputed
from what was received, sizes measured on the received bytes, and mentions (or notifications) on
failures only. One CTest entry runs one case:

    python3 channels.py CASE --lib libmpinotify.so --send-tool mpinotify-send --progs DIR --sink mpn_sink.py

- ops: DingTalk, Feishu/Lark, PagerDuty, the generic webhook; `ops_crash_channels` sends one
  real MPI crash to all four at once;
- chat: Slack, Discord, Teams, Telegram (a 1 MiB message within each service's limits);
  `chat_crash` sends one real MPI crash to all four at once;
- email: smtp:// (STARTTLS required), smtps:// (implicit TLS) and plain SMTP (starttls=no) to the
  loopback SMTP server tests/sink/mpn_smtp.py (harness.Smtp), which records every message parsed
  with Python's email package;
- a channel kind of the program's own (mpn_register_channel), `custom_channel_crash`.

The payload checks here are also those of the Python package's tests (tests/python/test_notifiers.py).
"""
import base64
import hashlib
import hmac
import html
import json
import os
import re
import socket
import sys
import urllib.parse

import harness
from harness import NP, Sink, Smtp, case, check, check_report, crash, main, reports, wait_for

RAW_SINK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sink", "ops_raw_sink.py")
MOBILES = ["13800000000", "13900000000"]
# The SMTP password of every email case: it must never appear in any output or recorded line.
PASSWORD = "Smtp-pa55word-never-shown-7f3a"


# === ops: DingTalk, Feishu/Lark, PagerDuty, the generic webhook ===========================

def sink(t, name, **kw):
    """A loopback sink whose records also hold each body as received ("raw", "raw_len")."""
    return Sink(t, name, server=RAW_SINK, **kw)


def raw(p):
    return base64.b64decode(p["raw"])


def one(s):
    posts = s.posts()
    check(len(posts) == 1, f"sink {s.name}: expected exactly 1 POST, got {len(posts)}")
    return posts[0]


def ops_send(t, url, title="Nightly run", message="all steps done", severity=None, env=None, test=False):
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
    sent_ok(ops_send(t, url, "disk full", "scratch is full", "error", env))
    sent_ok(ops_send(t, url, "disk filling", "scratch at 90%", "warning", env))
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
    sent_failed(ops_send(t, bad.url("/robot/send?access_token=tok2&secret=SECwrong", kind="dingtalk")),
                r"errcode 310000: sign not match")
    one(bad)
    busy = sink(t, "dt_130101", script=[{"body": {"errcode": 130101, "errmsg": "send too fast"}}])
    sent_ok(ops_send(t, busy.url("/robot/send?access_token=tok3", kind="dingtalk")))
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
        sent_ok(ops_send(t, url, f"run {sev}", f"text of {sev} <at id=all></at>", sev, env))
    sent_ok(ops_send(t, url, env=env, test=True))
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
    sent_failed(ops_send(t, bad.url("/open-apis/bot/v2/hook/tok2?secret=wrong", kind="feishu")), r"code 19021: sign match fail")
    one(bad)
    busy = sink(t, "fs_11232", script=[{"body": {"code": 11232, "msg": "frequency limited"}}])
    sent_ok(ops_send(t, busy.url("/open-apis/bot/v2/hook/tok3", kind="feishu")))
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
        sent_ok(ops_send(t, url, f"run {sev}", "details", sev, env))
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
    sent_failed(ops_send(t, bad.url("/v2/enqueue?routing_key=short", kind="pagerduty")), r"HTTP 400")
    one(bad)
    busy = sink(t, "pd_429", script=[{"status": 429, "headers": {"Retry-After": "1"}}, PD_ACCEPTED])
    sent_ok(ops_send(t, busy.url(f"/v2/enqueue?routing_key={key}", kind="pagerduty"), severity="error"))
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
    sent_ok(ops_send(t, url, "put me", "body text", "warning", env))
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


# === chat: Slack, Discord, Teams, Telegram ================================================

def u16(s):
    """Length as JavaScript and Telegram count it (UTF-16 code units)."""
    return len((s or "").encode("utf-16-le")) // 2


def chat_send(t, url, title, message, severity, env=None, label=None, stdin_file=None):
    """mpinotify-send to one channel; with stdin_file the message is read from standard input (--message -)."""
    env = dict(env or {})
    env.setdefault("MPINOTIFY_TIMEOUT_MS", "15000")
    args = ["--url", url, "--title", title, "--severity", severity, "--message", "-" if stdin_file else message]
    if stdin_file:
        tool = t.need_send()
        cmd = "exec " + " ".join(f"'{a}'" for a in [tool] + args) + f" < '{stdin_file}'"
        return t.run(["sh", "-c", cmd], label or f"mpinotify-send < {os.path.basename(stdin_file)}", env)
    return t.send(args, env, label or f"mpinotify-send --severity {severity} {title}")


def one_post(sink, what):
    posts = sink.posts()
    check(len(posts) == 1, f"{what}: expected exactly one POST at sink {sink.name}, got {len(posts)}")
    check(isinstance(posts[0]["body"], dict), f"{what}: the body is not JSON: {str(posts[0]['body'])[:200]!r}")
    ctype = {k.lower(): v for k, v in posts[0]["headers"].items()}.get("content-type", "")
    check(ctype.startswith("application/json"), f"{what}: Content-Type is {ctype!r}")
    return posts[0]


def big_message(t):
    """Almost 1 MiB of text with characters every service escapes, and 4-byte UTF-8."""
    unit = 'a<b>&"c\U0001F4A5 *_` line\n'
    text = unit * ((1024 * 1024 - 64) // len(unit.encode()))
    path = os.path.join(t.dir, "big.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


# --- per-service checks of a received body --------------------------------------------

def slack_texts(body):
    out = []
    for b in body.get("blocks", []):
        if isinstance(b.get("text"), dict):
            out.append(b["text"].get("text", ""))
        out += [f.get("text", "") for f in b.get("fields", [])]
        out += [e.get("text", "") for e in b.get("elements", [])]
    return out


def slack_check(body, title, failure, mention="<!here>"):
    blocks = body.get("blocks")
    check(isinstance(blocks, list) and 3 <= len(blocks) <= 50, f"Slack: blocks {str(blocks)[:300]}")
    check(blocks[0]["type"] == "header" and blocks[0]["text"]["type"] == "plain_text", f"Slack: first block {blocks[0]}")
    check(u16(blocks[0]["text"]["text"]) <= 150, "Slack: header longer than 150 characters")
    check(blocks[-1]["type"] == "context", f"Slack: last block {blocks[-1]} is not the context")
    total = 0
    for b in blocks:
        if b["type"] == "section" and "text" in b:
            check(b["text"]["type"] == "mrkdwn" and u16(b["text"]["text"]) <= 3000, "Slack: a section over 3000 characters")
        fields = b.get("fields", [])
        check(len(fields) <= 10 and all(u16(f["text"]) <= 2000 for f in fields), "Slack: fields over 10 x 2000")
    total = sum(u16(s) for s in slack_texts(body))
    check(total <= 12000, f"Slack: {total} characters in blocks")
    fallback = body.get("text", "")
    check(isinstance(fallback, str) and 0 < u16(fallback) <= 40000, "Slack: no text fallback")
    esc = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    check(esc[:100] in fallback, f"Slack: the fallback {fallback[:200]!r} lacks the title")
    check(any(esc in s for s in slack_texts(body)), "Slack: the whole title is in no block")
    first = blocks[1]["text"]["text"]
    if failure and mention:
        check(mention in fallback and mention in first, f"Slack: mention {mention} missing: {fallback[:100]!r} / {first[:100]!r}")
    else:
        check("<!" not in fallback and "<@" not in fallback and all("<!" not in s and "<@" not in s for s in slack_texts(body)),
              "Slack: a mention on a message that is not a failure")


def discord_check(post, title, failure, mention="@here"):
    body = post["body"]
    check("wait=true" in post["path"], f"Discord: path {post['path']} lacks wait=true")
    embeds = body.get("embeds")
    check(isinstance(embeds, list) and len(embeds) == 1, f"Discord: embeds {str(embeds)[:200]}")
    e = embeds[0]
    check(isinstance(e.get("color"), int), f"Discord: color {e.get('color')!r} is not an integer")
    check(e["color"] == (0xE01E5A if failure else e["color"]), f"Discord: failure colour {e['color']:#x}")
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", e.get("timestamp", "")), f"Discord: timestamp {e.get('timestamp')!r}")
    fields = e.get("fields", [])
    total = u16(e.get("title")) + u16(e.get("description")) + u16(e.get("footer", {}).get("text"))
    check(1 <= u16(e.get("title")) <= 256 and u16(e.get("description")) <= 4096 and len(fields) <= 25,
          "Discord: title, description or fields over the limits")
    for f in fields:
        check(1 <= u16(f["name"]) <= 256 and 1 <= u16(f["value"]) <= 1024, f"Discord: field {str(f)[:100]} over the limits")
        total += u16(f["name"]) + u16(f["value"])
    check(total <= 6000, f"Discord: {total} characters in the embed")
    check(title[:256] == e["title"][:256] or title in e.get("description", ""), "Discord: the title is missing")
    am = body.get("allowed_mentions")
    if failure and mention:
        check(body.get("content") == mention, f"Discord: content {body.get('content')!r}, expected the mention {mention}")
        check(isinstance(am, dict), "Discord: no allowed_mentions with a mention")
    else:
        check("content" not in body and am == {"parse": []},
              f"Discord: not a failure, yet content {body.get('content')!r} / allowed_mentions {am!r}")


def teams_check(post, title, failure):
    body = post["body"]
    size = int({k.lower(): v for k, v in post["headers"].items()}.get("content-length", "0"))
    check(0 < size <= 28 * 1024, f"Teams: the body has {size} bytes")
    check(body.get("type") == "message" and len(body.get("attachments", [])) == 1, f"Teams: body {str(body)[:200]}")
    att = body["attachments"][0]
    check(att.get("contentType") == "application/vnd.microsoft.card.adaptive", f"Teams: contentType {att.get('contentType')!r}")
    card = att.get("content", {})
    check(card.get("type") == "AdaptiveCard" and card.get("version") == "1.4", f"Teams: card type/version {card.get('type')} {card.get('version')}")
    check(card.get("msteams") == {"width": "Full"}, f"Teams: msteams {card.get('msteams')!r}")
    head = card["body"][0]
    check(head.get("type") == "TextBlock" and head.get("weight") == "Bolder" and head.get("size") == "Large",
          f"Teams: first element {head}")
    check(head.get("text") == title, f"Teams: title {head.get('text')!r}")
    check(head.get("color") == ("Attention" if failure else "Good"), f"Teams: title colour {head.get('color')!r}")
    return card["body"]


def telegram_visible(text):
    """What Telegram counts after parsing the HTML: tags gone, entities one character, UTF-16 units."""
    return u16(html.unescape(re.sub(r"<[^>]*>", "", text)))


def telegram_check(post, title, failure, chat_id):
    body = post["body"]
    check(post["path"].endswith("/sendMessage"), f"Telegram: path {post['path']}")
    check(str(body.get("chat_id")) == chat_id, f"Telegram: chat_id {body.get('chat_id')!r}")
    check(body.get("parse_mode") == "HTML", f"Telegram: parse_mode {body.get('parse_mode')!r}")
    check(body.get("disable_notification") is (not failure),
          f"Telegram: disable_notification {body.get('disable_notification')!r} for a {'failure' if failure else 'quiet message'}")
    text = body.get("text", "")
    n = telegram_visible(text)
    check(0 < n <= 4096, f"Telegram: {n} characters after entity parsing")
    check(f"<b>{html.escape(title, quote=True)}</b>" in text, f"Telegram: the bold title is missing: {text[:200]!r}")
    return text


# --- the common cases ------------------------------------------------------------------

class Service:
    def __init__(self, kind, path, ok, error, reason, rate, checker):
        self.kind, self.path, self.ok, self.error, self.reason, self.rate = kind, path, ok, error, reason, rate
        self.checker = checker  # checker(post, title, failure) -> something


def accepted_once(sink, what):
    posts = sink.posts()
    ok = sink.accepted()
    check(len(ok) == 1 and ok[0] == posts[-1],
          f"{what}: expected exactly one accepted POST, the last; statuses {[p['status'] for p in posts]}")
    check(len({json.dumps(p["body"], sort_keys=True) for p in posts}) == 1, f"{what}: the retry carried another body")
    return posts


def run_service(t, s):
    title = 'Nightly <run> & "friends"'
    # success, a quiet message: exactly one, the right shape, no mention
    sink = Sink(t, "ok", script=[s.ok])
    r = chat_send(t, sink.url(s.path, s.kind), title, "all <fine> & done", "info")
    check(r.rc == 0, f"success: mpinotify-send exited {r.rc}")
    check(any(line.startswith("ok ") for line in r.lines("out")), f"success: no ok line in {r.lines('out')}")
    s.checker(one_post(sink, "success"), title, False)

    # a failure: mention / notification
    sink = Sink(t, "failure", script=[s.ok])
    r = chat_send(t, sink.url(s.path, s.kind), title, "it broke", "critical")
    check(r.rc == 0, f"failure message: mpinotify-send exited {r.rc}")
    s.checker(one_post(sink, "critical"), title, True)

    # an error answer: one attempt, FAILED with the service's reason
    sink = Sink(t, "error", script=[s.error] * 10)
    r = chat_send(t, sink.url(s.path, s.kind), title, "m", "error")
    check(r.rc == 1, f"error answer: mpinotify-send exited {r.rc}, expected 1")
    lines = [line for line in r.lines("out") if line.startswith("FAILED")]
    check(len(lines) == 1 and s.reason in lines[0], f"error answer: expected a FAILED line with {s.reason!r}, got {r.lines('out')}")
    check(len(sink.posts()) == 1, f"error answer {s.error['status']} was retried: {len(sink.posts())} POSTs")

    # a rate limit, then success: exactly one accepted
    sink = Sink(t, "rate", script=[s.rate, s.ok])
    r = chat_send(t, sink.url(s.path, s.kind), title, "m", "warning")
    check(r.rc == 0, f"rate limit: mpinotify-send exited {r.rc}")
    posts = accepted_once(sink, "rate limit")
    check(len(posts) == 2, f"rate limit: expected 2 POSTs (429, then accepted), got {len(posts)}")

    # HTTPS with a test CA
    tls = t.make_tls()
    sink = Sink(t, "https", tls=tls, script=[s.ok])
    r = chat_send(t, sink.url(s.path, s.kind), title, "over TLS", "info", {"MPINOTIFY_CA_BUNDLE": tls["ca"]})
    check(r.rc == 0, f"HTTPS: mpinotify-send exited {r.rc}")
    s.checker(one_post(sink, "HTTPS"), title, False)

    # 1 MiB of text and a long title, within the limits
    long_title = "T" * 300 + " <&> end"
    sink = Sink(t, "big", script=[s.ok])
    r = chat_send(t, sink.url(s.path, s.kind), long_title, None, "critical", stdin_file=big_message(t))
    check(r.rc == 0, f"1 MiB message: mpinotify-send exited {r.rc}")
    post = one_post(sink, "1 MiB message")
    check(len(json.dumps(post["body"])) < 64 * 1024, "1 MiB message: the body was not shortened")
    check("(shortened)" in json.dumps(post["body"], ensure_ascii=False), "1 MiB message: no '(shortened)' mark")
    return post, long_title


@case
def slack_channel(t):
    svc = Service("slack", "/services/T000/B000/XXXXSECRET", {"status": 200, "body": "ok"},
                  {"status": 404, "body": "no_service"}, "no_service",
                  {"status": 429, "headers": {"Retry-After": "1"}, "body": "rate_limited"},
                  lambda p, title, failure: slack_check(p["body"], title, failure))
    post, long_title = run_service(t, svc)
    slack_check(post["body"], long_title, True)
    # mention=<@U0123> instead of <!here>; mention=none: nobody
    for opt, mention in (("?mention=%3C%40U0123%3E", "<@U0123>"), ("?mention=none", None)):
        sink = Sink(t, "mention" + str(bool(mention)), script=[svc.ok])
        r = chat_send(t, sink.url(svc.path + opt, "slack"), "down", "m", "critical")
        check(r.rc == 0, f"mention {opt}: mpinotify-send exited {r.rc}")
        slack_check(one_post(sink, opt)["body"], "down", mention is not None, mention)
        check("<!here>" not in json.dumps(sink.posts()[0]["body"]), f"mention {opt}: <!here> still present")


@case
def discord_channel(t):
    svc = Service("discord", "/api/webhooks/123/TOKENSECRET", {"status": 200, "body": {"id": "1", "type": 0}},
                  {"status": 404, "body": {"message": "Unknown Webhook", "code": 10015}}, "Unknown Webhook",
                  {"status": 429, "headers": {"Retry-After": "1"},
                   "body": {"message": "You are being rate limited.", "retry_after": 0.6, "global": False}},
                  discord_check)
    post, long_title = run_service(t, svc)
    discord_check(post, long_title, True)
    sink = Sink(t, "role", script=[svc.ok])
    r = chat_send(t, sink.url(svc.path + "?mention=%3C%40%26987%3E", "discord"), "down", "m", "error")
    check(r.rc == 0, f"role mention: mpinotify-send exited {r.rc}")
    body = one_post(sink, "role mention")["body"]
    check(body.get("content") == "<@&987>" and body.get("allowed_mentions") == {"parse": [], "roles": ["987"]},
          f"role mention: content {body.get('content')!r}, allowed_mentions {body.get('allowed_mentions')!r}")


@case
def teams_channel(t):
    path = "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIGSECRET"
    svc = Service("teams", path, {"status": 202, "body": ""},
                  {"status": 400, "body": {"error": {"code": "InvalidRequestContent", "message": "bad card"}}},
                  "InvalidRequestContent",
                  {"status": 429, "headers": {"Retry-After": "1"}, "body": {"error": {"code": "WorkflowTriggerIsThrottled"}}},
                  teams_check)
    post, long_title = run_service(t, svc)
    teams_check(post, long_title, True)
    check("sig=SIGSECRET" in post["path"], f"Teams: the service's own parameters were not kept: {post['path']}")


@case
def telegram_channel(t):
    chat_id = "-1001234567"
    svc = Service("telegram", f"/bot123456:ABCSECRET/sendMessage?chat_id={chat_id}",
                  {"status": 200, "body": {"ok": True, "result": {"message_id": 7}}},
                  {"status": 400, "body": {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}},
                  "Bad Request: chat not found",
                  {"status": 429, "body": {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1",
                                           "parameters": {"retry_after": 1}}},
                  lambda p, title, failure: telegram_check(p, title, failure, chat_id))
    post, long_title = run_service(t, svc)
    text = telegram_check(post, long_title, True, chat_id)
    check("&lt;b&gt;&amp;&quot;c" in text, "Telegram: the user's text is not escaped")


@case
def chat_crash(t):
    """One real crash (ranks 1, 3, 6 of 8) to all four chat channels at once."""
    sinks = {k: Sink(t, k, script=[a]) for k, a in (
        ("slack", {"status": 200, "body": "ok"}), ("discord", {"status": 200, "body": {"id": "1"}}),
        ("teams", {"status": 202, "body": ""}), ("telegram", {"status": 200, "body": {"ok": True, "result": {}}}))}
    urls = [sinks["slack"].url("/services/T/B/X", "slack"), sinks["discord"].url("/api/webhooks/1/tok", "discord"),
            sinks["teams"].url("/workflows/a/triggers/manual/paths/invoke?sig=s", "teams"),
            sinks["telegram"].url("/bot1:tok/sendMessage?chat_id=42", "telegram")]
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": " ".join(urls), "MPINOTIFY_TIMEOUT_MS": "15000"}, t.paths.prog("mpi_crash"),
          139)
    posts = {k: one_post(s, k) for k, s in sinks.items()}
    title_re = re.compile(r"SIGSEGV on 3 of 8 ranks")
    slack = posts["slack"]["body"]
    title = slack["blocks"][0]["text"]["text"].split(" ", 1)[1]
    check(title_re.search(title), f"Slack: header {title!r}")
    slack_check(slack, title, True)
    texts = "\n".join(slack_texts(slack))
    for want in ("*Signal*\nSIGSEGV", "*Ranks*\n3 of 8", "`1,3,6`", "```\n#0  bad_fn", "*Signature*\n"):
        check(want in texts, f"Slack: {want!r} missing from the blocks")
    discord_check(posts["discord"], title, True)
    emb = posts["discord"]["body"]["embeds"][0]
    check("```\n#0  bad_fn" in emb.get("description", ""), "Discord: no backtrace code block")
    check({"name": "Signal", "value": "SIGSEGV", "inline": True} in emb["fields"], f"Discord: fields {emb['fields']}")
    elements = teams_check(posts["teams"], title, True)
    mono = [e for e in elements if e.get("fontType") == "Monospace"]
    check(mono and mono[0]["text"].startswith("#0  bad_fn"), f"Teams: no monospace backtrace: {mono}")
    facts = [f for e in elements if e.get("type") == "FactSet" for f in e["facts"]]
    check({"title": "Rank list", "value": "1,3,6"} in facts, f"Teams: facts {facts}")
    text = telegram_check(posts["telegram"], title, True, "42")
    check("<pre>#0  bad_fn" in text and "<b>Signal:</b> SIGSEGV" in text, f"Telegram: text {text[:300]!r}")


# === email ===================================================================================

MESSAGE_ID = re.compile(r"^<msg_[0-9a-f]{32}@mpinotify>$")


def one_message(smtp, rcpt):
    """Exactly one message arrived, accepted, for exactly these envelope recipients."""
    msgs = smtp.messages()
    check(len(msgs) == 1, f"expected exactly one message at the SMTP server, got {len(msgs)}")
    m = msgs[0]
    check(m["accepted"], f"the message was answered {m['status']}, not 250")
    check(m["rcpt"] == rcpt, f"envelope recipients {m['rcpt']} != {rcpt}")
    return m


def parts(m):
    """(plain, html) payloads after checking the MIME structure: multipart/alternative with
    text/plain first and text/html second (RFC 2046: the plainest first), both UTF-8."""
    p = m["parsed"]
    check("error" not in p, f"the message could not be parsed: {p.get('error')}")
    check(p["content_type"] == "multipart/alternative", f"top-level Content-Type {p['content_type']!r}")
    types = [x["content_type"] for x in p["parts"]]
    check(types == ["text/plain", "text/html"], f"parts {types}, expected ['text/plain', 'text/html'] in that order")
    check(all(x["charset"] == "utf-8" for x in p["parts"]), f"charsets {[x['charset'] for x in p['parts']]}")
    check(not p["defects"], f"Python's email parser found defects: {p['defects']}")
    h = p["headers"]
    check(h["MIME-Version"] == "1.0" and h["Date"], f"MIME-Version {h['MIME-Version']!r}, Date {h['Date']!r}")
    check(h["Message-ID"] and MESSAGE_ID.match(h["Message-ID"]), f"Message-ID {h['Message-ID']!r}")
    # Python keeps the CRLF line ends of a decoded part
    return tuple(x["payload"].replace("\r\n", "\n") for x in p["parts"])


def check_content(m, title, facts=(), texts=()):
    """Title (Subject, both parts), facts and free text in both parts; the HTML escaped."""
    plain, page = parts(m)
    h = m["parsed"]["headers"]
    check(h["Subject"] == "[mpinotify] " + title, f"Subject decodes to {h['Subject']!r}, expected '[mpinotify] {title}'")
    if not title.isascii():
        check(h["Subject_raw"].startswith("=?UTF-8?B?"), f"non-ASCII Subject not RFC 2047 encoded: {h['Subject_raw']!r}")
    for what in (title,) + tuple(texts):
        check(what in plain, f"{what!r} missing from the text/plain part")
        check(html.escape(what, quote=False) in page, f"{html.escape(what, quote=False)!r} (escaped) missing from the text/html part")
        if re.search(r"[<&]", what):
            check(what not in page, f"{what!r} appears unescaped in the text/html part")
    for label, value in facts:
        check(re.search(rf"^{re.escape(label)}:\s+{re.escape(value)}$", plain, re.M),
              f"fact line '{label}: {value}' missing from the text/plain part")
        check(re.search(rf"<th[^>]*>{re.escape(label)}</th><td[^>]*>{re.escape(html.escape(value, quote=False))}</td>", page),
              f"fact row {label} = {value} missing from the text/html table")
    return plain, page


def no_password(smtp=None):
    """The password appears in no job output and nowhere the SMTP server recorded."""
    for r in harness._shown:
        if isinstance(r, harness.Result):
            check(PASSWORD not in r.out and PASSWORD not in r.err, f"the SMTP password appears in the output of [{r.label}]")
            check(PASSWORD[:12] not in r.out + r.err, f"a piece of the SMTP password appears in the output of [{r.label}]")
    if smtp:
        with open(smtp.out, encoding="utf-8") as f:
            check(PASSWORD not in f.read(), "the SMTP password reached a recorded line (message or session)")


def status_line(r, ok):
    lines = [ln for ln in r.out.splitlines() if ln.startswith("ok ") or ln.startswith("FAILED ")]
    check(len(lines) == 1, f"expected one result line from mpinotify-send, got {lines}")
    check(lines[0].startswith("ok " if ok else "FAILED "), f"result line {lines[0]!r}, expected {'ok' if ok else 'FAILED'}")
    check(r.rc == (0 if ok else 1), f"mpinotify-send exit status {r.rc}, expected {0 if ok else 1}")
    return lines[0]


# --- cases --------------------------------------------------------------------------

@case
def email_starttls(t):
    """smtp:// with STARTTLS (required), AUTH with a password from env:, two recipients."""
    tls = t.make_tls()
    smtp = Smtp(t, tls=tls, auth=True, require_auth=True, password=PASSWORD)
    env = {"MPINOTIFY_CA_BUNDLE": tls["ca"], "MPNT_SMTP_PW": PASSWORD}
    url = smtp.url("to=ops@example.org;dev@example.net&user=alice&password=env:MPNT_SMTP_PW&from=mpi@example.org")
    title = "Disk <b>& full on node17 \u2014 Gr\u00fc\u00dfe"
    text = "Quota <exceeded> & the job paused at step 1200"
    r = t.send(["--url", url, "--title", title, "--message", text, "--severity", "error"], env)
    status_line(r, True)
    m = one_message(smtp, ["ops@example.org", "dev@example.net"])
    check(m["tls"] and m["auth_user"] == "alice", f"tls {m['tls']}, auth user {m['auth_user']!r}: expected TLS and alice")
    check(m["mail_from"] == "mpi@example.org", f"envelope sender {m['mail_from']!r}")
    auths = smtp.events("auth")
    check(len(auths) == 1 and auths[0]["password_ok"] is True, f"AUTH events {auths}: the password from env: was not the one sent")
    [s] = smtp.sessions(1)
    cmds = s["commands"]
    check("STARTTLS" in cmds and cmds.index("STARTTLS") < cmds.index("AUTH") < cmds.index("MAIL"),
          f"commands {cmds}: STARTTLS must come before AUTH and MAIL")
    h = m["parsed"]["headers"]
    check(h["To"] == "ops@example.org, dev@example.net", f"To: {h['To']!r}")
    check(h["From"] == "mpi@example.org", f"From: {h['From']!r}")
    plain, page = check_content(m, title, facts=[("Severity", "error")], texts=[text])
    check("#d32f2f" in page, "the HTML heading is not coloured for an error")

    # A certificate from another CA: refused before anything is sent, nothing arrives.
    wrong = t.send(["--url", url, "--title", "not sent", "--message", "x"],
                   {"MPINOTIFY_CA_BUNDLE": tls["wrong_ca"], "MPNT_SMTP_PW": PASSWORD}, label="wrong CA")
    line = status_line(wrong, False)
    check(re.search(r"TLS|SSL|certificate", line), f"the failure does not say TLS: {line!r}")
    check(len(smtp.messages()) == 1, "a message arrived over a connection with an unverified certificate")
    check(wait_for(lambda: smtp.events("tls_error"), tries=100), "no TLS handshake was attempted and refused with the wrong CA")
    check(len(smtp.events("auth")) == 1, "credentials were sent over the refused connection")
    no_password(smtp)


@case
def email_smtps(t):
    """smtps:// (implicit TLS), userinfo password in the URL, repeated to=, a display name."""
    tls = t.make_tls()
    smtp = Smtp(t, tls=tls, implicit=True, auth=True, require_auth=True, password=PASSWORD)
    url = smtp.url("to=ops@example.org&to=dev@example.net&from=Night%20Ops%20<ops-bot@example.org>",
                   scheme="smtps", userinfo=f"alice:{PASSWORD}@")
    title = "Nightly run finished"
    r = t.send(["--url", url, "--title", title, "--message", "all 64 ranks done", "--severity", "info"],
               {"MPINOTIFY_CA_BUNDLE": tls["ca"]})
    status_line(r, True)
    m = one_message(smtp, ["ops@example.org", "dev@example.net"])
    check(m["tls"] and m["auth_user"] == "alice", f"tls {m['tls']}, auth user {m['auth_user']!r}")
    check([a["password_ok"] for a in smtp.events("auth")] == [True], f"AUTH events {smtp.events('auth')}")
    check(m["mail_from"] == "ops-bot@example.org", f"envelope sender {m['mail_from']!r}")
    h = m["parsed"]["headers"]
    check(h["From"] == "Night Ops <ops-bot@example.org>", f"From: {h['From']!r}")
    check(h["Subject_raw"] == "[mpinotify] Nightly run finished", f"an ASCII Subject was encoded: {h['Subject_raw']!r}")
    check(h["Auto-Submitted"] == "auto-generated", f"Auto-Submitted: {h['Auto-Submitted']!r}")
    check_content(m, title, facts=[("Severity", "info")], texts=["all 64 ranks done"])
    no_password(smtp)


@case
def email_plain_local(t):
    """A relay without TLS: smtp:// refuses it (STARTTLS required), starttls=no delivers."""
    smtp = Smtp(t)  # no certificate: no STARTTLS
    r = t.send(["--url", smtp.url("to=ops@example.org"), "--title", "must not go in clear", "--message", "x"],
               label="STARTTLS required")
    line = status_line(r, False)
    check(re.search(r"TLS|SSL", line), f"the failure does not say TLS: {line!r}")
    check(not smtp.messages(), "a message was sent in clear although STARTTLS was required")
    check(all("MAIL" not in s["commands"] for s in smtp.sessions(1)), "MAIL FROM was sent without TLS")
    r = t.send(["--url", smtp.url("to=ops@example.org&starttls=no"), "--title", "Local relay works",
                "--message", "plain SMTP on purpose"], label="starttls=no")
    status_line(r, True)
    m = one_message(smtp, ["ops@example.org"])
    check(not m["tls"], "the message went over TLS: the test premise is broken")
    check(m["mail_from"].startswith("mpinotify@"), f"default envelope sender {m['mail_from']!r} is not mpinotify@<host>")
    check_content(m, "Local relay works", texts=["plain SMTP on purpose"])


@case
def email_errors(t):
    """4xx retried (exactly one accepted), 5xx not retried with the SMTP code in the reason,
    a rejected recipient does not stop the others, a wrong password fails once and is never shown."""
    def send(smtp, query, label, env=None):
        return t.send(["--url", smtp.url(query), "--title", "Retry me", "--message", "x"], env, label=label)

    s451 = Smtp(t, "s451", script=[{"stage": "end", "code": 451, "text": "4.3.0 try again later"}])
    line = status_line(send(s451, "to=ops@example.org&starttls=no", "451 then 250"), True)
    msgs = s451.messages()
    check([m["status"] for m in msgs] == [451, 250], f"statuses {[m['status'] for m in msgs]}, expected [451, 250]")
    check(len(s451.accepted()) == 1, f"{len(s451.accepted())} messages accepted, expected exactly 1")
    ids = {m["parsed"]["headers"]["Message-ID"] for m in msgs}
    check(len(ids) == 1, f"the retry carried another Message-ID: {ids}")
    check("2 attempts" in line, f"result line {line!r} does not say 2 attempts")

    s554 = Smtp(t, "s554", script=[{"stage": "end", "code": 554, "text": "5.7.1 rejected by policy"}])
    line = status_line(send(s554, "to=ops@example.org&starttls=no", "554"), False)
    check("SMTP 554" in line and "rejected by policy" in line, f"the reason lacks the SMTP code and text: {line!r}")
    check(len(s554.messages()) == 1 and "1 attempt," in line, f"a 5xx was retried: {len(s554.messages())} messages, {line!r}")

    s452 = Smtp(t, "s452", script=[{"stage": "data", "code": 452, "text": "4.3.1 out of storage"}])
    status_line(send(s452, "to=ops@example.org&starttls=no", "452 to DATA"), True)
    check(len(s452.accepted()) == 1, "a 4xx reply to DATA was not retried into exactly one message")

    rej = Smtp(t, "reject", reject=["typo@example.net"])
    status_line(send(rej, "to=ops@example.org;typo@example.net&starttls=no", "one bad recipient"), True)
    m = one_message(rej, ["ops@example.org"])
    check(m["rejected"] == ["typo@example.net"], f"rejected recipients {m['rejected']}")
    line = status_line(send(rej, "to=typo@example.net&starttls=no", "only a bad recipient"), False)
    check("SMTP 550" in line, f"the reason lacks SMTP 550: {line!r}")
    rcpts = sum(s["commands"].count("RCPT") for s in rej.sessions(2))
    check(rcpts == 3, f"{rcpts} RCPT commands in all, expected 3: a 550 recipient was retried")

    auth = Smtp(t, "auth", auth=True, require_auth=True, password="the-right-one")
    line = status_line(send(auth, f"to=ops@example.org&starttls=no&user=alice&password={PASSWORD}", "wrong password",
                            {"MPINOTIFY_DEBUG": "1"}), False)
    check("SMTP 535" in line, f"the reason lacks SMTP 535: {line!r}")
    check([a["password_ok"] for a in auth.events("auth")] == [False], f"AUTH events {auth.events('auth')}: retried?")
    check(not auth.messages(), "a message arrived without authentication")
    no_password(auth)


@case
def email_oversized(t):
    """A 1 MiB --message arrives as one bounded email: both parts shortened, title whole."""
    smtp = Smtp(t)
    big = os.path.join(t.dir, "big.txt")
    data = ("log line with <tags> & ampersands \u00e9\n" * 30000).encode()
    with open(big, "wb") as f:
        f.write(data[: data.rindex(b"\n", 0, (1 << 20) - 64) + 1])  # just under the tool's 1 MiB bound
    title = "Huge log <attached> & clipped"
    tool = t.need_send()
    cmd = f"exec '{tool}' --url '{smtp.url('to=ops@example.org&starttls=no')}' --title '{title}' --message - < '{big}'"
    r = t.run(["sh", "-c", cmd], "mpinotify-send --message - (1 MiB)")
    status_line(r, True)
    m = one_message(smtp, ["ops@example.org"])
    check(m["size"] < 1536 * 1024, f"the email is {m['size']} bytes for a 1 MiB text: not bounded")
    plain, page = check_content(m, title)
    for name, part in (("text/plain", plain), ("text/html", page)):
        check(len(part) < 300 * 1024, f"the {name} part holds {len(part)} characters")
        check("(shortened)" in part, f"the {name} part does not say it was shortened")
        check("log line with" in part, f"the {name} part lost the text entirely")
    check(page.rstrip().endswith("</html>"), "the HTML part is cut off instead of closed")


@case
def email_crash(t):
    """A real MPI crash (8 ranks, 3 fault) arrives as exactly one email with the facts."""
    smtp = Smtp(t)
    env = {"MPINOTIFY_URLS": smtp.url("to=oncall@example.org;dev@example.net&starttls=no")}
    crash(t, ["segv=1,3,6"], env, t.paths.prog("mpi_crash"), 139)
    m = one_message(smtp, ["oncall@example.org", "dev@example.net"])
    plain, page = parts(m)
    subject = m["parsed"]["headers"]["Subject"]
    check(subject.startswith("[mpinotify] ") and "SIGSEGV" in subject, f"Subject {subject!r}")
    title = subject[len("[mpinotify] "):]
    check_content(m, title, facts=[("Signal", "SIGSEGV"), ("Ranks", f"3 of {NP}"), ("Job", t.paths.case)])
    for part, name in ((plain, "text/plain"), (page, "text/html")):
        check("1,3,6" in part, f"the failed ranks 1,3,6 are missing from the {name} part")
        check("bad_fn" in part, f"the backtrace (bad_fn) is missing from the {name} part")
    check(re.search(r"<pre[^>]*>[^<]*bad_fn", page), "the backtrace is not in a <pre> block of the HTML part")
    check(re.search(r"^Backtrace:$", plain, re.M), "the text/plain part has no Backtrace section")


# === a channel kind of the program's own ====================================================

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


if __name__ == "__main__":
    sys.exit(main())
