/*
 * mpinotify.h - the one public header of libmpinotify.
 *
 * libmpinotify reports failures of MPI jobs: one message per unique failure
 * across all ranks, sent by one elected rank. Most programs need none of this
 * API: preloading the library (or running under mpinotify-run) or linking it
 * is enough, and configuration comes from the environment (see README.md).
 * This header is for programs that want to configure or query the library,
 * and for the tools shipped with it.
 *
 * Conventions for every function below:
 *  - Ownership: strings passed in are copied; nothing returned must be freed
 *    unless the function says so.
 *  - Thread safety: stated per function.
 *  - Signal safety: no function here may be called from a signal handler
 *    unless its comment says "async-signal-safe".
 */
#ifndef MPINOTIFY_H
#define MPINOTIFY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MPN_BUILDING_LIBRARY) && defined(__GNUC__)
#  define MPN_EXTERN __attribute__((visibility("default")))
#else
#  define MPN_EXTERN
#endif

#define MPN_VERSION_MAJOR 0
#define MPN_VERSION_MINOR 1
#define MPN_VERSION_PATCH 0
#define MPN_VERSION_STRING "0.1.0"
/* One number that grows with every release: 0xMMmmpp. */
#define MPN_VERSION_NUM ((MPN_VERSION_MAJOR << 16) | (MPN_VERSION_MINOR << 8) | MPN_VERSION_PATCH)

/*
 * Error codes: MPN_OK, MPN_E_INVALID_ARGUMENT, ... This enum only grows:
 * values are never renumbered or reused, so they may be stored and compared
 * across versions. One list gives each code's name (MPN_ + name), value and
 * mpn_strerror's text: X(name, value, text); new codes go at its end.
 */
#define MPN_CODES(X) \
  X(OK, 0, "no error") \
  X(E_INVALID_ARGUMENT, 1, "invalid argument") /* a NULL or out-of-range argument */ \
  X(E_NO_MEMORY, 2, "out of memory") /* an allocation failed */ \
  X(E_BAD_URL, 3, "malformed channel URL") /* a channel URL could not be parsed */ \
  X(E_UNKNOWN_KIND, 4, "unknown channel kind") /* a channel URL names no known channel kind */ \
  X(E_DISABLED, 5, "disabled by MPINOTIFY_DISABLE") /* MPINOTIFY_DISABLE is set */ \
  X(E_ALREADY_INITIALIZED, 6, "already initialized") /* mpn_init was called twice */ \
  X(E_NOT_INITIALIZED, 7, "not initialized") /* the library is not active in this process */ \
  X(E_TIMEOUT, 8, "deadline passed") /* a deadline passed */ \
  X(E_DELIVERY, 9, "delivery failed") /* a channel did not accept a message */ \
  X(E_ELECTION, 10, "election could not run") /* ranks could not agree on a reporter */ \
  X(E_MPI, 11, "MPI call failed") /* an MPI call failed */ \
  X(E_UNWIND, 12, "no backtrace available") /* no backtrace could be taken */ \
  X(E_IO, 13, "input/output error") /* a file or pipe operation failed */ \
  X(E_BUFFER_TOO_SMALL, 14, "buffer too small") /* the caller's buffer was too small; output is truncated */ \
  X(E_BAD_CONFIG, 15, "invalid configuration value") /* an environment variable or option has an invalid value */ \
  X(E_HTTP_STATUS, 16, "the service answered with an HTTP error") /* the service answered with an HTTP error status */ \
  X(E_SERVICE, 17, "the service reported an error") /* the service reported an error in its answer's body */ \
  X(E_TLS, 18, "TLS failed (certificate not verified or handshake error)") /* TLS failed (certificate not verified, handshake) */ \
  X(E_DNS, 19, "host name not resolved") /* the host name could not be resolved */ \
  X(E_CONNECT, 20, "could not connect") /* no connection could be made (refused, unreachable) */ \
  X(E_RATE_LIMITED, 21, "rate limited by the service") /* the service asked to slow down and the deadline came first */ \
  X(E_SPOOL, 22, "spool directory unusable") /* the spool directory could not be used */ \
  X(E_RELAY, 23, "the relay did not take the message") /* the relay refused or could not take a message */ \
  X(E_FORGED, 24, "relayed message failed authentication") /* a relayed message failed authentication */ \
  X(E_MUTED, 25, "muted by the alert cooldown or cap") /* an alert was muted by its cooldown or the run's cap */

typedef enum mpn_code {
#define MPN_CODE_ENUM(name, value, text) MPN_##name = value,
  MPN_CODES(MPN_CODE_ENUM)
#undef MPN_CODE_ENUM
} mpn_code;

/*
 * Describes an error code with a fixed English string. Unknown values give
 * "unknown error". Never NULL. Thread-safe; async-signal-safe.
 */
MPN_EXTERN const char *mpn_strerror(mpn_code code);

/* The library's version, "MAJOR.MINOR.PATCH". Thread-safe; async-signal-safe. */
MPN_EXTERN const char *mpn_version(void);

/*
 * The absolute path of the libmpinotify shared object this process runs,
 * for tools that preload it into other processes. NULL when the library is
 * linked statically. Thread-safe.
 */
MPN_EXTERN const char *mpn_library_path(void);

/*
 * Validates a list of channel URLs as MPINOTIFY_URLS takes it (separated by
 * white space or commas). Returns MPN_OK when every URL is valid, or the code
 * of the first problem. `err` (when non-NULL) receives one line per problem,
 * separated by '\n', each naming the URL with its secrets masked. An empty
 * list is valid (the console channel is then used). Thread-safe.
 */
MPN_EXTERN mpn_code mpn_check_urls(const char *urls, char *err, size_t errlen);

