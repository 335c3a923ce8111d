/* test_unit.c - unit tests as a list, one per process (libuv's model):
 * `test_unit NAME` runs one; exit status 0 is a pass. */
#include "runtime/runtime.h"
#include "launcher/launcher.h"

#include <curl/curl.h>
#include "../common/json_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
      failures++;                                                                   \
    }                                                                               \
  } while (0)

#define CHECK_STR(a, b)                                                             \
  do {                                                                              \
    const char *a_ = (a), *b_ = (b);                                                \
    if (!a_ || !b_ || strcmp(a_, b_)) {                                             \
      fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
      failures++;                                                                   \
    }                                                                               \
  } while (0)

static void test_strerror_fixed_strings(void)
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
}

static void test_utf8_sanitize(void)
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

static mpn__event sample_event;

static void sample_report(mpn__report *r, mpn__proc *procs, int n)
{
  memset(r, 0, sizeof *r);
  memset(&sample_event, 0, sizeof sample_event);
  sample_event.kind = "crash";
  sample_event.signo = SIGSEGV;
  sample_event.fault_addr = 0x10;
  sample_event.wall_ns = 1700000000123456789LL;
  sample_event.signature = 0xabcdef0123456789ULL;
  sample_event.nframes = 2;
  strcpy(sample_event.frames[0].module, "/opt/app/bin/train");
  sample_event.frames[0].offset = 0x1139;
  strcpy(sample_event.frames[0].function, "bad_fn");
  sample_event.frames[0].function_offset = 0x1d;
  sample_event.frames[0].has_function = 1;
  strcpy(sample_event.frames[1].module, "/lib/libc.so.6");
  sample_event.frames[1].offset = 0x2724a;
  for (int i = 0; i < n; i++) {
    procs[i].rank = i * 2 + 1;
    procs[i].pid = 4000 + i;
    snprintf(procs[i].host, sizeof procs[i].host, "node%d", i);
  }
  r->event = &sample_event;
  r->first_wall_ns = sample_event.wall_ns;
  r->leader = procs[0];
  r->procs = procs;
  r->nprocs = n;
  r->world_size = 8;
  r->election = "ok";
}

static void test_json_arbitrary_bytes(void)
{
  mpn__proc procs[2];
  mpn__report r;
  unsigned seed = 12345;
  for (int round = 0; round < 200; round++) {
    sample_report(&r, procs, 2);
    char junk[200];
    for (size_t i = 0; i + 1 < sizeof junk; i++) {
      seed = seed * 1103515245u + 12345u;
      junk[i] = (char)(1 + (seed >> 16) % 255);   /* every byte but NUL */
    }
    junk[sizeof junk - 1] = '\0';
    memcpy(sample_event.frames[0].function, junk, sizeof junk);
    memcpy(procs[1].host, junk, sizeof procs[1].host - 1);
    procs[1].host[sizeof procs[1].host - 1] = '\0';
    r.job_name = junk;
    char *text = mpn__report_json(&r);
    CHECK(text != NULL);
    json_error_t err;
    json_t *doc = text ? json_loads(text, 0, &err) : NULL;
    if (!doc)
      fprintf(stderr, "round %d: invalid JSON: %s\n", round, err.text);
    CHECK(doc != NULL);
    CHECK(json_is_string(json_object_get(json_object_get(doc, "job"), "name")));
    json_decref(doc);
    free(text);
  }
}

static void test_json_schema_fields(void)
{
  mpn__proc procs[3];
  mpn__report r;
  sample_report(&r, procs, 3);
  r.job_name = "train \"big\" na\xc3\xafve";
  char *text = mpn__report_json(&r);
  json_t *doc = json_loads(text, 0, NULL);
  CHECK(doc != NULL);
  CHECK_STR(json_string_value(json_object_get(doc, "schema")), "mpinotify/1");
  CHECK_STR(json_string_value(json_object_get(doc, "event")), "crash");
  CHECK_STR(json_string_value(json_object_get(doc, "signature")), "abcdef0123456789");
  CHECK_STR(json_string_value(json_object_get(doc, "signal")), "SIGSEGV");
  CHECK(json_integer_value(json_object_get(doc, "signal_number")) == 11);
  CHECK_STR(json_string_value(json_object_get(doc, "fault_address")), "0x10");
  CHECK_STR(json_string_value(json_object_get(doc, "timestamp")), "2023-11-14T22:13:20.123Z");
  json_t *ranks = json_object_get(doc, "ranks");
  CHECK(json_array_size(ranks) == 3 && json_integer_value(json_array_get(ranks, 2)) == 5);
  CHECK(json_integer_value(json_object_get(doc, "world_size")) == 8);
  CHECK_STR(json_string_value(json_object_get(doc, "election")), "ok");
  json_t *leader = json_object_get(doc, "leader");
  CHECK(json_integer_value(json_object_get(leader, "rank")) == 1);
  CHECK(json_integer_value(json_object_get(leader, "pid")) == 4000);
  CHECK_STR(json_string_value(json_object_get(leader, "hostname")), "node0");
  json_t *p2 = json_array_get(json_object_get(doc, "processes"), 2);
  CHECK(json_integer_value(json_object_get(p2, "rank")) == 5);
  CHECK_STR(json_string_value(json_object_get(p2, "hostname")), "node2");
  json_t *f0 = json_array_get(json_object_get(doc, "backtrace"), 0);
  CHECK(json_integer_value(json_object_get(f0, "index")) == 0);
  CHECK_STR(json_string_value(json_object_get(f0, "module")), "/opt/app/bin/train");
  CHECK_STR(json_string_value(json_object_get(f0, "offset")), "0x1139");
  CHECK_STR(json_string_value(json_object_get(f0, "function")), "bad_fn");
  CHECK_STR(json_string_value(json_object_get(f0, "function_offset")), "0x1d");
  json_t *f1 = json_array_get(json_object_get(doc, "backtrace"), 1);
  CHECK(json_is_null(json_object_get(f1, "function")));
  CHECK_STR(json_string_value(json_object_get(json_object_get(doc, "job"), "name")), "train \"big\" na\xc3\xafve");
  json_decref(doc);
  free(text);
}

