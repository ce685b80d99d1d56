/*
 * peer_counts.c - other hosts' subscriber counts (see peer_counts.h): a
 * fixed hash table of topics, each with a small array of (host, count,
 * when) entries, and a short array of the hosts seen with their number of
 * entries (for the per-host cap). Everything under one mutex.
 */
#include "bus/peer_counts.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"
#include "bus/bus_msg.h"

#define BUCKETS 4096u

typedef struct peer_entry {
  uint64_t host;
  uint32_t count;
  double seen;
} peer_entry;

typedef struct peer_topic {
  struct peer_topic *next;
  peer_entry *e;
  size_t n, cap;
  size_t len;
  char name[];
} peer_topic;

typedef struct peer_host {
  uint64_t host;
  size_t entries;
} peer_host;

struct wsh_peer_counts {
  pthread_mutex_t lock;
  wsh_peer_limits lim;
  peer_topic *buckets[BUCKETS];
  size_t entries;
  peer_host *hosts; /* [lim.hosts_max] */
  size_t nhosts;
};

wsh_peer_counts *wsh_peer_counts_new(const wsh_peer_limits *lim) {
  wsh_peer_counts *pc = calloc(1, sizeof(*pc));
  if (!pc)
    return NULL;
  if (lim)
    pc->lim = *lim;
  if (!pc->lim.entries_max)
    pc->lim.entries_max = 32768;
  if (!pc->lim.per_host_max)
    pc->lim.per_host_max = 8192;
  if (!pc->lim.hosts_max)
    pc->lim.hosts_max = 256;
  if (!pc->lim.expiry_ms)
    pc->lim.expiry_ms = 10000;
  pc->hosts = calloc(pc->lim.hosts_max, sizeof(*pc->hosts));
  if (!pc->hosts) {
    free(pc);
    return NULL;
  }
  pthread_mutex_init(&pc->lock, NULL);
  return pc;
}

void wsh_peer_counts_free(wsh_peer_counts *pc) {
  if (!pc)
    return;
  for (size_t i = 0; i < BUCKETS; i++) {
    for (peer_topic *t = pc->buckets[i], *next; t; t = next) {
      next = t->next;
      free(t->e);
      free(t);
    }
  }
  pthread_mutex_destroy(&pc->lock);
  free(pc->hosts);
  free(pc);
}

/* ---- under the lock ------------------------------------------------------ */

static peer_topic **topic_slot(wsh_peer_counts *pc, const char *name,
                               size_t len) {
  peer_topic **pp = &pc->buckets[wsh_hash_mem(name, len) % BUCKETS];
  while (*pp && !((*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
    pp = &(*pp)->next;
  return pp;
}

static peer_host *find_host(wsh_peer_counts *pc, uint64_t host) {
  for (size_t i = 0; i < pc->nhosts; i++)
    if (pc->hosts[i].host == host)
      return &pc->hosts[i];
  return NULL;
}

/* Entry i of *pp goes; so do its topic when empty and its host when it has
 * no entry left. */
static void drop_entry(wsh_peer_counts *pc, peer_topic **pp, size_t i) {
  peer_topic *t = *pp;
  peer_host *h = find_host(pc, t->e[i].host);
  if (h && --h->entries == 0)
    *h = pc->hosts[--pc->nhosts];
  pc->entries--;
  t->e[i] = t->e[--t->n];
  if (t->n == 0) {
    *pp = t->next;
    free(t->e);
    free(t);
  }
}

/* Sets host's count of one topic; false when it does not fit. */
static bool set_one(wsh_peer_counts *pc, uint64_t host, const wsh_bus_count *c,
                    double now) {
  peer_topic **pp = topic_slot(pc, c->topic, c->topic_len), *t = *pp;
  size_t i = 0;
  while (t && i < t->n && t->e[i].host != host)
    i++;
  if (t && i < t->n) { /* known: a new count, or gone at 0 */
    if (c->count == 0) {
      drop_entry(pc, pp, i);
    } else {
      t->e[i].count = c->count;
      t->e[i].seen = now;
    }
    return true;
  }
  if (c->count == 0)
    return true; /* nothing to forget */
  peer_host *h = find_host(pc, host);
  if (pc->entries >= pc->lim.entries_max ||
      (h && h->entries >= pc->lim.per_host_max) ||
      (!h && pc->nhosts >= pc->lim.hosts_max))
    return false;
  if (!t) {
    t = calloc(1, sizeof(*t) + c->topic_len + 1);
    if (!t)
      return false;
    memcpy(t->name, c->topic, c->topic_len);
    t->len = c->topic_len;
    *pp = t;
  }
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 2;
    peer_entry *e = realloc(t->e, cap * sizeof(*e));
    if (!e) {
      if (t->n == 0) {
        *pp = t->next;
        free(t->e);
        free(t);
      }
      return false;
    }
    t->e = e;
    t->cap = cap;
  }
  if (!h) {
    h = &pc->hosts[pc->nhosts++];
    h->host = host;
    h->entries = 0;
  }
  h->entries++;
  pc->entries++;
  t->e[t->n++] = (peer_entry){host, c->count, now};
  return true;
}

/* ---- the API ------------------------------------------------------------- */

size_t wsh_peer_counts_apply(wsh_peer_counts *pc, uint64_t host,
                             const uint8_t *data, size_t len, double now) {
  wsh_bus_count c;
  size_t off = 0, dropped = 0;
  if (host == 0)
    return 0;
  pthread_mutex_lock(&pc->lock);
  while (wsh_bus_count_next(&c, data, len, &off) == 1)
    if (!set_one(pc, host, &c, now))
      dropped++;
  pthread_mutex_unlock(&pc->lock);
  return dropped;
}

int64_t wsh_peer_counts_sum(wsh_peer_counts *pc, const char *topic, size_t len,
                            double now) {
  int64_t sum = 0;
  pthread_mutex_lock(&pc->lock);
  peer_topic *t = *topic_slot(pc, topic, len);
  for (size_t i = 0; t && i < t->n; i++)
    if (now - t->e[i].seen < pc->lim.expiry_ms)
      sum += t->e[i].count;
  pthread_mutex_unlock(&pc->lock);
  return sum;
}

void wsh_peer_counts_expire(wsh_peer_counts *pc, double now) {
  pthread_mutex_lock(&pc->lock);
  for (size_t b = 0; b < BUCKETS && pc->entries; b++) {
    for (peer_topic **pp = &pc->buckets[b], *t; (t = *pp);) {
      size_t i = 0;
      while (*pp == t && i < t->n) {
        if (now - t->e[i].seen >= pc->lim.expiry_ms)
          drop_entry(pc, pp, i); /* may free t */
        else
          i++;
      }
      if (*pp == t)
        pp = &t->next;
    }
  }
  pthread_mutex_unlock(&pc->lock);
}

size_t wsh_peer_counts_entries(wsh_peer_counts *pc, size_t *hosts) {
  pthread_mutex_lock(&pc->lock);
  size_t n = pc->entries;
  if (hosts)
    *hosts = pc->nhosts;
  pthread_mutex_unlock(&pc->lock);
  return n;
}
