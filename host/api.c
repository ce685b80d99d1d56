/*
 * api.c - the websock_* functions a plugin calls (declared in websock.h),
 * exported from the websockd executable to the plugins it loads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conn.h"
#include "handshake.h"
#include "log.h"
#include "route.h"
#include "websock.h"

const char *websock_strerror(int err) {
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

/* May the plugin act on this connection now? */
static int check_open(const websock_conn *c) {
  if (!c)
    return WEBSOCK_EINVAL;
  if (!c->in_callback)
    return WEBSOCK_ECONTEXT;
  if (c->state != WSH_CONN_OPEN)
    return WEBSOCK_ECLOSED;
  return 0;
}

int websock_push(websock_conn *conn, websock_opcode opcode, const void *data,
                 size_t len) {
  int rc = check_open(conn);
  if (rc)
    return rc;
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
  if (len && !data)
    return WEBSOCK_EINVAL;
  return wsh_conn_send_frame(conn, (uint8_t)opcode, data, len);
}

/* Codes a server may put in a close frame it sends. */
static int close_code_sendable(uint16_t code) {
  return (code >= 1000 && code <= 1003 && code != 1002) ||
         (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

static int set_stop(websock_conn *c, int kind, uint16_t code, const char *text) {
  int rc = check_open(c);
  if (rc)
    return rc;
  char *copy = NULL;
  if (text && !(copy = strdup(text)))
    return WEBSOCK_ENOMEM;
  free(c->stop_text);
  c->stop_text = copy;
  c->stop_kind = (uint8_t)kind;
  c->stop_code = code;
  return 0;
}

int websock_close(websock_conn *conn, uint16_t code, const char *text) {
  if (!close_code_sendable(code))
    return WEBSOCK_EINVAL;
  return set_stop(conn, WSH_STOP_NORMAL, code, text);
}

int websock_close_error(websock_conn *conn, const char *detail) {
  return set_stop(conn, WSH_STOP_ERROR, WSH_CLOSE_INTERNAL, detail);
}

int websock_close_restart(websock_conn *conn) {
  return set_stop(conn, WSH_STOP_RESTART, WSH_CLOSE_RESTART, NULL);
}

size_t websock_unsent_bytes(const websock_conn *conn) {
  if (!conn || !conn->bev)
    return 0;
  return evbuffer_get_length(bufferevent_get_output(conn->bev));
}

const websock_request *websock_conn_request(const websock_conn *conn) {
  return conn ? conn->req : NULL;
}

const char *websock_conn_subprotocol(const websock_conn *conn) {
  return conn ? conn->subprotocol : NULL;
}

const char *websock_conn_option(const websock_conn *conn, const char *key) {
  if (!conn || !conn->gen)
    return NULL;
  return websock_option(&conn->gen->conf->options, key);
}

const char *websock_conn_route(const websock_conn *conn) {
  return conn && conn->gen ? conn->gen->conf->path : NULL;
}

void websock_log(const websock_conn *conn, int level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (level < WSH_LOG_ERROR)
    level = WSH_LOG_ERROR;
  if (level > WSH_LOG_DEBUG)
    level = WSH_LOG_DEBUG;
  if (conn)
    wsh_log(level, "route %s conn %llu: %s", websock_conn_route(conn),
            (unsigned long long)conn->id, msg);
  else
    wsh_log(level, "plugin: %s", msg);
}

const char *websock_option(const websock_options *options, const char *key) {
  if (!options || !key)
    return NULL;
  for (size_t i = 0; i < options->n; i++)
    if (strcmp(options->items[i].key, key) == 0)
      return options->items[i].value;
  return NULL;
}

size_t websock_option_count(const websock_options *options) {
  return options ? options->n : 0;
}

int websock_option_at(const websock_options *options, size_t i,
                      const char **key, const char **value) {
  if (!options || i >= options->n)
    return WEBSOCK_ENOENT;
  if (key)
    *key = options->items[i].key;
  if (value)
    *value = options->items[i].value;
  return 0;
}
