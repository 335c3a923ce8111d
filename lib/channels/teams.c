/* teams.c - Microsoft Teams through a Workflows (Power Automate) webhook: an
 * Adaptive Card 1.4 message; 202 Accepted is success. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int match(const char *host, const char *path)
{
  (void)path;
  return mpn__host_is(host, "logic.azure.com") || mpn__host_is(host, "powerautomate.com") ||
         mpn__host_is(host, "powerplatform.com") || mpn__host_is(host, "webhook.office.com");
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  json_t *card = json_pack("{s:s, s:s, s:s, s:[{s:s, s:o, s:s, s:b}, {s:s, s:o, s:b}]}",
      "$schema", "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard", "version", "1.4",
      "body", "type", "TextBlock", "text", mpn__jstr(mpn__message_title(m)), "weight", "Bolder", "wrap", 1,
      "type", "TextBlock", "text", mpn__jstr(text ? text : ""), "wrap", 1);
  free(text);
  json_t *o = json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
                        "application/vnd.microsoft.card.adaptive", "contentUrl", "content", card);
  return mpn__json_post(a, ch->url, o);
}

const mpn__kind mpn__kind_teams = {
  .name = "teams", .rate_n = 4, .rate_window_ms = 1000, .match = match, .prepare = prepare,
};
