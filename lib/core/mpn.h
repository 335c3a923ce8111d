/*
 * mpn.h - internal declarations shared by the folders of lib/.
 * Nothing here is public: names are mpn__ or static. See docs/CONVENTIONS.md.
 */
#ifndef MPN_INTERNAL_H
#define MPN_INTERNAL_H

#include "mpinotify.h"

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
/* A growing string: start with {malloc(N), 0, N}; p stays NUL-terminated. */
typedef struct mpn__buf {
  char *p;
  size_t len, cap;
} mpn__buf;
void mpn__buf_add(mpn__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- log.c --------------------------------------------------------------- */
void mpn__log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void mpn__log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- config.c, url.c, secret.c, config_file.c ---------------------------- */
struct mpn__kind;

/* One option of a channel: a query parameter of its URL or a key of its
 * section in the config file. `value` is as configured (it may be a
 * reference, "env:NAME" or "file:/path"); `resolved` is what it refers to. */
typedef struct mpn__opt {
  char *key;
  char *value;
  char *resolved;
} mpn__opt;

typedef struct mpn__channel {
  const struct mpn__kind *kind;
  char *spec;      /* as configured, references unresolved: spool, relay, round trip */
  char *url;       /* the service's URL: no "KIND+", none of our options; holds secrets */
  char *masked;    /* the spec with every secret masked, for every output */
  mpn__opt *opts;
  int nopts;
  long timeout_ms;          /* total per attempt; 0: what the budget leaves */
  long connect_timeout_ms;
  int retries;              /* attempts after the first */
  int rate_n;               /* at most rate_n messages per rate_window_ms; 0: no limit */
  long rate_window_ms;
} mpn__channel;

struct mpn_options {
  char *urls;
  char *job_name;
  char *job_command;
  long timeout_ms;   /* -1: not set */
  long window_ms;    /* -1: not set */
  char *config_text; /* mpn_options_set_config: used instead of MPINOTIFY_CONFIG's file */
  long long exception_parts;   /* -1: not set */
  long long alert_cooldown;    /* -1: not set */
  long long alert_cap;         /* -1: not set */
  long long progress_every;    /* -1: not set */
};

enum { MPN__RELAY_OFF = 0, MPN__RELAY_AUTO = 1, MPN__RELAY_ALWAYS = 2 };

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
  int relay_mode;         /* MPN__RELAY_* */
  char *relay_addr;       /* host:port of the launcher's relay, or NULL */
  char *relay_key;        /* hex, 64 digits; secret */
  char *config_file;      /* MPINOTIFY_CONFIG, or NULL */
  unsigned exception_parts;   /* MPN_SIGNATURE_* */
  long long alert_cooldown;   /* steps */
  long alert_cap;
  long long progress_every;   /* 0: off */
  int exit_reports;           /* MPINOTIFY_EXIT_REPORTS (default on): non-zero exits are reported */
  int unknown_kinds;          /* channels of kinds not (yet) registered: mpn_register_channel reloads */
} mpn__config;

/* Fills `cfg` from opts (may be NULL), the environment and MPINOTIFY_CONFIG.
 * Problems are collected in `err`, one per line; the config keeps the valid
 * parts and the first problem's code is returned. */
/* A list as MPINOTIFY_URLS takes it, parsed into channels (*out malloc'd,
 * free each with mpn__channel_free); problems as in mpn__config_load. */
mpn_code mpn__parse_url_list(const char *urls, mpn__channel **out, int *n, char *err, size_t errlen);
mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen);
void mpn__config_free(mpn__config *cfg);
/* Parses one channel spec: "KIND+https://...", a service's own URL, "smtp(s)://",
 * "console://", or a reference "env:NAME" / "file:/path" holding one of those. */
