/*
 * test_frame.c - unit tests for host/protocol/frame.c. Client byte streams are
 * built here (with a byte-wise masking of our own, not wsh_mask), starting from
 * RFC 6455's own example frames. Every stream is decoded whole, one byte at
 * a time, split in two at every offset (or a sample of them for long ones)
 * and in three at random, each chunk in a buffer of its exact size so that
 * ASan catches an over-read; all runs must give the same events at the same
 * stream positions. Then the encoder side: frame headers, close payloads,
 * close codes and wsh_mask.
 */
#include "protocol/frame.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ck_assert reports every passing check to the parent process; this one
 * costs nothing when it passes, for the loops over splits. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

#define FIN 0x80
#define TEXT 0x1
#define BINARY 0x2
#define CONT 0x0
#define CLOSE 0x8
#define PING 0x9
#define PONG 0xA

static const uint8_t rfc_key[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- building client streams ---- */

struct bytes {
  uint8_t *p;
  size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n) {
  if (b->len + n > b->cap || !b->p) {
    b->cap = (b->len + n) * 2 + 64;
    b->p = realloc(b->p, b->cap);
    ck_assert_ptr_nonnull(b->p);
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void put_byte(struct bytes *b, uint8_t c) {
  put(b, &c, 1);
}

/* A frame header announcing `len` bytes, with the length written in the
 * form `form` (0: shortest, or 126/127 to force one) and then `key`. */
static void put_header(struct bytes *b, uint8_t b0, uint64_t len, int form,
                       const uint8_t *key) {
  uint8_t mask = key ? 0x80 : 0;
  int ext;

  if (!form)
    form = len <= 125 ? 0 : len <= 0xFFFF ? 126 : 127;
  ext = form == 126 ? 2 : form == 127 ? 8 : 0;
  put_byte(b, b0);
  put_byte(b, (uint8_t)(mask | (form ? form : (int)len)));
  for (int i = ext - 1; i >= 0; i--)
    put_byte(b, (uint8_t)(len >> (8 * i)));
  if (key)
    put(b, key, 4);
}

/* A whole frame; masked byte by byte with `key` unless key is NULL. */
static void put_frame_form(struct bytes *b, uint8_t b0, const void *payload,
                           size_t len, int form, const uint8_t *key) {
  size_t start;

  put_header(b, b0, len, form, key);
  start = b->len;
  put(b, payload, len);
  for (size_t i = 0; key && i < len; i++)
    b->p[start + i] ^= key[i % 4];
}

static void put_frame(struct bytes *b, uint8_t b0, const void *payload,
                      size_t len) {
  put_frame_form(b, b0, payload, len, 0, rfc_key);
}

static void put_str(struct bytes *b, uint8_t b0, const char *s) {
  put_frame(b, b0, s, strlen(s));
}

/* A close frame with a code and reason. */
static void put_close(struct bytes *b, uint16_t code, const char *reason) {
  uint8_t p[WSH_MAX_CONTROL];
  size_t n = strlen(reason);

  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  memcpy(p + 2, reason, n);
  put_frame(b, FIN | CLOSE, p, n + 2);
}

/* ---- running the decoder ---- */

/* An expected event: pos is the stream offset just after the byte that
 * completed it (the total consumed when it is reported). */
struct xev {
  wsh_ev_type type;
  uint8_t opcode; /* MESSAGE only */
  uint16_t code;  /* CLOSE and ERROR */
  const void *data;
  size_t len;
  size_t pos;
  bool compressed; /* MESSAGE only: RSV1 on its first frame */
};

#define X_CMSG(op, d, l, p)                                                    \
  { WSH_EV_MESSAGE, op, 0, d, l, p, true }
#define X_MSG(op, d, l, p)                                                     \
  { WSH_EV_MESSAGE, op, 0, d, l, p, false }
#define X_PING(d, l, p)                                                        \
  { WSH_EV_PING, 0, 0, d, l, p, false }
#define X_PONG(d, l, p)                                                        \
  { WSH_EV_PONG, 0, 0, d, l, p, false }
#define X_CLOSE(c, d, l, p)                                                    \
  { WSH_EV_CLOSE, 0, c, d, l, p, false }
#define X_ERR(c, p)                                                            \
  { WSH_EV_ERROR, 0, c, NULL, 0, p, false }

/* An event as seen, with a copy of its data. */
struct rev {
  wsh_ev_type type;
  uint8_t opcode;
  uint16_t code;
  const char *error;
  uint8_t *data;
  size_t len;
  size_t pos;
  bool in_input; /* data pointed into the chunk being decoded */
  bool compressed;
};

struct run {
  struct rev *ev;
  size_t n, cap;
  size_t consumed;
};

static void run_free(struct run *r) {
  for (size_t i = 0; i < r->n; i++)
    free(r->ev[i].data);
  free(r->ev);
  memset(r, 0, sizeof *r);
}

static bool points_into(const uint8_t *p, size_t len, const uint8_t *buf,
                        size_t n) {
  uintptr_t a = (uintptr_t)p, b = (uintptr_t)buf;

  return p && a >= b && a + len <= b + n;
}

static void record(struct run *r, const wsh_event *ev, size_t pos,
                   const uint8_t *chunk, size_t clen) {
  struct rev *e;

  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->ev = realloc(r->ev, r->cap * sizeof *r->ev);
  }
  e = &r->ev[r->n++];
  e->type = ev->type;
  e->opcode = ev->type == WSH_EV_MESSAGE ? ev->opcode : 0;
  e->code = ev->close_code;
  e->error = ev->error;
  e->len = ev->len;
  e->pos = pos;
  e->in_input = points_into(ev->data, ev->len, chunk, clen);
  e->compressed = ev->compressed;
  EXPECT(!ev->compressed || ev->type == WSH_EV_MESSAGE,
         "compressed flag on event type %d", ev->type);
  e->data = malloc(ev->len ? ev->len : 1);
  EXPECT(ev->len == 0 || ev->data, "event with len %zu and no data", ev->len);
  if (ev->len)
    memcpy(e->data, ev->data, ev->len);
  EXPECT(ev->type != WSH_EV_ERROR || (ev->error && ev->error[0]),
         "error event without a reason");
}

/* After an error: nothing consumed, the same error again. */
static void check_dead(wsh_decoder *d, const wsh_event *err) {
  uint8_t ping[] = {0x89, 0x80, 1, 2, 3, 4};
  wsh_event ev;

  for (int i = 0; i < 2; i++) {
    EXPECT(wsh_decode(d, ping, sizeof ping, &ev) == 0, "dead decoder ate");
    EXPECT(ev.type == WSH_EV_ERROR && ev.close_code == err->close_code &&
               ev.error == err->error,
           "dead decoder changed its error");
  }
}

/* Decodes one chunk; false once an error was reported. */
static bool feed_chunk(wsh_decoder *d, const uint8_t *s, size_t start, size_t n,
                       struct run *r) {
  uint8_t *chunk = malloc(n ? n : 1);
  size_t off = 0, got;
  wsh_event ev;
  bool alive = true;

  memcpy(chunk, s + start, n);
  while (alive && off < n) {
    got = wsh_decode(d, chunk + off, n - off, &ev);
    EXPECT(got <= n - off, "consumed %zu of %zu", got, n - off);
    off += got;
    if (ev.type == WSH_EV_NONE) {
      EXPECT(off == n, "NONE with %zu bytes left", n - off);
      break;
    }
    EXPECT(got > 0 || ev.type == WSH_EV_ERROR, "event without input");
    record(r, &ev, start + off, chunk, n);
    if (ev.type == WSH_EV_ERROR) {
      check_dead(d, &ev);
      alive = false;
    }
  }
  r->consumed = start + off;
  free(chunk);
  return alive;
}

/* The decoder setting the runs use: permessage-deflate negotiated or not
 * (set by the RSV1 tests around their checks). */
static bool rsv1_allowed;

/* Decodes s[0..len) in the chunks ending at cuts[0..ncuts) and at len. */
static void run_split(const uint8_t *s, size_t len, uint64_t max,
                      const size_t *cuts, size_t ncuts, struct run *r) {
  wsh_decoder d;
  size_t start = 0;

  memset(r, 0, sizeof *r);
  wsh_decoder_init(&d, max);
  if (rsv1_allowed)
    wsh_decoder_allow_rsv1(&d);
  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len;

    if (!feed_chunk(&d, s, start, end - start, r))
      break;
    start = end;
  }
  wsh_decoder_free(&d);
}

static void same_runs(const char *name, const char *how, const struct run *a,
                      const struct run *b) {
  EXPECT(a->n == b->n, "%s %s: %zu events, whole gave %zu", name, how, b->n,
         a->n);
  EXPECT(a->consumed == b->consumed, "%s %s: consumed %zu, whole %zu", name,
         how, b->consumed, a->consumed);
  for (size_t i = 0; i < a->n; i++) {
    const struct rev *x = &a->ev[i], *y = &b->ev[i];

    EXPECT(x->type == y->type && x->opcode == y->opcode && x->code == y->code &&
               x->compressed == y->compressed && x->len == y->len &&
               x->pos == y->pos && x->error == y->error &&
               !memcmp(x->data, y->data, x->len),
           "%s %s: event %zu differs (type %d/%d pos %zu/%zu len %zu/%zu)",
           name, how, i, y->type, x->type, y->pos, x->pos, y->len, x->len);
  }
}

static void expect_events(const char *name, const struct run *r,
                          const struct xev *x, size_t nx) {
  EXPECT(r->n == nx, "%s: %zu events, want %zu", name, r->n, nx);
  for (size_t i = 0; i < nx; i++) {
    const struct rev *e = &r->ev[i];

    EXPECT(e->type == x[i].type, "%s: event %zu type %d, want %d", name, i,
           e->type, x[i].type);
    EXPECT(e->opcode == x[i].opcode, "%s: event %zu opcode %u, want %u", name,
           i, e->opcode, x[i].opcode);
    EXPECT(e->code == x[i].code, "%s: event %zu code %u, want %u", name, i,
           e->code, x[i].code);
    EXPECT(e->compressed == x[i].compressed, "%s: event %zu compressed %d",
           name, i, e->compressed);
    EXPECT(e->len == x[i].len, "%s: event %zu len %zu, want %zu", name, i,
           e->len, x[i].len);
    EXPECT(!x[i].len || !memcmp(e->data, x[i].data, x[i].len),
           "%s: event %zu data differs", name, i);
    EXPECT(e->pos == x[i].pos, "%s: event %zu at %zu, want %zu", name, i,
           e->pos, x[i].pos);
  }
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

#define ALL_SPLITS_UP_TO 1024

/* Every way of feeding s must match the whole run. */
static void replay_splits(const char *name, const uint8_t *s, size_t len,
                          uint64_t max, const struct run *whole) {
  size_t *cuts = calloc(len + 2, sizeof *cuts), step;
  uint64_t seed = 0x9E3779B97F4A7C15ULL ^ len;
  struct run r;

  for (size_t i = 0; i + 1 < len; i++)
    cuts[i] = i + 1;
  run_split(s, len, max, cuts, len ? len - 1 : 0, &r);
  same_runs(name, "byte at a time", whole, &r);
  run_free(&r);
  step = len <= ALL_SPLITS_UP_TO ? 1 : len / 251;
  for (size_t k = 0; k <= len; k += (k < 64 || len - k < 64) ? 1 : step) {
    run_split(s, len, max, &k, 1, &r);
    same_runs(name, "split in two", whole, &r);
    run_free(&r);
  }
  for (int i = 0; i < 64 && len; i++) {
    cuts[0] = rng_next(&seed) % (len + 1);
    cuts[1] = cuts[0] + rng_next(&seed) % (len + 1 - cuts[0]);
    run_split(s, len, max, cuts, 2, &r);
    same_runs(name, "split in three", whole, &r);
    run_free(&r);
  }
  free(cuts);
}

/* Decodes s whole, checks the events, then replays it split every way. */
static void check_stream(const char *name, const uint8_t *s, size_t len,
                         uint64_t max, const struct xev *x, size_t nx) {
  struct run whole;

  run_split(s, len, max, NULL, 0, &whole);
  if (x)
    expect_events(name, &whole, x, nx);
  replay_splits(name, s, len, max, &whole);
  run_free(&whole);
}

#define CHECK(name, b, max, ...)                                               \
  do {                                                                         \
    const struct xev x_[] = {__VA_ARGS__};                                     \
    check_stream(name, (b)->p, (b)->len, max, x_, sizeof x_ / sizeof x_[0]);   \
  } while (0)

/* ---- RFC 6455 §5.7 examples ---- */

START_TEST(test_rfc_masked_hello) {
  static const uint8_t rfc[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                0x7f, 0x9f, 0x4d, 0x51, 0x58};
  struct bytes b = {0};

  put_str(&b, FIN | TEXT, "Hello");
  ck_assert_mem_eq(b.p, rfc, sizeof rfc); /* the builder agrees with the RFC */
  CHECK("masked Hello", &b, 0, X_MSG(TEXT, "Hello", 5, 11));
  free(b.p);
}
END_TEST

START_TEST(test_rfc_unmasked_hello_rejected) {
  static const uint8_t rfc[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
  const struct xev x[] = {X_ERR(WSH_CLOSE_PROTOCOL, 2)};

  check_stream("unmasked Hello", rfc, sizeof rfc, 0, x, 1);
}
END_TEST

START_TEST(test_rfc_fragmented_hello) {
  struct bytes b = {0};

  /* 0x01 0x03 "Hel", 0x80 0x02 "lo", re-encoded as masked client frames */
  put_str(&b, TEXT, "Hel");
  put_str(&b, FIN | CONT, "lo");
  CHECK("fragmented Hello", &b, 0, X_MSG(TEXT, "Hello", 5, b.len));
  free(b.p);
}
END_TEST

START_TEST(test_rfc_ping_pong) {
  static const uint8_t ping[] = {0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                 0x7f, 0x9f, 0x4d, 0x51, 0x58};
  const struct xev x[] = {X_PING("Hello", 5, 11)};
  struct bytes b = {0};

  check_stream("masked ping", ping, sizeof ping, 0, x, 1);
  put_str(&b, FIN | PONG, "Hello"); /* 0x8a 0x05 "Hello", masked */
  CHECK("masked pong", &b, 0, X_PONG("Hello", 5, 11));
  free(b.p);
}
END_TEST

static uint8_t *pattern(size_t n) {
  uint8_t *p = malloc(n);

  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 31 + (i >> 8));
  return p;
}

START_TEST(test_rfc_256_bytes) {
  static const uint8_t hdr[] = {0x82, 0xFE, 0x01, 0x00};
  uint8_t *p = pattern(256);
  struct bytes b = {0};

  put_frame(&b, FIN | BINARY, p, 256);
  ck_assert_mem_eq(b.p, hdr, sizeof hdr);
  CHECK("256 bytes", &b, 0, X_MSG(BINARY, p, 256, 8 + 256));
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_rfc_64k) {
  static const uint8_t hdr[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0};
  uint8_t *p = pattern(65536);
  struct bytes b = {0};

  put_frame(&b, FIN | BINARY, p, 65536);
  ck_assert_mem_eq(b.p, hdr, sizeof hdr);
  CHECK("64 KiB", &b, 0, X_MSG(BINARY, p, 65536, 14 + 65536));
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_64bit_length_70000) {
  static const uint8_t hdr[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0x11, 0x70};
  uint8_t *p = pattern(70000);
  struct bytes b = {0};

  put_frame(&b, FIN | BINARY, p, 70000);
  ck_assert_mem_eq(b.p, hdr, sizeof hdr);
  CHECK("70000 bytes", &b, 0, X_MSG(BINARY, p, 70000, 14 + 70000));
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_non_minimal_lengths_accepted) {
  struct bytes b = {0};
  size_t one;

  put_frame_form(&b, FIN | TEXT, "Hello", 5, 126, rfc_key);
  one = b.len;
  put_frame_form(&b, FIN | BINARY, "Hello", 5, 127, rfc_key);
  CHECK("non-minimal", &b, 0, X_MSG(TEXT, "Hello", 5, one),
        X_MSG(BINARY, "Hello", 5, b.len));
  /* a control frame's length always fits in 7 bits: an extended length is
   * refused at once, whatever it says */
  b.len = 0;
  put_frame_form(&b, FIN | PING, "Hello", 5, 126, rfc_key);
  CHECK("non-minimal ping", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 2));
  free(b.p);
}
END_TEST

/* ---- the error rules ---- */

/* `prefix`, then a frame starting with b0 and b1 (length and mask bits),
 * padded with enough bytes that the header is complete. */
static void check_header_error(const char *name, uint8_t b0, uint8_t b1,
                               size_t at) {
  struct bytes b = {0};

  put_byte(&b, b0);
  put_byte(&b, b1);
  for (int i = 0; i < 12; i++)
    put_byte(&b, 0);
  CHECK(name, &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, at));
  free(b.p);
}

