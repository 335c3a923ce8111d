/* election.c - one reporter per unique failure, agreed through MPI.
 *
 * All of this runs on the agent thread of every rank, on a private duplicate
 * of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so it progresses while the
 * application threads sit blocked in MPI waiting for a crashed peer.
 *
 * Protocol, per epoch e (numbered identically on every rank):
 *  1. A rank with a new failure sends a doorbell (e, its wall-clock time) to
 *     every other rank. Every agent keeps one doorbell receive posted.
 *  2. Each rank contributes to epoch e a gathering window after the ringer
 *     rang (its own failure or a doorbell), so ranks that fail within the
 *     window land in the same epoch. A healthy agent hears the bell only at
 *     its next poll: it counts the window from the ring time, so a poll's
 *     delay is not added to every report (an implausible age, clocks that
 *     disagree, falls back to counting from the hearing).
 *  3. One MPI_Iallgather of a fixed record per rank: every rank learns every
 *     failure, so a signature reported once is never reported again, even
 *     after the reporting rank has died.
 *  4. For each new signature the lowest rank that hit it leads: it delivers,
 *     then tells every fatally failed rank of the epoch that it is done, so no
 *     crashed process exits (and makes mpirun kill the job) while a leader is
 *     still sending.
 *  5. Hand-off: a fatal leader whose node cannot reach the service (no name,
 *     no connection) says so in its "done" (the channels it could not reach),
 *     and its successor, the next fatally failed rank of the same signature on
 *     another host, sends to those channels; every waiting rank then waits for
 *     the successor too.
 * Every wait has a deadline. An epoch that cannot complete (a peer is already
 * dead) marks the election broken; callers then fall back to one report per
 * node.
 */
#include "mpi/mpi.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

mpn__mpi_state mpn__mpi;

enum { TAG_DOORBELL = 7301, TAG_DONE = 7302, TAG_STACK = 7303 };
enum { WIRE_EVENT = 1u, WIRE_FATAL = 2u, WIRE_HANG = 4u, WIRE_VIEW = 8u };
enum { BELL_FAILURE = 0, BELL_HANG = 1 };

typedef struct wire_rec {   /* what each rank contributes to an epoch */
  uint64_t signature;
  int64_t wall_ns;
  int32_t pid;
  int32_t signo;
  uint32_t flags;
  uint32_t reserved;
  mpn__hang_rec hang;   /* in a hang epoch (WIRE_HANG): where the application is */
  char host[MPN__HOST_MAX];
} wire_rec;

typedef struct waiter {
  int rank, heard;
} waiter;

static struct {
  MPI_Comm comm, fin_comm;
  int rank, size;
  int64_t next_epoch;
  int64_t bell_in[3], bell_out[3];   /* epoch, ringer's CLOCK_REALTIME ns, BELL_* */
  int pending_hang;           /* a bell for next_epoch asked where everyone is (a hang) */
  int cur_hang;               /* ... and one for the epoch in its window now */
  int last_hang, hang_taken;  /* the last epoch was a hang epoch; the runtime took it */
  int view_mine;              /* this rank rang it for a view of the job (mpinotify-send --stacks) */
  void (*hang_fill)(mpn__hang_rec *mine);
  void (*hang_after)(void);
  int64_t done_out[2], done_in[2];   /* epoch, the channels not reached (a mask; 0: delivered) */
  waiter *waits;              /* the deliverers a fatal rank waits for: leaders, successors */
  int nwaits;
  int undelivered;            /* a deliverer could not reach a channel and had nobody to hand it to */
  MPI_Request bell_req;
  int bell_posted;
  int64_t pending_since;      /* a doorbell for next_epoch arrived then (0: none) */
  MPI_Request *sends;         /* doorbells and done notices in flight */
  int nsends;
  wire_rec mine, *all;
  MPI_Request gather_req;
  uint64_t *reported;
  int nreported, capreported;
  int *leaders, nleaders;     /* of the last epoch */
  int *fatal, nfatal;
  int64_t last_epoch;
  int64_t gather_ns;          /* how long the last epoch's allgather took */
  int broken;
  char error[200];
} E;

