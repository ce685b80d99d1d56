/*
 * test_sendq.c - unit tests for host/network/sendq.c, a broadcast's sends
 * many per io_uring_enter, on socketpairs (connfix.h): every member gets
 * the frame whole and once, through the worker's real delivery; a batch
 * waits until flushed and a full one is sent before the next; what a full
 * socket does not take is queued by reference and written in order later;
 * a member whose peer is gone gets the error, not the others; a member
 * closed over max_unsent sends the batch first; `io_uring = off` sends
 * none of it through the ring. Connections settled together write their
 * first bytes the same way: staged or queued, in order, a short write's
 * rest kept, not the bytes before a FIN, not for fewer than
 * WSH_SENDQ_MIN.
 *
 * The machine must allow io_uring (the tests say so when it does not): a
 * kernel that refuses it makes websockd fall back to a send() per member,
 * which the off test covers.
 */
#include <check.h>
#include <errno.h>
#include <event2/buffer.h>

#define WSH_TEST_NAME "test_sendq"
#define WSH_TEST_SET_TMPDIR
#include "testutil.h"

#include "bus/topic.h"
#include "connfix.h"
#include "network/msgs.h"
#include "network/outq.h"
#include "network/sendq.h"

#define MEMBERS 8

static websock_conn *conns[MEMBERS];
static int peers[MEMBERS];

/* MEMBERS open connections to /rec, each with its own peer end. */
static void open_members(int n) {
  for (int i = 0; i < n; i++) {
    conns[i] = fix_connect();
    fix_upgrade();
    peers[i] = fx.peer;
  }
  fx.peer = -1;
}

static void close_peers(int n) {
  for (int i = 0; i < n; i++)
    if (peers[i] >= 0)
      close(peers[i]);
}

/* Reads everything peer i has now (bounded waits) into buf: its length. */
static size_t drain(int i, uint8_t *buf, size_t cap, size_t want) {
  size_t got = 0;
  for (int k = 0; k < 200 && got < want; k++) {
    fix_run();
    ssize_t n = recv(peers[i], buf + got, cap - got, MSG_DONTWAIT);
    if (n > 0)
      got += (size_t)n;
    else if (n == 0)
      break;
    else
      poll(NULL, 0, 5);
  }
  return got;
}

static wsh_shared *frame_of(const char *text) {
  size_t n = strlen(text);
  wsh_shared *sh = wsh_shared_new("t", n + 2);
  ck_assert_ptr_nonnull(sh);
  sh->data[0] = 0x81;
  sh->data[1] = (uint8_t)n;
  memcpy(sh->data + 2, text, n);
  sh->hdr_len = 2;
  return sh;
}

static unsigned long long stat_of(atomic_ullong *v) {
  return atomic_load(v);
}

static void need_ring(void) {
  ck_assert_msg(wsh_sendq_ready(&fx.w.loop),
                "io_uring refused on this machine (see the log line): "
                "websockd would send a send() per member");
}

/* websock_broadcast to a topic of MEMBERS: through the worker's mail and
 * deliver_shared, the first member by send() and the others through one
 * io_uring_enter; every peer gets the frame once. */
/* MEMBERS open connections subscribed to "t", then websock_broadcast of
 * text (under 126 bytes): each peer gets the frame once. */
static void broadcast_to_members(const char *text) {
  open_members(MEMBERS);
  for (int i = 0; i < MEMBERS; i++)
    ck_assert_int_eq(wsh_msgs_subscribe(conns[i], "t"), 0);
  size_t n = strlen(text);
  ck_assert_int_eq(websock_broadcast(&fx.host, "t", WEBSOCK_OP_TEXT, text, n),
                   0);
  for (int i = 0; i < MEMBERS; i++) {
    uint8_t buf[128];
    ck_assert_uint_eq(drain(i, buf, sizeof(buf), n + 2), n + 2);
    ck_assert_int_eq(buf[0], 0x81);
    ck_assert_int_eq(buf[1], (int)n);
    ck_assert_int_eq(memcmp(buf + 2, text, n), 0);
    poll(NULL, 0, 5);
    ck_assert_int_eq(recv(peers[i], buf, sizeof(buf), MSG_DONTWAIT), -1);
  }
}

START_TEST(broadcast_reaches_every_member_once) {
  broadcast_to_members("news");
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), MEMBERS - 1);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 1);
  close_peers(MEMBERS);
}
END_TEST

/* Sends wait in the batch until it is flushed (or is full: the next add
 * sends it first); the frame's references are back where they were. */
