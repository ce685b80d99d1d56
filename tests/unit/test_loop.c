/*
 * test_loop.c - unit tests for host/network/loop.c: a loop set up and
 * freed, statuses indexed for the counters, connections marked once and
 * unmarked.
 */
#include <check.h>

#include "network/connection.h"
#include "network/loop.h"

#include <sys/epoll.h>

#define WSH_TEST_NAME "test_loop"
#include "testutil.h"

START_TEST(init_free) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 3, NULL, NULL), 0);
  ck_assert_ptr_nonnull(l.base);
  ck_assert_uint_eq(l.index, 3);
  ck_assert_uint_ge(l.rbuf_size, 16384);
  ck_assert_uint_ge(l.obuf_size, 65536);
  wsh_loop_free(&l);
  ck_assert_ptr_null(l.base);
}
END_TEST

START_TEST(mark_once_unmark) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 0, NULL, NULL), 0);
  static websock_conn conns[100];
  for (int i = 0; i < 100; i++) {
    wsh_loop_mark(&l, &conns[i]);
    wsh_loop_mark(&l, &conns[i]); /* twice: listed once */
  }
  ck_assert_uint_eq(l.ndirty, 100);
  wsh_loop_unmark(&l, &conns[42]);
  ck_assert_uint_eq(l.ndirty, 99);
  ck_assert(!conns[42].dirty);
  for (size_t i = 0; i < l.ndirty; i++)
    ck_assert_ptr_ne(l.dirty[i], &conns[42]);
  wsh_loop_unmark(&l, &conns[42]); /* not marked: nothing */
  ck_assert_uint_eq(l.ndirty, 99);
  wsh_loop_free(&l);
}
END_TEST

/* A connection freed while the batch of ready sockets is dispatched is
 * crossed out of the rest of it, and only there. */
START_TEST(forget_in_batch) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 0, NULL, NULL), 0);
  static websock_conn a, b;
  websock_conn *batch[] = {&a, &b, &a, &b};
  for (int i = 0; i < 4; i++)
    l.ready[i].data.ptr = batch[i];
  l.nready = 4;
  l.iready = 1; /* b's event now */
  wsh_loop_io_forget(&l, &a);
  ck_assert_ptr_eq(l.ready[0].data.ptr, &a); /* done already */
  ck_assert_ptr_eq(l.ready[1].data.ptr, &b);
  ck_assert_ptr_null(l.ready[2].data.ptr);
  ck_assert_ptr_eq(l.ready[3].data.ptr, &b);
  l.nready = 0;
  wsh_loop_free(&l);
}
END_TEST

START_TEST(status_index) {
  ck_assert_int_eq(wsh_status_index(101), WSH_STATUS_101);
  ck_assert_int_eq(wsh_status_index(405), WSH_STATUS_405);
  ck_assert_int_eq(wsh_status_index(503), WSH_STATUS_503);
  ck_assert_int_eq(wsh_status_index(418), WSH_STATUS_OTHER);
  ck_assert_int_eq(wsh_status_index(0), WSH_STATUS_OTHER);
}
END_TEST

static Suite *loop_suite(void) {
  Suite *s = suite_create("loop");
  TCase *tc = tcase_create("loop");
  tcase_add_test(tc, init_free);
  tcase_add_test(tc, mark_once_unmark);
  tcase_add_test(tc, forget_in_batch);
  tcase_add_test(tc, status_index);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(loop_suite());
}
