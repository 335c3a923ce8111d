/* secret.c - "env:NAME" and "file:/path" references, so a secret never has to
 * be written on a command line, in MPINOTIFY_URLS or in a config file. Errors
 * name the reference, never what it holds. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SECRET_FILE 65536

int mpn__is_ref(const char *v)
{
  return v && (!strncmp(v, "env:", 4) || !strncmp(v, "file:", 5));
}

/* A reference's name or path as an error may show it. A URL after "env:" or
 * "file:" (env:smtp://user:password@host) is a channel written there by
 * mistake and may hold a secret: `what` names it, masked, instead. */
static const char *shown(const char *name)
{
  return strstr(name, "://") || strchr(name, '@') ? "<a URL, not shown>" : name;
}

static char *read_small_file(const char *path, const char *what, char *err, size_t errlen)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    mpn__add_err(err, errlen, "%s: cannot read file:%s: %s", what, shown(path), strerror(errno));
    return NULL;
  }
  char *buf = malloc(MAX_SECRET_FILE + 1);
  size_t len = 0;
  ssize_t n = 0;
  while (buf && len < MAX_SECRET_FILE && (n = read(fd, buf + len, MAX_SECRET_FILE - len)) > 0)
    len += (size_t)n;
  close(fd);
  if (!buf || n < 0) {
    mpn__add_err(err, errlen, "%s: cannot read file:%s", what, shown(path));
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
    buf[--len] = '\0';   /* editors and `echo` add a newline */
  return buf;
}

char *mpn__resolve_ref(const char *v, const char *what, char *err, size_t errlen)
{
  if (!v)
    return NULL;
  if (!strncmp(v, "env:", 4)) {
    const char *val = getenv(v + 4);
    if (!v[4] || !val || !*val) {
      mpn__add_err(err, errlen, "%s: environment variable %s (from env:%s) is not set", what, shown(v + 4),
                   shown(v + 4));
      return NULL;
    }
    return strdup(val);
  }
  if (!strncmp(v, "file:", 5))
    return read_small_file(v + 5, what, err, errlen);
  return strdup(v);
}
