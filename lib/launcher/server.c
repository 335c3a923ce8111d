/* server.c - the relay's HTTP listener, in the launcher's process.
 *
 * Ranks that cannot reach a service POST a sealed frame (seal.c) to
 * http://launch-node:PORT/relay. The server is deliberately small: HTTP/1.1,
 * one request per connection, Content-Length bodies only. Every rank says
 * hello at MPI_Init (runtime/launcher_notices.c), so thousands may connect at once: one
 * thread serves many connections together with poll(), never waiting on any
 * one of them, so a client that stalls or trickles bytes holds only its own
 * connection. Each connection has a hard 5 s deadline for its request (then
 * 408). At most CONN_MAX connections are open at once (fewer when the
 * process may open few descriptors: the delivery engine beside us needs its
 * sockets); the rest wait in a deep listen backlog rather than being refused.
 * Bodies held at once are capped too (BODIES_MAX): past it, 503 "busy".
 * The callback runs on this thread, one frame at a time.
 * It listens on every interface because the ranks are on other nodes: the
 * seal, not the network, decides what gets in. Frame contents are never
 * logged (they can hold secrets).
 *
 * Answers: 200 {"accepted":true}; 403 {"accepted":false,"error":WHY} when the
 * frame does not open (WHY from mpn__relay_open); 409 "claimed" and 410
 * "reported" when the callback says a failure is another rank's to report
 * (relay.c, claims); 503 "busy" when the callback refuses; 400, 404, 405, 408,
 * 411, 413, 431 for requests that are not ours.
 */
#include "launcher/launcher.h"

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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONN_DEADLINE_MS 5000      /* to read one request, headers and body */
#define SEND_GRACE_MS 1000         /* to answer, even when the read used up its deadline */
#define DRAIN_MS 500               /* to swallow an unread body so the answer is not reset away */
#define DRAIN_MAX (256 * 1024)
#define IDLE_POLL_MS 500           /* the stop pipe wakes us; this only bounds each wait */
#define HEADER_MAX 8192
#define BODY_MAX (4L * 1024 * 1024)
#define CONN_MAX 1024              /* connections served at once; more wait in the backlog */
#define CONN_MIN 16                /* even under a tiny descriptor limit */
#define LISTEN_BACKLOG 4096        /* a whole job's hellos; the kernel clamps it to somaxconn */
#define ACCEPT_BATCH 64            /* accepted per wakeup, so the open connections are not starved */
#define ACCEPT_PAUSE_MS 100        /* out of descriptors: the backlog stays readable, do not spin on it */
#define BODIES_MAX (64L * 1024 * 1024)   /* body bytes held at once, over all connections */
#define OUT_MAX 640                /* a pending "100 Continue" and one answer */

/* Where a connection is: reading the request, answering, or swallowing
 * the rest of a body we did not read (closing over unread input resets the
 * connection and the client would lose our answer). */
typedef enum { ST_HEAD, ST_BODY, ST_SEND, ST_DRAIN, ST_DONE } conn_state;

/* One connection, from accept to close. */
typedef struct conn {
  int fd;
  conn_state state;
  int64_t deadline_ns; /* of the current state */
  char head[HEADER_MAX + 1];
  size_t head_len;     /* bytes in head, possibly past the blank line */
  size_t head_end;     /* offset just past the blank line, 0 until found */
  char *body;
  long body_len;       /* Content-Length */
  size_t body_have;
  int expect_continue;
  int complete;        /* the whole request was read */
  char out[OUT_MAX];   /* what is still to send */
  size_t out_len, out_sent;
  size_t drained;
} conn;

struct mpn__relay_server {
  int listen_fd;
  int stop_pipe[2];
  atomic_int stop;
  pthread_t thread;
  unsigned char key[32];
  mpn__relay_accept_fn fn;
  void *arg;
  atomic_long accepted, rejected;
  /* The server thread's own, never shared: */
  conn **conns;
  struct pollfd *pfds;  /* [0] stop pipe, [1] listener, [2 + i] conns[i] */
  int nconns, cap;
  long bodies;          /* body bytes held by all connections */
  int64_t accept_pause_until_ns;
};

static void set_err(char *err, size_t errlen, const char *what)
{
  if (err && errlen)
    snprintf(err, errlen, "relay: %s: %s", what, strerror(errno));
}

