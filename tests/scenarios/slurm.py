#!/usr/bin/env python3
"""Slurm (CTest slurm.*, label slurm; issue 14): jobs under a real Slurm, started by the case itself on
localhost (helpers/slurm_cluster.py: munged, slurmctld and slurmd with their config, key, sockets and
state in the case's temp dir, SLURM_CONF always set, stopped by PID at the end; the case skips, saying
why, where they cannot run). One CTest entry runs one case:

    python3 slurm.py CASE --lib libmpinotify.so --run-tool mpinotify-run --progs DIR --sink mpn_sink.py

The checks are on what the loopback sink received (count, fields) and on exit statuses compared with
the same job without mpinotify-run; never on timings.
"""
import os
import re
import subprocess
import sys
import time

import harness
from harness import Result, Sink, case, check, main, skip, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "helpers"))
import slurm_cluster  # noqa: E402

NP = 4
JOB_GUARD_S = 110  # a time-limited job ends within Slurm's 30 s check of limits + KillWait


def cluster(t):
    """This case's own cluster (stopped by PID when the case ends); skips where it cannot start."""
    c = slurm_cluster.Cluster(os.path.join(t.dir, "slurm"))
    if not os.path.exists(slurm_cluster.SLURM_LIBDIR + "/mpi_pmix.so"):
        skip("Debian's Slurm has no pmix plugin here (Open MPI 4.1 runs under srun --mpi=pmix only)")
    t.cleanups.append(lambda: c.stop(remove=False))
    try:
        c.start()
    except slurm_cluster.CannotStart as e:
        skip(f"cannot start a Slurm cluster here: {e}")
    except RuntimeError as e:
        check(False, f"the Slurm cluster did not start: {e}")
    return c


def srun(t, prog, args=(), opts=()):
    return ["srun", "--mpi=pmix", "-n", str(NP)] + list(opts) + [t.paths.prog(prog)] + list(args)


def tool_cmd(t, sink, launcher, tool_args=()):
    if not t.paths.run_tool or not os.path.exists(t.paths.run_tool):
        skip("mpinotify-run was not built")
    return [t.paths.run_tool, "--url", sink.url("/hook")] + list(tool_args) + ["--"] + list(launcher)


def hook(sink):
    return [p["body"] for p in sink.posts() if p["path"] == "/hook"]


def kinds(bodies):
    return [(b.get("event"), b.get("status")) for b in bodies]


def one(items, what):
    check(len(items) == 1, f"expected exactly one {what}, got {len(items)}")
    return items[0]


def check_slurm_job(job, step=True):
    """A Slurm job's fields in a message's "job": its id and name, and the step when srun made one."""
    check(isinstance(job, dict), f"job {job!r}")
    check(isinstance(job.get("slurm_job_id"), str) and job["slurm_job_id"].isdigit(), f"slurm_job_id in {job!r}")
    check(isinstance(job.get("slurm_job_name"), str) and job["slurm_job_name"], f"slurm_job_name in {job!r}")
    check("slurm_step" in job and (not step or isinstance(job["slurm_step"], str)), f"slurm_step in {job!r}")


def against_baseline(t, c, launcher, status, tool_args=()):
    """srun alone (its exit status is the test's premise), then under mpinotify-run: the same status."""
    base = t.run(launcher, "baseline (srun alone)", c.env())
    check(base.rc == status, f"baseline exit status {base.rc}, expected {status}: test premise")
    sink = Sink(t)
    r = t.run(tool_cmd(t, sink, launcher, tool_args), "mpinotify-run", c.env())
    check(r.rc == base.rc, f"mpinotify-run exited {r.rc}, srun alone {base.rc}")
    return sink, r


