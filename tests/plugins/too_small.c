/*
 * too_small.c - a test plugin whose websock_handler_v1 is only 8 bytes: the
 * ABI version and a struct_size of 8, no callbacks at all. The host must
 * refuse it as too small, reading nothing past those 8 bytes.
 */
#include <websock.h>

struct tiny_handler {
  uint32_t abi_version;
  uint32_t struct_size;
};

WEBSOCK_EXPORT const struct tiny_handler websock_handler_v1 = {
    .abi_version = WEBSOCK_ABI_VERSION,
    .struct_size = sizeof(struct tiny_handler),
};
