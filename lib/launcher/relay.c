/* relay.c - the launcher's side of the relay (public mpn_relay_*): a server
 * (server.c) takes sealed frames from the ranks, and each accepted message is
 * submitted to the engine with its spooled copy on this node, so a message
 * the launcher cannot deliver either is flushed at the end of the job. The
 * same (message, channel) relayed twice (a rank that retried after a lost
 * answer) is delivered once. Frames with another "type" than "deliver" are
 * the ranks' notices (runtime/launcher_notices.c: hello, bye, report): they go to the
 * observer mpinotify-run sets, on the server's thread.
 *
 * Claims: ranks that cannot hold an election (no MPI in the process, MPI
 * below MPI_THREAD_MULTIPLE, an election that failed) ask the relay whether
 * a failure signature is theirs to report: the first asker gets it (200),
 * later ones hear "claimed" (409) until the claimer's "report" notice says it
 * is delivered, then "reported" (410). One message per failure across nodes,
 * where claim files only agree within one node.
 *
 * Held reports: a fatal report whose frame says "hold" (MPINOTIFY_RELAY_HOLD,
 * which mpinotify-run sets) is not delivered yet. It is kept, with a copy in
 * the spool, and shown to the observer as a "held" notice, so that the
 * launcher can send it once, merged with the job's end
 * (mpn_relay_release). What nobody releases goes unchanged: after
 * mpn_relay_release_older's bound, or at mpn_relay_stop. */
#include "launcher/launcher.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct relayed {
  struct relayed *next;
  mpn__batch *b;
  char *key;   /* message id + "\n" + channel spec: the same pair twice is delivered once */
  /* a held report (b is NULL until it is released) */
  mpn__channel ch;
  json_t *held;                 /* the message as the rank sent it; NULL when not (or no longer) held */
  int64_t held_since;
  int spool_fd;
  char spool_path[MPN__PATH_MAX + 256];
} relayed;

#define MAX_HELD 256      /* copies held at once (each an open spool file); beyond, they go at once */
#define MAX_CLAIMS 4096   /* distinct failures of one job; beyond, ranks fall back to node claims */

typedef struct claim {
  char signature[24];
  int reported;
} claim;

struct mpn_relay {
  mpn_sender *sender;
  const mpn__config *cfg;
  mpn__relay_server *server;
  pthread_mutex_t lock;
  relayed *list;
  long duplicates;
  mpn_relay_notice_fn observer;   /* the ranks' notices (hello, bye, report); NULL: dropped */
  void *observer_arg;
  atomic_long notices;            /* frames that were notices, not messages to deliver */
  int nheld;                      /* copies held so far (under lock) */
  claim *claims;                  /* under lock */
  int nclaims;
};

/* The sender's configuration: relayed messages use its spool and CA bundle. */

static int seen(mpn_relay *r, const char *key)
{
  for (relayed *x = r->list; x; x = x->next)
    if (!strcmp(x->key, key))
      return 1;
  return 0;
}

/* Under r->lock: the message on its channel, to the engine; the batch or NULL. */
static mpn__batch *send_now(mpn_relay *r, const mpn__channel *ch, const char *id, json_t *msg)
{
  char *text = json_dumps(msg, JSON_COMPACT);
  mpn_message *m = text ? mpn__message_from_json(text, id) : NULL;
  free(text);
  mpn__send_opts o;
  mpn__send_opts_from(&o, r->cfg);
  o.relay_mode = MPN__RELAY_OFF;   /* never back to a relay */
  mpn__batch *b = m ? mpn__submit(ch, 1, m, mpn__now_ns() + (int64_t)r->cfg->timeout_ms * 1000000, &o) : NULL;
  mpn_message_free(m);
  return b;
}

/* Under r->lock: a report to hold, kept in the spool too (the launcher may
 * die before it releases it). */
static int hold(mpn_relay *r, relayed *x, const char *id, const mpn__channel *ch, json_t *msg)
{
  char *text = json_dumps(msg, JSON_COMPACT);
  mpn_message *m = text ? mpn__message_from_json(text, id) : NULL;
  free(text);
  if (!m || mpn__channel_copy(&x->ch, ch) != MPN_OK) {
    mpn_message_free(m);
    return -1;
  }
  x->spool_fd = mpn__spool_prepare(r->cfg->spool_dir, NULL, 0) == 0
                    ? mpn__spool_write(r->cfg->spool_dir, m, ch, x->spool_path, sizeof x->spool_path)
                    : -1;
  mpn_message_free(m);
  x->held = json_incref(msg);
  x->held_since = mpn__now_ns();
  return 0;
}

