/*
 * bus_redis.c - the Redis engine of the bus (bus_engine.h): hiredis's
 * asynchronous API on the bus loop through its libevent adapter. Two
 * connections, since one in subscribe mode takes no PUBLISH: "sub" for
 * SUBSCRIBE and UNSUBSCRIBE, "pub" for PUBLISH. Both authenticate (or ping)
 * first; once both have answered, the engine is up. Losing either, or an
 * attempt that fails or takes too long, closes both and tries again after a
 * capped, jittered exponential backoff. A PING on "pub" every second
 * finds a Redis that stops answering (hung, or a network that drops
 * everything) and treats it as lost. One log line per change of state.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus/bus_engine.h"
#include "base/log.h"
#include "websock.h"

#define BACKOFF_MIN_DEFAULT 100u
#define BACKOFF_MAX_DEFAULT 5000u
#define CONNECT_TIMEOUT_DEFAULT 2000u
#define INFLIGHT_DEFAULT (16u << 20)
#define HEALTH_INTERVAL_DEFAULT 1000u
#define HEALTH_TIMEOUT_DEFAULT 3000u

enum { R_WAITING, R_CONNECTING, R_UP };

typedef struct redis_engine {
  wsh_bus *bus;
  struct event_base *base;
  wsh_bus_addr addr;
  char where[300]; /* for the log */
  char *password;
  redisAsyncContext *sub, *pub;
  bool sub_ready, pub_ready;
  int state;
  bool ever_up;
  bool failing_logged; /* the "cannot connect" line of this outage */
  unsigned backoff_ms, backoff_min, backoff_max, connect_timeout;
  uint32_t rng;
  struct event *retry;
  struct event *timeout;
  struct event *health;          /* every health interval while up */
  unsigned health_timeout;       /* ms without an answer to PING: lost */
  bool ping_out;                 /* a PING waits for its answer */
  double ping_sent;              /* since when, in ms */
  size_t inflight, inflight_max; /* bytes handed to pub, not answered */
} redis_engine;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static uint32_t next_rand(redis_engine *e) { /* xorshift32, for jitter */
  uint32_t x = e->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return e->rng = x;
}

/* Closes both connections. hiredis frees a context whose callback we are in
 * once that callback returns; our pointers are cleared first, so that the
 * callbacks this runs see contexts that are no longer ours. */
static void close_both(redis_engine *e) {
  redisAsyncContext *sub = e->sub, *pub = e->pub;
  e->sub = e->pub = NULL;
  e->sub_ready = e->pub_ready = false;
  if (sub)
    redisAsyncFree(sub);
  if (pub)
    redisAsyncFree(pub);
}

/* The connection is lost or an attempt failed: close what is left, say so
 * once, and try again later. */
static void fail(redis_engine *e, const char *why) {
  if (e->state == R_WAITING)
    return; /* already failed; the other connection's report */
  bool was_up = e->state == R_UP;
  e->state = R_WAITING;
  e->ping_out = false;
  evtimer_del(e->timeout);
  close_both(e);
  if (was_up) {
    wsh_bus_engine_down(e->bus);
    e->backoff_ms = e->backoff_min;
    wsh_warn("redis bus: lost %s (%s); reconnecting, cross-host messages are "
             "dropped meanwhile",
             e->where, why);
  } else if (!e->failing_logged) {
    wsh_warn("redis bus: cannot connect to %s (%s); retrying with backoff up "
             "to %u ms, cross-host messages are dropped meanwhile",
             e->where, why, e->backoff_max);
  }
  e->failing_logged = true;
  /* Wait between half the delay and the whole of it, then double it. */
  unsigned ms = e->backoff_ms / 2 + next_rand(e) % (e->backoff_ms / 2 + 1);
  e->backoff_ms =
      e->backoff_ms * 2 > e->backoff_max ? e->backoff_max : e->backoff_ms * 2;
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
  evtimer_add(e->retry, &tv);
}

static void check_up(redis_engine *e) {
  if (e->state != R_CONNECTING || !e->sub_ready || !e->pub_ready)
    return;
  e->state = R_UP;
  evtimer_del(e->timeout);
  e->backoff_ms = e->backoff_min;
  e->failing_logged = false;
  wsh_info("redis bus: %s %s", e->ever_up ? "reconnected to" : "connected to",
           e->where);
  e->ever_up = true;
  wsh_bus_engine_up(e->bus);
}

/* ---- hiredis callbacks --------------------------------------------------- */

