/*
 * http.c - the HTTP side of a connection (see http.h).
 */
#include "network/http.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/contract.h"
#include "network/compress.h"
#include "network/outq.h"

/* Queues the answer to the request (a refusal, or 200 for /healthz and
 * /metrics), counted and logged. */
static void respond(websock_conn *c, websock_response *resp, const char *why) {
  char *out;
  size_t len;
  const char *path = c->req && c->req->path ? c->req->path : "-";
  wsh_stat_add(&c->w->stats.responses[wsh_status_index(resp->status)], 1);
  wsh_info("%s %s %s: %d%s%s", wsh_conn_peer(c).s,
           c->req ? c->req->method : "-", path, resp->status, why ? " " : "",
           why ? why : "");
  if (wsh_response_render(resp, NULL, &out, &len) == 0) {
    wsh_outq_add(c, out, len, NULL, 0);
    free(out);
  }
  wsh_response_free(resp);
}

static void respond_status(websock_conn *c, int status, const char *body,
                           const char *why) {
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = status;
  if (body)
    websock_response_set_body(&resp, body);
  respond(c, &resp, why);
}

static void answer_metrics(websock_conn *c) {
  char *text = NULL;
  const wsh_conn_env *env = c->w->env;
  if (env->render_metrics(env->metrics_arg, &text) != 0) {
    respond_status(c, 500, NULL, "(out of memory)");
    return;
  }
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = 200;
  websock_response_add_header(&resp, "Content-Type",
                              "text/plain; version=0.0.4");
  websock_response_set_body(&resp, text);
  free(text);
  respond(c, &resp, NULL);
}

