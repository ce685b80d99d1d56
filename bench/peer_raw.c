/*
 * peer_raw.c - the ceiling of websockd's benchmarks: a WebSocket echo server
 * that does as little as a server can. One thread, epoll, non-blocking. It
 * answers any upgrade with a fixed 101 (its Sec-WebSocket-Accept computed
 * with libcrypto, nothing else checked), then only unmasks each client frame
 * and writes it back as a server frame: no UTF-8 check, no reassembly, no
 * limits. Pings get pongs, a close gets its close back and the TCP close.
 *
 * Connections whose path starts with /chat form one room: a data frame from
 * one member goes to every other member, framed once (the fanout ceiling).
 *
 *   peer_raw PORT      listens on 127.0.0.1:PORT until SIGTERM or SIGINT
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

typedef struct peer {
  int fd;
  int open;                 /* past the handshake */
  int chat;                 /* a member of the /chat room */
  int epoll_out;
  int closing;              /* close once the output is written */
  uint8_t *in;
  size_t in_len, in_cap;
  uint8_t *out;
  size_t out_off, out_len, out_cap;
  struct peer *prev, *next; /* room members */
} peer;

typedef struct server {
  int ep, lfd;
  peer *room;
} server;

static volatile sig_atomic_t g_stop; /* the one global: set by the signal */

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) {
    fprintf(stderr, "peer_raw: out of memory\n");
    exit(1);
  }
  return q;
}

static void peer_free(server *s, peer *p) {
  if (p->chat) {
    if (p->prev)
      p->prev->next = p->next;
    else
      s->room = p->next;
    if (p->next)
      p->next->prev = p->prev;
  }
  close(p->fd);
  free(p->in);
  free(p->out);
  free(p);
}

static void out_add(peer *p, const void *data, size_t len) {
  if (p->out_off == p->out_len)
    p->out_off = p->out_len = 0;
  if (p->out_len + len > p->out_cap) {
    size_t cap = p->out_cap ? p->out_cap : 4096;
    while (cap < p->out_len + len)
      cap *= 2;
    p->out = xrealloc(p->out, cap);
    p->out_cap = cap;
  }
  memcpy(p->out + p->out_len, data, len);
  p->out_len += len;
}

/* Writes what it can. Returns -1 when the peer is gone: freed, or, unless
 * may_free (another peer's event is being handled, and this one's may come
 * later in the same batch), shut down so that its own event frees it. */
static int peer_flush(server *s, peer *p, int may_free) {
  while (p->out_off < p->out_len) {
    ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off,
                     MSG_NOSIGNAL);
    if (n > 0) {
      p->out_off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      goto gone;
    }
  }
  int want = p->out_off < p->out_len;
  if (!want && p->closing)
    goto gone;
  if (want != p->epoll_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0),
                             .data.ptr = p};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, p->fd, &ev);
    p->epoll_out = want;
  }
  return 0;
gone:
  if (may_free) {
    peer_free(s, p);
  } else {
    shutdown(p->fd, SHUT_RDWR);
    p->closing = 1;
    p->out_off = p->out_len = 0;
  }
  return -1;
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + the RFC 6455 GUID)). */
static int accept_key(const char *key, size_t klen, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  char buf[128];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (klen + sizeof(guid) > sizeof(buf))
    return -1;
  memcpy(buf, key, klen);
  memcpy(buf + klen, guid, sizeof(guid) - 1);
  if (!EVP_Digest(buf, klen + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL))
    return -1;
  EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
  return 0;
}

/* Returns 1 when the request head was answered, 0 for more, -1 to drop. */
static int handshake(server *s, peer *p) {
  uint8_t *end = memmem(p->in, p->in_len, "\r\n\r\n", 4);
  if (!end)
    return p->in_len > 16384 ? -1 : 0;
  size_t head = (size_t)(end - p->in) + 4;
  p->in[head - 2] = '\0';
  const char *req = (const char *)p->in;
  const char *k = strcasestr(req, "\r\nSec-WebSocket-Key:");
  if (!k)
    return -1;
  k += 20;
  while (*k == ' ' || *k == '\t')
    k++;
  size_t klen = strcspn(k, " \t\r");
  char acc[29];
  if (accept_key(k, klen, acc) != 0)
    return -1;
  char resp[160];
  int n = snprintf(resp, sizeof(resp),
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   acc);
  out_add(p, resp, (size_t)n);
  if (strncmp(req, "GET /chat", 9) == 0) {
    p->chat = 1;
    p->next = s->room;
    if (s->room)
      s->room->prev = p;
    s->room = p;
  }
  p->open = 1;
  memmove(p->in, p->in + head, p->in_len - head);
  p->in_len -= head;
  return 1;
}

