/*
 * whoami.c - a test plugin that tells the client who the host thinks it is:
 * init() pushes websock_request_remote_addr() as the first message (behind a
 * trusted proxy or after a PROXY protocol header, the real client's
 * address), then echoes every message.
 */
#include <string.h>

#include <websock.h>

static int who_init(websock_conn *conn, void **state) {
  (void)state;
  const char *addr = websock_request_remote_addr(websock_conn_request(conn));
  return websock_push(conn, WEBSOCK_OP_TEXT, addr, strlen(addr)) == 0
             ? WEBSOCK_OK
             : WEBSOCK_STOP;
}

static int who_in(websock_conn *conn, void **state, websock_opcode op,
                  const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, op, data, len) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "whoami",
    .version = "1.0.0",
    .init = who_init,
    .handle_in = who_in,
};