static bool get_or_head(const websock_request *req) {
  return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* A known path asked with a method it does not serve. */
static void answer_405(websock_conn *c) {
  websock_response resp;
  wsh_response_init(&resp, c->req);
  resp.status = 405;
  websock_response_add_header(&resp, "Allow", "GET, HEAD");
  respond(c, &resp, "(method not allowed)");
}

/* Plain HTTP: /healthz, /metrics, the browser pages (when enabled: a
 * route's dev console, /status), 426 at a WebSocket route (GET or HEAD),
 * 405 for another method at one of these, or 404. */
static void answer_plain_http(websock_conn *c) {
  const char *path = c->req->path;
  bool healthz = strcmp(path, "/healthz") == 0;
  bool metrics = strcmp(path, "/metrics") == 0;
  bool route = false;
  if (!healthz && !metrics) {
    wsh_generation *g = wsh_registry_acquire(c->w->env->reg, path);
    route = g != NULL;
    if (g)
      wsh_generation_release(g);
  }
  const wsh_conn_env *env = c->w->env;
  websock_response page;
  const char *why = NULL;
  int console =
      healthz || metrics || !env->answer_page
          ? 0
          : env->answer_page(env->page_arg, c->req, route, &page, &why);
  if (console > 0)
    respond(c, &page, why);
  else if (console < 0)
    respond_status(c, 500, NULL, "(out of memory)");
  else if (!healthz && !metrics && !route)
    respond_status(c, 404, NULL, NULL);
  else if (!get_or_head(c->req))
    answer_405(c);
  else if (healthz)
    respond_status(c, 200, "ok\n", NULL);
  else if (metrics)
    answer_metrics(c);
  else
    respond_status(c, 426, "This is a WebSocket endpoint: upgrade required.\n",
                   "(plain HTTP at a WebSocket route)");
}

/* The plugin's upgrade(), if any: 0 to go on, or a refusal already sent. */
static int call_upgrade(websock_conn *c, websock_response *resp) {
  const struct websock_handler *h = wsh_conn_handler(c);
  if (!h->upgrade)
    return 0;
  uint64_t t0 = wsh_callback_enter(c, "upgrade");
  int status = h->upgrade(c->req, resp);
  wsh_callback_leave(c, "upgrade", t0);
  if (status == 0)
    return 0;
  if (wsh_contract_upgrade_status(status) != status) {
    wsh_error("route %s: upgrade() returned %d (want 0 or 400-599)",
              c->gen->conf->path, status);
    wsh_response_free(resp);
    respond_status(c, 500, NULL, "(invalid upgrade() result)");
    return -1;
  }
  resp->status = status;
  respond(c, resp, "(refused by the plugin's upgrade())");
  return -1;
}

/* The upgrade: ANSWERED with a refusal, or UPGRADED with resp filled. */
static wsh_http_result answer_upgrade(websock_conn *c,
                                      websock_response *out_resp) {
  const wsh_route_conf *rc = c->gen->conf;
  const char *why = NULL;
  int status = wsh_request_check_upgrade(c->req, &why);
  if (status) {
    respond_status(c, status, NULL, why);
    return WSH_HTTP_ANSWERED;
  }
  if (!wsh_route_origin_allowed(rc, websock_request_header(c->req, "Origin"))) {
    respond_status(c, 403, "Origin not allowed.\n", "(origin not allowed)");
    return WSH_HTTP_ANSWERED;
  }
  if (wsh_conn_refuse_upgrades(c->w->env)) {
    wsh_stat_add(&c->w->stats.mem_refused, 1);
    respond_status(c, 503, "Server busy (memory): try again later.\n",
                   "(over 90 % of max_buffered_memory)");
    return WSH_HTTP_ANSWERED;
  }
  if (!wsh_conn_count_open(c)) {
    respond_status(c, 503, "Too many connections.\n",
                   "(max_connections reached)");
    return WSH_HTTP_ANSWERED;
  }
  c->req->subprotocol =
      wsh_negotiate_subprotocol(c->req, rc->subprotocols, rc->nsubprotocols);
  websock_response resp;
  wsh_response_init(&resp, c->req);
  if (c->req->subprotocol &&
      !(resp.subprotocol = strdup(c->req->subprotocol))) {
    wsh_response_free(&resp);
    respond_status(c, 500, NULL, "(out of memory)");
    return WSH_HTTP_ANSWERED;
  }
  if (call_upgrade(c, &resp) != 0)
    return WSH_HTTP_ANSWERED;
  wsh_compress_negotiate(c, &resp);
  char accept[29], *out;
  size_t len;
  wsh_accept_key(websock_request_header(c->req, "Sec-WebSocket-Key"), accept);
  if (wsh_response_render(&resp, accept, &out, &len) != 0) {
    wsh_response_free(&resp);
    respond_status(c, 500, NULL, "(out of memory)");
    return WSH_HTTP_ANSWERED;
  }
  wsh_outq_add(c, out, len, NULL, 0);
  free(out);
  wsh_stat_add(&c->w->stats.responses[WSH_STATUS_101], 1);
  if (wsh_log_level() >= WSH_LOG_DEBUG) /* the peer costs a snprintf */
    wsh_debug("%s GET %s: 101 (conn %llu, generation %u%s%s)",
              wsh_conn_peer(c).s, c->req->path, (unsigned long long)c->id,
              c->gen->id, resp.subprotocol ? ", subprotocol " : "",
              resp.subprotocol ? resp.subprotocol : "");
  *out_resp = resp;
  return WSH_HTTP_UPGRADED;
}

/* Behind a trusted reverse proxy the client is who X-Forwarded-For says
 * (trusted_proxies); from anyone else the header is not believed. */
static void apply_forwarded_for(websock_conn *c) {
  const wsh_cidr_list *trusted = &c->w->env->trusted;
  struct sockaddr_storage ss;
  socklen_t len;
  char real[sizeof(c->req->remote_addr)];
  if (trusted->n && wsh_parse_listen(c->req->remote_addr, &ss, &len) == 0 &&
      wsh_realip_from_xff(trusted, (struct sockaddr *)&ss,
                          websock_request_header(c->req, "X-Forwarded-For"),
                          real, sizeof(real)))
    memcpy(c->req->remote_addr, real, sizeof(real));
}

/* What the route's pattern captured, decoded into one block the
 * connection keeps (websock_conn_param) and the request borrows. The names
 * are copied too: a handoff moves the connection to another generation,
 * and the pattern they came from goes with the old one. Returns 0, 400 (a
 * value that does not decode) or 500. */
static int keep_params(websock_conn *c, const wsh_path_capture *caps, int n) {
  size_t size = (size_t)n * sizeof(wsh_param);
  for (int i = 0; i < n; i++)
    size += strlen(caps[i].name) + 1 + caps[i].len + 1;
  wsh_conn_more *m = wsh_conn_more_of(c);
  wsh_param *params = m ? malloc(size) : NULL;
  if (!params)
    return 500;
  char *text = (char *)(params + n);
  for (int i = 0; i < n; i++) {
    bool star = strcmp(caps[i].name, "*") == 0;
    long len = wsh_path_decode(caps[i].at, caps[i].len, !star, text);
    if (len < 0) {
      free(params);
      return 400;
    }
    char *name = text + len + 1;
    size_t name_len = strlen(caps[i].name);
    memcpy(name, caps[i].name, name_len + 1);
    params[i] = (wsh_param){name, text};
    text = name + name_len + 1;
  }
  m->params = params;
  m->nparams = (size_t)n;
  c->req->params = params;
  c->req->nparams = (size_t)n;
  return 0;
}

static wsh_http_result on_request(websock_conn *c, websock_response *resp) {
  apply_forwarded_for(c);
  if (!wsh_request_wants_websocket(c->req)) {
    answer_plain_http(c);
    return WSH_HTTP_ANSWERED;
  }
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  int ncaps;
  c->gen = wsh_registry_match(c->w->env->reg, c->req->path, caps, &ncaps);
  if (!c->gen) {
    respond_status(c, 404, NULL, "(no such route)");
    return WSH_HTTP_ANSWERED;
  }
  int status = ncaps ? keep_params(c, caps, ncaps) : 0;
  if (status) {
    respond_status(c, status, NULL,
                   status == 400 ? "(a path parameter does not decode)"
                                 : "(out of memory)");
    return WSH_HTTP_ANSWERED;
  }
  c->req->context = c->gen->conf->options.context;
  return answer_upgrade(c, resp);
}

wsh_http_result wsh_http_feed(websock_conn *c, const uint8_t *buf, size_t len,
                              size_t *used, websock_response *resp) {
  *used = 0;
  int rc = wsh_request_feed(c->req, (const char *)buf, len, used);
  if (rc == WSH_HS_NEED_MORE) {
    *used = len;
    return WSH_HTTP_MORE;
  }
  if (rc != WSH_HS_DONE) {
    respond_status(c, rc, NULL, "(bad request head)");
    *used = len;
    return WSH_HTTP_ANSWERED;
  }
  return on_request(c, resp);
}

void wsh_http_refuse(websock_conn *c, int status, const char *body,
                     const char *why) {
  respond_status(c, status, body, why);
}
