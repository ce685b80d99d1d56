/*
 * msgs.c - a test plugin for the message API of websock.h: references
 * (websock_self / websock_send, also from a thread the plugin starts),
 * timers (websock_send_after / websock_cancel_timer), topics (subscribe,
 * unsubscribe, publish, broadcast) and backpressure (floods that pass the
 * route's max_unsent, websock_unsent_bytes). Integration tests drive it with
 * text commands and read its answers and its record file.
 *
 * Every connection gets a number N at init: its index in a plugin-wide table
 * of websock_refs (under a mutex), so that one client can name another.
 *
 * Commands (text messages); the answer is pushed as text:
 *
 *   self               "ref:N" (this connection's number)
 *   myref              "myref:REF" (websock_ref_format of websock_self)
 *   sendref:REF:TEXT   websock_ref_parse(REF), websock_send(TEXT) to it
 *                      (on this host or another)          -> "sendref:RC"
 *   send:N:TEXT        websock_send(ref N, TEXT)            -> "sent:RC"
 *   sendwait:MS:TEXT   websock_send(TEXT) to itself, records "sendwait N",
 *                      then sleeps MS ms in the callback -> "sendwait:RC"
 *   sleep:MS           sleeps MS ms in the callback         -> "slept"
 *   order              "order:K": the K-th order command this plugin
 *                      served (with one worker, the order its connections'
 *                      input was taken in)
 *   chain:N            websock_send("chain:N") to itself; each such
 *                      message sends "chain:N-1" on, "chain:0" pushes
 *                      "chained" (N messages, each sent from the
 *                      handle_info of the one before)
 *   thread:N:COUNT[:US] a new thread sends "t0".."t<COUNT-1>" to ref N
 *                      (sleeping US microseconds after each, default 0)
 *                      -> "thread:RC" (pthread_create's result); unload()
 *                      joins every such thread (the host stays valid, and
 *                      the plugin's code mapped, until unload returns)
 *   after:MS:TEXT      websock_send_after(MS, TEXT)         -> "timer:ID"
 *   cancel:ID          websock_cancel_timer(ID)             -> "cancel:RC"
 *   sub:TOPIC          websock_subscribe                    -> "sub:RC"
 *   unsub:TOPIC        websock_unsubscribe                  -> "unsub:RC"
 *   pub:TOPIC:TEXT     websock_publish                      -> "pub:RC"
 *   bcast:TOPIC:TEXT   websock_broadcast (text)             -> "bcast:RC"
 *   flood:MB           pushes MB MiB as 64 KiB binary messages in this one
 *                      callback, then "flood:OK:EFULL:ECLOSED" (counts of
 *                      push results; lost if the connection is closed by
 *                      policy)
 *   floodinfo:MB       the same, 1 MiB per loop turn (websock_send_after(0)
 *                      to itself), then "floodinfo:OK:EFULL:ECLOSED"
 *   unsent             "unsent:BYTES" (websock_unsent_bytes)
 *   gone               websock_send to the ref of the connection that
 *                      terminated last ("gone:N": to ref N)     -> "gone:RC"
 *   echo:TEXT          TEXT
 *   stop / restart / error:DETAIL / close:CODE   stop so
 *
 * handle_info pushes "info:DATA". Anything else is answered "unknown:...".
 *
 * Recording ([options] record = FILE; one write(2) per line, O_APPEND):
 *   load | init N | in N CMD (first 60 bytes) | thread N SENT ENOENT
 *   flood N OK EFULL ECLOSED | floodinfo N OK EFULL ECLOSED
 *   terminate N KIND CODE TEXT (the recorder plugin's format) | unload
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <websock.h>

#include "record.h"

#define CHUNK (64 * 1024)
#define FLOOD_TICK "\x01msgs-flood-tick"

typedef struct ref_entry {
  websock_ref ref;
  int closed;
} ref_entry;

typedef struct msgs_state {
  size_t n;                    /* index in the refs table */
  uint64_t flood_left;         /* floodinfo: MiB still to push */
  uint64_t ok, efull, eclosed; /* floodinfo: push results so far */
} msgs_state;

