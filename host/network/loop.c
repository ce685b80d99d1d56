/*
 * loop.c - the state a worker's connections share (see loop.h): set-up, the
 * epoll set its sockets wait in and its dispatch, and the status index of
 * its counters. Its connections' deadlines are deadlines.c's.
 */
#include "network/loop.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "base/heap.h"
#include "base/log.h"
#include "base/timeutil.h"
#include "network/conn.h"
#include "network/sendq.h"

int wsh_status_index(int status) {
  switch (status) {
#define WSH_STATUS_CASE_(code)                                                 \
  case code:                                                                   \
    return WSH_STATUS_##code;
    WSH_STATUS_MAP(WSH_STATUS_CASE_)
#undef WSH_STATUS_CASE_
  default:
    return WSH_STATUS_OTHER;
  }
}

/* The thread's loop while wsh_loop_run runs it: what this thread posts to
 * its own loop needs no eventfd (wsh_loop_wake). */
static _Thread_local wsh_loop *running;

/* Mail this thread posted to its own loop: delivered before the loop waits
 * again, as libevent ran an event_active() before its next poll, so that a
 * websock_send to oneself (or a publish to one's own topic) is handled
 * before the input that arrived after it. */
static void run_wake(wsh_loop *l) {
  l->wake_due = 0;
  if (l->on_wake)
    l->on_wake(l->wake_arg);
}

/* One batch of ready sockets, each to its connection (NULL: crossed out,
 * its connection freed meanwhile), and the loop's own two entries: a wake-up
 * from another thread, and libevent's set (direct loops). */
static void dispatch(wsh_loop *l, int n) {
  l->nready = n;
  for (l->iready = 0; l->iready < l->nready; l->iready++) {
    const struct epoll_event *e = &l->ready[l->iready];
    if (!e->data.ptr)
      continue;
    if (e->data.ptr == &l->wake_mark) {
      eventfd_t v;
      if (eventfd_read(l->wake_fd, &v) == 0)
        run_wake(l);
      continue;
    }
    if (e->data.ptr == &l->lev_mark) {
      l->lev_due = 1;
      continue;
    }
    unsigned io = 0;
    if (e->events & (EPOLLERR | EPOLLHUP)) /* as libevent: both */
      io = WSH_IO_READ | WSH_IO_WRITE;
    if (e->events & EPOLLIN)
      io |= WSH_IO_READ;
    if (e->events & EPOLLOUT)
      io |= WSH_IO_WRITE;
    if (e->events & EPOLLRDHUP)
      io |= WSH_IO_HUP;
    wsh_conn_io(e->data.ptr, io);
  }
  l->nready = 0;
}

/* The loop's epoll set waited for `timeout_ms`: not through glibc's wrapper,
 * whose cancellation-point bookkeeping costs a third of this call's
 * instructions on the echo path (no thread is ever cancelled here);
 * epoll_pwait, as every architecture has it (no mask: 8, the kernel's
 * sigset size, is not looked at). */
static int wait_ready(wsh_loop *l, int timeout_ms) {
  return (int)syscall(SYS_epoll_pwait, l->epfd, l->ready, WSH_LOOP_BATCH,
                      timeout_ms, NULL, 8);
}

/* Nested: libevent found the loop's set readable. */
static void on_ready(evutil_socket_t fd, short what, void *arg) {
  wsh_loop *l = arg;
  (void)fd;
  (void)what;
  int n = wait_ready(l, 0);
  if (n > 0)
    dispatch(l, n);
}

/* ---- the direct loop ----------------------------------------------------- */

/* The file /proc/self/fd/<fd> is: "anon_inode:[eventpoll]" and so on. */
static bool fd_is(long fd, const char *what) {
  char path[64], link[32];
  snprintf(path, sizeof(path), "/proc/self/fd/%ld", fd);
  ssize_t len = readlink(path, link, sizeof(link) - 1);
  if (len <= 0)
    return false;
  link[len] = '\0';
  return strcmp(link, what) == 0;
}

/* The entries of epoll set `ep` (/proc/self/fdinfo), in tfds[0..return). */
static int epoll_entries(long ep, int *tfds, int max) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/fdinfo/%ld", ep);
  FILE *f = fopen(path, "re");
  if (!f)
    return 0;
  int n = 0, tfd;
  while (n < max && fgets(line, sizeof(line), f))
    if (sscanf(line, "tfd: %d", &tfd) == 1)
      tfds[n++] = tfd;
  fclose(f);
  return n;
}

