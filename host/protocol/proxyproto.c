/*
 * proxyproto.c - PROXY protocol v1 (a text line) and v2 (binary), strictly:
 * anything but a well-formed header is an error, and a header is never read
 * past its end or past WSH_PROXY_MAX.
 */
#include "protocol/proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};
#define V1_MAX 107

static int fail(const char **why, const char *what) {
  if (why)
    *why = what;
  return WSH_PROXY_ERROR;
}

/* A decimal port, 0-65535, no sign, no leading zero. */
static bool parse_port(const char *s, uint16_t *port) {
  size_t n = strlen(s);
  if (!n || n > 5 || strspn(s, "0123456789") != n || (n > 1 && s[0] == '0'))
    return false;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++)
    v = v * 10 + (unsigned long)(s[i] - '0');
  if (v > 65535)
    return false;
  *port = (uint16_t)v;
  return true;
}

static bool set_addr(int family, const char *ip, const char *port,
                     struct sockaddr_storage *ss, socklen_t *len) {
  uint16_t p;
  if (!parse_port(port, &p))
    return false;
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(p);
    *len = sizeof(*in);
    return inet_pton(AF_INET, ip, &in->sin_addr) == 1;
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(p);
  *len = sizeof(*in6);
  return inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1;
}

/* "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n" */
static int parse_v1(const uint8_t *buf, size_t len, wsh_proxy_info *info,
                    const char **why) {
  const uint8_t *cr = memchr(buf, '\r', len < V1_MAX ? len : V1_MAX);
  if (!cr) {
    if (len >= V1_MAX)
      return fail(why, "PROXY v1 line longer than 107 bytes");
    if (memchr(buf, '\n', len) || memchr(buf, '\0', len))
      return fail(why, "PROXY v1 line not ended by CRLF");
    return WSH_PROXY_NEED_MORE;
  }
  size_t linelen = (size_t)(cr - buf);
  if (linelen + 2 > V1_MAX)
    return fail(why, "PROXY v1 line longer than 107 bytes");
  if (linelen + 1 >= len)
    return WSH_PROXY_NEED_MORE;
  if (cr[1] != '\n')
    return fail(why, "PROXY v1 line not ended by CRLF");
  char line[V1_MAX + 1];
  memcpy(line, buf, linelen);
  line[linelen] = '\0';
  if (memchr(line, '\0', linelen) || memchr(line, '\n', linelen))
    return fail(why, "PROXY v1 line holds a NUL or LF");
  char *f[7];
  int n = 0;
  for (char *p = line, *sp; n < 7; p = sp + 1) {
    f[n++] = p;
    if (!(sp = strchr(p, ' ')))
      break;
    *sp = '\0';
  }
  memset(info, 0, sizeof(*info));
  info->version = 1;
  if (n >= 2 && strcmp(f[1], "UNKNOWN") == 0) { /* the rest is ignored */
    info->local = 1;
    return (int)linelen + 2;
  }
  if (n != 6)
    return fail(why, "PROXY v1 line does not have 6 fields");
  int family = strcmp(f[1], "TCP4") == 0   ? AF_INET
               : strcmp(f[1], "TCP6") == 0 ? AF_INET6
                                           : 0;
  if (!family)
    return fail(why, "PROXY v1 protocol is not TCP4, TCP6 or UNKNOWN");
  if (!set_addr(family, f[2], f[4], &info->src, &info->srclen) ||
      !set_addr(family, f[3], f[5], &info->dst, &info->dstlen))
    return fail(why, "PROXY v1 address or port is invalid");
  return (int)linelen + 2;
}

static void set_v2_addrs(int family, const uint8_t *a, wsh_proxy_info *info) {
  if (family == AF_INET) {
    struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
    struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;
    s->sin_family = d->sin_family = AF_INET;
    memcpy(&s->sin_addr, a, 4);
    memcpy(&d->sin_addr, a + 4, 4);
    memcpy(&s->sin_port, a + 8, 2);
    memcpy(&d->sin_port, a + 10, 2);
    info->srclen = info->dstlen = sizeof(*s);
    return;
  }
  struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
  struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;
  s->sin6_family = d->sin6_family = AF_INET6;
  memcpy(&s->sin6_addr, a, 16);
  memcpy(&d->sin6_addr, a + 16, 16);
  memcpy(&s->sin6_port, a + 32, 2);
  memcpy(&d->sin6_port, a + 34, 2);
  info->srclen = info->dstlen = sizeof(*s);
}

/* The TLVs after the addresses: type, 2-byte length, value; they must fill
 * the header exactly. */
static bool tlvs_well_formed(const uint8_t *p, size_t len) {
  while (len) {
    if (len < 3)
      return false;
    size_t vlen = (size_t)p[1] << 8 | p[2];
    if (vlen > len - 3)
      return false;
    p += 3 + vlen;
    len -= 3 + vlen;
  }
  return true;
}

static int parse_v2(const uint8_t *buf, size_t len, wsh_proxy_info *info,
                    const char **why) {
  if (len < 16)
    return WSH_PROXY_NEED_MORE;
  if ((buf[12] >> 4) != 2)
    return fail(why, "PROXY v2 version is not 2");
  int cmd = buf[12] & 0x0f;
  if (cmd > 1)
    return fail(why, "PROXY v2 command is neither LOCAL nor PROXY");
  size_t body = (size_t)buf[14] << 8 | buf[15];
  if (16 + body > WSH_PROXY_MAX)
    return fail(why, "PROXY v2 header longer than 1024 bytes");
  if (len < 16 + body)
    return WSH_PROXY_NEED_MORE;
  memset(info, 0, sizeof(*info));
  info->version = 2;
  int fam = buf[13] >> 4, proto = buf[13] & 0x0f;
  size_t need = fam == 1 ? 12 : fam == 2 ? 36 : fam == 3 ? 216 : 0;
  if (fam > 3 || proto > 2)
    return fail(why, "PROXY v2 address family or protocol is unknown");
  if (body < need)
    return fail(why, "PROXY v2 addresses longer than the header");
  if (!tlvs_well_formed(buf + 16 + need, body - need))
    return fail(why, "PROXY v2 TLVs do not fill the header");
  if (cmd == 0 || proto != 1 || (fam != 1 && fam != 2))
    info->local = 1; /* LOCAL, or a family or protocol not ours */
  else
    set_v2_addrs(fam == 1 ? AF_INET : AF_INET6, buf + 16, info);
  return (int)(16 + body);
}

int wsh_proxy_parse(const uint8_t *buf, size_t len, wsh_proxy_info *info,
                    const char **why) {
  size_t n = len < 12 ? len : 12;
  if (memcmp(buf, v2_sig, n) == 0)
    return len < 12 ? WSH_PROXY_NEED_MORE : parse_v2(buf, len, info, why);
  n = len < 6 ? len : 6;
  if (memcmp(buf, "PROXY ", n) == 0)
    return len < 6 ? WSH_PROXY_NEED_MORE : parse_v1(buf, len, info, why);
  return fail(why, "no PROXY protocol header");
}
