/* util.c - time and string helpers. The fmt_* functions run in the signal
 * handler: they touch nothing but their arguments. */
#include "base/base.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

mpn__self_t mpn__self = {.rank = -1, .world_size = 1};

int64_t mpn__now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mpn__wall_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void mpn__sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

size_t mpn__strlcpy(char *dst, const char *src, size_t size)
{
  size_t n = strlen(src);
  if (size) {
    size_t k = n < size - 1 ? n : size - 1;
    memcpy(dst, src, k);
    dst[k] = '\0';
  }
  return n;
}

size_t mpn__fmt_str(char *buf, size_t cap, size_t len, const char *s)
{
  while (*s && len + 1 < cap)
    buf[len++] = *s++;
  if (cap)
    buf[len < cap ? len : cap - 1] = '\0';
  return len;
}

static size_t fmt_digits(char *buf, size_t cap, size_t len, uint64_t v, unsigned base)
{
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (n && len + 1 < cap)
    buf[len++] = tmp[--n];
  if (cap)
    buf[len < cap ? len : cap - 1] = '\0';
  return len;
}

size_t mpn__fmt_u64(char *buf, size_t cap, size_t len, uint64_t v)
{
  return fmt_digits(buf, cap, len, v, 10);
}

size_t mpn__fmt_i64(char *buf, size_t cap, size_t len, int64_t v)
{
  if (v < 0) {
    len = mpn__fmt_str(buf, cap, len, "-");
    return fmt_digits(buf, cap, len, (uint64_t)0 - (uint64_t)v, 10);
  }
  return fmt_digits(buf, cap, len, (uint64_t)v, 10);
}

size_t mpn__fmt_hex(char *buf, size_t cap, size_t len, uint64_t v)
{
  len = mpn__fmt_str(buf, cap, len, "0x");
  return fmt_digits(buf, cap, len, v, 16);
}

void mpn__iso8601(int64_t wall_ns, char *out, size_t cap)
{
  time_t secs = (time_t)(wall_ns / 1000000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, cap, "%s.%03dZ", base, (int)((wall_ns / 1000000) % 1000));
}

mpn_code mpn_format_time(long long ms, char *out, size_t outlen)
{
  if (!out || !outlen)
    return MPN_E_INVALID_ARGUMENT;
  out[0] = '\0';
  if (ms < 0 || ms > INT64_MAX / 1000000)
    return MPN_E_INVALID_ARGUMENT;
  char buf[64];
  mpn__iso8601((int64_t)ms * 1000000, buf, sizeof buf);
  return mpn__strlcpy(out, buf, outlen) < outlen ? MPN_OK : MPN_E_BUFFER_TOO_SMALL;
}

/* n decimal digits at *p (advanced past them); -1 when they are not there. */
static int digits(const char **p, int n)
{
  int v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (**p < '0' || **p > '9')
      return -1;
    v = v * 10 + (**p - '0');
  }
  return v;
}

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" */
mpn_code mpn_parse_time(const char *text, long long *ms)
{
  if (!text || !ms)
    return MPN_E_INVALID_ARGUMENT;
  const char *p = text;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int f[6];
  static const char seps[] = "--T::";
  static const int width[] = {4, 2, 2, 2, 2, 2};
  for (int i = 0; i < 6; i++) {
    if ((f[i] = digits(&p, width[i])) < 0 || (i < 5 && *p++ != seps[i]))
      return MPN_E_INVALID_ARGUMENT;
  }
  long long msec = 0;
  if (*p == '.') {
    int n = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, n++)
      if (n < 3)
        msec = msec * 10 + (*p - '0');
    if (n == 0)
      return MPN_E_INVALID_ARGUMENT;
    for (; n < 3; n++)
      msec *= 10;
  }
  if (strcmp(p, "Z") != 0 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 ||
      f[5] > 60)
    return MPN_E_INVALID_ARGUMENT;
  tm.tm_year = f[0] - 1900;
  tm.tm_mon = f[1] - 1;
  tm.tm_mday = f[2];
  tm.tm_hour = f[3];
  tm.tm_min = f[4];
  tm.tm_sec = f[5];
  time_t secs = timegm(&tm);
  if (secs == (time_t)-1 && f[0] != 1969)
    return MPN_E_INVALID_ARGUMENT;
  *ms = (long long)secs * 1000 + msec;
  return MPN_OK;
}

void mpn__buf_add(mpn__buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0 || !b->p)
    return;
  if (b->len + (size_t)need + 1 > b->cap) {
    size_t cap = (b->len + (size_t)need + 1) * 2;
    char *grown = realloc(b->p, cap);
    if (!grown)
      return;   /* keep what fitted: a shorter message beats none */
    b->p = grown;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)need;
}

mpn__buf mpn__buf_make(size_t hint)
{
  size_t cap = hint ? hint : 1;
  mpn__buf b = {malloc(cap), 0, cap};
  if (b.p)
    b.p[0] = '\0';
  else
    b.cap = 0;
  return b;
}

/* The library's threads (agent, engine, relay server, custom channels) take
 * none of the process's asynchronous signals: those belong to the
 * application. Faults stay unblocked: a blocked SIGSEGV makes the kernel kill
 * the process without running any handler. The mask is set around
 * pthread_create, so the thread has it from its first instruction. */
int mpn__thread_start(pthread_t *t, const char *name, void *(*fn)(void *), void *arg, int detached, size_t stack)
{
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
  sigset_t all, old;
  sigfillset(&all);
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
    sigdelset(&all, faults[i]);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, detached ? PTHREAD_CREATE_DETACHED : PTHREAD_CREATE_JOINABLE);
  if (stack)
    pthread_attr_setstacksize(&attr, stack);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t local;
  int rc = pthread_create(t ? t : &local, &attr, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  if (rc == 0 && name)   /* named before it runs: top -H, gdb and the tests find it at once */
    pthread_setname_np(t ? *t : local, name);
  return rc;
}
int mpn__mpi_world_rank_from_env(void)
{
  static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && *v)
      return atoi(v);
  }
  return -1;
}

int mpn__world_size_from_env(void)
{
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0)
      return atoi(v);
  }
  return 0;
}

/* Runs between fork and exec (async-signal-safe). */
void mpn__close_between(unsigned lo, unsigned hi)
{
  if (lo > hi || close_range(lo, hi, 0) == 0)
    return;
  long max = sysconf(_SC_OPEN_MAX);
  unsigned top = max > 0 && (unsigned long)max - 1 < hi ? (unsigned)max - 1 : hi;
  for (unsigned fd = lo; fd <= top && fd < 65536; fd++)
    close((int)fd);
}
