/* config.h - the config layer (docs/internals/config.md): settings from the
 * environment, mpn_options and the config file; channel specs and URLs
 * parsed into channels; secret references; masking. The configuration a
 * process runs with is published once loaded and never changes under a
 * reader (mpn__cfg). Uses base/ ... channels/. */
#ifndef MPN_CONFIG_H
#define MPN_CONFIG_H

#include "channels/channels.h"

/* ---- settings.c: the one table of settings -------------------------------
 * It drives the environment's and the config file's parsing (the variable is
 * MPINOTIFY_<ID>, the file's key its lower-case form), the file's known keys,
 * mpn_options and the ranges its setters check, the configuration's values
 * (mpn__config.value/text) and its text (mpn_sender_config), the error texts,
 * and the tools' help text (public mpn_setting_at).
 * X(ID, file key, scope, type, min, max, default, choices, help):
 * - scope FILE: the variable, else the file's key; ENV: the variable only (no
 *   key); RUN: the variable only, set by mpinotify-run for its ranks; PRIVATE:
 *   between mpinotify-run and its ranks (in no help text);
 * - min..max and the default apply to numbers (MS, COUNT); a FLAG's default is
 *   0 or 1; a CHOICE's values are `choices` ("a,b"), its default an index in
 *   them; a LIST takes any of its `choices`, its default a set (bit i: choice i).
 * New rows go at the end: mpn_setting_at(i) keeps its rows' places. */
#define MPN__SETTINGS(X) \
  X(URLS, "urls", FILE, TEXT, 0, 0, 0, 0, "the channels, separated by white space or commas") \
  X(JOB_NAME, "job_name", FILE, TEXT, 0, 0, 0, 0, "the job's name in every message (default: SLURM_JOB_NAME, else the program's)") \
  X(TIMEOUT_MS, "timeout_ms", FILE, MS, 100, 3600000, 10000, 0, "time budget from a fault to the end of its handling") \
  X(WINDOW_MS, "window_ms", FILE, MS, 0, 60000, 500, 0, "how long ranks hitting the same failure are gathered") \
  X(POLL_MS, "poll_ms", FILE, MS, 10, 2000, 200, 0, "how often an idle agent looks for another rank's failure") \
  X(DEBUG, "debug", FILE, FLAG, 0, 1, 0, 0, "diagnostics on stderr") \
  X(MPI_THREAD, "mpi_thread", FILE, CHOICE, 0, 0, 0, "multiple,keep", "the MPI thread level the library asks for") \
  X(SPOOL, "spool", FILE, TEXT, 0, 0, 0, 0, "the folder of messages not yet delivered (default $TMPDIR/mpinotify-$UID)") \
  X(CA_BUNDLE, "ca_bundle", FILE, TEXT, 0, 0, 0, 0, "a PEM file of CA certificates instead of the system's") \
  X(RELAY, "relay", FILE, CHOICE, 0, 0, 1, "off,auto,always", "delivery through mpinotify-run's relay") \
  X(EXCEPTION_SIGNATURE, "exception_signature", FILE, LIST, 0, 0, 7, "type,site,context,message", "what makes two exceptions the same") \
  X(ALERT_COOLDOWN, "alert_cooldown", FILE, COUNT, 0, 1000000000, 100, 0, "steps before the same alert is sent again") \
  X(ALERT_CAP, "alert_cap", FILE, COUNT, 0, 100000, 50, 0, "alerts per run at most") \
  X(PROGRESS_EVERY, "progress_every", FILE, COUNT, 0, 1000000000, 0, 0, "a progress message every N steps (0: off)") \
  X(EXIT_REPORTS, "exit_reports", FILE, FLAG, 0, 1, 1, 0, "report a rank's non-zero exit before MPI_Finalize") \
  X(RANK_OUTPUT, "rank_output", FILE, FLAG, 0, 1, 1, 0, "each rank keeps its last lines of output for its reports (0: off)") \
  X(RANK_OUTPUT_LINES, "rank_output_lines", FILE, COUNT, 0, 200, 20, 0, "how many of its last lines a rank's reports carry") \
  X(SYMBOLIZE_MS, "symbolize_ms", FILE, MS, 0, 60000, 2000, 0, "time for the file and line of a report's frames (0: none)") \
  X(HANG_TIMEOUT, "hang_timeout", FILE, COUNT, 0, 2592000, 600, 0, "seconds a rank may wait in one MPI call before the job counts as hung (0: off)") \
  X(HANG_ACTION, "hang_action", FILE, CHOICE, 0, 0, 0, "report,abort", "what a hung job leads to") \
  X(CONFIG, 0, ENV, TEXT, 0, 0, 0, 0, "an INI file with settings and channels") \
  X(DISABLE, 0, ENV, FLAG, 0, 1, 0, 0, "the library stays inert") \
  X(PYTHON, 0, ENV, FLAG, 0, 1, 1, 0, "Python ranks get mpinotify's hooks at start-up (through PYTHONPATH)") \
  X(RELAY_HOST, 0, ENV, TEXT, 0, 0, 0, 0, "the one host name or address ranks reach mpinotify-run's relay at (default: every IPv4 address of its node)") \
  X(JOB_COMMAND, 0, RUN, TEXT, 0, 0, 0, 0, "the job's command line; set by mpinotify-run to the launcher's command line (secrets are masked)") \
  X(CONFIG_CHECKED, 0, RUN, FLAG, 0, 1, 0, 0, "set by mpinotify-run once it has checked the URLs, so the ranks do not repeat its warnings") \
  X(RELAY_ADDR, 0, PRIVATE, TEXT, 0, 0, 0, 0, "where mpinotify-run's relay listens: host:port[,host:port...]") \
  X(RELAY_KEY, 0, PRIVATE, TEXT, 0, 0, 0, 0, "the job's key for the relay, 64 hex digits (a secret)") \
  X(RELAY_HOLD, 0, PRIVATE, FLAG, 0, 1, 0, 0, "fatal reports go to the relay first, to merge with the job's end")

