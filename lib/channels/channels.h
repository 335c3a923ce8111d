/* channels.h - the channels layer (docs/internals/channels.md): what a
 * configured channel is, the registry of channel kinds (one file per
 * service, plus kinds the program registers), how each builds its request
 * and reads the service's answer, and request signing. Uses base/, capture/
 * and format/. Only this layer's files include <curl/curl.h> (unit.layers
 * checks it): this header names curl's types without bringing curl to the
 * layers above, which move transfers through transfer.c's functions.
 * chat.h is private to the chat kinds (slack, discord, teams, telegram). */
#ifndef MPN_CHANNELS_H
#define MPN_CHANNELS_H

#include "format/format.h"

struct mpn__kind;
struct curl_slist;
struct curl_mime;

/* One option of a channel: a query parameter of its URL or a key of its
 * section in the config file. `value` is as configured (it may be a
 * reference, "env:NAME" or "file:/path"); `resolved` is what it refers to. */
typedef struct mpn__opt {
  char *key;
  char *value;
  char *resolved;
} mpn__opt;

typedef struct mpn__channel {
  const struct mpn__kind *kind;
  char *spec;      /* as configured, references unresolved: spool, relay, round trip */
  char *url;       /* the service's URL: no "KIND+", none of our options; holds secrets */
  char *masked;    /* the spec with every secret masked, for every output */
  mpn__opt *opts;
  int nopts;
  long timeout_ms;          /* total per attempt; 0: what the budget leaves */
  long connect_timeout_ms;
  int retries;              /* attempts after the first */
  int rate_n;               /* at most rate_n messages per rate_window_ms; 0: no limit */
  long rate_window_ms;
} mpn__channel;

/* ---- channel.c ----------------------------------------------------------- */
mpn_code mpn__channel_copy(mpn__channel *dst, const mpn__channel *src);
void mpn__channel_free(mpn__channel *ch);
/* The resolved value of an option, or NULL when it is not set. */
const char *mpn__channel_opt(const mpn__channel *ch, const char *key);
void mpn__scrub(char *text, const mpn__channel *ch);   /* blanks the channel's tokens quoted in text */

/* ---- what a kind does ---------------------------------------------------- */
/* What a channel sets up for one attempt; the engine frees every member. */
typedef struct mpn__attempt {
  void *easy;                    /* CURL *: common options already set (timeouts, TLS, proxy) */
  struct curl_slist *headers;
  struct curl_slist *rcpt;
  struct curl_mime *mime;
  char *url;
  char *body;
  size_t upload_len, upload_off; /* a raw upload of `body` (email) */
} mpn__attempt;

/* How a channel reads a service's answer. */
typedef struct mpn__verdict {
  mpn_code code;          /* MPN_OK: accepted */
  int retry;              /* worth another attempt */
  long retry_after_ms;    /* the service's own wait, -1 if none */
  char detail[256];       /* no secrets */
} mpn__verdict;

typedef struct mpn__kind {
  const char *name;                  /* "slack": the KIND in KIND+https:// */
  const char *form;                  /* how its URLs are written, one line (mpn_channel_kind) */
  const char *const *aliases;        /* other KINDs of KIND+https:// ("lark" for feishu); NULL-terminated */
  /* URL schemes that name this kind alone: SCHEME:// ("smtp"; http and https: the webhook kind, refined
   * by host); a local kind's scheme also alone or as SCHEME:... ("console"). NULL-terminated. */
  const char *const *schemes;
  const char *const *options;        /* query keys the kind consumes (NULL-terminated) */
  const char *const *secrets;        /* of those, the ones that are secret */
  const char *const *required;       /* of those, the ones that must be set */
  int rate_n;                        /* service limit: rate_n per rate_window_ms */
  long rate_window_ms;
  /* The service's own webhook URLs: these hosts (or their subdomains) and,
   * when set, a path starting with path_prefix. NULL: only by KIND+. */
  const char *const *hosts;
  const char *path_prefix;
  /* Checks what parsing cannot (e.g. an option's form); NULL: nothing. */
  mpn_code (*validate)(const mpn__channel *ch, char *err, size_t errlen);
  /* Builds the request for one attempt. */
  mpn_code (*prepare)(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a);
  /* Reads the answer; NULL: mpn__judge_http. */
  void (*judge)(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v);
  /* Delivers locally instead (console); NULL for network channels. */
  mpn_code (*local)(const mpn__channel *ch, const mpn_message *m);
  /* The service drops a repeated message (webhook-id, dedup_key): an attempt
   * whose request was sent but not answered may be retried. */
  int idempotent;
  /* A channel kind registered by the program (mpn_register_channel). */
  mpn_channel_send_fn custom;
  void *custom_user;
} mpn__kind;

