/* custom_channel RANKS: an MPI program linked with libmpinotify that brings
 * its own channel kind, "memo" (mpn_register_channel): a report goes to the
 * file named by the channel's URL, memo:///path, one JSON line per message.
 * Ranks in RANKS ("1,3,6") fault with SIGSEGV at the same site; the others
 * wait in MPI_Allreduce. */
#include <mpi.h>
#include <mpinotify.h>
#include <stdio.h>
#include <string.h>
#include "common.h"

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }

static mpn_code memo_send(const char *url, const char *json, char *detail, size_t len, void *user)
{
  (void)user;
  const char *path = strncmp(url, "memo://", 7) == 0 ? url + 7 : NULL;
  FILE *f = path ? fopen(path, "a") : NULL;
  if (!f) {
    snprintf(detail, len, "cannot open the memo file");
    return MPN_E_IO;
  }
  fprintf(f, "%s\n", json);
  return fclose(f) == 0 ? MPN_OK : MPN_E_IO;
}

int main(int argc, char **argv)
{
  /* Before MPI_Init: the library parses MPINOTIFY_URLS's memo:// channel now. */
  if (mpn_register_channel("memo", memo_send, NULL) != MPN_OK)
    return 3;
  int rank;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  if (argc > 1 && mpn_rank_in(argv[1], rank))
    bad_fn(rank);
  int one = 1, sum = 0;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
