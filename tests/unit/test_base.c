/* test_base.c - unit tests of lib/base/: error strings, valid UTF-8, the
 * async-signal-safe formatting. */
#include "base/base.h"

#include "unit.h"

TEST(strerror_fixed_strings)
{
  static const struct { mpn_code code; int value; const char *text; } codes[] = {
#define CODE_ROW(name, value, text) {MPN_##name, value, text},
    MPN_CODES(CODE_ROW)
#undef CODE_ROW
  };
  int n = (int)(sizeof codes / sizeof codes[0]);
  for (int c = 0; c < n; c++) {
    const char *s = mpn_strerror(codes[c].code);
    CHECK((int)codes[c].code == c && codes[c].value == c);
    CHECK_STR(s, codes[c].text);
    CHECK(s && *s && strcmp(s, "unknown error"));
    for (int d = 0; d < c; d++)
      CHECK(strcmp(s, mpn_strerror(codes[d].code)));
  }
  CHECK_STR(mpn_strerror((mpn_code)9999), "unknown error");
  CHECK_STR(mpn_version(), MPN_VERSION_STRING);
  /* texts users' scripts may match, as they have always been */
  CHECK_STR(mpn_strerror(MPN_E_TIMEOUT), "deadline passed");
  CHECK_STR(mpn_strerror(MPN_E_BAD_CONFIG), "invalid configuration value");
  CHECK_STR(mpn_strerror(MPN_E_MUTED), "muted by the alert cooldown or cap");
}

TEST(utf8_sanitize)
{
  struct { const char *in; size_t n; const char *out; } cases[] = {
    {"plain", 5, "plain"},
    {"na\xc3\xafve", 6, "na\xc3\xafve"},                    /* valid 2-byte */
    {"\xf0\x9f\x92\xa5", 4, "\xf0\x9f\x92\xa5"},            /* valid 4-byte */
    {"a\xff" "b", 3, "a\xef\xbf\xbd" "b"},                  /* never valid */
    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},            /* overlong '/' */
    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
    {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},            /* truncated */
    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *out = mpn__utf8_sanitize(cases[i].in, cases[i].n);
    CHECK_STR(out, cases[i].out);
    free(out);
  }
}

TEST(fmt_signal_safe)
{
  char buf[32];
  size_t n = mpn__fmt_str(buf, sizeof buf, 0, "x=");
  n = mpn__fmt_i64(buf, sizeof buf, n, -42);
  n = mpn__fmt_str(buf, sizeof buf, n, " ");
  n = mpn__fmt_hex(buf, sizeof buf, n, 0xbeef);
  CHECK_STR(buf, "x=-42 0xbeef");
  char tiny[4];
  n = mpn__fmt_u64(tiny, sizeof tiny, 0, 123456);
  CHECK(n == 3 && !strcmp(tiny, "123"));
}

TEST(time_format_parse)
{
  char out[32], small[10];
  CHECK(mpn_format_time(1795082400123LL, out, sizeof out) == MPN_OK);
  CHECK_STR(out, "2026-11-19T10:00:00.123Z");
  CHECK(mpn_format_time(0, out, sizeof out) == MPN_OK);
  CHECK_STR(out, "1970-01-01T00:00:00.000Z");
  CHECK(mpn_format_time(1795082400123LL, small, sizeof small) == MPN_E_BUFFER_TOO_SMALL && strlen(small) == 9);
  CHECK(mpn_format_time(-1, out, sizeof out) == MPN_E_INVALID_ARGUMENT);
  long long ms = 42;
  CHECK(mpn_parse_time("2026-11-19T10:00:00.123Z", &ms) == MPN_OK && ms == 1795082400123LL);
  CHECK(mpn_parse_time("2026-11-19T10:00:00Z", &ms) == MPN_OK && ms == 1795082400000LL);
  CHECK(mpn_parse_time("2026-11-19T10:00:00.5Z", &ms) == MPN_OK && ms == 1795082400500LL);
  CHECK(mpn_parse_time("1970-01-01T00:00:00.000Z", &ms) == MPN_OK && ms == 0);
  ms = 42;
  const char *bad[] = {"", "2026-11-18", "2026-11-19T10:00:00", "2026-13-18T10:00:00Z", "2026-11-19T10:00:00.Z",
                       "2026-11-19T10:00:00.123Zjunk", "2026-11-18 10:00:00Z", "x026-11-18T10:00:00Z"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(mpn_parse_time(bad[i], &ms) == MPN_E_INVALID_ARGUMENT && ms == 42);
  CHECK(mpn_parse_time(NULL, &ms) == MPN_E_INVALID_ARGUMENT);
  for (long long t = 0; t < 4000000000000LL; t += 123456789011LL) {   /* round trips */
    CHECK(mpn_format_time(t, out, sizeof out) == MPN_OK && mpn_parse_time(out, &ms) == MPN_OK && ms == t);
  }
  CHECK_STR(mpn_signal_name(SIGKILL), "SIGKILL");
  CHECK_STR(mpn_signal_name(SIGSEGV), "SIGSEGV");
  CHECK(mpn_signal_name(0) == NULL && mpn_signal_name(1000) == NULL);
}
