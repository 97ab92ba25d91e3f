/*
 * alloc.c - the runtime's allocator (the C library's) with a fault hook,
 * and the public task allocator ShmCoTaskMemAlloc/ShmCoTaskMemFree.
 */
#include "alloc.h"

#include "shmcom/shmcom.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static _Atomic unsigned long alloc_count;   /* allocations since the hook was set */
static _Atomic unsigned long alloc_fail_at; /* 0: never fail */
static _Atomic unsigned long alloc_hits;    /* allocations failed since then */

static int should_fail(void)
{
    unsigned long at = atomic_load_explicit(&alloc_fail_at, memory_order_relaxed);
    unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
    if (at == 0 || n < at)
        return 0;
    atomic_fetch_add_explicit(&alloc_hits, 1, memory_order_relaxed);
    return 1;
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

/* The allocation's own address sits in the word before the aligned block. */
static void *alloc_lines(size_t size, int zero)
{
    if (size > SIZE_MAX - SHMC_LINE - sizeof(void *))
        return NULL;
    size_t n = size + SHMC_LINE + sizeof(void *);
    unsigned char *raw = zero ? shmc_calloc(1, n) : shmc_malloc(n);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + sizeof(void *) + SHMC_LINE - 1) & ~(uintptr_t)(SHMC_LINE - 1);
    unsigned char *p = raw + (a - (uintptr_t)raw);
    memcpy(p - sizeof(void *), &raw, sizeof(raw));
    return p;
}

void *shmc_malloc_lines(size_t size)
{
    return alloc_lines(size, 0);
}

void *shmc_calloc_lines(size_t size)
{
    return alloc_lines(size, 1);
}

void shmc_free_lines(void *p)
{
    if (!p)
        return;
    void *raw;
    memcpy(&raw, (unsigned char *)p - sizeof(void *), sizeof(raw));
    shmc_free(raw);
}

unsigned long shmc_alloc_fail_at(unsigned long n)
{
    atomic_store(&alloc_fail_at, 0);
    unsigned long counted = atomic_exchange(&alloc_count, 0);
    atomic_store(&alloc_hits, 0);
    atomic_store(&alloc_fail_at, n);
    return counted;
}

void shmc_alloc_fail_reset(void)
{
    atomic_store(&alloc_fail_at, 0);
    atomic_store(&alloc_count, 0);
}

unsigned long shmc_alloc_fail_hits(void)
{
    return atomic_load(&alloc_hits);
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