class Background:
    """A job started without waiting (harness' run waits), shown like the others when a check fails."""

    def __init__(self, t, cmd, label, env):
        self.env, self.start = env, time.monotonic()
        self.p = subprocess.Popen(cmd, env=t.env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.cmd, self.label = cmd, label
        t.cleanups.append(self.kill)

    def wait(self):
        try:
            out, err = self.p.communicate(timeout=harness.HANG_GUARD_S)
            hung = False
        except subprocess.TimeoutExpired:
            harness._kill_tree(self.p.pid)
            out, err = self.p.communicate()
            hung = True
        r = Result(self.label, self.cmd, self.env, self.p.returncode, out.decode(errors="replace"),
                   err.decode(errors="replace"), time.monotonic() - self.start)
        r.hung = hung
        harness._shown.append(r)
        check(not hung, f"job [{self.label}] still ran after the hang guard (killed)")
        return r

    def kill(self):
        if self.p.poll() is None:
            harness._kill_tree(self.p.pid)
            self.p.wait()


def job_ids(c, name):
    p = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], env=dict(os.environ, **c.env()),
                       capture_output=True, text=True, timeout=30)
    return p.stdout.split()


def job_state(c, job_id):
    p = subprocess.run(["scontrol", "show", "job", "-o", job_id], env=dict(os.environ, **c.env()),
                       capture_output=True, text=True, timeout=30)
    for word in p.stdout.split():
        if word.startswith("JobState="):
            return word.split("=", 1)[1]
    return None


@case
def crash(t):
    # A rank segfaults under srun --mpi=pmix: one message, the rank's report with the job's end merged in;
    # the rank's own host, the Slurm job's id, name (srun -J outside an allocation) and step in it.
    c = cluster(t)
    sink, r = against_baseline(t, c, srun(t, "mpi_crash", ["segv=2"], opts=["-J", "trainjob"]), 139)
    b = one(hook(sink), "message")
    check(b.get("event") == "crash" and b.get("reported_by") == "rank", f"got {kinds([b])} by {b.get('reported_by')}")
    check(b.get("ranks") == [2] and b.get("signal") == "SIGSEGV" and b.get("election") == "ok",
          f"ranks {b.get('ranks')}, signal {b.get('signal')}, election {b.get('election')}")
    procs = b.get("processes") or []
    check([p.get("hostname") for p in procs] == [c.host], f"processes {procs!r}: not rank 2 on {c.host}")
    check_slurm_job(b.get("job"))
    check((b.get("job") or {}).get("status") == "failed" and b["job"].get("exit_status") == 139,
          f"job {b.get('job')!r}: not failed with 139")
    check(b["job"].get("name") == b["job"]["slurm_job_name"] == "trainjob",
          f"job name {b['job'].get('name')!r}, Slurm's {b['job']['slurm_job_name']!r}: not srun -J trainjob's")


@case
def sigkill(t):
    # A task killed by SIGKILL cannot report: srun says "task 1: Killed", and mpinotify-run's crash
    # message names rank 1 (the tasks srun reports killed in the teardown after it are victims).
    c = cluster(t)
    sink, r = against_baseline(t, c, srun(t, "mpi_events", ["kill=1"]), 137)
    check("task 1: Killed" in r.err, "srun did not say task 1: Killed: test premise")
    b = one(hook(sink), "message")
    check(b.get("event") == "crash" and b.get("reported_by") == "launcher", f"got {kinds([b])} by {b.get('reported_by')}")
    check(b.get("ranks") == [1] and b.get("signal") == "SIGKILL", f"ranks {b.get('ranks')}, signal {b.get('signal')}")
    p = one(b.get("processes") or [], "process")
    check(p.get("hostname") == c.host and isinstance(p.get("pid"), int) and p["pid"] > 0, f"process {p!r}")
    check_slurm_job(b.get("job"))
    check(b["job"].get("victims") == NP - 1, f"job {b['job']!r}: {NP - 1} victims")


@case
def sigkill_two(t):
    # Two tasks killed at once (two OOM kills): srun names both ("tasks 1-2: Killed", or a line
    # each); one crash message names both ranks.
    c = cluster(t)
    sink, r = against_baseline(t, c, srun(t, "mpi_events", ["kill=1,2"]), 137)
    b = one(hook(sink), "message")
    check(b.get("event") == "crash" and b.get("reported_by") == "launcher", f"got {kinds([b])} by {b.get('reported_by')}")
    check(b.get("ranks") == [1, 2] and b.get("signal") == "SIGKILL",
          f"ranks {b.get('ranks')}, signal {b.get('signal')}: expected both killed tasks; srun said: "
          f"{[line for line in r.err.splitlines() if 'task' in line]}")
    check(b["job"].get("victims") == NP - 2, f"job {b['job']!r}: {NP - 2} victims")


