/*
 * test_utf8.c - unit tests for host/utf8.c: Markus Kuhn's UTF-8 decoder
 * stress-test categories written out as bytes, with the exact offset of the
 * first bad byte; the same verdict for every split of the input; the ASCII
 * word fast path with a bad byte at every position and alignment; and a
 * comparison with a slow reference decoder over short byte strings.
 */
#include "protocol/utf8.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ck_assert reports every passing check to the parent process; this one
 * costs nothing when it passes, for the tight loops below. */
#define EXPECT(cond, ...)                                                      \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg(__VA_ARGS__);                                               \
  } while (0)

#define VALID (-1L) /* complete, valid UTF-8 */
#define TRUNC (-2L) /* no bad byte, but ends inside a code point */

struct ucase {
  const char *name;
  const uint8_t *s;
  size_t len;
  long expect; /* offset of the first bad byte, VALID or TRUNC */
};

#define B(...)                                                                 \
  (const uint8_t[]) {                                                          \
    __VA_ARGS__                                                                \
  }
#define UC(name, expect, ...)                                                  \
  { name, B(__VA_ARGS__), sizeof(B(__VA_ARGS__)), expect }

static const struct ucase cases[] = {
    /* 1: some correct UTF-8 text */
    UC("kosme", VALID, 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC,
       0xCE, 0xB5),
    UC("ascii", VALID, 'H', 'e', 'l', 'l', 'o', ' ', 0x00, 0x7F),
    /* 2.1: first code point of each length */
    UC("U+0000", VALID, 0x00),
    UC("U+0080", VALID, 0xC2, 0x80),
    UC("U+0800", VALID, 0xE0, 0xA0, 0x80),
    UC("U+10000", VALID, 0xF0, 0x90, 0x80, 0x80),
    UC("5-byte first", 0, 0xF8, 0x88, 0x80, 0x80, 0x80),
    UC("6-byte first", 0, 0xFC, 0x84, 0x80, 0x80, 0x80, 0x80),
    /* 2.2: last code point of each length */
    UC("U+007F", VALID, 0x7F),
    UC("U+07FF", VALID, 0xDF, 0xBF),
    UC("U+FFFF", VALID, 0xEF, 0xBF, 0xBF),
    UC("U+1FFFFF", 0, 0xF7, 0xBF, 0xBF, 0xBF),
    /* 2.3: other boundaries */
    UC("U+D7FF", VALID, 0xED, 0x9F, 0xBF),
    UC("U+E000", VALID, 0xEE, 0x80, 0x80),
    UC("U+FFFD", VALID, 0xEF, 0xBF, 0xBD),
    UC("U+10FFFF", VALID, 0xF4, 0x8F, 0xBF, 0xBF),
    UC("U+110000", 1, 0xF4, 0x90, 0x80, 0x80),
    UC("F5 lead", 0, 0xF5, 0x80, 0x80, 0x80),
    UC("mixed", VALID, 'a', 0xC2, 0x80, 'b', 0xE0, 0xA0, 0x80, 'c', 0xF0, 0x90,
       0x80, 0x80, 'd', 0xF4, 0x8F, 0xBF, 0xBF),
    /* 3.1: unexpected continuation bytes */
    UC("lone 80", 0, 0x80),
    UC("lone BF", 0, 0xBF),
    UC("80 BF", 0, 0x80, 0xBF),
    UC("a then 80", 1, 'a', 0x80),
    UC("U+0080 then 80", 2, 0xC2, 0x80, 0x80),
    UC("U+FFFF then BF", 3, 0xEF, 0xBF, 0xBF, 0xBF),
    UC("U+10FFFF then 80", 4, 0xF4, 0x8F, 0xBF, 0xBF, 0x80),
    /* 3.2: lonely start characters */
    UC("C0 space", 0, 0xC0, 0x20),
    UC("C1 space", 0, 0xC1, 0x20),
    UC("C2 space", 1, 0xC2, 0x20),
    UC("DF space", 1, 0xDF, 0x20),
    UC("E0 space", 1, 0xE0, 0x20),
    UC("EF space", 1, 0xEF, 0x20),
    UC("F0 space", 1, 0xF0, 0x20),
    UC("F4 space", 1, 0xF4, 0x20),
    UC("F8 space", 0, 0xF8, 0x20),
    UC("FC space", 0, 0xFC, 0x20),
    /* 3.3: last continuation byte missing */
    UC("C2 at end", TRUNC, 0xC2),
    UC("E0 A0 at end", TRUNC, 0xE0, 0xA0),
    UC("E1 at end", TRUNC, 'x', 0xE1),
    UC("F0 90 80 at end", TRUNC, 0xF0, 0x90, 0x80),
    UC("F4 8F BF at end", TRUNC, 0xF4, 0x8F, 0xBF),
    UC("DF at end", TRUNC, 0xDF),
    UC("EF BF at end", TRUNC, 0xEF, 0xBF),
    UC("E0 A0 then A", 2, 0xE0, 0xA0, 0x41),
    UC("F0 90 80 then A", 3, 0xF0, 0x90, 0x80, 0x41),
    /* 3.4: concatenated incomplete sequences */
    UC("C2 E0 A0", 1, 0xC2, 0xE0, 0xA0),
    UC("E0 A0 F0 90 80", 2, 0xE0, 0xA0, 0xF0, 0x90, 0x80),
    UC("F0 90 80 DF", 3, 0xF0, 0x90, 0x80, 0xDF),
    /* 3.5: impossible bytes */
    UC("FE", 0, 0xFE),
    UC("FF", 0, 0xFF),
    UC("FE FE FF FF", 0, 0xFE, 0xFE, 0xFF, 0xFF),
    UC("ab FF", 2, 'a', 'b', 0xFF),
    /* 4.1: overlong '/' */
    UC("overlong / 2", 0, 0xC0, 0xAF),
    UC("overlong / 3", 1, 0xE0, 0x80, 0xAF),
    UC("overlong / 4", 1, 0xF0, 0x80, 0x80, 0xAF),
    UC("overlong / 5", 0, 0xF8, 0x80, 0x80, 0x80, 0xAF),
    UC("overlong / 6", 0, 0xFC, 0x80, 0x80, 0x80, 0x80, 0xAF),
    /* 4.2: largest overlong of each length */
    UC("overlong U+7F", 0, 0xC1, 0xBF),
    UC("overlong U+7FF", 1, 0xE0, 0x9F, 0xBF),
    UC("overlong U+FFFF", 1, 0xF0, 0x8F, 0xBF, 0xBF),
    /* 4.3: overlong NUL */
    UC("overlong NUL 2", 0, 0xC0, 0x80),
    UC("overlong NUL 3", 1, 0xE0, 0x80, 0x80),
    UC("overlong NUL 4", 1, 0xF0, 0x80, 0x80, 0x80),
    /* 5.1: single UTF-16 surrogates */
    UC("U+D800", 1, 0xED, 0xA0, 0x80),
    UC("U+DB7F", 1, 0xED, 0xAD, 0xBF),
    UC("U+DB80", 1, 0xED, 0xAE, 0x80),
    UC("U+DBFF", 1, 0xED, 0xAF, 0xBF),
    UC("U+DC00", 1, 0xED, 0xB0, 0x80),
    UC("U+DF80", 1, 0xED, 0xBE, 0x80),
    UC("U+DFFF", 1, 0xED, 0xBF, 0xBF),
    UC("a U+D800", 2, 'a', 0xED, 0xA0, 0x80),
    /* 5.2: paired surrogates */
    UC("U+D800 U+DC00", 1, 0xED, 0xA0, 0x80, 0xED, 0xB0, 0x80),
    UC("U+D800 U+DFFF", 1, 0xED, 0xA0, 0x80, 0xED, 0xBF, 0xBF),
    UC("U+DB7F U+DC00", 1, 0xED, 0xAD, 0xBF, 0xED, 0xB0, 0x80),
    UC("U+DBFF U+DFFF", 1, 0xED, 0xAF, 0xBF, 0xED, 0xBF, 0xBF),
    /* 5.3: noncharacters are valid UTF-8 */
    UC("U+FFFE", VALID, 0xEF, 0xBF, 0xBE),
    UC("U+FDD0", VALID, 0xEF, 0xB7, 0x90),
    UC("U+10FFFE", VALID, 0xF4, 0x8F, 0xBF, 0xBE),
};

