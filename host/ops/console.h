/*
 * console.h - the pages a browser sees: the dev console at a route's path
 * (--devconsole) and /status (--status-page, or --devconsole). Given a plain
 * HTTP request (no Upgrade), the host's settings and whether the path is a
 * route, it decides whether the request is the console's and renders the
 * answer; the HTTP side (network/http.c) asks it through a hook. No I/O here;
 * the pages themselves are embedded in the binary (host/console/console.html
 * and status.html, made C at build time).
 */
#ifndef WSH_CONSOLE_H
#define WSH_CONSOLE_H

#include <stdbool.h>

#include "base/config.h"
#include "protocol/handshake.h"

/* The addresses that may see the pages when console_allow is not set. */
#define WSH_CONSOLE_ALLOW_DEFAULT "127.0.0.0/8, ::1"

typedef struct wsh_console wsh_console;

/* The console's settings from the host config (devconsole, status_page,
 * console_allow, parsed here). Returns 0, or WEBSOCK_EINVAL with err naming
 * the bad item of console_allow, or WEBSOCK_ENOMEM. */
int wsh_console_new(wsh_console **out, const wsh_config *cfg, char *err,
                    size_t errlen);
void wsh_console_free(wsh_console *con);

/* Returns 0 if the request is not the console's (the caller answers it as
 * it would without a console: 426 at a route, 404, ...). Returns 1 when it
 * is: *resp is initialised and filled (200 and the page; 403 for /status to
 * an address console_allow does not name; 405 for another method than GET
 * or HEAD at /status), *why set for the log line (or NULL); the caller
 * renders it and frees it with wsh_response_free. A route's page is only
 * for allowed addresses: to the others the route answers as before (426).
 * A request that a proxy relayed (Forwarded, X-Forwarded-For or X-Real-IP)
 * is never allowed: its address is the proxy's, often loopback. Returns
 * WEBSOCK_ENOMEM if the answer cannot be built. */
int wsh_console_answer(void *console, const websock_request *req, bool route,
                       websock_response *resp, const char **why);

#endif
