/*
 * wsload.c - the load generator of websockd's benchmarks: one thread, epoll,
 * non-blocking sockets, and its own minimal RFC 6455 client (handshake,
 * masked frames out, server frames in). It depends on libc only (and zlib,
 * for --deflate; OpenSSL's libssl, for --tls), so that it measures servers
 * rather than a client library.
 *
 * --tls speaks TLS (1.2 or 1.3, whatever the server picks; the server's
 * certificate is not verified: a benchmark, not a client); --resume (connect)
 * resumes every handshake from the newest session ticket the server sent.
 *
 *   echo     C connections, P messages in flight on each, every echo checked
 *            byte for byte; messages/s, MB/s, latency p50/p99/p99.9.
 *            --rate R makes it an open loop: R messages a second in all,
 *            due at fixed times, round robin over the connections, each
 *            sent when due whether or not the earlier ones came back
 *            (at most P in flight per connection, -p default 64 then; a
 *            message due on a connection already at P is counted as
 *            skipped). Latency runs from when a message was due, not from
 *            when it left, so a late client does not hide a slow server.
 *            --slow US lists every measured echo that took US or more on
 *            stderr, for bench/stalls.py (bench/stalls.sh).
 *            --ports P1,P2,... drives several servers in turn, in slices
 *            of --slice seconds (run_echo_turns), one line each.
 *   connect  N handshakes (each followed by a close handshake), C at a time
 *   idle     opens N connections, prints "open N", holds them
 *   fanout   M subscribers and one publisher; time from a publish until
 *            every subscriber has it. --ports P1,P2,... spreads the
 *            subscribers over several servers (subscriber i on port
 *            P[i % n], the publisher on P1: hosts sharing topics through
 *            Redis); --rate R publishes R per second without waiting and
 *            times every delivery (publish to receive, p50/p99) and the
 *            delivered messages/s
 *
 * Its sockets are edge-triggered: each turn serves the connections in the
 * order their input arrived (poll_once).
 *
 * Each run prints one line of key=value pairs on stdout; client_cpu_s and
 * client_cpu_pct (getrusage, over the measured window; for fanout also
 * window_cpu_pct, over the publish-to-last-delivery windows only) say
 * whether the generator itself was the bottleneck: near 100 %, it was.
 *
 * --deflate offers permessage-deflate (RFC 7692, with zlib): every message
 * is sent compressed (level 1, no context takeover: the deflater is reset
 * per message) and compressed messages from the server are inflated (with
 * one inflater per connection when the server keeps its context); the run
 * fails if the server does not accept the offer. z_in_ratio is the server's
 * compressed bytes ÷ the same messages inflated, z_in_share the part of the
 * messages it sent compressed. --json makes the echo's text JSON-like
 * (compressible, as chat traffic is); --random with --binary makes it
 * incompressible.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

/* ---- options ----------------------------------------------------------- */

enum mode { MODE_ECHO, MODE_CONNECT, MODE_IDLE, MODE_FANOUT };

typedef struct opts {
  enum mode mode;
  const char *host;
  int port;
  const char *path;     /* {i} is replaced by the connection's index */
  const char *pub_path; /* fanout: the publisher's path */
  long conns;           /* echo: connections; others: concurrency */
  long depth;
  size_t size;
  int binary;
  double secs, warmup, hold, settle, timeout;
  long n;        /* connect, idle: connections; fanout: publishes */
  long subs;     /* fanout: subscribers */
  int ports[16]; /* fanout, echo: --ports (nports 0: --port only) */
  int nports;
  double rate;      /* fanout: publishes/s (0: one at a time); echo: msgs/s */
  int deflate;      /* offer permessage-deflate */
  int json, random; /* echo: the message's content */
  int tls, resume;  /* --tls, --resume */
  double slow_us;   /* echo --slow: every measured echo this slow, listed */
  double slice;     /* echo --ports: seconds per turn */
} opts;

/* ---- time, randomness, statistics -------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* The times the client went to sleep (voluntary context switches). */
static long sleeps(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw;
}

/* xorshift64*: mask keys need only be unpredictable to a proxy, not secret. */
static uint64_t rng_state;

static uint32_t rng32(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

/* Log-linear histogram of nanoseconds: 32 sub-buckets per power of two, so
 * a reported percentile is within about 3 % of the true value. */
#define HIST_SUB 5
#define HIST_N ((64 - HIST_SUB + 1) << HIST_SUB)

typedef struct hist {
  uint64_t b[HIST_N];
  uint64_t n, max;
} hist;

static unsigned hist_index(uint64_t v) {
  if (v < (1u << HIST_SUB))
    return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v);
  return ((k - HIST_SUB + 1) << HIST_SUB) |
         (unsigned)((v >> (k - HIST_SUB)) & ((1u << HIST_SUB) - 1));
}

static uint64_t hist_value(unsigned idx) {
  if (idx < (1u << HIST_SUB))
    return idx;
  unsigned k = (idx >> HIST_SUB) + HIST_SUB - 1;
  uint64_t lo = (uint64_t)((1u << HIST_SUB) | (idx & ((1u << HIST_SUB) - 1)))
                << (k - HIST_SUB);
  return lo + ((1ull << (k - HIST_SUB)) >> 1); /* the bucket's middle */
}

static void hist_add(hist *h, uint64_t v) {
  h->b[hist_index(v)]++;
  h->n++;
  if (v > h->max)
    h->max = v;
}

/* The value at rank ceil(q * n), in microseconds. */
static double hist_pct_us(const hist *h, double q) {
  if (!h->n)
    return 0;
  uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), seen = 0;
  if (want < 1)
    want = 1;
  for (unsigned i = 0; i < HIST_N; i++) {
    seen += h->b[i];
    if (seen >= want) {
      uint64_t v = hist_value(i);
      return (double)(v < h->max ? v : h->max) / 1e3;
    }
  }
  return (double)h->max / 1e3;
}

/* ---- connections ------------------------------------------------------- */

enum state { ST_FREE, ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

#define TMPL_EXTRA (1024 * 1024)

typedef struct conn {
  int fd;
  long id;
  enum state state;
  int epoll_out; /* EPOLLOUT is registered */
  uint8_t *in;   /* bytes read, not yet parsed */
  size_t in_len, in_cap;
  uint8_t *out; /* bytes to write: out[out_off..out_len) */
  size_t out_off, out_len, out_cap;
  uint8_t *msg; /* a fragmented message being reassembled */
  size_t msg_len, msg_cap;
  int msg_op;       /* its opcode; 0: none in progress */
  uint64_t t_start; /* connect: when connect() was called */
  uint64_t *ring;   /* echo: send times of the messages in flight */
  long ring_head, ring_count;
  uint64_t send_seq, recv_seq;
  long fan_seen;  /* fanout: the last publish seen, or -1 */
  int msg_z;      /* the message being reassembled is compressed */
  int z_takeover; /* the server keeps its compression context */
  z_stream *inf;  /* its inflater then */
  SSL *ssl;       /* --tls */
  int tls_hs;     /* the TLS handshake is in progress */
} conn;

typedef struct wsload {
  opts o;
  int ep;
  struct sockaddr_in addr;
  conn *c;
  uint64_t *fan_sent;          /* fanout --rate: each publish's send time */
  long fan_delivered;          /* fanout --rate: deliveries seen */
  long fan_dup;                /* fanout --rate: a publish seen twice */
  long nc;                     /* slots in c */
  long opening, open, closing; /* connections in each state */
  long closed, errors, started;
  int running;  /* echo: keep replacing echoed messages */
  long skipped; /* echo --rate: messages due on a connection at -p */
  int measuring;
  uint64_t msgs, total_msgs, bytes;
  double m_secs, m_cpu; /* echo: measured seconds, client CPU in them */
  long waits, m_sleeps; /* echo: epoll waits, and sleeps, in them */
  hist lat;
  uint8_t *tmpl;     /* echo: message pattern, size + 64 bytes */
  size_t tmpl_extra; /* and this much more: where messages start */
  char host_hdr[300];
  /* fanout */
  conn *pub;
  long fan_seq, fan_got;
  uint64_t fan_t0, fan_first, fan_last;
  hist fan_all, fan_1st;
  uint64_t last_rx;
  int quiet; /* no error messages after the run */
  /* --deflate */
  z_stream def, inf;     /* the deflater; the inflater of no-takeover */
  uint8_t *zbuf, *plain; /* compressed and plain scratch */
  size_t zcap, plaincap;
  uint64_t z_wire, z_plain, z_msgs, plain_msgs; /* what came compressed */
  SSL_CTX *ctx;                                 /* --tls */
  SSL_SESSION *sess;                            /* --resume: the first ticket */
  long resumed;                                 /* handshakes resumed */
} wsload;

static wsload *g_w; /* for the session callback only */

static volatile sig_atomic_t g_stop; /* the one global: set by SIGTERM/SIGINT */

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("wsload: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q)
    die("out of memory (%zu bytes)", n);
  return q;
}

/* A connection failed: count it, say why (for the first few), close it. */
static void conn_close(wsload *w, conn *c);

static void conn_fail(wsload *w, conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_fail(wsload *w, conn *c, const char *fmt, ...) {
  if (w->errors < 5 && !w->quiet) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "wsload: conn %ld: ", c->id);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
  }
  w->errors++;
  conn_close(w, c);
}

