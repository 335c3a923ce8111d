/* webhook.c - the generic JSON webhook: the message's JSON (schema
 * mpinotify/1, README.md) as the body, POST or PUT, extra headers. */
#include "channels/channels.h"

#include <curl/curl.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const options[] = {"method", "header", "secret", NULL};
static const char *const secrets[] = {"secret", "header", NULL};

/* A header option as sent: its reference (header=Name:env:VAR, or a whole
 * header=env:VAR holding "Name: value") was resolved when the channel was
 * parsed, so a missing variable is a start-up error, not a silent literal. */
static const char *header_text(const mpn__opt *o)
{
  return o->resolved ? o->resolved : o->value;
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *m = mpn__channel_opt(ch, "method");
  if (m && strcmp(m, "POST") && strcmp(m, "PUT")) {
    mpn__add_err(err, errlen, "channel \"%s\": method must be POST or PUT", ch->masked);
    return MPN_E_BAD_CONFIG;
  }
  for (int i = 0; i < ch->nopts; i++) {
    const char *h = header_text(&ch->opts[i]), *colon = strchr(h, ':');
    if (!strcmp(ch->opts[i].key, "header") && (!colon || colon == h || strpbrk(h, "\r\n"))) {
      mpn__add_err(err, errlen, "channel \"%s\": header=... must be \"Name: value\" on one line", ch->masked);
      return MPN_E_BAD_CONFIG;
    }
  }
  return MPN_OK;
}

static char *header_line(const mpn__opt *o)
{
  const char *h = header_text(o), *colon = strchr(h, ':');
  char *line = NULL;
  if (asprintf(&line, "%.*s: %s", (int)(colon - h), h, colon + 1 + strspn(colon + 1, " ")) < 0)
    line = NULL;
  return line;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  mpn_code rc = mpn__json_post(a, ch->url, json_incref((json_t *)m->doc));
  const char *method = mpn__channel_opt(ch, "method");
  if (method && !strcmp(method, "PUT"))
    curl_easy_setopt(a->easy, CURLOPT_CUSTOMREQUEST, "PUT");
  char idh[80];
  snprintf(idh, sizeof idh, "webhook-id: %s", m->id);   /* stable across retries: the receiver can dedupe */
  a->headers = curl_slist_append(a->headers, idh);
  const char *secret = mpn__channel_opt(ch, "secret");
  if (rc == MPN_OK && secret) {   /* Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" */
    long long ts = (long long)(mpn__wall_ns() / 1000000000);
    char *sig = mpn__stdwebhook_sign(secret, m->id, ts, a->body), line[64];
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    a->headers = curl_slist_append(a->headers, line);
    char *sigh = NULL;
    if (sig && asprintf(&sigh, "webhook-signature: %s", sig) >= 0)
      a->headers = curl_slist_append(a->headers, sigh);
    free(sigh);
    free(sig);
  }
  for (int i = 0; rc == MPN_OK && i < ch->nopts; i++) {
    if (strcmp(ch->opts[i].key, "header"))
      continue;
    char *line = header_line(&ch->opts[i]);
    if (line)
      a->headers = curl_slist_append(a->headers, line);
    free(line);
  }
  curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
  return rc;
}

const mpn__kind mpn__kind_webhook = {
  .form = "webhook+https://... (also any https:// URL no other kind claims: a JSON POST)",
  .name = "webhook",
  .schemes = (const char *const[]){"http", "https", NULL},
  .options = options,
  .secrets = secrets,
  .validate = validate,
  .prepare = prepare,
  .idempotent = 1,   /* webhook-id lets the receiver drop a repeat */
};
