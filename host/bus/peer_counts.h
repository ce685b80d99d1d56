/*
 * peer_counts.h - the subscriber counts other hosts announce on the bus's
 * control channel (bus_msg.h, kind counts), kept per topic and host for
 * websock_topic_subscribers_all(). A host's count of a topic is forgotten
 * when it announces 0 or when it has not announced that topic for the
 * expiry (a host that died, or a 0 that was lost). Bounded: at most so many
 * (topic, host) entries in all, so many per host, and so many hosts; what
 * does not fit is dropped and counted, never grown. Any thread, under the
 * table's own lock; times are CLOCK_MONOTONIC milliseconds.
 */
#ifndef WSH_PEER_COUNTS_H
#define WSH_PEER_COUNTS_H

#include <stddef.h>
#include <stdint.h>

typedef struct wsh_peer_counts wsh_peer_counts;

typedef struct wsh_peer_limits {
  size_t entries_max;  /* (topic, host) entries in all; 0: 32768 */
  size_t per_host_max; /* entries of one host; 0: 8192 */
  size_t hosts_max;    /* hosts with an entry; 0: 256 */
  unsigned expiry_ms;  /* unannounced this long: forgotten; 0: 10000 */
} wsh_peer_limits;

/* NULL when out of memory. */
wsh_peer_counts *wsh_peer_counts_new(const wsh_peer_limits *lim);
void wsh_peer_counts_free(wsh_peer_counts *pc);

/* Applies the counts payload data[0..len) (checked already by
 * wsh_bus_msg_decode) that host (not 0) announced at now. Returns how many
 * of its entries did not fit (dropped). */
size_t wsh_peer_counts_apply(wsh_peer_counts *pc, uint64_t host,
                             const uint8_t *data, size_t len, double now);
/* The sum of the live counts of topic[0..len) over every host. */
int64_t wsh_peer_counts_sum(wsh_peer_counts *pc, const char *topic, size_t len,
                            double now);
/* Forgets every entry older than the expiry (memory only: sums skip them
 * already). */
void wsh_peer_counts_expire(wsh_peer_counts *pc, double now);
/* Entries kept now, and hosts with at least one. */
size_t wsh_peer_counts_entries(wsh_peer_counts *pc, size_t *hosts);

#endif