mpn_code mpn__parse_channel(const char *spec, mpn__channel *ch, char *err, size_t errlen);
/* Adds options to a spec: the config file's section keys. Returns a new spec. */
char *mpn__spec_with_options(const char *url, const mpn__opt *opts, int nopts);
mpn_code mpn__channel_copy(mpn__channel *dst, const mpn__channel *src);
void mpn__channel_free(mpn__channel *ch);
/* The resolved value of an option, or NULL when it is not set. */
const char *mpn__channel_opt(const mpn__channel *ch, const char *key);
void mpn__scrub(char *text, const mpn__channel *ch);   /* blanks the channel's tokens quoted in text */
int mpn__env_flag(const char *name);   /* 1 for "1", "yes", "true", "on" */
char *mpn__mask_command(const char *cmd);
void mpn__add_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* secret.c: "env:NAME" and "file:/path" references. Returns a malloc'd value,
 * or NULL with a problem in err (naming the reference, never a value). A value
 * that is not a reference is returned as a copy. */
char *mpn__resolve_ref(const char *value, const char *what, char *err, size_t errlen);
int mpn__is_ref(const char *value);
/* config_file.c: reads an INI file (README.md "Config file"); calls back per
 * setting. Section "" holds global keys; "channel NAME" sections channels. */
typedef struct mpn__file_channel {
  char *name;
  char *url;
  mpn__opt *opts;
  int nopts;
} mpn__file_channel;
typedef struct mpn__file_config {
  mpn__opt *globals;   /* key -> value of the [mpinotify] section */
  int nglobals;
  mpn__file_channel *channels;
  int nchannels;
} mpn__file_config;
mpn_code mpn__config_file_read(const char *path, mpn__file_config *fc, char *err, size_t errlen);
mpn_code mpn__config_text_read(const char *text, mpn__file_config *fc, char *err, size_t errlen);
const char *mpn__file_global(const mpn__file_config *fc, const char *key);
void mpn__config_file_free(mpn__file_config *fc);

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
  void *py_tstate;       /* the faulting thread's PyThreadState, or NULL (python.c) */
} mpn__crash_slot;

