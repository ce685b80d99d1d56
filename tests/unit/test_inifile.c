/*
 * test_inifile.c - unit tests for host/base/inifile.c: INI files read with line
 * numbers, over-long lines refused, the first of several errors reported
 * (inih's syntax error, the handler's error, an over-long line), and the
 * size and number parsers that route files and the host config share.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/inifile.h"

#define WSH_TEST_NAME "test_inifile"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Reading and the first error                                               */
/* ------------------------------------------------------------------------ */

typedef struct seen {
  wsh_ini_errors e;
  int keys;
  const char *reject; /* a key the handler refuses */
} seen;

static int on_key(void *user, const char *section, const char *name,
                  const char *value) {
  seen *s = user;
  (void)section;
  (void)value;
  if (s->reject && strcmp(name, s->reject) == 0)
    return wsh_ini_fail(&s->e, "bad key %s", name);
  s->keys++;
  return 1;
}

/* Parses text from a file; returns the first error's line, why in out. */
static int parse(const char *text, const char *reject, char *out, size_t outlen,
                 int *keys) {
  char path[PATH_MAX];
  tmp_path(path, "f.ini");
  write_file(path, text);
  seen s = {.reject = reject};
  int line = wsh_ini_parse(path, on_key, &s, &s.e.pos);
  ck_assert_int_ne(line, -1);
  out[0] = '\0';
  if (keys)
    *keys = s.keys;
  return wsh_ini_first_error(&s.e, line, "too long", out, outlen);
}

START_TEST(ini_clean) {
  char why[600];
  int keys = 0;
  ck_assert_int_eq(parse("a = 1\n[s]\nb = 2\n", NULL, why, sizeof(why), &keys),
                   0);
  ck_assert_int_eq(keys, 2);
  ck_assert_str_eq(why, "");
}
END_TEST

START_TEST(ini_handler_error_names_line) {
  char why[600];
  ck_assert_int_eq(parse("a = 1\nb = 2\n", "b", why, sizeof(why), NULL), 2);
  ck_assert_str_eq(why, "line 2: bad key b");
}
END_TEST

START_TEST(ini_syntax_error) {
  char why[600];
  ck_assert_int_eq(
      parse("a = 1\nno equals sign\n", NULL, why, sizeof(why), NULL), 2);
  ck_assert_str_eq(why, "line 2: syntax error");
}
END_TEST

START_TEST(ini_first_error_wins) {
  char why[600];
  /* a syntax error on line 1 comes before the rejected key on line 2 */
  ck_assert_int_eq(parse("oops\nb = 2\n", "b", why, sizeof(why), NULL), 1);
  ck_assert_str_eq(why, "line 1: syntax error");
  /* the handler's error on line 1 comes before an over-long line 3 */
  char text[600];
  snprintf(text, sizeof(text), "b = 1\nc = 2\nd = %0300d\n", 7);
  ck_assert_int_eq(parse(text, "b", why, sizeof(why), NULL), 1);
  ck_assert_str_eq(why, "line 1: bad key b");
}
END_TEST

START_TEST(ini_long_line) {
  char why[600], text[600];
  snprintf(text, sizeof(text), "a = 1\nb = %0300d\nc = 3\n", 7);
  ck_assert_int_eq(parse(text, NULL, why, sizeof(why), NULL), 2);
  ck_assert_str_eq(why, "line 2: too long");
}
END_TEST

START_TEST(ini_nul_byte) {
  char path[PATH_MAX];
  tmp_path(path, "nul.ini");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fwrite("a = 1\nb = x\0y\n", 1, 14, f);
  fclose(f);
  seen s = {0};
  int line = wsh_ini_parse(path, on_key, &s, &s.e.pos);
  char why[600];
  ck_assert_int_eq(wsh_ini_first_error(&s.e, line, "nul", why, sizeof(why)), 2);
  ck_assert_str_eq(why, "line 2: nul");
}
END_TEST

START_TEST(ini_cannot_open) {
  char path[PATH_MAX];
  tmp_path(path, "missing.ini");
  seen s = {0};
  ck_assert_int_eq(wsh_ini_parse(path, on_key, &s, &s.e.pos), -1);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* wsh_parse_size, wsh_parse_u64                                             */
/* ------------------------------------------------------------------------ */

START_TEST(parse_size_good) {
  static const struct {
    const char *s;
    uint64_t v;
  } cases[] = {
      {"0", 0},
      {"1", 1},
      {"007", 7},
      {"1k", 1024},
      {"1K", 1024},
      {"64K", 65536},
      {"1m", 1048576},
      {"16M", 16777216},
      {"1g", 1073741824},
      {"3G", 3221225472u},
      {"18446744073709551615", UINT64_MAX},
      {"17179869183G", UINT64_C(17179869183) << 30},
      {"17592186044415M", UINT64_C(17592186044415) << 20},
      {"18014398509481983K", UINT64_C(18014398509481983) << 10},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t v = 12345;
    ck_assert_msg(wsh_parse_size(cases[i].s, &v) == 0, "%s refused",
                  cases[i].s);
    ck_assert_msg(v == cases[i].v, "%s gave %llu", cases[i].s,
                  (unsigned long long)v);
  }
}
END_TEST

START_TEST(parse_size_bad) {
  static const char *const cases[] = {
      "",
      "K",
      "-1",
      "+1",
      " 1",
      "1 ",
      "1 K",
      "1KB",
      "1k1",
      "1T",
      "1.5M",
      "0x10",
      "1e3",
      "abc",
      "1\n",
      "18446744073709551616",
      "99999999999999999999999",
      "17179869184G",
      "17592186044416M",
      "18014398509481984K",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint64_t v = 12345;
    ck_assert_msg(wsh_parse_size(cases[i], &v) == -1, "\"%s\" accepted",
                  cases[i]);
    ck_assert_msg(v == 12345, "\"%s\" wrote the output", cases[i]);
  }
  uint64_t v = 0;
  ck_assert_int_eq(wsh_parse_size(NULL, &v), -1);
}
END_TEST

START_TEST(parse_u64) {
  uint64_t v = 0;
  ck_assert_int_eq(wsh_parse_u64("0", &v), 0);
  ck_assert_uint_eq(v, 0);
  ck_assert_int_eq(wsh_parse_u64("30000", &v), 0);
  ck_assert_uint_eq(v, 30000);
  ck_assert_int_eq(wsh_parse_u64("18446744073709551615", &v), 0);
  ck_assert_uint_eq(v, UINT64_MAX);
  static const char *const bad[] = {
      "", "-1", "+1", " 1", "1 ", "1K", "1.0", "18446744073709551616", "x"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    v = 7;
    ck_assert_msg(wsh_parse_u64(bad[i], &v) == -1, "\"%s\" accepted", bad[i]);
    ck_assert_uint_eq(v, 7);
  }
  ck_assert_int_eq(wsh_parse_u64(NULL, &v), -1);
}
END_TEST

static Suite *inifile_suite(void) {
  Suite *s = suite_create("inifile");
  TCase *tc = tcase_create("read");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, ini_clean);
  tcase_add_test(tc, ini_handler_error_names_line);
  tcase_add_test(tc, ini_syntax_error);
  tcase_add_test(tc, ini_first_error_wins);
  tcase_add_test(tc, ini_long_line);
  tcase_add_test(tc, ini_nul_byte);
  tcase_add_test(tc, ini_cannot_open);
  suite_add_tcase(s, tc);

  tc = tcase_create("parse");
  tcase_add_test(tc, parse_size_good);
  tcase_add_test(tc, parse_size_bad);
  tcase_add_test(tc, parse_u64);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(inifile_suite());
}
