/*
 * metrics.c - the Prometheus text exposition of websockd's state: connections
 * per route and generation, per-worker traffic, upgrade answers by status,
 * reloads, the host-wide memory budget, and permessage-deflate.
 */
#include "ops/metrics.h"

#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>

#include "plugins/registry.h"
#include "network/server.h"
#include "websock.h"
#include "network/worker.h"

/* A label value with \, " and newline escaped. */
static void label(FILE *f, const char *s) {
  for (; s && *s; s++) {
    if (*s == '\\' || *s == '"')
      fprintf(f, "\\%c", *s);
    else if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
}

static void generation(void *arg, const wsh_generation *g, bool current) {
  FILE *f = arg;
  fputs("websockd_connections{route=\"", f);
  label(f, g->conf->path);
  fprintf(f, "\",generation=\"%u\",plugin=\"", g->id);
  label(f, g->plugin->h.name);
  fputs("\",version=\"", f);
  label(f, g->plugin->h.version);
  /* the build: two builds of one version differ here */
  fputs("\",build=\"", f);
  for (int i = 0; i < 6; i++)
    fprintf(f, "%02x", g->so_digest[i]);
  fprintf(f, "\",state=\"%s\"} %d\n", current ? "current" : "draining",
          atomic_load(&g->conns));
}

/* The last reloads, newest first, by number: one series each. */
static void reload_history(FILE *f, const wsh_reload_stats *st) {
  fputs("# HELP websockd_reload_timestamp_seconds When each of the last "
        "reloads ran, by number and result.\n"
        "# TYPE websockd_reload_timestamp_seconds gauge\n",
        f);
  uint64_t last = st->ok + st->failed;
  for (uint64_t n = last; n > 0 && n + WSH_RELOAD_HISTORY > last; n--) {
    const wsh_reload_record *e = &st->recent[n % WSH_RELOAD_HISTORY];
    fprintf(f,
            "websockd_reload_timestamp_seconds{reload=\"%llu\",result=\"%s\"} "
            "%lld\n",
            (unsigned long long)e->n, e->ok ? "ok" : "failed",
            (long long)e->at);
  }
}

static void generations(FILE *f, wsh_registry *r) {
  fputs("# HELP websockd_connections Open WebSocket connections per route and "
        "plugin generation (build: the first 12 hex digits of the SHA-256 of "
        "the .so).\n# TYPE websockd_connections gauge\n",
        f);
  wsh_registry_each_generation(r, generation, f);
  wsh_reload_stats st = wsh_registry_reload_stats(r);
  fprintf(
      f,
      "# HELP websockd_reloads_total Reloads (SIGHUP or --watch) by result.\n"
      "# TYPE websockd_reloads_total counter\n"
      "websockd_reloads_total{result=\"ok\"} %llu\n"
      "websockd_reloads_total{result=\"failed\"} %llu\n"
      "# HELP websockd_last_reload_timestamp_seconds When the last reload "
      "ran (0: never).\n# TYPE websockd_last_reload_timestamp_seconds gauge\n"
      "websockd_last_reload_timestamp_seconds %lld\n"
      "# HELP websockd_last_reload_success 1 if the last reload succeeded.\n"
      "# TYPE websockd_last_reload_success gauge\n"
      "websockd_last_reload_success %d\n",
      (unsigned long long)st.ok, (unsigned long long)st.failed,
      (long long)st.last, st.last ? st.last_ok : 1);
  reload_history(f, &st);
}

static void per_worker(FILE *f, wsh_server *srv, const char *name,
                       const char *type, const char *help, size_t offset) {
  fprintf(f, "# HELP websockd_%s %s\n# TYPE websockd_%s %s\n", name, help, name,
          type);
  for (unsigned i = 0; i < srv->nworkers; i++) {
    atomic_ullong *v =
        (atomic_ullong *)((char *)&srv->workers[i].loop.stats + offset);
    fprintf(f, "websockd_%s{worker=\"%u\"} %llu\n", name, i, atomic_load(v));
  }
}

static void workers(FILE *f, wsh_server *srv) {
  per_worker(f, srv, "worker_connections", "gauge",
             "Open WebSocket connections per worker.",
             offsetof(wsh_stats, open));
  per_worker(f, srv, "accepted_total", "counter",
             "TCP connections accepted per worker.",
             offsetof(wsh_stats, accepted));
  per_worker(f, srv, "messages_in_total", "counter",
             "Whole messages received from clients.",
             offsetof(wsh_stats, msgs_in));
  per_worker(f, srv, "messages_out_total", "counter",
             "Messages queued for clients.", offsetof(wsh_stats, msgs_out));
  per_worker(f, srv, "bytes_in_total", "counter",
             "Message payload bytes received.", offsetof(wsh_stats, bytes_in));
  per_worker(f, srv, "bytes_out_total", "counter",
             "Message bytes queued for clients.",
             offsetof(wsh_stats, bytes_out));
}

/* The host-wide memory budget (max_buffered_memory): the gauge, the budget,
 * and what going over it did. */
static void memory_budget(FILE *f, wsh_server *srv) {
  unsigned long long shed = 0, refused = 0;
  for (unsigned i = 0; i < srv->nworkers; i++) {
    shed += atomic_load(&srv->workers[i].loop.stats.shed);
    refused += atomic_load(&srv->workers[i].loop.stats.mem_refused);
  }
  fprintf(f,
          "# HELP websockd_buffered_bytes Bytes buffered now by all "
          "connections (partial messages, stashed input, queued output).\n"
          "# TYPE websockd_buffered_bytes gauge\n"
          "websockd_buffered_bytes %llu\n"
          "# HELP websockd_max_buffered_memory_bytes The budget for them "
          "(max_buffered_memory).\n"
          "# TYPE websockd_max_buffered_memory_bytes gauge\n"
          "websockd_max_buffered_memory_bytes %llu\n"
          "# HELP websockd_upgrades_refused_memory_total Upgrades refused "
          "with 503 over 90%% of the budget.\n"
          "# TYPE websockd_upgrades_refused_memory_total counter\n"
          "websockd_upgrades_refused_memory_total %llu\n"
          "# HELP websockd_connections_shed_total Connections closed with "
          "1013 over the budget, the largest holders first.\n"
          "# TYPE websockd_connections_shed_total counter\n"
          "websockd_connections_shed_total %llu\n",
          (unsigned long long)atomic_load(&srv->env.buffered),
          (unsigned long long)srv->cfg->max_buffered_memory, refused, shed);
}

/* The bus to the other hosts (--redis): 0 and the local engine without. */
static void bus(FILE *f, wsh_server *srv) {
  wsh_bus_stats st = {0};
  if (srv->bus)
    wsh_bus_stats_get(srv->bus, &st);
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } rows[] = {
      {"bus_connected", "gauge",
       "1 while the bus to the other hosts (Redis) is up.",
       offsetof(wsh_bus_stats, connected)},
      {"bus_published_total", "counter",
       "Publishes, broadcasts and sends handed to the bus for other hosts.",
       offsetof(wsh_bus_stats, published)},
      {"bus_received_total", "counter",
       "Messages from other hosts delivered here.",
       offsetof(wsh_bus_stats, received)},
      {"bus_dropped_total", "counter",
       "Messages for other hosts dropped (bus down, queue full, over budget).",
       offsetof(wsh_bus_stats, dropped)},
      {"bus_reconnects_total", "counter",
       "Times the bus came up again after being lost.",
       offsetof(wsh_bus_stats, reconnects)},
      {"bus_channels", "gauge", "Redis channels subscribed now.",
       offsetof(wsh_bus_stats, channels)},
      {"bus_send_unknown_total", "counter",
       "websock_send to another host that no host took.",
       offsetof(wsh_bus_stats, send_unknown)},
      {"bus_send_gone_total", "counter",
       "websock_send from another host to a connection gone here.",
       offsetof(wsh_bus_stats, send_gone)},
      {"bus_invalid_total", "counter",
       "Messages from Redis refused: undecodable, or on the wrong channel.",
       offsetof(wsh_bus_stats, invalid)},
      {"bus_counts_sent_total", "counter",
       "Subscriber-count announcements published to the other hosts.",
       offsetof(wsh_bus_stats, counts_sent)},
      {"bus_counts_received_total", "counter",
       "Subscriber-count announcements taken from other hosts.",
       offsetof(wsh_bus_stats, counts_received)},
      {"bus_counts_dropped_total", "counter",
       "Other hosts' topic counts left out (over the table's limits).",
       offsetof(wsh_bus_stats, counts_dropped)},
      {"bus_counts_entries", "gauge",
       "Other hosts' topic counts kept now (topic and host pairs).",
       offsetof(wsh_bus_stats, counts_entries)},
      {"bus_counts_hosts", "gauge", "Other hosts with a topic count kept now.",
       offsetof(wsh_bus_stats, counts_hosts)},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    fprintf(
        f, "# HELP websockd_%s %s\n# TYPE websockd_%s %s\nwebsockd_%s %llu\n",
        rows[i].name, rows[i].help, rows[i].name, rows[i].type, rows[i].name,
        *(const unsigned long long *)((const char *)&st + rows[i].off));
  fprintf(f,
          "# HELP websockd_bus_inbox_dropped_total Messages from other hosts "
          "dropped because a worker held too many undelivered ones.\n"
          "# TYPE websockd_bus_inbox_dropped_total counter\n"
          "websockd_bus_inbox_dropped_total %llu\n",
          (unsigned long long)atomic_load(&srv->host.remote_mail_dropped));
}

/* permessage-deflate, per generation of a route with compression on. */
static void pmd_generation(void *arg, const wsh_generation *g, bool current) {
  static const struct {
    const char *name, *dir, *form;
    int stat;
  } rows[] = {
      {"messages", "in", "compressed", WSH_PMD_STAT_MSGS_IN_Z},
      {"messages", "in", "uncompressed", WSH_PMD_STAT_MSGS_IN_PLAIN},
      {"messages", "out", "compressed", WSH_PMD_STAT_MSGS_OUT_Z},
      {"messages", "out", "uncompressed", WSH_PMD_STAT_MSGS_OUT_PLAIN},
      {"bytes", "in", "compressed", WSH_PMD_STAT_BYTES_IN_Z},
      {"bytes", "in", "uncompressed", WSH_PMD_STAT_BYTES_IN_PLAIN},
      {"bytes", "out", "compressed", WSH_PMD_STAT_BYTES_OUT_Z},
      {"bytes", "out", "uncompressed", WSH_PMD_STAT_BYTES_OUT_PLAIN},
      {"inflated_bytes", "in", "compressed", WSH_PMD_STAT_SIZE_IN_Z},
      {"inflated_bytes", "out", "compressed", WSH_PMD_STAT_SIZE_OUT_Z},
  };
  FILE *f = arg;
  (void)current;
  if (g->conf->pmd.mode == WSH_PMD_OFF)
    return;
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    fprintf(f, "websockd_compression_%s_total{route=\"", rows[i].name);
    label(f, g->conf->path);
    fprintf(f, "\",generation=\"%u\",direction=\"%s\",form=\"%s\"} %llu\n",
            g->id, rows[i].dir, rows[i].form,
            (unsigned long long)atomic_load(&g->pmd_stats[rows[i].stat]));
  }
}

