/*
 * ops.h - layer 5, operations: running websockd and seeing it run. The
 * entry point that puts the layers together (main.c), the Prometheus page
 * (metrics.h), the service manager and privileges (service.h). Reads every
 * layer below; none of them includes this one.
 *
 * May include: everything (libsystemd too), read-only.
 */
#ifndef WSH_OPS_H
#define WSH_OPS_H

#include "ops/metrics.h"
#include "ops/service.h"

#endif
