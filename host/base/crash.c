/*
 * crash.c - a fatal signal's last words: one log line naming the plugin code
 * that was running, then the default action (core dump) as if we were not
 * there. Only async-signal-safe calls below.
 */
#include "base/crash.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

_Thread_local wsh_crash_ctx wsh_crash_current;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define WSH_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define WSH_SANITIZED 1
#endif
#endif

#ifndef WSH_SANITIZED

static size_t put(char *buf, size_t at, size_t cap, const char *s) {
  while (s && *s && at < cap)
    buf[at++] = *s++;
  return at;
}

static size_t put_u64(char *buf, size_t at, size_t cap, uint64_t v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n && at < cap)
    buf[at++] = digits[--n];
  return at;
}

static void on_fatal(int sig) {
  char line[512];
  size_t n = put(line, 0, sizeof(line), "websockd: fatal signal ");
  n = put_u64(line, n, sizeof(line), (uint64_t)sig);
  const wsh_crash_ctx *c = &wsh_crash_current;
  if (c->route) {
    n = put(line, n, sizeof(line), " in plugin ");
    n = put(line, n, sizeof(line), c->plugin ? c->plugin : "?");
    n = put(line, n, sizeof(line), ", ");
    n = put(line, n, sizeof(line), c->callback);
    n = put(line, n, sizeof(line), "() of route ");
    n = put(line, n, sizeof(line), c->route);
    if (c->conn) {
      n = put(line, n, sizeof(line), ", conn ");
      n = put_u64(line, n, sizeof(line), c->conn);
    }
  } else {
    n = put(line, n, sizeof(line), " (not inside a plugin callback)");
  }
  n = put(line, n, sizeof(line) - 1, "; exiting\n");
  ssize_t w = write(STDERR_FILENO, line, n);
  (void)w;
  signal(sig, SIG_DFL);
  raise(sig);
}

#endif /* WSH_SANITIZED */

void wsh_crash_install(void) {
#ifdef WSH_SANITIZED
  return;
#else
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
  static char altstack[64 * 1024];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof(altstack)};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_fatal;
  sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    sigaction(sigs[i], &sa, NULL);
#endif
}