/* libevent's epoll set, the one that holds `member` (the loop's set, which
 * ep_ev put there), and the timerfd in it (EVENT_BASE_FLAG_PRECISE_TIMER).
 * 0, or -1 if either is not found. */
static int find_libevent_fds(int member, int *lev, int *timerfd) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return -1;
  *lev = *timerfd = -1;
  struct dirent *de;
  while (*lev < 0 && (de = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(de->d_name, &end, 10);
    if (*end || end == de->d_name || fd == member || fd == dirfd(d) ||
        !fd_is(fd, "anon_inode:[eventpoll]"))
      continue;
    int tfds[64];
    int n = epoll_entries(fd, tfds, 64);
    bool holds = false;
    for (int i = 0; i < n; i++)
      holds |= tfds[i] == member;
    for (int i = 0; holds && i < n; i++)
      if (fd_is(tfds[i], "anon_inode:[timerfd]"))
        *timerfd = tfds[i];
    if (holds)
      *lev = (int)fd;
  }
  closedir(d);
  return *lev >= 0 && *timerfd >= 0 ? 0 : -1;
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
  eventfd_t v;
  (void)what;
  (void)arg;
  (void)eventfd_read(fd, &v); /* fails only if already drained */
}

/* libevent's turn: the kick makes its wait return at once, after it armed
 * its timerfd for its first timer, and the callbacks of what is ready or due
 * run. libevent disarms the timerfd when it starts a turn with something
 * already due (a wait of zero), so a turn that ends with it unarmed is run
 * again (the tick keeps a timer pending: unarmed means only that).
 * deadlines.armed_at is noted first: a callback that arms the deadlines'
 * timer again (or adds a near timer: lev_due) makes the loop run libevent
 * once more before it waits. */
static void lev_run(wsh_loop *l) {
  struct itimerspec its;
  do {
    l->lev_due = 0;
    l->lev_deadline = l->deadlines.armed_at;
    if (eventfd_write(l->kick_fd, 1) != 0)
      wsh_warn("worker %u: eventfd: %s", l->index, strerror(errno));
    event_base_loop(l->base, EVLOOP_ONCE);
  } while (!l->exit && timerfd_gettime(l->lev_timerfd, &its) == 0 &&
           its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0);
}

/* Once a second: libevent runs and arms its timerfd for its first timer,
 * so a timer added at least a tick ahead needs no run of its own
 * (wsh_loop_timer_add). And a worker that moved WSH_LOOP_RELEASE_BYTES or
 * more (in and out, its counters) since it last gave its free heap back,
 * and nothing since the last tick, gives it back now (base/heap.h): after a
 * burst of big messages its arena's free top goes back to the kernel one to
 * two ticks after the last byte, not when the next burst reuses it. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
  wsh_loop *l = arg;
  (void)fd;
  (void)what;
  unsigned long long moved =
      atomic_load_explicit(&l->stats.bytes_in, memory_order_relaxed) +
      atomic_load_explicit(&l->stats.bytes_out, memory_order_relaxed);
  if (moved == l->heap_seen &&
      moved - l->heap_released >= WSH_LOOP_RELEASE_BYTES &&
      wsh_heap_release()) {
    l->heap_released = moved;
    wsh_debug("worker %u: quiet after %llu bytes: free heap given back",
              l->index, moved);
  }
  l->heap_seen = moved;
}

/* What wsh_loop_direct added to libevent: the kick and the tick. */
static void direct_free(wsh_loop *l) {
  if (l->kick_ev)
    event_free(l->kick_ev);
  l->kick_ev = NULL;
  if (l->tick_ev)
    event_free(l->tick_ev);
  l->tick_ev = NULL;
  if (l->kick_fd >= 0)
    close(l->kick_fd);
  l->kick_fd = -1;
}

