/*
 * mpinotify-run - run an MPI launcher with libmpinotify preloaded into every
 * rank, so any MPI program is covered without a rebuild:
 *
 *     mpinotify-run [options] -- mpirun -np 64 ./train
 *
 * The wrapper checks the configuration once (so a typo is reported once, not
 * by every rank), passes it to the ranks through the environment, preloads
 * the library into the ranks but not into the launcher, forwards the usual
 * termination signals (one copy each: see "running it"), and exits with
 * exactly the launcher's status.
 * A problem with the notifier never stops the user's job: only a usage error
 * or a launcher that cannot be run does.
 *
 * It also sends the job's own messages (started, completed, failed: see
 * common/job_watch.h), for which the ranks register with its relay and the
 * launcher's output passes through it, and reports a rank that died without
 * a chance to report (SIGKILL) once, from the launcher's death notice.
 * What it knows of each launcher is in launchers/ (launcher.h).
 *
 * Uses only the public API (mpinotify.h).
 */
#include <mpinotify.h>

#include "common/job_watch.h"
#include "common/tool.h"
#include "launchers/launcher.h"

MPN_API_ONLY_PROGRAM;   /* the wrapper itself is not watched */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

enum {
  EXIT_USAGE = 2,
  EXIT_CANNOT_EXEC = 126,
  EXIT_NOT_FOUND = 127,
  ERR_MAX = 2048,
  START_WAIT_MS = 10000,     /* "started" goes when every rank armed, or after this */
  DRAIN_MS = 2000,           /* after the launcher ends: its output still in the pipes */
  OUTPUT_LINE_MAX = 1024,    /* kept per line for the tail; the output itself is passed on whole */
  MAX_LAUNCHER_CRASHES = 16,
  LEFTOVER_GRACE_MS = 2000,  /* after a stopped launcher: its own teardown of what it started */
  LEFTOVER_TERM_MS = 1000,   /* then SIGTERM, and this long before SIGKILL */
  LEFTOVER_KILL_MS = 1000,   /* SIGKILL, and this long to see them gone */
  MAX_LEFTOVERS = 256,
  REPEAT_MS = 1000,          /* the same signal from the same sender this soon: one event, twice */
  HOLD_MS = 10000,           /* a rank's held report waits this long for the job's end, then goes alone */
  WAIT_POLL_MS = 50,
  EXIT_BOUND_MS = 8000,      /* from the launcher's end to ours, whatever the services do (README: 10 s) */
};

/* Messages the final delivery could not deliver in time (they stay spooled),
 * each counted once: the relay's last try and the spool's flush may both
 * report the same message. */
static char undelivered_ids[64][48];
static int undelivered;
static bool finishing;
static char first_failure[400];   /* the first one's channel (masked) and why, for the closing line */

static void count_undelivered(const char *id, const char *channel, const char *detail)
{
  if (!first_failure[0])
    snprintf(first_failure, sizeof first_failure, "%s: %s", channel ? channel : "?", detail ? detail : "?");
  for (int i = 0; i < undelivered && i < 64; i++)
    if (id && !strcmp(undelivered_ids[i], id))
      return;
  if (undelivered < 64 && id)
    snprintf(undelivered_ids[undelivered], sizeof undelivered_ids[0], "%s", id);
  undelivered++;
}

/*
 * One run of the wrapper, filled in step by step by main(). Later features
 * (a relay socket for the ranks, job start/end messages, flushing the spool
 * at the end) keep their state here too.
 */
struct run {
  /* From the command line. */
  char **cmd;             /* the launcher's argv, NULL-terminated (points into main's argv) */
  int ncmd;
  char **urls;            /* the --url values */
  int nurls;
  const char *name;       /* --name, or NULL */
  const char *timeout_ms; /* --timeout-ms, validated, or NULL */
  const char *window_ms;  /* --window-ms, validated, or NULL */
  const char *hang_timeout;   /* --hang-timeout, validated, or NULL */
  bool disable;
  bool relay;             /* --relay: ranks hand every message to the relay */
  const char *job_events; /* --job-events, or NULL */
  /* Derived. */
  char *launcher;         /* the launcher's resolved path */
  const launcher *kind;   /* the launcher's, when one of launchers/ recognises it */
  const char *library;    /* the libmpinotify.so to preload, or NULL */
  char **argv;            /* the command actually executed */
  mpn_sender *sender;     /* the configuration, for the relay and the final flush */
  mpn_relay *relay_srv;   /* the relay for ranks without a route to the services */
  unsigned events;        /* JOB_* messages to send */
  job_watch *watch;       /* what the job's messages say; NULL: no messages */
  char *job_key;          /* MPINOTIFY_RELAY_KEY: in the environment of every local process of the job */
  char *run_dir;          /* MPINOTIFY_RUN_DIR: where this node's ranks mark a SIGTERM (term-RANK), or NULL */
  /* The running job. */
  pid_t child;
  bool own_group;         /* the launcher leads a process group of its own */
  int status;             /* the launcher's wait status */
  bool reaped;
  bool started_sent;
  int out_pipe[2][2];     /* the launcher's stdout and stderr, read here; -1 when not captured */
  pthread_t pump;
  bool pumping;
  atomic_llong drain_until;   /* ms (monotonic) the pump may still wait for output; 0: no limit */
  long long exit_by;      /* ms (monotonic) by which every delivery after the job has ended */
  long long start_wall_ms;   /* messages spooled before this are earlier jobs' (flush_leftovers) */
};

/* Signals a user or a batch system sends to stop or poke a job: they go to the launcher. */
static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])

/* The launcher's pid, for the signal handler; 0 while there is none. */
static volatile sig_atomic_t child_pid;
/* The launcher's own process group (its pid), or 0 when it shares ours. */
static volatile sig_atomic_t child_group;
/* A signal that stops a job (INT, TERM, HUP, QUIT) came while the launcher ran. */
static volatile sig_atomic_t stop_requested;
/* The first of those signals (a batch system's SIGTERM says it ends the job), or 0, and when (wall clock, s). */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t stop_signal_s;

/* ---- usage ---------------------------------------------------------------- */

/* What mpinotify-run adds to the library's description of a setting. */
static const char *const setting_notes[][2] = {
  {"MPINOTIFY_URLS", "none: reports go to the console (standard error)"},
  {"MPINOTIFY_TIMEOUT_MS", "as --timeout-ms"},
  {"MPINOTIFY_WINDOW_MS", "as --window-ms"},
  {"MPINOTIFY_HANG_TIMEOUT", "as --hang-timeout"},
  {"MPINOTIFY_MPI_THREAD", "multiple raises the thread level a program requests to MPI_THREAD_MULTIPLE for "
                           "the library's agent thread; keep never changes it"},
  {"MPINOTIFY_SPOOL", "flushed by mpinotify-run at the end of the job"},
  {"MPINOTIFY_RELAY", "always: as --relay; off: ranks relay no message (they still register here)"},
};

