/*
 * test_chat.c - unit test of the chat plugin against the SDK's fake host
 * (websock_test.h). Usage: test_chat path/to/chat.so
 */
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

#define EXPECT WEBSOCK_TEST_EXPECT
#define EXPECT_STR WEBSOCK_TEST_EXPECT_STR

static const char *so_path;

/* terminate() ran exactly once, with this kind of reason. */
static int terminated_once(const websock_conn *c, websock_reason_kind kind) {
  const websock_reason *r = websock_test_terminate_reason(c);
  return websock_test_terminate_count(c) == 1 && r && r->kind == kind;
}

static websock_test_plugin *load(websock_host *h, const char *const *options) {
  websock_test_plugin *p = NULL;
  int rc = websock_test_load(
      h, so_path, &(websock_test_route){.path = "/chat", .options = options},
      &p);
  if (!EXPECT(rc == 0))
    fprintf(stderr, "load: %s\n", websock_test_error(h));
  return rc == 0 ? p : NULL;
}

static websock_conn *join(websock_test_plugin *p, const char *query) {
  websock_conn *c = NULL;
  EXPECT(websock_test_connect(p, &(websock_test_request){.query = query}, &c) ==
         0);
  return c;
}

/* c got exactly these lines since the last clear, then forget them. */
static void expect_lines(websock_conn *c, const char *const *lines) {
  size_t n = 0;
  while (lines[n])
    n++;
  EXPECT(websock_test_sent_count(c) == n);
  for (size_t i = 0; i < n; i++)
    EXPECT_STR(websock_test_sent_text(c, i), lines[i]);
  websock_test_clear_sent(c);
}

#define LINES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NOTHING ((const char *const[]){NULL})

static void test_rooms(void) {
  websock_host *h;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_plugin *p = load(h, NULL);
  if (!p)
    return;
  websock_conn *a = join(p, "room=lobby&name=alice");
  EXPECT(websock_test_subscribed(a, "chat:lobby"));
  websock_test_run(h);
  websock_conn *b = join(p, "name=bob&room=lobby");
  websock_test_run(h);
  websock_conn *c = join(p, "room=other&name=carol");
  websock_test_run(h);
  expect_lines(
      a, LINES("{\"type\":\"join\",\"room\":\"lobby\",\"user\":\"alice\"}",
               "{\"type\":\"join\",\"room\":\"lobby\",\"user\":\"bob\"}"));
  expect_lines(
      b, LINES("{\"type\":\"join\",\"room\":\"lobby\",\"user\":\"bob\"}"));
  expect_lines(
      c, LINES("{\"type\":\"join\",\"room\":\"other\",\"user\":\"carol\"}"));

  /* Everyone in the room, the sender included, once, in order. */
  EXPECT(websock_test_client_text(a, "one") == WEBSOCK_OK);
  EXPECT(websock_test_client_text(b, "two") == WEBSOCK_OK);
  EXPECT(websock_test_client_text(a, "three") == WEBSOCK_OK);
  EXPECT(websock_test_sent_count(a) == 0); /* published, not yet delivered */
  EXPECT(websock_test_run(h) == 3);
  const char *const three[] = {
      "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"alice\",\"text\":"
      "\"one\"}",
      "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"bob\",\"text\":\"two\"}",
      "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"alice\",\"text\":"
      "\"three\"}",
      NULL};
  expect_lines(a, three);
  expect_lines(b, three);
  expect_lines(c, NOTHING);

  /* Leaving: the others hear of it; the leaver gets nothing more. */
  EXPECT(websock_test_client_close(b, WEBSOCK_CLOSE_GOING_AWAY, "going") == 0);
  EXPECT(terminated_once(b, WEBSOCK_REASON_REMOTE));
  EXPECT(!websock_test_subscribed(b, "chat:lobby"));
  websock_test_run(h);
  expect_lines(
      a, LINES("{\"type\":\"leave\",\"room\":\"lobby\",\"user\":\"bob\"}"));
  expect_lines(b, NOTHING);
  expect_lines(c, NOTHING);

  EXPECT(websock_test_shutdown(a) == 0);
  EXPECT(terminated_once(a, WEBSOCK_REASON_SHUTDOWN));
  /* A client gone without a close frame. */
  EXPECT(websock_test_client_drop(c) == 0);
  EXPECT(terminated_once(c, WEBSOCK_REASON_ERROR));
  EXPECT(websock_test_terminate_reason(c)->code == WEBSOCK_CLOSE_ABNORMAL);
  EXPECT(!websock_test_closed(c, NULL, NULL)); /* nothing sent */
  websock_test_host_free(h);
}

static void test_escaping(void) {
  websock_host *h;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_plugin *p = load(h, NULL);
  if (!p)
    return;
  websock_conn *a = join(p, "name=J%C3%BCrgen+%22Q%22");
  websock_test_run(h);
  expect_lines(a, LINES("{\"type\":\"join\",\"room\":\"lobby\",\"user\":"
                        "\"J\xc3\xbcrgen \\\"Q\\\"\"}"));
  EXPECT(websock_test_client_text(
             a, "say \"hi\" \\ /\n\r\t\b\f\x01\x1f\x7f \xc3\xa9") ==
         WEBSOCK_OK);
  websock_test_run(h);
  expect_lines(
      a, LINES("{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"J\xc3\xbcrgen "
               "\\\"Q\\\"\",\"text\":\"say \\\"hi\\\" \\\\ /\\n\\r\\t\\b\\f"
               "\\u0001\\u001f\x7f \xc3\xa9\"}"));
  /* An empty message is a message too. */
  EXPECT(websock_test_client_text(a, "") == WEBSOCK_OK);
  websock_test_run(h);
  expect_lines(
      a, LINES("{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"J\xc3\xbcrgen "
               "\\\"Q\\\"\",\"text\":\"\"}"));
  websock_test_host_free(h);
}

