/* queue.c - the delivery engine: one thread, one set of transfers
 * (channels/transfer.c), every
 * (message, channel) pair an item with its own retries, so a failing channel
 * never delays another. Items are written ahead to the spool by the caller
 * (spool.c) before the thread sees them; the thread sends, reads the answer
 * through the channel's judge, retries with backoff (honouring Retry-After),
 * spaces messages per channel by the service's rate limit, hands items to the
 * launcher's relay when the direct route fails, and gives up at the batch's
 * deadline, leaving the spooled copy for a later flush. One mutex guards all
 * engine state; it is released only while waiting in mpn__xfers_wait. */
#include "deliver/engine.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct engine {
  pthread_mutex_t lock;
  pthread_cond_t done;       /* an item finished */
  mpn__xfers *xfers;
  mpn__batch *batches;       /* every batch the engine still owns */
  int started;
  pid_t pid;
} E = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

static void wake_engine(void)
{
  mpn__xfers_wake(E.xfers);
}

static void attempt_free(mpn__attempt *a)
{
  mpn__attempt_close(E.xfers, a);
}

/* Ends an item for good; `delivered` removes its spooled copy. A console copy
 * the relay was to hold and never took is printed here after all: a console
 * has nothing to retry and must not stay silent. */
static void finish(mpn__item *it, mpn_code code)
{
  if (code != MPN_OK && it->ch.kind->local && it->route != MPN__ROUTE_LOCAL) {
    it->route = MPN__ROUTE_LOCAL;
    code = it->ch.kind->local(&it->ch, it->batch->msg);
  }
  attempt_free(&it->a);
  it->result = code;
  it->state = MPN__ITEM_DONE;
  mpn__spool_done(it->spool_fd, it->spool_path, code == MPN_OK);
  if (code != MPN_OK && it->spool_fd < 0)
    it->spool_path[0] = '\0';   /* nothing was kept */
  it->spool_fd = -1;
  it->batch->pending--;
  pthread_cond_broadcast(&E.done);
  if (code == MPN_OK)
    mpn__log_debug("%s %s to %s (%d attempt%s)", it->route == MPN__ROUTE_RELAY ? "handed to the relay:" : "delivered",
                   it->batch->id, it->ch.masked, it->attempts, it->attempts == 1 ? "" : "s");
  else if (it->batch->log_failures)
    mpn__log_error("delivery of %s to %s failed: %s%s%s", it->batch->id, it->ch.masked, it->last.detail,
                   it->spool_path[0] ? "; kept in " : "", it->spool_path);
  else
    mpn__log_debug("gave up on %s to %s: %s", it->batch->id, it->ch.masked, it->last.detail);
}

static long remaining_ms(const mpn__batch *b, int64_t now)
{
  return (long)((b->deadline - now) / 1000000);
}

static int start_custom(mpn__item *it, int64_t now)
{
  if (mpn__custom_start(it, &E.lock, wake_engine) != 0)
    return -1;
  it->attempts++;
  it->state = MPN__ITEM_RUNNING;
  mpn__rate_note(&it->ch, now);
  return 0;
}

/* A held console copy the relay did not take: printed by the rank after all. */
static int print_local(mpn__item *it)
{
  it->attempts++;
  mpn_code rc = it->ch.kind->local(&it->ch, it->batch->msg);
  if (rc != MPN_OK)
    snprintf(it->last.detail, sizeof it->last.detail, "%s", mpn_strerror(rc));
  finish(it, rc);
  return 0;
}

