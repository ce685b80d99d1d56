/*
 * bus_msg.c - the bus's wire format, channel names, reference strings and
 * address (see bus_msg.h). No I/O, no allocation.
 */
#include "bus/bus_msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "websock.h"

static void put_u32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static uint64_t get_u64(const uint8_t *p) {
  return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

/* A counts payload: one or more entries, nothing else. */
static bool counts_valid(const uint8_t *data, size_t len) {
  wsh_bus_count c;
  size_t off = 0;
  int rc;
  while ((rc = wsh_bus_count_next(&c, data, len, &off)) == 1)
    ;
  return rc == 0;
}

/* The rules every message keeps, whichever side checks them. */
static bool valid(const wsh_bus_msg *m) {
  if (m->origin == 0 || m->len > WSH_BUS_PAYLOAD_MAX ||
      m->topic_len > WSH_BUS_TOPIC_MAX || (m->len && !m->data))
    return false;
  if (m->topic_len && (!m->topic || memchr(m->topic, 0, m->topic_len)))
    return false;
  bool no_target = m->to.host == 0 && m->to.worker == 0 && m->to.slot == 0 &&
                   m->to.serial == 0;
  switch (m->kind) {
  case WSH_BUS_PUBLISH:
    return m->opcode == 0 && m->topic_len > 0 && no_target;
  case WSH_BUS_BROADCAST:
    return (m->opcode == WEBSOCK_OP_TEXT || m->opcode == WEBSOCK_OP_BINARY) &&
           m->topic_len > 0 && no_target;
  case WSH_BUS_SEND:
    return m->opcode == 0 && m->topic_len == 0 && m->to.host != 0;
  case WSH_BUS_COUNTS:
    return m->opcode == 0 && m->topic_len == 0 && no_target && m->len > 0 &&
           counts_valid(m->data, m->len);
  default:
    return false;
  }
}

size_t wsh_bus_msg_size(const wsh_bus_msg *m) {
  return WSH_BUS_MSG_HEADER + m->topic_len + m->len;
}

long wsh_bus_msg_encode(const wsh_bus_msg *m, uint8_t *out, size_t cap) {
  if (!valid(m) || wsh_bus_msg_size(m) > cap)
    return WEBSOCK_EINVAL;
  out[0] = WSH_BUS_MSG_VERSION;
  out[1] = m->kind;
  out[2] = m->opcode;
  out[3] = (uint8_t)m->topic_len;
  put_u64(out + 4, m->origin);
  put_u64(out + 12, m->seq);
  put_u64(out + 20, m->to.host);
  put_u32(out + 28, m->to.worker);
  put_u32(out + 32, m->to.slot);
  put_u32(out + 36, m->to.serial);
  put_u32(out + 40, (uint32_t)m->len);
  if (m->topic_len)
    memcpy(out + WSH_BUS_MSG_HEADER, m->topic, m->topic_len);
  if (m->len)
    memcpy(out + WSH_BUS_MSG_HEADER + m->topic_len, m->data, m->len);
  return (long)wsh_bus_msg_size(m);
}

int wsh_bus_msg_decode(wsh_bus_msg *m, const uint8_t *buf, size_t len) {
  memset(m, 0, sizeof(*m));
  if (len < WSH_BUS_MSG_HEADER || buf[0] != WSH_BUS_MSG_VERSION)
    return WEBSOCK_EINVAL;
  size_t tlen = buf[3];
  uint32_t plen = get_u32(buf + 40);
  /* Exactly the header, the topic and the payload: nothing short, nothing
   * after. (Both lengths are bounded, so the sum cannot overflow.) */
  if (plen > WSH_BUS_PAYLOAD_MAX || len != WSH_BUS_MSG_HEADER + tlen + plen)
    return WEBSOCK_EINVAL;
  m->kind = buf[1];
  m->opcode = buf[2];
  m->origin = get_u64(buf + 4);
  m->seq = get_u64(buf + 12);
  m->to.host = get_u64(buf + 20);
  m->to.worker = get_u32(buf + 28);
  m->to.slot = get_u32(buf + 32);
  m->to.serial = get_u32(buf + 36);
  m->topic = tlen ? (const char *)buf + WSH_BUS_MSG_HEADER : NULL;
  m->topic_len = tlen;
  m->data = plen ? buf + WSH_BUS_MSG_HEADER + tlen : NULL;
  m->len = plen;
  if (!valid(m)) {
    memset(m, 0, sizeof(*m));
    return WEBSOCK_EINVAL;
  }
  return 0;
}

/* ---- counts payloads ----------------------------------------------------- */

int wsh_bus_count_put(uint8_t *out, size_t cap, size_t *off, const char *topic,
                      size_t topic_len, uint32_t count) {
  if (!topic || topic_len == 0 || topic_len > WSH_BUS_TOPIC_MAX ||
      memchr(topic, 0, topic_len) || *off > cap ||
      cap - *off < 1 + topic_len + 4)
    return WEBSOCK_EINVAL;
  uint8_t *p = out + *off;
  p[0] = (uint8_t)topic_len;
  memcpy(p + 1, topic, topic_len);
  put_u32(p + 1 + topic_len, count);
  *off += 1 + topic_len + 4;
  return 0;
}

int wsh_bus_count_next(wsh_bus_count *c, const uint8_t *data, size_t len,
                       size_t *off) {
  memset(c, 0, sizeof(*c));
  if (*off == len)
    return 0;
  if (*off > len)
    return WEBSOCK_EINVAL;
  size_t left = len - *off, tlen = data[*off];
  const char *topic = (const char *)data + *off + 1;
  if (tlen == 0 || left < 1 + tlen + 4 || memchr(topic, 0, tlen))
    return WEBSOCK_EINVAL;
  c->topic = topic;
  c->topic_len = tlen;
  c->count = get_u32(data + *off + 1 + tlen);
  *off += 1 + tlen + 4;
  return 1;
}

/* ---- names --------------------------------------------------------------- */

static int channel(char *out, size_t cap, const char *prefix, char type,
                   const char *name, size_t name_len) {
  size_t plen = prefix ? strlen(prefix) : 0;
  if (plen > WSH_BUS_PREFIX_MAX || plen + 2 + name_len + 1 > cap)
    return WEBSOCK_EINVAL;
  if (plen)
    memcpy(out, prefix, plen);
  out[plen] = type;
  out[plen + 1] = ':';
  memcpy(out + plen + 2, name, name_len);
  out[plen + 2 + name_len] = '\0';
  return (int)(plen + 2 + name_len);
}

int wsh_bus_channel_topic(char *out, size_t cap, const char *prefix,
                          const char *topic, size_t topic_len) {
  if (!topic || topic_len == 0 || topic_len > WSH_BUS_TOPIC_MAX ||
      memchr(topic, 0, topic_len))
    return WEBSOCK_EINVAL;
  return channel(out, cap, prefix, 't', topic, topic_len);
}

int wsh_bus_channel_host(char *out, size_t cap, const char *prefix,
                         uint64_t host) {
  char hex[17];
  snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)host);
  return channel(out, cap, prefix, 'h', hex, 16);
}

