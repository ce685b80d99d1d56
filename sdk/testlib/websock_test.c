/*
 * websock_test.c - the fake websockd host of websock_test.h: every websock_*
 * function of websock.h, backed by in-memory connections, a message queue,
 * topics and a fake clock, so that a test can drive a plugin's callbacks and
 * check what it did without a network.
 *
 * The rules are the host's own: host/plugins/contract.c (what a callback may
 * call, how a result and a STOP close, what upgrade() may answer, the table
 * check), host/protocol/headers.c (response headers), host/protocol/frame.c
 * (close codes and close text), host/plugins/route_path.c (path patterns
 * and their parameters) and host/protocol/utf8.c are compiled into this
 * library as they are into websockd, and tests/integration/test_parity.py
 * drives one plugin through both. What stays here is the fake host's own
 * machinery. Everything runs on the test's thread except
 * websock_send/publish/broadcast, which may come from any thread and therefore
 * only queue, under the host's lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkstemps, strdup, strcasecmp */
#endif
#include "websock_test.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/contract.h"
#include "plugins/statebuf.h"
#include "plugins/route_path.h"
#include "protocol/frame.h"
#include "protocol/headers.h"
#include "protocol/utf8.h"

#define WST_MAX_CLOSE_TEXT (WSH_MAX_CONTROL - 2)
#define WST_RUN_LIMIT 1000000L
#define WST_DEFAULT_ROUTE "/test"
#define WST_STATE_MAX (1024 * 1024) /* the host's default max_message_size */

/* ---- types --------------------------------------------------------------- */

typedef struct wst_kv {
  char *key;
  char *value;
} wst_kv;

typedef struct wst_kvs {
  wst_kv *items;
  size_t n, cap;
} wst_kvs;

struct websock_options {
  wst_kvs kv;
  websock_host *host;
  void *context; /* websock_options_set_context(), in load() */
  int loading;   /* inside load() */
};

struct websock_request {
  char *method, *path, *query, *remote_addr;
  wst_kvs headers;
  char **offered; /* from the Sec-WebSocket-Protocol headers */
  size_t noffered, capoffered;
  const char *subprotocol; /* negotiated: points into the route's list */
  const wst_kvs *params;   /* the connection's path parameters */
  void *context;           /* the plugin's load() context */
};

struct websock_response {
  int status;
  wst_kvs headers;
  char *subprotocol;
  char *body;
  void *state;
  const websock_request *req;
};

typedef struct wst_timer {
  struct wst_timer *next;
  int64_t id;
  uint64_t due, seq;
  size_t len;
  uint8_t data[];
} wst_timer;

/* Lines logged through websock_log(), for websock_test_log_*(). */
typedef struct wst_logline {
  int level;
  char *text;
} wst_logline;

typedef struct wst_loglines {
  wst_logline *items;
  size_t n, cap;
} wst_loglines;

struct websock_conn {
  websock_host *host;
  websock_test_plugin *plugin;
  uint64_t id;
  websock_test_state state; /* written under host->lock (senders read it) */
  int in_callback;
  int plugin_open;  /* terminate() is owed */
  int show_request; /* websock_conn_request() answers (during init) */
  void *state_ptr;
  websock_request *req;
  websock_response resp;
  int stop_kind; /* how the coming WEBSOCK_STOP closes */
  uint16_t stop_code;
  char *stop_text;
  websock_test_msg *sent;
  size_t nsent, capsent;
  int closed;
  uint16_t close_code;
  char close_text[WST_MAX_CLOSE_TEXT + 1];
  int nterminate;
  websock_reason reason;
  char *reason_text;
  char **topics;
  size_t ntopics, captopics;
  wst_timer *timers;
  int64_t next_timer_id;
  wst_loglines log; /* what websock_log(conn, ...) said: under wst_log_lock */
  wst_kvs params;   /* what the route's path pattern captured, decoded */
  /* while handle_info runs: where its message came from */
  int in_info;
  websock_info_kind info_kind;
  int64_t info_timer;
  const char *info_topic;
};

struct websock_test_plugin {
  websock_host *host;
  void *dl;
  char *so_path, *copy_path, *route_path;
  char **subprotocols;
  size_t nsubprotocols, capsubprotocols;
  struct websock_handler h;
  websock_options options;
  wsh_path_pattern pattern; /* route_path as a pattern (or an exact path) */
  int loaded;
};

enum { WST_MAIL_SEND, WST_MAIL_PUBLISH, WST_MAIL_BROADCAST };

typedef struct wst_mail {
  struct wst_mail *next;
  int kind;
  uint64_t to;
  char *topic;
  websock_opcode opcode;
  size_t len;
  uint8_t data[];
} wst_mail;

struct websock_host {
  /* Guards conns (membership, ids, states) and the mail queue: the only
   * things other threads touch, through websock_send/publish/broadcast. */
  pthread_mutex_t lock;
  websock_conn **conns; /* in creation order */
  size_t nconns, capconns;
  wst_mail *mail_head, **mail_tail;
  websock_test_plugin **plugins;
  size_t nplugins, capplugins;
  uint64_t next_conn_id;
  uint64_t now, timer_seq;
  long timers_fired;
  int depth; /* > 0 while a plugin callback runs */
  int log_level;
  char err[1024];
};

/* Guards every recorded log line: websock_log() may be called from any
 * thread. The lines logged without a connection (load(), unload(), a
 * plugin's own thread) are process-wide: websock_log(NULL, ...) cannot tell
 * which host a thread belongs to. */
static pthread_mutex_t wst_log_lock = PTHREAD_MUTEX_INITIALIZER;
static wst_loglines wst_global_log;

/* ---- small helpers ------------------------------------------------------- */

/* arr with room for `need` elements of `size` bytes (realloc'd), or NULL
 * with arr untouched. */
static void *grow(void *arr, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return arr;
  size_t n = *cap ? *cap * 2 : 4;
  while (n < need)
    n *= 2;
  void *q = realloc(arr, n * size);
  if (q)
    *cap = n;
  return q;
}

__attribute__((format(printf, 2, 3))) static void
set_err(websock_host *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(h->err, sizeof(h->err), fmt, ap);
  va_end(ap);
}

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

/* A private copy of a callback's payload (never NULL on success). */
static uint8_t *dup_bytes(const void *data, size_t len) {
  uint8_t *p = malloc(len + 1);
  if (!p)
    return NULL;
  if (len)
    memcpy(p, data, len);
  p[len] = 0;
  return p;
}

/* ---- key/value lists ----------------------------------------------------- */

static int kvs_add(wst_kvs *k, const char *key, const char *value) {
  wst_kv *items = grow(k->items, &k->cap, k->n + 1, sizeof(*k->items));
  if (!items)
    return WEBSOCK_ENOMEM;
  k->items = items;
  char *kc = strdup(key), *vc = strdup(value);
  if (!kc || !vc) {
    free(kc);
    free(vc);
    return WEBSOCK_ENOMEM;
  }
  k->items[k->n++] = (wst_kv){kc, vc};
  return 0;
}

static void kvs_free(wst_kvs *k) {
  for (size_t i = 0; i < k->n; i++) {
    free(k->items[i].key);
    free(k->items[i].value);
  }
  free(k->items);
  memset(k, 0, sizeof(*k));
}

static const char *kvs_get(const wst_kvs *k, const char *key, bool nocase) {
  for (size_t i = 0; key && i < k->n; i++)
    if ((nocase ? strcasecmp : strcmp)(k->items[i].key, key) == 0)
      return k->items[i].value;
  return NULL;
}

/* Adds key, value, ..., NULL pairs. */
static int kvs_add_list(wst_kvs *k, const char *const *list) {
  for (size_t i = 0; list && list[i]; i += 2) {
    int rc = kvs_add(k, list[i], list[i + 1] ? list[i + 1] : "");
    if (rc)
      return rc;
    if (!list[i + 1])
      break;
  }
  return 0;
}

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* ---- connections: bookkeeping -------------------------------------------- */

static void set_state(websock_conn *c, websock_test_state s) {
  pthread_mutex_lock(&c->host->lock);
  c->state = s;
  pthread_mutex_unlock(&c->host->lock);
}

