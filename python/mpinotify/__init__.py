"""mpinotify: one message per unique failure of an MPI job, from Python.

The Python face of libmpinotify (same engine, election across ranks,
channels, spool and secret masking). Importing it costs little: the library
and the submodules load when first used. `import mpinotify` also installs
the uncaught-exception hooks (mpinotify._hook), so a job that never
initialises MPI (PyTorch with gloo or NCCL under mpirun) is covered too.
See docs/python.md.
"""
from ._hook import install as _install_hooks

__version__ = "0.1.0"

_EXPORTS = {
    "notify_exception": "._exceptions",
    "Notifier": ".notifiers",
    "DingNotifier": ".notifiers",
    "SlackNotifier": ".notifiers",
    "DiscordNotifier": ".notifiers",
    "FeishuNotifier": ".notifiers",
    "TeamsNotifier": ".notifiers",
    "TelegramNotifier": ".notifiers",
    "WebhookNotifier": ".notifiers",
    "EmailNotifier": ".notifiers",
    "URLNotifier": ".notifiers",
    "Alert": ".alerts",
    "alert": ".alerts",
    "progress": ".alerts",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mpinotify' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + __all__)


_install_hooks()
