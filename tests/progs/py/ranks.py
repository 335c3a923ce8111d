"""A Python MPI rank program for tests/scenarios/python.py (mpi4py).

    python3 ranks.py ACTION[=RANKS] ...

Actions, each on the listed ranks (comma-separated; all ranks when omitted):
  value=1,3     raise ValueError in train_step (the others wait in allreduce)
  key=3         raise KeyError in load_batch
  value2=1      raise ValueError at another site (evaluate)
  chained=2     raise KeyError from a ValueError (explicit cause)
  thread=2      a thread raises RuntimeError; the program goes on
  segv=2        a native fault (ctypes) inside load_batch
  abort=1       catch a ValueError and call COMM_WORLD.Abort(3), the common idiom
  child=0       start a Python child process that raises (it is not a rank: nothing to report)
  say=1         print "rank R step N ok" lines and "ERROR: shard 7 is corrupt" on stderr
  stall=1       the listed ranks sleep 6 s outside MPI, reporting mpinotify.progress every second,
                while the others wait in comm.Allreduce (MPI_Allreduce) for them
  token=1       raise ValueError whose message (and source line) holds a Hugging Face token
  notify        catch a ValueError and report it with mpinotify.notify_exception
  notify_url=URL  the same through mpinotify.WebhookNotifier(URL)
  notify_any=URL  the same through mpinotify.URLNotifier(URL) (any channel: slack+http://...)
Then every rank does an allreduce, prints "done RANK" and exits 0.
"""
import array
import ctypes
import sys
import threading
import time

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.rank


def mine(spec):
    return spec is None or str(rank) in spec.split(",")


def train_step(step):
    raise ValueError(f"loss is nan at step {step}")


def evaluate(step):
    raise ValueError(f"accuracy is nan at step {step}")


def load_batch(i, fault=False):
    if fault:
        return ctypes.string_at(0)  # reads address 0: SIGSEGV under this Python frame
    raise KeyError(f"batch {i}")


def chained():
    try:
        train_step(3)
    except ValueError as e:
        raise KeyError("checkpoint missing") from e


def in_thread():
    def worker():
        raise RuntimeError("data loader died")
    t = threading.Thread(target=worker, name="loader-0")
    t.start()
    t.join()


def abort_idiom():
    try:
        train_step(5)
    except Exception:
        import traceback
        traceback.print_exc()
        comm.Abort(3)


def child():
    import subprocess
    code = "import sys; print('child hook', sys.excepthook.__module__, flush=True); raise SystemError('child')"
    r = subprocess.run([sys.executable, "-c", code])
    print(f"rank {rank}: child exited {r.returncode}", flush=True)


def notify(url=None, any_kind=False):
    import mpinotify
    notifier = (mpinotify.URLNotifier(url) if any_kind else mpinotify.WebhookNotifier(url)) if url else None
    try:
        train_step(9)
    except ValueError:
        mpinotify.notify_exception(notifier, context="validation", name="nightly")


def leak_token():
    raise ValueError("download refused for hf_AbCdEf1234567890abcdefgh")  # a token in the source line too


def stall(me):
    total = array.array("d", [0.0])
    # every rank here first (Python starts at different speeds on a loaded node): the others then
    # wait the whole stall, in the same call as after it
    comm.Allreduce(array.array("d", [1.0]), total, op=MPI.SUM)
    if me:
        import mpinotify
        for step in range(1, 7):  # three periods of the tests' MPINOTIFY_HANG_TIMEOUT=2
            mpinotify.progress(step, 6)
            time.sleep(1)
    total = array.array("d", [0.0])
    comm.Allreduce(array.array("d", [1.0]), total, op=MPI.SUM)


def say():
    for i in range(1, 6):
        print(f"rank {rank} step {i} ok", flush=True)
    print("ERROR: shard 7 is corrupt", file=sys.stderr, flush=True)


ACTIONS = {
    "say": say,
    "token": leak_token,
    "value": lambda: train_step(7),
    "key": lambda: load_batch(4),
    "value2": lambda: evaluate(2),
    "chained": chained,
    "thread": in_thread,
    "segv": lambda: load_batch(1, fault=True),
    "abort": abort_idiom,
    "child": child,
}


def main():
    for arg in sys.argv[1:]:
        name, _, spec = arg.partition("=")
        if name == "notify_url":
            notify(spec)
        elif name == "notify_any":
            notify(spec, any_kind=True)
        elif name == "notify":
            notify()
        elif name == "stall":
            stall(mine(spec or None))
        elif mine(spec or None):
            ACTIONS[name]()
    comm.allreduce(rank)
    print(f"done {rank}", flush=True)


main()