int64_t mpn__election_gather_ns(void)
{
  return E.gather_ns;
}

const char *mpn__election_error(void)
{
  return E.error[0] ? E.error : "the election could not run";
}

static void set_broken(const char *why)
{
  if (!E.broken)
    snprintf(E.error, sizeof E.error, "%s", why);
  E.broken = 1;
  atomic_store(&mpn__mpi.mpi_ok, 0);
}

int mpn__mpi_setup(int provided)
{
  mpn__pmpi_table *P = &mpn__pmpi;
  P->Comm_rank(P->world, &E.rank);
  P->Comm_size(P->world, &E.size);
  mpn__self.rank = E.rank;
  mpn__self.world_size = E.size;
  if (P->Comm_dup(P->world, &E.comm) != 0 || P->Comm_dup(P->world, &E.fin_comm) != 0)
    return -1;
  /* A dead peer must never make the notifier abort the job. */
  P->Comm_set_errhandler(E.comm, P->errors_return);
  P->Comm_set_errhandler(E.fin_comm, P->errors_return);
  uint64_t token = ((uint64_t)mpn__self.pid << 32) ^ (uint64_t)mpn__wall_ns();
  P->Bcast(&token, (int)sizeof token, P->byte, 0, E.comm);
  mpn__mpi.job_token = token;
  E.all = calloc((size_t)E.size, sizeof *E.all);
  E.sends = calloc((size_t)E.size * 2, sizeof *E.sends);
  E.leaders = calloc((size_t)E.size, sizeof *E.leaders);
  E.fatal = calloc((size_t)E.size, sizeof *E.fatal);
  E.waits = calloc((size_t)E.size, sizeof *E.waits);
  if (!E.all || !E.sends || !E.leaders || !E.fatal || !E.waits)
    return -1;
  if (provided < MPI_THREAD_MULTIPLE) {
    snprintf(E.error, sizeof E.error,
             "MPI runs at %s, below MPI_THREAD_MULTIPLE (MPINOTIFY_MPI_THREAD=keep?): "
             "the ranks cannot elect a reporter", mpn__mpi_thread_level_name(provided));
    E.broken = 1;
    return 0;
  }
  atomic_store(&mpn__mpi.mpi_ok, 1);
  return 0;
}

int mpn__election_known(uint64_t sig);
void mpn__election_remember(uint64_t sig);

static int known(uint64_t sig)
{
  for (int i = 0; i < E.nreported; i++)
    if (E.reported[i] == sig)
      return 1;
  return 0;
}

static void remember(uint64_t sig)
{
  if (known(sig))
    return;
  if (E.nreported == E.capreported) {
    int cap = E.capreported ? E.capreported * 2 : 64;
    uint64_t *grown = realloc(E.reported, sizeof *grown * (size_t)cap);
    if (!grown)
      return;
    E.reported = grown;
    E.capreported = cap;
  }
  E.reported[E.nreported++] = sig;
}

static void post_bell(void)
{
  E.bell_posted = mpn__pmpi.Irecv(E.bell_in, (int)sizeof E.bell_in, mpn__pmpi.byte, MPI_ANY_SOURCE,
                                  TAG_DOORBELL, E.comm, &E.bell_req) == 0;
}

void mpn__election_start(void)
{
  if (E.size > 0 && !E.bell_posted)
    post_bell();
}

/* How long ago the bell rang, when the clocks plausibly agree: a bell is
 * heard within about one poll of its ringing, so an age beyond two polls
 * (or below zero) says the clocks differ, and the window then counts from
 * the hearing, as if the bell had just rung: a skewed clock can delay a
 * contribution by at most the poll, never skip the window. */
static int64_t bell_age(int64_t rang_wall_ns)
{
  int64_t age = mpn__wall_ns() - rang_wall_ns, window = (int64_t)mpn__cfg()->window_ms * 1000000;
  int64_t plausible = 2 * (int64_t)mpn__cfg()->poll_ms * 1000000 + 50000000;
  return age < 0 || age > plausible ? 0 : age > window ? window : age;
}

