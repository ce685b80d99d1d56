/*
 * metrics.h - GET /metrics: the server's counters in the Prometheus text
 * format.
 */
#ifndef WSH_METRICS_H
#define WSH_METRICS_H

typedef struct wsh_server wsh_server;

/* Renders every metric into a malloc'd NUL-terminated string. Any thread. */
int wsh_metrics_render(wsh_server *srv, char **out);

#endif