static void conn_close(wsload *w, conn *c) {
  if (c->fd < 0)
    return;
  if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
    w->opening--;
  else if (c->state == ST_OPEN)
    w->open--;
  else
    w->closing--;
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  c->tls_hs = 0;
  close(c->fd);
  c->fd = -1;
  c->state = ST_FREE;
  c->in_len = c->out_off = c->out_len = c->msg_len = 0;
  c->msg_op = 0;
  c->epoll_out = 0;
  c->ring_head = c->ring_count = 0;
  if (c->inf) {
    inflateEnd(c->inf);
    free(c->inf);
    c->inf = NULL;
  }
  w->closed++;
}

/* Closes with a RST, so that neither side keeps the port in TIME_WAIT. */
static void conn_reset(wsload *w, conn *c) {
  if (c->fd < 0)
    return;
  struct linger l = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  conn_close(w, c);
}

static void out_reserve(conn *c, size_t more) {
  if (c->out_off && c->out_off == c->out_len)
    c->out_off = c->out_len = 0;
  if (c->out_len + more <= c->out_cap)
    return;
  if (c->out_off) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
    if (c->out_len + more <= c->out_cap)
      return;
  }
  size_t cap = c->out_cap ? c->out_cap : 512;
  while (cap < c->out_len + more)
    cap *= 2;
  c->out = xrealloc(c->out, cap);
  c->out_cap = cap;
}

/* What a connection's socket always waits for: input, edge-triggered, and
 * the peer's shutdown (poll_once, on_readable) */
#define CONN_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)

static void set_events(wsload *w, conn *c, int want_out) {
  if (c->epoll_out == want_out)
    return;
  struct epoll_event ev = {.events = CONN_EVENTS | (want_out ? EPOLLOUT : 0),
                           .data.ptr = c};
  if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
  c->epoll_out = want_out;
}

/* Writes what it can; the rest waits for EPOLLOUT. */
static void conn_flush(wsload *w, conn *c) {
  if (c->tls_hs)
    return;
  while (c->out_off < c->out_len) {
    ssize_t n;
    if (c->ssl) {
      size_t len = c->out_len - c->out_off;
      int r = SSL_write(c->ssl, c->out + c->out_off,
                        len > INT32_MAX ? INT32_MAX : (int)len);
      if (r > 0) {
        c->out_off += (size_t)r;
        continue;
      }
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        set_events(w, c, e == SSL_ERROR_WANT_WRITE);
        return;
      }
      ERR_clear_error();
      conn_fail(w, c, "SSL_write: error %d", e);
      return;
    }
    n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c->out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      set_events(w, c, 1);
      return;
    }
    conn_fail(w, c, "send: %s", strerror(errno));
    return;
  }
  c->out_off = c->out_len = 0;
  set_events(w, c, 0);
}

/* ---- the client side of RFC 6455 --------------------------------------- */

static void mask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                      uint32_t key) {
  uint64_t k8 = (uint64_t)key | ((uint64_t)key << 32);
  uint8_t kb[4];
  memcpy(kb, &key, 4);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, src + i, 8);
    v ^= k8;
    memcpy(dst + i, &v, 8);
  }
  for (; i < n; i++)
    dst[i] = src[i] ^ kb[i & 3];
}

/* Appends the header of a masked frame of len bytes; returns its key and
 * where the payload goes. */
static uint8_t *frame_begin(conn *c, int opcode, size_t len, uint32_t *key) {
  out_reserve(c, len + 14);
  uint8_t *p = c->out + c->out_len;
  size_t h = 2;
  p[0] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[1] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[1] = 0x80 | 126;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
    h = 4;
  } else {
    p[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    h = 10;
  }
  *key = rng32();
  memcpy(p + h, key, 4);
  c->out_len += h + 4 + len;
  return p + h + 4;
}

static void send_frame(conn *c, int opcode, const void *data, size_t len) {
  uint32_t key;
  uint8_t *dst = frame_begin(c, opcode, len, &key);
  mask_copy(dst, data, len, key);
}

static void send_close(wsload *w, conn *c) {
  const uint8_t code[2] = {1000 >> 8, 1000 & 0xff};
  send_frame(c, 0x8, code, 2);
  c->state = ST_CLOSING;
  w->open--;
  w->closing++;
}

