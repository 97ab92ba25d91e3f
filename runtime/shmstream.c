/*
 * shmstream.c - the shared store: a stream over a named shared-memory
 * region, and ShmCreateStreamOnSharedMemory / ShmOpenStreamOnSharedMemory.
 *
 * The region:
 *
 *   0                128                   data_offset          data_offset + capacity
 *   | stream header  | zero (to the page)  | data ...            | page rounding |
 *   | (shstream.h)   |                     |                     |               |
 *
 * data_offset = sizeof(shmc_stream_hdr) rounded up to the page size, so
 * the data starts page-aligned. The creator writes the header before the
 * region gets its name (shmc_plat_region_create_init); an opener validates
 * it once (magic, kind, version, header size, state, owner, data offset
 * and capacity against its own mapping, size against capacity) and keeps
 * the geometry privately; the IStream code re-checks the header on every
 * operation (shstream.c).
 *
 * Name lifetime, the same on POSIX and Windows: the name lives until the
 * creating stream and its clones are all released, or the creating
 * process dies. Then ShmOpenStreamOnSharedMemory of that name fails with
 * SHM_E_NAME_NOT_FOUND, while streams opened before keep working on the
 * same bytes until they are released. Mechanism: the creator's last
 * Release sets the header's state to CLOSED (which openers check) and,
 * where names persist (POSIX), unlinks the name; an opener also checks
 * that the owner process lives, and shmc_reclaim_stale() removes names
 * that killed creators left behind.
 *
 * Not the same: re-creating a name. On POSIX the name is free again as
 * soon as the creator has released it (or died and been reclaimed); on
 * Windows only once every process has closed the old region, because a
 * file mapping's name lives as long as any handle on it.
 */
#include "shstream.h"

#include "alloc.h"

#include <string.h>

/* "anon-" + 32 hex digits: 128 bits from the OS's generator. */
#define ANON_PREFIX   "anon-"
#define ANON_RANDOM   16
#define ANON_ATTEMPTS 4
#define RANDOM_BYTES  (ANON_RANDOM + sizeof(uint64_t))

typedef struct shared_store {
    shmc_stream_store base;
    shmc_plat_region region;
    bool creator;  /* closes and removes the name at the end */
    bool borrowed; /* region.base is the caller's memory: never unmapped */
} shared_store;

static void shared_destroy(shmc_stream_store *s)
{
    shared_store *ss = (shared_store *)(void *)s;
    if (ss->creator) {
        /* openers check the state; where names persist, remove it too
         * (the name is ours while we live: nobody else unlinks it) */
        atomic_store_explicit(&s->hdr->region.state, SHMC_REGION_CLOSED, memory_order_release);
        if (shmc_plat_region_names_persist())
            shmc_plat_region_unlink(s->name);
    }
    if (!ss->borrowed)
        shmc_plat_region_close(&ss->region);
    shmc_free(ss);
}

static const shmc_stream_store_ops shared_ops = {NULL, shared_destroy};

static uint64_t data_offset_for_page(size_t page)
{
    return ((uint64_t)sizeof(shmc_stream_hdr) + page - 1) & ~((uint64_t)page - 1);
}

/* A store whose region is mapped and whose header checked out: the
 * geometry it validated becomes the private truth. */
static void store_bind(shared_store *ss, const char *name, uint64_t capacity, uint64_t data_offset)
{
    shmc_stream_store *s = &ss->base;
    s->hdr = ss->region.base;
    s->data = (unsigned char *)ss->region.base + data_offset;
    s->avail = (uint64_t)ss->region.size - data_offset;
    s->capacity = capacity;
    s->data_offset = data_offset;
    memcpy(s->name, name, strlen(name) + 1);
}

/* A store (refs 0, nothing mapped) and the first object over it. */
static HRESULT store_new(shared_store **out_store, IStream **out)
{
    *out_store = NULL;
    shared_store *ss = shmc_calloc(1, sizeof(*ss));
    if (!ss)
        return E_OUTOFMEMORY;
    ss->base.ops = &shared_ops;
    HRESULT hr = shmc_stream_new(&ss->base, 0, out);
    if (FAILED(hr)) {
        shmc_free(ss);
        return hr;
    }
    *out_store = ss;
    return S_OK;
}

typedef struct init_args {
    uint64_t capacity;
    uint64_t data_offset;
    uint64_t nonce;
    shmc_plat_procid owner;
} init_args;

static void init_region(void *base, size_t size, void *ctx)
{
    const init_args *a = ctx;
    (void)size;
    shmc_stream_hdr_init(base, a->capacity, a->data_offset, &a->owner, a->nonce);
}

static void anon_name(char *out, size_t size, const unsigned char *random)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(ANON_PREFIX);
    memcpy(out, ANON_PREFIX, n);
    for (size_t i = 0; i < ANON_RANDOM && n + 2 < size; i++) {
        out[n++] = hex[random[i] >> 4];
        out[n++] = hex[random[i] & 15];
    }
    out[n] = '\0';
}

