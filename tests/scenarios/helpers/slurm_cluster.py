#!/usr/bin/env python3
"""A private one-node Slurm cluster on localhost for the slurm.* scenarios (tests/scenarios/slurm.py).

    slurm_cluster.py start DIR    munged, slurmctld and slurmd, everything under DIR; exits 0 once the
                                  node is idle, or 77 (with "SKIP: why") where they cannot run here
    slurm_cluster.py stop DIR     stops them by the PIDs start wrote, and removes DIR

Nothing is written under /etc or /run: munged gets its own key, socket, pid, log and seed files;
slurm.conf lives in DIR and every Slurm command of the tests runs with SLURM_CONF pointing at it
(without it srun would look its controller up in DNS SRV records). The daemons listen on free
loopback ports, so two clusters (two cases under ctest -j) do not meet.

As a module: Cluster(DIR).start() / .stop() / .env() (the variables Slurm's commands need).
"""
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

SKIP = 77
SLURM_LIBDIR = "/usr/lib/x86_64-linux-gnu/slurm-wlm"
BINARIES = ("munged", "slurmctld", "slurmd", "srun", "sbatch", "scontrol", "scancel", "sinfo")
START_TRIES = 300  # 0.1 s each: the node is up in 1-3 s; 30 s means it will not come up
CPUS = 8  # declared (SlurmdParameters=config_overrides): more tasks than the machine's cores


class CannotStart(Exception):
    """This machine cannot run the cluster (not root, no binaries): a reason to skip, not a failure."""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mpi_default():
    """pmix when Debian's Slurm has the plugin (Open MPI 4.1 runs under srun --mpi=pmix only)."""
    return "pmix" if glob.glob(os.path.join(SLURM_LIBDIR, "mpi_pmix*.so")) else "none"


