/* test_runtime.c - unit tests of lib/runtime/: the queue of events (events.c)
 * between the threads where failures happen and the agent.
 *
 * Under MPINOTIFY_DISABLE=1 the library is not armed, so mpn__event_submit
 * refuses (MPN_E_NOT_INITIALIZED) - the first test. The others take the
 * agent's seat: they set mpn__crash.armed and point the agent's wake pipe at
 * a pipe of their own, and the test thread does what the agent does with the
 * queue (mpn__event_take, then mpn__event_done). The queue, the wake-up and
 * the waiting are the library's own; the agent thread itself (election,
 * delivery, its wake-up loop) is not run here: the mpi.* and matrix.*
 * scenarios run it. */
#include "runtime/runtime.h"

#include "unit.h"

#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#define MS 1000000LL

/* An event whose freeing can be seen: the test holds a second reference to
 * its `extra`, which mpn__event_free drops. */
static mpn__event *probe_event(const char *kind, int fatal, int i, json_t **extra)
{
  mpn__event *ev = mpn__event_new(kind, fatal ? "critical" : "info");
  CHECK(ev != NULL);
  if (!ev)
    abort();
  ev->fatal = fatal;
  snprintf(ev->headline, sizeof ev->headline, "%s %d", kind, i);
  *extra = json_incref((json_t *)ev->extra);
  return ev;
}

static int freed(json_t *extra)
{
  return extra->refcount == 1;   /* only the test's reference is left */
}

/* ---- the agent's seat ------------------------------------------------------- */
static int seat[2], saved_wake[2];

static void seat_take(void)
{
  CHECK(!atomic_load(&mpn__crash.armed));
  CHECK(pipe2(seat, O_CLOEXEC | O_NONBLOCK) == 0);
  saved_wake[0] = mpn__crash.wake_fd[0];
  saved_wake[1] = mpn__crash.wake_fd[1];
  mpn__crash.wake_fd[0] = seat[0];
  mpn__crash.wake_fd[1] = seat[1];
  atomic_store(&mpn__crash.armed, 1);
}

static void seat_leave(void)
{
  atomic_store(&mpn__crash.armed, 0);
  mpn__crash.wake_fd[0] = saved_wake[0];
  mpn__crash.wake_fd[1] = saved_wake[1];
  close(seat[0]);
  close(seat[1]);
}

/* The wake-ups sent to the agent so far ('e': an event), or -1 for another byte. */
static int wakes(void)
{
  char buf[512];
  int n = 0;
  for (ssize_t r; (r = read(seat[0], buf, sizeof buf)) > 0;)
    for (ssize_t i = 0; i < r; i++)
      n = n < 0 || buf[i] != 'e' ? -1 : n + 1;
  return n;
}

static int wait_wake(long ms)
{
  struct pollfd p = {seat[0], POLLIN, 0};
  return poll(&p, 1, (int)ms) == 1 ? wakes() : 0;
}

/* ---- tests ------------------------------------------------------------------ */

