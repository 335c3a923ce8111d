/* test_deliver.c - unit tests of lib/deliver/: the relay's sealed frames
 * (seal.c), the rate limiter (rate.c), the spool (spool.c), and a custom
 * channel through mpn_sender and the engine. deliver/engine.h is private to
 * the layer; its white-box tests include it for mpn__rate_slot/_note. */
#include "deliver/engine.h"

#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens a frame expecting failure; returns why. */
static const char *relay_fails(const unsigned char *key, const char *frame, size_t len)
{
  const char *why = NULL;
  size_t n = 0;
  char *plain = mpn__relay_open(key, frame, len, &n, &why);
  CHECK(plain == NULL);
  free(plain);
  return why;
}

TEST(relay_seal_roundtrip)
{
  const char msg[] = "{\"schema\":\"mpinotify/1\",\"secret\":\"s3cr3t\"}";
  size_t flen = 0, plen = 0;
  char *frame = mpn__relay_seal(relay_key, msg, strlen(msg), &flen);
  CHECK(frame && flen == 24 + strlen(msg) + 16 && !memcmp(frame, "MPR1", 4));
  CHECK(frame && !memmem(frame, flen, "s3cr3t", 6));
  for (size_t i = 0; frame && i < flen; i++) {   /* every byte is covered by magic, AAD or tag */
    frame[i] ^= 0x01;
    const char *why = relay_fails(relay_key, frame, flen);
    CHECK_STR(why, i < 4 ? "malformed" : "forged");
    frame[i] ^= 0x01;
  }
  CHECK_STR(relay_fails(relay_key, frame, flen - 1), "forged");
  CHECK_STR(relay_fails(relay_key, frame, 39), "malformed");
  CHECK_STR(relay_fails(relay_key, NULL, 0), "malformed");
  unsigned char other[32];
  memcpy(other, relay_key, 32);
  other[31] ^= 0x80;
  CHECK_STR(relay_fails(other, frame, flen), "forged");
  char *plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
  CHECK(plain && plen == strlen(msg) && !memcmp(plain, msg, plen) && plain[plen] == '\0');
  free(plain);
  CHECK_STR(relay_fails(relay_key, frame, flen), "replayed");
  free(frame);

  int64_t now_ms = mpn__wall_ns() / 1000000;
  int64_t times[] = {now_ms - 10 * 60 * 1000, now_ms + 10 * 60 * 1000, -1, INT64_MAX};
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    frame = mpn__relay_seal_at(relay_key, msg, strlen(msg), times[i], &flen);
    CHECK_STR(relay_fails(relay_key, frame, flen), "stale");
    free(frame);
  }
  frame = mpn__relay_seal_at(relay_key, "", 0, now_ms - 4 * 60 * 1000, &flen);   /* old but fresh */
  plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
  CHECK(plain && plen == 0 && plain[0] == '\0');
  free(plain);
  free(frame);
}

/* Many genuine frames: the nonce ring wraps without a false "replayed";
 * random and truncated bytes never open. */
TEST(relay_open_many)
{
  unsigned seed = 4242;
  char junk[300];
  for (int i = 0; i < 5000; i++) {
    size_t flen = 0, plen = 0;
    char *frame = mpn__relay_seal(relay_key, "m", 1, &flen);
    char *plain = mpn__relay_open(relay_key, frame, flen, &plen, NULL);
    CHECK(plain && plen == 1);
    free(plain);
    size_t n = (size_t)i % sizeof junk;
    for (size_t j = 0; j < n; j++) {
      seed = seed * 1103515245u + 12345u;
      junk[j] = (char)(seed >> 16);
    }
    if (n >= 4 && i % 2)
      memcpy(junk, "MPR1", 4);
    const char *why = relay_fails(relay_key, junk, n);
    CHECK(why && (!strcmp(why, "malformed") || !strcmp(why, "forged")));
    CHECK(relay_fails(relay_key, frame, (size_t)i % flen) != NULL);
    free(frame);
  }
}