START_TEST(batch_waits_for_its_flush) {
  open_members(MEMBERS);
  need_ring();
  wsh_shared *sh = frame_of("abc");
  for (int i = 0; i < MEMBERS; i++)
    wsh_conn_push_shared(conns[i], sh, true);
  uint8_t buf[64];
  for (int i = 0; i < MEMBERS; i++) {
    ck_assert_int_eq(recv(peers[i], buf, sizeof(buf), MSG_DONTWAIT), -1);
    ck_assert(conns[i]->dirty); /* marked: the turn's other output waits */
  }
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 0);
  wsh_sendq_flush(&fx.w.loop);
  for (int i = 0; i < MEMBERS; i++) {
    ck_assert_int_eq(recv(peers[i], buf, sizeof(buf), MSG_DONTWAIT), 5);
    ck_assert_int_eq(memcmp(buf,
                            "\x81\x03"
                            "abc",
                            5),
                     0);
    ck_assert_uint_eq(wsh_outq_unsent(conns[i]), 0);
  }
  ck_assert_int_eq(atomic_load(&sh->refs), 1); /* nothing queued holds it */
  wsh_sendq_flush(&fx.w.loop);                 /* empty: nothing to do */
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 1);
  wsh_conn_settle_all(&fx.w.loop);
  wsh_shared_unref(sh);
  close_peers(MEMBERS);
}
END_TEST

static int answers, answered_bytes;

static void count_sent(const wsh_sendq_entry *e, int res) {
  ck_assert_ptr_eq(e->c, conns[0]);
  answers++;
  answered_bytes += res;
}

START_TEST(full_batch_goes_before_the_next) {
  answers = answered_bytes = 0;
  open_members(1);
  need_ring();
  wsh_shared *sh = frame_of("x");
  for (int i = 0; i < WSH_SENDQ_BATCH + 1; i++) {
    wsh_sendq_entry e = {
        .c = conns[0], .p = sh->data, .len = sh->len, .sent = count_sent};
    wsh_sendq_add(&fx.w.loop, &e);
  }
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 1);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), WSH_SENDQ_BATCH);
  ck_assert_int_eq(answers, WSH_SENDQ_BATCH); /* each answer, once */
  wsh_sendq_flush(&fx.w.loop);
  ck_assert_int_eq(answers, WSH_SENDQ_BATCH + 1);
  ck_assert_int_eq(answered_bytes, 3 * (WSH_SENDQ_BATCH + 1));
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), WSH_SENDQ_BATCH + 1);
  static uint8_t buf[3 * (WSH_SENDQ_BATCH + 1)];
  size_t n = drain(0, buf, sizeof(buf), 3 * (WSH_SENDQ_BATCH + 1));
  ck_assert_uint_eq(n, 3 * (WSH_SENDQ_BATCH + 1));
  for (size_t i = 0; i < n; i += 3)
    ck_assert_int_eq(memcmp(buf + i, "\x81\x01x", 3), 0);
  wsh_shared_unref(sh);
  close_peers(1);
}
END_TEST

/* Fills c's socket until it takes nothing more: the bytes written. */
static size_t fill(websock_conn *c) {
  static uint8_t junk[65536];
  size_t total = 0;
  for (;;) {
    ssize_t n = send(c->tp.fd, junk, sizeof(junk), MSG_DONTWAIT);
    if (n <= 0)
      break;
    total += (size_t)n;
  }
  return total;
}

/* A socket with no room answers EAGAIN: the frame is queued by reference
 * (the queue holds a reference) and written after what the socket held,
 * in order, once the peer reads. */
START_TEST(full_socket_queues_the_frame) {
  open_members(2);
  need_ring();
  size_t junk = fill(conns[0]);
  ck_assert_uint_gt(junk, 0);
  wsh_shared *sh = frame_of("late");
  wsh_conn_push_shared(conns[0], sh, true);
  wsh_conn_push_shared(conns[1], sh, true);
  wsh_sendq_flush(&fx.w.loop);
  ck_assert_uint_eq(wsh_outq_unsent(conns[0]), 6);
  ck_assert_int_eq(atomic_load(&sh->refs), 2);
  ck_assert_int_eq(conns[0]->io_error, 0);
  ck_assert_uint_eq(wsh_outq_unsent(conns[1]), 0); /* the other: sent */
  wsh_conn_settle_all(&fx.w.loop);
  static uint8_t buf[8 << 20];
  size_t n = drain(0, buf, sizeof(buf), junk + 6);
  ck_assert_uint_eq(n, junk + 6);
  ck_assert_int_eq(memcmp(buf + junk, "\x81\x04late", 6), 0);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_int_eq(atomic_load(&sh->refs), 1); /* written: released */
  ck_assert_uint_eq(drain(1, buf, sizeof(buf), 6), 6);
  wsh_shared_unref(sh);
  close_peers(2);
}
END_TEST

