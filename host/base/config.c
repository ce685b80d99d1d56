/*
 * config.c - host settings: built-in defaults, then the --config file
 * ([server] section, inih), then the command line.
 */
#include "base/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/inifile.h"
#include "websock.h"

void wsh_config_init(wsh_config *c) {
  memset(c, 0, sizeof(*c));
  c->plugins_dir = strdup("plugins.d");
  c->max_header_size = 8192;
  c->handshake_timeout_ms = 10000;
  c->close_timeout_ms = 5000;
  c->shutdown_grace_ms = 10000;
  c->max_connections = 10000;
  c->slow_callback_ms = 100;
  c->busy_poll_us = WSH_DEFAULT_BUSY_POLL_US;
  c->io_uring = 1;
  c->max_buffered_memory = WSH_DEFAULT_MAX_BUFFERED;
  c->log_level = WSH_LOG_INFO;
  wsh_tls_conf_init(&c->tls);
  c->log_connections = 1;
}

static void free_list(char ***list, size_t *n) {
  for (size_t i = 0; i < *n; i++)
    free((*list)[i]);
  free(*list);
  *list = NULL;
  *n = 0;
}

static void free_listen(wsh_config *c) {
  free_list(&c->listen, &c->nlisten);
}

void wsh_config_free(wsh_config *c) {
  free_listen(c);
  free_list(&c->listen_proxy, &c->nlisten_proxy);
  free(c->trusted_proxies);
  free(c->plugins_dir);
  free(c->config_file);
  free(c->user);
  free(c->redis);
  free(c->redis_password);
  free(c->redis_prefix);
  wsh_tls_conf_free(&c->tls);
  free(c->console_allow);
  memset(c, 0, sizeof(*c));
}

static int add_to_list(char ***list, size_t *n, const char *spec) {
  char **l = realloc(*list, (*n + 1) * sizeof(char *));
  if (!l)
    return WEBSOCK_ENOMEM;
  *list = l;
  if (!(l[*n] = strdup(spec)))
    return WEBSOCK_ENOMEM;
  (*n)++;
  return 0;
}

static int add_listen(wsh_config *c, const char *spec) {
  return add_to_list(&c->listen, &c->nlisten, spec);
}

static int set_string(char **dst, const char *value) {
  char *v = strdup(value);
  if (!v)
    return WEBSOCK_ENOMEM;
  free(*dst);
  *dst = v;
  return 0;
}

/* "on" or "off" (also yes/no, true/false, 1/0). Returns 0 or -1. */
static int parse_on_off(const char *value, int *out) {
  static const char *const on[] = {"on", "yes", "true", "1"}, *const off[] = {
                                                                  "off", "no",
                                                                  "false", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcmp(value, on[i]) == 0 || strcmp(value, off[i]) == 0) {
      *out = strcmp(value, on[i]) == 0;
      return 0;
    }
  }
  return -1;
}

