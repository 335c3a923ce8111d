/*
 * mpinotify-send - send a message to the configured channels outside a
 * crash, check that they work, and deliver or list what the spool kept:
 *
 *     mpinotify-send --test
 *     mpinotify-send --title "Nightly run" --message "finished in 3h12m"
 *     mpinotify-send --flush
 *     mpinotify-send --list
 *
 * Every delivery is reported on standard output, one line per channel (or
 * per spooled message), naming the channel by its masked URL only: nothing
 * this tool prints holds a secret. Exit status: 0 when everything was
 * delivered, 1 when something was not, 2 for a usage or configuration error,
 * 70 out of memory.
 *
 * Uses only the public API (mpinotify.h).
 */
#include <mpinotify.h>

#include "common/tool.h"

MPN_API_ONLY_PROGRAM;   /* sending a message is not an MPI job to watch */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
  EXIT_FAILED = 1,
  EXIT_USAGE = 2,
  EXIT_OOM = 70,
  ERR_MAX = 4096,
  STDIN_MAX = 1 << 20,   /* --message -: a chat message, not a log file */
  FIELD_SHOWN = 200,     /* --list: longer fields (a title) are cut at a character boundary */
};

enum action { NONE, TEST, MESSAGE, FLUSH, LIST, STACKS };

/* One run of the tool, filled from the command line. */
struct send {
  enum action action;
  int nactions;           /* more than one is a usage error */
  char **urls;            /* the --url values (secrets: never printed) */
  int nurls;
  const char *title;
  const char *text;       /* --message; "-": standard input */
  const char *severity;
  long timeout_ms;        /* 0: not given */
  bool quiet;
  long stacks_pid;        /* --stacks PID */
  bool stacks_send;       /* --send: the rank also sends the view to its channels */
  bool json;              /* --json: the view as JSON */
};

/* What the result callback counted. */
struct tally {
  bool quiet;
  bool show_id;           /* --flush: each line names the message */
  int delivered;
  int failed;
};

/* ---- usage ---------------------------------------------------------------- */

static void usage(FILE *out)
{
  fputs(
    "Usage: mpinotify-send [OPTIONS] --test\n"
    "       mpinotify-send [OPTIONS] --title TITLE --message TEXT [--severity LEVEL]\n"
    "       mpinotify-send [OPTIONS] --flush\n"
    "       mpinotify-send [OPTIONS] --list\n"
    "       mpinotify-send --stacks PID [--send] [--json]\n"
    "\n"
    "Sends a message to the channels libmpinotify is configured with (MPINOTIFY_URLS,\n"
    "MPINOTIFY_CONFIG, --url), through the same engine as crash reports: every\n"
    "channel at once, retries, and a copy in the spool for what is not delivered.\n"
    "Prints one line per channel: 'ok' or 'FAILED', the channel's URL with its\n"
    "secrets masked, and the outcome. Without any channel configured, messages\n"
    "go to the console channel (standard error).\n"
    "\n"
    "Actions (exactly one):\n"
    "  --test           send a test message naming this host and user\n"
    "  --title TITLE --message TEXT\n"
    "                   send a message; '--message -' reads TEXT from standard\n"
    "                   input (at most 1 MiB)\n"
    "  --flush          deliver every message kept in the spool to the channel it\n"
    "                   was meant for, and remove each one delivered\n"
    "  --list           list the messages kept in the spool, sending nothing\n"
    "  --stacks PID     where every rank of a running job is, asked of its rank\n"
    "                   with process id PID on this node, without stopping it:\n"
    "                   each group of ranks with the MPI call it waits in (or 'not\n"
    "                   in MPI'), where, and its stack, as a hang message shows them;\n"
    "                   --send also sends it to the job's channels, --json prints\n"
    "                   the JSON\n"
    "\n"
    "Options:\n"
    "  --url URL        also send to this channel; repeatable; appended to\n"
    "                   MPINOTIFY_URLS (forms: see mpinotify-run --help)\n"
    "  --severity LEVEL info, warning, error or critical (with --message)\n", out);
  char *range = tool_setting_range("MPINOTIFY_TIMEOUT_MS");
  char *text = tool_xasprintf("time budget for the whole delivery, %s", range);
  tool_help_item(out, 19, "--timeout-ms MS", text);
  free(text);
  free(range);
  tool_help_item(out, 19, "--config FILE", "read this configuration file (sets MPINOTIFY_CONFIG)");
  const mpn_setting *spool = tool_setting("MPINOTIFY_SPOOL");
  text = tool_xasprintf("the spool directory: %s (sets MPINOTIFY_SPOOL)", spool ? spool->help : "see README");
  tool_help_item(out, 19, "--spool DIR", text);
  free(text);
  fputs(
    "  --quiet          print only failures\n"
    "  -h, --help       show this help and exit\n"
    "  --version        show the versions of mpinotify-send and the library\n"
    "\n"
    "Exit status: 0: every message delivered (--flush: the spool is empty;\n"
    "--list: the spool was read); 1: a delivery failed or the spool could not be\n"
    "read; 2: usage or configuration error; 70: out of memory.\n"
    "\n"
    "Examples:\n"
    "  mpinotify-send --url webhook+https://alerts.example.com/hooks/mpi --test\n"
    "  make 2>&1 | tail -20 | mpinotify-send --title 'build failed' --message - \\\n"
    "      --severity error\n", out);
}

