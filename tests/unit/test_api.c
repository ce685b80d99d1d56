/*
 * test_api.c - unit tests for host/network/api.c, the websock_* functions a
 * plugin calls, on a real connection (connfix.h): what they allow outside
 * and inside a callback and once closing, what websock_push queues,
 * websock_close's codes, references (websock_self, websock_send to a live
 * and a dead one), the host handle, options, and publish/broadcast
 * arguments.
 */
#include <check.h>

#define WSH_TEST_NAME "test_api"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "connfix.h"
#include "network/outq.h"
#include "plugins/statebuf.h"

START_TEST(outside_a_callback) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  ck_assert_int_eq(websock_push(c, WEBSOCK_OP_TEXT, "x", 1), WEBSOCK_ECONTEXT);
  ck_assert_int_eq(websock_close(c, 1000, NULL), WEBSOCK_ECONTEXT);
  ck_assert_int_eq(websock_subscribe(c, "t"), WEBSOCK_ECONTEXT);
  ck_assert_int_eq(websock_push(NULL, WEBSOCK_OP_TEXT, "x", 1), WEBSOCK_EINVAL);
  ck_assert_str_eq(websock_conn_route(c), "/rec");
  ck_assert_ptr_eq(websock_conn_host(c), &fx.host);
  ck_assert_str_eq(websock_conn_option(c, "record"), fx.rec);
  ck_assert_ptr_null(websock_conn_option(c, "nope"));
  ck_assert_ptr_null(websock_conn_request(c)); /* init is over */
}
END_TEST

START_TEST(inside_a_callback) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  c->in_callback = 1; /* as the state machine sets it around a callback */
  ck_assert_int_eq(websock_push(c, WEBSOCK_OP_BINARY, "abc", 3), 0);
  ck_assert_uint_eq(websock_unsent_bytes(c), 5);
  ck_assert_int_eq(websock_push(c, WEBSOCK_OP_PING, "", 126), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_push(c, 7, "x", 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_close(c, 1002, NULL), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_close(c, 4000, "bye"), 0);
  ck_assert_uint_eq(c->more->stop_code, 4000);
  ck_assert_str_eq(c->more->stop_text, "bye");
  ck_assert_int_eq(websock_subscribe(c, "room"), 0);
  ck_assert_int_eq(websock_unsubscribe(c, "room"), 0);
  ck_assert_int_eq(websock_cancel_timer(c, 99), WEBSOCK_ENOENT);
  int64_t id = websock_send_after(c, 1000, "later", 5);
  ck_assert_int_gt(id, 0);
  ck_assert_int_eq(websock_cancel_timer(c, id), 0);
  c->in_callback = 0;
  wsh_conn_settle_all(&fx.w.loop);
  fix_read(5);
  ck_assert_int_eq(memcmp(fx.in,
                          "\x82\x03"
                          "abc",
                          5),
                   0);
}
END_TEST

START_TEST(closing_refuses) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  c->state = WSH_CONN_CLOSING;
  c->in_callback = 1;
  ck_assert_int_eq(websock_push(c, WEBSOCK_OP_TEXT, "x", 1), WEBSOCK_ECLOSED);
  ck_assert_int_eq(websock_close_error(c, "x"), WEBSOCK_ECLOSED);
  ck_assert_int_eq(websock_unsubscribe(c, "t"), WEBSOCK_ENOENT); /* allowed */
  c->in_callback = 0;
  c->state = WSH_CONN_OPEN;
}
END_TEST

START_TEST(references) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  websock_ref ref = websock_self(c);
  ck_assert_ptr_eq(ref.host_, &fx.host);
  ck_assert_uint_ne(ref.id_, 0);
  ck_assert_int_eq(websock_send(ref, "m", 1), 0); /* queued for the worker */
  ck_assert_ptr_nonnull(fx.w.inbox);
  websock_ref none = {NULL, 0};
  ck_assert_int_eq(websock_send(none, "m", 1), WEBSOCK_ENOENT);
  websock_ref stale = ref;
  stale.id_ ^= 1; /* another serial: a connection that is gone */
  ck_assert_int_eq(websock_send(stale, "m", 1), WEBSOCK_ENOENT);
  websock_ref elsewhere = ref;
  elsewhere.id_ |= (uint64_t)5 << 56; /* worker 5 of a host with one */
  ck_assert_int_eq(websock_send(elsewhere, "m", 1), WEBSOCK_ENOENT);
  ck_assert_int_eq(websock_send(ref, NULL, 1), WEBSOCK_EINVAL);
}
END_TEST

START_TEST(publish_and_broadcast_arguments) {
  ck_assert_int_eq(websock_publish(NULL, "t", "x", 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_publish(&fx.host, "", "x", 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_publish(&fx.host, "t", NULL, 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_broadcast(&fx.host, "t", WEBSOCK_OP_PING, "x", 1),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_publish(&fx.host, "t", "x", 1), 0);
  ck_assert_int_eq(websock_broadcast(&fx.host, "t", WEBSOCK_OP_TEXT, "x", 1),
                   0);
  int mails = 0;
  for (wsh_mail *m = fx.w.inbox; m; m = m->next)
    mails++;
  ck_assert_int_eq(mails, 2);
}
END_TEST

/* websock_buf_append: bounded by the buffer's max, all or nothing per call,
 * so an export_state cannot write past anything. */
START_TEST(state_buffer_bounded) {
  websock_buf b;
  wsh_statebuf_init(&b, 600);
  uint8_t chunk[250];
  memset(chunk, 'x', sizeof(chunk));
  ck_assert_int_eq(websock_buf_append(&b, chunk, 250), 0);
  ck_assert_int_eq(websock_buf_append(&b, chunk, 250), 0);
  ck_assert_int_eq(websock_buf_append(&b, chunk, 250), WEBSOCK_ETOOBIG);
  ck_assert_uint_eq(b.len, 500); /* what came before stays */
  ck_assert_int_eq(websock_buf_append(&b, chunk, 100), 0);
  ck_assert_uint_eq(b.len, 600);
  ck_assert_uint_le(b.cap, 600);
  ck_assert_int_eq(websock_buf_append(&b, chunk, 1), WEBSOCK_ETOOBIG);
  ck_assert_int_eq(websock_buf_append(&b, NULL, 0), 0);
  ck_assert_int_eq(websock_buf_append(&b, NULL, 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(websock_buf_append(NULL, chunk, 1), WEBSOCK_EINVAL);
  ck_assert_int_eq(b.data[599], 'x');
  wsh_statebuf_free(&b);
  ck_assert_ptr_null(b.data);
}
END_TEST

START_TEST(options_and_strings) {
  websock_options o = {0};
  ck_assert_uint_eq(websock_option_count(&o), 0);
  ck_assert_int_eq(websock_option_at(&o, 0, NULL, NULL), WEBSOCK_ENOENT);
  ck_assert_ptr_null(websock_option(NULL, "k"));
  ck_assert_ptr_null(websock_options_host(NULL));
  ck_assert_str_eq(websock_strerror(WEBSOCK_ENOENT),
                   websock_strerror(WEBSOCK_ENOENT));
}
END_TEST

static Suite *api_suite(void) {
  Suite *s = suite_create("api");
  TCase *tc = tcase_create("api");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, outside_a_callback);
  tcase_add_test(tc, inside_a_callback);
  tcase_add_test(tc, state_buffer_bounded);
  tcase_add_test(tc, closing_refuses);
  tcase_add_test(tc, references);
  tcase_add_test(tc, publish_and_broadcast_arguments);
  tcase_add_test(tc, options_and_strings);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(api_suite());
}
