/*
 * fuzz.h - what the fuzz targets share: the libFuzzer entry point (which
 * replay_main.c also calls), a check that holds in every build type (the
 * fuzz build is RelWithDebInfo, where assert() is gone), and exact-size
 * copies, so that a read past the end of a piece of input trips ASan.
 */
#ifndef WSH_FUZZ_H
#define WSH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts, which libFuzzer and the replay test both report as a crash. */
#define FUZZ_CHECK(cond, what)                                                 \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s (%s)\n", __FILE__, __LINE__,    \
              what, #cond);                                                    \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/* A malloc'd copy of p[0..n) in a block of exactly n bytes. */
static inline uint8_t *fuzz_dup(const void *p, size_t n) {
  uint8_t *c = malloc(n ? n : 1);

  FUZZ_CHECK(c != NULL, "out of memory");
  if (n)
    memcpy(c, p, n);
  return c;
}

/* xorshift32: chunk sizes and masking keys drawn from the input. */
static inline uint32_t fuzz_rand(uint32_t *s) {
  uint32_t x = *s ? *s : 0x9E3779B9u;

  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  *s = x;
  return x;
}

#endif
