/*
 * topic.c - a worker's topic table (see topic.h): a chained hash table of
 * names, each with an array of member connections indexed both ways with
 * the connections' own lists of topics (join and leave in O(1)); and the
 * reference-counted payload a publish or broadcast shares among the
 * workers.
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
      free(tp->of);
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

static void unlink_topic(wsh_topics *t, wsh_topic *topic) {
  wsh_topic **pp = &t->buckets[wsh_hash_str(topic->name) % t->nbuckets];
  while (*pp && *pp != topic)
    pp = &(*pp)->next;
  if (*pp)
    *pp = topic->next;
  t->n--;
  free(topic->members);
  free(topic->of);
  free(topic);
}

long wsh_subs_find(const wsh_subs *subs, const wsh_topic *topic,
                   const websock_conn *conn) {
  if (subs->n <= topic->n) {
    for (uint32_t j = 0; j < subs->n; j++)
      if (subs->v[j].topic == topic)
        return (long)j;
  } else {
    for (size_t i = 0; i < topic->n; i++)
      if (topic->members[i] == conn)
        return (long)topic->of[i].slot;
  }
  return -1;
}

/* Room for one more entry in subs and in tp (each grown by doubling; a
 * failed realloc leaves what it did not grow as it was). */
static int make_room(wsh_subs *subs, wsh_topic *tp) {
  if (subs->n == subs->cap) {
    if (subs->cap >= WSH_SUBS_MAX)
      return -1;
    uint32_t cap = subs->cap ? subs->cap * 2 : 2;
    wsh_sub *v = realloc(subs->v, cap * sizeof(*v));
    if (!v)
      return -1;
    subs->v = v;
    subs->cap = cap;
  }
  if (tp->n == tp->cap) {
    if (tp->cap >= UINT32_MAX / 2)
      return -1;
    size_t cap = tp->cap ? tp->cap * 2 : 4;
    websock_conn **m = realloc(tp->members, cap * sizeof(*m));
    if (!m)
      return -1;
    tp->members = m; /* grown: harmless while cap says the old size */
    wsh_member_of *of = realloc(tp->of, cap * sizeof(*of));
    if (!of)
      return -1;
    tp->of = of;
    tp->cap = cap;
  }
  return 0;
}

wsh_topic *wsh_topics_join(wsh_topics *t, const char *name, websock_conn *conn,
                           wsh_subs *subs, bool *added) {
  wsh_topic *tp = wsh_topics_find(t, name);
  *added = false;
  if (tp && wsh_subs_find(subs, tp, conn) >= 0)
    return tp;
  if (!tp && !(tp = create(t, name)))
    return NULL;
  if (make_room(subs, tp) != 0) {
    if (tp->n == 0) /* created for this join */
      unlink_topic(t, tp);
    return NULL;
  }
  tp->members[tp->n] = conn;
  tp->of[tp->n] = (wsh_member_of){.subs = subs, .slot = subs->n};
  subs->v[subs->n++] = (wsh_sub){.topic = tp, .at = (uint32_t)tp->n};
  tp->n++;
  t->changes++;
  *added = true;
  return tp;
}

void wsh_topics_leave(wsh_topics *t, wsh_subs *subs, size_t i) {
  wsh_topic *tp = subs->v[i].topic;
  size_t at = subs->v[i].at;
  t->changes++;
  /* The topic's last member takes conn's place (and learns where it is). */
  size_t last = --tp->n;
  if (at != last) {
    tp->members[at] = tp->members[last];
    tp->of[at] = tp->of[last];
    tp->of[at].subs->v[tp->of[at].slot].at = (uint32_t)at;
  }
  /* The connection's last topic takes tp's place likewise. */
  uint32_t lastj = --subs->n;
  if (i != lastj) {
    subs->v[i] = subs->v[lastj];
    subs->v[i].topic->of[subs->v[i].at].slot = (uint32_t)i;
  }
  if (tp->n == 0)
    unlink_topic(t, tp);
}

void wsh_subs_free(wsh_subs *subs) {
  free(subs->v);
  memset(subs, 0, sizeof(*subs));
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
