/*
 * test_config.c - unit tests for host/base/config.c: defaults, the command line
 * and the --config file it names (flags override the file), every value
 * checked (busy_poll_us's range among them), listen addresses parsed and
 * formatted.
 */
#include <arpa/inet.h>
#include <check.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/log.h"
#include "websock.h"

#define WSH_TEST_NAME "test_config"
#include "testutil.h"

/* wsh_config_from_args over a NULL-terminated argument list. */
static int from_args(wsh_config *c, char *err, size_t errlen, ...) {
  char *argv[32] = {"websockd"};
  int argc = 1;
  va_list ap;
  va_start(ap, errlen);
  char *a;
  while ((a = va_arg(ap, char *)) != NULL && argc < 31)
    argv[argc++] = a;
  va_end(ap);
  err[0] = '\0';
  return wsh_config_from_args(c, argc, argv, err, errlen);
}

START_TEST(defaults) {
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_int_eq(wsh_config_finish(&c, err, sizeof(err)), 0);
  ck_assert_uint_eq(c.nlisten, 1);
  ck_assert_str_eq(c.listen[0], WSH_DEFAULT_LISTEN);
  ck_assert_str_eq(c.plugins_dir, "plugins.d");
  ck_assert_uint_ge(c.workers, 1);
  ck_assert_uint_eq(c.max_connections, 10000);
  ck_assert_int_eq(c.log_level, WSH_LOG_INFO);
  ck_assert_uint_eq(c.busy_poll_us, 20);
  ck_assert_int_eq(c.io_uring, 1);
  wsh_config_free(&c);
}
END_TEST

START_TEST(flags) {
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_int_eq(from_args(&c, err, sizeof(err), "--listen", "127.0.0.1:0",
                             "-l", "[::1]:9", "--workers", "3",
                             "--max-connections", "7", "--log-level", "debug",
                             "--watch", "-t", "--plugins", "/p", NULL),
                   0);
  ck_assert_uint_eq(c.nlisten, 2);
  ck_assert_str_eq(c.listen[1], "[::1]:9");
  ck_assert_uint_eq(c.workers, 3);
  ck_assert_uint_eq(c.max_connections, 7);
  ck_assert_int_eq(c.log_level, WSH_LOG_DEBUG);
  ck_assert_int_eq(c.watch, 1);
  ck_assert_int_eq(c.check_only, 1);
  ck_assert_str_eq(c.plugins_dir, "/p");
  wsh_config_free(&c);
}
END_TEST

START_TEST(bad_flags) {
  static const char *const cases[][3] = {
      {"--workers", "x", "workers"},
      {"--max-connections", "0", "max_connections"},
      {"--log-level", "loud", "log_level"},
      {"--max-header-size", "10", "max_header_size"},
      {"--busy-poll-us", "1001", "busy_poll_us"},
      {"--io-uring", "maybe", "io_uring"},
      {"--bogus", NULL, "unknown or incomplete option"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    wsh_config c;
    wsh_config_init(&c);
    char err[512];
    ck_assert_int_lt(
        from_args(&c, err, sizeof(err), cases[i][0], cases[i][1], NULL), 0);
    ck_assert_has(err, cases[i][2]);
    wsh_config_free(&c);
  }
}
END_TEST

START_TEST(file_then_flags) {
  char path[PATH_MAX];
  tmp_path(path, "host.conf");
  write_file(path, "[server]\nlisten = 127.0.0.1:1\nworkers = 2\n"
                   "max_connections = 5\n");
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_msg(from_args(&c, err, sizeof(err), "--config", path,
                          "--max-connections", "9", NULL) == 0,
                "%s", err);
  ck_assert_uint_eq(c.nlisten, 1);
  ck_assert_str_eq(c.listen[0], "127.0.0.1:1");
  ck_assert_uint_eq(c.workers, 2);
  ck_assert_uint_eq(c.max_connections, 9); /* the flag wins */
  wsh_config_free(&c);
}
END_TEST

/* busy_poll_us: 0 (off) to 1000 µs; anything else is refused, named. */
START_TEST(busy_poll_key) {
  char path[PATH_MAX];
  tmp_path(path, "poll.conf");
  static const char *const good[][2] = {
      {"0", "0"}, {"1000", "1000"}, {"50", "50"}};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    char text[64];
    snprintf(text, sizeof(text), "[server]\nbusy_poll_us = %s\n", good[i][0]);
    write_file(path, text);
    wsh_config c;
    wsh_config_init(&c);
    char err[512];
    ck_assert_msg(wsh_config_load_file(&c, path, err, sizeof(err)) == 0, "%s",
                  err);
    ck_assert_uint_eq(c.busy_poll_us, strtoull(good[i][1], NULL, 10));
    wsh_config_free(&c);
  }
  static const char *const bad[] = {"1001", "-1", "20us", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char text[64];
    snprintf(text, sizeof(text), "[server]\nbusy_poll_us = %s\n", bad[i]);
    write_file(path, text);
    wsh_config c;
    wsh_config_init(&c);
    char err[512];
    ck_assert_int_lt(wsh_config_load_file(&c, path, err, sizeof(err)), 0);
    ck_assert_has(err, "busy_poll_us: invalid value");
    wsh_config_free(&c);
  }
}
END_TEST

