#!/usr/bin/env python3
"""Python ranks (CTest python.py_*, issue 11): real mpi4py ranks under real mpirun, the library
preloaded (or under mpinotify-run), against the loopback sink. One CTest entry runs one case:

    python3 python.py CASE --lib libmpinotify.so --progs DIR --sink mpn_sink.py ...

The rank programs are tests/progs/py/*.py. The interpreter is one that has mpi4py
(Debian's /usr/bin/python3; the python3 first on PATH may not): without one, the case
skips and says why. (The other python.* entries are the Python package's own tests,
tests/python/test_notifiers.py: their names never start with py_.)
"""
import json
import os
import re
import sys

from harness import Sink, case, check, check_event, main, need_python

NP = 4
PY_PROGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "progs", "py")


def prog(name):
    return os.path.abspath(os.path.join(PY_PROGS, name))


def run(t, args, sink, np=NP, env=None, label=None, script="ranks.py", module="mpi4py"):
    py = need_python(module)
    e = {"MPINOTIFY_URLS": sink.url()}
    e.update(env or {})
    return t.mpirun(np, py, [prog(script)] + list(args), env=e, label=label)


def baseline(t, args, np=NP, script="ranks.py", module="mpi4py", hang_ok=False):
    py = need_python(module)
    return t.mpirun(np, py, [prog(script)] + list(args), env={"MPINOTIFY_DISABLE": "1"},
                    label="baseline (MPINOTIFY_DISABLE=1)", hang_ok=hang_ok, guard=60 if hang_ok else 120)


def messages(sink, event=None):
    bodies = [b for b in sink.bodies() if isinstance(b, dict)]
    return [b for b in bodies if event is None or b.get("event") == event]


def check_exception(b, type_, message, ranks, function, uncaught=True, outer="<module>", fatal=None):
    """One exception message: who raised it, and the exception as Python tells it."""
    check_event_no_native(b, "exception", NP)
    check(b["ranks"] == ranks, f"ranks {b['ranks']} != {ranks}")
    fatal = uncaught if fatal is None else fatal  # the rank ends after it: critical
    check(b.get("severity") == ("critical" if fatal else "error"), f"severity {b.get('severity')!r}")
    exc = b.get("exception") or {}
    check(exc.get("type") == type_, f"exception.type {exc.get('type')!r} != {type_!r}")
    check(exc.get("message") == message, f"exception.message {exc.get('message')!r} != {message!r}")
    check(exc.get("uncaught") is uncaught, f"exception.uncaught {exc.get('uncaught')!r}")
    tb = exc.get("traceback")
    check(isinstance(tb, list) and tb, f"exception.traceback {tb!r} is empty")
    for f in tb:
        check(set(f) >= {"file", "line", "function", "code"}, f"traceback frame {f!r} lacks file/line/function/code")
    top = tb[-1]
    check(top["function"] == function and top["file"].endswith("ranks.py") and isinstance(top["line"], int),
          f"innermost frame {top!r} is not {function} in ranks.py")
    check(top["code"] and "raise" in top["code"], f"innermost frame's code {top['code']!r} is not the raise line")
    if outer:  # as Python prints it: a caught exception's traceback starts where it was caught
        check(tb[0]["function"] == outer, f"outermost frame {tb[0]!r} is not {outer}")
    text = b.get("text") or ""
    check(text.startswith("Traceback (most recent call last):") and f"{type_}: {message}" in text,
          f"text is not the traceback as Python prints it: {text!r}")
    return exc


def check_event_no_native(b, event, np):
    """check_event without a native backtrace: a Python exception's site is its traceback."""
    saved = b.get("backtrace")
    b["backtrace"] = saved or [{"index": 0, "module": None, "offset": "0x0"}]
    try:
        check_event(b, event, np)
    finally:
        b["backtrace"] = saved


def ended_nonzero(r):
    check(not r.hung, "the job hung")
    check(r.rc != 0, f"the job exited 0 after an uncaught exception (expected the abort's non-zero status)")


# --- never hang, never orphan ------------------------------------------------------------

@case
def py_healthy_preload(t):
    sink = Sink(t)
    r = run(t, [], sink)
    check(r.rc == 0, f"a healthy mpi4py job exited {r.rc} with the library preloaded")
    check(sorted(re.findall(r"done (\d+)", r.out)) == [str(i) for i in range(NP)],
          f"not every rank finished: {r.out!r}")  # mpirun may join the ranks' lines
    check(messages(sink) == [], f"a healthy job sent {len(messages(sink))} message(s)")


