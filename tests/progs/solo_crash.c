/* Linked with libmpinotify (not preloaded) and never calls MPI: the library is
 * active from program start, so this is a world of one that reports itself.
 * Run twice, it proves the signature is stable across processes and ASLR.
 * It calls mpn_is_active() so the linker keeps the library: Debian's gcc links
 * with --as-needed and drops a library no symbol of the program refers to. */
#include <mpinotify.h>
#include <stdio.h>
#include <unistd.h>
#include "common.h"

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }

int main(void) {
  printf("pid %d active %d\n", (int)getpid(), mpn_is_active());
  fflush(stdout);
  bad_fn(5);
  return 0;
}
