/* engine.h - private to the files of lib/deliver/: batches and items, as
 * the engine (queue.c) drives them through the channels layer's transfers
 * (channels/transfer.c; no curl here). */
#ifndef MPN_ENGINE_H
#define MPN_ENGINE_H

#include "deliver/deliver.h"

#include <pthread.h>

enum { MPN__ITEM_WAITING, MPN__ITEM_RUNNING, MPN__ITEM_DONE };
enum { MPN__ROUTE_DIRECT, MPN__ROUTE_RELAY, MPN__ROUTE_LOCAL };

typedef struct mpn__item {
  struct mpn__batch *batch;
  mpn__channel ch;             /* own copy: the configuration may change meanwhile */
  int state;
  int route;
  int unheld;                  /* the relay did not take it as a held report: ordinary routes from here on */
  int attempts;
  int64_t next_at;             /* monotonic ns */
  mpn__attempt a;
  char *resp;                  /* the answer's body (capped) */
  size_t resp_len, resp_cap;
  mpn__verdict last;
  long http_status;
  mpn_code result;
  int spool_fd;                /* locked spooled copy, -1 if none */
  unsigned gen;                /* attempt number a custom channel's thread reports for */
  int custom_done;             /* that thread has finished: custom_code, last.detail */
  mpn_code custom_code;
  char spool_path[MPN__PATH_MAX + 128];
} mpn__item;

struct mpn__batch {
  struct mpn__batch *next;
  mpn_message *msg;            /* shares the caller's JSON document (reference counted) */
  char id[40];
  int n;
  mpn__item *items;
  int64_t deadline;
  int pending;                 /* items not done */
  int refs;                    /* caller + engine */
  char *ca_bundle;
  int relay_mode;
  char *relay_addr;
  unsigned char relay_key[32];
  int has_relay;
  int log_failures;
  int hold;                    /* every item goes to the relay first, as a report to hold (mpn__send_opts) */
};

/* queue.c */
int mpn__engine_add(mpn__batch *b);
/* batch.c */
void mpn__batch_free(mpn__batch *b);
size_t mpn__item_collect(char *data, size_t size, size_t n, void *arg);
long mpn__connect_budget(const mpn__batch *b, long total_ms);
void mpn__judge_transfer(mpn__item *it, const mpn__xfer_result *r);
/* custom_send.c: a registered channel's attempt, on its own thread */
int mpn__custom_start(mpn__item *it, pthread_mutex_t *lock, void (*wake)(void));
void mpn__custom_judge(mpn__item *it);
/* relay_client.c */
int mpn__relay_switch(mpn__item *it);
mpn_code mpn__relay_prepare(const mpn__batch *b, const mpn__item *it, mpn__attempt *a);
/* rate.c */
int64_t mpn__rate_slot(const mpn__channel *ch, int64_t now);   /* earliest time a send may start */
void mpn__rate_note(const mpn__channel *ch, int64_t now);

#endif
