/* url.c - channel URLs: the forms of README.md "Channels", the options
 * mpinotify takes from their query, and masking for every output. A channel
 * keeps its spec as configured (references unresolved), so the spool and the
 * relay can carry it without carrying the secrets it refers to. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Options every kind takes; their values are never secret. */
static const char *const common_opts[] = {"timeout_ms", "connect_timeout_ms", "retries", "rate", NULL};
/* Query keys whose values are shown unmasked (everything else is masked). */
static const char *const public_keys[] = {"timeout_ms", "connect_timeout_ms", "retries", "rate", "method",
                                          "wait", "api-version", "mention", "at_all", "starttls", NULL};

static int in_list(const char *const *list, const char *s, size_t n)
{
  for (; list && *list; list++)
    if (strlen(*list) == n && !strncmp(*list, s, n))
      return 1;
  return 0;
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
  if (n == 0 || n > 12)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '-' || s[i] == '_'))
      return 0;
  return 1;
}

/* Scheme and host are shown only when they hold nothing but what a scheme
 * or host can: text that merely contains "://" ("x?a=b://h&password=p")
 * could carry a secret in either place. */
static int only(const char *s, size_t n, const char *extra)
{
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr(extra, s[i]))
      return 0;
  return 1;
}

/* A scheme: letters, digits, "+-." ("webhook+https"), after an "env:" or "file:" that names nothing. */
static int scheme_like(const char *s, size_t n)
{
  size_t skip = !strncmp(s, "env:", 4) ? 4 : !strncmp(s, "file:", 5) ? 5 : 0;
  return n > skip && only(s + skip, n - skip, "+-.");
}

