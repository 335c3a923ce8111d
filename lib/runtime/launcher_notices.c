/* launcher_notices.c - the rank's notices to the launcher (mpinotify-run): "hello"
 * once the library is armed in MPI_Init (so the launcher knows how many ranks
 * armed, and each rank's pid and host), "unarmed" with the reason when it
 * could not arm there (or was told not to), "bye" in MPI_Finalize (the rank
 * ended on purpose), "loaded" when the rank's process starts with the
 * library in it (before MPI_Init), "exit" with a non-zero status after it, "term" when a
 * SIGTERM ends it (the launcher's teardown, not a death of its own), and "report" with every message this rank delivered as
 * the leader (so the launcher knows which ranks were reported, and when). They
 * travel as sealed frames on the relay's POST /relay, like relayed messages,
 * with a "type" the relay hands to its observer instead of the engine.
 *
 * Best effort and bounded: one attempt, at most NOTICE_MS (a crashing rank:
 * what is left of its budget, at least NOTICE_MIN_MS); nothing at all
 * without MPINOTIFY_RELAY_ADDR. Never logs the key or a frame. */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOTICE_MS 2000L
#define EXIT_NOTICE_MS 300L   /* inside exit(): the relay is local or near, and the exit must not wait */
#define TERM_NOTICE_MS 700L   /* Open MPI's SIGKILL follows its SIGTERM by 1 s (odls_base_sigkill_timeout) */
#define TERM_WAIT_MS 800L     /* the SIGTERM handler's wait for it */
#define NOTICE_MIN_MS 300L
#define BUDGET_MARGIN_MS 100L   /* left to the leader's "done" after a fatal report's notice */

static atomic_int said_hello;
static atomic_int said_armed;   /* mpn_launcher_armed's hello, which MPI_Init's "unarmed" may still contradict */
static atomic_int said_unarmed;
static atomic_int says_term;   /* the SIGTERM hook is in: a SIGTERM that ends this rank is told */

/* Sets `key` to `v` (consumed) unless `o` has it already. */
static void set_default(json_t *o, const char *key, json_t *v)
{
  if (json_object_get(o, key))
    json_decref(v);
  else
    json_object_set_new(o, key, v);
}

/* Seals and posts `o` (consumed), with the fields every notice carries (those
 * it does not bring itself). Returns the relay's HTTP status, 0 when there
 * was no answer. */
static long send_notice(const char *type, json_t *o, long timeout_ms)
{
  const mpn__config *cfg = mpn__cfg();
  unsigned char key[32];
  if (!o || !cfg->relay_addr || !cfg->relay_key || mpn__hex_key(cfg->relay_key, key) != 0) {
    json_decref(o);
    return 0;
  }
  json_object_set_new(o, "v", json_integer(1));
  json_object_set_new(o, "type", json_string(type));
  set_default(o, "rank", json_integer(mpn__self.rank));
  set_default(o, "pid", json_integer((json_int_t)mpn__self.pid));
  set_default(o, "host", mpn__jstr(mpn__self.host));
  set_default(o, "world_size", json_integer(mpn__self.world_size));
  json_object_set_new(o, "wall_ms", json_integer((json_int_t)(mpn__wall_ns() / 1000000)));
  char *plain = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  long status = plain ? mpn__relay_post(cfg->relay_addr, key, plain, strlen(plain), timeout_ms) : 0;
  memset(key, 0, sizeof key);
  free(plain);
  return status;
}

void mpn__launcher_hello(void)
{
  if (!mpn__cfg()->relay_addr || atomic_exchange(&said_hello, 1))
    return;
  const mpn__config *cfg = mpn__cfg();   /* srun's tasks know their Slurm job; mpinotify-run may not */
  send_notice("hello", json_pack("{s:b, s:o, s:o, s:o}", "says_term", atomic_load(&says_term), "slurm_job_id",
                                 mpn__jstr(cfg->slurm_job_id), "slurm_job_name", mpn__jstr(cfg->slurm_job_name),
                                 "slurm_step", mpn__jstr(cfg->slurm_step)), NOTICE_MS);
}

/* The job's size as the launcher gave it (the library may not know it yet). */
static int launcher_world_size(void)
{
  int n = mpn__world_size_from_env();
  return n > 0 ? n : mpn__self.world_size;
}