static void base64(const uint8_t *in, size_t n, char *out) {
  static const char tab[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *out++ = tab[v >> 18];
    *out++ = tab[(v >> 12) & 63];
    *out++ = tab[(v >> 6) & 63];
    *out++ = tab[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *out++ = tab[v >> 18];
    *out++ = tab[(v >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *out++ = tab[v >> 18];
    *out++ = tab[(v >> 12) & 63];
    *out++ = tab[(v >> 6) & 63];
    *out++ = '=';
  }
  *out = '\0';
}

/* The request path of connection c: the template with {i} replaced. */
static void conn_path(const char *tmpl, long id, char *out, size_t outlen) {
  const char *at = strstr(tmpl, "{i}");
  if (!at)
    snprintf(out, outlen, "%s", tmpl);
  else if (id < 0)
    snprintf(out, outlen, "%.*spub%s", (int)(at - tmpl), tmpl, at + 3);
  else
    snprintf(out, outlen, "%.*s%ld%s", (int)(at - tmpl), tmpl, id, at + 3);
}

static void send_handshake(wsload *w, conn *c) {
  uint8_t raw[16];
  char key[32], path[1024];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rng32();
    memcpy(raw + i, &r, 4);
  }
  base64(raw, sizeof(raw), key);
  if (c == w->pub)
    conn_path(w->o.pub_path ? w->o.pub_path : w->o.path, -1, path,
              sizeof(path));
  else
    conn_path(w->o.path, c->id, path, sizeof(path));
  out_reserve(c, 2048);
  int n = snprintf((char *)c->out + c->out_len, c->out_cap - c->out_len,
                   "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n%s\r\n",
                   path, w->host_hdr, key,
                   w->o.deflate ? "Sec-WebSocket-Extensions: "
                                  "permessage-deflate\r\n"
                                : "");
  if (n < 0 || (size_t)n >= c->out_cap - c->out_len)
    die("request too long");
  c->out_len += (size_t)n;
}

static void conn_start(wsload *w, conn *c) {
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0)
    die("socket: %s (raise the open-files limit?)", strerror(errno));
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->state = ST_CONNECTING;
  c->t_start = now_ns();
  c->fan_seen = -1;
  c->send_seq = c->recv_seq = 0;
  w->opening++;
  w->started++;
  struct epoll_event ev = {.events = CONN_EVENTS | EPOLLOUT, .data.ptr = c};
  c->epoll_out = 1;
  if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
    die("epoll_ctl: %s", strerror(errno));
  struct sockaddr_in to = w->addr;
  if (w->o.nports > 0) /* the publisher (id -1) on the first */
    to.sin_port =
        htons((uint16_t)w->o.ports[c->id < 0 ? 0 : c->id % w->o.nports]);
  if (connect(c->fd, (struct sockaddr *)&to, sizeof(to)) != 0 &&
      errno != EINPROGRESS)
    conn_fail(w, c, "connect: %s", strerror(errno));
}

/* ---- what each mode does with an open connection and a message --------- */

/* Compresses msg into w->zbuf (deflater reset: no context takeover; the
 * tail removed) and queues it as one frame with RSV1. */
static void send_compressed(wsload *w, conn *c, int opcode, const uint8_t *msg,
                            size_t len) {
  size_t bound = deflateBound(&w->def, len) + 16;
  if (w->zcap < bound) {
    w->zcap = bound;
    w->zbuf = xrealloc(w->zbuf, bound);
  }
  deflateReset(&w->def);
  w->def.next_in = (Bytef *)(uintptr_t)msg;
  w->def.avail_in = (uInt)len;
  w->def.next_out = w->zbuf;
  w->def.avail_out = (uInt)w->zcap;
  if (deflate(&w->def, Z_SYNC_FLUSH) != Z_OK || w->def.avail_in)
    die("deflate failed");
  size_t n = (size_t)(w->def.next_out - w->zbuf) - 4;
  uint32_t key;
  size_t at = c->out_len;
  uint8_t *dst = frame_begin(c, opcode, n, &key);
  c->out[at] |= 0x40; /* RSV1: compressed */
  mask_copy(dst, w->zbuf, n, key);
}

/* Where echo message seq starts in the template. */
static const uint8_t *tmpl_at(const wsload *w, uint64_t seq) {
  if (w->tmpl_extra == 61)
    return w->tmpl + seq % 61;
  return w->tmpl + (seq * 7919) % w->tmpl_extra;
}

static void echo_send(wsload *w, conn *c, uint64_t t) {
  size_t size = w->o.size;
  uint64_t seq = c->send_seq++;
  const uint8_t *src = tmpl_at(w, seq);
  if (w->o.deflate) {
    /* not w->plain: an echo being handled may live there */
    uint8_t *m = w->tmpl + size + 64 + w->tmpl_extra;
    memcpy(m, src, size);
    if (size >= 16) {
      char hdr[17];
      snprintf(hdr, sizeof(hdr), "%016" PRIx64, seq);
      memcpy(m, hdr, 16);
    }
    send_compressed(w, c, w->o.binary ? 0x2 : 0x1, m, size);
    long slot = (c->ring_head + c->ring_count) % w->o.depth;
    c->ring[slot] = t;
    c->ring_count++;
    return;
  }
  uint32_t key;
  uint8_t *dst = frame_begin(c, w->o.binary ? 0x2 : 0x1, size, &key);
  if (size >= 16) {
    char hdr[17];
    snprintf(hdr, sizeof(hdr), "%016" PRIx64, seq);
    mask_copy(dst, (const uint8_t *)hdr, 16, key);
    mask_copy(dst + 16, src + 16, size - 16, key);
  } else {
    mask_copy(dst, src, size, key);
  }
  long slot = (c->ring_head + c->ring_count) % w->o.depth;
  c->ring[slot] = t;
  c->ring_count++;
}

static void echo_message(wsload *w, conn *c, int op, const uint8_t *p,
                         size_t len, uint64_t t) {
  size_t size = w->o.size;
  uint64_t seq = c->recv_seq;
  const uint8_t *want = tmpl_at(w, seq);
  if (op != (w->o.binary ? 0x2 : 0x1) || len != size || !c->ring_count) {
    conn_fail(w, c, "echo %" PRIu64 ": opcode %d, %zu bytes; want %d, %zu", seq,
              op, len, w->o.binary ? 2 : 1, size);
    return;
  }
  if (size >= 16) {
    char hdr[17];
    snprintf(hdr, sizeof(hdr), "%016" PRIx64, seq);
    if (memcmp(p, hdr, 16) != 0 || memcmp(p + 16, want + 16, size - 16) != 0) {
      conn_fail(w, c, "echo %" PRIu64 " differs from the message sent", seq);
      return;
    }
  } else if (memcmp(p, want, size) != 0) {
    conn_fail(w, c, "echo %" PRIu64 " differs from the message sent", seq);
    return;
  }
  uint64_t sent = c->ring[c->ring_head];
  c->ring_head = (c->ring_head + 1) % w->o.depth;
  c->ring_count--;
  c->recv_seq++;
  w->total_msgs++;
  if (w->measuring) {
    w->msgs++;
    w->bytes += len;
    hist_add(&w->lat, t - sent);
    if (w->o.slow_us > 0 && (double)(t - sent) >= w->o.slow_us * 1e3)
      fprintf(stderr, "slow %.3f %.1f %ld\n", (double)sent / 1e6,
              (double)(t - sent) / 1e3, (long)(c - w->c));
  }
  if (w->running && w->o.rate <= 0)
    echo_send(w, c, t); /* --rate: the schedule sends, not the echo */
}

/* Fanout: a message carries "wsfan:SEQ;" somewhere (a chat plugin may wrap
 * it); anything else (join notices, say) is ignored. */
static void fanout_message(wsload *w, conn *c, const uint8_t *p, size_t len,
                           uint64_t t) {
  w->last_rx = t;
  if (c == w->pub || w->fan_seq < 0)
    return;
  const uint8_t *at = memmem(p, len, "wsfan:", 6);
  if (!at)
    return;
  long seq = 0;
  size_t i = (size_t)(at - p) + 6;
  while (i < len && p[i] >= '0' && p[i] <= '9')
    seq = seq * 10 + (p[i++] - '0');
  if (w->fan_sent) { /* --rate: every delivery of any publish sent */
    if (i >= len || p[i] != ';' || seq > w->fan_seq)
      return;
    if (seq <= c->fan_seen) {
      w->fan_dup++; /* publishes of one sender arrive in order, once */
      return;
    }
    c->fan_seen = seq;
    w->fan_delivered++;
    hist_add(&w->fan_all, t - w->fan_sent[seq]);
    if (w->fan_got++ == 0)
      w->fan_first = t;
    w->fan_last = t;
    return;
  }
  if (i >= len || p[i] != ';' || seq != w->fan_seq || c->fan_seen == seq)
    return;
  c->fan_seen = seq;
  if (w->fan_got++ == 0)
    w->fan_first = t;
  w->fan_last = t;
}

static void on_message(wsload *w, conn *c, int op, const uint8_t *p, size_t len,
                       uint64_t t) {
  if (c->state != ST_OPEN)
    return; /* late echoes after our close */
  switch (w->o.mode) {
  case MODE_ECHO:
    echo_message(w, c, op, p, len, t);
    break;
  case MODE_FANOUT:
    fanout_message(w, c, p, len, t);
    break;
  default:
    break; /* connect, idle: nothing is expected; ignore what comes */
  }
}

static void on_open(wsload *w, conn *c, uint64_t t) {
  w->opening--;
  w->open++;
  c->state = ST_OPEN;
  switch (w->o.mode) {
  case MODE_CONNECT:
    hist_add(&w->lat, t - c->t_start);
    send_close(w, c);
    break;
  default:
    break;
  }
}

/* ---- reading ------------------------------------------------------------ */

static int check_handshake(wsload *w, conn *c, uint64_t t) {
  uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in_len > 16384)
      conn_fail(w, c, "response head too long");
    return 0;
  }
  size_t head = (size_t)(end - c->in) + 4;
  char save = (char)c->in[head - 1];
  c->in[head - 1] = '\0';
  const char *resp = (const char *)c->in;
  int ok101 = strncmp(resp, "HTTP/1.1 101 ", 13) == 0 ||
              strncmp(resp, "HTTP/1.1 101\r", 13) == 0;
  int accept = strcasestr(resp, "\r\nSec-WebSocket-Accept:") != NULL;
  if (!ok101 || !accept) {
    const char *eol = strstr(resp, "\r\n");
    conn_fail(w, c, "handshake refused: %.*s%s", (int)(eol - resp), resp,
              ok101 ? " (no Sec-WebSocket-Accept)" : "");
    return -1;
  }
  if (w->o.deflate) {
    const char *ext = strcasestr(resp, "\r\nSec-WebSocket-Extensions:");
    const char *eol = ext ? strstr(ext + 2, "\r\n") : NULL;
    if (!ext || !strstr(ext, "permessage-deflate")) {
      conn_fail(w, c, "permessage-deflate was not accepted");
      return -1;
    }
    char *snct = strstr(ext, "server_no_context_takeover");
    c->z_takeover = !snct || (eol && snct > eol);
  }
  c->in[head - 1] = (uint8_t)save;
  memmove(c->in, c->in + head, c->in_len - head);
  c->in_len -= head;
  on_open(w, c, t);
  return 1;
}

/* Parses one server frame at p. Returns the header length, 0 when the frame
 * is not all there (*need: the whole frame's size when known), -1 when it
 * breaks the protocol. */
static int frame_parse(const uint8_t *p, size_t n, int *fin, int *op,
                       uint64_t *len, size_t *need) {
  *need = 0;
  if (n < 2)
    return 0;
  if ((p[0] & 0x30) || (p[1] & 0x80))
    return -1; /* reserved bits, or a masked server frame */
  size_t h = 2;
  uint64_t l = p[1] & 0x7f;
  if (l == 126) {
    if (n < 4)
      return 0;
    l = (uint64_t)p[2] << 8 | p[3];
    h = 4;
  } else if (l == 127) {
    if (n < 10)
      return 0;
    l = 0;
    for (int i = 0; i < 8; i++)
      l = l << 8 | p[2 + i];
    h = 10;
    if (l >> 40)
      return -1;
  }
  *fin = p[0] >> 7;
  *op = p[0] & 0x4f; /* the opcode, and RSV1 (0x40) */
  *len = l;
  if (n < h + l) {
    *need = h + (size_t)l;
    return 0;
  }
  return (int)h;
}

