/*
 * test_tls.c - unit tests for host/tls_conf.c, tls_ctx.c and tls_conn.c:
 * the TLS settings, certificates chosen by SNI and reloaded whole, the -t
 * check, and the server side of real handshakes against an OpenSSL client
 * over a socketpair, both non-blocking and driven in turn: versions, ALPN,
 * SNI, resumption, client certificates, bad input classified, renegotiation
 * refused, close_notify, and the bytes an idle connection holds (counted
 * with an allocator set through CRYPTO_set_mem_functions).
 *
 * The certificates are made once per run by tests/tls/make_certs.sh (the
 * openssl command) in a temporary directory.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "base/inifile.h"
#include "network/tls.h"
#include "websock.h"

/* ------------------------------------------------------------------------ */
/* A counting allocator for OpenSSL                                          */
/* ------------------------------------------------------------------------ */

/* Every block OpenSSL allocates carries this header; while `tracking` is
 * on, it also sits on one list, so that the blocks still live after a point
 * can be summed by site. Tracking is switched on only by the single-threaded
 * idle test: the allocator takes no lock, which would order the threads of
 * the reload race for ThreadSanitizer and hide a missing lock in tls_ctx.c. */
typedef struct blk {
  struct blk *prev, *next; /* NULL: not tracked */
  size_t size;
  unsigned long seq;
  const char *file;
  int line;
  int pad;
} blk;

static int tracking;
static blk live_list = {&live_list, &live_list, 0, 0, NULL, 0, 0};
static unsigned long alloc_seq;

static void *count_malloc(size_t n, const char *file, int line) {
  blk *b = malloc(sizeof(blk) + n);
  if (!b)
    return NULL;
  b->size = n;
  b->file = file;
  b->line = line;
  b->prev = b->next = NULL;
  if (tracking) {
    b->seq = ++alloc_seq;
    b->next = live_list.next;
    b->prev = &live_list;
    live_list.next->prev = b;
    live_list.next = b;
  }
  return b + 1;
}

static void count_free(void *p, const char *file, int line) {
  blk *b;
  (void)file;
  (void)line;
  if (!p)
    return;
  b = (blk *)p - 1;
  if (b->prev) {
    b->prev->next = b->next;
    b->next->prev = b->prev;
  }
  free(b);
}

static void *count_realloc(void *p, size_t n, const char *file, int line) {
  void *q;
  if (!p)
    return count_malloc(n, file, line);
  if (n == 0) {
    count_free(p, file, line);
    return NULL;
  }
  if (!(q = count_malloc(n, file, line)))
    return NULL;
  memcpy(q, p, ((blk *)p - 1)->size < n ? ((blk *)p - 1)->size : n);
  count_free(p, file, line);
  return q;
}

/* Bytes and blocks allocated after seq `since` and still live; with `print`,
 * also a line per allocation site. */
static size_t live_since(unsigned long since, size_t *blocks, int print) {
  size_t total = 0;
  *blocks = 0;
  for (blk *b = live_list.next; b != &live_list; b = b->next) {
    if (b->seq <= since)
      continue;
    total += b->size;
    (*blocks)++;
    if (print)
      printf("  %6zu bytes  %s:%d\n", b->size, b->file ? b->file : "?",
             b->line);
  }
  return total;
}

/* ------------------------------------------------------------------------ */
/* Certificates and settings                                                 */
/* ------------------------------------------------------------------------ */

static char cert_dir[1024]; /* made once in main() */
static char tmp_dir[2048];  /* per test */

static const char *cpath(const char *name) {
  static char bufs[8][PATH_MAX];
  static int next;
  char *b = bufs[next++ % 8];
  snprintf(b, PATH_MAX, "%s/%s", cert_dir, name);
  return b;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void tmp_setup(void) {
  snprintf(tmp_dir, sizeof(tmp_dir), "%s/t.XXXXXX", cert_dir);
  ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void tmp_teardown(void) {
  nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void copy_file(const char *from, const char *to) {
  char buf[8192];
  size_t n;
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  ck_assert_ptr_nonnull(in);
  ck_assert_ptr_nonnull(out);
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
  fclose(in);
  ck_assert_int_eq(fclose(out), 0);
}

static void set_ok(wsh_tls_conf *c, const char *section, const char *key,
                   const char *value) {
  char err[256] = "";
  int rc = wsh_tls_conf_set(c, section, key, value, err, sizeof(err));
  ck_assert_msg(rc == 0, "%s = %s: %d %s", key, value, rc, err);
}

/* A conf with the default certificate cert/key (key may be NULL). */
static void conf_with(wsh_tls_conf *c, const char *cert, const char *key) {
  wsh_tls_conf_init(c);
  set_ok(c, "server", "listen_tls", "127.0.0.1:0");
  set_ok(c, "server", "tls_cert", cert);
  if (key)
    set_ok(c, "server", "tls_key", key);
}

/* a.test (ECDSA) the default, b.test and *.b.test (RSA) in a section. */
static void conf_two(wsh_tls_conf *c) {
  conf_with(c, cpath("a-ec.pem"), cpath("a-ec.key"));
  set_ok(c, "tls \"b\"", "cert", cpath("b-rsa.pem"));
  set_ok(c, "tls \"b\"", "key", cpath("b-rsa.key"));
}

static wsh_tls *tls_loaded(const wsh_tls_conf *c) {
  wsh_tls *t;
  char err[512] = "";
  ck_assert_int_eq(wsh_tls_new(&t), 0);
  ck_assert_msg(wsh_tls_load(t, c, err, sizeof(err)) == 0, "load: %s", err);
  return t;
}

/* ------------------------------------------------------------------------ */
/* A client, and driving both sides                                          */
/* ------------------------------------------------------------------------ */

static SSL_CTX *client_ctx(int minv, int maxv) {
  SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
  ck_assert_ptr_nonnull(cc);
  if (minv && minv < TLS1_2_VERSION) { /* let it speak TLS 1.1 at all */
    SSL_CTX_set_security_level(cc, 0);
    ck_assert_int_eq(SSL_CTX_set_cipher_list(cc, "DEFAULT:@SECLEVEL=0"), 1);
  }
  ck_assert_int_eq(SSL_CTX_set_min_proto_version(cc, minv), 1);
  ck_assert_int_eq(SSL_CTX_set_max_proto_version(cc, maxv), 1);
  ck_assert_int_eq(SSL_CTX_load_verify_locations(cc, cpath("ca.pem"), NULL), 1);
  SSL_CTX_set_verify(cc, SSL_VERIFY_PEER, NULL);
  return cc;
}

static void client_use_cert(SSL_CTX *cc, const char *cert, const char *key) {
  ck_assert_int_eq(
      SSL_CTX_use_certificate_file(cc, cpath(cert), SSL_FILETYPE_PEM), 1);
  ck_assert_int_eq(
      SSL_CTX_use_PrivateKey_file(cc, cpath(key), SSL_FILETYPE_PEM), 1);
}

static SSL *client_new(SSL_CTX *cc, int fd, const char *sni, const char *alpn,
                       unsigned alpn_len) {
  SSL *s = SSL_new(cc);
  ck_assert_ptr_nonnull(s);
  ck_assert_int_eq(SSL_set_fd(s, fd), 1);
  SSL_set_connect_state(s);
  if (sni)
    ck_assert_int_eq(SSL_set_tlsext_host_name(s, sni), 1);
  if (alpn)
    ck_assert_int_eq(
        SSL_set_alpn_protos(s, (const unsigned char *)alpn, alpn_len), 0);
  return s;
}

static void pair(int fds[2]) {
  ck_assert_int_eq(
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds),
      0);
}

typedef struct hs {
  int srv; /* WSH_TLS_DONE, WSH_TLS_ERROR or still WANT_* */
  int cli; /* 1 done, -1 failed, 0 still going */
  unsigned long cli_err;
} hs;

static int pending(int st) {
  return st == WSH_TLS_WANT_READ || st == WSH_TLS_WANT_WRITE;
}

/* Steps both handshakes in turn until both have finished (or a few steps
 * after one failed: the other may wait for bytes that never come). */
static hs drive(wsh_tls_conn *tc, SSL *cli) {
  hs h = {WSH_TLS_WANT_READ, 0, 0};
  int after = 0;
  for (int i = 0; i < 200 && after < 4; i++) {
    if (pending(h.srv))
      h.srv = wsh_tls_handshake(tc);
    if (h.cli == 0) {
      int r = SSL_do_handshake(cli);
      if (r == 1) {
        h.cli = 1;
      } else {
        int e = SSL_get_error(cli, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          h.cli = -1;
          h.cli_err = ERR_peek_error();
        }
      }
      ERR_clear_error();
    }
    if (!pending(h.srv) && h.cli != 0)
      break;
    if (h.srv == WSH_TLS_ERROR || h.cli == -1)
      after++;
  }
  return h;
}

/* The client reads into buf until n bytes came (bounded). */
static void client_read_n(SSL *cli, char *buf, int n) {
  int got = 0;
  for (int i = 0; i < 1000 && got < n; i++) {
    int r = SSL_read(cli, buf + got, n - got);
    if (r > 0) {
      got += r;
    } else {
      struct pollfd p = {SSL_get_fd(cli), POLLIN, 0};
      ck_assert_int_eq(SSL_get_error(cli, r), SSL_ERROR_WANT_READ);
      ck_assert_int_eq(poll(&p, 1, 2000), 1);
    }
  }
  ERR_clear_error();
  ck_assert_int_eq(got, n);
}

/* The client sends msg, the server reads it and echoes it back. */
static void echo(wsh_tls_conn *tc, SSL *cli, const char *msg) {
  char buf[256];
  int n = (int)strlen(msg);
  ssize_t r = WSH_TLS_WANT_READ;
  ck_assert_int_eq(SSL_write(cli, msg, n), n);
  for (int i = 0; i < 100 && r == WSH_TLS_WANT_READ; i++)
    r = wsh_tls_read(tc, buf, sizeof(buf));
  ck_assert_int_eq(r, n);
  ck_assert(memcmp(buf, msg, (size_t)n) == 0);
  ck_assert_int_eq(wsh_tls_write(tc, buf, (size_t)n), n);
  client_read_n(cli, buf, n);
  ck_assert(memcmp(buf, msg, (size_t)n) == 0);
  /* then idle: nothing more to read */
  ck_assert_int_eq(wsh_tls_read(tc, buf, sizeof(buf)), WSH_TLS_WANT_READ);
}

/* The CN of the certificate the client got. */
static void peer_cn(SSL *cli, char *out, size_t outlen) {
  X509 *x = SSL_get0_peer_certificate(cli);
  ck_assert_ptr_nonnull(x);
  ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
                                             NID_commonName, out, (int)outlen),
                   0);
}

