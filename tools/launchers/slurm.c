/*
 * slurm.c - Slurm's srun (and what slurmstepd says on its standard error):
 * how to tell it, how it carries variables to the tasks (its own environment,
 * unless --export / SLURM_EXPORT_ENV keeps it out), its notices of a task's
 * death ("srun: error: n1: task 1: Killed"), of non-zero exits, of node
 * failures, of the end Slurm itself gave the job ("*** JOB 12 ON n1 CANCELLED
 * AT ... DUE TO TIME LIMIT ***"), how to ask Slurm how a job ended
 * (scontrol, sacct; bounded in time), and its options.
 *
 * Notices arrive in order through one reader (job_watch), so the state of the
 * output read so far is kept here: once the step is torn down (slurmstepd's
 * CANCELLED notice, srun's "Job step aborted"), the tasks srun then reports
 * killed or terminated are the teardown's victims, not deaths of their own.
 */
#include "launcher.h"

#include "common/tool.h"

#include <ctype.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
  ASK_BOUND_MS = 2000,   /* scontrol and sacct together: the job's end must never wait on Slurm */
  ASK_OUTPUT_MAX = 8192,
};

static bool recognise(const char *path, char *const *cmd, int ncmd)
{
  (void)path;
  (void)ncmd;
  return !strcmp(tool_basename(cmd[0]), "srun");
}

/* ---- pass_env: srun's --export ------------------------------------------------ */

/* Whether an --export value (or SLURM_EXPORT_ENV) passes srun's whole environment on: "ALL" among its items. */
static bool exports_all(const char *value)
{
  char *copy = tool_xstrdup(value), *save = NULL;
  bool all = false;
  for (char *t = strtok_r(copy, ",", &save); t && !all; t = strtok_r(NULL, ",", &save))
    all = !strcasecmp(t, "ALL");
  free(copy);
  return all;
}

static const char *const one_value[];

/* The index of srun's --export option before the program (its value in *value), or -1. */
static int export_option(char *const *cmd, int ncmd, const char **value, bool *separate)
{
  for (int i = 1; i < ncmd && cmd[i][0] == '-'; i += 1 + launcher_name_in(cmd[i], one_value)) {
    if (!strncmp(cmd[i], "--export=", 9)) {
      *value = cmd[i] + 9;
      *separate = false;
      return i;
    }
    if (!strcmp(cmd[i], "--export") && i + 1 < ncmd) {
      *value = cmd[i + 1];
      *separate = true;
      return i;
    }
    if (!strcmp(cmd[i], "--"))
      break;
  }
  return -1;
}

/*
 * srun passes its own environment to the tasks unless --export (or
 * SLURM_EXPORT_ENV, which sbatch --export=NONE sets) limits it to the
 * variables it lists (NONE: Slurm's own only). The variables go into srun's
 * environment ("NAME=value" is set here), and a limiting --export gets their
 * names: appended to a list ("--export=HOME,LD_PRELOAD,MPINOTIFY_URLS"), or
 * instead of NONE, which takes no names (srun(1): a list exports Slurm's own
 * variables and those named, what NONE does plus ours). Names only, so no
 * value (a secret) is on a command line that ps shows; srun takes a listed
 * name's value from its environment.
 */
static char **pass_env(char *const *cmd, int ncmd, char *const *vars, int nvars)
{
  char *names = tool_xstrdup("");
  for (int k = 0; k < nvars; k++) {
    const char *eq = strchr(vars[k], '=');
    char *name = eq ? tool_xasprintf("%.*s", (int)(eq - vars[k]), vars[k]) : tool_xstrdup(vars[k]);
    if (eq)
      setenv(name, eq + 1, 1);
    char *next = tool_xasprintf("%s,%s", names, name);
    free(names);
    free(name);
    names = next;
  }
  const char *value = NULL;
  bool separate = false;
  int at = export_option(cmd, ncmd, &value, &separate);
  if (at < 0)
    value = getenv("SLURM_EXPORT_ENV");
  bool limited = value && *value && !exports_all(value);
  bool none = limited && !strcasecmp(value, "NONE");
  char *list = limited ? tool_xasprintf("--export=%s%s", none ? "" : value, none && *names ? names + 1 : names) : NULL;
  char **argv = tool_xmalloc(sizeof *argv * (size_t)(ncmd + 2));
  int n = 0;
  for (int i = 0; i < ncmd; i++) {
    if (limited && i == at) {   /* --export=V or --export V: one argument, the names appended */
      argv[n++] = list;
      i += separate;
      continue;
    }
    argv[n++] = cmd[i];
    if (limited && at < 0 && i == 0)
      argv[n++] = list;
  }
  argv[n] = NULL;
  free(names);
  return argv;
}