/* Inflates a compressed message (RFC 7692: the 00 00 FF FF tail put back)
 * into w->plain. Returns its length, or -1. */
static long inflate_message(wsload *w, conn *c, const uint8_t *p, size_t len) {
  z_stream *z = &w->inf;
  if (c->z_takeover) {
    if (!c->inf) {
      c->inf = calloc(1, sizeof(*c->inf));
      if (!c->inf || inflateInit2(c->inf, -15) != Z_OK)
        die("out of memory (inflater)");
    }
    z = c->inf;
  } else {
    inflateReset(z);
  }
  static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
  size_t out = 0;
  for (int part = 0; part < 2; part++) {
    z->next_in = (Bytef *)(uintptr_t)(part ? tail : p);
    z->avail_in = (uInt)(part ? 4 : len);
    while (z->avail_in > 0) {
      if (w->plaincap - out < 65536) {
        w->plaincap = w->plaincap * 2 + 65536;
        w->plain = xrealloc(w->plain, w->plaincap);
      }
      z->next_out = w->plain + out;
      z->avail_out = (uInt)(w->plaincap - out);
      int rc = inflate(z, Z_SYNC_FLUSH);
      out = (size_t)(z->next_out - w->plain);
      if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
        return -1;
      if (rc == Z_STREAM_END)
        inflateReset(z);
    }
  }
  return (long)out;
}

static void deliver(wsload *w, conn *c, int op, int z, const uint8_t *p,
                    size_t len, uint64_t t) {
  if (!z) {
    if (w->o.deflate && w->measuring)
      w->plain_msgs++;
    on_message(w, c, op, p, len, t);
    return;
  }
  long n = inflate_message(w, c, p, len);
  if (n < 0) {
    conn_fail(w, c, "a compressed message does not inflate");
    return;
  }
  if (w->measuring) {
    w->z_msgs++;
    w->z_wire += len;
    w->z_plain += (uint64_t)n;
  }
  on_message(w, c, op, w->plain, (size_t)n, t);
}

static void on_frame(wsload *w, conn *c, int fin, int op, const uint8_t *p,
                     size_t len, uint64_t t) {
  int z = op & 0x40;
  op &= 0x0f;
  if (z && (!w->o.deflate || op == 0 || op >= 8)) {
    conn_fail(w, c, "RSV1 on %s",
              w->o.deflate ? "a continuation or control "
                             "frame"
                           : "a frame");
    return;
  }
  switch (op) {
  case 0x9: /* ping */
    send_frame(c, 0xA, p, len);
    return;
  case 0xA:
    return;
  case 0x8: /* close */
    if (c->state == ST_CLOSING && c->ssl) {
      /* the answer to ours: over TLS the client ends it (close_notify),
       * as libwebsockets waits for that before closing */
      SSL_shutdown(c->ssl);
      ERR_clear_error();
      conn_close(w, c);
      return;
    }
    if (c->state == ST_CLOSING)
      return; /* the answer to ours: the server closes the TCP connection */
    if (w->o.mode == MODE_ECHO || (w->o.mode == MODE_IDLE && !g_stop)) {
      unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : 1005;
      conn_fail(w, c, "closed by the server (code %u)", code);
      return;
    }
    send_frame(c, 0x8, p, len >= 2 ? 2 : 0);
    c->state = ST_CLOSING;
    w->open--;
    w->closing++;
    return;
  case 0x0:
    if (!c->msg_op) {
      conn_fail(w, c, "continuation frame with no message");
      return;
    }
    break;
  case 0x1:
  case 0x2:
    if (c->msg_op) {
      conn_fail(w, c, "new message inside a fragmented one");
      return;
    }
    if (fin) {
      deliver(w, c, op, z, p, len, t);
      return;
    }
    c->msg_op = op;
    c->msg_z = z;
    c->msg_len = 0;
    break;
  default:
    conn_fail(w, c, "unknown opcode %d", op);
    return;
  }
  if (c->msg_len + len > c->msg_cap) {
    c->msg_cap = (c->msg_len + len) * 2;
    c->msg = xrealloc(c->msg, c->msg_cap);
  }
  memcpy(c->msg + c->msg_len, p, len);
  c->msg_len += len;
  if (fin) {
    int mop = c->msg_op;
    c->msg_op = 0;
    deliver(w, c, mop, c->msg_z, c->msg, c->msg_len, t);
  }
}

static void parse_frames(wsload *w, conn *c, uint64_t t) {
  size_t pos = 0;
  while (c->fd >= 0 && pos < c->in_len) {
    int fin, op;
    uint64_t len;
    size_t need;
    int h = frame_parse(c->in + pos, c->in_len - pos, &fin, &op, &len, &need);
    if (h < 0) {
      conn_fail(w, c, "malformed frame from the server");
      return;
    }
    if (h == 0) {
      if (need > c->in_cap) {
        memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
        pos = 0;
        c->in_cap = need + 4096;
        c->in = xrealloc(c->in, c->in_cap);
      }
      break;
    }
    on_frame(w, c, fin, op, c->in + pos + h, (size_t)len, t);
    pos += (size_t)h + (size_t)len;
  }
  if (c->fd < 0)
    return;
  if (pos) {
    memmove(c->in, c->in + pos, c->in_len - pos);
    c->in_len -= pos;
  }
}

static void on_eof(wsload *w, conn *c) {
  if (c->state == ST_CLOSING) {
    conn_close(w, c);
    return;
  }
  if (w->o.mode == MODE_ECHO && !w->running && c->state == ST_OPEN) {
    conn_close(w, c);
    return;
  }
  conn_fail(w, c, "the server closed the connection%s",
            c->state == ST_OPEN ? "" : " during the handshake");
}

/* --tls: the handshake as far as the socket allows; then the upgrade. */
static void tls_step(wsload *w, conn *c) {
  int r = SSL_connect(c->ssl);
  if (r == 1) {
    c->tls_hs = 0;
    if (SSL_session_reused(c->ssl))
      w->resumed++;
    send_handshake(w, c);
    conn_flush(w, c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    set_events(w, c, e == SSL_ERROR_WANT_WRITE);
    return;
  }
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  conn_fail(w, c, "TLS handshake: %s",
            err ? ERR_reason_error_string(err) : "the server closed");
}

static void tls_start(wsload *w, conn *c) {
  if (!(c->ssl = SSL_new(w->ctx)) || SSL_set_fd(c->ssl, c->fd) != 1)
    die("SSL_new: out of memory");
  SSL_set_tlsext_host_name(c->ssl, w->o.host);
  if (w->sess)
    SSL_set_session(c->ssl, w->sess);
  c->tls_hs = 1;
  tls_step(w, c);
}

/* --resume: keeps the newest ticket the server sent. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  (void)ssl;
  if (!g_w->o.resume)
    return 0;
  if (g_w->sess) /* the newest: OpenSSL resumes a TLS 1.3 ticket once */
    SSL_SESSION_free(g_w->sess);
  g_w->sess = sess;
  return 1; /* we keep the reference */
}

/* Reads what there is (through TLS: every decrypted byte, so that none
 * waits inside OpenSSL where epoll cannot see it). */
static ssize_t conn_recv(conn *c) {
  if (!c->ssl)
    return recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len - 1, 0);
  size_t got = 0;
  for (;;) {
    if (c->in_cap - c->in_len - got < 4096) {
      c->in_cap *= 2;
      c->in = xrealloc(c->in, c->in_cap);
    }
    int r = SSL_read(c->ssl, c->in + c->in_len + got,
                     (int)(c->in_cap - c->in_len - got - 1));
    if (r > 0) {
      got += (size_t)r;
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (got)
      return (ssize_t)got;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      errno = EAGAIN;
      return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
      return 0;
    errno = EPROTO;
    return -1;
  }
}

/* Reads until the socket is empty: it is edge-triggered (see poll_once).
 * A read that did not fill the buffer emptied it (TLS reads until OpenSSL
 * wants more from the socket); what arrives later is an edge of its own,
 * but not the EOF of a peer that shut its side before this edge (hup): its
 * socket is read on to the EOF. */
