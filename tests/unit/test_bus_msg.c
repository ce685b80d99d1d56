/*
 * test_bus_msg.c - the bus's wire format (scripted bytes both ways, every
 * rule refused), channel names, reference strings and Redis addresses.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_msg.h"
#include "websock.h"

/* A broadcast of "hi" to "room", written out by hand from bus_msg.h. */
static const uint8_t broadcast_bytes[] = {
    1,    2,    1,    4,                            /* version kind op T */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* origin */
    0,    0,    0,    0,    0,    0,    0x01, 0x00, /* seq 256 */
    0,    0,    0,    0,    0,    0,    0,    0,    /* to.host */
    0,    0,    0,    0,    0,    0,    0,    0,
    0,    0,    0,    0, /* worker slot serial */
    0,    0,    0,    2, /* P */
    'r',  'o',  'o',  'm',  'h',  'i'};

START_TEST(encode_matches_the_layout) {
  wsh_bus_msg m = {.origin = 0x0102030405060708ull,
                   .seq = 256,
                   .kind = WSH_BUS_BROADCAST,
                   .opcode = WEBSOCK_OP_TEXT,
                   .topic = "room",
                   .topic_len = 4,
                   .data = (const uint8_t *)"hi",
                   .len = 2};
  uint8_t out[64];
  ck_assert_uint_eq(wsh_bus_msg_size(&m), sizeof(broadcast_bytes));
  ck_assert_int_eq(wsh_bus_msg_encode(&m, out, sizeof(out)),
                   (long)sizeof(broadcast_bytes));
  ck_assert_mem_eq(out, broadcast_bytes, sizeof(broadcast_bytes));
  /* One byte too small a buffer: refused, not truncated. */
  ck_assert_int_eq(wsh_bus_msg_encode(&m, out, sizeof(broadcast_bytes) - 1),
                   WEBSOCK_EINVAL);
}
END_TEST

START_TEST(decode_reads_the_layout) {
  wsh_bus_msg m;
  ck_assert_int_eq(
      wsh_bus_msg_decode(&m, broadcast_bytes, sizeof(broadcast_bytes)), 0);
  ck_assert_uint_eq(m.origin, 0x0102030405060708ull);
  ck_assert_uint_eq(m.seq, 256);
  ck_assert_uint_eq(m.kind, WSH_BUS_BROADCAST);
  ck_assert_uint_eq(m.opcode, WEBSOCK_OP_TEXT);
  ck_assert_uint_eq(m.topic_len, 4);
  ck_assert_mem_eq(m.topic, "room", 4);
  ck_assert_uint_eq(m.len, 2);
  ck_assert_mem_eq(m.data, "hi", 2);
}
END_TEST

START_TEST(send_round_trip) {
  uint8_t payload[1000];
  for (size_t i = 0; i < sizeof(payload); i++)
    payload[i] = (uint8_t)(i * 7);
  wsh_bus_msg m = {.origin = 42,
                   .seq = 7,
                   .kind = WSH_BUS_SEND,
                   .to = {0xfeedull, 3, 0xFFFFFF, 0xFFFFFFFFu},
                   .data = payload,
                   .len = sizeof(payload)};
  uint8_t *buf = malloc(wsh_bus_msg_size(&m));
  long n = wsh_bus_msg_encode(&m, buf, wsh_bus_msg_size(&m));
  ck_assert_int_eq(n, WSH_BUS_MSG_HEADER + 1000);
  wsh_bus_msg d;
  ck_assert_int_eq(wsh_bus_msg_decode(&d, buf, (size_t)n), 0);
  ck_assert_uint_eq(d.kind, WSH_BUS_SEND);
  ck_assert_uint_eq(d.to.host, 0xfeedull);
  ck_assert_uint_eq(d.to.worker, 3);
  ck_assert_uint_eq(d.to.slot, 0xFFFFFF);
  ck_assert_uint_eq(d.to.serial, 0xFFFFFFFFu);
  ck_assert_uint_eq(d.topic_len, 0);
  ck_assert_mem_eq(d.data, payload, sizeof(payload));
  /* Every truncation and one extra byte are refused. */
  for (long k = 0; k < n; k++)
    ck_assert_int_eq(wsh_bus_msg_decode(&d, buf, (size_t)k), WEBSOCK_EINVAL);
  uint8_t *longer = malloc((size_t)n + 1);
  memcpy(longer, buf, (size_t)n);
  longer[n] = 0;
  ck_assert_int_eq(wsh_bus_msg_decode(&d, longer, (size_t)n + 1),
                   WEBSOCK_EINVAL);
  free(longer);
  free(buf);
}
END_TEST

