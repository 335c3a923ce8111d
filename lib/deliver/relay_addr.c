/* relay_addr.c - which of the launcher's addresses a rank uses for its relay.
 *
 * mpinotify-run gives the ranks every IPv4 address of the launch node
 * (MPINOTIFY_RELAY_ADDR "10.1.0.5:40411,192.168.7.2:40411,127.0.0.1:40411"):
 * a compute node may not resolve the launch node's name, and may reach only
 * one of its networks. The first address a TCP connection reaches is kept
 * for the process's life; a connection that later fails forgets it, so the
 * next use tries them all again. A single address (MPINOTIFY_RELAY_HOST, or
 * a launcher of another version) is used as given, without a probe. */
#include "deliver/deliver.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PROBE_MS 300          /* per address: the relay is inside the cluster */
#define MAX_ADDRS 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char chosen[320];      /* the address that answered, "" until one did */
static char chosen_from[1024];   /* the list it was chosen from */
static int said_unreachable;
static int64_t none_since;    /* when no address answered: not probed again for RETRY_NS */
#define RETRY_NS 5000000000LL

/* Whether a TCP connection to host:port (host may be "[v6]") opens within PROBE_MS; *err says why not. */
static int reachable(const char *entry, int *err)
{
  char host[300];
  const char *colon = strrchr(entry, ':');
  *err = EINVAL;
  if (!colon || (size_t)(colon - entry) >= sizeof host)
    return 0;
  int skip = entry[0] == '[' && colon > entry && colon[-1] == ']';
  snprintf(host, sizeof host, "%.*s", (int)(colon - entry) - 2 * skip, entry + skip);
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
  if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
    *err = EHOSTUNREACH;
    return 0;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), ok = 0;
  if (fd >= 0 && (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)) {
    struct pollfd p = {fd, POLLOUT, 0};
    socklen_t len = sizeof *err;
    *err = ETIMEDOUT;
    if (poll(&p, 1, PROBE_MS) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, err, &len) == 0)
      ok = *err == 0;
  } else {
    *err = errno;
  }
  if (fd >= 0)
    close(fd);
  freeaddrinfo(ai);
  return ok;
}

/* The first reachable entry of `list` into chosen; says once when none is. */
static void choose(const char *list)
{
  char copy[1024], why[600] = "";
  snprintf(copy, sizeof copy, "%s", list);
  int n = 0;
  for (char *save = NULL, *e = strtok_r(copy, ",", &save); e && n < MAX_ADDRS; e = strtok_r(NULL, ",", &save), n++) {
    int err = 0;
    if (reachable(e, &err)) {
      mpn__strlcpy(chosen, e, sizeof chosen);
      mpn__strlcpy(chosen_from, list, sizeof chosen_from);
      return;
    }
    size_t len = strlen(why);
    snprintf(why + len, sizeof why - len, "%s%s (%s)", len ? ", " : "", e, strerror(err));
  }
  none_since = mpn__now_ns();
  if (!said_unreachable++)
    mpn__log_error("cannot reach the launcher's relay at any of its addresses: %s; set MPINOTIFY_RELAY_HOST to an "
                   "address of the launch node that this node can reach", why);
}

const char *mpn__relay_pick(const char *list, char *out, size_t cap)
{
  const char *comma = list ? strchr(list, ',') : NULL;
  if (!comma) {
    mpn__strlcpy(out, list ? list : "", cap);
    return out;
  }
  pthread_mutex_lock(&lock);
  int stale = !chosen[0] || strcmp(chosen_from, list) != 0;
  if (stale && (!none_since || mpn__now_ns() - none_since > RETRY_NS))
    choose(list);
  if (chosen[0] && !strcmp(chosen_from, list))
    mpn__strlcpy(out, chosen, cap);
  else   /* none answered: the first, so that the error a send meets names a relay address */
    snprintf(out, cap, "%.*s", (int)(comma - list), list);
  pthread_mutex_unlock(&lock);
  return out;
}

void mpn__relay_forget(void)
{
  pthread_mutex_lock(&lock);
  chosen[0] = '\0';   /* none_since stays: with no address answering, a failed send must not probe again at once */
  pthread_mutex_unlock(&lock);
}
