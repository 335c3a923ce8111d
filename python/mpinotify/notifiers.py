"""Notifiers: send a message to one channel through libmpinotify's engine.

A built-in notifier is one channel of the C library, fixed to its service's
format whatever its URL looks like (a DingNotifier always speaks DingTalk,
also to a proxy or a loopback address): channel_url() is that channel's spec
with the kind prefix and its options. Calling a notifier sends through the
engine (retries, rate limits, spool) to that channel only, never to the ones
MPINOTIFY_URLS or MPINOTIFY_CONFIG configure.

A subclass that only implements __call__ is reachable from the C side too:
its channel_url() is "pynotifier://<id>", a channel kind this module
registers with mpn_register_channel, whose deliveries call the instance.
"""
import ctypes
import itertools
import json
import math
import os
import re
import threading
import urllib.parse
import weakref

from . import _lib

__all__ = ["Notifier", "DingNotifier", "SlackNotifier", "DiscordNotifier", "FeishuNotifier", "TeamsNotifier",
           "TelegramNotifier", "WebhookNotifier", "EmailNotifier", "URLNotifier"]

SEVERITIES = ("info", "warning", "error", "critical")
PY_KIND = "pynotifier"
_REFERENCES = ("env:", "file:")
_KIND_PREFIX = re.compile(r"^([a-z][a-z0-9_-]*)\+(https?://.*)$")
# Where MPINOTIFY_URLS would start a second channel (lib/config/config.c, channel_starts).
_SECOND_CHANNEL = re.compile(r",\s*(env:|file:|console|[a-z0-9_-]+(://|\+http))")


# ---- argument checks: TypeError/ValueError at once, naming the argument, never its secret value ----

