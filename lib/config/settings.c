/* settings.c - the settings table (config.h, MPN__SETTINGS) as the public
 * mpn_setting descriptions, and mpn_options with its setters: every range a
 * setter checks is the table's. */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

static const mpn_setting table[MPN__NSETTINGS] = {
#define MPN__SETTING_ROW(id, key, type, lo, hi, def, help) \
  {"MPINOTIFY_" #id, key, MPN__TYPE_##type, lo, hi, def, help},
#define MPN__TYPE_TEXT "text"
#define MPN__TYPE_MS "ms"
#define MPN__TYPE_COUNT "count"
#define MPN__TYPE_FLAG "flag"
#define MPN__TYPE_CHOICE "choice"
#define MPN__TYPE_LIST "list"
  MPN__SETTINGS(MPN__SETTING_ROW)
#undef MPN__SETTING_ROW
};

const mpn_setting *mpn__setting(mpn__setting_id id)
{
  return &table[id];
}

const mpn_setting *mpn_setting_at(int i)
{
  return i >= 0 && i < MPN__NSETTINGS ? &table[i] : NULL;
}

/* ---- mpn_options ----------------------------------------------------------- */

mpn_options *mpn_options_new(void)
{
  mpn_options *o = calloc(1, sizeof *o);
  if (o) {
    o->timeout_ms = o->window_ms = -1;
    o->exception_parts = o->alert_cooldown = o->alert_cap = o->progress_every = -1;
  }
  return o;
}

void mpn_options_free(mpn_options *o)
{
  if (!o)
    return;
  free(o->urls);
  free(o->job_name);
  free(o->job_command);
  free(o->config_text);
  free(o);
}

void mpn_free(void *p)
{
  free(p);
}

static mpn_code set_string(mpn_options *o, char **field, const char *v)
{
  if (!o || !v)
    return MPN_E_INVALID_ARGUMENT;
  char *copy = strdup(v);
  if (!copy)
    return MPN_E_NO_MEMORY;
  free(*field);
  *field = copy;
  return MPN_OK;
}

/* A number within the setting's range, or MPN_E_INVALID_ARGUMENT. */
static mpn_code set_number(mpn_options *o, long long *field, mpn__setting_id id, long long v)
{
  if (!o || v < table[id].min || v > table[id].max)
    return MPN_E_INVALID_ARGUMENT;
  *field = v;
  return MPN_OK;
}

mpn_code mpn_options_set_urls(mpn_options *o, const char *urls)
{
  return set_string(o, o ? &o->urls : NULL, urls);
}

mpn_code mpn_options_set_job_name(mpn_options *o, const char *name)
{
  return set_string(o, o ? &o->job_name : NULL, name);
}

mpn_code mpn_options_set_job_command(mpn_options *o, const char *command)
{
  return set_string(o, o ? &o->job_command : NULL, command);
}

mpn_code mpn_options_set_config(mpn_options *o, const char *config)
{
  return set_string(o, o ? &o->config_text : NULL, config);
}

mpn_code mpn_options_set_timeout_ms(mpn_options *o, long ms)
{
  return set_number(o, o ? &o->timeout_ms : NULL, MPN__SET_TIMEOUT_MS, ms);
}

mpn_code mpn_options_set_window_ms(mpn_options *o, long ms)
{
  return set_number(o, o ? &o->window_ms : NULL, MPN__SET_WINDOW_MS, ms);
}

mpn_code mpn_options_set_exception_signature(mpn_options *o, unsigned parts)
{
  if (!o || parts == 0 || parts > (MPN_SIGNATURE_TYPE | MPN_SIGNATURE_SITE | MPN_SIGNATURE_CONTEXT |
                                   MPN_SIGNATURE_MESSAGE))
    return MPN_E_INVALID_ARGUMENT;
  o->exception_parts = parts;
  return MPN_OK;
}

mpn_code mpn_options_set_alert_cooldown(mpn_options *o, long long steps)
{
  return set_number(o, o ? &o->alert_cooldown : NULL, MPN__SET_ALERT_COOLDOWN, steps);
}

mpn_code mpn_options_set_alert_cap(mpn_options *o, long long cap)
{
  return set_number(o, o ? &o->alert_cap : NULL, MPN__SET_ALERT_CAP, cap);
}

mpn_code mpn_options_set_progress_every(mpn_options *o, long long steps)
{
  return set_number(o, o ? &o->progress_every : NULL, MPN__SET_PROGRESS_EVERY, steps);
}
