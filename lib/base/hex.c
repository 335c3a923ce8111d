/* hex.c - lowercase hex encoding and the relay's 64-digit keys. */
#include "base/base.h"

#include <openssl/crypto.h>
#include <string.h>

static int hex_digit(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

int mpn__hex_key(const char *hex, unsigned char key[32])
{
  unsigned char k[32];
  if (!hex || !key || strlen(hex) != 64)   /* strlen stops at the first NUL: never reads past it */
    return -1;
  for (int i = 0; i < 32; i++) {
    int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(k, sizeof k);
      return -1;
    }
    k[i] = (unsigned char)(hi << 4 | lo);
  }
  memcpy(key, k, sizeof k);   /* a bad key leaves the caller's buffer as it was */
  OPENSSL_cleanse(k, sizeof k);
  return 0;
}

void mpn__hex_encode(const unsigned char *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}
