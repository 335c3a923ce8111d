/* dingtalk.c - DingTalk custom robots (oapi.dingtalk.com/robot/send). Errors,
 * throttling included, come as a non-zero "errcode" in a 200 body; 20
 * messages per minute per robot. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const options[] = {"secret", "keyword", "at", "at_all", NULL};
static const char *const secrets[] = {"secret", NULL};
static const long long rate_codes[] = {130101, 0};
static const long long fatal_codes[] = {310000, 300001, 0};   /* signature, keyword, token */

static int match(const char *host, const char *path)
{
  return mpn__host_is(host, "oapi.dingtalk.com") && !strncmp(path, "/robot/send", 11);
}

/* Signed robots: &timestamp=<ms>&sign=<urlencode(base64(hmac))>, fresh per attempt. */
static char *signed_url(const mpn__channel *ch)
{
  const char *secret = mpn__channel_opt(ch, "secret");
  if (!secret)
    return strdup(ch->url);
  long long ts = (long long)(mpn__wall_ns() / 1000000);
  char *sig = mpn__dingtalk_sign(secret, ts), *url = NULL;
  if (!sig || asprintf(&url, "%s%ctimestamp=%lld&sign=%s", ch->url, strchr(ch->url, '?') ? '&' : '?', ts, sig) < 0)
    url = NULL;
  free(sig);
  return url;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  char *text = mpn__message_text(m, 0);
  json_t *o = json_pack("{s:s, s:{s:o, s:o}}", "msgtype", "markdown", "markdown", "title",
                        mpn__jstr(mpn__message_title(m)), "text", mpn__jstr(text ? text : ""));
  free(text);
  char *url = signed_url(ch);
  mpn_code rc = url ? mpn__json_post(a, url, o) : (json_decref(o), MPN_E_NO_MEMORY);
  free(url);
  return rc;
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch;
  mpn__judge_body_code("errcode", "errmsg", rate_codes, fatal_codes, status, body, len, v);
}

const mpn__kind mpn__kind_dingtalk = {
  .name = "dingtalk", .options = options, .secrets = secrets, .rate_n = 20, .rate_window_ms = 60000,
  .match = match, .prepare = prepare, .judge = judge,
};