static void on_readable(wsload *w, conn *c, uint64_t t, int hup) {
  if (c->tls_hs) {
    tls_step(w, c);
    return;
  }
  uint64_t born = c->t_start; /* connect reuses c for its next connection */
  for (;;) {
    if (c->in_cap - c->in_len < 4096) {
      c->in_cap = c->in_cap ? c->in_cap * 2 : 4096;
      c->in = xrealloc(c->in, c->in_cap);
    }
    size_t room = c->in_cap - c->in_len - 1;
    ssize_t n = conn_recv(c);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        conn_fail(w, c, "recv: %s", strerror(errno));
      return;
    }
    if (n == 0) {
      on_eof(w, c);
      return;
    }
    c->in_len += (size_t)n;
    int open = c->state != ST_HANDSHAKE || check_handshake(w, c, t) > 0;
    if (open && (c->state == ST_OPEN || c->state == ST_CLOSING))
      parse_frames(w, c, t);
    if (c->fd < 0 || c->t_start != born ||
        (!hup && (c->ssl || (size_t)n < room)))
      return;
  }
}

static void on_writable(wsload *w, conn *c) {
  if (c->state == ST_CONNECTING) {
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
      conn_fail(w, c, "connect: %s", strerror(err));
      return;
    }
    c->state = ST_HANDSHAKE;
    if (w->ctx) {
      tls_start(w, c);
      return;
    }
    send_handshake(w, c);
  }
  if (c->tls_hs) {
    tls_step(w, c);
    return;
  }
  conn_flush(w, c);
}

/* One turn of the loop: waits at most until `until`, handles what is ready,
 * flushes what the handlers queued.
 *
 * The sockets are edge-triggered so that a turn serves connections in the
 * order their input arrived, as independent clients would be. Level-
 * triggered, epoll puts every socket it returns back at the end of its
 * ready list, ahead of the sockets that become ready while the turn runs:
 * a connection served in a turn whose next echo was back by the next wait
 * went ahead of those whose echoes had come earlier. At depth 1 the echoes
 * that lost their place took two turns, a second mode at twice the median
 * that set the p99 (bench/PERFORMANCE.md, "Target 3: the order connections
 * are served"). */
static void poll_once(wsload *w, uint64_t until) {
  struct epoll_event ev[512];
  uint64_t t = now_ns();
  uint64_t wait = until > t ? until - t : 0;
  if (wait > 100000000)
    wait = 100000000; /* 100 ms at most */
  /* to the nanosecond (echo --rate's schedule): not epoll_wait's ms */
  struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000),
                        .tv_nsec = (long)(wait % 1000000000)};
  int n = epoll_pwait2(w->ep, ev, 512, &ts, NULL);
  w->waits += w->measuring;
  if (n < 0) {
    if (errno == EINTR)
      return;
    die("epoll_wait: %s", strerror(errno));
  }
  for (int i = 0; i < n; i++) {
    conn *c = ev[i].data.ptr;
    if (c->fd < 0)
      continue;
    if (ev[i].events & EPOLLOUT)
      on_writable(w, c);
    if (c->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
        c->state != ST_CONNECTING)
      on_readable(w, c, now_ns(), !!(ev[i].events & EPOLLRDHUP));
    if (c->fd >= 0 && c->out_len > c->out_off)
      conn_flush(w, c);
  }
}

/* ---- the modes ----------------------------------------------------------- */

static void alloc_conns(wsload *w, long n) {
  w->nc = n;
  w->c = calloc((size_t)n, sizeof(conn));
  if (!w->c)
    die("out of memory");
  for (long i = 0; i < n; i++) {
    w->c[i].fd = -1;
    w->c[i].id = i;
  }
}

/* Opens conns[0..n) with at most `conc` handshakes in flight. */
static int open_all(wsload *w, conn **conns, long n, long conc) {
  uint64_t deadline = now_ns() + (uint64_t)(w->o.timeout * 1e9);
  long next = 0;
  long base_open = w->open, base_err = w->errors;
  while (w->open - base_open < n && !g_stop) {
    while (next < n && w->opening < conc)
      conn_start(w, conns[next++]);
    if (w->errors > base_err && next >= n && w->opening == 0)
      break;
    if (now_ns() > deadline) {
      fprintf(stderr, "wsload: %ld of %ld connections open after %.0f s\n",
              w->open - base_open, n, w->o.timeout);
      return -1;
    }
    poll_once(w, deadline);
  }
  return w->errors > base_err || g_stop ? -1 : 0;
}

/* Sends a close to every open connection and waits up to `secs` for the
 * server to close each; whatever is left gets a RST. */
static void close_all(wsload *w, double secs) {
  for (long i = 0; i < w->nc; i++) {
    conn *c = &w->c[i];
    if (c->fd >= 0 && c->state == ST_OPEN) {
      send_close(w, c);
      conn_flush(w, c);
    } else if (c->fd >= 0 && c->state != ST_CLOSING) {
      conn_reset(w, c);
    }
  }
  uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
  while (w->open + w->opening + w->closing > 0 && now_ns() < deadline)
    poll_once(w, deadline);
  for (long i = 0; i < w->nc; i++)
    conn_reset(w, &w->c[i]);
}

/* client_cpu_*: over the measured window; client_total_cpu_s: the whole
 * process, set-up and teardown included. */
static void print_common(wsload *w, double cpu, double wall) {
  if (w->o.deflate)
    printf(" deflate=1 z_in_ratio=%.3f z_in_share=%.3f",
           w->z_plain ? (double)w->z_wire / (double)w->z_plain : 0.0,
           w->z_msgs + w->plain_msgs
               ? (double)w->z_msgs / (double)(w->z_msgs + w->plain_msgs)
               : 0.0);
  printf(" client_cpu_s=%.3f client_cpu_pct=%.1f client_total_cpu_s=%.3f"
         " errors=%ld\n",
         cpu, wall > 0 ? 100.0 * cpu / wall : 0.0, cpu_seconds(), w->errors);
}

/* The echo's pattern: letters, random bytes (--binary, or --random), or
 * JSON-like chat lines (--json). */
static void make_template(uint8_t *t, size_t n, const opts *o) {
  static const char *users[] = {"alice", "bob", "carol", "dave", "erin"};
  static const char *words[] = {"hello", "world",   "see", "you",    "at",
                                "the",   "meeting", "ok",  "thanks", "lunch"};
  size_t i = 0;
  if (!o->json) {
    for (; i < n; i++)
      t[i] = o->binary || o->random ? (uint8_t)rng32()
                                    : (uint8_t)('a' + (i * 7) % 26);
    return;
  }
  while (i < n) {
    char line[256];
    int k = snprintf(line, sizeof(line),
                     "{\"type\":\"msg\",\"room\":\"lobby\",\"user\":\"%s\","
                     "\"seq\":%u,\"text\":\"%s %s %s\"}\n",
                     users[rng32() % 5], rng32() % 100000, words[rng32() % 10],
                     words[rng32() % 10], words[rng32() % 10]);
    for (int j = 0; j < k && i < n; j++)
      t[i++] = (uint8_t)line[j];
  }
}

/* Opens the echo's connections and makes its message pattern. */
static int echo_open(wsload *w) {
  opts *o = &w->o;
  alloc_conns(w, o->conns);
  conn **list = xrealloc(NULL, (size_t)o->conns * sizeof(conn *));
  for (long i = 0; i < o->conns; i++) {
    list[i] = &w->c[i];
    list[i]->ring = xrealloc(NULL, (size_t)o->depth * sizeof(uint64_t));
    list[i]->in_cap = o->size + 16384;
    list[i]->in = xrealloc(NULL, list[i]->in_cap);
  }
  /* --json and --random: 1 MiB more, so that a message is not what the
   * last ones were, shifted (a server keeping its deflate context would
   * find it in its window) */
  w->tmpl_extra = o->json || o->random ? TMPL_EXTRA : 61;
  size_t n = o->size + 64 + w->tmpl_extra;
  w->tmpl = xrealloc(NULL, n + o->size + 64); /* the pattern, a scratch */
  make_template(w->tmpl, n, o);
  int rc = open_all(w, list, o->conns, 512);
  free(list);
  return rc;
}

/* Drives the echo from now until t_end, measuring from t_measure on (never
 * when t_measure is 0): adds the measured seconds and client CPU to w->m_secs
 * and w->m_cpu. Each connection starts with -p messages (closed loop) and
 * sends one more per echo; --rate sends on the schedule instead. Returns
 * with the last messages still in flight (echo_drain waits for them). */
