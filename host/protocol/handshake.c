/*
 * handshake.c - the HTTP/1.1 upgrade: parses the request head with
 * http-parser, runs the RFC 6455 §4.2.1 checks, computes
 * Sec-WebSocket-Accept with libcrypto, negotiates the subprotocol and renders
 * the 101 or the refusal. Also the websock_request_* and websock_response_*
 * functions that plugins call from upgrade() and init(). No I/O here.
 */
#include "protocol/handshake.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "protocol/headers.h"

#define WSH_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WSH_MAX_REQUEST_HEADERS 100 /* past it: 431 */
#define WSH_MAX_KEY_LEN 128         /* longest key wsh_accept_key takes */

#define BASE64_CHARS                                                           \
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* req->state: which data callback ran last (http-parser may hand one URL,
 * name or value over in several pieces when the input is split), and flags. */
enum {
  ST_CB_NONE = 0,
  ST_CB_URL = 1,
  ST_CB_FIELD = 2,
  ST_CB_VALUE = 3,
  ST_CB_MASK = 3,
  ST_AFTER_LF = 1 << 2, /* the last head byte seen was LF */
  ST_DONE = 1 << 3      /* the head is complete */
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

/* Appends len bytes to the owned string *s (NULL counts as ""). */
static int str_append(char **s, const char *at, size_t len) {
  size_t old = *s ? strlen(*s) : 0;
  char *p = realloc(*s, old + len + 1);

  if (!p)
    return WEBSOCK_ENOMEM;
  if (len)
    memcpy(p + old, at, len);
  p[old + len] = '\0';
  *s = p;
  return 0;
}

/* Makes room for one more header in a growable array. */
static int grow_headers(wsh_header **headers, size_t n, size_t *cap) {
  size_t new_cap;
  wsh_header *h;

  if (n < *cap)
    return 0;
  new_cap = *cap ? *cap * 2 : 8;
  h = realloc(*headers, new_cap * sizeof *h);
  if (!h)
    return WEBSOCK_ENOMEM;
  *headers = h;
  *cap = new_cap;
  return 0;
}

static void free_headers(wsh_header *headers, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(headers[i].name);
    free(headers[i].value);
  }
  free(headers);
}

static bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* True if the comma-separated list contains token, with optional whitespace
 * around items; case-insensitive or exact. */
static bool list_has(const char *value, const char *token, bool nocase) {
  size_t tlen = strlen(token);

  while (value && *value) {
    const char *end = value + strcspn(value, ",");
    const char *b = value, *e = end;
    while (b < e && is_ows(*b))
      b++;
    while (e > b && is_ows(e[-1]))
      e--;
    if ((size_t)(e - b) == tlen && tlen > 0 &&
        (nocase ? strncasecmp(b, token, tlen) : strncmp(b, token, tlen)) == 0)
      return true;
    value = *end ? end + 1 : end;
  }
  return false;
}

/* ------------------------------------------------------------------------ */
/* Request headers                                                           */
/* ------------------------------------------------------------------------ */

static size_t header_count(const websock_request *req, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < req->nheaders; i++)
    n += strcasecmp(req->headers[i].name, name) == 0;
  return n;
}

/* True if any header called name has token in its comma list. */
static bool header_list_has(const websock_request *req, const char *name,
                            const char *token, bool nocase) {
  for (size_t i = 0; i < req->nheaders; i++) {
    const wsh_header *h = &req->headers[i];
    if (strcasecmp(h->name, name) == 0 && list_has(h->value, token, nocase))
      return true;
  }
  return false;
}

/* Gives every header a value ("" if it had none) and trims trailing
 * whitespace (http-parser already skips the leading one). */
static int finish_headers(websock_request *req) {
  for (size_t i = 0; i < req->nheaders; i++) {
    wsh_header *h = &req->headers[i];
    size_t len;
    if (!h->value && str_append(&h->value, "", 0) != 0)
      return 500;
    len = strlen(h->value);
    while (len > 0 && is_ows(h->value[len - 1]))
      h->value[--len] = '\0';
  }
  return 0;
}