START_TEST(test_error_reserved_bits) {
  static const uint8_t ops[] = {TEXT, BINARY, CONT, PING, CLOSE};

  for (int rsv = 0x10; rsv <= 0x70; rsv += 0x10)
    for (size_t i = 0; i < sizeof ops; i++)
      check_header_error("RSV", (uint8_t)(FIN | rsv | ops[i]), 0x80, 1);
}
END_TEST

/* ---- RSV1: permessage-deflate (RFC 7692 §6) ---- */

#define RSV1 0x40

/* "Hello" compressed (RFC 7692 §7.2.3.1): not UTF-8 as it stands. */
static const uint8_t z_hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

START_TEST(test_rsv1_not_negotiated) {
  struct bytes b = {0};

  rsv1_allowed = false;
  put_frame(&b, FIN | RSV1 | BINARY, z_hello, sizeof z_hello);
  CHECK("RSV1 without deflate", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 1));
  free(b.p);
}
END_TEST

START_TEST(test_rsv1_compressed_messages) {
  struct bytes b = {0};
  size_t first, second, ping;

  rsv1_allowed = true;
  /* single frames, text and binary: delivered as is, flagged, text not
     checked as UTF-8 */
  put_frame(&b, FIN | RSV1 | TEXT, z_hello, sizeof z_hello);
  first = b.len;
  put_frame(&b, FIN | RSV1 | BINARY, z_hello, sizeof z_hello);
  second = b.len;
  put_str(&b, FIN | TEXT, "plain"); /* and uncompressed ones still work */
  CHECK("compressed, single frames", &b, 0,
        X_CMSG(TEXT, z_hello, sizeof z_hello, first),
        X_CMSG(BINARY, z_hello, sizeof z_hello, second),
        X_MSG(TEXT, "plain", 5, b.len));
  /* fragmented (§7.2.3.1), a ping between, RSV1 on the first frame only */
  b.len = 0;
  put_frame(&b, RSV1 | TEXT, z_hello, 3);
  put_str(&b, FIN | PING, "p");
  ping = b.len;
  put_frame(&b, FIN | CONT, z_hello + 3, 4);
  CHECK("compressed, fragmented", &b, 0, X_PING("p", 1, ping),
        X_CMSG(TEXT, z_hello, sizeof z_hello, b.len));
  /* many fragments, and an empty last one */
  b.len = 0;
  put_frame(&b, RSV1 | BINARY, z_hello, 1);
  for (size_t i = 1; i < sizeof z_hello; i++)
    put_frame(&b, CONT, z_hello + i, 1);
  put_frame(&b, FIN | CONT, "", 0);
  CHECK("compressed, byte fragments", &b, 0,
        X_CMSG(BINARY, z_hello, sizeof z_hello, b.len));
  /* empty compressed messages: no payload, and 0x00 */
  b.len = 0;
  put_frame(&b, FIN | RSV1 | TEXT, "", 0);
  first = b.len;
  put_frame(&b, FIN | RSV1 | TEXT, "", 1);
  CHECK("compressed, empty", &b, 0, X_CMSG(TEXT, "", 0, first),
        X_CMSG(TEXT, "", 1, b.len));
  free(b.p);
  rsv1_allowed = false;
}
END_TEST