/* ---- registry.c, custom.c ------------------------------------------------ */
const mpn__kind *mpn__kind_by_name(const char *name, size_t len);   /* built-in (name or alias) or registered */
const mpn__kind *mpn__kind_by_scheme(const char *url);   /* the kind the URL's scheme names alone, or NULL */
int mpn__kind_reserved(const char *name);   /* a built-in kind's name, alias or scheme */
const mpn__kind *mpn__kind_by_host(const char *host, const char *path);
const char *mpn__kind_names(void);   /* "console://, webhook+, ..." for error messages */
const mpn__kind *mpn__custom_kind(const char *name, size_t len);  /* registered only */
/* Registers (or replaces) a kind whose delivery is the program's function. */
mpn_code mpn__custom_register(const char *name, mpn_channel_send_fn send, void *user);

/* ---- judging answers ----------------------------------------------------- */
/* 2xx accepted; 408, 429 and 5xx retried (Retry-After, JSON retry_after). */
void mpn__judge_http(const mpn__channel *ch, long status, const char *body, size_t len, mpn__verdict *v);
/* JSON body helpers for judges: integer or string member, NULL/-1 when absent. */
int mpn__json_body_int(const char *body, size_t len, const char *key, long long *out);
double mpn__json_retry_after(const char *body, size_t len);   /* seconds, <0 if none */
/* For services with an error code in a 200 body; the code lists end with 0. */
void mpn__judge_body_code(const char *key, const char *msg_key, const long long *rate_codes,
                          const long long *fatal, long status, const char *body, size_t len, mpn__verdict *v);

/* ---- building requests --------------------------------------------------- */
/* Sets up a JSON POST of `doc` (a json_t *, consumed) to `url`. */
mpn_code mpn__json_post(mpn__attempt *a, const char *url, void *doc);
size_t mpn__room_after(size_t room, const char *s);       /* room minus s's length, at least 0 */
/* A payload built with `room` bytes for its long parts; returns a json_t *. */
typedef struct json_t *(*mpn__build_fn)(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room);
/* Builds, and shrinks the room until the compact JSON is at most `limit` bytes; the message's
 * view made and freed here. NULL when out of memory. */
void *mpn__fit_message(mpn__build_fn build, const mpn__channel *ch, const mpn_message *m, size_t room,
                       size_t limit);
/* A payload of a kind that fits its own parts (Slack's blocks, Discord's embed): built once from
 * the message's view, made and freed here. NULL when out of memory. */
typedef struct json_t *(*mpn__payload_fn)(const mpn__channel *ch, const mpn_message *m, const mpn__view *v);
void *mpn__view_payload(mpn__payload_fn fn, const mpn__channel *ch, const mpn_message *m);

/* ---- transfer.c: moving attempts, for the deliver layer ------------------ */
/* How one attempt's transfer is bounded and where its answer goes. */
typedef struct mpn__xfer_opts {
  long total_ms, connect_ms;
  const char *ca_bundle;   /* NULL: the system's */
  size_t (*collect)(char *data, size_t size, size_t n, void *arg);   /* the answer's body; NULL: dropped */
  void *arg;               /* collect's, and what mpn__xfers_done hands back */
} mpn__xfer_opts;

