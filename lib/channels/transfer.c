/* transfer.c - the one place libcurl is driven from: the engine's set of
 * running attempts (a curl multi handle), the options every request shares,
 * what a finished transfer says in curl-free terms, the relay's POST, and
 * URL parsing for channel specs. The layers above never see curl: its error
 * codes become mpn_codes here, and only curl's fixed descriptions leave this
 * file (its error buffer can hold the URL). */
#include "channels/channels.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

struct mpn__xfers {
  CURLM *multi;
};

void mpn__transfer_prime(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

mpn__xfers *mpn__xfers_new(void)
{
  mpn__xfers *s = calloc(1, sizeof *s);
  if (s && !(s->multi = curl_multi_init())) {
    free(s);
    s = NULL;
  }
  return s;
}

void mpn__xfers_free(mpn__xfers *s)
{
  if (s)
    curl_multi_cleanup(s->multi);
  free(s);
}

void mpn__xfers_wake(mpn__xfers *s)
{
  if (s)
    curl_multi_wakeup(s->multi);
}

void mpn__xfers_perform(mpn__xfers *s)
{
  int running = 0;
  curl_multi_perform(s->multi, &running);
}

void mpn__xfers_wait(mpn__xfers *s, long timeout_ms)
{
  curl_multi_poll(s->multi, NULL, 0, (int)timeout_ms, NULL);
}

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
  (void)p;
  (void)arg;
  return size * n;
}

mpn_code mpn__attempt_open(mpn__attempt *a, const mpn__xfer_opts *o)
{
  CURL *e = a->easy = curl_easy_init();
  if (!e)
    return MPN_E_NO_MEMORY;
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);   /* never touch the process's signals */
  curl_easy_setopt(e, CURLOPT_USERAGENT, "mpinotify/" MPN_VERSION_STRING);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->total_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https,smtp,smtps");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, o->collect ? o->collect : discard);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, o->arg);
  curl_easy_setopt(e, CURLOPT_PRIVATE, o->arg);
  if (o->ca_bundle)
    curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_bundle);
  return MPN_OK;
}

int mpn__xfers_add(mpn__xfers *s, mpn__attempt *a)
{
  return curl_multi_add_handle(s->multi, a->easy) == CURLM_OK ? 0 : -1;
}

void mpn__attempt_close(mpn__xfers *s, mpn__attempt *a)
{
  if (a->easy) {
    if (s)
      curl_multi_remove_handle(s->multi, a->easy);
    curl_easy_cleanup(a->easy);
  }
  curl_slist_free_all(a->headers);
  curl_slist_free_all(a->rcpt);
  curl_mime_free(a->mime);
  free(a->url);
  free(a->body);
  memset(a, 0, sizeof *a);
}

void mpn__attempt_relay(mpn__attempt *a, size_t len)
{
  a->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
  curl_easy_setopt(a->easy, CURLOPT_URL, a->url);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDS, a->body);
  curl_easy_setopt(a->easy, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(a->easy, CURLOPT_HTTPHEADER, a->headers);
  curl_easy_setopt(a->easy, CURLOPT_PROXY, "");   /* the launcher is inside the cluster, never behind a proxy */
  curl_easy_setopt(a->easy, CURLOPT_PROTOCOLS_STR, "http");
}

/* ---- what a finished transfer says ------------------------------------------- */

/* A failed transfer as an mpn_code, and whether another attempt may help. A
 * timeout before connecting is no route (the relay may help), after it the
 * service may have the request. */
static void classify(CURLcode code, int connected, mpn__xfer_result *r)
{
  r->retry = MPN__XFER_FINAL;
  switch (code) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    r->code = MPN_E_DNS, r->retry = MPN__XFER_AGAIN;
    break;
  case CURLE_COULDNT_CONNECT:
    r->code = MPN_E_CONNECT, r->retry = MPN__XFER_AGAIN;
    break;
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_USE_SSL_FAILED:
    r->code = MPN_E_TLS;
    break;
  case CURLE_OPERATION_TIMEDOUT:
    r->code = connected ? MPN_E_TIMEOUT : MPN_E_CONNECT;
    r->retry = MPN__XFER_AGAIN_IF_UNSENT;
    break;
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_RECV_ERROR:
    r->code = MPN_E_DELIVERY, r->retry = MPN__XFER_AGAIN_IF_UNSENT;
    break;
  default:
    r->code = MPN_E_DELIVERY;
  }
}