@case
def export_none(t):
    # srun --export=NONE keeps srun's environment from the tasks; mpinotify-run lists its variables by
    # name, so every task is armed and a crash is reported as with the default export.
    c = cluster(t)
    # In the sanitizer build the tasks need ASAN_OPTIONS (ASan's own SIGSEGV handler off): a list of names
    # limits the export as NONE does (Slurm's variables and those named), and takes the same rewrite.
    export = "--export=ASAN_OPTIONS" if "libasan" in open(t.paths.lib, "rb").read().decode("latin-1") else "--export=NONE"
    launcher = srun(t, "mpi_crash", ["segv=1"], opts=[export])
    sink, r = against_baseline(t, c, launcher, 139, tool_args=["--job-events", "all"])
    bodies = hook(sink)
    check(kinds(bodies) == [("job", "started"), ("crash", None)], f"expected started then the crash, got {kinds(bodies)}")
    started, b = bodies
    check(started.get("ranks_armed") == NP, f"ranks_armed {started.get('ranks_armed')!r}, expected {NP}")
    check(b.get("ranks") == [1] and b.get("reported_by") == "rank", f"crash ranks {b.get('ranks')} by {b.get('reported_by')}")
    check_slurm_job(b.get("job"))
    # sbatch --export=NONE gives srun SLURM_EXPORT_ENV=NONE: the same
    sink2 = Sink(t, name="sink_env")
    r2 = t.run(tool_cmd(t, sink2, srun(t, "mpi_crash", ["segv=1"]), ["--job-events", "all"]),
               "SLURM_EXPORT_ENV", dict(c.env(), SLURM_EXPORT_ENV=export.split("=", 1)[1]))
    check(r2.rc == r.rc, f"with SLURM_EXPORT_ENV=NONE mpinotify-run exited {r2.rc}, expected {r.rc}")
    started2 = [b for b in hook(sink2) if b.get("status") == "started"]
    check(len(started2) == 1 and started2[0].get("ranks_armed") == NP,
          f"SLURM_EXPORT_ENV=NONE: started {[(s.get('ranks_armed'), s.get('title')) for s in started2]}")


def wait_started(t, sink, job):
    """Every rank armed (the "started" message of --job-events all arrived) before Slurm ends the job."""
    check(wait_for(lambda: any(b.get("status") == "started" for b in hook(sink)) or job.p.poll() is not None,
                   tries=600), "no started message within 60 s")
    check(job.p.poll() is None, "the job ended before all its ranks armed")


