/* fuzz_format.c - every channel's formatter (lib/channels/, lib/format/) on
 * a message built from fuzzed JSON (as the spool and the relay carry it,
 * mpn__message_from_json) or from fuzzed fields (the public setters).
 * Each kind's prepare() builds a request into an attempt whose curl handle is
 * real but never performed; the request must be valid (JSON kinds parse),
 * within the service's limits (the channel files' constants, as
 * tests/unit/test_channels.c checks them) and free cleanly, as the engine frees it. The text
 * panel (console), the view and the message's own JSON round trip too. */
#include "fuzz_common.h"
#include "../common/json_probe.h"

#include <jansson.h>

static const char *const specs[] = {
  "webhook+http://127.0.0.1:9/x",
  "webhook+http://127.0.0.1:9/x?secret=whsec_dGVzdHNlY3JldA%3D%3D&header=X-Team:ml&method=PUT",
  "slack+http://127.0.0.1:9/x",
  "slack+http://127.0.0.1:9/x?mention=%3C%40U0123%3E",
  "discord+http://127.0.0.1:9/api/webhooks/1/t",
  "teams+http://127.0.0.1:9/workflows/a?sig=s",
  "telegram+http://127.0.0.1:9/bot1/sendMessage?chat_id=1",
  "dingtalk+http://127.0.0.1:9/robot/send?access_token=t&secret=SECtest&keyword=MPI&at=13800000000&at_all=yes",
  "feishu+http://127.0.0.1:9/open-apis/bot/v2/hook/x?secret=s&at_all=yes",
  "pagerduty+http://127.0.0.1:9/e?routing_key=k",
  "smtp://127.0.0.1:9?to=a@b.c,d@e.f&from=x@y.z&starttls=no",
};
#define NSPECS (sizeof specs / sizeof specs[0])
static mpn__channel channels[NSPECS];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_clean_env();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  for (size_t i = 0; i < NSPECS; i++) {
    char err[1024] = "";
    if (mpn__parse_channel(specs[i], &channels[i], err, sizeof err) != MPN_OK)
      fuzz_fail("fixed spec %s does not parse: %s", specs[i], err);
  }
  return 0;
}

/* Slack: header 150, sections 3000, 10 fields of 2000, 50 blocks, 12,000 in all. */
static void check_slack(json_t *o)
{
  json_t *blocks = json_object_get(o, "blocks"), *bl, *f;
  FUZZ_CHECK(json_array_size(blocks) >= 1 && json_array_size(blocks) <= 50);
  FUZZ_CHECK(mpn_test_u16(json_string_value(json_object_get(o, "text"))) <= 40000);
  size_t total = 0, i, k;
  json_array_foreach(blocks, i, bl) {
    const char *type = json_string_value(json_object_get(bl, "type")), *t = mpn_test_str_at(bl, "text.text");
    FUZZ_CHECK(type);
    if (!strcmp(type, "header"))
      FUZZ_CHECK(i == 0 && mpn_test_u16(t) >= 1 && mpn_test_u16(t) <= 150);
    if (t && !strcmp(type, "section"))
      FUZZ_CHECK(mpn_test_u16(t) <= 3000);
    total += mpn_test_u16(t);
    FUZZ_CHECK(json_array_size(json_object_get(bl, "fields")) <= 10);
    json_array_foreach(json_object_get(bl, "fields"), k, f) {
      size_t n = mpn_test_u16(json_string_value(json_object_get(f, "text")));
      FUZZ_CHECK(n >= 1 && n <= 2000);
      total += n;
    }
  }
  if (total > 12000)
    fuzz_fail("Slack blocks hold %zu characters (limit 12000)", total);
}

