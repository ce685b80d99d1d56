/*
 * old_abi_small.c - a test plugin built as if against an older websock.h
 * whose table ended at handle_in: struct_size covers the fields up to and
 * including handle_in only. It must load, with every later field absent.
 *
 * To prove the host reads nothing beyond struct_size, the table is followed
 * in memory by non-NULL pointers in the places a newer header puts
 * handle_control, handle_info and terminate; they abort if ever called.
 */
#include <stddef.h>
#include <stdlib.h>

#include <websock.h>

/* struct websock_handler as an older header declared it. */
struct old_handler {
  uint32_t abi_version;
  uint32_t struct_size;
  const char *name;
  const char *version;
  int (*load)(const websock_options *options);
  void (*unload)(void);
  int (*upgrade)(const websock_request *req, websock_response *resp);
  int (*init)(websock_conn *conn, void **state);
  int (*handle_in)(websock_conn *conn, void **state, websock_opcode opcode,
                   const uint8_t *data, size_t len);
};

/* What lies after the old table: fields the old header did not have. */
struct old_table_and_beyond {
  struct old_handler h;
  int (*not_handle_control)(websock_conn *conn, void **state,
                            websock_opcode opcode, const uint8_t *data,
                            size_t len);
  int (*not_handle_info)(websock_conn *conn, void **state, const uint8_t *data,
                         size_t len);
  void (*not_terminate)(websock_conn *conn, void *state,
                        const websock_reason *reason);
};

_Static_assert(sizeof(struct old_handler) ==
                   offsetof(struct websock_handler, handle_in) + sizeof(void *),
               "the old table ends right after handle_in");
_Static_assert(offsetof(struct old_handler, handle_in) ==
                   offsetof(struct websock_handler, handle_in),
               "the old table is a prefix of the current one");
_Static_assert(offsetof(struct old_table_and_beyond, not_handle_control) ==
                   offsetof(struct websock_handler, handle_control),
               "the poison sits where handle_control is today");

static int oa_handle_in(websock_conn *conn, void **state, websock_opcode opcode,
                        const uint8_t *data, size_t len) {
  (void)state;
  return websock_push(conn, opcode, data, len) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

static int oa_poison_control(websock_conn *conn, void **state,
                             websock_opcode opcode, const uint8_t *data,
                             size_t len) {
  (void)conn;
  (void)state;
  (void)opcode;
  (void)data;
  (void)len;
  abort();
}

static int oa_poison_info(websock_conn *conn, void **state, const uint8_t *data,
                          size_t len) {
  (void)conn;
  (void)state;
  (void)data;
  (void)len;
  abort();
}

static void oa_poison_terminate(websock_conn *conn, void *state,
                                const websock_reason *reason) {
  (void)conn;
  (void)state;
  (void)reason;
  abort();
}

WEBSOCK_EXPORT const struct old_table_and_beyond websock_handler_v1 = {
    .h =
        {
            .abi_version = WEBSOCK_ABI_VERSION,
            .struct_size = sizeof(struct old_handler),
            .name = "old_abi_small",
            .version = "0.9.0",
            .handle_in = oa_handle_in,
        },
    .not_handle_control = oa_poison_control,
    .not_handle_info = oa_poison_info,
    .not_terminate = oa_poison_terminate,
};
