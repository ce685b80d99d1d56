/*
 * tls_int.h - what tls_conn.c needs from tls_ctx.c: a set's default
 * context, and a reference on the set while a handshake may still switch
 * contexts by SNI. Not for the rest of the host.
 */
#ifndef WSH_TLS_INT_H
#define WSH_TLS_INT_H

#include <openssl/ssl.h>

#include "network/tls.h"

/* The context new connections start from (the default certificate's). */
SSL_CTX *wsh_tls_set_default_ctx(const wsh_tls_set *s);

/* Takes one more reference on s. */
void wsh_tls_set_retain(wsh_tls_set *s);

#endif
