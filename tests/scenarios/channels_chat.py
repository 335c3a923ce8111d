#!/usr/bin/env python3
"""mpinotify chat channel scenarios (Slack, Discord, Teams, Telegram). One CTest entry runs one case:

    python3 channels_chat.py CASE --lib libmpinotify.so --send-tool mpinotify-send --progs DIR --sink mpn_sink.py

Each channel case runs mpinotify-send against loopback sinks that answer as the service does: its success,
an error (not retried, reported FAILED with the service's reason), a rate limit (429, then success: exactly
one accepted), HTTPS with a test CA, a 1 MiB message within the service's limits, and mentions (or
notifications) on failures only. `chat_crash` sends one real MPI crash to all four at once.
"""
import html
import json
import os
import re
import sys

from harness import Sink, check, main

NP = 8
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def u16(s):
    """Length as JavaScript and Telegram count it (UTF-16 code units)."""
    return len((s or "").encode("utf-16-le")) // 2


def crash(t, args, env, prog):
    """Run a job without and with the library; the exit statuses must agree."""
    base = t.mpirun(NP, prog, args, preload=False)
    check(base.rc == 139, f"baseline (no library) exit status {base.rc}, expected 139: test premise broken")
    r = t.mpirun(NP, prog, args, env=env)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return r


def send(t, url, title, message, severity, env=None, label=None, stdin_file=None):
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
    r = send(t, sink.url(s.path, s.kind), title, "all <fine> & done", "info")
    check(r.rc == 0, f"success: mpinotify-send exited {r.rc}")
    check(any(line.startswith("ok ") for line in r.lines("out")), f"success: no ok line in {r.lines('out')}")
    s.checker(one_post(sink, "success"), title, False)

    # a failure: mention / notification
    sink = Sink(t, "failure", script=[s.ok])
    r = send(t, sink.url(s.path, s.kind), title, "it broke", "critical")
    check(r.rc == 0, f"failure message: mpinotify-send exited {r.rc}")
    s.checker(one_post(sink, "critical"), title, True)

    # an error answer: one attempt, FAILED with the service's reason
    sink = Sink(t, "error", script=[s.error] * 10)
    r = send(t, sink.url(s.path, s.kind), title, "m", "error")
    check(r.rc == 1, f"error answer: mpinotify-send exited {r.rc}, expected 1")
    lines = [line for line in r.lines("out") if line.startswith("FAILED")]
    check(len(lines) == 1 and s.reason in lines[0], f"error answer: expected a FAILED line with {s.reason!r}, got {r.lines('out')}")
    check(len(sink.posts()) == 1, f"error answer {s.error['status']} was retried: {len(sink.posts())} POSTs")

    # a rate limit, then success: exactly one accepted
    sink = Sink(t, "rate", script=[s.rate, s.ok])
    r = send(t, sink.url(s.path, s.kind), title, "m", "warning")
    check(r.rc == 0, f"rate limit: mpinotify-send exited {r.rc}")
    posts = accepted_once(sink, "rate limit")
    check(len(posts) == 2, f"rate limit: expected 2 POSTs (429, then accepted), got {len(posts)}")

    # HTTPS with a test CA
    tls = t.make_tls()
    sink = Sink(t, "https", tls=tls, script=[s.ok])
    r = send(t, sink.url(s.path, s.kind), title, "over TLS", "info", {"MPINOTIFY_CA_BUNDLE": tls["ca"]})
    check(r.rc == 0, f"HTTPS: mpinotify-send exited {r.rc}")
    s.checker(one_post(sink, "HTTPS"), title, False)

    # 1 MiB of text and a long title, within the limits
    long_title = "T" * 300 + " <&> end"
    sink = Sink(t, "big", script=[s.ok])
    r = send(t, sink.url(s.path, s.kind), long_title, None, "critical", stdin_file=big_message(t))
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
        r = send(t, sink.url(svc.path + opt, "slack"), "down", "m", "critical")
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
    r = send(t, sink.url(svc.path + "?mention=%3C%40%26987%3E", "discord"), "down", "m", "error")
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
    crash(t, ["segv=1,3,6"], {"MPINOTIFY_URLS": " ".join(urls), "MPINOTIFY_TIMEOUT_MS": "15000"}, t.paths.prog("mpi_crash"))
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


if __name__ == "__main__":
    sys.exit(main(CASES))
