/*
 * tls_transport.c - the TLS transport (see transport.h) over tls_conn.c:
 * the handshake runs inside the first reads, so that the connection sees
 * only decrypted bytes; a failed handshake is logged in one debug line and
 * closes, but plain HTTP on the TLS port gets nginx's 400 and a lingering
 * close; close_notify goes out as the write side is shut.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "base/config.h"
#include "base/log.h"
#include "network/tls.h"
#include "network/transport.h"
#include "websock.h"

/* Each write encrypts at most this much of an evbuffer (one record's worth
 * made contiguous, so that small queued frames leave in one record). */
#define WSH_TLS_WRITE_CHUNK 16384
/* A queued piece this large goes out as it lies, never copied to join
 * the pieces around it. */
#define WSH_TLS_BIG_PIECE 2048

/* wsh_transport.own (no allocation of our own beside OpenSSL's) */
enum {
  TLS_DONE = 1,   /* handshake completed */
  TLS_DRAINED = 2 /* after the plain HTTP answer: reads are raw, dropped */
};

static wsh_tls_conn *tc_of(wsh_transport *t) {
  return t->ctx;
}

static void log_failure(wsh_transport *t, wsh_tls_conn *tc) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char peer[64] = "?";
  if (getpeername(t->fd, (struct sockaddr *)&ss, &len) == 0)
    wsh_format_addr((struct sockaddr *)&ss, peer, sizeof(peer));
  const char *detail = wsh_tls_conn_error(tc);
  wsh_debug("%s: TLS handshake failed: %s%s%s", peer,
            wsh_tls_fail_name(wsh_tls_conn_fail(tc)), *detail ? ": " : "",
            detail);
}

/* The handshake failed: plain HTTP is answered (the connection lingers),
 * anything else closes. */
static ssize_t handshake_failed(wsh_transport *t) {
  log_failure(t, tc_of(t));
  if (wsh_tls_conn_fail(tc_of(t)) == WSH_TLS_FAIL_PLAIN_HTTP) {
    wsh_tls_reply_plain_http(tc_of(t));
    t->own |= TLS_DRAINED;
    t->answered = 1;
    t->flip = 0;
    errno = EAGAIN;
    return -1;
  }
  errno = EPROTO;
  return -1;
}

/* Runs the handshake on: 0 once done, else -1 with errno. */
static ssize_t handshake(wsh_transport *t) {
  switch (wsh_tls_handshake(tc_of(t))) {
  case WSH_TLS_DONE:
    t->own |= TLS_DONE;
    t->flip &= (uint8_t)~WSH_TP_READ_WANTS_WRITE;
    return 0;
  case WSH_TLS_WANT_READ:
    t->flip &= (uint8_t)~WSH_TP_READ_WANTS_WRITE;
    errno = EAGAIN;
    return -1;
  case WSH_TLS_WANT_WRITE:
    t->flip |= WSH_TP_READ_WANTS_WRITE;
    errno = EAGAIN;
    return -1;
  default:
    return handshake_failed(t);
  }
}

/* Fills buf with as many decrypted bytes as there are (record after
 * record), so that one loop turn takes what the socket holds. */
static ssize_t tls_read(wsh_transport *t, void *buf, size_t len) {
  if (t->own & TLS_DRAINED)
    return recv(t->fd, buf, len, MSG_DONTWAIT);
  if (!(t->own & TLS_DONE) && handshake(t) < 0)
    return -1;
  size_t got = 0;
  while (got < len) {
    ssize_t n = wsh_tls_read(tc_of(t), (char *)buf + got, len - got);
    if (n > 0) {
      got += (size_t)n;
      /* Nothing left inside OpenSSL: what comes next is in the socket,
       * which will say so; no recv() just to hear EAGAIN. */
      if (!wsh_tls_pending(tc_of(t)))
        break;
      continue;
    }
    if (n == WSH_TLS_WANT_WRITE)
      t->flip |= WSH_TP_READ_WANTS_WRITE;
    else
      t->flip &= (uint8_t)~WSH_TP_READ_WANTS_WRITE;
    if (got)
      break; /* EOF or an error comes again on the next read */
    if (n == WSH_TLS_EOF)
      return 0;
    errno = n == WSH_TLS_ERROR ? EPROTO : EAGAIN;
    return -1;
  }
  return (ssize_t)got;
}