def _text_arg(owner, name, value, spaces=False):
    if not isinstance(value, str):
        raise TypeError(f"{owner}: {name} must be a str, not {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ValueError(f"{owner}: {name} is empty")
    if "\0" in value or (not spaces and any(c.isspace() for c in value)):
        raise ValueError(f"{owner}: {name} contains white space or NUL")
    return value


def _optional_arg(owner, name, value, spaces=False):
    return None if value is None else _text_arg(owner, name, value, spaces)


def _is_reference(value):
    return isinstance(value, str) and value.startswith(_REFERENCES)


def _shown_secret(value):
    """What repr may show of a secret: a reference says where it is, a literal is hidden."""
    return None if value is None else value if _is_reference(value) else "***"


def _url_arg(owner, name, url):
    """An http(s) URL or a whole-URL reference; ValueError names the scheme, URL masked."""
    url = _text_arg(owner, name, url)
    if _is_reference(url) or url.startswith(("http://", "https://")):
        return url
    scheme = url.split("://", 1)[0] if "://" in url else None
    what = f"has the scheme {scheme!r}" if scheme else "has no scheme"
    raise ValueError(f"{owner}: {name} {_lib.mask(url)} {what}; expected an http:// or https:// URL")


def _service_url(owner, name, url, kind, aliases=()):
    """The URL with the kind prefix that fixes the payload format. A whole-URL
    reference (env:NAME) is kept: its value names the kind (docs/python.md)."""
    m = _KIND_PREFIX.match(url.strip()) if isinstance(url, str) else None
    if not m:
        url = _url_arg(owner, name, url)
        return url if _is_reference(url) else f"{kind}+{url}"
    if m.group(1) not in (kind,) + tuple(aliases):
        raise ValueError(f"{owner}: {name} {_lib.mask(url.strip())} is a {m.group(1)}+ channel; "
                         f"{owner} sends {kind}'s format: give the service's http(s):// URL")
    _url_arg(owner, name, m.group(2))  # white space, NUL
    return url.strip()


def _timeout_ms(owner, timeout):
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{owner}: timeout must be a number of seconds, not {type(timeout).__name__}")
    if not (math.isfinite(timeout) and 0.1 <= timeout <= 3600):
        raise ValueError(f"{owner}: timeout={timeout!r} is not within 0.1..3600 seconds")
    return int(round(timeout * 1000))


def _with_options(url, options):
    """url + our options as query parameters, each value percent-encoded once
    (the library decodes them; ':' stays so references read as env:NAME)."""
    parts = [f"{k}={urllib.parse.quote(str(v), safe=':@')}" for k, v in options if v is not None]
    if not parts:
        return url
    base, hash_, fragment = url.partition("#")
    return base + ("&" if "?" in base else "?") + "&".join(parts) + hash_ + fragment


def _validated(owner, spec):
    """The library's verdict at construction. Without the library (reading a
    checkpoint on a laptop) only the Python checks apply; sending then logs."""
    if not _lib.available():
        return spec
    code, problems = _lib.check_urls(spec)  # problems come masked from the library
    if code != _lib.OK:
        raise ValueError(f"{owner}: {problems or _lib.strerror(code)}")
    return spec


# ---- sending through the engine ----

def _split(message, title):
    if not isinstance(message, str):
        raise TypeError(f"a notifier sends a str message, not {type(message).__name__}")
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be a str, not {type(title).__name__}")
    first, _, rest = message.strip().partition("\n")
    if title is not None:
        return title.strip() or "(no title)", message.strip() or None
    return first.strip() or "(empty message)", rest.strip("\n") or None


def _budget_ms():
    try:
        return int(os.environ.get("MPINOTIFY_TIMEOUT_MS") or 10000)
    except ValueError:
        return 10000  # the library reports the bad value itself


def _settings_only():
    """MPINOTIFY_CONFIG's [mpinotify] settings without its channels (its [channel]
    sections and `urls`): a notifier sends to its own channel only, while the file's
    spool, CA bundle, relay and timeout still apply. Line-based, as inih reads it."""
    path = os.environ.get("MPINOTIFY_CONFIG")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except (TypeError, OSError):
        return ""  # no file: "" still keeps the library from reading one
    keep, section, dropping = [], None, False
    for line in lines:
        head = re.match(r"^\s*\[([^\]]*)\]", line)
        if head:
            section, dropping = head.group(1).strip(), False
            continue
        if section != "mpinotify" or (dropping and line[:1].isspace()):
            continue  # another section, or a continuation line of `urls`
        dropping = re.split(r"[=:]", line.strip(), maxsplit=1)[0].strip() == "urls"
        if not dropping:
            keep.append(line)
    return "[mpinotify]\n" + "\n".join(keep) + "\n" if keep else ""


def _new_sender(lib, spec, budget_ms):
    """A sender holding exactly this channel: opts->urls replaces MPINOTIFY_URLS,
    and a configuration text replaces MPINOTIFY_CONFIG's file (lib/config/config.c)."""
    opts = lib.mpn_options_new()
    if not opts:
        return None, _lib.strerror(2)
    lib.mpn_options_set_urls(opts, _lib.b(spec))
    lib.mpn_options_set_config(opts, _lib.b(_settings_only()))
    if budget_ms and budget_ms > _budget_ms():
        lib.mpn_options_set_timeout_ms(opts, min(budget_ms, 3600000))
    sender, err = ctypes.c_void_p(), ctypes.create_string_buffer(2048)
    code = lib.mpn_sender_new(opts, ctypes.byref(sender), err, len(err))  # takes opts
    problems = err.value.decode("utf-8", "replace").strip()
    if not sender:
        return None, problems or _lib.strerror(code)
    if lib.mpn_sender_channel_count(sender) != 1:  # the channel no longer parses (a reference gone)
        lib.mpn_sender_free(sender)
        return None, problems or "the channel did not parse"
    return sender, ""


def _send(lib, spec, title, text, severity, budget_ms):
    """(delivered, reason). The reason comes from the library: masked, no secrets."""
    sender, reason = _new_sender(lib, spec, budget_ms)
    if sender is None:
        return False, reason
    msg = lib.mpn_message_new(b"message")
    failures = []

    def on_result(result, _arg):
        r = result.contents
        if r.code != _lib.OK:
            failures.append((r.detail or b"").decode("utf-8", "replace") or _lib.strerror(r.code))

    try:
        if not msg:
            return False, _lib.strerror(2)
        lib.mpn_message_set_title(msg, _lib.b(title))
        if text:
            lib.mpn_message_set_text(msg, _lib.b(text))
        lib.mpn_message_set_severity(msg, _lib.b(severity))
        code = lib.mpn_sender_send(sender, msg, _lib.RESULT_FN(on_result), None)
        return code == _lib.OK, "; ".join(failures) or _lib.strerror(code)
    finally:
        lib.mpn_message_free(msg)
        lib.mpn_sender_free(sender)


def _deliver(owner, spec, message, severity, title, budget_ms=None):
    """True when the channel accepted the message. Delivery problems are one
    stderr line and False; only bad arguments raise."""
    title, text = _split(message, title)
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    try:
        lib = _lib.get()
    except RuntimeError as e:
        _lib.warn_once(f"{type(owner).__name__}: nothing sent: {e}")
        return False
    try:
        ok, reason = _send(lib, spec, title, text, severity, budget_ms)
    except Exception as e:  # a ctypes surprise must not reach the training loop either
        ok, reason = False, f"internal error ({type(e).__name__})"
    if not ok:
        _lib.warn(f"{type(owner).__name__}: not delivered to {_lib.mask(spec)}: {reason}")
    return ok


# ---- the pynotifier channel kind: C deliveries that call a Python notifier ----

_instances = weakref.WeakValueDictionary()  # "<pid>-<n>" -> notifier; a dropped notifier is not kept alive
_unweakable = {}  # notifiers with __slots__ and no __weakref__
_ids = itertools.count(1)
_kind_lock = threading.Lock()
_callback = None  # the registered CFUNCTYPE: must live as long as the library may call it


def _lookup(key):
    return _instances.get(key) or _unweakable.get(key)


def _remember(notifier):
    # The pid keeps a message spooled by one process from reaching another's
    # notifier that happens to have the same number.
    key = f"{os.getpid()}-{next(_ids)}"
    try:
        object.__setattr__(notifier, "_mpn_channel_id", key)
    except AttributeError:
        pass  # __slots__: a new id per call, still correct
    try:
        _instances[key] = notifier
    except TypeError:
        _unweakable[key] = notifier
    return key


def _as_text(doc):
    """A message (schema mpinotify/1) as the text a notifier's __call__ takes:
    the title, then the body, else the facts that stand in for one."""
    title = str(doc.get("title") or doc.get("event") or "mpinotify")
    body = doc.get("text")
    if not body and isinstance(doc.get("exception"), dict):
        e = doc["exception"]
        body = f"{e.get('type') or 'exception'}: {e.get('message') or ''}".rstrip(": ")
    lines = [str(body)] if body else []
    ranks, size = doc.get("ranks"), doc.get("world_size")
    if isinstance(ranks, list) and isinstance(size, int) and size > 1:
        lines.append(f"ranks {','.join(map(str, ranks))} of {size}")
    return "\n".join([title] + lines)


def _fail(detail, detail_len, reason, code):
    if detail and detail_len:
        data = reason.encode("utf-8", "replace")[:detail_len - 1] + b"\0"
        ctypes.memmove(detail, data, len(data))
    return code


def _on_delivery(url, message_json, detail, detail_len, _user):
    """Runs on a library thread. Never raises into C: a failure is a code and a
    short reason (the exception's type only: its text could hold a secret)."""
    notifier = None
    try:
        notifier = _lookup((url or b"").decode()[len(PY_KIND) + 3:])
        if notifier is None:  # not retried: it will not come back
            return _fail(detail, detail_len, "no such notifier in this process", _lib.E_INVALID_ARGUMENT)
        if notifier(_as_text(json.loads(message_json))) is False:
            return _fail(detail, detail_len, f"{type(notifier).__name__} returned False", _lib.E_DELIVERY)
        return _lib.OK
    except BaseException as e:
        where = type(notifier).__name__ if notifier is not None else PY_KIND
        return _fail(detail, detail_len, f"{type(e).__name__} in {where}.__call__", _lib.E_DELIVERY)


def _python_channel(notifier):
    """pynotifier://<id> for this instance, registering the kind once per process.
    Registration after the configuration was loaded is fine: a channel's kind is
    looked up when its URL is parsed (mpn_sender_new, mpn_check_urls, ...)."""
    global _callback
    with _kind_lock:
        if _callback is None:
            cb = _lib.CHANNEL_SEND_FN(_on_delivery)
            code = _lib.get().mpn_register_channel(PY_KIND.encode(), cb, None)
            if code != _lib.OK:
                raise RuntimeError(f"cannot register the {PY_KIND} channel kind: {_lib.strerror(code)}")
            _callback = cb
        key = getattr(notifier, "_mpn_channel_id", None)
        if key is None or _lookup(key) is not notifier:
            key = _remember(notifier)
    return f"{PY_KIND}://{key}"


# ---- the classes ----

def _restore(data):
    return Notifier.from_dict(data)


class Notifier:
    """Base of every notifier. A subclass implements __call__(message) (or
    channel_url()) and, to be restored from to_dict(), _from_dict_impl."""

    _types = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Notifier._types[cls.__name__] = cls  # the latest definition of a name wins (notebooks)

    def __call__(self, message, *, severity="info", title=None):
        """Sends `message` (its first line is the title); True when delivered.
        Never raises for a delivery problem: logs one line and returns False."""
        return _deliver(self, self._direct_url(), message, severity, title, self._budget())

    def channel_url(self):
        """The channel spec the C library accepts for this notifier."""
        if type(self).__call__ is not Notifier.__call__:
            return _python_channel(self)  # the subclass's own __call__ must run
        return self._direct_url()

    def _direct_url(self):
        if type(self).channel_url is not Notifier.channel_url:
            return self.channel_url()
        raise NotImplementedError(f"{type(self).__name__} implements neither __call__ nor channel_url()")

    def _budget(self):
        return None

    def _fields(self):
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def to_dict(self):
        """{"type": class name, ...fields}. Built-ins hold their secrets as given
        (references stay references): keep the dict like the credentials."""
        return {"type": type(self).__name__, **self._fields()}

    @classmethod
    def from_dict(cls, d):
        """The notifier to_dict() described, of whatever registered subclass."""
        if not isinstance(d, dict):
            raise TypeError(f"from_dict takes a dict, not {type(d).__name__}")
        sub = Notifier._types.get(d.get("type"))
        if sub is None:
            raise ValueError(f"unknown notifier type {d.get('type')!r} (is its class defined or imported?)")
        if not issubclass(sub, cls):
            raise ValueError(f"{d.get('type')} is not a {cls.__name__}")
        return sub._from_dict_impl({k: v for k, v in d.items() if k != "type"})

    @classmethod
    def _from_dict_impl(cls, data):
        """Default for subclasses: the saved attributes, without running __init__."""
        obj = cls.__new__(cls)
        obj.__dict__.update(data)
        return obj

    def __reduce__(self):
        return _restore, (self.to_dict(),)

    def __repr__(self):
        return f"{type(self).__name__}()"  # a subclass's fields may be secrets: not shown


class _ChannelNotifier(Notifier):
    """A built-in: one library channel, fixed at construction."""

    _url_args = ()     # shown masked by the library
    _secret_args = ()  # shown as *** (a reference as written)

    def _setup(self, spec, args):
        self._args = args
        self._spec = _validated(type(self).__name__, spec)

    def _direct_url(self):
        return self._spec

    def _fields(self):
        return dict(self._args)

    @classmethod
    def _from_dict_impl(cls, data):
        return cls(**data)

    def _shown(self, name, value):
        if name in self._url_args:
            return _lib.mask(value)
        return _shown_secret(value) if name in self._secret_args else value

    def __repr__(self):
        args = ", ".join(f"{k}={self._shown(k, v)!r}" for k, v in self._args.items())
        return f"{type(self).__name__}({args})"


class DingNotifier(_ChannelNotifier):
    """DingTalk robot: markdown whose first heading is the chat preview's title.
    `secret` (SEC..., or env:NAME) signs each request; `timeout` (seconds) bounds each attempt."""

    _url_args, _secret_args = ("ding_url",), ("secret",)

    def __init__(self, ding_url, secret=None, timeout=5.0):
        owner = "DingNotifier"
        url = _service_url(owner, "ding_url", ding_url, "dingtalk")
        secret = _optional_arg(owner, "secret", secret)
        self._timeout_ms = _timeout_ms(owner, timeout)
        spec = _with_options(url, [("secret", secret), ("timeout_ms", self._timeout_ms)])
        self._setup(spec, {"ding_url": ding_url.strip(), "secret": secret, "timeout": timeout})

    def _budget(self):
        return self._timeout_ms


class _WebhookOnly(_ChannelNotifier):
    """A service whose only argument is its webhook URL."""

    _kind = ""
    _url_args = ("webhook_url",)

    def __init__(self, webhook_url):
        owner = type(self).__name__
        self._setup(_service_url(owner, "webhook_url", webhook_url, self._kind),
                    {"webhook_url": webhook_url.strip()})


class SlackNotifier(_WebhookOnly):
    """Slack incoming webhook (Block Kit)."""
    _kind = "slack"


class DiscordNotifier(_WebhookOnly):
    """Discord webhook (one embed)."""
    _kind = "discord"


class TeamsNotifier(_WebhookOnly):
    """Microsoft Teams Workflows webhook (Adaptive Card 1.4)."""
    _kind = "teams"


class FeishuNotifier(_ChannelNotifier):
    """Feishu / Lark bot (interactive card); `secret` signs the body."""

    _url_args, _secret_args = ("webhook_url",), ("secret",)

    def __init__(self, webhook_url, secret=None):
        owner = "FeishuNotifier"
        url = _service_url(owner, "webhook_url", webhook_url, "feishu", aliases=("lark",))
        secret = _optional_arg(owner, "secret", secret)
        self._setup(_with_options(url, [("secret", secret)]), {"webhook_url": webhook_url.strip(), "secret": secret})


class TelegramNotifier(_ChannelNotifier):
    """Telegram bot: sendMessage to `chat_id` (a number, -100... for groups, or
    @channelname). `api_url` is the Bot API's address (a proxy, or a test sink)."""

    _secret_args = ("bot_token",)

    def __init__(self, bot_token, chat_id, *, api_url="https://api.telegram.org"):
        owner = "TelegramNotifier"
        token = _text_arg(owner, "bot_token", bot_token)
        if _is_reference(token) or re.search(r"[/?#&]", token):
            raise ValueError(f"{owner}: bot_token must be the token itself (for a reference, use "
                             "URLNotifier('env:NAME') with the whole URL in the variable)")
        if isinstance(chat_id, bool) or not isinstance(chat_id, (int, str)):
            raise TypeError(f"{owner}: chat_id must be an int or a str, not {type(chat_id).__name__}")
        chat = _text_arg(owner, "chat_id", str(chat_id))
        base = _url_arg(owner, "api_url", api_url).rstrip("/")
        spec = _with_options(f"telegram+{base}/bot{token}", [("chat_id", chat)])
        self._setup(spec, {"bot_token": token, "chat_id": chat_id, "api_url": base})


class WebhookNotifier(_ChannelNotifier):
    """Generic JSON webhook: the message as schema mpinotify/1. The library's webhook
    options (secret=, header=, method=) may be given in the URL's query."""

    _url_args = ("url",)

    def __init__(self, url):
        self._setup(_service_url("WebhookNotifier", "url", url, "webhook"), {"url": url.strip()})


def _recipients(owner, to):
    """to: "a@x", "a@x, b@y" or ["a@x", "b@y"] -> ["a@x", "b@y"]."""
    if isinstance(to, str):
        to = re.split(r"[,;]", to)
    if not isinstance(to, (list, tuple)):
        raise TypeError(f"{owner}: to must be an address or a list of addresses, not {type(to).__name__}")
    if not to:
        raise ValueError(f"{owner}: to is empty")
    out = [_text_arg(owner, "to", a) for a in to]
    if any(re.search(r"[,;]", a) for a in out):
        raise ValueError(f"{owner}: to holds a list inside a list element")
    return out


def _smtp_base(owner, host, port, ssl, starttls):
    """smtp[s]://host[:port], the arguments checked."""
    host = _text_arg(owner, "host", host)
    if re.search(r"[/?#@]", host):
        raise ValueError(f"{owner}: host must be a host name or address, not a URL")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise TypeError(f"{owner}: port must be an int, not {type(port).__name__}")
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"{owner}: port {port} is not within 1..65535")
    for name, flag in (("ssl", ssl), ("starttls", starttls)):
        if not isinstance(flag, bool):
            raise TypeError(f"{owner}: {name} must be True or False")
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host  # an IPv6 address
    return f"{'smtps' if ssl else 'smtp'}://{host}" + (f":{port}" if port else "")


