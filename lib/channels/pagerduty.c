/* pagerduty.c - PagerDuty Events API v2: the routing key in the body, a
 * dedup_key from the failure signature so repeats group into one incident. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const options[] = {"routing_key", NULL};
static const char *const secrets[] = {"routing_key", NULL};
static const char *const required[] = {"routing_key", NULL};

static int match(const char *host, const char *path)
{
  (void)path;
  return mpn__host_is(host, "events.pagerduty.com") || mpn__host_is(host, "events.eu.pagerduty.com");
}

static const char *pd_severity(const char *sev)
{
  return sev && (!strcmp(sev, "critical") || !strcmp(sev, "error") || !strcmp(sev, "warning")) ? sev : "info";
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  const char *sig = mpn__msg_str(m, "signature");
  char host[MPN__HOST_MAX] = "";
  gethostname(host, sizeof host - 1);
  json_t *o = json_pack("{s:s, s:s, s:{s:o, s:s, s:s, s:O}}", "routing_key", mpn__channel_opt(ch, "routing_key"),
                        "event_action", "trigger", "payload", "summary", mpn__jstr(mpn__message_title(m)),
                        "source", host, "severity", pd_severity(mpn__msg_str(m, "severity")),
                        "custom_details", (json_t *)m->doc);
  if (o && sig)
    json_object_set_new(o, "dedup_key", mpn__jstr(sig));
  return mpn__json_post(a, ch->url, o);
}

const mpn__kind mpn__kind_pagerduty = {
  .name = "pagerduty", .options = options, .secrets = secrets, .required = required,
  .rate_n = 120, .rate_window_ms = 60000, .match = match, .prepare = prepare,
};
