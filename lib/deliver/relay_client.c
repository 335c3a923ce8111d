/* relay_client.c - the rank's side of the relay: when the direct route
 * cannot connect (compute nodes without internet), or when told to always
 * relay, the item goes to the launcher's relay instead, sealed with the job's
 * key (seal.c). The frame carries the channel's spec as configured and
 * the message; the launcher resolves references in its own environment. */
#include "deliver/engine.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After a failed attempt: should the next one take the other route? */
int mpn__relay_switch(mpn__item *it)
{
  const mpn__batch *b = it->batch;
  if (!b->has_relay || it->ch.kind->custom)   /* the launcher does not know the program's own kinds */
    return 0;
  if (it->route == MPN__ROUTE_RELAY && b->hold && !it->unheld &&
      (b->relay_mode != MPN__RELAY_ALWAYS || it->ch.kind->local)) {
    /* the relay would only have held it: whatever went wrong, the rank sends it itself, now;
     * once: from here on the ordinary routes and their backoff apply */
    mpn__log_debug("the relay did not take %s for %s (%s); sending it directly", b->id, it->ch.masked, it->last.detail);
    it->route = it->ch.kind->local ? MPN__ROUTE_LOCAL : MPN__ROUTE_DIRECT;
    it->unheld = 1;
    return 1;
  }
  if (it->route == MPN__ROUTE_DIRECT) {
    int no_route = it->last.code == MPN_E_CONNECT || it->last.code == MPN_E_DNS;   /* a proxy not found too */
    if (!no_route)
      return 0;
    mpn__log_debug("direct route to %s failed (%s); relaying through %s", it->ch.masked, it->last.detail, b->relay_addr);
    it->route = MPN__ROUTE_RELAY;
    return 1;
  }
  /* The relay refused or is unreachable: in auto mode the direct route is
   * worth another try, through the normal retry schedule. */
  if (it->last.code == MPN_E_CONNECT)
    mpn__relay_forget();
  if (b->relay_mode == MPN__RELAY_AUTO &&
      (it->last.code == MPN_E_RELAY || it->last.code == MPN_E_CONNECT || it->last.code == MPN_E_DNS))
    it->route = MPN__ROUTE_DIRECT;   /* "always" means always: no direct attempt, ever */
  return 0;
}

static char *payload(const mpn__batch *b, const mpn__item *it)
{
  json_t *o = json_pack("{s:i, s:s, s:s, s:O, s:b}", "v", 1, "id", b->id, "channel", it->ch.spec, "message",
                        (json_t *)b->msg->doc, "hold", b->hold && !it->unheld);
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
  char addr[320];
  if (!a->body || asprintf(&a->url, "http://%s/relay", mpn__relay_pick(b->relay_addr, addr, sizeof addr)) < 0) {
    a->url = NULL;
    return MPN_E_NO_MEMORY;
  }
  mpn__attempt_relay(a, len);
  return MPN_OK;
}

/* A notice to the launcher: one attempt, outside the engine (the engine may
 * be busy with the very report the notice is about). The relay's HTTP
 * status, 0 when it did not answer. */
static long post(const char *url, const char *frame, size_t len, long timeout_ms)
{
  mpn__xfer_result r;
  long status = mpn__relay_post_once(url, frame, len, timeout_ms, &r);
  if (status < 0)
    return status;
  if (r.code == MPN_E_CONNECT || r.code == MPN_E_TIMEOUT)
    mpn__relay_forget();   /* another of the launcher's addresses may answer */
  if (r.code != MPN_OK)
    mpn__log_debug("notice to the launcher not sent: %s", r.error);
  else if (status != 200 && status != MPN__RELAY_CLAIMED && status != MPN__RELAY_REPORTED)
    mpn__log_debug("notice to the launcher refused: HTTP %ld", status);
  return status;
}

long mpn__relay_post(const char *addr, const unsigned char key[32], const char *plain, size_t len,
                     long timeout_ms)
{
  size_t flen = 0;
  char *frame = mpn__relay_seal(key, plain, len, &flen);
  char url[400], one[320];
  snprintf(url, sizeof url, "http://%s/relay", mpn__relay_pick(addr, one, sizeof one));
  long status = frame ? post(url, frame, flen, timeout_ms) : 0;
  free(frame);
  return status;
}
