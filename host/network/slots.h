/*
 * slots.h - a worker's table of connection slots, behind websock_ref. Only
 * the worker thread adds and removes; any thread may ask whether a slot still
 * holds the connection a reference names (the serial changes on every reuse).
 */
#ifndef WSH_SLOTS_H
#define WSH_SLOTS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "websock.h"

#define WSH_SLOT_CHUNK 4096u
#define WSH_SLOT_CHUNKS 4096u /* 16M slots per worker */

/* 16 bytes per connection: a slot holds its connection while live and the
 * free list's link while free (both read on the worker thread only, after
 * the tag says which). */
typedef struct wsh_slot {
  _Atomic uint64_t tag; /* serial << 1 | live */
  union {
    websock_conn *conn; /* live */
    uint32_t next_free; /* free: index + 1 of the next free slot, 0: none */
  };
} wsh_slot;

typedef struct wsh_slots {
  _Atomic(wsh_slot *) chunks[WSH_SLOT_CHUNKS];
  uint32_t nslots;
  uint32_t free_head; /* index + 1 */
} wsh_slots;

/* A websock_ref's id, packed here and nowhere else: the worker (8 bits),
 * the slot (24 bits: WSH_SLOT_CHUNK * WSH_SLOT_CHUNKS slots) and its serial
 * (32 bits). 0 is never a live connection's id (serials start at 1). */
typedef struct wsh_ref_parts {
  unsigned worker;
  uint32_t slot;
  uint32_t serial;
} wsh_ref_parts;

static inline uint64_t wsh_ref_pack(wsh_ref_parts p) {
  return ((uint64_t)p.worker << 56) | ((uint64_t)(p.slot & 0xFFFFFFu) << 32) |
         p.serial;
}

static inline wsh_ref_parts wsh_ref_unpack(uint64_t id) {
  return (wsh_ref_parts){(unsigned)(id >> 56), (uint32_t)(id >> 32) & 0xFFFFFFu,
                         (uint32_t)id};
}

void wsh_slots_init(wsh_slots *s);
void wsh_slots_free(wsh_slots *s);
/* Worker thread: takes a slot for conn; *slot and *serial name it. */
int wsh_slots_add(wsh_slots *s, websock_conn *conn, uint32_t *slot,
                  uint32_t *serial);
void wsh_slots_remove(wsh_slots *s, uint32_t slot);
/* Worker thread: the live connection a (slot, serial) names, or NULL. */
websock_conn *wsh_slots_get(wsh_slots *s, uint32_t slot, uint32_t serial);
/* Worker thread: the live connection in a slot, or NULL. */
websock_conn *wsh_slots_conn(wsh_slots *s, uint32_t slot);
/* Any thread: does (slot, serial) still name a live connection? */
bool wsh_slots_live(wsh_slots *s, uint32_t slot, uint32_t serial);

#endif
