/*
 * test_bus.c - the bus (host/bus/bus_core.c) and its Redis engine
 * (host/bus/bus_redis.c) against a real redis-server that each test starts on a
 * free loopback port and stops by its PID. Two or three buses, each on its own
 * event loop and thread, stand for as many hosts. A missing redis-server fails
 * the test with a message; nothing is skipped.
 *
 * `test_bus --bench` measures instead (see bench() at the end).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>

#include "bus/bus_core.h"
#include "websock.h"

extern char **environ;

/* ---- time ---------------------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* Polls cond every 5 ms for at most ms milliseconds; true once it holds. */
#define WAIT_FOR(cond, ms)                                                     \
  ({                                                                           \
    double until_ = now_ms() + (ms);                                           \
    bool ok_;                                                                  \
    while (!(ok_ = (cond)) && now_ms() < until_)                               \
      sleep_ms(5);                                                             \
    ok_;                                                                       \
  })

/* ---- redis-server -------------------------------------------------------- */

typedef struct redis {
  pid_t pid;
  int port;
  char sock[108]; /* unix socket, or "" */
  const char *password;
} redis;

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

/* Finds name in PATH; its full path goes to buf[0..cap). */
static bool in_path(const char *name, char *buf, size_t cap) {
  const char *path = getenv("PATH");
  if (!path)
    path = "/usr/bin:/bin";
  for (const char *p = path; *p;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    snprintf(buf, cap, "%.*s/%s", (int)n, p, name);
    if (access(buf, X_OK) == 0)
      return true;
    p += n + (end ? 1 : 0);
  }
  return false;
}

/* A synchronous connection to r, authenticated; NULL if it does not answer. */
static redisContext *redis_connect(const redis *r) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
  if (!c || c->err) {
    if (c)
      redisFree(c);
    return NULL;
  }
  redisReply *rep = r->password ? redisCommand(c, "AUTH %s", r->password)
                                : redisCommand(c, "PING");
  bool ok = rep && rep->type != REDIS_REPLY_ERROR;
  if (rep)
    freeReplyObject(rep);
  if (!ok) {
    redisFree(c);
    return NULL;
  }
  return c;
}

/* Starts redis-server on r->port (a free one if 0) and waits until it
 * answers. */
static void redis_start(redis *r) {
  char exe[4096];
  ck_assert_msg(in_path("redis-server", exe, sizeof(exe)),
                "redis-server not found in PATH: install Debian's redis-server "
                "(scripts/setup.sh --test does)");
  if (r->port == 0)
    r->port = free_port();
  char port[16];
  snprintf(port, sizeof(port), "%d", r->port);
  const char *argv[20] = {"redis-server", "--port",      port, "--bind",
                          "127.0.0.1",    "--save",      "",   "--appendonly",
                          "no",           "--daemonize", "no", "--loglevel",
                          "warning"};
  int n = 13;
  if (r->password) {
    argv[n++] = "--requirepass";
    argv[n++] = r->password;
  }
  if (r->sock[0]) {
    argv[n++] = "--unixsocket";
    argv[n++] = r->sock;
    argv[n++] = "--unixsocketperm";
    argv[n++] = "700";
  }
  argv[n] = NULL;
  /* The server dies with this process, even when a failed check ends it
   * before redis_stop: PR_SET_PDEATHSIG in the child, then exec. */
  pid_t parent = getpid();
  r->pid = fork();
  ck_assert_msg(r->pid >= 0, "fork: %s", strerror(errno));
  if (r->pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent ||
        null < 0)
      _exit(127);
    dup2(null, 1);
    dup2(null, 2);
    execv(exe, (char *const *)argv);
    _exit(127);
  }
  redisContext *c = NULL;
  double until = now_ms() + 10000;
  while (!(c = redis_connect(r)) && now_ms() < until) {
    int status;
    ck_assert_msg(waitpid(r->pid, &status, WNOHANG) == 0,
                  "redis-server exited at start (port %d)", r->port);
    sleep_ms(10);
  }
  ck_assert_msg(c != NULL, "redis-server does not answer on port %d", r->port);
  redisFree(c);
}

static void redis_stop(redis *r, int sig) {
  if (r->pid <= 0)
    return;
  kill(r->pid, sig);
  waitpid(r->pid, NULL, 0);
  r->pid = 0;
}

/* Does Redis know a subscriber of channel? (PUBSUB CHANNELS) */
static bool redis_has_channel(const redis *r, const char *channel) {
  redisContext *c = redis_connect(r);
  if (!c)
    return false;
  redisReply *rep = redisCommand(c, "PUBSUB CHANNELS");
  bool found = false;
  if (rep && rep->type == REDIS_REPLY_ARRAY)
    for (size_t i = 0; i < rep->elements; i++)
      if (strcmp(rep->element[i]->str, channel) == 0)
        found = true;
  if (rep)
    freeReplyObject(rep);
  redisFree(c);
  return found;
}

/* ---- hosts: a bus on its own loop and thread ----------------------------- */

typedef struct rec {
  uint64_t origin, seq;
  uint8_t kind, opcode;
  char topic[64];
  wsh_bus_ref to;
  size_t len;
  char data[64];
  double at_ms;
} rec;

typedef struct host {
  struct event_base *base;
  pthread_t thread;
  bool running;
  wsh_bus *bus;
  pthread_mutex_t lock;
  rec *recs; /* under lock */
  size_t nrecs, cap;
} host;

