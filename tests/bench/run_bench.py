#!/usr/bin/env python3
"""The benchmark: what libmpinotify costs a healthy MPI job, and how fast and
how exactly it reports a failing one.

Six tables, every figure from --reps repetitions (median, min, max), each
baseline measured side by side in the same run:

  1. healthy job: bench_job's allreduce loop (8 bytes and 1 MiB) and compute
     loop at each --nps, with and without libmpinotify preloaded, alternating
     the two (ABBA) so drift in the machine's speed hits both; the ratio of
     the medians is the cost.
  2. start, stop and memory: MPI_Init and MPI_Finalize times and resident
     memory per rank, from the same runs.
  3. failures: bench_fault (every odd rank segfaults at the same line) at each
     --fault-nps: the time from the fault to the loopback server's receipt of
     the report, next to the time mpirun takes to print its death notice
     (without the library, and with it), and how many messages arrived for
     the one failure (must be 1, listing every faulting rank).
  4. the library's own stages, from its MPINOTIFY_DEBUG "timing:" lines in
     those runs: capture (handler to agent), unwinding, hashing, one
     election (its coalescing window included) and its allgather, delivery.
  5. Python ranks: bench_py.py (mpi4py, bench_job's 8-byte allreduce loop)
     at each --nps, baseline vs preloaded as in 1.
  6. Python start-up: what `import mpinotify` adds to `python3 -c pass`, what
     the preloaded library (its boot sitecustomize and hooks) adds to a
     Python rank's start under mpirun, and mpi4py's MPI_Init, MPI_Finalize
     and memory from the runs of 5. Skipped, saying why, when --python has no
     mpi4py or numpy.

Timings are never asserted: the exit status only says whether every run
worked (0) or something failed (1), a message count other than 1 included.
See README.md beside this file.
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scenarios"))
from harness import _kill_tree as kill_tree   # noqa: E402  (the tests' one way to end a job for good)
MIB = 1 << 20

# (application's thread level, configuration name, extra environment for the preloaded run)
SINGLE = ("single", "preload", {})
THREAD_CONFIGS = [SINGLE, ("multiple", "preload", {}),
                  ("single", "preload+keep", {"MPINOTIFY_MPI_THREAD": "keep"})]
# (name, bench_job workload, bytes, configurations): the thread-level variants
# matter where MPI's per-call cost does, in the latency-bound loop.
RANK_OUTPUT_OFF = ("single", "rank_output vs =0", {}, {"MPINOTIFY_RANK_OUTPUT": "0"})
WORKLOADS = [("allreduce 8 B", "allreduce", 8, THREAD_CONFIGS + [RANK_OUTPUT_OFF]),
             ("allreduce 1 MiB", "allreduce", MIB, [SINGLE]),
             ("compute", "compute", 0, [SINGLE]),
             # a rank printing a lot: what the copier of its output costs (rank_output), against no
             # library and against the library with MPINOTIFY_RANK_OUTPUT=0 (the base side preloaded)
             ("print 80 B lines", "print", 80, [SINGLE, RANK_OUTPUT_OFF])]
CALIBRATION_ITERS = {"allreduce": 20000, "compute": 20_000_000}
PRINT_LINES = 100_000   # per rank, not calibrated: "a rank that prints 100k lines"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"),
                   help="the CMake build tree (default: <repo>/build)")
    p.add_argument("--bench-exe", help="bench_job (default: BUILD/tests/bench/bench_job)")
    p.add_argument("--fault-exe", help="bench_fault (default: BUILD/tests/bench/bench_fault)")
    p.add_argument("--lib", help="libmpinotify.so to preload (default: BUILD/lib/libmpinotify.so)")
    p.add_argument("--sink", default=os.path.join(HERE, "..", "sink", "mpn_sink.py"),
                   help="the loopback webhook server (default: tests/sink/mpn_sink.py)")
    p.add_argument("--mpirun", default="mpirun", help="the launcher (default: mpirun from PATH)")
    p.add_argument("--reps", type=int, help="repetitions per configuration (default 20; 3 with --quick)")
    p.add_argument("--nps", default="2,4,8", help="rank counts of the healthy job (default 2,4,8)")
    p.add_argument("--fault-nps", default="2,4,8,16,32",
                   help="rank counts of the failing job (default 2,4,8,16,32)")
    p.add_argument("--only", choices=["healthy", "faults", "python", "print"],
                   help="run one part of the benchmark (print: the print rows of the healthy part)")
    p.add_argument("--python", default="/usr/bin/python3",
                   help="the interpreter of the Python ranks, with mpi4py and numpy (default /usr/bin/python3)")
    p.add_argument("--startup-reps", type=int,
                   help="repetitions of each Python start-up figure (default 30; 5 with --quick)")
    p.add_argument("--target", type=float, help="seconds of a calibrated baseline loop (default 0.4; 0.05 with --quick)")
    p.add_argument("--timeout", type=float, default=120.0, help="hard limit per mpirun, seconds (default 120)")
    p.add_argument("--quick", action="store_true", help="few repetitions and short loops: a smoke check")
    p.add_argument("--markdown", metavar="FILE", help="also write the tables as Markdown to FILE")
    a = p.parse_args(argv)
    a.reps = a.reps if a.reps is not None else (3 if a.quick else 20)
    a.startup_reps = a.startup_reps if a.startup_reps is not None else (5 if a.quick else 30)
    a.target = a.target if a.target is not None else (0.05 if a.quick else 0.4)
    a.bench_exe = a.bench_exe or os.path.join(a.build, "tests", "bench", "bench_job")
    a.fault_exe = a.fault_exe or os.path.join(a.build, "tests", "bench", "bench_fault")
    a.lib = os.path.abspath(a.lib or os.path.join(a.build, "lib", "libmpinotify.so"))
    try:
        a.nps = [int(x) for x in a.nps.split(",") if x.strip()]
        a.fault_nps = [int(x) for x in a.fault_nps.split(",") if x.strip()]
    except ValueError:
        p.error("--nps and --fault-nps take comma-separated integers, e.g. 2,4,8")
    if a.reps < 1 or a.startup_reps < 1 or min(a.nps + a.fault_nps, default=0) < 1:
        p.error("--reps, --startup-reps and every rank count must be at least 1")
    if a.fault_nps and min(a.fault_nps) < 2:
        p.error("--fault-nps: a failing job needs at least 2 ranks (odd ranks fault)")
    needed = [(a.lib, "--lib")]   # what the parts to run need
    if a.only in (None, "healthy", "print"):
        needed.append((a.bench_exe, "--bench-exe"))
    if a.only in (None, "faults"):
        needed += [(a.fault_exe, "--fault-exe"), (a.sink, "--sink")]
    for path, what in needed:
        if not os.path.exists(path):
            p.error(f"{what}: {path} does not exist (build first, or pass --build)")
    if shutil.which(a.mpirun) is None:
        p.error(f"--mpirun: {a.mpirun} not found")
    return a


# ---- the machine ----------------------------------------------------------

def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mpi_version(mpirun):
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    # mpirun says "(Open MPI) 4.1.4", mpiexec and orterun "(OpenRTE) 4.1.4".
    m = re.search(r"\((?:Open MPI|OpenRTE)\)\s*(\S+)", out)
    return f"Open MPI {m.group(1)}" if m else (out.splitlines() or ["unknown"])[0]


def load_average():
    """Other work on the machine distorts every timing: the tables say how busy it was."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_lines(a):
    return [
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"nproc: {cores()}",
        f"cpu: {cpu_model()}",
        f"memory: {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        f"kernel: {platform.system()} {platform.release()}",
        f"mpi: {mpi_version(a.mpirun)}",
        f"library: {a.lib}",
        f"repetitions: {a.reps} per configuration, baseline and preloaded alternating",
        f"load average at start: {load_average()}",
    ]


