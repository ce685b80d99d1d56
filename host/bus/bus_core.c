/*
 * bus_core.c - the bus in front of its engine (see bus_core.h, bus_engine.h):
 * the bounded queue from the workers to the bus loop, the channels the host
 * needs (counted across workers) and their subscription states, sequence
 * numbers, encoding and decoding, own copies, and the counters; and the
 * subscriber counts across hosts: a tick announces what changed in the
 * host's count table (every topic at each refresh) on the control channel,
 * and what other hosts announce there goes to a bounded table
 * (peer_counts.h). The local engine is no engine at all: every call
 * returns at once.
 */
#include "bus/bus_core.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/hash.h"
#include "bus/bus_engine.h"
#include "bus/peer_counts.h"
#include "websock.h"

#define QUEUE_MAX_DEFAULT 65536u
#define QUEUE_BYTES_DEFAULT (64u << 20)
#define SEQ_BUCKETS 4096u
#define SEQ_MAX 65536u /* channels with a sequence; past it, all restart */
#define CHAN_BUCKETS 1024u
#define COUNT_TICK_DEFAULT 1000u
#define COUNT_REFRESH_DEFAULT 3000u
#define COUNTS_CHUNK 16384u /* payload bytes of one announcement at most */

/* A publish or send waiting for the loop: data, then the topic's NUL. */
typedef struct bus_op {
  struct bus_op *next;
  uint8_t kind;
  uint8_t opcode;
  wsh_bus_ref to;
  size_t len;
  size_t topic_len;
  uint8_t bytes[]; /* data[len], topic[topic_len], '\0' */
} bus_op;

enum { CH_OFF, CH_SUBSCRIBING, CH_ON, CH_UNSUBSCRIBING };

/* A channel the host needs (refs > 0) or is still leaving. */
typedef struct bus_chan {
  struct bus_chan *next;       /* hash chain */
  struct bus_chan *dirty_next; /* on the list to reconcile */
  bool dirty;
  int state;
  long refs;
  size_t len;
  char name[];
} bus_chan;

typedef struct bus_seq {
  struct bus_seq *next;
  uint64_t seq;
  char name[];
} bus_seq;

struct wsh_bus {
  const wsh_bus_engine *engine; /* NULL: local */
  void *engine_state;
  wsh_bus_callbacks cb;
  struct event_base *base;
  struct event *wake;
  uint64_t host_id;
  char prefix[WSH_BUS_PREFIX_MAX + 1];
  char host_channel[WSH_BUS_CHANNEL_MAX];
  size_t host_channel_len;
  char control_channel[WSH_BUS_CHANNEL_MAX];
  size_t control_channel_len;
  size_t queue_max, queue_max_bytes;

  pthread_mutex_t lock;
  bus_op *head, *tail; /* under lock */
  size_t nqueued, queued_bytes;
  bus_chan *chans[CHAN_BUCKETS]; /* under lock */
  bus_chan *dirty;               /* under lock */

  /* Loop thread only. */
  bool up, was_up;
  bus_seq *seqs[SEQ_BUCKETS];
  size_t nseqs;
  uint8_t *enc;
  size_t enc_cap;
  /* Counts across hosts: the tick, the host's table, the announcement
   * being filled (loop thread), and the other hosts' counts (any thread,
   * their own lock). */
  struct event *tick;
  wsh_topic_counts *counts;
  unsigned refresh_ticks, ticks;
  bool full_due;
  uint8_t cbuf[COUNTS_CHUNK];
  size_t clen;
  wsh_peer_counts *peers;

