/* fallback.c - when the ranks cannot elect a reporter, each node still sends
 * at most one report per signature: the first process of the job on the node
 * to create the claim file reports. A claim that cannot be written at all
 * lets the process report: a duplicate beats silence. */
#include "mpi/mpi.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

static int claim_fd = -1;   /* the claim this process holds while it reports */

/* The claim is per node: with a spool shared between nodes (a shared file
 * system) the host's name keeps one node's claim from silencing another's. */
static void claim_path(uint64_t signature, char *path, size_t cap)
{
  char host[MPN__HOST_MAX];
  size_t i = 0;
  for (; mpn__self.host[i] && i + 1 < sizeof host; i++) {
    char c = mpn__self.host[i];
    host[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ? c
                                                                                                                 : '_';
  }
  host[i] = '\0';
  snprintf(path, cap, "%s/claim-%016llx-%s-%016llx", mpn__cfg()->spool_dir, (unsigned long long)mpn__mpi.job_token,
           host, (unsigned long long)signature);
}

int mpn__fallback_claim(uint64_t signature)
{
  char path[MPN__PATH_MAX + 128];   /* dir, job token, host, signature */
  mkdir(mpn__cfg()->spool_dir, 0700);
  claim_path(signature, path, sizeof path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    claim_fd = fd;   /* empty until the report is out: see mpn__fallback_release */
    return 1;
  }
  return errno == EEXIST ? 0 : 1;
}

void mpn__fallback_release(void)
{
  if (claim_fd < 0)
    return;
  ssize_t w = write(claim_fd, "d", 1);   /* the report is out: waiting ranks may end */
  (void)w;
  close(claim_fd);
  claim_fd = -1;
}

/* A crashed rank that did not claim stays alive until the claimer on its
 * node has reported: its exit makes mpirun kill the job, claimer included. */
void mpn__fallback_wait(uint64_t signature, int64_t deadline)
{
  char path[MPN__PATH_MAX + 128];   /* dir, job token, host, signature */
  claim_path(signature, path, sizeof path);
  struct stat st;
  while (mpn__now_ns() < deadline && stat(path, &st) == 0 && st.st_size == 0)
    mpn__sleep_ms(20);
}

/* Claims outlive their job (nobody knows when a job ends): the agent sweeps
 * those older than a day when it starts, off the application's path. */
void mpn__fallback_sweep(void)
{
  DIR *d = opendir(mpn__cfg()->spool_dir);
  if (!d)
    return;
  time_t old = time(NULL) - 24 * 3600;
  for (struct dirent *e; (e = readdir(d));) {
    struct stat st;
    if (strncmp(e->d_name, "claim-", 6) || fstatat(dirfd(d), e->d_name, &st, 0) || st.st_mtime > old)
      continue;
    unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}
