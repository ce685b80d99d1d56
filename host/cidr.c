/*
 * cidr.c - address ranges: parsing "ADDR[/PREFIX], ..." lists and matching a
 * peer address ("1.2.3.4:5", "[::1]:5") against them.
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "websock.h"

/* An address in text form (no port) into family and bytes. */
static int parse_ip(const char *s, int *family, uint8_t addr[16]) {
  if (inet_pton(AF_INET, s, addr) == 1) {
    *family = AF_INET;
    return 0;
  }
  if (inet_pton(AF_INET6, s, addr) == 1) {
    *family = AF_INET6;
    return 0;
  }
  return -1;
}

/* One item, "ADDR" or "ADDR/PREFIX", already trimmed. */
static int parse_item(const char *item, wsh_cidr *out) {
  char ip[64];
  const char *slash = strchr(item, '/');
  size_t iplen = slash ? (size_t)(slash - item) : strlen(item);
  if (iplen == 0 || iplen >= sizeof(ip))
    return -1;
  memcpy(ip, item, iplen);
  ip[iplen] = '\0';
  memset(out, 0, sizeof(*out));
  if (parse_ip(ip, &out->family, out->addr) != 0)
    return -1;
  unsigned max = out->family == AF_INET ? 32 : 128;
  out->prefix = max;
  if (slash) {
    char *end;
    const char *p = slash + 1;
    if (!isdigit((unsigned char)*p))
      return -1;
    unsigned long v = strtoul(p, &end, 10);
    if (*end || v > max)
      return -1;
    out->prefix = (unsigned)v;
  }
  return 0;
}

int wsh_cidr_parse_list(const char *list, wsh_cidr **out, size_t *n, char *err,
                        size_t errlen) {
  wsh_cidr *v = NULL;
  size_t count = 0;
  const char *p = list;
  *out = NULL;
  *n = 0;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    if (!*p)
      break;
    size_t len = strcspn(p, ", \t");
    char item[80];
    snprintf(item, sizeof(item), "%.*s", (int)(len < 79 ? len : 79), p);
    wsh_cidr *grown = realloc(v, (count + 1) * sizeof(*v));
    if (!grown) {
      free(v);
      return WEBSOCK_ENOMEM;
    }
    v = grown;
    if (len >= sizeof(item) || parse_item(item, &v[count]) != 0) {
      snprintf(err, errlen, "\"%.*s\" is not an address or ADDR/PREFIX range",
               (int)(len < 64 ? len : 64), p);
      free(v);
      return WEBSOCK_EINVAL;
    }
    count++;
    p += len;
  }
  *out = v;
  *n = count;
  return 0;
}

/* "1.2.3.4:5" or "[::1]:5" (or a bare address) into family and bytes. */
static int parse_peer(const char *addr, int *family, uint8_t bytes[16]) {
  char ip[64];
  const char *end;
  if (addr[0] == '[') {
    addr++;
    if (!(end = strchr(addr, ']')))
      return -1;
  } else {
    end = strchr(addr, ':');
    if (end && strchr(end + 1, ':')) /* a bare IPv6 address */
      end = NULL;
  }
  size_t len = end ? (size_t)(end - addr) : strlen(addr);
  if (len >= sizeof(ip))
    return -1;
  memcpy(ip, addr, len);
  ip[len] = '\0';
  if (parse_ip(ip, family, bytes) != 0)
    return -1;
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (*family == AF_INET6 && memcmp(bytes, mapped, 12) == 0) {
    memmove(bytes, bytes + 12, 4);
    *family = AF_INET;
  }
  return 0;
}

static bool in_range(const wsh_cidr *r, const uint8_t *a) {
  unsigned full = r->prefix / 8, rest = r->prefix % 8;
  if (memcmp(r->addr, a, full) != 0)
    return false;
  if (!rest)
    return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (r->addr[full] & mask) == (a[full] & mask);
}

bool wsh_cidr_match(const wsh_cidr *list, size_t n, const char *addr) {
  int family;
  uint8_t bytes[16];
  if (!addr || parse_peer(addr, &family, bytes) != 0)
    return false;
  for (size_t i = 0; i < n; i++)
    if (list[i].family == family && in_range(&list[i], bytes))
      return true;
  return false;
}
