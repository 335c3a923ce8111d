"""A Python rank that never initialises MPI (as PyTorch with gloo under mpirun):
`import mpinotify` is its only line for the notifier. Rank 1 (from the
launcher's environment) raises RuntimeError; the others exit 0."""
import os

import mpinotify  # noqa: F401  (installs the uncaught-exception hooks)

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))


def optimizer_step(step):
    raise RuntimeError(f"loss diverged at step {step}")


if rank == 1:
    optimizer_step(7)
print(f"done {rank}", flush=True)
