/*
 * shstream.c - the IStream over a store (see shstream.h for the header
 * layout, the invariants and the rules for hostile memory).
 *
 * Semantics follow CreateStreamOnHGlobal's stream, checked against Wine's
 * conformance tests for it (dlls/ole32/tests/hglobalstream.c):
 *  - Read past the end succeeds with fewer bytes (0 at or past the end);
 *  - Write past the end grows the stream, the gap reading as zeros; a
 *    zero-byte Write changes nothing;
 *  - Seek before the start or with an unknown origin: STG_E_SEEKERROR, the
 *    pointer stays, and *plibNewPosition still receives it;
 *  - SetSize grows (zero-filled) or shrinks; seek pointers stay;
 *  - Stat: STGTY_STREAM, the size, the name unless STATFLAG_NONAME;
 *  - Clone: a new object with its own pointer, starting at ours;
 *  - Commit, Revert, UnlockRegion: S_OK; LockRegion: STG_E_INVALIDFUNCTION.
 * Where this stream differs on purpose: positions and sizes are 64-bit
 * (the HGLOBAL stream drops the high 32 bits of a move or a size), and a
 * size past the capacity gives STG_E_MEDIUMFULL, writing nothing.
 */
#include "shstream.h"

#include "alloc.h"

#include <string.h>

/* A peer that keeps changing the size word can make a CAS fail forever;
 * honest writers cannot come near this many failures in a row. */
#define CAS_LIMIT (1u << 20)

/* CopyTo moves data through a buffer of this size on the stack: the source
 * and destination may be the same bytes (one store, or two mappings of one
 * region), where a direct copy would be undefined. */
#define COPY_CHUNK 8192u

typedef struct shmc_stream {
    IStream IStream_iface;
    _Atomic uint32_t ref;
    uint64_t pos; /* this object's seek pointer, <= INT64_MAX */
    shmc_stream_store *store;
} shmc_stream;

static const IStreamVtbl stream_vtbl;

static inline shmc_stream *impl_from_IStream(IStream *iface)
{
    return (shmc_stream *)(void *)((char *)iface - offsetof(shmc_stream, IStream_iface));
}

void shmc_stream_hdr_init(shmc_stream_hdr *h, uint64_t capacity, uint64_t data_offset,
                          const shmc_plat_procid *owner, uint64_t nonce)
{
    atomic_store_explicit(&h->capacity, capacity, memory_order_relaxed);
    atomic_store_explicit(&h->data_offset, data_offset, memory_order_relaxed);
    atomic_store_explicit(&h->size, 0, memory_order_relaxed);
    memset(h->reserved, 0, sizeof(h->reserved));
    /* magic last, with release */
    shmc_region_hdr_init(&h->region, SHMC_REGION_KIND_STREAM, SHMC_STREAM_VERSION,
                         (uint32_t)sizeof(*h), owner, nonce);
}

static inline bool size_ok(const shmc_stream_store *s, uint64_t size)
{
    return size <= s->capacity && size <= s->avail;
}

/*
 * Loads the header once: the geometry must be what was validated when the
 * store was set up, and the size within it. Only the local *size is used
 * afterwards. Acquire on the size pairs with the release of the writer
 * that raised it, so the bytes below it are visible.
 */
static HRESULT snapshot(const shmc_stream_store *s, uint64_t *size)
{
    shmc_stream_hdr *h = s->hdr;
    uint64_t magic = atomic_load_explicit(&h->region.magic, memory_order_relaxed);
    uint32_t kind = atomic_load_explicit(&h->region.kind, memory_order_relaxed);
    uint32_t version = atomic_load_explicit(&h->region.version, memory_order_relaxed);
    uint32_t hdr_size = atomic_load_explicit(&h->region.hdr_size, memory_order_relaxed);
    uint64_t capacity = atomic_load_explicit(&h->capacity, memory_order_relaxed);
    uint64_t data_offset = atomic_load_explicit(&h->data_offset, memory_order_relaxed);
    uint64_t sz = atomic_load_explicit(&h->size, memory_order_acquire);
    if (magic != SHMC_REGION_MAGIC || kind != SHMC_REGION_KIND_STREAM ||
        version != SHMC_STREAM_VERSION || hdr_size != sizeof(shmc_stream_hdr) ||
        capacity != s->capacity || data_offset != s->data_offset || !size_ok(s, sz))
        return STG_E_INVALIDHEADER;
    *size = sz;
    return S_OK;
}

