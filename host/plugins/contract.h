/*
 * contract.h - the plugin contract's pure rules, one implementation compiled
 * into websockd (api.c, conn.c, plugin.c) and into the SDK's test library
 * (sdk/testlib/websock_test.c), so that the two cannot disagree; the parity
 * test (tests/integration/test_parity.py) drives one plugin through both.
 *
 * What a plugin may call when and with which arguments, how a callback's
 * result and a requested stop become a close frame and a terminate()
 * reason, what upgrade() may answer, and which handler tables load. No state,
 * no I/O, no allocation. The checks made on every message are inline.
 */
#ifndef WSH_CONTRACT_H
#define WSH_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol/frame.h"
#include "websock.h"

/* Longest topic name. */
#define WSH_TOPIC_MAX 255

/* The smallest handler table accepted: up to and including handle_in. */
#define WSH_HANDLER_MIN_SIZE                                                   \
  (offsetof(struct websock_handler, handle_in) + sizeof(void *))

/* How a callback's WEBSOCK_STOP closes: websock_close() (or nothing),
 * websock_close_error() or an invalid result, websock_close_restart(). */
enum { WSH_STOP_NORMAL = 0, WSH_STOP_ERROR = 1, WSH_STOP_RESTART = 2 };

/* terminate()'s detail after a callback returned neither OK nor STOP. */
#define WSH_INVALID_RESULT_DETAIL "callback returned an invalid result"

/* May the plugin act on a connection: present (else WEBSOCK_EINVAL), inside
 * one of its callbacks (else WEBSOCK_ECONTEXT) and, when `open` is asked
 * for, still open (else WEBSOCK_ECLOSED)? Returns 0 or the error. */
static inline int wsh_contract_conn(const void *conn, bool in_callback,
                                    bool need_open, bool open) {
  if (!conn)
    return WEBSOCK_EINVAL;
  if (!in_callback)
    return WEBSOCK_ECONTEXT;
  if (need_open && !open)
    return WEBSOCK_ECLOSED;
  return 0;
}

/* websock_push()'s arguments: a data opcode, or a control opcode with at
 * most 125 bytes; data present when len > 0. 0 or WEBSOCK_EINVAL. */
static inline int wsh_contract_push(int opcode, const void *data, size_t len) {
  switch (opcode) {
  case WEBSOCK_OP_TEXT:
  case WEBSOCK_OP_BINARY:
    break;
  case WEBSOCK_OP_PING:
  case WEBSOCK_OP_PONG:
    if (len > WSH_MAX_CONTROL)
      return WEBSOCK_EINVAL;
    break;
  default:
    return WEBSOCK_EINVAL;
  }
  return len && !data ? WEBSOCK_EINVAL : 0;
}

/* Codes a server may put in a close frame it sends (websock_close()). */
bool wsh_contract_close_code(uint16_t code);

/* websock_subscribe/publish/broadcast: a topic name of 1 to WSH_TOPIC_MAX
 * bytes. */
bool wsh_contract_topic(const char *topic);

/* websock_broadcast()'s opcode: text or binary. */
bool wsh_contract_broadcast_opcode(int opcode);

/* What upgrade() returned, as the status the host answers: 0 (go on with the
 * 101), the refusal 400-599 it asked for, or 500 for anything else. */
int wsh_contract_upgrade_status(int returned);

/* terminate()'s detail after a callback returned a negative websock_*
 * code that stops the connection: "callback returned WEBSOCK_ENOMEM (out of
 * memory)"; NULL for a value that is not such a code. */
const char *wsh_contract_error_detail(int result);

/* A callback's result: true if the connection goes on (WEBSOCK_OK, or
 * WEBSOCK_EFULL: the route's drop policy already dropped a message); false
 * if it stops (WEBSOCK_STOP, or WEBSOCK_ECLOSED: the close under way, if
 * any, stands). For any other value *kind is set to WSH_STOP_ERROR and
 * *detail to terminate()'s detail: the code named for a websock_* error,
 * WSH_INVALID_RESULT_DETAIL for anything else. */
static inline bool wsh_contract_result(int result, int *kind,
                                       const char **detail) {
  *detail = NULL;
  if (result == WEBSOCK_OK || result == WEBSOCK_EFULL)
    return true;
  if (result == WEBSOCK_STOP || result == WEBSOCK_ECLOSED)
    return false;
  *kind = WSH_STOP_ERROR;
  *detail = wsh_contract_error_detail(result);
  if (!*detail)
    *detail = WSH_INVALID_RESULT_DETAIL;
  return false;
}

/* How a stop closes: the close frame's code and text, and terminate()'s
 * reason and detail. */
typedef struct wsh_stop_plan {
  uint16_t code;
  const char *text; /* close frame text, may be NULL */
  websock_reason_kind reason;
  const char *detail; /* terminate()'s text, may be NULL */
} wsh_stop_plan;

/* The plan for a stop of `kind` with websock_close()'s code (0: none) and
 * text or websock_close_error()'s detail (may be NULL). The plan points into
 * text and static strings. */
wsh_stop_plan wsh_contract_stop(int kind, uint16_t code, const char *text);

/* Checks a plugin's websock_handler_v1: the ABI version, a table at least
 * WSH_HANDLER_MIN_SIZE bytes, a handle_in. On failure writes one line naming
 * so_path and the cause into err and returns WEBSOCK_EINVAL. */
int wsh_contract_table(const struct websock_handler *t, const char *so_path,
                       char *err, size_t errlen);

#endif
