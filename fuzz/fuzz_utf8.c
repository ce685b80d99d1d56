/*
 * fuzz_utf8.c - the UTF-8 validator (host/utf8.c) against glibc's iconv
 * (UTF-8 to UTF-32LE). The input is the text. Both must give the same
 * verdict and, for invalid text, the same first bad byte; feeding the text
 * in two pieces (at every split of a short input, at a few of a long one)
 * or one byte at a time must change nothing.
 *
 * iconv says where a bad sequence starts (EILSEQ) or that the text ends
 * inside one (EINVAL); the validator names the first byte that no valid
 * text could have there. The reference finds that byte by asking iconv, for
 * each prefix of the sequence, whether some continuation bytes would make it
 * one valid code point. glibc refuses overlong forms, surrogates and code
 * points past U+10FFFF (checked on known cases when this was written); every
 * code point it decodes is checked again all the same: an iconv that decoded
 * a surrogate or a code point past U+10FFFF would make the reference
 * stricter, not the test weaker, and one that decoded an overlong form stops
 * the test with a message saying so.
 */
#include <errno.h>
#include <iconv.h>
#include <stdbool.h>

#include "fuzz.h"
#include "protocol/utf8.h"

/* What valid UTF-8 would make of s[0..len). */
typedef struct verdict {
  size_t bad;    /* the first byte that cannot be valid, or len */
  bool complete; /* bad == len and the text ends on a code point boundary */
} verdict;

typedef enum conv_result { CONV_OK, CONV_ILSEQ, CONV_INVAL } conv_result;

static iconv_t utf8_to_utf32(void) {
  static iconv_t cd = (iconv_t)-1;

  if (cd == (iconv_t)-1)
    cd = iconv_open("UTF-32LE", "UTF-8");
  FUZZ_CHECK(cd != (iconv_t)-1, "iconv_open(UTF-32LE, UTF-8)");
  iconv(cd, NULL, NULL, NULL, NULL); /* back to the initial state */
  return cd;
}

