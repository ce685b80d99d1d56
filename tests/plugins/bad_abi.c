/*
 * bad_abi.c - a test plugin whose table claims ABI version 99, which no host
 * knows. The host must refuse it, naming both versions.
 */
#include <websock.h>

static int ba_handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, opcode, data, len) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = 99,
    .struct_size = sizeof(struct websock_handler),
    .name = "bad_abi",
    .version = "1.0.0",
    .handle_in = ba_handle_in,
};