/* After a usage error: a pointer to --help instead of the whole text. */
static void try_help(FILE *out)
{
  fprintf(out, "Try 'mpinotify-send --help' for more information.\n");
}

static int usage_error(const char *what, const char *arg)
{
  return tool_usage_error(try_help, what, arg);
}

/* ---- command line ----------------------------------------------------------- */

static const struct option long_options[] = {
  {"test", no_argument, NULL, 'T'},
  {"title", required_argument, NULL, 't'},
  {"message", required_argument, NULL, 'm'},
  {"severity", required_argument, NULL, 's'},
  {"flush", no_argument, NULL, 'F'},
  {"list", no_argument, NULL, 'L'},
  {"url", required_argument, NULL, 'u'},
  {"timeout-ms", required_argument, NULL, 'o'},
  {"config", required_argument, NULL, 'c'},
  {"spool", required_argument, NULL, 'S'},
  {"quiet", no_argument, NULL, 'q'},
  {"stacks", required_argument, NULL, 'K'},
  {"send", no_argument, NULL, 'E'},
  {"json", no_argument, NULL, 'J'},
  {"help", no_argument, NULL, 'h'},
  {"version", no_argument, NULL, 'V'},
  {NULL, 0, NULL, 0},
};

static void choose(struct send *s, enum action a)
{
  if (s->action != a)
    s->nactions++;
  s->action = a;
}

/* The library's own setter decides the valid range, so the two never disagree. */
static int timeout_option(struct send *s, const char *value)
{
  long ms;
  mpn_options *probe = mpn_options_new();
  if (probe == NULL) {
    tool_warn("out of memory");
    return EXIT_OOM;
  }
  bool ok = tool_parse_long(value, &ms) && mpn_options_set_timeout_ms(probe, ms) == MPN_OK;
  mpn_options_free(probe);
  if (!ok) {
    char *range = tool_setting_range("MPINOTIFY_TIMEOUT_MS");
    char *what = tool_xasprintf("invalid value for --timeout-ms, expected %s: ", range);
    int rc = usage_error(what, value);
    free(what);
    free(range);
    return rc;
  }
  s->timeout_ms = ms;
  return -1;
}