static void test_mask_url_hides_secrets(void)
{
  char out[256];
  struct { const char *in, *out; } cases[] = {
    {"https://hooks.slack.com/services/T0001/B0002/XXXXSECRET", "https://hooks.slack.com/services/***/***/***"},
    {"webhook+http://user:hunter2@host:8080/hook?token=SECRET&x=1", "webhook+http://user:***@host:8080/hook?token=***&x=***"},
    {"https://api.telegram.org/bot123:SECRET/sendMessage", "https://api.telegram.org/***/***"},
    {"smtp://mail.example.com:587", "smtp://mail.example.com:587"},
    {"not a url SECRET", "***"},
    {"https://h/p#SECRET", "https://h/p#***"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(mpn_mask_url(cases[i].in, out, sizeof out) == MPN_OK);
    CHECK_STR(out, cases[i].out);
    CHECK(!strstr(out, "SECRET") && !strstr(out, "hunter2"));
  }
  char small[12];
  CHECK(mpn_mask_url(cases[0].in, small, sizeof small) == MPN_E_BUFFER_TOO_SMALL);
  CHECK(strlen(small) == sizeof small - 1 && !strstr(small, "SECRET"));
  CHECK(mpn_mask_url(NULL, out, sizeof out) == MPN_E_INVALID_ARGUMENT);
}

static void test_mask_command(void)
{
  char *m = mpn__mask_command("mpinotify-run --url=https://h.example/a/SECRET --url webhook+http://h/x/SECRET -- ./train");
  CHECK(m && !strstr(m, "SECRET"));
  CHECK(m && strstr(m, "--url=https://h.example/a/***") && strstr(m, "./train"));
  free(m);
}

static void test_check_urls_valid(void)
{
  char err[256];
  CHECK(mpn_check_urls("", err, sizeof err) == MPN_OK);
  CHECK(mpn_check_urls(NULL, err, sizeof err) == MPN_OK);
  CHECK(mpn_check_urls("webhook+http://127.0.0.1:9/x, console://  webhook+https://h.example/a?b=c", err, sizeof err) == MPN_OK);
  CHECK_STR(err, "");
  mpn__channel ch;
  CHECK(mpn__parse_channel("webhook+https://h.example/a/SECRET", &ch, err, sizeof err) == MPN_OK);
  CHECK_STR(ch.kind->name, "webhook");
  CHECK_STR(ch.url, "https://h.example/a/SECRET");
  CHECK_STR(ch.masked, "webhook+https://h.example/a/***");
  mpn__channel_free(&ch);
  /* A comma inside a URL's options stays; a comma before another channel separates. */
  mpn__config cfg;
  setenv("MPINOTIFY_URLS", "smtp://mail.example?to=a@x.org,b@y.org,webhook+https://h.example/x, console://", 1);
  unsetenv("MPINOTIFY_CONFIG");
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.nchannels == 3);
  if (cfg.nchannels == 3) {
    CHECK_STR(cfg.channels[0].kind->name, "email");
    CHECK_STR(mpn__channel_opt(&cfg.channels[0], "to"), "a@x.org,b@y.org");
    CHECK_STR(cfg.channels[1].kind->name, "webhook");
  }
  mpn__config_free(&cfg);
  unsetenv("MPINOTIFY_URLS");
}

static void test_check_urls_errors(void)
{
  char err[256];
  CHECK(mpn_check_urls("webhook+http://[bad/SECRET", err, sizeof err) == MPN_E_BAD_URL);
  CHECK(strstr(err, "malformed channel URL") && !strstr(err, "SECRET"));
  CHECK(mpn_check_urls("console:// gopher://h/SECRET", err, sizeof err) == MPN_E_UNKNOWN_KIND);
  CHECK(strstr(err, "unknown channel kind") && !strstr(err, "SECRET"));
  CHECK(mpn_check_urls("webhook+http:///nohost", err, sizeof err) == MPN_E_BAD_URL);
  CHECK(strstr(err, "webhook+http://"));
}

