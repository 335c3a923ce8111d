/* teams.c - Microsoft Teams through a Workflows (Power Automate) webhook: a
 * message with one Adaptive Card 1.4 (later versions fail to render there):
 * the title coloured by severity, the facts as a FactSet, the text, the
 * backtrace in monospace. 202 Accepted is success (mpn__judge_http takes
 * any 2xx). The whole body stays under 28 KB (reference/channels.md 4c). */
#include "chat.h"

#include <stdio.h>

#define BODY_MAX 27000   /* bytes, of the 28 KB a message may have */
#define TITLE_MAX 1000
#define VALUE_MAX 500
#define RANKS_MAX 2000
#define PROCS_MAX 3000
#define LONG_PARTS_MAX 20000   /* text and backtrace together, first try */

static const char *colour(const mpn__view *v)
{
  return v->failure ? "Attention" : !strcmp(v->severity, "warning") ? "Warning" : "Good";
}

static size_t bytes(const char *p, size_t k)
{
  (void)p;
  return k;
}

static json_t *text_block(const char *text)
{
  return json_pack("{s:s, s:o, s:b}", "type", "TextBlock", "text", mpn__jstr(text), "wrap", 1);
}

static json_t *fact(const char *title, const char *value, size_t max)
{
  char *v = chat_fit(value, max, bytes);
  json_t *f = json_pack("{s:s, s:o}", "title", title, "value", mpn__jstr(v));
  free(v);
  return f;
}

static void add_monospace(json_t *body, const char *label, const char *text, size_t max)
{
  if (!text || !*text || max < 40)
    return;
  json_t *l = text_block(label);
  json_object_set_new(l, "weight", json_string("Bolder"));
  json_object_set_new(l, "spacing", json_string("Medium"));
  json_array_append_new(body, l);
  char *c = chat_fit(text, max, bytes);
  json_t *b = text_block(c);
  json_object_set_new(b, "fontType", json_string("Monospace"));
  json_object_set_new(b, "spacing", json_string("None"));
  json_array_append_new(body, b);
  free(c);
}

/* The card with `room` bytes for the long parts (text, backtrace, processes). */
static json_t *card(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room)
{
  (void)ch;
  json_t *body = json_array();
  char *t = chat_fit(v->title, TITLE_MAX, bytes);
  json_t *title = text_block(t);
  free(t);
  json_object_set_new(title, "weight", json_string("Bolder"));
  json_object_set_new(title, "size", json_string("Large"));
  json_object_set_new(title, "color", json_string(colour(v)));
  json_array_append_new(body, title);
  char *ev = chat_fit(v->event, 40, bytes), *sub = NULL;
  if (asprintf(&sub, "%s \xc2\xb7 %s", v->severity, ev ? ev : "") >= 0) {
    json_t *s = text_block(sub);
    json_object_set_new(s, "isSubtle", json_true());
    json_object_set_new(s, "spacing", json_string("None"));
    json_array_append_new(body, s);
  }
  free(sub);
  free(ev);
  json_t *facts = json_array();
  for (int i = 0; i < v->nfacts; i++)
    json_array_append_new(facts, fact(v->facts[i].label, v->facts[i].value, VALUE_MAX));
  if (v->command)
    json_array_append_new(facts, fact("Command", v->command, VALUE_MAX));
  if (v->ranks && v->nranks)
    json_array_append_new(facts, fact("Rank list", v->ranks, RANKS_MAX < room / 4 ? RANKS_MAX : room / 4));
  if (json_array_size(facts))
    json_array_append_new(body, json_pack("{s:s, s:o}", "type", "FactSet", "facts", facts));
  else
    json_decref(facts);
  size_t procs = v->processes ? strlen(v->processes) : 0;
  procs = procs < PROCS_MAX ? procs : PROCS_MAX;
  procs = procs < room / 4 ? procs : room / 4;
  size_t text = v->text ? strlen(v->text) : 0, bt = v->backtrace ? strlen(v->backtrace) : 0, gt, gb;
  chat_share(room - procs, text, bt, &gt, &gb);
  if (text && (gt >= text || gt > 40)) {
    char *c = chat_fit(v->text, gt, bytes);
    json_array_append_new(body, text_block(c));
    free(c);
  }
  add_monospace(body, "Backtrace", v->backtrace, gb);
  add_monospace(body, "Processes", v->processes, procs);
  char host[MPN__HOST_MAX], *line = NULL;
  chat_host(m, host, sizeof host);
  if (asprintf(&line, "%s \xc2\xb7 %s \xc2\xb7 mpinotify %s", host, v->timestamp ? v->timestamp : "",
               chat_version(m)) >= 0) {
    json_t *ctx = text_block(line);
    json_object_set_new(ctx, "isSubtle", json_true());
    json_object_set_new(ctx, "size", json_string("Small"));
    json_array_append_new(body, ctx);
  }
  free(line);
  json_t *content = json_pack("{s:s, s:s, s:s, s:o, s:{s:s}}", "$schema",
                              "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
                              "version", "1.4", "body", body, "msteams", "width", "Full");
  return json_pack("{s:s, s:[{s:s, s:n, s:o}]}", "type", "message", "attachments", "contentType",
                   "application/vnd.microsoft.card.adaptive", "contentUrl", "content", content);
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__fit_message(card, ch, m, LONG_PARTS_MAX, BODY_MAX);
  return o ? mpn__json_post(a, ch->url, o) : MPN_E_NO_MEMORY;
}

static const char *const hosts[] = {"logic.azure.com", "powerautomate.com", "powerplatform.com", "webhook.office.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_teams = {
  .form = "teams+https://... (or a Power Automate or webhook.office.com URL)",
  .name = "teams", .rate_n = 4, .rate_window_ms = 1000, .hosts = hosts, .prepare = prepare,
};
