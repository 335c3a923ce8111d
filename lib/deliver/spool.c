/* spool.c - the spool: one file per (message, channel), written before the
 * first attempt and removed once delivered, so whatever is not delivered in
 * time is already on disk, whole. The writer holds an flock on the file while
 * the message is in flight; a flush skips locked files, and the lock goes
 * away by itself when the process dies (a crash, mpirun's SIGKILL).
 * File: JSON {"schema":"mpinotify-spool/1", "id", "created", "channel" (the
 * spec as configured: references unresolved), "destination" (masked),
 * "message"}; mode 0600 in a 0700 directory owned by the user. The format
 * is this file's alone: mpn_spool_list shows what a tool may print of it. */
#include "deliver/deliver.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SPOOL_FILE (16 << 20)
#define SPOOL_SCHEMA "mpinotify-spool/1"

static int mkdir_p(const char *dir)
{
  char path[MPN__PATH_MAX];
  mpn__strlcpy(path, dir, sizeof path);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      return -1;
    *p = '/';
  }
  return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int mpn__spool_prepare(const char *dir, char *err, size_t errlen)
{
  struct stat st;
  if (!dir || !*dir || mkdir_p(dir) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    mpn__add_err(err, errlen, "spool directory \"%s\" (MPINOTIFY_SPOOL) cannot be created: %s", dir ? dir : "",
                 strerror(errno));
    return -1;
  }
  if (st.st_uid != getuid() || (st.st_mode & 022)) {   /* another user could read or plant messages */
    mpn__add_err(err, errlen, "spool directory \"%s\" (MPINOTIFY_SPOOL) must be yours and not writable by others",
                 dir);
    return -1;
  }
  return 0;
}

static int write_all(int fd, const char *s, size_t n)
{
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

static char *spool_text(const mpn_message *m, const mpn__channel *ch)
{
  char ts[40];
  mpn__iso8601(mpn__wall_ns(), ts, sizeof ts);
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "schema", SPOOL_SCHEMA, "id", m->id,
                        "created", ts, "channel", ch->spec, "destination", ch->masked, "message", (json_t *)m->doc);
  char *text = o ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
  json_decref(o);
  return text;
}

int mpn__spool_write(const char *dir, const mpn_message *m, const mpn__channel *ch, char *path, size_t cap)
{
  char tmp[MPN__PATH_MAX + 128];
  snprintf(path, cap, "%s/%019lld-%s-%08x.msg", dir, (long long)mpn__wall_ns(), m->id,
           (unsigned)(mpn__hash_str(MPN__FNV_OFFSET, ch->spec) & 0xffffffffu));   /* one file per channel */
  snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, strrchr(path, '/') + 1);
  char *text = spool_text(m, ch);
  int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
  if (fd < 0) {
    free(text);
    path[0] = '\0';   /* nothing was kept: no result may name it */
    return -1;
  }
  /* Locked before it becomes visible: no flush can take it while we send. */
  int ok = flock(fd, LOCK_EX) == 0 && write_all(fd, text, strlen(text)) == 0 && rename(tmp, path) == 0;
  free(text);
  if (!ok) {
    unlink(tmp);
    close(fd);
    path[0] = '\0';
    return -1;
  }
  return fd;
}

void mpn__spool_done(int fd, const char *path, int delivered)
{
  if (fd < 0)
    return;
  if (delivered)
    unlink(path);   /* before the unlock: a flush never sees a delivered message */
  close(fd);
}

/* ---- reading the spool back (flush) ---------------------------------------- */

typedef struct iter {
  struct dirent **names;
  int n, next;
  char dir[MPN__PATH_MAX];
} iter;

static int is_msg(const struct dirent *d)
{
  size_t n = strlen(d->d_name);
  return d->d_name[0] != '.' && n > 4 && !strcmp(d->d_name + n - 4, ".msg");
}

static char *read_fd(int fd)
{
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_nlink == 0 || st.st_size > MAX_SPOOL_FILE)
    return NULL;   /* nlink 0: delivered and removed between readdir and open */
  char *buf = malloc((size_t)st.st_size + 1);
  ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
  if (n != st.st_size) {
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
}