/* Handles one option; returns -1 to go on, else the exit status. */
static int take_option(struct send *s, int c, char **argv)
{
  switch (c) {
  case 'T': choose(s, TEST); break;
  case 't': choose(s, MESSAGE); s->title = optarg; break;
  case 'm': choose(s, MESSAGE); s->text = optarg; break;
  case 's': s->severity = optarg; break;
  case 'F': choose(s, FLUSH); break;
  case 'L': choose(s, LIST); break;
  case 'u': s->urls[s->nurls++] = optarg; break;
  case 'o': return timeout_option(s, optarg);
  case 'c': setenv("MPINOTIFY_CONFIG", optarg, 1); break;
  case 'S': setenv("MPINOTIFY_SPOOL", optarg, 1); break;
  case 'q': s->quiet = true; break;
  case 'K':
    choose(s, STACKS);
    if (!tool_parse_long(optarg, &s->stacks_pid) || s->stacks_pid <= 0)
      return usage_error("invalid process id for --stacks: ", optarg);
    break;
  case 'E': s->stacks_send = true; break;
  case 'J': s->json = true; break;
  case 'h': usage(stdout); return 0;
  case 'V': tool_print_version(); return 0;
  default: return tool_option_error(try_help, c, argv);
  }
  return -1;
}

/* The combinations getopt cannot check; returns -1 to go on, else 2. */
static int check_action(const struct send *s)
{
  if (s->nactions != 1)
    return usage_error("give exactly one of --test, --title/--message, --flush, --list, --stacks", NULL);
  if ((s->stacks_send || s->json) && s->action != STACKS)
    return usage_error("--send and --json go with --stacks", NULL);
  if (s->action == STACKS && s->nurls > 0)
    return usage_error("--stacks --send posts to the job's own channels; --url has no effect there", NULL);
  if (s->action == MESSAGE && (s->title == NULL || s->text == NULL))
    return usage_error(s->title ? "--title needs --message" : "--message needs --title", NULL);
  if (s->severity != NULL && s->action != MESSAGE)
    return usage_error("--severity goes with --message", NULL);
  if (s->action == LIST && s->nurls > 0)
    return usage_error("--list reads the spool only; --url has no effect there", NULL);
  return -1;
}

