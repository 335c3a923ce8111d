/* hang.c - one message per hang (docs/events.md, "hang"). All on the agent
 * thread.
 *
 * A rank whose application has waited in one MPI call for
 * MPINOTIFY_HANG_TIMEOUT seconds (mpi/waits.c) rings a hang epoch
 * (mpi/election.c): every rank adds where its application is (the MPI call
 * and for how long, or "not in MPI", and its stack hashed: hang_fill). Every
 * rank then groups the records alike (same call, same stack: one group, as
 * LLNL's STAT does); the lowest rank of the largest waiting group reports,
 * with each group's stack sent by the group's lowest rank. The suspects are
 * the ranks not in MPI, the ones everybody waits for; when every rank is in
 * MPI (a deadlock, a mismatched collective), those not waiting where the
 * majority waits.
 *
 * A wait is rung for once: waits that began before the last hang epoch were
 * in it. The reporter sends one short follow-up when its own wait ends (the
 * job recovered), and nothing while the same situation lasts. */
#include "runtime/runtime.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define APP_FRAMES 16        /* of each group's stack, in the message */
#define SIG_FRAMES 5         /* application frames hashed into a group's stack */
#define EXCHANGE_MS 10000    /* for the groups' stacks to reach the reporter (each finds its lines first) */
#define LINES_MS 5000        /* for file and line: a hang's message is not in a hurry */

static struct {
  int64_t covered_ns;        /* waits that began before this were in a hang epoch */
  char *mine;                /* this rank's stack as JSON, from its last hang_fill */
  uint64_t reported;         /* the hang this rank reported and that still lasts, 0: none */
  pid_t waiter;              /* ... the thread of ours that waited in it */
  int64_t wait_began_ns;     /* ... since then */
  char job_hung[64];         /* "hung for 12 min", for the follow-up */
  int request;               /* a view asked from the shell (mpinotify-send --stacks): its value */
  mpn__frame frames[MPN__MAX_FRAMES];   /* this rank's stack at its last hang epoch */
  int app, napp;             /* ... where the application's frames start, how many */
  void *py;                  /* ... its Python frames (json_t *), or NULL */
} H;

static unsigned call_id(const char *name)
{
  for (unsigned i = 1; name && i < MPN__NCALLS; i++)
    if (!strcmp(mpn__call_name(i), name))
      return i;
  return 0;
}

/* Modules of the system, MPI and this library: a group is told by the first frame outside them. */
static int system_module(const char *m)
{
  static const char *const parts[] = {"/libc.so", "/libc-", "libpthread", "/ld-linux", "linux-vdso", "/libm.so",
                                      "libmpinotify", "/libmpi", "/libopen-", "/openmpi/", "libpmix", "libucp",
                                      "libuct", "libucs", "libfabric", "libevent", "libhwloc", "libgfortran"};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (strstr(m, parts[i]))
      return 1;
  return !m[0];
}

/* The outermost frame of the MPI call the application made (MPI's, ours:
 * Fortran's mpi_barrier_ calls PMPI_Barrier, which our wrapper forwards), or -1. */
static int mpi_frame(const mpn__frame *frames, int n)
{
  int at = -1;
  for (int i = 0; i < n; i++) {
    const char *f = frames[i].has_function ? frames[i].function : "";
    if (!strncmp(f, "MPI_", 4) || !strncmp(f, "PMPI_", 5) || !strncmp(f, "mpi_", 4) || !strncmp(f, "pmpi_", 5) ||
        strstr(frames[i].module, "libmpinotify"))
      at = i;
  }
  return at;
}

/* "train_step" of GCC's clones "train_step.constprop.0", "train_step.isra.0", "train_step.cold" */
static void plain_name(const mpn__frame *f, char *out, size_t cap)
{
  snprintf(out, cap, "%.200s", f->has_function ? f->function : "??");
  char *dot = strchr(out, '.');
  if (dot && dot != out)
    *dot = '\0';
}

