/*
 * fuzz_frame.c - the RFC 6455 decoder (host/protocol/frame.c). The input is two
 * control bytes, then the client's bytes:
 *
 *   byte 0  seeds the chunk sizes, trims and masking keys; its low 3 bits k
 *           bound a chunk to 4^k bytes (1 to 16384)
 *   byte 1  max_message: below C0, 1 MiB; else (byte - C0) * 4 bytes, where
 *           0 means no limit
 *
 * The bytes are decoded whole, one byte at a time (also with
 * wsh_decoder_trim after every call) and in chunks of random sizes (with
 * trims and empty calls thrown in; and again with the rest of a frame's
 * payload read straight into the decoder's buffer where it offers room,
 * wsh_decoder_room and wsh_decode_in_place), each chunk in a malloc'd block of
 * exactly its size that is freed once consumed, so that reading past a
 * chunk or keeping a pointer into one trips ASan. Every way
 * must give the same events (type, opcode, close code, error, data) ending
 * at the same stream offsets, and the same as a plain reference decoder
 * written here from RFC 6455 and frame.h. Each call must consume at most
 * what it was given, point ev->data only into the bytes it consumed or the
 * decoder's own buffers, and stay dead after an error. Every message, ping,
 * pong and close is then encoded again (wsh_frame_header and a masked
 * payload; a message also as two fragments around a ping) and must decode
 * to itself.
 */
#include <stdbool.h>

#include "protocol/frame.h"
#include "fuzz.h"

#define MAX_MESSAGE (1024 * 1024)

#define OP_CONT 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

/* ------------------------------------------------------------------------ */
/* Events, copied out of the decoder                                         */
/* ------------------------------------------------------------------------ */

typedef struct rec {
  wsh_ev_type type;
  uint8_t opcode;
  uint16_t close_code;
  const char *error; /* NULL from the reference decoder: not compared */
  uint8_t *data;     /* owned copy */
  size_t len;
  size_t end; /* stream offset just past the bytes consumed */
} rec;

typedef struct recs {
  rec *v;
  size_t n, cap;
} recs;

static void recs_add(recs *r, const wsh_event *ev, size_t end) {
  rec *e;

  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->v = realloc(r->v, r->cap * sizeof *r->v);
    FUZZ_CHECK(r->v != NULL, "out of memory");
  }
  e = &r->v[r->n++];
  e->type = ev->type;
  e->opcode = ev->opcode;
  e->close_code = ev->close_code;
  e->error = ev->error;
  e->data = fuzz_dup(ev->data, ev->len);
  e->len = ev->len;
  e->end = end;
}

static void recs_free(recs *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->v[i].data);
  free(r->v);
  memset(r, 0, sizeof *r);
}

static void recs_dump(const char *name, const recs *r) {
  fprintf(stderr, "%s: %zu events\n", name, r->n);
  for (size_t i = 0; i < r->n; i++) {
    const rec *e = &r->v[i];
    fprintf(stderr, "  type %d opcode %u code %u len %zu end %zu%s%s\n",
            (int)e->type, e->opcode, e->close_code, e->len, e->end,
            e->error ? " error: " : "", e->error ? e->error : "");
  }
}

static bool rec_equal(const rec *a, const rec *b) {
  if (a->type != b->type || a->opcode != b->opcode ||
      a->close_code != b->close_code || a->len != b->len || a->end != b->end)
    return false;
  if (a->len && memcmp(a->data, b->data, a->len) != 0)
    return false;
  return !a->error || !b->error || strcmp(a->error, b->error) == 0;
}

static void expect_same(const recs *want, const recs *got, const char *what) {
  bool same = want->n == got->n;

  for (size_t i = 0; same && i < want->n; i++)
    same = rec_equal(&want->v[i], &got->v[i]);
  if (!same) {
    recs_dump("expected", want);
    recs_dump(what, got);
  }
  FUZZ_CHECK(same, what);
}

/* ------------------------------------------------------------------------ */
/* Decoding with wsh_decode                                                  */
/* ------------------------------------------------------------------------ */

typedef enum mode { WHOLE, BYTES, CHUNKS, DIRECT } mode;

typedef struct run {
  mode mode;
  uint64_t max_message;
  uint32_t rng;
  size_t max_chunk;
  unsigned trim; /* trim after an event or a chunk: 0 never, 1 always, else
                    at random one time in `trim` */
} run;

