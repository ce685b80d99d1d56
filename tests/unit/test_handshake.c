/*
 * test_handshake.c - unit tests for host/protocol/handshake.c: the request
 * parser fed whole, split and one byte at a time, the RFC 6455 §4.2.1 checks,
 * the Sec-WebSocket-Accept of the RFC's example, subprotocol negotiation, and
 * the exact bytes of the responses.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/handshake.h"

#define LIMIT 8192

#define RL "GET /chat?room=1&x=2 HTTP/1.1\r\n"
#define HOST "Host: example.com\r\n"
#define UPG "Upgrade: websocket\r\n"
#define CONN "Connection: Upgrade\r\n"
#define KEY "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
#define VER "Sec-WebSocket-Version: 13\r\n"
#define END "\r\n"
#define GOOD RL HOST UPG CONN KEY VER END

/* The RFC 6455 §5.7 masked "Hello" frame. */
static const char hello_frame[] =
    "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */
/* ------------------------------------------------------------------------ */

/* Feeds the whole head at once from a buffer of exactly its size (so that
 * ASan sees any over-read); returns the status the client would get (0 for
 * an accepted upgrade) and the bytes consumed. */
static int outcome_whole(const char *head, size_t len, size_t *consumed) {
  websock_request *req;
  char *copy = malloc(len);
  int st;

  ck_assert_ptr_nonnull(copy);
  memcpy(copy, head, len);
  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  st = wsh_request_feed(req, copy, len, consumed);
  free(copy);
  if (st == WSH_HS_DONE)
    st = wsh_request_check_upgrade(req, NULL);
  else if (st == WSH_HS_NEED_MORE)
    st = -1;
  wsh_request_free(req);
  return st;
}

/* The same, one byte at a time, each in a buffer of its own. */
static int outcome_bytewise(const char *head, size_t len, size_t *consumed) {
  websock_request *req;
  int st = WSH_HS_NEED_MORE;
  size_t total = 0, c;

  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  for (size_t i = 0; i < len && st == WSH_HS_NEED_MORE; i++) {
    char *byte = malloc(1);
    ck_assert_ptr_nonnull(byte);
    *byte = head[i];
    st = wsh_request_feed(req, byte, 1, &c);
    free(byte);
    if (st == WSH_HS_NEED_MORE || st == WSH_HS_DONE)
      ck_assert_uint_eq(c, 1);
    total += c;
  }
  if (st == WSH_HS_DONE)
    st = wsh_request_check_upgrade(req, NULL);
  else if (st == WSH_HS_NEED_MORE)
    st = -1;
  wsh_request_free(req);
  *consumed = total;
  return st;
}

/* Parses a complete head; fails the test unless it is DONE. */
static websock_request *parse(const char *head) {
  websock_request *req;
  size_t c;

  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  ck_assert_int_eq(wsh_request_feed(req, head, strlen(head), &c), WSH_HS_DONE);
  ck_assert_uint_eq(c, strlen(head));
  return req;
}

static char *render(const websock_response *resp, const char *accept) {
  char *out = NULL;
  size_t len = 0;

  ck_assert_int_eq(wsh_response_render(resp, accept, &out, &len), 0);
  ck_assert_uint_eq(len, strlen(out));
  return out;
}

/* ------------------------------------------------------------------------ */
/* Sec-WebSocket-Accept and token lists                                      */
/* ------------------------------------------------------------------------ */

