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

/* ---- waits.c: which blocking MPI call each application thread is in -------
 * docs/internals/waits.md. The interposed calls (runtime/mpi_waits.c, from
 * the list below) mark their thread's slot on entry and exit with one
 * relaxed store each: no clock, no lock, no system call. The agent samples
 * the slots every loop (mpn__waits_tick); a slot that shows the same entry
 * as at the previous look has been in that call since the first look that
 * saw it (so a wait is known to one sampling period, MPINOTIFY_POLL_MS).
 * The list: X(name, parameters, arguments), each exactly as in mpi.h. */
#define MPN__WAIT_CALLS(X) \
  X(Barrier, (MPI_Comm c), (c)) \
  X(Bcast, (void *b, int n, MPI_Datatype t, int root, MPI_Comm c), (b, n, t, root, c)) \
  X(Reduce, (const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, int root, MPI_Comm c), \
    (s, r, n, t, op, root, c)) \
  X(Allreduce, (const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c), (s, r, n, t, op, c)) \
  X(Gather, (const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, int root, MPI_Comm c), \
    (s, sn, st, r, rn, rt, root, c)) \
  X(Gatherv, (const void *s, int sn, MPI_Datatype st, void *r, const int rn[], const int rd[], MPI_Datatype rt, \
              int root, MPI_Comm c), (s, sn, st, r, rn, rd, rt, root, c)) \
  X(Scatter, (const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, int root, MPI_Comm c), \
    (s, sn, st, r, rn, rt, root, c)) \
  X(Scatterv, (const void *s, const int sn[], const int sd[], MPI_Datatype st, void *r, int rn, MPI_Datatype rt, \
               int root, MPI_Comm c), (s, sn, sd, st, r, rn, rt, root, c)) \
  X(Allgather, (const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, MPI_Comm c), \
    (s, sn, st, r, rn, rt, c)) \
  X(Allgatherv, (const void *s, int sn, MPI_Datatype st, void *r, const int rn[], const int rd[], MPI_Datatype rt, \
                 MPI_Comm c), (s, sn, st, r, rn, rd, rt, c)) \
  X(Alltoall, (const void *s, int sn, MPI_Datatype st, void *r, int rn, MPI_Datatype rt, MPI_Comm c), \
    (s, sn, st, r, rn, rt, c)) \
  X(Alltoallv, (const void *s, const int sn[], const int sd[], MPI_Datatype st, void *r, const int rn[], \
                const int rd[], MPI_Datatype rt, MPI_Comm c), (s, sn, sd, st, r, rn, rd, rt, c)) \
  X(Alltoallw, (const void *s, const int sn[], const int sd[], const MPI_Datatype st[], void *r, const int rn[], \
                const int rd[], const MPI_Datatype rt[], MPI_Comm c), (s, sn, sd, st, r, rn, rd, rt, c)) \
  X(Reduce_scatter, (const void *s, void *r, const int rn[], MPI_Datatype t, MPI_Op op, MPI_Comm c), \
    (s, r, rn, t, op, c)) \
  X(Reduce_scatter_block, (const void *s, void *r, int rn, MPI_Datatype t, MPI_Op op, MPI_Comm c), \
    (s, r, rn, t, op, c)) \
  X(Scan, (const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c), (s, r, n, t, op, c)) \
  X(Exscan, (const void *s, void *r, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c), (s, r, n, t, op, c)) \
  X(Send, (const void *b, int n, MPI_Datatype t, int dest, int tag, MPI_Comm c), (b, n, t, dest, tag, c)) \
  X(Ssend, (const void *b, int n, MPI_Datatype t, int dest, int tag, MPI_Comm c), (b, n, t, dest, tag, c)) \
  X(Bsend, (const void *b, int n, MPI_Datatype t, int dest, int tag, MPI_Comm c), (b, n, t, dest, tag, c)) \
  X(Rsend, (const void *b, int n, MPI_Datatype t, int dest, int tag, MPI_Comm c), (b, n, t, dest, tag, c)) \
  X(Recv, (void *b, int n, MPI_Datatype t, int src, int tag, MPI_Comm c, MPI_Status *st), \
    (b, n, t, src, tag, c, st)) \
  X(Sendrecv, (const void *s, int sn, MPI_Datatype stype, int dest, int stag, void *r, int rn, MPI_Datatype rtype, \
               int src, int rtag, MPI_Comm c, MPI_Status *st), (s, sn, stype, dest, stag, r, rn, rtype, src, rtag, c, st)) \
  X(Sendrecv_replace, (void *b, int n, MPI_Datatype t, int dest, int stag, int src, int rtag, MPI_Comm c, \
                       MPI_Status *st), (b, n, t, dest, stag, src, rtag, c, st)) \
  X(Probe, (int src, int tag, MPI_Comm c, MPI_Status *st), (src, tag, c, st)) \
  X(Mprobe, (int src, int tag, MPI_Comm c, MPI_Message *m, MPI_Status *st), (src, tag, c, m, st)) \
  X(Mrecv, (void *b, int n, MPI_Datatype t, MPI_Message *m, MPI_Status *st), (b, n, t, m, st)) \
  X(Wait, (MPI_Request *q, MPI_Status *st), (q, st)) \
  X(Waitall, (int n, MPI_Request q[], MPI_Status *st), (n, q, st)) \
  X(Waitany, (int n, MPI_Request q[], int *i, MPI_Status *st), (n, q, i, st)) \
  X(Waitsome, (int n, MPI_Request q[], int *outn, int i[], MPI_Status st[]), (n, q, outn, i, st)) \
  X(Win_fence, (int a, MPI_Win w), (a, w)) \
  X(Comm_split, (MPI_Comm c, int color, int key, MPI_Comm *out), (c, color, key, out)) \
  X(Comm_dup, (MPI_Comm c, MPI_Comm *out), (c, out)) \
  X(Comm_create, (MPI_Comm c, MPI_Group g, MPI_Comm *out), (c, g, out))

