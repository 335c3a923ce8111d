/* test_capture.c - unit tests of lib/capture/: crash signatures. */
#include "capture/capture.h"

#include "unit.h"

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
