/*
 * ctor_hang.c - a plugin whose constructor never returns: the probe must kill
 * its child after the timeout and refuse the plugin. Its table is valid.
 */
#include <unistd.h>

#include <websock.h>

__attribute__((constructor)) static void hang(void) {
  for (;;)
    pause();
}

static int handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                     const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, opcode, data, len);
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "ctor_hang",
    .version = "1",
    .handle_in = handle_in,
};