/* Plugin-wide, per loaded generation (each has its own copy of the .so). */
typedef struct thread_entry {
  pthread_t thread;
  struct thread_entry *next;
} thread_entry;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ref_entry *refs;
static size_t nrefs, caprefs;
static long last_closed = -1;
static unsigned long orders;  /* "order" commands served (atomic) */
static thread_entry *threads; /* started by thread:..., joined by unload */
static char *record_path; /* set in load, freed in unload: read-only between */
static const uint8_t zeros[CHUNK];

#define record(...) record_to(record_path, __VA_ARGS__)

static void push_fmt(websock_conn *conn, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void push_fmt(websock_conn *conn, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
  websock_push(conn, WEBSOCK_OP_TEXT, buf, len);
}

static int get_ref(size_t n, websock_ref *out) {
  int found = 0;
  pthread_mutex_lock(&lock);
  if (n < nrefs) {
    *out = refs[n].ref;
    found = 1;
  }
  pthread_mutex_unlock(&lock);
  return found;
}

/* ---- load / unload / init / terminate ------------------------------------ */

static int msgs_load(const websock_options *options) {
  const char *path = websock_option(options, "record");
  if (path && *path && !(record_path = strdup(path)))
    return -1;
  record("load");
  return 0;
}

static void msgs_unload(void) {
  /* The host is valid, and our code mapped, until we return: join every
   * thread we started (joined, not just counted down, so none is still
   * running our code when the host dlclose()s us). */
  pthread_mutex_lock(&lock);
  thread_entry *list = threads;
  threads = NULL;
  pthread_mutex_unlock(&lock);
  while (list) {
    thread_entry *next = list->next;
    pthread_join(list->thread, NULL);
    free(list);
    list = next;
  }
  pthread_mutex_lock(&lock);
  free(refs);
  refs = NULL;
  nrefs = caprefs = 0;
  last_closed = -1;
  pthread_mutex_unlock(&lock);
  record("unload");
  free(record_path);
  record_path = NULL;
}

static int msgs_init(websock_conn *conn, void **state) {
  msgs_state *st = calloc(1, sizeof(*st));
  if (!st)
    return WEBSOCK_STOP;
  pthread_mutex_lock(&lock);
  if (nrefs == caprefs) {
    size_t cap = caprefs ? caprefs * 2 : 256;
    ref_entry *r = realloc(refs, cap * sizeof(*r));
    if (!r) {
      pthread_mutex_unlock(&lock);
      free(st);
      return WEBSOCK_STOP;
    }
    refs = r;
    caprefs = cap;
  }
  st->n = nrefs;
  refs[nrefs].ref = websock_self(conn);
  refs[nrefs].closed = 0;
  nrefs++;
  pthread_mutex_unlock(&lock);
  *state = st;
  record("init %zu", st->n);
  return WEBSOCK_OK;
}

static void msgs_terminate(websock_conn *conn, void *state,
                           const websock_reason *reason) {
  (void)conn;
  msgs_state *st = state;
  long n = st ? (long)st->n : -1;
  if (st) {
    pthread_mutex_lock(&lock);
    refs[st->n].closed = 1;
    last_closed = n;
    pthread_mutex_unlock(&lock);
  }
  record("terminate %ld %d %u %s", n, (int)reason->kind, (unsigned)reason->code,
         reason->text ? reason->text : "");
  free(st);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct sender {
  websock_ref to;
  size_t target;
  unsigned long count;
  unsigned long pause_us;
} sender;

static void *sender_main(void *arg) {
  sender *s = arg;
  unsigned long sent = 0, enoent = 0;
  for (unsigned long i = 0; i < s->count; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof(msg), "t%lu", i);
    int rc = websock_send(s->to, msg, (size_t)n);
    if (rc == 0)
      sent++;
    else
      enoent++;
    if (s->pause_us)
      usleep((useconds_t)s->pause_us);
  }
  record("thread %zu %lu %lu", s->target, sent, enoent);
  free(s);
  return NULL;
}

static int start_sender(size_t target, unsigned long count,
                        unsigned long pause_us) {
  sender *s = malloc(sizeof(*s));
  if (!s)
    return ENOMEM;
  if (!get_ref(target, &s->to)) {
    free(s);
    return EINVAL;
  }
  s->target = target;
  s->count = count;
  s->pause_us = pause_us;
  thread_entry *e = malloc(sizeof(*e));
  if (!e) {
    free(s);
    return ENOMEM;
  }
  int rc = pthread_create(&e->thread, NULL, sender_main, s);
  if (rc != 0) {
    free(s);
    free(e);
    return rc;
  }
  pthread_mutex_lock(&lock);
  e->next = threads;
  threads = e;
  pthread_mutex_unlock(&lock);
  return 0;
}

/* ---- floods -------------------------------------------------------------- */

static void count_push(int rc, uint64_t *ok, uint64_t *efull,
                       uint64_t *eclosed) {
  if (rc == 0)
    (*ok)++;
  else if (rc == WEBSOCK_EFULL)
    (*efull)++;
  else
    (*eclosed)++;
}

static void flood_mib(websock_conn *conn, uint64_t mib, uint64_t *ok,
                      uint64_t *efull, uint64_t *eclosed) {
  for (uint64_t i = 0; i < mib * (1024 * 1024 / CHUNK); i++)
    count_push(websock_push(conn, WEBSOCK_OP_BINARY, zeros, CHUNK), ok, efull,
               eclosed);
}

static void flood_tick(websock_conn *conn, msgs_state *st) {
  if (!st->flood_left)
    return;
  flood_mib(conn, 1, &st->ok, &st->efull, &st->eclosed);
  st->flood_left--;
  if (st->flood_left && !st->eclosed &&
      websock_send_after(conn, 0, FLOOD_TICK, strlen(FLOOD_TICK)) > 0)
    return;
  st->flood_left = 0;
  record("floodinfo %zu %llu %llu %llu", st->n, (unsigned long long)st->ok,
         (unsigned long long)st->efull, (unsigned long long)st->eclosed);
  push_fmt(conn, "floodinfo:%llu:%llu:%llu", (unsigned long long)st->ok,
           (unsigned long long)st->efull, (unsigned long long)st->eclosed);
}

/* ---- commands ------------------------------------------------------------ */

static int has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "N:REST" -> N and a pointer to REST; 0 on success. */
static int split_num(const char *s, unsigned long long *n, const char **rest) {
  char *end;
  errno = 0;
  *n = strtoull(s, &end, 10);
  if (errno || end == s || (*end != ':' && *end != '\0'))
    return -1;
  *rest = *end == ':' ? end + 1 : end;
  return 0;
}

static int command(websock_conn *conn, msgs_state *st, const char *cmd) {
  unsigned long long n;
  const char *rest;
  websock_ref ref;
  if (strcmp(cmd, "self") == 0) {
    push_fmt(conn, "ref:%zu", st->n);
  } else if (strcmp(cmd, "myref") == 0) {
    char s[WEBSOCK_REF_STRLEN];
    int rc = websock_ref_format(websock_self(conn), s, sizeof(s));
    push_fmt(conn, "myref:%s", rc < 0 ? "error" : s);
  } else if (has_prefix(cmd, "sendref:")) {
    /* sendref:REF:TEXT: REF is a string of websock_ref_format, maybe from
     * another host */
    char s[WEBSOCK_REF_STRLEN + 1];
    const char *colon = strchr(cmd + 8, ':');
    size_t len = colon ? (size_t)(colon - (cmd + 8)) : strlen(cmd + 8);
    websock_ref to;
    snprintf(s, sizeof(s), "%.*s", (int)len, cmd + 8);
    int rc = websock_ref_parse(websock_conn_host(conn), s, &to);
    if (rc == 0)
      rc = websock_send(to, colon ? colon + 1 : "",
                        colon ? strlen(colon + 1) : 0);
    push_fmt(conn, "sendref:%d", rc);
  } else if (has_prefix(cmd, "send:")) {
    if (split_num(cmd + 5, &n, &rest) || !get_ref((size_t)n, &ref))
      push_fmt(conn, "sent:bad");
    else
      push_fmt(conn, "sent:%d", websock_send(ref, rest, strlen(rest)));
  } else if (has_prefix(cmd, "sendwait:")) {
    /* input that arrives while it sleeps comes after the mail it sent */
    if (split_num(cmd + 9, &n, &rest)) {
      push_fmt(conn, "sendwait:bad");
      return WEBSOCK_OK;
    }
    int rc = websock_send(websock_self(conn), rest, strlen(rest));
    record("sendwait %zu", st->n);
    usleep((useconds_t)(n * 1000));
    push_fmt(conn, "sendwait:%d", rc);
  } else if (has_prefix(cmd, "sleep:")) {
    usleep((useconds_t)(strtoul(cmd + 6, NULL, 10) * 1000));
    push_fmt(conn, "slept");
  } else if (strcmp(cmd, "order") == 0) {
    push_fmt(conn, "order:%lu",
             __atomic_add_fetch(&orders, 1, __ATOMIC_RELAXED));
  } else if (has_prefix(cmd, "chain:")) {
    push_fmt(conn, "chain:%d",
             websock_send(websock_self(conn), cmd, strlen(cmd)));
  } else if (has_prefix(cmd, "thread:")) {
    char *end;
    unsigned long count, pause_us = 0;
    if (split_num(cmd + 7, &n, &rest)) {
      push_fmt(conn, "thread:bad");
      return WEBSOCK_OK;
    }
    count = strtoul(rest, &end, 10);
    if (*end == ':')
      pause_us = strtoul(end + 1, NULL, 10);
    push_fmt(conn, "thread:%d", start_sender((size_t)n, count, pause_us));
  } else if (has_prefix(cmd, "after:")) {
    if (split_num(cmd + 6, &n, &rest))
      push_fmt(conn, "timer:bad");
    else
      push_fmt(conn, "timer:%lld",
               (long long)websock_send_after(conn, n, rest, strlen(rest)));
  } else if (has_prefix(cmd, "cancel:")) {
    push_fmt(conn, "cancel:%d",
             websock_cancel_timer(conn, strtoll(cmd + 7, NULL, 10)));
  } else if (has_prefix(cmd, "sub:")) {
    push_fmt(conn, "sub:%d", websock_subscribe(conn, cmd + 4));
  } else if (has_prefix(cmd, "unsub:")) {
    push_fmt(conn, "unsub:%d", websock_unsubscribe(conn, cmd + 6));
  } else if (has_prefix(cmd, "pub:") || has_prefix(cmd, "bcast:")) {
    int pub = cmd[0] == 'p';
    const char *topic = cmd + (pub ? 4 : 6);
    const char *colon = strchr(topic, ':');
    if (!colon) {
      push_fmt(conn, "%s:bad", pub ? "pub" : "bcast");
      return WEBSOCK_OK;
    }
    char name[512];
    snprintf(name, sizeof(name), "%.*s", (int)(colon - topic), topic);
    websock_host *host = websock_conn_host(conn);
    int rc = pub ? websock_publish(host, name, colon + 1, strlen(colon + 1))
                 : websock_broadcast(host, name, WEBSOCK_OP_TEXT, colon + 1,
                                     strlen(colon + 1));
    push_fmt(conn, "%s:%d", pub ? "pub" : "bcast", rc);
  } else if (has_prefix(cmd, "flood:")) {
    uint64_t ok = 0, efull = 0, eclosed = 0;
    flood_mib(conn, strtoull(cmd + 6, NULL, 10), &ok, &efull, &eclosed);
    record("flood %zu %llu %llu %llu", st->n, (unsigned long long)ok,
           (unsigned long long)efull, (unsigned long long)eclosed);
    push_fmt(conn, "flood:%llu:%llu:%llu", (unsigned long long)ok,
             (unsigned long long)efull, (unsigned long long)eclosed);
  } else if (has_prefix(cmd, "floodinfo:")) {
    st->flood_left = strtoull(cmd + 10, NULL, 10);
    st->ok = st->efull = st->eclosed = 0;
    flood_tick(conn, st);
  } else if (strcmp(cmd, "unsent") == 0) {
    push_fmt(conn, "unsent:%zu", websock_unsent_bytes(conn));
  } else if (strcmp(cmd, "gone") == 0 || has_prefix(cmd, "gone:")) {
    long target;
    if (cmd[4] == ':') {
      target = strtol(cmd + 5, NULL, 10);
    } else {
      pthread_mutex_lock(&lock);
      target = last_closed;
      pthread_mutex_unlock(&lock);
    }
    if (target < 0 || !get_ref((size_t)target, &ref))
      push_fmt(conn, "gone:none");
    else
      push_fmt(conn, "gone:%d", websock_send(ref, "x", 1));
  } else if (has_prefix(cmd, "echo:")) {
    push_fmt(conn, "%s", cmd + 5);
  } else if (strcmp(cmd, "stop") == 0) {
    return WEBSOCK_STOP;
  } else if (strcmp(cmd, "restart") == 0) {
    websock_close_restart(conn);
    return WEBSOCK_STOP;
  } else if (has_prefix(cmd, "error:")) {
    websock_close_error(conn, cmd + 6);
    return WEBSOCK_STOP;
  } else if (has_prefix(cmd, "close:")) {
    websock_close(conn, (uint16_t)strtoul(cmd + 6, NULL, 10), NULL);
    return WEBSOCK_STOP;
  } else {
    push_fmt(conn, "unknown:%.200s", cmd);
  }
  return WEBSOCK_OK;
}

static int msgs_handle_in(websock_conn *conn, void **state,
                          websock_opcode opcode, const uint8_t *data,
                          size_t len) {
  msgs_state *st = *state;
  if (opcode != WEBSOCK_OP_TEXT)
    return WEBSOCK_OK;
  char *cmd = malloc(len + 1);
  if (!cmd)
    return WEBSOCK_STOP;
  memcpy(cmd, data, len);
  cmd[len] = '\0';
  record("in %zu %.60s", st->n, cmd);
  int r = command(conn, st, cmd);
  free(cmd);
  return r;
}

static int msgs_handle_info(websock_conn *conn, void **state,
                            const uint8_t *data, size_t len) {
  msgs_state *st = *state;
  if (len == strlen(FLOOD_TICK) && memcmp(data, FLOOD_TICK, len) == 0) {
    flood_tick(conn, st);
    return WEBSOCK_OK;
  }
  if (len > 6 && len < 32 && memcmp(data, "chain:", 6) == 0) {
    char msg[32];
    snprintf(msg, sizeof(msg), "%.*s", (int)len - 6, (const char *)data + 6);
    unsigned long n = strtoul(msg, NULL, 10);
    if (n == 0)
      return websock_push(conn, WEBSOCK_OP_TEXT, "chained", 7) < 0
                 ? WEBSOCK_STOP
                 : WEBSOCK_OK;
    int m = snprintf(msg, sizeof(msg), "chain:%lu", n - 1);
    return websock_send(websock_self(conn), msg, (size_t)m) == 0 ? WEBSOCK_OK
                                                                 : WEBSOCK_STOP;
  }
  char *buf = malloc(len + 5);
  if (!buf)
    return WEBSOCK_STOP;
  memcpy(buf, "info:", 5);
  memcpy(buf + 5, data, len);
  websock_push(conn, WEBSOCK_OP_TEXT, buf, len + 5);
  free(buf);
  return WEBSOCK_OK;
}

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "msgs",
    .version = "1.0.0",
    .load = msgs_load,
    .unload = msgs_unload,
    .init = msgs_init,
    .handle_in = msgs_handle_in,
    .handle_info = msgs_handle_info,
    .terminate = msgs_terminate,
};
