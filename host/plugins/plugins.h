/*
 * plugins.h - layer 2, plugins: the plugin contract and what serves it,
 * without a socket in sight: the contract's pure rules, shared with the
 * SDK's test library (contract.h), loading and checking a .so (plugin.h),
 * route files (route.h), and the routes' generations with their reload
 * (registry.h).
 *
 * May include: libc, libdl, libcrypto; base/, protocol/. Nothing above.
 */
#ifndef WSH_PLUGINS_H
#define WSH_PLUGINS_H

#include "plugins/contract.h"
#include "plugins/plugin.h"
#include "plugins/registry.h"
#include "plugins/route.h"

#endif