/* The connection with this id, or NULL. Caller holds the lock. */
static websock_conn *conn_find_locked(websock_host *h, uint64_t id) {
  for (size_t i = 0; i < h->nconns; i++)
    if (h->conns[i]->id == id)
      return h->conns[i];
  return NULL;
}

static void enter(websock_conn *c) {
  c->in_callback = 1;
  c->host->depth++;
}

static void leave(websock_conn *c) {
  c->in_callback = 0;
  c->host->depth--;
}

static int record_sent(websock_conn *c, websock_opcode op, const void *data,
                       size_t len, int shared) {
  websock_test_msg *sent =
      grow(c->sent, &c->capsent, c->nsent + 1, sizeof(*c->sent));
  if (!sent)
    return WEBSOCK_ENOMEM;
  c->sent = sent;
  uint8_t *copy = dup_bytes(data, len);
  if (!copy)
    return WEBSOCK_ENOMEM;
  c->sent[c->nsent++] = (websock_test_msg){op, copy, len, shared};
  return 0;
}

/* The close frame the host sends, its text cut as on the wire. */
static void record_close(websock_conn *c, uint16_t code, const char *text) {
  uint8_t payload[WSH_MAX_CONTROL];
  size_t n =
      wsh_close_payload(payload, code, text, text ? strlen(text) : 0) - 2;
  c->closed = 1;
  c->close_code = code;
  if (n)
    memcpy(c->close_text, payload + 2, n);
  c->close_text[n] = '\0';
}

static void timers_free(websock_conn *c) {
  while (c->timers) {
    wst_timer *t = c->timers;
    c->timers = t->next;
    free(t);
  }
}

/* The connection takes no more callbacks: it leaves its topics and timers. */
static void conn_leave(websock_conn *c) {
  pthread_mutex_lock(&c->host->lock); /* websock_topic_subscribers reads */
  strv_free(c->topics, c->ntopics);
  c->topics = NULL;
  c->ntopics = c->captopics = 0;
  pthread_mutex_unlock(&c->host->lock);
  timers_free(c);
}

static void request_free(websock_request *req) {
  if (!req)
    return;
  free(req->method);
  free(req->path);
  free(req->query);
  free(req->remote_addr);
  kvs_free(&req->headers);
  strv_free(req->offered, req->noffered);
  free(req);
}

/* ---- connections: the plugin's side -------------------------------------- */

static const struct websock_handler *handler(const websock_conn *c) {
  return &c->plugin->h;
}

/* terminate(), exactly once, for a connection whose init said OK. */
static void conn_terminate(websock_conn *c, websock_reason_kind kind,
                           uint16_t code, const char *text) {
  if (!c->plugin_open)
    return;
  c->plugin_open = 0;
  c->nterminate++;
  free(c->reason_text);
  c->reason_text = dup_or_empty(text);
  c->reason =
      (websock_reason){kind, code, c->reason_text ? c->reason_text : ""};
  if (handler(c)->terminate) {
    char *tmp = dup_or_empty(text);
    websock_reason r = {kind, code, tmp ? tmp : ""};
    enter(c);
    handler(c)->terminate(c, c->state_ptr, &r);
    leave(c);
    free(tmp);
  }
  c->state_ptr = NULL;
}

/* The host closes: the close frame (unless the TCP connection is gone),
 * then terminate() with the reason, then the connection leaves its topics
 * and timers. */
static void conn_close(websock_conn *c, uint16_t code, const char *text,
                       websock_reason_kind kind, const char *detail) {
  if (code != 1006)
    record_close(c, code, text);
  set_state(c, WEBSOCK_TEST_CLOSED);
  conn_terminate(c, kind, code, detail);
  conn_leave(c);
}

static void reset_stop(websock_conn *c) {
  c->stop_kind = WSH_STOP_NORMAL;
  c->stop_code = 0;
  free(c->stop_text);
  c->stop_text = NULL;
}

/* The callback returned STOP: close as websock_close*() said. */
static void conn_stop(websock_conn *c) {
  char *text = c->stop_text;
  c->stop_text = NULL;
  wsh_stop_plan p = wsh_contract_stop(c->stop_kind, c->stop_code, text);
  conn_close(c, p.code, p.text, p.reason, p.detail);
  free(text);
  reset_stop(c);
}

static void after_callback(websock_conn *c, int result, const char *what) {
  int kind = c->stop_kind;
  const char *detail;
  if (wsh_contract_result(result, &kind, &detail)) {
    reset_stop(c);
    return;
  }
  if (detail) {
    if (strcmp(detail, WSH_INVALID_RESULT_DETAIL) == 0)
      websock_log(c, 0, "%s returned %d (neither WEBSOCK_OK nor WEBSOCK_STOP)",
                  what, result);
    else
      websock_log(c, 0, "%s returned %d: %s", what, result, detail);
    free(c->stop_text);
    c->stop_text = strdup(detail);
    c->stop_kind = kind;
  }
  conn_stop(c);
}

static int call_in(websock_conn *c, websock_opcode op, const void *data,
                   size_t len) {
  uint8_t *copy = dup_bytes(data, len);
  if (!copy)
    return WEBSOCK_ENOMEM;
  enter(c);
  int r = handler(c)->handle_in(c, &c->state_ptr, op, copy, len);
  leave(c);
  free(copy);
  after_callback(c, r, "handle_in");
  return r;
}

static int call_control(websock_conn *c, websock_opcode op, const void *data,
                        size_t len) {
  if (!handler(c)->handle_control)
    return WEBSOCK_OK;
  uint8_t *copy = dup_bytes(data, len);
  if (!copy)
    return WEBSOCK_ENOMEM;
  enter(c);
  int r = handler(c)->handle_control(c, &c->state_ptr, op, copy, len);
  leave(c);
  free(copy);
  after_callback(c, r, "handle_control");
  return r;
}

/* handle_info, if the connection is open and the plugin has one; kind,
 * timer_id and topic say where the message came from
 * (websock_info_source). */
static int call_info(websock_conn *c, websock_info_kind kind, int64_t timer_id,
                     const char *topic, const void *data, size_t len) {
  if (c->state != WEBSOCK_TEST_OPEN || !c->plugin_open ||
      !handler(c)->handle_info)
    return WEBSOCK_OK;
  uint8_t *copy = dup_bytes(data, len);
  if (!copy)
    return WEBSOCK_ENOMEM;
  c->in_info = 1;
  c->info_kind = kind;
  c->info_timer = timer_id;
  c->info_topic = topic;
  enter(c);
  int r = handler(c)->handle_info(c, &c->state_ptr, copy, len);
  leave(c);
  c->in_info = 0;
  free(copy);
  after_callback(c, r, "handle_info");
  return r;
}

/* ---- the fake host ------------------------------------------------------- */

int websock_test_host_new(websock_host **out) {
  if (!out)
    return WEBSOCK_EINVAL;
  websock_host *h = calloc(1, sizeof(*h));
  if (!h)
    return WEBSOCK_ENOMEM;
  if (pthread_mutex_init(&h->lock, NULL) != 0) {
    free(h);
    return WEBSOCK_ENOMEM;
  }
  h->mail_tail = &h->mail_head;
  h->log_level = 1;
  *out = h;
  return 0;
}

const char *websock_test_error(const websock_host *host) {
  return host ? host->err : "no host";
}

void websock_test_set_log_level(websock_host *host, int level) {
  if (host)
    host->log_level = level;
}

static void conn_destroy(websock_conn *c) {
  request_free(c->req);
  kvs_free(&c->resp.headers);
  free(c->resp.subprotocol);
  free(c->resp.body);
  free(c->stop_text);
  for (size_t i = 0; i < c->nsent; i++)
    free((void *)c->sent[i].data);
  free(c->sent);
  free(c->reason_text);
  websock_test_clear_log(c);
  free(c->log.items);
  kvs_free(&c->params);
  conn_leave(c);
  free(c);
}

/* Brings a connection to an end: an upgraded one is opened first (the host
 * always runs init after a 101, and the plugin may own upgrade()'s state),
 * an open one is shut down. */
