/*
 * test_deadlines.c - unit tests for host/network/deadlines.c, a worker's
 * heap of connection deadlines: entries fire earliest first and never
 * before their time, moved and taken-out entries fire as filed now, at
 * most `max` per run, times compared across the 32-bit wrap, times beyond
 * the horizon refiled, the owner's word kept, and the one libevent timer
 * armed for the earliest (real clock, real loop).
 */
#include <check.h>
#include <stdlib.h>

#include <event2/event.h>

#include "base/timeutil.h"
#include "network/deadlines.h"
#include "network/slots.h"

/* What fired, in order; a callback may file or take out other slots. */
static struct {
  uint32_t slot[20000];
  uint64_t when[20000]; /* the test's now at the run */
  size_t n;
  uint64_t now;
  wsh_deadlines *d;
  int unfile_next; /* the callback takes slot + 1 out */
} fired;

static void on_fire(void *arg, uint32_t slot) {
  ck_assert_ptr_eq(arg, &fired);
  ck_assert_uint_lt(fired.n, 20000);
  fired.slot[fired.n] = slot;
  fired.when[fired.n++] = fired.now;
  if (fired.unfile_next)
    wsh_deadlines_unfile(fired.d, slot + 1);
}

static struct event_base *base;
static wsh_deadlines d;

static void setup(void) {
  base = event_base_new();
  ck_assert_ptr_nonnull(base);
  ck_assert_int_eq(wsh_deadlines_init(&d, base, on_fire, &fired), 0);
  memset(&fired, 0, sizeof(fired));
  fired.d = &d;
}

static void teardown(void) {
  wsh_deadlines_free(&d);
  event_base_free(base);
}

static size_t run_at(uint64_t now, size_t max) {
  fired.now = now;
  return wsh_deadlines_run(&d, now, max);
}

/* Random times, slots over several chunks: each fires once, in order, and
 * only once its time has come. */
START_TEST(earliest_first_never_early) {
  enum { N = 3 * WSH_SLOT_CHUNK + 100 };
  static uint64_t at[N];
  uint64_t now = 1000000;
  srand(7);
  for (uint32_t i = 0; i < N; i++) {
    at[i] = now + (uint64_t)(rand() % 100000);
    ck_assert_int_eq(wsh_deadlines_file(&d, i, at[i], now), 0);
  }
  ck_assert_uint_eq(wsh_deadlines_count(&d), N);
  for (uint64_t t = now; t <= now + 100000; t += 997)
    run_at(t, SIZE_MAX);
  run_at(now + 100000, SIZE_MAX);
  ck_assert_uint_eq(fired.n, N);
  ck_assert_uint_eq(wsh_deadlines_count(&d), 0);
  static char seen[N];
  for (size_t k = 0; k < fired.n; k++) {
    uint32_t s = fired.slot[k];
    ck_assert(!seen[s]);
    seen[s] = 1;
    ck_assert_uint_ge(fired.when[k], at[s]);       /* never early */
    ck_assert_uint_lt(fired.when[k], at[s] + 997); /* at its run */
    if (k)
      ck_assert_uint_le(at[fired.slot[k - 1]], at[s]); /* earliest first */
  }
}
END_TEST

/* Filing a filed slot moves it, either way; unfile takes it out, also
 * from inside another's callback. */
START_TEST(move_and_unfile) {
  uint64_t now = 5000;
  for (uint32_t i = 0; i < 100; i++)
    ck_assert_int_eq(wsh_deadlines_file(&d, i, now + 100 + i, now), 0);
  ck_assert_int_eq(wsh_deadlines_file(&d, 50, now + 10, now), 0);  /* sooner */
  ck_assert_int_eq(wsh_deadlines_file(&d, 0, now + 1000, now), 0); /* later */
  for (uint32_t i = 1; i < 100; i += 2)
    if (i != 51)
      wsh_deadlines_unfile(&d, i);
  wsh_deadlines_unfile(&d, 1);    /* twice: nothing */
  wsh_deadlines_unfile(&d, 9999); /* never filed, no chunk: nothing */
  ck_assert_uint_eq(wsh_deadlines_count(&d), 51);
  run_at(now + 10, SIZE_MAX);
  ck_assert_uint_eq(fired.n, 1);
  ck_assert_uint_eq(fired.slot[0], 50);
  /* each callback now takes the next slot out: 51 (filed for +151) fires
   * between 48 and 54 and takes 52 out, which never fires */
  fired.unfile_next = 1;
  run_at(now + 999, SIZE_MAX);
  ck_assert_uint_eq(fired.n, 1 + 24 + 1 + 23); /* 50; 2..48; 51; 54..98 */
  for (size_t k = 1; k < fired.n; k++) {
    ck_assert_uint_ne(fired.slot[k], 0);
    ck_assert_uint_ne(fired.slot[k], 52);
  }
  ck_assert_uint_eq(wsh_deadlines_count(&d), 1); /* 0, moved to +1000 */
  run_at(now + 1000, SIZE_MAX);
  ck_assert_uint_eq(fired.slot[fired.n - 1], 0);
  ck_assert_uint_eq(wsh_deadlines_count(&d), 0);
}
END_TEST