#define NCASES (sizeof cases / sizeof cases[0])

/* Feeds s in the chunks ending at cuts[0..ncuts) and at len, each chunk in
 * a buffer of its own exact size, so that an over-read trips ASan. */
static long verdict_chunks(const uint8_t *s, size_t len, const size_t *cuts,
                           size_t ncuts) {
  wsh_utf8 st = {0}; /* zero-initialised, as utf8.h allows */
  size_t start = 0;

  for (size_t c = 0; c <= ncuts; c++) {
    size_t end = c < ncuts ? cuts[c] : len, n = end - start, r;
    uint8_t *chunk = malloc(n ? n : 1);

    memcpy(chunk, s + start, n);
    r = wsh_utf8_feed(&st, chunk, n);
    free(chunk);
    EXPECT(r <= n, "feed returned %zu > %zu", r, n);
    if (r < n)
      return (long)(start + r);
    start = end;
  }
  return wsh_utf8_complete(&st) ? VALID : TRUNC;
}

/* The verdict for s fed in one piece. */
static long verdict(const uint8_t *s, size_t len) {
  wsh_utf8 st = WSH_UTF8_INIT;
  size_t r = wsh_utf8_feed(&st, s, len);

  if (r < len)
    return (long)r;
  return wsh_utf8_complete(&st) ? VALID : TRUNC;
}

