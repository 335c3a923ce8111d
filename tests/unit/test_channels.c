/* test_channels.c - unit tests of lib/channels/: each kind's request
 * (payload shapes and the services' limits), how it reads answers, request
 * signing; the email kind against a one-connection SMTP responder.
 * config/config.h only for mpn__parse_channel: the tests make their channels
 * from specs as users write them (which also runs each kind's validate). */
#include "channels/channels.h"
#include "config/config.h"

#include "unit.h"
#include "../common/json_probe.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(sign_vectors)
{
  /* DingTalk and Feishu: reference/channels.md; Standard Webhooks: the spec's own test vector. */
  char *d = mpn__dingtalk_sign("SECtestsecret", 1599360473000LL);
  CHECK_STR(d, "vhoLqApxy9zT1hKJD4TEZPeigHt3IUmn3vGb%2FW3zqYg%3D");
  char *f = mpn__feishu_sign("demo", 1599360473LL);
  CHECK_STR(f, "l1N0gAcBjdwBvGm1xMjOF0XSyaLRpR7tuO5dHfhAYc8=");
  char *w = mpn__stdwebhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                 1614265330LL, "{\"test\": 2432232314}");
  CHECK_STR(w, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  free(d);
  free(f);
  free(w);
}

TEST(judge_answers)
{
  mpn__verdict v;
  memset(&v, 0, sizeof v);
  v.retry_after_ms = -1;
  mpn__judge_http(NULL, 429, "{\"retry_after\": 1.5}", 20, &v);
  CHECK(v.code == MPN_E_RATE_LIMITED && v.retry && v.retry_after_ms == 1500);
  memset(&v, 0, sizeof v);
  mpn__judge_http(NULL, 400, "invalid_payload", 15, &v);
  CHECK(v.code == MPN_E_HTTP_STATUS && !v.retry && strstr(v.detail, "HTTP 400: invalid_payload"));
  memset(&v, 0, sizeof v);
  mpn__judge_http(NULL, 202, "", 0, &v);
  CHECK(v.code == MPN_OK);
  static const long long rate[] = {130101, 0}, fatal[] = {310000, 0};
  const char *busy = "{\"errcode\":130101,\"errmsg\":\"send too fast\"}";
  memset(&v, 0, sizeof v);
  mpn__judge_body_code("errcode", "errmsg", rate, fatal, 200, busy, strlen(busy), &v);
  CHECK(v.code == MPN_E_RATE_LIMITED && v.retry && strstr(v.detail, "errcode 130101"));
  const char *sign = "{\"errcode\":310000,\"errmsg\":\"sign not match\"}";
  memset(&v, 0, sizeof v);
  mpn__judge_body_code("errcode", "errmsg", rate, fatal, 200, sign, strlen(sign), &v);
  CHECK(v.code == MPN_E_SERVICE && !v.retry);
  memset(&v, 0, sizeof v);
  mpn__judge_body_code("code", "msg", NULL, NULL, 200, "{\"code\":0}", 10, &v);
  CHECK(v.code == MPN_OK);
}

/* ---- ops channels: DingTalk, Feishu, PagerDuty, generic webhook ---------- */

/* The request `spec`'s channel would make for m: the body parsed, the URL and
 * the headers ("Name: value\n"...) in *url and *headers (malloc'd), the
 * body's length in *len. */
static json_t *ops_request(const char *spec, const mpn_message *m, char **url, char **headers, size_t *len)
{
  mpn__channel ch;
  parse_ok(spec, &ch);
  mpn__attempt a;
  memset(&a, 0, sizeof a);
  a.easy = curl_easy_init();
  CHECK(ch.kind->prepare(&ch, m, &a) == MPN_OK);
  json_t *doc = a.body ? json_loads(a.body, 0, NULL) : NULL;
  CHECK(doc != NULL);
  if (len)
    *len = a.body ? strlen(a.body) : 0;
  if (url)
    *url = strdup(a.url ? a.url : "");
  mpn__buf h = {malloc(256), 0, 256};
  h.p[0] = '\0';
  for (struct curl_slist *s = a.headers; s; s = s->next)
    mpn__buf_add(&h, "%s\n", s->data);
  if (headers)
    *headers = h.p;
  else
    free(h.p);
  curl_slist_free_all(a.headers);
  curl_easy_cleanup(a.easy);
  free(a.url);
  free(a.body);
  mpn__channel_free(&ch);
  return doc;
}

static mpn_message *ops_message(const char *severity, const char *text)
{
  mpn_message *m = mpn_message_new("message");
  mpn_message_set_title(m, "Nightly run");
  mpn_message_set_text(m, text);
  mpn_message_set_severity(m, severity);
  return m;
}

/* A crash on `n` ranks (1, 3, 5, ...: no two adjacent, so the ranges are
 * long) with 64 frames of long names: the largest report there is. */
static mpn_message *ops_crash(int n)
{
  mpn__proc *procs = calloc((size_t)n, sizeof *procs);
  mpn__report r;
  sample_report(&r, procs, n);
  r.world_size = 2 * n;
  sample_event.nframes = MPN__MAX_FRAMES;
  for (int i = 0; i < MPN__MAX_FRAMES; i++) {
    strcpy(sample_event.frames[i].module, "/opt/app/lib/libsolver_with_a_long_name.so");
    memset(sample_event.frames[i].function, 'f', 200);
    memcpy(sample_event.frames[i].function, i ? "deep\"fn\\" : "bad_fn", i ? 8 : 6);
    sample_event.frames[i].function[200] = '\0';
    sample_event.frames[i].has_function = 1;
  }
  r.job_name = "train";
  mpn_message *m = mpn__message_from_report(&r);
  free(procs);
  return m;
}

/* 1 MiB that costs more as JSON than as text: quotes, backslashes, control
 * characters, multi-byte characters. */
static char *ops_big_text(void)
{
  static const char line[] = "step \"42\" \\ tab\there \x01\x02 \xe6\x97\xa5\xe6\x9c\xac \xc3\xbc\n";
  size_t n = (1u << 20) / (sizeof line - 1);
  char *s = malloc(n * (sizeof line - 1) + 1);
  for (size_t i = 0; i < n; i++)
    memcpy(s + i * (sizeof line - 1), line, sizeof line - 1);
  s[n * (sizeof line - 1)] = '\0';
  return s;
}

static const char *ops_str(json_t *o, const char *path)   /* "a.b.c" */
{
  char key[64];
  while (o && strchr(path, '.')) {
    snprintf(key, sizeof key, "%.*s", (int)(strchr(path, '.') - path), path);
    o = json_object_get(o, key);
    path = strchr(path, '.') + 1;
  }
  return json_string_value(json_object_get(o, path));
}

TEST(ops_dingtalk_payload)
{
  mpn_message *m = ops_message("error", "disk full on /scratch");
  const char *spec = "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=t&keyword=MPI"
                     "&at=13800000000%2C13900000000&at_all=yes&secret=SECtestsecret";
  char *url = NULL;
  json_t *o = ops_request(spec, m, &url, NULL, NULL);
  CHECK_STR(ops_str(o, "msgtype"), "markdown");
  const char *title = ops_str(o, "markdown.title"), *text = ops_str(o, "markdown.text");
  CHECK(title && text && !strncmp(text, "#### ", 5) && !strncmp(text + 5, title, strlen(title)) &&
        text[5 + strlen(title)] == '\n');   /* the title is the first heading, exactly */
  CHECK(title && strstr(title, "MPI") && strstr(title, "Nightly run") && text && strstr(text, "disk full on /scratch"));
  json_t *at = json_object_get(o, "at");
  CHECK(json_array_size(json_object_get(at, "atMobiles")) == 2 && json_is_true(json_object_get(at, "isAtAll")));
  CHECK_STR(json_string_value(json_array_get(json_object_get(at, "atMobiles"), 1)), "13900000000");
  CHECK(text && strstr(text, "@13800000000 @13900000000"));
  CHECK(url && strstr(url, "access_token=t&timestamp=") && strstr(url, "&sign="));
  json_decref(o);
  free(url);
  mpn_message_free(m);
  /* Not a failure: no mention at all. */
  m = ops_message("warning", "disk 90% full");
  o = ops_request(spec, m, NULL, NULL, NULL);
  CHECK(json_object_get(o, "at") == NULL && !strstr(ops_str(o, "markdown.text"), "@138"));
  json_decref(o);
  mpn_message_free(m);
  /* A crash: facts as a list, ranks, the backtrace quoted. */
  m = ops_crash(3);
  o = ops_request("https://oapi.dingtalk.com/robot/send?access_token=t", m, NULL, NULL, NULL);
  text = ops_str(o, "markdown.text");
  CHECK(text && strstr(text, "- **Signal:** SIGSEGV\n") && strstr(text, "- **Signature:** abcdef0123456789\n") &&
        strstr(text, "**Rank list:** 1,3,5\n") && strstr(text, "\n> #0  bad_fn"));
  CHECK(json_object_get(o, "at") == NULL);
  json_decref(o);
  mpn_message_free(m);
}

