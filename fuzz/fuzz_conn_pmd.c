/*
 * fuzz_conn_pmd.c - a connection with permessage-deflate, without sockets:
 * the offer negotiated for a route, then the client's bytes arriving in
 * reads of random sizes, decoded, inflated and UTF-8-checked as the
 * connection does (host/network/compress.c): a message whole in one read
 * with wsh_pmd_inflate_message over the connection's streams (or a
 * worker's, for `shared`); one that is not, frame by frame through the
 * decoder's sink and wsh_pmd_msg (a private inflater for `shared`). Each
 * message
 * echoed back compressed as a server frame (or as is when compression does
 * not pay), pings answered, and the first close or error answered with its
 * close code, after which nothing is read. The input:
 *
 *   byte 0  bits 0-1: route mode (0 dedicated, 1-3 shared); bits 2-4: the
 *           route's client window (8 + n, 15 for 7); bits 5-7 seed the read
 *           sizes and the idle trims, and bit 7 set also picks a route's
 *           own defaults, level 1 and memLevel 5 (where the dedicated
 *           deflater restarts instead of sliding its window), over the
 *           codec's level 6 and memLevel 8
 *   byte 1  max_message_size: below C0, 1 MiB; else (byte - C0) * 64 bytes
 *           (0 is raised to 1); also compression_min_size (byte 1 & 0x3F)
 *   then    the client's Sec-WebSocket-Extensions value, up to a newline
 *   then    the client's frames
 *
 * Oracles: a negotiated response names permessage-deflate; every close
 * code is one a server may send for what happened (1002, 1007, 1009, 1011
 * for errors; the client's own code echoed); an inflated message is at most
 * the limit and, if text, valid UTF-8; the sink's 1009 comes only once the
 * inflated size is past the limit; pieces sunk are never empty; every server
 * frame the echo writes, read by a client that mirrors the negotiated
 * parameters (its own inflater, context takeover as the server keeps it), gives
 * back the message; all counted zlib memory is returned at the end.
 */
#include <stdbool.h>
#include <stddef.h>

#include "protocol/deflate.h"
#include "protocol/frame.h"
#include "protocol/utf8.h"
#include "fuzz.h"

#define MAX_MESSAGE (1024 * 1024)
#define OFFER_MAX 512

/* The server side: a worker's shared streams and one connection. */
typedef struct server {
  wsh_zmem mem;
  wsh_pmd_shared shared;
  wsh_pmd_config cfg;
  wsh_pmd_params params;
  bool on;     /* compression negotiated */
  wsh_pmd pmd; /* dedicated: the connection's own state */
  wsh_decoder dec;
  size_t limit;
  /* a message inflating frame by frame (compress.c's wsh_pmd_in) */
  bool in_open;
  wsh_pmd own; /* shared: its private inflater */
  wsh_pmd_msg msg;
} server;

/* The client: an inflater for the server's messages. */
typedef struct client {
  wsh_zmem mem;
  wsh_pmd pmd;
} client;

/* The state one message is inflated or compressed with, as compress.c's
 * state_of: the connection's own, or one over the worker's streams. */
static wsh_pmd *state_of(server *s, wsh_pmd *tmp) {
  if (s->cfg.mode == WSH_PMD_DEDICATED)
    return &s->pmd;
  wsh_pmd_init(tmp, &s->params, &s->cfg, &s->shared, &s->mem);
  return tmp;
}

/* compress.c's in_free, in_begin, sink and inflate_sunk. */
static void in_free(server *s) {
  if (!s->in_open)
    return;
  wsh_pmd_msg_abort(&s->msg);
  if (s->msg.p == &s->own)
    wsh_pmd_free(&s->own);
  s->in_open = false;
}

static uint16_t in_begin(server *s, uint8_t opcode, const char **why) {
  wsh_pmd *p = &s->own;
  uint16_t code;

  if (s->in_open)
    return 0;
  if (s->cfg.mode == WSH_PMD_DEDICATED)
    p = &s->pmd;
  else
    wsh_pmd_init(&s->own, &s->params, &s->cfg, NULL, &s->mem);
  s->in_open = true;
  code = wsh_pmd_msg_begin(&s->msg, p, opcode == 0x1, s->limit, why);
  if (code)
    in_free(s);
  return code;
}

static uint16_t sink(wsh_decoder *d, uint8_t opcode, const uint8_t *p, size_t n,
                     const char **why) {
  server *s = (server *)(void *)((char *)d - offsetof(server, dec));
  uint16_t code = in_begin(s, opcode, why);

  FUZZ_CHECK(n > 0, "an empty piece sunk");
  return code ? code : wsh_pmd_msg_feed(&s->msg, p, n, why);
}

static uint16_t inflate_sunk(server *s, uint8_t opcode, wsh_zbuf *out,
                             const char **why) {
  uint16_t code = in_begin(s, opcode, why);

  if (code)
    return code;
  code = wsh_pmd_msg_end(&s->msg, why);
  if (!code) {
    *out = s->msg.out;
    s->msg.out = (wsh_zbuf){0};
  }
  in_free(s);
  return code;
}

