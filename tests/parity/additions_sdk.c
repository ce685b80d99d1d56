/*
 * additions_sdk.c - the SDK additions of issue 16 through the test library
 * alone, where the parity script cannot go (tests/parity/additions.txt
 * covers what both hosts do): option_keys refusing websock_test_load(),
 * unload_context() after unload(), websock_options_set_context() outside
 * load(), a bad route pattern, websock_info_source() on each kind of
 * delivery, websock_topic_subscribers() across connections, and the
 * negative-result rules of websock.h.
 *
 *   additions_sdk PATH/TO/additions.so
 *
 * Run by ctest as sdk_additions. Exit status 0 when every expectation held.
 */
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

#define EXPECT WEBSOCK_TEST_EXPECT
#define EXPECT_STR WEBSOCK_TEST_EXPECT_STR

static const char *so;

/* The text of the last message conn sent. */
static const char *last(const websock_conn *c) {
  size_t n = websock_test_sent_count(c);
  return n ? websock_test_sent_text(c, n - 1) : NULL;
}

static void option_keys_and_bad_routes(void) {
  websock_host *h;
  websock_test_plugin *p;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_set_log_level(h, -1);
  const char *typo[] = {"greting", "x", NULL};
  websock_test_route r = {.path = "/r", .options = typo};
  EXPECT(websock_test_load(h, so, &r, &p) == WEBSOCK_EINVAL);
  EXPECT(strstr(websock_test_error(h), "unknown option \"greting\""));
  const char *ok[] = {"greeting", "x", "log_thread", "0", NULL};
  websock_test_route bad = {.path = "/a/*/b", .options = ok};
  EXPECT(websock_test_load(h, so, &bad, &p) == WEBSOCK_EINVAL);
  EXPECT(strstr(websock_test_error(h), "'*' is allowed only"));
  websock_test_host_free(h);
}

static void context_and_params(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *c;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_set_log_level(h, -1);
  const char *opts[] = {"greeting", "hi", NULL};
  websock_test_route r = {.path = "/chat/:room", .options = opts};
  if (!EXPECT(websock_test_load(h, so, &r, &p) == 0))
    return;
  websock_test_request req = {.path = "/chat/a%20b"};
  EXPECT(websock_test_connect(p, &req, &c) == 0);
  EXPECT_STR(last(c), "init room=a b rest=- ctx=hi");
  /* the test may read the parameters on any connection */
  EXPECT_STR(websock_conn_param(c, "room"), "a b");
  EXPECT(websock_conn_param(c, "other") == NULL);
  EXPECT(websock_test_client_text(c, "ctx") == WEBSOCK_OK);
  EXPECT_STR(last(c), "ctx hi late=-4"); /* -4: WEBSOCK_ECONTEXT */
  websock_test_request nope = {.path = "/chat/a%2Fb"};
  EXPECT(websock_test_upgrade(p, &nope, &c) == 400);
  websock_test_request none = {.path = "/chat"};
  EXPECT(websock_test_upgrade(p, &none, &c) == 404);
  websock_test_request forbidden = {.path = "/chat/forbidden"};
  EXPECT(websock_test_upgrade(p, &forbidden, &c) == 403);
  websock_test_host_free(h); /* unload(), then unload_context() */
}

static void sources_topics_results(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *a, *b;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_set_log_level(h, -1);
  if (!EXPECT(websock_test_load(h, so, NULL, &p) == 0))
    return;
  EXPECT(websock_test_connect(p, NULL, &a) == 0);
  EXPECT(websock_test_connect(p, NULL, &b) == 0);
  /* outside handle_info, and from the test itself: none */
  EXPECT(websock_info_source(a, NULL, NULL) == WEBSOCK_INFO_NONE);
  EXPECT(websock_test_info(a, "x", 1) == WEBSOCK_OK);
  EXPECT_STR(last(a), "info send x timer=0 topic=(null)");
  EXPECT(websock_test_client_text(a, "timer") == WEBSOCK_OK);
  EXPECT_STR(last(a), "timer 1");
  EXPECT(websock_test_run(h) == 1);
  EXPECT_STR(last(a), "info timer 1 t");
  EXPECT(websock_test_client_text(a, "sub:t") == WEBSOCK_OK);
  EXPECT(websock_test_client_text(b, "sub:t") == WEBSOCK_OK);
  EXPECT_STR(last(b), "subscribers t 2");
  EXPECT(websock_topic_subscribers(h, "t") == 2);
  EXPECT(websock_topic_subscribers(h, "") == WEBSOCK_EINVAL);
  EXPECT(websock_topic_subscribers_all(h, "t") == 2); /* one host */
  EXPECT(websock_topic_subscribers_all(h, "") == WEBSOCK_EINVAL);
  EXPECT(websock_test_client_text(a, "all:t") == WEBSOCK_OK);
  EXPECT_STR(last(a), "all t 2");
  EXPECT(websock_publish(h, "t", "p", 1) == 0);
  EXPECT(websock_test_run(h) == 1);
  EXPECT_STR(last(a), "info publish t p");
  EXPECT_STR(last(b), "info publish t p");
  /* negative results */
  EXPECT(websock_test_client_text(a, "ret:-5") == WEBSOCK_EFULL);
  EXPECT(websock_test_state_of(a) == WEBSOCK_TEST_OPEN);
  EXPECT(websock_test_client_text(a, "ret:-2") == WEBSOCK_ENOMEM);
  uint16_t code = 0;
  EXPECT(websock_test_closed(a, &code, NULL) && code == 1011);
  const websock_reason *why = websock_test_terminate_reason(a);
  EXPECT(why && why->kind == WEBSOCK_REASON_ERROR);
  EXPECT_STR(why ? why->text : NULL,
             "callback returned WEBSOCK_ENOMEM (out of memory)");
  EXPECT(websock_topic_subscribers(h, "t") == 1); /* a left with its close */
  EXPECT(websock_test_client_text(b, "ret:-3") == WEBSOCK_ECLOSED);
  EXPECT(websock_test_closed(b, &code, NULL) && code == 1000);
  EXPECT(websock_topic_subscribers(h, "t") == 0);
  websock_test_host_free(h);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: additions_sdk PATH/TO/additions.so\n");
    return 2;
  }
  so = argv[1];
  option_keys_and_bad_routes();
  context_and_params();
  sources_topics_results();
  return websock_test_failures() ? 1 : 0;
}