/* Parses a spool file; a file that is not one is renamed *.bad, not retried forever. */
static int load(const char *path, int fd, mpn__spooled *out)
{
  char *text = read_fd(fd);
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  const char *spec = json_string_value(json_object_get(o, "channel"));
  json_t *msg = json_object_get(o, "message");
  char *dump = spec && json_is_object(msg) ? json_dumps(msg, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
  out->msg = dump ? mpn__message_from_json(dump, json_string_value(json_object_get(o, "id"))) : NULL;
  out->spec = out->msg ? strdup(spec) : NULL;
  free(dump);
  json_decref(o);
  if (out->spec)
    return 1;
  mpn_message_free(out->msg);
  out->msg = NULL;
  char bad[sizeof out->path + 8];
  snprintf(bad, sizeof bad, "%s.bad", path);
  if (rename(path, bad) == 0)
    mpn__log_warn("spool file %s is not a spooled message; renamed to *.bad", path);
  return 0;
}

/* Only our own regular files: a planted message could name any destination
 * and refer to our secrets (env:NAME) to have us send them there. */
static int ours(int fd, const char *path)
{
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() && !(st.st_mode & 022))
    return 1;
  mpn__log_warn("spool file %s is not a regular file of yours, private to you: not sent", path);
  return 0;
}

int mpn__spool_next(const char *dir, void **state, mpn__spooled *out)
{
  iter *it = *state;
  if (!it) {
    it = calloc(1, sizeof *it);
    if (!it)
      return 0;
    mpn__strlcpy(it->dir, dir, sizeof it->dir);
    it->n = scandir(dir, &it->names, is_msg, alphasort);   /* oldest first: names start with the time */
    *state = it;
  }
  while (it->next < it->n) {
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s/%s", it->dir, it->names[it->next++]->d_name);
    out->fd = open(out->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (out->fd < 0)
      continue;
    if (ours(out->fd, out->path) && flock(out->fd, LOCK_EX | LOCK_NB) == 0 && load(out->path, out->fd, out))
      return 1;
    close(out->fd);   /* in flight in a live process, gone, or not ours */
  }
  return 0;
}

void mpn__spool_iter_end(void *state)
{
  iter *it = state;
  if (!it)
    return;
  for (int i = 0; i < it->n; i++)
    free(it->names[i]);
  free(it->names);
  free(it);
}

/* ---- listing (mpn_spool_list) ----------------------------------------------- */

static const char *member(json_t *o, const char *key)
{
  const char *v = json_string_value(json_object_get(o, key));
  return v && *v ? v : NULL;
}

/* One file for the listing; nothing when it was delivered meanwhile. Never
 * the "channel" member: that is the configured spec, secrets and all. */
static void list_one(const char *dir, const char *name, mpn_spool_fn fn, void *arg)
{
  char path[MPN__PATH_MAX + 256], why[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  mpn_spool_entry e = {.file = path, .code = MPN_OK, .detail = ""};
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return;
  if (fd < 0) {
    e.code = MPN_E_IO;
    e.detail = strerror_r(errno, why, sizeof why);
    fn(&e, arg);
    return;
  }
  char *text = read_fd(fd);
  struct stat st;
  int gone = !text && fstat(fd, &st) == 0 && st.st_nlink == 0;
  close(fd);
  if (gone)
    return;
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  const char *schema = member(o, "schema");
  if (!json_is_object(o) || !schema || strcmp(schema, SPOOL_SCHEMA) != 0) {
    e.code = MPN_E_SPOOL;
    e.detail = "not a spooled message";   /* never the parser's words: they quote the file */
  } else {
    json_t *msg = json_object_get(o, "message");
    e.id = member(o, "id");
    e.created = member(o, "created");
    e.destination = member(o, "destination");
    e.event = member(msg, "event");
    e.title = member(msg, "title");
  }
  fn(&e, arg);
  json_decref(o);
}

mpn_code mpn_spool_list(const char *dir, mpn_spool_fn fn, void *arg)
{
  if (!fn)
    return MPN_E_INVALID_ARGUMENT;
  char *own = dir ? NULL : mpn_spool_dir();
  if (!dir && !own)
    return MPN_E_NO_MEMORY;
  struct dirent **names = NULL;
  int n = scandir(dir ? dir : own, &names, is_msg, alphasort);   /* oldest first */
  if (n < 0) {
    int e = errno;
    free(own);
    errno = e;
    return e == ENOENT ? MPN_OK : MPN_E_SPOOL;
  }
  for (int i = 0; i < n; i++) {
    list_one(dir ? dir : own, names[i]->d_name, fn, arg);
    free(names[i]);
  }
  free(names);
  free(own);
  return MPN_OK;
}
