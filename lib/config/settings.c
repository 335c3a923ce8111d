/* settings.c - the settings table (config.h, MPN__SETTINGS) as the public
 * mpn_setting descriptions, the parsing of a flag, a choice or a number by
 * its row, and mpn_options with its setters: every range a setter checks is
 * the table's. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const mpn_setting table[MPN__NSETTINGS] = {
#define MPN__SETTING_ROW(id, key, scope, type, lo, hi, def, choices, help) \
  {"MPINOTIFY_" #id, key, MPN__TYPE_##type, lo, hi, def, help, choices, MPN__SCOPE_##scope},
#define MPN__TYPE_TEXT "text"
#define MPN__TYPE_MS "ms"
#define MPN__TYPE_COUNT "count"
#define MPN__TYPE_FLAG "flag"
#define MPN__TYPE_CHOICE "choice"
#define MPN__TYPE_LIST "list"
#define MPN__SCOPE_FILE "file"
#define MPN__SCOPE_ENV "env"
#define MPN__SCOPE_RUN "run"
#define MPN__SCOPE_PRIVATE "private"
  MPN__SETTINGS(MPN__SETTING_ROW)
#undef MPN__SETTING_ROW
};

const mpn_setting *mpn__setting(mpn__setting_id id)
{
  return &table[id];
}

const mpn_setting *mpn_setting_at(int i)
{
  return i >= 0 && i < MPN__NSETTINGS ? &table[i] : NULL;
}

int mpn__setting_is(mpn__setting_id id, const char *type)
{
  return !strcmp(table[id].type, type);
}

const char *mpn__setting_env(mpn__setting_id id)
{
  const char *v = getenv(table[id].name);
  return v && *v ? v : NULL;
}

int mpn__setting_env_flag(mpn__setting_id id)
{
  return (int)mpn__setting_parse(id, mpn__setting_env(id), NULL, 0, NULL);
}

/* Word i of the comma-separated list (its length in *n). */
static const char *word_at(const char *list, long long i, int *n)
{
  for (; i > 0 && *list; i--)
    list += strcspn(list, ",") + (list[strcspn(list, ",")] == ',');
  *n = (int)strcspn(list, ",");
  return list;
}

void mpn__setting_say(mpn__setting_id id, long long value, char *out, size_t cap)
{
  const mpn_setting *s = &table[id];
  int n;
  size_t len = 0;
  out[0] = '\0';
  if (!strcmp(s->type, "choice")) {
    const char *w = word_at(s->choices, value, &n);
    snprintf(out, cap, "%.*s", n, w);
  } else if (!strcmp(s->type, "list")) {
    for (int i = 0; i < 63 && len < cap; i++)
      if (value & (1LL << i)) {
        const char *w = word_at(s->choices, i, &n);
        len += (size_t)snprintf(out + len, cap - len, "%s%.*s", len ? "," : "", n, w);
      }
  } else {
    snprintf(out, cap, "%lld", value);
  }
}

/* "a,b,c" as "a, b or c" */
static void say_list(const char *list, char *out, size_t cap)
{
  size_t len = 0;
  out[0] = '\0';
  for (const char *p = list; *p && len < cap;) {
    size_t n = strcspn(p, ",");
    const char *sep = p == list ? "" : p[n] ? ", " : " or ";
    len += (size_t)snprintf(out + len, cap - len, "%s%.*s", sep, (int)n, p);
    p += n + (p[n] == ',');
  }
}

/* A list's words (any of its choices, separated by commas or spaces) as a set; -1: a word it has not. */
static long long list_meaning(const mpn_setting *s, const char *v)
{
  long long set = 0;
  for (const char *p = v; *p;) {
    size_t n = strcspn(p, ", ");
    char word[32];
    snprintf(word, sizeof word, "%.*s", (int)n, p);
    int i = n ? mpn__word_index(s->choices, word, 0) : 0;
    if (i < 0 || n >= sizeof word)
      return -1;
    set |= n ? 1LL << i : 0;
    p += n + strspn(p + n, ", ");
  }
  return set ? set : s->def;
}

/* What a value of the row means, or -1 (a number: -1 is never in range). */
static long long meaning(const mpn_setting *s, const char *v)
{
  if (!strcmp(s->type, "flag"))
    return mpn__flag_word(v);
  if (!strcmp(s->type, "choice"))
    return mpn__word_index(s->choices, v, 0);
  if (!strcmp(s->type, "list"))
    return list_meaning(s, v);
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  return errno || end == v || *end || x < s->min || x > s->max ? -1 : x;
}