/* io_uring: on or off (yes/no, true/false, 1/0), in the file or as
 * --io-uring (which wins); anything else is refused, named. */
START_TEST(io_uring_key) {
  char path[PATH_MAX];
  tmp_path(path, "uring.conf");
  write_file(path, "[server]\nio_uring = off\n");
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_msg(wsh_config_load_file(&c, path, err, sizeof(err)) == 0, "%s",
                err);
  ck_assert_int_eq(c.io_uring, 0);
  ck_assert_int_eq(from_args(&c, err, sizeof(err), "--io-uring", "on", NULL),
                   0);
  ck_assert_int_eq(c.io_uring, 1);
  wsh_config_free(&c);
  write_file(path, "[server]\nio_uring = sometimes\n");
  wsh_config_init(&c);
  ck_assert_int_lt(wsh_config_load_file(&c, path, err, sizeof(err)), 0);
  ck_assert_has(err, "io_uring: invalid value");
  wsh_config_free(&c);
}
END_TEST

/* The bus keys (issue 15): in [server], --redis overriding redis; a prefix
 * longer than 64 bytes is refused. */
START_TEST(redis_keys) {
  char path[PATH_MAX];
  tmp_path(path, "redis.conf");
  write_file(path, "[server]\nredis = 10.0.0.9:6379\nredis_password = s3cret\n"
                   "redis_prefix = app1:\n");
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_ptr_null(c.redis);
  ck_assert_msg(from_args(&c, err, sizeof(err), "--config", path, "--redis",
                          "/run/redis.sock", NULL) == 0,
                "%s", err);
  ck_assert_str_eq(c.redis, "/run/redis.sock");
  ck_assert_str_eq(c.redis_password, "s3cret");
  ck_assert_str_eq(c.redis_prefix, "app1:");
  wsh_config_free(&c);
  write_file(path,
             "[server]\nredis_prefix = "
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
             "xxxx\n");
  wsh_config_init(&c);
  ck_assert_int_lt(wsh_config_load_file(&c, path, err, sizeof(err)), 0);
  ck_assert_ptr_nonnull(strstr(err, "redis_prefix"));
  wsh_config_free(&c);
}
END_TEST

