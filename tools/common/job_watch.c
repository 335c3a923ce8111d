/*
 * job_watch.c - the job as mpinotify-run sees it, and the messages about it
 * (job_watch.h). The root cause of a failed job is its first failure by the
 * failure's own timestamp; ranks torn down after it are counted, not listed.
 * A rank that died by a signal without a report of its own is known from the
 * launcher's death notice (launchers/launcher.h); its pid and host come from
 * its hello, since Open MPI may print PID 0. The crash message for it is the
 * library's (mpn_launcher_crash_new); the job messages are this file's.
 */
#include "job_watch.h"

#include "app_words.h"
#include "proc_watch.h"

#include "launchers/launcher.h"
#include "tool.h"

#include <jansson.h>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum {
  TAIL_LINES = 30,     /* output_tail */
  TEXT_TAIL_LINES = 10,/* of those, in the text that chat channels show */
  LINE_MAX_SHOWN = 400,
  HOST_MAX = LAUNCHER_HOST_MAX,
  MAX_DEATHS = 64,
  MAX_LOST = 8,        /* lost nodes kept */
  MAX_REPORTS = 256,   /* kept; the message lists the first REPORTS_SHOWN */
  REPORTS_SHOWN = 20,
  MAX_SECRETS = 32,
  MAX_HELD = 64,       /* distinct reports the relay holds for the job's end */
  MAX_REASONS = 8,     /* distinct reasons kept for ranks that could not arm */
  REASONS_SHOWN = 2,   /* of those, in the text */
  REASON_MAX = 200,
  MAX_BATCH = 16,      /* members naming the job in batch systems (launcher_job_field_at) */
};

typedef struct rank_info {
  bool hello, bye;
  bool loaded;         /* its process started with the library in it ("loaded"): on its way to MPI_Init */
  bool unarmed;        /* called MPI_Init but did not arm, and said why (hello overrides it) */
  bool disabled;       /* ... because it was told not to (MPINOTIFY_DISABLE) */
  int reason;          /* index in job_watch.reasons, -1 when not kept */
  bool without_mpi;    /* its hello came from Python's hooks (mpn_launcher_armed), not from MPI_Init */
  bool says_term;      /* its hello promised a "term" notice if a SIGTERM ends it */
  bool term;           /* ... and one came: the launcher's teardown (or a user) ended it */
  int exit_status;     /* a non-zero exit after MPI_Finalize, from its "exit" notice; 0 when none */
  long pid;
  char host[HOST_MAX];
} rank_info;

/* A rank the launcher saw die by a signal. */
typedef struct death {
  int rank;
  long pid;            /* as the launcher printed it (Open MPI may say 0) */
  char host[HOST_MAX];
  int signo;
  long long seen_ms;   /* when the notice was read: no later than the death was known */
  bool sent;           /* its crash message was made */
  bool node_lost;      /* its node was lost (host), signo 0: the launcher named the node, not the rank */
  bool oom;            /* the launcher says it ran out of memory */
  const launcher *source;   /* whose notice named it */
  bool silent;         /* not named by the launcher: it ended without a word while the launcher
                          named another rank's death (no report, goodbye, exit or SIGTERM) */
} death;

/* A report a rank delivered (its notice), or one the launcher made. */
typedef struct report {
  json_t *msg;         /* the mpinotify/1 message */
  long long ts_ms;     /* the failure's own time */
  bool launcher;       /* made by mpinotify-run for a rank that could not */
} report;

/* A fatal report the relay holds (its "held" notice): sent merged with the job's end. */
typedef struct held_report {
  char id[48];
  json_t *msg;
} held_report;

struct job_watch {
  pthread_mutex_t lock;
  char *name, *command;
  char *batch[MAX_BATCH];   /* the job's names in batch systems, by launcher_job_field_at's index */
  int np_guess;
  bool registering;
  long long start_ms, end_ms;
  int status;
  bool ended;
  rank_info *ranks;    /* by rank */
  int nranks_cap;
  int world_size;      /* from the hellos (and unarmed notices); 0 until one arrives */
  int armed;
  char *reasons[MAX_REASONS];   /* the distinct reasons ranks gave for not arming, first come */
  int nreasons;
  report reports[MAX_REPORTS];
  int nreports;
  held_report held[MAX_HELD];
  int nheld;
  death deaths[MAX_DEATHS];
  int ndeaths;
  char lost_hosts[MAX_LOST][HOST_MAX];   /* nodes the launcher lost, in order */
  long long lost_ms[MAX_LOST];
  int nlost;
  char *tail[TAIL_LINES];
  int tail_count, tail_next;
  app_words words;     /* the line of the output that explains a failure */
  launcher_end end;    /* how the batch system ended the job itself (time limit, cancellation), when it did */
  bool has_end;
  long long end_seen_ms;   /* when its notice (or the signal) came */
  bool torn_down;      /* the launcher said it tears the job down (srun: with SIGKILL, no SIGTERM first) */
  int stop_signal;     /* the stopping signal mpinotify-run received (the batch system's SIGTERM), or 0 */
  launcher_exit first_exit;   /* the first rank the launcher saw exit non-zero */
  bool has_first_exit;
  long long first_exit_ms;
  bool in_panel;       /* inside a console:// panel a rank printed: our own words, not the application's */
  char *secrets[MAX_SECRETS + 1];   /* NULL-terminated, for mpn_mask_text */
  int nsecrets;
  char local_host[HOST_MAX];   /* this node's name: its ranks' ends are watched (procs) */
  proc_watch *procs;
};

/* ---- small helpers ---------------------------------------------------------- */

static char *xstrdup_or_null(const char *s)
{
  return s && *s ? tool_xstrdup(s) : NULL;
}

static json_t *jstr(const char *s)
{
  json_t *j = s ? json_string(s) : NULL;   /* NULL: not valid UTF-8 */
  return j ? j : json_null();
}

static json_t *jint_or_null(long long v, bool known)
{
  return known ? json_integer(v) : json_null();
}

/* ---- life cycle -------------------------------------------------------------- */

bool job_events_parse(const char *s, unsigned *out)
{
  static const char *const words[] = {"started", "completed", "failed"};
  unsigned set = 0;
  char *copy = tool_xstrdup(s), *save = NULL;
  bool ok = true, any = false;
  for (char *t = strtok_r(copy, ", ", &save); t && ok; t = strtok_r(NULL, ", ", &save)) {
    any = true;
    if (!strcmp(t, "all"))
      set |= JOB_ALL;
    else if (strcmp(t, "none") != 0) {
      unsigned bit = 0;
      for (unsigned i = 0; i < 3; i++)
        if (!strcmp(t, words[i]))
          bit = 1u << i;
      ok = bit != 0;
      set |= bit;
    }
  }
  free(copy);
  if (ok && any)
    *out = set;
  return ok && any;
}

job_watch *job_watch_new(const job_info *info)
{
  job_watch *w = tool_xmalloc(sizeof *w);
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->lock, NULL);
  w->name = xstrdup_or_null(info->name);
  w->command = xstrdup_or_null(info->command);
  const launcher_job_field *f;
  for (int i = 0; i < MAX_BATCH && (f = launcher_job_field_at(i, NULL)); i++)   /* the batch job we run in */
    w->batch[i] = xstrdup_or_null(getenv(f->env));
  w->np_guess = info->np_guess;
  w->registering = info->registering;
  w->start_ms = tool_wall_ms();
  if (info->registering && gethostname(w->local_host, sizeof w->local_host - 1) == 0)
    w->procs = proc_watch_new();
  return w;
}

