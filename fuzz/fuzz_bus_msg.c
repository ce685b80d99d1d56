/*
 * fuzz_bus_msg.c - the bus's decoder (host/bus/bus_msg.c) on any bytes, as a
 * message from Redis could be: a message it accepts keeps every rule and
 * encodes back to exactly the same bytes; one it refuses leaves nothing
 * behind. A counts message's entries put back one by one give its payload
 * again. The same input, as a counts payload from another host, goes to
 * the table of other hosts' counts (peer_counts.c, with small caps: never
 * over them, what is kept sums up, entries expire); as text, to the
 * reference parser (whatever it accepts formats back to a string that
 * parses to the same reference) and the address parser (no crash, a port
 * in range).
 */
#include <stdbool.h>

#include "bus/bus_msg.h"
#include "bus/peer_counts.h"
#include "fuzz.h"

/* An accepted counts message: entries that keep the rules and, put back,
 * make exactly its payload. */
static void check_counts(const wsh_bus_msg *m) {
  FUZZ_CHECK(m->topic_len == 0 && m->to.host == 0 && m->len > 0,
             "counts message malformed");
  uint8_t *again = malloc(m->len);
  FUZZ_CHECK(again != NULL, "out of memory");
  wsh_bus_count c;
  size_t off = 0, put = 0;
  int rc;
  while ((rc = wsh_bus_count_next(&c, m->data, m->len, &off)) == 1) {
    FUZZ_CHECK(c.topic_len >= 1 && c.topic_len <= WSH_BUS_TOPIC_MAX &&
                   !memchr(c.topic, 0, c.topic_len),
               "a bad entry read");
    FUZZ_CHECK(wsh_bus_count_put(again, m->len, &put, c.topic, c.topic_len,
                                 c.count) == 0,
               "an entry read does not put back");
  }
  FUZZ_CHECK(rc == 0 && off == m->len && put == m->len,
             "an accepted payload does not read to its end");
  FUZZ_CHECK(memcmp(again, m->data, m->len) == 0,
             "entries put back differ from the payload");
  free(again);
}

/* The input as a counts payload (checked or not) from two hosts, into a
 * table with small caps. */
static void check_peers(const uint8_t *data, size_t size) {
  wsh_peer_limits lim = {
      .entries_max = 48, .per_host_max = 32, .hosts_max = 2, .expiry_ms = 1000};
  wsh_peer_counts *pc = wsh_peer_counts_new(&lim);
  FUZZ_CHECK(pc != NULL, "out of memory");
  size_t kept = 0, hosts = 0;
  for (uint64_t host = 1; host <= 3; host++) {
    size_t entries = 0;
    wsh_bus_count c;
    size_t off = 0;
    while (wsh_bus_count_next(&c, data, size, &off) == 1)
      entries++;
    size_t dropped = wsh_peer_counts_apply(pc, host, data, size, 0);
    FUZZ_CHECK(dropped <= entries, "dropped more than it read");
    kept = wsh_peer_counts_entries(pc, &hosts);
    FUZZ_CHECK(kept <= lim.entries_max && hosts <= lim.hosts_max,
               "over the caps");
  }
  wsh_bus_count c;
  size_t off = 0;
  while (wsh_bus_count_next(&c, data, size, &off) == 1)
    FUZZ_CHECK(wsh_peer_counts_sum(pc, c.topic, c.topic_len, 10) >= 0,
               "a negative sum");
  wsh_peer_counts_expire(pc, 500);
  FUZZ_CHECK(wsh_peer_counts_entries(pc, NULL) == kept, "expired too early");
  wsh_peer_counts_expire(pc, 1000);
  FUZZ_CHECK(wsh_peer_counts_entries(pc, &hosts) == 0 && hosts == 0,
             "not expired");
  wsh_peer_counts_free(pc);
}

static void check_message(const uint8_t *data, size_t size) {
  uint8_t *in = fuzz_dup(data, size);
  wsh_bus_msg m;

  if (wsh_bus_msg_decode(&m, in, size) != 0) {
    FUZZ_CHECK(m.topic == NULL && m.data == NULL && m.len == 0,
               "a refused message left fields set");
    free(in);
    return;
  }
  FUZZ_CHECK(m.origin != 0, "origin 0 accepted");
  FUZZ_CHECK(m.topic_len <= WSH_BUS_TOPIC_MAX, "topic too long");
  FUZZ_CHECK(m.len <= WSH_BUS_PAYLOAD_MAX, "payload too long");
  FUZZ_CHECK(wsh_bus_msg_size(&m) == size, "size differs from the input");
  if (m.kind == WSH_BUS_SEND)
    FUZZ_CHECK(m.topic_len == 0 && m.to.host != 0, "send without a target");
  else if (m.kind == WSH_BUS_COUNTS)
    check_counts(&m);
  else
    FUZZ_CHECK(m.topic_len > 0 && m.to.host == 0, "topic message malformed");
  if (m.topic_len)
    FUZZ_CHECK(!memchr(m.topic, 0, m.topic_len), "NUL in a topic");
  uint8_t *out = malloc(size);
  FUZZ_CHECK(out != NULL, "out of memory");
  FUZZ_CHECK(wsh_bus_msg_encode(&m, out, size) == (long)size,
             "an accepted message does not encode");
  FUZZ_CHECK(memcmp(out, in, size) == 0, "encoding differs from the input");
  free(out);
  free(in);
}

static void check_ref(const uint8_t *data, size_t size) {
  char *s = (char *)fuzz_dup(data, size);
  wsh_bus_ref r, again;
  char text[WSH_BUS_REF_STRLEN];

  if (wsh_bus_ref_parse(&r, s, size) == 0) {
    int n = wsh_bus_ref_format(text, sizeof(text), &r);
    FUZZ_CHECK(n > 0 && (size_t)n == size, "a different length back");
    FUZZ_CHECK(wsh_bus_ref_parse(&again, text, (size_t)n) == 0,
               "its own format refused");
    FUZZ_CHECK(again.host == r.host && again.worker == r.worker &&
                   again.slot == r.slot && again.serial == r.serial,
               "a different reference back");
  }
  free(s);
}

static void check_addr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  wsh_bus_addr a;

  FUZZ_CHECK(s != NULL, "out of memory");
  memcpy(s, data, size);
  s[size] = '\0';
  if (wsh_bus_addr_parse(&a, s) == 0) {
    if (a.path[0])
      FUZZ_CHECK(strchr(a.path, '/') && !a.host[0], "path without a slash");
    else
      FUZZ_CHECK(a.host[0] && a.port > 0 && a.port <= 65535, "bad host/port");
  }
  free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check_message(data, size);
  check_peers(data, size);
  check_ref(data, size);
  check_addr(data, size);
  return 0;
}
