/* test_launcher.c - unit tests of lib/launcher/: the relay's HTTP listener
 * (server.c), driven over loopback TCP with curl and with raw bytes. */
#include "launcher/launcher.h"

#include "unit.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct relay_rec {
  char seen[256 * 1024];
  size_t len;
  atomic_int calls;
  int refuse;
} relay_rec;

static int relay_record(const char *plain, size_t len, void *arg)
{
  relay_rec *r = arg;
  r->len = len < sizeof r->seen ? len : sizeof r->seen;
  memcpy(r->seen, plain, r->len);
  atomic_fetch_add(&r->calls, 1);
  return r->refuse;
}

static size_t relay_collect(char *data, size_t size, size_t n, void *arg)
{
  char *out = arg;
  size_t have = strlen(out), add = size * n;
  if (have + add < 256) {
    memcpy(out + have, data, add);
    out[have + add] = '\0';
  }
  return size * n;
}

/* One request with curl; returns the status, the answer's body in out. */
static long relay_curl(int port, const char *method, const char *path, const char *body, size_t len, char *out)
{
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  long status = 0;
  out[0] = '\0';
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, relay_collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  /* curl's own threshold for "Expect: 100-continue" differs by version. */
  struct curl_slist *headers = len > 64 * 1024 ? curl_slist_append(NULL, "Expect: 100-continue") : NULL;
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    fprintf(stderr, "curl: %s\n", curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  return status;
}

static int relay_connect(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    close(fd);
    fd = -1;
  }
  CHECK(fd >= 0);
  return fd;
}

/* Raw bytes, then the answer's status line; 0 if the server closed without one. */
static int relay_raw(int port, const char *data, size_t len, int half_close)
{
  int fd = relay_connect(port);
  if (fd < 0)
    return -1;
  if (len)
    (void)!send(fd, data, len, MSG_NOSIGNAL);
  if (half_close)
    shutdown(fd, SHUT_WR);
  char buf[512];
  size_t have = 0;
  struct pollfd p = {fd, POLLIN, 0};
  while (have + 1 < sizeof buf && poll(&p, 1, 20000) == 1) {
    ssize_t n = recv(fd, buf + have, sizeof buf - 1 - have, 0);
    if (n <= 0)
      break;
    have += (size_t)n;
  }
  buf[have] = '\0';
  close(fd);
  int status = 0;
  if (have && sscanf(buf, "HTTP/1.1 %d ", &status) != 1)
    status = -2;
  return status;
}

