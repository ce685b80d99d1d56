/*
 * test_outq.c - unit tests for host/network/outq.c, a connection's output
 * queue, on a socketpair (connfix.h): small writes of one loop turn staged
 * in one run of the loop's area and written with one write, what does not
 * fit going to the evbuffer in order, a short write keeping the rest, a
 * referenced buffer queued after what is staged, and a broadcast frame
 * written at once when it is a connection's first output of the turn.
 */
#include <check.h>
#include <event2/buffer.h>

#define WSH_TEST_NAME "test_outq"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "connfix.h"
#include "network/outq.h"

START_TEST(staged_in_one_run) {
  websock_conn *c = fix_connect();
  ck_assert_int_eq(wsh_outq_add(c, "ab", 2, "cd", 2), 0);
  ck_assert_int_eq(wsh_outq_add(c, "ef", 2, NULL, 0), 0);
  ck_assert_uint_eq(c->stage_len, 6);
  ck_assert_ptr_null(c->out); /* nothing allocated */
  ck_assert_uint_eq(fx.w.loop.obuf_used, 6);
  ck_assert_uint_eq(wsh_outq_unsent(c), 6);
  wsh_outq_write(c, false);
  ck_assert_uint_eq(wsh_outq_unsent(c), 0);
  fix_read(6);
  ck_assert_int_eq(memcmp(fx.in, "abcdef", 6), 0);
}
END_TEST

START_TEST(too_big_goes_to_the_buffer_in_order) {
  websock_conn *c = fix_connect();
  ck_assert_int_eq(wsh_outq_add(c, "1", 1, NULL, 0), 0);
  static uint8_t big[300 * 1024]; /* more than the loop's area */
  memset(big, 'x', sizeof(big));
  ck_assert_int_eq(wsh_outq_add(c, big, sizeof(big), NULL, 0), 0);
  ck_assert_uint_eq(c->stage_len, 0); /* the staged run moved first */
  ck_assert_ptr_nonnull(c->out);
  ck_assert_uint_eq(wsh_outq_unsent(c), 1 + sizeof(big));
  ck_assert_int_eq(wsh_outq_add(c, "2", 1, NULL, 0), 0);
  ck_assert_uint_eq(evbuffer_get_length(c->out), 2 + sizeof(big));
  /* the socketpair takes part of it: a short write keeps the rest */
  size_t total = 0;
  uint8_t first = 0, last = 0, buf[65536];
  for (int i = 0;
       i < 1000 && (wsh_outq_unsent(c) > 0 || total < 2 + sizeof(big)); i++) {
    wsh_outq_write(c, false);
    ssize_t n;
    while ((n = recv(fx.peer, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
      if (!total)
        first = buf[0];
      total += (size_t)n;
      last = buf[n - 1];
    }
  }
  ck_assert_uint_eq(total, 2 + sizeof(big));
  ck_assert_int_eq(first, '1');
  ck_assert_int_eq(last, '2');
  ck_assert_uint_eq(wsh_outq_unsent(c), 0);
  ck_assert_ptr_null(c->out); /* freed once empty */
  ck_assert_int_eq(c->io_error, 0);
}
END_TEST

START_TEST(buffer_keeps_the_order) {
  websock_conn *c = fix_connect();
  ck_assert_int_eq(wsh_outq_add(c, "first", 5, NULL, 0), 0);
  struct evbuffer *b = wsh_outq_buffer(c);
  ck_assert_ptr_nonnull(b);
  evbuffer_add_reference(b, "second", 6, NULL, NULL);
  wsh_outq_write(c, false);
  fix_read(11);
  ck_assert_int_eq(memcmp(fx.in, "firstsecond", 11), 0);
}
END_TEST

/* Payloads queued behind output already in the evbuffer go in through
 * evbuffer_reserve_space and wsh_copy above 2 KiB (base/copy.h): every
 * byte arrives, in order. */
START_TEST(queued_payloads_arrive_whole) {
  websock_conn *c = fix_connect();
  static uint8_t pay[3][20000];
  static const size_t len[3] = {2049, 16384, 20000};
  static uint8_t want[64 * 1024];
  size_t nwant = 0;
  ck_assert_int_eq(wsh_outq_add(c, "first", 5, NULL, 0), 0);
  ck_assert_ptr_nonnull(wsh_outq_buffer(c)); /* the rest goes behind it */
  memcpy(want, "first", 5);
  nwant = 5;
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < len[k]; i++)
      pay[k][i] = (uint8_t)(i * 131 + (size_t)k * 7);
    ck_assert_int_eq(wsh_outq_add(c, "hdr", 3, pay[k], len[k]), 0);
    memcpy(want + nwant, "hdr", 3);
    memcpy(want + nwant + 3, pay[k], len[k]);
    nwant += 3 + len[k];
  }
  ck_assert_uint_eq(c->stage_len, 0);
  ck_assert_uint_eq(evbuffer_get_length(c->out), nwant);
  size_t got = 0;
  static uint8_t buf[64 * 1024];
  for (int i = 0; i < 1000 && got < nwant; i++) {
    wsh_outq_write(c, false);
    ssize_t n;
    while ((n = recv(fx.peer, buf + got, sizeof(buf) - got, MSG_DONTWAIT)) > 0)
      got += (size_t)n;
  }
  ck_assert_uint_eq(got, nwant);
  ck_assert_int_eq(memcmp(buf, want, nwant), 0);
  ck_assert_int_eq(c->io_error, 0);
}
END_TEST