/* The values of a choice or a list, as the table gives them: "a (default) or
 * b"; "any of a, b or c; default a,b". */
static char *setting_values(const mpn_setting *s)
{
  bool list = strcmp(s->type, "list") == 0;
  char *values = tool_xstrdup(""), *defaults = tool_xstrdup("");
  int i = 0;
  for (const char *p = s->choices; *p; i++) {
    int n = (int)strcspn(p, ",");
    bool is_default = list ? (s->def >> i) & 1 : i == s->def;
    char *more = tool_xasprintf("%s%s%.*s%s", values, i == 0 ? "" : p[n] ? ", " : " or ", n, p,
                                is_default && !list ? " (default)" : "");
    free(values);
    values = more;
    if (is_default) {
      more = tool_xasprintf("%s%s%.*s", defaults, *defaults ? "," : "", n, p);
      free(defaults);
      defaults = more;
    }
    p += n + (p[n] == ',');
  }
  char *text = list ? tool_xasprintf("any of %s; default %s", values, defaults) : tool_xstrdup(values);
  free(values);
  free(defaults);
  return text;
}

/* Every setting the library reads, as its table describes it, but those only
 * mpinotify-run and its ranks exchange. */
static void usage_settings(FILE *out)
{
  const mpn_setting *s;
  for (int i = 0; (s = mpn_setting_at(i)) != NULL; i++) {
    if (s->scope && strcmp(s->scope, "private") == 0)
      continue;
    char *text = tool_setting_help(s);
    if (s->choices) {
      char *values = setting_values(s);
      char *with = tool_xasprintf("%s: %s", text, values);
      free(text);
      free(values);
      text = with;
    }
    for (size_t k = 0; k < sizeof setting_notes / sizeof setting_notes[0]; k++)
      if (strcmp(setting_notes[k][0], s->name) == 0) {
        char *noted = tool_xasprintf("%s; %s", text, setting_notes[k][1]);
        free(text);
        text = noted;
      }
    tool_help_item(out, 27, s->name, text);
    free(text);
  }
}

/* An option whose value is setting `name`: its description, range and default. */
static void usage_setting_option(FILE *out, const char *label, const char *name)
{
  const mpn_setting *s = tool_setting(name);
  char *range = tool_setting_range(name);
  char *text = tool_xasprintf("%s, %s", s ? s->help : "see README", range);
  tool_help_item(out, 19, label, text);
  free(text);
  free(range);
}

static void usage(FILE *out)
{
  fputs("Usage: mpinotify-run [OPTIONS] -- LAUNCHER [ARGS...]\n"
        "\n"
        "Runs an MPI launcher (mpirun, mpiexec, srun, ...) with libmpinotify preloaded\n"
        "into every rank: when ranks crash, one message per unique failure is sent to\n"
        "the configured channels. The program needs no rebuild. The launcher's exit\n"
        "status is passed through unchanged; a problem with the notifier's\n"
        "configuration is reported once and never stops the job.\n"
        "\n"
        "Options:\n", out);
  char *forms = tool_kind_forms();
  char *url = tool_xasprintf("send reports to this channel; repeatable; appended to MPINOTIFY_URLS. Forms: "
                             "https://... (a JSON webhook, or the service named by its host), %s, env:NAME; "
                             "see README", forms);
  tool_help_item(out, 19, "--url URL", url);
  free(url);
  free(forms);
  tool_help_item(out, 19, "--name NAME", "the job's name in every message (MPINOTIFY_JOB_NAME); default: "
                                         "MPINOTIFY_JOB_NAME, else the program's name");
  usage_setting_option(out, "--timeout-ms MS", "MPINOTIFY_TIMEOUT_MS");
  usage_setting_option(out, "--window-ms MS", "MPINOTIFY_WINDOW_MS");
  usage_setting_option(out, "--hang-timeout S", "MPINOTIFY_HANG_TIMEOUT");
  tool_help_item(out, 19, "--relay", "ranks hand every message to this process, which delivers it (for compute "
                                     "nodes without internet access); without it, ranks use the relay only "
                                     "when their direct route fails");
  tool_help_item(out, 19, "--job-events LIST", "job messages to send: a comma list of started, completed, "
                                               "failed, or all or none (MPINOTIFY_JOB_EVENTS; default "
                                               "completed,failed, and started when ranks did not arm)");
  tool_help_item(out, 19, "--disable", "run the launcher untouched: no preload, no variables");
  tool_help_item(out, 19, "-h, --help", "show this help and exit");
  tool_help_item(out, 19, "--version", "show the versions of mpinotify-run and the library");
  fputs("\nEnvironment (read by the library in every rank; passed on to all nodes):\n", out);
  usage_settings(out);
  tool_help_item(out, 27, "MPINOTIFY_JOB_EVENTS", "as --job-events");   /* mpinotify-run's own */
  tool_help_item(out, 27, "SLURM_JOB_ID, SLURM_JOB_NAME", "shown in the job's messages; the name is the job's "
                                                          "name when neither --name nor MPINOTIFY_JOB_NAME "
                                                          "gives one");
  fputs("\n"
        "One message per failure: the failure that ends the job carries the job's\n"
        "end (ranks hand their fatal reports to this process, which sends each once\n"
        "the launcher has ended, or after 10 s, with the exit status, the ranks torn\n"
        "down after it and the application's own words: MPINOTIFY_RELAY_HOLD).\n"
        "Job messages (event \"job\"): started (how many ranks armed the notifier),\n"
        "completed (duration), failed when no failure's message carried the end\n"
        "(exit status, root cause, the job's reports, the last lines of its output).\n"
        "The launcher's output passes through this process unchanged. A rank that\n"
        "dies by a signal without a report of its own (SIGKILL, the OOM killer) is\n"
        "reported once by mpinotify-run (event \"crash\", \"reported_by\": \"launcher\").\n"
        "\n"
        "Signals: INT, TERM, HUP, QUIT, USR1 and USR2 sent to mpinotify-run are\n"
        "passed on to the launcher, one copy each (run from a script or under\n"
        "timeout, the launcher has a process group of its own); processes of the\n"
        "job on this node that outlive a launcher so stopped are ended. Killed\n"
        "itself (SIGKILL), mpinotify-run takes the launcher with it.\n"
        "\n"
        "Exit status: the launcher's (a launcher killed by a signal makes\n"
        "mpinotify-run die by the same signal); 2: usage error; 126: LAUNCHER cannot\n"
        "be executed; 127: LAUNCHER not found.\n"
        "\n"
        "Example:\n"
        "  mpinotify-run --url https://hooks.example.com/T0/B0/XXXX --name train \\\n"
        "      -- mpirun -np 64 ./train\n", out);
}

static int usage_error(const char *what, const char *arg)
{
  return tool_usage_error(usage, what, arg);
}

/* ---- command line ----------------------------------------------------------- */

typedef mpn_code (*ms_setter)(mpn_options *, long);

