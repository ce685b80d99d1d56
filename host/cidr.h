/*
 * cidr.h - address ranges ("127.0.0.0/8, ::1") and the test whether a peer
 * address falls in one. Used by the console's console_allow.
 */
#ifndef WSH_CIDR_H
#define WSH_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wsh_cidr {
  int family;       /* AF_INET or AF_INET6 */
  uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
  unsigned prefix;  /* bits that must match */
} wsh_cidr;

/* Parses a comma-separated list of addresses and ranges ("10.0.0.0/8",
 * "::1", "192.168.1.7"); an address without a prefix is a single host.
 * Returns 0 with a malloc'd array in *out (the caller frees it; NULL and
 * *n = 0 for an empty list), or WEBSOCK_EINVAL with err naming the bad item,
 * or WEBSOCK_ENOMEM. */
int wsh_cidr_parse_list(const char *list, wsh_cidr **out, size_t *n, char *err,
                        size_t errlen);

/* True if addr ("1.2.3.4:5", "[::1]:5", "1.2.3.4" or "::1") is in one of
 * the n ranges. An IPv4-mapped IPv6 address counts as its IPv4 address.
 * An address that does not parse matches nothing. */
bool wsh_cidr_match(const wsh_cidr *list, size_t n, const char *addr);

#endif
