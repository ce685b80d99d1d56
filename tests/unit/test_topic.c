/*
 * test_topic.c - a worker's topic table: join, leave, find, growth, the
 * topic deleted with its last member, and its count of changes; the
 * membership indexed both ways (topic to connections, connection to
 * topics) against a model under random joins, leaves and closes, a join
 * whose allocation fails, the bound on topics per connection; the host's
 * count table and what it reports to the bus (changes, everything, a 0 once).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/topic.h"

/* Allocation failure on demand: the topic code's realloc and calloc are
 * linked to these (-Wl,--wrap, tests.cmake). fail_at = k makes the k-th
 * call from now fail (once); 0: none fails. */
void *__real_realloc(void *p, size_t n);
void *__real_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_calloc(size_t n, size_t size);
static int fail_at;

static bool fail_now(void) {
  return fail_at > 0 && --fail_at == 0;
}

void *__wrap_realloc(void *p, size_t n) {
  return fail_now() ? NULL : __real_realloc(p, n);
}

void *__wrap_calloc(size_t n, size_t size) {
  return fail_now() ? NULL : __real_calloc(n, size);
}

/* Connections: never dereferenced here, each with its own list of topics. */
#define NCONNS 2000
static wsh_subs subs[NCONNS];

static websock_conn *fake(uintptr_t n) {
  return (websock_conn *)(n * 16 + 16);
}

static wsh_topic *join(wsh_topics *t, const char *name, unsigned i,
                       bool *added) {
  return wsh_topics_join(t, name, fake(i), &subs[i], added);
}

/* i leaves name; false if it was no member. */
static bool leave(wsh_topics *t, const char *name, unsigned i) {
  wsh_topic *tp = wsh_topics_find(t, name);
  long j = tp ? wsh_subs_find(&subs[i], tp, fake(i)) : -1;
  if (j < 0)
    return false;
  wsh_topics_leave(t, &subs[i], (size_t)j);
  return true;
}

/* ck_assert marks its place through a pipe at every call: too slow for
 * the checks below, made hundreds of times per step. */
#define expect(cond)                                                           \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                    \
  } while (0)
#define expect_eq(a, b) expect((a) == (b))
#define expect_lt(a, b) expect((a) < (b))
#define expect_le(a, b) expect((a) <= (b))
#define expect_gt(a, b) expect((a) > (b))

/* Every membership is indexed both ways: each connection's entry points at
 * its place in the topic's members and back; each topic in the table has a
 * member, and each member's back-index names this topic; as many
 * memberships each way (so every connection's topic is in the table).
 * Returns the memberships (connections 0..nconns-1). */
static size_t check_consistent(wsh_topics *t, unsigned nconns) {
  size_t total = 0, ntopics = 0, members = 0;
  for (unsigned i = 0; i < nconns; i++) {
    expect_le(subs[i].n, subs[i].cap);
    for (uint32_t j = 0; j < subs[i].n; j++) {
      const wsh_sub *e = &subs[i].v[j];
      expect_lt(e->at, e->topic->n);
      expect_eq(e->topic->members[e->at], fake(i));
      expect_eq(e->topic->of[e->at].subs, &subs[i]);
      expect_eq(e->topic->of[e->at].slot, j);
      total++;
    }
  }
  for (size_t b = 0; b < t->nbuckets; b++) {
    for (wsh_topic *tp = t->buckets[b]; tp; tp = tp->next) {
      ntopics++;
      expect_gt(tp->n, 0); /* an empty topic is deleted */
      expect_le(tp->n, tp->cap);
      for (size_t k = 0; k < tp->n; k++) {
        const wsh_member_of *of = &tp->of[k];
        expect_lt(of->slot, of->subs->n);
        expect_eq(of->subs->v[of->slot].topic, tp);
        expect_eq(of->subs->v[of->slot].at, k);
      }
      members += tp->n;
    }
  }
  expect_eq(ntopics, t->n);
  expect_eq(members, total);
  return total;
}

static void free_all(wsh_topics *t) {
  wsh_topics_free(t);
  for (unsigned i = 0; i < NCONNS; i++)
    wsh_subs_free(&subs[i]);
}

