/* test_capture.c - unit tests of lib/capture/: crash signatures. */
#include "capture/capture.h"

#include "unit.h"

#include <unistd.h>

static void frame(mpn__frame *f, const char *module, uintptr_t base, uintptr_t offset)
{
  memset(f, 0, sizeof *f);
  strcpy(f->module, module);
  f->ip = base + offset;
  f->offset = offset;
}

TEST(signature_ignores_load_address)
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

TEST(signature_skips_abort_frames)
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

TEST(signature_differs_by_signal)
{
  mpn__frame a[1];
  frame(&a[0], "/opt/app", 0, 0x1200);
  CHECK(mpn__signature(SIGSEGV, a, 1) != mpn__signature(SIGBUS, a, 1));
}

/* The values every release since 0.1 computed for these frames: a signature
 * users have seen (in a channel, a dashboard) must stay what it was. */
TEST(signature_values_pinned)
{
  mpn__frame a[3];
  frame(&a[0], "/nodeA/app", 0x555500000000, 0x1139);
  frame(&a[1], "/nodeA/app", 0x555500000000, 0x1232);
  frame(&a[2], "/lib/libc.so.6", 0x7f0000000000, 0x2724a);
  CHECK(mpn__signature(SIGSEGV, a, 3) == 0x777b9bd27d1d83e5ULL);
}

/* Debug information never enters a signature: an inlined frame (lines.c
 * adds them where there is debug information) leaves it as it was. */
TEST(signature_ignores_inlined_frames)
{
  mpn__frame a[3], b[4];
  frame(&a[0], "/nodeA/app", 0x555500000000, 0x1139);
  frame(&a[1], "/nodeA/app", 0x555500000000, 0x1232);
  frame(&a[2], "/lib/libc.so.6", 0x7f0000000000, 0x2724a);
  b[0] = a[0];
  b[0].inlined = 1;
  strcpy(b[0].file, "/src/app/kernel.c");
  b[0].line = 41;
  memcpy(b + 1, a, sizeof a);
  b[1].line = 77;
  CHECK(mpn__signature(SIGSEGV, b, 4) == mpn__signature(SIGSEGV, a, 3));
}

/* ---- lines.c: file and line through libdw -------------------------------- */

static int here_line;

/* Frame 0 of the result is this function, at the line of the call below. */
__attribute__((noinline)) static int frames_here(mpn__frame *f, int max)
{
  here_line = __LINE__ + 1;
  int n = mpn__unwind_here(f, max, 0);
  __asm__ volatile("" ::: "memory");   /* not a tail call: this frame stays */
  return n;
}

static const char *base_of(const char *path)
{
  return strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
}

TEST(lines_file_and_line)
{
  mpn__frame *f = calloc(MPN__MAX_FRAMES, sizeof *f);
  int n = frames_here(f, 8);
  CHECK(n > 0 && f[0].call_site && !f[0].file[0]);   /* unwinding alone knows no lines */
  n = mpn__lines_resolve(f, n, f, MPN__MAX_FRAMES, mpn__now_ns() + 10000000000LL);
  CHECK(n > 0);
  CHECK_STR(base_of(f[0].file), "test_capture.c");
  CHECK(f[0].line == here_line);
  CHECK(!f[0].inlined && f[0].has_function && !strncmp(f[0].function, "frames_here", 11));   /* or a clone: .constprop.0 */
  free(f);
}

TEST(lines_past_deadline_unchanged)
{
  mpn__frame *f = calloc(MPN__MAX_FRAMES, sizeof *f), *out = calloc(MPN__MAX_FRAMES, sizeof *f);
  int n = frames_here(f, 8);
  CHECK(mpn__lines_resolve(f, n, out, MPN__MAX_FRAMES, mpn__now_ns()) == n);   /* no time: as they were */
  CHECK(n > 0 && !memcmp(f, out, sizeof *f * (size_t)n));
  CHECK(mpn__lines_resolve(f, n, out, 2, mpn__now_ns() + 10000000000LL) <= 2);   /* never past max */
  free(f);
  free(out);
}

/* ---- output.c: a rank's last lines --------------------------------------- */

static char *lines_of(const char *raw, int max)
{
  return mpn__output_lines(raw, strlen(raw), max);
}

TEST(output_lines_last_ones)
{
  char *s = lines_of("one\ntwo\nthree\nfour", 2);
  CHECK_STR(s, "three\nfour");   /* a last line without a newline counts */
  free(s);
  s = lines_of("a\n\n   \nb\n", 5);   /* empty lines are no words */
  CHECK_STR(s, "a\nb");
  free(s);
  s = lines_of("", 5);
  CHECK_STR(s, "");
  free(s);
}

TEST(output_lines_clean)
{
  /* colours, a cursor move, a title (OSC), a redrawn progress bar, CRLF, a bell */
  char *s = lines_of("\033[1;31mERROR:\033[0m bad\r\n\033[2K 10%\r 50%\r100% done\n\033]0;title\007ok\a\n", 9);
  CHECK_STR(s, "ERROR: bad\n100% done\nok");
  free(s);
  s = lines_of("bad \xff byte\n", 9);   /* invalid UTF-8 becomes U+FFFD */
  CHECK_STR(s, "bad \xef\xbf\xbd byte");
  free(s);
}

TEST(output_lines_drop_panels)
{
  const char *raw = "before\n\033[1;31m=== mpinotify: SIGSEGV on 1 of 4 ranks (job x) ===\033[0m\n"
                    "| signature  abc\n|   rank 2\n\033[1;31m===\033[0m\nafter\n| not a panel\n";
  char *s = lines_of(raw, 9);
  CHECK_STR(s, "before\nafter\n| not a panel");
  free(s);
}

TEST(output_lines_long_line)
{
  char raw[10000];
  memset(raw, 'x', sizeof raw - 1);
  raw[sizeof raw - 1] = '\0';
  char *s = lines_of(raw, 3);
  CHECK(strlen(s) == MPN__OUTPUT_LINE_MAX);
  free(s);
}

/* A real copier on this test's fds 1 and 2 (one pipe: the same file). */
TEST(output_copier_passes_and_keeps)
{
  int orig[2], saved_err = dup(2);
  CHECK(pipe(orig) == 0);
  dup2(orig[1], 1);
  dup2(orig[1], 2);
  close(orig[1]);
  unsetenv("MPINOTIFY_OUTPUT_RING");
  CHECK(mpn__output_start(42) == 0);
  CHECK(mpn__output_active());
  CHECK(getenv("MPINOTIFY_OUTPUT_RING") != NULL);
  CHECK(write(1, "hello\n", 6) == 6);
  CHECK(write(2, "\033[31mworld\033[0m\npartial", 23) == 23);
  char *s = mpn__output_text(5, 1000);
  CHECK_STR(s, "hello\nworld\npartial");
  free(s);
  s = mpn__output_text(1, 1000);
  CHECK_STR(s, "partial");
  free(s);
  char got[64] = "";
  size_t n = 0;
  while (n < 29) {   /* what the original fd got: every byte, unchanged, in order */
    ssize_t k = read(orig[0], got + n, sizeof got - 1 - n);
    CHECK(k > 0);
    n += (size_t)k;
  }
  dup2(saved_err, 2);   /* a failed check can be read again */
  CHECK(memcmp(got, "hello\n\033[31mworld\033[0m\npartial", 29) == 0);
}
