"""Python exceptions through libmpinotify's engine: one message per unique
exception across ranks, with the type, the message and the traceback.

The frames come from Python (traceback.extract_tb), so the signature is the
exception's own site (file name and function of its innermost frames), not
the ctypes call path that every Python caller shares.
"""
import os
import sys
import traceback

from . import _lib

UNCAUGHT = _lib.EXCEPTION_UNCAUGHT
FATAL = _lib.EXCEPTION_FATAL


def type_name(exc):
    """`ValueError` for builtins (and __main__), `torch.cuda.OutOfMemoryError` otherwise, as Python prints it."""
    t = type(exc)
    module = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", t.__name__)
    return name if module in (None, "builtins", "__main__") else f"{module}.{name}"


def _text(value):
    return None if value is None else str(value).encode("utf-8", "replace")


def _message(exc):
    try:
        return str(exc)
    except Exception:  # a __str__ that raises: Python prints <exception str() failed>
        return "<exception str() failed>"


def _add_frames(lib, handle, exc):
    for fs in traceback.extract_tb(exc.__traceback__):
        lib.mpn_exception_add_frame(handle, _text(fs.filename), fs.lineno or 0, _text(fs.name), _text(fs.line or None))


def build(exc, context=None, urls=None, extra=None):
    """An mpn_exception handle for `exc`, or None when out of memory."""
    lib = _lib.get()
    handle = lib.mpn_exception_new(_text(type_name(exc)), _text(_message(exc)))
    if not handle:
        return None
    try:
        _fill(lib, handle, exc, context, urls, extra)
    except BaseException:
        lib.mpn_exception_free(handle)
        raise
    return handle


def _fill(lib, handle, exc, context, urls, extra):
    _add_frames(lib, handle, exc)
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    lib.mpn_exception_set_text(handle, _text(text))
    if context is not None:
        lib.mpn_exception_set_context(handle, _text(context))
    for key, value in (extra or {}).items():
        lib.mpn_exception_set_string(handle, _text(key), _text(value))
    if urls:
        rc = lib.mpn_exception_set_urls(handle, _text(urls))
        if rc != 0:
            raise ValueError(f"the notifier's channel is not usable: {_lib.strerror(rc)}")


def report(exc, context=None, urls=None, extra=None, flags=0):
    """Reports `exc`; returns the mpn_code (0: queued or delivered). Never raises for delivery."""
    _lib.ensure_armed()
    handle = build(exc, context, urls, extra)
    if handle is None:
        return 2  # MPN_E_NO_MEMORY
    return _lib.get().mpn_exception_report(handle, flags)


_in_use = {}  # notifiers reports were routed through: the library's thread delivers later


def _channel_of(notifier):
    if notifier is None:
        return None
    url = getattr(notifier, "channel_url", None)
    if not callable(url):
        raise TypeError(f"notifier must be an mpinotify.Notifier or None, not {type(notifier).__name__}")
    _in_use[id(notifier)] = notifier  # notify_exception(MyNotifier()) must outlive the call
    return url()


def notify_exception(notifier=None, context=None, exc=None, name=None):
    """Reports a caught exception (default: the one being handled) with its traceback.

    The same exception (type and traceback site) on many ranks gives one message listing every
    rank, with rank, PID and hostname; `notifier=None` sends to the configured channels
    (MPINOTIFY_URLS, MPINOTIFY_CONFIG), a Notifier sends through that one. `context` says where
    or what ("epoch 3 validation"); `name` names the run or task that raised it. Returns True when
    the report was queued. Delivery problems never raise: they are logged and the message is
    spooled. Bad arguments raise TypeError or ValueError.
    """
    if exc is None:
        exc = sys.exc_info()[1]
        if exc is None:
            raise ValueError("notify_exception: no exception given and none is being handled")
    if not isinstance(exc, BaseException):
        raise TypeError(f"exc must be an exception, not {type(exc).__name__}")
    for label, value in (("context", context), ("name", name)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{label} must be a str or None, not {type(value).__name__}")
    urls = _channel_of(notifier)
    extra = {"name": name} if name else None
    rc = report(exc, context=context, urls=urls, extra=extra)
    if rc != 0:
        sys.stderr.write(f"mpinotify[pid {os.getpid()}]: the exception was not reported: {_lib.strerror(rc)}\n")
    return rc == 0