enum {
  MPN__CALL_NONE,   /* 0: not in MPI */
#define MPN__CALL_ID(name, params, args) MPN__CALL_##name,
  MPN__WAIT_CALLS(MPN__CALL_ID)
#undef MPN__CALL_ID
  MPN__CALL_FINALIZE,   /* MPI_Finalize: interposed in runtime/mpi_hooks.c, which marks it by hand */
  MPN__NCALLS
};
const char *mpn__call_name(unsigned id);   /* "MPI_Allreduce"; NULL for MPN__CALL_NONE or out of range */

#define MPN__WAIT_SLOTS 64   /* application threads followed at once; more are not followed */

/* One application thread's slot: `state` is written by that thread only
 * and read by the sampler, which alone owns `seen` and `since_ns`. */
typedef struct mpn__wait_slot {
  /* entries << 8 | the call's id (0: not in MPI). Entries count every call
   * the slot saw and are never reset (a reused slot's calls stay new): the
   * same word at two looks is the same call. */
  _Alignas(64) _Atomic uint64_t state;
  atomic_int used;                       /* a live thread owns it */
  atomic_int tid;
  uint64_t seen;                         /* sampler: state at the last look */
  int64_t since_ns;                      /* sampler: the first look that saw `seen` (CLOCK_MONOTONIC) */
} mpn__wait_slot;

/* This thread's slot: NULL until its first interposed call, then its slot,
 * or a permanently busy one where it is not followed (the library inert, the
 * table full). Initial-exec: one %fs-relative load on the hot path. */
extern __thread mpn__wait_slot *mpn__wait_mine __attribute__((tls_model("initial-exec")));
mpn__wait_slot *mpn__waits_adopt(void);   /* the first call of a thread: its slot, or the busy one */

/* The interposed call's entry: the slot to clear on exit, or NULL when not
 * followed. A call inside another (a tool behind us calling MPI) leaves the
 * outer call in place: that is the one the application made. */
static inline mpn__wait_slot *mpn__waits_enter(unsigned id)
{
  mpn__wait_slot *s = mpn__wait_mine;
  if (__builtin_expect(!s, 0))
    s = mpn__waits_adopt();
  uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
  if (st & 0xff)
    return NULL;
  atomic_store_explicit(&s->state, st + 0x100 + id, memory_order_relaxed);
  return s;
}

