/* test_unit.c - unit tests as a list, one per process (libuv's model):
 * `test_unit NAME` runs one; exit status 0 is a pass. */
#include "core/mpn.h"

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
  for (int c = MPN_OK; c <= MPN_E_BAD_CONFIG; c++) {
    const char *s = mpn_strerror((mpn_code)c);
    CHECK(s && *s && strcmp(s, "unknown error"));
    for (int d = MPN_OK; d < c; d++)
      CHECK(strcmp(s, mpn_strerror((mpn_code)d)));
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
    free(mpn__g.cfg.job_name);
    mpn__g.cfg.job_name = strdup(junk);
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
  free(mpn__g.cfg.job_name);
  mpn__g.cfg.job_name = strdup("train \"big\" na\xc3\xafve");
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

#define TEST(name) {#name, test_##name}
static const struct { const char *name; void (*fn)(void); } tests[] = {
  TEST(strerror_fixed_strings), TEST(utf8_sanitize), TEST(json_arbitrary_bytes), TEST(json_schema_fields),
  TEST(mask_url_hides_secrets), TEST(mask_command), TEST(check_urls_valid), TEST(check_urls_errors),
  TEST(rank_ranges), TEST(signature_ignores_load_address), TEST(signature_skips_abort_frames),
  TEST(signature_differs_by_signal), TEST(options_setters), TEST(fmt_signal_safe),
  TEST(relay_seal_roundtrip), TEST(relay_open_many), TEST(relay_hex_key), TEST(relay_server_http),
  TEST(relay_server_robust), TEST(sign_vectors), TEST(channel_kinds), TEST(channel_options),
  TEST(channel_option_errors), TEST(config_file), TEST(judge_answers),
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
