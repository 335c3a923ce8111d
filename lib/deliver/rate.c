/* rate.c - per-channel rate limits as sliding windows: at most rate_n sends
 * in any rate_window_ms, which is how the services state them (DingTalk: 20
 * per minute; a token bucket would allow bursts over that). Keyed by the
 * channel's spec, so every message to one channel in this process shares a
 * window. Only the engine thread calls these (under its lock). */
#include "deliver/engine.h"

#include <stdlib.h>
#include <string.h>

typedef struct window {
  struct window *next;
  char *spec;
  int n;
  int head;            /* oldest entry */
  int64_t *sent;       /* ring of the last n start times, 0 = unused */
} window;

static window *windows;

static window *find(const mpn__channel *ch, int create)
{
  for (window *w = windows; w; w = w->next)
    if (w->n == ch->rate_n && !strcmp(w->spec, ch->spec))
      return w;
  if (!create)
    return NULL;
  window *w = calloc(1, sizeof *w);
  if (!w)
    return NULL;
  w->spec = strdup(ch->spec);
  w->n = ch->rate_n;
  w->sent = calloc((size_t)ch->rate_n, sizeof *w->sent);
  if (!w->spec || !w->sent) {
    free(w->spec);
    free(w->sent);
    free(w);
    return NULL;
  }
  w->next = windows;
  windows = w;
  return w;
}

int64_t mpn__rate_slot(const mpn__channel *ch, int64_t now)
{
  if (ch->rate_n <= 0)
    return now;
  window *w = find(ch, 0);
  if (!w || w->sent[w->head] == 0)
    return now;
  int64_t free_at = w->sent[w->head] + (int64_t)ch->rate_window_ms * 1000000;
  return free_at > now ? free_at : now;
}

void mpn__rate_note(const mpn__channel *ch, int64_t now)
{
  if (ch->rate_n <= 0)
    return;
  window *w = find(ch, 1);
  if (!w)
    return;
  w->sent[w->head] = now;   /* replaces the oldest */
  w->head = (w->head + 1) % w->n;
}