/* The library's own setter decides the valid range, so the two never disagree. */
static bool valid_ms(const char *value, ms_setter set)
{
  long ms;
  if (!tool_parse_long(value, &ms))
    return false;
  mpn_options *probe = mpn_options_new();
  bool ok = probe == NULL || set(probe, ms) == MPN_OK;   /* out of memory: the ranks check again */
  mpn_options_free(probe);
  return ok;
}

static const char *ms_option(const char *opt, const char *value, ms_setter set, int *rc)
{
  if (!valid_ms(value, set)) {
    tool_warn("invalid value '%s' for %s: expected milliseconds in the range that --help shows", value, opt);
    *rc = EXIT_USAGE;
  }
  return value;
}

/* A whole number within the setting's range as the library's table gives it. */
static const char *range_option(const char *opt, const char *value, const char *setting, int *rc)
{
  const mpn_setting *s = tool_setting(setting);
  long v;
  if (!tool_parse_long(value, &v) || (s && (v < s->min || v > s->max))) {
    tool_warn("invalid value '%s' for %s: expected a whole number in the range that --help shows", value, opt);
    *rc = EXIT_USAGE;
  }
  return value;
}

static const struct option long_options[] = {
  {"url", required_argument, NULL, 'u'},
  {"name", required_argument, NULL, 'n'},
  {"timeout-ms", required_argument, NULL, 't'},
  {"window-ms", required_argument, NULL, 'w'},
  {"hang-timeout", required_argument, NULL, 'g'},
  {"disable", no_argument, NULL, 'd'},
  {"relay", no_argument, NULL, 'r'},
  {"job-events", required_argument, NULL, 'j'},
  {"help", no_argument, NULL, 'h'},
  {"version", no_argument, NULL, 'V'},
  {NULL, 0, NULL, 0},
};

/* Handles one option; returns -1 to go on, else the exit status. */
static int take_option(struct run *r, int c, char **argv)
{
  int rc = -1;
  switch (c) {
  case 'u': r->urls[r->nurls++] = optarg; break;
  case 'n': r->name = optarg; break;
  case 't': r->timeout_ms = ms_option("--timeout-ms", optarg, mpn_options_set_timeout_ms, &rc); break;
  case 'w': r->window_ms = ms_option("--window-ms", optarg, mpn_options_set_window_ms, &rc); break;
  case 'g': r->hang_timeout = range_option("--hang-timeout", optarg, "MPINOTIFY_HANG_TIMEOUT", &rc); break;
  case 'd': r->disable = true; break;
  case 'r': r->relay = true; break;
  case 'j':
    if (!job_events_parse(optarg, &r->events))
      return usage_error("invalid --job-events (expected started, completed, failed, all or none): ", optarg);
    r->job_events = optarg;
    break;
  case 'h': usage(stdout); return 0;
  case 'V': tool_print_version(); return 0;
  default: return tool_option_error(usage, c, argv);
  }
  return rc;
}

/* Fills r from argv; returns -1 to go on, else the exit status. */
static int parse_args(struct run *r, int argc, char **argv)
{
  r->urls = tool_xmalloc(sizeof *r->urls * (size_t)argc);
  opterr = 0;   /* our own messages, with usage */
  int c;
  /* '+': stop at the first non-option, so the launcher's options are never ours. */
  while ((c = getopt_long(argc, argv, "+:h", long_options, NULL)) != -1) {
    int rc = take_option(r, c, argv);
    if (rc >= 0)
      return rc;
  }
  /* The "--" is required: without it, a launcher option could be taken for ours. */
  if (optind == 1 || strcmp(argv[optind - 1], "--") != 0)
    return usage_error("missing '--' before the launcher's command", NULL);
  if (optind >= argc)
    return usage_error("missing the launcher's command after '--'", NULL);
  r->cmd = argv + optind;
  r->ncmd = argc - optind;
  return -1;
}

/* ---- finding the launcher ----------------------------------------------------- */

/* 0 when `path` is a regular file we may execute, else an errno value. */
static int executable(const char *path)
{
  struct stat st;
  if (stat(path, &st) != 0)
    return errno;
  if (!S_ISREG(st.st_mode))
    return EACCES;
  return access(path, X_OK) == 0 ? 0 : errno;
}

/* The first executable `name` in PATH, as execvp would find it; NULL with *err set otherwise. */
static char *search_path(const char *name, int *err)
{
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/local/bin:/bin:/usr/bin";
  *err = ENOENT;
  for (const char *p = path;; p++) {
    size_t n = strcspn(p, ":");
    char *cand = tool_xasprintf("%.*s%s%s", (int)n, p, n ? "/" : "", name);
    int e = executable(cand);
    if (e == 0)
      return cand;
    free(cand);
    if (e != ENOENT && e != ENOTDIR)
      *err = e;   /* like execvp: "not executable" beats "not found" */
    p += n;
    if (*p == '\0')
      return NULL;
  }
}

/* Resolves r->cmd[0]; returns -1 to go on, else 126 or 127 after a message. */
static int resolve_launcher(struct run *r)
{
  const char *name = r->cmd[0];
  int err = 0;
  if (strchr(name, '/') != NULL) {
    err = executable(name);
    r->launcher = err ? NULL : tool_xstrdup(name);
  } else if (*name != '\0') {
    r->launcher = search_path(name, &err);
  } else {
    err = ENOENT;
  }
  if (r->launcher != NULL)
    return -1;
  if (err == ENOENT || err == ENOTDIR) {
    tool_warn("%s: command not found", name);
    return EXIT_NOT_FOUND;
  }
  tool_warn("%s: cannot execute: %s", name, strerror(err));
  return EXIT_CANNOT_EXEC;
}

/* ---- the environment for the ranks ---------------------------------------------- */

/* MPINOTIFY_URLS plus every --url, then one check, so a typo is reported here and only here. */
static void setup_urls(const struct run *r)
{
  if (r->nurls > 0) {
    char *all = tool_urls_with(r->urls, (size_t)r->nurls);
    setenv("MPINOTIFY_URLS", all, 1);
    free(all);
  }
  char err[ERR_MAX] = "";
  /* The whole configuration, not only the URLs: the ranks stay quiet about
   * what the wrapper has checked (MPINOTIFY_CONFIG_CHECKED). */
  if (mpn_check_environment(err, sizeof err) != MPN_OK)
    tool_warn_lines(err);   /* the library already masked every secret in err */
  setenv("MPINOTIFY_CONFIG_CHECKED", "1", 1);
}

/* Prints what happened to messages the ranks relayed or the spool held:
 * quiet when a message was delivered, one line when it was not. */
static void report_result(const mpn_result *res, void *arg)
{
  const char *what = arg;
  if (res->code == MPN_OK) {
    if (getenv("MPINOTIFY_DEBUG"))
      tool_warn("%s message %s delivered to %s", what, res->message_id, res->channel);
    return;
  }
  if (finishing)
    count_undelivered(res->message_id, res->channel, res->detail);
  if (!finishing || getenv("MPINOTIFY_DEBUG"))
    tool_warn("%s message %s not delivered to %s: %s%s%s", what, res->message_id, res->channel, res->detail,
            res->spool_file ? "; kept in " : "", res->spool_file ? res->spool_file : "");
}

