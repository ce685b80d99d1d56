/*
 * bus_msg.h - what the bus puts on the wire and in names, with no I/O: the
 * binary form of one bus message (a publish or broadcast to a topic, or a
 * message for one connection of another host, or a host's announcement of
 * its subscriber counts), the Redis channel names, the
 * string form of a connection reference that crosses hosts, and the bus
 * address of the configuration. Pure functions; fuzzed (fuzz_bus_msg.c).
 *
 * A message, all integers big-endian, 44 bytes of header then the topic and
 * the payload, nothing after them:
 *
 *   0  u8   version (1)
 *   1  u8   kind: 1 publish (handle_info), 2 broadcast, 3 send, 4 counts
 *   2  u8   opcode: broadcast 1 (text) or 2 (binary); otherwise 0
 *   3  u8   topic length T: 1..255 for publish and broadcast, 0 for send
 *           and counts
 *   4  u64  origin: the sending host's id (never 0)
 *  12  u64  seq: per origin and channel, from 1, in publishing order
 *  20  u64  to.host: send only (never 0 there); otherwise 0
 *  28  u32  to.worker \
 *  32  u32  to.slot    > send only; otherwise 0
 *  36  u32  to.serial /
 *  40  u32  payload length P (at most WSH_BUS_PAYLOAD_MAX)
 *  44  T bytes of topic (no NUL byte), then P bytes of payload
 *
 * A counts message (on the control channel) announces how many local
 * subscribers its origin has for some topics. Its payload is one or more
 * entries, nothing between or after them:
 *
 *   0  u8   topic length L: 1..255
 *   1  L bytes of topic (no NUL byte)
 * 1+L  u32  the origin's subscribers of that topic now (0: none any more)
 */
#ifndef WSH_BUS_MSG_H
#define WSH_BUS_MSG_H

#include <stddef.h>
#include <stdint.h>

#define WSH_BUS_MSG_VERSION 1
#define WSH_BUS_MSG_HEADER 44
#define WSH_BUS_TOPIC_MAX 255
#define WSH_BUS_PAYLOAD_MAX (64u << 20)
#define WSH_BUS_PREFIX_MAX 64
/* The longest entry of a counts payload. */
#define WSH_BUS_COUNT_ENTRY_MAX (1 + WSH_BUS_TOPIC_MAX + 4)
/* The longest channel name, with its NUL: prefix, "t:" and a topic. */
#define WSH_BUS_CHANNEL_MAX (WSH_BUS_PREFIX_MAX + 2 + WSH_BUS_TOPIC_MAX + 1)
/* "<16 hex digits>.<worker>.<slot>.<serial>" and its NUL. */
#define WSH_BUS_REF_STRLEN (16 + 3 * 11 + 1)

enum {
  WSH_BUS_PUBLISH = 1,   /* raw data for handle_info */
  WSH_BUS_BROADCAST = 2, /* one message (opcode) for every subscriber */
  WSH_BUS_SEND = 3,      /* data for handle_info of one connection */
  WSH_BUS_COUNTS = 4     /* the origin's subscriber counts (payload) */
};

/* A connection anywhere: its host's id and where it lives there. */
typedef struct wsh_bus_ref {
  uint64_t host;
  uint32_t worker;
  uint32_t slot;
  uint32_t serial;
} wsh_bus_ref;

/* One message. After wsh_bus_msg_decode, topic and data point into the
 * decoded buffer (topic is not NUL-terminated: topic_len says its length). */
typedef struct wsh_bus_msg {
  uint64_t origin;
  uint64_t seq;
  uint8_t kind;
  uint8_t opcode;
  const char *topic;
  size_t topic_len;
  wsh_bus_ref to; /* WSH_BUS_SEND */
  const uint8_t *data;
  size_t len;
} wsh_bus_msg;

/* The encoded size of m (header, topic and payload). */
size_t wsh_bus_msg_size(const wsh_bus_msg *m);
/* Writes m to out[0..cap). Returns the number of bytes written, or
 * WEBSOCK_EINVAL if m breaks a rule above or does not fit in cap. */
long wsh_bus_msg_encode(const wsh_bus_msg *m, uint8_t *out, size_t cap);
/* Reads exactly buf[0..len) into *m. Returns 0, or WEBSOCK_EINVAL if the
 * bytes are not one valid message (short, long, unknown version or kind,
 * fields that do not fit the kind, a NUL in the topic, a counts payload
 * that is not a whole number of valid entries). */
int wsh_bus_msg_decode(wsh_bus_msg *m, const uint8_t *buf, size_t len);

/* One entry of a counts payload; topic points into the payload. */
typedef struct wsh_bus_count {
  const char *topic;
  size_t topic_len;
  uint32_t count;
} wsh_bus_count;

/* Appends an entry to out[*off..cap) and advances *off. Returns 0, or
 * WEBSOCK_EINVAL (empty or long topic, a NUL in it, no room). */
int wsh_bus_count_put(uint8_t *out, size_t cap, size_t *off, const char *topic,
                      size_t topic_len, uint32_t count);
/* Reads the entry at data[*off..len) into *c and advances *off. Returns 1
 * for an entry, 0 at the end, WEBSOCK_EINVAL for a malformed one. */
int wsh_bus_count_next(wsh_bus_count *c, const uint8_t *data, size_t len,
                       size_t *off);

/* Channel names: "<prefix>t:<topic>" for a topic, "<prefix>h:<16 hex>" for
 * a host's own messages, "<prefix>c:counts" for every host's counts
 * announcements (the control channel). Write the name and its NUL to
 * out[0..cap); return its length, or WEBSOCK_EINVAL (prefix or topic too long,
 * empty topic, out too small). */
int wsh_bus_channel_topic(char *out, size_t cap, const char *prefix,
                          const char *topic, size_t topic_len);
int wsh_bus_channel_host(char *out, size_t cap, const char *prefix,
                         uint64_t host);
int wsh_bus_channel_control(char *out, size_t cap, const char *prefix);

/* A reference as text, "<host: 16 hex digits>.<worker>.<slot>.<serial>"
 * (decimal), e.g. "00c0ffee12345678.1.42.7". Format returns the length
 * written (with a NUL) or WEBSOCK_EINVAL (cap below WSH_BUS_REF_STRLEN, or
 * host 0). Parse reads exactly s[0..len): 16 hex digits (either case), then
 * three decimal numbers of at most 32 bits without sign or leading zeros;
 * host 0 is refused. Returns 0 or WEBSOCK_EINVAL. */
int wsh_bus_ref_format(char *out, size_t cap, const wsh_bus_ref *r);
int wsh_bus_ref_parse(wsh_bus_ref *r, const char *s, size_t len);

/* Where the bus's Redis is: "HOST:PORT", "[IPV6]:PORT", "HOST" (port
 * 6379), or a unix socket path (any string with a '/'). */
typedef struct wsh_bus_addr {
  char host[256]; /* "" for a unix socket */
  int port;
  char path[108]; /* sun_path */
} wsh_bus_addr;

/* Returns 0 or WEBSOCK_EINVAL (empty, bad port, name or path too long). */
int wsh_bus_addr_parse(wsh_bus_addr *a, const char *s);

#endif
