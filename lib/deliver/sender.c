/* sender.c - the public sending API (mpinotify.h): a loaded configuration
 * that sends messages and flushes the spool through the engine, for the
 * tools and for programs that send outside a crash. */
#include "deliver/deliver.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FLUSH_GROUP 32   /* spooled messages in flight at once during a flush */

struct mpn_sender {
  mpn__config cfg;
  char *env_refs;
  int64_t deadline;   /* monotonic ns every send and flush ends by; 0: none */
  long long flush_from_ms, flush_to_ms;   /* wall clock: a flush takes messages spooled in [from, to); 0: open */
};

mpn_code mpn_sender_new(mpn_options *opts, mpn_sender **out, char *err, size_t errlen)
{
  if (!out) {
    mpn_options_free(opts);
    return MPN_E_INVALID_ARGUMENT;
  }
  *out = calloc(1, sizeof **out);
  if (!*out) {
    mpn_options_free(opts);
    return MPN_E_NO_MEMORY;
  }
  if (mpn__setting_env_flag(MPN__SET_DISABLE)) {   /* "the library does nothing at all" */
    mpn_options_free(opts);
    free(*out);
    *out = NULL;
    mpn__add_err(err, errlen, "%s is set: nothing is sent", mpn__setting(MPN__SET_DISABLE)->name);
    return MPN_E_DISABLED;
  }
  mpn_code rc = mpn__config_load(&(*out)->cfg, opts, err, errlen);
  mpn_options_free(opts);
  mpn__deliver_prime();
  return rc;
}

void mpn_sender_free(mpn_sender *s)
{
  if (!s)
    return;
  mpn__config_free(&s->cfg);
  free(s->env_refs);
  free(s);
}

int mpn_sender_channel_count(const mpn_sender *s)
{
  return s ? s->cfg.nchannels : 0;
}

const char *mpn_sender_channel(const mpn_sender *s, int i)
{
  return s && i >= 0 && i < s->cfg.nchannels ? s->cfg.channels[i].masked : NULL;
}

const char *mpn_sender_env_references(const mpn_sender *s)
{
  if (!s)
    return "";
  mpn_sender *w = (mpn_sender *)s;   /* computed once, cached */
  if (!w->env_refs)
    w->env_refs = mpn__config_env_refs(&s->cfg);
  return w->env_refs ? w->env_refs : "";
}

typedef struct tally {
  mpn_result_fn cb;
  void *arg;
  mpn_code first;
} tally;

static void count(const mpn_result *r, void *arg)
{
  tally *t = arg;
  if (r->code != MPN_OK && t->first == MPN_OK)
    t->first = r->code;
  if (t->cb)
    t->cb(r, t->arg);
}

static int64_t budget_end(const mpn_sender *s)
{
  int64_t end = mpn__now_ns() + (int64_t)s->cfg.timeout_ms * 1000000;
  return s->deadline && s->deadline < end ? s->deadline : end;
}

mpn_code mpn_sender_set_deadline(mpn_sender *s, long ms_from_now)
{
  if (!s || ms_from_now < 0)
    return MPN_E_INVALID_ARGUMENT;
  s->deadline = ms_from_now ? mpn__now_ns() + (int64_t)ms_from_now * 1000000 : 0;
  return MPN_OK;
}

/* Delivers to the channels given; used by send, flush and the relay. */
mpn_code mpn__send_to(const mpn__config *cfg, const mpn__channel *chs, int n, const mpn_message *m,
                      int64_t deadline, int no_spool, mpn_result_fn cb, void *arg)
{
  mpn__send_opts o;
  mpn__send_opts_from(&o, cfg);
  o.no_spool = no_spool;
  mpn__batch *b = mpn__submit(chs, n, m, deadline, &o);
  if (!b)
    return MPN_E_NO_MEMORY;
  mpn__batch_wait(b, deadline);
  tally t = {cb, arg, MPN_OK};
  mpn__batch_results(b, count, &t);
  mpn__batch_release(b);
  return t.first;
}

mpn_code mpn_sender_send(mpn_sender *s, const mpn_message *m, mpn_result_fn cb, void *arg)
{
  if (!s || !m)
    return MPN_E_INVALID_ARGUMENT;
  /* A test message that did not arrive has done its job: it is not kept for a later flush. */
  const char *event = mpn__msg_str(m, "event");
  int keep = !event || strcmp(event, "test");
  return mpn__send_to(&s->cfg, s->cfg.channels, s->cfg.nchannels, m, budget_end(s), !keep, cb, arg);
}

/* ---- flush ------------------------------------------------------------------- */

typedef struct flushing {
  mpn__spooled f;
  mpn__channel ch;
  mpn__batch *b;
} flushing;

typedef struct flush_ctx {
  tally t;
  int delivered;
  const char *path;
} flush_ctx;

static void on_flushed(const mpn_result *r, void *arg)
{
  flush_ctx *c = arg;
  mpn_result copy = *r;
  copy.spool_file = r->code == MPN_OK ? NULL : c->path;   /* the file stays where it was */
  c->delivered += r->code == MPN_OK;
  count(&copy, &c->t);
}

/* A spooled message whose destination no longer parses (a reference that is
 * gone) stays in the spool with the reason. */
static void report_unusable(flushing *f, const char *why, tally *t)
{
  mpn_result r = {"(unreadable destination)", MPN_E_BAD_CONFIG, 0, why, 0, "direct", f->f.path, f->f.msg->id};
  count(&r, t);
}

