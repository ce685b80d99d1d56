/*
 * handoff_sdk.c - live code upgrade through the SDK's test library, as a
 * plugin author unit-tests it: websock_test_handoff() moves a connection of
 * tests/plugins/counter.c from one build to the next (the count goes on, the
 * new build answers, its timer and topic carry over), and its failures close
 * with 1012 like websockd does (tests/integration/test_handoff.py is the
 * daemon's side).
 *
 *   handoff_sdk COUNTER_V1.so COUNTER_V2.so COUNTER_PLAIN.so
 *
 * Exits 0 if every expectation held, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

typedef struct builds {
  websock_host *host;
  websock_test_plugin *v1, *v2, *plain;
} builds;

/* The i-th message the connection sent, as text ("" past the end). */
static const char *sent(const websock_conn *c, size_t i) {
  const char *t = websock_test_sent_text(c, i);
  return t ? t : "";
}

static websock_conn *open_conn(websock_test_plugin *p) {
  websock_conn *c = NULL;
  WEBSOCK_TEST_EXPECT(websock_test_connect(p, NULL, &c) == 0);
  return c;
}

/* The count goes on under v2; the timer and the topic carry over. */
static void round_trip(builds *b) {
  websock_conn *c = open_conn(b->v1);
  if (!c)
    return;
  websock_test_client_text(c, "one");
  websock_test_client_text(c, "sub:news");
  websock_test_client_text(c, "after:100:tick");
  WEBSOCK_TEST_EXPECT(websock_test_handoff(c, b->v2) == 0);
  WEBSOCK_TEST_EXPECT(websock_test_state_of(c) == WEBSOCK_TEST_OPEN);
  WEBSOCK_TEST_EXPECT(websock_test_timers_pending(c) == 1);
  WEBSOCK_TEST_EXPECT(websock_test_subscribed(c, "news"));
  websock_test_client_text(c, "two");
  websock_test_advance(b->host, 100);
  websock_publish(b->host, "news", "hello", 5);
  websock_test_run(b->host);
  WEBSOCK_TEST_EXPECT_STR(sent(c, 0), "v1 1 one");
  WEBSOCK_TEST_EXPECT_STR(sent(c, 2), "v1 3 after:100:tick");
  WEBSOCK_TEST_EXPECT_STR(sent(c, 3), "v2 4 two");
  WEBSOCK_TEST_EXPECT_STR(sent(c, 4), "v2 5 info:tick");
  WEBSOCK_TEST_EXPECT_STR(sent(c, 5), "v2 6 info:hello");
  WEBSOCK_TEST_EXPECT(websock_test_terminate_count(c) == 0);
  websock_test_conn_free(c);
}

/* export_state fails: 1012, terminate() once (by v1, with its state). */
static void export_fails(builds *b) {
  websock_conn *c = open_conn(b->v1);
  if (!c)
    return;
  websock_test_client_text(c, "fail-export");
  WEBSOCK_TEST_EXPECT(websock_test_handoff(c, b->v2) == WEBSOCK_STOP);
  uint16_t code = 0;
  const char *text = NULL;
  WEBSOCK_TEST_EXPECT(websock_test_closed(c, &code, &text) && code == 1012);
  WEBSOCK_TEST_EXPECT_STR(text, "service restart");
  WEBSOCK_TEST_EXPECT(websock_test_terminate_count(c) == 1);
  const websock_reason *r = websock_test_terminate_reason(c);
  WEBSOCK_TEST_EXPECT(r && r->kind == WEBSOCK_REASON_SHUTDOWN &&
                      r->code == 1012);
  WEBSOCK_TEST_EXPECT(websock_test_handoff(c, b->v2) == WEBSOCK_ECLOSED);
  websock_test_conn_free(c);
}

/* import_state fails: 1012 too, terminate() once (by v2). */
static void import_fails(builds *b) {
  websock_conn *c = open_conn(b->v1);
  if (!c)
    return;
  websock_test_client_text(c, "fail-import");
  WEBSOCK_TEST_EXPECT(websock_test_handoff(c, b->v2) == WEBSOCK_STOP);
  uint16_t code = 0;
  WEBSOCK_TEST_EXPECT(websock_test_closed(c, &code, NULL) && code == 1012);
  WEBSOCK_TEST_EXPECT(websock_test_terminate_count(c) == 1);
  websock_test_conn_free(c);
}

/* Without the callbacks nothing moves (websockd drains). */
static void no_callbacks(builds *b) {
  websock_conn *c = open_conn(b->plain), *d = open_conn(b->v1);
  if (!c || !d)
    return;
  WEBSOCK_TEST_EXPECT(websock_test_handoff(c, b->v2) == WEBSOCK_EINVAL);
  WEBSOCK_TEST_EXPECT(websock_test_handoff(d, b->plain) == WEBSOCK_EINVAL);
  websock_test_client_text(c, "still");
  websock_test_client_text(d, "still");
  WEBSOCK_TEST_EXPECT_STR(sent(c, 0), "p1 1 still");
  WEBSOCK_TEST_EXPECT_STR(sent(d, 0), "v1 1 still");
  websock_test_conn_free(c);
  websock_test_conn_free(d);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: handoff_sdk V1.so V2.so PLAIN.so\n");
    return 2;
  }
  builds b = {0};
  if (websock_test_host_new(&b.host) != 0 ||
      websock_test_load(b.host, argv[1], NULL, &b.v1) != 0 ||
      websock_test_load(b.host, argv[2], NULL, &b.v2) != 0 ||
      websock_test_load(b.host, argv[3], NULL, &b.plain) != 0) {
    fprintf(stderr, "handoff_sdk: %s\n",
            b.host ? websock_test_error(b.host) : "no host");
    websock_test_host_free(b.host);
    return 2;
  }
  round_trip(&b);
  export_fails(&b);
  import_fails(&b);
  no_callbacks(&b);
  websock_test_host_free(b.host);
  return websock_test_failures() ? 1 : 0;
}
