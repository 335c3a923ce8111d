#!/usr/bin/env python3
"""Python package cases (issue 11): notifiers, alerts and progress of python/mpinotify, run in
this process through ctypes on the real libmpinotify, real libcurl and the loopback sink.

    /usr/bin/python3 tests/python/test_notifiers.py CASE --lib build/lib/libmpinotify.so --sink tests/sink/mpn_sink.py

Every service is emulated on 127.0.0.1 with the kind prefixes (dingtalk+http://...), so no real
service is contacted. Sinks, temp dirs and the report on failure come from tests/scenarios/harness.py;
the payload checks are the channel tests' own (tests/scenarios/channels.py).
"""
import contextlib
import ctypes
import io
import json
import os
import pickle
import re
import sys
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON_DIR = os.path.join(REPO, "python")
sys.path[:0] = [os.path.join(REPO, "tests", "scenarios"), PYTHON_DIR]

import harness  # noqa: E402
from harness import Sink, Smtp, case, check, free_port  # noqa: E402
from channels import (card, check_content, check_dingtalk_shape, check_dingtalk_sign, check_feishu_sign,  # noqa: E402
                      discord_check, one_message, query, slack_check, slack_texts, teams_check, telegram_check)

from mpinotify import _lib  # noqa: E402
from mpinotify import (Alert, DingNotifier, DiscordNotifier, EmailNotifier, FeishuNotifier, Notifier,  # noqa: E402
                       SlackNotifier, TeamsNotifier, TelegramNotifier, URLNotifier, WebhookNotifier, alert, progress)

LIB = None  # --lib
OK = {  # each service's success answer (as in tests/scenarios/channels.py)
    "slack": {"status": 200, "body": "ok"}, "discord": {"status": 200, "body": {"id": "1", "type": 0}},
    "teams": {"status": 202, "body": ""}, "telegram": {"status": 200, "body": {"ok": True, "result": {}}},
}


def use_env(t, extra=None):
    """This process's environment as harness gives a job: nothing MPINOTIFY_* or proxied from the caller."""
    env = t.env(extra or {})
    env["MPINOTIFY_LIBRARY"] = LIB
    os.environ.clear()
    os.environ.update(env)


def wait_posts(sink, n, what):
    """Exactly n POSTs once they had time to arrive (alerts are delivered by the library's thread)."""
    for _ in range(150):
        if len(sink.posts()) >= n:
            break
        time.sleep(0.1)
    posts = sink.posts()
    check(len(posts) == n, f"{what}: expected {n} POST(s) at sink {sink.name}, got {len(posts)}")
    return posts


def sent(notifier, message, what, **kw):
    check(notifier(message, **kw) is True, f"{what}: {type(notifier).__name__} returned False")


def tok(prefix="tok"):
    return prefix + os.urandom(8).hex()


def stderr_of(fn):
    """(fn(), what it wrote to sys.stderr)."""
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        out = fn()
    return out, buf.getvalue()


# --- every built-in's payload ---------------------------------------------------------

@case
def ding_payload(t):
    """DingTalk markdown: heading = preview title; signed with a literal secret and with env:NAME;
    unsigned without a secret."""
    use_env(t)
    s = Sink(t, "ding")
    secret, token = tok("SEC"), tok()
    url = f"http://127.0.0.1:{s.port}/robot/send?access_token={token}"
    sent(DingNotifier(url, secret=secret), "Loss spiked at step 120\nloss 9.1 > 3x EMA", "signed")
    os.environ["MPNT_DT_SECRET"] = secret2 = tok("SEC")
    sent(DingNotifier(url, secret="env:MPNT_DT_SECRET", timeout=2.5), "Referenced secret", "env: secret")
    sent(DingNotifier(url), "Unsigned", "no secret")
    p1, p2, p3 = wait_posts(s, 3, "DingNotifier")
    text = check_dingtalk_shape(p1["body"], "Loss spiked at step 120", False)
    check("loss 9.1 > 3x EMA" in text, f"the body text is missing: {text!r}")
    check(query(p1["path"]).get("access_token") == token, f"access_token lost: {p1['path']}")
    check_dingtalk_sign(p1, secret)
    check_dingtalk_shape(p2["body"], "Referenced secret", False)
    check_dingtalk_sign(p2, secret2)
    check_dingtalk_shape(p3["body"], "Unsigned", False)
    check("sign" not in query(p3["path"]) and "timestamp" not in query(p3["path"]), f"unsigned yet {p3['path']}")