int wsh_bus_channel_control(char *out, size_t cap, const char *prefix) {
  return channel(out, cap, prefix, 'c', "counts", 6);
}

int wsh_bus_ref_format(char *out, size_t cap, const wsh_bus_ref *r) {
  if (cap < WSH_BUS_REF_STRLEN || r->host == 0)
    return WEBSOCK_EINVAL;
  return snprintf(out, cap, "%016llx.%u.%u.%u", (unsigned long long)r->host,
                  (unsigned)r->worker, (unsigned)r->slot, (unsigned)r->serial);
}

static int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* A decimal number of at most 32 bits at s[*i..len), up to a '.' or the
 * end; no sign, no leading zero (but "0" itself). */
static bool parse_u32(const char *s, size_t len, size_t *i, uint32_t *out) {
  size_t start = *i;
  uint64_t v = 0;
  while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
    v = v * 10 + (uint64_t)(s[*i] - '0');
    if (v > UINT32_MAX)
      return false;
    (*i)++;
  }
  size_t n = *i - start;
  if (n == 0 || (n > 1 && s[start] == '0'))
    return false;
  *out = (uint32_t)v;
  return true;
}

int wsh_bus_ref_parse(wsh_bus_ref *r, const char *s, size_t len) {
  wsh_bus_ref v = {0, 0, 0, 0};
  if (!s || len < 16 + 6)
    return WEBSOCK_EINVAL;
  for (size_t i = 0; i < 16; i++) {
    int d = hex_digit(s[i]);
    if (d < 0)
      return WEBSOCK_EINVAL;
    v.host = v.host << 4 | (uint64_t)d;
  }
  size_t i = 16;
  uint32_t *parts[3] = {&v.worker, &v.slot, &v.serial};
  for (int k = 0; k < 3; k++) {
    if (i >= len || s[i] != '.')
      return WEBSOCK_EINVAL;
    i++;
    if (!parse_u32(s, len, &i, parts[k]))
      return WEBSOCK_EINVAL;
  }
  if (i != len || v.host == 0)
    return WEBSOCK_EINVAL;
  *r = v;
  return 0;
}

/* ---- address ------------------------------------------------------------- */

static int parse_port(const char *s, int *port) {
  long v = 0;
  if (!*s)
    return WEBSOCK_EINVAL;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return WEBSOCK_EINVAL;
    v = v * 10 + (*s - '0');
    if (v > 65535)
      return WEBSOCK_EINVAL;
  }
  if (v == 0)
    return WEBSOCK_EINVAL;
  *port = (int)v;
  return 0;
}

int wsh_bus_addr_parse(wsh_bus_addr *a, const char *s) {
  memset(a, 0, sizeof(*a));
  if (!s || !*s)
    return WEBSOCK_EINVAL;
  if (strchr(s, '/')) {
    if (strlen(s) >= sizeof(a->path))
      return WEBSOCK_EINVAL;
    strcpy(a->path, s);
    return 0;
  }
  const char *host = s, *end, *port = NULL;
  if (*s == '[') { /* [IPv6]:port or [IPv6] */
    host = s + 1;
    end = strchr(host, ']');
    if (!end || end == host)
      return WEBSOCK_EINVAL;
    if (end[1] == ':')
      port = end + 2;
    else if (end[1] != '\0')
      return WEBSOCK_EINVAL;
  } else {
    const char *colon = strrchr(s, ':');
    if (colon && strchr(s, ':') != colon)
      return WEBSOCK_EINVAL; /* a bare IPv6 address: brackets, please */
    end = colon ? colon : s + strlen(s);
    if (colon)
      port = colon + 1;
  }
  size_t hlen = (size_t)(end - host);
  if (hlen == 0 || hlen >= sizeof(a->host))
    return WEBSOCK_EINVAL;
  memcpy(a->host, host, hlen);
  a->host[hlen] = '\0';
  a->port = 6379;
  if (port && parse_port(port, &a->port) != 0) {
    memset(a, 0, sizeof(*a));
    return WEBSOCK_EINVAL;
  }
  return 0;
}