static void test_rank_ranges(void)
{
  char out[64];
  int a[] = {0, 1, 2, 3, 6, 8, 9};
  mpn__rank_ranges(a, 7, out, sizeof out);
  CHECK_STR(out, "0-3,6,8-9");
  int b[] = {5};
  mpn__rank_ranges(b, 1, out, sizeof out);
  CHECK_STR(out, "5");
  mpn__rank_ranges(b, 0, out, sizeof out);
  CHECK_STR(out, "");
}

static void frame(mpn__frame *f, const char *module, uintptr_t base, uintptr_t offset)
{
  memset(f, 0, sizeof *f);
  strcpy(f->module, module);
  f->ip = base + offset;
  f->offset = offset;
}

static void test_signature_ignores_load_address(void)
{
  mpn__frame a[3], b[3];
  frame(&a[0], "/nodeA/app", 0x555500000000, 0x1139);
  frame(&a[1], "/nodeA/app", 0x555500000000, 0x1232);
  frame(&a[2], "/lib/libc.so.6", 0x7f0000000000, 0x2724a);
  frame(&b[0], "/nodeB/app", 0x563300000000, 0x1139);   /* other ASLR base, other mount */
  frame(&b[1], "/nodeB/app", 0x563300000000, 0x1232);
  frame(&b[2], "/lib/libc.so.6", 0x7fab00000000, 0x2724a);
  CHECK(mpn__signature(SIGSEGV, a, 3) == mpn__signature(SIGSEGV, b, 3));
  b[0].offset = 0x1140;   /* another instruction: another bug */
  CHECK(mpn__signature(SIGSEGV, a, 3) != mpn__signature(SIGSEGV, b, 3));
}

static void test_signature_skips_abort_frames(void)
{
  mpn__frame a[4], b[4];
  frame(&a[0], "/lib/libc.so.6", 0, 0x8ebcc);    /* pthread_kill */
  frame(&a[1], "/lib/libc.so.6", 0, 0x3c0a2);    /* raise */
  frame(&a[2], "/lib/libc.so.6", 0, 0x264ff);    /* abort */
  frame(&a[3], "/opt/app", 0, 0x1200);           /* first abort() site */
  memcpy(b, a, sizeof a);
  b[3].offset = 0x1300;                          /* second abort() site */
  CHECK(mpn__signature_first_frame(SIGABRT, a, 4) == 3);
  CHECK(mpn__signature(SIGABRT, a, 4) != mpn__signature(SIGABRT, b, 4));
  /* A segfault inside libc keeps its libc frame. */
  CHECK(mpn__signature_first_frame(SIGSEGV, a, 4) == 0);
}

static void test_signature_differs_by_signal(void)
{
  mpn__frame a[1];
  frame(&a[0], "/opt/app", 0, 0x1200);
  CHECK(mpn__signature(SIGSEGV, a, 1) != mpn__signature(SIGBUS, a, 1));
}

static void test_options_setters(void)
{
  mpn_options *o = mpn_options_new();
  CHECK(o != NULL);
  CHECK(mpn_options_set_urls(o, "console://") == MPN_OK);
  CHECK(mpn_options_set_urls(o, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_urls(NULL, "x") == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_timeout_ms(o, 99) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_timeout_ms(o, 5000) == MPN_OK);
  CHECK(mpn_options_set_window_ms(o, -1) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_window_ms(o, 0) == MPN_OK);
  CHECK(mpn_options_set_job_name(o, "n") == MPN_OK);
  mpn_options_free(o);
  mpn_options_free(NULL);
  /* Under MPINOTIFY_DISABLE the library refuses, and still frees the options. */
  CHECK(mpn_init(mpn_options_new()) == MPN_E_DISABLED);
  CHECK(mpn_is_active() == 0);
}

static void test_fmt_signal_safe(void)
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

/* ---- relay: sealed frames and the HTTP listener --------------------------- */
static const unsigned char relay_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Opens a frame expecting failure; returns why. */
static const char *relay_fails(const unsigned char *key, const char *frame, size_t len)
{
  const char *why = NULL;
  size_t n = 0;
  char *plain = mpn__relay_open(key, frame, len, &n, &why);
  CHECK(plain == NULL);
  free(plain);
  return why;
}

static void test_relay_seal_roundtrip(void)
{
  const char msg[] = "{\"schema\":\"mpinotify/1\",\"secret\":\"s3cr3t\"}";
  size_t flen = 0, plen = 0;
  char *frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(frame && flen == 24 + strlen(msg) + 16 && !memcmp(frame, "MPR1", 4));
  CHECK(frame && !memmem(frame, flen, "s3cr3t", 6));
  for (size_t i = 0; frame && i < flen; i++) {   /* every byte is covered by magic, AAD or tag */
    frame[i] ^= 0x01;
    const char *why = relay_fails(relay_key, frame, flen);
    CHECK_STR(why, i < 4 ? "malformed" : "forged");
    frame[i] ^= 0x01;
  }
  CHECK_STR(relay_fails(relay_key, frame, flen - 1), "forged");
  CHECK_STR(relay_fails(relay_key, frame, 39), "malformed");
  CHECK_STR(relay_fails(relay_key, NULL, 0), "malformed");
  unsigned char other[32];
  memcpy(other, relay_key, 32);
  other[31] ^= 0x80;
  CHECK_STR(relay_fails(other, frame, flen), "forged");
  char *plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
  CHECK(plain && plen == strlen(msg) && !memcmp(plain, msg, plen) && plain[plen] == '\0');
  free(plain);
  CHECK_STR(relay_fails(relay_key, frame, flen), "replayed");
  free(frame);

  int64_t now_ms = mpn__wall_ns() / 1000000;
  int64_t times[] = {now_ms - 10 * 60 * 1000, now_ms + 10 * 60 * 1000, -1, INT64_MAX};
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    frame = mpn__relay_seal_at(relay_key, msg, strlen(msg), times[i], &flen);
    CHECK_STR(relay_fails(relay_key, frame, flen), "stale");
    free(frame);
  }
  frame = mpn__relay_seal_at(relay_key, "", 0, now_ms - 4 * 60 * 1000, &flen);   /* old but fresh */
  plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
  CHECK(plain && plen == 0 && plain[0] == '\0');
  free(plain);
  free(frame);
}