@case
def slack_payload(t):
    use_env(t)
    s = Sink(t, "slack", script=[OK["slack"]] * 2)
    sent(SlackNotifier(f"http://127.0.0.1:{s.port}/services/T0/B0/{tok()}"), "Nightly <run> done\nall & fine", "info")
    sent(SlackNotifier(f"slack+http://127.0.0.1:{s.port}/services/T0/B0/{tok()}"), "Run failed", "critical",
         severity="critical")
    info, crit = wait_posts(s, 2, "SlackNotifier")
    slack_check(info["body"], "Nightly <run> done", False)
    check(any("all &amp; fine" in x for x in slack_texts(info["body"])), "the text is not in the blocks")
    slack_check(crit["body"], "Run failed", True)


@case
def discord_payload(t):
    use_env(t)
    s = Sink(t, "discord", script=[OK["discord"]])
    sent(DiscordNotifier(f"http://127.0.0.1:{s.port}/api/webhooks/123/{tok()}"), "Epoch 3 done\nval acc 0.91", "info")
    [p] = wait_posts(s, 1, "DiscordNotifier")
    discord_check(p, "Epoch 3 done", False)
    check("val acc 0.91" in p["body"]["embeds"][0].get("description", ""), f"text missing: {p['body']}")


@case
def feishu_payload(t):
    use_env(t)
    s = Sink(t, "feishu")
    secret = tok("fs")
    sent(FeishuNotifier(f"http://127.0.0.1:{s.port}/open-apis/bot/v2/hook/{tok()}", secret=secret),
         "Checkpoint saved\nstep 5000", "signed")
    sent(FeishuNotifier(f"lark+http://127.0.0.1:{s.port}/open-apis/bot/v2/hook/{tok()}"), "Unsigned", "lark+")
    signed, plain = wait_posts(s, 2, "FeishuNotifier")
    check_feishu_sign(signed["body"], secret)
    check(signed["body"]["card"]["header"]["title"]["content"] == "Checkpoint saved", f"card {signed['body']}")
    check(any("step 5000" in m for m in card(signed["body"])), "the text is not in the card")
    check("sign" not in plain["body"] and plain["body"]["card"]["header"]["title"]["content"] == "Unsigned",
          f"unsigned card {plain['body']}")


@case
def teams_payload(t):
    use_env(t)
    s = Sink(t, "teams", script=[OK["teams"]])
    path = f"/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig={tok()}"
    sent(TeamsNotifier(f"http://127.0.0.1:{s.port}{path}"), "Training resumed\nfrom step 4000", "info")
    [p] = wait_posts(s, 1, "TeamsNotifier")
    body = teams_check(p, "Training resumed", False)
    check(any("from step 4000" in e.get("text", "") for e in body), f"text missing from the card: {body}")


@case
def telegram_payload(t):
    use_env(t)
    s = Sink(t, "telegram", script=[OK["telegram"]] * 2)
    token = "123456:" + tok("AB")
    sent(TelegramNotifier(token, -1001234567, api_url=f"http://127.0.0.1:{s.port}"), "GPU 3 hot\n91 C", "number")
    sent(TelegramNotifier(token, "@ml_alerts", api_url=f"http://127.0.0.1:{s.port}/"), "By name", "@name")
    num, name = wait_posts(s, 2, "TelegramNotifier")
    check(num["path"] == f"/bot{token}/sendMessage", f"path {num['path']!r}")
    text = telegram_check(num, "GPU 3 hot", False, "-1001234567")
    check("91 C" in text, f"text missing: {text!r}")
    telegram_check(name, "By name", False, "@ml_alerts")


@case
def webhook_payload(t):
    """WebhookNotifier and URLNotifier: the mpinotify/1 JSON with event, title, text, severity."""
    use_env(t)
    s = Sink(t, "hook")
    sent(WebhookNotifier(f"http://127.0.0.1:{s.port}/hook/{tok()}"), "Job queued\nnode17, 8 ranks", "webhook")
    sent(URLNotifier(f"webhook+http://127.0.0.1:{s.port}/any"), "Through a URL", "url", severity="warning")
    sent(WebhookNotifier(f"http://127.0.0.1:{s.port}/t"), "ignored first line", "title=", title="Explicit")
    a, b, c = [p["body"] for p in wait_posts(s, 3, "webhook")]
    for body, title, text, sev in ((a, "Job queued", "node17, 8 ranks", "info"), (b, "Through a URL", None, "warning"),
                                   (c, "Explicit", "ignored first line", "info")):
        check(body.get("schema") == "mpinotify/1" and body.get("event") == "message", f"body {body}")
        check((body.get("title"), body.get("text"), body.get("severity")) == (title, text, sev),
              f"title/text/severity {body.get('title')!r}/{body.get('text')!r}/{body.get('severity')!r}")


