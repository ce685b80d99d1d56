/*
 * myplugin.c - a starting point for a websockd plugin. It answers every
 * message with the same message and logs each connection it opens. Rename,
 * then fill in the callbacks you need; only handle_in is required.
 */
#include <websock.h>

static int my_init(websock_conn *conn, void **state) {
  (void)state;
  /* websock_conn_request() is valid in init() only. */
  websock_log(conn, 2, "open from %s",
              websock_request_remote_addr(websock_conn_request(conn)));
  return WEBSOCK_OK;
}

static int my_handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len) {
  (void)state;
  /* websock_push copies data; it goes out once this callback returns. */
  if (websock_push(conn, opcode, data, len) != 0)
    return WEBSOCK_STOP;
  return WEBSOCK_OK;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "myplugin",
    .version = "0.1.0",
    .init = my_init,
    .handle_in = my_handle_in,
};
