/*
 * proc_watch.c - one thread polls a pidfd per watched process (proc_watch.h).
 * The list only grows (one entry per rank of this node) and is rebuilt into
 * the poll set after each wake-up: a new process is added through the
 * eventfd, which also stops the thread.
 */
#include "proc_watch.h"

#include "tool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434   /* the same number on every Linux architecture */
#endif

typedef struct entry {
  int key;
  int fd;               /* the pidfd, -1 once the process ended */
  long long gone_ms;
} entry;

struct proc_watch {
  pthread_mutex_t lock;
  pthread_t thread;
  int wake;             /* eventfd */
  bool stop;
  entry *e;
  int n, cap;
};

/* The pollfds of the processes still alive, the eventfd first; entries[i] is pfd[i + 1]'s. */
static int poll_set(proc_watch *p, struct pollfd **pfd, int **which)
{
  pthread_mutex_lock(&p->lock);
  *pfd = tool_xmalloc(sizeof **pfd * (size_t)(p->n + 1));
  *which = tool_xmalloc(sizeof **which * (size_t)(p->n + 1));
  int k = 0;
  (*pfd)[k++] = (struct pollfd){.fd = p->wake, .events = POLLIN};
  for (int i = 0; i < p->n; i++)
    if (p->e[i].fd >= 0) {
      (*which)[k] = i;
      (*pfd)[k++] = (struct pollfd){.fd = p->e[i].fd, .events = POLLIN};
    }
  pthread_mutex_unlock(&p->lock);
  return k;
}

static void *watch_main(void *arg)
{
  proc_watch *p = arg;
  for (;;) {
    struct pollfd *pfd;
    int *which;
    int k = poll_set(p, &pfd, &which);
    int rc = poll(pfd, (nfds_t)k, -1);   /* ends on a death, a new process, or the stop (eventfd) */
    long long now = tool_wall_ms();
    uint64_t v;
    if (rc > 0 && pfd[0].revents && read(p->wake, &v, sizeof v) < 0 && errno != EAGAIN)
      rc = -1;   /* read before looking at stop: a stop written after it wakes the next poll */
    pthread_mutex_lock(&p->lock);
    bool stop = p->stop;
    for (int j = 1; rc > 0 && j < k; j++)
      if (pfd[j].revents) {
        entry *e = &p->e[which[j]];
        close(e->fd);
        e->fd = -1;
        e->gone_ms = now;
      }
    pthread_mutex_unlock(&p->lock);
    free(pfd);
    free(which);
    if (stop || (rc < 0 && errno != EINTR))
      return NULL;
  }
}

proc_watch *proc_watch_new(void)
{
  proc_watch *p = tool_xmalloc(sizeof *p);
  memset(p, 0, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  p->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  /* no signal for this thread: mpinotify-run's main thread forwards them to the launcher */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = p->wake < 0 ? -1 : pthread_create(&p->thread, NULL, watch_main, p);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    if (p->wake >= 0)
      close(p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
  }
  return p;
}

static void wake(proc_watch *p)
{
  uint64_t one = 1;
  if (write(p->wake, &one, sizeof one) < 0) {
    /* full (never, at 2^64 - 1): the thread is awake anyway */
  }
}

void proc_watch_free(proc_watch *p)
{
  if (!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_mutex_unlock(&p->lock);
  wake(p);
  pthread_join(p->thread, NULL);
  for (int i = 0; i < p->n; i++)
    if (p->e[i].fd >= 0)
      close(p->e[i].fd);
  close(p->wake);
  free(p->e);
  pthread_mutex_destroy(&p->lock);
  free(p);
}

void proc_watch_add(proc_watch *p, int key, long pid)
{
  if (!p || pid <= 0)
    return;
  pthread_mutex_lock(&p->lock);
  bool known = false;
  for (int i = 0; i < p->n && !known; i++)
    known = p->e[i].key == key;
  int fd = known ? -1 : (int)syscall(SYS_pidfd_open, (pid_t)pid, 0);
  if (fd >= 0) {
    if (p->n == p->cap) {
      int cap = p->cap ? p->cap * 2 : 64;
      entry *grown = realloc(p->e, sizeof *grown * (size_t)cap);
      if (grown) {
        p->e = grown;
        p->cap = cap;
      }
    }
    if (p->n < p->cap)
      p->e[p->n++] = (entry){.key = key, .fd = fd};
    else {
      close(fd);
      fd = -1;
    }
  }
  pthread_mutex_unlock(&p->lock);
  if (fd >= 0)
    wake(p);
}

long long proc_watch_gone_ms(proc_watch *p, int key)
{
  if (!p)
    return 0;
  pthread_mutex_lock(&p->lock);
  long long ms = 0;
  for (int i = 0; i < p->n; i++)
    if (p->e[i].key == key)
      ms = p->e[i].gone_ms;
  pthread_mutex_unlock(&p->lock);
  return ms;
}