@case
def py_healthy_run(t):
    sink = Sink(t)
    py = need_python("mpi4py")
    r = t.tool(["--url", sink.url()], t.mpirun_cmd(NP, py, [prog("ranks.py")], preload=False))
    check(r.rc == 0, f"a healthy mpi4py job under mpinotify-run exited {r.rc}")
    bad = [b for b in messages(sink) if b.get("severity") in ("error", "critical")]
    check(not bad, f"failure messages for a healthy job: {[b.get('title') for b in bad]}")
    started = [b for b in messages(sink, "job") if "started" in (b.get("title") or "")]
    for b in started:  # when sent, it counts every rank: the library armed in every Python rank
        check(b.get("ranks_armed") == NP, f"started says {b.get('ranks_armed')} of {NP} ranks armed: {b.get('title')}")


def dlopen_job(t, mode):
    sink = Sink(t)
    exe, plugin = t.paths.prog("dlopen_mpi"), t.paths.prog("libdlopen_mpi_plugin.so")
    base = t.mpirun(NP, exe, [plugin, mode, "2"], env={"MPINOTIFY_DISABLE": "1"}, label="baseline")
    r = t.mpirun(NP, exe, [plugin, mode, "2"], env={"MPINOTIFY_URLS": sink.url()})
    check(r.rc == base.rc == 139, f"exit status {r.rc} with the library, {base.rc} without (expected 139)")
    crashes = messages(sink, "crash")
    check(len(crashes) == 1 and crashes[0]["ranks"] == [2], f"expected one crash report for rank 2: {crashes!r}")
    healthy = t.mpirun(NP, exe, [plugin, mode, ""], env={"MPINOTIFY_URLS": sink.url()}, label="healthy")
    check(healthy.rc == 0, f"the healthy run exited {healthy.rc}")


@case
def py_dlopen_local(t):
    dlopen_job(t, "local")  # libmpi reachable only through the plugin (RTLD_LOCAL), as with mpi4py


@case
def py_dlopen_global(t):
    dlopen_job(t, "global")


# --- uncaught exceptions --------------------------------------------------------------------

@case
def py_exception_some_ranks(t):
    # Ranks 1 and 3 raise the same ValueError while 0 and 2 wait in allreduce: without the
    # library this deadlocks (mpi4py finalizes at exit); with it, one message and the job ends.
    sink = Sink(t)
    r = run(t, ["value=1,3"], sink)
    ended_nonzero(r)
    [b] = messages(sink)
    check_exception(b, "ValueError", "loss is nan at step 7", [1, 3], "train_step")
    check(b.get("title", "").startswith("uncaught ValueError on 2 of 4 ranks"), f"title {b.get('title')!r}")
    check(b.get("backtrace") == [], "a Python exception carries the interpreter's native frames")
    check("ValueError: loss is nan at step 7" in r.err, "Python's own traceback print is missing")


@case
def py_exception_token_masked(t):
    # An exception whose message (and source line) holds a token: every field of the message, the
    # traceback's code lines too, shows it masked; Python's own print on stderr is the program's.
    sink = Sink(t)
    r = run(t, ["token=1"], sink)
    ended_nonzero(r)
    [b] = messages(sink)
    body = json.dumps(b)
    check("AbCdEf1234567890" not in body, "the token is in the message")
    check("hf_***" in (b.get("exception") or {}).get("message", ""), f"exception message {b.get('exception')!r}")
    check("hf_AbCdEf1234567890abcdefgh" in r.err, "Python's own traceback print is missing")


@case
def py_two_types_and_sites(t):
    # Two types (ValueError, KeyError) and two sites of one type: three messages, each listing its ranks.
    sink = Sink(t)
    r = run(t, ["value=0", "key=1", "value2=2"], sink)
    ended_nonzero(r)
    bodies = sorted(messages(sink), key=lambda b: b["ranks"])
    check(len(bodies) == 3, f"expected 3 messages, got {[b.get('title') for b in bodies]}")
    check_exception(bodies[0], "ValueError", "loss is nan at step 7", [0], "train_step")
    check_exception(bodies[1], "KeyError", "'batch 4'", [1], "load_batch")
    check_exception(bodies[2], "ValueError", "accuracy is nan at step 2", [2], "evaluate")
    check(len({b["signature"] for b in bodies}) == 3, "two different exceptions share a signature")


