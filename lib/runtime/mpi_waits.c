/* mpi_waits.c - the blocking MPI calls (MPN__WAIT_CALLS in mpi/mpi.h: the
 * collectives, point-to-point, the waits, Win_fence, communicator creation),
 * interposed so each rank knows which one its application threads are in
 * (mpi/waits.c, docs/internals/waits.md). Both MPI_X and PMPI_X: Open MPI's
 * Fortran bindings (mpi_barrier_) call PMPI_Barrier directly. Each forwards
 * to the next PMPI_X after ours (mpn__mpi_next, looked up once), never to
 * ours. The library's own MPI calls (the election) go through mpn__pmpi,
 * which holds the same next definitions: they never come here, so they are
 * never counted as the application's.
 *
 * This is the hot path of every MPI call the application makes: no clock,
 * no lock, no system call; one thread-local load and two relaxed stores. */
#include "runtime/runtime.h"

#include <string.h>

#define MPN_ERR_OTHER 16   /* MPI_ERR_OTHER: the value every MPI-3 library uses */

/* The next definition of PMPI_<name>, found on the first call. Two threads
 * finding it at once find the same address. */
static void *find_next(_Atomic(void *) *cache, const char *pname)
{
  void *p = atomic_load_explicit(cache, memory_order_relaxed);
  if (__builtin_expect(p != NULL, 1))
    return p;
  p = mpn__mpi_next(pname);
  if (!p)
    mpn__mpi_missing(pname);
  atomic_store_explicit(cache, p, memory_order_relaxed);
  return p;
}

/* forward_X: record the call in this thread's slot, call the real one,
 * clear the slot. MPI_X and PMPI_X both come here. */
#define MPN__WAIT_WRAPPER(name, params, args)                                  \
  static int forward_##name params                                             \
  {                                                                            \
    static _Atomic(void *) next;                                               \
    void *p = find_next(&next, "PMPI_" #name);                                 \
    __typeof__(PMPI_##name) *real;                                             \
    if (!p)                                                                    \
      return MPN_ERR_OTHER;                                                    \
    memcpy(&real, &p, sizeof real);                                            \
    mpn__wait_slot *slot = mpn__waits_enter(MPN__CALL_##name);                 \
    int rc = real args;                                                        \
    mpn__waits_leave(slot);                                                    \
    return rc;                                                                 \
  }                                                                            \
  MPN_EXTERN int MPI_##name params { return forward_##name args; }            \
  MPN_EXTERN int PMPI_##name params { return forward_##name args; }
MPN__WAIT_CALLS(MPN__WAIT_WRAPPER)
#undef MPN__WAIT_WRAPPER