/* The broadcast with one byte changed must be refused. */
static void refused_with(size_t at, uint8_t value) {
  uint8_t b[sizeof(broadcast_bytes)];
  wsh_bus_msg m;
  memcpy(b, broadcast_bytes, sizeof(b));
  b[at] = value;
  ck_assert_msg(wsh_bus_msg_decode(&m, b, sizeof(b)) == WEBSOCK_EINVAL,
                "byte %zu = %u accepted", at, value);
}

START_TEST(decode_refuses_broken_rules) {
  refused_with(0, 2);         /* version */
  refused_with(1, 0);         /* kind */
  refused_with(1, 4);         /* kind */
  refused_with(1, 1);         /* publish with an opcode */
  refused_with(1, 3);         /* send with a topic */
  refused_with(2, 0);         /* broadcast without an opcode */
  refused_with(2, 8);         /* a close frame is not a broadcast */
  refused_with(3, 5);         /* topic length past the end */
  refused_with(3, 3);         /* topic length short: a byte left over */
  refused_with(27, 1);        /* to.host on a broadcast */
  refused_with(39, 1);        /* to.serial on a broadcast */
  refused_with(43, 3);        /* payload length */
  refused_with(44 + 1, '\0'); /* NUL in the topic */
}
END_TEST

START_TEST(decode_refuses_zero_origin_and_huge_payload) {
  uint8_t b[sizeof(broadcast_bytes)];
  wsh_bus_msg m;
  memcpy(b, broadcast_bytes, sizeof(b));
  memset(b + 4, 0, 8);
  ck_assert_int_eq(wsh_bus_msg_decode(&m, b, sizeof(b)), WEBSOCK_EINVAL);
  memcpy(b, broadcast_bytes, sizeof(b));
  b[40] = 0xFF; /* ~4 GiB claimed */
  ck_assert_int_eq(wsh_bus_msg_decode(&m, b, sizeof(b)), WEBSOCK_EINVAL);
  /* A send without a target host. */
  wsh_bus_msg s = {.origin = 1, .kind = WSH_BUS_SEND};
  uint8_t out[64];
  ck_assert_int_eq(wsh_bus_msg_encode(&s, out, sizeof(out)), WEBSOCK_EINVAL);
}
END_TEST

START_TEST(channel_names) {
  char out[WSH_BUS_CHANNEL_MAX];
  ck_assert_int_eq(wsh_bus_channel_topic(out, sizeof(out), "app1:", "room", 4),
                   11);
  ck_assert_str_eq(out, "app1:t:room");
  ck_assert_int_eq(wsh_bus_channel_topic(out, sizeof(out), NULL, "room", 4), 6);
  ck_assert_str_eq(out, "t:room");
  ck_assert_int_eq(wsh_bus_channel_host(out, sizeof(out), "x", 0xabcull), 19);
  ck_assert_str_eq(out, "xh:0000000000000abc");
  ck_assert_int_eq(wsh_bus_channel_topic(out, sizeof(out), NULL, "", 0),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_bus_channel_topic(out, 8, NULL, "room!", 5), 7);
  ck_assert_int_eq(wsh_bus_channel_topic(out, 7, NULL, "room!", 5),
                   WEBSOCK_EINVAL); /* "t:room!" and its NUL need 8 */
  char prefix[WSH_BUS_PREFIX_MAX + 2];
  memset(prefix, 'p', sizeof(prefix) - 1);
  prefix[sizeof(prefix) - 1] = '\0';
  ck_assert_int_eq(wsh_bus_channel_topic(out, sizeof(out), prefix, "a", 1),
                   WEBSOCK_EINVAL);
  /* The longest prefix and topic fit WSH_BUS_CHANNEL_MAX exactly. */
  prefix[WSH_BUS_PREFIX_MAX] = '\0';
  char topic[WSH_BUS_TOPIC_MAX];
  memset(topic, 'q', sizeof(topic));
  ck_assert_int_eq(
      wsh_bus_channel_topic(out, sizeof(out), prefix, topic, sizeof(topic)),
      WSH_BUS_CHANNEL_MAX - 1);
}
END_TEST

static bool same_ref(const wsh_bus_ref *a, const wsh_bus_ref *b) {
  return a->host == b->host && a->worker == b->worker && a->slot == b->slot &&
         a->serial == b->serial;
}

