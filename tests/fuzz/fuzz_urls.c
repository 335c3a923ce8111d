/* fuzz_urls.c - channel specs and masking (lib/config/url.c, config.c) on
 * arbitrary text: mpn_mask_url, mpn_mask_text, mpn__parse_channel,
 * mpn_check_urls. Invariants: masking fits in 3x+16 bytes, is a prefix when
 * truncated, and never shows a secret query value, a password or an option
 * value the spec holds; a parsed channel is complete and copies whole. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_clean_env();
  return 0;
}

/* Query keys whose values are secrets (as mpn_mask_url treats every key not
 * in its public list, these are only the ones we check by name). */
static int secret_key(const char *k, size_t n)
{
  static const char *const keys[] = {"secret", "token", "access_token", "password", "routing_key", "sig", NULL};
  for (const char *const *p = keys; *p; p++)
    if (strlen(*p) == n && !strncmp(*p, k, n))
      return 1;
  return 0;
}

/* A value worth checking: long, found once in the whole input (so no shown
 * part of it can hold the same bytes), and nothing mpn_mask_url itself
 * writes ("***") or shows on purpose (a reference names, it holds nothing). */
static int checkable(const char *all, const char *v, size_t n)
{
  if (n <= 8 || memchr(v, '*', n) || !strncmp(v, "env:", 4) || !strncmp(v, "env%3A", 6) || !strncmp(v, "file:", 5))
    return 0;
  const char *first = memmem(all, strlen(all), v, n);
  return first && !memmem(first + 1, strlen(first + 1), v, n);
}

static void must_hide(const char *all, const char *v, size_t n, const char *out, const char *what)
{
  if (checkable(all, v, n) && out && memmem(out, strlen(out), v, n))
    fuzz_fail("%s shows the secret \"%.*s\": %s", what, (int)n, v, out);
}

/* Every secret of one URL (the password, the values of secret keys) is absent from out. */
static void check_hidden(const char *all, const char *url, const char *out, const char *what)
{
  const char *p = strstr(url, "://");
  if (!p)   /* a reference without "://" names, it holds nothing */
    return;
  p += 3;
  size_t alen = strcspn(p, "/?#");
  const char *at = memchr(p, '@', alen), *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
  if (colon)
    must_hide(all, colon + 1, (size_t)(at - colon - 1), out, what);
  const char *q = p + strcspn(p, "?#");
  if (*q != '?')
    return;
  for (q++; *q && *q != '#';) {
    size_t n = strcspn(q, "&#"), k = strcspn(q, "=&#");
    if (k < n && secret_key(q, k))
      must_hide(all, q + k + 1, n - k - 1, out, what);
    q += n + (q[n] == '&');
  }
}

static void fuzz_mask(const char *s)
{
  size_t len = strlen(s), cap = 3 * len + 16;
  char *out = malloc(cap), *again = malloc(cap + 100), small[16];
  mpn_code rc = mpn_mask_url(s, out, cap);
  if (rc != MPN_OK)
    fuzz_fail("mpn_mask_url needs more than 3x+16 = %zu bytes (%s)", cap, mpn_strerror(rc));
  FUZZ_CHECK(strlen(out) < cap);
  check_hidden(s, s, out, "mpn_mask_url");
  FUZZ_CHECK(mpn_mask_url(s, again, cap + 100) == MPN_OK && !strcmp(out, again));   /* the same every time */
  for (size_t n = 1; n <= sizeof small; n += 5) {   /* a short buffer: a NUL-terminated prefix */
    rc = mpn_mask_url(s, small, n);
    FUZZ_CHECK(strlen(small) < n && !strncmp(small, out, strlen(small)));
    FUZZ_CHECK(rc == (strlen(out) < n ? MPN_OK : MPN_E_BUFFER_TOO_SMALL));
  }
  free(out);
  free(again);
}

static void fuzz_command(const char *s)
{
  char *out = mpn_mask_text(s, NULL);
  FUZZ_CHECK(out != NULL);
  /* every word holding a URL (after "--url=") has its secrets hidden */
  for (const char *p = s; *p;) {
    p += strspn(p, " \t\n");
    size_t n = strcspn(p, " \t\n");
    char *word = strndup(p, n);
    const char *sep = strstr(word, "://"), *eq = strchr(word, '=');
    if (sep)
      check_hidden(s, eq && eq < sep ? eq + 1 : word, out, "mpn_mask_text");
    free(word);
    p += n;
  }
  free(out);
}

static void fuzz_channel(const char *s)
{
  mpn__channel ch, copy;
  char err[2048];
  err[0] = '\0';
  mpn_code rc = mpn__parse_channel(s, &ch, err, sizeof err);
  FUZZ_CHECK(memchr(err, '\0', sizeof err));
  check_hidden(s, s, err, "a parse error");
  if (rc != MPN_OK) {
    FUZZ_CHECK(ch.spec == NULL && ch.url == NULL && ch.masked == NULL && ch.opts == NULL);
    return;
  }
  FUZZ_CHECK(ch.kind && ch.spec && ch.url && ch.masked && !strcmp(ch.spec, s));
  FUZZ_CHECK(ch.retries >= 0 && ch.retries <= 100 && ch.rate_n >= 0 && ch.timeout_ms >= 0);
  check_hidden(s, s, ch.masked, "a channel's masked spec");
  for (int i = 0; i < ch.nopts; i++)
    FUZZ_CHECK(ch.opts[i].key && ch.opts[i].value);
  FUZZ_CHECK(mpn__channel_copy(&copy, &ch) == MPN_OK);
  FUZZ_CHECK(!strcmp(copy.spec, ch.spec) && !strcmp(copy.url, ch.url) && copy.nopts == ch.nopts);
  char text[] = "echo: the service quoted this request";
  mpn__scrub(text, &ch);
  mpn__channel_free(&copy);
  mpn__channel_free(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 8192)
    return 0;
  char *s = fuzz_cstr(data, size);
  fuzz_mask(s);
  fuzz_command(s);
  fuzz_channel(s);
  char err[1024];
  mpn_check_urls(s, err, sizeof err);
  FUZZ_CHECK(memchr(err, '\0', sizeof err));
  free(s);
  return 0;
}