static void record(host *h, const wsh_bus_msg *m) {
  pthread_mutex_lock(&h->lock);
  if (h->nrecs == h->cap) {
    h->cap = h->cap ? h->cap * 2 : 1024;
    h->recs = realloc(h->recs, h->cap * sizeof(*h->recs));
    ck_assert_ptr_nonnull(h->recs);
  }
  rec *r = &h->recs[h->nrecs++];
  memset(r, 0, sizeof(*r));
  r->origin = m->origin;
  r->seq = m->seq;
  r->kind = m->kind;
  r->opcode = m->opcode;
  snprintf(r->topic, sizeof(r->topic), "%s", m->topic);
  r->to = m->to;
  r->len = m->len;
  if (m->len) /* the start of it, for the checks and the benchmark */
    memcpy(r->data, m->data,
           m->len < sizeof(r->data) ? m->len : sizeof(r->data) - 1);
  r->at_ms = now_ms();
  pthread_mutex_unlock(&h->lock);
}

static void on_publish(void *arg, const wsh_bus_msg *m) {
  record(arg, m);
}

/* Slot 666 stands for a connection that is gone. */
static int on_send(void *arg, const wsh_bus_msg *m) {
  record(arg, m);
  return m->to.slot == 666 ? WEBSOCK_ENOENT : 0;
}

static size_t nrecs(host *h) {
  pthread_mutex_lock(&h->lock);
  size_t n = h->nrecs;
  pthread_mutex_unlock(&h->lock);
  return n;
}

static void *loop_main(void *arg) {
  host *h = arg;
  event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
  return NULL;
}

static void host_run(host *h) {
  ck_assert_int_eq(pthread_create(&h->thread, NULL, loop_main, h), 0);
  h->running = true;
}

/* A host on r (NULL: a Redis at addr, or local if addr is NULL too); run:
 * start its loop now. */
static void host_init(host *h, const char *addr, const char *password,
                      const char *prefix, size_t queue_max, bool run) {
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->lock, NULL);
  h->base = event_base_new();
  ck_assert_ptr_nonnull(h->base);
  wsh_bus_config cfg = {.redis = addr,
                        .password = password,
                        .prefix = prefix,
                        .queue_max = queue_max};
  wsh_bus_callbacks cb = {h, on_publish, on_send};
  ck_assert_int_eq(wsh_bus_new(&h->bus, &cfg, h->base, &cb), 0);
  if (run)
    host_run(h);
}

static void host_on(host *h, const redis *r, const char *prefix) {
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", r->port);
  host_init(h, addr, r->password, prefix, 0, true);
}

static void host_stop(host *h) {
  if (h->running) {
    event_base_loopbreak(h->base);
    pthread_join(h->thread, NULL);
  }
  wsh_bus_free(h->bus);
  event_base_free(h->base);
  free(h->recs);
  pthread_mutex_destroy(&h->lock);
}

static wsh_bus_stats stats(host *h) {
  wsh_bus_stats st;
  wsh_bus_stats_get(h->bus, &st);
  return st;
}

#define CONNECTED(h) (stats(h).connected == 1)
#define CHANNELS(h) stats(h).channels

/* Checks that h got exactly n messages of topic from origin, with sequence
 * numbers 1..n in order and payloads "<prefix><i>". */
static void check_in_order(host *h, const char *topic, uint64_t origin,
                           size_t n, const char *prefix) {
  size_t got = 0;
  char want[64];
  pthread_mutex_lock(&h->lock);
  for (size_t i = 0; i < h->nrecs; i++) {
    rec *r = &h->recs[i];
    if (strcmp(r->topic, topic) != 0 || r->origin != origin)
      continue;
    got++;
    ck_assert_uint_eq(r->seq, got);
    snprintf(want, sizeof(want), "%s%zu", prefix, got);
    ck_assert_uint_eq(r->len, strlen(want));
    ck_assert_mem_eq(r->data, want, r->len);
  }
  pthread_mutex_unlock(&h->lock);
  ck_assert_uint_eq(got, n);
}

static void publish_n(host *h, const char *topic, int kind, int opcode,
                      size_t n, const char *prefix) {
  char msg[64];
  for (size_t i = 1; i <= n; i++) {
    int len = snprintf(msg, sizeof(msg), "%s%zu", prefix, i);
    ck_assert_int_eq(
        wsh_bus_publish(h->bus, topic, kind, opcode, msg, (size_t)len), 0);
  }
}

/* ---- tests --------------------------------------------------------------- */