/* One setting, from the config file or the command line. */
static int set_key(wsh_config *c, const char *key, const char *value, char *err,
                   size_t errlen) {
  uint64_t v = 0;
  int bad = 0;
  int rc = wsh_tls_conf_set(&c->tls, "server", key, value, err, errlen);
  if (rc != WEBSOCK_ENOENT) /* a TLS setting (or a bad one) */
    return rc;
  if (strcmp(key, "listen") == 0)
    return add_listen(c, value);
  if (strcmp(key, "listen_proxy") == 0)
    return add_to_list(&c->listen_proxy, &c->nlisten_proxy, value);
  if (strcmp(key, "trusted_proxies") == 0)
    return set_string(&c->trusted_proxies, value);
  if (strcmp(key, "plugins") == 0)
    return set_string(&c->plugins_dir, value);
  if (strcmp(key, "user") == 0)
    return set_string(&c->user, value);
  if (strcmp(key, "redis") == 0)
    return set_string(&c->redis, value);
  if (strcmp(key, "redis_password") == 0)
    return set_string(&c->redis_password, value);
  if (strcmp(key, "redis_prefix") == 0) {
    if (strlen(value) > 64) {
      snprintf(err, errlen, "redis_prefix: longer than 64 bytes");
      return WEBSOCK_EINVAL;
    }
    return set_string(&c->redis_prefix, value);
  }
  if (strcmp(key, "console_allow") == 0)
    return set_string(&c->console_allow, value);
  if (strcmp(key, "log_level") == 0) {
    if ((c->log_level = wsh_log_parse_level(value)) < 0)
      bad = 1;
  } else if (strcmp(key, "log_format") == 0) {
    bad = (c->log_format = wsh_log_parse_format(value)) < 0;
  } else if (strcmp(key, "log_connections") == 0) {
    bad = strcmp(value, "on") != 0 && strcmp(value, "off") != 0;
    c->log_connections = strcmp(value, "on") == 0;
  } else if (strcmp(key, "workers") == 0) {
    bad = wsh_parse_u64(value, &v) || v > 256;
    c->workers = (unsigned)v;
  } else if (strcmp(key, "max_header_size") == 0) {
    bad = wsh_parse_size(value, &v) || v < 256 || v > (1u << 20);
    c->max_header_size = (size_t)v;
  } else if (strcmp(key, "handshake_timeout_ms") == 0) {
    bad = wsh_parse_u64(value, &c->handshake_timeout_ms) ||
          !c->handshake_timeout_ms;
  } else if (strcmp(key, "close_timeout_ms") == 0) {
    bad = wsh_parse_u64(value, &c->close_timeout_ms) || !c->close_timeout_ms;
  } else if (strcmp(key, "max_connections") == 0) {
    bad = wsh_parse_u64(value, &c->max_connections) || !c->max_connections;
  } else if (strcmp(key, "slow_callback_ms") == 0) {
    bad = wsh_parse_u64(value, &c->slow_callback_ms) || !c->slow_callback_ms;
  } else if (strcmp(key, "busy_poll_us") == 0) {
    bad = wsh_parse_u64(value, &c->busy_poll_us) ||
          c->busy_poll_us > WSH_MAX_BUSY_POLL_US;
  } else if (strcmp(key, "io_uring") == 0) {
    bad = parse_on_off(value, &c->io_uring);
  } else if (strcmp(key, "max_buffered_memory") == 0) {
    bad = wsh_parse_size(value, &c->max_buffered_memory) ||
          c->max_buffered_memory < (1u << 20);
  } else if (strcmp(key, "shutdown_grace_ms") == 0) {
    bad = wsh_parse_u64(value, &c->shutdown_grace_ms);
  } else if (strcmp(key, "devconsole") == 0) {
    bad = parse_on_off(value, &c->devconsole);
  } else if (strcmp(key, "status_page") == 0) {
    bad = parse_on_off(value, &c->status_page);
  } else {
    snprintf(err, errlen, "unknown setting \"%s\"", key);
    return WEBSOCK_EINVAL;
  }
  if (bad) {
    snprintf(err, errlen, "%s: invalid value \"%s\"", key, value);
    return WEBSOCK_EINVAL;
  }
  return 0;
}

typedef struct file_parse {
  wsh_config *c;
  wsh_ini_errors e;
} file_parse;

static int on_ini(void *user, const char *section, const char *name,
                  const char *value) {
  file_parse *p = user;
  if (p->e.failed)
    return 0;
  char why[sizeof(p->e.what)];
  if (wsh_tls_conf_is_section(section)) {
    if (wsh_tls_conf_set(&p->c->tls, section, name, value, why, sizeof(why)) !=
        0)
      return wsh_ini_fail(&p->e, "%s", why);
    return 1;
  }
  if (strcmp(section, "server") != 0)
    return wsh_ini_fail(&p->e,
                        "unknown section [%s] (only [server] and "
                        "[tls \"LABEL\"])",
                        section);
  if (set_key(p->c, name, value, why, sizeof(why)) != 0)
    return wsh_ini_fail(&p->e, "%s", why);
  return 1;
}