/* Receives every doorbell that has arrived; remembers one for the next epoch. */
static void check_bells(void)
{
  while (E.bell_posted) {
    int flag = 0;
    if (mpn__pmpi.Test(&E.bell_req, &flag, MPI_STATUS_IGNORE) != 0) {
      E.bell_posted = 0;
      set_broken("the doorbell receive failed");
      return;
    }
    if (!flag)
      return;
    if (E.bell_in[0] >= E.next_epoch && !E.pending_since) {
      int64_t since = mpn__now_ns() - bell_age(E.bell_in[1]);
      E.pending_since = since > 0 ? since : 1;   /* 0 means "no bell" */
    }
    if (E.bell_in[2] == BELL_HANG && E.bell_in[0] >= E.next_epoch)
      E.pending_hang = 1;
    else if (E.bell_in[2] == BELL_HANG && E.bell_in[0] == E.next_epoch - 1)
      E.cur_hang = 1;   /* the epoch whose window runs: a rank rang it for a hang too */
    post_bell();
  }
}

/* Completes what it can of the sends in flight; never waits. */
static void progress_sends(void)
{
  int live = 0;
  for (int i = 0; i < E.nsends; i++) {
    int flag = 0;
    if (mpn__pmpi.Test(&E.sends[i], &flag, MPI_STATUS_IGNORE) != 0 || !flag)
      E.sends[live++] = E.sends[i];
  }
  E.nsends = live;
}

/* Isends `count` int64s to each listed rank (to == NULL: to every rank but us). */
static void send_all(int64_t *buf, int count, int tag, const int *to, int n)
{
  for (int i = 0; i < n && E.nsends < E.size * 2; i++) {
    int dest = to ? to[i] : i;
    if (dest == E.rank)
      continue;
    if (mpn__pmpi.Isend(buf, (int)sizeof *buf * count, mpn__pmpi.byte, dest, tag, E.comm, &E.sends[E.nsends]) == 0)
      E.nsends++;
  }
}

static void ring_doorbells(int kind)
{
  E.bell_out[0] = E.next_epoch;
  E.bell_out[1] = mpn__wall_ns();
  E.bell_out[2] = kind;
  send_all(E.bell_out, 3, TAG_DOORBELL, NULL, E.size);
}

static void fill_mine(wire_rec *w, const mpn__event *ev)
{
  memset(w, 0, sizeof *w);
  w->pid = (int32_t)mpn__self.pid;
  mpn__strlcpy(w->host, mpn__self.host, sizeof w->host);
  if (ev) {
    w->signature = ev->signature;
    w->wall_ns = ev->wall_ns;
    w->signo = ev->signo;
    w->flags = WIRE_EVENT | (ev->fatal ? WIRE_FATAL : 0);
  }
}

/* Sleeps a little between MPI_Test calls: each one runs the progress engine
 * and a spinning agent would steal a core from the application. */
static void nap(int64_t started)
{
  mpn__sleep_ms(mpn__now_ns() - started < 20000000 ? 1 : 5);
}

/* Runs one epoch. `take` may capture a local failure that arrives during the
 * window (a healthy rank that crashes just now). Returns 0 when complete. */
