/*
 * test_service.c - unit tests for host/ops/service.c: what systemd is told
 * over $NOTIFY_SOCKET (ready with a status, reloading with the monotonic
 * time, stopping; nothing without the variable), and the privilege drop's
 * answers when not root.
 */
#include <check.h>
#include <pwd.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ops/service.h"
#include "websock.h"

#define WSH_TEST_NAME "test_service"
#include "testutil.h"

/* A datagram socket standing in for systemd's (in the abstract namespace,
 * as "@name" in $NOTIFY_SOCKET). */
static int notify_socket(void) {
  char name[64];
  snprintf(name, sizeof(name), "websockd-test-notify-%ld", (long)getpid());
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  memcpy(sun.sun_path + 1, name, strlen(name));
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  socklen_t len =
      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name));
  ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, len), 0);
  char env[80];
  snprintf(env, sizeof(env), "@%s", name);
  ck_assert_int_eq(setenv("NOTIFY_SOCKET", env, 1), 0);
  return s;
}

static const char *next_message(int s) {
  static char buf[512];
  struct timeval tv = {2, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);
  ck_assert_int_gt(n, 0);
  buf[n] = '\0';
  return buf;
}

START_TEST(notify_messages) {
  int s = notify_socket();
  wsh_service_ready("serving");
  ck_assert_str_eq(next_message(s), "READY=1\nSTATUS=serving");
  wsh_service_reloading();
  ck_assert_has(next_message(s), "RELOADING=1\nMONOTONIC_USEC=");
  wsh_service_stopping();
  ck_assert_str_eq(next_message(s), "STOPPING=1");
  close(s);
  unsetenv("NOTIFY_SOCKET");
  wsh_service_ready("nobody listens"); /* and nothing breaks */
}
END_TEST

START_TEST(drop_privileges_not_root) {
  if (geteuid() == 0)
    return; /* the switch itself is tested by integ_install */
  char err[256];
  struct passwd *me = getpwuid(geteuid());
  ck_assert_ptr_nonnull(me);
  ck_assert_int_eq(
      wsh_service_drop_privileges(me->pw_name, NULL, err, sizeof(err)), 0);
  ck_assert_int_eq(
      wsh_service_drop_privileges("no-such-user-xyz", NULL, err, sizeof(err)),
      WEBSOCK_ENOENT);
  ck_assert_has(err, "no-such-user-xyz");
  if (getpwnam("root")) {
    ck_assert_int_eq(
        wsh_service_drop_privileges("root", NULL, err, sizeof(err)),
        WEBSOCK_EINVAL);
    ck_assert_has(err, "is not root");
  }
}
END_TEST

static Suite *service_suite(void) {
  Suite *s = suite_create("service");
  TCase *tc = tcase_create("service");
  tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, notify_messages);
  tcase_add_test(tc, drop_privileges_not_root);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  return run_suite(service_suite());
}
