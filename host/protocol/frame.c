/*
 * frame.c - the RFC 6455 codec. The decoder turns client bytes into events:
 * it accumulates each frame header, checks it as soon as the byte that
 * decides a rule arrives, unmasks payload in place, validates text as it
 * arrives and reassembles fragmented messages; a message or control frame
 * that lies whole in one call's input is handed over without a copy, and
 * the rest of a big frame can be read straight into the reassembly buffer
 * (wsh_decoder_room, wsh_decode_in_place) instead of copied there. The
 * encoder side writes server frame headers and close payloads. No I/O.
 * With permessage-deflate negotiated (wsh_decoder_allow_rsv1), RSV1 on a
 * message's first frame marks it compressed: it is delivered flagged, its
 * text unchecked until inflated, under a slightly larger size limit.
 *
 * On WSH_EV_ERROR the bytes reported consumed end with the byte that decided
 * it: the header byte for header rules (the whole header for the 64-bit
 * length and max_message rules, so no payload of a too-big frame is taken),
 * the first bad byte for text, the last byte of a bad close frame or of a
 * text message that ends inside a code point. A control frame whose 7-bit
 * length is 126 or 127 is refused at once, even if the extended length it
 * announces is small. Running out of memory while reassembling is reported
 * with close code 1011 (an internal error, not the peer's fault).
 */
#include "protocol/frame.h"

#include <stdlib.h>
#include <string.h>

#include "base/copy.h"

#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

#define BUF_MIN 4096         /* first reassembly buffer */
#define BUF_KEEP (64 * 1024) /* a larger one is freed once delivered */

static bool is_control(uint8_t opcode) {
  return opcode & 0x8;
}

/* The error that killed the decoder, as an event. */
static void repeat_error(const wsh_decoder *d, wsh_event *ev) {
  memset(ev, 0, sizeof *ev);
  ev->type = WSH_EV_ERROR;
  ev->close_code = d->err_code;
  ev->error = d->err_why;
}

/* Reports an error and kills the decoder. Returns `consumed`. */
static size_t fail(wsh_decoder *d, wsh_event *ev, uint16_t code,
                   const char *why, size_t consumed) {
  d->err_code = code;
  d->err_why = why;
  d->failed = 1;
  repeat_error(d, ev);
  return consumed;
}

static void buf_release(wsh_decoder *d) {
  free(d->buf);
  d->buf = NULL;
  d->buf_cap = 0;
  d->buf_len = 0;
}

/* Forgets the message delivered by the previous call. */
static void buf_reset(wsh_decoder *d) {
  d->delivered = 0;
  d->buf_len = 0;
  if (d->buf_cap > BUF_KEEP)
    buf_release(d);
}

/* Makes room for n more bytes in the reassembly buffer. */
static bool buf_reserve(wsh_decoder *d, size_t n) {
  size_t need = d->buf_len + n;
  size_t cap = d->buf_cap ? d->buf_cap : BUF_MIN;
  uint8_t *nbuf;

  if (need < n)
    return false;
  if (need <= d->buf_cap)
    return true;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  nbuf = realloc(d->buf, cap);
  if (!nbuf)
    return false;
  d->buf = nbuf;
  d->buf_cap = cap;
  return true;
}

void wsh_decoder_init(wsh_decoder *d, uint64_t max_message) {
  memset(d, 0, sizeof *d);
  d->max_message = max_message;
  d->hdr_need = 2;
  d->utf8 = (wsh_utf8)WSH_UTF8_INIT;
}

void wsh_decoder_allow_rsv1(wsh_decoder *d) {
  uint64_t m = d->max_message, slack = m / 8 + 64;

  d->rsv1_ok = 1;
  d->max_compressed = !m ? 0 : m > UINT64_MAX - slack ? UINT64_MAX : m + slack;
}

void wsh_decoder_set_sink(wsh_decoder *d, wsh_decoder_sink sink) {
  d->sink = sink;
}

void wsh_decoder_free(wsh_decoder *d) {
  buf_release(d);
  free(d->ctl);
  d->ctl = NULL;
  d->delivered = 0;
}

void wsh_decoder_trim(wsh_decoder *d) {
  if (d->msg_opcode)
    return;
  buf_release(d);
  d->delivered = 0;
  if (d->ctl && !(d->hdr_len == d->hdr_need && is_control(d->opcode) &&
                  d->remaining > 0)) {
    free(d->ctl);
    d->ctl = NULL;
  }
}

/* The first header byte: FIN, RSV1-3 and the opcode, checked against the
 * message in progress. Returns what is wrong, or NULL. */