TEST(relay_hex_key)
{
  unsigned char key[32], back[32];
  char hex[65];
  mpn__relay_keygen(key);
  mpn__hex_encode(key, 32, hex);
  CHECK(strlen(hex) == 64 && strspn(hex, "0123456789abcdef") == 64);
  CHECK(mpn__hex_key(hex, back) == 0 && !memcmp(key, back, 32));
  for (int i = 0; i < 64; i++)
    hex[i] = "0123456789ABCDEF"[i % 16];
  CHECK(mpn__hex_key(hex, back) == 0 && back[0] == 0x01 && back[7] == 0xef);
  memset(back, 0x5a, sizeof back);
  const char *bad[] = {"", "00", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
                       "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
                       " 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                       "0x23456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", NULL};
  for (int i = 0; bad[i]; i++)
    CHECK(mpn__hex_key(bad[i], back) != 0);
  CHECK(mpn__hex_key(NULL, back) != 0);
  CHECK(back[0] == 0x5a && back[31] == 0x5a);   /* a bad key leaves the buffer alone */
  unsigned char other[32];
  mpn__relay_keygen(other);
  CHECK(memcmp(key, other, 32));
}

/* ---- custom channels and the configuration string ---------------------------- */

static int memo_calls, memo_failures_left;
static char memo_url[512];

static mpn_code memo_send(const char *url, const char *json, char *detail, size_t len, void *user)
{
  (void)user;
  memo_calls++;
  mpn__strlcpy(memo_url, url, sizeof memo_url);
  if (memo_failures_left > 0) {
    memo_failures_left--;
    snprintf(detail, len, "memo is busy");
    return MPN_E_CONNECT;
  }
  return strstr(json, "\"title\":\"hello memo\"") ? MPN_OK : MPN_E_INVALID_ARGUMENT;
}

static void memo_result(const mpn_result *r, void *arg)
{
  *(int *)arg = r->attempts;
}

static mpn_sender *memo_sender(const char *urls, const char *config)
{
  mpn_options *o = mpn_options_new();
  if (urls)
    mpn_options_set_urls(o, urls);
  if (config)
    mpn_options_set_config(o, config);
  mpn_options_set_timeout_ms(o, 8000);
  mpn_sender *s = NULL;
  char err[1024] = "";
  mpn_code rc = mpn_sender_new(o, &s, err, sizeof err);
  if (rc != MPN_OK)
    fprintf(stderr, "sender: %s\n", err);
  CHECK(rc == MPN_OK && s);
  return s;
}

TEST(custom_channel_roundtrip)
{
  unsetenv("MPINOTIFY_DISABLE");   /* the tests set it so the library never arms; a sender needs it unset */
  unsetenv("MPINOTIFY_URLS");
  unsetenv("MPINOTIFY_CONFIG");
  char spool[] = "/tmp/mpn-unit-spool-XXXXXX";
  CHECK(mkdtemp(spool) != NULL);
  setenv("MPINOTIFY_SPOOL", spool, 1);
  CHECK(mpn_register_channel("slack", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);   /* built-in */
  CHECK(mpn_register_channel("Memo", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("", memo_send, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("memo", NULL, NULL) == MPN_E_INVALID_ARGUMENT);
  CHECK(mpn_register_channel("memo", memo_send, NULL) == MPN_OK);

  mpn_sender *s = memo_sender("memo:///var/log/x?token=SEKRIT123", NULL);
  CHECK(mpn_sender_channel_count(s) == 1);
  CHECK(mpn_sender_channel(s, 0) && !strstr(mpn_sender_channel(s, 0), "SEKRIT123"));
  mpn_message *m = mpn_message_new("message");
  mpn_message_set_title(m, "hello memo");
  memo_failures_left = 1;   /* one failure, then success: retried by the engine */
  int attempts = 0;
  CHECK(mpn_sender_send(s, m, memo_result, &attempts) == MPN_OK);
  CHECK(attempts == 2 && memo_calls == 2);
  CHECK_STR(memo_url, "memo:///var/log/x?token=SEKRIT123");

  /* The string holds no secret, and restores the same channel. */
  char *config = mpn_sender_config(s);
  CHECK(config && !strstr(config, "SEKRIT123") && strstr(config, "url = env:MPINOTIFY_SECRET_"));
  mpn_sender *again = memo_sender(NULL, config);
  CHECK(mpn_sender_channel_count(again) == 1);
  memo_url[0] = '\0';
  CHECK(mpn_sender_send(again, m, NULL, NULL) == MPN_OK);
  CHECK_STR(memo_url, "memo:///var/log/x?token=SEKRIT123");
  char *config2 = mpn_sender_config(again);
  CHECK(config2 && config && !strcmp(config, config2));   /* a fixed point */
  /* One line per setting of the file that the configuration holds (the
   * values' round trip: unit.settings_roundtrip); urls are its channels. */
  for (int id = 0; config && id < MPN__NSETTINGS; id++) {
    const char *key = mpn__setting(id)->key;
    char line[64];
    snprintf(line, sizeof line, "\n%s = ", key ? key : "");
    int held = key && id != MPN__SET_URLS && (!mpn__setting_is(id, "text") || mpn__sender_config(s)->text[id]);
    CHECK(!held == !strstr(config, line));
  }

  /* Nothing left behind: each delivered message's spooled copy is gone. */
  char cmd[600];
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A %s)\"", spool);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "rm -rf %s", spool);
  CHECK(system(cmd) == 0);
  mpn_free(config);
  mpn_free(config2);
  mpn_message_free(m);
  mpn_sender_free(s);
  mpn_sender_free(again);
}

/* ---- the rate limiter (rate.c): a sliding window per channel ---------------- */

#define MS 1000000LL   /* the engine's clock is monotonic ns */

/* n per window, the earliest start once the limit is reached, and a window
 * that slides (not a bucket refilled at once). Times are given, never slept. */
TEST(rate_sliding_window)
{
  mpn__channel ch;
  parse_ok("webhook+http://127.0.0.1:9/rate-window?rate=3/s", &ch);
  CHECK(ch.rate_n == 3 && ch.rate_window_ms == 1000);
  const int64_t t0 = 7000 * MS;   /* any time but 0, which marks an unused entry */
  CHECK(mpn__rate_slot(&ch, t0) == t0);   /* nothing sent yet: at once */
  mpn__rate_note(&ch, t0);
  mpn__rate_note(&ch, t0 + 100 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 200 * MS) == t0 + 200 * MS);   /* 2 of 3 in the window: at once */
  mpn__rate_note(&ch, t0 + 200 * MS);
  /* 3 of 3: the next starts when the oldest leaves the window, not before */
  CHECK(mpn__rate_slot(&ch, t0 + 300 * MS) == t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 999 * MS) == t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 1000 * MS) == t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 4000 * MS) == t0 + 4000 * MS);   /* long after: at once */
  CHECK(mpn__rate_slot(&ch, t0 + 300 * MS) == t0 + 1000 * MS);    /* asking takes no slot */
  /* Sliding: the 4th send replaces the oldest; the 5th waits for the 2nd to leave */
  mpn__rate_note(&ch, t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 1000 * MS) == t0 + 1100 * MS);
  mpn__rate_note(&ch, t0 + 1100 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 1100 * MS) == t0 + 1200 * MS);
  mpn__rate_note(&ch, t0 + 1200 * MS);
  CHECK(mpn__rate_slot(&ch, t0 + 1200 * MS) == t0 + 2000 * MS);
  mpn__channel_free(&ch);

  /* As the engine uses it (start at the slot, note the start): 30 sends as
   * fast as allowed come in threes, and no 4 fall inside one window. */
  parse_ok("webhook+http://127.0.0.1:9/rate-greedy?rate=3/s", &ch);
  int64_t start[30], now = t0;
  for (int i = 0; i < 30; i++) {
    now = mpn__rate_slot(&ch, now);
    mpn__rate_note(&ch, now);
    start[i] = now;
  }
  for (int i = 0; i < 30; i++)
    CHECK(start[i] == t0 + (i / 3) * 1000 * MS);
  for (int i = 0; i + 3 < 30; i++)
    CHECK(start[i + 3] - start[i] >= 1000 * MS);
  mpn__channel_free(&ch);

  /* rate=off: never waits, whatever was sent */
  parse_ok("webhook+http://127.0.0.1:9/rate-off?rate=off", &ch);
  CHECK(ch.rate_n == 0);
  for (int i = 0; i < 100; i++)
    mpn__rate_note(&ch, t0);
  CHECK(mpn__rate_slot(&ch, t0 + 1) == t0 + 1);
  mpn__channel_free(&ch);
}

