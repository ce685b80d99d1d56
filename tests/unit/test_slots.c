/*
 * test_slots.c - the connection slot table behind websock_ref: reuse changes
 * the serial, stale references are refused, and other threads can ask about
 * liveness while the owner adds and removes (run under TSan too).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "network/slots.h"

static websock_conn *fake(uintptr_t n) {
  return (websock_conn *)(n * 16);
}

START_TEST(add_get_remove) {
  wsh_slots s;
  wsh_slots_init(&s);
  uint32_t a, sa, b, sb;
  ck_assert_int_eq(wsh_slots_add(&s, fake(1), &a, &sa), 0);
  ck_assert_int_eq(wsh_slots_add(&s, fake(2), &b, &sb), 0);
  ck_assert_uint_ne(a, b);
  ck_assert_ptr_eq(wsh_slots_get(&s, a, sa), fake(1));
  ck_assert_ptr_eq(wsh_slots_get(&s, b, sb), fake(2));
  ck_assert(wsh_slots_live(&s, a, sa));
  wsh_slots_remove(&s, a);
  ck_assert_ptr_null(wsh_slots_get(&s, a, sa));
  ck_assert(!wsh_slots_live(&s, a, sa));
  /* The slot is reused with a new serial: the old reference stays dead. */
  uint32_t c, sc;
  ck_assert_int_eq(wsh_slots_add(&s, fake(3), &c, &sc), 0);
  ck_assert_uint_eq(c, a);
  ck_assert_uint_ne(sc, sa);
  ck_assert_ptr_null(wsh_slots_get(&s, a, sa));
  ck_assert_ptr_eq(wsh_slots_get(&s, c, sc), fake(3));
  /* Out of range and never-used slots are dead, not a crash. */
  ck_assert(!wsh_slots_live(&s, 0xFFFFFFu, 1));
  ck_assert(!wsh_slots_live(&s, 5000, 1));
  ck_assert_ptr_null(wsh_slots_get(&s, 5000, 1));
  wsh_slots_free(&s);
}
END_TEST

START_TEST(many_chunks) {
  wsh_slots s;
  wsh_slots_init(&s);
  enum { N = 3 * WSH_SLOT_CHUNK + 7 };
  static uint32_t slot[N], serial[N];
  for (uint32_t i = 0; i < N; i++)
    ck_assert_int_eq(wsh_slots_add(&s, fake(i + 1), &slot[i], &serial[i]), 0);
  for (uint32_t i = 0; i < N; i += 2)
    wsh_slots_remove(&s, slot[i]);
  for (uint32_t i = 0; i < N; i++) {
    if (i % 2)
      ck_assert_ptr_eq(wsh_slots_get(&s, slot[i], serial[i]), fake(i + 1));
    else
      ck_assert(!wsh_slots_live(&s, slot[i], serial[i]));
  }
  wsh_slots_free(&s);
}
END_TEST

typedef struct race {
  wsh_slots *s;
  _Atomic uint64_t ref; /* slot << 32 | serial of a live-or-dead slot */
  atomic_int stop;
  atomic_long live_seen;
} race;

static void *reader(void *arg) {
  race *r = arg;
  while (!atomic_load(&r->stop)) {
    uint64_t ref = atomic_load(&r->ref);
    if (wsh_slots_live(r->s, (uint32_t)(ref >> 32), (uint32_t)ref))
      atomic_fetch_add(&r->live_seen, 1);
  }
  return NULL;
}

START_TEST(readers_on_other_threads) {
  wsh_slots s;
  wsh_slots_init(&s);
  race r = {.s = &s};
  pthread_t t[2];
  for (int i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, reader, &r);
  for (int i = 0; i < 20000; i++) {
    uint32_t slot, serial;
    ck_assert_int_eq(wsh_slots_add(&s, fake(1 + (uintptr_t)i), &slot, &serial),
                     0);
    atomic_store(&r.ref, ((uint64_t)slot << 32) | serial);
    wsh_slots_remove(&s, slot);
  }
  atomic_store(&r.stop, 1);
  for (int i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  /* Every slot was removed: the last reference is dead. */
  uint64_t ref = atomic_load(&r.ref);
  ck_assert(!wsh_slots_live(&s, (uint32_t)(ref >> 32), (uint32_t)ref));
  wsh_slots_free(&s);
}
END_TEST

int main(void) {
  Suite *su = suite_create("slots");
  TCase *tc = tcase_create("slots");
  tcase_add_test(tc, add_get_remove);
  tcase_add_test(tc, many_chunks);
  tcase_add_test(tc, readers_on_other_threads);
  tcase_set_timeout(tc, 60);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
