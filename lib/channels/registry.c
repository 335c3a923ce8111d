/* registry.c - the table of channel kinds, recognising a service by its own
 * webhook host, and what every HTTP channel shares: a JSON POST and reading
 * HTTP answers (status, Retry-After, a JSON retry_after). */
#include "channels/channels.h"

#include <curl/curl.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mpn__kind mpn__kind_console, mpn__kind_webhook, mpn__kind_slack, mpn__kind_discord,
    mpn__kind_dingtalk, mpn__kind_feishu, mpn__kind_teams, mpn__kind_telegram, mpn__kind_pagerduty,
    mpn__kind_email;

static const mpn__kind *const kinds[] = {
  &mpn__kind_webhook, &mpn__kind_slack, &mpn__kind_discord, &mpn__kind_dingtalk, &mpn__kind_feishu,
  &mpn__kind_teams, &mpn__kind_telegram, &mpn__kind_pagerduty, &mpn__kind_email, &mpn__kind_console,
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static int is(const char *word, const char *s, size_t len)
{
  return strlen(word) == len && !strncmp(word, s, len);
}

static int in(const char *const *list, const char *s, size_t len)
{
  for (; list && *list; list++)
    if (is(*list, s, len))
      return 1;
  return 0;
}

const mpn__kind *mpn__kind_by_name(const char *name, size_t len)
{
  for (size_t i = 0; i < NKINDS; i++)
    if (is(kinds[i]->name, name, len) || in(kinds[i]->aliases, name, len))
      return kinds[i];
  return mpn__custom_kind(name, len);
}

const mpn__kind *mpn__kind_by_scheme(const char *url)
{
  size_t n = strcspn(url, ":");
  for (size_t i = 0; i < NKINDS; i++)
    if (in(kinds[i]->schemes, url, n) && (kinds[i]->local || !strncmp(url + n, "://", 3)))
      return kinds[i];
  return NULL;
}

int mpn__kind_reserved(const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; i < NKINDS; i++)
    if (is(kinds[i]->name, name, n) || in(kinds[i]->aliases, name, n) || in(kinds[i]->schemes, name, n))
      return 1;
  return 0;
}

/* host is domain or a subdomain of it */
static int host_is(const char *host, const char *domain)
{
  size_t h = strlen(host), d = strlen(domain);
  return h >= d && !strcasecmp(host + h - d, domain) && (h == d || host[h - d - 1] == '.');
}

static int matches(const mpn__kind *k, const char *host, const char *path)
{
  if (k->path_prefix && strncmp(path, k->path_prefix, strlen(k->path_prefix)))
    return 0;
  for (const char *const *h = k->hosts; h && *h; h++)
    if (host_is(host, *h))
      return 1;
  return 0;
}

const mpn__kind *mpn__kind_by_host(const char *host, const char *path)
{
  for (size_t i = 0; i < NKINDS; i++)
    if (matches(kinds[i], host, path))
      return kinds[i];
  return NULL;
}

/* How each kind is written, from the table: a local kind's schemes
 * ("console://"); "NAME+" and its aliases' for kinds whose only schemes are
 * http(s) or none (then http:// or https://); the other schemes ("smtp://"). */
static char kind_names[512];

static void add_name(size_t *n, const char *fmt, const char *a, const char *b)
{
  int w = snprintf(kind_names + *n, sizeof kind_names - *n, fmt, *n ? ", " : "", a, b);
  if (w > 0 && *n + (size_t)w < sizeof kind_names)
    *n += (size_t)w;
}

static int http(const char *scheme)
{
  return !strcmp(scheme, "http") || !strcmp(scheme, "https");
}

static int own_scheme(const mpn__kind *k)   /* a scheme other than http(s) */
{
  for (const char *const *s = k->schemes; s && *s; s++)
    if (!http(*s))
      return 1;
  return 0;
}

static void add_schemes(size_t *n, const mpn__kind *k)
{
  for (const char *const *s = k->schemes; s && *s; s++)
    if (!http(*s))
      add_name(n, "%s%s%s", *s, "://");
}

static void make_kind_names(void)
{
  size_t n = 0;
  for (size_t i = 0; i < NKINDS; i++)
    if (kinds[i]->local)
      add_schemes(&n, kinds[i]);
  for (size_t i = 0; i < NKINDS; i++) {
    if (kinds[i]->local || own_scheme(kinds[i]))
      continue;
    add_name(&n, "%s%s%s", kinds[i]->name, "+");
    for (const char *const *a = kinds[i]->aliases; a && *a; a++)
      add_name(&n, "%s%s%s", *a, "+");
  }
  int w = snprintf(kind_names + n, sizeof kind_names - n, " (each followed by http:// or https://)");
  n += w > 0 && n + (size_t)w < sizeof kind_names ? (size_t)w : 0;
  for (size_t i = 0; i < NKINDS; i++)
    if (!kinds[i]->local)
      add_schemes(&n, kinds[i]);
}

static mpn_channel_kind public_kinds[NKINDS];
static pthread_once_t public_once = PTHREAD_ONCE_INIT;

static void fill_public_kinds(void)
{
  for (size_t i = 0; i < NKINDS; i++)
    public_kinds[i] = (mpn_channel_kind){kinds[i]->name, kinds[i]->form};
}

const mpn_channel_kind *mpn_channel_kind_at(int i)
{
  if (i < 0 || (size_t)i >= NKINDS)
    return NULL;
  pthread_once(&public_once, fill_public_kinds);
  return &public_kinds[i];
}

