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
#include <sys/stat.h>
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

/* What a load reads from, and where its problems go. */
typedef struct loading {
  const mpn_options *opts;   /* may be NULL */
  const mpn__file_config *fc;
  char *err;
  size_t errlen;
  mpn_code rc;   /* the first problem's */
} loading;

/* A setting from the environment, else (a row with a key) from the config file's [mpinotify] section. */
static const char *setting(const mpn__file_config *fc, mpn__setting_id id)
{
  const char *v = mpn__setting_env(id), *key = mpn__setting(id)->key;
  return v ? v : key ? mpn__file_global(fc, key) : NULL;
}

/* The file MPINOTIFY_CONFIG names, if any, into fc (zeroed first). */
static mpn_code read_config_file(mpn__file_config *fc, char *err, size_t errlen)
{
  memset(fc, 0, sizeof *fc);
  const char *file = mpn__setting_env(MPN__SET_CONFIG);
  return file ? mpn__config_file_read(file, fc, err, errlen) : MPN_OK;
}

/* Every row as code, the environment and the file give it: a text as written
 * (urls excepted: its channels hold it), the others parsed by their row. */
static void load_rows(mpn__config *cfg, loading *ld)
{
  for (int id = 0; id < MPN__NSETTINGS; id++) {
    const char *set = ld->opts ? ld->opts->text[id] : NULL, *v = set ? set : setting(ld->fc, id);
    long long number = ld->opts ? ld->opts->number[id] : -1;
    if (!mpn__setting_is(id, "text"))
      cfg->value[id] = number >= 0 ? number : mpn__setting_parse(id, v, ld->err, ld->errlen, &ld->rc);
    else if (v && *v && id != MPN__SET_URLS)
      cfg->text[id] = strdup(v);
  }
}

/* A text row holds what the configuration resolved it to (value: a copy, or NULL). */
static void resolved(mpn__config *cfg, mpn__setting_id id, const char *value)
{
  free(cfg->text[id]);
  cfg->text[id] = value ? strdup(value) : NULL;
}

/* In a shared /tmp anyone can make our default's name first (a directory, a
 * link): not ours to use. Absent: ours to make. */
static int someone_elses(const char *dir)
{
  struct stat st;
  if (lstat(dir, &st) != 0)
    return 0;
  return !S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 022);
}

/* MPINOTIFY_SPOOL, else $TMPDIR/mpinotify-UID, else (when someone else holds
 * that name) $XDG_RUNTIME_DIR/mpinotify, the login's own directory. */
