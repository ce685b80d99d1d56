/*
 * http.h - the HTTP side of a connection: the request head read with the
 * handshake module, then either the 101 (with the plugin's upgrade() asked
 * first) or a plain answer: /healthz, /metrics, 426 at a WebSocket route,
 * 405, 404, and every refusal (400, 403, 408, 426, 503, ...), each counted
 * and logged. Answers are queued on the connection's output queue; what
 * happens to the connection next is the state machine's (conn.c) to do.
 */
#ifndef WSH_HTTP_H
#define WSH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "network/connection.h"

typedef enum wsh_http_result {
  WSH_HTTP_MORE,     /* the head is not complete yet */
  WSH_HTTP_ANSWERED, /* an answer is queued: close once it is written */
  WSH_HTTP_UPGRADED  /* a 101 is queued and *resp says what upgrade() chose */
} wsh_http_result;

/* Request bytes; *used says how many belong to the request head (frames may
 * follow it in the same read). On WSH_HTTP_UPGRADED the caller opens the
 * connection with resp, then frees it (wsh_response_free). */
wsh_http_result wsh_http_feed(websock_conn *c, const uint8_t *buf, size_t len,
                              size_t *used, websock_response *resp);

/* Queues a refusal outside a request's own answer (408 when the head is
 * late, 503 when the host shuts down). body may be NULL; why is logged. */
void wsh_http_refuse(websock_conn *c, int status, const char *body,
                     const char *why);

#endif
