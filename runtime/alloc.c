/*
 * alloc.c - the runtime's allocator (the C library's) with a fault hook,
 * and the public task allocator ShmCoTaskMemAlloc/ShmCoTaskMemFree.
 */
#include "alloc.h"

#include "shmcom/shmcom.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic unsigned long alloc_count;   /* allocations since the hook was set */
static _Atomic unsigned long alloc_fail_at; /* 0: never fail */

static int should_fail(void)
{
    unsigned long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    return at != 0 && n >= at;
}

void *shmc_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *shmc_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *shmc_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void shmc_free(void *p)
{
    free(p);
}

unsigned long shmc_alloc_fail_at(unsigned long n)
{
    unsigned long counted = atomic_exchange(&alloc_count, 0);
    atomic_store(&alloc_fail_at, n);
    return counted;
}

void shmc_alloc_fail_reset(void)
{
    atomic_store(&alloc_fail_at, 0);
    atomic_store(&alloc_count, 0);
}

/* On Windows the task allocator is COM's own, so memory that shmcom hands
 * out can be freed with CoTaskMemFree and the other way round. */
void *ShmCoTaskMemAlloc(SIZE_T size)
{
    if (should_fail())
        return NULL;
#ifdef _WIN32
    return CoTaskMemAlloc(size);
#else
    return malloc(size ? size : 1);
#endif
}

void ShmCoTaskMemFree(void *p)
{
#ifdef _WIN32
    CoTaskMemFree(p);
#else
    free(p);
#endif
}