enum { MPN__XFER_FINAL, MPN__XFER_AGAIN, MPN__XFER_AGAIN_IF_UNSENT };

/* A finished transfer, read before its attempt is closed. */
typedef struct mpn__xfer_result {
  mpn_code code;          /* MPN_OK: an answer came; else MPN_E_DNS, _CONNECT, _TLS, _TIMEOUT, _DELIVERY */
  int retry;              /* MPN__XFER_*: whether a failed transfer is worth another attempt */
  int sent;               /* the request left: the service may have it */
  int refused;            /* a server reply ended it (SMTP: a refused command; its code is in status) */
  long status;            /* HTTP status or SMTP reply code; 0: none */
  long retry_after_ms;    /* the answer's Retry-After; -1: none */
  const char *error;      /* the failure's fixed description, never the URL; "" when none */
  double connect_ms, first_byte_ms, total_ms;
} mpn__xfer_result;

typedef struct mpn__xfers mpn__xfers;   /* transfers running together (the engine's) */

void mpn__transfer_prime(void);         /* libcurl's global set-up; before any thread of ours */
mpn__xfers *mpn__xfers_new(void);
void mpn__xfers_free(mpn__xfers *s);
void mpn__xfers_wake(mpn__xfers *s);    /* ends mpn__xfers_wait early; any thread */
/* Moves every transfer on without waiting; then mpn__xfers_done until NULL. */
void mpn__xfers_perform(mpn__xfers *s);
/* A finished attempt's opts.arg, its result in *r; NULL when none (more) finished. */
void *mpn__xfers_done(mpn__xfers *s, mpn__xfer_result *r);
void mpn__xfers_wait(mpn__xfers *s, long timeout_ms);   /* until a transfer needs us, a wake or the timeout */
/* Sets up a's transfer with the common options; then the kind's prepare, then mpn__xfers_add. */
mpn_code mpn__attempt_open(mpn__attempt *a, const mpn__xfer_opts *o);
int mpn__xfers_add(mpn__xfers *s, mpn__attempt *a);
void mpn__attempt_close(mpn__xfers *s, mpn__attempt *a);   /* out of s (may be NULL), every member freed */
/* A sealed frame POSTed to the launcher's relay: a->url and a->body (len bytes) set by the caller;
 * plain http, never through a proxy (the launcher is inside the cluster). */
void mpn__attempt_relay(mpn__attempt *a, size_t len);
/* The same POST, once, now, bounded by timeout_ms: the status; 0 with r->code when it failed, -1 when it
 * could not be set up. */
long mpn__relay_post_once(const char *url, const char *frame, size_t len, long timeout_ms, mpn__xfer_result *r);

/* ---- transfer.c: URLs, for config/url.c ---------------------------------- */
typedef struct mpn__url {
  char *host;     /* never empty */
  char *path;     /* "/" at least */
  char *query;    /* NULL: none */
  void *handle;   /* the parser's */
} mpn__url;
/* Any scheme. MPN_E_BAD_URL with *why (a fixed text), or MPN_E_NO_MEMORY; mpn__url_free either way. */
mpn_code mpn__url_parse(mpn__url *u, const char *url, const char **why);
char *mpn__url_rebuild(mpn__url *u, const char *query);   /* the whole URL, query replaced (NULL: none) */
void mpn__url_free(mpn__url *u);
/* Percent-encoding; malloc'd, NULL when out of memory. */
char *mpn__url_escape(const char *s);
char *mpn__url_unescape(const char *s, size_t n);

/* ---- sign.c: malloc'd signatures ----------------------------------------- */
/* DingTalk: URL-encoded; Feishu: base64; Standard Webhooks: "v1,<base64>". */
char *mpn__dingtalk_sign(const char *secret, long long ts_ms);
char *mpn__feishu_sign(const char *secret, long long ts_s);
char *mpn__stdwebhook_sign(const char *secret, const char *id, long long ts_s, const char *body);

#endif
