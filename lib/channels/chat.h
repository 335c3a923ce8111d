/* chat.h - text helpers shared by the chat channels (slack.c, discord.c,
 * teams.c, telegram.c): escaping, measuring text the way a service counts
 * it, clipping the long parts to a budget, the host and version line.
 * Private to lib/channels; static inline so each file takes what it uses. */
#ifndef MPN_CHANNELS_CHAT_H
#define MPN_CHANNELS_CHAT_H

#include "channels/channels.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* What one character costs in a service's count: p is its first byte, k its
 * length in bytes (1..4). */
typedef size_t (*chat_cost)(const char *p, size_t k);

/* UTF-16 code units: what JavaScript (Discord) and Telegram count. */
static inline size_t chat_cost_u16(const char *p, size_t k)
{
  (void)p;
  return k == 4 ? 2 : 1;
}

/* Characters after &, <, > became entities (Slack's mrkdwn), in UTF-16 units. */
static inline size_t chat_cost_entities(const char *p, size_t k)
{
  return *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : k == 4 ? 2 : 1;
}

static inline size_t chat_char_bytes(const char *p)
{
  size_t k = 1;
  while (p[k] && ((unsigned char)p[k] & 0xc0) == 0x80)
    k++;
  return k;
}

static inline size_t chat_measure(const char *s, chat_cost cost)
{
  size_t n = 0;
  for (size_t i = 0; s && s[i];) {
    size_t k = chat_char_bytes(s + i);
    n += cost(s + i, k);
    i += k;
  }
  return n;
}

/* A malloc'd copy of s costing at most `max`, clipped by mpn__clip (at a
 * line where possible, ending in "... (shortened)"), without trailing line
 * breaks. NULL stays NULL. */
static inline char *chat_fit(const char *s, size_t max, chat_cost cost)
{
  if (!s)
    return NULL;
  size_t n = max;
  for (;;) {
    char *c = mpn__clip(s, n, 1);
    size_t m = c ? chat_measure(c, cost) : 0;
    if (!c || m <= max || n <= 20) {
      for (size_t len = c ? strlen(c) : 0; len && c[len - 1] == '\n'; len--)
        c[len - 1] = '\0';
      return c;
    }
    free(c);
    n -= (m - max < n - 20) ? m - max : n - 20;
  }
}

/* Bytes of the longest prefix of s costing at most `max`; it ends after a
 * line break when one lies in its second half. */
static inline size_t chat_prefix(const char *s, size_t max, chat_cost cost)
{
  size_t i = 0, used = 0, line = 0;
  while (s[i]) {
    size_t k = chat_char_bytes(s + i), c = cost(s + i, k);
    if (used + c > max)
      break;
    used += c;
    i += k;
    if (s[i - 1] == '\n')
      line = i;
  }
  return s[i] && line > i / 2 ? line : i;
}

/* Splits a budget between two parts needing a and b: each gets what it
 * needs if both fit, else the smaller keeps what it needs up to half. */
static inline void chat_share(size_t budget, size_t a, size_t b, size_t *ga, size_t *gb)
{
  if (a + b <= budget) {
    *ga = a;
    *gb = b;
  } else if (a <= budget / 2) {
    *ga = a;
    *gb = budget - a;
  } else if (b <= budget / 2) {
    *gb = b;
    *ga = budget - b;
  } else {
    *ga = budget / 2;
    *gb = budget - budget / 2;
  }
}

/* &, <, > (and " when `quote`) as HTML entities: Slack's and Telegram's escaping. */
static inline char *chat_escape(const char *s, int quote)
{
  if (!s)
    return NULL;
  mpn__buf b = mpn__buf_make(strlen(s) + 16);
  if (!b.p)
    return NULL;
  for (const char *p = s; *p;) {
    size_t n = strcspn(p, quote ? "&<>\"" : "&<>");
    mpn__buf_add(&b, "%.*s", (int)n, p);
    p += n;
    if (!*p)
      break;
    mpn__buf_add(&b, "%s", *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : "&quot;");
    p++;
  }
  return b.p;
}

/* The host a message comes from: the reporting rank's for a crash, this
 * machine's otherwise. */
static inline void chat_host(const mpn_message *m, char *out, size_t cap)
{
  const char *h = json_string_value(json_object_get(json_object_get((json_t *)m->doc, "leader"), "hostname"));
  if (h) {
    mpn__strlcpy(out, h, cap);
    return;
  }
  out[0] = '\0';
  if (gethostname(out, cap - 1) != 0)
    mpn__strlcpy(out, "unknown host", cap);
  out[cap - 1] = '\0';
}

static inline const char *chat_version(const mpn_message *m)
{
  const char *v = mpn__msg_str(m, "mpinotify_version");
  return v ? v : MPN_VERSION_STRING;
}

/* A severity marker for services without colour (Slack, Telegram). */
static inline const char *chat_marker(const mpn__view *v)
{
  if (v->failure)
    return "\xf0\x9f\x94\xb4";   /* red circle */
  if (!strcmp(v->severity, "warning"))
    return "\xf0\x9f\x9f\xa0";   /* orange circle */
  if (!strcmp(v->event, "test"))
    return "\xf0\x9f\x9f\xa2";   /* green circle */
  return "\xf0\x9f\x94\xb5";     /* blue circle */
}

/* Splits a mention option into tokens (white space or commas); calls fn on
 * each; returns the first non-zero result. */
static inline int chat_tokens(const char *s, int (*fn)(const char *tok, size_t n, void *arg), void *arg)
{
  for (const char *p = s; p && *p;) {
    p += strspn(p, " ,\t");
    size_t n = strcspn(p, " ,\t");
    if (n) {
      int r = fn(p, n, arg);
      if (r)
        return r;
    }
    p += n;
  }
  return 0;
}

#endif
