/*
 * test_topic.c - a worker's topic table: join, leave, find, growth, and the
 * topic deleted with its last member.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus/topic.h"

static websock_conn *fake(uintptr_t n) {
  return (websock_conn *)(n * 16);
}

START_TEST(join_leave) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  ck_assert_ptr_null(wsh_topics_find(&t, "room"));
  wsh_topic *a = wsh_topics_join(&t, "room", fake(1), &added);
  ck_assert_ptr_nonnull(a);
  ck_assert(added);
  ck_assert_ptr_eq(wsh_topics_join(&t, "room", fake(1), &added), a);
  ck_assert(!added); /* subscribing twice is harmless */
  wsh_topics_join(&t, "room", fake(2), &added);
  ck_assert(added);
  ck_assert_uint_eq(a->n, 2);
  ck_assert_ptr_eq(wsh_topics_find(&t, "room"), a);
  ck_assert_ptr_null(wsh_topics_find(&t, "roo"));
  wsh_topics_leave(&t, a, fake(1));
  ck_assert_uint_eq(a->n, 1);
  ck_assert_ptr_eq(a->members[0], fake(2));
  wsh_topics_leave(&t, a, fake(2)); /* last member: the topic goes */
  ck_assert_ptr_null(wsh_topics_find(&t, "room"));
  ck_assert_uint_eq(t.n, 0);
  wsh_topics_free(&t);
}
END_TEST

START_TEST(many_topics_and_members) {
  wsh_topics t;
  wsh_topics_init(&t);
  char name[32];
  bool added;
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "topic-%d", i);
    for (uintptr_t m = 1; m <= 5; m++)
      ck_assert_ptr_nonnull(wsh_topics_join(&t, name, fake(m), &added));
  }
  ck_assert_uint_eq(t.n, 1000);
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "topic-%d", i);
    wsh_topic *tp = wsh_topics_find(&t, name);
    ck_assert_ptr_nonnull(tp);
    ck_assert_str_eq(tp->name, name);
    ck_assert_uint_eq(tp->n, 5);
    if (i % 2)
      for (uintptr_t m = 1; m <= 5; m++)
        wsh_topics_leave(&t, wsh_topics_find(&t, name), fake(m));
  }
  ck_assert_uint_eq(t.n, 500);
  ck_assert_ptr_null(wsh_topics_find(&t, "topic-1"));
  ck_assert_ptr_nonnull(wsh_topics_find(&t, "topic-998"));
  wsh_topics_free(&t);
}
END_TEST

int main(void) {
  Suite *su = suite_create("topic");
  TCase *tc = tcase_create("topic");
  tcase_add_test(tc, join_leave);
  tcase_add_test(tc, many_topics_and_members);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
