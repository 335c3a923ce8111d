/* demo_crash.c - the README's demo: the ranks named on the command line
 * ("1,3,6") log an error, carry on, and crash in the same function; the
 * others wait in MPI_Allreduce for them, as healthy ranks of a real training
 * job would. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* noipa: keep the compiler from proving the store dead and dropping it. */
__attribute__((noinline, noipa)) static void update_weights(double *w, int n)
{
  for (int i = 0; i < n; i++)
    w[i] *= 0.5;   /* w is NULL on the unlucky ranks */
}

static int listed(const char *list, int rank)
{
  char buf[256];
  snprintf(buf, sizeof buf, "%s", list);
  for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
    if (atoi(t) == rank)
      return 1;
  return 0;
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  double *weights = NULL;
  if (!(argc > 1 && listed(argv[1], rank)))
    weights = calloc(16, sizeof *weights);
  else
    fprintf(stderr, "ERROR: rank %d: checkpoint shard %d not found, weights not loaded\n", rank, rank);
  usleep(100000);
  update_weights(weights, 16);
  double loss = 1.0, total;
  MPI_Allreduce(&loss, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0)
    printf("total loss %g\n", total);
  free(weights);
  MPI_Finalize();
  return 0;
}
