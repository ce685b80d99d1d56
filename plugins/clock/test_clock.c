/*
 * test_clock.c - unit test of the clock plugin against the SDK's fake host
 * (websock_test.h), whose fake clock drives the plugin's timers. Usage:
 * test_clock path/to/clock.so
 */
#include <stdio.h>
#include <string.h>

#include <websock_test.h>

#define EXPECT WEBSOCK_TEST_EXPECT
#define EXPECT_STR WEBSOCK_TEST_EXPECT_STR

static const char *so_path;

/* "2026-11-26T05:00:00Z" */
static int is_iso_time(const char *s) {
  static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
  if (!s || strlen(s) != sizeof(shape) - 1)
    return 0;
  for (size_t i = 0; shape[i]; i++)
    if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
      return 0;
  return 1;
}

/* n more messages since the last look, all times. */
static int got_ticks(websock_conn *c, size_t n) {
  int ok = websock_test_sent_count(c) == n;
  for (size_t i = 0; i < websock_test_sent_count(c); i++)
    ok = ok && is_iso_time(websock_test_sent_text(c, i));
  websock_test_clear_sent(c);
  return ok;
}

static void test_ticks(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *c;
  EXPECT(websock_test_host_new(&h) == 0);
  if (!EXPECT(websock_test_load(h, so_path,
                                &(websock_test_route){.path = "/clock"},
                                &p) == 0))
    return;
  EXPECT(websock_test_connect(p, NULL, &c) == 0);
  EXPECT(got_ticks(c, 1)); /* at once */
  EXPECT(websock_test_timers_pending(c) == 1);

  EXPECT(websock_test_advance(h, 999) == 0);
  EXPECT(got_ticks(c, 0));
  EXPECT(websock_test_advance(h, 1) == 1);
  EXPECT(got_ticks(c, 1));
  EXPECT(websock_test_timers_pending(c) == 1);
  EXPECT(websock_test_advance(h, 3000) == 3);
  EXPECT(got_ticks(c, 3));

  /* Only the pending timer's own message is a tick. */
  EXPECT(websock_test_info(c, "tick 1", 6) == WEBSOCK_OK);
  EXPECT(got_ticks(c, 0));

  EXPECT(websock_test_client_text(c, "pause") == WEBSOCK_OK);
  EXPECT(websock_test_timers_pending(c) == 0);
  EXPECT(websock_test_advance(h, 10000) == 0);
  EXPECT(got_ticks(c, 0));
  EXPECT(websock_test_client_text(c, "pause") == WEBSOCK_OK); /* harmless */

  EXPECT(websock_test_client_text(c, "resume") == WEBSOCK_OK);
  EXPECT(got_ticks(c, 1)); /* at once */
  EXPECT(websock_test_timers_pending(c) == 1);
  EXPECT(websock_test_client_text(c, "resume") ==
         WEBSOCK_OK); /* no 2nd timer */
  EXPECT(websock_test_timers_pending(c) == 1);
  EXPECT(got_ticks(c, 0));
  EXPECT(websock_test_advance(h, 1000) == 1);
  EXPECT(got_ticks(c, 1));

  EXPECT(websock_test_client_text(c, "what") == WEBSOCK_OK);
  EXPECT_STR(websock_test_sent_text(c, 0), "commands: pause, resume, stop");
  websock_test_clear_sent(c);

  EXPECT(websock_test_client_text(c, "stop") == WEBSOCK_STOP);
  uint16_t code = 0;
  const char *text = NULL;
  EXPECT(websock_test_closed(c, &code, &text) && code == WEBSOCK_CLOSE_NORMAL);
  EXPECT_STR(text, "bye");
  EXPECT(websock_test_state_of(c) == WEBSOCK_TEST_CLOSED);
  EXPECT(websock_test_terminate_count(c) == 1);
  const websock_reason *r = websock_test_terminate_reason(c);
  EXPECT(r && r->kind == WEBSOCK_REASON_NORMAL &&
         r->code == WEBSOCK_CLOSE_NORMAL);
  EXPECT(websock_test_timers_pending(c) == 0);
  EXPECT(websock_test_advance(h, 5000) == 0);
  EXPECT(got_ticks(c, 0));
  EXPECT(websock_test_client_text(c, "resume") == WEBSOCK_ECLOSED);

  websock_test_host_free(h);
}

static void test_interval_option(void) {
  websock_host *h;
  websock_test_plugin *p;
  websock_conn *a, *b;
  static const char *const opts[] = {"interval_ms", "250", NULL};
  EXPECT(websock_test_host_new(&h) == 0);
  if (!EXPECT(websock_test_load(
                  h, so_path, &(websock_test_route){.options = opts}, &p) == 0))
    return;
  EXPECT(websock_test_connect(p, NULL, &a) == 0);
  EXPECT(websock_test_advance(h, 500) == 2);
  EXPECT(websock_test_connect(p, NULL, &b) == 0);
  EXPECT(websock_test_advance(h, 1000) == 8); /* 4 each */
  EXPECT(got_ticks(a, 1 + 2 + 4));
  EXPECT(got_ticks(b, 1 + 4));
  EXPECT(websock_test_client_close(a, WEBSOCK_CLOSE_NORMAL, NULL) == 0);
  EXPECT(websock_test_timers_pending(a) == 0);
  EXPECT(websock_test_advance(h, 1000) == 4);
  EXPECT(got_ticks(a, 0));
  EXPECT(got_ticks(b, 4));
  websock_test_host_free(h);
  /* b was open: the host's shutdown terminated it once. */
}

static void test_bad_option(void) {
  websock_host *h;
  websock_test_plugin *p;
  static const char *const zero[] = {"interval_ms", "0", NULL};
  static const char *const word[] = {"interval_ms", "soon", NULL};
  EXPECT(websock_test_host_new(&h) == 0);
  EXPECT(websock_test_load(h, so_path, &(websock_test_route){.options = zero},
                           &p) == WEBSOCK_EINVAL);
  EXPECT(websock_test_load(h, so_path, &(websock_test_route){.options = word},
                           &p) == WEBSOCK_EINVAL);
  EXPECT(strstr(websock_test_error(h), "load() refused") != NULL);
  websock_test_host_free(h);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s clock.so\n", argv[0]);
    return 2;
  }
  so_path = argv[1];
  test_ticks();
  test_interval_option();
  test_bad_option();
  return websock_test_failures() ? 1 : 0;
}