/* Many genuine frames: the nonce ring wraps without a false "replayed";
 * random and truncated bytes never open. */
static void test_relay_open_many(void)
{
  unsigned seed = 4242;
  char junk[300];
  for (int i = 0; i < 5000; i++) {
    size_t flen = 0, plen = 0;
    char *frame = mpn__relay_seal(relay_key, "m", 1, &flen);
    char *plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
    CHECK(plain && plen == 1);
    free(plain);
    size_t n = (size_t)i % sizeof junk;
    for (size_t j = 0; j < n; j++) {
      seed = seed * 1103515245u + 12345u;
      junk[j] = (char)(seed >> 16);
    }
    if (n >= 4 && i % 2)
      memcpy(junk, "MPR1", 4);
    const char *why = relay_fails(relay_key, junk, n);
    CHECK(why && (!strcmp(why, "malformed") || !strcmp(why, "forged")));
    CHECK(relay_fails(relay_key, frame, (size_t)i % flen) != NULL);
    free(frame);
  }
}

static void test_relay_hex_key(void)
{
  unsigned char key[32], back[32];
  char hex[65];
  mpn__relay_keygen(key);
  mpn__hex_encode(key, 32, hex);
  CHECK(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64);
  CHECK(mpn__hex_key(hex, back) == 0 && !memcmp(key, back, 32));
  for (int i = 0; i < 64; i++)
    hex[i] = "0123456789ABCDEF"[i % 16];
  CHECK(mpn__hex_key(hex, back) == 0 && back[0] == 0x01 && back[7] == 0xef);
  memset(back, 0x5a, sizeof back);
  const char *bad[] = {"", "00", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
                       " 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                       "0x23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL};
  for (int i = 0; bad[i]; i++)
    CHECK(mpn__hex_key(bad[i], back) != 0);
  CHECK(mpn__hex_key(NULL, back) != 0);
  CHECK(back[0] == 0x5a && back[31] == 0x5a);   /* a bad key leaves the buffer alone */
  unsigned char other[32];
  mpn__relay_keygen(other);
  CHECK(memcmp(key, other, 32));
}

typedef struct relay_rec {
  char seen[256 * 1024];
  size_t len;
  atomic_int calls;
  int refuse;
} relay_rec;

static int relay_record(const char *plain, size_t len, void *arg)
{
  relay_rec *r = arg;
  r->len = len < sizeof r->seen ? len : sizeof r->seen;
  memcpy(r->seen, plain, r->len);
  atomic_fetch_add(&r->calls, 1);
  return r->refuse;
}

static size_t relay_collect(char *data, size_t size, size_t n, void *arg)
{
  char *out = arg;
  size_t have = strlen(out), add = size * n;
  if (have + add < 256) {
    memcpy(out + have, data, add);
    out[have + add] = '\0';
  }
  return size * n;
}

/* One request with curl; returns the status, the answer's body in out. */
static long relay_curl(int port, const char *method, const char *path, const char *body, size_t len, char *out)
{
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  long status = 0;
  out[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, relay_collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  /* curl's own threshold for "Expect: 100-continue" differs by version. */
  struct curl_slist *headers = len > 64 * 1024 ? curl_slist_append(NULL, "Expect: 100-continue") : NULL;
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  return status;
}

static int relay_connect(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    fd = -1;
  }
  CHECK(fd >= 0);
  return fd;
}

/* Raw bytes, then the answer's status line; 0 if the server closed without one. */
static int relay_raw(int port, const char *data, size_t len, int half_close)
{
  int fd = relay_connect(port);
  if (fd < 0)
    return -1;
  if (len)
    (void)!send(fd, data, len, MSG_NOSIGNAL);
  if (half_close)
    shutdown(fd, SHUT_WR);
  char buf[512];
  size_t have = 0;
  struct pollfd p = {fd, POLLIN, 0};
  while (have + 1 < sizeof buf && poll(&p, 1, 20000) == 1) {
    ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0)
      break;
    have += (size_t)n;
  }
  buf[have] = '\0';
  close(fd);
  int status = 0;
  if (have && sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
    status = -2;
  return status;
}

