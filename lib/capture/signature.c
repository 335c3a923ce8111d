/* signature.c - the failure signature: FNV-1a 64 over the signal number and
 * the top MPN__SIG_FRAMES frames, each as "<module basename>+<offset from the
 * module's load base>". Addresses, PIDs and ranks never enter it, so every
 * rank of one binary agrees despite ASLR; libc's abort/assert frames are
 * skipped, so two abort() sites differ. README.md documents this. */
#include "capture/capture.h"

#include <string.h>

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

static int in_libc(const mpn__frame *f)
{
  const char *b = base_name(f->module);
  return !strncmp(b, "libc.so", 7) || !strncmp(b, "libc-", 5);
}

static int is_ours(const mpn__frame *f)
{
  return (mpn__self.self_path[0] && !strcmp(f->module, mpn__self.self_path)) ||
         (f->has_function && !strncmp(f->function, "mpn__", 5));
}

int mpn__signature_first_frame(int signo, const mpn__frame *frames, int n)
{
  int i = 0;
  while (i < n && is_ours(&frames[i]))
    i++;
  /* raise, abort, __assert_fail and pthread_kill sit on top of every
   * deliberate abort; the caller below them is what tells sites apart. */
  if (signo == SIGABRT || signo == SIGTRAP)
    while (i < n - 1 && in_libc(&frames[i]))
      i++;
  return i < n ? i : 0;
}

uint64_t mpn__signature(int signo, const mpn__frame *frames, int n)
{
  char buf[64];
  size_t len = mpn__fmt_i64(buf, sizeof buf, 0, signo);
  uint64_t h = mpn__hash_bytes(MPN__FNV_OFFSET, buf, len);
  int first = mpn__signature_first_frame(signo, frames, n);
  return mpn__signature_add_site(h, frames + first, n - first);
}

uint64_t mpn__signature_add_site(uint64_t h, const mpn__frame *frames, int n)
{
  char buf[32];
  for (int i = 0, k = 0; i < n && k < MPN__SIG_FRAMES; i++) {
    if (frames[i].inlined)
      continue;   /* debug information must not change it: a stripped build and ranks agree */
    k++;
    const char *b = frames[i].module[0] ? base_name(frames[i].module) : "?";
    h = mpn__hash_str(mpn__hash_bytes(h, "|", 1), b);
    if (frames[i].module[0]) {   /* code outside any module (JIT) has no stable offset */
      size_t len = mpn__fmt_hex(buf, sizeof buf, 0, frames[i].offset);
      h = mpn__hash_bytes(h, buf, len);
    }
  }
  return h;
}