/* The sink of test_rsv1_sink: keeps what it is given, refuses past
 * sink_refuse_at bytes. */
static struct bytes sunk;
static size_t sink_calls, sink_refuse_at = SIZE_MAX;
static uint8_t sink_opcode;

static uint16_t test_sink(wsh_decoder *d, uint8_t opcode, const uint8_t *p,
                          size_t n, const char **why) {
  (void)d;
  ck_assert_uint_gt(n, 0);
  sink_calls++;
  sink_opcode = opcode;
  put(&sunk, p, n);
  if (sunk.len > sink_refuse_at) {
    *why = "too big (sink)";
    return WSH_CLOSE_TOO_BIG;
  }
  return 0;
}

START_TEST(test_rsv1_sink) {
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;
  size_t used;

  /* a fragmented compressed message: its pieces go to the sink, unmasked,
     as they arrive; its end is an event with no data */
  wsh_decoder_init(&d, 1000);
  wsh_decoder_allow_rsv1(&d);
  wsh_decoder_set_sink(&d, test_sink);
  put_frame(&b, RSV1 | TEXT, z_hello, 3);
  put_str(&b, FIN | PING, "p");
  put_frame(&b, FIN | CONT, z_hello + 3, 4);
  used = wsh_decode(&d, b.p, 7, &ev); /* the first frame, bar 2 bytes */
  ck_assert_uint_eq(used, 7);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  ck_assert_uint_eq(sunk.len, 1);
  ck_assert_uint_eq(sink_opcode, TEXT);
  used += wsh_decode(&d, b.p + used, b.len - used, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_PING);
  used += wsh_decode(&d, b.p + used, b.len - used, &ev);
  ck_assert_uint_eq(used, b.len);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert(ev.compressed && ev.sunk);
  ck_assert_ptr_null(ev.data);
  ck_assert_uint_eq(ev.len, 0);
  ck_assert_uint_eq(sunk.len, sizeof z_hello);
  ck_assert_mem_eq(sunk.p, z_hello, sizeof z_hello);
  ck_assert_uint_eq(sink_calls, 3);
  /* a whole single-frame message in one input: handed over, not sunk */
  b.len = sunk.len = 0;
  put_frame(&b, FIN | RSV1 | BINARY, z_hello, sizeof z_hello);
  ck_assert_uint_eq(wsh_decode(&d, b.p, b.len, &ev), b.len);
  ck_assert(ev.compressed && !ev.sunk);
  ck_assert_uint_eq(ev.len, sizeof z_hello);
  ck_assert_uint_eq(sunk.len, 0);
  /* plain messages never reach the sink */
  b.len = 0;
  put_str(&b, TEXT, "pl");
  put_str(&b, FIN | CONT, "ain");
  wsh_decode(&d, b.p, 8, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  wsh_decode(&d, b.p + 8, b.len - 8, &ev);
  ck_assert(ev.type == WSH_EV_MESSAGE && !ev.compressed);
  ck_assert_uint_eq(sunk.len, 0);
  /* the sink's close code fails the decoder at the piece it refused */
  b.len = 0;
  sink_refuse_at = 2;
  put_frame(&b, RSV1 | BINARY, z_hello, 2);
  put_frame(&b, FIN | CONT, z_hello + 2, 5);
  used = wsh_decode(&d, b.p, b.len, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_uint_eq(ev.close_code, WSH_CLOSE_TOO_BIG);
  ck_assert_str_eq(ev.error, "too big (sink)");
  ck_assert_uint_eq(used, b.len);
  wsh_decoder_free(&d);
  /* the margin on compressed bytes still holds with a sink */
  sink_refuse_at = SIZE_MAX;
  sunk.len = 0;
  wsh_decoder_init(&d, 64); /* 64 + 64 / 8 + 64 = 136 bytes */
  wsh_decoder_allow_rsv1(&d);
  wsh_decoder_set_sink(&d, test_sink);
  b.len = 0;
  uint8_t z[100] = {0};
  put_frame(&b, RSV1 | BINARY, z, 100);
  put_frame(&b, FIN | CONT, z, 37);
  used = wsh_decode(&d, b.p, b.len, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_uint_eq(ev.close_code, WSH_CLOSE_TOO_BIG);
  ck_assert_uint_eq(sunk.len, 100);
  wsh_decoder_free(&d);
  free(b.p);
  free(sunk.p);
  sunk = (struct bytes){0};
}
END_TEST

START_TEST(test_rsv1_errors) {
  struct bytes b = {0};
  size_t at;

  rsv1_allowed = true;
  /* RSV1 on a continuation frame */
  put_frame(&b, RSV1 | TEXT, z_hello, 3);
  at = b.len + 1;
  put_frame(&b, FIN | RSV1 | CONT, z_hello + 3, 4);
  CHECK("RSV1 on a continuation", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, at));
  b.len = 0;
  put_frame(&b, TEXT, "He", 2);
  at = b.len + 1;
  put_frame(&b, FIN | RSV1 | CONT, "llo", 3);
  CHECK("RSV1 on a continuation of plain text", &b, 0,
        X_ERR(WSH_CLOSE_PROTOCOL, at));
  free(b.p);
  /* RSV1 on control frames; RSV2 and RSV3 on anything */
  check_header_error("RSV1 ping", FIN | RSV1 | PING, 0x80, 1);
  check_header_error("RSV1 pong", FIN | RSV1 | PONG, 0x80, 1);
  check_header_error("RSV1 close", FIN | RSV1 | CLOSE, 0x80, 1);
  for (int rsv = 0x10; rsv <= 0x70; rsv += 0x10)
    if (rsv != RSV1)
      check_header_error("RSV2/3", (uint8_t)(FIN | rsv | TEXT), 0x80, 1);
  rsv1_allowed = false;
}
END_TEST

START_TEST(test_rsv1_plain_text_still_checked) {
  struct bytes b = {0};
  size_t first;

  rsv1_allowed = true;
  put_frame(&b, FIN | RSV1 | TEXT, z_hello, sizeof z_hello);
  first = b.len;
  put_frame(&b, FIN | TEXT, z_hello, sizeof z_hello); /* 0xf2 0x48: bad */
  CHECK("plain text after a compressed one", &b, 0,
        X_CMSG(TEXT, z_hello, sizeof z_hello, first),
        X_ERR(WSH_CLOSE_INVALID_DATA, first + 6 + 2));
  free(b.p);
  rsv1_allowed = false;
}
END_TEST

/* max_message 100: a compressed message may take 100 + 100 / 8 + 64 = 176
 * bytes; an uncompressed one 100. */
START_TEST(test_rsv1_size_limit) {
  uint8_t p[200];
  struct bytes b = {0};
  size_t first;

  memset(p, 'a', sizeof p);
  rsv1_allowed = true;
  put_frame(&b, FIN | RSV1 | BINARY, p, 176);
  CHECK("compressed 176", &b, 100, X_CMSG(BINARY, p, 176, b.len));
  b.len = 0;
  put_frame(&b, RSV1 | BINARY, p, 100);
  first = b.len;
  put_frame(&b, FIN | CONT, p, 77);
  CHECK("compressed 177", &b, 100, X_ERR(WSH_CLOSE_TOO_BIG, first + 2 + 4));
  b.len = 0;
  put_frame(&b, FIN | BINARY, p, 101);
  CHECK("plain 101", &b, 100, X_ERR(WSH_CLOSE_TOO_BIG, 2 + 4));
  free(b.p);
  rsv1_allowed = false;
}
END_TEST

START_TEST(test_error_reserved_opcodes) {
  static const uint8_t ops[] = {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF};

  for (size_t i = 0; i < sizeof ops; i++) {
    check_header_error("reserved opcode", (uint8_t)(FIN | ops[i]), 0x80, 1);
    check_header_error("reserved opcode", ops[i], 0x80, 1);
  }
}
END_TEST

START_TEST(test_error_unmasked) {
  static const uint8_t ops[] = {FIN | TEXT, FIN | BINARY, TEXT,
                                FIN | PING, FIN | PONG,   FIN | CLOSE};

  for (size_t i = 0; i < sizeof ops; i++) {
    check_header_error("unmasked", ops[i], 0x00, 2);
    check_header_error("unmasked", ops[i], 0x05, 2);
  }
}
END_TEST

START_TEST(test_error_control_too_long) {
  static const uint8_t ops[] = {PING, PONG, CLOSE};
  struct bytes b = {0};
  uint8_t *p = pattern(126);

  for (size_t i = 0; i < sizeof ops; i++) {
    check_header_error("control 126", FIN | ops[i], 0x80 | 126, 2);
    check_header_error("control 127", FIN | ops[i], 0x80 | 127, 2);
  }
  put_frame(&b, FIN | PING, p, 125); /* 125 is fine */
  put_frame(&b, FIN | PING, p, 126);
  CHECK("ping 125 then 126", &b, 0, X_PING(p, 125, 131),
        X_ERR(WSH_CLOSE_PROTOCOL, 133));
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_error_control_fragmented) {
  check_header_error("ping FIN=0", PING, 0x80, 1);
  check_header_error("pong FIN=0", PONG, 0x80, 1);
  check_header_error("close FIN=0", CLOSE, 0x82, 1);
}
END_TEST

START_TEST(test_error_continuation_without_message) {
  struct bytes b = {0};

  check_header_error("lone continuation", FIN | CONT, 0x80, 1);
  check_header_error("lone continuation", CONT, 0x80, 1);
  put_str(&b, FIN | TEXT, "done");
  put_str(&b, FIN | CONT, "more");
  CHECK("continuation after a whole message", &b, 0, X_MSG(TEXT, "done", 4, 10),
        X_ERR(WSH_CLOSE_PROTOCOL, 11));
  free(b.p);
}
END_TEST

START_TEST(test_error_new_message_while_open) {
  static const uint8_t ops[] = {TEXT, FIN | TEXT, BINARY, FIN | BINARY};

  for (size_t i = 0; i < sizeof ops; i++) {
    struct bytes b = {0};

    put_str(&b, BINARY, "part");
    put_str(&b, FIN | PING, "between");
    put_str(&b, ops[i], "new");
    CHECK("data frame inside a message", &b, 0, X_PING("between", 7, 23),
          X_ERR(WSH_CLOSE_PROTOCOL, 24));
    free(b.p);
  }
}
END_TEST

START_TEST(test_error_length_high_bit) {
  struct bytes b = {0};

  put_header(&b, FIN | BINARY, 1ULL << 63, 127, rfc_key);
  put(&b, "xxxx", 4);
  CHECK("64-bit length high bit", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 14));
  b.len = 0;
  put_header(&b, FIN | BINARY, UINT64_MAX, 127, rfc_key);
  CHECK("64-bit length all ones", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 14));
  free(b.p);
}
END_TEST