typedef enum mpn__setting_id {
#define MPN__SETTING_ID(id, key, scope, type, lo, hi, def, choices, help) MPN__SET_##id,
  MPN__SETTINGS(MPN__SETTING_ID)
#undef MPN__SETTING_ID
  MPN__NSETTINGS
} mpn__setting_id;
/* The public description of each (mpn_setting, in the table's order). */
const mpn_setting *mpn__setting(mpn__setting_id id);
/* Is setting `id` of this type ("text", "ms", "count", "flag", "choice", "list")? */
int mpn__setting_is(mpn__setting_id id, const char *type);
/* A value of setting `id` (any type but TEXT): what it means (a choice: its
 * index; a list: its set, bit i for choice i), or, with one error line in err
 * naming the variable, the value and what it takes (and *rc =
 * MPN_E_BAD_CONFIG when rc), the default. NULL or "": the default. err may be
 * NULL. */
long long mpn__setting_parse(mpn__setting_id id, const char *v, char *err, size_t errlen, mpn_code *rc);
/* A meaning of setting `id` (not TEXT) as it is written: "1", "keep", "type,site". */
void mpn__setting_say(mpn__setting_id id, long long value, char *out, size_t cap);
/* The variable of setting `id` (NULL or "" when unset: NULL). */
const char *mpn__setting_env(mpn__setting_id id);
/* A FLAG setting from the environment only (no error: a bad value is the default). */
int mpn__setting_env_flag(mpn__setting_id id);

/* Values set in code: mpn_options' setters fill the row of their setting. */
struct mpn_options {
  char *text[MPN__NSETTINGS];        /* TEXT rows; NULL: not set */
  long long number[MPN__NSETTINGS];  /* other rows, as mpn__setting_parse gives them; -1: not set */
  char *config_text; /* mpn_options_set_config: used instead of MPINOTIFY_CONFIG's file */
};

/* The choices of RELAY, MPI_THREAD and HANG_ACTION, in the table's order
 * (a choice's value is its index). */
enum { MPN__RELAY_OFF = 0, MPN__RELAY_AUTO = 1, MPN__RELAY_ALWAYS = 2 };
enum { MPN__THREAD_MULTIPLE = 0, MPN__THREAD_KEEP = 1 };
enum { MPN__HANG_REPORT = 0, MPN__HANG_ABORT = 1 };

