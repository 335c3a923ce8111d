/* crash_in_lib RANKS: the listed ranks fault inside libcrashlib.so (-O2);
 * the others wait in MPI_Allreduce. */
#include <mpi.h>
#include <stdio.h>
#include "common.h"
#include "crashlib.h"

int main(int argc, char **argv) {
  int rank, one = 1, sum = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (argc > 1 && mpn_rank_in(argv[1], rank)) printf("%d\n", crashlib_store(mpn_null_target, rank));
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
