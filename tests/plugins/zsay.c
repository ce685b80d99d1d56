/*
 * zsay.c - a test plugin for the plugin's say in permessage-deflate
 * (test_deflate.py): a text message "ask" is answered with "compressed=1"
 * or "compressed=0" (websock_conn_compressed), "plain:REST" pushes REST
 * with websock_push_uncompressed, "both:REST" pushes REST once each way;
 * anything else is echoed with its opcode.
 */
#include <stdio.h>
#include <string.h>

#include "websock.h"

static int zs_in(websock_conn *conn, void **state, websock_opcode op,
                 const uint8_t *data, size_t len) {
  (void)state;
  if (op == WEBSOCK_OP_TEXT && len == 3 && memcmp(data, "ask", 3) == 0) {
    char line[32];
    int n = snprintf(line, sizeof(line), "compressed=%d",
                     websock_conn_compressed(conn));
    websock_push(conn, WEBSOCK_OP_TEXT, line, (size_t)n);
  } else if (op == WEBSOCK_OP_TEXT && len >= 6 &&
             memcmp(data, "plain:", 6) == 0) {
    websock_push_uncompressed(conn, op, data + 6, len - 6);
  } else if (op == WEBSOCK_OP_TEXT && len >= 5 &&
             memcmp(data, "both:", 5) == 0) {
    websock_push_uncompressed(conn, op, data + 5, len - 5);
    websock_push(conn, op, data + 5, len - 5);
  } else {
    websock_push(conn, op, data, len);
  }
  return WEBSOCK_OK;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "zsay",
    .version = "1.0.0",
    .handle_in = zs_in,
};
