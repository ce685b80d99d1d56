/*
 * test_contract.c - unit tests for host/plugins/contract.c, the plugin
 * contract's rules that websockd and the SDK's test library share: which calls
 * a connection's state allows, push and close arguments, topics, what a
 * callback's result and a stop become, upgrade() answers, the table check.
 */
#include <check.h>
#include <string.h>

#include "plugins/contract.h"
#include "protocol/frame.h"

#define WSH_TEST_NAME "test_contract"
#include "testutil.h"

START_TEST(conn_state) {
  int c;
  ck_assert_int_eq(wsh_contract_conn(NULL, true, true, true), WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_contract_conn(&c, false, true, true), WEBSOCK_ECONTEXT);
  ck_assert_int_eq(wsh_contract_conn(&c, true, true, false), WEBSOCK_ECLOSED);
  ck_assert_int_eq(wsh_contract_conn(&c, true, false, false), 0);
  ck_assert_int_eq(wsh_contract_conn(&c, true, true, true), 0);
}
END_TEST

START_TEST(push_args) {
  char d[200] = {0};
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_TEXT, d, 200), 0);
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_BINARY, NULL, 0), 0);
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_BINARY, NULL, 1),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_PING, d, 125), 0);
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_PONG, d, 126), WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_contract_push(WEBSOCK_OP_CLOSE, d, 2), WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_contract_push(0, d, 2), WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_contract_push(3, d, 2), WEBSOCK_EINVAL);
}
END_TEST

START_TEST(close_codes) {
  static const unsigned ok[] = {1000, 1001, 1003, 1007, 1008, 1009, 1010,
                                1011, 1012, 1013, 1014, 3000, 4999};
  static const unsigned bad[] = {0,    999,  1002, 1004, 1005,
                                 1006, 1015, 2999, 5000, 65535};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
    ck_assert_msg(wsh_contract_close_code((uint16_t)ok[i]), "%u", ok[i]);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(!wsh_contract_close_code((uint16_t)bad[i]), "%u", bad[i]);
  /* a server may send fewer codes than a client: 1002 is the peer's */
  ck_assert(wsh_close_code_valid(1002));
}
END_TEST

START_TEST(topics_and_broadcast) {
  char name[WSH_TOPIC_MAX + 2];
  memset(name, 'a', sizeof(name));
  name[WSH_TOPIC_MAX] = '\0';
  ck_assert(wsh_contract_topic(name));
  name[WSH_TOPIC_MAX] = 'a';
  name[WSH_TOPIC_MAX + 1] = '\0';
  ck_assert(!wsh_contract_topic(name));
  ck_assert(!wsh_contract_topic(""));
  ck_assert(!wsh_contract_topic(NULL));
  ck_assert(wsh_contract_broadcast_opcode(WEBSOCK_OP_TEXT));
  ck_assert(wsh_contract_broadcast_opcode(WEBSOCK_OP_BINARY));
  ck_assert(!wsh_contract_broadcast_opcode(WEBSOCK_OP_PING));
}
END_TEST

START_TEST(upgrade_status) {
  ck_assert_int_eq(wsh_contract_upgrade_status(0), 0);
  ck_assert_int_eq(wsh_contract_upgrade_status(401), 401);
  ck_assert_int_eq(wsh_contract_upgrade_status(599), 599);
  ck_assert_int_eq(wsh_contract_upgrade_status(200), 500);
  ck_assert_int_eq(wsh_contract_upgrade_status(101), 500);
  ck_assert_int_eq(wsh_contract_upgrade_status(-1), 500);
  ck_assert_int_eq(wsh_contract_upgrade_status(600), 500);
}
END_TEST

