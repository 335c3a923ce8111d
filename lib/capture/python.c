/* python.c - the Python stack of a crashing thread, without linking
 * libpython (a C program never loads it): the handler only reads the
 * thread's PyThreadState (a thread-specific value, as faulthandler does);
 * the agent, while that thread waits in the handler, has CPython's own
 * _Py_DumpTraceback (faulthandler's writer, made for this) write it to a
 * memory file, and parses it into frames. */
#include "capture/capture.h"

#include <jansson.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define DUMP_MAX (256 * 1024)   /* faulthandler writes at most 100 frames of at most ~1 KiB */
#define SOURCE_FRAMES 20          /* innermost frames whose source line is read */
#define SOURCE_BYTES (4 << 20)    /* read at most this much of a source file */

static void *(*get_tstate)(void);              /* PyGILState_GetThisThreadState */
static void (*dump_traceback)(int, void *);    /* _Py_DumpTraceback(fd, tstate) */
static int (*is_initialized)(void);            /* Py_IsInitialized */
static int (*holds_gil)(void);                 /* PyGILState_Check */

/* Arm time: dlsym is not for signal handlers. */
void mpn__python_prime(void)
{
  *(void **)&get_tstate = dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
  *(void **)&dump_traceback = dlsym(RTLD_DEFAULT, "_Py_DumpTraceback");
  *(void **)&is_initialized = dlsym(RTLD_DEFAULT, "Py_IsInitialized");
  *(void **)&holds_gil = dlsym(RTLD_DEFAULT, "PyGILState_Check");
  if (get_tstate && !dump_traceback)   /* Python 3.13 no longer exports it */
    mpn__log_debug("this Python does not export _Py_DumpTraceback: crashes carry no Python frames");
}

int mpn__python_may_call(void)
{
  if (!is_initialized || !holds_gil)
    mpn__python_prime();
  if (!is_initialized || !holds_gil)
    return 1;   /* not a Python process */
  return is_initialized() && holds_gil();
}

/* Runs in a signal handler: a read of the thread's TSS slot, as faulthandler's handler does. */
void *mpn__python_thread_state(void)
{
  return get_tstate && dump_traceback ? get_tstate() : NULL;
}

/* The source line, stripped and at most 200 bytes, for a frame's "code";
 * null when unreadable. Lines are counted by their newlines, whatever their
 * length; an absolute path only (a relative one is relative to where the
 * rank started, not to where it is now). */
static json_t *source_line(const char *file, long line)
{
  FILE *f = line > 0 && file[0] == '/' ? fopen(file, "r") : NULL;
  if (!f)
    return json_null();
  char code[201];
  size_t len = 0, read = 0;
  long n = 1;
  int c;
  while (n <= line && read++ < SOURCE_BYTES && (c = getc(f)) != EOF) {
    if (c == '\n')
      n++;
    else if (n == line && len < sizeof code - 1 && (len || (c != ' ' && c != '\t')))
      code[len++] = (char)c;
  }
  fclose(f);
  while (len && (code[len - 1] == '\r' || code[len - 1] == ' '))
    len--;
  code[len] = '\0';
  return n > line || (n == line && len) ? mpn__jstr(code) : json_null();
}

/* One line of the dump: '  File "x.py", line 12 in train_step'. */
static json_t *parse_frame(char *l, int with_code)
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
                   "function", mpn__jstr(fn), "code", with_code ? source_line(file, line) : json_null());
}

typedef struct dump_job {
  int fd;
  void *tstate;
} dump_job;

static void dump(void *arg)
{
  dump_job *j = arg;
  dump_traceback(j->fd, j->tstate);
}

int mpn__python_present(void)
{
  return get_tstate != NULL;
}

/* Agent thread, while the thread waits in a handler: its Python frames as
 * CPython's traceback writer prints them, into a memfd; -1 when none. */
int mpn__python_dump(void *tstate)
{
  if (!tstate || !dump_traceback)
    return -1;
  int fd = memfd_create("mpn-pytrace", MFD_CLOEXEC);
  if (fd < 0)
    return -1;
  /* Another thread's frames, read without the GIL while it waits in the
   * handler, as faulthandler's watchdog does; a state too broken to read
   * (the crash's own cause, maybe) costs the Python frames, not the report. */
  dump_job job = {fd, tstate};
  if (mpn__guarded_call(dump, &job) != 0)
    mpn__log_debug("the crashing thread's Python stack could not be read");
  return fd;
}

/* The dump's frames, outermost first, with their source lines (files are
 * read: not while the thread waits), or NULL; closes fd. */
void *mpn__python_parse(int fd)
{
  if (fd < 0)
    return NULL;
  off_t size = lseek(fd, 0, SEEK_END);
  if (size > DUMP_MAX)
    size = DUMP_MAX;   /* the innermost frames come first: keep them */
  char *text = size > 0 ? malloc((size_t)size + 1) : NULL;
  json_t *frames = NULL;
  if (text && pread(fd, text, (size_t)size, 0) == size) {
    text[size] = '\0';
    frames = json_array();
    int n = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
      json_t *f = parse_frame(l, n < SOURCE_FRAMES);
      if (f && ++n)
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

void *mpn__python_traceback(void *tstate)
{
  return mpn__python_parse(mpn__python_dump(tstate));
}
