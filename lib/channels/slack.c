/* slack.c - Slack incoming webhooks (hooks.slack.com): Block Kit blocks
 * (header, mrkdwn sections, context) plus a `text` fallback for
 * notifications. About one message per second per webhook; 429 with
 * Retry-After beyond that; errors are an HTTP status with a plain-text body
 * ("invalid_payload"), which mpn__judge_http puts in the detail.
 * Limits (reference/channels.md 2): header 150 characters, section text
 * 3000, fields 10 x 2000, 50 blocks, about 12,000 characters in all. */
#include "chat.h"

#include <stdio.h>

static const char *const options[] = {"mention", NULL};

#define HEADER_MAX 150
#define SECTION_MAX 2900   /* under 3000 with the section's own markup */
#define FIELD_MAX 1900
#define TOTAL_MAX 11000    /* Slack refuses messages near 13,000 characters of blocks */
#define RANKS_MAX 1000
#define PROCS_MAX 1000
#define FALLBACK_MAX 1000

/* A mention token: <!here>, <!channel>, <@U0123>, <!subteam^S1>, or the
 * words here, channel, everyone. */
static int bad_token(const char *t, size_t n, void *arg)
{
  (void)arg;
  if ((n == 4 && !strncmp(t, "here", 4)) || (n == 7 && !strncmp(t, "channel", 7)) ||
      (n == 8 && !strncmp(t, "everyone", 8)))
    return 0;
  if (n < 3 || t[0] != '<' || t[n - 1] != '>' || (t[1] != '@' && t[1] != '!') || memchr(t + 1, '<', n - 2) ||
      memchr(t + 1, '>', n - 2))
    return 1;
  return 0;
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  const char *m = mpn__channel_opt(ch, "mention");
  if (!m || !strcmp(m, "none"))
    return MPN_OK;
  if (strlen(m) > 500 || !m[strspn(m, " ,\t")] || chat_tokens(m, bad_token, NULL)) {
    mpn__add_err(err, errlen,
                 "channel \"%s\": mention=\"%.40s\" is not <!here>, <!channel>, <@USER>, <!subteam^GROUP>, "
                 "here, channel, everyone or none", ch->masked, m);
    return MPN_E_BAD_CONFIG;
  }
  return MPN_OK;
}

static int add_token(const char *t, size_t n, void *arg)
{
  mpn__buf *b = arg;
  const char *sep = b->len ? " " : "";
  if (t[0] == '<')
    mpn__buf_add(b, "%s%.*s", sep, (int)n, t);
  else
    mpn__buf_add(b, "%s<!%.*s>", sep, (int)n, t);
  return 0;
}

/* The mention for this message, malloc'd, or NULL: failures only. */
static char *mention_of(const mpn__channel *ch, const mpn__view *v)
{
  const char *m = mpn__channel_opt(ch, "mention");
  if (!v->failure || (m && !strcmp(m, "none")))
    return NULL;
  mpn__buf b = mpn__buf_make(64);
  chat_tokens(m ? m : "<!here>", add_token, &b);
  return b.p;
}

/* What a block's text costs, counted as Slack does after our escaping. */
static size_t cost(const char *s)
{
  return chat_measure(s, chat_cost_entities);
}

/* s escaped, at most `max` characters once escaped; malloc'd. */
static char *esc_fit(const char *s, size_t max)
{
  char *c = chat_fit(s, max, chat_cost_entities);
  char *e = chat_escape(c, 0);
  free(c);
  return e;
}

static json_t *mrkdwn(const char *text)
{
  return json_pack("{s:s, s:o}", "type", "mrkdwn", "text", mpn__jstr(text));
}

static void add_section(json_t *blocks, const char *text)
{
  json_array_append_new(blocks, json_pack("{s:s, s:o}", "type", "section", "text", mrkdwn(text)));
}

typedef struct build {
  json_t *blocks;
  size_t used;   /* characters in blocks so far */
} build;

