/*
 * proxyproto.h - the PROXY protocol header (versions 1 and 2, as HAProxy
 * sends it) that a load balancer puts before the client's bytes on a
 * listener configured for it. Pure: bytes in, addresses out; no I/O.
 */
#ifndef WSH_PROXYPROTO_H
#define WSH_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The largest header accepted (a v1 line is at most 107 bytes; a v2
 * header with its TLVs at most this). */
#define WSH_PROXY_MAX 1024

enum {
  WSH_PROXY_NEED_MORE = 0, /* a valid prefix so far: feed more bytes */
  WSH_PROXY_ERROR = -1     /* not a PROXY header: close the connection */
  /* > 0: the header is complete and this many bytes belong to it */
};

typedef struct wsh_proxy_info {
  int local; /* LOCAL (v2), UNKNOWN (v1) or an unsupported family: the
                connection's own addresses stand */
  struct sockaddr_storage src; /* the client, when !local */
  struct sockaddr_storage dst; /* the address the client connected to */
  socklen_t srclen, dstlen;
  int version; /* 1 or 2 */
} wsh_proxy_info;

/* Parses the bytes a connection sent so far (all of them, from the first).
 * Returns the header's length (> 0) with *info filled, WSH_PROXY_NEED_MORE,
 * or WSH_PROXY_ERROR with *why saying what was wrong (a static string). */
int wsh_proxy_parse(const uint8_t *buf, size_t len, wsh_proxy_info *info,
                    const char **why);

#endif