void job_watch_free(job_watch *w)
{
  if (!w)
    return;
  proc_watch_free(w->procs);
  for (int i = 0; i < w->nreports; i++)
    json_decref(w->reports[i].msg);
  for (int i = 0; i < w->nheld; i++)
    json_decref(w->held[i].msg);
  for (int i = 0; i < TAIL_LINES; i++)
    free(w->tail[i]);
  app_words_free(&w->words);
  for (int i = 0; i < w->nsecrets; i++)
    free(w->secrets[i]);
  for (int i = 0; i < w->nreasons; i++)
    free(w->reasons[i]);
  free(w->ranks);
  free(w->name);
  free(w->command);
  for (int i = 0; i < MAX_BATCH; i++)
    free(w->batch[i]);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

void job_watch_add_secret(job_watch *w, const char *value)
{
  if (!mpn_secret_value_maskable(value))   /* "false" or "8" would mask ordinary words */
    return;
  pthread_mutex_lock(&w->lock);
  if (w->nsecrets < MAX_SECRETS)
    w->secrets[w->nsecrets++] = tool_xstrdup(value);
  pthread_mutex_unlock(&w->lock);
}

/* ---- the ranks' notices --------------------------------------------------------- */

static rank_info *rank_slot(job_watch *w, int rank)
{
  if (rank < 0 || rank > 10000000)
    return NULL;
  if (rank >= w->nranks_cap) {
    int cap = w->nranks_cap ? w->nranks_cap : 64;
    while (cap <= rank)
      cap *= 2;
    rank_info *grown = realloc(w->ranks, sizeof *grown * (size_t)cap);
    if (!grown)
      return NULL;
    memset(grown + w->nranks_cap, 0, sizeof *grown * (size_t)(cap - w->nranks_cap));
    w->ranks = grown;
    w->nranks_cap = cap;
  }
  return &w->ranks[rank];
}

/* A notice's process (pid, host) for its rank, and the job's size it knows. */
static void note_process(job_watch *w, rank_info *ri, json_t *o)
{
  ri->pid = (long)json_integer_value(json_object_get(o, "pid"));
  const char *host = json_string_value(json_object_get(o, "host"));
  snprintf(ri->host, sizeof ri->host, "%s", host ? host : "");
  int ws = (int)json_integer_value(json_object_get(o, "world_size"));
  if (ws > w->world_size)
    w->world_size = ws;
}

static void on_hello(job_watch *w, json_t *o, int rank)
{
  rank_info *ri = rank_slot(w, rank);
  if (!ri)
    return;
  bool without_mpi = json_is_true(json_object_get(o, "without_mpi"));
  if (without_mpi && ri->unarmed)
    return;   /* it tried MPI_Init and could not arm: that is what the job's start must say */
  if (!ri->hello)
    w->armed++;
  ri->without_mpi = ri->hello ? ri->without_mpi && without_mpi : without_mpi;
  ri->hello = true;
  ri->says_term = ri->says_term || json_is_true(json_object_get(o, "says_term"));
  note_process(w, ri, o);
  if (w->procs && !strcmp(ri->host, w->local_host))
    proc_watch_add(w->procs, rank, ri->pid);
  /* a launcher outside an allocation made the batch job: its tasks know its names, we do not */
  const launcher_job_field *f;
  for (int i = 0; i < MAX_BATCH && (f = launcher_job_field_at(i, NULL)); i++)
    if (!w->batch[i])
      w->batch[i] = xstrdup_or_null(json_string_value(json_object_get(o, f->member)));
}

/* A rank's process started: not yet armed, but not silent either. */
static void on_loaded(job_watch *w, json_t *o, int rank)
{
  rank_info *ri = rank_slot(w, rank);
  if (!ri)
    return;
  ri->loaded = true;
  int ws = (int)json_integer_value(json_object_get(o, "world_size"));
  if (ws > w->world_size)
    w->world_size = ws;
}

/* The index of `why` among the kept reasons (added when new and there is room), or -1. */
static int reason_index(job_watch *w, const char *why)
{
  char text[REASON_MAX + 1];
  snprintf(text, sizeof text, "%s", why && *why ? why : "no reason given");
  for (int i = 0; i < w->nreasons; i++)
    if (!strcmp(w->reasons[i], text))
      return i;
  if (w->nreasons >= MAX_REASONS)
    return -1;
  w->reasons[w->nreasons] = tool_xstrdup(text);
  return w->nreasons++;
}

/* A rank that called MPI_Init without arming: why, and who it is. */
static void on_unarmed(job_watch *w, json_t *o, int rank)
{
  rank_info *ri = rank_slot(w, rank);
  if (!ri || ri->unarmed)
    return;
  if (ri->hello && ri->without_mpi) {   /* Python's hooks armed, but MPI_Init could not */
    ri->hello = false;
    w->armed--;
  }
  ri->unarmed = true;
  ri->disabled = json_is_true(json_object_get(o, "disabled"));
  ri->reason = reason_index(w, json_string_value(json_object_get(o, "why")));
  if (!ri->hello)
    note_process(w, ri, o);
}

static long long leader_rank(json_t *msg)
{
  json_t *r = json_object_get(json_object_get(msg, "leader"), "rank");
  return json_is_integer(r) ? json_integer_value(r) : -1;
}

/* This rank's report of this failure is known already (a held report and its rank's "report"
 * notice are one; another node's report of the same signature, without an election, is not). */
static bool has_report(const job_watch *w, json_t *msg)
{
  const char *sig = json_string_value(json_object_get(msg, "signature"));
  for (int i = 0; sig && i < w->nreports; i++) {
    const char *s = json_string_value(json_object_get(w->reports[i].msg, "signature"));
    if (!w->reports[i].launcher && s && !strcmp(s, sig) && leader_rank(w->reports[i].msg) == leader_rank(msg))
      return true;
  }
  return false;
}

static void on_report(job_watch *w, json_t *o)
{
  json_t *msg = json_object_get(o, "message");
  if (!json_is_object(msg) || w->nreports >= MAX_REPORTS || has_report(w, msg))
    return;
  long long sent = (long long)json_integer_value(json_object_get(o, "wall_ms"));
  report *r = &w->reports[w->nreports++];
  r->msg = json_incref(msg);
  r->ts_ms = sent;   /* unless the report says when its failure happened */
  mpn_parse_time(json_string_value(json_object_get(msg, "timestamp")), &r->ts_ms);
}

/* Once per message: the relay tells once per channel. */
static void on_held(job_watch *w, json_t *o)
{
  const char *id = json_string_value(json_object_get(o, "id"));
  json_t *msg = json_object_get(o, "message");
  if (!id || strlen(id) >= sizeof w->held[0].id || !json_is_object(msg))
    return;
  for (int i = 0; i < w->nheld; i++)
    if (!strcmp(w->held[i].id, id))
      return;
  if (w->nheld >= MAX_HELD)
    return;   /* the relay releases it unchanged at the latest at its stop */
  held_report *h = &w->held[w->nheld++];
  snprintf(h->id, sizeof h->id, "%s", id);
  h->msg = json_incref(msg);
  on_report(w, o);   /* its rank may die before its "report" notice */
}

void job_watch_notice(const char *type, const char *json, void *arg)
{
  job_watch *w = arg;
  json_t *o = json_loads(json, 0, NULL);
  json_t *rank = json_object_get(o, "rank");
  if (!json_is_object(o) || !json_is_integer(rank)) {
    json_decref(o);
    return;
  }
  pthread_mutex_lock(&w->lock);
  if (!strcmp(type, "hello"))
    on_hello(w, o, (int)json_integer_value(rank));
  else if (!strcmp(type, "loaded"))
    on_loaded(w, o, (int)json_integer_value(rank));
  else if (!strcmp(type, "unarmed"))
    on_unarmed(w, o, (int)json_integer_value(rank));
  else if (!strcmp(type, "bye")) {
    rank_info *ri = rank_slot(w, (int)json_integer_value(rank));
    if (ri)
      ri->bye = true;
  } else if (!strcmp(type, "exit")) {
    rank_info *ri = rank_slot(w, (int)json_integer_value(rank));
    if (ri)
      ri->exit_status = (int)json_integer_value(json_object_get(o, "status"));
  } else if (!strcmp(type, "term")) {
    rank_info *ri = rank_slot(w, (int)json_integer_value(rank));
    if (ri)
      ri->term = true;
  } else if (!strcmp(type, "report"))
    on_report(w, o);
  else if (!strcmp(type, "held"))
    on_held(w, o);
  pthread_mutex_unlock(&w->lock);
  json_decref(o);
}

/* Ranks that said why they did not arm (and never armed after all): all of them, and those disabled on purpose. */
static int count_unarmed(const job_watch *w, int *disabled)
{
  int n = 0;
  *disabled = 0;
  for (int r = 0; r < w->nranks_cap; r++) {
    const rank_info *ri = &w->ranks[r];
    if (ri->unarmed && !ri->hello) {
      n++;
      *disabled += ri->disabled;
    }
  }
  return n;
}

/* Ranks on their way: started with the library, neither armed nor unarmed
 * yet (a slow start before MPI_Init). None once the job ended: they never got there. */
static int count_starting(const job_watch *w)
{
  int n = 0;
  for (int r = 0; !w->ended && r < w->nranks_cap; r++)
    n += w->ranks[r].loaded && !w->ranks[r].hello && !w->ranks[r].unarmed;
  return n;
}

/* Ranks the launcher heard of at all: its start waits while this grows. */
int job_watch_heard(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  int n = 0;
  for (int r = 0; r < w->nranks_cap; r++)
    n += w->ranks[r].loaded || w->ranks[r].hello || w->ranks[r].unarmed;
  pthread_mutex_unlock(&w->lock);
  return n;
}

int job_watch_starting(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  int n = count_starting(w);
  pthread_mutex_unlock(&w->lock);
  return n;
}

bool job_watch_all_armed(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  int disabled;
  bool all = w->world_size > 0 && w->armed + count_unarmed(w, &disabled) >= w->world_size;
  /* A hello from Python's hooks comes at the interpreter's start: the rank may still call
   * MPI_Init and fail to arm. Only the wait's bound settles those (mpinotify-run's START_WAIT_MS). */
  for (int r = 0; all && r < w->nranks_cap; r++)
    all = !(w->ranks[r].hello && w->ranks[r].without_mpi);
  pthread_mutex_unlock(&w->lock);
  return all;
}

/* ---- the launcher's output ------------------------------------------------------- */

static bool has_death(const job_watch *w, int rank)
{
  for (int i = 0; i < w->ndeaths; i++)
    if (w->deaths[i].rank == rank)
      return true;
  return false;
}

static void add_death(job_watch *w, const launcher_death *ld, int rank, long pid)
{
  if (has_death(w, rank) || w->ndeaths >= MAX_DEATHS)
    return;
  death *d = &w->deaths[w->ndeaths++];
  memset(d, 0, sizeof *d);
  d->rank = rank;
  d->pid = pid;
  snprintf(d->host, sizeof d->host, "%s", ld->host);
  d->signo = ld->signo;
  d->oom = ld->oom;
  d->source = ld->source;
  d->seen_ms = tool_wall_ms();
}

/* A launcher's notice of a rank's death by a signal (srun's may name several), once per rank. */
static void note_death(job_watch *w, const char *line)
{
  launcher_death ld;
  if (!launcher_death_notice(line, &ld))
    return;
  add_death(w, &ld, ld.rank, ld.pid);
  for (int i = 0; i < ld.nalso && i < (int)(sizeof ld.also / sizeof ld.also[0]); i++)
    add_death(w, &ld, ld.also[i], 0);
}

/* The batch system's notice that it ended the job (the first; a later one may add who or where). */
static void note_end(job_watch *w, const char *line)
{
  launcher_end e;
  if (!launcher_end_notice(line, &e))
    return;
  if (!w->has_end) {
    w->end = e;
    w->has_end = true;
    w->end_seen_ms = tool_wall_ms();
  } else if (!w->end.by[0]) {
    snprintf(w->end.by, sizeof w->end.by, "%s", e.by);
  }
}

/* A launcher's notice of a node it lost, once per node. */
static void note_lost_node(job_watch *w, const char *line)
{
  char host[HOST_MAX];
  if (!launcher_node_lost(line, host) || w->nlost >= MAX_LOST)
    return;
  for (int i = 0; i < w->nlost; i++)
    if (!strcmp(w->lost_hosts[i], host))
      return;
  snprintf(w->lost_hosts[w->nlost], HOST_MAX, "%s", host);
  w->lost_ms[w->nlost++] = tool_wall_ms();
}

void job_watch_output(job_watch *w, const char *line, size_t len)
{
  if (len > LINE_MAX_SHOWN)
    len = LINE_MAX_SHOWN;
  char *copy = tool_xasprintf("%.*s", (int)len, line);
  pthread_mutex_lock(&w->lock);
  bool panel = !strncmp(copy, "=== mpinotify: ", 15) || (w->in_panel && (!strncmp(copy, "| ", 2) || !strcmp(copy, "|")));
  bool panel_end = w->in_panel && !strcmp(copy, "===");
  w->in_panel = panel;
  if (panel || panel_end) {   /* a message quoting its own panel would only repeat itself */
    pthread_mutex_unlock(&w->lock);
    free(copy);
    return;
  }
  note_death(w, copy);
  note_end(w, copy);
  w->torn_down = w->torn_down || launcher_teardown(copy);
  note_lost_node(w, copy);
  if (!launcher_noise(copy))   /* "  Error:      Operation now in progress" is Open MPI's, not the application's */
    app_words_line(&w->words, copy);
  launcher_exit e;
  if (launcher_exit_notice(copy, &e) && !w->has_first_exit) {
    w->first_exit = e;
    w->has_first_exit = true;
    w->first_exit_ms = tool_wall_ms();
  }
  free(w->tail[w->tail_next]);
  w->tail[w->tail_next] = copy;
  w->tail_next = (w->tail_next + 1) % TAIL_LINES;
  if (w->tail_count < TAIL_LINES)
    w->tail_count++;
  pthread_mutex_unlock(&w->lock);
}

static json_t *tail_json(const job_watch *w)
{
  json_t *a = json_array();
  int first = (w->tail_next - w->tail_count + TAIL_LINES) % TAIL_LINES;
  for (int i = 0; i < w->tail_count; i++) {
    /* URLs masked, and the values never to show starred */
    char *line = mpn_mask_text(w->tail[(first + i) % TAIL_LINES], (const char *const *)w->secrets);
    json_array_append_new(a, jstr(line));
    mpn_free(line);
  }
  return a;
}

static bool rank_reported(const job_watch *w, int rank);

void job_watch_term_marks(job_watch *w, const char *dir)
{
  DIR *d = dir ? opendir(dir) : NULL;
  pthread_mutex_lock(&w->lock);
  for (struct dirent *e; d && (e = readdir(d));) {
    long rank;
    rank_info *ri = !strncmp(e->d_name, "term-", 5) && tool_parse_long(e->d_name + 5, &rank) && rank >= 0 &&
                    rank < INT32_MAX ? rank_slot(w, (int)rank) : NULL;
    if (ri)
      ri->term = true;
  }
  pthread_mutex_unlock(&w->lock);
  if (d)
    closedir(d);
}

/* A rank of this node that ended in the launcher's teardown rather than with
 * the rank the launcher named (this node's ranks are watched: proc_watch.h).
 * Open MPI's teardown sends SIGCONT, SIGTERM 1 s later (sooner when another
 * rank's death cuts its sleep short: a second rank killed with the first), then
 * SIGKILL, often within 30 ms: a rank a loaded node did not run in time dies
 * as silently as one the OOM killer took. Its death comes long after the named
 * rank's, a co-victim's with it. Ranks not watched (other nodes): false. */
static bool died_in_teardown(job_watch *w, int rank, int named)
{
  enum { APART_MS = 500 };
  long long gone = proc_watch_gone_ms(w->procs, rank), named_gone = proc_watch_gone_ms(w->procs, named);
  return gone > 0 && named_gone > 0 && gone - named_gone >= APART_MS;
}

/* Open MPI names one rank killed outright; others that died with it (two ranks
 * OOM-killed at once) are the registered ranks of its node that ended without a word: no
 * report, no goodbye, no exit status, and no "term" although they promised
 * one (the launcher's teardown sends SIGTERM before SIGKILL). Called with the
 * lock held, once the launcher has ended: every notice is in. */
static void infer_silent_deaths(job_watch *w)
{
  const death *named = NULL;
  for (int i = 0; i < w->ndeaths && !named; i++)
    if (w->deaths[i].signo == SIGKILL && !rank_reported(w, w->deaths[i].rank))
      named = &w->deaths[i];
  if (!named || w->torn_down)
    return;   /* only a rank killed outright says nothing (a rank that faulted reports); the launcher's
                 own teardown by SIGKILL (srun's) leaves its victims as silent */
  const death first = *named;
  /* The OOM killer and a job's memory limit act per node: ranks of other nodes that said nothing
   * died of something else (their transport's loss of a peer), which the launcher did not name. */
  const rank_info *nr = first.rank < w->nranks_cap && w->ranks[first.rank].hello ? &w->ranks[first.rank] : NULL;
  const char *host = nr && *nr->host ? nr->host : first.host;
  for (int r = 0; r < w->nranks_cap && w->ndeaths < MAX_DEATHS; r++) {
    const rank_info *ri = &w->ranks[r];
    if (!ri->hello || !ri->says_term || ri->term || ri->bye || ri->exit_status || strcmp(ri->host, host) ||
        has_death(w, r) || rank_reported(w, r) || died_in_teardown(w, r, first.rank))
      continue;
    death *d = &w->deaths[w->ndeaths++];
    *d = (death){.rank = r, .pid = ri->pid, .signo = first.signo, .seen_ms = first.seen_ms, .silent = true};
    snprintf(d->host, sizeof d->host, "%s", ri->host);
  }
}

/* The registered ranks of every lost node that said nothing else (no report,
 * goodbye or exit status; a "term" may come from ranks whose daemon lived
 * long enough to end them) died with it. Called with the lock held, at the end. */
static void lost_node_deaths(job_watch *w)
{
  for (int k = 0; k < w->nlost; k++)
    for (int r = 0; r < w->nranks_cap && w->ndeaths < MAX_DEATHS; r++) {
      const rank_info *ri = &w->ranks[r];
      if (!ri->hello || strcmp(ri->host, w->lost_hosts[k]) || ri->bye || ri->exit_status || has_death(w, r) ||
          rank_reported(w, r))
        continue;
      death *d = &w->deaths[w->ndeaths++];
      *d = (death){.rank = r, .pid = ri->pid, .seen_ms = w->lost_ms[k], .node_lost = true};
      snprintf(d->host, sizeof d->host, "%s", ri->host);
    }
}

void job_watch_stop_signal(job_watch *w, int sig, long long when_ms)
{
  pthread_mutex_lock(&w->lock);
  if (!w->stop_signal) {
    w->stop_signal = sig;
    if (!w->has_end || when_ms < w->end_seen_ms)
      w->end_seen_ms = when_ms;
  }
  pthread_mutex_unlock(&w->lock);
}

/* The job's id in its batch system (its end notice's, else the environment's or the tasks'), or NULL
 * outside one; *owner gets the launcher of that batch system (NULL when none). */
static const char *batch_id(const job_watch *w, const launcher **owner)
{
  *owner = w->has_end ? w->end.source : NULL;
  if (w->has_end && w->end.job_id[0])
    return w->end.job_id;
  const launcher *l;
  const launcher_job_field *f;
  for (int i = 0; i < MAX_BATCH && (f = launcher_job_field_at(i, &l)); i++)
    if (w->batch[i] && f == l->job_fields) {   /* a launcher's first field is its job's id */
      *owner = l;
      return w->batch[i];
    }
  return NULL;
}

/* A failed batch job: how the batch system says it ended (launcher_ask_end; bounded), added to
 * what its notices said. Not under the lock: the relay's notices keep coming meanwhile. */
static void ask_end(job_watch *w, int status)
{
  pthread_mutex_lock(&w->lock);
  char id[32];
  const launcher *owner;
  const char *known = batch_id(w, &owner);
  snprintf(id, sizeof id, "%s", known ? known : "");
  launcher_end e = w->end;
  bool ask = status != 0 && id[0] && (w->has_end || w->stop_signal || WIFSIGNALED(status) ||
                                      (WIFEXITED(status) && WEXITSTATUS(status) > 128));
  pthread_mutex_unlock(&w->lock);
  if (!ask || !launcher_ask_end(id, &e) || e.why == LAUNCHER_END_NONE)
    return;
  pthread_mutex_lock(&w->lock);
  if (!w->has_end && !w->end_seen_ms)
    w->end_seen_ms = tool_wall_ms();
  w->end = e;
  w->has_end = true;
  pthread_mutex_unlock(&w->lock);
}

void job_watch_ended(job_watch *w, int status)
{
  ask_end(w, status);
  pthread_mutex_lock(&w->lock);
  w->ended = true;
  w->status = status;
  w->end_ms = tool_wall_ms();
  if (status != 0) {
    lost_node_deaths(w);
    infer_silent_deaths(w);
  }
  pthread_mutex_unlock(&w->lock);
}

static int exit_status(int status)
{
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 126;
}

bool job_watch_failed(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  bool failed = w->ended && exit_status(w->status) != 0;
  pthread_mutex_unlock(&w->lock);
  return failed;
}

/* ---- what the job's messages say ---------------------------------------------------- */

static int world(const job_watch *w)
{
  return w->world_size > 0 ? w->world_size : w->np_guess;
}

static const char *job_name(const job_watch *w)
{
  return w->name ? w->name : "?";
}

static json_t *job_object(const job_watch *w)
{
  json_t *j = json_object();
  json_object_set_new(j, "name", jstr(w->name));
  json_object_set_new(j, "command", jstr(w->command));
  const launcher_job_field *f;
  for (int i = 0; i < MAX_BATCH && (f = launcher_job_field_at(i, NULL)); i++)
    json_object_set_new(j, f->member, jstr(w->batch[i]));
  json_object_set_new(j, "duration_s", w->ended ? json_real((double)(w->end_ms - w->start_ms) / 1000.0) : json_null());
  return j;
}

/* Sets member `key` of message `m` (may be NULL) to `v` (not consumed). */
static void set_member(mpn_message *m, const char *key, json_t *v)
{
  char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
  if (m && text)
    mpn_message_set_json(m, key, text);
  free(text);
}

/* A message of `event` with every member of `fields` (not consumed). */
static mpn_message *build(const char *event, json_t *fields)
{
  mpn_message *m = mpn_message_new(event);
  const char *key;
  json_t *v;
  json_object_foreach(fields, key, v)
    set_member(m, key, v);
  return m;
}

/* A message's members, or NULL when out of memory. */
static json_t *message_doc(const mpn_message *m)
{
  char *text = mpn_message_json(m);
  json_t *doc = text ? json_loads(text, 0, NULL) : NULL;
  mpn_free(text);
  return doc;
}

/* Sets the title, severity and text (consumed) of a message's fields. */
static void headline(json_t *f, const char *title, const char *severity, char *text)
{
  json_object_set_new(f, "title", jstr(title));
  json_object_set_new(f, "severity", json_string(severity));
  json_object_set_new(f, "text", jstr(text));
  free(text);
}

/* Ends the build of a job message: the lock held by the caller is released. */
static mpn_message *job_message(job_watch *w, json_t *f)
{
  pthread_mutex_unlock(&w->lock);
  mpn_message *m = build("job", f);
  json_decref(f);
  return m;
}

static json_t *hosts_json(const job_watch *w, char *list, size_t cap)
{
  json_t *a = json_array();
  size_t len = 0;
  list[0] = '\0';
  for (int r = 0; r < w->nranks_cap; r++) {
    const rank_info *ri = &w->ranks[r];
    bool seen = !ri->hello;
    for (size_t i = 0; !seen && i < json_array_size(a); i++)
      seen = !strcmp(json_string_value(json_array_get(a, i)), ri->host);
    if (seen)
      continue;
    json_array_append_new(a, jstr(ri->host));
    if (len < cap)
      len += (size_t)snprintf(list + len, cap - len, "%s%s", len ? ", " : "", ri->host);
  }
  return a;
}

/* Appends `part` (consumed) to the list in *text, "; "-separated. */
static void add_part(char **text, char *part)
{
  char *next = tool_xasprintf("%s%s%s", *text, **text ? "; " : "", part);
  free(*text);
  free(part);
  *text = next;
}

/* The distinct reasons of the unarmed ranks (disabled ones or the others), in
 * rank order, as "R1; R2" (at most `max`, then "; ..."); "" when none. */
static char *reasons_text(const job_watch *w, bool disabled, int max)
{
  bool seen[MAX_REASONS] = {false};
  int shown = 0;
  bool more = false;
  char *out = tool_xstrdup("");
  for (int r = 0; r < w->nranks_cap; r++) {
    const rank_info *ri = &w->ranks[r];
    if (!ri->unarmed || ri->hello || ri->disabled != disabled || ri->reason < 0 || seen[ri->reason])
      continue;
    seen[ri->reason] = true;
    if (shown == max) {
      more = true;
      continue;
    }
    shown++;
    add_part(&out, tool_xstrdup(w->reasons[ri->reason]));
  }
  if (more)
    add_part(&out, tool_xstrdup("..."));
  return out;
}

/* [{"reason", "count"}]: every kept reason of the unarmed ranks, in rank order. */
static json_t *reasons_json(const job_watch *w)
{
  int count[MAX_REASONS] = {0}, order[MAX_REASONS], n = 0;
  for (int r = 0; r < w->nranks_cap; r++) {
    const rank_info *ri = &w->ranks[r];
    if (!ri->unarmed || ri->hello || ri->reason < 0)
      continue;
    if (count[ri->reason]++ == 0)
      order[n++] = ri->reason;
  }
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, json_pack("{s:o, s:i}", "reason", jstr(w->reasons[order[i]]), "count", count[order[i]]));
  return a;
}

