/*
 * heap.h - how the host uses glibc's malloc: big blocks kept on the heap
 * while big messages flow, and the heap's free top given back once a worker
 * has gone quiet.
 */
#ifndef WSH_BASE_HEAP_H
#define WSH_BASE_HEAP_H

#include <stdbool.h>

/* Sets malloc to keep blocks up to 32 MiB on the heap and to give a heap's
 * free top back to the kernel only beyond 64 MiB, so that big messages do
 * not fault their pages in again for every echo; unless GLIBC_TUNABLES
 * sets a malloc threshold, in which case malloc is left as set there.
 * Returns whether it set them. Called once, before any thread starts. */
bool wsh_heap_tune(void);

/* Gives the free top of the calling thread's heap back to the kernel, as
 * glibc would have done at its last free with its default thresholds, and
 * then every arena's free pages between live blocks (malloc_trim): for a
 * worker that has gone quiet after big messages, which would otherwise keep
 * up to 64 MiB. Only after wsh_heap_tune() set the thresholds (returns false
 * otherwise: glibc's rules, or the operator's, apply). Any thread; calls are
 * serialized (the threshold is global and lowered for the moment of one free).
 */
bool wsh_heap_release(void);

#endif
