/*
 * chat.c - chat rooms. Each connection joins one room (the topic
 * "chat:ROOM"); each text message from a member reaches every member of the
 * room, the sender included, as one line of JSON:
 *
 *   {"type":"join","room":"lobby","user":"alice"}
 *   {"type":"msg","room":"lobby","user":"alice","text":"hi"}
 *   {"type":"leave","room":"lobby","user":"alice"}
 *
 * Connect to ROUTE?room=ROOM&name=NAME (both optional, percent-encoded:
 * room "lobby", name "anon-N"). ROUTE/ROOM names the room too, but only once
 * the host routes by path prefix: today a request must name the route's path
 * exactly, so the query is the way. A room is 1-64 of A-Z a-z 0-9 . _ -; a
 * name is 1 to max_name bytes of UTF-8 without control characters. Anything
 * else is closed with 1008 and a reason; binary messages with 1003.
 *
 * [options]:
 *   max_name = 32        longest name, in bytes
 *   default_room = lobby
 *   fanout = publish     websock_publish(): each member pushes the line in its
 *                        own handle_info (the default)
 *          | broadcast   websock_broadcast(): the frame is built once and its
 *                        bytes shared by every member (for benchmarks)
 *   announce = on        on: the join and leave lines above go to the room;
 *                        off: only messages do. Each join line reaches every
 *                        member, so filling a room of N with announcements
 *                        on costs N²/2 deliveries (50 million for 10,000):
 *                        large rooms, and the fan-out benchmark, turn it off
 *
 * Any other [options] key is refused at load (option_keys).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websock.h>

#define ROOM_MAX 64
#define TOPIC_PREFIX "chat:"

/* Set by load() before any connection and only read afterwards. Each loaded
 * generation is its own copy of this file, hence of these. */
static size_t max_name = 32;
static char default_room[ROOM_MAX + 1] = "lobby";
static bool use_broadcast;
static bool announce = true;
static atomic_uint anon_count;

typedef struct chat_conn {
  char topic[sizeof(TOPIC_PREFIX) + ROOM_MAX]; /* "chat:ROOM" */
  char *name;
} chat_conn;

static const char *room_of(const chat_conn *cc) {
  return cc->topic + sizeof(TOPIC_PREFIX) - 1;
}

/* ---- names and rooms ------------------------------------------------------
 */

static bool valid_room(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= ROOM_MAX &&
         strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._-") == n;
}

/* UTF-8 (no overlong forms, surrogates, or values past U+10FFFF) without
 * control characters. */
static bool valid_name(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  size_t len = strlen(s);
  if (len == 0 || len > max_name)
    return false;
  for (size_t i = 0; i < len;) {
    unsigned c = p[i], n, cp;
    if (c < 0x20 || c == 0x7f)
      return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF)
      n = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
      n = 2, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
      n = 3, cp = c & 0x07;
    else
      return false;
    if (len - i <= n)
      return false;
    for (unsigned k = 1; k <= n; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

static int hex(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Percent-decodes s[0..n) ('+' is a space) into a new string. A '%' not
 * followed by two hex digits stays as it is. */
static char *url_decode(const char *s, size_t n) {
  char *out = malloc(n + 1), *w = out;
  if (!out)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '+') {
      *w++ = ' ';
    } else if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 &&
               hex(s[i + 2]) >= 0) {
      *w++ = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      *w++ = s[i];
    }
  }
  *w = '\0';
  return out;
}

/* The decoded value of the first `key=` in the query, NULL if absent (or out
 * of memory: then *oom is set). */
static char *query_param(const char *query, const char *key, bool *oom) {
  size_t klen = strlen(key);
  for (const char *p = query; *p;) {
    size_t n = strcspn(p, "&");
    if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
      char *v = url_decode(p + klen + 1, n - klen - 1);
      if (!v)
        *oom = true;
      return v;
    }
    p += n + (p[n] == '&');
  }
  return NULL;
}

/* ROUTE/ROOM: the room named by the path, if the host ever hands us one. */
static char *path_room(websock_conn *conn, const websock_request *req) {
  const char *route = websock_conn_route(conn);
  const char *path = websock_request_path(req);
  size_t rlen = route ? strlen(route) : 0;
  if (!route || strncmp(path, route, rlen) != 0 || path[rlen] != '/' ||
      !path[rlen + 1])
    return NULL;
  return url_decode(path + rlen + 1, strlen(path + rlen + 1));
}

/* ---- JSON lines -----------------------------------------------------------
 */

typedef struct buf {
  char *p;
  size_t len, cap;
  bool oom;
} buf;

static void put(buf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 128;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s) {
  put(b, s, strlen(s));
}

/* A JSON string (RFC 8259): quotes, backslashes and control characters
 * escaped; the rest, valid UTF-8, copied as it is. */
static void put_json_string(buf *b, const char *s, size_t n) {
  put(b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    put(b, s + start, i - start);
    start = i + 1;
    char esc[8];
    switch (c) {
    case '"':
      puts_(b, "\\\"");
      break;
    case '\\':
      puts_(b, "\\\\");
      break;
    case '\b':
      puts_(b, "\\b");
      break;
    case '\f':
      puts_(b, "\\f");
      break;
    case '\n':
      puts_(b, "\\n");
      break;
    case '\r':
      puts_(b, "\\r");
      break;
    case '\t':
      puts_(b, "\\t");
      break;
    default:
      snprintf(esc, sizeof(esc), "\\u%04x", c);
      puts_(b, esc);
    }
  }
  put(b, s + start, n - start);
  put(b, "\"", 1);
}

