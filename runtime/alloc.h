/*
 * alloc.h - every heap allocation of the runtime goes through here, so
 * that tests can make the n-th one fail (fault injection) and check that
 * the failure is reported cleanly and nothing leaks.
 */
#ifndef SHMCOM_RUNTIME_ALLOC_H
#define SHMCOM_RUNTIME_ALLOC_H

#include <stddef.h>

void *shmc_malloc(size_t n);
void *shmc_calloc(size_t count, size_t size);
void *shmc_realloc(void *p, size_t n);
void shmc_free(void *p);

/* Memory that starts on a cache line (SHMC_LINE bytes), for objects whose
 * fields are grouped by line (_Alignas(SHMC_LINE)) because two threads
 * write them; zeroed or not. Freed with shmc_free_lines. */
#define SHMC_LINE 64
void *shmc_malloc_lines(size_t size);
void *shmc_calloc_lines(size_t size);
void shmc_free_lines(void *p);

/*
 * Test hook: the n-th allocation from now (1-based) and every later one
 * fail, until shmc_alloc_fail_reset(). n == 0 clears it. Returns the number
 * of allocations counted since the last call, so a test can first count
 * the allocations of a path and then fail each one in turn.
 * Process-wide: allocations of every thread count (a call's callee side
 * too), so a test sets it while only the threads it means to fail run.
 * Every allocation of the runtime goes through it: shmc_malloc and the
 * rest, ShmCoTaskMemAlloc, the platform layer's own (thread start-up).
 */
unsigned long shmc_alloc_fail_at(unsigned long n);
void shmc_alloc_fail_reset(void);
/* How many allocations the hook has failed since it was last set: 0 after
 * an operation means it completed without reaching the n-th allocation,
 * so a test that fails n = 1, 2, ... in turn knows when to stop. */
unsigned long shmc_alloc_fail_hits(void);

#endif /* SHMCOM_RUNTIME_ALLOC_H */
