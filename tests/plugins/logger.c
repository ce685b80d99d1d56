/*
 * logger.c - a test plugin that logs on request, for the test library's
 * log capture (tests/unit/test_websock_test.c): load() and unload() log
 * without a connection, init() logs at debug, and a text message "N text"
 * is logged at level N on its connection; "thread" logs from a thread of
 * the plugin's own (joined before the callback returns), "bad" pushes
 * invalid UTF-8, which the fake host refuses and logs.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <websock.h>

static void *log_from_thread(void *arg) {
  (void)arg;
  websock_log(NULL, 1, "from the plugin's thread");
  return NULL;
}

static int lg_load(const websock_options *options) {
  websock_log(NULL, 2, "loaded with %zu option(s)",
              websock_option_count(options));
  return 0;
}

static void lg_unload(void) {
  websock_log(NULL, 2, "unloaded");
}

static int lg_init(websock_conn *conn, void **state) {
  (void)state;
  websock_log(conn, 3, "init on %s", websock_conn_route(conn));
  return WEBSOCK_OK;
}

static int lg_in(websock_conn *conn, void **state, websock_opcode op,
                 const uint8_t *data, size_t len) {
  (void)state;
  (void)op;
  char text[4096];
  if (len >= sizeof(text))
    return WEBSOCK_STOP;
  memcpy(text, data, len);
  text[len] = 0;
  if (strcmp(text, "thread") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, log_from_thread, NULL) != 0)
      return WEBSOCK_STOP;
    pthread_join(t, NULL);
  } else if (strcmp(text, "bad") == 0) {
    websock_push(conn, WEBSOCK_OP_TEXT, "\xff", 1);
  } else if (len >= 2 && text[0] >= '0' && text[0] <= '3' && text[1] == ' ') {
    websock_log(conn, text[0] - '0', "%s", text + 2);
  }
  return WEBSOCK_OK;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "logger",
    .version = "1.0.0",
    .load = lg_load,
    .unload = lg_unload,
    .init = lg_init,
    .handle_in = lg_in,
};
