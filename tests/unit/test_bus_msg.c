/*
 * test_bus_msg.c - the bus's wire format (scripted bytes both ways, every
 * rule refused), counts announcements and the table other hosts' counts go
 * to (caps, expiry), channel names, reference strings and Redis addresses.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus_msg.h"
#include "bus/peer_counts.h"
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

/* A counts message from origin 9: "ab" 3, "c" 0, written out by hand. */
static const uint8_t counts_bytes[] = {
    1, 4,   0,   0,                                      /* version kind op T */
    0, 0,   0,   0, 0, 0, 0, 9,                          /* origin */
    0, 0,   0,   0, 0, 0, 0, 1,                          /* seq */
    0, 0,   0,   0, 0, 0, 0, 0,                          /* to.host */
    0, 0,   0,   0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 13, /* ... P = 13 */
    2, 'a', 'b', 0, 0, 0, 3,                             /* "ab" 3 */
    1, 'c', 0,   0, 0, 0};                               /* "c" 0 */

START_TEST(counts_messages) {
  uint8_t payload[64], out[128];
  size_t off = 0;
  ck_assert_int_eq(
      wsh_bus_count_put(payload, sizeof(payload), &off, "ab", 2, 3), 0);
  ck_assert_int_eq(wsh_bus_count_put(payload, sizeof(payload), &off, "c", 1, 0),
                   0);
  ck_assert_uint_eq(off, 13);
  wsh_bus_msg m = {.origin = 9,
                   .seq = 1,
                   .kind = WSH_BUS_COUNTS,
                   .data = payload,
                   .len = off};
  long n = wsh_bus_msg_encode(&m, out, sizeof(out));
  ck_assert_int_eq(n, (long)sizeof(counts_bytes));
  ck_assert_mem_eq(out, counts_bytes, sizeof(counts_bytes));
  wsh_bus_msg d;
  ck_assert_int_eq(wsh_bus_msg_decode(&d, counts_bytes, sizeof(counts_bytes)),
                   0);
  ck_assert_uint_eq(d.kind, WSH_BUS_COUNTS);
  wsh_bus_count c;
  off = 0;
  ck_assert_int_eq(wsh_bus_count_next(&c, d.data, d.len, &off), 1);
  ck_assert_uint_eq(c.topic_len, 2);
  ck_assert_mem_eq(c.topic, "ab", 2);
  ck_assert_uint_eq(c.count, 3);
  ck_assert_int_eq(wsh_bus_count_next(&c, d.data, d.len, &off), 1);
  ck_assert_uint_eq(c.count, 0);
  ck_assert_int_eq(wsh_bus_count_next(&c, d.data, d.len, &off), 0);
  /* Broken: a cut entry, a 0-length or NUL topic, no entry, a topic in the
   * header, a target. */
  uint8_t bad[sizeof(counts_bytes)];
  static const struct {
    size_t at;
    uint8_t v;
  } flips[] = {{44, 3}, {44, 0}, {45, 0}, {51, 0}, {3, 1}, {27, 1}, {2, 1}};
  for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
    memcpy(bad, counts_bytes, sizeof(bad));
    bad[flips[i].at] = flips[i].v;
    ck_assert_msg(wsh_bus_msg_decode(&d, bad, sizeof(bad)) == WEBSOCK_EINVAL,
                  "flip %zu accepted", i);
  }
  memcpy(bad, counts_bytes, 44);
  bad[43] = 0; /* P = 0 */
  ck_assert_int_eq(wsh_bus_msg_decode(&d, bad, 44), WEBSOCK_EINVAL);
  /* Putting refuses what could not be read back, and what does not fit. */
  off = 0;
  ck_assert_int_eq(wsh_bus_count_put(payload, sizeof(payload), &off, "", 0, 1),
                   WEBSOCK_EINVAL);
  ck_assert_int_eq(
      wsh_bus_count_put(payload, sizeof(payload), &off, "a\0b", 3, 1),
      WEBSOCK_EINVAL);
  ck_assert_int_eq(wsh_bus_count_put(payload, 5, &off, "ab", 2, 1),
                   WEBSOCK_EINVAL);
  ck_assert_uint_eq(off, 0);
  char ch[WSH_BUS_CHANNEL_MAX];
  ck_assert_int_eq(wsh_bus_channel_control(ch, sizeof(ch), "app1:"), 13);
  ck_assert_str_eq(ch, "app1:c:counts");
}
END_TEST

