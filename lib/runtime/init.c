/* init.c - how the library arms itself.
 *
 * Linked into a program (or statically), it arms in its constructor: a
 * program that never calls MPI is then a world of one. Preloaded, it arms in
 * MPI_Init only, so the shells, compilers and helpers that a job also starts
 * (LD_PRELOAD reaches them all) stay silent. MPINOTIFY_DISABLE=1 leaves
 * every process untouched. */
#include "runtime/runtime.h"

#include <jansson.h>

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

mpn__state mpn__g = {.thread_level = -1, .ack_fd = {-1, -1}};

static char config_errors[2048];
static int config_loaded;   /* under config_lock: application threads (Python's hooks) may ask first */
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
/* A linked program arms in its constructor, before main() can register its
 * own channel kinds: its configuration problems wait for MPI_Init (or a
 * failure), when they are final and the rank is known. */
static int defer_errors;
static int user_initialized;

/* A process a launcher started (mpirun, srun) before MPI_Init: the launcher's
 * environment gives its place in the job, and a token every process of the
 * job computes alike, so the node's claim files (mpi/fallback.c) dedupe a
 * failure of several ranks before any election could run. 0 if none. */
static uint64_t launcher_job_token(void)
{
  static const char *vars[] = {"OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", "SLURM_JOB_ID"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (!v || !*v)
      continue;
    uint64_t h = mpn__hash_str(MPN__HASH_SEED, v);   /* every rank of the job alike */
    h = mpn__hash_str(h, i == 2 ? getenv("SLURM_STEP_ID") : NULL);
    return h ? h : 1;
  }
  return 0;
}

/* Which rank this process belongs to, as its launcher's variables say: an
 * exec or a child of the rank has the same key; another rank, or a launcher
 * that has some of them itself (mpirun in a Slurm allocation), another. */
static uint64_t rank_key(void)
{
  static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", "PMIX_RANK",
                               "PMI_RANK", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_PROCID"};
  uint64_t h = MPN__HASH_SEED;
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    h = mpn__hash_sep(mpn__hash_str(h, getenv(vars[i])), 0);
  return h;
}

/* A launcher's own processes carry some of its variables too (srun starts
 * orted with SLURM_PROCID): they are no rank and their output is not one's. */
static int launcher_program(void)
{
  static const char *const names[] = {"mpirun", "mpiexec", "orterun", "oshrun", "prterun", "orted", "prted",
                                      "srun", "slurmstepd", "hydra_pmi_proxy", "mpiexec.hydra", NULL};
  for (const char *const *n = names; *n; n++)
    if (!strcmp(program_invocation_short_name, *n))
      return 1;
  return 0;
}

/* The rank's last lines of output (capture/output.c): from its start, so
 * that what it printed before MPI_Init is there too; before any thread of
 * ours exists (a fork). Only in a launcher's ranks: a program run alone has
 * nobody else to read its output. */
static void start_rank_output(void)
{
  if (mpn__mpi_world_rank_from_env() < 0 || launcher_program() || mpn__config_rank_output_lines() <= 0)
    return;
  mpn__output_start(rank_key());
}

/* Does the main program itself need this library (linked, not preloaded)? */
static int main_program_links_us(void)
{
  struct link_map *main_map = dlopen(NULL, RTLD_NOW | RTLD_NOLOAD);
  if (!mpn__self.self_path[0])
    return 1;   /* static archive: we are part of the program */
  if (!main_map)
    return 0;
  const char *strtab = NULL;
  for (const ElfW(Dyn) *d = main_map->l_ld; d && d->d_tag != DT_NULL; d++)
    if (d->d_tag == DT_STRTAB)
      strtab = (const char *)d->d_un.d_ptr;
  for (const ElfW(Dyn) *d = main_map->l_ld; strtab && d && d->d_tag != DT_NULL; d++)
    if (d->d_tag == DT_NEEDED && strstr(strtab + d->d_un.d_val, "libmpinotify"))
      return 1;
  return 0;
}

static void find_self(void)
{
  Dl_info info;
  struct link_map *map = NULL;
  if (dladdr1((void *)&find_self, &info, (void **)&map, RTLD_DL_LINKMAP) && map && map->l_name[0])
    if (!realpath(map->l_name, mpn__self.self_path))
      mpn__strlcpy(mpn__self.self_path, map->l_name, sizeof mpn__self.self_path);
}

