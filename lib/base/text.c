/* text.c - text every layer needs: valid UTF-8 for JSON, problem lists,
 * environment switches. */
#include "base/base.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int mpn__word_index(const char *list, const char *v, int nocase)
{
  size_t n = strlen(v);
  for (int i = 0; *list; i++) {
    size_t w = strcspn(list, ",");
    if (w == n && !(nocase ? strncasecmp : strncmp)(list, v, n))
      return i;
    list += w + (list[w] == ',');
  }
  return -1;
}

int mpn__flag_word(const char *v)
{
  return mpn__word_index(MPN__FLAG_ON, v, 1) >= 0 ? 1 : mpn__word_index(MPN__FLAG_OFF, v, 1) >= 0 ? 0 : -1;
}

int mpn__env_flag(const char *name)
{
  const char *v = getenv(name);
  return v && mpn__flag_word(v) == 1;
}

/* Appends one problem line; keeps the first lines when the buffer is full. */
void mpn__add_err(char *err, size_t errlen, const char *fmt, ...)
{
  if (!err || !errlen)
    return;
  size_t used = strlen(err);
  if (used && used + 1 < errlen)
    err[used++] = '\n';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + used, errlen - used, fmt, ap);
  va_end(ap);
}
/* Length of a valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
  if (p[0] < 0x80)
    return 1;
  size_t len;
  uint32_t cp, min;
  if ((p[0] & 0xe0) == 0xc0) { len = 2; cp = p[0] & 0x1f; min = 0x80; }
  else if ((p[0] & 0xf0) == 0xe0) { len = 3; cp = p[0] & 0x0f; min = 0x800; }
  else if ((p[0] & 0xf8) == 0xf0) { len = 4; cp = p[0] & 0x07; min = 0x10000; }
  else return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;   /* overlong, out of range, or a UTF-16 surrogate */
  return len;
}

char *mpn__utf8_sanitize(const char *s, size_t n)
{
  char *out = malloc(n * 3 + 1);   /* each bad byte may become 3 */
  if (!out)
    return NULL;
  size_t o = 0;
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t k = p[i] ? utf8_seq(p + i, n - i) : 0;
    if (k) {
      memcpy(out + o, p + i, k);
      o += k;
      i += k;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);   /* U+FFFD REPLACEMENT CHARACTER */
      o += 3;
      i++;
    }
  }
  out[o] = '\0';
  return out;
}

json_t *mpn__jstr(const char *s)
{
  if (!s)
    return json_null();
  char *clean = mpn__utf8_sanitize(s, strlen(s));
  json_t *j = clean ? json_string(clean) : NULL;
  free(clean);
  return j ? j : json_null();
}
size_t mpn__utf8_len(const char *s)
{
  size_t n = 0;
  for (; s && *s; s++)
    n += ((unsigned char)*s & 0xc0) != 0x80;
  return n;
}