/* Returns 0 when taken; *held says whether it is held (1) or went to the engine (0). */
static int submit(mpn_relay *r, const char *id, const char *spec, json_t *msg, int *held_out)
{
  char err[1024] = "";
  mpn__channel ch;
  int held = *held_out;
  *held_out = 0;
  relayed *x = calloc(1, sizeof *x);
  if (!x || asprintf(&x->key, "%s\n%s", id, spec) < 0) {
    free(x);
    return -1;
  }
  x->spool_fd = -1;
  if (mpn__parse_channel(spec, &ch, err, sizeof err) != MPN_OK) {
    mpn__log_error("relayed message %s: %s", id, err);
    free(x->key);
    free(x);
    return -1;
  }
  pthread_mutex_lock(&r->lock);
  int dup = seen(r, x->key), ok = dup;
  held = held && r->nheld < MAX_HELD && r->observer;   /* nobody to merge it: no reason to wait */
  r->nheld += held && !dup;
  if (!dup && held)
    ok = hold(r, x, id, &ch, msg) == 0;
  else if (!dup)
    ok = (x->b = send_now(r, &ch, id, msg)) != NULL;   /* not taken: the rank keeps its copy and tries again */
  if (ok && !dup) {
    x->next = r->list;
    r->list = x;
    x = NULL;
  }
  r->duplicates += dup;
  *held_out = held && ok && !dup;
  pthread_mutex_unlock(&r->lock);
  if (x) {
    mpn__channel_free(&x->ch);
    free(x->key);
    free(x);
  }
  mpn__channel_free(&ch);
  return ok ? 0 : -1;
}

/* Under r->lock: a held report goes, as the rank sent it or as `replacement`. */
static void release(mpn_relay *r, relayed *x, json_t *replacement)
{
  const char *id = x->key;   /* "id\nspec": the id is its first line */
  char mid[64];
  snprintf(mid, sizeof mid, "%.*s", (int)strcspn(id, "\n"), id);
  x->b = send_now(r, &x->ch, mid, replacement ? replacement : x->held);
  mpn__spool_done(x->spool_fd, x->spool_path, x->b != NULL);   /* sent: the engine keeps its own copy */
  x->spool_fd = -1;
  if (!x->b)
    mpn__log_error("held message %s could not be sent; it stays in %s", mid, x->spool_path);
  json_decref(x->held);
  x->held = NULL;
}

/* Under r->lock: the signature's entry, added when `add`; NULL if none (or full). */
static claim *find_claim(mpn_relay *r, const char *sig, int add)
{
  for (int i = 0; i < r->nclaims; i++)
    if (!strcmp(r->claims[i].signature, sig))
      return &r->claims[i];
  if (!add || r->nclaims >= MAX_CLAIMS)
    return NULL;
  if (!r->claims && !(r->claims = calloc(MAX_CLAIMS, sizeof *r->claims)))
    return NULL;
  claim *c = &r->claims[r->nclaims++];
  mpn__strlcpy(c->signature, sig, sizeof c->signature);
  c->reported = 0;
  return c;
}

/* "claim": 0 (yours), MPN__RELAY_CLAIMED or MPN__RELAY_REPORTED; 503 when full. */
static int on_claim(mpn_relay *r, json_t *o)
{
  const char *sig = json_string_value(json_object_get(o, "signature"));
  if (!sig || strlen(sig) >= sizeof r->claims[0].signature)
    return -1;
  pthread_mutex_lock(&r->lock);
  claim *c = find_claim(r, sig, 0);
  int rc = c ? (c->reported ? MPN__RELAY_REPORTED : MPN__RELAY_CLAIMED) : find_claim(r, sig, 1) ? 0 : -1;
  pthread_mutex_unlock(&r->lock);
  return rc;
}

/* A "report" notice: the claimer delivered; ranks waiting on it may end. */
static void claim_reported(mpn_relay *r, json_t *o)
{
  const char *sig = json_string_value(json_object_get(json_object_get(o, "message"), "signature"));
  if (!sig)
    return;
  pthread_mutex_lock(&r->lock);
  claim *c = find_claim(r, sig, 1);   /* an elected leader's report: later claimers hear "reported" */
  if (c)
    c->reported = 1;
  pthread_mutex_unlock(&r->lock);
}

/* A rank's notice (runtime/launcher_notices.c): for the observer, never the engine.
 * Accepted also without an observer: the rank has nothing to retry. */
static int notice(mpn_relay *r, const char *type, const char *plain, size_t len)
{
  atomic_fetch_add(&r->notices, 1);
  pthread_mutex_lock(&r->lock);
  mpn_relay_notice_fn fn = r->observer;
  void *fn_arg = r->observer_arg;
  pthread_mutex_unlock(&r->lock);
  char *text = fn ? strndup(plain, len) : NULL;
  if (text)
    fn(type, text, fn_arg);
  free(text);
  return 0;
}