/* ---- srun's notices ------------------------------------------------------------- */

static bool torn_down;   /* the step is being torn down: later deaths are its victims (one reader) */
static bool oom_seen;    /* slurmstepd counted an OOM kill: the next task reported killed was it */

/* The lines that say the step is being torn down. */
static bool teardown_line(const char *line)
{
  return (strstr(line, "*** ") && strstr(line, " CANCELLED AT ")) || strstr(line, "srun: Job step aborted") ||
         strstr(line, "srun: forcing job termination");
}

/* "0-3,5" up to ':' into ranks (at most max); how many. */
static int task_list(const char *p, int *ranks, int max)
{
  int n = 0;
  while (isdigit((unsigned char)*p)) {
    char *end;
    long lo = strtol(p, &end, 10), hi = lo;
    if (*end == '-' && isdigit((unsigned char)end[1]))
      hi = strtol(end + 1, &end, 10);
    for (long r = lo; r <= hi && n < max && r < 10000000; r++)
      ranks[n++] = (int)r;
    p = *end == ',' ? end + 1 : end;
  }
  return n;
}

/* "srun: error: HOST: task 1: WHAT" or "... tasks 0-3,5: WHAT": the host, the tasks (at least
 * one, the first in ranks[0]; *n of them), what. */
static bool task_notice(const char *line, char *host, int *ranks, int *n, const char **what)
{
  const char *p = strstr(line, "srun: error: ");
  if (!p)
    return false;
  p += 13;
  const char *colon = strstr(p, ": task");
  if (!colon || colon == p || colon - p >= LAUNCHER_HOST_MAX)
    return false;
  snprintf(host, LAUNCHER_HOST_MAX, "%.*s", (int)(colon - p), p);
  p = colon + 6;
  if (*p == 's')
    p++;
  if (*p != ' ' || !isdigit((unsigned char)p[1]))
    return false;
  *n = task_list(p + 1, ranks, 65);
  const char *end = strstr(p, ": ");
  if (!end || *n < 1)
    return false;
  *what = end + 2;
  return true;
}

/* The signal srun names by its description ("Segmentation fault (core dumped)", "Killed"), or 0. */
static int signal_named(const char *what, bool *oom)
{
  *oom = !strncmp(what, "Out Of Memory", 13);
  if (*oom)
    return SIGKILL;
  size_t n = strcspn(what, "(");
  while (n > 0 && what[n - 1] == ' ')
    n--;
  for (int sig = 1; sig < 32; sig++) {
    const char *s = strsignal(sig);
    if (s && strlen(s) == n && !strncmp(what, s, n))
      return sig;
  }
  return 0;
}

static bool teardown(const char *line)
{
  return teardown_line(line);
}

static bool death_notice(const char *line, launcher_death *out)
{
  if (strstr(line, "oom_kill event") || strstr(line, "oom-kill event"))
    oom_seen = true;
  if (teardown_line(line))
    torn_down = true;
  char host[LAUNCHER_HOST_MAX];
  int ranks[65], n;
  const char *what;
  bool oom;
  if (torn_down || !task_notice(line, host, ranks, &n, &what) || !strncmp(what, "Exited with exit code", 21))
    return false;
  int sig = signal_named(what, &oom);
  if (sig <= 0)
    return false;
  *out = (launcher_death){.rank = ranks[0], .signo = sig, .oom = oom || (sig == SIGKILL && oom_seen)};
  snprintf(out->host, sizeof out->host, "%s", host);
  for (int i = 1; i < n; i++)   /* killed together: one notice names them all */
    out->also[out->nalso++] = ranks[i];
  return true;
}

/* "srun: error: n1: task 3: Exited with exit code 2" (before any teardown). */
static bool exit_notice(const char *line, launcher_exit *out)
{
  char host[LAUNCHER_HOST_MAX];
  int ranks[65], n, code;
  const char *what;
  if (torn_down || !task_notice(line, host, ranks, &n, &what) || sscanf(what, "Exited with exit code %d", &code) != 1 ||
      code == 0)
    return false;
  *out = (launcher_exit){ranks[0], code};
  return true;
}

/* "srun: error: Node failure on n17" */
static bool node_lost(const char *line, char *host)
{
  const char *p = strstr(line, "srun: error: Node failure on ");
  char name[LAUNCHER_HOST_MAX];
  if (!p || sscanf(p + 29, "%63s", name) != 1)
    return false;
  snprintf(host, LAUNCHER_HOST_MAX, "%s", name);
  return true;
}

/* A user's name for "BY 1000" or "BY alice". */
static void user_name(const char *who, char *out, size_t cap)
{
  char *end;
  long uid = strtol(who, &end, 10);
  struct passwd *pw = *who && !*end ? getpwuid((uid_t)uid) : NULL;
  snprintf(out, cap, "%s", pw ? pw->pw_name : who);
}

