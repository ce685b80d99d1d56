/*
 * network.h - layer 4, network: sockets and threads. The server (server.h:
 * listeners, signals, reload, the workers), each worker's thread and
 * mailbox (worker.h) and the loop its connections share (loop.h), a
 * connection's data (connection.h) and its jobs: the WebSocket state
 * machine (conn.h), the HTTP side (http.h), the output queue (outq.h), a
 * broadcast's sends many per system call (sendq.h), timers and
 * subscriptions (msgs.h), the transport every byte goes through
 * (transport.h; plain TCP in tcp.c, TLS in tls_transport.c over tls.h), the
 * slots behind websock_ref (slots.h), and the websock_* functions plugins call
 * on connections and hosts (api.c).
 *
 * May include: libc, libevent, pthreads (OpenSSL for TLS), liburing
 * (sendq.c); base/,
 * protocol/, plugins/, bus/. Nothing of ops/: what it needs from there
 * (the metrics page, the service manager) it is given as hooks.
 */
#ifndef WSH_NETWORK_H
#define WSH_NETWORK_H

#include "network/conn.h"
#include "network/connection.h"
#include "network/http.h"
#include "network/loop.h"
#include "network/msgs.h"
#include "network/outq.h"
#include "network/sendq.h"
#include "network/server.h"
#include "network/slots.h"
#include "network/transport.h"
#include "network/worker.h"

#endif
