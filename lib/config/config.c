/* config.c - configuration from mpn_options, MPINOTIFY_* variables and the
 * file named by MPINOTIFY_CONFIG, in that order of precedence. Every problem
 * becomes one line in the caller's error buffer; the job never stops over a
 * bad setting: the valid parts are kept, defaults fill the rest. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the channel list ------------------------------------------------------ */

static mpn_code add_channel(mpn__config *cfg, const char *spec, char *err, size_t errlen)
{
  mpn__channel ch;
  mpn_code rc = mpn__parse_channel(spec, &ch, err, errlen);
  cfg->unknown_kinds += rc == MPN_E_UNKNOWN_KIND;
  if (rc != MPN_OK)
    return rc;
  for (int i = 0; i < cfg->nchannels; i++)
    if (!strcmp(cfg->channels[i].spec, ch.spec)) {   /* the same channel twice: one message */
      mpn__channel_free(&ch);
      return MPN_OK;
    }
  mpn__channel *grown = realloc(cfg->channels, sizeof ch * (size_t)(cfg->nchannels + 1));
  if (!grown) {
    mpn__channel_free(&ch);
    return MPN_E_NO_MEMORY;
  }
  cfg->channels = grown;
  cfg->channels[cfg->nchannels++] = ch;
  return MPN_OK;
}

/* Does a channel start here? "NAME://", "KIND+http...", "env:", "file:", "console". */
static int channel_starts(const char *p)
{
  if (!strncmp(p, "env:", 4) || !strncmp(p, "file:", 5) || !strncmp(p, "console", 7))
    return 1;
  size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-");
  return n && (!strncmp(p + n, "://", 3) || !strncmp(p + n, "+http", 5));
}

/* Splits at white space, and at a comma that starts another channel: a comma
 * inside a URL's options (to=a@x,b@y or at=138...,139...) stays. */
static mpn_code add_url_list(mpn__config *cfg, const char *urls, char *err, size_t errlen)
{
  mpn_code first = MPN_OK;
  for (const char *p = urls ? urls : ""; *p;) {
    p += strspn(p, " \t\r\n,");
    size_t n = 0;
    while (p[n] && !strchr(" \t\r\n", p[n]) && !(p[n] == ',' && channel_starts(p + n + 1 + strspn(p + n + 1, " "))))
      n++;
    while (n && p[n - 1] == ',')
      n--;   /* "url1, url2": the comma is a separator */
    if (!n)
      break;
    char *one = strndup(p, n);
    mpn_code rc = one ? add_channel(cfg, one, err, errlen) : MPN_E_NO_MEMORY;
    free(one);
    if (rc != MPN_OK && first == MPN_OK)
      first = rc;
    p += n;
  }
  return first;
}

static mpn_code add_file_channels(mpn__config *cfg, const mpn__file_config *fc, char *err, size_t errlen)
{
  mpn_code first = MPN_OK;
  for (int i = 0; i < fc->nchannels; i++) {
    const mpn__file_channel *fch = &fc->channels[i];
    if (!fch->url)
      continue;   /* reported by the reader */
    char *spec = mpn__spec_with_options(fch->url, fch->opts, fch->nopts);
    mpn_code rc = spec ? add_channel(cfg, spec, err, errlen) : MPN_E_NO_MEMORY;
    free(spec);
    if (rc != MPN_OK && first == MPN_OK)
      first = rc;
  }
  return first;
}

mpn_code mpn_check_urls(const char *urls, char *err, size_t errlen)
{
  mpn__config tmp;
  memset(&tmp, 0, sizeof tmp);
  if (err && errlen)
    err[0] = '\0';
  mpn_code rc = add_url_list(&tmp, urls, err, errlen);
  mpn__config_free(&tmp);
  return rc;
}

mpn_code mpn__parse_url_list(const char *urls, mpn__channel **out, int *n, char *err, size_t errlen)
{
  mpn__config tmp;
  memset(&tmp, 0, sizeof tmp);
  if (err && errlen)
    err[0] = '\0';
  mpn_code rc = add_url_list(&tmp, urls, err, errlen);
  *out = tmp.channels;
  *n = tmp.nchannels;
  tmp.channels = NULL;
  tmp.nchannels = 0;
  mpn__config_free(&tmp);
  return rc;
}

/* ---- settings ------------------------------------------------------------------ */

