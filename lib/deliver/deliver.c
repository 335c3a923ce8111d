/* deliver.c - sends one report to every channel at once (curl multi), so a
 * channel that hangs never delays another, and nothing runs past the
 * deadline the caller derives from the time budget. Errors name the channel
 * by its masked URL only. */
#include "core/mpn.h"

#include <curl/curl.h>
#include <stdlib.h>

typedef struct transfer {
  CURL *easy;
  const mpn__channel *ch;
  struct curl_slist *headers;
} transfer;

void mpn__deliver_prime(void)
{
  /* Loads OpenSSL and the CA store before any fault, not during one. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int finished_ok(transfer *t, CURLcode code)
{
  long status = 0;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (code == CURLE_OK && status >= 200 && status < 300) {
    mpn__log_debug("delivered to %s (HTTP %ld)", t->ch->masked, status);
    return 1;
  }
  if (code != CURLE_OK)
    mpn__log_error("delivery to %s failed: %s", t->ch->masked, curl_easy_strerror(code));
  else
    mpn__log_error("delivery to %s failed: HTTP %ld", t->ch->masked, status);
  return 0;
}

static int run_transfers(CURLM *multi, transfer *ts, int n, int64_t deadline)
{
  int running = n, delivered = 0;
  while (running > 0) {
    int64_t left_ms = (deadline - mpn__now_ns()) / 1000000;
    if (left_ms <= 0)
      break;
    curl_multi_perform(multi, &running);
    CURLMsg *m;
    int queued;
    while ((m = curl_multi_info_read(multi, &queued))) {
      if (m->msg != CURLMSG_DONE)
        continue;
      for (int i = 0; i < n; i++)
        if (ts[i].easy == m->easy_handle)
          delivered += finished_ok(&ts[i], m->data.result);
    }
    if (running > 0)
      curl_multi_poll(multi, NULL, 0, (int)(left_ms < 100 ? left_ms : 100), NULL);
  }
  if (running > 0)
    mpn__log_error("%d channel(s) did not answer within the time budget (MPINOTIFY_TIMEOUT_MS)", running);
  return delivered;
}

int mpn__deliver(const mpn__report *r, int64_t deadline)
{
  int delivered = 0, n = 0;
  char *body = NULL;
  transfer *ts = calloc((size_t)mpn__g.cfg.nchannels + 1, sizeof *ts);
  CURLM *multi = curl_multi_init();
  long timeout_ms = (long)((deadline - mpn__now_ns()) / 1000000);
  if (timeout_ms < 1)
    timeout_ms = 1;
  for (int i = 0; i < mpn__g.cfg.nchannels; i++) {
    const mpn__channel *ch = &mpn__g.cfg.channels[i];
    if (ch->kind == MPN__CH_CONSOLE) {
      mpn__console_send(r);
      delivered++;
      continue;
    }
    if (!body)
      body = mpn__report_json(r);
    if (!body || !ts || !multi)
      continue;
    ts[n].ch = ch;
    ts[n].easy = mpn__webhook_handle(ch, body, timeout_ms, &ts[n].headers);
    if (ts[n].easy && curl_multi_add_handle(multi, ts[n].easy) == CURLM_OK)
      n++;
  }
  if (n)
    delivered += run_transfers(multi, ts, n, deadline);
  for (int i = 0; i < n; i++) {
    curl_multi_remove_handle(multi, ts[i].easy);
    curl_easy_cleanup(ts[i].easy);
    curl_slist_free_all(ts[i].headers);
  }
  curl_multi_cleanup(multi);
  free(ts);
  free(body);
  return delivered;
}
