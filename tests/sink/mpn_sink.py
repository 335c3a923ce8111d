#!/usr/bin/env python3
"""Loopback webhook sink for the mpinotify tests (Python 3 standard library only).

Every request becomes one JSON line in --out:
  {"method", "path", "headers", "body" (parsed JSON, else raw text), "time" (epoch seconds
   when the request was read), "status" (the HTTP status served, null when never answered),
   "reply" (the body served, parsed JSON)}
A TLS handshake that fails (e.g. the client rejected our certificate) becomes
  {"event": "tls_error", "error": "...", "time": ...}
so a test can tell "the client tried and refused" from "the client never tried".

Answers: first the entries of --script FILE in order, one per request (a JSON list of
  {"status": 500, "headers": {"Retry-After": "1"}, "body": {...} or "text", "delay": S,
   "hang": true}; every key optional, status defaults to 200), then --mode:
  ok    200 with {"ok": true}; for a path containing /robot/send (DingTalk)
        {"errcode": 0, "errmsg": "ok"}, for /open-apis/ (Feishu) {"code": 0, "msg": "success"}
  500   500 with {"error": "sink mode 500"}
  hang  read the request, never answer
  slow  answer as ok after --delay S seconds
It binds 127.0.0.1 (or --bind, an address of a test's own namespaces) on --port (default 0: any free port) and writes the port to --port-file.
It also works as a plain HTTP forward proxy target: a proxied request's path is the absolute URL.
"""
import argparse
import json
import os
import signal
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_stop = threading.Event()


def record(path, entry, when=None):
    entry["time"] = time.time() if when is None else when
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


def ok_body(path):
    if "/robot/send" in path:
        return {"errcode": 0, "errmsg": "ok"}
    if "/open-apis/" in path:
        return {"code": 0, "msg": "success"}
    return {"ok": True}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        # Handshake per connection in the handler thread: a stalled or refusing
        # client must not block the accept loop.
        if self.server.tls is not None:
            try:
                self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                record(self.server.out, {"event": "tls_error", "error": str(e)})
                raise
        super().setup()

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raw = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                chunk = self.rfile.read(size + 2)  # data + CRLF
                if size == 0:
                    return raw
                raw += chunk[:size]
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self):
        """The next scripted answer, else the mode's: a dict with status/headers/body/delay/hang."""
        srv = self.server
        with _lock:
            if srv.script:
                return dict(srv.script.pop(0))
        if srv.mode == "hang":
            return {"hang": True}
        if srv.mode == "500":
            return {"status": 500, "body": {"error": "sink mode 500"}}
        if srv.mode == "slow":
            return {"delay": srv.delay}
        return {}

    def _handle(self):
        raw = self._read_body()
        received = time.time()
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        ans = self._answer()
        hang = bool(ans.get("hang"))
        status = None if hang else int(ans.get("status", 200))
        reply = ans.get("body", ok_body(self.path) if status is not None and 200 <= status < 300 else {})
        record(self.server.out, {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                 "body": body, "status": status, "reply": None if hang else reply}, received)
        if hang:
            _stop.wait()  # keep the connection open and silent until the sink stops
            return
        if ans.get("delay") and _stop.wait(float(ans["delay"])):
            return  # stopping: never answered
        payload = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (ans.get("headers") or {}).items():
            self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_GET = _handle

    def log_message(self, fmt, *args):
        pass


class Sink(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # a test restarts a sink on the port an earlier one used

    def handle_error(self, request, client_address):
        pass  # already recorded (tls_error) or a client that hung up: not the sink's failure


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (default: any free one)")
    ap.add_argument("--bind", default="127.0.0.1",
                    help="address to listen on (a test's own namespace address; never a public one)")
    ap.add_argument("--mode", choices=["ok", "hang", "500", "slow"], default="ok")
    ap.add_argument("--delay", type=float, default=30.0, help="seconds before a slow answer (mode slow)")
    ap.add_argument("--script", help="JSON list of answers served in order before --mode applies")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()

    script = []
    if a.script:
        with open(a.script, encoding="utf-8") as f:
            script = json.load(f)
        if not isinstance(script, list) or not all(isinstance(e, dict) for e in script):
            ap.error("--script must hold a JSON list of objects")
    srv = Sink((a.bind, a.port), Handler)
    srv.out, srv.mode, srv.delay, srv.script, srv.tls = a.out, a.mode, a.delay, script, None
    if a.tls:
        srv.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.tls.load_cert_chain(*a.tls)
    open(a.out, "a").close()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.replace(tmp, a.port_file)  # atomic: readers never see a partial port
    # SIGTERM stops it cleanly (SIGINT may be ignored when started in the background).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        _stop.set()
        srv.server_close()


if __name__ == "__main__":
    sys.exit(main())
