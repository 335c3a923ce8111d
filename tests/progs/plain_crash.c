/* A program that never touches MPI and segfaults: under preload the library
 * must stay silent (it only activates in MPI_Init). */
#include "common.h"

__attribute__((noinline)) void bad_fn(int v) { *mpn_null_target = v; }

int main(void) {
  bad_fn(7);
  return 0;
}
