/* test_mpi.c - unit tests of lib/mpi/: which blocking MPI call each
 * application thread is in, and since when (waits.c). The tests take the
 * interposed calls' seat (mpn__waits_enter/leave, as runtime/mpi_waits.c
 * does around the real call) and the agent's (mpn__waits_sample at chosen
 * times): no MPI is initialised. The wrappers themselves and the agent's
 * loop run in the hang.* scenarios. */
#include "mpi/mpi.h"

#include "unit.h"

#include <pthread.h>
#include <unistd.h>

#define SEC 1000000000LL

/* The tests run with MPINOTIFY_DISABLE=1 (the library must not arm in the
 * test binary); following needs the library "enabled", and started. */
static void start_following(void)
{
  mpn__self.disabled = 0;
  mpn__waits_start();
}

/* This thread's entry in a snapshot, or NULL. */
static const mpn__wait_state *mine(mpn__wait_state *w, int n)
{
  pid_t me = (pid_t)gettid();
  for (int i = 0; i < n; i++)
    if (w[i].tid == me)
      return &w[i];
  return NULL;
}

static void publish_hang_timeout(const char *value)
{
  setenv("MPINOTIFY_HANG_TIMEOUT", value, 1);
  mpn__config cfg;
  char err[512];
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK);
  mpn__config_publish(&cfg);
  unsetenv("MPINOTIFY_HANG_TIMEOUT");
}

TEST(waits_call_names)
{
  CHECK_STR(mpn__call_name(MPN__CALL_Allreduce), "MPI_Allreduce");
  CHECK_STR(mpn__call_name(MPN__CALL_Reduce_scatter_block), "MPI_Reduce_scatter_block");
  CHECK_STR(mpn__call_name(MPN__CALL_Comm_create), "MPI_Comm_create");
  CHECK(mpn__call_name(MPN__CALL_NONE) == NULL && mpn__call_name(MPN__NCALLS) == NULL);
  CHECK_STR(mpn__call_name(MPN__CALL_FINALIZE), "MPI_Finalize");   /* marked by runtime/mpi_hooks.c */
  CHECK(MPN__NCALLS - 1 == 36 && MPN__NCALLS < 256);   /* 35 interposed, MPI_Finalize; the id fits the state word's low byte */
  for (unsigned i = 1; i < MPN__NCALLS; i++) {
    CHECK(!strncmp(mpn__call_name(i), "MPI_", 4));
    for (unsigned j = 1; j < i; j++)
      CHECK(strcmp(mpn__call_name(i), mpn__call_name(j)) != 0);
  }
}

/* Before MPI_Init nothing is followed; after it, this thread is known; a
 * call is dated by the first look that saw it, a call inside a call does not
 * restart it, and the same call made again is a new wait. */
TEST(waits_sample_one_thread)
{
  mpn__wait_state w[MPN__WAIT_SLOTS];
  mpn__self.disabled = 0;
  CHECK(mpn__waits_enter(MPN__CALL_Barrier) == NULL);   /* not started: only forwards */
  CHECK(mpn__waits_snapshot(w, MPN__WAIT_SLOTS) == 0);
  start_following();
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  CHECK(n == 1 && mine(w, n) && mine(w, n)->call == NULL && mine(w, n)->waited_s == 0.0);
  mpn__wait_slot *s = mpn__waits_enter(MPN__CALL_Allreduce);
  CHECK(s != NULL);
  mpn__waits_sample(mpn__now_ns() - 5 * SEC);   /* the agent saw it 5 s ago */
  n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  CHECK(n == 1 && mine(w, n) && mine(w, n)->call && !strcmp(mine(w, n)->call, "MPI_Allreduce"));
  CHECK(mine(w, n) && mine(w, n)->waited_s >= 5.0 && mine(w, n)->waited_s < 6.0);
  CHECK(mpn__waits_enter(MPN__CALL_Barrier) == NULL);   /* nested: the outer call stays */
  n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  CHECK(mine(w, n) && !strcmp(mine(w, n)->call, "MPI_Allreduce") && mine(w, n)->waited_s >= 5.0);
  mpn__waits_leave(s);
  s = mpn__waits_enter(MPN__CALL_Allreduce);   /* the next iteration's Allreduce: a new wait */
  n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  CHECK(mine(w, n) && !strcmp(mine(w, n)->call, "MPI_Allreduce") && mine(w, n)->waited_s < 1.0);
  mpn__waits_leave(s);
  n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  CHECK(mine(w, n) && mine(w, n)->call == NULL && mine(w, n)->waited_s == 0.0);
}

/* A thread that waits in MPI while the test thread does not. */
typedef struct waiter {
  int go[2];         /* the test writes a byte: leave the call and end */
  int ready[2];      /* the thread writes a byte: inside the call */
  pid_t tid;
} waiter;

