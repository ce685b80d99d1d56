/*
 * tls_conn.c - one server-side TLS connection on an accepted non-blocking
 * socket, driven with SSL_* directly on the fd (a socket BIO): handshake,
 * read, write and close_notify, each answering "done", "want read", "want
 * write" or a classified failure, so that the connection's event loop (not
 * OpenSSL) decides when to call again. Counts handshakes by outcome.
 *
 * The struct and everything OpenSSL holds for the connection come from
 * OpenSSL's allocator (OPENSSL_zalloc), so that a counting allocator set with
 * CRYPTO_set_mem_functions sees all the bytes of a TLS connection.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "network/tls_int.h"
#include "websock.h"

struct wsh_tls_conn {
  SSL *ssl;
  wsh_tls_set *set; /* held until the handshake ends (SNI needs it) */
  wsh_tls_stats *stats;
  int fd;
  int fail;              /* enum wsh_tls_fail, or -1 */
  int sys_errno;         /* for WSH_TLS_FAIL_IO */
  unsigned long ssl_err; /* OpenSSL's first error of the failure, or 0 */
  unsigned done : 1;     /* handshake completed */
  unsigned dead : 1;     /* a fatal error or EOF: no close_notify */
  unsigned eof : 1;      /* reads end with WSH_TLS_EOF */
};

static const char *const fail_names[] = {
#define WSH_TLS_FAIL_NAME_(name, label) label,
    WSH_TLS_FAIL_MAP(WSH_TLS_FAIL_NAME_)
#undef WSH_TLS_FAIL_NAME_
};

const char *wsh_tls_fail_name(int reason) {
  if (reason < 0 || reason >= WSH_TLS_FAIL_COUNT)
    return "unknown";
  return fail_names[reason];
}

