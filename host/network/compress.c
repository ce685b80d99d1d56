/*
 * compress.c - permessage-deflate on a connection (see compress.h).
 */
#include "network/compress.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "network/outq.h"
#include "protocol/utf8.h"

#define WSH_EXT_VALUES_MAX 16 /* Sec-WebSocket-Extensions headers read */

static const wsh_pmd_config *route_pmd(const websock_conn *c) {
  return &c->gen->conf->pmd;
}

static void gen_count(websock_conn *c, int stat, size_t n) {
  atomic_fetch_add_explicit(&c->gen->pmd_stats[stat], n, memory_order_relaxed);
}

/* ---- the upgrade --------------------------------------------------------- */

void wsh_compress_negotiate(websock_conn *c, websock_response *resp) {
  const wsh_pmd_config *cfg = route_pmd(c);
  const char *values[WSH_EXT_VALUES_MAX];
  size_t n = 0;
  if (cfg->mode == WSH_PMD_OFF)
    return;
  for (size_t i = 0; i < c->req->nheaders && n < WSH_EXT_VALUES_MAX; i++)
    if (strcasecmp(c->req->headers[i].name, "Sec-WebSocket-Extensions") == 0)
      values[n++] = c->req->headers[i].value;
  char answer[WSH_PMD_RESPONSE_MAX];
  wsh_pmd_params params;
  if (n == 0 || !wsh_pmd_negotiate(cfg, values, n, &params, answer))
    return;
  if (!(resp->extensions = strdup(answer)))
    return; /* out of memory: declined */
  c->pmd_on = 1;
  c->pmdp = params;
}

/* A compressed message inflating frame by frame (the decoder's sink), from
 * its first piece to its end. */
typedef struct wsh_pmd_in {
  wsh_pmd own;     /* shared mode: a private inflater for this one message */
  wsh_pmd_msg msg; /* over &own, or the dedicated connection's state */
} wsh_pmd_in;

int wsh_compress_open(websock_conn *c) {
  if (!c->pmd_on)
    return 0;
  if (route_pmd(c)->mode != WSH_PMD_DEDICATED)
    return 0;
  if (!(c->pmd = calloc(1, sizeof(*c->pmd))))
    return WEBSOCK_ENOMEM;
  wsh_pmd_init(&c->pmd->pmd, &c->pmdp, route_pmd(c), NULL, &c->w->zmem);
  c->pmd->trimmed = true;
  return 0;
}

static void in_free(websock_conn *c);

void wsh_compress_free(websock_conn *c) {
  in_free(c);
  if (!c->pmd)
    return;
  wsh_pmd_free(&c->pmd->pmd);
  free(c->pmd);
  c->pmd = NULL;
}

size_t wsh_compress_held(const websock_conn *c) {
  size_t n = c->pmd ? wsh_pmd_conn_bytes(&c->pmd->pmd) : 0;
  const wsh_pmd_in *in = c->more ? c->more->pmd_in : NULL;
  if (in)
    n += in->msg.out.cap +
         (in->msg.p == &in->own ? wsh_pmd_conn_bytes(&in->own) : 0);
  return n;
}

/* The state a message is compressed or inflated with: the dedicated
 * connection's own, or one over the worker's streams (built on the stack:
 * a shared connection holds none). */
static wsh_pmd *state_of(websock_conn *c, wsh_pmd *tmp) {
  if (c->pmd) {
    c->pmd->used_ms = wsh_now_ms();
    if (c->pmd->trimmed)
      c->pmd->arm = true;
    c->pmd->trimmed = false;
    return &c->pmd->pmd;
  }
  wsh_pmd_init(tmp, &c->pmdp, route_pmd(c), &c->w->pmd, &c->w->zmem);
  return tmp;
}

/* ---- receiving ----------------------------------------------------------- */

/* Ends a frame-by-frame inflate: the message's state (and a shared
 * connection's private inflater) freed, its output too unless taken. */
static void in_free(websock_conn *c) {
  wsh_pmd_in *in = c->more ? c->more->pmd_in : NULL;
  if (!in)
    return;
  wsh_pmd_msg_abort(&in->msg);
  if (in->msg.p == &in->own)
    wsh_pmd_free(&in->own);
  free(in);
  c->more->pmd_in = NULL;
}

/* The message's state, begun with its first piece (or at its end, for a
 * message with no payload bytes). NULL with *code set when it cannot be. A
 * shared connection gets an inflater of its own for it: the worker's
 * cannot wait between two reads of one connection. */
