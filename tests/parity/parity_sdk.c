/*
 * parity_sdk.c - the SDK side of the parity test (tests/integration/
 * test_parity.py): plays a script against a plugin through the test library
 * (libwebsock_test) and prints what the client saw, one line per event, in
 * the format the Python side prints for the real daemon.
 *
 *   parity_sdk PLUGIN.so SCRIPT RECORD_FILE [ROUTE_PATH [KEY=VALUE ...]]
 *
 * The plugin is loaded as route /parity with subprotocols "chat, superchat"
 * and [options] record = RECORD_FILE, color = blue; or, given ROUTE_PATH,
 * as that route (a pattern, say) with only the options given. Script lines
 * (see tests/parity/script.txt and additions.txt):
 *
 *   connect QUERY [PROTO,...]   upgrade (QUERY "-": none), then init
 *   open PATH                   upgrade to PATH (with ?QUERY if any), init
 *   refuse QUERY                upgrade with an X-Test-Refuse header
 *   text DATA | binary DATA     a client message
 *   ping DATA                   a client ping
 *   close CODE [TEXT]           the client closes
 *   handoff                     reload = handoff: the plugin is loaded
 *                               again (a new generation), the connection
 *                               moves to it (websock_test_handoff), the old
 *                               one is unloaded, later connections go to the
 *                               new one
 *
 * After each step on an open connection the driver sends "echo:#sync", as
 * the Python side does to know that the step's answers are all in.
 * Output: "status N", "recv text DATA", "recv binary LEN DATA",
 * "closed CODE TEXT".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websock_test.h>

typedef struct driver {
  websock_host *host;
  const char *so_path;
  const websock_test_route *route;
  websock_test_plugin *plugin;
  websock_conn *conn; /* the current connection, NULL before the first */
  size_t seen;        /* messages of conn already printed */
  int closed_shown;
} driver;

/* Prints what the connection sent since the last call, and its close. */
static void show(driver *d) {
  websock_test_run(d->host);
  size_t n = websock_test_sent_count(d->conn);
  for (; d->seen < n; d->seen++) {
    const websock_test_msg *m = websock_test_sent(d->conn, d->seen);
    if (m->opcode == WEBSOCK_OP_TEXT && strcmp((const char *)m->data, "#sync"))
      printf("recv text %s\n", (const char *)m->data);
    else if (m->opcode == WEBSOCK_OP_BINARY)
      printf("recv binary %zu %.*s\n", m->len, (int)m->len,
             (const char *)m->data);
  }
  uint16_t code;
  const char *text;
  if (!d->closed_shown && websock_test_closed(d->conn, &code, &text)) {
    printf("closed %u %s\n", code, text);
    d->closed_shown = 1;
  }
}

static int is_open(const driver *d) {
  return d->conn && websock_test_state_of(d->conn) == WEBSOCK_TEST_OPEN;
}

static void sync_step(driver *d) {
  if (!is_open(d))
    return;
  websock_test_client_text(d->conn, "echo:#sync");
  show(d);
}

/* Prints the new connection's status and what init pushed. */
static void opened(driver *d) {
  if (!d->conn) {
    printf("connect failed\n");
    return;
  }
  printf("status %d\n", websock_test_status(d->conn));
  if (websock_test_status(d->conn) == 101)
    show(d);
}

/* open: a new connection to a path of the route's. */
static void do_open(driver *d, char *arg) {
  char *query = strchr(arg, '?');
  if (query)
    *query++ = '\0';
  websock_test_request req = {.path = arg, .query = query};
  d->conn = NULL;
  d->seen = 0;
  d->closed_shown = 0;
  websock_test_connect(d->plugin, &req, &d->conn);
  opened(d);
}

