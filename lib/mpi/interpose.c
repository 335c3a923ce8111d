/* interpose.c - MPI_Init, MPI_Init_thread and MPI_Finalize through the
 * profiling interface, and the entry points of errors.c (MPI_Abort, the
 * communicator error handlers). The PMPI_ names are defined too: Open MPI's
 * Fortran bindings (mpi_init_, mpi_abort_, mpi_comm_set_errhandler_) call
 * PMPI_Init, PMPI_Abort... directly, and would otherwise be missed. The real
 * functions are the next definitions after ours (dlsym RTLD_NEXT), as
 * Darshan does, or, when libmpi was dlopen'ed after us (mpi4py), the ones of
 * the loaded libmpi; never our own. */
#include "core/mpn.h"
#include "mpi/pmpi.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MPN_ERR_OTHER 16   /* MPI_ERR_OTHER: the value every MPI-3 library uses */

mpn__pmpi_table mpn__pmpi;

static __thread int in_wrapper;   /* another tool's MPI_Init may call our PMPI_Init */

/* Is `p` one of this library's own definitions? Preloaded, RTLD_DEFAULT (and
 * RTLD_NEXT where libmpi came later) finds our PMPI_Init_thread: calling it
 * would recurse forever. */
static int is_ours(void *p)
{
  Dl_info mine, theirs;
  return p && dladdr((void *)&is_ours, &mine) && dladdr(p, &theirs) && mine.dli_fbase == theirs.dli_fbase;
}

#define MAX_OBJECTS 1024   /* loaded objects looked at for libmpi; a process has a few hundred */

typedef struct object_names {
  char names[MAX_OBJECTS][MPN__PATH_MAX];
  int n;
} object_names;

/* Only copies names: dl_iterate_phdr holds the loader's list lock while it
 * calls back, and dlopen/dladdr here would take the other loader lock in
 * the opposite order of a thread inside dlopen (a deadlock). */
static int collect_object(struct dl_phdr_info *info, size_t size, void *arg)
{
  (void)size;
  object_names *o = arg;
  if (info->dlpi_name && info->dlpi_name[0] && o->n < MAX_OBJECTS)
    mpn__strlcpy(o->names[o->n++], info->dlpi_name, sizeof o->names[0]);
  return 0;
}

static int libmpi_named(const char *path)
{
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  return !strncmp(base, "libmpi", 6) && strncmp(base, "libmpinotify", 12);
}

/* The first object (libmpi* first, then any) defining PMPI_Init that is not
 * us; a handle holding a reference, kept for good (our cached pointers point into it). */
static void *find_mpi(void)
{
  object_names *o = calloc(1, sizeof *o);
  void *found = NULL;
  if (!o)
    return NULL;
  dl_iterate_phdr(collect_object, o);
  for (int pass = 0; !found && pass < 2; pass++)
    for (int i = 0; !found && i < o->n; i++) {
      if (pass == 0 && !libmpi_named(o->names[i]))
        continue;
      void *h = dlopen(o->names[i], RTLD_LAZY | RTLD_NOLOAD);
      void *p = h ? dlsym(h, "PMPI_Init") : NULL;
      if (p && !is_ours(p))
        found = h;
      else if (h)
        dlclose(h);
    }
  free(o);
  return found;
}

/* The MPI library actually loaded, wherever it came from: linked, or
 * dlopen'ed later (mpi4py loads libmpi.so.40 at import, possibly
 * RTLD_LOCAL), which RTLD_NEXT from a preloaded library never sees. */
static void *loaded_mpi(void)
{
  static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  static void *handle;
  pthread_mutex_lock(&lock);
  if (!handle)
    handle = find_mpi();
  void *h = handle;
  pthread_mutex_unlock(&lock);
  return h;
}

static void *next_symbol(const char *name)
{
  void *p = dlsym(RTLD_NEXT, name);
  if (p && !is_ours(p))
    return p;
  void *lib = loaded_mpi();
  p = lib ? dlsym(lib, name) : NULL;
  if (p && !is_ours(p))
    return p;
  p = dlsym(RTLD_DEFAULT, name);
  return is_ours(p) ? NULL : p;
}