/* Why fewer ranks armed than the job has: "\nOnly 2 of 8 ranks armed the
 * notifier: 4 have it preloaded but could not arm (...); 2 are not preloaded,
 * or never called MPI_Init. Failures of the others will not be reported." */
static char *short_of_text(const job_watch *w, int ws, int failed, int disabled, int silent, int starting)
{
  char *parts = tool_xstrdup("");
  if (failed > 0) {
    char *why = reasons_text(w, false, REASONS_SHOWN);
    add_part(&parts, tool_xasprintf("%d %s it preloaded but could not arm (%s)", failed, failed == 1 ? "has" : "have",
                                    *why ? why : "no reason given"));
    free(why);
  }
  if (disabled > 0) {
    char *why = reasons_text(w, true, REASONS_SHOWN);
    add_part(&parts, tool_xasprintf("%d %s not use it (%s)", disabled, disabled == 1 ? "does" : "do", why));
    free(why);
  }
  if (starting > 0)
    add_part(&parts, tool_xasprintf("%d %s still starting (the notifier is loaded, MPI_Init not reached yet)", starting,
                                    starting == 1 ? "is" : "are"));
  if (ws <= 0)
    add_part(&parts, tool_xstrdup("the others are not preloaded, or never called MPI_Init"));
  else if (silent > 0)
    add_part(&parts, tool_xasprintf("%d %s not preloaded, or never called MPI_Init", silent, silent == 1 ? "is" : "are"));
  char *text = tool_xasprintf("\nOnly %d of %s%d ranks armed the notifier: %s. Failures of the others will not be "
                              "reported.", w->armed, ws > 0 ? "" : "? ", ws > 0 ? ws : 0, parts);
  free(parts);
  return text;
}

