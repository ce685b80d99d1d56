/*
 * deflate.c - permessage-deflate (RFC 7692): the offer parser and the
 * server's answer, then per-message compression and inflation over zlib's
 * raw deflate, with every allocation counted (see deflate.h).
 *
 * Window sizes. zlib's raw deflate refuses an 8-bit window, so an offer
 * with server_max_window_bits=8 is declined. A client may still promise an
 * 8-bit window (client_max_window_bits=8): we answer with 8, and inflate
 * with 9, which reads any stream made with a smaller window (zlib.h: the
 * inflate window must be at least the deflate window; and a client whose
 * zlib rounded 8 up to 9 still works).
 */
#include "protocol/deflate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* One zlib stream and the bytes zlib allocated for it. */
struct wsh_zstream {
  z_stream s;
  wsh_zmem *mem;
  size_t bytes; /* zlib's allocations for this stream, and this struct */
  bool deflate;
  int bits;
  int level;
  size_t pos; /* deflater: bytes in its window since its last reset, at
                 most 2 << bits (after zlib slid it: as if it had not) */
};

#define PARAM_VALUE_MAX 16 /* longer values are invalid anyway */
#define ZLIB_LOOKAHEAD 262 /* zlib's MIN_LOOKAHEAD (deflate.h) */
#define REBASE_LEVEL_MAX 3 /* zlib's fast levels (deflate_fast) */
#define ALLOC_HDR 16       /* the hook's size prefix, keeps 16-byte alignment */

static const uint8_t tail[4] = {0x00, 0x00, 0xFF, 0xFF};

/* ------------------------------------------------------------------------ */
/* Configuration                                                            */
/* ------------------------------------------------------------------------ */

void wsh_pmd_config_default(wsh_pmd_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->mode = WSH_PMD_OFF;
  cfg->server_window_bits = 15;
  cfg->client_window_bits = 15;
  cfg->level = 6;
  cfg->mem_level = 8;
  cfg->min_size = 64;
}

