/*
 * plugin.c - opens a plugin from a private copy of its .so (dlopen returns the
 * handle it already has for a path it has loaded, so a rebuilt .so must be
 * opened under a new name), with RTLD_NOW | RTLD_LOCAL so that a missing
 * symbol fails here and never in the middle of a connection. Before the host
 * maps the copy, its ELF headers are checked against its size (a truncated
 * file would raise SIGBUS on first touch) and, if asked, a child process
 * opens it first (the probe), so that a crash or a hang while mapping it or in
 * its constructors costs the child, not the host.
 */
#include "plugins/plugin.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/timeutil.h"

extern char **environ;

/* Every open plugin, so that a log line written by a plugin's own thread
 * can be traced to the generation whose code wrote it. Process-wide, as the
 * dynamic linker's own list of loaded objects is; guarded by its lock. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static wsh_plugin *open_plugins;

static void open_list_add(wsh_plugin *p) {
  pthread_mutex_lock(&open_lock);
  p->others = open_plugins;
  open_plugins = p;
  pthread_mutex_unlock(&open_lock);
}

static void open_list_remove(wsh_plugin *p) {
  pthread_mutex_lock(&open_lock);
  for (wsh_plugin **pp = &open_plugins; *pp; pp = &(*pp)->others) {
    if (*pp == p) {
      *pp = p->others;
      break;
    }
  }
  pthread_mutex_unlock(&open_lock);
}

void wsh_plugin_set_label(wsh_plugin *p, const char *label) {
  pthread_mutex_lock(&open_lock);
  snprintf(p->label, sizeof(p->label), "%s", label);
  pthread_mutex_unlock(&open_lock);
}

bool wsh_plugin_label_at(const void *addr, char *out, size_t outlen) {
  Dl_info info;
  if (!addr || !dladdr(addr, &info) || !info.dli_fbase)
    return false;
  bool found = false;
  pthread_mutex_lock(&open_lock);
  for (wsh_plugin *p = open_plugins; p && !found; p = p->others) {
    if (p->base == info.dli_fbase && p->label[0]) {
      snprintf(out, outlen, "%s", p->label);
      found = true;
    }
  }
  pthread_mutex_unlock(&open_lock);
  return found;
}

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

/* ---- the ELF headers against the file size ----------------------------- */

/* This executable's own ELF header (GNU ld and lld define the symbol): the
 * class, byte order and machine a plugin must have to be loaded here. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

/* Reads exactly len bytes at off; 0 or -1. */
static int read_at(int fd, void *buf, size_t len, off_t off) {
  char *b = buf;
  while (len) {
    ssize_t n = pread(fd, b, len, off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      if (n == 0)
        errno = EIO; /* the file ended early */
      return -1;
    }
    b += n;
    len -= (size_t)n;
    off += n;
  }
  return 0;
}

/* The ELF header: an ELF file, a shared object, for this machine. */
static int check_ehdr(const char *so_path, const ElfW(Ehdr) * e, char *err,
                      size_t errlen) {
  const ElfW(Ehdr) *self = &__ehdr_start;
  const char *why = NULL;
  if (e->e_ident[EI_CLASS] != self->e_ident[EI_CLASS])
    why = e->e_ident[EI_CLASS] == ELFCLASS32   ? "a 32-bit ELF file"
          : e->e_ident[EI_CLASS] == ELFCLASS64 ? "a 64-bit ELF file"
                                               : "an unknown ELF class";
  else if (e->e_ident[EI_DATA] != self->e_ident[EI_DATA])
    why = "the other byte order";
  else if (e->e_ident[EI_VERSION] != EV_CURRENT || e->e_version != EV_CURRENT)
    why = "an unknown ELF version";
  if (why) {
    snprintf(err, errlen, "%s: not loadable here: %s", so_path, why);
    return WEBSOCK_EINVAL;
  }
  if (e->e_machine != self->e_machine) {
    snprintf(err, errlen,
             "%s: not loadable here: built for ELF machine %u, this host is "
             "machine %u",
             so_path, e->e_machine, self->e_machine);
    return WEBSOCK_EINVAL;
  }
  if (e->e_type != ET_DYN) {
    snprintf(err, errlen, "%s: not a shared object (ELF type %u)", so_path,
             e->e_type);
    return WEBSOCK_EINVAL;
  }
  if (e->e_phentsize != sizeof(ElfW(Phdr)) || e->e_phnum == 0 ||
      e->e_phnum == PN_XNUM ||
      (e->e_shnum && e->e_shentsize != sizeof(ElfW(Shdr)))) {
    snprintf(err, errlen, "%s: corrupt ELF header (header table sizes)",
             so_path);
    return WEBSOCK_EINVAL;
  }
  return 0;
}

