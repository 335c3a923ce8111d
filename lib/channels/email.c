/* email.c - email over SMTP with libcurl: smtp:// with STARTTLS required
 * (CURLUSESSL_ALL), or smtps://. Recipients in to=, sender in from=, the
 * password in the URL's userinfo or password= (which may be a reference). */
#include "core/mpn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const options[] = {"to", "from", "user", "password", "starttls", NULL};
static const char *const secrets[] = {"password", NULL};
static const char *const required[] = {"to", NULL};

static size_t read_body(char *buf, size_t size, size_t n, void *arg)
{
  mpn__attempt *a = arg;
  size_t left = a->upload_len - a->upload_off, want = size * n;
  size_t k = left < want ? left : want;
  memcpy(buf, a->body + a->upload_off, k);
  a->upload_off += k;
  return k;
}

static void add_recipients(const mpn__channel *ch, mpn__attempt *a)
{
  for (int i = 0; i < ch->nopts; i++) {
    if (strcmp(ch->opts[i].key, "to"))
      continue;
    for (const char *p = ch->opts[i].value; *p;) {
      size_t n = strcspn(p, ",; ");
      char rcpt[320];
      if (n && n < sizeof rcpt - 2) {
        snprintf(rcpt, sizeof rcpt, "<%.*s>", (int)n, p);
        a->rcpt = curl_slist_append(a->rcpt, rcpt);
      }
      p += n + strspn(p + n, ",; ");
    }
  }
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  const char *from = mpn__channel_opt(ch, "from");
  char *text = mpn__message_text(m, 0);
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", gmtime_r(&now, &tm));
  int len = asprintf(&a->body, "Date: %s\r\nFrom: %s\r\nTo: %s\r\nSubject: [mpinotify] %s\r\nMessage-ID: <%s@mpinotify>\r\n"
                     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n",
                     date, from ? from : "mpinotify", mpn__channel_opt(ch, "to"), mpn__message_title(m), m->id,
                     text ? text : "");
  free(text);
  if (len < 0) {
    a->body = NULL;
    return MPN_E_NO_MEMORY;
  }
  a->upload_len = (size_t)len;
  a->url = strdup(ch->url);
  add_recipients(ch, a);
  curl_easy_setopt(a->easy, CURLOPT_URL, a->url);
  curl_easy_setopt(a->easy, CURLOPT_MAIL_FROM, from ? from : "<>");
  curl_easy_setopt(a->easy, CURLOPT_MAIL_RCPT, a->rcpt);
  curl_easy_setopt(a->easy, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(a->easy, CURLOPT_READFUNCTION, read_body);
  curl_easy_setopt(a->easy, CURLOPT_READDATA, a);
  const char *tls = mpn__channel_opt(ch, "starttls");
  if (!strncmp(ch->url, "smtp://", 7) && !(tls && !strcmp(tls, "no")))
    curl_easy_setopt(a->easy, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
  if (mpn__channel_opt(ch, "user"))
    curl_easy_setopt(a->easy, CURLOPT_USERNAME, mpn__channel_opt(ch, "user"));
  if (mpn__channel_opt(ch, "password"))
    curl_easy_setopt(a->easy, CURLOPT_PASSWORD, mpn__channel_opt(ch, "password"));
  return a->url && a->rcpt ? MPN_OK : MPN_E_NO_MEMORY;
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  (void)ch, (void)body, (void)len;
  if (status == 250 || status == 0) {   /* 0: curl finished the whole dialogue without a final code */
    v->code = MPN_OK;
    return;
  }
  snprintf(v->detail, sizeof v->detail, "SMTP %ld", status);
  v->code = MPN_E_DELIVERY;
  v->retry = status >= 400 && status < 500;   /* 4xx: transient in SMTP */
}

const mpn__kind mpn__kind_email = {
  .name = "email", .options = options, .secrets = secrets, .required = required,
  .prepare = prepare, .judge = judge,
};
