/*
 * additions.c - a test plugin that uses every SDK addition of issue 16, for
 * tests/integration/test_additions.py (the real websockd), the parity test
 * (tests/parity/additions.txt) and tests/parity/additions_sdk.c (the test
 * library):
 *
 *  - option_keys: only "greeting" and "log_thread" are allowed in [options];
 *  - load() puts the greeting in a context (websock_options_set_context),
 *    logs with websock_log(NULL, ...) and, with log_thread = 1, starts a
 *    thread that logs once the same way; unload_context() joins it, logs
 *    and frees the context;
 *  - upgrade() refuses room "forbidden" with 403 (websock_request_param),
 *    init() pushes "init room=R rest=S ctx=G" (the path parameters and the
 *    context as the request shows them).
 *
 * Text commands:
 *   params          "params room=R rest=S" (websock_conn_param)
 *   ctx             "ctx G late=N" (websock_conn_context, and what
 *                   websock_options_set_context answers outside load())
 *   timer           a 0 ms timer; "timer ID"
 *   self            websock_send to itself
 *   sub:T / unsub:T / count:T
 *                   subscribe / unsubscribe / nothing, then
 *                   "subscribers T N" (websock_topic_subscribers)
 *   pub:T           websock_publish(T, "p")
 *   all:T           "all T N" (websock_topic_subscribers_all: every host)
 *   source          "source K" (websock_info_source outside handle_info)
 *   ret:N           returns N (a negative websock_* code, say)
 *   flood:N:SIZE    pushes N binary messages of SIZE bytes and returns what
 *                   the last push returned
 *   echo:TEXT       pushes TEXT (the parity test's sync)
 * handle_info pushes "info send DATA", "info timer ID DATA" or
 * "info publish TOPIC DATA".
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websock.h"

typedef struct context {
  char greeting[64];
  int thread_started;
  pthread_t thread;
} context;

/* Kept for the "ctx" command's late websock_options_set_context(). Per
 * generation, as every static of a plugin is. */
static const websock_options *the_options;

static void *log_thread(void *arg) {
  (void)arg;
  websock_log(NULL, WEBSOCK_LOG_INFO, "hello from a plugin thread");
  return NULL;
}

static int on_load(const websock_options *options) {
  context *ctx = calloc(1, sizeof(*ctx));
  if (!ctx)
    return -1;
  const char *g = websock_option(options, "greeting");
  snprintf(ctx->greeting, sizeof(ctx->greeting), "%s", g ? g : "none");
  if (websock_options_set_context(options, ctx) != 0) {
    free(ctx);
    return -1;
  }
  the_options = options;
  websock_log(NULL, WEBSOCK_LOG_INFO, "loaded with greeting %s", ctx->greeting);
  const char *t = websock_option(options, "log_thread");
  if (t && strcmp(t, "1") == 0 &&
      pthread_create(&ctx->thread, NULL, log_thread, NULL) == 0)
    ctx->thread_started = 1;
  return websock_options_context(options) == ctx ? 0 : -1;
}

static void on_unload(void) {
  websock_log(NULL, WEBSOCK_LOG_INFO, "unloading");
}

static void on_unload_context(void *arg) {
  context *ctx = arg;
  if (ctx->thread_started)
    pthread_join(ctx->thread, NULL);
  websock_log(NULL, WEBSOCK_LOG_INFO, "context freed: %s", ctx->greeting);
  free(ctx);
}

static const char *or_dash(const char *s) {
  return s ? s : "-";
}

static int on_upgrade(const websock_request *req, websock_response *resp) {
  (void)resp;
  const char *room = websock_request_param(req, "room");
  return room && strcmp(room, "forbidden") == 0 ? 403 : 0;
}

