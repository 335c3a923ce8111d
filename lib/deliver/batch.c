/* batch.c - a message on its way to several channels: building the batch
 * (local channels at once, the spooled copy of every other one before the
 * engine sees it), reading a finished transfer, and the crash path's use. */
#include "deliver/engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RESPONSE 65536

size_t mpn__item_collect(char *data, size_t size, size_t n, void *arg)
{
  mpn__item *it = arg;
  size_t len = size * n, room = MAX_RESPONSE - it->resp_len;
  size_t take = len < room ? len : room;
  if (take && it->resp_len + take + 1 > it->resp_cap) {
    size_t cap = it->resp_len + take + 1024;
    char *grown = realloc(it->resp, cap);
    if (!grown)
      return len;   /* keep the transfer; the judge sees what fitted */
    it->resp = grown;
    it->resp_cap = cap;
  }
  if (take) {
    memcpy(it->resp + it->resp_len, data, take);
    it->resp_len += take;
    it->resp[it->resp_len] = '\0';
  }
  return len;
}

/* With a relay to fall back on, a direct route that cannot even connect must
 * leave time for the relay. */
long mpn__connect_budget(const mpn__batch *b, long total_ms)
{
  if (b->has_relay && b->relay_mode == MPN__RELAY_AUTO)
    return total_ms / 2 < 5000 ? total_ms / 2 : 5000;
  return total_ms;
}

static void transport_error(mpn__item *it, const mpn__xfer_result *r)
{
  mpn__verdict *v = &it->last;
  /* Chat services do not deduplicate: once a request may have reached the
   * service, only an idempotent one (webhook-id, dedup_key) is sent again. */
  int may_repeat = !r->sent || it->ch.kind->idempotent;
  v->code = r->code;
  v->retry = r->retry == MPN__XFER_AGAIN || (r->retry == MPN__XFER_AGAIN_IF_UNSENT && may_repeat);
  snprintf(v->detail, sizeof v->detail, "%s%s", r->error,
           v->retry || may_repeat ? "" : " (the request was sent: not repeated, the service may have posted it)");
}

/* SMTP ends a refused command (MAIL, RCPT, DATA, the final ".", AUTH) with
 * a transfer error (r->refused) but keeps the server's reply code: 4xx is transient, 5xx
 * permanent (RFC 5321 4.2.1), which only the channel's judge can tell. A
 * broken connection leaves no fresh refusal (status below 400). */
static int smtp_refusal(const mpn__item *it, const mpn__xfer_result *r)
{
  return r->refused && r->status >= 400 && r->status < 600 && it->route != MPN__ROUTE_RELAY && it->ch.kind->judge &&
         it->ch.url && !strncmp(it->ch.url, "smtp", 4);
}

void mpn__judge_transfer(mpn__item *it, const mpn__xfer_result *r)
{
  mpn__verdict *v = &it->last;
  long status = r->status;
  memset(v, 0, sizeof *v);
  v->retry_after_ms = -1;
  if (r->code != MPN_OK && smtp_refusal(it, r)) {
    it->ch.kind->judge(&it->ch, status, it->resp, it->resp_len, v);
    mpn__scrub(v->detail, &it->ch);
    return;
  }
  if (r->code != MPN_OK) {
    transport_error(it, r);
    return;
  }
  v->retry_after_ms = r->retry_after_ms;
  if (it->route == MPN__ROUTE_RELAY) {
    mpn__judge_http(&it->ch, status, it->resp, it->resp_len, v);
    if (status == 403 || status == 400) {   /* the relay will not take this one: try directly again */
      v->code = MPN_E_RELAY;
      v->retry = 1;
    }
    return;
  }
  void (*judge)(const mpn__channel *, long, const char *, size_t, mpn__verdict *) =
      it->ch.kind->judge ? it->ch.kind->judge : mpn__judge_http;
  judge(&it->ch, status, it->resp, it->resp_len, v);
  mpn__scrub(v->detail, &it->ch);   /* the detail quotes the answer, which may quote the request */
}

/* ---- building a batch -------------------------------------------------------- */

void mpn__batch_free(mpn__batch *b)
{
  for (int i = 0; i < b->n; i++) {
    mpn__channel_free(&b->items[i].ch);
    free(b->items[i].resp);
    mpn__spool_done(b->items[i].spool_fd, b->items[i].spool_path, 0);
  }
  free(b->items);
  mpn_message_free(b->msg);
  free(b->ca_bundle);
  free(b->relay_addr);
  free(b);
}

static mpn_message *share(const mpn_message *m)
{
  mpn_message *c = calloc(1, sizeof *c);
  if (c) {
    memcpy(c->id, m->id, sizeof c->id);
    c->doc = json_incref((json_t *)m->doc);   /* read-only from now on */
  }
  return c;
}

