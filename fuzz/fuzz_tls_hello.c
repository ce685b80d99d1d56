/*
 * fuzz_tls_hello.c - the server side of a TLS handshake (host/tls_*.c) fed
 * arbitrary bytes as what a client sends first. The bytes go into one end of
 * a socketpair (the real fd path the host uses, rather than a memory BIO),
 * then the client's write side closes; the handshake must end in ERROR (no
 * client can finish without answering the server), counted once under a
 * known reason, with nothing leaked. Fed whole and split in two at a point
 * the input chooses (a handshake step between the pieces), the reason must
 * be the same. A plain HTTP request must get the plain 400.
 *
 * The server has two certificates made in memory at the first input (an
 * ECDSA P-256 default and a second one named by SNI), so that the SNI and
 * ALPN callbacks run.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "network/tls.h"

#define INPUT_CAP 65536

/* A self-signed certificate for name and its key, as PEM files in dir. */
static void make_cert(const char *dir, const char *name, char *cert,
                      char *key) {
  EVP_PKEY *pkey = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  X509_NAME *subj;
  FILE *f;

  FUZZ_CHECK(pkey && x, "key generation");
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, pkey);
  subj = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
                             (const unsigned char *)name, -1, -1, 0);
  X509_set_issuer_name(x, subj);
  FUZZ_CHECK(X509_sign(x, pkey, EVP_sha256()) > 0, "signing");
  snprintf(cert, 512, "%s/%s.pem", dir, name);
  snprintf(key, 512, "%s/%s.key", dir, name);
  FUZZ_CHECK((f = fopen(cert, "w")) && PEM_write_X509(f, x), "cert file");
  fclose(f);
  FUZZ_CHECK((f = fopen(key, "w")) &&
                 PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL),
             "key file");
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(pkey);
}

static void set(wsh_tls_conf *c, const char *section, const char *key,
                const char *value) {
  char err[256];

  FUZZ_CHECK(wsh_tls_conf_set(c, section, key, value, err, sizeof(err)) == 0,
             err);
}

/* The server's certificates, loaded once per process (the files go at once). */
static wsh_tls *server(void) {
  static wsh_tls *t;
  char dir[] = "/tmp/fuzz_tls.XXXXXX", c1[512], k1[512], c2[512], k2[512];
  char err[512];
  wsh_tls_conf c;

  if (t)
    return t;
  FUZZ_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  make_cert(dir, "a.test", c1, k1);
  make_cert(dir, "b.test", c2, k2);
  wsh_tls_conf_init(&c);
  set(&c, "server", "tls_cert", c1);
  set(&c, "server", "tls_key", k1);
  set(&c, "tls \"b\"", "cert", c2);
  set(&c, "tls \"b\"", "key", k2);
  FUZZ_CHECK(wsh_tls_new(&t) == 0, "wsh_tls_new");
  FUZZ_CHECK(wsh_tls_load(t, &c, err, sizeof(err)) == 0, err);
  wsh_tls_conf_free(&c);
  unlink(c1);
  unlink(k1);
  unlink(c2);
  unlink(k2);
  rmdir(dir);
  return t;
}

static void put(int fd, const uint8_t *p, size_t n) {
  if (n)
    FUZZ_CHECK(write(fd, p, n) == (ssize_t)n, "socketpair write");
}

/* Reads what the server sent, so that it never waits to write. */
static void drain(int fd) {
  char buf[4096];

  while (read(fd, buf, sizeof(buf)) > 0)
    ;
}

/* One handshake on data[0..size) given in two pieces; returns the reason. */
static int run(const uint8_t *data, size_t size, size_t cut) {
  wsh_tls_stats st = {0};
  wsh_tls_conn *tc;
  uint64_t failed = 0;
  int fds[2], r, reason;

  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0,
             "socketpair");
  FUZZ_CHECK(wsh_tls_conn_new(server(), fds[0], &st, &tc) == 0, "conn_new");
  put(fds[1], data, cut);
  r = wsh_tls_handshake(tc);
  drain(fds[1]);
  if (r != WSH_TLS_ERROR)
    put(fds[1], data + cut, size - cut);
  shutdown(fds[1], SHUT_WR);
  for (int i = 0; i < 64 && r != WSH_TLS_ERROR; i++) {
    FUZZ_CHECK(r != WSH_TLS_DONE, "a handshake finished without a client");
    r = wsh_tls_handshake(tc);
    drain(fds[1]);
  }
  FUZZ_CHECK(r == WSH_TLS_ERROR, "the handshake did not end at EOF");
  reason = wsh_tls_conn_fail(tc);
  FUZZ_CHECK(reason >= 0 && reason < WSH_TLS_FAIL_COUNT, "reason");
  FUZZ_CHECK(wsh_tls_conn_error(tc) != NULL, "error text");
  for (int i = 0; i < WSH_TLS_FAIL_COUNT; i++)
    failed += st.failed[i];
  FUZZ_CHECK(failed == 1 && st.failed[reason] == 1 && st.handshakes == 0,
             "counted once");
  FUZZ_CHECK(wsh_tls_handshake(tc) == WSH_TLS_ERROR, "dead stays dead");
  FUZZ_CHECK(wsh_tls_shutdown(tc) == WSH_TLS_DONE, "no close_notify");
  if (reason == WSH_TLS_FAIL_PLAIN_HTTP) {
    char buf[512];
    ssize_t n;

    FUZZ_CHECK(wsh_tls_reply_plain_http(tc) == 0, "plain 400 sent");
    n = read(fds[1], buf, sizeof(buf) - 1);
    FUZZ_CHECK(n > 13 && memcmp(buf, "HTTP/1.1 400 ", 13) == 0, "plain 400");
  } else {
    FUZZ_CHECK(wsh_tls_reply_plain_http(tc) != 0, "400 only to plain HTTP");
  }
  wsh_tls_conn_free(tc);
  close(fds[0]);
  close(fds[1]);
  return reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t cut;
  int whole, split;

  if (size > INPUT_CAP)
    size = INPUT_CAP;
  cut = size ? (data[0] * 131u + data[size - 1] * 7u + size) % (size + 1) : 0;
  whole = run(data, size, size);
  split = run(data, size, cut);
  if (whole != split)
    fprintf(stderr, "whole: %s, split at %zu: %s\n", wsh_tls_fail_name(whole),
            cut, wsh_tls_fail_name(split));
  FUZZ_CHECK(whole == split, "the reason depends on the split");
  return 0;
}