/* "compute_loss, loss.c:41": the first frame outside the system's, MPI's and our modules. */
static void where_native(const mpn__frame *frames, int n, char *out, size_t cap)
{
  int k = 0;
  while (k < n - 1 && system_module(frames[k].module))
    k++;
  const mpn__frame *f = &frames[k];
  const char *mod = strrchr(f->module, '/') ? strrchr(f->module, '/') + 1 : f->module;
  char fn[256];
  plain_name(f, fn, sizeof fn);
  if (!n)
    snprintf(out, cap, "an unknown place");
  else if (f->file[0] && f->line > 0)
    snprintf(out, cap, "%.100s, %.100s:%d", fn, strrchr(f->file, '/') ? strrchr(f->file, '/') + 1 : f->file, f->line);
  else
    snprintf(out, cap, "%.100s, %.100s+0x%lx", fn, mod, (unsigned long)f->offset);
}

/* "train_step, train.py:88": the innermost Python frame. */
static int where_python(json_t *tb, char *out, size_t cap)
{
  size_t n = json_is_array(tb) ? json_array_size(tb) : 0;
  json_t *f = n ? json_array_get(tb, n - 1) : NULL;
  const char *file = json_string_value(json_object_get(f, "file"));
  if (!file)
    return 0;
  const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
  const char *fn = json_string_value(json_object_get(f, "function"));
  snprintf(out, cap, "%.120s, %.120s:%lld", fn ? fn : "?", base, (long long)json_integer_value(json_object_get(f, "line")));
  return 1;
}

static uint64_t stack_hash(const mpn__frame *frames, int n, json_t *tb)
{
  uint64_t h = mpn__hash_str(MPN__HASH_SEED, "stack");
  size_t np = json_is_array(tb) ? json_array_size(tb) : 0;
  for (size_t i = np > 8 ? np - 8 : 0; i < np; i++) {   /* a Python rank: its innermost Python frames */
    json_t *f = json_array_get(tb, i);
    h = mpn__hash_sep(mpn__hash_str(h, json_string_value(json_object_get(f, "file"))), '/');
    h = mpn__hash_sep(mpn__hash_str(h, json_string_value(json_object_get(f, "function"))), '\n');
  }
  int k = 0;
  while (!np && k < n - 1 && system_module(frames[k].module))
    k++;   /* where the application is, not which poll loop of MPI's it spins in */
  for (int i = k, used = 0; !np && i < n && used < SIG_FRAMES; i++, used++) {
    const mpn__frame *f = &frames[i];
    h = f->has_function ? mpn__hash_str(h, f->function) : mpn__hash_bytes(h, &f->offset, sizeof f->offset);
    h = mpn__hash_sep(h, '\n');
  }
  return h;
}

/* This rank's part of a hang epoch (election.c calls it): where its
 * application thread is, its stack hashed, and the stack kept for the reporter. */
static void hang_fill(mpn__hang_rec *h)
{
  mpn__wait_state w[MPN__WAIT_SLOTS];
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  int k = mpn__waits_longest(w, n < MPN__WAIT_SLOTS ? n : MPN__WAIT_SLOTS);
  memset(h, 0, sizeof *h);
  h->call = k >= 0 ? call_id(w[k].call) : 0;
  h->waited_s = k >= 0 ? (int32_t)w[k].waited_s : 0;
  double age = mpn__waits_progress_age();
  h->progress_s = age < 0 ? -1 : (int32_t)age;
  void *py = NULL;
  int nf = mpn__peek(k >= 0 ? w[k].tid : mpn__self.pid, H.frames, MPN__MAX_FRAMES, &py);
  nf = nf < 0 ? 0 : nf;
  int at = h->call ? mpi_frame(H.frames, nf) : -1;
  H.app = at >= 0 ? at + 1 : 0;
  H.napp = nf - H.app;
  h->stack = stack_hash(H.frames + H.app, H.napp, py);
  json_decref(H.py);
  mpn__mask_code(py);   /* the stuck line's source may hold a token */
  H.py = py;
  free(H.mine);
  H.mine = NULL;   /* made when needed: file and line take time, the epoch's allgather must not wait */
}

