#!/usr/bin/env python3
"""A "job" run under mpinotify-run that floods its relay while clients stall (relay.concurrent, tests/scenarios/relay.py).

    relay_flood.py RELAYED_CHANNEL_URL

It reads MPINOTIFY_RELAY_ADDR (host:port, or several comma-separated: it takes the last, the loopback) and MPINOTIFY_RELAY_KEY (64 hex digits), then:
  1. opens STALLED connections to http://ADDR/relay that send half a request and then wait
     (half stop inside the headers, half inside a body), each waiting for its answer;
  2. while those are open, POSTs HELLOS "hello" notices (ranks 0..HELLOS-1 of a world of
     HELLOS, as runtime/launcher_notices.c sends them) and DELIVERS messages to deliver to
     RELAYED_CHANNEL_URL (the plaintext lib/deliver/relay_client.c sends), every frame on its
     own connection, from CLIENTS concurrent clients;
  3. waits for the stalled connections' answers.
Frames are sealed and posted by relay_forge.py's helpers (the format of lib/deliver/seal.c).

Prints "valid KIND N STATUS" per frame, "stalled KIND N STATUS" per stalled connection, and
one "summary" line. Exits 0 only when every valid frame got 200 and every stalled connection
408. Socket timeouts are hang guards only: nothing here measures time.
"""
import concurrent.futures
import json
import os
import socket
import sys
import threading
import time

from relay_forge import AESGCM, frame, post  # sealing and one POST, as the forging job does them

STALLED = 20
HELLOS = 160
DELIVERS = 40
CLIENTS = 40
GUARD_S = 90  # a hang guard for the stalled connections, far beyond the server's 5 s deadline


def hello(rank):
    return {"v": 1, "type": "hello", "rank": rank, "pid": os.getpid(), "host": socket.gethostname(),
            "world_size": HELLOS, "wall_ms": int(time.time() * 1000)}


def delivery(channel, n):
    mid = "msg_" + os.urandom(16).hex()
    m = {"schema": "mpinotify/1", "event": "message", "id": mid, "title": f"flood {n}",
         "text": "relayed while other clients stalled", "severity": "info",
         "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
    return {"v": 1, "id": mid, "channel": channel, "message": m}


class Stalled(threading.Thread):
    """Half a request, then only waiting: the status line of the answer, or what went wrong."""

    def __init__(self, host, port, partial):
        super().__init__(daemon=True)
        self.sock = socket.create_connection((host, port), timeout=GUARD_S)
        self.sock.sendall(partial)
        self.status, self.answered_at = None, None

    def run(self):
        data = b""
        try:
            while b"\r\n" not in data:
                chunk = self.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            self.status = f"error:{e}"
        self.answered_at = time.monotonic()
        self.sock.close()
        if self.status is None:
            parts = data.split(b" ", 2)
            self.status = int(parts[1]) if len(parts) > 2 and parts[0].startswith(b"HTTP/1.") else "closed"


def main():
    addr, hexkey = os.environ.get("MPINOTIFY_RELAY_ADDR"), os.environ.get("MPINOTIFY_RELAY_KEY", "")
    if not addr or len(hexkey) != 64:
        print("MPINOTIFY_RELAY_ADDR or MPINOTIFY_RELAY_KEY is not set: no relay to flood")
        return 2
    addr = addr.split(",")[-1]  # every address of the launch node, the loopback last: this node's
    key = bytes.fromhex(hexkey)
    if AESGCM is None:
        print("the Python cryptography module is missing: no frame can be sealed")
        return 2
    host, port = addr.rsplit(":", 1)
    host, port = host.strip("[]"), int(port)

    partial = {"headers": b"POST /relay HTTP/1.1\r\nContent-Le",
               "body": b"POST /relay HTTP/1.1\r\nContent-Length: 100\r\n\r\n0123456789"}
    kinds = ["headers" if i % 2 else "body" for i in range(STALLED)]
    stalled = [Stalled(host, port, partial[k]) for k in kinds]
    for s in stalled:
        s.start()

    frames = [("hello", r, json.dumps(hello(r)).encode()) for r in range(HELLOS)]
    frames += [("deliver", n, json.dumps(delivery(sys.argv[1], n)).encode()) for n in range(DELIVERS)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        statuses = list(pool.map(lambda f: post(addr, frame(key, int(time.time() * 1000), f[2])), frames))
    valid_done = time.monotonic()
    for s in stalled:
        s.join(GUARD_S)

    bad = 0
    for (kind, n, _), status in zip(frames, statuses):
        print(f"valid {kind} {n} {status}")
        bad += status != 200
    for i, (kind, s) in enumerate(zip(kinds, stalled)):
        print(f"stalled {kind} {i} {s.status}")
        bad += s.status != 408
    # For the reader only, never asserted (it depends on timing): how many stalled connections
    # were still waiting when every valid frame had been answered.
    waiting = sum(1 for s in stalled if s.answered_at is None or s.answered_at > valid_done)
    print(f"summary valid={len(frames)} stalled={STALLED} bad={bad} still_stalled_after_valid={waiting}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
