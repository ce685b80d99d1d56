/*
 * slots.c - connection slots for websock_ref (see slots.h). Chunks are never
 * moved or freed while the worker runs, so other threads can read a slot's
 * tag without a lock.
 */
#include "network/slots.h"

#include <stdlib.h>
#include <string.h>

void wsh_slots_init(wsh_slots *s) {
  for (uint32_t i = 0; i < WSH_SLOT_CHUNKS; i++)
    atomic_init(&s->chunks[i], NULL);
  s->nslots = 0;
  s->free_head = 0;
}

void wsh_slots_free(wsh_slots *s) {
  for (uint32_t i = 0; i < WSH_SLOT_CHUNKS; i++)
    free(atomic_load(&s->chunks[i]));
  wsh_slots_init(s);
}

static wsh_slot *slot_at(wsh_slots *s, uint32_t i) {
  if (i / WSH_SLOT_CHUNK >= WSH_SLOT_CHUNKS)
    return NULL;
  wsh_slot *chunk = atomic_load_explicit(&s->chunks[i / WSH_SLOT_CHUNK],
                                         memory_order_acquire);
  return chunk ? &chunk[i % WSH_SLOT_CHUNK] : NULL;
}

static int grow(wsh_slots *s) {
  uint32_t c = s->nslots / WSH_SLOT_CHUNK;
  if (c >= WSH_SLOT_CHUNKS)
    return WEBSOCK_ENOMEM;
  wsh_slot *chunk = calloc(WSH_SLOT_CHUNK, sizeof(*chunk));
  if (!chunk)
    return WEBSOCK_ENOMEM;
  for (uint32_t i = 0; i < WSH_SLOT_CHUNK; i++)
    atomic_init(&chunk[i].tag, 0);
  atomic_store_explicit(&s->chunks[c], chunk, memory_order_release);
  return 0;
}

int wsh_slots_add(wsh_slots *s, websock_conn *conn, uint32_t *slot,
                  uint32_t *serial) {
  uint32_t i;
  if (s->free_head) {
    i = s->free_head - 1;
    s->free_head = slot_at(s, i)->next_free;
  } else {
    if (s->nslots % WSH_SLOT_CHUNK == 0 && grow(s) != 0)
      return WEBSOCK_ENOMEM;
    i = s->nslots++;
  }
  wsh_slot *sl = slot_at(s, i);
  uint32_t next = (uint32_t)(atomic_load(&sl->tag) >> 1) + 1;
  if (next == 0)
    next = 1;
  sl->conn = conn;
  atomic_store_explicit(&sl->tag, ((uint64_t)next << 1) | 1,
                        memory_order_release);
  *slot = i;
  *serial = next;
  return 0;
}

void wsh_slots_remove(wsh_slots *s, uint32_t i) {
  wsh_slot *sl = slot_at(s, i);
  if (!sl)
    return;
  uint64_t tag = atomic_load(&sl->tag);
  atomic_store_explicit(&sl->tag, tag & ~(uint64_t)1, memory_order_release);
  sl->next_free = s->free_head;
  s->free_head = i + 1;
}

websock_conn *wsh_slots_get(wsh_slots *s, uint32_t i, uint32_t serial) {
  wsh_slot *sl = slot_at(s, i);
  if (!sl || atomic_load(&sl->tag) != (((uint64_t)serial << 1) | 1))
    return NULL;
  return sl->conn;
}

websock_conn *wsh_slots_conn(wsh_slots *s, uint32_t i) {
  wsh_slot *sl = slot_at(s, i);
  return sl && (atomic_load(&sl->tag) & 1) ? sl->conn : NULL;
}

bool wsh_slots_live(wsh_slots *s, uint32_t i, uint32_t serial) {
  wsh_slot *sl = slot_at(s, i);
  return sl && atomic_load_explicit(&sl->tag, memory_order_acquire) ==
                   (((uint64_t)serial << 1) | 1);
}