static const char *check_byte0(wsh_decoder *d, uint8_t b) {
  d->fin = b >> 7;
  d->opcode = b & 0x0F;
  d->rsv1 = (b >> 6) & 1;
  if (b & (d->rsv1_ok ? 0x30 : 0x70))
    return "reserved bits set";
  if (d->rsv1 && (d->opcode == OP_CONT || is_control(d->opcode)))
    return "RSV1 on a continuation or control frame";
  switch (d->opcode) {
  case OP_CONT:
    return d->msg_opcode ? NULL : "continuation frame without a message";
  case OP_TEXT:
  case OP_BINARY:
    return d->msg_opcode ? "data frame inside a fragmented message" : NULL;
  case OP_CLOSE:
  case OP_PING:
  case OP_PONG:
    return d->fin ? NULL : "fragmented control frame";
  default:
    return "reserved opcode";
  }
}

/* The second header byte: MASK and the 7-bit length, which fix the header's
 * full length. Returns what is wrong, or NULL. */
static const char *check_byte1(wsh_decoder *d, uint8_t b) {
  uint8_t len7 = b & 0x7F;

  if (!(b & 0x80))
    return "unmasked client frame";
  if (is_control(d->opcode) && len7 > WSH_MAX_CONTROL)
    return "control frame longer than 125 bytes";
  d->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
  return NULL;
}

/* The whole header is in: takes the length and key, opens a message for a
 * text or binary frame and applies max_message. Returns what is wrong (and
 * sets *code), or NULL. */
static const char *header_done(wsh_decoder *d, uint16_t *code) {
  size_t ext = d->hdr_need - 6;
  uint64_t n = ext ? 0 : d->hdr[1] & 0x7F;

  for (size_t i = 0; i < ext; i++)
    n = n << 8 | d->hdr[2 + i];
  memcpy(d->mask, d->hdr + 2 + ext, 4);
  if (n >> 63)
    return "64-bit length with the high bit set";
  d->remaining = n;
  d->payload_off = 0;
  d->ctl_len = 0;
  if (is_control(d->opcode))
    return NULL;
  if (d->opcode != OP_CONT) {
    d->msg_opcode = d->opcode;
    d->msg_compressed = d->rsv1;
    d->buf_len = 0;
    d->sunk_len = 0;
    d->utf8 = (wsh_utf8)WSH_UTF8_INIT;
  }
  if (d->msg_compressed ? d->max_compressed &&
                              d->buf_len + d->sunk_len + n > d->max_compressed
                        : d->max_message && d->buf_len + n > d->max_message) {
    *code = WSH_CLOSE_TOO_BIG;
    return "message too big";
  }
  return NULL;
}

/* Takes header bytes until the header is complete, checking each as it
 * arrives. Returns the bytes consumed. */
static size_t header_step(wsh_decoder *d, const uint8_t *p, size_t avail,
                          wsh_event *ev) {
  const char *why = NULL;
  uint16_t code = WSH_CLOSE_PROTOCOL;
  size_t i = 0;

  while (!why && i < avail && d->hdr_len < d->hdr_need) {
    uint8_t b = p[i++];

    d->hdr[d->hdr_len++] = b;
    if (d->hdr_len == 1)
      why = check_byte0(d, b);
    else if (d->hdr_len == 2)
      why = check_byte1(d, b);
  }
  if (!why && d->hdr_len == d->hdr_need)
    why = header_done(d, &code);
  return why ? fail(d, ev, code, why, i) : i;
}

/* A close frame's payload: empty, or a valid code and a UTF-8 reason. */
static void close_event(wsh_decoder *d, const uint8_t *data, size_t len,
                        wsh_event *ev) {
  uint16_t code;

  if (len == 0) {
    ev->type = WSH_EV_CLOSE;
    ev->close_code = WSH_CLOSE_NO_STATUS;
    ev->data = data;
    return;
  }
  if (len == 1) {
    fail(d, ev, WSH_CLOSE_PROTOCOL, "close payload of one byte", 0);
    return;
  }
  code = (uint16_t)(data[0] << 8 | data[1]);
  if (!wsh_close_code_valid(code)) {
    fail(d, ev, WSH_CLOSE_PROTOCOL, "invalid close code", 0);
    return;
  }
  if (!wsh_utf8_valid(data + 2, len - 2)) {
    fail(d, ev, WSH_CLOSE_INVALID_DATA, "close reason is not UTF-8", 0);
    return;
  }
  ev->type = WSH_EV_CLOSE;
  ev->close_code = code;
  ev->data = data + 2;
  ev->len = len - 2;
}

/* The last payload byte of a frame is in (data/len: its whole payload, or
 * the whole message). Emits the frame's or message's event, if any. */