START_TEST(test_kuhn_cases) {
  for (size_t i = 0; i < NCASES; i++) {
    const struct ucase *c = &cases[i];
    wsh_utf8 st = WSH_UTF8_INIT;
    size_t r = wsh_utf8_feed(&st, c->s, c->len);

    ck_assert_msg(verdict(c->s, c->len) == c->expect, "%s: got %ld, want %ld",
                  c->name, verdict(c->s, c->len), c->expect);
    ck_assert_msg(wsh_utf8_valid(c->s, c->len) == (c->expect == VALID),
                  "%s: wsh_utf8_valid", c->name);
    if (c->expect >= 0)
      ck_assert_uint_eq(r, (size_t)c->expect);
    else
      ck_assert_uint_eq(r, c->len);
  }
}
END_TEST

START_TEST(test_every_continuation_alone) {
  for (unsigned b = 0x80; b <= 0xBF; b++) {
    uint8_t s[3] = {'a', (uint8_t)b, 'a'};

    ck_assert_int_eq(verdict(s + 1, 1), 0);
    ck_assert_int_eq(verdict(s, 3), 1);
  }
}
END_TEST

/* Each lead byte alone, then followed by the lowest continuation byte. */
START_TEST(test_every_lead_byte) {
  for (unsigned b = 0xC0; b <= 0xFF; b++) {
    bool lead = b >= 0xC2 && b <= 0xF4;
    uint8_t s[2] = {(uint8_t)b, 0x80};
    long low = (b == 0xE0 || b == 0xF0) ? 1 : (b <= 0xDF ? VALID : TRUNC);

    ck_assert_msg(verdict(s, 1) == (lead ? TRUNC : 0), "lead %02X", b);
    ck_assert_msg(verdict(s, 2) == (lead ? low : 0), "lead %02X 80", b);
  }
}
END_TEST

START_TEST(test_empty) {
  wsh_utf8 st = WSH_UTF8_INIT;

  ck_assert_uint_eq(wsh_utf8_feed(&st, (const uint8_t *)"", 0), 0);
  ck_assert(wsh_utf8_complete(&st));
  ck_assert(wsh_utf8_valid((const uint8_t *)"", 0));
}
END_TEST

/* Every two-chunk split, and one byte at a time, gives the whole verdict. */
START_TEST(test_split_every_offset) {
  size_t cuts[16];

  for (size_t i = 0; i < NCASES; i++) {
    const struct ucase *c = &cases[i];

    for (size_t k = 0; k <= c->len; k++) {
      cuts[0] = k;
      EXPECT(verdict_chunks(c->s, c->len, cuts, 1) == c->expect,
             "%s split at %zu", c->name, k);
    }
    for (size_t k = 0; k + 1 < c->len; k++)
      cuts[k] = k + 1;
    ck_assert_msg(verdict_chunks(c->s, c->len, cuts, c->len ? c->len - 1 : 0) ==
                      c->expect,
                  "%s byte at a time", c->name);
  }
}
END_TEST

