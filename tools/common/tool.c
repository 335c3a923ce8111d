/* tool.c - helpers shared by the mpinotify tools; see tool.h. */
#include "tool.h"

#include <ctype.h>
#include <getopt.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *tool_name = "mpinotify";

/* Matches sysexits.h's EX_SOFTWARE without depending on that header. */
enum { TOOL_EXIT_OOM = 70 };

void tool_warn(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", tool_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

bool tool_parse_long(const char *s, long *out)
{
  /* strtol alone accepts " 12", "+12" and "12abc"; an option value must be just digits. */
  if (s == NULL || *s == '\0')
    return false;
  const char *p = (*s == '-') ? s + 1 : s;
  if (!isdigit((unsigned char)*p))
    return false;
  errno = 0;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0')
    return false;
  *out = v;
  return true;
}

static void out_of_memory(void)
{
  fprintf(stderr, "%s: out of memory\n", tool_name);
  exit(TOOL_EXIT_OOM);
}

void *tool_xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    out_of_memory();
  return p;
}

char *tool_xstrdup(const char *s)
{
  char *p = strdup(s);
  if (p == NULL)
    out_of_memory();
  return p;
}

char *tool_xasprintf(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *p = NULL;
  int n = vasprintf(&p, fmt, ap);
  va_end(ap);
  if (n < 0)
    out_of_memory();
  return p;
}

char *tool_join(char *const *items, size_t n, const char *sep)
{
  size_t seplen = strlen(sep), len = 1;
  for (size_t i = 0; i < n; i++)
    len += strlen(items[i]) + seplen;
  char *out = tool_xmalloc(len), *p = out;
  for (size_t i = 0; i < n; i++) {
    if (i > 0)
      p = stpcpy(p, sep);
    p = stpcpy(p, items[i]);
  }
  *p = '\0';
  return out;
}

const char *tool_basename(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

long tool_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

long long tool_wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tool_print_version(void)
{
  const char *lib = mpn_library_path();
  printf("%s %s (libmpinotify %s%s%s)\n", tool_name, MPN_VERSION_STRING, mpn_version(),
         lib ? " at " : "", lib ? lib : "");
}

char *tool_shown_arg(const char *arg)
{
  char *masked = mpn_mask_text(arg, NULL);
  if (masked == NULL)
    out_of_memory();
  char *shown = tool_xstrdup(masked);
  mpn_free(masked);
  return shown;
}

int tool_usage_error(void (*usage)(FILE *), const char *what, const char *arg)
{
  char *shown = arg ? tool_shown_arg(arg) : NULL;
  tool_warn("%s%s", what, shown ? shown : "");
  free(shown);
  usage(stderr);
  return 2;
}

int tool_option_error(void (*usage)(FILE *), int c, char **argv)
{
  if (c == ':')
    return tool_usage_error(usage, "missing value for option ", argv[optind - 1]);
  if (optopt)   /* a short option; argv[optind - 1] may be an earlier argument */
    return tool_usage_error(usage, "unknown option -", (char[]){(char)optopt, '\0'});
  return tool_usage_error(usage, "unknown option ", argv[optind - 1]);
}

char *tool_urls_with(char *const *urls, size_t n)
{
  const char *env = getenv("MPINOTIFY_URLS");
  if (env == NULL)
    env = "";
  char *added = tool_join(urls, n, " ");
  char *all = tool_xasprintf("%s%s%s", env, *env && n ? " " : "", added);
  free(added);
  return all;
}

void tool_warn_lines(const char *text)
{
  for (const char *p = text; *p;) {
    size_t n = strcspn(p, "\n");
    if (n > 0)
      tool_warn("%.*s", (int)n, p);
    p += n + (p[n] == '\n');
  }
}

/* ---- help texts ------------------------------------------------------------- */

const mpn_setting *tool_setting(const char *name)
{
  const mpn_setting *s;
  for (int i = 0; (s = mpn_setting_at(i)) != NULL; i++)
    if (strcmp(s->name, name) == 0)
      return s;
  return NULL;
}

static bool has_range(const mpn_setting *s)
{
  return strcmp(s->type, "ms") == 0 || strcmp(s->type, "count") == 0;
}

char *tool_setting_range(const char *name)
{
  const mpn_setting *s = tool_setting(name);
  if (s == NULL || !has_range(s))
    return tool_xasprintf("(%s)", name);
  return tool_xasprintf("%lld..%lld%s (%s; default %lld)", s->min, s->max, strcmp(s->type, "ms") ? "" : " ms",
                        s->name, s->def);
}

char *tool_setting_help(const mpn_setting *s)
{
  if (has_range(s))
    return tool_xasprintf("%s: %lld..%lld%s, default %lld", s->help, s->min, s->max,
                          strcmp(s->type, "ms") ? "" : " ms", s->def);
  if (strcmp(s->type, "flag") == 0)
    return tool_xasprintf("%s: 1 (on) or 0, default %lld", s->help, s->def);
  return tool_xstrdup(s->help);
}

/* Appends `part` (consumed) to *list after `sep`. */
static void add_to(char **list, const char *sep, char *part)
{
  char *next = tool_xasprintf("%s%s%s", *list, **list ? sep : "", part);
  free(*list);
  free(part);
  *list = next;
}

char *tool_kind_forms(void)
{
  char *names = tool_xstrdup(""), *others = tool_xstrdup("");
  const mpn_channel_kind *k;
  for (int i = 0; (k = mpn_channel_kind_at(i)) != NULL; i++) {
    char *plus = tool_xasprintf("%s+https://", k->name);
    if (strncmp(k->form, plus, strlen(plus)) == 0)
      add_to(&names, " ", tool_xstrdup(k->name));
    else
      add_to(&others, ", ", tool_xstrdup(k->form));
    free(plus);
  }
  char *all = tool_xasprintf("KIND+https://... (KIND: %s)%s%s", names, *others ? ", " : "", others);
  free(names);
  free(others);
  return all;
}

enum { HELP_WIDTH = 79 };

void tool_help_item(FILE *out, int col, const char *label, const char *text)
{
  int pos = fprintf(out, "  %s", label);
  pos += fprintf(out, "%*s", pos + 2 > col ? 2 : col - pos, "");
  bool first = true;   /* of its line */
  for (const char *p = text + strspn(text, " "); *p; p += strspn(p, " ")) {
    int n = (int)strcspn(p, " ");
    if (!first && pos + 1 + n >= HELP_WIDTH) {
      pos = fprintf(out, "\n%*s", col, "") - 1;
      first = true;
    }
    pos += fprintf(out, "%s%.*s", first ? "" : " ", n, p);
    first = false;
    p += n;
  }
  fputc('\n', out);
}
