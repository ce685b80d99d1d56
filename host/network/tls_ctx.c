/*
 * tls_ctx.c - certificates: reads every certificate and key of a wsh_tls_conf
 * into a set of SSL_CTX (one per certificate, all with the same protocol
 * settings and session ticket keys), picks one by SNI during a handshake,
 * and swaps the live set whole on reload, keeping the old one if anything
 * fails. Also the -t check with its expiry warnings.
 *
 * Protocol settings (every context): TLS 1.2 and 1.3 only; for TLS 1.2
 * Mozilla's "intermediate" ECDHE + AEAD ciphers (WSH_TLS12_CIPHERS; no DHE,
 * so no DH parameters to manage), for TLS 1.3 OpenSSL's default suites
 * (AES-256-GCM, ChaCha20-Poly1305, AES-128-GCM); the client's cipher order
 * (all are strong); ALPN http/1.1 only, a client that offers ALPN without
 * it is refused with no_application_protocol (RFC 7301 §3.2, as nginx does
 * since 1.21.4); no renegotiation, no compression; stateless session tickets
 * (no server-side cache), keyed the same in every context and across
 * reloads; buffers released while idle.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "network/tls_int.h"
#include "websock.h"

#define WSH_TLS12_CIPHERS                                                      \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                 \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define TICKET_KEYS_LEN 80 /* name 16, HMAC 32, AES 32 */
#define EXPIRY_WARN_SECS (30 * 24 * 3600)

typedef struct cert_entry {
  SSL_CTX *ctx;
  char *label, *cert_file;
  char **names;
  size_t nnames;
  const char *key_type;
  time_t not_after;
} cert_entry;

struct wsh_tls_set {
  atomic_int refs;
  cert_entry *certs; /* certs[0]: the default */
  size_t ncerts;
};

struct wsh_tls {
  pthread_mutex_t lock; /* guards current */
  wsh_tls_set *current;
  unsigned char ticket_keys[TICKET_KEYS_LEN];
};

/* ------------------------------------------------------------------------ */
/* Sets                                                                      */
/* ------------------------------------------------------------------------ */

static void entry_free(cert_entry *e) {
  SSL_CTX_free(e->ctx);
  free(e->label);
  free(e->cert_file);
  for (size_t i = 0; i < e->nnames; i++)
    free(e->names[i]);
  free(e->names);
}

static void set_free(wsh_tls_set *s) {
  for (size_t i = 0; i < s->ncerts; i++)
    entry_free(&s->certs[i]);
  free(s->certs);
  free(s);
}