TEST(ops_dingtalk_limits)
{
  char *big = ops_big_text();
  mpn_message *msgs[] = {ops_message("critical", big), ops_crash(10000)};
  for (int i = 0; i < 2; i++) {
    size_t len = 0;
    json_t *o = ops_request("https://oapi.dingtalk.com/robot/send?access_token=t&at=13800000000", msgs[i],
                            NULL, NULL, &len);
    const char *title = ops_str(o, "markdown.title"), *text = ops_str(o, "markdown.text");
    CHECK(len <= 20000 && len > 19000);   /* within the limit, and not shortened far below it */
    CHECK(title && text && strstr(text, title) && strstr(text, "(shortened)") && strstr(text, "@13800000000"));
    if (i == 1)
      CHECK(strstr(text, "10000 of 20000") && strstr(text, "abcdef0123456789") && strstr(title, "SIGSEGV"));
    json_decref(o);
    mpn_message_free(msgs[i]);
  }
  free(big);
}

TEST(ops_feishu_payload)
{
  static const struct { const char *sev, *event, *colour; int at; } cases[] = {
    {"critical", "message", "red", 1}, {"error", "message", "red", 1}, {"warning", "message", "orange", 0},
    {"info", "message", "blue", 0}, {"info", "test", "green", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mpn_message *m = mpn_message_new(cases[i].event);
    mpn_message_set_title(m, "Nightly run");
    mpn_message_set_text(m, "done <at id=all></at> sneaky");
    mpn_message_set_severity(m, cases[i].sev);
    json_t *o = ops_request("https://open.feishu.cn/open-apis/bot/v2/hook/x?at_all=yes&secret=demo", m, NULL, NULL, NULL);
    CHECK_STR(ops_str(o, "msg_type"), "interactive");
    CHECK_STR(ops_str(o, "card.header.title.tag"), "plain_text");
    CHECK_STR(ops_str(o, "card.header.title.content"), "Nightly run");
    CHECK_STR(ops_str(o, "card.header.template"), cases[i].colour);
    CHECK(ops_str(o, "timestamp") && ops_str(o, "sign"));
    char *dump = json_dumps(json_object_get(json_object_get(o, "card"), "elements"), 0);
    CHECK(!!strstr(dump, "\"content\": \"<at id=all></at>\"") == cases[i].at);   /* ours, failures only */
    CHECK(strstr(dump, "done <\xe2\x80\x8b" "at id=all>") != NULL);                /* the text's is defused */
    json_t *last = json_array_get(json_object_get(json_object_get(o, "card"), "elements"), 0);
    CHECK_STR(ops_str(last, "tag"), "div");
    CHECK_STR(ops_str(last, "text.tag"), "lark_md");
    free(dump);
    json_decref(o);
    mpn_message_free(m);
  }
  mpn_message *m = ops_crash(3);
  json_t *o = ops_request("https://open.feishu.cn/open-apis/bot/v2/hook/x", m, NULL, NULL, NULL);
  char *dump = json_dumps(o, JSON_COMPACT);
  CHECK(strstr(dump, "**Signature:** abcdef0123456789") && strstr(dump, "**Rank list:** 1,3,5\"") &&
        strstr(dump, "**Backtrace**\\n```\\n#0  bad_fn") && strstr(dump, "{\"tag\":\"note\"") && !strstr(dump, "<at"));
  CHECK_STR(ops_str(o, "card.header.template"), "red");
  free(dump);
  json_decref(o);
  mpn_message_free(m);
}

TEST(ops_feishu_limits)
{
  char *big = ops_big_text();
  mpn_message *msgs[] = {ops_message("critical", big), ops_crash(10000)};
  for (int i = 0; i < 2; i++) {
    size_t len = 0;
    json_t *o = ops_request("https://open.feishu.cn/open-apis/bot/v2/hook/x?secret=s&at_all=yes", msgs[i], NULL, NULL, &len);
    char *dump = json_dumps(o, JSON_COMPACT);
    CHECK(len <= 19100 && len > 18000);
    CHECK(strstr(dump, "(shortened)") && strstr(dump, "<at id=all></at>") && ops_str(o, "sign"));
    if (i == 1)
      CHECK(strstr(dump, "10000 of 20000") && strstr(dump, "abcdef0123456789"));
    free(dump);
    json_decref(o);
    mpn_message_free(msgs[i]);
  }
  free(big);
}

TEST(ops_pagerduty_payload)
{
  mpn_message *m = ops_crash(3);
  json_t *o = ops_request("https://events.pagerduty.com/v2/enqueue?routing_key=R0123", m, NULL, NULL, NULL);
  CHECK_STR(ops_str(o, "routing_key"), "R0123");
  CHECK_STR(ops_str(o, "event_action"), "trigger");
  CHECK_STR(ops_str(o, "dedup_key"), "mpinotify:train:abcdef0123456789");
  CHECK_STR(ops_str(o, "client"), "mpinotify");
  CHECK_STR(ops_str(o, "payload.summary"), mpn__message_title(m));
  CHECK_STR(ops_str(o, "payload.source"), "node0");   /* the leader's host */
  CHECK_STR(ops_str(o, "payload.severity"), "critical");
  CHECK_STR(ops_str(o, "payload.timestamp"), "2023-11-14T22:13:20.123Z");
  CHECK_STR(ops_str(o, "payload.component"), "train");
  CHECK_STR(ops_str(o, "payload.class"), "crash");
  CHECK_STR(ops_str(o, "payload.custom_details.Signature"), "abcdef0123456789");
  CHECK_STR(ops_str(o, "payload.custom_details.Rank list"), "1,3,5");
  CHECK(strstr(ops_str(o, "payload.custom_details.Backtrace"), "#0  bad_fn") != NULL);
  json_decref(o);
  mpn_message_free(m);
  /* A long job name is cut so the key stays within 255; the same crash, the same key. */
  m = ops_crash(3);
  char *longjob = malloc(400);
  memset(longjob, 'j', 399);
  longjob[399] = '\0';
  json_object_set_new(json_object_get(m->doc, "job"), "name", json_string(longjob));
  o = ops_request("https://events.pagerduty.com/v2/enqueue?routing_key=R0123", m, NULL, NULL, NULL);
  const char *key = ops_str(o, "dedup_key");
  CHECK(key && strlen(key) == 255 && !strncmp(key, "mpinotify:jjj", 13) && !strcmp(key + 238, ":abcdef0123456789"));
  json_decref(o);
  mpn_message_free(m);
  free(longjob);
  /* A message: the key from its id; severities map; the summary at most 1024 characters. */
  static const char *const sev[] = {"info", "warning", "error", "critical"};
  char title[3001];
  for (int i = 0; i < 1000; i++)
    memcpy(title + 3 * i, "\xc3\xbc" "a", 3);   /* 2000 characters */
  title[3000] = '\0';
  for (int i = 0; i < 4; i++) {
    m = ops_message(sev[i], "text");
    mpn_message_set_title(m, title);
    o = ops_request("https://events.pagerduty.com/v2/enqueue?routing_key=R0123", m, NULL, NULL, NULL);
    char want[64];
    snprintf(want, sizeof want, "mpinotify:%s", m->id);
    CHECK_STR(ops_str(o, "dedup_key"), want);
    CHECK_STR(ops_str(o, "payload.severity"), sev[i]);
    CHECK_STR(ops_str(o, "payload.class"), "message");
    CHECK(mpn__utf8_len(ops_str(o, "payload.summary")) <= 1024 && mpn__utf8_len(ops_str(o, "payload.summary")) > 1000);
    CHECK_STR(ops_str(o, "payload.custom_details.Text"), "text");
    json_decref(o);
    mpn_message_free(m);
  }
}

TEST(ops_pagerduty_limits)
{
  char *big = ops_big_text();
  mpn_message *msgs[] = {ops_message("critical", big), ops_crash(10000)};
  for (int i = 0; i < 2; i++) {
    size_t len = 0;
    json_t *o = ops_request("https://events.pagerduty.com/v2/enqueue?routing_key=R0123", msgs[i], NULL, NULL, &len);
    CHECK(len <= 512000 && len > (i ? 100000 : 500000));
    if (i == 0)
      CHECK(strstr(ops_str(o, "payload.custom_details.Text"), "(shortened)"));
    else   /* 10,000 ranks fit whole */
      CHECK(strstr(ops_str(o, "payload.custom_details.Processes"), "rank 19999  pid 13999  node9999\n") &&
            strstr(ops_str(o, "payload.custom_details.Rank list"), ",19997,19999") &&
            !strcmp(ops_str(o, "payload.custom_details.Ranks"), "10000 of 20000"));
    json_decref(o);
    mpn_message_free(msgs[i]);
  }
  free(big);
}

TEST(ops_webhook_request)
{
  setenv("MPNT_UNIT_HDR", "Bearer from-env", 1);
  mpn_message *m = ops_message("info", "hello");
  char *url = NULL, *headers = NULL, *body = NULL;
  size_t len = 0;
  json_t *o = ops_request("webhook+https://h.example/x?method=PUT&header=X-Team:ops&header=Authorization:env:MPNT_UNIT_HDR"
                          "&secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", m, &url, &headers, &len);
  body = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
  CHECK(json_equal(o, m->doc));   /* the message as it is */
  CHECK_STR(url, "https://h.example/x");
  char want[128];
  snprintf(want, sizeof want, "webhook-id: %s\n", m->id);
  CHECK(strstr(headers, want) && strstr(headers, "X-Team: ops\n") && strstr(headers, "Authorization: Bearer from-env\n"));
  const char *ts = strstr(headers, "webhook-timestamp: "), *sig = strstr(headers, "webhook-signature: v1,");
  CHECK(ts && sig);
  if (ts && sig) {
    char *expect = mpn__stdwebhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", m->id, atoll(ts + 19), body);
    CHECK(expect && !strncmp(sig + 19, expect, strlen(expect)) && sig[19 + strlen(expect)] == '\n');
    free(expect);
  }
  json_decref(o);
  free(url);
  free(headers);
  free(body);
  mpn_message_free(m);
}

TEST(ops_mention_options)
{
  static const char *const bad[] = {
    "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=t&at=alice",
    "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=t&at=138&at=13%209",
    "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=t&at_all=maybe",
    "feishu+https://open.feishu.cn/open-apis/bot/v2/hook/x?at_all=sometimes",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[512] = "";
    mpn__channel ch;
    CHECK(mpn__parse_channel(bad[i], &ch, err, sizeof err) == MPN_E_BAD_CONFIG && strstr(err, "at"));
  }
  /* at= repeated and as a list; at_all=no. */
  mpn_message *m = ops_message("critical", "x");
  json_t *o = ops_request("dingtalk+https://oapi.dingtalk.com/robot/send?access_token=t&at=138-0000-0000%2C%2B86139"
                          "&at=137&at_all=no", m, NULL, NULL, NULL);
  json_t *at = json_object_get(o, "at");
  CHECK(json_array_size(json_object_get(at, "atMobiles")) == 3 && json_is_false(json_object_get(at, "isAtAll")));
  CHECK(strstr(ops_str(o, "markdown.text"), "\n\n@138-0000-0000 @+86139 @137"));
  json_decref(o);
  mpn_message_free(m);
}

/* ---- chat channels (slack, discord, teams, telegram): payload shapes and limits ---- */

/* One attempt of the channel `spec` for m: the body parsed, the URL in *url (malloc'd, may be NULL). */
static json_t *chat_payload(const char *spec, const mpn_message *m, char **url)
{
  mpn__channel ch;
  json_t *o = NULL;
  parse_ok(spec, &ch);
  if (!ch.kind)
    return NULL;
  mpn__attempt a;
  memset(&a, 0, sizeof a);
  a.easy = curl_easy_init();
  CHECK(ch.kind->prepare(&ch, m, &a) == MPN_OK);
  o = a.body ? json_loads(a.body, 0, NULL) : NULL;
  CHECK(o != NULL);
  if (url)
    *url = a.url ? strdup(a.url) : NULL;
  curl_slist_free_all(a.headers);
  curl_easy_cleanup(a.easy);
  free(a.url);
  free(a.body);
  mpn__channel_free(&ch);
  return o;
}

static mpn_message *chat_msg(const char *event, const char *title, const char *text, const char *severity)
{
  mpn_message *m = mpn_message_new(event);
  mpn_message_set_title(m, title);
  if (text)
    mpn_message_set_text(m, text);
  mpn_message_set_severity(m, severity);
  return m;
}

/* A crash of `n` ranks (every other rank of 2n) with a 64-frame backtrace of long names. */
static mpn_message *chat_crash(int n)
{
  mpn__proc *procs = calloc((size_t)n, sizeof *procs);
  mpn__report r;
  sample_report(&r, procs, n);
  r.world_size = 2 * n + 2;
  sample_event.nframes = MPN__MAX_FRAMES;
  for (int i = 2; i < MPN__MAX_FRAMES; i++) {
    sample_event.frames[i] = sample_event.frames[0];
    sample_event.frames[i].offset = 0x1000 + (uintptr_t)i;
    memset(sample_event.frames[i].function, 'f', 200);
    snprintf(sample_event.frames[i].function + 200, 40, "_<T&%d>", i);
  }
  mpn_message *m = mpn__message_from_report(&r);
  free(procs);
  return m;
}

/* 1 MiB of text with characters that need escaping, line breaks and 4-byte UTF-8. */
static char *chat_big_text(void)
{
  size_t n = 1 << 20;
  char *s = malloc(n + 1);
  static const char unit[] = "a<b>&\"c\xf0\x9f\x92\xa5 \\ \x01 line\n";
  for (size_t i = 0; i < n; i++)
    s[i] = unit[i % (sizeof unit - 1)];
  s[n] = '\0';
  while ((s[n - 1] & 0xc0) == 0x80 || (unsigned char)s[n - 1] >= 0xc0)   /* end on a whole character */
    s[--n] = '\0';
  return s;
}

/* Every mrkdwn/plain_text string of a Slack block, concatenated. */
static void slack_texts(json_t *blocks, mpn__buf *b)
{
  size_t i;
  json_t *bl;
  json_array_foreach(blocks, i, bl) {
    const char *t = mpn_test_str_at(bl, "text.text");
    if (t)
      mpn__buf_add(b, "%s\n", t);
    size_t k;
    json_t *f;
    json_array_foreach(json_object_get(bl, "fields"), k, f) mpn__buf_add(b, "%s\n", json_string_value(json_object_get(f, "text")));
    json_array_foreach(json_object_get(bl, "elements"), k, f) mpn__buf_add(b, "%s\n", json_string_value(json_object_get(f, "text")));
  }
}

static void check_slack_limits(json_t *o)
{
  json_t *blocks = json_object_get(o, "blocks");
  CHECK(json_array_size(blocks) >= 3 && json_array_size(blocks) <= 50);
  CHECK(mpn_test_u16(json_string_value(json_object_get(o, "text"))) <= 40000);
  size_t total = 0, i;
  json_t *bl;
  json_array_foreach(blocks, i, bl) {
    const char *type = json_string_value(json_object_get(bl, "type"));
    const char *t = mpn_test_str_at(bl, "text.text");
    if (!strcmp(type, "header"))
      CHECK(i == 0 && mpn_test_u16(t) <= 150 && !strcmp(mpn_test_str_at(bl, "text.type"), "plain_text"));
    if (t && !strcmp(type, "section"))
      CHECK(mpn_test_u16(t) <= 3000 && !strcmp(mpn_test_str_at(bl, "text.type"), "mrkdwn"));
    total += mpn_test_u16(t);
    json_t *fields = json_object_get(bl, "fields");
    CHECK(json_array_size(fields) <= 10);
    size_t k;
    json_t *f;
    json_array_foreach(fields, k, f) {
      size_t n = mpn_test_u16(json_string_value(json_object_get(f, "text")));
      CHECK(n <= 2000);
      total += n;
    }
    if (!strcmp(type, "context"))
      CHECK(i == json_array_size(blocks) - 1 && json_array_size(json_object_get(bl, "elements")) <= 10);
  }
  CHECK(total <= 12000);
}

TEST(chat_slack_shape)
{
  mpn_message *m = chat_msg("message", "Nightly <run> & co", "line one <b>\nline two", "info");
  json_t *o = chat_payload("slack+http://127.0.0.1:9/services/T/B/X", m, NULL);
  json_t *blocks = json_object_get(o, "blocks");
  CHECK_STR(mpn_test_str_at(json_array_get(blocks, 0), "type"), "header");
  const char *head = mpn_test_str_at(json_array_get(blocks, 0), "text.text");
  CHECK(head && strstr(head, "Nightly &lt;run&gt; &amp; co"));
  const char *fb = json_string_value(json_object_get(o, "text"));
  CHECK(fb && strstr(fb, "Nightly &lt;run&gt; &amp; co") && strstr(fb, "[INFO]") && strstr(fb, "line one &lt;b&gt;"));
  mpn__buf all = {malloc(256), 0, 256};
  all.p[0] = '\0';
  slack_texts(blocks, &all);
  CHECK(strstr(all.p, "line one &lt;b&gt;\nline two") && !strchr(all.p, '<'));   /* no mention, nothing unescaped */
  CHECK(!strstr(fb, "<!"));
  CHECK_STR(mpn_test_str_at(json_array_get(blocks, json_array_size(blocks) - 1), "type"), "context");
  CHECK(strstr(all.p, "mpinotify " MPN_VERSION_STRING));
  check_slack_limits(o);
  free(all.p);
  json_decref(o);
  mpn_message_free(m);

  /* Failures mention: <!here> by default, in the fallback and the first section. */
  static const struct { const char *opt, *mention; } cases[] = {
    {"", "<!here>"}, {"?mention=%3C%40U0123%3E", "<@U0123>"}, {"?mention=%3C!subteam%5ES1%3E", "<!subteam^S1>"},
    {"?mention=channel", "<!channel>"}, {"?mention=none", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char spec[128];
    snprintf(spec, sizeof spec, "slack+http://127.0.0.1:9/x%s", cases[i].opt);
    m = chat_msg("message", "down", "t", "critical");
    o = chat_payload(spec, m, NULL);
    fb = json_string_value(json_object_get(o, "text"));
    const char *first = mpn_test_str_at(json_array_get(json_object_get(o, "blocks"), 1), "text.text");
    if (cases[i].mention)
      CHECK(fb && strstr(fb, cases[i].mention) && first && strstr(first, cases[i].mention));
    else
      CHECK(fb && !strchr(fb, '<') && first && !strchr(first, '<'));
    json_decref(o);
    mpn_message_free(m);
    m = chat_msg("message", "fine", "t", "warning");   /* never on other messages */
    o = chat_payload(spec, m, NULL);
    all.p = malloc(256), all.len = 0, all.cap = 256, all.p[0] = '\0';
    slack_texts(json_object_get(o, "blocks"), &all);
    CHECK(!strchr(json_string_value(json_object_get(o, "text")), '<') && !strchr(all.p, '<'));
    free(all.p);
    json_decref(o);
    mpn_message_free(m);
  }

  /* A crash: facts as fields, the rank list, the backtrace in a code block. */
  m = chat_crash(3);
  o = chat_payload("https://hooks.slack.com/services/T/B/X", m, NULL);
  all.p = malloc(256), all.len = 0, all.cap = 256, all.p[0] = '\0';
  slack_texts(json_object_get(o, "blocks"), &all);
  CHECK(strstr(all.p, "*Signal*\nSIGSEGV") && strstr(all.p, "*Ranks*\n3 of 8") && strstr(all.p, "`1,3,5`"));
  CHECK(strstr(all.p, "*Backtrace*\n```\n#0  bad_fn+0x1d (train+0x1139)") && strstr(all.p, "_&lt;T&amp;2&gt;"));
  CHECK(strstr(all.p, "*Signature*\nabcdef0123456789") && strstr(all.p, "<!here>") && strstr(all.p, "node0"));
  fb = json_string_value(json_object_get(o, "text"));
  CHECK(fb && strstr(fb, "<!here> [CRITICAL] ") && strstr(fb, "Ranks 1,3,5 (3 of 8)"));
  check_slack_limits(o);
  free(all.p);
  json_decref(o);
  mpn_message_free(m);
}

TEST(chat_slack_limits)
{
  char title[400];
  memset(title, 'T', sizeof title - 1);
  title[sizeof title - 1] = '\0';
  memcpy(title + 200, "<&>", 3);
  char *text = chat_big_text();
  mpn_message *m = chat_msg("message", title, text, "error");
  json_t *o = chat_payload("slack+https://hooks.slack.com/services/T/B/X", m, NULL);
  check_slack_limits(o);
  json_t *blocks = json_object_get(o, "blocks");
  const char *first = mpn_test_str_at(json_array_get(blocks, 1), "text.text");
  CHECK(first && strstr(first, "TTT&lt;&amp;&gt;TTT") && mpn_test_u16(first) > 400);   /* the whole title */
  mpn__buf all = {malloc(256), 0, 256};
  all.p[0] = '\0';
  slack_texts(blocks, &all);
  CHECK(strstr(all.p, "... (shortened)") && mpn_test_u16(all.p) > 6000);   /* several sections of text */
  free(all.p);
  json_decref(o);
  mpn_message_free(m);
  m = chat_crash(5000);
  o = chat_payload("slack+https://hooks.slack.com/services/T/B/X", m, NULL);
  check_slack_limits(o);
  all.p = malloc(256), all.len = 0, all.cap = 256, all.p[0] = '\0';
  slack_texts(json_object_get(o, "blocks"), &all);
  CHECK(strstr(all.p, "*Ranks*\n5000 of 10002") && strstr(all.p, "*Backtrace*") && strstr(all.p, "... (shortened)"));
  free(all.p);
  json_decref(o);
  mpn_message_free(m);
  free(text);
}

static void check_discord_limits(json_t *o)
{
  json_t *em = json_array_get(json_object_get(o, "embeds"), 0);
  CHECK(json_array_size(json_object_get(o, "embeds")) == 1);
  CHECK(mpn_test_u16(json_string_value(json_object_get(o, "content"))) <= 2000);
  size_t title = mpn_test_u16(mpn_test_str_at(em, "title")), desc = mpn_test_u16(mpn_test_str_at(em, "description"));
  size_t footer = mpn_test_u16(mpn_test_str_at(em, "footer.text")), total = title + desc + footer;
  CHECK(title >= 1 && title <= 256 && desc <= 4096 && footer <= 2048);
  json_t *fields = json_object_get(em, "fields");
  CHECK(json_array_size(fields) <= 25);
  size_t i;
  json_t *f;
  json_array_foreach(fields, i, f) {
    size_t n = mpn_test_u16(mpn_test_str_at(f, "name")), v = mpn_test_u16(mpn_test_str_at(f, "value"));
    CHECK(n >= 1 && n <= 256 && v >= 1 && v <= 1024);
    total += n + v;
  }
  CHECK(total <= 6000);
}

TEST(chat_discord_shape)
{
  char *url = NULL;
  mpn_message *m = chat_msg("message", "all good", "it **ran**", "info");
  json_t *o = chat_payload("https://discord.com/api/webhooks/1/tok", m, &url);
  CHECK(url && strstr(url, "/api/webhooks/1/tok?wait=true"));
  json_t *em = json_array_get(json_object_get(o, "embeds"), 0);
  CHECK_STR(mpn_test_str_at(em, "title"), "all good");
  CHECK_STR(mpn_test_str_at(em, "description"), "it **ran**");
  CHECK_STR(mpn_test_str_at(em, "timestamp"), mpn__msg_str(m, "timestamp"));
  CHECK(json_integer_value(json_object_get(em, "color")) == 0x36A3EB);
  CHECK(strstr(mpn_test_str_at(em, "footer.text"), "mpinotify " MPN_VERSION_STRING));
  /* no mention, and nobody pinged: allowed_mentions {"parse": []} */
  CHECK(!json_object_get(o, "content"));
  json_t *am = json_object_get(o, "allowed_mentions");
  CHECK(json_is_array(json_object_get(am, "parse")) && json_array_size(json_object_get(am, "parse")) == 0 &&
        json_object_size(am) == 1);
  check_discord_limits(o);
  json_decref(o);
  mpn_message_free(m);
  free(url);

  static const struct { const char *opt, *content, *parse, *key, *id; } cases[] = {
    {"", "@here", "everyone", NULL, NULL},
    {"?mention=%40everyone", "@everyone", "everyone", NULL, NULL},
    {"?mention=%3C%40%26123%3E", "<@&123>", NULL, "roles", "123"},
    {"?mention=%3C%40456%3E", "<@456>", NULL, "users", "456"},
    {"?mention=none", NULL, NULL, NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char spec[128];
    snprintf(spec, sizeof spec, "discord+http://127.0.0.1:9/api/webhooks/1/t%s", cases[i].opt);
    m = chat_msg("message", "down", "t", "error");
    o = chat_payload(spec, m, NULL);
    am = json_object_get(o, "allowed_mentions");
    json_t *parse = json_object_get(am, "parse");
    if (cases[i].content)
      CHECK_STR(json_string_value(json_object_get(o, "content")), cases[i].content);
    else
      CHECK(!json_object_get(o, "content"));
    CHECK(json_is_array(parse) && json_array_size(parse) == (cases[i].parse ? 1u : 0u));
    if (cases[i].parse)
      CHECK_STR(json_string_value(json_array_get(parse, 0)), cases[i].parse);
    if (cases[i].key)
      CHECK_STR(json_string_value(json_array_get(json_object_get(am, cases[i].key), 0)), cases[i].id);
    CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(o, "embeds"), 0), "color")) == 0xE01E5A);
    json_decref(o);
    mpn_message_free(m);
    m = chat_msg("message", "fine", "t", "warning");
    o = chat_payload(spec, m, NULL);
    CHECK(!json_object_get(o, "content") && json_array_size(json_object_get(json_object_get(o, "allowed_mentions"), "parse")) == 0);
    CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(o, "embeds"), 0), "color")) == 0xF2A33A);
    json_decref(o);
    mpn_message_free(m);
  }

  m = chat_crash(3);
  o = chat_payload("https://discord.com/api/webhooks/1/tok?thread_id=9", m, &url);
  CHECK(url && strstr(url, "thread_id=9&wait=true"));
  em = json_array_get(json_object_get(o, "embeds"), 0);
  const char *desc = mpn_test_str_at(em, "description");
  CHECK(desc && strstr(desc, "```\n#0  bad_fn+0x1d (train+0x1139)"));
  json_t *f0 = json_array_get(json_object_get(em, "fields"), 0), *f;
  size_t i;
  int sig = 0, ranks = 0;
  json_array_foreach(json_object_get(em, "fields"), i, f) {
    sig |= !strcmp(mpn_test_str_at(f, "name"), "Signal") && !strcmp(mpn_test_str_at(f, "value"), "SIGSEGV") &&
           json_is_true(json_object_get(f, "inline"));
    ranks |= !strcmp(mpn_test_str_at(f, "name"), "Rank list") && !strcmp(mpn_test_str_at(f, "value"), "1,3,5");
  }
  CHECK(f0 && sig && ranks);
  CHECK_STR(json_string_value(json_object_get(o, "content")), "@here");
  check_discord_limits(o);
  json_decref(o);
  mpn_message_free(m);
  free(url);
}