static size_t server_header(uint8_t *h, int b0, size_t len) {
  h[0] = (uint8_t)b0;
  if (len < 126) {
    h[1] = (uint8_t)len;
    return 2;
  }
  if (len < 65536) {
    h[1] = 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    return 4;
  }
  h[1] = 127;
  for (int i = 0; i < 8; i++)
    h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  return 10;
}

static void unmask(uint8_t *p, size_t n, const uint8_t key[4]) {
  uint32_t k4;
  memcpy(&k4, key, 4);
  uint64_t k8 = (uint64_t)k4 | ((uint64_t)k4 << 32);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    memcpy(&v, p + i, 8);
    v ^= k8;
    memcpy(p + i, &v, 8);
  }
  for (; i < n; i++)
    p[i] ^= key[i & 3];
}

/* A data frame from a room member: the same server frame to every other. */
static void broadcast(server *s, peer *from, const uint8_t *frame, size_t len) {
  for (peer *m = s->room; m; m = m->next) {
    if (m == from || m->closing || !m->open)
      continue;
    out_add(m, frame, len);
    if (m->out_len - m->out_off == len)
      peer_flush(s, m, 0);
  }
}

/* Handles the complete frames in p->in. Returns -1 to drop the peer. */
static int frames(server *s, peer *p) {
  size_t pos = 0;
  while (!p->closing) {
    uint8_t *f = p->in + pos;
    size_t n = p->in_len - pos;
    if (n < 2)
      break;
    if (!(f[1] & 0x80))
      return -1; /* clients must mask */
    size_t h = 2;
    uint64_t len = f[1] & 0x7f;
    if (len == 126) {
      if (n < 4)
        break;
      len = (uint64_t)f[2] << 8 | f[3];
      h = 4;
    } else if (len == 127) {
      if (n < 10)
        break;
      len = 0;
      for (int i = 0; i < 8; i++)
        len = len << 8 | f[2 + i];
      h = 10;
      if (len > (1u << 30))
        return -1;
    }
    if (n < h + 4 + len) {
      if (h + 4 + len > p->in_cap) {
        memmove(p->in, f, n);
        p->in_len = n;
        pos = 0;
        p->in_cap = h + 4 + (size_t)len + 4096;
        p->in = xrealloc(p->in, p->in_cap);
      }
      break;
    }
    uint8_t *payload = f + h + 4;
    unmask(payload, (size_t)len, f + h);
    int op = f[0] & 0x0f;
    /* The server frame is built in place, just before the payload. */
    uint8_t hdr[10];
    size_t sh = server_header(hdr, op == 0x9 ? 0x8A : f[0], (size_t)len);
    uint8_t *out = payload - sh;
    memcpy(out, hdr, sh);
    if (op == 0xA) {
      /* pong: nothing to do */
    } else if (op == 0x8) {
      out_add(p, out, sh + (size_t)len);
      p->closing = 1;
    } else if (p->chat && op != 0x9) {
      broadcast(s, p, out, sh + (size_t)len);
    } else {
      out_add(p, out, sh + (size_t)len);
    }
    pos += h + 4 + (size_t)len;
  }
  if (pos) {
    memmove(p->in, p->in + pos, p->in_len - pos);
    p->in_len -= pos;
  }
  return 0;
}

static void on_readable(server *s, peer *p) {
  if (p->in_cap - p->in_len < 4096) {
    p->in_cap = p->in_cap ? p->in_cap * 2 : 4096;
    p->in = xrealloc(p->in, p->in_cap);
  }
  ssize_t n = recv(p->fd, p->in + p->in_len, p->in_cap - p->in_len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0) {
    peer_free(s, p);
    return;
  }
  p->in_len += (size_t)n;
  int rc = 0;
  if (!p->open)
    rc = handshake(s, p);
  if (rc >= 0 && p->open)
    rc = frames(s, p);
  if (rc < 0) {
    peer_free(s, p);
    return;
  }
  peer_flush(s, p, 1);
}

static void on_accept(server *s) {
  for (;;) {
    int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    peer *p = calloc(1, sizeof(*p));
    if (!p) {
      close(fd);
      continue;
    }
    p->fd = fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      free(p);
    }
  }
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(fd, 4096) != 0) {
    perror("peer_raw: listen");
    exit(1);
  }
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
    fprintf(stderr, "usage: peer_raw PORT\n");
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  struct sigaction sa = {.sa_handler = on_signal};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  server s = {.lfd = listen_on(atoi(argv[1]))};
  s.ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev);
  printf("peer_raw: listening on 127.0.0.1:%s\n", argv[1]);
  fflush(stdout);
  struct epoll_event ev[256];
  while (!g_stop) {
    int n = epoll_wait(s.ep, ev, 256, -1);
    for (int i = 0; i < n; i++) {
      peer *p = ev[i].data.ptr;
      if (!p) {
        on_accept(&s);
        continue;
      }
      if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        on_readable(&s, p);
      else if (ev[i].events & EPOLLOUT)
        peer_flush(&s, p, 1);
    }
  }
  return 0;
}
