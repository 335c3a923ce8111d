/* view.c - a message laid out for the channels: title, severity, facts
 * (label/value pairs), free text, and the long parts (processes, backtrace)
 * that a channel may shorten to fit its service's limits. Every channel
 * builds its payload from a view, so they all say the same things. */
#include "format/format.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str(json_t *o, const char *key)
{
  return json_string_value(json_object_get(o, key));
}

static void fact(mpn__view *v, const char *label, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fact(mpn__view *v, const char *label, const char *fmt, ...)
{
  if (v->nfacts >= MPN__VIEW_FACTS)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *value = NULL;
  if (vasprintf(&value, fmt, ap) < 0)
    value = NULL;
  va_end(ap);
  if (!value)
    return;
  v->facts[v->nfacts].label = label;
  v->facts[v->nfacts++].value = value;
}

/* Where a message says how its job ended: "job" of a failure merged with its
 * job's end, or a job message's own fields when it is the end (completed,
 * failed: a job Slurm ended too); NULL when it says nothing of an end. */
static json_t *job_end_of(json_t *o)
{
  json_t *job = json_object_get(o, "job");
  if (str(job, "status"))
    return job;
  const char *event = str(o, "event"), *status = str(o, "status");
  if (event && !strcmp(event, "job") && status && (!strcmp(status, "completed") || !strcmp(status, "failed")))
    return o;
  return NULL;
}

char *mpn__job_end_text(const void *doc_json)
{
  json_t *job = job_end_of((json_t *)doc_json);
  const char *status = str(job, "status");
  if (!status)
    return NULL;
  mpn__buf b = mpn__buf_make(160);
  mpn__buf_add(&b, "%s", status);
  if (json_is_integer(json_object_get(job, "exit_status")))
    mpn__buf_add(&b, " with exit status %lld", json_integer_value(json_object_get(job, "exit_status")));
  if (json_is_number(json_object_get(job, "duration_s")))
    mpn__buf_add(&b, " after %.1f s", json_number_value(json_object_get(job, "duration_s")));
  json_int_t victims = json_integer_value(json_object_get(job, "victims"));
  if (victims > 0)
    mpn__buf_add(&b, "; %lld other rank%s ended after it without a failure of %s own", (long long)victims,
                 victims == 1 ? "" : "s", victims == 1 ? "its" : "their");
  return b.p;
}

/* Ranks as ranges, whole: a channel decides how much of it to show. */
static char *ranges_of(json_t *ranks)
{
  size_t n = json_array_size(ranks);
  int *list = malloc(sizeof *list * (n ? n : 1));
  size_t cap = n * 24 + 8;
  char *out = malloc(cap);
  if (!list || !out) {
    free(list);
    free(out);
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    list[i] = (int)json_integer_value(json_array_get(ranks, i));
  mpn__rank_ranges(list, (int)n, out, cap);
  free(list);
  return out;
}

/* Distinct host names of the processes: "node17, node18" (at most 8, then "+N more"). */
static char *hosts_of(json_t *procs)
{
  mpn__buf b = mpn__buf_make(256);
  size_t shown = 0, distinct = 0;
  for (size_t i = 0; i < json_array_size(procs); i++) {
    const char *h = str(json_array_get(procs, i), "hostname");
    int seen = 0;
    for (size_t k = 0; h && k < i && !seen; k++) {
      const char *o = str(json_array_get(procs, k), "hostname");
      seen = o && !strcmp(o, h);
    }
    if (!h || seen)
      continue;
    distinct++;
    if (shown < 8) {
      mpn__buf_add(&b, "%s%s", shown ? ", " : "", h);
      shown++;
    }
  }
  if (distinct > shown)
    mpn__buf_add(&b, " +%zu more", distinct - shown);
  return b.p;
}

static char *processes_of(json_t *procs)
{
  mpn__buf b = mpn__buf_make(256);
  for (size_t i = 0; i < json_array_size(procs); i++) {
    json_t *p = json_array_get(procs, i);
    mpn__buf_add(&b, "rank %lld  pid %lld  %s\n", json_integer_value(json_object_get(p, "rank")),
                 json_integer_value(json_object_get(p, "pid")), str(p, "hostname") ? str(p, "hostname") : "?");
  }
  return b.p;
}

char *mpn__python_frames_text(const void *frames_json)
{
  json_t *frames = (json_t *)frames_json;
  if (!json_array_size(frames))
    return NULL;
  mpn__buf b = mpn__buf_make(256);
  mpn__buf_add(&b, "Python stack (most recent call last):\n");
  for (size_t i = 0; i < json_array_size(frames); i++) {
    json_t *f = json_array_get(frames, i);
    mpn__buf_add(&b, "  File \"%s\", line %lld, in %s\n", str(f, "file") ? str(f, "file") : "?",
                 json_integer_value(json_object_get(f, "line")), str(f, "function") ? str(f, "function") : "?");
    if (str(f, "code"))
      mpn__buf_add(&b, "    %s\n", str(f, "code"));
  }
  return b.p;
}

static char *backtrace_of(json_t *frames, json_t *python)
{
  mpn__buf b = mpn__buf_make(256);
  char *py = mpn__python_frames_text(python);   /* the Python function that ran, above the interpreter's frames */
  if (py)
    mpn__buf_add(&b, "%sNative frames:\n", py);
  free(py);
  mpn__frames_text(&b, frames, "", json_array_size(frames));
  return b.p;
}

/* "src/solver.c:41": the file's last two parts, enough to tell it and short
 * enough for a chat line (debug information often holds absolute paths). */
static const char *short_file(const char *file)
{
  const char *last = strrchr(file, '/');
  if (!last)
    return file;
  const char *p = last;
  while (p > file && p[-1] != '/')
    p--;
  return p > file ? p : last + 1;
}

/* The one rendering of native frames: "#0  fn+0x7 (module+0x1677)", or with
 * debug information "#0  fn (solver/kernel.c:41)", "[inlined]" after a
 * function the compiler inlined into the next frame. */
void mpn__frames_text(mpn__buf *b, const void *frames_json, const char *indent, size_t max)
{
  json_t *frames = (json_t *)frames_json;
  size_t n = json_array_size(frames);
  for (size_t i = 0; i < n && i < max; i++) {
    json_t *f = json_array_get(frames, i);
    const char *mod = str(f, "module"), *fn = str(f, "function"), *file = str(f, "file");
    const char *base = mod && strrchr(mod, '/') ? strrchr(mod, '/') + 1 : mod && *mod ? mod : "?";
    json_int_t line = json_integer_value(json_object_get(f, "line"));
    const char *inl = json_is_true(json_object_get(f, "inlined")) ? " [inlined]" : "";
    if (file && line > 0)
      mpn__buf_add(b, "%s#%-2zu %s (%s:%lld)%s\n", indent, i, fn ? fn : "??", short_file(file), (long long)line, inl);
    else if (fn && str(f, "function_offset"))
      mpn__buf_add(b, "%s#%-2zu %s+%s (%s+%s)\n", indent, i, fn, str(f, "function_offset"), base, str(f, "offset"));
    else if (fn)
      mpn__buf_add(b, "%s#%-2zu %s (%s+%s)%s\n", indent, i, fn, base, str(f, "offset") ? str(f, "offset") : "?", inl);
    else
      mpn__buf_add(b, "%s#%-2zu ?? (%s+%s)\n", indent, i, base, str(f, "offset") ? str(f, "offset") : "?");
  }
  if (n > max)
    mpn__buf_add(b, "%s... %zu more frames\n", indent, n - max);
}

#define SHOWN_OUTPUT_LINES 8   /* a chat text or a panel: the last few; the JSON has them all */

char *mpn__rank_output_text(const void *doc_json)
{
  json_t *lines = json_object_get((json_t *)doc_json, "rank_output");
  size_t n = json_array_size(lines);
  if (!n)
    return NULL;
  mpn__buf b = mpn__buf_make(512);
  for (size_t i = n > SHOWN_OUTPUT_LINES ? n - SHOWN_OUTPUT_LINES : 0; i < n; i++)
    mpn__buf_add(&b, "%s\n", json_string_value(json_array_get(lines, i)) ? json_string_value(json_array_get(lines, i)) : "");
  return b.p;
}

/* The leader's last lines after the text: where every channel shows the
 * message's own words. */
static void output_after_text(mpn__view *v, json_t *o)
{
  char *lines = mpn__rank_output_text(o);
  if (!lines)
    return;
  json_t *leader = json_object_get(o, "leader");
  mpn__buf b = mpn__buf_make(1024);
  if (v->text && *v->text)
    mpn__buf_add(&b, "%s\n\n", v->text);
  mpn__buf_add(&b, "Last lines of rank %lld's output:\n%s", json_integer_value(json_object_get(leader, "rank")), lines);
  free(lines);
  free(v->own_text);   /* after its copy: v->text may be it */
  v->own_text = b.p;
  v->text = b.p;
}

/* A Python exception: its traceback as Python prints it (the message's text)
 * goes where every channel shows code, in monospace; the text becomes its
 * last line, "KeyError: 'checkpoint missing'", what a reader sees first. */
static void language_traceback(mpn__view *v, json_t *o)
{
  json_t *e = json_object_get(o, "exception");
  if (!json_array_size(json_object_get(e, "traceback")) || !v->text || !*v->text)
    return;
  char *tb = strdup(v->text);
  if (!tb)
    return;
  size_t n = strlen(tb);
  while (n && tb[n - 1] == '\n')
    tb[--n] = '\0';
  const char *last = strrchr(tb, '\n');
  char *summary = strdup(last ? last + 1 : tb);
  free(v->backtrace);
  v->backtrace = tb;
  v->own_text = summary;
  v->text = summary;
}

/* What a kind adds to the facts: its own one or two lines. */
static void kind_facts(mpn__view *v, json_t *o)
{
  json_t *e;
  if (!strcmp(v->event, "crash") && json_is_integer(e = json_object_get(o, "sent_by_pid")))
    fact(v, "Signal", "%s, sent by pid %lld", str(o, "signal") ? str(o, "signal") : "?", json_integer_value(e));
  else if (!strcmp(v->event, "crash"))
    fact(v, "Signal", "%s", str(o, "signal") ? str(o, "signal") : "?");
  else if ((e = json_object_get(o, "exception")) != NULL) {
    fact(v, "Exception", "%s", str(e, "type") ? str(e, "type") : "?");
    if (str(e, "context"))
      fact(v, "Context", "%s", str(e, "context"));
  } else if (json_is_integer(e = json_object_get(o, "exit_status")))
    fact(v, "Exit status", "%lld", json_integer_value(e));
  else if ((e = json_object_get(o, "mpi_error")) != NULL)
    fact(v, "MPI error", "%s%s%s", str(e, "error_class") ? str(e, "error_class") : str(e, "function") ? str(e, "function") : "?",
         str(e, "error_string") ? ": " : "", str(e, "error_string") ? str(e, "error_string") : "");
  else if ((e = json_object_get(o, "alert")) != NULL) {
    fact(v, "Detector", "%s at step %lld", str(e, "detector") ? str(e, "detector") : "?",
         json_integer_value(json_object_get(e, "step")));
    if (str(e, "recommendation"))
      fact(v, "Recommendation", "%s", str(e, "recommendation"));
  }
}

/* A job message's "hosts" (an array of names): "node17, node18", at most 8. */
static char *host_list(json_t *hosts)
{
  size_t n = json_array_size(hosts);
  if (!n)
    return NULL;
  mpn__buf b = mpn__buf_make(256);
  for (size_t i = 0; i < n && i < 8; i++) {
    const char *h = json_string_value(json_array_get(hosts, i));
    mpn__buf_add(&b, "%s%s", i ? ", " : "", h ? h : "?");
  }
  if (n > 8)
    mpn__buf_add(&b, " +%zu more", n - 8);
  return b.p;
}

char *mpn__job_hosts_text(const void *doc_json)
{
  json_t *o = (json_t *)doc_json, *merged = json_object_get(json_object_get(o, "job"), "hosts");
  return host_list(json_array_size(merged) ? merged : json_object_get(o, "hosts"));
}

/* "Hosts": where the failure happened (its processes' hosts), else the job's;
 * "Job hosts": where the job ran, when that says more. */
static void host_facts(mpn__view *v, json_t *o)
{
  json_t *procs = json_object_get(o, "processes");
  v->job_hosts = mpn__job_hosts_text(o);
  v->hosts = json_array_size(procs) ? hosts_of(procs) : v->job_hosts ? strdup(v->job_hosts) : NULL;
  if (v->hosts || json_is_array(json_object_get(o, "ranks")))
    fact(v, "Hosts", "%s", v->hosts ? v->hosts : "?");
  if (v->job_hosts && v->hosts && strcmp(v->job_hosts, v->hosts))
    fact(v, "Job hosts", "%s", v->job_hosts);
}

static void rank_facts(mpn__view *v, json_t *o)
{
  json_t *ranks = json_object_get(o, "ranks");
  json_t *leader = json_object_get(o, "leader");
  v->ranks = ranges_of(ranks);
  v->nranks = json_array_size(ranks);
  kind_facts(v, o);
  json_t *ws = json_object_get(o, "world_size");
  if (json_is_integer(ws))
    fact(v, "Ranks", "%zu of %lld", v->nranks, json_integer_value(ws));
  else
    fact(v, "Ranks", "%zu", v->nranks);
  host_facts(v, o);
  if (json_is_object(leader))   /* a launcher's report has no leader and no election */
    fact(v, "Leader", "rank %lld, pid %lld on %s", json_integer_value(json_object_get(leader, "rank")),
         json_integer_value(json_object_get(leader, "pid")), str(leader, "hostname") ? str(leader, "hostname") : "?");
  fact(v, !strcmp(v->event, "crash") ? "First fault" : "First", "%s", str(o, "timestamp") ? str(o, "timestamp") : "?");
  const char *err = str(o, "election_error");
  if (str(o, "election"))
    fact(v, "Election", "%s%s%s", str(o, "election"), err ? ": " : "", err ? err : "");
  /* a job message is always the launcher's; a failure is, only when its rank could not report */
  if (strcmp(v->event, "job") && str(o, "reported_by") && !strcmp(str(o, "reported_by"), "launcher"))
    fact(v, "Reported by", "mpinotify-run (the rank could not report)");
  v->processes = processes_of(json_object_get(o, "processes"));
  v->backtrace = backtrace_of(json_object_get(o, "backtrace"), json_object_get(o, "python_traceback"));
  language_traceback(v, o);
  output_after_text(v, o);
}

/* s contains words, or, for "ValueError: loss is nan" of an exception of that
 * type, its message: the title names the type already (mpinotify-run). */
static int says(const char *s, const char *words, const char *type)
{
  size_t tn = type ? strlen(type) : 0;
  if (tn && !strncmp(words, type, tn) && !strncmp(words + tn, ": ", 2))
    words += tn + 2;
  return s && strstr(s, words);
}

char *mpn__said_text(const void *doc_json)
{
  json_t *o = (json_t *)doc_json;
  const char *words = str(o, "application_error");
  const char *type = str(json_object_get(o, "exception"), "type");
  if (!words || !*words || says(str(o, "title"), words, type) || says(str(o, "text"), words, type))
    return NULL;
  char *out = NULL;
  return asprintf(&out, "The application said: %s", words) < 0 ? NULL : out;
}

/* The application's words before the text, where neither the title nor the
 * text says them (a crash the launcher reported has its own text). */
static void said_before_text(mpn__view *v, json_t *o)
{
  char *said = mpn__said_text(o);
  if (!said)
    return;
  mpn__buf b = mpn__buf_make(512);
  mpn__buf_add(&b, "%s%s%s", said, v->text && *v->text ? "\n\n" : "", v->text ? v->text : "");
  free(said);
  free(v->own_text);   /* after its copy: v->text may be it */
  v->own_text = b.p;
  v->text = b.p;
}

mpn__view *mpn__view_new(const mpn_message *m)
{
  json_t *o = m->doc;
  mpn__view *v = calloc(1, sizeof *v);
  if (!v)
    return NULL;
  v->title = mpn__message_title(m);
  v->event = str(o, "event") ? str(o, "event") : "message";
  v->severity = str(o, "severity") ? str(o, "severity") : "info";
  v->failure = !strcmp(v->severity, "error") || !strcmp(v->severity, "critical");
  v->signature = str(o, "signature");
  v->text = str(o, "text");
  v->timestamp = str(o, "timestamp");
  json_t *job = json_object_get(o, "job");
  v->job = str(job, "name") ? str(job, "name") : str(o, "job_name");
  v->command = str(job, "command");
  if (v->job)
    fact(v, "Job", "%s", v->job);
  char *end = mpn__job_end_text(o);
  if (end)
    fact(v, "Job end", "%s", end);
  free(end);
  json_t *ranks = json_object_get(o, "ranks");
  /* an event of the ranks (not a sent message, nor a job message that names none: a completed job) */
  if (json_is_array(ranks) && (json_array_size(ranks) || strcmp(v->event, "job")))
    rank_facts(v, o);
  else
    host_facts(v, o);   /* a completed job, or one Slurm ended: where it ran */
  said_before_text(v, o);
  if (v->signature)
    fact(v, "Signature", "%s", v->signature);
  return v;
}

void mpn__view_free(mpn__view *v)
{
  if (!v)
    return;
  for (int i = 0; i < v->nfacts; i++)
    free(v->facts[i].value);
  free(v->ranks);
  free(v->hosts);
  free(v->job_hosts);
  free(v->processes);
  free(v->backtrace);
  free(v->own_text);
  free(v);
}

/* Length of the longest prefix of s with at most `max` units (bytes, or
 * characters when `chars`), ending on a UTF-8 boundary. */
static size_t fit(const char *s, size_t max, int chars)
{
  size_t i = 0, units = 0;
  while (s[i]) {
    size_t k = 1;
    while ((s[i + k] & 0xc0) == 0x80)
      k++;
    if (units + (chars ? 1 : k) > max)
      break;
    units += chars ? 1 : k;
    i += k;
  }
  return i;
}

char *mpn__clip(const char *s, size_t max, int chars)
{
  if (!s)
    return NULL;
  if ((chars ? mpn__utf8_len(s) : strlen(s)) <= max)
    return strdup(s);
  static const char mark[] = "\n... (shortened)";
  size_t room = max > sizeof mark ? max - (sizeof mark - 1) : 0;
  size_t n = fit(s, room, chars), cut = n;
  while (n > cut / 2 && s[n - 1] != '\n')   /* prefer ending at a line */
    n--;
  if (n <= cut / 2) {   /* one long line (a rank list): end after a comma, never inside a number */
    n = cut;
    while (n > cut / 2 && s[n - 1] != ',' && s[n - 1] != ' ')
      n--;
    if (n <= cut / 2)
      n = cut;
  }
  char *out = malloc(n + sizeof mark);
  if (!out)
    return NULL;
  memcpy(out, s, n);
  while (n && out[n - 1] == '\n')
    n--;
  memcpy(out + n, mark, sizeof mark);
  return out;
}
