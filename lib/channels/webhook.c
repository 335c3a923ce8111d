/* webhook.c - the generic JSON webhook: the message's JSON (schema
 * mpinotify/1, README.md) as the body, POST or PUT, extra headers. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const options[] = {"method", "header", "secret", NULL};
static const char *const secrets[] = {"secret", "header", NULL};

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *m = mpn__channel_opt(ch, "method");
  if (m && strcmp(m, "POST") && strcmp(m, "PUT")) {
    mpn__add_err(err, errlen, "channel \"%s\": method=%.10s is neither POST nor PUT", ch->masked, m);
    return MPN_E_BAD_CONFIG;
  }
  for (int i = 0; i < ch->nopts; i++)
    if (!strcmp(ch->opts[i].key, "header") && !strchr(ch->opts[i].value, ':')) {
      mpn__add_err(err, errlen, "channel \"%s\": header=... must be \"Name: value\"", ch->masked);
      return MPN_E_BAD_CONFIG;
    }
  return MPN_OK;
}

/* header=Name:env:VAR keeps the value out of the URL too. */
static char *header_line(const mpn__opt *o)
{
  const char *colon = strchr(o->value, ':');
  const char *val = colon + 1 + strspn(colon + 1, " ");
  char *resolved = mpn__is_ref(val) ? mpn__resolve_ref(val, "header", NULL, 0) : NULL;
  char *line = NULL;
  if (asprintf(&line, "%.*s: %s", (int)(colon - o->value), o->value, resolved ? resolved : val) < 0)
    line = NULL;
  free(resolved);
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
  .name = "webhook",
  .options = options,
  .secrets = secrets,
  .validate = validate,
  .prepare = prepare,
};