static bool trim_now(run *r) {
  return r->trim == 1 || (r->trim > 1 && fuzz_rand(&r->rng) % r->trim == 0);
}

/* RFC 6455 §7.4 and frame.h: the codes a peer may send. */
static bool close_code_ok(uint16_t c) {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) ||
         (c >= 3000 && c <= 4999);
}

static bool within(const uint8_t *p, size_t len, const uint8_t *base,
                   size_t size) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;

  return base && a >= b && a - b <= size && len <= size - (a - b);
}

/* One event from a call that consumed in[0..used). */
static void check_event(const wsh_decoder *d, const wsh_event *ev,
                        const uint8_t *in, size_t used, uint64_t max) {
  FUZZ_CHECK(used > 0, "an event from no bytes");
  if (ev->len)
    FUZZ_CHECK(within(ev->data, ev->len, in, used) ||
                   within(ev->data, ev->len, d->buf, d->buf_len) ||
                   within(ev->data, ev->len, d->ctl, d->ctl_len),
               "ev->data outside the bytes consumed and the decoder");
  switch (ev->type) {
  case WSH_EV_MESSAGE:
    FUZZ_CHECK(ev->opcode == OP_TEXT || ev->opcode == OP_BINARY, "opcode");
    FUZZ_CHECK(!max || ev->len <= max, "message over max_message");
    FUZZ_CHECK(ev->opcode != OP_TEXT || wsh_utf8_valid(ev->data, ev->len),
               "text message not UTF-8");
    break;
  case WSH_EV_PING:
  case WSH_EV_PONG:
    FUZZ_CHECK(ev->opcode == (ev->type == WSH_EV_PING ? OP_PING : OP_PONG),
               "control opcode");
    FUZZ_CHECK(ev->len <= WSH_MAX_CONTROL, "control payload over 125");
    break;
  case WSH_EV_CLOSE:
    FUZZ_CHECK(ev->close_code == WSH_CLOSE_NO_STATUS
                   ? ev->len == 0
                   : close_code_ok(ev->close_code),
               "close code");
    FUZZ_CHECK(ev->len <= WSH_MAX_CONTROL - 2, "close reason over 123");
    FUZZ_CHECK(wsh_utf8_valid(ev->data, ev->len), "close reason not UTF-8");
    break;
  case WSH_EV_ERROR:
    FUZZ_CHECK(ev->error != NULL, "error without a reason");
    FUZZ_CHECK(ev->close_code == WSH_CLOSE_PROTOCOL ||
                   ev->close_code == WSH_CLOSE_INVALID_DATA ||
                   (ev->close_code == WSH_CLOSE_TOO_BIG && max),
               "error close code");
    break;
  default:
    FUZZ_CHECK(false, "unknown event type");
  }
}

/* After an error, later calls consume nothing, touch nothing and repeat it. */
static void check_dead(wsh_decoder *d, const wsh_event *err, uint8_t *rest,
                       size_t len) {
  uint8_t *before = fuzz_dup(rest, len);

  for (int i = 0; i < 2; i++) {
    wsh_event ev;
    size_t used = wsh_decode(d, rest, len, &ev);

    FUZZ_CHECK(used == 0, "a dead decoder consumed bytes");
    FUZZ_CHECK(ev.type == WSH_EV_ERROR && ev.close_code == err->close_code &&
                   ev.error == err->error,
               "a dead decoder reported something else");
  }
  FUZZ_CHECK(!len || memcmp(before, rest, len) == 0,
             "a dead decoder changed its input");
  free(before);
}

static size_t chunk_len(run *r, size_t left) {
  size_t n = r->mode == WHOLE   ? left
             : r->mode == BYTES ? 1
                                : 1 + fuzz_rand(&r->rng) % r->max_chunk;

  return n < left ? n : left;
}

