/* record.c - the minimal crash record, written by the signal handler with
 * open/write/close before anything else happens, so a fault that also kills
 * the agent (heap corruption, a lock held inside MPI) still leaves a trace.
 * The path is fixed at start-up; the agent removes the record once the
 * failure has been handled. */
#include "capture/capture.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char record_path[MPN__PATH_MAX + 128];

void mpn__record_prepare(const char *dir)
{
  mkdir(dir, 0700);
  size_t n = mpn__fmt_str(record_path, sizeof record_path, 0, dir);
  n = mpn__fmt_str(record_path, sizeof record_path, n, "/crash-");
  n = mpn__fmt_str(record_path, sizeof record_path, n, mpn__self.host);
  n = mpn__fmt_str(record_path, sizeof record_path, n, "-");
  n = mpn__fmt_u64(record_path, sizeof record_path, n, (uint64_t)mpn__self.pid);
  mpn__fmt_str(record_path, sizeof record_path, n, ".rec");
}

/* Runs in a signal handler. */
void mpn__record_write(const mpn__crash_slot *s)
{
  static char buf[4096];   /* static: the handler may run on a small stack */
  size_t n = mpn__fmt_str(buf, sizeof buf, 0, "mpinotify-record 1\nsignal=");
  n = mpn__fmt_i64(buf, sizeof buf, n, s->signo);
  n = mpn__fmt_str(buf, sizeof buf, n, " ");
  n = mpn__fmt_str(buf, sizeof buf, n, mpn__signal_name(s->signo));
  n = mpn__fmt_str(buf, sizeof buf, n, "\ntime_ns=");
  n = mpn__fmt_i64(buf, sizeof buf, n, s->wall_ns);
  n = mpn__fmt_str(buf, sizeof buf, n, "\nrank=");
  n = mpn__fmt_i64(buf, sizeof buf, n, mpn__self.rank);
  n = mpn__fmt_str(buf, sizeof buf, n, "\npid=");
  n = mpn__fmt_i64(buf, sizeof buf, n, mpn__self.pid);
  n = mpn__fmt_str(buf, sizeof buf, n, "\nhost=");
  n = mpn__fmt_str(buf, sizeof buf, n, mpn__self.host);
  n = mpn__fmt_str(buf, sizeof buf, n, "\nfault_address=");
  n = mpn__fmt_hex(buf, sizeof buf, n, s->fault_addr);
  n = mpn__fmt_str(buf, sizeof buf, n, "\nframes=");
  for (int i = 0; i < s->nraw; i++) {
    if (i)
      n = mpn__fmt_str(buf, sizeof buf, n, ",");
    n = mpn__fmt_hex(buf, sizeof buf, n, s->raw[i]);
  }
  n = mpn__fmt_str(buf, sizeof buf, n, "\n");
  int fd = open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  ssize_t w = write(fd, buf, n);
  (void)w;
  close(fd);
}

void mpn__record_remove(void)
{
  unlink(record_path);
}