# ---- running one mpirun ------------------------------------------------------

class RunError(Exception):
    pass


def base_env(np):
    """The environment of every run: no notifier unless a run adds it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPINOTIFY_") and k != "LD_PRELOAD"}
    if os.geteuid() == 0:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    if np > cores():
        env["OMPI_MCA_mpi_yield_when_idle"] = "1"   # blocked ranks must not eat the cores
    return env


def launch(a, np, argv, preload_env, common_env=None):
    """mpirun over argv; preload_env None is the baseline. common_env: changes to the
    environment of both sides (a value None removes the variable). Returns (cmd, env)."""
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np)]
    env = base_env(np)
    for name, value in (common_env or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if preload_env is not None:
        # -x, as mpinotify-run does: the ranks get the library, mpirun itself does not.
        cmd += ["-x", f"LD_PRELOAD={a.lib}"]
        for name in preload_env:
            cmd += ["-x", name]
        env.update(preload_env)
    return cmd + argv, env


def stamped_lines(stream, into):
    """Reads a pipe line by line, noting when each line arrived (time.time())."""
    for line in iter(stream.readline, ""):
        into.append((time.time(), line))
    stream.close()


def run(a, np, argv, preload_env, expect_status, common_env=None):
    """One mpirun with timestamped output. Returns (stdout lines, stderr lines, wall s)."""
    cmd, env = launch(a, np, argv, preload_env, common_env)
    out, err = [], []
    t0 = time.monotonic()
    # Its own session, so a timeout kills every rank, not only mpirun.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    readers = [threading.Thread(target=stamped_lines, args=(s, l), daemon=True)
               for s, l in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    try:
        status = proc.wait(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)   # ranks may have left mpirun's session: they must not skew later runs
        proc.wait()
        raise RunError(f"timed out after {a.timeout:.0f} s: {' '.join(cmd)}")
    finally:
        for r in readers:
            r.join(10)
    wall = time.monotonic() - t0
    if status != expect_status:
        text = "".join(l for _, l in out + err)
        sys.stderr.write(f"\n--- failed run: {' '.join(cmd)}\n{text}--- end of failed run\n")
        tail = " | ".join(text.strip().splitlines()[-3:])
        raise RunError(f"exit status {status} (expected {expect_status}): {' '.join(cmd)}: {tail}")
    return out, err, wall


def field(lines, name, conv=float):
    for _, line in lines:
        m = re.search(rf"\b{name}=(\S+)", line)
        if m:
            return conv(m.group(1))
    raise RunError(f"bench output has no {name}=: {''.join(l for _, l in lines)[-300:]!r}")


# ---- 1 and 2: the healthy job ----------------------------------------------------

def healthy_once(a, np, level, workload, nbytes, iters, preload_env=None):
    out, _, wall = run(a, np, [a.bench_exe, level, workload, str(nbytes), str(iters)], preload_env, 0)
    return {"elapsed": field(out, "elapsed"), "provided": field(out, "provided", str),
            "init": field(out, "init"), "finalize": field(out, "finalize"),
            "rss": field(out, "rss_mean_kib") / 1024.0, "wall": wall}


def calibrate(a, np, workload, nbytes):
    """Iterations that make the baseline loop last about --target seconds."""
    n = CALIBRATION_ITERS[workload] // (1 if nbytes <= 4096 else 100)
    elapsed = healthy_once(a, np, "single", workload, nbytes, n)["elapsed"]
    return max(10, min(int(n * a.target / max(elapsed, 1e-6)), 2_000_000_000))


def measure(a, np, iters, workload, nbytes, level, extra_env, log, base_env=None):
    """reps pairs of runs, in ABBA order so neither side always goes first. base_env: the
    base side is preloaded too, with these variables (None: no library)."""
    base, pre = [], []
    for rep in range(a.reps):
        order = [(base, base_env), (pre, extra_env)]
        if rep % 2:
            order.reverse()
        for samples, env in order:
            samples.append(healthy_once(a, np, level, workload, nbytes, iters, env))
        log(".")
    return base, pre


def spread(values, scale=1.0, digits=4):
    """'median (min-max)' of a list."""
    v = [x * scale for x in values]
    return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def ratio(base, pre, key):
    bm = statistics.median(s[key] for s in base)
    return statistics.median(s[key] for s in pre) / bm if bm > 0 else float("nan")


def healthy_row(name, np, iters, level, config, base, pre):
    provided = lambda ss: "/".join(sorted({s["provided"] for s in ss}))
    return [name, str(np), str(iters), level, config, f"{provided(base)}->{provided(pre)}",
            spread([s["elapsed"] for s in base]), spread([s["elapsed"] for s in pre]),
            f"{ratio(base, pre, 'elapsed'):.3f}"]


def startup_row(np, base, pre):
    added = lambda key, scale: (statistics.median(s[key] for s in pre)
                                - statistics.median(s[key] for s in base)) * scale
    return [str(np),
            spread([s["init"] for s in base], 1000, 1), spread([s["init"] for s in pre], 1000, 1),
            f"{added('init', 1000):+.1f}",
            spread([s["finalize"] for s in base], 1000, 1), spread([s["finalize"] for s in pre], 1000, 1),
            f"{added('finalize', 1000):+.1f}",
            spread([s["rss"] for s in base], 1, 1), spread([s["rss"] for s in pre], 1, 1),
            f"{added('rss', 1):+.1f}"]


HEALTHY_HEADER = ["workload", "np", "iters", "app level", "configuration", "provided (base->pre)",
                  "base s: median (min-max)", "preloaded s: median (min-max)", "ratio"]
STARTUP_HEADER = ["np", "MPI_Init base ms", "MPI_Init preloaded ms", "added ms",
                  "MPI_Finalize base ms", "MPI_Finalize preloaded ms", "added ms",
                  "RSS per rank base MiB", "RSS preloaded MiB", "added MiB"]


def healthy(a, log, failures):
    rows, startup = [], []
    for name, workload, nbytes, configs in WORKLOADS:
        if a.only == "print" and RANK_OUTPUT_OFF not in configs:
            continue
        for np in a.nps:
            try:
                iters = (PRINT_LINES // (10 if a.quick else 1) if workload == "print"
                         else calibrate(a, np, workload, nbytes))
            except RunError as e:
                failures.append(f"{name} np={np} calibration: {e}")
                continue
            for level, config, extra_env, *base_env in configs:
                if a.only == "print" and workload != "print" and not base_env:
                    continue
                log(f"{name} np={np} iters={iters} {level} {config} ")
                try:
                    base, pre = measure(a, np, iters, workload, nbytes, level, extra_env, log, *base_env)
                    rows.append(healthy_row(name, np, iters, level, config, base, pre))
                    if (level, config) == SINGLE[:2] and workload == "allreduce" and nbytes == 8:
                        startup.append(startup_row(np, base, pre))
                except RunError as e:
                    failures.append(f"{name} np={np} {level} {config}: {e}")
                log("\n")
    return rows, startup


# ---- 3 and 4: the failing job ------------------------------------------------------

def raise_priority():
    """The loopback server stands for a service on another machine: with more ranks than
    cores, a starved Python server would answer seconds late (seen: connected in 0.1 ms,
    first byte after 3 s) and the figure would be its, not the library's. Root only."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    except OSError:
        pass