/* The client reads one server frame (FIN, RSV1 or not) and checks it is
 * the message echoed. */
static void client_reads(client *cl, const uint8_t *frame, size_t flen,
                         uint8_t opcode, const uint8_t *msg, size_t len) {
  size_t off = 2;
  uint64_t n;

  FUZZ_CHECK(flen >= 2, "short frame");
  FUZZ_CHECK((frame[0] & 0x80) && (frame[0] & 0x0F) == opcode, "frame head");
  FUZZ_CHECK(!(frame[1] & 0x80), "server frame masked");
  n = frame[1] & 0x7F;
  if (n == 126) {
    n = (uint64_t)frame[2] << 8 | frame[3];
    off = 4;
  } else if (n == 127) {
    n = 0;
    for (int i = 0; i < 8; i++)
      n = n << 8 | frame[2 + i];
    off = 10;
  }
  FUZZ_CHECK(off + n == flen, "frame length");
  if (!(frame[0] & 0x40)) {
    FUZZ_CHECK(n == len && (!len || !memcmp(frame + off, msg, len)),
               "plain echo differs");
    return;
  }
  wsh_zbuf out = {0};
  uint8_t *payload = fuzz_dup(frame + off, (size_t)n);
  wsh_pmd_result r = wsh_pmd_inflate(&cl->pmd, payload, (size_t)n, 0, &out);

  FUZZ_CHECK(r == WSH_PMD_OK, "the client cannot inflate the echo");
  FUZZ_CHECK(out.len == len && (!len || !memcmp(out.data, msg, len)),
             "compressed echo differs");
  free(payload);
  wsh_zbuf_free(&out, &cl->mem);
}

/* The echo plugin's push: compressed when negotiated, worth it and not
 * below min_size (compress.c's wsh_compress_send), then framed. */
static void echo(server *s, client *cl, uint8_t opcode, const uint8_t *msg,
                 size_t len) {
  uint8_t head[WSH_MAX_HEADER];
  const uint8_t *body = msg;
  size_t blen = len, hlen;
  wsh_zbuf z = {0};
  bool rsv1 = false;

  if (s->on && len > 0 && len >= s->cfg.min_size) {
    wsh_pmd tmp, *p = state_of(s, &tmp);
    wsh_pmd_result r = wsh_pmd_compress(p, msg, len, false, &z);

    FUZZ_CHECK(r == WSH_PMD_OK || r == WSH_PMD_NOT_SMALLER, "compress");
    if (r == WSH_PMD_OK) {
      FUZZ_CHECK(z.len < len, "compressed but not smaller");
      body = z.data;
      blen = z.len;
      rsv1 = true;
    }
  }
  hlen = rsv1 ? wsh_frame_header_rsv1(head, true, opcode, blen)
              : wsh_frame_header(head, true, opcode, blen);
  uint8_t *frame = malloc(hlen + blen + 1);
  FUZZ_CHECK(frame != NULL, "out of memory");
  memcpy(frame, head, hlen);
  if (blen)
    memcpy(frame + hlen, body, blen);
  client_reads(cl, frame, hlen + blen, opcode, msg, len);
  free(frame);
  wsh_zbuf_free(&z, &s->mem);
}

/* One event from the decoder; false once the connection closes. */
static bool on_event(server *s, client *cl, const wsh_event *ev, size_t limit,
                     uint32_t *rng) {
  switch (ev->type) {
  case WSH_EV_MESSAGE:
    if (ev->compressed) {
      FUZZ_CHECK(s->on, "a compressed message without negotiation");
      wsh_pmd tmp, *p = state_of(s, &tmp);
      wsh_zbuf out = {0};
      const char *why = NULL;
      uint16_t code = ev->sunk
                          ? inflate_sunk(s, ev->opcode, &out, &why)
                          : wsh_pmd_inflate_message(p, ev->opcode, ev->data,
                                                    ev->len, limit, &out, &why);
      if (code) {
        FUZZ_CHECK(code == 1007 || code == 1009 || code == 1011, "close code");
        FUZZ_CHECK(why != NULL, "no reason");
        wsh_zbuf_free(&out, &s->mem);
        return false; /* closed with code */
      }
      FUZZ_CHECK(out.len <= limit, "inflated past the limit");
      FUZZ_CHECK(ev->opcode != 0x1 || wsh_utf8_valid(out.data, out.len),
                 "text not UTF-8 after inflating");
      echo(s, cl, ev->opcode, out.data, out.len);
      wsh_zbuf_free(&out, &s->mem);
    } else {
      FUZZ_CHECK(ev->len <= limit, "message past the limit");
      FUZZ_CHECK(ev->opcode != 0x1 || wsh_utf8_valid(ev->data, ev->len),
                 "text not UTF-8");
      echo(s, cl, ev->opcode, ev->data, ev->len);
    }
    /* now and then the connection goes idle and its streams are trimmed */
    if (s->cfg.mode == WSH_PMD_DEDICATED && fuzz_rand(rng) % 4 == 0)
      wsh_pmd_trim(&s->pmd);
    return true;
  case WSH_EV_PING:
  case WSH_EV_PONG:
    FUZZ_CHECK(ev->len <= WSH_MAX_CONTROL, "control payload");
    return true;
  case WSH_EV_CLOSE:
    FUZZ_CHECK(ev->close_code >= 1000 && ev->close_code < 5000, "peer code");
    return false; /* answered with the same code */
  case WSH_EV_ERROR:
    /* the sink's 1009: the inflated size did go past the limit */
    if (s->in_open && !strcmp(ev->error, "message too big (inflated)"))
      FUZZ_CHECK(s->msg.out.len > limit, "1009 from the sink below the limit");
    FUZZ_CHECK(ev->close_code == 1002 || ev->close_code == 1007 ||
                   ev->close_code == 1009 || ev->close_code == 1011,
               "error close code");
    return false;
  default:
    FUZZ_CHECK(false, "unexpected event");
    return false;
  }
}

