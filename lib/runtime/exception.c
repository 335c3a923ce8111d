/* exception.c - exceptions of other languages (Python first): the program's
 * runtime knows the type, the message and the frames of its own language,
 * which a native unwind from the reporting call cannot see (every Python
 * caller would share the ctypes call path). The frames given here are the
 * site of the signature instead, by file name and function (never absolute
 * paths: two checkouts of the same code agree). */
#include "runtime/runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SITE_FRAMES 8   /* innermost frames in the signature: deep enough to tell call paths apart */

struct mpn_exception {
  char *type, *message, *context, *text, *urls;
  json_t *frames;   /* [{"file", "line", "function", "code"}], outermost first */
  json_t *fields;   /* further members of "exception" */
};

static json_t *jopt(const char *s)
{
  return s ? mpn__jstr(s) : json_null();
}

mpn_exception *mpn_exception_new(const char *type, const char *message)
{
  if (!type || !*type)
    return NULL;
  mpn_exception *e = calloc(1, sizeof *e);
  if (!e)
    return NULL;
  e->type = strdup(type);
  e->message = message ? strdup(message) : NULL;
  e->frames = json_array();
  e->fields = json_object();
  if (!e->type || (message && !e->message) || !e->frames || !e->fields) {
    mpn_exception_free(e);
    return NULL;
  }
  return e;
}

void mpn_exception_free(mpn_exception *e)
{
  if (!e)
    return;
  free(e->type);
  free(e->message);
  free(e->context);
  free(e->text);
  free(e->urls);
  json_decref(e->frames);
  json_decref(e->fields);
  free(e);
}

static mpn_code replace(char **field, const char *v)
{
  char *copy = v ? strdup(v) : NULL;
  if (v && !copy)
    return MPN_E_NO_MEMORY;
  free(*field);
  *field = copy;
  return MPN_OK;
}

mpn_code mpn_exception_set_context(mpn_exception *e, const char *context)
{
  return e ? replace(&e->context, context) : MPN_E_INVALID_ARGUMENT;
}

mpn_code mpn_exception_set_text(mpn_exception *e, const char *text)
{
  return e ? replace(&e->text, text) : MPN_E_INVALID_ARGUMENT;
}

mpn_code mpn_exception_set_urls(mpn_exception *e, const char *urls)
{
  if (!e)
    return MPN_E_INVALID_ARGUMENT;
  if (urls) {   /* checked now, where the caller can still hear about it */
    mpn__channel *chs = NULL;
    int n = 0;
    mpn_code rc = mpn__parse_url_list(urls, &chs, &n, NULL, 0);
    for (int i = 0; i < n; i++)
      mpn__channel_free(&chs[i]);
    free(chs);
    if (rc != MPN_OK)
      return rc;
  }
  return replace(&e->urls, urls);
}

mpn_code mpn_exception_add_frame(mpn_exception *e, const char *file, long line, const char *function,
                                 const char *code)
{
  if (!e || line < 0)
    return MPN_E_INVALID_ARGUMENT;
  json_t *f = json_pack("{s:o, s:o, s:o, s:o}", "file", jopt(file), "line", line ? json_integer(line) : json_null(),
                        "function", jopt(function), "code", jopt(code));
  return f && json_array_append_new(e->frames, f) == 0 ? MPN_OK : MPN_E_NO_MEMORY;
}

mpn_code mpn_exception_set_string(mpn_exception *e, const char *key, const char *value)
{
  static const char *const reserved[] = {"type", "message", "context", "traceback", "uncaught"};
  if (!e || !key || !*key)
    return MPN_E_INVALID_ARGUMENT;
  for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
    if (!strcmp(key, reserved[i]))
      return MPN_E_INVALID_ARGUMENT;
  json_t *v = jopt(value);
  if (value && !json_is_string(v)) {   /* not UTF-8 */
    json_decref(v);
    return MPN_E_INVALID_ARGUMENT;
  }
  return json_object_set_new(e->fields, key, v) == 0 ? MPN_OK : MPN_E_NO_MEMORY;
}

