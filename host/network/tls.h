/*
 * tls.h - TLS 1.2/1.3 with OpenSSL 3, driven directly on a connection's
 * non-blocking socket (no second event framework): given the TLS settings of
 * the host config (base/tls_conf.h), the certificates loaded into a set of
 * SSL_CTX chosen by SNI and swapped whole on reload (tls_ctx.c), and one
 * server-side connection shaped like a transport: handshake, read, write,
 * shutdown, free (tls_conn.c).
 *
 * Threads: a wsh_tls is shared by every worker (wsh_tls_load and
 * wsh_tls_conn_new may run on different threads at once); a wsh_tls_conn
 * lives on one thread. OpenSSL's error queue is per thread: every function
 * here leaves it empty.
 */
#ifndef WSH_TLS_H
#define WSH_TLS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "base/tls_conf.h"

/* ------------------------------------------------------------------------ */
/* Certificates: a set of contexts, and the live one                         */
/* ------------------------------------------------------------------------ */

/* Everything built from one reading of the files: one SSL_CTX per
 * certificate, the SNI names mapping to them, the default. Reference
 * counted; immutable once built. */
typedef struct wsh_tls_set wsh_tls_set;

/* The serving side: the current set (swapped on reload under a mutex) and
 * the session ticket keys, which outlive reloads so that a ticket issued
 * before a reload resumes after it. */
typedef struct wsh_tls wsh_tls;

typedef struct wsh_tls_cert_info {
  const char *label;     /* as configured */
  const char *cert_file; /* as configured */
  const char *key_type;  /* "EC", "RSA", ... */
  time_t not_after;      /* the certificate's expiry, for /metrics */
  const char *const *names;
  size_t nnames; /* the SNI names it serves (names = or its DNS names) */
  int is_default;
} wsh_tls_cert_info;

/* Creates an empty wsh_tls (no set: wsh_tls_conn_new fails until a load
 * succeeds) with fresh random ticket keys. Returns 0 or WEBSOCK_ENOMEM. */
int wsh_tls_new(wsh_tls **out);

/* Frees t. Sets still held by connections live on until released. */
void wsh_tls_free(wsh_tls *t);

/* Reads every file of c into a new set; at the first failure (a missing or
 * unreadable file, bad PEM, a key that does not match its certificate, a
 * bad CA file) keeps the current set and returns WEBSOCK_EINVAL (or
 * WEBSOCK_ENOMEM) with err set to one line naming the file and the cause.
 * On success the new set serves every handshake that starts from now on,
 * while open connections keep theirs. Thread-safe. */
int wsh_tls_load(wsh_tls *t, const wsh_tls_conf *c, char *err, size_t errlen);

/* The current set with a reference taken (NULL before the first load);
 * give it back with wsh_tls_set_release. Thread-safe. */
wsh_tls_set *wsh_tls_current(wsh_tls *t);
void wsh_tls_set_release(wsh_tls_set *s);

/* Certificates of a set, the default first. Strings live as long as s. */
size_t wsh_tls_set_count(const wsh_tls_set *s);
void wsh_tls_set_cert(const wsh_tls_set *s, size_t i, wsh_tls_cert_info *info);

/* For -t: loads everything as wsh_tls_load would (then drops it). Returns 0,
 * or an error with err set as wsh_tls_load. On 0, warn holds one line per
 * certificate that expires within 30 days of now or has expired ("FILE:
 * certificate expires on 2026-12-10 12:00:00 UTC (in 10 days)"), separated
 * by '\n', or "" if none. */
int wsh_tls_check(const wsh_tls_conf *c, time_t now, char *err, size_t errlen,
                  char *warn, size_t warnlen);

/* ------------------------------------------------------------------------ */
/* Counters                                                                  */
/* ------------------------------------------------------------------------ */

/* Why a handshake failed: one counter each, and a label for /metrics. */
#define WSH_TLS_FAIL_MAP(XX)                                                   \
  XX(PLAIN_HTTP, "plain_http")   /* GET/POST/HEAD/PUT/CONNECT (nginx's) */     \
  XX(MALFORMED, "malformed")     /* bytes that are not a ClientHello */        \
  XX(TRUNCATED, "truncated")     /* the peer closed mid-handshake */           \
  XX(VERSION, "version")         /* TLS 1.1 or older, SSLv2/3 */               \
  XX(NO_SHARED_CIPHER, "cipher") /* no shared cipher, group or sigalg */       \
  XX(ALPN, "alpn")               /* ALPN offered without http/1.1 */           \
  XX(CLIENT_CERT, "client_cert") /* client certificate missing/invalid */      \
  XX(PEER_ALERT, "peer_alert")   /* the client refused (say our cert) */       \
  XX(IO, "io")                   /* a socket error (reset) */                  \
  XX(TIMEOUT, "timeout")         /* the caller's handshake deadline */         \
  XX(INTERNAL, "internal")       /* out of memory, OpenSSL internal */

enum wsh_tls_fail {
#define WSH_TLS_FAIL_ENUM_(name, label) WSH_TLS_FAIL_##name,
  WSH_TLS_FAIL_MAP(WSH_TLS_FAIL_ENUM_)
#undef WSH_TLS_FAIL_ENUM_
      WSH_TLS_FAIL_COUNT
};

/* The /metrics label of a reason ("plain_http", ...); "unknown" if none. */
const char *wsh_tls_fail_name(int reason);