/* Each channel has its own window; copies of one channel (the engine's item
 * holds its own copy) share it. */
TEST(rate_per_channel)
{
  mpn__channel a, b, a_copy;
  parse_ok("webhook+http://127.0.0.1:9/rate-a?rate=2/min", &a);
  parse_ok("webhook+http://127.0.0.1:9/rate-b?rate=2/min", &b);
  CHECK(mpn__channel_copy(&a_copy, &a) == MPN_OK);
  const int64_t t0 = 9000 * MS, min = 60000 * MS;
  mpn__rate_note(&a, t0);
  mpn__rate_note(&a_copy, t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&a, t0 + 2000 * MS) == t0 + min);        /* a is full, counting its copy's send */
  CHECK(mpn__rate_slot(&a_copy, t0 + 2000 * MS) == t0 + min);
  CHECK(mpn__rate_slot(&b, t0 + 2000 * MS) == t0 + 2000 * MS);  /* b is not */
  mpn__rate_note(&b, t0 + 2000 * MS);
  CHECK(mpn__rate_slot(&b, t0 + 3000 * MS) == t0 + 3000 * MS);
  mpn__rate_note(&b, t0 + 3000 * MS);
  CHECK(mpn__rate_slot(&b, t0 + 3000 * MS) == t0 + 2000 * MS + min);
  CHECK(mpn__rate_slot(&a, t0 + 3000 * MS) == t0 + min);        /* b's sends did not move a's slot */
  /* A service's own limit when none is configured: Slack, 1 per second */
  mpn__channel s;
  parse_ok("https://hooks.slack.com/services/T0/B0/RATE", &s);
  CHECK(s.rate_n == 1 && s.rate_window_ms == 1000);
  mpn__rate_note(&s, t0);
  CHECK(mpn__rate_slot(&s, t0) == t0 + 1000 * MS);
  CHECK(mpn__rate_slot(&b, t0 + 3000 * MS) == t0 + 2000 * MS + min);
  mpn__channel_free(&a);
  mpn__channel_free(&a_copy);
  mpn__channel_free(&b);
  mpn__channel_free(&s);
}