START_TEST(test_error_text_invalid_utf8) {
  struct bytes b = {0};

  put_str(&b, FIN | TEXT, "ab\377cd");
  CHECK("bad byte in text", &b, 0, X_ERR(WSH_CLOSE_INVALID_DATA, 6 + 3));
  b.len = 0;
  put_str(&b, FIN | TEXT, "ok \xED\xA0\x80 surrogate");
  CHECK("surrogate in text", &b, 0, X_ERR(WSH_CLOSE_INVALID_DATA, 6 + 5));
  b.len = 0;
  put_str(&b, FIN | BINARY, "ab\377cd"); /* binary is not checked */
  CHECK("bad byte in binary", &b, 0, X_MSG(BINARY, "ab\377cd", 5, 11));
  free(b.p);
}
END_TEST

START_TEST(test_error_text_ends_inside_code_point) {
  struct bytes b = {0};

  put_str(&b, FIN | TEXT, "a\xE2\x82");
  CHECK("text ends in a code point", &b, 0,
        X_ERR(WSH_CLOSE_INVALID_DATA, b.len));
  b.len = 0;
  put_str(&b, TEXT, "a\xE2");
  put_str(&b, CONT, "\x82");
  put_str(&b, FIN | CONT, "");
  CHECK("fragments end in a code point", &b, 0,
        X_ERR(WSH_CLOSE_INVALID_DATA, b.len));
  free(b.p);
}
END_TEST

START_TEST(test_utf8_across_fragments) {
  struct bytes b = {0};
  size_t at;

  put_str(&b, TEXT, "price: \xE2");
  put_str(&b, CONT, "\x82");
  put_str(&b, FIN | PING, "p");
  put_str(&b, CONT, "");
  put_str(&b, FIN | CONT, "\xAC!");
  CHECK("euro across fragments", &b, 0, X_PING("p", 1, 6 + 8 + 6 + 1 + 6 + 1),
        X_MSG(TEXT, "price: \xE2\x82\xAC!", 11, b.len));
  /* the bad byte arrives in the second fragment: the error comes at that
   * byte, before the final fragment */
  b.len = 0;
  put_str(&b, TEXT, "ab\xF0\x9F");
  put_str(&b, CONT, "\x98(xyz");
  at = b.len - 3;
  put_str(&b, FIN | CONT, "final");
  CHECK("bad byte in the middle fragment", &b, 0,
        X_ERR(WSH_CLOSE_INVALID_DATA, at));
  b.len = 0;
  put_str(&b, TEXT, "\xED");
  put_str(&b, FIN | PONG, "");
  put_str(&b, CONT, "\xA0\x80");
  at = b.len - 1;
  put_str(&b, FIN | CONT, "final");
  CHECK("surrogate across fragments", &b, 0, X_PONG("", 0, 13),
        X_ERR(WSH_CLOSE_INVALID_DATA, at));
  free(b.p);
}
END_TEST

/* The bad byte fails the stream even when later fragments never come. */
START_TEST(test_utf8_fails_before_message_complete) {
  struct bytes b = {0};
  const struct xev x[] = {X_ERR(WSH_CLOSE_INVALID_DATA, 6 + 4 + 6 + 2)};

  put_str(&b, TEXT, "fine");
  put_str(&b, CONT, "o\xC0k and then a lot more text that never arrives");
  /* feed only up to the bad byte */
  check_stream("bad byte, stream cut after it", b.p, 6 + 4 + 6 + 2, 0, x, 1);
  free(b.p);
}
END_TEST

START_TEST(test_close) {
  struct bytes b = {0};
  uint8_t only_code[] = {0x03, 0xE8};

  put_frame(&b, FIN | CLOSE, "", 0);
  CHECK("empty close", &b, 0, X_CLOSE(WSH_CLOSE_NO_STATUS, "", 0, 6));
  b.len = 0;
  put_frame(&b, FIN | CLOSE, only_code, 2);
  CHECK("close 1000", &b, 0, X_CLOSE(1000, "", 0, 8));
  b.len = 0;
  put_close(&b, 1001, "bye");
  CHECK("close 1001 bye", &b, 0, X_CLOSE(1001, "bye", 3, 11));
  b.len = 0;
  put_close(&b, 4999, "\xE2\x82\xAC");
  CHECK("close 4999 euro", &b, 0, X_CLOSE(4999, "\xE2\x82\xAC", 3, 11));
  b.len = 0;
  put_str(&b, TEXT, "open");
  put_close(&b, 3000, "mid-message");
  CHECK("close inside a message", &b, 0,
        X_CLOSE(3000, "mid-message", 11, b.len));
  free(b.p);
}
END_TEST

