/*
 * topic.c - a worker's topic table (see topic.h): a chained hash table of
 * names, each with an array of member connections; and the reference-counted
 * payload a publish or broadcast shares among the workers.
 */
#include "bus/topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void wsh_topics_init(wsh_topics *t) {
  memset(t, 0, sizeof(*t));
}

void wsh_topics_free(wsh_topics *t) {
  for (size_t i = 0; i < t->nbuckets; i++) {
    for (wsh_topic *tp = t->buckets[i], *next; tp; tp = next) {
      next = tp->next;
      free(tp->members);
      free(tp);
    }
  }
  free(t->buckets);
  wsh_topics_init(t);
}

static uint64_t hash_name(const char *s) { /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 1099511628211ull;
  return h;
}

wsh_topic *wsh_topics_find(wsh_topics *t, const char *name) {
  if (!t->nbuckets)
    return NULL;
  wsh_topic *tp = t->buckets[hash_name(name) % t->nbuckets];
  while (tp && strcmp(tp->name, name) != 0)
    tp = tp->next;
  return tp;
}

static int rehash(wsh_topics *t) {
  size_t n = t->nbuckets ? t->nbuckets * 2 : 64;
  wsh_topic **b = calloc(n, sizeof(*b));
  if (!b)
    return -1;
  for (size_t i = 0; i < t->nbuckets; i++) {
    for (wsh_topic *tp = t->buckets[i], *next; tp; tp = next) {
      next = tp->next;
      size_t h = hash_name(tp->name) % n;
      tp->next = b[h];
      b[h] = tp;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = n;
  return 0;
}

static wsh_topic *create(wsh_topics *t, const char *name) {
  if (t->n >= t->nbuckets && rehash(t) != 0)
    return NULL;
  size_t len = strlen(name);
  wsh_topic *tp = calloc(1, sizeof(*tp) + len + 1);
  if (!tp)
    return NULL;
  memcpy(tp->name, name, len + 1);
  size_t h = hash_name(name) % t->nbuckets;
  tp->next = t->buckets[h];
  t->buckets[h] = tp;
  t->n++;
  return tp;
}

wsh_topic *wsh_topics_join(wsh_topics *t, const char *name, websock_conn *conn,
                           bool *added) {
  wsh_topic *tp = wsh_topics_find(t, name);
  *added = false;
  if (!tp && !(tp = create(t, name)))
    return NULL;
  for (size_t i = 0; i < tp->n; i++)
    if (tp->members[i] == conn)
      return tp;
  if (tp->n == tp->cap) {
    size_t cap = tp->cap ? tp->cap * 2 : 4;
    websock_conn **m = realloc(tp->members, cap * sizeof(*m));
    if (!m) {
      if (tp->n == 0)
        wsh_topics_leave(t, tp, conn);
      return NULL;
    }
    tp->members = m;
    tp->cap = cap;
  }
  tp->members[tp->n++] = conn;
  *added = true;
  return tp;
}

static void unlink_topic(wsh_topics *t, wsh_topic *topic) {
  wsh_topic **pp = &t->buckets[hash_name(topic->name) % t->nbuckets];
  while (*pp && *pp != topic)
    pp = &(*pp)->next;
  if (*pp)
    *pp = topic->next;
  t->n--;
  free(topic->members);
  free(topic);
}

void wsh_topics_leave(wsh_topics *t, wsh_topic *topic, websock_conn *conn) {
  for (size_t i = 0; i < topic->n; i++) {
    if (topic->members[i] == conn) {
      topic->members[i] = topic->members[--topic->n];
      break;
    }
  }
  if (topic->n == 0)
    unlink_topic(t, topic);
}

/* ---- shared payloads ----------------------------------------------------- */

wsh_shared *wsh_shared_new(const char *topic, size_t len) {
  size_t tlen = strlen(topic);
  wsh_shared *sh = malloc(sizeof(*sh) + tlen + 1 + len);
  if (!sh)
    return NULL;
  atomic_init(&sh->refs, 1);
  memcpy(sh->topic, topic, tlen + 1);
  sh->data = (uint8_t *)sh->topic + tlen + 1;
  sh->len = len;
  return sh;
}

void wsh_shared_ref(wsh_shared *sh) {
  atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
}

void wsh_shared_unref(wsh_shared *sh) {
  if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1)
    free(sh);
}
