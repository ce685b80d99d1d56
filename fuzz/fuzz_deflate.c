/*
 * fuzz_deflate.c - permessage-deflate's inflate (host/protocol/deflate.c) fed
 * through the frame decoder with RSV1 allowed (host/protocol/frame.c). The
 * input is two control bytes, then the client's frames:
 *
 *   byte 0  bits 0-1: 0 dedicated with context takeover, 1 dedicated
 *           without, 2 and 3 shared; bits 2-4: the client window (8 + n);
 *           bits 5-7 seed the chunking of the incremental inflate and trims
 *   byte 1  the size limit: below C0, 1 MiB; else (byte - C0) * 64 bytes
 *           (0 is raised to 1)
 *
 * Every compressed message the decoder delivers is inflated twice, by two
 * connection states that have seen the same messages: whole, and fed in
 * random pieces (each in a block of exactly its size), one of them trimmed
 * now and then as an idle connection is. Oracles: both give the same
 * result and bytes; OK means at most the limit; the output buffer never
 * grows past the limit plus one chunk, and the bytes counted (zlib state
 * and buffers) stay within the limit, one chunk, and the streams' own
 * state; a compressed message's size on the wire stays within the
 * decoder's margin; every OK message compressed again (forced, by a kind
 * of state picked at random) inflates back to itself; and all counted memory is
 * returned at the end.
 */
#include <stdbool.h>

#include "protocol/deflate.h"
#include "protocol/frame.h"
#include "fuzz.h"

#define MAX_MESSAGE (1024 * 1024)
#define STATE_MAX (384 * 1024) /* a deflater and an inflater, 15 bits */

typedef struct side {
  wsh_zmem mem;
  wsh_pmd_shared shared;
  wsh_pmd pmd;
} side;

static void side_init(side *s, const wsh_pmd_params *p, bool shared) {
  wsh_pmd_config cfg;

  wsh_pmd_config_default(&cfg);
  wsh_zmem_init(&s->mem);
  wsh_pmd_shared_init(&s->shared, &s->mem);
  wsh_pmd_init(&s->pmd, p, &cfg, shared ? &s->shared : NULL, &s->mem);
}

static void side_free(side *s) {
  wsh_pmd_free(&s->pmd);
  wsh_pmd_shared_free(&s->shared);
  FUZZ_CHECK(wsh_zmem_in_use(&s->mem) == 0, "counted memory not returned");
}

/* Inflates in pieces of random sizes, each in an exact-size block. */
static wsh_pmd_result inflate_pieces(side *s, const uint8_t *in, size_t len,
                                     size_t limit, wsh_zbuf *out,
                                     uint32_t *rng) {
  wsh_pmd_result r = wsh_pmd_inflate_begin(&s->pmd, out, limit);

  for (size_t off = 0; off < len && r == WSH_PMD_OK;) {
    size_t n = 1 + fuzz_rand(rng) % (len - off < 64 ? len - off : 64);
    uint8_t *piece = fuzz_dup(in + off, n);

    r = wsh_pmd_inflate_feed(&s->pmd, piece, n);
    free(piece);
    off += n;
    if (fuzz_rand(rng) % 8 == 0) /* empty feeds change nothing */
      FUZZ_CHECK(wsh_pmd_inflate_feed(&s->pmd, NULL, 0) == r, "empty feed");
  }
  return wsh_pmd_inflate_end(&s->pmd);
}

/* An inflated message, compressed again by a kind of state picked at
 * random, inflates back to itself. */
static void round_trip(const uint8_t *msg, size_t len, uint8_t client_bits,
                       uint32_t *rng) {
  {
    int how = (int)(fuzz_rand(rng) % 3);
    bool nct = how > 0;
    int bits = client_bits < 9 ? 9 : client_bits;
    wsh_pmd_params p = {nct, nct, (uint8_t)bits, (uint8_t)bits};
    side tx, rx;
    wsh_zbuf z = {0}, back = {0};

    side_init(&tx, &p, how == 2);
    side_init(&rx, &p, false);
    FUZZ_CHECK(wsh_pmd_compress(&tx.pmd, msg, len, true, &z) == WSH_PMD_OK,
               "compress");
    FUZZ_CHECK(wsh_pmd_inflate(&rx.pmd, z.data, z.len, len, &back) ==
                   WSH_PMD_OK,
               "inflate what we compressed");
    FUZZ_CHECK(back.len == len && (!len || !memcmp(back.data, msg, len)),
               "round trip");
    wsh_zbuf_free(&z, &tx.mem);
    wsh_zbuf_free(&back, &rx.mem);
    side_free(&tx);
    side_free(&rx);
  }
}

