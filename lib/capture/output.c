/* output.c - a rank's last lines of standard output and error.
 *
 * A copier process sits between the rank's fds 1 and 2 and where they went:
 * it passes every byte on unchanged and appends it to a ring in shared
 * memory, which the rank reads when it builds a report. A process, not a
 * thread: what the rank wrote just before it died is still in the pipe then,
 * and only a process that outlives the rank can pass it on. It is a
 * grandchild (double fork), so the rank's wait() never sees it, and it ends
 * at EOF, when the rank and everything that inherited its fds are gone.
 *
 * Where the original fd is a terminal (Open MPI gives ranks a pty for their
 * standard output), the rank gets a pty in raw mode instead of a pipe: isatty()
 * and stdio's line buffering stay as they were. fds 1 and 2 on the same open
 * file (2>&1) share one channel, so their order is kept.
 *
 * The ring (a memfd) and the copier's wake-up eventfd stay open across exec,
 * named by MPINOTIFY_OUTPUT_RING with a key of the rank's launcher
 * variables: a wrapper's exec, or a child of the rank, maps the same ring;
 * a process of another rank (or the launcher itself) makes its own. */
#include "capture/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define RING_MAGIC 0x3130545550544f4dULL   /* "MOTPUT01" */
#define RING_DATA (64 * 1024)              /* about 200 lines of 300 bytes */
#define LINE_MAX_BYTES 400
#define ENV_NAME "MPINOTIFY_OUTPUT_RING"

typedef struct ring {
  uint64_t magic;
  uint64_t size;       /* bytes of data[] */
  uint64_t reserved;   /* bytes the copier has started to store (before its memcpy) */
  uint64_t written;    /* bytes stored completely */
  uint64_t sync_req;   /* a reader's request: drain what is pending */
  uint64_t sync_ack;   /* the last request the copier answered */
  char data[RING_DATA];
} ring;

static ring *the_ring;
static int wake_fd = -1;
static int ring_fd = -1;   /* the memfd, when this process made the ring */

/* One path from the rank's fd to where it went: `in` is the copier's end. */
typedef struct channel {
  int in, orig, app;   /* app: the rank's new end (pipe's write end or pty slave) */
  int fds[2], nfds;    /* which of 1 and 2 it serves */
  int open_in, open_out;
} channel;

/* ---- the copier (runs after fork: async-signal-safe calls only) -------------- */

/* n <= r->size: the copier reads at most that much at once. */
static void ring_put(ring *r, const char *p, size_t n)
{
  uint64_t at = __atomic_load_n(&r->written, __ATOMIC_SEQ_CST);
  __atomic_store_n(&r->reserved, at + n, __ATOMIC_SEQ_CST);   /* readers drop what we overwrite */
  size_t off = at % r->size, first = n < r->size - off ? n : r->size - off;
  memcpy(r->data + off, p, first);
  memcpy(r->data, p + first, n - first);
  __atomic_store_n(&r->written, at + n, __ATOMIC_SEQ_CST);
}

/* Every byte to the original fd: partial writes, EINTR, a non-blocking
 * original (EAGAIN: wait for room). A gone reader (EPIPE, EIO) ends the
 * output; the rank's bytes are still drained so it never blocks. */
static void pass_on(channel *c, const char *p, size_t n)
{
  while (c->open_out && n) {
    ssize_t w = write(c->orig, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
    } else if (w < 0 && errno == EAGAIN) {
      struct pollfd q = {c->orig, POLLOUT, 0};
      poll(&q, 1, 1000);
    } else if (w < 0 && errno != EINTR) {
      c->open_out = 0;
    }
  }
}

/* One read; 0 when the channel's input has ended. */
static int copy_some(channel *c, ring *r)
{
  static char buf[RING_DATA];
  ssize_t n = read(c->in, buf, sizeof buf);
  if (n > 0) {
    ring_put(r, buf, (size_t)n);   /* the ring first: a stuck reader of the original must not hide it */
    pass_on(c, buf, (size_t)n);
    return 1;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 1;
  c->open_in = 0;   /* EOF; EIO from a pty master whose slaves are all closed */
  return 0;
}

/* A reader asked: everything the rank wrote before it asked is in the ring. */
static void answer_sync(channel *ch, int nch, ring *r)
{
  uint64_t v;
  if (read(wake_fd, &v, sizeof v) < 0 && errno != EAGAIN)
    return;
  uint64_t req = __atomic_load_n(&r->sync_req, __ATOMIC_SEQ_CST);
  for (int i = 0; i < nch; i++) {
    int pending = 0;
    while (ch[i].open_in && ioctl(ch[i].in, FIONREAD, &pending) == 0 && pending > 0)
      copy_some(&ch[i], r);
  }
  __atomic_store_n(&r->sync_ack, req, __ATOMIC_SEQ_CST);
}

static void close_all_but(const int *keep, int n)
{
  unsigned lo = 0;
  for (int i = 0; i < n; i++) {   /* keep is sorted */
    if ((unsigned)keep[i] > lo)
      mpn__close_between(lo, (unsigned)keep[i] - 1);
    lo = (unsigned)keep[i] + 1;
  }
  mpn__close_between(lo, ~0U);
}

static void sort_fds(int *a, int n)
{
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && a[k - 1] > a[k]; k--) {
      int t = a[k];
      a[k] = a[k - 1];
      a[k - 1] = t;
    }
}

