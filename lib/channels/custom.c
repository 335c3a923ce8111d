/* custom.c - channel kinds registered by the program (mpn_register_channel):
 * "NAME://anything" channels whose delivery is the program's function, run
 * by the engine on a thread of its own per attempt (queue.c), with the same
 * spool, retries and budget as every other channel. */
#include "channels/channels.h"

#include <pthread.h>
#include <string.h>

#define MAX_CUSTOM 32

static struct custom {
  char name[32];
  mpn__kind kind;
} customs[MAX_CUSTOM];
static int ncustom;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int valid_name(const char *name)
{
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > 31 || !(name[0] >= 'a' && name[0] <= 'z'))
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') || name[i] == '_' ||
          name[i] == '-'))
      return 0;
  static const char *const reserved[] = {"env", "file", NULL};   /* references (env:NAME, file:/path) */
  for (const char *const *r = reserved; *r; r++)
    if (!strcmp(name, *r))
      return 0;
  return !mpn__kind_reserved(name);   /* a built-in kind keeps its name, aliases (lark) and schemes (smtp, http) */
}

mpn_code mpn__custom_register(const char *name, mpn_channel_send_fn send, void *user)
{
  if (!send || !valid_name(name))
    return MPN_E_INVALID_ARGUMENT;
  mpn_code rc = MPN_OK;
  pthread_mutex_lock(&lock);
  int i = 0;
  while (i < ncustom && strcmp(customs[i].name, name))
    i++;
  if (i == MAX_CUSTOM) {
    rc = MPN_E_NO_MEMORY;
  } else {
    struct custom *c = &customs[i];
    mpn__strlcpy(c->name, name, sizeof c->name);
    c->kind.name = c->name;
    c->kind.custom_user = user;
    c->kind.custom = send;   /* a pointer store: a reader sees the old or the new function */
    if (i == ncustom)
      ncustom++;
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

const mpn__kind *mpn__custom_kind(const char *name, size_t len)
{
  const mpn__kind *k = NULL;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < ncustom && !k; i++)
    if (strlen(customs[i].name) == len && !strncmp(customs[i].name, name, len))
      k = &customs[i].kind;
  pthread_mutex_unlock(&lock);
  return k;
}
