/*
 * loop.h - what the connections of one worker share: its event loop, the
 * buffer every read lands in, the staging area every small write goes
 * through, the connections to settle before the current loop callback ends,
 * the slots behind websock_ref, the deadlines of its open connections, the
 * worker's topics and its counters. The worker (worker.h) runs a loop on its
 * thread and feeds it; the connections use it and never see the worker.
 */
#ifndef WSH_LOOP_H
#define WSH_LOOP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "network/deadlines.h"
#include "network/slots.h"
#include "protocol/deflate.h"
#include "protocol/frame.h"
#include "network/tls.h"
#include "bus/topic.h"
#include "websock.h"

struct event_base;
struct event;
struct epoll_event;
typedef struct wsh_conn_env wsh_conn_env;

/* A frame decoder and the connection it decodes for (the
 * permessage-deflate sink finds the connection through it). */
typedef struct wsh_conn_dec {
  wsh_decoder d;
  websock_conn *c; /* NULL: the loop's decoder is free */
} wsh_conn_dec;

/* What a socket waits for in the loop's epoll set, and what it is found
 * ready for (wsh_loop_io_set, wsh_conn_io). WSH_IO_EDGE (waiting only):
 * the socket is reported when its readiness comes, not while it lasts
 * (EPOLLET), so a turn serves connections in the order their input
 * arrived; its reader empties it, or asks again (wsh_loop_io_set with the
 * same `want`: reported on the next turn if still readable). WSH_IO_HUP
 * (reported only, edge-triggered sockets): the peer has shut its side, so
 * its input ends with an EOF that no later edge will report. */
enum {
  WSH_IO_EDGE = 0x01,
  WSH_IO_READ = 0x02,
  WSH_IO_WRITE = 0x04,
  WSH_IO_HUP = 0x08
};

#define WSH_LOOP_BATCH 256 /* sockets dispatched per turn of the loop */
/* A direct loop runs libevent at least this often (wsh_loop_timer_add). */
#define WSH_LOOP_TICK_MS 1000u
/* What a worker moves before a quiet tick gives its free heap back. */
#define WSH_LOOP_RELEASE_BYTES (1024ull * 1024ull)

/* Counters for /metrics: written by the worker, read by any thread. */
#define WSH_STATUS_MAP(XX)                                                     \
  XX(101)                                                                      \
  XX(200)                                                                      \
  XX(400)                                                                      \
  XX(401)                                                                      \
  XX(403)                                                                      \
  XX(404)                                                                      \
  XX(405) XX(408) XX(413) XX(414) XX(426) XX(429) XX(431) XX(500) XX(503)
enum {
#define WSH_STATUS_ENUM_(code) WSH_STATUS_##code,
  WSH_STATUS_MAP(WSH_STATUS_ENUM_)
#undef WSH_STATUS_ENUM_
      WSH_STATUS_OTHER,
  WSH_NSTATUS
};

typedef struct wsh_stats {
  atomic_ullong accepted;
  atomic_ullong open; /* WebSocket connections now */
  atomic_ullong msgs_in, msgs_out, bytes_in, bytes_out;
  atomic_ullong responses[WSH_NSTATUS]; /* upgrade answers by status */
  atomic_ullong shed;        /* connections closed over the memory budget */
  atomic_ullong mem_refused; /* upgrades refused (503) over the budget */
  /* permessage-deflate broadcasts: publishes that wanted a compressed
   * frame, the deflate calls made for them, compressed frames queued */
  atomic_ullong bcast_z_publishes, bcast_z_deflates, bcast_z_sends;
  /* broadcast sends made through io_uring, and the calls that made them */
  atomic_ullong uring_sends, uring_enters;
} wsh_stats;

/* Adds to a counter of this worker's wsh_stats. Each counter has one writer,
 * the worker thread, so a relaxed load and store do (no locked add on the
 * per-message path); readers on other threads see whole values. */
static inline void wsh_stat_add(atomic_ullong *v, unsigned long long n) {
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + n,
                        memory_order_relaxed);
}

/* Index of a status in wsh_stats.responses. */
int wsh_status_index(int status);

