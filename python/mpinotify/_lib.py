"""libmpinotify through ctypes: found and loaded once, on first use.

Importing this module never touches the library: a process that only
imports mpinotify (a shell, a data loader, a laptop reading a checkpoint)
needs no libmpinotify. get() loads it when something needs it and raises
RuntimeError when it cannot be found.

Order of the search (the first that loads wins):
  1. the library already in the process (LD_PRELOAD by mpinotify-run, or
     linked): its symbols are in the global namespace, and a second copy
     loaded by path would have a second, unarmed state;
  2. $MPINOTIFY_LIBRARY, a path;
  3. LIBRARY in mpinotify/_paths.py, written at install time;
  4. the soname libmpinotify.so.0, through the dynamic loader's path.
"""
import ctypes
import os
import sys
import threading

NOT_FOUND = ("libmpinotify not found: set MPINOTIFY_LIBRARY=/path/libmpinotify.so "
             "or run under mpinotify-run")

# mpn_code values used here (include/mpinotify.h; the enum only grows).
OK = 0
E_INVALID_ARGUMENT = 1
E_BAD_URL = 3
E_UNKNOWN_KIND = 4
E_DISABLED = 5
E_ALREADY_INITIALIZED = 6
E_NOT_INITIALIZED = 7
E_DELIVERY = 9
E_BAD_CONFIG = 15
E_MUTED = 25

EXCEPTION_UNCAUGHT = 1
EXCEPTION_FATAL = 2

c_char_p, c_void_p, c_int, c_long = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_long
c_size_t, c_double, c_longlong, c_uint = ctypes.c_size_t, ctypes.c_double, ctypes.c_longlong, ctypes.c_uint


class Metric(ctypes.Structure):
    """mpn_metric"""
    _fields_ = [("name", c_char_p), ("value", c_double)]


class Result(ctypes.Structure):
    """mpn_result (fields are only ever appended, so a prefix is enough)."""
    _fields_ = [("channel", c_char_p), ("code", c_int), ("http_status", c_long), ("detail", c_char_p),
                ("attempts", c_int), ("route", c_char_p), ("spool_file", c_char_p), ("message_id", c_char_p)]


RESULT_FN = ctypes.CFUNCTYPE(None, ctypes.POINTER(Result), c_void_p)
# detail is written into, so it comes as an address rather than a (read-only) bytes object.
CHANNEL_SEND_FN = ctypes.CFUNCTYPE(c_int, c_char_p, c_char_p, c_void_p, c_size_t, c_void_p)
ABORT_HOOK_FN = ctypes.CFUNCTYPE(c_int, c_int, c_void_p)

# name: (restype, argtypes). Every public function this package calls.
_PROTOTYPES = {
    "mpn_strerror": (c_char_p, [c_int]),
    "mpn_version": (c_char_p, []),
    "mpn_options_new": (c_void_p, []),
    "mpn_options_free": (None, [c_void_p]),
    "mpn_options_set_urls": (c_int, [c_void_p, c_char_p]),
    "mpn_options_set_config": (c_int, [c_void_p, c_char_p]),
    "mpn_options_set_timeout_ms": (c_int, [c_void_p, c_long]),
    "mpn_sender_new": (c_int, [c_void_p, ctypes.POINTER(c_void_p), c_char_p, c_size_t]),
    "mpn_sender_free": (None, [c_void_p]),
    "mpn_sender_send": (c_int, [c_void_p, c_void_p, RESULT_FN, c_void_p]),
    "mpn_sender_channel_count": (c_int, [c_void_p]),
    "mpn_sender_channel": (c_char_p, [c_void_p, c_int]),
    "mpn_message_new": (c_void_p, [c_char_p]),
    "mpn_message_free": (None, [c_void_p]),
    "mpn_message_set_title": (c_int, [c_void_p, c_char_p]),
    "mpn_message_set_text": (c_int, [c_void_p, c_char_p]),
    "mpn_message_set_severity": (c_int, [c_void_p, c_char_p]),
    "mpn_message_set_string": (c_int, [c_void_p, c_char_p, c_char_p]),
    "mpn_message_set_json": (c_int, [c_void_p, c_char_p, c_char_p]),
    "mpn_check_urls": (c_int, [c_char_p, c_char_p, c_size_t]),
    "mpn_mask_url": (c_int, [c_char_p, c_char_p, c_size_t]),
    "mpn_alert": (c_int, [c_char_p, c_char_p, c_longlong, c_char_p, ctypes.POINTER(Metric), c_size_t, c_char_p]),
    "mpn_progress": (c_int, [c_longlong, c_longlong, c_char_p]),
    "mpn_is_active": (c_int, []),
    "mpn_init": (c_int, [c_void_p]),
    "mpn_register_channel": (c_int, [c_char_p, CHANNEL_SEND_FN, c_void_p]),
}

