/* discord.c - Discord webhooks (discord.com/api/webhooks/...). ?wait=true so
 * a message that is not saved returns an error; 429 carries retry_after. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const options[] = {"mention", NULL};

static int match(const char *host, const char *path)
{
  return (mpn__host_is(host, "discord.com") || mpn__host_is(host, "discordapp.com")) &&
         !strncmp(path, "/api/webhooks/", 14);
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  char content[2001];
  snprintf(content, sizeof content, "%s", text ? text : mpn__message_title(m));
  free(text);
  char *url = NULL;
  if (asprintf(&url, "%s%swait=true", ch->url, strchr(ch->url, '?') ? "&" : "?") < 0)
    return MPN_E_NO_MEMORY;
  mpn_code rc = mpn__json_post(a, strstr(ch->url, "wait=") ? ch->url : url, json_pack("{s:o}", "content", mpn__jstr(content)));
  free(url);
  return rc;
}

const mpn__kind mpn__kind_discord = {
  .name = "discord", .options = options, .rate_n = 5, .rate_window_ms = 2000,
  .match = match, .prepare = prepare,
};
