/* lines.c - source file and line of native frames, and inlined calls as
 * frames of their own, from the debug information (elfutils' libdw).
 *
 * Never in a signal handler: the handler keeps raw addresses, the agent asks
 * for lines when it builds a report. libdw is opened with dlopen(RTLD_LOCAL),
 * like libunwind: this library is preloaded into arbitrary programs, and
 * elfutils' symbols (and libelf's, which programs link themselves) must not
 * enter their global scope. Without libdw.so.1 the frames stay as they are.
 *
 * Reading a large binary's DWARF takes time and libdw cannot be interrupted,
 * so the work runs on a thread of its own and the caller waits for it until
 * a deadline: a report is sent without lines rather than late. The dlopen
 * happens on that thread too, so a fault inside the dynamic loader (its lock
 * held by the faulting thread) only costs the lines. One Dwfl per process
 * caches the modules and their debug information between reports.
 */
#include "capture/capture.h"

#include <elfutils/libdwfl.h>
#include <dwarf.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FN(name) __typeof__(name) *name

static struct {
  FN(dwfl_begin);
  FN(dwfl_end);
  FN(dwfl_report_begin);
  FN(dwfl_report_end);
  FN(dwfl_linux_proc_report);
  FN(dwfl_addrmodule);
  FN(dwfl_module_getsrc);
  FN(dwfl_lineinfo);
  FN(dwfl_module_addrdie);
  FN(dwarf_getscopes);
  FN(dwarf_haspc);
  FN(dwarf_tag);
  FN(dwarf_diename);
  FN(dwarf_attr_integrate);
  FN(dwarf_formudata);
  FN(dwarf_formstring);
  FN(dwarf_getsrcfiles);
  FN(dwarf_filesrc);
  Dwfl_Callbacks callbacks;
  atomic_int loaded;   /* 1 loaded, -1 absent or unusable; the caller reads it */
} D;

static char *debuginfo_path;   /* NULL: libdw's default (/usr/lib/debug, .debug next to the file) */

/* The worker thread only: whoever runs the worker owns D and the cache. */
static Dwfl *cache;
static pid_t cache_pid;

#define LOAD(name) (*(void **)&D.name = dlsym(h, #name)) != NULL

static int load_symbols(void *h)
{
  return LOAD(dwfl_begin) && LOAD(dwfl_end) && LOAD(dwfl_report_begin) && LOAD(dwfl_report_end) &&
         LOAD(dwfl_linux_proc_report) && LOAD(dwfl_addrmodule) && LOAD(dwfl_module_getsrc) &&
         LOAD(dwfl_lineinfo) && LOAD(dwfl_module_addrdie) && LOAD(dwarf_getscopes) && LOAD(dwarf_haspc) && LOAD(dwarf_tag) &&
         LOAD(dwarf_diename) && LOAD(dwarf_attr_integrate) && LOAD(dwarf_formudata) && LOAD(dwarf_formstring) &&
         LOAD(dwarf_getsrcfiles) && LOAD(dwarf_filesrc);
}

static int load(void)
{
  if (D.loaded)
    return D.loaded > 0 ? 0 : -1;
  void *h = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
  void *find_elf = h ? dlsym(h, "dwfl_linux_proc_find_elf") : NULL;
  void *find_debuginfo = h ? dlsym(h, "dwfl_standard_find_debuginfo") : NULL;
  if (!h || !find_elf || !find_debuginfo || !load_symbols(h)) {
    D.loaded = -1;   /* the one line: frames keep module, offset and symbol */
    mpn__log_debug("libdw.so.1 %s: backtraces without file and line", h ? "lacks dwfl functions" : "not found");
    return -1;
  }
  *(void **)&D.callbacks.find_elf = find_elf;
  *(void **)&D.callbacks.find_debuginfo = find_debuginfo;
  D.callbacks.debuginfo_path = &debuginfo_path;
  D.loaded = 1;
  return 0;
}

/* Reports the process's modules (again: a library dlopen'ed since). */
static int report_modules(Dwfl *d)
{
  D.dwfl_report_begin(d);
  int rc = D.dwfl_linux_proc_report(d, getpid());
  return D.dwfl_report_end(d, NULL, NULL) == 0 && rc == 0 ? 0 : -1;
}