const char *mpn__kind_names(void)
{
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, make_kind_names);
  return kind_names;
}

int mpn__json_body_int(const char *body, size_t len, const char *key, long long *out)
{
  json_t *o = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  json_t *v = json_object_get(o, key);
  int found = json_is_integer(v) || (json_is_string(v) && *json_string_value(v));
  if (json_is_integer(v))
    *out = json_integer_value(v);
  else if (found)
    *out = strtoll(json_string_value(v), NULL, 10);
  json_decref(o);
  return found;
}

double mpn__json_retry_after(const char *body, size_t len)
{
  json_t *o = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  json_t *v = json_object_get(o, "retry_after");           /* Discord */
  if (!v)
    v = json_object_get(json_object_get(o, "parameters"), "retry_after");   /* Telegram */
  double s = json_is_number(v) ? json_number_value(v) : -1;
  json_decref(o);
  return s;
}

/* The first line of a body, printable, for an error message. */
static void body_hint(const char *body, size_t len, char *out, size_t cap)
{
  size_t n = 0;
  for (size_t i = 0; body && i < len && n + 1 < cap && n < 120 && body[i] != '\n'; i++)
    out[n++] = (body[i] >= 32 && body[i] < 127) ? body[i] : '?';
  out[n] = '\0';
}

void mpn__judge_http(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch;
  if (status >= 200 && status < 300) {
    v->code = MPN_OK;
    return;
  }
  char hint[128];
  body_hint(body, len, hint, sizeof hint);
  snprintf(v->detail, sizeof v->detail, "HTTP %ld%s%s", status, hint[0] ? ": " : "", hint);
  v->code = status == 429 ? MPN_E_RATE_LIMITED : MPN_E_HTTP_STATUS;
  v->retry = status == 408 || status == 429 || status >= 500;
  double ra = mpn__json_retry_after(body, len);
  if (ra >= 0 && ra < 86400)
    v->retry_after_ms = (long)(ra * 1000);
}

/* Reads a service that answers 200 with an error code in the body
 * (DingTalk "errcode", Feishu "code"): `codes` lists the rate-limit codes,
 * which are retried later; other non-zero codes are retried with backoff
 * unless listed in `fatal`, which no retry can fix (bad signature, keyword). */
void mpn__judge_body_code(const char *key, const char *msg_key, const long long *rate_codes,
                          const long long *fatal, long status, const char *body, size_t len, mpn__verdict *v)
{
  mpn__judge_http(NULL, status, body, len, v);
  long long code = 0;
  if (v->code != MPN_OK)
    return;
  if (!mpn__json_body_int(body, len, key, &code)) {   /* a 200 that is not the service's answer (a proxy's page) */
    snprintf(v->detail, sizeof v->detail, "HTTP %ld without the service's \"%s\" in the answer", status, key);
    v->code = MPN_E_SERVICE;
    v->retry = 1;
    return;
  }
  if (code == 0)
    return;
  json_t *o = json_loadb(body, len, 0, NULL);
  const char *msg = json_string_value(json_object_get(o, msg_key));
  snprintf(v->detail, sizeof v->detail, "%s %lld: %.150s", key, code, msg ? msg : "");
  json_decref(o);
  v->code = MPN_E_SERVICE;
  v->retry = 1;
  for (; rate_codes && *rate_codes; rate_codes++)
    if (*rate_codes == code)
      v->code = MPN_E_RATE_LIMITED;
  for (; fatal && *fatal; fatal++)
    if (*fatal == code)
      v->retry = 0;
}

mpn_code mpn__json_post(mpn__attempt *a, const char *url, void *doc)
{
  a->url = strdup(url);
  a->body = json_dumps((json_t *)doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
  json_decref((json_t *)doc);
  if (!a->url || !a->body)
    return MPN_E_NO_MEMORY;
  a->headers = curl_slist_append(NULL, "Content-Type: application/json; charset=utf-8");
  curl_easy_setopt(a->easy, CURLOPT_URL, a->url);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(a->body));
  curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
  return MPN_OK;
}

size_t mpn__room_after(size_t room, const char *s)
{
  size_t n = s ? strlen(s) : 0;
  return n < room ? room - n : 0;
}

/* JSON escapes make a body's size known only once dumped: build with room
 * for the long parts, shrink the room in proportion until the body fits. */
static void *fit_json(mpn__build_fn build, const mpn__channel *ch, const mpn_message *m, const mpn__view *v,
                      size_t room, size_t limit)
{
  for (;;) {
    json_t *o = build(ch, m, v, room);
    size_t n = o ? json_dumpb(o, NULL, 0, JSON_PRESERVE_ORDER | JSON_COMPACT) : 0;
    if (!o || n <= limit || room == 0)
      return o;
    json_decref(o);
    room = room * limit / n > 64 ? room * limit / n - 64 : 0;
  }
}

void *mpn__view_payload(mpn__payload_fn fn, const mpn__channel *ch, const mpn_message *m)
{
  mpn__view *v = mpn__view_new(m);
  void *o = v ? fn(ch, m, v) : NULL;
  mpn__view_free(v);
  return o;
}

void *mpn__fit_message(mpn__build_fn build, const mpn__channel *ch, const mpn_message *m, size_t room,
                       size_t limit)
{
  mpn__view *v = mpn__view_new(m);
  void *o = v ? fit_json(build, ch, m, v, room, limit) : NULL;
  mpn__view_free(v);
  return o;
}