/* The copier's life. Async-signal-safe only (the parent may have threads):
 * no malloc, stdio or locks. It ignores the signals that end a job's
 * processes politely (it ends at EOF, after the rank) and SIGPIPE (a gone
 * reader is an error from write). */
static void copier_main(channel *ch, int nch)
{
  static const int quiet[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM};
  struct sigaction ign;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  for (size_t i = 0; i < sizeof quiet / sizeof quiet[0]; i++)
    sigaction(quiet[i], &ign, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  prctl(PR_SET_NAME, "mpn-output", 0, 0, 0);
  int keep[5], nkeep = 0;
  keep[nkeep++] = wake_fd;
  for (int i = 0; i < nch; i++) {
    keep[nkeep++] = ch[i].in;
    keep[nkeep++] = ch[i].orig;
  }
  for (int i = 0; i < nch; i++)
    close(ch[i].app);   /* our own input's write end: kept open, the copier would never see EOF */
  sort_fds(keep, nkeep);
  close_all_but(keep, nkeep);
  for (int i = 0; i < nch; i++)
    fcntl(ch[i].in, F_SETFL, fcntl(ch[i].in, F_GETFL) | O_NONBLOCK);
  for (;;) {
    struct pollfd p[3];
    int np = 0, live = 0;
    for (int i = 0; i < nch; i++) {
      p[np++] = (struct pollfd){ch[i].open_in ? ch[i].in : -1, POLLIN, 0};
      live += ch[i].open_in;
    }
    if (!live)
      _exit(0);
    p[np++] = (struct pollfd){wake_fd, POLLIN, 0};
    if (poll(p, (nfds_t)np, -1) < 0)
      continue;
    for (int i = 0; i < nch; i++)
      if (p[i].revents)
        copy_some(&ch[i], the_ring);
    if (p[np - 1].revents)
      answer_sync(ch, nch, the_ring);
  }
}

/* ---- setting it up in the rank ----------------------------------------------- */

static int same_file(int a, int b)
{
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* A pty like the original terminal, raw so bytes pass unchanged. */
static int open_pty(int orig, int *master, int *slave)
{
  *master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0)
    return -1;
  char name[64];
  if (grantpt(*master) || unlockpt(*master) || ptsname_r(*master, name, sizeof name) ||
      (*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    close(*master);
    return -1;
  }
  struct termios t;
  struct winsize ws;
  if (tcgetattr(*slave, &t) == 0) {
    cfmakeraw(&t);
    tcsetattr(*slave, TCSANOW, &t);
  }
  if (ioctl(orig, TIOCGWINSZ, &ws) == 0)
    ioctl(*slave, TIOCSWINSZ, &ws);
  return 0;
}

static int open_channel(channel *c, int fd)
{
  memset(c, 0, sizeof *c);
  c->fds[c->nfds++] = fd;
  c->open_in = c->open_out = 1;
  c->orig = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (c->orig < 0)
    return -1;
  int p[2];
  if (isatty(fd) ? open_pty(fd, &p[0], &p[1]) : pipe2(p, O_CLOEXEC)) {
    close(c->orig);
    return -1;
  }
  c->in = p[0];
  c->app = p[1];
  return 0;
}

static void close_channel(channel *c)
{
  close(c->in);
  close(c->orig);
  close(c->app);
}

static ring *map_ring(int fd)
{
  void *m = mmap(NULL, sizeof(ring), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return m == MAP_FAILED ? NULL : m;
}

/* The ring and the wake-up, kept across exec for the rank's own processes. */
static int make_ring(uint64_t key)
{
  int fd = memfd_create("mpinotify-output", 0);
  if (fd < 0)
    return -1;
  ring_fd = fd;
  wake_fd = eventfd(0, EFD_NONBLOCK);
  if (wake_fd < 0 || ftruncate(fd, sizeof(ring)) || !(the_ring = map_ring(fd))) {
    close(fd);
    if (wake_fd >= 0)
      close(wake_fd);
    wake_fd = ring_fd = -1;
    return -1;
  }
  the_ring->magic = RING_MAGIC;
  the_ring->size = RING_DATA;
  char v[64];
  snprintf(v, sizeof v, "%d,%d,%016llx", fd, wake_fd, (unsigned long long)key);
  setenv(ENV_NAME, v, 1);
  return 0;
}

static void drop_ring(void)
{
  unsetenv(ENV_NAME);
  munmap(the_ring, sizeof *the_ring);
  the_ring = NULL;
  close(wake_fd);
  close(ring_fd);
  wake_fd = ring_fd = -1;
}

/* The rank's fds handed to the copier; 0 when it runs. */
static int start_copier(channel *ch, int nch)
{
  fflush(stdout);
  fflush(stderr);
  pid_t mid = fork();
  if (mid < 0)
    return -1;
  if (mid == 0) {   /* the middle process: only fork and _exit, async-signal-safe */
    pid_t copier = fork();
    if (copier == 0)
      copier_main(ch, nch);
    _exit(copier < 0);   /* no copier: the rank keeps its own descriptors */
  }
  int status = 0;
  while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  for (int i = 0; i < nch; i++)
    for (int k = 0; k < ch[i].nfds; k++)
      dup2(ch[i].app, ch[i].fds[k]);
  return 0;
}

/* A ring named by the environment: this process is the rank's (a wrapper's
 * exec, a child). 1 when the variable is there, valid or not. */
static int join_ring(uint64_t key)
{
  const char *v = getenv(ENV_NAME);
  int fd = -1, wfd = -1;
  unsigned long long k = 0;
  if (!v || sscanf(v, "%d,%d,%llx", &fd, &wfd, &k) != 3 || k != key)
    return 0;   /* none, or another rank's (the launcher's, if it had one) */
  struct stat st;
  char link[64], path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", wfd);
  ssize_t n = readlink(path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  if (fstat(fd, &st) || st.st_size != (off_t)sizeof(ring) || strcmp(link, "anon_inode:[eventfd]"))
    return 1;   /* closed on the way (Python's subprocess): no ring, and no second copier */
  ring *r = map_ring(fd);
  if (r && r->magic == RING_MAGIC && r->size == RING_DATA) {
    the_ring = r;
    wake_fd = wfd;
  } else if (r) {
    munmap(r, sizeof *r);
  }
  return 1;
}

/* Threads of this process (/proc/self/stat's 20th field); 0 when unknown. */
static int thread_count(void)
{
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
  if (fd >= 0)
    close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  const char *p = strrchr(buf, ')');   /* the name may hold spaces */
  int field = 2, threads = 0;
  for (; p && *p && field < 20; p++)
    field += *p == ' ';
  return p && sscanf(p, "%d", &threads) == 1 ? threads : 0;
}

int mpn__output_start(uint64_t key)
{
  if (the_ring || join_ring(key))
    return the_ring ? 0 : -1;
  /* Only at a process's start: forked from a grown, threaded process (the library dlopen'ed late,
   * by Python's ctypes) the copier would pin a copy-on-write image of it for the rank's life. */
  if (thread_count() != 1)
    return -1;
  channel ch[2];
  int nch = 0;
  struct stat st;
  for (int fd = 1; fd <= 2; fd++) {
    if (fstat(fd, &st) != 0)
      continue;   /* closed: left alone */
    if (fd == 2 && nch && ch[0].fds[0] == 1 && same_file(1, 2)) {
      ch[0].fds[ch[0].nfds++] = 2;   /* 2>&1: one channel keeps their order */
      continue;
    }
    if (open_channel(&ch[nch], fd) == 0)
      nch++;
  }
  int rc = !nch || make_ring(key) != 0 ? -1 : start_copier(ch, nch);
  for (int i = 0; i < nch; i++)
    close_channel(&ch[i]);
  if (rc != 0 && the_ring)
    drop_ring();
  return rc;
}

int mpn__output_active(void)
{
  return the_ring != NULL;
}

/* ---- reading ----------------------------------------------------------------- */

/* Waits (at most wait_ms) until the copier has stored what was written. */
static void sync_copier(long wait_ms)
{
  uint64_t req = __atomic_add_fetch(&the_ring->sync_req, 1, __ATOMIC_SEQ_CST), one = 1;
  if (write(wake_fd, &one, sizeof one) != sizeof one)
    return;
  int64_t end = mpn__now_ns() + wait_ms * 1000000;
  while (__atomic_load_n(&the_ring->sync_ack, __ATOMIC_SEQ_CST) < req && mpn__now_ns() < end)
    usleep(500);
}

/* The ring's bytes that were not overwritten while they were copied;
 * *cut: the first line may have lost its start. */
static char *ring_copy(size_t *len, int *cut)
{
  ring *r = the_ring;
  char *out = malloc(r->size);
  if (!out)
    return NULL;
  uint64_t end = __atomic_load_n(&r->written, __ATOMIC_SEQ_CST);
  uint64_t start = end > r->size ? end - r->size : 0;
  for (uint64_t i = start; i < end; i++)
    out[i - start] = r->data[i % r->size];
  uint64_t lost = __atomic_load_n(&r->reserved, __ATOMIC_SEQ_CST);   /* bytes below lost - size are gone */
  uint64_t valid = lost > r->size && lost - r->size > start ? lost - r->size : start;
  if (valid > end)
    valid = end;
  memmove(out, out + (valid - start), end - valid);
  *len = end - valid;
  *cut = valid > 0;
  return out;
}

char *mpn__output_text(int max_lines, long wait_ms)
{
  if (!the_ring || max_lines <= 0)
    return NULL;
  sync_copier(wait_ms);
  size_t n = 0;
  int cut = 0;
  char *raw = ring_copy(&n, &cut);
  if (!raw)
    return NULL;
  size_t skip = 0;
  if (cut) {   /* a line without its start is no line of the program's */
    while (skip < n && raw[skip] != '\n')
      skip++;
    skip += skip < n;
  }
  char *text = mpn__output_lines(raw + skip, n - skip, max_lines);
  free(raw);
  return text;
}

/* ---- lines as a report shows them -------------------------------------------- */

/* Past an escape sequence starting at p[i] (ESC): CSI, OSC, or ESC with
 * intermediates and a final byte. Returns the index of its last byte. */
static size_t escape_end(const char *p, size_t n, size_t i)
{
  if (i + 1 >= n)
    return i;
  if (p[i + 1] == '[') {
    size_t k = i + 2;
    while (k < n && !((unsigned char)p[k] >= 0x40 && (unsigned char)p[k] <= 0x7e))
      k++;
    return k < n ? k : n - 1;
  }
  if (p[i + 1] == ']') {   /* ends at BEL or ESC \ */
    size_t k = i + 2;
    while (k < n && p[k] != '\a' && !(p[k] == 0x1b && k + 1 < n && p[k + 1] == '\\'))
      k++;
    return k < n && p[k] == 0x1b ? k + 1 : k < n ? k : n - 1;
  }
  size_t k = i + 1;
  while (k < n && (unsigned char)p[k] >= 0x20 && (unsigned char)p[k] <= 0x2f)
    k++;
  return k < n ? k : n - 1;
}

/* One line without escapes and control characters; a carriage return
 * (a progress bar redrawn) keeps what was written after it. */
static size_t clean_line(const char *p, size_t n, char *out)
{
  size_t k = 0;
  int redraw = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == 0x1b) {
      i = escape_end(p, n, i);
    } else if (c == '\r') {
      redraw = 1;
    } else if (c >= 0x20 || c == '\t') {
      if (redraw)
        k = 0;
      redraw = 0;
      out[k++] = (char)c;
    }
  }
  while (k && (out[k - 1] == ' ' || out[k - 1] == '\t'))
    k--;
  return k;
}

/* The library's own console panel (format/report.c), as mpinotify-run's
 * job_watch.c knows it: not the program's words. */
static int panel_line(const char *s, int *in_panel)
{
  int panel = !strncmp(s, "=== mpinotify: ", 15) || (*in_panel && (!strncmp(s, "| ", 2) || !strcmp(s, "|")));
  int end = *in_panel && !strcmp(s, "===");
  *in_panel = panel;
  return panel || end;
}

char *mpn__output_lines(const char *bytes, size_t n, int max_lines)
{
  char **lines = calloc((size_t)max_lines, sizeof *lines);
  char *tmp = malloc(n + 1);
  int count = 0, in_panel = 0;
  for (size_t at = 0; lines && tmp && at < n;) {
    size_t len = 0;
    while (at + len < n && bytes[at + len] != '\n')
      len++;
    size_t k = clean_line(bytes + at, len > MPN__OUTPUT_LINE_MAX ? MPN__OUTPUT_LINE_MAX : len, tmp);
    tmp[k] = '\0';
    at += len + 1;
    if (!k || panel_line(tmp, &in_panel))
      continue;
    free(lines[count % max_lines]);
    lines[count++ % max_lines] = mpn__utf8_sanitize(tmp, k);
  }
  mpn__buf b = mpn__buf_make(1024);
  int first = count > max_lines ? count - max_lines : 0;
  for (int i = first; lines && i < count; i++) {
    mpn__buf_add(&b, "%s%s", i > first ? "\n" : "", lines[i % max_lines] ? lines[i % max_lines] : "");
    free(lines[i % max_lines]);
  }
  free(lines);
  free(tmp);
  return b.p;
}