/* The relay for ranks without a route to the services, started before the
 * launcher so its address and key reach every rank (MPINOTIFY_RELAY_*). */
static void setup_relay(struct run *r)
{
  char err[ERR_MAX] = "";
  if (r->relay)
    setenv("MPINOTIFY_RELAY", "always", 1);
  mpn_sender_new(NULL, &r->sender, NULL, 0);   /* problems were reported by setup_urls */
  /* Also with MPINOTIFY_RELAY=off: the ranks then relay no message, but
   * still register (hello, bye, report) for the job's messages. */
  if (!r->sender)
    return;
  if (mpn_relay_start(r->sender, &r->relay_srv, err, sizeof err) != MPN_OK)
    tool_warn("cannot start the relay (ranks will deliver directly only): %s", err);
  /* A failure that ends the job and the job's end go as one message: the
   * ranks hand their fatal reports to the relay to hold (send_job_end). */
  if (r->relay_srv && (r->events & JOB_FAILED))
    setenv("MPINOTIFY_RELAY_HOLD", "1", 1);
  else
    unsetenv("MPINOTIFY_RELAY_HOLD");
  const char *key = r->relay_srv ? getenv("MPINOTIFY_RELAY_KEY") : NULL;
  r->job_key = key && *key ? tool_xstrdup(key) : NULL;   /* see end_leftovers */
}

/* A private directory for this job's ranks on this node: a rank that a
 * SIGTERM ends creates term-RANK there from its handler, which no load can
 * delay (its notice to the relay may come too late). */
static void setup_run_dir(struct run *r)
{
  const char *tmp = getenv("TMPDIR");
  char *tmpl = tool_xasprintf("%s/mpinotify-run-XXXXXX", tmp && tmp[0] == '/' ? tmp : "/tmp");
  if (r->relay_srv && mkdtemp(tmpl)) {
    r->run_dir = tmpl;
    setenv("MPINOTIFY_RUN_DIR", tmpl, 1);
  } else {
    free(tmpl);
    unsetenv("MPINOTIFY_RUN_DIR");
  }
}

/* The marks, then the directory. */
static void remove_run_dir(struct run *r)
{
  DIR *d = r->run_dir ? opendir(r->run_dir) : NULL;
  for (struct dirent *e; d && (e = readdir(d));)
    if (strncmp(e->d_name, "term-", 5) == 0)
      unlinkat(dirfd(d), e->d_name, 0);
  if (d)
    closedir(d);
  if (r->run_dir)
    rmdir(r->run_dir);
  free(r->run_dir);
  r->run_dir = NULL;
}

static void count_spooled(const mpn_spool_entry *e, void *arg)
{
  *(int *)arg += e->code == MPN_OK;
}

/*
 * Messages earlier jobs left in the spool go in the background: a child
 * process of their own, started before anything else (no threads, no
 * relay key, no pipes of the job), with its output on /dev/null so that
 * nobody waits for it. It outlives us if it must; what it cannot deliver
 * stays spooled for the next job or mpinotify-send --flush. The job's own
 * flush at its end leaves them alone (finish_delivery).
 */
static void flush_leftovers(struct run *r)
{
  r->start_wall_ms = tool_wall_ms();
  int n = 0;
  if (mpn_spool_list(NULL, count_spooled, &n) != MPN_OK || n == 0 || getenv("MPINOTIFY_DISABLE"))
    return;
  pid_t pid = fork();
  if (pid < 0) {
    r->start_wall_ms = 0;   /* no background: the job's end flush takes them, within its bound */
    return;
  }
  if (pid != 0) {
    if (getenv("MPINOTIFY_DEBUG"))
      tool_warn("%d message%s of earlier jobs in the spool: delivering them in the background (pid %ld)", n,
                n == 1 ? "" : "s", (long)pid);
    return;
  }
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  for (int fd = 0; fd < 3 && null >= 0; fd++)
    dup2(null, fd);
  syscall(SYS_close_range, 3, ~0U, 0);   /* nobody waiting for EOF on an inherited pipe waits for us */
  mpn_sender *s = NULL;
  if (mpn_sender_new(NULL, &s, NULL, 0) == MPN_OK) {
    mpn_sender_set_flush_window(s, 0, r->start_wall_ms);
    mpn_sender_flush(s, NULL, NULL);
    mpn_sender_free(s);
  }
  _exit(0);
}

/* After the job: the relay's last deliveries, then what this job left in the
 * spool, all within the exit bound; what is left stays spooled, said in one line. */
static void finish_delivery(struct run *r)
{
  if (!r->sender)
    return;
  long left = r->exit_by ? (long)(r->exit_by - tool_now_ms()) : EXIT_BOUND_MS;
  mpn_relay_stop(r->relay_srv, left > 0 ? left : 0, report_result, "relayed");
  mpn_sender_set_flush_window(r->sender, r->start_wall_ms, 0);
  mpn_sender_flush(r->sender, report_result, "spooled");
  if (undelivered)
    tool_warn("%d message%s not delivered within %d s of the job's end (%s%s): kept in %s for mpinotify-send --flush",
              undelivered, undelivered == 1 ? "" : "s", EXIT_BOUND_MS / 1000, first_failure,
              undelivered > 1 ? ", and others" : "", mpn_sender_spool_dir(r->sender));
  mpn_sender_free(r->sender);
}

static void setup_job(const struct run *r)
{
  char *command = tool_join(r->cmd, (size_t)r->ncmd, " ");
  setenv("MPINOTIFY_JOB_COMMAND", command, 1);
  free(command);
  const char *name = r->name ? r->name : getenv("MPINOTIFY_JOB_NAME");
  if (name == NULL || *name == '\0')
    name = launcher_env_job_name();   /* the batch system's (SLURM_JOB_NAME) */
  if (name == NULL || *name == '\0')
    name = launcher_guess_job_name(r->cmd, r->ncmd);   /* srun -J train outside an allocation */
  if (name == NULL || *name == '\0')
    name = launcher_guess_program(r->cmd, r->ncmd);
  if (name != NULL)
    setenv("MPINOTIFY_JOB_NAME", name, 1);
  if (r->timeout_ms)
    setenv("MPINOTIFY_TIMEOUT_MS", r->timeout_ms, 1);
  if (r->window_ms)
    setenv("MPINOTIFY_WINDOW_MS", r->window_ms, 1);
  if (r->hang_timeout)
    setenv("MPINOTIFY_HANG_TIMEOUT", r->hang_timeout, 1);
}

/* ---- the job's messages ------------------------------------------------------------ */

