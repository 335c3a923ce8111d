/* agent.c - the thread that does everything the signal handler must not:
 * unwinding and symbolising, the election, delivery. It is started when the
 * library is armed, so no thread is ever created in a handler, and it blocks
 * every asynchronous signal so the process's signals go to the application. */
#include "runtime/runtime.h"

#include <jansson.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SEND_MARGIN_NS 150000000LL   /* the handler still has to chain and exit */
#define OUTPUT_WAIT_MS 100           /* for the output copier to store what the rank wrote last */
#define OUTPUT_LINE_BYTES 400

enum { CMD_MPI = 1, CMD_FINALIZE = 2, CMD_EXIT = 4 };

static int commands;
static int crash_pending;
static int term_pending;
static int64_t ending_since;   /* when MPI_Finalize or exit asked the agent to leave MPI */
static uint64_t dropped;       /* notices queued too late to be reported */
static mpn__event local_event;   /* static: a backtrace is too big for a stack */
/* Where a crash's time went (CLOCK_MONOTONIC), for the debug "timing:" line
 * that tests/bench/run_bench.py reads: a user asking "why did the message
 * take 2 s" gets the answer from MPINOTIFY_DEBUG=1. */
static struct { int64_t fault, agent, unwound, signed_, elect_from, elected, delivered; } tm;

