/* webhook.c - the generic JSON webhook channel: the report's stable JSON
 * (format/json.c) POSTed as is. TLS verification stays on; a CA bundle can be
 * named with MPINOTIFY_CA_BUNDLE. */
#include "core/mpn.h"

#include <curl/curl.h>

void *mpn__webhook_handle(const mpn__channel *ch, const char *body, long timeout_ms, struct curl_slist **headers)
{
  CURL *e = curl_easy_init();
  if (!e)
    return NULL;
  *headers = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(e, CURLOPT_URL, ch->target);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);   /* never touch the process's signals */
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, *headers);
  curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "mpinotify/" MPN_VERSION_STRING);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (mpn__g.cfg.ca_bundle)
    curl_easy_setopt(e, CURLOPT_CAINFO, mpn__g.cfg.ca_bundle);
  return e;
}

