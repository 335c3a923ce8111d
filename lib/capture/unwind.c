/* unwind.c - backtraces with libunwind.
 *
 * Debian's libunwind.so.8 exports _Unwind_RaiseException and friends. Linked
 * normally into a preloaded library they would replace the C++ runtime's and
 * change how every exception of the program unwinds. So libunwind is opened
 * with dlopen(RTLD_LOCAL): its symbols serve us and stay out of the global
 * scope. (Its static archive is not position-independent, so it cannot be
 * linked into a shared object instead.)
 */
#include "capture/capture.h"

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)   /* libunwind's names are macros: _ULx86_64_step, ... */

static struct {
  int (*init_local2)(unw_cursor_t *, unw_context_t *, int);
  int (*step)(unw_cursor_t *);
  int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
  int (*get_proc_name)(unw_cursor_t *, char *, size_t, unw_word_t *);
  int (*set_caching_policy)(unw_addr_space_t, unw_caching_policy_t);
  int (*getcontext)(unw_context_t *);
  int (*is_signal_frame)(unw_cursor_t *);   /* optional */
  unw_addr_space_t *local_as;
  int loaded;
} U;

static char *(*cxa_demangle)(const char *, char *, size_t *, int *);

int mpn__unwind_load(void)
{
  if (U.loaded)
    return U.loaded > 0 ? 0 : -1;
  void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    U.loaded = -1;
    mpn__log_warn("libunwind.so.8 not found (%s): backtraces will show the faulting address only", dlerror());
    return -1;
  }
  *(void **)&U.init_local2 = dlsym(h, STR(unw_init_local2));
  *(void **)&U.step = dlsym(h, STR(unw_step));
  *(void **)&U.get_reg = dlsym(h, STR(unw_get_reg));
  *(void **)&U.get_proc_name = dlsym(h, STR(unw_get_proc_name));
  *(void **)&U.set_caching_policy = dlsym(h, STR(unw_set_caching_policy));
  *(void **)&U.getcontext = dlsym(h, STR(unw_tdep_getcontext));
  *(void **)&U.is_signal_frame = dlsym(h, STR(unw_is_signal_frame));
  U.local_as = dlsym(h, STR(unw_local_addr_space));
  if (!U.init_local2 || !U.step || !U.get_reg || !U.get_proc_name || !U.getcontext || !U.local_as) {
    U.loaded = -1;
    mpn__log_warn("libunwind.so.8 lacks unw_init_local2 (needs 1.6 or later): backtraces disabled");
    return -1;
  }
  /* A global cache takes locks: the handler could deadlock on one held by
   * the very code it interrupted. */
  if (U.set_caching_policy)
    U.set_caching_policy(*U.local_as, UNW_CACHE_NONE);
  *(void **)&cxa_demangle = dlsym(RTLD_DEFAULT, "__cxa_demangle");
  U.loaded = 1;
  return 0;
}

/* libunwind's first unwind initialises itself under a lock and allocates:
 * do that now, never for the first time inside a signal handler. */
void mpn__unwind_prime(void)
{
  if (mpn__unwind_load() != 0)
    return;
  unw_context_t uc;
  mpn__frame frames[4];
  U.getcontext(&uc);
  mpn__unwind_frames((ucontext_t *)&uc, frames, 4);
}

/* Runs in a signal handler (async-signal-safe once primed). */
/* Runs in a signal handler. A cursor at the interrupted instruction. */
static int cursor_at(unw_cursor_t *c, ucontext_t *uc)
{
  return U.loaded > 0 && U.init_local2(c, (unw_context_t *)uc, UNW_INIT_SIGNAL_FRAME) >= 0;
}

int mpn__unwind_raw(ucontext_t *uc, uintptr_t *ips, int max)
{
  unw_cursor_t c;
  if (!cursor_at(&c, uc))
    return 0;
  int n = 0;
  do {
    unw_word_t ip;
    if (U.get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
      break;
    ips[n++] = (uintptr_t)ip;
  } while (n < max && U.step(&c) > 0);
  return n;
}

static void module_of(mpn__frame *f, uintptr_t lookup)
{
  Dl_info info;
  struct link_map *map = NULL;
  f->module[0] = '\0';
  f->offset = f->ip;
  if (!dladdr1((void *)lookup, &info, (void **)&map, RTLD_DL_LINKMAP) || !map)
    return;
  f->offset = f->ip - (uintptr_t)map->l_addr;
  if (map->l_name && map->l_name[0]) {
    mpn__strlcpy(f->module, map->l_name, sizeof f->module);
  } else {   /* the main program has no name in the link map */
    ssize_t n = readlink("/proc/self/exe", f->module, sizeof f->module - 1);
    f->module[n > 0 ? n : 0] = '\0';
  }
  if (!f->has_function && info.dli_sname && info.dli_saddr) {
    mpn__strlcpy(f->function, info.dli_sname, sizeof f->function);
    f->function_offset = f->ip - (uintptr_t)info.dli_saddr;
    f->has_function = 1;
  }
}

void mpn__demangle(char *name, size_t cap)
{
  if (!cxa_demangle || strncmp(name, "_Z", 2))
    return;
  int status = -1;
  char *d = cxa_demangle(name, NULL, NULL, &status);
  if (d && status == 0)
    mpn__strlcpy(name, d, cap);
  free(d);
}

static void demangle(mpn__frame *f)
{
  mpn__demangle(f->function, sizeof f->function);
}

/* Module, offset and symbol of an address alone (no cursor). */
void mpn__symbolize(mpn__frame *f)
{
  module_of(f, f->ip);
  demangle(f);
}

int mpn__unwind_frames(ucontext_t *uc, mpn__frame *frames, int max)
{
  unw_cursor_t c;
  if (!cursor_at(&c, uc))
    return 0;
  int n = 0, exact = 1;   /* the first frame is where the context stopped, not a return address */
  do {
    mpn__frame *f = &frames[n];
    unw_word_t ip, off = 0;
    if (U.get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0)
      break;
    memset(f, 0, sizeof *f);
    f->ip = (uintptr_t)ip;
    f->call_site = !exact;
    /* Below a signal trampoline is an interrupted instruction, not a call. */
    exact = U.is_signal_frame && U.is_signal_frame(&c) > 0;
    if (U.get_proc_name(&c, f->function, sizeof f->function, &off) == 0 && f->function[0]) {
      f->has_function = 1;
      f->function_offset = (uintptr_t)off;
    }
    /* A return address may be the first byte after the caller's function:
     * look the module up by the call instruction instead. */
    module_of(f, n == 0 ? f->ip : f->ip - 1);
    demangle(f);
    n++;
  } while (n < max && U.step(&c) > 0);
  return n;
}

/* The calling thread's own stack (a reported exception, an exit call):
 * frames above `skip` levels of the library's own functions. */
int mpn__unwind_here(mpn__frame *frames, int max, int skip)
{
  if (mpn__unwind_load() != 0)
    return 0;
  unw_context_t uc;
  mpn__frame *all = malloc(sizeof *all * (MPN__MAX_FRAMES + 8));   /* ~100 KiB: not on a thread's small stack */
  if (!all)
    return 0;
  U.getcontext(&uc);
  int n = mpn__unwind_frames((ucontext_t *)&uc, all, MPN__MAX_FRAMES + 8);
  int k = 0;
  for (int i = skip + 1; i < n && k < max; i++)   /* +1: this function */
    frames[k++] = all[i];
  free(all);
  return k;
}
