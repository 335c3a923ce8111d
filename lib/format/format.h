/* format.h - the format layer (docs/internals/format.md): a failure as a
 * report, the report as a message (JSON, schema mpinotify/1), and the
 * message laid out for the channels (the view). No globals: everything a
 * message says comes in the report. Uses base/ and capture/. */
#ifndef MPN_FORMAT_H
#define MPN_FORMAT_H

#include "capture/capture.h"

struct mpn__channel;
struct json_t;

/* A failure as the report needs it. */
typedef struct mpn__event {
  const char *kind;     /* "crash", "exception", "exit", "mpi_error", "alert", "progress" */
  char headline[160];   /* what happened, for the title: "SIGSEGV", "ValueError", "exit status 1" */
  const char *severity; /* "critical", "error", "warning", "info" */
  int signo;
  uintptr_t fault_addr;
  int sent_by_pid;      /* a signal another process sent (kill, a batch system): its pid; 0 for a fault */
  int64_t wall_ns;      /* the event's own time */
  int64_t mono_ns;
  uint64_t signature;
  int fatal;            /* the process dies after reporting */
  void *extra;          /* json_t object of kind-specific fields, merged into the message; owned */
  struct mpn__channel *channels;   /* where to deliver instead of the configured channels; owned, or NULL */
  int nchannels;
  int nframes;
  mpn__frame frames[MPN__MAX_FRAMES];
} mpn__event;

typedef struct mpn__proc {
  int rank;
  int pid;
  char host[MPN__HOST_MAX];
} mpn__proc;

typedef struct mpn__report {
  const mpn__event *event;
  int64_t first_wall_ns;      /* earliest fault among the ranks */
  mpn__proc leader;
  mpn__proc *procs;
  int nprocs;
  int world_size;
  const char *election;       /* "ok" or "failed" */
  const char *election_error; /* why it failed, or NULL */
  const char *thread_level;   /* MPI thread level the library ran with, or NULL */
  const char *job_name;       /* or NULL */
  const char *job_command;    /* masked, or NULL */
  void *rank_output;          /* json_t * array: the leader's last lines of output (masked), or NULL */
  const char *slurm_job_id, *slurm_job_name, *slurm_step;   /* a Slurm job's, or NULL */
  const mpn__frame *frames;   /* the backtrace as shown (with file, line and inlined calls: capture's
                                 mpn__lines_resolve), or NULL: the event's own frames */
  int nframes;
  int by_launcher;            /* a launcher's report for a rank that could not (mpn_launcher_crash_new):
                                 what only the ranks know is null, and so are a pid <= 0 and a
                                 world_size <= 0 */
} mpn__report;

/* ---- json.c, report.c ---------------------------------------------------- */
char *mpn__report_json(const mpn__report *r);
void *mpn__frames_doc(const mpn__frame *frames, int n);   /* json_t * array, as a report's "backtrace" */        /* malloc'd; NULL on OOM */
void *mpn__report_doc(const mpn__report *r);         /* json_t *, schema mpinotify/1 */
void mpn__rank_ranges(const int *ranks, int n, char *out, size_t cap); /* "0-3,6" */

/* ---- message.c: the public mpn_message ---------------------------------- */
/* Every message is a JSON object of schema mpinotify/1 (json_t *, jansson)
 * with a stable id. Channels render it. */
struct mpn_message {
  char id[40];   /* "msg_" + 32 hex digits; webhook-id, spool file name */
  void *doc;     /* json_t * */
};
mpn_message *mpn__message_from_report(const mpn__report *r);
mpn_message *mpn__message_from_json(const char *json, const char *id);   /* spool, relay */
char *mpn__message_dump(const mpn_message *m);      /* compact JSON, malloc'd */
const char *mpn__msg_str(const mpn_message *m, const char *key);   /* top-level string or NULL */
/* Plain-text rendering shared by the simple channels: title line, then body. */
char *mpn__message_text(const mpn_message *m, int color);
const char *mpn__message_title(const mpn_message *m);

/* ---- view.c: a message laid out for the channels ------------------------ */
/* Strings are borrowed from the message (valid while it lives) unless the
 * comment says malloc'd. */
#define MPN__VIEW_FACTS 12
typedef struct mpn__fact {
  const char *label;   /* "Job", "Signal", "Ranks", "Hosts", "Leader", "First fault", "Election", "Signature" */
  char *value;         /* malloc'd; short: never shortened by a channel */
} mpn__fact;
typedef struct mpn__view {
  const char *title, *event, *severity, *signature, *text, *timestamp, *job, *command;
  int failure;          /* severity error or critical: mentions belong here only */
  mpn__fact facts[MPN__VIEW_FACTS];
  int nfacts;
  char *ranks;          /* malloc'd, whole ranges "0-63,65" (crash), or NULL */
  size_t nranks;
  char *hosts;          /* malloc'd: the failure's hosts (its processes'), else the job's; or NULL */
  char *job_hosts;      /* malloc'd: the hosts the job ran on ("hosts", or "job.hosts" merged), or NULL */
  char *processes;      /* malloc'd "rank 1  pid 42  node17\n...", or NULL: long, may be clipped */
  char *backtrace;      /* malloc'd "#0  fn+0x7 (mod+0x1677)\n...", or NULL: long, may be clipped */
  char *own_text;       /* malloc'd text the view made itself (v->text points to it), or NULL */
} mpn__view;
mpn__view *mpn__view_new(const mpn_message *m);
void mpn__view_free(mpn__view *v);
/* Python frames ({"file", "line", "function", "code"}, outermost first) as
 * Python prints a stack; malloc'd, NULL when there are none. */
char *mpn__python_frames_text(const void *frames_json);
/* How the job ended, for a failure's message that carries its job's end
 * (mpinotify-run merges them: "job" has "status") and a job message that is
 * its end (completed, failed): "failed with exit status 139 after 12.3 s; 5
 * other ranks ended after it without a failure of their own"; malloc'd, NULL
 * when the message carries none. */
char *mpn__job_end_text(const void *doc_json);
/* The hosts the job ran on, "node17, node18" (at most 8, then "+N more"):
 * a job message's "hosts", or the "job.hosts" mpinotify-run merged into a
 * failure's message; malloc'd, NULL when the message names none. */
char *mpn__job_hosts_text(const void *doc_json);
/* "The application said: ..." (the message's "application_error") when
 * neither its title nor its text says it already; malloc'd, or NULL. */
char *mpn__said_text(const void *doc_json);
/* The last lines of the leader's output (the message's "rank_output") as a
 * panel or a chat text shows them, one a line; malloc'd, NULL when none. */
char *mpn__rank_output_text(const void *doc_json);
/* Native frames (the message's "backtrace"), one line each, "#0  fn+0x7
 * (module+0x1677)" after `indent`; at most `max`, then "... N more frames". */
void mpn__frames_text(mpn__buf *b, const void *frames_json, const char *indent, size_t max);
/* A malloc'd copy of s with at most `max` characters (chars) or bytes, cut
 * at a line where possible, ending in "... (shortened)" when cut. */
char *mpn__clip(const char *s, size_t max, int chars);

#endif