/* "slurmstepd: error: *** JOB 12 ON n1 CANCELLED AT 2026-12-02T15:06:25 DUE TO TIME LIMIT ***",
 * "*** STEP 12.0 ON n1 CANCELLED AT ... ***", "... CANCELLED AT ... BY 1000 ***" (some versions). */
static bool end_notice(const char *line, launcher_end *out)
{
  static const struct {
    const char *words;
    launcher_end_why why;
  } dues[] = {{"DUE TO TIME LIMIT", LAUNCHER_END_TIME_LIMIT}, {"DUE TO PREEMPTION", LAUNCHER_END_PREEMPTED},
              {"DUE TO NODE FAILURE", LAUNCHER_END_NODE_FAIL}};
  const char *p = strstr(line, "*** ");
  char kind[8], id[32], host[LAUNCHER_HOST_MAX];
  if (!p || !strstr(p, " CANCELLED AT ") || sscanf(p, "*** %7s %31s ON %63s CANCELLED AT", kind, id, host) != 3 ||
      (strcmp(kind, "JOB") && strcmp(kind, "STEP")))
    return false;
  launcher_end e = {.why = LAUNCHER_END_CANCELLED};
  id[strcspn(id, ".")] = '\0';   /* a step's job */
  snprintf(e.job_id, sizeof e.job_id, "%s", id);
  snprintf(e.host, sizeof e.host, "%s", host);
  for (size_t i = 0; i < sizeof dues / sizeof dues[0]; i++)
    if (strstr(p, dues[i].words))
      e.why = dues[i].why;
  const char *by = strstr(p, " BY ");
  char who[64];
  if (by && sscanf(by + 4, "%63s", who) == 1 && strcmp(who, "***"))
    user_name(who, e.by, sizeof e.by);
  *out = e;
  return true;
}

/* ---- asking Slurm ------------------------------------------------------------------ */

/* Slurm's "2-03:04:05", "03:04:05", "04:05" as seconds, or -1. */
static long slurm_seconds(const char *s)
{
  long d = 0, h = 0, m = 0, sec = 0;
  if (sscanf(s, "%ld-%ld:%ld:%ld", &d, &h, &m, &sec) == 4)
    return ((d * 24 + h) * 60 + m) * 60 + sec;
  if (sscanf(s, "%ld:%ld:%ld", &h, &m, &sec) == 3)
    return (h * 60 + m) * 60 + sec;
  if (sscanf(s, "%ld:%ld", &m, &sec) == 2)
    return m * 60 + sec;
  return -1;
}

/* "2h00m" (an hour or more), "1m00s", "42s". */
static void duration_text(long s, char *out, size_t cap)
{
  if (s >= 3600)
    snprintf(out, cap, "%ldh%02ldm", s / 3600, s / 60 % 60);
  else if (s >= 60)
    snprintf(out, cap, "%ldm%02lds", s / 60, s % 60);
  else
    snprintf(out, cap, "%lds", s);
}

/* The value of "Key=value" in scontrol's one-line output, or "". */
static void field(const char *text, const char *key, char *out, size_t cap)
{
  out[0] = '\0';
  size_t kn = strlen(key);
  for (const char *p = strstr(text, key); p; p = strstr(p + 1, key))
    if ((p == text || p[-1] == ' ' || p[-1] == '\n') && p[kn] == '=') {
      size_t n = strcspn(p + kn + 1, " \n");
      snprintf(out, cap, "%.*s", (int)n, p + kn + 1);
      return;
    }
}

static void put_duration(const char *slurm, char *out, size_t cap)
{
  long s = slurm_seconds(slurm);
  if (s >= 0 && !out[0])
    duration_text(s, out, cap);
}

/* `scontrol show job -o ID`: its state and reason, its time limit and run time. */
static bool ask_scontrol(const char *job_id, launcher_end *out, long deadline)
{
  char text[ASK_OUTPUT_MAX], state[64], reason[64], value[64];
  char *const argv[] = {"scontrol", "show", "job", "-o", (char *)job_id, NULL};
  if (launcher_run(argv, text, sizeof text, deadline - tool_now_ms()) != 0)
    return false;
  field(text, "JobState", state, sizeof state);
  field(text, "Reason", reason, sizeof reason);
  if (!strcmp(state, "TIMEOUT") || !strcmp(reason, "TimeLimit"))
    out->why = LAUNCHER_END_TIME_LIMIT;
  else if (!strcmp(state, "PREEMPTED"))
    out->why = LAUNCHER_END_PREEMPTED;
  else if (!strcmp(state, "NODE_FAIL"))
    out->why = LAUNCHER_END_NODE_FAIL;
  else if (!strcmp(state, "CANCELLED") && out->why == LAUNCHER_END_NONE)
    out->why = LAUNCHER_END_CANCELLED;
  field(text, "TimeLimit", value, sizeof value);
  put_duration(value, out->time_limit, sizeof out->time_limit);
  field(text, "RunTime", value, sizeof value);
  put_duration(value, out->run_time, sizeof out->run_time);
  if (!out->job_id[0])
    snprintf(out->job_id, sizeof out->job_id, "%s", job_id);
  return true;
}

