/*
 * tls_conf.c - the TLS settings of the host config: listen_tls, tls_cert,
 * tls_key, tls_client_ca and tls_ktls in [server] (and as long options),
 * and one [tls "LABEL"] section per further certificate (cert, key, names).
 * Only strings here; tls_ctx.c reads the files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/tls_conf.h"
#include "websock.h"

void wsh_tls_conf_init(wsh_tls_conf *c) {
  memset(c, 0, sizeof(*c));
}

static void free_strings(char **v, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void cert_conf_free(wsh_tls_cert_conf *cc) {
  free(cc->label);
  free(cc->cert_file);
  free(cc->key_file);
  free_strings(cc->names, cc->nnames);
  memset(cc, 0, sizeof(*cc));
}

void wsh_tls_conf_free(wsh_tls_conf *c) {
  free_strings(c->listen, c->nlisten);
  cert_conf_free(&c->dflt);
  for (size_t i = 0; i < c->ncerts; i++)
    cert_conf_free(&c->certs[i]);
  free(c->certs);
  free(c->client_ca);
  memset(c, 0, sizeof(*c));
}

static int push_string(char ***v, size_t *n, const char *s, size_t len) {
  char **grown = realloc(*v, (*n + 1) * sizeof(char *));
  if (!grown)
    return WEBSOCK_ENOMEM;
  *v = grown;
  if (!(grown[*n] = strndup(s, len)))
    return WEBSOCK_ENOMEM;
  (*n)++;
  return 0;
}

static int set_string(char **dst, const char *value) {
  char *v = strdup(value);
  if (!v)
    return WEBSOCK_ENOMEM;
  free(*dst);
  *dst = v;
  return 0;
}

/* The LABEL of `tls "LABEL"` into out; 0, or -1 if section is not one. */
static int section_label(const char *section, char *out, size_t outlen) {
  size_t n = strlen(section);
  if (n < 6 || strncmp(section, "tls \"", 5) != 0 || section[n - 1] != '"')
    return -1;
  n -= 6;
  if (n == 0 || n >= outlen || memchr(section + 5, '"', n))
    return -1;
  memcpy(out, section + 5, n);
  out[n] = '\0';
  return 0;
}

int wsh_tls_conf_is_section(const char *section) {
  char label[256];
  return section && section_label(section, label, sizeof(label)) == 0;
}

/* A server name for names =: a DNS name, "*." allowed as its first label. */
static int valid_name(const char *s, size_t n) {
  if (n == 0 || n > 253)
    return 0;
  if (n > 2 && s[0] == '*' && s[1] == '.')
    s += 2, n -= 2;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
      return 0;
  }
  return s[0] != '.' && s[n - 1] != '.';
}

/* names = a.example.com, *.example.com (commas or spaces between). */
static int set_names(wsh_tls_cert_conf *cc, const char *value, char *err,
                     size_t errlen) {
  const char *p = value;
  free_strings(cc->names, cc->nnames);
  cc->names = NULL;
  cc->nnames = 0;
  while (*p) {
    size_t n;
    p += strspn(p, " \t,");
    n = strcspn(p, " \t,");
    if (n == 0)
      break;
    if (!valid_name(p, n)) {
      snprintf(err, errlen, "names: \"%.*s\" is not a host name", (int)n, p);
      return WEBSOCK_EINVAL;
    }
    if (push_string(&cc->names, &cc->nnames, p, n) != 0)
      return WEBSOCK_ENOMEM;
    p += n;
  }
  if (cc->nnames == 0) {
    snprintf(err, errlen, "names: empty");
    return WEBSOCK_EINVAL;
  }
  return 0;
}

static wsh_tls_cert_conf *find_or_add_section(wsh_tls_conf *c,
                                              const char *label) {
  wsh_tls_cert_conf *grown;
  for (size_t i = 0; i < c->ncerts; i++)
    if (strcmp(c->certs[i].label, label) == 0)
      return &c->certs[i];
  grown = realloc(c->certs, (c->ncerts + 1) * sizeof(*grown));
  if (!grown)
    return NULL;
  c->certs = grown;
  memset(&grown[c->ncerts], 0, sizeof(*grown));
  if (!(grown[c->ncerts].label = strdup(label)))
    return NULL;
  return &grown[c->ncerts++];
}

