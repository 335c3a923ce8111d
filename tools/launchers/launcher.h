/*
 * launcher.h - what mpinotify-run knows of the MPI launchers it runs, one file
 * per launcher behind this interface: openmpi.c (Open MPI's mpirun, mpiexec,
 * orterun, prterun), hydra.c (MPICH's and Intel MPI's Hydra) and slurm.c
 * (Slurm's srun). A launcher file fills in what it knows; a NULL member is
 * knowledge it does not have (a launcher nothing recognises passes its own
 * environment on to the ranks, so LD_PRELOAD goes there).
 *
 * launcher.c holds what is the same for every launcher: finding the one a
 * command runs, asking them all about a line of output, and the guesses
 * made from a command line with every launcher's options.
 *
 * Thread safety: every function may be called from any thread; recognise()
 * forks and waits for a child, so it belongs to the main thread before the
 * job starts.
 */
#ifndef MPN_LAUNCHER_H
#define MPN_LAUNCHER_H

#include <stdbool.h>
#include <stddef.h>

enum { LAUNCHER_HOST_MAX = 64 };

struct launcher;

/* A rank the launcher says died by a signal. */
typedef struct launcher_death {
  int rank;
  long pid;                       /* as the launcher printed it (Open MPI may print 0) */
  char host[LAUNCHER_HOST_MAX];
  int signo;
  bool oom;                       /* the launcher says it ran out of memory (the OOM killer) */
  int also[64];                   /* other ranks the same notice names ("tasks 0-3,5: Killed"), same death */
  int nalso;
  const struct launcher *source;  /* whose notice it was (launcher_death_notice sets it) */
} launcher_death;

/* Why the batch system ended the job (or its step) itself. */
typedef enum launcher_end_why {
  LAUNCHER_END_NONE = 0,
  LAUNCHER_END_TIME_LIMIT,   /* it reached its time limit */
  LAUNCHER_END_CANCELLED,    /* a user cancelled it (scancel) */
  LAUNCHER_END_PREEMPTED,    /* a job of higher priority took its nodes */
  LAUNCHER_END_NODE_FAIL,    /* one of its nodes failed */
} launcher_end_why;

/* What the batch system says of the job's end; an empty string is not known. */
typedef struct launcher_end {
  launcher_end_why why;
  char job_id[32];        /* "1234" */
  char host[LAUNCHER_HOST_MAX];   /* where the notice came from, or the failed node */
  char by[64];            /* who cancelled it ("alice"), when said */
  char time_limit[32];    /* "2h00m", when known */
  char run_time[32];      /* how long it ran, as the batch system counts it ("2h00m") */
  const struct launcher *source;  /* whose batch system said it (launcher_end_notice, launcher_ask_end set it) */
} launcher_end;

/* A member of the "job" object of the job's messages that names the job in a
 * batch system, and the variable (of mpinotify-run's environment, and of the
 * tasks' whose hellos carry the member) that it is read from. */
typedef struct launcher_job_field {
  const char *member;   /* "slurm_job_id" */
  const char *env;      /* "SLURM_JOB_ID" */
} launcher_job_field;

/* The first rank the launcher says exited with a non-zero status. */
typedef struct launcher_exit {
  int rank;
  int status;
} launcher_exit;

