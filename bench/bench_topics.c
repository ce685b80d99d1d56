/*
 * bench_topics.c - the cost of filling and emptying a big room: n
 * connections join one topic (wsh_msgs_subscribe), then leave it in random
 * order, once by websock_unsubscribe (wsh_msgs_unsubscribe) and once by
 * closing (wsh_msgs_leave); and one connection joining n topics, then
 * leaving them in random order. The connections are bare structs on a
 * worker's loop with no socket (only what the topic code touches), so that
 * 100,000 of them need no descriptors; no bus. Milliseconds per phase, best
 * of `runs`. Usage: bench_topics [n ...] (default 10000 100000), or
 * `--short` (1,000, one run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/topic.h"
#include "network/connection.h"
#include "network/msgs.h"
#include "network/worker.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A permutation of 0..n-1 (xorshift: the same for every build). */
static size_t *shuffled(size_t n, uint64_t seed) {
  size_t *p = malloc(n * sizeof(*p));
  if (!p)
    return NULL;
  for (size_t i = 0; i < n; i++)
    p[i] = i;
  for (size_t i = n; i > 1; i--) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    size_t j = seed % i, t = p[i - 1];
    p[i - 1] = p[j];
    p[j] = t;
  }
  return p;
}

static void fail(const char *what) {
  fprintf(stderr, "bench_topics: %s\n", what);
  exit(1);
}

/* The phases' best times, in ms. */
typedef struct result {
  double join, unsubscribe, rejoin, close, many_join, many_leave;
} result;

static void keep_best(double *best, double t) {
  if (*best == 0 || t < *best)
    *best = t;
}

static void run(wsh_loop *l, size_t n, result *r) {
  websock_conn *c = calloc(n, sizeof(*c));
  size_t *order = shuffled(n, 0x9e3779b97f4a7c15ull ^ n);
  if (!c || !order)
    fail("out of memory");
  for (size_t i = 0; i < n; i++)
    c[i].w = l;
  double t0 = now_ms();
  for (size_t i = 0; i < n; i++)
    if (wsh_msgs_subscribe(&c[i], "room") != 0)
      fail("join failed");
  double t1 = now_ms();
  for (size_t i = 0; i < n; i++)
    if (wsh_msgs_unsubscribe(&c[order[i]], "room") != 0)
      fail("unsubscribe failed");
  double t2 = now_ms();
  if (wsh_topics_find(&l->topics, "room"))
    fail("the room outlived its members");
  for (size_t i = 0; i < n; i++)
    if (wsh_msgs_subscribe(&c[i], "room") != 0)
      fail("join failed");
  double t3 = now_ms();
  for (size_t i = 0; i < n; i++)
    wsh_msgs_leave(&c[order[i]]);
  double t4 = now_ms();
  if (wsh_topics_find(&l->topics, "room"))
    fail("the room outlived its members");
  keep_best(&r->join, t1 - t0);
  keep_best(&r->unsubscribe, t2 - t1);
  keep_best(&r->rejoin, t3 - t2);
  keep_best(&r->close, t4 - t3);
  for (size_t i = 0; i < n; i++)
    free(c[i].more);

  /* One connection in n topics (at most the 32,768 a connection may join). */
  size_t k = n < 32768 ? n : 32768;
  char name[32];
  websock_conn one = {.w = l};
  t0 = now_ms();
  for (size_t i = 0; i < k; i++) {
    snprintf(name, sizeof(name), "t%zu", i);
    if (wsh_msgs_subscribe(&one, name) != 0)
      fail("join of many topics failed");
  }
  t1 = now_ms();
  for (size_t i = 0; i < n; i++) {
    if (order[i] >= k)
      continue;
    snprintf(name, sizeof(name), "t%zu", order[i]);
    if (wsh_msgs_unsubscribe(&one, name) != 0)
      fail("unsubscribe of many topics failed");
  }
  t2 = now_ms();
  if (l->topics.n != 0)
    fail("topics left over");
  keep_best(&r->many_join, t1 - t0);
  keep_best(&r->many_leave, t2 - t1);
  wsh_msgs_leave(&one);
  free(one.more);
  free(order);
  free(c);
}

int main(int argc, char **argv) {
  size_t sizes[16] = {10000, 100000};
  int nsizes = 2, runs = 3;
  if (argc > 1 && strcmp(argv[1], "--short") == 0) {
    sizes[0] = 1000;
    nsizes = 1;
    runs = 1;
  } else if (argc > 1) {
    nsizes = 0;
    for (int i = 1; i < argc && nsizes < 16; i++)
      sizes[nsizes++] = strtoul(argv[i], NULL, 10);
  }
  websock_host host;
  memset(&host, 0, sizeof(host));
  wsh_topic_counts_init(&host.counts);
  wsh_loop l;
  if (wsh_loop_init(&l, 0, NULL, &host) != 0)
    fail("no loop");
  printf("%-8s %10s %12s %10s %10s %12s %12s  (ms, best of %d)\n", "n", "join",
         "unsubscribe", "rejoin", "close", "1 conn: join", "leave", runs);
  for (int s = 0; s < nsizes; s++) {
    result r = {0};
    for (int i = 0; i < runs; i++)
      run(&l, sizes[s], &r);
    printf("%-8zu %10.2f %12.2f %10.2f %10.2f %12.2f %12.2f\n", sizes[s],
           r.join, r.unsubscribe, r.rejoin, r.close, r.many_join, r.many_leave);
  }
  wsh_loop_free(&l);
  wsh_topic_counts_free(&host.counts);
  return 0;
}
