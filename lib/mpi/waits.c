/* waits.c - which blocking MPI call each application thread is in, and since
 * when (docs/internals/waits.md): the slot table the interposed calls write
 * (runtime/mpi_waits.c), the agent's sampler that turns "the same entry as at
 * my last look" into "in MPI_Allreduce since T", the last mpn_progress, and
 * whether a rank is overdue (MPINOTIFY_HANG_TIMEOUT). */
#include "mpi/mpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread mpn__wait_slot *mpn__wait_mine __attribute__((tls_model("initial-exec")));

static const char *const names[MPN__NCALLS] = {
  NULL,
#define MPN__CALL_NAME(name, params, args) "MPI_" #name,
  MPN__WAIT_CALLS(MPN__CALL_NAME)
#undef MPN__CALL_NAME
  "MPI_Finalize",
};

static mpn__wait_slot slots[MPN__WAIT_SLOTS];
/* Never cleared: enter() sees a call in progress and records nothing. The
 * slot of threads that are not followed (the library inert, the table full). */
static mpn__wait_slot busy = {.state = 1};
static atomic_int started;
static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;   /* seen, since_ns: agent vs snapshot */
static _Atomic int64_t progress_ns;   /* the last mpn_progress, CLOCK_MONOTONIC; 0: never */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

const char *mpn__call_name(unsigned id)
{
  return id < MPN__NCALLS ? names[id] : NULL;
}

/* A thread that ends gives its slot back, so threads that come and go
 * (a Python pool, OpenMP teams) never fill the table. */
static void release(void *p)
{
  mpn__wait_slot *s = p;
  mpn__wait_mine = &busy;   /* MPI from a later destructor of this thread: not followed */
  atomic_store(&s->state, atomic_load(&s->state) & ~(uint64_t)0xff);
  atomic_store(&s->used, 0);
}

static void make_key(void)
{
  if (pthread_key_create(&exit_key, release) != 0)
    exit_key = (pthread_key_t)-1;
}

mpn__wait_slot *mpn__waits_adopt(void)
{
  if (!atomic_load_explicit(&started, memory_order_acquire)) {
    if (mpn__self.disabled)
      mpn__wait_mine = &busy;   /* for good: the library never arms here */
    return &busy;   /* before MPI_Init: ask again after it */
  }
  pthread_once(&key_once, make_key);
  for (int i = 0; i < MPN__WAIT_SLOTS; i++) {
    int free_ = 0;
    if (!atomic_compare_exchange_strong(&slots[i].used, &free_, 1))
      continue;
    atomic_store(&slots[i].tid, (int)syscall(SYS_gettid));
    if (exit_key != (pthread_key_t)-1)
      pthread_setspecific(exit_key, &slots[i]);
    return mpn__wait_mine = &slots[i];
  }
  return mpn__wait_mine = &busy;   /* table full: this thread is not followed */
}

void mpn__waits_start(void)
{
  atomic_store_explicit(&started, 1, memory_order_release);
  if (!mpn__wait_mine)
    mpn__waits_adopt();
}

static void sample_locked(int64_t now_ns)
{
  for (int i = 0; i < MPN__WAIT_SLOTS; i++) {
    mpn__wait_slot *s = &slots[i];
    uint64_t st = atomic_load_explicit(&s->used, memory_order_relaxed)
                    ? atomic_load_explicit(&s->state, memory_order_relaxed) : 0;
    if (st != s->seen) {   /* another call (or none) than at the last look: it started by now */
      s->seen = st;
      s->since_ns = now_ns;
    }
  }
}

void mpn__waits_sample(int64_t now_ns)
{
  pthread_mutex_lock(&sample_lock);
  sample_locked(now_ns);
  pthread_mutex_unlock(&sample_lock);
}

int mpn__waits_snapshot(mpn__wait_state *out, int max)
{
  int n = 0;
  pthread_mutex_lock(&sample_lock);
  int64_t now = mpn__now_ns();
  sample_locked(now);
  for (int i = 0; i < MPN__WAIT_SLOTS; i++) {
    const mpn__wait_slot *s = &slots[i];
    if (!atomic_load_explicit(&s->used, memory_order_relaxed))
      continue;
    if (n < max) {
      out[n].tid = (pid_t)atomic_load_explicit(&s->tid, memory_order_relaxed);
      out[n].call = mpn__call_name((unsigned)(s->seen & 0xff));
      out[n].waited_s = s->seen & 0xff ? (double)(now - s->since_ns) / 1e9 : 0.0;
    }
    n++;
  }
  pthread_mutex_unlock(&sample_lock);
  return n;
}

void mpn__waits_progress(void)
{
  int64_t now = mpn__now_ns();
  atomic_store_explicit(&progress_ns, now ? now : 1, memory_order_relaxed);
}

double mpn__waits_progress_age(void)
{
  int64_t t = atomic_load_explicit(&progress_ns, memory_order_relaxed);
  return t ? (double)(mpn__now_ns() - t) / 1e9 : -1.0;
}

int mpn__waits_longest(const mpn__wait_state *w, int n)
{
  int k = -1;
  for (int i = 0; i < n; i++)
    if (w[i].call && (k < 0 || w[i].waited_s > w[k].waited_s))
      k = i;
  return k;
}

static int overdue(const mpn__wait_state *w, int k, long timeout)
{
  return timeout > 0 && k >= 0 && w[k].waited_s >= (double)timeout;
}

int mpn__hang_overdue(mpn__wait_state *longest)
{
  mpn__wait_state w[MPN__WAIT_SLOTS];
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  int k = mpn__waits_longest(w, n < MPN__WAIT_SLOTS ? n : MPN__WAIT_SLOTS);
  if (k >= 0 && longest)
    *longest = w[k];
  return overdue(w, k, mpn__cfg()->hang_timeout_s);
}

/* MPINOTIFY_DEBUG: what every followed thread does, one line. */
static void log_waits(long timeout)
{
  mpn__wait_state w[MPN__WAIT_SLOTS];
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  n = n < MPN__WAIT_SLOTS ? n : MPN__WAIT_SLOTS;
  mpn__buf b = mpn__buf_make(256);
  for (int i = 0; i < n; i++) {
    if (w[i].call)
      mpn__buf_add(&b, "%sthread %d in %s for %.1f s", i ? "; " : "", (int)w[i].tid, w[i].call, w[i].waited_s);
    else
      mpn__buf_add(&b, "%sthread %d not in MPI", i ? "; " : "", (int)w[i].tid);
  }
  double age = mpn__waits_progress_age();
  char progress[32] = "never";
  if (age >= 0)
    snprintf(progress, sizeof progress, "%.1f s ago", age);
  mpn__log_debug("waits: %s; last progress %s; %s (MPINOTIFY_HANG_TIMEOUT=%ld)", b.p && *b.p ? b.p : "no thread",
                 progress, overdue(w, mpn__waits_longest(w, n), timeout) ? "overdue" : "not overdue", timeout);
  free(b.p);
}

void mpn__waits_tick(void)
{
  static int64_t next_log;
  long timeout = mpn__cfg()->hang_timeout_s;
  if (timeout <= 0 || !atomic_load_explicit(&started, memory_order_relaxed))
    return;
  int64_t now = mpn__now_ns();
  mpn__waits_sample(now);
  if (!atomic_load_explicit(&mpn__log_debug_on, memory_order_relaxed))
    return;
  if (!next_log)
    next_log = now + timeout * 1000000000LL;   /* a first line one period in: right after MPI_Init says nothing */
  if (now >= next_log) {
    next_log = now + timeout * 1000000000LL;
    log_waits(timeout);
  }
}
