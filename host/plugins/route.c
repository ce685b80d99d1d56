/*
 * route.c - reads route files (plugins.d/NAME.conf) with inih: the route's
 * keys at the top, its plugin's [options] below. Unknown keys, unknown
 * sections and missing required keys are errors naming the file and line.
 */
#include "plugins/route.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/inifile.h"

typedef struct route_parse {
  wsh_route_conf *rc;
  const char *file;
  wsh_ini_errors e;
} route_parse;

#define fail(p, ...) wsh_ini_fail(&(p)->e, __VA_ARGS__)

int wsh_options_add(websock_options *o, const char *key, const char *value) {
  if (o->n == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 4;
    wsh_kv *items = realloc(o->items, cap * sizeof(*items));
    if (!items)
      return WEBSOCK_ENOMEM;
    o->items = items;
    o->cap = cap;
  }
  wsh_kv *kv = &o->items[o->n];
  kv->key = strdup(key);
  kv->value = strdup(value);
  kv->line = 0;
  if (!kv->key || !kv->value) {
    free(kv->key);
    free(kv->value);
    return WEBSOCK_ENOMEM;
  }
  o->n++;
  return 0;
}

void wsh_options_free(websock_options *o) {
  for (size_t i = 0; i < o->n; i++) {
    free(o->items[i].key);
    free(o->items[i].value);
  }
  free(o->items);
  memset(o, 0, sizeof(*o));
}

/* Splits "a, b c" into a malloc'd array of tokens (commas or blanks). */
static int split_list(const char *value, char ***out, size_t *n) {
  char *copy = strdup(value), *save = NULL;
  if (!copy)
    return WEBSOCK_ENOMEM;
  for (char *t = strtok_r(copy, ", \t", &save); t;
       t = strtok_r(NULL, ", \t", &save)) {
    char **list = realloc(*out, (*n + 1) * sizeof(char *));
    if (!list)
      goto out_nomem;
    *out = list;
    if (!(list[*n] = strdup(t)))
      goto out_nomem;
    (*n)++;
  }
  free(copy);
  return 0;
out_nomem:
  free(copy);
  return WEBSOCK_ENOMEM;
}

static void free_list(char **list, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(list[i]);
  free(list);
}

/* plugin = x.so is relative to the directory of the .conf file. */
static char *resolve_plugin(const char *conf, const char *plugin) {
  if (plugin[0] == '/')
    return strdup(plugin);
  const char *slash = strrchr(conf, '/');
  size_t dirlen = slash ? (size_t)(slash - conf) : 1;
  const char *dir = slash ? conf : ".";
  size_t len = dirlen + 1 + strlen(plugin) + 1;
  char *out = malloc(len);
  if (out)
    snprintf(out, len, "%.*s/%s", (int)dirlen, dir, plugin);
  return out;
}

/* A window's bits: lo..15. */
static int parse_bits(const char *value, int lo, uint8_t *out) {
  uint64_t v;
  if (wsh_parse_u64(value, &v) || v < (uint64_t)lo || v > 15)
    return -1;
  *out = (uint8_t)v;
  return 0;
}

/* compression, compression_min_size, compression_level, the window bits,
 * compression_mem_level and compression_idle_ms (permessage-deflate). */
static int set_compression_key(route_parse *p, const char *name,
                               const char *value) {
  wsh_pmd_config *z = &p->rc->pmd;
  uint64_t v;
  if (strcmp(name, "compression") == 0) {
    if (strcmp(value, "off") == 0)
      z->mode = WSH_PMD_OFF;
    else if (strcmp(value, "shared") == 0)
      z->mode = WSH_PMD_SHARED;
    else if (strcmp(value, "dedicated") == 0)
      z->mode = WSH_PMD_DEDICATED;
    else
      return fail(p, "compression must be off, shared or dedicated, not \"%s\"",
                  value);
  } else if (strcmp(name, "compression_min_size") == 0) {
    if (wsh_parse_size(value, &v))
      return fail(p, "compression_min_size: not a size: \"%s\"", value);
    z->min_size = (size_t)v;
  } else if (strcmp(name, "compression_level") == 0) {
    if (wsh_parse_u64(value, &v) || v < 1 || v > 9)
      return fail(p, "compression_level must be 1 to 9, not \"%s\"", value);
    z->level = (uint8_t)v;
  } else if (strcmp(name, "compression_mem_level") == 0) {
    if (wsh_parse_u64(value, &v) || v < 1 || v > 9)
      return fail(p, "compression_mem_level must be 1 to 9, not \"%s\"", value);
    z->mem_level = (uint8_t)v;
  } else if (strcmp(name, "compression_server_window_bits") == 0) {
    if (parse_bits(value, 9, &z->server_window_bits))
      return fail(p,
                  "compression_server_window_bits must be 9 to 15, not "
                  "\"%s\"",
                  value);
  } else if (strcmp(name, "compression_client_window_bits") == 0) {
    if (parse_bits(value, 8, &z->client_window_bits))
      return fail(p,
                  "compression_client_window_bits must be 8 to 15, not "
                  "\"%s\"",
                  value);
  } else if (strcmp(name, "compression_idle_ms") == 0) {
    if (wsh_parse_u64(value, &p->rc->pmd_idle_ms) || p->rc->pmd_idle_ms == 0)
      return fail(p, "compression_idle_ms: not a number over 0: \"%s\"", value);
  } else {
    return fail(p, "unknown key \"%s\"", name);
  }
  return 1;
}

