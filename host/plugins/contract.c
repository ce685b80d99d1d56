/*
 * contract.c - the plugin contract's pure rules (see contract.h), shared by
 * websockd and the SDK's test library. Also websock_strerror(), the one
 * function of websock.h that both implement identically.
 */
#include "plugins/contract.h"

#include <stdio.h>
#include <string.h>

#include "protocol/frame.h"

/* Exported from both (the shared files are compiled with hidden
 * visibility into the test library). */
WEBSOCK_EXPORT const char *websock_strerror(int err) {
  switch (err) {
#define WEBSOCK_STRERROR_CASE_(name, value, text)                              \
  case value:                                                                  \
    return text;
    WEBSOCK_ERRNO_MAP(WEBSOCK_STRERROR_CASE_)
#undef WEBSOCK_STRERROR_CASE_
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *wsh_contract_error_detail(int result) {
  switch (result) {
#define WSH_DETAIL_CASE_(name, value, text)                                    \
  case value:                                                                  \
    return "callback returned WEBSOCK_" #name " (" text ")";
    WEBSOCK_ERRNO_MAP(WSH_DETAIL_CASE_)
#undef WSH_DETAIL_CASE_
  default:
    return NULL;
  }
}

bool wsh_contract_close_code(uint16_t code) {
  return (code >= 1000 && code <= 1003 && code != 1002) ||
         (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

bool wsh_contract_topic(const char *topic) {
  return topic && *topic && strlen(topic) <= WSH_TOPIC_MAX;
}

bool wsh_contract_broadcast_opcode(int opcode) {
  return opcode == WEBSOCK_OP_TEXT || opcode == WEBSOCK_OP_BINARY;
}

int wsh_contract_upgrade_status(int returned) {
  if (returned == 0 || (returned >= 400 && returned <= 599))
    return returned;
  return 500;
}

wsh_stop_plan wsh_contract_stop(int kind, uint16_t code, const char *text) {
  switch (kind) {
  case WSH_STOP_ERROR:
    return (wsh_stop_plan){WSH_CLOSE_INTERNAL, "internal error",
                           WEBSOCK_REASON_ERROR,
                           text ? text : "plugin stopped with an error"};
  case WSH_STOP_RESTART:
    return (wsh_stop_plan){WSH_CLOSE_RESTART, "service restart",
                           WEBSOCK_REASON_SHUTDOWN, NULL};
  default:
    return (wsh_stop_plan){code ? code : WSH_CLOSE_NORMAL, text,
                           WEBSOCK_REASON_NORMAL, NULL};
  }
}

int wsh_contract_table(const struct websock_handler *t, const char *so_path,
                       char *err, size_t errlen) {
  if (t->abi_version != WEBSOCK_ABI_VERSION) {
    snprintf(err, errlen,
             "%s: unknown ABI version %u in " WEBSOCK_HANDLER_SYMBOL
             " (this host knows version %d)",
             so_path, t->abi_version, WEBSOCK_ABI_VERSION);
    return WEBSOCK_EINVAL;
  }
  if (t->struct_size < WSH_HANDLER_MIN_SIZE) {
    snprintf(err, errlen,
             "%s: " WEBSOCK_HANDLER_SYMBOL " is too small (struct_size %u, "
             "at least %zu needed for ABI version %d)",
             so_path, t->struct_size, WSH_HANDLER_MIN_SIZE,
             WEBSOCK_ABI_VERSION);
    return WEBSOCK_EINVAL;
  }
  if (!t->handle_in) {
    snprintf(err, errlen,
             "%s: " WEBSOCK_HANDLER_SYMBOL " has no handle_in (it is required)",
             so_path);
    return WEBSOCK_EINVAL;
  }
  return 0;
}