/* Thousands due at once: at most max per run, the rest on the next. */
START_TEST(bounded_per_run) {
  uint64_t now = 77;
  for (uint32_t i = 0; i < 1000; i++)
    ck_assert_int_eq(wsh_deadlines_file(&d, i, now, now), 0);
  ck_assert_uint_eq(run_at(now, WSH_DEADLINE_BATCH), WSH_DEADLINE_BATCH);
  ck_assert_uint_eq(wsh_deadlines_count(&d), 1000 - WSH_DEADLINE_BATCH);
  size_t runs = 1;
  while (wsh_deadlines_count(&d)) {
    ck_assert_uint_le(run_at(now, WSH_DEADLINE_BATCH), WSH_DEADLINE_BATCH);
    runs++;
  }
  ck_assert_uint_eq(runs, (1000 + WSH_DEADLINE_BATCH - 1) / WSH_DEADLINE_BATCH);
  ck_assert_uint_eq(fired.n, 1000);
}
END_TEST

/* The clock's low 32 bits wrap: times on both sides of the wrap are
 * ordered as times, not as numbers. */
START_TEST(across_the_wrap) {
  uint64_t now = (1ull << 32) * 5 - 30;
  ck_assert_int_eq(wsh_deadlines_file(&d, 1, now + 50, now), 0); /* wrapped */
  ck_assert_int_eq(wsh_deadlines_file(&d, 2, now + 20, now), 0);
  ck_assert_int_eq(wsh_deadlines_file(&d, 3, now + 40, now), 0); /* wrapped */
  ck_assert_uint_eq(run_at(now + 19, SIZE_MAX), 0);
  ck_assert_uint_eq(run_at(now + 45, SIZE_MAX), 2);
  ck_assert_uint_eq(fired.slot[0], 2);
  ck_assert_uint_eq(fired.slot[1], 3);
  ck_assert_uint_eq(run_at(now + 50, SIZE_MAX), 1);
  ck_assert_uint_eq(fired.slot[2], 1);
}
END_TEST

/* A time beyond the horizon is filed at the horizon (its owner, called
 * then, finds it not due and files it again); the word is the owner's. */
START_TEST(horizon_and_word) {
  uint64_t now = 1000;
  uint64_t *w = wsh_deadlines_word(&d, 4100);
  ck_assert_ptr_nonnull(w);
  *w = 123456789012345ull;
  ck_assert_int_eq(wsh_deadlines_file(&d, 4100, now + (1ull << 40), now), 0);
  ck_assert_uint_eq(run_at(now + WSH_DEADLINE_HORIZON_MS - 1, SIZE_MAX), 0);
  ck_assert_uint_eq(run_at(now + WSH_DEADLINE_HORIZON_MS, SIZE_MAX), 1);
  ck_assert_uint_eq(*wsh_deadlines_word(&d, 4100), 123456789012345ull);
  /* a time past is due at once */
  ck_assert_int_eq(wsh_deadlines_file(&d, 7, now - 5, now), 0);
  ck_assert_uint_eq(run_at(now, SIZE_MAX), 1);
}
END_TEST

/* The libevent timer: armed for the earliest, fired on the tick after it,
 * never before; moved sooner, it fires sooner. */
START_TEST(timer_fires_on_time) {
  uint64_t t0 = wsh_now_ms();
  ck_assert_int_eq(wsh_deadlines_file(&d, 1, t0 + 300, t0), 0);
  ck_assert_int_eq(wsh_deadlines_file(&d, 2, t0 + 60, t0), 0);
  ck_assert_int_eq(wsh_deadlines_file(&d, 1, t0 + 30, t0), 0); /* sooner */
  uint64_t when[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    size_t had = fired.n;
    while (fired.n == had && wsh_now_ms() < t0 + 5000)
      event_base_loop(base, EVLOOP_ONCE);
    when[i] = wsh_now_ms();
    ck_assert_uint_eq(fired.n, had + 1);
  }
  ck_assert_uint_eq(fired.slot[0], 1);
  ck_assert_uint_eq(fired.slot[1], 2);
  ck_assert_uint_ge(when[0], t0 + 30);
  ck_assert_uint_ge(when[1], t0 + 60);
  ck_assert_uint_eq(wsh_deadlines_count(&d), 0);
}
END_TEST

static Suite *deadlines_suite(void) {
  Suite *s = suite_create("deadlines");
  TCase *tc = tcase_create("heap");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, earliest_first_never_early);
  tcase_add_test(tc, move_and_unfile);
  tcase_add_test(tc, bounded_per_run);
  tcase_add_test(tc, across_the_wrap);
  tcase_add_test(tc, horizon_and_word);
  tcase_add_test(tc, timer_fires_on_time);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(deadlines_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