static void own_host(char *host, size_t cap)
{
  if (mpn__self.host[0])
    mpn__strlcpy(host, mpn__self.host, cap);
  else if (gethostname(host, cap - 1) != 0)
    host[0] = '\0';
}

/* A rank that never calls MPI_Init (PyTorch with gloo or NCCL) but whose
 * failures the library reports: its rank and the job's size from the
 * launcher's environment. */
void mpn_launcher_armed(void)
{
  if (atomic_load(&said_hello) || !mpn__setting_env(MPN__SET_RELAY_ADDR) || mpn__self.disabled)
    return;
  mpn__config_ensure();
  int rank = mpn__self.rank >= 0 ? mpn__self.rank : mpn__mpi_world_rank_from_env();
  if (!mpn__cfg()->relay_addr || rank < 0 || atomic_exchange(&said_armed, 1))
    return;
  char host[sizeof mpn__self.host] = "";
  own_host(host, sizeof host);
  send_notice("hello", json_pack("{s:i, s:i, s:s, s:b}", "rank", rank, "world_size", launcher_world_size(), "host",
                                 host, "without_mpi", 1), NOTICE_MS);
}

/* Runs in the grandchild: no descriptor of the rank's kept (a reader of the
 * rank's output must not wait for it), then one bounded notice. */
static void loaded_main(int rank)
{
  int null = open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && null >= 0; fd++)
    dup2(null, fd);
  mpn__close_between(3, ~0U);
  mpn__config_ensure();
  char host[sizeof mpn__self.host] = "";
  own_host(host, sizeof host);
  send_notice("loaded", json_pack("{s:i, s:i, s:s}", "rank", rank, "world_size", launcher_world_size(), "host", host),
              NOTICE_MS);
  _exit(0);
}

void mpn__launcher_loaded(int rank)
{
  if (rank < 0 || !mpn__setting_env(MPN__SET_RELAY_ADDR))
    return;
  pid_t mid = fork();
  if (mid < 0)
    return;
  if (mid == 0) {   /* the middle process: the grandchild is nobody's child the program waits for */
    if (fork() == 0)
      loaded_main(rank);
    _exit(0);
  }
  while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
    ;
}

/* A rank that called MPI_Init but will not report its failures: the library
 * could not arm (`why`), or is disabled (MPINOTIFY_DISABLE, a program that
 * opted out), which it says instead. Once, never after "hello"; as bounded
 * as "hello". The rank and the job's size come from the launcher's
 * environment when MPI could not tell them; nothing without them (a process
 * a launcher did not start has nobody to tell). */
void mpn__launcher_unarmed(const char *why)
{
  if (atomic_load(&said_hello) || atomic_load(&said_unarmed) || !mpn__setting_env(MPN__SET_RELAY_ADDR))
    return;   /* not under mpinotify-run: nobody to tell, and nothing to read */
  mpn__config_ensure();   /* MPI_Init may fail before anything read it */
  int rank = mpn__self.rank >= 0 ? mpn__self.rank : mpn__mpi_world_rank_from_env();
  if (!mpn__cfg()->relay_addr || rank < 0 || atomic_exchange(&said_unarmed, 1))
    return;
  int disabled = mpn__self.disabled;
  if (disabled)
    why = mpn__setting_env_flag(MPN__SET_DISABLE) ? "disabled by MPINOTIFY_DISABLE"
                                                      : "the program opted out (MPN_API_ONLY_PROGRAM)";
  char host[sizeof mpn__self.host] = "";
  own_host(host, sizeof host);
  json_t *o = json_object();
  json_object_set_new(o, "why", mpn__jstr(why ? why : "unknown"));
  json_object_set_new(o, "disabled", json_boolean(disabled));
  json_object_set_new(o, "rank", json_integer(rank));
  json_object_set_new(o, "world_size", json_integer(launcher_world_size()));
  json_object_set_new(o, "host", mpn__jstr(host));
  send_notice("unarmed", o, NOTICE_MS);
}

void mpn__launcher_bye(void)
{
  if (!mpn__cfg()->relay_addr || !atomic_load(&said_hello) || getpid() != mpn__self.pid)
    return;
  send_notice("bye", json_object(), NOTICE_MS);
}

