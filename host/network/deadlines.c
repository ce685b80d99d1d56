/*
 * deadlines.c - a worker's connection deadlines: a binary min-heap of
 * (due, slot) and one libevent timer armed for the earliest (see
 * deadlines.h).
 */
#include "network/deadlines.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "base/timeutil.h"
#include "network/slots.h"
#include "websock.h"

/* a before b, modulo 2^32 (keys are within 2^31 of each other) */
static inline bool before(uint32_t a, uint32_t b) {
  return (int32_t)(a - b) < 0;
}

/* slot's entry, its chunk allocated if alloc; NULL if there is none */
static wsh_deadline_slot *side(wsh_deadlines *d, uint32_t slot, bool alloc) {
  uint32_t c = slot / WSH_SLOT_CHUNK;
  if (c >= d->nchunks || !d->chunks[c]) {
    if (!alloc)
      return NULL;
    if (c >= d->nchunks) {
      wsh_deadline_slot **t = realloc(d->chunks, (c + 1) * sizeof(*t));
      if (!t)
        return NULL;
      memset(t + d->nchunks, 0, (c + 1 - d->nchunks) * sizeof(*t));
      d->chunks = t;
      d->nchunks = c + 1;
    }
    d->chunks[c] = calloc(WSH_SLOT_CHUNK, sizeof(**d->chunks));
    if (!d->chunks[c])
      return NULL;
  }
  return &d->chunks[c][slot % WSH_SLOT_CHUNK];
}

static inline void put(wsh_deadlines *d, uint32_t i, wsh_deadline e) {
  d->heap[i] = e;
  d->chunks[e.slot / WSH_SLOT_CHUNK][e.slot % WSH_SLOT_CHUNK].pos = i + 1;
}

static void sift_up(wsh_deadlines *d, uint32_t i) {
  wsh_deadline e = d->heap[i];
  while (i > 0) {
    uint32_t p = (i - 1) / 2;
    if (!before(e.due, d->heap[p].due))
      break;
    put(d, i, d->heap[p]);
    i = p;
  }
  put(d, i, e);
}

static void sift_down(wsh_deadlines *d, uint32_t i) {
  wsh_deadline e = d->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= d->n)
      break;
    if (c + 1 < d->n && before(d->heap[c + 1].due, d->heap[c].due))
      c++;
    if (!before(d->heap[c].due, e.due))
      break;
    put(d, i, d->heap[c]);
    i = c;
  }
  put(d, i, e);
}

/* the entry at i moved (its key changed, or another took its place) */
static void resift(wsh_deadlines *d, uint32_t i) {
  if (i > 0 && before(d->heap[i].due, d->heap[(i - 1) / 2].due))
    sift_up(d, i);
  else
    sift_down(d, i);
}

static void remove_at(wsh_deadlines *d, uint32_t i) {
  uint32_t slot = d->heap[i].slot;
  d->chunks[slot / WSH_SLOT_CHUNK][slot % WSH_SLOT_CHUNK].pos = 0;
  if (i != --d->n) {
    d->heap[i] = d->heap[d->n];
    resift(d, i);
  }
  if (d->cap > 64 && d->n < d->cap / 4) { /* most closed: give it back */
    wsh_deadline *h = realloc(d->heap, d->cap / 2 * sizeof(*h));
    if (h) {
      d->heap = h;
      d->cap /= 2;
    }
  }
}

/* The timer fires at the earliest due time rounded up to the tick (at once
 * if it is past); armed again only if that is sooner than it is armed for
 * (a wake-up with nothing due arms it for what is then first). */
static void arm(wsh_deadlines *d, uint64_t now) {
  if (!d->n)
    return;
  int32_t in = (int32_t)(d->heap[0].due - (uint32_t)now);
  uint64_t at = now;
  if (in > 0) {
    at = now + (uint64_t)in;
    at += WSH_DEADLINE_TICK_MS - 1 -
          (at + WSH_DEADLINE_TICK_MS - 1) % WSH_DEADLINE_TICK_MS;
  }
  if (at >= d->armed_at)
    return;
  struct timeval tv = wsh_timeval_ms(at - now);
  if (evtimer_add(d->timer, &tv) == 0)
    d->armed_at = at;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
  wsh_deadlines *d = arg;
  (void)fd;
  (void)what;
  d->armed_at = UINT64_MAX;
  wsh_deadlines_run(d, wsh_now_ms(), WSH_DEADLINE_BATCH);
  arm(d, wsh_now_ms());
}

int wsh_deadlines_init(wsh_deadlines *d, struct event_base *base,
                       wsh_deadline_fire fire, void *arg) {
  memset(d, 0, sizeof(*d));
  d->armed_at = UINT64_MAX;
  d->fire = fire;
  d->arg = arg;
  d->timer = evtimer_new(base, on_timer, d);
  return d->timer ? 0 : WEBSOCK_ENOMEM;
}

void wsh_deadlines_free(wsh_deadlines *d) {
  if (d->timer)
    event_free(d->timer);
  for (uint32_t c = 0; c < d->nchunks; c++)
    free(d->chunks[c]);
  free(d->chunks);
  free(d->heap);
  memset(d, 0, sizeof(*d));
}

int wsh_deadlines_file(wsh_deadlines *d, uint32_t slot, uint64_t at_ms,
                       uint64_t now_ms) {
  if (at_ms > now_ms && at_ms - now_ms > WSH_DEADLINE_HORIZON_MS)
    at_ms = now_ms + WSH_DEADLINE_HORIZON_MS; /* fires early, filed again */
  wsh_deadline_slot *s = side(d, slot, true);
  if (!s)
    return WEBSOCK_ENOMEM;
  if (s->pos) {
    d->heap[s->pos - 1].due = (uint32_t)at_ms;
    resift(d, s->pos - 1);
  } else {
    if (d->n == d->cap) {
      uint32_t cap = d->cap ? d->cap * 2 : 64;
      wsh_deadline *h = realloc(d->heap, cap * sizeof(*h));
      if (!h)
        return WEBSOCK_ENOMEM;
      d->heap = h;
      d->cap = cap;
    }
    d->heap[d->n++] = (wsh_deadline){(uint32_t)at_ms, slot};
    sift_up(d, d->n - 1);
  }
  arm(d, now_ms);
  return 0;
}

void wsh_deadlines_unfile(wsh_deadlines *d, uint32_t slot) {
  wsh_deadline_slot *s = side(d, slot, false);
  if (s && s->pos)
    remove_at(d, s->pos - 1);
}

uint64_t *wsh_deadlines_word(wsh_deadlines *d, uint32_t slot) {
  wsh_deadline_slot *s = side(d, slot, true);
  return s ? &s->word : NULL;
}

size_t wsh_deadlines_run(wsh_deadlines *d, uint64_t now_ms, size_t max) {
  size_t fired = 0;
  while (d->n && fired < max && !before((uint32_t)now_ms, d->heap[0].due)) {
    uint32_t slot = d->heap[0].slot;
    remove_at(d, 0);
    d->fire(d->arg, slot);
    fired++;
  }
  return fired;
}