static void default_spool(const mpn__file_config *fc, char *out, size_t cap)
{
  const char *v = setting(fc, MPN__SET_SPOOL);
  if (v && *v) {
    mpn__strlcpy(out, v, cap);
    return;
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(out, cap, "%s/mpinotify-%u", tmp && *tmp ? tmp : "/tmp", (unsigned)getuid());
  const char *own = getenv("XDG_RUNTIME_DIR");
  if (someone_elses(out) && own && own[0] == '/')
    snprintf(out, cap, "%s/mpinotify", own);
}

char *mpn_spool_dir(void)
{
  mpn__file_config fc;
  read_config_file(&fc, NULL, 0);   /* its problems are a sender's to report */
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

static void load_job(mpn__config *cfg)
{
  const char *name = cfg->text[MPN__SET_JOB_NAME];
  if (!name)
    name = getenv("SLURM_JOB_NAME");   /* every task of a Slurm job has it: the job's name is Slurm's */
  char *script = name && *name ? NULL : !strncmp(program_invocation_short_name, "python", 6) ? python_program_name() : NULL;
  cfg->job_name = strdup(name && *name ? name : script ? script : program_invocation_short_name);
  free(script);
  resolved(cfg, MPN__SET_JOB_NAME, cfg->job_name);
  const char *cmd = cfg->text[MPN__SET_JOB_COMMAND];
  char *own = cmd ? NULL : default_command();
  cfg->job_command = mpn_mask_text(cmd ? cmd : own, NULL);
  free(own);
  resolved(cfg, MPN__SET_JOB_COMMAND, cfg->job_command);   /* never the secrets it had */
  const char *slurm[] = {getenv("SLURM_JOB_ID"), getenv("SLURM_JOB_NAME"), getenv("SLURM_STEP_ID")};
  char **mine[] = {&cfg->slurm_job_id, &cfg->slurm_job_name, &cfg->slurm_step};
  for (int i = 0; i < 3; i++)
    *mine[i] = slurm[i] && *slurm[i] ? strdup(slurm[i]) : NULL;
}

/* The fields the rest of the library reads by name, from the rows' values. */
static void name_values(mpn__config *cfg)
{
  long long *v = cfg->value;
  if (v[MPN__SET_WINDOW_MS] > v[MPN__SET_TIMEOUT_MS] / 2)
    v[MPN__SET_WINDOW_MS] = v[MPN__SET_TIMEOUT_MS] / 2;   /* the window must leave time to deliver */
  cfg->timeout_ms = (long)v[MPN__SET_TIMEOUT_MS];
  cfg->window_ms = (long)v[MPN__SET_WINDOW_MS];
  cfg->poll_ms = (long)v[MPN__SET_POLL_MS];   /* every wake-up can preempt a busy rank: tests/bench/README.md */
  cfg->symbolize_ms = (long)v[MPN__SET_SYMBOLIZE_MS];
  cfg->debug = (int)v[MPN__SET_DEBUG];
  cfg->keep_thread_level = v[MPN__SET_MPI_THREAD] == MPN__THREAD_KEEP;
  cfg->relay_mode = (int)v[MPN__SET_RELAY];
  cfg->config_checked = (int)v[MPN__SET_CONFIG_CHECKED];
  /* hang detection (docs/internals/waits.md): the wait that makes a hang, and what follows it */
  cfg->hang_timeout_s = (long)v[MPN__SET_HANG_TIMEOUT];
  cfg->hang_abort = v[MPN__SET_HANG_ACTION] == MPN__HANG_ABORT;
  cfg->exception_parts = (unsigned)v[MPN__SET_EXCEPTION_SIGNATURE];
  cfg->alert_cooldown = v[MPN__SET_ALERT_COOLDOWN];
  cfg->alert_cap = (long)v[MPN__SET_ALERT_CAP];
  cfg->progress_every = v[MPN__SET_PROGRESS_EVERY];
  cfg->exit_reports = (int)v[MPN__SET_EXIT_REPORTS];
  cfg->rank_output_lines = v[MPN__SET_RANK_OUTPUT] ? (int)v[MPN__SET_RANK_OUTPUT_LINES] : 0;
}

static void load_relay(mpn__config *cfg, loading *ld)
{
  const char *addr = cfg->text[MPN__SET_RELAY_ADDR], *key = cfg->text[MPN__SET_RELAY_KEY];
  if (!addr)
    return;
  unsigned char k[32];
  if (!key || mpn__hex_key(key, k) != 0) {
    mpn__add_err(ld->err, ld->errlen, "%s is set but %s is missing or not 64 hex digits; relaying is off",
                 mpn__setting(MPN__SET_RELAY_ADDR)->name, mpn__setting(MPN__SET_RELAY_KEY)->name);
    ld->rc = MPN_E_BAD_CONFIG;
    return;
  }
  cfg->relay_addr = strdup(addr);
  cfg->relay_key = strdup(key);
  cfg->relay_hold = (int)cfg->value[MPN__SET_RELAY_HOLD];
}

static void load_files(mpn__config *cfg, loading *ld)
{
  default_spool(ld->fc, cfg->spool_dir, sizeof cfg->spool_dir);
  resolved(cfg, MPN__SET_SPOOL, cfg->spool_dir);
  const char *ca = cfg->text[MPN__SET_CA_BUNDLE];
  if (ca && access(ca, R_OK) == 0) {
    cfg->ca_bundle = strdup(ca);
  } else if (ca) {
    mpn__add_err(ld->err, ld->errlen, "%s=\"%.200s\" is not a readable file; using the system's CAs",
                 mpn__setting(MPN__SET_CA_BUNDLE)->name, ca);
    ld->rc = MPN_E_BAD_CONFIG;
    resolved(cfg, MPN__SET_CA_BUNDLE, NULL);
  }
}

/* A misspelt setting in the file must not pass in silence. */
static mpn_code check_file_keys(const mpn__file_config *fc, char *err, size_t errlen)
{
  char known[512] = "";
  for (int k = 0; k < MPN__NSETTINGS; k++)
    if (mpn__setting(k)->key)
      snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", known[0] ? ", " : "",
               mpn__setting(k)->key);
  mpn_code rc = MPN_OK;
  for (int i = 0; i < fc->nglobals; i++) {
    int k = 0;
    while (k < MPN__NSETTINGS && !(mpn__setting(k)->key && !strcmp(mpn__setting(k)->key, fc->globals[i].key)))
      k++;
    if (k == MPN__NSETTINGS) {
      mpn__add_err(err, errlen, "config file: unknown setting \"%.40s\" in [mpinotify] (known: %s)",
                   fc->globals[i].key, known);
      rc = MPN_E_BAD_CONFIG;
    }
  }
  return rc;
}

int mpn__config_rank_output_lines(void)
{
  mpn__file_config fc;
  read_config_file(&fc, NULL, 0);   /* its problems are the full load's to report */
  long long lines = mpn__setting_parse(MPN__SET_RANK_OUTPUT_LINES, setting(&fc, MPN__SET_RANK_OUTPUT_LINES),
                                       NULL, 0, NULL);
  long long on = mpn__setting_parse(MPN__SET_RANK_OUTPUT, setting(&fc, MPN__SET_RANK_OUTPUT), NULL, 0, NULL);
  mpn__config_file_free(&fc);
  return on ? (int)lines : 0;
}

void mpn__config_settings_text(const mpn__config *cfg, mpn__buf *b)
{
  for (int id = 0; id < MPN__NSETTINGS; id++) {
    const mpn_setting *s = mpn__setting(id);
    char said[256];
    if (!s->key)
      continue;   /* the environment's only */
    if (!mpn__setting_is(id, "text"))
      mpn__setting_say(id, cfg->value[id], said, sizeof said);
    if (!mpn__setting_is(id, "text") || cfg->text[id])
      mpn__buf_add(b, "%s = %s\n", s->key, cfg->text[id] ? cfg->text[id] : said);
  }
}

static void keep_first(mpn_code *rc, mpn_code now)
{
  if (*rc == MPN_OK && now != MPN_OK)
    *rc = now;
}

/* The channels: the file's sections and urls key, then the variable's or code's list. */
static void load_channels(mpn__config *cfg, loading *ld)
{
  const char *urls = ld->opts && ld->opts->text[MPN__SET_URLS] ? ld->opts->text[MPN__SET_URLS]
                                                                : mpn__setting_env(MPN__SET_URLS);
  const char *file_urls = mpn__file_global(ld->fc, mpn__setting(MPN__SET_URLS)->key);
  keep_first(&ld->rc, add_file_channels(cfg, ld->fc, ld->err, ld->errlen));
  keep_first(&ld->rc, add_url_list(cfg, file_urls, ld->err, ld->errlen));
  keep_first(&ld->rc, add_url_list(cfg, urls, ld->err, ld->errlen));
  int none = (!urls || !urls[strspn(urls, " \t\r\n,")]) && ld->fc->nchannels == 0 && !file_urls;
  if (cfg->nchannels == 0 && none)
    add_channel(cfg, "console://", ld->err, ld->errlen);   /* nothing configured: still never silent */
}

mpn_code mpn__config_load(mpn__config *cfg, const mpn_options *opts, char *err, size_t errlen)
{
  memset(cfg, 0, sizeof *cfg);
  if (err && errlen)
    err[0] = '\0';
  mpn__file_config fc;
  loading ld = {opts, &fc, err, errlen, MPN_OK};
  const char *file = mpn__setting_env(MPN__SET_CONFIG);
  if (opts && opts->config_text) {
    memset(&fc, 0, sizeof fc);
    ld.rc = mpn__config_text_read(opts->config_text, &fc, err, errlen);
  } else {
    cfg->config_file = file ? strdup(file) : NULL;
    ld.rc = read_config_file(&fc, err, errlen);
  }
  keep_first(&ld.rc, check_file_keys(&fc, err, errlen));
  load_channels(cfg, &ld);
  load_rows(cfg, &ld);
  name_values(cfg);
  load_job(cfg);
  load_relay(cfg, &ld);
  load_files(cfg, &ld);
  mpn__config_file_free(&fc);
  return ld.rc;
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
  for (int i = 0; i < MPN__NSETTINGS; i++)
    free(cfg->text[i]);
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
