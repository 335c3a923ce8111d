/* python.c - Python ranks, at start-up: a Python process that a launcher
 * started as a rank gets the package's boot folder first on PYTHONPATH, in
 * the constructor, before the interpreter reads its environment. Its
 * sitecustomize.py installs the uncaught-exception hooks
 * (python/mpinotify/_hook.py), puts PYTHONPATH back for the rank's
 * children, and chains to the sitecustomize it shadows. The interpreter's
 * state at a crash is capture/python.c's. */
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SAVED_VAR "MPINOTIFY_PYTHONPATH_SAVED"
#define UNSET_MARK "\x01unset"

/* The folder holding sitecustomize.py: the installed package, found from
 * the library's own folder (an install moved elsewhere still works), else
 * the source tree's, for a library in its build tree only. */
static const char *boot_dir(void)
{
  static char dir[MPN__PATH_MAX + 64];
  const char *lib = mpn_library_path();
#ifdef MPN_PYTHON_FROM_LIBDIR
  const char *slash = lib ? strrchr(lib, '/') : NULL;
  if (slash) {
    snprintf(dir, sizeof dir, "%.*s/%s/mpinotify/_boot", (int)(slash - lib), lib, MPN_PYTHON_FROM_LIBDIR);
    if (access(dir, R_OK) == 0)
      return dir;
  }
#endif
  if (!lib || strncmp(lib, MPN_BUILD_DIR "/", strlen(MPN_BUILD_DIR) + 1))
    return NULL;
  snprintf(dir, sizeof dir, "%s/mpinotify/_boot", MPN_PYTHON_SOURCE_DIR);
  return access(dir, R_OK) == 0 ? dir : NULL;
}

static int is_python_program(void)
{
  char exe[MPN__PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0 || !dlsym(RTLD_DEFAULT, "Py_BytesMain"))
    return 0;
  exe[n] = '\0';
  const char *base = strrchr(exe, '/') ? strrchr(exe, '/') + 1 : exe;
  return !strncmp(base, "python", 6);
}

/* A library loaded into a running interpreter (ctypes) is past the point
 * where PYTHONPATH matters, and other threads may be reading the environment. */
static int python_running(void)
{
  int (*running)(void) = NULL;
  *(void **)&running = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
  return running && running();
}

/* Constructor time, before the interpreter reads its environment. The saved
 * value names this process: a child that inherits it (a rank run with -I or
 * -E never consumed it) is not the rank, and its boot file stands down. */
void mpn__python_boot(void)
{
  if (!mpn__setting_env_flag(MPN__SET_PYTHON) || getenv(SAVED_VAR) || getenv("MPINOTIFY_PYTHON_RANK_PID") ||
      mpn__mpi_world_rank_from_env() < 0 || !is_python_program() || python_running())
    return;   /* off, a rank's child (it inherits the rank's environment), not a rank, not Python */
  const char *dir = boot_dir();
  if (!dir)
    return;
  const char *old = getenv("PYTHONPATH");
  char *path = NULL, *saved = NULL;
  if (asprintf(&path, "%s%s%s", dir, old && *old ? ":" : "", old && *old ? old : "") < 0)
    return;
  if (asprintf(&saved, "%d:%s", (int)getpid(), old ? old : UNSET_MARK) >= 0) {
    setenv(SAVED_VAR, saved, 1);
    setenv("PYTHONPATH", path, 1);
  }
  free(saved);
  free(path);
}

/* MPI_Init of any rank: processes it starts later are not ranks, Python or not. */
void mpn__python_mark_rank(void)
{
  if (!getenv("MPINOTIFY_PYTHON_RANK_PID")) {
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    setenv("MPINOTIFY_PYTHON_RANK_PID", pid, 1);
  }
}