/* "*Label*\n```\ntext\n```" in one section, the text within `max` characters. */
static void add_code(build *bd, const char *label, const char *text, size_t max)
{
  if (!text || !*text || max < 40)
    return;
  char *e = esc_fit(text, max - strlen(label) - 24);
  char *s = NULL;
  if (e && asprintf(&s, "*%s*\n```\n%s\n```", label, e) >= 0) {
    add_section(bd->blocks, s);
    bd->used += cost(s);
  }
  free(s);
  free(e);
}

/* The free text: as many sections as the budget allows. */
static void add_text(build *bd, const char *text, size_t max)
{
  if (!text || !*text || (max < 40 && max < cost(text)))
    return;
  char *c = chat_fit(text, max, chat_cost_entities);
  for (const char *p = c; p && *p;) {
    size_t n = chat_prefix(p, SECTION_MAX, chat_cost_entities);
    if (!n)
      break;
    char *part = strndup(p, n), *e = chat_escape(part, 0);
    if (e && *e)
      add_section(bd->blocks, e);
    bd->used += e ? cost(e) : 0;
    free(part);
    free(e);
    p += n;
  }
  free(c);
}

/* Severity and event, the mention, the title in full when the header clipped it. */
static void add_summary(build *bd, const mpn__view *v, const char *mention, int clipped)
{
  mpn__buf b = mpn__buf_make(256);
  if (!b.p)
    return;
  if (mention)
    mpn__buf_add(&b, "%s ", mention);
  if (clipped) {
    char *t = esc_fit(v->title, SECTION_MAX - 200);
    mpn__buf_add(&b, "*%s*\n", t ? t : "");
    free(t);
  }
  char *ev = esc_fit(v->event, 40);
  mpn__buf_add(&b, "*Severity:* %s  \xc2\xb7  *Event:* %s", v->severity, ev ? ev : "");
  free(ev);
  add_section(bd->blocks, b.p);
  bd->used += cost(b.p);
  free(b.p);
}