typedef struct mpn__config {
  mpn__channel *channels;
  int nchannels;
  char *job_name;
  char *job_command;      /* masked */
  char *slurm_job_id, *slurm_job_name, *slurm_step;   /* SLURM_JOB_ID, SLURM_JOB_NAME, SLURM_STEP_ID, or NULL */
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
  int relay_hold;         /* MPINOTIFY_RELAY_HOLD: fatal reports go to the relay first, to merge with the job's end */
  char *config_file;      /* MPINOTIFY_CONFIG, or NULL */
  unsigned exception_parts;   /* MPN_SIGNATURE_* */
  long long alert_cooldown;   /* steps */
  long alert_cap;
  long long progress_every;   /* 0: off */
  int exit_reports;           /* MPINOTIFY_EXIT_REPORTS (default on): non-zero exits are reported */
  long symbolize_ms;          /* MPINOTIFY_SYMBOLIZE_MS: time for file and line of a report's frames; 0: none */
  int rank_output_lines;      /* lines of a rank's output in its reports; 0: MPINOTIFY_RANK_OUTPUT=0 or none */
  long hang_timeout_s;        /* MPINOTIFY_HANG_TIMEOUT: a wait in one MPI call this long is a hang; 0: off */
  int hang_abort;             /* MPINOTIFY_HANG_ACTION=abort: end the job after the hang's message */
  int unknown_kinds;          /* channels of kinds not (yet) registered: mpn_register_channel reloads */
  /* Every setting in effect, by its row: what mpn_sender_config writes, and
   * what a setting without a field of its own above is read from. */
  long long value[MPN__NSETTINGS];   /* as mpn__setting_parse gives it (exception_signature: MPN_SIGNATURE_*) */
  char *text[MPN__NSETTINGS];        /* TEXT rows, or NULL (never urls: its channels hold them) */
} mpn__config;

/* ---- config.c ------------------------------------------------------------ */
/* Fills `cfg` from opts (may be NULL), the environment and MPINOTIFY_CONFIG.
 * Problems are collected in `err`, one per line; the config keeps the valid
 * parts and the first problem's code is returned. */
mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen);
void mpn__config_free(mpn__config *cfg);
/* No usable channel (every one configured was wrong): the console, so a
 * failure is never reported nowhere. For a rank; a sender keeps none. */
void mpn__config_console_fallback(mpn__config *cfg);
/* The configuration this process runs with: never NULL (all zero before the
 * first publish), never changed or freed once published; any thread. */
const mpn__config *mpn__cfg(void);
/* Makes `fresh` (moved from, left empty) the configuration readers get. */
void mpn__config_publish(mpn__config *fresh);
/* rank_output_lines as a full load would give it, read at a process's start
 * (before any configuration is loaded): the environment, else the config
 * file; a bad value gives the default here (the full load says so). */
int mpn__config_rank_output_lines(void);
/* The settings of `cfg` held in the config file's form, one "key = value"
 * line per FILE row it holds (its channels are not settings: the caller
 * writes them). */
void mpn__config_settings_text(const mpn__config *cfg, mpn__buf *b);

/* ---- url.c --------------------------------------------------------------- */
/* A list as MPINOTIFY_URLS takes it, parsed into channels (*out malloc'd,
 * free each with mpn__channel_free); problems as in mpn__config_load. */
mpn_code mpn__parse_url_list(const char *urls, mpn__channel **out, int *n, char *err, size_t errlen);
/* Parses one channel spec: "KIND+https://...", a service's own URL, "smtp(s)://",
 * "console://", or a reference "env:NAME" / "file:/path" holding one of those. */
mpn_code mpn__parse_channel(const char *spec, mpn__channel *ch, char *err, size_t errlen);
/* Adds options to a spec: the config file's section keys. Returns a new spec. */
char *mpn__spec_with_options(const char *url, const mpn__opt *opts, int nopts);

/* ---- secret.c: "env:NAME" and "file:/path" references -------------------- */
/* Returns a malloc'd value, or NULL with a problem in err (naming the
 * reference, never a value). A value that is not a reference is returned as
 * a copy. */
char *mpn__resolve_ref(const char *value, const char *what, char *err, size_t errlen);
int mpn__is_ref(const char *value);
/* Names of the variables the channels refer to ("env:NAME"), separated by
 * spaces; malloc'd, NULL when none. */
char *mpn__config_env_refs(const mpn__config *cfg);
/* The values a program's output must never show (mpn_mask_text's list):
 * the relay key, MPINOTIFY_SECRET_* and variables whose names say they hold
 * a secret, and the variables the channels refer to. NULL-terminated,
 * malloc'd; free with mpn__config_secrets_free. */
char **mpn__config_secrets(const mpn__config *cfg);
void mpn__config_secrets_free(char **list);

/* ---- config_file.c: the INI file (docs/configuration.md) ----------------- */
/* Section "" holds global keys; "channel NAME" sections channels. */
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

#endif