static void read_result(CURL *e, CURLcode code, mpn__xfer_result *r)
{
  memset(r, 0, sizeof *r);
  curl_off_t connect = 0, sent = 0, first = 0, total = 0, ra = -1;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect);
  curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &sent);   /* 0: the request never left */
  curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &first);
  curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &total);
  r->sent = sent != 0;
  r->connect_ms = (double)connect / 1e3;
  r->first_byte_ms = (double)first / 1e3;
  r->total_ms = (double)total / 1e3;
  r->retry_after_ms = -1;
  if (code == CURLE_OK && curl_easy_getinfo(e, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0 && ra < 86400)
    r->retry_after_ms = (long)ra * 1000;
  r->error = code == CURLE_OK ? "" : curl_easy_strerror(code);
  r->refused = code == CURLE_SEND_ERROR || code == CURLE_WEIRD_SERVER_REPLY || code == CURLE_LOGIN_DENIED;
  if (code != CURLE_OK)
    classify(code, connect != 0, r);
}

void *mpn__xfers_done(mpn__xfers *s, mpn__xfer_result *r)
{
  CURLMsg *m;
  int queued;
  while ((m = curl_multi_info_read(s->multi, &queued))) {
    void *arg = NULL;
    if (m->msg != CURLMSG_DONE || curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&arg) != CURLE_OK ||
        !arg)
      continue;
    read_result(m->easy_handle, m->data.result, r);
    return arg;
  }
  return NULL;
}

long mpn__relay_post_once(const char *url, const char *frame, size_t len, long timeout_ms, mpn__xfer_result *r)
{
  mpn__attempt a = {0};
  mpn__xfer_opts o = {.total_ms = timeout_ms, .connect_ms = timeout_ms};
  if (mpn__attempt_open(&a, &o) != MPN_OK || !(a.url = strdup(url)) || !(a.body = malloc(len ? len : 1))) {
    mpn__attempt_close(NULL, &a);
    return -1;
  }
  memcpy(a.body, frame, len);
  mpn__attempt_relay(&a, len);
  read_result(a.easy, curl_easy_perform(a.easy), r);
  mpn__attempt_close(NULL, &a);
  return r->code == MPN_OK ? r->status : 0;
}

/* ---- URLs ---------------------------------------------------------------------- */

/* curl's strings are curl_free'd: callers get malloc'd copies. */
static char *own(char *s)
{
  char *copy = s ? strdup(s) : NULL;
  curl_free(s);
  return copy;
}

char *mpn__url_escape(const char *s)
{
  return own(curl_easy_escape(NULL, s, 0));
}

char *mpn__url_unescape(const char *s, size_t n)
{
  return own(curl_easy_unescape(NULL, s, (int)n, NULL));
}

mpn_code mpn__url_parse(mpn__url *u, const char *url, const char **why)
{
  memset(u, 0, sizeof *u);
  CURLU *h = u->handle = curl_url();
  if (!h)
    return MPN_E_NO_MEMORY;
  const char *auth = strstr(url, "://");
  CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
  if (uc == CURLUE_OK && auth && strchr("/?#", auth[3]))
    uc = CURLUE_NO_HOST;   /* "https:///x": curl would take the path's first part as the host */
  if (uc != CURLUE_OK) {
    *why = curl_url_strerror(uc);
    return MPN_E_BAD_URL;
  }
  char *host = NULL, *path = NULL, *query = NULL;
  if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
    curl_free(host);
    *why = "no host";
    return MPN_E_BAD_URL;
  }
  curl_url_get(h, CURLUPART_PATH, &path, 0);
  int has_query = curl_url_get(h, CURLUPART_QUERY, &query, 0) == CURLUE_OK && query;
  u->host = own(host);
  u->path = path ? own(path) : strdup("/");
  u->query = own(query);
  return u->host && u->path && (u->query || !has_query) ? MPN_OK : MPN_E_NO_MEMORY;
}

char *mpn__url_rebuild(mpn__url *u, const char *query)
{
  char *full = NULL;
  if (curl_url_set(u->handle, CURLUPART_QUERY, query, 0) != CURLUE_OK ||
      curl_url_get(u->handle, CURLUPART_URL, &full, 0) != CURLUE_OK)
    return NULL;
  return own(full);
}

void mpn__url_free(mpn__url *u)
{
  curl_url_cleanup(u->handle);
  free(u->host);
  free(u->path);
  free(u->query);
  memset(u, 0, sizeof *u);
}
