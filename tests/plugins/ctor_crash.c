/*
 * ctor_crash.c - a plugin whose constructor dies of SIGBUS, as a corrupt .so
 * might while being mapped: the host's probe must see the signal and refuse
 * the plugin, and the host must live. Its table is valid.
 */
#include <signal.h>

#include <websock.h>

__attribute__((constructor)) static void crash(void) {
  raise(SIGBUS);
}

static int handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                     const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, opcode, data, len);
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "ctor_crash",
    .version = "1",
    .handle_in = handle_in,
};