static void conn_finish(websock_conn *c) {
  if (c->state == WEBSOCK_TEST_UPGRADED)
    websock_test_init(c);
  if (c->state == WEBSOCK_TEST_OPEN)
    conn_close(c, 1001, "server shutting down", WEBSOCK_REASON_SHUTDOWN, NULL);
}

static void mail_free_all(websock_host *h) {
  while (h->mail_head) {
    wst_mail *m = h->mail_head;
    h->mail_head = m->next;
    free(m->topic);
    free(m);
  }
  h->mail_tail = &h->mail_head;
}

static void plugin_destroy(websock_test_plugin *p) {
  if (p->copy_path != p->so_path)
    free(p->copy_path);
  free(p->so_path);
  free(p->route_path);
  wsh_path_pattern_free(&p->pattern);
  strv_free(p->subprotocols, p->nsubprotocols);
  kvs_free(&p->options.kv);
  free(p);
}

void websock_test_host_free(websock_host *host) {
  if (!host)
    return;
  for (size_t i = 0; i < host->nconns; i++)
    conn_finish(host->conns[i]);
  for (size_t i = 0; i < host->nplugins; i++)
    websock_test_unload(host->plugins[i]);
  for (size_t i = 0; i < host->nconns; i++)
    conn_destroy(host->conns[i]);
  free(host->conns);
  for (size_t i = 0; i < host->nplugins; i++)
    plugin_destroy(host->plugins[i]);
  free(host->plugins);
  mail_free_all(host);
  pthread_mutex_destroy(&host->lock);
  free(host);
}

/* ---- plugins ------------------------------------------------------------- */

/* Copies so_path to a new private temporary file (dlopen() hands back the
 * handle it already has for a path, so each load gets its own copy, as on
 * the host). */
static int copy_to_private(websock_host *h, const char *so_path, char **out) {
  const char *tmp = getenv("TMPDIR");
  char *path = NULL;
  if (asprintf(&path, "%s/websock-test-XXXXXX.so", tmp && *tmp ? tmp : "/tmp") <
      0)
    return WEBSOCK_ENOMEM;
  int rc = WEBSOCK_EINVAL;
  int in = open(so_path, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    set_err(h, "%s: cannot open: %s", so_path, strerror(errno));
    goto out_free_path;
  }
  int fd = mkstemps(path, 3);
  if (fd < 0) {
    set_err(h, "%s: cannot create a private copy: %s", so_path,
            strerror(errno));
    goto out_close_in;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0)
    if (write(fd, buf, (size_t)n) != n)
      break;
  if (close(fd) != 0 || n != 0) {
    set_err(h, "%s: cannot copy to %s", so_path, path);
    unlink(path);
    goto out_close_in;
  }
  *out = path;
  path = NULL;
  rc = 0;
out_close_in:
  close(in);
out_free_path:
  free(path);
  return rc;
}

/* dlopen()s the private copy (then deletes it: the mapping stays, and a
 * crashing test leaves nothing behind) and checks the table as the host
 * does. */
static int open_table(websock_test_plugin *p) {
  websock_host *h = p->host;
  p->dl = dlopen(p->copy_path, RTLD_NOW | RTLD_LOCAL);
  if (p->copy_path != p->so_path)
    unlink(p->copy_path);
  if (!p->dl) {
    const char *why = dlerror();
    set_err(h, "%s: cannot load: %s", p->so_path, why ? why : "dlopen failed");
    return WEBSOCK_EINVAL;
  }
  const struct websock_handler *t = dlsym(p->dl, WEBSOCK_HANDLER_SYMBOL);
  if (!t) {
    set_err(h,
            "%s: no " WEBSOCK_HANDLER_SYMBOL " symbol (not a websockd plugin?)",
            p->so_path);
    return WEBSOCK_EINVAL;
  }
  if (wsh_contract_table(t, p->so_path, h->err, sizeof(h->err)) != 0)
    return WEBSOCK_EINVAL;
  size_t n = t->struct_size < sizeof(p->h) ? t->struct_size : sizeof(p->h);
  memset(&p->h, 0, sizeof(p->h));
  memcpy(&p->h, t, n);
  return 0;
}

/* The route's settings, copied into the plugin. */
static int plugin_set_route(websock_test_plugin *p,
                            const websock_test_route *r) {
  p->route_path = strdup(r && r->path ? r->path : WST_DEFAULT_ROUTE);
  if (!p->route_path)
    return WEBSOCK_ENOMEM;
  char why[160];
  if (p->route_path[0] != '/' ||
      wsh_path_pattern_parse(p->route_path, &p->pattern, why, sizeof(why))) {
    set_err(p->host, "route path \"%s\": %s", p->route_path,
            p->route_path[0] != '/' ? "path must start with '/'" : why);
    return WEBSOCK_EINVAL;
  }
  if (r && kvs_add_list(&p->options.kv, r->options))
    return WEBSOCK_ENOMEM;
  for (size_t i = 0; r && r->subprotocols && r->subprotocols[i]; i++) {
    char **v = grow(p->subprotocols, &p->capsubprotocols, p->nsubprotocols + 1,
                    sizeof(char *));
    if (!v)
      return WEBSOCK_ENOMEM;
    p->subprotocols = v;
    if (!(p->subprotocols[p->nsubprotocols] = strdup(r->subprotocols[i])))
      return WEBSOCK_ENOMEM;
    p->nsubprotocols++;
  }
  return 0;
}

static int add_plugin(websock_host *h, websock_test_plugin *p) {
  websock_test_plugin **v =
      grow(h->plugins, &h->capplugins, h->nplugins + 1, sizeof(*h->plugins));
  if (!v)
    return WEBSOCK_ENOMEM;
  h->plugins = v;
  h->plugins[h->nplugins++] = p;
  return 0;
}

/* The table's option_keys, if any, against the route's options (as the
 * host checks a route file's [options]). */
static int check_option_keys(websock_test_plugin *p) {
  const char *const *keys = p->h.option_keys;
  for (size_t i = 0; keys && i < p->options.kv.n; i++) {
    const char *key = p->options.kv.items[i].key;
    size_t k = 0;
    while (keys[k] && strcmp(keys[k], key) != 0)
      k++;
    if (!keys[k]) {
      set_err(p->host,
              "%s: unknown option \"%s\" in [options] of route %s (plugin %s "
              "lists its option_keys)",
              p->so_path, key, p->route_path, p->h.name ? p->h.name : "?");
      return WEBSOCK_EINVAL;
    }
  }
  return 0;
}

/* The table's unload_context(context), if load() left a context. */
static void unload_context(websock_test_plugin *p) {
  void *context = p->options.context;
  p->options.context = NULL;
  if (!context || !p->h.unload_context)
    return;
  p->host->depth++;
  p->h.unload_context(context);
  p->host->depth--;
}

int websock_test_load(websock_host *host, const char *so_path,
                      const websock_test_route *route,
                      websock_test_plugin **out) {
  if (!host || !so_path || !out)
    return WEBSOCK_EINVAL;
  if (host->depth)
    return WEBSOCK_ECONTEXT;
  host->err[0] = '\0';
  struct stat st;
  if (stat(so_path, &st) != 0) {
    set_err(host, "%s: %s", so_path, strerror(errno));
    return WEBSOCK_ENOENT;
  }
  websock_test_plugin *p = calloc(1, sizeof(*p));
  if (!p)
    return WEBSOCK_ENOMEM;
  p->host = host;
  p->options.host = host;
  int rc = WEBSOCK_ENOMEM;
  if (!(p->so_path = strdup(so_path)) ||
      (rc = plugin_set_route(p, route)) != 0 || (rc = add_plugin(host, p)))
    goto out_free;
  rc = WEBSOCK_ENOMEM;
  const char *no_copy = getenv("WEBSOCK_TEST_NO_COPY");
  if (no_copy && *no_copy && strcmp(no_copy, "0") != 0)
    p->copy_path = p->so_path;
  else if ((rc = copy_to_private(host, so_path, &p->copy_path)) != 0)
    goto out_remove;
  if ((rc = open_table(p)) != 0 || (rc = check_option_keys(p)) != 0)
    goto out_close;
  if (p->h.load) {
    host->depth++;
    p->options.loading = 1;
    int lr = p->h.load(&p->options);
    p->options.loading = 0;
    host->depth--;
    if (lr != 0) {
      unload_context(p);
      set_err(host, "%s: load() refused the route %s (returned %d)", so_path,
              p->route_path, lr);
      rc = WEBSOCK_EINVAL;
      goto out_close;
    }
  }
  p->loaded = 1;
  *out = p;
  return 0;
out_close:
  if (p->dl)
    dlclose(p->dl);
out_remove:
  host->nplugins--;
out_free:
  plugin_destroy(p);
  return rc;
}