typedef struct launcher {
  const char *name;   /* "Open MPI" */
  /* Whether the command (`cmd[0]` resolved to `path`) starts this launcher;
   * may run `path --version`, bounded in time. */
  bool (*recognise)(const char *path, char *const *cmd, int ncmd);
  /* A new NULL-terminated argv (the array malloc'd; its strings point into
   * `cmd` and `vars` or are new) that gives every rank on every node the
   * variables `vars` ("NAME", or "NAME=value" to set one), or NULL when the
   * command line cannot carry them: they then go through the environment. */
  char **(*pass_env)(char *const *cmd, int ncmd, char *const *vars, int nvars);
  /* Whether `line` (one line of the launcher's output, no newline) is the
   * launcher's notice of a rank that died by a signal; fills *out. */
  bool (*death_notice)(const char *line, launcher_death *out);
  /* Whether `line` completes the launcher's notice of the first rank that
   * exited with a non-zero status; fills *out. The notice may span lines:
   * the function keeps what earlier lines said (one reader, in order). */
  bool (*exit_notice)(const char *line, launcher_exit *out);
  /* Whether `line` names a node the launcher lost (its daemon there stopped
   * answering); copies the node's name to `host` (LAUNCHER_HOST_MAX). */
  bool (*node_lost)(const char *line, char *host);
  /* Whether `line` is the batch system's notice that it ended the job or
   * its step (a time limit, a cancellation, preemption, a node failure);
   * fills *out. Death notices after it are the teardown's (the launcher
   * file then stops taking them for deaths of their own). */
  bool (*end_notice)(const char *line, launcher_end *out);
  /* Whether `line` says the launcher tears the job down (it then kills the
   * remaining ranks itself, SIGKILL included: they are victims, not ranks
   * killed outright on their own). */
  bool (*teardown)(const char *line);
  /* Asks the batch system how job `job_id` ended (bounded in time, about
   * 2 s; never hangs); fills what it learns into *out (keeping what is
   * there). False when it could not tell. */
  bool (*ask_end)(const char *job_id, launcher_end *out);
  /* Whether `line` is the launcher's or its runtime's boilerplate, which a
   * message's text leaves out of its last lines (rules, the help text around
   * a notice, the runtime's own signal dump); output_tail keeps them. */
  bool (*noise)(const char *line);
  /* The members that name a job of its batch system in the job's messages,
   * ended by {NULL}: the job's id first, then its name, then any others. */
  const launcher_job_field *job_fields;
  /* Says how the batch system ended job `who` ("job 1234 (train)"; e->why is
   * set) after `after` ("2h00m"): "job 1234 (train) was cancelled by user alice". */
  void (*end_words)(const launcher_end *e, const char *who, const char *after, char *out, size_t cap);
  /* The launcher's options that take a value (NULL-terminated lists): */
  const char *const *one_value;   /* "-np 4", "--host n1,n2" */
  const char *const *two_values;  /* "-mca NAME VALUE" */
  const char *const *np;          /* whose value is the number of ranks; an entry ending in '='
                                     matches "--ntasks=8" */
  const char *const *job_name;    /* whose value names the job ("-J train", "--job-name=train") */
} launcher;

/* The launcher `cmd` runs (its argv[0] resolved to `path`), or NULL when none recognises it. */
const launcher *launcher_of(const char *path, char *const *cmd, int ncmd);

/* Whether any launcher takes `line` for its notice of a rank's death by a signal. */
bool launcher_death_notice(const char *line, launcher_death *out);
/* Whether any launcher takes `line` as the end of its notice of a non-zero exit. */
bool launcher_exit_notice(const char *line, launcher_exit *out);
/* Whether any launcher takes `line` for its notice of a lost node; fills host. */
bool launcher_node_lost(const char *line, char *host);
/* Whether any launcher takes `line` for the batch system's notice of the job's end. */
bool launcher_end_notice(const char *line, launcher_end *out);
/* Whether any launcher takes `line` for its notice of tearing the job down. */
bool launcher_teardown(const char *line);
/* Asks every launcher's batch system how job `job_id` ended (launcher.h ask_end). */
bool launcher_ask_end(const char *job_id, launcher_end *out);
/* Whether any launcher takes `line` for its boilerplate. */
bool launcher_noise(const char *line);

/* The i-th member naming a job in a batch system (every launcher's job_fields
 * in turn), or NULL past the last; *owner (may be NULL) gets its launcher. */
const launcher_job_field *launcher_job_field_at(int i, const launcher **owner);

/* The job's name the batch system gives mpinotify-run's environment (SLURM_JOB_NAME), or NULL. */
const char *launcher_env_job_name(void);

/*
 * Best guess at the program's name: the first argument after the launcher's
 * options (skipping the values of every known launcher's value-taking
 * options) and an interpreter in front of a script. NULL when none.
 */
const char *launcher_guess_program(char *const *cmd, int n);

/* The job's name the command line gives its launcher (srun -J NAME outside an allocation), or NULL. */
const char *launcher_guess_job_name(char *const *cmd, int n);

/* The ranks the command line asks for (-np 8, -n 8, --ntasks=8; summed over MPMD contexts), 0 if unknown. */
int launcher_guess_np(char *const *cmd, int n);

/* ---- for the launcher files ---- */

/* Whether `name` is one of `list` (NULL-terminated). */
bool launcher_name_in(const char *name, const char *const *list);

/* Runs `path --version` (as `argv0`) with a deadline: 1 when its output holds
 * one of `words`, 0 when it answered something else, -1 when it could not
 * tell (timeout, failure). */
int launcher_probe_version(const char *path, const char *argv0, const char *const *words);

/* Runs `argv` (argv[0] searched in PATH) with standard input from /dev/null
 * and its output (stdout and stderr, the first cap-1 bytes) into `out`,
 * killed (its process group) after `timeout_ms`. Its exit status, or -1 when
 * it could not run, was killed or timed out. */
int launcher_run(char *const *argv, char *out, size_t cap, long timeout_ms);

#endif /* MPN_LAUNCHER_H */