/* All three-chunk splits of each case. */
START_TEST(test_split_three_chunks) {
  size_t cuts[2];

  for (size_t i = 0; i < NCASES; i++) {
    const struct ucase *c = &cases[i];

    for (cuts[0] = 0; cuts[0] <= c->len; cuts[0]++)
      for (cuts[1] = cuts[0]; cuts[1] <= c->len; cuts[1]++)
        EXPECT(verdict_chunks(c->s, c->len, cuts, 2) == c->expect,
               "%s split at %zu,%zu", c->name, cuts[0], cuts[1]);
  }
}
END_TEST

/* A bad byte at every position of a long ASCII run, at every alignment of
 * the start of the input: exercises the edges of the 8-byte fast path. */
START_TEST(test_ascii_bad_at_every_position) {
  static const uint8_t bad[] = {0x80, 0xBF, 0xC0, 0xC1, 0xF5, 0xFF};
  uint8_t buf[128];
  size_t cut;

  for (size_t align = 0; align < 8; align++)
    for (size_t len = 41; len <= 64; len += 23)
      for (size_t p = 0; p <= 40; p++)
        for (size_t b = 0; b < sizeof bad; b++) {
          uint8_t *s = buf + align;

          memset(s, 'a', len);
          s[p] = bad[b];
          EXPECT(verdict(s, len) == (long)p, "bad %02X at %zu", bad[b], p);
          cut = (p * 7 + b) % (len + 1);
          EXPECT(verdict_chunks(s, len, &cut, 1) == (long)p,
                 "bad %02X at %zu, split at %zu", bad[b], p, cut);
        }
}
END_TEST

/* A valid sequence at every position of an ASCII run, then a bad
 * continuation after it, then a sequence cut off by the end. */
START_TEST(test_ascii_then_multibyte) {
  static const uint8_t euro[] = {0xE2, 0x82, 0xAC};
  uint8_t buf[80];

  for (size_t align = 0; align < 8; align++)
    for (size_t p = 0; p <= 40; p++) {
      uint8_t *s = buf + align;

      memset(s, 'z', 60);
      memcpy(s + p, euro, 3);
      EXPECT(verdict(s, 60) == VALID, "euro at %zu", p);
      s[p + 2] = 'z'; /* E2 82 'z' */
      EXPECT(verdict(s, 60) == (long)p + 2, "E2 82 z at %zu", p);
      memcpy(s + p, euro, 3);
      EXPECT(verdict(s, p + 2) == TRUNC, "E2 82 at the end, %zu", p);
    }
}
END_TEST

START_TEST(test_long_mixed_text) {
  static const char unit[] = "plain ASCII run of text, "
                             "\xC3\xA9\xC3\xA8 \xE2\x82\xAC \xF0\x9F\x98\x80 "
                             "\xE4\xB8\xAD\xE6\x96\x87 ";
  size_t ulen = sizeof unit - 1, n = 200, len = ulen * n;
  uint8_t *s = malloc(len);
  size_t cut;

  for (size_t i = 0; i < n; i++)
    memcpy(s + i * ulen, unit, ulen);
  ck_assert(wsh_utf8_valid(s, len));
  for (cut = 0; cut < len; cut += 37)
    EXPECT(verdict_chunks(s, len, &cut, 1) == VALID, "split at %zu", cut);
  s[len - 1] = 0x80; /* a stray continuation after the last code point */
  ck_assert_int_eq(verdict(s, len), (long)len - 1);
  s[len - 1] = 0xED; /* a code point cut off by the end */
  ck_assert_int_eq(verdict(s, len), TRUNC);
  free(s);
}
END_TEST

/* The slow reference: is s[0..m) the start of some valid UTF-8 string?
 * Decodes by arithmetic and checks that the code point, or the range of
 * code points a cut-off sequence could still become, is allowed. */