/* Returns the result; a connection closes on anything but OK. */
static wsh_pmd_result check_message(side *a, side *b, const wsh_event *ev,
                                    size_t limit, uint64_t wire_max,
                                    uint8_t client_bits, uint32_t *rng) {
  wsh_zbuf x = {0}, y = {0};
  wsh_pmd_result ra, rb;
  size_t base = wsh_zmem_in_use(&a->mem);

  FUZZ_CHECK(ev->len <= wire_max, "compressed message over the margin");
  atomic_store(&a->mem.peak, base);
  ra = wsh_pmd_inflate(&a->pmd, ev->data, ev->len, limit, &x);
  rb = inflate_pieces(b, ev->data, ev->len, limit, &y, rng);
  FUZZ_CHECK(ra == rb, "whole and pieces differ in result");
  FUZZ_CHECK(ra == WSH_PMD_OK || ra == WSH_PMD_TOO_BIG ||
                 ra == WSH_PMD_BAD_DATA,
             "result");
  FUZZ_CHECK(x.cap <= limit + WSH_PMD_CHUNK && y.cap <= limit + WSH_PMD_CHUNK,
             "output grew past the limit and a chunk");
  FUZZ_CHECK(atomic_load(&a->mem.peak) <=
                 base + limit + WSH_PMD_CHUNK + STATE_MAX,
             "memory past the limit, a chunk and the streams");
  if (ra == WSH_PMD_OK) {
    FUZZ_CHECK(x.len <= limit, "over the limit yet OK");
    FUZZ_CHECK(x.len == y.len && (!x.len || !memcmp(x.data, y.data, x.len)),
               "whole and pieces differ in bytes");
    if (x.len <= 64 * 1024)
      round_trip(x.data, x.len, client_bits, rng);
  }
  wsh_zbuf_free(&x, &a->mem);
  wsh_zbuf_free(&y, &b->mem);
  if (fuzz_rand(rng) % 4 == 0)
    wsh_pmd_trim(&b->pmd);
  return ra;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t b0 = size > 0 ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
  size_t skip = size < 2 ? size : 2, len = size - skip, off = 0;
  uint8_t *in = fuzz_dup(data + skip, len);
  size_t limit = b1 < 0xC0 ? MAX_MESSAGE : (size_t)(b1 - 0xC0) * 64;
  uint8_t bits = (uint8_t)(8 + ((b0 >> 2) & 7));
  bool takeover = (b0 & 3) == 0, shared = (b0 & 3) >= 2;
  wsh_pmd_params p = {!takeover, !takeover, 15, bits};
  uint32_t rng = 0x9E3779B9u ^ (uint32_t)(b0 >> 5) << 24 ^ (uint32_t)len;
  wsh_decoder d;
  side a, b;

  if (!limit)
    limit = 1;
  wsh_decoder_init(&d, limit);
  wsh_decoder_allow_rsv1(&d);
  side_init(&a, &p, shared);
  side_init(&b, &p, shared);
  while (off < len) {
    wsh_event ev;
    size_t used = wsh_decode(&d, in + off, len - off, &ev);

    off += used;
    if (ev.type == WSH_EV_NONE || ev.type == WSH_EV_ERROR ||
        ev.type == WSH_EV_CLOSE)
      break;
    FUZZ_CHECK(ev.type == WSH_EV_MESSAGE || !ev.compressed,
               "compressed flag on a control event");
    if (ev.type == WSH_EV_MESSAGE && ev.compressed &&
        check_message(&a, &b, &ev, limit, d.max_compressed, bits, &rng) !=
            WSH_PMD_OK)
      break;
  }
  wsh_decoder_free(&d);
  side_free(&a);
  side_free(&b);
  free(in);
  return 0;
}
