/* pagerduty.c - PagerDuty Events API v2: a trigger event with the routing
 * key in the body. Crashes get a dedup_key from the job and the failure
 * signature, so repeats of the same failure group into one incident. 202 is
 * success, 400 is final, 429 and 5xx are retried (mpn__judge_http). */
#include "channels/channels.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PD_LIMIT 512000    /* bytes of the event (the service takes 512 KB) */
#define PD_SUMMARY 1024    /* characters */
#define PD_DEDUP 255       /* characters */

static const char *const options[] = {"routing_key", NULL};
static const char *const secrets[] = {"routing_key", NULL};
static const char *const required[] = {"routing_key", NULL};

static const char *pd_severity(const char *sev)
{
  return !strcmp(sev, "critical") || !strcmp(sev, "error") || !strcmp(sev, "warning") ? sev : "info";
}

/* "mpinotify:<job>:<signature>" for crashes (the job cut on a character
 * boundary so the key stays within PD_DEDUP bytes); else the message's id,
 * which every retry and flush of the message keeps. */
static json_t *dedup_key(const mpn_message *m, const mpn__view *v)
{
  char key[PD_DEDUP + 1];
  if (!strcmp(v->event, "crash") && v->signature) {
    const char *job = v->job ? v->job : "";
    size_t room = PD_DEDUP - strlen("mpinotify::") - strnlen(v->signature, 64), n = strlen(job);
    while (n > room || (n > 0 && (job[n] & 0xc0) == 0x80))
      n--;
    snprintf(key, sizeof key, "mpinotify:%.*s:%.64s", (int)n, job, v->signature);
  } else {
    snprintf(key, sizeof key, "mpinotify:%s", m->id);
  }
  return mpn__jstr(key);
}

/* The leader's host for crashes (where it happened), else this host. */
static json_t *source(const mpn_message *m)
{
  json_t *leader = json_object_get((json_t *)m->doc, "leader");
  const char *h = json_string_value(json_object_get(leader, "hostname"));
  char host[MPN__HOST_MAX] = "";
  if (!h && gethostname(host, sizeof host - 1) != 0)
    strcpy(host, "unknown");
  return mpn__jstr(h ? h : host);
}

static void detail(json_t *d, const char *key, char *value)
{
  if (value)
    json_object_set_new(d, key, mpn__jstr(value));
  free(value);
}

/* custom_details: the facts, then the long parts within `room` bytes. */
static json_t *details(const mpn__view *v, size_t room)
{
  json_t *d = json_object();
  for (int i = 0; d && i < v->nfacts; i++)
    json_object_set_new(d, v->facts[i].label, mpn__jstr(v->facts[i].value));
  if (v->command)
    json_object_set_new(d, "Command", mpn__jstr(v->command));
  char *bt = mpn__clip(v->backtrace, room / 4, 0);
  size_t left = mpn__room_after(room, bt);
  char *ranks = mpn__clip(v->ranks, left / 3, 0);
  left = mpn__room_after(left, ranks);
  char *procs = mpn__clip(v->processes, v->text ? left / 2 : left, 0);
  char *text = mpn__clip(v->text, mpn__room_after(left, procs), 0);
  detail(d, "Rank list", ranks);
  detail(d, "Text", text);
  detail(d, "Backtrace", bt);
  detail(d, "Processes", procs);
  return d;
}

static json_t *build(const mpn__channel *ch, const mpn_message *m, const mpn__view *v, size_t room)
{
  char *summary = mpn__clip(v->title, PD_SUMMARY, 1);
  json_t *p = json_pack("{s:o, s:o, s:s}", "summary", mpn__jstr(summary), "source", source(m), "severity",
                        pd_severity(v->severity));
  free(summary);
  if (p && v->timestamp)
    json_object_set_new(p, "timestamp", mpn__jstr(v->timestamp));
  if (p && v->job)
    json_object_set_new(p, "component", mpn__jstr(v->job));
  if (p && v->hosts)
    json_object_set_new(p, "group", mpn__jstr(v->hosts));
  if (p) {
    json_object_set_new(p, "class", mpn__jstr(v->event));
    json_object_set_new(p, "custom_details", details(v, room));
  }
  return json_pack("{s:s, s:s, s:o, s:o, s:s}", "routing_key", mpn__channel_opt(ch, "routing_key"), "event_action",
                   "trigger", "dedup_key", dedup_key(m, v), "payload", p, "client", "mpinotify");
}

static mpn_code prepare(const mpn__channel *ch, const mpn_message *m, mpn__attempt *a)
{
  json_t *o = mpn__fit_message(build, ch, m, PD_LIMIT, PD_LIMIT);
  return o ? mpn__json_post(a, ch->url, o) : MPN_E_NO_MEMORY;
}

static const char *const hosts[] = {"events.pagerduty.com", "events.eu.pagerduty.com", NULL};   /* its own webhook URLs */

const mpn__kind mpn__kind_pagerduty = {
  .form = "pagerduty+https://... (or https://events.pagerduty.com/...)",
  .name = "pagerduty", .options = options, .secrets = secrets, .required = required,
  .rate_n = 120, .rate_window_ms = 60000, .hosts = hosts, .prepare = prepare,
  .idempotent = 1,   /* dedup_key groups a repeat into the same alert */
};
