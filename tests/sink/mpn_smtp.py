#!/usr/bin/env python3
"""Loopback SMTP server for the mpinotify email tests (Python 3 standard library only).

It speaks enough ESMTP for libcurl: EHLO/HELO, STARTTLS (advertised when --tls is given,
unless --no-starttls), AUTH PLAIN and LOGIN (with --auth), MAIL FROM, RCPT TO, DATA, RSET,
NOOP, QUIT. --implicit-tls wraps every connection in TLS at once (smtps://).

One JSON line per event in --out:
  {"event": "message", "mail_from", "rcpt" (accepted recipients), "rejected" (refused ones),
   "status" (the reply to the end of DATA), "accepted" (status 250), "tls", "auth_user",
   "raw" (the message as received, dot-unstuffed), "size",
   "parsed": {"content_type", "headers": {"Subject" (decoded), "Subject_raw", "From", "To",
              "Message-ID", "Date", "MIME-Version"}, "parts": [{"content_type", "charset",
              "transfer_encoding", "payload" (decoded text)}, ...]}, "time"}
  {"event": "session", "commands": ["EHLO", "STARTTLS", ...], "tls", "auth_user", "time"}
    when a connection ends (AUTH arguments are never recorded)
  {"event": "auth", "mechanism", "user", "password_ok" (null without --password-env)}
  {"event": "tls_error", "error"} when a TLS handshake fails
The password is never written anywhere: with --password-env VAR the server compares it
with $VAR (535 when it differs) and records only whether it matched.

Replies on a script (--script FILE, a JSON list consumed one entry per transaction, at
MAIL FROM): {"stage": "mail"|"rcpt"|"data"|"end", "code": 451, "text": "..."}; stage "end"
(the default) answers the final "." instead of 250, "data" answers the DATA command
instead of 354, "mail"/"rcpt" answer those commands. --reject-rcpt ADDR (repeatable)
answers 550 to that recipient every time.
It binds 127.0.0.1 on --port (default 0: any free port) and writes the port to --port-file.
"""
import argparse
import base64
import binascii
import email
import email.policy
import json
import os
import re
import signal
import socketserver
import ssl
import sys
import threading
import time

_lock = threading.Lock()


def record(path, entry):
    entry["time"] = time.time()
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


