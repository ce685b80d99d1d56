/*
 * old_echo.c - plugins/echo/echo.c built against the SDK 1.0 header kept as
 * a fixture (tests/fixtures/websock_v1_0.h) and nothing else: a plugin
 * compiled before any field was appended to struct websock_handler, whose
 * table is therefore shorter than the host's. The host must load it and run
 * it, and read every later field (export_state, ...) as absent.
 * Answers every message with the same message; with `prefix = ...` in
 * [options], text comes back with that prefix.
 */
#include <stdlib.h>
#include <string.h>

#include "websock_v1_0.h"
static char *echo_prefix; /* from [options] prefix, or NULL */

static int echo_load(const websock_options *options) {
  const char *p = websock_option(options, "prefix");
  if (p && *p) {
    echo_prefix = strdup(p);
    if (!echo_prefix)
      return -1;
  }
  return 0;
}

static void echo_unload(void) {
  free(echo_prefix);
  echo_prefix = NULL;
}

static int echo_in(websock_conn *conn, void **state, websock_opcode opcode,
                   const uint8_t *data, size_t len) {
  (void)state;
  if (echo_prefix && opcode == WEBSOCK_OP_TEXT) {
    size_t plen = strlen(echo_prefix);
    uint8_t *buf = malloc(plen + len);
    if (!buf)
      return WEBSOCK_STOP;
    memcpy(buf, echo_prefix, plen);
    if (len)
      memcpy(buf + plen, data, len);
    int rc = websock_push(conn, opcode, buf, plen + len);
    free(buf);
    return rc == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
  }
  return websock_push(conn, opcode, data, len) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "old_echo",
    .version = "1.0.0",
    .load = echo_load,
    .unload = echo_unload,
    .handle_in = echo_in,
};
