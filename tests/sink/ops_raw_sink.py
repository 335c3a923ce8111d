#!/usr/bin/env python3
"""mpn_sink.py (same options, same answers) that also records each request's body as
received: "raw" (base64) and "raw_len" (bytes). Signatures are computed over those exact
bytes, and a service's size limit counts them, so tests check both on what arrived.
"""
import base64
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mpn_sink  # noqa: E402

_local = threading.local()  # the body read by this handler thread, until recorded
_read_body, _record = mpn_sink.Handler._read_body, mpn_sink.record


def read_body(self):
    _local.raw = _read_body(self)
    return _local.raw


def record(path, entry, when=None):
    raw = getattr(_local, "raw", None)
    if raw is not None and "method" in entry:
        entry["raw"], entry["raw_len"] = base64.b64encode(raw).decode(), len(raw)
        _local.raw = None
    _record(path, entry, when)


mpn_sink.Handler._read_body = read_body
mpn_sink.record = record

if __name__ == "__main__":
    sys.exit(mpn_sink.main())
