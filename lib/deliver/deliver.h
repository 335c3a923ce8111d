/* deliver.h - the delivery layer (docs/internals/deliver.md): one engine
 * thread sends every message on every channel, writes it ahead to the
 * spool, retries, rate-limits, and relays through mpinotify-run; the relay's
 * sealed frames. Uses the layers below (config/ for settings). engine.h is
 * private to the files of this layer (items and batches). */
#ifndef MPN_DELIVER_H
#define MPN_DELIVER_H

#include "config/config.h"

/* ---- batch.c: one message on several channels --------------------------- */
typedef struct mpn__batch mpn__batch;
typedef struct mpn__send_opts {
  const char *spool_dir;
  const char *ca_bundle;
  int relay_mode;
  const char *relay_addr;
  const char *relay_key;
  int no_spool;             /* already kept (a flush): write no new copy */
  int log_failures;         /* nobody waits for the results: the engine logs what failed */
  int hold;                 /* a fatal report under mpinotify-run: handed to the relay first, which holds it
                               to send it merged with the job's end (docs/internals/launcher.md) */
} mpn__send_opts;
mpn__batch *mpn__submit(const mpn__channel *chs, int n, const mpn_message *m, int64_t deadline_ns,
                        const mpn__send_opts *o);
/* Waits until every channel finished or the deadline; 1 when all finished. */
int mpn__batch_wait(mpn__batch *b, int64_t deadline_ns);
/* Brings the batch's deadline forward to `deadline_ns` (never later): a
 * launcher ending sooner than the batch's own time budget. */
void mpn__batch_cut(mpn__batch *b, int64_t deadline_ns);
/* Reports each channel's outcome; returns how many accepted the message. */
int mpn__batch_results(mpn__batch *b, mpn_result_fn cb, void *arg);
void mpn__batch_release(mpn__batch *b);
void mpn__deliver_prime(void);
void mpn__send_opts_from(mpn__send_opts *o, const mpn__config *cfg);
/* The crash path: the report to the configured channels (or the event's
 * own), bounded. Returns the number of channels that accepted it (console
 * counts). */
int mpn__deliver(const mpn__report *r, int64_t deadline_mono_ns);
/* The same to the configured channels in `only` (bit i: channel i; ~0: all) for a fatal
 * leader that may hand off (mpi/election.c): with `hand_off`, the channels that failed
 * for want of a route (no name, no connection) are returned in *unreached, for the
 * successor, and their spooled copies' paths in *kept (one per line, malloc'd, or NULL;
 * kept may be NULL), to remove once the successor delivered; returns as mpn__deliver,
 * counting those as kept. */
int mpn__deliver_some(const mpn__report *r, int64_t deadline_mono_ns, uint64_t only, int hand_off,
                      uint64_t *unreached, char **kept);
/* The same without waiting: the engine delivers (or spools) on its own; for
 * notices, so the agent is free for the next election. 1 when submitted. */
int mpn__deliver_async(const mpn__report *r, int64_t deadline_mono_ns);

/* ---- sender.c: the public mpn_sender ------------------------------------- */
/* Delivers to the channels given and waits; no_spool: already kept. */
mpn_code mpn__send_to(const mpn__config *cfg, const mpn__channel *chs, int n, const mpn_message *m,
                      int64_t deadline, int no_spool, mpn_result_fn cb, void *arg);
const mpn__config *mpn__sender_config(const mpn_sender *s);

/* ---- spool.c ------------------------------------------------------------- */
int mpn__spool_prepare(const char *dir, char *err, size_t errlen);   /* mkdir 0700, owner check */
/* Writes the message for one channel atomically; returns an fd holding an
 * flock on it (the message is in flight) or -1; *path receives its name. */
int mpn__spool_write(const char *dir, const mpn_message *m, const mpn__channel *ch, char *path, size_t cap);
void mpn__spool_done(int fd, const char *path, int delivered);   /* unlink if delivered; unlock */
typedef struct mpn__spooled {
  char path[MPN__PATH_MAX + 256];
  char *spec;
  mpn_message *msg;
  int fd;                   /* locked */
} mpn__spooled;
/* Next spooled message nobody is delivering, locked; 0 when none is left. */
int mpn__spool_next(const char *dir, void **iter, mpn__spooled *out);
void mpn__spool_iter_end(void *iter);

/* ---- seal.c: the relay's frames ------------------------------------------ */
/* AES-256-GCM frames with timestamp and nonce (key: 32 bytes). */
char *mpn__relay_seal(const unsigned char key[32], const char *plain, size_t len, size_t *out_len);
/* Returns the plaintext (malloc'd) or NULL; *why says why (forged, stale, replayed). */
char *mpn__relay_open(const unsigned char key[32], const char *frame, size_t len, size_t *out_len,
                      const char **why);
/* Seals as if at time_ms (wall clock, ms since the epoch): tests build stale frames. */
char *mpn__relay_seal_at(const unsigned char key[32], const char *plain, size_t len, int64_t time_ms,
                         size_t *out_len);
void mpn__relay_keygen(unsigned char key[32]);   /* RAND_bytes; aborts rather than return a weak key */
/* What a relay answers a claim for another rank's failure (launcher/server.c). */
enum { MPN__RELAY_CLAIMED = 409, MPN__RELAY_REPORTED = 410 };
/* POSTs a sealed frame to a relay (host:port) and waits for its answer,
 * bounded: the HTTP status, 0 when none came (-1: no request could be set up). For a rank's notices to
 * its launcher; reports go through the engine (mpn__submit). */
long mpn__relay_post(const char *addr, const unsigned char key[32], const char *plain, size_t len,
                     long timeout_ms);

/* ---- relay_addr.c: which of the launcher's addresses answers ------------- */
/* `list` is MPINOTIFY_RELAY_ADDR ("host:port" or several, comma-separated):
 * the address to use into out (the first that a TCP connection reached,
 * kept; probing at most 0.3 s each), and out. Thread-safe. */
const char *mpn__relay_pick(const char *list, char *out, size_t cap);
/* The kept address failed: the next pick probes again. */
void mpn__relay_forget(void);

#endif
