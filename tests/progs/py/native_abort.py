"""A Python rank whose native code ends the job with MPI_Abort
(tests/progs/py_native_abort.c): "thread" (a C thread aborts while the main
thread holds the GIL in a blocking MPI call) or "exit" (a C atexit handler
aborts after the interpreter finalized; mpi4py leaves MPI_Finalize to it)."""
import ctypes
import sys

import mpi4py

mode, lib_path = sys.argv[1], sys.argv[2]
if mode == "exit":
    mpi4py.rc.finalize = False
from mpi4py import MPI  # noqa: E402

rank = MPI.COMM_WORLD.Get_rank()
if mode == "thread":
    lib = ctypes.PyDLL(lib_path)  # PyDLL: the GIL stays held during the call
    if rank == 0:
        lib.abort_from_thread()
        lib.recv_forever()
    MPI.COMM_WORLD.Barrier()
else:
    ctypes.CDLL(lib_path).abort_at_exit()
print(f"rank {rank} ends", flush=True)
