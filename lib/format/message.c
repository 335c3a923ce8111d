/* message.c - mpn_message: every message (a crash report, a test, a custom
 * message, later exceptions, alerts and job events) is one JSON object of
 * schema mpinotify/1 with a stable id. The spool and the relay carry it as
 * JSON; each channel renders it. */
#include "format/format.h"

#include <fcntl.h>
#include <signal.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void new_id(char *out, size_t cap)
{
  unsigned char r[16] = {0};
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, r, sizeof r) : -1;
  if (fd >= 0)
    close(fd);
  if (n != (ssize_t)sizeof r) {   /* no urandom (chroot): time and pid are unique enough */
    uint64_t t = (uint64_t)mpn__wall_ns(), p = (uint64_t)getpid();
    memcpy(r, &t, 8);
    memcpy(r + 8, &p, 8);
  }
  size_t len = mpn__fmt_str(out, cap, 0, "msg_");
  for (int i = 0; i < 16; i++) {
    char h[3];
    snprintf(h, sizeof h, "%02x", r[i]);
    len = mpn__fmt_str(out, cap, len, h);
  }
  out[len < cap ? len : cap - 1] = '\0';
}

static mpn_message *wrap(json_t *doc, const char *id)
{
  mpn_message *m = doc ? calloc(1, sizeof *m) : NULL;
  if (!m) {
    json_decref(doc);
    return NULL;
  }
  if (id && *id && strlen(id) < sizeof m->id)
    mpn__strlcpy(m->id, id, sizeof m->id);
  else
    new_id(m->id, sizeof m->id);
  json_object_set_new(doc, "id", json_string(m->id));
  m->doc = doc;
  return m;
}

mpn_message *mpn_message_new(const char *event)
{
  if (!event || !*event)
    return NULL;
  char ts[40];
  mpn__iso8601(mpn__wall_ns(), ts, sizeof ts);
  json_t *o = json_pack("{s:s, s:o, s:s, s:s}", "schema", "mpinotify/1", "event", mpn__jstr(event),
                        "severity", "info", "timestamp", ts);
  if (o)
    json_object_set_new(o, "mpinotify_version", json_string(MPN_VERSION_STRING));
  return wrap(o, NULL);
}

void mpn_message_free(mpn_message *m)
{
  if (!m)
    return;
  json_decref(m->doc);
  free(m);
}

mpn_message *mpn__message_from_report(const mpn__report *r)
{
  return wrap(mpn__report_doc(r), NULL);
}

mpn_message *mpn__message_from_json(const char *text, const char *id)
{
  json_t *o = json_loads(text, 0, NULL);
  if (o && !json_is_object(o)) {
    json_decref(o);
    o = NULL;
  }
  const char *own = o ? json_string_value(json_object_get(o, "id")) : NULL;
  return wrap(o, id ? id : own);
}

char *mpn__message_dump(const mpn_message *m)
{
  return json_dumps(m->doc, JSON_PRESERVE_ORDER | JSON_COMPACT);
}

char *mpn_message_json(const mpn_message *m)
{
  return m ? mpn__message_dump(m) : NULL;
}

/* "Rank 3 (pid 42 on n17) was killed by SIGKILL ...", or "Ranks 3 (pid 42
 * on n17) and 5 (...) were killed ..." for a group; malloc'd or NULL. */
static char *crashes_text(const mpn_launcher_crash *c, size_t n)
{
  mpn__buf b = mpn__buf_make(256);
  mpn__buf_add(&b, "%s", n == 1 ? "Rank" : "Ranks");
  for (size_t i = 0; i < n; i++)
    mpn__buf_add(&b, "%s %d (pid %ld on %s)", i == 0 ? "" : i + 1 == n ? " and" : ",", c[i].rank,
                 c[i].pid > 0 ? c[i].pid : 0L, c[i].host && *c[i].host ? c[i].host : "?");
  mpn__buf_add(&b, " %s killed by %s (signal %d) and could not report it: the launcher noticed %s.%s",
               n == 1 ? "was" : "were", mpn__signal_name(c->signo), c->signo, n == 1 ? "its death" : "their deaths",
               c->signo == SIGKILL ? " SIGKILL is what the kernel's OOM killer and batch systems' limits send." : "");
  return b.p;
}

static int crash_ok(const mpn_launcher_crash *c)
{
  return c->rank >= 0 && c->signo >= 0 && c->time_ms >= 0 && c->time_ms <= INT64_MAX / 1000000;
}

/* What a launcher knows of ranks that ended without a report, as the ranks'
 * own crash report lays it out (json.c, by_launcher): one failure, one
 * message, of `kind`, its signature from `key` ("launcher:SIGKILL"). */
static mpn_message *launcher_report(const char *kind, const char *headline, const char *key,
                                    const mpn_launcher_crash *c, size_t n)
{
  mpn__event *ev = calloc(1, sizeof *ev);   /* room for a backtrace: too big for a tool thread's stack */
  mpn__proc *p = ev ? calloc(n, sizeof *p) : NULL;
  if (!p) {
    free(ev);
    return NULL;
  }
  ev->kind = kind;
  ev->severity = "critical";
  ev->signo = c->signo;
  ev->wall_ns = (int64_t)c->time_ms * 1000000;
  ev->signature = mpn__hash_str(MPN__FNV_OFFSET, key);
  ev->fatal = 1;
  mpn__strlcpy(ev->headline, headline, sizeof ev->headline);
  for (size_t i = 0; i < n; i++) {
    p[i] = (mpn__proc){.rank = c[i].rank, .pid = c[i].pid > 0 && c[i].pid <= INT32_MAX ? (int)c[i].pid : 0};
    mpn__strlcpy(p[i].host, c[i].host ? c[i].host : "", sizeof p[i].host);
  }
  mpn__report r = {.event = ev, .first_wall_ns = ev->wall_ns, .leader = p[0], .procs = p, .nprocs = (int)n,
                   .world_size = c->world_size, .job_name = c->job_name, .by_launcher = 1};
  mpn_message *m = mpn__message_from_report(&r);
  free(p);
  free(ev);
  return m;
}

