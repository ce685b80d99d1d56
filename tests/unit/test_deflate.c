/*
 * test_deflate.c - unit tests for host/protocol/deflate.c: RFC 7692's own
 * examples (§7.2.3), the negotiation matrix (every parameter with and without
 * values, quoted values, duplicates, unknown parameters, bad values, 8-bit
 * windows, several offers and headers), round trips from 0 B to 5 MiB for
 * each takeover choice and client window 9 to 15 (checked against zlib
 * used directly), messages from zlib used directly as another client's
 * compressor would (every strategy, other levels, memLevels and flushes),
 * fragmented input split at every offset, corrupt data, the size limit, an
 * inflate bomb (1 MB inflating to 1 GiB, built here with zlib) with its memory
 * measured, and the memory of dedicated contexts.
 */
#include "protocol/deflate.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ck_assert reports every passing check to the parent process; this one
 * costs nothing when it passes, for the loops. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

static const uint8_t hello_rfc[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};

/* ---- helpers ---- */

/* A connection's state for params; shared when sh is given. */
static void conn_init(wsh_pmd *c, wsh_pmd_params p, wsh_pmd_shared *sh,
                      wsh_zmem *m) {
  wsh_pmd_config cfg;

  wsh_pmd_config_default(&cfg);
  wsh_pmd_init(c, &p, &cfg, sh, m);
}

static wsh_pmd_params params(bool snct, bool cnct, int sbits, int cbits) {
  wsh_pmd_params p = {snct, cnct, (uint8_t)sbits, (uint8_t)cbits};

  return p;
}

static void expect_inflates_to(wsh_pmd *c, const uint8_t *in, size_t len,
                               const void *want, size_t want_len,
                               const char *what) {
  wsh_zbuf out = {0};
  wsh_pmd_result r = wsh_pmd_inflate(c, in, len, 1 << 20, &out);

  EXPECT(r == WSH_PMD_OK, "%s: result %d", what, r);
  EXPECT(out.len == want_len, "%s: %zu bytes, want %zu", what, out.len,
         want_len);
  EXPECT(!want_len || !memcmp(out.data, want, want_len), "%s: data", what);
  wsh_zbuf_free(&out, c->mem);
}

static wsh_pmd_result inflate_result(wsh_pmd *c, const uint8_t *in, size_t len,
                                     size_t limit) {
  wsh_zbuf out = {0};
  wsh_pmd_result r = wsh_pmd_inflate(c, in, len, limit, &out);

  wsh_zbuf_free(&out, c->mem);
  return r;
}

/* Inflates with zlib directly (raw, window `bits`), appending the tail. */
static uint8_t *ref_inflate(const uint8_t *in, size_t len, int bits,
                            size_t want_len) {
  uint8_t *buf = malloc(len + 4), *out = malloc(want_len + 1);
  z_stream s = {0};
  int rc;

  memcpy(buf, in, len);
  memcpy(buf + len, "\x00\x00\xff\xff", 4);
  ck_assert_int_eq(inflateInit2(&s, -bits), Z_OK);
  s.next_in = buf;
  s.avail_in = (uInt)(len + 4);
  s.next_out = out;
  s.avail_out = (uInt)want_len + 1;
  rc = inflate(&s, Z_SYNC_FLUSH);
  EXPECT(rc == Z_OK || (rc == Z_BUF_ERROR && want_len == 0), "zlib inflate: %d",
         rc);
  EXPECT(s.avail_in == 0 && s.total_out == want_len,
         "zlib inflate: %lu bytes out, want %zu", s.total_out, want_len);
  inflateEnd(&s);
  free(buf);
  return out;
}

static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* JSON-like text: compressible, as chat messages are. */
static uint8_t *json_text(size_t n, uint64_t seed) {
  static const char *words[] = {"user", "message", "hello", "room", "id",
                                "time", "status",  "ok",    "text", "chat"};
  uint8_t *p = malloc(n ? n : 1);
  size_t i = 0;

  while (i < n) {
    char item[96];
    int k = snprintf(item, sizeof item, "{\"%s\":%u,\"%s\":\"%s\"},",
                     words[rng_next(&seed) % 10],
                     (unsigned)(rng_next(&seed) % 100000),
                     words[rng_next(&seed) % 10], words[rng_next(&seed) % 10]);

    for (int j = 0; j < k && i < n; j++)
      p[i++] = (uint8_t)item[j];
  }
  return p;
}

static uint8_t *random_bytes(size_t n, uint64_t seed) {
  uint8_t *p = malloc(n ? n : 1);

  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(rng_next(&seed) >> 24);
  return p;
}

/* ---- RFC 7692 §7.2.3 ---- */

START_TEST(test_rfc_hello) {
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c;
  wsh_zbuf out = {0};

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  conn_init(&c, params(true, true, 15, 15), &sh, &m);
  expect_inflates_to(&c, hello_rfc, sizeof hello_rfc, "Hello", 5, "§7.2.3.1");
  /* five bytes do not shrink: not compressed unless forced, then as the
     RFC shows */
  ck_assert_int_eq(
      wsh_pmd_compress(&c, (const uint8_t *)"Hello", 5, false, &out),
      WSH_PMD_NOT_SMALLER);
  ck_assert_int_eq(
      wsh_pmd_compress(&c, (const uint8_t *)"Hello", 5, true, &out),
      WSH_PMD_OK);
  ck_assert_uint_eq(out.len, sizeof hello_rfc);
  ck_assert_mem_eq(out.data, hello_rfc, sizeof hello_rfc);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&c);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

START_TEST(test_rfc_fragmented_hello) {
  wsh_zmem m;
  wsh_pmd c;
  wsh_zbuf out = {0};

  wsh_zmem_init(&m);
  conn_init(&c, params(false, false, 15, 15), NULL, &m);
  /* 0x41 0x03 f2 48 cd, then 0x80 0x04 c9 c9 07 00 */
  ck_assert_int_eq(wsh_pmd_inflate_begin(&c, &out, 100), WSH_PMD_OK);
  ck_assert_int_eq(wsh_pmd_inflate_feed(&c, hello_rfc, 3), WSH_PMD_OK);
  ck_assert_int_eq(wsh_pmd_inflate_feed(&c, hello_rfc + 3, 4), WSH_PMD_OK);
  ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_OK);
  ck_assert_uint_eq(out.len, 5);
  ck_assert_mem_eq(out.data, "Hello", 5);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&c);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