static int start_attempt(mpn__item *it, int64_t now)
{
  mpn__batch *b = it->batch;
  if (it->route == MPN__ROUTE_LOCAL)
    return print_local(it);
  if (it->ch.kind->custom)
    return start_custom(it, now);
  long left = remaining_ms(b, now);
  long total = it->ch.timeout_ms && it->ch.timeout_ms < left ? it->ch.timeout_ms : left;
  long connect = it->ch.connect_timeout_ms ? it->ch.connect_timeout_ms : mpn__connect_budget(b, total);
  mpn__xfer_opts o = {.total_ms = total < 1 ? 1 : total,
                      .connect_ms = connect < 1 ? 1 : connect > total ? total : connect,
                      .ca_bundle = b->ca_bundle, .collect = mpn__item_collect, .arg = it};
  it->resp_len = 0;
  if (mpn__attempt_open(&it->a, &o) != MPN_OK)
    return -1;
  mpn_code rc = it->route == MPN__ROUTE_RELAY ? mpn__relay_prepare(b, it, &it->a)
                                              : it->ch.kind->prepare(&it->ch, b->msg, &it->a);
  if (rc != MPN_OK || mpn__xfers_add(E.xfers, &it->a) != 0) {
    attempt_free(&it->a);
    return -1;
  }
  it->attempts++;
  it->state = MPN__ITEM_RUNNING;
  mpn__rate_note(&it->ch, now);
  return 0;
}

static unsigned jitter_seed;   /* under E.lock */

/* The next attempt's time, or -1 when there should be none. */
static int64_t retry_at(const mpn__item *it, int64_t now)
{
  if (!it->last.retry || it->attempts > it->ch.retries)
    return -1;
  long wait = it->last.retry_after_ms;
  if (wait < 0) {   /* exponential from 500 ms, capped at 30 s, with jitter so ranks never sync */
    wait = 500L << (it->attempts - 1 < 6 ? it->attempts - 1 : 6);
    wait = wait > 30000 ? 30000 : wait;
    wait += (long)((unsigned)rand_r(&jitter_seed) % (unsigned)(wait / 5 + 1));   /* our own seed: never the program's rand() */
  }
  int64_t at = now + (int64_t)wait * 1000000;
  return at < it->batch->deadline ? at : -1;
}

static void after_verdict(mpn__item *it, int64_t now);

static void on_done(mpn__item *it, const mpn__xfer_result *r, int64_t now)
{
  /* where an attempt's time went: waiting on the service, or on us */
  mpn__log_debug("attempt %d of %s to %s: HTTP %ld; connected %.1f ms, first byte %.1f ms, done %.1f ms",
                 it->attempts, it->batch->id, it->ch.masked, r->status, r->connect_ms, r->first_byte_ms, r->total_ms);
  it->http_status = r->status;
  mpn__judge_transfer(it, r);
  attempt_free(&it->a);
  after_verdict(it, now);
}

static void after_verdict(mpn__item *it, int64_t now)
{
  if (it->last.code == MPN_OK) {
    finish(it, MPN_OK);
    return;
  }
  mpn__log_debug("attempt %d of %s to %s failed: %s", it->attempts, it->batch->id, it->ch.masked, it->last.detail);
  if (mpn__relay_switch(it)) {
    it->next_at = now;
    it->state = MPN__ITEM_WAITING;
    return;
  }
  int64_t at = retry_at(it, now);
  if (at < 0) {
    finish(it, it->last.code);
    return;
  }
  it->next_at = at;
  it->state = MPN__ITEM_WAITING;
}

static void read_finished(int64_t now)
{
  mpn__xfer_result r;
  for (mpn__item *it; (it = mpn__xfers_done(E.xfers, &r)) != NULL;)
    on_done(it, &r, now);
}

/* Starts due items, expires late ones; returns ms until something is due. */
static long schedule(int64_t now)
{
  int64_t next = now + 1000000000LL;
  for (mpn__batch *b = E.batches; b; b = b->next) {
    for (int i = 0; i < b->n; i++) {
      mpn__item *it = &b->items[i];
      if (it->state == MPN__ITEM_DONE)
        continue;
      if (now >= b->deadline) {
        if (it->last.detail[0] == '\0')
          snprintf(it->last.detail, sizeof it->last.detail, "no answer within the time budget");
        finish(it, it->state == MPN__ITEM_RUNNING || it->last.code == MPN_OK ? MPN_E_TIMEOUT : it->last.code);
        continue;
      }
      if (it->state == MPN__ITEM_RUNNING && it->custom_done) {
        mpn__custom_judge(it);
        after_verdict(it, now);
      }
      if (it->state == MPN__ITEM_WAITING) {
        int64_t at = it->next_at;
        int64_t slot = mpn__rate_slot(&it->ch, now);
        at = slot > at ? slot : at;
        if (at <= now && start_attempt(it, now) != 0) {
          snprintf(it->last.detail, sizeof it->last.detail, "cannot set up the request (out of memory?)");
          finish(it, MPN_E_NO_MEMORY);
        } else if (at > now && at < next)
          next = at;
      }
      if (b->deadline < next)
        next = b->deadline;
    }
  }
  long ms = (long)((next - now) / 1000000);
  return ms < 1 ? 1 : ms;
}

