/*
 * fuzz_handshake.c - the HTTP upgrade request parser and the responses
 * (host/protocol/handshake.c). The input is the client's bytes. Fed whole, split in
 * two at a point the input chooses, and (up to 2 KiB) one byte at a time,
 * each piece in a block of exactly its size, the parser must answer the
 * same status, consume the same bytes and see the same request (method,
 * target, version, every header). A complete request then goes through the
 * RFC 6455 §4.2.1 checks, the header look-ups and token lists (against a
 * plain implementation here), subprotocol negotiation against a fixed list,
 * and both responses are rendered, a 101 and a refusal, with the request's
 * header names and values offered back as extra headers: the head must have
 * exactly the lines expected, so no value smuggles in a CR or LF, and the
 * refusal's Content-Length must be its body's.
 */
#include <stdbool.h>
#include <strings.h>

#include "fuzz.h"
#include "protocol/handshake.h"

#define MAX_HEAD 8192
#define BYTEWISE_MAX 2048
#define RFC_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFC_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

static char *const server_protocols[] = {"chat", "v2.chat", "superchat",
                                         "graphql-ws", "mqtt"};
#define NPROTOCOLS (sizeof server_protocols / sizeof server_protocols[0])

/* ------------------------------------------------------------------------ */
/* Parsing in pieces                                                         */
/* ------------------------------------------------------------------------ */

typedef struct parsed {
  websock_request *req;
  int status;
  size_t consumed; /* bytes the request took, over all pieces */
} parsed;

/* Feeds data[0..size) cut at cuts[0..ncuts) (ascending). */
static parsed parse(const uint8_t *data, size_t size, const size_t *cuts,
                    size_t ncuts) {
  parsed p = {NULL, WSH_HS_NEED_MORE, 0};
  size_t start = 0, again;

  FUZZ_CHECK(wsh_request_new(&p.req, MAX_HEAD) == 0, "wsh_request_new");
  for (size_t i = 0; i <= ncuts && p.status == WSH_HS_NEED_MORE; i++) {
    size_t end = i < ncuts ? cuts[i] : size, c = (size_t)-1;
    char *piece = (char *)fuzz_dup(data + start, end - start);

    p.status = wsh_request_feed(p.req, piece, end - start, &c);
    free(piece);
    FUZZ_CHECK(c <= end - start, "consumed more than given");
    if (p.status == WSH_HS_NEED_MORE)
      FUZZ_CHECK(c == end - start, "need more, yet bytes left over");
    else if (p.status != WSH_HS_DONE)
      FUZZ_CHECK(c == 0, "an error consumed bytes");
    p.consumed += c;
    start = end;
  }
  if (p.status != WSH_HS_NEED_MORE) { /* the answer sticks */
    FUZZ_CHECK(wsh_request_feed(p.req, "x", 1, &again) == p.status &&
                   again == 0,
               "a finished request took more");
  } else {
    FUZZ_CHECK(p.consumed == size, "need more, yet bytes left over");
  }
  FUZZ_CHECK(p.status == WSH_HS_NEED_MORE || p.status == WSH_HS_DONE ||
                 (p.status >= 400 && p.status <= 599),
             "status");
  return p;
}

