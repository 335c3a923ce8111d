/* notices.c - what the program reports itself (mpinotify.h): caught
 * exceptions, alerts with cooldown and cap, progress. Each builds an event
 * on the calling thread (with its backtrace) and queues it (events.c). */
#include "runtime/runtime.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OWN_FRAMES 1   /* the public function itself: the site is its caller */
#define FFI_DEPTH 4    /* how deep a foreign-function call (ctypes, cffi) sits under its caller */

/* The caller's native frames, unless it called through libffi (Python's
 * ctypes): those are the interpreter's, the same for every Python call site,
 * and say nothing a reader could use. */
__attribute__((noinline)) static int caller_frames(mpn__frame *f)
{
  int n = mpn__unwind_here(f, MPN__MAX_FRAMES, OWN_FRAMES + 1);
  for (int i = 0; i < n && i < FFI_DEPTH; i++) {
    const char *base = strrchr(f[i].module, '/') ? strrchr(f[i].module, '/') + 1 : f[i].module;
    if (!strncmp(base, "libffi.", 7))
      return 0;
  }
  return n;
}

mpn_code mpn_report_exception(const char *context, const char *type, const char *message)
{
  if (!type || !*type)
    return MPN_E_INVALID_ARGUMENT;
  if (!atomic_load(&mpn__crash.armed))
    return MPN_E_NOT_INITIALIZED;
  mpn__event *ev = mpn__event_new("exception", "error");
  if (!ev)
    return MPN_E_NO_MEMORY;
  ev->nframes = caller_frames(ev->frames);
  snprintf(ev->headline, sizeof ev->headline, "%s", type);
  unsigned parts = mpn__cfg()->exception_parts;
  const char *sig[] = {parts & MPN_SIGNATURE_TYPE ? type : NULL, parts & MPN_SIGNATURE_CONTEXT ? context : NULL,
                       parts & MPN_SIGNATURE_MESSAGE ? message : NULL};
  mpn__event_sign(ev, sig, 3, (parts & MPN_SIGNATURE_SITE) != 0);
  json_object_set_new(ev->extra, "exception", json_pack("{s:o, s:o, s:o, s:b}", "type", mpn__jstr(type), "message",
                                                        mpn__jmasked(message), "context", mpn__jmasked(context),
                                                        "uncaught", 0));
  json_object_set_new(ev->extra, "text", mpn__jmasked(message));
  return mpn__event_submit(ev, 0);
}

/* ---- alerts ------------------------------------------------------------------ */

#define MAX_DETECTORS 64

static struct {
  pthread_mutex_t lock;
  struct {
    char detector[64];
    int critical;
    long long step;
  } last[MAX_DETECTORS * 2];
  int n;
  long raised;
} A = {PTHREAD_MUTEX_INITIALIZER, {{{0}, 0, 0}}, 0, 0};

/* 1 when (detector, severity) may raise now; records it. Under A.lock. */
static int allowed(const char *detector, int critical, long long step)
{
  if (A.raised >= mpn__cfg()->alert_cap)
    return 0;
  int i = 0;
  while (i < A.n && (A.last[i].critical != critical || strcmp(A.last[i].detector, detector)))
    i++;
  if (i < A.n && step - A.last[i].step < mpn__cfg()->alert_cooldown && step >= A.last[i].step)
    return 0;   /* a warning's cooldown never mutes a critical: they are separate entries */
  if (i == A.n && A.n < (int)(sizeof A.last / sizeof A.last[0]))
    A.n++;
  if (i < A.n) {
    mpn__strlcpy(A.last[i].detector, detector, sizeof A.last[i].detector);
    A.last[i].critical = critical;
    A.last[i].step = step;
  }
  A.raised++;
  return 1;
}