/* This rank's stack as the reporter gets it: where, the frames with file and line, Python's frames. */
static const char *mine(void)
{
  if (H.mine)
    return H.mine;
  static mpn__frame lined[MPN__MAX_FRAMES];
  long ms = mpn__cfg()->symbolize_ms > 0 ? (mpn__cfg()->symbolize_ms > LINES_MS ? mpn__cfg()->symbolize_ms : LINES_MS) : 0;
  int n = ms ? mpn__lines_resolve(H.frames + H.app, H.napp, lined, MPN__MAX_FRAMES, mpn__now_ns() + ms * 1000000)
             : H.napp;
  if (!ms)
    memcpy(lined, H.frames + H.app, sizeof *lined * (size_t)n);
  char where[300];
  if (!where_python(H.py, where, sizeof where))
    where_native(lined, n, where, sizeof where);
  /* within what one text may carry: fewer frames, innermost kept, until it fits */
  static const int limits[][2] = {{APP_FRAMES, 100}, {8, 12}, {4, 4}, {0, 0}};
  for (size_t i = 0; i < sizeof limits / sizeof limits[0] && !H.mine; i++) {
    json_t *tb = json_array(), *f;
    size_t np = json_array_size(H.py), k;
    json_array_foreach((json_t *)H.py, k, f)
      if (k + (size_t)limits[i][1] >= np)
        json_array_append(tb, f);
    int nb = n < limits[i][0] ? n : limits[i][0];
    json_t *o = json_pack("{s:o, s:o, s:o}", "where", mpn__jstr(where), "backtrace", mpn__frames_doc(lined, nb),
                          "traceback", H.py ? tb : (json_decref(tb), json_null()));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text && strlen(text) < MPN__TEXT_MAX)
      H.mine = text;
    else
      free(text);
  }
  return H.mine;
}

void mpn__hang_setup(void)
{
  if (mpn__peek_install() != 0)
    mpn__log_debug("the signal for reading stacks is taken: hang reports come without stacks");
  if (mpn__peek_install_request() != 0)
    mpn__log_debug("SIGURG is the application's: mpinotify-send --stacks cannot ask this rank");
  mpn__election_on_hang(hang_fill, mpn__hang_after_epoch);
}

void mpn__hang_view_path(int request, char *out, size_t cap)
{
  snprintf(out, cap, "/tmp/mpinotify-stacks-%d-%d.json", (int)getuid(), request);
}

/* The same path seen from the asker, for a rank of user `uid` (root may ask another user's rank). */
static void view_path_of(unsigned uid, int request, char *out, size_t cap)
{
  snprintf(out, cap, "/tmp/mpinotify-stacks-%u-%d.json", uid, request);
}

/* ---- mpinotify-send --stacks PID: the asking side (any process) ------------- */

/* Whether process `pid` has libmpinotify mapped (a rank, preloaded or linked). */
static int has_library(long pid)
{
  char path[32], line[1024];
  snprintf(path, sizeof path, "/proc/%ld/maps", pid);
  FILE *f = fopen(path, "re");
  int found = 0;
  while (f && !found && fgets(line, sizeof line, f))
    found = strstr(line, "/libmpinotify.so") != NULL;
  if (f)
    fclose(f);
  return found;
}

/* The view, once the rank renamed it into place: a regular file of ours that
 * only we can read (in /tmp anybody may have made that name first), or NULL. */
static char *read_view(const char *path, unsigned uid)
{
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return NULL;
  char *doc = NULL;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == uid && !(st.st_mode & 077) &&
      st.st_size > 0 && st.st_size < 64 * 1024 * 1024 && (doc = calloc(1, (size_t)st.st_size + 1))) {
    if (read(fd, doc, (size_t)st.st_size) != st.st_size) {
      free(doc);
      doc = NULL;
    }
  }
  close(fd);
  if (doc)
    unlink(path);
  return doc;
}

