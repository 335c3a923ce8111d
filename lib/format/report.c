/* report.c - the human-readable panel (console channel) and rank ranges. */
#include "format/format.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "0-63,65": consecutive ranks as ranges. A list that does not fit ends in
 * ",..." at a range boundary, never in a cut number. */
void mpn__rank_ranges(const int *ranks, int n, char *out, size_t cap)
{
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n;) {
    int j = i;
    while (j + 1 < n && ranks[j + 1] == ranks[j] + 1)
      j++;
    char piece[32];
    int w = j > i ? snprintf(piece, sizeof piece, "%s%d-%d", i ? "," : "", ranks[i], ranks[j])
                  : snprintf(piece, sizeof piece, "%s%d", i ? "," : "", ranks[i]);
    size_t room_for_more = j + 1 < n ? 4 : 0;   /* ",..." must still fit after it */
    if (w < 0 || len + (size_t)w + room_for_more + 1 > cap) {
      if (len + 5 <= cap)
        memcpy(out + len, i ? ",..." : "...", i ? 5 : 4);
      return;
    }
    memcpy(out + len, piece, (size_t)w + 1);
    len += (size_t)w;
    i = j + 1;
  }
}

static const char *s_of(json_t *o, const char *key)
{
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "?";
}

static void add_text(mpn__buf *b, const char *text);

/* The message's ranks as a panel line shows them: long lists end in "...". */
static void panel_ranges(json_t *o, char *ranges, size_t cap)
{
  json_t *ranks = json_object_get(o, "ranks");
  size_t n = json_array_size(ranks);
  int *list = malloc(sizeof *list * (n ? n : 1));
  snprintf(ranges, cap, "?");
  for (size_t i = 0; list && i < n; i++)
    list[i] = (int)json_integer_value(json_array_get(ranks, i));
  if (list)
    mpn__rank_ranges(list, (int)n, ranges, cap);
  free(list);
}

/* How the job ended and where it ran, as every channel's facts say it (view.c). */
static void add_job_lines(mpn__buf *b, json_t *o, const mpn__view *v)
{
  char *end = mpn__job_end_text(o);
  if (end)
    mpn__buf_add(b, "| job end    %s\n", end);
  free(end);
  if (v && v->hosts)
    mpn__buf_add(b, "| hosts      %s\n", v->hosts);
  if (v && v->job_hosts && (!v->hosts || strcmp(v->job_hosts, v->hosts)))
    mpn__buf_add(b, "| job hosts  %s\n", v->job_hosts);
}

/* A job message of mpinotify-run: its end, its ranks, its hosts; its text says the rest. */
static void add_job(mpn__buf *b, json_t *o, const mpn__view *v)
{
  char ranges[256];
  panel_ranges(o, ranges, sizeof ranges);
  if (json_array_size(json_object_get(o, "ranks")))
    mpn__buf_add(b, "| ranks      %s\n", ranges);
  add_job_lines(b, o, v);
}

/* Any event of the ranks: who hit it, who reported; a crash adds its fault and frames. */
static void add_ranks(mpn__buf *b, json_t *o, const mpn__view *v)
{
  json_t *procs = json_object_get(o, "processes");
  char ranges[256];
  panel_ranges(o, ranges, sizeof ranges);
  const char *err = json_string_value(json_object_get(o, "election_error"));
  const char *election = json_string_value(json_object_get(o, "election"));   /* null: the launcher reported it */
  mpn__buf_add(b, "| signature  %s%s%s%s%s\n", s_of(o, "signature"), election ? "   election " : "",
      election ? election : "", err ? ": " : "", err ? err : "");
  if (json_is_integer(json_object_get(o, "sent_by_pid")))
    mpn__buf_add(b, "| first      %s   sent by pid %lld\n", s_of(o, "timestamp"),
        json_integer_value(json_object_get(o, "sent_by_pid")));
  else if (json_is_string(json_object_get(o, "fault_address")))
    mpn__buf_add(b, "| first      %s   fault address %s\n", s_of(o, "timestamp"), s_of(o, "fault_address"));
  else
    mpn__buf_add(b, "| first      %s\n", s_of(o, "timestamp"));
  mpn__buf_add(b, "| ranks      %s\n", ranges);
  add_job_lines(b, o, v);
  if (json_is_string(json_object_get(o, "reported_by")) && !strcmp(s_of(o, "reported_by"), "launcher"))
    mpn__buf_add(b, "| reported by mpinotify-run (the rank could not report)\n");
  json_t *leader = json_object_get(o, "leader");
  if (json_is_object(leader))
    mpn__buf_add(b, "| leader     rank %lld, pid %lld on %s\n", json_integer_value(json_object_get(leader, "rank")),
        json_integer_value(json_object_get(leader, "pid")), s_of(leader, "hostname"));
  for (size_t i = 0; i < json_array_size(procs) && i < 8; i++) {
    json_t *p = json_array_get(procs, i);
    mpn__buf_add(b, "|   rank %-6lld pid %-8lld %s\n", json_integer_value(json_object_get(p, "rank")),
        json_integer_value(json_object_get(p, "pid")), s_of(p, "hostname"));
  }
  if (json_array_size(procs) > 8)
    mpn__buf_add(b, "|   ... %zu more processes\n", json_array_size(procs) - 8);
  char *py = mpn__python_frames_text(json_object_get(o, "python_traceback"));
  add_text(b, py);
  free(py);
  if (json_array_size(json_object_get(o, "backtrace"))) {
    mpn__buf_add(b, "| backtrace\n");
    mpn__frames_text(b, json_object_get(o, "backtrace"), "|   ", 16);   /* a panel: the top frames */
  }
  char *out = mpn__rank_output_text(o);
  if (out) {
    mpn__buf_add(b, "| output (rank %lld, last lines)\n", json_integer_value(json_object_get(leader, "rank")));
    for (const char *p = out; *p;) {
      size_t n = strcspn(p, "\n");
      mpn__buf_add(b, "|   %.*s\n", (int)n, p);
      p += n + (p[n] == '\n');
    }
  }
  free(out);
}

static void add_text(mpn__buf *b, const char *text)
{
  for (const char *p = text; p && *p;) {
    size_t n = strcspn(p, "\n");
    mpn__buf_add(b, "| %.*s\n", (int)n, p);
    p += n + (p[n] == '\n');
  }
}

char *mpn__message_text(const mpn_message *m, int color)
{
  json_t *o = m->doc;
  mpn__buf b = mpn__buf_make(1024);
  const char *sev = s_of(o, "severity");
  int bad = !strcmp(sev, "critical") || !strcmp(sev, "error");
  const char *on = !color ? "" : bad ? "\033[1;31m" : !strcmp(sev, "warning") ? "\033[1;33m" : "\033[1;32m";
  const char *off = color ? "\033[0m" : "";
  mpn__buf_add(&b, "%s=== mpinotify: %s ===%s\n", on, mpn__message_title(m), off);
  mpn__view *v = mpn__view_new(m);   /* the facts every channel shows: hosts, job hosts */
  if (json_is_array(json_object_get(o, "ranks")) && json_is_string(json_object_get(o, "signature")))
    add_ranks(&b, o, v);   /* a failure of the ranks */
  else if (!strcmp(s_of(o, "event"), "job"))
    add_job(&b, o, v);     /* a job message of mpinotify-run */
  mpn__view_free(v);
  char *said = mpn__said_text(o);
  add_text(&b, said);
  free(said);
  add_text(&b, json_string_value(json_object_get(o, "text")));
  mpn__buf_add(&b, "%s===%s\n", on, off);
  return b.p;
}