static void test_relay_server_http(void)
{
  static relay_rec rec;
  char err[256], out[256];
  int port = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mpn__relay_server *s = mpn__relay_server_start(relay_key, relay_record, &rec, &port, err, sizeof err);
  CHECK(s != NULL && port > 0);
  if (!s)
    return;
  const char msg[] = "{\"id\":\"msg_1\"}";
  size_t flen = 0;
  char *frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK_STR(out, "{\"accepted\":true}\n");
  CHECK(atomic_load(&rec.calls) == 1 && rec.len == strlen(msg) && !memcmp(rec.seen, msg, rec.len));
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"replayed\"}\n");
  free(frame);
  CHECK(relay_curl(port, "POST", "/relay", "garbage", 7, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"malformed\"}\n");
  long acc = -1, rej = -1;
  mpn__relay_server_counts(s, &acc, &rej);
  CHECK(acc == 1 && rej == 2);

  unsigned char other[32];
  mpn__relay_keygen(other);
  frame = mpn__relay_seal(other, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"forged\"}\n");
  free(frame);
  CHECK(relay_curl(port, "GET", "/relay", NULL, 0, out) == 405);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"method not allowed\"}\n");
  CHECK(relay_curl(port, "POST", "/other", "x", 1, out) == 404);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"not found\"}\n");
  CHECK(relay_curl(port, "POST", "/relay?x", "x", 1, out) == 404);

  /* Sent with "Expect: 100-continue": the server says go on. */
  size_t big_len = 200 * 1024;
  char *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++)
    big[i] = (char)('a' + i % 26);
  frame = mpn__relay_seal(relay_key, big, big_len, &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK(rec.len == big_len && !memcmp(rec.seen, big, big_len));
  free(frame);
  free(big);

  rec.refuse = 1;
  frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 503);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"busy\"}\n");
  free(frame);

  static const struct { const char *req; int status; } raw[] = {
    {"POST /relay HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411},
    {"POST /relay HTTP/1.1\r\nHost: x\r\n\r\n", 411},
    {"POST /relay HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 411},
    {"POST /relay HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", 413},
    {"POST /relay HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
    {"POST /relay HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST /relay HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", 400},
    {"POST /relay HTTP/1.1\r\nno colon\r\n\r\n", 400},
    {"POST /relay\r\n\r\n", 400},
    {"POST  /relay HTTP/1.1\r\n\r\n", 400},
    {"\r\n\r\n", 400},
    {"POST /relay HTTP/1.1\nContent-Length: 3\n\nabc", 403},
    {"POST /relay HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0},   /* body cut short: no answer */
  };
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    int got = relay_raw(port, raw[i].req, strlen(raw[i].req), 1);
    if (got != raw[i].status)
      fprintf(stderr, "raw request %zu: status %d, expected %d\n", i, got, raw[i].status);
    CHECK(got == raw[i].status);
  }
  char *huge = malloc(10000);
  memset(huge, 'h', 10000);
  memcpy(huge, "POST /relay HTTP/1.1\r\nX: ", 25);
  CHECK(relay_raw(port, huge, 10000, 1) == 431);
  free(huge);
  mpn__relay_server_counts(s, &acc, &rej);
  CHECK(acc == 2 && rej == 4);
  mpn__relay_server_stop(s);
  curl_global_cleanup();
}

/* Random bytes, stalled and trickling clients: the server answers or
 * closes, never crashes, and still serves a genuine frame afterwards. */
static void test_relay_server_robust(void)
{
  static relay_rec rec;
  char err[256], out[256];
  int port = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mpn__relay_server *s = mpn__relay_server_start(relay_key, relay_record, &rec, &port, err, sizeof err);
  CHECK(s != NULL);
  if (!s)
    return;
  unsigned seed = 777;
  char buf[3000];
  for (int round = 0; round < 300; round++) {
    size_t n = 0, len = (size_t)(round * 37) % sizeof buf;
    if (round % 3 == 0)
      n = (size_t)snprintf(buf, sizeof buf, "POST /relay HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len / 2);
    for (; n < len; n++) {
      seed = seed * 1103515245u + 12345u;
      buf[n] = round % 3 == 1 ? "POST /relay HTTP/1.1\r\n:\n"[(seed >> 16) % 24] : (char)(seed >> 16);
    }
    int status = relay_raw(port, buf, len, 1);
    CHECK(status >= 0);   /* an answer with a status line, or none */
  }
  /* A client that stalls mid-headers is answered 408 once its deadline passes. */
  const char part[] = "POST /relay HTTP/1.1\r\nContent-Le";
  CHECK(relay_raw(port, part, sizeof part - 1, 0) == 408);

  size_t flen = 0;
  char *frame = mpn__relay_seal(relay_key, "after", 5, &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK(rec.len == 5 && !memcmp(rec.seen, "after", 5));
  free(frame);
  /* Stopping while a client holds a connection open does not wait for it. */
  int fd = relay_connect(port);
  (void)!send(fd, "POST", 4, MSG_NOSIGNAL);
  mpn__relay_server_stop(s);
  close(fd);
  curl_global_cleanup();
}


static void test_sign_vectors(void)
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

static void parse_ok(const char *spec, mpn__channel *ch)
{
  char err[1024] = "";
  mpn_code rc = mpn__parse_channel(spec, ch, err, sizeof err);
  if (rc != MPN_OK)
    fprintf(stderr, "parse \"%s\": %s\n", spec, err);
  CHECK(rc == MPN_OK);
}

static void test_channel_kinds(void)
{
  static const struct { const char *spec, *kind; } cases[] = {
    {"https://hooks.slack.com/services/T0/B0/XXXX", "slack"},
    {"https://discord.com/api/webhooks/1/tok", "discord"},
    {"https://oapi.dingtalk.com/robot/send?access_token=t", "dingtalk"},
    {"https://open.feishu.cn/open-apis/bot/v2/hook/x", "feishu"},
    {"https://open.larksuite.com/open-apis/bot/v2/hook/x", "feishu"},
    {"https://prod-01.westus.logic.azure.com:443/workflows/a/triggers/manual/paths/invoke?sig=s", "teams"},
    {"https://api.telegram.org/bot123:abc/sendMessage?chat_id=5", "telegram"},
    {"https://events.pagerduty.com/v2/enqueue?routing_key=k", "pagerduty"},
    {"https://example.com/hook", "webhook"},
    {"slack+https://proxy.example/slack", "slack"},
    {"lark+https://open.larksuite.com/open-apis/bot/v2/hook/x", "feishu"},
    {"smtps://mail.example:465?to=a@example.com", "email"},
    {"console://", "console"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mpn__channel ch;
    parse_ok(cases[i].spec, &ch);
    CHECK(ch.kind && !strcmp(ch.kind->name, cases[i].kind));
    mpn__channel_free(&ch);
  }
}

static void test_channel_options(void)
{
  setenv("MPNT_UNIT_TOKEN", "tok-from-env", 1);
  char path[] = "/tmp/mpn-unit-secret-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0 && write(fd, "SECfromfile\n", 12) == 12);
  close(fd);
  char spec[512];
  snprintf(spec, sizeof spec, "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=env:MPNT_UNIT_TOKEN"
           "&secret=file:%s&rate=3/min&retries=2&timeout_ms=900", path);
  mpn__channel ch;
  parse_ok(spec, &ch);
  /* Our options leave the URL; the service's parameter stays, resolved. */
  CHECK_STR(ch.url, "https://oapi.dingtalk.com/robot/send?access_token=tok-from-env");
  CHECK_STR(mpn__channel_opt(&ch, "secret"), "SECfromfile");
  CHECK(ch.rate_n == 3 && ch.rate_window_ms == 60000 && ch.retries == 2 && ch.timeout_ms == 900);
  CHECK_STR(ch.spec, spec);   /* references stay unresolved for the spool and the relay */
  CHECK(strstr(ch.masked, "access_token=env:MPNT_UNIT_TOKEN") && !strstr(ch.masked, "tok-from-env"));
  mpn__channel_free(&ch);
  parse_ok("https://hooks.slack.com/services/T0/B0/XXXX", &ch);
  CHECK(ch.rate_n == 1 && ch.rate_window_ms == 1000);   /* the service's own limit by default */
  mpn__channel_free(&ch);
  parse_ok("webhook+https://h.example/x?rate=off&method=PUT&header=X-A:b&keep=1", &ch);
  CHECK(ch.rate_n == 0);
  CHECK_STR(ch.url, "https://h.example/x?keep=1");
  CHECK_STR(mpn__channel_opt(&ch, "method"), "PUT");
  mpn__channel_free(&ch);
  unlink(path);
}

static void test_channel_option_errors(void)
{
  static const char *const bad[] = {
    "telegram+https://api.telegram.org/botSECRET1/sendMessage",                /* chat_id missing */
    "pagerduty+https://events.pagerduty.com/v2/enqueue",                       /* routing_key missing */
    "webhook+https://h.example/SECRET2?rate=fast",
    "webhook+https://h.example/x?retries=many&tok=SECRET3",
    "webhook+https://h.example/x?method=DELETE",
    "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=env:MPNT_UNIT_UNSET",
    "webhook+https://h.example/x?secret=file:/nonexistent/mpn",
    "env:MPNT_UNIT_UNSET",
    "ftp+https://h.example/SECRET4",
  };
  unsetenv("MPNT_UNIT_UNSET");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[1024] = "";
    mpn__channel ch;
    CHECK(mpn__parse_channel(bad[i], &ch, err, sizeof err) != MPN_OK);
    CHECK(err[0] != '\0' && !strstr(err, "SECRET"));
    if (!err[0] || strstr(err, "SECRET"))
      fprintf(stderr, "spec %s -> \"%s\"\n", bad[i], err);
  }
}

static void test_config_file(void)
{
  char path[] = "/tmp/mpn-unit-ini-XXXXXX";
  int fd = mkstemp(path);
  const char *ini = "; comment\n[mpinotify]\ntimeout_ms = 4321\nrelay = off\n\n"
                    "[channel ops]\nurl = webhook+https://h.example/hook\nsecret = env:MPNT_UNIT_SIGN\nrate = 2/s\n"
                    "[channel chat]\nurl = https://hooks.slack.com/services/T/B/X\n";
  CHECK(fd >= 0 && write(fd, ini, strlen(ini)) == (ssize_t)strlen(ini));
  close(fd);
  setenv("MPINOTIFY_CONFIG", path, 1);
  setenv("MPNT_UNIT_SIGN", "whsec_abc", 1);
  unsetenv("MPINOTIFY_URLS");
  unsetenv("MPINOTIFY_TIMEOUT_MS");
  mpn__config cfg;
  char err[1024];
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK);
  CHECK(cfg.timeout_ms == 4321 && cfg.relay_mode == MPN__RELAY_OFF && cfg.nchannels == 2);
  if (cfg.nchannels == 2) {
    CHECK_STR(cfg.channels[0].kind->name, "webhook");
    CHECK_STR(mpn__channel_opt(&cfg.channels[0], "secret"), "whsec_abc");
    CHECK(cfg.channels[0].rate_n == 2);
    CHECK_STR(cfg.channels[1].kind->name, "slack");
  }
  mpn__config_free(&cfg);
  setenv("MPINOTIFY_TIMEOUT_MS", "999", 1);   /* the environment wins over the file */
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.timeout_ms == 999);
  mpn__config_free(&cfg);
  fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, "[mpinotify\nnot a setting\n[weird]\nx=1\n", 37) == 37);
  close(fd);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG);
  CHECK(strstr(err, path) && strstr(err, "[weird]"));
  mpn__config_free(&cfg);
  unlink(path);
  unsetenv("MPINOTIFY_CONFIG");
}

