/* mpi.h - the MPI layer (docs/internals/mpi.md): the MPI library's real
 * entry points (found, never linked), the election that picks one reporter
 * per unique failure, and the per-node fallback when no election can run.
 * Uses the layers below (config/ for its timings, format/ for reports). The
 * interposed MPI_* entry points are the runtime's (runtime/mpi_hooks.c). */
#ifndef MPN_MPI_H
#define MPN_MPI_H

#include "config/config.h"

#include <mpi.h>

/* ---- pmpi.c: the MPI entry points the library uses, found with dlsym ------
 * The shared library never links libmpi (it is linked with -z defs to prove
 * it): preloaded into a shell it must load, and preloaded into a program
 * built against another MPI it must not bring a second one. So every MPI
 * function is called through this table, filled when MPI_Init runs, and
 * Open MPI's predefined handles (MPI_COMM_WORLD is &ompi_mpi_comm_world) are
 * looked up by name. Never use an MPI_* handle macro in lib/: the link fails. */
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
  MPI_Comm self;
  MPI_Errhandler errors_are_fatal;
} mpn__pmpi_table;

/* The table holds the next definitions after ours (dlsym RTLD_NEXT): the
 * library interposes some of these names itself and must reach the real ones. */
extern mpn__pmpi_table mpn__pmpi;
int mpn__mpi_resolve(void);              /* fill the table; 0 on success */
int mpn__mpi_loaded(void);               /* an MPI library is in the process (not necessarily initialised) */
void *mpn__mpi_next(const char *name);   /* the next definition of an MPI function after ours */
void *mpn__mpi_object(const char *name); /* an MPI data object or a function we do not define */
const char *mpn__mpi_thread_level_name(int level);   /* "MPI_THREAD_MULTIPLE" */

/* ---- election.c ---------------------------------------------------------- */
/* What the agent and the application's threads share about MPI. */
typedef struct mpn__mpi_state {
  atomic_int mpi_active;     /* the agent may call MPI */
  atomic_int mpi_ok;         /* elections possible */
  atomic_int stop;           /* exit: the agent must leave MPI alone */
  uint64_t job_token;        /* alike on every rank of the job */
} mpn__mpi_state;
extern mpn__mpi_state mpn__mpi;

int mpn__mpi_setup(int provided);    /* private communicators, job token; 0 on success */

/* Runs the event through an epoch. Returns 1 when the election produced a
 * result (it fills report fields and *leader), 0 when it could not. */
typedef struct mpn__outcome {
  int known;         /* signature was reported before: no message */
  int leader;        /* this rank reports */
  mpn__proc *procs;  /* ranks that hit the signature (every rank of it: a successor reports with it), malloc'd */
  int nprocs;
  int64_t first_wall_ns;
  int wait_leaders;  /* fatal non-leaders: leaders to hear "delivered" from */
} mpn__outcome;
/* Election state machine, driven by the agent thread. */
void mpn__election_start(void);      /* post the doorbell receive */
/* Joins an epoch another rank rang for. `take` captures a local failure
 * arriving meanwhile; it is returned in *taken with its outcome in *out.
 * Returns 1 if an epoch ran, 0 if none was due, -1 if it failed. */
int mpn__election_poll(const mpn__event *(*take)(void), const mpn__event **taken, mpn__outcome *out);
int mpn__election_run(const mpn__event *ev, int64_t deadline_ns, mpn__outcome *out);
/* Leader (or successor): tell the waiting ranks; `unreached` the channels (bit i: the
 * configuration's channel i) this rank could not reach and hands to its successor, 0 when delivered. */
void mpn__election_done(int64_t deadline_ns, uint64_t unreached);
/* Fatal rank: wait for the leaders and their successors. 0 all delivered, -1 some did not
 * answer in time, 1 this rank is a successor now: send to *unreached, then done, then wait again. */
int mpn__election_wait(int64_t deadline_ns, uint64_t *unreached);
/* The next fatally failed rank of `rank`'s signature on another host (hand-off), or -1. */
int mpn__election_successor(int rank);
void mpn__election_finalize(int64_t deadline_ns);
void mpn__election_abandon(const char *why);
const char *mpn__election_error(void);
int64_t mpn__election_gather_ns(void);       /* the last epoch's allgather, for the timing log */
int mpn__election_known(uint64_t sig);       /* reported before in this job (as far as we know) */
void mpn__election_remember(uint64_t sig);

/* ---- fallback.c: one report per node without an election ----------------- */
int mpn__fallback_claim(uint64_t signature);   /* node lock: 1 if this process reports */
void mpn__fallback_release(void);              /* the claimer has reported */
void mpn__fallback_wait(uint64_t signature, int64_t deadline);   /* a fatal non-claimer waits for it */
void mpn__fallback_sweep(void);                /* drop claims older than a day */

#endif
