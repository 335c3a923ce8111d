/* server.c - the relay's HTTP listener, in the launcher's process.
 *
 * Ranks that cannot reach a service POST a sealed frame (seal.c) to
 * http://launch-node:PORT/relay. The server is deliberately small: HTTP/1.1,
 * one request per connection, Content-Length bodies only, one connection at a
 * time in its own thread (a deep backlog: every rank says hello at MPI_Init,
 * relay/notify.c). Each connection has a hard 5 s deadline for its
 * request, so a client that stalls or trickles bytes costs at most that much.
 * It listens on every interface because the ranks are on other nodes: the
 * seal, not the network, decides what gets in. Frame contents are never
 * logged (they can hold secrets).
 *
 * Answers: 200 {"accepted":true}; 403 {"accepted":false,"error":WHY} when the
 * frame does not open (WHY from mpn__relay_open); 503 "busy" when the callback
 * refuses; 400, 404, 405, 408, 411, 413, 431 for requests that are not ours.
 */
#include "core/mpn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_DEADLINE_MS 5000      /* to read one request, headers and body */
#define SEND_GRACE_MS 1000         /* to answer, even when the read used up its deadline */
#define DRAIN_MS 500               /* to swallow an unread body so the answer is not reset away */
#define DRAIN_MAX (256 * 1024)
#define IDLE_POLL_MS 500           /* the stop pipe wakes us; this only bounds each wait */
#define HEADER_MAX 8192
#define BODY_MAX (4L * 1024 * 1024)

struct mpn__relay_server {
  int listen_fd;
  int stop_pipe[2];
  atomic_int stop;
  pthread_t thread;
  unsigned char key[32];
  mpn__relay_accept_fn fn;
  void *arg;
  atomic_long accepted, rejected;
};

/* One request being read. */
typedef struct conn {
  mpn__relay_server *s;
  int fd;
  int64_t deadline_ns;
  char head[HEADER_MAX + 1];
  size_t head_len;     /* bytes in head, possibly past the blank line */
  size_t head_end;     /* offset just past the blank line, 0 until found */
  char *body;
  long body_len;       /* Content-Length */
  int expect_continue;
  int complete;        /* the whole request was read */
} conn;

static void set_err(char *err, size_t errlen, const char *what)
{
  if (err && errlen)
    snprintf(err, errlen, "relay: %s: %s", what, strerror(errno));
}

/* Waits for `events` on fd until the deadline or a stop request. 1: ready,
 * 0: deadline passed, -1: stopping or the connection failed. */
static int wait_fd(mpn__relay_server *s, int fd, short events, int64_t deadline_ns)
{
  for (;;) {
    int64_t left_ms = (deadline_ns - mpn__now_ns()) / 1000000;
    if (left_ms <= 0)
      return 0;
    struct pollfd p[2] = {{fd, events, 0}, {s->stop_pipe[0], POLLIN, 0}};
    int n = poll(p, 2, left_ms > IDLE_POLL_MS ? IDLE_POLL_MS : (int)left_ms);
    if (atomic_load(&s->stop))
      return -1;
    if (n < 0 && errno != EINTR)
      return -1;
    if (n > 0 && p[0].revents)
      return 1;   /* readable, writable, or an error recv/send will report */
  }
}

/* Sends all of buf by the deadline; -1 if it could not. */
static int send_all(mpn__relay_server *s, int fd, const char *buf, size_t len, int64_t deadline_ns)
{
  while (len) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      buf += n, len -= (size_t)n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    if (wait_fd(s, fd, POLLOUT, deadline_ns) != 1)
      return -1;
  }
  return 0;
}

/* Reads what is left of an unwanted body for a moment: closing a socket
 * with unread input resets it, and the client would lose our answer. */
