/*
 * test_topic.c - a worker's topic table: join, leave, find, growth, the
 * topic deleted with its last member, and its count of changes; the host's
 * count table and what it reports to the bus (changes, everything, a 0 once).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* Every join and leave moves `changes` (a delivery compares it before and
 * after its first member); a join that was already a member does not. */
START_TEST(changes_counted) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  uint64_t c0 = t.changes;
  wsh_topic *a = wsh_topics_join(&t, "room", fake(1), &added);
  ck_assert_uint_eq(t.changes, c0 + 1);
  wsh_topics_join(&t, "room", fake(1), &added);
  ck_assert_uint_eq(t.changes, c0 + 1);
  wsh_topics_join(&t, "other", fake(1), &added);
  wsh_topics_join(&t, "room", fake(2), &added);
  ck_assert_uint_eq(t.changes, c0 + 3);
  wsh_topics_leave(&t, a, fake(1));
  ck_assert_uint_eq(t.changes, c0 + 4);
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

/* What a report handed its sink, as "name=n " in table order. */
static char reported[512];

static void sink(void *arg, const char *name, size_t n) {
  size_t len = strlen(reported);
  (void)arg;
  snprintf(reported + len, sizeof(reported) - len, "%s=%zu ", name, n);
}

static const char *report(wsh_topic_counts *tc, bool all) {
  reported[0] = '\0';
  wsh_topic_counts_report(tc, all, sink, NULL);
  return reported;
}

START_TEST(counts_report_changes_then_forget_zeros) {
  wsh_topic_counts tc;
  wsh_topic_counts_init(&tc);
  /* Never reported: a topic at 0 goes at once, as before the bus. */
  ck_assert_int_eq(wsh_topic_counts_add(&tc, "a", 1), 0);
  ck_assert_int_eq(wsh_topic_counts_add(&tc, "a", -1), 0);
  ck_assert_uint_eq(tc.n, 0);
  ck_assert_str_eq(report(&tc, false), ""); /* 0 -> 0: nothing to say */
  wsh_topic_counts_add(&tc, "a", 1);
  wsh_topic_counts_add(&tc, "a", 1);
  ck_assert_str_eq(report(&tc, false), "a=2 ");
  ck_assert_str_eq(report(&tc, false), "");    /* nothing changed */
  ck_assert_str_eq(report(&tc, true), "a=2 "); /* the refresh */
  /* Down to 0 after a report: kept (and counted 0) until the 0 is told. */
  wsh_topic_counts_add(&tc, "a", -1);
  wsh_topic_counts_add(&tc, "a", -1);
  ck_assert_uint_eq(wsh_topic_counts_get(&tc, "a"), 0);
  ck_assert_uint_eq(tc.n, 1);
  ck_assert_str_eq(report(&tc, true), "a=0 ");
  ck_assert_uint_eq(tc.n, 0);
  ck_assert_str_eq(report(&tc, true), "");
  /* Back up and down between two reports: the same count, nothing said;
   * a report without a sink (the bus is down) only marks them. */
  wsh_topic_counts_add(&tc, "b", 1);
  ck_assert_str_eq(report(&tc, false), "b=1 ");
  wsh_topic_counts_add(&tc, "b", -1);
  wsh_topic_counts_add(&tc, "b", 1);
  ck_assert_str_eq(report(&tc, false), "");
  wsh_topic_counts_add(&tc, "b", -1);
  wsh_topic_counts_report(&tc, false, NULL, NULL);
  ck_assert_uint_eq(tc.n, 0);
  ck_assert_str_eq(report(&tc, true), "");
  wsh_topic_counts_free(&tc);
}
END_TEST

int main(void) {
  Suite *su = suite_create("topic");
  TCase *tc = tcase_create("topic");
  tcase_add_test(tc, join_leave);
  tcase_add_test(tc, changes_counted);
  tcase_add_test(tc, many_topics_and_members);
  tcase_add_test(tc, counts_report_changes_then_forget_zeros);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