static void reap(void)
{
  for (mpn__batch **p = &E.batches; *p;) {
    mpn__batch *b = *p;
    if (b->pending == 0) {   /* the engine is done with it: drop its reference */
      *p = b->next;
      if (--b->refs == 0)
        mpn__batch_free(b);
    } else {
      p = &b->next;
    }
  }
}

static void *engine_main(void *arg)
{
  (void)arg;
  pthread_mutex_lock(&E.lock);
  for (;;) {
    int64_t now = mpn__now_ns();
    long wait = schedule(now);
    mpn__xfers_perform(E.xfers);
    read_finished(mpn__now_ns());
    /* what just finished may be due again at once (a switch to the relay): never sleep the old wait */
    long again = schedule(mpn__now_ns());
    wait = again < wait ? again : wait;
    reap();
    int idle = E.batches == NULL;
    pthread_mutex_unlock(&E.lock);
    /* Idle, the thread sleeps until woken: no periodic wake-ups in a healthy job. */
    mpn__xfers_wait(E.xfers, idle ? 60000 : wait > 1000 ? 1000 : wait);
    pthread_mutex_lock(&E.lock);
  }
  return NULL;
}

/* After fork the child has no engine thread: start a fresh one if it sends. */
static void child_after_fork(void)
{
  for (mpn__batch *b = E.batches; b; b = b->next)   /* the parent's locks on its spooled files stay the parent's */
    for (int i = 0; i < b->n; i++)
      if (b->items[i].spool_fd >= 0)
        close(b->items[i].spool_fd);
  pthread_mutex_init(&E.lock, NULL);
  pthread_cond_init(&E.done, NULL);
  E.started = 0;
  E.xfers = NULL;
  E.batches = NULL;   /* the parent's items are the parent's */
}

static int engine_start(void)
{
  if (E.started && E.pid == getpid())
    return 0;
  E.xfers = mpn__xfers_new();
  if (!E.xfers)
    return -1;
  if (mpn__thread_start(NULL, NULL, engine_main, NULL, 1, 1024 * 1024) != 0) {
    mpn__xfers_free(E.xfers);
    E.xfers = NULL;
    return -1;
  }
  static int atfork;
  if (!atfork++)
    pthread_atfork(NULL, NULL, child_after_fork);
  E.started = 1;
  E.pid = getpid();
  jitter_seed = (unsigned)(mpn__wall_ns() ^ (getpid() << 16));
  return 0;
}

static mpn__batch *first_pending(void)
{
  pthread_mutex_lock(&E.lock);
  mpn__batch *b = E.batches;
  while (b && b->pending == 0)
    b = b->next;
  if (b)
    b->refs++;   /* ours until mpn__batch_release: the engine may finish it meanwhile */
  pthread_mutex_unlock(&E.lock);
  return b;
}

/* At exit: what is still in flight gets until its own deadline (the time
 * budget), then stays in the spool; exit is never held longer. */
static void drain_at_exit(void)
{
  if (!E.started || E.pid != getpid())
    return;
  int64_t until = 0;
  pthread_mutex_lock(&E.lock);
  for (mpn__batch *b = E.batches; b; b = b->next)
    if (b->pending && b->deadline > until)
      until = b->deadline;
  pthread_mutex_unlock(&E.lock);
  for (mpn__batch *b; until && (b = first_pending()) != NULL;) {
    int done = mpn__batch_wait(b, until);
    mpn__batch_release(b);
    if (!done)
      break;
  }
}

void mpn__deliver_prime(void)
{
  /* Loads OpenSSL and the CA store before any fault, not during one. */
  mpn__transfer_prime();
  pthread_mutex_lock(&E.lock);
  engine_start();
  pthread_mutex_unlock(&E.lock);
  static int registered;
  if (!registered++)
    atexit(drain_at_exit);
}