/* "truncated: WHAT ends at byte END but the file has SIZE bytes" if
 * off + len overflows or passes size. */
static int within(const char *so_path, const char *what, uint64_t off,
                  uint64_t len, uint64_t size, char *err, size_t errlen) {
  if (off <= size && len <= size - off)
    return 0;
  unsigned long long end = off + len < off ? ~0ULL : off + len;
  snprintf(err, errlen,
           "%s: truncated: %s ends at byte %llu but the file has %llu bytes",
           so_path, what, end, (unsigned long long)size);
  return WEBSOCK_EINVAL;
}

/* Every PT_LOAD segment's file bytes within the file. */
static int check_segments(const char *so_path, int fd, const ElfW(Ehdr) * e,
                          uint64_t size, char *err, size_t errlen) {
  ElfW(Phdr) *ph = calloc(e->e_phnum, sizeof(*ph));
  if (!ph)
    return WEBSOCK_ENOMEM;
  int rc = 0;
  if (read_at(fd, ph, e->e_phnum * sizeof(*ph), (off_t)e->e_phoff) != 0) {
    snprintf(err, errlen, "%s: cannot read program headers: %s", so_path,
             strerror(errno ? errno : EIO));
    rc = WEBSOCK_EINVAL;
    goto out_free_ph;
  }
  unsigned nload = 0;
  for (unsigned i = 0; i < e->e_phnum && rc == 0; i++) {
    if (ph[i].p_type != PT_LOAD)
      continue;
    char what[64];
    snprintf(what, sizeof(what), "loadable segment %u", ++nload);
    if (ph[i].p_filesz > ph[i].p_memsz) {
      snprintf(err, errlen,
               "%s: corrupt: %s is larger in the file than in memory", so_path,
               what);
      rc = WEBSOCK_EINVAL;
    } else {
      rc = within(so_path, what, ph[i].p_offset, ph[i].p_filesz, size, err,
                  errlen);
    }
  }
  if (rc == 0 && nload == 0) {
    snprintf(err, errlen, "%s: corrupt: no loadable segment", so_path);
    rc = WEBSOCK_EINVAL;
  }
out_free_ph:
  free(ph);
  return rc;
}

int wsh_plugin_check_elf(const char *so_path, int fd, char *err,
                         size_t errlen) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, errlen, "%s: %s", so_path, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  uint64_t size = (uint64_t)st.st_size;
  ElfW(Ehdr) e;
  memset(&e, 0, sizeof(e));
  size_t head = size < sizeof(e) ? (size_t)size : sizeof(e);
  if (read_at(fd, &e, head, 0) != 0 && head) {
    snprintf(err, errlen, "%s: cannot read: %s", so_path,
             strerror(errno ? errno : EIO));
    return WEBSOCK_EINVAL;
  }
  if (head < SELFMAG || memcmp(e.e_ident, ELFMAG, SELFMAG) != 0) {
    snprintf(err, errlen, "%s: not an ELF file (%llu bytes, no ELF magic)",
             so_path, (unsigned long long)size);
    return WEBSOCK_EINVAL;
  }
  int rc = within(so_path, "the ELF header", 0, sizeof(e), size, err, errlen);
  if (rc || (rc = check_ehdr(so_path, &e, err, errlen)) != 0)
    return rc;
  if ((rc = within(so_path, "the program header table", e.e_phoff,
                   (uint64_t)e.e_phnum * sizeof(ElfW(Phdr)), size, err,
                   errlen)) != 0)
    return rc;
  if ((rc = check_segments(so_path, fd, &e, size, err, errlen)) != 0)
    return rc;
  if (e.e_shoff)
    rc = within(so_path, "the section header table", e.e_shoff,
                (uint64_t)(e.e_shnum ? e.e_shnum : 1) * sizeof(ElfW(Shdr)),
                size, err, errlen);
  return rc;
}

