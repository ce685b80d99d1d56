/*
 * statebuf.h - the bytes a plugin's export_state() writes for a live code
 * upgrade (reload = handoff): websock_buf, a growing buffer with a hard cap,
 * so that a plugin can append but never write past anything. One
 * implementation, inline, for websockd (api.c, conn.c) and the SDK's test
 * library (sdk/testlib/websock_test.c).
 */
#ifndef WSH_STATEBUF_H
#define WSH_STATEBUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "websock.h"

struct websock_buf {
  uint8_t *data; /* malloc'd; NULL while empty */
  size_t len;
  size_t cap; /* allocated */
  size_t max; /* the most bytes it takes (the new route's max_message_size) */
};

static inline void wsh_statebuf_init(websock_buf *b, size_t max) {
  b->data = NULL;
  b->len = b->cap = 0;
  b->max = max;
}

static inline void wsh_statebuf_free(websock_buf *b) {
  free(b->data);
  wsh_statebuf_init(b, b->max);
}

/* websock_buf_append(): copies data to the end, or changes nothing. */
static inline int wsh_statebuf_append(websock_buf *b, const void *data,
                                      size_t len) {
  if (!b || (len && !data))
    return WEBSOCK_EINVAL;
  if (len > b->max - b->len)
    return WEBSOCK_ETOOBIG;
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len)
      cap = cap > b->max / 2 ? b->max : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
      return WEBSOCK_ENOMEM;
    b->data = p;
    b->cap = cap;
  }
  if (len)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

#endif