/* ---- the spool (spool.c) ------------------------------------------------------ */

/* Another reader's view: 1 when someone holds the file's lock. */
static int spool_locked(const char *path)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  close(fd);   /* drops our lock if we got it */
  return held;
}

/* Entries of dir (but . and ..), those ending in `suffix` when it is not NULL. */
static int spool_count(const char *dir, const char *suffix)
{
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) {
    size_t len = strlen(e->d_name), k = suffix ? strlen(suffix) : 0;
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && len >= k && !strcmp(e->d_name + len - k, suffix ? suffix : ""))
      n++;
  }
  if (d)
    closedir(d);
  return n;
}

static char *spool_read(const char *path)
{
  FILE *f = fopen(path, "rb");
  char *buf = calloc(1, 1 << 20);
  size_t n = f && buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  (void)n;
  if (f)
    fclose(f);
  return buf;
}

static void spool_put(const char *dir, const char *name, const char *data, size_t len, mode_t mode)
{
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len && fchmod(fd, mode) == 0);
  if (fd >= 0)
    close(fd);
}

static void spool_remove(const char *dir)
{
  char cmd[1100];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  CHECK(system(cmd) == 0);
}

static mpn_message *spool_message(const char *title)
{
  mpn_message *m = mpn_message_new("message");
  mpn_message_set_title(m, title);
  mpn_message_set_text(m, "line one\nline \"two\" \xe2\x80\x94 na\xc3\xafve");
  mpn_message_set_severity(m, "error");
  return m;
}