const char *mpn_library_path(void)
{
  if (!mpn__self.self_path[0])
    find_self();
  return mpn__self.self_path[0] ? mpn__self.self_path : NULL;
}

static void print_config_errors(void)
{
  if (defer_errors || !config_errors[0] || mpn__cfg()->config_checked || mpn__self.rank > 0)
    return;
  for (char *line = strtok(config_errors, "\n"); line; line = strtok(NULL, "\n"))
    mpn__log_error("%s", line);
  config_errors[0] = '\0';
}

static void child_after_fork(void)
{
  atomic_store(&mpn__crash.armed, 0);   /* the agent thread did not come along */
  atomic_store(&mpn__mpi.mpi_active, 0);
}

static int make_pipes(void)
{
  if (pipe2(mpn__crash.wake_fd, O_CLOEXEC | O_NONBLOCK) || pipe2(mpn__crash.reply_fd, O_CLOEXEC) ||
      pipe2(mpn__g.ack_fd, O_CLOEXEC))
    return -1;
  /* The handler's write must never block, whatever the agent is doing. */
  return fcntl(mpn__crash.wake_fd[1], F_SETFL, O_NONBLOCK);
}

/* Publishes a loaded configuration; what the signal handler needs of it is
 * copied where the handler reads it. */
static void use_config(mpn__config *fresh)
{
  if (fresh->nchannels == 0) {
    mpn__config_console_fallback(fresh);
    mpn__add_err(config_errors, sizeof config_errors, "no usable channel: reports go to this job's "
                 "standard error (console://)");
  }
  mpn__config_publish(fresh);
  mpn__crash.wait_ms = mpn__cfg()->timeout_ms;
}

/* Configuration is read when first needed, not in the constructor: under
 * LD_PRELOAD every shell and compiler of the job runs the constructor, and
 * only MPI ranks need a configuration. */
void mpn__config_ensure(void)
{
  pthread_mutex_lock(&config_lock);
  if (!config_loaded) {
    mpn__config fresh;
    mpn__config_load(&fresh, NULL, config_errors, sizeof config_errors);
    use_config(&fresh);
    config_loaded = 1;
  }
  pthread_mutex_unlock(&config_lock);
}

void mpn__config_report(void)
{
  defer_errors = 0;
  print_config_errors();
}

/* A channel kind was registered: channels of that kind configured in the
 * environment can be parsed now. Only a configuration that named unknown
 * kinds is replaced; readers on other threads keep the one they hold
 * (mpn__config_publish never frees a published configuration). */
void mpn__config_reload(void)
{
  if (!config_loaded || user_initialized || !mpn__cfg()->unknown_kinds)
    return;   /* mpn_init's options are the caller's: they register first */
  mpn__config fresh;
  mpn__config_load(&fresh, NULL, config_errors, sizeof config_errors);
  use_config(&fresh);
}

int mpn__activate(void)
{
  if (atomic_load(&mpn__crash.armed) || mpn__self.disabled)
    return 0;
  mpn__config_ensure();
  mpn__self.pid = getpid();
  if (mpn__self.rank < 0)
    mpn__self.rank = mpn__mpi_world_rank_from_env();
  gethostname(mpn__self.host, sizeof mpn__self.host - 1);
  mpn__mpi.job_token = ((uint64_t)mpn__self.pid << 32) ^ (uint64_t)mpn__wall_ns();
  if (mpn__g.thread_level < 0 && mpn__self.rank >= 0) {   /* launched, not yet in MPI: MPI_Init corrects both */
    int size = mpn__world_size_from_env();
    uint64_t token = launcher_job_token();
    if (size > mpn__self.rank && token) {
      mpn__self.world_size = size;
      mpn__mpi.job_token = token;
      mpn__g.launched = 1;
    }
  }
  print_config_errors();
  if (make_pipes() != 0) {
    mpn__log_error("cannot create the agent's pipes: crash reports are off in this process");
    mpn__launcher_unarmed("cannot create the agent's pipes");
    return -1;
  }
  mpn__record_prepare(mpn__cfg()->spool_dir);
  mpn__unwind_load();
  mpn__python_prime();
  /* libcurl's and OpenSSL's global set-up on this thread, before any of
   * ours exists: done on the agent thread, a program that exits at once
   * could run OpenSSL's exit handlers while that thread was still inside it. */
  mpn__deliver_prime();
  if (mpn__agent_start() != 0) {
    mpn__log_error("cannot start the agent thread: crash reports are off in this process");
    mpn__launcher_unarmed("cannot start the agent thread");
    return -1;
  }
  static int atfork_done;
  if (!atfork_done++)
    pthread_atfork(NULL, NULL, child_after_fork);
  atomic_store(&mpn__crash.armed, 1);
  mpn__signals_install();
  mpn__cxx_setup();
  return 0;
}

