/*
 * test_loop.c - unit tests for host/network/loop.c: a loop set up and
 * freed, statuses indexed for the counters, connections marked once and
 * unmarked; the direct loop (it finds libevent's epoll set and holds it,
 * fires libevent's timers, added before a turn or by a timer's callback,
 * runs another thread's wake-up and its own thread's (without the
 * eventfd, before it waits again), and ends on wsh_loop_exit); sockets
 * waiting edge- or level-triggered (WSH_IO_EDGE); busy polling (its
 * window's rule, input caught without a sleep, the window opening, halving
 * and closing).
 */
#include <check.h>

#include "network/connection.h"
#include "network/loop.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

/* ---- the direct loop ----------------------------------------------------- */

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Direct: libevent's set is found, taken out of libevent's own watching
 * (ep_ev) and held by the loop's set; asked again, nothing changes. */
START_TEST(direct_finds_libevent_set) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 0, NULL, NULL), 0);
  ck_assert_int_eq(l.lev_fd, -1);
  ck_assert_int_eq(wsh_loop_direct(&l), 0);
  ck_assert_int_ge(l.lev_fd, 0);
  ck_assert_int_ne(l.lev_fd, l.epfd);
  ck_assert(!event_pending(l.ep_ev, EV_READ, NULL));
  /* the loop's set holds libevent's: adding it again is EEXIST */
  struct epoll_event e = {.events = EPOLLIN};
  ck_assert_int_ne(epoll_ctl(l.epfd, EPOLL_CTL_ADD, l.lev_fd, &e), 0);
  ck_assert_int_eq(errno, EEXIST);
  int lev = l.lev_fd;
  ck_assert_int_eq(wsh_loop_direct(&l), 0);
  ck_assert_int_eq(l.lev_fd, lev);
  wsh_loop_free(&l);
}
END_TEST

typedef struct timer_probe {
  wsh_loop *l;
  struct event *again; /* added by the first one's callback */
  int fired[2];        /* the first, the one it added */
  uint64_t at[2];
} timer_probe;

/* Both timers' callback: the first (`again` not yet fired) adds `again`. */
static void on_probe(evutil_socket_t fd, short what, void *arg) {
  timer_probe *p = arg;
  (void)fd;
  (void)what;
  int which = p->fired[0] > 0;
  p->fired[which]++;
  p->at[which] = now_ms();
  if (!which)
    wsh_loop_timer_add(p->l, p->again, 30);
}

/* A libevent timer added before a turn wakes the turn's wait (libevent's
 * timerfd, in the set the loop waits in), and one added by a timer's
 * callback is armed before the next wait: each fires once, not early,
 * and within a generous bound (not a latency test). */
START_TEST(direct_fires_timers) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 0, NULL, NULL), 0);
  ck_assert_int_eq(wsh_loop_direct(&l), 0);
  timer_probe p = {.l = &l};
  struct event *first = evtimer_new(l.base, on_probe, &p);
  p.again = evtimer_new(l.base, on_probe, &p);
  ck_assert_ptr_nonnull(first);
  ck_assert_ptr_nonnull(p.again);
  wsh_loop_turn(&l, 0); /* an idle turn first: libevent armed, nothing due */
  uint64_t t0 = now_ms();
  ck_assert_int_eq(wsh_loop_timer_add(&l, first, 20), 0);
  /* no turn waits past 2 s: a timer that never wakes it fails the test */
  for (int i = 0; i < 20 && !p.fired[1]; i++)
    wsh_loop_turn(&l, 2000);
  ck_assert_int_eq(p.fired[0], 1);
  ck_assert_int_eq(p.fired[1], 1);
  ck_assert_uint_ge(p.at[0] - t0, 19);
  ck_assert_uint_ge(p.at[1] - p.at[0], 29);
  ck_assert_uint_lt(p.at[1] - t0, 1500);
  event_free(first);
  event_free(p.again);
  wsh_loop_free(&l);
}
END_TEST

typedef struct wake_probe {
  wsh_loop *l;
  int woken;
  int wrote; /* the eventfd, by a wake from the loop's thread */
} wake_probe;

static void on_probe_wake(void *arg) {
  wake_probe *p = arg;
  p->woken++;
  wsh_loop_exit(p->l);
}

/* l set up with p as what its wake-ups run. */
static void init_waking(wsh_loop *l, wake_probe *p) {
  ck_assert_int_eq(wsh_loop_init(l, 0, NULL, NULL), 0);
  *p = (wake_probe){.l = l};
  l->on_wake = on_probe_wake;
  l->wake_arg = p;
}

static void *wake_later(void *arg) {
  wsh_loop *l = arg;
  struct timespec ts = {0, 50 * 1000 * 1000};
  nanosleep(&ts, NULL);
  wsh_loop_wake(l);
  return NULL;
}

/* Another thread's wsh_loop_wake runs on_wake on the loop's thread, once,
 * and the wsh_loop_exit it calls ends wsh_loop_run, which waited with no
 * timeout until then. */