START_TEST(join_leave) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  ck_assert_ptr_null(wsh_topics_find(&t, "room"));
  wsh_topic *a = join(&t, "room", 1, &added);
  ck_assert_ptr_nonnull(a);
  ck_assert(added);
  ck_assert_ptr_eq(join(&t, "room", 1, &added), a);
  ck_assert(!added); /* subscribing twice is harmless */
  ck_assert_uint_eq(a->n, 1);
  ck_assert_uint_eq(subs[1].n, 1);
  join(&t, "room", 2, &added);
  ck_assert(added);
  ck_assert_uint_eq(a->n, 2);
  ck_assert_ptr_eq(wsh_topics_find(&t, "room"), a);
  ck_assert_ptr_null(wsh_topics_find(&t, "roo"));
  ck_assert_int_eq(wsh_subs_find(&subs[3], a, fake(3)), -1);
  ck_assert(leave(&t, "room", 1));
  ck_assert(!leave(&t, "room", 1));
  ck_assert_uint_eq(a->n, 1);
  ck_assert_ptr_eq(a->members[0], fake(2));
  ck_assert_uint_eq(subs[1].n, 0);
  check_consistent(&t, 4);
  ck_assert(leave(&t, "room", 2)); /* last member: the topic goes */
  ck_assert_ptr_null(wsh_topics_find(&t, "room"));
  ck_assert_uint_eq(t.n, 0);
  free_all(&t);
}
END_TEST

/* The duplicate check scans the shorter side: a connection in many topics
 * joining a small one, and a small connection joining a big room. */
START_TEST(duplicate_join_either_side) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  char name[32];
  for (unsigned i = 0; i < 100; i++) {
    snprintf(name, sizeof(name), "t%u", i);
    ck_assert_ptr_nonnull(join(&t, name, 0, &added));
  }
  for (unsigned i = 1; i < 300; i++)
    ck_assert_ptr_nonnull(join(&t, "t7", i, &added));
  for (unsigned i = 0; i < 300; i++) { /* t7: 300 members; 0: 100 topics */
    ck_assert_ptr_nonnull(join(&t, "t7", i, &added));
    ck_assert(!added);
  }
  for (unsigned i = 0; i < 100; i++) {
    snprintf(name, sizeof(name), "t%u", i);
    ck_assert_ptr_nonnull(join(&t, name, 0, &added));
    ck_assert(!added);
  }
  ck_assert_uint_eq(wsh_topics_find(&t, "t7")->n, 300);
  ck_assert_uint_eq(subs[0].n, 100);
  ck_assert_uint_eq(check_consistent(&t, 300), 399);
  free_all(&t);
}
END_TEST

/* Every join and leave moves `changes` (a delivery compares it before and
 * after its first member); a join that was already a member does not. */
START_TEST(changes_counted) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  uint64_t c0 = t.changes;
  join(&t, "room", 1, &added);
  ck_assert_uint_eq(t.changes, c0 + 1);
  join(&t, "room", 1, &added);
  ck_assert_uint_eq(t.changes, c0 + 1);
  join(&t, "other", 1, &added);
  join(&t, "room", 2, &added);
  ck_assert_uint_eq(t.changes, c0 + 3);
  leave(&t, "room", 1);
  ck_assert_uint_eq(t.changes, c0 + 4);
  free_all(&t);
}
END_TEST

START_TEST(many_topics_and_members) {
  wsh_topics t;
  wsh_topics_init(&t);
  char name[32];
  bool added;
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "topic-%d", i);
    for (unsigned m = 1; m <= 5; m++)
      ck_assert_ptr_nonnull(join(&t, name, m, &added));
  }
  ck_assert_uint_eq(t.n, 1000);
  for (int i = 0; i < 1000; i++) {
    snprintf(name, sizeof(name), "topic-%d", i);
    wsh_topic *tp = wsh_topics_find(&t, name);
    ck_assert_ptr_nonnull(tp);
    ck_assert_str_eq(tp->name, name);
    ck_assert_uint_eq(tp->n, 5);
    if (i % 2)
      for (unsigned m = 1; m <= 5; m++)
        ck_assert(leave(&t, name, m));
  }
  ck_assert_uint_eq(t.n, 500);
  ck_assert_ptr_null(wsh_topics_find(&t, "topic-1"));
  ck_assert_ptr_nonnull(wsh_topics_find(&t, "topic-998"));
  ck_assert_uint_eq(check_consistent(&t, 6), 2500);
  free_all(&t);
}
END_TEST

