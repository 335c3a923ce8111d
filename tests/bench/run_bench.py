#!/usr/bin/env python3
"""Measures what preloading libmpinotify costs an MPI program.

Runs bench_allreduce (a loop of small MPI_Allreduce calls) under mpirun, with
and without libmpinotify preloaded, alternating the two so that drift in the
machine's speed hits both, and prints one table row per configuration:

    np, iterations, the thread level the application requests, the
    configuration, the thread level MPI provided (baseline -> preloaded),
    median/min/max seconds of the timed loop for baseline and preloaded,
    the ratio of the medians (preloaded / baseline), and the median
    wall-clock time of the whole mpirun (start-up and MPI_Finalize included).

Timings are never asserted: the exit status only says whether every run
worked (0) or some failed (1). See README.md beside this file.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# (application's thread level, configuration name, extra environment for the preloaded run)
CONFIGS = [
    ("single", "preload", {}),
    ("multiple", "preload", {}),
    ("single", "preload+keep", {"MPINOTIFY_MPI_THREAD": "keep"}),
]

CALIBRATION_ITERS = 20000


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(HERE, "..", "..", "build"),
                   help="the CMake build tree (default: <repo>/build)")
    p.add_argument("--bench-exe", help="bench_allreduce (default: BUILD/tests/bench/bench_allreduce)")
    p.add_argument("--lib", help="libmpinotify.so to preload (default: BUILD/lib/libmpinotify.so)")
    p.add_argument("--mpirun", default="mpirun", help="the launcher (default: mpirun from PATH)")
    p.add_argument("--reps", type=int, help="repetitions per configuration (default 20; 3 with --quick)")
    p.add_argument("--nps", default="2,4,8", help="comma-separated rank counts (default 2,4,8)")
    p.add_argument("--bytes", type=int, default=8, help="allreduce message size (default 8)")
    p.add_argument("--iters", type=int,
                   help="allreduce iterations per run (default: calibrated per np so that the "
                        "baseline loop takes --target seconds)")
    p.add_argument("--target", type=float, help="calibration target in seconds (default 0.5; 0.05 with --quick)")
    p.add_argument("--timeout", type=float, default=120.0, help="hard limit per mpirun, seconds (default 120)")
    p.add_argument("--quick", action="store_true", help="few repetitions and short loops: a smoke check")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE")
    a = p.parse_args(argv)
    a.reps = a.reps if a.reps is not None else (3 if a.quick else 20)
    a.target = a.target if a.target is not None else (0.05 if a.quick else 0.5)
    a.bench_exe = a.bench_exe or os.path.join(a.build, "tests", "bench", "bench_allreduce")
    a.lib = os.path.abspath(a.lib or os.path.join(a.build, "lib", "libmpinotify.so"))
    try:
        a.nps = [int(x) for x in a.nps.split(",") if x.strip()]
    except ValueError:
        p.error("--nps takes comma-separated integers, e.g. 2,4,8")
    if a.reps < 1 or not a.nps or min(a.nps) < 1:
        p.error("--reps and every --nps value must be at least 1")
    for path, what in ((a.bench_exe, "--bench-exe"), (a.lib, "--lib")):
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
    """Other work on the machine distorts every timing: the table says how busy it was."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_lines(a):
    return [
        f"nproc: {cores()}",
        f"cpu: {cpu_model()}",
        f"kernel: {platform.system()} {platform.release()}",
        f"mpi: {mpi_version(a.mpirun)}",
        f"library: {a.lib}",
        f"load average at start: {load_average()}",
        f"message: {a.bytes} bytes; repetitions: {a.reps} per configuration, baseline and preloaded alternating",
    ]


# ---- running ----------------------------------------------------------------

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


def command(a, np, level, iters, preload_env):
    cmd = [a.mpirun, "--oversubscribe", "-np", str(np)]
    if preload_env is not None:
        # -x, as mpinotify-run does: the ranks get the library, mpirun itself does not.
        cmd += ["-x", f"LD_PRELOAD={a.lib}"]
        for name in preload_env:
            cmd += ["-x", name]
    return cmd + [a.bench_exe, level, str(a.bytes), str(iters)]


