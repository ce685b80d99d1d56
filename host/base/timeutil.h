/*
 * timeutil.h - the clock and the conversions every layer uses: monotonic
 * clocks in milliseconds (coarse) and nanoseconds, and milliseconds as the
 * struct timeval libevent takes.
 */
#ifndef WSH_TIMEUTIL_H
#define WSH_TIMEUTIL_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

/* Milliseconds as a relative libevent timeout. */
static inline struct timeval wsh_timeval_ms(uint64_t ms) {
  return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* A coarse monotonic clock in milliseconds (cheap: no system call). */
static inline uint64_t wsh_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The monotonic clock in nanoseconds (the vDSO: no system call). */
static inline uint64_t wsh_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
