/*
 * no_symbol.c - a test plugin that is a valid shared object but exports no
 * websock_handler_v1: its table was written without WEBSOCK_EXPORT (so
 * -fvisibility=hidden keeps it local), and what it does export has the wrong
 * name. The host must refuse it with "no websock_handler_v1 symbol".
 */
#include <websock.h>

static int ns_handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len) {
  (void)conn;
  (void)state;
  (void)opcode;
  (void)data;
  (void)len;
  return WEBSOCK_OK;
}

/* The usual mistake: no WEBSOCK_EXPORT, so this stays hidden. */
const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "no_symbol",
    .version = "1.0.0",
    .handle_in = ns_handle_in,
};

/* Exported, but under another name. */
WEBSOCK_EXPORT const struct websock_handler websock_handler = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "no_symbol",
    .version = "1.0.0",
    .handle_in = ns_handle_in,
};