/* One connection: sockets, both ends, the handshake driven. */
typedef struct tlink {
  int fds[2]; /* [0] server, [1] client */
  wsh_tls_conn *tc;
  SSL *cli;
  hs h;
} tlink;

static void link_open(tlink *l, wsh_tls *t, wsh_tls_stats *st, SSL_CTX *cc,
                      const char *sni, const char *alpn, unsigned alpn_len) {
  pair(l->fds);
  ck_assert_int_eq(wsh_tls_conn_new(t, l->fds[0], st, &l->tc), 0);
  l->cli = client_new(cc, l->fds[1], sni, alpn, alpn_len);
  l->h = drive(l->tc, l->cli);
}

static void link_close(tlink *l) {
  wsh_tls_conn_free(l->tc);
  SSL_free(l->cli);
  close(l->fds[0]);
  close(l->fds[1]);
}

#define ALPN_H2_H1 "\x02h2\x08http/1.1"

/* ------------------------------------------------------------------------ */
/* Settings                                                                  */
/* ------------------------------------------------------------------------ */

START_TEST(conf_keys) {
  wsh_tls_conf c;
  char err[256];
  wsh_tls_conf_init(&c);
  set_ok(&c, "server", "listen_tls", "127.0.0.1:8443");
  set_ok(&c, NULL, "listen_tls", "[::1]:8443");
  set_ok(&c, "server", "tls_cert", "/x/default.pem");
  set_ok(&c, "server", "tls_client_ca", "/x/ca.pem");
  set_ok(&c, "server", "tls_ktls", "on");
  set_ok(&c, "tls \"example\"", "cert", "/x/example.pem");
  set_ok(&c, "tls \"example\"", "key", "/x/example.key");
  set_ok(&c, "tls \"example\"", "names", "example.com, *.example.com");
  set_ok(&c, "tls \"other\"", "cert", "/x/both.pem");
  ck_assert_uint_eq(c.nlisten, 2);
  ck_assert_str_eq(c.listen[1], "[::1]:8443");
  ck_assert_str_eq(c.dflt.cert_file, "/x/default.pem");
  ck_assert_ptr_null(c.dflt.key_file);
  ck_assert_int_eq(c.ktls, 1);
  ck_assert_uint_eq(c.ncerts, 2);
  ck_assert_str_eq(c.certs[0].label, "example");
  ck_assert_uint_eq(c.certs[0].nnames, 2);
  ck_assert_str_eq(c.certs[0].names[1], "*.example.com");
  ck_assert_ptr_null(c.certs[1].key_file);
  ck_assert_int_eq(wsh_tls_conf_finish(&c, err, sizeof(err)), 0);
  ck_assert(wsh_tls_conf_is_section("tls \"example\""));
  ck_assert(!wsh_tls_conf_is_section("server"));
  ck_assert(!wsh_tls_conf_is_section("tls \"\""));
  wsh_tls_conf_free(&c);
}
END_TEST

/* The shape as the host config reader will see it: inih (wsh_ini_parse)
 * hands [server] keys and [tls "LABEL"] sections to wsh_tls_conf_set; keys
 * that are not TLS ones come back WEBSOCK_ENOENT for the reader's own. */
typedef struct ini_run {
  wsh_tls_conf *c;
  int others; /* keys left to the host config */
  char err[256];
} ini_run;

static int on_ini(void *user, const char *section, const char *key,
                  const char *value) {
  ini_run *r = user;
  int rc = wsh_tls_conf_set(r->c, section, key, value, r->err, sizeof(r->err));
  if (rc == WEBSOCK_ENOENT && strcmp(section, "server") == 0) {
    r->others++;
    return 1;
  }
  return rc == 0;
}

START_TEST(conf_from_ini_file) {
  char file[PATH_MAX];
  wsh_tls_conf c;
  wsh_ini_pos pos = {0};
  ini_run r = {&c, 0, ""};
  FILE *f;
  snprintf(file, sizeof(file), "%s/websockd.conf", tmp_dir);
  ck_assert_ptr_nonnull(f = fopen(file, "w"));
  fputs("[server]\n"
        "listen = 127.0.0.1:8080\n"
        "listen_tls = 0.0.0.0:8443\n"
        "listen_tls = [::]:8443\n"
        "tls_cert = /etc/websockd/default.pem\n"
        "tls_key = /etc/websockd/default.key\n"
        "tls_client_ca = /etc/websockd/clients-ca.pem\n"
        "tls_ktls = off\n"
        "workers = 2\n"
        "\n"
        "[tls \"example\"]\n"
        "cert = /etc/websockd/example.pem\n"
        "key = /etc/websockd/example.key\n"
        "names = example.com, *.example.com\n"
        "\n"
        "[tls \"both\"]\n"
        "cert = /etc/websockd/both.pem\n",
        f);
  ck_assert_int_eq(fclose(f), 0);
  wsh_tls_conf_init(&c);
  ck_assert_msg(wsh_ini_parse(file, on_ini, &r, &pos) == 0, "line %d: %s",
                pos.line, r.err);
  ck_assert_int_eq(r.others, 2);
  ck_assert_uint_eq(c.nlisten, 2);
  ck_assert_str_eq(c.listen[1], "[::]:8443");
  ck_assert_str_eq(c.dflt.key_file, "/etc/websockd/default.key");
  ck_assert_str_eq(c.client_ca, "/etc/websockd/clients-ca.pem");
  ck_assert_int_eq(c.ktls, 0);
  ck_assert_uint_eq(c.ncerts, 2);
  ck_assert_str_eq(c.certs[0].label, "example");
  ck_assert_str_eq(c.certs[0].names[0], "example.com");
  ck_assert_str_eq(c.certs[1].label, "both");
  ck_assert_ptr_null(c.certs[1].key_file);
  ck_assert_int_eq(wsh_tls_conf_finish(&c, r.err, sizeof(r.err)), 0);
  wsh_tls_conf_free(&c);
}
END_TEST