class Sink:
    """tests/sink/mpn_sink.py on a free loopback port; one URL path per run."""

    def __init__(self, a, workdir):
        self.out = os.path.join(workdir, "sink.jsonl")
        port_file = os.path.join(workdir, "sink.port")
        self.proc = subprocess.Popen([sys.executable, a.sink, "--port-file", port_file, "--out", self.out],
                                     stdin=subprocess.DEVNULL, preexec_fn=raise_priority)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RunError("the loopback webhook server did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            self.port = int(f.read())

    def url(self, tag):
        return f"http://127.0.0.1:{self.port}/bench/{tag}"

    def posts(self, tag):
        with open(self.out, encoding="utf-8") as f:
            entries = [json.loads(line) for line in f if line.strip()]
        return [e for e in entries if e.get("path") == f"/bench/{tag}" and e.get("method") == "POST"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


DEATH_NOTICE = re.compile(r"noticed that process rank \d+ .*exited on signal")
TIMING = re.compile(r"timing: capture (\S+) ms, unwind (\S+) ms, signature (\S+) ms, election (\S+) ms "
                    r"\(allgather (\S+) ms, window \d+ ms\), delivery (\S+) ms")
STAGES = ["capture", "unwind", "signature", "election", "allgather", "delivery"]


def fault_times(out):
    times = [int(m.group(1)) / 1e9 for _, line in out for m in [re.search(r"fault_at=(\d+)", line)] if m]
    if not times:
        raise RunError("bench_fault printed no fault_at= line")
    return min(times)


def death_notice(err, fault):
    """Seconds from the first fault until mpirun printed its death notice (None: never printed)."""
    return next((t - fault for t, line in err if DEATH_NOTICE.search(line)), None)


def stage_times(err):
    """The library's timing lines: {stage: [ms, ...]}; -1 marks a stage a rank did not run."""
    found = {s: [] for s in STAGES}
    for _, line in err:
        m = TIMING.search(line)
        for stage, value in zip(STAGES, m.groups() if m else ()):
            if float(value) >= 0:
                found[stage].append(float(value))
    return found


def faulty_once(a, np, sink, tag, spool):
    """One failing job with the library."""
    env = {"MPINOTIFY_URLS": sink.url(tag), "MPINOTIFY_DEBUG": "1", "MPINOTIFY_SPOOL": spool}
    out, err, wall = run(a, np, [a.fault_exe], env, 139)
    fault = fault_times(out)
    posts = sink.posts(tag)
    odd = list(range(1, np, 2))
    ranks_ok = len(posts) == 1 and isinstance(posts[0].get("body"), dict) and posts[0]["body"].get("ranks") == odd
    return {"latency": posts[0]["time"] - fault if posts else None, "messages": len(posts), "ranks_ok": ranks_ok,
            "notice": death_notice(err, fault), "stages": stage_times(err), "wall": wall}


def baseline_once(a, np):
    out, err, wall = run(a, np, [a.fault_exe], None, 139)
    return {"notice": death_notice(err, fault_times(out)), "wall": wall}


def measure_faults(a, np, sink, spool, log):
    pre, base = [], []
    for rep in range(a.reps):
        order = [lambda: base.append(baseline_once(a, np)),
                 lambda: pre.append(faulty_once(a, np, sink, f"{np}-{rep}", spool))]
        for step in (order if rep % 2 == 0 else order[::-1]):
            step()
        log(".")
    return pre, base


def ms_spread(values):
    v = [x for x in values if x is not None]
    return spread(v, 1000, 0) if v else "none"


def counts(values):
    """'1 (20 of 20)', or every count seen with how often."""
    seen = {c: values.count(c) for c in sorted(set(values))}
    return ", ".join(f"{c} ({n} of {len(values)})" for c, n in seen.items())


def fault_row(np, pre, base):
    return [str(np), str(len(range(1, np, 2))), counts([p["messages"] for p in pre]),
            f"{sum(p['ranks_ok'] for p in pre)} of {len(pre)}", ms_spread([p["latency"] for p in pre]),
            ms_spread([b["notice"] for b in base]), ms_spread([p["notice"] for p in pre]),
            f"{statistics.median(b['wall'] for b in base):.2f}", f"{statistics.median(p['wall'] for p in pre):.2f}"]


def stage_row(np, pre):
    row = [str(np)]
    for stage in STAGES:
        v = [x for p in pre for x in p["stages"][stage]]
        row.append(spread(v, 1, 3 if stage in ("capture", "unwind", "signature") else 1) if v else "none")
    return row


FAULT_HEADER = ["np", "faulting ranks", "messages per failure (runs)", "runs listing every faulting rank",
                "fault to delivery ms", "death notice, no library ms", "death notice, preloaded ms",
                "job base s", "job preloaded s"]
STAGE_HEADER = ["np"] + [f"{s} ms" for s in STAGES]


def faults(a, log, failures):
    rows, stages = [], []
    with tempfile.TemporaryDirectory(prefix="mpn-bench-") as workdir:
        try:
            sink = Sink(a, workdir)
        except RunError as e:
            failures.append(str(e))
            return rows, stages
        try:
            for np in a.fault_nps:
                log(f"failing job np={np} ")
                try:
                    pre, base = measure_faults(a, np, sink, os.path.join(workdir, "spool"), log)
                    rows.append(fault_row(np, pre, base))
                    stages.append(stage_row(np, pre))
                    if any(p["messages"] != 1 or not p["ranks_ok"] for p in pre):
                        failures.append(f"failing job np={np}: not exactly one message listing every "
                                        f"faulting rank in every run ({counts([p['messages'] for p in pre])})")
                except RunError as e:
                    failures.append(f"failing job np={np}: {e}")
                log("\n")
        finally:
            sink.stop()
    return rows, stages


# ---- 5 and 6: Python ranks ---------------------------------------------------------

BENCH_PY = os.path.join(HERE, "bench_py.py")
PACKAGE_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "python"))   # holds mpinotify/