/* A fork's child has its parent's cache, possibly mid-change: left alone. */
static Dwfl *dwfl(int refresh)
{
  if (cache && cache_pid == getpid()) {
    if (refresh && report_modules(cache) != 0)
      return NULL;
    return cache;
  }
  cache = D.dwfl_begin(&D.callbacks);
  cache_pid = getpid();
  if (cache && report_modules(cache) != 0) {
    D.dwfl_end(cache);
    cache = NULL;
  }
  return cache;
}

typedef struct where {
  const char *file;
  int line;
} where;

/* The name of an inlined function: its linkage name (demangled), else its own. */
static void inline_name(Dwarf_Die *die, char *out, size_t cap)
{
  Dwarf_Attribute a;
  const char *name = NULL;
  if (D.dwarf_attr_integrate(die, DW_AT_linkage_name, &a) || D.dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
    name = D.dwarf_formstring(&a);
  if (!name)
    name = D.dwarf_diename(die);
  mpn__strlcpy(out, name ? name : "??", cap);
  mpn__demangle(out, cap);
}

/* The call site of an inlined function: where the frame outside it is. */
static where call_site(Dwarf_Die *cu, Dwarf_Die *inl)
{
  where w = {NULL, 0};
  Dwarf_Attribute a;
  Dwarf_Word file, line;
  Dwarf_Files *files;
  size_t nfiles;
  if (D.dwarf_formudata(D.dwarf_attr_integrate(inl, DW_AT_call_file, &a), &file) == 0 &&
      D.dwarf_getsrcfiles(cu, &files, &nfiles) == 0 && file < nfiles)
    w.file = D.dwarf_filesrc(files, file, NULL, NULL);
  if (D.dwarf_formudata(D.dwarf_attr_integrate(inl, DW_AT_call_line, &a), &line) == 0)
    w.line = (int)line;
  return w;
}

static void set_where(mpn__frame *f, where w)
{
  f->line = w.file && w.line > 0 ? w.line : 0;
  mpn__strlcpy(f->file, w.file && w.line > 0 ? w.file : "", sizeof f->file);
}

/* One physical frame: its inlined callees first, innermost first (as gdb
 * lists them), then the frame itself at the outermost call site. Returns
 * how many frames it wrote into out (at most room, at least 1). */
static int resolve_frame(Dwfl *d, const mpn__frame *in, mpn__frame *out, int room)
{
  out[0] = *in;
  Dwarf_Addr pc = in->ip - (in->call_site ? 1 : 0);   /* the call, not the instruction after it */
  Dwfl_Module *mod = D.dwfl_addrmodule(d, pc);
  Dwarf_Addr bias = 0;
  Dwarf_Die *cu = mod ? D.dwfl_module_addrdie(mod, pc, &bias) : NULL;
  /* Code of no compilation unit (crt1's _start) would get the nearest line
   * of another one: the unit must cover the address. */
  if (!cu || D.dwarf_haspc(cu, pc - bias) <= 0)
    return 1;
  where w = {NULL, 0};
  Dwfl_Line *l = D.dwfl_module_getsrc(mod, pc);
  if (l)
    w.file = D.dwfl_lineinfo(l, NULL, &w.line, NULL, NULL, NULL);
  Dwarf_Die *scopes = NULL;
  int nscopes = D.dwarf_getscopes(cu, pc - bias, &scopes);
  int n = 0;
  for (int i = 0; i < nscopes && n < room - 1; i++) {
    int tag = D.dwarf_tag(&scopes[i]);
    if (tag == DW_TAG_subprogram)
      break;
    if (tag != DW_TAG_inlined_subroutine)
      continue;
    mpn__frame *f = &out[n++];
    *f = *in;
    f->inlined = 1;
    f->has_function = 1;
    f->function_offset = 0;
    inline_name(&scopes[i], f->function, sizeof f->function);
    set_where(f, w);
    w = call_site(cu, &scopes[i]);
  }
  free(scopes);
  out[n] = *in;
  set_where(&out[n], w);
  return n + 1;
}

static int resolve_all(const mpn__frame *in, int n, mpn__frame *out, int max)
{
  Dwfl *d = dwfl(0);
  int refreshed = 0, k = 0;
  for (int i = 0; i < n && k < max; i++) {
    if (d && !refreshed && !D.dwfl_addrmodule(d, in[i].ip)) {   /* loaded after the cache was made */
      refreshed = 1;
      d = dwfl(1);
    }
    if (d)
      k += resolve_frame(d, &in[i], out + k, max - k);
    else
      out[k++] = in[i];
  }
  return k;
}

/* ---- the worker and its deadline ----------------------------------------- */

typedef struct job {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int refs;          /* the caller's and the worker's: the last one frees */
  int done, n, nout, max;
  mpn__frame *in, *out;
} job;

static atomic_int busy_pid;   /* the process whose worker runs; a fork's child does not wait for its parent's */

static void release(job *j)
{
  pthread_mutex_lock(&j->lock);
  int last = --j->refs == 0;
  pthread_mutex_unlock(&j->lock);
  if (!last)
    return;
  pthread_mutex_destroy(&j->lock);
  pthread_cond_destroy(&j->cond);
  free(j->in);
  free(j->out);
  free(j);
}

static void *worker(void *arg)
{
  job *j = arg;
  int nout = load() == 0 ? resolve_all(j->in, j->n, j->out, j->max) : -1;
  pthread_mutex_lock(&j->lock);
  j->nout = nout;
  j->done = 1;
  pthread_cond_signal(&j->cond);
  pthread_mutex_unlock(&j->lock);
  atomic_store(&busy_pid, 0);
  release(j);
  return NULL;
}

static job *job_new(const mpn__frame *in, int n, int max)
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return NULL;
  j->in = malloc(sizeof *in * (size_t)n);
  j->out = malloc(sizeof *in * (size_t)max);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* the deadline is mpn__now_ns's */
  pthread_cond_init(&j->cond, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&j->lock, NULL);
  j->refs = 2;
  j->n = n;
  j->max = max;
  if (j->in)
    memcpy(j->in, in, sizeof *in * (size_t)n);
  if (!j->in || !j->out) {
    j->refs = 1;
    release(j);
    return NULL;
  }
  return j;
}

