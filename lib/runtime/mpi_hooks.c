/* mpi_hooks.c - MPI_Init, MPI_Init_thread and MPI_Finalize through the
 * profiling interface, and the entry points of mpi_errors.c (MPI_Abort, the
 * communicator error handlers). The PMPI_ names are defined too: Open MPI's
 * Fortran bindings (mpi_init_, mpi_abort_, mpi_comm_set_errhandler_) call
 * PMPI_Init, PMPI_Abort... directly, and would otherwise be missed. The real
 * functions come from mpi/pmpi.c (the next definition after ours, never ours). */
#include "runtime/runtime.h"

#include <stdio.h>

#define MPN_ERR_OTHER 16   /* MPI_ERR_OTHER: the value every MPI-3 library uses */

static __thread int in_wrapper;   /* another tool's MPI_Init may call our PMPI_Init */

/* Said once per process, on stderr: a rank that cannot find its MPI stays inert. */
void mpn__mpi_missing(const char *name)
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

static int init_thread(int *argc, char ***argv, int required, int *provided)
{
  static int (*real)(int *, char ***, int, int *);
  if (!real)
    *(void **)&real = mpn__mpi_next("PMPI_Init_thread");
  if (!real) {
    mpn__mpi_missing("PMPI_Init_thread");
    return MPN_ERR_OTHER;
  }
  if (mpn__self.disabled && !in_wrapper)
    mpn__launcher_unarmed(NULL);   /* says it is disabled */
  if (in_wrapper || mpn__self.disabled)
    return real(argc, argv, required, provided);
  in_wrapper = 1;
  mpn__config_ensure();
  /* The agent thread calls MPI while the application may be inside MPI:
   * that needs MPI_THREAD_MULTIPLE unless the user keeps the app's level.
   * Another MPI than Open MPI (the library stays inert there) keeps it too. */
  int ask = required;
  if (!mpn__cfg()->keep_thread_level && ask < MPI_THREAD_MULTIPLE && mpn__mpi_object("ompi_mpi_comm_world"))
    ask = MPI_THREAD_MULTIPLE;
  int got = MPI_THREAD_SINGLE;
  mpn__signals_uninstall();   /* let Open MPI install its own handlers; we chain to them */
  int rc = real(argc, argv, ask, &got);
  if (rc == 0)
    mpn__on_mpi_initialized(got);
  else if (atomic_load(&mpn__crash.armed))
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
    *(void **)&real = mpn__mpi_next("PMPI_Init");
  if (!in_wrapper && !mpn__self.disabled)
    mpn__config_ensure();
  if (in_wrapper || mpn__self.disabled || mpn__cfg()->keep_thread_level) {
    if (!real) {
      mpn__mpi_missing("PMPI_Init");
      return MPN_ERR_OTHER;
    }
    if (mpn__self.disabled && !in_wrapper)
      mpn__launcher_unarmed(NULL);   /* says it is disabled */
    if (in_wrapper || mpn__self.disabled)
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
    *(void **)&real = mpn__mpi_next("PMPI_Finalize");
  if (!real) {
    mpn__mpi_missing("PMPI_Finalize");
    return MPN_ERR_OTHER;
  }
  /* "in MPI_Finalize" for hang reports: a rank that finished while others still wait is the usual culprit */
  mpn__wait_slot *s = mpn__self.disabled ? NULL : mpn__waits_enter(MPN__CALL_FINALIZE);
  if (!in_wrapper && !mpn__self.disabled) {
    in_wrapper = 1;
    mpn__on_mpi_finalize();
    in_wrapper = 0;
  }
  int rc = real();
  mpn__waits_leave(s);
  return rc;
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