/* A failure as the report needs it. */
typedef struct mpn__event {
  const char *kind;     /* "crash", "exception", "exit", "mpi_error", "alert", "progress" */
  char headline[160];   /* what happened, for the title: "SIGSEGV", "ValueError", "exit status 1" */
  const char *severity; /* "critical", "error", "warning", "info" */
  int signo;
  uintptr_t fault_addr;
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

/* ---- events.c: failures other than a signal, from any thread but a handler */
mpn__event *mpn__event_new(const char *kind, const char *severity);   /* time set, extra = {} */
void mpn__event_free(mpn__event *ev);
/* The signature: kind, the given parts (NULL entries skipped) and, when
 * `site`, the top frames (module + offset, as for crashes). */
void mpn__event_sign(mpn__event *ev, const char *const *parts, int nparts, int site);
/* Hands the event to the agent, which takes ownership. wait_ms > 0: returns
 * once it has been handled (elected, delivered) or after wait_ms; for a
 * process about to end (exit, abort, terminate). MPN_E_NOT_INITIALIZED when
 * the library is not armed. Never call from a signal handler. */
mpn_code mpn__event_submit(mpn__event *ev, long wait_ms);
/* The agent's side: the next queued event, or NULL; and its completion. */
mpn__event *mpn__event_take(void);
void mpn__event_done(mpn__event *ev);
/* Set when a fatal event was reported (terminate, abort): the SIGABRT that
 * follows is the same failure and is only chained, never reported again. */
extern atomic_int mpn__fatal_reported;

int mpn__signals_install(void);             /* (re)install; chains to what is there */
void mpn__signals_uninstall(void);         /* put back what was there, if still ours */
void *mpn__signals_altstack(void);          /* alternate stack for the calling thread; its mapping or NULL */
void mpn__signals_altstack_free(void *mem); /* at thread exit: that mapping */
const char *mpn__signal_name(int signo);    /* "SIGSEGV"; async-signal-safe */
/* Calls fn(arg); a fault inside it (reading another thread's state) returns -1 instead of ending the process. */
int mpn__guarded_call(void (*fn)(void *), void *arg);
int mpn__unwind_load(void);                 /* dlopen libunwind RTLD_LOCAL; 0 on success */
void mpn__unwind_prime(void);
/* Raw IPs from a signal context; async-signal-safe once primed. */
int mpn__unwind_raw(ucontext_t *uc, uintptr_t *ips, int max);
/* Full frames with module/offset/symbol from a saved context (agent thread). */
int mpn__unwind_frames(ucontext_t *uc, mpn__frame *frames, int max);
void mpn__symbolize(mpn__frame *f);
int mpn__unwind_here(mpn__frame *frames, int max, int skip);   /* the caller's stack, not a signal's */
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

struct json_t;
char *mpn__report_json(const mpn__report *r);        /* malloc'd; NULL on OOM */
void *mpn__report_doc(const mpn__report *r);         /* json_t *, schema mpinotify/1 */
struct json_t *mpn__jstr(const char *s);             /* a JSON string of valid UTF-8, or null */
/* Replaces every invalid UTF-8 sequence with U+FFFD: JSON needs valid text. */
char *mpn__utf8_sanitize(const char *s, size_t len);
void mpn__rank_ranges(const int *ranks, int n, char *out, size_t cap); /* "0-3,6" */

/* ---- messages (format/message.c) ------------------------------------------ */
/* The public mpn_message: every message is a JSON object of schema
 * mpinotify/1 (json_t *, jansson) with a stable id. Channels render it. */
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

/* view.c: a message laid out for the channels. Strings are borrowed from
 * the message (valid while it lives) unless the comment says malloc'd. */
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
  char *hosts;          /* malloc'd, or NULL */
  char *processes;      /* malloc'd "rank 1  pid 42  node17\n...", or NULL: long, may be clipped */
  char *backtrace;      /* malloc'd "#0  fn+0x7 (mod+0x1677)\n...", or NULL: long, may be clipped */
  char *own_text;       /* malloc'd text the view made itself (v->text points to it), or NULL */
} mpn__view;
mpn__view *mpn__view_new(const mpn_message *m);
void mpn__view_free(mpn__view *v);
size_t mpn__utf8_len(const char *s);   /* characters */
/* Python frames ({"file", "line", "function", "code"}, outermost first) as
 * Python prints a stack; malloc'd, NULL when there are none. */
char *mpn__python_frames_text(const void *frames_json);
/* A malloc'd copy of s with at most `max` characters (chars) or bytes, cut
 * at a line where possible, ending in "... (shortened)" when cut. */
char *mpn__clip(const char *s, size_t max, int chars);

/* ---- channels/ ------------------------------------------------------------- */
#include <curl/curl.h>

/* What a channel sets up for one attempt; the engine frees every member. */
typedef struct mpn__attempt {
  CURL *easy;                    /* common options already set (timeouts, TLS, proxy) */
  struct curl_slist *headers;
  struct curl_slist *rcpt;
  curl_mime *mime;
  char *url;
  char *body;
  size_t upload_len, upload_off; /* a raw upload of `body` (email) */
} mpn__attempt;

/* How a channel reads a service's answer. */
typedef struct mpn__verdict {
  mpn_code code;          /* MPN_OK: accepted */
  int retry;              /* worth another attempt */
  long retry_after_ms;    /* the service's own wait, -1 if none */
  char detail[256];       /* no secrets */
} mpn__verdict;