static void echo_drive(wsload *w, uint64_t t_measure, uint64_t t_end) {
  opts *o = &w->o;
  uint64_t t = now_ns();
  w->running = 1;
  for (long i = 0; i < w->nc && o->rate <= 0; i++) {
    if (w->c[i].fd < 0 || w->c[i].state != ST_OPEN)
      continue;
    for (long k = w->c[i].ring_count; k < o->depth; k++)
      echo_send(w, &w->c[i], t);
    conn_flush(w, &w->c[i]);
  }
  double cpu0 = 0;
  long sl0 = 0;
  uint64_t t0 = t;
  if (t_measure && t >= t_measure) {
    w->measuring = 1;
    cpu0 = cpu_seconds();
    sl0 = sleeps();
  }
  /* --rate: message k is due at t + k × step, on connection k mod C; the
   * waits end on time (1 µs of timer slack, not the default 50) */
  if (o->rate > 0)
    prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
  uint64_t step = 0, due = t;
  if (o->rate > 0)
    step = o->rate < 1e9 ? (uint64_t)(1e9 / o->rate) : 1;
  long next_conn = 0;
  while (!g_stop && w->open > 0) {
    t = now_ns();
    if (!w->measuring && t_measure && t >= t_measure) {
      w->measuring = 1;
      t0 = t;
      cpu0 = cpu_seconds();
      sl0 = sleeps();
    }
    if (t >= t_end)
      break;
    for (; step && due <= t; due += step) {
      conn *c = &w->c[next_conn];
      next_conn = (next_conn + 1) % w->nc;
      if (c->fd < 0 || c->state != ST_OPEN)
        continue;
      if (c->ring_count >= o->depth) {
        if (w->measuring)
          w->skipped++;
        continue;
      }
      echo_send(w, c, due);
      conn_flush(w, c);
    }
    uint64_t until = w->measuring || !t_measure ? t_end : t_measure;
    poll_once(w, step && due < until ? due : until);
  }
  if (w->measuring) {
    w->m_cpu += cpu_seconds() - cpu0;
    w->m_sleeps += sleeps() - sl0;
    w->m_secs += (double)(now_ns() - t0) / 1e9;
  }
  w->measuring = 0;
  w->running = 0;
}

/* Waits (up to `secs`) until no echo is in flight: the next echo_drive
 * then starts from -p messages per connection again. */
static void echo_drain(wsload *w, double secs) {
  uint64_t deadline = now_ns() + (uint64_t)(secs * 1e9);
  for (;;) {
    long inflight = 0;
    for (long i = 0; i < w->nc; i++)
      if (w->c[i].fd >= 0 && w->c[i].state == ST_OPEN)
        inflight += w->c[i].ring_count;
    if (!inflight || g_stop || w->open == 0 || now_ns() >= deadline)
      return;
    poll_once(w, deadline);
  }
}

/* Closes the connections and prints the run's line (`extra` after the
 * mode); 1 if any connection or echo failed or nothing was measured. */
static int echo_report(wsload *w, const char *extra) {
  opts *o = &w->o;
  double secs = w->m_secs;
  long lost = o->conns - w->open;
  close_all(w, 3.0);
  printf("mode=echo%s conns=%ld depth=%ld size=%zu %s msgs=%" PRIu64
         " secs=%.3f msgs_per_s=%.0f mb_per_s=%.2f p50_us=%.1f p99_us=%.1f"
         " p999_us=%.1f max_us=%.1f total_msgs=%" PRIu64,
         extra, o->conns, o->depth, o->size, o->binary ? "binary" : "text",
         w->msgs, secs, secs > 0 ? w->msgs / secs : 0.0,
         secs > 0 ? (double)w->bytes / secs / 1e6 : 0.0,
         hist_pct_us(&w->lat, 0.50), hist_pct_us(&w->lat, 0.99),
         hist_pct_us(&w->lat, 0.999), (double)w->lat.max / 1e3, w->total_msgs);
  if (o->rate > 0)
    printf(" rate=%.0f skipped=%ld", o->rate, w->skipped);
  printf(" client_waits=%ld client_sleeps=%ld", w->waits, w->m_sleeps);
  print_common(w, w->m_cpu, secs);
  return w->errors || lost || w->msgs == 0 ? 1 : 0;
}

static int run_echo(wsload *w) {
  opts *o = &w->o;
  if (echo_open(w) != 0)
    return 1;
  uint64_t t_measure = now_ns() + (uint64_t)(o->warmup * 1e9);
  echo_drive(w, t_measure, t_measure + (uint64_t)(o->secs * 1e9));
  return echo_report(w, "");
}

/* echo --ports P1,P2,...: one set of -c connections per server, and the
 * servers take turns. A warm-up of --warmup seconds on each, then slices
 * of --slice seconds (each after a 50 ms lead-in that is not measured),
 * the servers' order rotated by one every pass, until each has -d seconds
 * measured; between two turns the last echoes are waited for, so that one
 * server is driven at a time. Servers measured one after the other meet
 * whatever the machine does then, which on a shared VM can change within
 * seconds; taken in turn in short slices, they meet the same. One line per
 * server, each with port=P. */
static int run_echo_turns(wsload *ws, int n) {
  opts *o = &ws[0].o;
  for (int k = 0; k < n; k++)
    if (echo_open(&ws[k]) != 0)
      return 1;
  for (int k = 0; k < n && o->warmup > 0; k++) {
    echo_drive(&ws[k], 0, now_ns() + (uint64_t)(o->warmup * 1e9));
    echo_drain(&ws[k], 3.0);
  }
  const uint64_t lead = 50000000; /* 50 ms */
  long slices = (long)(o->secs / o->slice + 0.5);
  if (slices < 1)
    slices = 1;
  uint64_t len = (uint64_t)(o->secs / (double)slices * 1e9);
  for (long s = 0; s < slices && !g_stop; s++)
    for (int j = 0; j < n; j++) {
      wsload *w = &ws[(j + s) % n];
      uint64_t t = now_ns();
      echo_drive(w, t + lead, t + lead + len);
      echo_drain(w, 3.0);
    }
  int rc = 0;
  for (int k = 0; k < n; k++) {
    char extra[64];
    snprintf(extra, sizeof(extra), " port=%d slices=%ld", ws[k].o.port, slices);
    rc |= echo_report(&ws[k], extra);
  }
  return rc;
}

static int run_connect(wsload *w) {
  opts *o = &w->o;
  long conc = o->conns < o->n ? o->conns : o->n;
  alloc_conns(w, conc);
  uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(o->timeout * 1e9);
  double cpu0 = cpu_seconds();
  long done = 0;
  for (long i = 0; i < conc; i++)
    conn_start(w, &w->c[i]);
  while (!g_stop && now_ns() < deadline) {
    poll_once(w, deadline);
    done = w->closed - w->errors;
    if (w->closed >= o->n)
      break;
    for (long i = 0; i < conc && w->started < o->n; i++)
      if (w->c[i].fd < 0)
        conn_start(w, &w->c[i]);
  }
  uint64_t t = now_ns();
  double cpu = cpu_seconds() - cpu0, secs = (double)(t - t0) / 1e9;
  for (long i = 0; i < w->nc; i++)
    conn_reset(w, &w->c[i]);
  printf("mode=connect n=%ld concurrency=%ld done=%ld secs=%.3f"
         " handshakes_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f",
         o->n, conc, done, secs, done / secs, hist_pct_us(&w->lat, 0.50),
         hist_pct_us(&w->lat, 0.99), hist_pct_us(&w->lat, 0.999));
  if (o->tls)
    printf(" tls=1 resumed=%ld", w->resumed);
  print_common(w, cpu, secs);
  return done == o->n && !w->errors ? 0 : 1;
}

static int run_idle(wsload *w) {
  opts *o = &w->o;
  alloc_conns(w, o->n);
  conn **list = xrealloc(NULL, (size_t)o->n * sizeof(conn *));
  for (long i = 0; i < o->n; i++)
    list[i] = &w->c[i];
  uint64_t t0 = now_ns();
  double cpu0 = cpu_seconds();
  int rc = open_all(w, list, o->n, o->conns);
  free(list);
  double open_secs = (double)(now_ns() - t0) / 1e9;
  if (rc == 0) {
    printf("open %ld secs=%.3f\n", w->open, open_secs);
    fflush(stdout);
    uint64_t t_end = now_ns() + (uint64_t)(o->hold * 1e9);
    while (!g_stop && now_ns() < t_end && w->open == o->n)
      poll_once(w, t_end);
  }
  long held = w->open;
  g_stop = 1; /* from here on a close from the server is expected */
  double cpu = cpu_seconds() - cpu0;
  close_all(w, 10.0);
  printf("mode=idle conns=%ld open=%ld open_secs=%.3f conns_per_s=%.0f", o->n,
         held, open_secs, held / open_secs);
  print_common(w, cpu, (double)(now_ns() - t0) / 1e9);
  return rc == 0 && held == o->n && !w->errors ? 0 : 1;
}

