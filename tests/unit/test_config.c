/* test_config.c - unit tests of lib/config/: masking, URL lists, channel
 * specs and their options, mpn_options, the config file. */
#include "config/config.h"

#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

TEST(mask_url_hides_secrets)
{
  char out[256];
  struct { const char *in, *out; } cases[] = {
    {"https://hooks.slack.com/services/T0001/B0002/XXXXSECRET", "https://hooks.slack.com/services/***/***/***"},
    {"webhook+http://user:hunter2@host:8080/hook?token=SECRET&x=1", "webhook+http://user:***@host:8080/hook?token=***&x=***"},
    {"https://api.telegram.org/bot123:SECRET/sendMessage", "https://api.telegram.org/***/***"},
    {"smtp://mail.example.com:587", "smtp://mail.example.com:587"},
    {"not a url SECRET", "***"},
    {"https://h/p#SECRET", "https://h/p#***"},
    /* text that only contains "://": neither scheme nor host is shown unless it reads as one */
    {"x?password=SECRET://h", "***://h"},
    {"smtp+h?ttps://h:587&password=SECRET", "***://***"},
    {"env:smtp://mpinotify:hunter2@smtp.example", "env:smtp://mpinotify:***@smtp.example"},
    {"env:SLACK_URL", "env:SLACK_URL"},
    {"webhook+http://[::1]:8080/x", "webhook+http://[::1]:8080/x"},
    /* a password with '#', '?' or "://" in it, a token before "://" */
    {"smtp://user:abc#SECRET@host", "smtp://***#***"},
    {"smtp://u:p?SECRET@host", "smtp://***?***"},
    {"https://user:SECRET://host/x", "https://***//host/x"},
    {"slack:SECRET://x", "***://x"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    CHECK(mpn_mask_url(cases[i].in, out, sizeof out) == MPN_OK);
    CHECK_STR(out, cases[i].out);
    CHECK(!strstr(out, "SECRET") && !strstr(out, "hunter2"));
  }
  char small[12];
  CHECK(mpn_mask_url(cases[0].in, small, sizeof small) == MPN_E_BUFFER_TOO_SMALL);
  CHECK(strlen(small) == sizeof small - 1 && !strstr(small, "SECRET"));
  CHECK(mpn_mask_url(NULL, out, sizeof out) == MPN_E_INVALID_ARGUMENT);
}

TEST(mask_text)
{
  char *m = mpn_mask_text("mpinotify-run --url=https://h.example/a/SECRET --url webhook+http://h/x/SECRET -- ./train",
                          NULL);
  CHECK(m && !strstr(m, "SECRET"));
  CHECK(m && strstr(m, "--url=https://h.example/a/***") && strstr(m, "--url webhook+http://h/x/***") &&
        strstr(m, "./train"));
  mpn_free(m);
  /* free text: quotes and closing punctuation stay, the URL's secrets go, literal secrets too */
  const char *secrets[] = {"KEYKEYKEY", "", NULL};
  m = mpn_mask_text("posting to \"https://hooks.example.com/services/T0SECRET?key=abc\"; (see http://h/x/SECRET2). "
                    "relay key KEYKEYKEY\tend", secrets);
  CHECK_STR(m, "posting to \"https://hooks.example.com/services/***?key=***\"; (see http://h/x/***). "
               "relay key ***\tend");
  mpn_free(m);
  /* what a URL may hold up to the end of its word stays hidden, separators or not */
  m = mpn_mask_text("a https://h/p?a=1;b=SECRET3,https://u:PASSWORD@h2/ z", NULL);
  CHECK(m && !strstr(m, "SECRET3") && !strstr(m, "PASSWORD") && !strncmp(m, "a https://h/", 12) && strstr(m, " z"));
  mpn_free(m);
  /* tokens known by their form: the prefix stays, the token goes; look-alikes stay */
  m = mpn_mask_text("hdr Authorization: Bearer abcdef0123456789abcdef, slack xoxb-1234567890-abcdefghijkl; "
                    "HF_TOKEN=hf_AbCdEfGh1234567890xyz key AKIAIOSFODNN7EXAMPLE sk-learn sk-short1 xhf_abc1234567890123456",
                    NULL);
  CHECK_STR(m, "hdr Authorization: Bearer ***, slack xoxb-***; HF_TOKEN=hf_*** key AKIA*** sk-learn sk-short1 "
               "xhf_abc1234567890123456");
  mpn_free(m);
  /* a token at the very end of the text; a header's credential without digits; a path that
   * holds a prefix is no token; text without either stays */
  static const char *const cases[][2] = {
    {"x hf_AbCdEf1234567890abcdefgh", "x hf_***"},
    {"Authorization: Bearer secretsecretsecretsecret", "Authorization: Bearer ***"},
    {"cache /scratch/hf_cache/hub/models--x-7b/snap1234567890", "cache /scratch/hf_cache/hub/models--x-7b/snap1234567890"},
    {"no url here", "no url here"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    m = mpn_mask_text(cases[i][0], NULL);
    CHECK_STR(m, cases[i][1]);
    mpn_free(m);
  }
  CHECK(mpn_mask_text(NULL, NULL) == NULL);
}

TEST(check_urls_valid)
{
  char err[256];
  CHECK(mpn_check_urls("", err, sizeof err) == MPN_OK);
  CHECK(mpn_check_urls(NULL, err, sizeof err) == MPN_OK);
  CHECK(mpn_check_urls("webhook+http://127.0.0.1:9/x, console://  webhook+https://h.example/a?b=c", err, sizeof err) == MPN_OK);
  CHECK_STR(err, "");
  mpn__channel ch;
  CHECK(mpn__parse_channel("webhook+https://h.example/a/SECRET", &ch, err, sizeof err) == MPN_OK);
  CHECK_STR(ch.kind->name, "webhook");
  CHECK_STR(ch.url, "https://h.example/a/SECRET");
  CHECK_STR(ch.masked, "webhook+https://h.example/a/***");
  mpn__channel_free(&ch);
  /* A comma inside a URL's options stays; a comma before another channel separates. */
  mpn__config cfg;
  setenv("MPINOTIFY_URLS", "smtp://mail.example?to=a@x.org,b@y.org,webhook+https://h.example/x, console://", 1);
  unsetenv("MPINOTIFY_CONFIG");
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.nchannels == 3);
  if (cfg.nchannels == 3) {
    CHECK_STR(cfg.channels[0].kind->name, "email");
    CHECK_STR(mpn__channel_opt(&cfg.channels[0], "to"), "a@x.org,b@y.org");
    CHECK_STR(cfg.channels[1].kind->name, "webhook");
  }
  mpn__config_free(&cfg);
  unsetenv("MPINOTIFY_URLS");
}

TEST(check_urls_errors)
{
  char err[256];
  CHECK(mpn_check_urls("webhook+http://[bad/SECRET", err, sizeof err) == MPN_E_BAD_URL);
  CHECK(strstr(err, "malformed channel URL") && !strstr(err, "SECRET"));
  CHECK(mpn_check_urls("console:// gopher://h/SECRET", err, sizeof err) == MPN_E_UNKNOWN_KIND);
  CHECK(strstr(err, "unknown channel kind") && !strstr(err, "SECRET"));
  CHECK(mpn_check_urls("webhook+http:///nohost", err, sizeof err) == MPN_E_BAD_URL);
  CHECK(strstr(err, "webhook+http://"));
}

TEST(options_setters)
{
  mpn_options *o = mpn_options_new();
  CHECK(o != NULL);
  CHECK(mpn_options_set_urls(o, "console://") == MPN_OK);
  CHECK(mpn_options_set_urls(o, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_urls(NULL, "x") == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_timeout_ms(o, 99) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_timeout_ms(o, 5000) == MPN_OK);
  CHECK(mpn_options_set_window_ms(o, -1) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_options_set_window_ms(o, 0) == MPN_OK);
  CHECK(mpn_options_set_job_name(o, "n") == MPN_OK);
  mpn_options_free(o);
  mpn_options_free(NULL);
  /* Under MPINOTIFY_DISABLE the library refuses, and still frees the options. */
  CHECK(mpn_init(mpn_options_new()) == MPN_E_DISABLED);
  CHECK(mpn_is_active() == 0);
}

TEST(channel_kinds)
{
  static const struct { const char *spec, *kind; } cases[] = {
    {"https://hooks.slack.com/services/T0/B0/XXXX", "slack"},
    {"https://discord.com/api/webhooks/1/tok", "discord"},
    {"https://oapi.dingtalk.com/robot/send?access_token=t", "dingtalk"},
    {"https://open.feishu.cn/open-apis/bot/v2/hook/x", "feishu"},
    {"https://open.larksuite.com/open-apis/bot/v2/hook/x", "feishu"},
    {"https://prod-01.westus.logic.azure.com:443/workflows/a/triggers/manual/paths/invoke?sig=s", "teams"},
    {"https://api.telegram.org/bot123:abc/sendMessage?chat_id=5", "telegram"},
    {"https://events.pagerduty.com/v2/enqueue?routing_key=k", "pagerduty"},
    {"https://example.com/hook", "webhook"},
    {"slack+https://proxy.example/slack", "slack"},
    {"lark+https://open.larksuite.com/open-apis/bot/v2/hook/x", "feishu"},
    {"smtps://mail.example:465?to=a@example.com", "email"},
    {"console://", "console"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mpn__channel ch;
    parse_ok(cases[i].spec, &ch);
    CHECK(ch.kind && !strcmp(ch.kind->name, cases[i].kind));
    mpn__channel_free(&ch);
  }
}

TEST(channel_options)
{
  setenv("MPNT_UNIT_TOKEN", "tok-from-env", 1);
  char path[] = "/tmp/mpn-unit-secret-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0 && write(fd, "SECfromfile\n", 12) == 12);
  close(fd);
  char spec[512];
  snprintf(spec, sizeof spec, "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=env:MPNT_UNIT_TOKEN"
           "&secret=file:%s&rate=3/min&retries=2&timeout_ms=900", path);
  mpn__channel ch;
  parse_ok(spec, &ch);
  /* Our options leave the URL; the service's parameter stays, resolved. */
  CHECK_STR(ch.url, "https://oapi.dingtalk.com/robot/send?access_token=tok-from-env");
  CHECK_STR(mpn__channel_opt(&ch, "secret"), "SECfromfile");
  CHECK(ch.rate_n == 3 && ch.rate_window_ms == 60000 && ch.retries == 2 && ch.timeout_ms == 900);
  CHECK_STR(ch.spec, spec);   /* references stay unresolved for the spool and the relay */
  CHECK(strstr(ch.masked, "access_token=env:MPNT_UNIT_TOKEN") && !strstr(ch.masked, "tok-from-env"));
  mpn__channel_free(&ch);
  parse_ok("https://hooks.slack.com/services/T0/B0/XXXX", &ch);
  CHECK(ch.rate_n == 1 && ch.rate_window_ms == 1000);   /* the service's own limit by default */
  mpn__channel_free(&ch);
  parse_ok("webhook+https://h.example/x?rate=off&method=PUT&header=X-A:b&keep=1", &ch);
  CHECK(ch.rate_n == 0);
  CHECK_STR(ch.url, "https://h.example/x?keep=1");
  CHECK_STR(mpn__channel_opt(&ch, "method"), "PUT");
  mpn__channel_free(&ch);
  unlink(path);
}

TEST(channel_option_errors)
{
  static const char *const bad[] = {
    "telegram+https://api.telegram.org/botSECRET1/sendMessage",                /* chat_id missing */
    "pagerduty+https://events.pagerduty.com/v2/enqueue",                       /* routing_key missing */
    "webhook+https://h.example/SECRET2?rate=fast",
    "webhook+https://h.example/x?retries=many&tok=SECRET3",
    "webhook+https://h.example/x?method=DELETE",
    "dingtalk+https://oapi.dingtalk.com/robot/send?access_token=env:MPNT_UNIT_UNSET",
    "webhook+https://h.example/x?secret=file:/nonexistent/mpn",
    "env:MPNT_UNIT_UNSET",
    "ftp+https://h.example/SECRET4",
  };
  unsetenv("MPNT_UNIT_UNSET");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char err[1024] = "";
    mpn__channel ch;
    CHECK(mpn__parse_channel(bad[i], &ch, err, sizeof err) != MPN_OK);
    CHECK(err[0] != '\0' && !strstr(err, "SECRET"));
    if (!err[0] || strstr(err, "SECRET"))
      fprintf(stderr, "spec %s -> \"%s\"\n", bad[i], err);
  }
}

TEST(config_file)
{
  char path[] = "/tmp/mpn-unit-ini-XXXXXX";
  int fd = mkstemp(path);
  const char *ini = "; comment\n[mpinotify]\ntimeout_ms = 4321\nrelay = off\n\n"
                    "[channel ops]\nurl = webhook+https://h.example/hook\nsecret = env:MPNT_UNIT_SIGN\nrate = 2/s\n"
                    "[channel chat]\nurl = https://hooks.slack.com/services/T/B/X\n";
  CHECK(fd >= 0 && write(fd, ini, strlen(ini)) == (ssize_t)strlen(ini));
  close(fd);
  setenv("MPINOTIFY_CONFIG", path, 1);
  setenv("MPNT_UNIT_SIGN", "whsec_abc", 1);
  unsetenv("MPINOTIFY_URLS");
  unsetenv("MPINOTIFY_TIMEOUT_MS");
  mpn__config cfg;
  char err[1024];
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK);
  CHECK(cfg.timeout_ms == 4321 && cfg.relay_mode == MPN__RELAY_OFF && cfg.nchannels == 2);
  if (cfg.nchannels == 2) {
    CHECK_STR(cfg.channels[0].kind->name, "webhook");
    CHECK_STR(mpn__channel_opt(&cfg.channels[0], "secret"), "whsec_abc");
    CHECK(cfg.channels[0].rate_n == 2);
    CHECK_STR(cfg.channels[1].kind->name, "slack");
  }
  mpn__config_free(&cfg);
  setenv("MPINOTIFY_TIMEOUT_MS", "999", 1);   /* the environment wins over the file */
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.timeout_ms == 999);
  mpn__config_free(&cfg);
  fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, "[mpinotify\nnot a setting\n[weird]\nx=1\n", 37) == 37);
  close(fd);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG);
  CHECK(strstr(err, path) && strstr(err, "[weird]"));
  mpn__config_free(&cfg);
  unlink(path);
  unsetenv("MPINOTIFY_CONFIG");
}