static int set_route_key(route_parse *p, const char *name, const char *value) {
  wsh_route_conf *rc = p->rc;
  if (strcmp(name, "path") == 0) {
    if (rc->path)
      return fail(p, "path given twice (\"%s\")", value);
    if (value[0] != '/' || strpbrk(value, "?# \t"))
      return fail(p, "path must start with '/' and have no query: \"%s\"",
                  value);
    char why[160];
    if (wsh_path_pattern_parse(value, &rc->pattern, why, sizeof(why)) != 0)
      return fail(p, "path \"%s\": %s", value, why);
    if (!(rc->path = strdup(value)))
      return fail(p, "out of memory");
  } else if (strcmp(name, "plugin") == 0) {
    if (rc->plugin_path || !*value)
      return fail(p, "plugin given twice or empty");
    if (!(rc->plugin_path = resolve_plugin(p->file, value)))
      return fail(p, "out of memory");
  } else if (strcmp(name, "subprotocols") == 0) {
    if (rc->subprotocols)
      return fail(p, "subprotocols given twice");
    if (split_list(value, &rc->subprotocols, &rc->nsubprotocols))
      return fail(p, "out of memory");
  } else if (strcmp(name, "origins") == 0) {
    if (rc->origins)
      return fail(p, "origins given twice");
    if (split_list(value, &rc->origins, &rc->norigins))
      return fail(p, "out of memory");
  } else if (strcmp(name, "max_message_size") == 0) {
    if (wsh_parse_size(value, &rc->max_message_size) ||
        rc->max_message_size == 0)
      return fail(p, "max_message_size: not a size: \"%s\"", value);
  } else if (strcmp(name, "idle_timeout_ms") == 0) {
    if (wsh_parse_u64(value, &rc->idle_timeout_ms))
      return fail(p, "idle_timeout_ms: not a number: \"%s\"", value);
  } else if (strcmp(name, "max_unsent") == 0) {
    if (wsh_parse_size(value, &rc->max_unsent) || rc->max_unsent == 0)
      return fail(p, "max_unsent: not a size: \"%s\"", value);
  } else if (strcmp(name, "pause_reading_at") == 0) {
    if (wsh_parse_size(value, &rc->pause_reading_at) ||
        rc->pause_reading_at == 0)
      return fail(p, "pause_reading_at: not a size: \"%s\"", value);
  } else if (strcmp(name, "on_max_unsent") == 0) {
    if (strcmp(value, "close") == 0)
      rc->on_max_unsent = WSH_FULL_CLOSE;
    else if (strcmp(value, "drop") == 0)
      rc->on_max_unsent = WSH_FULL_DROP;
    else
      return fail(p, "on_max_unsent must be close or drop, not \"%s\"", value);
  } else if (strcmp(name, "ping_interval_ms") == 0) {
    if (wsh_parse_u64(value, &rc->ping_interval_ms))
      return fail(p, "ping_interval_ms: not a number: \"%s\"", value);
  } else if (strcmp(name, "ping_timeout_ms") == 0) {
    if (wsh_parse_u64(value, &rc->ping_timeout_ms) || rc->ping_timeout_ms == 0)
      return fail(p, "ping_timeout_ms: not a number: \"%s\"", value);
  } else if (strncmp(name, "compression", 11) == 0) {
    return set_compression_key(p, name, value);
  } else if (strcmp(name, "reload") == 0) {
    if (strcmp(value, "drain") == 0)
      rc->reload = WSH_RELOAD_DRAIN;
    else if (strcmp(value, "restart") == 0)
      rc->reload = WSH_RELOAD_RESTART;
    else if (strcmp(value, "handoff") == 0)
      rc->reload = WSH_RELOAD_HANDOFF;
    else
      return fail(p, "reload must be drain, restart or handoff, not \"%s\"",
                  value);
  } else {
    return fail(p, "unknown key \"%s\"", name);
  }
  return 1;
}

