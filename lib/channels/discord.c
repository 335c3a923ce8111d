/* discord.c - Discord webhooks (discord.com/api/webhooks/...): one embed
 * coloured by severity, facts as inline fields, the text and backtrace in
 * the description. Sent with ?wait=true so a message that is not saved
 * returns an error; 429 carries retry_after (JSON) and Retry-After.
 * Limits (reference/channels.md 3): content 2000, title 256, description
 * 4096, 25 fields (name 256, value 1024), footer 2048, all embed text 6000.
 * Mentions only on failures, and only those allowed_mentions names. */
#include "chat.h"

#include <stdio.h>

static const char *const options[] = {"mention", NULL};

#define TITLE_MAX 256
#define DESC_MAX 4096
#define VALUE_MAX 1024
#define EMBED_MAX 5900   /* of 6000, a margin for Discord's own counting */
#define RANKS_MAX 600
#define PROCS_MAX 800

/* A mention token; its kind: 'e' @here/@everyone, 'u' <@ID>/<@!ID>, 'r' <@&ID>, 0 none of those. */
static int token_kind(const char *t, size_t n, const char **id, size_t *idn)
{
  if ((n == 5 && !strncmp(t, "@here", 5)) || (n == 9 && !strncmp(t, "@everyone", 9)) ||
      (n == 4 && !strncmp(t, "here", 4)) || (n == 8 && !strncmp(t, "everyone", 8)))
    return 'e';
  if (n < 4 || t[0] != '<' || t[1] != '@' || t[n - 1] != '>')
    return 0;
  int kind = t[2] == '&' ? 'r' : 'u';
  size_t skip = (t[2] == '&' || t[2] == '!') ? 3 : 2;
  *id = t + skip;
  *idn = n - skip - 1;
  if (*idn == 0 || *idn > 20 || strspn(*id, "0123456789") < *idn)
    return 0;
  return kind;
}

static int bad_token(const char *t, size_t n, void *arg)
{
  (void)arg;
  const char *id;
  size_t idn;
  return !token_kind(t, n, &id, &idn);
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *m = mpn__channel_opt(ch, "mention");
  if (!m || !strcmp(m, "none"))
    return MPN_OK;
  if (strlen(m) > 1000 || !m[strspn(m, " ,\t")] || chat_tokens(m, bad_token, NULL)) {
    mpn__add_err(err, errlen,
                 "channel \"%s\": mention=\"%.40s\" is not @here, @everyone, <@USERID>, <@&ROLEID> or none",
                 ch->masked, m);
    return MPN_E_BAD_CONFIG;
  }
  return MPN_OK;
}

typedef struct mentions {
  mpn__buf content;
  json_t *allowed;   /* {"parse": [...], "users": [...], "roles": [...]} */
} mentions;

static int add_token(const char *t, size_t n, void *arg)
{
  mentions *mt = arg;
  const char *id = NULL;
  size_t idn = 0;
  int kind = token_kind(t, n, &id, &idn);
  const char *sep = mt->content.len ? " " : "";
  if (kind == 'e') {
    mpn__buf_add(&mt->content, "%s%s%.*s", sep, t[0] == '@' ? "" : "@", (int)n, t);
    json_t *parse = json_object_get(mt->allowed, "parse");
    if (!json_array_size(parse))
      json_array_append_new(parse, json_string("everyone"));
  } else if (kind) {
    mpn__buf_add(&mt->content, "%s%.*s", sep, (int)n, t);
    const char *key = kind == 'r' ? "roles" : "users";
    json_t *list = json_object_get(mt->allowed, key);
    if (!list)
      json_object_set_new(mt->allowed, key, list = json_array());
    json_array_append_new(list, json_stringn(id, idn));
  }
  return 0;
}

/* Sets content and allowed_mentions: the mention on failures only; nobody
 * is pinged otherwise, not even a user named in the text. */
static void set_mentions(json_t *o, const mpn__channel *ch, const mpn__view *v)
{
  const char *m = mpn__channel_opt(ch, "mention");
  mentions mt = {mpn__buf_make(64), json_pack("{s:[]}", "parse")};
  if (v->failure && !(m && !strcmp(m, "none")))
    chat_tokens(m ? m : "@here", add_token, &mt);
  if (mt.content.p && mt.content.len)
    json_object_set_new(o, "content", mpn__jstr(mt.content.p));
  json_object_set_new(o, "allowed_mentions", mt.allowed);
  free(mt.content.p);
}

static long colour(const mpn__view *v)
{
  if (v->failure)
    return 0xE01E5A;   /* red */
  if (!strcmp(v->severity, "warning"))
    return 0xF2A33A;   /* orange */
  if (!strcmp(v->event, "test"))
    return 0x2EB67D;   /* green */
  return 0x36A3EB;     /* blue */
}

static size_t cost(const char *s)
{
  return chat_measure(s, chat_cost_u16);
}

typedef struct embed {
  json_t *fields;
  size_t used;   /* characters counted against EMBED_MAX */
} embed;