/* Fills s from argv; returns -1 to go on, else the exit status. */
static int parse_args(struct send *s, int argc, char **argv)
{
  s->urls = tool_xmalloc(sizeof *s->urls * (size_t)argc);
  opterr = 0;   /* our own messages */
  int c;
  while ((c = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
    int rc = take_option(s, c, argv);
    if (rc >= 0)
      return rc;
  }
  if (optind < argc)
    return usage_error("unexpected argument ", argv[optind]);
  return check_action(s);
}

/* ---- printing outcomes ----------------------------------------------------------- */

/* Appends to a fixed buffer, truncating quietly. */
static void append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
  size_t len = strlen(buf);
  if (len + 1 >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
}

/* "(HTTP 200, 1 attempt)", "(via relay, HTTP 200, 2 attempts)", "(local, 1 attempt)". */
static void describe_ok(const mpn_result *r, char *buf, size_t cap)
{
  append(buf, cap, "(");
  if (r->route && strcmp(r->route, "relay") == 0)
    append(buf, cap, "via relay, ");
  else if (r->route && strcmp(r->route, "local") == 0)
    append(buf, cap, "local, ");
  if (r->http_status > 0)   /* email channels answer in SMTP codes */
    append(buf, cap, "%s %ld, ", strncmp(r->channel, "smtp", 4) == 0 ? "SMTP" : "HTTP", r->http_status);
  append(buf, cap, "%d attempt%s)", r->attempts, r->attempts == 1 ? "" : "s");
}

/* "connection refused (no connection could be made), 3 attempts, kept in /tmp/...". */
static void describe_failure(const mpn_result *r, char *buf, size_t cap)
{
  const char *why = mpn_strerror(r->code);
  if (r->detail && *r->detail && strcmp(r->detail, why) != 0)
    append(buf, cap, "%s (%s)", r->detail, why);
  else
    append(buf, cap, "%s", why);
  append(buf, cap, ", %d attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
  if (r->route && strcmp(r->route, "relay") == 0)
    append(buf, cap, ", via relay");
  if (r->spool_file)
    append(buf, cap, ", kept in %s", r->spool_file);
}

/* The mpn_result_fn: one line per channel (or per spooled message) on stdout. */
static void print_result(const mpn_result *r, void *arg)
{
  struct tally *t = arg;
  bool ok = r->code == MPN_OK;
  if (ok)
    t->delivered++;
  else
    t->failed++;
  if (ok && t->quiet)
    return;
  char how[1024] = "";
  if (ok)
    describe_ok(r, how, sizeof how);
  else
    describe_failure(r, how, sizeof how);
  printf("%-8s%s  ", ok ? "ok" : "FAILED", r->channel ? r->channel : "?");
  if (t->show_id && r->message_id)
    printf("%s  ", r->message_id);
  printf("%s\n", how);
  fflush(stdout);
}

/* ---- the spool ---------------------------------------------------------------- */

/* The spool directory the library uses (the environment, a config file's "spool", or the default). */
static char *spool_dir(void)
{
  char *dir = mpn_spool_dir();
  if (dir == NULL) {
    tool_warn("out of memory");
    exit(EXIT_OOM);
  }
  char *copy = tool_xstrdup(dir);
  mpn_free(dir);
  return copy;
}

/* ---- --list ------------------------------------------------------------------ */

/* A string fit for one line of a terminal: control characters become spaces, cut after `max` bytes. */
static char *one_line(const char *s, size_t max)
{
  size_t n = strlen(s);
  bool cut = n > max;
  if (cut)
    for (n = max; n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80; n--) {
    }
  char *out = tool_xasprintf("%.*s%s", (int)n, s, cut ? "..." : "");
  for (char *p = out; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = ' ';
  return out;
}

/* What --list counted. */
struct listing {
  int listed, bad;
};

/* An mpn_spool_fn: one line per spooled message: id, created, destination,
 * event, title ("-" for what it lacks), never the channel's secrets. */
static void list_one(const mpn_spool_entry *e, void *arg)
{
  struct listing *l = arg;
  if (e->code != MPN_OK) {
    tool_warn("%s: %s", e->file, e->detail);
    l->bad++;
    return;
  }
  const char *fields[] = {e->id, e->created, e->destination, e->event, e->title};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char *shown = one_line(fields[i] ? fields[i] : "-", FIELD_SHOWN);   /* the file may have been edited: no escapes */
    printf("%s%s", i ? "  " : "", shown);
    free(shown);
  }
  putchar('\n');
  l->listed++;
}

static int list_spool(const struct send *s)
{
  char *dir = spool_dir();
  struct listing l = {0, 0};
  mpn_code code = mpn_spool_list(dir, list_one, &l);
  if (code != MPN_OK) {
    if (code == MPN_E_SPOOL)
      tool_warn("cannot read the spool %s: %s", dir, strerror(errno));
    else
      tool_warn("cannot read the spool %s: %s", dir, mpn_strerror(code));
    free(dir);
    return code == MPN_E_NO_MEMORY ? EXIT_OOM : EXIT_FAILED;
  }
  if (!s->quiet && l.listed + l.bad == 0)
    printf("spool is empty (%s)\n", dir);
  else if (!s->quiet)
    printf("%d message%s in the spool (%s)\n", l.listed, l.listed == 1 ? "" : "s", dir);
  free(dir);
  return l.bad ? EXIT_FAILED : 0;
}

/* ---- the messages ------------------------------------------------------------- */

/* Standard input, whole, at most STDIN_MAX bytes; NULL after a message. Trailing newlines dropped. */
static char *read_stdin(void)
{
  char *buf = tool_xmalloc(STDIN_MAX + 1);
  size_t len = fread(buf, 1, STDIN_MAX + 1, stdin);
  if (ferror(stdin) || len > STDIN_MAX) {
    tool_warn(len > STDIN_MAX ? "the message on standard input is longer than 1 MiB"
                              : "cannot read the message from standard input");
    free(buf);
    return NULL;
  }
  while (len > 0 && buf[len - 1] == '\n')
    len--;
  buf[len] = '\0';
  return buf;
}

static char *who_and_where(void)
{
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0)
    strcpy(host, "unknown host");
  const struct passwd *pw = getpwuid(getuid());
  const char *user = pw ? pw->pw_name : getenv("USER");
  char when[32] = "";
  mpn_format_time(tool_wall_ms(), when, sizeof when);
  return tool_xasprintf("This is a test message sent by mpinotify-send from %s by %s at %s.\n"
                        "If you can read it, this channel works.",
                        host, user ? user : "an unknown user", when);
}

static mpn_message *new_message(const char *event)
{
  mpn_message *m = mpn_message_new(event);
  if (m == NULL) {
    tool_warn("out of memory");
    exit(EXIT_OOM);
  }
  return m;
}

/* The message an action sends; NULL with *rc set on error. */
static mpn_message *build_message(const struct send *s, int *rc)
{
  if (s->action == TEST) {
    mpn_message *m = new_message("test");
    char *text = who_and_where();
    mpn_message_set_title(m, "mpinotify test message");
    mpn_message_set_text(m, text);
    free(text);
    return m;
  }
  char *stdin_text = strcmp(s->text, "-") == 0 ? read_stdin() : NULL;
  if (strcmp(s->text, "-") == 0 && stdin_text == NULL) {
    *rc = EXIT_USAGE;
    return NULL;
  }
  mpn_message *m = new_message("message");
  mpn_message_set_title(m, s->title);
  mpn_message_set_text(m, stdin_text ? stdin_text : s->text);
  free(stdin_text);
  if (s->severity && mpn_message_set_severity(m, s->severity) != MPN_OK) {
    mpn_message_free(m);
    *rc = usage_error("invalid --severity (info, warning, error or critical): ", s->severity);
    return NULL;
  }
  return m;
}

/* ---- the sender ------------------------------------------------------------------ */

static mpn_options *build_options(const struct send *s)
{
  mpn_options *opts = mpn_options_new();
  bool ok = opts != NULL;
  if (ok && s->nurls > 0) {
    char *urls = tool_urls_with(s->urls, (size_t)s->nurls);
    ok = mpn_options_set_urls(opts, urls) == MPN_OK;
    free(urls);
  }
  if (ok && s->timeout_ms > 0)
    ok = mpn_options_set_timeout_ms(opts, s->timeout_ms) == MPN_OK;   /* checked when parsed */
  if (!ok) {
    mpn_options_free(opts);
    tool_warn("out of memory");
    exit(EXIT_OOM);
  }
  return opts;
}

/*
 * A sender for the configured channels. A configuration problem stops a
 * send (a mistyped URL must not be skipped in silence); a flush goes on,
 * because it delivers to the destinations the spool recorded.
 */
static mpn_sender *open_sender(const struct send *s, int *rc)
{
  char err[ERR_MAX] = "";
  mpn_sender *sender = NULL;
  mpn_code code = mpn_sender_new(build_options(s), &sender, err, sizeof err);
  tool_warn_lines(err);   /* the library masked every secret in them */
  if (code == MPN_E_NO_MEMORY) {
    tool_warn("out of memory");
    *rc = EXIT_OOM;
  } else if (sender == NULL) {
    tool_warn("cannot set up delivery: %s", mpn_strerror(code));
    *rc = EXIT_USAGE;
  } else if (code != MPN_OK && s->action != FLUSH) {
    tool_warn("nothing sent: the configuration has errors (%s)", mpn_strerror(code));
    *rc = EXIT_USAGE;
  } else {
    return sender;
  }
  mpn_sender_free(sender);
  return NULL;
}

/* Without any channel configured the library writes to the console: say where the message went. */
static void note_console(const struct send *s, const mpn_sender *sender)
{
  const char *env = getenv("MPINOTIFY_URLS");
  if (s->quiet || s->nurls > 0 || (env && *env))
    return;
  int n = mpn_sender_channel_count(sender);
  for (int i = 0; i < n; i++)
    if (strncmp(mpn_sender_channel(sender, i), "console:", 8) != 0)
      return;
  tool_warn("no channel configured (MPINOTIFY_URLS, MPINOTIFY_CONFIG, --url): "
            "the message goes to the console channel, on standard error");
}

static int send_message(const struct send *s, mpn_sender *sender, const mpn_message *m)
{
  struct tally t = {.quiet = s->quiet};
  note_console(s, sender);
  mpn_code code = mpn_sender_send(sender, m, print_result, &t);
  if (code == MPN_E_NO_MEMORY) {
    tool_warn("out of memory");
    return EXIT_OOM;
  }
  if (code != MPN_OK && t.failed == 0)   /* a failure no channel reported */
    tool_warn("sending failed: %s", mpn_strerror(code));
  return code == MPN_OK && t.failed == 0 ? 0 : EXIT_FAILED;
}

/* An mpn_spool_fn: counts what a flush left in the spool. */
static void count_left(const mpn_spool_entry *e, void *arg)
{
  struct listing *l = arg;
  if (e->code == MPN_OK)
    l->listed++;
  else
    l->bad++;
}

static int flush_spool(const struct send *s, mpn_sender *sender)
{
  struct tally t = {.quiet = s->quiet, .show_id = true};
  mpn_code code = mpn_sender_flush(sender, print_result, &t);
  char *dir = tool_xstrdup(mpn_sender_spool_dir(sender));
  struct listing still = {0, 0};
  int left = mpn_spool_list(dir, count_left, &still) == MPN_OK ? still.listed + still.bad : -1;
  if (code != MPN_OK && t.failed == 0)
    tool_warn("flushing %s failed: %s", dir, mpn_strerror(code));
  if (t.delivered + t.failed == 0 && left == 0 && !s->quiet)
    printf("spool is empty (%s)\n", dir);
  else if (!s->quiet || code != MPN_OK)
    printf("%d delivered, %d still in the spool\n", t.delivered, left < 0 ? t.failed : left);
  free(dir);
  if (code == MPN_E_NO_MEMORY)
    return EXIT_OOM;
  return code == MPN_OK ? 0 : EXIT_FAILED;
}

/* One action, as the command line asked; returns the exit status. */
/* ---- --stacks ---------------------------------------------------------------- */

/* The view as a person reads it: the library's own title and text (what every channel shows). */
static void print_view(json_t *v)
{
  const char *title = json_string_value(json_object_get(v, "title")), *text = json_string_value(json_object_get(v, "text"));
  printf("%s\n%s%s%s", title ? title : "?", text ? "\n" : "", text ? text : "", text ? "\n" : "");
}

static int ask_stacks(const struct send *s)
{
  char *doc = NULL;
  mpn_code rc = mpn_job_stacks(s->stacks_pid, s->stacks_send, s->timeout_ms ? s->timeout_ms : 30000, &doc);
  if (rc == MPN_E_INVALID_ARGUMENT)
    tool_warn("no process %ld of yours", s->stacks_pid);
  else if (rc == MPN_E_NOT_INITIALIZED)
    tool_warn("process %ld has no libmpinotify loaded: give the process id of one of the job's ranks (not of "
              "mpirun, srun or mpinotify-run)", s->stacks_pid);
  else if (rc != MPN_OK)
    tool_warn("process %ld did not answer (%s): is its job past MPI_Init, at MPI_THREAD_MULTIPLE?", s->stacks_pid,
              mpn_strerror(rc));
  if (rc != MPN_OK)
    return EXIT_FAILURE;
  json_t *v = s->json ? NULL : json_loads(doc, 0, NULL);
  if (v)
    print_view(v);
  else
    printf("%s\n", doc);
  json_decref(v);
  mpn_free(doc);
  return EXIT_SUCCESS;
}

static int run(const struct send *s)
{
  if (s->action == LIST)
    return list_spool(s);
  if (s->action == STACKS)
    return ask_stacks(s);
  int rc = -1;
  mpn_message *m = NULL;
  if (s->action != FLUSH && (m = build_message(s, &rc)) == NULL)
    return rc;
  mpn_sender *sender = open_sender(s, &rc);
  if (sender != NULL) {
    rc = s->action == FLUSH ? flush_spool(s, sender) : send_message(s, sender, m);
    mpn_sender_free(sender);
  }
  mpn_message_free(m);
  return rc;
}

int main(int argc, char **argv)
{
  tool_name = "mpinotify-send";
  struct send s;
  memset(&s, 0, sizeof s);
  int rc = parse_args(&s, argc, argv);
  if (rc < 0)
    rc = run(&s);
  free(s.urls);
  return rc;
}