START_TEST(conf_errors) {
  wsh_tls_conf c;
  char err[256];
  wsh_tls_conf_init(&c);
  /* Not ours: the host config reader tries its own keys. */
  ck_assert_int_eq(
      wsh_tls_conf_set(&c, "server", "workers", "2", err, sizeof(err)),
      WEBSOCK_ENOENT);
  ck_assert_int_eq(wsh_tls_conf_set(&c, "routes", "x", "2", err, sizeof(err)),
                   WEBSOCK_ENOENT);
  ck_assert_int_eq(
      wsh_tls_conf_set(&c, "server", "tls_ktls", "maybe", err, sizeof(err)),
      WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "tls_ktls: invalid value \"maybe\" (on or off)");
  ck_assert_int_eq(
      wsh_tls_conf_set(&c, "server", "tls_cert", "", err, sizeof(err)),
      WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "tls_cert: empty value");
  ck_assert_int_eq(
      wsh_tls_conf_set(&c, "tls \"a\"", "crt", "x", err, sizeof(err)),
      WEBSOCK_EINVAL);
  ck_assert_str_eq(err,
                   "[tls \"a\"]: unknown setting \"crt\" (cert, key, names)");
  ck_assert_int_eq(
      wsh_tls_conf_set(&c, "tls \"a\"", "names", "a b/c", err, sizeof(err)),
      WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "[tls \"a\"] names: \"b/c\" is not a host name");
  /* [tls "a"] has no cert yet */
  ck_assert_int_eq(wsh_tls_conf_finish(&c, err, sizeof(err)), WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "[tls \"a\"]: no cert");
  wsh_tls_conf_free(&c);

  wsh_tls_conf_init(&c);
  set_ok(&c, "server", "listen_tls", "*:443");
  ck_assert_int_eq(wsh_tls_conf_finish(&c, err, sizeof(err)), WEBSOCK_EINVAL);
  ck_assert(strstr(err, "listen_tls needs a certificate") == err);
  set_ok(&c, "server", "tls_key", "k.pem");
  ck_assert_int_eq(wsh_tls_conf_finish(&c, err, sizeof(err)), WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "tls_key is set without tls_cert");
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Handshakes                                                                */
/* ------------------------------------------------------------------------ */

static void one_version(int version, const char *name) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(version, version);
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  link_open(&l, t, &st, cc, "a.test", ALPN_H2_H1, sizeof(ALPN_H2_H1) - 1);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_int_eq(l.h.cli, 1);
  ck_assert_str_eq(wsh_tls_conn_version(l.tc), name);
  ck_assert_str_eq(SSL_get_version(l.cli), name);
  ck_assert_str_eq(wsh_tls_conn_alpn(l.tc), "http/1.1");
  ck_assert_str_eq(wsh_tls_conn_sni(l.tc), "a.test");
  ck_assert(!wsh_tls_conn_resumed(l.tc));
  ck_assert_int_eq(wsh_tls_conn_fail(l.tc), -1);
  echo(l.tc, l.cli, "hello over TLS");
  ck_assert_uint_eq(st.handshakes, 1);
  ck_assert_uint_eq(version == TLS1_3_VERSION ? st.tls13 : st.tls12, 1);
  ck_assert_uint_eq(version == TLS1_3_VERSION ? st.tls12 : st.tls13, 0);
  ck_assert_uint_eq(st.resumed, 0);
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}

START_TEST(tls13) {
  one_version(TLS1_3_VERSION, "TLSv1.3");
}
END_TEST

START_TEST(tls12) {
  one_version(TLS1_2_VERSION, "TLSv1.2");
}
END_TEST

/* The client (or its cipher choice) is refused with reason. */
static void refused(SSL_CTX *cc, const char *alpn, unsigned alpn_len,
                    int reason) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  link_open(&l, t, &st, cc, "a.test", alpn, alpn_len);
  ck_assert_int_eq(l.h.srv, WSH_TLS_ERROR);
  ck_assert_int_eq(l.h.cli, -1);
  ck_assert_msg(wsh_tls_conn_fail(l.tc) == reason, "reason %s (%s), not %s",
                wsh_tls_fail_name(wsh_tls_conn_fail(l.tc)),
                wsh_tls_conn_error(l.tc), wsh_tls_fail_name(reason));
  ck_assert_uint_eq(st.failed[reason], 1);
  ck_assert_uint_eq(st.handshakes, 0);
  /* a dead connection stays dead and sends nothing more */
  ck_assert_int_eq(wsh_tls_handshake(l.tc), WSH_TLS_ERROR);
  ck_assert_int_eq(wsh_tls_shutdown(l.tc), WSH_TLS_DONE);
  ck_assert_uint_eq(st.failed[reason], 1);
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}

START_TEST(tls11_refused) {
  refused(client_ctx(TLS1_1_VERSION, TLS1_1_VERSION), NULL, 0,
          WSH_TLS_FAIL_VERSION);
}
END_TEST

START_TEST(no_shared_cipher) {
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
  ck_assert_int_eq(SSL_CTX_set_cipher_list(cc, "AES128-SHA"), 1);
  refused(cc, NULL, 0, WSH_TLS_FAIL_NO_SHARED_CIPHER);
}
END_TEST

/* ALPN without http/1.1 is refused (RFC 7301 §3.2, nginx); without ALPN at
 * all the handshake goes on. */
START_TEST(alpn_without_http11) {
  refused(client_ctx(TLS1_2_VERSION, 0), "\x02h2", 3, WSH_TLS_FAIL_ALPN);
}
END_TEST

START_TEST(alpn_none) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_ptr_null(wsh_tls_conn_alpn(l.tc));
  ck_assert_ptr_null(wsh_tls_conn_sni(l.tc));
  echo(l.tc, l.cli, "no ALPN");
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* SNI, chains                                                               */
/* ------------------------------------------------------------------------ */