/* A member whose peer is gone gets its error (closed when settled); the
 * members after it in the batch still get the frame. */
START_TEST(error_is_the_members_own) {
  open_members(3);
  need_ring();
  close(peers[1]);
  peers[1] = -1;
  wsh_shared *sh = frame_of("hi");
  for (int i = 0; i < 3; i++)
    wsh_conn_push_shared(conns[i], sh, true);
  wsh_sendq_flush(&fx.w.loop);
  ck_assert_int_eq(conns[0]->io_error, 0);
  ck_assert_int_eq(conns[1]->io_error, EPIPE);
  ck_assert_int_eq(conns[2]->io_error, 0);
  size_t before = fx.w.loop.nconns;
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_uint_eq(fx.w.loop.nconns, before - 1); /* the lost one freed */
  uint8_t buf[16];
  ck_assert_uint_eq(drain(0, buf, sizeof(buf), 4), 4);
  ck_assert_uint_eq(drain(2, buf, sizeof(buf), 4), 4);
  ck_assert_int_eq(memcmp(buf, "\x81\x02hi", 4), 0);
  wsh_shared_unref(sh);
  close_peers(3);
}
END_TEST

/* A member over max_unsent is closed (1008), which may run callbacks that
 * write: the sends waiting before it go out first. */
START_TEST(overflow_sends_the_batch_first) {
  open_members(2);
  need_ring();
  wsh_shared *sh = frame_of("one");
  wsh_conn_push_shared(conns[0], sh, true);
  /* conns[1]: more unsent than its route allows */
  struct evbuffer *out = wsh_outq_buffer(conns[1]);
  ck_assert_ptr_nonnull(out);
  static uint8_t big[1 << 20];
  size_t over = conns[1]->gen->conf->max_unsent + 1;
  while (evbuffer_get_length(out) < over)
    evbuffer_add(out, big, sizeof(big));
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 0);
  wsh_conn_push_shared(conns[1], sh, true);
  ck_assert(conns[1]->overflow);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 1);
  uint8_t buf[16];
  ck_assert_int_eq(recv(peers[0], buf, sizeof(buf), MSG_DONTWAIT), 5);
  wsh_conn_settle_all(&fx.w.loop);
  wsh_shared_unref(sh);
  close_peers(2);
}
END_TEST

/* The ring fd of this process (the one wsh_sendq_ready made): -1 if none. */
static int ring_fd(void) {
  for (int fd = 3; fd < 1024; fd++) {
    char link[64], target[64];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    if (n > 0) {
      target[n] = '\0';
      if (strstr(target, "io_uring"))
        return fd;
    }
  }
  return -1;
}

/* A ring whose io_uring_enter fails (its fd closed behind its back): the
 * sends waiting are lost as a failed send() would be (EIO, closed when
 * settled), the worker gives the ring up, and a send added after that in
 * the same delivery goes out by send() at once. */
START_TEST(failed_ring_is_given_up) {
  open_members(3);
  need_ring();
  int fd = ring_fd();
  ck_assert_int_ge(fd, 0);
  wsh_shared *sh = frame_of("lost");
  wsh_conn_push_shared(conns[0], sh, true);
  wsh_conn_push_shared(conns[1], sh, true);
  close(fd);
  wsh_sendq_flush(&fx.w.loop);
  ck_assert_int_eq(conns[0]->io_error, EIO);
  ck_assert_int_eq(conns[1]->io_error, EIO);
  ck_assert_ptr_null(fx.w.loop.sendq);
  ck_assert(!wsh_sendq_ready(&fx.w.loop));
  wsh_conn_push_shared(conns[2], sh, true); /* batch still asked for */
  uint8_t buf[16];
  ck_assert_int_eq(recv(peers[2], buf, sizeof(buf), MSG_DONTWAIT), 6);
  ck_assert_int_eq(memcmp(buf, "\x81\x04lost", 6), 0);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_int_eq(atomic_load(&sh->refs), 1);
  wsh_shared_unref(sh);
  close_peers(3);
}
END_TEST

/* Connections settled together (a publish's members, a turn's mail): the
 * first write of each, staged or in its evbuffer, goes in one
 * io_uring_enter; the last bytes before a FIN do not. */