int wsh_config_load_file(wsh_config *c, const char *file, char *err,
                         size_t errlen) {
  file_parse p = {.c = c};
  int line = wsh_ini_parse(file, on_ini, &p, &p.e.pos);
  if (line == -1) {
    snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
    return WEBSOCK_ENOENT;
  }
  char why[600];
  if (wsh_ini_first_error(&p.e, line, "line too long", why, sizeof(why))) {
    snprintf(err, errlen, "%s: %s", file, why);
    return WEBSOCK_EINVAL;
  }
  return 0;
}

// clang-format off (the help text is laid out as printed)
static void usage(FILE *out, const char *prog) {
  fprintf(
      out,
      "Usage: %s [options]\n"
      "\n"
      "websockd hosts WebSocket handlers loaded from plugin .so files. Each "
      "route\n"
      "file plugins.d/NAME.conf names a path and the plugin that serves it.\n"
      "\n"
      "Options (each overrides the same setting of the --config file):\n"
      "  -l, --listen ADDR:PORT     listen here; repeatable; IPv4 "
      "\"127.0.0.1:8080\",\n"
      "                             IPv6 \"[::1]:8080\", all IPv4 \"*:8080\"; "
      "port 0\n"
      "                             picks a free port (logged). "
      "Default " WSH_DEFAULT_LISTEN "\n"
      "  -p, --plugins DIR          the route files directory (default "
      "plugins.d)\n"
      "  -c, --config FILE          host config file (INI, [server] section, "
      "keys as\n"
      "                             the long options with '_' for '-')\n"
      "  -w, --workers N            worker threads (default: one per core)\n"
      "  -t, --test                 check the config and every route (loading "
      "each\n"
      "                             plugin), print the result, exit 0 or 1\n"
      "      --watch                reload by itself when a file in the "
      "plugins\n"
      "                             directory or a plugin it names changes "
      "(for\n"
      "                             plugin development; off by default)\n"
      "      --max-header-size N    largest upgrade request head (default "
      "8192; 431)\n"
      "      --handshake-timeout-ms N  cut a client whose request is not "
      "complete\n"
      "                             after N ms (default 10000)\n"
      "      --close-timeout-ms N   cut a peer that does not answer our close "
      "frame\n"
      "                             within N ms (default 5000)\n"
      "      --shutdown-grace-ms N  on SIGTERM, wait at most N ms for "
      "connections to\n"
      "                             close (default 10000)\n"
      "      --max-connections N    open WebSocket connections at most; "
      "further\n"
      "                             upgrades get 503 (default 10000)\n"
      "      --slow-callback-ms N   log a plugin callback that blocks its "
      "worker\n"
      "                             this long (default 100)\n"
      "      --busy-poll-us N       a worker polls up to N microseconds before "
      "it\n"
      "                             sleeps (adaptive; default 20, at most "
      "1000, 0: off)\n"
      "      --io-uring on|off      a broadcast's sends many per system call "
      "(default on)\n"
      "      --max-buffered-memory SIZE  bytes all connections may buffer "
      "(partial\n"
      "                             messages, queued output; default 1G, at "
      "least\n"
      "                             1M): from 90%% of it upgrades get 503, "
      "past "
      "it\n"
      "                             the largest holders are closed with 1013\n"
      "      --log-level LEVEL      error, warn, info (default) or debug\n"
      "      --user NAME            started as root: run as this user once "
      "the\n"
      "                             listeners are bound (ports below 1024)\n"
      "      --listen-tls ADDR:PORT listen for TLS (wss://, https://) here; "
      "repeatable,\n"
      "                             beside --listen; needs --tls-cert\n"
      "      --tls-cert FILE        the default certificate (PEM: certificate, "
      "then\n"
      "                             its chain); more in [tls \"LABEL\"] "
      "sections\n"
      "      --tls-key FILE         its private key (PEM; default: in "
      "--tls-cert's file)\n"
      "      --tls-client-ca FILE   require TLS clients to show a certificate "
      "this CA\n"
      "                             signed (mutual TLS)\n"
      "      --tls-ktls on|off      kernel TLS where kernel and OpenSSL allow "
      "(default\n"
      "                             off)\n"
      "      --log-format FORMAT    text (default) or json: one JSON object "
      "per\n"
      "                             line with time, level, event and fields\n"
      "      --log-connections on|off  a line per closed connection at info\n"
      "                             level (default on)\n"
      "      --listen-proxy ADDR:PORT  listen here for connections that start\n"
      "                             with a PROXY protocol header (v1 or v2, "
      "as\n"
      "                             HAProxy sends it); repeatable\n"
      "      --trusted-proxies LIST  addresses and CIDR ranges of reverse\n"
      "                             proxies whose X-Forwarded-For is believed\n"
      "      --devconsole           a plain GET of a route's path gets a "
      "WebSocket\n"
      "                             console page (connect, send, see "
      "messages)\n"
      "                             instead of 426; also serves /status "
      "(off by\n"
      "                             default; for development)\n"
      "      --status-page          serve the /status page (routes, "
      "generations,\n"
      "                             connections, reloads, live graphs) "
      "(off)\n"
      "      --console-allow LIST   addresses and CIDR ranges that may see "
      "those\n"
      "                             pages, comma-separated (default "
      "127.0.0.0/8, ::1);\n"
      "                             /status refuses others with 403, a "
      "route\n"
      "                             answers them 426 as usual\n"
      "      --redis ADDR           share topics and websock_send with the "
      "other\n"
      "                             hosts on this Redis (HOST:PORT or a "
      "unix\n"
      "                             socket path; default: none, this host "
      "alone)\n"
      "      --redis-password PASSWORD  Redis AUTH (visible to ps here: "
      "prefer the\n"
      "                             config file's redis_password)\n"
      "      --redis-prefix PREFIX  before every channel name, at most 64 "
      "bytes, so\n"
      "                             that deployments can share one Redis\n"
      "  -h, --help                 this text\n"
      "  -V, --version              the version\n"
      "\n"
      "Signals: SIGHUP re-reads the plugins directory: changed routes get a "
      "new\n"
      "plugin generation, open connections stay on theirs (reload = drain), "
      "are\n"
      "closed with 1012 (reload = restart) or move to the new one with their\n"
      "state (reload = handoff); a failed reload changes nothing.\n"
      "It re-reads the TLS certificates and keys too (all or none).\n"
      "SIGTERM/SIGINT close every connection with 1001 and exit (a second one\n"
      "exits at once).\n",
      prog);
}
// clang-format on

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"plugins", required_argument, NULL, 'p'},
    {"config", required_argument, NULL, 'c'},
    {"workers", required_argument, NULL, 'w'},
    {"test", no_argument, NULL, 't'},
    {"max-header-size", required_argument, NULL, 1},
    {"handshake-timeout-ms", required_argument, NULL, 2},
    {"close-timeout-ms", required_argument, NULL, 3},
    {"shutdown-grace-ms", required_argument, NULL, 4},
    {"log-level", required_argument, NULL, 5},
    {"max-connections", required_argument, NULL, 6},
    {"watch", no_argument, NULL, 7},
    {"slow-callback-ms", required_argument, NULL, 8},
    {"user", required_argument, NULL, 9},
    {"max-buffered-memory", required_argument, NULL, 10},
    {"listen-proxy", required_argument, NULL, 11},
    {"trusted-proxies", required_argument, NULL, 12},
    {"log-format", required_argument, NULL, 13},
    {"log-connections", required_argument, NULL, 14},
    {"devconsole", no_argument, NULL, 15},
    {"status-page", no_argument, NULL, 16},
    {"console-allow", required_argument, NULL, 17},
    {"redis", required_argument, NULL, 18},
    {"redis-password", required_argument, NULL, 19},
    {"redis-prefix", required_argument, NULL, 20},
    {"listen-tls", required_argument, NULL, 21},
    {"tls-cert", required_argument, NULL, 22},
    {"tls-key", required_argument, NULL, 23},
    {"tls-client-ca", required_argument, NULL, 24},
    {"tls-ktls", required_argument, NULL, 25},
    {"busy-poll-us", required_argument, NULL, 26},
    {"io-uring", required_argument, NULL, 27},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

