/*
 * plugin.h - loading one plugin .so: a private copy, dlopen(RTLD_NOW |
 * RTLD_LOCAL), the websock_handler_v1 table looked up and checked. Knows
 * nothing of routes or connections.
 */
#ifndef WSH_PLUGIN_H
#define WSH_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "plugins/contract.h"
#include "websock.h"

typedef struct wsh_plugin {
  void *dl;
  char *so_path;   /* the file the route names */
  char *copy_path; /* the private copy that was opened; deleted on close */
  /* The plugin's table, copied; fields beyond its struct_size are zero. */
  struct websock_handler h;
  void *base;                /* where the copy is mapped (dladdr) */
  char label[192];           /* who it is, for websock_log(NULL, ...) */
  struct wsh_plugin *others; /* every open plugin (wsh_plugin_label_at) */
} wsh_plugin;

/* Copies so_path to copy_path, opens and checks it. On failure returns a
 * negative code and writes one line naming so_path and the cause into err:
 * no such file, not an ELF file for this host or truncated (checked
 * before the file is mapped), not loadable, missing symbol, unknown ABI
 * version, a too-small table, a NULL handle_in. Does not call load(). */
int wsh_plugin_open(const char *so_path, const char *copy_path,
                    wsh_plugin **out, char *err, size_t errlen);

/* The probe: before the host maps a plugin, `exe --probe-plugin COPY SO`
 * (websockd re-executed; main.c hands that command line to
 * wsh_plugin_probe_main) opens the private copy in a child and checks its
 * table, so that a crash or a hang while mapping it or in its constructors
 * refuses the plugin instead of killing the host. load() is not probed. */
#define WSH_PROBE_FLAG "--probe-plugin"
#define WSH_PROBE_TIMEOUT_MS 5000

typedef struct wsh_probe {
  const char *exe;     /* the websockd to re-execute; NULL: no probe */
  unsigned timeout_ms; /* then the child is killed and the plugin refused */
} wsh_probe;

/* Checks the ELF file open on fd (its size from fstat) before it is mapped:
 * an ELF header for this host's class, byte order and machine, a shared
 * object, the program and section header tables and every loadable segment
 * within the file. Returns 0, or a negative code with one line naming
 * so_path and the cause in err ("truncated: loadable segment 2 ends at byte
 * N but the file has M bytes"). */
int wsh_plugin_check_elf(const char *so_path, int fd, char *err, size_t errlen);

/* Runs the probe on copy_path (a private copy of so_path). Returns 0 if the
 * child opened it and found a good table, or a negative code with one line
 * in err: the child's own error, "crashed while being probed: signal N
 * (...)", or "hung while being probed". Reaps the child in every case. */
int wsh_plugin_probe(const wsh_probe *probe, const char *so_path,
                     const char *copy_path, char *err, size_t errlen);

/* The child's side of the probe: checks and opens copy_path, writes the
 * error line (naming so_path) to stdout, and _exit()s 0 or 1. */
_Noreturn int wsh_plugin_probe_main(const char *copy_path, const char *so_path);

/* wsh_plugin_open with the probe between the ELF check and the host's own
 * dlopen (probe NULL or probe->exe NULL: none). */
int wsh_plugin_open_probed(const char *so_path, const char *copy_path,
                           const wsh_probe *probe, wsh_plugin **out, char *err,
                           size_t errlen);

/* dlclose()s the plugin and deletes its private copy. Does not call
 * unload(). */
void wsh_plugin_close(wsh_plugin *p);

/* Names the plugin for log lines its code writes without a connection:
 * "route /chat plugin chat generation 3". Any thread. */
void wsh_plugin_set_label(wsh_plugin *p, const char *label);

/* The label of the open plugin whose code contains addr (a return address
 * in websock_log), copied into out; false if addr is in none of them. Any
 * thread. */
bool wsh_plugin_label_at(const void *addr, char *out, size_t outlen);

#endif
