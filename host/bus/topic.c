/*
 * topic.c - a worker's topic table (see topic.h): a chained hash table of
 * names, each with an array of member connections; and the reference-counted
 * payload a publish or broadcast shares among the workers.
 */
#include "bus/topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/hash.h"

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

wsh_topic *wsh_topics_find(wsh_topics *t, const char *name) {
  if (!t->nbuckets)
    return NULL;
  wsh_topic *tp = t->buckets[wsh_hash_str(name) % t->nbuckets];
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
      size_t h = wsh_hash_str(tp->name) % n;
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
  size_t h = wsh_hash_str(name) % t->nbuckets;
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
  t->changes++;
  *added = true;
  return tp;
}

static void unlink_topic(wsh_topics *t, wsh_topic *topic) {
  wsh_topic **pp = &t->buckets[wsh_hash_str(topic->name) % t->nbuckets];
  while (*pp && *pp != topic)
    pp = &(*pp)->next;
  if (*pp)
    *pp = topic->next;
  t->n--;
  free(topic->members);
  free(topic);
}

void wsh_topics_leave(wsh_topics *t, wsh_topic *topic, websock_conn *conn) {
  t->changes++;
  for (size_t i = 0; i < topic->n; i++) {
    if (topic->members[i] == conn) {
      topic->members[i] = topic->members[--topic->n];
      break;
    }
  }
  if (topic->n == 0)
    unlink_topic(t, topic);
}

/* ---- the host's subscriber counts ---------------------------------------- */

void wsh_topic_counts_init(wsh_topic_counts *tc) {
  memset(tc, 0, sizeof(*tc));
  pthread_mutex_init(&tc->lock, NULL);
}

void wsh_topic_counts_free(wsh_topic_counts *tc) {
  for (size_t i = 0; i < tc->nbuckets; i++) {
    for (wsh_topic_count *e = tc->buckets[i], *next; e; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(tc->buckets);
  pthread_mutex_destroy(&tc->lock);
  memset(tc, 0, sizeof(*tc));
}

static int counts_rehash(wsh_topic_counts *tc) {
  size_t n = tc->nbuckets ? tc->nbuckets * 2 : 64;
  wsh_topic_count **b = calloc(n, sizeof(*b));
  if (!b)
    return -1;
  for (size_t i = 0; i < tc->nbuckets; i++) {
    for (wsh_topic_count *e = tc->buckets[i], *next; e; e = next) {
      next = e->next;
      size_t h = wsh_hash_str(e->name) % n;
      e->next = b[h];
      b[h] = e;
    }
  }
  free(tc->buckets);
  tc->buckets = b;
  tc->nbuckets = n;
  return 0;
}

/* The entry's link in its chain, or the chain's end (under the lock). */
static wsh_topic_count **counts_slot(wsh_topic_counts *tc, const char *name) {
  wsh_topic_count **pp = &tc->buckets[wsh_hash_str(name) % tc->nbuckets];
  while (*pp && strcmp((*pp)->name, name) != 0)
    pp = &(*pp)->next;
  return pp;
}

int wsh_topic_counts_add(wsh_topic_counts *tc, const char *name, int delta) {
  int rc = 0;
  pthread_mutex_lock(&tc->lock);
  if (delta > 0 && tc->n >= tc->nbuckets && counts_rehash(tc) != 0) {
    rc = WEBSOCK_ENOMEM;
    goto out_unlock;
  }
  if (!tc->nbuckets)
    goto out_unlock; /* a leave with nothing counted */
  wsh_topic_count **pp = counts_slot(tc, name);
  if (delta > 0) {
    if (!*pp) {
      size_t len = strlen(name);
      wsh_topic_count *e = calloc(1, sizeof(*e) + len + 1);
      if (!e) {
        rc = WEBSOCK_ENOMEM;
        goto out_unlock;
      }
      memcpy(e->name, name, len + 1);
      *pp = e;
      tc->n++;
    }
    (*pp)->n++;
    tc->changed = true;
  } else if (*pp && (*pp)->n > 0) {
    tc->changed = true;
    /* At 0, an entry stays until its 0 is reported (if anything was). */
    if (--(*pp)->n == 0 && (*pp)->sent == 0) {
      wsh_topic_count *e = *pp;
      *pp = e->next;
      free(e);
      tc->n--;
    }
  }
out_unlock:
  pthread_mutex_unlock(&tc->lock);
  return rc;
}

size_t wsh_topic_counts_get(wsh_topic_counts *tc, const char *name) {
  size_t n = 0;
  pthread_mutex_lock(&tc->lock);
  if (tc->nbuckets) {
    wsh_topic_count *e = *counts_slot(tc, name);
    n = e ? e->n : 0;
  }
  pthread_mutex_unlock(&tc->lock);
  return n;
}

void wsh_topic_counts_report(wsh_topic_counts *tc, bool all,
                             void (*fn)(void *arg, const char *name, size_t n),
                             void *arg) {
  pthread_mutex_lock(&tc->lock);
  if (!tc->changed && !all)
    goto out_unlock;
  tc->changed = false;
  for (size_t i = 0; i < tc->nbuckets; i++) {
    for (wsh_topic_count **pp = &tc->buckets[i], *e; (e = *pp);) {
      if (e->n != e->sent || (all && e->n > 0)) {
        if (fn)
          fn(arg, e->name, e->n);
        e->sent = e->n;
      }
      if (e->n == 0) {
        *pp = e->next;
        free(e);
        tc->n--;
      } else {
        pp = &e->next;
      }
    }
  }
out_unlock:
  pthread_mutex_unlock(&tc->lock);
}

/* ---- shared payloads ----------------------------------------------------- */

wsh_shared *wsh_shared_new(const char *topic, size_t len) {
  size_t tlen = strlen(topic);
  wsh_shared *sh = malloc(sizeof(*sh) + tlen + 1 + len);
  if (!sh)
    return NULL;
  atomic_init(&sh->refs, 1);
  atomic_init(&sh->zwanted, 0);
  pthread_mutex_init(&sh->zlock, NULL);
  sh->zplain = 0;
  sh->hdr_len = 0;
  memset(sh->zvar, 0, sizeof(sh->zvar));
  memcpy(sh->topic, topic, tlen + 1);
  sh->data = (uint8_t *)sh->topic + tlen + 1;
  sh->len = len;
  return sh;
}

void wsh_shared_ref(wsh_shared *sh) {
  atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
}

void wsh_shared_unref(wsh_shared *sh) {
  if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (size_t i = 0; i < sizeof(sh->zvar) / sizeof(sh->zvar[0]); i++)
    if (sh->zvar[i])
      wsh_shared_unref(sh->zvar[i]);
  pthread_mutex_destroy(&sh->zlock);
  free(sh);
}
