/* telegram.c - Telegram bots: sendMessage to chat_id with parse_mode HTML
 * (the title bold, facts, the backtrace in <pre>), every user string
 * escaped. The token is in the URL's path (bot<TOKEN>). Text is at most
 * 4096 characters after entity parsing: we count what is visible and stay
 * well under. Failures notify; other messages arrive silently. Errors:
 * {"ok":false,"error_code":N,"description":...}; 429 carries
 * parameters.retry_after (reference/channels.md 4d). */
#include "chat.h"

#include <stdio.h>

static const char *const options[] = {"chat_id", NULL};
static const char *const required[] = {"chat_id", NULL};

#define VISIBLE_MAX 3800   /* of 4096 */
#define TITLE_MAX 600
#define VALUE_MAX 200
#define RANKS_MAX 400
#define PROCS_MAX 500

/* A chat id is a number (groups are negative) or @channelusername. */
static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *id = mpn__channel_opt(ch, "chat_id");
  const char *digits = id && *id == '-' ? id + 1 : id;
  int ok = id && ((*digits && strspn(digits, "0123456789") == strlen(digits) && strlen(digits) <= 20) ||
                  (id[0] == '@' && id[1] && strlen(id) <= 64 &&
                   strspn(id + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
                       strlen(id + 1)));
  if (!ok) {
    mpn__add_err(err, errlen, "channel \"%s\": chat_id must be a number (-100... for groups) or @channelname",
                 ch->masked);
    return MPN_E_BAD_CONFIG;
  }
  return MPN_OK;
}

typedef struct tg {
  mpn__buf html;
  size_t visible;   /* UTF-16 units Telegram counts once the tags are parsed */
} tg;

/* open + escaped raw + close; only raw is visible. */
static void put(tg *t, const char *open, const char *raw, const char *close)
{
  char *e = chat_escape(raw, 1);
  mpn__buf_add(&t->html, "%s%s%s", open, e ? e : "", close);
  t->visible += chat_measure(raw, chat_cost_u16);
  free(e);
}

/* raw clipped to max visible characters, then put. */
static void put_fit(tg *t, const char *open, const char *raw, size_t max, const char *close)
{
  char *c = chat_fit(raw, max, chat_cost_u16);
  put(t, open, c ? c : "", close);
  free(c);
}

static void put_block(tg *t, const char *label, const char *text, size_t max)
{
  if (!text || !*text || max < 40)
    return;
  put(t, "\n<b>", label, "</b>\n");
  put_fit(t, "<pre>", text, max, "</pre>");
}

static char *html_text(const mpn_message *m, const mpn__view *v)
{
  tg t = {mpn__buf_make(1024), 0};
  if (!t.html.p)
    return NULL;
  put(&t, "", chat_marker(v), " ");
  put_fit(&t, "<b>", v->title, TITLE_MAX, "</b>\n");
  char *ev = chat_fit(v->event, 40, chat_cost_u16), *sub = NULL;
  if (asprintf(&sub, "%s \xc2\xb7 %s", v->severity, ev ? ev : "") >= 0)
    put(&t, "<i>", sub, "</i>\n");
  free(sub);
  free(ev);
  for (int i = 0; i < v->nfacts; i++) {
    put(&t, "<b>", v->facts[i].label, ":</b> ");
    put_fit(&t, "", v->facts[i].value, VALUE_MAX, "\n");
  }
  if (v->command)
    put_fit(&t, "<b>Command:</b> <code>", v->command, VALUE_MAX, "</code>\n");
  if (v->ranks && v->nranks)
    put_fit(&t, "<b>Rank list:</b> <code>", v->ranks, RANKS_MAX, "</code>\n");
  char host[MPN__HOST_MAX], *ctx = NULL;
  chat_host(m, host, sizeof host);
  if (asprintf(&ctx, "%s \xc2\xb7 %s \xc2\xb7 mpinotify %s", host, v->timestamp ? v->timestamp : "",
               chat_version(m)) < 0)
    ctx = NULL;
  size_t reserve = (ctx ? chat_measure(ctx, chat_cost_u16) : 0) + 60;   /* the line, labels, newlines */
  size_t left = t.visible + reserve < VISIBLE_MAX ? VISIBLE_MAX - t.visible - reserve : 0;
  size_t procs = v->processes ? chat_measure(v->processes, chat_cost_u16) : 0;
  procs = procs < PROCS_MAX ? procs : PROCS_MAX;
  procs = procs < left / 4 ? procs : left / 4;
  size_t text = v->text ? chat_measure(v->text, chat_cost_u16) : 0;
  size_t bt = v->backtrace ? chat_measure(v->backtrace, chat_cost_u16) : 0, gt, gb;
  chat_share(left - procs, text, bt, &gt, &gb);
  if (text && (gt >= text || gt > 40))
    put_fit(&t, "\n", v->text, gt, "\n");
  put_block(&t, "Backtrace", v->backtrace, gb);
  put_block(&t, "Processes", v->processes, procs);
  if (ctx)
    put(&t, "\n<i>", ctx, "</i>");
  free(ctx);
  return t.html.p;
}

/* The Bot API method is part of the URL; a bare .../bot<TOKEN> gets /sendMessage. */
static char *method_url(const char *url)
{
  size_t q = strcspn(url, "?");
  size_t n = q;
  while (n && url[n - 1] == '/')
    n--;
  char *out = NULL;
  if (n >= 12 && !strncmp(url + n - 12, "/sendMessage", 12))
    return strdup(url);
  if (asprintf(&out, "%.*s/sendMessage%s", (int)n, url, url + q) < 0)
    return NULL;
  return out;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  mpn__view *v = mpn__view_new(m);
  if (!v)
    return MPN_E_NO_MEMORY;
  char *text = html_text(m, v), *url = method_url(ch->url);
  json_t *o = text ? json_pack("{s:s, s:o, s:s, s:b, s:{s:b}}", "chat_id", mpn__channel_opt(ch, "chat_id"),
                               "text", mpn__jstr(text), "parse_mode", "HTML", "disable_notification",
                               !v->failure, "link_preview_options", "is_disabled", 1)
                   : NULL;
  mpn__view_free(v);
  free(text);
  mpn_code rc = o && url ? mpn__json_post(a, url, o) : (json_decref(o), MPN_E_NO_MEMORY);
  free(url);
  return rc;
}

/* As mpn__judge_http, with the service's own description in the detail. */
static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  mpn__judge_http(ch, status, body, len, v);
  if (v->code == MPN_OK)
    return;
  json_t *o = body && len ? json_loadb(body, len, 0, NULL) : NULL;
  const char *d = json_string_value(json_object_get(o, "description"));
  if (d)
    snprintf(v->detail, sizeof v->detail, "HTTP %ld: %.200s", status, d);
  json_decref(o);
}

static const char *const hosts[] = {"api.telegram.org", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_telegram = {
  .form = "telegram+https://... (or https://api.telegram.org/bot.../sendMessage?chat_id=...)",
  .name = "telegram", .options = options, .required = required, .rate_n = 20, .rate_window_ms = 60000,
  .hosts = hosts, .validate = validate, .prepare = prepare, .judge = judge,
};
