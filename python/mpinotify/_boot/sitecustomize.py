"""mpinotify's boot file for Python ranks.

libmpinotify (preloaded into a rank, for instance by mpinotify-run) puts this
folder first on PYTHONPATH of a Python process that a launcher started as a
rank, so Python imports this file at start-up. It installs the hooks that
report uncaught exceptions (mpinotify._hook), gives PYTHONPATH back its value
for the rank's own children, and then runs the sitecustomize it shadows, so a
site's or a distribution's sitecustomize still runs. It never raises.
"""


def _mpinotify_boot():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    package_parent = os.path.dirname(os.path.dirname(here))
    os.environ["MPINOTIFY_PYTHON_RANK_PID"] = str(os.getpid())  # the rank's children are not ranks
    saved = os.environ.pop("MPINOTIFY_PYTHONPATH_SAVED", None)
    if saved is not None:
        if saved == "\x01unset":
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    if package_parent not in sys.path:
        sys.path.append(package_parent)  # `import mpinotify` works in every rank
    try:
        from mpinotify import _hook
        _hook.install()
    except Exception as exc:  # a broken install must never stop the job
        sys.stderr.write(f"mpinotify: uncaught Python exceptions are not reported: {exc}\n")
    _run_shadowed(here)


def _run_shadowed(here):
    """Runs the next sitecustomize on sys.path, as if ours were not there."""
    import importlib.util
    import os
    import sys

    sys.modules.pop("sitecustomize", None)
    for folder in sys.path:
        path = os.path.join(folder or ".", "sitecustomize.py")
        if os.path.abspath(os.path.dirname(path)) == here or not os.path.isfile(path):
            continue
        spec = importlib.util.spec_from_file_location("sitecustomize", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["sitecustomize"] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # as site.py does for a failing sitecustomize
            sys.stderr.write(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}\n")
        return


_mpinotify_boot()
del _mpinotify_boot, _run_shadowed