/* The command line as messages show it: every URL's secrets masked. */
static char *shown_command(const struct run *r)
{
  char *all = tool_join(r->cmd, (size_t)r->ncmd, " ");
  char *shown = tool_shown_arg(all);
  free(all);
  return shown;
}

/* Values that must never appear in the output tail a message carries. */
static void add_secrets(struct run *r)
{
  job_watch_add_secret(r->watch, getenv("MPINOTIFY_RELAY_KEY"));
  for (char **e = environ; *e; e++)
    if (mpn_secret_variable(*e) && strchr(*e, '='))
      job_watch_add_secret(r->watch, strchr(*e, '=') + 1);
  char *refs = tool_xstrdup(mpn_sender_env_references(r->sender));
  char *save = NULL;
  for (char *name = strtok_r(refs, " ", &save); name; name = strtok_r(NULL, " ", &save))
    job_watch_add_secret(r->watch, getenv(name));
  free(refs);
}

/* Which job messages to send: --job-events (parsed with the options) or MPINOTIFY_JOB_EVENTS. */
static void setup_events(struct run *r)
{
  const char *env = getenv("MPINOTIFY_JOB_EVENTS");
  if (r->job_events)
    return;
  r->events = JOB_DEFAULT;
  if (env && *env && !job_events_parse(env, &r->events)) {
    tool_warn("MPINOTIFY_JOB_EVENTS=\"%.40s\" is not a list of started, completed, failed, or all or none; "
              "sending the default (completed, failed, and started when ranks did not arm)", env);
    r->events = JOB_DEFAULT;
  }
}

/* The job's messages need the configuration; they go where the ranks' reports go. */
static void setup_watch(struct run *r)
{
  if (!r->sender)
    return;
  char *command = shown_command(r);
  job_info info = {
    .name = getenv("MPINOTIFY_JOB_NAME"),
    .command = command,
    .np_guess = launcher_guess_np(r->cmd, r->ncmd),
    .registering = r->relay_srv != NULL,
  };
  r->watch = job_watch_new(&info);
  free(command);
  add_secrets(r);
  if (r->relay_srv)
    mpn_relay_set_observer(r->relay_srv, job_watch_notice, r->watch);
}

static void send_message(struct run *r, mpn_message *m, const char *what)
{
  if (!m)
    return;
  mpn_sender_send(r->sender, m, report_result, (void *)what);
  mpn_message_free(m);
}

static void send_started(struct run *r)
{
  if (r->started_sent || !r->watch)
    return;
  r->started_sent = true;
  /* By default only as a warning: a job whose ranks all armed says nothing until it ends. */
  bool warn = (r->events & JOB_STARTED_UNARMED) && job_watch_start_warns(r->watch);
  if ((r->events & JOB_STARTED) || warn)
    send_message(r, job_watch_started(r->watch), "job started");
}

/* The failure that ended the job, with the job's end in it: the rank's held
 * report released as this message, or the crash message of a rank that died
 * without one. False when there is none (then "failed" goes on its own). */
static bool send_merged(struct run *r)
{
  char id[64];
  mpn_message *m = job_watch_merged(r->watch, id, sizeof id);
  if (!m)
    return false;
  if (!*id) {
    send_message(r, m, "crash");
    return true;
  }
  /* Merged only where every configured channel gets it: else the report goes as it is and
   * "failed" on its own (no channel may miss the job's end, none may hear it twice). */
  bool released = mpn_relay_covers(r->relay_srv, id) && mpn_relay_release(r->relay_srv, id, m) == MPN_OK;
  mpn_message_free(m);
  /* failures that only follow from it (a peer gone) are listed in it: no message of their own */
  char knock[32][48];
  int n = released ? job_watch_knock_ons(r->watch, knock, 32) : 0;
  for (int i = 0; i < n; i++)
    if (mpn_relay_covers(r->relay_srv, knock[i]))
      mpn_relay_drop(r->relay_srv, knock[i]);
  return released;
}

/* After the job: "started" if the job ended before it went, then the failure
 * that ended it merged with the job's end, a crash message for each other
 * rank that died without a report, and "completed" or "failed" when no
 * message said it already. */
static void send_job_end(struct run *r)
{
  if (!r->watch)
    return;
  if (stop_signal)
    job_watch_stop_signal(r->watch, stop_signal, (long long)stop_signal_s * 1000);
  job_watch_term_marks(r->watch, r->run_dir);
  job_watch_ended(r->watch, r->status);
  send_started(r);
  bool merged = (r->events & JOB_FAILED) && send_merged(r);
  mpn_message *crashes[MAX_LAUNCHER_CRASHES];
  int n = job_watch_unreported_deaths(r->watch, crashes, MAX_LAUNCHER_CRASHES);
  for (int i = 0; i < n; i++)
    send_message(r, crashes[i], "crash");
  unsigned kind = job_watch_failed(r->watch) ? JOB_FAILED : JOB_COMPLETED;
  if ((r->events & kind) && !merged)
    send_message(r, job_watch_finished(r->watch), kind == JOB_FAILED ? "job failed" : "job completed");
}

/* LD_PRELOAD with the library in front of what the user preloads already (once). */
static char *preload_value(const char *library)
{
  const char *old = getenv("LD_PRELOAD");
  if (old == NULL || *old == '\0')
    return tool_xstrdup(library);
  size_t n = strlen(library);
  for (const char *p = old; (p = strstr(p, library)) != NULL; p += n)
    if ((p == old || p[-1] == ':' || p[-1] == ' ') && (p[n] == '\0' || p[n] == ':' || p[n] == ' '))
      return tool_xstrdup(old);
  return tool_xasprintf("%s:%s", library, old);
}

/* ---- the launcher's command -------------------------------------------------------- */

static bool is_mpinotify_var(const char *entry)
{
  return strncmp(entry, "MPINOTIFY_", 10) == 0 && strchr(entry, '=') != NULL;
}

/*
 * What every rank needs: the preload and each MPINOTIFY_* variable, and the
 * variables the configuration refers to (env:NAME), which must reach other
 * nodes too. Names only but for the preload: the values (webhook secrets)
 * stay out of every command line that ps shows. Returns how many.
 */
static int rank_vars(const struct run *r, char ***out)
{
  const char *refs = r->sender ? mpn_sender_env_references(r->sender) : "";
  size_t cap = 2 + strlen(refs);   /* at most a name per character of refs */
  for (char **e = environ; *e; e++)
    cap++;
  char **vars = tool_xmalloc(sizeof *vars * cap);
  int n = 0;
  char *preload = preload_value(r->library);
  vars[n++] = tool_xasprintf("LD_PRELOAD=%s", preload);
  free(preload);
  for (char **e = environ; *e; e++)
    if (is_mpinotify_var(*e))
      vars[n++] = tool_xasprintf("%.*s", (int)(strchr(*e, '=') - *e), *e);
  char *names = tool_xstrdup(refs), *save = NULL;
  for (char *name = strtok_r(names, " ", &save); name; name = strtok_r(NULL, " ", &save))
    if (getenv(name))
      vars[n++] = tool_xstrdup(name);
  free(names);
  *out = vars;
  return n;
}

