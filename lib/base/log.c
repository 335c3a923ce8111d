/* log.c - one-line diagnostics on stderr, prefixed with the rank. Callers
 * pass masked URLs only; nothing here knows a secret. */
#include "base/base.h"

#include <stdio.h>
#include <unistd.h>

atomic_int mpn__log_debug_on;

static void vlog(const char *level, const char *fmt, va_list ap)
{
  char line[1024];
  int n;
  if (mpn__self.rank >= 0)
    n = snprintf(line, sizeof line, "mpinotify[rank %d pid %d]: %s", mpn__self.rank, (int)getpid(), level);
  else
    n = snprintf(line, sizeof line, "mpinotify[pid %d]: %s", (int)getpid(), level);
  if (n < 0 || (size_t)n >= sizeof line)
    n = 0;
  int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
  size_t len = (size_t)n + (m > 0 ? (size_t)m : 0);
  if (len > sizeof line - 2)
    len = sizeof line - 2;
  line[len++] = '\n';
  /* One write per line so lines of several ranks never interleave. */
  ssize_t w = write(STDERR_FILENO, line, len);
  (void)w;
}

void mpn__log_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vlog("error: ", fmt, ap);
  va_end(ap);
}

void mpn__log_warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vlog("warning: ", fmt, ap);
  va_end(ap);
}

void mpn__log_debug(const char *fmt, ...)
{
  if (!atomic_load_explicit(&mpn__log_debug_on, memory_order_relaxed))
    return;
  va_list ap;
  va_start(ap, fmt);
  vlog("", fmt, ap);
  va_end(ap);
}