/* Waits until nothing has arrived for o->settle seconds (join notices). */
static void settle(wsload *w) {
  uint64_t quiet = (uint64_t)(w->o.settle * 1e9);
  uint64_t limit = now_ns() + (uint64_t)(w->o.timeout * 1e9);
  w->last_rx = now_ns();
  while (!g_stop && now_ns() < limit && now_ns() - w->last_rx < quiet)
    poll_once(w, w->last_rx + quiet);
}

/* --rate: publishes at o->rate per second for o->n publishes without
 * waiting for deliveries, then waits for the rest (or the timeout). */
static int run_fanout_rate(wsload *w, char *text) {
  opts *o = &w->o;
  w->fan_sent = xrealloc(NULL, (size_t)o->n * sizeof(uint64_t));
  double cpu0 = cpu_seconds();
  uint64_t t_begin = now_ns(), step = (uint64_t)(1e9 / o->rate);
  long k = 0;
  while (k < o->n && !g_stop && w->open == o->subs + 1) {
    uint64_t due = t_begin + (uint64_t)k * step;
    if (now_ns() < due) {
      poll_once(w, due);
      continue;
    }
    int len = snprintf(text, o->size + 32, "wsfan:%ld;", k);
    size_t n = (size_t)len < o->size ? o->size : (size_t)len;
    memset(text + len, 'x', n - (size_t)len);
    w->fan_sent[k] = now_ns();
    w->fan_seq = k;
    send_frame(w->pub, o->binary ? 0x2 : 0x1, text, n);
    conn_flush(w, w->pub);
    k++;
  }
  uint64_t limit = now_ns() + (uint64_t)(o->timeout * 1e9);
  while (w->fan_delivered < k * o->subs && !g_stop && now_ns() < limit &&
         w->open == o->subs + 1)
    poll_once(w, limit);
  double cpu = cpu_seconds() - cpu0, secs = (double)(now_ns() - t_begin) / 1e9;
  double span = (double)(w->fan_last - t_begin) / 1e9;
  long want = k * o->subs;
  printf("mode=fanout_rate subs=%ld ports=%d publishes=%ld rate=%.0f size=%zu"
         " delivered=%ld lost=%ld dup=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f"
         " delivered_per_s=%.0f",
         o->subs, o->nports ? o->nports : 1, k, o->rate, o->size,
         w->fan_delivered, want - w->fan_delivered, w->fan_dup,
         hist_pct_us(&w->fan_all, 0.5), hist_pct_us(&w->fan_all, 0.99),
         (double)w->fan_all.max / 1e3,
         span > 0 ? (double)w->fan_delivered / span : 0.0);
  print_common(w, cpu, secs);
  free(w->fan_sent);
  w->fan_sent = NULL;
  close_all(w, 10.0);
  return k == o->n && w->fan_delivered == want && !w->fan_dup && !w->errors ? 0
                                                                            : 1;
}

static int run_fanout(wsload *w) {
  opts *o = &w->o;
  alloc_conns(w, o->subs + 1);
  w->pub = &w->c[o->subs];
  w->pub->id = -1;
  w->fan_seq = -1;
  conn **list = xrealloc(NULL, (size_t)(o->subs + 1) * sizeof(conn *));
  for (long i = 0; i <= o->subs; i++)
    list[i] = &w->c[i];
  int rc = open_all(w, list, o->subs, o->conns);
  if (rc == 0)
    rc = open_all(w, list + o->subs, 1, 1);
  free(list);
  if (rc != 0)
    return 1;
  settle(w);
  char *text = xrealloc(NULL, o->size + 32);
  if (o->rate > 0) {
    rc = run_fanout_rate(w, text);
    free(text);
    return rc;
  }
  double cpu0 = cpu_seconds(), win_cpu = 0, win_secs = 0;
  uint64_t t_begin = now_ns();
  long done = 0;
  for (long k = 0; k < o->n && !g_stop && w->errors == 0; k++) {
    int len = snprintf(text, o->size + 32, "wsfan:%ld;", k);
    size_t n = (size_t)len < o->size ? o->size : (size_t)len;
    memset(text + len, 'x', n - (size_t)len);
    w->fan_seq = k;
    w->fan_got = 0;
    double wcpu = cpu_seconds();
    w->fan_t0 = now_ns();
    if (o->deflate)
      send_compressed(w, w->pub, o->binary ? 0x2 : 0x1, (uint8_t *)text, n);
    else
      send_frame(w->pub, o->binary ? 0x2 : 0x1, text, n);
    conn_flush(w, w->pub);
    uint64_t limit = w->fan_t0 + (uint64_t)(o->timeout * 1e9);
    while (w->fan_got < o->subs && !g_stop && now_ns() < limit &&
           w->open == o->subs + 1)
      poll_once(w, limit);
    if (w->fan_got < o->subs) {
      fprintf(stderr, "wsload: publish %ld reached %ld of %ld subscribers\n", k,
              w->fan_got, o->subs);
      w->errors++;
      break;
    }
    win_cpu += cpu_seconds() - wcpu;
    win_secs += (double)(now_ns() - w->fan_t0) / 1e9;
    hist_add(&w->fan_all, w->fan_last - w->fan_t0);
    hist_add(&w->fan_1st, w->fan_first - w->fan_t0);
    done++;
    uint64_t gap = now_ns() + 10000000; /* let the publisher's copy pass */
    while (!g_stop && now_ns() < gap)
      poll_once(w, gap);
  }
  double cpu = cpu_seconds() - cpu0, secs = (double)(now_ns() - t_begin) / 1e9;
  free(text);
  close_all(w, 10.0);
  double all_p50 = hist_pct_us(&w->fan_all, 0.5);
  printf("mode=fanout subs=%ld publishes=%ld size=%zu all_p50_us=%.1f"
         " all_p99_us=%.1f all_max_us=%.1f first_p50_us=%.1f"
         " deliveries_per_s=%.0f window_cpu_pct=%.1f",
         o->subs, done, o->size, all_p50, hist_pct_us(&w->fan_all, 0.99),
         (double)w->fan_all.max / 1e3, hist_pct_us(&w->fan_1st, 0.5),
         all_p50 > 0 ? (double)o->subs * 1e6 / all_p50 : 0.0,
         win_secs > 0 ? 100.0 * win_cpu / win_secs : 0.0);
  print_common(w, cpu, secs);
  return done == o->n && !w->errors ? 0 : 1;
}

/* ---- setting up ---------------------------------------------------------- */

static void usage(FILE *f) {
  fputs(
      "usage: wsload MODE [options]\n"
      "  wsload echo    [-c CONNS] [-p DEPTH] [-s SIZE] [--binary] [-d SECS]"
      " [--warmup SECS]\n"
      "                 [--rate MSGS_PER_S (open loop; -p: most in flight per"
      " connection, default 64)]\n"
      "                 [--ports P1,P2,... [--slice SECS]: the servers in turn,"
      " one line each]\n"
      "                 [--slow US (each measured echo that took US or more"
      " on stderr:\n"
      "                 \"slow DUE_MS LATENCY_US CONN\", DUE_MS on the"
      " monotonic clock)]\n"
      "  wsload connect [-n N] [-c CONCURRENCY]\n"
      "  wsload idle    [-n N] [-c CONCURRENCY] [--hold SECS]\n"
      "  wsload fanout  [-m SUBSCRIBERS] [-n PUBLISHES] [-s SIZE]"
      " [--pub-path PATH] [--settle SECS]\n"
      "                 [--ports P1,P2,...] [--rate PUBLISHES_PER_S]\n"
      "common: --host 127.0.0.1 --port 8080 --path /echo --timeout SECS\n"
      "  --deflate (permessage-deflate), echo: --json | --random content\n"
      "  --tls (wss://, the certificate not verified); connect: --resume\n"
      "  (every handshake resumes the newest session ticket)\n"
      "  A {i} in --path becomes the connection's index (\"pub\" for the\n"
      "  fanout publisher, whose path is --pub-path or else --path).\n"
      "Prints one key=value line; exit 1 if any connection or echo failed.\n",
      f);
}

static long parse_long(const char *s, const char *what, long min) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min)
    die("%s: bad value \"%s\"", what, s);
  return v;
}

