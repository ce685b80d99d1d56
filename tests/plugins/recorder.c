/*
 * recorder.c - a test plugin that records every callback it gets and acts on
 * text commands, so that integration tests can drive the whole plugin API
 * from a client and check, afterwards, what the host called and in what order.
 *
 * Recording: the route's [options] `record = /path/file` names a file; each
 * callback appends one line to it with a single write(2) (O_APPEND):
 *
 *   load                          load() accepted the route
 *   load refused                  load() refused it ([options] refuse = yes)
 *   upgrade /path?query           upgrade() ("upgrade /path" without a query)
 *   init ID
 *   in ID text|binary LEN
 *   control ID ping|pong LEN
 *   handle_info ID LEN
 *   pushfail ID RC                websock_push() returned RC (say -5, EFULL)
 *   closefail ID RC               websock_close() returned RC
 *   terminate ID KIND CODE TEXT   KIND as a number; TEXT may be empty (the
 *                                 line then ends with a space)
 *   export ID                     export_state() (reload = handoff)
 *   import ID                     import_state() took the connection over
 *   unload
 *
 * ID is unique within one loaded generation (each generation has its own
 * copy of this plugin, hence its own counter, starting at 1). Control bytes
 * in a line are written as '?', so a line is always one line.
 *
 * Behaviour: upgrade() refuses with 401 if the request has an X-Test-Refuse
 * header, picks the subprotocol NAME given as proto=NAME in the query (400
 * if the client did not offer it), adds "X-Recorder: yes" and hands a state
 * on to init(). init() stops if the query contains "initstop", else pushes
 * "hello". Binary messages are echoed as binary; text messages are commands:
 *
 *   echo:REST        push REST             close:CODE:TEXT  close so
 *   stop             stop (1000)           error:DETAIL     error stop (1011)
 *   restart          restart stop (1012)   push3            push one two three
 *   pushstop         push "bye", close 4000 "done"
 *   subprotocol      push it, or "none"    option:KEY       push it, or "none"
 *   info             push the route path   bad-result       return 42
 *   anything else    echoed back as text
 * On a live code upgrade the state (the ID) is exported as "rec1 ID"; the
 * new generation's import_state() keeps the ID and pushes "moved".
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <websock.h>

#include "record.h"

typedef struct rec_state {
  unsigned long long id;
} rec_state;

/* Set by load() before any connection, freed by unload() after the last:
 * read-only while callbacks run, so no lock. NULL: record nothing. */
static char *record_path;
static atomic_ullong next_id = 1;

#define record(...) record_to(record_path, __VA_ARGS__)

static unsigned long long state_id(const void *state) {
  return state ? ((const rec_state *)state)->id : 0;
}

static rec_state *state_new(void) {
  rec_state *st = malloc(sizeof(*st));
  if (st)
    st->id = atomic_fetch_add(&next_id, 1);
  return st;
}

static void push(websock_conn *conn, const void *state, websock_opcode op,
                 const void *data, size_t len) {
  int rc = websock_push(conn, op, data, len);
  if (rc != 0)
    record("pushfail %llu %d", state_id(state), rc);
}

static void push_text(websock_conn *conn, const void *state, const char *s) {
  push(conn, state, WEBSOCK_OP_TEXT, s, strlen(s));
}

/* A malloc'd NUL-terminated copy of data[0..len), or NULL. */
static char *copy_str(const uint8_t *data, size_t len) {
  char *s = malloc(len + 1);
  if (s) {
    if (len)
      memcpy(s, data, len);
    s[len] = '\0';
  }
  return s;
}

static int is_cmd(const uint8_t *data, size_t len, const char *cmd) {
  return len == strlen(cmd) && memcmp(data, cmd, len) == 0;
}

static int has_prefix(const uint8_t *data, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(data, prefix, n) == 0;
}