/* Discord: title 256, description 4096, 25 fields (name 256, value 1024, neither empty), 6000 in all. */
static void check_discord(json_t *o)
{
  json_t *em = json_array_get(json_object_get(o, "embeds"), 0), *fields, *f;
  FUZZ_CHECK(json_array_size(json_object_get(o, "embeds")) == 1);
  FUZZ_CHECK(mpn_test_u16(json_string_value(json_object_get(o, "content"))) <= 2000);
  size_t title = mpn_test_u16(mpn_test_str_at(em, "title")), desc = mpn_test_u16(mpn_test_str_at(em, "description")), foot = mpn_test_u16(mpn_test_str_at(em, "footer.text"));
  FUZZ_CHECK(title <= 256 && desc <= 4096 && foot <= 2048);
  size_t total = title + desc + foot, i;
  fields = json_object_get(em, "fields");
  FUZZ_CHECK(json_array_size(fields) <= 25);
  json_array_foreach(fields, i, f) {
    size_t n = mpn_test_u16(mpn_test_str_at(f, "name")), v = mpn_test_u16(mpn_test_str_at(f, "value"));
    if (!(n >= 1 && n <= 256 && v >= 1 && v <= 1024))
      fuzz_fail("Discord field %zu: name %zu, value %zu characters (1..256, 1..1024)", i, n, v);
    total += n + v;
  }
  if (total > 6000)
    fuzz_fail("Discord embed holds %zu characters (limit 6000)", total);
}

/* Telegram: 4096 characters after entity parsing; only the entities its HTML knows. */
static void check_telegram(json_t *o)
{
  const char *html = mpn_test_str_at(o, "text");
  FUZZ_CHECK(html && mpn_test_str_at(o, "chat_id"));
  size_t n = 0;
  for (const char *p = html; *p;) {
    if (*p == '<') {
      FUZZ_CHECK(strchr(p, '>'));
      p += strcspn(p, ">") + 1;
    } else if (*p == '&') {
      if (strncmp(p, "&lt;", 4) && strncmp(p, "&gt;", 4) && strncmp(p, "&amp;", 5) && strncmp(p, "&quot;", 6))
        fuzz_fail("Telegram text has a raw '&': %.40s", p);
      p += strcspn(p, ";") + 1;
      n++;
    } else {
      n += ((unsigned char)*p & 0xc0) == 0x80 ? 0 : (unsigned char)*p >= 0xf0 ? 2 : 1;
      p++;
    }
  }
  if (n > 4096)
    fuzz_fail("Telegram text shows %zu characters (limit 4096)", n);
}

/* Email headers: one line each, or folded (CRLF + white space): nothing the message says adds a header. */
static void check_email(const mpn__attempt *a)
{
  FUZZ_CHECK(a->mime && a->rcpt && a->headers && a->url);
  for (const struct curl_slist *h = a->headers; h; h = h->next)
    for (const char *p = h->data; *p; p++)
      if ((*p == '\r' && !(p[1] == '\n' && (p[2] == ' ' || p[2] == '\t'))) ||
          (*p == '\n' && !(p > h->data && p[-1] == '\r')))
        fuzz_fail("email header breaks its line: %.200s", h->data);
}

static void check_request(size_t i, const mpn_message *m, const mpn__attempt *a)
{
  const char *kind = channels[i].kind->name;
  if (!strcmp(kind, "email")) {
    check_email(a);
    return;
  }
  FUZZ_CHECK(a->url && a->body && a->headers);
  size_t len = strlen(a->body);
  json_error_t e;
  json_t *o = json_loads(a->body, 0, &e);
  if (!o || !json_is_object(o))
    fuzz_fail("%s body is not a JSON object (%s): %.200s", kind, e.text, a->body);
  if (!strcmp(kind, "webhook")) {
    char *dump = mpn__message_dump(m);
    FUZZ_CHECK(dump && !strcmp(dump, a->body));   /* the message as it is */
    free(dump);
  } else if (!strcmp(kind, "slack")) {
    check_slack(o);
  } else if (!strcmp(kind, "discord")) {
    check_discord(o);
  } else if (!strcmp(kind, "telegram")) {
    check_telegram(o);
  } else if (!strcmp(kind, "teams") && len > 28 * 1024) {
    fuzz_fail("Teams body of %zu bytes (limit 28 KB)", len);
  } else if (!strcmp(kind, "dingtalk") && len > 20000) {
    fuzz_fail("DingTalk body of %zu bytes (limit 20000)", len);
  } else if (!strcmp(kind, "feishu") && len > 19100) {
    fuzz_fail("Feishu body of %zu bytes (limit 19000 + the signature)", len);
  } else if (!strcmp(kind, "pagerduty")) {
    if (len > 512000)
      fuzz_fail("PagerDuty event of %zu bytes (limit 512000)", len);
    FUZZ_CHECK(mpn__utf8_len(mpn_test_str_at(o, "dedup_key")) <= 255 && mpn__utf8_len(mpn_test_str_at(o, "payload.summary")) <= 1024);
  }
  json_decref(o);
}

