/*
 * handshake.h - the HTTP/1.1 side of a WebSocket connection: parsing the
 * upgrade request with http-parser, the RFC 6455 §4.2.1 checks,
 * Sec-WebSocket-Accept, subprotocol negotiation, and rendering the response
 * (101 or a refusal). No I/O here.
 *
 * struct websock_request and struct websock_response (opaque in websock.h)
 * are defined here, and their public accessors live in handshake.c.
 */
#ifndef WSH_HANDSHAKE_H
#define WSH_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>

#include <http_parser.h>

#include "websock.h"

typedef struct wsh_header {
  char *name;
  char *value;
} wsh_header;

/* A value a route's path pattern captured, decoded. */
typedef struct wsh_param {
  const char *name;
  const char *value;
} wsh_param;

struct websock_request {
  http_parser parser;
  size_t max_header_bytes; /* over it: 431 */
  size_t header_bytes;     /* bytes of the request head seen so far */
  int state;               /* private to handshake.c */
  int status;              /* the error status once failed */
  char method[16];
  char *url;           /* raw request target, owned */
  char *path;          /* owned, without the query */
  char *query;         /* owned, "" if none */
  wsh_header *headers; /* owned */
  size_t nheaders;
  size_t cap_headers;
  char remote_addr[64];    /* set by the caller: "1.2.3.4:5" or "[::1]:5" */
  const char *subprotocol; /* the one the host would pick (set by the
                              caller after negotiation), or NULL */
  uint8_t tls;             /* set by the caller: it came over TLS */
  uint8_t subject_set;     /* set by the caller: peer_subject is final */
  char *peer_subject;      /* owned: the verified client certificate's
                              subject (RFC 2253), NULL if none */
  const wsh_param *params; /* set by the caller (borrowed): what the route's
                              pattern captured */
  size_t nparams;
  void *context; /* set by the caller: the generation's load() context */
};

struct websock_response {
  int status;          /* 101 or a refusal status */
  wsh_header *headers; /* extra headers, owned */
  size_t nheaders;
  size_t cap_headers;
  char *subprotocol; /* owned; NULL if none */
  char *body;        /* owned; NULL if none */
  void *state;       /* handed on to init() */
  char *extensions;  /* owned; Sec-WebSocket-Extensions of a 101, or NULL */
  /* the client's offered subprotocols, for websock_response_set_subprotocol;
     points into the request */
  const websock_request *req;
};

enum {
  WSH_HS_NEED_MORE = 0, /* feed more bytes */
  WSH_HS_DONE = 1       /* the request head is complete */
  /* any other return value is an HTTP error status (400, 431, ...) */
};

/* Allocates a request parser. max_header_bytes bounds the request line plus
 * headers (431 past it). Returns 0 or WEBSOCK_ENOMEM. */
int wsh_request_new(websock_request **out, size_t max_header_bytes);
void wsh_request_free(websock_request *req);

/* Feeds bytes of the request. Returns WSH_HS_NEED_MORE (all consumed),
 * WSH_HS_DONE (*consumed = bytes that belong to the request; anything after
 * them is the client's first WebSocket frames, to be handed to the decoder),
 * or an HTTP status to answer with and close: 400 for malformed HTTP, 431 for
 * a head over the limit. A request with a body (Content-Length > 0 or chunked)
 * is 400: an upgrade request has none. */
int wsh_request_feed(websock_request *req, const char *data, size_t len,
                     size_t *consumed);

/* True if the request asks for a WebSocket upgrade at all (an Upgrade header
 * naming websocket), as opposed to a plain HTTP request. */
bool wsh_request_wants_websocket(const websock_request *req);

/* The RFC 6455 §4.2.1 checks on a complete request: GET, HTTP/1.1 or later,
 * Host, Upgrade containing the token "websocket" and Connection containing
 * "upgrade" (case-insensitive token lists), a Sec-WebSocket-Key that is base64
 * of exactly 16 bytes (and only one of them), Sec-WebSocket-Version 13.
 * Returns 0 if all pass, else the status (400, or 426 for a missing or other
 * version) and *why, a static string for the log and the response body. */
int wsh_request_check_upgrade(const websock_request *req, const char **why);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), using OpenSSL's
 * libcrypto. out holds 28 characters and a NUL. Returns 0 or WEBSOCK_EINVAL. */
int wsh_accept_key(const char *key, char out[29]);

/* True if the comma-separated header value contains `token`
 * (case-insensitive, optional whitespace around items). */
bool wsh_token_list_has(const char *value, const char *token);

/* Picks the first of the server's subprotocols (route order) that the client
 * offered in any Sec-WebSocket-Protocol header. Returns a pointer into
 * server[] or NULL. */
const char *wsh_negotiate_subprotocol(const websock_request *req,
                                      char *const *server, size_t nserver);

/* True if the client offered `proto` in Sec-WebSocket-Protocol. */
bool wsh_request_offers_subprotocol(const websock_request *req,
                                    const char *proto);

/* Response: starts as status 101 with no extra headers. */
void wsh_response_init(websock_response *resp, const websock_request *req);
void wsh_response_free(websock_response *resp);

/* Renders the response head (and body) into a malloc'd buffer that the caller
 * frees. For 101: Upgrade, Connection, Sec-WebSocket-Accept (from
 * accept_key), the subprotocol if any, then the extra headers. For any other
 * status: the reason phrase, the extra headers, Content-Type: text/plain,
 * Content-Length, Connection: close, and the body (or the reason phrase);
 * a 426 also carries Sec-WebSocket-Version: 13. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_response_render(const websock_response *resp, const char *accept_key,
                        char **out, size_t *out_len);

/* The standard reason phrase for a status ("Not Found"), or "Unknown". */
const char *wsh_status_text(int status);

#endif
