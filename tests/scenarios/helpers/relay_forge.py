#!/usr/bin/env python3
"""A "job" run under mpinotify-run that attacks its relay (relay.forged, tests/scenarios/relay.py).

    relay_forge.py GENUINE_CHANNEL_URL

It reads MPINOTIFY_RELAY_ADDR (host:port, or several comma-separated: it takes the last, the loopback) and POSTs frames to http://ADDR/relay that must
all be refused with HTTP 403: random bytes, a well-formed frame sealed with a wrong key,
and, when it can read MPINOTIFY_RELAY_KEY, frames with the right key that are stale or
altered. Frame: "MPR1", 8-byte big-endian time in ms, 12-byte nonce, then AES-256-GCM
ciphertext + 16-byte tag with the 24-byte header as associated data. Prints one line
"forged KIND STATUS" per attempt.

With the key it also seals one genuine frame for GENUINE_CHANNEL_URL (the plaintext the
ranks send, lib/deliver/relay_client.c: {"v": 1, "id", "channel", "message"}), which must
be accepted (2xx: "genuine STATUS"), then sends that same frame again, which must be refused
("forged replayed 403"): the rejections are not a relay that refuses everything.
Exits 0 only when every forged frame got 403 and the genuine one 2xx.
"""
import http.client
import json
import os
import struct
import sys
import time

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # then only frames with a correct header and random contents
    AESGCM = None


def frame(key, when_ms, plain):
    header = b"MPR1" + struct.pack(">Q", when_ms) + os.urandom(12)
    if AESGCM is None or key is None:
        return header + os.urandom(len(plain) + 16)
    return header + AESGCM(key).encrypt(header[12:], plain, header)


def post(addr, body):
    host, port = addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=10)
    try:
        c.request("POST", "/relay", body=body, headers={"Content-Type": "application/octet-stream"})
        r = c.getresponse()
        r.read()
        return r.status
    except OSError as e:
        return f"error:{e}"
    finally:
        c.close()


def main():
    addr = os.environ.get("MPINOTIFY_RELAY_ADDR")
    if not addr:
        print("MPINOTIFY_RELAY_ADDR is not set: no relay to attack")
        return 2
    addr = addr.split(",")[-1]  # every address of the launch node, the loopback last: this node's
    hexkey = os.environ.get("MPINOTIFY_RELAY_KEY", "")
    key = bytes.fromhex(hexkey) if len(hexkey) == 64 else None
    now = int(time.time() * 1000)

    def message(title, text):
        mid = "msg_" + os.urandom(16).hex()
        m = {"schema": "mpinotify/1", "event": "message", "id": mid, "title": title, "text": text,
             "severity": "info", "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        return json.dumps({"v": 1, "id": mid, "channel": sys.argv[1], "message": m}).encode()

    plain = message("forged", "must never arrive")
    attempts = [("random", os.urandom(200)),
                ("empty", b""),
                ("wrong-key", frame(os.urandom(32), now, plain))]
    if key is not None and AESGCM is not None:
        good = frame(key, now, plain)
        altered = bytearray(good)
        altered[30] ^= 1
        attempts += [("altered", bytes(altered)),
                     ("stale", frame(key, now - 3600 * 1000, plain)),
                     ("header-changed", good[:4] + struct.pack(">Q", now + 1) + good[12:])]
    else:
        print("note: no MPINOTIFY_RELAY_KEY or no cryptography module: forged frames with random contents only")
    bad = 0
    for kind, body in attempts:
        status = post(addr, body)
        print(f"forged {kind} {status}")
        bad += status != 403
    if key is not None and AESGCM is not None:
        good = frame(key, int(time.time() * 1000), message("genuine", "sealed with the job's key"))
        status = post(addr, good)
        print(f"genuine {status}")
        bad += not (isinstance(status, int) and 200 <= status < 300)
        status = post(addr, good)
        print(f"forged replayed {status}")
        bad += status != 403
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
