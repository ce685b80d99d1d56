/*
 * test_hotlock.c - the hot path takes no lock (issue 18). A connection on a
 * socketpair (connfix.h: the worker's loop and code, run on the test's
 * thread) echoes N messages after a warm-up while every lock is counted:
 * the host's own (this test links with -Wl,--wrap for pthread_mutex_lock,
 * pthread_mutex_trylock, pthread_rwlock_rdlock, pthread_rwlock_wrlock and
 * pthread_spin_lock, so every call from host code, and from the plugin
 * through the websock_* API, passes through a counter) and libevent's
 * (counting lock callbacks installed as evthread_use_pthreads() installs
 * its own, as websockd does). The echoes must take none of the host's and
 * only one of libevent's: the worker's own event base lock, which no other
 * worker ever takes (uncontended). scripts/test.sh runs this under TSan
 * too.
 */
#include <check.h>
#include <event2/thread.h>
#include <pthread.h>

#define WSH_TEST_NAME "test_hotlock"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "connfix.h"

/* ---- counting ------------------------------------------------------------ */

static int counting;             /* between the warm-up and the end */
static unsigned long host_locks; /* pthread locks taken by host code */
static unsigned long ev_locks;   /* libevent's lock callbacks */
static void *ev_lock_seen[8];    /* the distinct libevent locks taken */
static size_t n_ev_lock_seen;
static unsigned long loop_runs; /* event_base_loop calls counted */

int __real_pthread_mutex_lock(pthread_mutex_t *m);
int __real_pthread_mutex_trylock(pthread_mutex_t *m);
int __real_pthread_rwlock_rdlock(pthread_rwlock_t *l);
int __real_pthread_rwlock_wrlock(pthread_rwlock_t *l);
int __real_pthread_spin_lock(pthread_spinlock_t *l);
int __wrap_pthread_mutex_lock(pthread_mutex_t *m);
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m);
int __wrap_pthread_rwlock_rdlock(pthread_rwlock_t *l);
int __wrap_pthread_rwlock_wrlock(pthread_rwlock_t *l);
int __wrap_pthread_spin_lock(pthread_spinlock_t *l);

int __wrap_pthread_mutex_lock(pthread_mutex_t *m) {
  host_locks += counting;
  return __real_pthread_mutex_lock(m);
}
int __wrap_pthread_mutex_trylock(pthread_mutex_t *m) {
  host_locks += counting;
  return __real_pthread_mutex_trylock(m);
}
int __wrap_pthread_rwlock_rdlock(pthread_rwlock_t *l) {
  host_locks += counting;
  return __real_pthread_rwlock_rdlock(l);
}
int __wrap_pthread_rwlock_wrlock(pthread_rwlock_t *l) {
  host_locks += counting;
  return __real_pthread_rwlock_wrlock(l);
}
int __wrap_pthread_spin_lock(pthread_spinlock_t *l) {
  host_locks += counting;
  return __real_pthread_spin_lock(l);
}

/* libevent's locks: pthread mutexes, as evthread_use_pthreads() makes them
 * (recursive when asked), taken through __real_ so that they are not
 * counted as the host's. */
static void *ev_alloc(unsigned type) {
  pthread_mutex_t *m = malloc(sizeof(*m));
  pthread_mutexattr_t a;
  if (!m)
    return NULL;
  pthread_mutexattr_init(&a);
  if (type & EVTHREAD_LOCKTYPE_RECURSIVE)
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
  return m;
}

static void ev_free(void *lock, unsigned type) {
  (void)type;
  pthread_mutex_destroy(lock);
  free(lock);
}

static int ev_lock(unsigned mode, void *lock) {
  if (counting) {
    ev_locks++;
    size_t i = 0;
    while (i < n_ev_lock_seen && ev_lock_seen[i] != lock)
      i++;
    if (i == n_ev_lock_seen && n_ev_lock_seen < 8)
      ev_lock_seen[n_ev_lock_seen++] = lock;
  }
  return mode & EVTHREAD_TRY ? pthread_mutex_trylock(lock)
                             : __real_pthread_mutex_lock(lock);
}

static int ev_unlock(unsigned mode, void *lock) {
  (void)mode;
  return pthread_mutex_unlock(lock);
}

static void *ev_cond_alloc(unsigned type) {
  (void)type;
  pthread_cond_t *c = malloc(sizeof(*c));
  if (c)
    pthread_cond_init(c, NULL);
  return c;
}

static void ev_cond_free(void *c) {
  pthread_cond_destroy(c);
  free(c);
}

static int ev_cond_signal(void *c, int all) {
  return all ? pthread_cond_broadcast(c) : pthread_cond_signal(c);
}

static int ev_cond_wait(void *c, void *lock, const struct timeval *tv) {
  (void)tv; /* not used on this path */
  return pthread_cond_wait(c, lock);
}

static unsigned long ev_thread_id(void) {
  return (unsigned long)pthread_self();
}

