/*
 * realip.h - the client's address behind a trusted reverse proxy: address
 * ranges (CIDR) and the X-Forwarded-For rule nginx's realip module applies
 * with real_ip_recursive on. Pure: strings and socket addresses in, an
 * address out; no I/O.
 */
#ifndef WSH_REALIP_H
#define WSH_REALIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct wsh_cidr {
  int family;       /* AF_INET or AF_INET6 */
  uint8_t addr[16]; /* network byte order; 4 bytes used for AF_INET */
  uint8_t bits;     /* prefix length */
} wsh_cidr;

typedef struct wsh_cidr_list {
  wsh_cidr *items;
  size_t n;
} wsh_cidr_list;

/* Parses "127.0.0.1, 10.0.0.0/8, ::1, fd00::/8" (commas and/or spaces).
 * Appends to list. Returns 0, or WEBSOCK_EINVAL with err naming the bad
 * item, or WEBSOCK_ENOMEM. */
int wsh_cidr_list_parse(wsh_cidr_list *list, const char *text, char *err,
                        size_t errlen);
void wsh_cidr_list_free(wsh_cidr_list *list);

/* Does an address fall in one of the ranges? An IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) matches as the IPv4 address it maps. */
bool wsh_cidr_list_match(const wsh_cidr_list *list, const struct sockaddr *sa);

/* The client's address for a request that came from `peer` with the given
 * X-Forwarded-For value (NULL if none): if the peer is trusted, the
 * rightmost address of the header that is not trusted itself (all trusted:
 * the leftmost), formatted as "ADDR:0" or "[ADDR6]:0" (the header carries
 * no port) into out. Returns true when out was written; false when the peer
 * is not trusted, there is no header, or the header holds anything but
 * addresses (then the peer's own address stands). */
bool wsh_realip_from_xff(const wsh_cidr_list *trusted,
                         const struct sockaddr *peer, const char *xff,
                         char *out, size_t outlen);

#endif
