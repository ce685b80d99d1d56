/*
 * clock.c - pushes the current time as ISO 8601 UTC text
 * ("2026-11-26T05:00:00Z") when a client connects and then every interval,
 * with websock_send_after() timers. Text commands from the client:
 *
 *   pause    cancels the pending tick (websock_cancel_timer)
 *   resume   pushes the time at once and ticks again
 *   stop     closes with 1000 "bye"
 *
 * Anything else is answered with a one-line help text.
 *
 * [options]: interval_ms = 1000 (1 to 86400000).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <websock.h>

/* Set by load() before any connection and only read afterwards. */
static uint64_t interval_ms = 1000;

typedef struct clock_conn {
  int64_t timer; /* the pending tick's timer id; 0 while paused */
  uint64_t seq;  /* the pending tick's number: other messages are not ticks */
} clock_conn;

static int clock_load(const websock_options *options) {
  const char *v = websock_option(options, "interval_ms");
  interval_ms = 1000;
  if (v) {
    char *end;
    unsigned long long ms = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || ms < 1 || ms > 86400000)
      return -1;
    interval_ms = ms;
  }
  return 0;
}

static int push_time(websock_conn *conn) {
  struct timespec ts;
  struct tm tm;
  char text[32];
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
    return WEBSOCK_EINVAL;
  size_t n = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return websock_push(conn, WEBSOCK_OP_TEXT, text, n);
}

/* Pushes the time and schedules the next tick. */
static int tick(websock_conn *conn, clock_conn *cc) {
  int rc = push_time(conn);
  if (rc != 0 && rc != WEBSOCK_EFULL) /* a dropped tick is no reason to stop */
    return rc;
  char msg[32];
  int n =
      snprintf(msg, sizeof(msg), "tick %llu", (unsigned long long)++cc->seq);
  int64_t id = websock_send_after(conn, interval_ms, msg, (size_t)n);
  if (id < 0)
    return (int)id;
  cc->timer = id;
  return 0;
}

static int fail(websock_conn *conn, int rc) {
  websock_close_error(conn, websock_strerror(rc));
  return WEBSOCK_STOP;
}

static int clock_init(websock_conn *conn, void **state) {
  clock_conn *cc = calloc(1, sizeof(*cc));
  if (!cc)
    return fail(conn, WEBSOCK_ENOMEM);
  int rc = tick(conn, cc);
  if (rc != 0) {
    free(cc); /* no terminate after an init that stops */
    return fail(conn, rc);
  }
  *state = cc;
  return WEBSOCK_OK;
}

static int clock_info(websock_conn *conn, void **state, const uint8_t *data,
                      size_t len) {
  clock_conn *cc = *state;
  char expect[32];
  int n = snprintf(expect, sizeof(expect), "tick %llu",
                   (unsigned long long)cc->seq);
  if (!cc->timer || len != (size_t)n || memcmp(data, expect, len) != 0)
    return WEBSOCK_OK; /* not our pending tick */
  cc->timer = 0;
  int rc = tick(conn, cc);
  return rc == 0 ? WEBSOCK_OK : fail(conn, rc);
}

static int is(const uint8_t *data, size_t len, const char *word) {
  return len == strlen(word) && memcmp(data, word, len) == 0;
}

static int clock_in(websock_conn *conn, void **state, websock_opcode opcode,
                    const uint8_t *data, size_t len) {
  clock_conn *cc = *state;
  int rc = 0;
  if (opcode == WEBSOCK_OP_TEXT && is(data, len, "stop")) {
    websock_close(conn, WEBSOCK_CLOSE_NORMAL, "bye");
    return WEBSOCK_STOP;
  } else if (opcode == WEBSOCK_OP_TEXT && is(data, len, "pause")) {
    if (cc->timer)
      websock_cancel_timer(conn, cc->timer);
    cc->timer = 0;
  } else if (opcode == WEBSOCK_OP_TEXT && is(data, len, "resume")) {
    if (!cc->timer)
      rc = tick(conn, cc);
  } else {
    static const char help[] = "commands: pause, resume, stop";
    rc = websock_push(conn, WEBSOCK_OP_TEXT, help, sizeof(help) - 1);
    if (rc == WEBSOCK_EFULL)
      rc = 0;
  }
  return rc == 0 ? WEBSOCK_OK : fail(conn, rc);
}

static void clock_terminate(websock_conn *conn, void *state,
                            const websock_reason *reason) {
  (void)conn;
  (void)reason;
  free(state); /* its timer dies with the connection */
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "clock",
    .version = "1.0.0",
    .load = clock_load,
    .init = clock_init,
    .handle_in = clock_in,
    .handle_info = clock_info,
    .terminate = clock_terminate,
};