@case
def py_mpi4py_run(t):
    # python -m mpi4py turns every exception into MPI_Abort(1): still its type and traceback, one per kind.
    sink = Sink(t)
    py = need_python("mpi4py")
    r = t.mpirun(NP, py, ["-m", "mpi4py", prog("ranks.py"), "value=1", "key=3"], env={"MPINOTIFY_URLS": sink.url()})
    ended_nonzero(r)
    bodies = sorted(messages(sink), key=lambda b: b["ranks"])
    check([b.get("event") for b in bodies] == ["exception", "exception"],
          f"expected two exception messages, got {[b.get('title') for b in bodies]}")
    check_exception(bodies[0], "ValueError", "loss is nan at step 7", [1], "train_step", outer="_run_module_as_main")
    check_exception(bodies[1], "KeyError", "'batch 4'", [3], "load_batch", outer="_run_module_as_main")


@case
def py_abort_in_except(t):
    # except: traceback.print_exc(); comm.Abort(3): the exception is the report, the status stays 3.
    sink = Sink(t)
    r = run(t, ["abort=1"], sink)
    check(r.rc == 3, f"exit status {r.rc}, expected the program's MPI_Abort(3)")
    [b] = messages(sink)
    exc = check_exception(b, "ValueError", "loss is nan at step 5", [1], "train_step", uncaught=False, outer="abort_idiom",
                          fatal=True)
    check(exc.get("context") == "MPI_Abort(3) while handling it", f"context {exc.get('context')!r}")


@case
def py_thread_exception(t):
    sink = Sink(t)
    r = run(t, ["thread=2"], sink)
    check(r.rc == 0, f"a thread's exception ended the job ({r.rc}); Python goes on after one")
    [b] = messages(sink)
    exc = check_exception(b, "RuntimeError", "data loader died", [2], "worker", outer="_bootstrap_inner")
    check(exc.get("thread") == "loader-0", f"exception.thread {exc.get('thread')!r}")
    check("Exception in thread loader-0" in r.err, "Python's own thread traceback print is missing")


@case
def py_chained_exception(t):
    sink = Sink(t)
    r = run(t, ["chained=2"], sink)
    ended_nonzero(r)
    [b] = messages(sink)
    check_exception(b, "KeyError", "'checkpoint missing'", [2], "chained")
    text = b["text"]
    check("ValueError: loss is nan at step 3" in text and
          "The above exception was the direct cause of the following exception:" in text,
          f"the chained cause is not shown as Python shows it: {text!r}")
    check(text.index("ValueError") < text.index("KeyError: 'checkpoint missing'"), "the cause must come first")


@case
def py_native_crash_frames(t):
    sink = Sink(t)
    base = baseline(t, ["segv=2"])
    r = run(t, ["segv=2"], sink)
    check(r.rc == base.rc == 139, f"exit status {r.rc} with the library, {base.rc} without (expected 139)")
    [b] = messages(sink)
    check_event(b, "crash", NP)
    check(b["ranks"] == [2] and b.get("signal") == "SIGSEGV", f"ranks {b['ranks']}, signal {b.get('signal')}")
    py = b.get("python_traceback")
    check(isinstance(py, list) and py, f"python_traceback {py!r} is missing")
    funcs = [f.get("function") for f in py]
    check("load_batch" in funcs and funcs[0] == "<module>", f"Python frames {funcs} lack load_batch/<module>")
    lb = py[funcs.index("load_batch")]
    check(lb["file"].endswith("ranks.py") and isinstance(lb["line"], int) and "string_at" in (lb.get("code") or ""),
          f"load_batch frame {lb!r} lacks file, line or code")


@case
def py_child_not_a_rank(t):
    # A rank's Python subprocess inherits LD_PRELOAD and the launcher's variables: it is not a rank.
    sink = Sink(t)
    r = run(t, ["child"], sink)
    check(r.rc == 0, f"exit status {r.rc}")
    check("SystemError: child" in r.err and "child hook sys" in r.out, f"the child did not run unhooked: {r.out!r}")
    check(messages(sink) == [], f"a child process's exception was reported as the rank's: {messages(sink)}")


