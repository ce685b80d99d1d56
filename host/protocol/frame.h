/*
 * frame.h - the RFC 6455 codec: bytes in, events out; messages in, bytes out.
 * No I/O here, so it can be unit-tested and fuzzed on its own. The decoder is
 * incremental: any split of the input across calls, down to one byte at a
 * time, gives the same events.
 */
#ifndef WSH_FRAME_H
#define WSH_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/utf8.h"

/* Close codes (RFC 6455 §7.4.1). */
enum {
  WSH_CLOSE_NORMAL = 1000,
  WSH_CLOSE_GOING_AWAY = 1001,
  WSH_CLOSE_PROTOCOL = 1002,
  WSH_CLOSE_UNSUPPORTED = 1003,
  WSH_CLOSE_NO_STATUS = 1005, /* never on the wire */
  WSH_CLOSE_ABNORMAL = 1006,  /* never on the wire */
  WSH_CLOSE_INVALID_DATA = 1007,
  WSH_CLOSE_POLICY = 1008,
  WSH_CLOSE_TOO_BIG = 1009,
  WSH_CLOSE_INTERNAL = 1011,
  WSH_CLOSE_RESTART = 1012,
  WSH_CLOSE_TRY_AGAIN = 1013
};

#define WSH_MAX_HEADER 10   /* longest server frame header */
#define WSH_MAX_CONTROL 125 /* longest control payload */

typedef enum wsh_ev_type {
  WSH_EV_NONE = 0, /* every byte given was consumed; need more input */
  WSH_EV_MESSAGE, /* a whole data message: opcode (TEXT or BINARY), data, len */
  WSH_EV_PING,    /* data, len (<= 125) */
  WSH_EV_PONG,    /* data, len (<= 125) */
  WSH_EV_CLOSE,   /* peer's close: close_code (1005 if the payload was empty),
                     data/len = reason, already validated as UTF-8 */
  WSH_EV_ERROR    /* protocol violation: close_code (1002, 1007 or 1009; 1011
                     when out of memory) and error (a static string saying
                     what was wrong) */
} wsh_ev_type;

typedef struct wsh_event {
  wsh_ev_type type;
  uint8_t opcode;      /* for WSH_EV_MESSAGE: 0x1 text or 0x2 binary */
  const uint8_t *data; /* see wsh_decode for how long it stays valid */
  size_t len;
  uint16_t close_code; /* WSH_EV_CLOSE and WSH_EV_ERROR */
  const char *error;   /* WSH_EV_ERROR only */
  bool compressed;     /* WSH_EV_MESSAGE: its first frame had RSV1 set
                          (permessage-deflate): data is still compressed,
                          and text is not yet checked as UTF-8 */
  bool sunk;           /* WSH_EV_MESSAGE, compressed: its payload went to
                          the decoder's sink (data NULL, len 0); this is its
                          end */
} wsh_event;

struct wsh_decoder;
/* Takes n (> 0) unmasked payload bytes of a compressed message (opcode
 * 0x1 text or 0x2 binary) as they arrive (wsh_decoder_set_sink). Returns 0,
 * or a close code with *why (a static string) to fail the connection with. */
typedef uint16_t (*wsh_decoder_sink)(struct wsh_decoder *d, uint8_t opcode,
                                     const uint8_t *p, size_t n,
                                     const char **why);

/* Decoder state. Fields are private to frame.c; it is a plain struct so that
 * a connection can embed it without another allocation. */
