/* fuzz_config.c - the INI configuration (lib/config/config_file.c, inih) and
 * the whole configuration load (lib/config/config.c) from arbitrary text, as
 * mpn_options_set_config hands it over. Invariants: settings stay in their
 * ranges whatever the text says, every channel is complete, errors are
 * NUL-terminated and never show a secret option's value. */
#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc, (void)argv;
  fuzz_clean_env();   /* mpn__config_load reads the environment: only the text may count */
  return 0;
}

/* Looks like a key (letters and digits, both), so no fixed text of an error
 * message ("known: [mpinotify], ...") can hold it by chance. */
static int token_like(const char *v, size_t n)
{
  int alpha = 0, digit = 0;
  for (size_t i = 0; i < n; i++) {
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+/=", v[i]))
      return 0;
    alpha |= (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z');
    digit |= v[i] >= '0' && v[i] <= '9';
  }
  return alpha && digit;
}

/* "secret = VALUE" style lines: VALUE must not be in the errors. */
static void check_secrets(const char *text, const char *err)
{
  static const char *const keys[] = {"secret", "password", "token", "access_token", "routing_key", NULL};
  for (const char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n')) {
    size_t n = strcspn(line, "\n"), k = strcspn(line, "=:\n");
    if (k >= n)
      continue;
    size_t ks = k;
    while (ks && (line[ks - 1] == ' ' || line[ks - 1] == '\t'))
      ks--;
    size_t kb = strspn(line, " \t");
    int secret = 0;
    for (const char *const *p = keys; *p; p++)
      secret |= ks > kb && strlen(*p) == ks - kb && !strncmp(line + kb, *p, ks - kb);
    const char *v = line + k + 1 + strspn(line + k + 1, " \t");
    size_t vn = (size_t)(line + n - v);
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t' || v[vn - 1] == '\r'))
      vn--;
    if (!secret || vn <= 8 || !token_like(v, vn) || mpn__is_ref(v))
      continue;
    const char *first = memmem(text, strlen(text), v, vn);
    if (first && memmem(first + 1, strlen(first + 1), v, vn))
      continue;   /* written elsewhere too (a key, a URL): not only a secret */
    if (memmem(err, strlen(err), v, vn))
      fuzz_fail("an error shows the secret \"%.*s\": %s", (int)vn, v, err);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 16384)
    return 0;
  char *text = fuzz_cstr(data, size);
  char err[4096];
  err[0] = '\0';

  mpn__file_config fc;
  mpn__config_text_read(text, &fc, err, sizeof err);
  FUZZ_CHECK(memchr(err, '\0', sizeof err));
  for (int i = 0; i < fc.nglobals; i++)
    FUZZ_CHECK(fc.globals[i].key && fc.globals[i].value);
  for (int i = 0; i < fc.nchannels; i++)
    FUZZ_CHECK(fc.channels[i].name && fc.channels[i].name[0]);
  mpn__config_file_free(&fc);

  mpn_options *o = mpn_options_new();
  FUZZ_CHECK(o && mpn_options_set_config(o, text) == MPN_OK);
  mpn__config cfg;
  mpn__config_load(&cfg, o, err, sizeof err);
  FUZZ_CHECK(memchr(err, '\0', sizeof err));
  FUZZ_CHECK(cfg.timeout_ms >= 100 && cfg.timeout_ms <= 3600000);
  FUZZ_CHECK(cfg.window_ms >= 0 && cfg.window_ms <= 60000 && cfg.window_ms <= cfg.timeout_ms / 2);
  FUZZ_CHECK(cfg.poll_ms >= 10 && cfg.poll_ms <= 2000);
  FUZZ_CHECK(cfg.relay_mode >= MPN__RELAY_OFF && cfg.relay_mode <= MPN__RELAY_ALWAYS);
  FUZZ_CHECK(cfg.alert_cap >= 0 && cfg.alert_cooldown >= 0 && cfg.progress_every >= 0);
  FUZZ_CHECK(cfg.job_name && memchr(cfg.spool_dir, '\0', sizeof cfg.spool_dir));
  FUZZ_CHECK(cfg.nchannels >= 0 && (cfg.nchannels == 0 || cfg.channels));
  for (int i = 0; i < cfg.nchannels; i++) {
    const mpn__channel *ch = &cfg.channels[i];
    FUZZ_CHECK(ch->kind && ch->spec && ch->url && ch->masked);
    for (int j = 0; j < i; j++)
      FUZZ_CHECK(strcmp(cfg.channels[j].spec, ch->spec));   /* the same channel twice is used once */
  }
  check_secrets(text, err);
  mpn__config_free(&cfg);
  mpn_options_free(o);
  free(text);
  return 0;
}
