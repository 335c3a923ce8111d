"""bench_py - bench_job's 8-byte allreduce loop as a Python rank (mpi4py), for the
benchmark's "Python ranks" table. run_bench.py runs it with and without
libmpinotify preloaded:

    mpirun -np N /usr/bin/python3 bench_py.py ITERATIONS

The buffer form: comm.Allreduce on 1-element numpy float64 arrays (8 bytes,
MPI.SUM), so each iteration is one MPI_Allreduce of 8 bytes as in bench_job
and no pickling (the lowercase allreduce would mostly time pickle). mpi4py
initialises MPI on `from mpi4py import MPI`, asking for its default thread
level (MPI_THREAD_MULTIPLE). Rank 0 prints, as bench_job does:
    elapsed=<s> provided=<level> init=<s> rss_kib=<max> rss_mean_kib=<mean> hooked=<yes|no>
(elapsed: the slowest rank's timed loop; init: the slowest rank's
`from mpi4py import MPI`; hooked: whether mpinotify's exception hooks were
installed at start-up, as the preloaded library's boot sitecustomize does)
and, after MPI.Finalize() called explicitly:
    finalize=<s>
"""
import sys
import time

t0 = time.monotonic()
from mpi4py import MPI  # noqa: E402  (MPI_Init_thread happens here, timed)
init = time.monotonic() - t0

import numpy as np  # noqa: E402

LEVELS = {MPI.THREAD_SINGLE: "single", MPI.THREAD_FUNNELED: "funneled",
          MPI.THREAD_SERIALIZED: "serialized", MPI.THREAD_MULTIPLE: "multiple"}


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def allreduce_loop(comm, sendbuf, recvbuf, iterations):
    comm.Barrier()
    t = MPI.Wtime()
    for _ in range(iterations):
        comm.Allreduce(sendbuf, recvbuf, op=MPI.SUM)
    return MPI.Wtime() - t


def main(argv):
    if len(argv) != 2 or not argv[1].isdigit() or int(argv[1]) <= 0:
        sys.stderr.write(f"usage: {argv[0]} ITERATIONS\n")
        return 2
    iterations = int(argv[1])
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    sendbuf = np.ones(1, dtype=np.float64)
    recvbuf = np.zeros(1, dtype=np.float64)
    allreduce_loop(comm, sendbuf, recvbuf, iterations // 10 + 1)   # warm-up, untimed
    mine = allreduce_loop(comm, sendbuf, recvbuf, iterations)
    slowest = (comm.reduce(mine, op=MPI.MAX, root=0), comm.reduce(init, op=MPI.MAX, root=0))
    rss = rss_kib()
    rss_max = comm.reduce(rss, op=MPI.MAX, root=0)
    rss_sum = comm.reduce(rss, op=MPI.SUM, root=0)
    if rank == 0:
        hooked = "yes" if "mpinotify._hook" in sys.modules else "no"
        print(f"elapsed={slowest[0]:.6f} provided={LEVELS.get(MPI.Query_thread(), 'unknown')} "
              f"init={slowest[1]:.6f} rss_kib={rss_max} rss_mean_kib={rss_sum // comm.Get_size()} "
              f"hooked={hooked}", flush=True)
    t = time.monotonic()
    MPI.Finalize()   # explicitly, to time it; mpi4py's own at exit then does nothing
    if rank == 0:
        print(f"finalize={time.monotonic() - t:.6f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