START_TEST(write_error_is_kept) {
  websock_conn *c = fix_connect();
  close(fx.peer);
  fx.peer = -1;
  ck_assert_int_eq(wsh_outq_add(c, "x", 1, NULL, 0), 0);
  wsh_outq_write(c, false);
  ck_assert_int_eq(c->io_error, EPIPE);
}
END_TEST

static int ref_done;
static void count_done(const void *data, size_t len, void *arg) {
  (void)data;
  (void)len;
  (void)arg;
  ref_done++;
}

/* What the peer can read now, without running the loop. */
static size_t peer_read_now(uint8_t *buf, size_t cap) {
  ssize_t n = recv(fx.peer, buf, cap, MSG_DONTWAIT);
  return n > 0 ? (size_t)n : 0;
}

/* A broadcast frame, c's first output of the turn, is on the socket before
 * the turn ends (issue 18: a broadcast reaches its first subscribers
 * before it is queued for the last); c is marked so that more output of
 * the same turn is batched, by reference, into one write at its end. */
START_TEST(add_ref_writes_the_first_output_at_once) {
  websock_conn *c = fix_connect();
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_int_eq(c->dirty, 0);
  ref_done = 0;
  ck_assert_int_eq(wsh_outq_add_ref(c, "bcast", 5, count_done, NULL), 0);
  uint8_t buf[64];
  ck_assert_uint_eq(peer_read_now(buf, sizeof(buf)), 5);
  ck_assert_int_eq(memcmp(buf, "bcast", 5), 0);
  ck_assert_ptr_null(c->out); /* nothing allocated */
  ck_assert_int_eq(c->dirty, 1);
  /* the second of the turn waits, by reference, for the end of the turn */
  ck_assert_int_eq(wsh_outq_add_ref(c, "again", 5, count_done, NULL), 1);
  ck_assert_uint_eq(peer_read_now(buf, sizeof(buf)), 0);
  ck_assert_uint_eq(wsh_outq_unsent(c), 5);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_uint_eq(peer_read_now(buf, sizeof(buf)), 5);
  ck_assert_int_eq(memcmp(buf, "again", 5), 0);
  ck_assert_int_eq(ref_done, 1);
}
END_TEST

/* Output already staged this turn goes first: the frame queues behind it. */
START_TEST(add_ref_behind_staged_output_keeps_the_order) {
  websock_conn *c = fix_connect();
  wsh_conn_settle_all(&fx.w.loop);
  ref_done = 0;
  ck_assert_int_eq(wsh_outq_add(c, "first", 5, NULL, 0), 0);
  ck_assert_int_eq(wsh_outq_add_ref(c, "second", 6, count_done, NULL), 1);
  uint8_t buf[64];
  ck_assert_uint_eq(peer_read_now(buf, sizeof(buf)), 0);
  wsh_outq_write(c, false);
  fix_read(11);
  ck_assert_int_eq(memcmp(fx.in, "firstsecond", 11), 0);
  ck_assert_int_eq(ref_done, 1);
}
END_TEST

/* A peer that is gone: the error is kept for the settle, nothing queued. */
START_TEST(add_ref_write_error_is_kept) {
  websock_conn *c = fix_connect();
  wsh_conn_settle_all(&fx.w.loop);
  close(fx.peer);
  fx.peer = -1;
  ref_done = 0;
  ck_assert_int_eq(wsh_outq_add_ref(c, "x", 1, count_done, NULL), 0);
  ck_assert_int_eq(c->io_error, EPIPE);
  ck_assert_uint_eq(wsh_outq_unsent(c), 0);
  ck_assert_int_eq(ref_done, 0);
}
END_TEST

static Suite *outq_suite(void) {
  Suite *s = suite_create("outq");
  TCase *tc = tcase_create("queue");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, staged_in_one_run);
  tcase_add_test(tc, too_big_goes_to_the_buffer_in_order);
  tcase_add_test(tc, buffer_keeps_the_order);
  tcase_add_test(tc, queued_payloads_arrive_whole);
  tcase_add_test(tc, write_error_is_kept);
  tcase_add_test(tc, add_ref_writes_the_first_output_at_once);
  tcase_add_test(tc, add_ref_behind_staged_output_keeps_the_order);
  tcase_add_test(tc, add_ref_write_error_is_kept);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(outq_suite());
}