START_TEST(test_rfc_shared_window) {
  static const uint8_t second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
  wsh_zmem m;
  wsh_pmd tx, rx, fresh;
  wsh_zbuf out = {0};

  wsh_zmem_init(&m);
  conn_init(&tx, params(false, false, 15, 15), NULL, &m);
  conn_init(&rx, params(false, false, 15, 15), NULL, &m);
  conn_init(&fresh, params(false, true, 15, 15), NULL, &m);
  ck_assert_int_eq(
      wsh_pmd_compress(&tx, (const uint8_t *)"Hello", 5, true, &out),
      WSH_PMD_OK);
  ck_assert_mem_eq(out.data, hello_rfc, sizeof hello_rfc);
  ck_assert_int_eq(
      wsh_pmd_compress(&tx, (const uint8_t *)"Hello", 5, true, &out),
      WSH_PMD_OK);
  ck_assert_uint_eq(out.len, sizeof second);
  ck_assert_mem_eq(out.data, second, sizeof second); /* §7.2.3.2 */
  expect_inflates_to(&rx, hello_rfc, sizeof hello_rfc, "Hello", 5, "first");
  expect_inflates_to(&rx, second, sizeof second, "Hello", 5, "second");
  /* without context takeover the second refers to nothing: 1007 */
  expect_inflates_to(&fresh, hello_rfc, sizeof hello_rfc, "Hello", 5, "1st");
  ck_assert_int_eq(inflate_result(&fresh, second, sizeof second, 100),
                   WSH_PMD_BAD_DATA);
  ck_assert_int_eq(wsh_pmd_close_code(WSH_PMD_BAD_DATA), 1007);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&rx);
  wsh_pmd_free(&fresh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

START_TEST(test_rfc_other_blocks) {
  static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48,
                                   0x65, 0x6c, 0x6c, 0x6f, 0x00};
  static const uint8_t bfinal[] = {0xf3, 0x48, 0xcd, 0xc9,
                                   0xc9, 0x07, 0x00, 0x00};
  static const uint8_t two[] = {0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff,
                                0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00};
  static const uint8_t empty_last[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07,
                                       0x00, 0x00, 0x00, 0xff, 0xff};
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c;
  wsh_zbuf out = {0};

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  for (int shared = 0; shared < 2; shared++) {
    conn_init(&c, params(shared, shared, 15, 15), shared ? &sh : NULL, &m);
    expect_inflates_to(&c, stored, sizeof stored, "Hello", 5, "§7.2.3.3");
    expect_inflates_to(&c, bfinal, sizeof bfinal, "Hello", 5, "§7.2.3.4");
    expect_inflates_to(&c, two, sizeof two, "Hello", 5, "§7.2.3.5");
    /* §7.2.3.6: the last fragment is just 0x00 */
    ck_assert_int_eq(wsh_pmd_inflate_begin(&c, &out, 100), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, empty_last, sizeof empty_last),
                     WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, (const uint8_t *)"", 1),
                     WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_OK);
    ck_assert_uint_eq(out.len, 5);
    /* the same message with its final fragment empty */
    ck_assert_int_eq(wsh_pmd_inflate_begin(&c, &out, 100), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, hello_rfc, sizeof hello_rfc),
                     WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, hello_rfc, 0), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_OK);
    ck_assert_mem_eq(out.data, "Hello", 5);
    /* empty messages: 0x00, and an empty payload */
    expect_inflates_to(&c, (const uint8_t *)"", 1, "", 0, "0x00");
    expect_inflates_to(&c, (const uint8_t *)"", 0, "", 0, "empty payload");
    ck_assert_int_eq(wsh_pmd_compress(&c, NULL, 0, true, &out), WSH_PMD_OK);
    ck_assert_uint_eq(out.len, 1);
    ck_assert_uint_eq(out.data[0], 0);
    ck_assert_int_eq(wsh_pmd_compress(&c, NULL, 0, false, &out),
                     WSH_PMD_NOT_SMALLER);
    wsh_pmd_free(&c);
  }
  wsh_zbuf_free(&out, &m);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

/* ---- negotiation ---- */

struct neg_case {
  wsh_pmd_mode mode;
  int cfg_sbits, cfg_cbits;
  const char *values[3];
  bool accept;
  const char *response;
  int snct, cnct, sbits, cbits; /* when accepted */
};

#define SH WSH_PMD_SHARED
#define DE WSH_PMD_DEDICATED
#define PMD "permessage-deflate"
#define NCT "; server_no_context_takeover; client_no_context_takeover"
#define NO false, NULL, 0, 0, 0, 0 /* declined */

static const struct neg_case neg_cases[] = {
    /* plain offers */
    {SH, 15, 15, {PMD}, true, PMD NCT, 1, 1, 15, 15},
    {DE, 15, 15, {PMD}, true, PMD, 0, 0, 15, 15},
    {WSH_PMD_OFF, 15, 15, {PMD}, NO},
    {SH,
     15,
     15,
     {"permessage-deflate; client_max_window_bits"},
     true,
     PMD NCT,
     1,
     1,
     15,
     15},
    /* client_max_window_bits: without a value, with one, absent */
    {DE,
     15,
     10,
     {"permessage-deflate; client_max_window_bits"},
     true,
     PMD "; client_max_window_bits=10",
     0,
     0,
     15,
     10},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=12"},
     true,
     PMD "; client_max_window_bits=12",
     0,
     0,
     15,
     12},
    {DE,
     15,
     10,
     {"permessage-deflate; client_max_window_bits=12"},
     true,
     PMD "; client_max_window_bits=10",
     0,
     0,
     15,
     10},
    {DE, 15, 10, {PMD}, true, PMD, 0, 0, 15, 15},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=15"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=8"},
     true,
     PMD "; client_max_window_bits=8",
     0,
     0,
     15,
     8},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=9"},
     true,
     PMD "; client_max_window_bits=9",
     0,
     0,
     15,
     9},
    /* server_max_window_bits */
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=10"},
     true,
     PMD "; server_max_window_bits=10",
     0,
     0,
     10,
     15},
    {DE,
     12,
     15,
     {"permessage-deflate; server_max_window_bits=14"},
     true,
     PMD "; server_max_window_bits=12",
     0,
     0,
     12,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=15"},
     true,
     PMD "; server_max_window_bits=15",
     0,
     0,
     15,
     15},
    {DE, 11, 15, {PMD}, true, PMD "; server_max_window_bits=11", 0, 0, 11, 15},
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=9"},
     true,
     PMD "; server_max_window_bits=9",
     0,
     0,
     9,
     15},
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits=8"}, NO},
    {SH, 15, 15, {"permessage-deflate; server_max_window_bits=8"}, NO},
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits"}, NO},
    /* takeover */
    {DE,
     15,
     15,
     {"permessage-deflate; server_no_context_takeover"},
     true,
     PMD "; server_no_context_takeover",
     1,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; client_no_context_takeover"},
     true,
     PMD "; client_no_context_takeover",
     0,
     1,
     15,
     15},
    {SH,
     15,
     15,
     {"permessage-deflate; server_no_context_takeover"},
     true,
     PMD NCT,
     1,
     1,
     15,
     15},
    {DE, 15, 15, {"permessage-deflate; server_no_context_takeover=1"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_no_context_takeover=\"\""}, NO},
    /* everything at once, in another order */
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=11; "
      "client_no_context_takeover; server_max_window_bits=13; "
      "server_no_context_takeover"},
     true,
     PMD NCT "; server_max_window_bits=13; client_max_window_bits=11",
     1,
     1,
     13,
     11},
    /* quoted values (RFC 6455 §9.1: unescaped, a token) */
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=\"10\""},
     true,
     PMD "; server_max_window_bits=10",
     0,
     0,
     10,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=\"1\\2\""},
     true,
     PMD "; client_max_window_bits=12",
     0,
     0,
     15,
     12},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=\"\""}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=\" 10\""}, NO},
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits=\"8\""}, NO},
    /* bad values */
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits=7"}, NO},
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits=16"}, NO},
    {DE, 15, 15, {"permessage-deflate; server_max_window_bits=010"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=09"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=0"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=1a"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits=-9"}, NO},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits=99999999999999"},
     NO},
    /* duplicates and unknown parameters */
    {DE,
     15,
     15,
     {"permessage-deflate; server_no_context_takeover; "
      "server_no_context_takeover"},
     NO},
    {DE,
     15,
     15,
     {"permessage-deflate; client_max_window_bits; client_max_window_bits=10"},
     NO},
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=10; "
      "server_max_window_bits=10"},
     NO},
    {DE, 15, 15, {"permessage-deflate; foo"}, NO},
    {DE, 15, 15, {"permessage-deflate; x=1"}, NO},
    {DE, 15, 15, {"permessage-deflate; Server_No_Context_Takeover"}, NO},
    {DE, 15, 15, {"Permessage-Deflate"}, NO},
    {DE, 15, 15, {"x-webkit-deflate-frame"}, NO},
    /* several offers in one header, several headers: the first honoured */
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=8, permessage-deflate; "
      "client_max_window_bits"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; foo, permessage-deflate; server_max_window_bits=12, "
      "permessage-deflate"},
     true,
     PMD "; server_max_window_bits=12",
     0,
     0,
     12,
     15},
    {DE,
     15,
     15,
     {"x-webkit-deflate-frame", "permessage-deflate; foo",
      "permessage-deflate; server_max_window_bits=11"},
     true,
     PMD "; server_max_window_bits=11",
     0,
     0,
     11,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; server_no_context_takeover",
      "permessage-deflate; server_max_window_bits=11"},
     true,
     PMD "; server_no_context_takeover",
     1,
     0,
     15,
     15},
    /* syntax: other extensions with quoted commas, empty elements, OWS */
    {DE,
     15,
     15,
     {"foo; bar=\"a,b\\\"c,\", permessage-deflate"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE, 15, 15, {" , ,permessage-deflate ,, "}, true, PMD, 0, 0, 15, 15},
    {DE,
     15,
     15,
     {"permessage-deflate ;\tclient_max_window_bits = 10 "},
     true,
     PMD "; client_max_window_bits=10",
     0,
     0,
     15,
     10},
    /* malformed elements are skipped */
    {DE, 15, 15, {"permessage-deflate;"}, NO},
    {DE, 15, 15, {"permessage-deflate; =1"}, NO},
    {DE, 15, 15, {"permessage-deflate x"}, NO},
    {DE, 15, 15, {"permessage-deflate; client_max_window_bits="}, NO},
    {DE,
     15,
     15,
     {"permessage-deflate; a b, permessage-deflate"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; a=\"x\"y, permessage-deflate"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; a=\"unterminated, permessage-deflate"},
     NO},
    {DE,
     15,
     15,
     {"permessage-deflate; a=\"unterminated, permessage-deflate", PMD},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; a=\"bad\x01\", permessage-deflate"},
     true,
     PMD,
     0,
     0,
     15,
     15},
    {DE, 15, 15, {""}, NO},
    {DE, 15, 15, {NULL}, NO},
    /* what browsers and Python's websockets send */
    {SH,
     15,
     15,
     {"permessage-deflate; client_max_window_bits", "x-webkit-deflate-frame"},
     true,
     PMD NCT,
     1,
     1,
     15,
     15},
    {DE,
     15,
     15,
     {"permessage-deflate; server_max_window_bits=12; "
      "client_max_window_bits=12"},
     true,
     PMD "; server_max_window_bits=12; client_max_window_bits=12",
     0,
     0,
     12,
     12},
};