TEST(chat_discord_limits)
{
  char title[600];
  memset(title, 'T', sizeof title - 1);
  title[sizeof title - 1] = '\0';
  char *text = chat_big_text();
  mpn_message *m = chat_msg("message", title, text, "critical");
  json_t *o = chat_payload("discord+https://discord.com/api/webhooks/1/tok", m, NULL);
  check_discord_limits(o);
  const char *desc = mpn_test_str_at(json_array_get(json_object_get(o, "embeds"), 0), "description");
  CHECK(desc && strstr(desc, title) && strstr(desc, "... (shortened)"));   /* the whole title, clipped text */
  json_decref(o);
  mpn_message_free(m);
  m = chat_crash(5000);
  mpn_message_set_text(m, text);
  char job[1500];   /* long facts leave the description less room */
  memset(job, 'j', sizeof job - 1);
  job[sizeof job - 1] = '\0';
  json_object_set_new(m->doc, "job", json_pack("{s:s, s:s}", "name", job, "command", job));
  o = chat_payload("discord+https://discord.com/api/webhooks/1/tok", m, NULL);
  check_discord_limits(o);
  desc = mpn_test_str_at(json_array_get(json_object_get(o, "embeds"), 0), "description");
  CHECK(desc && strstr(desc, "#0  bad_fn") && strstr(desc, "a<b>&"));   /* both long parts have room */
  json_decref(o);
  mpn_message_free(m);
  free(text);
}