/* {"type":TYPE,"room":ROOM,"user":NAME[,"text":TEXT]} to the room. */
static int chat_send(websock_host *host, const chat_conn *cc, const char *type,
                     const uint8_t *text, size_t len) {
  buf b = {0};
  puts_(&b, "{\"type\":\"");
  puts_(&b, type);
  puts_(&b, "\",\"room\":");
  put_json_string(&b, room_of(cc), strlen(room_of(cc)));
  puts_(&b, ",\"user\":");
  put_json_string(&b, cc->name, strlen(cc->name));
  if (text) {
    puts_(&b, ",\"text\":");
    put_json_string(&b, (const char *)text, len);
  }
  puts_(&b, "}");
  int rc = WEBSOCK_ENOMEM;
  if (!b.oom)
    rc = use_broadcast
             ? websock_broadcast(host, cc->topic, WEBSOCK_OP_TEXT, b.p, b.len)
             : websock_publish(host, cc->topic, b.p, b.len);
  free(b.p);
  return rc;
}

/* ---- callbacks ------------------------------------------------------------
 */

static int chat_load(const websock_options *options) {
  const char *v = websock_option(options, "max_name");
  if (v) {
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || n < 1 || n > 1024)
      return -1;
    max_name = n;
  }
  v = websock_option(options, "default_room");
  if (v) {
    if (!valid_room(v))
      return -1;
    snprintf(default_room, sizeof(default_room), "%s", v);
  }
  v = websock_option(options, "fanout");
  if (v && strcmp(v, "broadcast") != 0 && strcmp(v, "publish") != 0)
    return -1;
  use_broadcast = v && strcmp(v, "broadcast") == 0;
  v = websock_option(options, "announce");
  if (v && strcmp(v, "on") != 0 && strcmp(v, "off") != 0)
    return -1;
  announce = !v || strcmp(v, "on") == 0;
  return 0;
}

/* The room and name the request asks for, checked; or a close reason. */
static const char *chat_setup(websock_conn *conn, chat_conn *cc) {
  const websock_request *req = websock_conn_request(conn);
  const char *query = websock_request_query(req);
  bool oom = false;
  const char *why = NULL;
  char *room = query_param(query, "room", &oom);
  if (!room && !oom)
    room = path_room(conn, req);
  char *name = query_param(query, "name", &oom);
  if (oom) {
    why = "out of memory";
  } else if (room && !valid_room(room)) {
    why = "bad room name: use 1-64 of A-Z a-z 0-9 . _ -";
  } else if (name && !valid_name(name)) {
    why = strlen(name) > max_name ? "name too long"
                                  : "bad name: no control characters";
  } else {
    snprintf(cc->topic, sizeof(cc->topic), "%s%s", TOPIC_PREFIX,
             room ? room : default_room);
    if (!name) {
      char anon[32];
      snprintf(anon, sizeof(anon), "anon-%u",
               atomic_fetch_add(&anon_count, 1) + 1);
      name = strdup(anon);
    }
    if (!name)
      why = "out of memory";
    cc->name = name;
    name = NULL;
  }
  free(room);
  free(name);
  return why;
}

static int chat_init(websock_conn *conn, void **state) {
  chat_conn *cc = calloc(1, sizeof(*cc));
  if (!cc) {
    websock_close_error(conn, "out of memory");
    return WEBSOCK_STOP;
  }
  const char *why = chat_setup(conn, cc);
  int rc = 0;
  if (why) {
    websock_close(conn, WEBSOCK_CLOSE_POLICY, why);
  } else if ((rc = websock_subscribe(conn, cc->topic)) != 0) {
    websock_close_error(conn, websock_strerror(rc));
  } else {
    if (announce &&
        (rc = chat_send(websock_conn_host(conn), cc, "join", NULL, 0)) != 0)
      websock_log(conn, WEBSOCK_LOG_WARN, "join announcement lost: %s",
                  websock_strerror(rc));
    websock_log(conn, WEBSOCK_LOG_DEBUG, "%s joined %s", cc->name, room_of(cc));
    *state = cc;
    return WEBSOCK_OK;
  }
  free(cc->name);
  free(cc);
  return WEBSOCK_STOP;
}

static int chat_in(websock_conn *conn, void **state, websock_opcode opcode,
                   const uint8_t *data, size_t len) {
  chat_conn *cc = *state;
  if (opcode != WEBSOCK_OP_TEXT) {
    websock_close(conn, WEBSOCK_CLOSE_UNSUPPORTED_DATA, "text messages only");
    return WEBSOCK_STOP;
  }
  int rc = chat_send(websock_conn_host(conn), cc, "msg", data, len);
  if (rc != 0)
    websock_log(conn, WEBSOCK_LOG_WARN, "message lost: %s",
                websock_strerror(rc));
  return WEBSOCK_OK;
}

/* A line for the room (publish fanout): to our client. A push refused by
 * backpressure is the host's business (it closes or drops), not ours. */
static int chat_info(websock_conn *conn, void **state, const uint8_t *data,
                     size_t len) {
  (void)state;
  websock_push(conn, WEBSOCK_OP_TEXT, data, len);
  return WEBSOCK_OK;
}

static void chat_terminate(websock_conn *conn, void *state,
                           const websock_reason *reason) {
  chat_conn *cc = state;
  (void)reason;
  if (!cc)
    return;
  /* websock_publish/broadcast may be called from anywhere, terminate too. */
  if (announce)
    chat_send(websock_conn_host(conn), cc, "leave", NULL, 0);
  free(cc->name);
  free(cc);
}

static const char *const chat_keys[] = {"max_name", "default_room", "fanout",
                                        "announce", NULL};

WEBSOCK_EXPORT const struct websock_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct websock_handler),
    .name = "chat",
    .version = "1.0.0",
    .load = chat_load,
    .init = chat_init,
    .handle_in = chat_in,
    .handle_info = chat_info,
    .terminate = chat_terminate,
    .option_keys = chat_keys,
};
