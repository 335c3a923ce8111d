"""Alerts and progress: mpn_alert and mpn_progress of libmpinotify.

Both go to the channels the job is configured with (MPINOTIFY_URLS,
MPINOTIFY_CONFIG), through the library's election: ranks raising the same
alert at the same step give one message. The library ships the API, not
detectors: the program decides when something is wrong.
"""
import numbers
from dataclasses import dataclass
from typing import Dict, Optional

from . import _lib

__all__ = ["Alert", "alert", "progress"]

ALERT_SEVERITIES = ("warning", "critical")
_LLONG = (-(1 << 63), (1 << 63) - 1)
_MISSING = object()  # tells "not given" from None


@dataclass
class Alert:
    """An alert that was raised (what alert() returns)."""
    detector: str
    severity: str
    step: int
    message: str
    metric_values: Optional[Dict[str, float]]
    recommendation: str


def _text(name, value, required=True):
    if not isinstance(value, str):
        raise TypeError(f"alert(): {name} must be a str, not {type(value).__name__}")
    if "\0" in value:
        raise ValueError(f"alert(): {name} contains NUL")
    if required and not value.strip():
        raise ValueError(f"alert(): {name} is empty")
    return value


def _count(fn, name, value, lo=_LLONG[0]):
    """An integer step or total (numpy integers too; bool is a mistake, not a number)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{fn}(): {name} must be an int, not {type(value).__name__}")
    value = int(value)
    if not lo <= value <= _LLONG[1]:
        raise ValueError(f"{fn}(): {name}={value} is out of range")
    return value


def _metrics(values):
    """{name: float} checked, or None."""
    if values is None:
        return None
    if not hasattr(values, "items"):
        raise TypeError(f"alert(): metric_values must be a dict of name to number, not {type(values).__name__}")
    out = {}
    for name, v in values.items():
        _text("a metric name", name)
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"alert(): metric {name!r} must be a number, not {type(v).__name__}")
        out[name] = float(v)
    return out


def _checked(detector, severity, step, message, metric_values, recommendation):
    _text("detector", detector)
    if len(detector.encode("utf-8")) > 63:
        raise ValueError("alert(): detector is longer than 63 bytes")
    if severity not in ALERT_SEVERITIES:
        raise ValueError(f"alert(): severity must be 'warning' or 'critical', not {severity!r}")
    if recommendation is _MISSING:
        raise TypeError("alert(): recommendation is required: say what to do about it")
    _text("recommendation", recommendation)
    return Alert(detector, severity, _count("alert", "step", step), _text("message", message, required=False),
                 _metrics(metric_values), recommendation)


def _armed_lib(what):
    """The armed library, or None (logged once): a missing or disabled library
    must not stop the training loop that raises the alert."""
    try:
        lib = _lib.get()
        if _lib.ensure_armed():
            return lib
        _lib.warn_once(f"{what}: the library is not active in this process (MPINOTIFY_DISABLE?): nothing sent")
    except RuntimeError as e:
        _lib.warn_once(f"{what}: nothing sent: {e}")
    return None


def _raise(a):
    lib = _armed_lib("alert")
    if lib is None:
        return None
    names = list((a.metric_values or {}).items())
    metrics = (_lib.Metric * max(len(names), 1))(*[_lib.Metric(_lib.b(k), v) for k, v in names])
    return lib.mpn_alert(_lib.b(a.detector), _lib.b(a.severity), a.step, _lib.b(a.message), metrics,
                         len(names), _lib.b(a.recommendation))


def alert(detector, severity=_MISSING, step=_MISSING, message=_MISSING, metric_values=None,
          recommendation=_MISSING):
    """Raise an alert: `detector` names what noticed it ("nan_loss"), `severity` is
    "warning" or "critical", `step` the training step, `message` what happened,
    `metric_values` ({"loss": nan}) the values behind it, `recommendation` (required)
    what to do. An Alert may be passed whole as the only argument.

    Returns the Alert when it was raised, None when it was muted (the same detector
    and severity within MPINOTIFY_ALERT_COOLDOWN steps, or MPINOTIFY_ALERT_CAP alerts
    already) or could not be raised (no library, MPINOTIFY_DISABLE; one stderr line).
    Bad arguments raise TypeError/ValueError; delivery problems never raise.
    Non-finite metric values (NaN, inf) are accepted here; see docs/python.md.
    """
    if isinstance(detector, Alert) and severity is step is message is recommendation is _MISSING:
        a = detector
        detector, severity, step, message = a.detector, a.severity, a.step, a.message
        metric_values, recommendation = a.metric_values, a.recommendation
    for name, v in (("severity", severity), ("step", step), ("message", message)):
        if v is _MISSING:
            raise TypeError(f"alert() missing required argument {name!r}")
    a = _checked(detector, severity, step, message, metric_values, recommendation)
    code = _raise(a)
    if code == _lib.OK:
        return a
    if code == _lib.E_INVALID_ARGUMENT:  # checked above; the library's own rules may grow
        raise ValueError(f"alert(): the library refused the arguments ({_lib.strerror(code)})")
    if code not in (None, _lib.E_MUTED):
        _lib.warn(f"alert {a.detector!r} at step {a.step} not raised: {_lib.strerror(code)}")
    return None


def progress(step, total=None, message=None):
    """Report progress: a message at every MPINOTIFY_PROGRESS_EVERY-th step (off by
    default, then nothing is sent). `total` may be None (unknown). Returns None;
    bad arguments raise TypeError/ValueError, delivery problems never raise."""
    step = _count("progress", "step", step, lo=0)
    total = 0 if total is None else _count("progress", "total", total, lo=0)
    if message is not None and not isinstance(message, str):
        raise TypeError(f"progress(): message must be a str, not {type(message).__name__}")
    lib = _armed_lib("progress")
    if lib is None:
        return None
    code = lib.mpn_progress(step, total, _lib.b(message))
    if code != _lib.OK:
        _lib.warn(f"progress at step {step} not reported: {_lib.strerror(code)}")
    return None