static int pushf(websock_conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pushf(websock_conn *conn, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0)
    return WEBSOCK_EINVAL;
  return websock_push(conn, WEBSOCK_OP_TEXT, buf,
                      (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static int on_init(websock_conn *conn, void **state) {
  (void)state;
  const websock_request *req = websock_conn_request(conn);
  const context *ctx = websock_request_context(req);
  pushf(conn, "init room=%s rest=%s ctx=%s",
        or_dash(websock_request_param(req, "room")),
        or_dash(websock_request_param(req, "*")), ctx ? ctx->greeting : "-");
  return WEBSOCK_OK;
}

static const char *kind_name(websock_info_kind k) {
  switch (k) {
  case WEBSOCK_INFO_SEND:
    return "send";
  case WEBSOCK_INFO_TIMER:
    return "timer";
  case WEBSOCK_INFO_PUBLISH:
    return "publish";
  default:
    return "none";
  }
}

static int topic_cmd(websock_conn *conn, const char *cmd, const char *topic) {
  websock_host *host = websock_conn_host(conn);
  int rc = 0;
  if (strcmp(cmd, "sub") == 0)
    rc = websock_subscribe(conn, topic);
  else if (strcmp(cmd, "unsub") == 0)
    rc = websock_unsubscribe(conn, topic);
  else if (strcmp(cmd, "pub") == 0)
    return websock_publish(host, topic, "p", 1);
  else if (strcmp(cmd, "all") == 0)
    return pushf(conn, "all %s %lld", topic,
                 (long long)websock_topic_subscribers_all(host, topic));
  if (rc)
    return pushf(conn, "%s failed: %s", cmd, websock_strerror(rc));
  return pushf(conn, "subscribers %s %lld", topic,
               (long long)websock_topic_subscribers(host, topic));
}

static int flood(websock_conn *conn, const char *arg) {
  unsigned n = 0, size = 0;
  if (sscanf(arg, "%u:%u", &n, &size) != 2 || size > (1u << 20))
    return WEBSOCK_EINVAL;
  char *buf = calloc(1, size ? size : 1);
  if (!buf)
    return WEBSOCK_ENOMEM;
  int rc = 0;
  for (unsigned i = 0; i < n; i++)
    rc = websock_push(conn, WEBSOCK_OP_BINARY, buf, size);
  free(buf);
  return rc;
}

static int on_in(websock_conn *conn, void **state, websock_opcode op,
                 const uint8_t *data, size_t len) {
  (void)state;
  (void)op;
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "%.*s", (int)len, (const char *)data);
  char *colon = strchr(cmd, ':');
  if (colon)
    *colon++ = '\0';
  if (strcmp(cmd, "params") == 0)
    return pushf(conn, "params room=%s rest=%s",
                 or_dash(websock_conn_param(conn, "room")),
                 or_dash(websock_conn_param(conn, "*")));
  if (strcmp(cmd, "ctx") == 0) {
    const context *ctx = websock_conn_context(conn);
    return pushf(conn, "ctx %s late=%d", ctx ? ctx->greeting : "-",
                 websock_options_set_context(the_options, NULL));
  }
  if (strcmp(cmd, "timer") == 0)
    return pushf(conn, "timer %lld",
                 (long long)websock_send_after(conn, 0, "t", 1));
  if (strcmp(cmd, "self") == 0)
    return websock_send(websock_self(conn), "s", 1) == 0 ? WEBSOCK_OK
                                                         : WEBSOCK_STOP;
  if (strcmp(cmd, "source") == 0)
    return pushf(conn, "source %s",
                 kind_name(websock_info_source(conn, NULL, NULL)));
  if (colon && (strcmp(cmd, "sub") == 0 || strcmp(cmd, "unsub") == 0 ||
                strcmp(cmd, "count") == 0 || strcmp(cmd, "pub") == 0 ||
                strcmp(cmd, "all") == 0))
    return topic_cmd(conn, cmd, colon);
  if (colon && strcmp(cmd, "ret") == 0)
    return atoi(colon);
  if (colon && strcmp(cmd, "flood") == 0)
    return flood(conn, colon);
  if (colon && strcmp(cmd, "echo") == 0)
    return pushf(conn, "%s", colon);
  return pushf(conn, "unknown %s", cmd);
}

static int on_info(websock_conn *conn, void **state, const uint8_t *data,
                   size_t len) {
  (void)state;
  int64_t timer = -1;
  const char *topic = "?";
  websock_info_kind k = websock_info_source(conn, &timer, &topic);
  if (k == WEBSOCK_INFO_TIMER)
    return pushf(conn, "info timer %lld %.*s", (long long)timer, (int)len,
                 (const char *)data);
  if (k == WEBSOCK_INFO_PUBLISH)
    return pushf(conn, "info publish %s %.*s", topic ? topic : "(null)",
                 (int)len, (const char *)data);
  return pushf(conn, "info %s %.*s timer=%lld topic=%s", kind_name(k), (int)len,
               (const char *)data, (long long)timer, topic ? topic : "(null)");
}

static const char *const keys[] = {"greeting", "log_thread", NULL};

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "additions",
    .version = "1.0.0",
    .load = on_load,
    .unload = on_unload,
    .upgrade = on_upgrade,
    .init = on_init,
    .handle_in = on_in,
    .handle_info = on_info,
    .option_keys = keys,
    .unload_context = on_unload_context,
};