static void count(wsh_tls_stats *st, _Atomic uint64_t *c) {
  if (st)
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

int wsh_tls_conn_new(wsh_tls *t, int fd, wsh_tls_stats *stats,
                     wsh_tls_conn **out) {
  wsh_tls_set *s = wsh_tls_current(t);
  wsh_tls_conn *tc;
  if (!s)
    return WEBSOCK_ENOENT;
  if (!(tc = OPENSSL_zalloc(sizeof(*tc))))
    goto out_release;
  tc->set = s;
  tc->stats = stats;
  tc->fd = fd;
  tc->fail = -1;
  if (!(tc->ssl = SSL_new(wsh_tls_set_default_ctx(s))))
    goto out_free;
  if (SSL_set_fd(tc->ssl, fd) != 1)
    goto out_free;
  SSL_set_accept_state(tc->ssl);
  *out = tc;
  return 0;
out_free:
  SSL_free(tc->ssl);
  OPENSSL_free(tc);
out_release:
  wsh_tls_set_release(s);
  ERR_clear_error();
  return WEBSOCK_ENOMEM;
}

void wsh_tls_conn_free(wsh_tls_conn *tc) {
  if (!tc)
    return;
  SSL_free(tc->ssl);
  wsh_tls_set_release(tc->set);
  OPENSSL_free(tc);
}

/* ------------------------------------------------------------------------ */
/* Failures                                                                  */
/* ------------------------------------------------------------------------ */

/* The reason of an SSL_ERROR_SSL during the handshake. */
static int classify(unsigned long e) {
  int r = ERR_GET_REASON(e);
  if (ERR_GET_LIB(e) != ERR_LIB_SSL)
    return ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE ? WSH_TLS_FAIL_INTERNAL
                                                     : WSH_TLS_FAIL_MALFORMED;
  switch (r) {
  case SSL_R_HTTP_REQUEST:
  case SSL_R_HTTPS_PROXY_REQUEST:
    return WSH_TLS_FAIL_PLAIN_HTTP;
  case SSL_R_UNSUPPORTED_PROTOCOL:
  case SSL_R_VERSION_TOO_LOW:
  case SSL_R_UNKNOWN_PROTOCOL:
  case SSL_R_BAD_LEGACY_VERSION:
    return WSH_TLS_FAIL_VERSION;
  case SSL_R_NO_SHARED_CIPHER:
  case SSL_R_NO_SHARED_GROUPS:
  case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
  case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
    return WSH_TLS_FAIL_NO_SHARED_CIPHER;
  case SSL_R_NO_APPLICATION_PROTOCOL:
    return WSH_TLS_FAIL_ALPN;
  case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
  case SSL_R_CERTIFICATE_VERIFY_FAILED:
  case SSL_R_NO_CERTIFICATES_RETURNED:
    return WSH_TLS_FAIL_CLIENT_CERT;
  case SSL_R_UNEXPECTED_EOF_WHILE_READING:
    return WSH_TLS_FAIL_TRUNCATED;
  case ERR_R_MALLOC_FAILURE:
  case ERR_R_INTERNAL_ERROR:
    return WSH_TLS_FAIL_INTERNAL;
  default:
    return r >= SSL_AD_REASON_OFFSET ? WSH_TLS_FAIL_PEER_ALERT
                                     : WSH_TLS_FAIL_MALFORMED;
  }
}

/* Records a fatal error (ssl_error: SSL_get_error's answer) and, during the
 * handshake, counts it under its reason. */
static void fail(wsh_tls_conn *tc, int ssl_error) {
  unsigned long e = ERR_peek_error();
  int reason;
  tc->dead = 1;
  if (ssl_error == SSL_ERROR_SYSCALL && e == 0) {
    tc->sys_errno = errno;
    reason = errno ? WSH_TLS_FAIL_IO : WSH_TLS_FAIL_TRUNCATED;
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    reason = WSH_TLS_FAIL_TRUNCATED;
  } else {
    tc->ssl_err = e;
    reason = e ? classify(e) : WSH_TLS_FAIL_INTERNAL;
  }
  ERR_clear_error();
  if (tc->done || tc->fail >= 0)
    return;
  tc->fail = reason;
  if (tc->stats)
    count(tc->stats, &tc->stats->failed[reason]);
  wsh_tls_set_release(tc->set);
  tc->set = NULL;
}

/* ------------------------------------------------------------------------ */
/* Transport                                                                 */
/* ------------------------------------------------------------------------ */

static void handshake_done(wsh_tls_conn *tc) {
  wsh_tls_stats *st = tc->stats;
  tc->done = 1;
  wsh_tls_set_release(tc->set); /* SNI is over */
  tc->set = NULL;
  if (!st)
    return;
  count(st, &st->handshakes);
  if (SSL_session_reused(tc->ssl))
    count(st, &st->resumed);
  if (SSL_version(tc->ssl) == TLS1_3_VERSION)
    count(st, &st->tls13);
  else if (SSL_version(tc->ssl) == TLS1_2_VERSION)
    count(st, &st->tls12);
}

int wsh_tls_handshake(wsh_tls_conn *tc) {
  int r, e;
  if (tc->done)
    return WSH_TLS_DONE;
  if (tc->dead)
    return WSH_TLS_ERROR;
  ERR_clear_error();
  errno = 0;
  if ((r = SSL_do_handshake(tc->ssl)) == 1) {
    handshake_done(tc);
    return WSH_TLS_DONE;
  }
  switch ((e = SSL_get_error(tc->ssl, r))) {
  case SSL_ERROR_WANT_READ:
    return WSH_TLS_WANT_READ;
  case SSL_ERROR_WANT_WRITE:
    return WSH_TLS_WANT_WRITE;
  default:
    fail(tc, e);
    return WSH_TLS_ERROR;
  }
}

ssize_t wsh_tls_read(wsh_tls_conn *tc, void *buf, size_t len) {
  int r, e;
  if (tc->dead || tc->eof)
    return tc->eof ? WSH_TLS_EOF : WSH_TLS_ERROR;
  ERR_clear_error();
  errno = 0;
  if ((r = SSL_read(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len)) > 0)
    return r;
  switch ((e = SSL_get_error(tc->ssl, r))) {
  case SSL_ERROR_WANT_READ:
    return WSH_TLS_WANT_READ;
  case SSL_ERROR_WANT_WRITE:
    return WSH_TLS_WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN: /* close_notify: ours may still go out */
    ERR_clear_error();
    tc->eof = 1;
    return WSH_TLS_EOF;
  default:
    fail(tc, e);
    /* A TCP close without close_notify is an end, as plain TCP's. */
    if ((e == SSL_ERROR_SYSCALL && !tc->sys_errno && !tc->ssl_err) ||
        ERR_GET_REASON(tc->ssl_err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
      tc->eof = 1;
      return WSH_TLS_EOF;
    }
    return WSH_TLS_ERROR;
  }
}

size_t wsh_tls_pending(const wsh_tls_conn *tc) {
  int n = SSL_pending(tc->ssl);
  /* with read-ahead, records not yet decrypted may wait inside too */
  return n > 0 ? (size_t)n : SSL_has_pending(tc->ssl) ? 1 : 0;
}

ssize_t wsh_tls_write(wsh_tls_conn *tc, const void *buf, size_t len) {
  int r, e;
  if (tc->dead)
    return WSH_TLS_ERROR;
  if (len == 0)
    return 0;
  ERR_clear_error();
  errno = 0;
  if ((r = SSL_write(tc->ssl, buf, len > INT_MAX ? INT_MAX : (int)len)) > 0)
    return r;
  switch ((e = SSL_get_error(tc->ssl, r))) {
  case SSL_ERROR_WANT_READ:
    return WSH_TLS_WANT_READ;
  case SSL_ERROR_WANT_WRITE:
    return WSH_TLS_WANT_WRITE;
  default:
    fail(tc, e);
    return WSH_TLS_ERROR;
  }
}

int wsh_tls_shutdown(wsh_tls_conn *tc) {
  int r, e;
  if (tc->dead || !tc->done)
    return WSH_TLS_DONE;
  ERR_clear_error();
  errno = 0;
  if ((r = SSL_shutdown(tc->ssl)) >= 0)
    return WSH_TLS_DONE;
  if ((e = SSL_get_error(tc->ssl, r)) == SSL_ERROR_WANT_WRITE)
    return WSH_TLS_WANT_WRITE;
  if (e == SSL_ERROR_WANT_READ) /* in the middle of reading a record */
    return WSH_TLS_WANT_READ;
  fail(tc, e);
  return WSH_TLS_ERROR;
}

int wsh_tls_reply_plain_http(wsh_tls_conn *tc) {
  static const char body[] = "The plain HTTP request was sent to HTTPS port\n";
  char resp[256];
  int n = snprintf(resp, sizeof(resp),
                   "HTTP/1.1 400 Bad Request\r\n"
                   "Content-Type: text/plain\r\n"
                   "Content-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s",
                   sizeof(body) - 1, body);
  ssize_t sent;
  if (tc->fail != WSH_TLS_FAIL_PLAIN_HTTP)
    return WEBSOCK_EINVAL;
  sent = send(tc->fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
  shutdown(tc->fd, SHUT_WR);
  return sent == n ? 0 : WEBSOCK_ECLOSED;
}

void wsh_tls_conn_timed_out(wsh_tls_conn *tc) {
  if (tc->done || tc->fail >= 0)
    return;
  tc->dead = 1;
  tc->fail = WSH_TLS_FAIL_TIMEOUT;
  if (tc->stats)
    count(tc->stats, &tc->stats->failed[WSH_TLS_FAIL_TIMEOUT]);
  wsh_tls_set_release(tc->set);
  tc->set = NULL;
}

/* ------------------------------------------------------------------------ */
/* Queries                                                                   */
/* ------------------------------------------------------------------------ */

int wsh_tls_conn_fail(const wsh_tls_conn *tc) {
  return tc->fail;
}

const char *wsh_tls_conn_error(const wsh_tls_conn *tc) {
  const char *r;
  if (tc->fail == WSH_TLS_FAIL_TIMEOUT)
    return "handshake timed out";
  if (tc->ssl_err && (r = ERR_reason_error_string(tc->ssl_err)) != NULL)
    return r;
  if (tc->sys_errno)
    return strerror(tc->sys_errno);
  if (tc->fail == WSH_TLS_FAIL_TRUNCATED)
    return "the peer closed during the handshake";
  return "";
}

const char *wsh_tls_conn_version(const wsh_tls_conn *tc) {
  return SSL_get_version(tc->ssl);
}

int wsh_tls_conn_resumed(const wsh_tls_conn *tc) {
  return tc->done && SSL_session_reused(tc->ssl);
}

const char *wsh_tls_conn_alpn(const wsh_tls_conn *tc) {
  const unsigned char *p = NULL;
  unsigned int n = 0;
  SSL_get0_alpn_selected(tc->ssl, &p, &n);
  return n == 8 && memcmp(p, "http/1.1", 8) == 0 ? "http/1.1" : NULL;
}

const char *wsh_tls_conn_sni(const wsh_tls_conn *tc) {
  return SSL_get_servername(tc->ssl, TLSEXT_NAMETYPE_host_name);
}

size_t wsh_tls_conn_peer_subject(const wsh_tls_conn *tc, char *buf,
                                 size_t buflen) {
  X509 *peer = SSL_get0_peer_certificate(tc->ssl);
  BIO *b;
  char *p;
  long n;
  size_t len = 0;
  if (buflen)
    buf[0] = '\0';
  if (!peer || SSL_get_verify_result(tc->ssl) != X509_V_OK || !buflen ||
      !(b = BIO_new(BIO_s_mem())))
    return 0;
  if (X509_NAME_print_ex(b, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253) >=
          0 &&
      (n = BIO_get_mem_data(b, &p)) > 0) {
    len = (size_t)n < buflen - 1 ? (size_t)n : buflen - 1;
    memcpy(buf, p, len);
    buf[len] = '\0';
  }
  BIO_free(b);
  ERR_clear_error();
  return len;
}

int wsh_tls_conn_ktls(const wsh_tls_conn *tc) {
  return (BIO_get_ktls_send(SSL_get_wbio(tc->ssl)) ? 1 : 0) |
         (BIO_get_ktls_recv(SSL_get_rbio(tc->ssl)) ? 2 : 0);
}
