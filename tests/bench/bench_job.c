/*
 * bench_job - a healthy MPI job for the benchmark: times a loop that is
 * either bound by MPI_Allreduce (the pattern most sensitive to anything that
 * competes for MPI's progress engine or adds locking: a notifier's agent
 * thread, a raised thread level) or by computation (where a notifier's
 * threads could steal cycles). run_bench.py runs it with and without
 * libmpinotify preloaded.
 *
 *     bench_job LEVEL allreduce BYTES ITERATIONS
 *     bench_job LEVEL compute   0     ITERATIONS
 *     bench_job LEVEL print     BYTES ITERATIONS
 *
 * print: rank 0 writes ITERATIONS numbered lines of about BYTES bytes to its
 * standard output (a pty under mpirun: one write per line), the pattern
 * that a copier of the rank's output (rank_output) costs most in; one rank
 * only, so that no other rank's output lands inside the result line.
 *
 * LEVEL is single, funneled, serialized or multiple (MPI_Init_thread).
 * Rank 0 prints one machine-readable line before MPI_Finalize:
 *     elapsed=<s> provided=<level> init=<s> rss_kib=<max> rss_mean_kib=<mean>
 * (elapsed and init: the slowest rank; rss: VmRSS after the loop, over the
 * ranks) and one after it, timed by rank 0:
 *     finalize=<s>
 */
#include <mpi.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_USAGE = 2 };

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

/* A non-negative count from `s`; -1 when malformed. */
static long count_of(const char *s)
{
  char *end;
  long v = strtol(s, &end, 10);
  return (*s && !*end && v >= 0) ? v : -1;
}

/* MPI_Wtime is not usable around MPI_Init and MPI_Finalize. */
static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long rss_kib(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  if (f)
    fclose(f);
  return kib;
}

static double allreduce_loop(char *in, char *out, long bytes, long iterations)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (long i = 0; i < iterations; i++)
    MPI_Allreduce(in, out, (int)bytes, MPI_BYTE, MPI_BOR, MPI_COMM_WORLD);
  return MPI_Wtime() - t0;
}

static volatile double chain_result;   /* keeps the compiler from dropping the chain */

/* A dependent floating-point chain: no memory traffic, no MPI, so only
 * competition for the core itself can slow it. */
static double compute_loop(long iterations)
{
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime(), x = 1.0;
  for (long i = 0; i < iterations; i++)
    x = x * 1.0000001 + 1e-9;
  chain_result = x;
  return MPI_Wtime() - t0;
}

static double print_loop(int rank, long bytes, long iterations)
{
  char pad[256];
  int n = bytes > 20 && bytes < (long)sizeof pad ? (int)bytes - 20 : 40;
  memset(pad, 'x', (size_t)n);
  pad[n] = '\0';
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = MPI_Wtime();
  for (long i = 0; rank == 0 && i < iterations; i++)
    printf("line %012ld %s\n", i, pad);
  fflush(stdout);
  return MPI_Wtime() - t0;
}

static int usage(const char *argv0)
{
  fprintf(stderr, "usage: %s single|funneled|serialized|multiple allreduce|compute|print BYTES ITERATIONS\n", argv0);
  return EXIT_USAGE;
}

int main(int argc, char **argv)
{
  if (argc != 5)
    return usage(argv[0]);
  int requested = level_of(argv[1]), compute = strcmp(argv[2], "compute") == 0, print = strcmp(argv[2], "print") == 0;
  long bytes = count_of(argv[3]), iterations = count_of(argv[4]);
  if (requested < 0 || (!compute && !print && strcmp(argv[2], "allreduce") != 0) || bytes < 0 || bytes > (1L << 30) ||
      (!compute && bytes == 0) || iterations <= 0)
    return usage(argv[0]);
  int provided = -1, rank, size;
  double t0 = now();
  MPI_Init_thread(&argc, &argv, requested, &provided);
  double init = now() - t0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  char *in = calloc((size_t)bytes + 1, 1), *out = calloc((size_t)bytes + 1, 1);
  if (in == NULL || out == NULL)
    MPI_Abort(MPI_COMM_WORLD, 1);
  double mine;
  /* Warm-up, untimed: connection set-up and first-touch costs are not the notifier's. */
  if (print) {
    mine = print_loop(rank, bytes, iterations);   /* no warm-up: the copier has none to skip */
  } else if (compute) {
    compute_loop(iterations / 10 + 1);
    mine = compute_loop(iterations);
  } else {
    allreduce_loop(in, out, bytes, iterations / 10 + 1);
    mine = allreduce_loop(in, out, bytes, iterations);
  }
  double times[2] = {mine, init}, slowest[2];
  long rss = rss_kib(), rss_max = 0, rss_sum = 0;
  MPI_Reduce(times, slowest, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&rss, &rss_max, 1, MPI_LONG, MPI_MAX, 0, MPI_COMM_WORLD);
  MPI_Reduce(&rss, &rss_sum, 1, MPI_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
  if (rank == 0)
    printf("elapsed=%.6f provided=%s init=%.6f rss_kib=%ld rss_mean_kib=%ld\n", slowest[0], name_of(provided),
           slowest[1], rss_max, rss_sum / size);
  fflush(stdout);
  free(in);
  free(out);
  t0 = now();
  MPI_Finalize();
  if (rank == 0)
    printf("finalize=%.6f\n", now() - t0);
  return 0;
}
