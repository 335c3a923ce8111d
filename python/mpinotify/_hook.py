"""Uncaught exceptions of a Python rank, with no change to the program.

Installed at start-up in every Python rank that runs under mpinotify-run or
with libmpinotify preloaded (mpinotify/_boot/sitecustomize.py), and by
`import mpinotify`. Light on purpose: nothing is loaded until an exception
arrives, except the MPI_Abort hook where the library is already in the
process.

- sys.excepthook: the exception that ends the program is printed as usual,
  reported (one message per unique exception across ranks, every rank
  listed), then, where MPI is initialised, the job is aborted as
  `python -m mpi4py` does (exit status 1): otherwise mpi4py's MPI_Finalize at
  exit would wait forever for ranks that wait in a collective.
  MPINOTIFY_ABORT_ON_EXCEPTION=0 keeps Python's own ending.
- threading.excepthook: a thread's uncaught exception is reported and
  printed; the program goes on, as Python's does.
- MPI_Abort called while an exception is being handled (`except: ...;
  comm.Abort(1)`) reports that exception instead of a bare MPI_Abort.

Processes a rank starts (subprocesses, spawned workers) inherit the rank's
environment, launcher variables included: they are not ranks, and get no
hooks. MPINOTIFY_DISABLE=1 leaves Python alone, as it leaves the rest.
"""
import os
import sys
import threading

_pid = None
_previous = {}
_abort_callback = None
_OFF = ("0", "no", "false", "off")


def _enabled(name, default=True):
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() not in _OFF


def _disabled():
    return os.environ.get("MPINOTIFY_DISABLE", "").strip().lower() in ("1", "yes", "true", "on")


def _report(exc, flags, extra=None, context=None):
    try:
        from . import _exceptions
        return _exceptions.report(exc, extra=extra, flags=flags, context=context)
    except Exception as err:  # never make an ending program fail differently
        sys.stderr.write(f"mpinotify: the uncaught exception was not reported: {err}\n")
        return -1


def _excepthook(etype, value, tb):
    _previous["sys"](etype, value, tb)
    if os.getpid() != _pid or issubclass(etype, KeyboardInterrupt):
        return  # a forked child, or the user's Ctrl-C: not a failure of the job
    try:
        _report(value, 1 | 2)  # MPN_EXCEPTION_UNCAUGHT | MPN_EXCEPTION_FATAL
    except BaseException:  # a Ctrl-C while waiting for delivery: the job must still end
        pass
    if _enabled("MPINOTIFY_ABORT_ON_EXCEPTION"):
        _abort_job()


def _abort_job():
    """Ends the job where MPI is up; returns when it is not (Python then exits as usual)."""
    mpi = sys.modules.get("mpi4py.MPI")
    try:
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            # Open MPI's "MPI_ABORT was invoked on rank N" follows: say who called it, and why
            sys.stderr.write("mpinotify: ending the job with MPI_Abort(1) after the uncaught exception above, so that "
                             "the other ranks do not wait for this one (MPINOTIFY_ABORT_ON_EXCEPTION=0: Python exits "
                             "as usual)\n")
    except BaseException:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    try:
        from . import _lib
        _lib.get().mpn_abort_job(1)  # returns only when MPI is not initialised through our library
    except BaseException:
        pass
    # MPI initialised without our interposition (library not preloaded)
    try:
        if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
            mpi.COMM_WORLD.Abort(1)
    except BaseException:
        pass


def _thread_hook(args):
    _previous["threading"](args)
    if os.getpid() != _pid or args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    name = args.thread.name if args.thread is not None else None
    _report(args.exc_value, 1, extra={"thread": name} if name else None)  # MPN_EXCEPTION_UNCAUGHT


def _on_abort(code, arg):
    """MPI_Abort on this thread (the library calls it only with the GIL held):
    the exception being handled is what ends the job; the abort's code stands."""
    try:
        exc = sys.exc_info()[1]
        if exc is None or os.getpid() != _pid:
            return 0
        rc = _report(exc, 2, context=f"MPI_Abort({code}) while handling it")  # MPN_EXCEPTION_FATAL
        return 1 if rc in (0, 8) else 0  # queued (or delivered late): the abort is that failure
    except BaseException:
        return 0


def _unset_abort_hook():
    try:
        from . import _lib
        _lib.get().mpn_set_abort_hook(_lib.ABORT_HOOK_FN(), None)
    except BaseException:
        pass


def _set_abort_hook():
    """Only where the library is already in the process: loading it here would cost every rank."""
    global _abort_callback
    from . import _lib
    if _lib._in_process() is None or not _lib.has("mpn_set_abort_hook"):
        return
    import atexit
    _abort_callback = _lib.ABORT_HOOK_FN(_on_abort)
    _lib.get().mpn_set_abort_hook(_abort_callback, None)
    atexit.register(_unset_abort_hook)  # the callback must not outlive the interpreter


def _say_armed():
    """Under mpinotify-run, a rank that may never call MPI_Init (PyTorch with gloo or NCCL) is
    watched all the same: say so, so the job's start does not warn about it."""
    from . import _lib
    if "MPINOTIFY_RELAY_ADDR" in os.environ and _lib._in_process() is not None and _lib.has("mpn_launcher_armed"):
        _lib.get().mpn_launcher_armed()


def install():
    """Installs the hooks once, in the rank's own process. Never raises."""
    global _pid
    rank_pid = os.environ.get("MPINOTIFY_PYTHON_RANK_PID")
    if (_pid is not None or _disabled() or not _enabled("MPINOTIFY_PYTHON_HOOKS")
            or rank_pid not in (None, str(os.getpid()))):
        return  # a process the rank started (a subprocess, a spawned worker) is not the rank
    _previous["sys"] = sys.excepthook
    _previous["threading"] = threading.excepthook
    _pid = os.getpid()
    sys.excepthook = _excepthook
    threading.excepthook = _thread_hook
    try:
        _set_abort_hook()
    except Exception:
        pass
    try:
        _say_armed()
    except Exception:
        pass
