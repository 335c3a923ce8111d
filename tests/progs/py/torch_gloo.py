"""A PyTorch CPU job (gloo) launched by mpirun, with `import mpinotify` as its
only change. Rank 1 raises RuntimeError after an all_reduce; the others wait in
a barrier (gloo then ends them with its own error when rank 1 is gone)."""
import os
import sys

import mpinotify  # noqa: F401
import torch
import torch.distributed as dist

rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
size = int(os.environ["OMPI_COMM_WORLD_SIZE"])
os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
os.environ.setdefault("MASTER_PORT", sys.argv[1] if len(sys.argv) > 1 else "29511")
dist.init_process_group("gloo", rank=rank, world_size=size)
t = torch.ones(4) * rank
dist.all_reduce(t)


def training_step(step):
    raise RuntimeError(f"loss diverged at step {step}")


if rank == 1:
    training_step(7)
dist.barrier()
print(f"done {rank}", flush=True)
