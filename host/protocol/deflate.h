/*
 * deflate.h - permessage-deflate (RFC 7692) for the protocol layer: the
 * Sec-WebSocket-Extensions negotiation, and compressing and inflating whole
 * messages over zlib's raw deflate. No I/O and no globals: bytes and header
 * values in, results out. The frame side (RSV1) is in frame.h.
 *
 * Memory. Every byte this module allocates (zlib's state, through a zalloc
 * hook, and the output buffers) is counted in a wsh_zmem that the caller
 * owns, so that the host can charge it to its budget. Two ways to hold the
 * zlib state, chosen per route:
 *   - shared: a worker owns one wsh_pmd_shared (an inflater, and a deflater
 *     per server window size, made on first use); a connection holds no
 *     zlib state at all, since both directions run without context
 *     takeover and the streams are reset between messages;
 *   - dedicated: a connection owns its deflater and inflater (with context
 *     takeover unless negotiated away), made on first use and shrunk by
 *     wsh_pmd_trim when idle (the deflater is freed, which only costs the
 *     next message its history; the inflater is cut down to the bytes of
 *     its window, which the client may still refer to).
 */
#ifndef WSH_DEFLATE_H
#define WSH_DEFLATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/utf8.h"

#define WSH_PMD_TOKEN "permessage-deflate"
#define WSH_PMD_RESPONSE_MAX 160  /* longest response value, with its NUL */
#define WSH_PMD_CHUNK (16 * 1024) /* inflate output step past the limit */

typedef enum wsh_pmd_mode {
  WSH_PMD_OFF = 0,  /* decline every offer */
  WSH_PMD_SHARED,   /* no context takeover either way; the worker's streams */
  WSH_PMD_DEDICATED /* context takeover; the connection's own streams */
} wsh_pmd_mode;

/* A route's compression settings. */
typedef struct wsh_pmd_config {
  wsh_pmd_mode mode;
  uint8_t server_window_bits; /* 9..15: the largest window we compress with */
  uint8_t client_window_bits; /* 8..15: the largest we ask clients to use */
  uint8_t level;              /* 1..9, zlib's compression level */
  uint8_t mem_level;          /* 1..9, zlib's memLevel (dedicated deflaters) */
  size_t min_size; /* smaller messages go uncompressed (the caller checks) */
} wsh_pmd_config;

/* Off, windows of 15 bits, level 6, memLevel 8, min_size 64 (a route
 * starts from level 1 and memLevel 5 instead: route.h). */
void wsh_pmd_config_default(wsh_pmd_config *cfg);

/* NULL if every field is in range, else a static string naming the first
 * that is not. */
const char *wsh_pmd_config_check(const wsh_pmd_config *cfg);

/* What one accepted offer settled. */
typedef struct wsh_pmd_params {
  bool server_no_context_takeover; /* we reset our deflater per message */
  bool client_no_context_takeover; /* the client resets; so may our inflater */
  uint8_t server_window_bits;      /* 9..15: our deflater's window */
  uint8_t client_window_bits;      /* 8..15: the most the client may use */
} wsh_pmd_params;

/*
 * Negotiates permessage-deflate (RFC 7692 §7.1) from the request's
 * Sec-WebSocket-Extensions header values, values[0..n) in request order,
 * each NUL-terminated and each a comma-separated list of offers (RFC 6455
 * §9.1 grammar: token, `;` parameters, values as token or quoted-string).
 * Takes the first permessage-deflate offer it can honour. An offer is
 * declined (and the next one tried) if a parameter is unknown, repeated,
 * malformed or out of range (a window value must be 8..15, no leading zero,
 * quoted or not; server_max_window_bits must have a value; the takeover
 * parameters must not), or asks for what cannot be done: a server window of
 * 8 bits, which zlib's raw deflate does not produce. A list element that
 * does not parse is skipped; an unterminated quoted-string ends its header
 * value. Nothing here fails the upgrade.
 *
 * Returns true and fills *params and response (the Sec-WebSocket-Extensions
 * value to answer with, NUL-terminated) if an offer was accepted; false
 * (compression declined: send no such header) otherwise, and always when
 * cfg->mode is WSH_PMD_OFF. The response carries only what a server may
 * send: server_no_context_takeover when the client asked for it or the mode
 * is shared; client_no_context_takeover when the client offered it or the
 * mode is shared; server_max_window_bits when the client offered it or our
 * window is below 15;
 * client_max_window_bits only when the client offered it (without a value,
 * or with one: then min(its value, ours)), and only if below 15. When the
 * client did not offer client_max_window_bits its window is 15.
 */
bool wsh_pmd_negotiate(const wsh_pmd_config *cfg, const char *const *values,
                       size_t n, wsh_pmd_params *params,
                       char response[WSH_PMD_RESPONSE_MAX]);

/* Bytes allocated by this module, in use and at their peak. Written by the
 * one thread that owns the streams; atomic so that another may read it. */
