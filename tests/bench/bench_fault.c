/*
 * bench_fault - a job that fails, for the fault-to-delivery benchmark.
 *
 *     bench_fault
 *
 * After MPI_Init and a barrier, every odd rank segfaults at the same line
 * (one unique failure) while the even ranks wait in MPI_Barrier for ranks
 * that never come, as the healthy part of a real job waits in a collective.
 * Each faulting rank first prints, on stdout,
 *     fault_at=<CLOCK_REALTIME ns> rank=<rank>
 * so run_bench.py can measure from the fault's own time to the moment the
 * loopback server received the report, and to mpirun's death notice.
 */
#include <mpi.h>

#include <stdio.h>
#include <time.h>

static long long wall_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Not inlined: every faulting rank has the same frames, so one signature. */
__attribute__((noinline)) static void fault_here(volatile int *p, int rank)
{
  printf("fault_at=%lld rank=%d\n", wall_ns(), rank);
  fflush(stdout);
  *p = 1;
}

int main(int argc, char **argv)
{
  int rank;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank % 2 == 1)
    fault_here((volatile int *)0, rank);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
