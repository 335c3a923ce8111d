"""A Python MPI rank program for tests/scenarios/hang.py (mpi4py).

    python3 hang.py STUCK_RANK SECONDS

The rank STUCK_RANK spends SECONDS in compute_loss (Python, not in MPI) while the others wait
in comm.allreduce inside train_step; then every rank finishes the step and exits 0.
"""
import sys
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD


def compute_loss(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.01)


def train_step(x):
    return comm.allreduce(x)  # MARK: train_step allreduce


def main():
    stuck, seconds = int(sys.argv[1]), float(sys.argv[2])
    train_step(0)  # mpi4py's first lowercase collective duplicates the communicator: not in the hang
    if comm.rank == stuck:
        compute_loss(seconds)
    total = train_step(1)
    compute_loss(2)  # the last messages go out while every rank is alive
    if comm.rank == 0:
        print(f"steps summed: {total}")


main()