static bool str_eq(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

static void expect_same_request(const parsed *a, const parsed *b,
                                const char *what) {
  const websock_request *x = a->req, *y = b->req;
  bool same = a->status == b->status;

  if (same && a->status == WSH_HS_DONE) {
    same = a->consumed == b->consumed && str_eq(x->method, y->method) &&
           str_eq(x->url, y->url) && str_eq(x->path, y->path) &&
           str_eq(x->query, y->query) &&
           x->parser.http_major == y->parser.http_major &&
           x->parser.http_minor == y->parser.http_minor &&
           x->nheaders == y->nheaders;
    for (size_t i = 0; same && i < x->nheaders; i++)
      same = str_eq(x->headers[i].name, y->headers[i].name) &&
             str_eq(x->headers[i].value, y->headers[i].value);
  }
  if (!same)
    fprintf(stderr, "whole: status %d, consumed %zu; %s: %d, %zu\n", a->status,
            a->consumed, what, b->status, b->consumed);
  FUZZ_CHECK(same, what);
}

/* ------------------------------------------------------------------------ */
/* Plain versions of what handshake.c decides                                */
/* ------------------------------------------------------------------------ */

/* A comma list holds token, items trimmed of spaces and tabs. */
static bool list_has(const char *v, const char *token, bool nocase) {
  size_t tlen = strlen(token);

  for (;;) {
    const char *end = strchr(v, ',');
    size_t n = end ? (size_t)(end - v) : strlen(v);

    while (n && (*v == ' ' || *v == '\t'))
      v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
      n--;
    if (n == tlen && tlen &&
        (nocase ? strncasecmp(v, token, n) : strncmp(v, token, n)) == 0)
      return true;
    if (!end)
      return false;
    v = end + 1;
  }
}

static bool any_header_has(const websock_request *req, const char *name,
                           const char *token, bool nocase) {
  for (size_t i = 0; i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0 &&
        list_has(req->headers[i].value, token, nocase))
      return true;
  return false;
}

static bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool is_token(const char *s) {
  for (const char *p = s; *p; p++)
    if (!is_tchar((unsigned char)*p))
      return false;
  return *s != '\0';
}

static bool is_sendable_value(const char *s) {
  for (; *s; s++)
    if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7F)
      return false;
  return true;
}

static bool is_host_owned(const char *name) {
  return strcasecmp(name, "Upgrade") == 0 ||
         strcasecmp(name, "Connection") == 0 ||
         strcasecmp(name, "Content-Length") == 0 ||
         strcasecmp(name, "Transfer-Encoding") == 0 ||
         strncasecmp(name, "Sec-WebSocket-", 14) == 0;
}

/* ------------------------------------------------------------------------ */
/* A complete request                                                        */
/* ------------------------------------------------------------------------ */

static void check_headers(const websock_request *req) {
  size_t n = websock_request_header_count(req);
  const char *name, *value;

  FUZZ_CHECK(n == req->nheaders, "header count");
  for (size_t i = 0; i < n; i++) {
    const char *first = NULL;

    FUZZ_CHECK(websock_request_header_at(req, i, &name, &value) == 0,
               "header_at");
    FUZZ_CHECK(name && value && *name, "a header without a name or value");
    FUZZ_CHECK(!*value || (value[0] != ' ' && value[0] != '\t' &&
                           value[strlen(value) - 1] != ' ' &&
                           value[strlen(value) - 1] != '\t'),
               "a header value with whitespace around it");
    for (size_t j = 0; !first && j < n; j++)
      if (strcasecmp(req->headers[j].name, name) == 0)
        first = req->headers[j].value;
    FUZZ_CHECK(websock_request_header(req, name) == first,
               "header look-up did not find the first of its name");
    FUZZ_CHECK(wsh_token_list_has(value, "upgrade") ==
                   list_has(value, "upgrade", true),
               "wsh_token_list_has");
  }
  FUZZ_CHECK(websock_request_header_at(req, n, &name, &value) == WEBSOCK_ENOENT,
             "header_at past the end");
  FUZZ_CHECK(wsh_request_wants_websocket(req) ==
                 any_header_has(req, "Upgrade", "websocket", true),
             "wsh_request_wants_websocket");
}

static void check_upgrade(const websock_request *req) {
  const char *why = NULL;
  int status = wsh_request_check_upgrade(req, &why);
  const char *key = websock_request_header(req, "Sec-WebSocket-Key");

  FUZZ_CHECK(why != NULL, "no reason");
  FUZZ_CHECK(status == 0 || status == 400 || status == 426, "check status");
  if (status != 0)
    return;
  FUZZ_CHECK(strcmp(websock_request_method(req), "GET") == 0, "not GET");
  FUZZ_CHECK(key && strlen(key) == 24, "no key");
  FUZZ_CHECK(any_header_has(req, "Connection", "upgrade", true),
             "no Connection: upgrade");
  FUZZ_CHECK(wsh_request_wants_websocket(req), "no Upgrade: websocket");
  FUZZ_CHECK(str_eq(websock_request_header(req, "Sec-WebSocket-Version"), "13"),
             "not version 13");
}

