/*
 * bus_engine.h - what an engine behind the bus (bus_core.h) provides and what
 * it may call back. An engine moves opaque bytes over named channels: it
 * connects, subscribes and unsubscribes channels (acknowledged later),
 * publishes, and reports what arrives. The bus (bus_core.c) keeps everything
 * else: which channels the host needs, sequence numbers, encoding, own
 * copies, the queue from the workers and the counters. Everything here runs
 * on the bus loop's thread. A new engine (NATS, say) is one more file and
 * one more branch in wsh_bus_new, and nothing in the connection code.
 */
#ifndef WSH_BUS_ENGINE_H
#define WSH_BUS_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus_core.h"

struct event_base;

typedef struct wsh_bus_engine {
  const char *name;
  /* Creates the engine's state (*state) and starts connecting on base.
   * Returns 0, WEBSOCK_EINVAL or WEBSOCK_ENOMEM. */
  int (*start)(wsh_bus *bus, const wsh_bus_config *cfg, struct event_base *base,
               void **state);
  /* Closes every connection and frees state; reports nothing back. */
  void (*stop)(void *state);
  /* Asks to (un)subscribe a channel; the engine answers later with
   * wsh_bus_engine_acked. Returns 0, or nonzero if it cannot ask now (not
   * connected): the bus asks again after wsh_bus_engine_up. */
  int (*subscribe)(void *state, const char *channel, size_t len);
  int (*unsubscribe)(void *state, const char *channel, size_t len);
  /* Publishes msg[0..len) (copied) to channel. direct: a host's channel,
   * whose lack of any receiver the engine reports with
   * wsh_bus_engine_unknown_host. Returns 0, or nonzero when it dropped the
   * message (not connected, over its in-flight budget). */
  int (*publish)(void *state, const char *channel, size_t channel_len,
                 const uint8_t *msg, size_t len, bool direct);
} wsh_bus_engine;

extern const wsh_bus_engine wsh_bus_engine_redis;

/* The engine is connected (again) and can subscribe: the bus subscribes
 * every channel it needs. */
void wsh_bus_engine_up(wsh_bus *bus);
/* The engine lost its connection: every subscription is gone. */
void wsh_bus_engine_down(wsh_bus *bus);
/* The channel's subscription (subscribed true) or unsubscription is done. */
void wsh_bus_engine_acked(wsh_bus *bus, const char *channel, size_t len,
                          bool subscribed);
/* A message arrived on a channel this engine subscribes to. */
void wsh_bus_engine_received(wsh_bus *bus, const char *channel, size_t len,
                             const uint8_t *msg, size_t msg_len);
/* A direct publish reached no host. */
void wsh_bus_engine_unknown_host(wsh_bus *bus);
/* The engine dropped n messages after accepting them (an error reply). */
void wsh_bus_engine_dropped(wsh_bus *bus, unsigned n);

#endif
