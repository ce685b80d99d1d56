/*
 * faulty.c - a test plugin that misbehaves on purpose, for the hardening
 * tests (tests/integration/test_hostile.py): the host must refuse what it
 * can refuse, log what it can log, and keep serving every other route.
 *
 * The route's [options]:
 *
 *   mode = initfail    init() calls websock_close(conn, 4000, "no") and
 *                      returns WEBSOCK_STOP (the client sees 101, then a
 *                      close 4000 "no"; no terminate: init did not say OK)
 *   mode = initbad     init() returns 7, neither WEBSOCK_OK nor
 *                      WEBSOCK_STOP (the host closes 1011 and logs it)
 *   mode = loadrefuse  load() returns -1 (the route is not served)
 *   (no mode)          init() pushes "ready:N" and takes commands
 *   record = FILE      one line per event, one write(2) each (O_APPEND)
 *
 * Commands (text messages); N is the connection's number (from 1):
 *
 *   pushafterstop  pushes "bye", websock_close(1000, "bye") and a second
 *                  push after it (both allowed: the callback has not
 *                  returned), returns STOP; every terminate() also tries
 *                  websock_push, websock_close and websock_send_after,
 *                  which must return WEBSOCK_ECLOSED (-3) there
 *   sendgone       websock_send to the ref of the connection that
 *                  terminated last -> "sendgone:RC" (-6, WEBSOCK_ENOENT)
 *   flood          64 MiB as 1024 binary messages of 64 KiB in this one
 *                  callback -> "flood:OK:EFULL:ECLOSED:OTHER" (counts of
 *                  push results; lost when the route's policy closes)
 *   drip:MB        MB MiB, 1 MiB per websock_send_after(10 ms) tick, until
 *                  done or a push is refused with WEBSOCK_ECLOSED
 *   sleep:MS       usleep(MS ms) in handle_in, then "slept:MS"
 *   crash          writes through a NULL pointer (SIGSEGV)
 *   unsent         "unsent:BYTES" (websock_unsent_bytes)
 *   anything else  echoed back as text
 *
 * Record lines:
 *   load | load refused | init N | initclose N RC | afterclose N RC1 RC2
 *   sendgone N TO RC | flood N OK EFULL ECLOSED OTHER
 *   drip N OK EFULL ECLOSED | terminate N KIND CODE TEXT
 *   termcalls N PUSH CLOSE SEND_AFTER | unload
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <websock.h>

#include "record.h"

#define CHUNK (64 * 1024)
#define FLOOD_MESSAGES 1024 /* 64 MiB */
#define DRIP_TICK "\001faulty-drip"
#define DRIP_TICK_MS 10

typedef struct faulty_state {
  unsigned long n;
  uint64_t drip_left; /* 64 KiB messages still to push */
  uint64_t ok, efull, eclosed;
} faulty_state;

/* Per loaded generation (each route loads its own copy of the .so). */
static char *record_path; /* set in load, freed in unload */
static atomic_ulong next_n = 1;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static websock_ref last_gone;
static unsigned long last_gone_n;
static const uint8_t zeros[CHUNK];
/* volatile, so that the compiler cannot see the NULL and turn the store
 * into a trap (SIGILL) of its own */
static int *volatile nowhere;

#define record(...) record_to(record_path, __VA_ARGS__)

__attribute__((format(printf, 2, 3))) static void
push_fmt(websock_conn *conn, const char *fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
  websock_push(conn, WEBSOCK_OP_TEXT, buf, len);
}

static int is_cmd(const uint8_t *data, size_t len, const char *cmd) {
  return len == strlen(cmd) && memcmp(data, cmd, len) == 0;
}

static int has_prefix(const uint8_t *data, size_t len, const char *prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(data, prefix, n) == 0;
}

