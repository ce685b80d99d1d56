/*
 * topic.h - a worker's topics: for each topic name, the worker's own
 * connections subscribed to it (worker thread only; a publish reaches every
 * worker through its mailbox and each delivers to its local members), and
 * the payload a publish or broadcast shares among all of them (any thread).
 * Connections are opaque here: the bus knows topics and payloads, the
 * network layer delivers.
 */
#ifndef WSH_TOPIC_H
#define WSH_TOPIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "websock.h"

/* Topics one connection may join at most (websock_subscribe's ENOMEM). */
#define WSH_SUBS_MAX 32768

struct wsh_topic;

/* One topic a connection joined, and the connection's index in its
 * members. */
typedef struct wsh_sub {
  struct wsh_topic *topic;
  uint32_t at;
} wsh_sub;

/* The topics a connection joined (its wsh_conn_more holds them), in no
 * order. Zeroed: none. */
typedef struct wsh_subs {
  wsh_sub *v;
  uint32_t n, cap;
} wsh_subs;

/* For a topic's member: its connection's topics, and this topic's index in
 * them. */
typedef struct wsh_member_of {
  wsh_subs *subs;
  uint32_t slot;
} wsh_member_of;

/* Membership is kept both ways, so that a join or a leave is O(1) (a join's
 * check for a duplicate scans the shorter of the topic's members and the
 * connection's topics): members[i]'s subs->v[of[i].slot] is this topic with
 * at == i. A leave swap-removes on both sides and mends the back-index of
 * the entry it moved. */
typedef struct wsh_topic {
  struct wsh_topic *next; /* hash chain */
  websock_conn **members; /* contiguous: a delivery walks it */
  wsh_member_of *of;      /* parallel to members */
  size_t n;
  size_t cap;
  char name[];
} wsh_topic;

typedef struct wsh_topics {
  wsh_topic **buckets;
  size_t nbuckets;
  size_t n;
  uint64_t changes; /* joins and leaves so far: a delivery sees if any came */
} wsh_topics;

void wsh_topics_init(wsh_topics *t);
/* Frees the table and its topics (the connections' subs are theirs). */
void wsh_topics_free(wsh_topics *t);
/* The topic, or NULL. */
wsh_topic *wsh_topics_find(wsh_topics *t, const char *name);
/* Adds conn, whose topics are subs, to the topic (created on demand).
 * *added says whether it was new (joining twice is one membership).
 * Returns the topic, or NULL when out of memory or subs already holds
 * WSH_SUBS_MAX topics: then nothing changed. */
wsh_topic *wsh_topics_join(wsh_topics *t, const char *name, websock_conn *conn,
                           wsh_subs *subs, bool *added);
/* The index in subs of topic (conn's topics), or -1 if conn is not a
 * member. O(the shorter of the two). */
long wsh_subs_find(const wsh_subs *subs, const wsh_topic *topic,
                   const websock_conn *conn);
/* Takes the connection out of its topic subs->v[i] (the topic deleted when
 * empty) and that entry out of subs (the last entry moves to i). */
void wsh_topics_leave(wsh_topics *t, wsh_subs *subs, size_t i);
/* Frees subs's array once it holds nothing (zeroed again). */
void wsh_subs_free(wsh_subs *subs);

/* How many connections of the whole host (every worker) are subscribed to
 * each topic, for websock_topic_subscribers(): any thread, under its lock.
 * A zeroed table is an empty one (glibc's mutex initialiser is zeros);
 * wsh_topic_counts_init says so explicitly. */
typedef struct wsh_topic_count {
  struct wsh_topic_count *next;
  size_t n;
  size_t sent; /* n as last reported (wsh_topic_counts_report) */
  char name[];
} wsh_topic_count;

typedef struct wsh_topic_counts {
  pthread_mutex_t lock;
  wsh_topic_count **buckets;
  size_t nbuckets;
  size_t n;     /* entries: topics with a subscriber or an unreported 0 */
  bool changed; /* a count moved since the last report */
} wsh_topic_counts;

void wsh_topic_counts_init(wsh_topic_counts *tc);
void wsh_topic_counts_free(wsh_topic_counts *tc);
/* One more subscriber of name (delta 1) or one fewer (-1; the entry goes at
 * 0). Returns 0 or WEBSOCK_ENOMEM (the count is then not kept). */
int wsh_topic_counts_add(wsh_topic_counts *tc, const char *name, int delta);
/* The subscribers of name (0 if none). */
size_t wsh_topic_counts_get(wsh_topic_counts *tc, const char *name);
/* For the bus's announcements to other hosts: calls fn(arg, name, n) (fn
 * may be NULL) for every topic whose count differs from the one last
 * reported, or with all for every topic with a subscriber too; marks them
 * reported, and forgets the topics at 0 once reported. fn runs under the
 * table's lock and must not call back into it. A table never reported
 * forgets a topic as soon as its count reaches 0. */
void wsh_topic_counts_report(wsh_topic_counts *tc, bool all,
                             void (*fn)(void *arg, const char *name, size_t n),
                             void *arg);

/* A payload several workers share: a publish (raw data for handle_info) or
 * a broadcast (one framed message, its bytes referenced by every
 * subscriber's send queue). Freed when the last reference goes. */
typedef struct wsh_shared {
  atomic_int refs;
  size_t len;
  uint8_t *data;
  /* A broadcast's compressed frames (permessage-deflate), made once by the
   * first subscriber that needs one, for each server window size: zvar[bits]
   * (with zlock held), or the bit (1 << bits) in zplain when compressing
   * did not pay. hdr_len: the plain frame's header length. */
  size_t hdr_len;
  pthread_mutex_t zlock;
  atomic_int zwanted; /* a compressed frame was wanted (counted once) */
  uint16_t zplain;
  struct wsh_shared *zvar[16];
  char topic[];
} wsh_shared;

wsh_shared *wsh_shared_new(const char *topic, size_t len);
void wsh_shared_ref(wsh_shared *sh);
void wsh_shared_unref(wsh_shared *sh);

#endif
