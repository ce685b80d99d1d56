/*
 * transport.h - the seam every byte of a connection passes through: read,
 * write (a run, or from an evbuffer), shut the write side, close, and the
 * peer's address, behind a small table of functions. Plain TCP is the first
 * transport (tcp.c); TLS (tls_transport.c) the second, driven on the same
 * non-blocking socket. The connection calls no recv/send/shutdown/close/
 * getpeername of its own.
 *
 * What TLS adds, none of it on TCP's path (its ops are NULL, its flags 0):
 * a read may have to wait for the socket to be writable and a write for it
 * to be readable (`flip`); decrypted bytes may wait inside the transport,
 * which the socket will not signal (`pending`); the transport's own
 * handshake comes before the connection's (`handshaking`, `timed_out`); it
 * may answer the peer itself and shut its write side (`answered`); and the
 * verified peer's name (`peer_subject`).
 */
#ifndef WSH_TRANSPORT_H
#define WSH_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct evbuffer;
typedef struct wsh_transport wsh_transport;
typedef struct wsh_tls wsh_tls;
typedef struct wsh_tls_stats wsh_tls_stats;

/* wsh_transport.flip: which readiness the last read or write waits for when
 * it is not the usual one. */
enum {
  WSH_TP_READ_WANTS_WRITE = 1, /* call read again once writable */
  WSH_TP_WRITE_WANTS_READ = 2  /* call write again once readable */
};

typedef struct wsh_transport_ops {
  const char *name;
  /* A read shorter than asked emptied the socket, so the socket can wait
   * edge-triggered (WSH_IO_EDGE). Not TLS: a read there stops at the end
   * of a record when OpenSSL holds nothing more, the socket maybe not. */
  bool drains;
  /* write() is one send() on fd, with MSG_DONTWAIT | MSG_NOSIGNAL (and
   * MSG_MORE when asked): another way of making the same call may stand in
   * for it (sendq.h). Not TLS. */
  bool fd_sends;
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
  /* The rest may be NULL (TCP). Bytes the transport holds that the socket
   * will not signal: read again before waiting. */
  size_t (*pending)(wsh_transport *t);
  /* 1 while the transport's own handshake is not done: nothing can be said
   * to the peer yet (an HTTP refusal would go nowhere). */
  int (*handshaking)(wsh_transport *t);
  /* The connection's handshake deadline passed during the transport's
   * handshake: counted, and the connection closes without an answer. */
  void (*timed_out)(wsh_transport *t);
  /* The verified peer's certificate subject (RFC 2253) in buf: its length,
   * 0 if none. */
  size_t (*peer_subject)(wsh_transport *t, char *buf, size_t len);
} wsh_transport_ops;

/* One connection's end of its transport. fd is what the loop waits on. */
struct wsh_transport {
  const wsh_transport_ops *ops;
  int fd;
  uint8_t flip;     /* WSH_TP_*: a read or write waits for the other side */
  uint8_t answered; /* the transport answered the peer and shut its write
                       side (TLS: plain HTTP on the TLS port): linger, close */
  uint8_t own;      /* the transport's own flags */
  void *ctx;        /* the transport's own state; NULL for TCP */
};

/* Plain TCP over an accepted, non-blocking socket (takes fd over). */
void wsh_tcp_transport(wsh_transport *t, int fd);

/* TCP_NODELAY on a listening socket, which Linux's accepted sockets
 * inherit (0, or -1 with errno; a Unix socket's EOPNOTSUPP is 0). */
int wsh_tcp_nodelay_listener(int fd);

/* TCP_NODELAY on an accepted socket: the first TCP socket's getsockopt
 * says whether the listener's was inherited; if so, no call at all for
 * every later one, else one setsockopt each. */
void wsh_tcp_nodelay(int fd);

/* TLS over an accepted, non-blocking socket with tls's current
 * certificates, counting handshakes in stats (takes fd over: on failure it
 * is closed). Returns 0, WEBSOCK_ENOENT (no certificates) or
 * WEBSOCK_ENOMEM. */
int wsh_tls_transport(wsh_transport *t, int fd, wsh_tls *tls,
                      wsh_tls_stats *stats);

#endif