/* Written ahead and locked; a second reader skips it while it is in flight;
 * read back whole and locked; kept when not delivered, removed when it was. */
TEST(spool_write_next_done)
{
  char top[] = "/tmp/mpn-unit-spool-XXXXXX", dir[600], err[512] = "";
  CHECK(mkdtemp(top) != NULL);
  snprintf(dir, sizeof dir, "%s/a/b", top);
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == 0 && err[0] == '\0');   /* made, like mkdir -p */
  struct stat st;
  CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == 0);   /* and again: it exists */

  setenv("MPNT_UNIT_SPOOL_TOKEN", "Bearer spool-token-resolved", 1);
  mpn__channel ch;
  parse_ok("webhook+http://127.0.0.1:9/hook?header=Authorization:env:MPNT_UNIT_SPOOL_TOKEN", &ch);
  mpn_message *m = spool_message("spooled once");
  char path[MPN__PATH_MAX + 256];
  int fd = mpn__spool_write(dir, m, &ch, path, sizeof path);
  size_t plen = strlen(path);
  CHECK(fd >= 0 && !strncmp(path, dir, strlen(dir)) && path[strlen(dir)] == '/' && strstr(path, m->id) &&
        plen > 4 && !strcmp(path + plen - 4, ".msg"));
  CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0777) == 0600);
  CHECK(spool_count(dir, NULL) == 1);   /* no temporary file left */
  char *text = spool_read(path);
  json_t *doc = json_loads(text, 0, NULL);
  CHECK_STR(json_string_value(json_object_get(doc, "schema")), "mpinotify-spool/1");
  CHECK_STR(json_string_value(json_object_get(doc, "id")), m->id);
  CHECK_STR(json_string_value(json_object_get(doc, "channel")), ch.spec);   /* the reference, unresolved */
  CHECK(json_equal(json_object_get(doc, "message"), m->doc));
  CHECK(!strstr(text, "spool-token-resolved"));
  json_decref(doc);
  free(text);

  /* In flight (the writer holds the lock): a flush skips it */
  CHECK(spool_locked(path) == 1);
  void *it = NULL;
  mpn__spooled out, other;
  CHECK(mpn__spool_next(dir, &it, &out) == 0);
  mpn__spool_iter_end(it);

  /* Not delivered: kept, unlocked, and the next reader gets it whole, locked */
  mpn__spool_done(fd, path, 0);
  CHECK(access(path, F_OK) == 0 && spool_locked(path) == 0);
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 1);
  CHECK_STR(out.path, path);
  CHECK_STR(out.spec, ch.spec);
  CHECK(out.msg && !strcmp(out.msg->id, m->id) && json_equal(out.msg->doc, m->doc));
  CHECK(out.fd >= 0 && spool_locked(path) == 1);
  void *it2 = NULL;   /* a second reader meanwhile: nothing for it */
  CHECK(mpn__spool_next(dir, &it2, &other) == 0);
  mpn__spool_iter_end(it2);
  CHECK(mpn__spool_next(dir, &it, &other) == 0);   /* nor a second time for the first */
  mpn__spool_iter_end(it);

  /* Failed again: still kept */
  mpn__spool_done(out.fd, out.path, 0);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(access(path, F_OK) == 0 && spool_locked(path) == 0);

  /* Delivered: removed, and no reader sees it again */
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 1 && !strcmp(out.path, path));
  mpn__spool_iter_end(it);
  mpn__spool_done(out.fd, out.path, 1);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(access(path, F_OK) != 0 && errno == ENOENT);
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 0);
  mpn__spool_iter_end(it);

  /* The writer's own success removes its copy at once */
  fd = mpn__spool_write(dir, m, &ch, path, sizeof path);
  CHECK(fd >= 0 && access(path, F_OK) == 0);
  mpn__spool_done(fd, path, 1);
  CHECK(access(path, F_OK) != 0 && spool_count(dir, NULL) == 0);
  mpn__spool_done(-1, path, 1);   /* nothing was kept: nothing to do */

  /* Where nothing can be written: -1 and no path */
  char nodir[700];
  snprintf(nodir, sizeof nodir, "%s/missing", top);
  CHECK(mpn__spool_write(nodir, m, &ch, path, sizeof path) == -1 && path[0] == '\0');

  mpn_message_free(m);
  mpn__channel_free(&ch);
  unsetenv("MPNT_UNIT_SPOOL_TOKEN");
  spool_remove(top);
}