START_TEST(publish_reaches_every_other_host_once_in_order) {
  redis r = {0};
  redis_start(&r);
  host a, b, c;
  host_on(&a, &r, "t1:");
  host_on(&b, &r, "t1:");
  host_on(&c, &r, "t1:");
  ck_assert(WAIT_FOR(CONNECTED(&a) && CONNECTED(&b) && CONNECTED(&c), 5000));
  ck_assert_int_eq(wsh_bus_topic_joined(a.bus, "room"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(b.bus, "room"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(c.bus, "room"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(b.bus, "news"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(c.bus, "news"), 0);
  ck_assert(WAIT_FOR(
      CHANNELS(&a) == 3 && CHANNELS(&b) == 4 && CHANNELS(&c) == 4, 5000));
  ck_assert(redis_has_channel(&r, "t1:t:room"));
  ck_assert(redis_has_channel(&r, "t1:t:news"));
  char hostch[WSH_BUS_CHANNEL_MAX];
  wsh_bus_channel_host(hostch, sizeof(hostch), "t1:", wsh_bus_host_id(a.bus));
  ck_assert(redis_has_channel(&r, hostch));

  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 1000, "room-");
  publish_n(&a, "news", WSH_BUS_BROADCAST, WEBSOCK_OP_TEXT, 1000, "news-");
  ck_assert_msg(WAIT_FOR(nrecs(&b) == 2000 && nrecs(&c) == 2000, 10000),
                "b got %zu, c got %zu of 2000", nrecs(&b), nrecs(&c));
  ck_assert(WAIT_FOR(stats(&a).own == 1000, 5000));
  sleep_ms(200); /* nothing more arrives: exactly once */
  uint64_t ida = wsh_bus_host_id(a.bus);
  host *both[] = {&b, &c};
  for (int i = 0; i < 2; i++) {
    ck_assert_uint_eq(nrecs(both[i]), 2000);
    check_in_order(both[i], "room", ida, 1000, "room-");
    check_in_order(both[i], "news", ida, 1000, "news-");
    pthread_mutex_lock(&both[i]->lock);
    for (size_t k = 0; k < both[i]->nrecs; k++) {
      rec *m = &both[i]->recs[k];
      bool room = strcmp(m->topic, "room") == 0;
      ck_assert_uint_eq(m->kind, room ? WSH_BUS_PUBLISH : WSH_BUS_BROADCAST);
      ck_assert_uint_eq(m->opcode, room ? 0 : WEBSOCK_OP_TEXT);
    }
    pthread_mutex_unlock(&both[i]->lock);
    ck_assert_uint_eq(stats(both[i]).received, 2000);
  }
  /* The publisher's own copies came back (it subscribes to "room") and were
   * dropped: local delivery is the host's job. */
  ck_assert_uint_eq(nrecs(&a), 0);
  ck_assert_uint_eq(stats(&a).own, 1000);
  ck_assert_uint_eq(stats(&a).published, 2000);
  ck_assert_uint_eq(stats(&a).dropped, 0);
  host_stop(&a);
  host_stop(&b);
  host_stop(&c);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(channels_follow_joined_and_left) {
  redis r = {0};
  redis_start(&r);
  host a, b;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  ck_assert(WAIT_FOR(CONNECTED(&a) && CONNECTED(&b), 5000));
  ck_assert(WAIT_FOR(CHANNELS(&a) == 2, 5000)); /* its own and control */
  ck_assert(!redis_has_channel(&r, "t:x"));
  /* Two workers of a have subscribers of x. */
  ck_assert_int_eq(wsh_bus_topic_joined(a.bus, "x"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(a.bus, "x"), 0);
  ck_assert(WAIT_FOR(redis_has_channel(&r, "t:x") && CHANNELS(&a) == 3, 5000));
  ck_assert_int_eq(wsh_bus_topic_left(a.bus, "x"), 0);
  sleep_ms(200);
  ck_assert(redis_has_channel(&r, "t:x")); /* one worker still has some */
  ck_assert_uint_eq(CHANNELS(&a), 3);
  ck_assert_int_eq(wsh_bus_topic_left(a.bus, "x"), 0);
  ck_assert(WAIT_FOR(!redis_has_channel(&r, "t:x") && CHANNELS(&a) == 2, 5000));
  /* Nobody of a listens any more: b's publish does not reach it. */
  publish_n(&b, "x", WSH_BUS_PUBLISH, 0, 10, "x-");
  ck_assert(WAIT_FOR(stats(&b).published == 10, 5000));
  sleep_ms(200);
  ck_assert_uint_eq(nrecs(&a), 0);
  /* Joining, leaving and joining again at once ends subscribed, whatever
   * the order of Redis's answers. */
  for (int i = 0; i < 50; i++) {
    wsh_bus_topic_joined(a.bus, "y");
    wsh_bus_topic_left(a.bus, "y");
  }
  wsh_bus_topic_joined(a.bus, "y");
  ck_assert(WAIT_FOR(redis_has_channel(&r, "t:y") && CHANNELS(&a) == 3, 5000));
  publish_n(&b, "y", WSH_BUS_PUBLISH, 0, 10, "y-");
  ck_assert(WAIT_FOR(nrecs(&a) == 10, 5000));
  check_in_order(&a, "y", wsh_bus_host_id(b.bus), 10, "y-");
  /* Leaving a topic never joined changes nothing. */
  ck_assert_int_eq(wsh_bus_topic_left(a.bus, "never"), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(a.bus, ""), WEBSOCK_EINVAL);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(send_reaches_only_its_host) {
  redis r = {0};
  redis_start(&r);
  host a, b, c;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  host_on(&c, &r, NULL);
  ck_assert(WAIT_FOR(
      CHANNELS(&a) == 2 && CHANNELS(&b) == 2 && CHANNELS(&c) == 2, 5000));
  /* b's connection as a string, as a plugin would put it in a message. */
  wsh_bus_ref to = {wsh_bus_host_id(b.bus), 2, 5, 9}, parsed;
  char s[WSH_BUS_REF_STRLEN];
  int n = wsh_bus_ref_format(s, sizeof(s), &to);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(wsh_bus_ref_parse(&parsed, s, (size_t)n), 0);
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &parsed, "hello", 5), 0);
  ck_assert(WAIT_FOR(nrecs(&b) == 1, 5000));
  sleep_ms(200);
  ck_assert_uint_eq(nrecs(&b), 1);
  ck_assert_uint_eq(nrecs(&a), 0);
  ck_assert_uint_eq(nrecs(&c), 0);
  rec got = b.recs[0];
  ck_assert_uint_eq(got.kind, WSH_BUS_SEND);
  ck_assert_uint_eq(got.origin, wsh_bus_host_id(a.bus));
  ck_assert_uint_eq(got.to.worker, 2);
  ck_assert_uint_eq(got.to.slot, 5);
  ck_assert_uint_eq(got.to.serial, 9);
  ck_assert_uint_eq(got.len, 5);
  ck_assert_mem_eq(got.data, "hello", 5);
  ck_assert_uint_eq(stats(&a).send_unknown, 0);
  /* A host that is gone (or never was): counted by the sender. */
  wsh_bus_ref nowhere = {0x1234, 0, 1, 1};
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &nowhere, "x", 1), 0);
  ck_assert(WAIT_FOR(stats(&a).send_unknown == 1, 5000));
  /* A connection gone on a live host: counted by that host. */
  wsh_bus_ref gone = {wsh_bus_host_id(c.bus), 0, 666, 1};
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &gone, "x", 1), 0);
  ck_assert(WAIT_FOR(stats(&c).send_gone == 1, 5000));
  /* Sending to oneself through the bus is the caller's mistake. */
  wsh_bus_ref self = {wsh_bus_host_id(a.bus), 0, 1, 1};
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &self, "x", 1), WEBSOCK_EINVAL);
  host_stop(&a);
  host_stop(&b);
  host_stop(&c);
  redis_stop(&r, SIGTERM);
}
END_TEST

