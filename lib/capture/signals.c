/* signals.c - fatal-signal hooks.
 *
 * The handler is tiny on purpose (sentry-native's split): it copies the
 * signal context, writes a minimal record with write(2), wakes the agent
 * thread, waits for it with a deadline, then chains to whatever handler was
 * there before and ends in the default action, so exit status, core dumps
 * and mpirun's death notice are as without the library. Everything reachable
 * from on_fatal() is async-signal-safe.
 */
#include "capture/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ALTSTACK_SIZE (256 * 1024)   /* libunwind runs on it; 16 KiB is known to fail */

mpn__crash_state mpn__crash = {.wake_fd = {-1, -1}, .reply_fd = {-1, -1}};

static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP};
#define NFATAL (int)(sizeof fatal_signals / sizeof fatal_signals[0])

static struct sigaction previous[NFATAL];
static int have_previous[NFATAL];

/* A fault while the handler walks the stack jumps back instead of recursing. */
static sigjmp_buf raw_unwind_escape;
static volatile sig_atomic_t raw_unwind_tid;
/* The same for the agent reading memory it does not own (mpn__guarded_call). */
static sigjmp_buf guard_escape;
static volatile sig_atomic_t guard_tid;

static pid_t current_tid(void)
{
  return (pid_t)syscall(SYS_gettid);
}

static int slot_of(int signo)
{
  for (int i = 0; i < NFATAL; i++)
    if (fatal_signals[i] == signo)
      return i;
  return -1;
}

/* Runs in a signal handler. Calls the handler that was installed before
 * ours, then makes sure the default action ends the process. */
static void chain(int signo, siginfo_t *info, void *uc)
{
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, NULL);   /* a re-raise from the previous handler now ends the process */

  int i = slot_of(signo);
  if (i >= 0 && have_previous[i]) {
    struct sigaction *old = &previous[i];
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction)
      old->sa_sigaction(signo, info, uc);
    else if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN)
      old->sa_handler(signo);
  }
  /* Faults raised by the CPU repeat when we return and now meet SIG_DFL,
   * which keeps the kernel's own siginfo for the core dump. Raised ones
   * (abort, kill, int3) must be raised again. */
  if (signo == SIGABRT || signo == SIGTRAP || info->si_code <= 0) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(signo);
  }
}

/* Runs in a signal handler: raw frame addresses with libunwind (primed at
 * start-up, caching off), with an escape if the stack itself is corrupt. */
static int raw_frames(ucontext_t *uc, uintptr_t *ips, int max)
{
  raw_unwind_tid = current_tid();
  volatile int n = 0;
  if (sigsetjmp(raw_unwind_escape, 0) == 0)
    n = mpn__unwind_raw(uc, ips, max);
  raw_unwind_tid = 0;
  return n;
}

int mpn__guarded_call(void (*fn)(void *), void *arg)
{
  guard_tid = current_tid();
  volatile int rc = -1;
  if (sigsetjmp(guard_escape, 0) == 0) {
    fn(arg);
    rc = 0;
  }
  guard_tid = 0;
  return rc;
}

/* Runs in a signal handler: waits for the agent's answer until the budget
 * measured from the fault ends. */
static void wait_for_agent(int64_t fault_mono_ns)
{
  int64_t deadline = fault_mono_ns + (int64_t)mpn__crash.wait_ms * 1000000;
  for (;;) {
    int64_t left_ms = (deadline - mpn__now_ns()) / 1000000;
    if (left_ms <= 0)
      return;
    struct pollfd p = {mpn__crash.reply_fd[0], POLLIN, 0};
    int r = poll(&p, 1, (int)left_ms);
    if (r > 0) {
      char c;
      ssize_t got = read(mpn__crash.reply_fd[0], &c, 1);
      (void)got;
      return;
    }
    if (r < 0 && errno != EINTR)
      return;
  }
}

/* Runs in a signal handler: a second thread that faults while the first is
 * being reported waits (bounded) for the process to end. */
static void wait_for_other_crash(void)
{
  int64_t deadline = mpn__now_ns() + ((int64_t)mpn__crash.wait_ms + 1000) * 1000000;
  while (!atomic_load(&mpn__crash.crash_done) && mpn__now_ns() < deadline)
    mpn__sleep_ms(10);
}