static void sni_gets(wsh_tls *t, SSL_CTX *cc, const char *sni, const char *cn) {
  char got[128];
  tlink l;
  link_open(&l, t, NULL, cc, sni, NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_int_eq(l.h.cli, 1);
  peer_cn(l.cli, got, sizeof(got));
  ck_assert_msg(strcmp(got, cn) == 0, "SNI %s: got %s, expected %s",
                sni ? sni : "(none)", got, cn);
  echo(l.tc, l.cli, "sni");
  link_close(&l);
}

START_TEST(sni_picks_certificate) {
  wsh_tls_conf c;
  wsh_tls *t;
  wsh_tls_set *s;
  wsh_tls_cert_info info;
  SSL_CTX *c13 = client_ctx(TLS1_3_VERSION, 0);
  SSL_CTX *c12 = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
  conf_two(&c);
  t = tls_loaded(&c);
  sni_gets(t, c13, "b.test", "b.test");
  sni_gets(t, c13, "B.Test", "b.test");
  sni_gets(t, c13, "x.b.test", "b.test");   /* *.b.test */
  sni_gets(t, c13, "y.x.b.test", "a.test"); /* one label only: default */
  sni_gets(t, c13, "a.test", "a.test");
  sni_gets(t, c13, "unknown.test", "a.test");
  sni_gets(t, c13, NULL, "a.test");
  sni_gets(t, c12, "b.test", "b.test");
  sni_gets(t, c12, NULL, "a.test");

  s = wsh_tls_current(t);
  ck_assert_uint_eq(wsh_tls_set_count(s), 2);
  wsh_tls_set_cert(s, 0, &info);
  ck_assert(info.is_default);
  ck_assert_str_eq(info.key_type, "EC");
  ck_assert_str_eq(info.label, "default");
  ck_assert_uint_eq(info.nnames, 1);
  ck_assert_str_eq(info.names[0], "a.test");
  wsh_tls_set_cert(s, 1, &info);
  ck_assert(!info.is_default);
  ck_assert_str_eq(info.key_type, "RSA");
  ck_assert_str_eq(info.label, "b");
  ck_assert_uint_eq(info.nnames, 2);
  ck_assert_str_eq(info.names[1], "*.b.test");
  /* made for 365 days */
  ck_assert_int_gt(info.not_after, time(NULL) + 360 * 86400);
  ck_assert_int_lt(info.not_after, time(NULL) + 370 * 86400);
  wsh_tls_set_release(s);
  SSL_CTX_free(c13);
  SSL_CTX_free(c12);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* names = overrides the certificate's own names. */
START_TEST(sni_names_setting) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  conf_two(&c);
  set_ok(&c, "tls \"b\"", "names", "other.test");
  t = tls_loaded(&c);
  sni_gets(t, cc, "other.test", "b.test");
  sni_gets(t, cc, "b.test", "a.test");
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* A chain in the certificate file is sent; a key in the same file is found. */
START_TEST(chain_and_key_in_one_file) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  tlink l;
  conf_with(&c, cpath("a-ec-chain.pem"), cpath("a-ec.key"));
  set_ok(&c, "tls \"both\"", "cert", cpath("a-ec-both.pem"));
  set_ok(&c, "tls \"both\"", "names", "both.test");
  t = tls_loaded(&c);
  link_open(&l, t, NULL, cc, "a.test", NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_int_eq(sk_X509_num(SSL_get_peer_cert_chain(l.cli)), 2);
  link_close(&l);
  sni_gets(t, cc, "both.test", "a.test");
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Resumption                                                                */
/* ------------------------------------------------------------------------ */

/* A full handshake; returns the client's session (with its ticket). */
static SSL_SESSION *full(wsh_tls *t, wsh_tls_stats *st, SSL_CTX *cc,
                         const char *sni) {
  SSL_SESSION *sess;
  tlink l;
  link_open(&l, t, st, cc, sni, NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert(!wsh_tls_conn_resumed(l.tc));
  echo(l.tc, l.cli, "ticket please"); /* the client reads the tickets */
  sess = SSL_get1_session(l.cli);
  ck_assert(SSL_SESSION_is_resumable(sess));
  /* a clean close: OpenSSL drops a session that ended without one */
  ck_assert_int_ge(SSL_shutdown(l.cli), 0);
  link_close(&l);
  ck_assert(SSL_SESSION_is_resumable(sess));
  return sess;
}

static void resumes(wsh_tls *t, wsh_tls_stats *st, SSL_CTX *cc, const char *sni,
                    SSL_SESSION *sess, const char *cn) {
  char got[128];
  tlink l;
  pair(l.fds);
  ck_assert_int_eq(wsh_tls_conn_new(t, l.fds[0], st, &l.tc), 0);
  l.cli = client_new(cc, l.fds[1], sni, NULL, 0);
  ck_assert_int_eq(SSL_set_session(l.cli, sess), 1);
  l.h = drive(l.tc, l.cli);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_msg(wsh_tls_conn_resumed(l.tc), "not resumed (%s, after %d)",
                sni ? sni : "no SNI", st ? (int)st->resumed : -1);
  ck_assert(SSL_session_reused(l.cli));
  peer_cn(l.cli, got, sizeof(got));
  ck_assert_str_eq(got, cn);
  echo(l.tc, l.cli, "resumed");
  ck_assert_int_ge(SSL_shutdown(l.cli), 0); /* keeps sess resumable */
  link_close(&l);
}

static void resumption(int version) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(version, version);
  SSL_SESSION *sa, *sb;
  char err[256];
  conf_two(&c);
  t = tls_loaded(&c);
  sa = full(t, &st, cc, "a.test");
  sb = full(t, &st, cc, "b.test"); /* a context chosen by SNI */
  resumes(t, &st, cc, "a.test", sa, "a.test");
  resumes(t, &st, cc, "b.test", sb, "b.test");
  ck_assert_uint_eq(st.handshakes, 4);
  ck_assert_uint_eq(st.resumed, 2);
  /* the ticket keys outlive a reload */
  ck_assert_int_eq(wsh_tls_load(t, &c, err, sizeof(err)), 0);
  resumes(t, &st, cc, "b.test", sb, "b.test");
  ck_assert_uint_eq(st.resumed, 3);
  SSL_SESSION_free(sa);
  SSL_SESSION_free(sb);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}

START_TEST(resumption_tls13) {
  resumption(TLS1_3_VERSION);
}
END_TEST

START_TEST(resumption_tls12) {
  resumption(TLS1_2_VERSION);
}
END_TEST

/* Another wsh_tls (another process, before a restart) has other keys: the
 * ticket is ignored and a full handshake follows. */
START_TEST(resumption_other_keys) {
  wsh_tls_conf c;
  wsh_tls *t1, *t2;
  SSL_CTX *cc = client_ctx(TLS1_3_VERSION, 0);
  SSL_SESSION *sess;
  tlink l;
  conf_two(&c);
  t1 = tls_loaded(&c);
  t2 = tls_loaded(&c);
  sess = full(t1, NULL, cc, "a.test");
  pair(l.fds);
  ck_assert_int_eq(wsh_tls_conn_new(t2, l.fds[0], NULL, &l.tc), 0);
  l.cli = client_new(cc, l.fds[1], "a.test", NULL, 0);
  ck_assert_int_eq(SSL_set_session(l.cli, sess), 1);
  l.h = drive(l.tc, l.cli);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert(!wsh_tls_conn_resumed(l.tc));
  link_close(&l);
  SSL_SESSION_free(sess);
  SSL_CTX_free(cc);
  wsh_tls_free(t1);
  wsh_tls_free(t2);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Client certificates                                                       */
/* ------------------------------------------------------------------------ */

static void mtls_conf(wsh_tls_conf *c) {
  conf_two(c);
  set_ok(c, "server", "tls_client_ca", cpath("ca.pem"));
}

static void mtls_accepts(int version) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(version, version);
  char subject[256];
  tlink l;
  mtls_conf(&c);
  t = tls_loaded(&c);
  client_use_cert(cc, "client.pem", "client.key");
  link_open(&l, t, &st, cc, "b.test", NULL, 0); /* through SNI too */
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_uint_gt(wsh_tls_conn_peer_subject(l.tc, subject, sizeof(subject)),
                    0);
  ck_assert_str_eq(subject, "CN=client one,O=websockd tests");
  ck_assert_uint_eq(wsh_tls_conn_peer_subject(l.tc, subject, 7), 6);
  ck_assert_str_eq(subject, "CN=cli");
  echo(l.tc, l.cli, "mutual");
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}

START_TEST(mtls_verified_tls13) {
  mtls_accepts(TLS1_3_VERSION);
}
END_TEST

START_TEST(mtls_verified_tls12) {
  mtls_accepts(TLS1_2_VERSION);
}
END_TEST

static void mtls_refuses(int version, const char *cert, const char *key) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(version, version);
  char buf[16];
  tlink l;
  mtls_conf(&c);
  t = tls_loaded(&c);
  if (cert)
    client_use_cert(cc, cert, key);
  link_open(&l, t, &st, cc, "a.test", NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_ERROR);
  ck_assert_msg(wsh_tls_conn_fail(l.tc) == WSH_TLS_FAIL_CLIENT_CERT,
                "reason %s (%s)", wsh_tls_fail_name(wsh_tls_conn_fail(l.tc)),
                wsh_tls_conn_error(l.tc));
  ck_assert_uint_eq(st.failed[WSH_TLS_FAIL_CLIENT_CERT], 1);
  ck_assert_uint_eq(wsh_tls_conn_peer_subject(l.tc, buf, sizeof(buf)), 0);
  /* TLS 1.3 clients finish first and learn it from the alert */
  if (l.h.cli == 1)
    ck_assert_int_le(SSL_read(l.cli, buf, sizeof(buf)), 0);
  ERR_clear_error();
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}

START_TEST(mtls_missing_tls13) {
  mtls_refuses(TLS1_3_VERSION, NULL, NULL);
}
END_TEST

START_TEST(mtls_missing_tls12) {
  mtls_refuses(TLS1_2_VERSION, NULL, NULL);
}
END_TEST

START_TEST(mtls_other_ca) {
  mtls_refuses(TLS1_3_VERSION, "rogue-client.pem", "rogue-client.key");
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Reload and -t                                                             */
/* ------------------------------------------------------------------------ */

static void load_fails(wsh_tls *t, wsh_tls_conf *c, const char *file,
                       const char *cause) {
  char err[512] = "";
  ck_assert_int_eq(wsh_tls_load(t, c, err, sizeof(err)), WEBSOCK_EINVAL);
  ck_assert_msg(strstr(err, file) == err && strstr(err, cause),
                "error \"%s\" should name %s and say %s", err, file, cause);
  ck_assert_ptr_null(strchr(err, '\n'));
}

START_TEST(reload_swaps_and_keeps) {
  wsh_tls_conf c, bad;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  char cert[PATH_MAX], key[PATH_MAX], missing[PATH_MAX], err[512];
  tlink old;
  snprintf(cert, sizeof(cert), "%s/cur.pem", tmp_dir);
  snprintf(key, sizeof(key), "%s/cur.key", tmp_dir);
  snprintf(missing, sizeof(missing), "%s/missing.pem", tmp_dir);
  copy_file(cpath("a-ec.pem"), cert);
  copy_file(cpath("a-ec.key"), key);
  conf_with(&c, cert, key);
  t = tls_loaded(&c);
  link_open(&old, t, NULL, cc, NULL, NULL, 0);
  ck_assert_int_eq(old.h.srv, WSH_TLS_DONE);
  echo(old.tc, old.cli, "before");

  /* SIGHUP after the files changed: new handshakes get the new one */
  copy_file(cpath("b-rsa.pem"), cert);
  copy_file(cpath("b-rsa.key"), key);
  ck_assert_msg(wsh_tls_load(t, &c, err, sizeof(err)) == 0, "%s", err);
  sni_gets(t, cc, NULL, "b.test");
  echo(old.tc, old.cli, "still here"); /* the open one goes on */

  /* failures keep the set that serves */
  conf_with(&bad, missing, key);
  load_fails(t, &bad, missing, "cannot open: No such file or directory");
  wsh_tls_conf_free(&bad);
  conf_with(&bad, cert, cpath("other.key"));
  load_fails(t, &bad, cpath("other.key"), "does not match the certificate");
  wsh_tls_conf_free(&bad);
  conf_with(&bad, cpath("garbage.pem"), key);
  load_fails(t, &bad, cpath("garbage.pem"), "no certificate (PEM)");
  wsh_tls_conf_free(&bad);
  conf_with(&bad, cert, cpath("garbage.pem"));
  load_fails(t, &bad, cpath("garbage.pem"), "no private key");
  wsh_tls_conf_free(&bad);
  conf_two(&bad); /* a good default, a bad section: all or nothing */
  set_ok(&bad, "tls \"b\"", "key", cpath("a-ec.key"));
  load_fails(t, &bad, cpath("a-ec.key"), "does not match");
  set_ok(&bad, "tls \"b\"", "key", cpath("b-rsa.key"));
  set_ok(&bad, "server", "tls_client_ca", missing);
  load_fails(t, &bad, missing, "cannot open");
  set_ok(&bad, "server", "tls_client_ca", cpath("garbage.pem"));
  load_fails(t, &bad, cpath("garbage.pem"), "no CA certificate");
  wsh_tls_conf_free(&bad);
  sni_gets(t, cc, NULL, "b.test");
  echo(old.tc, old.cli, "after the failures");

  link_close(&old);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

typedef struct racer {
  wsh_tls *t;
  int fd;
  int made;
  atomic_int *stop;
} racer;

static void *race_conns(void *arg) {
  racer *r = arg;
  while (!atomic_load(r->stop)) {
    wsh_tls_conn *tc;
    ck_assert_int_eq(wsh_tls_conn_new(r->t, r->fd, NULL, &tc), 0);
    r->made++;
    wsh_tls_conn_free(tc);
  }
  return NULL;
}

/* Workers start connections from the current set while reloads swap it
 * (ASan: no set freed under a user; TSan: no race). */
START_TEST(reload_while_connecting) {
  wsh_tls_conf c;
  wsh_tls *t;
  pthread_t th[2];
  racer r[2];
  atomic_int stop = 0;
  char err[256];
  int fds[2];
  conf_two(&c);
  t = tls_loaded(&c);
  pair(fds);
  for (int i = 0; i < 2; i++) {
    r[i] = (racer){t, fds[0], 0, &stop};
    ck_assert_int_eq(pthread_create(&th[i], NULL, race_conns, &r[i]), 0);
  }
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(wsh_tls_load(t, &c, err, sizeof(err)), 0);
  atomic_store(&stop, 1);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_gt(r[i].made, 0);
  }
  close(fds[0]);
  close(fds[1]);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

START_TEST(no_set_loaded) {
  wsh_tls *t;
  wsh_tls_conn *tc = NULL;
  wsh_tls_conf c;
  char err[256];
  ck_assert_int_eq(wsh_tls_new(&t), 0);
  ck_assert_ptr_null(wsh_tls_current(t));
  ck_assert_int_eq(wsh_tls_conn_new(t, 0, NULL, &tc), WEBSOCK_ENOENT);
  wsh_tls_conf_init(&c);
  ck_assert_int_eq(wsh_tls_load(t, &c, err, sizeof(err)), WEBSOCK_EINVAL);
  ck_assert_str_eq(err, "no TLS certificate configured (tls_cert)");
  wsh_tls_conf_free(&c);
  wsh_tls_free(t);
}
END_TEST

START_TEST(check_warns_expiry) {
  wsh_tls_conf c;
  char err[512], warn[1024];
  time_t now = time(NULL);
  conf_two(&c);
  ck_assert_int_eq(wsh_tls_check(&c, now, err, sizeof(err), warn, sizeof(warn)),
                   0);
  ck_assert_str_eq(warn, "");
  set_ok(&c, "tls \"soon\"", "cert", cpath("soon.pem"));
  set_ok(&c, "tls \"soon\"", "key", cpath("soon.key"));
  /* a minute on: "soon" was made for 10 days, this test's same second
   * included, where it would still have all 10 of them */
  ck_assert_int_eq(
      wsh_tls_check(&c, now + 60, err, sizeof(err), warn, sizeof(warn)), 0);
  ck_assert_msg(strstr(warn, cpath("soon.pem")) == warn &&
                    strstr(warn, ": certificate expires on 20") &&
                    strstr(warn, " UTC (in 9 days)") && !strchr(warn, '\n'),
                "%s", warn);
  /* a year on, all three have expired: one line each */
  ck_assert_int_eq(wsh_tls_check(&c, now + 400 * 86400, err, sizeof(err), warn,
                                 sizeof(warn)),
                   0);
  ck_assert_msg(strstr(warn, cpath("a-ec.pem")) == warn &&
                    strstr(warn, "certificate expired on") &&
                    strstr(warn, cpath("b-rsa.pem")) &&
                    strstr(warn, cpath("soon.pem")),
                "%s", warn);
  ck_assert_ptr_nonnull(strchr(strchr(warn, '\n') + 1, '\n'));
  /* errors as a load's */
  set_ok(&c, "tls \"soon\"", "key", cpath("other.key"));
  ck_assert_int_eq(wsh_tls_check(&c, now, err, sizeof(err), warn, sizeof(warn)),
                   WEBSOCK_EINVAL);
  ck_assert(strstr(err, cpath("other.key")) == err);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Bad input on the TLS port                                                 */
/* ------------------------------------------------------------------------ */

/* A real ClientHello, as an OpenSSL client writes it. */
static size_t client_hello(unsigned char *buf, size_t cap) {
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  SSL *s = SSL_new(cc);
  BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
  int n;
  SSL_set_bio(s, rb, wb);
  SSL_set_connect_state(s);
  ck_assert_int_eq(SSL_do_handshake(s), -1);
  n = BIO_read(wb, buf, (int)cap);
  ck_assert_int_gt(n, 100);
  SSL_free(s);
  SSL_CTX_free(cc);
  ERR_clear_error();
  return (size_t)n;
}

/* The client's end writes bytes (then closes its write side if eof); the
 * server's handshake must fail with reason. Returns the server's fd pair
 * still open in fds for the caller to look at, and the connection. */
static wsh_tls_conn *bad_input(wsh_tls *t, wsh_tls_stats *st, int fds[2],
                               const void *bytes, size_t len, int eof,
                               int reason) {
  wsh_tls_conn *tc;
  int r = WSH_TLS_WANT_READ;
  pair(fds);
  ck_assert_int_eq(wsh_tls_conn_new(t, fds[0], st, &tc), 0);
  if (len)
    ck_assert_int_eq(write(fds[1], bytes, len), (ssize_t)len);
  if (eof)
    shutdown(fds[1], SHUT_WR);
  for (int i = 0; i < 20 && pending(r); i++)
    r = wsh_tls_handshake(tc);
  ck_assert_int_eq(r, WSH_TLS_ERROR);
  ck_assert_msg(wsh_tls_conn_fail(tc) == reason, "reason %s (%s), not %s",
                wsh_tls_fail_name(wsh_tls_conn_fail(tc)),
                wsh_tls_conn_error(tc), wsh_tls_fail_name(reason));
  ck_assert_uint_eq(st->failed[reason], 1);
  st->failed[reason] = 0;
  return tc;
}

static void bad_input_closed(wsh_tls *t, wsh_tls_stats *st, const void *bytes,
                             size_t len, int eof, int reason) {
  int fds[2];
  wsh_tls_conn_free(bad_input(t, st, fds, bytes, len, eof, reason));
  close(fds[0]);
  close(fds[1]);
}

START_TEST(plain_http_answered) {
  static const char req[] = "GET /chat HTTP/1.1\r\nHost: a.test\r\n"
                            "Upgrade: websocket\r\n\r\n";
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  wsh_tls_conn *tc;
  char buf[512];
  ssize_t n;
  int fds[2];
  conf_two(&c);
  t = tls_loaded(&c);
  tc = bad_input(t, &st, fds, req, sizeof(req) - 1, 0, WSH_TLS_FAIL_PLAIN_HTTP);
  ck_assert_int_eq(wsh_tls_reply_plain_http(tc), 0);
  n = read(fds[1], buf, sizeof(buf) - 1);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  ck_assert_msg(strstr(buf, "HTTP/1.1 400 Bad Request\r\n") == buf, "%s", buf);
  ck_assert_ptr_nonnull(
      strstr(buf, "\r\n\r\nThe plain HTTP request was sent to HTTPS port\n"));
  ck_assert_int_eq(read(fds[1], buf, sizeof(buf)), 0); /* write side shut */
  wsh_tls_conn_free(tc);
  close(fds[0]);
  close(fds[1]);
  bad_input_closed(t, &st, "HEAD / HTTP/1.0\r\n\r\n", 19, 0,
                   WSH_TLS_FAIL_PLAIN_HTTP);
  bad_input_closed(t, &st, "POST /x HTTP/1.1\r\n", 18, 1,
                   WSH_TLS_FAIL_PLAIN_HTTP);
  /* reply only after a plain HTTP failure */
  tc = bad_input(t, &st, fds, "\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, 0,
                 WSH_TLS_FAIL_MALFORMED);
  ck_assert_int_eq(wsh_tls_reply_plain_http(tc), WEBSOCK_EINVAL);
  wsh_tls_conn_free(tc);
  close(fds[0]);
  close(fds[1]);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

START_TEST(garbage_and_truncated) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  unsigned char hello[2048], junk[600];
  size_t n = client_hello(hello, sizeof(hello));
  conf_two(&c);
  t = tls_loaded(&c);
  for (size_t i = 0; i < sizeof(junk); i++)
    junk[i] = (unsigned char)(i * 7 + 3);
  bad_input_closed(t, &st, junk, sizeof(junk), 0, WSH_TLS_FAIL_MALFORMED);
  bad_input_closed(t, &st, "\x16\x03\x01\x00\x05hello", 10, 0,
                   WSH_TLS_FAIL_MALFORMED);
  /* a handshake record that is no ClientHello */
  bad_input_closed(t, &st, "\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, 0,
                   WSH_TLS_FAIL_MALFORMED);
  /* the hello cut short, then the client goes */
  bad_input_closed(t, &st, hello, n / 2, 1, WSH_TLS_FAIL_TRUNCATED);
  bad_input_closed(t, &st, hello, 3, 1, WSH_TLS_FAIL_TRUNCATED);
  bad_input_closed(t, &st, "", 0, 1, WSH_TLS_FAIL_TRUNCATED);
  /* the whole hello, then nothing: the caller's deadline */
  {
    wsh_tls_conn *tc;
    int fds[2];
    pair(fds);
    ck_assert_int_eq(wsh_tls_conn_new(t, fds[0], &st, &tc), 0);
    ck_assert_int_eq(write(fds[1], hello, n), (ssize_t)n);
    ck_assert_int_eq(wsh_tls_handshake(tc), WSH_TLS_WANT_READ);
    wsh_tls_conn_timed_out(tc);
    wsh_tls_conn_timed_out(tc); /* counted once */
    ck_assert_int_eq(st.failed[WSH_TLS_FAIL_TIMEOUT], 1);
    ck_assert_str_eq(wsh_tls_conn_error(tc), "handshake timed out");
    ck_assert_int_eq(wsh_tls_handshake(tc), WSH_TLS_ERROR);
    wsh_tls_conn_free(tc);
    close(fds[0]);
    close(fds[1]);
  }
  /* an SSLv3 hello */
  hello[1] = 3;
  hello[2] = 0;
  hello[9] = 3;
  hello[10] = 0;
  bad_input_closed(t, &st, hello, n, 0, WSH_TLS_FAIL_VERSION);
  ck_assert_uint_eq(st.handshakes, 0);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* A client's peer reset: an IO failure. */
START_TEST(reset_is_io) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  wsh_tls_conn *tc;
  unsigned char hello[2048];
  size_t n = client_hello(hello, sizeof(hello));
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t salen = sizeof(sa);
  struct linger lg = {1, 0};
  int lfd, cfd, sfd, r = WSH_TLS_WANT_READ;
  conf_two(&c);
  t = tls_loaded(&c);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_ge(lfd = socket(AF_INET, SOCK_STREAM, 0), 0);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(lfd, 1), 0);
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
  ck_assert_int_ge(cfd = socket(AF_INET, SOCK_STREAM, 0), 0);
  ck_assert_int_eq(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_ge(sfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), 0);
  ck_assert_int_eq(wsh_tls_conn_new(t, sfd, &st, &tc), 0);
  ck_assert_int_eq(write(cfd, hello, n), (ssize_t)n);
  for (int i = 0; i < 100 && r == WSH_TLS_WANT_READ; i++) {
    r = wsh_tls_handshake(tc);
    if (r == WSH_TLS_WANT_READ && i == 0) { /* server flight sent: reset */
      ck_assert_int_eq(setsockopt(cfd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)),
                       0);
      close(cfd);
      usleep(10000);
    }
  }
  ck_assert_int_eq(r, WSH_TLS_ERROR);
  ck_assert_msg(wsh_tls_conn_fail(tc) == WSH_TLS_FAIL_IO, "%s (%s)",
                wsh_tls_fail_name(wsh_tls_conn_fail(tc)),
                wsh_tls_conn_error(tc));
  ck_assert_str_eq(wsh_tls_conn_error(tc), strerror(ECONNRESET));
  wsh_tls_conn_free(tc);
  close(sfd);
  close(lfd);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

START_TEST(renegotiation_refused) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, TLS1_2_VERSION);
  char buf[64];
  ssize_t sr = WSH_TLS_WANT_READ;
  int cr = 0, cerr = 0, reason = 0;
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  ck_assert_int_eq(SSL_renegotiate(l.cli), 1);
  for (int i = 0; i < 20 && cerr == 0; i++) {
    cr = SSL_do_handshake(l.cli);
    ck_assert_int_ne(cr, 1); /* never renegotiated */
    cerr = SSL_get_error(l.cli, cr);
    reason = ERR_GET_REASON(ERR_peek_error()); /* before the server runs */
    if (cerr == SSL_ERROR_WANT_READ || cerr == SSL_ERROR_WANT_WRITE)
      cerr = 0;
    if (pending((int)sr))
      sr = wsh_tls_read(l.tc, buf, sizeof(buf));
    ck_assert_int_le(sr, 0); /* no data came out of it */
  }
  ck_assert_int_eq(cerr, SSL_ERROR_SSL);
  ck_assert_int_eq(reason, SSL_R_NO_RENEGOTIATION);
  ERR_clear_error();
  link_close(&l);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Closing, big writes                                                       */
/* ------------------------------------------------------------------------ */

START_TEST(close_notify_both_ways) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_3_VERSION, 0);
  char buf[64];
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  /* ours: the client reads a clean end */
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  ck_assert_int_eq(wsh_tls_shutdown(l.tc), WSH_TLS_DONE);
  ck_assert_int_eq(SSL_read(l.cli, buf, sizeof(buf)), 0);
  ck_assert_int_eq(SSL_get_error(l.cli, 0), SSL_ERROR_ZERO_RETURN);
  link_close(&l);
  /* theirs: EOF, then ours still goes out */
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  ck_assert_int_eq(SSL_shutdown(l.cli), 0);
  ck_assert_int_eq(wsh_tls_read(l.tc, buf, sizeof(buf)), WSH_TLS_EOF);
  ck_assert_int_eq(wsh_tls_read(l.tc, buf, sizeof(buf)), WSH_TLS_EOF);
  ck_assert_int_eq(wsh_tls_shutdown(l.tc), WSH_TLS_DONE);
  ck_assert_int_eq(SSL_shutdown(l.cli), 1);
  link_close(&l);
  /* a TCP close without close_notify: EOF too */
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  shutdown(l.fds[1], SHUT_WR);
  ck_assert_int_eq(wsh_tls_read(l.tc, buf, sizeof(buf)), WSH_TLS_EOF);
  ck_assert_int_eq(wsh_tls_write(l.tc, "x", 1), WSH_TLS_ERROR);
  ck_assert_int_eq(wsh_tls_shutdown(l.tc), WSH_TLS_DONE);
  link_close(&l);
  ERR_clear_error();
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* Writes past what the socket takes: WANT_WRITE, then the same bytes again
 * once the client has read; everything arrives in order. */
START_TEST(write_want_write) {
  enum { TOTAL = 1 << 20 };
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_3_VERSION, 0);
  unsigned char *out = malloc(TOTAL), *in = malloc(TOTAL);
  size_t sent = 0, got = 0;
  int blocked = 0;
  tlink l;
  conf_two(&c);
  t = tls_loaded(&c);
  link_open(&l, t, NULL, cc, NULL, NULL, 0);
  for (size_t i = 0; i < TOTAL; i++)
    out[i] = (unsigned char)(i * 31 + (i >> 9));
  for (int i = 0; i < 100000 && got < TOTAL; i++) {
    if (sent < TOTAL) {
      ssize_t w = wsh_tls_write(l.tc, out + sent, TOTAL - sent);
      if (w > 0)
        sent += (size_t)w;
      else {
        ck_assert_int_eq(w, WSH_TLS_WANT_WRITE);
        blocked++;
      }
    }
    if (blocked || sent == TOTAL) {
      int r = SSL_read(l.cli, in + got, (int)(TOTAL - got));
      if (r > 0)
        got += (size_t)r;
    }
  }
  ck_assert_int_gt(blocked, 0);
  ck_assert_uint_eq(got, TOTAL);
  ck_assert(memcmp(in, out, TOTAL) == 0);
  ERR_clear_error();
  link_close(&l);
  free(out);
  free(in);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Idle bytes, kTLS                                                          */
/* ------------------------------------------------------------------------ */

static void wait_fd(int fd, int st) {
  struct pollfd p = {fd, st == WSH_TLS_WANT_WRITE ? POLLOUT : POLLIN, 0};
  ck_assert_int_eq(poll(&p, 1, 5000), 1);
}

/* A client in a child process (its allocations are not ours): handshake,
 * "ping", the echo, then wait for the server to close. */
static pid_t blocking_client(int fd, int other, const char *cert,
                             const char *key) {
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(other); /* so that the server's close ends the client */
    signal(SIGPIPE, SIG_IGN);
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method());
    SSL *s;
    char buf[8];
    int ok;
    if (cert) {
      SSL_CTX_use_certificate_file(cc, cpath(cert), SSL_FILETYPE_PEM);
      SSL_CTX_use_PrivateKey_file(cc, cpath(key), SSL_FILETYPE_PEM);
    }
    s = SSL_new(cc);
    SSL_set_fd(s, fd);
    SSL_set_tlsext_host_name(s, "a.test");
    SSL_set_alpn_protos(s, (const unsigned char *)ALPN_H2_H1,
                        sizeof(ALPN_H2_H1) - 1);
    ok = SSL_connect(s) == 1 && SSL_write(s, "ping", 4) == 4 &&
         SSL_read(s, buf, 4) == 4 && memcmp(buf, "ping", 4) == 0;
    if (!ok)
      ERR_print_errors_fp(stderr);
    SSL_read(s, buf, sizeof(buf)); /* until the server goes */
    _exit(ok ? 0 : 1);
  }
  return pid;
}