typedef struct mpn__kind {
  const char *name;                  /* "slack": the KIND in KIND+https:// */
  const char *const *options;        /* query keys the kind consumes (NULL-terminated) */
  const char *const *secrets;        /* of those, the ones that are secret */
  const char *const *required;       /* of those, the ones that must be set */
  int rate_n;                        /* service limit: rate_n per rate_window_ms */
  long rate_window_ms;
  /* Recognises the service's own webhook URL; NULL: only by KIND+. */
  int (*match)(const char *host, const char *path);
  /* Checks what parsing cannot (e.g. an option's form); NULL: nothing. */
  mpn_code (*validate)(const mpn__channel *ch, char *err, size_t errlen);
  /* Builds the request for one attempt. */
  mpn_code (*prepare)(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a);
  /* Reads the answer; NULL: mpn__judge_http. */
  void (*judge)(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v);
  /* Delivers locally instead (console); NULL for network channels. */
  mpn_code (*local)(const mpn__channel *ch, const mpn_message *m);
  /* The service drops a repeated message (webhook-id, dedup_key): an attempt
   * whose request was sent but not answered may be retried. */
  int idempotent;
  /* A channel kind registered by the program (mpn_register_channel). */
  mpn_channel_send_fn custom;
  void *custom_user;
} mpn__kind;

const mpn__kind *mpn__kind_by_name(const char *name, size_t len);   /* built-in or registered */
const mpn__kind *mpn__custom_kind(const char *name, size_t len);  /* registered only (custom.c) */
const mpn__kind *mpn__kind_by_host(const char *host, const char *path);
const char *mpn__kind_names(void);   /* "webhook, slack, ..." for error messages */
/* 2xx accepted; 408, 429 and 5xx retried (Retry-After, JSON retry_after). */
void mpn__judge_http(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v);
/* JSON body helpers for judges: integer or string member, NULL/-1 when absent. */
int mpn__json_body_int(const char *body, size_t len, const char *key, long long *out);
double mpn__json_retry_after(const char *body, size_t len);   /* seconds, <0 if none */
/* For services with an error code in a 200 body; the code lists end with 0. */
void mpn__judge_body_code(const char *key, const char *msg_key, const long long *rate_codes,
                          const long long *fatal, long status, const char *body, size_t len, mpn__verdict *v);
/* Sets up a JSON POST of `doc` (a json_t *, consumed) to `url`. */
mpn_code mpn__json_post(mpn__attempt *a, const char *url, void *doc);
int mpn__host_is(const char *host, const char *domain);   /* host is domain or a subdomain of it */
size_t mpn__room_after(size_t room, const char *s);       /* room minus s's length, at least 0 */
/* A payload built with `room` bytes for its long parts; returns a json_t *. */
typedef struct json_t *(*mpn__build_fn)(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room);
/* Builds, and shrinks the room until the compact JSON is at most `limit` bytes. */
void *mpn__fit_json(mpn__build_fn build, const mpn__channel *ch, const mpn_message *m, const mpn__view *v,
                    size_t room, size_t limit);
/* sign.c: malloc'd signatures. DingTalk: URL-encoded; Feishu: base64;
 * Standard Webhooks: "v1,<base64>". */
char *mpn__dingtalk_sign(const char *secret, long long ts_ms);
char *mpn__feishu_sign(const char *secret, long long ts_s);
char *mpn__stdwebhook_sign(const char *secret, const char *id, long long ts_s, const char *body);

/* ---- deliver/ (the engine) ---------------------------------------------- */
/* One message on several channels: submitted to the delivery thread, which
 * writes it ahead to the spool, sends, retries, rate-limits and relays. */
typedef struct mpn__batch mpn__batch;
typedef struct mpn__send_opts {
  const char *spool_dir;
  const char *ca_bundle;
  int relay_mode;
  const char *relay_addr;
  const char *relay_key;
  int no_spool;             /* already kept (a flush): write no new copy */
  int log_failures;         /* nobody waits for the results: the engine logs what failed */
} mpn__send_opts;
mpn__batch *mpn__submit(const mpn__channel *chs, int n, const mpn_message *m, int64_t deadline_ns,
                        const mpn__send_opts *o);
/* Waits until every channel finished or the deadline; 1 when all finished. */
int mpn__batch_wait(mpn__batch *b, int64_t deadline_ns);
/* Reports each channel's outcome; returns how many accepted the message. */
int mpn__batch_results(mpn__batch *b, mpn_result_fn cb, void *arg);
void mpn__batch_release(mpn__batch *b);
void mpn__deliver_prime(void);
void mpn__send_opts_from(mpn__send_opts *o, const mpn__config *cfg);
/* The crash path: the report to every configured channel, bounded. Returns
 * the number of channels that accepted it (console counts). */
