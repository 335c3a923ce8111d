/* hash.c - FNV-1a, 64 bits: the one hash of signatures, job tokens and
 * file names. Async-signal-safe. */
#include "base/base.h"

#include <string.h>

uint64_t mpn__hash_bytes(uint64_t h, const void *p, size_t n)
{
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    h = (h ^ b[i]) * MPN__FNV_PRIME;
  return h;
}

uint64_t mpn__hash_str(uint64_t h, const char *s)
{
  return s ? mpn__hash_bytes(h, s, strlen(s)) : h;
}

uint64_t mpn__hash_sep(uint64_t h, unsigned char sep)
{
  return (h ^ sep) * MPN__FNV_PRIME;
}