/*
 * Validates the whole configuration the environment holds now: every
 * MPINOTIFY_* variable the library reads, URLs included. Same contract as
 * mpn_check_urls. A launcher that has run this and reported the problems sets
 * MPINOTIFY_CONFIG_CHECKED=1 for the ranks, which then stay quiet about them.
 * Not thread-safe against concurrent setenv().
 */
MPN_EXTERN mpn_code mpn_check_environment(char *err, size_t errlen);

/*
 * A program that links libmpinotify only to use this API (a tool, a test
 * driver) and must not be watched itself writes MPN_API_ONLY_PROGRAM; at file
 * scope in one source file and links with
 * -Wl,--export-dynamic-symbol=mpn_api_only_program: the library then never
 * arms itself in that process.
 */
#define MPN_API_ONLY_PROGRAM \
  __attribute__((visibility("default"), used)) const int mpn_api_only_program = 1

/*
 * Writes `url` to `out` with every secret masked: the password, every query
 * value and every path segment that could be a token (anything but a short
 * lower-case word such as "services" or "hook") become "***". Always
 * NUL-terminates a non-empty buffer. Returns MPN_E_BUFFER_TOO_SMALL when the
 * result was truncated. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_mask_url(const char *url, char *out, size_t outlen);

/*
 * Options for an explicit mpn_init() or mpn_sender_new(). Opaque; create with
 * mpn_options_new(), configure with the setters, pass to mpn_init() or
 * mpn_sender_new(), which take ownership. A setter copies its argument and
 * returns MPN_OK, or MPN_E_INVALID_ARGUMENT for a NULL handle or an
 * out-of-range value (the ranges are mpn_setting_at's). An options object is
 * not thread-safe: configure it from one thread. Values not set come from the
 * environment (MPINOTIFY_*), then the config file, then defaults. Times are
 * `long` milliseconds, counts `long long`.
 */
typedef struct mpn_options mpn_options;

/* A new options object, or NULL when out of memory. */
MPN_EXTERN mpn_options *mpn_options_new(void);
/* Frees an options object that was not passed to mpn_init(). NULL is a no-op. */
MPN_EXTERN void mpn_options_free(mpn_options *opts);
/* Channel URLs, as in MPINOTIFY_URLS. Validated by mpn_init(). */
MPN_EXTERN mpn_code mpn_options_set_urls(mpn_options *opts, const char *urls);
/* The job's name, shown in every message (MPINOTIFY_JOB_NAME). */
MPN_EXTERN mpn_code mpn_options_set_job_name(mpn_options *opts, const char *name);
/* The job's command line, shown in every message; secrets in it are masked. */
MPN_EXTERN mpn_code mpn_options_set_job_command(mpn_options *opts, const char *command);
/*
 * Configuration text in the config-file format, used in place of the file
 * named by MPINOTIFY_CONFIG (values set in code and MPINOTIFY_* variables
 * still take precedence for settings; channels are added). Validated by
 * mpn_init() or mpn_sender_new().
 */
MPN_EXTERN mpn_code mpn_options_set_config(mpn_options *opts, const char *config);
/* Time budget from a fault to the end of its handling, 100..3600000 ms (MPINOTIFY_TIMEOUT_MS). */
MPN_EXTERN mpn_code mpn_options_set_timeout_ms(mpn_options *opts, long ms);
/* Gathering window for ranks hitting the same failure, 0..60000 ms (MPINOTIFY_WINDOW_MS). */
MPN_EXTERN mpn_code mpn_options_set_window_ms(mpn_options *opts, long ms);
/* Which parts make an exception's signature (MPN_SIGNATURE_*; MPINOTIFY_EXCEPTION_SIGNATURE). */
MPN_EXTERN mpn_code mpn_options_set_exception_signature(mpn_options *opts, unsigned parts);
/* Alert cooldown in steps, 0..1000000000 (MPINOTIFY_ALERT_COOLDOWN). */
MPN_EXTERN mpn_code mpn_options_set_alert_cooldown(mpn_options *opts, long long steps);
/* Alerts per run at most, 0..100000 (MPINOTIFY_ALERT_CAP). */
MPN_EXTERN mpn_code mpn_options_set_alert_cap(mpn_options *opts, long long cap);
/* A progress message every N steps, 0 (off)..1000000000 (MPINOTIFY_PROGRESS_EVERY). */
MPN_EXTERN mpn_code mpn_options_set_progress_every(mpn_options *opts, long long steps);

/* Parts of a reported exception's signature: the same signature on several
 * ranks (or again later) is one message. Default: type, site and context. */
#define MPN_SIGNATURE_TYPE 1u     /* the exception's type */
#define MPN_SIGNATURE_SITE 2u     /* the call site: the caller's top frames (module + offset) */
#define MPN_SIGNATURE_CONTEXT 4u  /* the context string */
#define MPN_SIGNATURE_MESSAGE 8u  /* the message text (off by default: messages often hold values) */

/* One setting the library reads, for tools' help texts and checks. */
typedef struct mpn_setting {
  const char *name;     /* the environment variable, "MPINOTIFY_TIMEOUT_MS" */
  const char *key;      /* the config file's key in [mpinotify], "timeout_ms"; NULL: the variable only */
  const char *type;     /* "text", "ms", "count", "flag", "choice" or "list" */
  long long min, max;   /* "ms" and "count": the accepted range */
  long long def;        /* "ms", "count" and "flag": the default; "choice": the default's index in
                           choices; "list": the default's choices, bit i for choice i */
  const char *help;     /* one line */
  const char *choices;  /* "choice" and "list": the values, separated by commas ("report,abort"); else NULL */
  const char *scope;    /* "file": the variable, else the config file's key; "env": the variable only;
                           "run": the variable only, set by mpinotify-run for its ranks; "private":
                           between mpinotify-run and its ranks, not for users */
} mpn_setting;
/* Setting i (0, 1, ...), NULL past the last. Static storage. Thread-safe. */
MPN_EXTERN const mpn_setting *mpn_setting_at(int i);

