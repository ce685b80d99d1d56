/*
 * test_proxyproto.c - PROXY protocol v1 and v2 headers as HAProxy writes
 * them, fed whole and a byte at a time, and every malformed variant.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/proxyproto.h"

#define WSH_TEST_NAME "test_proxyproto"
#include "testutil.h"

static const uint8_t sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static const char *src_of(const wsh_proxy_info *p) {
  static char s[80];
  char ip[INET6_ADDRSTRLEN];
  if (p->src.ss_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)&p->src;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    snprintf(s, sizeof(s), "%s:%u", ip, ntohs(in->sin_port));
  } else {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&p->src;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    snprintf(s, sizeof(s), "[%s]:%u", ip, ntohs(in6->sin6_port));
  }
  return s;
}

/* Whole, then growing a byte at a time: NEED_MORE until the end, then the
 * same result; bytes after the header are not taken. */
static int parse_all_ways(const uint8_t *buf, size_t hdr, size_t total,
                          wsh_proxy_info *info) {
  const char *why = NULL;
  for (size_t i = 0; i < hdr; i++)
    ck_assert_int_eq(wsh_proxy_parse(buf, i, info, &why), WSH_PROXY_NEED_MORE);
  int n = wsh_proxy_parse(buf, hdr, info, &why);
  ck_assert_int_eq(wsh_proxy_parse(buf, total, info, &why), n);
  return n;
}

START_TEST(v1_tcp4_tcp6_unknown) {
  wsh_proxy_info info;
  const char *h = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
  size_t hl = strlen("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n");
  ck_assert_int_eq(parse_all_ways((const uint8_t *)h, hl, strlen(h), &info),
                   (int)hl);
  ck_assert_int_eq(info.version, 1);
  ck_assert(!info.local);
  ck_assert_str_eq(src_of(&info), "192.0.2.1:56324");
  h = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
  ck_assert_int_eq(
      parse_all_ways((const uint8_t *)h, strlen(h), strlen(h), &info),
      (int)strlen(h));
  ck_assert_str_eq(src_of(&info), "[2001:db8::1]:65535");
  h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
  ck_assert_int_eq(wsh_proxy_parse((const uint8_t *)h, strlen(h), &info, NULL),
                   (int)strlen(h));
  ck_assert(info.local);
  h = "PROXY UNKNOWN\r\n";
  ck_assert_int_eq(wsh_proxy_parse((const uint8_t *)h, strlen(h), &info, NULL),
                   (int)strlen(h));
}
END_TEST

START_TEST(v1_malformed) {
  static const char *const bad[] = {
      "GET / HTTP/1.1\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443 x\r\n",
      "PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
      "PROXY TCP6 192.0.2.1 198.51.100.2 1 2\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 65536 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 0443 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 -1 443\r\n",
      "PROXY TCP4  192.0.2.1 198.51.100.2 1 443\r\n",
      "PROXY UDP4 192.0.2.1 198.51.100.2 1 443\r\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 443\n",
      "PROXY TCP4 192.0.2.1 198.51.100.2 1 443\rX",
      "proxy TCP4 192.0.2.1 198.51.100.2 1 443\r\n",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    wsh_proxy_info info;
    const char *why = NULL;
    ck_assert_msg(wsh_proxy_parse((const uint8_t *)bad[i], strlen(bad[i]),
                                  &info, &why) == WSH_PROXY_ERROR,
                  "accepted %s", bad[i]);
    ck_assert_ptr_nonnull(why);
  }
  /* a line that never ends is refused at 107 bytes */
  char longline[200];
  memset(longline, 'x', sizeof(longline));
  memcpy(longline, "PROXY TCP4 ", 11);
  wsh_proxy_info info;
  ck_assert_int_eq(wsh_proxy_parse((uint8_t *)longline, 106, &info, NULL),
                   WSH_PROXY_NEED_MORE);
  ck_assert_int_eq(wsh_proxy_parse((uint8_t *)longline, 107, &info, NULL),
                   WSH_PROXY_ERROR);
}
END_TEST

