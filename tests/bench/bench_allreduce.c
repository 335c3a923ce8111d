/*
 * bench_allreduce - times a loop of small MPI_Allreduce calls, the pattern
 * most sensitive to anything that competes with the application for MPI's
 * progress engine or adds locking (a notifier's agent thread, a raised
 * thread level). run_bench.py runs it with and without libmpinotify.
 *
 *     bench_allreduce [single|funneled|serialized|multiple] [BYTES] [ITERATIONS]
 *
 * Rank 0 prints one machine-readable line:
 *     elapsed=<seconds> provided=<thread level MPI provided>
 * where elapsed is the slowest rank's time for the timed loop.
 */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_USAGE = 2, DEFAULT_BYTES = 8, DEFAULT_ITERATIONS = 20000 };

static const struct {
  const char *name;
  int level;
} levels[] = {
  {"single", MPI_THREAD_SINGLE},
  {"funneled", MPI_THREAD_FUNNELED},
  {"serialized", MPI_THREAD_SERIALIZED},
  {"multiple", MPI_THREAD_MULTIPLE},
};
#define N_LEVELS (int)(sizeof levels / sizeof levels[0])

static int level_of(const char *name)
{
  for (int i = 0; i < N_LEVELS; i++)
    if (strcmp(name, levels[i].name) == 0)
      return levels[i].level;
  return -1;
}

static const char *name_of(int level)
{
  for (int i = 0; i < N_LEVELS; i++)
    if (levels[i].level == level)
      return levels[i].name;
  return "unknown";
}

/* A positive count from argv[i], or `def` when absent; -1 when malformed. */
static long count_arg(int argc, char **argv, int i, long def)
{
  if (i >= argc)
    return def;
  char *end;
  long v = strtol(argv[i], &end, 10);
  return (*argv[i] && !*end && v > 0) ? v : -1;
}

/* The loop under test; returns this rank's seconds. */
static double timed_loop(char *in, char *out, long bytes, long iterations)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (long i = 0; i < iterations; i++)
    MPI_Allreduce(in, out, (int)bytes, MPI_BYTE, MPI_BOR, MPI_COMM_WORLD);
  return MPI_Wtime() - t0;
}

int main(int argc, char **argv)
{
  int requested = level_of(argc > 1 ? argv[1] : "single");
  long bytes = count_arg(argc, argv, 2, DEFAULT_BYTES);
  long iterations = count_arg(argc, argv, 3, DEFAULT_ITERATIONS);
  if (requested < 0 || bytes < 0 || bytes > (1L << 30) || iterations < 0) {
    fprintf(stderr, "usage: %s [single|funneled|serialized|multiple] [BYTES] [ITERATIONS]\n", argv[0]);
    return EXIT_USAGE;
  }
  int provided = -1, rank;
  MPI_Init_thread(&argc, &argv, requested, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  char *in = calloc((size_t)bytes, 1), *out = calloc((size_t)bytes, 1);
  if (in == NULL || out == NULL)
    MPI_Abort(MPI_COMM_WORLD, 1);
  /* Warm-up, untimed: connection setup and first-touch costs are not the notifier's. */
  timed_loop(in, out, bytes, iterations / 10 + 1);
  double mine = timed_loop(in, out, bytes, iterations), slowest;
  MPI_Reduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("elapsed=%.6f provided=%s\n", slowest, name_of(provided));
  free(in);
  free(out);
  MPI_Finalize();
  return 0;
}