START_TEST(file_errors_name_file_and_line) {
  char path[PATH_MAX];
  tmp_path(path, "bad.conf");
  write_file(path, "[server]\nworkers = 2\nworkers = lots\n");
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_int_lt(wsh_config_load_file(&c, path, err, sizeof(err)), 0);
  ck_assert_has(err, path);
  ck_assert_has(err, "line 3");
  wsh_config_free(&c);

  write_file(path, "[client]\nx = 1\n");
  wsh_config_init(&c);
  ck_assert_int_lt(wsh_config_load_file(&c, path, err, sizeof(err)), 0);
  ck_assert_has(err, "line 2: unknown section [client]");
  wsh_config_free(&c);

  tmp_path(path, "missing.conf");
  wsh_config_init(&c);
  ck_assert_int_eq(wsh_config_load_file(&c, path, err, sizeof(err)),
                   WEBSOCK_ENOENT);
  ck_assert_has(err, "cannot open");
  wsh_config_free(&c);
}
END_TEST

START_TEST(listen_parse_and_format) {
  struct sockaddr_storage ss;
  socklen_t len;
  char out[64];
  ck_assert_int_eq(wsh_parse_listen("127.0.0.1:8080", &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET);
  wsh_format_addr((struct sockaddr *)&ss, out, sizeof(out));
  ck_assert_str_eq(out, "127.0.0.1:8080");
  ck_assert_int_eq(wsh_parse_listen("[::1]:9", &ss, &len), 0);
  ck_assert_int_eq(ss.ss_family, AF_INET6);
  wsh_format_addr((struct sockaddr *)&ss, out, sizeof(out));
  ck_assert_str_eq(out, "[::1]:9");
  ck_assert_int_eq(wsh_parse_listen("*:80", &ss, &len), 0);
  /* IPv4 is formatted by hand: the same as inet_ntop and snprintf, edges
   * included, and cut (still terminated) in a short buffer */
  static const char *const v4[] = {"0.0.0.0:0", "255.255.255.255:65535",
                                   "10.0.100.9:1", "192.168.1.254:443",
                                   "1.22.133.4:10000"};
  for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++) {
    ck_assert_int_eq(wsh_parse_listen(v4[i], &ss, &len), 0);
    wsh_format_addr((struct sockaddr *)&ss, out, sizeof(out));
    ck_assert_str_eq(out, v4[i]);
  }
  for (unsigned v = 0; v < 70000; v += 997) {
    struct sockaddr_in in = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)v),
                             .sin_addr.s_addr = htonl(v * 2654435761u)};
    char ip[INET_ADDRSTRLEN], want[64];
    inet_ntop(AF_INET, &in.sin_addr, ip, sizeof(ip));
    snprintf(want, sizeof(want), "%s:%u", ip, (unsigned)(uint16_t)v);
    wsh_format_addr((struct sockaddr *)&in, out, sizeof(out));
    ck_assert_str_eq(out, want);
  }
  char small[8];
  ck_assert_int_eq(wsh_parse_listen("192.168.1.254:443", &ss, &len), 0);
  wsh_format_addr((struct sockaddr *)&ss, small, sizeof(small));
  ck_assert_str_eq(small, "192.168");
  static const char *const bad[] = {"", "8080", "127.0.0.1:", "1.2.3.4:http",
                                    "[::1:80"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(wsh_parse_listen(bad[i], &ss, &len) != 0, "\"%s\" accepted",
                  bad[i]);
}
END_TEST

START_TEST(finish_checks_listen) {
  wsh_config c;
  wsh_config_init(&c);
  char err[512];
  ck_assert_int_eq(from_args(&c, err, sizeof(err), "-l", "nowhere", NULL), 0);
  ck_assert_int_lt(wsh_config_finish(&c, err, sizeof(err)), 0);
  ck_assert_has(err, "nowhere");
  wsh_config_free(&c);
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("config");
  TCase *tc = tcase_create("config");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, defaults);
  tcase_add_test(tc, flags);
  tcase_add_test(tc, bad_flags);
  tcase_add_test(tc, file_then_flags);
  tcase_add_test(tc, file_errors_name_file_and_line);
  tcase_add_test(tc, redis_keys);
  tcase_add_test(tc, busy_poll_key);
  tcase_add_test(tc, io_uring_key);
  tcase_add_test(tc, listen_parse_and_format);
  tcase_add_test(tc, finish_checks_listen);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(config_suite());
}