static void drain(mpn__relay_server *s, int fd)
{
  char buf[4096];
  int64_t deadline_ns = mpn__now_ns() + DRAIN_MS * 1000000LL;
  size_t total = 0;
  shutdown(fd, SHUT_WR);
  while (total < DRAIN_MAX && wait_fd(s, fd, POLLIN, deadline_ns) == 1) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
      break;
    total += n > 0 ? (size_t)n : 0;
  }
}

/* Each answer's status line and the JSON body's error word. */
static const struct answer {
  int status;
  const char *text, *error;
} answers[] = {
  {200, "OK", NULL},
  {400, "Bad Request", "bad request"},
  {403, "Forbidden", "forged"},   /* the error is mpn__relay_open's why */
  {404, "Not Found", "not found"},
  {405, "Method Not Allowed", "method not allowed"},
  {408, "Request Timeout", "timeout"},
  {411, "Length Required", "length required"},
  {413, "Content Too Large", "too large"},
  {431, "Request Header Fields Too Large", "headers too large"},
  {503, "Service Unavailable", "busy"},
};

/* One answer, then the connection ends. `why` overrides the status's own
 * error word (403: why the frame did not open). */
static void respond(conn *c, int status, const char *why)
{
  size_t i = 0, last = sizeof answers / sizeof answers[0] - 1;
  while (i < last && answers[i].status != status)
    i++;
  status = answers[i].status;   /* anything unlisted is 503 */
  char body[128], msg[512];
  const char *error = answers[i].error, *text = answers[i].text;
  if (why)
    error = why;
  if (error)
    snprintf(body, sizeof body, "{\"accepted\":false,\"error\":\"%s\"}\n", error);
  else
    snprintf(body, sizeof body, "{\"accepted\":true}\n");
  int n = snprintf(msg, sizeof msg,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "%sConnection: close\r\n\r\n%s",
                   status, text, strlen(body), status == 405 ? "Allow: POST\r\n" : "", body);
  int64_t deadline_ns = mpn__now_ns() + SEND_GRACE_MS * 1000000LL;
  if (c->deadline_ns > deadline_ns)
    deadline_ns = c->deadline_ns;
  if (send_all(c->s, c->fd, msg, (size_t)n, deadline_ns) == 0 && !c->complete)
    drain(c->s, c->fd);
}

/* Reads into head until the blank line ending the headers. 0 when found,
 * otherwise the status to answer (0 is never a status; -1: just close). */
static int read_head(conn *c)
{
  while (!c->head_end) {
    if (c->head_len == HEADER_MAX)
      return 431;
    int w = wait_fd(c->s, c->fd, POLLIN, c->deadline_ns);
    if (w <= 0)
      return w == 0 ? 408 : -1;
    ssize_t n = recv(c->fd, c->head + c->head_len, HEADER_MAX - c->head_len, MSG_DONTWAIT);
    if (n == 0)
      return -1;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        continue;
      return -1;
    }
    size_t from = c->head_len >= 3 ? c->head_len - 3 : 0;
    c->head_len += (size_t)n;
    for (size_t i = from; i + 1 < c->head_len && !c->head_end; i++) {
      if (c->head[i] == '\n' && c->head[i + 1] == '\n')
        c->head_end = i + 2;
      else if (c->head[i] == '\n' && c->head[i + 1] == '\r' && i + 2 < c->head_len && c->head[i + 2] == '\n')
        c->head_end = i + 3;
    }
  }
  return 0;
}

/* Next line of the header block at *p (ended by \n, optional \r stripped),
 * NUL-terminated in place; NULL at the blank line. */
static char *next_line(char **p)
{
  char *line = *p, *nl = strchr(line, '\n');
  if (!nl)
    return NULL;
  *p = nl + 1;
  *nl = '\0';
  if (nl > line && nl[-1] == '\r')
    nl[-1] = '\0';
  return *line ? line : NULL;
}

/* Content-Length: digits only, no sign. Past BODY_MAX it stops counting:
 * anything above is too large, however large. */