static void add_field(embed *e, const char *name, const char *value, int is_inline)
{
  if (!value)
    return;
  char *val = chat_fit(*value ? value : "-", VALUE_MAX, chat_cost_u16);
  if (val) {
    json_array_append_new(e->fields, json_pack("{s:s, s:o, s:b}", "name", name, "value", mpn__jstr(val),
                                               "inline", is_inline));
    e->used += cost(name) + cost(val);
  }
  free(val);
}

/* "```\ntext\n```" within max characters, as a field. */
static void add_code_field(embed *e, const char *name, const char *text, size_t max)
{
  if (!text || !*text)
    return;
  char *c = chat_fit(text, max - 8, chat_cost_u16), *f = NULL;
  if (c && asprintf(&f, "```\n%s\n```", c) >= 0)
    add_field(e, name, f, 0);
  free(f);
  free(c);
}

/* The description: the title in full if the title was clipped, the text,
 * the backtrace as a code block; within max characters. */
static char *description(const mpn__view *v, int clipped, size_t max)
{
  mpn__buf b = mpn__buf_make(256);
  if (!b.p)
    return NULL;
  if (clipped) {
    char *t = chat_fit(v->title, max / 4, chat_cost_u16);
    mpn__buf_add(&b, "**%s**\n\n", t ? t : "");
    free(t);
  }
  size_t left = max > cost(b.p) + 20 ? max - cost(b.p) - 20 : 0;
  size_t text = v->text ? cost(v->text) : 0, bt = v->backtrace ? cost(v->backtrace) + 10 : 0, gt, gb;
  chat_share(left, text, bt, &gt, &gb);
  if (text && (gt >= text || gt > 40)) {
    char *t = chat_fit(v->text, gt, chat_cost_u16);
    mpn__buf_add(&b, "%s", t ? t : "");
    free(t);
  }
  if (bt && gb > 40) {
    char *t = chat_fit(v->backtrace, gb - 10, chat_cost_u16);
    mpn__buf_add(&b, "%s```\n%s\n```", b.len ? "\n\n" : "", t ? t : "");
    free(t);
  }
  return b.p;
}

static json_t *payload(const mpn__channel *ch, const mpn_message *m, const mpn__view *v)
{
  embed e = {json_array(), 0};
  char *title = chat_fit(v->title, TITLE_MAX, chat_cost_u16);
  int clipped = cost(v->title) > TITLE_MAX;
  e.used += title ? cost(title) : 0;
  for (int i = 0; i < v->nfacts; i++)
    add_field(&e, v->facts[i].label, v->facts[i].value, 1);
  if (v->command) {
    char *c = chat_fit(v->command, 300, chat_cost_u16);
    add_field(&e, "Command", c, 0);
    free(c);
  }
  if (v->ranks && v->nranks) {
    char *r = chat_fit(v->ranks, RANKS_MAX, chat_cost_u16);
    add_field(&e, "Rank list", r, 0);
    free(r);
  }
  if (v->processes && e.used + PROCS_MAX < EMBED_MAX / 2)
    add_code_field(&e, "Processes", v->processes, PROCS_MAX);
  char host[MPN__HOST_MAX], *footer = NULL;
  chat_host(m, host, sizeof host);
  if (asprintf(&footer, "mpinotify %s \xc2\xb7 %s", chat_version(m), host) < 0)
    footer = NULL;
  e.used += footer ? cost(footer) : 0;
  size_t room = e.used < EMBED_MAX ? EMBED_MAX - e.used : 0;
  char *desc = description(v, clipped, room < DESC_MAX ? room : DESC_MAX);
  json_t *em = json_pack("{s:o, s:i, s:o}", "title", mpn__jstr(title), "color", (int)colour(v), "fields", e.fields);
  if (em && desc && *desc)
    json_object_set_new(em, "description", mpn__jstr(desc));
  if (em && footer)
    json_object_set_new(em, "footer", json_pack("{s:o}", "text", mpn__jstr(footer)));
  if (em && v->timestamp)
    json_object_set_new(em, "timestamp", mpn__jstr(v->timestamp));
  free(title);
  free(desc);
  free(footer);
  json_t *o = em ? json_pack("{s:[o]}", "embeds", em) : NULL;
  if (o)
    set_mentions(o, ch, v);
  return o;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__view_payload(payload, ch, m);
  if (!o)
    return MPN_E_NO_MEMORY;
  char *url = NULL;
  if (!strstr(ch->url, "wait=") && asprintf(&url, "%s%swait=true", ch->url, strchr(ch->url, '?') ? "&" : "?") < 0) {
    json_decref(o);
    return MPN_E_NO_MEMORY;
  }
  mpn_code rc = mpn__json_post(a, url ? url : ch->url, o);
  free(url);
  return rc;
}

static const char *const hosts[] = {"discord.com", "discordapp.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_discord = {
  .form = "discord+https://... (or https://discord.com/api/webhooks/...)",
  .name = "discord", .options = options, .rate_n = 5, .rate_window_ms = 2000,
  .hosts = hosts, .path_prefix = "/api/webhooks/", .validate = validate, .prepare = prepare,
};
