/*
 * loop.c - the state a worker's connections share (see loop.h): set-up, the
 * epoll set its sockets wait in and its dispatch, and the status index of
 * its counters. Its connections' deadlines are deadlines.c's.
 */
#include "network/loop.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <event2/event.h>

#include "network/conn.h"

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

/* The epoll set is readable: one batch of ready sockets, each to its
 * connection (NULL: crossed out, its connection freed meanwhile). */
static void on_ready(evutil_socket_t fd, short what, void *arg) {
  wsh_loop *l = arg;
  (void)fd;
  (void)what;
  /* with no timeout it never blocks: not through glibc's wrapper, whose
   * cancellation-point bookkeeping costs a third of this call's
   * instructions on the echo path (no thread is ever cancelled here);
   * epoll_pwait, as every architecture has it (no mask: 8, the kernel's
   * sigset size, is not looked at) */
  int n = (int)syscall(SYS_epoll_pwait, l->epfd, l->ready, WSH_LOOP_BATCH, 0,
                       NULL, 8);
  if (n <= 0)
    return;
  l->nready = n;
  for (l->iready = 0; l->iready < l->nready; l->iready++) {
    const struct epoll_event *e = &l->ready[l->iready];
    if (!e->data.ptr)
      continue;
    unsigned io = 0;
    if (e->events & (EPOLLERR | EPOLLHUP)) /* as libevent: both */
      io = WSH_IO_READ | WSH_IO_WRITE;
    if (e->events & EPOLLIN)
      io |= WSH_IO_READ;
    if (e->events & EPOLLOUT)
      io |= WSH_IO_WRITE;
    wsh_conn_io(e->data.ptr, io);
  }
  l->nready = 0;
}

int wsh_loop_io_set(wsh_loop *l, int fd, websock_conn *conn, unsigned had,
                    unsigned want) {
  struct epoll_event e = {.events = (want & WSH_IO_READ ? EPOLLIN : 0u) |
                                    (want & WSH_IO_WRITE ? EPOLLOUT : 0u),
                          .data.ptr = conn};
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
  l->epfd = -1;
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
  l->base = event_base_new();
  if (l->base && l->epfd >= 0)
    l->ep_ev = event_new(l->base, l->epfd, EV_READ | EV_PERSIST, on_ready, l);
  if (l->base) /* its timer: NULL if out of memory */
    wsh_deadlines_init(&l->deadlines, l->base, wsh_conn_deadline, l);
  if (!l->ep_ev || !l->deadlines.timer || event_add(l->ep_ev, NULL) != 0 ||
      !l->rbuf || !l->obuf || !l->ready) {
    wsh_loop_free(l);
    return WEBSOCK_ENOMEM;
  }
  return 0;
}

void wsh_loop_free(wsh_loop *l) {
  if (l->ep_ev)
    event_free(l->ep_ev);
  wsh_deadlines_free(&l->deadlines);
  if (l->epfd >= 0)
    close(l->epfd);
  if (l->base)
    event_base_free(l->base);
  wsh_slots_free(&l->slots);
  wsh_topics_free(&l->topics);
  wsh_pmd_shared_free(&l->pmd);
  free(l->rbuf);
  free(l->obuf);
  free(l->dirty);
  free(l->ready);
  wsh_decoder_free(&l->dec.d);
  memset(l, 0, sizeof(*l));
  l->epfd = -1;
}