@case
def email_payload(t):
    """EmailNotifier: plain SMTP to a local relay (starttls=False), two recipients, a display name,
    AUTH with the password from env:."""
    password = tok("pw")
    smtp = Smtp(t, auth=True, password=password)
    use_env(t, {"MPNT_SMTP_PW": password})
    n = EmailNotifier("127.0.0.1", "ops@example.org; dev@example.net", port=smtp.port,
                      sender="Night Ops <ops-bot@example.org>", user="alice", password="env:MPNT_SMTP_PW",
                      starttls=False)
    sent(n, "Disk full on node17\nscratch at 99%", "email")
    m = one_message(smtp, ["ops@example.org", "dev@example.net"])
    check(m["mail_from"] == "ops-bot@example.org", f"envelope sender {m['mail_from']!r}")
    check_content(m, "Disk full on node17", texts=["scratch at 99%"])
    auths = smtp.events("auth")
    check(len(auths) == 1 and auths[0]["user"] == "alice" and auths[0]["password_ok"], f"AUTH {auths}")


# --- to_dict / from_dict / pickle ------------------------------------------------------

def norm(post):
    """A received request without what differs between two sends of one message."""
    body = dict(post["body"]) if isinstance(post["body"], dict) else post["body"]
    if isinstance(body, dict):
        body.pop("timestamp", None), body.pop("sign", None)  # Feishu's signature
    text = json.dumps(body, sort_keys=True) + " " + re.sub(r"&timestamp=\d+&sign=[^&]+", "", post["path"])
    text = re.sub(r"msg_[0-9a-f]{32}", "ID", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "TIME", text)


RECEIVED = []  # what Recorder instances were called with


class Recorder(Notifier):
    """A user's notifier: __call__ only, restored by the default _from_dict_impl."""

    def __init__(self, label):
        self.label = label

    def __call__(self, message):
        RECEIVED.append((self.label, message))


class Tagged(Notifier):
    """A user's notifier with its own _from_dict_impl (e.g. re-reading a secret)."""

    def __init__(self, tag):
        self.tag, self._calls = tag, 0

    def __call__(self, message):
        RECEIVED.append((self.tag, message))

    @classmethod
    def _from_dict_impl(cls, data):
        return cls(data["tag"] + "-restored")


def builtins(port):
    h = f"http://127.0.0.1:{port}"
    return [DingNotifier(f"{h}/robot/send?access_token={tok()}", secret=tok("SEC"), timeout=3),
            SlackNotifier(f"slack+{h}/services/T/B/{tok()}"), DiscordNotifier(f"{h}/api/webhooks/1/{tok()}"),
            FeishuNotifier(f"{h}/open-apis/bot/v2/hook/{tok()}", secret=tok()),
            TeamsNotifier(f"{h}/workflows/a/invoke?sig={tok()}"),
            TelegramNotifier("1:" + tok(), 42, api_url=h), WebhookNotifier(f"{h}/w/{tok()}"),
            URLNotifier(f"webhook+{h}/u/{tok()}")]


@case
def round_trips(t):
    """Every built-in and two user subclasses: from_dict(to_dict()) and pickle give a notifier
    that sends the same; to_dict is plain JSON."""
    use_env(t)
    s = Sink(t, "all")
    email = EmailNotifier("mail.example.org", ["a@example.org"], port=587, user="u", password=tok("pw"), ssl=True)
    for n in builtins(s.port) + [email]:
        d = n.to_dict()
        check(d["type"] == type(n).__name__ and json.loads(json.dumps(d)) == d, f"to_dict {d}")
        for copy in (Notifier.from_dict(json.loads(json.dumps(d))), pickle.loads(pickle.dumps(n))):
            check(type(copy) is type(n) and copy.to_dict() == d and copy.channel_url() == n.channel_url(),
                  f"{type(n).__name__}: restored as {copy.to_dict()}")
        if n is email:
            continue
        before = len(s.posts())
        sent(n, "Same message\nsame body", "original")
        sent(Notifier.from_dict(d), "Same message\nsame body", "restored")
        first, second = wait_posts(s, before + 2, type(n).__name__)[-2:]
        check(norm(first) == norm(second), f"{type(n).__name__}: the restored notifier sent something else:\n"
              f"{norm(first)}\n{norm(second)}")
    check(type(Notifier.from_dict({"type": "SlackNotifier", "webhook_url": "https://hooks.slack.com/services/T/B/X"}))
          is SlackNotifier, "from_dict by name")
    user_round_trips()


