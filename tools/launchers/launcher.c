/* launcher.c - what is the same for every launcher (launcher.h): the list of
 * launcher files, and the command-line guesses made with all their options. */
#include "launcher.h"

#include "common/tool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
  PROBE_TIMEOUT_MS = 5000,   /* `LAUNCHER --version` answers in milliseconds; never hold the job longer */
  PROBE_OUTPUT_MAX = 4096,
};

/* Every launcher mpinotify-run knows, each defined in its own file (the only place outside it that
 * names it); the first that recognises a command runs it. */
extern const launcher launcher_openmpi, launcher_hydra, launcher_slurm;
static const launcher *const all[] = {&launcher_openmpi, &launcher_hydra, &launcher_slurm, NULL};

bool launcher_name_in(const char *name, const char *const *list)
{
  for (; list && *list; list++)
    if (strcmp(name, *list) == 0)
      return true;
  return false;
}

const launcher *launcher_of(const char *path, char *const *cmd, int ncmd)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->recognise && (*l)->recognise(path, cmd, ncmd))
      return *l;
  return NULL;
}

/* Whichever launcher started the job (a wrapper script may hide it), its notices are its own. */
bool launcher_death_notice(const char *line, launcher_death *out)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->death_notice && (*l)->death_notice(line, out)) {
      out->source = *l;
      return true;
    }
  return false;
}

bool launcher_exit_notice(const char *line, launcher_exit *out)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->exit_notice && (*l)->exit_notice(line, out))
      return true;
  return false;
}

bool launcher_node_lost(const char *line, char *host)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->node_lost && (*l)->node_lost(line, host))
      return true;
  return false;
}

bool launcher_end_notice(const char *line, launcher_end *out)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->end_notice && (*l)->end_notice(line, out)) {
      out->source = *l;
      return true;
    }
  return false;
}

bool launcher_teardown(const char *line)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->teardown && (*l)->teardown(line))
      return true;
  return false;
}

bool launcher_ask_end(const char *job_id, launcher_end *out)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->ask_end && (*l)->ask_end(job_id, out)) {
      out->source = *l;
      return true;
    }
  return false;
}

bool launcher_noise(const char *line)
{
  for (const launcher *const *l = all; *l; l++)
    if ((*l)->noise && (*l)->noise(line))
      return true;
  return false;
}

const launcher_job_field *launcher_job_field_at(int i, const launcher **owner)
{
  for (const launcher *const *l = all; *l; l++)
    for (const launcher_job_field *f = (*l)->job_fields; f && f->member; f++)
      if (i-- == 0) {
        if (owner)
          *owner = *l;
        return f;
      }
  return NULL;
}

const char *launcher_env_job_name(void)
{
  for (const launcher *const *l = all; *l; l++) {
    const launcher_job_field *f = (*l)->job_fields;
    const char *name = f && f[0].member && f[1].member ? getenv(f[1].env) : NULL;   /* the id first, then the name */
    if (name && *name)
      return name;
  }
  return NULL;
}

/* How many arguments option `arg` takes with it: 0 (a flag, or the value in it), 1 or 2. */
static int values_of(const char *arg)
{
  for (const launcher *const *l = all; *l; l++)
    if (launcher_name_in(arg, (*l)->two_values))
      return 2;
  for (const launcher *const *l = all; *l; l++)
    if (launcher_name_in(arg, (*l)->one_value))
      return 1;
  return 0;
}

const char *launcher_guess_program(char *const *cmd, int n)
{
  int i = 1;
  while (i < n && cmd[i][0] == '-')
    i += 1 + values_of(cmd[i]);
  if (i >= n)
    return NULL;
  const char *prog = tool_basename(cmd[i]);
  bool interpreter = strncmp(prog, "python", 6) == 0 || launcher_name_in(prog, (const char *const[]){"sh", "bash", NULL});
  if (interpreter && i + 1 < n && cmd[i + 1][0] != '-')
    return tool_basename(cmd[i + 1]);
  return prog;
}

