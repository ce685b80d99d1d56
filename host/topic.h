/*
 * topic.h - a worker's topics: for each topic name, the worker's own
 * connections subscribed to it. Worker thread only; a publish reaches every
 * worker through its mailbox and each delivers to its local members.
 */
#ifndef WSH_TOPIC_H
#define WSH_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include "websock.h"

typedef struct wsh_topic {
  struct wsh_topic *next; /* hash chain */
  websock_conn **members;
  size_t n;
  size_t cap;
  char name[];
} wsh_topic;

typedef struct wsh_topics {
  wsh_topic **buckets;
  size_t nbuckets;
  size_t n;
} wsh_topics;

void wsh_topics_init(wsh_topics *t);
void wsh_topics_free(wsh_topics *t);
/* The topic, or NULL. */
wsh_topic *wsh_topics_find(wsh_topics *t, const char *name);
/* Adds conn to the topic (created on demand). *added says whether it was new.
 * Returns the topic, or NULL when out of memory. */
wsh_topic *wsh_topics_join(wsh_topics *t, const char *name, websock_conn *conn,
                           bool *added);
/* Removes conn from the topic (deleted when empty). */
void wsh_topics_leave(wsh_topics *t, wsh_topic *topic, websock_conn *conn);

#endif