static void copy_opts(mpn__batch *b, const mpn__send_opts *o)
{
  b->ca_bundle = o && o->ca_bundle ? strdup(o->ca_bundle) : NULL;
  b->relay_mode = o ? o->relay_mode : MPN__RELAY_OFF;
  b->log_failures = o && o->log_failures;
  if (o && o->relay_addr && o->relay_key && b->relay_mode != MPN__RELAY_OFF &&
      mpn__hex_key(o->relay_key, b->relay_key) == 0) {
    b->relay_addr = strdup(o->relay_addr);
    b->has_relay = b->relay_addr != NULL;
  }
  b->hold = o && o->hold && b->has_relay;
}

static void spool_ahead(mpn__item *it, const mpn__send_opts *o)
{
  static int warned;
  if (!o || o->no_spool || !o->spool_dir)
    return;
  char err[512] = "";
  if (mpn__spool_prepare(o->spool_dir, err, sizeof err) == 0)
    it->spool_fd = mpn__spool_write(o->spool_dir, it->batch->msg, &it->ch, it->spool_path, sizeof it->spool_path);
  if (it->spool_fd < 0 && !warned++)
    mpn__log_error("%s; undelivered messages cannot be kept", err[0] ? err : "cannot write to the spool directory");
}

static void init_item(mpn__batch *b, mpn__item *it, const mpn__send_opts *o)
{
  it->batch = b;
  it->spool_fd = -1;
  it->last.retry_after_ms = -1;
  it->next_at = mpn__now_ns();
  if (it->ch.kind->local && !b->hold) {
    it->route = MPN__ROUTE_LOCAL;
    it->attempts = 1;
    it->result = it->ch.kind->local(&it->ch, b->msg);
    if (it->result != MPN_OK)
      snprintf(it->last.detail, sizeof it->last.detail, "%s", mpn_strerror(it->result));
    it->state = MPN__ITEM_DONE;
    return;
  }
  int relay_first = b->has_relay && (b->relay_mode == MPN__RELAY_ALWAYS || b->hold) && !it->ch.kind->custom;
  it->route = relay_first ? MPN__ROUTE_RELAY : MPN__ROUTE_DIRECT;
  it->state = MPN__ITEM_WAITING;
  b->pending++;
  if (!it->ch.kind->local)   /* a held console copy is printed here if the relay does not take it */
    spool_ahead(it, o);
}

mpn__batch *mpn__submit(const mpn__channel *chs, int n, const mpn_message *m, int64_t deadline,
                        const mpn__send_opts *o)
{
  mpn__batch *b = calloc(1, sizeof *b);
  if (!b)
    return NULL;
  b->refs = 1;
  b->deadline = deadline;
  b->msg = share(m);
  b->items = calloc((size_t)(n ? n : 1), sizeof *b->items);
  if (!b->msg || !b->items) {
    mpn__batch_free(b);
    return NULL;
  }
  memcpy(b->id, m->id, sizeof b->id);
  copy_opts(b, o);
  for (int i = 0; i < n; i++) {
    if (mpn__channel_copy(&b->items[b->n].ch, &chs[i]) != MPN_OK)
      continue;   /* out of memory: the others still go */
    init_item(b, &b->items[b->n], o);
    b->n++;
  }
  if (b->pending && mpn__engine_add(b) != 0) {
    mpn__log_error("cannot start the delivery thread; %d message(s) stay in the spool", b->pending);
    for (int i = 0; i < b->n; i++)
      if (b->items[i].state != MPN__ITEM_DONE) {
        b->items[i].state = MPN__ITEM_DONE;
        b->items[i].result = b->items[i].ch.kind->local ? b->items[i].ch.kind->local(&b->items[i].ch, b->msg)
                                                         : MPN_E_DELIVERY;   /* a held console copy: printed here */
        mpn__spool_done(b->items[i].spool_fd, b->items[i].spool_path, 0);
        b->items[i].spool_fd = -1;
      }
    b->pending = 0;
  }
  return b;
}

void mpn__send_opts_from(mpn__send_opts *o, const mpn__config *cfg)
{
  memset(o, 0, sizeof *o);
  o->spool_dir = cfg->spool_dir;
  o->ca_bundle = cfg->ca_bundle;
  o->relay_mode = cfg->relay_mode;
  o->relay_addr = cfg->relay_addr;
  o->relay_key = cfg->relay_key;
}

/* ---- the crash path ---------------------------------------------------------- */
/* Returns the number of channels that accepted the report, or 1 when none did
 * but every copy is in the spool: either way nothing is lost. */

static void log_failure(const mpn_result *r, void *arg)
{
  int *lost = arg;
  *lost += r->code != MPN_OK && !r->spool_file;
  if (r->code != MPN_OK)
    mpn__log_error("delivery to %s failed: %s%s%s", r->channel, r->detail,
                   r->spool_file ? "; kept in " : "", r->spool_file ? r->spool_file : "");
}