/* Fewer ranks armed than the job has, and not because they were told not
 * to: a warning. Called with the lock held. */
static bool start_warning(const job_watch *w)
{
  int ws = world(w);
  bool short_of = w->registering && (ws <= 0 || w->armed < ws);
  int disabled, unarmed = count_unarmed(w, &disabled), starting = count_starting(w);
  int silent = ws > 0 && ws > w->armed + unarmed + starting ? ws - w->armed - unarmed - starting : 0;
  return short_of && (ws <= 0 || unarmed - disabled > 0 || silent > 0);
}

bool job_watch_start_warns(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  bool warns = start_warning(w);
  pthread_mutex_unlock(&w->lock);
  return warns;
}

mpn_message *job_watch_started(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  int ws = world(w);
  bool known = w->registering;
  bool short_of = known && (ws <= 0 || w->armed < ws);
  int disabled, unarmed = count_unarmed(w, &disabled), starting = count_starting(w);
  int failed = unarmed - disabled;
  int silent = ws > 0 && ws > w->armed + unarmed + starting ? ws - w->armed - unarmed - starting : 0;
  bool warning = start_warning(w);
  char hosts[512], title[512];
  char *warn = short_of ? short_of_text(w, ws, failed, disabled, silent, starting) : tool_xstrdup("");
  json_t *ranks = json_array();
  for (int r = 0; r < w->nranks_cap; r++)
    if (w->ranks[r].hello)
      json_array_append_new(ranks, json_integer(r));
  json_t *f = json_object();
  json_object_set_new(f, "status", json_string("started"));
  json_object_set_new(f, "hosts", hosts_json(w, hosts, sizeof hosts));
  if (known && ws > 0)
    snprintf(title, sizeof title, "Job %s started: %d of %d ranks armed", job_name(w), w->armed, ws);
  else
    snprintf(title, sizeof title, "Job %s started", job_name(w));
  json_object_set_new(f, "ranks_armed", jint_or_null(w->armed, known));
  json_object_set_new(f, "ranks_unarmed", jint_or_null(unarmed, known));
  json_object_set_new(f, "ranks_starting", jint_or_null(starting, known));
  json_object_set_new(f, "unarmed_reasons", known ? reasons_json(w) : json_null());
  json_object_set_new(f, "world_size", jint_or_null(ws, ws > 0));
  json_object_set_new(f, "ranks", ranks);
  json_object_set_new(f, "job", job_object(w));
  json_object_set_new(f, "reported_by", json_string("launcher"));
  headline(f, title, warning ? "warning" : "info",
           tool_xasprintf("Command: %s\nHosts: %s%s", w->command ? w->command : "?", *hosts ? hosts : "?", warn));
  free(warn);
  return job_message(w, f);
}