static void test_defaults_and_refusals(void) {
  websock_host *h;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_plugin *p =
      load(h, (const char *const[]){"max_name", "5", NULL});
  if (!p)
    return;
  websock_conn *a = join(p, NULL);
  EXPECT(websock_test_subscribed(a, "chat:lobby"));
  websock_test_run(h);
  const char *line = websock_test_sent_text(a, 0);
  EXPECT(line &&
         strncmp(line, "{\"type\":\"join\",\"room\":\"lobby\",\"user\":\"anon-",
                 41) == 0);

  websock_conn *c;
  uint16_t code = 0;
  EXPECT(websock_test_connect(p, &(websock_test_request){.query = "room=a/b"},
                              &c) == WEBSOCK_ECLOSED);
  EXPECT(websock_test_closed(c, &code, NULL) && code == WEBSOCK_CLOSE_POLICY);
  EXPECT(websock_test_terminate_count(c) == 0); /* init stopped */
  EXPECT(websock_test_connect(p,
                              &(websock_test_request){.query = "name=toolong"},
                              &c) == WEBSOCK_ECLOSED);
  EXPECT(websock_test_closed(c, &code, NULL) && code == WEBSOCK_CLOSE_POLICY);
  EXPECT(websock_test_connect(p, &(websock_test_request){.query = "name=a%0Ab"},
                              &c) == WEBSOCK_ECLOSED);
  EXPECT(websock_test_connect(p, &(websock_test_request){.query = "name=%FF"},
                              &c) == WEBSOCK_ECLOSED);

  /* Binary is refused with 1003; the others hear that the sender left. */
  websock_conn *b = join(p, "name=bin");
  websock_test_run(h);
  websock_test_clear_sent(a);
  EXPECT(websock_test_client_message(b, WEBSOCK_OP_BINARY, "x", 1) ==
         WEBSOCK_STOP);
  EXPECT(websock_test_closed(b, &code, NULL) &&
         code == WEBSOCK_CLOSE_UNSUPPORTED_DATA);
  EXPECT(terminated_once(b, WEBSOCK_REASON_NORMAL));
  websock_test_run(h);
  expect_lines(
      a, LINES("{\"type\":\"leave\",\"room\":\"lobby\",\"user\":\"bin\"}"));

  websock_test_plugin *bad;
  EXPECT(websock_test_load(
             h, so_path,
             &(websock_test_route){
                 .options =
                     (const char *const[]){"fanout", "carrier-pigeon", NULL}},
             &bad) == WEBSOCK_EINVAL);
  websock_test_host_free(h);
}

/* fanout = broadcast: one shared frame per message, no handle_info. */
static void test_broadcast(void) {
  websock_host *h;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_plugin *p =
      load(h, (const char *const[]){"fanout", "broadcast", NULL});
  if (!p)
    return;
  websock_conn *a = join(p, "name=alice");
  websock_conn *b = join(p, "name=bob");
  websock_conn *c = join(p, "room=elsewhere&name=carol");
  websock_test_run(h);
  websock_test_clear_sent(a);
  websock_test_clear_sent(b);
  websock_test_clear_sent(c);
  EXPECT(websock_test_client_text(b, "hi") == WEBSOCK_OK);
  EXPECT(websock_test_run(h) == 1);
  const char *const hi[] = {
      "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"bob\",\"text\":\"hi\"}",
      NULL};
  EXPECT(websock_test_sent_count(a) == 1 && websock_test_sent(a, 0)->shared);
  expect_lines(a, hi);
  expect_lines(b, hi);
  expect_lines(c, NOTHING);
  websock_test_host_free(h);
}

/* announce = off: no join or leave lines, messages as before; announce
 * takes on or off, and a key chat does not know is refused. */
static void test_announce_off(void) {
  websock_host *h;
  EXPECT(websock_test_host_new(&h) == 0);
  websock_test_plugin *p = load(
      h, (const char *const[]){"announce", "off", "fanout", "broadcast", NULL});
  if (!p)
    return;
  websock_conn *a = join(p, "name=alice");
  websock_conn *b = join(p, "name=bob");
  EXPECT(websock_test_subscribed(b, "chat:lobby"));
  EXPECT(websock_test_run(h) == 0); /* nothing was published */
  expect_lines(a, NOTHING);
  expect_lines(b, NOTHING);
  EXPECT(websock_test_client_text(b, "hi") == WEBSOCK_OK);
  EXPECT(websock_test_run(h) == 1);
  const char *const hi[] = {
      "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"bob\",\"text\":\"hi\"}",
      NULL};
  expect_lines(a, hi);
  expect_lines(b, hi);
  EXPECT(websock_test_client_close(b, WEBSOCK_CLOSE_NORMAL, NULL) == 0);
  EXPECT(websock_test_run(h) == 0);
  expect_lines(a, NOTHING);

  websock_test_plugin *bad;
  EXPECT(
      websock_test_load(
          h, so_path,
          &(websock_test_route){
              .options = (const char *const[]){"announce", "sometimes", NULL}},
          &bad) == WEBSOCK_EINVAL);
  EXPECT(websock_test_load(
             h, so_path,
             &(websock_test_route){
                 .options = (const char *const[]){"anounce", "off", NULL}},
             &bad) == WEBSOCK_EINVAL);
  websock_test_host_free(h);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s chat.so\n", argv[0]);
    return 2;
  }
  so_path = argv[1];
  test_rooms();
  test_escaping();
  test_defaults_and_refusals();
  test_broadcast();
  test_announce_off();
  return websock_test_failures() ? 1 : 0;
}
