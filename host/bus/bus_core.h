/*
 * bus_core.h - topics and messages between hosts. The host tells its bus when a
 * topic gains its first local subscriber and loses its last one, hands it
 * every publish, broadcast and send meant for other hosts, and gets back,
 * through two callbacks, what other hosts publish to its topics and send to
 * its connections. Local delivery stays the host's job: the bus never hands
 * a host its own messages back.
 *
 * Behind the bus is an engine (bus_engine.h): "local" (one host; nothing
 * leaves it, every call returns at once) or "redis" (Redis pub/sub through
 * hiredis). Delivery is at most once, in publishing order per publishing
 * host and topic.
 *
 * Threads: the publishing and subscribing calls below are made from any
 * thread (the workers). They copy what they are given into a bounded queue
 * and wake the bus's loop, the event_base the host gives it, which does all
 * the I/O and runs the callbacks. A full queue or a bus without a connection
 * drops the message and counts it; memory never grows without bound.
 */
#ifndef WSH_BUS_CORE_H
#define WSH_BUS_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus_msg.h"
#include "bus/topic.h"

struct event_base;
typedef struct wsh_bus wsh_bus;

/* The host's side: called on the bus loop's thread. m and everything it
 * points to are valid for the call only; m->topic is NUL-terminated. */
typedef struct wsh_bus_callbacks {
  void *arg;
  /* Another host published (m->kind WSH_BUS_PUBLISH: data for
   * handle_info) or broadcast (WSH_BUS_BROADCAST: one message of
   * m->opcode) to a topic this host has subscribers of. */
  void (*on_remote_publish)(void *arg, const wsh_bus_msg *m);
  /* Another host sent data to this host's connection m->to. Returns 0, or
   * nonzero when no such connection lives here any more (counted). */
  int (*on_remote_send)(void *arg, const wsh_bus_msg *m);
} wsh_bus_callbacks;

typedef struct wsh_bus_config {
  const char *redis;         /* NULL or "": local; else a wsh_bus_addr string */
  const char *password;      /* Redis AUTH, or NULL */
  const char *prefix;        /* channel prefix (at most 64 bytes), or NULL */
  uint64_t host_id;          /* this host's id; 0: random at each start */
  size_t queue_max;          /* messages waiting for the loop; 0: 65536 */
  size_t queue_max_bytes;    /* their bytes; 0: 64 MiB */
  size_t inflight_max_bytes; /* handed to Redis, not yet answered; 0: 16 MiB */
  unsigned backoff_min_ms;   /* first reconnect delay; 0: 100 */
  unsigned backoff_max_ms;   /* cap of the doubling; 0: 5000 */
  unsigned connect_timeout_ms; /* per attempt; 0: 2000 */
  unsigned health_interval_ms; /* a PING this often while up; 0: 1000 */
  unsigned health_timeout_ms;  /* unanswered this long: lost; 0: 3000 */
  /* Subscriber counts across hosts: the host's table, whose changes the
   * bus announces on the control channel (NULL: none announced), at most
   * once a tick, every topic again each refresh; other hosts' counts are
   * forgotten after the expiry and kept within the limits (peer_counts.h:
   * 0 fields take its defaults). */
  wsh_topic_counts *counts;
  unsigned count_tick_ms;    /* 0: 1000 */
  unsigned count_refresh_ms; /* 0: 3000 */
  unsigned count_expiry_ms;  /* 0: 10000 */
  size_t count_entries_max, count_per_host_max, count_hosts_max;
} wsh_bus_config;

/* Counters, read from any thread. */
typedef struct wsh_bus_stats {
  unsigned long long connected;       /* 1 while the engine is up */
  unsigned long long published;       /* messages handed to the engine */
  unsigned long long received;        /* messages from other hosts delivered */
  unsigned long long dropped;         /* queue full, engine down, over budget */
  unsigned long long reconnects;      /* up again after being lost */
  unsigned long long channels;        /* channels subscribed now */
  unsigned long long send_unknown;    /* sends that no host took */
  unsigned long long send_gone;       /* sends here to a connection gone */
  unsigned long long own;             /* own copies coming back, dropped */
  unsigned long long invalid;         /* undecodable or misrouted messages */
  unsigned long long queued;          /* messages waiting for the loop now */
  unsigned long long counts_sent;     /* counts announcements published */
  unsigned long long counts_received; /* other hosts' announcements taken */
  unsigned long long counts_dropped;  /* their entries over the limits */
  unsigned long long counts_entries;  /* (topic, host) counts kept now */
  unsigned long long counts_hosts;    /* other hosts with a count kept */
} wsh_bus_stats;

/* Creates the bus of cfg (all of it copied) on base (which may be NULL for
 * the local engine), delivering through cb. The Redis engine starts
 * connecting once base runs; Redis being down is not an error here. Call on
 * base's thread or before base runs. Returns 0, WEBSOCK_EINVAL (bad address
 * or prefix, no base) or WEBSOCK_ENOMEM. */
int wsh_bus_new(wsh_bus **out, const wsh_bus_config *cfg,
                struct event_base *base, const wsh_bus_callbacks *cb);
/* Closes and frees the bus. Call once no thread calls it any more, on
 * base's thread or when base no longer runs. */
void wsh_bus_free(wsh_bus *bus);

/* "local" or "redis". */
const char *wsh_bus_engine_name(const wsh_bus *bus);
/* This host's id on the bus (what a reference string starts with). */
uint64_t wsh_bus_host_id(const wsh_bus *bus);
void wsh_bus_stats_get(wsh_bus *bus, wsh_bus_stats *st);

/* Any thread. The host's count of local subscribers of topic went from 0
 * to 1 (joined) or from 1 to 0 (left). Calls nest: each worker may call
 * for its own subscribers; the bus subscribes to the topic's channel while
 * joined outnumbers left. Returns 0, WEBSOCK_EINVAL or WEBSOCK_ENOMEM. */
int wsh_bus_topic_joined(wsh_bus *bus, const char *topic);
int wsh_bus_topic_left(wsh_bus *bus, const char *topic);

/* Any thread: hands a publish (kind WSH_BUS_PUBLISH, opcode 0) or a
 * broadcast (WSH_BUS_BROADCAST, opcode WEBSOCK_OP_TEXT or _BINARY) of
 * data[0..len) (copied) to the other hosts. Returns 0 when queued or
 * dropped (counted: delivery is at most once), WEBSOCK_EINVAL or
 * WEBSOCK_ENOMEM. */
int wsh_bus_publish(wsh_bus *bus, const char *topic, int kind, int opcode,
                    const void *data, size_t len);
/* Any thread: data[0..len) (copied) for connection to on host to->host.
 * Returns 0 when queued or dropped (a host that is gone is counted once the
 * engine knows), WEBSOCK_EINVAL (to->host is this host or 0) or
 * WEBSOCK_ENOMEM. */
int wsh_bus_send_to(wsh_bus *bus, const wsh_bus_ref *to, const void *data,
                    size_t len);

/* Any thread, cheap (one lock, one lookup): the subscribers of topic on
 * every other host, as they last announced them (forgotten after the
 * expiry); 0 for the local engine. */
int64_t wsh_bus_topic_others(wsh_bus *bus, const char *topic);

#endif