static inline void mpn__waits_leave(mpn__wait_slot *s)
{
  if (s)
    atomic_store_explicit(&s->state, atomic_load_explicit(&s->state, memory_order_relaxed) & ~(uint64_t)0xff,
                          memory_order_relaxed);
}

/* One application thread as the sampler last saw it. */
typedef struct mpn__wait_state {
  pid_t tid;          /* the thread (gettid) */
  const char *call;   /* "MPI_Allreduce" (static), or NULL: not in MPI */
  double waited_s;    /* in that call for at least this long (one sampling period less at worst); 0 when not in MPI */
} mpn__wait_state;

/* MPI_Init's thread (armed, Open MPI found): following starts, and that
 * thread (the one a program's main loop usually runs on) is known even
 * before its first blocking call. Before it every thread's calls only forward. */
void mpn__waits_start(void);
/* One look at every slot at `now_ns` (CLOCK_MONOTONIC). */
void mpn__waits_sample(int64_t now_ns);
/* The agent, every loop: a look when hang detection is on
 * (MPINOTIFY_HANG_TIMEOUT > 0); with MPINOTIFY_DEBUG, a "waits:" line every
 * timeout period saying what each thread does. */
void mpn__waits_tick(void);
/* A look now, then every followed application thread (at most `max` into
 * out, in slot order); returns how many there are (0 before MPI_Init). Any
 * thread but a signal handler. */
int mpn__waits_snapshot(mpn__wait_state *out, int max);
/* mpn_progress was called (any thread); and how long ago, in seconds (-1: never). */
void mpn__waits_progress(void);
double mpn__waits_progress_age(void);
/* 1 when hang detection is on and an application thread has waited in one
 * MPI call for MPINOTIFY_HANG_TIMEOUT seconds or more (a look now); *longest
 * (may be NULL) gets the longest waiter whenever one is in MPI. A rank
 * computing with nobody in MPI is never overdue. */
int mpn__hang_overdue(mpn__wait_state *longest);
/* The index of the longest waiter among n states, -1 when none is in MPI. */
int mpn__waits_longest(const mpn__wait_state *w, int n);

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
 * answer in time, -2 a channel stayed unreached (nobody left to hand it to), 1 this rank is a
 * successor now: send to *unreached, then done, then wait again. */
int mpn__election_wait(int64_t deadline_ns, uint64_t *unreached);
/* The next fatally failed rank of `rank`'s signature on another host (hand-off), or -1. */
int mpn__election_successor(int rank);

/* Hangs (runtime/hang.c): in a hang epoch every rank adds where its application is. */
typedef struct mpn__hang_rec {
  uint32_t call;        /* the MPI call its application thread waits in (MPN__CALL_*), 0: not in MPI */
  int32_t waited_s;     /* for that long */
  uint64_t stack;       /* that thread's stack (its application frames), hashed: equal stacks, one group */
  int32_t progress_s;   /* seconds since the last mpn_progress, -1 never */
  int32_t reserved;
} mpn__hang_rec;
#define MPN__TEXT_MAX 16384   /* a rank's stack as JSON, sent to the hang's reporter */
/* Once, before epochs run: what a rank adds to a hang epoch, and what it does after one (its part of the
 * message), also while it serves epochs from MPI_Finalize. */
void mpn__election_on_hang(void (*fill)(mpn__hang_rec *mine), void (*after)(void));
/* Rings and runs a hang epoch (`view`: asked from the shell, this rank collects); 1 when it completed. */
int mpn__election_hang(int64_t deadline_ns, int view);
int mpn__election_view_rank(void);             /* the rank that asked for the last one as a view, or -1 */
int mpn__election_take_hang(void);             /* 1 once after an epoch that was a hang epoch */
int mpn__election_hang_rec(int rank, mpn__hang_rec *h, mpn__proc *p);   /* 0: that rank gave none */
int mpn__election_size(void);
int mpn__election_send_text(int to, const char *text, int64_t deadline_ns);
void mpn__election_recv_texts(const int *from, int n, char **out, int64_t deadline_ns);
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