/* Runs in a signal handler. */
static void handle_crash(int signo, siginfo_t *info, ucontext_t *uc, pid_t tid)
{
  mpn__crash_slot *s = &mpn__crash.slot;
  s->mono_ns = mpn__now_ns();
  s->wall_ns = mpn__wall_ns();
  s->signo = signo;
  s->si_code = info->si_code;
  s->fault_addr = (uintptr_t)info->si_addr;
  s->tid = tid;
  memcpy(&s->info, info, sizeof *info);
  memcpy(&s->uc, uc, sizeof *uc);
  s->nraw = raw_frames(uc, s->raw, MPN__MAX_FRAMES);
  s->py_tstate = NULL;
  mpn__record_write(s);   /* first: nothing below may cost the minimal record */
  s->py_tstate = mpn__python_thread_state();
  char c = 'c';
  if (write(mpn__crash.wake_fd[1], &c, 1) == 1)
    wait_for_agent(s->mono_ns);
}

/* Runs in a signal handler: the agent itself faulted. While it handles an
 * application's crash, that crash's record is already written and its
 * thread waits in handle_crash: release it and park this thread, so the
 * process ends by the application's own signal (its status, its core) and
 * the record stays. Parked, not returned: the fault would only repeat. The
 * park is bounded; a process still alive then ends by the agent's signal.
 * A fault with no crash in hand leaves a record of its own. */
static void agent_faulted(int signo, siginfo_t *info)
{
  if (atomic_load(&mpn__crash.crash_owner)) {
    char c = 'd';
    ssize_t w = write(mpn__crash.reply_fd[1], &c, 1);
    (void)w;
    int64_t deadline = mpn__now_ns() + ((int64_t)mpn__crash.wait_ms + 2000) * 1000000;
    while (mpn__now_ns() < deadline)
      mpn__sleep_ms(50);
    return;
  }
  mpn__crash_slot *s = &mpn__crash.slot;
  s->signo = signo;
  s->wall_ns = mpn__wall_ns();
  s->fault_addr = (uintptr_t)info->si_addr;
  s->nraw = 0;
  mpn__record_write(s);
}

/* Runs in a signal handler. */
static void on_fatal(int signo, siginfo_t *info, void *ucv)
{
  int saved_errno = errno;
  pid_t tid = current_tid();
  if (raw_unwind_tid == tid)
    siglongjmp(raw_unwind_escape, 1);
  if (guard_tid == tid)
    siglongjmp(guard_escape, 1);
  /* A forked child inherits this handler and the agent's pipes but not the
   * agent: it must never wake its parent's thread. */
  if (atomic_load(&mpn__crash.armed) && getpid() == mpn__self.pid && tid != mpn__crash.agent_tid) {
    int expected = 0;
    if (atomic_compare_exchange_strong(&mpn__crash.crash_owner, &expected, (int)tid)) {
      handle_crash(signo, info, (ucontext_t *)ucv, tid);
      atomic_store(&mpn__crash.crash_done, 1);
    } else if (expected != (int)tid) {
      wait_for_other_crash();
    }
  } else if (atomic_load(&mpn__crash.armed) && getpid() == mpn__self.pid) {
    agent_faulted(signo, info);
  }
  errno = saved_errno;
  chain(signo, info, ucv);
}

/* An alternate stack for the calling thread, a PROT_NONE guard page below
 * it: a handler that overruns it faults instead of writing over the mapping
 * beneath. Returns the mapping (for mpn__signals_altstack_free), or NULL
 * when the thread already has one (a runtime's, or ours) or none was made. */