/* A rank that exits without MPI_Finalize: the agent must be out of MPI
 * before libmpi's destructors run. */
void mpn__agent_leave_mpi(void)
{
  if (getpid() != mpn__self.pid || !atomic_load(&mpn__mpi.mpi_active))
    return;
  atomic_store(&mpn__mpi.stop, 1);
  mpn__agent_wake('x');
  mpn__agent_wait_ack(500);
}

static void on_exit_without_finalize(void)
{
  mpn__agent_leave_mpi();
}

/* The frames of exit() itself and of its handlers are libc's: the site is
 * the first frame outside libc. */
static int drop_libc_top(mpn__frame *f, int n)
{
  int k = 0;
  while (k < n && (strstr(f[k].module, "/libc.so") || strstr(f[k].module, "/libc-")))
    k++;
  memmove(f, f + k, sizeof *f * (size_t)(n - k));
  return n - k;
}

/* A rank ending with a non-zero status while MPI is initialised and not
 * finalised (exit(1), Fortran STOP 1, Python's uncaught exception): report
 * it, once across ranks, before mpirun sees the process go. glibc's on_exit
 * passes the status, also for a return from main. */
static void on_exit_status(int status, void *arg)
{
  (void)arg;
  status &= 0xff;   /* glibc passes exit()'s argument; the process's status is its low byte */
  if (atomic_load(&mpn__crash.crash_owner))
    return;   /* exit() from a handler we chained to: the crash is the report */
  if (status != 0 && atomic_load(&mpn__g.mpi_finalized))
    mpn__launcher_exit(status);   /* the LAMMPS pattern: only the launcher can put the ranks together */
  if (status == 0 || getpid() != mpn__self.pid || !mpn__cfg()->exit_reports || mpn__g.thread_level < 0 ||
      atomic_load(&mpn__g.mpi_finalized) || atomic_load(&mpn__fatal_reported) || !atomic_load(&mpn__crash.armed))
    return;   /* below MPI_THREAD_MULTIPLE the agent reports it per node, without an election */
  mpn__event *ev = mpn__event_new("exit", "error");
  if (!ev)
    return;
  ev->fatal = 1;   /* the process ends: non-leaders wait for the leader's delivery */
  ev->nframes = drop_libc_top(ev->frames, mpn__unwind_here(ev->frames, MPN__MAX_FRAMES, 1));
  snprintf(ev->headline, sizeof ev->headline, "exit status %d", status);
  char code[16];
  snprintf(code, sizeof code, "%d", status);
  const char *sig[] = {code};
  mpn__event_sign(ev, sig, 1, 1);
  json_object_set_new(ev->extra, "exit_status", json_integer(status));
  mpn__event_submit(ev, mpn__cfg()->timeout_ms + 1000);
}

const char *mpn__thread_level_name(void)
{
  return mpn__g.thread_level < 0 ? NULL : mpn__mpi_thread_level_name(mpn__g.thread_level);
}