/* Reads the wake pipe; `timeout_ms` 0 only peeks. */
static void read_wake(int timeout_ms)
{
  struct pollfd p = {mpn__crash.wake_fd[0], POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0)
    return;
  char buf[256];
  ssize_t n;
  /* All of it: a crash's 'c' must not wait behind a burst of events' 'e'. */
  while ((n = read(mpn__crash.wake_fd[0], buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      switch (buf[i]) {
      case 'c': crash_pending = 1; break;
      case 't': term_pending = 1; break;
      case 'e': break;   /* events are in their own queue (events.c) */
      case 'v': break;   /* a view asked from the shell: hang.c takes it (peek.c) */
      case 'm': commands |= CMD_MPI; break;
      case 'f': commands |= CMD_FINALIZE; break;
      case 'x': commands |= CMD_EXIT; break;
      }
    }
  }
  if ((commands & (CMD_FINALIZE | CMD_EXIT)) && !ending_since)
    ending_since = mpn__now_ns();
}

static void ack(void)
{
  char c = 'a';
  ssize_t w = write(mpn__g.ack_fd[1], &c, 1);
  (void)w;
}

/* A crash in a Python thread: the Python function that ran tells the site
 * apart where the native frames are the interpreter's and ctypes'. */
static void add_python_frames(mpn__event *ev, void *tstate)
{
  json_t *frames = mpn__python_traceback(tstate);
  size_t n = json_array_size(frames);
  if (!n)
    return;
  json_t *top = json_array_get(frames, n - 1);
  const char *file = json_string_value(json_object_get(top, "file"));
  const char *base = file && strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  ev->signature = mpn__hash_str(mpn__hash_str(ev->signature, base), json_string_value(json_object_get(top, "function")));
  mpn__mask_code(frames);
  ev->extra = json_pack("{s:o}", "python_traceback", frames);
}

static void capture(mpn__event *ev)
{
  mpn__crash_slot *s = &mpn__crash.slot;
  memset(&tm, 0, sizeof tm);
  tm.fault = s->mono_ns;
  tm.agent = mpn__now_ns();
  json_decref(ev->extra);
  memset(ev, 0, sizeof *ev);
  ev->kind = "crash";
  ev->severity = "critical";
  mpn__strlcpy(ev->headline, mpn__signal_name(s->signo), sizeof ev->headline);
  ev->signo = s->signo;
  ev->fault_addr = s->fault_addr;
  if (s->si_code <= 0 && s->info.si_pid != mpn__self.pid) {   /* kill(1), a batch system: not a fault */
    ev->sent_by_pid = s->info.si_pid;   /* si_addr shares its storage: it is no address */
    ev->fault_addr = 0;
  }
  ev->wall_ns = s->wall_ns;
  ev->mono_ns = s->mono_ns;
  ev->fatal = 1;
  int n = mpn__unwind_frames(&s->uc, ev->frames, MPN__MAX_FRAMES);
  if (n == 0) {   /* no libunwind: the handler's raw frames, or the faulting pc */
    for (; n < s->nraw; n++) {
      ev->frames[n].ip = s->raw[n];
      ev->frames[n].call_site = n > 0;
    }
    if (n == 0)
      ev->frames[n++].ip = (uintptr_t)s->uc.uc_mcontext.gregs[REG_RIP];
    for (int i = 0; i < n; i++)
      mpn__symbolize(&ev->frames[i]);
  }
  ev->nframes = n;
  tm.unwound = mpn__now_ns();
  /* A stack overflow faults wherever the stack ran out (a call's push, a
   * store into the new frame), which differs between processes of the same
   * bug: its signature starts at the caller. */
  uintptr_t sp = (uintptr_t)s->uc.uc_mcontext.gregs[REG_RSP];
  int overflow = s->signo == SIGSEGV && n > 1 && s->fault_addr <= sp + 4096 && s->fault_addr + 65536 >= sp;
  ev->signature = mpn__signature(ev->signo, ev->frames + overflow, n - overflow);
  add_python_frames(ev, s->py_tstate);
  tm.signed_ = mpn__now_ns();
}

static double ms_between(int64_t from, int64_t to)
{
  return from && to ? (double)(to - from) / 1e6 : -1.0;
}

/* One line per crash with MPINOTIFY_DEBUG=1; -1 marks a stage this rank did
 * not run or that failed (a non-leader delivers nothing; a crash that came
 * while this rank was joining another's epoch was elected there, untimed). */
static void log_timing(void)
{
  int64_t gather = mpn__election_gather_ns();
  mpn__log_debug("timing: capture %.3f ms, unwind %.3f ms, signature %.3f ms, election %.3f ms "
                 "(allgather %.3f ms, window %ld ms), delivery %.3f ms",
                 ms_between(tm.fault, tm.agent), ms_between(tm.agent, tm.unwound), ms_between(tm.unwound, tm.signed_),
                 ms_between(tm.elect_from, tm.elected), gather < 0 ? -1.0 : (double)gather / 1e6,
                 (long)mpn__cfg()->window_ms, ms_between(tm.elected ? tm.elected : tm.signed_, tm.delivered));
}

static const mpn__event *take_crash(void)
{
  read_wake(0);
  if (!crash_pending)
    return NULL;
  crash_pending = 0;
  capture(&local_event);
  return &local_event;
}

/* A local failure to contribute to an epoch: a crash first, else a queued event. */
static const mpn__event *take_local(void)
{
  const mpn__event *ev = take_crash();
  return ev ? ev : mpn__event_take();
}

void mpn__report_base(mpn__report *r, const mpn__event *ev, mpn__proc *self)
{
  memset(r, 0, sizeof *r);
  self->rank = mpn__self.rank < 0 ? 0 : mpn__self.rank;
  self->pid = (int)mpn__self.pid;
  mpn__strlcpy(self->host, mpn__self.host, sizeof self->host);
  r->event = ev;
  r->first_wall_ns = ev->wall_ns;
  r->leader = *self;
  r->procs = self;
  r->nprocs = 1;
  r->world_size = mpn__self.world_size;
  r->election = "ok";
  r->job_name = mpn__cfg()->job_name;
  r->job_command = mpn__cfg()->job_command;
  r->slurm_job_id = mpn__cfg()->slurm_job_id;
  r->slurm_job_name = mpn__cfg()->slurm_job_name;
  r->slurm_step = mpn__cfg()->slurm_step;
  r->thread_level = mpn__thread_level_name();
}

/* The reporting rank's last lines (capture/output.c) as its reports carry
 * them: secrets masked as in all output, each line at most 400 bytes (cut
 * after masking, so no part of a secret is left). NULL without a ring. */
static json_t *rank_output(void)
{
  int lines = mpn__cfg()->rank_output_lines;
  char *text = lines > 0 ? mpn__output_text(lines, OUTPUT_WAIT_MS) : NULL;
  if (!text)
    return NULL;
  char **secrets = mpn__config_secrets(mpn__cfg());
  char *masked = mpn_mask_text(text, (const char *const *)secrets);
  mpn__config_secrets_free(secrets);
  free(text);
  json_t *a = json_array();
  for (const char *p = masked; p && *p;) {
    size_t n = strcspn(p, "\n"), k = n < OUTPUT_LINE_BYTES ? n : OUTPUT_LINE_BYTES;
    while (k < n && k && ((unsigned char)p[k] & 0xc0) == 0x80)
      k--;   /* not inside a character */
    json_array_append_new(a, json_stringn(p, k));
    p += n + (p[n] == '\n');
  }
  free(masked);
  return a;
}

/* Handles the local failure; `pre` is its election outcome when the failure
 * arrived while this rank was already in an epoch. Returns 1 if nothing was
 * lost (delivered, or somebody else's to deliver). */
/* Notices leave the agent at once: the engine delivers them (or spools
 * them) while the agent runs the next election. A fatal report is waited
 * for: the process must live until it is out. */
/* File, line and inlined calls (capture/lines.c), only for a report that is
 * sent: within MPINOTIFY_SYMBOLIZE_MS and half of what is left before
 * send_by, the other half being delivery's. Later, frames as they are. */
static void add_lines(const mpn__event *ev, mpn__report *r, int64_t send_by)
{
  long ms = mpn__cfg()->symbolize_ms;
  if (r->frames || ms <= 0 || ev->nframes <= 0)
    return;
  mpn__frame *shown = malloc(sizeof *shown * MPN__MAX_FRAMES);
  if (!shown)
    return;
  int64_t now = mpn__now_ns(), by = now + (int64_t)ms * 1000000, half = now + (send_by - now) / 2;
  r->nframes = mpn__lines_resolve(ev->frames, ev->nframes, shown, MPN__MAX_FRAMES, by < half ? by : half);
  r->frames = shown;
}

static int send_report(const mpn__event *ev, mpn__report *r, int64_t send_by)
{
  add_lines(ev, r, send_by);
  if (!r->rank_output)
    r->rank_output = rank_output();   /* the reporter's own words; mpn__launcher_report sends them too */
  return ev->fatal ? mpn__deliver(r, send_by) > 0 : mpn__deliver_async(r, send_by);
}

static const char *no_election_why(int elect, int by_launcher)
{
  if (mpn__g.thread_level < 0 && !mpn__mpi_loaded())
    return by_launcher ? "MPI is not used by this process: one report per job through mpinotify-run"
                       : "MPI is not used by this process: one report per node";
  if (mpn__g.thread_level < 0)
    return "the failure came before MPI_Init";
  return elect ? mpn__election_error() : "MPI_Finalize came before an election could run";
}

/* MPI cannot (or can no longer) elect: mpinotify-run's relay decides who
 * reports, across nodes; without an answer from it, the node's claim files
 * do (one report per node). A fatal rank that is not the reporter stays
 * alive until the report is out: its exit would make the launcher end the
 * job, the reporter included. */
static int without_election(const mpn__event *ev, mpn__report *r, int elect, int64_t send_by, int64_t budget_end)
{
  int claim = mpn__launcher_claim(ev->signature, send_by);
  int mine = claim == MPN__CLAIM_MINE || (claim == MPN__CLAIM_NO_ANSWER && mpn__fallback_claim(ev->signature));
  if (!mine) {
    if (ev->fatal && claim == MPN__CLAIM_TAKEN)
      mpn__launcher_wait_reported(ev->signature, budget_end - 20000000);
    else if (ev->fatal && claim == MPN__CLAIM_NO_ANSWER)
      mpn__fallback_wait(ev->signature, budget_end - 20000000);
    mpn__election_remember(ev->signature);
    return 1;   /* somebody else's to deliver */
  }
  mpn__election_remember(ev->signature);
  /* the relay's claims make one report per job, as an election would: not a failure */
  r->election = claim == MPN__CLAIM_MINE ? "launcher" : "failed";
  r->election_error = claim == MPN__CLAIM_MINE ? NULL : no_election_why(elect, 0);
  int ok = send_report(ev, r, send_by);
  mpn__launcher_report(r);
  if (claim != MPN__CLAIM_MINE)
    mpn__fallback_release();
  return ok;
}

/* Delivers as the failure's leader (or a successor: the channels in `only`).
 * A fatal leader whose failure also hit a rank on another host gives itself
 * 40 % of what is left when it has no route to a channel (no relay to carry
 * it): the rest is its successor's (mpi/election.c, step 5). */
static char *handed;   /* spooled copies of what this rank handed to a successor, one path per line */

/* The successors delivered (or not): their copies go, or stay for mpinotify-send --flush. */
static void settle_handed(int delivered)
{
  for (char *save = NULL, *p = handed ? strtok_r(handed, "\n", &save) : NULL; p; p = strtok_r(NULL, "\n", &save))
    if (delivered)
      unlink(p);
    else
      mpn__log_error("the report this rank handed on may not have arrived; its copy stays in %s", p);
  free(handed);
  handed = NULL;
}

static void keep_handed(char *kept)
{
  if (!kept)
    return;
  size_t have = handed ? strlen(handed) : 0;
  char *grown = realloc(handed, have + strlen(kept) + 1);
  if (grown) {
    strcpy(grown + have, kept);
    handed = grown;
  }
  free(kept);
}

static int lead(const mpn__event *ev, mpn__report *r, int64_t send_by, uint64_t only, uint64_t *unreached)
{
  *unreached = 0;
  add_lines(ev, r, send_by);
  if (!r->rank_output)
    r->rank_output = rank_output();
  int next = ev->fatal && !mpn__cfg()->relay_addr ? mpn__election_successor(mpn__self.rank) : -1;
  if (!ev->fatal)
    return mpn__deliver_async(r, send_by);
  if (next < 0)
    return only == ~0ull ? mpn__deliver(r, send_by) > 0 : mpn__deliver_some(r, send_by, only, 0, unreached, NULL) > 0;
  int64_t now = mpn__now_ns();
  char *kept = NULL;
  int ok = mpn__deliver_some(r, now + (send_by - now) * 2 / 5, only, 1, unreached, &kept) > 0;
  keep_handed(kept);
  const char *host = "another host";
  for (int i = 0; i < r->nprocs; i++)
    host = r->procs[i].rank == next ? r->procs[i].host : host;
  if (*unreached)
    mpn__log_error("rank %d on %s, next in line for this failure, sends what this node could not reach", next, host);
  return ok;
}

/* A fatal rank waits for its failure's deliverers before it may exit; when
 * one could not reach a channel and this rank is next in line, it sends. */
static int wait_deliverers(const mpn__event *ev, mpn__report *r, int64_t send_by, int64_t budget_end)
{
  int ok = 1, rc;
  uint64_t only = 0;
  while ((rc = mpn__election_wait(budget_end - 20000000, &only)) == 1) {
    uint64_t unreached = 0;
    ok = lead(ev, r, send_by, only, &unreached);
    mpn__election_done(budget_end - 50000000, unreached);
  }
  settle_handed(rc == 0);
  return ok;
}

static int handle(const mpn__event *ev, mpn__outcome *pre, int elect)
{
  /* A fatal event's budget runs from the fault; a queued notice's from now. */
  int64_t start = ev->fatal ? ev->mono_ns : mpn__now_ns();
  int64_t budget_end = start + (int64_t)mpn__cfg()->timeout_ms * 1000000;
  int64_t send_by = budget_end - SEND_MARGIN_NS;
  mpn__config_report();   /* a program that failed before MPI_Init still hears about them */
  mpn__proc self;
  mpn__report r;
  mpn__report_base(&r, ev, &self);
  mpn__outcome out;
  if (pre && ev == &local_event)
    tm.elected = mpn__now_ns();   /* elected before we got here: delivery counts from now */
  if (!pre && elect && mpn__g.thread_level >= 0) {   /* MPI was initialised: ask the election */
    int64_t window = (int64_t)mpn__cfg()->window_ms * 1000000;
    int64_t elect_by = start + window + (budget_end - start - window) / 2;
    tm.elect_from = mpn__now_ns();
    if (mpn__election_run(ev, elect_by, &out) == 1)
      pre = &out;
    tm.elected = mpn__now_ns();
  }
  int ok = 1;
  if (pre) {
    if (pre->procs) {   /* NULL when out of memory: still report, naming this rank alone */
      r.procs = pre->procs;
      r.nprocs = pre->nprocs;
      r.first_wall_ns = pre->first_wall_ns;
    }
    uint64_t unreached = 0;
    if (pre->leader) {
      ok = lead(ev, &r, send_by, ~0ull, &unreached);
      tm.delivered = ev == &local_event && ok ? mpn__now_ns() : tm.delivered;
      mpn__launcher_report(&r);
      mpn__election_done(budget_end - 50000000, unreached);
    }
    if (pre->wait_leaders || unreached)
      ok = wait_deliverers(ev, &r, send_by, budget_end) && ok;
    free(pre->procs);
    pre->procs = NULL;
  } else if (mpn__election_known(ev->signature)) {
    ok = 1;   /* reported before in this process, or learnt from an election */
  } else if (mpn__g.thread_level < 0 && !mpn__g.launched) {
    mpn__election_remember(ev->signature);
    ok = send_report(ev, &r, send_by);   /* never called MPI: a world of one */
  } else {
    ok = without_election(ev, &r, elect, send_by, budget_end);
  }
  json_decref(r.rank_output);
  free((void *)r.frames);
  mpn__hang_after_epoch();   /* the epoch this ran may have been a hang's too: before the next one replaces it */
  return ok;
}

static void on_crash(const mpn__event *ev, mpn__outcome *pre)
{
  /* A terminate or an MPI_Abort already reported this death; its SIGABRT is only chained. */
  int ok = atomic_load(&mpn__fatal_reported) || handle(ev, pre, 1);
  log_timing();
  if (ok)
    mpn__record_remove();
  else
    mpn__log_error("the %s report could not be delivered; its record stays in %s", mpn__signal_name(ev->signo),
                   mpn__cfg()->spool_dir);
  char c = 'd';
  ssize_t w = write(mpn__crash.reply_fd[1], &c, 1);
  (void)w;
}

static void on_local(const mpn__event *ev, mpn__outcome *pre)
{
  if (ev == &local_event) {
    on_crash(ev, pre);
    return;
  }
  if (!handle(ev, pre, 1))
    mpn__log_error("the %s report could not be delivered", ev->kind);
  mpn__event_done((mpn__event *)ev);
}

/* Queued events, between crashes and commands. While the application
 * finalizes, the first half of the budget still runs elections (peers join
 * them from their finalize barrier); after that, reports go out per node;
 * once the process exits without MPI_Finalize, notices are dropped, counted
 * and said: MPI is no longer ours and the process is going. */
static void drain_events(void)
{
  mpn__event *ev;
  while (!crash_pending && (ev = mpn__event_take()) != NULL) {
    int64_t late = ending_since + (int64_t)mpn__cfg()->timeout_ms * 500000;
    if (!ev->fatal && ((commands & CMD_EXIT) || atomic_load(&mpn__mpi.stop))) {
      dropped++;
      mpn__event_done(ev);
    } else {
      int elect = !ending_since || mpn__now_ns() < late;
      if (!handle(ev, NULL, elect))
        mpn__log_error("the %s report could not be delivered", ev->kind);
      mpn__event_done(ev);
    }
    read_wake(0);
  }
  if (dropped && (commands & CMD_EXIT)) {
    mpn__log_error("%llu report(s) queued while the process was exiting were not sent", (unsigned long long)dropped);
    dropped = 0;
  }
}

static void run_commands(void)
{
  if (commands & CMD_MPI) {
    commands &= ~CMD_MPI;
    mpn__election_start();
  }
  if (commands & CMD_FINALIZE) {
    commands &= ~CMD_FINALIZE;
    /* The application waits timeout_ms + 1 s from its MPI_Finalize: stay inside that. */
    if (atomic_load(&mpn__mpi.mpi_ok) && !atomic_load(&mpn__mpi.stop))
      mpn__election_finalize(ending_since + (int64_t)mpn__finalize_wait_ms() * 1000000);
    else
      mpn__election_abandon("MPI is finalized");
    atomic_store(&mpn__mpi.mpi_active, 0);
    ack();
  }
  if (commands & CMD_EXIT) {
    commands &= ~CMD_EXIT;
    mpn__election_abandon("the process is exiting without MPI_Finalize");
    atomic_store(&mpn__mpi.mpi_active, 0);
    ack();
  }
}

/* A SIGTERM's handler waits for this: the launcher hears that the rank was
 * terminated (by it, a batch system, a user) before the default action ends it. */
static void tell_terminated(void)
{
  if (!term_pending)
    return;
  term_pending = 0;
  mpn__launcher_term(mpn__crash.term_sender);
  atomic_store(&mpn__crash.term_done, 1);
}

static void *agent_main(void *arg)
{
  (void)arg;
  mpn__crash.agent_tid = (pid_t)syscall(SYS_gettid);
  mpn__signals_altstack();
  mpn__unwind_prime();
  mpn__fallback_sweep();
  for (;;) {
    int mpi = atomic_load(&mpn__mpi.mpi_active) && atomic_load(&mpn__mpi.mpi_ok);
    read_wake(mpi ? (int)mpn__cfg()->poll_ms : 1000);   /* idle: one MPI_Test per poll, no spinning */
    /* Reported events before a finalize: a report queued just before
     * MPI_Finalize still gets its election (peers join it from their
     * finalize barrier). */
    tell_terminated();
    mpn__waits_tick();   /* mpi/waits.c: which MPI call each application thread is in, since when */
    drain_events();
    run_commands();
    const mpn__event *ev = NULL;
    mpn__outcome out;
    if (crash_pending) {
      on_crash(take_crash(), NULL);
    } else if (atomic_load(&mpn__mpi.mpi_active)) {
      int rc = mpn__election_poll(take_local, &ev, &out);
      if (ev)   /* a local failure arrived while joining somebody's epoch */
        on_local(ev, rc == 1 ? &out : NULL);
      mpn__hang_after_epoch();   /* the epoch was a hang's: the grouping, the message */
      mpn__hang_tick();
    }
  }
  return NULL;
}

/* How long a rank in MPI_Finalize serves the others' epochs while it waits for
 * them: a report's budget; with hang detection, long enough to be in the
 * others' hang report (a rank that finished early is the usual culprit).
 * Waiting here costs nothing: MPI_Finalize would wait for the others too. */
long mpn__finalize_wait_ms(void)
{
  const mpn__config *cfg = mpn__cfg();
  return cfg->timeout_ms + (cfg->hang_timeout_s > 0 ? cfg->hang_timeout_s * 1000 + 2 * cfg->timeout_ms : 0);
}

int mpn__agent_start(void)
{
  return mpn__thread_start(NULL, "mpn-agent", agent_main, NULL, 1, 1024 * 1024) == 0 ? 0 : -1;
}

void mpn__agent_wake(char what)
{
  ssize_t w = write(mpn__crash.wake_fd[1], &what, 1);
  (void)w;
}

int mpn__agent_wait_ack(long timeout_ms)
{
  int64_t deadline = mpn__now_ns() + (int64_t)timeout_ms * 1000000;
  for (;;) {
    int64_t left = (deadline - mpn__now_ns()) / 1000000;
    if (left <= 0)
      return -1;
    struct pollfd p = {mpn__g.ack_fd[0], POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r > 0) {
      char c;
      return read(mpn__g.ack_fd[0], &c, 1) == 1 ? 0 : -1;
    }
    if (r < 0 && errno != EINTR)
      return -1;
  }
}
