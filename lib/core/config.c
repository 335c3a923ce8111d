/* config.c - configuration from mpn_options and MPINOTIFY_* variables.
 * Every problem becomes one line in the caller's error buffer; the job never
 * stops over a bad setting: the valid parts are kept, defaults fill the rest. */
#include "core/mpn.h"

#include <curl/curl.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_WINDOW_MS 500
#define DEFAULT_POLL_MS 200   /* every wake-up can preempt a busy rank; see README's benchmark */

int mpn__env_flag(const char *name)
{
  const char *v = getenv(name);
  if (!v)
    return 0;
  return !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcasecmp(v, "on");
}

/* Appends one problem line; keeps the first lines when the buffer is full. */
static void add_err(char *err, size_t errlen, const char *fmt, ...)
{
  if (!err || !errlen)
    return;
  size_t used = strlen(err);
  if (used && used + 1 < errlen)
    err[used++] = '\n';
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + used, errlen - used, fmt, ap);
  va_end(ap);
}

/* ---- masking ------------------------------------------------------------- */

static void put(char *out, size_t cap, size_t *len, const char *s, size_t n, int *trunc)
{
  for (size_t i = 0; i < n; i++) {
    if (*len + 1 >= cap) {
      *trunc = 1;
      return;
    }
    out[(*len)++] = s[i];
  }
}

#define PUTS(s) put(out, outlen, &len, (s), strlen(s), &trunc)

/* Path segments that read like words ("services", "hook", "open-apis") are
 * kept so a masked URL stays recognisable; anything with digits, capitals or
 * length is treated as a token. */
static int segment_is_public(const char *s, size_t n)
{
  if (n == 0 || n > 16)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-' || s[i] == '_'))
      return 0;
  return 1;
}

mpn_code mpn_mask_url(const char *url, char *out, size_t outlen)
{
  if (!url || !out || !outlen)
    return MPN_E_INVALID_ARGUMENT;
  size_t len = 0;
  int trunc = 0;
  const char *p = strstr(url, "://");
  if (!p) {   /* not a URL we understand: reveal only what cannot be secret */
    PUTS("***");
    out[len] = '\0';
    return trunc ? MPN_E_BUFFER_TOO_SMALL : MPN_OK;
  }
  p += 3;
  put(out, outlen, &len, url, (size_t)(p - url), &trunc);
  size_t alen = strcspn(p, "/?#");
  const char *at = memchr(p, '@', alen);
  if (at) {   /* user:password@ -> user:***@ */
    const char *colon = memchr(p, ':', (size_t)(at - p));
    put(out, outlen, &len, p, (size_t)((colon ? colon : at) - p), &trunc);
    if (colon)
      PUTS(":***");
    PUTS("@");
    alen -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  put(out, outlen, &len, p, alen, &trunc);
  p += alen;
  while (*p == '/') {
    size_t n = strcspn(p + 1, "/?#");
    PUTS("/");
    if (segment_is_public(p + 1, n))
      put(out, outlen, &len, p + 1, n, &trunc);
    else if (n)
      PUTS("***");
    p += 1 + n;
  }
  if (*p == '?') {   /* keep the keys, hide every value */
    p++;
    PUTS("?");
    while (*p && *p != '#') {
      size_t n = strcspn(p, "&#");
      size_t k = strcspn(p, "=&#");
      put(out, outlen, &len, p, k, &trunc);
      if (k < n)
        PUTS("=***");
      p += n;
      if (*p == '&') {
        PUTS("&");
        p++;
      }
    }
  }
  if (*p == '#')
    PUTS("#***");
  out[len] = '\0';
  return trunc ? MPN_E_BUFFER_TOO_SMALL : MPN_OK;
}

char *mpn__mask_command(const char *cmd)
{
  if (!cmd)
    return NULL;
  size_t cap = strlen(cmd) * 2 + 64, len = 0;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  const char *p = cmd;
  while (*p) {
    size_t ws = strspn(p, " \t\n");
    memcpy(out + len, p, ws);
    len += ws;
    p += ws;
    size_t n = strcspn(p, " \t\n");
    char tok[4096];
    if (n && n < sizeof tok && memmem(p, n, "://", 3)) {
      memcpy(tok, p, n);
      tok[n] = '\0';
      const char *eq = strchr(tok, '=');   /* --url=https://... */
      size_t keep = (eq && eq < strstr(tok, "://")) ? (size_t)(eq + 1 - tok) : 0;
      memcpy(out + len, tok, keep);
      mpn_mask_url(tok + keep, out + len + keep, cap - len - keep);
      len += strlen(out + len);
    } else {
      memcpy(out + len, p, n);
      len += n;
    }
    p += n;
  }
  out[len] = '\0';
  return out;
}

/* ---- channel URLs --------------------------------------------------------- */

static mpn_code check_http_url(const char *target, const char *masked, char *err, size_t errlen)
{
  CURLU *u = curl_url();
  if (!u)
    return MPN_E_NO_MEMORY;
  mpn_code rc = MPN_OK;
  CURLUcode uc = curl_url_set(u, CURLUPART_URL, target, 0);
  char *host = NULL;
  const char *auth = strstr(target, "://");
  if (uc == CURLUE_OK && auth && strchr("/?#", auth[3])) {
    add_err(err, errlen, "malformed channel URL \"%s\": no host", masked);
    rc = MPN_E_BAD_URL;
  } else if (uc != CURLUE_OK) {
    add_err(err, errlen, "malformed channel URL \"%s\": %s", masked, curl_url_strerror(uc));
    rc = MPN_E_BAD_URL;
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
    add_err(err, errlen, "malformed channel URL \"%s\": no host", masked);
    rc = MPN_E_BAD_URL;
  }
  curl_free(host);
  curl_url_cleanup(u);
  return rc;
}

mpn_code mpn__parse_channel(const char *url, mpn__channel *ch, char *err, size_t errlen)
{
  char masked[1024];
  mpn_mask_url(url, masked, sizeof masked);
  memset(ch, 0, sizeof *ch);
  const char *target = NULL;
  if (!strcmp(url, "console") || !strncmp(url, "console:", 8)) {
    ch->kind = MPN__CH_CONSOLE;
    target = "stderr";
  } else if (!strncmp(url, "webhook+http://", 15) || !strncmp(url, "webhook+https://", 16)) {
    ch->kind = MPN__CH_WEBHOOK;
    target = url + 8;
  } else if (!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8)) {
    ch->kind = MPN__CH_WEBHOOK;   /* a plain URL is a generic JSON webhook */
    target = url;
  } else {
    const char *sep = strstr(url, "://");
    add_err(err, errlen, "unknown channel kind in URL \"%s\" (known: console://, webhook+http://, webhook+https://)",
            sep ? masked : url[0] ? "***" : "");
    return MPN_E_UNKNOWN_KIND;
  }
  if (ch->kind == MPN__CH_WEBHOOK) {
    mpn_code rc = check_http_url(target, masked, err, errlen);
    if (rc != MPN_OK)
      return rc;
  }
  ch->target = strdup(target);
  ch->masked = strdup(masked);
  if (!ch->target || !ch->masked) {
    free(ch->target);
    free(ch->masked);
    return MPN_E_NO_MEMORY;
  }
  return MPN_OK;
}