/* The observer hears of a held report as of a notice: {"rank", "id", "message"};
 * once per channel it was sent on (the id is the same). */
static void held_notice(mpn_relay *r, const char *id, json_t *msg)
{
  json_t *rank = json_object_get(json_object_get(msg, "leader"), "rank");
  json_t *n = json_pack("{s:i, s:s, s:I, s:s, s:O}", "v", 1, "type", "held", "rank",
                        json_is_integer(rank) ? json_integer_value(rank) : 0, "id", id, "message", msg);
  char *text = n ? json_dumps(n, JSON_COMPACT) : NULL;
  pthread_mutex_lock(&r->lock);
  mpn_relay_notice_fn fn = r->observer;
  void *fn_arg = r->observer_arg;
  pthread_mutex_unlock(&r->lock);
  if (fn && text)
    fn("held", text, fn_arg);
  free(text);
  json_decref(n);
}

static int on_frame(const char *plain, size_t len, void *arg)
{
  json_t *o = json_loadb(plain, len, 0, NULL);
  const char *type = json_string_value(json_object_get(o, "type"));
  if (type && !strcmp(type, "claim")) {
    int rc = on_claim(arg, o);
    json_decref(o);
    return rc;
  }
  if (type && !strcmp(type, "report"))
    claim_reported(arg, o);
  if (type && strcmp(type, "deliver") != 0) {
    int rc = notice(arg, type, plain, len);
    json_decref(o);
    return rc;
  }
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *spec = json_string_value(json_object_get(o, "channel"));
  json_t *msg = json_object_get(o, "message");
  int held = json_is_true(json_object_get(o, "hold"));
  int rc = id && spec && json_is_object(msg) ? submit(arg, id, spec, msg, &held) : -1;
  if (rc == 0 && held)
    held_notice(arg, id, msg);
  json_decref(o);
  return rc;
}

/* Every IPv4 address of this node that is up, "a:port,b:port,...", the
 * loopback last (ranks on this node when it has no other): a rank takes the
 * first it reaches (deliver/relay_addr.c). Addresses, not this node's name,
 * which compute nodes may not resolve. */
static void own_addresses(int port, char *out, size_t cap)
{
  struct ifaddrs *ifs = NULL;
  size_t len = 0;
  out[0] = '\0';
  if (getifaddrs(&ifs) == 0)
    for (int loopback = 0; loopback < 2; loopback++)
      for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        char ip[INET_ADDRSTRLEN];
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP) ||
            !!(i->ifa_flags & IFF_LOOPBACK) != loopback ||
            !inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, ip, sizeof ip) ||
            len + strlen(ip) + 8 >= cap)
          continue;
        len += (size_t)snprintf(out + len, cap - len, "%s%s:%d", len ? "," : "", ip, port);
      }
  freeifaddrs(ifs);
  if (!out[0])
    snprintf(out, cap, "127.0.0.1:%d", port);
}

static mpn_code export_env(int port, const unsigned char key[32], char *err, size_t errlen)
{
  char addr[1024], hex[65];
  const char *h = mpn__setting_env(MPN__SET_RELAY_HOST);
  if (h)
    snprintf(addr, sizeof addr, "%.255s:%d", h, port);
  else
    own_addresses(port, addr, sizeof addr);
  mpn__hex_encode(key, 32, hex);
  if (setenv(mpn__setting(MPN__SET_RELAY_ADDR)->name, addr, 1) != 0 ||
      setenv(mpn__setting(MPN__SET_RELAY_KEY)->name, hex, 1) != 0) {
    mpn__add_err(err, errlen, "cannot set MPINOTIFY_RELAY_ADDR/KEY in the environment");
    return MPN_E_NO_MEMORY;
  }
  return MPN_OK;
}

mpn_code mpn_relay_start(mpn_sender *s, mpn_relay **out, char *err, size_t errlen)
{
  if (!s || !out)
    return MPN_E_INVALID_ARGUMENT;
  if (err && errlen)
    err[0] = '\0';
  mpn_relay *r = calloc(1, sizeof *r);
  if (!r)
    return MPN_E_NO_MEMORY;
  r->sender = s;
  r->cfg = mpn__sender_config(s);
  pthread_mutex_init(&r->lock, NULL);
  unsigned char key[32];
  int port = 0;
  mpn__relay_keygen(key);
  r->server = mpn__relay_server_start(key, on_frame, r, &port, err, errlen);
  mpn_code rc = r->server ? export_env(port, key, err, errlen) : MPN_E_RELAY;
  memset(key, 0, sizeof key);
  if (rc != MPN_OK) {
    mpn__relay_server_stop(r->server);
    free(r);
    return rc;
  }
  *out = r;
  return MPN_OK;
}

