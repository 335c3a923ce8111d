/* app_words.c - see app_words.h. */
#include "app_words.h"

#include "tool.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WORDS_MAX = 300 };   /* a title's worth */

static void keep(app_words *a, int strength, const char *text, int replace_same)
{
  if (strength < a->strength || (strength == a->strength && !replace_same))
    return;
  free(a->best);
  a->best = tool_xasprintf("%.*s", WORDS_MAX, text);
  size_t n = strlen(a->best);
  while (n && isspace((unsigned char)a->best[n - 1]))
    a->best[--n] = '\0';
  a->strength = strength;
}

static int starts(const char *s, const char *prefix)
{
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "ValueError: bad input", "KeyError", "mpi4py.MPI.Exception: ...": a dotted
 * name, then ':' or the end of the line. */
static int python_exception_line(const char *s)
{
  size_t n = 0;
  while (isalnum((unsigned char)s[n]) || s[n] == '_' || s[n] == '.')
    n++;
  return n > 0 && isalpha((unsigned char)s[0]) && (s[n] == ':' || !s[n]);
}

static int python_line(app_words *a, const char *line)
{
  if (!strcmp(line, "Traceback (most recent call last):")) {
    a->in_traceback = 1;
    return 1;
  }
  if (!a->in_traceback)
    return 0;
  if (!*line || isspace((unsigned char)line[0]))
    return 1;   /* a frame, its source line, a caret line */
  a->in_traceback = 0;
  if (python_exception_line(line))
    keep(a, 2, line, a->chained);
  a->chained = 0;
  return 1;
}

static void cxx_line(app_words *a, const char *line)
{
  const char *t = strstr(line, "terminate called after throwing an instance of '");
  if (t) {
    free(a->throwing);
    t += strlen("terminate called after throwing an instance of '");
    a->throwing = tool_xasprintf("%.*s", (int)strcspn(t, "'"), t);
    return;
  }
  const char *w = strstr(line, "what():");
  if (a->throwing && w) {
    w += strlen("what():");
    w += strspn(w, " ");
    char *text = tool_xasprintf("%s: %s", a->throwing, w);
    keep(a, 2, text, 0);
    free(text);
  } else if (a->throwing) {
    char *text = tool_xasprintf("terminate called after throwing an instance of '%s'", a->throwing);
    keep(a, 2, text, 0);
    free(text);
  }
  free(a->throwing);
  a->throwing = NULL;
}

void app_words_line(app_words *a, const char *line)
{
  if (strstr(line, "mpinotify["))
    return;   /* our own diagnostics are not the application's */
  if (a->throwing || strstr(line, "terminate called after throwing")) {
    cxx_line(a, line);
    return;
  }
  if (starts(line, "During handling of the above exception") || starts(line, "The above exception was the direct")) {
    a->chained = 1;
    return;
  }
  if (python_line(a, line))
    return;
  const char *f = strstr(line, "Fortran runtime error:");
  if (f && a->fortran_at) {   /* gfortran said where first: "At line 12 of file solver.f90" */
    char *text = tool_xasprintf("%s (%s)", f, a->fortran_at);
    keep(a, 2, text, 0);
    free(text);
  } else if (f) {
    keep(a, 2, f, 0);
  }
  free(a->fortran_at);
  a->fortran_at = NULL;
  if (f)
    return;
  char file[256];
  int at_line;
  if (sscanf(line, "At line %d of file %255s", &at_line, file) == 2) {
    a->fortran_at = tool_xasprintf("%s:%d", file, at_line);
    return;
  }
  const char *s = line + strspn(line, " \t");
  if (starts(s, "ERROR:") || starts(s, "ERROR ") || starts(s, "Error:"))
    keep(a, 1, s, 0);
}

void app_words_free(app_words *a)
{
  free(a->best);
  free(a->throwing);
  free(a->fortran_at);
  a->best = a->throwing = a->fortran_at = NULL;
}
