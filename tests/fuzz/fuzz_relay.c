/* fuzz_relay.c - the relay's frames (lib/deliver/seal.c). Arbitrary bytes
 * opened with the job's key never open (nobody without the key can make a
 * frame) and never crash; a frame sealed from fuzzed plaintext opens to the
 * same bytes exactly once, and with any one byte changed not at all. */
#include "fuzz_common.h"

static const unsigned char key[32] = "mpinotify fuzz key, 32 bytes...";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_clean_env();
  return 0;
}

static int is(const char *why, const char *want)
{
  return why && !strcmp(why, want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 65536)
    return 0;
  /* 1. The input as a frame: at best malformed or forged. */
  size_t len = 123;
  const char *why = NULL;
  char *plain = mpn__relay_open(key, (const char *)data, size, &len, &why);
  if (plain)
    fuzz_fail("arbitrary bytes opened as a frame (%zu bytes)", size);
  FUZZ_CHECK(is(why, "malformed") || is(why, "forged"));
  FUZZ_CHECK(len == 123);

  /* 2. The input as plaintext: seal, open once, never twice. */
  size_t flen = 0;
  char *frame = mpn__relay_seal(key, (const char *)data, size, &flen);
  FUZZ_CHECK(frame && flen == size + 24 + 16);
  if (size) {   /* any one byte changed: refused (which byte: from the input) */
    size_t at = (data[0] | (size_t)data[size - 1] << 8) % flen;
    frame[at] ^= (char)(1u << (data[size / 2] % 8));
    why = NULL;
    plain = mpn__relay_open(key, frame, flen, &len, &why);
    FUZZ_CHECK(!plain && (is(why, "forged") || is(why, "malformed")));
    frame[at] ^= (char)(1u << (data[size / 2] % 8));
  }
  why = "unset";
  plain = mpn__relay_open(key, frame, flen, &len, &why);
  if (!plain)
    fuzz_fail("a genuine frame did not open: %s", why ? why : "(no reason)");
  FUZZ_CHECK(why == NULL && len == size && !memcmp(plain, data, size) && plain[size] == '\0');
  free(plain);
  plain = mpn__relay_open(key, frame, flen, &len, &why);
  FUZZ_CHECK(!plain && is(why, "replayed"));
  /* the tail cut off: malformed or forged, never a shorter message */
  plain = mpn__relay_open(key, frame, flen - 1 - (size % 17 < flen - 1 ? size % 17 : 0), &len, &why);
  FUZZ_CHECK(!plain && (is(why, "malformed") || is(why, "forged")));
  free(frame);

  /* 3. A stale frame: sealed an hour ago, refused. */
  frame = mpn__relay_seal_at(key, (const char *)data, size, mpn__wall_ns() / 1000000 - 3600 * 1000, &flen);
  FUZZ_CHECK(frame);
  plain = mpn__relay_open(key, frame, flen, &len, &why);
  FUZZ_CHECK(!plain && is(why, "stale"));
  free(frame);

  /* 4. The key's hex form. */
  char *hex = fuzz_cstr(data, size);
  unsigned char k[32], kept[32];
  memset(k, 7, sizeof k);
  memcpy(kept, k, sizeof k);
  if (mpn__hex_key(hex, k) == 0) {
    char back[65];
    mpn__hex_encode(k, 32, back);
    FUZZ_CHECK(strlen(hex) == 64 && !strcasecmp(back, hex));
  } else {
    FUZZ_CHECK(!memcmp(k, kept, sizeof k));   /* a bad key leaves the buffer as it was */
  }
  free(hex);
  return 0;
}