/* The value of NAME=VALUE in a query string, copied into out; 1 if found. */
static int query_param(const char *query, const char *name, char *out,
                       size_t outlen) {
  size_t n = strlen(name);
  const char *p = query;
  while (p && *p) {
    if (strncmp(p, name, n) == 0 && p[n] == '=') {
      const char *v = p + n + 1;
      size_t vlen = strcspn(v, "&");
      if (vlen >= outlen)
        vlen = outlen - 1;
      memcpy(out, v, vlen);
      out[vlen] = '\0';
      return 1;
    }
    if ((p = strchr(p, '&')))
      p++;
  }
  return 0;
}

static int rec_load(const websock_options *options) {
  const char *path = websock_option(options, "record");
  if (path && *path && !(record_path = strdup(path)))
    return -1;
  const char *refuse = websock_option(options, "refuse");
  if (refuse && strcmp(refuse, "yes") == 0) {
    record("load refused");
    free(record_path);
    record_path = NULL;
    return -1;
  }
  record("load");
  return 0;
}

static void rec_unload(void) {
  record("unload");
  free(record_path);
  record_path = NULL;
}

static int rec_upgrade(const websock_request *req, websock_response *resp) {
  const char *path = websock_request_path(req);
  const char *query = websock_request_query(req);
  int has_query = query && *query;
  record("upgrade %s%s%s", path ? path : "", has_query ? "?" : "",
         has_query ? query : "");
  if (websock_request_header(req, "X-Test-Refuse")) {
    websock_response_add_header(resp, "WWW-Authenticate",
                                "Bearer realm=\"test\"");
    websock_response_set_body(resp, "go away\n");
    return 401;
  }
  char proto[256];
  if (query_param(query, "proto", proto, sizeof(proto)) &&
      websock_response_set_subprotocol(resp, proto) != 0)
    return 400;
  if (websock_response_add_header(resp, "X-Recorder", "yes") != 0)
    return 500;
  rec_state *st = state_new();
  if (!st)
    return 503;
  websock_response_set_state(resp, st);
  return 0;
}

static int rec_init(websock_conn *conn, void **state) {
  rec_state *st = *state;
  if (!st && !(st = *state = state_new())) /* no upgrade() ran: not expected */
    return WEBSOCK_STOP;
  record("init %llu", st->id);
  const websock_request *req = websock_conn_request(conn);
  const char *query = req ? websock_request_query(req) : NULL;
  if (query && strstr(query, "initstop")) {
    free(st);
    *state = NULL;
    return WEBSOCK_STOP;
  }
  push_text(conn, st, "hello");
  return WEBSOCK_OK;
}

/* close:CODE:TEXT */
static int cmd_close(websock_conn *conn, void *st, const uint8_t *data,
                     size_t len) {
  char *arg = copy_str(data + 6, len - 6);
  if (!arg)
    return WEBSOCK_STOP;
  char *end;
  unsigned long code = strtoul(arg, &end, 10);
  const char *text = *end == ':' ? end + 1 : NULL;
  int rc = websock_close(conn, code <= 65535 ? (uint16_t)code : 0, text);
  if (rc != 0)
    record("closefail %llu %d", state_id(st), rc);
  free(arg);
  return WEBSOCK_STOP;
}

/* error:DETAIL */
static int cmd_error(websock_conn *conn, const uint8_t *data, size_t len) {
  char *detail = copy_str(data + 6, len - 6);
  websock_close_error(conn, detail);
  free(detail);
  return WEBSOCK_STOP;
}

/* option:KEY */
static int cmd_option(websock_conn *conn, void *st, const uint8_t *data,
                      size_t len) {
  char *key = copy_str(data + 7, len - 7);
  if (!key)
    return WEBSOCK_STOP;
  const char *value = websock_conn_option(conn, key);
  push_text(conn, st, value ? value : "none");
  free(key);
  return WEBSOCK_OK;
}