/* Counters of the handshakes of the connections given this struct (one per
 * worker, say). Written with relaxed atomics; any thread may read them. */
typedef struct wsh_tls_stats {
  _Atomic uint64_t handshakes; /* completed */
  _Atomic uint64_t resumed;    /* of those, resumed from a ticket */
  _Atomic uint64_t tls12, tls13;
  _Atomic uint64_t failed[WSH_TLS_FAIL_COUNT];
} wsh_tls_stats;

/* ------------------------------------------------------------------------ */
/* A connection                                                              */
/* ------------------------------------------------------------------------ */

typedef struct wsh_tls_conn wsh_tls_conn;

/* What handshake, read, write and shutdown return (read and write: a byte
 * count > 0 instead of WSH_TLS_DONE). */
enum wsh_tls_status {
  WSH_TLS_DONE = 0,
  WSH_TLS_WANT_READ = -1,  /* call again when the socket is readable */
  WSH_TLS_WANT_WRITE = -2, /* call again when the socket is writable */
  WSH_TLS_EOF = -3,        /* read: the peer closed (close_notify or not) */
  WSH_TLS_ERROR = -4,      /* fatal: see wsh_tls_conn_fail/_error; close */
};

/* Starts a server-side TLS connection on an accepted non-blocking socket
 * (fd stays the caller's: wsh_tls_conn_free does not close it), with the
 * current set of t. stats may be NULL. Returns 0, WEBSOCK_ENOENT (no set
 * loaded) or WEBSOCK_ENOMEM. */
int wsh_tls_conn_new(wsh_tls *t, int fd, wsh_tls_stats *stats,
                     wsh_tls_conn **out);

/* Runs the handshake as far as the socket allows: WSH_TLS_DONE (counted as
 * completed), WANT_READ, WANT_WRITE, or ERROR (counted under its reason;
 * wsh_tls_conn_fail says which). The caller's handshake deadline covers it:
 * on expiry call wsh_tls_conn_timed_out and close. */
int wsh_tls_handshake(wsh_tls_conn *tc);

/* Reads up to len decrypted bytes (once the handshake is DONE): a count > 0,
 * WANT_READ, WANT_WRITE, EOF or ERROR. WANT_WRITE on a read means TLS must send
 * before it can go on (an alert, a key update answer): wait for the socket to
 * be writable, then call wsh_tls_read again. Bytes may be waiting inside TLS
 * beyond len: when a read returns len, read again before waiting for the socket
 * (or check wsh_tls_pending). */
ssize_t wsh_tls_read(wsh_tls_conn *tc, void *buf, size_t len);

/* Bytes decrypted and waiting, that the socket will not signal. */
size_t wsh_tls_pending(const wsh_tls_conn *tc);

/* Encrypts and sends up to len bytes, as many as the socket takes (in
 * records of up to 16 KiB): a count > 0, WANT_WRITE, WANT_READ or ERROR. After
 * a WANT_*, call again with the same bytes (at least the same len; the buffer
 * may have moved) when the socket is ready, writable or readable as said: TLS
 * has taken part of them already. */
ssize_t wsh_tls_write(wsh_tls_conn *tc, const void *buf, size_t len);

/* Sends our close_notify (once): DONE, WANT_WRITE / WANT_READ (call again
 * when the socket is ready as said) or ERROR. Does not wait for the peer's.
 * After an ERROR or EOF from the connection it sends nothing and returns DONE.
 */
int wsh_tls_shutdown(wsh_tls_conn *tc);

/* Frees the TLS state (and the set reference), never the socket. NULL ok. */
void wsh_tls_conn_free(wsh_tls_conn *tc);

/* After a handshake ERROR of reason WSH_TLS_FAIL_PLAIN_HTTP: writes, in one
 * non-blocking send, a plain "400 Bad Request" saying "The plain HTTP
 * request was sent to HTTPS port" (as nginx does) and shuts the socket's
 * write side. The caller then closes as after any 400 (reading what the
 * client still sends for a moment, so that the close does not reset the
 * answer away). Returns 0 or WEBSOCK_ECLOSED if it could not be sent. */
int wsh_tls_reply_plain_http(wsh_tls_conn *tc);

/* Counts a handshake cut by the caller's deadline (once). */
void wsh_tls_conn_timed_out(wsh_tls_conn *tc);

/* Queries. Strings are static or live as long as tc. */
int wsh_tls_conn_fail(const wsh_tls_conn *tc);            /* reason, -1 none */
const char *wsh_tls_conn_error(const wsh_tls_conn *tc);   /* detail or "" */
const char *wsh_tls_conn_version(const wsh_tls_conn *tc); /* "TLSv1.3" */
int wsh_tls_conn_resumed(const wsh_tls_conn *tc);
const char *wsh_tls_conn_alpn(const wsh_tls_conn *tc); /* "http/1.1"/NULL */
const char *wsh_tls_conn_sni(const wsh_tls_conn *tc);  /* NULL: none sent */
/* The verified client certificate's subject, RFC 2253 ("CN=alice,O=Acme"),
 * in buf (truncated to buflen). Returns its length, or 0 with buf "" when
 * the client sent none. */
size_t wsh_tls_conn_peer_subject(const wsh_tls_conn *tc, char *buf,
                                 size_t buflen);
/* Kernel TLS in use on this connection: bit 1 send, bit 2 receive. */
int wsh_tls_conn_ktls(const wsh_tls_conn *tc);

#endif
