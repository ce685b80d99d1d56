/*
 * test_tcp.c - unit tests for host/network/tcp.c, the plain TCP transport,
 * over a loopback TCP connection: reads that do not block, writes, the
 * evbuffer write that drains, the FIN, the peer's address, close.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "network/transport.h"

#define WSH_TEST_NAME "test_tcp"
#include "testutil.h"

/* A connected loopback pair: *server (non-blocking) and *client; the
 * listener with TCP_NODELAY or without. */
static void tcp_pair_listener(int *server, int *client, bool nodelay) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  if (nodelay)
    ck_assert_int_eq(wsh_tcp_nodelay_listener(l), 0);
  struct sockaddr_in sin = {.sin_family = AF_INET};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
  ck_assert_int_eq(listen(l, 1), 0);
  socklen_t len = sizeof(sin);
  getsockname(l, (struct sockaddr *)&sin, &len);
  *client = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_eq(connect(*client, (struct sockaddr *)&sin, sizeof(sin)), 0);
  *server = accept4(l, NULL, NULL, SOCK_NONBLOCK);
  ck_assert_int_ge(*server, 0);
  close(l);
}

static void tcp_pair(int *server, int *client) {
  tcp_pair_listener(server, client, false);
}

static int nodelay_of(int fd) {
  int on = -1;
  socklen_t len = sizeof(on);
  ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
  return on;
}

/* Two sockets accepted from a listener with TCP_NODELAY or without: each
 * has it once the transport has it, whether inherited or set. Check forks
 * each test, so what the first socket taught starts afresh in each. */
static void accept_twice(bool listener_nodelay) {
  for (int i = 0; i < 2; i++) {
    int s, cl;
    tcp_pair_listener(&s, &cl, listener_nodelay);
    ck_assert_int_eq(nodelay_of(s), listener_nodelay); /* the kernel's */
    wsh_transport t;
    wsh_tcp_transport(&t, s);
    ck_assert_int_eq(nodelay_of(s), 1);
    t.ops->close(&t);
    close(cl);
  }
}

/* The listener's, inherited (the first socket's getsockopt learns it). */
START_TEST(nodelay_from_the_listener) {
  accept_twice(true);
}
END_TEST

/* Not inherited: then every socket gets its own setsockopt. */
START_TEST(nodelay_set_when_not_inherited) {
  accept_twice(false);
}
END_TEST

START_TEST(read_write_shutdown_close) {
  int s, cl;
  tcp_pair(&s, &cl);
  wsh_transport t;
  wsh_tcp_transport(&t, s);
  ck_assert_str_eq(t.ops->name, "tcp");
  char buf[64];
  ck_assert_int_eq(t.ops->read(&t, buf, sizeof(buf)), -1);
  ck_assert(errno == EAGAIN || errno == EWOULDBLOCK); /* never blocks */
  ck_assert_int_eq(send(cl, "hi", 2, 0), 2);
  usleep(10000);
  ck_assert_int_eq(t.ops->read(&t, buf, sizeof(buf)), 2);
  ck_assert_int_eq(t.ops->write(&t, "abc", 3, true), 3);
  struct evbuffer *b = evbuffer_new();
  evbuffer_add(b, "def", 3);
  ck_assert_int_eq(t.ops->write_buffer(&t, b), 3);
  ck_assert_uint_eq(evbuffer_get_length(b), 0);
  evbuffer_free(b);
  ck_assert_int_eq(t.ops->shutdown(&t), 0);
  char got[16] = "";
  size_t n = 0;
  ssize_t r;
  while ((r = recv(cl, got + n, sizeof(got) - 1 - n, 0)) > 0)
    n += (size_t)r;
  ck_assert_int_eq(r, 0); /* our FIN */
  ck_assert_str_eq(got, "abcdef");
  struct sockaddr_storage ss;
  socklen_t len;
  ck_assert_int_eq(t.ops->peer(&t, &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET);
  t.ops->close(&t);
  ck_assert_int_eq(t.fd, -1);
  ck_assert_int_eq(fcntl(s, F_GETFD), -1); /* closed */
  close(cl);
}
END_TEST

START_TEST(write_to_a_gone_peer) {
  int s, cl;
  tcp_pair(&s, &cl);
  wsh_transport t;
  wsh_tcp_transport(&t, s);
  close(cl);
  usleep(10000);
  ssize_t r = 0;
  for (int i = 0; i < 10 && r >= 0; i++)
    r = t.ops->write(&t, "x", 1, false); /* no SIGPIPE */
  ck_assert_int_eq(r, -1);
  ck_assert(errno == EPIPE || errno == ECONNRESET);
  t.ops->close(&t);
}
END_TEST

static Suite *tcp_suite(void) {
  Suite *s = suite_create("tcp");
  TCase *tc = tcase_create("tcp");
  tcase_add_test(tc, read_write_shutdown_close);
  tcase_add_test(tc, write_to_a_gone_peer);
  tcase_add_test(tc, nodelay_from_the_listener);
  tcase_add_test(tc, nodelay_set_when_not_inherited);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(tcp_suite());
}
