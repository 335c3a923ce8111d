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
  X(Irecv) X(Test) X(Cancel) X(Request_free)

typedef struct mpn__pmpi_table {
#define MPN__PMPI_FIELD(name) __typeof__(PMPI_##name) *name;
  MPN__PMPI_FUNCTIONS(MPN__PMPI_FIELD)
#undef MPN__PMPI_FIELD
  MPI_Comm world;
  MPI_Datatype byte;
  MPI_Errhandler errors_return;
} mpn__pmpi_table;

extern mpn__pmpi_table mpn__pmpi;

#endif
