/*
 * msgs.h - what reaches a connection besides its socket, and its
 * bookkeeping: websock_send_after() timers (each an event of the loop with
 * its message) and the topics it joined. Allocated on first use, so an idle
 * connection holds none of it.
 */
#ifndef WSH_MSGS_H
#define WSH_MSGS_H

#include <stddef.h>
#include <stdint.h>

#include "network/connection.h"

/* What a due timer does with its message (the state machine's
 * handle_info). */
typedef void (*wsh_timer_fire)(websock_conn *c, int64_t id, const uint8_t *data,
                               size_t len);

/* A timer: fire(c, data) after ms. Returns its id (> 0) or WEBSOCK_ENOMEM. */
int64_t wsh_msgs_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len, wsh_timer_fire fire);
/* 0, or WEBSOCK_ENOENT if no such timer is pending. */
int wsh_msgs_cancel_timer(websock_conn *c, int64_t id);

/* Joins a topic (again is no error): 0, WEBSOCK_EINVAL, WEBSOCK_ENOMEM. */
int wsh_msgs_subscribe(websock_conn *c, const char *topic);
/* 0, or WEBSOCK_ENOENT if c is not a member. */
int wsh_msgs_unsubscribe(websock_conn *c, const char *topic);

/* The connection takes no more callbacks: it leaves its topics and its
 * timers are dropped. */
void wsh_msgs_leave(websock_conn *c);

#endif