START_TEST(test_close_errors) {
  static const uint16_t bad[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                 1016, 1100, 2000, 2999, 5000, 65535};
  struct bytes b = {0};

  put_frame(&b, FIN | CLOSE, "\x03", 1);
  CHECK("close of one byte", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 7));
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    b.len = 0;
    put_close(&b, bad[i], "x");
    CHECK("bad close code", &b, 0, X_ERR(WSH_CLOSE_PROTOCOL, 9));
  }
  b.len = 0;
  put_close(&b, 1000, "\xC3\x28");
  CHECK("close reason bad UTF-8", &b, 0, X_ERR(WSH_CLOSE_INVALID_DATA, 10));
  b.len = 0;
  put_close(&b, 1000, "ok\xE2\x82");
  CHECK("close reason cut UTF-8", &b, 0, X_ERR(WSH_CLOSE_INVALID_DATA, 12));
  free(b.p);
}
END_TEST

/* ---- max_message ---- */

/* ---- reading straight into the reassembly buffer ---- */

/* Puts n bytes of the stream at the room wsh_decoder_room gave. */
static void direct(wsh_decoder *d, const struct bytes *b, size_t *pos, size_t n,
                   uint8_t *at, wsh_event *ev) {
  memcpy(at, b->p + *pos, n);
  *pos += n;
  wsh_decode_in_place(d, n, ev);
}

