/*
 * test_msgs.c - unit tests for host/network/msgs.c: a connection's
 * websock_send_after() timers (fired by the loop after their delay, in
 * order, cancellable) and its topic subscriptions (joined once, left one by
 * one or all at once, all left when it closes, at most WSH_SUBS_MAX), on a
 * connection from connfix.h.
 */
#include <check.h>

#define WSH_TEST_NAME "test_msgs"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "bus/topic.h"
#include "connfix.h"
#include "network/msgs.h"

static char fired[64];
static size_t nfired;

static void on_fire(websock_conn *c, int64_t id, const uint8_t *data,
                    size_t len) {
  (void)c;
  (void)id;
  if (nfired + len < sizeof(fired)) {
    memcpy(fired + nfired, data, len);
    nfired += len;
  }
}

START_TEST(timers_fire_in_order) {
  websock_conn *c = fix_connect();
  nfired = 0;
  ck_assert_int_gt(wsh_msgs_send_after(c, 40, "b", 1, on_fire), 0);
  int64_t id = wsh_msgs_send_after(c, 10, "x", 1, on_fire);
  ck_assert_int_gt(wsh_msgs_send_after(c, 5, "a", 1, on_fire), id);
  ck_assert_ptr_nonnull(c->more);
  ck_assert_int_eq(wsh_msgs_cancel_timer(c, id), 0);
  ck_assert_int_eq(wsh_msgs_cancel_timer(c, id), WEBSOCK_ENOENT);
  for (int i = 0; i < 100 && nfired < 2; i++) {
    poll(NULL, 0, 5);
    fix_run();
  }
  ck_assert_uint_eq(nfired, 2);
  ck_assert_int_eq(memcmp(fired, "ab", 2), 0);
  ck_assert_ptr_null(c->more->timers);
}
END_TEST

START_TEST(leave_drops_timers) {
  websock_conn *c = fix_connect();
  nfired = 0;
  ck_assert_int_gt(wsh_msgs_send_after(c, 1, "z", 1, on_fire), 0);
  wsh_msgs_leave(c);
  poll(NULL, 0, 10);
  fix_run();
  ck_assert_uint_eq(nfired, 0);
}
END_TEST

START_TEST(subscriptions) {
  websock_conn *c = fix_connect();
  wsh_topics *t = &fx.w.loop.topics;
  ck_assert_int_eq(wsh_msgs_subscribe(c, "room"), 0);
  ck_assert_int_eq(wsh_msgs_subscribe(c, "room"), 0); /* once */
  ck_assert_int_eq(wsh_msgs_subscribe(c, "other"), 0);
  ck_assert_int_eq(wsh_msgs_subscribe(c, ""), WEBSOCK_EINVAL);
  ck_assert_uint_eq(c->more->subs.n, 2);
  ck_assert_uint_eq(wsh_topics_find(t, "room")->n, 1);
  ck_assert_int_eq(wsh_msgs_unsubscribe(c, "room"), 0);
  ck_assert_ptr_null(wsh_topics_find(t, "room")); /* empty: deleted */
  ck_assert_int_eq(wsh_msgs_unsubscribe(c, "room"), WEBSOCK_ENOENT);
  wsh_msgs_leave(c);
  ck_assert_ptr_null(wsh_topics_find(t, "other"));
  ck_assert_uint_eq(c->more->subs.n, 0);
}
END_TEST

/* A connection in many topics closes: it leaves every one (a topic only it
 * was in goes, the others keep their members, indexed right), and the
 * host's counts follow. Another connection's unsubscribing from a topic it
 * is not in finds nothing. */
