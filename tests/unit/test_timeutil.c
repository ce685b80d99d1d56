/*
 * test_timeutil.c - unit tests for host/base/timeutil.h: milliseconds as a
 * libevent timeout, and a monotonic millisecond clock.
 */
#include <check.h>
#include <unistd.h>

#include "base/timeutil.h"

#define WSH_TEST_NAME "test_timeutil"
#include "testutil.h"

START_TEST(timeval_ms) {
  struct timeval tv = wsh_timeval_ms(1500);
  ck_assert_int_eq(tv.tv_sec, 1);
  ck_assert_int_eq(tv.tv_usec, 500000);
  tv = wsh_timeval_ms(0);
  ck_assert_int_eq(tv.tv_sec, 0);
  ck_assert_int_eq(tv.tv_usec, 0);
  tv = wsh_timeval_ms(999);
  ck_assert_int_eq(tv.tv_sec, 0);
  ck_assert_int_eq(tv.tv_usec, 999000);
  tv = wsh_timeval_ms(86400000ULL * 365);
  ck_assert_int_eq(tv.tv_sec, 86400L * 365);
}
END_TEST

START_TEST(clock_moves_forward) {
  uint64_t a = wsh_now_ms();
  usleep(30 * 1000);
  uint64_t b = wsh_now_ms();
  ck_assert_uint_ge(b, a + 20); /* coarse clock: a few ms of slack */
  ck_assert_uint_lt(b, a + 2000);
}
END_TEST

static Suite *timeutil_suite(void) {
  Suite *s = suite_create("timeutil");
  TCase *tc = tcase_create("timeutil");
  tcase_add_test(tc, timeval_ms);
  tcase_add_test(tc, clock_moves_forward);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(timeutil_suite());
}
