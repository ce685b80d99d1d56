/*
 * outq.c - a connection's output queue (see outq.h).
 */
#include "network/outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "base/copy.h"
#include "network/sendq.h"

/* Appends to the evbuffer, created on first use (idle connections hold
 * none). Out of memory drops the connection (its stream would have a hole):
 * io_error is set and WEBSOCK_ENOMEM returned. */
static int out_add(websock_conn *c, const void *p, size_t n) {
  struct evbuffer_iovec v;
  if (!c->out && !(c->out = evbuffer_new()))
    goto oom;
  if (n <= WSH_COPY_PIECE) {
    if (evbuffer_add(c->out, p, n) != 0)
      goto oom;
    return 0;
  }
  /* longer: copied by wsh_copy, not by libevent's memcpy (base/copy.h) */
  if (evbuffer_reserve_space(c->out, (ev_ssize_t)n, &v, 1) != 1)
    goto oom;
  wsh_copy(v.iov_base, p, n);
  v.iov_len = n;
  if (evbuffer_commit_space(c->out, &v, 1) != 0)
    goto oom;
  return 0;
oom:
  c->io_error = ENOMEM;
  return WEBSOCK_ENOMEM;
}

/* A payload this big is copied into a malloc'd block the evbuffer takes by
 * reference, not into evbuffer_add's chain: libevent rounds a chain up to a
 * power of two (32 MiB for a 16 MiB message), past glibc's largest mmap
 * threshold, so every big message faulted fresh pages in and unmapped them
 * again; a block of the payload's own size is reused by malloc. */
#define OUT_BIG (256 * 1024)

static void free_block(const void *data, size_t len, void *arg) {
  (void)len;
  (void)arg;
  free((void *)data);
}

static int out_add_big(websock_conn *c, const void *p, size_t n) {
  uint8_t *block = malloc(n);
  if (!block) {
    c->io_error = ENOMEM;
    return WEBSOCK_ENOMEM;
  }
  wsh_copy(block, p, n);
  if (evbuffer_add_reference(c->out, block, n, free_block, NULL) != 0) {
    free(block);
    c->io_error = ENOMEM;
    return WEBSOCK_ENOMEM;
  }
  return 0;
}

struct evbuffer *wsh_outq_buffer(websock_conn *c) {
  wsh_loop_mark(c->w, c);
  size_t staged = c->stage_len;
  c->stage_len = 0;
  if (out_add(c, c->w->obuf + c->stage_off, staged) != 0)
    return NULL;
  return c->out;
}