/* Raises the shared size to at least `end` (a CAS max), from `seen`. */
static HRESULT raise_size(shmc_stream_store *s, uint64_t seen, uint64_t end)
{
    uint64_t cur = seen;
    for (unsigned tries = 0; tries < CAS_LIMIT; tries++) {
        if (!size_ok(s, cur))
            return STG_E_INVALIDHEADER;
        if (cur >= end)
            return S_OK; /* someone wrote further already */
        if (atomic_compare_exchange_weak_explicit(&s->hdr->size, &cur, end, memory_order_release,
                                                  memory_order_relaxed))
            return S_OK;
    }
    return STG_E_INVALIDHEADER;
}

static HRESULT ensure_addressable(shmc_stream_store *s, uint64_t end)
{
    if (end <= s->avail)
        return S_OK;
    if (!s->ops->reserve)
        return E_UNEXPECTED; /* a mapped store has its capacity mapped */
    return s->ops->reserve(s, end);
}

static void store_release(shmc_stream_store *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        s->ops->destroy(s);
}

/* ---- IUnknown ----------------------------------------------------------- */

static HRESULT STDMETHODCALLTYPE stream_QueryInterface(IStream *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    *ppv = NULL;
    if (!riid)
        return E_INVALIDARG;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ISequentialStream) ||
        IsEqualIID(riid, &IID_IStream)) {
        *ppv = iface;
        iface->lpVtbl->AddRef(iface);
        return S_OK;
    }
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE stream_AddRef(IStream *iface)
{
    shmc_stream *This = impl_from_IStream(iface);
    return atomic_fetch_add_explicit(&This->ref, 1, memory_order_relaxed) + 1;
}

static ULONG STDMETHODCALLTYPE stream_Release(IStream *iface)
{
    shmc_stream *This = impl_from_IStream(iface);
    uint32_t ref = atomic_fetch_sub_explicit(&This->ref, 1, memory_order_acq_rel) - 1;
    if (ref == 0) {
        store_release(This->store);
        shmc_free(This);
    }
    return ref;
}

/* ---- ISequentialStream -------------------------------------------------- */