typedef struct wsh_decoder {
  uint64_t max_message; /* 0: no limit */
  /* current frame */
  uint8_t hdr[14];
  uint8_t hdr_len;
  uint8_t hdr_need;
  uint8_t fin;
  uint8_t opcode;
  uint8_t mask[4];
  uint64_t remaining;   /* payload bytes of the current frame not yet seen */
  uint64_t payload_off; /* payload bytes of the current frame already seen */
  /* current data message */
  uint8_t msg_opcode; /* 0: no message open */
  uint8_t failed;     /* an error was reported; the decoder is dead */
  uint8_t delivered;  /* the buffer held a delivered message; reset it */
  wsh_utf8 utf8;
  uint8_t *buf; /* reassembly buffer (owned) */
  size_t buf_len;
  size_t buf_cap;
  /* current control frame, when it arrives in pieces (allocated then) */
  uint8_t *ctl;
  uint8_t ctl_len;
  /* the error, repeated on later calls */
  uint16_t err_code;
  const char *err_why;
  /* permessage-deflate (wsh_decoder_allow_rsv1) */
  uint8_t rsv1_ok;         /* RSV1 may mark a message compressed */
  uint8_t rsv1;            /* the current frame's RSV1 */
  uint8_t msg_compressed;  /* the open message is compressed */
  uint64_t max_compressed; /* limit on a compressed message's bytes */
  wsh_decoder_sink sink;   /* NULL: compressed messages are reassembled */
  uint64_t sunk_len;       /* bytes of the open message given to the sink */
} wsh_decoder;

/* Sets up a decoder for client-to-server frames (masking required, no
 * extensions until wsh_decoder_allow_rsv1). max_message: the largest message
 * accepted (0: no limit, for tests only: a peer could then grow the buffer
 * without bound). */
void wsh_decoder_init(wsh_decoder *d, uint64_t max_message);

/*
 * Once permessage-deflate is negotiated: RSV1 on the first frame of a text
 * or binary message marks it compressed (RFC 7692 §6); RSV1 on a
 * continuation or control frame stays a 1002, as do RSV2 and RSV3. A
 * compressed message is reassembled (or given to a sink: see
 * wsh_decoder_set_sink) and delivered as is, with ev->compressed set: its
 * text is not UTF-8-checked here (the caller checks it as it inflates),
 * and max_message bounds it with a margin,
 * max_message + max_message / 8 + 64 bytes, because incompressible data
 * compressed anyway comes out a little longer (stored blocks cost 5 bytes
 * each); the caller applies max_message itself to the inflated size.
 * Uncompressed messages keep every rule as before. Call it before decoding.
 */
void wsh_decoder_allow_rsv1(wsh_decoder *d);

/*
 * After wsh_decoder_allow_rsv1: the payload of a compressed message that is
 * not handed over whole (fragmented, or not all in one call's input) goes
 * to sink as it arrives, unmasked, instead of into the reassembly buffer,
 * so the caller can inflate it frame by frame (and its bytes still count
 * against the margin above). When the message ends, wsh_decode emits
 * WSH_EV_MESSAGE with compressed and sunk set and no data. A message that
 * lies whole in one call's input is delivered as before (ev->data, sunk
 * false). A sink's close code fails the decoder as any error does (the
 * bytes consumed end at the piece it refused).
 */
void wsh_decoder_set_sink(wsh_decoder *d, wsh_decoder_sink sink);

/* Frees the reassembly buffers. The decoder may be re-initialised after. */
void wsh_decoder_free(wsh_decoder *d);

/* Releases the reassembly buffers if no message is being assembled and no
 * control frame is half read (for idle connections). Ends the life of the
 * data of a message just delivered. */
void wsh_decoder_trim(wsh_decoder *d);

/* For a decoder that serves several streams in turn, one at a time and
 * each between two frames: releases what a delivered message left
 * (wsh_decoder_trim), then says whether d is between frames holding
 * nothing (no message or frame in progress, no buffer, no error), so that
 * it may be rebound to another stream. */
static inline bool wsh_decoder_release(wsh_decoder *d) {
  if (d->buf || d->ctl || d->delivered)
    wsh_decoder_trim(d);
  return !d->msg_opcode && !d->hdr_len && !d->failed && !d->buf && !d->ctl;
}

/* Sets up a decoder for which wsh_decoder_release said true (or fresh from
 * wsh_decoder_init) for another stream, as wsh_decoder_init(d, max_message)
 * would: cheaper, since what init clears is already clear. */
static inline void wsh_decoder_rebind(wsh_decoder *d, uint64_t max_message) {
  d->max_message = max_message;
  d->rsv1_ok = 0;
  d->max_compressed = 0;
  d->sink = NULL;
}

