/* runtime.h - the top layer of a rank (docs/internals/runtime.md): arming
 * (constructor, mpn_init, MPI_Init), the agent thread that turns failures
 * into reports, events from every source (signals, exits, MPI errors,
 * uncaught C++ and Python exceptions, alerts, progress), the interposed MPI
 * entry points, and the rank's notices to mpinotify-run. Uses every layer
 * below; nothing below calls it. */
#ifndef MPN_RUNTIME_H
#define MPN_RUNTIME_H

#include "deliver/deliver.h"
#include "mpi/mpi.h"

/* ---- init.c: the process's runtime state ------------------------------- */
typedef struct mpn__state {
  atomic_int mpi_finalized;  /* the application called MPI_Finalize */
  int launched;              /* armed before MPI_Init in a process a launcher started */
  int thread_level;          /* provided MPI thread level, -1 before MPI */
  int ack_fd[2];             /* agent -> application thread (finalize, exit) */
} mpn__state;
extern mpn__state mpn__g;

int mpn__activate(void);
void mpn__config_ensure(void);       /* load the configuration once, when first needed */
void mpn__config_report(void);       /* print its problems now (rank 0 only), if not yet */
void mpn__config_reload(void);       /* a channel kind was registered: parse again */
void mpn__on_mpi_initialized(int provided);
void mpn__on_mpi_finalize(void);
const char *mpn__thread_level_name(void);   /* NULL before MPI_Init */

/* ---- hang.c: hangs, on the agent thread ------------------------------------ */
void mpn__hang_setup(void);        /* after MPI_Init, when MPINOTIFY_HANG_TIMEOUT > 0 */
void mpn__hang_tick(void);         /* every loop: ring for an overdue wait; the follow-up on recovery */
void mpn__hang_after_epoch(void);  /* after any epoch: the grouping, and the message when this rank reports */
void mpn__hang_view_path(int request, char *out, size_t cap);   /* where a view asked from the shell is written */

/* ---- agent.c ------------------------------------------------------------- */
int mpn__agent_start(void);
long mpn__finalize_wait_ms(void);    /* how long MPI_Finalize serves the others' epochs (agent) */
/* A report of this rank alone for `ev` (the job's facts from the configuration); *self is its process. */
void mpn__report_base(mpn__report *r, const mpn__event *ev, mpn__proc *self);
void mpn__agent_wake(char what);     /* 'm': MPI ready; 'f': finalize; 'x': exit */
int mpn__agent_wait_ack(long timeout_ms);
/* The process is ending MPI (exit without MPI_Finalize, MPI_Abort): the agent
 * stops calling MPI, and says so (bounded, 0.5 s). Application thread. */
void mpn__agent_leave_mpi(void);

/* ---- events.c: failures other than a signal, from any thread but a handler */
mpn__event *mpn__event_new(const char *kind, const char *severity);   /* time set, extra = {} */
/* The application's own text (an exception's message, a traceback's code) as
 * a message may carry it: secrets masked (mpn_mask_text with the
 * configuration's secrets); JSON null for NULL. Not in a signal handler. */
struct json_t *mpn__jmasked(const char *s);
/* Python frames ({"file", "line", "function", "code"}): each source line masked in place. */
void mpn__mask_code(struct json_t *frames);
void mpn__event_free(mpn__event *ev);
/* The signature: kind, the given parts (NULL entries skipped) and, when
 * `site`, the top frames (module + offset, as for crashes). */
void mpn__event_sign(mpn__event *ev, const char *const *parts, int nparts, int site);
/* Hands the event to the agent, which takes ownership. wait_ms > 0: returns
 * once it has been handled (elected, delivered) or after wait_ms; for a
 * process about to end (exit, abort, terminate). MPN_E_NOT_INITIALIZED when
 * the library is not armed. Never call from a signal handler. */
mpn_code mpn__event_submit(mpn__event *ev, long wait_ms);
/* The agent's side: the next queued event, or NULL; and its completion. */
mpn__event *mpn__event_take(void);
void mpn__event_done(mpn__event *ev);
/* Set when a fatal event was reported (terminate, abort): the SIGABRT that
 * follows is the same failure and is only chained, never reported again. */
extern atomic_int mpn__fatal_reported;

/* ---- cxx.c, python.c ----------------------------------------------------- */
void mpn__cxx_setup(void);           /* C++ process: report uncaught exceptions */
void mpn__python_boot(void);         /* constructor: the hook's folder on PYTHONPATH */
void mpn__python_mark_rank(void);    /* MPI_Init: this process's children are not ranks */

/* ---- mpi_hooks.c, mpi_waits.c: the interposed MPI entry points ------------ */
/* No loaded library defines the MPI function `name`: said once per process
 * (a warning, and the launcher hears the rank is unarmed). */
void mpn__mpi_missing(const char *name);

/* ---- mpi_errors.c: MPI errors and MPI_Abort (mpi_hooks.c holds the entry points) */
void mpn__errors_setup(void);   /* after MPI_Init: our error handler on MPI_COMM_WORLD and MPI_COMM_SELF */
int mpn__errors_abort(MPI_Comm comm, int code);
int mpn__errors_set(MPI_Comm comm, MPI_Errhandler eh);
int mpn__errors_get(MPI_Comm comm, MPI_Errhandler *eh);
int mpn__errors_create(MPI_Comm_errhandler_function *fn, MPI_Errhandler *eh);

/* ---- launcher_notices.c: the rank's notices to mpinotify-run ------------- */
/* Through its relay (none without MPINOTIFY_RELAY_ADDR); bounded, best
 * effort. hello: the library is armed (MPI_Init); unarmed: MPI_Init was
 * called but the library could not arm (`why`: one line, no secrets) or is
 * disabled; bye: MPI_Finalize; report: a message this rank delivered (called
 * by the reporter after delivering, before telling others "done"). */
void mpn__launcher_hello(void);
/* From the constructor of a launcher's rank (`rank` from its environment):
 * "loaded", sent by a detached grandchild so that the program's start never
 * waits; the launcher then counts a rank slow to reach MPI_Init as starting. */
void mpn__launcher_loaded(int rank);
void mpn__launcher_unarmed(const char *why);
void mpn__launcher_bye(void);
/* A non-zero exit after MPI_Finalize, which no rank reports: the launcher counts it (notice "exit"). */
void mpn__launcher_exit(int status);
void mpn__launcher_report(const mpn__report *r);
/* Installs the SIGTERM hook when under mpinotify-run (after MPI_Init armed the rank). */
void mpn__launcher_arm_term(void);
/* From the agent, for that hook: "term", bounded (TERM_NOTICE_MS). */
void mpn__launcher_term(pid_t sender);
/* Without an election: asks the launcher's relay whether this rank reports
 * the signature (answers within `deadline_ns`, CLOCK_MONOTONIC). */
enum { MPN__CLAIM_NO_ANSWER = -1, MPN__CLAIM_MINE = 1, MPN__CLAIM_TAKEN = 0, MPN__CLAIM_REPORTED = 2 };
int mpn__launcher_claim(uint64_t signature, int64_t deadline_ns);
/* Waits (bounded) until the claimer's report of the signature is out. */
void mpn__launcher_wait_reported(uint64_t signature, int64_t deadline_ns);

#endif
