/*
 * missing_dep.c - a test plugin that calls a websock_* function no host
 * provides. Loaded with RTLD_NOW, it must fail at load time ("undefined
 * symbol: websock_no_such_function"), never in the middle of a connection.
 */
#include <websock.h>

void websock_no_such_function(void);

static int md_handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len) {
  (void)conn;
  (void)state;
  (void)opcode;
  (void)data;
  (void)len;
  websock_no_such_function();
  return WEBSOCK_OK;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "missing_dep",
    .version = "1.0.0",
    .handle_in = md_handle_in,
};
