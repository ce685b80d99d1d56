/*
 * plugin.c - opens a plugin from a private copy of its .so (dlopen returns the
 * handle it already has for a path it has loaded, so a rebuilt .so must be
 * opened under a new name), with RTLD_NOW | RTLD_LOCAL so that a missing
 * symbol fails here and never in the middle of a connection.
 */
#include "plugins/plugin.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_file(const char *from, const char *to, char *err,
                     size_t errlen) {
  int rc = WEBSOCK_EINVAL;
  int in = open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    snprintf(err, errlen, "%s: cannot open: %s", from, strerror(errno));
    return WEBSOCK_ENOENT;
  }
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
  if (out < 0) {
    snprintf(err, errlen, "%s: cannot create private copy %s: %s", from, to,
             strerror(errno));
    goto out_close_in;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof(buf))) > 0) {
    if (write(out, buf, (size_t)n) != n) {
      snprintf(err, errlen, "%s: cannot write private copy %s: %s", from, to,
               strerror(errno));
      goto out_close_out;
    }
  }
  if (n < 0) {
    snprintf(err, errlen, "%s: cannot read: %s", from, strerror(errno));
    goto out_close_out;
  }
  rc = 0;
out_close_out:
  if (close(out) != 0 && rc == 0) {
    snprintf(err, errlen, "%s: cannot write private copy %s: %s", from, to,
             strerror(errno));
    rc = WEBSOCK_EINVAL;
  }
  if (rc)
    unlink(to);
out_close_in:
  close(in);
  return rc;
}

static int open_copy(wsh_plugin *p, char *err, size_t errlen) {
  p->dl = dlopen(p->copy_path, RTLD_NOW | RTLD_LOCAL);
  if (!p->dl) {
    const char *why = dlerror();
    size_t n = strlen(p->copy_path);
    /* dlerror() names the private copy; the operator knows the original. */
    if (why && strncmp(why, p->copy_path, n) == 0 && why[n] == ':')
      why += n + 1 + (why[n + 1] == ' ');
    snprintf(err, errlen, "%s: cannot load: %s", p->so_path,
             why ? why : "unknown dlopen error");
    return WEBSOCK_EINVAL;
  }
  dlerror();
  const struct websock_handler *t = dlsym(p->dl, WEBSOCK_HANDLER_SYMBOL);
  if (!t) {
    snprintf(err, errlen,
             "%s: no " WEBSOCK_HANDLER_SYMBOL
             " symbol (not a websockd plugin?)",
             p->so_path);
    return WEBSOCK_EINVAL;
  }
  int rc = wsh_contract_table(t, p->so_path, err, errlen);
  if (rc)
    return rc;
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (dladdr1(t, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size &&
      sym->st_size < t->struct_size) {
    snprintf(err, errlen,
             "%s: " WEBSOCK_HANDLER_SYMBOL " is %zu bytes but its struct_size "
             "says %u",
             p->so_path, (size_t)sym->st_size, t->struct_size);
    return WEBSOCK_EINVAL;
  }
  size_t n = t->struct_size < sizeof(p->h) ? t->struct_size : sizeof(p->h);
  memset(&p->h, 0, sizeof(p->h));
  memcpy(&p->h, t, n);
  return 0;
}

int wsh_plugin_open(const char *so_path, const char *copy_path,
                    wsh_plugin **out, char *err, size_t errlen) {
  struct stat st;
  if (stat(so_path, &st) != 0) {
    snprintf(err, errlen, "%s: %s", so_path, strerror(errno));
    return WEBSOCK_ENOENT;
  }
  if (!S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: not a regular file", so_path);
    return WEBSOCK_EINVAL;
  }
  wsh_plugin *p = calloc(1, sizeof(*p));
  if (!p)
    return WEBSOCK_ENOMEM;
  p->so_path = strdup(so_path);
  p->copy_path = strdup(copy_path);
  int rc = WEBSOCK_ENOMEM;
  if (!p->so_path || !p->copy_path)
    goto out_free;
  if ((rc = copy_file(so_path, copy_path, err, errlen)) != 0)
    goto out_free;
  if ((rc = open_copy(p, err, errlen)) != 0)
    goto out_close;
  *out = p;
  return 0;
out_close:
  if (p->dl)
    dlclose(p->dl);
  unlink(p->copy_path);
out_free:
  free(p->so_path);
  free(p->copy_path);
  free(p);
  return rc;
}

void wsh_plugin_close(wsh_plugin *p) {
  if (!p)
    return;
  if (p->dl)
    dlclose(p->dl);
  unlink(p->copy_path);
  free(p->so_path);
  free(p->copy_path);
  free(p);
}
