/*
 * tls_conf.h - the TLS settings of the host config file and command line
 * (listen_tls, tls_cert, tls_key, tls_client_ca, tls_ktls in [server]; one
 * [tls "LABEL"] section per further certificate). Only the settings: the
 * certificates are read by network/tls.h. Here in base/ so that the host
 * config reader (config.c) can own them.
 */
#ifndef WSH_TLS_CONF_H
#define WSH_TLS_CONF_H

#include <stddef.h>

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */
/* ------------------------------------------------------------------------ */

/* One certificate: a [tls "LABEL"] section of the host config file, or the
 * default one given by tls_cert/tls_key in [server] (--tls-cert/--tls-key). */
typedef struct wsh_tls_cert_conf {
  char *label;     /* the section's LABEL; "default" for [server] */
  char *cert_file; /* PEM: the certificate, then its chain (optional) */
  char *key_file;  /* PEM private key; NULL: the key is in cert_file */
  char **names;    /* names = ...; none: the certificate's DNS names */
  size_t nnames;
} wsh_tls_cert_conf;

typedef struct wsh_tls_conf {
  char **listen; /* listen_tls = ADDR:PORT, repeatable (not checked here) */
  size_t nlisten;
  wsh_tls_cert_conf dflt; /* [server] tls_cert/tls_key; cert_file NULL: none */
  wsh_tls_cert_conf *certs; /* the [tls "LABEL"] sections, in file order */
  size_t ncerts;
  char *client_ca; /* tls_client_ca: require client certificates it signed */
  int ktls;        /* tls_ktls = on|off (default off) */
} wsh_tls_conf;

void wsh_tls_conf_init(wsh_tls_conf *c);
void wsh_tls_conf_free(wsh_tls_conf *c);

/* Applies one setting of the host config file or the command line. section
 * is "server" (or NULL) for listen_tls, tls_cert, tls_key, tls_client_ca and
 * tls_ktls (the long options --listen-tls, --tls-cert, --tls-key with '_'
 * for '-'), or `tls "LABEL"` for cert, key and names. Returns 0; or
 * WEBSOCK_ENOENT when the key is not a TLS setting (so that the config
 * reader tries its own keys), err set; or WEBSOCK_EINVAL / WEBSOCK_ENOMEM with
 * err set to one line naming the key (and the section). */
int wsh_tls_conf_set(wsh_tls_conf *c, const char *section, const char *key,
                     const char *value, char *err, size_t errlen);

/* True for a section name this module owns (`tls "LABEL"`). */
int wsh_tls_conf_is_section(const char *section);

/* Checks the settings once all are read: each certificate has its file
 * (tls_key needs tls_cert; a section needs cert), listen_tls has a
 * certificate to serve. A section label given twice is one section.
 * Returns 0 or WEBSOCK_EINVAL with err set. TLS is enabled when nlisten > 0. */
int wsh_tls_conf_finish(const wsh_tls_conf *c, char *err, size_t errlen);

#endif