START_TEST(settle_writes_many_in_one_call) {
  open_members(MEMBERS);
  need_ring();
  for (int i = 0; i < MEMBERS - 2; i++)
    ck_assert_int_eq(wsh_outq_add(conns[i], "ab", 2, "cd", 2), 0);
  struct evbuffer *out = wsh_outq_buffer(conns[MEMBERS - 2]);
  ck_assert_ptr_nonnull(out);
  evbuffer_add(out, "queued", 6);
  websock_conn *last = conns[MEMBERS - 1];
  ck_assert_int_eq(wsh_outq_add(last, "bye", 3, NULL, 0), 0);
  last->state = WSH_CONN_FLUSHING; /* its bytes leave with the FIN */
  ck_assert_uint_eq(fx.w.loop.writers, MEMBERS - 1);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_enters), 1);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), MEMBERS - 1);
  ck_assert_uint_eq(fx.w.loop.writers, 0);
  uint8_t buf[16];
  for (int i = 0; i < MEMBERS - 2; i++) {
    ck_assert_uint_eq(drain(i, buf, sizeof(buf), 4), 4);
    ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
  }
  ck_assert_uint_eq(drain(MEMBERS - 2, buf, sizeof(buf), 6), 6);
  ck_assert_int_eq(memcmp(buf, "queued", 6), 0);
  ck_assert_ptr_null(conns[MEMBERS - 2]->out); /* emptied, freed */
  ck_assert_uint_ge(drain(MEMBERS - 1, buf, sizeof(buf), 3), 3);
  ck_assert_int_eq(memcmp(buf, "bye", 3), 0);
  close_peers(MEMBERS);
}
END_TEST

/* Fewer than WSH_SENDQ_MIN connections with output: a send() each. */
START_TEST(settle_few_sends_each) {
  open_members(3);
  need_ring();
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(wsh_outq_add(conns[i], "ab", 2, NULL, 0), 0);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), 0);
  uint8_t buf[16];
  for (int i = 0; i < 3; i++)
    ck_assert_uint_eq(drain(i, buf, sizeof(buf), 2), 2);
  close_peers(3);
}
END_TEST

/* A staged run the socket does not take: what is left moves to the
 * evbuffer and follows what the socket held, in order. */
START_TEST(settle_short_write_keeps_the_rest) {
  open_members(4);
  need_ring();
  size_t junk = fill(conns[0]);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(wsh_outq_add(conns[i], "tail", 4, NULL, 0), 0);
  wsh_conn_settle_all(&fx.w.loop);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), 4);
  ck_assert_uint_eq(conns[0]->stage_len, 0);
  ck_assert_uint_eq(wsh_outq_unsent(conns[0]), 4);
  ck_assert_int_eq(conns[0]->io_error, 0);
  static uint8_t buf[8 << 20];
  ck_assert_uint_eq(drain(0, buf, sizeof(buf), junk + 4), junk + 4);
  ck_assert_int_eq(memcmp(buf + junk, "tail", 4), 0);
  for (int i = 1; i < 4; i++)
    ck_assert_uint_eq(drain(i, buf, sizeof(buf), 4), 4);
  close_peers(4);
}
END_TEST

/* io_uring = off: no ring; a broadcast is a send() per member, as before. */
START_TEST(off_sends_each_by_itself) {
  fx.cfg.io_uring = 0;
  broadcast_to_members("n");
  ck_assert(!wsh_sendq_ready(&fx.w.loop));
  ck_assert_ptr_null(fx.w.loop.sendq);
  ck_assert_uint_eq(stat_of(&fx.w.loop.stats.uring_sends), 0);
  close_peers(MEMBERS);
}
END_TEST

static Suite *sendq_suite(void) {
  Suite *s = suite_create("sendq");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, fix_setup, fix_teardown);
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, broadcast_reaches_every_member_once);
  tcase_add_test(tc, batch_waits_for_its_flush);
  tcase_add_test(tc, full_batch_goes_before_the_next);
  tcase_add_test(tc, full_socket_queues_the_frame);
  tcase_add_test(tc, error_is_the_members_own);
  tcase_add_test(tc, overflow_sends_the_batch_first);
  tcase_add_test(tc, failed_ring_is_given_up);
  tcase_add_test(tc, settle_writes_many_in_one_call);
  tcase_add_test(tc, settle_few_sends_each);
  tcase_add_test(tc, settle_short_write_keeps_the_rest);
  tcase_add_test(tc, off_sends_each_by_itself);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(sendq_suite());
}
