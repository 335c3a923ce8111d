/* secret.c - "env:NAME" and "file:/path" references, so a secret never has to
 * be written on a command line, in MPINOTIFY_URLS or in a config file. Errors
 * name the reference, never what it holds. */
#include "config/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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

/* ---- what output must never show ---------------------------------------- */

static int has_word(const char *list, const char *w)
{
  size_t n = strlen(w);
  for (const char *p = list; p && (p = strstr(p, w)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
      return 1;
  return 0;
}

/* Appends NAME of every "env:NAME" in `v` (a whole spec, an option, a header value). */
static void add_refs(char **out, const char *v)
{
  for (const char *p = v; p && (p = strstr(p, "env:")); p += 4) {
    if (p != v && p[-1] != '=' && p[-1] != ':' && p[-1] != ' ')
      continue;
    size_t n = strspn(p + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_");
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n < 255 ? n : 255), p + 4);
    if (!n || has_word(*out, name))
      continue;
    size_t len = *out ? strlen(*out) : 0;
    char *grown = realloc(*out, len + n + 2);
    if (!grown)
      return;
    snprintf(grown + len, n + 2, "%s%s", len ? " " : "", name);
    *out = grown;
  }
}

char *mpn__config_env_refs(const mpn__config *cfg)
{
  char *refs = NULL;
  for (int i = 0; i < cfg->nchannels; i++) {
    add_refs(&refs, cfg->channels[i].spec);
    for (int k = 0; k < cfg->channels[i].nopts; k++)
      add_refs(&refs, cfg->channels[i].opts[k].value);
  }
  return refs;
}

int mpn_secret_variable(const char *entry)
{
  static const char *const words[] = {"TOKEN", "SECRET", "PASSWORD", "PASSWD", "API_KEY", "ACCESS_KEY",
                                      "PRIVATE_KEY", "CREDENTIAL", NULL};
  if (!entry)
    return 0;
  size_t n = strcspn(entry, "=");
  if (!strncmp(entry, "MPINOTIFY_SECRET_", 17))
    return 1;
  for (const char *const *w = words; *w; w++) {
    size_t k = strlen(*w);
    for (size_t i = 0; i + k <= n; i++)
      if (!strncasecmp(entry + i, *w, k))
        return 1;
  }
  return 0;
}

int mpn_secret_value_maskable(const char *value)
{
  size_t n = value ? strlen(value) : 0;
  return n >= 6 && strspn(value, "0123456789") < n;
}

static void add_secret(char ***list, size_t *n, const char *value)
{
  char **grown = mpn_secret_value_maskable(value) ? realloc(*list, sizeof *grown * (*n + 2)) : NULL;
  if (!grown)
    return;
  *list = grown;
  if ((grown[*n] = strdup(value)) != NULL)
    (*n)++;
  grown[*n] = NULL;
}

char **mpn__config_secrets(const mpn__config *cfg)
{
  char **list = calloc(1, sizeof *list);
  size_t n = 0;
  add_secret(&list, &n, cfg->relay_key);
  for (char **e = environ; list && *e; e++)
    if (mpn_secret_variable(*e) && strchr(*e, '='))
      add_secret(&list, &n, strchr(*e, '=') + 1);
  char *refs = mpn__config_env_refs(cfg), *save = NULL;
  for (char *name = refs ? strtok_r(refs, " ", &save) : NULL; list && name; name = strtok_r(NULL, " ", &save))
    add_secret(&list, &n, getenv(name));
  free(refs);
  return list;
}

void mpn__config_secrets_free(char **list)
{
  for (char **p = list; p && *p; p++)
    free(*p);
  free(list);
}
