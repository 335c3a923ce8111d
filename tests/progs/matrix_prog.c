/* matrix_prog MODE RANKS - the failure matrix (tests/scenarios/matrix.py).
 *
 * Every rank enters MPI; ranks in RANKS ("1,3" or "all") then fail in MODE
 * while the others wait in MPI_Allreduce, which never completes once a rank
 * is gone. Built twice: matrix_prog (the tests preload the library) and
 * matrix_linked (linked with it, so it is armed before MPI_Init).
 * MODE:
 *   overflow_main    unbounded recursion on the main thread
 *   overflow_thread  unbounded recursion on a thread the program created
 *   overflow_early_thread  the same on a thread created before MPI_Init (a runtime's
 *                    thread pool), recursing once the rank is in MPI
 *   two_threads      two threads of the rank write through NULL at once
 *   mpi_allreduce    MPI_Allreduce from an unmapped send buffer (faults inside libmpi)
 *   mpi_send         MPI_Send from an unmapped buffer to rank 0
 *   handler_before   a SIGSEGV handler of "another library" installed before MPI_Init
 *   handler_after    the same installed after MPI_Init, chaining to the one it replaced
 *   double_free      free() twice: glibc aborts (SIGABRT)
 *   heap_corrupt     a chunk header overwritten, then free(): glibc aborts
 *   segv             a plain NULL write
 *   before_init      NULL write before MPI_Init, once every other rank is in
 *                    MPI_Init (see wait_others_in_init)
 *   after_finalize   NULL write after MPI_Finalize
 *   smashed_stack    the callers' frames overwritten with garbage, then a NULL write:
 *                    the notifier's unwinders walk garbage
 *   agent_fault      abort() while another thread sends SIGSEGV to the notifier's
 *                    agent thread (named "mpn-agent"; absent without the library)
 * Each faulting rank prints "rank R faults: MODE"; "theirs: ..." lines come
 * from the other library's handler. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "common.h"

static int rank = -1;

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }

/* Not a tail call, and a frame big enough to reach the guard page quickly;
 * the never-reached limit keeps the compiler from calling it infinite. */
static volatile int recursion_limit = -1;

__attribute__((noinline)) int recurse(int depth)
{
  volatile char pad[512];
  if (depth == recursion_limit)
    return 0;
  pad[depth % 512] = (char)depth;
  return recurse(depth + 1) + pad[(depth * 7) % 512];
}

static void *overflow_thread(void *arg)
{
  (void)arg;
  recurse(0);
  return NULL;
}

static pthread_barrier_t both;
static pthread_barrier_t go_early;   /* overflow_early_thread: MPI is up, recurse */

static void *overflow_later(void *arg)
{
  pthread_barrier_wait(&go_early);
  return overflow_thread(arg);
}

static void start_early_thread(void)
{
  pthread_t t;
  pthread_barrier_init(&go_early, NULL, 2);
  pthread_create(&t, NULL, overflow_later, NULL);
}

static void *fault_together(void *arg)
{
  pthread_barrier_wait(&both);
  bad_fn((int)(intptr_t)arg);
  return NULL;
}

static void run_threads(void *(*fn)(void *), int n)
{
  pthread_t t[2];
  pthread_barrier_init(&both, NULL, (unsigned)n);
  for (int i = 0; i < n; i++)
    pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i);
  for (int i = 0; i < n; i++)
    pthread_join(t[i], NULL);
}

/* ---- another library's handler ------------------------------------------ */

static struct sigaction theirs_previous;

static void say(const char *what)
{
  char line[96];
  int n = snprintf(line, sizeof line, "theirs: %s on rank %d\n", what, rank);
  ssize_t w = write(1, line, (size_t)n);
  (void)w;
}

/* The usual shape (sentry, JVMs, runtimes): do its work, then chain to the
 * handler it replaced, or fall back to the default action. */