static int run_epoch(const mpn__event **evp, const mpn__event *(*take)(void), int64_t heard_ns,
                     int64_t deadline)
{
  int64_t epoch = E.next_epoch++;
  E.pending_since = 0;
  E.cur_hang = E.pending_hang;
  E.pending_hang = 0;
  E.gather_ns = -1;   /* until this epoch's allgather completes */
  int64_t contribute_at = heard_ns + (int64_t)mpn__cfg()->window_ms * 1000000;
  while (mpn__now_ns() < contribute_at && mpn__now_ns() < deadline && !atomic_load(&mpn__mpi.stop)) {
    check_bells();
    progress_sends();
    if (!*evp && take)
      *evp = take();
    mpn__sleep_ms(2);
  }
  if (atomic_load(&mpn__mpi.stop)) {   /* the application is finalizing or exiting: MPI is no longer ours */
    set_broken("the process was finalizing or exiting");
    return -1;
  }
  /* Both buffers live in E: an epoch that times out stays posted and MPI
   * may still touch them. */
  fill_mine(&E.mine, *evp);
  if (E.cur_hang && E.hang_fill) {
    E.hang_fill(&E.mine.hang);
    E.mine.flags |= WIRE_HANG | (E.view_mine ? WIRE_VIEW : 0u);
  }
  if (mpn__pmpi.Iallgather(&E.mine, (int)sizeof E.mine, mpn__pmpi.byte, E.all, (int)sizeof E.mine,
                           mpn__pmpi.byte, E.comm, &E.gather_req) != 0) {
    set_broken("MPI_Iallgather on the election communicator failed");
    return -1;
  }
  int64_t started = mpn__now_ns();
  for (int flag = 0; !flag;) {
    if (mpn__pmpi.Test(&E.gather_req, &flag, MPI_STATUS_IGNORE) != 0) {
      set_broken("the election's MPI_Iallgather failed (a rank may have died)");
      return -1;
    }
    if (flag)
      break;
    if (mpn__now_ns() > deadline || atomic_load(&mpn__mpi.stop)) {
      char why[160];
      snprintf(why, sizeof why, "election epoch %lld did not complete in time (a rank may have died)",
               (long long)epoch);
      set_broken(why);
      return -1;
    }
    check_bells();
    progress_sends();
    nap(started);
  }
  E.last_epoch = epoch;
  E.gather_ns = mpn__now_ns() - started;
  E.last_hang = E.hang_taken = 0;
  for (int r = 0; r < E.size && !E.last_hang; r++)
    E.last_hang = (E.all[r].flags & WIRE_HANG) != 0;   /* every rank decides alike, from the records */
  return 0;
}

/* Leaders (lowest rank per new signature) and fatal ranks of the epoch; then
 * every signature of it counts as reported. */
static void tally(void)
{
  E.nleaders = E.nfatal = 0;
  uint64_t *fresh = calloc((size_t)E.size, sizeof *fresh);
  int nfresh = 0;
  for (int r = 0; r < E.size; r++) {
    const wire_rec *w = &E.all[r];
    if (!(w->flags & WIRE_EVENT))
      continue;
    if (w->flags & WIRE_FATAL)
      E.fatal[E.nfatal++] = r;
    if (known(w->signature))
      continue;
    int seen = 0;
    for (int i = 0; i < nfresh && !seen; i++)
      seen = fresh && fresh[i] == w->signature;
    if (!seen && fresh) {
      fresh[nfresh++] = w->signature;
      E.leaders[E.nleaders++] = r;
    }
  }
  for (int i = 0; i < nfresh; i++)
    remember(fresh[i]);
  free(fresh);
  E.nwaits = 0;
  E.undelivered = 0;
  for (int i = 0; i < E.nleaders; i++)
    if (E.leaders[i] != E.rank)
      E.waits[E.nwaits++] = (waiter){E.leaders[i], 0};
  /* Ranks that failed fatally exit once their leaders are done, and every
   * later epoch needs them: a new failure must not wait for one that can
   * never complete (mpirun's teardown would kill it first). */
  if (E.nfatal > 0) {
    char why[160];
    snprintf(why, sizeof why, "rank %d and %d other(s) died in an earlier failure; an election needs every rank",
             E.fatal[0], E.nfatal - 1);
    set_broken(why);   /* this epoch's done/wait phase still runs: it needs no new epoch */
  }
}

static void fill_outcome(const mpn__event *ev, mpn__outcome *out)
{
  memset(out, 0, sizeof *out);
  int lead = 0;
  for (int i = 0; i < E.nleaders; i++)
    lead |= E.leaders[i] == E.rank;
  out->known = !lead;
  out->leader = lead;
  for (int i = 0; ev && ev->fatal && i < E.nleaders; i++)
    out->wait_leaders += E.leaders[i] != E.rank;
  if (!ev)
    return;
  /* every rank of the failure gets the list: a successor reports with it (hand-off) */
  out->procs = calloc((size_t)E.size, sizeof *out->procs);
  out->first_wall_ns = ev->wall_ns;
  for (int r = 0; r < E.size && out->procs; r++) {
    const wire_rec *w = &E.all[r];
    if (!(w->flags & WIRE_EVENT) || w->signature != ev->signature)
      continue;
    mpn__proc *p = &out->procs[out->nprocs++];
    p->rank = r;
    p->pid = w->pid;
    mpn__strlcpy(p->host, w->host, sizeof p->host);
    if (w->wall_ns < out->first_wall_ns)
      out->first_wall_ns = w->wall_ns;
  }
}

