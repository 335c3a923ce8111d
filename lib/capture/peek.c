/* peek.c - another thread's stack, for hang reports: the thread is asked
 * with a real-time signal and pauses in its handler (at most PAUSE_MAX_MS)
 * while the agent unwinds its context and reads its Python frames, as the
 * crash path does for a faulting thread. Only while a hang is suspected; a
 * blocking call the signal interrupts restarts (SA_RESTART) or sees EINTR,
 * as under any profiler.
 *
 * The signal is taken only where nobody else uses it (SIG_DFL at install),
 * and asked for only while our handler is still there. */
#include "capture/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAUSE_MAX_MS 500    /* a handler never holds its thread longer, whatever the agent does */
#define ASK_WAIT_MS 200     /* a thread that does not enter its handler by then is not read */

enum { IDLE, ASKED, CLAIMED, PAUSED, RELEASED };

static struct {
  int signo;                /* 0: not installed */
  atomic_int want;          /* the tid asked */
  atomic_int state;
  ucontext_t *uc;           /* the paused thread's context, valid while PAUSED */
  void *tstate;             /* its PyThreadState, or NULL */
} P;

static pid_t tid_now(void)
{
  return (pid_t)syscall(SYS_gettid);
}

/* Runs in a signal handler: records where the thread is and waits for the
 * agent to have read it (bounded). */
static void on_peek(int signo, siginfo_t *info, void *uc)
{
  (void)signo;
  int saved = errno;
  if (info && info->si_code == SI_TKILL && info->si_pid == mpn__self.pid && atomic_load(&P.want) == tid_now()) {
    int asked = ASKED;
    if (atomic_compare_exchange_strong(&P.state, &asked, CLAIMED)) {   /* fill before PAUSED */
      P.uc = uc;
      P.tstate = mpn__python_thread_state();
      atomic_store(&P.state, PAUSED);
      int64_t end = mpn__now_ns() + (int64_t)PAUSE_MAX_MS * 1000000;
      while (atomic_load(&P.state) == PAUSED && mpn__now_ns() < end)
        mpn__sleep_ms(1);
      int paused = PAUSED;   /* leaving before the agent released us: it must not trust what it read */
      if (!atomic_compare_exchange_strong(&P.state, &paused, IDLE))
        atomic_store(&P.state, IDLE);
    }
  }
  errno = saved;
}

/* ---- a request from the shell (mpinotify-send --stacks PID) ----------------- */

static atomic_int request;   /* the requester's value (sigqueue), 0: none */

/* Runs in a signal handler: SIGURG with a value from another process of this user. */
static void on_request(int signo, siginfo_t *info, void *uc)
{
  (void)signo;
  (void)uc;
  int saved = errno;
  if (info && info->si_code == SI_QUEUE && info->si_value.sival_int > 0 && getpid() == mpn__self.pid) {
    atomic_store(&request, info->si_value.sival_int);
    char c = 'v';
    ssize_t w = write(mpn__crash.wake_fd[1], &c, 1);
    (void)w;
  }
  errno = saved;
}

int mpn__peek_install_request(void)
{
  struct sigaction cur, sa;
  if (sigaction(SIGURG, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) || cur.sa_handler != SIG_DFL)
    return -1;   /* the application's (Go's runtime preempts with it) */
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_request;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGURG, &sa, NULL);
}

int mpn__peek_request_take(void)
{
  return atomic_exchange(&request, 0);
}

int mpn__peek_install(void)
{
  if (P.signo)
    return 0;
  int signo = SIGRTMIN + 5;
  struct sigaction cur, sa;
  if (signo > SIGRTMAX || sigaction(signo, NULL, &cur) != 0 || (cur.sa_flags & SA_SIGINFO) ||
      cur.sa_handler != SIG_DFL)
    return -1;   /* somebody else's */
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_peek;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(signo, &sa, NULL) != 0)
    return -1;
  P.signo = signo;
  return 0;
}