/* The values rank_output and output_tail never show: by the variable's name. */
TEST(secret_variable_names)
{
  CHECK(mpn_secret_variable("HF_TOKEN=abc") && mpn_secret_variable("wandb_api_key=x"));
  CHECK(mpn_secret_variable("MPINOTIFY_SECRET_DB=x") && mpn_secret_variable("DB_PASSWORD"));
  CHECK(!mpn_secret_variable("HOME=/root") && !mpn_secret_variable("PATH=/bin:/usr/bin/token") && !mpn_secret_variable(NULL));
  setenv("MY_ACCESS_KEY", "ak-123", 1);
  mpn__config cfg;
  memset(&cfg, 0, sizeof cfg);
  char **list = mpn__config_secrets(&cfg);
  int found = 0;
  for (char **p = list; p && *p; p++)
    found |= !strcmp(*p, "ak-123");
  CHECK(found);
  mpn__config_secrets_free(list);
  unsetenv("MY_ACCESS_KEY");
}

/* MPINOTIFY_HANG_TIMEOUT and MPINOTIFY_HANG_ACTION: defaults, the file's keys,
 * and each bad value as one error line naming the variable, the default kept. */
TEST(hang_settings)
{
  mpn__config cfg;
  char err[1024];
  unsetenv("MPINOTIFY_CONFIG");
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK);
  CHECK(cfg.hang_timeout_s == 600 && cfg.hang_abort == 0);
  mpn__config_free(&cfg);
  setenv("MPINOTIFY_HANG_TIMEOUT", "0", 1);   /* off */
  setenv("MPINOTIFY_HANG_ACTION", "abort", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.hang_timeout_s == 0 && cfg.hang_abort == 1);
  mpn__config_free(&cfg);
  static const char *const bad_timeouts[] = {"soon", "-1", "2592001", "10s", "1.5"};
  for (size_t i = 0; i < sizeof bad_timeouts / sizeof *bad_timeouts; i++) {
    setenv("MPINOTIFY_HANG_TIMEOUT", bad_timeouts[i], 1);
    CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG && cfg.hang_timeout_s == 600);
    CHECK(strstr(err, "MPINOTIFY_HANG_TIMEOUT=") && strstr(err, bad_timeouts[i]) && strstr(err, "using 600"));
    CHECK(!strchr(err, '\n') || strchr(err, '\n')[1] == '\0');   /* one line */
    mpn__config_free(&cfg);
  }
  unsetenv("MPINOTIFY_HANG_TIMEOUT");
  setenv("MPINOTIFY_HANG_ACTION", "kill", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG && cfg.hang_abort == 0);
  CHECK(strstr(err, "MPINOTIFY_HANG_ACTION=\"kill\"") && strstr(err, "using report"));
  mpn__config_free(&cfg);
  unsetenv("MPINOTIFY_HANG_ACTION");
  mpn_options *o = mpn_options_new();
  CHECK(mpn_options_set_config(o, "[mpinotify]\nhang_timeout = 30\nhang_action = report\n") == MPN_OK);
  CHECK(mpn__config_load(&cfg, o, err, sizeof err) == MPN_OK && cfg.hang_timeout_s == 30 && cfg.hang_abort == 0);
  mpn__config_free(&cfg);
  mpn_options_free(o);
}

