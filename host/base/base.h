/*
 * base.h - layer 0, base: what every layer of the host uses and that knows
 * nothing of WebSockets: one-line logging (log.h), the record of the plugin
 * callback running and the crash line it leaves (crash.h), the host's
 * settings from the command line and the config file (config.h; the TLS
 * ones in tls_conf.h), INI
 * reading shared with route files (inifile.h), the clock (timeutil.h),
 * the string hash of the host's tables (hash.h), how the host uses
 * malloc (heap.h) and copies payloads (copy.h).
 *
 * May include: libc, inih. Nothing else of host/.
 */
#ifndef WSH_BASE_H
#define WSH_BASE_H

#include "base/config.h"
#include "base/copy.h"
#include "base/crash.h"
#include "base/hash.h"
#include "base/heap.h"
#include "base/inifile.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "base/tls_conf.h"

#endif