void websock_test_unload(websock_test_plugin *plugin) {
  if (!plugin || !plugin->loaded)
    return;
  websock_host *h = plugin->host;
  if (h->depth) {
    websock_log(NULL, 0,
                "websock_test_unload() called inside a callback: "
                "ignored");
    return;
  }
  for (size_t i = 0; i < h->nconns; i++)
    if (h->conns[i]->plugin == plugin)
      conn_finish(h->conns[i]);
  if (plugin->h.unload) {
    h->depth++;
    plugin->h.unload();
    h->depth--;
  }
  unload_context(plugin);
  dlclose(plugin->dl);
  plugin->dl = NULL;
  plugin->loaded = 0;
}

const struct websock_handler *
websock_test_handler(const websock_test_plugin *plugin) {
  return plugin ? &plugin->h : NULL;
}

/* ---- upgrade and init ---------------------------------------------------- */

/* Splits a comma-separated header value into the offered list. */
static int add_offers(websock_request *req, const char *value) {
  const char *s = value;
  while (*s) {
    s += strspn(s, " \t,");
    size_t n = strcspn(s, ",");
    size_t end = n;
    while (end > 0 && (s[end - 1] == ' ' || s[end - 1] == '\t'))
      end--;
    if (end > 0) {
      char **v = grow(req->offered, &req->capoffered, req->noffered + 1,
                      sizeof(char *));
      if (!v)
        return WEBSOCK_ENOMEM;
      req->offered = v;
      if (!(req->offered[req->noffered] = strndup(s, end)))
        return WEBSOCK_ENOMEM;
      req->noffered++;
    }
    s += n;
  }
  return 0;
}

/* The protocol line for the offered subprotocols ("a, b"), or NULL. */
static char *join_offers(const char *const *list) {
  size_t len = 0;
  for (size_t i = 0; list && list[i]; i++)
    len += strlen(list[i]) + 2;
  if (!len)
    return NULL;
  char *s = malloc(len + 1), *w = s;
  if (!s)
    return NULL;
  for (size_t i = 0; list[i]; i++)
    w += sprintf(w, "%s%s", i ? ", " : "", list[i]);
  return s;
}

static bool user_has_header(const websock_test_request *t, const char *name) {
  for (size_t i = 0; t && t->headers && t->headers[i]; i += 2) {
    if (strcasecmp(t->headers[i], name) == 0)
      return true;
    if (!t->headers[i + 1])
      break;
  }
  return false;
}

static int request_headers(websock_request *req,
                           const websock_test_request *t) {
  static const char *const std[] = {"Host",
                                    "localhost",
                                    "Upgrade",
                                    "websocket",
                                    "Connection",
                                    "Upgrade",
                                    "Sec-WebSocket-Key",
                                    "dGhlIHNhbXBsZSBub25jZQ==",
                                    "Sec-WebSocket-Version",
                                    "13",
                                    NULL};
  for (size_t i = 0; std[i]; i += 2)
    if (!user_has_header(t, std[i]) &&
        kvs_add(&req->headers, std[i], std[i + 1]))
      return WEBSOCK_ENOMEM;
  char *offers = join_offers(t ? t->subprotocols : NULL);
  if (offers) {
    int rc = kvs_add(&req->headers, "Sec-WebSocket-Protocol", offers);
    free(offers);
    if (rc)
      return rc;
  }
  if (t && kvs_add_list(&req->headers, t->headers))
    return WEBSOCK_ENOMEM;
  for (size_t i = 0; i < req->headers.n; i++)
    if (strcasecmp(req->headers.items[i].key, "Sec-WebSocket-Protocol") == 0 &&
        add_offers(req, req->headers.items[i].value))
      return WEBSOCK_ENOMEM;
  return 0;
}

static int request_new(const websock_test_plugin *p, uint64_t id,
                       const websock_test_request *t, websock_request **out) {
  websock_request *req = calloc(1, sizeof(*req));
  if (!req)
    return WEBSOCK_ENOMEM;
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%llu",
           (unsigned long long)(40000 + id % 20000));
  req->method = strdup(t && t->method ? t->method : "GET");
  req->path = strdup(t && t->path ? t->path : p->route_path);
  req->query = dup_or_empty(t ? t->query : NULL);
  req->remote_addr = strdup(t && t->remote_addr ? t->remote_addr : addr);
  if (!req->method || !req->path || !req->query || !req->remote_addr ||
      request_headers(req, t)) {
    request_free(req);
    return WEBSOCK_ENOMEM;
  }
  /* The route's first subprotocol that the client offered. */
  for (size_t i = 0; i < p->nsubprotocols && !req->subprotocol; i++)
    for (size_t k = 0; k < req->noffered; k++)
      if (strcmp(p->subprotocols[i], req->offered[k]) == 0) {
        req->subprotocol = p->subprotocols[i];
        break;
      }
  *out = req;
  return 0;
}

static int add_conn(websock_host *h, websock_conn *c) {
  int rc = 0;
  pthread_mutex_lock(&h->lock);
  websock_conn **v =
      grow(h->conns, &h->capconns, h->nconns + 1, sizeof(*h->conns));
  if (!v) {
    rc = WEBSOCK_ENOMEM;
  } else {
    h->conns = v;
    h->conns[h->nconns++] = c;
  }
  pthread_mutex_unlock(&h->lock);
  return rc;
}

/* The plugin's upgrade(): the status to answer. */
static int call_upgrade(websock_conn *c) {
  const websock_test_plugin *p = c->plugin;
  if (!p->h.upgrade)
    return 101;
  c->host->depth++;
  int st = p->h.upgrade(c->req, &c->resp);
  c->host->depth--;
  if (st == 0)
    return 101;
  if (wsh_contract_upgrade_status(st) == st)
    return st;
  websock_log(c, 0, "upgrade() returned %d (want 0 or 400-599)", st);
  kvs_free(&c->resp.headers);
  free(c->resp.body);
  c->resp.body = NULL;
  return 500;
}

/* The request's path against the route's (exact, or a pattern whose
 * captures are decoded into the connection's parameters): 0, 404 (no
 * match), 400 (a value that does not decode) or 500. */
static int route_match(websock_conn *c) {
  const websock_test_plugin *p = c->plugin;
  if (!p->pattern.is_pattern)
    return strcmp(c->req->path, p->route_path) == 0 ? 0 : 404;
  wsh_path_capture caps[WSH_PATH_MAX_PARAMS + 1];
  int n = wsh_path_match(&p->pattern, c->req->path, caps);
  if (n < 0)
    return 404;
  for (int i = 0; i < n; i++) {
    char *value = malloc(caps[i].len + 1);
    if (!value)
      return 500;
    long len = wsh_path_decode(caps[i].at, caps[i].len,
                               strcmp(caps[i].name, "*") != 0, value);
    int rc = len < 0 ? 400 : kvs_add(&c->params, caps[i].name, value) ? 500 : 0;
    free(value);
    if (rc)
      return rc;
  }
  c->req->params = &c->params;
  return 0;
}

