/*
 * config.h - host-wide settings: defaults, the host config file (INI, read
 * with inih) and command-line overrides.
 */
#ifndef WSH_CONFIG_H
#define WSH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/tls_conf.h"

typedef struct wsh_config {
  char *config_file; /* --config, or NULL */
  char **listen;     /* "127.0.0.1:8080", "[::1]:8080", "*:8080" */
  size_t nlisten;
  char **listen_proxy; /* listeners whose connections start with a PROXY
                          protocol header */
  size_t nlisten_proxy;
  char *trusted_proxies; /* "127.0.0.1, 10.0.0.0/8": whose X-Forwarded-For
                            is believed (checked by the network layer) */
  char *plugins_dir;     /* plugins.d */
  unsigned workers;      /* 0: one per core */
  size_t max_header_size;
  uint64_t handshake_timeout_ms;
  uint64_t close_timeout_ms;
  uint64_t shutdown_grace_ms;
  uint64_t max_connections;  /* open WebSocket connections; past it: 503 */
  uint64_t slow_callback_ms; /* a plugin callback this slow is logged */
  /* A worker about to sleep polls its sockets first, for a window that
   * adapts between 0 and this (µs; 0: never polls): network/loop.c. */
  uint64_t busy_poll_us;
  /* A broadcast's sends go to the kernel many per system call through
   * io_uring where it allows (network/sendq.h); 0: a send() each. */
  int io_uring;
  char *user; /* started as root: run as this user once bound */
  /* Host-wide budget for buffered bytes (partial incoming messages, stashed
   * input, queued output): from 90 % of it new upgrades get 503; past it
   * the largest holders are closed with 1013. */
  uint64_t max_buffered_memory;
  int log_level;
  /* Topics and messages across hosts (issue 15): the Redis to meet the
   * other hosts at ("HOST:PORT", "[V6]:PORT", "HOST" or a unix socket
   * path; NULL: this host alone), its AUTH password and the prefix of every
   * channel name (several deployments on one Redis). */
  char *redis;
  char *redis_password;
  char *redis_prefix;
  int log_format;      /* WSH_LOG_TEXT or WSH_LOG_JSON */
  int log_connections; /* a line per closed connection (info) */
  int check_only;      /* -t */
  int watch;           /* --watch: reload when plugins.d or a plugin changes */
  int devconsole;      /* a route's plain GET gets the dev console */
  int status_page;     /* /status (also served with devconsole) */
  char *console_allow; /* who may see them (checked by ops/console.c) */
  wsh_tls_conf tls;    /* listen_tls, tls_* and [tls "LABEL"] (TLS on when
                          tls.nlisten > 0) */
} wsh_config;

#define WSH_DEFAULT_LISTEN "127.0.0.1:8080"
#define WSH_DEFAULT_MAX_BUFFERED ((uint64_t)1 << 30) /* 1 GiB */
#define WSH_DEFAULT_BUSY_POLL_US 20
#define WSH_MAX_BUSY_POLL_US 1000

void wsh_config_init(wsh_config *c);
void wsh_config_free(wsh_config *c);

/* Applies the command line (and the --config file it names, whose settings
 * the other flags override). Returns 0 to run, 1 when --help or --version was
 * printed (exit 0), or a negative code with err set (exit 2). */
int wsh_config_from_args(wsh_config *c, int argc, char **argv, char *err,
                         size_t errlen);

/* Reads a host config file ([server] section, [tls "LABEL"] sections). */
int wsh_config_load_file(wsh_config *c, const char *file, char *err,
                         size_t errlen);

/* Parses "HOST:PORT", "[V6]:PORT" or "*:PORT" into a socket address. */
int wsh_parse_listen(const char *spec, struct sockaddr_storage *addr,
                     socklen_t *len);

/* Formats a socket address as "1.2.3.4:5" or "[::1]:5". */
void wsh_format_addr(const struct sockaddr *sa, char *out, size_t outlen);

/* Fills in what the defaults leave open (workers = cores, a listen address)
 * and checks every value. Returns 0 or a negative code with err set. */
int wsh_config_finish(wsh_config *c, char *err, size_t errlen);

#endif