/*
 * The library's life in a process:
 *
 *   how the program runs        armed (handlers, agent)       mpn_init() returns
 *   ------------------------    --------------------------    ------------------------------
 *   links libmpinotify          before main (constructor)     MPN_OK: re-configured with
 *                                                             opts; a second call or a call
 *                                                             after MPI_Init:
 *                                                             MPN_E_ALREADY_INITIALIZED
 *   preloaded (LD_PRELOAD,      in MPI_Init                   before MPI_Init: MPN_OK, armed
 *   mpinotify-run)                                            now; after: ALREADY_INITIALIZED
 *   MPN_API_ONLY_PROGRAM        never                         MPN_E_DISABLED
 *   MPINOTIFY_DISABLE=1         never                         MPN_E_DISABLED
 *
 * So the first mpn_init() of a process that was not told to stay off takes
 * effect in every mode: it configures the library from `opts` (and the
 * environment) and arms it if it was not armed. It takes ownership of
 * `opts` (also on error; NULL means "environment only"). Returns a
 * configuration error when some value was invalid (the library then runs
 * with the valid channels). Call from one thread, before starting others
 * and before MPI_Init.
 */
MPN_EXTERN mpn_code mpn_init(mpn_options *opts);

/* 1 when the library is armed in this process (handlers installed), else 0. Thread-safe. */
MPN_EXTERN int mpn_is_active(void);

/* ---- Reporting from the program: exceptions, alerts, progress -------------
 *
 * Each call captures what it needs on the calling thread (the backtrace of
 * the call site included), queues it for the library's own thread and
 * returns at once. Like a crash, the same report from any number of ranks
 * becomes one message listing them (the ranks elect one reporter). These
 * calls need the library armed (mpn_is_active(): linked, or after MPI_Init
 * when preloaded) and return MPN_E_NOT_INITIALIZED otherwise. Thread-safe;
 * not async-signal-safe.
 */

/*
 * Reports an exception the program caught (the analogue of notify_exception):
 * `context` says where or what ("epoch 3 validation", may be NULL), `type`
 * names the exception ("ValueError", "std::bad_alloc"; required), `message`
 * is its text (may be NULL). Event "exception", severity "error".
 */
MPN_EXTERN mpn_code mpn_report_exception(const char *context, const char *type, const char *message);

/*
 * Exceptions of another language (Python, ...), with the frames its runtime
 * knows: an exception object, filled with setters, reported once. The frames
 * given are the exception's site in its signature (file name and function of
 * the innermost frames; never absolute paths), so two sites give two messages
 * and the same bug on many ranks gives one. Without frames, the caller's
 * native call site is used, as for mpn_report_exception. Event "exception";
 * fields "exception.type", ".message", ".context", ".uncaught", ".traceback"
 * (the frames) and any set with mpn_exception_set_string; "text" is the text
 * set with mpn_exception_set_text (the traceback as the language prints it),
 * else the message. An object is not thread-safe; different objects may be
 * used from different threads. Not async-signal-safe.
 */
typedef struct mpn_exception mpn_exception;

/* A new exception: `type` required ("ValueError", "torch.cuda.OutOfMemoryError"),
 * `message` may be NULL. NULL for an empty type or when out of memory. */
MPN_EXTERN mpn_exception *mpn_exception_new(const char *type, const char *message);
/* Frees an exception that was not reported. NULL is a no-op. */
MPN_EXTERN void mpn_exception_free(mpn_exception *e);
/* Where or what ("epoch 3 validation"); NULL clears it. */
MPN_EXTERN mpn_code mpn_exception_set_context(mpn_exception *e, const char *context);
/* The whole traceback as the language prints it, chained exceptions included. */
MPN_EXTERN mpn_code mpn_exception_set_text(mpn_exception *e, const char *text);
/* Appends a frame, outermost first: file, line (0: unknown), function and the
 * source line (each may be NULL). MPN_E_INVALID_ARGUMENT for a negative line. */
MPN_EXTERN mpn_code mpn_exception_add_frame(mpn_exception *e, const char *file, long line, const char *function,
                                            const char *code);
/* Any further string member of "exception" ("thread": "Thread-1"); not one of
 * type, message, context, traceback or uncaught. */
MPN_EXTERN mpn_code mpn_exception_set_string(mpn_exception *e, const char *key, const char *value);
/* Delivers this report to these channels (a list as MPINOTIFY_URLS takes it)
 * instead of the configured ones; checked now: MPN_E_BAD_URL... for a bad list. */
MPN_EXTERN mpn_code mpn_exception_set_urls(mpn_exception *e, const char *urls);

#define MPN_EXCEPTION_UNCAUGHT 1u  /* nothing caught it: severity critical, "uncaught": true */
#define MPN_EXCEPTION_FATAL 2u     /* the process ends after this (severity critical): the call returns once
                                      the report is delivered (or the time budget is spent), and the exit
                                      status or MPI_Abort that follows is not reported again */

/*
 * Reports the exception (consumed, also on error) like mpn_report_exception:
 * queued for the library's thread, elected across ranks, one message per
 * unique exception. Returns at once unless MPN_EXCEPTION_FATAL is given;
 * MPN_E_NOT_INITIALIZED when the library is not armed; MPN_E_TIMEOUT when a
 * fatal report was not handled within the budget (it may still be sent).
 * Thread-safe.
 */
