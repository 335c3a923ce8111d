/* error_exit.c - the commonest end of a simulation (LAMMPS's error->all()):
 * rank 0 explains the failure on stderr, every rank reaches MPI_Finalize,
 * then every rank exits with a non-zero status.
 *
 *   error_exit STATUS LINE...   rank 0 writes each LINE on stderr, then all exit STATUS */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  printf("rank %d: reading the input\n", rank);
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    for (int i = 2; i < argc; i++)
      fprintf(stderr, "%s\n", argv[i]);
  fflush(stderr);
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return argc > 1 ? atoi(argv[1]) : 1;
}