/* xorshift: the same sequence every run. */
static uint64_t rng = 88172645463325252ull;

static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

/* Random joins, leaves and closes (a connection leaving all its topics, as
 * wsh_msgs_leave does) across 48 connections and 16 topics, against a
 * table of who is in what; every step checks both indexes, the model, the
 * topics alive and `changes`. */
#define MC 48
#define MT 16
START_TEST(random_against_model) {
  wsh_topics t;
  wsh_topics_init(&t);
  static bool in[MC][MT];
  memset(in, 0, sizeof(in));
  size_t memberships = 0;
  uint64_t changes = t.changes;
  char name[32];
  bool added;
  for (int step = 0; step < 8000; step++) {
    unsigned c = rnd(MC), k = rnd(MT), op = rnd(100);
    snprintf(name, sizeof(name), "topic/%u", k);
    if (op < 55) {
      ck_assert_ptr_nonnull(join(&t, name, c, &added));
      ck_assert(added == !in[c][k]);
      changes += added;
      memberships += added;
      in[c][k] = true;
    } else if (op < 97) {
      ck_assert(leave(&t, name, c) == in[c][k]);
      changes += in[c][k];
      memberships -= in[c][k];
      in[c][k] = false;
    } else { /* closing: its topics in an arbitrary order */
      while (subs[c].n) {
        wsh_topics_leave(&t, &subs[c], rnd(subs[c].n));
        changes++;
        memberships--;
      }
      wsh_subs_free(&subs[c]);
      memset(in[c], 0, sizeof(in[c]));
    }
    ck_assert_uint_eq(t.changes, changes);
    ck_assert_uint_eq(check_consistent(&t, MC), memberships);
    if (step % 64 == 0) { /* the model, topic by topic */
      for (unsigned j = 0; j < MT; j++) {
        size_t n = 0;
        for (unsigned i = 0; i < MC; i++)
          n += in[i][j];
        snprintf(name, sizeof(name), "topic/%u", j);
        wsh_topic *tp = wsh_topics_find(&t, name);
        ck_assert_uint_eq(tp ? tp->n : 0, n);
        for (unsigned i = 0; tp && i < MC; i++)
          expect((wsh_subs_find(&subs[i], tp, fake(i)) >= 0) == in[i][j]);
      }
    }
  }
  free_all(&t);
}
END_TEST

/* A big room (NCONNS members) emptied in random order, the moved entries
 * mended each time; then filled again. */
START_TEST(big_room_random_leaves) {
  wsh_topics t;
  wsh_topics_init(&t);
  static unsigned order[NCONNS];
  bool added;
  for (int round = 0; round < 2; round++) {
    for (unsigned i = 0; i < NCONNS; i++) {
      ck_assert_ptr_nonnull(join(&t, "room", i, &added));
      ck_assert(added);
      if (i % 3 == 0) /* and a topic of its own, for the other side */
        ck_assert_ptr_nonnull(join(&t, i % 2 ? "odd" : "even", i, &added));
      order[i] = i;
    }
    for (unsigned i = NCONNS; i > 1; i--) {
      unsigned j = rnd(i), x = order[i - 1];
      order[i - 1] = order[j];
      order[j] = x;
    }
    for (unsigned i = 0; i < NCONNS; i++) {
      ck_assert(leave(&t, "room", order[i]));
      if (i % 97 == 0)
        check_consistent(&t, NCONNS);
    }
    ck_assert_ptr_null(wsh_topics_find(&t, "room"));
    ck_assert_uint_eq(check_consistent(&t, NCONNS), (NCONNS + 2) / 3);
  }
  free_all(&t);
}
END_TEST