/* Every config-file key of the table (MPN__SETTINGS) round-trips: set in a
 * file to a value other than its default, it is read, written back by
 * mpn__config_settings_text (mpn_sender_config's settings) and read again
 * the same. A new row that is not read, or not written, fails here. */
static void unset_settings(void)
{
  for (int id = 0; id < MPN__NSETTINGS; id++)
    unsetenv(mpn__setting(id)->name);
}

/* A valid value of row `id` that is not its default, as the file writes it. */
static void other_value(int id, const char *dir, char *out, size_t cap)
{
  const mpn_setting *s = mpn__setting(id);
  int n = 1;
  for (const char *p = s->choices ? s->choices : ""; *p; p++)
    n += *p == ',';
  if (mpn__setting_is(id, "text"))
    snprintf(out, cap, "%s/%s", dir, s->key);   /* a readable file: any text row takes it */
  else if (mpn__setting_is(id, "list"))
    mpn__setting_say(id, (1LL << n) - 1, out, cap);
  else if (mpn__setting_is(id, "choice"))
    mpn__setting_say(id, s->def == n - 1 ? 0 : n - 1, out, cap);
  else
    snprintf(out, cap, "%lld", s->def == s->max ? s->min : s->max);
}

/* Row `id` of two configurations: the same value (a text: the same text). */
static int same_row(const mpn__config *a, const mpn__config *b, int id)
{
  if (!mpn__setting_is(id, "text"))
    return a->value[id] == b->value[id];
  return a->text[id] && b->text[id] && !strcmp(a->text[id], b->text[id]);
}

