/*
 * api.c - the websock_* functions a plugin calls (declared in websock.h),
 * exported from the websockd executable to the plugins it loads.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "network/conn.h"
#include "network/msgs.h"
#include "network/outq.h"
#include "plugins/contract.h"
#include "protocol/handshake.h"
#include "base/log.h"
#include "plugins/route.h"
#include "plugins/statebuf.h"
#include "bus/topic.h"
#include "websock.h"
#include "network/worker.h"

/* May the plugin act on this connection now? */
static int check_open(const websock_conn *c) {
  return wsh_contract_conn(c, c && c->in_callback, true,
                           c && c->state == WSH_CONN_OPEN);
}

/* May the plugin act on this connection, open or closing? */
static int check_in_callback(const websock_conn *c) {
  return wsh_contract_conn(c, c && c->in_callback, false, false);
}

int websock_push(websock_conn *conn, websock_opcode opcode, const void *data,
                 size_t len) {
  int rc = check_open(conn);
  if (rc)
    return rc;
  if ((rc = wsh_contract_push(opcode, data, len)) != 0)
    return rc;
  return wsh_conn_push(conn, (uint8_t)opcode, data, len);
}

int websock_push_uncompressed(websock_conn *conn, websock_opcode opcode,
                              const void *data, size_t len) {
  int rc = check_open(conn);
  if (rc)
    return rc;
  if ((rc = wsh_contract_push(opcode, data, len)) != 0)
    return rc;
  return wsh_conn_push_as(conn, (uint8_t)opcode, data, len, true);
}

int websock_conn_compressed(const websock_conn *conn) {
  return conn && conn->pmd_on ? 1 : 0;
}

static int set_stop(websock_conn *c, int kind, uint16_t code,
                    const char *text) {
  int rc = check_open(c);
  if (rc)
    return rc;
  wsh_conn_more *m = wsh_conn_more_of(c);
  char *copy = NULL;
  if (!m || (text && !(copy = strdup(text))))
    return WEBSOCK_ENOMEM;
  free(m->stop_text);
  m->stop_text = copy;
  m->stop_code = code;
  c->stop_kind = (uint8_t)kind;
  return 0;
}

int websock_close(websock_conn *conn, uint16_t code, const char *text) {
  if (!wsh_contract_close_code(code))
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
  return conn ? wsh_outq_unsent(conn) : 0;
}

const websock_request *websock_conn_request(const websock_conn *conn) {
  return conn ? conn->req : NULL;
}

const char *websock_conn_subprotocol(const websock_conn *conn) {
  return conn && conn->more ? conn->more->subprotocol : NULL;
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
  char who[192];
  if (conn)
    wsh_log(level, "route %s conn %llu: %s", websock_conn_route(conn),
            (unsigned long long)conn->id, msg);
  else if (wsh_plugin_label_at(__builtin_return_address(0), who, sizeof(who)))
    wsh_log(level, "%s: %s", who, msg); /* the generation whose code called */
  /* else inside a call the host made into a plugin on this thread, from
   * which a tail call leaves no return address in the plugin */
  else if (wsh_crash_current.label && wsh_crash_current.label[0])
    wsh_log(level, "%s: %s", wsh_crash_current.label, msg);
  else if (wsh_crash_current.route)
    wsh_log(level, "route %s plugin %s: %s", wsh_crash_current.route,
            wsh_crash_current.plugin ? wsh_crash_current.plugin : "?", msg);
  else
    wsh_log(level, "plugin: %s", msg);
}

const char *websock_conn_param(const websock_conn *conn, const char *name) {
  if (!conn || !conn->more || !name)
    return NULL;
  for (size_t i = 0; i < conn->more->nparams; i++)
    if (strcmp(conn->more->params[i].name, name) == 0)
      return conn->more->params[i].value;
  return NULL;
}

void *websock_conn_context(const websock_conn *conn) {
  return conn && conn->gen ? conn->gen->conf->options.context : NULL;
}

int websock_options_set_context(const websock_options *options, void *context) {
  if (!options)
    return WEBSOCK_EINVAL;
  if (!options->loading)
    return WEBSOCK_ECONTEXT;
  /* load() is handed the options as const; they are the host's, and the
   * context is the one field a plugin may set in them. */
  ((websock_options *)options)->context = context;
  return 0;
}

