/* pmpi.c - the MPI library's real entry points and objects: the next
 * definitions after ours (dlsym RTLD_NEXT), as Darshan does, or, when libmpi
 * was dlopen'ed after us (mpi4py), the ones of the loaded libmpi; never our
 * own (runtime/mpi_hooks.c interposes MPI_Init, MPI_Abort...). */
#include "mpi/mpi.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

mpn__pmpi_table mpn__pmpi;

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

const char *mpn__mpi_thread_level_name(int level)
{
  switch (level) {
  case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
  case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
  case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
  case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
  }
  return "unknown";
}
