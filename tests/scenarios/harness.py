"""Test harness for the mpinotify scenario tests (tests/scenarios/AREA.py, one file per CTest
prefix: the entry AREA.CASE runs `python3 AREA.py CASE --lib ... --progs ... --sink ...`).

A scenario file defines its cases with the @case decorator and ends with
`if __name__ == "__main__": sys.exit(main())`; `AREA.py --check-list CASE...` compares its cases
with the list tests/CMakeLists.txt registers (the AREA.list_complete test).

A scenario gets a private temp dir, starts the loopback sink (tests/sink/mpn_sink.py)
on a free port, runs a job (mpirun, mpinotify-run or a plain program) with a clean,
explicit environment under a hard hang guard, then asserts on what the sink received.
On any failed check it prints everything it saw (commands, exit statuses, output,
every request the sink recorded) and exits 1. Exit 77 means "skipped" (CTest's
SKIP_RETURN_CODE).
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
HANG_GUARD_S = 120  # a job that runs longer is hung: the test fails
NP = 8  # ranks of a job unless a case says otherwise
SLACK_S = 30  # a job must end within its budget (MPINOTIFY_TIMEOUT_MS) + this: a hang check, not a benchmark
MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMPI_MCA_mpi_yield_when_idle": "1",  # 8 ranks on 2 cores: blocked ranks must not spin
}
# The caller's proxies stay out: loopback sinks must be reached directly unless a test says otherwise.
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
SIGNALS = {"SIGSEGV": 11, "SIGABRT": 6, "SIGBUS": 7, "SIGFPE": 8, "SIGILL": 4, "SIGTRAP": 5}

_shown = []  # things to print when a check fails: job results and sinks


class Failed(Exception):
    pass


def fail(msg):
    raise Failed(msg)


def check(cond, msg):
    """Assert `cond`; on failure the scenario runner prints `msg` and every job and sink."""
    if not cond:
        fail(msg)


def skip(msg):
    print("SKIP:", msg)
    sys.exit(SKIP)


class Paths:
    """Where the build put things; given on the command line by CTest."""

    def __init__(self, a):
        self.lib, self.run_tool, self.progs, self.sink = a.lib, a.run_tool, a.progs, a.sink
        self.send_tool = a.send_tool
        self.case = a.case

    def prog(self, name, why_missing=None):
        p = os.path.join(self.progs, name)
        if not os.path.exists(p):
            if why_missing:
                skip(f"{name} was not built: {why_missing}")
            fail(f"program {p} does not exist (build the tests first)")
        return p


def parse_args(cases, tools=True):
    """The command line CTest gives: the case, then where the build put things. Without `tools`
    (tests/python/test_notifiers.py) only --lib and --sink, the others empty."""
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(cases))
    ap.add_argument("--lib", required=True, help="libmpinotify.so")
    if tools:
        ap.add_argument("--run-tool", default="", help="mpinotify-run (empty: not built)")
        ap.add_argument("--send-tool", default="", help="mpinotify-send (empty: not built)")
        ap.add_argument("--progs", required=True, help="folder of the scenario programs")
    ap.add_argument("--sink", required=True, help="mpn_sink.py")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    a = ap.parse_args()
    if not tools:
        a.run_tool = a.send_tool = a.progs = ""
    return a


class Result:
    def __init__(self, label, cmd, env_extra, rc, out, err, elapsed=None):
        self.label, self.cmd, self.env_extra = label, cmd, env_extra
        self.rc, self.out, self.err = rc, out, err
        self.elapsed = elapsed  # wall-clock seconds, for hang checks only (generous bounds)
        self.hung, self.stuck = False, []  # killed by the hang guard; its processes then (TestDir.run)

    def lines(self, stream="err"):
        return (self.err if stream == "err" else self.out).splitlines()

    def show(self):
        print(f"--- job [{self.label}] exit status {self.rc}, {self.elapsed or 0:.1f} s" + (" (hung, killed)" if self.hung else ""))
        if self.stuck:
            print("    processes when killed:", ", ".join(f"{pid} {name} {state}" for pid, name, state in self.stuck))
        print("    env:", " ".join(f"{k}={v}" for k, v in sorted(self.env_extra.items())))
        print("    cmd:", " ".join(self.cmd))
        for name, text in (("stdout", self.out), ("stderr", self.err)):
            tail = text.splitlines()[-60:]
            print(f"    {name} ({len(text.splitlines())} lines, last {len(tail)}):")
            for line in tail:
                print("      |", line)


class Server:
    """A loopback server of the tests (tests/sink/) as a child process: it binds a port, writes it
    to a port file and appends one JSON line per request or event to `out`."""

    what = "server"  # in messages: "sink", "SMTP server"

    def _start(self, t, name, cmd, env=None):
        """Start `cmd` + --port-file/--out, wait for its port; it is stopped at the end of the test
        and shown (show()) when a check fails."""
        self.name = name
        self.out = os.path.join(t.dir, name + ".jsonl")
        port_file = os.path.join(t.dir, name + ".port")
        check(not os.path.exists(port_file), f"two {self.what}s named {name!r} in one test")
        self.proc = subprocess.Popen(cmd + ["--port-file", port_file, "--out", self.out], env=env)
        for _ in range(200):  # it binds within milliseconds; 20 s means it is broken
            if os.path.exists(port_file):
                break
            check(self.proc.poll() is None, f"{self.what} exited early with status {self.proc.returncode}")
            time.sleep(0.1)
        check(os.path.exists(port_file), f"{self.what} did not write its port file")
        with open(port_file) as f:
            self.port = int(f.read())
        t.cleanups.append(self.stop)
        _shown.append(self)

    def script_file(self, t, name, script):
        """`script` (a list of answers) as a JSON file for --script."""
        path = os.path.join(t.dir, name + ".script.json")
        with open(path, "w") as f:
            json.dump(script, f)
        return path

    def records(self):
        with open(self.out, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Sink(Server):
    """The loopback webhook sink (tests/sink/mpn_sink.py) as a child process.

    port: bind this port (e.g. one a channel was configured with while nothing listened);
    script: a list of answers served in order before `mode` applies (see mpn_sink.py);
    delay: seconds before answering in mode "slow"; server: another sink script with the
    same options (tests/sink/ops_raw_sink.py also records each body as received).
    """

    what = "sink"

    def __init__(self, t, name="sink", mode="ok", tls=None, port=None, script=None, delay=None, server=None,
                 bind=None):
        cmd = [sys.executable, server or t.paths.sink, "--mode", mode]
        self.host = bind or "127.0.0.1"
        if bind:
            cmd += ["--bind", bind]  # an address of the test's own namespaces (tests/scenarios/helpers/bed.py)
        if tls:
            cmd += ["--tls", tls["cert"], tls["key"]]
        if port:
            cmd += ["--port", str(port)]
        if delay is not None:
            cmd += ["--delay", str(delay)]
        if script is not None:
            cmd += ["--script", self.script_file(t, name, script)]
        self.scheme = "https" if tls else "http"
        self.mode = mode
        self.describe = f"mode {mode}" + (f" after {len(script)} scripted answer(s)" if script else "") + \
            (f", delay {delay} s" if delay is not None else "")
        self._start(t, name, cmd)

    def url(self, path="/hook", kind="webhook"):
        return f"{kind}+{self.scheme}://{self.host}:{self.port}{path}"

    def posts(self):
        return [r for r in self.records() if r.get("method") == "POST"]

    def bodies(self):
        return [p["body"] for p in self.posts()]

    def accepted(self):
        """POSTs the sink answered with success: 2xx and no error code in the reply body."""
        return [p for p in self.posts() if is_success(p.get("status"), p.get("reply"))]

    def show(self):
        recs = self.records() if os.path.exists(self.out) else []
        print(f"--- sink [{self.name}, {self.describe}, {self.scheme}, port {self.port}] recorded {len(recs)} request(s)/event(s):")
        for r in recs:
            print(json.dumps(r, indent=2, sort_keys=True))


class Smtp(Server):
    """The loopback SMTP server (tests/sink/mpn_smtp.py, see its docstring for the options) as a
    child process; it records every message parsed with Python's email package."""

    what = "SMTP server"

    def __init__(self, t, name="smtp", tls=None, implicit=False, starttls=True, auth=False, require_auth=False,
                 password=None, reject=(), script=None):
        server = os.path.join(os.path.dirname(os.path.abspath(t.paths.sink)), "mpn_smtp.py")
        cmd = [sys.executable, server]
        env = dict(os.environ)
        if tls:
            cmd += ["--tls", tls["cert"], tls["key"]]
        if implicit:
            cmd.append("--implicit-tls")
        if not starttls:
            cmd.append("--no-starttls")
        if auth:
            cmd.append("--auth")
        if require_auth:
            cmd.append("--require-auth")
        if password:
            env["MPN_SMTP_EXPECTED_PASSWORD"] = password  # the environment, never argv
            cmd += ["--password-env", "MPN_SMTP_EXPECTED_PASSWORD"]
        for r in reject:
            cmd += ["--reject-rcpt", r]
        if script is not None:
            cmd += ["--script", self.script_file(t, name, script)]
        self.describe = ("implicit TLS" if implicit else "STARTTLS" if tls and starttls else "plain") + \
            (", AUTH" if auth else "") + (f", rejects {list(reject)}" if reject else "") + \
            (f", script {script}" if script else "")
        self._start(t, name, cmd, env)

    def url(self, query, scheme="smtp", userinfo=""):
        return f"{scheme}://{userinfo}127.0.0.1:{self.port}?{query}"

    def events(self, kind):
        return [r for r in self.records() if r.get("event") == kind]

    def sessions(self, n):
        """The session records once at least n connections ended: the server writes one when the
        client hangs up, which may be just after mpinotify-send exits (not a timing check)."""
        wait_for(lambda: len(self.events("session")) >= n, tries=100)
        found = self.events("session")
        check(len(found) >= n, f"{len(found)} SMTP session(s) ended, expected at least {n}")
        return found

    def messages(self):
        return self.events("message")

    def accepted(self):
        return [m for m in self.messages() if m["accepted"]]

    def show(self):
        recs = self.records() if os.path.exists(self.out) else []
        print(f"--- SMTP server [{self.name}, {self.describe}, port {self.port}] recorded {len(recs)} event(s):")
        for r in recs:
            r = dict(r)
            if len(r.get("raw", "")) > 6000:
                r["raw"] = r["raw"][:6000] + f"... ({len(r['raw'])} characters)"
            if "parsed" in r:
                for p in r["parsed"].get("parts", []):
                    if len(p.get("payload", "")) > 3000:
                        p["payload"] = p["payload"][:3000] + "..."
            print(json.dumps(r, indent=2, sort_keys=True))