typedef struct wsh_zmem {
  atomic_size_t zlib;    /* zlib's own state (zalloc) */
  atomic_size_t buffers; /* wsh_zbuf output buffers */
  atomic_size_t peak;    /* highest zlib + buffers seen */
} wsh_zmem;

void wsh_zmem_init(wsh_zmem *m);

/* zlib + buffers now. */
size_t wsh_zmem_in_use(const wsh_zmem *m);

/* An output buffer, counted in a wsh_zmem. Zero-initialise it; free it with
 * wsh_zbuf_free. data[0..len) is the result. */
typedef struct wsh_zbuf {
  uint8_t *data;
  size_t len;
  size_t cap;
} wsh_zbuf;

void wsh_zbuf_free(wsh_zbuf *b, wsh_zmem *m);

typedef enum wsh_pmd_result {
  WSH_PMD_OK = 0,
  WSH_PMD_NOT_SMALLER, /* compress: not worth it; send the message as is */
  WSH_PMD_TOO_BIG,     /* inflate: over the limit (close 1009) */
  WSH_PMD_BAD_DATA,    /* inflate: not a valid compressed message (1007) */
  WSH_PMD_NOMEM        /* out of memory (1011) */
} wsh_pmd_result;

/* The close code for an inflate failure (1009, 1007, 1011), 0 for OK. */
uint16_t wsh_pmd_close_code(wsh_pmd_result r);

/* A worker's streams for `shared` routes: one inflater (15-bit window, so
 * it reads any client's messages) and a deflater per window size it
 * compresses with, each made on first use and reset after every message.
 * A message is compressed with the smallest window, 9 to
 * WSH_PMD_SMALL_BITS_MAX bits and at most the negotiated one, whose reach
 * (the window less zlib's 262-byte lookahead) covers the whole message,
 * else with the negotiated window: any window up to the negotiated one
 * makes a stream the client reads, and one that covers the message finds
 * the same matches. Its deflater's memLevel is the window bits less 6
 * (at most 8: 15 bits keep zlib's default), so that the hash zlib clears at
 * every reset (2 << (memLevel + 7) bytes) grows with the window, not the
 * 64 KiB of memLevel 8 for a 256-byte message. Memory, when every size is
 * used (zconf.h's formula): 6, 12, 24, 48 and 96 KiB for windows 9 to 13,
 * plus 256 KiB for 15 bits (192 for 14). */
#define WSH_PMD_SMALL_BITS_MAX 13

typedef struct wsh_pmd_shared {
  wsh_zmem *mem;
  struct wsh_zstream *inflater;
  struct wsh_zstream *deflater[16]; /* by window bits, 9..15 used */
} wsh_pmd_shared;

/* The window bits a shared deflater compresses a message of len bytes
 * with, for a negotiated server window of server_bits (9..15), and that
 * deflater's memLevel. */
int wsh_pmd_shared_bits(size_t len, int server_bits);
int wsh_pmd_shared_mem_level(int bits);

void wsh_pmd_shared_init(wsh_pmd_shared *s, wsh_zmem *mem);
void wsh_pmd_shared_free(wsh_pmd_shared *s);

/* One connection's compression state. In shared mode it holds no zlib
 * state; in dedicated mode its streams are made on first use. A plain
 * struct, so that a connection can embed it. */
typedef struct wsh_pmd {
  wsh_pmd_params params;
  uint8_t level;
  uint8_t mem_level;
  bool in_message;        /* an inflate is between begin and end */
  wsh_pmd_shared *shared; /* shared mode: the worker's streams */
  wsh_zmem *mem;
  struct wsh_zstream *deflater; /* dedicated only */
  struct wsh_zstream *inflater; /* dedicated only */
  struct wsh_zstream *cur;      /* the inflater of the message in progress */
  uint8_t *window;              /* a trimmed inflater's history */
  size_t window_len;
  wsh_zbuf *out; /* the message being inflated */
  size_t limit;
  wsh_pmd_result status; /* of the message in progress */
  bool stream_end;       /* its deflate stream ended (BFINAL) */
  bool got_data;         /* any payload byte fed */
} wsh_pmd;

/* Sets up a connection's state for negotiated params: shared mode when
 * `shared` is given (its streams are used, and params must say no context
 * takeover both ways), else dedicated with cfg's level and memLevel.
 * Allocates nothing. */
void wsh_pmd_init(wsh_pmd *c, const wsh_pmd_params *params,
                  const wsh_pmd_config *cfg, wsh_pmd_shared *shared,
                  wsh_zmem *mem);

/* Frees the connection's streams and history. */
void wsh_pmd_free(wsh_pmd *c);

/* For an idle connection: frees the deflater and cuts the inflater down to
 * its history (nothing at all without client context takeover). Does
 * nothing to an inflate in progress. */
void wsh_pmd_trim(wsh_pmd *c);