static void frame_end(wsh_decoder *d, const uint8_t *data, size_t len,
                      bool whole, wsh_event *ev) {
  d->hdr_len = 0;
  d->hdr_need = 2;
  if (d->opcode == OP_CLOSE) {
    ev->opcode = OP_CLOSE;
    close_event(d, data, len, ev);
    return;
  }
  if (!is_control(d->opcode) && !d->fin)
    return;
  if (d->msg_opcode == OP_TEXT && !d->msg_compressed &&
      !is_control(d->opcode) && !wsh_utf8_complete(&d->utf8)) {
    fail(d, ev, WSH_CLOSE_INVALID_DATA, "text ends inside a UTF-8 sequence", 0);
    return;
  }
  ev->data = data;
  ev->len = len;
  if (is_control(d->opcode)) {
    ev->type = d->opcode == OP_PING ? WSH_EV_PING : WSH_EV_PONG;
    ev->opcode = d->opcode;
    return;
  }
  ev->type = WSH_EV_MESSAGE;
  ev->opcode = d->msg_opcode;
  ev->compressed = d->msg_compressed;
  if (!whole && d->msg_compressed && d->sink) {
    ev->sunk = true;
    ev->data = NULL;
  }
  d->msg_opcode = 0;
  d->delivered = !whole;
}

/* Keeps n unmasked payload bytes of a frame that is not handed over whole. */
static bool store(wsh_decoder *d, const uint8_t *p, size_t n) {
  if (n == 0)
    return true;
  if (is_control(d->opcode)) {
    if (!d->ctl && !(d->ctl = malloc(WSH_MAX_CONTROL)))
      return false;
    memcpy(d->ctl + d->ctl_len, p, n);
    d->ctl_len += (uint8_t)n;
    return true;
  }
  if (!buf_reserve(d, n))
    return false;
  wsh_copy(d->buf + d->buf_len, p, n);
  d->buf_len += n;
  return true;
}

/* True if the current frame is a whole message or control frame that lies
 * entirely in the `avail` bytes at hand, so it can be handed over in place. */
static bool zero_copy(const wsh_decoder *d, size_t avail) {
  return d->payload_off == 0 && d->remaining <= avail &&
         (is_control(d->opcode) || (d->opcode != OP_CONT && d->fin));
}

/* Unmasks n payload bytes of the current frame in place and checks them
 * if they are uncompressed text. Returns 0, or on bad UTF-8 the bytes
 * consumed as the failure counts them (ev set, the decoder dead). Inline:
 * payload_step is every message's path (out of line it cost perf_budget
 * about 10 instructions per echo). */
static inline size_t unmask_checked(wsh_decoder *d, uint8_t *p, size_t n,
                                    wsh_event *ev) {
  wsh_mask(p, n, d->mask, d->payload_off);
  if (!is_control(d->opcode) && d->msg_opcode == OP_TEXT &&
      !d->msg_compressed) {
    size_t ok = wsh_utf8_feed(&d->utf8, p, n);

    if (ok < n)
      return fail(d, ev, WSH_CLOSE_INVALID_DATA, "invalid UTF-8 in text",
                  ok + 1);
  }
  return 0;
}

/* Takes payload bytes of the current frame: unmasks them in place, checks
 * text, keeps them, and ends the frame when its last byte is in. Returns the
 * bytes consumed. */
static size_t payload_step(wsh_decoder *d, uint8_t *p, size_t avail,
                           wsh_event *ev) {
  size_t n = d->remaining < avail ? (size_t)d->remaining : avail;
  bool whole = zero_copy(d, avail);
  size_t bad = unmask_checked(d, p, n, ev);

  if (bad)
    return bad;
  if (!whole && d->sink && d->msg_compressed && !is_control(d->opcode)) {
    const char *why = "refused";
    uint16_t code = n ? d->sink(d, d->msg_opcode, p, n, &why) : 0;

    if (code)
      return fail(d, ev, code, why, n);
    d->sunk_len += n;
  } else if (!whole && !store(d, p, n)) {
    return fail(d, ev, WSH_CLOSE_INTERNAL, "out of memory", 0);
  }
  d->payload_off += n;
  d->remaining -= n;
  if (d->remaining > 0)
    return n;
  if (whole)
    frame_end(d, p, n, true, ev);
  else if (is_control(d->opcode))
    frame_end(d, d->ctl, d->ctl_len, false, ev);
  else
    frame_end(d, d->buf, d->buf_len, false, ev);
  return n;
}