/* Lines of the captured stderr that contain what. */
static int count_lines(FILE *f, const char *what) {
  char line[1024];
  int n = 0;
  fflush(stderr);
  rewind(f);
  while (fgets(line, sizeof(line), f))
    if (strstr(line, what))
      n++;
  return n;
}

START_TEST(redis_killed_then_restarted) {
  /* The log goes to a file, to count its lines. */
  FILE *log = tmpfile();
  ck_assert_ptr_nonnull(log);
  int saved = dup(2);
  dup2(fileno(log), 2);
  redis r = {0};
  redis_start(&r);
  host a, b;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  wsh_bus_topic_joined(a.bus, "room");
  wsh_bus_topic_joined(b.bus, "room");
  ck_assert(WAIT_FOR(CHANNELS(&a) == 3 && CHANNELS(&b) == 3, 5000));
  char msg[32];
  for (int i = 1; i <= 600; i++) {
    if (i == 301)
      redis_stop(&r, SIGKILL); /* mid-traffic */
    int len = snprintf(msg, sizeof(msg), "m%d", i);
    wsh_bus_publish(a.bus, "room", WSH_BUS_PUBLISH, 0, msg, (size_t)len);
    ck_assert_uint_le(stats(&a).queued, 65536);
    sleep_ms(1);
  }
  ck_assert(WAIT_FOR(!CONNECTED(&a) && !CONNECTED(&b), 3000));
  ck_assert(WAIT_FOR(stats(&a).published + stats(&a).dropped == 600, 3000));
  ck_assert_uint_gt(stats(&a).dropped, 0);
  ck_assert_uint_eq(CHANNELS(&a), 0);
  size_t before = nrecs(&b);
  ck_assert_uint_ge(before, 1);
  ck_assert_uint_le(before, 300);
  /* While Redis is down, publishing still returns at once, and drops. */
  unsigned long long dropped = stats(&a).dropped;
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 100, "down-");
  ck_assert(WAIT_FOR(stats(&a).dropped == dropped + 100, 3000));
  sleep_ms(500);
  redis_start(&r); /* the same port */
  double t0 = now_ms();
  ck_assert_msg(WAIT_FOR(CONNECTED(&a) && CONNECTED(&b), 8000),
                "not reconnected within 8 s");
  ck_assert(WAIT_FOR(CHANNELS(&a) == 3 && CHANNELS(&b) == 3, 3000));
  double took = now_ms() - t0;
  ck_assert(redis_has_channel(&r, "t:room"));
  ck_assert_uint_eq(stats(&a).reconnects, 1);
  ck_assert_uint_eq(stats(&b).reconnects, 1);
  /* Delivery resumes, in order. */
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 100, "after-");
  ck_assert(WAIT_FOR(nrecs(&b) == before + 100, 5000));
  pthread_mutex_lock(&b.lock);
  for (size_t i = 1; i < b.nrecs; i++)
    ck_assert_uint_gt(b.recs[i].seq, b.recs[i - 1].seq);
  ck_assert_mem_eq(b.recs[before].data, "after-1", 7);
  pthread_mutex_unlock(&b.lock);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
  /* One line per change of state and host: lost, then reconnected; never
   * one per message or per failed attempt. */
  int connected = count_lines(log, "redis bus: connected to");
  int lost = count_lines(log, "redis bus: lost");
  int again = count_lines(log, "redis bus: reconnected to");
  int cannot = count_lines(log, "redis bus: cannot connect");
  dup2(saved, 2);
  close(saved);
  fclose(log);
  fprintf(stderr, "reconnected %.0f ms after redis-server restarted\n", took);
  ck_assert_int_eq(connected, 2);
  ck_assert_int_eq(lost, 2);
  ck_assert_int_eq(again, 2);
  ck_assert_int_eq(cannot, 0);
}
END_TEST

