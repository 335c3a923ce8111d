#!/usr/bin/env python3
"""Email channel scenarios (issue 4): mpinotify-send and a real MPI crash through
smtp:// (STARTTLS required), smtps:// (implicit TLS) and plain SMTP (starttls=no) to the
loopback SMTP server tests/sink/mpn_smtp.py, which records every message parsed with
Python's email package. One CTest entry runs one case:

    python3 channels_email.py CASE --lib ... --send-tool ... --progs ... --sink tests/sink/mpn_sink.py
"""
import html
import json
import os
import re
import subprocess
import sys
import time

import harness
from harness import check, fail, main

NP = 8
CASES = {}
# The SMTP password of every case: it must never appear in any output or recorded line.
PASSWORD = "Smtp-pa55word-never-shown-7f3a"


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def wait_for(pred, tries=100):
    """Poll for something the server records asynchronously (not a timing check)."""
    for _ in range(tries):
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class Smtp:
    """tests/sink/mpn_smtp.py as a child process (see its docstring for the options)."""

    def __init__(self, t, name="smtp", tls=None, implicit=False, starttls=True, auth=False, require_auth=False,
                 password=None, reject=(), script=None):
        self.out = os.path.join(t.dir, name + ".jsonl")
        port_file = os.path.join(t.dir, name + ".port")
        check(not os.path.exists(port_file), f"two SMTP servers named {name!r} in one test")
        server = os.path.join(os.path.dirname(os.path.abspath(t.paths.sink)), "mpn_smtp.py")
        cmd = [sys.executable, server, "--port-file", port_file, "--out", self.out]
        env = dict(os.environ)
        if tls:
            cmd += ["--tls", tls["cert"], tls["key"]]
        if implicit:
            cmd.append("--implicit-tls")
        if not starttls:
            cmd.append("--no-starttls")
        if auth:
            cmd.append("--auth")
        if require_auth:
            cmd.append("--require-auth")
        if password:
            env["MPN_SMTP_EXPECTED_PASSWORD"] = password  # the environment, never argv
            cmd += ["--password-env", "MPN_SMTP_EXPECTED_PASSWORD"]
        for r in reject:
            cmd += ["--reject-rcpt", r]
        if script is not None:
            script_file = os.path.join(t.dir, name + ".script.json")
            with open(script_file, "w") as f:
                json.dump(script, f)
            cmd += ["--script", script_file]
        self.name = name
        self.describe = ("implicit TLS" if implicit else "STARTTLS" if tls and starttls else "plain") + \
            (", AUTH" if auth else "") + (f", rejects {list(reject)}" if reject else "") + \
            (f", script {script}" if script else "")
        self.proc = subprocess.Popen(cmd, env=env)
        for _ in range(200):
            if os.path.exists(port_file):
                break
            check(self.proc.poll() is None, f"SMTP server exited early with status {self.proc.returncode}")
            time.sleep(0.1)
        check(os.path.exists(port_file), "SMTP server did not write its port file")
        with open(port_file) as f:
            self.port = int(f.read())
        t.cleanups.append(self.stop)
        harness._shown.append(self)

    def url(self, query, scheme="smtp", userinfo=""):
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}?{query}"

    def records(self):
        with open(self.out, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def events(self, kind):
        return [r for r in self.records() if r.get("event") == kind]

    def sessions(self, n):
        """The session records once at least n connections ended: the server writes one when the
        client hangs up, which may be just after mpinotify-send exits (not a timing check)."""
        wait_for(lambda: len(self.events("session")) >= n)
        found = self.events("session")
        check(len(found) >= n, f"{len(found)} SMTP session(s) ended, expected at least {n}")
        return found

    def messages(self):
        return self.events("message")

    def accepted(self):
        return [m for m in self.messages() if m["accepted"]]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def show(self):
        recs = self.records() if os.path.exists(self.out) else []
        print(f"--- SMTP server [{self.name}, {self.describe}, port {self.port}] recorded {len(recs)} event(s):")
        for r in recs:
            r = dict(r)
            if len(r.get("raw", "")) > 6000:
                r["raw"] = r["raw"][:6000] + f"... ({len(r['raw'])} characters)"
            if "parsed" in r:
                for p in r["parsed"].get("parts", []):
                    if len(p.get("payload", "")) > 3000:
                        p["payload"] = p["payload"][:3000] + "..."
            print(json.dumps(r, indent=2, sort_keys=True))


# --- checks ------------------------------------------------------------------------

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
    check(wait_for(lambda: smtp.events("tls_error")), "no TLS handshake was attempted and refused with the wrong CA")
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
    prog = t.paths.prog("mpi_crash")
    base = t.mpirun(NP, prog, ["segv=1,3,6"], preload=False)
    check(base.rc == 139, f"baseline exit status {base.rc}, expected 139: test premise broken")
    r = t.mpirun(NP, prog, ["segv=1,3,6"], env=env)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
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


if __name__ == "__main__":
    sys.exit(main(CASES))
