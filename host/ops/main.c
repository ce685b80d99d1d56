/*
 * main.c - websockd's entry point: settings, routes, then serve (or, with -t,
 * check everything and exit; or, re-executed as a plugin probe, open one
 * plugin and exit).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/config.h"
#include "protocol/realip.h"
#include "base/crash.h"
#include "base/heap.h"
#include "base/log.h"
#include "ops/console.h"
#include "ops/metrics.h"
#include "plugins/registry.h"
#include "network/server.h"
#include "network/tls.h"
#include "ops/service.h"

/* GET /metrics, as the server's connections ask for it. */
static int render_metrics(void *srv, char **out) {
  return wsh_metrics_render(srv, out);
}

/* -t: the certificates and keys, read as at start-up; says which expire
 * within 30 days. 0 or 1. */
static int check_tls(const wsh_config *cfg) {
  char err[1024], warn[4096];
  if (!cfg->tls.nlisten && !cfg->tls.dflt.cert_file && !cfg->tls.ncerts)
    return 0;
  if (wsh_tls_check(&cfg->tls, time(NULL), err, sizeof(err), warn,
                    sizeof(warn)) != 0) {
    fprintf(stderr, "websockd: TLS: %s\n", err);
    return 1;
  }
  for (char *line = warn, *next; *line; line = next) {
    next = line + strcspn(line, "\n");
    if (*next)
      *next++ = '\0';
    fprintf(stderr, "websockd: warning: TLS: %s\n", line);
  }
  return 0;
}

/* -t: every route loaded in a throw-away generation, then released. */
static int check_only(wsh_config *cfg, wsh_registry *reg, int failures) {
  if (check_tls(cfg) != 0)
    return 1;
  if (failures) {
    fprintf(stderr,
            "websockd: %d route(s) in %s failed the check (see above)\n",
            failures, cfg->plugins_dir);
    return 1;
  }
  printf("websockd: configuration OK (%zu route(s) in %s, %zu listen "
         "address(es), %zu TLS, %u worker(s))\n",
         wsh_registry_count(reg), cfg->plugins_dir, cfg->nlisten,
         cfg->tls.nlisten, cfg->workers);
  return 0;
}

/* trusted_proxies is read by the network layer; a bad list is a config
 * error (exit 2), also under -t. */
static int check_trusted_proxies(const wsh_config *cfg, char *err,
                                 size_t errlen) {
  wsh_cidr_list l = {0};
  char why[256];
  int rc = cfg->trusted_proxies
               ? wsh_cidr_list_parse(&l, cfg->trusted_proxies, why, sizeof(why))
               : 0;
  wsh_cidr_list_free(&l);
  if (rc)
    snprintf(err, errlen, "trusted_proxies: %s", why);
  return rc;
}

int main(int argc, char **argv) {
  /* Internal: the child that opens a new plugin before the host does. */
  if (argc == 4 && strcmp(argv[1], WSH_PROBE_FLAG) == 0)
    wsh_plugin_probe_main(argv[2], argv[3]);
  wsh_config cfg;
  wsh_registry *reg = NULL;
  wsh_server *srv = NULL;
  wsh_console *console = NULL;
  char err[1024];
  int status = 2, failures = 0;
  wsh_config_init(&cfg);
  int rc = wsh_config_from_args(&cfg, argc, argv, err, sizeof(err));
  if (rc == 1) {
    status = 0;
    goto out_config;
  }
  if (rc || (rc = wsh_config_finish(&cfg, err, sizeof(err))) != 0 ||
      (rc = check_trusted_proxies(&cfg, err, sizeof(err))) != 0 ||
      (rc = wsh_console_new(&console, &cfg, err, sizeof(err))) != 0) {
    fprintf(stderr, "websockd: %s\n", err);
    goto out_config;
  }
  wsh_log_set_level(cfg.log_level);
  wsh_log_set_format(cfg.log_format);
  wsh_crash_install();
  wsh_heap_tune(); /* before any thread: base/heap.h */
  if (wsh_registry_new(&reg, err, sizeof(err)) != 0) {
    fprintf(stderr, "websockd: %s\n", err);
    goto out_config;
  }
  /* Every plugin is probed by this very binary, even if it was replaced on
   * disk since it started. WEBSOCKD_PROBE_EXE names another one: under
   * valgrind /proc/self/exe is valgrind's tool, not websockd (perf_budget
   * runs the daemon under callgrind and points this at the real binary). */
  const char *probe_exe = getenv("WEBSOCKD_PROBE_EXE");
  wsh_registry_set_probe(reg, probe_exe && *probe_exe ? probe_exe
                                                      : "/proc/self/exe");
  if (cfg.check_only && cfg.user && !getpwnam(cfg.user)) {
    fprintf(stderr, "websockd: user %s: no such user\n", cfg.user);
    status = 1;
    goto out_registry;
  }
  if (cfg.check_only) {
    if (wsh_registry_load_dir(reg, cfg.plugins_dir, &failures) != 0)
      status = 1;
    else
      status = check_only(&cfg, reg, failures);
    goto out_registry;
  }
  wsh_server_hooks hooks = {.render_metrics = render_metrics,
                            .answer_page = wsh_console_answer,
                            .page_arg = console,
                            .ready = wsh_service_ready,
                            .reloading = wsh_service_reloading,
                            .stopping = wsh_service_stopping};
  if ((rc = wsh_server_new(&srv, &cfg, reg, &hooks, err, sizeof(err))) != 0) {
    wsh_error("%s", err);
    status = rc == WEBSOCK_EINVAL ? 2 : 1; /* a certificate or key: 2 */
    goto out_registry;
  }
  wsh_registry_set_host(reg, &srv->host);
  if (wsh_registry_load_dir(reg, cfg.plugins_dir, &failures) != 0) {
    status = 1;
    goto out_server;
  }
  if (wsh_server_listen(srv, err, sizeof(err)) != 0) {
    wsh_error("%s", err);
    status = 1;
    goto out_server;
  }
  if (cfg.user &&
      wsh_service_drop_privileges(cfg.user, wsh_registry_private_dir(reg), err,
                                  sizeof(err)) != 0) {
    wsh_error("%s", err);
    status = 1;
    goto out_server;
  }
  status = wsh_server_run(srv);
  /* Every connection is gone: unload the plugins (which stop their threads)
   * before the workers their websock_send() calls would reach are freed. */
out_server:
  wsh_registry_free(reg);
  wsh_server_free(srv);
  goto out_config;
out_registry:
  wsh_registry_free(reg);
out_config:
  wsh_console_free(console);
  wsh_config_free(&cfg);
  return status;
}
