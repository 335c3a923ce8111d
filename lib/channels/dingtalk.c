/* dingtalk.c - DingTalk custom robots (oapi.dingtalk.com/robot/send): a
 * markdown message. Errors, throttling included, come as a non-zero
 * "errcode" in a 200 body; 20 messages per minute per robot; a body over
 * 20000 bytes is refused (errcode 460101), so the long parts are shortened
 * until the whole body fits. */
#include "channels/channels.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define DT_LIMIT 20000     /* bytes of the whole JSON body */
#define DT_TITLE_MAX 2000  /* only an absurd title is cut: it is a fact */

static const char *const options[] = {"secret", "keyword", "at", "at_all", NULL};
static const char *const secrets[] = {"secret", NULL};
static const long long rate_codes[] = {130101, 0};
static const long long fatal_codes[] = {310000, 300001, 460101, 0};   /* signature/keyword, token, too long */

static int is_yes(const char *s)
{
  return s && (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1"));
}

/* The value of the i-th option, or NULL: `at` may be repeated. */
static const char *opt_at(const mpn__channel *ch, int i)
{
  const mpn__opt *o = &ch->opts[i];
  return strcmp(o->key, "at") ? NULL : o->resolved ? o->resolved : o->value;
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *all = mpn__channel_opt(ch, "at_all");
  for (int i = 0; i < ch->nopts; i++) {
    const char *at = opt_at(ch, i);
    if (at && (!*at || at[strspn(at, "0123456789+-,")])) {
      mpn__add_err(err, errlen, "channel \"%s\": at=... must be mobile numbers (comma: %%2C in a URL)", ch->masked);
      return MPN_E_BAD_CONFIG;
    }
  }
  if (all && !is_yes(all) && strcmp(all, "no") && strcmp(all, "false") && strcmp(all, "0")) {
    mpn__add_err(err, errlen, "channel \"%s\": at_all=%.10s is neither yes nor no", ch->masked, all);
    return MPN_E_BAD_CONFIG;
  }
  return MPN_OK;
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

/* Mentions, for failures only: "at" with the mobiles (at=, repeatable,
 * each a comma-separated list), and their @tokens in the text (DingTalk
 * renders a mention only when both are there). */
static json_t *mentions(const mpn__channel *ch, const mpn__view *v, mpn__buf *text)
{
  int all = is_yes(mpn__channel_opt(ch, "at_all"));
  json_t *mobiles = json_array();
  for (int i = 0; v->failure && mobiles && i < ch->nopts; i++) {
    for (const char *p = opt_at(ch, i); p && *p;) {
      p += strspn(p, ",");
      size_t n = strcspn(p, ",");
      if (n) {
        json_array_append_new(mobiles, json_stringn(p, n));
        mpn__buf_add(text, "%s@%.*s", json_array_size(mobiles) == 1 ? "\n" : " ", (int)n, p);
      }
      p += n;
    }
  }
  if (!v->failure || (!json_array_size(mobiles) && !all)) {
    json_decref(mobiles);
    return NULL;
  }
  return json_pack("{s:o, s:b}", "atMobiles", mobiles, "isAtAll", all);
}

static const char *marker(const mpn__view *v)
{
  return v->failure ? "\xf0\x9f\x94\xb4" : !strcmp(v->severity, "warning") ? "\xf0\x9f\x9f\xa0" : "\xf0\x9f\x94\xb5";
}

/* What is left of `room` after s (a clipped part may exceed a tiny room). */
/* The message with its long parts (ranks, text, backtrace) within `room` bytes. */
static json_t *build(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room)
{
  (void)m;
  const char *kw = mpn__channel_opt(ch, "keyword");
  char *title = mpn__clip(v->title, DT_TITLE_MAX, 0), *head = NULL;
  if (!title || asprintf(&head, "%s %s%s%s%s", marker(v), kw ? "[" : "", kw ? kw : "", kw ? "] " : "", title) < 0)
    head = NULL;
  free(title);
  mpn__buf t = mpn__buf_make(1024);
  if (!head || !t.p) {
    free(head);
    free(t.p);
    return NULL;
  }
  mpn__buf_add(&t, "#### %s\n\n", head);   /* markdown.title is this heading, so the two never differ */
  for (int i = 0; i < v->nfacts; i++)
    mpn__buf_add(&t, "- **%s:** %s\n", v->facts[i].label, v->facts[i].value);
  char *ranks = mpn__clip(v->ranks, room / 4, 0);
  size_t left = mpn__room_after(room, ranks);
  char *bt = mpn__clip(v->backtrace, v->text ? left / 2 : left, 0);
  left = mpn__room_after(left, bt);
  char *text = mpn__clip(v->text, left, 0);
  if (ranks)
    mpn__buf_add(&t, "\n**Rank list:** %s\n", ranks);
  if (text)
    mpn__buf_add(&t, "\n%s\n", text);
  if (bt && *bt) {
    mpn__buf_add(&t, "\n**Backtrace**\n\n");
    char *save = NULL;
    for (char *line = strtok_r(bt, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
      mpn__buf_add(&t, "> %s\n", line);
  }
  json_t *at = mentions(ch, v, &t);
  json_t *o = json_pack("{s:s, s:{s:o, s:o}}", "msgtype", "markdown", "markdown", "title", mpn__jstr(head),
                        "text", mpn__jstr(t.p));
  if (o && at)
    json_object_set_new(o, "at", at);
  else
    json_decref(at);
  free(ranks);
  free(bt);
  free(text);
  free(head);
  free(t.p);
  return o;
}

/* Shortens the long parts until the whole body fits DT_LIMIT. */
static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__fit_message(build, ch, m, DT_LIMIT, DT_LIMIT);
  char *url = o ? signed_url(ch) : NULL;
  mpn_code rc = url ? mpn__json_post(a, url, o) : (json_decref(o), MPN_E_NO_MEMORY);
  free(url);
  return rc;
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch;
  mpn__judge_body_code("errcode", "errmsg", rate_codes, fatal_codes, status, body, len, v);
}

static const char *const hosts[] = {"oapi.dingtalk.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_dingtalk = {
  .form = "dingtalk+https://... (or https://oapi.dingtalk.com/robot/send?...)",
  .name = "dingtalk", .options = options, .secrets = secrets, .rate_n = 20, .rate_window_ms = 60000,
  .hosts = hosts, .path_prefix = "/robot/send", .validate = validate, .prepare = prepare, .judge = judge,
};
