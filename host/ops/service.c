/*
 * service.c - systemd's notify protocol through libsystemd, and the switch
 * from root to the configured user.
 */
#include "ops/service.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "websock.h"

void wsh_service_ready(const char *status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void wsh_service_reloading(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL +
                 (unsigned long long)ts.tv_nsec / 1000ULL);
}

void wsh_service_stopping(void) {
  sd_notify(0, "STOPPING=1");
}

int wsh_service_drop_privileges(const char *user, const char *own_dir,
                                char *err, size_t errlen) {
  errno = 0;
  struct passwd *pw = getpwnam(user);
  if (!pw) {
    snprintf(err, errlen, "user %s: %s", user,
             errno ? strerror(errno) : "no such user");
    return WEBSOCK_ENOENT;
  }
  if (geteuid() != 0) {
    if (pw->pw_uid == geteuid())
      return 0;
    snprintf(err, errlen, "user %s: websockd runs as uid %u and is not root",
             user, (unsigned)geteuid());
    return WEBSOCK_EINVAL;
  }
  if (own_dir && chown(own_dir, pw->pw_uid, pw->pw_gid) != 0) {
    snprintf(err, errlen, "user %s: cannot hand over %s: %s", user, own_dir,
             strerror(errno));
    return WEBSOCK_EINVAL;
  }
  if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
      setuid(pw->pw_uid) != 0) {
    snprintf(err, errlen, "user %s: cannot switch: %s", user, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  if (pw->pw_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    snprintf(err, errlen, "user %s: root could be regained", user);
    return WEBSOCK_EINVAL;
  }
  return 0;
}