static unsigned long long sum_workers(wsh_server *srv, size_t offset) {
  unsigned long long n = 0;
  for (unsigned i = 0; i < srv->nworkers; i++)
    n += atomic_load(
        (atomic_ullong *)((char *)&srv->workers[i].loop.stats + offset));
  return n;
}

/* permessage-deflate: traffic per route, zlib memory, broadcasts. */
static void compression(FILE *f, wsh_server *srv) {
  fputs("# HELP websockd_compression_messages_total permessage-deflate "
        "connections' messages per route, direction and form (form "
        "uncompressed: under compression_min_size, not smaller compressed, "
        "or sent so by the plugin).\n"
        "# TYPE websockd_compression_messages_total counter\n"
        "# HELP websockd_compression_bytes_total Their payload bytes as they "
        "went over the wire.\n"
        "# TYPE websockd_compression_bytes_total counter\n"
        "# HELP websockd_compression_inflated_bytes_total The compressed "
        "messages' own sizes (inflated): bytes/inflated_bytes is the "
        "ratio.\n"
        "# TYPE websockd_compression_inflated_bytes_total counter\n",
        f);
  wsh_registry_each_generation(srv->reg, pmd_generation, f);
  unsigned long long zlib = 0;
  for (unsigned i = 0; i < srv->nworkers; i++)
    zlib += wsh_zmem_in_use(&srv->workers[i].loop.zmem);
  fprintf(f,
          "# HELP websockd_compression_memory_bytes zlib state and "
          "compression buffers in use (every worker's shared streams and "
          "every dedicated connection's).\n"
          "# TYPE websockd_compression_memory_bytes gauge\n"
          "websockd_compression_memory_bytes %llu\n"
          "# HELP websockd_broadcast_compressed_total Broadcasts that some "
          "subscriber took compressed.\n"
          "# TYPE websockd_broadcast_compressed_total counter\n"
          "websockd_broadcast_compressed_total %llu\n"
          "# HELP websockd_broadcast_deflates_total deflate calls made for "
          "them (one per publish and server window size).\n"
          "# TYPE websockd_broadcast_deflates_total counter\n"
          "websockd_broadcast_deflates_total %llu\n"
          "# HELP websockd_broadcast_compressed_sends_total Compressed "
          "broadcast frames queued to subscribers (sharing those bytes).\n"
          "# TYPE websockd_broadcast_compressed_sends_total counter\n"
          "websockd_broadcast_compressed_sends_total %llu\n"
          "# HELP websockd_broadcast_uring_sends_total Broadcast frames "
          "sent through io_uring, many per system call.\n"
          "# TYPE websockd_broadcast_uring_sends_total counter\n"
          "websockd_broadcast_uring_sends_total %llu\n"
          "# HELP websockd_broadcast_uring_enters_total The io_uring_enter "
          "calls that sent them.\n"
          "# TYPE websockd_broadcast_uring_enters_total counter\n"
          "websockd_broadcast_uring_enters_total %llu\n",
          zlib, sum_workers(srv, offsetof(wsh_stats, bcast_z_publishes)),
          sum_workers(srv, offsetof(wsh_stats, bcast_z_deflates)),
          sum_workers(srv, offsetof(wsh_stats, bcast_z_sends)),
          sum_workers(srv, offsetof(wsh_stats, uring_sends)),
          sum_workers(srv, offsetof(wsh_stats, uring_enters)));
}