int mpn__deliver(const mpn__report *r, int64_t deadline_mono_ns);
/* The same without waiting: the engine delivers (or spools) on its own; for
 * notices, so the agent is free for the next election. 1 when submitted. */
int mpn__deliver_async(const mpn__report *r, int64_t deadline_mono_ns);

/* sender.c: delivers to the channels given and waits; no_spool: already kept. */
mpn_code mpn__send_to(const mpn__config *cfg, const mpn__channel *chs, int n, const mpn_message *m,
                      int64_t deadline, int no_spool, mpn_result_fn cb, void *arg);

/* spool.c */
int mpn__spool_prepare(const char *dir, char *err, size_t errlen);   /* mkdir 0700, owner check */
/* Writes the message for one channel atomically; returns an fd holding an
 * flock on it (the message is in flight) or -1; *path receives its name. */
int mpn__spool_write(const char *dir, const mpn_message *m, const mpn__channel *ch, char *path, size_t cap);
void mpn__spool_done(int fd, const char *path, int delivered);   /* unlink if delivered; unlock */
typedef struct mpn__spooled {
  char path[MPN__PATH_MAX + 256];
  char *spec;
  mpn_message *msg;
  int fd;                   /* locked */
} mpn__spooled;
/* Next spooled message nobody is delivering, locked; 0 when none is left. */
int mpn__spool_next(const char *dir, void **iter, mpn__spooled *out);
void mpn__spool_iter_end(void *iter);

/* ---- relay/ -------------------------------------------------------------- */
/* seal.c: AES-256-GCM frames with timestamp and nonce (key: 32 bytes). */
char *mpn__relay_seal(const unsigned char key[32], const char *plain, size_t len, size_t *out_len);
/* Returns the plaintext (malloc'd) or NULL; *why says why (forged, stale, replayed). */
char *mpn__relay_open(const unsigned char key[32], const char *frame, size_t len, size_t *out_len,
                      const char **why);
int mpn__hex_key(const char *hex, unsigned char key[32]);   /* 0 on success */
/* Seals as if at time_ms (wall clock, ms since the epoch): tests build stale frames. */
char *mpn__relay_seal_at(const unsigned char key[32], const char *plain, size_t len, int64_t time_ms,
                         size_t *out_len);
void mpn__relay_keygen(unsigned char key[32]);   /* RAND_bytes; aborts rather than return a weak key */
/* Lowercase hex of n bytes into out (2n + 1 bytes, NUL-terminated). */
void mpn__hex_encode(const unsigned char *in, size_t n, char *out);
/* server.c: the launcher's HTTP listener for sealed frames (POST /relay). */
/* 0: accepted; MPN__RELAY_CLAIMED / _REPORTED: a claim for another rank's
 * failure (answered 409 / 410); anything else: busy (503). */
typedef int (*mpn__relay_accept_fn)(const char *plain, size_t len, void *arg);
enum { MPN__RELAY_CLAIMED = 409, MPN__RELAY_REPORTED = 410 };
typedef struct mpn__relay_server mpn__relay_server;
/* Listens on every IPv4 interface (INADDR_ANY), port 0 (ephemeral), in its own thread.
   *port receives the port. NULL on failure with a reason in err. */
mpn__relay_server *mpn__relay_server_start(const unsigned char key[32], mpn__relay_accept_fn fn, void *arg,
                                           int *port, char *err, size_t errlen);