void wsh_tls_set_retain(wsh_tls_set *s) {
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void wsh_tls_set_release(wsh_tls_set *s) {
  if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
    set_free(s);
}

SSL_CTX *wsh_tls_set_default_ctx(const wsh_tls_set *s) {
  return s->certs[0].ctx;
}

size_t wsh_tls_set_count(const wsh_tls_set *s) {
  return s->ncerts;
}

void wsh_tls_set_cert(const wsh_tls_set *s, size_t i, wsh_tls_cert_info *info) {
  const cert_entry *e = &s->certs[i];
  info->label = e->label;
  info->cert_file = e->cert_file;
  info->key_type = e->key_type;
  info->not_after = e->not_after;
  info->names = (const char *const *)e->names;
  info->nnames = e->nnames;
  info->is_default = i == 0;
}

/* ------------------------------------------------------------------------ */
/* Handshake callbacks                                                       */
/* ------------------------------------------------------------------------ */

/* "*.example.com" covers "www.example.com", not "example.com" or
 * "a.b.example.com" (RFC 6125 §6.4.3, as browsers do). */
static int wildcard_match(const char *pattern, const char *name) {
  const char *dot = strchr(name, '.');
  return pattern[0] == '*' && pattern[1] == '.' && dot && dot != name &&
         strcasecmp(pattern + 1, dot) == 0;
}

/* The certificate for an SNI name: an exact name first, then a wildcard,
 * the earliest configured winning; else the default (as nginx does). */
static size_t pick_cert(const wsh_tls_set *s, const char *name) {
  for (size_t i = 0; i < s->ncerts; i++)
    for (size_t j = 0; j < s->certs[i].nnames; j++)
      if (strcasecmp(s->certs[i].names[j], name) == 0)
        return i;
  for (size_t i = 0; i < s->ncerts; i++)
    for (size_t j = 0; j < s->certs[i].nnames; j++)
      if (wildcard_match(s->certs[i].names[j], name))
        return i;
  return 0;
}

static int on_servername(SSL *ssl, int *alert, void *arg) {
  const wsh_tls_set *s = arg;
  const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  size_t i;
  (void)alert;
  if (!name || SSL_session_reused(ssl)) /* TLS 1.2 resumption: no cert */
    return SSL_TLSEXT_ERR_OK;
  i = pick_cert(s, name);
  if (i != 0 && SSL_set_SSL_CTX(ssl, s->certs[i].ctx) == NULL)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  return SSL_TLSEXT_ERR_OK;
}

static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg) {
  static const unsigned char ours[] = "\x08http/1.1";
  unsigned char *chosen = NULL;
  (void)ssl;
  (void)arg;
  if (SSL_select_next_proto(&chosen, outlen, ours, sizeof(ours) - 1, in,
                            inlen) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

/* ------------------------------------------------------------------------ */
/* Reading files                                                             */
/* ------------------------------------------------------------------------ */

/* OpenSSL's reason for the oldest queued error, and an empty queue. */
static const char *ssl_reason(void) {
  unsigned long e = ERR_peek_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "unknown error";
}

/* Opens file for PEM reading, or says why not. */
static BIO *open_pem(const char *file, char *err, size_t errlen) {
  FILE *f = fopen(file, "r");
  BIO *b;
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
    return NULL;
  }
  if (!(b = BIO_new_fp(f, BIO_CLOSE))) {
    fclose(f);
    snprintf(err, errlen, "%s: out of memory", file);
  }
  return b;
}

/* Encrypted keys are refused, never prompted for. */
static int no_password(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

/* The leaf certificate, then its chain, into ctx. */
static int use_cert_file(SSL_CTX *ctx, const char *file, X509 **leaf, char *err,
                         size_t errlen) {
  BIO *b = open_pem(file, err, errlen);
  X509 *x;
  int rc = WEBSOCK_EINVAL;
  if (!b)
    return WEBSOCK_EINVAL;
  if (!(*leaf = PEM_read_bio_X509(b, NULL, no_password, NULL))) {
    snprintf(err, errlen, "%s: no certificate (PEM): %s", file, ssl_reason());
    goto out_close;
  }
  if (SSL_CTX_use_certificate(ctx, *leaf) != 1) {
    snprintf(err, errlen, "%s: certificate refused: %s", file, ssl_reason());
    goto out_close;
  }
  while ((x = PEM_read_bio_X509(b, NULL, no_password, NULL)) != NULL) {
    if (SSL_CTX_add0_chain_cert(ctx, x) != 1) {
      X509_free(x);
      snprintf(err, errlen, "%s: chain certificate refused: %s", file,
               ssl_reason());
      goto out_close;
    }
  }
  if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
    snprintf(err, errlen, "%s: bad PEM in the chain: %s", file, ssl_reason());
    goto out_close;
  }
  ERR_clear_error();
  rc = 0;
out_close:
  BIO_free(b);
  return rc;
}

static int use_key_file(SSL_CTX *ctx, const char *file, X509 *leaf,
                        const char *cert_file, char *err, size_t errlen) {
  BIO *b = open_pem(file, err, errlen);
  EVP_PKEY *key;
  int rc = WEBSOCK_EINVAL;
  if (!b)
    return WEBSOCK_EINVAL;
  if (!(key = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL))) {
    snprintf(err, errlen, "%s: no private key (PEM, unencrypted): %s", file,
             ssl_reason());
    goto out_close;
  }
  if (X509_check_private_key(leaf, key) != 1) {
    ERR_clear_error();
    snprintf(err, errlen, "%s: key does not match the certificate of %s", file,
             cert_file);
    goto out_free_key;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key) != 1) {
    snprintf(err, errlen, "%s: key refused: %s", file, ssl_reason());
    goto out_free_key;
  }
  rc = 0;
out_free_key:
  EVP_PKEY_free(key);
out_close:
  BIO_free(b);
  return rc;
}

static int use_client_ca(SSL_CTX *ctx, const char *file, char *err,
                         size_t errlen) {
  STACK_OF(X509_NAME) * names;
  FILE *f = fopen(file, "r");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  fclose(f);
  if (SSL_CTX_load_verify_locations(ctx, file, NULL) != 1 ||
      !(names = SSL_load_client_CA_file(file))) {
    snprintf(err, errlen, "%s: no CA certificate (PEM): %s", file,
             ssl_reason());
    return WEBSOCK_EINVAL;
  }
  SSL_CTX_set_client_CA_list(ctx, names);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     NULL);
  return 0;
}

