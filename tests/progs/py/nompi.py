"""A Python rank that never initialises MPI (as PyTorch with gloo under mpirun):
`import mpinotify` is its only line for the notifier.

    python3 nompi.py [all] [node-per-rank]

Rank 1 (from the launcher's environment) raises RuntimeError, or every rank
with "all"; the others exit 0. "node-per-rank" gives each rank a spool of its
own, as if each were on a node of its own (ranks of one node agree through
claim files in their shared spool)."""
import os
import sys

import mpinotify  # noqa: F401  (installs the uncaught-exception hooks)

rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
if "node-per-rank" in sys.argv:
    os.environ["MPINOTIFY_SPOOL"] = os.path.join(os.environ["MPINOTIFY_SPOOL"], f"node{rank}")


def optimizer_step(step):
    raise RuntimeError(f"loss diverged at step {step}")


if rank == 1 or "all" in sys.argv:
    optimizer_step(7)
print(f"done {rank}", flush=True)