mpn_code mpn_job_stacks(long pid, int send, long timeout_ms, char **json_out)
{
  if (!json_out || pid <= 0 || pid > INT32_MAX / 2 || timeout_ms < 0)
    return MPN_E_INVALID_ARGUMENT;
  *json_out = NULL;
  int request = (int)((getpid() % (INT32_MAX / 4)) * 2 + (send ? 1 : 0));
  if (request <= 1)
    request += 2;
  char proc[32], path[64];
  struct stat owner;
  snprintf(proc, sizeof proc, "/proc/%ld", pid);
  if (stat(proc, &owner) != 0)
    return MPN_E_INVALID_ARGUMENT;   /* no such process */
  if (!has_library(pid))
    return MPN_E_NOT_INITIALIZED;   /* not a rank with the library: a launcher would forward SIGURG to its job */
  view_path_of((unsigned)owner.st_uid, request, path, sizeof path);
  unlink(path);
  union sigval v = {.sival_int = request};
  if (sigqueue((pid_t)pid, SIGURG, v) != 0)
    return MPN_E_INVALID_ARGUMENT;   /* no such process, or not ours */
  for (int64_t end = mpn__now_ns() + (int64_t)timeout_ms * 1000000; mpn__now_ns() < end; mpn__sleep_ms(50)) {
    char *doc = read_view(path, (unsigned)owner.st_uid);
    if (doc) {
      *json_out = doc;
      return MPN_OK;
    }
  }
  return MPN_E_TIMEOUT;
}

/* ---- after a hang epoch: groups, suspects, the message --------------------- */

typedef struct group {
  uint32_t call;
  uint64_t stack;
  int first, count, waited_s;
  int *ranks;
} group;

typedef struct merged {
  int n;                 /* ranks that gave their state */
  group *g;
  int ng, major;         /* the largest group waiting in MPI (or the largest) */
  mpn__hang_rec *rec;
  mpn__proc *proc;
  int *valid;
  int stuck_s;
} merged;

static void merged_free(merged *m)
{
  for (int i = 0; i < m->ng; i++)
    free(m->g[i].ranks);
  free(m->g);
  free(m->rec);
  free(m->proc);
  free(m->valid);
}

static int group_of(merged *m, const mpn__hang_rec *h, int r)
{
  for (int i = 0; i < m->ng; i++)
    if (m->g[i].call == h->call && m->g[i].stack == h->stack)
      return i;
  group *g = &m->g[m->ng];
  *g = (group){.call = h->call, .stack = h->stack, .first = r, .ranks = malloc(sizeof(int) * (size_t)m->n)};
  return m->ng++;
}

/* Every rank builds the same grouping from the same records. 0 when nobody gave a state. */
static int merge(merged *m)
{
  int size = mpn__election_size();
  memset(m, 0, sizeof *m);
  m->rec = calloc((size_t)size, sizeof *m->rec);
  m->proc = calloc((size_t)size, sizeof *m->proc);
  m->valid = calloc((size_t)size, sizeof *m->valid);
  m->g = calloc((size_t)size, sizeof *m->g);
  m->n = size;
  if (!m->rec || !m->proc || !m->valid || !m->g)
    return 0;
  for (int r = 0; r < size; r++) {
    if (!(m->valid[r] = mpn__election_hang_rec(r, &m->rec[r], &m->proc[r])))
      continue;
    group *g = &m->g[group_of(m, &m->rec[r], r)];
    if (!g->ranks)
      return 0;   /* out of memory: no grouping rather than a wrong one */
    g->ranks[g->count++] = r;
    g->waited_s = m->rec[r].waited_s > g->waited_s ? m->rec[r].waited_s : g->waited_s;
    m->stuck_s = m->rec[r].waited_s > m->stuck_s ? m->rec[r].waited_s : m->stuck_s;
  }
  m->major = -1;
  for (int i = 0; i < m->ng; i++) {
    int better = m->major < 0 || (m->g[i].call && !m->g[m->major].call) ||
                 (!m->g[i].call == !m->g[m->major].call && m->g[i].count > m->g[m->major].count);
    m->major = better ? i : m->major;
  }
  return m->ng > 0;
}

static void duration(int s, char *out, size_t cap)
{
  if (s >= 120)
    snprintf(out, cap, "%d min", s / 60);
  else
    snprintf(out, cap, "%d s", s);
}