static double parse_secs(const char *s, const char *what) {
  char *end;
  double v = strtod(s, &end);
  if (*end || v < 0)
    die("%s: bad value \"%s\"", what, s);
  return v;
}

static size_t parse_size(const char *s) {
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end == 'k' || *end == 'K')
    v *= 1024, end++;
  else if (*end == 'm' || *end == 'M')
    v *= 1024 * 1024, end++;
  if (*end || v < 1 || v > (64ull << 20))
    die("-s: bad size \"%s\"", s);
  return (size_t)v;
}

static void parse_args(opts *o, int argc, char **argv) {
  static const struct option longopts[] = {
      {"host", required_argument, 0, 'H'},
      {"port", required_argument, 0, 'P'},
      {"path", required_argument, 0, 'u'},
      {"pub-path", required_argument, 0, 'U'},
      {"binary", no_argument, 0, 'b'},
      {"warmup", required_argument, 0, 'w'},
      {"hold", required_argument, 0, 'h'},
      {"settle", required_argument, 0, 'S'},
      {"timeout", required_argument, 0, 't'},
      {"help", no_argument, 0, 'Z'},
      {"deflate", no_argument, 0, 'D'},
      {"json", no_argument, 0, 'J'},
      {"random", no_argument, 0, 'R'},
      {"ports", required_argument, 0, 'O'},
      {"rate", required_argument, 0, 'Q'},
      {"tls", no_argument, 0, 'T'},
      {"resume", no_argument, 0, 'E'},
      {"slow", required_argument, 0, 'L'},
      {"slice", required_argument, 0, 'I'},
      {0, 0, 0, 0}};
  if (argc < 2 || argv[1][0] == '-') {
    usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
    exit(argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2);
  }
  const char *m = argv[1];
  if (strcmp(m, "echo") == 0)
    o->mode = MODE_ECHO;
  else if (strcmp(m, "connect") == 0)
    o->mode = MODE_CONNECT;
  else if (strcmp(m, "idle") == 0)
    o->mode = MODE_IDLE;
  else if (strcmp(m, "fanout") == 0)
    o->mode = MODE_FANOUT;
  else
    die("unknown mode \"%s\" (echo, connect, idle, fanout)", m);
  *o = (opts){.mode = o->mode,
              .host = "127.0.0.1",
              .port = 8080,
              .path = "/echo",
              .conns = o->mode == MODE_ECHO ? 100 : 64,
              .depth = 1,
              .size = 64,
              .secs = 5,
              .hold = 3600,
              .settle = 0.5,
              .timeout = 60,
              .n = o->mode == MODE_FANOUT ? 20 : 10000,
              .subs = 1000,
              .slice = 0.5};
  optind = 2;
  int ch, depth_given = 0;
  while ((ch = getopt_long(argc, argv, "c:p:s:d:n:m:", longopts, NULL)) != -1) {
    switch (ch) {
    case 'H':
      o->host = optarg;
      break;
    case 'P':
      o->port = (int)parse_long(optarg, "--port", 1);
      break;
    case 'u':
      o->path = optarg;
      break;
    case 'U':
      o->pub_path = optarg;
      break;
    case 'b':
      o->binary = 1;
      break;
    case 'D':
      o->deflate = 1;
      break;
    case 'J':
      o->json = 1;
      break;
    case 'R':
      o->random = 1;
      break;
    case 'w':
      o->warmup = parse_secs(optarg, "--warmup");
      break;
    case 'h':
      o->hold = parse_secs(optarg, "--hold");
      break;
    case 'S':
      o->settle = parse_secs(optarg, "--settle");
      break;
    case 't':
      o->timeout = parse_secs(optarg, "--timeout");
      break;
    case 'c':
      o->conns = parse_long(optarg, "-c", 1);
      break;
    case 'p':
      o->depth = parse_long(optarg, "-p", 1);
      depth_given = 1;
      break;
    case 's':
      o->size = parse_size(optarg);
      break;
    case 'd':
      o->secs = parse_secs(optarg, "-d");
      break;
    case 'n':
      o->n = parse_long(optarg, "-n", 1);
      break;
    case 'm':
      o->subs = parse_long(optarg, "-m", 1);
      break;
    case 'O': {
      char *save = NULL, *list = optarg;
      for (char *t = strtok_r(list, ",", &save); t;
           t = strtok_r(NULL, ",", &save)) {
        if (o->nports == (int)(sizeof(o->ports) / sizeof(o->ports[0])))
          die("--ports: at most 16");
        o->ports[o->nports++] = (int)parse_long(t, "--ports", 1);
      }
      break;
    }
    case 'Q':
      o->rate = parse_secs(optarg, "--rate");
      break;
    case 'L':
      o->slow_us = parse_secs(optarg, "--slow");
      break;
    case 'I':
      o->slice = parse_secs(optarg, "--slice");
      if (o->slice < 0.01)
        die("--slice: at least 0.01 s");
      break;
    case 'T':
      o->tls = 1;
      break;
    case 'E':
      o->resume = 1;
      break;
    case 'Z':
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      exit(2);
    }
  }
  if (optind != argc)
    die("unexpected argument \"%s\"", argv[optind]);
  if (o->mode == MODE_ECHO && o->rate > 0 && !depth_given)
    o->depth = 64;
  if (o->port > 65535)
    die("--port: out of range");
  for (int k = 0; k < o->nports; k++)
    if (o->ports[k] > 65535)
      die("--ports: out of range");
  if (o->mode == MODE_ECHO && o->nports > 0 && (o->rate > 0 || o->tls))
    die("echo --ports: a closed loop without --tls only");
}

/* Raises the open-files limit to the hard limit: idle and fanout hold
 * thousands of sockets. */
static void raise_nofile(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)want + 16 > rl.rlim_cur)
    die("%ld connections need more open files than the limit (%llu)", want,
        (unsigned long long)rl.rlim_cur);
}

/* Everything a run needs before its mode starts: the address, zlib, TLS
 * and the epoll set. */
static void setup(wsload *w) {
  w->addr.sin_family = AF_INET;
  w->addr.sin_port = htons((uint16_t)w->o.port);
  if (inet_pton(AF_INET, w->o.host, &w->addr.sin_addr) != 1) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *res;
    if (getaddrinfo(w->o.host, NULL, &hints, &res) != 0)
      die("cannot resolve %s", w->o.host);
    w->addr.sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
  }
  snprintf(w->host_hdr, sizeof(w->host_hdr), "%s:%d", w->o.host, w->o.port);
  if (w->o.deflate && (deflateInit2(&w->def, 1, Z_DEFLATED, -15, 8,
                                    Z_DEFAULT_STRATEGY) != Z_OK ||
                       inflateInit2(&w->inf, -15) != Z_OK))
    die("zlib: out of memory");
  if (w->o.tls) {
    g_w = w;
    if (!(w->ctx = SSL_CTX_new(TLS_client_method())))
      die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(w->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(w->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(w->ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(
        w->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(w->ctx, on_new_session);
  } else if (w->o.resume) {
    die("--resume needs --tls");
  }
  w->ep = epoll_create1(EPOLL_CLOEXEC);
  if (w->ep < 0)
    die("epoll_create1: %s", strerror(errno));
}

int main(int argc, char **argv) {
  static wsload w; /* large (histograms): not on the stack */
  parse_args(&w.o, argc, argv);
  if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state) ||
      !rng_state)
    rng_state = now_ns() | 1;
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  long need = w.o.mode == MODE_ECHO ? w.o.conns * (w.o.nports ? w.o.nports : 1)
              : w.o.mode == MODE_FANOUT ? w.o.subs + 1
              : w.o.mode == MODE_IDLE   ? w.o.n
                                        : w.o.conns;
  raise_nofile(need);
  if (w.o.mode == MODE_ECHO && w.o.nports > 0) {
    int n = w.o.nports;
    static wsload *ws; /* held until exit, as w is */
    ws = calloc((size_t)n, sizeof(wsload));
    if (!ws)
      die("out of memory");
    for (int k = 0; k < n; k++) {
      ws[k].o = w.o;
      ws[k].o.port = w.o.ports[k];
      ws[k].o.nports = 0;
      setup(&ws[k]);
    }
    return run_echo_turns(ws, n);
  }
  setup(&w);
  switch (w.o.mode) {
  case MODE_ECHO:
    return run_echo(&w);
  case MODE_CONNECT:
    return run_connect(&w);
  case MODE_IDLE:
    return run_idle(&w);
  case MODE_FANOUT:
    return run_fanout(&w);
  }
  return 2;
}