static void *wait_in_barrier(void *arg)
{
  waiter *x = arg;
  x->tid = (pid_t)gettid();
  mpn__wait_slot *s = mpn__waits_enter(MPN__CALL_Barrier);
  char c = 'r';
  CHECK(write(x->ready[1], &c, 1) == 1);
  CHECK(read(x->go[0], &c, 1) == 1);   /* "blocked in MPI_Barrier" */
  mpn__waits_leave(s);
  return NULL;
}

TEST(waits_threads_come_and_go)
{
  start_following();
  mpn__wait_state w[MPN__WAIT_SLOTS];
  for (int round = 0; round < 3 * MPN__WAIT_SLOTS; round++) {   /* ended threads give their slot back */
    waiter x;
    CHECK(pipe(x.go) == 0 && pipe(x.ready) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wait_in_barrier, &x) == 0);
    char c;
    CHECK(read(x.ready[0], &c, 1) == 1);
    int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS), in_barrier = 0;
    for (int i = 0; i < n; i++)
      in_barrier += w[i].tid == x.tid && w[i].call && !strcmp(w[i].call, "MPI_Barrier");
    CHECK(n == 2 && in_barrier == 1 && mine(w, n) && mine(w, n)->call == NULL);
    CHECK(write(x.go[1], "g", 1) == 1);
    pthread_join(t, NULL);
    CHECK(mpn__waits_snapshot(w, MPN__WAIT_SLOTS) == 1);
    close(x.go[0]), close(x.go[1]), close(x.ready[0]), close(x.ready[1]);
  }
}

/* More threads at once than the table holds: the extra ones are not
 * followed (their calls only forward), the others still are. */
TEST(waits_table_full)
{
  start_following();
  enum { N = MPN__WAIT_SLOTS + 4 };
  static waiter x[N];
  pthread_t t[N];
  for (int i = 0; i < N; i++) {
    CHECK(pipe(x[i].go) == 0 && pipe(x[i].ready) == 0);
    CHECK(pthread_create(&t[i], NULL, wait_in_barrier, &x[i]) == 0);
    char c;
    CHECK(read(x[i].ready[0], &c, 1) == 1);
  }
  mpn__wait_state w[MPN__WAIT_SLOTS];
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS), in_barrier = 0;
  for (int i = 0; i < n && i < MPN__WAIT_SLOTS; i++)
    in_barrier += w[i].call != NULL;
  CHECK(n == MPN__WAIT_SLOTS && in_barrier == MPN__WAIT_SLOTS - 1);   /* this thread holds one, not in MPI */
  for (int i = 0; i < N; i++) {
    CHECK(write(x[i].go[1], "g", 1) == 1);
    pthread_join(t[i], NULL);
  }
  CHECK(mpn__waits_snapshot(w, MPN__WAIT_SLOTS) == 1);
}

TEST(waits_longest)
{
  mpn__wait_state w[4] = {{1, NULL, 0}, {2, "MPI_Barrier", 3.5}, {3, "MPI_Allreduce", 7.0}, {4, "MPI_Recv", 1.0}};
  CHECK(mpn__waits_longest(w, 4) == 2);
  CHECK(mpn__waits_longest(w, 2) == 1);
  CHECK(mpn__waits_longest(w, 1) == -1);   /* computing: nobody waits */
  CHECK(mpn__waits_longest(w, 0) == -1);
}

/* Overdue: one thread in one call for the timeout or longer; never when the
 * timeout is 0 (off), and never for a thread that computes, however long. */
TEST(hang_overdue_timeout)
{
  start_following();
  mpn__wait_state longest = {0, NULL, 0};
  publish_hang_timeout("3");
  CHECK(mpn__cfg()->hang_timeout_s == 3);
  mpn__waits_sample(mpn__now_ns() - 100 * SEC);   /* not in MPI for 100 s: computing */
  CHECK(!mpn__hang_overdue(&longest) && longest.call == NULL);
  mpn__wait_slot *s = mpn__waits_enter(MPN__CALL_Waitall);
  mpn__waits_sample(mpn__now_ns() - 2 * SEC);
  CHECK(!mpn__hang_overdue(&longest));
  CHECK(longest.call && !strcmp(longest.call, "MPI_Waitall") && longest.waited_s >= 2.0 && longest.tid == gettid());
  mpn__waits_leave(s);
  s = mpn__waits_enter(MPN__CALL_Waitall);
  mpn__waits_sample(mpn__now_ns() - 4 * SEC);
  CHECK(mpn__hang_overdue(&longest) && longest.waited_s >= 4.0);
  CHECK(mpn__hang_overdue(NULL));
  publish_hang_timeout("0");
  CHECK(!mpn__hang_overdue(&longest) && longest.waited_s >= 4.0);   /* off: still says who waits */
  mpn__waits_leave(s);
}

TEST(waits_progress_age)
{
  CHECK(mpn__waits_progress_age() == -1.0);
  mpn__waits_progress();
  double age = mpn__waits_progress_age();
  CHECK(age >= 0.0 && age < 5.0);
}
