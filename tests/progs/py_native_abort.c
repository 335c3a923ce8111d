/* py_native_abort.c - native code of a Python rank that ends the job itself
 * (tests/progs/py/native_abort.py), loaded with ctypes:
 *  - abort_from_thread(): a C thread calls MPI_Abort(3) 2 s later, while the
 *    main thread holds the GIL inside a blocking MPI call (recv_forever(),
 *    called through ctypes.PyDLL as many C extensions do): a Python hook on
 *    MPI_Abort must not wait for that GIL.
 *  - abort_at_exit(): MPI_Abort(5) from a C atexit handler, after the
 *    interpreter has finalized. */
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *aborter(void *arg)
{
  (void)arg;
  sleep(2);
  MPI_Abort(MPI_COMM_WORLD, 3);
  return NULL;
}

void abort_from_thread(void)
{
  pthread_t t;
  if (pthread_create(&t, NULL, aborter, NULL) == 0)
    pthread_detach(t);
}

void recv_forever(void)
{
  int v;
  MPI_Recv(&v, 1, MPI_INT, MPI_ANY_SOURCE, 99, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

static void at_exit_abort(void)
{
  int done = 0;
  MPI_Finalized(&done);
  if (!done)
    MPI_Abort(MPI_COMM_WORLD, 5);
}

void abort_at_exit(void)
{
  atexit(at_exit_abort);
}
