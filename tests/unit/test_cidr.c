/*
 * test_cidr.c - unit tests for host/cidr.c: parsing address lists (single
 * hosts, ranges, IPv6, spacing, bad items) and matching peer addresses as
 * the host formats them ("1.2.3.4:5", "[::1]:5"), at and around each
 * range's edges, IPv4-mapped IPv6 included.
 */
#include "cidr.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "websock.h"

static wsh_cidr *parse_ok(const char *list, size_t want_n) {
  wsh_cidr *v;
  size_t n;
  char err[160] = "";
  ck_assert_msg(wsh_cidr_parse_list(list, &v, &n, err, sizeof(err)) == 0,
                "%s: %s", list, err);
  ck_assert_uint_eq(n, want_n);
  return v;
}

START_TEST(test_parse_lists) {
  wsh_cidr *v = parse_ok("127.0.0.0/8, ::1", 2);
  ck_assert_uint_eq(v[0].prefix, 8);
  ck_assert_uint_eq(v[1].prefix, 128);
  free(v);
  v = parse_ok(" 10.1.2.3 ,,fd00::/8\t192.168.0.0/16 ", 3);
  ck_assert_uint_eq(v[0].prefix, 32);
  ck_assert_uint_eq(v[1].prefix, 8);
  free(v);
  v = parse_ok("", 0);
  ck_assert_ptr_null(v);
  v = parse_ok("0.0.0.0/0, ::/0", 2);
  free(v);
}
END_TEST

START_TEST(test_parse_errors) {
  static const char *const bad[] = {
      "300.1.1.1", "10.0.0.0/33", "::1/129",        "localhost",
      "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/8x",    "127.0.0.1:80",
      "[::1]",     "/8",          "127.0.0.1, nope"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    wsh_cidr *v = (wsh_cidr *)1;
    size_t n = 7;
    char err[160] = "";
    ck_assert_int_eq(wsh_cidr_parse_list(bad[i], &v, &n, err, sizeof(err)),
                     WEBSOCK_EINVAL);
    ck_assert_msg(strstr(err, "is not an address"), "%s: %s", bad[i], err);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(n, 0);
  }
}
END_TEST

START_TEST(test_match) {
  wsh_cidr *v = parse_ok("127.0.0.0/8, ::1, 10.20.0.0/14, 2001:db8::/33", 4);
  static const struct {
    const char *addr;
    bool in;
  } cases[] = {
      {"127.0.0.1:4000", true},
      {"127.255.255.255:1", true},
      {"128.0.0.1:1", false},
      {"126.255.255.255:1", false},
      {"[::1]:80", true},
      {"[::2]:80", false},
      {"[::ffff:127.0.0.1]:9", true}, /* IPv4-mapped */
      {"[::ffff:8.8.8.8]:9", false},
      {"10.20.0.0:1", true},
      {"10.23.255.255:1", true},
      {"10.24.0.0:1", false},
      {"10.19.255.255:1", false},
      {"[2001:db8:7fff::1]:1", true},
      {"[2001:db8:8000::1]:1", false},
      {"127.0.0.1", true},
      {"::1", true},
      {"unix", false},
      {"", false},
      {"[::1", false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    ck_assert_msg(wsh_cidr_match(v, 4, cases[i].addr) == cases[i].in, "%s",
                  cases[i].addr);
  ck_assert(!wsh_cidr_match(v, 4, NULL));
  ck_assert(!wsh_cidr_match(NULL, 0, "127.0.0.1:1"));
  free(v);
}
END_TEST

START_TEST(test_match_everything_and_host_bits) {
  wsh_cidr *v = parse_ok("0.0.0.0/0, 192.168.1.77/24", 2);
  ck_assert(wsh_cidr_match(v, 1, "203.0.113.9:1"));
  ck_assert(!wsh_cidr_match(v, 1, "[2001:db8::1]:1"));  /* v4 range only */
  ck_assert(wsh_cidr_match(v + 1, 1, "192.168.1.3:1")); /* bits past /24 */
  ck_assert(!wsh_cidr_match(v + 1, 1, "192.168.2.3:1"));
  free(v);
}
END_TEST

static Suite *cidr_suite(void) {
  Suite *s = suite_create("cidr");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_parse_lists);
  tcase_add_test(tc, test_parse_errors);
  tcase_add_test(tc, test_match);
  tcase_add_test(tc, test_match_everything_and_host_bits);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(cidr_suite());
  int failed;

  srunner_run_all(sr, CK_ENV);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