def user_round_trips():
    r = Recorder("lab")
    d = r.to_dict()
    check(d == {"type": "Recorder", "label": "lab"}, f"Recorder.to_dict {d}")
    for copy in (Notifier.from_dict(d), pickle.loads(pickle.dumps(r))):
        check(type(copy) is Recorder and copy.label == "lab", f"Recorder restored as {copy.__dict__}")
        copy("hello")
        check(URLNotifier(copy.channel_url())("through C\nbody") is True, "restored Recorder through its channel_url")
    check(RECEIVED == [("lab", "hello"), ("lab", "through C\nbody")] * 2, f"Recorder calls {RECEIVED}")
    check(Tagged("x").to_dict() == {"type": "Tagged", "tag": "x"}, "private attributes are not fields")
    check(Notifier.from_dict(Tagged("x").to_dict()).tag == "x-restored", "the subclass's _from_dict_impl was not used")
    for bad, exc in (({"type": "NoSuchNotifier"}, ValueError), ("SlackNotifier", TypeError),
                     ({"type": "SlackNotifier"}, TypeError)):
        try:
            Notifier.from_dict(bad)
            check(False, f"from_dict({bad!r}) did not raise")
        except exc:
            pass
    try:
        SlackNotifier.from_dict({"type": "Recorder", "label": "x"})
        check(False, "SlackNotifier.from_dict restored a Recorder")
    except ValueError:
        pass


# --- user subclasses through the C library ----------------------------------------------

def c_send(url, title, text):
    """A sender of the C library with just this channel, as the core uses channel_url():
    returns (code, [(code, detail, attempts)] per channel)."""
    lib = _lib.get()
    opts = lib.mpn_options_new()
    lib.mpn_options_set_urls(opts, url.encode())
    lib.mpn_options_set_config(opts, b"")
    sender, err = ctypes.c_void_p(), ctypes.create_string_buffer(1024)
    code = lib.mpn_sender_new(opts, ctypes.byref(sender), err, len(err))
    check(code == 0 and lib.mpn_sender_channel_count(sender) == 1,
          f"the C library did not take {url}: {_lib.strerror(code)} {err.value!r}")
    msg = lib.mpn_message_new(b"message")
    lib.mpn_message_set_title(msg, title.encode())
    lib.mpn_message_set_text(msg, text.encode())
    results = []
    cb = _lib.RESULT_FN(lambda r, _: results.append((r.contents.code, (r.contents.detail or b"").decode(),
                                                     r.contents.attempts)))
    code = lib.mpn_sender_send(sender, msg, cb, None)
    lib.mpn_message_free(msg)
    lib.mpn_sender_free(sender)
    return code, results


class Boom(Notifier):
    def __call__(self, message):
        raise RuntimeError("secret-in-exception-text")


class Refuses(Notifier):
    def __call__(self, message):
        return False


@case
def user_subclass_channel(t):
    """channel_url() of a subclass with only __call__ is a pynotifier:// channel the C engine
    delivers by calling it, registered after the configuration was loaded (mpn_init)."""
    use_env(t, {"MPINOTIFY_TIMEOUT_MS": "3000"})
    check(_lib.ensure_armed(), "mpn_init did not arm the library in this process")  # configuration loaded
    r = Recorder("sub")
    url = r.channel_url()
    check(re.fullmatch(rf"pynotifier://{os.getpid()}-\d+", url) and r.channel_url() == url, f"channel_url {url!r}")
    code, res = c_send(url, "From C", "line 1\nline 2")
    check(code == 0 and [x[0] for x in res] == [0], f"C sender to {url}: {code} {res}")
    check(RECEIVED == [("sub", "From C\nline 1\nline 2")], f"__call__ got {RECEIVED}")
    boom, refuses = Boom(), Refuses()  # referenced while C may call them: the registry is weak
    code, res = c_send(boom.channel_url(), "x", "y")
    check(code == 9 and res and res[0][1] == "RuntimeError in Boom.__call__", f"raising __call__: {code} {res}")
    code, res = c_send(refuses.channel_url(), "x", "y")
    check(code == 9 and res[0][1] == "Refuses returned False", f"__call__ returning False: {code} {res}")
    gone = Recorder("gone").channel_url()  # the instance is dropped at once
    code, res = c_send(gone, "x", "y")
    check(code == 1 and res[0][2] == 1, f"a dropped notifier must fail once, not be retried: {code} {res}")
    check(not any("secret-in-exception-text" in x[1] for x in res), "an exception's text reached the detail")

    class LoudSlack(SlackNotifier):  # a built-in's subclass with its own __call__
        def __call__(self, message):
            return super().__call__(message.upper())

    s = Sink(t, "loud", script=[OK["slack"]])
    loud = LoudSlack(f"http://127.0.0.1:{s.port}/services/T/B/{tok()}")
    check(loud.channel_url().startswith("pynotifier://"), "an overridden __call__ must be what C calls")
    code, res = c_send(loud.channel_url(), "quiet title", "text")
    check(code == 0, f"LoudSlack through C: {code} {res}")
    slack_check(wait_posts(s, 1, "LoudSlack")[0]["body"], "QUIET TITLE", False)


