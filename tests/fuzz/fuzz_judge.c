/* fuzz_judge.c - reading a service's answer (lib/channels/registry.c and
 * the channels' judges) from arbitrary bodies and statuses. The input: two
 * bytes of status, one byte choosing the judge, then the body (exactly its
 * bytes, not NUL-terminated: judges must honour the length). Invariants: the
 * verdict is consistent (accepted means no retry and a 2xx/SMTP success),
 * the detail is a NUL-terminated line, a Retry-After is within a day, and
 * once scrubbed as the engine does, the detail never shows the channel's
 * secrets, even when the answer quotes them. */
#include "fuzz_common.h"

static const char *const specs[] = {
  "webhook+http://127.0.0.1:9/hooks/T0SECRETPATH1/B0SECRETPATH2",
  "dingtalk+http://127.0.0.1:9/robot/send?access_token=dingtalk-access-token-1&secret=SECdingtalksecret",
  "feishu+http://127.0.0.1:9/open-apis/bot/v2/hook/feishu-hook-token-1?secret=feishu-signing-secret",
  "telegram+http://127.0.0.1:9/bot123456:TELEGRAMTOKENabc/sendMessage?chat_id=1",
  "smtp://user@127.0.0.1:9?to=a@b.c&password=smtp-password-hunter2&starttls=no",
  "slack+http://127.0.0.1:9/services/T000/B000/SLACKSECRETxyz",
  "pagerduty+http://127.0.0.1:9/e?routing_key=pagerduty-routing-key-1",
};
#define NSPECS (sizeof specs / sizeof specs[0])
static mpn__channel channels[NSPECS];
/* What each channel must never show (its secrets). */
static const char *const secrets[] = {
  "T0SECRETPATH1", "B0SECRETPATH2", "dingtalk-access-token-1", "SECdingtalksecret", "feishu-hook-token-1",
  "feishu-signing-secret", "TELEGRAMTOKENabc", "smtp-password-hunter2", "SLACKSECRETxyz", "pagerduty-routing-key-1",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_clean_env();
  for (size_t i = 0; i < NSPECS; i++) {
    char err[1024] = "";
    if (mpn__parse_channel(specs[i], &channels[i], err, sizeof err) != MPN_OK)
      fuzz_fail("fixed spec %s does not parse: %s", specs[i], err);
  }
  return 0;
}

static void check_verdict(const mpn__verdict *v, long status, int smtp)
{
  FUZZ_CHECK(memchr(v->detail, '\0', sizeof v->detail));
  FUZZ_CHECK(v->retry == 0 || v->retry == 1);
  FUZZ_CHECK(v->retry_after_ms == -1 || (v->retry_after_ms >= 0 && v->retry_after_ms < 86400L * 1000));
  if (v->code == MPN_OK)
    FUZZ_CHECK(!v->retry && (smtp ? status < 400 : status >= 200 && status < 300));
  else
    FUZZ_CHECK(v->detail[0]);   /* a failure always says why */
}

static void check_scrubbed(char *detail, const mpn__channel *ch)
{
  mpn__scrub(detail, ch);
  for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
    if (strstr(detail, secrets[i]) && strstr(ch->spec, secrets[i]))
      fuzz_fail("a scrubbed detail shows %s: %s", secrets[i], detail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 3 || size > 65536)
    return 0;
  long status = (long)(int16_t)(data[0] << 8 | data[1]);
  if (data[2] & 0x80)
    status = 200 + status % 400;   /* mostly the statuses services answer */
  size_t which = data[2] % (NSPECS + 3);
  size_t len = size - 3;
  char *body = malloc(len ? len : 1);
  memcpy(body, data + 3, len);
  mpn__verdict v;
  memset(&v, 0, sizeof v);
  v.retry_after_ms = -1;
  if (which < NSPECS) {
    const mpn__channel *ch = &channels[which];
    if (ch->kind->judge)
      ch->kind->judge(ch, status, body, len, &v);
    else
      mpn__judge_http(ch, status, body, len, &v);
    check_verdict(&v, status, !strcmp(ch->kind->name, "email"));
    check_scrubbed(v.detail, ch);
  } else if (which == NSPECS) {
    static const long long rate[] = {130101, 0}, fatal[] = {310000, 0};
    mpn__judge_body_code("errcode", "errmsg", rate, fatal, status, body, len, &v);
    check_verdict(&v, status, 0);
  } else if (which == NSPECS + 1) {
    long long x = 0;
    mpn__json_body_int(body, len, "code", &x);
    double ra = mpn__json_retry_after(body, len);
    FUZZ_CHECK(ra < 0 || ra == ra);
  } else {
    mpn__judge_http(NULL, status, len ? body : NULL, len, &v);
    check_verdict(&v, status, 0);
  }
  free(body);
  return 0;
}
