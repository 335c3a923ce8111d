/* mpi_hang [STEP]...: a plain MPI program (the library is preloaded) whose
 * ranks sum a counter with an 8-byte MPI_Allreduce in train_step, once per
 * step:
 *   stuck=RANKS:SECONDS   ranks in RANKS spin for SECONDS in compute_loss (not
 *                         in MPI) while the others wait in MPI_Allreduce: a
 *                         hang that ends (the job recovers)
 *   mismatch=RANKS        ranks in RANKS wait in MPI_Barrier (on a duplicate of
 *                         MPI_COMM_WORLD) while the others wait in MPI_Allreduce:
 *                         a deadlock that never ends by itself
 *   compute=SECONDS       every rank computes that long first: nobody waits
 *   wait=SECONDS          every rank waits that long in the end (the message goes out)
 *   sleepy=RANKS:SECONDS  ranks in RANKS sleep in one sleep() call (not in MPI) and
 *                         print "rank R: sleep left U" (U: seconds it returned early)
 *   early=RANKS           ranks in RANKS call MPI_Finalize at once (an off-by-one in
 *                         their step count) while the others wait in MPI_Allreduce
 * RANKS: "1,3" or "all". Ends with MPI_Finalize and status 0. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

static int rank;

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spins, as a computation does. */
__attribute__((noinline)) static void compute_loss(double seconds)
{
  volatile double x = 0;
  for (double end = now_s() + seconds; now_s() < end;)
    for (int i = 0; i < 100000; i++)
      x += i * 0.5;   /* MARK: compute_loss spin */
}

/* Waits without spinning: the last messages go out while every rank is alive. */
__attribute__((noinline)) static void pause_s(double seconds)
{
  for (double end = now_s() + seconds; now_s() < end;)
    usleep(10000);
}

__attribute__((noinline)) static void sync_barrier(MPI_Comm c)
{
  if (MPI_Barrier(c) != MPI_SUCCESS)   /* not a tail call: this function keeps its frame */
    abort();
}

__attribute__((noinline)) static long train_step(long x)
{
  long sum = 0;
  MPI_Allreduce(&x, &sum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);   /* MARK: train_step allreduce */
  return sum;
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  long total = 0;
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i], *eq = strchr(arg, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!eq)
      continue;
    *eq = '\0';
    if (!strcmp(arg, "stuck") && colon) {
      *colon = '\0';
      if (mpn_rank_in(eq + 1, rank))
        compute_loss(atof(colon + 1));
    } else if (!strcmp(arg, "sleepy") && colon) {
      *colon = '\0';
      if (mpn_rank_in(eq + 1, rank)) {
        unsigned left = sleep((unsigned)atoi(colon + 1));   /* a signal would end it early */
        printf("rank %d: sleep left %u\n", rank, left);
        fflush(stdout);
      }
    } else if (!strcmp(arg, "compute")) {
      compute_loss(atof(eq + 1));
    } else if (!strcmp(arg, "wait")) {
      pause_s(atof(eq + 1));
      continue;
    } else if (!strcmp(arg, "early") && mpn_rank_in(eq + 1, rank)) {
      break;
    } else if (!strcmp(arg, "mismatch")) {
      MPI_Comm dup;
      MPI_Comm_dup(MPI_COMM_WORLD, &dup);
      if (mpn_rank_in(eq + 1, rank)) {
        sync_barrier(dup);
        continue;
      }
    }
    total += train_step(1);
  }
  if (rank == 0)
    printf("steps summed: %ld\n", total);
  MPI_Finalize();
  return 0;
}
