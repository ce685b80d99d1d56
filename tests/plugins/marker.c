/*
 * marker.c - a test plugin for hot reload: answers every message with
 * MARKER ":" followed by the message (text as text, binary as binary), and
 * reports MARKER as its version, so a client can tell which build of the
 * plugin serves it. The reload tests compile it at run time, once per
 * variant:
 *
 *   cc -shared -fPIC -fvisibility=hidden -I sdk/include -DMARKER=\"v2\" \
 *      marker.c -o plugins.d/marker.so
 *
 * Variants that the host must refuse:
 *   -DNO_TABLE       no websock_handler_v1 symbol at all
 *   -DBAD_ABI        the table claims ABI version 99
 *   -DUNDEFINED_REF  needs a function no host provides (RTLD_NOW fails)
 *
 * Route [options]:
 *   refuse = yes     load() refuses the route
 *   trace = FILE     load() and unload() append "load MARKER" and
 *                    "unload MARKER" to FILE
 *
 * Not built by CMake: the tests build it themselves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <websock.h>

#ifndef MARKER
#define MARKER "v0"
#endif

static char *marker_trace; /* from [options] trace, or NULL */

static void marker_note(const char *what) {
  if (!marker_trace)
    return;
  FILE *f = fopen(marker_trace, "a");
  if (f) {
    fprintf(f, "%s %s\n", what, MARKER);
    fclose(f);
  }
}

static int marker_load(const websock_options *options) {
  const char *refuse = websock_option(options, "refuse");
  const char *trace = websock_option(options, "trace");
  if (trace && *trace && !(marker_trace = strdup(trace)))
    return -1;
  marker_note("load");
  if (refuse && strcmp(refuse, "yes") == 0) {
    marker_note("refuse");
    free(marker_trace);
    marker_trace = NULL;
    return -1;
  }
  return 0;
}

static void marker_unload(void) {
  marker_note("unload");
  free(marker_trace);
  marker_trace = NULL;
}

#ifdef UNDEFINED_REF
/* Provided by no host: the plugin must fail at load, never mid-connection. */
int websock_no_such_function(websock_conn *conn);
#endif

static int marker_in(websock_conn *conn, void **state, websock_opcode opcode,
                     const uint8_t *data, size_t len) {
  static const char prefix[] = MARKER ":";
  size_t plen = sizeof(prefix) - 1;
  (void)state;
#ifdef UNDEFINED_REF
  if (len == 0)
    return websock_no_such_function(conn) == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
#endif
  uint8_t *buf = malloc(plen + len + 1);
  if (!buf)
    return WEBSOCK_STOP;
  memcpy(buf, prefix, plen);
  if (len)
    memcpy(buf + plen, data, len);
  int rc = websock_push(conn, opcode, buf, plen + len);
  free(buf);
  return rc == 0 ? WEBSOCK_OK : WEBSOCK_STOP;
}

#ifdef NO_TABLE
/* The same table under a name the host does not look for, and not exported. */
#define MARKER_TABLE marker_table_not_exported
#define MARKER_VISIBILITY static
#else
#define MARKER_TABLE websock_handler_v1
#define MARKER_VISIBILITY WEBSOCK_EXPORT
#endif

#ifdef BAD_ABI
#define MARKER_ABI 99
#else
#define MARKER_ABI WEBSOCK_ABI_VERSION
#endif

MARKER_VISIBILITY const struct websock_handler MARKER_TABLE = {
    .abi_version = MARKER_ABI,
    .struct_size = sizeof(struct websock_handler),
    .name = "marker",
    .version = MARKER,
    .load = marker_load,
    .unload = marker_unload,
    .handle_in = marker_in,
};

#ifdef NO_TABLE
/* Keeps the unexported table from being discarded as unused. */
WEBSOCK_EXPORT const void *marker_keep = &MARKER_TABLE;
#endif
