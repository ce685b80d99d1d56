/*
 * deadlines.h - a worker's deadlines for its open connections (the route's
 * idle timeout and server pings, the idle trim of dedicated deflate
 * streams): one binary min-heap of (due time, slot) and ONE libevent timer,
 * armed for the earliest, instead of a timer event per connection. An entry
 * is named by its connection's websock_ref slot (slots.h). What a slot needs
 * here (its place in the heap, and one word its owner keeps with it) lives
 * in chunks of WSH_SLOT_CHUNK slots, allocated when a slot of that chunk is
 * first used: a worker whose routes set no deadline allocates none.
 *
 * Entries are filed for a time and fired no earlier than it, on the
 * worker's tick (WSH_DEADLINE_TICK_MS): the timer is armed for the earliest
 * due time rounded up to a multiple of the tick, so that deadlines close
 * together are fired by one wake-up. A fired entry is taken out of the heap
 * before its owner is called; the owner files it again if it wants. At most
 * WSH_DEADLINE_BATCH entries are fired per wake-up; the rest follow on the
 * loop's next turn, after the sockets ready meanwhile.
 *
 * Times are the clock's milliseconds (wsh_now_ms); the heap keeps their low
 * 32 bits and compares them modulo 2^32 (every key is within 2^30 ms of
 * now: a time farther away is filed at now + 2^30 and fires early for its
 * owner to file it again). Loop thread only.
 */
#ifndef WSH_DEADLINES_H
#define WSH_DEADLINES_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct event;

#define WSH_DEADLINE_TICK_MS 8u
#define WSH_DEADLINE_BATCH 256u
#define WSH_DEADLINE_HORIZON_MS (1u << 30)

/* A slot's entry is due: it has been taken out of the heap. */
typedef void (*wsh_deadline_fire)(void *arg, uint32_t slot);

typedef struct wsh_deadline {
  uint32_t due; /* ms, low 32 bits, compared modulo 2^32 */
  uint32_t slot;
} wsh_deadline;

/* 16 bytes per slot, in chunks of WSH_SLOT_CHUNK. */
typedef struct wsh_deadline_slot {
  uint64_t word; /* its owner's (conn.c: the next server ping) */
  uint32_t pos;  /* 1 + its index in the heap; 0: not filed */
} wsh_deadline_slot;

typedef struct wsh_deadlines {
  wsh_deadline *heap;
  uint32_t n, cap;
  wsh_deadline_slot **chunks; /* by slot / WSH_SLOT_CHUNK; NULL: unused */
  uint32_t nchunks;
  struct event *timer;
  uint64_t armed_at; /* when the timer fires; UINT64_MAX: not armed */
  wsh_deadline_fire fire;
  void *arg;
} wsh_deadlines;

/* Sets d up on base (its timer), nothing filed. 0 or WEBSOCK_ENOMEM. */
int wsh_deadlines_init(wsh_deadlines *d, struct event_base *base,
                       wsh_deadline_fire fire, void *arg);
void wsh_deadlines_free(wsh_deadlines *d);

/* Files slot for at_ms (moved there if it was filed). 0 or WEBSOCK_ENOMEM
 * (then it is not filed). */
int wsh_deadlines_file(wsh_deadlines *d, uint32_t slot, uint64_t at_ms,
                       uint64_t now_ms);

/* Takes slot out, if filed. */
void wsh_deadlines_unfile(wsh_deadlines *d, uint32_t slot);

/* The word its owner keeps with slot (its chunk allocated on first use);
 * NULL when out of memory. Unchanged by filing, firing and unfiling. */
uint64_t *wsh_deadlines_word(wsh_deadlines *d, uint32_t slot);

/* Fires, earliest first, the entries due at now_ms, at most max of them;
 * returns how many. The timer's callback does this with the clock and
 * WSH_DEADLINE_BATCH, then arms the timer again. */
size_t wsh_deadlines_run(wsh_deadlines *d, uint64_t now_ms, size_t max);

/* Entries filed. */
static inline uint32_t wsh_deadlines_count(const wsh_deadlines *d) {
  return d->n;
}

#endif
