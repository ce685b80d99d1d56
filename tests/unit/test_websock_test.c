/*
 * test_websock_test.c - the SDK test library's own tests (sdk/testlib/
 * websock_test.c, linked as a plugin's tests link it): the log lines it
 * records for websock_test_log_*(), through the logger test plugin.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

#define LOGGER_SO WSH_TEST_PLUGIN_DIR "/logger.so"

static websock_host *host;
static websock_test_plugin *plugin;

static void setup(void) {
  ck_assert_int_eq(websock_test_host_new(&host), 0);
  websock_test_set_log_level(host, -1); /* recorded, not printed */
  websock_test_clear_log(NULL);
  const char *options[] = {"a", "1", "b", "2", NULL};
  websock_test_route route = {.path = "/log", .options = options};
  ck_assert_msg(websock_test_load(host, LOGGER_SO, &route, &plugin) == 0, "%s",
                websock_test_error(host));
}

static void teardown(void) {
  websock_test_host_free(host);
  websock_test_clear_log(NULL);
}

static websock_conn *open_conn(void) {
  websock_conn *c = NULL;
  ck_assert_int_eq(websock_test_connect(plugin, NULL, &c), 0);
  return c;
}

START_TEST(test_connection_lines_in_order_with_levels) {
  websock_conn *c = open_conn();
  ck_assert_int_eq(websock_test_client_text(c, "0 it broke"), WEBSOCK_OK);
  ck_assert_int_eq(websock_test_client_text(c, "2 all fine"), WEBSOCK_OK);
  ck_assert_uint_eq(websock_test_log_count(c), 3);
  int level = -1;
  ck_assert_str_eq(websock_test_log_at(c, 0, &level), "init on /log");
  ck_assert_int_eq(level, 3);
  ck_assert_str_eq(websock_test_log_at(c, 1, &level), "it broke");
  ck_assert_int_eq(level, 0);
  ck_assert_str_eq(websock_test_log_at(c, 2, NULL), "all fine");
  level = 7;
  ck_assert_ptr_null(websock_test_log_at(c, 3, &level));
  ck_assert_int_eq(level, 7); /* untouched past the end */
  ck_assert_int_eq(websock_test_log_find(c, "fine"), 2);
  ck_assert_int_eq(websock_test_log_find(c, "broke"), 1);
  ck_assert_int_eq(websock_test_log_find(c, "absent"), WEBSOCK_ENOENT);
  ck_assert_int_eq(websock_test_log_find(c, NULL), WEBSOCK_EINVAL);
}
END_TEST

START_TEST(test_each_connection_has_its_own_lines) {
  websock_conn *a = open_conn(), *b = open_conn();
  ck_assert_int_eq(websock_test_client_text(a, "1 from a"), WEBSOCK_OK);
  ck_assert_uint_eq(websock_test_log_count(a), 2);
  ck_assert_uint_eq(websock_test_log_count(b), 1);
  ck_assert_int_eq(websock_test_log_find(b, "from a"), WEBSOCK_ENOENT);
  websock_test_clear_log(a);
  ck_assert_uint_eq(websock_test_log_count(a), 0);
  ck_assert_uint_eq(websock_test_log_count(b), 1);
  ck_assert_int_eq(websock_test_client_text(a, "2 again"), WEBSOCK_OK);
  ck_assert_str_eq(websock_test_log_at(a, 0, NULL), "again");
}
END_TEST

START_TEST(test_lines_without_a_connection) {
  /* load() logged with conn NULL; so does the plugin's own thread */
  ck_assert_uint_eq(websock_test_log_count(NULL), 1);
  int level = -1;
  ck_assert_str_eq(websock_test_log_at(NULL, 0, &level),
                   "loaded with 2 option(s)");
  ck_assert_int_eq(level, 2);
  websock_conn *c = open_conn();
  ck_assert_int_eq(websock_test_client_text(c, "thread"), WEBSOCK_OK);
  ck_assert_int_eq(websock_test_log_find(NULL, "plugin's thread"), 1);
  ck_assert_int_eq(websock_test_log_find(c, "plugin's thread"), WEBSOCK_ENOENT);
  websock_test_unload(plugin);
  ck_assert_str_eq(websock_test_log_at(NULL, 2, NULL), "unloaded");
  websock_test_clear_log(NULL);
  ck_assert_uint_eq(websock_test_log_count(NULL), 0);
}
END_TEST

START_TEST(test_recorded_whatever_the_stderr_level_and_length) {
  websock_conn *c = open_conn();
  char msg[3000] = "3 ";
  memset(msg + 2, 'x', sizeof(msg) - 3);
  msg[sizeof(msg) - 1] = 0;
  ck_assert_int_eq(websock_test_client_text(c, msg), WEBSOCK_OK);
  /* a debug line, with stderr silenced, longer than any fixed buffer */
  ck_assert_uint_eq(strlen(websock_test_log_at(c, 1, NULL)), sizeof(msg) - 3);
}
END_TEST

START_TEST(test_the_fake_hosts_own_lines) {
  websock_conn *c = open_conn();
  ck_assert_int_eq(websock_test_client_text(c, "bad"), WEBSOCK_OK);
  int i = websock_test_log_find(c, "not valid UTF-8");
  ck_assert_int_ge(i, 0);
  int level = -1;
  websock_test_log_at(c, (size_t)i, &level);
  ck_assert_int_eq(level, 1);
  ck_assert_uint_eq(websock_test_sent_count(c), 0);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("websock_test");
  TCase *tc = tcase_create("log");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_connection_lines_in_order_with_levels);
  tcase_add_test(tc, test_each_connection_has_its_own_lines);
  tcase_add_test(tc, test_lines_without_a_connection);
  tcase_add_test(tc, test_recorded_whatever_the_stderr_level_and_length);
  tcase_add_test(tc, test_the_fake_hosts_own_lines);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
