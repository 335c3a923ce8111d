/* dlopen_mpi_plugin.c - the part of a program that links libmpi, loaded at
 * run time the way mpi4py's MPI extension is: the executable itself knows
 * nothing of MPI (tests/progs/dlopen_mpi.c). */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs an allreduce; the ranks listed in `crash` then segfault. Returns the sum. */
int plugin_run(const char *crash)
{
  int provided = 0, rank = 0, size = 0, sum = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_SINGLE, &provided) != MPI_SUCCESS)
    return -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&rank, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d: sum %d\n", rank, size, sum);
  fflush(stdout);
  char me[16];
  snprintf(me, sizeof me, ",%d,", rank);
  char list[256];
  snprintf(list, sizeof list, ",%s,", crash ? crash : "");
  if (strstr(list, me)) {
    volatile int *p = NULL;
    *p = 1;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return sum;
}