TEST(settings_roundtrip)
{
  char dir[] = "/tmp/mpn-unit-rt-XXXXXX", value[600], path[600], err[2048];
  CHECK(mkdtemp(dir) != NULL);
  unset_settings();
  mpn__buf ini = mpn__buf_make(1024), out = mpn__buf_make(1024);
  mpn__buf_add(&ini, "[mpinotify]\n");
  int keys = 0;
  for (int id = 0; id < MPN__NSETTINGS; id++) {
    if (!mpn__setting(id)->key || id == MPN__SET_URLS)
      continue;   /* the environment's only; urls: its channels (custom_channel_roundtrip) */
    other_value(id, dir, value, sizeof value);
    snprintf(path, sizeof path, "%s/%s", dir, mpn__setting(id)->key);
    close(open(path, O_WRONLY | O_CREAT, 0600));
    mpn__buf_add(&ini, "%s = %s\n", mpn__setting(id)->key, value);
    keys++;
  }
  CHECK(keys >= 18);
  mpn__config first, again, defaults;
  mpn_options *o = mpn_options_new(), *o2 = mpn_options_new();
  CHECK(mpn_options_set_config(o, ini.p) == MPN_OK);
  CHECK(mpn__config_load(&first, o, err, sizeof err) == MPN_OK);
  CHECK_STR(err, "");
  mpn__buf_add(&out, "[mpinotify]\n");   /* as mpn_sender_config writes it */
  mpn__config_settings_text(&first, &out);
  CHECK(mpn_options_set_config(o2, out.p) == MPN_OK);
  CHECK(mpn__config_load(&again, o2, err, sizeof err) == MPN_OK);
  CHECK(mpn__config_load(&defaults, NULL, err, sizeof err) == MPN_OK);
  for (int id = 0; id < MPN__NSETTINGS; id++) {
    if (!mpn__setting(id)->key || id == MPN__SET_URLS)
      continue;
    other_value(id, dir, value, sizeof value);
    char line[700];
    snprintf(line, sizeof line, "\n%s = %s\n", mpn__setting(id)->key, value);
    if (!strstr(out.p, line) || !same_row(&first, &again, id) || same_row(&first, &defaults, id))
      fprintf(stderr, "setting %s: written %s, read back %s, from the file %s\n", mpn__setting(id)->name,
              strstr(out.p, line) ? "as set" : "NOT as set", same_row(&first, &again, id) ? "the same" : "DIFFERENT",
              same_row(&first, &defaults, id) ? "NOT READ" : "read");
    CHECK(strstr(out.p, line) && same_row(&first, &again, id) && !same_row(&first, &defaults, id));
    snprintf(path, sizeof path, "%s/%s", dir, mpn__setting(id)->key);
    unlink(path);
  }
  CHECK(!strstr(out.p, "urls"));   /* channels are written as [channel] sections, secrets as references */
  mpn__config_free(&first);
  mpn__config_free(&again);
  mpn__config_free(&defaults);
  mpn_options_free(o);
  mpn_options_free(o2);
  free(ini.p);
  free(out.p);
  rmdir(dir);
}

