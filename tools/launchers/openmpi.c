/*
 * openmpi.c - Open MPI's launchers (mpirun, mpiexec, orterun, oshrun;
 * prterun for 5.x): how to tell them, how they carry variables to the ranks
 * on every node (-x, per app context), their notice of a rank that died by a
 * signal, and their options.
 */
#include "launcher.h"

#include "common/tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The probe runs the launcher, so it is only tried on names that are
 * launchers: `./train --version` would start the user's program.
 * mpirun/mpiexec may also be MPICH's or Intel's, which the probe tells
 * apart; when it cannot, the name decides.
 */
static bool recognise(const char *path, char *const *cmd, int ncmd)
{
  (void)ncmd;
  static const char *const probed[] = {"mpirun", "mpiexec", "orterun", "oshrun", "prterun",
                                       "mpirun.openmpi", "mpiexec.openmpi", NULL};
  static const char *const names[] = {"mpirun", "mpiexec", "orterun", "oshrun", NULL};
  static const char *const version_words[] = {"Open MPI", "OpenRTE", NULL};
  const char *base = tool_basename(cmd[0]);
  if (!launcher_name_in(base, probed))
    return false;
  int probe = launcher_probe_version(path, cmd[0], version_words);
  return probe >= 0 ? probe == 1 : launcher_name_in(base, names);
}

/* An appfile's contexts ignore command-line -x: only the environment reaches them. */
static bool uses_appfile(char *const *cmd, int ncmd)
{
  for (int i = 1; i < ncmd; i++)
    if (launcher_name_in(cmd[i], (const char *const[]){"--app", "-app", NULL}))
      return true;
  return false;
}

/*
 * `-x VAR` for each variable, right after argv[0] and again after every ':'
 * (each app context of an MPMD command line takes its own -x). Open MPI
 * exports `-x NAME` from mpirun's environment: names keep the values (secrets)
 * out of every command line that ps shows.
 */
static char **pass_env(char *const *cmd, int ncmd, char *const *vars, int nvars)
{
  if (uses_appfile(cmd, ncmd))
    return NULL;
  int contexts = 1;
  for (int i = 1; i < ncmd; i++)
    contexts += strcmp(cmd[i], ":") == 0;
  char **argv = tool_xmalloc(sizeof *argv * (size_t)(ncmd + contexts * 2 * nvars + 1));
  int n = 0;
  for (int i = 0; i < ncmd; i++) {
    argv[n++] = cmd[i];
    for (int k = 0; (i == 0 || strcmp(cmd[i], ":") == 0) && k < nvars; k++) {
      argv[n++] = "-x";
      argv[n++] = vars[k];
    }
  }
  argv[n] = NULL;
  return argv;
}

/* orterun and prterun: "NAME noticed that process rank R with PID P on node H exited on signal S (Killed)." */
static bool death_notice(const char *line, launcher_death *out)
{
  const char *p = strstr(line, "noticed that process rank ");
  launcher_death d;
  memset(&d, 0, sizeof d);
  if (!p || sscanf(p, "noticed that process rank %d with PID %ld on node %63s exited on signal %d", &d.rank,
                   &d.pid, d.host, &d.signo) != 4 || d.rank < 0)
    return false;
  *out = d;
  return true;
}

/* "mpirun detected that one or more processes exited with non-zero status
 * ... The first process to do so was:", then "  Process name: [[11723,1],3]"
 * and "  Exit code:    1". */
static bool exit_notice(const char *line, launcher_exit *out)
{
  static int rank = -1;   /* from the "Process name" line; one reader */
  int job, app, r, code;
  const char *p;
  if ((p = strstr(line, "Process name: [[")) && sscanf(p, "Process name: [[%d,%d],%d]", &job, &app, &r) == 3) {
    rank = r;
    return false;
  }
  if (rank >= 0 && (p = strstr(line, "Exit code:")) && sscanf(p, "Exit code: %d", &code) == 1) {
    *out = (launcher_exit){rank, code};
    rank = -1;
    return true;
  }
  return false;
}

/* "ORTE has lost communication with a remote daemon." then
 * "  Remote daemon: [[30548,0],2] on node n17" (Open MPI 4's errmgr). */
static bool node_lost(const char *line, char *host)
{
  const char *p = strstr(line, "Remote daemon: [[");
  int job, zero, vpid;
  char name[LAUNCHER_HOST_MAX];
  if (!p || sscanf(p, "Remote daemon: [[%d,%d],%d] on node %63s", &job, &zero, &vpid, name) != 4)
    return false;
  snprintf(host, LAUNCHER_HOST_MAX, "%s", name);
  return true;
}

/* Rules of dashes, the sentences around mpirun's notices, and Open MPI's own
 * signal handler's dump ("[host:pid] *** Process received signal ***",
 * "Signal:", "[ 3] ./a.out(+0x11f1)...", "*** End of error message ***"):
 * the message says all of that better. */
static bool noise(const char *line)
{
  static const char *const sentences[] = {
    "Primary job  terminated normally, but", "a non-zero exit code. Per user-direction, the job has been aborted.",
    "mpirun detected that one or more processes exited with non-zero status, thus causing",
    "the job to be terminated. The first process to do so was:", "This is usually due to either a failure of the TCP network",
    "connection to the node, or possibly an internal failure of", "the daemon itself. We cannot recover from this failure, and",
    "therefore will terminate the job.", NULL};
  static const char *const dump[] = {"*** Process received signal ***", "Signal: ", "Signal code: ",
                                     "Failing at address: ", "*** End of error message ***", "[ ", NULL};
  size_t n = strspn(line, "-");
  if (n >= 20 && line[n] == '\0')
    return true;
  const char *t = line + strspn(line, " \t");   /* the exit notice's "  Process name: [[22330,1],1]", "  Exit code: 1" */
  if (!strncmp(t, "Process name: [[", 16) || !strncmp(t, "Exit code:", 10))
    return true;
  /* a help text's aligned facts: "  Local host: h1", "  Error:      Operation now in progress (115)" */
  if (t == line + 2 && !strncmp(t, "Error:  ", 8))
    return true;
  for (const char *const *s = sentences; *s; s++)
    if (!strncmp(line, *s, strlen(*s)))
      return true;
  int end = 0;
  char host[64];
  long pid;
  if (line[0] != '[' || sscanf(line, "[%63[^:]:%ld] %n", host, &pid, &end) != 2 || !end)
    return false;
  for (const char *const *s = dump; *s; s++)
    if (!strncmp(line + end, *s, strlen(*s)))
      return true;
  return false;
}

static const char *const one_value[] = {
  "-np", "-n", "--np", "--n", "-c", "-N", "-npernode", "--npernode", "-H", "-host", "--host", "-hostfile",
  "--hostfile", "-machinefile", "--machinefile", "-x", "-wdir", "--wdir", "-wd", "--wd", "-path", "--path",
  "-prefix", "--prefix", "-map-by", "--map-by", "-rank-by", "--rank-by", "-bind-to", "--bind-to",
  "-output-filename", "--output-filename", "-timeout", "--timeout", NULL};
static const char *const two_values[] = {"-mca", "--mca", "-gmca", "--gmca", NULL};
static const char *const np[] = {"-np", "-n", "--np", "--n", "-c", NULL};

const launcher launcher_openmpi = {
  .name = "Open MPI",
  .recognise = recognise,
  .pass_env = pass_env,
  .death_notice = death_notice,
  .exit_notice = exit_notice,
  .node_lost = node_lost,
  .noise = noise,
  .one_value = one_value,
  .two_values = two_values,
  .np = np,
};