/* The server side's bytes for one established, idle connection; print: 0
 * nothing, 1 the sum, 2 also each live allocation. */
static size_t idle_bytes(wsh_tls *t, const char *cert, const char *key,
                         int print) {
  wsh_tls_conn *tc;
  unsigned long mark;
  char buf[8];
  size_t bytes, blocks;
  int fds[2], status, r;
  ssize_t n = WSH_TLS_WANT_READ;
  pid_t pid;
  ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  pid = blocking_client(fds[1], fds[0], cert, key);
  close(fds[1]);
  ck_assert_int_eq(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
  mark = alloc_seq;
  tracking = 1;
  ck_assert_int_eq(wsh_tls_conn_new(t, fds[0], NULL, &tc), 0);
  while (pending(r = wsh_tls_handshake(tc)))
    wait_fd(fds[0], r);
  ck_assert_int_eq(r, WSH_TLS_DONE);
  ck_assert_str_eq(wsh_tls_conn_alpn(tc), "http/1.1");
  while (pending((int)(n = wsh_tls_read(tc, buf, 4))))
    wait_fd(fds[0], (int)n);
  ck_assert_int_eq(n, 4);
  ck_assert_int_eq(wsh_tls_write(tc, buf, 4), 4);
  ck_assert_int_eq(wsh_tls_read(tc, buf, 4), WSH_TLS_WANT_READ); /* idle */
  bytes = live_since(mark, &blocks, print > 1);
  tracking = 0;
  ck_assert_uint_gt(blocks, 10); /* the allocator saw OpenSSL's blocks */
  if (print)
    printf("idle TLS connection, %s: %zu bytes in %zu blocks (%s)\n",
           wsh_tls_conn_version(tc), bytes, blocks,
           cert ? "with a client certificate" : "no client certificate");
  wsh_tls_conn_free(tc);
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                "client: status %#x", status);
  return bytes;
}

