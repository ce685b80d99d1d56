/*
 * counter.c - a test plugin for live code upgrade (reload = handoff): each
 * connection's state is a count of the events it handled, carried from one
 * build to the next by export_state / import_state. Built several times
 * (tests/plugins/plugins.cmake): COUNTER_VERSION names the build in every
 * answer ("v1", "v2", ...), so that a client sees which code answered it;
 * COUNTER_NO_HANDOFF leaves both callbacks out (the reload then drains).
 *
 * Every event (a message, a handle_info) adds one to the count and is
 * answered "VERSION COUNT WHAT" ("VERSION/TAG ..." with [options] tag = TAG,
 * so that a generation that only has a new .conf shows too), so that a client
 * checks that the count goes on across a reload with nothing lost, repeated or
 * reordered. Commands (text messages; WHAT is the message itself unless said
 * otherwise):
 *
 *   after:MS:TEXT   websock_send_after(MS, TEXT); its handle_info answers
 *                   "... info:TEXT"
 *   sub:TOPIC       websock_subscribe
 *   pub:TOPIC:TEXT  websock_publish (subscribers answer "... info:TEXT")
 *   self:N          websock_send to itself "s0".."s<N-1>" (mail in flight)
 *   fail-export     this connection's export_state will fail
 *   fail-import     its import_state (in the next build) will fail
 *   param:NAME      answers "... param:NAME=VALUE" (websock_conn_param,
 *                   "-" for none): still the connection's after a handoff
 *   fat-export      its export_state appends 4 KiB blocks until refused,
 *                   then returns what websock_buf_append said (ETOOBIG
 *                   past the new route's max_message_size)
 *   anything else   just counted
 *
 * The exported state is "counter1 COUNT FAIL_IMPORT". import_state checks
 * it; when FAIL_IMPORT is set it keeps a state (the count) and fails, so
 * that the new generation's terminate() shows it got it.
 *
 * Recording ([options] record = FILE, see record.h):
 *   terminate VERSION COUNT CODE   (COUNT -1: no state)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websock.h>

#include "record.h"

#ifndef COUNTER_VERSION
#define COUNTER_VERSION "v1"
#endif

typedef struct counter {
  uint64_t count;
  int fail_export;
  int fail_import;
  int fat_export;
} counter;

static char *record_path;                  /* set in load, freed in unload */
static char version[64] = COUNTER_VERSION; /* and "/TAG" */

static int counter_load(const websock_options *options) {
  const char *path = websock_option(options, "record");
  const char *tag = websock_option(options, "tag");
  if (tag && *tag)
    snprintf(version, sizeof(version), "%s/%s", COUNTER_VERSION, tag);
  if (path && *path && !(record_path = strdup(path)))
    return -1;
  return 0;
}

static void counter_unload(void) {
  free(record_path);
  record_path = NULL;
}

static int answer(websock_conn *conn, counter *c, const char *what,
                  size_t len) {
  char buf[512];
  c->count++;
  int n = snprintf(buf, sizeof(buf), "%s %" PRIu64 " %.*s", version, c->count,
                   (int)(len < 400 ? len : 400), what);
  return websock_push(conn, WEBSOCK_OP_TEXT, buf, (size_t)n) == 0
             ? WEBSOCK_OK
             : WEBSOCK_STOP;
}

static int counter_init(websock_conn *conn, void **state) {
  (void)conn;
  *state = calloc(1, sizeof(counter));
  return *state ? WEBSOCK_OK : WEBSOCK_STOP;
}

/* Copies the command's argument after `prefix` into a NUL-terminated buf. */
static const char *arg(const uint8_t *data, size_t len, const char *prefix,
                       char *buf, size_t cap) {
  size_t n = strlen(prefix);
  if (len < n || memcmp(data, prefix, n) != 0 || len - n >= cap)
    return NULL;
  memcpy(buf, data + n, len - n);
  buf[len - n] = '\0';
  return buf;
}

