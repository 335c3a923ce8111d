/* mpi_crash [--stagger MS] [--no-finalize] [--exit RANK:CODE] [KIND=RANKS]...
 *
 * Every rank enters MPI and a barrier. Ranks named in a KIND=RANKS group then
 * fail with that bug; all others wait in MPI_Allreduce (which never completes
 * once a rank is gone). With no groups the job is healthy.
 * KIND: segv, segv2 (two NULL writes in different functions), abort1, abort2
 * (two abort() call sites), assert1, assert2 (two assert() sites).
 * --stagger MS: a failing rank r first sleeps r*MS milliseconds.
 * --no-finalize: every rank exits 0 without MPI_Finalize.
 * --exit R:C: after MPI_Finalize, rank R calls exit(C). */
#undef NDEBUG /* the build type may define it; the assert() sites must stay */
#include <assert.h>
#include <mpi.h>
#include <stdio.h>
#include <time.h>
#include "common.h"

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }
__attribute__((noinline)) void other_bad_fn(int v) { mpn_null_target[1] = v * 3; }
/* Distinct bodies, so identical-code folding (-fipa-icf) cannot merge the two sites. */
static volatile int mpn_sink_counter;
__attribute__((noinline)) void abort_site_a(void) { mpn_sink_counter = 1; abort(); }
__attribute__((noinline)) void abort_site_b(void) { mpn_sink_counter += 7; abort(); }
__attribute__((noinline)) void assert_site_a(int v) { assert(v < 0 && "site a"); }
__attribute__((noinline)) void assert_site_b(int v) { assert(v > 1000000 && "site b"); }

static void fail(const char *kind, int rank) {
  printf("rank %d faults: %s\n", rank, kind); /* for the test's diagnostics */
  fflush(stdout);
  if (!strcmp(kind, "segv")) bad_fn(rank);
  else if (!strcmp(kind, "segv2")) other_bad_fn(rank);
  else if (!strcmp(kind, "abort1")) abort_site_a();
  else if (!strcmp(kind, "abort2")) abort_site_b();
  else if (!strcmp(kind, "assert1")) assert_site_a(rank);
  else if (!strcmp(kind, "assert2")) assert_site_b(rank);
  fprintf(stderr, "mpi_crash: unknown kind %s\n", kind);
  exit(2);
}

int main(int argc, char **argv) {
  int rank, stagger_ms = 0, no_finalize = 0, exit_rank = -1, exit_code = 0;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD); /* every rank (and notifier) is up before anyone fails */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--stagger") && i + 1 < argc) stagger_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-finalize")) no_finalize = 1;
    else if (!strcmp(argv[i], "--exit") && i + 1 < argc) sscanf(argv[++i], "%d:%d", &exit_rank, &exit_code);
  }
  for (int i = 1; i < argc; i++) {
    char *eq = strchr(argv[i], '=');
    if (eq && mpn_rank_in(eq + 1, rank)) {
      *eq = '\0';
      struct timespec ts = {(long)rank * stagger_ms / 1000, ((long)rank * stagger_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
      fail(argv[i], rank);
    }
  }
  int one = 1, sum = 0;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (no_finalize) exit(0);
  MPI_Finalize();
  if (rank == exit_rank) exit(exit_code);
  return 0;
}