static void state_of(const group *g, char *out, size_t cap)
{
  if (g->call && g->waited_s > 0)
    snprintf(out, cap, "in %s for %d s", mpn__call_name(g->call), g->waited_s);
  else if (g->call)   /* a view with hang detection off: the waits are not dated */
    snprintf(out, cap, "in %s", mpn__call_name(g->call));
  else
    snprintf(out, cap, "not in MPI");
}

/* "rank 7 is in compute_loss (loss.c:41), not in MPI" / "ranks 0-6 wait in MPI_Allreduce (train_step, train.py:88)" */
static void group_phrase(const group *g, const char *where, char *out, size_t cap)
{
  char ranges[160];
  mpn__rank_ranges(g->ranks, g->count, ranges, sizeof ranges);
  const char *many = g->count > 1 ? "s" : "";
  if (g->call)
    snprintf(out, cap, "rank%s %s wait%s in %s (%s)", many, ranges, g->count > 1 ? "" : "s", mpn__call_name(g->call),
             where);
  else {   /* "compute_loss, loss.c:41" reads "compute_loss (loss.c:41)" here */
    const char *comma = NULL;   /* the last ", ": a C++ name has its own ("relax(int, int)") */
    for (const char *p = strstr(where, ", "); p; p = strstr(p + 1, ", "))
      comma = p;
    int fn = comma ? (int)(comma - where) : (int)strlen(where);
    snprintf(out, cap, "rank%s %s %s in %.*s%s%s%s, not in MPI", many, ranges, g->count > 1 ? "are" : "is", fn, where,
             comma ? " (" : "", comma ? comma + 2 : "", comma ? ")" : "");
  }
}

static json_t *ranks_json(const group *g)
{
  json_t *a = json_array();
  for (int i = 0; i < g->count; i++)
    json_array_append_new(a, json_integer(g->ranks[i]));
  return a;
}

/* The groups' stacks (texts from their first ranks; ours is H.mine) as the message's "groups". */
static json_t *groups_json(const merged *m, char **texts, char (*where)[300])
{
  json_t *a = json_array();
  for (int i = 0; i < m->ng; i++) {
    const group *g = &m->g[i];
    json_t *t = texts[i] ? json_loads(texts[i], 0, NULL) : NULL;
    const char *w = json_string_value(json_object_get(t, "where"));
    snprintf(where[i], sizeof where[i], "%s", w ? w : "stack not received");
    char state[96];
    state_of(g, state, sizeof state);
    json_t *bt = json_object_get(t, "backtrace"), *tb = json_object_get(t, "traceback");
    json_array_append_new(a, json_pack("{s:o, s:s, s:o, s:o, s:O, s:O}", "ranks", ranks_json(g), "state", state,
                                       "mpi_call", g->call ? json_string(mpn__call_name(g->call)) : json_null(),
                                       "where", mpn__jstr(where[i]), "backtrace", bt ? bt : json_null(),
                                       "traceback", tb ? tb : json_null()));
    json_decref(t);
  }
  return a;
}

static int suspect_group(const merged *m, int i)
{
  int outside = 0, inside = 0;
  for (int k = 0; k < m->ng; k++) {
    outside |= !m->g[k].call;
    inside |= m->g[k].call != 0;
  }
  if (!inside)
    return 0;   /* a view of a job that computes: nobody waits for anybody */
  return outside ? !m->g[i].call : i != m->major;
}

static uint64_t hang_signature(const merged *m)
{
  uint64_t h = mpn__hash_str(MPN__HASH_SEED, "hang");
  h = mpn__hash_bytes(h, &m->g[m->major].call, sizeof m->g[m->major].call);
  for (int i = 0; i < m->ng; i++)
    for (int k = 0; suspect_group(m, i) && k < m->g[i].count; k++)
      h = mpn__hash_bytes(h, &m->g[i].ranks[k], sizeof(int));   /* the suspects */
  return h;
}