int websock_test_upgrade(websock_test_plugin *plugin,
                         const websock_test_request *req, websock_conn **out) {
  if (!plugin || !out)
    return WEBSOCK_EINVAL;
  websock_host *h = plugin->host;
  if (h->depth)
    return WEBSOCK_ECONTEXT;
  if (!plugin->loaded)
    return WEBSOCK_ECLOSED;
  websock_conn *c = calloc(1, sizeof(*c));
  if (!c)
    return WEBSOCK_ENOMEM;
  c->host = h;
  c->plugin = plugin;
  c->id = ++h->next_conn_id;
  c->state = WEBSOCK_TEST_REFUSED;
  if (request_new(plugin, c->id, req, &c->req) != 0 || add_conn(h, c) != 0) {
    conn_destroy(c);
    return WEBSOCK_ENOMEM;
  }
  c->resp.req = c->req;
  c->req->context = plugin->options.context;
  int status;
  if (strcmp(c->req->method, "GET") != 0) {
    status = 400;
  } else if ((status = route_match(c)) != 0) {
    /* 404 or 400 */
  } else if (c->req->subprotocol &&
             !(c->resp.subprotocol = strdup(c->req->subprotocol))) {
    status = 500;
  } else {
    status = call_upgrade(c);
  }
  c->resp.status = status;
  if (status == 101) {
    set_state(c, WEBSOCK_TEST_UPGRADED);
  } else {
    request_free(c->req);
    c->req = NULL;
    c->resp.req = NULL;
  }
  *out = c;
  return status;
}

int websock_test_init(websock_conn *conn) {
  if (!conn)
    return WEBSOCK_EINVAL;
  if (conn->host->depth)
    return WEBSOCK_ECONTEXT;
  if (conn->state != WEBSOCK_TEST_UPGRADED)
    return WEBSOCK_EINVAL;
  set_state(conn, WEBSOCK_TEST_OPEN);
  conn->state_ptr = conn->resp.state;
  int r = WEBSOCK_OK;
  conn->plugin_open = 1;
  if (handler(conn)->init) {
    conn->plugin_open = 0;
    conn->show_request = 1;
    enter(conn);
    r = handler(conn)->init(conn, &conn->state_ptr);
    leave(conn);
    conn->show_request = 0;
    if (r == WEBSOCK_OK)
      conn->plugin_open = 1;
    after_callback(conn, r, "init");
  }
  request_free(conn->req);
  conn->req = NULL;
  conn->resp.req = NULL;
  return r;
}

int websock_test_connect(websock_test_plugin *plugin,
                         const websock_test_request *req, websock_conn **out) {
  int st = websock_test_upgrade(plugin, req, out);
  if (st < 0)
    return st;
  if (st != 101)
    return WEBSOCK_ECLOSED;
  websock_test_init(*out);
  return (*out)->state == WEBSOCK_TEST_OPEN ? 0 : WEBSOCK_ECLOSED;
}

void websock_test_conn_free(websock_conn *conn) {
  if (!conn || conn->host->depth)
    return;
  websock_host *h = conn->host;
  conn_finish(conn);
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->nconns; i++)
    if (h->conns[i] == conn) {
      memmove(&h->conns[i], &h->conns[i + 1],
              (h->nconns - i - 1) * sizeof(*h->conns));
      h->nconns--;
      break;
    }
  pthread_mutex_unlock(&h->lock);
  conn_destroy(conn);
}

int websock_test_status(const websock_conn *conn) {
  return conn ? conn->resp.status : 0;
}

const char *websock_test_response_header(const websock_conn *conn,
                                         const char *name) {
  return conn ? kvs_get(&conn->resp.headers, name, true) : NULL;
}

size_t websock_test_response_header_count(const websock_conn *conn) {
  return conn ? conn->resp.headers.n : 0;
}

int websock_test_response_header_at(const websock_conn *conn, size_t i,
                                    const char **name, const char **value) {
  if (!conn || i >= conn->resp.headers.n)
    return WEBSOCK_ENOENT;
  if (name)
    *name = conn->resp.headers.items[i].key;
  if (value)
    *value = conn->resp.headers.items[i].value;
  return 0;
}

const char *websock_test_response_body(const websock_conn *conn) {
  return conn ? conn->resp.body : NULL;
}

/* ---- driving ------------------------------------------------------------- */

/* May the test drive this connection now? */
static int check_drive(const websock_conn *c) {
  if (!c)
    return WEBSOCK_EINVAL;
  if (c->host->depth)
    return WEBSOCK_ECONTEXT;
  if (c->state != WEBSOCK_TEST_OPEN)
    return WEBSOCK_ECLOSED;
  return 0;
}

int websock_test_client_message(websock_conn *conn, websock_opcode opcode,
                                const void *data, size_t len) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  if ((len && !data) ||
      (opcode != WEBSOCK_OP_TEXT && opcode != WEBSOCK_OP_BINARY) ||
      (opcode == WEBSOCK_OP_TEXT && !wsh_utf8_valid(data, len)))
    return WEBSOCK_EINVAL;
  return call_in(conn, opcode, data, len);
}

int websock_test_client_text(websock_conn *conn, const char *text) {
  if (!text)
    return WEBSOCK_EINVAL;
  return websock_test_client_message(conn, WEBSOCK_OP_TEXT, text, strlen(text));
}

int websock_test_client_control(websock_conn *conn, websock_opcode opcode,
                                const void *data, size_t len) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  if ((len && !data) || len > WSH_MAX_CONTROL ||
      (opcode != WEBSOCK_OP_PING && opcode != WEBSOCK_OP_PONG))
    return WEBSOCK_EINVAL;
  return call_control(conn, opcode, data, len);
}

int websock_test_client_close(websock_conn *conn, uint16_t code,
                              const char *reason) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  const char *text = reason ? reason : "";
  if ((!wsh_close_code_valid(code) && code != 1005) ||
      strlen(text) > WST_MAX_CLOSE_TEXT ||
      !wsh_utf8_valid((const uint8_t *)text, strlen(text)))
    return WEBSOCK_EINVAL;
  record_close(conn, code, code == 1005 ? NULL : text);
  set_state(conn, WEBSOCK_TEST_CLOSED);
  conn_terminate(conn, WEBSOCK_REASON_REMOTE, code, text);
  conn_leave(conn);
  return 0;
}

int websock_test_client_drop(websock_conn *conn) {
  return websock_test_end(conn, WEBSOCK_REASON_ERROR, 1006,
                          "connection closed without a close frame");
}

int websock_test_info(websock_conn *conn, const void *data, size_t len) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  if (len && !data)
    return WEBSOCK_EINVAL;
  return call_info(conn, WEBSOCK_INFO_SEND, 0, NULL, data, len);
}

/* reload = handoff failed in export or import: 1012, as the host closes. */
static int handoff_failed(websock_conn *c) {
  reset_stop(c);
  conn_close(c, WSH_CLOSE_RESTART, "service restart", WEBSOCK_REASON_SHUTDOWN,
             NULL);
  return WEBSOCK_STOP;
}

int websock_test_handoff(websock_conn *conn, websock_test_plugin *next) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  if (!next || next->host != conn->host)
    return WEBSOCK_EINVAL;
  if (!next->loaded)
    return WEBSOCK_ECLOSED;
  const struct websock_handler *o = handler(conn), *n = &next->h;
  if (!conn->plugin_open || !o->export_state || !n->import_state ||
      strcmp(o->name ? o->name : "", n->name ? n->name : "") != 0)
    return WEBSOCK_EINVAL; /* the host would drain: nothing moves */
  websock_buf buf;
  wsh_statebuf_init(&buf, WST_STATE_MAX);
  enter(conn);
  int r = o->export_state(conn, conn->state_ptr, &buf);
  leave(conn);
  if (r != 0) {
    rc = handoff_failed(conn);
    goto out_free_buf;
  }
  reset_stop(conn);
  conn->state_ptr = NULL;
  conn->plugin = next;
  void *state = NULL;
  enter(conn);
  r = n->import_state(conn, buf.data, buf.len, &state);
  leave(conn);
  conn->state_ptr = state;
  rc = r != 0 ? handoff_failed(conn) : 0;
  reset_stop(conn);
out_free_buf:
  wsh_statebuf_free(&buf);
  return rc;
}

int websock_buf_append(websock_buf *buf, const void *data, size_t len) {
  return wsh_statebuf_append(buf, data, len);
}

int websock_test_shutdown(websock_conn *conn) {
  return websock_test_end(conn, WEBSOCK_REASON_SHUTDOWN, 1001,
                          "server shutting down");
}