static void command(websock_conn *conn, counter *c, const uint8_t *data,
                    size_t len) {
  char a[256];
  if (arg(data, len, "after:", a, sizeof(a))) {
    char *text = strchr(a, ':');
    if (text)
      websock_send_after(conn, strtoull(a, NULL, 10), text + 1,
                         strlen(text + 1));
  } else if (arg(data, len, "sub:", a, sizeof(a))) {
    websock_subscribe(conn, a);
  } else if (arg(data, len, "pub:", a, sizeof(a))) {
    char *text = strchr(a, ':');
    if (text) {
      *text++ = '\0';
      websock_publish(websock_conn_host(conn), a, text, strlen(text));
    }
  } else if (arg(data, len, "self:", a, sizeof(a))) {
    long n = strtol(a, NULL, 10);
    for (long i = 0; i < n && i < 1000; i++) {
      char s[32];
      int k = snprintf(s, sizeof(s), "s%ld", i);
      websock_send(websock_self(conn), s, (size_t)k);
    }
  } else if (len == 11 && memcmp(data, "fail-export", 11) == 0) {
    c->fail_export = 1;
  } else if (len == 11 && memcmp(data, "fail-import", 11) == 0) {
    c->fail_import = 1;
  } else if (len == 10 && memcmp(data, "fat-export", 10) == 0) {
    c->fat_export = 1;
  }
}

static int counter_in(websock_conn *conn, void **state, websock_opcode opcode,
                      const uint8_t *data, size_t len) {
  (void)opcode;
  counter *c = *state;
  char a[256];
  if (arg(data, len, "param:", a, sizeof(a))) {
    const char *v = websock_conn_param(conn, a);
    char what[600];
    int n = snprintf(what, sizeof(what), "param:%s=%s", a, v ? v : "-");
    return answer(conn, c, what, (size_t)n);
  }
  command(conn, c, data, len);
  return answer(conn, c, (const char *)data, len);
}

static int counter_info(websock_conn *conn, void **state, const uint8_t *data,
                        size_t len) {
  char what[300];
  int n = snprintf(what, sizeof(what), "info:%.*s",
                   (int)(len < 256 ? len : 256), (const char *)data);
  return answer(conn, *state, what, (size_t)n);
}

static void counter_terminate(websock_conn *conn, void *state,
                              const websock_reason *reason) {
  (void)conn;
  counter *c = state;
  record_to(record_path, "terminate %s %lld %u", version,
            c ? (long long)c->count : -1LL, reason->code);
  free(c);
}

#ifndef COUNTER_NO_HANDOFF
static int counter_export(websock_conn *conn, void *state, websock_buf *out) {
  (void)conn;
  counter *c = state;
  if (c->fail_export)
    return -1; /* the state stays ours: terminate() frees it */
  if (c->fat_export) {
    static const char block[4096];
    int rc;
    for (int i = 0; i < 100000; i++) /* bounded: 400 MB, never reached */
      if ((rc = websock_buf_append(out, block, sizeof(block))) != 0)
        return rc; /* WEBSOCK_ETOOBIG: refused, the state stays ours */
    return -1;
  }
  char buf[64];
  int n = snprintf(buf, sizeof(buf), "counter1 %" PRIu64 " %d", c->count,
                   c->fail_import);
  int rc = websock_buf_append(out, buf, (size_t)n);
  if (rc == 0)
    free(c); /* handed off: no terminate() for it here */
  return rc;
}

static int counter_import(websock_conn *conn, const uint8_t *data, size_t len,
                          void **state) {
  (void)conn;
  char buf[64];
  if (len >= sizeof(buf))
    return -1;
  memcpy(buf, data, len);
  buf[len] = '\0';
  unsigned long long count;
  int fail_import;
  if (sscanf(buf, "counter1 %llu %d", &count, &fail_import) != 2)
    return -1;
  counter *c = calloc(1, sizeof(*c));
  if (!c)
    return -1;
  c->count = count;
  *state = c; /* also on failure: terminate() gets it */
  return fail_import ? -1 : 0;
}
#endif

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "counter",
    .version = COUNTER_VERSION,
    .load = counter_load,
    .unload = counter_unload,
    .init = counter_init,
    .handle_in = counter_in,
    .handle_info = counter_info,
    .terminate = counter_terminate,
#ifndef COUNTER_NO_HANDOFF
    .export_state = counter_export,
    .import_state = counter_import,
#endif
};