/* Splits at white space and commas; calls fn for each URL. */
static mpn_code for_each_url(const char *urls, mpn_code (*fn)(const char *, void *), void *arg)
{
  mpn_code first = MPN_OK;
  const char *p = urls ? urls : "";
  while (*p) {
    p += strspn(p, " \t\r\n,");
    size_t n = strcspn(p, " \t\r\n,");
    if (!n)
      break;
    char *one = strndup(p, n);
    if (!one)
      return MPN_E_NO_MEMORY;
    mpn_code rc = fn(one, arg);
    free(one);
    if (rc != MPN_OK && first == MPN_OK)
      first = rc;
    p += n;
  }
  return first;
}

typedef struct {
  mpn__config *cfg;
  char *err;
  size_t errlen;
} add_ctx;

static mpn_code add_channel(const char *url, void *arg)
{
  add_ctx *c = arg;
  mpn__channel ch;
  mpn_code rc = mpn__parse_channel(url, &ch, c->err, c->errlen);
  if (rc != MPN_OK)
    return rc;
  mpn__channel *grown = realloc(c->cfg->channels, sizeof ch * (size_t)(c->cfg->nchannels + 1));
  if (!grown) {
    free(ch.target);
    free(ch.masked);
    return MPN_E_NO_MEMORY;
  }
  c->cfg->channels = grown;
  c->cfg->channels[c->cfg->nchannels++] = ch;
  return MPN_OK;
}

mpn_code mpn_check_urls(const char *urls, char *err, size_t errlen)
{
  mpn__config tmp;
  memset(&tmp, 0, sizeof tmp);
  if (err && errlen)
    err[0] = '\0';
  add_ctx c = {&tmp, err, errlen};
  mpn_code rc = for_each_url(urls, add_channel, &c);
  mpn__config_free(&tmp);
  return rc;
}

/* ---- numbers and the rest ------------------------------------------------ */

