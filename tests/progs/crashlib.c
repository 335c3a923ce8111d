/* A shared library built with -O2: its function faults on a NULL store, so the
 * report must name a frame inside an optimised .so (module path + symbol). */
#include "crashlib.h"

int crashlib_store(int *slot, int value) {
  slot[value & 1] = value;  /* slot is NULL at run time: SIGSEGV inside the .so */
  return slot[0] + value;
}