/* Facts as two-column fields, at most 10 per section. */
static void add_facts(build *bd, const mpn__view *v)
{
  json_t *fields = NULL;
  for (int i = 0; i <= v->nfacts; i++) {
    const char *label = i < v->nfacts ? v->facts[i].label : "Command";
    const char *value = i < v->nfacts ? v->facts[i].value : v->command;
    if (!value)
      continue;
    if (!fields)
      fields = json_array();
    char *e = esc_fit(value, i < v->nfacts ? FIELD_MAX - 40 : 300), *f = NULL;
    if (e && asprintf(&f, "*%s*\n%s", label, e) >= 0) {
      json_array_append_new(fields, mrkdwn(f));
      bd->used += cost(f);
    }
    free(f);
    free(e);
    if (json_array_size(fields) == 10) {
      json_array_append_new(bd->blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
      fields = NULL;
    }
  }
  if (fields)
    json_array_append_new(bd->blocks, json_pack("{s:s, s:o}", "type", "section", "fields", fields));
}

static json_t *context_block(const mpn_message *m, const mpn__view *v)
{
  char host[MPN__HOST_MAX], *line = NULL;
  chat_host(m, host, sizeof host);
  char *h = esc_fit(host, 100), *ts = esc_fit(v->timestamp ? v->timestamp : "", 40);
  json_t *b = NULL;
  if (asprintf(&line, "%s  \xc2\xb7  %s  \xc2\xb7  mpinotify %s", h ? h : "", ts ? ts : "", chat_version(m)) >= 0)
    b = json_pack("{s:s, s:[o]}", "type", "context", "elements", mrkdwn(line));
  free(line);
  free(h);
  free(ts);
  return b;
}

/* The notification text: mention, severity, title, a short summary. */
static json_t *fallback(const mpn__view *v, const char *mention)
{
  mpn__buf b = mpn__buf_make(256);
  if (!b.p)
    return json_string("mpinotify message");
  char sev[16];
  snprintf(sev, sizeof sev, "%s", v->severity);
  for (char *p = sev; *p; p++)
    *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  char *t = esc_fit(v->title, FALLBACK_MAX / 2);
  mpn__buf_add(&b, "%s%s[%s] %s", mention ? mention : "", mention ? " " : "", sev, t ? t : "");
  free(t);
  mpn__buf summary = mpn__buf_make(128);
  for (int i = 0; i < v->nfacts; i++)
    if (!strcmp(v->facts[i].label, "Ranks") && v->ranks)   /* "Rank 3 (1 of 4)": which, not only how many */
      mpn__buf_add(&summary, "%s%s %s (%s)", summary.len ? ", " : "", v->nranks == 1 ? "Rank" : "Ranks", v->ranks,
                   v->facts[i].value);
    else if (!strcmp(v->facts[i].label, "Ranks") || !strcmp(v->facts[i].label, "Hosts"))
      mpn__buf_add(&summary, "%s%s %s", summary.len ? ", " : "", v->facts[i].label, v->facts[i].value);
  if (summary.p && !summary.len && v->text)
    mpn__buf_add(&summary, "%.*s", (int)strcspn(v->text, "\n"), v->text);
  if (summary.p && summary.len) {
    char *s = esc_fit(summary.p, FALLBACK_MAX / 2 - 10);
    mpn__buf_add(&b, ": %s", s ? s : "");
    free(s);
  }
  free(summary.p);
  json_t *o = mpn__jstr(b.p);
  free(b.p);
  return o;
}

static json_t *payload(const mpn__channel *ch, const mpn_message *m, const mpn__view *v)
{
  char *mention = mention_of(ch, v);
  build bd = {json_array(), 0};
  char *marked = NULL;
  if (asprintf(&marked, "%s %s", chat_marker(v), v->title) < 0)
    marked = NULL;
  char *head = esc_fit(marked ? marked : v->title, HEADER_MAX);
  int clipped = marked && cost(marked) > HEADER_MAX;   /* the full title goes into the first section */
  json_array_append_new(bd.blocks, json_pack("{s:s, s:{s:s, s:o, s:b}}", "type", "header", "text", "type",
                                              "plain_text", "text", mpn__jstr(head ? head : ""), "emoji", 1));
  bd.used += head ? cost(head) : 0;
  free(head);
  free(marked);
  add_summary(&bd, v, mention, clipped);
  add_facts(&bd, v);
  if (v->ranks && v->nranks) {
    char *r = esc_fit(v->ranks, RANKS_MAX), *s = NULL;
    if (r && asprintf(&s, "*Rank list:* `%s`", r) >= 0) {
      add_section(bd.blocks, s);
      bd.used += cost(s);
    }
    free(s);
    free(r);
  }
  json_t *ctx = context_block(m, v);
  bd.used += 200;   /* the context block, appended last */
  size_t left = bd.used < TOTAL_MAX ? TOTAL_MAX - bd.used : 0;
  size_t procs = v->processes ? chat_measure(v->processes, chat_cost_entities) + 40 : 0;
  if (procs > PROCS_MAX)
    procs = PROCS_MAX;
  procs = procs < left / 4 ? procs : left / 4;
  left -= procs;
  size_t text = v->text ? cost(v->text) + 10 : 0, bt = v->backtrace ? cost(v->backtrace) + 40 : 0, gt, gb;
  chat_share(left, text, bt < SECTION_MAX ? bt : SECTION_MAX, &gt, &gb);
  add_text(&bd, v->text, gt);
  add_code(&bd, "Backtrace", v->backtrace, gb);
  add_code(&bd, "Processes", v->processes, procs);
  json_array_append_new(bd.blocks, ctx);
  json_t *o = json_pack("{s:o, s:o}", "text", fallback(v, mention), "blocks", bd.blocks);
  free(mention);
  return o;
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__view_payload(payload, ch, m);
  return o ? mpn__json_post(a, ch->url, o) : MPN_E_NO_MEMORY;
}

static const char *const hosts[] = {"hooks.slack.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_slack = {
  .form = "slack+https://... (or https://hooks.slack.com/...)",
  .name = "slack", .options = options, .rate_n = 1, .rate_window_ms = 1000,
  .hosts = hosts, .validate = validate, .prepare = prepare,
};
