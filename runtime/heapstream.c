/*
 * heapstream.c - the heap store: a stream in private memory that grows on
 * demand, as CreateStreamOnHGlobal's. The header lives in the store itself
 * (nobody else can write it), so the IStream code is the same as for a
 * shared region; data is a separate block that reserve() reallocates,
 * doubling, and clears beyond the old end so that the tail stays zero.
 */
#include "shstream.h"

#include "alloc.h"

#include <string.h>

/* The largest size a heap stream may reach: what a size_t can address,
 * and never past INT64_MAX (positions are signed 64-bit in Seek). */
#define HEAP_CAPACITY \
    ((uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (uint64_t)SIZE_MAX : (uint64_t)INT64_MAX)

/* First allocation when nothing was reserved. */
#define HEAP_MIN_ALLOC 256u

typedef struct heap_store {
    shmc_stream_store base;
    shmc_stream_hdr hdr;
} heap_store;

static HRESULT heap_reserve(shmc_stream_store *s, uint64_t need)
{
    if (need > s->capacity)
        return E_OUTOFMEMORY;
    uint64_t n = s->avail ? s->avail : HEAP_MIN_ALLOC;
    while (n < need)
        n = n > s->capacity / 2 ? need : n * 2;
    unsigned char *p = shmc_realloc(s->data, (size_t)n);
    if (!p && n > need) { /* doubling was too greedy; try what is needed */
        n = need;
        p = shmc_realloc(s->data, (size_t)n);
    }
    if (!p)
        return E_OUTOFMEMORY;
    memset(p + s->avail, 0, (size_t)(n - s->avail));
    s->data = p;
    s->avail = n;
    return S_OK;
}

static void heap_destroy(shmc_stream_store *s)
{
    heap_store *h = (heap_store *)(void *)s;
    shmc_free(s->data);
    shmc_free(h);
}

static const shmc_stream_store_ops heap_ops = {heap_reserve, heap_destroy};

HRESULT shmc_stream_create_heap(size_t reserve, IStream **out)
{
    if (!out)
        return E_INVALIDARG;
    *out = NULL;
    heap_store *h = shmc_calloc(1, sizeof(*h));
    if (!h)
        return E_OUTOFMEMORY;
    shmc_stream_store *s = &h->base;
    s->ops = &heap_ops;
    s->hdr = &h->hdr;
    s->capacity = HEAP_CAPACITY;
    s->data_offset = 0;
    /* private memory: no owner to record (and asking the OS who we are
     * would cost more than the rest of this function) */
    static const shmc_plat_procid nobody = {0, 0};
    shmc_stream_hdr_init(&h->hdr, HEAP_CAPACITY, 0, &nobody, 0);
    HRESULT hr = reserve ? heap_reserve(s, reserve) : S_OK;
    if (SUCCEEDED(hr))
        hr = shmc_stream_new(s, 0, out);
    if (FAILED(hr))
        heap_destroy(s);
    return hr;
}
