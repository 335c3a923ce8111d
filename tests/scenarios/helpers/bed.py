"""A bed of hosts on one machine, for the multihost scenarios (tests/scenarios/multihost.py;
imported with tests/scenarios on the path, for harness).

Each host is a set of namespaces held by one process (`sleep`, killed with the test):
its own network (an address 10.77.0.N/24 on eth0, and its own loopback), its own host name
(UTS), its own mounts with its own /etc/hosts, and its own TMPDIR (Open MPI's session
directories); /tmp itself stays shared, since the build tree may live there. Host h0 is the launch node:
it holds the bridge the others plug into (10.77.0.1), and the test process itself enters it,
so that the sink, mpinotify-run and mpirun run there and the sink on 127.0.0.1 is reachable
from h0 only. Open MPI starts its daemons on the others through an rsh agent
(written into the bed's directory) that enters the host named by its first argument.

Nothing is written under /etc or /run; the bed's files live in a directory of /dev/shm,
removed at the end; the holders die with the test (PR_SET_PDEATHSIG), and their namespaces
and links with them. Only the bed's own addresses are ever used.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile

from harness import skip

NET = "10.77.0"
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWNET = 0x00020000, 0x04000000, 0x40000000


def _run(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def can_make_beds():
    """Why a bed cannot be made here, or None."""
    if os.geteuid() != 0:
        return "the multihost bed needs root (network, UTS and mount namespaces)"
    for tool in ("unshare", "nsenter", "setpriv", "ip"):
        if not shutil.which(tool):
            return f"the multihost bed needs {tool}"
    r = subprocess.run(["unshare", "--net", "--uts", "--mount", "ip", "link", "add", "b0", "type", "bridge"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return f"namespaces or bridges are not allowed here: {r.stderr.strip()}"
    return None


class Bed:
    def __init__(self, t, hosts=4, launch_name_known=True):
        why = can_make_beds()
        if why:
            skip(why)
        self.names = [f"h{i}" for i in range(hosts)]
        self.dir = tempfile.mkdtemp(prefix="mpn-bed-", dir="/dev/shm")
        self.pids = {}
        self.holders = []
        t.cleanups.append(self.close)
        for i, name in enumerate(self.names):
            self._hosts_file(i, launch_name_known)
            self.holders.append(self._holder(i, name))
            self.pids[name] = self.holders[-1].pid
        self._wait_ready()
        self._wire()
        self.rsh = self._rsh_agent()
        self._enter(self.pids["h0"])

    def address(self, name):
        return f"{NET}.{self.names.index(name) + 1}"

    def _hosts_file(self, i, launch_name_known):
        """Every host knows the others, and itself; the launch node's name only where told."""
        lines = ["127.0.0.1 localhost"]
        for k, name in enumerate(self.names):
            if k == 0 and i != 0 and not launch_name_known:
                continue
            lines.append(f"{NET}.{k + 1} {name}")
        os.makedirs(os.path.join(self.dir, f"h{i}", "tmp"), mode=0o1777)
        with open(os.path.join(self.dir, f"h{i}", "hosts"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _holder(self, i, name):
        own = os.path.join(self.dir, name)
        # /tmp stays shared: the build tree may be there (CI clones into /tmp); TMPDIR is the host's own
        script = (f"hostname {name} && ip link set lo up && mount --bind {own}/hosts /etc/hosts"
                  f" && touch {own}/ready && exec sleep 100000")
        return subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", "unshare", "--net", "--uts", "--mount",
                                 "--propagation", "private", "sh", "-c", script],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_ready(self):
        import time
        deadline = time.time() + 10
        while time.time() < deadline:
            if all(os.path.exists(os.path.join(self.dir, n, "ready")) for n in self.names):
                return
            if any(h.poll() is not None for h in self.holders):
                break
            time.sleep(0.05)
        raise RuntimeError("the bed's hosts did not start (namespaces, mounts)")

    def _in(self, name, *cmd):
        return _run(["nsenter", "-t", str(self.pids[name]), "-n", "--"] + list(cmd))

    def _wire(self):
        self._in("h0", "ip", "link", "add", "br0", "type", "bridge")
        self._in("h0", "ip", "addr", "add", f"{NET}.1/24", "dev", "br0")
        self._in("h0", "ip", "link", "set", "br0", "up")
        for i, name in enumerate(self.names[1:], start=1):
            self._in("h0", "ip", "link", "add", f"v{i}", "type", "veth", "peer", "name", "eth0", "netns",
                     str(self.pids[name]))
            self._in("h0", "ip", "link", "set", f"v{i}", "master", "br0", "up")
            self._in(name, "ip", "addr", "add", f"{NET}.{i + 1}/24", "dev", "eth0")
            self._in(name, "ip", "link", "set", "eth0", "up")

    def service_net(self, hosts, net="10.78.0"):
        """A second network, only between h0 (NET.1 on bridge br1) and `hosts` (eth1): where a
        service can listen that the other hosts have no route to. Returns h0's address on it."""
        self._in("h0", "ip", "link", "add", "br1", "type", "bridge")
        self._in("h0", "ip", "addr", "add", f"{net}.1/24", "dev", "br1")
        self._in("h0", "ip", "link", "set", "br1", "up")
        for name in hosts:
            i = self.names.index(name)
            self._in("h0", "ip", "link", "add", f"s{i}", "type", "veth", "peer", "name", "eth1", "netns",
                     str(self.pids[name]))
            self._in("h0", "ip", "link", "set", f"s{i}", "master", "br1", "up")
            self._in(name, "ip", "addr", "add", f"{net}.{i + 1}/24", "dev", "eth1")
            self._in(name, "ip", "link", "set", "eth1", "up")
        return f"{net}.1"

    def _rsh_agent(self):
        """Open MPI's rsh agent for this bed: `agent HOST COMMAND...` runs COMMAND on HOST
        (enters its namespaces); the pids are this bed's, written in."""
        cases = "".join(f"  {name}) pid={pid} ;;\n" for name, pid in self.pids.items())
        path = os.path.join(self.dir, "rsh")
        with open(path, "w") as f:
            f.write("#!/bin/sh\n# written by tests/scenarios/bed.py for one bed\nhost=$1\nshift\n"
                    f"case $host in\n{cases}  *) echo \"no host $host in this bed\" >&2; exit 255 ;;\nesac\n"
                    f'exec nsenter -t "$pid" -n -u -m -- env TMPDIR={self.dir}/$host/tmp sh -c "$*"\n')
        os.chmod(path, 0o755)
        return path

    def _enter(self, pid):
        """The test process moves into the launch node: what it starts runs there."""
        libc = ctypes.CDLL(None, use_errno=True)
        cwd = os.getcwd()
        for ns, flag in (("net", CLONE_NEWNET), ("uts", CLONE_NEWUTS), ("mnt", CLONE_NEWNS)):
            fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, flag) != 0:
                    raise RuntimeError(f"setns {ns}: {os.strerror(ctypes.get_errno())}")
            finally:
                os.close(fd)
        os.chdir(cwd)

    def hosts_arg(self, slots=2, skip_launch=True):
        """mpirun's --host list: `slots` on each host (the launch node too unless skipped)."""
        return ",".join(f"{n}:{slots}" for n in self.names[1 if skip_launch else 0:])

    def mpirun_opts(self, slots=2):
        # Only the bed's network for MPI's traffic and the daemons' (DESIGN.md: other interfaces
        # make Open MPI's TCP transport try addresses the other hosts do not have)
        return ["--mca", "plm_rsh_agent", self.rsh, "--host", self.hosts_arg(slots),
                "--mca", "btl_tcp_if_include", f"{NET}.0/24", "--mca", "oob_tcp_if_include", f"{NET}.0/24"]

    def close(self):
        for h in self.holders:
            if h.poll() is None:
                h.kill()
                h.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
