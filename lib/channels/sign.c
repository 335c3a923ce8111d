/* sign.c - request signing with OpenSSL's one-shot HMAC (not deprecated in
 * OpenSSL 3): DingTalk, Feishu/Lark and Standard Webhooks. Each function
 * takes its timestamp so tests can check the services' published vectors. */
#include "channels/channels.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *b64(const unsigned char *in, size_t n)
{
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  return out;
}

static char *hmac_b64(const void *key, size_t klen, const void *msg, size_t mlen)
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!HMAC(EVP_sha256(), key, (int)klen, msg, mlen, md, &mdlen))
    return NULL;
  return b64(md, mdlen);
}

char *mpn__dingtalk_sign(const char *secret, long long ts_ms)
{
  char *sts = NULL;
  if (asprintf(&sts, "%lld\n%s", ts_ms, secret) < 0)
    return NULL;
  char *sig = hmac_b64(secret, strlen(secret), sts, strlen(sts));
  free(sts);
  char *esc = sig ? curl_easy_escape(NULL, sig, 0) : NULL;   /* URL-encoded exactly once */
  char *out = esc ? strdup(esc) : NULL;
  curl_free(esc);
  free(sig);
  return out;
}

char *mpn__feishu_sign(const char *secret, long long ts_s)
{
  char *sts = NULL;
  if (asprintf(&sts, "%lld\n%s", ts_s, secret) < 0)
    return NULL;
  char *sig = hmac_b64(sts, strlen(sts), "", 0);   /* the string is the key, the message is empty */
  free(sts);
  return sig;
}

/* Standard Webhooks: key = base64 after "whsec_" (else the secret's bytes). */
char *mpn__stdwebhook_sign(const char *secret, const char *id, long long ts_s, const char *body)
{
  unsigned char key[512];
  size_t klen = strlen(secret);
  const void *k = secret;
  if (!strncmp(secret, "whsec_", 6) && strlen(secret + 6) < sizeof key * 4 / 3) {
    int n = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)strlen(secret + 6));
    size_t len = strlen(secret + 6);
    if (n < 0)
      return NULL;
    n -= (len > 0 && secret[6 + len - 1] == '=') + (len > 1 && secret[6 + len - 2] == '=');   /* padding */
    k = key;
    klen = (size_t)n;
  }
  char *msg = NULL;
  if (asprintf(&msg, "%s.%lld.%s", id, ts_s, body) < 0)
    return NULL;
  char *sig = hmac_b64(k, klen, msg, strlen(msg));
  free(msg);
  char *out = NULL;
  if (sig && asprintf(&out, "v1,%s", sig) < 0)
    out = NULL;
  free(sig);
  return out;
}