static size_t v2(uint8_t *b, uint8_t vercmd, uint8_t fam, const uint8_t *body,
                 size_t len) {
  memcpy(b, sig, 12);
  b[12] = vercmd;
  b[13] = fam;
  b[14] = (uint8_t)(len >> 8);
  b[15] = (uint8_t)len;
  memcpy(b + 16, body, len);
  return 16 + len;
}

START_TEST(v2_inet_inet6_local_tlvs) {
  uint8_t b[600], body[300];
  wsh_proxy_info info;
  /* TCP over IPv4: 192.0.2.1:56324 -> 198.51.100.2:443 */
  static const uint8_t a4[12] = {192, 0, 2,    1,    198,  51,
                                 100, 2, 0xdc, 0x04, 0x01, 0xbb};
  size_t n = v2(b, 0x21, 0x11, a4, 12);
  b[n] = 'G';
  ck_assert_int_eq(parse_all_ways(b, n, n + 1, &info), (int)n);
  ck_assert_int_eq(info.version, 2);
  ck_assert(!info.local);
  ck_assert_str_eq(src_of(&info), "192.0.2.1:56324");
  /* IPv6 with TLVs (ALPN "h2" and a NOOP) after the addresses */
  memset(body, 0, 36);
  body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 7;
  body[32] = 0x30, body[33] = 0x39; /* port 12345 */
  static const uint8_t tlv[] = {0x01, 0, 2, 'h', '2', 0x04, 0, 0};
  memcpy(body + 36, tlv, sizeof(tlv));
  n = v2(b, 0x21, 0x21, body, 36 + sizeof(tlv));
  ck_assert_int_eq(parse_all_ways(b, n, n, &info), (int)n);
  ck_assert_str_eq(src_of(&info), "[2001:db8::7]:12345");
  /* LOCAL (a health check from the balancer): the socket's address stands */
  n = v2(b, 0x20, 0x00, body, 0);
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, NULL), 16);
  ck_assert(info.local);
  /* PROXY over UDP or AF_UNIX: not ours, the socket's address stands */
  n = v2(b, 0x21, 0x12, a4, 12);
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, NULL), (int)n);
  ck_assert(info.local);
}
END_TEST

START_TEST(v2_malformed) {
  uint8_t b[1200], body[1100] = {0};
  const char *why;
  wsh_proxy_info info;
  size_t n = v2(b, 0x11, 0x11, body, 12); /* version 1 in a v2 header */
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, &why), WSH_PROXY_ERROR);
  n = v2(b, 0x22, 0x11, body, 12); /* command 2 */
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, &why), WSH_PROXY_ERROR);
  n = v2(b, 0x21, 0x11, body, 11); /* addresses cut short */
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, &why), WSH_PROXY_ERROR);
  n = v2(b, 0x21, 0x41, body, 12); /* family 4 */
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, &why), WSH_PROXY_ERROR);
  body[12] = 1, body[13] = 0, body[14] = 9; /* a TLV longer than the rest */
  n = v2(b, 0x21, 0x11, body, 16);
  ck_assert_int_eq(wsh_proxy_parse(b, n, &info, &why), WSH_PROXY_ERROR);
  n = v2(b, 0x21, 0x11, body, 1100 - 16); /* over 1024 bytes in all */
  ck_assert_int_eq(wsh_proxy_parse(b, 16, &info, &why), WSH_PROXY_ERROR);
  /* a wrong byte inside the signature fails at once */
  memcpy(b, sig, 12);
  b[7] = 'X';
  ck_assert_int_eq(wsh_proxy_parse(b, 8, &info, &why), WSH_PROXY_ERROR);
  ck_assert_str_eq(why, "no PROXY protocol header");
}
END_TEST

int main(void) {
  Suite *su = suite_create("proxyproto");
  TCase *tc = tcase_create("proxyproto");
  tcase_add_test(tc, v1_tcp4_tcp6_unknown);
  tcase_add_test(tc, v1_malformed);
  tcase_add_test(tc, v2_inet_inet6_local_tlvs);
  tcase_add_test(tc, v2_malformed);
  suite_add_tcase(su, tc);
  return run_suite(su);
}