START_TEST(redis_down_at_start) {
  redis r = {0};
  r.port = free_port();
  host a, b;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  wsh_bus_topic_joined(b.bus, "room");
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 10, "early-");
  ck_assert(WAIT_FOR(stats(&a).dropped == 10, 3000));
  ck_assert(!CONNECTED(&a));
  redis_start(&r);
  ck_assert_msg(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 8000),
                "not connected within 8 s of redis-server's start");
  ck_assert_uint_eq(stats(&a).reconnects, 0); /* never up before */
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 10, "late-");
  ck_assert(WAIT_FOR(nrecs(&b) == 10, 5000));
  check_in_order(&b, "room", wsh_bus_host_id(a.bus), 10, "late-");
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(queue_is_bounded) {
  redis r = {0};
  redis_start(&r);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", r.port);
  host a;
  /* The loop does not run yet: nothing drains the queue. */
  host_init(&a, addr, NULL, NULL, 100, false);
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 1000, "q-");
  ck_assert_uint_eq(stats(&a).queued, 100);
  ck_assert_uint_eq(stats(&a).dropped, 900);
  wsh_bus_ref to = {0x99, 0, 0, 1};
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &to, "x", 1), 0);
  ck_assert_uint_eq(stats(&a).dropped, 901);
  host_run(&a);
  /* The first pass of the loop finds the engine not up yet: dropped. */
  ck_assert(WAIT_FOR(stats(&a).queued == 0 && stats(&a).dropped == 1001, 3000));
  ck_assert(WAIT_FOR(CONNECTED(&a), 5000));
  host_stop(&a);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(slow_redis_bounds_what_is_in_flight) {
  redis r = {0};
  redis_start(&r);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", r.port);
  host a, b;
  memset(&a, 0, sizeof(a));
  pthread_mutex_init(&a.lock, NULL);
  a.base = event_base_new();
  wsh_bus_config cfg = {.redis = addr, .inflight_max_bytes = 64 * 1024};
  wsh_bus_callbacks cb = {&a, on_publish, on_send};
  ck_assert_int_eq(wsh_bus_new(&a.bus, &cfg, a.base, &cb), 0);
  host_run(&a);
  host_on(&b, &r, NULL);
  wsh_bus_topic_joined(b.bus, "room");
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 5000));
  /* Redis stops answering (SIGSTOP): at most 64 KiB wait for an answer. */
  kill(r.pid, SIGSTOP);
  static char kib[1024];
  memset(kib, 'k', sizeof(kib));
  for (int i = 0; i < 1000; i++)
    wsh_bus_publish(a.bus, "room", WSH_BUS_BROADCAST, WEBSOCK_OP_BINARY, kib,
                    sizeof(kib));
  ck_assert(WAIT_FOR(stats(&a).published + stats(&a).dropped == 1000, 5000));
  wsh_bus_stats st = stats(&a);
  ck_assert_uint_le(st.published, 64);
  ck_assert_uint_ge(st.dropped, 1000 - 64);
  kill(r.pid, SIGCONT);
  /* What was in flight arrives; then publishing works again. */
  ck_assert(WAIT_FOR(nrecs(&b) == st.published, 5000));
  /* Either host may have counted Redis as lost while it was stopped (its
   * health PING went unanswered) and be resubscribing: a publish made
   * before b's SUBSCRIBE is back is lost by design (at most once). So wait
   * for both to be connected with their channels, then publish until one
   * arrives (bounded). */
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 10000));
  bool arrived = false;
  for (int i = 0; i < 50 && !arrived; i++) {
    wsh_bus_publish(a.bus, "room", WSH_BUS_BROADCAST, WEBSOCK_OP_BINARY, kib,
                    sizeof(kib));
    arrived = WAIT_FOR(nrecs(&b) > st.published, 200);
  }
  ck_assert(arrived);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
}
END_TEST

/* A Redis that keeps its sockets open but answers nothing (SIGSTOP: hung,
 * or a network that drops everything) counts as lost once a PING goes
 * unanswered; once it answers again the bus comes back by itself. */
START_TEST(redis_that_stops_answering_is_lost) {
  redis r = {0};
  redis_start(&r);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", r.port);
  host a, b;
  memset(&a, 0, sizeof(a));
  pthread_mutex_init(&a.lock, NULL);
  a.base = event_base_new();
  wsh_bus_config cfg = {.redis = addr,
                        .health_interval_ms = 100,
                        .health_timeout_ms = 500,
                        .connect_timeout_ms = 500};
  wsh_bus_callbacks cb = {&a, on_publish, on_send};
  ck_assert_int_eq(wsh_bus_new(&a.bus, &cfg, a.base, &cb), 0);
  host_run(&a);
  host_on(&b, &r, NULL);
  wsh_bus_topic_joined(a.bus, "room");
  ck_assert(WAIT_FOR(CHANNELS(&a) == 3 && CONNECTED(&b), 5000));
  kill(r.pid, SIGSTOP);
  double t0 = now_ms();
  ck_assert_msg(WAIT_FOR(!CONNECTED(&a), 3000),
                "a hung Redis still counts as connected after 3 s");
  double lost_after = now_ms() - t0;
  ck_assert_uint_eq(CHANNELS(&a), 0);
  kill(r.pid, SIGCONT);
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&a) == 3, 8000));
  ck_assert_uint_eq(stats(&a).reconnects, 1);
  publish_n(&b, "room", WSH_BUS_PUBLISH, 0, 10, "back-");
  ck_assert(WAIT_FOR(nrecs(&a) == 10, 5000));
  check_in_order(&a, "room", wsh_bus_host_id(b.bus), 10, "back-");
  fprintf(stderr, "hung Redis noticed after %.0f ms\n", lost_after);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
}
END_TEST

/* Whatever else lands on a host's channels (garbage, a message whose topic
 * is not its channel's, a send for another host) is counted and never
 * delivered; a 1 MiB payload crosses whole. */