static int crashes_ok(const mpn_launcher_crash *c, size_t n, int same_signal)
{
  if (!c || n == 0 || n > 1u << 20)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!crash_ok(&c[i]) || (same_signal && c[i].signo != c->signo))
      return 0;
  return 1;
}

/* Sets the text (consumed); frees m and returns NULL when that fails. */
static mpn_message *with_text(mpn_message *m, char *text)
{
  if (m && (!text || mpn_message_set_text(m, text) != MPN_OK)) {
    mpn_message_free(m);
    m = NULL;
  }
  free(text);
  return m;
}

mpn_message *mpn_launcher_crashes_new(const mpn_launcher_crash *c, size_t n)
{
  if (!crashes_ok(c, n, 1) || c->signo <= 0)
    return NULL;
  char key[64];
  snprintf(key, sizeof key, "launcher:%s", mpn__signal_name(c->signo));
  mpn_message *m = launcher_report("crash", mpn__signal_name(c->signo), key, c, n);
  return with_text(m, m ? crashes_text(c, n) : NULL);
}

/* "Node n17 stopped answering: ..." for mpn_launcher_node_lost_new; malloc'd or NULL. */
static char *lost_text(const char *host, const mpn_launcher_crash *c, size_t n)
{
  mpn__buf b = mpn__buf_make(256);
  mpn__buf_add(&b, "Node %s was lost: the launcher lost its daemon there, and with it %s", host,
               n == 1 ? "rank" : "ranks");
  for (size_t i = 0; i < n; i++)
    mpn__buf_add(&b, "%s %d (pid %ld)", i == 0 ? "" : i + 1 == n ? " and" : ",", c[i].rank, c[i].pid > 0 ? c[i].pid : 0L);
  mpn__buf_add(&b, ", which could not report it. A node's failure or reboot, its network, or the death of the "
                   "daemon (the OOM killer, a batch system) do that.");
  return b.p;
}

mpn_message *mpn_launcher_node_lost_new(const char *host, const mpn_launcher_crash *c, size_t n)
{
  if (!host || !*host || strlen(host) > 255 || !crashes_ok(c, n, 0))
    return NULL;
  char headline[300];
  snprintf(headline, sizeof headline, "Node %s lost", host);
  mpn_message *m = launcher_report("node_lost", headline, "launcher:node_lost", c, n);
  if (m && json_object_set_new(m->doc, "lost_host", mpn__jstr(host)) != 0) {
    mpn_message_free(m);
    m = NULL;
  }
  return with_text(m, m ? lost_text(host, c, n) : NULL);
}

mpn_message *mpn_launcher_crash_new(const mpn_launcher_crash *c)
{
  return mpn_launcher_crashes_new(c, 1);
}

const char *mpn__msg_str(const mpn_message *m, const char *key)
{
  return json_string_value(json_object_get(m->doc, key));
}

static int reserved(const char *key)
{
  return !strcmp(key, "schema") || !strcmp(key, "event") || !strcmp(key, "id");
}

mpn_code mpn_message_set_string(mpn_message *m, const char *key, const char *value)
{
  if (!m || !key || !*key || !value || reserved(key))
    return MPN_E_INVALID_ARGUMENT;
  return json_object_set_new(m->doc, key, mpn__jstr(value)) == 0 ? MPN_OK : MPN_E_NO_MEMORY;
}

mpn_code mpn_message_set_integer(mpn_message *m, const char *key, long long value)
{
  if (!m || !key || !*key || reserved(key))
    return MPN_E_INVALID_ARGUMENT;
  return json_object_set_new(m->doc, key, json_integer(value)) == 0 ? MPN_OK : MPN_E_NO_MEMORY;
}

mpn_code mpn_message_set_json(mpn_message *m, const char *key, const char *json)
{
  if (!m || !key || !*key || !json || reserved(key))
    return MPN_E_INVALID_ARGUMENT;
  json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
  if (!v)
    return MPN_E_INVALID_ARGUMENT;
  return json_object_set_new(m->doc, key, v) == 0 ? MPN_OK : MPN_E_NO_MEMORY;
}

mpn_code mpn_message_set_title(mpn_message *m, const char *title)
{
  return mpn_message_set_string(m, "title", title);
}

mpn_code mpn_message_set_text(mpn_message *m, const char *text)
{
  return mpn_message_set_string(m, "text", text);
}

mpn_code mpn_message_set_severity(mpn_message *m, const char *sev)
{
  static const char *const known[] = {"info", "warning", "error", "critical"};
  for (size_t i = 0; sev && i < sizeof known / sizeof known[0]; i++)
    if (!strcmp(sev, known[i]))
      return mpn_message_set_string(m, "severity", sev);
  return MPN_E_INVALID_ARGUMENT;
}

const char *mpn__message_title(const mpn_message *m)
{
  const char *t = mpn__msg_str(m, "title");
  return t ? t : "mpinotify message";
}