typedef struct wsh_loop {
  wsh_conn_env *env;  /* what its connections need */
  websock_host *host; /* for websock_self() and websock_conn_host() */
  unsigned index;     /* the worker's number */
  struct event_base *base;
  /* Every socket of this loop waits in one epoll set of its own: a socket
   * costs the kernel's epoll entry and nothing in libevent. Level-triggered,
   * so what a turn leaves unread is reported again on the next. `ready` is
   * the batch being dispatched (ready[iready] now); a connection freed
   * meanwhile is crossed out of the rest of it (wsh_loop_io_forget).
   *
   * How the loop waits (wsh_loop_run): directly in this set, which holds
   * libevent's own epoll set as one member (its listeners, timers through
   * a timerfd, `kick`): a socket's readiness wakes the thread through one
   * epoll set, not two (an epoll set inside another costs ~25 µs per
   * wake-up at light load on Linux 6.18: bench/PERFORMANCE.md). libevent
   * runs only when its set is ready (a listener, its timerfd, its tick
   * each WSH_LOOP_TICK_MS), when a timer due before the next tick was added
   * or when the deadlines' timer was armed again. Where libevent's set
   * cannot be found, and when a test drives event_base_loop itself,
   * libevent watches this set as one event (ep_ev) instead: nested. */
  int epfd;
  struct event *ep_ev;
  struct epoll_event *ready;
  int nready, iready;
  int lev_fd;      /* libevent's epoll set, once direct (-1: nested) */
  int lev_timerfd; /* and its timerfd */
  int kick_fd;     /* an eventfd libevent watches: its runs never block */
  struct event *kick_ev;
  struct event *tick_ev; /* WSH_LOOP_TICK_MS (lev_run, wsh_loop_timer_add) */
  uint8_t lev_due;       /* libevent has work or a timer to arm */
  uint8_t exit;          /* wsh_loop_exit was called */
  uint8_t wake_due;      /* its own thread posted to it (wsh_loop_wake) */
  uint64_t lev_deadline; /* deadlines.armed_at when libevent last armed */
  /* Bytes moved (stats) at the last tick and when the free heap was last
   * given back (on_tick, wsh_heap_release). */
  unsigned long long heap_seen, heap_released;
  /* Busy polling (wsh_loop_turn): before it sleeps, a direct loop polls
   * its set for up to poll_ns, a window that adapts between 0 and
   * poll_max_ns (busy_poll_us; 0: it never polls) as wsh_loop_poll_window
   * says. */
  uint32_t poll_ns, poll_max_ns;
  /* Other threads wake the loop through wake_fd (an eventfd in the set):
   * on_wake(wake_arg) runs on the loop's thread (wsh_loop_wake). */
  int wake_fd;
  void (*on_wake)(void *arg);
  void *wake_arg;
  char wake_mark, lev_mark; /* their entries' data.ptr in the set */
  int stopping;             /* the worker is stopping (loop thread only) */
  websock_conn *conns;      /* every socket of this loop, upgraded or not */
  size_t nconns;            /* (sockets, not the open WebSocket gauge) */
  uint64_t next_id;
  wsh_slots slots;   /* behind websock_ref */
  wsh_topics topics; /* this worker's subscribers */
  /* the open connections' idle, ping and trim deadlines, by slot (conn.c):
   * one timer for all of them */
  wsh_deadlines deadlines;
  wsh_stats stats;
  uint8_t *rbuf; /* every read of this loop's sockets lands here */
  size_t rbuf_size;
  /* Decodes every connection's frames that arrive whole within one read;
   * a connection keeps a decoder of its own only while a read ends inside
   * a frame (conn.c). */
  wsh_conn_dec dec;
  /* Sends many per system call (sendq.h: a broadcast's, and the first
   * writes of connections settled together): NULL until the first
   * broadcast to, or settling of, WSH_SENDQ_MIN sets it up; sendq_off once
   * that failed or `io_uring = off`. */
  struct wsh_sendq *sendq;
  uint8_t sendq_off;
  /* Frames queued during one loop callback land here, each connection's in
   * one contiguous run, and are sent with one write when it is settled; the
   * area is reused once every dirty connection is settled, so the echo path
   * allocates nothing. What a short write leaves goes to the connection's
   * evbuffer. */
  uint8_t *obuf;
  size_t obuf_size;
  size_t obuf_used;
  websock_conn **dirty; /* connections to settle before the callback ends */
  size_t ndirty;
  size_t capdirty;
  size_t writers;  /* of them, those wsh_outq_add gave their first output */
  size_t buffered; /* what this loop's connections hold (its thread only) */
  wsh_zmem zmem; /* zlib state and buffers of this loop (permessage-deflate) */
  wsh_pmd_shared pmd;      /* the streams `shared` connections borrow */
  wsh_tls_stats tls_stats; /* its TLS handshakes, for /metrics */
  /* While a handle_info runs: its connection and where its message came
   * from (websock_info_source; loop thread only). */
  const websock_conn *info_conn;
  int info_kind; /* websock_info_kind */
  int64_t info_timer;
  const char *info_topic;
} wsh_loop;