static const int status_codes[] = {
#define WSH_STATUS_CODE_(code) code,
    WSH_STATUS_MAP(WSH_STATUS_CODE_)
#undef WSH_STATUS_CODE_
};

static void responses(FILE *f, wsh_server *srv) {
  fputs("# HELP websockd_http_responses_total Answers to HTTP requests (101 "
        "upgrades, refusals, /healthz) by status.\n"
        "# TYPE websockd_http_responses_total counter\n",
        f);
  for (int s = 0; s < WSH_NSTATUS; s++) {
    unsigned long long n = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
      n += atomic_load(&srv->workers[i].loop.stats.responses[s]);
    if (s == WSH_STATUS_OTHER)
      fprintf(f, "websockd_http_responses_total{status=\"other\"} %llu\n", n);
    else
      fprintf(f, "websockd_http_responses_total{status=\"%d\"} %llu\n",
              status_codes[s], n);
  }
}

/* One TLS counter summed over the workers. */
static unsigned long long tls_sum(wsh_server *srv, size_t offset) {
  unsigned long long n = 0;
  for (unsigned i = 0; i < srv->nworkers; i++)
    n += atomic_load_explicit(
        (_Atomic uint64_t *)((char *)&srv->workers[i].loop.tls_stats + offset),
        memory_order_relaxed);
  return n;
}