/* A Unicode scalar value that UTF-8 may carry. */
static bool is_scalar(uint32_t cp) {
  return cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

static size_t encoded_len(uint32_t cp) {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/* Converts s[0..len) with iconv. *stop: where iconv stopped (len on
 * success); cps/ncps: the code points decoded before it (cps holds len). */
static conv_result convert(const uint8_t *s, size_t len, size_t *stop,
                           uint32_t *cps, size_t *ncps) {
  iconv_t cd = utf8_to_utf32();
  char *in = (char *)s, *out = (char *)cps;
  size_t in_left = len, out_left = len * sizeof *cps;
  size_t r = iconv(cd, &in, &in_left, &out, &out_left);
  int err = errno;

  *stop = (size_t)(in - (char *)s);
  *ncps = (size_t)(out - (char *)cps) / sizeof *cps;
  if (r != (size_t)-1) {
    FUZZ_CHECK(*stop == len, "iconv stopped early without an error");
    return CONV_OK;
  }
  FUZZ_CHECK(err == EILSEQ || err == EINVAL, "iconv failed otherwise");
  return err == EILSEQ ? CONV_ILSEQ : CONV_INVAL;
}

/* True if s[0..k) (1 <= k <= 4) begins the encoding of one valid code
 * point: padded with continuation bytes 80 or BF to some length, iconv
 * decodes it whole into one scalar value encoded in exactly that length.
 * (The first continuation byte's allowed range always holds 80 or BF.) */
static bool starts_code_point(const uint8_t *s, size_t k) {
  static const uint8_t fill[2] = {0x80, 0xBF};
  uint8_t buf[4];
  uint32_t cps[4];

  memcpy(buf, s, k);
  for (size_t total = k; total <= 4; total++) {
    for (size_t f = 0; f < 2; f++) {
      size_t stop, n;

      memset(buf + k, fill[f], total - k);
      if (convert(buf, total, &stop, cps, &n) == CONV_OK && n == 1 &&
          is_scalar(cps[0]) && encoded_len(cps[0]) == total)
        return true;
    }
  }
  return false;
}

/* The first bad byte of the sequence starting at s[0..avail), or avail if
 * all of it can begin a valid code point. */
static size_t first_bad_in_sequence(const uint8_t *s, size_t avail) {
  size_t max = avail < 4 ? avail : 4;

  for (size_t k = 1; k <= max; k++)
    if (!starts_code_point(s, k))
      return k - 1;
  return avail;
}

/* The reference verdict on s[0..len). */
static verdict reference(const uint8_t *s, size_t len) {
  uint32_t *cps = malloc((len ? len : 1) * sizeof *cps);
  size_t stop, n, at = 0;
  conv_result r;
  verdict v = {len, true};

  FUZZ_CHECK(cps != NULL, "out of memory");
  r = convert(s, len, &stop, cps, &n);
  /* Every code point before the stop must be one UTF-8 allows. */
  for (size_t i = 0; i < n; i++) {
    if (!is_scalar(cps[i])) {
      r = CONV_ILSEQ;
      stop = at;
      break;
    }
    at += encoded_len(cps[i]);
  }
  if (r == CONV_OK) {
    FUZZ_CHECK(at == len, "iconv decoded a non-shortest form");
  } else {
    v.bad = stop + first_bad_in_sequence(s + stop, len - stop);
    v.complete = false;
    /* EILSEQ: a bad byte within the sequence; EINVAL: the text ends inside
     * it, whose bytes may or may not all be possible. */
    FUZZ_CHECK(r == CONV_INVAL || v.bad < len,
               "iconv refused a sequence that can begin a code point");
    FUZZ_CHECK(v.bad <= stop + 3, "bad byte past the sequence");
  }
  free(cps);
  return v;
}

/* Feeds s[0..len) as pieces cut at cuts[0..ncuts) (ascending), each in a
 * buffer of its exact size; checks each piece's answer against v. */
static void check_pieces(const uint8_t *s, size_t len, const size_t *cuts,
                         size_t ncuts, verdict v) {
  wsh_utf8 st = WSH_UTF8_INIT;
  size_t start = 0;

  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : len;
    uint8_t *piece = fuzz_dup(s + start, end - start);
    size_t got = wsh_utf8_feed(&st, piece, end - start);

    free(piece);
    if (v.bad < end) {
      FUZZ_CHECK(got == v.bad - start, "pieces: a different first bad byte");
      return;
    }
    FUZZ_CHECK(got == end - start, "pieces: refused a valid piece");
    start = end;
  }
  FUZZ_CHECK(wsh_utf8_complete(&st) == v.complete,
             "pieces: a different verdict on the end");
}

static void check_whole(const uint8_t *s, size_t len, verdict v) {
  wsh_utf8 st = WSH_UTF8_INIT;
  size_t got = wsh_utf8_feed(&st, s, len);

  if (got != v.bad)
    fprintf(stderr, "wsh_utf8_feed: %zu, reference: %zu (of %zu)\n", got, v.bad,
            len);
  FUZZ_CHECK(got == v.bad, "whole: a different first bad byte");
  if (v.bad == len)
    FUZZ_CHECK(wsh_utf8_complete(&st) == v.complete,
               "whole: a different verdict on the end");
  FUZZ_CHECK(wsh_utf8_valid(s, len) == (v.bad == len && v.complete),
             "wsh_utf8_valid disagrees");
}

static void check_byte_at_a_time(const uint8_t *s, size_t len, verdict v) {
  wsh_utf8 st = WSH_UTF8_INIT;

  for (size_t i = 0; i < len; i++) {
    uint8_t *b = fuzz_dup(s + i, 1);
    size_t got = wsh_utf8_feed(&st, b, 1);

    free(b);
    FUZZ_CHECK(got == (i == v.bad ? 0u : 1u), "bytes: a different verdict");
    if (i == v.bad)
      return;
  }
  FUZZ_CHECK(wsh_utf8_complete(&st) == v.complete,
             "bytes: a different verdict on the end");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  verdict v = reference(data, size);

  check_whole(data, size, v);
  check_byte_at_a_time(data, size, v);
  if (size <= 64) {
    for (size_t cut = 0; cut <= size; cut++)
      check_pieces(data, size, &cut, 1, v);
  } else {
    size_t cuts[3] = {size / 3, size / 2, 0};

    cuts[2] =
        cuts[1] + (data[0] | (size_t)data[size - 1] << 8) % (size - cuts[1]);
    check_pieces(data, size, cuts, 3, v);
    check_pieces(data, size, cuts + 2, 1, v);
  }
  return 0;
}