static int digits(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

/* A host, with a port of digits or an [IPv6] literal: a password cut short
 * by a '#', '/' or '?' in it ("u:p#w@h" reads as host "u", port "p") is not one. */
static int host_like(const char *s, size_t n)
{
  if (n && s[0] == '[') {
    const char *close = memchr(s, ']', n);
    if (!close || !only(s + 1, (size_t)(close - s - 1), ":.%"))
      return 0;
    size_t rest = n - (size_t)(close + 1 - s);
    return rest == 0 || (close[1] == ':' && digits(close + 2, rest - 1));
  }
  const char *colon = memchr(s, ':', n);
  size_t hn = colon ? (size_t)(colon - s) : n;
  return only(s, hn, ".-_%") && (!colon || digits(colon + 1, n - hn - 1));
}

mpn_code mpn_mask_url(const char *url, char *out, size_t outlen)
{
  if (!url || !out || !outlen)
    return MPN_E_INVALID_ARGUMENT;
  size_t len = 0;
  int trunc = 0;
  const char *p = strstr(url, "://");
  /* "env:NAME" names, it holds nothing; a URL after "env:" is no name */
  if (mpn__is_ref(url) && !strchr(url, '?') && !p && !strchr(url, '@')) {
    put(out, outlen, &len, url, strlen(url), &trunc);
    out[len] = '\0';
    return trunc ? MPN_E_BUFFER_TOO_SMALL : MPN_OK;
  }
  if (!p) {   /* not a URL we understand: reveal only what cannot be secret */
    PUTS("***");
    out[len] = '\0';
    return trunc ? MPN_E_BUFFER_TOO_SMALL : MPN_OK;
  }
  if (scheme_like(url, (size_t)(p - url)))
    put(out, outlen, &len, url, (size_t)(p + 3 - url), &trunc);
  else
    PUTS("***://");
  p += 3;
  size_t alen = strcspn(p, "/?#");
  const char *at = memchr(p, '@', alen);
  if (at) {   /* user:password@ -> user:***@; a lone user may be a token: ***@ */
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (colon) {
      put(out, outlen, &len, p, (size_t)(colon - p), &trunc);
      PUTS(":***");
    } else {
      PUTS("***");
    }
    PUTS("@");
    alen -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  if (host_like(p, alen))
    put(out, outlen, &len, p, alen, &trunc);
  else
    PUTS("***");
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
  if (*p == '?') {   /* keep the keys; hide values but references and plain settings */
    p++;
    PUTS("?");
    while (*p && *p != '#') {
      size_t n = strcspn(p, "&#");
      size_t k = strcspn(p, "=&#");
      if (k < n)
        put(out, outlen, &len, p, k, &trunc);
      int shown = k < n && (in_list(public_keys, p, k) || !strncmp(p + k + 1, "env:", 4) ||
                            !strncmp(p + k + 1, "env%3A", 6) || !strncmp(p + k + 1, "file:", 5));
      if (k == n && n)
        PUTS("***");   /* a bare token: ?S3cr3t */
      else if (shown)
        put(out, outlen, &len, p + k, n - k, &trunc);
      else if (k < n)
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

/* ---- free text ----------------------------------------------------------------- */

/* Where a URL starts, scanned back from its "://": the start of its word, or
 * just after "--url=" or an opening quote or bracket. */
static int url_char(char c)
{
  return c && !strchr(" \t\n=\"'(<[{`", c);
}

/* Punctuation that closes a URL written in text: "(see https://h/x)." keeps ")." shown. */
static int closing_char(char c)
{
  return c && strchr("\"'<>()[]{}`,;.:!?", c) != NULL;
}

/* Appends `url` masked; a URL too long for any buffer is hidden whole. */
static void add_masked(mpn__buf *out, const char *url, size_t n)
{
  char *tok = strndup(url, n);
  size_t cap = n * 3 + 16;   /* masking at most triples a URL ("=&" -> "=***&") */
  char *masked = tok ? malloc(cap) : NULL;
  if (masked && mpn_mask_url(tok, masked, cap) == MPN_OK)
    mpn__buf_add(out, "%s", masked);
  else
    mpn__buf_add(out, "***");
  free(tok);
  free(masked);
}

/* Every occurrence of `secret` in *text replaced with "***". */
static void mask_literal(mpn__buf *text, const char *secret)
{
  size_t n = strlen(secret);
  if (!n || !text->p || !strstr(text->p, secret))
    return;
  mpn__buf out = mpn__buf_make(text->len + 16);
  const char *p = text->p, *hit;
  while ((hit = strstr(p, secret)) != NULL) {
    mpn__buf_add(&out, "%.*s***", (int)(hit - p), p);
    p = hit + n;
  }
  mpn__buf_add(&out, "%s", p);
  free(text->p);
  *text = out;
}

/* Tokens known by their form, wherever they appear (a log line that prints
 * a header, a config dump): the prefix stays, so a reader knows which kind
 * was there. One table; a form needs a prefix and at least 16 token
 * characters after it with a digit among them, so "sk-learn" stays. */
static const char *const token_prefixes[] = {
  "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-",                 /* Slack */
  "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-",      /* GitHub, GitLab */
  "hf_", "sk-", "sk_live_", "rk_live_", "npm_", "pypi-", "AIza",        /* HF, OpenAI, Stripe, npm, PyPI, Google */
  "AKIA", "ASIA", "eyJ",                                                /* AWS keys, JWTs */
  "Bearer ", "bearer ", "Basic ",                                       /* Authorization headers */
  NULL};

/* A key's characters; `wide` adds those of base64 and JWTs ("/scratch/hf_cache/x1"
 * is a path, not a token: keys stop at '/' and '.'). */
static int token_char(char c, int wide)
{
  return c && (isalnum((unsigned char)c) || strchr(wide ? "-_.=+/~" : "-_", c));   /* strchr finds the '\0' too */
}

/* The length of the token after a prefix at p, or 0 when it is no token.
 * After a header's scheme ("Bearer ") any long word is the credential. */
static size_t token_tail(const char *p, int header, int wide)
{
  size_t n = 0;
  int digit = 0;
  for (; token_char(p[n], wide); n++)
    digit |= isdigit((unsigned char)p[n]);
  return n >= 16 && (digit || header) ? n : 0;
}

static void mask_token_forms(mpn__buf *text)
{
  if (!text->p)
    return;
  mpn__buf out = mpn__buf_make(text->len + 16);
  const char *p = text->p;
  while (*p) {
    size_t tail = 0, plen = 0;
    if (p == text->p || !(isalnum((unsigned char)p[-1]) || p[-1] == '_' || p[-1] == '-'))   /* a word's start */
      for (const char *const *t = token_prefixes; *t && !tail; t++)
        if (!strncmp(p, *t, plen = strlen(*t))) {
          int header = (*t)[plen - 1] == ' ';
          tail = token_tail(p + plen, header, header || !strcmp(*t, "eyJ"));
        }
    if (tail) {
      mpn__buf_add(&out, "%.*s***", (int)plen, p);
      p += plen + tail;
    } else {
      mpn__buf_add(&out, "%c", *p++);
    }
  }
  free(text->p);
  *text = out;
}

/* A URL is the run from its scheme (scanned back from "://") to the end of
 * its word, less the punctuation that closes it: everything the URL could
 * hold is masked (rather more than less), and "--url=" or a quote before it
 * stays shown. */
char *mpn_mask_text(const char *text, const char *const *secrets)
{
  if (!text)
    return NULL;
  mpn__buf out = mpn__buf_make(strlen(text) + 64);
  const char *p = text, *sep;
  while ((sep = strstr(p, "://")) != NULL) {
    const char *start = sep, *end = sep + 3;
    while (start > p && url_char(start[-1]))
      start--;
    while (*end && !strchr(" \t\n", *end))   /* a \r or \v inside a word is no end: mask more, never less */
      end++;
    /* the closing marks ("...hook)." keeps ")."), unless they are a whole
     * value ("=```"): a value made of punctuation would otherwise show whole */
    const char *cut = end;
    while (cut > sep + 3 && closing_char(cut[-1]))
      cut--;
    if (cut[-1] != '=' && cut[-1] != '&')
      end = cut;
    mpn__buf_add(&out, "%.*s", (int)(start - p), p);
    add_masked(&out, start, (size_t)(end - start));
    p = end;
  }
  mpn__buf_add(&out, "%s", p);
  for (; secrets && *secrets; secrets++)
    mask_literal(&out, *secrets);
  mask_token_forms(&out);
  return out.p;
}

/* ---- channel specs ------------------------------------------------------------ */

static int add_opt(mpn__channel *ch, const char *key, size_t klen, const char *value)
{
  mpn__opt *grown = realloc(ch->opts, sizeof *grown * (size_t)(ch->nopts + 1));
  if (!grown)
    return -1;
  ch->opts = grown;
  mpn__opt *o = &grown[ch->nopts];
  o->key = strndup(key, klen);
  o->value = strdup(value);
  o->resolved = NULL;
  if (!o->key || !o->value) {
    free(o->key);
    free(o->value);
    return -1;
  }
  ch->nopts++;
  return 0;
}

/* A service parameter, kept for the service; a reference value
 * (access_token=env:NAME) is resolved here. */
static mpn_code keep_param(mpn__channel *ch, mpn__buf *keep, const char *p, size_t n, size_t k, char *err,
                           size_t errlen)
{
  const char *amp = keep->len ? "&" : "";
  char *val = k < n ? mpn__url_unescape(p + k + 1, n - k - 1) : NULL;
  if (!val || !mpn__is_ref(val)) {
    free(val);
    mpn__buf_add(keep, "%s%.*s", amp, (int)n, p);
    return MPN_OK;
  }
  char what[1100];
  snprintf(what, sizeof what, "channel \"%s\" parameter %.*s", ch->masked, (int)k, p);
  char *secret = mpn__resolve_ref(val, what, err, errlen);
  char *esc = secret ? mpn__url_escape(secret) : NULL;
  mpn_code rc = !secret ? MPN_E_BAD_CONFIG : esc ? MPN_OK : MPN_E_NO_MEMORY;
  if (esc)
    mpn__buf_add(keep, "%s%.*s=%s", amp, (int)k, p, esc);
  free(esc);
  free(secret);
  free(val);
  return rc;
}

/* Moves our options out of the URL's query into ch->opts; the service's own
 * parameters (access_token, wait, ...) stay in `keep`, references resolved. */
static mpn_code take_options(mpn__channel *ch, const char *query, mpn__buf *kept, char *err, size_t errlen)
{
  mpn__buf keep = mpn__buf_make(strlen(query) + 1);
  mpn_code rc = keep.p ? MPN_OK : MPN_E_NO_MEMORY;
  for (const char *p = query; rc == MPN_OK && *p;) {
    size_t n = strcspn(p, "&"), k = strcspn(p, "=&");
    if (in_list(common_opts, p, k) || in_list(ch->kind->options, p, k)) {
      char *val = mpn__url_unescape(k < n ? p + k + 1 : "", k < n ? n - k - 1 : 0);
      if (!val || add_opt(ch, p, k, val) != 0)
        rc = MPN_E_NO_MEMORY;
      free(val);
    } else if (n) {
      rc = keep_param(ch, &keep, p, n, k, err, errlen);
    }
    p += n + (p[n] == '&');
  }
  *kept = keep;
  return rc;
}

/* An option as configured (a reference stays a reference): for messages. */
static const char *raw_opt(const mpn__channel *ch, const char *key)
{
  for (int i = ch->nopts - 1; i >= 0; i--)
    if (!strcmp(ch->opts[i].key, key))
      return ch->opts[i].value;
  return NULL;
}

static long parse_long_opt(const mpn__channel *ch, const char *key, long def, long lo, long hi, char *err,
                           size_t errlen, mpn_code *rc)
{
  const char *v = mpn__channel_opt(ch, key);
  if (!v)
    return def;
  char *end;
  errno = 0;
  long x = strtol(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi) {
    mpn__add_err(err, errlen, "channel \"%s\": %s=\"%.20s\" is not a number in %ld..%ld", ch->masked, key,
                 raw_opt(ch, key), lo, hi);
    *rc = MPN_E_BAD_CONFIG;
    return def;
  }
  return x;
}

/* rate=N/s, N/min, N/h, N/SECONDS, or off. */
static void parse_rate(mpn__channel *ch, char *err, size_t errlen, mpn_code *rc)
{
  ch->rate_n = ch->kind->rate_n;
  ch->rate_window_ms = ch->kind->rate_window_ms;
  const char *v = mpn__channel_opt(ch, "rate");
  if (!v)
    return;
  if (!strcmp(v, "off") || !strcmp(v, "0")) {
    ch->rate_n = 0;
    return;
  }
  char *end;
  long n = strtol(v, &end, 10);
  long window = 0;
  if (*end == '/') {
    const char *per = end + 1;
    if (!strcmp(per, "s")) window = 1000;
    else if (!strcmp(per, "min")) window = 60000;
    else if (!strcmp(per, "h")) window = 3600000;
    else {
      char *e2;
      long secs = strtol(per, &e2, 10);
      window = (*per && !*e2 && secs > 0 && secs <= 86400) ? secs * 1000 : 0;
    }
  }
  if (n <= 0 || n > 10000 || window <= 0) {
    mpn__add_err(err, errlen, "channel \"%s\": rate=\"%.20s\" is not N/s, N/min, N/h, N/SECONDS or off", ch->masked,
                 raw_opt(ch, "rate"));
    *rc = MPN_E_BAD_CONFIG;
    return;
  }
  ch->rate_n = (int)n;
  ch->rate_window_ms = window;
}

/* header=Name:env:VAR: the value part is the reference. */
static const char *header_ref(const mpn__opt *o)
{
  const char *colon = strcmp(o->key, "header") ? NULL : strchr(o->value, ':');
  const char *val = colon ? colon + 1 + strspn(colon + 1, " ") : NULL;
  return val && colon > o->value && mpn__is_ref(val) ? val : NULL;
}

/* "Name: <resolved value>" */
static char *resolve_header(const mpn__opt *o, const char *what, char *err, size_t errlen)
{
  char *val = mpn__resolve_ref(header_ref(o), what, err, errlen), *line = NULL;
  if (val && asprintf(&line, "%.*s: %s", (int)(strchr(o->value, ':') - o->value), o->value, val) < 0)
    line = NULL;
  free(val);
  return line;
}

/* Resolves env:/file: references; secret options must be set when required. */
static mpn_code resolve_options(mpn__channel *ch, char *err, size_t errlen)
{
  mpn_code rc = MPN_OK;
  for (int i = 0; i < ch->nopts; i++) {
    if (!mpn__is_ref(ch->opts[i].value) && !header_ref(&ch->opts[i]))
      continue;
    char what[1100];
    snprintf(what, sizeof what, "channel \"%s\" option %s", ch->masked, ch->opts[i].key);
    ch->opts[i].resolved = header_ref(&ch->opts[i]) ? resolve_header(&ch->opts[i], what, err, errlen)
                                                    : mpn__resolve_ref(ch->opts[i].value, what, err, errlen);
    if (!ch->opts[i].resolved)
      rc = MPN_E_BAD_CONFIG;
  }
  for (const char *const *r = ch->kind->required; r && *r; r++)
    if (!mpn__channel_opt(ch, *r)) {
      mpn__add_err(err, errlen, "channel \"%s\": %s channels need the option %s=...", ch->masked, ch->kind->name, *r);
      rc = MPN_E_BAD_CONFIG;
    }
  return rc;
}

static int is_http(const char *url)
{
  return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

/* Which kind, and where the service URL starts in `url`: a scheme of the
 * kinds' table (console, smtp://, http(s):// for webhook), KIND+http(s)://,
 * or a registered kind's NAME://. */
static const mpn__kind *kind_of(const char *url, const char **target)
{
  const char *plus = strchr(url, '+'), *sep = strstr(url, "://");
  *target = url;
  const mpn__kind *k = mpn__kind_by_scheme(url);   /* http(s):// is webhook, refined by host below */
  if (k)
    return k;
  if (plus && sep && plus < sep) {
    *target = plus + 1;
    return is_http(*target) ? mpn__kind_by_name(url, (size_t)(plus - url)) : NULL;
  }
  if (sep)
    return mpn__custom_kind(url, (size_t)(sep - url));   /* NAME:// of mpn_register_channel */
  return NULL;
}

/* Parses the service URL: host, the kind from the host, our options. */
static mpn_code parse_target(mpn__channel *ch, const char *target, int by_host, char *err, size_t errlen)
{
  mpn__url u;
  const char *why = "";
  mpn_code rc = mpn__url_parse(&u, target, &why);
  if (rc == MPN_E_BAD_URL)
    mpn__add_err(err, errlen, "malformed channel URL \"%s\": %s", ch->masked, why);
  if (rc == MPN_OK && by_host) {
    const mpn__kind *k = mpn__kind_by_host(u.host, u.path);
    if (k)
      ch->kind = k;
  }
  mpn__buf keep = {0};
  if (rc == MPN_OK && u.query)
    rc = take_options(ch, u.query, &keep, err, errlen);
  if (rc == MPN_OK && !(ch->url = mpn__url_rebuild(&u, keep.len ? keep.p : NULL)))
    rc = MPN_E_NO_MEMORY;
  free(keep.p);
  mpn__url_free(&u);
  return rc;
}

static mpn_code finish_channel(mpn__channel *ch, char *err, size_t errlen)
{
  mpn_code rc = resolve_options(ch, err, errlen);
  ch->timeout_ms = parse_long_opt(ch, "timeout_ms", 0, 100, 3600000, err, errlen, &rc);
  ch->connect_timeout_ms = parse_long_opt(ch, "connect_timeout_ms", 0, 100, 3600000, err, errlen, &rc);
  ch->retries = (int)parse_long_opt(ch, "retries", 4, 0, 100, err, errlen, &rc);
  parse_rate(ch, err, errlen, &rc);
  if (rc == MPN_OK && ch->kind->validate)
    rc = ch->kind->validate(ch, err, errlen);
  return rc;
}

static mpn_code parse_resolved(mpn__channel *ch, const char *url, char *err, size_t errlen)
{
  const char *target;
  ch->kind = kind_of(url, &target);
  if (!ch->kind) {
    mpn__add_err(err, errlen, "unknown channel kind in URL \"%s\" (known: %s; or an http(s):// or smtp(s):// URL)",
                 strstr(url, "://") ? ch->masked : url[0] ? "***" : "", mpn__kind_names());
    return MPN_E_UNKNOWN_KIND;
  }
  if (!ch->kind->prepare && ch->kind->local) {   /* console: nothing to parse */
    ch->url = strdup("stderr");
    return ch->url ? MPN_OK : MPN_E_NO_MEMORY;
  }
  if (ch->kind->custom) {   /* the program's own kind: its URL is its business */
    ch->url = strdup(url);
    ch->retries = 4;
    return ch->url ? MPN_OK : MPN_E_NO_MEMORY;
  }
  mpn_code rc = parse_target(ch, target, target == url && is_http(url), err, errlen);
  return rc == MPN_OK ? finish_channel(ch, err, errlen) : rc;
}

/* "env:NAME" or "file:/path", possibly followed by "?options" (a config
 * file's channel section adds its keys that way): the options go on the
 * URL the reference holds. */
static char *resolve_spec(const char *spec, const char *masked, char *err, size_t errlen)
{
  const char *q = mpn__is_ref(spec) ? strchr(spec, '?') : NULL;
  if (!q)
    return mpn__resolve_ref(spec, masked, err, errlen);
  char *ref = strndup(spec, (size_t)(q - spec)), *out = NULL;
  char *url = ref ? mpn__resolve_ref(ref, masked, err, errlen) : NULL;
  if (url && asprintf(&out, "%s%c%s", url, strchr(url, '?') ? '&' : '?', q + 1) < 0)
    out = NULL;
  free(ref);
  free(url);
  return out;
}

mpn_code mpn__parse_channel(const char *spec, mpn__channel *ch, char *err, size_t errlen)
{
  char masked[1024];
  memset(ch, 0, sizeof *ch);
  mpn_mask_url(spec, masked, sizeof masked);
  ch->spec = strdup(spec);
  ch->masked = strdup(masked);
  char *url = ch->spec && ch->masked ? resolve_spec(spec, masked, err, errlen) : NULL;
  mpn_code rc = url ? MPN_OK : ch->spec && ch->masked ? MPN_E_BAD_CONFIG : MPN_E_NO_MEMORY;
  if (rc == MPN_OK && mpn__is_ref(url)) {
    mpn__add_err(err, errlen, "%s holds another reference; it must hold a URL", masked);
    rc = MPN_E_BAD_CONFIG;
  }
  if (rc == MPN_OK && url != NULL && strcmp(url, spec)) {   /* show what the reference holds, masked */
    mpn_mask_url(url, masked, sizeof masked);
    free(ch->masked);
    ch->masked = strdup(masked);
  }
  if (rc == MPN_OK)
    rc = ch->masked ? parse_resolved(ch, url, err, errlen) : MPN_E_NO_MEMORY;
  free(url);
  if (rc != MPN_OK)
    mpn__channel_free(ch);
  return rc;
}

char *mpn__spec_with_options(const char *url, const mpn__opt *opts, int nopts)
{
  size_t cap = strlen(url) + 2;
  for (int i = 0; i < nopts; i++)
    cap += strlen(opts[i].key) + strlen(opts[i].value) * 3 + 2;
  char *out = malloc(cap);
  if (!out)
    return NULL;
  strcpy(out, url);
  char sep = strchr(url, '?') ? '&' : '?';
  for (int i = 0; i < nopts; i++) {
    char *val = mpn__url_escape(opts[i].value);
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%c%s=%s", sep, opts[i].key, val ? val : "");
    free(val);
    sep = '&';
  }
  return out;
}