/* Sets l up: an event base, the buffers, empty tables. 0 or
 * WEBSOCK_ENOMEM (nothing left allocated). */
int wsh_loop_init(wsh_loop *l, unsigned index, wsh_conn_env *env,
                  websock_host *host);
/* Frees what wsh_loop_init set up (the connections must be gone). */
void wsh_loop_free(wsh_loop *l);

/* Runs the loop on this thread until wsh_loop_exit: waiting in l's own
 * epoll set where libevent's can be found, else inside libevent's loop
 * (nested, with a warning). */
void wsh_loop_run(wsh_loop *l);

/* Makes l wait directly in its own set from now on (wsh_loop_run does it
 * first). 0, or -1 if libevent's epoll set was not found (l unchanged). */
int wsh_loop_direct(wsh_loop *l);

/* One turn of a direct loop: libevent's pending work first, then at most
 * timeout_ms (-1: no limit) for what is ready, dispatched. Returns what
 * epoll_wait returned (tests drive the loop with it). */
int wsh_loop_turn(wsh_loop *l, int timeout_ms);

/* The next busy-poll window after a turn that found nothing within
 * `window` ns and was idle for `idle_ns` in all (polling and sleeping),
 * with `max` the largest window (0: none). An idle spell longer than max
 * (input that polling would not have caught) halves the window, down to
 * 0 below max / 4; one longer than the window but within max (input
 * polling for longer would have caught, without a sleep and the wake-up
 * that ends it) doubles it, starting at max / 4, up to max; otherwise it
 * stays. A loop that sleeps for long stretches so stops polling at once,
 * and a busy one polls for about as long as its input takes to come: the
 * rule of Linux's haltpoll cpuidle governor, in user space. */
uint32_t wsh_loop_poll_window(uint32_t window, uint64_t idle_ns, uint32_t max);

/* Loop thread only: the loop ends after the current callback (every end
 * of a worker's loop goes through here). */
void wsh_loop_exit(wsh_loop *l);

/* Any thread: on_wake will run on the loop's thread (async-signal-safe:
 * one write). From the thread that runs l (wsh_loop_run) it only notes it:
 * on_wake then runs first thing on the next turn, before the loop waits
 * again, so before any input that arrives meanwhile. */
void wsh_loop_wake(wsh_loop *l);

/* Loop thread only: evtimer_add, ms from now, for a timer of l's base, so
 * that a direct loop arms libevent's timerfd for it before it waits again
 * if it is due before the next tick. Every timer of a worker's base is
 * added so. */
int wsh_loop_timer_add(wsh_loop *l, struct event *ev, uint64_t ms);

/* Loop thread only: the readiness fd waits for in the epoll set, from what
 * it waited for (`had`; 0: not in the set) to `want` (WSH_IO_* bits; 0, or
 * WSH_IO_EDGE alone: taken out), reported to wsh_conn_io with conn. The
 * kernel looks at the socket again: already ready, it is reported on the
 * next turn. 0 or -1 with errno. */
int wsh_loop_io_set(wsh_loop *l, int fd, websock_conn *conn, unsigned had,
                    unsigned want);

/* Loop thread only: conn is being freed; what the batch being dispatched
 * still holds for it is dropped. */
void wsh_loop_io_forget(wsh_loop *l, const websock_conn *conn);

/* Connections are marked for settling with wsh_loop_mark (connection.h). */

#endif