MPN_EXTERN mpn_code mpn_exception_report(mpn_exception *e, unsigned flags);

/*
 * Ends the whole job as MPI_Abort(MPI_COMM_WORLD, status) would, without a
 * report of its own (the failure that leads here was reported): for a
 * language runtime whose uncaught exception would otherwise leave this rank in
 * MPI_Finalize and the others waiting in a collective forever. Returns
 * MPN_E_NOT_INITIALIZED when MPI is not initialised (or already finalised)
 * in this process: the caller then exits as it would have. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_abort_job(int status);

/*
 * A language runtime's hook, called on the thread that calls MPI_Abort
 * before the library reports the abort: it may report the exception being
 * handled there (mpn_exception_report with MPN_EXCEPTION_FATAL) and return
 * 1, and the abort is then not reported separately; any other return value
 * reports the MPI_Abort as usual. In a Python process it is called only on a
 * thread that holds the GIL of a live interpreter (a ctypes callback would
 * otherwise wait for the GIL, or crash after finalization). One hook per
 * process: a second call replaces the first; NULL removes it. Set it from
 * one thread, before MPI_Abort can be called.
 */
typedef int (*mpn_abort_hook_fn)(int code, void *arg);
MPN_EXTERN mpn_code mpn_set_abort_hook(mpn_abort_hook_fn fn, void *arg);

/*
 * Tells mpinotify-run, when this process is one of its job's ranks, that the
 * library watches it although it may never call MPI_Init (a PyTorch rank
 * using gloo or NCCL): the job's "started" then counts it as armed instead
 * of warning about it. `import mpinotify`'s hooks call it in every Python
 * rank. Once per process (MPI_Init says the same); a no-op outside
 * mpinotify-run, in a process that is not a rank (no OMPI_COMM_WORLD_RANK,
 * PMI_RANK or SLURM_PROCID) or when disabled. Bounded: at most 2 s when the
 * relay does not answer. Thread-safe; not from a signal handler.
 */
MPN_EXTERN void mpn_launcher_armed(void);

/* One metric value of an alert. */
typedef struct mpn_metric {
  const char *name;
  double value;
} mpn_metric;

/*
 * Raises an alert (event "alert"): `detector` names what noticed it
 * ("nan_loss"), `severity` is "warning" or "critical", `step` the training
 * step, `message` what happened, `metrics` (may be NULL when nmetrics is 0)
 * the values behind it, `recommendation` what to do (required). An alert
 * is muted (MPN_E_MUTED) when the same detector raised one of the same
 * severity less than the cooldown ago (in steps; MPINOTIFY_ALERT_COOLDOWN,
 * default 100) or when the run already raised the cap's worth
 * (MPINOTIFY_ALERT_CAP, default 50). A critical alert is never muted by a
 * warning's cooldown. Ranks raising the same alert at the same step give one
 * message. The library ships this API, not detectors.
 */
MPN_EXTERN mpn_code mpn_alert(const char *detector, const char *severity, long long step, const char *message,
                              const mpn_metric *metrics, size_t nmetrics, const char *recommendation);

/*
 * Reports progress (event "progress", severity "info") when `step` is a
 * multiple of MPINOTIFY_PROGRESS_EVERY (default 0: progress messages are
 * off, and this returns MPN_OK having sent nothing). `total` may be 0
 * (unknown); `message` may be NULL.
 */
MPN_EXTERN mpn_code mpn_progress(long long step, long long total, const char *message);

/*
 * Asks the rank whose process id is `pid` (a rank of a running job, on this
 * node, with the library armed) where every rank of its job is, without
 * stopping it: the same groups a hang message has (docs/events.md, "hang":
 * title, text, stuck_for_s, groups, suspects), as a JSON object in
 * *json_out (malloc'd; free it with mpn_free). With `send` the rank also
 * sends it to its channels (event "stacks", severity "info"). The rank is
 * asked with SIGURG (sigqueue; ignored by a process without the library)
 * and answers through a file in /tmp readable by this user only. Waits at
 * most timeout_ms. MPN_E_INVALID_ARGUMENT: no such process of this user;
 * MPN_E_NOT_INITIALIZED: the process has no libmpinotify (not a rank: a
 * launcher, a program without MPI); MPN_E_TIMEOUT: no answer (before
 * MPI_Init, its job's ranks cannot elect, or SIGURG is the application's).
 * Any thread; not in a signal handler. Needs no mpn_init.
 */
MPN_EXTERN mpn_code mpn_job_stacks(long pid, int send, long timeout_ms, char **json_out);

/* ---- Sending messages outside a crash: tools, launchers, checks ---------
 *
 * A sender holds a loaded configuration (channels, spool, relay settings)
 * and delivers messages through the same engine the crash path uses:
 * every channel in parallel, retries with backoff, per-service rate limits,
 * and a write-ahead copy in the spool that is removed once the message is
 * delivered, so whatever is not delivered in time stays there whole.
 * A sender is safe to use from one thread at a time; different senders may
 * be used from different threads.
 */
typedef struct mpn_sender mpn_sender;

/* One message: a JSON object of schema "mpinotify/1" (README.md). Opaque. */
typedef struct mpn_message mpn_message;

/* The outcome of one message on one channel, handed to an mpn_result_fn.
 * Every string is valid only during the callback and never holds a secret.
 * Fields are only ever appended. */
