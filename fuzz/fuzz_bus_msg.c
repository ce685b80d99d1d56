/*
 * fuzz_bus_msg.c - the bus's decoder (host/bus/bus_msg.c) on any bytes, as a
 * message from Redis could be: a message it accepts keeps every rule and
 * encodes back to exactly the same bytes; one it refuses leaves nothing
 * behind. The same input, as text, goes to the reference parser (whatever
 * it accepts formats back to a string that parses to the same reference)
 * and the address parser (no crash, a port in range).
 */
#include <stdbool.h>

#include "bus/bus_msg.h"
#include "fuzz.h"

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
  check_ref(data, size);
  check_addr(data, size);
  return 0;
}
