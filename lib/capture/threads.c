/* threads.c - an alternate signal stack for every thread created while the
 * library is armed.
 *
 * A stack overflow faults on the guard page of the thread's own stack: the
 * kernel can only run the handler if the thread has an alternate stack, or
 * it kills the process without any handler. MPI_Init's thread and the
 * library's own threads get one from mpn__signals_altstack(); the others are
 * started through this pthread_create, which runs the start routine on a
 * thread that has one, and frees it at thread exit (a key destructor, so
 * pthread_exit and cancellation free it too). A preloaded library arms only
 * in MPI_Init, but a rank's runtime often starts its threads before it
 * (thread pools of Python, OpenMP, data loaders): in a process a launcher
 * started as a rank, threads get their stack from the start (so do the
 * rank's children, which inherit its environment: 64 KiB of address space
 * per thread, nothing else). Threads of a disabled process, and of other
 * processes the preload reaches (shells, compilers outside the ranks), are
 * left exactly as they were until the library arms. */
#include "capture/capture.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

typedef int create_fn(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

struct start {
  void *(*fn)(void *);
  void *arg;
};

static pthread_key_t altstack_key;
static int key_ok;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static int rank_process;   /* a launcher started this process as a rank */

static void make_key(void)
{
  key_ok = pthread_key_create(&altstack_key, mpn__signals_altstack_free) == 0;
  /* Checked here too: a library constructor earlier than ours may start threads. */
  rank_process = mpn__mpi_world_rank_from_env() >= 0 && !mpn__env_flag("MPINOTIFY_DISABLE");
}

/* Whether a new thread gets an alternate stack. */
static int wanted(void)
{
  if (mpn__self.disabled || pthread_once(&key_once, make_key) != 0 || !key_ok)
    return 0;
  return atomic_load(&mpn__crash.armed) || rank_process;
}

static void *start_with_altstack(void *p)
{
  struct start s = *(struct start *)p;
  free(p);
  void *mem = mpn__signals_altstack();
  if (mem && pthread_setspecific(altstack_key, mem) != 0)
    mpn__signals_altstack_free(mem);
  return s.fn(s.arg);
}

static create_fn *real_create(void)
{
  static create_fn *real;
  if (!real)
    *(void **)&real = dlsym(RTLD_NEXT, "pthread_create");
  return real;
}

MPN_EXTERN int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
  create_fn *real = real_create();
  if (!real)
    return EAGAIN;
  struct start *s = NULL;
  if (wanted())
    s = malloc(sizeof *s);
  if (!s)
    return real(t, attr, fn, arg);
  s->fn = fn;
  s->arg = arg;
  int rc = real(t, attr, start_with_altstack, s);
  if (rc != 0)
    free(s);
  return rc;
}