/*
 * Decides how the library reaches the ranks. Through the launcher's command
 * line where it can carry variables (Open MPI's -x) it reaches every node and
 * stays out of the launcher itself; other launchers (srun, Hydra) pass their
 * own environment on, so LD_PRELOAD goes there, where the library stays inert
 * in every process that never calls MPI_Init.
 */
static void setup_preload(struct run *r)
{
  r->library = mpn_library_path();
  if (r->library == NULL) {
    tool_warn("cannot find libmpinotify.so to preload; running the job without the notifier");
    r->argv = r->cmd;
    return;
  }
  r->kind = launcher_of(r->launcher, r->cmd, r->ncmd);
  if (r->kind && r->kind->pass_env) {
    char **vars;
    int n = rank_vars(r, &vars);
    r->argv = r->kind->pass_env(r->cmd, r->ncmd, vars, n);
    if (r->argv)
      return;   /* the strings stay: the argv points to them */
    for (int i = 0; i < n; i++)
      free(vars[i]);
    free(vars);
  }
  char *preload = preload_value(r->library);
  setenv("LD_PRELOAD", preload, 1);
  free(preload);
  r->argv = r->cmd;
}

/* ---- running it ---------------------------------------------------------------- */

/*
 * Passes a signal on to the launcher, so that it gets exactly one copy of
 * every signal sent to us. That matters: Open MPI's mpirun (3.x, 4.x) takes
 * a second SIGINT, SIGTERM or SIGHUP within 5 s of the first as "forcibly
 * terminate" and exits at once, without ending the ranks it started, which
 * then outlive the job. So:
 *  - When we are not the terminal's foreground job (a batch script, `timeout`,
 *    nohup, cron), the launcher leads a process group of its own (spawn): a
 *    signal sent to our whole group (`timeout` signals its child and then its
 *    process group; batch systems kill process groups) reaches only us, and
 *    the one copy we forward goes to the launcher's group, as the group
 *    signal would have without us.
 *  - In the terminal's foreground job the launcher shares our group, as
 *    without us (so Ctrl-Z and its standard input work as usual): what the
 *    kernel sent to the group (Ctrl-C, Ctrl-\, a hang-up: SI_KERNEL) already
 *    reached the launcher and is not forwarded.
 *  - One event may reach us twice: `timeout` signals its child, then its
 *    group, which holds the child too. The same signal from the same sender
 *    within REPEAT_MS of one we forwarded is that event again, not forwarded;
 *    a later one is (a user's second signal, to force the launcher down).
 * Runs with every forwarded signal blocked, so the statics are its own.
 */
static void forward_signal(int sig, siginfo_t *si, void *ctx)
{
  (void)ctx;
  static int last_sig;
  static pid_t last_from;
  static long last_ms;
  int saved = errno;
  if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP || sig == SIGQUIT) {
    stop_requested = 1;
    if (!stop_signal) {
      struct timespec wall;
      clock_gettime(CLOCK_REALTIME, &wall);   /* async-signal-safe */
      stop_signal_s = (sig_atomic_t)wall.tv_sec;
      stop_signal = sig;
    }
  }
  pid_t group = (pid_t)child_group;
  bool launcher_has_it = group == 0 && si->si_code == SI_KERNEL;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);   /* async-signal-safe */
  long now = ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
  bool repeat = last_sig == sig && last_from == si->si_pid && now - last_ms < REPEAT_MS;
  if (child_pid > 0 && !launcher_has_it && !repeat) {
    kill(group > 0 ? -group : (pid_t)child_pid, sig);
    last_sig = sig;
    last_from = si->si_pid;
    last_ms = now;
  }
  errno = saved;
}

static void block_forwarded(int how, sigset_t *old)
{
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < N_FORWARDED; i++)
    sigaddset(&set, forwarded_signals[i]);
  sigprocmask(how, &set, old);
}

/* Installs the forwarders, except on signals we were told to ignore (nohup): the launcher inherits those. */
static void install_forwarders(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = forward_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < N_FORWARDED; i++)
    sigaddset(&sa.sa_mask, forwarded_signals[i]);   /* one handler at a time (its statics) */
  for (size_t i = 0; i < N_FORWARDED; i++) {
    struct sigaction old;
    if (sigaction(forwarded_signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
      continue;
    sigaction(forwarded_signals[i], &sa, NULL);
  }
}

/*
 * In the child: default actions back before the mask opens, so nothing is
 * lost before exec. Should mpinotify-run itself be killed (SIGKILL: `timeout
 * -s KILL`, the OOM killer), the launcher is killed with it, as it was when
 * it shared our process group and `timeout` killed the group: in a group of
 * its own it would otherwise run on, unwatched. SIGKILL, not SIGTERM: the
 * kernel sends the parent-death signal once per thread of the launcher, and
 * mpirun takes a second SIGTERM as "forcibly terminate" anyway.
 */
static void exec_launcher(const struct run *r, const sigset_t *mask, int errfd, pid_t parent)
{
  if (r->own_group)
    setpgid(0, 0);   /* also done by the parent: whichever runs first */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(EXIT_CANNOT_EXEC);   /* killed before the line above: the job must not start */
  for (int k = 0; k < 2; k++)   /* the captured stdout and stderr (dup2 clears close-on-exec) */
    if (r->out_pipe[k][1] >= 0)
      dup2(r->out_pipe[k][1], k == 0 ? STDOUT_FILENO : STDERR_FILENO);
  for (size_t i = 0; i < N_FORWARDED; i++) {
    struct sigaction old;
    if (sigaction(forwarded_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
      signal(forwarded_signals[i], SIG_DFL);
  }
  sigprocmask(SIG_SETMASK, mask, NULL);
  execv(r->launcher, r->argv);
  int err = errno;
  ssize_t ignored = write(errfd, &err, sizeof err);
  (void)ignored;
  _exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC);
}

/* Are we the foreground job of our controlling terminal (an interactive shell's)? */
static bool terminal_foreground(void)
{
  int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return false;   /* no controlling terminal */
  bool fg = tcgetpgrp(fd) == getpgrp();
  close(fd);
  return fg;
}

/* Starts the launcher; returns -1 when it runs, else the exit status after a message. */
static int spawn(struct run *r)
{
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    tool_warn("pipe: %s", strerror(errno));
    return EXIT_CANNOT_EXEC;
  }
  sigset_t old;
  block_forwarded(SIG_BLOCK, &old);   /* no signal may arrive before child_pid is known */
  install_forwarders();
  r->own_group = !terminal_foreground();   /* see forward_signal */
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    exec_launcher(r, &old, fds[1], parent);
  }
  if (pid > 0 && r->own_group && setpgid(pid, pid) != 0 && errno != EACCES)
    r->own_group = false;   /* EACCES: the child has exec'd, after its own setpgid */
  close(fds[1]);
  for (int k = 0; k < 2; k++)
    if (r->out_pipe[k][1] >= 0) {
      close(r->out_pipe[k][1]);
      r->out_pipe[k][1] = -1;
    }
  r->child = pid > 0 ? pid : 0;
  child_pid = r->child;
  child_group = r->own_group ? r->child : 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  int err = pid < 0 ? errno : 0;
  ssize_t got;
  /* EOF at exec (the pipe is close-on-exec), or the errno of a failed exec. */
  while (pid > 0 && (got = read(fds[0], &err, sizeof err)) < 0 && errno == EINTR) {
  }
  close(fds[0]);
  if (err == 0)
    return -1;
  tool_warn("%s: cannot execute: %s", r->cmd[0], strerror(err));
  if (pid > 0)
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
  return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

/* ---- the launcher's output ---------------------------------------------------------
 *
 * With job messages on, the launcher's stdout and stderr come through pipes:
 * a thread passes every byte on to ours unchanged and hands each line to the
 * job watch (the tail of a failed job's message, Open MPI's death notices).
 * When our own output goes away (EPIPE), the pipe is closed, so the launcher
 * meets the broken pipe it would have met without us.
 */

static void capture_output(struct run *r)
{
  for (int k = 0; k < 2; k++)
    r->out_pipe[k][0] = r->out_pipe[k][1] = -1;
  if (!r->watch)
    return;
  if (pipe2(r->out_pipe[0], O_CLOEXEC) == 0 && pipe2(r->out_pipe[1], O_CLOEXEC) == 0)
    return;
  tool_warn("pipe: %s; the job's output is not captured", strerror(errno));
  for (int k = 0; k < 2; k++)
    for (int e = 0; e < 2; e++) {
      if (r->out_pipe[k][e] >= 0)
        close(r->out_pipe[k][e]);
      r->out_pipe[k][e] = -1;
    }
}

static bool write_all(int fd, const char *p, size_t n)
{
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

typedef struct line_buf {
  char text[OUTPUT_LINE_MAX];
  size_t len;
} line_buf;

static void take_lines(job_watch *w, line_buf *lb, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      size_t len = lb->len > 0 && lb->text[lb->len - 1] == '\r' ? lb->len - 1 : lb->len;
      job_watch_output(w, lb->text, len);
      lb->len = 0;
    } else if (lb->len < sizeof lb->text) {
      lb->text[lb->len++] = p[i];
    }
  }
}