/* The value `cmd[i]` gives for the number of ranks (with cmd[i + 1]), or NULL. */
static const char *const *np_opts(const launcher *l)
{
  return l->np;
}

static const char *const *name_opts(const launcher *l)
{
  return l->job_name;
}

/* The value cmd[i] gives to one of the options `opts` picks from every launcher, or NULL. */
static const char *opt_value(char *const *cmd, int n, int i, const char *const *(*opts)(const launcher *))
{
  for (const launcher *const *l = all; *l; l++)
    for (const char *const *o = opts(*l); o && *o; o++) {
      size_t len = strlen(*o);
      if (len > 0 && (*o)[len - 1] == '=' && strncmp(cmd[i], *o, len) == 0)
        return cmd[i] + len;
      if (strcmp(cmd[i], *o) == 0 && i + 1 < n)
        return cmd[i + 1];
    }
  return NULL;
}

int launcher_guess_np(char *const *cmd, int n)
{
  int total = 0;
  for (int i = 1; i < n; i++) {
    const char *v = opt_value(cmd, n, i, np_opts);
    long np;
    if (v && tool_parse_long(v, &np) && np > 0 && np < 100000000)
      total += (int)np;
  }
  return total;
}

const char *launcher_guess_job_name(char *const *cmd, int n)
{
  const char *program = launcher_guess_program(cmd, n), *name = NULL;
  for (int i = 1; i < n && cmd[i] != program; i++) {   /* the launcher's options, not the program's */
    const char *v = opt_value(cmd, n, i, name_opts);
    if (v && *v)
      name = v;
  }
  return name;
}

/* ---- running a launcher's helper (LAUNCHER --version, scontrol) ---------------- */

/* Reads what fd gives (keeping the first cap-1 bytes) until EOF; false on timeout or error. */
static bool read_until(int fd, char *buf, size_t cap, long deadline)
{
  size_t len = 0;
  for (;;) {
    long left = deadline - tool_now_ms();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    char tmp[512];
    ssize_t got = read(fd, tmp, sizeof tmp);
    if (got < 0 && errno == EINTR)
      continue;
    if (got <= 0)
      return got == 0;
    size_t keep = (size_t)got < cap - 1 - len ? (size_t)got : cap - 1 - len;
    memcpy(buf + len, tmp, keep);
    len += keep;
    buf[len] = '\0';
  }
}

/* The child: `path argv...`, all output into the pipe, in its own process group. */
static void exec_child(const char *path, char *const *argv, int out)
{
  setpgid(0, 0);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0)
    dup2(devnull, STDIN_FILENO);
  dup2(out, STDOUT_FILENO);
  dup2(out, STDERR_FILENO);
  if (path)
    execv(path, argv);
  else
    execvp(argv[0], argv);
  _exit(127);
}

/* Runs the child with a deadline; its exit status, or -1. */
static int run_bounded(const char *path, char *const *argv, char *out, size_t cap, long timeout_ms)
{
  int fds[2];
  out[0] = '\0';
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0)
    exec_child(path, argv, fds[1]);
  close(fds[1]);
  if (pid < 0) {
    close(fds[0]);
    return -1;
  }
  setpgid(pid, pid);   /* also here: a kill before the child's own setpgid must still reach it */
  bool done = read_until(fds[0], out, cap, tool_now_ms() + timeout_ms);
  close(fds[0]);
  if (!done) {
    kill(-pid, SIGKILL);   /* the whole group: a launcher script may have started children */
    kill(pid, SIGKILL);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return done && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int launcher_run(char *const *argv, char *out, size_t cap, long timeout_ms)
{
  return run_bounded(NULL, argv, out, cap, timeout_ms);
}

int launcher_probe_version(const char *path, const char *argv0, const char *const *words)
{
  char out[PROBE_OUTPUT_MAX];
  char *const argv[] = {(char *)argv0, "--version", NULL};
  if (run_bounded(path, argv, out, sizeof out, PROBE_TIMEOUT_MS) != 0)
    return -1;
  for (; *words; words++)
    if (strstr(out, *words) != NULL)
      return 1;
  return 0;
}