START_TEST(direct_wakes_and_exits) {
  wsh_loop l;
  wake_probe p;
  init_waking(&l, &p);
  pthread_t t;
  ck_assert_int_eq(pthread_create(&t, NULL, wake_later, &l), 0);
  wsh_loop_run(&l); /* goes direct, returns on exit */
  pthread_join(t, NULL);
  ck_assert_int_ge(l.lev_fd, 0);
  ck_assert_int_eq(p.woken, 1);
  ck_assert(l.exit);
  wsh_loop_free(&l);
}
END_TEST

/* A timer's callback: wakes its own loop, and notes whether that wrote the
 * eventfd (and writes it back if it did). */
static void wake_own(evutil_socket_t fd, short what, void *arg) {
  wake_probe *p = arg;
  (void)fd;
  (void)what;
  wsh_loop_wake(p->l);
  eventfd_t v;
  p->wrote = eventfd_read(p->l->wake_fd, &v) == 0;
  if (p->wrote)
    eventfd_write(p->l->wake_fd, v);
}

/* The loop's own thread wakes it from a libevent callback (a timer's): no
 * eventfd is written, and on_wake runs before the loop waits again (it
 * would otherwise wait for ever: nothing else is due). */
START_TEST(direct_own_wake) {
  wsh_loop l;
  wake_probe p;
  init_waking(&l, &p);
  struct event *t = evtimer_new(l.base, wake_own, &p);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(wsh_loop_timer_add(&l, t, 10), 0);
  wsh_loop_run(&l);
  ck_assert_int_ge(l.lev_fd, 0);
  ck_assert_int_eq(p.woken, 1);
  ck_assert_int_eq(p.wrote, 0);
  event_free(t);
  wsh_loop_free(&l);
}
END_TEST

/* Nested (a test's own event_base_loop, as the connection tests run it):
 * a wake-up still reaches on_wake, through libevent's event for the set. */
START_TEST(nested_wakes) {
  wsh_loop l;
  wake_probe p;
  init_waking(&l, &p);
  wsh_loop_wake(&l);
  event_base_loop(l.base, EVLOOP_NONBLOCK);
  ck_assert_int_eq(p.woken, 1);
  ck_assert_int_eq(l.lev_fd, -1);
  wsh_loop_free(&l);
}
END_TEST

/* ---- what a socket waits for -------------------------------------------- */

/* The sockets ready in l's set now (no wait), their events in *ev. */
static int ready_now(wsh_loop *l, struct epoll_event *ev) {
  return epoll_wait(l->epfd, ev, 1, 0);
}

/* The busy-poll window's rule (wsh_loop_poll_window), max 20 µs. */
START_TEST(poll_window_rule) {
  const uint32_t max = 20000;
  /* idle within the window: kept */
  ck_assert_uint_eq(wsh_loop_poll_window(10000, 8000, max), 10000);
  ck_assert_uint_eq(wsh_loop_poll_window(0, 0, max), 0);
  /* longer than the window, within max: opens at max / 4, doubles, to max */
  ck_assert_uint_eq(wsh_loop_poll_window(0, 3000, max), 5000);
  ck_assert_uint_eq(wsh_loop_poll_window(5000, 7000, max), 10000);
  ck_assert_uint_eq(wsh_loop_poll_window(10000, 15000, max), 20000);
  ck_assert_uint_eq(wsh_loop_poll_window(15000, 18000, max), 20000);
  ck_assert_uint_eq(wsh_loop_poll_window(20000, 20000, max), 20000);
  /* longer than max: halved, closed below max / 4 */
  ck_assert_uint_eq(wsh_loop_poll_window(20000, 20001, max), 10000);
  ck_assert_uint_eq(wsh_loop_poll_window(10000, 1000000, max), 5000);
  ck_assert_uint_eq(wsh_loop_poll_window(5000, 1000000, max), 0);
  ck_assert_uint_eq(wsh_loop_poll_window(0, 1000000, max), 0);
  /* no busy polling */
  ck_assert_uint_eq(wsh_loop_poll_window(0, 10, 0), 0);
  ck_assert_uint_eq(wsh_loop_poll_window(0, 1000000, 0), 0);
}
END_TEST

typedef struct wake_after {
  wsh_loop *l;
  long ms;
} wake_after;