/* The setting each numbered long option sets (7, 15 and 16 are flags; 11
 * adds to a list). */
static const char *const long_keys[] = {NULL,
                                        "max_header_size",
                                        "handshake_timeout_ms",
                                        "close_timeout_ms",
                                        "shutdown_grace_ms",
                                        "log_level",
                                        "max_connections",
                                        NULL,
                                        "slow_callback_ms",
                                        "user",
                                        "max_buffered_memory",
                                        NULL,
                                        "trusted_proxies",
                                        "log_format",
                                        "log_connections",
                                        NULL,
                                        NULL,
                                        "console_allow",
                                        "redis",
                                        "redis_password",
                                        "redis_prefix",
                                        NULL,
                                        "tls_cert",
                                        "tls_key",
                                        "tls_client_ca",
                                        "tls_ktls",
                                        "busy_poll_us",
                                        "io_uring"};

static void free_tls_listen(wsh_tls_conf *t) {
  for (size_t i = 0; i < t->nlisten; i++)
    free(t->listen[i]);
  free(t->listen);
  t->listen = NULL;
  t->nlisten = 0;
}

/* The first pass: only --config, --help and --version. */
static int first_pass(wsh_config *c, int argc, char **argv, char *err,
                      size_t errlen) {
  int opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "l:p:c:w:thV", long_opts, NULL)) !=
         -1) {
    if (opt == 'h') {
      usage(stdout, argv[0]);
      return 1;
    }
    if (opt == 'V') {
      printf("websockd 0.1.0 (plugin ABI %d)\n", WEBSOCK_ABI_VERSION);
      return 1;
    }
    if (opt == '?') {
      snprintf(err, errlen, "unknown or incomplete option \"%s\" (see --help)",
               argv[optind - 1]);
      return WEBSOCK_EINVAL;
    }
    if (opt == 'c' && set_string(&c->config_file, optarg))
      return WEBSOCK_ENOMEM;
  }
  if (optind < argc) {
    snprintf(err, errlen, "unexpected argument \"%s\" (see --help)",
             argv[optind]);
    return WEBSOCK_EINVAL;
  }
  if (c->config_file)
    return wsh_config_load_file(c, c->config_file, err, errlen);
  return 0;
}

