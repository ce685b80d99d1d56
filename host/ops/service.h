/*
 * service.h - running as a system service: readiness, reloading and stopping
 * told to systemd (sd_notify; nothing happens without $NOTIFY_SOCKET), and
 * dropping root for an unprivileged user once the listeners are bound.
 */
#ifndef WSH_SERVICE_H
#define WSH_SERVICE_H

#include <stddef.h>

/* READY=1 with a STATUS line. */
void wsh_service_ready(const char *status);
/* RELOADING=1 (with MONOTONIC_USEC, as systemd 253's notify-reload wants). */
void wsh_service_reloading(void);
/* STOPPING=1. */
void wsh_service_stopping(void);

/* Started as root: switches to `user` (its uid, gid and supplementary
 * groups) for good, first handing it `own_dir` (where plugin copies are
 * made). Not root: only checks that `user` is the current user. Returns 0 or
 * a negative code with err naming the user and the cause. */
int wsh_service_drop_privileges(const char *user, const char *own_dir,
                                char *err, size_t errlen);

#endif