TEST(event_new_and_sign)
{
  int64_t w0 = mpn__wall_ns(), m0 = mpn__now_ns();
  mpn__event *ev = mpn__event_new("alert", "warning");
  int64_t w1 = mpn__wall_ns(), m1 = mpn__now_ns();
  CHECK(ev != NULL);
  if (!ev)
    return;
  CHECK_STR(ev->kind, "alert");
  CHECK_STR(ev->severity, "warning");
  CHECK(ev->wall_ns >= w0 && ev->wall_ns <= w1 && ev->mono_ns >= m0 && ev->mono_ns <= m1);
  CHECK(json_is_object((json_t *)ev->extra) && json_object_size((json_t *)ev->extra) == 0);
  CHECK(!ev->fatal && !ev->nframes && !ev->channels && !ev->nchannels && !ev->signature && !ev->headline[0]);

  /* The signature: the kind, then the parts in order; a missing part is not an empty one */
  mpn__event *other = mpn__event_new("alert", "error");
  const char *xy[] = {"x", "y"}, *yx[] = {"y", "x"}, *joined[] = {"xy"}, *x_null[] = {"x", NULL},
             *null_x[] = {NULL, "x"}, *x_empty[] = {"x", ""};
  mpn__event_sign(ev, xy, 2, 0);
  mpn__event_sign(other, xy, 2, 0);
  uint64_t s_xy = ev->signature;
  CHECK(s_xy != 0 && other->signature == s_xy);   /* the severity is not part of it */
  mpn__event_sign(other, yx, 2, 0);
  CHECK(other->signature != s_xy);
  mpn__event_sign(other, joined, 1, 0);
  CHECK(other->signature != s_xy);
  mpn__event_sign(ev, x_null, 2, 0);
  mpn__event_sign(other, null_x, 2, 0);
  CHECK(ev->signature != other->signature);
  mpn__event_sign(other, x_empty, 2, 0);
  CHECK(ev->signature != other->signature);
  mpn__event *exc = mpn__event_new("exception", "error");
  mpn__event_sign(exc, xy, 2, 0);
  CHECK(exc->signature != s_xy);
  /* With the site: the top frames count (module and offset, as for a crash) */
  for (mpn__event *e = ev; e; e = e == ev ? other : NULL) {
    e->nframes = 1;
    strcpy(e->frames[0].module, "/opt/app/bin/train");
    e->frames[0].offset = 0x1200;
  }
  mpn__event_sign(ev, xy, 2, 1);
  mpn__event_sign(other, xy, 2, 1);
  CHECK(ev->signature == other->signature && ev->signature != s_xy);
  other->frames[0].offset = 0x1300;
  mpn__event_sign(other, xy, 2, 1);
  CHECK(other->signature != ev->signature);
  mpn__event_sign(other, xy, 2, 0);
  CHECK(other->signature == s_xy);   /* without the site, the frames do not count */
  mpn__event_free(ev);
  mpn__event_free(other);
  mpn__event_free(exc);
  mpn__event_free(NULL);
}

/* Not armed (MPINOTIFY_DISABLE): refused, and the event is freed all the same
 * (the caller gave it away); nothing is queued, nobody waits. */
TEST(event_submit_unarmed)
{
  CHECK(!atomic_load(&mpn__crash.armed));
  json_t *extra;
  mpn__event *ev = probe_event("alert", 0, 0, &extra);
  CHECK(mpn__event_submit(ev, 0) == MPN_E_NOT_INITIALIZED);
  CHECK(freed(extra));
  json_decref(extra);
  ev = probe_event("exit", 1, 1, &extra);
  int64_t t0 = mpn__now_ns();
  CHECK(mpn__event_submit(ev, 60000) == MPN_E_NOT_INITIALIZED);
  CHECK(mpn__now_ns() - t0 < 5000 * MS);   /* not a minute's wait */
  CHECK(freed(extra));
  json_decref(extra);
  CHECK(mpn__event_take() == NULL);
  CHECK(mpn__event_submit(NULL, 0) == MPN_E_NO_MEMORY);
}

/* Notices in the order submitted, a fatal event ahead of them; one wake-up
 * per event; the agent owns what it takes, and done frees it. */
TEST(event_queue_order)
{
  seat_take();
  json_t *x[5];
  mpn__event *n0 = probe_event("alert", 0, 0, &x[0]), *n1 = probe_event("progress", 0, 1, &x[1]);
  mpn__event *n2 = probe_event("alert", 0, 2, &x[2]), *f = probe_event("exit", 1, 3, &x[3]);
  CHECK(mpn__event_take() == NULL);
  CHECK(mpn__event_submit(n0, 0) == MPN_OK && mpn__event_submit(n1, 0) == MPN_OK);
  CHECK(wakes() == 2);
  CHECK(mpn__event_submit(n2, 0) == MPN_OK && mpn__event_submit(f, 0) == MPN_OK);
  CHECK(wakes() == 2);
  for (int i = 0; i < 4; i++)
    CHECK(!freed(x[i]));   /* queued: alive */
  mpn__event *got = mpn__event_take();
  CHECK(got == f);   /* the fatal one first: its budget runs from now */
  CHECK(!freed(x[3]));
  mpn__event_done(got);
  CHECK(freed(x[3]));
  got = mpn__event_take();
  CHECK(got == n0);
  /* Submitted while the agent handles one: behind the others */
  mpn__event *n3 = probe_event("alert", 0, 4, &x[4]);
  CHECK(mpn__event_submit(n3, 0) == MPN_OK && wakes() == 1);
  mpn__event_done(got);
  CHECK(freed(x[0]));
  /* Taking more before done: allowed, each owned by the agent until its done */
  mpn__event *a = mpn__event_take(), *b = mpn__event_take(), *c = mpn__event_take();
  CHECK(a == n1 && b == n2 && c == n3);
  CHECK(mpn__event_take() == NULL);
  CHECK(!freed(x[1]) && !freed(x[2]) && !freed(x[4]));
  mpn__event_done(a);
  mpn__event_done(b);
  mpn__event_done(c);
  for (int i = 0; i < 5; i++) {
    CHECK(freed(x[i]));
    json_decref(x[i]);
  }
  CHECK(wakes() == 0);
  seat_leave();
}