/* Bytes of zlib state and history the connection holds now. */
size_t wsh_pmd_conn_bytes(const wsh_pmd *c);

/*
 * Compresses one whole message (RFC 7692 §7.2.1: deflate, sync flush, the
 * trailing 00 00 FF FF removed) into out (replacing its contents), ready to
 * be the payload of a message whose first frame has RSV1 set. Returns
 * WSH_PMD_OK, or WSH_PMD_NOT_SMALLER when the result would not be shorter
 * than the message (an empty message never is) and `force` is false: send
 * the message uncompressed then (with context takeover the deflater was
 * reset, so the client's history still matches); or WSH_PMD_NOMEM.
 * With context takeover at levels 1 to 3, a message that would make zlib
 * slide its window restarts the deflater from the last quarter of it
 * instead (cheaper; the history it refers to is then between a quarter of
 * the window and all of it).
 */
wsh_pmd_result wsh_pmd_compress(wsh_pmd *c, const uint8_t *msg, size_t len,
                                bool force, wsh_zbuf *out);

/*
 * Inflates one compressed message (RFC 7692 §7.2.2) into out, incrementally:
 * begin, then feed each frame's payload as it comes (any split), then end,
 * which appends 00 00 FF FF and checks that the data ends on a block
 * boundary. limit is the largest inflated size allowed (0: none); out never
 * grows past limit + WSH_PMD_CHUNK, and the first result that is not OK
 * (TOO_BIG, BAD_DATA, NOMEM) ends the message: later feeds return it again.
 * A deflate block with BFINAL set ends a stream; what follows it in the
 * message starts a new one (RFC 7692 §7.2.3.4).
 * A message with an empty payload inflates to an empty message (appending
 * the tail to nothing does not make a whole block; it is taken as empty,
 * as other peers do); any other payload must end on a block boundary.
 * The inflated bytes of a text message are not yet checked: the caller
 * checks them as UTF-8 (1007 if not), as the frame decoder does not.
 * With a shared inflater, one message is inflated from begin to end before
 * another connection's begins: the host uses it only for a message that
 * arrived whole in one read (wsh_pmd_inflate in one call); a message that
 * arrives frame by frame gets a private inflater (wsh_pmd_msg below).
 */
wsh_pmd_result wsh_pmd_inflate_begin(wsh_pmd *c, wsh_zbuf *out, size_t limit);
wsh_pmd_result wsh_pmd_inflate_feed(wsh_pmd *c, const uint8_t *in, size_t len);
wsh_pmd_result wsh_pmd_inflate_end(wsh_pmd *c);

/* begin, feed(in, len), end. */
wsh_pmd_result wsh_pmd_inflate(wsh_pmd *c, const uint8_t *in, size_t len,
                               size_t limit, wsh_zbuf *out);

/* What a connection does with a compressed message (opcode 0x1 text or
 * 0x2 binary): wsh_pmd_inflate within limit, then text checked as UTF-8.
 * Returns 0, or the close code (1009 too big, 1007 not inflatable or not
 * UTF-8, 1011 out of memory) with *why set to a static string. */
uint16_t wsh_pmd_inflate_message(wsh_pmd *c, uint8_t opcode, const uint8_t *in,
                                 size_t len, size_t limit, wsh_zbuf *out,
                                 const char **why);

/*
 * A compressed message inflated piece by piece as its frames arrive (the
 * frame decoder's sink, frame.h), its inflated size held to limit as it
 * grows and, for text, each inflated byte checked as UTF-8 as it comes, so
 * that a bomb or bad text fails at the fragment that shows it. begin with
 * the state to inflate with (its inflater is busy until end or abort),
 * feed each piece, end: m->out then holds the message (the caller frees
 * it with wsh_zbuf_free). Each returns 0 or the close code (1009, 1007,
 * 1011) with *why (a static string); after an error only abort remains.
 * abort ends an unfinished message and frees its output.
 */
typedef struct wsh_pmd_msg {
  wsh_pmd *p;
  wsh_zbuf out;
  wsh_utf8 utf8;
  bool text;
  size_t zlen; /* compressed bytes fed */
} wsh_pmd_msg;

uint16_t wsh_pmd_msg_begin(wsh_pmd_msg *m, wsh_pmd *p, bool text, size_t limit,
                           const char **why);
uint16_t wsh_pmd_msg_feed(wsh_pmd_msg *m, const uint8_t *in, size_t len,
                          const char **why);
uint16_t wsh_pmd_msg_end(wsh_pmd_msg *m, const char **why);
void wsh_pmd_msg_abort(wsh_pmd_msg *m);

/* zlib's documented memory formula (zconf.h) for a dedicated connection
 * with both streams live: deflate (1 << (server_bits + 2)) +
 * (1 << (mem_level + 9)), inflate 1 << max(client_bits, 9), without the
 * few kilobytes of small objects zlib adds. */
size_t wsh_pmd_formula_bytes(int server_bits, int client_bits, int mem_level);

#endif