/* Only the user's own private regular files are read back (a planted file
 * could send our secrets anywhere); the directory must be the user's and
 * not writable by others. Skipped files stay where they are. */
TEST(spool_skips_foreign)
{
  char top[] = "/tmp/mpn-unit-spool-XXXXXX", dir[600], elsewhere[600], err[512] = "";
  CHECK(mkdtemp(top) != NULL);
  snprintf(dir, sizeof dir, "%s/spool", top);
  snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", top);
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == 0 && mpn__spool_prepare(elsewhere, err, sizeof err) == 0);
  mpn__channel ch;
  parse_ok("webhook+http://127.0.0.1:9/foreign", &ch);
  mpn_message *m = spool_message("only mine");
  char path[MPN__PATH_MAX + 256], there[MPN__PATH_MAX + 256], link[700];
  int fd = mpn__spool_write(dir, m, &ch, path, sizeof path);
  mpn__spool_done(fd, path, 0);
  void *it;
  mpn__spooled out;

  /* Writable by the group or by others: not sent, left alone; private again: sent */
  static const mode_t bad_modes[] = {0620, 0602, 0666};
  for (size_t i = 0; i < sizeof bad_modes / sizeof bad_modes[0]; i++) {
    CHECK(chmod(path, bad_modes[i]) == 0);
    it = NULL;
    CHECK(mpn__spool_next(dir, &it, &out) == 0);
    mpn__spool_iter_end(it);
    CHECK(access(path, F_OK) == 0 && spool_count(dir, NULL) == 1);
  }
  CHECK(chmod(path, 0644) == 0);   /* readable by others is the user's choice */
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 1);
  mpn__spool_iter_end(it);
  mpn__spool_done(out.fd, out.path, 0);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(chmod(path, 0600) == 0);

  /* Another user's file: only root can make one */
  if (geteuid() == 0) {
    CHECK(chown(path, 65534, 65534) == 0);
    it = NULL;
    CHECK(mpn__spool_next(dir, &it, &out) == 0);
    mpn__spool_iter_end(it);
    CHECK(access(path, F_OK) == 0);
    CHECK(chown(path, 0, 0) == 0);
  } else {
    fprintf(stderr, "not root: the case of another user's file is not run\n");
  }

  /* A symbolic link to a genuine spool file, a FIFO, a directory, all named
   * *.msg beside the genuine one: only the genuine one comes back, and the
   * FIFO does not block the reader. */
  fd = mpn__spool_write(elsewhere, m, &ch, there, sizeof there);
  mpn__spool_done(fd, there, 0);
  snprintf(link, sizeof link, "%s/0000000000000000001-link.msg", dir);
  CHECK(symlink(there, link) == 0);
  snprintf(link, sizeof link, "%s/0000000000000000002-fifo.msg", dir);
  CHECK(mkfifo(link, 0600) == 0);
  snprintf(link, sizeof link, "%s/0000000000000000003-dir.msg", dir);
  CHECK(mkdir(link, 0700) == 0);
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 1 && !strcmp(out.path, path));
  mpn__spooled more;
  CHECK(mpn__spool_next(dir, &it, &more) == 0);
  mpn__spool_iter_end(it);
  mpn__spool_done(out.fd, out.path, 0);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(spool_count(dir, ".msg") == 4 && spool_count(dir, ".bad") == 0);   /* skipped, not renamed */

  /* The directory itself */
  CHECK(chmod(dir, 0770) == 0);
  err[0] = '\0';
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == -1 && strstr(err, "not writable by others"));
  CHECK(chmod(dir, 0757) == 0);
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == -1);
  CHECK(chmod(dir, 0700) == 0);
  CHECK(mpn__spool_prepare(dir, err, sizeof err) == 0);
  if (geteuid() == 0) {
    CHECK(chown(dir, 65534, 65534) == 0);
    err[0] = '\0';
    CHECK(mpn__spool_prepare(dir, err, sizeof err) == -1 && strstr(err, "must be yours"));
    CHECK(chown(dir, 0, 0) == 0);
  }
  err[0] = '\0';
  CHECK(mpn__spool_prepare(path, err, sizeof err) == -1 && strstr(err, "cannot be created"));   /* a file */
  CHECK(mpn__spool_prepare("", err, sizeof err) == -1);

  mpn_message_free(m);
  mpn__channel_free(&ch);
  spool_remove(top);
}

