/* dlopen_mpi.c - a program that loads MPI only at run time, as Python does
 * with mpi4py: argv[1] is the plugin (linked against libmpi), argv[2] "local"
 * or "global" (the dlopen mode), argv[3] the ranks that crash ("" for none).
 * A preloaded libmpinotify must find the real MPI entry points here or stay
 * inert: never hang. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: dlopen_mpi PLUGIN local|global [CRASH_RANKS]\n");
    return 2;
  }
  int mode = RTLD_NOW | (strcmp(argv[2], "global") ? RTLD_LOCAL : RTLD_GLOBAL);
  void *h = dlopen(argv[1], mode);
  if (!h) {
    fprintf(stderr, "dlopen_mpi: %s\n", dlerror());
    return 2;
  }
  int (*run)(const char *) = NULL;
  *(void **)&run = dlsym(h, "plugin_run");
  if (!run) {
    fprintf(stderr, "dlopen_mpi: no plugin_run\n");
    return 2;
  }
  int sum = run(argc > 3 ? argv[3] : "");
  return sum < 0 ? 1 : 0;
}