static void *pump_main(void *arg)
{
  struct run *r = arg;
  line_buf lines[2] = {{.len = 0}, {.len = 0}};
  int *in[2] = {&r->out_pipe[0][0], &r->out_pipe[1][0]};
  char buf[65536];
  while (*in[0] >= 0 || *in[1] >= 0) {
    long long until = atomic_load(&r->drain_until);
    if (until && tool_now_ms() > until)
      break;   /* a process of the job outlived the launcher and holds the pipe */
    struct pollfd p[2] = {{*in[0], POLLIN, 0}, {*in[1], POLLIN, 0}};
    if (poll(p, 2, 100) <= 0)
      continue;
    for (int k = 0; k < 2; k++) {
      if (*in[k] < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      ssize_t got = read(*in[k], buf, sizeof buf);
      if (got < 0 && (errno == EINTR || errno == EAGAIN))
        continue;
      if (got > 0 && write_all(k == 0 ? STDOUT_FILENO : STDERR_FILENO, buf, (size_t)got)) {
        take_lines(r->watch, &lines[k], buf, (size_t)got);
        continue;
      }
      if (got > 0)
        take_lines(r->watch, &lines[k], buf, (size_t)got);
      close(*in[k]);   /* EOF, or our output is gone: the launcher sees a broken pipe as before */
      *in[k] = -1;
    }
  }
  for (int k = 0; k < 2; k++)
    if (lines[k].len > 0)
      job_watch_output(r->watch, lines[k].text, lines[k].len);
  return NULL;
}

static void start_pump(struct run *r)
{
  if (r->out_pipe[0][0] < 0)
    return;
  signal(SIGPIPE, SIG_IGN);   /* a closed stdout is an EPIPE to handle, not our death */
  /* The forwarded signals stay with the main thread. */
  sigset_t old;
  block_forwarded(SIG_BLOCK, &old);
  r->pumping = pthread_create(&r->pump, NULL, pump_main, r) == 0;
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (!r->pumping) {   /* cannot read it here: let the launcher write to our output directly */
    tool_warn("cannot start the output thread; the job's output is not captured");
    for (int k = 0; k < 2; k++) {
      close(r->out_pipe[k][0]);
      r->out_pipe[k][0] = -1;
    }
  }
}

/* After the launcher ended: what is left in the pipes, for a bounded time. */
static void stop_pump(struct run *r)
{
  if (!r->pumping)
    return;
  atomic_store(&r->drain_until, tool_now_ms() + DRAIN_MS);
  pthread_join(r->pump, NULL);
  r->pumping = false;
  for (int k = 0; k < 2; k++)
    if (r->out_pipe[k][0] >= 0)
      close(r->out_pipe[k][0]);
}

/* Whether "started" waits on: until START_WAIT_MS after the last rank the
 * launcher heard of (a large job starts its ranks over a while), and while
 * ranks are on their way to MPI_Init (imports, a wrapper's set-up) unless
 * something else is wrong already (then the warning says it at once). */
static bool start_waits(struct run *r, long *deadline, int *heard)
{
  if (job_watch_all_armed(r->watch))
    return false;
  int now_heard = job_watch_heard(r->watch);
  if (now_heard != *heard) {
    *heard = now_heard;
    *deadline = tool_now_ms() + START_WAIT_MS;
  }
  return tool_now_ms() < *deadline || (job_watch_starting(r->watch) > 0 && !job_watch_start_warns(r->watch));
}

/* "started" when every rank armed the notifier, when no rank is still on its
 * way (start_waits), or at the end. */
static void wait_started(struct run *r)
{
  if (!r->watch)
    return;
  long deadline = tool_now_ms() + START_WAIT_MS;
  int heard = 0;
  while (start_waits(r, &deadline, &heard)) {
    pid_t got = waitpid(r->child, &r->status, WNOHANG);
    if (got == r->child) {
      r->reaped = true;
      child_pid = 0;
      child_group = 0;
      return;   /* the job ended first: "started" goes with the end */
    }
    mpn_relay_release_older(r->relay_srv, HOLD_MS);
    struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  send_started(r);
}

/* Until the launcher ends; meanwhile a report the relay held for HOLD_MS
 * without the job ending goes alone (a failure that did not end the job, or
 * a job that takes long to end after it). */
static void wait_launcher(struct run *r)
{
  if (r->reaped)
    return;
  for (;;) {
    pid_t got = waitpid(r->child, &r->status, WNOHANG);
    if (got == r->child)
      break;
    if (got < 0 && errno != EINTR) {
      tool_warn("waitpid: %s", strerror(errno));
      r->status = EXIT_CANNOT_EXEC << 8;
      break;
    }
    mpn_relay_release_older(r->relay_srv, HOLD_MS);
    struct timespec ts = {0, WAIT_POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
  }
  child_pid = 0;
  child_group = 0;
}

/* ---- what outlives a stopped launcher ------------------------------------------------
 *
 * A launcher asked to stop ends the ranks it started, and then itself. When it
 * does not (Open MPI's mpirun given a second signal, a launcher script killed
 * before its mpirun, ranks that ignore SIGTERM), the job's processes on this
 * node would outlive mpinotify-run. Every one of them holds the job's relay key
 * in its environment (mpinotify-run sets it for the launcher, which passes it
 * on to every rank and their children), so they can be found: after a grace
 * period for the launcher's own teardown they get SIGTERM, then SIGKILL, each
 * wait with a deadline. Processes on other nodes are their daemons' business
 * (Open MPI's orted ends its ranks when it loses mpirun). Only after a stop
 * request: a job that ends by itself keeps what it meant to leave running.
 */

/* Whether process `pid`'s environment holds exactly `entry` ("NAME=value"). */
static bool has_env_entry(pid_t pid, const char *entry)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/environ", (long)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;   /* gone, or another user's */
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      char *grown = cap < (4u << 20) ? realloc(buf, cap ? cap * 2 : 65536) : NULL;
      if (!grown)
        break;
      buf = grown;
      cap = cap ? cap * 2 : 65536;
    }
    ssize_t got = read(fd, buf + len, cap - len);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      break;
    len += (size_t)got;
  }
  close(fd);
  size_t n = strlen(entry);
  bool found = false;
  for (size_t i = 0; i < len && !found;) {   /* NUL-separated; a zombie's is empty */
    size_t e = strnlen(buf + i, len - i);
    found = e == n && memcmp(buf + i, entry, n) == 0;
    i += e + 1;
  }
  free(buf);
  return found;
}

