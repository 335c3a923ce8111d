/*
 * job_watch.h - what mpinotify-run learns about the job it runs, and the
 * messages it sends about it: the ranks' notices through the relay (hello,
 * unarmed, bye, report), the launcher's output (its last lines, and Open MPI's notice
 * of a rank that died by a signal), and the launcher's exit status. From
 * those: the job's "started", "completed" and "failed" messages (event
 * "job"), and a "crash" message for a rank that died without a report of its
 * own (SIGKILL, the OOM killer), made by the launcher ("reported_by":
 * "launcher"). README.md "Job messages" describes the fields.
 *
 * Thread safety: every function may be called from any thread (one lock).
 */
#ifndef MPN_JOB_WATCH_H
#define MPN_JOB_WATCH_H

#include <mpinotify.h>
#include <stdbool.h>
#include <stddef.h>

enum { JOB_STARTED = 1u, JOB_COMPLETED = 2u, JOB_FAILED = 4u, JOB_ALL = 7u,
       JOB_STARTED_UNARMED = 8u,   /* "started" only as a warning: when ranks did not arm */
       JOB_DEFAULT = JOB_COMPLETED | JOB_FAILED | JOB_STARTED_UNARMED };

/* "started,completed,failed" (any subset, commas), "all" or "none"; false on anything else. */
bool job_events_parse(const char *s, unsigned *out);

typedef struct job_info {
  const char *name;            /* the job's name, or NULL */
  const char *command;         /* the launcher's command line, secrets masked */
  int np_guess;                /* ranks the command line asks for (-np), 0 if unknown */
  bool registering;            /* the relay runs: ranks can say hello */
} job_info;

typedef struct job_watch job_watch;

/* Copies what it needs; the job's names in its batch system come from the
 * environment (launcher_job_field_at), later also from the ranks' hellos. */
job_watch *job_watch_new(const job_info *info);
void job_watch_free(job_watch *w);

/* Never shown in output_tail (the relay key, values the configuration refers to). */
void job_watch_add_secret(job_watch *w, const char *value);

/* An mpn_relay_notice_fn: `arg` is the job_watch. */
void job_watch_notice(const char *type, const char *json, void *arg);

/* One line of the launcher's output (without its newline). */
void job_watch_output(job_watch *w, const char *line, size_t len);

/* Every rank of the job has said hello, or why it did not arm ("unarmed"); a hello from Python's hooks
 * alone (the rank may still call MPI_Init) does not count. */
bool job_watch_all_armed(job_watch *w);
/* Ranks heard of at all (started, armed or not); ranks started with the
 * library but not at MPI_Init yet (0 once the job ended). */
int job_watch_heard(job_watch *w);
int job_watch_starting(job_watch *w);
/* "started" would be a warning: fewer ranks armed than the job has, not
 * because they were told not to (MPINOTIFY_DISABLE). */
bool job_watch_start_warns(job_watch *w);

/* mpinotify-run received `sig` (SIGTERM, SIGINT...) at `wall_ms` while the
 * job ran: in a batch job, the batch system stopping it (time limit, cancellation). */
void job_watch_stop_signal(job_watch *w, int sig, long long wall_ms);

/* The ranks of this node that a SIGTERM ended marked it in `dir` (term-RANK
 * files, MPINOTIFY_RUN_DIR): they were torn down, not killed outright. NULL:
 * none. Before job_watch_ended. */
void job_watch_term_marks(job_watch *w, const char *dir);

/* The launcher ended with wait status `status`. For a failed batch job this
 * asks the batch system how it ended (launcher_ask_end: about 2 s at most). */
void job_watch_ended(job_watch *w, int status);

/* The messages, for mpn_sender_send; free with mpn_message_free. */
mpn_message *job_watch_started(job_watch *w);
/* "completed" or "failed", by the exit status given to job_watch_ended. */
mpn_message *job_watch_finished(job_watch *w);
/* Crash messages for ranks whose death the launcher noticed and no report
 * covers (each once: a second call returns none). Up to `max`; returns how many. */
int job_watch_unreported_deaths(job_watch *w, mpn_message **out, int max);
/* The failed job's end merged into the message of its root cause, so that
 * one failure gives one message: the rank's report the relay holds (its id
 * in held_id, for mpn_relay_release) or the crash message for a rank that
 * died without a report (held_id ""; job_watch_unreported_deaths then skips
 * it), with the job's outcome added (README.md "Job messages"). NULL when
 * the job did not fail or its root cause has no such message: then
 * job_watch_finished's "failed" goes on its own. */
mpn_message *job_watch_merged(job_watch *w, char *held_id, size_t cap);
/* The held reports that are consequences of the root cause (a peer gone,
 * after it): job_watch_merged lists them in its "reports", so they need no
 * message of their own. Up to `max` ids; returns how many. */
int job_watch_knock_ons(job_watch *w, char (*ids)[48], int max);
/* Whether the job failed (non-zero exit status or death by a signal). */
bool job_watch_failed(job_watch *w);

#endif /* MPN_JOB_WATCH_H */
