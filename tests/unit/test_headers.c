/*
 * test_headers.c - unit tests for host/protocol/headers.c: tokens, sendable
 * header values and the headers of a 101 that a plugin may not add.
 */
#include <check.h>

#include "protocol/headers.h"

#define WSH_TEST_NAME "test_headers"
#include "testutil.h"

START_TEST(tokens) {
  ck_assert(wsh_header_token("X-Recorder"));
  ck_assert(wsh_header_token("chat.v2!#$%&'*+-^_`|~"));
  ck_assert(!wsh_header_token(""));
  ck_assert(!wsh_header_token("a b"));
  ck_assert(!wsh_header_token("a:b"));
  ck_assert(!wsh_header_token("a\"b"));
  ck_assert(!wsh_header_token("caf\xc3\xa9"));
}
END_TEST

START_TEST(values) {
  ck_assert(wsh_header_value_ok(""));
  ck_assert(wsh_header_value_ok("Bearer realm=\"x\"\tand more"));
  ck_assert(!wsh_header_value_ok("a\r\nX-Injected: 1"));
  ck_assert(!wsh_header_value_ok("a\nb"));
  ck_assert(!wsh_header_value_ok("\x7f"));
}
END_TEST

START_TEST(host_owned) {
  static const char *const owned[] = {"Upgrade",
                                      "connection",
                                      "Content-Length",
                                      "Transfer-Encoding",
                                      "Sec-WebSocket-Accept",
                                      "sec-websocket-protocol",
                                      "Sec-WebSocket-Extensions"};
  for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
    ck_assert_msg(wsh_header_host_owned(owned[i]), "%s", owned[i]);
    ck_assert_msg(!wsh_header_addable(owned[i], "x"), "%s", owned[i]);
  }
  ck_assert(!wsh_header_host_owned("X-Upgrade"));
  ck_assert(wsh_header_addable("WWW-Authenticate", "Bearer"));
  ck_assert(!wsh_header_addable(NULL, "x"));
  ck_assert(!wsh_header_addable("X", NULL));
  ck_assert(!wsh_header_addable("X Y", "x"));
  ck_assert(!wsh_header_addable("X", "a\rb"));
}
END_TEST

static Suite *headers_suite(void) {
  Suite *s = suite_create("headers");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, tokens);
  tcase_add_test(tc, values);
  tcase_add_test(tc, host_owned);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(headers_suite());
}
