/* cxx.c - uncaught C++ exceptions (std::terminate), reported with their type
 * and what(), while the library stays C: in a process that already has the
 * C++ runtime, libmpinotify_cxx.so (lib/cxx/) is loaded from this library's
 * folder with RTLD_LOCAL and installs a terminate handler that calls back
 * here. C programs never load it, nor libstdc++. */
#include "runtime/runtime.h"

#include <jansson.h>

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define HELPER "libmpinotify_cxx.so"
#define SET_TERMINATE "_ZSt13set_terminatePFvvE"   /* std::set_terminate(void (*)()) */

static const char *base_name(const char *path)
{
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* Frames of the C++ runtime and of the helper sit above the throw site:
 * std::terminate, __cxa_throw, the unwinder (and ASan's __cxa_throw). */
static int runtime_frame(const mpn__frame *f)
{
  static const char *const prefixes[] = {"libmpinotify_cxx.", "libstdc++.", "libgcc_s.", "libasan.", "libubsan."};
  const char *b = base_name(f->module);
  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (!strncmp(b, prefixes[i], strlen(prefixes[i])))
      return 1;
  return 0;
}

static int drop_runtime_top(mpn__frame *f, int n)
{
  int k = 0;
  while (k < n - 1 && runtime_frame(&f[k]))
    k++;
  memmove(f, f + k, sizeof *f * (size_t)(n - k));
  return n - k;
}

/* One report per process: a second thread reaching std::terminate meanwhile
 * waits for the first one's, then ends the same way. */
static atomic_int reporting;   /* 0: none, 1: in progress, 2: done */

static void wait_for_first(void)
{
  int64_t until = mpn__now_ns() + (int64_t)(mpn__cfg()->timeout_ms + 2000) * 1000000;
  while (atomic_load(&reporting) == 1 && mpn__now_ns() < until)
    mpn__sleep_ms(10);
}

/* Called by the helper's terminate handler, on the terminating thread, with
 * the exception's demangled type and what() (NULL: not a std::exception). */
static void on_uncaught(const char *type, const char *what)
{
  int expected = 0;
  if (getpid() != mpn__self.pid || !atomic_load(&mpn__crash.armed))
    return;   /* a forked child, or disarmed: the SIGABRT is all there is */
  if (!atomic_compare_exchange_strong(&reporting, &expected, 1)) {
    wait_for_first();
    return;
  }
  mpn__event *ev = mpn__event_new("exception", "critical");
  if (!ev) {
    atomic_store(&reporting, 2);
    return;
  }
  ev->fatal = 1;   /* std::abort follows: non-leaders wait for the leader's delivery */
  ev->nframes = drop_runtime_top(ev->frames, mpn__unwind_here(ev->frames, MPN__MAX_FRAMES, 1));
  snprintf(ev->headline, sizeof ev->headline, "uncaught %s", type);
  const char *sig[] = {type};
  mpn__event_sign(ev, sig, 1, 1);
  json_object_set_new(ev->extra, "exception",
                      json_pack("{s:o, s:o, s:s, s:b}", "type", mpn__jstr(type), "message", mpn__jmasked(what), "context",
                                "uncaught (std::terminate)", "uncaught", 1));
  json_object_set_new(ev->extra, "text", mpn__jmasked(what));
  mpn_code rc = mpn__event_submit(ev, mpn__cfg()->timeout_ms + 1000);
  if (rc == MPN_OK || rc == MPN_E_TIMEOUT)   /* queued: the SIGABRT is the same failure */
    atomic_store(&mpn__fatal_reported, 1);
  atomic_store(&reporting, 2);
}

static void on_log(const char *line)
{
  mpn__log_debug("%s", line);
}

#ifdef MPN_HAVE_CXX_HELPER
/* The helper's path: beside the shared library; for the static archive, in
 * the folder it was installed to, else beside the executable. */
static int helper_path(char *out, size_t cap)
{
  char dir[MPN__PATH_MAX] = "";
  const char *self = mpn_library_path();
  if (self) {
    mpn__strlcpy(dir, self, sizeof dir);
  } else if (access(MPN_INSTALL_LIBDIR "/" HELPER, R_OK) == 0) {
    mpn__strlcpy(dir, MPN_INSTALL_LIBDIR "/", sizeof dir);
  } else {
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    dir[n > 0 ? n : 0] = '\0';
  }
  char *slash = strrchr(dir, '/');
  if (!slash)
    return -1;
  slash[1] = '\0';
  return snprintf(out, cap, "%s%s", dir, HELPER) < (int)cap ? 0 : -1;
}

/* Only a shared libstdc++ is the runtime the helper links: a program with
 * the runtime linked in statically, or libc++, keeps its own terminate. */
static int runtime_is_shared_libstdcxx(void *set_terminate)
{
  Dl_info info;
  return dladdr(set_terminate, &info) && info.dli_fname && !strncmp(base_name(info.dli_fname), "libstdc++.", 10);
}
#endif

/* At activation: in a C++ process, load the helper and install its handler. */
void mpn__cxx_setup(void)
{
#ifdef MPN_HAVE_CXX_HELPER
  static int done;
  void *set_terminate = dlsym(RTLD_DEFAULT, SET_TERMINATE);
  if (done || !set_terminate)
    return;   /* a C program: nothing to load, nothing to say */
  done = 1;
  if (!runtime_is_shared_libstdcxx(set_terminate)) {
    mpn__log_debug("the C++ runtime is not a shared libstdc++: uncaught exceptions are reported as SIGABRT");
    return;
  }
  char path[MPN__PATH_MAX + sizeof HELPER];
  if (helper_path(path, sizeof path) != 0) {
    mpn__log_debug("no folder to load " HELPER " from: uncaught exceptions are reported as SIGABRT");
    return;
  }
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  int (*install)(void (*)(const char *, const char *), void (*)(const char *)) = NULL;
  if (h)
    *(void **)&install = dlsym(h, "mpn_cxx_install");
  if (!install || install(on_uncaught, on_log) != 0) {
    mpn__log_debug("cannot use %s (%s): uncaught exceptions are reported as SIGABRT", path,
                   h ? "no mpn_cxx_install" : dlerror());
    return;
  }
#else
  (void)on_uncaught;
  (void)on_log;
#endif
}