static int install_counting_locks(void) {
  static const struct evthread_lock_callbacks locks = {
      EVTHREAD_LOCK_API_VERSION,
      EVTHREAD_LOCKTYPE_RECURSIVE,
      ev_alloc,
      ev_free,
      ev_lock,
      ev_unlock};
  static const struct evthread_condition_callbacks conds = {
      EVTHREAD_CONDITION_API_VERSION, ev_cond_alloc, ev_cond_free,
      ev_cond_signal, ev_cond_wait};
  if (evthread_set_lock_callbacks(&locks) != 0 ||
      evthread_set_condition_callbacks(&conds) != 0)
    return -1;
  evthread_set_id_callback(ev_thread_id);
  return 0;
}

/* ---- the echo ------------------------------------------------------------ */

/* The worker's loop until it has nothing ready, counted: all the server
 * side of an echo happens in here (check's own asserts, outside it, take a
 * mutex of check's). */
static int direct; /* turns of the direct loop, not libevent's loop */

static void run_counted(void) {
  for (int i = 0; i < 50; i++) {
    counting = 1;
    loop_runs++;
    int r = direct ? wsh_loop_turn(&fx.w.loop, 0)
                   : event_base_loop(fx.w.loop.base, EVLOOP_NONBLOCK);
    counting = 0;
    if (direct ? r <= 0 : r == 1)
      break;
  }
}

/* One binary message through the worker and back (the recorder echoes
 * binary messages as they are); 0 if the echo came back intact. */
static int echo_one(const uint8_t *payload, size_t len) {
  uint8_t frame[256], back[256];
  size_t n = fix_frame(frame, 0x2, payload, len), got = 0;
  if (send(fx.peer, frame, n, MSG_NOSIGNAL) != (ssize_t)n)
    return -1;
  for (int i = 0; i < 100 && got < 2 + len; i++) {
    run_counted();
    ssize_t r = recv(fx.peer, back + got, sizeof(back) - got, MSG_DONTWAIT);
    if (r == 0)
      return -1;
    if (r > 0)
      got += (size_t)r;
    else
      poll(NULL, 0, 10);
  }
  return got == 2 + len && back[0] == 0x82 && back[1] == len &&
                 memcmp(back + 2, payload, len) == 0
             ? 0
             : -1;
}

#define WARMUP 50
#define ECHOES 500

/* A connection upgraded, WARMUP echoes, the counters zeroed, then ECHOES
 * echoes counted (through the direct loop if `direct_loop`); 0 if every
 * echo came back intact. */
static int echoes_counted(int direct_loop) {
  fix_connect();
  fix_upgrade();
  if (direct_loop)
    ck_assert_int_eq(wsh_loop_direct(&fx.w.loop), 0);
  direct = direct_loop;
  uint8_t payload[64];
  for (size_t i = 0; i < sizeof(payload); i++)
    payload[i] = (uint8_t)(i * 7);
  for (int i = 0; i < WARMUP; i++)
    ck_assert_int_eq(echo_one(payload, sizeof(payload)), 0);
  host_locks = ev_locks = loop_runs = 0;
  n_ev_lock_seen = 0;
  int failed = 0;
  for (int i = 0; i < ECHOES; i++)
    failed += echo_one(payload, sizeof(payload)) != 0;
  direct = 0;
  printf("test_hotlock: %d echoes%s: %lu host lock(s); libevent: %lu "
         "acquisition(s) of %zu distinct lock(s) in %lu loop runs\n",
         ECHOES, direct_loop ? ", direct loop" : "", host_locks, ev_locks,
         n_ev_lock_seen, loop_runs);
  return failed;
}

START_TEST(echo_takes_no_host_lock) {
  ck_assert_int_eq(echoes_counted(0), 0);
  ck_assert_uint_eq(host_locks, 0);
  /* libevent: the worker's own base lock and nothing else */
  ck_assert_uint_eq(n_ev_lock_seen, 1);
}
END_TEST

/* The same echoes through the loop as websockd runs it (wsh_loop_run):
 * waiting directly in the worker's own epoll set, libevent entered only
 * for its own events and timers, none of which an echo adds. So not even
 * the base lock: no lock at all. */
START_TEST(direct_echo_takes_no_lock) {
  ck_assert_int_eq(echoes_counted(1), 0);
  ck_assert_uint_eq(host_locks, 0);
  ck_assert_uint_eq(ev_locks, 0);
}
END_TEST

/* The counter counts: a lock the host takes outside the hot path (the
 * registry's, on a route lookup) is seen. */
START_TEST(the_counter_sees_host_locks) {
  counting = 1;
  host_locks = 0;
  wsh_generation *g = wsh_registry_acquire(fx.reg, "/rec");
  counting = 0;
  ck_assert_ptr_nonnull(g);
  wsh_generation_release(g);
  ck_assert_uint_gt(host_locks, 0);
}
END_TEST

static Suite *hotlock_suite(void) {
  Suite *s = suite_create("hotlock");
  TCase *tc = tcase_create("echo");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, echo_takes_no_host_lock);
  tcase_add_test(tc, direct_echo_takes_no_lock);
  tcase_add_test(tc, the_counter_sees_host_locks);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  if (install_counting_locks() != 0) { /* before any event base exists */
    fprintf(stderr, "test_hotlock: libevent refused the lock callbacks\n");
    return 1;
  }
  return run_suite(hotlock_suite());
}
