/*
 * test_echo.c - unit test of the echo plugin against the SDK's fake host
 * (websock_test.h). Usage: test_echo path/to/echo.so
 */
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

#define EXPECT WEBSOCK_TEST_EXPECT
#define EXPECT_STR WEBSOCK_TEST_EXPECT_STR

static const char *so_path;

/* terminate() ran exactly once, with this kind of reason. */
static int terminated_once(const websock_conn *c, websock_reason_kind kind) {
  const websock_reason *r = websock_test_terminate_reason(c);
  return websock_test_terminate_count(c) == 1 && r && r->kind == kind;
}

/* The i-th message sent on c is (opcode, data, len). */
static int sent_is(const websock_conn *c, size_t i, websock_opcode op,
                   const void *data, size_t len) {
  const websock_test_msg *m = websock_test_sent(c, i);
  return m && m->opcode == op && m->len == len && !m->shared &&
         (len == 0 || memcmp(m->data, data, len) == 0);
}

static void test_echoes(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *c;
  EXPECT(websock_test_host_new(&h) == 0);
  if (!EXPECT(websock_test_load(
                  h, so_path, &(websock_test_route){.path = "/echo"}, &p) == 0))
    return;
  EXPECT_STR(websock_test_handler(p)->name, "echo");
  EXPECT(websock_test_connect(p, NULL, &c) == 0);
  EXPECT(websock_test_status(c) == 101);
  EXPECT(websock_test_sent_count(c) == 0);

  static const uint8_t bin[] = {0x00, 0xff, 0x80, 0x00, 0x7f};
  EXPECT(websock_test_client_text(c, "hello") == WEBSOCK_OK);
  EXPECT(websock_test_client_message(c, WEBSOCK_OP_BINARY, bin, sizeof(bin)) ==
         WEBSOCK_OK);
  EXPECT(websock_test_client_text(c, "") == WEBSOCK_OK);
  EXPECT(websock_test_client_message(c, WEBSOCK_OP_BINARY, NULL, 0) ==
         WEBSOCK_OK);
  EXPECT(websock_test_client_text(c, "h\xc3\xa9llo \xf0\x9f\x98\x80") ==
         WEBSOCK_OK);
  EXPECT(websock_test_sent_count(c) == 5);
  EXPECT(sent_is(c, 0, WEBSOCK_OP_TEXT, "hello", 5));
  EXPECT(sent_is(c, 1, WEBSOCK_OP_BINARY, bin, sizeof(bin)));
  EXPECT(sent_is(c, 2, WEBSOCK_OP_TEXT, "", 0));
  EXPECT(sent_is(c, 3, WEBSOCK_OP_BINARY, "", 0));
  EXPECT_STR(websock_test_sent_text(c, 4), "h\xc3\xa9llo \xf0\x9f\x98\x80");

  /* Pings are the host's business: echo has no handle_control. */
  EXPECT(websock_test_client_control(c, WEBSOCK_OP_PING, "p", 1) == WEBSOCK_OK);
  EXPECT(websock_test_sent_count(c) == 5);

  /* The API refuses what the host refuses outside a callback. */
  EXPECT(websock_push(c, WEBSOCK_OP_TEXT, "x", 1) == WEBSOCK_ECONTEXT);

  EXPECT(websock_test_client_close(c, WEBSOCK_CLOSE_NORMAL, "done") == 0);
  uint16_t code = 0;
  const char *text = NULL;
  EXPECT(websock_test_closed(c, &code, &text) && code == WEBSOCK_CLOSE_NORMAL);
  EXPECT_STR(text, "done");
  EXPECT(terminated_once(c, WEBSOCK_REASON_REMOTE));
  EXPECT(websock_test_client_text(c, "late") == WEBSOCK_ECLOSED);
  websock_test_host_free(h);
}

static void test_prefix(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *c;
  static const char *const opts[] = {"prefix", "> ", NULL};
  EXPECT(websock_test_host_new(&h) == 0);
  if (!EXPECT(websock_test_load(
                  h, so_path, &(websock_test_route){.options = opts}, &p) == 0))
    return;
  EXPECT(websock_test_connect(p, NULL, &c) == 0);
  EXPECT(websock_test_client_text(c, "hi") == WEBSOCK_OK);
  EXPECT(websock_test_client_message(c, WEBSOCK_OP_BINARY, "hi", 2) ==
         WEBSOCK_OK);
  EXPECT_STR(websock_test_sent_text(c, 0), "> hi");
  EXPECT(sent_is(c, 1, WEBSOCK_OP_BINARY, "hi", 2));
  websock_test_host_free(h); /* shuts c down: terminate once, SHUTDOWN */
}

static void test_bad_loads(void) {
  websock_host *h;
  websock_test_plugin *p;
  EXPECT(websock_test_host_new(&h) == 0);
  EXPECT(websock_test_load(h, "/nonexistent/echo.so", NULL, &p) ==
         WEBSOCK_ENOENT);
  EXPECT(strstr(websock_test_error(h), "/nonexistent/echo.so") != NULL);
  websock_test_host_free(h);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s echo.so\n", argv[0]);
    return 2;
  }
  so_path = argv[1];
  test_echoes();
  test_prefix();
  test_bad_loads();
  return websock_test_failures() ? 1 : 0;
}