/* connect/refuse: a new connection (the previous one is closed by now). */
static void do_connect(driver *d, char *arg, int refuse) {
  char *query = strtok(arg, " ");
  char *protos = strtok(NULL, " ");
  const char *offered[8] = {NULL};
  size_t n = 0;
  for (char *p = protos ? strtok(protos, ",") : NULL; p && n < 7;
       p = strtok(NULL, ","))
    offered[n++] = p;
  static const char *const refuse_hdr[] = {"X-Test-Refuse", "yes", NULL};
  websock_test_request req = {.query =
                                  query && strcmp(query, "-") ? query : NULL,
                              .subprotocols = n ? offered : NULL,
                              .headers = refuse ? refuse_hdr : NULL};
  d->conn = NULL;
  d->seen = 0;
  d->closed_shown = 0;
  websock_test_connect(d->plugin, &req, &d->conn);
  opened(d);
}

/* handoff: as websockd does on SIGHUP for a `reload = handoff` route whose
 * .conf changed: a new generation, the open connection moved to it, the old
 * generation unloaded once it has no connection left. */
static void do_handoff(driver *d) {
  websock_test_plugin *next;
  int rc = websock_test_load(d->host, d->so_path, d->route, &next);
  if (rc == 0)
    rc = websock_test_handoff(d->conn, next);
  if (rc != 0) {
    printf("handoff failed %d\n", rc);
    return;
  }
  websock_test_unload(d->plugin);
  d->plugin = next;
}

static void step(driver *d, char *cmd, char *arg) {
  if (strcmp(cmd, "connect") == 0 || strcmp(cmd, "refuse") == 0) {
    do_connect(d, arg, cmd[0] == 'r');
  } else if (strcmp(cmd, "open") == 0) {
    do_open(d, arg);
  } else if (!is_open(d)) {
    return; /* the Python side cannot send on a closed connection either */
  } else if (strcmp(cmd, "text") == 0) {
    websock_test_client_text(d->conn, arg);
  } else if (strcmp(cmd, "binary") == 0) {
    websock_test_client_message(d->conn, WEBSOCK_OP_BINARY, arg, strlen(arg));
  } else if (strcmp(cmd, "ping") == 0) {
    websock_test_client_control(d->conn, WEBSOCK_OP_PING, arg, strlen(arg));
  } else if (strcmp(cmd, "handoff") == 0) {
    do_handoff(d);
  } else if (strcmp(cmd, "close") == 0) {
    char *text = strchr(arg, ' ');
    if (text)
      *text++ = '\0';
    websock_test_client_close(d->conn, (uint16_t)atoi(arg), text ? text : "");
  } else {
    fprintf(stderr, "parity_sdk: unknown step %s\n", cmd);
    exit(2);
  }
  show(d);
  sync_step(d);
}

int main(int argc, char **argv) {
  if (argc < 4 || argc > 4 + 1 + 8) {
    fprintf(stderr, "usage: parity_sdk PLUGIN.so SCRIPT RECORD_FILE "
                    "[ROUTE_PATH [KEY=VALUE ...]]\n");
    return 2;
  }
  FILE *f = fopen(argv[2], "r");
  if (!f) {
    perror(argv[2]);
    return 2;
  }
  driver d = {.so_path = argv[1]};
  static const char *const protos[] = {"chat", "superchat", NULL};
  const char *options[2 * 8 + 5] = {"record", argv[3], "color", "blue", NULL};
  websock_test_route route = {
      .path = "/parity", .options = options, .subprotocols = protos};
  if (argc > 4) { /* another route, with only the options given */
    route.path = argv[4];
    size_t n = 0;
    for (int i = 5; i < argc; i++) {
      char *eq = strchr(argv[i], '=');
      if (!eq)
        return 2;
      *eq = '\0';
      options[n++] = argv[i];
      options[n++] = eq + 1;
    }
    options[n] = NULL;
  }
  d.route = &route;
  if (websock_test_host_new(&d.host) != 0 ||
      websock_test_load(d.host, argv[1], &route, &d.plugin) != 0) {
    fprintf(stderr, "parity_sdk: %s\n",
            d.host ? websock_test_error(d.host) : "no host");
    return 2;
  }
  websock_test_set_log_level(d.host, -1);
  char line[4096];
  while (fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\n")] = '\0';
    if (!line[0] || line[0] == '#')
      continue;
    char *arg = strchr(line, ' ');
    if (arg)
      *arg++ = '\0';
    step(&d, line, arg ? arg : (char *)"");
  }
  fclose(f);
  websock_test_host_free(d.host);
  return 0;
}
