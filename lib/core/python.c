/* python.c - what the library does for Python ranks, without linking
 * libpython (a C program never loads it):
 *
 *  - At start-up (the constructor, before the interpreter reads its
 *    environment), a Python process that a launcher started as a rank gets
 *    the package's boot folder first on PYTHONPATH: its sitecustomize.py
 *    installs the uncaught-exception hooks (python/mpinotify/_hook.py), puts
 *    PYTHONPATH back for the rank's children, and chains to the
 *    sitecustomize it shadows.
 *  - On a crash, the faulting thread's Python stack: the handler only reads
 *    the thread's PyThreadState (a thread-specific value, as faulthandler
 *    does); the agent, while that thread waits in the handler, has CPython's
 *    own _Py_DumpTraceback (faulthandler's writer, made for this) write it to
 *    a memory file, and parses it into frames. */
#include "core/mpn.h"

#include <jansson.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DUMP_MAX (256 * 1024)   /* faulthandler writes at most 100 frames of at most ~1 KiB */
#define SAVED_VAR "MPINOTIFY_PYTHONPATH_SAVED"
#define UNSET_MARK "\x01unset"

static void *(*get_tstate)(void);              /* PyGILState_GetThisThreadState */
static void (*dump_traceback)(int, void *);    /* _Py_DumpTraceback(fd, tstate) */

/* The folder holding sitecustomize.py: the installed package, found from
 * the library's own folder (an install moved elsewhere still works), else
 * the source tree's (a build tree). */
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
  (void)lib;
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

/* Constructor time, single-threaded: nothing has read the environment yet. */
void mpn__python_boot(void)
{
  const char *setting = getenv("MPINOTIFY_PYTHON");
  if ((setting && !strcmp(setting, "0")) || getenv(SAVED_VAR) || getenv("MPINOTIFY_PYTHON_RANK_PID") ||
      mpn__mpi_world_rank_from_env() < 0 || !is_python_program())
    return;   /* off, a rank's child (it inherits the rank's environment), not a rank, not Python */
  const char *dir = boot_dir();
  if (!dir)
    return;
  const char *old = getenv("PYTHONPATH");
  char *path = NULL;
  if (asprintf(&path, "%s%s%s", dir, old && *old ? ":" : "", old && *old ? old : "") < 0)
    return;
  setenv(SAVED_VAR, old ? old : UNSET_MARK, 1);
  setenv("PYTHONPATH", path, 1);
  free(path);
}

/* Arm time: dlsym is not for signal handlers. */
void mpn__python_prime(void)
{
  *(void **)&get_tstate = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
  *(void **)&dump_traceback = dlsym(RTLD_DEFAULT, "_Py_DumpTraceback");
}

/* Runs in a signal handler: a read of the thread's TSS slot, as faulthandler's handler does. */
void *mpn__python_thread_state(void)
{
  return get_tstate && dump_traceback ? get_tstate() : NULL;
}

/* The source line, stripped, for a frame's "code"; NULL when unreadable. */
static json_t *source_line(const char *file, long line)
{
  FILE *f = line > 0 ? fopen(file, "r") : NULL;
  if (!f)
    return json_null();
  char buf[512];
  long n = 0;
  json_t *out = json_null();
  while (fgets(buf, sizeof buf, f))
    if (++n == line) {
      char *s = buf + strspn(buf, " \t");
      s[strcspn(s, "\r\n")] = '\0';
      json_decref(out);
      out = mpn__jstr(s);
      break;
    }
  fclose(f);
  return out;
}

/* One line of the dump: '  File "x.py", line 12 in train_step'. */
static json_t *parse_frame(char *l)
{
  char *file = strstr(l, "File \"");
  char *end = file ? strstr(file + 6, "\", line ") : NULL;
  if (!end)
    return NULL;
  file += 6;
  *end = '\0';
  char *in = NULL;
  long line = strtol(end + 8, &in, 10);
  const char *fn = in && !strncmp(in, " in ", 4) ? in + 4 : "?";
  return json_pack("{s:o, s:o, s:o, s:o}", "file", mpn__jstr(file), "line", line > 0 ? json_integer(line) : json_null(),
                   "function", mpn__jstr(fn), "code", source_line(file, line));
}

/* Agent thread, while the faulting thread waits in the handler: its Python
 * frames, outermost first, or NULL (not a Python thread). */
void *mpn__python_traceback(void *tstate)
{
  if (!tstate || !dump_traceback)
    return NULL;
  int fd = memfd_create("mpn-pytrace", MFD_CLOEXEC);
  if (fd < 0)
    return NULL;
  dump_traceback(fd, tstate);
  off_t size = lseek(fd, 0, SEEK_END);
  char *text = size > 0 && size < DUMP_MAX ? malloc((size_t)size + 1) : NULL;
  json_t *frames = NULL;
  if (text && pread(fd, text, (size_t)size, 0) == size) {
    text[size] = '\0';
    frames = json_array();
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      json_t *f = parse_frame(l);
      if (f)
        json_array_insert_new(frames, 0, f);   /* the dump is innermost first */
    }
  }
  free(text);
  close(fd);
  if (frames && json_array_size(frames) == 0) {
    json_decref(frames);
    frames = NULL;
  }
  return frames;
}
