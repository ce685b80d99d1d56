/*
 * realip.c - trusted proxy ranges and X-Forwarded-For: which address a
 * request really came from.
 */
#include "protocol/realip.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websock.h"

/* One address as text into a range of `bits` (or the full length). */
static int parse_addr(const char *s, wsh_cidr *c) {
  memset(c, 0, sizeof(*c));
  if (inet_pton(AF_INET, s, c->addr) == 1) {
    c->family = AF_INET;
    c->bits = 32;
    return 0;
  }
  if (inet_pton(AF_INET6, s, c->addr) == 1) {
    c->family = AF_INET6;
    c->bits = 128;
    return 0;
  }
  return -1;
}

static int parse_item(const char *item, wsh_cidr *c) {
  char buf[64];
  if (strlen(item) >= sizeof(buf))
    return -1;
  snprintf(buf, sizeof(buf), "%s", item);
  char *slash = strchr(buf, '/');
  if (slash)
    *slash = '\0';
  if (parse_addr(buf, c) != 0)
    return -1;
  if (!slash)
    return 0;
  const char *b = slash + 1;
  if (!*b || strlen(b) > 3 || strspn(b, "0123456789") != strlen(b))
    return -1;
  unsigned bits = (unsigned)atoi(b);
  if (bits > c->bits)
    return -1;
  c->bits = (uint8_t)bits;
  return 0;
}

int wsh_cidr_list_parse(wsh_cidr_list *list, const char *text, char *err,
                        size_t errlen) {
  const char *p = text;
  while (*p) {
    size_t skip = strspn(p, ", \t");
    p += skip;
    size_t len = strcspn(p, ", \t");
    if (!len)
      break;
    char item[64];
    wsh_cidr c;
    if (len >= sizeof(item) ||
        (snprintf(item, sizeof(item), "%.*s", (int)len, p),
         parse_item(item, &c) != 0)) {
      snprintf(err, errlen, "\"%.*s\" is not an address or CIDR range",
               (int)(len > 64 ? 64 : len), p);
      return WEBSOCK_EINVAL;
    }
    wsh_cidr *items = realloc(list->items, (list->n + 1) * sizeof(*items));
    if (!items)
      return WEBSOCK_ENOMEM;
    list->items = items;
    list->items[list->n++] = c;
    p += len;
  }
  return 0;
}

void wsh_cidr_list_free(wsh_cidr_list *list) {
  free(list->items);
  list->items = NULL;
  list->n = 0;
}

static bool in_range(const wsh_cidr *c, int family, const uint8_t *addr) {
  if (c->family != family)
    return false;
  unsigned full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(c->addr, addr, full) != 0)
    return false;
  if (!rest)
    return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (c->addr[full] & mask) == (addr[full] & mask);
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* family and bytes of an address, an IPv4-mapped IPv6 one as IPv4. */
static bool addr_bytes(const struct sockaddr *sa, int *family,
                       const uint8_t **bytes) {
  if (sa->sa_family == AF_INET) {
    *family = AF_INET;
    *bytes = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    const uint8_t *b =
        (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (memcmp(b, v4_mapped, 12) == 0) {
      *family = AF_INET;
      *bytes = b + 12;
    } else {
      *family = AF_INET6;
      *bytes = b;
    }
    return true;
  }
  return false;
}

static bool match_bytes(const wsh_cidr_list *list, int family,
                        const uint8_t *bytes) {
  for (size_t i = 0; i < list->n; i++)
    if (in_range(&list->items[i], family, bytes))
      return true;
  return false;
}

bool wsh_cidr_list_match(const wsh_cidr_list *list, const struct sockaddr *sa) {
  int family;
  const uint8_t *bytes;
  return addr_bytes(sa, &family, &bytes) && match_bytes(list, family, bytes);
}

/* One X-Forwarded-For item: an address, maybe with spaces around it. */
static bool xff_item(const char *p, size_t len, wsh_cidr *c) {
  while (len && isspace((unsigned char)*p))
    p++, len--;
  while (len && isspace((unsigned char)p[len - 1]))
    len--;
  char buf[64];
  if (!len || len >= sizeof(buf))
    return false;
  memcpy(buf, p, len);
  buf[len] = '\0';
  if (parse_addr(buf, c) != 0)
    return false;
  if (c->family == AF_INET6 && memcmp(c->addr, v4_mapped, 12) == 0) {
    memmove(c->addr, c->addr + 12, 4);
    c->family = AF_INET;
  }
  return true;
}

static void format(const wsh_cidr *c, char *out, size_t outlen) {
  char ip[INET6_ADDRSTRLEN];
  inet_ntop(c->family, c->addr, ip, sizeof(ip));
  snprintf(out, outlen, c->family == AF_INET ? "%s:0" : "[%s]:0", ip);
}

bool wsh_realip_from_xff(const wsh_cidr_list *trusted,
                         const struct sockaddr *peer, const char *xff,
                         char *out, size_t outlen) {
  if (!xff || !trusted->n || !wsh_cidr_list_match(trusted, peer))
    return false;
  /* every item must be an address, or the header is not believed */
  size_t n = 0;
  for (const char *p = xff;; p++) {
    size_t len = strcspn(p, ",");
    wsh_cidr c;
    if (!xff_item(p, len, &c))
      return false;
    n++;
    p += len;
    if (!*p)
      break;
  }
  /* from the right: the first address that is not a trusted proxy */
  const char *end = xff + strlen(xff);
  wsh_cidr c;
  while (n--) {
    const char *start = end;
    while (start > xff && start[-1] != ',')
      start--;
    xff_item(start, (size_t)(end - start), &c);
    if (!match_bytes(trusted, c.family, c.addr) || start == xff)
      break;
    end = start - 1;
  }
  format(&c, out, outlen);
  return true;
}