/* A setting from the environment, else from the config file's [mpinotify] section. */
static const char *setting(const mpn__file_config *fc, mpn__setting_id id)
{
  const char *v = getenv(mpn__setting(id)->name);
  return v && *v ? v : mpn__file_global(fc, mpn__setting(id)->key);
}

/* A number within the table's range (`set`: mpn_options' value, -1 if not
 * set); a bad value is one error line and the default. */
static long long number_setting(const mpn__file_config *fc, mpn__setting_id id, long long set, char *err,
                                size_t errlen, mpn_code *rc)
{
  const mpn_setting *s = mpn__setting(id);
  if (set >= 0)
    return set;
  const char *v = setting(fc, id);
  if (!v || !*v)
    return s->def;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || *end || x < s->min || x > s->max) {
    mpn__add_err(err, errlen, "%s=\"%.40s\" is not %s in %lld..%lld; using %lld", s->name, v,
                 !strcmp(s->type, "ms") ? "a number of milliseconds" : "a whole number", s->min, s->max, s->def);
    *rc = MPN_E_BAD_CONFIG;
    return s->def;
  }
  return x;
}

static void default_spool(const mpn__file_config *fc, char *out, size_t cap)
{
  const char *v = setting(fc, MPN__SET_SPOOL);
  if (v && *v) {
    mpn__strlcpy(out, v, cap);
    return;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(out, cap, "%s/mpinotify-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
}

char *mpn_spool_dir(void)
{
  mpn__file_config fc;
  memset(&fc, 0, sizeof fc);
  const char *file = getenv("MPINOTIFY_CONFIG");
  if (file && *file)
    mpn__config_file_read(file, &fc, NULL, 0);   /* its problems are a sender's to report */
  char dir[MPN__PATH_MAX];
  default_spool(&fc, dir, sizeof dir);
  mpn__config_file_free(&fc);
  return strdup(dir);
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

/* A Python rank is named by its script ("train.py") or module ("-m pkg.train";
 * "-m mpi4py train.py" runs train.py), as mpinotify-run names the job. */
static char *python_program_name(void)
{
  FILE *f = fopen("/proc/self/cmdline", "r");
  char buf[4096];
  size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f)
    fclose(f);
  buf[n] = '\0';
  const char *module = NULL;
  for (size_t i = strlen(buf) + 1; i < n; i += strlen(buf + i) + 1) {
    const char *a = buf + i;
    if (!strcmp(a, "-m") || !strcmp(a, "-c")) {
      if (a[1] == 'c' || (i += strlen(a) + 1) >= n)
        break;   /* -c CODE: no name to give */
      module = buf + i;
      if (strcmp(module, "mpi4py"))
        break;
    } else if (!strcmp(a, "-W") || !strcmp(a, "-X")) {
      i += strlen(a) + 1;   /* their value */
    } else if (a[0] != '-') {
      const char *slash = strrchr(a, '/');
      return strdup(slash ? slash + 1 : a);
    }
  }
  return module ? strdup(module) : NULL;
}

static void load_job(mpn__config *cfg, const mpn_options *opts, const mpn__file_config *fc)
{
  const char *name = opts && opts->job_name ? opts->job_name : setting(fc, MPN__SET_JOB_NAME);
  if (!name || !*name)
    name = getenv("SLURM_JOB_NAME");   /* every task of a Slurm job has it: the job's name is Slurm's */
  char *script = name && *name ? NULL : !strncmp(program_invocation_short_name, "python", 6) ? python_program_name() : NULL;
  cfg->job_name = strdup(name && *name ? name : script ? script : program_invocation_short_name);
  free(script);
  const char *cmd = opts && opts->job_command ? opts->job_command : getenv("MPINOTIFY_JOB_COMMAND");
  char *own = cmd ? NULL : default_command();
  cfg->job_command = mpn_mask_text(cmd ? cmd : own, NULL);
  free(own);
  const char *slurm[] = {getenv("SLURM_JOB_ID"), getenv("SLURM_JOB_NAME"), getenv("SLURM_STEP_ID")};
  char **mine[] = {&cfg->slurm_job_id, &cfg->slurm_job_name, &cfg->slurm_step};
  for (int i = 0; i < 3; i++)
    *mine[i] = slurm[i] && *slurm[i] ? strdup(slurm[i]) : NULL;
}

static void load_times(mpn__config *cfg, const mpn_options *opts, const mpn__file_config *fc, char *err,
                       size_t errlen, mpn_code *rc)
{
  cfg->timeout_ms = (long)number_setting(fc, MPN__SET_TIMEOUT_MS, opts ? opts->timeout_ms : -1, err, errlen, rc);
  cfg->window_ms = (long)number_setting(fc, MPN__SET_WINDOW_MS, opts ? opts->window_ms : -1, err, errlen, rc);
  /* every wake-up can preempt a busy rank: tests/bench/README.md */
  cfg->poll_ms = (long)number_setting(fc, MPN__SET_POLL_MS, -1, err, errlen, rc);
  cfg->symbolize_ms = (long)number_setting(fc, MPN__SET_SYMBOLIZE_MS, -1, err, errlen, rc);
  if (cfg->window_ms > cfg->timeout_ms / 2)
    cfg->window_ms = cfg->timeout_ms / 2;   /* the window must leave time to deliver */
}

static void load_choices(mpn__config *cfg, const mpn__file_config *fc, char *err, size_t errlen, mpn_code *rc)
{
  const char *thr = setting(fc, MPN__SET_MPI_THREAD);
  if (thr && *thr && strcmp(thr, "multiple") && strcmp(thr, "keep")) {
    mpn__add_err(err, errlen, "MPINOTIFY_MPI_THREAD=\"%.40s\" is neither \"multiple\" nor \"keep\"; using multiple", thr);
    *rc = MPN_E_BAD_CONFIG;
  }
  cfg->keep_thread_level = thr && !strcmp(thr, "keep");
  const char *relay = setting(fc, MPN__SET_RELAY);
  cfg->relay_mode = MPN__RELAY_AUTO;
  if (relay && !strcmp(relay, "always"))
    cfg->relay_mode = MPN__RELAY_ALWAYS;
  else if (relay && !strcmp(relay, "off"))
    cfg->relay_mode = MPN__RELAY_OFF;
  else if (relay && *relay && strcmp(relay, "auto")) {
    mpn__add_err(err, errlen, "MPINOTIFY_RELAY=\"%.40s\" is not auto, always or off; using auto", relay);
    *rc = MPN_E_BAD_CONFIG;
  }
  const char *dbg = setting(fc, MPN__SET_DEBUG);
  cfg->debug = dbg && (!strcmp(dbg, "1") || !strcasecmp(dbg, "yes") || !strcasecmp(dbg, "true") || !strcasecmp(dbg, "on"));
  cfg->config_checked = mpn__env_flag("MPINOTIFY_CONFIG_CHECKED");
}

/* Hang detection (docs/internals/waits.md): the wait that makes a hang, and what follows it. */
static void load_hang(mpn__config *cfg, const mpn__file_config *fc, char *err, size_t errlen, mpn_code *rc)
{
  cfg->hang_timeout_s = (long)number_setting(fc, MPN__SET_HANG_TIMEOUT, -1, err, errlen, rc);
  const char *action = setting(fc, MPN__SET_HANG_ACTION);
  if (action && *action && strcmp(action, "report") && strcmp(action, "abort")) {
    mpn__add_err(err, errlen, "MPINOTIFY_HANG_ACTION=\"%.40s\" is neither \"report\" nor \"abort\"; using report",
                 action);
    *rc = MPN_E_BAD_CONFIG;
  }
  cfg->hang_abort = action && !strcmp(action, "abort");
}

static void load_relay(mpn__config *cfg, char *err, size_t errlen, mpn_code *rc)
{
  const char *addr = getenv("MPINOTIFY_RELAY_ADDR"), *key = getenv("MPINOTIFY_RELAY_KEY");
  if (!addr || !*addr)
    return;
  unsigned char k[32];
  if (!key || mpn__hex_key(key, k) != 0) {
    mpn__add_err(err, errlen, "MPINOTIFY_RELAY_ADDR is set but MPINOTIFY_RELAY_KEY is missing or not 64 hex digits; "
                              "relaying is off");
    *rc = MPN_E_BAD_CONFIG;
    return;
  }
  cfg->relay_addr = strdup(addr);
  cfg->relay_key = strdup(key);
  cfg->relay_hold = mpn__env_flag("MPINOTIFY_RELAY_HOLD");
}

static void load_files(mpn__config *cfg, const mpn__file_config *fc, char *err, size_t errlen, mpn_code *rc)
{
  default_spool(fc, cfg->spool_dir, sizeof cfg->spool_dir);
  const char *ca = setting(fc, MPN__SET_CA_BUNDLE);
  if (ca && *ca) {
    if (access(ca, R_OK) == 0)
      cfg->ca_bundle = strdup(ca);
    else {
      mpn__add_err(err, errlen, "MPINOTIFY_CA_BUNDLE=\"%.200s\" is not a readable file; using the system's CAs", ca);
      *rc = MPN_E_BAD_CONFIG;
    }
  }
}

/* A misspelt setting in the file must not pass in silence. */
static mpn_code check_file_keys(const mpn__file_config *fc, char *err, size_t errlen)
{
  char known[512] = "";
  for (int k = 0; k < MPN__NSETTINGS; k++)
    snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", k ? ", " : "", mpn__setting(k)->key);
  mpn_code rc = MPN_OK;
  for (int i = 0; i < fc->nglobals; i++) {
    int k = 0;
    while (k < MPN__NSETTINGS && strcmp(mpn__setting(k)->key, fc->globals[i].key))
      k++;
    if (k == MPN__NSETTINGS) {
      mpn__add_err(err, errlen, "config file: unknown setting \"%.40s\" in [mpinotify] (known: %s)",
                   fc->globals[i].key, known);
      rc = MPN_E_BAD_CONFIG;
    }
  }
  return rc;
}

/* "type,site,context,message" -> MPN_SIGNATURE_* bits */
static unsigned signature_parts(const mpn__file_config *fc, long long set, char *err, size_t errlen, mpn_code *rc)
{
  if (set >= 0)
    return (unsigned)set;
  const char *v = setting(fc, MPN__SET_EXCEPTION_SIGNATURE);
  unsigned parts = 0, def = MPN_SIGNATURE_TYPE | MPN_SIGNATURE_SITE | MPN_SIGNATURE_CONTEXT;
  static const char *const names[] = {"type", "site", "context", "message"};
  for (const char *p = v; p && *p;) {
    size_t n = strcspn(p, ", ");
    unsigned bit = 0;
    for (unsigned i = 0; i < 4; i++)
      if (n == strlen(names[i]) && !strncmp(p, names[i], n))
        bit = 1u << i;
    if (n && !bit) {
      mpn__add_err(err, errlen, "MPINOTIFY_EXCEPTION_SIGNATURE=\"%.60s\": parts are type, site, context, message; "
                   "using type,site,context", v);
      *rc = MPN_E_BAD_CONFIG;
      return def;
    }
    parts |= bit;
    p += n + strspn(p + n, ", ");
  }
  return parts ? parts : def;
}

/* A setting that is on unless turned off. */
static int flag_off(const char *x)
{
  return x && (!strcmp(x, "0") || !strcasecmp(x, "off") || !strcasecmp(x, "no") || !strcasecmp(x, "false"));
}

static void load_events(mpn__config *cfg, const mpn_options *opts, const mpn__file_config *fc, char *err,
                        size_t errlen, mpn_code *rc)
{
  cfg->exception_parts = signature_parts(fc, opts ? opts->exception_parts : -1, err, errlen, rc);
  cfg->alert_cooldown = number_setting(fc, MPN__SET_ALERT_COOLDOWN, opts ? opts->alert_cooldown : -1, err, errlen, rc);
  cfg->alert_cap = (long)number_setting(fc, MPN__SET_ALERT_CAP, opts ? opts->alert_cap : -1, err, errlen, rc);
  cfg->progress_every = number_setting(fc, MPN__SET_PROGRESS_EVERY, opts ? opts->progress_every : -1, err, errlen,
                                       rc);
  cfg->exit_reports = !flag_off(setting(fc, MPN__SET_EXIT_REPORTS));
  long long lines = number_setting(fc, MPN__SET_RANK_OUTPUT_LINES, -1, err, errlen, rc);
  cfg->rank_output_lines = flag_off(setting(fc, MPN__SET_RANK_OUTPUT)) ? 0 : (int)lines;
}

int mpn__config_rank_output_lines(void)
{
  mpn__file_config fc;
  memset(&fc, 0, sizeof fc);
  const char *file = getenv("MPINOTIFY_CONFIG");
  if (file && *file)
    mpn__config_file_read(file, &fc, NULL, 0);   /* its problems are the full load's to report */
  char err[256];
  mpn_code rc = MPN_OK;
  long long lines = number_setting(&fc, MPN__SET_RANK_OUTPUT_LINES, -1, err, sizeof err, &rc);
  int off = flag_off(setting(&fc, MPN__SET_RANK_OUTPUT));
  mpn__config_file_free(&fc);
  return off ? 0 : (int)lines;
}

static void keep_first(mpn_code *rc, mpn_code now)
{
  if (*rc == MPN_OK && now != MPN_OK)
    *rc = now;
}

mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen)
{
  mpn_code rc = MPN_OK;
  memset(cfg, 0, sizeof *cfg);
  if (err && errlen)
    err[0] = '\0';
  mpn__file_config fc;
  memset(&fc, 0, sizeof fc);
  const char *file = getenv("MPINOTIFY_CONFIG");
  if (opts && opts->config_text) {
    keep_first(&rc, mpn__config_text_read(opts->config_text, &fc, err, errlen));
  } else if (file && *file) {
    cfg->config_file = strdup(file);
    keep_first(&rc, mpn__config_file_read(file, &fc, err, errlen));
  }
  const char *urls = opts && opts->urls ? opts->urls : getenv(mpn__setting(MPN__SET_URLS)->name);
  const char *file_urls = mpn__file_global(&fc, "urls");
  keep_first(&rc, check_file_keys(&fc, err, errlen));
  keep_first(&rc, add_file_channels(cfg, &fc, err, errlen));
  keep_first(&rc, add_url_list(cfg, file_urls, err, errlen));
  keep_first(&rc, add_url_list(cfg, urls, err, errlen));
  int none = (!urls || !urls[strspn(urls, " \t\r\n,")]) && fc.nchannels == 0 && !file_urls;
  if (cfg->nchannels == 0 && none)
    add_channel(cfg, "console://", err, errlen);   /* nothing configured: still never silent */
  load_job(cfg, opts, &fc);
  load_times(cfg, opts, &fc, err, errlen, &rc);
  load_choices(cfg, &fc, err, errlen, &rc);
  load_hang(cfg, &fc, err, errlen, &rc);
  load_relay(cfg, err, errlen, &rc);
  load_events(cfg, opts, &fc, err, errlen, &rc);
  load_files(cfg, &fc, err, errlen, &rc);
  mpn__config_file_free(&fc);
  return rc;
}

void mpn__config_console_fallback(mpn__config *cfg)
{
  if (cfg->nchannels == 0)
    add_channel(cfg, "console://", NULL, 0);
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
  for (int i = 0; i < cfg->nchannels; i++)
    mpn__channel_free(&cfg->channels[i]);
  free(cfg->channels);
  free(cfg->job_name);
  free(cfg->job_command);
  free(cfg->slurm_job_id);
  free(cfg->slurm_job_name);
  free(cfg->slurm_step);
  free(cfg->ca_bundle);
  free(cfg->relay_addr);
  free(cfg->relay_key);
  free(cfg->config_file);
  memset(cfg, 0, sizeof *cfg);
}

/* ---- the configuration the process runs with ---------------------------
 * Readers on any thread (the agent, the application's threads reporting an
 * exception or an MPI error, the engine) take the pointer once and use it
 * while it is valid: a published configuration is never changed and never
 * freed, so a reload (a channel kind registered later, mpn_init after the
 * constructor armed) cannot pull it from under a reader. Reloads are rare
 * (once per registration at start-up): keeping the old ones costs a few KiB. */
static _Atomic(mpn__config *) current;
static const mpn__config unset;   /* before the first load: every setting zero */

const mpn__config *mpn__cfg(void)
{
  const mpn__config *c = atomic_load_explicit(&current, memory_order_acquire);
  return c ? c : &unset;
}

void mpn__config_publish(mpn__config *fresh)
{
  mpn__config *c = malloc(sizeof *c);
  if (!c) {
    mpn__config_free(fresh);
    return;   /* the previous configuration stays */
  }
  *c = *fresh;
  memset(fresh, 0, sizeof *fresh);
  atomic_store(&mpn__log_debug_on, c->debug);
  atomic_store_explicit(&current, c, memory_order_release);
}
