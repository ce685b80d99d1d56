/*
 * fuzz_proxyproto.c - the PROXY protocol parser (host/proxyproto.c). The
 * input is what a connection sends first. The parser must never read past
 * the bytes given (each call gets an exact-size copy), must give the same
 * answer for the whole input as for the bytes up to a complete header, must
 * say NEED_MORE for every shorter prefix of a header it accepts, and must
 * never take more than WSH_PROXY_MAX bytes.
 */
#include "fuzz.h"
#include "protocol/proxyproto.h"

static int parse_copy(const uint8_t *data, size_t n, wsh_proxy_info *info) {
  uint8_t *c = fuzz_dup(data, n);
  const char *why = NULL;
  int r = wsh_proxy_parse(c, n, info, &why);
  free(c);
  FUZZ_CHECK(r != WSH_PROXY_ERROR || why != NULL, "an error says why");
  return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  wsh_proxy_info info;
  int r = parse_copy(data, size, &info);
  if (r <= 0)
    return 0;
  FUZZ_CHECK((size_t)r <= size && r <= WSH_PROXY_MAX, "header within input");
  FUZZ_CHECK(info.version == 1 || info.version == 2, "a version");
  FUZZ_CHECK(info.local || info.src.ss_family == AF_INET ||
                 info.src.ss_family == AF_INET6,
             "an address unless local");
  wsh_proxy_info again;
  FUZZ_CHECK(parse_copy(data, (size_t)r, &again) == r, "same on the header");
  for (size_t i = 0; i < (size_t)r; i += 1 + (size_t)r / 64)
    FUZZ_CHECK(parse_copy(data, i, &again) == WSH_PROXY_NEED_MORE,
               "prefixes need more");
  return 0;
}
