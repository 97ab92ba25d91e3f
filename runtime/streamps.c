/*
 * streamps.c - the proxies and stubs of ISequentialStream and IStream,
 * built into the runtime (COM has them in ole32): shmidl accepts both as
 * interface pointers ([in] IStream *, [out] ISequentialStream **, LPSTREAM)
 * but cannot generate them (it knows their IIDs, not their methods), and
 * without them a stream could not be passed to another apartment or
 * process. shmc_registry_find falls back on them.
 *
 * They are tables for the one proxy/stub engine (psengine.c), written by
 * hand where shmidl would generate them, with frames laid out as shmidl
 * would lay out these wire methods:
 *
 *   Read([out, size_is(cb)] BYTE *pv, [in] ULONG cb, [out] ULONG *pcbRead)
 *   Write([in, size_is(cb)] const BYTE *pv, [in] ULONG cb, [out] ULONG *pcbWritten)
 *   Seek([in] LARGE_INTEGER move, [in] DWORD origin, [out] ULARGE_INTEGER *pos)
 *   SetSize([in] ULARGE_INTEGER size)
 *   CopyTo([in] IStream *dst, [in] ULARGE_INTEGER cb, [out] ULARGE_INTEGER *pcbRead,
 *          [out] ULARGE_INTEGER *pcbWritten)
 *   Commit([in] DWORD flags)
 *   Revert()
 *   LockRegion / UnlockRegion([in] ULARGE_INTEGER offset, [in] ULARGE_INTEGER cb,
 *                             [in] DWORD type)
 *   Stat([out] stat_wire *st, [in] DWORD flags, [out, string] LPOLESTR *name)
 *   Clone([out] IStream **ppstm)
 *
 * What COM's signatures have and the engine has not, the proxy's methods
 * (the thunks below) make up for: the counts and positions that COM lets a
 * caller pass NULL for travel anyway and are dropped here; a NULL buffer is
 * STG_E_INVALIDPOINTER (as shmcom's streams answer), a NULL one of 0
 * bytes is fine; STATSTG, whose name is a pointer, travels as its other
 * fields plus the name as an [out] string (the stub frees the callee's,
 * the caller gets its own, from ShmCoTaskMemAlloc); Read and Write of more
 * than STREAM_CHUNK bytes go as several calls (a frame holds at most
 * 256 MiB), stopping at the first short count or failure; a count above
 * what was asked for is a lying peer's (RPC_E_INVALID_DATA).
 */
#include "rt.h"

#include <stddef.h>
#include <string.h>

#define STREAM_CHUNK (64u << 20)

static ULONG chunk_size(void)
{
    uint32_t n = atomic_load_explicit(&shmc_tune.stream_chunk, memory_order_relaxed);
    return n ? n : STREAM_CHUNK;
}

/* Slots of the two vtables. */
enum {
    SLOT_READ = 3,
    SLOT_WRITE,
    SLOT_SEEK,
    SLOT_SETSIZE,
    SLOT_COPYTO,
    SLOT_COMMIT,
    SLOT_REVERT,
    SLOT_LOCKREGION,
    SLOT_UNLOCKREGION,
    SLOT_STAT,
    SLOT_CLONE,
    SEQ_NMETHODS = SLOT_WRITE + 1,
    STM_NMETHODS = SLOT_CLONE + 1
};

/* STATSTG without its name: fixed widths, no pointer. */
typedef struct stat_wire {
    uint64_t size;
    uint32_t mtime[2], ctime[2], atime[2];
    uint32_t type, mode, locks;
    GUID clsid;
    uint32_t state_bits, reserved, pad;
} stat_wire;

_Static_assert(sizeof(stat_wire) == 72, "stat_wire layout");
_Static_assert(offsetof(stat_wire, clsid) == 44, "stat_wire layout");