size_t wsh_decode(wsh_decoder *d, uint8_t *in, size_t len, wsh_event *ev) {
  size_t off = 0;

  memset(ev, 0, sizeof *ev);
  if (d->failed) {
    repeat_error(d, ev);
    return 0;
  }
  if (d->delivered)
    buf_reset(d);
  while (ev->type == WSH_EV_NONE) {
    if (d->hdr_len < d->hdr_need) {
      if (off == len)
        break;
      off += header_step(d, in + off, len - off, ev);
    } else {
      if (d->remaining > 0 && off == len)
        break;
      off += payload_step(d, in + off, len - off, ev);
    }
  }
  return off;
}

size_t wsh_decoder_room(wsh_decoder *d, size_t min, size_t max, uint8_t **at) {
  if (d->failed || d->delivered || d->hdr_len < d->hdr_need ||
      d->remaining < min || d->remaining == 0 || is_control(d->opcode) ||
      (d->msg_compressed && d->sink))
    return 0;
  size_t n = d->remaining < max ? (size_t)d->remaining : max;
  if (!buf_reserve(d, n))
    return 0;
  *at = d->buf + d->buf_len;
  return n;
}

size_t wsh_decode_in_place(wsh_decoder *d, size_t n, wsh_event *ev) {
  size_t bad;

  memset(ev, 0, sizeof *ev);
  if ((bad = unmask_checked(d, d->buf + d->buf_len, n, ev)))
    return bad;
  d->buf_len += n;
  d->payload_off += n;
  d->remaining -= n;
  if (d->remaining == 0)
    frame_end(d, d->buf, d->buf_len, false, ev);
  return n;
}

size_t wsh_frame_header(uint8_t *out, bool fin, uint8_t opcode, uint64_t len) {
  size_t ext;

  out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
  if (len <= WSH_MAX_CONTROL) {
    out[1] = (uint8_t)len;
    return 2;
  }
  ext = len <= 0xFFFF ? 2 : 8;
  out[1] = ext == 2 ? 126 : 127;
  for (size_t i = 0; i < ext; i++)
    out[2 + i] = (uint8_t)(len >> (8 * (ext - 1 - i)));
  return 2 + ext;
}

size_t wsh_frame_header_rsv1(uint8_t *out, bool fin, uint8_t opcode,
                             uint64_t len) {
  size_t n = wsh_frame_header(out, fin, opcode, len);

  out[0] |= 0x40;
  return n;
}

size_t wsh_close_payload(uint8_t *out, uint16_t code, const char *reason,
                         size_t reason_len) {
  size_t n =
      reason_len < WSH_MAX_CONTROL - 2 ? reason_len : WSH_MAX_CONTROL - 2;

  /* Cutting before a continuation byte would split a code point. */
  if (n < reason_len)
    while (n > 0 && ((uint8_t)reason[n] & 0xC0) == 0x80)
      n--;
  out[0] = (uint8_t)(code >> 8);
  out[1] = (uint8_t)code;
  if (n)
    memcpy(out + 2, reason, n);
  return 2 + n;
}

bool wsh_close_code_valid(uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

/* XORs byte by byte; returns the key index for the byte after. */
static size_t mask_bytes(uint8_t *data, size_t len, const uint8_t key[4],
                         size_t k) {
  for (size_t i = 0; i < len; i++, k = (k + 1) & 3)
    data[i] ^= key[k];
  return k;
}

/* XORs the whole words of data[0..len) with k64, two at a time while it can
 * (which gcc turns into faster code than a one-word loop). Returns the
 * number of bytes done. */
static size_t mask_words(uint8_t *data, size_t len, uint64_t k64) {
  uint64_t w0, w1;
  size_t i = 0;

  for (; len - i >= 16; i += 16) {
    memcpy(&w0, data + i, 8);
    memcpy(&w1, data + i + 8, 8);
    w0 ^= k64;
    w1 ^= k64;
    memcpy(data + i, &w0, 8);
    memcpy(data + i + 8, &w1, 8);
  }
  if (len - i >= 8) {
    memcpy(&w0, data + i, 8);
    w0 ^= k64;
    memcpy(data + i, &w0, 8);
    i += 8;
  }
  return i;
}

void wsh_mask(uint8_t *data, size_t len, const uint8_t key[4],
              uint64_t offset) {
  size_t head = (8 - ((uintptr_t)data & 7)) & 7;
  size_t k = offset & 3, done;
  uint8_t kb[8];
  uint64_t k64;

  if (len == 0)
    return;
  if (head > len)
    head = len;
  k = mask_bytes(data, head, key, k);
  for (size_t j = 0; j < 8; j++)
    kb[j] = key[(k + j) & 3]; /* the key as it lines up from here on */
  memcpy(&k64, kb, 8);
  done = head + mask_words(data + head, len - head, k64);
  mask_bytes(data + done, len - done, key, k);
}