void mpn__launcher_exit(int status)
{
  if (!mpn__cfg()->relay_addr || !atomic_load(&said_hello) || getpid() != mpn__self.pid)
    return;
  send_notice("exit", json_pack("{s:i}", "status", status), EXIT_NOTICE_MS);
}

/* Under mpinotify-run only: a rank that ends by SIGTERM says so, so that the
 * launcher tells ranks it tore down from ranks killed outright (SIGKILL, the
 * OOM killer), which say nothing. */
void mpn__launcher_arm_term(void)
{
  if (!mpn__cfg()->relay_addr)
    return;
  /* mpinotify-run's directory for this job, on its node (a rank of another node cannot create the file) */
  const char *dir = getenv("MPINOTIFY_RUN_DIR");
  char marker[MPN__PATH_MAX] = "";
  if (dir && *dir && dir[0] == '/' && mpn__self.rank >= 0)
    snprintf(marker, sizeof marker, "%s/term-%d", dir, mpn__self.rank);
  if (mpn__signals_install_term(TERM_WAIT_MS, marker) == 0)
    atomic_store(&says_term, 1);
  else
    mpn__log_debug("SIGTERM is ignored here: the launcher will not hear of this rank's termination");
}

void mpn__launcher_term(pid_t sender)
{
  if (!mpn__cfg()->relay_addr || !atomic_load(&said_hello) || getpid() != mpn__self.pid)
    return;
  json_t *o = json_pack("{s:s}", "signal", "SIGTERM");
  if (sender > 0)
    json_object_set_new(o, "sent_by_pid", json_integer((json_int_t)sender));
  send_notice("term", o, TERM_NOTICE_MS);
}

void mpn__launcher_report(const mpn__report *r)
{
  if (!mpn__cfg()->relay_addr || !r || !r->event || getpid() != mpn__self.pid)
    return;
  long timeout_ms = NOTICE_MS;
  if (r->event->fatal || !strcmp(r->event->kind, "crash")) {   /* within what is left of the budget */
    int64_t end = r->event->mono_ns + (int64_t)mpn__cfg()->timeout_ms * 1000000;
    long left = (long)((end - mpn__now_ns()) / 1000000) - BUDGET_MARGIN_MS;
    timeout_ms = left < NOTICE_MIN_MS ? NOTICE_MIN_MS : left < NOTICE_MS ? left : NOTICE_MS;
  }
  json_t *msg = mpn__report_doc(r);
  if (!msg)
    return;
  send_notice("report", json_pack("{s:o}", "message", msg), timeout_ms);
}

/* ---- claims: who reports a failure when MPI cannot elect (relay.c) ---------------- */

#define CLAIM_MS 1000L       /* one question to the launcher */
#define CLAIM_POLL_MS 100L   /* a waiting rank asks again this often */

static long claim_once(uint64_t signature, int64_t deadline_ns)
{
  long left = (long)((deadline_ns - mpn__now_ns()) / 1000000);
  if (!mpn__cfg()->relay_addr || getpid() != mpn__self.pid || left < NOTICE_MIN_MS / 3)
    return 0;
  char sig[24];
  snprintf(sig, sizeof sig, "%016llx", (unsigned long long)signature);
  return send_notice("claim", json_pack("{s:s}", "signature", sig), left < CLAIM_MS ? left : CLAIM_MS);
}

int mpn__launcher_claim(uint64_t signature, int64_t deadline_ns)
{
  switch (claim_once(signature, deadline_ns)) {
  case 200: return MPN__CLAIM_MINE;
  case MPN__RELAY_CLAIMED: return MPN__CLAIM_TAKEN;
  case MPN__RELAY_REPORTED: return MPN__CLAIM_REPORTED;
  default: return MPN__CLAIM_NO_ANSWER;   /* no relay, or it did not answer: node claims decide */
  }
}

void mpn__launcher_wait_reported(uint64_t signature, int64_t deadline_ns)
{
  while (mpn__now_ns() + CLAIM_POLL_MS * 1000000 < deadline_ns) {
    mpn__sleep_ms(CLAIM_POLL_MS);
    if (claim_once(signature, deadline_ns) != MPN__RELAY_CLAIMED)
      return;   /* reported, or the launcher is gone: nothing left to wait for */
  }
}