START_TEST(accept_key_rfc_example) {
  char out[29];

  ck_assert_int_eq(wsh_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
  ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  ck_assert_int_eq(wsh_accept_key(NULL, out), WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_accept_key("", out), WEBSOCK_EINVAL);
}
END_TEST

START_TEST(token_lists) {
  ck_assert(wsh_token_list_has("Upgrade", "upgrade"));
  ck_assert(wsh_token_list_has("keep-alive, Upgrade", "upgrade"));
  ck_assert(wsh_token_list_has("keep-alive,upgrade", "upgrade"));
  ck_assert(wsh_token_list_has(" ,\tUPGRADE\t, ", "upgrade"));
  ck_assert(wsh_token_list_has("foo, WebSocket", "websocket"));
  ck_assert(!wsh_token_list_has("upgrade2", "upgrade"));
  ck_assert(!wsh_token_list_has("xupgrade", "upgrade"));
  ck_assert(!wsh_token_list_has("up grade", "upgrade"));
  ck_assert(!wsh_token_list_has("keep-alive", "upgrade"));
  ck_assert(!wsh_token_list_has("", "upgrade"));
  ck_assert(!wsh_token_list_has(",,", "upgrade"));
  ck_assert(!wsh_token_list_has(NULL, "upgrade"));
  ck_assert(!wsh_token_list_has("a, , b", ""));
}
END_TEST

START_TEST(status_texts) {
  static const struct {
    int status;
    const char *text;
  } t[] = {
      {101, "Switching Protocols"},
      {200, "OK"},
      {400, "Bad Request"},
      {401, "Unauthorized"},
      {403, "Forbidden"},
      {404, "Not Found"},
      {405, "Method Not Allowed"},
      {408, "Request Timeout"},
      {413, "Payload Too Large"},
      {426, "Upgrade Required"},
      {429, "Too Many Requests"},
      {431, "Request Header Fields Too Large"},
      {500, "Internal Server Error"},
      {501, "Not Implemented"},
      {503, "Service Unavailable"},
      {505, "HTTP Version Not Supported"},
      {599, "Unknown"},
      {-1, "Unknown"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    ck_assert_str_eq(wsh_status_text(t[i].status), t[i].text);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The table of upgrade requests                                             */
/* ------------------------------------------------------------------------ */

static const struct request_case {
  const char *name;
  const char *head;
  int status; /* 0: a valid upgrade */
} cases[] = {
    {"good", GOOD, 0},
    {"lower-case names",
     "GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: "
     "upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
     "sec-websocket-version: 13\r\n\r\n",
     0},
    {"Upgrade list", RL HOST "Upgrade: foo, WebSocket\r\n" CONN KEY VER END, 0},
    {"Connection list",
     RL HOST UPG "Connection: keep-alive, Upgrade\r\n" KEY VER END, 0},
    {"two Connection headers",
     RL HOST UPG
     "Connection: keep-alive\r\nConnection: upgrade\r\n" KEY VER END,
     0},
    {"trailing whitespace",
     RL HOST UPG CONN KEY "Sec-WebSocket-Version: 13 \t\r\n" END, 0},
    {"Content-Length 0", RL HOST UPG CONN KEY VER "Content-Length: 0\r\n" END,
     0},
    {"absolute-form",
     "GET http://example.com/chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 0},
    {"HTTP/1.2", "GET / HTTP/1.2\r\n" HOST UPG CONN KEY VER END, 0},
    {"missing Host", RL UPG CONN KEY VER END, 400},
    {"two Host headers", RL HOST HOST UPG CONN KEY VER END, 400},
    {"POST", "POST /chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 400},
    {"HTTP/1.0", "GET /chat HTTP/1.0\r\n" HOST UPG CONN KEY VER END, 400},
    {"Upgrade h2c", RL HOST "Upgrade: h2c\r\n" CONN KEY VER END, 400},
    {"Upgrade missing", RL HOST CONN KEY VER END, 400},
    {"Connection missing", RL HOST UPG KEY VER END, 400},
    {"Connection upgrade2", RL HOST UPG "Connection: upgrade2\r\n" KEY VER END,
     400},
    {"Connection keep-alive",
     RL HOST UPG "Connection: keep-alive\r\n" KEY VER END, 400},
    {"key missing", RL HOST UPG CONN VER END, 400},
    {"key too short",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n" VER END, 400},
    {"key not base64",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\n" VER END,
     400},
    {"key '=' inside",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2=jZQ==\r\n" VER END,
     400},
    {"key bad padding",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=A\r\n" VER END,
     400},
    {"key 17 bytes",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSE=\r\n" VER END,
     400},
    {"key 18 bytes",
     RL HOST UPG CONN "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZSEh\r\n" VER END,
     400},
    {"two keys", RL HOST UPG CONN KEY KEY VER END, 400},
    {"version 8", RL HOST UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END, 426},
    {"version 13, 8",
     RL HOST UPG CONN KEY "Sec-WebSocket-Version: 13, 8\r\n" END, 426},
    {"version missing", RL HOST UPG CONN KEY END, 426},
    {"version 8 and no Host",
     RL UPG CONN KEY "Sec-WebSocket-Version: 8\r\n" END, 400},
    {"a body", RL HOST UPG CONN KEY VER "Content-Length: 5\r\n" END "hello",
     400},
    {"chunked",
     RL HOST UPG CONN KEY VER "Transfer-Encoding: chunked\r\n" END
                              "5\r\nhello\r\n0\r\n\r\n",
     400},
    {"garbage request line", "HELLO THERE\r\n" HOST END, 400},
    {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
    {"no version on request line", "GET /chat\r\n" HOST END, 400},
    {"path not origin-form", "GET chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END,
     400},
    {"asterisk-form", "GET * HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 400},
    {"fragment", "GET /chat#x HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 400},
    {"ftp scheme",
     "GET ftp://example.com/chat HTTP/1.1\r\n" HOST UPG CONN KEY VER END, 400},
    {"obs-fold", RL HOST UPG CONN "X-Long: a\r\n b\r\n" KEY VER END, 400},
    {"control char in value", RL HOST UPG CONN "X-Bad: a\x01z\r\n" KEY VER END,
     400},
    {"space before colon", RL "Host : example.com\r\n" UPG CONN KEY VER END,
     400},
};

START_TEST(request_table) {
  const struct request_case *tc = &cases[_i];
  size_t len = strlen(tc->head), consumed = 0;
  int st = outcome_whole(tc->head, len, &consumed);

  ck_assert_msg(st == tc->status, "%s: got %d, want %d", tc->name, st,
                tc->status);
  if (st == 0)
    ck_assert_uint_eq(consumed, len);
}
END_TEST

START_TEST(request_table_bytewise) {
  const struct request_case *tc = &cases[_i];
  size_t len = strlen(tc->head), whole_consumed = 0, consumed = 0;
  int whole = outcome_whole(tc->head, len, &whole_consumed);
  int st = outcome_bytewise(tc->head, len, &consumed);

  ck_assert_msg(st == whole, "%s: bytewise %d, whole %d", tc->name, st, whole);
  if (st == 0)
    ck_assert_uint_eq(consumed, whole_consumed);
}
END_TEST

/* Too big or too many: built at run time. */
START_TEST(header_over_limit) {
  size_t len = LIMIT + 100;
  char *head = malloc(len + 1);
  size_t c;
  int n = snprintf(head, len + 1, "%s%s%sX-Big: ", RL, HOST, UPG);

  memset(head + n, 'a', len - (size_t)n);
  memcpy(head + len - 4, "\r\n\r\n", 4);
  head[len] = '\0';
  ck_assert_int_eq(outcome_whole(head, len, &c), 431);
  ck_assert_int_eq(outcome_bytewise(head, len, &c), 431);
  free(head);
}
END_TEST

START_TEST(head_exactly_at_limit) {
  static const char good[] = GOOD;
  websock_request *req;
  size_t len = sizeof good - 1, c;

  ck_assert_int_eq(wsh_request_new(&req, len), 0);
  ck_assert_int_eq(wsh_request_feed(req, good, len, &c), WSH_HS_DONE);
  ck_assert_uint_eq(c, len);
  wsh_request_free(req);
  /* One byte less does not fit, whether fed whole or in two pieces. */
  ck_assert_int_eq(wsh_request_new(&req, len - 1), 0);
  ck_assert_int_eq(wsh_request_feed(req, good, len, &c), 431);
  wsh_request_free(req);
  ck_assert_int_eq(wsh_request_new(&req, len - 1), 0);
  ck_assert_int_eq(wsh_request_feed(req, good, len - 1, &c), WSH_HS_NEED_MORE);
  ck_assert_int_eq(wsh_request_feed(req, &good[len - 1], 1, &c), 431);
  wsh_request_free(req);
}
END_TEST

START_TEST(too_many_headers) {
  char head[4096];
  size_t n =
      (size_t)snprintf(head, sizeof head, "%s", RL HOST UPG CONN KEY VER);
  size_t c;

  for (int i = 0; i < 96; i++) /* 6 above + 96 = 102 headers */
    n += (size_t)snprintf(head + n, sizeof head - n, "X-%d: v\r\n", i);
  snprintf(head + n, sizeof head - n, "\r\n");
  ck_assert_int_eq(outcome_whole(head, strlen(head), &c), 431);
  ck_assert_int_eq(outcome_bytewise(head, strlen(head), &c), 431);
}
END_TEST

START_TEST(hundred_headers_ok) {
  char head[4096];
  size_t n =
      (size_t)snprintf(head, sizeof head, "%s", RL HOST UPG CONN KEY VER);
  size_t c;

  for (int i = 0; i < 94; i++) /* 6 + 94 = 100 headers */
    n += (size_t)snprintf(head + n, sizeof head - n, "X-%d: v\r\n", i);
  snprintf(head + n, sizeof head - n, "\r\n");
  ck_assert_int_eq(outcome_whole(head, strlen(head), &c), 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Where the head ends                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(head_then_frames) {
  char buf[512];
  size_t hlen = strlen(GOOD), c;
  websock_request *req;

  memcpy(buf, GOOD, hlen);
  memcpy(buf + hlen, hello_frame, sizeof hello_frame - 1);
  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  ck_assert_int_eq(
      wsh_request_feed(req, buf, hlen + sizeof hello_frame - 1, &c),
      WSH_HS_DONE);
  ck_assert_uint_eq(c, hlen);
  ck_assert_int_eq(wsh_request_check_upgrade(req, NULL), 0);
  /* Once done, nothing more is taken. */
  ck_assert_int_eq(wsh_request_feed(req, buf + hlen, 3, &c), WSH_HS_DONE);
  ck_assert_uint_eq(c, 0);
  wsh_request_free(req);
}
END_TEST

/* Every split into two pieces, the second carrying the frame too. */
START_TEST(head_split_everywhere) {
  char buf[512];
  size_t hlen = strlen(GOOD), total = hlen + sizeof hello_frame - 1;

  memcpy(buf, GOOD, hlen);
  memcpy(buf + hlen, hello_frame, sizeof hello_frame - 1);
  for (size_t cut = 1; cut < hlen; cut++) {
    websock_request *req;
    size_t c1, c2;
    ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
    ck_assert_int_eq(wsh_request_feed(req, buf, cut, &c1), WSH_HS_NEED_MORE);
    ck_assert_uint_eq(c1, cut);
    ck_assert_int_eq(wsh_request_feed(req, buf + cut, total - cut, &c2),
                     WSH_HS_DONE);
    ck_assert_uint_eq(c1 + c2, hlen);
    ck_assert_int_eq(wsh_request_check_upgrade(req, NULL), 0);
    ck_assert_str_eq(websock_request_header(req, "sec-websocket-key"),
                     "dGhlIHNhbXBsZSBub25jZQ==");
    ck_assert_str_eq(websock_request_query(req), "room=1&x=2");
    wsh_request_free(req);
  }
}
END_TEST

/* A plain HTTP request (no Upgrade) also ends after its head. */
START_TEST(plain_request_then_more) {
  static const char head[] = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
  static const char buf[] = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                            "GET /next HTTP/1.1\r\n\r\n";
  websock_request *req;
  const char *why = NULL;
  size_t c;

  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  ck_assert_int_eq(wsh_request_feed(req, buf, sizeof buf - 1, &c), WSH_HS_DONE);
  ck_assert_uint_eq(c, sizeof head - 1);
  ck_assert(!wsh_request_wants_websocket(req));
  ck_assert_str_eq(websock_request_path(req), "/healthz");
  ck_assert_int_eq(wsh_request_check_upgrade(req, &why), 400);
  ck_assert_ptr_nonnull(why);
  wsh_request_free(req);
}
END_TEST

START_TEST(empty_feed_and_errors_stick) {
  websock_request *req;
  size_t c = 99;

  ck_assert_int_eq(wsh_request_new(&req, LIMIT), 0);
  ck_assert_int_eq(wsh_request_feed(req, "", 0, &c), WSH_HS_NEED_MORE);
  ck_assert_uint_eq(c, 0);
  ck_assert_int_eq(wsh_request_feed(req, "BAD\x01", 4, &c), 400);
  ck_assert_int_eq(wsh_request_feed(req, GOOD, strlen(GOOD), &c), 400);
  ck_assert_uint_eq(c, 0);
  wsh_request_free(req);
}
END_TEST

START_TEST(check_reasons) {
  websock_request *req = parse(RL HOST UPG CONN KEY END);
  const char *why = NULL;

  ck_assert_int_eq(wsh_request_check_upgrade(req, &why), 426);
  ck_assert_str_eq(why, "Sec-WebSocket-Version must be 13");
  wsh_request_free(req);
  req = parse("POST / HTTP/1.1\r\n" HOST UPG CONN KEY VER END);
  ck_assert_int_eq(wsh_request_check_upgrade(req, &why), 400);
  ck_assert_str_eq(why, "method must be GET");
  wsh_request_free(req);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Request accessors                                                         */
/* ------------------------------------------------------------------------ */

START_TEST(request_accessors) {
  websock_request *req = parse(RL HOST UPG CONN KEY VER "X-Empty:\r\n" END);
  const char *name, *value;

  ck_assert_str_eq(websock_request_method(req), "GET");
  ck_assert_str_eq(websock_request_path(req), "/chat");
  ck_assert_str_eq(websock_request_query(req), "room=1&x=2");
  ck_assert_str_eq(websock_request_header(req, "HOST"), "example.com");
  ck_assert_str_eq(websock_request_header(req, "host"), "example.com");
  ck_assert_str_eq(websock_request_header(req, "sec-WEBSOCKET-version"), "13");
  ck_assert_str_eq(websock_request_header(req, "x-empty"), "");
  ck_assert_ptr_null(websock_request_header(req, "Origin"));
  ck_assert_uint_eq(websock_request_header_count(req), 6);
  ck_assert_int_eq(websock_request_header_at(req, 0, &name, &value), 0);
  ck_assert_str_eq(name, "Host");
  ck_assert_str_eq(value, "example.com");
  ck_assert_int_eq(websock_request_header_at(req, 6, &name, &value),
                   WEBSOCK_ENOENT);
  ck_assert(wsh_request_wants_websocket(req));
  snprintf(req->remote_addr, sizeof req->remote_addr, "[::1]:5000");
  ck_assert_str_eq(websock_request_remote_addr(req), "[::1]:5000");
  ck_assert_ptr_null(websock_request_subprotocol(req));
  wsh_request_free(req);
}
END_TEST

START_TEST(path_without_query) {
  websock_request *req = parse("GET /a/b%20c HTTP/1.1\r\n" HOST END);

  ck_assert_str_eq(websock_request_path(req), "/a/b%20c");
  ck_assert_str_eq(websock_request_query(req), "");
  wsh_request_free(req);
  req = parse("GET /?only HTTP/1.1\r\n" HOST END);
  ck_assert_str_eq(websock_request_path(req), "/");
  ck_assert_str_eq(websock_request_query(req), "only");
  wsh_request_free(req);
  req = parse("GET wss://example.com:8443/x?y=1 HTTP/1.1\r\n" HOST END);
  ck_assert_str_eq(websock_request_path(req), "/x");
  ck_assert_str_eq(websock_request_query(req), "y=1");
  wsh_request_free(req);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Subprotocols                                                              */
/* ------------------------------------------------------------------------ */

#define PROTOS                                                                 \
  "Sec-WebSocket-Protocol: chat, superchat\r\n"                                \
  "Sec-WebSocket-Protocol:v2.json\r\n"

START_TEST(subprotocol_negotiation) {
  websock_request *req = parse(RL HOST UPG CONN KEY VER PROTOS END);
  char *route1[] = {"mqtt", "v2.json", "chat"};
  char *route2[] = {"CHAT", "superchat"};
  char *route3[] = {"mqtt", "Chat"};

  ck_assert_str_eq(wsh_negotiate_subprotocol(req, route1, 3), "v2.json");
  ck_assert_ptr_eq(wsh_negotiate_subprotocol(req, route1, 3), route1[1]);
  ck_assert_str_eq(wsh_negotiate_subprotocol(req, route2, 2), "superchat");
  ck_assert_ptr_null(wsh_negotiate_subprotocol(req, route3, 2));
  ck_assert_ptr_null(wsh_negotiate_subprotocol(req, NULL, 0));
  ck_assert(wsh_request_offers_subprotocol(req, "chat"));
  ck_assert(wsh_request_offers_subprotocol(req, "v2.json"));
  ck_assert(!wsh_request_offers_subprotocol(req, "Chat"));
  ck_assert(!wsh_request_offers_subprotocol(req, "super"));
  wsh_request_free(req);
}
END_TEST

START_TEST(response_subprotocol) {
  websock_request *req = parse(RL HOST UPG CONN KEY VER PROTOS END);
  websock_response resp;

  wsh_response_init(&resp, req);
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, "chat"), 0);
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, "superchat"), 0);
  ck_assert_str_eq(resp.subprotocol, "superchat");
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, "Chat"),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, "mqtt"),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, NULL),
                   WEBSOCK_EINVAL);
  ck_assert_str_eq(resp.subprotocol, "superchat");
  wsh_response_free(&resp);
  wsh_request_free(req);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

START_TEST(render_101) {
  websock_request *req = parse(RL HOST UPG CONN KEY VER PROTOS END);
  websock_response resp;
  char accept[29];
  char *out;

  ck_assert_int_eq(
      wsh_accept_key(websock_request_header(req, "Sec-WebSocket-Key"), accept),
      0);
  wsh_response_init(&resp, req);
  ck_assert_int_eq(resp.status, 101);
  out = render(&resp, accept);
  ck_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "\r\n");
  free(out);
  ck_assert_int_eq(websock_response_set_subprotocol(&resp, "chat"), 0);
  ck_assert_int_eq(websock_response_add_header(&resp, "X-Served-By", "test"),
                   0);
  ck_assert_int_eq(websock_response_set_body(&resp, "ignored for 101"), 0);
  out = render(&resp, accept);
  ck_assert_str_eq(out, "HTTP/1.1 101 Switching Protocols\r\n"
                        "Upgrade: websocket\r\n"
                        "Connection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                        "Sec-WebSocket-Protocol: chat\r\n"
                        "X-Served-By: test\r\n"
                        "\r\n");
  free(out);
  wsh_response_free(&resp);
  wsh_request_free(req);
}
END_TEST

START_TEST(render_401) {
  websock_response resp;
  char *out;

  wsh_response_init(&resp, NULL);
  resp.status = 401;
  ck_assert_int_eq(websock_response_add_header(&resp, "WWW-Authenticate",
                                               "Basic realm=\"chat\""),
                   0);
  out = render(&resp, NULL);
  ck_assert_str_eq(out, "HTTP/1.1 401 Unauthorized\r\n"
                        "WWW-Authenticate: Basic realm=\"chat\"\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 13\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "Unauthorized\n");
  free(out);
  ck_assert_int_eq(websock_response_set_body(&resp, "{\"error\":\"token\"}"),
                   0);
  ck_assert_int_eq(
      websock_response_add_header(&resp, "Content-Type", "application/json"),
      0);
  out = render(&resp, NULL);
  ck_assert_str_eq(out, "HTTP/1.1 401 Unauthorized\r\n"
                        "WWW-Authenticate: Basic realm=\"chat\"\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: 17\r\n"
                        "Connection: close\r\n"
                        "\r\n"
                        "{\"error\":\"token\"}");
  free(out);
  wsh_response_free(&resp);
}
END_TEST

START_TEST(render_426) {
  websock_response resp;
  char *out;

  wsh_response_init(&resp, NULL);
  resp.status = 426;
  out = render(&resp, NULL);
  ck_assert_str_eq(out, "HTTP/1.1 426 Upgrade Required\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n"
                        "Content-Length: 17\r\n"
                        "Connection: close\r\n"
                        "Sec-WebSocket-Version: 13\r\n"
                        "\r\n"
                        "Upgrade Required\n");
  free(out);
  resp.status = 400;
  out = render(&resp, NULL);
  ck_assert_ptr_null(strstr(out, "Sec-WebSocket-Version"));
  free(out);
  wsh_response_free(&resp);
}
END_TEST

START_TEST(refused_headers) {
  static const char *const bad_names[] = {
      "Upgrade",
      "connection",
      "CONTENT-LENGTH",
      "Transfer-Encoding",
      "Sec-WebSocket-Accept",
      "sec-websocket-protocol",
      "Sec-WebSocket-X",
      "",
      "Bad Name",
      "X:Y",
      "X-A\r\nB",
      "X-\n",
      "X-é",
  };
  static const char *const bad_values[] = {
      "a\r\nInjected: 1",
      "a\n",
      "a\r",
      "bell\x07",
  };
  websock_response resp;

  wsh_response_init(&resp, NULL);
  for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++)
    ck_assert_msg(websock_response_add_header(&resp, bad_names[i], "v") ==
                      WEBSOCK_EINVAL,
                  "name %zu accepted", i);
  for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++)
    ck_assert_msg(websock_response_add_header(&resp, "X-Ok", bad_values[i]) ==
                      WEBSOCK_EINVAL,
                  "value %zu accepted", i);
  ck_assert_int_eq(websock_response_add_header(&resp, NULL, "v"),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_response_add_header(&resp, "X-Ok", NULL),
                   WEBSOCK_EINVAL);
  ck_assert_uint_eq(resp.nheaders, 0);
  ck_assert_int_eq(websock_response_add_header(&resp, "X-Ok", "a\tb"), 0);
  ck_assert_int_eq(websock_response_add_header(&resp, "X-Empty", ""), 0);
  ck_assert_uint_eq(resp.nheaders, 2);
  wsh_response_free(&resp);
}
END_TEST

START_TEST(many_response_headers) {
  websock_response resp;
  int state;

  wsh_response_init(&resp, NULL);
  for (int i = 0; i < 50; i++)
    ck_assert_int_eq(websock_response_add_header(&resp, "X-N", "v"), 0);
  ck_assert_uint_eq(resp.nheaders, 50);
  websock_response_set_state(&resp, &state);
  ck_assert_ptr_eq(resp.state, &state);
  ck_assert_int_eq(websock_response_set_body(&resp, NULL), 0);
  ck_assert_ptr_null(resp.body);
  wsh_response_free(&resp);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *handshake_suite(void) {
  Suite *s = suite_create("handshake");
  TCase *tc = tcase_create("core");
  int ncases = (int)(sizeof cases / sizeof cases[0]);

  tcase_add_test(tc, accept_key_rfc_example);
  tcase_add_test(tc, token_lists);
  tcase_add_test(tc, status_texts);
  tcase_add_loop_test(tc, request_table, 0, ncases);
  tcase_add_loop_test(tc, request_table_bytewise, 0, ncases);
  tcase_add_test(tc, header_over_limit);
  tcase_add_test(tc, head_exactly_at_limit);
  tcase_add_test(tc, too_many_headers);
  tcase_add_test(tc, hundred_headers_ok);
  tcase_add_test(tc, head_then_frames);
  tcase_add_test(tc, head_split_everywhere);
  tcase_add_test(tc, plain_request_then_more);
  tcase_add_test(tc, empty_feed_and_errors_stick);
  tcase_add_test(tc, check_reasons);
  tcase_add_test(tc, request_accessors);
  tcase_add_test(tc, path_without_query);
  tcase_add_test(tc, subprotocol_negotiation);
  tcase_add_test(tc, response_subprotocol);
  tcase_add_test(tc, render_101);
  tcase_add_test(tc, render_401);
  tcase_add_test(tc, render_426);
  tcase_add_test(tc, refused_headers);
  tcase_add_test(tc, many_response_headers);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(handshake_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
