/* unit.h - what the unit tests of tests/unit share: the test definition
 * (which is also its registration), the CHECK macros, and the fixtures more
 * than one layer's file uses.
 *
 * A test is written
 *
 *     TEST(name)
 *     {
 *       CHECK(...);
 *     }
 *
 * with TEST( at the start of its line. That line is the only list there is:
 * it registers the function with the runner (unit_main.c) when the binary
 * starts, and tests/unit/CMakeLists.txt reads the same lines from every
 * test_*.c at configure time to make one CTest entry, unit.<name>, per test.
 * `unit.list_complete` fails if the two ever disagree (a TEST( line CMake
 * cannot read, a name defined twice).
 *
 * Each test_<layer>.c includes its layer's header of lib/ first, then this
 * file: the fixtures below that need a layer's types exist only when that
 * header came before. */
#ifndef MPN_UNIT_H
#define MPN_UNIT_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Checks failed so far in this process (unit_main.c); a test passes with none. */
extern int failures;

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

/* ---- the registry ---------------------------------------------------------- */
typedef struct unit_test {
  const char *name;
  void (*fn)(void);
  const char *file;
  struct unit_test *next;
} unit_test;
void unit_register(unit_test *t);   /* unit_main.c */

#define TEST(name)                                                                  \
  static void test_##name(void);                                                    \
  __attribute__((constructor)) static void unit_register_##name(void)               \
  {                                                                                 \
    static unit_test t = {#name, test_##name, __FILE__, NULL};                      \
    unit_register(&t);                                                              \
  }                                                                                 \
  static void test_##name(void)

/* Fixtures: static, and not every file uses each. */
#define UNIT_SHARED __attribute__((unused)) static

/* ---- relay frames (deliver: sealing; launcher: the listener) ---------------- */
UNIT_SHARED const unsigned char relay_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* ---- a sample crash report (format: JSON; channels: payloads) ---------------- */
#ifdef MPN_FORMAT_H
UNIT_SHARED mpn__event sample_event;

UNIT_SHARED void sample_report(mpn__report *r, mpn__proc *procs, int n)
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
#endif

/* ---- a channel from its spec, as users write it (config, channels, deliver) -- */
#ifdef MPN_CONFIG_H
UNIT_SHARED void parse_ok(const char *spec, mpn__channel *ch)
{
  char err[1024] = "";
  mpn_code rc = mpn__parse_channel(spec, ch, err, sizeof err);
  if (rc != MPN_OK)
    fprintf(stderr, "parse \"%s\": %s\n", spec, err);
  CHECK(rc == MPN_OK);
}
#endif

#endif
