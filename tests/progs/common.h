/* Shared helpers for the scenario programs. */
#ifndef MPN_TEST_COMMON_H
#define MPN_TEST_COMMON_H

#include <stdlib.h>
#include <string.h>

/* Read through a volatile pointer so the compiler cannot see the NULL and
 * replace the store with a trap (SIGILL) at -O2: the fault must be a real
 * SIGSEGV at address 0. */
static int *volatile mpn_null_target = NULL;

/* 1 when `rank` is in `list` ("1,3,6" or "all"). */
static inline int mpn_rank_in(const char *list, int rank) {
  if (strcmp(list, "all") == 0) return 1;
  for (const char *p = list; *p;) {
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p) return 0;
    if (v == rank) return 1;
    p = (*end == ',') ? end + 1 : end;
  }
  return 0;
}

#endif