  atomic_ullong connected, published, received, dropped, reconnects, channels,
      send_unknown, send_gone, own, invalid, queued, counts_sent,
      counts_received, counts_dropped;
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void count(atomic_ullong *c, long n) {
  atomic_fetch_add_explicit(c, (unsigned long long)n, memory_order_relaxed);
}

/* ---- channels (under lock) ----------------------------------------------- */

static bus_chan **chan_slot(wsh_bus *bus, const char *name, size_t len) {
  bus_chan **pp = &bus->chans[wsh_hash_mem(name, len) % CHAN_BUCKETS];
  while (*pp && !((*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
    pp = &(*pp)->next;
  return pp;
}

static void mark_dirty(wsh_bus *bus, bus_chan *ch) {
  if (ch->dirty)
    return;
  ch->dirty = true;
  ch->dirty_next = bus->dirty;
  bus->dirty = ch;
}

/* Brings ch's subscription towards what its count asks for; forgets it
 * once nobody needs it and it is unsubscribed. Loop thread, under lock. */
static void reconcile(wsh_bus *bus, bus_chan *ch) {
  if (bus->up && ch->refs > 0 && ch->state == CH_OFF) {
    if (bus->engine->subscribe(bus->engine_state, ch->name, ch->len) == 0)
      ch->state = CH_SUBSCRIBING;
  } else if (bus->up && ch->refs == 0 && ch->state == CH_ON) {
    if (bus->engine->unsubscribe(bus->engine_state, ch->name, ch->len) == 0)
      ch->state = CH_UNSUBSCRIBING;
  }
  if (ch->refs == 0 && ch->state == CH_OFF && !ch->dirty) {
    bus_chan **pp = chan_slot(bus, ch->name, ch->len);
    *pp = ch->next;
    free(ch);
  }
}

/* Adds delta to the count of a channel, creating it on demand. */
static int chan_ref(wsh_bus *bus, const char *name, size_t len, long delta) {
  int rc = 0;
  pthread_mutex_lock(&bus->lock);
  bus_chan **pp = chan_slot(bus, name, len);
  bus_chan *ch = *pp;
  if (!ch && delta < 0)
    goto out_unlock; /* left more often than joined: nothing to do */
  if (!ch) {
    ch = calloc(1, sizeof(*ch) + len + 1);
    if (!ch) {
      rc = WEBSOCK_ENOMEM;
      goto out_unlock;
    }
    memcpy(ch->name, name, len);
    ch->len = len;
    *pp = ch;
  }
  ch->refs += delta;
  if (ch->refs < 0)
    ch->refs = 0;
  mark_dirty(bus, ch);
out_unlock:
  pthread_mutex_unlock(&bus->lock);
  if (rc == 0 && bus->wake)
    event_active(bus->wake, EV_READ, 0);
  return rc;
}

static int topic_ref(wsh_bus *bus, const char *topic, long delta) {
  char name[WSH_BUS_CHANNEL_MAX];
  if (!bus || !topic)
    return WEBSOCK_EINVAL;
  int n = wsh_bus_channel_topic(name, sizeof(name), bus->prefix, topic,
                                strlen(topic));
  if (n < 0)
    return n;
  if (!bus->engine)
    return 0;
  return chan_ref(bus, name, (size_t)n, delta);
}

int wsh_bus_topic_joined(wsh_bus *bus, const char *topic) {
  return topic_ref(bus, topic, 1);
}

int wsh_bus_topic_left(wsh_bus *bus, const char *topic) {
  return topic_ref(bus, topic, -1);
}

/* ---- the engine's reports (loop thread) ---------------------------------- */

void wsh_bus_engine_up(wsh_bus *bus) {
  if (bus->up)
    return;
  bus->up = true;
  if (bus->was_up)
    count(&bus->reconnects, 1);
  bus->was_up = true;
  bus->full_due = true; /* tell the others every count at the next tick */
  atomic_store(&bus->connected, 1);
  pthread_mutex_lock(&bus->lock);
  for (size_t i = 0; i < CHAN_BUCKETS; i++) {
    for (bus_chan *ch = bus->chans[i], *next; ch; ch = next) {
      next = ch->next;
      reconcile(bus, ch);
    }
  }
  pthread_mutex_unlock(&bus->lock);
}

void wsh_bus_engine_down(wsh_bus *bus) {
  bus->up = false;
  atomic_store(&bus->connected, 0);
  atomic_store(&bus->channels, 0);
  pthread_mutex_lock(&bus->lock);
  for (size_t i = 0; i < CHAN_BUCKETS; i++) {
    for (bus_chan *ch = bus->chans[i], *next; ch; ch = next) {
      next = ch->next;
      ch->state = CH_OFF;
      reconcile(bus, ch);
    }
  }
  pthread_mutex_unlock(&bus->lock);
}

void wsh_bus_engine_acked(wsh_bus *bus, const char *channel, size_t len,
                          bool subscribed) {
  pthread_mutex_lock(&bus->lock);
  bus_chan *ch = *chan_slot(bus, channel, len);
  if (ch) {
    bool was_on = ch->state == CH_ON || ch->state == CH_UNSUBSCRIBING;
    ch->state = subscribed ? CH_ON : CH_OFF;
    if (subscribed && !was_on)
      count(&bus->channels, 1);
    else if (!subscribed && was_on)
      count(&bus->channels, -1);
    reconcile(bus, ch);
  }
  pthread_mutex_unlock(&bus->lock);
}

void wsh_bus_engine_unknown_host(wsh_bus *bus) {
  count(&bus->send_unknown, 1);
}

void wsh_bus_engine_dropped(wsh_bus *bus, unsigned n) {
  count(&bus->dropped, n);
}

/* Hands one message from another host to the host, after checking that it
 * came on the channel it names. */
void wsh_bus_engine_received(wsh_bus *bus, const char *channel, size_t len,
                             const uint8_t *msg, size_t msg_len) {
  wsh_bus_msg m;
  char topic[WSH_BUS_TOPIC_MAX + 1], expect[WSH_BUS_CHANNEL_MAX];
  if (wsh_bus_msg_decode(&m, msg, msg_len) != 0) {
    count(&bus->invalid, 1);
    return;
  }
  bool control = len == bus->control_channel_len &&
                 memcmp(channel, bus->control_channel, len) == 0;
  if (control != (m.kind == WSH_BUS_COUNTS)) {
    count(&bus->invalid, 1); /* counts elsewhere, or others on control */
    return;
  }
  if (control) {
    if (m.origin == bus->host_id)
      return; /* ours, back: the host counts its own subscribers */
    size_t lost =
        wsh_peer_counts_apply(bus->peers, m.origin, m.data, m.len, now_ms());
    count(&bus->counts_received, 1);
    count(&bus->counts_dropped, (long)lost);
    return;
  }
  if (m.origin == bus->host_id) {
    count(&bus->own, 1);
    return;
  }
  int n;
  if (m.kind == WSH_BUS_SEND) {
    n = (int)bus->host_channel_len;
    memcpy(expect, bus->host_channel, bus->host_channel_len + 1);
    if (m.to.host != bus->host_id)
      n = -1;
  } else {
    n = wsh_bus_channel_topic(expect, sizeof(expect), bus->prefix, m.topic,
                              m.topic_len);
  }
  if (n < 0 || (size_t)n != len || memcmp(expect, channel, len) != 0) {
    count(&bus->invalid, 1);
    return;
  }
  memcpy(topic, m.topic ? m.topic : "", m.topic_len);
  topic[m.topic_len] = '\0';
  m.topic = topic;
  count(&bus->received, 1);
  if (m.kind != WSH_BUS_SEND) {
    if (bus->cb.on_remote_publish)
      bus->cb.on_remote_publish(bus->cb.arg, &m);
  } else if (!bus->cb.on_remote_send ||
             bus->cb.on_remote_send(bus->cb.arg, &m) != 0) {
    count(&bus->send_gone, 1);
  }
}

/* ---- sending (loop thread) ----------------------------------------------- */

static void seqs_clear(wsh_bus *bus) {
  for (size_t i = 0; i < SEQ_BUCKETS; i++) {
    for (bus_seq *s = bus->seqs[i], *next; s; s = next) {
      next = s->next;
      free(s);
    }
    bus->seqs[i] = NULL;
  }
  bus->nseqs = 0;
}

/* The next sequence number on a channel (1, 2, ...), or 0 when out of
 * memory. The table is bounded: past SEQ_MAX channels every sequence
 * starts again at 1 (receivers only use them to check order). */
static uint64_t next_seq(wsh_bus *bus, const char *name, size_t len) {
  bus_seq **pp = &bus->seqs[wsh_hash_mem(name, len) % SEQ_BUCKETS];
  for (bus_seq *s = *pp; s; s = s->next)
    if (strcmp(s->name, name) == 0)
      return ++s->seq;
  if (bus->nseqs >= SEQ_MAX) {
    seqs_clear(bus);
    pp = &bus->seqs[wsh_hash_mem(name, len) % SEQ_BUCKETS];
  }
  bus_seq *s = malloc(sizeof(*s) + len + 1);
  if (!s)
    return 0;
  memcpy(s->name, name, len + 1);
  s->seq = 1;
  s->next = *pp;
  *pp = s;
  bus->nseqs++;
  return 1;
}

static void send_op(wsh_bus *bus, bus_op *op) {
  char name[WSH_BUS_CHANNEL_MAX];
  const char *topic = (const char *)op->bytes + op->len;
  int n =
      op->kind == WSH_BUS_SEND
          ? wsh_bus_channel_host(name, sizeof(name), bus->prefix, op->to.host)
          : wsh_bus_channel_topic(name, sizeof(name), bus->prefix, topic,
                                  op->topic_len);
  wsh_bus_msg m = {.origin = bus->host_id,
                   .kind = op->kind,
                   .opcode = op->opcode,
                   .topic = op->topic_len ? topic : NULL,
                   .topic_len = op->topic_len,
                   .to = op->to,
                   .data = op->len ? op->bytes : NULL,
                   .len = op->len};
  if (!bus->up || n < 0 || !(m.seq = next_seq(bus, name, (size_t)n)))
    goto out_drop;
  size_t size = wsh_bus_msg_size(&m);
  if (size > bus->enc_cap) {
    uint8_t *e = realloc(bus->enc, size);
    if (!e)
      goto out_drop;
    bus->enc = e;
    bus->enc_cap = size;
  }
  long w = wsh_bus_msg_encode(&m, bus->enc, bus->enc_cap);
  if (w < 0 ||
      bus->engine->publish(bus->engine_state, name, (size_t)n, bus->enc,
                           (size_t)w, op->kind == WSH_BUS_SEND) != 0)
    goto out_drop;
  count(&bus->published, 1);
  return;
out_drop:
  count(&bus->dropped, 1);
}

/* ---- counts across hosts (loop thread) ---------------------------------- */

/* Publishes the announcement filled so far, if any. */
static void counts_flush(wsh_bus *bus) {
  if (bus->clen == 0)
    return;
  wsh_bus_msg m = {.origin = bus->host_id,
                   .kind = WSH_BUS_COUNTS,
                   .data = bus->cbuf,
                   .len = bus->clen};
  bus->clen = 0;
  uint8_t out[WSH_BUS_MSG_HEADER + COUNTS_CHUNK];
  m.seq = next_seq(bus, bus->control_channel, bus->control_channel_len);
  long w = m.seq ? wsh_bus_msg_encode(&m, out, sizeof(out)) : -1;
  if (w < 0 || bus->engine->publish(bus->engine_state, bus->control_channel,
                                    bus->control_channel_len, out, (size_t)w,
                                    false) != 0) {
    count(&bus->dropped, 1);
    return;
  }
  count(&bus->counts_sent, 1);
}

/* wsh_topic_counts_report's sink: one entry more in the announcement. */
static void counts_add(void *arg, const char *name, size_t n) {
  wsh_bus *bus = arg;
  size_t len = strlen(name);
  uint32_t c = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
  if (sizeof(bus->cbuf) - bus->clen < 1 + len + 4)
    counts_flush(bus);
  wsh_bus_count_put(bus->cbuf, sizeof(bus->cbuf), &bus->clen, name, len, c);
}

/* Every tick: what changed in the host's counts goes to the other hosts
 * (everything at each refresh, and after coming up); while down, changes
 * are only marked reported (the refresh after coming up tells them all).
 * Other hosts' stale counts are forgotten. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
  wsh_bus *bus = arg;
  (void)fd;
  (void)what;
  if (++bus->ticks >= bus->refresh_ticks) {
    bus->ticks = 0;
    bus->full_due = true;
  }
  if (bus->counts) {
    bool all = bus->up && bus->full_due;
    wsh_topic_counts_report(bus->counts, all, bus->up ? counts_add : NULL, bus);
    if (bus->up)
      counts_flush(bus);
    if (all)
      bus->full_due = false;
  }
  wsh_peer_counts_expire(bus->peers, now_ms());
}

int64_t wsh_bus_topic_others(wsh_bus *bus, const char *topic) {
  if (!bus || !bus->peers || !topic)
    return 0;
  return wsh_peer_counts_sum(bus->peers, topic, strlen(topic), now_ms());
}

static void on_wake(evutil_socket_t fd, short what, void *arg) {
  wsh_bus *bus = arg;
  (void)fd;
  (void)what;
  pthread_mutex_lock(&bus->lock);
  bus_op *op = bus->head;
  bus->head = bus->tail = NULL;
  bus->nqueued = bus->queued_bytes = 0;
  atomic_store(&bus->queued, 0);
  while (bus->dirty) {
    bus_chan *ch = bus->dirty;
    bus->dirty = ch->dirty_next;
    ch->dirty = false;
    reconcile(bus, ch);
  }
  pthread_mutex_unlock(&bus->lock);
  while (op) {
    bus_op *next = op->next;
    send_op(bus, op);
    free(op);
    op = next;
  }
}

/* Any thread: queues op, or drops it (and frees it) when the queue is
 * full. */
static void enqueue(wsh_bus *bus, bus_op *op) {
  size_t size = sizeof(*op) + op->len + op->topic_len + 1;
  op->next = NULL;
  pthread_mutex_lock(&bus->lock);
  if (bus->nqueued >= bus->queue_max ||
      bus->queued_bytes + size > bus->queue_max_bytes) {
    pthread_mutex_unlock(&bus->lock);
    free(op);
    count(&bus->dropped, 1);
    return;
  }
  if (bus->tail)
    bus->tail->next = op;
  else
    bus->head = op;
  bus->tail = op;
  bus->nqueued++;
  bus->queued_bytes += size;
  atomic_store(&bus->queued, bus->nqueued);
  pthread_mutex_unlock(&bus->lock);
  event_active(bus->wake, EV_READ, 0);
}

static bus_op *op_new(const char *topic, size_t topic_len, const void *data,
                      size_t len) {
  bus_op *op = malloc(sizeof(*op) + len + topic_len + 1);
  if (!op)
    return NULL;
  memset(op, 0, sizeof(*op));
  op->len = len;
  op->topic_len = topic_len;
  if (len)
    memcpy(op->bytes, data, len);
  if (topic_len)
    memcpy(op->bytes + len, topic, topic_len);
  op->bytes[len + topic_len] = '\0';
  return op;
}

int wsh_bus_publish(wsh_bus *bus, const char *topic, int kind, int opcode,
                    const void *data, size_t len) {
  size_t tlen = topic ? strlen(topic) : 0;
  if (!bus || tlen == 0 || tlen > WSH_BUS_TOPIC_MAX || (len && !data) ||
      len > WSH_BUS_PAYLOAD_MAX)
    return WEBSOCK_EINVAL;
  if (!(kind == WSH_BUS_PUBLISH && opcode == 0) &&
      !(kind == WSH_BUS_BROADCAST &&
        (opcode == WEBSOCK_OP_TEXT || opcode == WEBSOCK_OP_BINARY)))
    return WEBSOCK_EINVAL;
  if (!bus->engine)
    return 0; /* one host: the host delivered it already */
  bus_op *op = op_new(topic, tlen, data, len);
  if (!op)
    return WEBSOCK_ENOMEM;
  op->kind = (uint8_t)kind;
  op->opcode = (uint8_t)opcode;
  enqueue(bus, op);
  return 0;
}

int wsh_bus_send_to(wsh_bus *bus, const wsh_bus_ref *to, const void *data,
                    size_t len) {
  if (!bus || !to || to->host == 0 || to->host == bus->host_id ||
      (len && !data) || len > WSH_BUS_PAYLOAD_MAX)
    return WEBSOCK_EINVAL;
  if (!bus->engine) {
    count(&bus->send_unknown, 1); /* no other host can be reached */
    return 0;
  }
  bus_op *op = op_new(NULL, 0, data, len);
  if (!op)
    return WEBSOCK_ENOMEM;
  op->kind = WSH_BUS_SEND;
  op->to = *to;
  enqueue(bus, op);
  return 0;
}

/* ---- life ---------------------------------------------------------------- */

static uint64_t random_id(void) {
  uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      id = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
           ((uint64_t)getpid() << 16);
    }
  }
  return id;
}

int wsh_bus_new(wsh_bus **out, const wsh_bus_config *cfg,
                struct event_base *base, const wsh_bus_callbacks *cb) {
  *out = NULL;
  bool remote = cfg->redis && *cfg->redis;
  if ((cfg->prefix && strlen(cfg->prefix) > WSH_BUS_PREFIX_MAX) ||
      (remote && !base))
    return WEBSOCK_EINVAL;
  wsh_bus *bus = calloc(1, sizeof(*bus));
  if (!bus)
    return WEBSOCK_ENOMEM;
  int rc = WEBSOCK_ENOMEM;
  pthread_mutex_init(&bus->lock, NULL);
  if (cb)
    bus->cb = *cb;
  bus->base = base;
  bus->host_id = cfg->host_id ? cfg->host_id : random_id();
  if (cfg->prefix)
    strcpy(bus->prefix, cfg->prefix);
  bus->host_channel_len = (size_t)wsh_bus_channel_host(
      bus->host_channel, sizeof(bus->host_channel), bus->prefix, bus->host_id);
  bus->control_channel_len = (size_t)wsh_bus_channel_control(
      bus->control_channel, sizeof(bus->control_channel), bus->prefix);
  bus->queue_max = cfg->queue_max ? cfg->queue_max : QUEUE_MAX_DEFAULT;
  bus->queue_max_bytes =
      cfg->queue_max_bytes ? cfg->queue_max_bytes : QUEUE_BYTES_DEFAULT;
  if (!remote) {
    *out = bus;
    return 0;
  }
  bus->engine = &wsh_bus_engine_redis;
  bus->wake = event_new(base, -1, EV_PERSIST | EV_READ, on_wake, bus);
  if (!bus->wake)
    goto out_free_bus;
  /* Every host hears its own channel and the control channel for as long
   * as it runs. */
  if (chan_ref(bus, bus->host_channel, bus->host_channel_len, 1) != 0 ||
      chan_ref(bus, bus->control_channel, bus->control_channel_len, 1) != 0)
    goto out_free_bus;
  wsh_peer_limits lim = {cfg->count_entries_max, cfg->count_per_host_max,
                         cfg->count_hosts_max, cfg->count_expiry_ms};
  unsigned tick = cfg->count_tick_ms ? cfg->count_tick_ms : COUNT_TICK_DEFAULT;
  unsigned refresh =
      cfg->count_refresh_ms ? cfg->count_refresh_ms : COUNT_REFRESH_DEFAULT;
  bus->counts = cfg->counts;
  bus->refresh_ticks = refresh / tick ? refresh / tick : 1;
  bus->peers = wsh_peer_counts_new(&lim);
  bus->tick = event_new(base, -1, EV_PERSIST, on_tick, bus);
  if (!bus->peers || !bus->tick)
    goto out_free_bus;
  struct timeval tv = {(time_t)(tick / 1000),
                       (suseconds_t)(tick % 1000) * 1000};
  evtimer_add(bus->tick, &tv);
  rc = bus->engine->start(bus, cfg, base, &bus->engine_state);
  if (rc != 0)
    goto out_free_bus;
  *out = bus;
  return 0;
out_free_bus:
  bus->engine = NULL; /* nothing started */
  wsh_bus_free(bus);
  return rc;
}

void wsh_bus_free(wsh_bus *bus) {
  if (!bus)
    return;
  if (bus->engine)
    bus->engine->stop(bus->engine_state);
  for (bus_op *op = bus->head, *next; op; op = next) {
    next = op->next;
    free(op);
  }
  for (size_t i = 0; i < CHAN_BUCKETS; i++) {
    for (bus_chan *ch = bus->chans[i], *next; ch; ch = next) {
      next = ch->next;
      free(ch);
    }
  }
  seqs_clear(bus);
  free(bus->enc);
  if (bus->wake)
    event_free(bus->wake);
  if (bus->tick)
    event_free(bus->tick);
  wsh_peer_counts_free(bus->peers);
  pthread_mutex_destroy(&bus->lock);
  free(bus);
}

const char *wsh_bus_engine_name(const wsh_bus *bus) {
  return bus->engine ? bus->engine->name : "local";
}

uint64_t wsh_bus_host_id(const wsh_bus *bus) {
  return bus->host_id;
}

void wsh_bus_stats_get(wsh_bus *bus, wsh_bus_stats *st) {
  st->connected = atomic_load(&bus->connected);
  st->published = atomic_load(&bus->published);
  st->received = atomic_load(&bus->received);
  st->dropped = atomic_load(&bus->dropped);
  st->reconnects = atomic_load(&bus->reconnects);
  st->channels = atomic_load(&bus->channels);
  st->send_unknown = atomic_load(&bus->send_unknown);
  st->send_gone = atomic_load(&bus->send_gone);
  st->own = atomic_load(&bus->own);
  st->invalid = atomic_load(&bus->invalid);
  st->queued = atomic_load(&bus->queued);
  st->counts_sent = atomic_load(&bus->counts_sent);
  st->counts_received = atomic_load(&bus->counts_received);
  st->counts_dropped = atomic_load(&bus->counts_dropped);
  size_t hosts = 0;
  st->counts_entries =
      bus->peers ? wsh_peer_counts_entries(bus->peers, &hosts) : 0;
  st->counts_hosts = hosts;
}