/* One announcement of (topic, count) pairs. */
static size_t announce(wsh_peer_counts *pc, uint64_t host, double now,
                       const char *topics[], const uint32_t counts[],
                       size_t n) {
  static uint8_t buf[1 << 16];
  size_t off = 0;
  for (size_t i = 0; i < n; i++)
    ck_assert_int_eq(wsh_bus_count_put(buf, sizeof(buf), &off, topics[i],
                                       strlen(topics[i]), counts[i]),
                     0);
  return wsh_peer_counts_apply(pc, host, buf, off, now);
}

#define SUM(pc, t, now) wsh_peer_counts_sum(pc, t, strlen(t), now)

START_TEST(peer_counts_sum_expire_and_caps) {
  wsh_peer_limits lim = {
      .entries_max = 6, .per_host_max = 3, .hosts_max = 3, .expiry_ms = 1000};
  wsh_peer_counts *pc = wsh_peer_counts_new(&lim);
  ck_assert_ptr_nonnull(pc);
  const char *t[] = {"a", "b", "c", "d"};
  uint32_t n[] = {1, 2, 3, 4};
  ck_assert_uint_eq(announce(pc, 1, 0, t, n, 2), 0);   /* host 1: a1 b2 */
  ck_assert_uint_eq(announce(pc, 2, 100, t, n, 1), 0); /* host 2: a1 */
  ck_assert_int_eq(SUM(pc, "a", 200), 2);
  ck_assert_int_eq(SUM(pc, "b", 200), 2);
  ck_assert_int_eq(SUM(pc, "zz", 200), 0);
  /* A new count replaces the old one; a 0 forgets it. */
  uint32_t five[] = {5}, zero[] = {0};
  announce(pc, 1, 300, t, five, 1);
  ck_assert_int_eq(SUM(pc, "a", 300), 6);
  announce(pc, 2, 300, t, zero, 1);
  ck_assert_int_eq(SUM(pc, "a", 300), 5);
  size_t hosts;
  ck_assert_uint_eq(wsh_peer_counts_entries(pc, &hosts), 2);
  ck_assert_uint_eq(hosts, 1);
  /* Per host: its fourth topic is dropped; in all: six; hosts: three. */
  ck_assert_uint_eq(announce(pc, 1, 400, t, n, 4), 1);
  ck_assert_int_eq(SUM(pc, "d", 400), 0);
  ck_assert_int_eq(SUM(pc, "c", 400), 3);
  ck_assert_uint_eq(announce(pc, 2, 400, t, n, 2), 0);
  ck_assert_uint_eq(announce(pc, 3, 400, t, n, 2), 1); /* the sixth fits */
  ck_assert_uint_eq(wsh_peer_counts_entries(pc, &hosts), 6);
  ck_assert_uint_eq(announce(pc, 4, 400, t, n, 1), 1); /* a fourth host */
  ck_assert_int_eq(SUM(pc, "a", 400), 3);              /* 1 + 1 + 1 */
  /* Host 1 refreshes a and b only: c expires 1000 ms after 400. */
  announce(pc, 1, 1300, t, n, 2);
  ck_assert_int_eq(SUM(pc, "c", 1399), 3);
  ck_assert_int_eq(SUM(pc, "c", 1400), 0); /* skipped before the sweep */
  wsh_peer_counts_expire(pc, 1400);
  ck_assert_uint_eq(wsh_peer_counts_entries(pc, &hosts), 2);
  ck_assert_uint_eq(hosts, 1);
  ck_assert_int_eq(SUM(pc, "a", 1400), 1);
  /* Room again: host 4 now fits. */
  ck_assert_uint_eq(announce(pc, 4, 1400, t, n, 1), 0);
  ck_assert_int_eq(SUM(pc, "a", 1400), 2);
  wsh_peer_counts_expire(pc, 5000);
  ck_assert_uint_eq(wsh_peer_counts_entries(pc, &hosts), 0);
  ck_assert_uint_eq(hosts, 0);
  ck_assert_uint_eq(announce(pc, 0, 5000, t, n, 1), 0); /* host 0: ignored */
  ck_assert_uint_eq(wsh_peer_counts_entries(pc, NULL), 0);
  wsh_peer_counts_free(pc);
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
  tcase_add_test(tc, counts_messages);
  tcase_add_test(tc, peer_counts_sum_expire_and_caps);
  suite_add_tcase(su, tc);
  SRunner *sr = srunner_create(su);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
