/*
 * mpn.h - internal declarations shared by the folders of lib/.
 * Nothing here is public: names are mpn__ or static. See docs/CONVENTIONS.md.
 */
#ifndef MPN_INTERNAL_H
#define MPN_INTERNAL_H

#include "mpinotify.h"

struct curl_slist;

#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>
#include <ucontext.h>

#define MPN__MAX_FRAMES 64     /* frames captured per backtrace */
#define MPN__SIG_FRAMES 5      /* top frames hashed into the signature */
#define MPN__HOST_MAX 64
#define MPN__PATH_MAX 512

/* ---- util.c: time, strings ---------------------------------------------- */
int64_t mpn__now_ns(void);            /* CLOCK_MONOTONIC; async-signal-safe */
int64_t mpn__wall_ns(void);           /* CLOCK_REALTIME; async-signal-safe */
void mpn__sleep_ms(long ms);
char *mpn__strdup(const char *s);     /* NULL-safe strdup */
size_t mpn__strlcpy(char *dst, const char *src, size_t size);
/* Async-signal-safe formatting into a fixed buffer; all return the new length. */
size_t mpn__fmt_str(char *buf, size_t cap, size_t len, const char *s);
size_t mpn__fmt_u64(char *buf, size_t cap, size_t len, uint64_t v);
size_t mpn__fmt_i64(char *buf, size_t cap, size_t len, int64_t v);
size_t mpn__fmt_hex(char *buf, size_t cap, size_t len, uint64_t v);
void mpn__iso8601(int64_t wall_ns, char *out, size_t cap);   /* 2026-11-22T10:00:00.123Z */

/* ---- log.c --------------------------------------------------------------- */
void mpn__log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- config.c ------------------------------------------------------------ */
typedef enum { MPN__CH_CONSOLE = 1, MPN__CH_WEBHOOK = 2 } mpn__channel_kind;

typedef struct mpn__channel {
  mpn__channel_kind kind;
  char *target;    /* what the transport uses: the http(s) URL without "KIND+" */
  char *masked;    /* the configured URL with secrets masked, for every output */
} mpn__channel;

struct mpn_options {
  char *urls;
  char *job_name;
  char *job_command;
  long timeout_ms;   /* -1: not set */
  long window_ms;    /* -1: not set */
};

typedef struct mpn__config {
  mpn__channel *channels;
  int nchannels;
  char *job_name;
  char *job_command;      /* masked */
  long timeout_ms;
  long window_ms;
  long poll_ms;           /* idle agent: one MPI_Test per poll_ms */
  int debug;
  int keep_thread_level;  /* MPINOTIFY_MPI_THREAD=keep */
  char spool_dir[MPN__PATH_MAX];
  char *ca_bundle;
  int config_checked;     /* the launcher already reported config errors */
} mpn__config;

/* Fills `cfg` from opts (may be NULL) and the environment. Problems are
 * collected in `err` (first one wins); the config keeps the valid parts. */
mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen);
void mpn__config_free(mpn__config *cfg);
mpn_code mpn__parse_channel(const char *url, mpn__channel *ch, char *err, size_t errlen);
int mpn__env_flag(const char *name);   /* 1 for "1", "yes", "true", "on" */
char *mpn__mask_command(const char *cmd);

/* ---- capture/ ------------------------------------------------------------ */
typedef struct mpn__frame {
  uintptr_t ip;
  uintptr_t offset;            /* ip - module load base */
  uintptr_t function_offset;
  int has_function;
  char module[MPN__PATH_MAX];
  char function[256];
} mpn__frame;

/* What the signal handler hands to the agent thread. */
typedef struct mpn__crash_slot {
  int signo;
  int si_code;
  uintptr_t fault_addr;
  int64_t wall_ns;
  int64_t mono_ns;
  pid_t tid;
  siginfo_t info;
  ucontext_t uc;
  int nraw;
  uintptr_t raw[MPN__MAX_FRAMES];
} mpn__crash_slot;

/* A failure as the report needs it. */
typedef struct mpn__event {
  const char *kind;     /* "crash" */
  int signo;
  uintptr_t fault_addr;
  int64_t wall_ns;      /* the fault's own time */
  int64_t mono_ns;
  uint64_t signature;
  int fatal;            /* the process dies after reporting */
  int nframes;
  mpn__frame frames[MPN__MAX_FRAMES];
} mpn__event;

int mpn__signals_install(void);             /* (re)install; chains to what is there */
void mpn__signals_uninstall(void);         /* put back what was there, if still ours */
void mpn__signals_altstack(void);           /* alternate stack for the calling thread */
const char *mpn__signal_name(int signo);    /* "SIGSEGV"; async-signal-safe */
int mpn__unwind_load(void);                 /* dlopen libunwind RTLD_LOCAL; 0 on success */
void mpn__unwind_prime(void);
/* Raw IPs from a signal context; async-signal-safe once primed. */
int mpn__unwind_raw(ucontext_t *uc, uintptr_t *ips, int max);
/* Full frames with module/offset/symbol from a saved context (agent thread). */
int mpn__unwind_frames(ucontext_t *uc, mpn__frame *frames, int max);
void mpn__symbolize(mpn__frame *f);
uint64_t mpn__signature(int signo, const mpn__frame *frames, int n);
int mpn__signature_first_frame(int signo, const mpn__frame *frames, int n);
void mpn__record_prepare(void);
void mpn__record_write(const mpn__crash_slot *slot);   /* async-signal-safe */
void mpn__record_remove(void);