/* "Job train hung for 10 min: rank 7 is in compute_loss (loss.c:41), not in MPI; ranks 0-6 wait in ..." */
static void title_and_text(const merged *m, char (*where)[300], int view, char *title, size_t tcap, char **text)
{
  char stuck[32], phrase[600];
  duration(m->stuck_s, stuck, sizeof stuck);
  const char *job = mpn__cfg()->job_name;
  size_t n = view ? (size_t)snprintf(title, tcap, "Job %s, where every rank is: ", job ? job : "?")
                  : (size_t)snprintf(title, tcap, "Job %s hung for %s: ", job ? job : "?", stuck);
  if (!view)
    snprintf(H.job_hung, sizeof H.job_hung, "hung for %s", stuck);
  size_t tn = 0, tsize = 256 + (size_t)m->ng * 700;
  *text = malloc(tsize);
  int said = 0;
  for (int pass = 0; pass < 2; pass++)   /* the suspects first, then where the majority waits */
    for (int i = 0; i < m->ng; i++) {
      if ((pass == 0) != suspect_group(m, i))
        continue;
      group_phrase(&m->g[i], where[i], phrase, sizeof phrase);
      if (n < tcap)
        n += (size_t)snprintf(title + n, tcap - n, "%s%s", said++ ? "; " : "", phrase);
      if (*text && tn < tsize)
        tn += (size_t)snprintf(*text + tn, tsize - tn, "%s%s.", tn ? "\n" : "", phrase);
    }
  int alike = 1;
  for (int i = 0; i < m->ng; i++)
    alike &= !suspect_group(m, i);
  if (*text && tn < tsize && !view && alike)
    tn += (size_t)snprintf(*text + tn, tsize - tn, "\nEvery rank waits alike: a deadlock, or a peer outside this job.");
  if (*text && tn < tsize && !view)
    snprintf(*text + tn, tsize - tn, "\nNo rank has failed: this is a hang (MPINOTIFY_HANG_TIMEOUT=%ld s)%s.",
             (long)mpn__cfg()->hang_timeout_s, mpn__cfg()->hang_abort ? "; the job is being ended (MPINOTIFY_HANG_ACTION=abort)" : "");
}

static void deliver_hang(mpn__event *ev, const merged *m)
{
  mpn__report r;
  mpn__proc self;
  mpn__report_base(&r, ev, &self);
  int nsus = 0;
  mpn__proc *sus = calloc((size_t)m->n, sizeof *sus);
  for (int i = 0; sus && i < m->ng; i++)
    for (int k = 0; suspect_group(m, i) && k < m->g[i].count; k++)
      sus[nsus++] = m->proc[m->g[i].ranks[k]];
  for (int i = 0; sus && !nsus && i < m->n; i++)   /* nobody stands out (every rank waits alike): all of them */
    if (m->valid[i])
      sus[nsus++] = m->proc[i];
  if (nsus) {   /* the message's ranks are who caused it */
    r.procs = sus;
    r.nprocs = nsus;
  }
  r.first_wall_ns = ev->wall_ns;
  int abort_job = mpn__cfg()->hang_abort;
  /* ending the job: the job's failure, sent merged with its end by mpinotify-run (held, as a crash is) */
  ev->fatal = abort_job;
  int64_t by = mpn__now_ns() + (int64_t)mpn__cfg()->timeout_ms * 1000000;
  if (abort_job)
    mpn__deliver(&r, by);
  else
    mpn__deliver_async(&r, by);
  mpn__launcher_report(&r);
  free(sus);
  if (abort_job) {   /* MPINOTIFY_HANG_ACTION=abort: free the allocation */
    mpn__log_error("the job hung; ending it (MPINOTIFY_HANG_ACTION=abort)");
    mpn__pmpi.Abort(mpn__pmpi.world, 1);
  }
}

/* The hang's event (or a view's: kind "stacks"): title, text and the groups; NULL on OOM. */
static mpn__event *hang_event(const merged *m, char **texts, int view)
{
  char (*where)[300] = calloc((size_t)m->ng, sizeof *where);
  mpn__event *ev = where ? mpn__event_new(view ? "stacks" : "hang", view ? "info" : "error") : NULL;
  if (!ev) {
    free(where);
    return NULL;
  }
  json_t *groups = groups_json(m, texts, where), *suspects = json_array();
  for (int i = 0; i < m->ng; i++)
    for (int k = 0; suspect_group(m, i) && k < m->g[i].count; k++)
      json_array_append_new(suspects, json_integer(m->g[i].ranks[k]));
  char title[1024], *text = NULL;
  title_and_text(m, where, view, title, sizeof title, &text);
  snprintf(ev->headline, sizeof ev->headline, view ? "stacks" : "hang");
  ev->signature = view ? mpn__hash_bytes(hang_signature(m), &ev->wall_ns, sizeof ev->wall_ns) : hang_signature(m);
  json_object_update_new((json_t *)ev->extra,
                         json_pack("{s:o, s:o, s:i, s:o, s:o}", "title", mpn__jstr(title), "text", mpn__jstr(text), "stuck_for_s",
                                   m->stuck_s, "groups", groups, "suspects", suspects));
  free(text);
  free(where);
  return ev;
}