/* Feeds one chunk; base is its stream offset. Returns true once dead. */
static bool feed_chunk(wsh_decoder *d, uint8_t *chunk, size_t len, size_t base,
                       run *r, recs *out) {
  size_t off = 0;
  wsh_event ev;

  while (off < len) {
    size_t used = wsh_decode(d, chunk + off, len - off, &ev);

    FUZZ_CHECK(used <= len - off, "consumed more than given");
    if (ev.type == WSH_EV_NONE) {
      FUZZ_CHECK(used == len - off, "no event, yet bytes left over");
      break;
    }
    check_event(d, &ev, chunk + off, used, r->max_message);
    recs_add(out, &ev, base + off + used);
    off += used;
    if (ev.type == WSH_EV_ERROR) {
      check_dead(d, &ev, chunk + off, len - off);
      return true;
    }
    if (trim_now(r))
      wsh_decoder_trim(d);
  }
  if (trim_now(r)) /* as an idle connection does, even mid-frame */
    wsh_decoder_trim(d);
  if (r->mode == CHUNKS && fuzz_rand(&r->rng) % 4 == 0) {
    size_t used = wsh_decode(d, chunk + len, 0, &ev);
    FUZZ_CHECK(used == 0 && ev.type == WSH_EV_NONE, "an empty call");
  }
  return false;
}

/* DIRECT: payload read straight into the reassembly buffer, as the
 * connection reads the rest of a big frame (wsh_decoder_room, at least a
 * random 0-63 bytes to come, at most the chunk); *n is then what it took,
 * 0 if it offered no room. Returns true once dead. */
static bool feed_direct(wsh_decoder *d, const uint8_t *stream, size_t len,
                        size_t start, size_t *n, run *r, recs *out) {
  uint8_t *at = NULL;
  size_t room = wsh_decoder_room(d, fuzz_rand(&r->rng) % 64, *n, &at), used;
  wsh_event ev;

  if (!room) {
    *n = 0;
    return false;
  }
  FUZZ_CHECK(room <= *n && at != NULL, "room over the asked maximum");
  *n = room;
  memcpy(at, stream + start, room);
  used = wsh_decode_in_place(d, room, &ev);
  FUZZ_CHECK(used <= room, "consumed more than read");
  if (ev.type == WSH_EV_NONE) {
    FUZZ_CHECK(used == room, "no event, yet bytes left over");
  } else {
    check_event(d, &ev, at, used, r->max_message);
    recs_add(out, &ev, start + used);
    if (ev.type == WSH_EV_ERROR) {
      uint8_t *rest = fuzz_dup(stream + start + used, len - start - used);
      check_dead(d, &ev, rest, len - start - used);
      free(rest);
      return true;
    }
  }
  if (trim_now(r))
    wsh_decoder_trim(d);
  return false;
}

static void decode(const uint8_t *stream, size_t len, run r, recs *out) {
  wsh_decoder d;
  bool dead = false;

  wsh_decoder_init(&d, r.max_message);
  for (size_t start = 0, n; start < len && !dead; start += n) {
    uint8_t *chunk;
    size_t took;

    n = chunk_len(&r, len - start);
    if (r.mode == DIRECT) {
      took = n;
      dead = feed_direct(&d, stream, len, start, &took, &r, out);
      if (took) {
        n = took;
        continue;
      }
    }
    chunk = fuzz_dup(stream + start, n);
    dead = feed_chunk(&d, chunk, n, start, &r, out);
    free(chunk);
  }
  wsh_decoder_free(&d);
}

/* ------------------------------------------------------------------------ */
/* A reference decoder: whole input, byte-wise, from the RFC and frame.h     */
/* ------------------------------------------------------------------------ */

typedef struct ref {
  const uint8_t *s;
  size_t len;
  uint64_t max;
  recs *out;
  uint8_t msg_op; /* open data message, or 0 */
  uint8_t *msg;   /* its bytes so far */
  size_t msg_len;
  wsh_utf8 utf8;
} ref;

static void ref_event(ref *r, wsh_ev_type type, uint8_t op, uint16_t code,
                      const uint8_t *data, size_t len, size_t end) {
  wsh_event ev = {
      .type = type, .opcode = op, .data = data, .len = len, .close_code = code};
  recs_add(r->out, &ev, end);
}

/* Returns false after an error (reported at stream offset end). */
static bool ref_error(ref *r, uint16_t code, size_t end) {
  ref_event(r, WSH_EV_ERROR, 0, code, NULL, 0, end);
  return false;
}