/* Reports by the ranks themselves name `rank`. */
static bool rank_reported(const job_watch *w, int rank)
{
  for (int i = 0; i < w->nreports; i++) {
    json_t *ranks = json_object_get(w->reports[i].msg, "ranks");
    for (size_t k = 0; !w->reports[i].launcher && k < json_array_size(ranks); k++)
      if (json_integer_value(json_array_get(ranks, k)) == rank)
        return true;
  }
  return false;
}

static const rank_info *known_rank(const job_watch *w, int rank)
{
  return rank >= 0 && rank < w->nranks_cap && w->ranks[rank].hello ? &w->ranks[rank] : NULL;
}

/* The deaths that are one failure with `d`: the same signal, of registered ranks that neither reported nor said goodbye; `d` first.
 * Returns how many (at least 1: d itself, even when it does not qualify). */
static int death_group(const job_watch *w, const death *d, const death **out, int max)
{
  int n = 0;
  out[n++] = d;
  for (int i = 0; i < w->ndeaths && n < max; i++) {
    const death *o = &w->deaths[i];
    const rank_info *ri = known_rank(w, o->rank);
    if (o != d && o->signo == d->signo && o->node_lost == d->node_lost && (!d->node_lost || !strcmp(o->host, d->host)) && ri && !ri->bye && !rank_reported(w, o->rank))
      out[n++] = o;
  }
  return n;
}

/* "(mpirun named rank 1; rank 2 ended with it without a word: ...)" when the group has silent ranks. */
static char *silent_note(const death *const *g, int n)
{
  char *named = tool_xstrdup(""), *silent = tool_xstrdup("");
  int nsilent = 0;
  for (int i = 0; i < n; i++) {
    char **list = g[i]->silent ? &silent : &named;
    char *next = tool_xasprintf("%s%s%d", *list, **list ? "," : "", g[i]->rank);
    free(*list);
    *list = next;
    nsilent += g[i]->silent;
  }
  char *note = nsilent == 0 ? NULL
               : tool_xasprintf(" The launcher named rank%s %s; rank%s %s ended with %s without a word (no report, "
                                "no goodbye, not the SIGTERM of the launcher's teardown), so %s killed outright too.",
                                strchr(named, ',') ? "s" : "", *named ? named : "?", nsilent > 1 ? "s" : "", silent,
                                *named && !strchr(named, ',') ? "it" : "them", nsilent > 1 ? "they were" : "it was");
  free(named);
  free(silent);
  return note;
}

/* The library's crash message for the ranks whose death the launcher noticed
 * (d and the deaths that are one failure with it), with this job's "job"
 * member; NULL when out of memory. */
static mpn_message *death_message(const job_watch *w, const death *d)
{
  const death *g[MAX_DEATHS];
  int n = death_group(w, d, g, MAX_DEATHS);
  mpn_launcher_crash c[MAX_DEATHS];
  for (int i = 0; i < n; i++) {
    const rank_info *ri = known_rank(w, g[i]->rank);
    c[i] = (mpn_launcher_crash){
      .rank = g[i]->rank,
      .signo = d->signo,
      .pid = ri ? ri->pid : g[i]->pid,
      .host = ri && *ri->host ? ri->host : g[i]->host,
      .world_size = world(w),
      .time_ms = d->seen_ms,
      .job_name = w->name,
    };
  }
  for (int i = 1; i < n; i++)   /* in rank order, the time the launcher's named one's */
    for (int k = i; k > 0 && c[k].rank < c[k - 1].rank; k--) {
      mpn_launcher_crash t = c[k];
      c[k] = c[k - 1];
      c[k - 1] = t;
    }
  mpn_message *m = d->node_lost ? mpn_launcher_node_lost_new(d->host, c, (size_t)n)
                                 : mpn_launcher_crashes_new(c, (size_t)n);
  char *note = m ? silent_note(g, n) : NULL;
  if (m && d->oom) {   /* the launcher said why it was killed */
    char *oom = tool_xasprintf("%s %s says it ran out of memory (the OOM killer).", note ? note : "",
                               d->source ? d->source->name : "The launcher");
    free(note);
    note = oom;
  }
  if (note) {
    json_t *doc = message_doc(m);
    char *text = tool_xasprintf("%s%s", json_string_value(json_object_get(doc, "text")), note);
    mpn_message_set_text(m, text);
    free(text);
    json_decref(doc);
    free(note);
  }
  json_t *job = job_object(w);
  set_member(m, "job", job);
  json_decref(job);
  return m;
}

/* Marks d's group sent. */
static void death_group_sent(job_watch *w, const death *d)
{
  const death *g[MAX_DEATHS];
  int n = death_group(w, d, g, MAX_DEATHS);
  for (int i = 0; i < n; i++)
    ((death *)g[i])->sent = true;
}

/* The same as its members. */
static json_t *death_doc(const job_watch *w, const death *d)
{
  mpn_message *m = death_message(w, d);
  json_t *doc = m ? message_doc(m) : NULL;
  mpn_message_free(m);
  return doc;
}

int job_watch_unreported_deaths(job_watch *w, mpn_message **out, int max)
{
  int n = 0;
  pthread_mutex_lock(&w->lock);
  for (int i = 0; i < w->ndeaths && n < max; i++) {
    death *d = &w->deaths[i];
    const rank_info *ri = known_rank(w, d->rank);
    /* Only registered ranks: without a hello the library was not there to report (a broken preload). */
    if (d->sent || !ri || ri->bye || rank_reported(w, d->rank))
      continue;
    mpn_message *m = death_message(w, d);
    json_t *doc = m ? message_doc(m) : NULL;
    if (!doc) {
      mpn_message_free(m);
      continue;
    }
    out[n++] = m;
    death_group_sent(w, d);
    if (w->nreports < MAX_REPORTS) {
      report *r = &w->reports[w->nreports++];
      r->msg = doc;
      r->ts_ms = d->seen_ms;
      r->launcher = true;
    } else {
      json_decref(doc);
    }
  }
  pthread_mutex_unlock(&w->lock);
  return n;
}

/* ---- the failed job: root cause, victims, reports -------------------------------------- */

/* A report the job's message lists: severity error or critical (docs/events.md). */
static bool serious(json_t *msg)
{
  const char *sev = json_string_value(json_object_get(msg, "severity"));
  return sev && (!strcmp(sev, "error") || !strcmp(sev, "critical"));
}

/* A failure of the job (a root cause; a rank with one is no victim), known from the message itself so that
 * a new kind of failure counts too: a serious report, except an alert (its "alert" member), whose severity
 * is the program's judgement of its own numbers while the job goes on. */
static bool failure_event(const report *r)
{
  return serious(r->msg) && !json_object_get(r->msg, "alert") && json_is_string(json_object_get(r->msg, "event"));
}

static const char *event_of(const report *r)
{
  return json_string_value(json_object_get(r->msg, "event"));
}

/* A hang the job recovered from (a later hang_recovered) did not end it. */
static bool recovered(const job_watch *w, const report *hang)
{
  for (int i = 0; i < w->nreports; i++) {
    const char *ev = event_of(&w->reports[i]);
    if (ev && !strcmp(ev, "hang_recovered") && w->reports[i].ts_ms >= hang->ts_ms)
      return true;
  }
  return false;
}

/* The first failure: a rank's report, or a death no report covers. */
typedef struct cause {
  const report *r;
  const death *d;
  long long ts;
} cause;

static cause root_cause(const job_watch *w)
{
  cause c = {NULL, NULL, 0};
  bool unreported_death = false;
  for (int i = 0; i < w->ndeaths; i++) {
    const death *d = &w->deaths[i];
    if (rank_reported(w, d->rank))
      continue;
    unreported_death = true;
    if (!c.d || d->seen_ms < c.ts)
      c = (cause){NULL, d, d->seen_ms};
  }
  /* A rank whose death nobody reported was noticed only when the launcher said so, later
   * than it happened; MPI errors then are ranks that failed waiting on it, not causes. */
  for (int i = 0; i < w->nreports; i++) {
    const report *r = &w->reports[i];
    const char *ev = event_of(r);
    if (r->launcher || !failure_event(r) || (unreported_death && !strcmp(ev, "mpi_error")) ||
        (!strcmp(ev, "hang") && recovered(w, r)))
      continue;
    if ((!c.r && !c.d) || r->ts_ms < c.ts)
      c = (cause){r, NULL, r->ts_ms};
  }
  return c;
}