/* A join whose allocation fails returns NULL and changes nothing: no empty
 * topic left, every index as it was, `changes` not moved; the same join
 * then succeeds. Each allocation in turn fails, from the same state: a new
 * topic in a new table (the buckets, the topic, the connection's list, the
 * members, their back-indexes), and a full topic joined by a connection
 * whose list is full (the list, the members, the back-indexes). */
static void setup_full(wsh_topics *t, bool full) {
  bool added;
  wsh_topics_init(t);
  if (!full)
    return;
  for (unsigned i = 10; i < 14; i++)
    join(t, "full", i, &added);
  join(t, "a", 9, &added);
  join(t, "b", 9, &added);
  ck_assert_uint_eq(wsh_topics_find(t, "full")->cap, 4);
  ck_assert_uint_eq(subs[9].cap, 2);
}

START_TEST(join_alloc_failure_changes_nothing) {
  wsh_topics t;
  bool added;
  for (int full = 0; full < 2; full++) {
    const char *name = full ? "full" : "new";
    unsigned c = full ? 9 : 1;
    int failures = 0;
    for (int k = 1;; k++) {
      setup_full(&t, full);
      size_t before = check_consistent(&t, 20), ntopics = t.n;
      uint64_t changes = t.changes;
      fail_at = k;
      wsh_topic *tp = join(&t, name, c, &added);
      bool failed = fail_at == 0; /* the k-th allocation came and failed */
      fail_at = 0;
      if (!failed) {
        ck_assert_ptr_nonnull(tp);
        ck_assert(added);
        ck_assert_uint_eq(check_consistent(&t, 20), before + 1);
        ck_assert_uint_eq(t.changes, changes + 1);
        free_all(&t);
        break;
      }
      failures++;
      ck_assert_ptr_null(tp);
      ck_assert(!added);
      ck_assert_uint_eq(t.changes, changes);
      ck_assert_uint_eq(t.n, ntopics);
      ck_assert_uint_eq(check_consistent(&t, 20), before);
      if (!full)
        ck_assert_ptr_null(wsh_topics_find(&t, "new"));
      else
        ck_assert_uint_eq(wsh_topics_find(&t, "full")->n, 4);
      /* and the same join now succeeds, consistently */
      ck_assert_ptr_nonnull(join(&t, name, c, &added));
      ck_assert(added);
      ck_assert_uint_eq(check_consistent(&t, 20), before + 1);
      free_all(&t);
      ck_assert_int_lt(k, 10);
    }
    ck_assert_int_eq(failures, full ? 3 : 5);
  }
}
END_TEST

/* A connection may join WSH_SUBS_MAX topics; one more is refused (nothing
 * changes), joining one it has is still fine. */
START_TEST(topics_per_connection_bounded) {
  wsh_topics t;
  wsh_topics_init(&t);
  bool added;
  char name[32];
  for (unsigned i = 0; i < WSH_SUBS_MAX; i++) {
    snprintf(name, sizeof(name), "t%u", i);
    ck_assert_ptr_nonnull(join(&t, name, 0, &added));
  }
  ck_assert_ptr_null(join(&t, "one-more", 0, &added));
  ck_assert_ptr_null(wsh_topics_find(&t, "one-more"));
  ck_assert_ptr_nonnull(join(&t, "t5", 0, &added));
  ck_assert(!added);
  ck_assert_ptr_nonnull(join(&t, "one-more", 1, &added));
  ck_assert_uint_eq(check_consistent(&t, 2), WSH_SUBS_MAX + 1);
  free_all(&t);
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
  tcase_set_timeout(tc, 30); /* under the sanitizers on a loaded machine */
  tcase_add_test(tc, join_leave);
  tcase_add_test(tc, duplicate_join_either_side);
  tcase_add_test(tc, changes_counted);
  tcase_add_test(tc, many_topics_and_members);
  tcase_add_test(tc, random_against_model);
  tcase_add_test(tc, big_room_random_leaves);
  tcase_add_test(tc, join_alloc_failure_changes_nothing);
  tcase_add_test(tc, topics_per_connection_bounded);
  tcase_add_test(tc, counts_report_changes_then_forget_zeros);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
