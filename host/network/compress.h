/*
 * compress.h - permessage-deflate (RFC 7692) on a connection (compress.c):
 * the offer answered at the upgrade, compressed messages inflated on the
 * way in, messages compressed on the way out, a broadcast's compressed
 * frame made once and shared, and dedicated streams trimmed when idle. The
 * codec itself is protocol/deflate.h; this module gives it a worker's
 * streams, a connection's settings and the host's counters.
 *
 * Memory. A `shared` connection holds only its negotiated parameters (a few
 * bytes in websock_conn): it borrows its worker's streams for one message at
 * a time. A `dedicated` connection holds a wsh_conn_pmd, whose streams are
 * made on first use and trimmed after the route's compression_idle_ms;
 * their bytes count in the host-wide memory budget, and so does an
 * inflated message while it is handed to the plugin.
 */
#ifndef WSH_COMPRESS_H
#define WSH_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "network/connection.h"
#include "bus/topic.h"

/* A dedicated connection's streams and when it last used them. */
typedef struct wsh_conn_pmd {
  wsh_pmd pmd;
  uint64_t used_ms; /* last compress or inflate */
  bool trimmed;     /* trimmed since then */
  bool arm;         /* used after a trim: the connection arms its timer */
} wsh_conn_pmd;

/* The upgrade (http.c): answers the client's permessage-deflate offers for
 * the route. When one is accepted, resp->extensions is set and c remembers
 * the parameters; otherwise (no offer, compression off, nothing it can
 * honour, out of memory) nothing is set: declining never fails the
 * upgrade. */
void wsh_compress_negotiate(websock_conn *c, websock_response *resp);

/* The connection opened with compression negotiated: a dedicated
 * connection gets its (empty) state. 0 or WEBSOCK_ENOMEM. Its decoders
 * (conn.c) allow RSV1 and give compressed payloads to wsh_compress_sink. */
int wsh_compress_open(websock_conn *c);

/* The decoders' sink (wsh_decoder_set_sink; d is a wsh_conn_dec's): each
 * piece of a compressed message inflated as it arrives, held to
 * max_message_size as it grows, text checked as it goes. */
uint16_t wsh_compress_sink(wsh_decoder *d, uint8_t opcode, const uint8_t *p,
                           size_t n, const char **why);

/* Frees a connection's compression state (dedicated streams). */
void wsh_compress_free(websock_conn *c);

/* Bytes of zlib state and history a connection holds (dedicated), for the
 * host-wide memory budget. */
size_t wsh_compress_held(const websock_conn *c);

/* Inflates a compressed message (ev->compressed) into out (zeroed by the
 * caller; free it with wsh_compress_release), its size limited to the
 * route's max_message_size while inflating, text checked as UTF-8.
 * Returns 0, or the close code (1009 too big, 1007 not inflatable or not
 * UTF-8, 1011 out of memory) with *why set. */
uint16_t wsh_compress_inflate(websock_conn *c, const wsh_event *ev,
                              wsh_zbuf *out, const char **why);
void wsh_compress_release(websock_conn *c, wsh_zbuf *out);

/* Counts a message received uncompressed on a connection that negotiated
 * compression. */
void wsh_compress_count_plain_in(websock_conn *c, size_t len);

/* Sends a text or binary message compressed when the connection negotiated
 * compression, the message is at least compression_min_size and its
 * compressed form is smaller (counted either way). Returns 1 if it was
 * queued compressed, 0 if the caller is to send it as is, or a negative
 * code. `plain`: the plugin asked for this message to go uncompressed. */
int wsh_compress_send(websock_conn *c, uint8_t opcode, const void *data,
                      size_t len, bool plain);

/* A broadcast frame for c: the compressed form of sh, made once per window
 * size for every subscriber of every worker (a dedicated subscriber's
 * deflater is reset first, so that the client's history stays in step), or
 * sh itself when c negotiated nothing, the message is under the route's
 * compression_min_size, or compressing did not pay. Not referenced:
 * sh holds it. */
wsh_shared *wsh_compress_shared(websock_conn *c, wsh_shared *sh);

/* A dedicated connection idle for compression_idle_ms gives back its
 * deflater and shrinks its inflater to its history (wsh_pmd_trim). Returns
 * when it is next due (UINT64_MAX: nothing to trim). */
uint64_t wsh_compress_idle(websock_conn *c, uint64_t now);

#endif