/*
 * Decodes client frames from in[0..len). The payload is unmasked in place, so
 * `in` is modified. Stops right after the first complete event and returns
 * the number of bytes consumed; ev->type is WSH_EV_NONE when all `len` bytes
 * were consumed without completing an event.
 *
 * ev->data points either into `in` (a single-frame message or control frame
 * wholly inside this call's input is handed over without a copy) or into the
 * decoder's own buffers. Either way it is valid until the next call to
 * wsh_decode/wsh_decoder_trim/wsh_decoder_free and as long as the caller
 * keeps the consumed bytes of `in` alive.
 *
 * On an error, the bytes consumed end at the byte that decided it: a header
 * byte for header rules; the whole header for the 64-bit length rule and
 * max_message (none of the refused payload is taken); the first bad byte of
 * text; the frame's last byte for a bad close frame or text ending inside a
 * code point. The decoder keeps decoding after a WSH_EV_CLOSE; the caller
 * stops feeding it what it must ignore.
 *
 * Checks every rule of RFC 6455 a server must: masking (1002), reserved bits
 * (1002), reserved opcodes (1002), control frames at most 125 bytes and never
 * fragmented (1002), continuation without an open message and a new data
 * frame while one is open (1002), 64-bit lengths with the high bit clear
 * (1002), UTF-8 of text messages checked as bytes arrive, failing at the
 * first invalid byte even across fragments (1007), close payloads (length 1,
 * invalid code: 1002; reason not UTF-8: 1007), and max_message as soon as a
 * frame header shows the message would exceed it (1009). After WSH_EV_ERROR
 * the decoder is dead: later calls consume nothing and report the same error.
 */
size_t wsh_decode(wsh_decoder *d, uint8_t *in, size_t len, wsh_event *ev);

/*
 * Reading a big frame's payload straight into the reassembly buffer,
 * without the copy from the caller's read buffer. While a text or binary
 * frame that is being reassembled (not one handed over whole, not a
 * compressed one going to a sink) has at least `min` payload bytes to
 * come, wsh_decoder_room reserves room for up to `max` of them (no more
 * than the frame has left, so nothing of the next frame lands there) and
 * returns how many, with *at where they go; else 0 (feed wsh_decode).
 * Out of memory is 0 too: wsh_decode then reports it.
 */
size_t wsh_decoder_room(wsh_decoder *d, size_t min, size_t max, uint8_t **at);

/* Takes n (> 0, at most what wsh_decoder_room gave) payload bytes read to
 * *at, as wsh_decode would have taken them: unmasked, text checked, the
 * frame ended (ev: the message's event, an error, or WSH_EV_NONE). Returns
 * the bytes consumed as wsh_decode counts them (n, or up to the first bad
 * byte of text); after an error the rest is the dead decoder's. */
size_t wsh_decode_in_place(wsh_decoder *d, size_t n, wsh_event *ev);

/* Writes a server frame header (unmasked; FIN set when fin is true) for a
 * payload of `len` bytes into out[WSH_MAX_HEADER]. Returns its length
 * (2, 4 or 10). */
size_t wsh_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len);

/* wsh_frame_header with RSV1 set: the first frame of a compressed message
 * (permessage-deflate). */
size_t wsh_frame_header_rsv1(uint8_t *out, bool fin, uint8_t opcode,
                             uint64_t len);

/* Writes a close payload: the code, then `reason` cut to at most 123 bytes
 * on a UTF-8 code point boundary. out must hold WSH_MAX_CONTROL bytes.
 * Returns its length. */
size_t wsh_close_payload(uint8_t *out, uint16_t code, const char *reason,
                         size_t reason_len);

/* True if a peer may send this code in a close frame (RFC 6455 §7.4):
 * 1000-1003, 1007-1011, 1012-1014 and 3000-4999. */
bool wsh_close_code_valid(uint16_t code);

/* XORs data[0..len) with the masking key, as if data started at byte
 * `offset` of the payload. Word at a time. Used by the decoder, and by tests
 * and benchmarks to build client frames. */
void wsh_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset);

#endif