/* An upgrade request has no body (RFC 6455 §4.1 sends none). */
static int check_no_body(const websock_request *req) {
  for (size_t i = 0; i < req->nheaders; i++) {
    const wsh_header *h = &req->headers[i];
    if (strcasecmp(h->name, "Transfer-Encoding") == 0)
      return 400;
    if (strcasecmp(h->name, "Content-Length") == 0 &&
        h->value[strspn(h->value, "0")] != '\0')
      return 400;
  }
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Request target                                                            */
/* ------------------------------------------------------------------------ */

static bool is_http_scheme(const char *s, size_t len) {
  static const char *const schemes[] = {"http", "https", "ws", "wss"};
  for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
    if (strlen(schemes[i]) == len && strncasecmp(s, schemes[i], len) == 0)
      return true;
  return false;
}

static int set_path_query(websock_request *req, const char *path, size_t plen,
                          const char *query, size_t qlen) {
  if (plen == 0 || path[0] != '/')
    return 400;
  req->path = strndup(path, plen);
  req->query = strndup(query, qlen);
  return req->path && req->query ? 0 : 500;
}

/* Splits the request target into path and query. Origin-form ("/a?b"), or
 * the absolute http(s)/ws(s) URI that RFC 6455 §4.2.1 also allows; no
 * fragment, no asterisk-form. */
static int parse_target(websock_request *req) {
  const char *url = req->url ? req->url : "";
  size_t len = strlen(url);
  struct http_parser_url u;
  bool absolute;

  if (len > UINT16_MAX)
    return 414;
  http_parser_url_init(&u);
  if (len == 0 || http_parser_parse_url(url, len, 0, &u) != 0 ||
      (u.field_set & (1 << UF_FRAGMENT)))
    return 400;
  absolute = u.field_set & (1 << UF_SCHEMA);
  if (absolute && !is_http_scheme(url + u.field_data[UF_SCHEMA].off,
                                  u.field_data[UF_SCHEMA].len))
    return 400;
  if (!(u.field_set & (1 << UF_PATH)))
    return absolute ? set_path_query(req, "/", 1, "", 0) : 400;
  return set_path_query(
      req, url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len,
      url + u.field_data[UF_QUERY].off,
      (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0);
}

/* ------------------------------------------------------------------------ */
/* http-parser callbacks                                                     */
/* ------------------------------------------------------------------------ */

/* Records the first failure status and stops the parser. */
static int fail(websock_request *req, int status) {
  if (req->status == 0)
    req->status = status;
  return -1;
}

static int last_cb(const websock_request *req) {
  return req->state & ST_CB_MASK;
}

static void set_last_cb(websock_request *req, int cb) {
  req->state = (req->state & ~ST_CB_MASK) | cb;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  websock_request *req = p->data;

  set_last_cb(req, ST_CB_URL);
  if (memchr(at, '\0', len))
    return fail(req, 400);
  return str_append(&req->url, at, len) ? fail(req, 500) : 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  websock_request *req = p->data;

  if (memchr(at, '\0', len))
    return fail(req, 400);
  if (last_cb(req) != ST_CB_FIELD) { /* a new header starts */
    if (grow_headers(&req->headers, req->nheaders, &req->cap_headers))
      return fail(req, 500);
    req->headers[req->nheaders++] = (wsh_header){NULL, NULL};
  }
  set_last_cb(req, ST_CB_FIELD);
  if (str_append(&req->headers[req->nheaders - 1].name, at, len))
    return fail(req, 500);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  websock_request *req = p->data;

  set_last_cb(req, ST_CB_VALUE);
  if (memchr(at, '\0', len))
    return fail(req, 400);
  if (str_append(&req->headers[req->nheaders - 1].value, at, len))
    return fail(req, 500);
  return 0;
}

/* Returns 1 (no body) so that on_message_complete follows at once. */
static int on_headers_complete(http_parser *p) {
  websock_request *req = p->data;
  int status = req->nheaders > WSH_MAX_REQUEST_HEADERS ? 431 : 0;

  if (status == 0)
    status = finish_headers(req);

  if (status == 0)
    status = parse_target(req);
  if (status == 0)
    status = check_no_body(req);
  if (status != 0)
    return fail(req, status);
  snprintf(req->method, sizeof req->method, "%s",
           http_method_str((enum http_method)p->method));
  return 1;
}

/* Stops after the head: what follows is WebSocket frames, not HTTP. */
static int on_message_complete(http_parser *p) {
  websock_request *req = p->data;

  req->state |= ST_DONE;
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ------------------------------------------------------------------------ */
/* Feeding                                                                   */
/* ------------------------------------------------------------------------ */

int wsh_request_new(websock_request **out, size_t max_header_bytes) {
  websock_request *req = calloc(1, sizeof *req);

  if (!req)
    return WEBSOCK_ENOMEM;
  http_parser_init(&req->parser, HTTP_REQUEST);
  req->parser.data = req;
  req->max_header_bytes = max_header_bytes;
  *out = req;
  return 0;
}

void wsh_request_free(websock_request *req) {
  if (!req)
    return;
  free(req->url);
  free(req->path);
  free(req->query);
  free_headers(req->headers, req->nheaders);
  free(req->peer_subject);
  free(req);
}

/* An obs-fold (a header line continued on the next, which starts with SP or
 * HTAB) is refused with 400, as RFC 7230 §3.2.4 allows, rather than
 * trusting how the parser would join the lines. */
static size_t obs_fold_at(const websock_request *req, const char *data,
                          size_t n) {
  bool after_lf = req->state & ST_AFTER_LF;

  for (size_t i = 0; i < n; i++) {
    if (after_lf && is_ows(data[i]))
      return i;
    after_lf = data[i] == '\n';
  }
  return n;
}

static void note_last_lf(websock_request *req, const char *data, size_t n) {
  if (n)
    req->state = data[n - 1] == '\n' ? req->state | ST_AFTER_LF
                                     : req->state & ~ST_AFTER_LF;
}

/* Records the first failure status and returns it, for wsh_request_feed. */
static int refuse(websock_request *req, int status) {
  fail(req, status);
  return req->status;
}

static int parse_error_status(const websock_request *req) {
  if (req->status != 0) /* set by a callback */
    return req->status;
  if (HTTP_PARSER_ERRNO(&req->parser) == HPE_HEADER_OVERFLOW)
    return 431;
  return 400;
}

int wsh_request_feed(websock_request *req, const char *data, size_t len,
                     size_t *consumed) {
  size_t room, n, fold, parsed;

  *consumed = 0;
  if (req->status != 0)
    return req->status;
  if (req->state & ST_DONE)
    return WSH_HS_DONE;
  if (len == 0) /* to http-parser, 0 bytes would mean EOF */
    return WSH_HS_NEED_MORE;
  /* Never let the parser see a byte past the limit. */
  room = req->max_header_bytes - req->header_bytes;
  n = len < room ? len : room;
  /* The parser never sees a folded line either. */
  fold = obs_fold_at(req, data, n);
  parsed = fold
               ? http_parser_execute(&req->parser, &parser_settings, data, fold)
               : 0;
  req->header_bytes += parsed;
  note_last_lf(req, data, parsed);
  if (req->state & ST_DONE) {
    *consumed = parsed;
    return WSH_HS_DONE;
  }
  if (HTTP_PARSER_ERRNO(&req->parser) != HPE_OK || parsed != fold)
    return refuse(req, parse_error_status(req));
  if (fold < n)
    return refuse(req, 400);
  if (n < len) /* the head goes on past max_header_bytes */
    return refuse(req, 431);
  *consumed = len;
  return WSH_HS_NEED_MORE;
}

/* ------------------------------------------------------------------------ */
/* The RFC 6455 §4.2.1 checks                                                */
/* ------------------------------------------------------------------------ */

static bool is_complete(const websock_request *req) {
  return (req->state & ST_DONE) && req->status == 0;
}

static bool is_get(const websock_request *req) {
  return req->parser.method == HTTP_GET;
}

static bool is_http11(const websock_request *req) {
  return req->parser.http_major > 1 ||
         (req->parser.http_major == 1 && req->parser.http_minor >= 1);
}

static bool has_one_host(const websock_request *req) {
  return header_count(req, "Host") == 1;
}

static bool upgrade_names_websocket(const websock_request *req) {
  return wsh_request_wants_websocket(req);
}

static bool connection_names_upgrade(const websock_request *req) {
  return header_list_has(req, "Connection", "upgrade", true);
}

/* Base64 of 16 bytes: 22 characters of the alphabet, then "==". OpenSSL's
 * EVP_DecodeBlock is too lenient here (it takes '=' anywhere). */
static bool has_valid_key(const websock_request *req) {
  const char *key = websock_request_header(req, "Sec-WebSocket-Key");

  return header_count(req, "Sec-WebSocket-Key") == 1 && strlen(key) == 24 &&
         strspn(key, BASE64_CHARS) == 22 && strcmp(key + 22, "==") == 0;
}

static bool is_version_13(const websock_request *req) {
  const char *v = websock_request_header(req, "Sec-WebSocket-Version");

  return header_count(req, "Sec-WebSocket-Version") == 1 &&
         strcmp(v, "13") == 0;
}

/* In this order: the request line, then the headers, the version last, so
 * that a request that is good but for its version gets 426 (which tells the
 * client the version to use) and any other defect gets 400 first. */
static const struct upgrade_check {
  bool (*ok)(const websock_request *req);
  int status;
  const char *why;
} upgrade_checks[] = {
    {is_complete, 400, "incomplete request"},
    {is_get, 400, "method must be GET"},
    {is_http11, 400, "HTTP/1.1 or later required"},
    {has_one_host, 400, "exactly one Host header required"},
    {upgrade_names_websocket, 400, "Upgrade must name websocket"},
    {connection_names_upgrade, 400, "Connection must name upgrade"},
    {has_valid_key, 400,
     "Sec-WebSocket-Key must be one base64-encoded 16-byte value"},
    {is_version_13, 426, "Sec-WebSocket-Version must be 13"},
};

int wsh_request_check_upgrade(const websock_request *req, const char **why) {
  size_t n = sizeof upgrade_checks / sizeof upgrade_checks[0];

  for (size_t i = 0; i < n; i++) {
    if (!upgrade_checks[i].ok(req)) {
      if (why)
        *why = upgrade_checks[i].why;
      return upgrade_checks[i].status;
    }
  }
  if (why)
    *why = "ok";
  return 0;
}

bool wsh_request_wants_websocket(const websock_request *req) {
  return header_list_has(req, "Upgrade", "websocket", true);
}

bool wsh_token_list_has(const char *value, const char *token) {
  return token && list_has(value, token, true);
}

/* SHA-1 fetched from the provider once, not per handshake (EVP_sha1()
 * makes EVP_Digest fetch it every time: a tenth of a handshake's work). */
static EVP_MD *sha1_fetched;
static pthread_once_t sha1_once = PTHREAD_ONCE_INIT;

static void sha1_fetch(void) {
  sha1_fetched = EVP_MD_fetch(NULL, "SHA1", NULL);
}

static const EVP_MD *sha1_md(void) {
  pthread_once(&sha1_once, sha1_fetch);
  return sha1_fetched ? sha1_fetched : EVP_sha1();
}

int wsh_accept_key(const char *key, char out[29]) {
  char buf[WSH_MAX_KEY_LEN + sizeof WSH_GUID];
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  size_t klen = key ? strlen(key) : 0;

  if (klen == 0 || klen > WSH_MAX_KEY_LEN)
    return WEBSOCK_EINVAL;
  memcpy(buf, key, klen);
  memcpy(buf + klen, WSH_GUID, sizeof WSH_GUID - 1);
  if (!EVP_Digest(buf, klen + sizeof WSH_GUID - 1, digest, &dlen, sha1_md(),
                  NULL) ||
      dlen != 20)
    return WEBSOCK_EINVAL;
  EVP_EncodeBlock((unsigned char *)out, digest, (int)dlen);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Subprotocols (tokens compare case-sensitively)                            */
/* ------------------------------------------------------------------------ */

bool wsh_request_offers_subprotocol(const websock_request *req,
                                    const char *proto) {
  return req && proto &&
         header_list_has(req, "Sec-WebSocket-Protocol", proto, false);
}

const char *wsh_negotiate_subprotocol(const websock_request *req,
                                      char *const *server, size_t nserver) {
  for (size_t i = 0; i < nserver; i++)
    if (wsh_request_offers_subprotocol(req, server[i]))
      return server[i];
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* websock_request_* (websock.h)                                             */
/* ------------------------------------------------------------------------ */

const char *websock_request_method(const websock_request *req) {
  return req->method;
}

const char *websock_request_param(const websock_request *req,
                                  const char *name) {
  if (!req || !name)
    return NULL;
  for (size_t i = 0; i < req->nparams; i++)
    if (strcmp(req->params[i].name, name) == 0)
      return req->params[i].value;
  return NULL;
}

void *websock_request_context(const websock_request *req) {
  return req ? req->context : NULL;
}

const char *websock_request_path(const websock_request *req) {
  return req->path ? req->path : "";
}

const char *websock_request_query(const websock_request *req) {
  return req->query ? req->query : "";
}

const char *websock_request_header(const websock_request *req,
                                   const char *name) {
  for (size_t i = 0; name && i < req->nheaders; i++)
    if (strcasecmp(req->headers[i].name, name) == 0)
      return req->headers[i].value;
  return NULL;
}

size_t websock_request_header_count(const websock_request *req) {
  return req->nheaders;
}

int websock_request_header_at(const websock_request *req, size_t i,
                              const char **name, const char **value) {
  if (i >= req->nheaders)
    return WEBSOCK_ENOENT;
  if (name)
    *name = req->headers[i].name;
  if (value)
    *value = req->headers[i].value;
  return 0;
}

const char *websock_request_remote_addr(const websock_request *req) {
  return req->remote_addr;
}

int websock_request_tls(const websock_request *req) {
  return req->tls ? 1 : 0;
}

const char *websock_request_peer_subject(const websock_request *req) {
  return req->peer_subject;
}

const char *websock_request_subprotocol(const websock_request *req) {
  return req->subprotocol;
}

/* ------------------------------------------------------------------------ */
/* The response                                                              */
/* ------------------------------------------------------------------------ */

void wsh_response_init(websock_response *resp, const websock_request *req) {
  memset(resp, 0, sizeof *resp);
  resp->status = 101;
  resp->req = req;
}

void wsh_response_free(websock_response *resp) {
  if (!resp)
    return;
  free_headers(resp->headers, resp->nheaders);
  free(resp->subprotocol);
  free(resp->body);
  free(resp->extensions);
  resp->headers = NULL;
  resp->nheaders = resp->cap_headers = 0;
  resp->subprotocol = resp->body = resp->extensions = NULL;
}

/* Headers the host writes itself, which a plugin may not add. */
int websock_response_add_header(websock_response *resp, const char *name,
                                const char *value) {
  char *n, *v;

  if (!resp || !wsh_header_addable(name, value))
    return WEBSOCK_EINVAL;
  n = strdup(name);
  if (!n)
    goto out_nomem;
  v = strdup(value);
  if (!v)
    goto out_free_name;
  if (grow_headers(&resp->headers, resp->nheaders, &resp->cap_headers))
    goto out_free_value;
  resp->headers[resp->nheaders++] = (wsh_header){n, v};
  return 0;

out_free_value:
  free(v);
out_free_name:
  free(n);
out_nomem:
  return WEBSOCK_ENOMEM;
}

int websock_response_set_subprotocol(websock_response *resp,
                                     const char *protocol) {
  char *copy;

  if (!resp || !protocol || !wsh_header_token(protocol) ||
      !wsh_request_offers_subprotocol(resp->req, protocol))
    return WEBSOCK_EINVAL;
  copy = strdup(protocol);
  if (!copy)
    return WEBSOCK_ENOMEM;
  free(resp->subprotocol);
  resp->subprotocol = copy;
  return 0;
}

int websock_response_set_body(websock_response *resp, const char *body) {
  char *copy = NULL;

  if (!resp)
    return WEBSOCK_EINVAL;
  if (body && !(copy = strdup(body)))
    return WEBSOCK_ENOMEM;
  free(resp->body);
  resp->body = copy;
  return 0;
}

void websock_response_set_state(websock_response *resp, void *state) {
  resp->state = state;
}

static bool has_extra_header(const websock_response *resp, const char *name) {
  for (size_t i = 0; i < resp->nheaders; i++)
    if (strcasecmp(resp->headers[i].name, name) == 0)
      return true;
  return false;
}

/* The response head is built in one growing buffer (open_memstream costs
 * an 8 KiB zeroed buffer per response, a fifth of a connection's work). */
typedef struct strbuf {
  char *p;
  size_t len, cap;
  bool failed;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) {
  sb_put(b, s, strlen(s));
}

static void sb_header(strbuf *b, const char *name, const char *value) {
  sb_puts(b, name);
  sb_put(b, ": ", 2);
  sb_puts(b, value);
  sb_put(b, "\r\n", 2);
}

static void render_extra_headers(strbuf *b, const websock_response *resp) {
  for (size_t i = 0; i < resp->nheaders; i++)
    sb_header(b, resp->headers[i].name, resp->headers[i].value);
}

static void render_101(strbuf *b, const websock_response *resp,
                       const char *accept_key) {
  static const char head[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n";
  sb_put(b, head, sizeof(head) - 1);
  sb_header(b, "Sec-WebSocket-Accept", accept_key);
  if (resp->subprotocol)
    sb_header(b, "Sec-WebSocket-Protocol", resp->subprotocol);
  if (resp->extensions)
    sb_header(b, "Sec-WebSocket-Extensions", resp->extensions);
  render_extra_headers(b, resp);
  sb_put(b, "\r\n", 2);
}

/* A plugin's own Content-Type replaces the default text/plain; a HEAD
 * request gets the same head and no body. */
static void render_refusal(strbuf *b, const websock_response *resp) {
  const char *reason = wsh_status_text(resp->status);
  size_t body_len = resp->body ? strlen(resp->body) : strlen(reason) + 1;
  char line[96];

  snprintf(line, sizeof(line), "HTTP/1.1 %d ", resp->status);
  sb_puts(b, line);
  sb_puts(b, reason);
  sb_put(b, "\r\n", 2);
  render_extra_headers(b, resp);
  if (!has_extra_header(resp, "Content-Type"))
    sb_puts(b, "Content-Type: text/plain; charset=utf-8\r\n");
  snprintf(line, sizeof(line), "Content-Length: %zu\r\nConnection: close\r\n",
           body_len);
  sb_puts(b, line);
  if (resp->status == 426)
    sb_puts(b, "Sec-WebSocket-Version: 13\r\n");
  sb_put(b, "\r\n", 2);
  if (resp->req && strcmp(resp->req->method, "HEAD") == 0)
    return; /* the headers a GET would get, no body */
  if (resp->body) {
    sb_puts(b, resp->body);
  } else {
    sb_puts(b, reason);
    sb_put(b, "\n", 1);
  }
}

int wsh_response_render(const websock_response *resp, const char *accept_key,
                        char **out, size_t *out_len) {
  strbuf b = {0};

  if (resp->status == 101 && !accept_key)
    return WEBSOCK_EINVAL;
  if (resp->status == 101)
    render_101(&b, resp, accept_key);
  else
    render_refusal(&b, resp);
  if (b.failed) {
    free(b.p);
    return WEBSOCK_ENOMEM;
  }
  *out = b.p;
  *out_len = b.len;
  return 0;
}

const char *wsh_status_text(int status) {
  const char *s = http_status_str((enum http_status)status);

  return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}