static void stat_to_wire(stat_wire *w, const STATSTG *st)
{
    memset(w, 0, sizeof(*w));
    w->size = st->cbSize.QuadPart;
    w->mtime[0] = st->mtime.dwLowDateTime;
    w->mtime[1] = st->mtime.dwHighDateTime;
    w->ctime[0] = st->ctime.dwLowDateTime;
    w->ctime[1] = st->ctime.dwHighDateTime;
    w->atime[0] = st->atime.dwLowDateTime;
    w->atime[1] = st->atime.dwHighDateTime;
    w->type = st->type;
    w->mode = st->grfMode;
    w->locks = st->grfLocksSupported;
    w->clsid = st->clsid;
    w->state_bits = st->grfStateBits;
    w->reserved = st->reserved;
}

static void stat_from_wire(STATSTG *st, const stat_wire *w)
{
    memset(st, 0, sizeof(*st));
    st->cbSize.QuadPart = w->size;
    st->mtime.dwLowDateTime = w->mtime[0];
    st->mtime.dwHighDateTime = w->mtime[1];
    st->ctime.dwLowDateTime = w->ctime[0];
    st->ctime.dwHighDateTime = w->ctime[1];
    st->atime.dwLowDateTime = w->atime[0];
    st->atime.dwHighDateTime = w->atime[1];
    st->type = w->type;
    st->grfMode = w->mode;
    st->grfLocksSupported = w->locks;
    st->clsid = w->clsid;
    st->grfStateBits = w->state_bits;
    st->reserved = w->reserved;
}

/* ---- the stubs' calls (args[i] as psengine.c passes them) ------------------------- */

static HRESULT Read_Call(void *itf, void **args)
{
    ISequentialStream *This = itf; /* (an IStream starts with these slots) */
    return This->lpVtbl->Read(This, *(void **)args[0], *(ULONG *)args[1],
                              (ULONG *)*(void **)args[2]);
}

static HRESULT Write_Call(void *itf, void **args)
{
    ISequentialStream *This = itf;
    return This->lpVtbl->Write(This, *(const void **)args[0], *(ULONG *)args[1],
                               (ULONG *)*(void **)args[2]);
}

static HRESULT Seek_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->Seek(This, *(LARGE_INTEGER *)args[0], *(DWORD *)args[1],
                              (ULARGE_INTEGER *)*(void **)args[2]);
}

static HRESULT SetSize_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->SetSize(This, *(ULARGE_INTEGER *)args[0]);
}

static HRESULT CopyTo_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->CopyTo(This, (IStream *)*(void **)args[0], *(ULARGE_INTEGER *)args[1],
                                (ULARGE_INTEGER *)*(void **)args[2],
                                (ULARGE_INTEGER *)*(void **)args[3]);
}

static HRESULT Commit_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->Commit(This, *(DWORD *)args[0]);
}

static HRESULT Revert_Call(void *itf, void **args)
{
    IStream *This = itf;
    (void)args;
    return This->lpVtbl->Revert(This);
}

static HRESULT LockRegion_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->LockRegion(This, *(ULARGE_INTEGER *)args[0], *(ULARGE_INTEGER *)args[1],
                                    *(DWORD *)args[2]);
}

static HRESULT UnlockRegion_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->UnlockRegion(This, *(ULARGE_INTEGER *)args[0], *(ULARGE_INTEGER *)args[1],
                                      *(DWORD *)args[2]);
}

static HRESULT Stat_Call(void *itf, void **args)
{
    IStream *This = itf;
    STATSTG st;
    memset(&st, 0, sizeof(st));
    HRESULT hr = This->lpVtbl->Stat(This, &st, *(DWORD *)args[1]);
    stat_to_wire(*(stat_wire **)args[0], &st);
    /* the stub frees it after copying it, or at once if the call failed */
    **(LPOLESTR **)args[2] = st.pwcsName;
    return hr;
}

static HRESULT Clone_Call(void *itf, void **args)
{
    IStream *This = itf;
    return This->lpVtbl->Clone(This, (IStream **)*(void **)args[0]);
}

/* ---- the tables ---------------------------------------------------------------------- */

/* {kind, flags, size_param, iid_param, reserved, elem_size, elem_align, count, in_offset,
 *  out_offset, iid} */
