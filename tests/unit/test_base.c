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