START_TEST(foreign_bytes_are_counted_not_delivered) {
  redis r = {0};
  redis_start(&r);
  host a, b;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  wsh_bus_topic_joined(a.bus, "room");
  ck_assert(WAIT_FOR(CHANNELS(&a) == 3 && CONNECTED(&b), 5000));
  redisContext *c = redis_connect(&r);
  ck_assert_ptr_nonnull(c);
  uint8_t buf[256];
  wsh_bus_msg other = {.origin = 5,
                       .seq = 1,
                       .kind = WSH_BUS_PUBLISH,
                       .topic = "other",
                       .topic_len = 5,
                       .data = (const uint8_t *)"x",
                       .len = 1};
  long n1 = wsh_bus_msg_encode(&other, buf, sizeof(buf));
  ck_assert_int_gt(n1, 0);
  wsh_bus_msg send = {.origin = 5,
                      .seq = 1,
                      .kind = WSH_BUS_SEND,
                      .to = {wsh_bus_host_id(b.bus), 0, 1, 1},
                      .data = (const uint8_t *)"x",
                      .len = 1};
  long n2 = wsh_bus_msg_encode(&send, buf + n1, sizeof(buf) - (size_t)n1);
  ck_assert_int_gt(n2, 0);
  char hostch[WSH_BUS_CHANNEL_MAX];
  wsh_bus_channel_host(hostch, sizeof(hostch), NULL, wsh_bus_host_id(a.bus));
  redisReply *rep;
  rep = redisCommand(c, "PUBLISH t:room %b", "garbage", (size_t)7);
  freeReplyObject(rep);
  rep = redisCommand(c, "PUBLISH t:room %b", buf, (size_t)n1);
  freeReplyObject(rep);
  rep = redisCommand(c, "PUBLISH %s %b", hostch, buf + n1, (size_t)n2);
  freeReplyObject(rep);
  redisFree(c);
  ck_assert(WAIT_FOR(stats(&a).invalid == 3, 5000));
  ck_assert_uint_eq(stats(&a).received, 0);
  ck_assert_uint_eq(nrecs(&a), 0);
  /* And the real thing still works, 1 MiB of it. */
  size_t big = 1u << 20;
  char *data = malloc(big);
  memset(data, 'z', big);
  memcpy(data, "big", 3);
  ck_assert_int_eq(wsh_bus_publish(b.bus, "room", WSH_BUS_BROADCAST,
                                   WEBSOCK_OP_BINARY, data, big),
                   0);
  free(data);
  ck_assert(WAIT_FOR(nrecs(&a) == 1, 5000));
  ck_assert_uint_eq(a.recs[0].len, big);
  ck_assert_mem_eq(a.recs[0].data, "bigzzz", 6);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(auth_with_a_password) {
  redis r = {0};
  r.password = "s3cret pass";
  redis_start(&r);
  host a, b, wrong;
  host_on(&a, &r, NULL);
  host_on(&b, &r, NULL);
  redis bad = r;
  bad.password = "not it";
  host_on(&wrong, &bad, NULL);
  wsh_bus_topic_joined(b.bus, "room");
  wsh_bus_topic_joined(wrong.bus, "room");
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 5000));
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 5, "p-");
  ck_assert(WAIT_FOR(nrecs(&b) == 5, 5000));
  check_in_order(&b, "room", wsh_bus_host_id(a.bus), 5, "p-");
  /* The wrong password never connects and never hears anything. */
  sleep_ms(300);
  ck_assert(!CONNECTED(&wrong));
  ck_assert_uint_eq(nrecs(&wrong), 0);
  publish_n(&wrong, "room", WSH_BUS_PUBLISH, 0, 3, "w-");
  ck_assert(WAIT_FOR(stats(&wrong).dropped == 3, 3000));
  host_stop(&a);
  host_stop(&b);
  host_stop(&wrong);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(prefix_isolates_deployments) {
  redis r = {0};
  redis_start(&r);
  host a, b, c;
  host_on(&a, &r, "one:");
  host_on(&b, &r, "one:");
  host_on(&c, &r, "two:");
  wsh_bus_topic_joined(a.bus, "room");
  wsh_bus_topic_joined(b.bus, "room");
  wsh_bus_topic_joined(c.bus, "room");
  ck_assert(WAIT_FOR(
      CHANNELS(&a) == 3 && CHANNELS(&b) == 3 && CHANNELS(&c) == 3, 5000));
  ck_assert(redis_has_channel(&r, "one:t:room"));
  ck_assert(redis_has_channel(&r, "two:t:room"));
  publish_n(&a, "room", WSH_BUS_PUBLISH, 0, 20, "one-");
  publish_n(&c, "room", WSH_BUS_PUBLISH, 0, 20, "two-");
  ck_assert(WAIT_FOR(nrecs(&b) == 20, 5000));
  ck_assert(WAIT_FOR(stats(&c).published == 20, 5000));
  sleep_ms(200);
  ck_assert_uint_eq(nrecs(&b), 20);
  check_in_order(&b, "room", wsh_bus_host_id(a.bus), 20, "one-");
  ck_assert_uint_eq(nrecs(&a), 0);
  ck_assert_uint_eq(nrecs(&c), 0);
  /* A send to a host of the other deployment reaches nobody. */
  wsh_bus_ref to = {wsh_bus_host_id(c.bus), 0, 1, 1};
  wsh_bus_send_to(a.bus, &to, "x", 1);
  ck_assert(WAIT_FOR(stats(&a).send_unknown == 1, 5000));
  ck_assert_uint_eq(nrecs(&c), 0);
  host_stop(&a);
  host_stop(&b);
  host_stop(&c);
  redis_stop(&r, SIGTERM);
}
END_TEST

START_TEST(unix_socket) {
  redis r = {0};
  char dir[] = "/tmp/wsh-bus-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(r.sock, sizeof(r.sock), "%s/redis.sock", dir);
  redis_start(&r);
  host a, b;
  host_init(&a, r.sock, NULL, NULL, 0, true);
  host_init(&b, r.sock, NULL, NULL, 0, true);
  wsh_bus_topic_joined(b.bus, "room");
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 5000));
  publish_n(&a, "room", WSH_BUS_BROADCAST, WEBSOCK_OP_TEXT, 50, "u-");
  ck_assert(WAIT_FOR(nrecs(&b) == 50, 5000));
  check_in_order(&b, "room", wsh_bus_host_id(a.bus), 50, "u-");
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
  unlink(r.sock);
  rmdir(dir);
}
END_TEST