int mpn__election_run(const mpn__event *ev, int64_t deadline, mpn__outcome *out)
{
  memset(out, 0, sizeof *out);
  int live = !E.broken && atomic_load(&mpn__mpi.mpi_ok) && atomic_load(&mpn__mpi.mpi_active);
  if (live)
    check_bells();
  /* Reported earlier in the job (learnt in any epoch, also after the
   * election broke): no message. Unless ranks wait for our contribution. */
  if (known(ev->signature) && !(live && E.pending_since)) {
    out->known = 1;
    return 1;
  }
  if (!live)
    return 0;
  int64_t heard = E.pending_since ? E.pending_since : mpn__now_ns();
  if (!E.pending_since)
    ring_doorbells(BELL_FAILURE);
  const mpn__event *evp = ev;
  if (run_epoch(&evp, NULL, heard, deadline) != 0)
    return 0;
  tally();
  fill_outcome(ev, out);
  return 1;
}

/* The healthy rank's side: join an epoch somebody rang for. */
int mpn__election_poll(const mpn__event *(*take)(void), const mpn__event **taken, mpn__outcome *out)
{
  *taken = NULL;
  memset(out, 0, sizeof *out);   /* an epoch joined without a local event fills nothing */
  if (E.broken || !atomic_load(&mpn__mpi.mpi_ok))
    return 0;
  check_bells();
  progress_sends();
  if (!E.pending_since)
    return 0;
  int64_t deadline = mpn__now_ns() + (int64_t)mpn__cfg()->timeout_ms * 1000000;
  const mpn__event *ev = NULL;
  if (run_epoch(&ev, take, E.pending_since, deadline) != 0)
    return *taken = ev, -1;
  tally();
  *taken = ev;
  if (ev)
    fill_outcome(ev, out);
  return 1;
}

/* The next fatally failed rank of `after`'s signature on another host than
 * `after`'s (that host could not reach the service), or -1. Every rank
 * computes the same from the epoch's records. */
int mpn__election_successor(int after)
{
  if (after < 0 || after >= E.size || !E.all)
    return -1;
  const wire_rec *a = &E.all[after];
  for (int r = after + 1; r < E.size; r++) {
    const wire_rec *w = &E.all[r];
    if ((w->flags & WIRE_FATAL) && w->signature == a->signature && strcmp(w->host, a->host) != 0)
      return r;
  }
  return -1;
}

static void add_wait(int rank)
{
  for (int i = 0; i < E.nwaits; i++)
    if (E.waits[i].rank == rank)
      return;
  if (E.nwaits < E.size)
    E.waits[E.nwaits++] = (waiter){rank, 0};
}

/* `unreached`: the channels this rank could not reach (0: delivered); when
 * it hands them off, this rank waits for its successor like the others. */
void mpn__election_done(int64_t deadline, uint64_t unreached)
{
  E.done_out[0] = E.last_epoch;
  E.done_out[1] = (int64_t)unreached;
  int next = unreached ? mpn__election_successor(E.rank) : -1;
  if (next >= 0)
    add_wait(next);
  else if (unreached)
    E.undelivered = 1;
  send_all(E.done_out, 2, TAG_DONE, E.fatal, E.nfatal);
  while (E.nsends && mpn__now_ns() < deadline) {
    progress_sends();
    mpn__sleep_ms(1);
  }
}

/* One deliverer's "done" into E.done_in; 0 when it came in time. */
/* 0 when `req` completed by the deadline (a nap between tests), -1 when it failed or is still on. */
static int complete(MPI_Request *req, int64_t deadline)
{
  for (int flag = 0; mpn__now_ns() < deadline; mpn__sleep_ms(2))
    if (mpn__pmpi.Test(req, &flag, MPI_STATUS_IGNORE) != 0 || flag)
      return flag ? 0 : -1;
  return -1;
}