/* `sacct -j ID`: "CANCELLED by 1000" names who cancelled it (where accounting runs). */
static void ask_sacct(const char *job_id, launcher_end *out, long deadline)
{
  char text[ASK_OUTPUT_MAX], who[64];
  char *const argv[] = {"sacct", "-n", "-X", "-P", "-o", "State", "-j", (char *)job_id, NULL};
  long left = deadline - tool_now_ms();
  if (left <= 0 || launcher_run(argv, text, sizeof text, left) != 0)
    return;
  const char *by = strstr(text, "CANCELLED by ");
  if (by && sscanf(by + 13, "%63s", who) == 1) {
    if (out->why == LAUNCHER_END_NONE)
      out->why = LAUNCHER_END_CANCELLED;
    user_name(who, out->by, sizeof out->by);
  }
}

static bool ask_end(const char *job_id, launcher_end *out)
{
  if (!job_id || !*job_id || strspn(job_id, "0123456789_") != strlen(job_id))
    return false;
  long deadline = tool_now_ms() + ASK_BOUND_MS;
  bool known = ask_scontrol(job_id, out, deadline);
  if (out->why == LAUNCHER_END_CANCELLED && !out->by[0])
    ask_sacct(job_id, out, deadline);
  return known || out->why != LAUNCHER_END_NONE;
}

/* srun's and slurmstepd's lines around a teardown, and PMIx's error handler: the message says it better. */
static bool noise(const char *line)
{
  static const char *const words[] = {"srun: Job step aborted: Waiting up to", "srun: got SIGCONT",
                                      "srun: forcing job termination", "_errhandler: ", "srun: Terminating StepId=",
                                      "srun: launch/slurm: _step_signal: Terminating", NULL};
  for (const char *const *w = words; *w; w++)
    if (strstr(line, *w))
      return true;
  return false;
}

static const char *const one_value[] = {
  "-n", "-N", "-c", "-p", "-t", "-J", "-A", "-w", "-o", "-e", "-i", "-D", "-G", "-q", "-C", "-m", "--ntasks",
  "--nodes", "--cpus-per-task", "--partition", "--time", "--job-name", "--account", "--nodelist", "--exclude",
  "--output", "--error", "--input", "--chdir", "--mpi", "--mem", "--gpus", "--ntasks-per-node", "--cpu-bind",
  "--distribution", "--qos", "--constraint", "--export", NULL};
static const char *const np[] = {"-n", "--ntasks", "--ntasks=", NULL};

static const char *const job_name[] = {"-J", "--job-name", "--job-name=", NULL};

/* As the job's messages have always named them (docs/events.md, "job"), what the tasks' hellos carry too. */
static const launcher_job_field job_fields[] = {
  {"slurm_job_id", "SLURM_JOB_ID"}, {"slurm_job_name", "SLURM_JOB_NAME"}, {"slurm_step", "SLURM_STEP_ID"}, {NULL, NULL}};

static void end_words(const launcher_end *e, const char *who, const char *after, char *out, size_t cap)
{
  switch (e->why) {
  case LAUNCHER_END_TIME_LIMIT:
    snprintf(out, cap, "%s reached its time limit after %s", who, after);
    break;
  case LAUNCHER_END_CANCELLED:
    snprintf(out, cap, "%s was cancelled%s%s", who, e->by[0] ? " by user " : " (scancel)", e->by);
    break;
  case LAUNCHER_END_PREEMPTED:
    snprintf(out, cap, "%s was preempted after %s", who, after);
    break;
  default:
    snprintf(out, cap, "%s was ended by Slurm: node %s failed", who, e->host[0] ? e->host : "?");
  }
}

const launcher launcher_slurm = {
  .name = "Slurm",
  .recognise = recognise,
  .pass_env = pass_env,
  .death_notice = death_notice,
  .exit_notice = exit_notice,
  .node_lost = node_lost,
  .end_notice = end_notice,
  .teardown = teardown,
  .ask_end = ask_end,
  .noise = noise,
  .job_fields = job_fields,
  .end_words = end_words,
  .one_value = one_value,
  .np = np,
  .job_name = job_name,
};
