/* slack.c - Slack incoming webhooks (hooks.slack.com). About one message per
 * second per webhook; 429 with Retry-After beyond that. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const options[] = {"mention", NULL};

static int match(const char *host, const char *path)
{
  (void)path;
  return mpn__host_is(host, "hooks.slack.com");
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  json_t *o = json_pack("{s:o}", "text", mpn__jstr(text ? text : mpn__message_title(m)));
  free(text);
  return mpn__json_post(a, ch->url, o);
}

const mpn__kind mpn__kind_slack = {
  .name = "slack", .options = options, .rate_n = 1, .rate_window_ms = 1000,
  .match = match, .prepare = prepare,
};