typedef struct mpn_result {
  const char *channel;     /* the channel's URL, secrets masked */
  mpn_code code;           /* MPN_OK when the service accepted the message */
  long http_status;        /* the last HTTP status, 0 if none */
  const char *detail;      /* why it failed ("HTTP 500", "errcode 130101: send too fast",
                              "certificate not verified", ...), "" on success */
  int attempts;            /* requests made, retries included */
  const char *route;       /* "direct", "relay", or "local" (console) */
  const char *spool_file;  /* where the undelivered message is kept, or NULL */
  const char *message_id;  /* the message's id, stable across retries and flushes */
} mpn_result;

typedef void (*mpn_result_fn)(const mpn_result *result, void *arg);

/*
 * Creates a sender from `opts` (may be NULL; ownership is taken, also on
 * error), the MPINOTIFY_* environment and the file named by MPINOTIFY_CONFIG.
 * Configuration problems are written to `err` as in mpn_check_urls; the
 * sender is still created with the valid channels and the code of the first
 * problem is returned. *out is NULL only on MPN_E_NO_MEMORY,
 * MPN_E_INVALID_ARGUMENT, or MPN_E_DISABLED (MPINOTIFY_DISABLE is set: then
 * nothing is sent at all). Thread-safe.
 */
MPN_EXTERN mpn_code mpn_sender_new(mpn_options *opts, mpn_sender **out, char *err, size_t errlen);

/* Frees a sender. NULL is a no-op. Messages still in flight stay in the spool. */
MPN_EXTERN void mpn_sender_free(mpn_sender *s);

/* The spool directory the sender uses (MPINOTIFY_SPOOL, the config file's
 * "spool", or the default). Owned by the sender. */
MPN_EXTERN const char *mpn_sender_spool_dir(const mpn_sender *s);

/* Number of configured channels. */
MPN_EXTERN int mpn_sender_channel_count(const mpn_sender *s);

/* Channel i's URL with secrets masked, or NULL when i is out of range. Owned by the sender. */
MPN_EXTERN const char *mpn_sender_channel(const mpn_sender *s, int i);

/*
 * Launcher-only. The names of the environment variables the configuration refers to with
 * "env:NAME", separated by spaces ("" when none), so a launcher can forward
 * them to ranks on other nodes. Owned by the sender.
 */
MPN_EXTERN const char *mpn_sender_env_references(const mpn_sender *s);

/*
 * Sends `m` to every channel and waits until each channel has accepted it,
 * failed for good, or the sender's time budget (MPINOTIFY_TIMEOUT_MS) is
 * spent. Calls `cb` (may be NULL) once per channel, from the calling thread.
 * Returns MPN_OK when every channel accepted the message, else the code of
 * the first failure. Undelivered messages stay in the spool. `m` is not
 * consumed.
 */
MPN_EXTERN mpn_code mpn_sender_send(mpn_sender *s, const mpn_message *m, mpn_result_fn cb, void *arg);

/*
 * Launcher-only. Bounds every later mpn_sender_send and mpn_sender_flush of
 * `s`: each ends `ms_from_now` milliseconds from now at the latest, whatever
 * the services do (what is not delivered by then stays in the spool, and a
 * flush starts no message after it). 0 removes the bound. For a launcher
 * that must return soon after its job ended. MPN_E_INVALID_ARGUMENT for a
 * NULL sender or a negative time. Not thread-safe against the same sender's
 * sends.
 */
MPN_EXTERN mpn_code mpn_sender_set_deadline(mpn_sender *s, long ms_from_now);

/*
 * Delivers every message in the spool directory (MPINOTIFY_SPOOL) to the
 * destination it was spooled with, and removes each one delivered. Messages
 * another live process is still delivering are skipped. Calls `cb` once per
 * message tried. Returns MPN_OK when the spool is empty afterwards (also when
 * it was empty to begin with), else the code of the first failure.
 */
MPN_EXTERN mpn_code mpn_sender_flush(mpn_sender *s, mpn_result_fn cb, void *arg);

/*
 * Launcher-only. Limits every later mpn_sender_flush of `s` to messages
 * spooled from `from_ms` up to (not including) `to_ms`, wall-clock
 * milliseconds since the epoch; 0 leaves that end open (the default: both).
 * Other messages stay in the spool, untouched. For a launcher that flushes
 * its own job's messages at its end and earlier jobs' ones in the background.
 * MPN_E_INVALID_ARGUMENT for a NULL sender, a negative time or to < from.
 * Not thread-safe against the same sender's flushes.
 */
MPN_EXTERN mpn_code mpn_sender_set_flush_window(mpn_sender *s, long long from_ms, long long to_ms);

/*
 * A new message for `event` ("message", "test", "job", ...; see README.md),
 * or NULL when out of memory or `event` is NULL. Free with mpn_message_free.
 * Setters copy their arguments; they return MPN_E_INVALID_ARGUMENT for a NULL
 * message or value. Not thread-safe per message.
 */
MPN_EXTERN mpn_message *mpn_message_new(const char *event);
MPN_EXTERN void mpn_message_free(mpn_message *m);
/* The headline, e.g. "Nightly training finished". */
MPN_EXTERN mpn_code mpn_message_set_title(mpn_message *m, const char *title);
/* The body text (plain text, may span lines). */
MPN_EXTERN mpn_code mpn_message_set_text(mpn_message *m, const char *text);
/* "info", "warning", "error" or "critical"; anything else is MPN_E_INVALID_ARGUMENT. */
MPN_EXTERN mpn_code mpn_message_set_severity(mpn_message *m, const char *severity);
/* Any other top-level field, as a string or an integer (not "schema", "event" or "id"). */
MPN_EXTERN mpn_code mpn_message_set_string(mpn_message *m, const char *key, const char *value);
MPN_EXTERN mpn_code mpn_message_set_integer(mpn_message *m, const char *key, long long value);
/* Any other top-level field as a JSON value given as text ("[1,2]", "{\"a\":null}",
 * "null"); MPN_E_INVALID_ARGUMENT when it is not valid JSON (not "schema", "event" or "id"). */