/* ------------------------------------------------------------------------ */
/* Building a set                                                            */
/* ------------------------------------------------------------------------ */

static SSL_CTX *ctx_new(const wsh_tls_conf *c, const unsigned char *keys) {
  uint64_t opts = SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx)
    return NULL;
  if (c->ktls)
    opts |= SSL_OP_ENABLE_KTLS;
  SSL_CTX_set_options(ctx, opts);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
                            SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* One recv() takes what the socket holds (records after records) rather
   * than a header and then a body per record; kernel TLS reads records
   * itself. */
  if (!c->ktls)
    SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
  SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, WSH_TLS12_CIPHERS) != 1 ||
      SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"websockd",
                                     8) != 1 ||
      SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)keys, TICKET_KEYS_LEN) != 1) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static int push_name(cert_entry *e, const char *s, size_t n) {
  char **grown = realloc(e->names, (e->nnames + 1) * sizeof(char *));
  if (!grown)
    return WEBSOCK_ENOMEM;
  e->names = grown;
  if (!(grown[e->nnames] = strndup(s, n)))
    return WEBSOCK_ENOMEM;
  e->nnames++;
  return 0;
}

/* The DNS names of the certificate's subjectAltName; its CN if it has none. */
static int names_from_cert(cert_entry *e, X509 *x) {
  GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  int rc = 0;
  for (int i = 0; rc == 0 && i < sk_GENERAL_NAME_num(sans); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
    if (g->type == GEN_DNS)
      rc = push_name(e, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                     (size_t)ASN1_STRING_length(g->d.dNSName));
  }
  GENERAL_NAMES_free(sans);
  if (rc == 0 && e->nnames == 0) {
    X509_NAME *subj = X509_get_subject_name(x);
    int at = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (at >= 0) {
      ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, at));
      rc = push_name(e, (const char *)ASN1_STRING_get0_data(cn),
                     (size_t)ASN1_STRING_length(cn));
    }
  }
  ERR_clear_error();
  return rc;
}

static const char *key_type_name(const EVP_PKEY *key) {
  switch (EVP_PKEY_get_base_id(key)) {
  case EVP_PKEY_EC:
    return "EC";
  case EVP_PKEY_RSA:
    return "RSA";
  case EVP_PKEY_RSA_PSS:
    return "RSA-PSS";
  case EVP_PKEY_ED25519:
    return "Ed25519";
  default:
    return "other";
  }
}

static int entry_fill(cert_entry *e, const wsh_tls_cert_conf *cc, X509 *leaf) {
  struct tm tm;
  if (!(e->label = strdup(cc->label ? cc->label : "default")) ||
      !(e->cert_file = strdup(cc->cert_file)))
    return WEBSOCK_ENOMEM;
  for (size_t i = 0; i < cc->nnames; i++)
    if (push_name(e, cc->names[i], strlen(cc->names[i])) != 0)
      return WEBSOCK_ENOMEM;
  if (cc->nnames == 0 && names_from_cert(e, leaf) != 0)
    return WEBSOCK_ENOMEM;
  e->key_type = key_type_name(X509_get0_pubkey(leaf));
  if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) == 1)
    e->not_after = timegm(&tm);
  return 0;
}

/* One certificate's context, loaded and checked. */
static int entry_load(cert_entry *e, const wsh_tls_cert_conf *cc,
                      const wsh_tls_conf *c, const unsigned char *keys,
                      char *err, size_t errlen) {
  const char *key_file = cc->key_file ? cc->key_file : cc->cert_file;
  X509 *leaf = NULL;
  int rc = WEBSOCK_ENOMEM;
  if (!(e->ctx = ctx_new(c, keys))) {
    snprintf(err, errlen, "%s: cannot create a TLS context: %s", cc->cert_file,
             ssl_reason());
    return WEBSOCK_ENOMEM;
  }
  if ((rc = use_cert_file(e->ctx, cc->cert_file, &leaf, err, errlen)) ||
      (rc = use_key_file(e->ctx, key_file, leaf, cc->cert_file, err, errlen)) ||
      (c->client_ca && (rc = use_client_ca(e->ctx, c->client_ca, err, errlen))))
    goto out_free_leaf;
  if ((rc = entry_fill(e, cc, leaf)) != 0)
    snprintf(err, errlen, "%s: out of memory", cc->cert_file);
out_free_leaf:
  X509_free(leaf);
  ERR_clear_error();
  return rc;
}