/* 256 notices at most; a fatal event still finds room (16 more); beyond,
 * the event is refused and freed. Nothing is lost or reordered on the way. */
TEST(event_queue_bounded)
{
  enum { NOTICES = 256, FATALS = 16 };
  seat_take();
  static mpn__event *notices[NOTICES], *fatals[FATALS];
  static json_t *nx[NOTICES], *fx[FATALS];
  for (int i = 0; i < NOTICES; i++) {
    notices[i] = probe_event("progress", 0, i, &nx[i]);
    CHECK(mpn__event_submit(notices[i], 0) == MPN_OK);
  }
  json_t *extra;
  mpn__event *ev = probe_event("progress", 0, NOTICES, &extra);
  CHECK(mpn__event_submit(ev, 0) == MPN_E_NO_MEMORY);   /* full for notices */
  CHECK(freed(extra));
  json_decref(extra);
  for (int i = 0; i < FATALS; i++) {
    fatals[i] = probe_event("exit", 1, i, &fx[i]);
    CHECK(mpn__event_submit(fatals[i], 0) == MPN_OK);
  }
  ev = probe_event("exit", 1, FATALS, &extra);
  CHECK(mpn__event_submit(ev, 0) == MPN_E_NO_MEMORY);   /* full for everything */
  CHECK(freed(extra));
  json_decref(extra);
  ev = probe_event("progress", 0, NOTICES + 1, &extra);
  CHECK(mpn__event_submit(ev, 0) == MPN_E_NO_MEMORY);
  CHECK(freed(extra));
  json_decref(extra);
  CHECK(wakes() == NOTICES + FATALS);   /* a refused event wakes nobody */
  /* The fatal ones first (all of them), then every notice in order */
  int seen[FATALS] = {0};
  for (int i = 0; i < FATALS; i++) {
    mpn__event *got = mpn__event_take();
    int k = 0;
    while (k < FATALS && fatals[k] != got)
      k++;
    CHECK(k < FATALS && !seen[k]);
    if (k < FATALS)
      seen[k] = 1;
    mpn__event_done(got);
  }
  for (int i = 0; i < NOTICES; i++) {
    mpn__event *got = mpn__event_take();
    CHECK(got == notices[i]);
    if (got != notices[i])
      fprintf(stderr, "notice %d: got \"%s\"\n", i, got ? got->headline : "(none)");
    mpn__event_done(got);
  }
  CHECK(mpn__event_take() == NULL);
  for (int i = 0; i < NOTICES; i++) {
    CHECK(freed(nx[i]));
    json_decref(nx[i]);
  }
  for (int i = 0; i < FATALS; i++) {
    CHECK(freed(fx[i]));
    json_decref(fx[i]);
  }
  /* Emptied, it takes events again */
  ev = probe_event("alert", 0, 0, &extra);
  CHECK(mpn__event_submit(ev, 0) == MPN_OK && mpn__event_take() == ev);
  mpn__event_done(ev);
  CHECK(freed(extra));
  json_decref(extra);
  seat_leave();
}

typedef struct submitter {
  mpn__event *ev;
  long wait_ms;
  mpn_code rc;
  int64_t took_ns;
  atomic_int returned;
  pthread_t th;
} submitter;