@case
def time_limit(t):
    # An sbatch job reaches its time limit: Slurm sends SIGTERM to the batch step (mpinotify-run) and
    # the tasks, and says "*** JOB N ON host CANCELLED AT ... DUE TO TIME LIMIT ***". One "failed"
    # message says it plainly; no crash message for the tasks the teardown ended.
    c = cluster(t)
    sink = Sink(t)
    script = os.path.join(t.dir, "job.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexec " + " ".join(tool_cmd(t, sink, srun(t, "mpi_events", ["sleep=600000"]),
                                                         ["--job-events", "all"])) + "\n")
    os.chmod(script, 0o755)
    out = os.path.join(t.dir, "job.out")
    sub = t.run(["sbatch", "--parsable", "-J", "train", "-t", "1", "-n", str(NP), "-o", out, script], "sbatch", c.env())
    check(sub.rc == 0 and sub.out.strip().isdigit(), f"sbatch failed: {sub.err}")
    job_id = sub.out.strip()
    check(wait_for(lambda: any(b.get("status") == "started" for b in hook(sink)), tries=600),
          "no started message within 60 s")
    # The smallest time limit is a minute: the job's end is moved to now instead (Slurm checks limits every 30 s).
    end = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() + 1))
    upd = t.run(["scontrol", "update", f"JobId={job_id}", f"EndTime={end}"], "scontrol update", c.env())
    check(upd.rc == 0, f"scontrol update EndTime failed: {upd.err}")
    check(wait_for(lambda: job_state(c, job_id) not in ("RUNNING", "COMPLETING", None), tries=JOB_GUARD_S * 10),
          f"job {job_id} still {job_state(c, job_id)} after {JOB_GUARD_S} s")
    state = job_state(c, job_id)
    check(state == "TIMEOUT", f"job state {state}, expected TIMEOUT: test premise")
    check(wait_for(lambda: len(hook(sink)) >= 2, tries=100), f"got {kinds(hook(sink))}")
    bodies = hook(sink)
    with open(out, errors="replace") as f:
        harness._shown.append(Result("the batch job's output", ["sbatch", script], {}, None, "", f.read()))
    check(kinds(bodies) == [("job", "started"), ("job", "failed")], f"expected started then failed, got {kinds(bodies)}")
    b = bodies[1]
    rc = b.get("root_cause") or {}
    check(rc.get("event") == "time_limit" and rc.get("slurm_job_id") == job_id, f"root_cause {rc!r}")
    # the library's forms: signal names as messages write them, times with milliseconds
    check(rc.get("signal_received") == "SIGTERM" and
          re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", rc.get("timestamp") or ""), f"root_cause {rc!r}")
    check(f"Job {job_id} (train) reached its time limit after 1m00s" in (b.get("title") or ""), f"title {b.get('title')!r}")
    check_slurm_job(b.get("job"), step=False)
    check(b["job"]["slurm_job_id"] == job_id and b["job"].get("name") == "train", f"job {b['job']!r}")
    check(b.get("ranks") == [] and b.get("victims") == NP, f"ranks {b.get('ranks')}, victims {b.get('victims')}")


@case
def scancel(t):
    # scancel of a running job: the same status as srun alone, and one "failed" message saying it was
    # cancelled (no crash message for the tasks Slurm ended); the job's id comes from the tasks.
    c = cluster(t)
    launcher = srun(t, "mpi_events", ["sleep=600000"])
    statuses = []
    sink = None
    for label in ("baseline (srun alone)", "mpinotify-run"):
        if label == "mpinotify-run":
            sink = Sink(t)
        cmd = launcher if sink is None else tool_cmd(t, sink, launcher, ["--job-events", "all"])
        job = Background(t, cmd, label, c.env())
        if sink:
            wait_started(t, sink, job)
        else:
            check(wait_for(lambda: job_ids(c, "mpi_events"), tries=300), "the job is not in squeue")
            time.sleep(1)  # the tasks started (not a timing check: only the premise, a running step)
        ids = job_ids(c, "mpi_events")
        check(len(ids) == 1, f"squeue -n mpi_events: {ids}")
        subprocess.run(["scancel", ids[0]], env=dict(os.environ, **c.env()), timeout=30)
        statuses.append((job.wait().rc, ids[0]))
    (base, _), (rc, job_id) = statuses
    check(base != 0, f"srun alone exited {base} after scancel: test premise")
    check(rc == base, f"mpinotify-run exited {rc}, srun alone {base}")
    bodies = hook(sink)
    check(kinds(bodies) == [("job", "started"), ("job", "failed")], f"expected started then failed, got {kinds(bodies)}")
    b = bodies[1]
    rcause = b.get("root_cause") or {}
    check(rcause.get("event") == "cancelled", f"root_cause {rcause!r}")
    check(f"Job {job_id} (mpi_events) was cancelled" in (b.get("title") or ""), f"title {b.get('title')!r}")
    check_slurm_job(b.get("job"))
    check(b["job"]["slurm_job_id"] == job_id and b["job"].get("name") == b["job"]["slurm_job_name"],
          f"job {b['job']!r}: not job {job_id}, or not Slurm's name")


if __name__ == "__main__":
    sys.exit(main())