MPN_EXTERN mpn_code mpn_message_set_json(mpn_message *m, const char *key, const char *json);

/* ---- Custom channels ------------------------------------------------------
 *
 * A program can add its own channel kind (the analogue of subclassing a
 * notifier): register a name, then configure channels of that kind like any
 * other, as "NAME://anything" in MPINOTIFY_URLS, a config file or
 * mpn_options_set_urls. Such channels get the engine's treatment: a spooled
 * copy, retries with backoff, the time budget.
 */

/*
 * Delivers one message. `url` is the channel as configured, with env:/file:
 * references in it resolved; `message_json` is the message (schema
 * mpinotify/1). Returns MPN_OK when delivered; any other code is a failure,
 * retried with backoff unless it is MPN_E_INVALID_ARGUMENT or
 * MPN_E_BAD_CONFIG. `detail` (capacity `detail_len`) may receive a reason;
 * it is printed, so it must not hold secrets. Called on a thread of the
 * library's, one message at a time per channel; it should return within the
 * time budget (a late answer is ignored and the message stays spooled).
 */
typedef mpn_code (*mpn_channel_send_fn)(const char *url, const char *message_json, char *detail,
                                        size_t detail_len, void *user);

/*
 * Registers a channel kind. `name`: 1..31 characters of [a-z0-9_-], starting
 * with a letter, not a built-in kind (webhook, slack, ..., console, email,
 * smtp, smtps, env, file). Registering a name again replaces its function.
 * Returns MPN_E_INVALID_ARGUMENT for a bad name or NULL `send`, MPN_E_NO_MEMORY,
 * else MPN_OK. At most 32 kinds. Thread-safe; register before the channels
 * are configured (before MPI_Init, mpn_init or mpn_sender_new).
 */
MPN_EXTERN mpn_code mpn_register_channel(const char *name, mpn_channel_send_fn send, void *user);

/*
 * Launcher-only. The sender's configuration as a string in the config-file
 * format (docs/configuration.md): its settings and every channel. Restored with
 * mpn_options_set_config(), in this process or another, it recreates the same
 * channels. It never holds a secret: a channel configured with a literal
 * secret is written as a reference "env:MPINOTIFY_SECRET_<hash>", and that
 * variable is set in this process's environment (so child processes, and
 * ranks started by mpinotify-run, inherit it). Channels configured with
 * env:/file: references are written as configured. Returns a string to free
 * with mpn_free(), or NULL when out of memory. Not thread-safe against
 * concurrent setenv().
 */
MPN_EXTERN char *mpn_sender_config(const mpn_sender *s);

/* Frees a string the library returned. NULL is a no-op. */
MPN_EXTERN void mpn_free(void *p);

/* ---- Relay: delivering for ranks that cannot reach the internet ---------
 *
 * Launcher-only: mpinotify-run (or another launcher wrapper) uses these; a
 * program being watched never needs them.
 *
 * A relay runs in the launcher's process (mpinotify-run) on the node that can
 * reach the services. Ranks hand finished messages to it over TCP; every
 * message is encrypted and authenticated with a key only the job's processes
 * know (AES-256-GCM), carries a timestamp and a nonce, and is rejected when
 * forged, altered, replayed or stale.
 */
typedef struct mpn_relay mpn_relay;

/*
 * Starts a relay that delivers what it receives through `s` (which must
 * outlive it). It listens on every interface, on an ephemeral port, and
 * sets MPINOTIFY_RELAY_ADDR (MPINOTIFY_RELAY_HOST:port, or else every IPv4
 * address of this node that is up, "10.1.0.5:40411,127.0.0.1:40411", the
 * loopback last: a rank uses the first it reaches) and MPINOTIFY_RELAY_KEY in this process's environment
 * for the ranks to inherit. Not thread-safe against concurrent setenv().
 */
MPN_EXTERN mpn_code mpn_relay_start(mpn_sender *s, mpn_relay **out, char *err, size_t errlen);

/*
 * Stops accepting, waits up to `timeout_ms` for relayed messages still being
 * delivered (they stay in the spool if time runs out), and frees the relay.
 * Reports each relayed message's outcome through `cb` (may be NULL).
 * NULL is a no-op.
 */
MPN_EXTERN void mpn_relay_stop(mpn_relay *r, long timeout_ms, mpn_result_fn cb, void *arg);

/* Messages accepted and messages rejected as forged so far. Thread-safe. */
MPN_EXTERN void mpn_relay_counts(const mpn_relay *r, long *accepted, long *rejected);

/*
 * Ranks running under a relay also send it notices about themselves, which
 * are not messages to deliver: `type` is "hello" (the library armed in
 * MPI_Init), "unarmed" (MPI_Init was called but the library did not arm),
 * "bye" (MPI_Finalize), "report" (a message the rank delivered as the
 * reporter of its failure) or "held" (a fatal report the relay holds, see
 * mpn_relay_release; "id" is the message's id, and the notice comes once per
 * channel), and later types may be added. `json` is the
 * notice, a JSON object: "v" (1), "type", "rank", "pid", "host",
 * "world_size", "wall_ms" (the rank's clock, ms since the epoch); for
 * "unarmed" also "why" (one line, e.g. "cannot find the MPI library's
 * PMPI_Init_thread (no loaded library defines it)", "this MPI is not Open MPI
 * ...", "disabled by MPINOTIFY_DISABLE") and "disabled" (true when it was told
 * not to arm); for a report "message" (the mpinotify/1 message). A rank that
 * armed after saying "unarmed" (a linked program whose first attempt failed)
 * says "hello" too. The function is called on the relay's own thread, one
 * notice at a time, and must return quickly (the rank waits for the answer);
 * `json` is valid only during the call. NULL `fn` drops notices (the
 * default). Set it right after mpn_relay_start, before the ranks start.
 * Notices do not count in mpn_relay_counts.
 */