static const ShmParam Read_Params[] = {
    {SHM_PK_ARRAY, SHM_PF_OUT, 2, 0, 0, 1, 1, 1, SHM_NO_SLOT, 4, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 0, SHM_NO_SLOT, NULL},
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, 4, 4, 1, SHM_NO_SLOT, 12, NULL},
};
static const ShmParam Write_Params[] = {
    {SHM_PK_ARRAY, SHM_PF_IN, 2, 0, 0, 1, 1, 1, 0, SHM_NO_SLOT, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 8, SHM_NO_SLOT, NULL},
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, 4, 4, 1, SHM_NO_SLOT, 4, NULL},
};
static const ShmParam Seek_Params[] = {
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 8, 8, 1, 0, SHM_NO_SLOT, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 8, SHM_NO_SLOT, NULL},
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, 8, 8, 1, SHM_NO_SLOT, 8, NULL},
};
static const ShmParam SetSize_Params[] = {
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 8, 8, 1, 0, SHM_NO_SLOT, NULL},
};
static const ShmParam CopyTo_Params[] = {
    {SHM_PK_INTERFACE, SHM_PF_IN, 0, 0, 0, 0, 0, 1, 0, SHM_NO_SLOT, &IID_IStream},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 8, 8, 1, 8, SHM_NO_SLOT, NULL},
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, 8, 8, 1, SHM_NO_SLOT, 8, NULL},
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, 8, 8, 1, SHM_NO_SLOT, 16, NULL},
};
static const ShmParam Commit_Params[] = {
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 0, SHM_NO_SLOT, NULL},
};
static const ShmParam Region_Params[] = {
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 8, 8, 1, 0, SHM_NO_SLOT, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 8, 8, 1, 8, SHM_NO_SLOT, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 16, SHM_NO_SLOT, NULL},
};
static const ShmParam Stat_Params[] = {
    {SHM_PK_REF, SHM_PF_OUT, 0, 0, 0, sizeof(stat_wire), 8, 1, SHM_NO_SLOT, 8, NULL},
    {SHM_PK_VALUE, SHM_PF_IN, 0, 0, 0, 4, 4, 1, 0, SHM_NO_SLOT, NULL},
    {SHM_PK_STRING, SHM_PF_OUT, 0, 0, 0, 2, 2, 1, SHM_NO_SLOT, 8 + sizeof(stat_wire), NULL},
};
static const ShmParam Clone_Params[] = {
    {SHM_PK_INTERFACE, SHM_PF_OUT, 0, 0, 0, 0, 0, 1, SHM_NO_SLOT, 4, &IID_IStream},
};

#define UNKNOWN_SLOTS                                         \
    {NULL, NULL, 0, 0, 0, NULL}, {NULL, NULL, 0, 0, 0, NULL}, \
    {                                                         \
        NULL, NULL, 0, 0, 0, NULL                             \
    }
#define SEQ_METHODS                                 \
    {"Read", Read_Params, 3, 4, 16, Read_Call},     \
    {                                               \
        "Write", Write_Params, 3, 12, 8, Write_Call \
    }

static const ShmMethod seq_methods[SEQ_NMETHODS] = {UNKNOWN_SLOTS, SEQ_METHODS};

static const ShmMethod stm_methods[STM_NMETHODS] = {
    UNKNOWN_SLOTS,
    SEQ_METHODS,
    {"Seek", Seek_Params, 3, 12, 16, Seek_Call},
    {"SetSize", SetSize_Params, 1, 8, 4, SetSize_Call},
    {"CopyTo", CopyTo_Params, 4, 16, 24, CopyTo_Call},
    {"Commit", Commit_Params, 1, 4, 4, Commit_Call},
    {"Revert", NULL, 0, 0, 4, Revert_Call},
    {"LockRegion", Region_Params, 3, 20, 4, LockRegion_Call},
    {"UnlockRegion", Region_Params, 3, 20, 4, UnlockRegion_Call},
    {"Stat", Stat_Params, 3, 4, 16 + sizeof(stat_wire), Stat_Call},
    {"Clone", Clone_Params, 1, 0, 12, Clone_Call},
};

/* ---- the proxies' methods -------------------------------------------------------------- */

