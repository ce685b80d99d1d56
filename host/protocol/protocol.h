/*
 * protocol.h - layer 1, protocol: RFC 6455 as bytes in, events out and
 * messages in, bytes out, with no I/O and no globals, so that it can be
 * unit-tested and fuzzed on its own: frames (frame.h), UTF-8 (utf8.h), the
 * upgrade request and its answer (handshake.h), the rules of the headers a
 * response may carry (headers.h), who a request came from behind a
 * proxy (proxyproto.h: the PROXY protocol header; realip.h: trusted ranges
 * and X-Forwarded-For). RFC 7692 deflate will live here too.
 *
 * May include: libc, libcrypto, http-parser, zlib; base/. Nothing above.
 */
#ifndef WSH_PROTOCOL_H
#define WSH_PROTOCOL_H

#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/headers.h"
#include "protocol/proxyproto.h"
#include "protocol/realip.h"
#include "protocol/utf8.h"

#endif