def run_once(a, np, level, iters, preload_env=None):
    """One mpirun; returns (loop seconds, provided level, wall seconds)."""
    env = base_env(np)
    env.update(preload_env or {})
    cmd = command(a, np, level, iters, preload_env)
    t0 = time.monotonic()
    # Its own session, so a timeout kills every rank, not only mpirun.
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=a.timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RunError(f"timed out after {a.timeout:.0f} s: {' '.join(cmd)}")
    wall = time.monotonic() - t0
    m = re.search(r"elapsed=([0-9.eE+-]+) provided=(\w+)", out)
    if proc.returncode != 0 or not m:
        # The whole output now, where it can be read; the summary keeps the last lines.
        sys.stderr.write(f"\n--- failed run: {' '.join(cmd)}\n{out}{err}--- end of failed run\n")
        tail = " | ".join((err or out).strip().splitlines()[-3:])
        raise RunError(f"exit status {proc.returncode}: {' '.join(cmd)}: {tail}")
    return float(m.group(1)), m.group(2), wall


def calibrate(a, np):
    """Iterations that make the baseline loop last about --target seconds."""
    if a.iters:
        return a.iters
    elapsed, _, _ = run_once(a, np, "single", CALIBRATION_ITERS)
    iters = int(CALIBRATION_ITERS * a.target / max(elapsed, 1e-6))
    return max(1000, min(iters, 10_000_000))


def measure(a, np, iters, level, extra_env, log):
    """reps pairs of runs, in ABBA order so neither side always goes first."""
    base, pre = [], []
    for rep in range(a.reps):
        order = [(base, None), (pre, extra_env)]
        if rep % 2:
            order.reverse()
        for samples, env in order:
            samples.append(run_once(a, np, level, iters, env))
        log(".")
    return base, pre


# ---- the table ----------------------------------------------------------------

HEADER = ["np", "iters", "app level", "configuration", "provided (base->pre)",
          "base median s", "base min s", "base max s",
          "pre median s", "pre min s", "pre max s", "ratio", "job base s", "job pre s"]


def levels(samples):
    return "/".join(sorted({s[1] for s in samples}))


def row(np, iters, level, config, base, pre):
    bt, pt = [s[0] for s in base], [s[0] for s in pre]
    bm, pm = statistics.median(bt), statistics.median(pt)
    return [str(np), str(iters), level, config, f"{levels(base)}->{levels(pre)}",
            f"{bm:.4f}", f"{min(bt):.4f}", f"{max(bt):.4f}",
            f"{pm:.4f}", f"{min(pt):.4f}", f"{max(pt):.4f}",
            f"{pm / bm:.3f}" if bm > 0 else "n/a",
            f"{statistics.median(s[2] for s in base):.2f}",
            f"{statistics.median(s[2] for s in pre):.2f}"]


def text_table(rows):
    widths = [max(len(r[i]) for r in [HEADER] + rows) for i in range(len(HEADER))]
    fmt = lambda r: "  ".join(c.rjust(w) if c[:1].isdigit() else c.ljust(w) for c, w in zip(r, widths))
    return "\n".join([fmt(HEADER), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def markdown(machine, rows):
    lines = [f"- {m}" for m in machine] + [""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "|".join("---:" if i in (0, 1) or i >= 5 else "---" for i in range(len(HEADER))) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv):
    a = parse_args(argv)
    log = lambda s: (sys.stderr.write(s), sys.stderr.flush())
    machine = machine_lines(a)
    print("\n".join(machine), flush=True)
    rows, failures = [], []
    for np in a.nps:
        try:
            iters = calibrate(a, np)
        except RunError as e:
            failures.append(f"np={np} calibration: {e}")
            continue
        for level, config, extra_env in CONFIGS:
            log(f"np={np} iters={iters} {level} {config} ")
            try:
                base, pre = measure(a, np, iters, level, extra_env, log)
                rows.append(row(np, iters, level, config, base, pre))
            except RunError as e:
                failures.append(f"np={np} {level} {config}: {e}")
            log("\n")
    machine.append(f"load average at end: {load_average()}")
    print(machine[-1])
    print()
    print(text_table(rows) if rows else "no results")
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(markdown(machine, rows))
    for f in failures:
        print("FAILED: " + f, file=sys.stderr)
    return 1 if failures or not rows else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