START_TEST(test_negotiate_matrix) {
  for (size_t i = 0; i < sizeof neg_cases / sizeof neg_cases[0]; i++) {
    const struct neg_case *t = &neg_cases[i];
    wsh_pmd_config cfg;
    wsh_pmd_params p = {0}, p2;
    char resp[WSH_PMD_RESPONSE_MAX], resp2[WSH_PMD_RESPONSE_MAX];
    const char *again[1] = {resp};
    size_t n = 0;
    bool ok;

    while (n < 3 && t->values[n])
      n++;
    wsh_pmd_config_default(&cfg);
    cfg.mode = t->mode;
    cfg.server_window_bits = (uint8_t)t->cfg_sbits;
    cfg.client_window_bits = (uint8_t)t->cfg_cbits;
    ok = wsh_pmd_negotiate(&cfg, t->values, n ? n : 1, &p, resp);
    EXPECT(ok == t->accept, "case %zu (%s): accepted %d", i,
           t->values[0] ? t->values[0] : "NULL", ok);
    if (!ok) {
      EXPECT(resp[0] == '\0', "case %zu: a response when declined", i);
      continue;
    }
    EXPECT(!strcmp(resp, t->response), "case %zu: response '%s', want '%s'", i,
           resp, t->response);
    EXPECT(p.server_no_context_takeover == t->snct &&
               p.client_no_context_takeover == t->cnct &&
               p.server_window_bits == t->sbits &&
               p.client_window_bits == t->cbits,
           "case %zu: params %d %d %d %d", i, p.server_no_context_takeover,
           p.client_no_context_takeover, p.server_window_bits,
           p.client_window_bits);
    /* the answer is itself well-formed: read as an offer, it is taken */
    cfg.mode = DE;
    EXPECT(wsh_pmd_negotiate(&cfg, again, 1, &p2, resp2),
           "case %zu: response '%s' does not parse", i, resp);
  }
}
END_TEST

START_TEST(test_config_check) {
  wsh_pmd_config cfg;

  wsh_pmd_config_default(&cfg);
  ck_assert_ptr_null(wsh_pmd_config_check(&cfg));
  cfg.server_window_bits = 8;
  ck_assert_ptr_nonnull(wsh_pmd_config_check(&cfg));
  cfg.server_window_bits = 15;
  cfg.client_window_bits = 8;
  ck_assert_ptr_null(wsh_pmd_config_check(&cfg));
  cfg.client_window_bits = 16;
  ck_assert_ptr_nonnull(wsh_pmd_config_check(&cfg));
  cfg.client_window_bits = 15;
  cfg.level = 0;
  ck_assert_ptr_nonnull(wsh_pmd_config_check(&cfg));
  cfg.level = 9;
  cfg.mem_level = 10;
  ck_assert_ptr_nonnull(wsh_pmd_config_check(&cfg));
}
END_TEST

/* ---- round trips ---- */

enum { TAKEOVER, NO_TAKEOVER, SHARED };

/* Sends three messages from a server context to a client-side inflater (a
 * wsh_pmd with the same params) and checks each against zlib too. */
static void round_trip(int how, int bits, const uint8_t *const *msgs,
                       const size_t *lens, size_t n) {
  bool nct = how != TAKEOVER;
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd tx, rx;
  wsh_zbuf z = {0}, out = {0};
  z_stream ref = {0};

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  conn_init(&tx, params(nct, nct, bits, bits), how == SHARED ? &sh : NULL, &m);
  conn_init(&rx, params(nct, nct, bits, bits), NULL, &m);
  ck_assert_int_eq(inflateInit2(&ref, -bits), Z_OK);
  for (size_t i = 0; i < n; i++) {
    wsh_pmd_result r = wsh_pmd_compress(&tx, msgs[i], lens[i], true, &z);
    uint8_t *chk;

    EXPECT(r == WSH_PMD_OK, "compress %zu bytes: %d", lens[i], r);
    r = wsh_pmd_inflate(&rx, z.data, z.len, lens[i], &out);
    EXPECT(r == WSH_PMD_OK, "inflate %zu bytes (how %d bits %d): %d", lens[i],
           how, bits, r);
    EXPECT(out.len == lens[i] &&
               (!lens[i] || !memcmp(out.data, msgs[i], lens[i])),
           "round trip of %zu bytes (how %d bits %d)", lens[i], how, bits);
    if (nct) { /* zlib itself, window `bits`, fresh per message */
      chk = ref_inflate(z.data, z.len, bits, lens[i]);
      EXPECT(!lens[i] || !memcmp(chk, msgs[i], lens[i]), "zlib disagrees");
      free(chk);
    }
  }
  inflateEnd(&ref);
  wsh_zbuf_free(&z, &m);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&rx);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}