static void theirs(int signo, siginfo_t *info, void *uc)
{
  say("SIGSEGV");
  if ((theirs_previous.sa_flags & SA_SIGINFO) && theirs_previous.sa_sigaction) {
    theirs_previous.sa_sigaction(signo, info, uc);
  } else if (!(theirs_previous.sa_flags & SA_SIGINFO) && theirs_previous.sa_handler != SIG_DFL &&
             theirs_previous.sa_handler != SIG_IGN) {
    theirs_previous.sa_handler(signo);
  } else {
    signal(signo, SIG_DFL);   /* the fault repeats on return and ends the process */
  }
}

static void install_theirs(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = theirs;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &theirs_previous);
}

/* ---- heap ---------------------------------------------------------------- */

static void *volatile heap_keep;

static void double_free(void)
{
  char *p = malloc(40);
  heap_keep = p;
  free(p);
  free(heap_keep);
}

static void heap_corrupt(void)
{
  char *p = malloc(40);
  heap_keep = p;
  /* The chunk's size field, just below p: below the minimum, "free(): invalid size". */
  *(volatile size_t *)((uintptr_t)heap_keep - sizeof(size_t)) = 8;
  free(heap_keep);
}

/* ---- a smashed stack ------------------------------------------------------ */

/* Overwrites everything from its own frame up to `top` (a local of an
 * outer caller) with plausible and implausible pointers, then faults. */
__attribute__((noinline)) void smash_and_fault(char *top)
{
  volatile uintptr_t here = 0;
  volatile uintptr_t *p = (volatile uintptr_t *)(((uintptr_t)&here + 8) & ~(uintptr_t)7);
  static const uintptr_t junk[] = {0x10, 0xffff800000001000u, 0x00007ffffffff000u, 0xdeadbeefdeadbeefu, 0};   /* 0: a pointer to itself */
  for (int i = 0; (char *)p < top; i++, p++)
    *p = junk[i % 5] ? junk[i % 5] : (uintptr_t)p;
  bad_fn((int)here);
}

__attribute__((noinline)) void smash_level2(char *top) { smash_and_fault(top); }

__attribute__((noinline)) void smash_level1(void)
{
  volatile char mark[16];
  mark[0] = 1;
  smash_level2((char *)mark);
}

/* ---- the agent faults while it handles this rank's failure ---------------- */

static pid_t agent_tid(void)
{
  DIR *d = opendir("/proc/self/task");
  pid_t found = 0;
  for (struct dirent *e; d && (e = readdir(d)) && !found;) {
    char path[300], comm[32] = "";
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
      continue;
    ssize_t n = read(fd, comm, sizeof comm - 1);
    close(fd);
    if (n > 0 && !strncmp(comm, "mpn-agent", 9))
      found = (pid_t)atoi(e->d_name);
  }
  if (d)
    closedir(d);
  return found;
}

static void *kill_agent_later(void *arg)
{
  pid_t tid = *(pid_t *)arg;
  struct timespec ts = {1, 500000000};   /* the agent is delivering to a sink that never answers */
  nanosleep(&ts, NULL);
  printf("rank %d sends SIGSEGV to the agent thread %d\n", rank, (int)tid);
  fflush(stdout);
  syscall(SYS_tgkill, getpid(), tid, SIGSEGV);
  return NULL;
}

static void agent_fault(void)
{
  static pid_t tid;
  tid = agent_tid();
  if (tid) {
    pthread_t t;
    pthread_create(&t, NULL, kill_agent_later, &tid);
  } else {
    printf("rank %d: no agent thread\n", rank);
  }
  fflush(stdout);
  abort();
}

/* ---- before MPI_Init ------------------------------------------------------- */

/* Open MPI 4.1's mpirun itself hangs (every rank a zombie) or dies of SIGPIPE
 * ("PMIX ERROR: UNREACHABLE") when a rank dies while others are still starting
 * and connecting to it, with or without the notifier; once they are in
 * MPI_Init, it ends the job cleanly. So the faulting ranks wait for the others
 * to have entered MPI_Init (each leaves ready.RANK in $MATRIX_SYNC_DIR just
 * before it), at most 20 s, and 0.5 s more for them to connect; without
 * MATRIX_SYNC_DIR, 1 s. They still fault before their own MPI_Init. */