static long parse_length(const char *v)
{
  long n = 0;
  if (!*v)
    return -1;
  for (; *v; v++) {
    if (*v < '0' || *v > '9')
      return -1;
    if (n <= BODY_MAX)
      n = n * 10 + (*v - '0');
  }
  return n;
}

static char *trim(char *v)
{
  while (*v == ' ' || *v == '\t')
    v++;
  size_t n = strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    v[--n] = '\0';
  return v;
}

/* The headers that matter to us. 0 or the status to answer. */
static int parse_headers(conn *c, char *p)
{
  int chunked = 0;
  c->body_len = -1;
  for (char *line; (line = next_line(&p));) {
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
      return 400;
    *colon = '\0';
    char *v = trim(colon + 1);
    if (!strcasecmp(line, "Content-Length")) {
      long n = parse_length(v);
      if (n < 0 || (c->body_len >= 0 && c->body_len != n))
        return 400;
      c->body_len = n;
    } else if (!strcasecmp(line, "Transfer-Encoding")) {
      chunked = 1;   /* any coding ends in chunked or in reading until close: both need a length */
    } else if (!strcasecmp(line, "Expect")) {
      c->expect_continue = !strcasecmp(v, "100-continue");
    }
  }
  if (chunked || c->body_len < 0)
    return 411;
  return c->body_len > BODY_MAX ? 413 : 0;
}

/* Request line and headers. 0 or the status to answer. */
static int parse_request(conn *c)
{
  if (memchr(c->head, '\0', c->head_end))
    return 400;
  char saved = c->head[c->head_end];
  c->head[c->head_end] = '\0';
  char *p = c->head, *line = next_line(&p);
  char *sp1 = line ? strchr(line, ' ') : NULL, *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
  int status = 0;
  if (!sp2 || strchr(sp2 + 1, ' ') || strncmp(sp2 + 1, "HTTP/1.", 7))
    status = 400;
  else {
    *sp1 = *sp2 = '\0';
    if (strcmp(sp1 + 1, "/relay"))
      status = 404;
    else if (strcmp(line, "POST"))
      status = 405;
    else
      status = parse_headers(c, p);
  }
  c->head[c->head_end] = saved;
  return status;
}

/* The body: what followed the headers in head, then the rest. 0 or a status. */
static int read_body(conn *c)
{
  size_t have = c->head_len - c->head_end, want = (size_t)c->body_len;
  c->body = malloc(want ? want : 1);
  if (!c->body)
    return 503;
  if (have > want)
    have = want;   /* a second request in the same packet: one per connection, ignored */
  memcpy(c->body, c->head + c->head_end, have);
  static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (have < want && c->expect_continue && send_all(c->s, c->fd, go_on, sizeof go_on - 1, c->deadline_ns))
    return -1;
  while (have < want) {
    int w = wait_fd(c->s, c->fd, POLLIN, c->deadline_ns);
    if (w <= 0)
      return w == 0 ? 408 : -1;
    ssize_t n = recv(c->fd, c->body + have, want - have, MSG_DONTWAIT);
    if (n == 0)
      return -1;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
      return -1;
    have += n > 0 ? (size_t)n : 0;
  }
  c->complete = 1;
  return 0;
}

/* Opens the frame and hands the message over. */
static void deliver(conn *c)
{
  mpn__relay_server *s = c->s;
  const char *why = NULL;
  size_t len = 0;
  char *plain = mpn__relay_open(s->key, c->body, (size_t)c->body_len, &len, &why);
  if (!plain) {
    atomic_fetch_add(&s->rejected, 1);
    respond(c, 403, why ? why : "malformed");
    return;
  }
  int busy = s->fn(plain, len, s->arg);
  OPENSSL_cleanse(plain, len);
  free(plain);
  if (!busy)
    atomic_fetch_add(&s->accepted, 1);
  respond(c, busy ? 503 : 200, NULL);
}