START_TEST(test_round_trips) {
  static const size_t sizes[] = {0,    1,     2,     100,   1000,
                                 4096, 65535, 65536, 200000};
  uint8_t *text = json_text(200000, 1), *bin = random_bytes(200000, 7);

  for (int how = TAKEOVER; how <= SHARED; how++)
    for (int bits = 9; bits <= 15; bits++)
      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        /* each message starts elsewhere in the text */
        const uint8_t *msgs[3] = {text + (200000 - sizes[s]) / 2, bin,
                                  text + (200000 - sizes[s]) / 3};
        size_t lens[3] = {sizes[s], sizes[s], sizes[s]};

        if (sizes[s] <= 65536 || bits == 9 || bits == 15)
          round_trip(how, bits, msgs, lens, 3);
      }
  free(text);
  free(bin);
}
END_TEST

START_TEST(test_round_trips_big) {
  static const size_t sizes[] = {1 << 20, 5 << 20};
  uint8_t *text = json_text((5 << 20) + 1000, 3);
  uint8_t *bin = random_bytes((5 << 20) / 4, 5);

  for (int how = TAKEOVER; how <= SHARED; how++)
    for (int bits = 9; bits <= 15; bits += 6)
      for (size_t s = 0; s < 2; s++) {
        const uint8_t *msgs[3] = {text, bin, text + 1000};
        size_t lens[3] = {sizes[s], sizes[s] / 4, sizes[s]};

        if (s == 0 || (how == TAKEOVER && bits == 15) ||
            (how == SHARED && bits == 9))
          round_trip(how, bits, msgs, lens, 3);
      }
  free(text);
  free(bin);
}
END_TEST

/* A client's compressor that is not ours: zlib used directly with other
 * settings (every strategy, levels 1 and 9, memLevel 1 and 9, windows 9,
 * 12 and 15), with context takeover, each message split by other flushes
 * (sync, full, partial: the last leaves the stream off a byte boundary
 * until the final sync flush), one message ended with BFINAL and the 0x00
 * the RFC asks for (the compressor then reset). */
static size_t client_message(z_stream *s, const uint8_t *msg, size_t len,
                             int how, uint8_t *out, size_t cap) {
  static const int mid[] = {Z_SYNC_FLUSH, Z_FULL_FLUSH, Z_PARTIAL_FLUSH,
                            Z_NO_FLUSH};
  size_t cut = len / 3;

  s->next_out = out;
  s->avail_out = (uInt)cap;
  s->next_in = (Bytef *)(uintptr_t)msg;
  s->avail_in = (uInt)cut;
  ck_assert_int_eq(deflate(s, mid[how % 4]), Z_OK);
  s->avail_in = (uInt)(len - cut);
  if (how == 4) { /* BFINAL, then 0x00, and a fresh compressor */
    ck_assert_int_eq(deflate(s, Z_FINISH), Z_STREAM_END);
    *s->next_out++ = 0x00;
    s->avail_out--;
    deflateReset(s);
    return cap - s->avail_out;
  }
  ck_assert_int_eq(deflate(s, Z_SYNC_FLUSH), Z_OK);
  ck_assert_uint_gt(s->avail_out, 0);
  ck_assert_mem_eq(s->next_out - 4, "\x00\x00\xff\xff", 4);
  return cap - s->avail_out - 4;
}

START_TEST(test_foreign_compressor) {
  static const int strategies[] = {Z_DEFAULT_STRATEGY, Z_FILTERED,
                                   Z_HUFFMAN_ONLY, Z_RLE, Z_FIXED};
  static const int bitss[] = {9, 12, 15};
  uint8_t *text = json_text(40000, 17), *wire = malloc(60000);
  wsh_zmem m;

  wsh_zmem_init(&m);
  for (size_t st = 0; st < 5; st++)
    for (int level = 1; level <= 9; level += 8)
      for (int mem = 1; mem <= 9; mem += 8)
        for (size_t b = 0; b < 3; b++) {
          z_stream s = {0};
          wsh_pmd rx;

          ck_assert_int_eq(deflateInit2(&s, level, Z_DEFLATED, -bitss[b], mem,
                                        strategies[st]),
                           Z_OK);
          conn_init(&rx, params(false, false, 15, bitss[b]), NULL, &m);
          for (int how = 0; how < 6; how++) {
            size_t len = 1000 + 7000 * (size_t)how;
            const uint8_t *msg = text + 200 * (size_t)how;
            size_t n = client_message(&s, msg, len, how, wire, 60000);

            expect_inflates_to(&rx, wire, n, msg, len, "foreign");
          }
          deflateEnd(&s);
          wsh_pmd_free(&rx);
        }
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(text);
  free(wire);
}
END_TEST

/* Not forced: incompressible messages come back NOT_SMALLER, are sent
 * plain, and the client's history (which never saw them) still matches. */
START_TEST(test_not_smaller_keeps_history) {
  wsh_zmem m;
  wsh_pmd tx, rx;
  wsh_zbuf z = {0}, out = {0};
  uint8_t *text = json_text(3000, 11), *bin = random_bytes(3000, 12);

  wsh_zmem_init(&m);
  conn_init(&tx, params(false, false, 15, 15), NULL, &m);
  conn_init(&rx, params(false, false, 15, 15), NULL, &m);
  ck_assert_int_eq(wsh_pmd_compress(&tx, text, 3000, false, &z), WSH_PMD_OK);
  ck_assert_uint_lt(z.len, 3000);
  expect_inflates_to(&rx, z.data, z.len, text, 3000, "first");
  ck_assert_int_eq(wsh_pmd_compress(&tx, bin, 3000, false, &z),
                   WSH_PMD_NOT_SMALLER);
  ck_assert_uint_le(z.cap, 3000 + 3); /* never more than the message */
  ck_assert_int_eq(wsh_pmd_compress(&tx, text, 3000, false, &z), WSH_PMD_OK);
  expect_inflates_to(&rx, z.data, z.len, text, 3000, "after a plain one");
  /* and compressible text after the history: much smaller the 2nd time */
  ck_assert_int_eq(wsh_pmd_compress(&tx, text, 3000, false, &z), WSH_PMD_OK);
  ck_assert_uint_lt(z.len, 100);
  expect_inflates_to(&rx, z.data, z.len, text, 3000, "from history");
  wsh_zbuf_free(&z, &m);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&rx);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(text);
  free(bin);
}
END_TEST