/* A file that is not a whole spooled message (cut short, garbage, another
 * JSON document) is never returned as a message: it is renamed *.bad, so it
 * is not read again, and the genuine message after it still comes back. */
TEST(spool_garbage_not_sent)
{
  char dir[] = "/tmp/mpn-unit-spool-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  mpn__channel ch;
  parse_ok("webhook+http://127.0.0.1:9/garbage", &ch);
  mpn_message *m = spool_message("the genuine one");
  char path[MPN__PATH_MAX + 256];
  int fd = mpn__spool_write(dir, m, &ch, path, sizeof path);
  mpn__spool_done(fd, path, 0);
  char *good = spool_read(path);
  size_t n = strlen(good);
  CHECK(n > 100 && good[n - 1] == '}');
  char junk[512];
  unsigned seed = 99;
  for (size_t i = 0; i < sizeof junk; i++) {
    seed = seed * 1103515245u + 12345u;
    junk[i] = (char)(seed >> 16);
  }
  static const char *const docs[] = {
    "{\"schema\":\"mpinotify-spool/1\",\"id\":\"msg_x\"}",                         /* no channel, no message */
    "{\"schema\":\"mpinotify-spool/1\",\"channel\":\"console://\",\"message\":\"text\"}",   /* message not an object */
    "{\"channel\":42,\"message\":{\"title\":\"x\"}}",                              /* channel not a string */
    "[1,2,3]",
  };
  /* Names that sort before the genuine file's (it starts with the time). */
  spool_put(dir, "0000000000000000001-half.msg", good, n / 2, 0600);
  spool_put(dir, "0000000000000000002-cut.msg", good, n - 1, 0600);
  spool_put(dir, "0000000000000000003-junk.msg", junk, sizeof junk, 0600);
  spool_put(dir, "0000000000000000004-empty.msg", "", 0, 0600);
  for (int i = 0; i < 4; i++) {
    char name[64];
    snprintf(name, sizeof name, "000000000000000001%d-doc.msg", i);
    spool_put(dir, name, docs[i], strlen(docs[i]), 0600);
  }
  void *it = NULL;
  mpn__spooled out;
  CHECK(mpn__spool_next(dir, &it, &out) == 1);
  CHECK(!strcmp(out.path, path) && out.msg && !strcmp(out.msg->id, m->id) && json_equal(out.msg->doc, m->doc));
  mpn__spooled more;
  CHECK(mpn__spool_next(dir, &it, &more) == 0);
  mpn__spool_iter_end(it);
  mpn__spool_done(out.fd, out.path, 0);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(spool_count(dir, ".bad") == 8 && spool_count(dir, ".msg") == 1);
  /* Once renamed, not read again; the genuine one still is */
  it = NULL;
  CHECK(mpn__spool_next(dir, &it, &out) == 1 && !strcmp(out.path, path));
  CHECK(mpn__spool_next(dir, &it, &more) == 0);
  mpn__spool_iter_end(it);
  mpn__spool_done(out.fd, out.path, 1);
  free(out.spec);
  mpn_message_free(out.msg);
  CHECK(spool_count(dir, ".msg") == 0 && spool_count(dir, ".bad") == 8);
  free(good);
  mpn_message_free(m);
  mpn__channel_free(&ch);
  spool_remove(dir);
}

