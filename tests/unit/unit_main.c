/* unit_main.c - the runner of the unit tests (libuv's model): every TEST() of
 * the test_<layer>.c files registers itself before main (unit.h); CTest runs
 * each in its own process, `test_unit NAME`, exit status 0 a pass.
 *   test_unit NAME                 runs one test
 *   test_unit --list               prints every registered test and its file
 *   test_unit --check-list NAMES   unit.list_complete: the registered tests
 *                                  are exactly NAMES (what CMake read) */
#include "unit.h"

int failures;

static unit_test *tests;

void unit_register(unit_test *t)
{
  t->next = tests;
  tests = t;
}

static unit_test *find(const char *name)
{
  for (unit_test *t = tests; t; t = t->next)
    if (!strcmp(t->name, name))
      return t;
  return NULL;
}

static int check_list(int n, char **names)
{
  int ok = 1;
  for (unit_test *t = tests; t; t = t->next) {
    int listed = 0;
    for (int i = 0; i < n; i++)
      listed += !strcmp(names[i], t->name);
    if (!listed)
      fprintf(stderr, "%s: test %s has no CTest entry: write TEST(%s) at the start of its line\n", t->file,
              t->name, t->name);
    for (unit_test *u = t->next; u; u = u->next)
      if (!strcmp(u->name, t->name)) {
        fprintf(stderr, "test %s is defined twice: %s and %s\n", t->name, t->file, u->file);
        ok = 0;
      }
    ok &= listed == 1;
  }
  for (int i = 0; i < n; i++)
    if (!find(names[i])) {
      fprintf(stderr, "CTest entry unit.%s names no test of the binary (inside #if 0 or a comment?)\n", names[i]);
      ok = 0;
    }
  return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
  if (argc >= 2 && !strcmp(argv[1], "--check-list"))
    return check_list(argc - 2, argv + 2);
  if (argc == 2 && !strcmp(argv[1], "--list")) {
    for (unit_test *t = tests; t; t = t->next)
      printf("%s %s\n", t->name, t->file);
    return 0;
  }
  unit_test *t = argc == 2 ? find(argv[1]) : NULL;
  if (!t) {
    fprintf(stderr, "usage: test_unit NAME | --list | --check-list NAMES...\n");
    return 2;
  }
  t->fn();
  printf("%s: %s\n", t->name, failures ? "FAIL" : "ok");
  return failures ? 1 : 0;
}
