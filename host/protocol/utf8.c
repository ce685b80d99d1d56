/*
 * utf8.c - incremental UTF-8 validation (RFC 3629) for text messages and
 * close reasons. A lead byte fixes how many continuation bytes follow and the
 * range the first of them may take (which rules out overlong forms,
 * surrogates and code points above U+10FFFF); every later continuation byte
 * must be in 80..BF. Runs of ASCII are skipped a word at a time, and a code
 * point that lies whole in the input is checked in one go.
 */
#include "protocol/utf8.h"

#include <string.h>

#define ASCII_WORD_MASK 0x8080808080808080ULL

/* Sets up the state for the continuation bytes after lead byte c. Returns
 * false if c can never start a code point (80..C1, F5..FF). */
static bool utf8_lead(wsh_utf8 *st, uint8_t c) {
  st->lo = 0x80;
  st->hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    st->need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    st->need = 2;
    if (c == 0xE0)
      st->lo = 0xA0; /* below: overlong */
    else if (c == 0xED)
      st->hi = 0x9F; /* above: UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    st->need = 3;
    if (c == 0xF0)
      st->lo = 0x90; /* below: overlong */
    else if (c == 0xF4)
      st->hi = 0x8F; /* above: beyond U+10FFFF */
  } else {
    return false;
  }
  return true;
}

/* Number of leading bytes of s[0..len) that are ASCII, counted a word at a
 * time and then byte by byte. */
static size_t utf8_ascii_run(const uint8_t *s, size_t len) {
  size_t i = 0;
  uint64_t w;

  while (len - i >= 8) {
    memcpy(&w, s + i, 8);
    if (w & ASCII_WORD_MASK)
      break;
    i += 8;
  }
  while (i < len && s[i] < 0x80)
    i++;
  return i;
}

/* Checks the continuation bytes s[0..n) expected by st (n <= st->need).
 * Returns n, or the offset of the first bad one. */
static size_t utf8_cont(wsh_utf8 *st, const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] < st->lo || s[i] > st->hi)
      return i;
    st->need--;
    st->lo = 0x80;
    st->hi = 0xBF;
  }
  return n;
}

size_t wsh_utf8_feed(wsh_utf8 *st, const uint8_t *s, size_t len) {
  wsh_utf8 cur = *st; /* a local copy, so that it can live in registers */
  size_t i = 0, n, ok;

  while (i < len) {
    if (cur.need == 0) {
      i += utf8_ascii_run(s + i, len - i);
      if (i == len)
        break;
      if (!utf8_lead(&cur, s[i]))
        return i;
      i++;
    }
    n = len - i < cur.need ? len - i : cur.need;
    ok = utf8_cont(&cur, s + i, n);
    if (ok < n)
      return i + ok;
    i += n;
  }
  *st = cur;
  return len;
}

bool wsh_utf8_valid(const uint8_t *s, size_t len) {
  wsh_utf8 st = WSH_UTF8_INIT;

  return wsh_utf8_feed(&st, s, len) == len && wsh_utf8_complete(&st);
}
