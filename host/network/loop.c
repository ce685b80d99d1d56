/*
 * loop.c - the state a worker's connections share (see loop.h): set-up and
 * the status index of its counters.
 */
#include "network/loop.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

int wsh_status_index(int status) {
  switch (status) {
#define WSH_STATUS_CASE_(code)                                                 \
  case code:                                                                   \
    return WSH_STATUS_##code;
    WSH_STATUS_MAP(WSH_STATUS_CASE_)
#undef WSH_STATUS_CASE_
  default:
    return WSH_STATUS_OTHER;
  }
}

int wsh_loop_init(wsh_loop *l, unsigned index, wsh_conn_env *env,
                  websock_host *host) {
  memset(l, 0, sizeof(*l));
  l->index = index;
  l->env = env;
  l->host = host;
  wsh_slots_init(&l->slots);
  wsh_topics_init(&l->topics);
  l->rbuf_size = 64 * 1024;
  l->rbuf = malloc(l->rbuf_size);
  l->obuf_size = 256 * 1024;
  l->obuf = malloc(l->obuf_size);
  l->base = event_base_new();
  if (!l->base || !l->rbuf || !l->obuf) {
    wsh_loop_free(l);
    return WEBSOCK_ENOMEM;
  }
  return 0;
}

void wsh_loop_free(wsh_loop *l) {
  if (l->base)
    event_base_free(l->base);
  wsh_slots_free(&l->slots);
  wsh_topics_free(&l->topics);
  free(l->rbuf);
  free(l->obuf);
  free(l->dirty);
  memset(l, 0, sizeof(*l));
}