HRESULT ShmCreateStreamOnSharedMemory(const char *name, ULONGLONG max_size, DWORD flags,
                                      IStream **ppstm)
{
    unsigned char random[RANDOM_BYTES];
    char anon[sizeof(ANON_PREFIX) + 2 * ANON_RANDOM];
    shared_store *ss;
    IStream *stream;
    init_args args;

    if (!ppstm)
        return E_INVALIDARG;
    *ppstm = NULL;
    if (flags != 0)
        return STG_E_INVALIDFLAG;
    if (name && FAILED(shmc_plat_region_name_check(name)))
        return E_INVALIDARG;
    size_t page = shmc_plat_page_size();
    args.data_offset = data_offset_for_page(page);
    /* the mapping (header + data, page-rounded) must be addressable */
    if (max_size == 0 || max_size > (ULONGLONG)INT64_MAX - args.data_offset - page ||
        max_size > (ULONGLONG)SIZE_MAX - args.data_offset - page)
        return E_INVALIDARG;
    args.capacity = max_size;
    size_t map_size = (size_t)(args.data_offset + max_size);

    HRESULT hr = store_new(&ss, &stream);
    if (FAILED(hr))
        return hr;
    hr = shmc_plat_random(random, sizeof(random));
    if (FAILED(hr))
        goto fail;
    memcpy(&args.nonce, random + ANON_RANDOM, sizeof(args.nonce));
    shmc_plat_proc_self(&args.owner);
    shmc_reclaim_maybe();

    if (name) {
        hr = shmc_plat_region_create_init(&ss->region, name, map_size, init_region, &args);
        /* a name that a dead creator left behind is free for the taking */
        if (hr == SHM_E_NAME_EXISTS && shmc_reclaim_name(name) == S_OK)
            hr = shmc_plat_region_create_init(&ss->region, name, map_size, init_region, &args);
    } else {
        hr = SHM_E_NAME_EXISTS;
        for (int i = 0; i < ANON_ATTEMPTS && hr == SHM_E_NAME_EXISTS; i++) {
            if (i > 0 && FAILED(hr = shmc_plat_random(random, ANON_RANDOM)))
                break;
            anon_name(anon, sizeof(anon), random);
            hr = shmc_plat_region_create_init(&ss->region, anon, map_size, init_region, &args);
        }
        name = anon;
    }
    if (FAILED(hr))
        goto fail;
    ss->creator = true;
    store_bind(ss, name, args.capacity, args.data_offset);
    *ppstm = stream;
    return S_OK;

fail:
    stream->lpVtbl->Release(stream); /* the store goes with it; no region yet */
    return hr;
}

/* Checks an opened region's header once; on S_OK the store is bound. */
static HRESULT validate_and_bind(shared_store *ss, const char *name)
{
    shmc_stream_hdr *h = ss->region.base;
    size_t mapped = ss->region.size;
    shmc_region_info info;

    HRESULT hr = shmc_region_hdr_read(&h->region, mapped, &info);
    if (FAILED(hr))
        return hr; /* magic 0: not published yet -> SHM_E_NAME_NOT_FOUND */
    if (info.kind != SHMC_REGION_KIND_STREAM || info.version != SHMC_STREAM_VERSION ||
        info.hdr_size != sizeof(shmc_stream_hdr))
        return STG_E_INVALIDHEADER;
    /* the name-lifetime rule: released by its creator, or the creator died */
    if (info.state != SHMC_REGION_LIVE || shmc_region_owner_dead(&info.owner))
        return SHM_E_NAME_NOT_FOUND;
    uint64_t capacity = atomic_load_explicit(&h->capacity, memory_order_relaxed);
    uint64_t data_offset = atomic_load_explicit(&h->data_offset, memory_order_relaxed);
    uint64_t size = atomic_load_explicit(&h->size, memory_order_acquire);
    uint64_t page = shmc_plat_page_size();
    if (data_offset < sizeof(shmc_stream_hdr) || data_offset % page != 0 || data_offset >= mapped)
        return STG_E_INVALIDHEADER;
    if (capacity == 0 || capacity > (uint64_t)mapped - data_offset ||
        capacity > (uint64_t)INT64_MAX || size > capacity)
        return STG_E_INVALIDHEADER;
    store_bind(ss, name, capacity, data_offset);
    return S_OK;
}

HRESULT ShmOpenStreamOnSharedMemory(const char *name, DWORD flags, IStream **ppstm)
{
    shared_store *ss;
    IStream *stream;

    if (!ppstm)
        return E_INVALIDARG;
    *ppstm = NULL;
    if (flags != 0)
        return STG_E_INVALIDFLAG;
    if (FAILED(shmc_plat_region_name_check(name)))
        return E_INVALIDARG;
    HRESULT hr = store_new(&ss, &stream);
    if (FAILED(hr))
        return hr;
    hr = shmc_plat_region_open(&ss->region, name);
    if (SUCCEEDED(hr))
        hr = validate_and_bind(ss, name);
    if (FAILED(hr)) {
        stream->lpVtbl->Release(stream); /* unmaps; an opener removes nothing */
        return hr;
    }
    *ppstm = stream;
    return S_OK;
}

HRESULT ShmGetStreamMemory(IStream *stream, void **data, ULONGLONG *capacity)
{
    if (data)
        *data = NULL;
    if (capacity)
        *capacity = 0;
    shmc_stream_store *s = shmc_stream_store_of(stream);
    if (!data || !s || s->ops != &shared_ops)
        return E_INVALIDARG;
    /* the private geometry validated at create/open: the mapping's length
     * never changes, whatever the header says now */
    *data = s->data;
    if (capacity)
        *capacity = s->capacity;
    return S_OK;
}

HRESULT shmc_stream_open_memory(void *base, size_t size, IStream **ppstm)
{
    shared_store *ss;
    IStream *stream;

    if (!ppstm)
        return E_INVALIDARG;
    *ppstm = NULL;
    if (!base)
        return E_INVALIDARG;
    HRESULT hr = store_new(&ss, &stream);
    if (FAILED(hr))
        return hr;
    /* what shmc_plat_region_open would have mapped, minus the name */
    ss->borrowed = true;
    ss->region.base = base;
    ss->region.size = size;
    hr = validate_and_bind(ss, "");
    if (FAILED(hr)) {
        stream->lpVtbl->Release(stream);
        return hr;
    }
    *ppstm = stream;
    return S_OK;
}