static int again(void)
{
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int64_t ms_from_now(long ms)
{
  return mpn__now_ns() + ms * 1000000LL;
}

/* Appends to what is still to send (a "100 Continue" may be pending when
 * the answer comes). */
static void queue_out(conn *c, const char *buf, size_t len)
{
  memmove(c->out, c->out + c->out_sent, c->out_len - c->out_sent);
  c->out_len -= c->out_sent;
  c->out_sent = 0;
  if (len > sizeof c->out - c->out_len)
    len = sizeof c->out - c->out_len;   /* cannot happen: answers are short */
  memcpy(c->out + c->out_len, buf, len);
  c->out_len += len;
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
  {409, "Conflict", "claimed"},
  {410, "Gone", "reported"},
  {503, "Service Unavailable", "busy"},   /* last: what anything unlisted becomes */
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
  queue_out(c, msg, (size_t)n);
  int64_t grace_ns = ms_from_now(SEND_GRACE_MS);
  c->state = ST_SEND;
  if (grace_ns > c->deadline_ns)
    c->deadline_ns = grace_ns;
}

/* Sends what it can of out without waiting. -1: the connection failed. */
static int send_some(conn *c)
{
  while (c->out_sent < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
      return again() ? 0 : -1;
    c->out_sent += (size_t)n;
  }
  return 0;
}

/* The answer went out: an unread body is swallowed for a moment first. */
static void answered(conn *c)
{
  if (c->complete) {
    c->state = ST_DONE;
    return;
  }
  shutdown(c->fd, SHUT_WR);
  c->state = ST_DRAIN;
  c->deadline_ns = ms_from_now(DRAIN_MS);
}

static void on_writable(conn *c)
{
  if (send_some(c) < 0)
    c->state = ST_DONE;
  else if (c->state == ST_SEND && c->out_sent == c->out_len)
    answered(c);
}

static void on_drain(conn *c)
{
  char buf[4096];
  ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && !again()))
    c->state = ST_DONE;
  c->drained += n > 0 ? (size_t)n : 0;
  if (c->drained >= DRAIN_MAX)
    c->state = ST_DONE;
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

static void drop_body(mpn__relay_server *s, conn *c)
{
  if (!c->body)
    return;
  s->bodies -= c->body_len;
  free(c->body);
  c->body = NULL;
}

/* Opens the frame and hands the message over. */
static void deliver(mpn__relay_server *s, conn *c)
{
  const char *why = NULL;
  size_t len = 0;
  char *plain = mpn__relay_open(s->key, c->body, (size_t)c->body_len, &len, &why);
  drop_body(s, c);
  if (!plain) {
    atomic_fetch_add(&s->rejected, 1);
    respond(c, 403, why ? why : "malformed");
    return;
  }
  int rc = s->fn(plain, len, s->arg);
  OPENSSL_cleanse(plain, len);
  free(plain);
  if (rc == 0)
    atomic_fetch_add(&s->accepted, 1);
  respond(c, rc == 0 ? 200 : rc == MPN__RELAY_CLAIMED || rc == MPN__RELAY_REPORTED ? rc : 503, NULL);
}

static void body_done(mpn__relay_server *s, conn *c)
{
  c->complete = 1;
  deliver(s, c);
}

/* The headers are in: the body is what followed them in head, then the
 * rest as it comes. Bodies held at once stay within BODIES_MAX: past it,
 * busy (the rank keeps its copy and tries again). */
static void start_body(mpn__relay_server *s, conn *c)
{
  size_t have = c->head_len - c->head_end, want = (size_t)c->body_len;
  if (s->bodies + c->body_len > BODIES_MAX || !(c->body = malloc(want ? want : 1))) {
    respond(c, 503, NULL);
    return;
  }
  s->bodies += c->body_len;
  if (have > want)
    have = want;   /* a second request in the same packet: one per connection, ignored */
  memcpy(c->body, c->head + c->head_end, have);
  c->body_have = have;
  c->state = ST_BODY;
  static const char go_on[] = "HTTP/1.1 100 Continue\r\n\r\n";
  if (have == want)
    body_done(s, c);
  else if (c->expect_continue)
    queue_out(c, go_on, sizeof go_on - 1);
}