long long mpn__setting_parse(mpn__setting_id id, const char *v, char *err, size_t errlen, mpn_code *rc)
{
  const mpn_setting *s = &table[id];
  long long x = v && *v ? meaning(s, v) : s->def;
  if (x >= 0)
    return x;
  char takes[160], def[80];
  mpn__setting_say(id, s->def, def, sizeof def);
  if (!strcmp(s->type, "list")) {
    say_list(s->choices, takes, sizeof takes);
    mpn__add_err(err, errlen, "%s=\"%.60s\": parts are any of %s; using %s", s->name, v, takes, def);
  } else if (!strcmp(s->type, "flag") || !strcmp(s->type, "choice")) {
    say_list(s->choices ? s->choices : MPN__FLAG_ON "," MPN__FLAG_OFF, takes, sizeof takes);
    mpn__add_err(err, errlen, "%s=\"%.40s\" is not %s; using %s", s->name, v, takes, def);
  } else {
    mpn__add_err(err, errlen, "%s=\"%.40s\" is not %s in %lld..%lld; using %lld", s->name, v,
                 !strcmp(s->type, "ms") ? "a number of milliseconds" : "a whole number", s->min, s->max, s->def);
  }
  if (rc)
    *rc = MPN_E_BAD_CONFIG;
  return s->def;
}

/* ---- mpn_options ----------------------------------------------------------- */

mpn_options *mpn_options_new(void)
{
  mpn_options *o = calloc(1, sizeof *o);
  for (int i = 0; o && i < MPN__NSETTINGS; i++)
    o->number[i] = -1;
  return o;
}

void mpn_options_free(mpn_options *o)
{
  if (!o)
    return;
  for (int i = 0; i < MPN__NSETTINGS; i++)
    free(o->text[i]);
  free(o->config_text);
  free(o);
}

void mpn_free(void *p)
{
  free(p);
}

static mpn_code set_string(mpn_options *o, char **field, const char *v)
{
  if (!o || !v)
    return MPN_E_INVALID_ARGUMENT;
  char *copy = strdup(v);
  if (!copy)
    return MPN_E_NO_MEMORY;
  free(*field);
  *field = copy;
  return MPN_OK;
}

static mpn_code set_text(mpn_options *o, mpn__setting_id id, const char *v)
{
  return set_string(o, o ? &o->text[id] : NULL, v);
}

/* A number within the setting's range, or MPN_E_INVALID_ARGUMENT. */
static mpn_code set_number(mpn_options *o, mpn__setting_id id, long long v)
{
  if (!o || v < table[id].min || v > table[id].max)
    return MPN_E_INVALID_ARGUMENT;
  o->number[id] = v;
  return MPN_OK;
}

mpn_code mpn_options_set_urls(mpn_options *o, const char *urls)
{
  return set_text(o, MPN__SET_URLS, urls);
}

mpn_code mpn_options_set_job_name(mpn_options *o, const char *name)
{
  return set_text(o, MPN__SET_JOB_NAME, name);
}

mpn_code mpn_options_set_job_command(mpn_options *o, const char *command)
{
  return set_text(o, MPN__SET_JOB_COMMAND, command);
}

mpn_code mpn_options_set_config(mpn_options *o, const char *config)
{
  return set_string(o, o ? &o->config_text : NULL, config);
}

mpn_code mpn_options_set_timeout_ms(mpn_options *o, long ms)
{
  return set_number(o, MPN__SET_TIMEOUT_MS, ms);
}

mpn_code mpn_options_set_window_ms(mpn_options *o, long ms)
{
  return set_number(o, MPN__SET_WINDOW_MS, ms);
}

mpn_code mpn_options_set_exception_signature(mpn_options *o, unsigned parts)
{
  if (!o || parts == 0 || parts > (MPN_SIGNATURE_TYPE | MPN_SIGNATURE_SITE | MPN_SIGNATURE_CONTEXT |
                                   MPN_SIGNATURE_MESSAGE))
    return MPN_E_INVALID_ARGUMENT;
  o->number[MPN__SET_EXCEPTION_SIGNATURE] = parts;   /* the row's choices are the bits' order */
  return MPN_OK;
}

mpn_code mpn_options_set_alert_cooldown(mpn_options *o, long long steps)
{
  return set_number(o, MPN__SET_ALERT_COOLDOWN, steps);
}

mpn_code mpn_options_set_alert_cap(mpn_options *o, long long cap)
{
  return set_number(o, MPN__SET_ALERT_CAP, cap);
}

mpn_code mpn_options_set_progress_every(mpn_options *o, long long steps)
{
  return set_number(o, MPN__SET_PROGRESS_EVERY, steps);
}