static json_t *cause_ranks(const job_watch *w, const cause *c)
{
  if (c->r)
    return json_deep_copy(json_object_get(c->r->msg, "ranks"));
  json_t *a = json_array();
  const death *g[MAX_DEATHS];
  int n = c->d ? death_group(w, c->d, g, MAX_DEATHS) : 0;
  for (int i = 0; i < n; i++)
    json_array_append_new(a, json_integer(g[i]->rank));
  return a;
}

/* "SIGSEGV on rank 3", "ValueError on ranks 1,3": the report's headline (its
 * title before " on N of M ranks (job X)") and the ranks; "" without a cause. */
static void cause_headline(json_t *root, char *out, size_t cap)
{
  out[0] = '\0';
  const char *title = json_string_value(json_object_get(root, "title"));
  if (!title)
    return;
  const char *on = NULL;
  for (const char *p = strstr(title, " on "); p; p = strstr(p + 1, " on "))
    on = p;
  int n = on ? (int)(on - title) : (int)strlen(title);
  json_t *rs = json_object_get(root, "ranks");
  size_t len = (size_t)snprintf(out, cap, "%.*s on rank%s ", n > 200 ? 200 : n, title, json_array_size(rs) == 1 ? "" : "s");
  for (size_t i = 0; i < json_array_size(rs) && i < 8 && len < cap; i++)
    len += (size_t)snprintf(out + len, cap - len, "%s%lld", i ? "," : "", json_integer_value(json_array_get(rs, i)));
  if (json_array_size(rs) > 8 && len < cap)
    snprintf(out + len, cap - len, ",... (%zu ranks)", json_array_size(rs));
}

static json_t *cause_json(const job_watch *w, const cause *c, char *line, size_t cap)
{
  snprintf(line, cap, "not known (no rank reported a failure, and the launcher named none)");
  /* the rank's report, or the message for the death no report covers */
  json_t *m = c->r ? json_incref(c->r->msg) : c->d ? death_doc(w, c->d) : NULL;
  if (!m)
    return json_null();
  json_t *o = json_object(), *p = json_array_get(json_object_get(m, "processes"), 0);
  json_object_set_new(o, "event", json_incref(json_object_get(m, "event")));
  json_object_set_new(o, "ranks", cause_ranks(w, c));
  json_object_set_new(o, "hostname", json_incref(json_object_get(p, "hostname")));
  json_object_set_new(o, "pid", json_incref(json_object_get(p, "pid")));
  json_t *sig = json_object_get(m, "signal");
  json_object_set_new(o, "signal", sig ? json_incref(sig) : json_null());
  json_object_set_new(o, "title", json_incref(json_object_get(m, "title")));
  json_object_set_new(o, "signature", json_incref(json_object_get(m, "signature")));
  json_object_set_new(o, "timestamp", json_incref(json_object_get(m, "timestamp")));
  json_object_set_new(o, "reported_by", json_string(c->r ? "rank" : "launcher"));
  json_decref(m);
  const char *host = json_string_value(json_object_get(o, "hostname"));
  json_t *pid = json_object_get(o, "pid");
  char what[400], where[160] = "";
  cause_headline(o, what, sizeof what);
  if (host && json_is_integer(pid))
    snprintf(where, sizeof where, " (pid %lld on %s)", json_integer_value(pid), host);
  else if (host)
    snprintf(where, sizeof where, " (on %s)", host);
  snprintf(line, cap, "%s%s at %s, reported by the %s", what, where,
           json_string_value(json_object_get(o, "timestamp")), c->r ? "rank" : "launcher (the rank could not)");
  return o;
}

/* A failure after the root cause that only says a peer is gone (gloo's "Connection closed by
 * peer" once the failed rank died, an MPI error on a dead peer): a consequence, not a cause. */
static bool knock_on(const cause *c, const report *r)
{
  static const char *const peer_gone[] = {"Connection closed by peer", "Connection reset by peer", "Broken pipe",
                                          "communicator was aborted", "Connection refused", NULL};
  if ((!c->r && !c->d) || r == c->r || r->launcher || r->ts_ms < c->ts)
    return false;
  const char *ev = event_of(r);
  if (ev && !strcmp(ev, "mpi_error"))
    return true;
  json_t *x = json_object_get(r->msg, "exception");
  const char *said = json_string_value(json_object_get(x, "message"));
  for (const char *const *p = peer_gone; said && *p; p++)
    if (strstr(said, *p))
      return true;
  return false;
}

static bool in_ranks(json_t *ranks, int rank)
{
  for (size_t i = 0; i < json_array_size(ranks); i++)
    if (json_integer_value(json_array_get(ranks, i)) == rank)
      return true;
  return false;
}

/* Ranks that ended without a failure of their own: torn down by the launcher
 * (no report, no MPI_Finalize), or failed waiting on a dead peer (only MPI
 * errors after the root cause). -1: not known (no rank registered). */
static int victims(const job_watch *w, const cause *c, json_t *root_ranks)
{
  int ws = world(w);
  if (ws <= 0 || w->armed == 0)
    return -1;
  int n = 0;
  for (int rank = 0; rank < ws; rank++) {
    const rank_info *ri = known_rank(w, rank);
    if (in_ranks(root_ranks, rank) || (ri && ri->bye))
      continue;
    bool own_failure = false;
    for (int i = 0; i < w->nreports && !own_failure; i++) {
      const report *r = &w->reports[i];
      if (r->launcher || !in_ranks(json_object_get(r->msg, "ranks"), rank))
        continue;
      bool waited_on_peer = (!strcmp(event_of(r) ? event_of(r) : "", "mpi_error") && (c->d || r->ts_ms > c->ts)) ||
                            knock_on(c, r);
      own_failure = failure_event(r) && !waited_on_peer;
    }
    n += !own_failure;
  }
  return n;
}

/* The job's failures; "knock_on": true for those only saying the root cause's peer is gone. */
static json_t *report_summaries(const job_watch *w, const cause *c, int *total)
{
  json_t *a = json_array();
  *total = 0;
  for (int i = 0; i < w->nreports; i++) {
    json_t *m = w->reports[i].msg;
    if (!serious(m))   /* the failures, and the alerts of severity critical */
      continue;
    if ((*total)++ >= REPORTS_SHOWN)
      continue;
    json_t *s = json_object();
    static const char *const keys[] = {"event", "title", "severity", "signature", "ranks", "timestamp", "reported_by"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      json_t *v = json_object_get(m, keys[k]);
      json_object_set_new(s, keys[k], v ? json_deep_copy(v) : json_null());
    }
    json_object_set_new(s, "knock_on", json_boolean(knock_on(c, &w->reports[i])));
    json_array_append_new(a, s);
  }
  return a;
}

/* The last TEXT_TAIL_LINES lines of output that are not the launcher's boilerplate. */
static char *tail_text(json_t *tail)
{
  size_t n = json_array_size(tail), first = n, kept = 0;
  while (first > 0 && kept < TEXT_TAIL_LINES) {
    const char *line = json_string_value(json_array_get(tail, --first));
    kept += line && !launcher_noise(line);
  }
  char *out = tool_xstrdup("");
  for (size_t i = first; i < n; i++) {
    const char *line = json_string_value(json_array_get(tail, i));
    if (!line || launcher_noise(line))
      continue;
    char *next = tool_xasprintf("%s%s\n", out, line);
    free(out);
    out = next;
  }
  return out;
}

/* No rank reported and none died by a signal, but ranks exited with a
 * non-zero status after MPI_Finalize (which no rank reports): those that said
 * so in their "exit" notice, and the first one the launcher named. Their
 * exits are the root cause. False when there are none. */
static bool exit_ranks(const job_watch *w, json_t *ranks, int *status)
{
  *status = w->has_first_exit ? w->first_exit.status : 0;
  for (int rank = 0; rank < w->nranks_cap; rank++) {
    int s = w->ranks[rank].exit_status;
    if (!*status && s)
      *status = s;   /* without the launcher's notice: the status the lowest rank gave */
    bool first = w->has_first_exit && w->first_exit.rank == rank;
    if (first || (s && s == *status))
      json_array_append_new(ranks, json_integer(rank));
  }
  if (w->has_first_exit && w->first_exit.rank >= w->nranks_cap)
    json_array_append_new(ranks, json_integer(w->first_exit.rank));
  return json_array_size(ranks) > 0;
}

/* The application's words as messages show them (secrets masked), or NULL;
 * free with mpn_free. The root cause's own rank comes first: the lines its
 * report carries (rank_output) are that rank's, where the job's output
 * interleaves every rank's. */
static char *masked_words(const job_watch *w, const json_t *root_report)
{
  json_t *lines = json_object_get(root_report, "rank_output");
  app_words own;
  memset(&own, 0, sizeof own);
  for (size_t i = 0; i < json_array_size(lines); i++)
    if (json_string_value(json_array_get(lines, i)))
      app_words_line(&own, json_string_value(json_array_get(lines, i)));
  const char *best = own.best ? own.best : w->words.best;
  char *masked = best ? mpn_mask_text(best, (const char *const *)w->secrets) : NULL;
  app_words_free(&own);
  return masked;
}