/* TLS handshakes by outcome and version, resumptions, certificate expiry. */
static void tls(FILE *f, wsh_server *srv) {
  if (!srv->env.tls)
    return;
  fprintf(f,
          "# HELP websockd_tls_handshakes_total TLS handshakes completed.\n"
          "# TYPE websockd_tls_handshakes_total counter\n"
          "websockd_tls_handshakes_total %llu\n"
          "# HELP websockd_tls_resumed_total Of those, resumed from a "
          "session ticket.\n# TYPE websockd_tls_resumed_total counter\n"
          "websockd_tls_resumed_total %llu\n"
          "# HELP websockd_tls_version_total Completed handshakes by "
          "protocol version.\n# TYPE websockd_tls_version_total counter\n"
          "websockd_tls_version_total{version=\"TLSv1.2\"} %llu\n"
          "websockd_tls_version_total{version=\"TLSv1.3\"} %llu\n"
          "# HELP websockd_tls_handshakes_failed_total TLS handshakes that "
          "failed, by reason.\n"
          "# TYPE websockd_tls_handshakes_failed_total counter\n",
          tls_sum(srv, offsetof(wsh_tls_stats, handshakes)),
          tls_sum(srv, offsetof(wsh_tls_stats, resumed)),
          tls_sum(srv, offsetof(wsh_tls_stats, tls12)),
          tls_sum(srv, offsetof(wsh_tls_stats, tls13)));
  for (int r = 0; r < WSH_TLS_FAIL_COUNT; r++)
    fprintf(f, "websockd_tls_handshakes_failed_total{reason=\"%s\"} %llu\n",
            wsh_tls_fail_name(r),
            tls_sum(srv, offsetof(wsh_tls_stats, failed) +
                             (size_t)r * sizeof(_Atomic uint64_t)));
  wsh_tls_set *set = wsh_tls_current(srv->env.tls);
  if (!set)
    return;
  fputs("# HELP websockd_tls_certificate_expiry_timestamp_seconds When each "
        "served certificate expires.\n"
        "# TYPE websockd_tls_certificate_expiry_timestamp_seconds gauge\n",
        f);
  for (size_t i = 0; i < wsh_tls_set_count(set); i++) {
    wsh_tls_cert_info ci;
    wsh_tls_set_cert(set, i, &ci);
    fputs("websockd_tls_certificate_expiry_timestamp_seconds{label=\"", f);
    label(f, ci.label);
    fputs("\",file=\"", f);
    label(f, ci.cert_file);
    fprintf(f, "\",key_type=\"%s\"} %lld\n", ci.key_type,
            (long long)ci.not_after);
  }
  wsh_tls_set_release(set);
}

int wsh_metrics_render(wsh_server *srv, char **out) {
  size_t len;
  FILE *f = open_memstream(out, &len);
  if (!f)
    return WEBSOCK_ENOMEM;
  generations(f, srv->reg);
  workers(f, srv);
  responses(f, srv);
  memory_budget(f, srv);
  bus(f, srv);
  compression(f, srv);
  tls(f, srv);
  fprintf(f,
          "# HELP websockd_open_connections Open WebSocket connections.\n"
          "# TYPE websockd_open_connections gauge\n"
          "websockd_open_connections %lu\n",
          atomic_load(&srv->env.open));
  return fclose(f) == 0 ? 0 : WEBSOCK_ENOMEM;
}
