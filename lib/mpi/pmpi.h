/* pmpi.h - the MPI entry points the library uses, found with dlsym.
 *
 * The shared library never links libmpi (it is linked with -z defs to prove
 * it): preloaded into a shell it must load, and preloaded into a program
 * built against another MPI it must not bring a second one. So every MPI
 * function is called through this table, filled when MPI_Init runs, and
 * Open MPI's predefined handles (MPI_COMM_WORLD is &ompi_mpi_comm_world) are
 * looked up by name. Never use an MPI_* handle macro in lib/: the link fails. */
#ifndef MPN_PMPI_H
#define MPN_PMPI_H

#include <mpi.h>

#define MPN__PMPI_FUNCTIONS(X) \
  X(Initialized) X(Finalized) X(Query_thread) X(Comm_dup) X(Comm_free) X(Comm_rank) \
  X(Comm_size) X(Comm_set_errhandler) X(Bcast) X(Iallgather) X(Ibarrier) X(Isend) \
  X(Irecv) X(Test) X(Cancel) X(Request_free) \
  X(Abort) X(Comm_create_errhandler) X(Comm_get_errhandler) X(Errhandler_free) \
  X(Error_class) X(Error_string) X(Comm_get_name)

typedef struct mpn__pmpi_table {
#define MPN__PMPI_FIELD(name) __typeof__(PMPI_##name) *name;
  MPN__PMPI_FUNCTIONS(MPN__PMPI_FIELD)
#undef MPN__PMPI_FIELD
  MPI_Comm world;
  MPI_Datatype byte;
  MPI_Errhandler errors_return;
  MPI_Comm self;                  /* errors.c */
  MPI_Errhandler errors_are_fatal;
} mpn__pmpi_table;

/* The table holds the next definitions after ours (dlsym RTLD_NEXT): the
 * library interposes some of these names itself (errors.c) and must reach
 * the real ones. */
extern mpn__pmpi_table mpn__pmpi;
void *mpn__mpi_next(const char *name);   /* the next definition of an MPI function after ours */
void *mpn__mpi_object(const char *name); /* an MPI data object or a function we do not define */

/* errors.c: MPI errors and MPI_Abort (interpose.c holds the entry points). */
void mpn__errors_setup(void);   /* after MPI_Init: our error handler on MPI_COMM_WORLD and MPI_COMM_SELF */
int mpn__errors_abort(MPI_Comm comm, int code);
int mpn__errors_set(MPI_Comm comm, MPI_Errhandler eh);
int mpn__errors_get(MPI_Comm comm, MPI_Errhandler *eh);
int mpn__errors_create(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh);

#endif