static bool ref_header_ok(ref *r, size_t pos, size_t *hlen) {
  uint8_t b0 = r->s[pos], op = b0 & 0x0F, fin = b0 >> 7, b1, len7;
  bool control = op & 0x8;

  if (b0 & 0x70)
    return ref_error(r, WSH_CLOSE_PROTOCOL, pos + 1);
  if ((op > OP_BINARY && op < OP_CLOSE) || op > OP_PONG ||
      (op == OP_CONT && !r->msg_op) ||
      ((op == OP_TEXT || op == OP_BINARY) && r->msg_op) || (control && !fin))
    return ref_error(r, WSH_CLOSE_PROTOCOL, pos + 1);
  if (pos + 1 == r->len)
    return true;
  b1 = r->s[pos + 1];
  len7 = b1 & 0x7F;
  if (!(b1 & 0x80) || (control && len7 > 125))
    return ref_error(r, WSH_CLOSE_PROTOCOL, pos + 2);
  *hlen = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
  return true;
}

/* Decodes one frame at r->s[*pos] and moves *pos past it. Returns false at
 * an error or the end of the input. */
static bool ref_frame(ref *r, size_t *pos) {
  const uint8_t *s = r->s;
  uint8_t op = s[*pos] & 0x0F, fin = s[*pos] >> 7;
  size_t hlen = 0, p, avail;
  uint64_t n = 0;
  uint8_t *pay;
  bool go_on = true;

  if (!ref_header_ok(r, *pos, &hlen) || !hlen || r->len - *pos < hlen)
    return false;
  if (hlen == 6)
    n = s[*pos + 1] & 0x7F;
  for (size_t i = 2; i < hlen - 4; i++)
    n = n << 8 | s[*pos + i];
  p = *pos + hlen;
  if (n >> 63)
    return ref_error(r, WSH_CLOSE_PROTOCOL, p);
  if (op == OP_TEXT || op == OP_BINARY) {
    r->msg_op = op;
    r->msg_len = 0;
    r->utf8 = (wsh_utf8)WSH_UTF8_INIT;
  }
  if (!(op & 0x8) && r->max && r->msg_len + n > r->max)
    return ref_error(r, WSH_CLOSE_TOO_BIG, p);
  avail = r->len - p < n ? r->len - p : (size_t)n;
  pay = fuzz_dup(s + p, avail);
  for (size_t i = 0; i < avail; i++)
    pay[i] ^= s[p - 4 + i % 4];
  if (!(op & 0x8) && r->msg_op == OP_TEXT)
    for (size_t i = 0; i < avail; i++)
      if (wsh_utf8_feed(&r->utf8, pay + i, 1) != 1) {
        free(pay);
        return ref_error(r, WSH_CLOSE_INVALID_DATA, p + i + 1);
      }
  if (!(op & 0x8)) {
    r->msg = realloc(r->msg, r->msg_len + avail + 1);
    FUZZ_CHECK(r->msg != NULL, "out of memory");
    memcpy(r->msg + r->msg_len, pay, avail);
    r->msg_len += avail;
  }
  if (avail < n) { /* the input ends inside the frame */
    free(pay);
    return false;
  }
  p += avail;
  if (op == OP_CLOSE) {
    uint16_t code = avail >= 2 ? (uint16_t)(pay[0] << 8 | pay[1]) : 0;
    if (avail == 1 || (avail >= 2 && !close_code_ok(code)))
      go_on = ref_error(r, WSH_CLOSE_PROTOCOL, p);
    else if (avail >= 2 && !wsh_utf8_valid(pay + 2, avail - 2))
      go_on = ref_error(r, WSH_CLOSE_INVALID_DATA, p);
    else if (avail == 0)
      ref_event(r, WSH_EV_CLOSE, OP_CLOSE, WSH_CLOSE_NO_STATUS, pay, 0, p);
    else
      ref_event(r, WSH_EV_CLOSE, OP_CLOSE, code, pay + 2, avail - 2, p);
  } else if (op == OP_PING || op == OP_PONG) {
    ref_event(r, op == OP_PING ? WSH_EV_PING : WSH_EV_PONG, op, 0, pay, avail,
              p);
  } else if (fin && r->msg_op == OP_TEXT && !wsh_utf8_complete(&r->utf8)) {
    go_on = ref_error(r, WSH_CLOSE_INVALID_DATA, p);
  } else if (fin) {
    ref_event(r, WSH_EV_MESSAGE, r->msg_op, 0, r->msg, r->msg_len, p);
    r->msg_op = 0;
    r->msg_len = 0;
  }
  free(pay);
  *pos = p;
  return go_on;
}