void *websock_options_context(const websock_options *options) {
  return options ? options->context : NULL;
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

/* ---- messages, timers, topics -------------------------------------------- */

websock_ref websock_self(const websock_conn *conn) {
  websock_ref ref = {NULL, 0};
  if (conn && conn->in_slot) {
    ref.host_ = conn->w->host;
    ref.id_ =
        wsh_ref_pack((wsh_ref_parts){conn->w->index, conn->slot, conn->serial});
  }
  return ref;
}

websock_host *websock_conn_host(const websock_conn *conn) {
  return conn ? conn->w->host : NULL;
}

websock_host *websock_options_host(const websock_options *options) {
  return options ? options->host : NULL;
}

int websock_send(websock_ref to, const void *data, size_t len) {
  const websock_host *host = to.host_;
  if (!host || to.id_ == 0)
    return WEBSOCK_ENOENT;
  if (len && !data)
    return WEBSOCK_EINVAL;
  wsh_ref_parts p = wsh_ref_unpack(to.id_);
  if (host->remote) {
    /* On another host: through the bus, at most once (a host that is gone
     * is counted there, not seen here). */
    wsh_bus_ref r = {host->remote, p.worker, p.slot, p.serial};
    int rc = wsh_bus_send_to(host->local->bus, &r, data, len);
    return rc == WEBSOCK_ENOMEM ? rc : 0;
  }
  if (p.worker >= host->nworkers)
    return WEBSOCK_ENOENT;
  return wsh_worker_post_send(&host->workers[p.worker], p.slot, p.serial, data,
                              len);
}

int64_t websock_send_after(websock_conn *conn, uint64_t ms, const void *data,
                           size_t len) {
  int rc = check_open(conn);
  if (rc)
    return rc;
  if (len && !data)
    return WEBSOCK_EINVAL;
  return wsh_conn_send_after(conn, ms, data, len);
}

int websock_cancel_timer(websock_conn *conn, int64_t timer_id) {
  int rc = check_in_callback(conn);
  if (rc)
    return rc;
  return wsh_msgs_cancel_timer(conn, timer_id);
}

int websock_subscribe(websock_conn *conn, const char *topic) {
  int rc = check_open(conn);
  return rc ? rc : wsh_msgs_subscribe(conn, topic);
}

int websock_unsubscribe(websock_conn *conn, const char *topic) {
  if (!topic)
    return WEBSOCK_EINVAL;
  int rc = check_in_callback(conn);
  if (rc)
    return rc;
  return wsh_msgs_unsubscribe(conn, topic);
}

static int check_topic(const websock_host *host, const char *topic) {
  return host && wsh_contract_topic(topic) ? 0 : WEBSOCK_EINVAL;
}

/* A publish or broadcast: this host's subscribers at once, then the other
 * hosts' through the bus (a no-op without --redis). */
static int publish(websock_host *host, int kind, int opcode, const char *topic,
                   const void *data, size_t len) {
  if (host->remote)
    host = host->local; /* a record of another host: publish from here */
  int rc = wsh_host_post_topic(host, kind, opcode, topic, data, len, false);
  if (host->bus)
    wsh_bus_publish(host->bus, topic,
                    kind == WSH_MAIL_PUBLISH ? WSH_BUS_PUBLISH
                                             : WSH_BUS_BROADCAST,
                    kind == WSH_MAIL_PUBLISH ? 0 : opcode, data, len);
  return rc;
}

int websock_publish(websock_host *host, const char *topic, const void *data,
                    size_t len) {
  if (check_topic(host, topic) || (len && !data))
    return WEBSOCK_EINVAL;
  return publish(host, WSH_MAIL_PUBLISH, 0, topic, data, len);
}

int websock_broadcast(websock_host *host, const char *topic,
                      websock_opcode opcode, const void *data, size_t len) {
  if (check_topic(host, topic) || (len && !data) ||
      !wsh_contract_broadcast_opcode(opcode))
    return WEBSOCK_EINVAL;
  return publish(host, WSH_MAIL_BROADCAST, (int)opcode, topic, data, len);
}

websock_info_kind websock_info_source(const websock_conn *conn,
                                      int64_t *timer_id, const char **topic) {
  bool inside = conn && conn->in_callback && conn->w->info_conn == conn;
  websock_info_kind kind = inside ? conn->w->info_kind : WEBSOCK_INFO_NONE;
  if (timer_id)
    *timer_id = kind == WEBSOCK_INFO_TIMER ? conn->w->info_timer : 0;
  if (topic)
    *topic = kind == WEBSOCK_INFO_PUBLISH ? conn->w->info_topic : NULL;
  return kind;
}

int64_t websock_topic_subscribers(websock_host *host, const char *topic) {
  if (check_topic(host, topic))
    return WEBSOCK_EINVAL;
  if (host->remote)
    host = host->local;
  return (int64_t)wsh_topic_counts_get(&host->counts, topic);
}

int64_t websock_topic_subscribers_all(websock_host *host, const char *topic) {
  if (check_topic(host, topic))
    return WEBSOCK_EINVAL;
  if (host->remote)
    host = host->local;
  return (int64_t)wsh_topic_counts_get(&host->counts, topic) +
         (host->bus ? wsh_bus_topic_others(host->bus, topic) : 0);
}

/* ---- references as text -------------------------------------------------- */

int websock_ref_format(websock_ref ref, char *out, size_t cap) {
  const websock_host *host = ref.host_;
  if (!out || cap < WEBSOCK_REF_STRLEN)
    return WEBSOCK_EINVAL;
  if (!host || ref.id_ == 0)
    return WEBSOCK_ENOENT;
  wsh_ref_parts p = wsh_ref_unpack(ref.id_);
  const websock_host *local = host->remote ? host->local : host;
  if (!local->bus)
    return WEBSOCK_ENOENT;
  wsh_bus_ref r = {host->remote ? host->remote : wsh_bus_host_id(local->bus),
                   p.worker, p.slot, p.serial};
  int n = wsh_bus_ref_format(out, cap, &r);
  return n < 0 ? n : (int)strlen(out);
}

int websock_ref_parse(websock_host *host, const char *s, websock_ref *out) {
  wsh_bus_ref r;
  if (!host || !s || !out)
    return WEBSOCK_EINVAL;
  if (host->remote)
    host = host->local;
  *out = (websock_ref){NULL, 0};
  if (!host->bus || wsh_bus_ref_parse(&r, s, strlen(s)) != 0 ||
      r.worker > 255 || r.slot > 0xFFFFFFu || r.serial == 0)
    return WEBSOCK_EINVAL;
  websock_host *h = host;
  if (r.host != wsh_bus_host_id(host->bus) &&
      !(h = wsh_host_remote(host, r.host)))
    return WEBSOCK_ENOMEM;
  out->host_ = h;
  out->id_ = wsh_ref_pack((wsh_ref_parts){r.worker, r.slot, r.serial});
  return 0;
}

int websock_buf_append(websock_buf *buf, const void *data, size_t len) {
  return wsh_statebuf_append(buf, data, len);
}