static void serve(mpn__relay_server *s, int fd)
{
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return;
  c->s = s;
  c->fd = fd;
  c->deadline_ns = mpn__now_ns() + CONN_DEADLINE_MS * 1000000LL;
  int status = read_head(c);
  if (!status)
    status = parse_request(c);
  if (!status)
    status = read_body(c);
  if (!status)
    deliver(c);
  else if (status > 0)
    respond(c, status, NULL);
  free(c->body);
  free(c);
}

static void *server_main(void *arg)
{
  mpn__relay_server *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd p[2] = {{s->listen_fd, POLLIN, 0}, {s->stop_pipe[0], POLLIN, 0}};
    if (poll(p, 2, IDLE_POLL_MS) <= 0 || !(p[0].revents & POLLIN))
      continue;
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        mpn__sleep_ms(100);   /* the backlog stays readable: do not spin on it */
      continue;
    }
    serve(s, fd);
    close(fd);
  }
  return NULL;
}

static int listen_any(mpn__relay_server *s, int *port, char *err, size_t errlen)
{
  s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->listen_fd < 0) {
    set_err(err, errlen, "socket");
    return -1;
  }
  int one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY), .sin_port = 0};
  socklen_t alen = sizeof a;
  if (setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->listen_fd, SOMAXCONN) < 0 ||
      getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0) {
    set_err(err, errlen, "listen");
    return -1;
  }
  *port = ntohs(a.sin_port);
  return 0;
}

/* The thread starts with the application's asynchronous signals blocked, so
 * they go to its threads. Faults stay deliverable: blocking them would turn a
 * bug here into a silent kill instead of a crash report. */
static int start_thread(mpn__relay_server *s)
{
  sigset_t all, old;
  sigfillset(&all);
  static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++)
    sigdelset(&all, faults[i]);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&s->thread, NULL, server_main, s);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rc;
}

static void server_free(mpn__relay_server *s)
{
  if (s->listen_fd >= 0)
    close(s->listen_fd);
  for (int i = 0; i < 2; i++)
    if (s->stop_pipe[i] >= 0)
      close(s->stop_pipe[i]);
  OPENSSL_cleanse(s->key, sizeof s->key);
  free(s);
}

mpn__relay_server *mpn__relay_server_start(const unsigned char key[32], mpn__relay_accept_fn fn, void *arg,
                                           int *port, char *err, size_t errlen)
{
  if (err && errlen)
    err[0] = '\0';
  if (!key || !fn || !port) {
    errno = EINVAL;
    set_err(err, errlen, "start");
    return NULL;
  }
  mpn__relay_server *s = calloc(1, sizeof *s);
  if (!s) {
    set_err(err, errlen, "start");
    return NULL;
  }
  s->listen_fd = s->stop_pipe[0] = s->stop_pipe[1] = -1;
  memcpy(s->key, key, sizeof s->key);
  s->fn = fn;
  s->arg = arg;
  if (listen_any(s, port, err, errlen) < 0)
    goto fail;
  if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
    set_err(err, errlen, "pipe");
    goto fail;
  }
  if ((errno = start_thread(s)) != 0) {
    set_err(err, errlen, "thread");
    goto fail;
  }
  return s;
fail:
  server_free(s);
  return NULL;
}

void mpn__relay_server_stop(mpn__relay_server *s)
{
  if (!s)
    return;
  atomic_store(&s->stop, 1);
  ssize_t ignored = write(s->stop_pipe[1], "x", 1);   /* full pipe: already woken */
  (void)ignored;
  pthread_join(s->thread, NULL);
  server_free(s);
}

void mpn__relay_server_counts(const mpn__relay_server *s, long *accepted, long *rejected)
{
  mpn__relay_server *m = (mpn__relay_server *)s;   /* C11's atomic_load takes a non-const pointer */
  if (accepted)
    *accepted = s ? atomic_load(&m->accepted) : 0;
  if (rejected)
    *rejected = s ? atomic_load(&m->rejected) : 0;
}