static int on_ini(void *user, const char *section, const char *name,
                  const char *value) {
  route_parse *p = user;
  if (p->e.failed)
    return 0;
  if (section[0] == '\0')
    return set_route_key(p, name, value);
  if (strcmp(section, "options") == 0) {
    if (wsh_options_add(&p->rc->options, name, value))
      return fail(p, "out of memory");
    p->rc->options.items[p->rc->options.n - 1].line = p->e.pos.line;
    return 1;
  }
  return fail(p, "unknown section [%s] (only [options])", section);
}

int wsh_route_conf_load(const char *file, wsh_route_conf **out, char *err,
                        size_t errlen) {
  wsh_route_conf *rc = calloc(1, sizeof(*rc));
  if (!rc)
    return WEBSOCK_ENOMEM;
  rc->max_message_size = WSH_DEFAULT_MAX_MESSAGE;
  rc->max_unsent = WSH_DEFAULT_MAX_UNSENT;
  rc->pause_reading_at = WSH_DEFAULT_PAUSE_READING;
  rc->ping_timeout_ms = 10000;
  wsh_pmd_config_default(&rc->pmd);
  rc->pmd.level = WSH_DEFAULT_PMD_LEVEL;
  rc->pmd.mem_level = WSH_DEFAULT_PMD_MEM_LEVEL;
  rc->pmd_idle_ms = WSH_DEFAULT_PMD_IDLE_MS;
  route_parse p = {.rc = rc, .file = file};
  if (!(rc->conf_path = strdup(file)))
    goto out_free;
  int line = wsh_ini_parse(file, on_ini, &p, &p.e.pos);
  if (line == -1) {
    snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
    goto out_free;
  }
  char why[600];
  if (wsh_ini_first_error(&p.e, line, WSH_INI_TOO_LONG, why, sizeof(why))) {
    snprintf(err, errlen, "%s: %s", file, why);
    goto out_free;
  }
  if (!rc->path || !rc->plugin_path) {
    snprintf(err, errlen, "%s: missing required key \"%s\"", file,
             rc->path ? "plugin" : "path");
    goto out_free;
  }
  *out = rc;
  return 0;
out_free:
  wsh_route_conf_free(rc);
  return WEBSOCK_EINVAL;
}

void wsh_route_conf_free(wsh_route_conf *rc) {
  if (!rc)
    return;
  free(rc->conf_path);
  free(rc->path);
  wsh_path_pattern_free(&rc->pattern);
  free(rc->plugin_path);
  free_list(rc->subprotocols, rc->nsubprotocols);
  free_list(rc->origins, rc->norigins);
  wsh_options_free(&rc->options);
  free(rc);
}

static int is_conf(const struct dirent *d) {
  size_t n = strlen(d->d_name);
  return d->d_name[0] != '.' && n > 5 &&
         strcmp(d->d_name + n - 5, ".conf") == 0;
}

int wsh_route_dir_list(const char *dir, char ***files, size_t *n, char *err,
                       size_t errlen) {
  struct dirent **names;
  int count = scandir(dir, &names, is_conf, alphasort);
  if (count < 0) {
    snprintf(err, errlen, "%s: cannot read directory: %s", dir,
             strerror(errno));
    return WEBSOCK_ENOENT;
  }
  int rc = 0;
  *files = calloc((size_t)count + 1, sizeof(char *));
  *n = 0;
  for (int i = 0; i < count; i++) {
    size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
    char *path = *files ? malloc(len) : NULL;
    if (path) {
      snprintf(path, len, "%s/%s", dir, names[i]->d_name);
      (*files)[(*n)++] = path;
    } else {
      rc = WEBSOCK_ENOMEM;
    }
    free(names[i]);
  }
  free(names);
  if (rc) {
    snprintf(err, errlen, "%s: out of memory", dir);
    wsh_route_dir_list_free(*files, *n);
    *files = NULL;
    *n = 0;
  }
  return rc;
}

void wsh_route_dir_list_free(char **files, size_t n) {
  free_list(files, n);
}

int wsh_route_origin_allowed(const wsh_route_conf *rc, const char *origin) {
  if (rc->norigins == 0)
    return 1;
  if (!origin) /* not a browser: origin checks protect browsers only */
    return 1;
  for (size_t i = 0; i < rc->norigins; i++)
    if (strcmp(rc->origins[i], "*") == 0 ||
        strcasecmp(rc->origins[i], origin) == 0)
      return 1;
  return 0;
}
