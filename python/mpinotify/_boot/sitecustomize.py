"""mpinotify's boot file for Python ranks.

libmpinotify (preloaded into a rank, for instance by mpinotify-run) puts this
folder first on PYTHONPATH of a Python process that a launcher started as a
rank, so Python imports this file at start-up. It gives PYTHONPATH back its
value (the rank's own children are not ranks), runs the sitecustomize it
shadows (a site's or a distribution's, as if this file were not there), then
installs the hooks that report uncaught exceptions (mpinotify._hook), last, so
a shadowed file that sets sys.excepthook without chaining cannot undo them.
It never raises.
"""


def _mpinotify_boot():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    pid, _, saved = os.environ.pop("MPINOTIFY_PYTHONPATH_SAVED", "").partition(":")
    if saved == "\x01unset":
        os.environ.pop("PYTHONPATH", None)
    elif pid:
        os.environ["PYTHONPATH"] = saved
    _run_shadowed(here)
    if pid != str(os.getpid()):
        return  # inherited from a rank that ignored PYTHONPATH (-I, -E): this process is its child
    os.environ["MPINOTIFY_PYTHON_RANK_PID"] = str(os.getpid())  # the rank's children are not ranks
    try:
        _package(os.path.dirname(here))._hook.install()
    except Exception as exc:  # a broken install must never stop the job
        sys.stderr.write(f"mpinotify: uncaught Python exceptions are not reported: {exc}\n")


def _package(folder):
    """mpinotify, importable from now on, without adding its site folder to sys.path:
    that could change which versions of other packages the program imports."""
    import importlib
    import importlib.util
    import sys

    if importlib.util.find_spec("mpinotify") is None:
        spec = importlib.util.spec_from_file_location(
            "mpinotify", f"{folder}/__init__.py", submodule_search_locations=[folder])
        module = importlib.util.module_from_spec(spec)
        sys.modules["mpinotify"] = module
        spec.loader.exec_module(module)
    importlib.import_module("mpinotify._hook")
    return sys.modules["mpinotify"]


def _run_shadowed(here):
    """Runs the next sitecustomize on sys.path, as if ours were not there."""
    import importlib.util
    import os
    import sys

    for folder in sys.path:
        path = os.path.join(folder or ".", "sitecustomize.py")
        if os.path.abspath(os.path.dirname(path)) == here or not os.path.isfile(path):
            continue
        spec = importlib.util.spec_from_file_location("sitecustomize", path)
        module = importlib.util.module_from_spec(spec)
        ours = sys.modules.get("sitecustomize")
        sys.modules["sitecustomize"] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # as site.py does for a failing sitecustomize
            sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n")
            if ours is not None:
                sys.modules["sitecustomize"] = ours
        return


_mpinotify_boot()
del _mpinotify_boot, _package, _run_shadowed