static wsh_pmd_in *in_begin(websock_conn *c, uint8_t opcode, uint16_t *code,
                            const char **why) {
  wsh_conn_more *m = wsh_conn_more_of(c);
  wsh_pmd_in *in = m ? m->pmd_in : NULL;
  if (in)
    return in;
  *code = WSH_CLOSE_INTERNAL;
  *why = "out of memory inflating";
  if (!m || !(in = calloc(1, sizeof(*in))))
    return NULL;
  wsh_pmd *p = &in->own;
  if (c->pmd)
    p = state_of(c, NULL);
  else
    wsh_pmd_init(&in->own, &c->pmdp, route_pmd(c), NULL, &c->w->zmem);
  m->pmd_in = in;
  *code = wsh_pmd_msg_begin(&in->msg, p, opcode == WEBSOCK_OP_TEXT,
                            c->gen->conf->max_message_size, why);
  if (*code) {
    in_free(c);
    return NULL;
  }
  return in;
}

uint16_t wsh_compress_sink(wsh_decoder *d, uint8_t opcode, const uint8_t *p,
                           size_t n, const char **why) {
  websock_conn *c =
      ((wsh_conn_dec *)(void *)((char *)d - offsetof(wsh_conn_dec, d)))->c;
  uint16_t code = 0;
  wsh_pmd_in *in = in_begin(c, opcode, &code, why);
  return in ? wsh_pmd_msg_feed(&in->msg, p, n, why) : code;
}

/* The end of a message that went to the sink: its output handed to out. */
static uint16_t inflate_sunk(websock_conn *c, const wsh_event *ev,
                             wsh_zbuf *out, const char **why) {
  uint16_t code = 0;
  wsh_pmd_in *in = in_begin(c, ev->opcode, &code, why);
  if (!in)
    return code;
  size_t zlen = in->msg.zlen;
  code = wsh_pmd_msg_end(&in->msg, why);
  if (!code) {
    *out = in->msg.out;
    in->msg.out = (wsh_zbuf){0};
  }
  in_free(c);
  if (code)
    return code;
  gen_count(c, WSH_PMD_STAT_MSGS_IN_Z, 1);
  gen_count(c, WSH_PMD_STAT_BYTES_IN_Z, zlen);
  gen_count(c, WSH_PMD_STAT_SIZE_IN_Z, out->len);
  return 0;
}

uint16_t wsh_compress_inflate(websock_conn *c, const wsh_event *ev,
                              wsh_zbuf *out, const char **why) {
  if (ev->sunk)
    return inflate_sunk(c, ev, out, why);
  wsh_pmd tmp, *p = state_of(c, &tmp);
  uint16_t code =
      wsh_pmd_inflate_message(p, ev->opcode, ev->data, ev->len,
                              c->gen->conf->max_message_size, out, why);
  if (code)
    return code;
  gen_count(c, WSH_PMD_STAT_MSGS_IN_Z, 1);
  gen_count(c, WSH_PMD_STAT_BYTES_IN_Z, ev->len);
  gen_count(c, WSH_PMD_STAT_SIZE_IN_Z, out->len);
  return 0;
}

void wsh_compress_release(websock_conn *c, wsh_zbuf *out) {
  wsh_zbuf_free(out, &c->w->zmem);
}

void wsh_compress_count_plain_in(websock_conn *c, size_t len) {
  gen_count(c, WSH_PMD_STAT_MSGS_IN_PLAIN, 1);
  gen_count(c, WSH_PMD_STAT_BYTES_IN_PLAIN, len);
}

/* ---- sending ------------------------------------------------------------- */

static int send_plain_counted(websock_conn *c, size_t len) {
  gen_count(c, WSH_PMD_STAT_MSGS_OUT_PLAIN, 1);
  gen_count(c, WSH_PMD_STAT_BYTES_OUT_PLAIN, len);
  return 0;
}