static ssize_t tls_write(wsh_transport *t, const void *buf, size_t len,
                         bool more) {
  (void)more;
  if ((t->own & (TLS_DONE | TLS_DRAINED)) != TLS_DONE) {
    errno = EPIPE;
    return -1;
  }
  /* Record after record (a partial write is one record taken, not a full
   * socket): the caller takes a short count for "wait for the socket". */
  size_t done = 0;
  ssize_t n = 0;
  while (done < len) {
    n = wsh_tls_write(tc_of(t), (const char *)buf + done, len - done);
    if (n <= 0)
      break;
    done += (size_t)n;
  }
  if (n == WSH_TLS_WANT_READ)
    t->flip |= WSH_TP_WRITE_WANTS_READ;
  else
    t->flip &= (uint8_t)~WSH_TP_WRITE_WANTS_READ;
  if (done > 0 || n >= 0)
    return (ssize_t)done;
  errno = n == WSH_TLS_ERROR ? EPIPE : EAGAIN;
  return -1;
}

/* How much of b's front one record takes: a large first piece (a
 * message's payload) as it lies, without a copy; else the small pieces in
 * front of the next large one, made contiguous (a copy of small pieces
 * only), so that small queued frames leave in one record. */
static size_t record_len(struct evbuffer *b) {
  struct evbuffer_iovec v[8];
  int n = evbuffer_peek(b, WSH_TLS_WRITE_CHUNK, NULL, v, 8);
  size_t len = 0;
  if (n > 8)
    n = 8;
  for (int i = 0; i < n && len < WSH_TLS_WRITE_CHUNK; i++) {
    if (v[i].iov_len >= WSH_TLS_BIG_PIECE) {
      if (len == 0)
        len = v[i].iov_len;
      break;
    }
    len += v[i].iov_len;
  }
  if (len == 0)
    len = evbuffer_get_length(b);
  return len > WSH_TLS_WRITE_CHUNK ? WSH_TLS_WRITE_CHUNK : len;
}

/* A write taken from the evbuffer's front and drained only once TLS has
 * taken it: after a WANT_* the same bytes are at the front again. */
static int tls_write_buffer(wsh_transport *t, struct evbuffer *b) {
  size_t len = record_len(b);
  unsigned char *front = evbuffer_pullup(b, (ssize_t)len);
  if (!front) {
    errno = ENOMEM;
    return -1;
  }
  ssize_t n = tls_write(t, front, len, false);
  if (n > 0)
    evbuffer_drain(b, (size_t)n);
  return (int)n;
}

/* close_notify (once the handshake is done), then the FIN. */
static int tls_shutdown(wsh_transport *t) {
  if ((t->own & (TLS_DONE | TLS_DRAINED)) == TLS_DONE)
    wsh_tls_shutdown(tc_of(t));
  return shutdown(t->fd, SHUT_WR);
}

/* close_notify first (once, best effort, never blocking): the close frame
 * is out when the connection closes at once after the closing handshake. */
static void tls_close(wsh_transport *t) {
  if ((t->own & (TLS_DONE | TLS_DRAINED)) == TLS_DONE)
    wsh_tls_shutdown(tc_of(t));
  wsh_tls_conn_free(tc_of(t));
  t->ctx = NULL;
  close(t->fd);
  t->fd = -1;
}

static int tls_peer(wsh_transport *t, struct sockaddr_storage *ss,
                    socklen_t *len) {
  *len = sizeof(*ss);
  return getpeername(t->fd, (struct sockaddr *)ss, len);
}

static size_t tls_pending(wsh_transport *t) {
  return (t->own & (TLS_DONE | TLS_DRAINED)) == TLS_DONE
             ? wsh_tls_pending(tc_of(t))
             : 0;
}

static int tls_handshaking(wsh_transport *t) {
  return !(t->own & TLS_DONE);
}

static void tls_timed_out(wsh_transport *t) {
  wsh_tls_conn_timed_out(tc_of(t));
  log_failure(t, tc_of(t));
}

static size_t tls_peer_subject(wsh_transport *t, char *buf, size_t len) {
  if (!(t->own & TLS_DONE)) {
    if (len)
      buf[0] = '\0';
    return 0;
  }
  return wsh_tls_conn_peer_subject(tc_of(t), buf, len);
}

static const wsh_transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .write_buffer = tls_write_buffer,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .peer = tls_peer,
    .pending = tls_pending,
    .handshaking = tls_handshaking,
    .timed_out = tls_timed_out,
    .peer_subject = tls_peer_subject,
};

int wsh_tls_transport(wsh_transport *t, int fd, wsh_tls *tls,
                      wsh_tls_stats *stats) {
  wsh_tls_conn *tc;
  int rc = wsh_tls_conn_new(tls, fd, stats, &tc);
  if (rc != 0) {
    close(fd);
    return rc;
  }
  t->ops = &tls_ops;
  t->fd = fd;
  t->flip = 0;
  t->answered = 0;
  t->own = 0;
  t->ctx = tc;
  wsh_tcp_nodelay(fd);
  return 0;
}