static void finish_group(flushing *fs, int n, int64_t deadline, tally *t)
{
  for (int i = 0; i < n; i++) {
    if (!fs[i].b)
      continue;
    mpn__batch_wait(fs[i].b, deadline);
    flush_ctx c = {*t, 0, fs[i].f.path};
    mpn__batch_results(fs[i].b, on_flushed, &c);
    t->first = c.t.first;
    mpn__batch_release(fs[i].b);
    mpn__spool_done(fs[i].f.fd, fs[i].f.path, c.delivered > 0);
    fs[i].f.fd = -1;
  }
  for (int i = 0; i < n; i++) {
    mpn__spool_done(fs[i].f.fd, fs[i].f.path, 0);
    mpn__channel_free(&fs[i].ch);
    mpn_message_free(fs[i].f.msg);
    free(fs[i].f.spec);
  }
}

static int start_one(const mpn_sender *s, flushing *f, int64_t deadline, tally *t)
{
  char err[1024] = "";
  f->b = NULL;
  if (mpn__parse_channel(f->f.spec, &f->ch, err, sizeof err) != MPN_OK) {
    report_unusable(f, err, t);
    return 0;
  }
  mpn__send_opts o;
  mpn__send_opts_from(&o, &s->cfg);
  o.no_spool = 1;   /* it is already in the spool: the flush removes it when delivered */
  f->b = mpn__submit(&f->ch, 1, f->f.msg, deadline, &o);
  if (!f->b)
    report_unusable(f, "out of memory", t);
  return f->b != NULL;
}

const char *mpn_sender_spool_dir(const mpn_sender *s)
{
  return s ? s->cfg.spool_dir : NULL;
}

mpn_code mpn_sender_set_flush_window(mpn_sender *s, long long from_ms, long long to_ms)
{
  if (!s || from_ms < 0 || to_ms < 0 || (to_ms && to_ms < from_ms))
    return MPN_E_INVALID_ARGUMENT;
  s->flush_from_ms = from_ms;
  s->flush_to_ms = to_ms;
  return MPN_OK;
}

/* Spool names start with the wall-clock time they were written, in ns (spool.c). */
static int in_window(const mpn_sender *s, const char *path)
{
  const char *name = strrchr(path, '/');
  long long ms = atoll(name ? name + 1 : path) / 1000000;
  return ms >= s->flush_from_ms && (!s->flush_to_ms || ms < s->flush_to_ms);
}

/* The next spooled message in the sender's window; others are left as they are. */
static int next_in_window(const mpn_sender *s, void **it, mpn__spooled *f)
{
  while (mpn__spool_next(s->cfg.spool_dir, it, f)) {
    if (in_window(s, f->path))
      return 1;
    free(f->spec);
    mpn_message_free(f->msg);
    close(f->fd);
  }
  return 0;
}

mpn_code mpn_sender_flush(mpn_sender *s, mpn_result_fn cb, void *arg)
{
  if (!s)
    return MPN_E_INVALID_ARGUMENT;
  char err[1024] = "";
  if (access(s->cfg.spool_dir, F_OK) != 0)
    return MPN_OK;   /* no spool yet: nothing was ever kept */
  if (mpn__spool_prepare(s->cfg.spool_dir, err, sizeof err) != 0) {   /* another user's directory: never read it */
    mpn__log_error("%s; not flushing it", err);
    return MPN_E_SPOOL;
  }
  tally t = {cb, arg, MPN_OK};
  void *it = NULL;
  flushing fs[FLUSH_GROUP];
  int n = 0;
  int64_t deadline = budget_end(s);
  memset(fs, 0, sizeof fs);
  /* past the sender's deadline, no new message is started: the rest stays for later */
  while (!(s->deadline && mpn__now_ns() >= s->deadline) && next_in_window(s, &it, &fs[n].f)) {
    start_one(s, &fs[n], deadline, &t);
    if (++n == FLUSH_GROUP) {
      finish_group(fs, n, deadline, &t);
      memset(fs, 0, sizeof fs);
      n = 0;
      deadline = budget_end(s);
    }
  }
  finish_group(fs, n, deadline, &t);
  mpn__spool_iter_end(it);
  return t.first;
}

const mpn__config *mpn__sender_config(const mpn_sender *s)
{
  return &s->cfg;
}

/* ---- the configuration as text -------------------------------------------------- */

/* A spec that holds a literal secret (its masked form differs) is written as
 * a reference to a variable of this process that holds it. */
static char *safe_spec(const mpn__channel *ch)
{
  char masked[2048];
  if (mpn_mask_url(ch->spec, masked, sizeof masked) == MPN_OK && !strcmp(masked, ch->spec))
    return strdup(ch->spec);
  char name[64], *ref = NULL;
  snprintf(name, sizeof name, "MPINOTIFY_SECRET_%016llx", (unsigned long long)mpn__hash_str(MPN__HASH_SEED, ch->spec));
  if (setenv(name, ch->spec, 1) != 0 || asprintf(&ref, "env:%s", name) < 0)
    return NULL;
  return ref;
}

char *mpn_sender_config(const mpn_sender *s)
{
  if (!s)
    return NULL;
  mpn__buf b = mpn__buf_make(1024);
  if (!b.p)
    return NULL;
  mpn__buf_add(&b, "[mpinotify]\n");
  mpn__config_settings_text(&s->cfg, &b);
  for (int i = 0; i < s->cfg.nchannels; i++) {
    char *spec = safe_spec(&s->cfg.channels[i]);
    if (!spec) {
      free(b.p);
      return NULL;
    }
    mpn__buf_add(&b, "\n[channel %d]\nurl = %s\n", i + 1, spec);
    free(spec);
  }
  return b.p;
}