typedef void (*mpn_relay_notice_fn)(const char *type, const char *json, void *arg);
MPN_EXTERN void mpn_relay_set_observer(mpn_relay *r, mpn_relay_notice_fn fn, void *arg);

/*
 * Held reports. When MPINOTIFY_RELAY_HOLD=1 is in the ranks' environment, a
 * rank's fatal report (crash, exception, exit, fatal MPI error) goes to the
 * relay first, which keeps it (with a copy in the spool) instead of
 * delivering it, so that the launcher can send the failure and the job's
 * end as one message. A rank that cannot reach the relay sends its report
 * itself, as without it.
 *
 * mpn_relay_release sends every channel's copy of held message `id`: as the
 * rank sent it (`replacement` NULL), or `replacement` instead (copied; the
 * caller keeps ownership), under the same id. MPN_E_INVALID_ARGUMENT when no
 * copy of `id` is held (never held, or already released).
 * mpn_relay_release_older releases, unchanged, every report held for
 * `age_ms` or longer and returns how many copies went; mpn_relay_stop
 * releases whatever is left. Thread-safe; not from a signal handler.
 */
MPN_EXTERN mpn_code mpn_relay_release(mpn_relay *r, const char *id, const mpn_message *replacement);
MPN_EXTERN int mpn_relay_release_older(mpn_relay *r, long age_ms);
/*
 * Drops every held copy of message `id` (and its spooled copy) without
 * sending it: for a report another message already says (a failure that
 * only follows from the one that ended the job, listed in its "reports").
 * MPN_E_INVALID_ARGUMENT when no copy of `id` is held. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_relay_drop(mpn_relay *r, const char *id);
/*
 * 1 when a copy of message `id` is held for every channel of the relay's
 * sender (the configured ones), so that releasing or dropping it reaches, or
 * spares, all of them alike; 0 otherwise (some copy went alone, was sent by
 * the rank itself, or the report had channels of its own). Thread-safe.
 */
MPN_EXTERN int mpn_relay_covers(mpn_relay *r, const char *id);

/* ---- For tools and launchers ----------------------------------------------
 *
 * What the shipped tools (mpinotify-run, mpinotify-send) and any other
 * launcher wrapper need beside the sender and the relay, so that they know
 * no format or table of the library's by heart: signal names, times, masking
 * free text, the channel kinds, the spool, and the message for a rank that
 * died without reporting. Declarations here only ever get appended.
 */

/*
 * The name of signal `signo` as messages write it ("SIGSEGV", "SIGKILL"), or
 * NULL when the library has no name for it. Static storage. Thread-safe;
 * async-signal-safe.
 */
MPN_EXTERN const char *mpn_signal_name(int signo);

/*
 * Writes `ms` (milliseconds since the epoch) as messages write times: UTC,
 * ISO 8601 with milliseconds, "2026-11-22T10:00:00.123Z" (24 characters).
 * Always NUL-terminates a non-empty buffer; MPN_E_BUFFER_TOO_SMALL when the
 * result was truncated (25 bytes always suffice until year 9999),
 * MPN_E_INVALID_ARGUMENT for a NULL buffer or a negative time. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_format_time(long long ms, char *out, size_t outlen);

/*
 * Reads a time as mpn_format_time writes it ("2026-11-22T10:00:00.123Z"; the
 * milliseconds may be left out: "2026-11-22T10:00:00Z") into *ms, milliseconds
 * since the epoch. MPN_E_INVALID_ARGUMENT (and *ms untouched) for anything
 * else. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_parse_time(const char *text, long long *ms);

/*
 * Free text (a command line, a line of a program's output) as a message may
 * show it: every URL-like word (SCHEME://..., also inside "--url=..." or
 * quotes) masked as mpn_mask_url does, then every occurrence of each string
 * in `secrets` (a NULL-terminated list, may be NULL; empty strings are
 * skipped) replaced with "***", then tokens known by their form (Slack's
 * xoxb-, GitHub's ghp_, Hugging Face's hf_, OpenAI's sk-, AWS's AKIA, JWTs,
 * "Bearer ..."; at least 16 characters with a digit after the prefix) kept
 * as their prefix and "***". Returns a new string to free with mpn_free(),
 * or NULL when `text` is NULL or memory ran out. Thread-safe.
 */
MPN_EXTERN char *mpn_mask_text(const char *text, const char *const *secrets);

/* A built-in channel kind, for help texts. */
typedef struct mpn_channel_kind {
  const char *name;   /* "slack": what "KIND+https://..." names */
  const char *form;   /* how its URLs are written, one line: "slack+https://... (or https://hooks.slack.com/...)";
                         kinds that take any HTTP(S) URL start it with "NAME+https://" */
} mpn_channel_kind;
/* Built-in kind i (0, 1, ...), NULL past the last. Kinds a program registers
 * (mpn_register_channel) are not listed. Static storage. Thread-safe. */
MPN_EXTERN const mpn_channel_kind *mpn_channel_kind_at(int i);

/*
 * The spool directory the configuration names now: MPINOTIFY_SPOOL, else the
 * "spool" of the file named by MPINOTIFY_CONFIG, else $TMPDIR/mpinotify-UID
 * (the one mpn_sender_spool_dir gives, also where no sender can be made, as
 * under MPINOTIFY_DISABLE). A string to free with mpn_free(), or NULL when out
 * of memory. Not thread-safe against concurrent setenv().
 */