static int hear_done(int from, int64_t deadline)
{
  MPI_Request req;
  if (mpn__pmpi.Irecv(E.done_in, (int)sizeof E.done_in, mpn__pmpi.byte, from, TAG_DONE, E.comm, &req) != 0)
    return -1;
  return complete(&req, deadline);
}

/* A fatally failed rank waits until every leader of its epoch (and every
 * successor a leader handed its report to) has delivered, since its exit
 * makes the launcher kill the job, deliverers included. 1: this rank is a
 * successor now, *unreached the channels to send to; it calls
 * mpn__election_done and then this again. */
int mpn__election_wait(int64_t deadline, uint64_t *unreached)
{
  int missed = 0;
  for (int i = 0; i < E.nwaits; i++) {
    if (E.waits[i].heard)
      continue;
    if (hear_done(E.waits[i].rank, deadline) != 0) {
      missed++;
      continue;
    }
    E.waits[i].heard = 1;
    if (!E.done_in[1])
      continue;
    int next = mpn__election_successor(E.waits[i].rank);
    if (next == E.rank) {
      *unreached = (uint64_t)E.done_in[1];
      return 1;
    }
    if (next >= 0)
      add_wait(next);
    else
      E.undelivered = 1;
  }
  return missed ? -1 : E.undelivered ? -2 : 0;
}

/* No request of ours may outlive the agent's use of MPI. */
static void cancel_bell(void)
{
  if (!E.bell_posted)
    return;
  int flag = 0;
  mpn__pmpi.Cancel(&E.bell_req);
  for (int64_t end = mpn__now_ns() + 200000000; !flag && mpn__now_ns() < end; mpn__sleep_ms(1))
    if (mpn__pmpi.Test(&E.bell_req, &flag, MPI_STATUS_IGNORE) != 0)
      break;
  E.bell_posted = 0;
}

/* Every rank enters MPI_Finalize: one last barrier on a separate communicator
 * (so it never mismatches an epoch), serving other ranks' epochs until
 * everyone is there, then the doorbell receive is cancelled. A local failure
 * meanwhile (another thread) stays queued for the agent, which reports it
 * per node once this returns. */
void mpn__election_finalize(int64_t deadline)
{
  MPI_Request req;
  int barrier_ok = E.size > 0 && mpn__pmpi.Ibarrier(E.fin_comm, &req) == 0;
  for (int flag = 0; barrier_ok && !flag;) {
    if (mpn__pmpi.Test(&req, &flag, MPI_STATUS_IGNORE) != 0 || mpn__now_ns() > deadline) {
      barrier_ok = 0;
      break;
    }
    const mpn__event *ev;
    mpn__outcome out;
    if (!E.broken && mpn__election_poll(NULL, &ev, &out) > 0)
      free(out.procs);
    if (E.hang_after)   /* a rank that finished early is where the others' hang is: it says so */
      E.hang_after();
    mpn__sleep_ms(2);
  }
  cancel_bell();
  if (barrier_ok) {
    mpn__pmpi.Comm_free(&E.comm);
    mpn__pmpi.Comm_free(&E.fin_comm);
  }
  set_broken("MPI is finalized");
}

/* MPI is still up (exit without MPI_Finalize, or a finalize after the
 * election broke): withdraw the doorbell receive, then never touch MPI. */
void mpn__election_abandon(const char *why)
{
  cancel_bell();
  set_broken(why);
}

/* ---- hangs: where every rank is (runtime/hang.c) --------------------------- */

void mpn__election_on_hang(void (*fill)(mpn__hang_rec *mine), void (*after)(void))
{
  E.hang_fill = fill;
  E.hang_after = after;
}

