/*
 * tlsinfo.c - a test plugin for TLS: what the host tells upgrade() and
 * init() about the connection's transport. upgrade() reads
 * websock_request_tls and websock_request_peer_subject and hands them on as
 * the state; init() reads them again through websock_conn_request and pushes
 * one text message:
 *
 *   upgrade tls=1 subject=CN=client one,O=websockd tests; init tls=1
 * subject=...
 *
 * ("subject=-" when there is none). Every message after that is echoed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websock.h>

static char *describe(const char *who, const websock_request *req) {
  const char *subject = websock_request_peer_subject(req);
  size_t n = strlen(who) + (subject ? strlen(subject) : 1) + 32;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s tls=%d subject=%s", who, websock_request_tls(req),
             subject ? subject : "-");
  return s;
}

static int tlsinfo_upgrade(const websock_request *req, websock_response *resp) {
  char *s = describe("upgrade", req);
  if (!s)
    return 500;
  websock_response_set_state(resp, s);
  return 0;
}

static int tlsinfo_init(websock_conn *conn, void **state) {
  char *up = *state, *in = describe("init", websock_conn_request(conn));
  int rc = WEBSOCK_STOP;
  *state = NULL;
  if (up && in) {
    size_t n = strlen(up) + strlen(in) + 3;
    char *msg = malloc(n);
    if (msg) {
      snprintf(msg, n, "%s; %s", up, in);
      rc = websock_push(conn, WEBSOCK_OP_TEXT, msg, strlen(msg)) == 0
               ? WEBSOCK_OK
               : WEBSOCK_STOP;
      free(msg);
    }
  }
  free(up);
  free(in);
  return rc;
}

static int tlsinfo_in(websock_conn *conn, void **state, websock_opcode opcode,
                      const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, opcode, data, len) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "tlsinfo",
    .version = "1.0.0",
    .upgrade = tlsinfo_upgrade,
    .init = tlsinfo_init,
    .handle_in = tlsinfo_in,
};
