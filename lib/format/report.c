/* report.c - the human-readable panel (console channel) and rank ranges. */
#include "core/mpn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mpn__rank_ranges(const int *ranks, int n, char *out, size_t cap)
{
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < n && len < cap;) {
    int j = i;
    while (j + 1 < n && ranks[j + 1] == ranks[j] + 1)
      j++;
    int w = j > i ? snprintf(out + len, cap - len, "%s%d-%d", i ? "," : "", ranks[i], ranks[j])
                  : snprintf(out + len, cap - len, "%s%d", i ? "," : "", ranks[i]);
    if (w < 0)
      break;
    len += (size_t)w;
    i = j + 1;
  }
}

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

static void add(buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0 || !b->p)
    return;
  if (b->len + (size_t)need + 1 > b->cap) {
    size_t cap = (b->len + (size_t)need + 1) * 2;
    char *grown = realloc(b->p, cap);
    if (!grown)
      return;
    b->p = grown;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)need;
}

static void add_frames(buf *b, const mpn__event *ev)
{
  for (int i = 0; i < ev->nframes && i < 16; i++) {
    const mpn__frame *f = &ev->frames[i];
    const char *mod = strrchr(f->module, '/');
    mod = mod ? mod + 1 : f->module[0] ? f->module : "?";
    if (f->has_function)
      add(b, "|   #%-2d %s+0x%lx (%s+0x%lx)\n", i, f->function, (unsigned long)f->function_offset, mod,
          (unsigned long)f->offset);
    else
      add(b, "|   #%-2d ?? (%s+0x%lx)\n", i, mod, (unsigned long)f->offset);
  }
  if (ev->nframes > 16)
    add(b, "|   ... %d more frames\n", ev->nframes - 16);
}

char *mpn__report_text(const mpn__report *r, int color)
{
  const mpn__event *ev = r->event;
  buf b = {malloc(1024), 0, 1024};
  int *ranks = malloc(sizeof *ranks * (size_t)(r->nprocs ? r->nprocs : 1));
  char ts[40], list[256] = "";
  for (int i = 0; ranks && i < r->nprocs; i++)
    ranks[i] = r->procs[i].rank;
  if (ranks)
    mpn__rank_ranges(ranks, r->nprocs, list, sizeof list);
  free(ranks);
  mpn__iso8601(r->first_wall_ns, ts, sizeof ts);
  const char *on = color ? "\033[1;31m" : "", *off = color ? "\033[0m" : "";
  add(&b, "%s=== mpinotify: %s on %d of %d rank%s (job %s) ===%s\n", on, mpn__signal_name(ev->signo), r->nprocs,
      r->world_size, r->world_size == 1 ? "" : "s", mpn__g.cfg.job_name ? mpn__g.cfg.job_name : "?", off);
  add(&b, "| signature  %016llx   election %s%s%s\n", (unsigned long long)ev->signature, r->election,
      r->election_error ? ": " : "", r->election_error ? r->election_error : "");
  add(&b, "| first      %s   fault address 0x%lx\n", ts, (unsigned long)ev->fault_addr);
  add(&b, "| ranks      %s\n", list);
  add(&b, "| leader     rank %d, pid %d on %s\n", r->leader.rank, r->leader.pid, r->leader.host);
  for (int i = 0; i < r->nprocs && i < 8; i++)
    add(&b, "|   rank %-6d pid %-8d %s\n", r->procs[i].rank, r->procs[i].pid, r->procs[i].host);
  if (r->nprocs > 8)
    add(&b, "|   ... %d more processes\n", r->nprocs - 8);
  add(&b, "| backtrace\n");
  add_frames(&b, ev);
  add(&b, "%s===%s\n", on, off);
  return b.p;
}