class Cluster:
    def __init__(self, d):
        self.dir = os.path.abspath(d)
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.socket = os.path.join(self.dir, "munge", "munge.socket")
        self.host = socket.gethostname().split(".")[0]

    def env(self):
        """What Slurm's commands (srun, sbatch, scontrol, scancel) need to find this cluster; the job's
        name left to Slurm (the harness names every job after its case)."""
        return {"SLURM_CONF": self.conf, "MPINOTIFY_JOB_NAME": ""}

    def pidfile(self, name):
        return os.path.join(self.dir, name + ".pid")

    def log(self, name):
        return os.path.join(self.dir, "log", name + ".log")

    # --- start ------------------------------------------------------------------

    def check_possible(self):
        if os.geteuid() != 0:
            raise CannotStart("slurmd must run as root (it starts every task as its user)")
        missing = [b for b in BINARIES if not shutil.which(b, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]
        if missing:
            raise CannotStart(f"no {', '.join(missing)} (apt-get install slurm-wlm munge)")

    def write_conf(self):
        for sub in ("munge", "state", "spool", "log"):
            os.makedirs(os.path.join(self.dir, sub), mode=0o700, exist_ok=True)
        with open(os.path.join(self.dir, "munge", "key"), "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(os.path.join(self.dir, "munge", "key"), 0o400)
        srun_base = 40000 + os.getpid() % 200 * 100  # srun's own listening ports, per cluster
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
        conf = f"""# a private test cluster (tests/scenarios/helpers/slurm_cluster.py)
ClusterName=mpntest
SlurmctldHost={self.host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SrunPortRange={srun_base}-{srun_base + 99}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={self.dir}/state
SlurmdSpoolDir={self.dir}/spool/slurmd-%n
SlurmctldPidFile={self.pidfile('slurmctld-own')}
SlurmdPidFile={self.pidfile('slurmd-own')}
SlurmctldLogFile={self.log('slurmctld')}
SlurmdLogFile={self.log('slurmd')}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault={mpi_default()}
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
ReturnToService=2
KillWait=5
OverTimeLimit=0
MinJobAge=600
MessageTimeout=10
InactiveLimit=0
SchedulerType=sched/builtin
NodeName={self.host} NodeAddr=127.0.0.1 CPUs={CPUS} RealMemory={max(mem // 2, 1)} State=UNKNOWN
PartitionName=test Nodes={self.host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        # PMIx's client directories in our own tree, not /tmp/spmix_appdir_UID_JOB.STEP: every test
        # cluster numbers its jobs from 1, and a step left by another cluster would hold that name.
        os.makedirs(os.path.join(self.dir, "pmix"), mode=0o700, exist_ok=True)
        with open(os.path.join(os.path.dirname(self.conf), "mpi.conf"), "w") as f:
            f.write(f"PMIxCliTmpDirBase={self.dir}/pmix\n")

    def spawn(self, name, cmd):
        out = open(self.log(name + "-stderr"), "ab")
        env = dict(os.environ, SLURM_CONF=self.conf)
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True)
        with open(self.pidfile(name), "w") as f:
            f.write(str(p.pid))
        return p

    def wait(self, what, ready, procs):
        for _ in range(START_TRIES):
            if ready():
                return
            for name, p in procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with status {p.returncode} while waiting for {what}:\n" + self.logs())
            time.sleep(0.1)
        raise RuntimeError(f"{what}: not after {START_TRIES / 10:.0f} s\n" + self.logs())

    def node_idle(self):
        p = subprocess.run(["sinfo", "-h", "-N", "-o", "%T"], env=dict(os.environ, SLURM_CONF=self.conf),
                           capture_output=True, text=True, timeout=20)
        return p.returncode == 0 and p.stdout.strip() == "idle"

    def start(self):
        self.check_possible()
        os.makedirs(self.dir, exist_ok=True)
        self.write_conf()
        munged = self.spawn("munged", [shutil.which("munged") or "/usr/sbin/munged", "-F", "-f",
                                       f"--socket={self.socket}", f"--key-file={self.dir}/munge/key",
                                       f"--pid-file={self.dir}/munge/munged.pid",
                                       f"--log-file={self.log('munged')}", f"--seed-file={self.dir}/munge/seed"])
        self.wait("munged's socket", lambda: os.path.exists(self.socket), [("munged", munged)])
        ctld = self.spawn("slurmctld", [shutil.which("slurmctld") or "/usr/sbin/slurmctld", "-D", "-i",
                                        "-f", self.conf])
        slurmd = self.spawn("slurmd", [shutil.which("slurmd") or "/usr/sbin/slurmd", "-D", "-f", self.conf])
        self.wait("the node idle in sinfo", self.node_idle, [("munged", munged), ("slurmctld", ctld), ("slurmd", slurmd)])

    def logs(self):
        out = []
        for path in sorted(glob.glob(os.path.join(self.dir, "log", "*.log"))):
            with open(path, errors="replace") as f:
                lines = f.read().splitlines()[-25:]
            out.append(f"--- {os.path.basename(path)} (last {len(lines)} lines)")
            out += ["  | " + line for line in lines]
        return "\n".join(out)

    # --- stop -------------------------------------------------------------------

    def stop(self, remove=True):
        """SIGTERM to each daemon we started (by the PID start wrote), SIGKILL if it stays."""
        for name in ("slurmd", "slurmctld", "munged"):
            try:
                with open(self.pidfile(name)) as f:
                    pid = int(f.read())
            except (OSError, ValueError):
                continue
            for sig, tries in ((signal.SIGTERM, 50), (signal.SIGKILL, 50)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                for _ in range(tries):
                    try:
                        if os.waitpid(pid, os.WNOHANG)[0] == pid:
                            break
                    except ChildProcessError:  # not our child (stop from another process): poll its existence
                        if not os.path.exists(f"/proc/{pid}") or _zombie(pid):
                            break
                    time.sleep(0.1)
                else:
                    continue
                break
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        print(__doc__)
        return 2
    c = Cluster(sys.argv[2])
    if sys.argv[1] == "stop":
        c.stop()
        return 0
    try:
        c.start()
    except CannotStart as e:
        print("SKIP:", e)
        return SKIP
    print(f"cluster up: SLURM_CONF={c.conf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
