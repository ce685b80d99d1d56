/*
 * transport.h - the seam every byte of a connection passes through: read,
 * write (a run, or from an evbuffer), shut the write side, close, and the
 * peer's address, behind a small table of functions. Plain TCP is the first
 * transport (tcp.c); TLS will be a second, driven on the same non-blocking
 * socket, without the connection's state machine changing. The connection
 * calls no recv/send/shutdown/close/getpeername of its own.
 */
#ifndef WSH_TRANSPORT_H
#define WSH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct evbuffer;
typedef struct wsh_transport wsh_transport;

typedef struct wsh_transport_ops {
  const char *name;
  /* Reads at most len bytes without blocking: the number read, 0 at the
   * peer's EOF, or -1 with errno (EAGAIN: nothing now). */
  ssize_t (*read)(wsh_transport *t, void *buf, size_t len);
  /* Writes at most len bytes without blocking (more: more bytes follow at
   * once, so they may leave together): the number written or -1 with
   * errno. */
  ssize_t (*write)(wsh_transport *t, const void *buf, size_t len, bool more);
  /* Writes from the front of b, draining what was written (one writev):
   * the number written, or -1 with errno. */
  int (*write_buffer)(wsh_transport *t, struct evbuffer *b);
  /* Ends our side of the stream (the FIN); reading goes on. */
  int (*shutdown)(wsh_transport *t);
  /* Closes the connection and frees the transport's state. */
  void (*close)(wsh_transport *t);
  /* The peer's address. 0 or -1. */
  int (*peer)(wsh_transport *t, struct sockaddr_storage *ss, socklen_t *len);
} wsh_transport_ops;

/* One connection's end of its transport. fd is what the loop waits on. */
struct wsh_transport {
  const wsh_transport_ops *ops;
  int fd;
};

/* Plain TCP over an accepted, non-blocking socket (takes fd over). */
void wsh_tcp_transport(wsh_transport *t, int fd);

#endif