START_TEST(ref_strings) {
  wsh_bus_ref r = {0x00c0ffee12345678ull, 1, 42, 7}, p;
  char s[WSH_BUS_REF_STRLEN];
  ck_assert_int_eq(wsh_bus_ref_format(s, sizeof(s), &r), 23);
  ck_assert_str_eq(s, "00c0ffee12345678.1.42.7");
  ck_assert_int_eq(wsh_bus_ref_parse(&p, s, strlen(s)), 0);
  ck_assert(same_ref(&p, &r));
  /* The longest form fits. */
  wsh_bus_ref big = {~0ull, ~0u, ~0u, ~0u};
  ck_assert_int_eq(wsh_bus_ref_format(s, sizeof(s), &big),
                   WSH_BUS_REF_STRLEN - 1);
  ck_assert_int_eq(wsh_bus_ref_parse(&p, s, strlen(s)), 0);
  ck_assert(same_ref(&p, &big));
  ck_assert_int_eq(wsh_bus_ref_parse(&p, "00C0FFEE12345678.0.0.0", 22), 0);
  ck_assert_uint_eq(p.host, 0x00c0ffee12345678ull);
  ck_assert_int_eq(wsh_bus_ref_format(s, WSH_BUS_REF_STRLEN - 1, &r),
                   WEBSOCK_EINVAL);
  static const char *bad[] = {
      "",
      "00c0ffee12345678",
      "00c0ffee12345678.1.42",
      "00c0ffee12345678.1.42.7.",
      "00c0ffee12345678.1.42.7.9",
      "0c0ffee12345678.1.42.7",   /* 15 digits */
      "000c0ffee12345678.1.42.7", /* 17 digits */
      "00c0ffee1234567g.1.42.7",
      "0000000000000000.1.42.7",  /* host 0 */
      "00c0ffee12345678.01.42.7", /* leading zero */
      "00c0ffee12345678.+1.42.7",
      "00c0ffee12345678.-1.42.7",
      "00c0ffee12345678.1..7",
      "00c0ffee12345678.1.42.4294967296", /* 2^32 */
      "00c0ffee12345678.1.42.99999999999999999999",
      "00c0ffee12345678 1.42.7",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(wsh_bus_ref_parse(&p, bad[i], strlen(bad[i])) ==
                      WEBSOCK_EINVAL,
                  "accepted \"%s\"", bad[i]);
  /* Length is exact: a valid string followed by more bytes is refused. */
  ck_assert_int_eq(wsh_bus_ref_parse(&p, "00c0ffee12345678.1.42.7x", 24),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_bus_ref_parse(&p, "00c0ffee12345678.1.42.7x", 23), 0);
}
END_TEST

START_TEST(addresses) {
  wsh_bus_addr a;
  ck_assert_int_eq(wsh_bus_addr_parse(&a, "127.0.0.1:6380"), 0);
  ck_assert_str_eq(a.host, "127.0.0.1");
  ck_assert_int_eq(a.port, 6380);
  ck_assert_str_eq(a.path, "");
  ck_assert_int_eq(wsh_bus_addr_parse(&a, "redis.internal"), 0);
  ck_assert_str_eq(a.host, "redis.internal");
  ck_assert_int_eq(a.port, 6379);
  ck_assert_int_eq(wsh_bus_addr_parse(&a, "[::1]:7000"), 0);
  ck_assert_str_eq(a.host, "::1");
  ck_assert_int_eq(a.port, 7000);
  ck_assert_int_eq(wsh_bus_addr_parse(&a, "/run/redis/redis.sock"), 0);
  ck_assert_str_eq(a.path, "/run/redis/redis.sock");
  ck_assert_str_eq(a.host, "");
  ck_assert_int_eq(wsh_bus_addr_parse(&a, "./redis.sock"), 0);
  ck_assert_str_eq(a.path, "./redis.sock");
  static const char *bad[] = {"",        ":6379",  "h:",  "h:0",
                              "h:65536", "h:12x",  "::1", "[::1",
                              "[]:1",    "[::1]x", "h:-1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(wsh_bus_addr_parse(&a, bad[i]) == WEBSOCK_EINVAL,
                  "accepted \"%s\"", bad[i]);
  char path[200];
  memset(path, 'a', sizeof(path) - 1);
  path[0] = '/';
  path[sizeof(path) - 1] = '\0';
  ck_assert_int_eq(wsh_bus_addr_parse(&a, path), WEBSOCK_EINVAL);
}
END_TEST

int main(void) {
  Suite *su = suite_create("bus_msg");
  TCase *tc = tcase_create("bus_msg");
  tcase_add_test(tc, encode_matches_the_layout);
  tcase_add_test(tc, decode_reads_the_layout);
  tcase_add_test(tc, send_round_trip);
  tcase_add_test(tc, decode_refuses_broken_rules);
  tcase_add_test(tc, decode_refuses_zero_origin_and_huge_payload);
  tcase_add_test(tc, channel_names);
  tcase_add_test(tc, ref_strings);
  tcase_add_test(tc, addresses);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