void mpn__relay_server_stop(mpn__relay_server *s);   /* stops accepting, joins the thread, frees */
void mpn__relay_server_counts(const mpn__relay_server *s, long *accepted, long *rejected);
/* notify.c: the rank's notices to mpinotify-run through its relay (none
 * without MPINOTIFY_RELAY_ADDR); bounded, best effort. hello: the library is
 * armed (MPI_Init); unarmed: MPI_Init was called but the library could not arm
 * (`why`: one line, no secrets) or is disabled; bye: MPI_Finalize; report: a
 * message this rank delivered (called by the reporter after delivering,
 * before telling others "done"). */
void mpn__launcher_hello(void);
void mpn__launcher_unarmed(const char *why);
void mpn__launcher_bye(void);
void mpn__launcher_report(const mpn__report *r);
/* Without an election: asks the launcher's relay whether this rank reports
 * the signature (answers within `deadline_ns`, CLOCK_MONOTONIC). */
enum { MPN__CLAIM_NO_ANSWER = -1, MPN__CLAIM_MINE = 1, MPN__CLAIM_TAKEN = 0, MPN__CLAIM_REPORTED = 2 };
int mpn__launcher_claim(uint64_t signature, int64_t deadline_ns);
/* Waits (bounded) until the claimer's report of the signature is out. */
void mpn__launcher_wait_reported(uint64_t signature, int64_t deadline_ns);

/* ---- mpi/ ---------------------------------------------------------------- */
int mpn__mpi_resolve(void);          /* dlsym the PMPI table; 0 on success */
int mpn__mpi_loaded(void);           /* an MPI library is in the process (not necessarily initialised) */
int mpn__mpi_setup(int provided);    /* private communicators, job token; 0 on success */
int mpn__fallback_claim(uint64_t signature);   /* node lock: 1 if this process reports */
void mpn__fallback_release(void);              /* the claimer has reported */
void mpn__fallback_wait(uint64_t signature, int64_t deadline);   /* a fatal non-claimer waits for it */
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
int64_t mpn__election_gather_ns(void);       /* the last epoch's allgather, for the timing log */
int mpn__election_known(uint64_t sig);       /* reported before in this job (as far as we know) */
void mpn__election_remember(uint64_t sig);

/* ---- core/ global state -------------------------------------------------- */
typedef struct mpn__state {
  atomic_int active;         /* handlers installed, agent running */
  atomic_int mpi_active;     /* agent may call MPI */
  atomic_int mpi_ok;         /* elections possible */
  atomic_int stop;           /* exit: agent must leave MPI alone */
  atomic_int mpi_finalized;  /* the application called MPI_Finalize */
  int disabled;
  int preloaded;
  int launched;              /* armed before MPI_Init in a process a launcher started (init.c) */
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
void mpn__cxx_setup(void);
/* python.c: Python ranks (see there). */
void mpn__python_boot(void);         /* constructor: the hook's folder on PYTHONPATH */
void mpn__python_prime(void);        /* arm time: CPython's entry points */
void *mpn__python_thread_state(void);   /* async-signal-safe */
void *mpn__python_traceback(void *tstate);   /* json_t * frames, outermost first, or NULL */
void mpn__python_mark_rank(void);    /* MPI_Init: this process's children are not ranks */
int mpn__python_may_call(void);      /* 1: not Python, or this thread holds the GIL of a live interpreter */           /* cxx.c: C++ process: report uncaught exceptions */
void mpn__config_ensure(void);       /* load the configuration once, when first needed */
void mpn__config_report(void);       /* print its problems now (rank 0 only), if not yet */
void mpn__config_reload(void);       /* a channel kind was registered: parse again */
int mpn__agent_start(void);
void mpn__agent_wake(char what);     /* 'm': MPI ready; 'f': finalize; 'x': exit */
int mpn__agent_wait_ack(long timeout_ms);
void mpn__on_mpi_initialized(int provided);
void mpn__on_mpi_finalize(void);
int mpn__mpi_world_rank_from_env(void);
int mpn__world_size_from_env(void);   /* the launcher's job size (OMPI_COMM_WORLD_SIZE, ...), 0 if none */
const char *mpn__thread_level_name(void);   /* NULL before MPI_Init */

#endif