static void ref_decode(const uint8_t *s, size_t len, uint64_t max, recs *out) {
  ref r = {.s = s, .len = len, .max = max, .out = out};
  size_t pos = 0;

  while (pos < len && ref_frame(&r, &pos))
    ;
  free(r.msg);
}

/* ------------------------------------------------------------------------ */
/* Encoding again                                                            */
/* ------------------------------------------------------------------------ */

typedef struct bytes {
  uint8_t *p;
  size_t len;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
  b->p = realloc(b->p, b->len + n + 1);
  FUZZ_CHECK(b->p != NULL, "out of memory");
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

/* Appends a client frame: wsh_frame_header with the mask bit set, a key,
 * and the payload masked byte by byte (not with wsh_mask). */
static void put_frame(bytes *b, bool fin, uint8_t op, const uint8_t *payload,
                      size_t len, uint32_t *rng) {
  uint8_t hdr[WSH_MAX_HEADER + 4];
  size_t h = wsh_frame_header(hdr, fin, op, len), start;
  uint32_t key = fuzz_rand(rng);
  uint64_t n = h == 2 ? hdr[1] : 0;

  FUZZ_CHECK(h == (len <= 125      ? 2u
                   : len <= 0xFFFF ? 4u
                                   : 10u),
             "wsh_frame_header: length form");
  FUZZ_CHECK(hdr[0] == ((fin ? 0x80 : 0) | op), "wsh_frame_header: byte 0");
  for (size_t i = 2; i < h; i++)
    n = n << 8 | hdr[i];
  FUZZ_CHECK(n == len, "wsh_frame_header: length");
  hdr[1] |= 0x80;
  memcpy(hdr + h, &key, 4);
  put(b, hdr, h + 4);
  start = b->len;
  put(b, payload, len);
  for (size_t i = 0; i < len; i++)
    b->p[start + i] ^= hdr[h + i % 4];
}

static void expect_decodes_to(const bytes *b, const recs *want, run r) {
  recs got = {0};

  r.mode = WHOLE;
  decode(b->p, b->len, r, &got);
  expect_same(want, &got, "round trip, whole");
  recs_free(&got);
  r.mode = CHUNKS;
  r.trim = 4;
  decode(b->p, b->len, r, &got);
  expect_same(want, &got, "round trip, in chunks");
  recs_free(&got);
}

static void want_event(recs *want, wsh_ev_type type, uint8_t op, uint16_t code,
                       const uint8_t *data, size_t len, size_t end) {
  wsh_event ev = {
      .type = type, .opcode = op, .data = data, .len = len, .close_code = code};
  recs_add(want, &ev, end);
}

/* A message as one frame, and as two fragments around a ping. */
static void round_trip_message(const rec *e, run r) {
  size_t cut = fuzz_rand(&r.rng) % (e->len + 1), ping_end;
  bytes b = {0};
  recs want = {0};

  put_frame(&b, true, e->opcode, e->data, e->len, &r.rng);
  want_event(&want, WSH_EV_MESSAGE, e->opcode, 0, e->data, e->len, b.len);
  expect_decodes_to(&b, &want, r);
  recs_free(&want);
  b.len = 0;

  put_frame(&b, false, e->opcode, e->data, cut, &r.rng);
  put_frame(&b, true, OP_PING, e->data, cut < 125 ? cut : 125, &r.rng);
  ping_end = b.len;
  put_frame(&b, true, OP_CONT, e->data + cut, e->len - cut, &r.rng);
  want_event(&want, WSH_EV_PING, OP_PING, 0, e->data, cut < 125 ? cut : 125,
             ping_end);
  want_event(&want, WSH_EV_MESSAGE, e->opcode, 0, e->data, e->len, b.len);
  expect_decodes_to(&b, &want, r);
  recs_free(&want);
  free(b.p);
}

/* wsh_close_payload with a text as the reason: cut to at most 123 bytes
 * on a code point boundary, and no shorter than it must be. */
static void check_close_payload(const rec *e) {
  uint8_t out[WSH_MAX_CONTROL];
  size_t n = wsh_close_payload(out, 4000, (const char *)e->data, e->len);

  FUZZ_CHECK(n >= 2 && n <= WSH_MAX_CONTROL, "close payload length");
  FUZZ_CHECK(out[0] == 4000 >> 8 && out[1] == (4000 & 0xFF), "close code");
  FUZZ_CHECK(n - 2 <= e->len && memcmp(out + 2, e->data, n - 2) == 0,
             "close reason not a prefix of the text");
  FUZZ_CHECK(n - 2 == e->len || n - 2 >= WSH_MAX_CONTROL - 2 - 3,
             "close reason cut too short");
  FUZZ_CHECK(wsh_utf8_valid(out + 2, n - 2), "close reason cut inside a code");
}

static void round_trip(const rec *e, run r) {
  bytes b = {0};
  recs want = {0};
  uint8_t close[WSH_MAX_CONTROL];
  size_t n;

  switch (e->type) {
  case WSH_EV_MESSAGE:
    round_trip_message(e, r);
    if (e->opcode == OP_TEXT)
      check_close_payload(e);
    return;
  case WSH_EV_PING:
  case WSH_EV_PONG:
    put_frame(&b, true, e->opcode, e->data, e->len, &r.rng);
    break;
  case WSH_EV_CLOSE:
    n = 0;
    if (e->close_code != WSH_CLOSE_NO_STATUS) {
      n = wsh_close_payload(close, e->close_code, (const char *)e->data,
                            e->len);
      FUZZ_CHECK(n == e->len + 2, "wsh_close_payload cut a short reason");
    }
    put_frame(&b, true, OP_CLOSE, close, n, &r.rng);
    break;
  default:
    return;
  }
  want_event(&want, e->type, e->opcode, e->close_code, e->data, e->len, b.len);
  expect_decodes_to(&b, &want, r);
  recs_free(&want);
  free(b.p);
}

/* wsh_mask against a byte-wise XOR, at an offset and alignment of the
 * input's choosing. */
static void check_mask(const uint8_t *s, size_t len, uint32_t *rng) {
  uint32_t k = fuzz_rand(rng);
  uint8_t key[4];
  size_t skip = len ? fuzz_rand(rng) % (len < 16 ? len : 16) : 0;
  uint64_t offset = fuzz_rand(rng);
  uint8_t *a = fuzz_dup(s, len), *b = fuzz_dup(s, len);

  memcpy(key, &k, 4);
  wsh_mask(a + skip, len - skip, key, offset);
  for (size_t i = skip; i < len; i++)
    b[i] ^= key[(offset + (i - skip)) % 4];
  FUZZ_CHECK(!len || memcmp(a, b, len) == 0, "wsh_mask");
  free(a);
  free(b);
}

/* wsh_close_code_valid against the rule, every code, once. */
static void check_close_codes(void) {
  static bool done;

  for (uint32_t c = 0; !done && c <= UINT16_MAX; c++)
    FUZZ_CHECK(wsh_close_code_valid((uint16_t)c) == close_code_ok((uint16_t)c),
               "wsh_close_code_valid");
  done = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
  const uint8_t *s = data + (size < 2 ? size : 2);
  size_t len = size - (size_t)(s - data);
  run r = {.mode = WHOLE,
           .max_message = b1 < 0xC0 ? MAX_MESSAGE : (uint64_t)(b1 - 0xC0) * 4,
           .rng = 0x9E3779B9u ^ (uint32_t)b0 << 24 ^ (uint32_t)len,
           .max_chunk = (size_t)1 << ((b0 & 7) * 2)};
  recs whole = {0}, other = {0};

  check_close_codes();
  decode(s, len, r, &whole);
  ref_decode(s, len, r.max_message, &other);
  expect_same(&other, &whole, "reference decoder vs whole");
  recs_free(&other);
  r.mode = BYTES;
  decode(s, len, r, &other);
  expect_same(&whole, &other, "one byte at a time");
  recs_free(&other);
  r.trim = 1;
  decode(s, len, r, &other);
  expect_same(&whole, &other, "one byte at a time, trimming after each");
  recs_free(&other);
  r.mode = CHUNKS;
  r.trim = 4;
  decode(s, len, r, &other);
  expect_same(&whole, &other, "random chunks");
  recs_free(&other);
  r.mode = DIRECT;
  decode(s, len, r, &other);
  expect_same(&whole, &other, "random chunks, payload read in place");
  recs_free(&other);
  r.trim = 0;

  for (size_t i = 0; i < whole.n; i++) {
    fuzz_rand(&r.rng);
    round_trip(&whole.v[i], r);
  }
  check_mask(s, len, &r.rng);
  recs_free(&whole);
  return 0;
}
