/* telegram.c - Telegram bots: sendMessage to chat_id. The token is in the
 * URL's path (bot<TOKEN>); 429 carries parameters.retry_after. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *const options[] = {"chat_id", NULL};
static const char *const required[] = {"chat_id", NULL};

static int match(const char *host, const char *path)
{
  (void)path;
  return mpn__host_is(host, "api.telegram.org");
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  json_t *o = json_pack("{s:s, s:o}", "chat_id", mpn__channel_opt(ch, "chat_id"), "text",
                        mpn__jstr(text ? text : mpn__message_title(m)));
  free(text);
  return mpn__json_post(a, ch->url, o);
}

const mpn__kind mpn__kind_telegram = {
  .name = "telegram", .options = options, .required = required, .rate_n = 20, .rate_window_ms = 60000,
  .match = match, .prepare = prepare,
};