/* The decimal number after prefix in data (0 if none). */
static unsigned long arg_num(const uint8_t *data, size_t len,
                             const char *prefix) {
  char buf[32];
  size_t n = strlen(prefix);
  size_t m = len - n < sizeof(buf) - 1 ? len - n : sizeof(buf) - 1;
  memcpy(buf, data + n, m);
  buf[m] = '\0';
  return strtoul(buf, NULL, 10);
}

static void count(faulty_state *st, int rc, uint64_t *other) {
  if (rc == 0)
    st->ok++;
  else if (rc == WEBSOCK_EFULL)
    st->efull++;
  else if (rc == WEBSOCK_ECLOSED)
    st->eclosed++;
  else if (other)
    (*other)++;
}

/* ---- load / unload / init / terminate ------------------------------------ */

static int faulty_load(const websock_options *options) {
  const char *path = websock_option(options, "record");
  const char *mode = websock_option(options, "mode");
  if (path && *path && !(record_path = strdup(path)))
    return -1;
  if (mode && strcmp(mode, "loadrefuse") == 0) {
    record("load refused");
    free(record_path);
    record_path = NULL;
    return -1;
  }
  record("load");
  return 0;
}

static void faulty_unload(void) {
  record("unload");
  free(record_path);
  record_path = NULL;
}

static int faulty_init(websock_conn *conn, void **state) {
  faulty_state *st = calloc(1, sizeof(*st));
  if (!st)
    return WEBSOCK_STOP;
  st->n = atomic_fetch_add(&next_n, 1);
  record("init %lu", st->n);
  const char *mode = websock_conn_option(conn, "mode");
  if (mode && strcmp(mode, "initfail") == 0) {
    int rc = websock_close(conn, 4000, "no");
    record("initclose %lu %d", st->n, rc);
    free(st); /* no terminate follows a stop from init */
    return WEBSOCK_STOP;
  }
  if (mode && strcmp(mode, "initbad") == 0) {
    free(st);
    return 7;
  }
  *state = st;
  push_fmt(conn, "ready:%lu", st->n);
  return WEBSOCK_OK;
}

static void faulty_terminate(websock_conn *conn, void *state,
                             const websock_reason *reason) {
  faulty_state *st = state;
  unsigned long n = st ? st->n : 0;
  record("terminate %lu %d %u %s", n, (int)reason->kind, (unsigned)reason->code,
         reason->text ? reason->text : "");
  /* all three refused: the connection is closing */
  int push = websock_push(conn, WEBSOCK_OP_TEXT, "late", 4);
  int close = websock_close(conn, WEBSOCK_CLOSE_NORMAL, "late");
  int64_t after = websock_send_after(conn, 1, "late", 4);
  record("termcalls %lu %d %d %lld", n, push, close, (long long)after);
  pthread_mutex_lock(&lock);
  last_gone = websock_self(conn);
  last_gone_n = n;
  pthread_mutex_unlock(&lock);
  free(st);
}

/* ---- commands -------------------------------------------------------------
 */

static int do_flood(websock_conn *conn, faulty_state *st) {
  uint64_t other = 0;
  st->ok = st->efull = st->eclosed = 0;
  for (int i = 0; i < FLOOD_MESSAGES; i++)
    count(st, websock_push(conn, WEBSOCK_OP_BINARY, zeros, CHUNK), &other);
  record("flood %lu %llu %llu %llu %llu", st->n, (unsigned long long)st->ok,
         (unsigned long long)st->efull, (unsigned long long)st->eclosed,
         (unsigned long long)other);
  push_fmt(conn, "flood:%llu:%llu:%llu:%llu", (unsigned long long)st->ok,
           (unsigned long long)st->efull, (unsigned long long)st->eclosed,
           (unsigned long long)other);
  return WEBSOCK_OK;
}

