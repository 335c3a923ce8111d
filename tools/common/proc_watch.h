/*
 * proc_watch.h - when processes of this node ended, seen from outside them:
 * mpinotify-run watches the ranks of its own node (pidfd_open, Linux 5.3+) so
 * that it can tell a rank that died before the launcher's teardown began (killed
 * with the rank the launcher named: two OOM kills) from one the teardown ended
 * (its SIGKILL, 1 s after a SIGTERM the rank had no time to handle).
 *
 * A process that is not ours cannot be waited for; a pidfd only says that it
 * ended, not how. Where pidfd_open is missing (old kernel, seccomp) nothing
 * is known and proc_watch_gone_ms says 0.
 *
 * Thread safety: every function may be called from any thread (one lock).
 */
#ifndef MPN_PROC_WATCH_H
#define MPN_PROC_WATCH_H

typedef struct proc_watch proc_watch;

/* Starts its thread; NULL when it cannot (then nothing is watched). */
proc_watch *proc_watch_new(void);
/* Stops the thread and frees everything; NULL is fine. */
void proc_watch_free(proc_watch *p);
/* Watches `pid` of this node under `key` (a rank). A key already watched is left as it is. */
void proc_watch_add(proc_watch *p, int key, long pid);
/* When the process of `key` was seen to end (wall clock, ms), or 0: alive, not watched, unknown. */
long long proc_watch_gone_ms(proc_watch *p, int key);

#endif
