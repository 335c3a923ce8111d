/* fuzz_common.h - what every libFuzzer target of tests/fuzz shares (one
 * target per .c file, each includes this once).
 *
 * The targets link the library's objects (instrumented for coverage) and
 * reach its internal mpn__ functions through the layer headers of lib/, as tests/unit
 * does. An invariant that fails calls fuzz_fail(), which aborts: libFuzzer
 * then saves the input and prints the stack. */
#ifndef MPN_FUZZ_COMMON_H
#define MPN_FUZZ_COMMON_H

#include "launcher/launcher.h"   /* every layer a fuzzer reaches; not mpi/ (no MPI headers here) */

#include <curl/curl.h>   /* the judges and requests fuzz_format and fuzz_judge build */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* A fuzzer is a test driver: the library must never arm itself in it (its
 * signal handlers and agent thread would fight libFuzzer's). Linked with
 * --export-dynamic-symbol=mpn_api_only_program (tests/fuzz/CMakeLists.txt). */
MPN_API_ONLY_PROGRAM;

__attribute__((noreturn, format(printf, 1, 2))) static void fuzz_fail(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz invariant violated: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

#define FUZZ_CHECK(cond)                                                                                      \
  do {                                                                                                        \
    if (!(cond))                                                                                              \
      fuzz_fail("%s:%d: %s", __FILE__, __LINE__, #cond);                                                     \
  } while (0)

/* The input as a C string: a malloc'd copy cut at the first NUL. */
__attribute__((unused)) static char *fuzz_cstr(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);
  if (!s)
    abort();
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* "file:/path" references make the library open() whatever path the input
 * names. A FIFO, a socket, a terminal or /dev/kmsg would block the fuzzer, so
 * the targets are linked with -Wl,--wrap=open and only regular files,
 * directories and the harmless memory devices (/dev/null, zero, full,
 * random, urandom) open. */
int __real_open(const char *path, int flags, ...);
int __wrap_open(const char *path, int flags, ...)
{
  mode_t mode = 0;
  if (flags & (O_CREAT | O_TMPFILE)) {
    va_list ap;
    va_start(ap, flags);
    mode = (mode_t)va_arg(ap, int);
    va_end(ap);
  }
  struct stat st;
  if (!(flags & O_CREAT) && stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) &&
      !(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 &&
        (minor(st.st_rdev) == 3 || minor(st.st_rdev) == 5 || minor(st.st_rdev) == 7 ||
         minor(st.st_rdev) == 8 || minor(st.st_rdev) == 9))) {
    errno = EACCES;
    return -1;
  }
  return __real_open(path, flags, mode);
}

/* A clean, private environment: no MPINOTIFY_* of the caller's, the library
 * disabled, a spool of our own, and two variables the corpora's env:
 * references name. */
static char fuzz_spool[128];

static void fuzz_remove_spool(void)
{
  rmdir(fuzz_spool);   /* empty: nothing here ever spools */
}

static void fuzz_clean_env(void)
{
  extern char **environ;
  for (int again = 1; again;) {
    again = 0;
    for (char **e = environ; e && *e; e++)
      if (!strncmp(*e, "MPINOTIFY_", 10)) {
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)strcspn(*e, "="), *e);
        unsetenv(name);
        again = 1;
        break;
      }
  }
  setenv("MPINOTIFY_DISABLE", "1", 1);
  snprintf(fuzz_spool, sizeof fuzz_spool, "/tmp/mpinotify-fuzz-%u-%d", (unsigned)getuid(), (int)getpid());
  if (mkdir(fuzz_spool, 0700) == 0)
    atexit(fuzz_remove_spool);
  setenv("MPINOTIFY_SPOOL", fuzz_spool, 1);
  setenv("MPN_FUZZ_TOKEN", "fuzz-token-0123456789", 1);
  setenv("MPN_FUZZ_URL", "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX", 1);
}

#endif
