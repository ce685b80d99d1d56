/*
 * msgs.c - a connection's timers and topic subscriptions (see msgs.h).
 */
#include "network/msgs.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "bus/bus.h"
#include "network/worker.h"
#include "plugins/contract.h"

/* A websock_send_after() timer: its event and its message in one block. */
struct wsh_timer {
  struct event ev;
  websock_conn *c;
  wsh_timer *next;
  wsh_timer_fire fire;
  int64_t id;
  size_t len;
  uint8_t data[];
};

static void on_due(evutil_socket_t fd, short what, void *arg) {
  wsh_timer *t = arg;
  websock_conn *c = t->c;
  (void)fd;
  (void)what;
  wsh_timer **pp = &c->more->timers;
  while (*pp != t)
    pp = &(*pp)->next;
  *pp = t->next;
  t->fire(c, t->id, t->data, t->len);
  free(t);
}

int64_t wsh_msgs_send_after(websock_conn *c, uint64_t ms, const void *data,
                            size_t len, wsh_timer_fire fire) {
  wsh_conn_more *m = wsh_conn_more_of(c);
  wsh_timer *t = m ? malloc(sizeof(*t) + len) : NULL;
  if (!t)
    return WEBSOCK_ENOMEM;
  t->c = c;
  t->fire = fire;
  t->id = ++m->next_timer_id;
  t->len = len;
  if (len)
    memcpy(t->data, data, len);
  evtimer_assign(&t->ev, c->w->base, on_due, t);
  if (wsh_loop_timer_add(c->w, &t->ev, ms) != 0) {
    free(t);
    return WEBSOCK_ENOMEM;
  }
  t->next = m->timers;
  m->timers = t;
  return t->id;
}

int wsh_msgs_cancel_timer(websock_conn *c, int64_t id) {
  if (!c->more)
    return WEBSOCK_ENOENT;
  for (wsh_timer **pp = &c->more->timers; *pp; pp = &(*pp)->next) {
    if ((*pp)->id == id) {
      wsh_timer *t = *pp;
      *pp = t->next;
      event_del(&t->ev);
      free(t);
      return 0;
    }
  }
  return WEBSOCK_ENOENT;
}

int wsh_msgs_subscribe(websock_conn *c, const char *topic) {
  if (!wsh_contract_topic(topic))
    return WEBSOCK_EINVAL;
  wsh_conn_more *m = wsh_conn_more_of(c);
  if (!m)
    return WEBSOCK_ENOMEM;
  bool added;
  wsh_topic *tp = wsh_topics_join(&c->w->topics, topic, c, &m->subs, &added);
  if (!tp)
    return WEBSOCK_ENOMEM;
  if (added)
    wsh_topic_counts_add(&c->w->host->counts, tp->name, 1);
  /* The worker's first member: the bus hears the host needs the topic. */
  if (added && tp->n == 1 && c->w->host->bus)
    wsh_bus_topic_joined(c->w->host->bus, tp->name);
  return 0;
}

/* c leaves its topic m->subs.v[i] (the entry goes; the last one takes its
 * place); the worker's last member leaving deletes it, and the bus hears
 * of it. */
static void leave(websock_conn *c, wsh_conn_more *m, size_t i) {
  wsh_topic *tp = m->subs.v[i].topic;
  wsh_bus *bus = c->w->host->bus;
  wsh_topic_counts_add(&c->w->host->counts, tp->name, -1);
  if (tp->n != 1 || !bus) {
    wsh_topics_leave(&c->w->topics, &m->subs, i);
    return;
  }
  char name[WSH_BUS_TOPIC_MAX + 1];
  snprintf(name, sizeof(name), "%s", tp->name);
  wsh_topics_leave(&c->w->topics, &m->subs, i);
  wsh_bus_topic_left(bus, name);
}

int wsh_msgs_unsubscribe(websock_conn *c, const char *topic) {
  wsh_conn_more *m = c->more;
  wsh_topic *tp = m && m->subs.n ? wsh_topics_find(&c->w->topics, topic) : NULL;
  long i = tp ? wsh_subs_find(&m->subs, tp, c) : -1;
  if (i < 0)
    return WEBSOCK_ENOENT;
  leave(c, m, (size_t)i);
  return 0;
}

void wsh_msgs_leave(websock_conn *c) {
  wsh_conn_more *m = c->more;
  if (!m)
    return;
  while (m->subs.n) /* the last first: nothing moves */
    leave(c, m, m->subs.n - 1);
  wsh_subs_free(&m->subs);
  while (m->timers) {
    wsh_timer *t = m->timers;
    m->timers = t->next;
    event_del(&t->ev);
    free(t);
  }
}
