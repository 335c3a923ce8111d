/* email.c - email over SMTP with libcurl. smtp:// requires STARTTLS
 * (CURLUSESSL_ALL; starttls=no allows plain SMTP for a local relay),
 * smtps:// is implicit TLS. One multipart/alternative message per report:
 * text/plain first, text/html second (RFC 2046: the plainest format first;
 * curl's smtp-mime.c example has them the other way round). SMTP 4xx
 * replies are retried, 5xx are not (RFC 5321 section 4.2.1). */
#include "channels/channels.h"

#include <curl/curl.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const options[] = {"to", "from", "user", "password", "starttls", NULL};
static const char *const secrets[] = {"password", NULL};
static const char *const required[] = {"to", NULL};

/* Bounds that keep one email well under common size limits (10 MiB and
 * more) even for a 10,000-rank job or a 1 MiB --message: about 260 KiB per
 * part. Facts and the title are short and never shortened. */
#define TEXT_MAX (192 * 1024)
#define RANKS_MAX (8 * 1024)
#define PROCS_MAX (32 * 1024)
#define TRACE_MAX (24 * 1024)
#define TITLE_MAX (16 * 1024)   /* a title is a line; this only bounds an absurd one */
#define SUBJECT_MAX 400         /* characters of the title in the Subject: header */
#define ADDR_MAX 320            /* RFC 5321: 64 + 1 + 255 */

#if LIBCURL_VERSION_NUM >= 0x080200
#define RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLOWFAILS
#else
#define RCPT_ALLOWFAILS CURLOPT_MAIL_RCPT_ALLLOWFAILS   /* its name before curl 8.2.0 */
#endif

/* ---- addresses ------------------------------------------------------------ */

/* A plain addr-spec "local@domain": no spaces, controls, brackets, quotes or
 * separators, so it cannot break out of a header or an SMTP command. */
static int addr_ok(const char *p, size_t n)
{
  const char *at = memchr(p, '@', n);
  if (n < 3 || n > ADDR_MAX || !at || at == p || at == p + n - 1 || memchr(at + 1, '@', (size_t)(p + n - at - 1)))
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c <= 0x20 || c == 0x7f || strchr("<>()[]\\\",;:", c))
      return 0;
  }
  return 1;
}

/* The to= options (repeatable; "," or ";" separated) as "<a@b>" entries.
 * *count: how many; *bad: 1-based index of the first invalid one, or 0. */
static struct curl_slist *recipients(const mpn__channel *ch, int *count, int *bad)
{
  struct curl_slist *list = NULL;
  *count = *bad = 0;
  for (int i = 0; i < ch->nopts; i++) {
    if (strcmp(ch->opts[i].key, "to"))
      continue;
    const char *p = ch->opts[i].resolved ? ch->opts[i].resolved : ch->opts[i].value;
    for (p += strspn(p, ",; \t"); *p; p += strspn(p, ",; \t")) {
      size_t n = strcspn(p, ",; \t");
      char rcpt[ADDR_MAX + 3];
      ++*count;
      if (!addr_ok(p, n)) {
        *bad = *bad ? *bad : *count;
      } else {
        snprintf(rcpt, sizeof rcpt, "<%.*s>", (int)n, p);
        struct curl_slist *grown = curl_slist_append(list, rcpt);
        if (!grown) {
          curl_slist_free_all(list);
          return NULL;
        }
        list = grown;
      }
      p += n;
    }
  }
  return list;
}

/* from= is "a@b" or "Display Name <a@b>"; default mpinotify@<hostname>. */
typedef struct sender {
  char addr[ADDR_MAX + 1];
  char name[256];   /* display name, "" if none */
} sender;