/* An object of libmpi (MPI_COMM_WORLD is &ompi_mpi_comm_world): the
 * program's own copy when it has one (a copy relocation moves the object
 * into an executable that names it; libmpi itself then uses that copy),
 * else libmpi's, wherever libmpi was loaded. */
static void *mpi_object(const char *name)
{
  void *p = dlsym(RTLD_DEFAULT, name);
  void *lib = p ? NULL : loaded_mpi();
  return p ? p : lib ? dlsym(lib, name) : NULL;
}

int mpn__mpi_loaded(void)
{
  return loaded_mpi() != NULL;
}

void *mpn__mpi_next(const char *name)
{
  return next_symbol(name);
}

void *mpn__mpi_object(const char *name)
{
  return mpi_object(name);
}

/* Said once per process, on stderr: a rank that cannot find its MPI stays inert. */
static void say_missing(const char *name)
{
  static atomic_int said;
  if (!atomic_exchange(&said, 1)) {
    mpn__log_warn("cannot find the MPI library's %s (no loaded library defines it): mpinotify stays inert in "
                  "this process", name);
    char why[128];
    snprintf(why, sizeof why, "cannot find the MPI library's %s (no loaded library defines it)", name);
    mpn__launcher_unarmed(why);
  }
}

int mpn__mpi_resolve(void)
{
  int missing = 0;
  /* RTLD_NEXT, not RTLD_DEFAULT: preloaded, RTLD_DEFAULT finds our own
   * PMPI_Abort, PMPI_Comm_set_errhandler... (the election's private
   * communicators must get the real MPI_ERRORS_RETURN). */
#define MPN__PMPI_RESOLVE(name) \
  if (!(*(void **)&mpn__pmpi.name = next_symbol("PMPI_" #name))) missing = 1;
  MPN__PMPI_FUNCTIONS(MPN__PMPI_RESOLVE)
#undef MPN__PMPI_RESOLVE
  mpn__pmpi.world = (MPI_Comm)mpi_object("ompi_mpi_comm_world");
  mpn__pmpi.self = (MPI_Comm)mpi_object("ompi_mpi_comm_self");
  mpn__pmpi.byte = (MPI_Datatype)mpi_object("ompi_mpi_byte");
  mpn__pmpi.errors_return = (MPI_Errhandler)mpi_object("ompi_mpi_errors_return");
  mpn__pmpi.errors_are_fatal = (MPI_Errhandler)mpi_object("ompi_mpi_errors_are_fatal");
  if (missing || !mpn__pmpi.world || !mpn__pmpi.self || !mpn__pmpi.byte || !mpn__pmpi.errors_return ||
      !mpn__pmpi.errors_are_fatal)
    return -1;
  return 0;
}

static int init_thread(int *argc, char ***argv, int required, int *provided)
{
  static int (*real)(int *, char ***, int, int *);
  if (!real)
    *(void **)&real = next_symbol("PMPI_Init_thread");
  if (!real) {
    say_missing("PMPI_Init_thread");
    return MPN_ERR_OTHER;
  }
  if (mpn__g.disabled && !in_wrapper)
    mpn__launcher_unarmed(NULL);   /* says it is disabled */
  if (in_wrapper || mpn__g.disabled)
    return real(argc, argv, required, provided);
  in_wrapper = 1;
  mpn__config_ensure();
  /* The agent thread calls MPI while the application may be inside MPI:
   * that needs MPI_THREAD_MULTIPLE unless the user keeps the app's level.
   * Another MPI than Open MPI (the library stays inert there) keeps it too. */
  int ask = required;
  if (!mpn__g.cfg.keep_thread_level && ask < MPI_THREAD_MULTIPLE && mpi_object("ompi_mpi_comm_world"))
    ask = MPI_THREAD_MULTIPLE;
  int got = MPI_THREAD_SINGLE;
  mpn__signals_uninstall();   /* let Open MPI install its own handlers; we chain to them */
  int rc = real(argc, argv, ask, &got);
  if (rc == 0)
    mpn__on_mpi_initialized(got);
  else if (atomic_load(&mpn__g.active))
    mpn__signals_install();
  if (provided)
    *provided = got;
  in_wrapper = 0;
  return rc;
}

static int init_plain(int *argc, char ***argv)
{
  static int (*real)(int *, char ***);
  if (!real)
    *(void **)&real = next_symbol("PMPI_Init");
  if (!in_wrapper && !mpn__g.disabled)
    mpn__config_ensure();
  if (in_wrapper || mpn__g.disabled || mpn__g.cfg.keep_thread_level) {
    if (!real) {
      say_missing("PMPI_Init");
      return MPN_ERR_OTHER;
    }
    if (mpn__g.disabled && !in_wrapper)
      mpn__launcher_unarmed(NULL);   /* says it is disabled */
    if (in_wrapper || mpn__g.disabled)
      return real(argc, argv);
    in_wrapper = 1;
    mpn__signals_uninstall();
    int rc = real(argc, argv);
    int got = MPI_THREAD_SINGLE;
    if (rc == 0 && mpn__mpi_resolve() == 0)
      mpn__pmpi.Query_thread(&got);
    if (rc == 0)
      mpn__on_mpi_initialized(got);
    in_wrapper = 0;
    return rc;
  }
  int provided;
  return init_thread(argc, argv, MPI_THREAD_SINGLE, &provided);
}

static int finalize(void)
{
  static int (*real)(void);
  if (!real)
    *(void **)&real = next_symbol("PMPI_Finalize");
  if (!real) {
    say_missing("PMPI_Finalize");
    return MPN_ERR_OTHER;
  }
  if (!in_wrapper && !mpn__g.disabled) {
    in_wrapper = 1;
    mpn__on_mpi_finalize();
    in_wrapper = 0;
  }
  return real();
}

MPN_EXTERN int MPI_Init(int *argc, char ***argv) { return init_plain(argc, argv); }
MPN_EXTERN int PMPI_Init(int *argc, char ***argv) { return init_plain(argc, argv); }
MPN_EXTERN int MPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
  return init_thread(argc, argv, required, provided);
}
MPN_EXTERN int PMPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
  return init_thread(argc, argv, required, provided);
}
MPN_EXTERN int MPI_Finalize(void) { return finalize(); }
MPN_EXTERN int PMPI_Finalize(void) { return finalize(); }

/* errors.c's entry points. MPI_Errhandler_set/get were removed in MPI-3 (mpi.h
 * hides them) but Open MPI still has them and Fortran's MPI_ERRHANDLER_SET
 * reaches PMPI_Errhandler_set: they are the MPI-1 names of the same calls. */
MPN_EXTERN int MPI_Abort(MPI_Comm comm, int code) { return mpn__errors_abort(comm, code); }
MPN_EXTERN int PMPI_Abort(MPI_Comm comm, int code) { return mpn__errors_abort(comm, code); }
MPN_EXTERN int MPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler eh) { return mpn__errors_set(comm, eh); }
MPN_EXTERN int PMPI_Comm_set_errhandler(MPI_Comm comm, MPI_Errhandler eh) { return mpn__errors_set(comm, eh); }
MPN_EXTERN int MPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *eh) { return mpn__errors_get(comm, eh); }
MPN_EXTERN int PMPI_Comm_get_errhandler(MPI_Comm comm, MPI_Errhandler *eh) { return mpn__errors_get(comm, eh); }
MPN_EXTERN int MPI_Comm_create_errhandler(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh)
{
  return mpn__errors_create(fn, eh);
}
MPN_EXTERN int PMPI_Comm_create_errhandler(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh)
{
  return mpn__errors_create(fn, eh);
}
#undef MPI_Errhandler_set
#undef MPI_Errhandler_get
MPN_EXTERN int MPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler eh);
MPN_EXTERN int PMPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler eh);
MPN_EXTERN int MPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler *eh);
MPN_EXTERN int PMPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler *eh);
MPN_EXTERN int MPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler eh) { return mpn__errors_set(comm, eh); }
MPN_EXTERN int PMPI_Errhandler_set(MPI_Comm comm, MPI_Errhandler eh) { return mpn__errors_set(comm, eh); }
MPN_EXTERN int MPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler *eh) { return mpn__errors_get(comm, eh); }
MPN_EXTERN int PMPI_Errhandler_get(MPI_Comm comm, MPI_Errhandler *eh) { return mpn__errors_get(comm, eh); }