def native_abort(t, mode, status):
    sink = Sink(t)
    lib = t.paths.prog("libpy_native_abort.so")
    py = need_python("mpi4py")
    base = t.mpirun(2, py, [prog("native_abort.py"), mode, lib], env={"MPINOTIFY_DISABLE": "1"}, label="baseline")
    check(base.rc == status, f"test premise: without the library the job ends {base.rc}, not {status}")
    r = t.mpirun(2, py, [prog("native_abort.py"), mode, lib], env={"MPINOTIFY_URLS": sink.url()}, guard=60)
    check(r.rc == status, f"exit status {r.rc} with the library, {status} without")
    kinds = [(b.get("event"), (b.get("mpi_error") or {}).get("function")) for b in messages(sink)]
    check(("mpi_error", "MPI_Abort") in kinds and ("crash", None) not in kinds, f"messages {kinds}")


@case
def py_abort_from_thread(t):
    # A C thread's MPI_Abort while the main thread holds the GIL in MPI: the Python hook must not wait for it.
    native_abort(t, "thread", 3)


@case
def py_abort_after_finalize(t):
    # MPI_Abort from a C atexit handler after Python finalized: no Python code may run then.
    native_abort(t, "exit", 5)


# --- the Python API inside ranks ---------------------------------------------------------------

@case
def py_notify_exception(t):
    # Every rank catches the same ValueError and reports it: one message, every rank, not uncaught.
    sink = Sink(t)
    r = run(t, ["notify"], sink)
    check(r.rc == 0, f"exit status {r.rc}: notify_exception must not end the program")
    [b] = messages(sink)
    exc = check_exception(b, "ValueError", "loss is nan at step 9", list(range(NP)), "train_step", uncaught=False,
                          outer="notify")
    check(exc.get("context") == "validation" and exc.get("name") == "nightly", f"context/name {exc!r}")


@case
def py_notify_through_notifier(t):
    # notify_exception(WebhookNotifier(url)): deduplicated the same way, delivered to that notifier only.
    configured, own = Sink(t), Sink(t, name="own")
    r = run(t, [f"notify_url={own.url().split('+', 1)[1]}"], configured)
    check(r.rc == 0, f"exit status {r.rc}")
    check(messages(configured) == [], "the configured channel got the report meant for the notifier")
    [b] = messages(own)
    check_exception(b, "ValueError", "loss is nan at step 9", list(range(NP)), "train_step", uncaught=False, outer="notify")


@case
def py_traceback_in_chat(t):
    # A chat channel shows the traceback as Python prints it, in monospace, its last line as the text.
    sink = Sink(t)
    r = run(t, [f"notify_any={sink.url(kind='slack')}"], Sink(t, name="unused"))
    check(r.rc == 0, f"exit status {r.rc}")
    posts = sink.bodies()
    check(len(posts) == 1, f"expected one Slack post, got {len(posts)}")
    texts = [b.get("text", {}).get("text", "") for b in posts[0].get("blocks", []) if isinstance(b.get("text"), dict)]
    code = [x for x in texts if "```\nTraceback (most recent call last):" in x]
    check(code and 'in train_step\n    raise ValueError(f"loss is nan at step {step}")' in code[0]
          and "ValueError: loss is nan at step 9" in code[0], f"no Python traceback in a code block: {texts}")
    # the text leads with it (the rank's last lines of output may follow: rank_output)
    check(any(x.split("\n")[0] == "ValueError: loss is nan at step 9" for x in texts),
          f"the exception's last line does not lead the text: {texts}")


@case
def py_no_mpi_import(t):
    # No MPI at all: `import mpinotify` alone reports rank 1's exception, once.
    sink = Sink(t)
    r = run(t, [], sink, np=3, script="nompi.py", module="json")
    check(r.rc != 0, f"exit status {r.rc}: rank 1's exception must end it non-zero")
    [b] = messages(sink)
    check(b.get("event") == "exception" and b.get("ranks") == [1], f"message {b.get('title')!r} ranks {b.get('ranks')}")
    exc = b.get("exception") or {}
    check(exc.get("type") == "RuntimeError" and exc.get("message") == "loss diverged at step 7", f"exception {exc!r}")
    check(exc["traceback"][-1]["function"] == "optimizer_step", f"traceback {exc['traceback']!r}")


