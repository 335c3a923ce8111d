/* lines_crash RANK: rank RANK writes through a null pointer in store_at, the
 * others wait in MPI_Allreduce. Built with -g -O2 whatever the build type,
 * and copied stripped (objcopy --strip-all) as stripped/lines_crash: the
 * report's frames carry file and line where the debug information is
 * (tests/scenarios/crash.py, lines_*). The tests find the lines by the
 * marker comments; keep each marker on its statement's line. */
#include <mpi.h>
#include <stdlib.h>
#include "common.h"

__attribute__((noinline)) void store_at(int v)
{
  *mpn_null_target = v * 5; /* LINES-FAULT */
}

int main(int argc, char **argv)
{
  int rank, one = 1, total = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (argc > 1 && rank == atoi(argv[1]))
    store_at(rank); /* LINES-CALL */
  MPI_Allreduce(&one, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return total > 0 ? 0 : 1;
}
