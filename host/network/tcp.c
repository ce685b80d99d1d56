/*
 * tcp.c - the plain TCP transport (see transport.h): the socket calls
 * themselves, non-blocking, never raising SIGPIPE.
 */
#include "network/transport.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

static ssize_t tcp_read(wsh_transport *t, void *buf, size_t len) {
  return recv(t->fd, buf, len, MSG_DONTWAIT);
}

static ssize_t tcp_write(wsh_transport *t, const void *buf, size_t len,
                         bool more) {
  return send(t->fd, buf, len,
              MSG_NOSIGNAL | MSG_DONTWAIT | (more ? MSG_MORE : 0));
}

static int tcp_write_buffer(wsh_transport *t, struct evbuffer *b) {
  return evbuffer_write(b, t->fd);
}

static int tcp_shutdown(wsh_transport *t) {
  return shutdown(t->fd, SHUT_WR);
}

static void tcp_close(wsh_transport *t) {
  close(t->fd);
  t->fd = -1;
}

static int tcp_peer(wsh_transport *t, struct sockaddr_storage *ss,
                    socklen_t *len) {
  *len = sizeof(*ss);
  return getpeername(t->fd, (struct sockaddr *)ss, len);
}

static const wsh_transport_ops tcp_ops = {
    .name = "tcp",
    .drains = true,
    .fd_sends = true,
    .read = tcp_read,
    .write = tcp_write,
    .write_buffer = tcp_write_buffer,
    .shutdown = tcp_shutdown,
    .close = tcp_close,
    .peer = tcp_peer,
};

void wsh_tcp_transport(wsh_transport *t, int fd) {
  t->ops = &tcp_ops;
  t->fd = fd;
  t->flip = 0;
  t->answered = 0;
  t->own = 0;
  t->ctx = NULL;
  wsh_tcp_nodelay(fd);
}

int wsh_tcp_nodelay_listener(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 ||
      errno == EOPNOTSUPP)
    return 0;
  return -1;
}

/* 0: not known yet; 1: accepted sockets inherit the listener's NODELAY;
 * -1: they do not (or the first socket could not tell). Any thread. */
static atomic_int nodelay_inherited;

/* Writes are already batched per loop turn: send them without waiting for
 * the peer's delayed ACK (a message over one write would wait 40 ms). The
 * listeners have TCP_NODELAY (server.c), so on Linux an accepted socket
 * has it already: asked once, then trusted. */
void wsh_tcp_nodelay(int fd) {
  int known = atomic_load_explicit(&nodelay_inherited, memory_order_relaxed);
  if (known == 1)
    return;
  if (known == 0) {
    int on = 0;
    socklen_t len = sizeof(on);
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) != 0)
      return; /* not TCP (a Unix socket): nothing to set, nothing learnt */
    atomic_store_explicit(&nodelay_inherited, on ? 1 : -1,
                          memory_order_relaxed);
    if (on)
      return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}