static void *submit_main(void *arg)
{
  submitter *s = arg;
  int64_t t0 = mpn__now_ns();
  s->rc = mpn__event_submit(s->ev, s->wait_ms);
  s->took_ns = mpn__now_ns() - t0;
  atomic_store(&s->returned, 1);
  return NULL;
}

static void submit_start(submitter *s, mpn__event *ev, long wait_ms)
{
  memset(s, 0, sizeof *s);
  s->ev = ev;
  s->wait_ms = wait_ms;
  CHECK(pthread_create(&s->th, NULL, submit_main, s) == 0);
}

/* wait_ms > 0 (a process about to end): the submitter returns once the agent
 * is done with its event, or MPN_E_TIMEOUT after wait_ms; the event stays
 * queued for the agent either way. */
TEST(event_submit_waits)
{
  seat_take();
  submitter s;
  json_t *x;
  mpn__event *ev = probe_event("exit", 1, 0, &x);

  /* Handled: returns MPN_OK after done, not before */
  submit_start(&s, ev, 8000);
  CHECK(wait_wake(8000) == 1);
  CHECK(mpn__event_take() == ev);
  mpn__sleep_ms(200);
  CHECK(!atomic_load(&s.returned));   /* still waiting while the agent handles it */
  mpn__event_done(ev);
  pthread_join(s.th, NULL);
  CHECK(s.rc == MPN_OK && s.took_ns >= 200 * MS && s.took_ns < 8000 * MS);
  CHECK(freed(x));
  json_decref(x);

  /* Never taken: MPN_E_TIMEOUT after wait_ms; the agent still gets the event later */
  ev = probe_event("exit", 1, 1, &x);
  submit_start(&s, ev, 300);
  pthread_join(s.th, NULL);
  CHECK(s.rc == MPN_E_TIMEOUT && s.took_ns >= 250 * MS && s.took_ns < 10000 * MS);
  CHECK(wakes() == 1 && !freed(x));
  CHECK(mpn__event_take() == ev);
  mpn__event_done(ev);   /* its waiter is gone: done must not touch it */
  CHECK(freed(x));
  json_decref(x);

  /* Taken, then the submitter gives up before done */
  ev = probe_event("alert", 0, 2, &x);
  submit_start(&s, ev, 300);
  CHECK(wait_wake(10000) == 1);
  CHECK(mpn__event_take() == ev);
  pthread_join(s.th, NULL);
  CHECK(s.rc == MPN_E_TIMEOUT);
  mpn__event_done(ev);
  CHECK(freed(x));
  json_decref(x);

  /* wait_ms 0: returns at once, handled or not */
  ev = probe_event("alert", 0, 3, &x);
  int64_t t0 = mpn__now_ns();
  CHECK(mpn__event_submit(ev, 0) == MPN_OK && mpn__now_ns() - t0 < 1000 * MS);
  CHECK(mpn__event_take() == ev);
  mpn__event_done(ev);
  CHECK(freed(x));
  json_decref(x);
  CHECK(mpn__event_take() == NULL);
  wakes();
  seat_leave();
}

/* The values every release since 0.1 computed: exception and alert
 * signatures users have seen must stay what they were. */
TEST(event_signature_values_pinned)
{
  mpn__event *ev = mpn__event_new("exception", "error");
  CHECK(ev != NULL);
  if (!ev)
    return;
  const char *parts[] = {"ValueError", NULL, "epoch 3"};
  mpn__event_sign(ev, parts, 3, 0);
  CHECK(ev->signature == 0x7791707c58484860ULL);
  static const struct { const char *module; uintptr_t offset; } site[] = {
    {"/nodeA/app", 0x1139}, {"/nodeA/app", 0x1232}, {"/lib/libc.so.6", 0x2724a}};
  for (int i = 0; i < 3; i++) {
    memset(&ev->frames[i], 0, sizeof ev->frames[i]);
    strcpy(ev->frames[i].module, site[i].module);
    ev->frames[i].offset = site[i].offset;
  }
  ev->nframes = 3;
  mpn__event_sign(ev, parts, 1, 1);
  CHECK(ev->signature == 0xf3c060cba5c5c3b0ULL);
  mpn__event_free(ev);
}