/* The copy as dlopen will map it (the size from fstat on the copy itself). */
static int check_copy(const char *so_path, const char *copy_path, char *err,
                      size_t errlen) {
  int fd = open(copy_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "%s: cannot open private copy %s: %s", so_path,
             copy_path, strerror(errno));
    return WEBSOCK_EINVAL;
  }
  int rc = wsh_plugin_check_elf(so_path, fd, err, errlen);
  close(fd);
  return rc;
}

/* ---- dlopen and the table -------------------------------------------------
 */

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
  Dl_info info = {0};
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
  p->base = info.dli_fbase;
  return 0;
}

/* ---- the probe: a child opens the copy first ----------------------------- */

/* The child's sanitizer, if it has one, must not catch a fatal signal: the
 * parent is to see the signal itself. A non-sanitizer build ignores these. */
#define WSH_PROBE_SAN_FLAGS                                                    \
  "handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigill=0:"              \
  "handle_sigfpe=0:detect_leaks=0"

static void free_env(char **env) {
  for (size_t i = 0; env && env[i]; i++)
    free(env[i]);
  free(env);
}

/* "NAME=" + its value in environ (if any) + WSH_PROBE_SAN_FLAGS. */
static char *san_var(const char *name) {
  const char *old = getenv(name);
  old = old ? old : "";
  size_t len = strlen(name) + strlen(old) + sizeof(WSH_PROBE_SAN_FLAGS) + 2;
  char *v = malloc(len);
  if (v)
    snprintf(v, len, "%s=%s%s" WSH_PROBE_SAN_FLAGS, name, old, *old ? ":" : "");
  return v;
}

/* environ with WSH_PROBE_SAN_FLAGS added to ASAN_OPTIONS and TSAN_OPTIONS;
 * free it with free_env(). */
static char **probe_env(void) {
  size_t n = 0, k = 0;
  while (environ[n])
    n++;
  char **env = calloc(n + 3, sizeof(*env));
  if (!env)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(environ[i], "ASAN_OPTIONS=", 13) == 0 ||
        strncmp(environ[i], "TSAN_OPTIONS=", 13) == 0)
      continue;
    if (!(env[k++] = strdup(environ[i])))
      goto out_free_env;
  }
  if (!(env[k++] = san_var("ASAN_OPTIONS")) ||
      !(env[k++] = san_var("TSAN_OPTIONS")))
    goto out_free_env;
  return env;
out_free_env:
  free_env(env);
  return NULL;
}

static uint64_t now_ms(void) {
  return wsh_now_ns() / 1000000;
}

/* Starts `exe --probe-plugin copy so_path` with its stdout on *out_fd. */
static int probe_spawn(const wsh_probe *probe, const char *so_path,
                       const char *copy_path, pid_t *pid, int *out_fd,
                       char *err, size_t errlen) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    snprintf(err, errlen, "%s: cannot start the probe: pipe: %s", so_path,
             strerror(errno));
    return WEBSOCK_EINVAL;
  }
  int rc = WEBSOCK_ENOMEM;
  char **env = probe_env();
  posix_spawn_file_actions_t fa;
  if (!env || posix_spawn_file_actions_init(&fa) != 0)
    goto out_close_pipe;
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
  /* The child starts as a fresh process would: no signal blocked, none
   * ignored (the host ignores SIGPIPE), so a fault kills it as it should. */
  posix_spawnattr_t attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  char *argv[] = {(char *)probe->exe, (char *)WSH_PROBE_FLAG, (char *)copy_path,
                  (char *)so_path, NULL};
  int e = posix_spawn(pid, probe->exe, &fa, &attr, argv, env);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  if (e != 0) {
    snprintf(err, errlen, "%s: cannot start the probe %s: %s", so_path,
             probe->exe, strerror(e));
    rc = WEBSOCK_EINVAL;
    goto out_close_pipe;
  }
  close(fds[1]);
  free_env(env);
  *out_fd = fds[0];
  return 0;
out_close_pipe:
  free_env(env);
  close(fds[0]);
  close(fds[1]);
  return rc;
}