class EmailNotifier(_ChannelNotifier):
    """Email through SMTP: STARTTLS required unless starttls=False (a local relay),
    or TLS from the first byte with ssl=True (smtps, port 465 by default).
    `sender` is the From ("Night Ops <ops@example.org>"); `password` best as env:NAME."""

    _secret_args = ("password",)

    def __init__(self, host, to, port=None, sender=None, user=None, password=None, ssl=False, starttls=True):
        owner = "EmailNotifier"
        base = _smtp_base(owner, host, port, ssl, starttls)
        options = [("to", ",".join(_recipients(owner, to))),
                   ("from", _optional_arg(owner, "sender", sender, spaces=True)),
                   ("user", _optional_arg(owner, "user", user)),
                   ("password", _optional_arg(owner, "password", password)),
                   ("starttls", None if starttls or ssl else "no")]
        self._setup(_with_options(base, options),
                    {"host": host.strip(), "to": to if isinstance(to, str) else list(to), "port": port,
                     "sender": sender, "user": user, "password": password, "ssl": ssl, "starttls": starttls})


class URLNotifier(_ChannelNotifier):
    """Any one channel URL the library accepts (docs/channels.md), as it is:
    kind+https://..., a service URL it recognises, smtp://..., env:NAME, console://."""

    _url_args = ("url",)

    def __init__(self, url):
        owner = "URLNotifier"
        url = _text_arg(owner, "url", url)
        if _SECOND_CHANNEL.search(url):
            raise ValueError(f"{owner}: url {_lib.mask(url)} holds more than one channel; use one notifier per channel")
        if not (_is_reference(url) or "://" in url or url == "console"):
            raise ValueError(f"{owner}: url {_lib.mask(url)} is not a channel URL (KIND+https://..., "
                             "https://..., smtp://..., env:NAME, console://)")
        self._setup(url, {"url": url})