const char *wsh_pmd_config_check(const wsh_pmd_config *cfg) {
  if (cfg->mode != WSH_PMD_OFF && cfg->mode != WSH_PMD_SHARED &&
      cfg->mode != WSH_PMD_DEDICATED)
    return "compression must be off, shared or dedicated";
  if (cfg->server_window_bits < 9 || cfg->server_window_bits > 15)
    return "server window bits must be 9 to 15";
  if (cfg->client_window_bits < 8 || cfg->client_window_bits > 15)
    return "client window bits must be 8 to 15";
  if (cfg->level < 1 || cfg->level > 9)
    return "compression level must be 1 to 9";
  if (cfg->mem_level < 1 || cfg->mem_level > 9)
    return "compression memory level must be 1 to 9";
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Negotiation (RFC 7692 §7.1, RFC 6455 §9.1 grammar)                        */
/* ------------------------------------------------------------------------ */

/* The parameters of one offer, as parsed. */
typedef struct offer {
  bool ok; /* no unknown, repeated or invalid parameter so far */
  bool snct, cnct, sbits, cbits;
  int sbits_value; /* 0: none given */
  int cbits_value;
} offer;

static bool is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void skip_ows(const char **p) {
  while (**p == ' ' || **p == '\t')
    (*p)++;
}

/* A token at *p: its length, *p moved past it (0 if none). */
static size_t take_token(const char **p) {
  const char *s = *p;

  while (is_tchar(**p))
    (*p)++;
  return (size_t)(*p - s);
}

/* A quoted-string at *p (the opening quote): unescaped into v[0..PARAM_
 * VALUE_MAX) (*vlen set past the max if longer). Returns false if it is
 * malformed; *p is then at its end (NUL) if it never closes. */
static bool take_quoted(const char **p, char *v, size_t *vlen) {
  const char *s = *p + 1;

  *vlen = 0;
  for (;;) {
    unsigned char c = (unsigned char)*s;

    if (c == '"') {
      *p = s + 1;
      return true;
    }
    if (c == '\\') {
      c = (unsigned char)*++s;
      if (!(c == '\t' || (c >= 0x20 && c != 0x7F)))
        break;
    } else if (!(c == '\t' || c == ' ' || c == 0x21 ||
                 (c >= 0x23 && c != 0x7F))) {
      break; /* CTL, or NUL: the end of the value */
    }
    if (*vlen < PARAM_VALUE_MAX)
      v[*vlen] = (char)c;
    (*vlen)++;
    s++;
  }
  *p = s;
  return false;
}

/* A window size value: "8" to "15", no leading zero. Returns 0 if not. */
static int window_value(const char *v, size_t n) {
  if (n == 1 && v[0] >= '8' && v[0] <= '9')
    return v[0] - '0';
  if (n == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return 10 + v[1] - '0';
  return 0;
}

/* Records one parameter of a permessage-deflate offer. */
static void offer_param(offer *o, const char *name, size_t nlen, bool has_value,
                        const char *v, size_t vlen) {
  int w = has_value ? window_value(v, vlen) : 0;
  bool *seen;

#define IS(lit) (nlen == sizeof lit - 1 && !memcmp(name, lit, nlen))
  if (IS("server_no_context_takeover"))
    seen = &o->snct;
  else if (IS("client_no_context_takeover"))
    seen = &o->cnct;
  else if (IS("server_max_window_bits"))
    seen = &o->sbits;
  else if (IS("client_max_window_bits"))
    seen = &o->cbits;
  else
    seen = NULL;
  if (!seen || *seen) {
    o->ok = false; /* unknown or repeated */
    return;
  }
  *seen = true;
  if (seen == &o->snct || seen == &o->cnct) {
    o->ok = o->ok && !has_value;
  } else if (seen == &o->sbits) {
    o->ok = o->ok && w;
    o->sbits_value = w;
  } else {
    o->ok = o->ok && (!has_value || w);
    o->cbits_value = w;
  }
#undef IS
}

/* Parses one list element at *p (not empty). Returns false on a syntax
 * error; true with *is_pmd if the element is a permessage-deflate offer,
 * its parameters in *o. *p ends at the ',' or NUL after the element. */
static bool parse_element(const char **p, bool *is_pmd, offer *o) {
  const char *name = *p;
  size_t nlen = take_token(p);
  char v[PARAM_VALUE_MAX];

  memset(o, 0, sizeof *o);
  o->ok = true;
  *is_pmd =
      nlen == sizeof WSH_PMD_TOKEN - 1 && !memcmp(name, WSH_PMD_TOKEN, nlen);
  if (!nlen)
    return false;
  for (;;) {
    const char *pname;
    size_t plen, vlen = 0;
    bool has_value = false;

    skip_ows(p);
    if (**p == ',' || **p == '\0')
      return true;
    if (**p != ';')
      return false;
    (*p)++;
    skip_ows(p);
    pname = *p;
    if (!(plen = take_token(p)))
      return false;
    skip_ows(p);
    if (**p == '=') {
      (*p)++;
      skip_ows(p);
      has_value = true;
      if (**p == '"') {
        if (!take_quoted(p, v, &vlen))
          return false;
      } else {
        const char *s = *p;

        if (!(vlen = take_token(p)))
          return false;
        memcpy(v, s, vlen < sizeof v ? vlen : sizeof v);
      }
    }
    offer_param(o, pname, plen, has_value, v, vlen);
  }
}

/* Moves *p past a malformed element: to the next ',' outside a quoted
 * string, or to the end. */
static void skip_element(const char **p) {
  bool quoted = false;

  for (; **p && (quoted || **p != ','); (*p)++) {
    if (quoted && **p == '\\' && (*p)[1])
      (*p)++;
    else if (**p == '"')
      quoted = !quoted;
  }
}

static int min_int(int a, int b) {
  return a < b ? a : b;
}

/* The server's answer to a well-formed offer. Returns false to decline. */
static bool accept_offer(const wsh_pmd_config *cfg, const offer *o,
                         wsh_pmd_params *pp, char *resp) {
  bool shared = cfg->mode == WSH_PMD_SHARED;
  int sbits = cfg->server_window_bits, cbits = 15, n;

  if (!o->ok)
    return false;
  if (o->sbits) {
    if (o->sbits_value < 9)
      return false; /* raw deflate has no 8-bit window */
    sbits = min_int(sbits, o->sbits_value);
  }
  if (o->cbits)
    cbits =
        min_int(cfg->client_window_bits, o->cbits_value ? o->cbits_value : 15);
  pp->server_no_context_takeover = o->snct || shared;
  pp->client_no_context_takeover = o->cnct || shared;
  pp->server_window_bits = (uint8_t)sbits;
  pp->client_window_bits = (uint8_t)cbits;
  n = snprintf(
      resp, WSH_PMD_RESPONSE_MAX, "%s%s%s", WSH_PMD_TOKEN,
      pp->server_no_context_takeover ? "; server_no_context_takeover" : "",
      pp->client_no_context_takeover ? "; client_no_context_takeover" : "");
  if (o->sbits || sbits < 15)
    n += snprintf(resp + n, (size_t)(WSH_PMD_RESPONSE_MAX - n),
                  "; server_max_window_bits=%d", sbits);
  if (o->cbits && cbits < 15)
    snprintf(resp + n, (size_t)(WSH_PMD_RESPONSE_MAX - n),
             "; client_max_window_bits=%d", cbits);
  return true;
}

/* Tries the offers of one header value in order. */
static bool negotiate_value(const wsh_pmd_config *cfg, const char *p,
                            wsh_pmd_params *pp, char *resp) {
  for (;;) {
    const char *start;
    bool is_pmd;
    offer o;

    skip_ows(&p);
    if (*p == '\0')
      return false;
    if (*p == ',') {
      p++; /* an empty list element */
      continue;
    }
    start = p;
    if (!parse_element(&p, &is_pmd, &o)) {
      p = start; /* skip it whole, minding its quoted strings */
      skip_element(&p);
      continue;
    }
    if (is_pmd && accept_offer(cfg, &o, pp, resp))
      return true;
  }
}

bool wsh_pmd_negotiate(const wsh_pmd_config *cfg, const char *const *values,
                       size_t n, wsh_pmd_params *params,
                       char response[WSH_PMD_RESPONSE_MAX]) {
  wsh_pmd_params pp;

  response[0] = '\0';
  if (cfg->mode == WSH_PMD_OFF || wsh_pmd_config_check(cfg))
    return false;
  for (size_t i = 0; i < n; i++)
    if (values[i] && negotiate_value(cfg, values[i], &pp, response)) {
      *params = pp;
      return true;
    }
  response[0] = '\0';
  return false;
}

/* ------------------------------------------------------------------------ */
/* Counted memory                                                            */
/* ------------------------------------------------------------------------ */

void wsh_zmem_init(wsh_zmem *m) {
  atomic_init(&m->zlib, 0);
  atomic_init(&m->buffers, 0);
  atomic_init(&m->peak, 0);
}

size_t wsh_zmem_in_use(const wsh_zmem *m) {
  return atomic_load_explicit(&m->zlib, memory_order_relaxed) +
         atomic_load_explicit(&m->buffers, memory_order_relaxed);
}

/* Adds (or with sub, removes) n bytes to one of m's counters. Only the
 * owning thread writes, so load and store suffice. */
static void zmem_add(wsh_zmem *m, atomic_size_t *field, size_t n, bool sub) {
  size_t v = atomic_load_explicit(field, memory_order_relaxed);

  atomic_store_explicit(field, sub ? v - n : v + n, memory_order_relaxed);
  if (!sub &&
      wsh_zmem_in_use(m) > atomic_load_explicit(&m->peak, memory_order_relaxed))
    atomic_store_explicit(&m->peak, wsh_zmem_in_use(m), memory_order_relaxed);
}

/* zlib's allocator: malloc with the size in front, counted in the stream
 * and its wsh_zmem. */
static voidpf zs_alloc(voidpf opaque, uInt items, uInt size) {
  struct wsh_zstream *z = opaque;
  size_t n = (size_t)items * size;
  uint8_t *p;

  if (size && n / size != items)
    return Z_NULL;
  if (!(p = malloc(ALLOC_HDR + n)))
    return Z_NULL;
  memcpy(p, &n, sizeof n);
  z->bytes += n;
  zmem_add(z->mem, &z->mem->zlib, n, false);
  return p + ALLOC_HDR;
}

static void zs_free(voidpf opaque, voidpf ptr) {
  struct wsh_zstream *z = opaque;
  uint8_t *p = (uint8_t *)ptr - ALLOC_HDR;
  size_t n;

  memcpy(&n, p, sizeof n);
  z->bytes -= n;
  zmem_add(z->mem, &z->mem->zlib, n, true);
  free(p);
}

/* Makes room in b for `cap` bytes in all (never shrinks). */
static bool zbuf_reserve(wsh_zbuf *b, wsh_zmem *m, size_t cap) {
  uint8_t *p;

  if (cap <= b->cap)
    return true;
  if (!(p = realloc(b->data, cap)))
    return false;
  zmem_add(m, &m->buffers, cap - b->cap, false);
  b->data = p;
  b->cap = cap;
  return true;
}

void wsh_zbuf_free(wsh_zbuf *b, wsh_zmem *m) {
  if (b->data)
    zmem_add(m, &m->buffers, b->cap, true);
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* A history buffer (a trimmed inflater's window, or one kept across a
 * BFINAL), counted as zlib state. */
static uint8_t *hist_alloc(wsh_zmem *m, size_t n) {
  uint8_t *p = malloc(n ? n : 1);

  if (p)
    zmem_add(m, &m->zlib, n, false);
  return p;
}

static void hist_free(wsh_zmem *m, uint8_t *p, size_t n) {
  if (p)
    zmem_add(m, &m->zlib, n, true);
  free(p);
}

/* ------------------------------------------------------------------------ */
/* Streams                                                                   */
/* ------------------------------------------------------------------------ */

static struct wsh_zstream *zs_new(wsh_zmem *m, bool deflate, int bits,
                                  int level, int mem_level) {
  struct wsh_zstream *z = calloc(1, sizeof *z);
  int rc;

  if (!z)
    return NULL;
  z->mem = m;
  z->deflate = deflate;
  z->bits = bits;
  z->level = level;
  z->bytes = sizeof *z;
  zmem_add(m, &m->zlib, sizeof *z, false);
  z->s.zalloc = zs_alloc;
  z->s.zfree = zs_free;
  z->s.opaque = z;
  rc = deflate ? deflateInit2(&z->s, level, Z_DEFLATED, -bits, mem_level,
                              Z_DEFAULT_STRATEGY)
               : inflateInit2(&z->s, -bits);
  if (rc != Z_OK)
    goto out_free;
  return z;

out_free:
  zmem_add(m, &m->zlib, sizeof *z, true);
  free(z);
  return NULL;
}

static void zs_free_stream(struct wsh_zstream *z) {
  if (!z)
    return;
  if (z->deflate)
    deflateEnd(&z->s);
  else
    inflateEnd(&z->s);
  zmem_add(z->mem, &z->mem->zlib, sizeof *z, true);
  free(z);
}

void wsh_pmd_shared_init(wsh_pmd_shared *s, wsh_zmem *mem) {
  memset(s, 0, sizeof *s);
  s->mem = mem;
}

void wsh_pmd_shared_free(wsh_pmd_shared *s) {
  zs_free_stream(s->inflater);
  for (size_t i = 0; i < sizeof s->deflater / sizeof s->deflater[0]; i++)
    zs_free_stream(s->deflater[i]);
  memset(s->deflater, 0, sizeof s->deflater);
  s->inflater = NULL;
}

/* ------------------------------------------------------------------------ */
/* A connection's state                                                      */
/* ------------------------------------------------------------------------ */

void wsh_pmd_init(wsh_pmd *c, const wsh_pmd_params *params,
                  const wsh_pmd_config *cfg, wsh_pmd_shared *shared,
                  wsh_zmem *mem) {
  memset(c, 0, sizeof *c);
  c->params = *params;
  c->level = cfg->level;
  c->mem_level = cfg->mem_level;
  c->shared = shared;
  c->mem = mem;
  if (shared) {
    c->params.server_no_context_takeover = true;
    c->params.client_no_context_takeover = true;
  }
}

void wsh_pmd_free(wsh_pmd *c) {
  zs_free_stream(c->deflater);
  zs_free_stream(c->inflater);
  hist_free(c->mem, c->window, c->window_len);
  c->deflater = c->inflater = c->cur = NULL;
  c->window = NULL;
  c->window_len = 0;
  c->in_message = false;
}

void wsh_pmd_trim(wsh_pmd *c) {
  uInt n = 0;

  zs_free_stream(c->deflater);
  c->deflater = NULL;
  if (c->in_message || !c->inflater)
    return;
  if (!c->params.client_no_context_takeover &&
      inflateGetDictionary(&c->inflater->s, NULL, &n) == Z_OK && n > 0) {
    uint8_t *w = hist_alloc(c->mem, n);

    if (!w)
      return; /* keep the inflater as it is */
    inflateGetDictionary(&c->inflater->s, w, &n);
    c->window = w;
    c->window_len = n;
  }
  zs_free_stream(c->inflater);
  c->inflater = NULL;
}

size_t wsh_pmd_conn_bytes(const wsh_pmd *c) {
  return (c->deflater ? c->deflater->bytes : 0) +
         (c->inflater ? c->inflater->bytes : 0) + c->window_len;
}

size_t wsh_pmd_formula_bytes(int server_bits, int client_bits, int mem_level) {
  return ((size_t)1 << (server_bits + 2)) + ((size_t)1 << (mem_level + 9)) +
         ((size_t)1 << (client_bits < 9 ? 9 : client_bits));
}

uint16_t wsh_pmd_close_code(wsh_pmd_result r) {
  switch (r) {
  case WSH_PMD_TOO_BIG:
    return 1009;
  case WSH_PMD_BAD_DATA:
    return 1007;
  case WSH_PMD_NOMEM:
    return 1011;
  default:
    return 0;
  }
}

/* ------------------------------------------------------------------------ */
/* Compressing                                                               */
/* ------------------------------------------------------------------------ */

int wsh_pmd_shared_bits(size_t len, int server_bits) {
  for (int w = 9; w <= server_bits && w <= WSH_PMD_SMALL_BITS_MAX; w++)
    if (((size_t)1 << w) - ZLIB_LOOKAHEAD >= len)
      return w;
  return server_bits;
}

int wsh_pmd_shared_mem_level(int bits) {
  return bits - 6 < 8 ? bits - 6 : 8;
}

/* The deflater for this connection's next message of len bytes, made on
 * first use. A shared one is the worker's for the smallest window that
 * holds the message (wsh_pmd_shared_bits), with a hash sized to that
 * window: zlib clears the whole hash at every reset, which at 15 bits and
 * memLevel 8 was a 64 KiB memset for each 256-byte message. */
static struct wsh_zstream *deflater_for(wsh_pmd *c, size_t len) {
  int bits = c->params.server_window_bits;
  struct wsh_zstream **slot = &c->deflater;
  int mem_level = c->mem_level;

  if (c->shared) {
    bits = wsh_pmd_shared_bits(len, bits);
    slot = &c->shared->deflater[bits];
    mem_level = wsh_pmd_shared_mem_level(bits);
  }
  if (!*slot)
    *slot = zs_new(c->mem, true, bits, c->level, mem_level);
  if (*slot && (*slot)->level != c->level) {
    /* a shared deflater serves routes of several levels; it is always
       reset here, so deflateParams has nothing to flush */
    if (deflateParams(&(*slot)->s, c->level, Z_DEFAULT_STRATEGY) != Z_OK)
      return NULL;
    (*slot)->level = c->level;
  }
  return *slot;
}

/*
 * Context takeover at zlib's fast levels: before a message that would make
 * zlib slide its window, the deflater starts afresh with the last quarter
 * of its window as its dictionary. zlib slides once per window of input
 * (at 15 bits, every 32 KiB: a 32 KiB copy, and its hash heads and the
 * window's chain links, 36 K entries at memLevel 5, walked one by one),
 * which was a fifth of the CPU of a 4 KiB chat message; the rebase inserts
 * only the kept quarter into fresh tables, about once per 56 KiB. The
 * client's history is unchanged (it holds everything we sent); ours keeps
 * from a quarter of the window up to all of it. At levels 4 to 9 (asked
 * for their ratio) the window slides as zlib does it.
 */
static void rebase(struct wsh_zstream *z, wsh_zmem *m, size_t len) {
  size_t wsize = (size_t)1 << z->bits, keep = wsize / 4;
  uInt n = 0;
  uint8_t *w;

  if (z->level > REBASE_LEVEL_MAX || len > wsize - keep - ZLIB_LOOKAHEAD)
    return; /* asked for ratio; or it would slide all the same */
  if (z->pos + len + ZLIB_LOOKAHEAD <= 2 * wsize)
    return; /* no slide in this message (pos <= 2 * wsize) */
  if (!(w = hist_alloc(m, wsize)))
    return;
  if (deflateGetDictionary(&z->s, w, &n) == Z_OK &&
      deflateReset(&z->s) == Z_OK) {
    uInt k = n < keep ? n : (uInt)keep;

    z->pos = 0;
    if (deflateSetDictionary(&z->s, w + n - k, k) == Z_OK)
      z->pos = k;
  }
  hist_free(m, w, wsize);
}

wsh_pmd_result wsh_pmd_compress(wsh_pmd *c, const uint8_t *msg, size_t len,
                                bool force, wsh_zbuf *out) {
  struct wsh_zstream *z;
  size_t cap;
  int rc;

  out->len = 0;
  if (!force && len == 0)
    return WSH_PMD_NOT_SMALLER;
  if (len == 0) { /* an empty block, whatever the deflater holds (zlib
                     would refuse a second flush without input) */
    if (!zbuf_reserve(out, c->mem, 1))
      return WSH_PMD_NOMEM;
    out->data[0] = 0x00;
    out->len = 1;
    return WSH_PMD_OK;
  }
  if (!(z = deflater_for(c, len)))
    return WSH_PMD_NOMEM;
  /* Not forced, the result (tail included) must stay under len + 4. */
  cap = force ? deflateBound(&z->s, len) + 16 : len + 3;
  if (!zbuf_reserve(out, c->mem, cap))
    return WSH_PMD_NOMEM;
  if (!c->params.server_no_context_takeover)
    rebase(z, c->mem, len);
  z->s.next_in = (Bytef *)(uintptr_t)msg;
  z->s.avail_in = 0;
  z->s.next_out = out->data;
  for (size_t left = len;;) {
    if (z->s.avail_in == 0 && left > 0) {
      z->s.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
      left -= z->s.avail_in;
    }
    z->s.avail_out =
        (uInt)(out->cap - out->len > UINT32_MAX ? UINT32_MAX
                                                : out->cap - out->len);
    rc = deflate(&z->s, Z_SYNC_FLUSH);
    out->len = (size_t)(z->s.next_out - out->data);
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      goto out_reset_nomem;
    if (z->s.avail_out > 0 && z->s.avail_in == 0 && left == 0)
      break; /* flushed */
    if (z->s.avail_out > 0)
      continue;
    if (!force)
      goto out_reset_not_smaller; /* (len + 3 bytes would not do) */
    if (!zbuf_reserve(out, c->mem, out->cap * 2))
      goto out_reset_nomem;
    z->s.next_out = out->data + out->len;
  }
  z->s.next_in = NULL;
  if (out->len < 4 || memcmp(out->data + out->len - 4, tail, 4) != 0)
    goto out_reset_nomem; /* cannot happen: a sync flush ends so */
  out->len -= 4;
  if (!force && out->len >= len)
    goto out_reset_not_smaller;
  z->pos = len < ((size_t)2 << z->bits) - z->pos ? z->pos + len
                                                 : (size_t)2 << z->bits;
  if (c->params.server_no_context_takeover) {
    deflateReset(&z->s);
    z->pos = 0;
  }
  return WSH_PMD_OK;

out_reset_not_smaller:
  deflateReset(&z->s);
  z->pos = 0;
  out->len = 0;
  return WSH_PMD_NOT_SMALLER;
out_reset_nomem:
  deflateReset(&z->s);
  z->pos = 0;
  out->len = 0;
  return WSH_PMD_NOMEM;
}

/* ------------------------------------------------------------------------ */
/* Inflating                                                                 */
/* ------------------------------------------------------------------------ */

/* The inflater for this connection's next message, made on first use (with
 * the history a trim kept), reset if no history is kept between messages. */
static struct wsh_zstream *inflater_for(wsh_pmd *c) {
  struct wsh_zstream *z;

  if (c->shared) {
    if (!c->shared->inflater)
      c->shared->inflater = zs_new(c->mem, false, 15, 0, 0);
    if ((z = c->shared->inflater))
      inflateReset(&z->s);
    return z;
  }
  if (!c->inflater) {
    int bits = c->params.client_window_bits;

    c->inflater = zs_new(c->mem, false, bits < 9 ? 9 : bits, 0, 0);
    if (c->inflater && c->window) {
      if (inflateSetDictionary(&c->inflater->s, c->window,
                               (uInt)c->window_len) != Z_OK)
        return NULL;
      hist_free(c->mem, c->window, c->window_len);
      c->window = NULL;
      c->window_len = 0;
    }
  } else if (c->params.client_no_context_takeover) {
    inflateReset(&c->inflater->s);
  }
  return c->inflater;
}

wsh_pmd_result wsh_pmd_inflate_begin(wsh_pmd *c, wsh_zbuf *out, size_t limit) {
  c->in_message = true;
  c->stream_end = false;
  c->got_data = false;
  c->out = out;
  c->limit = limit ? limit : SIZE_MAX - WSH_PMD_CHUNK;
  out->len = 0;
  c->cur = inflater_for(c);
  c->status = c->cur ? WSH_PMD_OK : WSH_PMD_NOMEM;
  return c->status;
}

/* A deflate stream ended inside the message (BFINAL) and more data follows:
 * starts a new stream that keeps the history. */
static wsh_pmd_result restart_stream(wsh_pmd *c) {
  z_stream *s = &c->cur->s;
  uInt n = 0;
  uint8_t *w;
  int rc;

  inflateGetDictionary(s, NULL, &n);
  if (!(w = hist_alloc(c->mem, n)))
    return WSH_PMD_NOMEM;
  inflateGetDictionary(s, w, &n);
  inflateReset(s);
  rc = n ? inflateSetDictionary(s, w, n) : Z_OK;
  hist_free(c->mem, w, n);
  c->stream_end = false;
  return rc == Z_OK ? WSH_PMD_OK : WSH_PMD_NOMEM;
}

/* Room for output: the buffer grows by doubling up to limit + one chunk. */
static wsh_pmd_result out_room(wsh_pmd *c) {
  wsh_zbuf *b = c->out;
  size_t hard = c->limit + WSH_PMD_CHUNK, cap;

  if (b->len < b->cap)
    return WSH_PMD_OK;
  if (b->cap >= hard)
    return WSH_PMD_TOO_BIG;
  cap = b->cap < 4096 ? 4096 : b->cap * 2;
  if (cap > hard || cap < b->cap)
    cap = hard;
  return zbuf_reserve(b, c->mem, cap) ? WSH_PMD_OK : WSH_PMD_NOMEM;
}

/* Inflates in[0..len) into the message's buffer. */
static wsh_pmd_result inflate_run(wsh_pmd *c, const uint8_t *in, size_t len) {
  z_stream *s = &c->cur->s;
  wsh_zbuf *b = c->out;

  s->next_in = (Bytef *)(uintptr_t)in;
  s->avail_in = 0;
  for (;;) {
    wsh_pmd_result r;
    int rc;

    if (s->avail_in == 0 && len > 0) {
      s->avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
      len -= s->avail_in;
    }
    if (c->stream_end && s->avail_in > 0 &&
        (r = restart_stream(c)) != WSH_PMD_OK)
      return r;
    if ((r = out_room(c)) != WSH_PMD_OK)
      return r;
    s->next_out = b->data + b->len;
    s->avail_out =
        (uInt)(b->cap - b->len > UINT32_MAX ? UINT32_MAX : b->cap - b->len);
    rc = inflate(s, Z_SYNC_FLUSH);
    b->len = (size_t)(s->next_out - b->data);
    if (b->len > c->limit)
      return WSH_PMD_TOO_BIG;
    if (rc == Z_MEM_ERROR)
      return WSH_PMD_NOMEM;
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END)
      return WSH_PMD_BAD_DATA; /* Z_DATA_ERROR, or a dictionary wanted */
    c->stream_end = rc == Z_STREAM_END;
    if (s->avail_in > 0 || len > 0) {
      if (rc == Z_BUF_ERROR && s->avail_out > 0)
        return WSH_PMD_BAD_DATA; /* stuck with input and room */
      continue;
    }
    /* All input taken: done unless the output filled up, when more may be
       pending (the next call then makes no progress if not). */
    if (s->avail_out > 0 || rc != Z_OK)
      break;
  }
  s->next_in = NULL;
  s->next_out = NULL;
  return WSH_PMD_OK;
}

wsh_pmd_result wsh_pmd_inflate_feed(wsh_pmd *c, const uint8_t *in, size_t len) {
  if (!c->in_message)
    return WSH_PMD_BAD_DATA;
  if (c->status == WSH_PMD_OK && len > 0) {
    c->got_data = true;
    c->status = inflate_run(c, in, len);
  }
  return c->status;
}

wsh_pmd_result wsh_pmd_inflate_end(wsh_pmd *c) {
  if (!c->in_message)
    return WSH_PMD_BAD_DATA;
  if (c->status == WSH_PMD_OK && c->got_data)
    c->status = inflate_run(c, tail, sizeof tail);
  /* A message ends where a block does (RFC 7692 §7.2.2): zlib sets 128 in
     data_type when it stopped right after an end-of-block. */
  if (c->status == WSH_PMD_OK && c->got_data && !c->stream_end &&
      !(c->cur->s.data_type & 128))
    c->status = WSH_PMD_BAD_DATA;
  c->in_message = false;
  c->out = NULL;
  if (c->status != WSH_PMD_OK && c->cur) /* its history is unusable now */
    inflateReset(&c->cur->s);
  c->cur = NULL;
  return c->status;
}

/* The first output buffer of a message whose compressed bytes are all
 * known: 8 times them (chat text inflates 4 to 7 times), 4 to 64 KiB and
 * within the limit. A typical message then inflates in one call, without
 * a second call to learn that a buffer it filled exactly was enough, nor
 * a copy to grow it; the guess stays small next to the limit. */
static size_t first_room(size_t zlen, size_t limit) {
  size_t cap = zlen < (64 << 10) / 8 ? zlen * 8 : 64 << 10;

  if (cap < 4096)
    cap = 4096;
  return cap < limit + WSH_PMD_CHUNK ? cap : limit + WSH_PMD_CHUNK;
}

wsh_pmd_result wsh_pmd_inflate(wsh_pmd *c, const uint8_t *in, size_t len,
                               size_t limit, wsh_zbuf *out) {
  wsh_pmd_result r = wsh_pmd_inflate_begin(c, out, limit);

  if (r == WSH_PMD_OK && len > 0 &&
      !zbuf_reserve(out, c->mem, first_room(len, c->limit)))
    c->status = WSH_PMD_NOMEM;
  if (r == WSH_PMD_OK)
    wsh_pmd_inflate_feed(c, in, len);
  return wsh_pmd_inflate_end(c);
}

static uint16_t result_code(wsh_pmd_result r, const char **why) {
  if (r == WSH_PMD_TOO_BIG)
    *why = "message too big (inflated)";
  else if (r == WSH_PMD_BAD_DATA)
    *why = "invalid compressed data";
  else
    *why = "out of memory inflating";
  return wsh_pmd_close_code(r);
}

uint16_t wsh_pmd_inflate_message(wsh_pmd *c, uint8_t opcode, const uint8_t *in,
                                 size_t len, size_t limit, wsh_zbuf *out,
                                 const char **why) {
  wsh_pmd_result r = wsh_pmd_inflate(c, in, len, limit, out);

  if (r != WSH_PMD_OK)
    return result_code(r, why);
  if (opcode == 0x1 && !wsh_utf8_valid(out->data, out->len)) {
    *why = "invalid UTF-8 in text message";
    return 1007;
  }
  return 0;
}

/* Text: the bytes inflated since `from` are UTF-8 so far. */
static bool msg_text_ok(wsh_pmd_msg *m, size_t from) {
  size_t n = m->out.len - from;

  return !m->text || n == 0 ||
         wsh_utf8_feed(&m->utf8, m->out.data + from, n) == n;
}

uint16_t wsh_pmd_msg_begin(wsh_pmd_msg *m, wsh_pmd *p, bool text, size_t limit,
                           const char **why) {
  memset(m, 0, sizeof *m);
  m->p = p;
  m->text = text;
  m->utf8 = (wsh_utf8)WSH_UTF8_INIT;
  wsh_pmd_result r = wsh_pmd_inflate_begin(p, &m->out, limit);
  return r == WSH_PMD_OK ? 0 : result_code(r, why);
}

uint16_t wsh_pmd_msg_feed(wsh_pmd_msg *m, const uint8_t *in, size_t len,
                          const char **why) {
  size_t from = m->out.len;
  wsh_pmd_result r = wsh_pmd_inflate_feed(m->p, in, len);

  m->zlen += len;
  if (r != WSH_PMD_OK)
    return result_code(r, why);
  if (!msg_text_ok(m, from)) {
    *why = "invalid UTF-8 in text message";
    return 1007;
  }
  return 0;
}

uint16_t wsh_pmd_msg_end(wsh_pmd_msg *m, const char **why) {
  size_t from = m->out.len;
  wsh_pmd_result r = wsh_pmd_inflate_end(m->p);

  if (r != WSH_PMD_OK)
    return result_code(r, why);
  if (!msg_text_ok(m, from) || (m->text && !wsh_utf8_complete(&m->utf8))) {
    *why = "invalid UTF-8 in text message";
    return 1007;
  }
  return 0;
}

void wsh_pmd_msg_abort(wsh_pmd_msg *m) {
  if (m->p && m->p->in_message)
    wsh_pmd_inflate_end(m->p); /* resets a stream left mid-message */
  if (m->p)
    wsh_zbuf_free(&m->out, m->p->mem);
}
