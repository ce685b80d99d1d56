/*
 * headers.c - the pure rules of HTTP header fields shared by the handshake
 * and the SDK's test library (see headers.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strncasecmp under -std=c11 */
#endif
#include "protocol/headers.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define TOKEN_CHARS                                                            \
  "!#$%&'*+-.^_`|~0123456789"                                                  \
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

bool wsh_header_token(const char *s) {
  return s[0] != '\0' && s[strspn(s, TOKEN_CHARS)] == '\0';
}

bool wsh_header_value_ok(const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return false;
  }
  return true;
}

bool wsh_header_host_owned(const char *name) {
  static const char *const owned[] = {"Upgrade", "Connection", "Content-Length",
                                      "Transfer-Encoding"};
  for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
    if (strcasecmp(name, owned[i]) == 0)
      return true;
  return strncasecmp(name, "Sec-WebSocket-", 14) == 0;
}

bool wsh_header_addable(const char *name, const char *value) {
  return name && value && wsh_header_token(name) &&
         wsh_header_value_ok(value) && !wsh_header_host_owned(name);
}