/* The live processes (not this one) whose environment holds `entry`; up to `max`. */
static int job_processes(const char *entry, pid_t *out, int max)
{
  DIR *d = opendir("/proc");
  if (!d)
    return 0;
  int n = 0;
  long self = (long)getpid();
  struct dirent *e;
  while (n < max && (e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end == '\0' && pid > 0 && pid != self && has_env_entry((pid_t)pid, entry))
      out[n++] = (pid_t)pid;
  }
  closedir(d);
  return n;
}

/* Signals `pid` if it still is a process of the job: through a pidfd where the
 * kernel has them, so a pid reused in between is never hit. */
static void signal_job_process(pid_t pid, const char *entry, int sig)
{
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
  int fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd >= 0) {
    if (has_env_entry(pid, entry))
      syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
    close(fd);
    return;
  }
  if (errno != ENOSYS)
    return;   /* gone */
#endif
  if (has_env_entry(pid, entry))
    kill(pid, sig);
}

/* Waits until no process of the job is left or `deadline` passes; returns how many are left. */
static int until_gone(const char *entry, pid_t *pids, long deadline)
{
  for (;;) {
    int n = job_processes(entry, pids, MAX_LEFTOVERS);
    if (n == 0 || tool_now_ms() >= deadline)
      return n;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void pid_list(const pid_t *pids, int n, char *out, size_t cap)
{
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n && i < 8 && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%ld", i ? " " : "", (long)pids[i]);
  if (n > 8 && len < cap)
    snprintf(out + len, cap - len, " ...");
}

static void end_leftovers(const struct run *r)
{
  if (!stop_requested || !r->job_key)
    return;
  char *entry = tool_xasprintf("MPINOTIFY_RELAY_KEY=%s", r->job_key);
  pid_t pids[MAX_LEFTOVERS];
  char list[160];
  int n = until_gone(entry, pids, tool_now_ms() + LEFTOVER_GRACE_MS);
  if (n > 0) {
    pid_list(pids, n, list, sizeof list);
    tool_warn("%d process%s of the job still ran %d s after the launcher ended (pid %s): ending %s", n,
              n == 1 ? "" : "es", LEFTOVER_GRACE_MS / 1000, list, n == 1 ? "it" : "them");
    static const int steps[][2] = {{SIGTERM, LEFTOVER_TERM_MS}, {SIGKILL, LEFTOVER_KILL_MS}};
    for (size_t s = 0; s < 2 && n > 0; s++) {
      for (int i = 0; i < n; i++)
        signal_job_process(pids[i], entry, steps[s][0]);
      n = until_gone(entry, pids, tool_now_ms() + steps[s][1]);
    }
    if (n > 0) {
      pid_list(pids, n, list, sizeof list);
      tool_warn("%d process%s of the job could not be ended (pid %s)", n, n == 1 ? "" : "es", list);
    }
  }
  free(entry);
}

/*
 * Ends this process the way the launcher ended: the same exit code, or death
 * by the same signal (default action restored, signal unblocked). No core
 * file: one of the wrapper would only be mistaken for the job's.
 */
static _Noreturn void exit_like(int status)
{
  fflush(NULL);
  if (!WIFSIGNALED(status))
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_CANNOT_EXEC);
  int sig = WTERMSIG(status);
  struct rlimit no_core = {0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
  signal(sig, SIG_DFL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
  _exit(128 + sig);   /* a signal whose default action does not end a process */
}

/* --disable: exactly the launcher, in this process, environment untouched. */
static int exec_untouched(const struct run *r)
{
  execv(r->launcher, r->cmd);
  int err = errno;
  tool_warn("%s: cannot execute: %s", r->cmd[0], strerror(err));
  return err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}

int main(int argc, char **argv)
{
  tool_name = "mpinotify-run";
  struct run r;
  memset(&r, 0, sizeof r);
  int rc = parse_args(&r, argc, argv);
  if (rc >= 0)
    return rc;
  if ((rc = resolve_launcher(&r)) >= 0)
    return rc;
  if (r.disable)
    return exec_untouched(&r);
  flush_leftovers(&r);
  setup_job(&r);
  setup_events(&r);
  setup_urls(&r);
  setup_relay(&r);
  setup_run_dir(&r);
  setup_preload(&r);
  setup_watch(&r);
  capture_output(&r);
  if ((rc = spawn(&r)) >= 0) {
    finish_delivery(&r);
    remove_run_dir(&r);
    return rc;
  }
  start_pump(&r);
  wait_started(&r);
  wait_launcher(&r);
  r.exit_by = tool_now_ms() + EXIT_BOUND_MS;   /* from here on, every wait ends by then */
  finishing = true;
  mpn_sender_set_deadline(r.sender, EXIT_BOUND_MS);
  end_leftovers(&r);
  stop_pump(&r);
  send_job_end(&r);
  finish_delivery(&r);   /* stops the relay: nothing calls the watch after this */
  remove_run_dir(&r);
  job_watch_free(r.watch);
  free(r.job_key);
  exit_like(r.status);
}