static json_t *exit_cause(const job_watch *w, char *line, size_t cap)
{
  int status = 0, ws = world(w);
  json_t *ranks = json_array();
  if (!exit_ranks(w, ranks, &status)) {
    json_decref(ranks);
    return json_null();
  }
  int first = (int)json_integer_value(json_array_get(ranks, 0));
  char title[160];
  size_t n = json_array_size(ranks);
  if (ws > 0)
    snprintf(title, sizeof title, "exit status %d on %zu of %d ranks", status, n, ws);
  else
    snprintf(title, sizeof title, "exit status %d on %zu rank%s", status, n, n == 1 ? "" : "s");
  const rank_info *ri = known_rank(w, first);
  bool one = n == 1;   /* one process: its pid; several: their hosts are in "hosts" */
  json_t *o = json_pack("{s:s, s:o, s:i, s:o, s:o, s:s, s:s}", "event", "exit", "ranks", ranks,
                        "exit_status", status, "hostname", jstr(one && ri && ri->host[0] ? ri->host : NULL),
                        "pid", jint_or_null(ri ? ri->pid : 0, one && ri && ri->pid > 0), "title", title,
                        "reported_by", "launcher");
  json_t *procs = json_array();   /* who they were: pid and host from their registration */
  for (size_t i = 0; i < n; i++) {
    int rank = (int)json_integer_value(json_array_get(ranks, i));
    const rank_info *p = known_rank(w, rank);
    json_array_append_new(procs, json_pack("{s:i, s:o, s:o}", "rank", rank, "pid", jint_or_null(p ? p->pid : 0, p && p->pid > 0),
                                           "hostname", jstr(p && p->host[0] ? p->host : NULL)));
  }
  json_object_set_new(o, "processes", procs);
  /* "after MPI_Finalize" only for ranks that said so (registered, then finalized) */
  bool finalized = ri && ri->bye;
  char who[40];
  if (one)
    snprintf(who, sizeof who, "rank %d", first);
  else
    snprintf(who, sizeof who, "%zu ranks", n);
  snprintf(line, cap, "%s exited with status %d%s (the launcher reported it%s)", who, status,
           finalized ? " after MPI_Finalize" : "",
           finalized ? ": a rank exiting after MPI_Finalize cannot report it itself" : "");
  return o;
}

/* The members of a failed job's message (root, ranks and tail consumed). */
static void failure_members(const job_watch *w, json_t *f, const cause *c, const char *words, json_t *root,
                            json_t *ranks, int nvictims, json_t *tail)
{
  int total = 0;
  json_object_set_new(f, "application_error", jstr(words));
  json_object_set_new(f, "reports", report_summaries(w, c, &total));
  json_object_set_new(f, "reports_count", json_integer(total));
  json_t *procs = json_object_get(root, "processes");   /* an exit the launcher reported: who exited */
  if (procs && !json_object_get(f, "processes"))
    json_object_set(f, "processes", procs);
  json_object_set_new(f, "root_cause", root);
  json_object_set_new(f, "ranks", ranks);
  json_object_set_new(f, "victims", jint_or_null(nvictims, nvictims >= 0));
  json_object_set_new(f, "output_tail", tail);
}

/* ---- the batch system ended the job: time limit, cancellation, preemption ------------------ */

/* The batch system (its notice, its answer, or the SIGTERM it sent us) ended the job before any failure of its own. */
static bool end_is_cause(const job_watch *w, const cause *c)
{
  const launcher *owner;
  bool batch_stop = w->has_end || (w->stop_signal == SIGTERM && batch_id(w, &owner));
  if (!batch_stop)
    return false;
  if ((c->r || c->d) && c->ts <= w->end_seen_ms)
    return false;
  return !(w->has_first_exit && w->first_exit_ms <= w->end_seen_ms);
}

/* "step 40 of 100" of the job's last progress report, or "". */
static void last_progress(const job_watch *w, char *out, size_t cap)
{
  out[0] = '\0';
  for (int i = w->nreports - 1; i >= 0 && !out[0]; i--) {
    json_t *m = w->reports[i].msg;
    const char *ev = event_of(&w->reports[i]);
    if (!ev || strcmp(ev, "progress"))
      continue;
    json_t *step = json_object_get(m, "step"), *total = json_object_get(m, "total");
    const char *said = json_string_value(json_object_get(m, "message"));
    int n = snprintf(out, cap, "step %lld", (long long)json_integer_value(step));
    if (json_integer_value(total) > 0 && n > 0 && (size_t)n < cap)
      n += snprintf(out + n, cap - (size_t)n, " of %lld", (long long)json_integer_value(total));
    if (said && *said && n > 0 && (size_t)n < cap)
      snprintf(out + n, cap - (size_t)n, " (%s)", said);
  }
}

/* "job 1234 (train) reached its time limit after 2h00m", "... was cancelled by user alice". */
static void end_words(const job_watch *w, char *out, size_t cap)
{
  const launcher_end *e = &w->end;
  char who[200], after[32] = "", sig[24] = "";
  const launcher *owner;
  const char *id = batch_id(w, &owner);
  if (id)
    snprintf(who, sizeof who, "job %s (%s)", id, job_name(w));
  else
    snprintf(who, sizeof who, "job %s", job_name(w));
  long secs = (long)((w->end_ms - w->start_ms) / 1000);
  snprintf(after, sizeof after, "%s", e->time_limit[0] ? e->time_limit : e->run_time);
  if (!after[0])
    snprintf(after, sizeof after, secs >= 3600 ? "%ldh%02ldm" : "%ldm%02lds", secs >= 3600 ? secs / 3600 : secs / 60,
             secs >= 3600 ? secs / 60 % 60 : secs % 60);
  const char *name = w->stop_signal ? mpn_signal_name(w->stop_signal) : NULL;
  snprintf(sig, sizeof sig, "%s", name ? name : "SIGTERM");
  if (w->has_end && e->why != LAUNCHER_END_NONE && e->source && e->source->end_words)
    e->source->end_words(e, who, after, out, cap);
  else
    snprintf(out, cap, "%s was stopped by the batch system (%s)", who, sig);
}

static const char *end_event(const job_watch *w)
{
  static const char *const names[] = {"stopped", "time_limit", "cancelled", "preempted", "node_fail"};
  return names[w->has_end ? w->end.why : LAUNCHER_END_NONE];
}

/* The failed job's fields when the batch system ended it: the end is the root cause, said plainly. */
static void end_fields(const job_watch *w, json_t *f, int status)
{
  char words[400], progress[300], ts[40] = "", title[512];
  end_words(w, words, sizeof words);
  last_progress(w, progress, sizeof progress);
  mpn_format_time(w->end_seen_ms, ts, sizeof ts);
  const launcher_end *e = &w->end;
  json_t *root = json_object();
  json_object_set_new(root, "event", json_string(end_event(w)));
  json_object_set_new(root, "ranks", json_array());
  json_object_set_new(root, "hostname", jstr(w->has_end && e->host[0] ? e->host : NULL));
  json_object_set_new(root, "title", jstr(words));
  const launcher *owner;
  const char *id = batch_id(w, &owner);
  if (owner && owner->job_fields)   /* "slurm_job_id" */
    json_object_set_new(root, owner->job_fields[0].member, jstr(id));
  json_object_set_new(root, "cancelled_by", jstr(w->has_end && e->by[0] ? e->by : NULL));
  json_object_set_new(root, "time_limit", jstr(w->has_end && e->time_limit[0] ? e->time_limit : NULL));
  json_object_set_new(root, "last_progress", jstr(progress[0] ? progress : NULL));
  json_object_set_new(root, "signal_received", w->stop_signal ? jstr(mpn_signal_name(w->stop_signal)) : json_null());
  json_object_set_new(root, "timestamp", json_string(ts));
  json_object_set_new(root, "reported_by", json_string("launcher"));
  json_t *none = json_array();
  cause c = {NULL, NULL, w->end_seen_ms};
  int nvictims = victims(w, &c, none);
  char *said = masked_words(w, NULL);
  json_t *tail = tail_json(w);
  char *tail_lines = tail_text(tail);
  failure_members(w, f, &c, said, root, none, nvictims, tail);
  snprintf(title, sizeof title, "J%s%s%s", words + 1, progress[0] ? "; last progress: " : "", progress);
  headline(f, title, "error",
           tool_xasprintf("%s.\nExit status %d.\nRoot cause: %s (said by %s%s).%s%s", title, status, words,
                          owner ? owner->name : "the batch system",
                          w->stop_signal ? ", and its signal to the job" : "",
                          *tail_lines ? "\n\nLast lines of output:\n" : "", tail_lines));
  free(tail_lines);
  mpn_free(said);
}