START_TEST(results_and_stops) {
  int kind = WSH_STOP_RESTART;
  const char *detail;
  ck_assert(wsh_contract_result(WEBSOCK_OK, &kind, &detail));
  ck_assert(!wsh_contract_result(WEBSOCK_STOP, &kind, &detail));
  ck_assert_int_eq(kind, WSH_STOP_RESTART); /* as the plugin asked */
  ck_assert_ptr_null(detail);
  ck_assert(!wsh_contract_result(42, &kind, &detail));
  ck_assert_int_eq(kind, WSH_STOP_ERROR);
  ck_assert_str_eq(detail, WSH_INVALID_RESULT_DETAIL);

  /* negative websock_* codes returned as they are (issue 16) */
  kind = WSH_STOP_NORMAL;
  ck_assert(wsh_contract_result(WEBSOCK_EFULL, &kind, &detail));
  ck_assert(!wsh_contract_result(WEBSOCK_ECLOSED, &kind, &detail));
  ck_assert_int_eq(kind, WSH_STOP_NORMAL);
  ck_assert_ptr_null(detail);
  ck_assert(!wsh_contract_result(WEBSOCK_ENOMEM, &kind, &detail));
  ck_assert_int_eq(kind, WSH_STOP_ERROR);
  ck_assert_str_eq(detail, "callback returned WEBSOCK_ENOMEM (out of memory)");
  ck_assert(!wsh_contract_result(-99, &kind, &detail));
  ck_assert_str_eq(detail, WSH_INVALID_RESULT_DETAIL);

  wsh_stop_plan p = wsh_contract_stop(WSH_STOP_NORMAL, 0, NULL);
  ck_assert_uint_eq(p.code, 1000);
  ck_assert_int_eq(p.reason, WEBSOCK_REASON_NORMAL);
  p = wsh_contract_stop(WSH_STOP_NORMAL, 4000, "done");
  ck_assert_uint_eq(p.code, 4000);
  ck_assert_str_eq(p.text, "done");
  p = wsh_contract_stop(WSH_STOP_ERROR, 0, "boom");
  ck_assert_uint_eq(p.code, 1011);
  ck_assert_str_eq(p.text, "internal error");
  ck_assert_int_eq(p.reason, WEBSOCK_REASON_ERROR);
  ck_assert_str_eq(p.detail, "boom");
  p = wsh_contract_stop(WSH_STOP_ERROR, 0, NULL);
  ck_assert_str_eq(p.detail, "plugin stopped with an error");
  p = wsh_contract_stop(WSH_STOP_RESTART, 0, NULL);
  ck_assert_uint_eq(p.code, 1012);
  ck_assert_int_eq(p.reason, WEBSOCK_REASON_SHUTDOWN);
}
END_TEST

static int handle_in(websock_conn *c, void **s, websock_opcode op,
                     const uint8_t *d, size_t n) {
  (void)c, (void)s, (void)op, (void)d, (void)n;
  return WEBSOCK_OK;
}

START_TEST(table) {
  char err[512];
  struct websock_handler t = {.abi_version = WEBSOCK_ABI_VERSION,
                              .struct_size = sizeof(t),
                              .handle_in = handle_in};
  ck_assert_int_eq(wsh_contract_table(&t, "x.so", err, sizeof(err)), 0);
  t.abi_version = 7;
  ck_assert_int_eq(wsh_contract_table(&t, "x.so", err, sizeof(err)),
                   WEBSOCK_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "x.so: unknown ABI version 7"));
  t.abi_version = WEBSOCK_ABI_VERSION;
  t.struct_size = 8;
  ck_assert_int_eq(wsh_contract_table(&t, "x.so", err, sizeof(err)),
                   WEBSOCK_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "too small"));
  t.struct_size = (uint32_t)WSH_HANDLER_MIN_SIZE;
  ck_assert_int_eq(wsh_contract_table(&t, "x.so", err, sizeof(err)), 0);
  t.handle_in = NULL;
  ck_assert_int_eq(wsh_contract_table(&t, "x.so", err, sizeof(err)),
                   WEBSOCK_EINVAL);
  ck_assert_ptr_nonnull(strstr(err, "no handle_in"));
}
END_TEST

START_TEST(strerror_all) {
  ck_assert_str_eq(websock_strerror(0), "success");
  ck_assert_str_eq(websock_strerror(12345), "unknown error");
#define CHECK_(name, value, text)                                              \
  ck_assert_str_eq(websock_strerror(value), text);
  WEBSOCK_ERRNO_MAP(CHECK_)
#undef CHECK_
}
END_TEST

static Suite *contract_suite(void) {
  Suite *s = suite_create("contract");
  TCase *tc = tcase_create("rules");
  tcase_add_test(tc, conn_state);
  tcase_add_test(tc, push_args);
  tcase_add_test(tc, close_codes);
  tcase_add_test(tc, topics_and_broadcast);
  tcase_add_test(tc, upgrade_status);
  tcase_add_test(tc, results_and_stops);
  tcase_add_test(tc, table);
  tcase_add_test(tc, strerror_all);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(contract_suite());
}
