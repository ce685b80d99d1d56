/*
 * null_handle_in.c - a test plugin with a well-formed table whose required
 * handle_in is NULL (the optional callbacks are set). The host must refuse it.
 */
#include <websock.h>

static int nh_init(websock_conn *conn, void **state) {
  (void)conn;
  (void)state;
  return WEBSOCK_OK;
}

static void nh_terminate(websock_conn *conn, void *state,
                         const websock_reason *reason) {
  (void)conn;
  (void)state;
  (void)reason;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "null_handle_in",
    .version = "1.0.0",
    .init = nh_init,
    .handle_in = NULL,
    .terminate = nh_terminate,
};