int wsh_loop_direct(wsh_loop *l) {
  if (l->lev_fd >= 0)
    return 0;
  int lev, timerfd;
  if (find_libevent_fds(l->epfd, &lev, &timerfd) != 0)
    return -1;
  l->kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (l->kick_fd >= 0)
    l->kick_ev =
        event_new(l->base, l->kick_fd, EV_READ | EV_PERSIST, on_kick, l);
  l->tick_ev = event_new(l->base, -1, EV_PERSIST, on_tick, l);
  struct timeval tick = wsh_timeval_ms(WSH_LOOP_TICK_MS);
  struct epoll_event e = {.events = EPOLLIN, .data.ptr = &l->lev_mark};
  /* out of libevent's set first: a set cannot hold what holds it */
  if (!l->kick_ev || !l->tick_ev || event_add(l->kick_ev, NULL) != 0 ||
      event_add(l->tick_ev, &tick) != 0 || event_del(l->ep_ev) != 0) {
    direct_free(l);
    return -1;
  }
  if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, lev, &e) != 0) {
    event_add(l->ep_ev, NULL);
    direct_free(l);
    return -1;
  }
  l->lev_fd = lev;
  l->lev_timerfd = timerfd;
  l->lev_due = 1; /* its timers are armed on the first turn */
  return 0;
}

uint32_t wsh_loop_poll_window(uint32_t window, uint64_t idle_ns, uint32_t max) {
  uint32_t start = max / 4 ? max / 4 : max;
  if (idle_ns > max) /* polling would not have caught it: poll less */
    return window / 2 >= start ? window / 2 : 0;
  if (idle_ns > window) /* polling for longer would have */
    return window >= max / 2 ? max : window * 2 >= start ? window * 2 : start;
  return window;
}

/* Waits as wait_ready does, but with busy polling (poll_max_ns) it first
 * polls for the current window, and then adapts the window to how long
 * the loop was idle. Why: on a virtual machine a thread that sleeps gives
 * up its vCPU, and waking it takes the host tens to hundreds of µs, which
 * the peer's send that wakes it pays. A worker that has drained its
 * sockets and sleeps every few messages while its clients are a few µs
 * from sending more goes that slowly; polling for about that long keeps
 * it awake, as libwebsockets' poll() loop, which never sleeps under such
 * load, is (bench/PERFORMANCE.md, "Target 3: a worker that sleeps"). */
static int wait_polling(wsh_loop *l, int timeout_ms) {
  int n = wait_ready(l, 0);
  if (n)
    return n; /* ready at once (not idle), or an error */
  uint64_t t0 = wsh_now_ns();
  while (l->poll_ns && (n = wait_ready(l, 0)) == 0 &&
         wsh_now_ns() - t0 < l->poll_ns)
    ;
  if (n)
    return n; /* caught while polling */
  n = wait_ready(l, timeout_ms);
  if (n >= 0)
    l->poll_ns =
        wsh_loop_poll_window(l->poll_ns, wsh_now_ns() - t0, l->poll_max_ns);
  return n;
}

int wsh_loop_turn(wsh_loop *l, int timeout_ms) {
  if (l->wake_due)
    run_wake(l);
  while (!l->exit && (l->lev_due || l->deadlines.armed_at != l->lev_deadline))
    lev_run(l);
  if (l->exit)
    return 0;
  /* libevent's callbacks may have posted to this loop: no wait then */
  int n = l->wake_due || !l->poll_max_ns || !timeout_ms
              ? wait_ready(l, l->wake_due ? 0 : timeout_ms)
              : wait_polling(l, timeout_ms);
  if (n > 0)
    dispatch(l, n);
  return n;
}

void wsh_loop_run(wsh_loop *l) {
  if (wsh_loop_direct(l) != 0) {
    wsh_warn("worker %u: libevent's epoll set not found: its loop waits "
             "for this worker's sockets (one more epoll set per wake-up)",
             l->index);
    event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return;
  }
  running = l;
  while (!l->exit) /* every loopexit of a worker's base is wsh_loop_exit */
    wsh_loop_turn(l, -1);
  running = NULL;
}

void wsh_loop_exit(wsh_loop *l) {
  l->exit = 1;
  event_base_loopexit(l->base, NULL);
}

void wsh_loop_wake(wsh_loop *l) {
  if (running == l) {
    l->wake_due = 1; /* first thing on the next turn (wsh_loop_turn) */
    return;
  }
  (void)eventfd_write(l->wake_fd, 1); /* fails only if already due */
}