static HRESULT proxy_read(void *This, void *pv, ULONG cb, ULONG *pcbRead)
{
    if (pcbRead)
        *pcbRead = 0;
    if (!pv && cb)
        return STG_E_INVALIDPOINTER;
    unsigned char none;
    unsigned char *dst = pv ? pv : &none;
    ULONG total = 0, chunk = chunk_size();
    HRESULT hr;
    do {
        ULONG n = cb - total > chunk ? chunk : cb - total, got = 0;
        unsigned char *at = dst + total;
        ULONG *pgot = &got;
        void *args[3] = {&at, &n, &pgot};
        hr = ShmProxyInvoke(This, SLOT_READ, args);
        if (FAILED(hr))
            break;
        if (got > n) { /* more than it was asked for: a lying peer */
            memset(at, 0, n);
            hr = RPC_E_INVALID_DATA;
            break;
        }
        total += got;
        if (got < n || hr != S_OK)
            break;
    } while (total < cb);
    if (pcbRead)
        *pcbRead = total;
    return hr;
}

static HRESULT proxy_write(void *This, const void *pv, ULONG cb, ULONG *pcbWritten)
{
    if (pcbWritten)
        *pcbWritten = 0;
    if (!pv && cb)
        return STG_E_INVALIDPOINTER;
    static const unsigned char none = 0;
    const unsigned char *src = pv ? pv : &none;
    ULONG total = 0, chunk = chunk_size();
    HRESULT hr;
    do {
        ULONG n = cb - total > chunk ? chunk : cb - total, done = 0;
        const unsigned char *at = src + total;
        ULONG *pdone = &done;
        void *args[3] = {&at, &n, &pdone};
        hr = ShmProxyInvoke(This, SLOT_WRITE, args);
        if (FAILED(hr))
            break;
        if (done > n) {
            hr = RPC_E_INVALID_DATA;
            break;
        }
        total += done;
        if (done < n || hr != S_OK)
            break;
    } while (total < cb);
    if (pcbWritten)
        *pcbWritten = total;
    return hr;
}

static HRESULT STDMETHODCALLTYPE seq_QueryInterface(ISequentialStream *This, REFIID riid,
                                                    void **ppv)
{
    return ShmProxyQueryInterface(This, riid, ppv);
}
static ULONG STDMETHODCALLTYPE seq_AddRef(ISequentialStream *This)
{
    return ShmProxyAddRef(This);
}
static ULONG STDMETHODCALLTYPE seq_Release(ISequentialStream *This)
{
    return ShmProxyRelease(This);
}
static HRESULT STDMETHODCALLTYPE seq_Read(ISequentialStream *This, void *pv, ULONG cb,
                                          ULONG *pcbRead)
{
    return proxy_read(This, pv, cb, pcbRead);
}
static HRESULT STDMETHODCALLTYPE seq_Write(ISequentialStream *This, const void *pv, ULONG cb,
                                           ULONG *pcbWritten)
{
    return proxy_write(This, pv, cb, pcbWritten);
}