static int text_command(websock_conn *conn, void *st, const uint8_t *data,
                        size_t len) {
  if (has_prefix(data, len, "echo:")) {
    push(conn, st, WEBSOCK_OP_TEXT, data + 5, len - 5);
  } else if (has_prefix(data, len, "close:")) {
    return cmd_close(conn, st, data, len);
  } else if (is_cmd(data, len, "stop")) {
    return WEBSOCK_STOP;
  } else if (has_prefix(data, len, "error:")) {
    return cmd_error(conn, data, len);
  } else if (is_cmd(data, len, "restart")) {
    websock_close_restart(conn);
    return WEBSOCK_STOP;
  } else if (is_cmd(data, len, "push3")) {
    push_text(conn, st, "one");
    push_text(conn, st, "two");
    push_text(conn, st, "three");
  } else if (is_cmd(data, len, "pushstop")) {
    push_text(conn, st, "bye");
    websock_close(conn, 4000, "done");
    return WEBSOCK_STOP;
  } else if (is_cmd(data, len, "subprotocol")) {
    const char *sp = websock_conn_subprotocol(conn);
    push_text(conn, st, sp ? sp : "none");
  } else if (has_prefix(data, len, "option:")) {
    return cmd_option(conn, st, data, len);
  } else if (is_cmd(data, len, "bad-result")) {
    return 42; /* not a websock_result: the host must close with 1011 */
  } else if (is_cmd(data, len, "info")) {
    const char *route = websock_conn_route(conn);
    push_text(conn, st, route ? route : "none");
  } else {
    push(conn, st, WEBSOCK_OP_TEXT, data, len);
  }
  return WEBSOCK_OK;
}

static int rec_handle_in(websock_conn *conn, void **state,
                         websock_opcode opcode, const uint8_t *data,
                         size_t len) {
  int text = opcode == WEBSOCK_OP_TEXT;
  record("in %llu %s %zu", state_id(*state), text ? "text" : "binary", len);
  if (!text) {
    push(conn, *state, WEBSOCK_OP_BINARY, data, len);
    return WEBSOCK_OK;
  }
  return text_command(conn, *state, data, len);
}

static int rec_handle_control(websock_conn *conn, void **state,
                              websock_opcode opcode, const uint8_t *data,
                              size_t len) {
  (void)conn;
  (void)data;
  record("control %llu %s %zu", state_id(*state),
         opcode == WEBSOCK_OP_PING   ? "ping"
         : opcode == WEBSOCK_OP_PONG ? "pong"
                                     : "other",
         len);
  return WEBSOCK_OK;
}

static int rec_handle_info(websock_conn *conn, void **state,
                           const uint8_t *data, size_t len) {
  record("handle_info %llu %zu", state_id(*state), len);
  push(conn, *state, WEBSOCK_OP_BINARY, data, len);
  return WEBSOCK_OK;
}

static void rec_terminate(websock_conn *conn, void *state,
                          const websock_reason *reason) {
  (void)conn;
  record("terminate %llu %d %u %s", state_id(state), (int)reason->kind,
         (unsigned)reason->code, reason->text ? reason->text : "");
  free(state);
}

static int rec_export(websock_conn *conn, void *state, websock_buf *out) {
  (void)conn;
  char buf[64];
  int n = snprintf(buf, sizeof(buf), "rec1 %llu", state_id(state));
  record("export %llu", state_id(state));
  int rc = websock_buf_append(out, buf, (size_t)n);
  if (rc == 0)
    free(state);
  return rc;
}

static int rec_import(websock_conn *conn, const uint8_t *data, size_t len,
                      void **state) {
  char buf[64];
  unsigned long long id;
  if (len >= sizeof(buf))
    return -1;
  memcpy(buf, data, len);
  buf[len] = '\0';
  rec_state *st;
  if (sscanf(buf, "rec1 %llu", &id) != 1 || !(st = malloc(sizeof(*st))))
    return -1;
  st->id = id;
  *state = st;
  record("import %llu", id);
  push_text(conn, st, "moved");
  return 0;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "recorder",
    .version = "1.0.0",
    .load = rec_load,
    .unload = rec_unload,
    .upgrade = rec_upgrade,
    .init = rec_init,
    .handle_in = rec_handle_in,
    .handle_control = rec_handle_control,
    .handle_info = rec_handle_info,
    .terminate = rec_terminate,
    .export_state = rec_export,
    .import_state = rec_import,
};
