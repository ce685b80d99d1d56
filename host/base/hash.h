/*
 * hash.h - the one string hash the host's tables use: 64-bit FNV-1a, over a
 * NUL-terminated string or over n bytes (both give the same value for the
 * same bytes). Not for anything a peer could exploit beyond chain length:
 * every table hashed with it bounds its entries.
 */
#ifndef WSH_HASH_H
#define WSH_HASH_H

#include <stddef.h>
#include <stdint.h>

#define WSH_FNV_OFFSET 1469598103934665603ull
#define WSH_FNV_PRIME 1099511628211ull

/* FNV-1a of the n bytes at s. */
static inline uint64_t wsh_hash_mem(const void *s, size_t n) {
  const uint8_t *p = s;
  uint64_t h = WSH_FNV_OFFSET;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * WSH_FNV_PRIME;
  return h;
}

/* FNV-1a of the string s, its NUL not included. */
static inline uint64_t wsh_hash_str(const char *s) {
  uint64_t h = WSH_FNV_OFFSET;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * WSH_FNV_PRIME;
  return h;
}

#endif