/* Reads the child's output until EOF or the deadline; then reaps the child,
 * killing it first if the deadline passed. Returns 0 with *status set, or 1
 * on the timeout. */
static int probe_wait(pid_t pid, int fd, uint64_t deadline, char *out,
                      size_t outlen, int *status) {
  size_t used = 0;
  int timed_out = 0;
  for (;;) {
    uint64_t now = now_ms();
    if (now >= deadline) {
      timed_out = 1;
      break;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int n = poll(&pfd, 1, (int)(deadline - now));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      continue; /* the deadline is checked above */
    char buf[512];
    ssize_t r = read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break; /* EOF: the child is done (or closed its stdout) */
    size_t take = (size_t)r < outlen - 1 - used ? (size_t)r : outlen - 1 - used;
    memcpy(out + used, buf, take);
    used += take;
  }
  out[used] = '\0';
  /* After EOF, the child has normally exited; wait for it until the deadline
   * (a child that closed stdout and hangs is killed all the same). */
  while (!timed_out) {
    pid_t w = waitpid(pid, status, WNOHANG);
    if (w == pid)
      return 0;
    if (w < 0 && errno != EINTR)
      return 0; /* not ours any more: nothing to reap */
    if (now_ms() >= deadline)
      timed_out = 1;
    else
      nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
  }
  kill(pid, SIGKILL);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR)
    ;
  return 1;
}

int wsh_plugin_probe(const wsh_probe *probe, const char *so_path,
                     const char *copy_path, char *err, size_t errlen) {
  uint64_t start = now_ms();
  pid_t pid;
  int fd;
  int rc = probe_spawn(probe, so_path, copy_path, &pid, &fd, err, errlen);
  if (rc)
    return rc;
  char out[1024];
  int status = 0;
  int timed_out =
      probe_wait(pid, fd, start + probe->timeout_ms, out, sizeof(out), &status);
  close(fd);
  out[strcspn(out, "\n")] = '\0';
  if (timed_out) {
    snprintf(err, errlen,
             "%s: hung while being probed (no answer within %u ms; killed)",
             so_path, probe->timeout_ms);
    return WEBSOCK_EINVAL;
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char *name = sigdescr_np(sig);
    snprintf(err, errlen, "%s: crashed while being probed: signal %d (%s)",
             so_path, sig, name ? name : "unknown signal");
    return WEBSOCK_EINVAL;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
    return 0;
  if (out[0])
    snprintf(err, errlen, "%s", out);
  else
    snprintf(err, errlen, "%s: the probe failed (exit status %d)", so_path,
             WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return WEBSOCK_EINVAL;
}

_Noreturn int wsh_plugin_probe_main(const char *copy_path,
                                    const char *so_path) {
  char err[1024] = "";
  wsh_plugin p = {.so_path = (char *)so_path, .copy_path = (char *)copy_path};
  int rc = check_copy(so_path, copy_path, err, sizeof(err));
  if (rc == 0)
    rc = open_copy(&p, err, sizeof(err));
  if (rc) {
    size_t n = strlen(err);
    err[n] = '\n';
    ssize_t w = write(STDOUT_FILENO, err, n + 1);
    (void)w;
  }
  /* No dlclose, no exit handlers: nothing of the plugin runs after this. */
  _exit(rc ? 1 : 0);
}

/* ---- opening ------------------------------------------------------------- */

int wsh_plugin_open(const char *so_path, const char *copy_path,
                    wsh_plugin **out, char *err, size_t errlen) {
  return wsh_plugin_open_probed(so_path, copy_path, NULL, out, err, errlen);
}

int wsh_plugin_open_probed(const char *so_path, const char *copy_path,
                           const wsh_probe *probe, wsh_plugin **out, char *err,
                           size_t errlen) {
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
  if ((rc = check_copy(so_path, copy_path, err, errlen)) != 0 ||
      (probe && probe->exe &&
       (rc = wsh_plugin_probe(probe, so_path, copy_path, err, errlen)) != 0) ||
      (rc = open_copy(p, err, errlen)) != 0)
    goto out_close;
  open_list_add(p);
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
  open_list_remove(p);
  if (p->dl)
    dlclose(p->dl);
  unlink(p->copy_path);
  free(p->so_path);
  free(p->copy_path);
  free(p);
}