int wsh_config_from_args(wsh_config *c, int argc, char **argv, char *err,
                         size_t errlen) {
  int rc = first_pass(c, argc, argv, err, errlen);
  if (rc)
    return rc;
  int opt, listen_given = 0, proxy_given = 0, tls_listen_given = 0;
  optind = 1;
  while ((opt = getopt_long(argc, argv, "l:p:c:w:thV", long_opts, NULL)) !=
         -1) {
    char what[512] = "";
    switch (opt) {
    case 'l':
      if (!listen_given++)
        free_listen(c);
      rc = add_listen(c, optarg);
      break;
    case 'p':
      rc = set_key(c, "plugins", optarg, what, sizeof(what));
      break;
    case 11: /* like --listen: replaces the file's listen_proxy lines */
      if (!proxy_given++)
        free_list(&c->listen_proxy, &c->nlisten_proxy);
      rc = add_to_list(&c->listen_proxy, &c->nlisten_proxy, optarg);
      break;
    case 12:
      rc = set_key(c, "trusted_proxies", optarg, what, sizeof(what));
      break;
    case 13:
      rc = set_key(c, "log_format", optarg, what, sizeof(what));
      break;
    case 14:
      rc = set_key(c, "log_connections", optarg, what, sizeof(what));
      break;
    case 'w':
      rc = set_key(c, "workers", optarg, what, sizeof(what));
      break;
    case 21: /* replaces the file's listen_tls, as -l replaces listen */
      if (!tls_listen_given++)
        free_tls_listen(&c->tls);
      rc = set_key(c, "listen_tls", optarg, what, sizeof(what));
      break;
    case 't':
      c->check_only = 1;
      break;
    case 7:
      c->watch = 1;
      break;
    case 15:
      c->devconsole = 1;
      break;
    case 16:
      c->status_page = 1;
      break;
    case 1:
    case 2:
    case 3:
    case 4:
    case 5:
    case 6:
    case 8:
    case 9:
    case 10:
    case 17:
    case 18:
    case 19:
    case 20:
    case 22:
    case 23:
    case 24:
    case 25:
    case 26:
    case 27:
      rc = set_key(c, long_keys[opt], optarg, what, sizeof(what));
      break;
    default:
      break;
    }
    if (rc) {
      snprintf(err, errlen, "%s", what[0] ? what : "out of memory");
      return rc;
    }
  }
  return 0;
}