static int set_section_key(wsh_tls_conf *c, const char *label, const char *key,
                           const char *value, char *err, size_t errlen) {
  wsh_tls_cert_conf *cc = find_or_add_section(c, label);
  int rc = 0;
  if (!cc)
    return WEBSOCK_ENOMEM;
  if (strcmp(key, "cert") == 0)
    rc = set_string(&cc->cert_file, value);
  else if (strcmp(key, "key") == 0)
    rc = set_string(&cc->key_file, value);
  else if (strcmp(key, "names") == 0)
    rc = set_names(cc, value, err, errlen);
  else {
    snprintf(err, errlen,
             "[tls \"%s\"]: unknown setting \"%s\" (cert, key, "
             "names)",
             label, key);
    return WEBSOCK_EINVAL;
  }
  if (rc == WEBSOCK_EINVAL) {
    char what[256];
    snprintf(what, sizeof(what), "%s", err);
    snprintf(err, errlen, "[tls \"%s\"] %s", label, what);
  }
  return rc;
}

static int parse_on_off(const char *v, int *out) {
  if (!strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
      !strcasecmp(v, "true"))
    *out = 1;
  else if (!strcasecmp(v, "off") || !strcasecmp(v, "no") || !strcmp(v, "0") ||
           !strcasecmp(v, "false"))
    *out = 0;
  else
    return -1;
  return 0;
}

static int set_server_key(wsh_tls_conf *c, const char *key, const char *value,
                          char *err, size_t errlen) {
  if (strcmp(key, "listen_tls") == 0)
    return push_string(&c->listen, &c->nlisten, value, strlen(value));
  if (strcmp(key, "tls_cert") == 0)
    return set_string(&c->dflt.cert_file, value);
  if (strcmp(key, "tls_key") == 0)
    return set_string(&c->dflt.key_file, value);
  if (strcmp(key, "tls_client_ca") == 0)
    return set_string(&c->client_ca, value);
  if (strcmp(key, "tls_ktls") == 0) {
    if (parse_on_off(value, &c->ktls) == 0)
      return 0;
    snprintf(err, errlen, "tls_ktls: invalid value \"%s\" (on or off)", value);
    return WEBSOCK_EINVAL;
  }
  snprintf(err, errlen, "unknown setting \"%s\"", key);
  return WEBSOCK_EINVAL;
}

static int is_server_key(const char *key) {
  static const char *const keys[] = {"listen_tls", "tls_cert", "tls_key",
                                     "tls_client_ca", "tls_ktls"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (strcmp(key, keys[i]) == 0)
      return 1;
  return 0;
}

int wsh_tls_conf_set(wsh_tls_conf *c, const char *section, const char *key,
                     const char *value, char *err, size_t errlen) {
  int server = !section || strcmp(section, "server") == 0;
  char label[256];
  int rc;
  if (!server && section_label(section, label, sizeof(label)) != 0) {
    snprintf(err, errlen, "unknown section [%s]", section);
    return WEBSOCK_ENOENT;
  }
  if (server && !is_server_key(key)) {
    snprintf(err, errlen, "unknown setting \"%s\"", key);
    return WEBSOCK_ENOENT;
  }
  if (!*value) {
    snprintf(err, errlen, "%s: empty value", key);
    return WEBSOCK_EINVAL;
  }
  rc = server ? set_server_key(c, key, value, err, errlen)
              : set_section_key(c, label, key, value, err, errlen);
  if (rc == WEBSOCK_ENOMEM)
    snprintf(err, errlen, "%s: out of memory", key);
  return rc;
}

static int cert_conf_check(const wsh_tls_cert_conf *cc, int in_server,
                           char *err, size_t errlen) {
  if (cc->cert_file)
    return 0;
  if (in_server)
    snprintf(err, errlen, "tls_key is set without tls_cert");
  else
    snprintf(err, errlen, "[tls \"%s\"]: no cert", cc->label);
  return WEBSOCK_EINVAL;
}

int wsh_tls_conf_finish(const wsh_tls_conf *c, char *err, size_t errlen) {
  if (c->dflt.key_file && cert_conf_check(&c->dflt, 1, err, errlen))
    return WEBSOCK_EINVAL;
  for (size_t i = 0; i < c->ncerts; i++)
    if (cert_conf_check(&c->certs[i], 0, err, errlen))
      return WEBSOCK_EINVAL;
  if (c->nlisten && !c->dflt.cert_file && !c->ncerts) {
    snprintf(err, errlen,
             "listen_tls needs a certificate: tls_cert and "
             "tls_key, or a [tls \"NAME\"] section");
    return WEBSOCK_EINVAL;
  }
  return 0;
}