# Newer than some builds of the library: declared only when the loaded library has them.
_OPTIONAL_PROTOTYPES = {
    "mpn_exception_new": (c_void_p, [c_char_p, c_char_p]),
    "mpn_exception_free": (None, [c_void_p]),
    "mpn_exception_set_context": (c_int, [c_void_p, c_char_p]),
    "mpn_exception_add_frame": (c_int, [c_void_p, c_char_p, c_long, c_char_p, c_char_p]),
    "mpn_exception_set_text": (c_int, [c_void_p, c_char_p]),
    "mpn_exception_set_string": (c_int, [c_void_p, c_char_p, c_char_p]),
    "mpn_exception_set_urls": (c_int, [c_void_p, c_char_p]),
    "mpn_exception_report": (c_int, [c_void_p, c_uint]),
    "mpn_abort_job": (c_int, [c_int]),
    "mpn_set_abort_hook": (c_int, [ABORT_HOOK_FN, c_void_p]),
    "mpn_launcher_armed": (None, []),
}

_lock = threading.Lock()
_arm_lock = threading.Lock()  # mpn_init must not run on two threads at once
_warned = set()
_lib = None
_source = None  # how it was found: "process", "MPINOTIFY_LIBRARY", "_paths" or "soname"


def _in_process():
    """The global namespace: the library preloaded or linked, else None."""
    try:
        handle = ctypes.CDLL(None)
        handle.mpn_version  # AttributeError when the symbol is not there
        return handle
    except (OSError, AttributeError):
        return None


def _installed_path():
    try:
        from . import _paths  # generated at install time; absent in the source tree
    except ImportError:
        return None
    return getattr(_paths, "LIBRARY", None)


def _candidates():
    yield "process", _in_process
    yield "MPINOTIFY_LIBRARY", lambda: os.environ.get("MPINOTIFY_LIBRARY") or None
    yield "_paths", _installed_path
    yield "soname", lambda: "libmpinotify.so.0"


def _open(found):
    """A CDLL for what a candidate gave (a handle or a path), or None."""
    if found is None or isinstance(found, ctypes.CDLL):
        return found
    try:
        lib = ctypes.CDLL(found)
        lib.mpn_version
        return lib
    except (OSError, AttributeError):
        return None  # a wrong path falls through to the next candidate


def _declare(lib):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    for name, (restype, argtypes) in _OPTIONAL_PROTOTYPES.items():
        if hasattr(lib, name):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = restype, argtypes


def _load():
    for source, find in _candidates():
        lib = _open(find())
        if lib is not None:
            _declare(lib)
            return lib, source
    return None, None


def get():
    """The loaded library with its prototypes declared; RuntimeError when there is none."""
    global _lib, _source
    if _lib is None:
        with _lock:
            if _lib is None:
                lib, source = _load()
                if lib is None:
                    raise RuntimeError(NOT_FOUND)
                _source, _lib = source, lib
    return _lib


def source():
    """Where the library came from ("process", "MPINOTIFY_LIBRARY", "_paths", "soname"), or None."""
    return _source


def available():
    try:
        get()
        return True
    except RuntimeError:
        return False


def has(name):
    """Does the loaded library export `name` (for functions newer than some builds)?"""
    return hasattr(get(), name)


def b(s):
    """str -> UTF-8 for C; NUL would end the C string early, so it cannot pass silently."""
    return None if s is None else s.replace("\0", "\ufffd").encode("utf-8", "replace")


def strerror(code):
    try:
        return get().mpn_strerror(code).decode()
    except RuntimeError:
        return f"error {code}"


def mask(url):
    """url with its secrets masked by the library; a coarse mask when it is not loaded."""
    if not isinstance(url, str):
        return "***"
    try:
        out = ctypes.create_string_buffer(len(url.encode("utf-8", "replace")) * 3 + 64)
        get().mpn_mask_url(b(url), out, len(out))
        return out.value.decode("utf-8", "replace")
    except RuntimeError:
        return _coarse_mask(url)


def _coarse_mask(url):
    """Keeps only what cannot be secret: the scheme and the host."""
    if url.startswith(("env:", "file:")) and "?" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "***"
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/***"


def check_urls(urls):
    """(code, problems): the library's verdict on a channel list, problems masked by it."""
    err = ctypes.create_string_buffer(4096)
    code = get().mpn_check_urls(b(urls), err, len(err))
    return code, err.value.decode("utf-8", "replace").strip()


def ensure_armed():
    """Arm the library in this process if nothing has (mpn_init with the environment's
    configuration). Disabled or already initialised are fine; never raises for them.
    Returns whether the library is active afterwards."""
    lib = get()
    with _arm_lock:
        if not lib.mpn_is_active():
            lib.mpn_init(None)  # OK, E_DISABLED, E_ALREADY_INITIALIZED or a config problem it reported itself
    return bool(lib.mpn_is_active())


def warn(line):
    """One line on stderr. Callers pass masked text only. Never raises: a closed
    stderr must not turn a delivery problem into an exception in user code."""
    try:
        sys.stderr.write(f"mpinotify: {line}\n")
        sys.stderr.flush()
    except Exception:
        pass


def warn_once(line):
    """warn(), once per process per text: for conditions that repeat on every call."""
    if line not in _warned:
        _warned.add(line)
        warn(line)