int wsh_compress_send(websock_conn *c, uint8_t opcode, const void *data,
                      size_t len, bool plain) {
  if (!c->pmd_on || (opcode != WEBSOCK_OP_TEXT && opcode != WEBSOCK_OP_BINARY))
    return 0;
  if (plain || len == 0 || len < route_pmd(c)->min_size)
    return send_plain_counted(c, len);
  wsh_pmd tmp, *p = state_of(c, &tmp);
  wsh_zbuf z = {0};
  wsh_pmd_result r = wsh_pmd_compress(p, data, len, false, &z);
  int rc = 0;
  if (r == WSH_PMD_OK) {
    uint8_t hdr[WSH_MAX_HEADER];
    size_t n = wsh_frame_header_rsv1(hdr, true, opcode, z.len);
    rc = wsh_outq_add(c, hdr, n, z.data, z.len);
    if (rc == 0) {
      gen_count(c, WSH_PMD_STAT_MSGS_OUT_Z, 1);
      gen_count(c, WSH_PMD_STAT_BYTES_OUT_Z, z.len);
      gen_count(c, WSH_PMD_STAT_SIZE_OUT_Z, len);
      rc = 1;
    }
  } else if (r == WSH_PMD_NOT_SMALLER) {
    rc = send_plain_counted(c, len);
  } else {
    rc = WEBSOCK_ENOMEM;
  }
  wsh_zbuf_free(&z, &c->w->zmem);
  return rc;
}

/* ---- broadcasts ---------------------------------------------------------- */

/* sh's compressed frame for a server window of `bits`, made now with this
 * worker's streams (sh->zlock held). NULL when it did not pay (or out of
 * memory: the plain frame goes). */
static wsh_shared *make_variant(websock_conn *c, wsh_shared *sh, int bits) {
  wsh_loop *w = c->w;
  wsh_pmd_params params = {.server_no_context_takeover = true,
                           .client_no_context_takeover = true,
                           .server_window_bits = (uint8_t)bits,
                           .client_window_bits = 15};
  wsh_pmd p;
  wsh_pmd_init(&p, &params, route_pmd(c), &w->pmd, &w->zmem);
  wsh_zbuf z = {0};
  const uint8_t *msg = sh->data + sh->hdr_len;
  size_t len = sh->len - sh->hdr_len;
  wsh_stat_add(&w->stats.bcast_z_deflates, 1);
  wsh_shared *v = NULL;
  if (wsh_pmd_compress(&p, msg, len, false, &z) == WSH_PMD_OK) {
    uint8_t hdr[WSH_MAX_HEADER];
    size_t n = wsh_frame_header_rsv1(hdr, true, sh->data[0] & 0x0F, z.len);
    if ((v = wsh_shared_new("", n + z.len))) {
      memcpy(v->data, hdr, n);
      memcpy(v->data + n, z.data, z.len);
      v->hdr_len = n;
    }
  }
  wsh_zbuf_free(&z, &w->zmem);
  return v;
}

wsh_shared *wsh_compress_shared(websock_conn *c, wsh_shared *sh) {
  size_t len = sh->len - sh->hdr_len;
  if (!c->pmd_on || len == 0 || len < route_pmd(c)->min_size) {
    if (c->pmd_on)
      send_plain_counted(c, len);
    return sh;
  }
  int bits = c->pmdp.server_window_bits;
  if (atomic_exchange(&sh->zwanted, 1) == 0)
    wsh_stat_add(&c->w->stats.bcast_z_publishes, 1);
  pthread_mutex_lock(&sh->zlock);
  wsh_shared *v = sh->zvar[bits];
  if (!v && !(sh->zplain & (1u << bits))) {
    v = sh->zvar[bits] = make_variant(c, sh, bits);
    if (!v)
      sh->zplain |= (uint16_t)(1u << bits);
  }
  pthread_mutex_unlock(&sh->zlock);
  if (!v) {
    send_plain_counted(c, len);
    return sh;
  }
  /* A dedicated deflater's history would no longer match the client's,
   * which now holds this message too: it starts afresh. */
  if (c->pmd) {
    wsh_pmd_trim(&c->pmd->pmd);
    c->pmd->used_ms = wsh_now_ms();
  }
  wsh_stat_add(&c->w->stats.bcast_z_sends, 1);
  gen_count(c, WSH_PMD_STAT_MSGS_OUT_Z, 1);
  gen_count(c, WSH_PMD_STAT_BYTES_OUT_Z, v->len - v->hdr_len);
  gen_count(c, WSH_PMD_STAT_SIZE_OUT_Z, len);
  return v;
}

/* ---- idle ---------------------------------------------------------------- */

uint64_t wsh_compress_idle(websock_conn *c, uint64_t now) {
  if (!c->pmd || c->pmd->trimmed)
    return UINT64_MAX;
  uint64_t due = c->pmd->used_ms + c->gen->conf->pmd_idle_ms;
  if (now < due)
    return due;
  wsh_pmd_trim(&c->pmd->pmd);
  c->pmd->trimmed = true;
  return UINT64_MAX;
}