static json_t *metrics_of(const mpn_metric *m, size_t n)
{
  json_t *o = json_object();
  for (size_t i = 0; i < n; i++)
    if (m[i].name)   /* JSON has no NaN: a nan_loss alert must still show the value, as a string */
      json_object_set_new(o, m[i].name, isfinite(m[i].value) ? json_real(m[i].value)
                                        : json_string(isnan(m[i].value) ? "nan" : m[i].value > 0 ? "inf" : "-inf"));
  return o;
}

mpn_code mpn_alert(const char *detector, const char *severity, long long step, const char *message,
                   const mpn_metric *metrics, size_t nmetrics, const char *recommendation)
{
  int critical = severity && !strcmp(severity, "critical");
  if (!detector || !*detector || strlen(detector) >= sizeof A.last[0].detector || !severity ||
      (!critical && strcmp(severity, "warning")) || !recommendation || !*recommendation || (nmetrics && !metrics))
    return MPN_E_INVALID_ARGUMENT;   /* detector: 1..63 characters */
  if (!atomic_load(&mpn__crash.armed))
    return MPN_E_NOT_INITIALIZED;
  pthread_mutex_lock(&A.lock);
  int ok = allowed(detector, critical, step);
  pthread_mutex_unlock(&A.lock);
  if (!ok)
    return MPN_E_MUTED;
  mpn__event *ev = mpn__event_new("alert", critical ? "critical" : "warning");
  if (!ev) {
    pthread_mutex_lock(&A.lock);
    A.raised--;   /* not raised after all: it does not count against the cap */
    pthread_mutex_unlock(&A.lock);
    return MPN_E_NO_MEMORY;
  }
  ev->nframes = caller_frames(ev->frames);
  snprintf(ev->headline, sizeof ev->headline, "%s alert %s at step %lld", severity, detector, step);
  char stepbuf[32];
  snprintf(stepbuf, sizeof stepbuf, "%lld", step);
  const char *sig[] = {detector, severity, stepbuf};
  mpn__event_sign(ev, sig, 3, 0);
  json_object_set_new(ev->extra, "alert",
                      json_pack("{s:o, s:s, s:I, s:o, s:o, s:o}", "detector", mpn__jstr(detector), "severity", severity,
                                "step", (json_int_t)step, "message", mpn__jstr(message), "metrics",
                                metrics_of(metrics, nmetrics), "recommendation", mpn__jstr(recommendation)));
  char *text = NULL;
  if (asprintf(&text, "%s\nRecommendation: %s", message ? message : "", recommendation) >= 0) {
    json_object_set_new(ev->extra, "text", mpn__jstr(text));
    free(text);
  }
  return mpn__event_submit(ev, 0);
}

/* ---- progress ---------------------------------------------------------------- */

mpn_code mpn_progress(long long step, long long total, const char *message)
{
  if (step < 0 || total < 0)
    return MPN_E_INVALID_ARGUMENT;
  if (!atomic_load(&mpn__crash.armed))
    return MPN_E_NOT_INITIALIZED;
  mpn__waits_progress();   /* a rank that reports progress is not hung, whatever it reports */
  long long every = mpn__cfg()->progress_every;
  if (every <= 0 || step == 0 || step % every)
    return MPN_OK;   /* off, or not a reporting step (step 0 has nothing to say) */
  mpn__event *ev = mpn__event_new("progress", "info");
  if (!ev)
    return MPN_E_NO_MEMORY;
  if (total)
    snprintf(ev->headline, sizeof ev->headline, "step %lld of %lld", step, total);
  else
    snprintf(ev->headline, sizeof ev->headline, "step %lld", step);
  char stepbuf[32];
  snprintf(stepbuf, sizeof stepbuf, "%lld", step);
  const char *sig[] = {stepbuf};
  mpn__event_sign(ev, sig, 1, 0);
  json_object_set_new(ev->extra, "progress", json_pack("{s:I, s:o, s:o}", "step", (json_int_t)step, "total",
                                                       total ? json_integer(total) : json_null(), "message",
                                                       mpn__jstr(message)));
  json_object_set_new(ev->extra, "text", mpn__jmasked(message));
  return mpn__event_submit(ev, 0);
}