void *mpn__signals_altstack(void)
{
  stack_t cur;
  if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
    return NULL;
  size_t guard = (size_t)sysconf(_SC_PAGESIZE);
  char *mem = mmap(NULL, guard + ALTSTACK_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED)
    return NULL;
  stack_t ss = {.ss_sp = mem + guard, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
  if (mprotect(mem + guard, ALTSTACK_SIZE, PROT_READ | PROT_WRITE) != 0 || sigaltstack(&ss, NULL) != 0) {
    munmap(mem, guard + ALTSTACK_SIZE);
    return NULL;
  }
  return mem;
}

/* At thread exit (never on the stack itself): the thread's stack goes away. */
void mpn__signals_altstack_free(void *mem)
{
  stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
  sigaltstack(&off, NULL);
  munmap(mem, (size_t)sysconf(_SC_PAGESIZE) + ALTSTACK_SIZE);
}

int mpn__signals_install(void)
{
  mpn__signals_altstack();
  int installed = 0;
  for (int i = 0; i < NFATAL; i++) {
    struct sigaction cur;
    if (sigaction(fatal_signals[i], NULL, &cur) != 0)
      continue;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fatal) {
      installed++;
      continue;   /* still ours: keep what we chain to */
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(fatal_signals[i], &sa, &previous[i]) == 0) {
      have_previous[i] = 1;
      installed++;
    }
  }
  return installed == NFATAL ? 0 : -1;
}

/* ---- SIGTERM: a launcher tearing the job down ------------------------------- */

static struct sigaction term_previous;
static long term_wait_ms;
static char term_marker[MPN__PATH_MAX];   /* a file the handler creates: no network, no agent needed */

/* Runs in a signal handler: what was there before ours. A handler of the
 * application's keeps the signal (it may ignore it, or end later); the
 * default action ends the process with SIGTERM's status, as without us. */
static void term_chain(int signo, siginfo_t *info, void *uc)
{
  struct sigaction *old = &term_previous;
  if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
    old->sa_sigaction(signo, info, uc);
    return;
  }
  if (!(old->sa_flags & SA_SIGINFO) && old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
    old->sa_handler(signo);
    return;
  }
  if (old->sa_handler == SIG_IGN)
    return;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(signo, &dfl, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(signo);
}

/* Runs in a signal handler. The first SIGTERM of the process wakes the
 * agent, which tells the launcher this rank was terminated (not killed
 * outright), and waits for it: Open MPI's daemons send SIGKILL 1 s after
 * SIGTERM, so the wait is short and bounded. */
static void on_term(int signo, siginfo_t *info, void *uc)
{
  int saved_errno = errno;
  if (atomic_load(&mpn__crash.armed) && getpid() == mpn__self.pid && current_tid() != mpn__crash.agent_tid &&
      !atomic_exchange(&mpn__crash.term_seen, 1)) {
    mpn__crash.term_sender = info && info->si_code == SI_USER ? info->si_pid : 0;
    int fd = term_marker[0] ? open(term_marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)   /* first, at once: a loaded node may not run the agent in time */
      close(fd);
    char c = 't';
    if (write(mpn__crash.wake_fd[1], &c, 1) == 1) {
      int64_t deadline = mpn__now_ns() + (int64_t)term_wait_ms * 1000000;
      while (!atomic_load(&mpn__crash.term_done) && mpn__now_ns() < deadline)
        mpn__sleep_ms(5);
    }
  }
  errno = saved_errno;
  term_chain(signo, info, uc);
}

int mpn__signals_install_term(long wait_ms, const char *marker)
{
  struct sigaction cur;
  term_wait_ms = wait_ms;
  mpn__strlcpy(term_marker, marker ? marker : "", sizeof term_marker);
  if (sigaction(SIGTERM, NULL, &cur) != 0)
    return -1;
  if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_term)
    return 0;
  if (cur.sa_handler == SIG_IGN)
    return -1;   /* the process was told to ignore it (nohup): keep that */
  /* The flags and mask of what was there: a handler installed without SA_RESTART (CPython's)
   * expects SIGTERM to interrupt a blocking call, and must still get that. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_term;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | (cur.sa_handler == SIG_DFL ? SA_RESTART : cur.sa_flags & SA_RESTART);
  sa.sa_mask = cur.sa_mask;
  return sigaction(SIGTERM, &sa, &term_previous);
}

/* Puts back what we replaced, so that a runtime initialising now (Open MPI's
 * opal_signal skips signals that already have a handler) installs its own
 * handler, which we then chain to. */
void mpn__signals_uninstall(void)
{
  for (int i = 0; i < NFATAL; i++) {
    struct sigaction cur;
    if (!have_previous[i] || sigaction(fatal_signals[i], NULL, &cur) != 0)
      continue;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fatal) {
      sigaction(fatal_signals[i], &previous[i], NULL);
      have_previous[i] = 0;
    }
  }
}
