/* What a rank printed before it failed (CTest crash.rank_output_*).
 *   rank_output words RANK      "step N ok" lines, an ERROR line on stderr, then SIGSEGV on RANK
 *   rank_output flood RANK N    N numbered lines and a last line without a newline, then SIGSEGV
 *   rank_output secret RANK     a line with $MPINOTIFY_SECRET_TEST and $HF_TOKEN in it, then SIGSEGV
 *   rank_output probe           each rank says whether it has a ring and how many live copiers
 *                               its process group has ("rank R ring yes copiers N"), then ends well
 * Every rank prints; the others wait in a barrier and are torn down by mpirun. */
#include "common.h"

#include <dirent.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void words(int rank)
{
  for (int i = 1; i <= 41; i++)
    printf("rank %d step %d ok\n", rank, i);
  fflush(stdout);
  fprintf(stderr, "ERROR: boom on rank %d\n", rank);
}

static void flood(int rank, long n)
{
  for (long i = 0; i < n; i++)
    printf("rank %d line %07ld of a long run of output\n", rank, i);
  printf("rank %d partial last line", rank);
  fflush(stdout);
}

/* Live (not zombie) processes named mpn-output in this process's group. */
static int copiers(void)
{
  int n = 0;
  DIR *d = opendir("/proc");
  for (struct dirent *e; d && (e = readdir(d));) {
    char path[300], line[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f)
      continue;
    int ppid, pgrp;
    char state;
    if (fgets(line, sizeof line, f) && strstr(line, "(mpn-output)") &&
        sscanf(strrchr(line, ')') + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && state != 'Z' && pgrp == getpgrp())
      n++;
    fclose(f);
  }
  if (d)
    closedir(d);
  return n;
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const char *mode = argc > 1 ? argv[1] : "words";
  int bad = argc > 2 ? atoi(argv[2]) : 2;
  if (!strcmp(mode, "probe")) {
    printf("rank %d ring %s copiers %d\n", rank, getenv("MPINOTIFY_OUTPUT_RING") ? "yes" : "no", copiers());
    MPI_Finalize();
    return 0;
  }
  printf("rank %d started\n", rank);
  fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == bad) {
    if (!strcmp(mode, "flood"))
      flood(rank, argc > 3 ? atol(argv[3]) : 20000);
    else if (!strcmp(mode, "secret"))
      fprintf(stderr, "connecting with token %s and key %s to the store\n", getenv("MPINOTIFY_SECRET_TEST"),
              getenv("HF_TOKEN"));
    else
      words(rank);
    *mpn_null_target = 1;
  }
  MPI_Barrier(MPI_COMM_WORLD);
  MPI_Finalize();
  return 0;
}
