/*
 * utf8.h - incremental UTF-8 validation (RFC 3629), as RFC 6455 requires for
 * text messages and close reasons. No I/O, no allocation.
 */
#ifndef WSH_UTF8_H
#define WSH_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Validation state carried across chunks (fragments, partial reads).
 * Zero-initialise it (or use WSH_UTF8_INIT) at the start of a message. */
typedef struct wsh_utf8 {
  uint8_t need; /* continuation bytes still expected for this code point */
  uint8_t lo;   /* allowed range of the next continuation byte */
  uint8_t hi;
} wsh_utf8;

#define WSH_UTF8_INIT                                                          \
  { 0, 0x80, 0xBF }

/* Validates `len` more bytes. Returns `len` when every byte so far can still
 * be part of valid UTF-8 (possibly ending inside a code point), or the offset
 * of the first byte that makes the input invalid (fail fast: overlong forms,
 * surrogates, code points above U+10FFFF, stray continuation bytes). After a
 * failure the state is undefined. */
size_t wsh_utf8_feed(wsh_utf8 *st, const uint8_t *s, size_t len);

/* True if the input so far ended on a code point boundary (a message may end
 * here). */
static inline bool wsh_utf8_complete(const wsh_utf8 *st) {
  return st->need == 0;
}

/* One-shot: true if s[0..len) is complete, valid UTF-8. */
bool wsh_utf8_valid(const uint8_t *s, size_t len);

#endif
