/* channel.c - one configured channel (mpn__channel): its options, copies,
 * and scrubbing a service's answer of the channel's secrets. Parsing a spec
 * into a channel is config/url.c's. */
#include "channels/channels.h"

#include <stdlib.h>
#include <string.h>

const char *mpn__channel_opt(const mpn__channel *ch, const char *key)
{
  for (int i = ch->nopts - 1; i >= 0; i--)   /* the last one wins */
    if (!strcmp(ch->opts[i].key, key))
      return ch->opts[i].resolved ? ch->opts[i].resolved : ch->opts[i].value;
  return NULL;
}

void mpn__channel_free(mpn__channel *ch)
{
  for (int i = 0; i < ch->nopts; i++) {
    free(ch->opts[i].key);
    free(ch->opts[i].value);
    free(ch->opts[i].resolved);
  }
  free(ch->opts);
  free(ch->spec);
  free(ch->url);
  free(ch->masked);
  memset(ch, 0, sizeof *ch);
}

mpn_code mpn__channel_copy(mpn__channel *dst, const mpn__channel *src)
{
  *dst = *src;
  dst->spec = strdup(src->spec);
  dst->url = strdup(src->url);
  dst->masked = strdup(src->masked);
  dst->opts = src->nopts ? calloc((size_t)src->nopts, sizeof *dst->opts) : NULL;
  int ok = dst->spec && dst->url && dst->masked && (dst->opts || !src->nopts);
  for (int i = 0; ok && i < src->nopts; i++) {
    dst->opts[i].key = strdup(src->opts[i].key);
    dst->opts[i].value = strdup(src->opts[i].value);
    dst->opts[i].resolved = src->opts[i].resolved ? strdup(src->opts[i].resolved) : NULL;
    ok = dst->opts[i].key && dst->opts[i].value && (dst->opts[i].resolved || !src->opts[i].resolved);
  }
  if (!ok) {
    dst->nopts = dst->opts ? src->nopts : 0;
    mpn__channel_free(dst);
    return MPN_E_NO_MEMORY;
  }
  return MPN_OK;
}

static void blank(char *text, const char *secret, size_t n)
{
  if (n < 6)
    return;   /* too short to be a token, too likely to be a word */
  for (char *p = text; (p = memmem(p, strlen(p), secret, n)) != NULL;) {
    memset(p, '*', 3);
    memmove(p + 3, p + n, strlen(p + n) + 1);
    p += 3;
  }
}

/* A service's answer may quote the request ("no route for POST /services/T0/B0/XYZ"):
 * every path segment, query value and option value of the channel is blanked. */
void mpn__scrub(char *text, const mpn__channel *ch)
{
  const char *p = ch->url ? strstr(ch->url, "://") : NULL;
  for (p = p ? p + 3 : NULL; p && *p;) {
    size_t n = strcspn(p, "/?&=#@:");
    blank(text, p, n);
    p += n + (p[n] != '\0');
  }
  for (int i = 0; i < ch->nopts; i++) {
    blank(text, ch->opts[i].value, strlen(ch->opts[i].value));
    if (ch->opts[i].resolved)
      blank(text, ch->opts[i].resolved, strlen(ch->opts[i].resolved));
  }
}