class TestDir:
    def __init__(self, paths, keep=False):
        self.paths = paths
        self.dir = tempfile.mkdtemp(prefix=f"mpn-{paths.case}-")
        self.spool = os.path.join(self.dir, "spool")
        os.mkdir(self.spool, 0o700)  # it holds channel specs, secrets included
        self.cleanups, self.keep = [], keep

    def close(self, failed):
        for c in reversed(self.cleanups):
            c()
        if failed or self.keep:
            print("temp dir kept:", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- environment and jobs ------------------------------------------------

    def env(self, extra):
        """A clean environment: nothing MPINOTIFY_* or preloaded leaks in from the caller."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MPINOTIFY_") and k != "LD_PRELOAD" and k.lower() not in PROXY_VARS}
        env.update(MPI_ENV)
        env["MPINOTIFY_SPOOL"] = self.spool
        env["MPINOTIFY_JOB_NAME"] = self.paths.case
        # If the library is built with sanitizers, ASan's own SIGSEGV handler must stay out of the way.
        env.setdefault("ASAN_OPTIONS", "handle_segv=0:handle_abort=0:detect_leaks=0")
        env.update(extra)
        return env

    def run(self, cmd, label, env=None, guard=HANG_GUARD_S, hang_ok=False):
        """Run `cmd` in its own session; kill its whole tree and fail if it outlives `guard`.
        With `hang_ok` the caller judges: the result has `hung` set and, in `stuck`, the
        (pid, name, state) of every process of the tree when it was killed, the job's first."""
        env = dict(env or {})
        start = time.monotonic()
        p = subprocess.Popen(cmd, env=self.env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        stuck = []
        try:
            out, err = p.communicate(timeout=guard)
            hung = False
        except subprocess.TimeoutExpired:
            stuck = _kill_tree(p.pid)
            out, err = p.communicate()
            hung = True
        r = Result(label, cmd, env, p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                   time.monotonic() - start)
        r.hung, r.stuck = hung, stuck
        _shown.append(r)
        check(hang_ok or not hung, f"job [{label}] still ran after the {guard} s hang guard (killed)")
        return r

    def mpirun_cmd(self, np, prog, args=(), preload=True, opts=()):
        """mpirun's command line; `opts` are further mpirun options (e.g. ["-x", "NAME=value"])."""
        cmd = ["mpirun", "--oversubscribe", "-np", str(np)]
        if preload:
            cmd += ["-x", f"LD_PRELOAD={self.paths.lib}"]  # ranks only, not mpirun itself
        return cmd + list(opts) + [prog] + list(args)

    def mpirun(self, np, prog, args=(), preload=True, env=None, label=None, guard=HANG_GUARD_S, hang_ok=False):
        r = self.run(self.mpirun_cmd(np, prog, args, preload), label or ("preload" if preload else "baseline"), env,
                     guard, hang_ok)
        if preload:  # a wrong path only warns in ld.so, and every negative check would pass vacuously
            check("cannot be preloaded" not in r.err, f"job [{r.label}]: the dynamic loader could not preload the library")
        return r

    def tool(self, tool_args, launcher, env=None, label="mpinotify-run"):
        if not self.paths.run_tool or not os.path.exists(self.paths.run_tool):
            skip("mpinotify-run was not built")
        return self.run([self.paths.run_tool] + list(tool_args) + ["--"] + list(launcher), label, env)

    def need_send(self):
        """A case that needs mpinotify-send fails (not skips) when it was not built."""
        tool = self.paths.send_tool
        check(tool and os.path.exists(tool),
              f"this case needs mpinotify-send, which was not built (--send-tool {tool!r})")
        return tool

    def send(self, args, env=None, label=None):
        """Run mpinotify-send."""
        tool = self.need_send()
        return self.run([tool] + list(args), label or "mpinotify-send " + " ".join(args[-1:]), env)

    def spooled(self, spool=None):
        """The undelivered messages (*.msg) in the spool, parsed; checks their envelope."""
        d = spool or self.spool
        msgs = []
        for name in sorted(os.listdir(d)):
            if not name.endswith(".msg"):
                continue  # crash-*.rec, claim and lock files
            with open(os.path.join(d, name), encoding="utf-8") as f:
                text = f.read()
            try:
                m = json.loads(text)
            except ValueError:
                fail(f"spool file {name} is not JSON: {text[:200]!r}")
            check(isinstance(m, dict) and m.get("schema") == "mpinotify-spool/1",
                  f"spool file {name}: schema {m.get('schema') if isinstance(m, dict) else m!r}")
            check(isinstance(m.get("message"), dict) and m["message"].get("schema") == "mpinotify/1",
                  f"spool file {name}: message {m.get('message')!r} is not an mpinotify/1 message")
            check(isinstance(m.get("channel"), str) and m.get("id"), f"spool file {name} lacks channel or id")
            m["_file"] = name
            msgs.append(m)
        return msgs

    # --- TLS -------------------------------------------------------------------

    def make_tls(self, name="tls"):
        """A test CA, a server cert for 127.0.0.1/localhost signed by it, and an unrelated CA."""
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        f = {n: os.path.join(d, n) for n in
             ("ca.pem", "ca.key", "srv.key", "srv.csr", "srv.pem", "ext.cnf", "wrong_ca.pem", "wrong_ca.key")}
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        with open(f["ext.cnf"], "w") as fh:
            fh.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        for cmd in (
            ["req", "-x509", *key, "-keyout", f["ca.key"], "-out", f["ca.pem"], "-days", "2", "-subj", "/CN=mpinotify test CA"],
            ["req", "-x509", *key, "-keyout", f["wrong_ca.key"], "-out", f["wrong_ca.pem"], "-days", "2", "-subj", "/CN=mpinotify wrong CA"],
            ["req", *key, "-keyout", f["srv.key"], "-out", f["srv.csr"], "-subj", "/CN=127.0.0.1"],
            ["x509", "-req", "-in", f["srv.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"], "-CAcreateserial",
             "-out", f["srv.pem"], "-days", "2", "-extfile", f["ext.cnf"]],
        ):
            p = subprocess.run(["openssl", *cmd], capture_output=True, text=True, cwd=d)
            check(p.returncode == 0, f"openssl {' '.join(cmd)} failed: {p.stderr}")
        return {"ca": f["ca.pem"], "wrong_ca": f["wrong_ca.pem"], "cert": f["srv.pem"], "key": f["srv.key"]}


def python_with(module):
    """The first interpreter that imports `module`: Debian's /usr/bin/python3 first (it has
    python3-mpi4py; the python3 first on PATH may not), then this one; None if neither."""
    for exe in ("/usr/bin/python3", sys.executable):
        if os.path.exists(exe) and subprocess.run([exe, "-c", f"import {module}"], capture_output=True).returncode == 0:
            return exe
    return None


def need_python(module):
    """An interpreter that imports `module` (python_with), or the case skips and says why."""
    exe = python_with(module)
    if exe is None:
        skip(f"no python3 with {module} (install python3-mpi4py{'' if module == 'mpi4py' else ' / python3-torch'})")
    return exe


def wait_for(pred, tries=50):
    """Poll for something another process writes asynchronously (not a timing check)."""
    for _ in range(tries):
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def free_port():
    """A port nothing listens on (yet): connections to it are refused until a sink binds it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_success(status, reply):
    """What the services count as accepted: 2xx and, for DingTalk/Feishu, errcode/code 0."""
    if not isinstance(status, int) or not 200 <= status < 300:
        return False
    if isinstance(reply, dict):
        return not reply.get("errcode") and not reply.get("code")
    return True


def _kill_tree(pid):
    """SIGKILL `pid`'s session and every descendant (ranks may leave the session).
    Returns (pid, name, state) of each process of the tree just before, `pid`'s first."""
    kids, stack = [], [pid]
    ppid_of, seen = {}, {}
    for st in os.listdir("/proc"):
        if st.isdigit():
            try:
                with open(f"/proc/{st}/stat") as f:
                    text = f.read()
                name, rest = text.split("(", 1)[1].rsplit(")", 1)
                fields = rest.split()
                ppid_of[int(st)] = int(fields[1])
                seen[int(st)] = (int(st), name, fields[0])
            except (OSError, ValueError, IndexError):
                pass
    while stack:
        cur = stack.pop()
        kids.append(cur)
        stack += [c for c, pp in ppid_of.items() if pp == cur]
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for k in kids:
        try:
            os.kill(k, signal.SIGKILL)
        except OSError:
            pass
    return [seen[k] for k in kids if k in seen]


# --- assertions on reports ----------------------------------------------------

HEX16 = re.compile(r"^[0-9a-f]{16}$")


def check_report(b, world_size=None):
    """Check one crash report against the mpinotify/1 schema; returns it for chaining."""
    check_event(b, "crash", world_size)
    sig = b.get("signal")
    check(sig in SIGNALS and b.get("signal_number") == SIGNALS[sig], f"signal {sig!r} / signal_number {b.get('signal_number')!r}")
    fa = b.get("fault_address")
    check(fa is None or (isinstance(fa, str) and re.match(r"^0x[0-9a-fA-F]+$", fa)), f"fault_address {fa!r}")
    return b


def check_event(b, event, world_size=None):
    """Check one message of kind `event` reported by the ranks (fields every such message has)."""
    check(isinstance(b, dict), f"POST body is not a JSON object: {b!r}")
    check(b.get("schema") == "mpinotify/1", f"schema is {b.get('schema')!r}")
    check(b.get("event") == event, f"event is {b.get('event')!r}, expected {event!r}")
    check(isinstance(b.get("id"), str) and b["id"].startswith("msg_"), f"id {b.get('id')!r}")
    check(isinstance(b.get("title"), str) and b["title"], f"title {b.get('title')!r}")
    check(b.get("severity") in ("info", "warning", "error", "critical"), f"severity {b.get('severity')!r}")
    check(b.get("reported_by") == "rank", f"reported_by {b.get('reported_by')!r}")
    check(isinstance(b.get("signature"), str) and HEX16.match(b["signature"]), f"signature {b.get('signature')!r} is not 16 hex digits")
    try:
        datetime.datetime.fromisoformat(str(b.get("timestamp")).replace("Z", "+00:00"))
    except ValueError:
        fail(f"timestamp {b.get('timestamp')!r} is not ISO 8601")
    ranks = b.get("ranks")
    check(isinstance(ranks, list) and ranks and all(isinstance(r, int) for r in ranks), f"ranks {ranks!r}")
    check(ranks == sorted(set(ranks)), f"ranks {ranks!r} are not sorted and unique")
    ws = b.get("world_size")
    check(isinstance(ws, int) and all(0 <= r < ws for r in ranks), f"world_size {ws!r} vs ranks {ranks!r}")
    if world_size is not None:
        check(ws == world_size, f"world_size {ws} != {world_size}")
    check(b.get("election") in ("ok", "launcher", "failed"), f"election {b.get('election')!r}")
    procs = b.get("processes")
    check(isinstance(procs, list), f"processes {procs!r}")
    for p in procs + [b.get("leader")]:
        check(isinstance(p, dict) and isinstance(p.get("rank"), int) and isinstance(p.get("pid"), int)
              and p["pid"] > 0 and isinstance(p.get("hostname"), str) and p["hostname"],
              f"process entry {p!r} lacks rank, pid > 0 or hostname")
    check(sorted(p["rank"] for p in procs) == ranks, f"processes' ranks {[p['rank'] for p in procs]} != ranks {ranks}")
    key = lambda p: (p["rank"], p["pid"], p["hostname"])
    check(key(b["leader"]) in [key(p) for p in procs], f"leader {b['leader']!r} is not one of the processes")
    bt = b.get("backtrace")
    check(isinstance(bt, list) and (bt or event == "progress"), f"backtrace {bt!r} is empty")
    for i, fr in enumerate(bt):
        check(isinstance(fr, dict) and fr.get("index") == i and (fr.get("module") is None or isinstance(fr["module"], str))
              and isinstance(fr.get("offset"), str) and fr["offset"].startswith("0x")
              and (fr.get("function") is None or isinstance(fr["function"], str))
              and (fr.get("function_offset") is None or isinstance(fr["function_offset"], str)),
              f"backtrace frame {i} malformed: {fr!r}")
    job = b.get("job")
    check(isinstance(job, dict) and "name" in job and "command" in job, f"job {job!r}")
    return b


def functions(b):
    return [fr.get("function") for fr in b["backtrace"]]


def crash(t, args, env, prog, expect_status=None, np=NP):
    """Run a job without and with the library (preloaded); the exit statuses must agree.
    `expect_status`: the baseline's, else the test's premise is broken."""
    base = t.mpirun(np, prog, args, preload=False)
    if expect_status is not None:
        check(base.rc == expect_status, f"baseline (no library) exit status {base.rc}, expected {expect_status}: test premise broken")
    r = t.mpirun(np, prog, args, env=env)
    check(r.rc == base.rc, f"exit status {r.rc} with the library, {base.rc} without")
    return r


def no_spooled(t, why, spool=None):
    """Nothing undelivered (*.msg) in the spool (the test's, or `spool`)."""
    left = t.spooled(spool)
    check(not left, f"{why}: {len(left)} message(s) left in the spool: {[m['_file'] for m in left]}")


def reports(sink, n, world_size=None):
    """Exactly `n` POSTs, each a valid report sent as JSON; returns the bodies."""
    posts = sink.posts()
    check(len(posts) == n, f"expected exactly {n} POST(s) at the sink, got {len(posts)}")
    for p in posts:
        ctype = {k.lower(): v for k, v in p["headers"].items()}.get("content-type", "")
        check(ctype.startswith("application/json"), f"Content-Type is {ctype!r}")
        check_report(p["body"], world_size)
    return [p["body"] for p in posts]


# --- runner ------------------------------------------------------------------

_CASES = {}  # module name -> {case name: function}


def case(fn):
    """Make `fn(t)` a case of its file, named as the function (the CTest entry AREA.NAME)."""
    cases = _CASES.setdefault(fn.__module__, {})
    if fn.__name__ in cases:
        raise RuntimeError(f"two cases named {fn.__name__} in {fn.__module__}")
    cases[fn.__name__] = fn
    return fn


def check_list(cases, listed):
    """0 if `listed` (what CMake registers) names each case of the file once and nothing else."""
    script = os.path.basename(sys.argv[0])
    dups = sorted({c for c in listed if listed.count(c) > 1})
    unregistered = sorted(set(cases) - set(listed))
    unknown = sorted(set(listed) - set(cases))
    for what, names in (("cases defined in " + script + " that tests/CMakeLists.txt does not register", unregistered),
                        ("names tests/CMakeLists.txt registers that " + script + " does not define", unknown),
                        ("names tests/CMakeLists.txt registers twice", dups)):
        if names:
            print(f"FAIL {what}: {' '.join(names)}")
    if unregistered or unknown or dups:
        return 1
    print(f"PASS {script}: the {len(cases)} cases are those registered")
    return 0


def main(tools=True, setup=None):
    """Run the case named on the command line (the cases of the file run as a script), or with
    --check-list NAME... compare them with CMake's list. `setup(args)` runs before the case."""
    cases = _CASES.get("__main__", {})
    if sys.argv[1:2] == ["--check-list"]:
        return check_list(cases, sys.argv[2:])
    a = parse_args(cases, tools)
    paths = Paths(a)
    check_ok = os.path.exists(paths.lib)
    t = TestDir(paths, a.keep)
    failed = True
    try:
        check(check_ok, f"library {paths.lib} does not exist (build it first)")
        if setup:
            setup(a)
        cases[a.case](t)
        failed = False
        print(f"PASS {a.case}")
    except Failed as e:
        print(f"FAIL {a.case}: {e}")
        for s in _shown:
            s.show()
    except SystemExit:  # skip()
        failed = False
        raise
    finally:
        t.close(failed)
    return 1 if failed else 0