/* Two routes of different levels share the worker's deflater. */
START_TEST(test_shared_levels) {
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd a, b, rx;
  wsh_pmd_config cfg;
  wsh_pmd_params p = params(true, true, 15, 15);
  wsh_zbuf z = {0};
  uint8_t *text = json_text(20000, 3);
  size_t la, lb;

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  wsh_pmd_config_default(&cfg);
  cfg.level = 1;
  wsh_pmd_init(&a, &p, &cfg, &sh, &m);
  cfg.level = 9;
  wsh_pmd_init(&b, &p, &cfg, &sh, &m);
  conn_init(&rx, p, NULL, &m);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(wsh_pmd_compress(&a, text, 20000, false, &z), WSH_PMD_OK);
    la = z.len;
    expect_inflates_to(&rx, z.data, z.len, text, 20000, "level 1");
    ck_assert_int_eq(wsh_pmd_compress(&b, text, 20000, false, &z), WSH_PMD_OK);
    lb = z.len;
    expect_inflates_to(&rx, z.data, z.len, text, 20000, "level 9");
    ck_assert_uint_lt(lb, la);
  }
  ck_assert_ptr_nonnull(sh.deflater[15]);
  ck_assert_ptr_null(sh.deflater[14]);
  ck_assert_uint_eq(wsh_pmd_conn_bytes(&a), 0); /* shared: nothing held */
  wsh_zbuf_free(&z, &m);
  wsh_pmd_free(&a);
  wsh_pmd_free(&b);
  wsh_pmd_free(&rx);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(text);
}
END_TEST

/* The length of msg compressed by zlib itself as the shared deflaters used
 * to (raw, window 15, memLevel 8, sync flush, tail cut). */
static size_t zlib_len_15(const uint8_t *msg, size_t len, int level) {
  size_t cap = compressBound((uLong)len) + 16;
  uint8_t *out = malloc(cap);
  z_stream s = {0};

  ck_assert_int_eq(
      deflateInit2(&s, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  s.next_in = (Bytef *)(uintptr_t)msg;
  s.avail_in = (uInt)len;
  s.next_out = out;
  s.avail_out = (uInt)cap;
  ck_assert_int_eq(deflate(&s, Z_SYNC_FLUSH), Z_OK);
  ck_assert_uint_eq(s.avail_in, 0);
  deflateEnd(&s);
  free(out);
  return s.total_out - 4;
}

/* A shared message is compressed with the smallest window (9 to 13 bits,
 * at most the negotiated one) that reaches across it, its hash sized to
 * that window: for every negotiated window 9-15 and sizes on both sides of
 * each step, the deflater it takes, zlib's own inflater with the
 * negotiated window reading the result, and the size against zlib's at 15
 * bits and memLevel 8. */
START_TEST(test_shared_small_window) {
  static const size_t sizes[] = {1,    64,   200,  250,  251,  256,  762,  763,
                                 1786, 1787, 3834, 3835, 7930, 7931, 12000};
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c, rx;
  wsh_zbuf z = {0};

  ck_assert_int_eq(wsh_pmd_shared_bits(250, 15), 9);
  ck_assert_int_eq(wsh_pmd_shared_bits(251, 15), 10);
  ck_assert_int_eq(wsh_pmd_shared_bits(256, 15), 10);
  ck_assert_int_eq(wsh_pmd_shared_bits(7930, 15), 13);
  ck_assert_int_eq(wsh_pmd_shared_bits(7931, 15), 15);
  ck_assert_int_eq(wsh_pmd_shared_bits(7931, 14), 14);
  ck_assert_int_eq(wsh_pmd_shared_bits(256, 9), 9);
  ck_assert_int_eq(wsh_pmd_shared_bits(5000, 12), 12);
  ck_assert_int_eq(wsh_pmd_shared_mem_level(9), 3);
  ck_assert_int_eq(wsh_pmd_shared_mem_level(13), 7);
  ck_assert_int_eq(wsh_pmd_shared_mem_level(14), 8);
  ck_assert_int_eq(wsh_pmd_shared_mem_level(15), 8);
  wsh_zmem_init(&m);
  for (int bits = 9; bits <= 15; bits++) {
    wsh_pmd_shared_init(&sh, &m);
    conn_init(&c, params(true, true, bits, 15), &sh, &m);
    conn_init(&rx, params(true, true, bits, 15), NULL, &m);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
      for (int kind = 0; kind < 2; kind++) {
        size_t len = sizes[i];
        int w = wsh_pmd_shared_bits(len, bits);
        uint8_t *msg = kind ? random_bytes(len, len) : json_text(len, len);
        uint8_t *back;

        EXPECT(w >= 9 && w <= bits, "bits %d len %zu: window %d", bits, len, w);
        EXPECT(wsh_pmd_compress(&c, msg, len, true, &z) == WSH_PMD_OK,
               "bits %d len %zu: compress", bits, len);
        EXPECT(sh.deflater[w] != NULL, "bits %d len %zu: deflater %d unused",
               bits, len, w);
        back = ref_inflate(z.data, z.len, bits, len);
        EXPECT(!memcmp(back, msg, len), "bits %d len %zu: zlib reads back",
               bits, len);
        free(back);
        expect_inflates_to(&rx, z.data, z.len, msg, len, "shared small");
        if (!kind && bits == 15 && len >= 64) {
          size_t ref = zlib_len_15(msg, len, c.level);

          EXPECT(z.len * 100 <= ref * 101 + 200,
                 "len %zu: %zu bytes against zlib's %zu at 15 bits", len, z.len,
                 ref);
        }
        free(msg);
      }
    for (int w = WSH_PMD_SMALL_BITS_MAX + 1; w < bits; w++)
      EXPECT(sh.deflater[w] == NULL, "bits %d: deflater %d made", bits, w);
    wsh_pmd_free(&c);
    wsh_pmd_free(&rx);
    wsh_pmd_shared_free(&sh);
  }
  wsh_zbuf_free(&z, &m);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

/* A worker that has compressed only small messages on a 15-bit route holds
 * a small deflater: 256-byte messages no longer make (and at every message
 * clear the 64 KiB hash of) zlib's 15-bit, memLevel 8 one. */
START_TEST(test_shared_small_memory) {
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c;
  wsh_zbuf z = {0};
  uint8_t *text = json_text(256, 9);

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  conn_init(&c, params(true, true, 15, 15), &sh, &m);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(wsh_pmd_compress(&c, text, 256, false, &z), WSH_PMD_OK);
  ck_assert_ptr_null(sh.deflater[15]);
  ck_assert_ptr_null(sh.inflater);
  /* zconf.h: (1 << (10 + 2)) + (1 << (4 + 9)) = 12 KiB, and small objects */
  ck_assert_uint_lt(atomic_load(&m.zlib), 20 * 1024);
  wsh_zbuf_free(&z, &m);
  wsh_pmd_free(&c);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(text);
}
END_TEST

/* Compresses msg with zlib itself (raw, sync flush, tail cut) into out;
 * its length. */
static size_t ref_deflate(z_stream *s, const uint8_t *msg, size_t len,
                          uint8_t *out, size_t cap) {
  s->next_in = (Bytef *)(uintptr_t)msg;
  s->avail_in = (uInt)len;
  s->next_out = out;
  s->avail_out = (uInt)cap;
  ck_assert_int_eq(deflate(s, Z_SYNC_FLUSH), Z_OK);
  ck_assert_uint_gt(s->avail_out, 0);
  return cap - s->avail_out - 4;
}

/* Context takeover over many windows, every window size, fast and slow
 * levels, memLevels 5 and 8: each message inflates as sent (by a wsh_pmd
 * and by zlib with its history), a message sent twice in a row comes out
 * tiny the second time (the history a rebase keeps holds it), and the
 * output is zlib's own byte for byte at level 6 but not at level 1, where
 * the deflater restarts from the last quarter of its window instead of
 * letting zlib slide it (deflate.c, rebase). Sizes straddle the largest
 * message a rebase is tried for (wsize - wsize / 4 - 262). */
START_TEST(test_takeover_rebase) {
  static const int levels[] = {1, 3, 6};
  uint8_t *text = json_text(1 << 20, 21), *bin = random_bytes(4096, 22);
  uint8_t *wire = malloc(80000), *refw = malloc(80000);

  for (size_t l = 0; l < 3; l++)
    for (int mem = 5; mem <= 8; mem += 3)
      for (int bits = 9; bits <= 15; bits++) {
        size_t wsize = (size_t)1 << bits, edge = wsize - wsize / 4 - 262;
        const size_t sizes[] = {100, 700, edge, edge + 1, wsize / 3, 2 * wsize};
        wsh_zmem m;
        wsh_pmd_config cfg;
        wsh_pmd_params p = params(false, false, bits, bits);
        wsh_pmd tx, rx;
        wsh_zbuf z = {0};
        z_stream ref = {0}, inf = {0};
        size_t at = 0, sent = 0;
        bool differs = false;

        wsh_zmem_init(&m);
        wsh_pmd_config_default(&cfg);
        cfg.level = (uint8_t)levels[l];
        cfg.mem_level = (uint8_t)mem;
        wsh_pmd_init(&tx, &p, &cfg, NULL, &m);
        wsh_pmd_init(&rx, &p, &cfg, NULL, &m);
        ck_assert_int_eq(deflateInit2(&ref, levels[l], Z_DEFLATED, -bits, mem,
                                      Z_DEFAULT_STRATEGY),
                         Z_OK);
        ck_assert_int_eq(inflateInit2(&inf, -bits), Z_OK);
        for (size_t i = 0; sent < 10 * wsize; i++) {
          size_t len = sizes[i / 2 % 6];
          const uint8_t *msg;
          size_t rn, n;

          if (i % 2 == 0) /* each message twice in a row */
            at = (at + 7919 * (i + 1)) % ((1 << 20) - 2 * wsize);
          msg = text + at;
          ck_assert_int_eq(wsh_pmd_compress(&tx, msg, len, false, &z),
                           WSH_PMD_OK);
          n = z.len;
          expect_inflates_to(&rx, z.data, n, msg, len, "rebase: ours");
          memcpy(wire, z.data, n);
          memcpy(wire + n, "\x00\x00\xff\xff", 4);
          inf.next_in = wire;
          inf.avail_in = (uInt)(n + 4);
          inf.next_out = refw;
          inf.avail_out = 80000;
          ck_assert_int_eq(inflate(&inf, Z_SYNC_FLUSH), Z_OK);
          EXPECT(inf.avail_in == 0 && 80000 - inf.avail_out == len &&
                     !memcmp(refw, msg, len),
                 "level %d mem %d bits %d msg %zu: zlib inflates otherwise",
                 levels[l], mem, bits, i);
          if (i % 2 == 1 && len + 262 <= wsize / 4)
            EXPECT(n < len / 10 + 16,
                   "level %d mem %d bits %d: a repeat of %zu B took %zu",
                   levels[l], mem, bits, len, n);
          rn = ref_deflate(&ref, msg, len, refw, 80000);
          differs = differs || rn != n || memcmp(refw, z.data, n) != 0;
          sent += len;
        }
        EXPECT(differs == (levels[l] <= 3),
               "level %d mem %d bits %d: zlib's own output %s", levels[l], mem,
               bits, differs ? "differs" : "the same");
        /* incompressible in between: sent plain, history still in step */
        ck_assert_int_eq(wsh_pmd_compress(&tx, bin, 4096, false, &z),
                         WSH_PMD_NOT_SMALLER);
        ck_assert_int_eq(wsh_pmd_compress(&tx, text, 2000, false, &z),
                         WSH_PMD_OK);
        expect_inflates_to(&rx, z.data, z.len, text, 2000, "after plain");
        deflateEnd(&ref);
        inflateEnd(&inf);
        wsh_zbuf_free(&z, &m);
        wsh_pmd_free(&tx);
        wsh_pmd_free(&rx);
        ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
      }
  free(text);
  free(bin);
  free(wire);
  free(refw);
}
END_TEST

/* A message's first output buffer is sized from its compressed bytes, but
 * never past the limit and one chunk: a small limit still holds, and
 * messages that inflate to exactly 4 KiB, to the guess and past it come
 * out whole. */
START_TEST(test_inflate_first_room) {
  static const size_t sizes[] = {4095, 4096, 4097, 30000, 65536, 200000};
  uint8_t *text = json_text(200000, 31);
  wsh_zmem m;
  wsh_pmd tx, rx;
  wsh_zbuf z = {0}, out = {0};

  wsh_zmem_init(&m);
  conn_init(&tx, params(true, true, 15, 15), NULL, &m);
  conn_init(&rx, params(true, true, 15, 15), NULL, &m);
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    ck_assert_int_eq(wsh_pmd_compress(&tx, text, sizes[i], true, &z),
                     WSH_PMD_OK);
    expect_inflates_to(&rx, z.data, z.len, text, sizes[i], "first room");
    /* a limit under the message: TOO_BIG, the buffer within limit + chunk */
    ck_assert_int_eq(wsh_pmd_inflate(&rx, z.data, z.len, 1000, &out),
                     WSH_PMD_TOO_BIG);
    ck_assert_uint_le(out.cap, 1000 + WSH_PMD_CHUNK);
    wsh_zbuf_free(&out, &m);
  }
  wsh_zbuf_free(&z, &m);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&rx);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(text);
}
END_TEST

/* ---- fragmented input ---- */

static void inflate_cuts(wsh_pmd *c, const uint8_t *in, size_t len,
                         const size_t *cuts, size_t ncuts, wsh_zbuf *out,
                         wsh_pmd_result *r) {
  size_t start = 0;

  wsh_pmd_inflate_begin(c, out, 1 << 20);
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    uint8_t *piece = malloc(end - start + 1); /* exact size for ASan */

    memcpy(piece, in + start, end - start);
    wsh_pmd_inflate_feed(c, piece, end - start);
    free(piece);
    start = end;
  }
  *r = wsh_pmd_inflate_end(c);
}