/* Only one worker at a time: libdw's Dwfl is not thread-safe, and a worker
 * still stuck in a huge binary keeps later reports from waiting for it too. */
static int claim(void)
{
  int mine = (int)getpid(), cur = atomic_load(&busy_pid);
  if (cur == mine)
    return 0;
  return atomic_compare_exchange_strong(&busy_pid, &cur, mine);
}

/* Waits for the worker until the deadline; 1 when its frames are in j->out. */
static int wait_done(job *j, int64_t deadline_ns)
{
  struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
  pthread_mutex_lock(&j->lock);
  while (!j->done && pthread_cond_timedwait(&j->cond, &j->lock, &ts) != ETIMEDOUT) {
  }
  int ok = j->done && j->nout > 0;
  pthread_mutex_unlock(&j->lock);
  return ok;
}

int mpn__lines_resolve(const mpn__frame *in, int n, mpn__frame *out, int max, int64_t deadline_ns)
{
  n = n < max ? n : max;
  if (out != in)
    memmove(out, in, sizeof *in * (size_t)(n > 0 ? n : 0));
  if (n <= 0 || D.loaded < 0 || mpn__now_ns() >= deadline_ns || !claim())
    return n;
  job *j = job_new(out, n, max);
  if (!j) {
    atomic_store(&busy_pid, 0);
    return n;
  }
  if (mpn__thread_start(NULL, "mpn-lines", worker, j, 1, 0) != 0) {
    atomic_store(&busy_pid, 0);
    j->refs = 1;
    release(j);
    return n;
  }
  if (wait_done(j, deadline_ns)) {
    memcpy(out, j->out, sizeof *out * (size_t)j->nout);
    n = j->nout;
  } else if (D.loaded >= 0) {
    mpn__log_debug("file and line of the frames took too long (MPINOTIFY_SYMBOLIZE_MS): sent without them");
  }
  release(j);
  return n;
}