/* The server's first protocol that the client offers, checked. */
static const char *negotiate(const websock_request *req) {
  const char *chosen =
      wsh_negotiate_subprotocol(req, server_protocols, NPROTOCOLS);

  for (size_t i = 0; i < NPROTOCOLS; i++) {
    bool offered = any_header_has(req, "Sec-WebSocket-Protocol",
                                  server_protocols[i], false);

    FUZZ_CHECK(wsh_request_offers_subprotocol(req, server_protocols[i]) ==
                   offered,
               "wsh_request_offers_subprotocol");
    if (offered) {
      FUZZ_CHECK(chosen == server_protocols[i], "not the first offered");
      return chosen;
    }
  }
  FUZZ_CHECK(chosen == NULL, "chose a protocol not offered");
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

/* Offers a header to resp; true if it had to be taken. */
static bool offer_header(websock_response *resp, const char *name,
                         const char *value) {
  bool ok = is_token(name) && !is_host_owned(name) && is_sendable_value(value);

  FUZZ_CHECK(websock_response_add_header(resp, name, value) ==
                 (ok ? 0 : WEBSOCK_EINVAL),
             "websock_response_add_header accepted or refused wrongly");
  return ok;
}

/* Offers every request header back as an extra header, by its own name and
 * as X-Echo, and raw bytes of the input (which hold CR and LF) as X-Raw.
 * Returns how many were taken; *content_type: one was named that. */
static size_t add_echo_headers(websock_response *resp,
                               const websock_request *req, const char *raw,
                               bool *content_type) {
  size_t taken = offer_header(resp, "X-Raw", raw);

  *content_type = false;
  for (size_t i = 0; i < req->nheaders && i < 32; i++) {
    const char *name = req->headers[i].name, *value = req->headers[i].value;
    bool own = offer_header(resp, name, value);

    taken += own + offer_header(resp, "X-Echo", value);
    *content_type |= own && strcasecmp(name, "Content-Type") == 0;
  }
  return taken;
}

/* The head of a rendered response: `lines` lines (the status line and the
 * headers), each ended by CRLF, no other CR or LF and no NUL, then a blank
 * line. Returns the head's length, blank line included. */
static size_t check_head(const char *out, size_t len, size_t lines) {
  const char *blank = memmem(out, len, "\r\n\r\n", 4);
  size_t end, crlf = 0;

  FUZZ_CHECK(blank != NULL, "no blank line");
  end = (size_t)(blank - out) + 2; /* through the last header's CRLF */
  FUZZ_CHECK(memchr(out, '\0', end) == NULL, "a NUL in the head");
  for (size_t i = 0; i < end; i++) {
    if (out[i] == '\r') {
      FUZZ_CHECK(out[i + 1] == '\n', "a bare CR in the head");
      crlf++;
    } else if (out[i] == '\n') {
      FUZZ_CHECK(i > 0 && out[i - 1] == '\r', "a bare LF in the head");
    }
  }
  if (crlf != lines)
    fprintf(stderr, "%zu lines, expected %zu:\n%.*s\n", crlf, lines, (int)end,
            out);
  FUZZ_CHECK(crlf == lines, "the head has other lines than expected");
  return end + 2;
}

static void render_101(const websock_request *req, const char *chosen,
                       const char *raw) {
  const char *key = websock_request_header(req, "Sec-WebSocket-Key");
  char accept[29] = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", *out = NULL, line[64];
  websock_response resp;
  size_t len = 0, head, extra;
  bool ctype;

  if (key) {
    size_t klen = strlen(key);
    int r = wsh_accept_key(key, accept);

    FUZZ_CHECK(r == (klen >= 1 && klen <= 128 ? 0 : WEBSOCK_EINVAL),
               "wsh_accept_key");
    FUZZ_CHECK(r || (strlen(accept) == 28 && accept[27] == '='),
               "accept key form");
    FUZZ_CHECK(strcmp(key, RFC_KEY) != 0 || strcmp(accept, RFC_ACCEPT) == 0,
               "the RFC's accept key");
  }
  wsh_response_init(&resp, req);
  for (size_t i = 0; i < req->nheaders && i < 32; i++) {
    const char *v = req->headers[i].value;
    bool ok =
        is_token(v) && any_header_has(req, "Sec-WebSocket-Protocol", v, false);

    FUZZ_CHECK(websock_response_set_subprotocol(&resp, v) ==
                   (ok ? 0 : WEBSOCK_EINVAL),
               "websock_response_set_subprotocol");
  }
  if (chosen) /* what the host does after negotiating */
    FUZZ_CHECK(websock_response_set_subprotocol(&resp, chosen) == 0,
               "setting the negotiated protocol");
  extra = add_echo_headers(&resp, req, raw, &ctype);
  FUZZ_CHECK(wsh_response_render(&resp, accept, &out, &len) == 0, "render");
  head = check_head(out, len, 4 + (resp.subprotocol != NULL) + extra);
  FUZZ_CHECK(head == len, "bytes after the 101 head");
  snprintf(line, sizeof line, "\r\nSec-WebSocket-Accept: %s\r\n", accept);
  FUZZ_CHECK(memmem(out, len, line, strlen(line)) != NULL, "no accept key");
  free(out);
  FUZZ_CHECK(wsh_response_render(&resp, NULL, &out, &len) == WEBSOCK_EINVAL,
             "a 101 without an accept key");
  wsh_response_free(&resp);
}

static void render_refusal(const websock_request *req, int status,
                           const char *raw) {
  websock_response resp;
  const char *body = req->nheaders % 2 ? raw : NULL;
  char *out = NULL, cl[64];
  size_t len = 0, head, extra, body_len;
  bool ctype;

  wsh_response_init(&resp, req);
  resp.status = status;
  if (body)
    FUZZ_CHECK(websock_response_set_body(&resp, body) == 0, "set_body");
  extra = add_echo_headers(&resp, req, raw, &ctype);
  FUZZ_CHECK(wsh_response_render(&resp, NULL, &out, &len) == 0, "render");
  head = check_head(out, len, 1 + extra + !ctype + 2 + (status == 426));
  body_len = len - head;
  FUZZ_CHECK(body ? body_len == strlen(body)
                  : body_len == strlen(wsh_status_text(status)) + 1,
             "body");
  snprintf(cl, sizeof cl, "\r\nContent-Length: %zu\r\n", body_len);
  FUZZ_CHECK(memmem(out, head, cl, strlen(cl)) != NULL, "Content-Length");
  free(out);
  wsh_response_free(&resp);
}

/* raw: bytes of the input as a string (the bytes after the head, or else
 * the head's first 256), offered as a header value and a body. */
static void check_complete(const websock_request *req, const char *raw) {
  const char *path = websock_request_path(req);
  const char *chosen;
  const char *why;
  int status;

  FUZZ_CHECK(path[0] == '/', "path does not start with '/'");
  FUZZ_CHECK(websock_request_query(req) != NULL, "no query");
  check_headers(req);
  check_upgrade(req);
  chosen = negotiate(req);
  FUZZ_CHECK(websock_response_set_subprotocol(NULL, "chat") == WEBSOCK_EINVAL,
             "set_subprotocol without a response");
  render_101(req, chosen, raw);
  status = wsh_request_check_upgrade(req, &why);
  render_refusal(req, status ? status : 403, raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t cut =
      size ? (data[0] * 131u + data[size - 1] * 7u + size) % (size + 1) : 0;
  parsed whole = parse(data, size, NULL, 0);
  parsed split = parse(data, size, &cut, 1);

  expect_same_request(&whole, &split, "split in two");
  wsh_request_free(split.req);
  if (size <= BYTEWISE_MAX) {
    size_t *cuts = malloc((size ? size : 1) * sizeof *cuts);
    parsed bytes;

    FUZZ_CHECK(cuts != NULL, "out of memory");
    for (size_t i = 0; i < size; i++)
      cuts[i] = i + 1;
    bytes = parse(data, size, cuts, size ? size - 1 : 0);
    expect_same_request(&whole, &bytes, "one byte at a time");
    wsh_request_free(bytes.req);
    free(cuts);
  }
  if (whole.status == WSH_HS_DONE) {
    size_t from = whole.consumed < size ? whole.consumed : 0;
    size_t n = size - from < 256 ? size - from : 256;
    char *raw = malloc(n + 1);

    FUZZ_CHECK(raw != NULL, "out of memory");
    memcpy(raw, data + from, n);
    raw[n] = '\0'; /* a C string: up to the first NUL */
    check_complete(whole.req, raw);
    free(raw);
  }
  wsh_request_free(whole.req);
  return 0;
}