typedef struct listed {
  int n, ok, bad;
  char dest[256], event[32], title[64], id[64];
} listed;

static void on_listed(const mpn_spool_entry *e, void *arg)
{
  listed *l = arg;
  l->n++;
  if (e->code != MPN_OK) {
    l->bad++;
    CHECK(e->code == MPN_E_SPOOL && e->detail && *e->detail && e->id == NULL && e->file);
    return;
  }
  l->ok++;
  snprintf(l->dest, sizeof l->dest, "%s", e->destination ? e->destination : "");
  snprintf(l->event, sizeof l->event, "%s", e->event ? e->event : "");
  snprintf(l->title, sizeof l->title, "%s", e->title ? e->title : "");
  snprintf(l->id, sizeof l->id, "%s", e->id ? e->id : "");
  CHECK(e->created && strlen(e->created) == 24 && e->detail && !*e->detail);
}

TEST(spool_list)
{
  char dir[] = "/tmp/mpn-unit-list-XXXXXX";
  CHECK(mkdtemp(dir) != NULL);
  mpn__channel ch;
  char err[256] = "", path[1024];
  CHECK(mpn__parse_channel("webhook+http://u:PWSECRET@127.0.0.1:9/hook?token=TOKSECRET", &ch, err, sizeof err) == MPN_OK);
  mpn_message *m = mpn_message_new("test");
  mpn_message_set_title(m, "spooled title");
  int fd = mpn__spool_write(dir, m, &ch, path, sizeof path);
  CHECK(fd >= 0);
  mpn__spool_done(fd, path, 0);   /* not delivered: it stays */
  char junk[1100];
  snprintf(junk, sizeof junk, "%s/0-junk.msg", dir);
  FILE *f = fopen(junk, "w");
  CHECK(f != NULL);
  if (f) {
    fputs("{\"channel\": \"webhook+http://u:PWSECRET@h/\"}", f);
    fclose(f);
  }
  listed l = {0};
  CHECK(mpn_spool_list(dir, on_listed, &l) == MPN_OK);
  CHECK(l.n == 2 && l.ok == 1 && l.bad == 1);
  CHECK_STR(l.event, "test");
  CHECK_STR(l.title, "spooled title");
  CHECK_STR(l.id, m->id);
  CHECK(strstr(l.dest, "127.0.0.1") && !strstr(l.dest, "PWSECRET") && !strstr(l.dest, "TOKSECRET"));
  CHECK(access(path, F_OK) == 0 && access(junk, F_OK) == 0);   /* listing changes nothing */
  /* a spool never made: empty; the default is the configured one */
  char gone[1100];
  snprintf(gone, sizeof gone, "%s/never", dir);
  listed none = {0};
  CHECK(mpn_spool_list(gone, on_listed, &none) == MPN_OK && none.n == 0);
  CHECK(mpn_spool_list(dir, NULL, NULL) == MPN_E_INVALID_ARGUMENT);
  setenv("MPINOTIFY_SPOOL", dir, 1);
  char *configured = mpn_spool_dir();
  CHECK_STR(configured, dir);
  mpn_free(configured);
  listed again = {0};
  CHECK(mpn_spool_list(NULL, on_listed, &again) == MPN_OK && again.n == 2);
  unsetenv("MPINOTIFY_SPOOL");
  configured = mpn_spool_dir();
  CHECK(configured && strstr(configured, "/mpinotify-"));
  mpn_free(configured);
  unlink(path);
  unlink(junk);
  rmdir(dir);
  mpn_message_free(m);
  mpn__channel_free(&ch);
}