int websock_test_end(websock_conn *conn, websock_reason_kind kind,
                     uint16_t code, const char *text) {
  int rc = check_drive(conn);
  if (rc)
    return rc;
  if (kind == WEBSOCK_REASON_REMOTE || kind < WEBSOCK_REASON_NORMAL ||
      kind > WEBSOCK_REASON_ERROR ||
      (code != 1006 && !wsh_contract_close_code(code)))
    return WEBSOCK_EINVAL;
  conn_close(conn, code, text, kind,
             kind == WEBSOCK_REASON_ERROR ? text : NULL);
  return 0;
}

/* ---- the loop: mail and timers ------------------------------------------- */

static int mail_post(websock_host *h, int kind, uint64_t to, const char *topic,
                     websock_opcode op, const void *data, size_t len) {
  wst_mail *m = malloc(sizeof(*m) + len);
  if (!m)
    return WEBSOCK_ENOMEM;
  *m = (wst_mail){.kind = kind, .to = to, .opcode = op, .len = len};
  if (topic && !(m->topic = strdup(topic))) {
    free(m);
    return WEBSOCK_ENOMEM;
  }
  if (len)
    memcpy(m->data, data, len);
  *h->mail_tail = m;
  h->mail_tail = &m->next;
  return 0;
}

static wst_mail *mail_pop(websock_host *h) {
  pthread_mutex_lock(&h->lock);
  wst_mail *m = h->mail_head;
  if (m) {
    h->mail_head = m->next;
    if (!h->mail_head)
      h->mail_tail = &h->mail_head;
  }
  pthread_mutex_unlock(&h->lock);
  return m;
}

static bool subscribed(const websock_conn *c, const char *topic) {
  for (size_t i = 0; i < c->ntopics; i++)
    if (strcmp(c->topics[i], topic) == 0)
      return true;
  return false;
}

static void deliver(websock_host *h, const wst_mail *m) {
  if (m->kind == WST_MAIL_SEND) {
    pthread_mutex_lock(&h->lock);
    websock_conn *c = conn_find_locked(h, m->to);
    pthread_mutex_unlock(&h->lock);
    if (c)
      call_info(c, WEBSOCK_INFO_SEND, 0, NULL, m->data, m->len);
    return;
  }
  /* Callbacks cannot add connections, so h->conns stays put here. */
  for (size_t i = 0; i < h->nconns; i++) {
    websock_conn *c = h->conns[i];
    if (c->state != WEBSOCK_TEST_OPEN || !subscribed(c, m->topic))
      continue;
    if (m->kind == WST_MAIL_PUBLISH)
      call_info(c, WEBSOCK_INFO_PUBLISH, 0, m->topic, m->data, m->len);
    else
      record_sent(c, m->opcode, m->data, m->len, 1);
  }
}

/* The earliest timer due at or before `limit` (ties: the first set). */
static wst_timer *earliest_timer(websock_host *h, uint64_t limit,
                                 websock_conn **owner) {
  wst_timer *best = NULL;
  for (size_t i = 0; i < h->nconns; i++) {
    websock_conn *c = h->conns[i];
    if (c->state != WEBSOCK_TEST_OPEN)
      continue;
    for (wst_timer *t = c->timers; t; t = t->next)
      if (t->due <= limit && (!best || t->due < best->due ||
                              (t->due == best->due && t->seq < best->seq))) {
        best = t;
        *owner = c;
      }
  }
  return best;
}

static void fire(websock_host *h, websock_conn *c, wst_timer *t) {
  wst_timer **pp = &c->timers;
  while (*pp != t)
    pp = &(*pp)->next;
  *pp = t->next;
  if (t->due > h->now)
    h->now = t->due;
  h->timers_fired++;
  call_info(c, WEBSOCK_INFO_TIMER, t->id, NULL, t->data, t->len);
  free(t);
}

/* One turn: the oldest queued message, else the earliest timer due now.
 * Returns 0 when there was nothing to do. */
static int step(websock_host *h) {
  wst_mail *m = mail_pop(h);
  if (m) {
    deliver(h, m);
    free(m->topic);
    free(m);
    return 1;
  }
  websock_conn *c = NULL;
  wst_timer *t = earliest_timer(h, h->now, &c);
  if (!t)
    return 0;
  fire(h, c, t);
  return 1;
}

static int drain(websock_host *h, long *n) {
  while (step(h))
    if (++*n >= WST_RUN_LIMIT)
      return WEBSOCK_ETOOBIG;
  return 0;
}

int websock_test_run(websock_host *host) {
  if (!host)
    return WEBSOCK_EINVAL;
  if (host->depth)
    return WEBSOCK_ECONTEXT;
  long n = 0;
  int rc = drain(host, &n);
  return rc ? rc : (int)n;
}

int websock_test_advance(websock_host *host, uint64_t ms) {
  if (!host)
    return WEBSOCK_EINVAL;
  if (host->depth)
    return WEBSOCK_ECONTEXT;
  uint64_t target = host->now + ms;
  long before = host->timers_fired, n = 0;
  for (;;) {
    int rc = drain(host, &n);
    if (rc)
      return rc;
    websock_conn *c = NULL;
    wst_timer *t = earliest_timer(host, target, &c);
    if (!t)
      break;
    fire(host, c, t);
  }
  host->now = target;
  int rc = drain(host, &n);
  return rc ? rc : (int)(host->timers_fired - before);
}

uint64_t websock_test_now(const websock_host *host) {
  return host ? host->now : 0;
}

size_t websock_test_timers_pending(const websock_conn *conn) {
  size_t n = 0;
  for (const wst_timer *t = conn ? conn->timers : NULL; t; t = t->next)
    n++;
  return n;
}

/* ---- inspection ---------------------------------------------------------- */

websock_test_state websock_test_state_of(const websock_conn *conn) {
  return conn ? conn->state : WEBSOCK_TEST_REFUSED;
}

size_t websock_test_sent_count(const websock_conn *conn) {
  return conn ? conn->nsent : 0;
}

const websock_test_msg *websock_test_sent(const websock_conn *conn, size_t i) {
  return conn && i < conn->nsent ? &conn->sent[i] : NULL;
}

const char *websock_test_sent_text(const websock_conn *conn, size_t i) {
  const websock_test_msg *m = websock_test_sent(conn, i);
  return m && m->opcode == WEBSOCK_OP_TEXT ? (const char *)m->data : NULL;
}

void websock_test_clear_sent(websock_conn *conn) {
  if (!conn)
    return;
  for (size_t i = 0; i < conn->nsent; i++)
    free((void *)conn->sent[i].data);
  conn->nsent = 0;
}

int websock_test_closed(const websock_conn *conn, uint16_t *code,
                        const char **text) {
  if (!conn || !conn->closed)
    return 0;
  if (code)
    *code = conn->close_code;
  if (text)
    *text = conn->close_text;
  return 1;
}

int websock_test_terminate_count(const websock_conn *conn) {
  return conn ? conn->nterminate : 0;
}

const websock_reason *websock_test_terminate_reason(const websock_conn *conn) {
  return conn && conn->nterminate ? &conn->reason : NULL;
}

int websock_test_subscribed(const websock_conn *conn, const char *topic) {
  return conn && topic && subscribed(conn, topic);
}

/* ---- expectations -------------------------------------------------------- */

static atomic_int failures;

int websock_test_failures(void) {
  return atomic_load(&failures);
}

int websock_test_expect_(int ok, const char *expr, const char *file, int line) {
  if (!ok) {
    fprintf(stderr, "%s:%d: expected %s\n", file, line, expr);
    atomic_fetch_add(&failures, 1);
  }
  return ok;
}

int websock_test_expect_str_(const char *actual, const char *expected,
                             const char *expr, const char *file, int line) {
  int ok = (!actual && !expected) ||
           (actual && expected && strcmp(actual, expected) == 0);
  if (!ok) {
    fprintf(stderr, "%s:%d: %s is %s%s%s, expected %s%s%s\n", file, line, expr,
            actual ? "\"" : "", actual ? actual : "NULL", actual ? "\"" : "",
            expected ? "\"" : "", expected ? expected : "NULL",
            expected ? "\"" : "");
    atomic_fetch_add(&failures, 1);
  }
  return ok;
}

/* ======================================================================== */
/* websock.h                                                                 */
/* ======================================================================== */