TEST(relay_server_http)
{
  static relay_rec rec;
  char err[256], out[256];
  int port = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mpn__relay_server *s = mpn__relay_server_start(relay_key, relay_record, &rec, &port, err, sizeof err);
  CHECK(s != NULL && port > 0);
  if (!s)
    return;
  const char msg[] = "{\"id\":\"msg_1\"}";
  size_t flen = 0;
  char *frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK_STR(out, "{\"accepted\":true}\n");
  CHECK(atomic_load(&rec.calls) == 1 && rec.len == strlen(msg) && !memcmp(rec.seen, msg, rec.len));
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"replayed\"}\n");
  free(frame);
  CHECK(relay_curl(port, "POST", "/relay", "garbage", 7, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"malformed\"}\n");
  long acc = -1, rej = -1;
  mpn__relay_server_counts(s, &acc, &rej);
  CHECK(acc == 1 && rej == 2);

  unsigned char other[32];
  mpn__relay_keygen(other);
  frame = mpn__relay_seal(other, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 403);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"forged\"}\n");
  free(frame);
  CHECK(relay_curl(port, "GET", "/relay", NULL, 0, out) == 405);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"method not allowed\"}\n");
  CHECK(relay_curl(port, "POST", "/other", "x", 1, out) == 404);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"not found\"}\n");
  CHECK(relay_curl(port, "POST", "/relay?x", "x", 1, out) == 404);

  /* Sent with "Expect: 100-continue": the server says go on. */
  size_t big_len = 200 * 1024;
  char *big = malloc(big_len);
  for (size_t i = 0; i < big_len; i++)
    big[i] = (char)('a' + i % 26);
  frame = mpn__relay_seal(relay_key, big, big_len, &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK(rec.len == big_len && !memcmp(rec.seen, big, big_len));
  free(frame);
  free(big);

  rec.refuse = 1;
  frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 503);
  CHECK_STR(out, "{\"accepted\":false,\"error\":\"busy\"}\n");
  free(frame);

  static const struct { const char *req; int status; } raw[] = {
    {"POST /relay HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 411},
    {"POST /relay HTTP/1.1\r\nHost: x\r\n\r\n", 411},
    {"POST /relay HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc", 411},
    {"POST /relay HTTP/1.1\r\nContent-Length: 4194305\r\n\r\n", 413},
    {"POST /relay HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413},
    {"POST /relay HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
    {"POST /relay HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxy", 400},
    {"POST /relay HTTP/1.1\r\nno colon\r\n\r\n", 400},
    {"POST /relay\r\n\r\n", 400},
    {"POST  /relay HTTP/1.1\r\n\r\n", 400},
    {"\r\n\r\n", 400},
    {"POST /relay HTTP/1.1\nContent-Length: 3\n\nabc", 403},
    {"POST /relay HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 0},   /* body cut short: no answer */
  };
  for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
    int got = relay_raw(port, raw[i].req, strlen(raw[i].req), 1);
    if (got != raw[i].status)
      fprintf(stderr, "raw request %zu: status %d, expected %d\n", i, got, raw[i].status);
    CHECK(got == raw[i].status);
  }
  char *huge = malloc(10000);
  memset(huge, 'h', 10000);
  memcpy(huge, "POST /relay HTTP/1.1\r\nX: ", 25);
  CHECK(relay_raw(port, huge, 10000, 1) == 431);
  free(huge);
  mpn__relay_server_counts(s, &acc, &rej);
  CHECK(acc == 2 && rej == 4);
  mpn__relay_server_stop(s);
  curl_global_cleanup();
}

/* Random bytes, stalled and trickling clients: the server answers or
 * closes, never crashes, and still serves a genuine frame afterwards. */
TEST(relay_server_robust)
{
  static relay_rec rec;
  char err[256], out[256];
  int port = 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mpn__relay_server *s = mpn__relay_server_start(relay_key, relay_record, &rec, &port, err, sizeof err);
  CHECK(s != NULL);
  if (!s)
    return;
  unsigned seed = 777;
  char buf[3000];
  for (int round = 0; round < 300; round++) {
    size_t n = 0, len = (size_t)(round * 37) % sizeof buf;
    if (round % 3 == 0)
      n = (size_t)snprintf(buf, sizeof buf, "POST /relay HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", len / 2);
    for (; n < len; n++) {
      seed = seed * 1103515245u + 12345u;
      buf[n] = round % 3 == 1 ? "POST /relay HTTP/1.1\r\n:\n"[(seed >> 16) % 24] : (char)(seed >> 16);
    }
    int status = relay_raw(port, buf, len, 1);
    CHECK(status >= 0);   /* an answer with a status line, or none */
  }
  /* A client that stalls mid-headers is answered 408 once its deadline passes. */
  const char part[] = "POST /relay HTTP/1.1\r\nContent-Le";
  CHECK(relay_raw(port, part, sizeof part - 1, 0) == 408);

  size_t flen = 0;
  char *frame = mpn__relay_seal(relay_key, "after", 5, &flen);
  CHECK(relay_curl(port, "POST", "/relay", frame, flen, out) == 200);
  CHECK(rec.len == 5 && !memcmp(rec.seen, "after", 5));
  free(frame);
  /* Stopping while a client holds a connection open does not wait for it. */
  int fd = relay_connect(port);
  (void)!send(fd, "POST", 4, MSG_NOSIGNAL);
  mpn__relay_server_stop(s);
  close(fd);
  curl_global_cleanup();
}