static long env_ms(const char *name, long set, long def, long lo, long hi, char *err, size_t errlen, mpn_code *rc)
{
  if (set >= 0)
    return set;
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end;
  errno = 0;
  long ms = strtol(v, &end, 10);
  if (errno || *end || ms < lo || ms > hi) {
    add_err(err, errlen, "%s=\"%.40s\" is not a number of milliseconds in %ld..%ld; using %ld", name, v, lo, hi, def);
    *rc = MPN_E_BAD_CONFIG;
    return def;
  }
  return ms;
}

static void default_spool(char *out, size_t cap)
{
  const char *v = getenv("MPINOTIFY_SPOOL");
  if (v && *v) {
    mpn__strlcpy(out, v, cap);
    return;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(out, cap, "%s/mpinotify-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
}

static char *default_command(void)
{
  FILE *f = fopen("/proc/self/cmdline", "r");
  if (!f)
    return NULL;
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  for (size_t i = 0; i + 1 < n; i++)
    if (buf[i] == '\0')
      buf[i] = ' ';
  buf[n] = '\0';
  return strdup(buf);
}

mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen)
{
  mpn_code rc = MPN_OK;
  memset(cfg, 0, sizeof *cfg);
  if (err && errlen)
    err[0] = '\0';
  const char *urls = opts && opts->urls ? opts->urls : getenv("MPINOTIFY_URLS");
  add_ctx c = {cfg, err, errlen};
  rc = for_each_url(urls, add_channel, &c);
  if (cfg->nchannels == 0 && (!urls || !urls[strspn(urls, " \t\r\n,")]))
    add_channel("console://", &c);   /* nothing configured: still never silent */

  const char *name = opts && opts->job_name ? opts->job_name : getenv("MPINOTIFY_JOB_NAME");
  cfg->job_name = strdup(name && *name ? name : program_invocation_short_name);
  const char *cmd = opts && opts->job_command ? opts->job_command : getenv("MPINOTIFY_JOB_COMMAND");
  char *own = cmd ? NULL : default_command();
  cfg->job_command = mpn__mask_command(cmd ? cmd : own);
  free(own);

  cfg->timeout_ms = env_ms("MPINOTIFY_TIMEOUT_MS", opts ? opts->timeout_ms : -1, DEFAULT_TIMEOUT_MS,
                           100, 3600000, err, errlen, &rc);
  cfg->window_ms = env_ms("MPINOTIFY_WINDOW_MS", opts ? opts->window_ms : -1, DEFAULT_WINDOW_MS,
                          0, 60000, err, errlen, &rc);
  cfg->poll_ms = env_ms("MPINOTIFY_POLL_MS", -1, DEFAULT_POLL_MS, 10, 2000, err, errlen, &rc);
  if (cfg->window_ms > cfg->timeout_ms / 2)
    cfg->window_ms = cfg->timeout_ms / 2;   /* the window must leave time to deliver */
  cfg->debug = mpn__env_flag("MPINOTIFY_DEBUG");
  cfg->config_checked = mpn__env_flag("MPINOTIFY_CONFIG_CHECKED");

  const char *thr = getenv("MPINOTIFY_MPI_THREAD");
  if (thr && *thr && strcmp(thr, "multiple") && strcmp(thr, "keep")) {
    add_err(err, errlen, "MPINOTIFY_MPI_THREAD=\"%.40s\" is neither \"multiple\" nor \"keep\"; using multiple", thr);
    rc = MPN_E_BAD_CONFIG;
  }
  cfg->keep_thread_level = thr && !strcmp(thr, "keep");
  default_spool(cfg->spool_dir, sizeof cfg->spool_dir);

  const char *ca = getenv("MPINOTIFY_CA_BUNDLE");
  if (ca && *ca) {
    if (access(ca, R_OK) == 0)
      cfg->ca_bundle = strdup(ca);
    else {
      add_err(err, errlen, "MPINOTIFY_CA_BUNDLE=\"%.200s\" is not a readable file; using the system's CAs", ca);
      rc = MPN_E_BAD_CONFIG;
    }
  }
  return rc;
}

mpn_code mpn_check_environment(char *err, size_t errlen)
{
  mpn__config tmp;
  mpn_code rc = mpn__config_load(&tmp, NULL, err, errlen);
  mpn__config_free(&tmp);
  return rc;
}

void mpn__config_free(mpn__config *cfg)
{
  for (int i = 0; i < cfg->nchannels; i++) {
    free(cfg->channels[i].target);
    free(cfg->channels[i].masked);
  }
  free(cfg->channels);
  free(cfg->job_name);
  free(cfg->job_command);
  free(cfg->ca_bundle);
  memset(cfg, 0, sizeof *cfg);
}
