/*
 * bus.h - layer 3, bus: topics and what a publish or a broadcast carries to
 * them (topic.h): each worker's subscribers and the payload shared by all of
 * them, framed once. Connections are opaque here: the bus knows who is
 * subscribed, the network layer delivers (through the workers' mailboxes).
 * A cross-host backend (Redis) will live here, handing what it receives to
 * the workers through the same mailboxes.
 *
 * May include: libc; base/, protocol/, plugins/. Nothing above (in
 * particular not network/: it is given what it needs).
 */
#ifndef WSH_BUS_H
#define WSH_BUS_H

#include "bus/topic.h"

#endif