static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void mark_ready(void)
{
  const char *dir = getenv("MATRIX_SYNC_DIR");
  char path[4096];
  if (!dir)
    return;
  snprintf(path, sizeof path, "%s/ready.%d", dir, rank);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0)
    close(fd);
}

static void wait_others_in_init(const char *ranks)
{
  const char *dir = getenv("MATRIX_SYNC_DIR"), *size = getenv("OMPI_COMM_WORLD_SIZE");
  int world = size ? atoi(size) : 1, others = 0, ready = 0;
  if (!dir) {
    sleep_ms(1000);
    return;
  }
  for (int r = 0; r < world; r++)
    others += !mpn_rank_in(ranks, r);
  for (int tries = 0; tries < 1000 && ready < others; tries++) {
    sleep_ms(20);
    DIR *d = opendir(dir);
    ready = 0;
    for (struct dirent *e; d && (e = readdir(d));)
      ready += !strncmp(e->d_name, "ready.", 6);
    if (d)
      closedir(d);
  }
  if (ready < others)
    printf("rank %d: only %d of %d other ranks reached MPI_Init\n", rank, ready, others);
  sleep_ms(500);
}

/* ---- main ------------------------------------------------------------------ */

static void fail(const char *mode)
{
  printf("rank %d faults: %s\n", rank, mode);
  fflush(stdout);
  if (!strcmp(mode, "overflow_main"))
    recurse(0);
  else if (!strcmp(mode, "handler_before") || !strcmp(mode, "handler_after"))
    bad_fn(rank);
  else if (!strcmp(mode, "overflow_thread"))
    run_threads(overflow_thread, 1);
  else if (!strcmp(mode, "overflow_early_thread")) {
    pthread_barrier_wait(&go_early);
    pause();   /* the thread's fault ends the process */
  }
  else if (!strcmp(mode, "two_threads"))
    run_threads(fault_together, 2);
  else if (!strcmp(mode, "mpi_allreduce")) {
    static int sum[1024];
    MPI_Allreduce((void *)16, sum, 1024, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  } else if (!strcmp(mode, "mpi_send"))
    MPI_Send((void *)16, 16, MPI_INT, 0, 7, MPI_COMM_WORLD);   /* eager: copied at once */
  else if (!strcmp(mode, "double_free"))
    double_free();
  else if (!strcmp(mode, "heap_corrupt"))
    heap_corrupt();
  else if (!strcmp(mode, "smashed_stack"))
    smash_level1();
  else if (!strcmp(mode, "agent_fault"))
    agent_fault();
  else if (!strcmp(mode, "segv") || !strcmp(mode, "before_init") || !strcmp(mode, "after_finalize"))
    bad_fn(rank);
  fprintf(stderr, "matrix_prog: mode %s did not end the process\n", mode);
  exit(2);
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: matrix_prog MODE RANKS\n");
    return 2;
  }
  const char *mode = argv[1], *ranks = argv[2];
  const char *env_rank = getenv("OMPI_COMM_WORLD_RANK");
  rank = env_rank ? atoi(env_rank) : 0;
  int mine = mpn_rank_in(ranks, rank);
  if (!strcmp(mode, "before_init")) {
    if (!mine) {
      mark_ready();
    } else {
      wait_others_in_init(ranks);
      fail(mode);
    }
  }
  if (mine && !strcmp(mode, "overflow_early_thread"))
    start_early_thread();
  if (!strcmp(mode, "handler_before"))
    install_theirs();
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (!strcmp(mode, "handler_after"))
    install_theirs();
  MPI_Barrier(MPI_COMM_WORLD);   /* every rank (and notifier) is up before anyone fails */
  if (mine && strcmp(mode, "after_finalize") && strcmp(mode, "before_init"))
    fail(mode);
  static int in[1024], out[1024];
  MPI_Allreduce(in, out, 1024, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Finalize();
  if (mine && !strcmp(mode, "after_finalize"))
    fail(mode);
  return 0;
}