/* May the plugin act on this connection now? (as the host's check_open) */
static int check_open(const websock_conn *c) {
  return wsh_contract_conn(c, c && c->in_callback, true,
                           c && c->state == WEBSOCK_TEST_OPEN);
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
  /* stricter than the host (see websock_test.h) */
  if (opcode == WEBSOCK_OP_TEXT && !wsh_utf8_valid(data, len)) {
    websock_log(conn, 1, "websock_push: text message is not valid UTF-8");
    return WEBSOCK_EINVAL;
  }
  return record_sent(conn, opcode, data, len, 0);
}

/* The fake host negotiates no compression: the same as websock_push. */
int websock_push_uncompressed(websock_conn *conn, websock_opcode opcode,
                              const void *data, size_t len) {
  return websock_push(conn, opcode, data, len);
}

int websock_conn_compressed(const websock_conn *conn) {
  (void)conn;
  return 0;
}

static int set_stop(websock_conn *c, int kind, uint16_t code,
                    const char *text) {
  int rc = check_open(c);
  if (rc)
    return rc;
  char *copy = NULL;
  if (text && !(copy = strdup(text)))
    return WEBSOCK_ENOMEM;
  free(c->stop_text);
  c->stop_text = copy;
  c->stop_kind = kind;
  c->stop_code = code;
  return 0;
}

int websock_close(websock_conn *conn, uint16_t code, const char *text) {
  if (!wsh_contract_close_code(code) ||
      (text && !wsh_utf8_valid((const uint8_t *)text, strlen(text))))
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
  (void)conn;
  return 0;
}

websock_ref websock_self(const websock_conn *conn) {
  websock_ref ref = {NULL, 0};
  if (conn) {
    ref.host_ = conn->host;
    ref.id_ = conn->id;
  }
  return ref;
}

websock_host *websock_conn_host(const websock_conn *conn) {
  return conn ? conn->host : NULL;
}

websock_host *websock_options_host(const websock_options *options) {
  return options ? options->host : NULL;
}

int websock_send(websock_ref to, const void *data, size_t len) {
  websock_host *h = (websock_host *)to.host_;
  if (!h || to.id_ == 0)
    return WEBSOCK_ENOENT;
  if (len && !data)
    return WEBSOCK_EINVAL;
  int rc = WEBSOCK_ENOENT;
  pthread_mutex_lock(&h->lock);
  websock_conn *c = conn_find_locked(h, to.id_);
  if (c && c->state == WEBSOCK_TEST_OPEN)
    rc =
        mail_post(h, WST_MAIL_SEND, to.id_, NULL, WEBSOCK_OP_BINARY, data, len);
  pthread_mutex_unlock(&h->lock);
  return rc;
}

/* References as text: the test host is host 1 of one ("0000000000000001"),
 * worker 0, the connection id in slot and serial; a reference of another
 * host cannot be parsed here (WEBSOCK_EINVAL). */
int websock_ref_format(websock_ref ref, char *out, size_t cap) {
  if (!out || cap < WEBSOCK_REF_STRLEN)
    return WEBSOCK_EINVAL;
  if (!ref.host_ || ref.id_ == 0)
    return WEBSOCK_ENOENT;
  return snprintf(out, cap, "%016x.0.%u.%u", 1u, (unsigned)(ref.id_ >> 32),
                  (unsigned)ref.id_);
}

int websock_ref_parse(websock_host *host, const char *s, websock_ref *out) {
  unsigned long long slot, serial;
  int end = 0;
  if (!host || !s || !out)
    return WEBSOCK_EINVAL;
  *out = (websock_ref){NULL, 0};
  if (sscanf(s, "0000000000000001.0.%llu.%llu%n", &slot, &serial, &end) != 2 ||
      s[end] != '\0' || slot > UINT32_MAX || serial > UINT32_MAX ||
      (slot == 0 && serial == 0))
    return WEBSOCK_EINVAL;
  out->host_ = host;
  out->id_ = slot << 32 | serial;
  return 0;
}

int64_t websock_send_after(websock_conn *conn, uint64_t ms, const void *data,
                           size_t len) {
  int rc = check_open(conn);
  if (rc)
    return rc;
  if (len && !data)
    return WEBSOCK_EINVAL;
  wst_timer *t = malloc(sizeof(*t) + len);
  if (!t)
    return WEBSOCK_ENOMEM;
  websock_host *h = conn->host;
  t->id = ++conn->next_timer_id;
  t->due = h->now + ms;
  t->seq = ++h->timer_seq;
  t->len = len;
  if (len)
    memcpy(t->data, data, len);
  t->next = conn->timers;
  conn->timers = t;
  return t->id;
}

int websock_cancel_timer(websock_conn *conn, int64_t timer_id) {
  int rc = check_in_callback(conn);
  if (rc)
    return rc;
  for (wst_timer **pp = &conn->timers; *pp; pp = &(*pp)->next)
    if ((*pp)->id == timer_id) {
      wst_timer *t = *pp;
      *pp = t->next;
      free(t);
      return 0;
    }
  return WEBSOCK_ENOENT;
}

int websock_subscribe(websock_conn *conn, const char *topic) {
  int rc = check_open(conn);
  if (rc)
    return rc;
  if (!wsh_contract_topic(topic))
    return WEBSOCK_EINVAL;
  if (subscribed(conn, topic))
    return 0;
  char **v =
      grow(conn->topics, &conn->captopics, conn->ntopics + 1, sizeof(char *));
  if (!v)
    return WEBSOCK_ENOMEM;
  conn->topics = v;
  char *copy = strdup(topic);
  if (!copy)
    return WEBSOCK_ENOMEM;
  pthread_mutex_lock(&conn->host->lock); /* websock_topic_subscribers */
  conn->topics[conn->ntopics++] = copy;
  pthread_mutex_unlock(&conn->host->lock);
  return 0;
}

int websock_unsubscribe(websock_conn *conn, const char *topic) {
  if (!topic)
    return WEBSOCK_EINVAL;
  int rc = check_in_callback(conn);
  if (rc)
    return rc;
  for (size_t i = 0; i < conn->ntopics; i++)
    if (strcmp(conn->topics[i], topic) == 0) {
      pthread_mutex_lock(&conn->host->lock);
      free(conn->topics[i]);
      memmove(&conn->topics[i], &conn->topics[i + 1],
              (conn->ntopics - i - 1) * sizeof(char *));
      conn->ntopics--;
      pthread_mutex_unlock(&conn->host->lock);
      return 0;
    }
  return WEBSOCK_ENOENT;
}

static int post_topic(websock_host *h, int kind, const char *topic,
                      websock_opcode op, const void *data, size_t len) {
  pthread_mutex_lock(&h->lock);
  int rc = mail_post(h, kind, 0, topic, op, data, len);
  pthread_mutex_unlock(&h->lock);
  return rc;
}

int websock_publish(websock_host *host, const char *topic, const void *data,
                    size_t len) {
  if (!host || !wsh_contract_topic(topic) || (len && !data))
    return WEBSOCK_EINVAL;
  return post_topic(host, WST_MAIL_PUBLISH, topic, WEBSOCK_OP_BINARY, data,
                    len);
}

int websock_broadcast(websock_host *host, const char *topic,
                      websock_opcode opcode, const void *data, size_t len) {
  if (!host || !wsh_contract_topic(topic) || (len && !data) ||
      !wsh_contract_broadcast_opcode(opcode) ||
      (opcode == WEBSOCK_OP_TEXT && !wsh_utf8_valid(data, len)))
    return WEBSOCK_EINVAL;
  return post_topic(host, WST_MAIL_BROADCAST, topic, opcode, data, len);
}

const websock_request *websock_conn_request(const websock_conn *conn) {
  return conn && conn->show_request ? conn->req : NULL;
}

const char *websock_conn_subprotocol(const websock_conn *conn) {
  return conn ? conn->resp.subprotocol : NULL;
}

const char *websock_conn_option(const websock_conn *conn, const char *key) {
  return conn ? kvs_get(&conn->plugin->options.kv, key, false) : NULL;
}

const char *websock_conn_route(const websock_conn *conn) {
  return conn ? conn->plugin->route_path : NULL;
}