static bool try_later(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* A big payload with nothing queued before it: written from where it lies
 * (its header first, held back with MSG_MORE to leave with it), and only
 * what the socket does not take is copied into the queue. The copy was
 * about 30 % of a 1 MiB echo's CPU (bench/PERFORMANCE.md, "Big
 * messages"). Only when nothing is queued, staged or held by reference:
 * the stream keeps its order. A write error sets c->io_error (the
 * connection is settled, closed, at the end of the turn). */
static int write_through(websock_conn *c, const uint8_t *a, size_t alen,
                         const uint8_t *b, size_t blen) {
  size_t sa = 0, sb = 0;
  ssize_t n = c->tp.ops->write(&c->tp, a, alen, true);
  if (n > 0)
    sa = (size_t)n;
  if (sa == alen) {
    n = c->tp.ops->write(&c->tp, b, blen, false);
    if (n > 0)
      sb = (size_t)n;
  }
  if (n < 0 && !try_later(errno)) {
    c->io_error = errno;
    return 0;
  }
  if (sb == blen)
    return 0;
  if (!wsh_outq_buffer(c) || (sa < alen && out_add(c, a + sa, alen - sa)))
    return WEBSOCK_ENOMEM;
  return blen - sb >= OUT_BIG ? out_add_big(c, b + sb, blen - sb)
                              : out_add(c, b + sb, blen - sb);
}

int wsh_outq_add(websock_conn *c, const void *a, size_t alen, const void *b,
                 size_t blen) {
  wsh_loop *w = c->w;
  size_t n = alen + blen;
  if (!c->stage_len && !c->out) /* (out is freed once empty) */
    w->writers++; /* one more connection to write to when settled */
  wsh_loop_mark(w, c);
  if (blen >= OUT_BIG && wsh_outq_unsent(c) == 0)
    return write_through(c, a, alen, b, blen);
  if (c->dirty && (!c->out || !evbuffer_get_length(c->out)) &&
      n <= w->obuf_size - w->obuf_used &&
      (!c->stage_len || c->stage_off + c->stage_len == w->obuf_used)) {
    if (!c->stage_len)
      c->stage_off = (uint32_t)w->obuf_used;
    memcpy(w->obuf + w->obuf_used, a, alen);
    if (blen)
      wsh_copy(w->obuf + w->obuf_used + alen, b, blen);
    w->obuf_used += n;
    c->stage_len += (uint32_t)n;
    return 0;
  }
  if (!wsh_outq_buffer(c) || out_add(c, a, alen) != 0)
    return WEBSOCK_ENOMEM;
  if (blen >= OUT_BIG)
    return out_add_big(c, b, blen);
  return blen ? out_add(c, b, blen) : 0;
}

/* What a write of p left (len - sent bytes), queued by reference: 1, 0
 * when nothing was left, or WEBSOCK_ENOMEM. */
static int ref_rest(websock_conn *c, const void *p, size_t len, size_t sent,
                    evbuffer_ref_cleanup_cb done, void *arg) {
  if (sent == len)
    return 0;
  struct evbuffer *out = wsh_outq_buffer(c);
  if (!out || evbuffer_add_reference(out, (const uint8_t *)p + sent, len - sent,
                                     done, arg) != 0)
    return WEBSOCK_ENOMEM;
  return 1;
}

/* A send's answer (bytes written, or -errno): true when it wrote *n bytes
 * or said "try later" (*n = 0: the socket is full); false for an error,
 * now c's. */
static bool answered(websock_conn *c, int res, size_t *n) {
  *n = 0;
  if (res >= 0) {
    *n = (size_t)res;
    return true;
  }
  if (try_later(-res))
    return true;
  c->io_error = -res; /* closed when settled */
  return false;
}

/* A write of the staged run (res: written, or -errno) done: the run is
 * consumed; what the socket left goes to the evbuffer; an error other than
 * "try later" is c's. */
static void staged_written(websock_conn *c, const uint8_t *p, size_t len,
                           int res) {
  size_t n;
  c->stage_len = 0;
  if (answered(c, res, &n) && n < len)
    out_add(c, p + n, len - n);
}

int wsh_outq_add_ref(websock_conn *c, const void *p, size_t len,
                     evbuffer_ref_cleanup_cb done, void *arg) {
  size_t sent = 0;
  if (!c->dirty && wsh_outq_unsent(c) == 0) {
    ssize_t n = c->tp.ops->write(&c->tp, p, len, false);
    if (n < 0 && !try_later(errno)) {
      c->io_error = errno;
      wsh_loop_mark(c->w, c); /* settled (closed) at the end of the turn */
      return 0;
    }
    sent = n > 0 ? (size_t)n : 0;
  }
  wsh_loop_mark(c->w, c); /* the rest of this turn's output is batched */
  return ref_rest(c, p, len, sent, done, arg);
}

/* ---- through the worker's batch (sendq.h) ------------------------------ */

void wsh_outq_ref_sent(const wsh_sendq_entry *e, int res) {
  websock_conn *c = e->c;
  size_t n;
  if (!answered(c, res, &n))
    return;
  int rc = ref_rest(c, e->p, e->len, n, e->done, e->arg);
  if (rc == 1)
    e->hold(e->arg);
  else if (rc < 0)
    c->io_error = ENOMEM; /* its stream would have a hole */
}

/* The staged run sent: as wsh_outq_write's own write of it. */
static void staged_sent(const wsh_sendq_entry *e, int res) {
  staged_written(e->c, e->p, e->len, res);
}

/* The evbuffer's first piece sent: drained (a frame held by reference is
 * released once all of it is). */
static void buffer_sent(const wsh_sendq_entry *e, int res) {
  size_t n;
  if (answered(e->c, res, &n) && n > 0)
    evbuffer_drain(e->c->out, n);
}

void wsh_outq_write_batched(websock_conn *c) {
  wsh_sendq_entry e = {.c = c};
  if (c->stage_len) { /* out is empty */
    e.p = c->w->obuf + c->stage_off;
    e.len = c->stage_len;
    e.sent = staged_sent;
  } else if (c->out && evbuffer_get_length(c->out) > 0) {
    struct evbuffer_iovec v;
    if (evbuffer_peek(c->out, -1, NULL, &v, 1) < 1)
      return;
    e.p = v.iov_base;
    e.len = v.iov_len;
    e.sent = buffer_sent;
  } else {
    return;
  }
  wsh_sendq_add(c->w, &e);
}

void wsh_outq_write(websock_conn *c, bool more) {
  if (c->stage_len) { /* out is empty: one write, the rest to out */
    const uint8_t *p = c->w->obuf + c->stage_off;
    size_t len = c->stage_len;
    ssize_t n = c->tp.ops->write(&c->tp, p, len, more);
    staged_written(c, p, len, n < 0 ? -errno : (int)n);
    return; /* the socket's buffer is full, or everything is sent */
  }
  while (c->out && evbuffer_get_length(c->out) > 0) {
    int n = c->tp.ops->write_buffer(&c->tp, c->out);
    if (n < 0) {
      if (!try_later(errno))
        c->io_error = errno;
      return;
    }
    if (n == 0)
      return;
  }
  wsh_outq_free(c); /* empty: idle connections hold no buffer */
}

void wsh_outq_free(websock_conn *c) {
  if (c->out) {
    evbuffer_free(c->out);
    c->out = NULL;
  }
  c->stage_len = 0;
}