START_TEST(local_engine_keeps_everything_in_the_host) {
  host a;
  host_init(&a, NULL, NULL, NULL, 0, false);
  ck_assert_str_eq(wsh_bus_engine_name(a.bus), "local");
  ck_assert_uint_ne(wsh_bus_host_id(a.bus), 0);
  ck_assert_int_eq(wsh_bus_topic_joined(a.bus, "room"), 0);
  ck_assert_int_eq(wsh_bus_publish(a.bus, "room", WSH_BUS_PUBLISH, 0, "hi", 2),
                   0);
  ck_assert_int_eq(wsh_bus_publish(a.bus, "room", WSH_BUS_BROADCAST,
                                   WEBSOCK_OP_CLOSE, "hi", 2),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_bus_publish(a.bus, "", WSH_BUS_PUBLISH, 0, "hi", 2),
                   WEBSOCK_EINVAL);
  wsh_bus_ref to = {0x77, 0, 1, 1};
  ck_assert_int_eq(wsh_bus_send_to(a.bus, &to, "x", 1), 0);
  ck_assert_int_eq(wsh_bus_topic_left(a.bus, "room"), 0);
  wsh_bus_stats st = stats(&a);
  ck_assert_uint_eq(st.connected, 0);
  ck_assert_uint_eq(st.published, 0);
  ck_assert_uint_eq(st.send_unknown, 1);
  ck_assert_uint_eq(st.channels, 0);
  host_stop(&a);
  /* The Redis engine refuses a bad address or prefix at once. */
  struct event_base *base = event_base_new();
  wsh_bus *bus;
  wsh_bus_config bad = {.redis = "host:99999"};
  ck_assert_int_eq(wsh_bus_new(&bus, &bad, base, NULL), WEBSOCK_EINVAL);
  wsh_bus_config nobase = {.redis = "127.0.0.1:6379"};
  ck_assert_int_eq(wsh_bus_new(&bus, &nobase, NULL, NULL), WEBSOCK_EINVAL);
  event_base_free(base);
}
END_TEST

/* A host on Redis at addr that announces counts from tc, with short
 * intervals: a tick of 100 ms, everything every 300 ms, forgotten after
 * 1 s. */
static void counts_host(host *h, const char *addr, wsh_topic_counts *tc) {
  memset(h, 0, sizeof(*h));
  pthread_mutex_init(&h->lock, NULL);
  h->base = event_base_new();
  ck_assert_ptr_nonnull(h->base);
  wsh_bus_config cfg = {.redis = addr,
                        .counts = tc,
                        .count_tick_ms = 100,
                        .count_refresh_ms = 300,
                        .count_expiry_ms = 1000};
  wsh_bus_callbacks cb = {h, on_publish, on_send};
  ck_assert_int_eq(wsh_bus_new(&h->bus, &cfg, h->base, &cb), 0);
  host_run(h);
}

#define OTHERS(h, t) wsh_bus_topic_others((h)->bus, t)

/* Subscriber counts across hosts: a change reaches the other host within a
 * tick or two, a host's own announcements come back uncounted, a 0 forgets
 * at once; with Redis gone, the other host's counts are forgotten after the
 * expiry, and once it is back every count is announced again (what changed
 * meanwhile included). */
START_TEST(counts_across_hosts) {
  redis r = {0};
  redis_start(&r);
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", r.port);
  wsh_topic_counts ca, cb;
  wsh_topic_counts_init(&ca);
  wsh_topic_counts_init(&cb);
  host a, b;
  counts_host(&a, addr, &ca);
  counts_host(&b, addr, &cb);
  ck_assert(WAIT_FOR(CHANNELS(&a) == 2 && CHANNELS(&b) == 2, 5000));
  ck_assert(redis_has_channel(&r, "c:counts"));
  wsh_topic_counts_add(&ca, "room", 1);
  wsh_topic_counts_add(&ca, "room", 1);
  wsh_topic_counts_add(&cb, "room", 1);
  ck_assert(WAIT_FOR(OTHERS(&b, "room") == 2 && OTHERS(&a, "room") == 1, 2000));
  sleep_ms(400); /* a refresh or more: still the other host's count only */
  ck_assert_int_eq(OTHERS(&a, "room"), 1);
  ck_assert_int_eq(OTHERS(&b, "room"), 2);
  ck_assert_int_eq(OTHERS(&b, "other"), 0);
  ck_assert_uint_eq(stats(&b).counts_hosts, 1);
  ck_assert_uint_gt(stats(&a).counts_sent, 0);
  wsh_topic_counts_add(&ca, "room", -1);
  wsh_topic_counts_add(&ca, "room", -1);
  ck_assert(WAIT_FOR(OTHERS(&b, "room") == 0, 1000));
  ck_assert_uint_eq(stats(&b).counts_entries, 0);
  wsh_topic_counts_add(&ca, "room", 1);
  ck_assert(WAIT_FOR(OTHERS(&b, "room") == 1, 1000));
  /* Redis gone: nothing more comes; forgotten after the expiry. */
  redis_stop(&r, SIGKILL);
  ck_assert(WAIT_FOR(!CONNECTED(&a) && !CONNECTED(&b), 5000));
  ck_assert(
      WAIT_FOR(OTHERS(&b, "room") == 0 && stats(&b).counts_entries == 0, 3000));
  wsh_topic_counts_add(&ca, "room", 1); /* 2 now, while down */
  redis_start(&r);
  ck_assert(
      WAIT_FOR(OTHERS(&b, "room") == 2 && OTHERS(&a, "room") == 1, 10000));
  ck_assert_uint_eq(stats(&b).invalid, 0);
  host_stop(&a);
  host_stop(&b);
  wsh_topic_counts_free(&ca);
  wsh_topic_counts_free(&cb);
  redis_stop(&r, SIGTERM);
}
END_TEST