# --- only the notifier's own channel; secrets; delivery failures ------------------------

@case
def own_channel_only(t):
    """MPINOTIFY_URLS and MPINOTIFY_CONFIG's channels get nothing from a notifier; the file's
    [mpinotify] settings (spool, timeout) still apply."""
    own, env_decoy, file_decoy, urls_decoy = (Sink(t, n) for n in ("own", "env_decoy", "file_decoy", "urls_decoy"))
    spool = os.path.join(t.dir, "file_spool")
    conf = os.path.join(t.dir, "mpinotify.ini")
    with open(conf, "w") as f:
        f.write(textwrap.dedent(f"""\
            [mpinotify]
            urls = {urls_decoy.url('/urls')}
            timeout_ms = 1500
            spool = {spool}

            [channel decoy]
            url = {file_decoy.url('/file')}
            """))
    use_env(t, {"MPINOTIFY_URLS": env_decoy.url("/env"), "MPINOTIFY_CONFIG": conf})
    del os.environ["MPINOTIFY_SPOOL"]  # the file's spool setting must be what applies
    sent(WebhookNotifier(own.url("/own")), "Only mine", "own channel")
    wait_posts(own, 1, "own channel")
    for d in (env_decoy, file_decoy, urls_decoy):
        check(not d.records(), f"{d.name} got a request: a notifier must send to its own channel only")
    ok, err = stderr_of(lambda: WebhookNotifier(f"http://127.0.0.1:{free_port()}/down")("Down"))
    check(ok is False and "not delivered" in err, f"closed port: {ok} {err!r}")
    files = [f for f in os.listdir(spool) if f.endswith(".msg")] if os.path.isdir(spool) else []
    check(len(files) == 1, f"the config file's spool {spool} holds {files}, expected the undelivered message")


SECRET_NOTIFIERS = [  # (factory taking a port, the secrets it was given)
    (lambda p, s: DingNotifier(f"http://127.0.0.1:{p}/robot/send?access_token={s[0]}", secret=s[1]), 2),
    (lambda p, s: SlackNotifier(f"https://hooks.slack.com/services/T0/B0/{s[0]}"), 1),
    (lambda p, s: DiscordNotifier(f"https://discord.com/api/webhooks/123/{s[0]}"), 1),
    (lambda p, s: FeishuNotifier(f"http://127.0.0.1:{p}/open-apis/bot/v2/hook/{s[0]}", secret=s[1]), 2),
    (lambda p, s: TeamsNotifier(f"http://127.0.0.1:{p}/workflows/a/invoke?sig={s[0]}"), 1),
    (lambda p, s: TelegramNotifier(f"123:{s[0]}", 42, api_url=f"http://127.0.0.1:{p}"), 1),
    (lambda p, s: WebhookNotifier(f"http://127.0.0.1:{p}/hook?secret={s[0]}&header=Authorization:{s[1]}"), 2),
    (lambda p, s: EmailNotifier("127.0.0.1", "a@example.org", port=p, user="u", password=s[0], starttls=False), 1),
    (lambda p, s: URLNotifier(f"dingtalk+http://127.0.0.1:{p}/robot/send?access_token={s[0]}&secret={s[1]}"), 2),
]


