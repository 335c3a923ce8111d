/* custom_send.c - attempts on a channel kind the program registered: its
 * function may block, so each attempt runs on a short-lived thread and never
 * holds up the engine or another channel. The thread keeps a reference to
 * the batch; an answer after the deadline is ignored (the message stays
 * spooled). */
#include "deliver/engine.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
  mpn__item *it;
  unsigned gen;
  char *url;
  char *json;
  mpn_channel_send_fn send;
  void *user;
  pthread_mutex_t *lock;
  void (*wake)(void);
} job;

static void *run(void *arg)
{
  job *j = arg;
  char detail[256] = "";
  mpn_code code = j->send(j->url, j->json, detail, sizeof detail, j->user);
  pthread_mutex_lock(j->lock);
  mpn__item *it = j->it;
  if (it->state == MPN__ITEM_RUNNING && it->gen == j->gen) {
    it->custom_code = code;
    detail[sizeof detail - 1] = '\0';
    snprintf(it->last.detail, sizeof it->last.detail, "%s", detail[0] ? detail : mpn_strerror(code));
    it->custom_done = 1;
  }
  pthread_mutex_unlock(j->lock);
  j->wake();
  mpn__batch_release(it->batch);   /* may free it: last */
  free(j->url);
  free(j->json);
  free(j);
  return NULL;
}

int mpn__custom_start(mpn__item *it, pthread_mutex_t *lock, void (*wake)(void))
{
  job *j = calloc(1, sizeof *j);
  if (!j)
    return -1;
  *j = (job){it, ++it->gen, strdup(it->ch.url), json_dumps((json_t *)it->batch->msg->doc, JSON_COMPACT),
             it->ch.kind->custom, it->ch.kind->custom_user, lock, wake};
  it->batch->refs++;   /* the thread's; the caller holds the engine lock */
  int rc = j->url && j->json ? mpn__thread_start(NULL, NULL, run, j, 1, 0) : -1;
  if (rc != 0) {
    it->batch->refs--;
    free(j->url);
    free(j->json);
    free(j);
    return -1;
  }
  it->custom_done = 0;
  return 0;
}

/* The verdict on a finished custom attempt. */
void mpn__custom_judge(mpn__item *it)
{
  mpn_code c = it->custom_code;
  it->last.code = c;
  it->last.retry = c != MPN_OK && c != MPN_E_INVALID_ARGUMENT && c != MPN_E_BAD_CONFIG;
  it->last.retry_after_ms = -1;
  it->custom_done = 0;
}
