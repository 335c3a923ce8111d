/* feishu.c - Feishu / Lark custom bots (open.feishu.cn, open.larksuite.com).
 * Errors come as a non-zero "code" in the body; 100 per minute, 5 per second. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const options[] = {"secret", NULL};
static const char *const secrets[] = {"secret", NULL};
static const long long rate_codes[] = {11232, 0};
static const long long fatal_codes[] = {19021, 19022, 19024, 0};   /* signature, IP, keyword */

static int match(const char *host, const char *path)
{
  return (mpn__host_is(host, "open.feishu.cn") || mpn__host_is(host, "open.larksuite.com")) &&
         !strncmp(path, "/open-apis/bot/", 15);
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  json_t *o = json_pack("{s:s, s:{s:o}}", "msg_type", "text", "content", "text", mpn__jstr(text ? text : ""));
  free(text);
  const char *secret = mpn__channel_opt(ch, "secret");
  if (o && secret) {   /* signed bots: timestamp (seconds, a string) and sign in the body */
    long long ts = (long long)(mpn__wall_ns() / 1000000000);
    char tss[24];
    snprintf(tss, sizeof tss, "%lld", ts);
    char *sig = mpn__feishu_sign(secret, ts);
    json_object_set_new(o, "timestamp", json_string(tss));
    json_object_set_new(o, "sign", sig ? json_string(sig) : json_null());
    free(sig);
  }
  return mpn__json_post(a, ch->url, o);
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch;
  mpn__judge_body_code("code", "msg", rate_codes, fatal_codes, status, body, len, v);
}

const mpn__kind mpn__kind_feishu = {
  .name = "feishu", .options = options, .secrets = secrets, .rate_n = 5, .rate_window_ms = 1000,
  .match = match, .prepare = prepare, .judge = judge,
};
