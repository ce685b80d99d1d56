/*
 * test_realip.c - trusted proxy ranges and the X-Forwarded-For rule: which
 * address a request really came from, and which headers are not believed.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/realip.h"

#define WSH_TEST_NAME "test_realip"
#include "testutil.h"

static struct sockaddr_storage addr(const char *ip) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *in = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
    in->sin_family = AF_INET;
  else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
    in6->sin6_family = AF_INET6;
  return ss;
}

static int matches(const wsh_cidr_list *l, const char *ip) {
  struct sockaddr_storage ss = addr(ip);
  return wsh_cidr_list_match(l, (struct sockaddr *)&ss);
}

START_TEST(parse_and_match) {
  wsh_cidr_list l = {0};
  char err[128];
  ck_assert_int_eq(wsh_cidr_list_parse(&l,
                                       "127.0.0.1, 10.0.0.0/8 ::1,"
                                       "fd00::/8\t192.168.1.128/25",
                                       err, sizeof(err)),
                   0);
  ck_assert_uint_eq(l.n, 5);
  ck_assert(matches(&l, "127.0.0.1"));
  ck_assert(!matches(&l, "127.0.0.2"));
  ck_assert(matches(&l, "10.255.1.2"));
  ck_assert(!matches(&l, "11.0.0.1"));
  ck_assert(matches(&l, "192.168.1.200"));
  ck_assert(!matches(&l, "192.168.1.100"));
  ck_assert(matches(&l, "::1"));
  ck_assert(matches(&l, "fd12:3456::1"));
  ck_assert(!matches(&l, "fe80::1"));
  ck_assert(matches(&l, "::ffff:10.1.2.3")); /* v4-mapped counts as v4 */
  ck_assert(!matches(&l, "::ffff:11.1.2.3"));
  wsh_cidr_list_free(&l);
  /* /0 matches everything of its family */
  ck_assert_int_eq(wsh_cidr_list_parse(&l, "0.0.0.0/0", err, sizeof(err)), 0);
  ck_assert(matches(&l, "203.0.113.9"));
  ck_assert(!matches(&l, "2001:db8::1"));
  wsh_cidr_list_free(&l);
}
END_TEST

START_TEST(parse_errors) {
  static const char *const bad[] = {"10.0.0.0/33", "::1/129",      "10.0.0.0/",
                                    "10.0.0.0/-1", "10.0.0.0/8x",  "1.2.3",
                                    "example.com", "1.2.3.4/08/1", "::1/1000",
                                    "256.0.0.0/8", "10.0.0.0/ 8"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    wsh_cidr_list l = {0};
    char err[128] = "";
    ck_assert_msg(wsh_cidr_list_parse(&l, bad[i], err, sizeof(err)) != 0,
                  "accepted %s", bad[i]);
    ck_assert_msg(strstr(err, "not an address") != NULL, "%s", err);
    wsh_cidr_list_free(&l);
  }
}
END_TEST

static const char *real(const char *trusted, const char *peer,
                        const char *xff) {
  static char out[64];
  wsh_cidr_list l = {0};
  char err[128];
  ck_assert_int_eq(wsh_cidr_list_parse(&l, trusted, err, sizeof(err)), 0);
  struct sockaddr_storage ss = addr(peer);
  bool ok =
      wsh_realip_from_xff(&l, (struct sockaddr *)&ss, xff, out, sizeof(out));
  wsh_cidr_list_free(&l);
  return ok ? out : NULL;
}

START_TEST(forwarded_for) {
  const char *t = "127.0.0.1, 10.0.0.0/8";
  /* one proxy */
  ck_assert_str_eq(real(t, "127.0.0.1", "203.0.113.7"), "203.0.113.7:0");
  /* the rightmost untrusted address: what the client wrote is ignored */
  ck_assert_str_eq(real(t, "127.0.0.1", "6.6.6.6, 203.0.113.7"),
                   "203.0.113.7:0");
  ck_assert_str_eq(real(t, "127.0.0.1", "6.6.6.6, 203.0.113.7, 10.1.1.1"),
                   "203.0.113.7:0");
  /* all trusted: the leftmost */
  ck_assert_str_eq(real(t, "127.0.0.1", "10.0.0.5 , 10.1.1.1"), "10.0.0.5:0");
  /* IPv6 and v4-mapped */
  ck_assert_str_eq(real(t, "127.0.0.1", "2001:db8::7"), "[2001:db8::7]:0");
  ck_assert_str_eq(real(t, "127.0.0.1", "::ffff:203.0.113.8"), "203.0.113.8:0");
  /* an untrusted peer's header is not believed */
  ck_assert_ptr_null(real(t, "192.0.2.1", "203.0.113.7"));
  /* nothing trusted at all */
  ck_assert_ptr_null(real("", "127.0.0.1", "203.0.113.7"));
  /* no header, or one that is not all addresses */
  ck_assert_ptr_null(real(t, "127.0.0.1", NULL));
  ck_assert_ptr_null(real(t, "127.0.0.1", ""));
  ck_assert_ptr_null(real(t, "127.0.0.1", "unknown"));
  ck_assert_ptr_null(real(t, "127.0.0.1", "203.0.113.7,,1.2.3.4"));
  ck_assert_ptr_null(real(t, "127.0.0.1", "203.0.113.7:8080"));
  ck_assert_ptr_null(real(t, "127.0.0.1", "1.2.3.4, evil"));
}
END_TEST

int main(void) {
  Suite *su = suite_create("realip");
  TCase *tc = tcase_create("realip");
  tcase_add_test(tc, parse_and_match);
  tcase_add_test(tc, parse_errors);
  tcase_add_test(tc, forwarded_for);
  suite_add_tcase(su, tc);
  return run_suite(su);
}