static void test_judge_answers(void)
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

static void test_ops_dingtalk_payload(void)
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

static void test_ops_dingtalk_limits(void)
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

static void test_ops_feishu_payload(void)
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

static void test_ops_feishu_limits(void)
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

static void test_ops_pagerduty_payload(void)
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

static void test_ops_pagerduty_limits(void)
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

static void test_ops_webhook_request(void)
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

static void test_ops_mention_options(void)
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

static void test_chat_slack_shape(void)
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
  CHECK(fb && strstr(fb, "<!here> [CRITICAL] ") && strstr(fb, "Ranks 3 of 8"));
  check_slack_limits(o);
  free(all.p);
  json_decref(o);
  mpn_message_free(m);
}

static void test_chat_slack_limits(void)
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

static void test_chat_discord_shape(void)
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

static void test_chat_discord_limits(void)
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

static void test_chat_teams_shape(void)
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

static void test_chat_teams_limits(void)
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

static void test_chat_telegram_shape(void)
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

static void test_chat_telegram_limits(void)
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

static void test_chat_options(void)
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

static void test_chat_answers(void)
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


/* ---- custom channels and the configuration string ---------------------------- */

static int memo_calls, memo_failures_left;
static char memo_url[512];

static mpn_code memo_send(const char *url, const char *json, char *detail, size_t len, void *user)
{
  (void)user;
  memo_calls++;
  mpn__strlcpy(memo_url, url, sizeof memo_url);
  if (memo_failures_left > 0) {
    memo_failures_left--;
    snprintf(detail, len, "memo is busy");
    return MPN_E_CONNECT;
  }
  return strstr(json, "\"title\":\"hello memo\"") ? MPN_OK : MPN_E_INVALID_ARGUMENT;
}

