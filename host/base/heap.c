/*
 * heap.c - how the host uses glibc's malloc (see heap.h).
 *
 * Why: glibc's dynamic rule (a freed mmap'd block raises the mmap threshold
 * to its size and the trim threshold to twice that) still gave each 1 MiB
 * echo's pages back to the kernel in a worker thread's arena and faulted
 * them in again (huge pages cleared, on a VM a trap each): nearly 3x the CPU
 * per echoed MB (bench/PERFORMANCE.md, "Big messages"). 32 MiB is glibc's
 * own ceiling for that rule (DEFAULT_MMAP_THRESHOLD_MAX), 64 MiB twice it,
 * as the rule sets.
 *
 * The price is memory kept after a burst: a worker thread's arena gives its
 * free top back only on a free that leaves it over the trim threshold, and
 * malloc_trim() madvises free chunks inside an arena but never shrinks a
 * thread arena's top. So wsh_heap_release() lowers the threshold for the
 * moment of one free of a block carved from the calling thread's top, which
 * makes glibc shrink that heap then and there (heap_trim), and puts it back.
 * That is what glibc's own thresholds would have done at the last free.
 * Then malloc_trim(0) gives back the free pages between live blocks: after
 * a burst of 1 MiB echoes 2.4-3.6 MB of 8.4-9.4 could stay in such chunks,
 * below a block still in use (perf_budget's release check failed 2 runs of
 * 10 on 2026-12-02 without it, none of 6 with it). It walks every arena
 * under that arena's lock, the busy workers' too, but this runs at most
 * once a second per worker, only after a quiet second; the first call
 * after a burst takes about 0.8 ms (its madvise calls), later ones about
 * 1 µs (a throw-away check: 20,000 small blocks, 1 MiB churn).
 */
#include "base/heap.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HEAP_MMAP_THRESHOLD (32 * 1024 * 1024)
#define HEAP_TRIM_THRESHOLD (64 * 1024 * 1024)
/* glibc's default trim threshold, for the moment of a release */
#define HEAP_TRIM_RELEASE (128 * 1024)
/* The block whose free shrinks the heap: at least glibc's
 * FASTBIN_CONSOLIDATION_THRESHOLD (64 KiB), below which a free does not
 * look at the top; under the mmap threshold, so it is carved from the top. */
#define HEAP_PROBE (1024 * 1024)

static bool tuned;
static pthread_mutex_t release_lock = PTHREAD_MUTEX_INITIALIZER;

bool wsh_heap_tune(void) {
  const char *t = getenv("GLIBC_TUNABLES");
  if (t && (strstr(t, "malloc.mmap_threshold") ||
            strstr(t, "malloc.trim_threshold")))
    return false;
  if (!mallopt(M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD) ||
      !mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD))
    return false;
  tuned = true;
  return true;
}

bool wsh_heap_release(void) {
  if (!tuned)
    return false;
  pthread_mutex_lock(&release_lock);
  mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_RELEASE);
  /* volatile: the pair must not be folded away */
  void *volatile probe = malloc(HEAP_PROBE);
  free(probe);
  mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);
  malloc_trim(0); /* the free pages between live blocks */
  pthread_mutex_unlock(&release_lock);
  return true;
}