static int still_ours(void)
{
  struct sigaction cur;
  return P.signo && sigaction(P.signo, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_peek;
}

typedef struct unwind_job {
  ucontext_t *uc;
  mpn__frame *frames;
  int max, n;
} unwind_job;

static void unwind_paused(void *arg)
{
  unwind_job *j = arg;
  j->n = mpn__unwind_frames(j->uc, j->frames, j->max);
}

/* ---- a thread blocked in the kernel: read without a signal ------------------------
 * A signal would end its sleep, poll or read early (EINTR: SA_RESTART does not
 * cover them), which a C program may not expect. /proc says where it waits
 * (the syscall's stack and instruction pointers); its stack cannot change
 * while it waits there, and is unwound from those two registers. */

/* Its stack and instruction pointers while in a system call; 0 when it runs (or no /proc). */
static int in_syscall(pid_t tid, char *line, size_t cap, uintptr_t *sp, uintptr_t *pc)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, line, cap - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    return 0;
  line[n] = '\0';
  long nr;
  unsigned long a[6], s, p;
  if (sscanf(line, "%ld %lx %lx %lx %lx %lx %lx %lx %lx", &nr, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &s, &p) != 9 ||
      nr < 0)
    return 0;   /* "running", or blocked outside a system call */
  *sp = s;
  *pc = p;
  return 1;
}

static int peek_blocked(pid_t tid, mpn__frame *frames, int max)
{
#if defined(__x86_64__)
  char before[256], after[256];
  uintptr_t sp, pc;
  if (!in_syscall(tid, before, sizeof before, &sp, &pc))
    return -1;
  static ucontext_t uc;   /* static: the agent's stack is small */
  memset(&uc, 0, sizeof uc);
  uc.uc_mcontext.gregs[REG_RSP] = (greg_t)sp;
  uc.uc_mcontext.gregs[REG_RIP] = (greg_t)pc;
  unwind_job j = {&uc, frames, max, 0};
  if (mpn__guarded_call(unwind_paused, &j) != 0)
    j.n = 0;
  /* still in the same call, at the same place: what was read was its stack */
  if (!in_syscall(tid, after, sizeof after, &sp, &pc) || strcmp(before, after) != 0 || j.n == 0)
    return -1;
  return j.n;
#else
  (void)tid, (void)frames, (void)max;
  return -1;
#endif
}

int mpn__peek(pid_t tid, mpn__frame *frames, int max, void **py_frames)
{
  *py_frames = NULL;
  if (!mpn__python_present()) {   /* Python retries an interrupted call itself (PEP 475): it may be signalled */
    int n = peek_blocked(tid, frames, max);
    if (n > 0)
      return n;
  }
  int idle = IDLE;
  if (!still_ours() || !atomic_compare_exchange_strong(&P.state, &idle, ASKED))
    return -1;   /* a handler of an earlier ask is still on its way out */
  atomic_store(&P.want, tid);
  if (syscall(SYS_tgkill, mpn__self.pid, tid, P.signo) != 0) {
    atomic_store(&P.state, IDLE);
    return -1;
  }
  int64_t end = mpn__now_ns() + (int64_t)ASK_WAIT_MS * 1000000;
  while (atomic_load(&P.state) != PAUSED && mpn__now_ns() < end)
    mpn__sleep_ms(1);
  int asked = ASKED;
  if (atomic_compare_exchange_strong(&P.state, &asked, IDLE)) {
    atomic_store(&P.want, 0);
    return -1;   /* never entered its handler in time (blocked the signal, or busy in the kernel) */
  }
  for (int i = 0; i < 50 && atomic_load(&P.state) == CLAIMED; i++)   /* the handler stores two pointers */
    mpn__sleep_ms(1);
  atomic_store(&P.want, 0);
  if (atomic_load(&P.state) != PAUSED)
    return -1;
  unwind_job j = {P.uc, frames, max, 0};
  if (mpn__guarded_call(unwind_paused, &j) != 0)
    j.n = 0;
  int dump = P.tstate ? mpn__python_dump(P.tstate) : -1;   /* only the dump while it waits; files after */
  int paused = PAUSED;
  if (!atomic_compare_exchange_strong(&P.state, &paused, RELEASED)) {
    if (dump >= 0)
      close(dump);
    return -1;   /* it left its handler meanwhile (0.5 s): what was read may be of another stack */
  }
  *py_frames = mpn__python_parse(dump);
  return j.n;
}