/* A new set from the files of c (refs 1), or an error naming the file. */
static int set_build(const wsh_tls_conf *c, const unsigned char *keys,
                     wsh_tls_set **out, char *err, size_t errlen) {
  size_t n = (c->dflt.cert_file != NULL) + c->ncerts;
  wsh_tls_set *s;
  int rc = 0;
  if (n == 0) {
    snprintf(err, errlen, "no TLS certificate configured (tls_cert)");
    return WEBSOCK_EINVAL;
  }
  if (!(s = calloc(1, sizeof(*s))) ||
      !(s->certs = calloc(n, sizeof(cert_entry)))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return WEBSOCK_ENOMEM;
  }
  atomic_init(&s->refs, 1);
  if (c->dflt.cert_file)
    rc = entry_load(&s->certs[s->ncerts++], &c->dflt, c, keys, err, errlen);
  for (size_t i = 0; rc == 0 && i < c->ncerts; i++)
    rc = entry_load(&s->certs[s->ncerts++], &c->certs[i], c, keys, err, errlen);
  if (rc != 0) {
    set_free(s);
    return rc;
  }
  for (size_t i = 0; i < s->ncerts; i++)
    SSL_CTX_set_tlsext_servername_arg(s->certs[i].ctx, s);
  *out = s;
  return 0;
}

/* ------------------------------------------------------------------------ */
/* The live set                                                              */
/* ------------------------------------------------------------------------ */

int wsh_tls_new(wsh_tls **out) {
  wsh_tls *t = calloc(1, sizeof(*t));
  if (!t)
    return WEBSOCK_ENOMEM;
  if (RAND_bytes(t->ticket_keys, sizeof(t->ticket_keys)) != 1 ||
      pthread_mutex_init(&t->lock, NULL) != 0) {
    ERR_clear_error();
    free(t);
    return WEBSOCK_ENOMEM;
  }
  *out = t;
  return 0;
}

void wsh_tls_free(wsh_tls *t) {
  if (!t)
    return;
  wsh_tls_set_release(t->current);
  pthread_mutex_destroy(&t->lock);
  OPENSSL_cleanse(t->ticket_keys, sizeof(t->ticket_keys));
  free(t);
}

int wsh_tls_load(wsh_tls *t, const wsh_tls_conf *c, char *err, size_t errlen) {
  wsh_tls_set *s, *old;
  int rc = set_build(c, t->ticket_keys, &s, err, errlen);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&t->lock);
  old = t->current;
  t->current = s;
  pthread_mutex_unlock(&t->lock);
  wsh_tls_set_release(old);
  return 0;
}

wsh_tls_set *wsh_tls_current(wsh_tls *t) {
  wsh_tls_set *s;
  pthread_mutex_lock(&t->lock);
  if ((s = t->current) != NULL)
    wsh_tls_set_retain(s);
  pthread_mutex_unlock(&t->lock);
  return s;
}

/* ------------------------------------------------------------------------ */
/* -t                                                                        */
/* ------------------------------------------------------------------------ */

static void append_expiry(const cert_entry *e, time_t now, char *warn,
                          size_t warnlen) {
  size_t used = strlen(warn);
  char date[64];
  struct tm tm;
  long days;
  if (e->not_after - now >= EXPIRY_WARN_SECS || used >= warnlen)
    return;
  gmtime_r(&e->not_after, &tm);
  strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", &tm);
  days = (long)((e->not_after - now) / 86400);
  if (e->not_after <= now)
    snprintf(warn + used, warnlen - used, "%s%s: certificate expired on %s",
             used ? "\n" : "", e->cert_file, date);
  else
    snprintf(warn + used, warnlen - used,
             "%s%s: certificate expires on %s (in %ld days)", used ? "\n" : "",
             e->cert_file, date, days);
}

int wsh_tls_check(const wsh_tls_conf *c, time_t now, char *err, size_t errlen,
                  char *warn, size_t warnlen) {
  unsigned char keys[TICKET_KEYS_LEN] = {0}; /* unused: nothing is served */
  wsh_tls_set *s;
  int rc;
  if (warnlen)
    warn[0] = '\0';
  if ((rc = set_build(c, keys, &s, err, errlen)) != 0)
    return rc;
  for (size_t i = 0; warnlen && i < s->ncerts; i++)
    append_expiry(&s->certs[i], now, warn, warnlen);
  wsh_tls_set_release(s);
  return 0;
}