START_TEST(closing_leaves_many_topics) {
  wsh_topics *t = &fx.w.loop.topics;
  wsh_topic_counts *counts = &fx.host.counts;
  websock_conn *a = fix_connect();
  int peer_a = fx.peer;
  websock_conn *b = fix_connect();
  char name[32];
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    ck_assert_int_eq(wsh_msgs_subscribe(a, name), 0);
    if (i % 3 == 0)
      ck_assert_int_eq(wsh_msgs_subscribe(b, name), 0);
  }
  ck_assert_uint_eq(t->n, 300);
  ck_assert_uint_eq(a->more->subs.n, 300);
  ck_assert_uint_eq(wsh_topic_counts_get(counts, "t3"), 2);
  ck_assert_int_eq(wsh_msgs_unsubscribe(b, "t1"), WEBSOCK_ENOENT);
  close(peer_a);
  for (int i = 0; i < 100 && fx.w.loop.nconns > 1; i++) {
    poll(NULL, 0, 2);
    fix_run();
  }
  ck_assert_uint_eq(fx.w.loop.nconns, 1);
  ck_assert_ptr_eq(fx.w.loop.conns, b);
  ck_assert_uint_eq(t->n, 100);
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    wsh_topic *tp = wsh_topics_find(t, name);
    ck_assert_uint_eq(wsh_topic_counts_get(counts, name), i % 3 == 0);
    if (i % 3) {
      ck_assert_ptr_null(tp);
      continue;
    }
    ck_assert_ptr_nonnull(tp);
    ck_assert_uint_eq(tp->n, 1);
    ck_assert_ptr_eq(tp->members[0], b);
    ck_assert_ptr_eq(tp->of[0].subs, &b->more->subs);
    ck_assert_ptr_eq(b->more->subs.v[tp->of[0].slot].topic, tp);
    ck_assert_uint_eq(b->more->subs.v[tp->of[0].slot].at, 0);
  }
  ck_assert_int_eq(wsh_msgs_unsubscribe(b, "t3"), 0);
  ck_assert_ptr_null(wsh_topics_find(t, "t3"));
  ck_assert_uint_eq(b->more->subs.n, 99);
}
END_TEST

/* A connection joins at most WSH_SUBS_MAX topics: one more is refused with
 * WEBSOCK_ENOMEM (and counted nowhere); one it has is still fine. */
START_TEST(topics_per_connection_bounded) {
  websock_conn *c = fix_connect();
  char name[32];
  for (int i = 0; i < WSH_SUBS_MAX; i++) {
    snprintf(name, sizeof(name), "t%d", i);
    ck_assert_int_eq(wsh_msgs_subscribe(c, name), 0);
  }
  ck_assert_int_eq(wsh_msgs_subscribe(c, "more"), WEBSOCK_ENOMEM);
  ck_assert_ptr_null(wsh_topics_find(&fx.w.loop.topics, "more"));
  ck_assert_uint_eq(wsh_topic_counts_get(&fx.host.counts, "more"), 0);
  ck_assert_int_eq(wsh_msgs_subscribe(c, "t7"), 0);
  ck_assert_uint_eq(c->more->subs.n, WSH_SUBS_MAX);
  wsh_msgs_leave(c);
  ck_assert_uint_eq(fx.w.loop.topics.n, 0);
  ck_assert_uint_eq(wsh_topic_counts_get(&fx.host.counts, "t7"), 0);
}
END_TEST

/* An open connection that never used a topic or a timer holds no `more`
 * (its handshake deadline needed one, released at the upgrade), and asking
 * about topics and timers does not make one. */
START_TEST(idle_connection_holds_nothing) {
  websock_conn *c = fix_connect();
  fix_upgrade();
  ck_assert_ptr_null(c->more);
  ck_assert_int_eq(wsh_msgs_unsubscribe(c, "x"), WEBSOCK_ENOENT);
  ck_assert_int_eq(wsh_msgs_cancel_timer(c, 1), WEBSOCK_ENOENT);
  wsh_msgs_leave(c);
  ck_assert_ptr_null(c->more);
}
END_TEST

static Suite *msgs_suite(void) {
  Suite *s = suite_create("msgs");
  TCase *tc = tcase_create("msgs");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, timers_fire_in_order);
  tcase_add_test(tc, leave_drops_timers);
  tcase_add_test(tc, subscriptions);
  tcase_add_test(tc, closing_leaves_many_topics);
  tcase_add_test(tc, topics_per_connection_bounded);
  tcase_add_test(tc, idle_connection_holds_nothing);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(msgs_suite());
}