static void failed_fields(const job_watch *w, json_t *f, int status)
{
  cause c = root_cause(w);
  if (end_is_cause(w, &c)) {
    end_fields(w, f, status);
    return;
  }
  char line[1024], title[512];
  json_t *root = cause_json(w, &c, line, sizeof line);
  if (json_is_null(root)) {
    json_decref(root);
    root = exit_cause(w, line, sizeof line);
  }
  json_t *root_ranks = c.r || c.d ? cause_ranks(w, &c) : json_deep_copy(json_object_get(root, "ranks"));
  if (!root_ranks)
    root_ranks = json_array();
  int nvictims = victims(w, &c, root_ranks);
  json_t *tail = tail_json(w);
  const char *event = json_string_value(json_object_get(root, "event"));
  bool crash = event && !strcmp(event, "crash");
  char what[400];
  cause_headline(root, what, sizeof what);
  /* The application's own words lead: in the title, unless a signal is the
   * headline ("SIGSEGV on rank 3" stays), then as the text's first line. */
  char *words = masked_words(w, c.r ? c.r->msg : NULL);
  bool words_in_title = words && !crash;
  char said_status[40];   /* "exit status 1 on ranks 0-3" says it already: no "(exit status 1)" before it */
  snprintf(said_status, sizeof said_status, "exit status %d ", status);
  bool repeats = !strncmp(what, said_status, strlen(said_status));
  char status_part[40] = "";
  if (!repeats)
    snprintf(status_part, sizeof status_part, " (exit status %d)", status);
  snprintf(title, sizeof title, "Job %s failed%s%s%s%s%s", job_name(w), status_part,
           *what || words_in_title ? ": " : "", what, *what && words_in_title ? ": " : "",
           words_in_title ? words : "");
  char *tail_lines = tail_text(tail);
  failure_members(w, f, &c, words, root, root_ranks, nvictims, tail);
  char victims_line[160] = "";
  if (nvictims > 0)
    snprintf(victims_line, sizeof victims_line, "\n%d other rank%s ended after it without a failure of %s own "
             "(torn down by the launcher, or failed waiting on a dead peer).", nvictims, nvictims == 1 ? "" : "s",
             nvictims == 1 ? "its" : "their");
  headline(f, title, crash ? "critical" : "error",
           tool_xasprintf("%s%s%sExit status %d.\nRoot cause: %s.%s%s%s", words ? "The application said: " : "",
                          words ? words : "", words ? "\n" : "", status, line, victims_line,
                          *tail_lines ? "\n\nLast lines of output:\n" : "", tail_lines));
  free(tail_lines);
  mpn_free(words);
}

mpn_message *job_watch_finished(job_watch *w)
{
  pthread_mutex_lock(&w->lock);
  int status = exit_status(w->status);
  double secs = (double)(w->end_ms - w->start_ms) / 1000.0;
  int ws = world(w);
  char hosts[512];
  json_t *f = json_object();
  json_object_set_new(f, "status", json_string(status ? "failed" : "completed"));
  json_object_set_new(f, "exit_status", json_integer(status));
  json_object_set_new(f, "duration_s", json_real(secs));
  json_object_set_new(f, "world_size", jint_or_null(ws, ws > 0));
  json_object_set_new(f, "hosts", hosts_json(w, hosts, sizeof hosts));
  json_object_set_new(f, "job", job_object(w));
  json_object_set_new(f, "reported_by", json_string("launcher"));
  if (status) {
    failed_fields(w, f, status);
  } else {
    char title[512];
    snprintf(title, sizeof title, "Job %s completed in %.1f s", job_name(w), secs);
    json_object_set_new(f, "ranks", json_array());
    headline(f, title, "info", tool_xasprintf("Duration: %.1f s\nCommand: %s", secs, w->command ? w->command : "?"));
  }
  return job_message(w, f);
}

/* ---- the failure that ended the job and the job's end, as one message ------------------ */

/* The held copy of a rank's report: the same failure has the same signature. */
static const held_report *held_for(const job_watch *w, const report *r)
{
  const char *sig = json_string_value(json_object_get(r->msg, "signature"));
  for (int i = 0; sig && i < w->nheld; i++) {
    const char *s = json_string_value(json_object_get(w->held[i].msg, "signature"));
    if (s && !strcmp(s, sig))
      return &w->held[i];
  }
  return NULL;
}

/* The job's outcome added to the failure's message `doc`: in its "job" member
 * (status, exit_status, duration_s, world_size, hosts, victims, reports), the
 * application's words and the output's last lines beside them, and said in
 * the title and the text. */
static void add_outcome(const job_watch *w, const cause *c, json_t *doc, int status)
{
  json_t *root_ranks = cause_ranks(w, c);
  int nvictims = victims(w, c, root_ranks), total = 0, ws = world(w);
  json_decref(root_ranks);
  char hosts[512];
  json_t *job = job_object(w);
  json_object_set_new(job, "status", json_string("failed"));
  json_object_set_new(job, "exit_status", json_integer(status));
  json_object_set_new(job, "world_size", jint_or_null(ws, ws > 0));
  json_object_set_new(job, "hosts", hosts_json(w, hosts, sizeof hosts));
  json_object_set_new(job, "victims", jint_or_null(nvictims, nvictims >= 0));
  json_object_set_new(job, "reports", report_summaries(w, c, &total));
  json_object_set_new(job, "reports_count", json_integer(total));
  json_object_set_new(doc, "job", job);
  char *words = masked_words(w, doc);
  json_t *tail = tail_json(w);
  json_object_set_new(doc, "application_error", jstr(words));
  json_object_set_new(doc, "output_tail", tail);
  const char *event = json_string_value(json_object_get(doc, "event"));
  const char *title = json_string_value(json_object_get(doc, "title"));
  if (words && event && strcmp(event, "crash") && title) {   /* "SIGSEGV on 3 of 8 ranks" stays as it is */
    /* "uncaught ValueError on 1 of 4 ranks (job x)" names the type already: only its message follows */
    const char *type = json_string_value(json_object_get(json_object_get(doc, "exception"), "type"));
    size_t tn = type ? strlen(type) : 0;
    const char *said = tn && !strncmp(words, type, tn) && !strncmp(words + tn, ": ", 2) && strstr(title, type)
                           ? words + tn + 2 : words;
    char *t = tool_xasprintf("%s: %s", title, said);
    json_object_set_new(doc, "title", jstr(t));
    free(t);
  }
  /* The report's own text stays (a Python traceback); a crash has none: the words lead it. The
   * job's end is a fact of every channel (format/view.c), the last lines are in output_tail. */
  if (words && !json_is_string(json_object_get(doc, "text"))) {
    char *text = tool_xasprintf("The application said: %s", words);
    json_object_set_new(doc, "text", jstr(text));
    free(text);
  }
  mpn_free(words);
}

/* A message from a whole document (its event, id and schema are the new message's own). */
static mpn_message *from_doc(json_t *doc)
{
  const char *event = json_string_value(json_object_get(doc, "event"));
  json_t *fields = json_deep_copy(doc);
  json_object_del(fields, "event");
  mpn_message *m = build(event ? event : "crash", fields);
  json_decref(fields);
  return m;
}

int job_watch_knock_ons(job_watch *w, char (*ids)[48], int max)
{
  int n = 0;
  pthread_mutex_lock(&w->lock);
  cause c = root_cause(w);
  for (int i = 0; i < w->nreports && n < max; i++) {
    const held_report *h = knock_on(&c, &w->reports[i]) ? held_for(w, &w->reports[i]) : NULL;
    if (h)
      snprintf(ids[n++], sizeof ids[0], "%s", h->id);
  }
  pthread_mutex_unlock(&w->lock);
  return n;
}

/* The root cause went out already (a report that did not end its rank, sent
 * at once): the job's end goes with the first held failure after it that is
 * not only its consequence, which is then the failure that ended the job. */
static const held_report *ending_held(const job_watch *w, const cause *c, const report **which)
{
  const held_report *best = NULL;
  for (int i = 0; i < w->nreports; i++) {
    const report *r = &w->reports[i];
    const held_report *h = r != c->r && !r->launcher && failure_event(r) && !knock_on(c, r)
                               ? held_for(w, r) : NULL;
    if (h && (!best || r->ts_ms < (*which)->ts_ms)) {
      best = h;
      *which = r;
    }
  }
  return best;
}

/* In a report merged with the job's end that is not the root cause: the
 * root cause, as the failed message gives it, and said in the text. */
static void add_root_cause(const job_watch *w, const cause *c, json_t *doc)
{
  char line[1024];
  json_t *root = cause_json(w, c, line, sizeof line);
  json_object_set_new(json_object_get(doc, "job"), "root_cause", root);
  const char *text = json_string_value(json_object_get(doc, "text"));
  char *t = tool_xasprintf("%s%sRoot cause, reported before: %s.", text ? text : "", text ? "\n" : "", line);
  json_object_set_new(doc, "text", jstr(t));
  free(t);
}

mpn_message *job_watch_merged(job_watch *w, char *held_id, size_t cap)
{
  held_id[0] = '\0';
  pthread_mutex_lock(&w->lock);
  int status = exit_status(w->status);
  cause c = root_cause(w);
  const held_report *h = c.r ? held_for(w, c.r) : NULL;
  const report *ending = NULL;
  const held_report *eh = c.r && !h ? ending_held(w, &c, &ending) : NULL;
  json_t *doc = NULL;
  if (!w->ended || !status || end_is_cause(w, &c)) {
    /* nothing to merge: the job did not fail, or its batch system ended it (the job's message says so) */
  } else if (h || eh) {
    doc = json_deep_copy((h ? h : eh)->msg);
    snprintf(held_id, cap, "%s", (h ? h : eh)->id);
  } else if (c.d && !c.d->sent && known_rank(w, c.d->rank) && !known_rank(w, c.d->rank)->bye) {
    doc = death_doc(w, c.d);   /* the crash message the launcher makes for it, this once */
    if (doc)
      death_group_sent(w, c.d);
    if (doc && w->nreports < MAX_REPORTS)   /* counted among the job's reports, as job_watch_unreported_deaths does */
      w->reports[w->nreports++] = (report){json_incref(doc), c.d->seen_ms, true};
  }
  if (doc)
    add_outcome(w, &c, doc, status);
  if (doc && eh)
    add_root_cause(w, &c, doc);
  pthread_mutex_unlock(&w->lock);
  mpn_message *m = doc ? from_doc(doc) : NULL;
  json_decref(doc);
  return m;
}
