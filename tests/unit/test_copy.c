/*
 * test_copy.c - unit tests for host/base/copy.h (wsh_copy: memcpy, in
 * pieces at the distances where glibc's `rep movsb` is slow) and
 * host/base/heap.h (malloc's thresholds and giving the heap back).
 */
#include <check.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "base/copy.h"
#include "base/heap.h"

#define WSH_TEST_NAME "test_copy"
#include "testutil.h"

#define AREA (80 * 1024)

/* wsh_copy at every size class and distance: the bytes copied are the
 * source's, and not one byte around them changes. */
START_TEST(copy_is_memcpy) {
  static const size_t sizes[] = {0,    1,    15,    2047,  2048,     2049,
                                 4095, 4096, 16384, 16391, 65536 + 3};
  static const size_t gaps[] = {0, 1, 4, 8, 15, 16, 63, 64, 100, 4092, 4095};
  uint8_t *src = aligned_alloc(4096, AREA);
  uint8_t *dst = aligned_alloc(4096, AREA + 8192);
  ck_assert_ptr_nonnull(src);
  ck_assert_ptr_nonnull(dst);
  static uint8_t guard[AREA + 8192];
  memset(guard, 0xA5, sizeof(guard));
  for (size_t i = 0; i < AREA; i++)
    src[i] = (uint8_t)(i * 2654435761u >> 11);
  for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
    for (size_t gi = 0; gi < sizeof(gaps) / sizeof(gaps[0]); gi++) {
      for (size_t soff = 0; soff < 3; soff++) { /* the source unaligned too */
        size_t n = sizes[si];
        const uint8_t *s = src + soff * 7;
        /* dst - s == gaps[gi] modulo 4 KiB */
        size_t doff = (gaps[gi] + soff * 7) % 4096 + 4096;
        uint8_t *d = dst + doff;
        memset(dst, 0xA5, AREA + 8192);
        wsh_copy(d, s, n);
        ck_assert_uint_eq(((uintptr_t)d - (uintptr_t)s) & 4095u, gaps[gi]);
        ck_assert_msg(memcmp(d, s, n) == 0, "size %zu gap %zu: differs", n,
                      gaps[gi]);
        ck_assert(memcmp(dst, guard, doff) == 0);
        ck_assert(memcmp(d + n, guard, AREA + 8192 - doff - n) == 0);
      }
    }
  }
  free(src);
  free(dst);
}
END_TEST

START_TEST(release_needs_tune) {
  ck_assert(!wsh_heap_release()); /* thresholds never set: glibc's rules */
}
END_TEST

/* An operator's malloc threshold in GLIBC_TUNABLES: malloc is left alone,
 * and nothing is given back by hand. */
START_TEST(operator_thresholds_win) {
  setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=131072", 1);
  ck_assert(!wsh_heap_tune());
  ck_assert(!wsh_heap_release());
  setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=65536", 1);
  ck_assert(!wsh_heap_tune());
  ck_assert(!wsh_heap_release());
}
END_TEST

/* Other tunables do not stop it; it sets the thresholds where the
 * allocator takes mallopt (glibc's; AddressSanitizer's refuses it, and
 * then nothing is released by hand either). */
START_TEST(tune_then_release) {
  setenv("GLIBC_TUNABLES", "glibc.cpu.x86_rep_movsb_threshold=4096", 1);
  bool takes = mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024) == 1;
  ck_assert(wsh_heap_tune() == takes);
  ck_assert(wsh_heap_release() == takes);
  ck_assert(wsh_heap_release() == takes); /* again: nothing left, still ok */
  void *p = malloc(1 << 20);              /* malloc works on after it */
  ck_assert_ptr_nonnull(p);
  memset(p, 1, 1 << 20);
  free(p);
}
END_TEST

static Suite *copy_suite(void) {
  Suite *s = suite_create("copy");
  TCase *tc = tcase_create("copy");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, copy_is_memcpy);
  tcase_add_test(tc, release_needs_tune);
  tcase_add_test(tc, operator_thresholds_win);
  tcase_add_test(tc, tune_then_release);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(copy_suite());
}