static const char *base_name(const char *path)
{
  const char *slash = path ? strrchr(path, '/') : NULL;
  return slash ? slash + 1 : path;
}

/* Type, context, message (as configured) and the innermost frames as
 * "file:function": the same bug on many ranks is one signature. */
static void sign(mpn__event *ev, const mpn_exception *e)
{
  int native = json_array_size(e->frames) == 0;   /* a C caller: its own call site */
  unsigned parts = mpn__cfg()->exception_parts;
  char site[SITE_FRAMES][320];
  /* Its own channels are part of it: the same exception sent to two notifiers is two messages. */
  const char *sig[4 + SITE_FRAMES] = {parts & MPN_SIGNATURE_TYPE ? e->type : NULL,
                                      parts & MPN_SIGNATURE_CONTEXT ? e->context : NULL,
                                      parts & MPN_SIGNATURE_MESSAGE ? e->message : NULL, e->urls};
  int n = 4;
  size_t nf = json_array_size(e->frames);
  for (size_t i = nf > SITE_FRAMES ? nf - SITE_FRAMES : 0; (parts & MPN_SIGNATURE_SITE) && i < nf; i++) {
    json_t *f = json_array_get(e->frames, i);
    const char *file = base_name(json_string_value(json_object_get(f, "file")));
    const char *fn = json_string_value(json_object_get(f, "function"));
    snprintf(site[n - 4], sizeof site[0], "%s:%s", file ? file : "?", fn ? fn : "?");
    sig[n] = site[n - 4];
    n++;
  }
  mpn__event_sign(ev, sig, n, native && (parts & MPN_SIGNATURE_SITE));
}

static mpn__event *event_of(mpn__event *ev, mpn_exception *e, unsigned flags)
{
  int uncaught = (flags & MPN_EXCEPTION_UNCAUGHT) != 0;
  ev->severity = uncaught || (flags & MPN_EXCEPTION_FATAL) ? "critical" : "error";   /* fatal: the rank ends */
  ev->fatal = (flags & MPN_EXCEPTION_FATAL) != 0;
  snprintf(ev->headline, sizeof ev->headline, "%s%s", uncaught ? "uncaught " : "", e->type);
  sign(ev, e);
  mpn__mask_code(e->frames);
  json_t *x = json_pack("{s:o, s:o, s:o, s:b, s:O}", "type", mpn__jstr(e->type), "message", mpn__jmasked(e->message),
                        "context", mpn__jmasked(e->context), "uncaught", uncaught, "traceback", e->frames);
  json_object_update_missing(x, e->fields);
  json_object_set_new(ev->extra, "exception", x);
  json_object_set_new(ev->extra, "text", mpn__jmasked(e->text ? e->text : e->message));
  if (e->urls && mpn__parse_url_list(e->urls, &ev->channels, &ev->nchannels, NULL, 0) != MPN_OK)
    mpn__log_error("an exception's own channels could not all be used; the valid ones get it");
  return ev;
}

mpn_code mpn_exception_report(mpn_exception *e, unsigned flags)
{
  if (!e || (flags & ~(MPN_EXCEPTION_UNCAUGHT | MPN_EXCEPTION_FATAL))) {
    mpn_exception_free(e);
    return MPN_E_INVALID_ARGUMENT;
  }
  if (!atomic_load(&mpn__crash.armed)) {
    mpn_exception_free(e);
    return MPN_E_NOT_INITIALIZED;
  }
  mpn__event *ev = mpn__event_new("exception", "error");
  if (ev && json_array_size(e->frames) == 0)
    ev->nframes = mpn__unwind_here(ev->frames, MPN__MAX_FRAMES, 1);
  if (ev)
    event_of(ev, e, flags);
  mpn_exception_free(e);
  if (!ev)
    return MPN_E_NO_MEMORY;
  int fatal = ev->fatal;
  mpn_code rc = mpn__event_submit(ev, fatal ? mpn__cfg()->timeout_ms + 1000 : 0);
  if (fatal && (rc == MPN_OK || rc == MPN_E_TIMEOUT))   /* the exit or MPI_Abort that follows is this failure */
    atomic_store(&mpn__fatal_reported, 1);
  return rc;
}