static void format_all(const mpn_message *m)
{
  for (size_t i = 0; i < NSPECS; i++) {
    mpn__attempt a;
    memset(&a, 0, sizeof a);
    a.easy = curl_easy_init();
    FUZZ_CHECK(a.easy);
    mpn_code rc = channels[i].kind->prepare(&channels[i], m, &a);
    if (rc != MPN_OK)
      fuzz_fail("%s prepare: %s", specs[i], mpn_strerror(rc));
    check_request(i, m, &a);
    curl_easy_cleanup(a.easy);   /* as the engine does: the handle first, then what it used */
    curl_slist_free_all(a.headers);
    curl_slist_free_all(a.rcpt);
    curl_mime_free(a.mime);
    free(a.url);
    free(a.body);
  }
  for (int color = 0; color < 2; color++) {   /* the console panel */
    char *text = mpn__message_text(m, color);
    FUZZ_CHECK(text);
    free(text);
  }
  mpn__view *v = mpn__view_new(m);
  FUZZ_CHECK(v && v->nfacts >= 0 && v->nfacts <= MPN__VIEW_FACTS);
  for (int i = 0; i < v->nfacts; i++)
    FUZZ_CHECK(v->facts[i].label && v->facts[i].value);
  mpn__view_free(v);
  char *dump = mpn__message_dump(m);   /* spool and relay: the message comes back the same */
  mpn_message *back = dump ? mpn__message_from_json(dump, m->id) : NULL;
  char *again = back ? mpn__message_dump(back) : NULL;
  FUZZ_CHECK(again && !strcmp(dump, again) && !strcmp(back->id, m->id));
  free(again);
  mpn_message_free(back);
  free(dump);
}

/* Fields mode: NUL-separated event, title, text, severity, then key/value
 * pairs (a value that parses as JSON is set as JSON: ranks, processes,
 * backtrace of any shape). */
static mpn_message *from_fields(const uint8_t *data, size_t size)
{
  char *buf = malloc(size + 1), *parts[16];
  int n = 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  for (char *p = buf; n < 16 && p <= buf + size; p += strlen(p) + 1)
    parts[n++] = p;
  mpn_message *m = mpn_message_new(n > 0 && parts[0][0] ? parts[0] : "message");
  if (m && n > 1)
    mpn_message_set_title(m, parts[1]);
  if (m && n > 2)
    mpn_message_set_text(m, parts[2]);
  if (m && n > 3)
    mpn_message_set_severity(m, parts[3]);
  for (int i = 4; m && i + 1 < n; i += 2)
    if (mpn_message_set_json(m, parts[i], parts[i + 1]) != MPN_OK)
      mpn_message_set_string(m, parts[i], parts[i + 1]);
  free(buf);
  return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1 || size > 65536)
    return 0;
  mpn_message *m;
  if (data[0] & 1) {
    m = from_fields(data + 1, size - 1);
  } else {
    char *json = fuzz_cstr(data + 1, size - 1);
    m = mpn__message_from_json(json, NULL);
    free(json);
  }
  if (!m)
    return 0;
  format_all(m);
  mpn_message_free(m);
  return 0;
}