static void on_body(mpn__relay_server *s, conn *c)
{
  size_t want = (size_t)c->body_len;
  ssize_t n = recv(c->fd, c->body + c->body_have, want - c->body_have, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && !again())) {
    c->state = ST_DONE;   /* cut short: no answer */
    return;
  }
  c->body_have += n > 0 ? (size_t)n : 0;
  if (c->body_have == want)
    body_done(s, c);
}

/* Looks for the blank line ending the headers in what just arrived (from
 * a little before it: the line ending may straddle two reads). */
static void find_head_end(conn *c, size_t from)
{
  for (size_t i = from; i + 1 < c->head_len && !c->head_end; i++) {
    if (c->head[i] == '\n' && c->head[i + 1] == '\n')
      c->head_end = i + 2;
    else if (c->head[i] == '\n' && c->head[i + 1] == '\r' && i + 2 < c->head_len && c->head[i + 2] == '\n')
      c->head_end = i + 3;
  }
}

static void on_head(mpn__relay_server *s, conn *c)
{
  ssize_t n = recv(c->fd, c->head + c->head_len, HEADER_MAX - c->head_len, MSG_DONTWAIT);
  if (n == 0 || (n < 0 && !again())) {
    c->state = ST_DONE;
    return;
  }
  if (n < 0)
    return;
  size_t from = c->head_len >= 3 ? c->head_len - 3 : 0;
  c->head_len += (size_t)n;
  find_head_end(c, from);
  int status = 0;
  if (c->head_end)
    status = parse_request(c);
  else if (c->head_len == HEADER_MAX)
    status = 431;
  if (status)
    respond(c, status, NULL);
  else if (c->head_end)
    start_body(s, c);
}

/* One connection's turn after poll: reads and writes what it can now. */
static void step(mpn__relay_server *s, conn *c, short revents)
{
  if ((revents & POLLOUT) || ((revents & (POLLERR | POLLHUP)) && c->state == ST_SEND))
    on_writable(c);
  if (!(revents & (POLLIN | POLLERR | POLLHUP)))
    return;
  if (c->state == ST_HEAD)
    on_head(s, c);
  else if (c->state == ST_BODY)
    on_body(s, c);
  else if (c->state == ST_DRAIN)
    on_drain(c);
}

/* Past its deadline: a request still being read is answered 408 (its
 * partial body freed now, not counted against others until the close); an
 * answer or a drain that did not finish ends there. */
static void expire(mpn__relay_server *s, conn *c, int64_t now_ns)
{
  if (c->state == ST_DONE || now_ns < c->deadline_ns)
    return;
  if (c->state == ST_HEAD || c->state == ST_BODY) {
    drop_body(s, c);
    respond(c, 408, NULL);
  } else {
    c->state = ST_DONE;
  }
}

/* While reading, also writing when a "100 Continue" is pending; while
 * answering, writing only (more input then is not ours to read yet). */
static short wanted(const conn *c)
{
  short out = c->out_sent < c->out_len ? POLLOUT : 0;
  return c->state == ST_SEND ? POLLOUT : (short)(POLLIN | out);
}

static void conn_free(mpn__relay_server *s, conn *c)
{
  drop_body(s, c);
  close(c->fd);
  free(c);
}

/* Closes the finished connections; the table stays dense. */
static void reap(mpn__relay_server *s)
{
  for (int i = 0; i < s->nconns;) {
    if (s->conns[i]->state != ST_DONE) {
      i++;
      continue;
    }
    conn_free(s, s->conns[i]);
    s->conns[i] = s->conns[--s->nconns];
  }
}

static void add_conn(mpn__relay_server *s, int fd)
{
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  c->fd = fd;
  c->state = ST_HEAD;
  c->deadline_ns = ms_from_now(CONN_DEADLINE_MS);
  s->conns[s->nconns++] = c;
}

/* Takes what waits in the backlog, up to the table's room. */
static void accept_pending(mpn__relay_server *s)
{
  for (int i = 0; i < ACCEPT_BATCH && s->nconns < s->cap; i++) {
    int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      add_conn(s, fd);
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
      s->accept_pause_until_ns = ms_from_now(ACCEPT_PAUSE_MS);
      return;
    }
    /* otherwise one client's failure (ECONNABORTED, a network error): next */
  }
}