static json_t *teams_body(json_t *o)
{
  return json_object_get(json_object_get(json_array_get(json_object_get(o, "attachments"), 0), "content"), "body");
}

TEST(chat_teams_shape)
{
  static const struct { const char *sev, *colour; } cases[] = {
    {"critical", "Attention"}, {"error", "Attention"}, {"warning", "Warning"}, {"info", "Good"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mpn_message *m = chat_msg("message", "build", "it \"failed\"", cases[i].sev);
    json_t *o = chat_payload("teams+http://127.0.0.1:9/workflows/a/triggers/manual/paths/invoke?sig=s", m, NULL);
    CHECK_STR(mpn_test_str_at(o, "type"), "message");
    json_t *att = json_array_get(json_object_get(o, "attachments"), 0);
    CHECK(json_array_size(json_object_get(o, "attachments")) == 1);
    CHECK_STR(mpn_test_str_at(att, "contentType"), "application/vnd.microsoft.card.adaptive");
    CHECK(json_is_null(json_object_get(att, "contentUrl")));
    CHECK_STR(mpn_test_str_at(att, "content.type"), "AdaptiveCard");
    CHECK_STR(mpn_test_str_at(att, "content.version"), "1.4");
    CHECK_STR(mpn_test_str_at(att, "content.msteams.width"), "Full");
    json_t *title = json_array_get(teams_body(o), 0);
    CHECK_STR(mpn_test_str_at(title, "type"), "TextBlock");
    CHECK_STR(mpn_test_str_at(title, "text"), "build");
    CHECK_STR(mpn_test_str_at(title, "weight"), "Bolder");
    CHECK_STR(mpn_test_str_at(title, "size"), "Large");
    CHECK_STR(mpn_test_str_at(title, "color"), cases[i].colour);
    int text = 0;
    size_t k;
    json_t *b;
    json_array_foreach(teams_body(o), k, b) text |= mpn_test_str_at(b, "text") && !strcmp(mpn_test_str_at(b, "text"), "it \"failed\"");
    CHECK(text);
    json_decref(o);
    mpn_message_free(m);
  }
  mpn_message *m = chat_crash(3);
  json_t *o = chat_payload("https://prod-01.westus.logic.azure.com:443/workflows/a?sig=s", m, NULL);
  int facts = 0, mono = 0;
  size_t k;
  json_t *b;
  json_array_foreach(teams_body(o), k, b) {
    if (!strcmp(mpn_test_str_at(b, "type"), "FactSet")) {
      size_t j;
      json_t *f;
      json_array_foreach(json_object_get(b, "facts"), j, f) {
        facts += !strcmp(mpn_test_str_at(f, "title"), "Signal") && !strcmp(mpn_test_str_at(f, "value"), "SIGSEGV");
        facts += !strcmp(mpn_test_str_at(f, "title"), "Rank list") && !strcmp(mpn_test_str_at(f, "value"), "1,3,5");
      }
    }
    if (mpn_test_str_at(b, "fontType") && !strcmp(mpn_test_str_at(b, "fontType"), "Monospace") &&
        !strncmp(mpn_test_str_at(b, "text"), "#0  bad_fn+0x1d (train+0x1139)\n#1 ", 34))
      mono++;
  }
  CHECK(facts == 2 && mono == 1);
  json_decref(o);
  mpn_message_free(m);
}

TEST(chat_teams_limits)
{
  char *text = chat_big_text();
  mpn_message *m = chat_crash(5000);
  mpn_message_set_text(m, text);
  char *url = NULL;
  mpn__channel ch;
  parse_ok("teams+https://prod-01.westus.logic.azure.com/workflows/a?sig=s", &ch);
  mpn__attempt a;
  memset(&a, 0, sizeof a);
  a.easy = curl_easy_init();
  CHECK(ch.kind->prepare(&ch, m, &a) == MPN_OK);
  CHECK(a.body && strlen(a.body) <= 28 * 1024 && strlen(a.body) > 10000);
  json_t *o = a.body ? json_loads(a.body, 0, NULL) : NULL;
  int shortened = 0, bt = 0;
  size_t k;
  json_t *b;
  json_array_foreach(teams_body(o), k, b) {
    const char *t = mpn_test_str_at(b, "text");
    shortened += t && strstr(t, "... (shortened)") != NULL;
    bt |= t && !strncmp(t, "#0  bad_fn", 10);
  }
  CHECK(shortened >= 2 && bt);   /* text and processes clipped, the backtrace kept */
  json_decref(o);
  curl_slist_free_all(a.headers);
  free(a.url);
  free(a.body);
  /* Control characters and quotes grow sixfold and twofold as JSON: measured once dumped. */
  for (size_t i = 0; i < 200000; i++)
    text[i] = i % 2 ? '"' : '\x01';
  text[200000] = '\0';
  mpn_message_set_text(m, text);
  CURL *easy = a.easy;
  memset(&a, 0, sizeof a);
  a.easy = easy;
  CHECK(ch.kind->prepare(&ch, m, &a) == MPN_OK);
  CHECK(a.body && strlen(a.body) <= 28 * 1024 && strstr(a.body, "\\u0001\\\"\\u0001"));
  curl_slist_free_all(a.headers);
  curl_easy_cleanup(a.easy);
  free(a.url);
  free(a.body);
  mpn__channel_free(&ch);
  mpn_message_free(m);
  free(text);
  free(url);
}

/* What Telegram counts in an HTML text: tags dropped, entities one character, UTF-16 units. */
static size_t telegram_visible(const char *html)
{
  size_t n = 0;
  for (const char *p = html; *p;) {
    if (*p == '<') {
      p += strcspn(p, ">") + 1;
    } else if (*p == '&') {
      CHECK(!strncmp(p, "&lt;", 4) || !strncmp(p, "&gt;", 4) || !strncmp(p, "&amp;", 5) || !strncmp(p, "&quot;", 6));
      p += strcspn(p, ";") + 1;
      n++;
    } else {
      n += ((unsigned char)*p & 0xc0) == 0x80 ? 0 : (unsigned char)*p >= 0xf0 ? 2 : 1;
      p++;
    }
  }
  return n;
}

TEST(chat_telegram_shape)
{
  char *url = NULL;
  mpn_message *m = chat_msg("message", "job <7> & \"x\"", "a <i>b</i>", "info");
  json_t *o = chat_payload("https://api.telegram.org/bot123:abc/sendMessage?chat_id=-1001", m, &url);
  CHECK_STR(url, "https://api.telegram.org/bot123:abc/sendMessage");
  CHECK_STR(mpn_test_str_at(o, "chat_id"), "-1001");
  CHECK_STR(mpn_test_str_at(o, "parse_mode"), "HTML");
  CHECK(json_is_true(json_object_get(o, "disable_notification")));
  const char *text = mpn_test_str_at(o, "text");
  CHECK(text && strstr(text, "<b>job &lt;7&gt; &amp; &quot;x&quot;</b>") && strstr(text, "a &lt;i&gt;b&lt;/i&gt;"));
  CHECK(text && strstr(text, "mpinotify " MPN_VERSION_STRING));
  json_decref(o);
  mpn_message_free(m);
  free(url);
  m = chat_msg("message", "down", NULL, "critical");
  o = chat_payload("telegram+http://127.0.0.1:9/bot123:abc/?chat_id=%40my_channel", m, &url);
  CHECK_STR(url, "http://127.0.0.1:9/bot123:abc/sendMessage");
  CHECK_STR(mpn_test_str_at(o, "chat_id"), "@my_channel");
  CHECK(json_is_false(json_object_get(o, "disable_notification")));
  json_decref(o);
  mpn_message_free(m);
  free(url);
  m = chat_crash(3);
  o = chat_payload("telegram+http://127.0.0.1:9/bot1:a/sendMessage?chat_id=5", m, NULL);
  text = mpn_test_str_at(o, "text");
  CHECK(text && strstr(text, "<b>Signal:</b> SIGSEGV\n") && strstr(text, "<code>1,3,5</code>"));
  CHECK(text && strstr(text, "<pre>#0  bad_fn+0x1d (train+0x1139)\n") && strstr(text, "_&lt;T&amp;2&gt;"));
  CHECK(json_is_false(json_object_get(o, "disable_notification")));
  json_decref(o);
  mpn_message_free(m);
}

TEST(chat_telegram_limits)
{
  char *big = chat_big_text();
  mpn_message *m = chat_msg("message", "big", big, "info");
  json_t *o = chat_payload("telegram+https://api.telegram.org/bot1:a/sendMessage?chat_id=5", m, NULL);
  const char *text = mpn_test_str_at(o, "text");
  size_t n = text ? telegram_visible(text) : 0;
  CHECK(n > 2000 && n <= 4096 && strstr(text, "... (shortened)"));
  json_decref(o);
  mpn_message_free(m);
  m = chat_crash(5000);
  mpn_message_set_text(m, big);
  o = chat_payload("telegram+https://api.telegram.org/bot1:a/sendMessage?chat_id=5", m, NULL);
  text = mpn_test_str_at(o, "text");
  n = text ? telegram_visible(text) : 0;
  CHECK(n > 2000 && n <= 4096 && strstr(text, "<b>Ranks:</b> 5000 of 10002") && strstr(text, "<pre>#0  bad_fn"));
  json_decref(o);
  mpn_message_free(m);
  free(big);
}

TEST(chat_options)
{
  static const char *const good[] = {
    "slack+https://h.example/x?mention=%3C%40U0123%3E%20%3C!subteam%5ES1%3E", "slack+https://h.example/x?mention=here",
    "discord+https://h.example/x?mention=%3C%40%26123%3E,%3C%40!456%3E,%40here",
    "telegram+https://h.example/bot1:a?chat_id=-100123", "telegram+https://h.example/bot1:a?chat_id=%40chan_1",
  };
  static const char *const bad[] = {
    "slack+https://h.example/x?mention=%40here", "slack+https://h.example/x?mention=U0123",
    "slack+https://h.example/x?mention=", "discord+https://h.example/x?mention=%3C%40abc%3E",
    "discord+https://h.example/x?mention=%3C!here%3E", "telegram+https://h.example/bot1:a?chat_id=abc",
    "telegram+https://h.example/bot1:a?chat_id=%40",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    mpn__channel ch;
    parse_ok(good[i], &ch);
    mpn__channel_free(&ch);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[1024] = "";
    mpn__channel ch;
    CHECK(mpn__parse_channel(bad[i], &ch, err, sizeof err) == MPN_E_BAD_CONFIG);
    CHECK(strstr(err, "mention") || strstr(err, "chat_id"));
  }
}

TEST(chat_answers)
{
  const mpn__kind *tg = mpn__kind_by_name("telegram", 8), *slack = mpn__kind_by_name("slack", 5);
  const mpn__kind *teams = mpn__kind_by_name("teams", 5);
  const char *busy = "{\"ok\":false,\"error_code\":429,\"description\":\"Too Many Requests: retry after 15\","
                     "\"parameters\":{\"retry_after\":15}}";
  mpn__verdict v;
  memset(&v, 0, sizeof v);
  v.retry_after_ms = -1;
  tg->judge(NULL, 429, busy, strlen(busy), &v);
  CHECK(v.code == MPN_E_RATE_LIMITED && v.retry && v.retry_after_ms == 15000);
  CHECK(strstr(v.detail, "HTTP 429: Too Many Requests: retry after 15"));
  const char *bad = "{\"ok\":false,\"error_code\":400,\"description\":\"Bad Request: chat not found\"}";
  memset(&v, 0, sizeof v);
  tg->judge(NULL, 400, bad, strlen(bad), &v);
  CHECK(v.code == MPN_E_HTTP_STATUS && !v.retry && !strcmp(v.detail, "HTTP 400: Bad Request: chat not found"));
  memset(&v, 0, sizeof v);
  tg->judge(NULL, 200, "{\"ok\":true,\"result\":{}}", 23, &v);
  CHECK(v.code == MPN_OK);
  CHECK(!slack->judge && !teams->judge);   /* the default judge: 2xx success, the body in the detail */
  memset(&v, 0, sizeof v);
  mpn__judge_http(NULL, 404, "no_service", 10, &v);
  CHECK(v.code == MPN_E_HTTP_STATUS && !v.retry && !strcmp(v.detail, "HTTP 404: no_service"));
  memset(&v, 0, sizeof v);
  mpn__judge_http(NULL, 202, "", 0, &v);   /* Teams Workflows */
  CHECK(v.code == MPN_OK);
}

/* ---- email: a one-connection SMTP responder, to see the message curl sends ---- */

typedef struct email_srv {
  int lfd, port;
  const char *end_reply;   /* the answer to the final "." */
  mpn__buf data;           /* DATA as received, dot-unstuffed */
  pthread_t th;
} email_srv;

static void *email_srv_main(void *arg)
{
  email_srv *s = arg;
  struct pollfd p = {s->lfd, POLLIN, 0};
  int fd = poll(&p, 1, 20000) == 1 ? accept(s->lfd, NULL, NULL) : -1;
  FILE *in = fd >= 0 ? fdopen(fd, "r") : NULL, *out = in ? fdopen(dup(fd), "w") : NULL;
  char line[8192];
  if (out)
    fputs("220 unit ESMTP\r\n", out), fflush(out);
  while (out && fgets(line, sizeof line, in)) {
    if (!strncasecmp(line, "EHLO", 4) || !strncasecmp(line, "HELO", 4))
      fputs("250-unit\r\n250 8BITMIME\r\n", out);
    else if (!strncasecmp(line, "DATA", 4)) {
      fputs("354 go on\r\n", out), fflush(out);
      while (fgets(line, sizeof line, in) && strcmp(line, ".\r\n"))
        mpn__buf_add(&s->data, "%s", line[0] == '.' ? line + 1 : line);
      fprintf(out, "%s\r\n", s->end_reply);
    } else if (!strncasecmp(line, "QUIT", 4)) {
      fputs("221 bye\r\n", out);
      break;
    } else
      fputs("250 ok\r\n", out);
    fflush(out);
  }
  if (out)
    fclose(out);
  if (in)
    fclose(in);
  else if (fd >= 0)
    close(fd);
  return NULL;
}

/* Sends m through the email channel `spec` (its "%d" is the port) with the
 * engine's own steps: prepare, perform, then the judge. Returns DATA. */
static char *email_roundtrip(const char *spec, const mpn_message *m, const char *end_reply, mpn__verdict *v,
                             struct curl_slist **rcpt_copy)
{
  email_srv s = {.end_reply = end_reply, .data = {malloc(65536), 0, 65536}};
  s.data.p[0] = '\0';
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t alen = sizeof a;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  s.lfd = socket(AF_INET, SOCK_STREAM, 0);
  CHECK(bind(s.lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(s.lfd, 1) == 0);
  getsockname(s.lfd, (struct sockaddr *)&a, &alen);
  s.port = ntohs(a.sin_port);
  pthread_create(&s.th, NULL, email_srv_main, &s);
  char url[1024], err[1024] = "";
  snprintf(url, sizeof url, spec, s.port);
  mpn__channel ch;
  CHECK(mpn__parse_channel(url, &ch, err, sizeof err) == MPN_OK);
  mpn__attempt at;
  memset(&at, 0, sizeof at);
  at.easy = curl_easy_init();
  curl_easy_setopt(at.easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(at.easy, CURLOPT_TIMEOUT_MS, 20000L);
  CHECK(ch.kind && ch.kind->prepare(&ch, m, &at) == MPN_OK);
  CURLcode rc = curl_easy_perform(at.easy);
  long status = 0;
  curl_easy_getinfo(at.easy, CURLINFO_RESPONSE_CODE, &status);
  memset(v, 0, sizeof *v);
  if (rc == CURLE_OK || status >= 400)
    ch.kind->judge(&ch, status, NULL, 0, v);
  else
    v->code = MPN_E_DELIVERY;
  for (struct curl_slist *r = at.rcpt; rcpt_copy && r; r = r->next)
    *rcpt_copy = curl_slist_append(*rcpt_copy, r->data);
  curl_easy_cleanup(at.easy);   /* as the engine does: the handle first, then what it used */
  curl_slist_free_all(at.headers);
  curl_slist_free_all(at.rcpt);
  curl_mime_free(at.mime);
  free(at.url);
  free(at.body);
  pthread_join(s.th, NULL);
  close(s.lfd);
  mpn__channel_free(&ch);
  return s.data.p;
}

/* Quoted-printable decoding of one part (soft breaks and =XX). */
static char *email_qp(const char *s, size_t n)
{
  char *out = malloc(n + 1), *o = out;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '=' && i + 2 < n + 1 && s[i + 1] == '\r' && s[i + 2] == '\n') {
      i += 2;
    } else if (s[i] == '=' && i + 2 < n) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      *o++ = (char)strtol(hex, NULL, 16);
      i += 2;
    } else if (s[i] != '\r') {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

/* The decoded body of the part whose Content-Type line starts with `type`. */
static char *email_part(const char *data, const char *type)
{
  char want[128];
  snprintf(want, sizeof want, "\r\nContent-Type: %s", type);
  const char *h = strstr(data, want);
  const char *body = h ? strstr(h, "\r\n\r\n") : NULL;
  const char *end = body ? strstr(body + 4, "\r\n--") : NULL;
  return end ? email_qp(body + 4, (size_t)(end - body - 4)) : NULL;
}

static char *email_header(const char *data, const char *name)
{
  size_t n = strlen(name);
  for (const char *p = data; p && *p && strncmp(p, "\r\n", 2); p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
    if (!strncasecmp(p, name, n) && p[n] == ':') {
      const char *end = p + n + 1;
      while ((end = strstr(end, "\r\n")) && (end[2] == ' ' || end[2] == '\t'))
        end += 2;
      return end ? strndup(p + n + 2, (size_t)(end - p - n - 2)) : NULL;
    }
  }
  return NULL;
}

/* Decodes the RFC 2047 B-words of a Subject (UTF-8) and joins them. */
static char *email_words(const char *s)
{
  mpn__buf b = {malloc(1024), 0, 1024};
  b.p[0] = '\0';
  for (const char *p = strstr(s, "=?UTF-8?B?"); p; p = strstr(p, "=?UTF-8?B?")) {
    p += 10;
    const char *q = strstr(p, "?=");
    if (!q)
      break;
    unsigned char dec[256];
    int n = EVP_DecodeBlock(dec, (const unsigned char *)p, (int)(q - p));
    size_t pad = (size_t)(q[-1] == '=') + (size_t)(q[-2] == '=');
    if (n > 0)
      mpn__buf_add(&b, "%.*s", (int)(n - (int)pad), dec);
    p = q + 2;
  }
  return b.p;
}

static int email_count(const char *hay, const char *needle)
{
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

TEST(email_mime_structure)
{
  mpn_message *m = mpn_message_new("message");
  const char *title = "Disk <b>& full \xe2\x80\x94 Gr\xc3\xbc\xc3\x9f" "e";
  mpn_message_set_title(m, title);
  mpn_message_set_text(m, "line one\nline <i>two</i> & three");
  mpn_message_set_severity(m, "error");
  mpn_message_set_string(m, "job_name", "train-42");
  mpn__verdict v;
  struct curl_slist *rcpt = NULL;
  char *data = email_roundtrip("smtp://127.0.0.1:%d?to=a@x.org;b@y.org&to=c@z.org&starttls=no"
                               "&from=Ops%%20%%22Team%%22%%20<ops@x.org>", m, "250 queued", &v, &rcpt);
  CHECK(v.code == MPN_OK);
  CHECK(rcpt && !strcmp(rcpt->data, "<a@x.org>") && rcpt->next && !strcmp(rcpt->next->data, "<b@y.org>") &&
        rcpt->next->next && !strcmp(rcpt->next->next->data, "<c@z.org>") && !rcpt->next->next->next);
  char *subject = email_header(data, "Subject"), *to = email_header(data, "To"), *from = email_header(data, "From");
  char *ctype = email_header(data, "Content-Type"), *id = email_header(data, "Message-ID");
  char *words = subject ? email_words(subject) : NULL;
  CHECK(subject && !strncmp(subject, "=?UTF-8?B?", 10));
  CHECK_STR(words, "[mpinotify] Disk <b>& full \xe2\x80\x94 Gr\xc3\xbc\xc3\x9f" "e");
  CHECK_STR(to, "a@x.org, b@y.org, c@z.org");
  CHECK_STR(from, "\"Ops \\\"Team\\\"\" <ops@x.org>");
  CHECK(ctype && !strncmp(ctype, "multipart/alternative; boundary=", 32));
  char want_id[96];
  snprintf(want_id, sizeof want_id, "<%s@mpinotify>", m->id);
  CHECK_STR(id, want_id);
  char *date = email_header(data, "Date");
  CHECK(date && strlen(date) >= 29 && strstr(date, " +0000") && email_count(data, "MIME-Version: 1.0") == 1);
  free(date);
  /* Exactly two parts, text/plain first (RFC 2046), both UTF-8 */
  const char *plain_at = strstr(data, "Content-Type: text/plain; charset=utf-8");
  const char *html_at = strstr(data, "Content-Type: text/html; charset=utf-8");
  CHECK(plain_at && html_at && plain_at < html_at);
  CHECK(email_count(data, "\r\nContent-Type: ") == 2);
  char *plain = email_part(data, "text/plain"), *html = email_part(data, "text/html");
  CHECK(plain && strstr(plain, title) && strstr(plain, "line <i>two</i> & three") && strstr(plain, "train-42"));
  CHECK(plain && strstr(plain, "Severity:") && strstr(plain, "error"));
  CHECK(html && strstr(html, "Disk &lt;b&gt;&amp; full") && !strstr(html, "<b>&") && !strstr(html, "<i>two"));
  CHECK(html && strstr(html, "line &lt;i&gt;two&lt;/i&gt; &amp; three") && strstr(html, "<td>train-42</td>"));
  CHECK(html && strstr(html, "#d32f2f"));   /* the heading's colour says error */
  if (failures)
    fprintf(stderr, "---- DATA:\n%s\n", data);
  free(subject), free(to), free(from), free(ctype), free(id), free(words), free(plain), free(html), free(data);
  curl_slist_free_all(rcpt);
  mpn_message_free(m);
}

/* A 1 MiB text of worst-case characters and a 10,000-rank crash stay bounded. */
TEST(email_bounded)
{
  size_t big = 1 << 20;
  char *text = malloc(big + 1);
  for (size_t i = 0; i < big; i++)
    text[i] = "<&=\n"[i % 4];
  text[big] = '\0';
  mpn__buf j = {malloc(1 << 20), 0, 1 << 20};
  j.p[0] = '\0';
  mpn__buf_add(&j, "{\"schema\":\"mpinotify/1\",\"event\":\"crash\",\"severity\":\"critical\",\"title\":\"SIGSEGV in bad_fn\","
                   "\"signal\":\"SIGSEGV\",\"signature\":\"0123456789abcdef\",\"world_size\":20000,\"ranks\":[");
  for (int r = 0; r < 10000; r++)
    mpn__buf_add(&j, "%s%d", r ? "," : "", 2 * r);
  mpn__buf_add(&j, "],\"processes\":[");
  for (int r = 0; r < 10000; r++)
    mpn__buf_add(&j, "%s{\"rank\":%d,\"pid\":%d,\"hostname\":\"node%04d\"}", r ? "," : "", 2 * r, 1000 + r, r / 8);
  mpn__buf_add(&j, "],\"leader\":{\"rank\":0,\"pid\":1000,\"hostname\":\"node0000\"},\"backtrace\":[");
  for (int f = 0; f < 64; f++)
    mpn__buf_add(&j, "%s{\"index\":%d,\"module\":\"/x/libbig.so\",\"offset\":\"0x%x\",\"function\":\"fn_%d_%0200d\","
                     "\"function_offset\":\"0x1\"}", f ? "," : "", f, f, f, 0);
  mpn__buf_add(&j, "],\"election\":\"ok\",\"job\":{\"name\":\"big\",\"command\":\"./big\"}}");
  mpn_message *msgs[2] = {mpn_message_new("message"), mpn__message_from_json(j.p, NULL)};
  mpn_message_set_title(msgs[0], "A very long message");
  mpn_message_set_text(msgs[0], text);
  CHECK(msgs[1] != NULL);
  for (int i = 0; i < 2 && msgs[i]; i++) {
    mpn__verdict v;
    char *data = email_roundtrip("smtp://127.0.0.1:%d?to=a@x.org&starttls=no", msgs[i], "250 ok", &v, NULL);
    char *plain = email_part(data, "text/plain"), *html = email_part(data, "text/html");
    CHECK(v.code == MPN_OK);
    CHECK(strlen(data) < 1536 * 1024);   /* quoted-printable: "=" and non-ASCII take 3 bytes */
    CHECK(plain && strlen(plain) < 300 * 1024 && strstr(plain, "(shortened)"));
    CHECK(html && strlen(html) < 300 * 1024 && strstr(html, "(shortened)") && strstr(html, "</html>"));
    CHECK(html && !strstr(html, "<&") && !strstr(html, "&\n"));   /* escaped up to the cut, never half an entity */
    if (i == 1)
      CHECK(plain && strstr(plain, "10000 of 20000") && strstr(plain, "SIGSEGV in bad_fn") && strstr(html, "10000 of 20000"));
    fprintf(stderr, "message %d: DATA %zu bytes, text/plain %zu, text/html %zu\n", i, strlen(data),
            plain ? strlen(plain) : 0, html ? strlen(html) : 0);
    free(plain), free(html), free(data);
  }
  mpn_message_free(msgs[0]);
  mpn_message_free(msgs[1]);
  free(j.p);
  free(text);
}

TEST(email_judge)
{
  const mpn__kind *k = mpn__kind_by_name("email", 5);
  mpn__channel ch;
  char err[1024] = "";
  CHECK(mpn__parse_channel("smtp://u@127.0.0.1:2525?to=a@x.org&password=hunter2-very-secret", &ch, err, sizeof err) == MPN_OK);
  static const struct { long status; const char *body; int ok, retry; const char *detail; } cases[] = {
    {250, "220 hi\r\n250 2.0.0 queued\r\n", 1, 0, ""},
    {451, "220 hi\r\n250-ok\r\n250 ok\r\n451 4.3.0 try again later\r\n", 0, 1, "SMTP 451: 4.3.0 try again later"},
    {550, "250 ok\r\n550-5.1.1 first line\r\n550 5.1.1 user unknown\r\n", 0, 0, "SMTP 550: 5.1.1 user unknown"},
    {554, "", 0, 0, "SMTP 554"},
    {535, "535 5.7.8 bad password hunter2-very-secret\r\n", 0, 0, "SMTP 535 (authentication)"},
    {421, "421 4.7.0 \x01\xff closing\r\n", 0, 1, "SMTP 421: 4.7.0 ?? closing"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mpn__verdict v;
    memset(&v, 0, sizeof v);
    k->judge(&ch, cases[i].status, cases[i].body, strlen(cases[i].body), &v);
    CHECK((v.code == MPN_OK) == cases[i].ok && v.retry == cases[i].retry);
    CHECK_STR(v.detail, cases[i].detail);
    CHECK(!strstr(v.detail, "hunter2"));
  }
  mpn__channel_free(&ch);
}

TEST(email_options)
{
  static const char *const good[] = {
    "smtp://mail.example:587?to=a@x.org",
    "smtps://u:SECRETpw1@mail.example?to=a@x.org;b@y.org&to=c@z.org&from=Ops%20<ops@x.org>",
    "smtp://mail.example?to=a@x.org%2Cb@y.org&starttls=no&user=u&password=SECRETpw2",
  };
  static const char *const bad[] = {
    "smtp://mail.example?from=a@x.org&password=SECRETpw3",          /* no to= */
    "smtp://mail.example?to=;,&password=SECRETpw4",                  /* no recipient */
    "smtp://mail.example?to=not-an-address&password=SECRETpw5",
    "smtp://mail.example?to=a@x.org%0D%0ARCPT%20TO:<b@y.org>",       /* command injection */
    "smtp://mail.example?to=a@x.org&from=a@x.org%0D%0ABcc:%20b@y.org", /* header injection */
    "smtp://mail.example?to=a@x.org&from=Ops%20<ops@x.org",
    "smtp://mail.example?to=a@x.org&starttls=maybe&password=SECRETpw6",
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    mpn__channel ch;
    char err[1024] = "";
    CHECK(mpn__parse_channel(good[i], &ch, err, sizeof err) == MPN_OK);
    if (err[0])
      fprintf(stderr, "%s -> %s\n", good[i], err);
    mpn__channel_free(&ch);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mpn__channel ch;
    char err[1024] = "";
    CHECK(mpn__parse_channel(bad[i], &ch, err, sizeof err) == MPN_E_BAD_CONFIG);
    CHECK(err[0] && !strstr(err, "SECRET"));
    fprintf(stderr, "%s -> %s\n", bad[i], err);
    mpn__channel_free(&ch);
  }
}

TEST(chat_crash_whole)
{
  /* A small crash (the README's sample) arrives whole on every chat channel: nothing shortened. */
  const char *sample =
      "{\"schema\":\"mpinotify/1\",\"event\":\"crash\",\"title\":\"SIGSEGV on 3 of 8 ranks (job demo)\","
      "\"severity\":\"critical\",\"signature\":\"6f3a1c0b9d2e4f71\",\"signal\":\"SIGSEGV\",\"signal_number\":11,"
      "\"timestamp\":\"2026-11-22T06:04:52.393Z\",\"ranks\":[1,3,6],\"world_size\":8,\"election\":\"ok\","
      "\"leader\":{\"rank\":1,\"pid\":9911,\"hostname\":\"node17\"},\"processes\":[{\"rank\":1,\"pid\":9911,"
      "\"hostname\":\"node17\"},{\"rank\":3,\"pid\":9913,\"hostname\":\"node17\"},{\"rank\":6,\"pid\":9916,"
      "\"hostname\":\"node18\"}],\"backtrace\":[{\"index\":0,\"module\":\"/home/me/demo_crash\",\"offset\":\"0x1249\","
      "\"function\":\"update_weights\",\"function_offset\":\"0x10\"},{\"index\":1,\"module\":\"/lib/libc.so.6\","
      "\"offset\":\"0x2724a\",\"function\":null,\"function_offset\":null}],\"job\":{\"name\":\"demo\","
      "\"command\":\"mpirun -np 8 demo_crash 1,3,6\"},\"mpinotify_version\":\"0.1.0\"}";
  static const char *const specs[] = {
    "slack+http://127.0.0.1:9/x", "discord+http://127.0.0.1:9/api/webhooks/1/t", "teams+http://127.0.0.1:9/w",
    "telegram+http://127.0.0.1:9/bot1:a?chat_id=1",
  };
  mpn_message *m = mpn__message_from_json(sample, NULL);
  for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
    json_t *o = chat_payload(specs[i], m, NULL);
    char *all = json_dumps(o, 0);
    CHECK(all && !strstr(all, "shortened"));
    CHECK(all && strstr(all, "#1  ?? (libc.so.6+0x2724a)") && strstr(all, "rank 6  pid 9916  node18"));
    CHECK(all && strstr(all, "node17, node18") && strstr(all, "mpirun -np 8 demo_crash 1,3,6"));
    CHECK(all && strstr(all, "2026-11-22T06:04:52.393Z") && strstr(all, "6f3a1c0b9d2e4f71"));
    if (!all || strstr(all, "shortened"))
      fprintf(stderr, "%s: %s\n", specs[i], all);
    free(all);
    json_decref(o);
  }
  mpn_message_free(m);
}

TEST(channel_kind_table)
{
  int n = 0, http = 0;
  for (const mpn_channel_kind *k; (k = mpn_channel_kind_at(n)) != NULL; n++) {
    CHECK(k->name && *k->name && k->form && *k->form && !strchr(k->form, '\n'));
    char plus[64];
    snprintf(plus, sizeof plus, "%s+https://", k->name);
    http += !strncmp(k->form, plus, strlen(plus));
    CHECK(mpn__kind_by_name(k->name, strlen(k->name)) != NULL);   /* every listed kind is one the URLs take */
  }
  CHECK(n == 10 && http == 8);
  CHECK(mpn_channel_kind_at(-1) == NULL && mpn_channel_kind_at(n) == NULL);
}

TEST(transfer_url_parts)
{
  mpn__url u;
  const char *why = "";
  CHECK(mpn__url_parse(&u, "https://hooks.example.com/a%20b?token=x&wait=1", &why) == MPN_OK);
  CHECK_STR(u.host, "hooks.example.com");
  CHECK_STR(u.path, "/a%20b");
  CHECK_STR(u.query, "token=x&wait=1");
  char *full = mpn__url_rebuild(&u, "wait=1");
  CHECK_STR(full, "https://hooks.example.com/a%20b?wait=1");
  free(full);
  full = mpn__url_rebuild(&u, NULL);
  CHECK_STR(full, "https://hooks.example.com/a%20b");
  free(full);
  mpn__url_free(&u);
  CHECK(mpn__url_parse(&u, "https://", &why) == MPN_E_BAD_URL && *why);
  mpn__url_free(&u);
  CHECK(mpn__url_parse(&u, "https:///path", &why) == MPN_E_BAD_URL && *why);
  mpn__url_free(&u);
  CHECK(mpn__url_parse(&u, "smtp://mail.example.com", &why) == MPN_OK && !strcmp(u.path, "/") && !u.query);
  mpn__url_free(&u);
  char *esc = mpn__url_escape("a b&c"), *raw = mpn__url_unescape("a%20b%26cXX", 9);
  CHECK_STR(esc, "a%20b%26c");
  CHECK_STR(raw, "a b&c");
  free(esc);
  free(raw);
}

TEST(transfer_failure_classes)
{
  /* a loopback port nobody listens on: refused before anything was sent, worth another attempt */
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(s, (struct sockaddr *)&a, &len) == 0);
  close(s);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/relay", ntohs(a.sin_port));
  mpn__xfer_result r;
  CHECK(mpn__relay_post_once(url, "x", 1, 2000, &r) == 0);
  CHECK(r.code == MPN_E_CONNECT && r.retry == MPN__XFER_AGAIN && !r.sent && r.status == 0 && *r.error);
  CHECK(!strstr(r.error, "127.0.0.1"));   /* a fixed description: never the URL */
  /* a scheme the transfers refuse: final */
  CHECK(mpn__relay_post_once("https://127.0.0.1:1/relay", "x", 1, 2000, &r) == 0);
  CHECK(r.code == MPN_E_DELIVERY && r.retry == MPN__XFER_FINAL && !r.sent);
}

TEST(kind_schemes_aliases)
{
  const mpn__kind *email = mpn__kind_by_name("email", 5), *feishu = mpn__kind_by_name("feishu", 6);
  CHECK(mpn__kind_by_scheme("smtp://h") == email && mpn__kind_by_scheme("smtps://h") == email);
  CHECK(mpn__kind_by_scheme("smtp:h") == NULL && mpn__kind_by_scheme("slack+https://h") == NULL);
  CHECK(mpn__kind_by_scheme("console") == mpn__kind_by_name("console", 7));
  CHECK(mpn__kind_by_scheme("console:stderr") == mpn__kind_by_name("console", 7));
  CHECK(mpn__kind_by_scheme("https://h") == mpn__kind_by_name("webhook", 7));
  CHECK(mpn__kind_by_name("lark", 4) == feishu);
  CHECK(mpn__kind_reserved("lark") && mpn__kind_reserved("smtps") && mpn__kind_reserved("http") &&
        mpn__kind_reserved("slack") && !mpn__kind_reserved("myhook"));
  CHECK_STR(mpn__kind_names(), "console://, webhook+, slack+, discord+, dingtalk+, feishu+, lark+, teams+, telegram+, "
                               "pagerduty+ (each followed by http:// or https://), smtp://, smtps://");
}