START_TEST(test_direct_whole_frame) {
  uint8_t *p = pattern(100000), *at = NULL;
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;
  size_t pos, n;

  put_frame(&b, FIN | BINARY, p, 100000);
  put_str(&b, FIN | TEXT, "hi");
  wsh_decoder_init(&d, 1 << 20);
  ck_assert_uint_eq(wsh_decoder_room(&d, 16, 65536, &at), 0); /* no header */
  pos = wsh_decode(&d, b.p, 14 + 100, &ev);
  ck_assert_uint_eq(pos, 114);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  /* at most max, then exactly what the frame has left */
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 65536, &at), 65536);
  direct(&d, &b, &pos, 1000, at, &ev); /* a short read */
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 65536, &at), 65536);
  direct(&d, &b, &pos, n, at, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 65536, &at),
                    100000 - 100 - 1000 - 65536);
  direct(&d, &b, &pos, n, at, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert_uint_eq(ev.opcode, BINARY);
  ck_assert_uint_eq(ev.len, 100000);
  ck_assert_mem_eq(ev.data, p, 100000);
  /* between frames: none, and the next frame decodes as usual */
  ck_assert_uint_eq(wsh_decoder_room(&d, 1, 65536, &at), 0);
  n = wsh_decode(&d, b.p + pos, b.len - pos, &ev);
  ck_assert_uint_eq(pos + n, b.len);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert_uint_eq(ev.len, 2);
  ck_assert_mem_eq(ev.data, "hi", 2);
  wsh_decoder_free(&d);
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_direct_fragments_and_ping) {
  uint8_t *p = pattern(80000), *at = NULL;
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;
  size_t pos, n, ping_at;

  put_frame(&b, BINARY, p, 50000);
  ping_at = b.len;
  put_str(&b, FIN | PING, "p");
  put_frame(&b, FIN | CONT, p + 50000, 30000);
  wsh_decoder_init(&d, 1 << 20);
  pos = wsh_decode(&d, b.p, 20, &ev);
  while ((n = wsh_decoder_room(&d, 16384, 16384, &at)) > 0) {
    direct(&d, &b, &pos, n, at, &ev);
    ck_assert_int_eq(ev.type, WSH_EV_NONE); /* not FIN */
  }
  /* less than min left: decoded as usual, then the ping (control: none) */
  pos += wsh_decode(&d, b.p + pos, ping_at + 2 - pos, &ev);
  ck_assert_uint_eq(pos, ping_at + 2);
  ck_assert_uint_eq(wsh_decoder_room(&d, 0, 16384, &at), 0);
  pos += wsh_decode(&d, b.p + pos, 5, &ev); /* the ping's mask and "p" */
  ck_assert_int_eq(ev.type, WSH_EV_PING);
  pos += wsh_decode(&d, b.p + pos, 8, &ev); /* the continuation's header */
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 1 << 20, &at), 30000);
  direct(&d, &b, &pos, n, at, &ev);
  ck_assert_uint_eq(pos, b.len);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert_uint_eq(ev.len, 80000);
  ck_assert_mem_eq(ev.data, p, 80000);
  wsh_decoder_free(&d);
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_direct_text_checked) {
  size_t len = 40000, pos, n;
  uint8_t *t = malloc(len), *at = NULL;
  struct bytes b = {0}, e = {0};
  wsh_decoder d;
  wsh_event ev;

  memset(t, 'a', len);
  t[30000] = 0xFF;
  put_frame(&b, FIN | TEXT, t, len);
  wsh_decoder_init(&d, 1 << 20);
  pos = wsh_decode(&d, b.p, 20, &ev); /* a 4-byte header, 12 of payload */
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 1 << 20, &at), len - 12);
  direct(&d, &b, &pos, n, at, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_uint_eq(ev.close_code, WSH_CLOSE_INVALID_DATA);
  check_dead(&d, &ev);
  ck_assert_uint_eq(wsh_decoder_room(&d, 0, 1 << 20, &at), 0);
  wsh_decoder_free(&d);
  /* text ending inside a code point: the frame's end says so */
  memset(t, 'a', len);
  t[len - 2] = 0xE2;
  t[len - 1] = 0x82;
  put_frame(&e, FIN | TEXT, t, len);
  wsh_decoder_init(&d, 1 << 20);
  pos = wsh_decode(&d, e.p, 8, &ev);
  ck_assert_uint_eq(n = wsh_decoder_room(&d, 16384, 1 << 20, &at), len);
  direct(&d, &e, &pos, n, at, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_uint_eq(ev.close_code, WSH_CLOSE_INVALID_DATA);
  wsh_decoder_free(&d);
  free(b.p);
  free(e.p);
  free(t);
}
END_TEST

START_TEST(test_direct_refused) {
  uint8_t *p = pattern(40000), *at = NULL;
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;

  /* a frame with less than min to come */
  put_frame(&b, FIN | BINARY, p, 20000);
  wsh_decoder_init(&d, 1 << 20);
  ck_assert_uint_eq(wsh_decode(&d, b.p, 8 + 5000, &ev), 8 + 5000);
  ck_assert_uint_eq(wsh_decoder_room(&d, 16384, 65536, &at), 0);
  ck_assert_uint_eq(wsh_decoder_room(&d, 1000, 65536, &at), 15000);
  wsh_decoder_free(&d);
  /* a compressed message going to a sink */
  b.len = 0;
  put_frame(&b, FIN | RSV1 | BINARY, p, 40000);
  wsh_decoder_init(&d, 1 << 20);
  wsh_decoder_allow_rsv1(&d);
  wsh_decoder_set_sink(&d, test_sink);
  sunk.len = 0;
  ck_assert_uint_eq(wsh_decode(&d, b.p, 8 + 10, &ev), 8 + 10);
  ck_assert_uint_eq(wsh_decoder_room(&d, 1, 65536, &at), 0);
  wsh_decoder_free(&d);
  free(sunk.p);
  sunk = (struct bytes){0};
  free(b.p);
  free(p);
}
END_TEST

START_TEST(test_max_message_single_frame) {
  struct bytes b = {0};
  const struct xev x[] = {X_ERR(WSH_CLOSE_TOO_BIG, 6)};
  struct run r;

  put_str(&b, FIN | TEXT, "0123456789");
  CHECK("exactly max", &b, 10, X_MSG(TEXT, "0123456789", 10, 16));
  b.len = 0;
  put_str(&b, FIN | TEXT, "0123456789A");
  check_stream("one over max", b.p, b.len, 10, x, 1);
  run_split(b.p, b.len, 10, NULL, 0, &r); /* only the header was consumed */
  ck_assert_uint_eq(r.consumed, 6);
  run_free(&r);
  b.len = 0;
  put_header(&b, FIN | BINARY, 1ULL << 40, 0, rfc_key);
  put(&b, "payload that would follow", 25);
  CHECK("huge frame", &b, 1 << 20, X_ERR(WSH_CLOSE_TOO_BIG, 14));
  free(b.p);
}
END_TEST

START_TEST(test_max_message_fragments) {
  struct bytes b = {0};
  size_t hdr_end;
  struct run r;

  put_str(&b, TEXT, "1234");
  put_str(&b, FIN | PING, "pings do not count toward the limit");
  put_str(&b, CONT, "5678");
  put_str(&b, FIN | CONT, "90");
  CHECK("fragments up to max", &b, 10,
        X_PING("pings do not count toward the limit", 35, 10 + 41),
        X_MSG(TEXT, "1234567890", 10, b.len));
  b.len = 0;
  put_str(&b, BINARY, "1234");
  put_str(&b, CONT, "5678");
  hdr_end = b.len + 6;
  put_str(&b, FIN | CONT, "90A");
  CHECK("fragments over max", &b, 10, X_ERR(WSH_CLOSE_TOO_BIG, hdr_end));
  run_split(b.p, b.len, 10, NULL, 0, &r);
  ck_assert_uint_eq(r.consumed, hdr_end);
  run_free(&r);
  b.len = 0; /* the limit is per message */
  put_str(&b, FIN | TEXT, "12345678");
  put_str(&b, TEXT, "1234");
  put_str(&b, FIN | CONT, "5678");
  CHECK("two messages under max", &b, 10, X_MSG(TEXT, "12345678", 8, 14),
        X_MSG(TEXT, "12345678", 8, b.len));
  free(b.p);
}
END_TEST

/* ---- reassembly ---- */

START_TEST(test_ping_between_fragments) {
  struct bytes b = {0};

  put_str(&b, TEXT, "Hel");
  put_str(&b, FIN | PING, "are you there");
  put_str(&b, FIN | PONG, "");
  put_str(&b, FIN | CONT, "lo");
  CHECK("ping between fragments", &b, 0, X_PING("are you there", 13, 9 + 19),
        X_PONG("", 0, 9 + 19 + 6), X_MSG(TEXT, "Hello", 5, b.len));
  free(b.p);
}
END_TEST

START_TEST(test_many_fragments) {
  struct bytes b = {0}, want = {0};
  struct xev x[16];
  size_t nx = 0;
  char piece[8];

  put_str(&b, BINARY, "");
  for (int i = 0; i < 60; i++) {
    size_t n = (size_t)(i % 5);

    memset(piece, 'a' + i % 26, n);
    put_frame(&b, CONT, piece, n);
    put(&want, piece, n);
    if (i % 7 == 3) {
      put_str(&b, FIN | PING, "k");
      x[nx++] = (struct xev)X_PING("k", 1, b.len);
    }
  }
  put_str(&b, FIN | CONT, "");
  x[nx++] = (struct xev)X_MSG(BINARY, want.p, want.len, b.len);
  check_stream("many fragments", b.p, b.len, 0, x, nx);
  free(b.p);
  free(want.p);
}
END_TEST

START_TEST(test_empty_frames) {
  struct bytes b = {0};

  put_str(&b, FIN | TEXT, "");
  put_str(&b, FIN | BINARY, "");
  put_str(&b, TEXT, "");
  put_str(&b, FIN | CONT, "");
  put_str(&b, FIN | PING, "");
  put_str(&b, FIN | PONG, "");
  CHECK("empty frames", &b, 0, X_MSG(TEXT, "", 0, 6), X_MSG(BINARY, "", 0, 12),
        X_MSG(TEXT, "", 0, 24), X_PING("", 0, 30), X_PONG("", 0, 36));
  free(b.p);
}
END_TEST

START_TEST(test_one_event_per_call) {
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;
  size_t n;

  put_str(&b, FIN | TEXT, "Hello");
  put_str(&b, FIN | TEXT, "World");
  wsh_decoder_init(&d, 0);
  n = wsh_decode(&d, b.p, b.len, &ev);
  ck_assert_uint_eq(n, 11);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert_mem_eq(ev.data, "Hello", 5);
  n = wsh_decode(&d, b.p + 11, b.len - 11, &ev);
  ck_assert_uint_eq(n, 11);
  ck_assert_mem_eq(ev.data, "World", 5);
  n = wsh_decode(&d, b.p + 22, 0, &ev);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  wsh_decoder_free(&d);
  free(b.p);
}
END_TEST

START_TEST(test_dead_after_error) {
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev, err;

  put_byte(&b, FIN | 0x40 | TEXT);
  put_str(&b, FIN | TEXT, "valid");
  wsh_decoder_init(&d, 0);
  ck_assert_uint_eq(wsh_decode(&d, b.p, b.len, &err), 1);
  ck_assert_int_eq(err.type, WSH_EV_ERROR);
  ck_assert_uint_eq(err.close_code, WSH_CLOSE_PROTOCOL);
  ck_assert_ptr_nonnull(err.error);
  for (int i = 0; i < 3; i++) {
    ck_assert_uint_eq(wsh_decode(&d, b.p + 1, b.len - 1, &ev), 0);
    ck_assert_int_eq(ev.type, WSH_EV_ERROR);
    ck_assert_uint_eq(ev.close_code, err.close_code);
    ck_assert_str_eq(ev.error, err.error);
  }
  ck_assert_uint_eq(wsh_decode(&d, NULL, 0, &ev), 0);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  wsh_decoder_free(&d);
  free(b.p);
}
END_TEST

/* ---- zero copy and the reassembly buffer ---- */

static size_t decode_all(wsh_decoder *d, uint8_t *in, size_t len,
                         wsh_event *ev) {
  size_t n = wsh_decode(d, in, len, ev);

  ck_assert_int_ne(ev->type, WSH_EV_ERROR);
  return n;
}

START_TEST(test_zero_copy) {
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;
  size_t n;

  wsh_decoder_init(&d, 0);
  put_str(&b, FIN | TEXT, "Hello"); /* a whole frame: handed over in place */
  ck_assert_uint_eq(decode_all(&d, b.p, b.len, &ev), 11);
  ck_assert_ptr_eq(ev.data, b.p + 6);
  ck_assert(d.buf == NULL);
  b.len = 0;
  put_str(&b, FIN | PING, "ping!");
  ck_assert_uint_eq(decode_all(&d, b.p, b.len, &ev), 11);
  ck_assert_ptr_eq(ev.data, b.p + 6);
  b.len = 0; /* header in one call, the whole payload in the next */
  put_str(&b, FIN | BINARY, "second call");
  ck_assert_uint_eq(decode_all(&d, b.p, 6, &ev), 6);
  ck_assert_int_eq(ev.type, WSH_EV_NONE);
  ck_assert_uint_eq(decode_all(&d, b.p + 6, b.len - 6, &ev), 11);
  ck_assert_ptr_eq(ev.data, b.p + 6);
  b.len = 0; /* a ping split across calls is kept in d.ctl */
  put_str(&b, FIN | PING, "split");
  decode_all(&d, b.p, 8, &ev);
  ck_assert_uint_eq(decode_all(&d, b.p + 8, 3, &ev), 3);
  ck_assert_ptr_eq(ev.data, d.ctl);
  ck_assert_mem_eq(ev.data, "split", 5);
  b.len = 0; /* fragments are reassembled in d.buf */
  put_str(&b, TEXT, "Hel");
  put_str(&b, FIN | CONT, "lo");
  n = decode_all(&d, b.p, b.len, &ev);
  ck_assert_uint_eq(n, b.len);
  ck_assert_ptr_eq(ev.data, d.buf);
  ck_assert_mem_eq(ev.data, "Hello", 5);
  wsh_decoder_free(&d);
  free(b.p);
}
END_TEST

/* One decoder serving two streams in turn (the worker's, conn.c): it may
 * be rebound only between frames, and a rebound one decodes as a fresh
 * one with the new limit and without the other's RSV1 permission. */
START_TEST(test_release_and_rebind) {
  struct bytes b = {0};
  wsh_decoder d;
  wsh_event ev;

  wsh_decoder_init(&d, 0);
  ck_assert(wsh_decoder_release(&d)); /* fresh */
  wsh_decoder_allow_rsv1(&d);
  put_str(&b, TEXT, "one ");
  put_str(&b, FIN | CONT, "message");
  ck_assert_uint_eq(decode_all(&d, b.p, b.len, &ev), b.len);
  ck_assert_mem_eq(ev.data, "one message", 11);
  ck_assert(wsh_decoder_release(&d)); /* delivered: its buffer goes */
  ck_assert(d.buf == NULL);
  decode_all(&d, b.p, 3, &ev); /* inside a header, then a message */
  ck_assert(!wsh_decoder_release(&d));
  decode_all(&d, b.p + 3, 3, &ev);
  ck_assert(!wsh_decoder_release(&d));
  wsh_decoder_free(&d);
  wsh_decoder_init(&d, 0);
  b.len = 0;
  put_byte(&b, 0x81 | 0x40); /* RSV1: refused once rebound */
  put_byte(&b, 0x80);
  put(&b, "\0\0\0\0", 4);
  wsh_decoder_allow_rsv1(&d);
  wsh_decoder_rebind(&d, 4);
  wsh_decode(&d, b.p, b.len, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_str_eq(ev.error, "reserved bits set");
  ck_assert(!wsh_decoder_release(&d)); /* dead */
  wsh_decoder_init(&d, 0);
  wsh_decoder_rebind(&d, 4); /* the new limit */
  b.len = 0;
  put_str(&b, FIN | TEXT, "12345");
  wsh_decode(&d, b.p, b.len, &ev);
  ck_assert_int_eq(ev.type, WSH_EV_ERROR);
  ck_assert_uint_eq(ev.close_code, WSH_CLOSE_TOO_BIG);
  wsh_decoder_free(&d);
  free(b.p);
}
END_TEST

START_TEST(test_buffer_reset_and_trim) {
  struct bytes b = {0};
  uint8_t *p = pattern(100000);
  wsh_decoder d;
  wsh_event ev;

  wsh_decoder_init(&d, 0);
  put_frame(&b, BINARY, p, 50000);
  put_frame(&b, FIN | CONT, p + 50000, 50000);
  ck_assert_uint_eq(decode_all(&d, b.p, b.len, &ev), b.len);
  ck_assert_int_eq(ev.type, WSH_EV_MESSAGE);
  ck_assert_uint_eq(ev.len, 100000);
  ck_assert_mem_eq(ev.data, p, 100000);
  ck_assert(d.buf_cap > 64 * 1024);
  ck_assert_uint_eq(decode_all(&d, b.p, 0, &ev), 0); /* large: freed */
  ck_assert(d.buf == NULL && d.buf_cap == 0);
  b.len = 0;
  put_str(&b, TEXT, "small ");
  put_str(&b, FIN | CONT, "message");
  decode_all(&d, b.p, b.len, &ev);
  ck_assert_mem_eq(ev.data, "small message", 13);
  decode_all(&d, b.p, 0, &ev); /* small: kept, emptied */
  ck_assert(d.buf != NULL && d.buf_len == 0);
  wsh_decoder_trim(&d);
  ck_assert(d.buf == NULL);
  b.len = 0; /* trim while a message is open keeps it */
  put_str(&b, TEXT, "kept ");
  put_str(&b, FIN | CONT, "across trim");
  decode_all(&d, b.p, 11, &ev);
  wsh_decoder_trim(&d);
  ck_assert(d.buf != NULL);
  decode_all(&d, b.p + 11, b.len - 11, &ev);
  ck_assert_uint_eq(ev.len, 16);
  ck_assert_mem_eq(ev.data, "kept across trim", 16);
  wsh_decoder_free(&d);
  ck_assert(d.buf == NULL);
  free(b.p);
  free(p);
}
END_TEST

/* ---- random streams ---- */

/* Random valid UTF-8 of about n bytes, of every sequence length. */
static void put_random_text(struct bytes *b, size_t n, uint64_t *seed) {
  static const uint32_t lo[] = {0x20, 0x80, 0x800, 0xE000, 0x10000};
  static const uint32_t hi[] = {0x7E, 0x7FF, 0xD7FF, 0xFFFF, 0x10FFFF};
  size_t end = b->len + n;

  while (b->len < end) {
    int k = (int)(rng_next(seed) % 5);
    uint32_t cp = lo[k] + (uint32_t)(rng_next(seed) % (hi[k] - lo[k] + 1));

    if (cp < 0x80) {
      put_byte(b, (uint8_t)cp);
    } else if (cp < 0x800) {
      put_byte(b, (uint8_t)(0xC0 | cp >> 6));
      put_byte(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      put_byte(b, (uint8_t)(0xE0 | cp >> 12));
      put_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
      put_byte(b, (uint8_t)(0x80 | (cp & 0x3F)));
    } else {
      put_byte(b, (uint8_t)(0xF0 | cp >> 18));
      put_byte(b, (uint8_t)(0x80 | ((cp >> 12) & 0x3F)));
      put_byte(b, (uint8_t)(0x80 | ((cp >> 6) & 0x3F)));
      put_byte(b, (uint8_t)(0x80 | (cp & 0x3F)));
    }
  }
}

struct gen {
  struct bytes s;   /* the stream */
  struct bytes msg; /* payloads of all expected events, back to back */
  struct xev x[256];
  size_t off[256]; /* offset of each event's data in msg */
  size_t nx;
  uint64_t seed;
};

static void gen_frame(struct gen *g, uint8_t b0, const uint8_t *p, size_t n) {
  uint8_t key[4];
  uint64_t r = rng_next(&g->seed);
  int form = r % 8 == 0 ? 126 : r % 8 == 1 ? 127 : 0;

  memcpy(key, &r, 4);
  if (b0 & 0x8)
    form = 0;
  put_frame_form(&g->s, b0, p, n, form, key);
}

static void gen_expect(struct gen *g, wsh_ev_type t, uint8_t op, uint16_t code,
                       const uint8_t *p, size_t n) {
  g->off[g->nx] = g->msg.len;
  put(&g->msg, p, n);
  g->x[g->nx++] = (struct xev){t, op, code, NULL, n, g->s.len, false};
}

static void gen_control(struct gen *g) {
  uint8_t p[WSH_MAX_CONTROL];
  size_t n = rng_next(&g->seed) % 20;
  bool ping = rng_next(&g->seed) & 1;

  if (rng_next(&g->seed) % 16 == 0)
    n = WSH_MAX_CONTROL;
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)rng_next(&g->seed);
  gen_frame(g, FIN | (ping ? PING : PONG), p, n);
  gen_expect(g, ping ? WSH_EV_PING : WSH_EV_PONG, 0, 0, p, n);
}

static void gen_message(struct gen *g) {
  struct bytes m = {0};
  bool text = rng_next(&g->seed) & 1;
  size_t n = rng_next(&g->seed) % 200, nfrag = 1 + rng_next(&g->seed) % 5;
  size_t at = 0;

  put(&m, NULL, 0); /* m.p is never NULL, even for an empty message */
  if (text)
    put_random_text(&m, n, &g->seed);
  else
    for (size_t i = 0; i < n; i++)
      put_byte(&m, (uint8_t)rng_next(&g->seed));
  for (size_t f = 0; f < nfrag; f++) {
    size_t len =
        f + 1 == nfrag ? m.len - at : rng_next(&g->seed) % (m.len - at + 1);
    uint8_t op = f == 0 ? (text ? TEXT : BINARY) : CONT;

    if (f > 0 && rng_next(&g->seed) % 3 == 0)
      gen_control(g);
    gen_frame(g, (uint8_t)((f + 1 == nfrag ? FIN : 0) | op), m.p + at, len);
    at += len;
  }
  gen_expect(g, WSH_EV_MESSAGE, text ? TEXT : BINARY, 0, m.p, m.len);
  free(m.p);
}

static void gen_stream(struct gen *g, uint64_t seed, int messages) {
  memset(g, 0, sizeof *g);
  g->seed = seed;
  for (int i = 0; i < messages; i++) {
    if (rng_next(&g->seed) % 4 == 0)
      gen_control(g);
    gen_message(g);
  }
  put_close(&g->s, 1000, "done");
  gen_expect(g, WSH_EV_CLOSE, 0, 1000, (const uint8_t *)"done", 4);
  for (size_t i = 0; i < g->nx; i++)
    g->x[i].data = g->msg.p + g->off[i];
}

START_TEST(test_random_streams) {
  for (uint64_t seed = 1; seed <= 12; seed++) {
    struct gen g;
    char name[32];

    gen_stream(&g, seed * 0x2545F4914F6CDD1DULL, 12);
    snprintf(name, sizeof name, "random stream %d", (int)seed);
    check_stream(name, g.s.p, g.s.len, 0, g.x, g.nx);
    free(g.s.p);
    free(g.msg.p);
  }
}
END_TEST

/* Corrupted streams: whatever the verdict, every split agrees with it. */
START_TEST(test_mutated_streams) {
  struct gen g;
  uint64_t seed = 77;

  gen_stream(&g, 0xC0FFEE, 6);
  for (int i = 0; i < 150; i++) {
    uint8_t *s = malloc(g.s.len);

    memcpy(s, g.s.p, g.s.len);
    for (int k = 0; k < 1 + i % 3; k++)
      s[rng_next(&seed) % g.s.len] ^= (uint8_t)(1u << (rng_next(&seed) % 8));
    check_stream("mutated stream", s, g.s.len, 300, NULL, 0);
    free(s);
  }
  free(g.s.p);
  free(g.msg.p);
}
END_TEST

/* ---- the encoder side ---- */

static void check_header(bool fin, uint8_t op, uint64_t len,
                         const uint8_t *want, size_t n) {
  uint8_t out[WSH_MAX_HEADER + 4];

  memset(out, 0xAA, sizeof out);
  ck_assert_uint_eq(wsh_frame_header(out, fin, op, len), n);
  ck_assert_mem_eq(out, want, n);
  ck_assert_uint_eq(out[n], 0xAA);
}

#define HDR(fin, op, len, ...)                                                 \
  check_header(fin, op, len, (const uint8_t[]){__VA_ARGS__},                   \
               sizeof((const uint8_t[]){__VA_ARGS__}))

START_TEST(test_frame_header) {
  HDR(true, TEXT, 0, 0x81, 0x00);
  HDR(true, BINARY, 125, 0x82, 0x7D);
  HDR(true, BINARY, 126, 0x82, 0x7E, 0x00, 0x7E);
  HDR(false, TEXT, 65535, 0x01, 0x7E, 0xFF, 0xFF);
  HDR(true, BINARY, 65536, 0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0);
  HDR(false, CONT, 1ULL << 32, 0x00, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0);
  HDR(true, CLOSE, 2, 0x88, 0x02);
  HDR(true, PONG, 5, 0x8A, 0x05);
}
END_TEST

/* A server header, given a mask bit and key, is one the decoder reads. */
START_TEST(test_frame_header_rsv1) {
  uint8_t h[WSH_MAX_HEADER], plain[WSH_MAX_HEADER];
  static const uint64_t lens[] = {0, 5, 125, 126, 300, 65535, 65536};

  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
    for (int fin = 0; fin < 2; fin++) {
      size_t n = wsh_frame_header_rsv1(h, fin, BINARY, lens[i]);

      ck_assert_uint_eq(n, wsh_frame_header(plain, fin, BINARY, lens[i]));
      ck_assert_uint_eq(h[0], plain[0] | RSV1);
      ck_assert_mem_eq(h + 1, plain + 1, n - 1);
    }
  ck_assert_uint_eq(wsh_frame_header_rsv1(h, true, TEXT, 5), 2);
  ck_assert_uint_eq(h[0], 0xC1);
  ck_assert_uint_eq(h[1], 0x05);
}
END_TEST

START_TEST(test_frame_header_round_trip) {
  static const size_t lens[] = {0, 1, 125, 126, 65535, 65536};

  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    uint8_t *p = pattern(lens[i]);
    struct bytes b = {0};
    uint8_t hdr[WSH_MAX_HEADER];
    size_t h = wsh_frame_header(hdr, true, BINARY, lens[i]);

    hdr[1] |= 0x80;
    put(&b, hdr, h);
    put(&b, rfc_key, 4);
    put(&b, p, lens[i]);
    for (size_t k = 0; k < lens[i]; k++)
      b.p[h + 4 + k] ^= rfc_key[k % 4];
    CHECK("round trip", &b, 0, X_MSG(BINARY, p, lens[i], b.len));
    free(b.p);
    free(p);
  }
}
END_TEST

START_TEST(test_close_payload) {
  uint8_t out[WSH_MAX_CONTROL], reason[200];
  size_t n;

  ck_assert_uint_eq(wsh_close_payload(out, 1000, NULL, 0), 2);
  ck_assert_mem_eq(out, "\x03\xE8", 2);
  ck_assert_uint_eq(wsh_close_payload(out, 4001, "bye", 3), 5);
  ck_assert_mem_eq(out, "\017\241bye", 5);
  memset(reason, 'a', sizeof reason);
  ck_assert_uint_eq(wsh_close_payload(out, 1001, (char *)reason, 200), 125);
  /* a 3-byte euro sign placed across the 123-byte cut in every way */
  for (size_t at = 118; at <= 123; at++) {
    memset(reason, 'a', sizeof reason);
    memcpy(reason + at, "\xE2\x82\xAC", 3);
    n = wsh_close_payload(out, 1000, (char *)reason, at + 3 + 5);
    ck_assert_uint_eq(n - 2, at + 3 <= 123 ? 123 : at);
    ck_assert(wsh_utf8_valid(out + 2, n - 2));
  }
  /* a 4-byte emoji ending exactly at the cut, and one across it */
  memset(reason, 'b', sizeof reason);
  memcpy(reason + 119, "\xF0\x9F\x98\x80", 4);
  ck_assert_uint_eq(wsh_close_payload(out, 1000, (char *)reason, 130), 125);
  memset(reason, 'b', sizeof reason);
  memcpy(reason + 121, "\xF0\x9F\x98\x80", 4);
  ck_assert_uint_eq(wsh_close_payload(out, 1000, (char *)reason, 130), 123);
  ck_assert(wsh_utf8_valid(out + 2, 121));
  /* a 2-byte sequence whose lead byte is the last one kept */
  memset(reason, 'c', sizeof reason);
  memcpy(reason + 122, "\xC3\xA9", 2);
  ck_assert_uint_eq(wsh_close_payload(out, 1000, (char *)reason, 124), 124);
}
END_TEST

START_TEST(test_close_code_valid) {
  static const uint16_t valid[] = {1000, 1001, 1002, 1003, 1007, 1008,
                                   1009, 1010, 1011, 1012, 1013, 1014,
                                   3000, 3999, 4000, 4999};
  static const uint16_t invalid[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                     1016, 1999, 2000, 2999, 5000, 9999, 65535};
  unsigned count = 0;

  for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++)
    ck_assert_msg(wsh_close_code_valid(valid[i]), "%u", valid[i]);
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
    ck_assert_msg(!wsh_close_code_valid(invalid[i]), "%u", invalid[i]);
  for (unsigned c = 0; c <= 0xFFFF; c++)
    count += wsh_close_code_valid((uint16_t)c);
  ck_assert_uint_eq(count, 4 + 8 + 2000);
}
END_TEST

