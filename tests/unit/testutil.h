/*
 * testutil.h - helpers every unit test may use: a fresh temporary directory
 * per test (Check runs each test in its own process), files written and
 * read in it, and a substring assertion. Define WSH_TEST_NAME (the prefix
 * of the directory) before including; define WSH_TEST_SET_TMPDIR to point
 * $TMPDIR at the directory too (for code that creates its own files under
 * $TMPDIR, as the registry does).
 */
#ifndef WSH_TESTUTIL_H
#define WSH_TESTUTIL_H

#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef WSH_TEST_NAME
#error "define WSH_TEST_NAME before including testutil.h"
#endif

static char tmp_dir[1024];

__attribute__((unused)) static void tmp_setup(void) {
  static char base[512]; /* $TMPDIR as the test started (CK_FORK=no) */
  if (!base[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(base, sizeof(base), "%s", t && *t ? t : "/tmp");
  }
  snprintf(tmp_dir, sizeof(tmp_dir), "%s/%s.XXXXXX", base, WSH_TEST_NAME);
  ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
#ifdef WSH_TEST_SET_TMPDIR
  ck_assert_int_eq(setenv("TMPDIR", tmp_dir, 1), 0);
#endif
}

static int tmp_rm_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

__attribute__((unused)) static void tmp_teardown(void) {
  nftw(tmp_dir, tmp_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* out (PATH_MAX bytes) = the temporary directory / name. */
__attribute__((unused)) static void tmp_path(char *out, const char *name) {
  snprintf(out, PATH_MAX, "%s/%s", tmp_dir, name);
}

__attribute__((unused)) static int exists(const char *path) {
  return access(path, F_OK) == 0;
}

__attribute__((unused)) static void write_file(const char *path,
                                               const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
}

/* The whole file (at most 64 KiB), or "" if there is none. */
__attribute__((unused)) static const char *read_file(const char *path) {
  static char buf[65536];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f) {
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
  }
  return buf;
}

#define ck_assert_has(s, sub)                                                  \
  ck_assert_msg(strstr((s), (sub)) != NULL, "\"%s\" does not contain \"%s\"",  \
                (s), (sub))

/* Runs one suite; the exit status of a test program. */
__attribute__((unused)) static int run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
