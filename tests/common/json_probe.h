/* json_probe.h - reading the messages the channels build, for the unit tests
 * and the fuzz targets alike (header-only: the two are built by different
 * compilers and link different objects). */
#ifndef MPN_TEST_JSON_PROBE_H
#define MPN_TEST_JSON_PROBE_H

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Characters as Slack and Discord count them (UTF-16 units). */
static inline size_t mpn_test_u16(const char *s)
{
  size_t n = 0;
  for (; s && *s; s++)
    n += ((unsigned char)*s & 0xc0) != 0x80 ? ((unsigned char)*s >= 0xf0 ? 2 : 1) : 0;
  return n;
}

/* The string at "a.b" (objects only), or NULL. */
static inline const char *mpn_test_str_at(json_t *o, const char *path)
{
  char key[64];
  while (o && *path) {
    size_t n = strcspn(path, ".");
    snprintf(key, sizeof key, "%.*s", (int)n, path);
    o = json_object_get(o, key);
    path += n + (path[n] == '.');
  }
  return json_string_value(o);
}

#endif