static bool ref_range_ok(uint32_t lo, uint32_t hi, uint32_t min) {
  if (lo < min)
    lo = min;
  if (hi > 0x10FFFF)
    hi = 0x10FFFF;
  if (lo > hi)
    return false;
  return !(lo >= 0xD800 && hi <= 0xDFFF);
}

static bool ref_prefix_ok(const uint8_t *s, size_t m) {
  static const uint32_t min[4] = {0, 0x80, 0x800, 0x10000};
  size_t i = 0, n, have;
  uint32_t cp;

  while (i < m) {
    uint8_t c = s[i];

    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0)
      n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      n = 3, cp = c & 0x07;
    else
      return false;
    have = m - i - 1 < n ? m - i - 1 : n;
    for (size_t j = 1; j <= have; j++) {
      if ((s[i + j] & 0xC0) != 0x80)
        return false;
      cp = cp << 6 | (s[i + j] & 0x3F);
    }
    cp <<= 6 * (n - have);
    if (!ref_range_ok(cp, cp | ((1u << (6 * (n - have))) - 1), min[n]))
      return false;
    i += 1 + have;
  }
  return true;
}

static long ref_verdict(const uint8_t *s, size_t len) {
  for (size_t m = 1; m <= len; m++)
    if (!ref_prefix_ok(s, m))
      return (long)m - 1;
  for (size_t k = 0; k < 4 && k < len; k++) {
    uint8_t c = s[len - 1 - k];
    size_t seq = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;

    if (c < 0x80 || c >= 0xC0)
      return seq > k + 1 ? TRUNC : VALID;
  }
  return VALID;
}

static const uint8_t *interesting(size_t *n) {
  static uint8_t set[80];
  static const uint8_t extra[] = {0x00, 0x41, 0x7F, 0xC0, 0xC1, 0xC2, 0xDF,
                                  0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  size_t k = 0;

  for (unsigned b = 0x80; b <= 0xBF; b++)
    set[k++] = (uint8_t)b;
  memcpy(set + k, extra, sizeof extra);
  *n = k + sizeof extra;
  return set;
}

static void compare_ref(const uint8_t *s, size_t len) {
  long want = ref_verdict(s, len), got = verdict(s, len);

  EXPECT(got == want, "%02X %02X %02X %02X (len %zu): got %ld want %ld", s[0],
         len > 1 ? s[1] : 0, len > 2 ? s[2] : 0, len > 3 ? s[3] : 0, len, got,
         want);
}

START_TEST(test_reference_short_strings) {
  uint8_t s[4];
  size_t ni;
  const uint8_t *set = interesting(&ni);

  for (unsigned a = 0; a < 256; a++) {
    s[0] = (uint8_t)a;
    compare_ref(s, 1);
    for (unsigned b = 0; b < 256; b++) {
      s[1] = (uint8_t)b;
      compare_ref(s, 2);
      if (a < 0xC0)
        continue;
      for (size_t c = 0; c < ni; c++) {
        s[2] = set[c];
        compare_ref(s, 3);
        if (a >= 0xF0 && (c % 8 == 0 || c >= 64))
          for (size_t e = 0; e < ni; e += 3) {
            s[3] = set[e];
            compare_ref(s, 4);
          }
      }
    }
  }
}
END_TEST

static Suite *utf8_suite(void) {
  Suite *s = suite_create("utf8");
  TCase *tc = tcase_create("core");

  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_kuhn_cases);
  tcase_add_test(tc, test_every_continuation_alone);
  tcase_add_test(tc, test_every_lead_byte);
  tcase_add_test(tc, test_empty);
  tcase_add_test(tc, test_split_every_offset);
  tcase_add_test(tc, test_split_three_chunks);
  tcase_add_test(tc, test_ascii_bad_at_every_position);
  tcase_add_test(tc, test_ascii_then_multibyte);
  tcase_add_test(tc, test_long_mixed_text);
  tcase_add_test(tc, test_reference_short_strings);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(utf8_suite());
  int failed;

  srunner_run_all(sr, CK_ENV); /* CK_VERBOSITY=verbose lists each test */
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