/* Whether `x` is a held copy of message `id` (its key is "id\nspec"). */
static int held_copy(const relayed *x, const char *id)
{
  size_t n = strlen(id);
  return x->held && !strncmp(x->key, id, n) && x->key[n] == '\n';
}

/* Under r->lock: a held copy another message says already goes nowhere. */
static void drop(relayed *x)
{
  mpn__spool_done(x->spool_fd, x->spool_path, 1);
  x->spool_fd = -1;
  json_decref(x->held);
  x->held = NULL;
}

/* Releases (with `replacement`, may be NULL) or drops every held copy of `id`. */
static mpn_code each_copy(mpn_relay *r, const char *id, json_t *replacement, int dropping)
{
  if (!r || !id)
    return MPN_E_INVALID_ARGUMENT;
  int found = 0;
  pthread_mutex_lock(&r->lock);
  for (relayed *x = r->list; x; x = x->next)
    if (held_copy(x, id)) {
      if (dropping)
        drop(x);
      else
        release(r, x, replacement);
      found++;
    }
  pthread_mutex_unlock(&r->lock);
  return found ? MPN_OK : MPN_E_INVALID_ARGUMENT;
}

mpn_code mpn_relay_release(mpn_relay *r, const char *id, const mpn_message *replacement)
{
  return each_copy(r, id, replacement ? (json_t *)replacement->doc : NULL, 0);
}

mpn_code mpn_relay_drop(mpn_relay *r, const char *id)
{
  return each_copy(r, id, NULL, 1);
}

int mpn_relay_covers(mpn_relay *r, const char *id)
{
  if (!r || !id)
    return 0;
  size_t n = strlen(id);
  int all = r->cfg->nchannels > 0;
  pthread_mutex_lock(&r->lock);
  for (int i = 0; all && i < r->cfg->nchannels; i++) {
    int found = 0;
    for (relayed *x = r->list; x && !found; x = x->next)
      found = held_copy(x, id) && !strcmp(x->key + n + 1, r->cfg->channels[i].spec);
    all = found;
  }
  pthread_mutex_unlock(&r->lock);
  return all;
}

int mpn_relay_release_older(mpn_relay *r, long age_ms)
{
  if (!r)
    return 0;
  int n = 0;
  int64_t before = mpn__now_ns() - (int64_t)(age_ms < 0 ? 0 : age_ms) * 1000000;
  pthread_mutex_lock(&r->lock);
  for (relayed *x = r->list; x; x = x->next)
    if (x->held && x->held_since <= before) {
      release(r, x, NULL);
      n++;
    }
  pthread_mutex_unlock(&r->lock);
  return n;
}

void mpn_relay_stop(mpn_relay *r, long timeout_ms, mpn_result_fn cb, void *arg)
{
  if (!r)
    return;
  mpn__relay_server_stop(r->server);   /* no new frames from here on */
  mpn_relay_release_older(r, 0);       /* what nobody released goes as the rank sent it */
  int64_t deadline = mpn__now_ns() + (int64_t)timeout_ms * 1000000;
  for (relayed *x = r->list; x; x = x->next)   /* their own budgets may end later: the exit's bound wins */
    if (x->b)
      mpn__batch_cut(x->b, deadline);
  for (relayed *x = r->list; x; x = x->next)
    if (x->b)
      mpn__batch_wait(x->b, deadline);
  while (r->list) {
    relayed *x = r->list;
    r->list = x->next;
    if (x->b) {
      mpn__batch_results(x->b, cb, arg);
      mpn__batch_release(x->b);
    }
    mpn__spool_done(x->spool_fd, x->spool_path, 0);
    json_decref(x->held);
    mpn__channel_free(&x->ch);
    free(x->key);
    free(x);
  }
  unsetenv(mpn__setting(MPN__SET_RELAY_KEY)->name);
  pthread_mutex_destroy(&r->lock);
  free(r->claims);
  free(r);
}

void mpn_relay_set_observer(mpn_relay *r, mpn_relay_notice_fn fn, void *arg)
{
  if (!r)
    return;
  pthread_mutex_lock(&r->lock);
  r->observer_arg = arg;
  r->observer = fn;
  pthread_mutex_unlock(&r->lock);
}

void mpn_relay_counts(const mpn_relay *r, long *accepted, long *rejected)
{
  long a = 0, j = 0;
  if (r) {
    mpn__relay_server_counts(r->server, &a, &j);
    a -= atomic_load(&((mpn_relay *)r)->notices);   /* messages only; C11's atomic_load takes non-const */
    a = a < 0 ? 0 : a;   /* a notice counted here before the server counted it */
  }
  if (accepted)
    *accepted = a;
  if (rejected)
    *rejected = j;
}