static HRESULT STDMETHODCALLTYPE stm_QueryInterface(IStream *This, REFIID riid, void **ppv)
{
    return ShmProxyQueryInterface(This, riid, ppv);
}
static ULONG STDMETHODCALLTYPE stm_AddRef(IStream *This)
{
    return ShmProxyAddRef(This);
}
static ULONG STDMETHODCALLTYPE stm_Release(IStream *This)
{
    return ShmProxyRelease(This);
}
static HRESULT STDMETHODCALLTYPE stm_Read(IStream *This, void *pv, ULONG cb, ULONG *pcbRead)
{
    return proxy_read(This, pv, cb, pcbRead);
}
static HRESULT STDMETHODCALLTYPE stm_Write(IStream *This, const void *pv, ULONG cb,
                                           ULONG *pcbWritten)
{
    return proxy_write(This, pv, cb, pcbWritten);
}
static HRESULT STDMETHODCALLTYPE stm_Seek(IStream *This, LARGE_INTEGER move, DWORD origin,
                                          ULARGE_INTEGER *plibNewPosition)
{
    ULARGE_INTEGER pos, *ppos = &pos;
    pos.QuadPart = 0;
    void *args[3] = {&move, &origin, &ppos};
    HRESULT hr = ShmProxyInvoke(This, SLOT_SEEK, args);
    if (plibNewPosition)
        *plibNewPosition = pos;
    return hr;
}
static HRESULT STDMETHODCALLTYPE stm_SetSize(IStream *This, ULARGE_INTEGER size)
{
    void *args[1] = {&size};
    return ShmProxyInvoke(This, SLOT_SETSIZE, args);
}
static HRESULT STDMETHODCALLTYPE stm_CopyTo(IStream *This, IStream *pstm, ULARGE_INTEGER cb,
                                            ULARGE_INTEGER *pcbRead, ULARGE_INTEGER *pcbWritten)
{
    ULARGE_INTEGER r, w, *pr = &r, *pw = &w;
    r.QuadPart = w.QuadPart = 0;
    void *args[4] = {&pstm, &cb, &pr, &pw};
    HRESULT hr = ShmProxyInvoke(This, SLOT_COPYTO, args);
    if (pcbRead)
        *pcbRead = r;
    if (pcbWritten)
        *pcbWritten = w;
    return hr;
}
static HRESULT STDMETHODCALLTYPE stm_Commit(IStream *This, DWORD flags)
{
    void *args[1] = {&flags};
    return ShmProxyInvoke(This, SLOT_COMMIT, args);
}
static HRESULT STDMETHODCALLTYPE stm_Revert(IStream *This)
{
    return ShmProxyInvoke(This, SLOT_REVERT, NULL);
}
static HRESULT STDMETHODCALLTYPE stm_LockRegion(IStream *This, ULARGE_INTEGER offset,
                                                ULARGE_INTEGER cb, DWORD type)
{
    void *args[3] = {&offset, &cb, &type};
    return ShmProxyInvoke(This, SLOT_LOCKREGION, args);
}
static HRESULT STDMETHODCALLTYPE stm_UnlockRegion(IStream *This, ULARGE_INTEGER offset,
                                                  ULARGE_INTEGER cb, DWORD type)
{
    void *args[3] = {&offset, &cb, &type};
    return ShmProxyInvoke(This, SLOT_UNLOCKREGION, args);
}
static HRESULT STDMETHODCALLTYPE stm_Stat(IStream *This, STATSTG *pstatstg, DWORD flags)
{
    if (!pstatstg)
        return STG_E_INVALIDPOINTER;
    stat_wire w, *pw = &w;
    memset(&w, 0, sizeof(w));
    LPOLESTR name = NULL, *pname = &name;
    void *args[3] = {&pw, &flags, &pname};
    HRESULT hr = ShmProxyInvoke(This, SLOT_STAT, args);
    stat_from_wire(pstatstg, &w); /* (zeroed on failure) */
    pstatstg->pwcsName = name;
    return hr;
}
static HRESULT STDMETHODCALLTYPE stm_Clone(IStream *This, IStream **ppstm)
{
    if (!ppstm)
        return STG_E_INVALIDPOINTER;
    void *args[1] = {&ppstm};
    return ShmProxyInvoke(This, SLOT_CLONE, args);
}

static const ISequentialStreamVtbl seq_proxy_vtbl = {seq_QueryInterface, seq_AddRef, seq_Release,
                                                     seq_Read, seq_Write};

static const IStreamVtbl stm_proxy_vtbl = {
    stm_QueryInterface, stm_AddRef,       stm_Release, stm_Read,   stm_Write,
    stm_Seek,           stm_SetSize,      stm_CopyTo,  stm_Commit, stm_Revert,
    stm_LockRegion,     stm_UnlockRegion, stm_Stat,    stm_Clone};

static const ShmInterfaceInfo seq_info = {
    &IID_ISequentialStream, "ISequentialStream", &IID_IUnknown,
    SEQ_NMETHODS,           seq_methods,         &seq_proxy_vtbl};

static const ShmInterfaceInfo stm_info = {&IID_IStream, "IStream",   &IID_ISequentialStream,
                                          STM_NMETHODS, stm_methods, &stm_proxy_vtbl};

const ShmInterfaceInfo *shmc_stream_ps_find(REFIID iid)
{
    if (IsEqualIID(iid, &IID_IStream))
        return &stm_info;
    if (IsEqualIID(iid, &IID_ISequentialStream))
        return &seq_info;
    return NULL;
}
