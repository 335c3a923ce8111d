/* json.c - the generic webhook body, schema "mpinotify/1" (README.md). Built
 * with jansson; every string goes through mpn__utf8_sanitize first, because
 * program names, symbols and messages may hold any bytes and JSON may not. */
#include "format/format.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *jhex(uint64_t v)
{
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)v);
  return json_string(buf);
}

static json_t *jproc(const mpn__proc *p, int by_launcher)
{
  return json_pack("{s:i, s:o, s:o}", "rank", p->rank, "pid",
                   by_launcher && p->pid <= 0 ? json_null() : json_integer(p->pid), "hostname",
                   by_launcher && !p->host[0] ? json_null() : mpn__jstr(p->host));
}

/* A member only the ranks know: null in a launcher's report. */
static json_t *ranks_know(const mpn__report *r, json_t *v)
{
  if (!r->by_launcher)
    return v ? v : json_null();
  json_decref(v);
  return json_null();
}

/* file and line are null where the debug information says nothing (no -g,
 * a stripped binary, no libdw, or past MPINOTIFY_SYMBOLIZE_MS). */
static json_t *jframe(const mpn__frame *f, int i)
{
  int fn = f->has_function;
  return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:b}", "index", i,
                   "module", f->module[0] ? mpn__jstr(f->module) : json_null(), "offset", jhex(f->offset),
                   "function", fn ? mpn__jstr(f->function) : json_null(),
                   "function_offset", fn && !f->inlined ? jhex(f->function_offset) : json_null(),
                   "file", f->file[0] ? mpn__jstr(f->file) : json_null(),
                   "line", f->file[0] && f->line > 0 ? json_integer(f->line) : json_null(),
                   "inlined", f->inlined);
}

void *mpn__frames_doc(const mpn__frame *frames, int n)
{
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, jframe(&frames[i], i));
  return a;
}

static json_t *jframes(const mpn__report *r)
{
  const mpn__frame *frames = r->frames ? r->frames : r->event->frames;
  int n = r->frames ? r->nframes : r->event->nframes;
  json_t *a = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(a, jframe(&frames[i], i));
  return a;
}

/* "SIGSEGV on 3 of 8 ranks (job train)", "ValueError on 8 of 8 ranks (job train)" */
static const char *title_of(const mpn__report *r, char *buf, size_t cap)
{
  const mpn__event *ev = r->event;
  const char *what = ev->headline[0] ? ev->headline : mpn__signal_name(ev->signo);
  int world = r->world_size > 0 ? r->world_size : r->nprocs;   /* a launcher may not know it */
  snprintf(buf, cap, "%s on %d of %d rank%s (job %s)", what, r->nprocs, world, world == 1 ? "" : "s",
           r->job_name ? r->job_name : "?");
  return buf;
}

void *mpn__report_doc(const mpn__report *r)
{
  const mpn__event *ev = r->event;
  char sig[20], ts[40], title[256];
  snprintf(sig, sizeof sig, "%016llx", (unsigned long long)ev->signature);
  mpn__iso8601(r->first_wall_ns, ts, sizeof ts);
  json_t *ranks = json_array(), *procs = json_array();
  for (int i = 0; i < r->nprocs; i++) {
    json_array_append_new(ranks, json_integer(r->procs[i].rank));
    json_array_append_new(procs, jproc(&r->procs[i], r->by_launcher));
  }
  json_t *o = json_object();
  json_object_set_new(o, "schema", json_string("mpinotify/1"));
  json_object_set_new(o, "event", json_string(ev->kind));
  json_object_set_new(o, "title", mpn__jstr(title_of(r, title, sizeof title)));
  json_object_set_new(o, "severity", json_string(ev->severity ? ev->severity : "critical"));
  json_object_set_new(o, "signature", json_string(sig));
  if (!strcmp(ev->kind, "crash")) {
    json_object_set_new(o, "signal", json_string(mpn__signal_name(ev->signo)));
    json_object_set_new(o, "signal_number", json_integer(ev->signo));
    json_object_set_new(o, "fault_address", ev->sent_by_pid ? json_null() : ranks_know(r, jhex(ev->fault_addr)));
    json_object_set_new(o, "sent_by_pid", ev->sent_by_pid ? json_integer(ev->sent_by_pid) : json_null());
  }
  json_object_set_new(o, "timestamp", json_string(ts));
  json_object_set_new(o, "ranks", ranks);
  json_object_set_new(o, "world_size", r->by_launcher && r->world_size <= 0 ? json_null()
                                                                             : json_integer(r->world_size));
  json_object_set_new(o, "election", ranks_know(r, r->election ? json_string(r->election) : NULL));
  if (r->election_error)
    json_object_set_new(o, "election_error", mpn__jstr(r->election_error));
  json_object_set_new(o, "leader", ranks_know(r, jproc(&r->leader, 0)));
  json_object_set_new(o, "processes", procs);
  json_object_set_new(o, "backtrace", ranks_know(r, jframes(r)));
  json_object_set_new(o, "rank_output", ranks_know(r, r->rank_output ? json_deep_copy(r->rank_output) : NULL));
  json_object_set_new(o, "job", json_pack("{s:o, s:o, s:o, s:o, s:o}", "name", mpn__jstr(r->job_name),
                                          "command", mpn__jstr(r->job_command), "slurm_job_id",
                                          mpn__jstr(r->slurm_job_id), "slurm_job_name", mpn__jstr(r->slurm_job_name),
                                          "slurm_step", mpn__jstr(r->slurm_step)));
  json_object_set_new(o, "mpi_thread_level", mpn__jstr(r->thread_level));
  json_object_set_new(o, "mpinotify_version", json_string(MPN_VERSION_STRING));
  json_object_set_new(o, "reported_by", json_string(r->by_launcher ? "launcher" : "rank"));
  if (ev->extra)
    json_object_update(o, (json_t *)ev->extra);   /* the kind's own fields: exception, exit_status, ... */
  return o;
}

char *mpn__report_json(const mpn__report *r)
{
  json_t *o = mpn__report_doc(r);
  char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}