/* The wait until the next deadline, within IDLE_POLL_MS; rounded up so a
 * deadline is past when we wake, not a moment before. */
static int poll_timeout(const mpn__relay_server *s, int64_t now_ns)
{
  int64_t next = now_ns + IDLE_POLL_MS * 1000000LL;
  for (int i = 0; i < s->nconns; i++)
    if (s->conns[i]->deadline_ns < next)
      next = s->conns[i]->deadline_ns;
  if (s->accept_pause_until_ns > now_ns && s->accept_pause_until_ns < next)
    next = s->accept_pause_until_ns;
  return next <= now_ns ? 0 : (int)((next - now_ns + 999999) / 1000000);
}

/* The listener is watched only while the table has room and accepting is
 * not paused: otherwise connections wait in the backlog, not in a spin. */
static void fill_pollfds(mpn__relay_server *s, int64_t now_ns)
{
  int listening = s->nconns < s->cap && now_ns >= s->accept_pause_until_ns;
  s->pfds[0] = (struct pollfd){s->stop_pipe[0], POLLIN, 0};
  s->pfds[1] = (struct pollfd){listening ? s->listen_fd : -1, POLLIN, 0};
  for (int i = 0; i < s->nconns; i++)
    s->pfds[2 + i] = (struct pollfd){s->conns[i]->fd, wanted(s->conns[i]), 0};
}

/* One round: wait, serve every connection that is ready, expire the late
 * ones, close the finished ones, then take new ones. */
static void serve_round(mpn__relay_server *s)
{
  int64_t now_ns = mpn__now_ns();
  fill_pollfds(s, now_ns);
  int n = poll(s->pfds, (nfds_t)(2 + s->nconns), poll_timeout(s, now_ns));
  if (atomic_load(&s->stop))
    return;
  if (n < 0 && errno != EINTR)
    mpn__sleep_ms(10);   /* ENOMEM: no spin; the deadlines below still apply */
  for (int i = 0; n > 0 && i < s->nconns; i++)
    if (s->pfds[2 + i].revents)
      step(s, s->conns[i], s->pfds[2 + i].revents);
  now_ns = mpn__now_ns();
  for (int i = 0; i < s->nconns; i++)
    expire(s, s->conns[i], now_ns);
  reap(s);
  if (n > 0 && (s->pfds[1].revents & POLLIN))
    accept_pending(s);
}

static void *server_main(void *arg)
{
  mpn__relay_server *s = arg;
  while (!atomic_load(&s->stop))
    serve_round(s);
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
      bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(s->listen_fd, LISTEN_BACKLOG) < 0 ||
      getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) < 0) {
    set_err(err, errlen, "listen");
    return -1;
  }
  *port = ntohs(a.sin_port);
  return 0;
}

/* Connections served at once: CONN_MAX, or half the descriptors the process
 * may open, so the delivery engine beside us still gets its sockets. */
static int conn_cap(void)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 2 >= CONN_MAX)
    return CONN_MAX;
  return rl.rlim_cur / 2 > CONN_MIN ? (int)(rl.rlim_cur / 2) : CONN_MIN;
}

static int alloc_table(mpn__relay_server *s, char *err, size_t errlen)
{
  s->cap = conn_cap();
  s->conns = calloc((size_t)s->cap, sizeof *s->conns);
  s->pfds = calloc((size_t)s->cap + 2, sizeof *s->pfds);
  if (s->conns && s->pfds)
    return 0;
  set_err(err, errlen, "start");
  return -1;
}

/* The thread starts with the application's asynchronous signals blocked, so
 * they go to its threads. Faults stay deliverable: blocking them would turn a
 * bug here into a silent kill instead of a crash report. */
static int start_thread(mpn__relay_server *s)
{
  return mpn__thread_start(&s->thread, NULL, server_main, s, 0, 0);
}

/* Also the connections still open at stop: their clients see the close. */
static void server_free(mpn__relay_server *s)
{
  for (int i = 0; i < s->nconns; i++)
    conn_free(s, s->conns[i]);
  free(s->conns);
  free(s->pfds);
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
  if (alloc_table(s, err, errlen) < 0 || listen_any(s, port, err, errlen) < 0)
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
