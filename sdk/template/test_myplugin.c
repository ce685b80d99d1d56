/*
 * test_myplugin.c - the template's unit test, against the SDK's fake host
 * (websock_test.h): no network, no daemon. Run as ./test_myplugin myplugin.so
 * (ctest does).
 */
#include <websock_test.h>

int main(int argc, char **argv) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *c;
  if (argc != 2 || websock_test_host_new(&h) != 0)
    return 2;
  websock_test_set_log_level(h, -1); /* recorded, not printed */
  if (!WEBSOCK_TEST_EXPECT(websock_test_load(h, argv[1], NULL, &p) == 0))
    return 1;
  WEBSOCK_TEST_EXPECT(websock_test_connect(p, NULL, &c) == 0);
  /* init() logged where the connection came from, at level 2 (info) */
  int level = -1;
  WEBSOCK_TEST_EXPECT(websock_test_log_count(c) == 1);
  WEBSOCK_TEST_EXPECT_STR(websock_test_log_at(c, 0, &level),
                          "open from 127.0.0.1:40001");
  WEBSOCK_TEST_EXPECT(level == 2);
  /* every message comes back as it was */
  WEBSOCK_TEST_EXPECT(websock_test_client_text(c, "hello") == WEBSOCK_OK);
  WEBSOCK_TEST_EXPECT(websock_test_client_message(c, WEBSOCK_OP_BINARY, "\0\1",
                                                  2) == WEBSOCK_OK);
  WEBSOCK_TEST_EXPECT(websock_test_sent_count(c) == 2);
  WEBSOCK_TEST_EXPECT_STR(websock_test_sent_text(c, 0), "hello");
  WEBSOCK_TEST_EXPECT(websock_test_sent(c, 1)->opcode == WEBSOCK_OP_BINARY &&
                      websock_test_sent(c, 1)->len == 2);
  WEBSOCK_TEST_EXPECT(websock_test_client_close(c, 1000, "bye") == 0);
  WEBSOCK_TEST_EXPECT(websock_test_terminate_count(c) == 1);
  websock_test_host_free(h);
  return websock_test_failures() ? 1 : 0;
}