/* wsh_mask against a byte loop, at every alignment, offset and short
 * length (the head, word and tail parts in all combinations). */
START_TEST(test_mask) {
  static const uint8_t key[4] = {0x01, 0x80, 0x5A, 0xFF};
  uint8_t buf[96], ref[96];

  for (size_t align = 0; align < 8; align++)
    for (uint64_t off = 0; off < 9; off++)
      for (size_t len = 0; len <= 80; len++) {
        uint8_t *p = buf + align;

        for (size_t i = 0; i < len; i++)
          p[i] = ref[i] = (uint8_t)(i * 7 + len);
        for (size_t i = 0; i < len; i++)
          ref[i] ^= key[(off + i) % 4];
        wsh_mask(p, len, key, off + (1ULL << 40));
        EXPECT(!memcmp(p, ref, len), "align %zu off %u len %zu", align,
               (unsigned)off, len);
      }
}
END_TEST

static Suite *frame_suite(void) {
  Suite *s = suite_create("frame");
  TCase *rfc = tcase_create("rfc6455 examples");
  TCase *err = tcase_create("errors");
  TCase *dec = tcase_create("decoding");
  TCase *enc = tcase_create("encoding");

  tcase_add_test(rfc, test_rfc_masked_hello);
  tcase_add_test(rfc, test_rfc_unmasked_hello_rejected);
  tcase_add_test(rfc, test_rfc_fragmented_hello);
  tcase_add_test(rfc, test_rfc_ping_pong);
  tcase_add_test(rfc, test_rfc_256_bytes);
  tcase_add_test(rfc, test_rfc_64k);
  tcase_add_test(rfc, test_64bit_length_70000);
  tcase_add_test(rfc, test_non_minimal_lengths_accepted);
  tcase_add_test(err, test_error_reserved_bits);
  tcase_add_test(err, test_error_reserved_opcodes);
  tcase_add_test(err, test_rsv1_not_negotiated);
  tcase_add_test(err, test_rsv1_errors);
  tcase_add_test(err, test_rsv1_plain_text_still_checked);
  tcase_add_test(err, test_rsv1_size_limit);
  tcase_add_test(dec, test_rsv1_compressed_messages);
  tcase_add_test(dec, test_rsv1_sink);
  tcase_add_test(err, test_error_unmasked);
  tcase_add_test(err, test_error_control_too_long);
  tcase_add_test(err, test_error_control_fragmented);
  tcase_add_test(err, test_error_continuation_without_message);
  tcase_add_test(err, test_error_new_message_while_open);
  tcase_add_test(err, test_error_length_high_bit);
  tcase_add_test(err, test_error_text_invalid_utf8);
  tcase_add_test(err, test_error_text_ends_inside_code_point);
  tcase_add_test(err, test_utf8_across_fragments);
  tcase_add_test(err, test_utf8_fails_before_message_complete);
  tcase_add_test(err, test_close);
  tcase_add_test(err, test_close_errors);
  tcase_add_test(err, test_max_message_single_frame);
  tcase_add_test(dec, test_direct_whole_frame);
  tcase_add_test(dec, test_direct_fragments_and_ping);
  tcase_add_test(err, test_direct_text_checked);
  tcase_add_test(err, test_direct_refused);
  tcase_add_test(err, test_max_message_fragments);
  tcase_add_test(err, test_dead_after_error);
  tcase_add_test(dec, test_ping_between_fragments);
  tcase_add_test(dec, test_many_fragments);
  tcase_add_test(dec, test_empty_frames);
  tcase_add_test(dec, test_one_event_per_call);
  tcase_add_test(dec, test_zero_copy);
  tcase_add_test(dec, test_buffer_reset_and_trim);
  tcase_add_test(dec, test_release_and_rebind);
  tcase_add_test(dec, test_random_streams);
  tcase_add_test(dec, test_mutated_streams);
  tcase_add_test(enc, test_frame_header);
  tcase_add_test(enc, test_frame_header_rsv1);
  tcase_add_test(enc, test_frame_header_round_trip);
  tcase_add_test(enc, test_close_payload);
  tcase_add_test(enc, test_close_code_valid);
  tcase_add_test(enc, test_mask);
  tcase_set_timeout(rfc, 120);
  tcase_set_timeout(dec, 120);
  tcase_set_timeout(enc, 120);
  suite_add_tcase(s, rfc);
  suite_add_tcase(s, err);
  suite_add_tcase(s, dec);
  suite_add_tcase(s, enc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(frame_suite());
  int failed;

  srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists each test */
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