START_TEST(test_every_split) {
  uint8_t *text = json_text(700, 21);
  wsh_zmem m;
  wsh_pmd tx, c;
  wsh_zbuf z = {0}, out = {0};
  wsh_pmd_result r;
  size_t cuts[2];

  wsh_zmem_init(&m);
  conn_init(&tx, params(true, true, 15, 15), NULL, &m);
  conn_init(&c, params(true, true, 15, 15), NULL, &m);
  ck_assert_int_eq(wsh_pmd_compress(&tx, text, 700, false, &z), WSH_PMD_OK);
  for (size_t i = 0; i <= z.len; i++) {
    cuts[0] = i;
    inflate_cuts(&c, z.data, z.len, cuts, 1, &out, &r);
    EXPECT(r == WSH_PMD_OK && out.len == 700 && !memcmp(out.data, text, 700),
           "split at %zu", i);
    for (size_t j = i; j <= z.len; j += 7) {
      cuts[1] = j;
      inflate_cuts(&c, z.data, z.len, cuts, 2, &out, &r);
      EXPECT(r == WSH_PMD_OK && out.len == 700, "split at %zu, %zu", i, j);
    }
  }
  { /* a byte at a time */
    size_t *all = malloc(z.len * sizeof *all);

    for (size_t i = 0; i < z.len; i++)
      all[i] = i;
    inflate_cuts(&c, z.data, z.len, all, z.len, &out, &r);
    ck_assert_int_eq(r, WSH_PMD_OK);
    ck_assert_mem_eq(out.data, text, 700);
    free(all);
  }
  wsh_zbuf_free(&z, &m);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&tx);
  wsh_pmd_free(&c);
  free(text);
}
END_TEST

