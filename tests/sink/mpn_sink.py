#!/usr/bin/env python3
"""Loopback webhook sink for the mpinotify tests (Python 3 standard library only).

Every request becomes one JSON line in --out:
  {"method", "path", "headers", "body" (parsed JSON, else raw text), "time" (epoch seconds)}
A TLS handshake that fails (e.g. the client rejected our certificate) becomes
  {"event": "tls_error", "error": "...", "time": ...}
so a test can tell "the client tried and refused" from "the client never tried".

Modes: ok (answer 200), 500 (answer 500), hang (read the request, never answer).
It binds 127.0.0.1 port 0 and writes the chosen port to --port-file.
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


def record(path, entry):
    entry["time"] = time.time()
    with _lock, open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
        f.flush()


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

    def _handle(self):
        raw = self._read_body()
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
        record(self.server.out, {"method": self.command, "path": self.path,
                                 "headers": dict(self.headers.items()), "body": body})
        if self.server.mode == "hang":
            _stop.wait()  # keep the connection open and silent until the sink stops
            return
        code = 500 if self.server.mode == "500" else 200
        payload = b'{"ok": true}' if code == 200 else b'{"error": "sink mode 500"}'
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_PUT = do_GET = _handle

    def log_message(self, fmt, *args):
        pass


class Sink(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # already recorded (tls_error) or a client that hung up: not the sink's failure


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["ok", "hang", "500"], default="ok")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    a = ap.parse_args()

    srv = Sink(("127.0.0.1", 0), Handler)
    srv.out, srv.mode, srv.tls = a.out, a.mode, None
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