def python_skip_reason(a):
    """None when --python can run the Python part, else why not."""
    try:
        r = subprocess.run([a.python, "-c", "import mpi4py.rc, numpy"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{a.python} does not run ({e})"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["?"])[-1]
        return f"{a.python} has no mpi4py or numpy ({last}; install python3-mpi4py python3-numpy, or pass --python)"
    return None


def python_versions(a):
    code = "import sys, mpi4py, numpy; print(sys.version.split()[0], mpi4py.__version__, numpy.__version__)"
    out = subprocess.run([a.python, "-c", code], capture_output=True, text=True, timeout=60).stdout.split()
    return f"python ranks: {a.python} (Python {out[0]}, mpi4py {out[1]}, numpy {out[2]})" if len(out) == 3 else \
        f"python ranks: {a.python}"


def python_env(cache):
    """Both sides of every Python figure: byte code cached in a scratch folder, as an installed
    package has its .pyc (PYTHONDONTWRITEBYTECODE would recompile mpinotify at every start),
    without writing __pycache__ into the source tree."""
    return {"PYTHONDONTWRITEBYTECODE": None, "PYTHONPYCACHEPREFIX": cache}


def py_once(a, np, iters, preload, env):
    out, _, wall = run(a, np, [a.python, BENCH_PY, str(iters)], {} if preload else None, 0, env)
    return {"elapsed": field(out, "elapsed"), "provided": field(out, "provided", str),
            "init": field(out, "init"), "finalize": field(out, "finalize"),
            "rss": field(out, "rss_mean_kib") / 1024.0, "hooked": field(out, "hooked", str), "wall": wall}


def measure_py(a, np, iters, env, log):
    base, pre = [], []
    for rep in range(a.reps):
        order = [(base, False), (pre, True)]
        for samples, preload in (order if rep % 2 == 0 else order[::-1]):
            samples.append(py_once(a, np, iters, preload, env))
        log(".")
    return base, pre


def timed(argv, env, timeout):
    """Wall seconds of one process, which must exit 0."""
    t0 = time.monotonic()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RunError(f"exit status {r.returncode}: {' '.join(argv)}: {r.stderr.strip()[-300:]}")
    return wall


def abba(reps, fns, log):
    """reps timings of each callable, in ABBA order (A B C, C B A, ...); one untimed warm-up each."""
    for fn in fns:
        fn()
    samples = [[] for _ in fns]
    for rep in range(reps):
        order = list(zip(samples, fns))
        for into, fn in (order if rep % 2 == 0 else order[::-1]):
            into.append(fn())
        if rep % 5 == 4:
            log(".")
    return samples


def startup_pair(what, without, with_, scale=1000.0, digits=1, unit="ms"):
    added = (statistics.median(with_) - statistics.median(without)) * scale
    return [what, spread(without, scale, digits), spread(with_, scale, digits), f"{added:+.{digits}f} {unit}"]


def import_cost(a, cache, log):
    """(a) `python3 -c "import mpinotify"` against `-c pass`, the package first on PYTHONPATH, no MPI."""
    env = base_env(1)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(PYTHONPYCACHEPREFIX=cache, PYTHONPATH=PACKAGE_DIR)
    probe = subprocess.run([a.python, "-c", "import mpinotify; print(mpinotify.__file__)"], env=env,
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or not probe.stdout.strip().startswith(PACKAGE_DIR):
        raise RunError(f"`import mpinotify` with PYTHONPATH={PACKAGE_DIR} did not import this tree's package: "
                       f"{(probe.stdout + probe.stderr).strip()[-300:]}")
    plain, imported = abba(a.startup_reps, [lambda: timed([a.python, "-c", "pass"], env, a.timeout),
                                            lambda: timed([a.python, "-c", "import mpinotify"], env, a.timeout)], log)
    return [startup_pair("import mpinotify (python3 -c, no MPI), ms", plain, imported)]


HOOKED_PROBE = "import sys; print('hooked=' + ('yes' if 'mpinotify._hook' in sys.modules else 'no'))"


def rank_startup_cost(a, env, log):
    """(b) `mpirun -np 1 python3 -c pass` without / with the library preloaded (-x LD_PRELOAD)."""
    for preload, want in ((False, "no"), (True, "yes")):
        out, _, _ = run(a, 1, [a.python, "-c", HOOKED_PROBE], {} if preload else None, 0, env)
        if field(out, "hooked", str) != want:
            raise RunError(f"a Python rank {'with' if preload else 'without'} the library preloaded "
                           f"has hooked={field(out, 'hooked', str)} (expected {want})")
    once = lambda preload_env: run(a, 1, [a.python, "-c", "pass"], preload_env, 0, env)[2]
    base, pre = abba(a.startup_reps, [lambda: once(None), lambda: once({})], log)
    return [startup_pair("Python rank start to exit (mpirun -np 1 python3 -c pass), ms", base, pre)]


def rank_startup_direct(a, cache, log):
    """(b) again without mpirun, whose own start and shutdown can hide the library's cost: python3 -c pass
    in a rank's environment as the library tells it (OMPI_COMM_WORLD_RANK), without / with LD_PRELOAD,
    and with LD_PRELOAD and MPINOTIFY_PYTHON=0 (the library loaded, no boot sitecustomize)."""
    plain = base_env(1)
    plain.pop("PYTHONDONTWRITEBYTECODE", None)
    plain.update(PYTHONPYCACHEPREFIX=cache, OMPI_COMM_WORLD_RANK="0", OMPI_COMM_WORLD_SIZE="1")
    pre = dict(plain, LD_PRELOAD=a.lib)
    bare = dict(pre, MPINOTIFY_PYTHON="0")
    for env, want in ((plain, "no"), (pre, "yes"), (bare, "no")):
        r = subprocess.run([a.python, "-c", HOOKED_PROBE], env=env, capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or f"hooked={want}" not in r.stdout:
            raise RunError(f"python3 as rank 0 (LD_PRELOAD={env.get('LD_PRELOAD', '')}, MPINOTIFY_PYTHON="
                           f"{env.get('MPINOTIFY_PYTHON', '')}): expected hooked={want}: "
                           f"{(r.stdout + r.stderr).strip()[-300:]}")
    once = lambda env: timed([a.python, "-c", "pass"], env, a.timeout)
    t_plain, t_pre, t_bare = abba(a.startup_reps, [lambda: once(plain), lambda: once(pre), lambda: once(bare)], log)
    return [startup_pair("the same without mpirun (python3 -c pass, OMPI_COMM_WORLD_RANK=0), ms", t_plain, t_pre),
            startup_pair("the same, with: MPINOTIFY_PYTHON=0 (library loaded, no boot), ms", t_plain, t_bare)]


def py_startup_rows(np, base, pre):
    key = lambda ss, k: [s[k] for s in ss]
    return [startup_pair(f"from mpi4py import MPI (MPI_Init_thread), np {np}, ms",
                         key(base, "init"), key(pre, "init")),
            startup_pair(f"MPI.Finalize(), np {np}, ms", key(base, "finalize"), key(pre, "finalize")),
            startup_pair(f"RSS per rank, np {np}, MiB", key(base, "rss"), key(pre, "rss"),
                         scale=1.0, unit="MiB")]


def python_ranks(a, log, failures):
    rows, startup = [], []
    with tempfile.TemporaryDirectory(prefix="mpn-bench-pyc-") as cache:
        env = python_env(cache)
        log("python start-up ")
        for name, fn in (("import mpinotify", lambda: import_cost(a, cache, log)),
                         ("python rank start-up", lambda: rank_startup_cost(a, env, log)),
                         ("python rank start-up without mpirun", lambda: rank_startup_direct(a, cache, log))):
            try:
                startup += fn()
            except (RunError, subprocess.TimeoutExpired) as e:
                failures.append(f"{name}: {e}")
        log("\n")
        per_np = []
        for np in a.nps:
            try:
                n = CALIBRATION_ITERS["allreduce"]
                elapsed = py_once(a, np, n, False, env)["elapsed"]
                iters = max(10, min(int(n * a.target / max(elapsed, 1e-6)), 2_000_000_000))
                log(f"python ranks np={np} iters={iters} ")
                base, pre = measure_py(a, np, iters, env, log)
            except RunError as e:
                failures.append(f"python ranks np={np}: {e}")
                log("\n")
                continue
            log("\n")
            rows.append(healthy_row("mpi4py Allreduce 8 B", np, iters, "mpi4py default", "preload", base, pre))
            per_np += py_startup_rows(np, base, pre)
            unhooked = sum(s["hooked"] != "yes" for s in pre)
            hooked = sum(s["hooked"] != "no" for s in base)
            if unhooked or hooked:
                failures.append(f"python ranks np={np}: {unhooked} of {len(pre)} preloaded runs without mpinotify's "
                                f"hooks (boot sitecustomize), {hooked} of {len(base)} baseline runs with them")
    return rows, startup + per_np


# ---- output ----------------------------------------------------------------------

def text_table(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


TITLES = ["Healthy job: loop seconds (slowest rank), baseline vs preloaded",
          "Start, stop and memory (allreduce 8 B runs, app level single, default configuration)",
          "Failing job: every odd rank segfaults at the same line, the others wait in MPI_Barrier",
          "The library's stages in those runs (MPINOTIFY_DEBUG timing lines; every rank that ran the stage)",
          "Python ranks (mpi4py): Allreduce of one float64 (8 B) loop seconds (slowest rank), baseline vs preloaded",
          "Python start-up, stop and memory (with: preloaded; for import mpinotify, -c pass vs -c 'import mpinotify')"]
PY_STARTUP_HEADER = ["what", "without: median (min-max)", "with: median (min-max)", "added"]
HEADERS = [HEALTHY_HEADER, STARTUP_HEADER, FAULT_HEADER, STAGE_HEADER, HEALTHY_HEADER, PY_STARTUP_HEADER]


def main(argv):
    a = parse_args(argv)
    log = lambda s: (sys.stderr.write(s), sys.stderr.flush())
    machine = machine_lines(a)
    skipped = python_skip_reason(a) if a.only in (None, "python") else None
    if a.only in (None, "python") and not skipped:
        machine.append(python_versions(a))
    print("\n".join(machine), flush=True)
    failures, tables = [], [[], [], [], [], [], []]
    if a.only in (None, "healthy", "print"):
        tables[0], tables[1] = healthy(a, log, failures)
    if a.only in (None, "faults"):
        tables[2], tables[3] = faults(a, log, failures)
    if skipped:
        machine.append(f"Python ranks: skipped: {skipped}")
        print(machine[-1], flush=True)
    elif a.only in (None, "python"):
        tables[4], tables[5] = python_ranks(a, log, failures)
    machine.append(f"load average at end: {load_average()}")
    print(machine[-1])
    shown = [(t, h, r) for t, h, r in zip(TITLES, HEADERS, tables) if r]
    for title, header, rows in shown:
        print(f"\n{title}\n\n{text_table(header, rows)}")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(f"- {m}" for m in machine) + "\n")
            for title, header, rows in shown:
                f.write(f"\n{title}:\n\n{md_table(header, rows)}\n")
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    return 1 if failures or not (shown or skipped) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