void mpn__on_mpi_initialized(int provided)
{
  if (mpn__self.disabled)
    return;
  mpn__g.thread_level = provided;
  if (mpn__mpi_resolve() != 0) {
    if (mpn__mpi_world_rank_from_env() <= 0)
      mpn__log_warn("this MPI is not Open MPI (PMPI entry points or ompi_mpi_* handles missing): "
                    "the library stays inert");
    mpn__launcher_unarmed("this MPI is not Open MPI (PMPI entry points or ompi_mpi_* handles missing)");
    return;
  }
  mpn__python_mark_rank();
  int rank = 0;
  mpn__pmpi.Comm_rank(mpn__pmpi.world, &rank);
  mpn__self.rank = rank;
  mpn__config_report();
  if (!atomic_load(&mpn__crash.armed) && mpn__activate() != 0)
    return;
  if (mpn__mpi_setup(provided) != 0) {
    mpn__log_warn("cannot set up the election communicator: reports fall back to one per node");
  } else if (atomic_load(&mpn__mpi.mpi_ok)) {   /* below MULTIPLE the agent must not call MPI */
    mpn__hang_setup();   /* before the first epoch: a hang epoch asks every rank where it is */
    atomic_store(&mpn__mpi.mpi_active, 1);
    mpn__agent_wake('m');
    static int registered;
    if (!registered++)
      atexit(on_exit_without_finalize);
  }
  static int exit_hooked;
  if (!exit_hooked++)   /* registered after the agent's atexit, so it runs first: MPI is still up */
    on_exit(on_exit_status, NULL);
  mpn__errors_setup();      /* mpi_errors.c: MPI errors and MPI_Abort */
  mpn__waits_start();       /* mpi_waits.c: the blocking calls are followed from now on */
  mpn__signals_install();   /* on top of Open MPI's handlers, chaining to them */
  mpn__launcher_arm_term();   /* first: the hello says whether a SIGTERM will be told */
  mpn__launcher_hello();
  if (mpn__self.rank == 0) {
    char list[1024] = "";
    const mpn__config *cfg = mpn__cfg();
    for (int i = 0; i < cfg->nchannels; i++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", cfg->channels[i].masked);
    mpn__log_debug("armed on %d ranks; MPI thread level %s%s; channels: %s", mpn__self.world_size,
                   mpn__mpi_thread_level_name(provided), atomic_load(&mpn__mpi.mpi_ok) ? "" : " (no election: one report per node)",
                   list);
  }
}

void mpn__on_mpi_finalize(void)
{
  mpn__launcher_bye();
  atomic_store(&mpn__g.mpi_finalized, 1);   /* a later exit(1) is not a failure of the MPI job */
  if (!atomic_load(&mpn__mpi.mpi_active) || getpid() != mpn__self.pid)
    return;
  mpn__agent_wake('f');
  if (mpn__agent_wait_ack(mpn__finalize_wait_ms() + 1000) != 0) {
    atomic_store(&mpn__mpi.stop, 1);   /* the agent is stuck: keep it away from MPI */
    mpn__log_warn("the agent did not leave MPI in time; finalizing anyway");
  }
  atomic_store(&mpn__mpi.mpi_active, 0);
}

__attribute__((constructor)) static void mpn__constructor(void)
{
  mpn__self.pid = getpid();
  if (mpn__setting_env_flag(MPN__SET_DISABLE)) {
    mpn__self.disabled = 1;
    return;
  }
  find_self();
  if (dlsym(RTLD_DEFAULT, "mpn_api_only_program")) {   /* MPN_API_ONLY_PROGRAM: a tool */
    mpn__self.disabled = 1;
    return;
  }
  start_rank_output();
  if (!launcher_program())
    mpn__launcher_loaded(mpn__mpi_world_rank_from_env());
  mpn__python_boot();
  if (main_program_links_us()) {
    defer_errors = 1;
    mpn__activate();
  }
}

/* ---- public API -------------------------------------------------------- */

int mpn_is_active(void)
{
  return atomic_load(&mpn__crash.armed) ? 1 : 0;
}

mpn_code mpn_init(mpn_options *opts)
{
  mpn_code rc = MPN_OK;
  if (mpn__self.disabled)
    rc = MPN_E_DISABLED;
  else if (user_initialized || mpn__g.thread_level >= 0)
    rc = MPN_E_ALREADY_INITIALIZED;
  if (rc != MPN_OK) {
    mpn_options_free(opts);
    return rc;
  }
  user_initialized = 1;
  defer_errors = 0;
  mpn__config fresh;
  pthread_mutex_lock(&config_lock);
  rc = mpn__config_load(&fresh, opts, config_errors, sizeof config_errors);
  mpn_options_free(opts);
  use_config(&fresh);
  config_loaded = 1;
  pthread_mutex_unlock(&config_lock);
  if (!atomic_load(&mpn__crash.armed))
    return mpn__activate() == 0 ? rc : MPN_E_IO;
  print_config_errors();
  return rc;
}

mpn_code mpn_register_channel(const char *name, mpn_channel_send_fn send, void *user)
{
  mpn_code rc = mpn__custom_register(name, send, user);
  if (rc == MPN_OK)
    mpn__config_reload();   /* channels of this kind in the environment parse now */
  return rc;
}
