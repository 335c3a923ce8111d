/* mpi_events [STEP]...: an MPI program linked with libmpinotify that reports
 * what the scenario asks, one STEP at a time, with a barrier after each:
 *   exc=RANKS:TYPE[:CONTEXT]   ranks in RANKS call mpn_report_exception (message names the rank)
 *   exc2=RANKS:TYPE            the same from a second call site
 *   alert=RANKS:DETECTOR:SEVERITY:STEP   mpn_alert; prints "alert STEP rc=N" (rank 0)
 *   progress=RANKS:STEP:TOTAL  mpn_progress
 *   exit=RANKS:CODE            ranks in RANKS call exit(CODE); the others wait in MPI_Allreduce
 *   kill=RANKS                 ranks in RANKS kill themselves with SIGKILL (no chance to report);
 *                              the others wait in MPI_Allreduce
 *   nodedown=RANKS             ranks in RANKS kill their parent (the launcher's daemon on their
 *                              node), its other children (their node's ranks) and themselves
 *                              with SIGKILL: the node is lost; the others wait in MPI_Allreduce
 *   deafterm=RANKS             ranks in RANKS ignore SIGTERM: a teardown ends them with its SIGKILL
 *                              1 s later, as on a node too loaded to run their handler in time
 *   sleep=MS                   every rank sleeps (lets the library deliver)
 *   ready=PATH                 every rank writes its pid to PATH.RANK (past MPI_Init: armed)
 * RANKS: "1,3,6" or "all". Ends with MPI_Finalize and status 0. */
#include <mpi.h>
#include <mpinotify.h>
#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

static int rank;

/* Two call sites; the volatile store after each call keeps it from being a
 * tail call, so the site has a frame of its own. */
static volatile int after_call;

__attribute__((noinline)) mpn_code site_a(const char *ctx, const char *type, const char *msg)
{
  mpn_code rc = mpn_report_exception(ctx, type, msg);
  after_call = 1;
  return rc;
}

__attribute__((noinline)) mpn_code site_b(const char *ctx, const char *type, const char *msg)
{
  mpn_code rc = mpn_report_exception(ctx, type, msg);
  after_call = 2;
  return rc;
}

static void pause_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* The daemon first (so it cannot tell mpirun of its ranks' deaths), then its other children, then this rank. */
static void node_down(void)
{
  pid_t parent = getppid();
  kill(parent, SIGKILL);
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    char path[300];
    int pid = atoi(e->d_name), ppid = 0;
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = pid > 0 && pid != getpid() ? fopen(path, "r") : NULL;
    if (f && fscanf(f, "%*d (%*[^)]) %*c %d", &ppid) == 1 && ppid == parent)
      kill(pid, SIGKILL);
    if (f)
      fclose(f);
  }
  if (d)
    closedir(d);
  raise(SIGKILL);
}

static void step(char *arg)
{
  char *eq = strchr(arg, '=');
  if (!eq)
    return;
  *eq = '\0';
  char *ranks = eq + 1, *rest = strchr(ranks, ':');
  if (!strcmp(arg, "sleep")) {
    pause_ms(atol(ranks));
    return;
  }
  if (!strcmp(arg, "ready")) {
    char path[512];
    snprintf(path, sizeof path, "%s.%d", ranks, rank);
    FILE *f = fopen(path, "w");
    if (f) {
      fprintf(f, "%ld\n", (long)getpid());
      fclose(f);
    }
    return;
  }
  if (rest)
    *rest++ = '\0';
  if (!mpn_rank_in(ranks, rank))
    return;
  char msg[64];
  snprintf(msg, sizeof msg, "bad value on rank %d", rank);
  if (!strcmp(arg, "exc") || !strcmp(arg, "exc2")) {
    char *ctx = rest ? strchr(rest, ':') : NULL;
    if (ctx)
      *ctx++ = '\0';
    mpn_code rc = !strcmp(arg, "exc") ? site_a(ctx, rest, msg) : site_b(ctx, rest, msg);
    printf("rank %d exception rc=%d\n", rank, rc);
  } else if (!strcmp(arg, "alert")) {
    char *det = rest, *sev = det ? strchr(det, ':') : NULL, *st = NULL;
    if (sev) {
      *sev++ = '\0';
      st = strchr(sev, ':');
      if (st)
        *st++ = '\0';
    }
    mpn_metric m[2] = {{"loss", 1.5}, {"grad_norm", 120.0}};
    mpn_code rc = mpn_alert(det, sev, st ? atoll(st) : 0, "loss spiked", m, 2, "lower the learning rate");
    if (rank == 0)
      printf("alert %s %s %s rc=%d\n", det, sev, st ? st : "0", rc);
  } else if (!strcmp(arg, "progress")) {
    char *total = rest ? strchr(rest, ':') : NULL;
    if (total)
      *total++ = '\0';
    mpn_progress(rest ? atoll(rest) : 0, total ? atoll(total) : 0, "training");
  } else if (!strcmp(arg, "deafterm")) {
    signal(SIGTERM, SIG_IGN);   /* blocking it would hold the main thread only: the kernel picks another */
  } else if (!strcmp(arg, "kill")) {
    fflush(stdout);
    raise(SIGKILL);
  } else if (!strcmp(arg, "nodedown")) {
    fflush(stdout);
    node_down();
  } else if (!strcmp(arg, "exit")) {
    fflush(stdout);
    exit(rest ? atoi(rest) : 1);
  }
  fflush(stdout);
}

int main(int argc, char **argv)
{
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 1; i < argc; i++) {
    int is_exit = !strncmp(argv[i], "exit=", 5) || !strncmp(argv[i], "kill=", 5) || !strncmp(argv[i], "nodedown=", 9);
    step(argv[i]);
    if (is_exit) {   /* survivors wait on the ranks that exited: mpirun ends the job */
      int one = 1, sum = 0;
      MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  MPI_Finalize();
  return 0;
}