int wsh_loop_timer_add(wsh_loop *l, struct event *ev, uint64_t ms) {
  struct timeval tv = wsh_timeval_ms(ms);
  if (ms < WSH_LOOP_TICK_MS)
    l->lev_due = 1; /* due before the next tick: armed before the wait */
  return evtimer_add(ev, &tv);
}

int wsh_loop_io_set(wsh_loop *l, int fd, websock_conn *conn, unsigned had,
                    unsigned want) {
  struct epoll_event e = {.events =
                              (want & WSH_IO_READ ? EPOLLIN : 0u) |
                              (want & WSH_IO_WRITE ? EPOLLOUT : 0u) |
                              (want & WSH_IO_EDGE ? EPOLLET | EPOLLRDHUP : 0u),
                          .data.ptr = conn};
  want &= WSH_IO_READ | WSH_IO_WRITE;
  had &= WSH_IO_READ | WSH_IO_WRITE;
  /* out of the set while nothing is wanted: epoll would still report
   * EPOLLHUP and EPOLLERR, again and again */
  int op = !want ? EPOLL_CTL_DEL : had ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (!want && !had)
    return 0;
  return epoll_ctl(l->epfd, op, fd, &e);
}

void wsh_loop_io_forget(wsh_loop *l, const websock_conn *conn) {
  for (int i = l->iready + 1; i < l->nready; i++)
    if (l->ready[i].data.ptr == conn)
      l->ready[i].data.ptr = NULL;
}

int wsh_loop_init(wsh_loop *l, unsigned index, wsh_conn_env *env,
                  websock_host *host) {
  memset(l, 0, sizeof(*l));
  l->epfd = l->lev_fd = l->lev_timerfd = l->kick_fd = l->wake_fd = -1;
  l->index = index;
  l->env = env;
  l->host = host;
  wsh_slots_init(&l->slots);
  wsh_topics_init(&l->topics);
  wsh_zmem_init(&l->zmem);
  wsh_pmd_shared_init(&l->pmd, &l->zmem);
  l->rbuf_size = 64 * 1024;
  l->rbuf = malloc(l->rbuf_size);
  l->obuf_size = 256 * 1024;
  l->obuf = malloc(l->obuf_size);
  wsh_decoder_init(&l->dec.d, 0);
  l->ready = malloc(WSH_LOOP_BATCH * sizeof(*l->ready));
  l->epfd = epoll_create1(EPOLL_CLOEXEC);
  l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  /* timers through a timerfd in libevent's set: a direct loop waits in its
   * own, which holds that one (wsh_loop_direct) */
  struct event_config *cfg = event_config_new();
  if (cfg && event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) == 0)
    l->base = event_base_new_with_config(cfg);
  if (cfg)
    event_config_free(cfg);
  struct epoll_event we = {.events = EPOLLIN, .data.ptr = &l->wake_mark};
  bool wakes = l->epfd >= 0 && l->wake_fd >= 0 &&
               epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &we) == 0;
  if (l->base && l->epfd >= 0)
    l->ep_ev = event_new(l->base, l->epfd, EV_READ | EV_PERSIST, on_ready, l);
  if (l->base) /* its timer: NULL if out of memory */
    wsh_deadlines_init(&l->deadlines, l->base, wsh_conn_deadline, l);
  if (!wakes || !l->ep_ev || !l->deadlines.timer ||
      event_add(l->ep_ev, NULL) != 0 || !l->rbuf || !l->obuf || !l->ready) {
    wsh_loop_free(l);
    return WEBSOCK_ENOMEM;
  }
  return 0;
}

void wsh_loop_free(wsh_loop *l) {
  direct_free(l);
  if (l->ep_ev)
    event_free(l->ep_ev);
  wsh_deadlines_free(&l->deadlines);
  if (l->epfd >= 0)
    close(l->epfd);
  if (l->wake_fd >= 0)
    close(l->wake_fd);
  if (l->base)
    event_base_free(l->base);
  wsh_slots_free(&l->slots);
  wsh_topics_free(&l->topics);
  wsh_pmd_shared_free(&l->pmd);
  wsh_sendq_free(l);
  free(l->rbuf);
  free(l->obuf);
  free(l->dirty);
  free(l->ready);
  wsh_decoder_free(&l->dec.d);
  memset(l, 0, sizeof(*l));
  l->epfd = l->lev_fd = l->lev_timerfd = l->kick_fd = l->wake_fd = -1;
}