/* Hands a batch to the engine; returns -1 if no engine thread can run. */
int mpn__engine_add(mpn__batch *b)
{
  pthread_mutex_lock(&E.lock);
  int rc = engine_start();
  if (rc == 0) {
    b->next = E.batches;
    E.batches = b;
    b->refs++;   /* the engine's */
    wake_engine();
  }
  pthread_mutex_unlock(&E.lock);
  return rc;
}

/* Waits for the batch or the deadline. Past the deadline the engine ends the
 * batch's items itself (schedule()); a short grace lets it do so, so that no
 * transfer is still running when the caller reads results or releases a
 * spooled file (a flush that let go of a file still being delivered could
 * see it posted twice). */
#define END_GRACE_NS 100000000LL   /* inside the crash path's send margin (agent.c) */

void mpn__batch_cut(mpn__batch *b, int64_t deadline)
{
  pthread_mutex_lock(&E.lock);
  if (deadline < b->deadline) {
    b->deadline = deadline;
    wake_engine();   /* it sleeps until the old deadline */
  }
  pthread_mutex_unlock(&E.lock);
}

int mpn__batch_wait(mpn__batch *b, int64_t deadline)
{
  pthread_mutex_lock(&E.lock);
  int woke = 0;
  while (b->pending > 0) {
    int64_t now = mpn__now_ns();
    int64_t until = now < deadline ? deadline : deadline + END_GRACE_NS;
    if (now >= until)
      break;
    if (now >= deadline && !woke++)
      wake_engine();
    int64_t left = until - now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);   /* the condvar's clock */
    int64_t abs = (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec + (left < 100000000 ? left : 100000000);
    ts.tv_sec = abs / 1000000000LL;
    ts.tv_nsec = abs % 1000000000LL;
    pthread_cond_timedwait(&E.done, &E.lock, &ts);   /* 100 ms slices: a clock jump cannot stretch the wait */
  }
  int all = b->pending == 0;
  pthread_mutex_unlock(&E.lock);
  return all;
}

/* One item's outcome, copied under the lock: the callback runs without it,
 * so it may send a follow-up message or block on a slow stdout. */
typedef struct snapshot {
  mpn_result r;
  char detail[256];
  char spool[MPN__PATH_MAX + 128];
} snapshot;

static void take_snapshot(const mpn__batch *b, const mpn__item *it, snapshot *s)
{
  mpn_code code = it->state == MPN__ITEM_DONE ? it->result : MPN_E_TIMEOUT;
  mpn__strlcpy(s->detail, code == MPN_OK ? "" : it->last.detail[0] ? it->last.detail : "no answer within the time budget",
               sizeof s->detail);
  mpn__strlcpy(s->spool, code != MPN_OK ? it->spool_path : "", sizeof s->spool);
  s->r = (mpn_result){it->ch.masked, code, it->http_status, s->detail, it->attempts,
                      it->route == MPN__ROUTE_LOCAL ? "local" : it->route == MPN__ROUTE_RELAY ? "relay" : "direct",
                      s->spool[0] ? s->spool : NULL, b->id};
}

int mpn__batch_results(mpn__batch *b, mpn_result_fn cb, void *arg)
{
  snapshot *snaps = calloc((size_t)(b->n ? b->n : 1), sizeof *snaps);
  if (!snaps)
    return 0;
  int ok = 0;
  pthread_mutex_lock(&E.lock);
  for (int i = 0; i < b->n; i++) {
    take_snapshot(b, &b->items[i], &snaps[i]);
    ok += snaps[i].r.code == MPN_OK;
  }
  pthread_mutex_unlock(&E.lock);
  for (int i = 0; cb && i < b->n; i++)
    cb(&snaps[i].r, arg);   /* masked names and ids never change after submit */
  free(snaps);
  return ok;
}

void mpn__batch_release(mpn__batch *b)
{
  if (!b)
    return;
  pthread_mutex_lock(&E.lock);
  int last = --b->refs == 0;
  pthread_mutex_unlock(&E.lock);
  if (last)
    mpn__batch_free(b);
}
