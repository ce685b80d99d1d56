/*
 * crash.h - what a fatal signal says. A plugin runs in websockd's address
 * space, so a plugin that crashes takes the process down; before it goes,
 * websockd logs which route, plugin and callback were running on the thread
 * that crashed, so the operator knows whom to blame.
 */
#ifndef WSH_CRASH_H
#define WSH_CRASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct wsh_crash_ctx {
  const char *route; /* NULL: not inside a plugin */
  const char *plugin;
  const char *label;    /* its generation's, for websock_log (may be NULL) */
  const char *callback; /* "handle_in", "load", ... */
  uint64_t conn;        /* 0: no connection */
} wsh_crash_ctx;

/* The plugin code running on this thread, if any. Thread-local by nature:
 * the signal handler can only learn it from here. */
extern _Thread_local wsh_crash_ctx wsh_crash_current;

static inline void wsh_crash_enter(const char *route, const char *plugin,
                                   const char *label, const char *callback,
                                   uint64_t conn) {
  wsh_crash_current.plugin = plugin;
  wsh_crash_current.label = label;
  wsh_crash_current.callback = callback;
  wsh_crash_current.conn = conn;
  wsh_crash_current.route = route;
}

static inline void wsh_crash_leave(void) {
  wsh_crash_current.route = NULL;
}

/* Installs the handlers for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT
 * (not in sanitizer builds, whose own reports are better). */
void wsh_crash_install(void);

#endif