/* ---- the benchmark ------------------------------------------------------- */

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return a < b ? -1 : a > b;
}

/* Publishes n messages of size bytes from a to b, at rate per second, or
 * (rate 0) as fast as b takes them, with at most 10,000 on the way: the
 * bus drops what does not fit, which a throughput figure must not count.
 * Prints throughput or latency. */
static void bench_run(host *a, host *b, size_t size, size_t n, unsigned rate) {
  char *msg = malloc(size);
  double *sent = calloc(n, sizeof(*sent));
  memset(msg, 'b', size);
  pthread_mutex_lock(&b->lock);
  b->nrecs = 0;
  pthread_mutex_unlock(&b->lock);
  unsigned long long dropped0 = stats(a).dropped;
  double t0 = now_ms();
  for (size_t i = 0; i < n; i++) {
    if (rate) {
      double wait = t0 + (double)i * 1000.0 / rate - now_ms();
      if (wait > 0)
        sleep_ms((unsigned)wait);
    } else if (i % 1000 == 0) {
      WAIT_FOR(i - nrecs(b) <= 10000, 20000);
    }
    /* The first bytes carry the index, for latency. */
    char idx[24];
    int k = snprintf(idx, sizeof(idx), "%zu", i);
    memcpy(msg, idx, (size_t)k + 1); /* sizes are at least 64 */
    sent[i] = now_ms();
    wsh_bus_publish(a->bus, "bench", WSH_BUS_BROADCAST, WEBSOCK_OP_BINARY, msg,
                    size);
  }
  WAIT_FOR(nrecs(b) + (stats(a).dropped - dropped0) >= n, 20000);
  double t1 = now_ms();
  size_t got = nrecs(b);
  unsigned long long dropped = stats(a).dropped - dropped0;
  if (rate) {
    double *lat = calloc(got ? got : 1, sizeof(*lat));
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < got; i++)
      lat[i] = b->recs[i].at_ms - sent[atoi(b->recs[i].data)];
    pthread_mutex_unlock(&b->lock);
    qsort(lat, got, sizeof(*lat), cmp_double);
    printf("  %5zu B at %u/s: %zu of %zu delivered (%llu dropped), latency "
           "p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
           size, rate, got, n, dropped, got ? lat[got / 2] : 0,
           got ? lat[got * 99 / 100] : 0, got ? lat[got - 1] : 0);
    free(lat);
  } else {
    printf("  %5zu B flood: %zu of %zu delivered (%llu dropped) in %.0f ms: "
           "%.0f msg/s, %.1f MB/s of payload\n",
           size, got, n, dropped, t1 - t0, got / ((t1 - t0) / 1000),
           got * (double)size / ((t1 - t0) / 1000) / 1e6);
  }
  free(sent);
  free(msg);
}

START_TEST(bench) {
  redis r = {0};
  redis_start(&r);
  host a, b, local;
  host_on(&a, &r, "bench:");
  host_on(&b, &r, "bench:");
  wsh_bus_topic_joined(b.bus, "bench");
  ck_assert(WAIT_FOR(CONNECTED(&a) && CHANNELS(&b) == 3, 5000));
  printf("bus through redis-server (one publishing bus, one receiving bus, "
         "one process):\n");
  size_t sizes[] = {64, 1024};
  for (int i = 0; i < 2; i++)
    bench_run(&a, &b, sizes[i], 200000, 0);
  for (int i = 0; i < 2; i++)
    bench_run(&a, &b, sizes[i], 5000, 1000);
  host_stop(&a);
  host_stop(&b);
  redis_stop(&r, SIGTERM);
  /* The local engine: what wsh_bus_publish costs a host without Redis. */
  host_init(&local, NULL, NULL, NULL, 0, false);
  char msg[64] = {0};
  double t0 = now_ms();
  for (int i = 0; i < 10000000; i++)
    wsh_bus_publish(local.bus, "bench", WSH_BUS_PUBLISH, 0, msg, sizeof(msg));
  double t1 = now_ms();
  printf("local engine: wsh_bus_publish returns in %.1f ns (nothing leaves "
         "the host)\n",
         (t1 - t0) * 1e6 / 1e7);
  host_stop(&local);
}
END_TEST

int main(int argc, char **argv) {
  evthread_use_pthreads();
  signal(SIGPIPE, SIG_IGN);
  bool bench_only = argc > 1 && strcmp(argv[1], "--bench") == 0;
  Suite *su = suite_create("bus");
  TCase *tc = tcase_create("bus");
  tcase_set_timeout(tc, bench_only ? 600 : 60);
  if (bench_only)
    tcase_add_test(tc, bench);
  else {
    tcase_add_test(tc, publish_reaches_every_other_host_once_in_order);
    tcase_add_test(tc, channels_follow_joined_and_left);
    tcase_add_test(tc, send_reaches_only_its_host);
    tcase_add_test(tc, redis_killed_then_restarted);
    tcase_add_test(tc, redis_down_at_start);
    tcase_add_test(tc, queue_is_bounded);
    tcase_add_test(tc, slow_redis_bounds_what_is_in_flight);
    tcase_add_test(tc, redis_that_stops_answering_is_lost);
    tcase_add_test(tc, foreign_bytes_are_counted_not_delivered);
    tcase_add_test(tc, auth_with_a_password);
    tcase_add_test(tc, prefix_isolates_deployments);
    tcase_add_test(tc, unix_socket);
    tcase_add_test(tc, local_engine_keeps_everything_in_the_host);
    tcase_add_test(tc, counts_across_hosts);
  }
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