/* The report as a message, submitted to every configured channel, or to the
 * event's own (an exception reported through a given notifier). */
static mpn__batch *submit_report(const mpn__report *r, int64_t deadline, int log_failures, int hold)
{
  mpn_message *m = mpn__message_from_report(r);
  if (!m)
    return NULL;
  const mpn__config *cfg = mpn__cfg();   /* once: a reload may publish another meanwhile */
  mpn__send_opts o;
  mpn__send_opts_from(&o, cfg);
  o.log_failures = log_failures;
  o.hold = hold && cfg->relay_hold;
  const mpn__event *ev = r->event;
  mpn__batch *b = ev && ev->nchannels ? mpn__submit(ev->channels, ev->nchannels, m, deadline, &o)
                                      : mpn__submit(cfg->channels, cfg->nchannels, m, deadline, &o);
  mpn_message_free(m);
  return b;
}

int mpn__deliver(const mpn__report *r, int64_t deadline)
{
  mpn__batch *b = submit_report(r, deadline, 0, 1);
  if (!b)
    return 0;
  mpn__batch_wait(b, deadline);
  int lost = 0;
  int ok = mpn__batch_results(b, log_failure, &lost);
  mpn__batch_release(b);
  return ok > 0 || lost == 0 ? (ok ? ok : 1) : 0;   /* spooled counts as kept, not as lost */
}

/* Which channels a fatal leader could not reach for want of a route: their
 * copies go to its successor (mpn__deliver_some). */
typedef struct some_ctx {
  const mpn__channel *chs;
  const int *index;   /* chs[k] is the configuration's channel index[k] */
  int n;
  int hand_off;
  uint64_t unreached;
  int lost;
  int next;           /* results come in the order of chs: the next one's index */
  char *kept;         /* the handed channels' spool copies, one path per line (malloc'd) */
} some_ctx;

static int no_route(const mpn_result *res)
{
  return res->code == MPN_E_DNS || res->code == MPN_E_CONNECT || (res->code == MPN_E_TIMEOUT && !res->http_status);
}

static void note_unreached(const mpn_result *res, void *arg)
{
  some_ctx *c = arg;
  int k = c->next;   /* in order (two Slack webhooks mask alike); a copy that failed to start is skipped */
  while (k < c->n && strcmp(c->chs[k].masked, res->channel) != 0)
    k++;
  c->next = k < c->n ? k + 1 : c->next;
  if (c->hand_off && k < c->n && no_route(res)) {
    c->unreached |= 1ull << c->index[k];
    if (res->spool_file) {   /* removed once the successor says it delivered (a flush must not repeat it) */
      size_t have = c->kept ? strlen(c->kept) : 0, add = strlen(res->spool_file) + 2;
      char *grown = realloc(c->kept, have + add);
      if (grown) {
        snprintf(grown + have, add, "%s\n", res->spool_file);
        c->kept = grown;
      }
    }
    mpn__log_error("delivery to %s failed: %s; another rank of this failure sends it", res->channel, res->detail);
    return;
  }
  log_failure(res, &c->lost);
}

int mpn__deliver_some(const mpn__report *r, int64_t deadline, uint64_t only, int hand_off, uint64_t *unreached,
                      char **kept)
{
  *unreached = 0;
  if (kept)
    *kept = NULL;
  const mpn__config *cfg = mpn__cfg();
  if ((r->event && r->event->nchannels) || cfg->nchannels > 64)
    return only == ~0ull ? mpn__deliver(r, deadline) : 0;   /* a notifier's own channels: no hand-off */
  mpn__channel chs[64];
  int index[64], n = 0;
  for (int i = 0; i < cfg->nchannels; i++)
    if (only & (1ull << i)) {
      index[n] = i;
      chs[n++] = cfg->channels[i];   /* shallow: mpn__submit copies what it keeps */
    }
  mpn_message *m = n ? mpn__message_from_report(r) : NULL;
  if (!m)
    return 0;
  mpn__send_opts o;
  mpn__send_opts_from(&o, cfg);
  mpn__batch *b = mpn__submit(chs, n, m, deadline, &o);
  mpn_message_free(m);
  if (!b)
    return 0;
  mpn__batch_wait(b, deadline);
  some_ctx c = {.chs = chs, .index = index, .n = n, .hand_off = hand_off};
  int ok = mpn__batch_results(b, note_unreached, &c);
  mpn__batch_release(b);
  *unreached = c.unreached;
  if (kept)
    *kept = c.kept;
  else
    free(c.kept);
  return ok > 0 || c.lost == 0 ? (ok ? ok : 1) : 0;
}

int mpn__deliver_async(const mpn__report *r, int64_t deadline)
{
  mpn__batch *b = submit_report(r, deadline, 1, 0);
  mpn__batch_release(b);   /* the engine keeps its own reference; exit drains it */
  return b != NULL;
}