static int parse_from(const mpn__channel *ch, sender *s)
{
  const char *from = mpn__channel_opt(ch, "from");
  memset(s, 0, sizeof *s);
  if (!from) {
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0])
      strcpy(host, "localhost");
    snprintf(s->addr, sizeof s->addr, "mpinotify@%s", host);
    if (!addr_ok(s->addr, strlen(s->addr)))
      strcpy(s->addr, "mpinotify@localhost");
    return 0;
  }
  for (const char *c = from; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      return -1;   /* a line break would inject headers */
  const char *lt = strrchr(from, '<');
  const char *addr = from;
  size_t n = strlen(from);
  if (lt) {
    const char *gt = strchr(lt, '>');
    if (!gt || gt[1])
      return -1;
    addr = lt + 1;
    n = (size_t)(gt - addr);
    size_t k = (size_t)(lt - from);
    while (k && from[k - 1] == ' ')
      k--;
    size_t skip = strspn(from, " ");
    if (k > skip && k - skip < sizeof s->name)
      memcpy(s->name, from + skip, k - skip);
    else if (k > skip)
      return -1;
  }
  if (!addr_ok(addr, n))
    return -1;
  memcpy(s->addr, addr, n);
  return 0;
}

static int plain_smtp(const mpn__channel *ch)
{
  const char *v = mpn__channel_opt(ch, "starttls");
  return !strncmp(ch->url, "smtp://", 7) && v && (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false"));
}

static mpn_code validate(const mpn__channel *ch, char *err, size_t errlen)
{
  mpn_code rc = MPN_OK;
  int count, bad;
  struct curl_slist *list = recipients(ch, &count, &bad);
  if (bad) {   /* addresses are masked in ch->masked: name the position, not the value */
    mpn__add_err(err, errlen, "channel \"%s\": recipient %d in to= is not an email address (like x@y.z)", ch->masked, bad);
    rc = MPN_E_BAD_CONFIG;
  } else if (!count) {
    mpn__add_err(err, errlen, "channel \"%s\": to= names no recipient", ch->masked);
    rc = MPN_E_BAD_CONFIG;
  } else if (!list) {
    rc = MPN_E_NO_MEMORY;
  }
  curl_slist_free_all(list);
  sender s;
  if (parse_from(ch, &s) != 0) {
    mpn__add_err(err, errlen, "channel \"%s\": from= is not an address (like x@y.z) or a name and one (Name <x@y.z>)", ch->masked);
    rc = MPN_E_BAD_CONFIG;
  }
  const char *tls = mpn__channel_opt(ch, "starttls");
  static const char *const values[] = {"yes", "no", "on", "off", "1", "0", "true", "false", NULL};
  int known = 0;
  for (int i = 0; tls && values[i]; i++)
    known |= !strcmp(tls, values[i]);
  if (tls && !known) {
    mpn__add_err(err, errlen, "channel \"%s\": starttls=\"%.10s\" is not yes or no", ch->masked, tls);
    rc = MPN_E_BAD_CONFIG;
  }
  return rc;
}

/* ---- headers ---------------------------------------------------------------- */

static char *b64(const unsigned char *in, size_t n)
{
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  if (out)
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  return out;
}

/* RFC 2047: UTF-8 text as encoded-words of at most 75 characters (45 bytes
 * of text each, cut between characters), folded onto continuation lines. */
static void add_encoded(mpn__buf *b, const char *s)
{
  size_t len = strlen(s), off = 0;
  while (off < len) {
    size_t n = len - off < 45 ? len - off : 45;
    while (n < len - off && n > 1 && ((unsigned char)s[off + n] & 0xc0) == 0x80)
      n--;
    char *enc = b64((const unsigned char *)s + off, n);
    if (enc)
      mpn__buf_add(b, "%s=?UTF-8?B?%s?=", off ? "\r\n " : "", enc);
    free(enc);
    off += n;
  }
}

static int plain_ascii(const char *s, size_t max)
{
  size_t n = 0;
  for (; *s; s++, n++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      return 0;
  return n <= max;
}

/* "[mpinotify] <title>", one line, at most SUBJECT_MAX characters of title. */
static char *subject_text(const char *title)
{
  mpn__buf b = mpn__buf_make(512);
  if (!b.p)
    return NULL;
  mpn__buf_add(&b, "[mpinotify] ");
  size_t chars = 0, i = 0;
  for (; title[i] && chars < SUBJECT_MAX; i++) {
    unsigned char c = (unsigned char)title[i];
    chars += (c & 0xc0) != 0x80;
    mpn__buf_add(&b, "%c", c < 0x20 || c == 0x7f ? ' ' : c);
  }
  while (title[i] && ((unsigned char)title[i] & 0xc0) == 0x80)   /* finish the last character */
    mpn__buf_add(&b, "%c", title[i++]);
  if (title[i])
    mpn__buf_add(&b, "...");
  return b.p;
}

static char *header_subject(const char *title)
{
  char *text = subject_text(title);
  mpn__buf b = mpn__buf_make(1024);
  if (b.p && text) {
    mpn__buf_add(&b, "Subject: ");
    if (plain_ascii(text, 900) && !strstr(text, "=?"))
      mpn__buf_add(&b, "%s", text);
    else
      add_encoded(&b, text);
  }
  free(text);
  return b.p;
}

static char *header_from(const sender *s)
{
  mpn__buf b = mpn__buf_make(512);
  if (!b.p)
    return NULL;
  mpn__buf_add(&b, "From: ");
  if (s->name[0] && plain_ascii(s->name, 200)) {
    mpn__buf_add(&b, "\"");
    for (const char *c = s->name; *c; c++)
      mpn__buf_add(&b, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
    mpn__buf_add(&b, "\" ");
  } else if (s->name[0]) {
    add_encoded(&b, s->name);
    mpn__buf_add(&b, " ");
  }
  mpn__buf_add(&b, "<%s>", s->addr);
  return b.p;
}

/* "To: a@x, b@y", folded before a line grows past 76 characters. */
static char *header_to(const struct curl_slist *rcpt)
{
  mpn__buf b = mpn__buf_make(512);
  if (!b.p)
    return NULL;
  mpn__buf_add(&b, "To: ");
  size_t line = 4;
  for (const struct curl_slist *r = rcpt; r; r = r->next) {
    size_t n = strlen(r->data) - 2;   /* without <> */
    if (r != rcpt) {
      mpn__buf_add(&b, ",%s", line + n + 2 > 76 ? "\r\n " : " ");
      line = line + n + 2 > 76 ? 1 : line + 2;
    }
    mpn__buf_add(&b, "%.*s", (int)n, r->data + 1);
    line += n;
  }
  return b.p;
}

/* RFC 5322 date, in English whatever the process's locale. */
static void header_date(char *out, size_t cap)
{
  static const char days[][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char months[][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  snprintf(out, cap, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
           months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static struct curl_slist *append_owned(struct curl_slist *list, char *line, int *ok)
{
  struct curl_slist *grown = line ? curl_slist_append(list, line) : NULL;
  free(line);
  if (!grown) {
    *ok = 0;
    return list;
  }
  return grown;
}

static struct curl_slist *message_headers(const mpn_message *m, const mpn__view *v, const sender *s,
                                          const struct curl_slist *rcpt, int *ok)
{
  char date[64], id[96];
  struct curl_slist *h = NULL;
  *ok = 1;
  header_date(date, sizeof date);
  snprintf(id, sizeof id, "Message-ID: <%s@mpinotify>", m->id);
  h = append_owned(h, strdup(date), ok);
  h = append_owned(h, header_from(s), ok);
  h = append_owned(h, header_to(rcpt), ok);
  h = append_owned(h, header_subject(v->title ? v->title : "message"), ok);
  h = append_owned(h, strdup(id), ok);
  h = append_owned(h, strdup("MIME-Version: 1.0"), ok);
  /* The whole message is the alternative; curl adds the boundary. */
  h = append_owned(h, strdup("Content-Type: multipart/alternative"), ok);
  h = append_owned(h, strdup("Auto-Submitted: auto-generated"), ok);   /* RFC 3834: no vacation replies */
  h = append_owned(h, strdup("X-Mailer: mpinotify/" MPN_VERSION_STRING), ok);
  return h;
}

/* ---- the two bodies ------------------------------------------------------------ */

static size_t fact_width(const mpn__view *v)
{
  size_t w = strlen("Severity");
  for (int i = 0; i < v->nfacts; i++)
    w = strlen(v->facts[i].label) > w ? strlen(v->facts[i].label) : w;
  return w + 2;
}

static void plain_section(mpn__buf *b, const char *heading, const char *body, size_t max)
{
  if (!body || !*body)
    return;
  char *clipped = mpn__clip(body, max, 0);
  if (!clipped)
    return;
  size_t n = strlen(clipped);
  while (n && clipped[n - 1] == '\n')
    n--;
  mpn__buf_add(b, "\n%s:\n%.*s\n", heading, (int)n, clipped);
  free(clipped);
}

static char *plain_body(const mpn_message *m, const mpn__view *v)
{
  mpn__buf b = mpn__buf_make(4096);
  if (!b.p)
    return NULL;
  char *title = mpn__clip(v->title ? v->title : "message", TITLE_MAX, 0);
  mpn__buf_add(&b, "%s\n\n", title ? title : "");
  free(title);
  int w = (int)fact_width(v);
  mpn__buf_add(&b, "%-*s%s\n", w, "Severity:", v->severity);
  for (int i = 0; i < v->nfacts; i++) {
    char label[64];
    snprintf(label, sizeof label, "%s:", v->facts[i].label);
    mpn__buf_add(&b, "%-*s%s\n", w, label, v->facts[i].value);
  }
  if (v->text && *v->text) {
    char *text = mpn__clip(v->text, TEXT_MAX, 0);
    if (text)
      mpn__buf_add(&b, "\n%s\n", text);
    free(text);
  }
  plain_section(&b, "Failed ranks", v->ranks, RANKS_MAX);
  plain_section(&b, "Processes", v->processes, PROCS_MAX);
  plain_section(&b, "Backtrace", v->backtrace, TRACE_MAX);
  if (v->command)
    mpn__buf_add(&b, "\nCommand: %s\n", v->command);
  mpn__buf_add(&b, "\n-- \nSent by mpinotify " MPN_VERSION_STRING ", message %s%s%s\n", m->id, v->timestamp ? ", " : "",
               v->timestamp ? v->timestamp : "");
  return b.p;
}

/* Appends s HTML-escaped, at most `budget` bytes of output: escaping can
 * grow text fivefold, so the bound applies after it, between characters. */
static void html_text(mpn__buf *b, const char *s, size_t budget)
{
  size_t used = 0;
  for (const char *p = s; *p;) {
    size_t run = strcspn(p, "<>&\"");
    size_t k = run;
    if (used + k > budget) {
      k = budget > used ? budget - used : 0;
      while (k && ((unsigned char)p[k] & 0xc0) == 0x80)
        k--;
    }
    mpn__buf_add(b, "%.*s", (int)k, p);
    used += k;
    if (k < run || (p[run] && used + 6 > budget)) {
      if (p[k])
        mpn__buf_add(b, "\n... (shortened)");
      return;
    }
    p += run;
    if (!*p)
      return;
    const char *e = *p == '<' ? "&lt;" : *p == '>' ? "&gt;" : *p == '&' ? "&amp;" : "&quot;";
    mpn__buf_add(b, "%s", e);
    used += strlen(e);
    p++;
  }
}

static const char *severity_colour(const char *sev)
{
  if (!strcmp(sev, "critical"))
    return "#b71c1c";
  if (!strcmp(sev, "error"))
    return "#d32f2f";
  if (!strcmp(sev, "warning"))
    return "#e65100";
  return "#1565c0";
}

static void html_section(mpn__buf *b, const char *heading, const char *body, size_t max, int pre)
{
  if (!body || !*body)
    return;
  mpn__buf_add(b, "<h3 style=\"margin:16px 0 4px 0;font-size:15px\">%s</h3>\n%s", heading,
               pre ? "<pre style=\"margin:0;padding:8px;background:#f5f5f5;font-size:12px;white-space:pre-wrap\">"
                   : "<p style=\"margin:0;font-family:monospace\">");
  html_text(b, body, max);
  mpn__buf_add(b, "%s\n", pre ? "</pre>" : "</p>");
}

static char *html_body(const mpn_message *m, const mpn__view *v)
{
  mpn__buf b = mpn__buf_make(8192);
  if (!b.p)
    return NULL;
  const char *title = v->title ? v->title : "message", *colour = severity_colour(v->severity);
  mpn__buf_add(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
  html_text(&b, title, TITLE_MAX);
  mpn__buf_add(&b, "</title></head>\n<body style=\"font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222\">\n"
                   "<h2 style=\"margin:0 0 12px 0;padding:6px 10px;border-left:6px solid %s;color:%s\">",
               colour, colour);
  html_text(&b, title, TITLE_MAX);
  mpn__buf_add(&b, "</h2>\n<table cellpadding=\"3\" cellspacing=\"0\" style=\"border-collapse:collapse\">\n"
                   "<tr><th align=\"left\" style=\"padding-right:16px\">Severity</th>"
                   "<td style=\"color:%s;font-weight:bold\">%s</td></tr>\n",
               colour, !strcmp(v->severity, "critical") || !strcmp(v->severity, "error") ||
                       !strcmp(v->severity, "warning") ? v->severity : "info");
  for (int i = 0; i < v->nfacts; i++) {
    mpn__buf_add(&b, "<tr><th align=\"left\" style=\"padding-right:16px\">%s</th><td>", v->facts[i].label);
    html_text(&b, v->facts[i].value, TITLE_MAX);
    mpn__buf_add(&b, "</td></tr>\n");
  }
  mpn__buf_add(&b, "</table>\n");
  if (v->text && *v->text) {
    mpn__buf_add(&b, "<p style=\"white-space:pre-wrap\">");
    html_text(&b, v->text, TEXT_MAX);
    mpn__buf_add(&b, "</p>\n");
  }
  html_section(&b, "Failed ranks", v->ranks, RANKS_MAX, 0);
  html_section(&b, "Processes", v->processes, PROCS_MAX, 1);
  html_section(&b, "Backtrace", v->backtrace, TRACE_MAX, 1);
  html_section(&b, "Command", v->command, TITLE_MAX, 0);
  mpn__buf_add(&b, "<p style=\"margin-top:20px;color:#888;font-size:12px\">Sent by mpinotify " MPN_VERSION_STRING
                   ", message %s</p>\n"
                   "</body></html>\n", m->id);
  return b.p;
}

/* Text in a message has CRLF line ends (RFC 2045 6.7); curl's
 * quoted-printable encoder keeps those as line breaks. */
static char *crlf(const char *s)
{
  size_t lf = 0;
  for (const char *p = s; p && *p; p++)
    lf += *p == '\n';
  char *out = s ? malloc(strlen(s) + lf + 1) : NULL;
  char *o = out;
  for (const char *p = s; out && *p; p++) {
    if (*p == '\r')
      continue;
    if (*p == '\n')
      *o++ = '\r';
    *o++ = *p;
  }
  if (o)
    *o = '\0';
  return out;
}

static int add_part(curl_mime *mime, char *data, const char *type)
{
  char *text = crlf(data);
  free(data);
  curl_mimepart *part = text ? curl_mime_addpart(mime) : NULL;
  int ok = part && curl_mime_data(part, text, CURL_ZERO_TERMINATED) == CURLE_OK &&
         curl_mime_type(part, type) == CURLE_OK &&
         curl_mime_encoder(part, "quoted-printable") == CURLE_OK;   /* 8-bit and long lines, 7-bit safe */
  free(text);
  return ok;
}

/* The message as a MIME tree (a->mime) with its headers (a->headers). */
static mpn_code build_message(const mpn_message *m, const sender *s, mpn__attempt *a)
{
  mpn__view *v = mpn__view_new(m);
  if (!v)
    return MPN_E_NO_MEMORY;
  int ok = 1;
  a->headers = message_headers(m, v, s, a->rcpt, &ok);
  a->mime = curl_mime_init(a->easy);
  /* add_part takes the text: the plainest first (RFC 2046 5.1.4) */
  ok = ok && a->mime && add_part(a->mime, plain_body(m, v), "text/plain; charset=utf-8");
  ok = ok && add_part(a->mime, html_body(m, v), "text/html; charset=utf-8");
  mpn__view_free(v);
  return ok ? MPN_OK : MPN_E_NO_MEMORY;
}

/* ---- the attempt and its answer --------------------------------------------------- */

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  int count, bad;
  sender s;
  a->rcpt = recipients(ch, &count, &bad);
  if (bad || !count || parse_from(ch, &s) != 0)
    return MPN_E_BAD_CONFIG;   /* validate() said why at configuration time */
  if (!a->rcpt)
    return MPN_E_NO_MEMORY;
  mpn_code rc = build_message(m, &s, a);
  char envelope[ADDR_MAX + 3];
  snprintf(envelope, sizeof envelope, "<%s>", s.addr);
  a->url = strdup(ch->url);
  if (rc != MPN_OK || !a->url)
    return rc != MPN_OK ? rc : MPN_E_NO_MEMORY;
  CURL *e = a->easy;
  curl_easy_setopt(e, CURLOPT_URL, a->url);
  curl_easy_setopt(e, CURLOPT_MAIL_FROM, envelope);
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, a->rcpt);   /* not copied by curl: a->rcpt lives until the end */
  curl_easy_setopt(e, RCPT_ALLOWFAILS, 1L);          /* one bad address must not silence the others */
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, a->headers);
  curl_easy_setopt(e, CURLOPT_MIMEPOST, a->mime);
  if (!strncmp(ch->url, "smtp://", 7))
    curl_easy_setopt(e, CURLOPT_USE_SSL, plain_smtp(ch) ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
  if (mpn__channel_opt(ch, "user"))
    curl_easy_setopt(e, CURLOPT_USERNAME, mpn__channel_opt(ch, "user"));
  if (mpn__channel_opt(ch, "password"))
    curl_easy_setopt(e, CURLOPT_PASSWORD, mpn__channel_opt(ch, "password"));
  /* curl hands SMTP reply lines to the header callback; with none set but
   * HEADERDATA set, it uses the write callback: the engine's collector
   * (WRITEDATA is the engine's item, which it also keeps as PRIVATE), so the
   * judge reads the server's replies as the body. */
  void *item = NULL;
  if (curl_easy_getinfo(e, CURLINFO_PRIVATE, &item) == CURLE_OK && item)
    curl_easy_setopt(e, CURLOPT_HEADERDATA, item);
  return MPN_OK;
}

/* The text of the last reply line with this code ("550 5.1.1 no such user"),
 * printable ASCII only, and none at all if it echoes the password. */
static void reply_text(const mpn__channel *ch, long status, const char *body, size_t len, char *out, size_t cap)
{
  char code[24];   /* room for any long: the compiler cannot know status < 1000 */
  snprintf(code, sizeof code, "%03ld", status);
  const char *found = NULL, *end = body + len;
  for (const char *p = body; p && p < end;) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (end - p > 3 && !memcmp(p, code, 3) && (p[3] == ' ' || p[3] == '-'))
      found = p + 4;
    p = nl ? nl + 1 : NULL;
  }
  out[0] = '\0';
  if (!found)
    return;
  size_t n = 0;
  for (const char *c = found; c < end && *c != '\r' && *c != '\n' && n + 1 < cap; c++)
    out[n++] = *c >= 0x20 && *c < 0x7f ? *c : '?';
  out[n] = '\0';
  const char *pw = ch ? mpn__channel_opt(ch, "password") : NULL;
  if (pw && *pw && strstr(out, pw))
    out[0] = '\0';
}

static void judge(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v)
{
  /* The engine asks only when curl finished the dialogue (the final 250), or
   * when it stopped at a refusal and kept the reply code (4xx/5xx). */
  if (status < 400) {
    v->code = MPN_OK;
    return;
  }
  char text[160];
  reply_text(ch, status, body ? body : "", body ? len : 0, text, sizeof text);
  const char *what = status == 530 || status == 534 || status == 535 || status == 538 ? " (authentication)" : "";
  snprintf(v->detail, sizeof v->detail, "SMTP %ld%s%s%s", status, what, text[0] ? ": " : "", text);
  v->code = MPN_E_DELIVERY;
  v->retry = status < 500;   /* 4xx: transient; 5xx: permanent */
}

const mpn__kind mpn__kind_email = {
  .form = "smtp(s)://...",
  .name = "email", .schemes = (const char *const[]){"smtp", "smtps", NULL}, .options = options, .secrets = secrets, .required = required,
  .validate = validate, .prepare = prepare, .judge = judge,
};