/* ---- format/ ------------------------------------------------------------- */
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
} mpn__report;

char *mpn__report_json(const mpn__report *r);        /* malloc'd; NULL on OOM */
char *mpn__report_text(const mpn__report *r, int color); /* console panel */
/* Replaces every invalid UTF-8 sequence with U+FFFD: JSON needs valid text. */
char *mpn__utf8_sanitize(const char *s, size_t len);
void mpn__rank_ranges(const int *ranks, int n, char *out, size_t cap); /* "0-3,6" */

/* ---- deliver/ + channels/ ----------------------------------------------- */
/* Sends the report to every channel; returns the number of channels that
 * accepted it. Never runs past `deadline_mono_ns`. */
int mpn__deliver(const mpn__report *r, int64_t deadline_mono_ns);
void mpn__deliver_prime(void);
void mpn__console_send(const mpn__report *r);
/* A ready transfer of the JSON body to a webhook; *headers is the caller's to free. */
void *mpn__webhook_handle(const mpn__channel *ch, const char *body, long timeout_ms, struct curl_slist **headers);


/* ---- mpi/ ---------------------------------------------------------------- */
int mpn__mpi_resolve(void);          /* dlsym the PMPI table; 0 on success */
int mpn__mpi_setup(int provided);    /* private communicators, job token; 0 on success */
int mpn__fallback_claim(uint64_t signature);   /* node lock: 1 if this process reports */
void mpn__fallback_sweep(void);                /* drop claims older than a day */

/* Runs the event through an epoch. Returns 1 when the election produced a
 * result (it fills report fields and *leader), 0 when it could not. */
typedef struct mpn__outcome {
  int known;         /* signature was reported before: no message */
  int leader;        /* this rank reports */
  mpn__proc *procs;  /* ranks that hit the signature (leader only), malloc'd */
  int nprocs;
  int64_t first_wall_ns;
  int wait_leaders;  /* fatal non-leaders: leaders to hear "delivered" from */
} mpn__outcome;
/* Election state machine, driven by the agent thread. */
void mpn__election_start(void);      /* post the doorbell receive */
/* Joins an epoch another rank rang for. `take` captures a local failure
 * arriving meanwhile; it is returned in *taken with its outcome in *out.
 * Returns 1 if an epoch ran, 0 if none was due, -1 if it failed. */
int mpn__election_poll(const struct mpn__event *(*take)(void), const struct mpn__event **taken,
                       struct mpn__outcome *out);
int mpn__election_run(const mpn__event *ev, int64_t deadline_ns, mpn__outcome *out);
void mpn__election_done(int64_t deadline_ns);  /* leader: tell waiting ranks */
int mpn__election_wait(int64_t deadline_ns);   /* fatal non-leader: wait for leaders */
void mpn__election_finalize(int64_t deadline_ns);
void mpn__election_abandon(const char *why);
const char *mpn__election_error(void);

/* ---- core/ global state -------------------------------------------------- */
typedef struct mpn__state {
  atomic_int active;         /* handlers installed, agent running */
  atomic_int mpi_active;     /* agent may call MPI */
  atomic_int mpi_ok;         /* elections possible */
  atomic_int stop;           /* exit: agent must leave MPI alone */
  int disabled;
  int preloaded;
  pid_t pid;
  pid_t agent_tid;
  int rank;
  int world_size;
  int thread_level;          /* provided MPI thread level, -1 before MPI */
  char host[MPN__HOST_MAX];
  char self_path[MPN__PATH_MAX];  /* this library's file, "" if static */
  uint64_t job_token;
  int wake_fd[2];            /* handler -> agent */
  int reply_fd[2];           /* agent -> handler */
  int ack_fd[2];             /* agent -> application thread (finalize, exit) */
  mpn__config cfg;
  mpn__crash_slot slot;
  atomic_int crash_owner;    /* tid of the thread whose crash is handled, 0 if none */
  atomic_int crash_done;
} mpn__state;

extern mpn__state mpn__g;

int mpn__activate(void);
void mpn__config_ensure(void);       /* load the configuration once, when first needed */
int mpn__agent_start(void);
void mpn__agent_wake(char what);     /* 'm': MPI ready; 'f': finalize; 'x': exit */
int mpn__agent_wait_ack(long timeout_ms);
void mpn__on_mpi_initialized(int provided);
void mpn__on_mpi_finalize(void);
int mpn__mpi_world_rank_from_env(void);
const char *mpn__thread_level_name(void);   /* NULL before MPI_Init */

#endif
