/*
 * copy.h - memcpy for payloads, without glibc's slow case.
 *
 * glibc (2.36, Debian 12) copies a block longer than its
 * rep_movsb_threshold (2,112 bytes on CPUs with FSRM) with `rep movsb`. On
 * the AMD EPYC this project is measured on, `rep movsb` runs at about
 * 3.5 GB/s instead of 90 when the destination lies 1 to 15 bytes past the
 * source modulo 4 KiB (4K aliasing: the stores seem to overlap the loads
 * still in flight); Debian 12's glibc does not avoid it here. A payload
 * copied behind a frame header lands there often: a 16 KiB echo read at
 * offset 8 of the read buffer (its masked header) and staged at offset 4
 * (the server's header) of the next message's place in the staging area.
 * bench/PERFORMANCE.md, "16 KiB echo: a copy at the wrong distance".
 *
 * wsh_copy() is memcpy, but at such a distance it copies in pieces
 * below the threshold, which glibc does with vector loads and stores at
 * full speed. Other copies go to memcpy as they are.
 */
#ifndef WSH_BASE_COPY_H
#define WSH_BASE_COPY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Under glibc's rep_movsb_threshold on every x86 it chooses (2,112 with
 * FSRM, 2,048 x VEC_SIZE / 16 otherwise). */
#define WSH_COPY_PIECE 2048u
/* The distances (modulo 4 KiB) copied in pieces: those measured slow
 * (1-15) with room for CPUs whose window is as wide as a cache line. */
#define WSH_COPY_NEAR 64u

static inline void wsh_copy(void *dst, const void *src, size_t n) {
  uintptr_t gap = ((uintptr_t)dst - (uintptr_t)src) & 4095u;
  if (n <= WSH_COPY_PIECE || gap == 0 || gap >= WSH_COPY_NEAR) {
    memcpy(dst, src, n);
    return;
  }
  uint8_t *d = dst;
  const uint8_t *s = src;
  /* hidden from the compiler, which would inline a copy of a known size
   * as `rep movsq`, as slow here: glibc's memcpy is called */
  size_t piece = WSH_COPY_PIECE;
  __asm__("" : "+r"(piece));
  for (; n > piece; n -= piece) {
    memcpy(d, s, piece);
    d += piece;
    s += piece;
  }
  memcpy(d, s, n);
}

#endif
