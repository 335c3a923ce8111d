/* feishu.c - Feishu / Lark custom bots (open.feishu.cn, open.larksuite.com):
 * an interactive card coloured by severity. Errors come as a non-zero "code"
 * in the body; 100 per minute, 5 per second; a body over 20 KB is refused, so
 * the long parts are shortened until the card fits FS_LIMIT. */
#include "channels/channels.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define FS_LIMIT 19000     /* bytes of the card; the signature adds < 100 */
#define FS_TITLE_MAX 2000  /* only an absurd title is cut: it is a fact */

static const char *const options[] = {"secret", "at_all", NULL};
static const char *const secrets[] = {"secret", NULL};
static const long long rate_codes[] = {11232, 0};
static const long long fatal_codes[] = {19021, 19022, 19024, 9499, 0};   /* signature, IP, keyword, bad request */

static int at_all(const mpn__channel *ch)
{
  const char *s = mpn__channel_opt(ch, "at_all");
  return s && (!strcmp(s, "yes") || !strcmp(s, "true") || !strcmp(s, "1"));
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *s = mpn__channel_opt(ch, "at_all");
  if (s && !at_all(ch) && strcmp(s, "no") && strcmp(s, "false") && strcmp(s, "0")) {
    mpn__add_err(err, errlen, "channel \"%s\": at_all=%.10s is neither yes nor no", ch->masked, s);
    return MPN_E_BAD_CONFIG;
  }
  return MPN_OK;
}

/* red: failures; orange: warnings; green: info that says something worked
 * (a channel test, a job that succeeded); blue: other information. */
static const char *template_of(const mpn_message *m, const mpn__view *v)
{
  const char *status = mpn__msg_str(m, "status");
  if (v->failure)
    return "red";
  if (!strcmp(v->severity, "warning"))
    return "orange";
  if (!strcmp(v->event, "test") || (status && (!strcmp(status, "ok") || !strcmp(status, "success"))))
    return "green";
  return "blue";
}

static void add_md(json_t *elements, const char *content)
{
  json_array_append_new(elements, json_pack("{s:s, s:{s:s, s:o}}", "tag", "div", "text", "tag", "lark_md",
                                            "content", mpn__jstr(content)));
}

/* Free text may not mention anyone: "<at" is broken with a zero-width space. */
static char *defused(const char *s)
{
  mpn__buf b = mpn__buf_make(256);
  if (!s || !b.p) {
    free(b.p);
    return NULL;
  }
  for (const char *at; (at = strstr(s, "<at")); s = at + 1)
    mpn__buf_add(&b, "%.*s<\xe2\x80\x8b", (int)(at - s), s);
  mpn__buf_add(&b, "%s", s);
  return b.p;
}

/* The card with its long parts (ranks, text, backtrace) within `room` bytes. */
static json_t *build(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room)
{
  json_t *el = json_array();
  mpn__buf b = mpn__buf_make(512);
  if (!el || !b.p) {
    json_decref(el);
    free(b.p);
    return NULL;
  }
  for (int i = 0; i < v->nfacts; i++)
    mpn__buf_add(&b, "%s**%s:** %s", i ? "\n" : "", v->facts[i].label, v->facts[i].value);
  if (v->nfacts)
    add_md(el, b.p);
  char *ranks = mpn__clip(v->ranks, room / 4, 0);
  size_t left = mpn__room_after(room, ranks);
  char *bt = mpn__clip(v->backtrace, v->text ? left / 2 : left, 0);
  char *text = mpn__clip(v->text, mpn__room_after(left, bt), 0), *safe = defused(text);
  b.len = 0;
  if (ranks) {
    mpn__buf_add(&b, "**Rank list:** %s", ranks);
    add_md(el, b.p);
  }
  if (safe && *safe)
    add_md(el, safe);
  b.len = 0;
  if (bt && *bt) {
    size_t n = strlen(bt);
    while (n && bt[n - 1] == '\n')
      n--;
    mpn__buf_add(&b, "**Backtrace**\n```\n%.*s\n```", (int)n, bt);
    add_md(el, b.p);
  }
  if (v->failure && at_all(ch))
    add_md(el, "<at id=all></at>");
  b.len = 0;
  mpn__buf_add(&b, "mpinotify \xc2\xb7 %s%s%s", v->event, v->timestamp ? " \xc2\xb7 " : "", v->timestamp ? v->timestamp : "");
  json_array_append_new(el, json_pack("{s:s, s:[{s:s, s:o}]}", "tag", "note", "elements", "tag", "plain_text",
                                      "content", mpn__jstr(b.p)));
  char *title = mpn__clip(v->title, FS_TITLE_MAX, 0);
  json_t *o = json_pack("{s:s, s:{s:{s:b}, s:{s:{s:s, s:o}, s:s}, s:o}}", "msg_type", "interactive", "card",
                        "config", "wide_screen_mode", 1, "header", "title", "tag", "plain_text", "content",
                        mpn__jstr(title), "template", template_of(m, v), "elements", el);
  free(title);
  free(ranks);
  free(bt);
  free(text);
  free(safe);
  free(b.p);
  return o;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__fit_message(build, ch, m, FS_LIMIT, FS_LIMIT);
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
  return o ? mpn__json_post(a, ch->url, o) : MPN_E_NO_MEMORY;
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch;
  mpn__judge_body_code("code", "msg", rate_codes, fatal_codes, status, body, len, v);
}

static const char *const hosts[] = {"open.feishu.cn", "open.larksuite.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_feishu = {
  .form = "feishu+https://... or lark+https://... (or https://open.feishu.cn/open-apis/bot/...)",
  .name = "feishu", .aliases = (const char *const[]){"lark", NULL}, .options = options, .secrets = secrets, .rate_n = 5, .rate_window_ms = 1000,
  .hosts = hosts, .path_prefix = "/open-apis/bot/", .validate = validate, .prepare = prepare, .judge = judge,
};