/* Keeps one line (taking text) for websock_test_log_*(); the line is lost
 * if memory runs out. */
static void log_record(const websock_conn *conn, int level, char *text) {
  pthread_mutex_lock(&wst_log_lock);
  wst_loglines *l = conn ? &((websock_conn *)conn)->log : &wst_global_log;
  wst_logline *items = grow(l->items, &l->cap, l->n + 1, sizeof(*l->items));
  if (items) {
    l->items = items;
    l->items[l->n++] = (wst_logline){.level = level, .text = text};
    text = NULL;
  }
  pthread_mutex_unlock(&wst_log_lock);
  free(text);
}

void websock_log(const websock_conn *conn, int level, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
  if (msg)
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  if (!msg)
    return;
  int max = conn ? conn->host->log_level : 1;
  if (level <= max) {
    if (conn)
      fprintf(stderr, "websock_test: route %s conn %llu: %s\n",
              conn->plugin->route_path, (unsigned long long)conn->id, msg);
    else
      fprintf(stderr, "websock_test: plugin: %s\n", msg);
  }
  log_record(conn, level, msg);
}

/* ---- recorded log lines -------------------------------------------------- */

static const wst_loglines *log_of(const websock_conn *conn) {
  return conn ? &conn->log : &wst_global_log;
}

size_t websock_test_log_count(const websock_conn *conn) {
  pthread_mutex_lock(&wst_log_lock);
  size_t n = log_of(conn)->n;
  pthread_mutex_unlock(&wst_log_lock);
  return n;
}

const char *websock_test_log_at(const websock_conn *conn, size_t i,
                                int *level) {
  const char *text = NULL;
  pthread_mutex_lock(&wst_log_lock);
  const wst_loglines *l = log_of(conn);
  if (i < l->n) {
    text = l->items[i].text;
    if (level)
      *level = l->items[i].level;
  }
  pthread_mutex_unlock(&wst_log_lock);
  return text;
}

int websock_test_log_find(const websock_conn *conn, const char *needle) {
  int found = WEBSOCK_ENOENT;
  if (!needle)
    return WEBSOCK_EINVAL;
  pthread_mutex_lock(&wst_log_lock);
  const wst_loglines *l = log_of(conn);
  for (size_t i = 0; i < l->n && i <= INT32_MAX; i++)
    if (strstr(l->items[i].text, needle)) {
      found = (int)i;
      break;
    }
  pthread_mutex_unlock(&wst_log_lock);
  return found;
}

void websock_test_clear_log(websock_conn *conn) {
  pthread_mutex_lock(&wst_log_lock);
  wst_loglines *l = conn ? &conn->log : &wst_global_log;
  for (size_t i = 0; i < l->n; i++)
    free(l->items[i].text);
  l->n = 0;
  if (!conn) {
    free(l->items);
    l->items = NULL;
    l->cap = 0;
  }
  pthread_mutex_unlock(&wst_log_lock);
}

/* ---- the request, the response, the options ------------------------------ */

const char *websock_request_method(const websock_request *req) {
  return req ? req->method : "";
}

const char *websock_request_path(const websock_request *req) {
  return req ? req->path : "";
}

const char *websock_request_query(const websock_request *req) {
  return req ? req->query : "";
}

const char *websock_request_header(const websock_request *req,
                                   const char *name) {
  return req ? kvs_get(&req->headers, name, true) : NULL;
}

size_t websock_request_header_count(const websock_request *req) {
  return req ? req->headers.n : 0;
}

int websock_request_header_at(const websock_request *req, size_t i,
                              const char **name, const char **value) {
  if (!req || i >= req->headers.n)
    return WEBSOCK_ENOENT;
  if (name)
    *name = req->headers.items[i].key;
  if (value)
    *value = req->headers.items[i].value;
  return 0;
}

const char *websock_request_remote_addr(const websock_request *req) {
  return req ? req->remote_addr : "";
}

const char *websock_request_subprotocol(const websock_request *req) {
  return req ? req->subprotocol : NULL;
}

/* The fake host has no TLS listener: every request is plain TCP. */
int websock_request_tls(const websock_request *req) {
  (void)req;
  return 0;
}

const char *websock_request_peer_subject(const websock_request *req) {
  (void)req;
  return NULL;
}

int websock_response_add_header(websock_response *resp, const char *name,
                                const char *value) {
  if (!resp || !wsh_header_addable(name, value))
    return WEBSOCK_EINVAL;
  return kvs_add(&resp->headers, name, value);
}

int websock_response_set_subprotocol(websock_response *resp,
                                     const char *protocol) {
  if (!resp || !protocol || !wsh_header_token(protocol))
    return WEBSOCK_EINVAL;
  bool offered = false;
  for (size_t i = 0; resp->req && i < resp->req->noffered && !offered; i++)
    offered = strcmp(resp->req->offered[i], protocol) == 0;
  if (!offered)
    return WEBSOCK_EINVAL;
  char *copy = strdup(protocol);
  if (!copy)
    return WEBSOCK_ENOMEM;
  free(resp->subprotocol);
  resp->subprotocol = copy;
  return 0;
}

int websock_response_set_body(websock_response *resp, const char *body) {
  if (!resp)
    return WEBSOCK_EINVAL;
  char *copy = NULL;
  if (body && !(copy = strdup(body)))
    return WEBSOCK_ENOMEM;
  free(resp->body);
  resp->body = copy;
  return 0;
}

void websock_response_set_state(websock_response *resp, void *state) {
  if (resp)
    resp->state = state;
}

const char *websock_option(const websock_options *options, const char *key) {
  return options ? kvs_get(&options->kv, key, false) : NULL;
}

size_t websock_option_count(const websock_options *options) {
  return options ? options->kv.n : 0;
}

int websock_option_at(const websock_options *options, size_t i,
                      const char **key, const char **value) {
  if (!options || i >= options->kv.n)
    return WEBSOCK_ENOENT;
  if (key)
    *key = options->kv.items[i].key;
  if (value)
    *value = options->kv.items[i].value;
  return 0;
}

/* ---- path parameters, the plugin's context, message sources, topics ---- */

const char *websock_request_param(const websock_request *req,
                                  const char *name) {
  return req && req->params && name ? kvs_get(req->params, name, false) : NULL;
}

void *websock_request_context(const websock_request *req) {
  return req ? req->context : NULL;
}

const char *websock_conn_param(const websock_conn *conn, const char *name) {
  return conn && name ? kvs_get(&conn->params, name, false) : NULL;
}

void *websock_conn_context(const websock_conn *conn) {
  return conn ? conn->plugin->options.context : NULL;
}

int websock_options_set_context(const websock_options *options, void *context) {
  if (!options)
    return WEBSOCK_EINVAL;
  if (!options->loading)
    return WEBSOCK_ECONTEXT;
  ((websock_options *)options)->context = context; /* the one settable */
  return 0;
}

void *websock_options_context(const websock_options *options) {
  return options ? options->context : NULL;
}

websock_info_kind websock_info_source(const websock_conn *conn,
                                      int64_t *timer_id, const char **topic) {
  websock_info_kind kind = conn && conn->in_callback && conn->in_info
                               ? conn->info_kind
                               : WEBSOCK_INFO_NONE;
  if (timer_id)
    *timer_id = kind == WEBSOCK_INFO_TIMER ? conn->info_timer : 0;
  if (topic)
    *topic = kind == WEBSOCK_INFO_PUBLISH ? conn->info_topic : NULL;
  return kind;
}

int64_t websock_topic_subscribers(websock_host *host, const char *topic) {
  if (!host || !wsh_contract_topic(topic))
    return WEBSOCK_EINVAL;
  int64_t n = 0;
  pthread_mutex_lock(&host->lock);
  for (size_t i = 0; i < host->nconns; i++)
    for (size_t k = 0; k < host->conns[i]->ntopics; k++)
      if (strcmp(host->conns[i]->topics[k], topic) == 0)
        n++;
  pthread_mutex_unlock(&host->lock);
  return n;
}

/* One host, no bus: every subscriber is this host's. */
int64_t websock_topic_subscribers_all(websock_host *host, const char *topic) {
  return websock_topic_subscribers(host, topic);
}