def parse_message(raw):
    """The message's structure as the tests check it."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = {"content_type": msg.get_content_type(), "headers": {}, "parts": [], "defects": []}
    for name in ("Subject", "From", "To", "Message-ID", "Date", "MIME-Version", "Auto-Submitted"):
        v = msg.get(name)
        out["headers"][name] = None if v is None else str(v)
    raw_subject = re.search(rb"^Subject:(.*(?:\r?\n[ \t].*)*)", raw, re.M | re.I)
    out["headers"]["Subject_raw"] = raw_subject.group(1).decode("ascii", "replace").strip() if raw_subject else None
    for part in msg.walk():
        out["defects"] += [type(d).__name__ for d in part.defects]
        if part.is_multipart():
            continue
        try:
            payload = part.get_content()
        except (LookupError, ValueError) as e:
            payload = f"<undecodable: {e}>"
        out["parts"].append({"content_type": part.get_content_type(), "charset": part.get_content_charset(),
                             "transfer_encoding": part.get("Content-Transfer-Encoding"),
                             "payload": payload if isinstance(payload, str) else repr(payload)})
    return out


class Handler(socketserver.StreamRequestHandler):
    timeout = 60

    def setup(self):
        srv = self.server
        if srv.implicit:
            try:
                self.request = srv.tls.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                record(srv.out, {"event": "tls_error", "error": str(e)})
                raise
        super().setup()
        self.tls = srv.implicit
        self.auth_user = None
        self.commands = []
        self.reset()

    def reset(self):
        self.mail_from, self.rcpt, self.rejected, self.entry = None, [], [], {}

    def reply(self, code, text):
        lines = text if isinstance(text, list) else [text]
        out = "".join(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}\r\n" for i, line in enumerate(lines))
        self.wfile.write(out.encode())
        self.wfile.flush()

    def readline(self):
        line = self.rfile.readline(1 << 20)
        if not line:
            raise EOFError
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    def scripted(self, stage):
        e = self.entry
        if e and e.get("stage", "end") == stage:
            return int(e.get("code", 451)), e.get("text", f"scripted {stage} failure")
        return None

    def handle(self):
        try:
            self.reply(220, "mpn_smtp ESMTP ready")
            while True:
                line = self.readline()
                verb, _, arg = line.partition(" ")
                verb = verb.upper()
                self.commands.append(verb)
                fn = getattr(self, "cmd_" + verb, None)
                if fn is None:
                    self.reply(502, "5.5.2 command not recognised")
                elif fn(arg) == "quit":
                    return
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            pass
        finally:
            record(self.server.out, {"event": "session", "commands": self.commands, "tls": self.tls,
                                     "auth_user": self.auth_user})

    # --- commands ---------------------------------------------------------------

    def cmd_EHLO(self, arg):
        srv = self.server
        lines = ["mpn_smtp greets " + (arg or "?"), "8BITMIME", "SIZE 20971520"]
        if srv.tls and srv.starttls and not self.tls:
            lines.append("STARTTLS")
        if srv.auth:
            lines.append("AUTH PLAIN LOGIN")
        lines.append("HELP")
        self.reset()
        self.reply(250, lines)

    def cmd_HELO(self, arg):
        self.reset()
        self.reply(250, "mpn_smtp greets " + (arg or "?"))

    def cmd_STARTTLS(self, arg):
        srv = self.server
        if not (srv.tls and srv.starttls) or self.tls:
            self.reply(502, "5.5.1 STARTTLS not available")
            return
        self.reply(220, "2.0.0 ready to start TLS")
        try:
            self.request = srv.tls.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            record(srv.out, {"event": "tls_error", "error": str(e)})
            raise EOFError
        self.rfile = self.request.makefile("rb")
        self.wfile = socketserver._SocketWriter(self.request)
        self.tls = True
        self.reset()

    def check_password(self, mechanism, user, password):
        want = os.environ.get(self.server.password_env) if self.server.password_env else None
        ok = None if want is None else password == want
        record(self.server.out, {"event": "auth", "mechanism": mechanism, "user": user, "password_ok": ok})
        if ok is False:
            self.reply(535, "5.7.8 authentication credentials invalid")
            return
        self.auth_user = user
        self.reply(235, "2.7.0 authentication successful")

    def cmd_AUTH(self, arg):
        self.commands[-1] = "AUTH"  # never keep the credentials
        if not self.server.auth:
            self.reply(502, "5.5.1 AUTH not available")
            return
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        try:
            if mech == "PLAIN":
                if not initial:
                    self.reply(334, "")
                    initial = self.readline()
                _, user, password = base64.b64decode(initial).decode("utf-8").split("\0", 2)
            elif mech == "LOGIN":
                if initial:
                    user = base64.b64decode(initial).decode("utf-8")
                else:
                    self.reply(334, base64.b64encode(b"Username:").decode())
                    user = base64.b64decode(self.readline()).decode("utf-8")
                self.reply(334, base64.b64encode(b"Password:").decode())
                password = base64.b64decode(self.readline()).decode("utf-8")
            else:
                self.reply(504, "5.5.4 mechanism not supported")
                return
        except (ValueError, binascii.Error, UnicodeDecodeError):
            self.reply(501, "5.5.2 cannot decode the credentials")
            return
        self.check_password(mech, user, password)

    def cmd_MAIL(self, arg):
        m = re.match(r"(?i)FROM:\s*<([^>]*)>", arg)
        if not m:
            self.reply(501, "5.5.4 syntax: MAIL FROM:<address>")
            return
        if self.server.auth and self.server.require_auth and not self.auth_user:
            self.reply(530, "5.7.0 authentication required")
            return
        self.reset()
        with _lock:
            self.entry = self.server.script.pop(0) if self.server.script else {}
        s = self.scripted("mail")
        if s:
            self.reply(*s)
            return
        self.mail_from = m.group(1)
        self.reply(250, "2.1.0 sender ok")

    def cmd_RCPT(self, arg):
        m = re.match(r"(?i)TO:\s*<([^>]*)>", arg)
        if not m:
            self.reply(501, "5.5.4 syntax: RCPT TO:<address>")
            return
        if self.mail_from is None:
            self.reply(503, "5.5.1 MAIL first")
            return
        addr = m.group(1)
        s = self.scripted("rcpt")
        if addr.lower() in self.server.reject_rcpt or s:
            self.rejected.append(addr)
            self.reply(*(s or (550, f"5.1.1 <{addr}>: recipient address rejected")))
            return
        self.rcpt.append(addr)
        self.reply(250, "2.1.5 recipient ok")

    def cmd_DATA(self, arg):
        if self.mail_from is None or not self.rcpt:
            self.reply(503, "5.5.1 need MAIL and RCPT first")
            return
        s = self.scripted("data")
        if s:
            self.reply(*s)
            self.reset()
            return
        self.reply(354, "end data with <CR><LF>.<CR><LF>")
        chunks = []
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                raise EOFError
            if line in (b".\r\n", b".\n"):
                break
            chunks.append(line[1:] if line.startswith(b"..") else line)
        raw = b"".join(chunks)
        code, text = self.scripted("end") or (250, "2.0.0 queued as mpn%d" % int(time.time() * 1000))
        entry = {"event": "message", "mail_from": self.mail_from, "rcpt": self.rcpt, "rejected": self.rejected,
                 "status": code, "accepted": code == 250, "tls": self.tls, "auth_user": self.auth_user,
                 "size": len(raw), "raw": raw.decode("utf-8", "replace")}
        try:
            entry["parsed"] = parse_message(raw)
        except Exception as e:  # a malformed message is a finding, not a crash of the server
            entry["parsed"] = {"error": repr(e)}
        record(self.server.out, entry)
        self.reply(code, text)
        self.reset()

    def cmd_RSET(self, arg):
        self.reset()
        self.reply(250, "2.0.0 reset")

    def cmd_NOOP(self, arg):
        self.reply(250, "2.0.0 ok")

    def cmd_QUIT(self, arg):
        self.reply(221, "2.0.0 bye")
        return "quit"


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up or failed TLS: recorded where it matters


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="certificate for STARTTLS or implicit TLS")
    ap.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (smtps)")
    ap.add_argument("--no-starttls", action="store_true", help="do not offer STARTTLS")
    ap.add_argument("--auth", action="store_true", help="offer AUTH PLAIN LOGIN")
    ap.add_argument("--require-auth", action="store_true", help="530 to MAIL before AUTH")
    ap.add_argument("--password-env", help="environment variable holding the expected password")
    ap.add_argument("--reject-rcpt", action="append", default=[], help="answer 550 to this recipient")
    ap.add_argument("--script", help="JSON list of scripted replies, one per transaction")
    a = ap.parse_args()
    if a.implicit_tls and not a.tls:
        ap.error("--implicit-tls needs --tls CERT KEY")
    script = []
    if a.script:
        with open(a.script, encoding="utf-8") as f:
            script = json.load(f)
        if not isinstance(script, list) or not all(isinstance(e, dict) for e in script):
            ap.error("--script must hold a JSON list of objects")

    srv = Server(("127.0.0.1", a.port), Handler)
    srv.out, srv.script, srv.implicit = a.out, script, a.implicit_tls
    srv.starttls, srv.auth, srv.require_auth = not a.no_starttls, a.auth, a.require_auth
    srv.password_env = a.password_env
    srv.reject_rcpt = {r.lower() for r in a.reject_rcpt}
    srv.tls = None
    if a.tls:
        srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.tls.load_cert_chain(*a.tls)
    open(a.out, "a").close()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, a.port_file)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
