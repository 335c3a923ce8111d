/* relay_client.c - the rank's side of the relay: when the direct route
 * cannot connect (compute nodes without internet), or when told to always
 * relay, the item goes to the launcher's relay instead, sealed with the job's
 * key (relay/seal.c). The frame carries the channel's spec as configured and
 * the message; the launcher resolves references in its own environment. */
#include "core/mpn.h"
#include "deliver/engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After a failed attempt: should the next one take the other route? */
int mpn__relay_switch(mpn__item *it, CURLcode code)
{
  const mpn__batch *b = it->batch;
  if (!b->has_relay || it->ch.kind->custom)   /* the launcher does not know the program's own kinds */
    return 0;
  if (it->route == MPN__ROUTE_DIRECT) {
    int no_route = it->last.code == MPN_E_CONNECT || it->last.code == MPN_E_DNS || code == CURLE_COULDNT_RESOLVE_PROXY;
    if (!no_route)
      return 0;
    mpn__log_debug("direct route to %s failed (%s); relaying through %s", it->ch.masked, it->last.detail, b->relay_addr);
    it->route = MPN__ROUTE_RELAY;
    return 1;
  }
  /* The relay refused or is unreachable: in auto mode the direct route is
   * worth another try, through the normal retry schedule. */
  if (b->relay_mode == MPN__RELAY_AUTO &&
      (it->last.code == MPN_E_RELAY || it->last.code == MPN_E_CONNECT || it->last.code == MPN_E_DNS))
    it->route = MPN__ROUTE_DIRECT;   /* "always" means always: no direct attempt, ever */
  return 0;
}

static char *payload(const mpn__batch *b, const mpn__item *it)
{
  json_t *o = json_pack("{s:i, s:s, s:s, s:O}", "v", 1, "id", b->id, "channel", it->ch.spec, "message",
                        (json_t *)b->msg->doc);
  char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}

mpn_code mpn__relay_prepare(const mpn__batch *b, const mpn__item *it, mpn__attempt *a)
{
  char *plain = payload(b, it);
  size_t len = 0;
  a->body = plain ? mpn__relay_seal(b->relay_key, plain, strlen(plain), &len) : NULL;
  free(plain);
  if (!a->body || asprintf(&a->url, "http://%s/relay", b->relay_addr) < 0) {
    a->url = NULL;
    return MPN_E_NO_MEMORY;
  }
  a->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  curl_easy_setopt(a->easy, CURLOPT_URL, a->url);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
  curl_easy_setopt(a->easy, CURLOPT_PROXY, "");   /* the launcher is inside the cluster, never behind a proxy */
  curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http");
  return MPN_OK;
}