/* FLAG and CHOICE settings: each valid word as before; a bad value is one
 * error line naming the variable, the value and the values the table allows. */
TEST(flag_and_choice_settings)
{
  mpn__config cfg;
  char err[1024];
  unset_settings();
  static const char *const on[] = {"1", "yes", "TRUE", "On"}, *const off[] = {"0", "no", "False", "OFF"};
  for (int i = 0; i < 4; i++) {
    setenv("MPINOTIFY_DEBUG", on[i], 1);
    setenv("MPINOTIFY_EXIT_REPORTS", off[i], 1);
    CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.debug == 1 && cfg.exit_reports == 0);
    mpn__config_free(&cfg);
  }
  setenv("MPINOTIFY_DEBUG", "maybe", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG && cfg.debug == 0);
  CHECK_STR(err, "MPINOTIFY_DEBUG=\"maybe\" is not 1, yes, true, on, 0, no, false or off; using 0");
  mpn__config_free(&cfg);
  unset_settings();
  setenv("MPINOTIFY_MPI_THREAD", "keep", 1);
  setenv("MPINOTIFY_RELAY", "always", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_OK && cfg.keep_thread_level == 1 &&
        cfg.relay_mode == MPN__RELAY_ALWAYS);
  mpn__config_free(&cfg);
  setenv("MPINOTIFY_RELAY", "sometimes", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG && cfg.relay_mode == MPN__RELAY_AUTO);
  CHECK_STR(err, "MPINOTIFY_RELAY=\"sometimes\" is not off, auto or always; using auto");
  mpn__config_free(&cfg);
  unset_settings();
  setenv("MPINOTIFY_EXCEPTION_SIGNATURE", "type,colour", 1);
  CHECK(mpn__config_load(&cfg, NULL, err, sizeof err) == MPN_E_BAD_CONFIG && cfg.exception_parts == 7);
  CHECK(strstr(err, "MPINOTIFY_EXCEPTION_SIGNATURE=\"type,colour\"") && strstr(err, "type, site, context or message") &&
        strstr(err, "using type,site,context"));
  mpn__config_free(&cfg);
  unset_settings();
  CHECK(mpn__setting_env_flag(MPN__SET_PYTHON) == 1);   /* env-only rows: their default when unset */
  setenv("MPINOTIFY_PYTHON", "off", 1);
  CHECK(mpn__setting_env_flag(MPN__SET_PYTHON) == 0);
  unsetenv("MPINOTIFY_PYTHON");
}