@case
def repr_masked(t):
    """No secret in repr/str, in the stderr line of a failed delivery, or in a ValueError."""
    use_env(t, {"MPINOTIFY_TIMEOUT_MS": "1000"})
    port = free_port()  # nothing listens: every send fails and logs
    for make, k in SECRET_NOTIFIERS:
        secrets = [tok("Zq9") for _ in range(k)]
        n = make(port, secrets)
        shown = repr(n) + str(n)
        check(type(n).__name__ in shown, f"repr {shown!r}")
        if isinstance(n, (SlackNotifier, DiscordNotifier)):
            ok, err = True, ""  # real service hosts: never contacted by the test
        else:
            ok, err = stderr_of(lambda: n("Secret check"))
            check(ok is False and err.count("\n") == 1 and "not delivered" in err, f"{type(n).__name__}: {ok} {err!r}")
        for s in secrets:
            check(s not in shown and s not in err, f"{type(n).__name__} shows a secret: {shown!r} {err!r}")
    s = tok("Zq9")
    for bad in (lambda: DingNotifier(f"http://h/robot/send?access_token={s}", secret=s, timeout=0),
                lambda: DingNotifier(f"slack+https://hooks.slack.com/services/T/B/{s}"),
                lambda: TelegramNotifier(s, "not a chat"), lambda: URLNotifier(f"nosuch://{s}@host/{s}"),
                lambda: URLNotifier(f"telegram+https://api.telegram.org/bot1:{s}?chat_id=bad!")):
        try:
            bad()
            check(False, "a bad argument did not raise")
        except ValueError as e:
            check(s not in str(e), f"a ValueError shows the secret: {e}")


@case
def delivery_failures(t):
    """A closed port, a 500 and a 429: False or True, never an exception, one masked line
    per failure, the undelivered message kept in the spool."""
    use_env(t, {"MPINOTIFY_TIMEOUT_MS": "2500"})
    secret = tok("Zq9")
    closed = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook/{secret}")
    ok, err = stderr_of(lambda: closed("Nobody listens\nat all"))
    check(ok is False, "delivery to a closed port returned True")
    line = r"mpinotify: WebhookNotifier: not delivered to webhook\+http://127\.0\.0\.1:\d+/hook/\*\*\*: .+\n"
    check(re.fullmatch(line, err), f"the stderr line {err!r}")
    check(secret not in err, "the secret is in the stderr line")
    spooled = t.spooled()
    check(len(spooled) == 1 and spooled[0]["message"].get("title") == "Nobody listens", f"spool {spooled}")
    s500 = Sink(t, "s500", mode="500")
    ok, err = stderr_of(lambda: WebhookNotifier(s500.url("/x"))("Server error"))
    check(ok is False and "HTTP 500" in err and len(s500.posts()) >= 1, f"500: {ok} {err!r}")
    s429 = Sink(t, "s429", script=[{"status": 429, "headers": {"Retry-After": "1"}}])
    ok, err = stderr_of(lambda: WebhookNotifier(s429.url("/x"))("Slow down"))
    check(ok is True and err == "" and len(s429.posts()) == 2, f"429 then ok: {ok} {err!r} {len(s429.posts())} POSTs")
    ding = DingNotifier(f"http://127.0.0.1:{free_port()}/robot/send?access_token={secret}", secret=secret)
    check(stderr_of(lambda: ding("x"))[0] is False, "DingNotifier to a closed port")