/* A view asked from the shell: written where mpinotify-send waits for it, and sent when asked. */
static void answer_view(mpn__event *ev, int request)
{
  char path[64], tmp[80];
  mpn__hang_view_path(request, path, sizeof path);
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  char *doc = json_dumps((json_t *)ev->extra, JSON_COMPACT);
  int ok = fd >= 0 && doc && write(fd, doc, strlen(doc)) == (ssize_t)strlen(doc);
  if (fd >= 0)
    close(fd);
  if (!ok || rename(tmp, path) != 0) {   /* whole, or not at all: the asker reads it once it is there */
    mpn__log_error("cannot write the job's stacks to %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  free(doc);
  if (request & 1) {
    mpn__report r;
    mpn__proc self;
    mpn__report_base(&r, ev, &self);
    mpn__deliver_async(&r, mpn__now_ns() + (int64_t)mpn__cfg()->timeout_ms * 1000000);
  }
}

/* This rank reports the hang (or answers a view, `request` != 0): the groups' stacks from their
 * first ranks, then the message. */
static void gather_and_report(const merged *m, int64_t deadline, int request)
{
  char **texts = calloc((size_t)m->ng, sizeof *texts), **got = calloc((size_t)m->ng, sizeof *got);
  int *from = calloc((size_t)m->ng, sizeof *from), *slot = calloc((size_t)m->ng, sizeof *slot), nfrom = 0;
  if (texts && got && from && slot) {
    for (int i = 0; i < m->ng; i++) {
      if (m->g[i].first == mpn__self.rank)
        texts[i] = mine() ? strdup(mine()) : NULL;
      else
        slot[nfrom] = i, from[nfrom++] = m->g[i].first;
    }
    mpn__election_recv_texts(from, nfrom, got, deadline);
    for (int k = 0; k < nfrom; k++)
      texts[slot[k]] = got[k];
    mpn__event *ev = request >= 0 ? hang_event(m, texts, request != 0) : NULL;   /* -1: said already */
    if (ev && request)
      answer_view(ev, request);
    else if (ev)
      deliver_hang(ev, m);
    mpn__event_free(ev);
    for (int i = 0; i < m->ng; i++)
      free(texts[i]);
  }
  free(texts);
  free(got);
  free(from);
  free(slot);
}

/* This rank's longest wait now, and when it began; 0 when not in MPI. */
static int my_wait(pid_t *tid, int64_t *began)
{
  mpn__wait_state w[MPN__WAIT_SLOTS];
  int n = mpn__waits_snapshot(w, MPN__WAIT_SLOTS);
  int k = mpn__waits_longest(w, n < MPN__WAIT_SLOTS ? n : MPN__WAIT_SLOTS);
  if (k < 0)
    return 0;
  *tid = w[k].tid;
  *began = mpn__now_ns() - (int64_t)(w[k].waited_s * 1e9);
  return 1;
}

static void check_recovered(void);

void mpn__hang_after_epoch(void)
{
  check_recovered();   /* also from MPI_Finalize, where the agent serves epochs and nothing else */
  if (!mpn__election_take_hang())
    return;
  int viewer = mpn__election_view_rank();
  if (viewer < 0)
    H.covered_ns = mpn__now_ns();   /* the waits of now were in this hang epoch */
  merged m;
  /* a ringer whose wait ended during the window: nobody waits, no hang (every rank decides alike) */
  if (merge(&m) && m.major >= 0 && (viewer >= 0 || m.g[m.major].call)) {
    int leader = viewer >= 0 ? viewer : m.g[m.major].first;
    int64_t deadline = mpn__now_ns() + (int64_t)EXCHANGE_MS * 1000000;
    if (leader != mpn__self.rank) {
      for (int i = 0; i < m.ng; i++)
        if (m.g[i].first == mpn__self.rank && mine())
          mpn__election_send_text(leader, mine(), deadline);
    } else if (viewer >= 0) {
      gather_and_report(&m, deadline, H.request ? H.request : 2);
      H.request = 0;
    } else {   /* the texts are received even for the same hang, said already: none is left behind */
      gather_and_report(&m, deadline, hang_signature(&m) == H.reported ? -1 : 0);
      H.reported = hang_signature(&m);
      if (!my_wait(&H.waiter, &H.wait_began_ns))
        H.reported = 0;   /* not waiting itself: no follow-up to watch for */
    }
  }
  merged_free(&m);
}

/* The reporter's own wait ended: the job goes on. One short message. */
static void check_recovered(void)
{
  pid_t tid;
  int64_t began;
  if (!H.reported)
    return;
  int64_t slack = 2 * (int64_t)mpn__cfg()->poll_ms * 1000000 + 1000000000LL;
  if (my_wait(&tid, &began) && tid == H.waiter && llabs(began - H.wait_began_ns) < slack)
    return;   /* still in the same call */
  uint64_t hang = H.reported;
  H.reported = 0;
  mpn__event *ev = mpn__event_new("hang_recovered", "info");
  if (!ev)
    return;
  char title[200], lasted[32], text[300];
  const char *job = mpn__cfg()->job_name;
  int waited = (int)((mpn__now_ns() - H.wait_began_ns) / 1000000000LL);
  duration(waited, lasted, sizeof lasted);
  snprintf(title, sizeof title, "Job %.80s recovered: the ranks that %s go on", job ? job : "?", H.job_hung);
  snprintf(text, sizeof text, "The wait reported as a hang (signature %016llx) ended after %s; the job goes on.",
           (unsigned long long)hang, lasted);
  snprintf(ev->headline, sizeof ev->headline, "hang recovered");
  ev->signature = mpn__hash_str(mpn__hash_bytes(MPN__HASH_SEED, &hang, sizeof hang), "recovered");
  json_object_set_new((json_t *)ev->extra, "title", mpn__jstr(title));
  json_object_set_new((json_t *)ev->extra, "text", mpn__jstr(text));
  json_object_set_new((json_t *)ev->extra, "hang_signature", json_sprintf("%016llx", (unsigned long long)hang));
  json_object_set_new((json_t *)ev->extra, "waited_s", json_integer(waited));
  mpn__report r;
  mpn__proc self;
  mpn__report_base(&r, ev, &self);
  mpn__deliver_async(&r, mpn__now_ns() + (int64_t)mpn__cfg()->timeout_ms * 1000000);
  mpn__launcher_report(&r);   /* mpinotify-run: this hang did not end the job */
  mpn__event_free(ev);
}

void mpn__hang_tick(void)
{
  if (!atomic_load(&mpn__mpi.mpi_active) || !atomic_load(&mpn__mpi.mpi_ok))
    return;
  int request = mpn__peek_request_take();
  if (request > 0) {   /* where every rank is, asked from the shell: this rank collects */
    H.request = request;
    if (mpn__election_hang(mpn__now_ns() + (int64_t)mpn__cfg()->timeout_ms * 1000000, 1) == 1)
      mpn__hang_after_epoch();
    H.request = 0;
  }
  if (mpn__cfg()->hang_timeout_s <= 0)
    return;
  check_recovered();
  mpn__wait_state w;
  if (!mpn__hang_overdue(&w))
    return;
  int64_t now = mpn__now_ns();
  if (now - (int64_t)(w.waited_s * 1e9) < H.covered_ns)
    return;   /* this wait was in a hang epoch already */
  H.covered_ns = now;
  if (mpn__election_hang(now + (int64_t)mpn__cfg()->timeout_ms * 1000000, 0) == 1)
    mpn__hang_after_epoch();
}
