/* fallback.c - when the ranks cannot elect a reporter, each node still sends
 * at most one report per signature: the first process of the job on the node
 * to create the claim file reports. A claim that cannot be written at all
 * lets the process report: a duplicate beats silence. */
#include "core/mpn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int mpn__fallback_claim(uint64_t signature)
{
  char path[MPN__PATH_MAX + 64];
  mkdir(mpn__g.cfg.spool_dir, 0700);
  snprintf(path, sizeof path, "%s/claim-%016llx-%016llx", mpn__g.cfg.spool_dir,
           (unsigned long long)mpn__g.job_token, (unsigned long long)signature);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return 1;
  }
  return errno == EEXIST ? 0 : 1;
}