static HRESULT STDMETHODCALLTYPE stream_Read(IStream *iface, void *pv, ULONG cb, ULONG *pcbRead)
{
    shmc_stream *This = impl_from_IStream(iface);
    shmc_stream_store *s = This->store;
    uint64_t size, n = 0;

    if (pcbRead)
        *pcbRead = 0;
    if (!pv && cb)
        return STG_E_INVALIDPOINTER;
    HRESULT hr = snapshot(s, &size);
    if (FAILED(hr))
        return hr;
    if (This->pos < size && cb > 0) {
        n = size - This->pos;
        if (n > cb)
            n = cb;
        /* pos + n <= size <= min(capacity, avail): inside the store */
        memcpy(pv, s->data + This->pos, (size_t)n);
        This->pos += n;
    }
    if (pcbRead)
        *pcbRead = (ULONG)n;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE stream_Write(IStream *iface, const void *pv, ULONG cb,
                                              ULONG *pcbWritten)
{
    shmc_stream *This = impl_from_IStream(iface);
    shmc_stream_store *s = This->store;
    uint64_t size;

    if (pcbWritten)
        *pcbWritten = 0;
    if (!pv && cb)
        return STG_E_INVALIDPOINTER;
    HRESULT hr = snapshot(s, &size);
    if (FAILED(hr) || cb == 0)
        return hr;
    uint64_t end = This->pos + cb; /* pos <= INT64_MAX: no overflow */
    if (end > s->capacity)
        return STG_E_MEDIUMFULL; /* all or nothing */
    hr = ensure_addressable(s, end);
    if (FAILED(hr))
        return hr;
    memcpy(s->data + This->pos, pv, cb);
    if (end > size)
        hr = raise_size(s, size, end);
    /* the bytes are in place even if the size word was found corrupt */
    This->pos = end;
    if (pcbWritten)
        *pcbWritten = cb;
    return hr;
}

/* ---- IStream ------------------------------------------------------------ */

static HRESULT STDMETHODCALLTYPE stream_Seek(IStream *iface, LARGE_INTEGER dlibMove, DWORD dwOrigin,
                                             ULARGE_INTEGER *plibNewPosition)
{
    shmc_stream *This = impl_from_IStream(iface);
    HRESULT hr = S_OK;
    uint64_t base = 0, target;
    int64_t move = dlibMove.QuadPart;

    switch (dwOrigin) {
    case STREAM_SEEK_SET:
        break;
    case STREAM_SEEK_CUR:
        base = This->pos;
        break;
    case STREAM_SEEK_END:
        hr = snapshot(This->store, &base);
        break;
    default:
        hr = STG_E_SEEKERROR;
        break;
    }
    if (FAILED(hr))
        goto out;
    /* base <= INT64_MAX (a position, or a size <= capacity <= INT64_MAX);
     * the target must be in [0, INT64_MAX] */
    if (move < 0) {
        uint64_t back = (uint64_t)(-(move + 1)) + 1u;
        if (back > base) {
            hr = STG_E_SEEKERROR;
            goto out;
        }
        target = base - back;
    } else {
        if ((uint64_t)move > (uint64_t)INT64_MAX - base) {
            hr = STG_E_SEEKERROR;
            goto out;
        }
        target = base + (uint64_t)move;
    }
    This->pos = target;
out:
    if (plibNewPosition)
        plibNewPosition->QuadPart = This->pos;
    return hr;
}

static HRESULT STDMETHODCALLTYPE stream_SetSize(IStream *iface, ULARGE_INTEGER libNewSize)
{
    shmc_stream *This = impl_from_IStream(iface);
    shmc_stream_store *s = This->store;
    uint64_t want = libNewSize.QuadPart, cur;

    HRESULT hr = snapshot(s, &cur);
    if (FAILED(hr))
        return hr;
    if (want > s->capacity)
        return STG_E_MEDIUMFULL;
    hr = ensure_addressable(s, want);
    if (FAILED(hr))
        return hr;
    for (unsigned tries = 0; tries < CAS_LIMIT; tries++) {
        if (!size_ok(s, cur))
            return STG_E_INVALIDHEADER;
        if (want < cur)
            memset(s->data + want, 0, (size_t)(cur - want)); /* keep the tail zero */
        if (atomic_compare_exchange_weak_explicit(&s->hdr->size, &cur, want, memory_order_release,
                                                  memory_order_relaxed))
            return S_OK;
    }
    return STG_E_INVALIDHEADER;
}

static HRESULT STDMETHODCALLTYPE stream_CopyTo(IStream *iface, IStream *pstm, ULARGE_INTEGER cb,
                                               ULARGE_INTEGER *pcbRead, ULARGE_INTEGER *pcbWritten)
{
    unsigned char buf[COPY_CHUNK];
    uint64_t left = cb.QuadPart, total_read = 0, total_written = 0;
    HRESULT hr = S_OK;

    if (pcbRead)
        pcbRead->QuadPart = 0;
    if (pcbWritten)
        pcbWritten->QuadPart = 0;
    if (!pstm)
        return STG_E_INVALIDPOINTER;
    while (left > 0) {
        ULONG want = left < COPY_CHUNK ? (ULONG)left : COPY_CHUNK, got = 0, put = 0;
        hr = stream_Read(iface, buf, want, &got);
        if (FAILED(hr) || got == 0)
            break;
        total_read += got;
        hr = pstm->lpVtbl->Write(pstm, buf, got, &put);
        total_written += put < got ? put : got; /* never believe more than asked */
        if (FAILED(hr) || got < want)
            break;
        left -= got;
    }
    if (pcbRead)
        pcbRead->QuadPart = total_read;
    if (pcbWritten)
        pcbWritten->QuadPart = total_written;
    return hr;
}

static HRESULT STDMETHODCALLTYPE stream_Commit(IStream *iface, DWORD grfCommitFlags)
{
    (void)iface;
    (void)grfCommitFlags;
    return S_OK; /* direct mode: nothing is buffered */
}

static HRESULT STDMETHODCALLTYPE stream_Revert(IStream *iface)
{
    (void)iface;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE stream_LockRegion(IStream *iface, ULARGE_INTEGER libOffset,
                                                   ULARGE_INTEGER cb, DWORD dwLockType)
{
    (void)iface;
    (void)libOffset;
    (void)cb;
    (void)dwLockType;
    return STG_E_INVALIDFUNCTION;
}

static HRESULT STDMETHODCALLTYPE stream_UnlockRegion(IStream *iface, ULARGE_INTEGER libOffset,
                                                     ULARGE_INTEGER cb, DWORD dwLockType)
{
    (void)iface;
    (void)libOffset;
    (void)cb;
    (void)dwLockType;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE stream_Stat(IStream *iface, STATSTG *pstatstg, DWORD grfStatFlag)
{
    shmc_stream *This = impl_from_IStream(iface);
    shmc_stream_store *s = This->store;
    uint64_t size;

    if (!pstatstg)
        return STG_E_INVALIDPOINTER;
    memset(pstatstg, 0, sizeof(*pstatstg));
    if (grfStatFlag & ~(DWORD)(STATFLAG_NONAME | STATFLAG_NOOPEN))
        return STG_E_INVALIDFLAG;
    HRESULT hr = snapshot(s, &size);
    if (FAILED(hr))
        return hr;
    if (!(grfStatFlag & STATFLAG_NONAME) && s->name[0]) {
        size_t len = strlen(s->name);
        OLECHAR *w = ShmCoTaskMemAlloc((len + 1) * sizeof(OLECHAR));
        if (!w)
            return STG_E_INSUFFICIENTMEMORY;
        for (size_t i = 0; i <= len; i++)
            w[i] = (OLECHAR)(unsigned char)s->name[i]; /* names are ASCII */
        pstatstg->pwcsName = w;
    }
    pstatstg->type = STGTY_STREAM;
    pstatstg->cbSize.QuadPart = size;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE stream_Clone(IStream *iface, IStream **ppstm)
{
    shmc_stream *This = impl_from_IStream(iface);
    if (!ppstm)
        return STG_E_INVALIDPOINTER;
    return shmc_stream_new(This->store, This->pos, ppstm);
}

static const IStreamVtbl stream_vtbl = {
    stream_QueryInterface, stream_AddRef,       stream_Release, stream_Read,   stream_Write,
    stream_Seek,           stream_SetSize,      stream_CopyTo,  stream_Commit, stream_Revert,
    stream_LockRegion,     stream_UnlockRegion, stream_Stat,    stream_Clone,
};

/* ---- internal API ------------------------------------------------------- */

HRESULT shmc_stream_new(shmc_stream_store *store, uint64_t pos, IStream **out)
{
    *out = NULL;
    shmc_stream *o = shmc_malloc(sizeof(*o));
    if (!o)
        return E_OUTOFMEMORY;
    o->IStream_iface.lpVtbl = &stream_vtbl;
    atomic_init(&o->ref, 1);
    o->pos = pos;
    o->store = store;
    atomic_fetch_add_explicit(&store->refs, 1, memory_order_relaxed);
    *out = &o->IStream_iface;
    return S_OK;
}

shmc_stream_store *shmc_stream_store_of(IStream *stream)
{
    if (!stream || stream->lpVtbl != &stream_vtbl)
        return NULL;
    return impl_from_IStream(stream)->store;
}
