/*
 * plugin.h - loading one plugin .so: a private copy, dlopen(RTLD_NOW |
 * RTLD_LOCAL), the websock_handler_v1 table looked up and checked. Knows
 * nothing of routes or connections.
 */
#ifndef WSH_PLUGIN_H
#define WSH_PLUGIN_H

#include <stddef.h>

#include "plugins/contract.h"
#include "websock.h"

typedef struct wsh_plugin {
  void *dl;
  char *so_path;   /* the file the route names */
  char *copy_path; /* the private copy that was opened; deleted on close */
  /* The plugin's table, copied; fields beyond its struct_size are zero. */
  struct websock_handler h;
} wsh_plugin;

/* Copies so_path to copy_path, opens and checks it. On failure returns a
 * negative code and writes one line naming so_path and the cause into err:
 * no such file, not a loadable ELF object, missing symbol, unknown ABI
 * version, a too-small table, a NULL handle_in. Does not call load(). */
int wsh_plugin_open(const char *so_path, const char *copy_path,
                    wsh_plugin **out, char *err, size_t errlen);

/* dlclose()s the plugin and deletes its private copy. Does not call
 * unload(). */
void wsh_plugin_close(wsh_plugin *p);

#endif