/* ---- bad data, limits, bombs ---- */

START_TEST(test_corrupt) {
  static const uint8_t reserved_btype[] = {0xff, 0xff, 0xff};
  static const uint8_t bad_nlen[] = {0x00, 0x05, 0x00, 0x00, 0x00, 'H'};
  static const uint8_t far_back[] = {0x02, 0x18, 0x00}; /* a match first */
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c;
  wsh_zbuf out = {0};
  uint8_t *garbage = random_bytes(1000, 99);

  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  for (int shared = 0; shared < 2; shared++) {
    conn_init(&c, params(shared, shared, 15, 15), shared ? &sh : NULL, &m);
    ck_assert_int_eq(inflate_result(&c, reserved_btype, 3, 100),
                     WSH_PMD_BAD_DATA);
    ck_assert_int_eq(inflate_result(&c, bad_nlen, sizeof bad_nlen, 100),
                     WSH_PMD_BAD_DATA);
    ck_assert_int_eq(inflate_result(&c, far_back, sizeof far_back, 100),
                     WSH_PMD_BAD_DATA);
    ck_assert_int_eq(inflate_result(&c, garbage, 1000, 1 << 20),
                     WSH_PMD_BAD_DATA);
    /* cut short: the message does not end on a block boundary */
    ck_assert_int_eq(inflate_result(&c, hello_rfc, 6, 100), WSH_PMD_BAD_DATA);
    ck_assert_int_eq(inflate_result(&c, hello_rfc, 3, 100), WSH_PMD_BAD_DATA);
    /* BFINAL without the 0x00 the RFC asks for after it */
    ck_assert_int_eq(inflate_result(&c,
                                    (const uint8_t *)"\xf3\x48\xcd\xc9"
                                                     "\xc9\x07\x00",
                                    7, 100),
                     WSH_PMD_BAD_DATA);
    /* the error sticks: later feeds return it and take nothing */
    ck_assert_int_eq(wsh_pmd_inflate_begin(&c, &out, 100), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, reserved_btype, 3),
                     WSH_PMD_BAD_DATA);
    ck_assert_int_eq(wsh_pmd_inflate_feed(&c, hello_rfc, 7), WSH_PMD_BAD_DATA);
    ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_BAD_DATA);
    /* and the next message is fine */
    expect_inflates_to(&c, hello_rfc, sizeof hello_rfc, "Hello", 5, "after");
    wsh_pmd_free(&c);
  }
  wsh_zbuf_free(&out, &m);
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(garbage);
}
END_TEST

START_TEST(test_limit_exact) {
  uint8_t *text = json_text(50000, 5);
  wsh_zmem m;
  wsh_pmd c;
  wsh_zbuf z = {0}, out = {0};

  wsh_zmem_init(&m);
  conn_init(&c, params(true, true, 15, 15), NULL, &m);
  ck_assert_int_eq(wsh_pmd_compress(&c, text, 50000, false, &z), WSH_PMD_OK);
  ck_assert_int_eq(wsh_pmd_inflate(&c, z.data, z.len, 50000, &out), WSH_PMD_OK);
  ck_assert_uint_eq(out.len, 50000);
  ck_assert_int_eq(wsh_pmd_inflate(&c, z.data, z.len, 49999, &out),
                   WSH_PMD_TOO_BIG);
  ck_assert_uint_le(out.cap, 49999 + WSH_PMD_CHUNK);
  ck_assert_int_eq(wsh_pmd_close_code(WSH_PMD_TOO_BIG), 1009);
  wsh_zbuf_free(&z, &m);
  wsh_zbuf_free(&out, &m);
  wsh_pmd_free(&c);
  free(text);
}
END_TEST

/* 1 GiB of zeros deflated with zlib (raw, window 15): about 1 MB. Made
 * quickly: 32 KiB of zeros, then one sync-flushed chunk for 1 MiB of zeros
 * made against a window of zeros, repeated 1024 times (each copy finds the
 * same window of zeros before it). */
static uint8_t *make_bomb(size_t *len) {
  static uint8_t zeros[1 << 20];
  size_t cap = 2 << 20, chunk;
  uint8_t *out = malloc(cap), *p;
  z_stream s = {0};

  ck_assert_int_eq(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY),
                   Z_OK);
  s.next_in = zeros;
  s.avail_in = 32768;
  s.next_out = out;
  s.avail_out = (uInt)cap;
  ck_assert_int_eq(deflate(&s, Z_SYNC_FLUSH), Z_OK);
  p = s.next_out;
  ck_assert_int_eq(deflateReset(&s), Z_OK);
  ck_assert_int_eq(deflateSetDictionary(&s, zeros, 32768), Z_OK);
  s.next_in = zeros;
  s.avail_in = sizeof zeros;
  ck_assert_int_eq(deflate(&s, Z_SYNC_FLUSH), Z_OK);
  ck_assert_uint_eq(s.avail_in, 0);
  chunk = (size_t)(s.next_out - p);
  ck_assert_mem_eq(p + chunk - 4, "\x00\x00\xff\xff", 4);
  deflateEnd(&s);
  for (int i = 1; i < 1024; i++)
    memcpy(p + (size_t)i * chunk, p, chunk);
  *len = (size_t)(p - out) + 1024 * chunk - 4; /* the tail off */
  ck_assert_uint_le(*len + 4, cap);
  { /* zlib itself: the head and two chunks are 32 KiB + 2 MiB of zeros */
    uint8_t *two = ref_inflate(out, (size_t)(p - out) + 2 * chunk - 4, 15,
                               32768 + (2 << 20));

    for (size_t i = 0; i < 32768 + (2 << 20); i++)
      EXPECT(two[i] == 0, "bomb byte %zu", i);
    free(two);
  }
  return out;
}

START_TEST(test_inflate_bomb) {
  size_t len, limit = 1 << 20;
  uint8_t *bomb = make_bomb(&len);
  wsh_zmem m;
  wsh_pmd_shared sh;
  wsh_pmd c;
  wsh_zbuf out = {0};

  ck_assert_uint_lt(len, 1100 * 1000);
  ck_assert_uint_gt(len, 900 * 1000);
  wsh_zmem_init(&m);
  wsh_pmd_shared_init(&sh, &m);
  for (int shared = 0; shared < 2; shared++) {
    size_t state;

    conn_init(&c, params(shared, shared, 15, 15), shared ? &sh : NULL, &m);
    /* whole */
    ck_assert_int_eq(wsh_pmd_inflate(&c, bomb, len, limit, &out),
                     WSH_PMD_TOO_BIG);
    ck_assert_uint_gt(out.len, limit);
    ck_assert_uint_le(out.cap, limit + WSH_PMD_CHUNK);
    state = atomic_load(&m.zlib);
    ck_assert_uint_lt(state, 64 * 1024); /* an inflater: 32 KiB + ~7 KiB */
    ck_assert_uint_le(atomic_load(&m.peak),
                      limit + WSH_PMD_CHUNK + state + 32 * 1024);
    wsh_zbuf_free(&out, &m);
    /* fed as 64 KiB frames */
    atomic_store(&m.peak, wsh_zmem_in_use(&m));
    wsh_pmd_inflate_begin(&c, &out, limit);
    for (size_t off = 0; off < len; off += 65536) {
      wsh_pmd_result r = wsh_pmd_inflate_feed(
          &c, bomb + off, len - off < 65536 ? len - off : 65536);

      if (r != WSH_PMD_OK) {
        ck_assert_int_eq(r, WSH_PMD_TOO_BIG);
        ck_assert_uint_lt(off, 64 * 1024); /* it stopped at once */
        break;
      }
    }
    ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_TOO_BIG);
    ck_assert_uint_le(out.cap, limit + WSH_PMD_CHUNK);
    ck_assert_uint_le(atomic_load(&m.peak),
                      limit + WSH_PMD_CHUNK + state + 32 * 1024);
    wsh_zbuf_free(&out, &m);
    wsh_pmd_free(&c);
  }
  wsh_pmd_shared_free(&sh);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  free(bomb);
}
END_TEST

