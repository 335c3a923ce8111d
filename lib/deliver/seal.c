/* seal.c - the relay's frame: what a rank POSTs to the launcher's relay.
 *
 * A frame is binary:
 *
 *   offset  size  field
 *   0       4     magic "MPR1"
 *   4       8     sender's wall-clock time, milliseconds since the epoch, big-endian
 *   12      12    nonce, random (RAND_bytes), the GCM IV
 *   24      n     ciphertext of the n-byte message (AES-256-GCM)
 *   24+n    16    GCM tag
 *
 * The 24-byte header is the AAD: nobody without the key can move a frame's
 * time, so a captured frame stops opening 5 minutes after it was sealed, and
 * within those minutes the receiving process remembers its nonce. Together
 * they make a replay fail. The key is the job's (MPINOTIFY_RELAY_KEY, 64 hex
 * digits). The nonce cache is per process: each process that opens frames
 * (the launcher's relay) rejects replays of what it opened itself.
 *
 * Open checks in this order, each naming its failure in *why:
 *   "malformed"  too short or wrong magic: not a frame at all
 *   "forged"     the tag does not verify (wrong key, any byte changed)
 *   "stale"      the time is more than 5 minutes from ours
 *   "replayed"   the nonce was already opened by this process
 * Authentication comes first so that unauthenticated bytes never reach the
 * nonce cache: only frames sealed with the key can fill it.
 */
#include "deliver/deliver.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define MAGIC "MPR1"
#define MAGIC_LEN 4
#define TIME_LEN 8
#define NONCE_LEN 12
#define HEADER_LEN (MAGIC_LEN + TIME_LEN + NONCE_LEN)
#define TAG_LEN 16
#define FRESH_MS (5 * 60 * 1000LL)       /* a frame opens within this of our clock */
#define FORGET_MS (10 * 60 * 1000LL)     /* nonces older than this can never match a fresh frame */
#define SEEN_MAX 4096
/* EVP lengths are int: feed long messages in pieces. */
#define EVP_CHUNK (1 << 30)

static int64_t wall_ms(void)
{
  return mpn__wall_ns() / 1000000;
}

static void put_be64(unsigned char *p, uint64_t v)
{
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char *p)
{
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | p[i];
  return v;
}

/* Runs EVP_{En,De}cryptUpdate over len bytes in int-sized pieces. */
static int cipher_update(EVP_CIPHER_CTX *ctx, int enc, unsigned char *out, const unsigned char *in,
                         size_t len)
{
  while (len) {
    int piece = len > EVP_CHUNK ? EVP_CHUNK : (int)len, got = 0;
    int ok = enc ? EVP_EncryptUpdate(ctx, out, &got, in, piece)
                 : EVP_DecryptUpdate(ctx, out, &got, in, piece);
    if (!ok || got != piece)   /* GCM is a stream mode: output keeps pace with input */
      return -1;
    out += piece, in += piece, len -= (size_t)piece;
  }
  return 0;
}

/* Seals with an explicit time: mpn__relay_seal uses now; tests build stale frames. */
char *mpn__relay_seal_at(const unsigned char key[32], const char *plain, size_t len, int64_t time_ms,
                         size_t *out_len)
{
  if (!key || (!plain && len) || len > SIZE_MAX - HEADER_LEN - TAG_LEN)
    return NULL;
  size_t total = HEADER_LEN + len + TAG_LEN;
  unsigned char *f = malloc(total);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int ok = f && ctx;
  if (ok) {
    memcpy(f, MAGIC, MAGIC_LEN);
    put_be64(f + MAGIC_LEN, (uint64_t)time_ms);
    ok = RAND_bytes(f + MAGIC_LEN + TIME_LEN, NONCE_LEN) == 1;
  }
  int got = 0;
  ok = ok && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
       EVP_EncryptInit_ex(ctx, NULL, NULL, key, f + MAGIC_LEN + TIME_LEN) == 1 &&
       EVP_EncryptUpdate(ctx, NULL, &got, f, HEADER_LEN) == 1 &&
       cipher_update(ctx, 1, f + HEADER_LEN, (const unsigned char *)plain, len) == 0 &&
       EVP_EncryptFinal_ex(ctx, f + HEADER_LEN + len, &got) == 1 && got == 0 &&
       EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, f + HEADER_LEN + len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    free(f);
    return NULL;
  }
  if (out_len)
    *out_len = total;
  return (char *)f;
}