MPN_EXTERN char *mpn_spool_dir(void);

/* One file of a spool directory, handed to an mpn_spool_fn. Every string is
 * valid only during the callback and never holds a secret. Fields are only
 * ever appended. */
typedef struct mpn_spool_entry {
  const char *file;         /* the file's path */
  mpn_code code;            /* MPN_OK: a spooled message; MPN_E_IO: it cannot be read;
                               MPN_E_SPOOL: it is not a spooled message */
  const char *detail;       /* why it could not be listed ("Permission denied"), "" when listed */
  const char *id;           /* the message's id; NULL when not known */
  const char *created;      /* when it was spooled ("2026-11-22T10:00:00.123Z"), or NULL */
  const char *destination;  /* the channel it is kept for, secrets masked, or NULL */
  const char *event;        /* the message's event ("crash", "job", ...), or NULL */
  const char *title;        /* the message's title, or NULL */
} mpn_spool_entry;

typedef void (*mpn_spool_fn)(const mpn_spool_entry *entry, void *arg);

/*
 * Lists the messages kept in spool directory `dir` (NULL: mpn_spool_dir()),
 * oldest first, without sending, locking or changing anything: calls `fn`
 * once per file that looks like a spooled message (a file removed meanwhile
 * is left out). Returns MPN_OK when the directory was read (also when it does
 * not exist: nothing was ever kept), MPN_E_SPOOL when it cannot be read
 * (errno says why), MPN_E_INVALID_ARGUMENT for a NULL `fn`, MPN_E_NO_MEMORY.
 * The files' format stays the library's. Thread-safe.
 */
MPN_EXTERN mpn_code mpn_spool_list(const char *dir, mpn_spool_fn fn, void *arg);

/*
 * The message a launcher sends for a rank that died by a signal without a
 * report of its own (SIGKILL from the OOM killer or a batch system's limit):
 * event "crash", severity "critical", reported_by "launcher", the layout of a
 * rank's crash report with what a launcher cannot know set to null
 * (fault_address, backtrace, election, leader, mpi_thread_level), the title
 * "SIGKILL on 1 of 8 ranks (job NAME)", a "text" for chat channels, and the
 * signature derived from "launcher:" and the signal's name (the same for
 * every such death).
 */
typedef struct mpn_launcher_crash {
  int rank;               /* the rank that died, >= 0 */
  int signo;              /* the signal that ended it, > 0 */
  long pid;               /* its process id; <= 0: not known (null) */
  const char *host;       /* its host name; NULL: not known */
  int world_size;         /* ranks in the job; <= 0: not known (null) */
  long long time_ms;      /* when the launcher learnt it, ms since the epoch (the "timestamp") */
  const char *job_name;   /* the job's name, or NULL */
} mpn_launcher_crash;

/* The message for `c`, or NULL for a bad argument or when out of memory.
 * Free with mpn_message_free; its setters may add or replace fields. Thread-safe. */
MPN_EXTERN mpn_message *mpn_launcher_crash_new(const mpn_launcher_crash *c);

/* The same for `n` ranks that died by the same signal (one failure, one
 * message: "SIGKILL on 2 of 8 ranks"), c[0] the first the launcher learnt
 * of; their time and the job's size and name are c[0]'s. NULL for a bad
 * argument (n 0, a bad entry, signals that differ) or when out of memory.
 * Free with mpn_message_free. Thread-safe. */
MPN_EXTERN mpn_message *mpn_launcher_crashes_new(const mpn_launcher_crash *c, size_t n);

/* The message a launcher sends when it lost a node (its daemon there
 * stopped answering) and with it the ranks `c` (their signo is not used;
 * c[0]'s time, job size and name are the message's): event "node_lost",
 * severity "critical", reported_by "launcher", "lost_host", the layout of
 * mpn_launcher_crash_new, the title "Node n17 lost on 2 of 8 ranks (job
 * NAME)", a "text", and the signature of "launcher:node_lost". NULL for a
 * bad argument (no host, n 0, a bad entry) or when out of memory. Free with
 * mpn_message_free. Thread-safe. */
MPN_EXTERN mpn_message *mpn_launcher_node_lost_new(const char *host, const mpn_launcher_crash *c, size_t n);

/* The message as JSON text (schema mpinotify/1, compact), a string to free
 * with mpn_free(), or NULL when out of memory or `m` is NULL. Not thread-safe
 * against the message's setters. */
MPN_EXTERN char *mpn_message_json(const mpn_message *m);

/*
 * 1 when an environment entry ("NAME=value", or a bare NAME) holds a secret
 * by its name, so its value must never appear in a message's output lines:
 * MPINOTIFY_SECRET_*, or a name containing TOKEN, SECRET, PASSWORD, PASSWD,
 * API_KEY, ACCESS_KEY, PRIVATE_KEY or CREDENTIAL (case-insensitive:
 * WANDB_API_KEY, HF_TOKEN); 0 otherwise. The ranks' rank_output and a
 * launcher's output_tail mask the same values. Thread-safe.
 */
MPN_EXTERN int mpn_secret_variable(const char *entry);

/* Whether a secret variable's `value` is worth masking in free text: at
 * least 6 characters and not only digits (TOKENIZERS_PARALLELISM=false or
 * MAX_TOKENS=8 would otherwise turn every "false" or "8" into "***").
 * Thread-safe; async-signal-safe. */
MPN_EXTERN int mpn_secret_value_maskable(const char *value);

#ifdef __cplusplus
}
#endif

#endif /* MPINOTIFY_H */