/* Rings a hang epoch and runs it; 1 when it completed (then take it). */
int mpn__election_hang(int64_t deadline, int view)
{
  if (E.broken || !atomic_load(&mpn__mpi.mpi_ok) || !atomic_load(&mpn__mpi.mpi_active))
    return 0;
  check_bells();
  int64_t heard = E.pending_since ? E.pending_since : mpn__now_ns();
  ring_doorbells(BELL_HANG);   /* also when joining a pending epoch: every rank must add where it is */
  E.pending_hang = 1;
  E.view_mine = view;
  const mpn__event *none = NULL;
  int rc = run_epoch(&none, NULL, heard, deadline);
  E.view_mine = 0;
  if (rc != 0)
    return 0;
  tally();
  return 1;
}

int mpn__election_take_hang(void)
{
  int take = E.last_hang && !E.hang_taken;
  E.hang_taken = 1;
  return take;
}

/* Rank r's contribution to the last epoch; 0 when it gave no hang state. */
int mpn__election_hang_rec(int r, mpn__hang_rec *h, mpn__proc *p)
{
  if (r < 0 || r >= E.size || !E.all || !(E.all[r].flags & WIRE_HANG))
    return 0;
  *h = E.all[r].hang;
  p->rank = r;
  p->pid = E.all[r].pid;
  mpn__strlcpy(p->host, E.all[r].host, sizeof p->host);
  return 1;
}

/* The rank that asked for the last hang epoch as a view, or -1 (a hang). */
int mpn__election_view_rank(void)
{
  for (int r = 0; E.all && r < E.size; r++)
    if (E.all[r].flags & WIRE_VIEW)
      return r;
  return -1;
}

int mpn__election_size(void)
{
  return E.size;
}

/* The tag of the last epoch's texts: a text sent for an earlier epoch and
 * never received (its reporter gave up) cannot be taken for this one's. */
static int text_tag(void)
{
  return TAG_STACK + 1 + (int)(E.last_epoch % 4096);
}

/* Sends `text` (a stack, as JSON) to rank `to`; waits until it left or the
 * deadline. The buffer is our own copy: on a timeout MPI may still read it
 * (Open MPI cannot cancel a send), so it is then left to MPI, not freed. */
int mpn__election_send_text(int to, const char *text, int64_t deadline)
{
  MPI_Request req;
  int n = (int)strlen(text) + 1;
  char *copy = n <= MPN__TEXT_MAX ? strdup(text) : NULL;
  if (!copy || mpn__pmpi.Isend(copy, n, mpn__pmpi.byte, to, text_tag(), E.comm, &req) != 0) {
    free(copy);
    return -1;
  }
  if (complete(&req, deadline) != 0)
    return -1;   /* copy: MPI's now */
  free(copy);
  return 0;
}

/* The texts of ranks from[0..n-1] into out[i] (malloc'd; NULL for a rank not heard by the deadline). */
void mpn__election_recv_texts(const int *from, int n, char **out, int64_t deadline)
{
  MPI_Request *req = calloc((size_t)(n ? n : 1), sizeof *req);
  int *done = calloc((size_t)(n ? n : 1), sizeof *done);
  for (int i = 0; i < n; i++) {
    out[i] = req && done ? malloc(MPN__TEXT_MAX) : NULL;
    if (!out[i] || mpn__pmpi.Irecv(out[i], MPN__TEXT_MAX, mpn__pmpi.byte, from[i], text_tag(), E.comm, &req[i]) != 0)
      done[i] = -1;
  }
  for (int left = n; left > 0 && mpn__now_ns() < deadline; mpn__sleep_ms(2))
    for (int i = 0; i < n; i++) {
      int flag = 0;
      if (done[i] || mpn__pmpi.Test(&req[i], &flag, MPI_STATUS_IGNORE) != 0 || !flag)
        continue;
      done[i] = 1;
      left--;
    }
  for (int i = 0; i < n; i++)
    if (done[i] != 1) {   /* a buffer MPI may still write: kept (leaked), not freed */
      if (done[i] == 0)
        mpn__pmpi.Cancel(&req[i]);
      out[i] = NULL;
    } else
      out[i][MPN__TEXT_MAX - 1] = '\0';
  free(req);
  free(done);
}

/* Without an election (a world of one, the per-node fallback) a signature
 * is still reported once per process. */
int mpn__election_known(uint64_t sig)
{
  return known(sig);
}

void mpn__election_remember(uint64_t sig)
{
  remember(sig);
}
