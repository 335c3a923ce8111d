/* events.c - failures and notices that are not signals (a reported exception,
 * a non-zero exit, an MPI error, an alert, progress): built on the thread
 * where they happen, with that thread's backtrace, then queued for the agent,
 * which runs them through the same election and delivery as a crash. The
 * caller returns at once unless the process is about to end. */
#include "runtime/runtime.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 256   /* notices beyond this are dropped with a count, never block the caller */
#define FATAL_ROOM 16   /* a fatal event (exit, abort) always finds room, ahead of notices */

typedef struct waiter {
  int done;
} waiter;

static struct {
  pthread_mutex_t lock;
  pthread_cond_t handled;
  mpn__event *q[QUEUE_MAX + FATAL_ROOM];
  waiter *w[QUEUE_MAX + FATAL_ROOM];
  int head, n;
  long dropped;
} Q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, {0}, 0, 0, 0};

atomic_int mpn__fatal_reported;

/* The event the agent is handling, and who waits for it (under Q.lock). */
static waiter *in_flight_waiter;
static mpn__event *in_flight;

struct json_t *mpn__jmasked(const char *s)
{
  if (!s)
    return json_null();
  char **secrets = mpn__config_secrets(mpn__cfg());
  char *masked = mpn_mask_text(s, (const char *const *)secrets);
  mpn__config_secrets_free(secrets);
  json_t *j = mpn__jstr(masked ? masked : s);
  free(masked);
  return j;
}

void mpn__mask_code(struct json_t *frames)
{
  for (size_t i = 0; i < json_array_size(frames); i++) {   /* a source line may hold a token too */
    json_t *f = json_array_get(frames, i);
    const char *code = json_string_value(json_object_get(f, "code"));
    if (code)
      json_object_set_new(f, "code", mpn__jmasked(code));
  }
}

mpn__event *mpn__event_new(const char *kind, const char *severity)
{
  mpn__event *ev = calloc(1, sizeof *ev);
  if (!ev)
    return NULL;
  ev->kind = kind;
  ev->severity = severity;
  ev->wall_ns = mpn__wall_ns();
  ev->mono_ns = mpn__now_ns();
  ev->extra = json_object();
  if (!ev->extra) {
    free(ev);
    return NULL;
  }
  return ev;
}

void mpn__event_free(mpn__event *ev)
{
  if (!ev)
    return;
  json_decref(ev->extra);
  for (int i = 0; i < ev->nchannels; i++)
    mpn__channel_free(&ev->channels[i]);
  free(ev->channels);
  free(ev);
}

static uint64_t part(uint64_t h, const char *s)
{
  return mpn__hash_sep(mpn__hash_str(h, s), 0xff);
}

void mpn__event_sign(mpn__event *ev, const char *const *parts, int nparts, int site)
{
  uint64_t h = part(MPN__HASH_SEED, ev->kind);
  for (int i = 0; i < nparts; i++)   /* a missing part hashes as itself: (X, NULL) != (NULL, X) */
    h = parts[i] ? part(h, parts[i]) : mpn__hash_sep(h, 0xfe);
  if (site)   /* the call site, as stable across ranks and runs as a crash's frames */
    h ^= mpn__signature(0, ev->frames, ev->nframes);
  ev->signature = h;
}

mpn_code mpn__event_submit(mpn__event *ev, long wait_ms)
{
  if (!ev)
    return MPN_E_NO_MEMORY;
  if (!atomic_load(&mpn__crash.armed)) {
    mpn__event_free(ev);
    return MPN_E_NOT_INITIALIZED;
  }
  waiter w = {0};
  pthread_mutex_lock(&Q.lock);
  if (Q.n >= (ev->fatal ? QUEUE_MAX + FATAL_ROOM : QUEUE_MAX)) {
    if (!Q.dropped++)
      mpn__log_error("too many reports at once: %s and later ones are dropped (the queue holds %d)", ev->kind,
                     QUEUE_MAX);
    pthread_mutex_unlock(&Q.lock);
    mpn__event_free(ev);
    return MPN_E_NO_MEMORY;
  }
  int slot;
  if (ev->fatal) {   /* ahead of every notice: its budget runs from now */
    Q.head = (Q.head + QUEUE_MAX + FATAL_ROOM - 1) % (QUEUE_MAX + FATAL_ROOM);
    slot = Q.head;
    Q.n++;
  } else {
    slot = (Q.head + Q.n++) % (QUEUE_MAX + FATAL_ROOM);
  }
  Q.q[slot] = ev;
  Q.w[slot] = wait_ms > 0 ? &w : NULL;
  pthread_mutex_unlock(&Q.lock);
  mpn__agent_wake('e');
  if (wait_ms <= 0)
    return MPN_OK;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += wait_ms / 1000;
  until.tv_nsec += (wait_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&Q.lock);
  while (!w.done && pthread_cond_timedwait(&Q.handled, &Q.lock, &until) == 0)
    ;
  int done = w.done;
  if (!done) {   /* `w` leaves our stack now: the agent must not touch it */
    for (int i = 0; i < QUEUE_MAX + FATAL_ROOM; i++)
      if (Q.w[i] == &w)
        Q.w[i] = NULL;
    if (in_flight_waiter == &w)
      in_flight_waiter = NULL;
  }
  pthread_mutex_unlock(&Q.lock);
  return done ? MPN_OK : MPN_E_TIMEOUT;
}

mpn__event *mpn__event_take(void)
{
  pthread_mutex_lock(&Q.lock);
  mpn__event *ev = NULL;
  if (Q.n > 0) {
    ev = Q.q[Q.head];
    in_flight_waiter = Q.w[Q.head];
    Q.w[Q.head] = NULL;
    in_flight = ev;
    Q.head = (Q.head + 1) % (QUEUE_MAX + FATAL_ROOM);
    Q.n--;
  }
  pthread_mutex_unlock(&Q.lock);
  return ev;
}

void mpn__event_done(mpn__event *ev)
{
  pthread_mutex_lock(&Q.lock);
  if (ev == in_flight && in_flight_waiter) {
    in_flight_waiter->done = 1;
    pthread_cond_broadcast(&Q.handled);
  }
  in_flight = NULL;
  in_flight_waiter = NULL;
  pthread_mutex_unlock(&Q.lock);
  mpn__event_free(ev);
}