@case
def bad_arguments(t):
    """Bad arguments raise TypeError/ValueError at once, naming what is wrong."""
    use_env(t)
    h = "https://oapi.dingtalk.com/robot/send?access_token=x"
    cases = [
        (lambda: DingNotifier(42), TypeError, "ding_url must be a str"),
        (lambda: DingNotifier("  "), ValueError, "ding_url is empty"),
        (lambda: DingNotifier("ftp://example.org/x"), ValueError, "scheme 'ftp'"),
        (lambda: DingNotifier("oapi.dingtalk.com/robot/send"), ValueError, "has no scheme"),
        (lambda: DingNotifier("slack+https://hooks.slack.com/services/T/B/X"), ValueError, "is a slack+ channel"),
        (lambda: DingNotifier(h, secret=7), TypeError, "secret must be a str"),
        (lambda: DingNotifier(h, timeout="5"), TypeError, "timeout must be a number"),
        (lambda: DingNotifier(h, timeout=0), ValueError, "timeout=0"),
        (lambda: DingNotifier(h, secret="env:MPNT_SURELY_UNSET"), ValueError, "MPNT_SURELY_UNSET"),
        (lambda: SlackNotifier("https://hooks.slack.com/services/T/B/X Y"), ValueError, "white space"),
        (lambda: SlackNotifier(None), TypeError, "webhook_url must be a str"),
        (lambda: TelegramNotifier("1:abc", 1.5), TypeError, "chat_id must be an int or a str"),
        (lambda: TelegramNotifier("1:abc", "@bad-name!"), ValueError, "chat_id must be a number"),
        (lambda: TelegramNotifier("env:TG", 1), ValueError, "bot_token must be the token itself"),
        (lambda: EmailNotifier("mail.example.org", []), ValueError, "to is empty"),
        (lambda: EmailNotifier("mail.example.org", 5), TypeError, "to must be an address"),
        (lambda: EmailNotifier("smtp://mail.example.org", "a@x"), ValueError, "host must be a host name"),
        (lambda: EmailNotifier("mail.example.org", "a@x", port=0), ValueError, "port 0"),
        (lambda: EmailNotifier("mail.example.org", "a@x", ssl="yes"), TypeError, "ssl must be True or False"),
        (lambda: URLNotifier("nosuchkind://x"), ValueError, "unknown channel kind"),
        (lambda: URLNotifier("not a url"), ValueError, "white space"),
        (lambda: URLNotifier("hooks.example.org/x"), ValueError, "not a channel URL"),
        (lambda: URLNotifier("webhook+http://a/x,webhook+http://b/y"), ValueError, "more than one channel"),
        (lambda: WebhookNotifier("https://example.org/x")(b"bytes"), TypeError, "str message"),
        (lambda: WebhookNotifier("https://example.org/x")("m", severity="fatal"), ValueError, "severity"),
        (lambda: Notifier()("m"), NotImplementedError, "neither __call__ nor channel_url"),
    ]
    for make, exc, words in cases:
        try:
            make()
            check(False, f"no {exc.__name__} ({words!r} expected)")
        except exc as e:
            check(words in str(e), f"{exc.__name__} {str(e)!r} does not say {words!r}")


# --- alerts and progress -----------------------------------------------------------------

@case
def alert_payload(t):
    """alert(): the payload at the sink, a cooldown mutes (None), a critical is not muted by a
    warning's cooldown, recommendation required; progress() every N steps."""
    s = Sink(t, "alerts")
    use_env(t, {"MPINOTIFY_URLS": s.url("/alerts"), "MPINOTIFY_PROGRESS_EVERY": "10"})
    metrics = {"loss": 9.5, "loss_ema": 2.25}
    a = alert("loss_spike", "warning", 120, "loss 9.5 is 4x its EMA", metrics, recommendation="lower the LR")
    check(a == Alert("loss_spike", "warning", 120, "loss 9.5 is 4x its EMA", metrics, "lower the LR"), f"returned {a}")
    check(alert("loss_spike", "warning", 150, "again", recommendation="lower the LR") is None, "cooldown did not mute")
    crit = Alert("loss_spike", "critical", 150, "loss is NaN", {"lr": 0.001}, "restart from the last checkpoint")
    check(alert(crit) == crit, "a critical alert was muted by the warning's cooldown")
    progress(10, 100, "ten of a hundred")
    progress(11)  # not a multiple of 10: nothing
    posts = wait_posts(s, 3, "two alerts and one progress message")
    alerts = sorted((p["body"] for p in posts if p["body"].get("event") == "alert"), key=lambda b: b["severity"])
    check(len(alerts) == 2, f"events {[p['body'].get('event') for p in posts]}")
    crit_b, warn_b = alerts
    want = {"detector": "loss_spike", "severity": "warning", "step": 120, "message": "loss 9.5 is 4x its EMA",
            "metrics": metrics, "recommendation": "lower the LR"}
    check(warn_b["alert"] == want and warn_b["severity"] == "warning", f"alert {warn_b.get('alert')}")
    check("Recommendation: lower the LR" in warn_b.get("text", ""), f"text {warn_b.get('text')!r}")
    check(crit_b["severity"] == "critical" and crit_b["alert"]["metrics"] == {"lr": 0.001}, f"critical {crit_b}")
    [prog] = [p["body"] for p in posts if p["body"].get("event") == "progress"]
    check(prog["progress"] == {"step": 10, "total": 100, "message": "ten of a hundred"}, f"progress {prog}")
    alert_arguments()