@case
def py_no_mpi_nodes(t):
    # Every rank raises the same exception, each as if on a node of its own (claim files cannot
    # agree across nodes): plainly preloaded, one message per "node"; under mpinotify-run, whose
    # relay decides who reports, one message for the job.
    py = need_python("json")
    args = [py, prog("nompi.py"), "all", "node-per-rank"]
    plain = Sink(t, name="plain")
    r = t.mpirun(3, args[0], args[1:], env={"MPINOTIFY_URLS": plain.url()}, label="preloaded, no launcher")
    # (the first rank to exit after its report makes mpirun end the others, maybe before theirs is out)
    check(r.rc != 0 and len(messages(plain)) >= 2,
          f"test premise: without mpinotify-run each 'node' reports ({len(messages(plain))} messages)")
    sink = Sink(t)
    r = t.tool(["--url", sink.url(), "--job-events", "none"], t.mpirun_cmd(3, args[0], args[1:], preload=False))
    check(r.rc != 0, f"exit status {r.rc}")
    bodies = messages(sink, "exception")
    check(len(bodies) == 1, f"expected one message for the job, got {len(bodies)}: {[b.get('ranks') for b in bodies]}")
    b = bodies[0]
    check(b["exception"]["type"] == "RuntimeError" and b.get("election") == "launcher" and "election_error" not in b,
          f"exception {b['exception'].get('type')}, election {b.get('election')!r} {b.get('election_error')!r}")


@case
def py_torch_gloo(t):
    # PyTorch CPU, gloo, 3 ranks under mpirun, `import mpinotify` its only change: rank 1's RuntimeError once.
    sink = Sink(t)
    port = str(20000 + os.getpid() % 20000)
    r = run(t, [port], sink, np=3, script="torch_gloo.py", module="torch")
    check(r.rc != 0, f"exit status {r.rc}")
    mine = [b for b in messages(sink) if "loss diverged" in ((b.get("exception") or {}).get("message") or "")]
    check(len(mine) == 1, f"rank 1's RuntimeError arrived {len(mine)} times: {[b.get('title') for b in messages(sink)]}")
    b = mine[0]
    check(b.get("ranks") == [1] and b["exception"]["type"] == "RuntimeError", f"{b.get('ranks')} {b['exception']}")
    check(b["exception"]["traceback"][-1]["function"] == "training_step", "the traceback does not end in training_step")



@case
def py_torch_gloo_run(t):
    # The same PyTorch job under mpinotify-run, with its default job messages: its ranks never call
    # MPI_Init, yet they are watched (no "started" warning about unarmed ranks); rank 1's
    # RuntimeError and the job's end are one message; the others' gloo errors that follow are
    # listed in it, not sent on their own.
    py = need_python("torch")
    port = str(20000 + (os.getpid() + 7) % 20000)
    sink = Sink(t)
    r = t.tool(["--url", sink.url()], t.mpirun_cmd(3, py, [prog("torch_gloo.py"), port], preload=False))
    check(r.rc != 0, f"exit status {r.rc}")
    bodies = messages(sink)
    check(len(bodies) == 1, f"expected one message, got {[(b.get('event'), b.get('title')) for b in bodies]}")
    b = bodies[0]
    check(b.get("event") == "exception" and b.get("ranks") == [1] and "loss diverged" in b["exception"]["message"],
          f"message {b.get('title')!r} ranks {b.get('ranks')}")
    job = b.get("job") or {}
    check(job.get("status") == "failed" and job.get("exit_status") == r.rc, f"job {job!r}")
    reps = job.get("reports") or []
    check(all(x.get("knock_on") for x in reps if x.get("signature") != b.get("signature")),
          f"a failure other than rank 1's that is not a knock-on: {reps!r}")


@case
def py_rank_output(t):
    # What the Python rank printed before it raised is in its exception's report.
    sink = Sink(t)
    r = run(t, ["say=1", "value=1"], sink)
    ended_nonzero(r)
    [b] = messages(sink)
    out = b.get("rank_output") or []
    check("ERROR: shard 7 is corrupt" in out, f"rank_output {out!r} lacks the rank's ERROR line")
    check(out.index("rank 1 step 5 ok") < out.index("ERROR: shard 7 is corrupt"), f"rank_output's order: {out!r}")
    check(not any(line.startswith("rank 0") for line in out), f"another rank's lines in rank 1's report: {out!r}")


if __name__ == "__main__":
    sys.exit(main())