static void *wake_after_run(void *arg) {
  wake_after *a = arg;
  struct timespec ts = {a->ms / 1000, (a->ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
  wsh_loop_wake(a->l);
  return NULL;
}

/* The times this thread went to sleep. */
static long thread_sleeps(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

/* One turn of l, whose input (another thread's wake-up) comes `ms` later;
 * returns whether the loop slept meanwhile. */
static bool turn_woken_after(wsh_loop *l, wake_probe *p, long ms) {
  wake_after a = {l, ms};
  pthread_t t;
  int woken = p->woken;
  l->exit = 0; /* on_probe_wake ends the loop: go on */
  ck_assert_int_eq(pthread_create(&t, NULL, wake_after_run, &a), 0);
  long s0 = thread_sleeps();
  ck_assert_int_eq(wsh_loop_turn(l, 5000), 1);
  bool slept = thread_sleeps() > s0;
  pthread_join(t, NULL);
  ck_assert_int_eq(p->woken, woken + 1);
  return slept;
}

/* Busy polling in a direct loop: input that comes within the window is
 * caught without a sleep; the window opens after an idle spell within the
 * largest window, halves and closes after longer ones, and with none
 * (busy_poll_us = 0) the loop never polls. */
START_TEST(busy_poll_adapts) {
  wsh_loop l;
  wake_probe p;
  init_waking(&l, &p);
  ck_assert_int_eq(wsh_loop_direct(&l), 0);
  wsh_loop_turn(&l, 0); /* libevent armed, nothing due */
  l.poll_max_ns = 1000000000u; /* 1 s: the 5 ms below are within it */
  ck_assert_uint_eq(l.poll_ns, 0);
  ck_assert(turn_woken_after(&l, &p, 5)); /* not polling yet: it slept */
  ck_assert_uint_eq(l.poll_ns, 250000000u);
  ck_assert(!turn_woken_after(&l, &p, 5)); /* caught while polling */
  ck_assert_uint_eq(l.poll_ns, 250000000u);
  l.poll_max_ns = l.poll_ns = 2000000u; /* 2 ms: 50 ms idle is longer */
  ck_assert(turn_woken_after(&l, &p, 50));
  ck_assert_uint_eq(l.poll_ns, 1000000u);
  ck_assert(turn_woken_after(&l, &p, 50));
  ck_assert_uint_eq(l.poll_ns, 500000u);
  ck_assert(turn_woken_after(&l, &p, 50));
  ck_assert_uint_eq(l.poll_ns, 0);
  l.poll_max_ns = 0; /* off: never opens */
  ck_assert(turn_woken_after(&l, &p, 5));
  ck_assert_uint_eq(l.poll_ns, 0);
  wsh_loop_free(&l);
}
END_TEST

/* WSH_IO_EDGE: a socket is reported once per arrival, not while its input
 * lasts; asked again with the same want, it is reported again if still
 * readable; the peer's shutdown is reported as EPOLLRDHUP (WSH_IO_HUP in
 * dispatch). Without WSH_IO_EDGE, it is reported as long as it is
 * readable. */
START_TEST(edge_triggered_sockets) {
  wsh_loop l;
  ck_assert_int_eq(wsh_loop_init(&l, 0, NULL, NULL), 0);
  int sv[2];
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  static websock_conn c;
  struct epoll_event ev;
  unsigned want = WSH_IO_READ | WSH_IO_EDGE;
  ck_assert_int_eq(wsh_loop_io_set(&l, sv[0], &c, 0, want), 0);
  ck_assert_int_eq(ready_now(&l, &ev), 0);
  ck_assert_int_eq(write(sv[1], "ab", 2), 2);
  ck_assert_int_eq(ready_now(&l, &ev), 1);
  ck_assert_ptr_eq(ev.data.ptr, &c);
  ck_assert(ev.events & EPOLLIN);
  ck_assert(!(ev.events & EPOLLRDHUP));
  ck_assert_int_eq(ready_now(&l, &ev), 0); /* not read, not reported again */
  ck_assert_int_eq(wsh_loop_io_set(&l, sv[0], &c, want, want), 0);
  ck_assert_int_eq(ready_now(&l, &ev), 1); /* asked again: still readable */
  ck_assert_int_eq(ready_now(&l, &ev), 0);
  ck_assert_int_eq(shutdown(sv[1], SHUT_WR), 0);
  ck_assert_int_eq(ready_now(&l, &ev), 1);
  ck_assert(ev.events & EPOLLRDHUP);
  /* level-triggered: reported while readable */
  ck_assert_int_eq(wsh_loop_io_set(&l, sv[0], &c, want, WSH_IO_READ), 0);
  ck_assert_int_eq(ready_now(&l, &ev), 1);
  ck_assert_int_eq(ready_now(&l, &ev), 1);
  /* WSH_IO_EDGE alone is nothing wanted: out of the set */
  ck_assert_int_eq(wsh_loop_io_set(&l, sv[0], &c, WSH_IO_READ, WSH_IO_EDGE), 0);
  ck_assert_int_eq(ready_now(&l, &ev), 0);
  close(sv[0]);
  close(sv[1]);
  wsh_loop_free(&l);
}
END_TEST

static Suite *loop_suite(void) {
  Suite *s = suite_create("loop");
  TCase *tc = tcase_create("loop");
  tcase_add_test(tc, init_free);
  tcase_add_test(tc, mark_once_unmark);
  tcase_add_test(tc, forget_in_batch);
  tcase_add_test(tc, status_index);
  tcase_add_test(tc, direct_finds_libevent_set);
  tcase_add_test(tc, direct_fires_timers);
  tcase_add_test(tc, direct_wakes_and_exits);
  tcase_add_test(tc, direct_own_wake);
  tcase_add_test(tc, nested_wakes);
  tcase_add_test(tc, edge_triggered_sockets);
  tcase_add_test(tc, poll_window_rule);
  tcase_add_test(tc, busy_poll_adapts);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(loop_suite());
}