/* The default spool is per user: $TMPDIR/mpinotify-UID, and where another
 * user (or a link) holds that name first, $XDG_RUNTIME_DIR/mpinotify. */
TEST(spool_dir_default_is_the_users)
{
  char tmp[] = "/tmp/mpn-spooldef-XXXXXX", xdg[] = "/tmp/mpn-xdg-XXXXXX", want[256], name[256];
  CHECK(mkdtemp(tmp) != NULL && mkdtemp(xdg) != NULL);
  unsetenv("MPINOTIFY_SPOOL");
  unsetenv("MPINOTIFY_CONFIG");
  setenv("TMPDIR", tmp, 1);
  setenv("XDG_RUNTIME_DIR", xdg, 1);
  snprintf(name, sizeof name, "%s/mpinotify-%u", tmp, (unsigned)getuid());
  char *dir = mpn_spool_dir();
  CHECK_STR(dir, name);
  mpn_free(dir);
  CHECK(symlink("/", name) == 0);   /* planted: a link where our directory would be */
  snprintf(want, sizeof want, "%s/mpinotify", xdg);
  dir = mpn_spool_dir();
  CHECK_STR(dir, want);
  mpn_free(dir);
  setenv("MPINOTIFY_SPOOL", "/somewhere/else", 1);   /* said outright: used as said */
  dir = mpn_spool_dir();
  CHECK_STR(dir, "/somewhere/else");
  mpn_free(dir);
  unlink(name);
  rmdir(tmp);
  rmdir(xdg);
}