static void memo_result(const mpn_result *r, void *arg)
{
  *(int *)arg = r->attempts;
}

static mpn_sender *memo_sender(const char *urls, const char *config)
{
  mpn_options *o = mpn_options_new();
  if (urls)
    mpn_options_set_urls(o, urls);
  if (config)
    mpn_options_set_config(o, config);
  mpn_options_set_timeout_ms(o, 8000);
  mpn_sender *s = NULL;
  char err[1024] = "";
  mpn_code rc = mpn_sender_new(o, &s, err, sizeof err);
  if (rc != MPN_OK)
    fprintf(stderr, "sender: %s\n", err);
  CHECK(rc == MPN_OK && s);
  return s;
}

static void test_custom_channel_roundtrip(void)
{
  unsetenv("MPINOTIFY_DISABLE");   /* the tests set it so the library never arms; a sender needs it unset */
  unsetenv("MPINOTIFY_URLS");
  unsetenv("MPINOTIFY_CONFIG");
  char spool[] = "/tmp/mpn-unit-spool-XXXXXX";
  CHECK(mkdtemp(spool) != NULL);
  setenv("MPINOTIFY_SPOOL", spool, 1);
  CHECK(mpn_register_channel("slack", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);   /* built-in */
  CHECK(mpn_register_channel("Memo", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("memo", NULL, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("memo", memo_send, NULL) == MPN_OK);

  mpn_sender *s = memo_sender("memo:///var/log/x?token=SEKRIT123", NULL);
  CHECK(mpn_sender_channel_count(s) == 1);
  CHECK(mpn_sender_channel(s, 0) && !strstr(mpn_sender_channel(s, 0), "SEKRIT123"));
  mpn_message *m = mpn_message_new("message");
  mpn_message_set_title(m, "hello memo");
  memo_failures_left = 1;   /* one failure, then success: retried by the engine */
  int attempts = 0;
  CHECK(mpn_sender_send(s, m, memo_result, &attempts) == MPN_OK);
  CHECK(attempts == 2 && memo_calls == 2);
  CHECK_STR(memo_url, "memo:///var/log/x?token=SEKRIT123");

  /* The string holds no secret, and restores the same channel. */
  char *config = mpn_sender_config(s);
  CHECK(config && !strstr(config, "SEKRIT123") && strstr(config, "url = env:MPINOTIFY_SECRET_"));
  mpn_sender *again = memo_sender(NULL, config);
  CHECK(mpn_sender_channel_count(again) == 1);
  memo_url[0] = '\0';
  CHECK(mpn_sender_send(again, m, NULL, NULL) == MPN_OK);
  CHECK_STR(memo_url, "memo:///var/log/x?token=SEKRIT123");
  char *config2 = mpn_sender_config(again);
  CHECK(config2 && config && !strcmp(config, config2));   /* a fixed point */

  /* Nothing left behind: each delivered message's spooled copy is gone. */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", spool);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  CHECK(system(cmd) == 0);
  mpn_free(config);
  mpn_free(config2);
  mpn_message_free(m);
  mpn_sender_free(s);
  mpn_sender_free(again);
}

/* ---- email: a one-connection SMTP responder, to see the message curl sends ---- */
#include <openssl/evp.h>
#include <pthread.h>
#include <strings.h>

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

static void test_email_mime_structure(void)
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
static void test_email_bounded(void)
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

static void test_email_judge(void)
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

static void test_email_options(void)
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

static void test_chat_crash_whole(void)
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

#define TEST(name) {#name, test_##name}
static const struct { const char *name; void (*fn)(void); } tests[] = {
  TEST(ops_dingtalk_payload), TEST(ops_dingtalk_limits), TEST(ops_feishu_payload), TEST(ops_feishu_limits),
  TEST(ops_pagerduty_payload), TEST(ops_pagerduty_limits), TEST(ops_webhook_request), TEST(ops_mention_options),
  TEST(strerror_fixed_strings), TEST(utf8_sanitize), TEST(json_arbitrary_bytes), TEST(json_schema_fields),
  TEST(mask_url_hides_secrets), TEST(mask_command), TEST(check_urls_valid), TEST(check_urls_errors),
  TEST(rank_ranges), TEST(signature_ignores_load_address), TEST(signature_skips_abort_frames),
  TEST(signature_differs_by_signal), TEST(options_setters), TEST(fmt_signal_safe),
  TEST(relay_seal_roundtrip), TEST(relay_open_many), TEST(relay_hex_key), TEST(relay_server_http),
  TEST(relay_server_robust), TEST(sign_vectors), TEST(channel_kinds), TEST(channel_options),
  TEST(channel_option_errors), TEST(config_file), TEST(judge_answers), TEST(custom_channel_roundtrip),
  TEST(chat_slack_shape), TEST(chat_slack_limits), TEST(chat_discord_shape), TEST(chat_discord_limits),
  TEST(chat_teams_shape), TEST(chat_teams_limits), TEST(chat_telegram_shape), TEST(chat_telegram_limits),
  TEST(chat_options), TEST(chat_answers), TEST(chat_crash_whole),
  TEST(email_mime_structure), TEST(email_bounded), TEST(email_judge), TEST(email_options),
};
#define NTESTS (int)(sizeof tests / sizeof tests[0])

int main(int argc, char **argv)
{
  if (argc >= 2 && !strcmp(argv[1], "--check-list")) {   /* every test is registered with CTest */
    int ok = argc - 2 == NTESTS;
    for (int i = 0; i < NTESTS; i++) {
      int found = 0;
      for (int j = 2; j < argc; j++)
        found |= !strcmp(argv[j], tests[i].name);
      if (!found)
        fprintf(stderr, "test %s is not registered in tests/unit/CMakeLists.txt\n", tests[i].name);
      ok &= found;
    }
    return ok ? 0 : 1;
  }
  for (int i = 0; argc == 2 && i < NTESTS; i++) {
    if (strcmp(argv[1], tests[i].name))
      continue;
    tests[i].fn();
    printf("%s: %s\n", tests[i].name, failures ? "FAIL" : "ok");
    return failures ? 1 : 0;
  }
  fprintf(stderr, "usage: test_unit NAME | --check-list NAMES...\n");
  return 2;
}