START_TEST(idle_connection_bytes) {
  wsh_tls_conf c;
  wsh_tls *t;
  size_t plain, mutual;
  int sites = getenv("WSH_TLS_IDLE_SITES") != NULL; /* where they go */
  conf_two(&c);
  t = tls_loaded(&c);
  /* the first handshake fills OpenSSL's process-wide caches (algorithm
   * fetches, names): not a connection's bytes */
  idle_bytes(t, NULL, NULL, 0);
  plain = idle_bytes(t, NULL, NULL, sites ? 2 : 1);
  wsh_tls_free(t);
  set_ok(&c, "server", "tls_client_ca", cpath("ca.pem"));
  t = tls_loaded(&c);
  idle_bytes(t, "client.pem", "client.key", 0);
  mutual = idle_bytes(t, "client.pem", "client.key", sites ? 2 : 1);
  /* the target: under 16 KiB (no 16 KiB record buffers held);
   * a client certificate adds its parsed form (about 4 KB for P-256) */
  ck_assert_uint_lt(plain, 16384);
  ck_assert_uint_gt(mutual, plain + 2000);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* tls_ktls = on: the connection works either way; whether the kernel took
 * the keys is printed (it needs the "tls" TCP ULP). */
START_TEST(ktls_on_works) {
  wsh_tls_conf c;
  wsh_tls *t;
  SSL_CTX *cc = client_ctx(TLS1_2_VERSION, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t salen = sizeof(sa);
  tlink l;
  int lfd, ulp;
  conf_two(&c);
  set_ok(&c, "server", "tls_ktls", "on");
  t = tls_loaded(&c);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_ge(lfd = socket(AF_INET, SOCK_STREAM, 0), 0);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(lfd, 1), 0);
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
  ck_assert_int_ge(l.fds[1] = socket(AF_INET, SOCK_STREAM, 0), 0);
  ck_assert_int_eq(connect(l.fds[1], (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_ge(l.fds[0] = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), 0);
  ck_assert_int_eq(fcntl(l.fds[1], F_SETFL, O_NONBLOCK), 0);
  ulp = setsockopt(l.fds[1], IPPROTO_TCP, TCP_ULP, "tls", 3) == 0 ? 0 : errno;
  ck_assert_int_eq(wsh_tls_conn_new(t, l.fds[0], NULL, &l.tc), 0);
  l.cli = client_new(cc, l.fds[1], NULL, NULL, 0);
  l.h = drive(l.tc, l.cli);
  ck_assert_int_eq(l.h.srv, WSH_TLS_DONE);
  echo(l.tc, l.cli, "kernel TLS?");
  printf("kTLS: TCP_ULP \"tls\" on a client socket: %s; server connection "
         "kTLS flags %d (1 send, 2 receive)\n",
         ulp ? strerror(ulp) : "available", wsh_tls_conn_ktls(l.tc));
  link_close(&l);
  close(lfd);
  SSL_CTX_free(cc);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* openssl s_client                                                          */
/* ------------------------------------------------------------------------ */

/* Serves one connection on a loopback port to `openssl s_client ARGS`
 * (stdin: half a second of nothing, then EOF): the handshake, then echo
 * until the client goes. Returns the handshake's result; out gets what
 * s_client printed. */
static int s_client(wsh_tls *t, wsh_tls_stats *st, const char *args, char *out,
                    size_t outlen) {
  struct sockaddr_in sa = {.sin_family = AF_INET};
  socklen_t salen = sizeof(sa);
  struct pollfd p;
  char cmd[1024], buf[4096];
  wsh_tls_conn *tc;
  size_t used = 0;
  ssize_t n;
  int lfd, fd, r;
  FILE *f;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ck_assert_int_ge(lfd = socket(AF_INET, SOCK_STREAM, 0), 0);
  ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  ck_assert_int_eq(listen(lfd, 1), 0);
  ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sa, &salen), 0);
  snprintf(cmd, sizeof(cmd),
           "sleep 0.5 | openssl s_client -connect 127.0.0.1:%d -CAfile %s %s "
           "2>&1",
           ntohs(sa.sin_port), cpath("ca.pem"), args);
  ck_assert_ptr_nonnull(f = popen(cmd, "r"));
  p = (struct pollfd){lfd, POLLIN, 0};
  ck_assert_int_eq(poll(&p, 1, 10000), 1);
  ck_assert_int_ge(fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK), 0);
  ck_assert_int_eq(wsh_tls_conn_new(t, fd, st, &tc), 0);
  while (pending(r = wsh_tls_handshake(tc)))
    wait_fd(fd, r);
  while (r == WSH_TLS_DONE) {
    n = wsh_tls_read(tc, buf, sizeof(buf));
    if (n > 0)
      ck_assert_int_eq(wsh_tls_write(tc, buf, (size_t)n), n);
    else if (pending((int)n))
      wait_fd(fd, (int)n);
    else
      break;
  }
  if (r == WSH_TLS_DONE)
    wsh_tls_shutdown(tc);
  wsh_tls_conn_free(tc);
  close(fd);
  close(lfd);
  while (used + 1 < outlen &&
         (n = (ssize_t)fread(out + used, 1, outlen - 1 - used, f)) > 0)
    used += (size_t)n;
  out[used] = '\0';
  pclose(f);
  return r;
}

START_TEST(openssl_s_client) {
  wsh_tls_conf c;
  wsh_tls_stats st = {0};
  wsh_tls *t;
  char out[32768], sess[PATH_MAX], args[PATH_MAX + 64];
  conf_two(&c);
  t = tls_loaded(&c);
  /* SNI and ALPN, verified against the test CA */
  ck_assert_int_eq(s_client(t, &st,
                            "-servername x.b.test -alpn h2,http/1.1 "
                            "-verify_return_error",
                            out, sizeof(out)),
                   WSH_TLS_DONE);
  ck_assert_msg(strstr(out, "ALPN protocol: http/1.1") &&
                    strstr(out, "CN = b.test") &&
                    strstr(out, "Verify return code: 0 (ok)") &&
                    strstr(out, "New, TLSv1.3"),
                "%s", out);
  /* TLS 1.1 refused */
  ck_assert_int_eq(
      s_client(t, &st, "-tls1_1 -cipher DEFAULT:@SECLEVEL=0", out, sizeof(out)),
      WSH_TLS_ERROR);
  ck_assert_uint_eq(st.failed[WSH_TLS_FAIL_VERSION], 1);
  ck_assert_msg(strstr(out, "alert protocol version"), "%s", out);
  /* resumption, as s_client saves and offers the session */
  snprintf(sess, sizeof(sess), "%s/s_client.sess", tmp_dir);
  snprintf(args, sizeof(args), "-servername a.test -sess_out %s", sess);
  ck_assert_int_eq(s_client(t, &st, args, out, sizeof(out)), WSH_TLS_DONE);
  ck_assert_msg(strstr(out, "CN = a.test"), "%s", out);
  snprintf(args, sizeof(args), "-servername a.test -sess_in %s", sess);
  ck_assert_int_eq(s_client(t, &st, args, out, sizeof(out)), WSH_TLS_DONE);
  ck_assert_msg(strstr(out, "Reused, TLSv1.3"), "%s", out);
  ck_assert_uint_eq(st.resumed, 1);
  ck_assert_uint_eq(st.handshakes, 3);
  wsh_tls_free(t);
  wsh_tls_conf_free(&c);
}
END_TEST

static Suite *tls_suite(void) {
  Suite *s = suite_create("tls");
  TCase *tc = tcase_create("conf");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, conf_keys);
  tcase_add_test(tc, conf_from_ini_file);
  tcase_add_test(tc, conf_errors);
  suite_add_tcase(s, tc);

  tc = tcase_create("handshake");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, tls13);
  tcase_add_test(tc, tls12);
  tcase_add_test(tc, tls11_refused);
  tcase_add_test(tc, no_shared_cipher);
  tcase_add_test(tc, alpn_without_http11);
  tcase_add_test(tc, alpn_none);
  tcase_add_test(tc, sni_picks_certificate);
  tcase_add_test(tc, sni_names_setting);
  tcase_add_test(tc, chain_and_key_in_one_file);
  tcase_add_test(tc, resumption_tls13);
  tcase_add_test(tc, resumption_tls12);
  tcase_add_test(tc, resumption_other_keys);
  tcase_add_test(tc, mtls_verified_tls13);
  tcase_add_test(tc, mtls_verified_tls12);
  tcase_add_test(tc, mtls_missing_tls13);
  tcase_add_test(tc, mtls_missing_tls12);
  tcase_add_test(tc, mtls_other_ca);
  suite_add_tcase(s, tc);

  tc = tcase_create("reload");
  tcase_set_timeout(tc, 30);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, reload_swaps_and_keeps);
  tcase_add_test(tc, no_set_loaded);
  tcase_add_test(tc, reload_while_connecting);
  tcase_add_test(tc, check_warns_expiry);
  suite_add_tcase(s, tc);

  tc = tcase_create("bad_input");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, plain_http_answered);
  tcase_add_test(tc, garbage_and_truncated);
  tcase_add_test(tc, reset_is_io);
  tcase_add_test(tc, renegotiation_refused);
  suite_add_tcase(s, tc);

  tc = tcase_create("transport");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, close_notify_both_ways);
  tcase_add_test(tc, write_want_write);
  tcase_add_test(tc, idle_connection_bytes);
  tcase_add_test(tc, ktls_on_works);
  suite_add_tcase(s, tc);

  tc = tcase_create("s_client");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, openssl_s_client);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  char cmd[PATH_MAX * 2 + 64];
  const char *base = getenv("TMPDIR");
  int failed;
  SRunner *sr;
  /* before OpenSSL allocates anything */
  if (!CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free)) {
    fprintf(stderr, "CRYPTO_set_mem_functions failed\n");
    return EXIT_FAILURE;
  }
  snprintf(cert_dir, sizeof(cert_dir), "%s/test_tls.XXXXXX",
           base && *base ? base : "/tmp");
  if (!mkdtemp(cert_dir)) {
    perror(cert_dir);
    return EXIT_FAILURE;
  }
  snprintf(cmd, sizeof(cmd), "sh %s/tests/tls/make_certs.sh %s", WSH_SOURCE_DIR,
           cert_dir);
  if (system(cmd) != 0) {
    fprintf(stderr, "%s failed (see %s/openssl.log)\n", cmd, cert_dir);
    return EXIT_FAILURE;
  }
  sr = srunner_create(tls_suite());
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  nftw(cert_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