static void on_connect(const redisAsyncContext *ac, int status) {
  redis_engine *e = ac->data;
  if (status == REDIS_OK || (ac != e->sub && ac != e->pub))
    return;
  /* hiredis frees ac after this returns. */
  if (ac == e->sub)
    e->sub = NULL;
  else
    e->pub = NULL;
  fail(e, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  redis_engine *e = ac->data;
  (void)status;
  if (ac != e->sub && ac != e->pub)
    return; /* one we closed ourselves */
  if (ac == e->sub)
    e->sub = NULL;
  else
    e->pub = NULL;
  fail(e, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* The answer to AUTH (or PING): this connection can be used. */
static void on_ready(redisAsyncContext *ac, void *r, void *priv) {
  redis_engine *e = priv;
  redisReply *reply = r;
  if (!reply || (ac != e->sub && ac != e->pub))
    return;
  if (reply->type == REDIS_REPLY_ERROR) {
    char why[128];
    snprintf(why, sizeof(why), "%s: %s", e->password ? "AUTH" : "PING",
             reply->str);
    fail(e, why);
    return;
  }
  if (ac == e->sub)
    e->sub_ready = true;
  else
    e->pub_ready = true;
  check_up(e);
}

static bool is_str(const redisReply *r) {
  return r->type == REDIS_REPLY_STRING;
}

/* Everything on the sub connection once subscribed: the answers to
 * SUBSCRIBE and UNSUBSCRIBE, and the messages. */
static void on_sub(redisAsyncContext *ac, void *r, void *priv) {
  redis_engine *e = priv;
  redisReply *reply = r;
  if (!reply || ac != e->sub || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements < 3 || !is_str(reply->element[0]) ||
      !is_str(reply->element[1]))
    return;
  const char *type = reply->element[0]->str;
  const redisReply *ch = reply->element[1], *third = reply->element[2];
  if (strcmp(type, "message") == 0 && is_str(third))
    wsh_bus_engine_received(e->bus, ch->str, ch->len,
                            (const uint8_t *)third->str, third->len);
  else if (strcmp(type, "subscribe") == 0)
    wsh_bus_engine_acked(e->bus, ch->str, ch->len, true);
  else if (strcmp(type, "unsubscribe") == 0)
    wsh_bus_engine_acked(e->bus, ch->str, ch->len, false);
}

/* The answer to one PUBLISH. priv: its size, shifted, and whether it went
 * to a host's channel. */
static void on_published(redisAsyncContext *ac, void *r, void *priv) {
  redis_engine *e = ac->data;
  redisReply *reply = r;
  uintptr_t p = (uintptr_t)priv;
  e->inflight -= p >> 1;
  if (!reply)
    return; /* the connection went: whether it reached Redis is unknown */
  if (reply->type == REDIS_REPLY_ERROR)
    wsh_bus_engine_dropped(e->bus, 1);
  else if ((p & 1) && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
    wsh_bus_engine_unknown_host(e->bus);
}

static void on_pong(redisAsyncContext *ac, void *r, void *priv) {
  redis_engine *e = priv;
  if (r && ac == e->pub)
    e->ping_out = false;
}

/* While up: a PING, unless the last one is still unanswered; past
 * health_timeout, the connection counts as lost. */
static void on_health(evutil_socket_t fd, short what, void *arg) {
  redis_engine *e = arg;
  (void)fd;
  (void)what;
  if (e->state != R_UP)
    return;
  if (e->ping_out) {
    if (now_ms() - e->ping_sent >= e->health_timeout) {
      char why[64];
      snprintf(why, sizeof(why), "no answer for %u ms", e->health_timeout);
      fail(e, why);
    }
    return;
  }
  if (redisAsyncCommand(e->pub, on_pong, e, "PING") == REDIS_OK) {
    e->ping_out = true;
    e->ping_sent = now_ms();
  }
}

/* ---- connecting ---------------------------------------------------------- */

/* A new connection, or NULL with the reason in why[0..64). */
static redisAsyncContext *open_one(redis_engine *e, char *why) {
  redisAsyncContext *ac = e->addr.path[0]
                              ? redisAsyncConnectUnix(e->addr.path)
                              : redisAsyncConnect(e->addr.host, e->addr.port);
  snprintf(why, 64, "out of memory");
  if (!ac)
    return NULL;
  if (ac->err) {
    snprintf(why, 64, "%s", ac->errstr);
    redisAsyncFree(ac);
    return NULL;
  }
  ac->data = e;
  if (redisLibeventAttach(ac, e->base) != REDIS_OK) {
    redisAsyncFree(ac);
    return NULL;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  /* Commands wait in hiredis's buffer until the socket connects. */
  int rc = e->password
               ? redisAsyncCommand(ac, on_ready, e, "AUTH %s", e->password)
               : redisAsyncCommand(ac, on_ready, e, "PING");
  if (rc != REDIS_OK) {
    redisAsyncFree(ac);
    return NULL;
  }
  return ac;
}

static void attempt(redis_engine *e) {
  e->state = R_CONNECTING;
  struct timeval tv = {(time_t)(e->connect_timeout / 1000),
                       (suseconds_t)(e->connect_timeout % 1000) * 1000};
  evtimer_add(e->timeout, &tv);
  char why[64];
  e->sub = open_one(e, why);
  if (e->sub)
    e->pub = open_one(e, why);
  if (!e->sub || !e->pub)
    fail(e, why);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  attempt(arg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  redis_engine *e = arg;
  (void)fd;
  (void)what;
  if (e->state == R_CONNECTING)
    fail(e, "timed out");
}

/* ---- the engine ---------------------------------------------------------- */

static int redis_subscribe(void *state, const char *channel, size_t len) {
  redis_engine *e = state;
  if (e->state != R_UP)
    return -1;
  return redisAsyncCommand(e->sub, on_sub, e, "SUBSCRIBE %b", channel, len) ==
                 REDIS_OK
             ? 0
             : -1;
}

static int redis_unsubscribe(void *state, const char *channel, size_t len) {
  redis_engine *e = state;
  if (e->state != R_UP)
    return -1;
  /* UNSUBSCRIBE has no callback of its own: its answer goes to the
   * channel's, on_sub. */
  return redisAsyncCommand(e->sub, NULL, NULL, "UNSUBSCRIBE %b", channel,
                           len) == REDIS_OK
             ? 0
             : -1;
}

static int redis_publish(void *state, const char *channel, size_t channel_len,
                         const uint8_t *msg, size_t len, bool direct) {
  redis_engine *e = state;
  if (e->state != R_UP || e->inflight + len > e->inflight_max)
    return -1;
  const char *argv[3] = {"PUBLISH", channel, (const char *)msg};
  size_t argl[3] = {7, channel_len, len};
  uintptr_t priv = (uintptr_t)len << 1 | (direct ? 1 : 0);
  if (redisAsyncCommandArgv(e->pub, on_published, (void *)priv, 3, argv,
                            argl) != REDIS_OK)
    return -1;
  e->inflight += len;
  return 0;
}

static void redis_stop(void *state) {
  redis_engine *e = state;
  if (!e)
    return;
  e->state = R_WAITING; /* nothing reported from here on */
  e->bus = NULL;
  close_both(e);
  if (e->retry)
    event_free(e->retry);
  if (e->timeout)
    event_free(e->timeout);
  if (e->health)
    event_free(e->health);
  free(e->password);
  free(e);
}

static int redis_start(wsh_bus *bus, const wsh_bus_config *cfg,
                       struct event_base *base, void **state) {
  redis_engine *e = calloc(1, sizeof(*e));
  if (!e)
    return WEBSOCK_ENOMEM;
  e->bus = bus;
  e->base = base;
  if (wsh_bus_addr_parse(&e->addr, cfg->redis) != 0) {
    free(e);
    return WEBSOCK_EINVAL;
  }
  if (e->addr.path[0])
    snprintf(e->where, sizeof(e->where), "redis at %s", e->addr.path);
  else
    snprintf(e->where, sizeof(e->where), "redis at %s:%d", e->addr.host,
             e->addr.port);
  e->backoff_min =
      cfg->backoff_min_ms ? cfg->backoff_min_ms : BACKOFF_MIN_DEFAULT;
  e->backoff_max =
      cfg->backoff_max_ms ? cfg->backoff_max_ms : BACKOFF_MAX_DEFAULT;
  if (e->backoff_max < e->backoff_min)
    e->backoff_max = e->backoff_min;
  e->backoff_ms = e->backoff_min;
  e->connect_timeout = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                               : CONNECT_TIMEOUT_DEFAULT;
  e->inflight_max =
      cfg->inflight_max_bytes ? cfg->inflight_max_bytes : INFLIGHT_DEFAULT;
  e->rng = (uint32_t)(wsh_bus_host_id(bus) ^ (wsh_bus_host_id(bus) >> 32)) | 1;
  e->health_timeout =
      cfg->health_timeout_ms ? cfg->health_timeout_ms : HEALTH_TIMEOUT_DEFAULT;
  unsigned every = cfg->health_interval_ms ? cfg->health_interval_ms
                                           : HEALTH_INTERVAL_DEFAULT;
  e->retry = evtimer_new(base, on_retry, e);
  e->timeout = evtimer_new(base, on_timeout, e);
  e->health = event_new(base, -1, EV_PERSIST, on_health, e);
  if (cfg->password && !(e->password = strdup(cfg->password)))
    goto out_free;
  if (!e->retry || !e->timeout || !e->health)
    goto out_free;
  struct timeval iv = {(time_t)(every / 1000),
                       (suseconds_t)(every % 1000) * 1000};
  evtimer_add(e->health, &iv);
  /* The first attempt runs on the loop, as every later one does. */
  struct timeval now = {0, 0};
  evtimer_add(e->retry, &now);
  e->state = R_WAITING;
  *state = e;
  return 0;
out_free:
  redis_stop(e);
  return WEBSOCK_ENOMEM;
}

const wsh_bus_engine wsh_bus_engine_redis = {
    .name = "redis",
    .start = redis_start,
    .stop = redis_stop,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .publish = redis_publish,
};