/* The client's offer up to the first newline; negotiated for the route. */
static size_t negotiate(server *s, const uint8_t *data, size_t size) {
  size_t n = 0;
  char offer[OFFER_MAX + 1], resp[WSH_PMD_RESPONSE_MAX];

  while (n < size && n < OFFER_MAX && data[n] != '\n')
    n++;
  memcpy(offer, data, n);
  offer[n] = '\0';
  const char *values[1] = {offer};
  s->on = wsh_pmd_negotiate(&s->cfg, values, 1, &s->params, resp);
  if (s->on) {
    FUZZ_CHECK(!strncmp(resp, WSH_PMD_TOKEN, strlen(WSH_PMD_TOKEN)),
               "response names permessage-deflate");
    FUZZ_CHECK(strlen(resp) < WSH_PMD_RESPONSE_MAX, "response length");
  }
  return n < size ? n + 1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  uint8_t b0 = data[0], b1 = data[1];
  size_t limit = b1 < 0xC0 ? MAX_MESSAGE : (size_t)(b1 - 0xC0) * 64;
  uint32_t rng = 0x2545F491u ^ (uint32_t)(b0 >> 5) * 0x9E3779B9u;
  server s;
  client cl;

  if (limit == 0)
    limit = 1;
  data += 2;
  size -= 2;
  memset(&s, 0, sizeof s);
  wsh_zmem_init(&s.mem);
  wsh_pmd_shared_init(&s.shared, &s.mem);
  wsh_pmd_config_default(&s.cfg);
  s.cfg.mode = (b0 & 3) == 0 ? WSH_PMD_DEDICATED : WSH_PMD_SHARED;
  s.cfg.client_window_bits = ((b0 >> 2) & 7) == 7 ? 15 : 8 + ((b0 >> 2) & 7);
  s.cfg.min_size = b1 & 0x3F;
  if (b0 & 0x80) {
    s.cfg.level = 1;
    s.cfg.mem_level = 5;
  }
  FUZZ_CHECK(wsh_pmd_config_check(&s.cfg) == NULL, "route config");

  size_t used = negotiate(&s, data, size);
  data += used;
  size -= used;

  /* the client mirrors what the server's deflater keeps */
  wsh_pmd_params mirror = {0};
  wsh_pmd_config ccfg;
  wsh_pmd_config_default(&ccfg);
  wsh_zmem_init(&cl.mem);
  mirror.client_no_context_takeover = s.params.server_no_context_takeover;
  mirror.client_window_bits = s.params.server_window_bits;
  mirror.server_window_bits = 15;
  wsh_pmd_init(&cl.pmd, &mirror, &ccfg, NULL, &cl.mem);
  if (s.on)
    wsh_pmd_init(&s.pmd, &s.params, &s.cfg,
                 s.cfg.mode == WSH_PMD_SHARED ? &s.shared : NULL, &s.mem);

  s.limit = limit;
  wsh_decoder_init(&s.dec, limit);
  if (s.on) {
    wsh_decoder_allow_rsv1(&s.dec);
    wsh_decoder_set_sink(&s.dec, sink);
  }

  /* reads of random sizes, each in an exact-size block, decoded in turn */
  bool open = true;
  for (size_t off = 0; open && off < size;) {
    size_t left = size - off,
           n = 1 + fuzz_rand(&rng) % (left < 512 ? left : 512);
    uint8_t *read = fuzz_dup(data + off, n);
    size_t pos = 0;

    while (open && pos < n) {
      wsh_event ev;
      size_t used_now = wsh_decode(&s.dec, read + pos, n - pos, &ev);

      pos += used_now;
      if (ev.type == WSH_EV_NONE)
        break;
      open = on_event(&s, &cl, &ev, limit, &rng);
    }
    free(read);
    off += n;
  }

  wsh_decoder_free(&s.dec);
  in_free(&s); /* closed mid-message */
  if (s.on)
    wsh_pmd_free(&s.pmd);
  wsh_pmd_shared_free(&s.shared);
  wsh_pmd_free(&cl.pmd);
  FUZZ_CHECK(wsh_zmem_in_use(&s.mem) == 0, "server memory not returned");
  FUZZ_CHECK(wsh_zmem_in_use(&cl.mem) == 0, "client memory not returned");
  return 0;
}