char *mpn__relay_seal(const unsigned char key[32], const char *plain, size_t len, size_t *out_len)
{
  return mpn__relay_seal_at(key, plain, len, wall_ms(), out_len);
}

/* Decrypts and verifies; NULL when the tag does not match. The result is
 * NUL-terminated (one byte past len) for callers that parse it as text. */
static char *decrypt(const unsigned char key[32], const unsigned char *f, size_t len, size_t *out_len)
{
  size_t ct_len = len - HEADER_LEN - TAG_LEN;
  unsigned char *plain = malloc(ct_len + 1);
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  int got = 0;
  int ok = plain && ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) == 1 &&
           EVP_DecryptInit_ex(ctx, NULL, NULL, key, f + MAGIC_LEN + TIME_LEN) == 1 &&
           EVP_DecryptUpdate(ctx, NULL, &got, f, HEADER_LEN) == 1 &&
           cipher_update(ctx, 0, plain, f + HEADER_LEN, ct_len) == 0 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(f + len - TAG_LEN)) == 1 &&
           EVP_DecryptFinal_ex(ctx, plain + ct_len, &got) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) {
    if (plain)
      OPENSSL_cleanse(plain, ct_len);
    free(plain);
    return NULL;
  }
  plain[ct_len] = '\0';
  *out_len = ct_len;
  return (char *)plain;
}

/* The nonces of recently opened frames. A ring: past SEEN_MAX frames the
 * oldest is forgotten, which only matters if more than SEEN_MAX genuine
 * frames arrive within the freshness window (13 a second for 5 minutes). */
static struct {
  pthread_mutex_t lock;
  unsigned char nonce[SEEN_MAX][NONCE_LEN];
  int64_t time_ms[SEEN_MAX];
  int used, next;
} seen = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Records the nonce; 1 if it was already there. */
static int seen_before(const unsigned char *nonce, int64_t time_ms, int64_t now)
{
  int dup = 0;
  pthread_mutex_lock(&seen.lock);
  for (int i = 0; i < seen.used && !dup; i++)
    dup = seen.time_ms[i] >= now - FORGET_MS && !memcmp(seen.nonce[i], nonce, NONCE_LEN);
  if (!dup) {
    memcpy(seen.nonce[seen.next], nonce, NONCE_LEN);
    seen.time_ms[seen.next] = time_ms;
    seen.next = (seen.next + 1) % SEEN_MAX;
    if (seen.used < SEEN_MAX)
      seen.used++;
  }
  pthread_mutex_unlock(&seen.lock);
  return dup;
}

/* |t - now| > FRESH_MS, without overflow for any 64-bit t. */
static int is_stale(uint64_t t, int64_t now)
{
  uint64_t n = (uint64_t)now;
  uint64_t diff = t > n ? t - n : n - t;
  return now < 0 || diff > (uint64_t)FRESH_MS;
}

char *mpn__relay_open(const unsigned char key[32], const char *frame, size_t len, size_t *out_len,
                      const char **why)
{
  const char *dummy;
  if (!why)
    why = &dummy;
  const unsigned char *f = (const unsigned char *)frame;
  if (!key || !f || len < HEADER_LEN + TAG_LEN || memcmp(f, MAGIC, MAGIC_LEN)) {
    *why = "malformed";
    return NULL;
  }
  size_t plen = 0;
  char *plain = decrypt(key, f, len, &plen);
  if (!plain) {
    *why = "forged";
    return NULL;
  }
  uint64_t t = get_be64(f + MAGIC_LEN);
  int64_t now = wall_ms();
  *why = is_stale(t, now) ? "stale" : seen_before(f + MAGIC_LEN + TIME_LEN, (int64_t)t, now) ? "replayed" : NULL;
  if (*why) {
    OPENSSL_cleanse(plain, plen);
    free(plain);
    return NULL;
  }
  if (out_len)
    *out_len = plen;
  return plain;
}

/* A key nobody can guess, or no key at all: a predictable key would let any
 * host that reaches the relay send as the job. */
void mpn__relay_keygen(unsigned char key[32])
{
  if (RAND_bytes(key, 32) == 1)
    return;
  size_t got = 0;
  while (got < 32) {
    ssize_t n = getrandom(key + got, 32 - got, 0);
    if (n < 0 && errno != EINTR)
      abort();
    got += n > 0 ? (size_t)n : 0;
  }
}
