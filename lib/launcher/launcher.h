/* launcher.h - the launcher layer (docs/internals/launcher.md): what
 * mpinotify-run needs from the library, behind the public mpn_relay_* API:
 * the relay's HTTP listener for sealed frames, and the relay that delivers
 * what ranks hand it and answers their notices and claims. Uses deliver/
 * and the layers below; never runs inside a rank. */
#ifndef MPN_LAUNCHER_H
#define MPN_LAUNCHER_H

#include "deliver/deliver.h"

/* ---- server.c: POST /relay, in its own thread ---------------------------- */
/* 0: accepted; MPN__RELAY_CLAIMED / _REPORTED: a claim for another rank's
 * failure (answered 409 / 410); anything else: busy (503). */
typedef int (*mpn__relay_accept_fn)(const char *plain, size_t len, void *arg);
typedef struct mpn__relay_server mpn__relay_server;
/* Listens on every IPv4 interface (INADDR_ANY), port 0 (ephemeral), in its own thread.
   *port receives the port. NULL on failure with a reason in err. */
mpn__relay_server *mpn__relay_server_start(const unsigned char key[32], mpn__relay_accept_fn fn, void *arg,
                                           int *port, char *err, size_t errlen);
void mpn__relay_server_stop(mpn__relay_server *s);   /* stops accepting, joins the thread, frees */
void mpn__relay_server_counts(const mpn__relay_server *s, long *accepted, long *rejected);

#endif
