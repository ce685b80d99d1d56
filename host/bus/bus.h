/*
 * bus.h - layer 3, bus: topics and what a publish or a broadcast carries to
 * them (topic.h): each worker's subscribers and the payload shared by all of
 * them, framed once. Connections are opaque here: the bus knows who is
 * subscribed, the network layer delivers (through the workers' mailboxes).
 * Across hosts, the bus core (bus_core.h) hands publishes, broadcasts and
 * sends to an engine (bus_engine.h: Redis in bus_redis.c) and gives what
 * other hosts send back to the host through two callbacks; bus_msg.h is its
 * wire format, channel names and reference strings.
 *
 * May include: libc, libevent, hiredis, pthreads; base/, protocol/,
 * plugins/. Nothing above (in particular not network/: it is given what it
 * needs).
 */
#ifndef WSH_BUS_H
#define WSH_BUS_H

#include "bus/bus_core.h"
#include "bus/bus_msg.h"
#include "bus/topic.h"

#endif
