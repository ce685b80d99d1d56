/*
 * headers.h - the pure rules of HTTP header fields that the upgrade answer
 * obeys: tokens (RFC 9110 5.6.2), field values a server may send, and the
 * headers of a 101 response that the host alone writes. One implementation,
 * compiled into websockd (handshake.c) and into the SDK's test library
 * (sdk/testlib/websock_test.c). No state, no I/O.
 */
#ifndef WSH_HEADERS_H
#define WSH_HEADERS_H

#include <stdbool.h>

/* A non-empty RFC 9110 token (header names, subprotocols). */
bool wsh_header_token(const char *s);

/* A header value we are willing to send: no control characters but HTAB. */
bool wsh_header_value_ok(const char *s);

/* Upgrade, Connection, Content-Length, Transfer-Encoding and every
 * Sec-WebSocket-* header: the host writes them, a plugin may not. */
bool wsh_header_host_owned(const char *name);

/* What websock_response_add_header() accepts: a token name the host does not
 * own and a sendable value. */
bool wsh_header_addable(const char *name, const char *value);

#endif