int wsh_parse_listen(const char *spec, struct sockaddr_storage *addr,
                     socklen_t *len) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  if (!colon || colon == spec + strlen(spec) - 1)
    return WEBSOCK_EINVAL;
  size_t hlen = (size_t)(colon - spec);
  if (hlen >= sizeof(host))
    return WEBSOCK_EINVAL;
  memcpy(host, spec, hlen);
  host[hlen] = '\0';
  if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
    memmove(host, host + 1, hlen - 2);
    host[hlen - 2] = '\0';
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  int any = host[0] == '\0' || strcmp(host, "*") == 0;
  if (any)
    hints.ai_family = AF_INET;
  struct addrinfo *res;
  if (getaddrinfo(any ? NULL : host, colon + 1, &hints, &res) != 0)
    return WEBSOCK_EINVAL;
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* Appends v in decimal at p; returns the end. */
static char *put_decimal(char *p, unsigned v) {
  char d[5];
  int n = 0;
  do {
    d[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n)
    *p++ = d[--n];
  return p;
}

void wsh_format_addr(const struct sockaddr *sa, char *out, size_t outlen) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (sa->sa_family == AF_INET && outlen >= sizeof("255.255.255.255:65535")) {
    /* every accepted connection: by hand, a tenth of inet_ntop + snprintf */
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    const uint8_t *b = (const uint8_t *)&in->sin_addr;
    char *p = out;
    for (int i = 0; i < 4; i++) {
      p = put_decimal(p, b[i]);
      *p++ = i < 3 ? '.' : ':';
    }
    p = put_decimal(p, ntohs(in->sin_port));
    *p = '\0';
  } else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    snprintf(out, outlen, "%s:%u", ip, ntohs(in->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    snprintf(out, outlen, "[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    snprintf(out, outlen, "unix");
  }
}

/* Every address of a listen list parses. */
static int check_listen(const char *key, char **list, size_t n, char *err,
                        size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (wsh_parse_listen(list[i], &ss, &len)) {
      snprintf(err, errlen,
               "%s: cannot parse \"%s\" (want HOST:PORT, [V6]:PORT or "
               "*:PORT)",
               key, list[i]);
      return WEBSOCK_EINVAL;
    }
  }
  return 0;
}

int wsh_config_finish(wsh_config *c, char *err, size_t errlen) {
  /* the default address only when no listener at all is configured */
  if (c->nlisten == 0 && c->nlisten_proxy == 0 && c->tls.nlisten == 0 &&
      add_listen(c, WSH_DEFAULT_LISTEN))
    return WEBSOCK_ENOMEM;
  if (check_listen("listen", c->listen, c->nlisten, err, errlen) ||
      check_listen("listen_proxy", c->listen_proxy, c->nlisten_proxy, err,
                   errlen) ||
      check_listen("listen_tls", c->tls.listen, c->tls.nlisten, err, errlen))
    return WEBSOCK_EINVAL;
  int rc = wsh_tls_conf_finish(&c->tls, err, errlen);
  if (rc)
    return rc;
  if (c->workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = n > 0 ? (unsigned)n : 1;
  }
  return 0;
}