/* One tick of drip: 1 MiB, then the next tick, or the result line. */
static int drip_tick(websock_conn *conn, faulty_state *st) {
  for (int i = 0; i < (1 << 20) / CHUNK && st->drip_left; i++) {
    count(st, websock_push(conn, WEBSOCK_OP_BINARY, zeros, CHUNK), NULL);
    st->drip_left--;
  }
  if (st->drip_left && !st->eclosed &&
      websock_send_after(conn, DRIP_TICK_MS, DRIP_TICK, strlen(DRIP_TICK)) > 0)
    return WEBSOCK_OK;
  record("drip %lu %llu %llu %llu", st->n, (unsigned long long)st->ok,
         (unsigned long long)st->efull, (unsigned long long)st->eclosed);
  push_fmt(conn, "drip:%llu:%llu:%llu", (unsigned long long)st->ok,
           (unsigned long long)st->efull, (unsigned long long)st->eclosed);
  return WEBSOCK_OK;
}

static int faulty_handle_in(websock_conn *conn, void **state,
                            websock_opcode opcode, const uint8_t *data,
                            size_t len) {
  faulty_state *st = *state;
  if (opcode != WEBSOCK_OP_TEXT)
    return websock_push(conn, opcode, data, len) == 0 ? WEBSOCK_OK
                                                      : WEBSOCK_STOP;
  if (is_cmd(data, len, "pushafterstop")) {
    int rc1 = websock_push(conn, WEBSOCK_OP_TEXT, "bye", 3);
    websock_close(conn, WEBSOCK_CLOSE_NORMAL, "bye");
    int rc2 = websock_push(conn, WEBSOCK_OP_TEXT, "after close", 11);
    record("afterclose %lu %d %d", st->n, rc1, rc2);
    return WEBSOCK_STOP;
  }
  if (is_cmd(data, len, "sendgone")) {
    pthread_mutex_lock(&lock);
    websock_ref to = last_gone;
    unsigned long to_n = last_gone_n;
    pthread_mutex_unlock(&lock);
    int rc = to_n ? websock_send(to, "hello?", 6) : WEBSOCK_EINVAL;
    record("sendgone %lu %lu %d", st->n, to_n, rc);
    push_fmt(conn, "sendgone:%d", rc);
    return WEBSOCK_OK;
  }
  if (is_cmd(data, len, "flood"))
    return do_flood(conn, st);
  if (has_prefix(data, len, "drip:")) {
    st->ok = st->efull = st->eclosed = 0;
    st->drip_left = arg_num(data, len, "drip:") * ((1 << 20) / CHUNK);
    return drip_tick(conn, st);
  }
  if (has_prefix(data, len, "sleep:")) {
    unsigned long ms = arg_num(data, len, "sleep:");
    usleep((useconds_t)(ms * 1000));
    push_fmt(conn, "slept:%lu", ms);
    return WEBSOCK_OK;
  }
  if (is_cmd(data, len, "crash")) {
    *nowhere = 42;
    return WEBSOCK_OK;
  }
  if (is_cmd(data, len, "unsent")) {
    push_fmt(conn, "unsent:%zu", websock_unsent_bytes(conn));
    return WEBSOCK_OK;
  }
  return websock_push(conn, WEBSOCK_OP_TEXT, data, len) == 0 ? WEBSOCK_OK
                                                             : WEBSOCK_STOP;
}

static int faulty_handle_info(websock_conn *conn, void **state,
                              const uint8_t *data, size_t len) {
  faulty_state *st = *state;
  if (len == strlen(DRIP_TICK) && memcmp(data, DRIP_TICK, len) == 0)
    return drip_tick(conn, st);
  return websock_push(conn, WEBSOCK_OP_TEXT, data, len) == 0 ? WEBSOCK_OK
                                                             : WEBSOCK_STOP;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "faulty",
    .version = "1.0.0",
    .load = faulty_load,
    .unload = faulty_unload,
    .init = faulty_init,
    .handle_in = faulty_handle_in,
    .handle_info = faulty_handle_info,
    .terminate = faulty_terminate,
};