def alert_arguments():
    ok = dict(detector="d", severity="warning", step=1, message="m")
    for kw, exc, words in (
            ({}, TypeError, "recommendation is required"),
            ({"recommendation": " "}, ValueError, "recommendation is empty"),
            ({"severity": "error", "recommendation": "r"}, ValueError, "severity must be 'warning' or 'critical'"),
            ({"detector": "", "recommendation": "r"}, ValueError, "detector is empty"),
            ({"detector": "x" * 64, "recommendation": "r"}, ValueError, "longer than 63"),
            ({"step": "5", "recommendation": "r"}, TypeError, "step must be an int"),
            ({"metric_values": {"loss": "high"}, "recommendation": "r"}, TypeError, "metric 'loss' must be a number"),
            ({"metric_values": [1.0], "recommendation": "r"}, TypeError, "metric_values must be a dict")):
        try:
            alert(**{**ok, **kw})
            check(False, f"alert({kw}) did not raise")
        except exc as e:
            check(words in str(e), f"alert({kw}): {str(e)!r} does not say {words!r}")
    for args, exc in (((-1,), ValueError), (("1",), TypeError), ((1, "10"), TypeError), ((1, None, 5), TypeError)):
        try:
            progress(*args)
            check(False, f"progress{args} did not raise")
        except exc:
            pass


# --- other processes: preloaded with MPI; no library at all --------------------------------

PRELOADED = """
import sys
from mpi4py import MPI
import mpinotify
from mpinotify import _lib
rank = MPI.COMM_WORLD.Get_rank()
assert _lib.get().mpn_is_active() == 1, "not armed by MPI_Init"
assert _lib.source() == "process", _lib.source()
a = mpinotify.alert("grad_norm", "critical", 7, "gradient norm is inf", {"grad_norm": 1e30}, recommendation="clip")
assert a is not None, "alert muted"
if rank == 0:
    assert mpinotify.WebhookNotifier(sys.argv[1])("From rank 0") is True
MPI.COMM_WORLD.Barrier()
sys.stdout.write(f"done{rank}\\n")  # one write: the ranks' lines must not interleave
"""


@case
def preloaded_mpi4py(t):
    """Preloaded into 2 mpi4py ranks (armed in MPI_Init): the package takes the process's library
    (MPINOTIFY_LIBRARY points nowhere), the same alert on both ranks is one message."""
    alerts, msgs = Sink(t, "alerts"), Sink(t, "messages")
    env = {"MPINOTIFY_URLS": alerts.url("/a"), "PYTHONPATH": PYTHON_DIR, "PYTHONDONTWRITEBYTECODE": "1",
           "MPINOTIFY_LIBRARY": "/nonexistent/libmpinotify.so"}
    r = t.mpirun(2, sys.executable, ["-c", PRELOADED, msgs.url("/m")], env=env, label="mpi4py preloaded")
    check(r.rc == 0 and sorted(r.out.split()) == ["done0", "done1"], f"exit status {r.rc}, output {r.out!r}")
    [p] = wait_posts(alerts, 1, "one alert for two ranks")
    b = p["body"]
    check(b.get("event") == "alert" and b.get("ranks") == [0, 1] and b["alert"]["detector"] == "grad_norm",
          f"alert {b}")
    [m] = wait_posts(msgs, 1, "the notifier's message")
    check(m["body"].get("title") == "From rank 0", f"message {m['body']}")


MISSING = """
import mpinotify
from mpinotify import _lib
n = mpinotify.SlackNotifier("https://hooks.slack.com/services/T0/B0/SECRETzq9token")
assert n("x") is False and n("y") is False
assert mpinotify.alert("d", "warning", 1, "m", recommendation="r") is None
mpinotify.progress(5)
try:
    _lib.get()
except RuntimeError as e:
    assert str(e) == _lib.NOT_FOUND, str(e)
    print("ok")
"""


@case
def library_missing(t):
    """Without any libmpinotify: import works, sends return False/None with one line each, and
    _lib.get() raises the RuntimeError that says what to do."""
    probe = t.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('libmpinotify.so.0')"], "soname probe")
    if probe.rc == 0:
        harness.skip("libmpinotify.so.0 is installed system-wide: the soname fallback finds it")
    r = t.run([sys.executable, "-c", MISSING], "no library",
              {"MPINOTIFY_LIBRARY": "/nonexistent/libmpinotify.so", "PYTHONPATH": PYTHON_DIR})
    check(r.rc == 0 and r.out.strip() == "ok", f"exit status {r.rc}: {r.out!r}")
    lines = r.lines()
    check(len(lines) == 3 and all(_lib.NOT_FOUND in ln for ln in lines), f"stderr {lines}")
    check("SECRETzq9token" not in r.err, "the secret is in the output")


def set_lib(a):
    global LIB
    LIB = os.path.abspath(a.lib)


if __name__ == "__main__":
    sys.exit(harness.main(tools=False, setup=set_lib))
