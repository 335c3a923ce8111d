/* test_unit.c - unit tests as a list, one per process (libuv's model):
 * `test_unit NAME` runs one; exit status 0 is a pass. */
#include "core/mpn.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
  CHECK(ch.kind == MPN__CH_WEBHOOK);
  CHECK_STR(ch.target, "https://h.example/a/SECRET");
  CHECK_STR(ch.masked, "webhook+https://h.example/a/***");
  free(ch.target);
  free(ch.masked);
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

#define TEST(name) {#name, test_##name}
static const struct { const char *name; void (*fn)(void); } tests[] = {
  TEST(strerror_fixed_strings), TEST(utf8_sanitize), TEST(json_arbitrary_bytes), TEST(json_schema_fields),
  TEST(mask_url_hides_secrets), TEST(mask_command), TEST(check_urls_valid), TEST(check_urls_errors),
  TEST(rank_ranges), TEST(signature_ignores_load_address), TEST(signature_skips_abort_frames),
  TEST(signature_differs_by_signal), TEST(options_setters), TEST(fmt_signal_safe),
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