/* ---- memory ---- */

START_TEST(test_dedicated_memory) {
  uint8_t *text = json_text(65536, 8);

  /* memLevel 5 (a route's default) and 8 (zlib's) */
  for (int k = 0; k < 14; k++) {
    int bits = 9 + k % 7, mem = k < 7 ? 5 : 8;
    wsh_zmem m;
    wsh_pmd tx, rx;
    wsh_pmd_config cfg;
    wsh_pmd_params p = params(false, false, bits, bits);
    wsh_zbuf z = {0}, out = {0};
    size_t formula = wsh_pmd_formula_bytes(bits, bits, mem), live, trimmed;

    wsh_zmem_init(&m);
    wsh_pmd_config_default(&cfg);
    cfg.mem_level = (uint8_t)mem;
    wsh_pmd_init(&tx, &p, &cfg, NULL, &m);
    wsh_pmd_init(&rx, &p, &cfg, NULL, &m);
    ck_assert_uint_eq(wsh_pmd_conn_bytes(&tx), 0); /* nothing until used */
    ck_assert_int_eq(wsh_pmd_compress(&tx, text, 65536, false, &z), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate(&tx, z.data, z.len, 1 << 20, &out),
                     WSH_PMD_OK); /* tx inflates its own: both streams */
    ck_assert_int_eq(wsh_pmd_inflate(&rx, z.data, z.len, 1 << 20, &out),
                     WSH_PMD_OK);
    live = wsh_pmd_conn_bytes(&tx);
    /* zlib's formula plus its small objects (a few KiB each stream) */
    EXPECT(live >= formula && live <= formula + 16 * 1024,
           "bits %d: %zu bytes, formula %zu", bits, live, formula);
    wsh_pmd_trim(&tx);
    trimmed = wsh_pmd_conn_bytes(&tx);
    EXPECT(trimmed <= ((size_t)1 << bits), "bits %d: trimmed to %zu", bits,
           trimmed);
    fprintf(stderr,
            "dedicated, %2d-bit windows, memLevel %d: %7zu bytes live "
            "(formula %7zu), %6zu trimmed\n",
            bits, mem, live, formula, trimmed);
    /* the history survives the trim: the same text again refers to it */
    ck_assert_int_eq(wsh_pmd_compress(&rx, text, 65536, false, &z), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_compress(&rx, text, 65536, false, &z), WSH_PMD_OK);
    ck_assert_int_eq(wsh_pmd_inflate(&tx, z.data, z.len, 1 << 20, &out),
                     WSH_PMD_OK);
    ck_assert_uint_eq(out.len, 65536);
    ck_assert_mem_eq(out.data, text, 65536);
    wsh_zbuf_free(&z, &m);
    wsh_zbuf_free(&out, &m);
    wsh_pmd_free(&tx);
    wsh_pmd_free(&rx);
    ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
  }
  free(text);
}
END_TEST

START_TEST(test_trim_keeps_history) {
  static const uint8_t second[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
  wsh_zmem m;
  wsh_pmd c, nct;

  wsh_zmem_init(&m);
  conn_init(&c, params(false, false, 15, 15), NULL, &m);
  conn_init(&nct, params(false, true, 15, 15), NULL, &m);
  expect_inflates_to(&c, hello_rfc, sizeof hello_rfc, "Hello", 5, "first");
  wsh_pmd_trim(&c);
  ck_assert_uint_eq(wsh_pmd_conn_bytes(&c), 5); /* "Hello" is the history */
  expect_inflates_to(&c, second, sizeof second, "Hello", 5, "after trim");
  expect_inflates_to(&nct, hello_rfc, sizeof hello_rfc, "Hello", 5, "nct");
  wsh_pmd_trim(&nct);
  ck_assert_uint_eq(wsh_pmd_conn_bytes(&nct), 0);
  /* a trim in the middle of a message leaves the inflater alone */
  {
    wsh_zbuf out = {0};

    wsh_pmd_inflate_begin(&c, &out, 100);
    wsh_pmd_inflate_feed(&c, hello_rfc, 3);
    wsh_pmd_trim(&c);
    wsh_pmd_inflate_feed(&c, hello_rfc + 3, 4);
    ck_assert_int_eq(wsh_pmd_inflate_end(&c), WSH_PMD_OK);
    ck_assert_mem_eq(out.data, "Hello", 5);
    wsh_zbuf_free(&out, &m);
  }
  wsh_pmd_free(&c);
  wsh_pmd_free(&nct);
  ck_assert_uint_eq(wsh_zmem_in_use(&m), 0);
}
END_TEST

static Suite *deflate_suite(void) {
  Suite *s = suite_create("deflate");
  TCase *rfc = tcase_create("rfc7692"), *neg = tcase_create("negotiation");
  TCase *rt = tcase_create("round trips"), *bad = tcase_create("bad data");
  TCase *mem = tcase_create("memory");

  tcase_add_test(rfc, test_rfc_hello);
  tcase_add_test(rfc, test_rfc_fragmented_hello);
  tcase_add_test(rfc, test_rfc_shared_window);
  tcase_add_test(rfc, test_rfc_other_blocks);
  tcase_add_test(neg, test_negotiate_matrix);
  tcase_add_test(neg, test_config_check);
  tcase_set_timeout(rt, 120);
  tcase_add_test(rt, test_round_trips);
  tcase_add_test(rt, test_round_trips_big);
  tcase_add_test(rt, test_foreign_compressor);
  tcase_add_test(rt, test_not_smaller_keeps_history);
  tcase_add_test(rt, test_shared_levels);
  tcase_add_test(rt, test_shared_small_window);
  tcase_add_test(rt, test_takeover_rebase);
  tcase_add_test(rt, test_inflate_first_room);
  tcase_add_test(rt, test_every_split);
  tcase_set_timeout(bad, 60);
  tcase_add_test(bad, test_corrupt);
  tcase_add_test(bad, test_limit_exact);
  tcase_add_test(bad, test_inflate_bomb);
  tcase_add_test(mem, test_dedicated_memory);
  tcase_add_test(mem, test_trim_keeps_history);
  tcase_add_test(mem, test_shared_small_memory);
  suite_add_tcase(s, rfc);
  suite_add_tcase(s, neg);
  suite_add_tcase(s, rt);
  suite_add_tcase(s, bad);
  suite_add_tcase(s, mem);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(deflate_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
