/*
 * fuzz_stub.c - libFuzzer target: ShmStubInvoke's frame decoding, over
 * the interfaces of tests/idl/calls.idl (IDerived) and over the runtime's
 * own tables of ISequentialStream and IStream (runtime/streamps.c,
 * shmc_stream_ps_find) with their real call thunks.
 *
 * Input: sel, then the request frame (in a buffer of exactly its size).
 *   sel < 0x80:   IDerived, method slot sel % (nmethods + 1)
 *   sel & 0x80:   a stream table: ISequentialStream if sel & 0x40, else
 *                 IStream; method slot (sel & 0x3f) % (nmethods + 1)
 * (slots 0-2 and nmethods are invalid methods, answered without a call.)
 *
 * IDerived's generated thunks are replaced by a generic one (touch) that
 * reads every [in] byte and writes every caller-allocated [out] byte: that
 * part checks the engine, not an object. The stream tables are used as
 * the runtime has them; their thunks call a small in-memory IStream of
 * this file (memstm), made afresh for every input with 200 bytes in it,
 * capped at 64 KiB (Write and SetSize past it fail with STG_E_MEDIUMFULL),
 * whose methods keep to their contracts and touch every byte they are
 * handed. The marshaler (below) turns an 8-byte "SHMR" record into a fresh
 * in-memory stream and refuses any other, so an [in] interface (CopyTo's
 * target) is a real object or the call fails before the object is called;
 * an [out] interface (Clone's) is marshaled and held until the input ends.
 *
 * A bad frame must give an error and touch nothing outside it (ASan), and
 * nothing may leak (LSan). For the streams, also: after every input the
 * object has exactly one reference and no other memstm is alive, and a
 * call the stub answered has the object's HRESULT at the reply's start.
 *
 * FZ_VERBOSE=1 prints, per input, the method and what ShmStubInvoke and
 * the object returned.
 */
#ifndef COBJMACROS
#define COBJMACROS
#endif
#include "calls.h"
#include "rt.h"
#include <shmcom/proxystub.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The marshaler. A record is 8 bytes, "SHMR" and an index. Marshal (an
 * [out] interface: Clone's) holds a reference on the object in `held` and
 * writes its index; the end of each input releases what the reply's
 * records still hold, as a client that unmarshaled them would. Unmarshal of
 * an 8-byte "SHMR" record (an [in] interface from the frame: CopyTo's
 * target) gives a fresh in-memory stream, as iid; anything else is refused
 * (RPC_E_INVALID_OBJREF). Every record is read whole, as a real marshaler
 * reads it.
 */
#define HELD_MAX 8
static IUnknown *held[HELD_MAX];
static const unsigned char rec_magic[4] = {'S', 'H', 'M', 'R'};
static int memstm_alive; /* in-memory streams (below) not yet freed */

static HRESULT memstm_new(const unsigned char *data, uint64_t size, uint64_t pos, IStream **out);

static HRESULT m_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **d, uint32_t *s)
{
    (void)m;
    (void)iid;
    *d = NULL;
    *s = 0;
    uint32_t i = 0;
    while (i < HELD_MAX && held[i])
        i++;
    unsigned char *rec = i < HELD_MAX ? ShmCoTaskMemAlloc(8) : NULL;
    if (!rec)
        return E_OUTOFMEMORY;
    memcpy(rec, rec_magic, 4);
    memcpy(rec + 4, &i, 4);
    IUnknown_AddRef(itf);
    held[i] = itf;
    *d = rec;
    *s = 8;
    return S_OK;
}

static bool read_record(const void *d, uint32_t s)
{
    volatile unsigned char sum = 0;
    for (uint32_t i = 0; i < s; i++)
        sum ^= ((const unsigned char *)d)[i];
    return s == 8 && memcmp(d, rec_magic, 4) == 0;
}

static HRESULT m_unmarshal(ShmItfMarshaler *m, REFIID iid, const void *d, uint32_t s, void **ppv)
{
    (void)m;
    *ppv = NULL;
    if (!read_record(d, s))
        return RPC_E_INVALID_OBJREF;
    IStream *fresh;
    HRESULT hr = memstm_new(NULL, 0, 0, &fresh);
    if (FAILED(hr))
        return hr;
    hr = IStream_QueryInterface(fresh, iid, ppv);
    IStream_Release(fresh);
    return hr;
}

/* What a record of ours holds (one in `held`), let go. */
static void m_release(ShmItfMarshaler *m, const void *d, uint32_t s)
{
    (void)m;
    uint32_t i;
    if (!read_record(d, s))
        return;
    memcpy(&i, (const unsigned char *)d + 4, 4);
    if (i < HELD_MAX && held[i]) {
        IUnknown_Release(held[i]);
        held[i] = NULL;
    }
}

/* The end of an input: the reply's records are consumed. */
static void release_held(void)
{
    for (uint32_t i = 0; i < HELD_MAX; i++) {
        if (held[i]) {
            IUnknown_Release(held[i]);
            held[i] = NULL;
        }
    }
}
static const ShmItfMarshalerVtbl mvtbl = {m_marshal, m_unmarshal, m_release};
static ShmItfMarshaler marshaler = {&mvtbl};

static void *reply_buf;
static uint32_t reply_size;
static HRESULT r_get(ShmStubReply *r, uint32_t size, void **buf)
{
    (void)r;
    reply_buf = malloc(size ? size : 1);
    reply_size = size;
    *buf = reply_buf;
    return reply_buf ? S_OK : E_OUTOFMEMORY;
}
static const ShmStubReplyVtbl rvtbl = {r_get};

static int verbose(void)
{
    static int v = -1;
    if (v < 0)
        v = getenv("FZ_VERBOSE") != NULL;
    return v;
}

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_stub: %s\n", what);
    abort();
}

/* ---- IDerived: a generic call thunk ------------------------------------------------- */

/* A generic call thunk replaces the generated ones: the fuzzer checks the
 * engine, not the object. It reads every [in] byte and writes every
 * caller-allocated [out] byte the engine handed over. */
static const ShmMethod *cur;
static HRESULT touch(void *itf, void **args)
{
    (void)itf;
    for (uint32_t i = 0; i < cur->nparams; i++) {
        const ShmParam *p = &cur->params[i];
        volatile unsigned char sum = 0;
        if (p->kind == SHM_PK_VALUE) {
            for (uint32_t k = 0; k < p->elem_size * p->count; k++)
                sum ^= ((unsigned char *)args[i])[k];
            continue;
        }
        void *ptr;
        memcpy(&ptr, args[i], sizeof(ptr));
        if (p->kind == SHM_PK_REF) {
            for (uint32_t k = 0; k < p->elem_size * p->count; k++)
                ((unsigned char *)ptr)[k] ^= 1;
        } else if (p->kind == SHM_PK_STRING && (p->flags & SHM_PF_IN)) {
            size_t n = 0;
            while (((char *)ptr)[n] || (p->elem_size == 2 && ((char *)ptr)[n + 1]))
                n += p->elem_size;
        }
    }
    return S_OK;
}

static void derived(uint8_t sel, unsigned char *frame, uint32_t n)
{
    static ShmMethod methods[64];
    static ShmInterfaceInfo info;
    const ShmInterfaceInfo *real = NULL;
    for (uint32_t i = 0; i < calls_ProxyFileInfo.ninterfaces; i++)
        if (IsEqualIID(calls_ProxyFileInfo.interfaces[i]->iid, &IID_IDerived))
            real = calls_ProxyFileInfo.interfaces[i];
    if (!real || real->nmethods > 64)
        fail("no IDerived table");
    info = *real;
    memcpy(methods, real->methods, sizeof(ShmMethod) * real->nmethods);
    for (uint32_t i = 3; i < real->nmethods; i++)
        methods[i].call = touch;
    info.methods = methods;
    uint32_t slot = sel % (real->nmethods + 1);
    cur = slot < real->nmethods ? &methods[slot] : NULL;
    ShmStubReply reply = {&rvtbl};
    static int obj;
    HRESULT hr = ShmStubInvoke(&info, &obj, slot, frame, n, &marshaler, &reply);
    if (verbose())
        fprintf(stderr, "fuzz_stub: IDerived %s (slot %u): 0x%08x\n",
                cur && cur->name ? cur->name : "-", (unsigned)slot, (unsigned)hr);
    release_held();
    if (memstm_alive)
        fail("an [in] interface the stub unmarshaled was not released");
}

/* ---- the streams: a small in-memory IStream ---------------------------------------------- */

#define MEMSTM_CAP (64u << 10)

typedef struct memstm {
    IStream iface;
    ULONG refs;
    unsigned char *data; /* size bytes (NULL when 0) */
    uint64_t size, pos;
} memstm;

static HRESULT last_hr;   /* what the object's last method returned */
static int stream_called; /* a method past IUnknown's was called */

static memstm *impl(IStream *This)
{
    return (memstm *)This;
}

static HRESULT ret(HRESULT hr)
{
    last_hr = hr;
    stream_called = 1;
    return hr;
}

static HRESULT memstm_new(const unsigned char *data, uint64_t size, uint64_t pos, IStream **out);

static HRESULT STDMETHODCALLTYPE ms_QueryInterface(IStream *This, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ISequentialStream) ||
        IsEqualIID(riid, &IID_IStream)) {
        *ppv = This;
        impl(This)->refs++;
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE ms_AddRef(IStream *This)
{
    return ++impl(This)->refs;
}

static ULONG STDMETHODCALLTYPE ms_Release(IStream *This)
{
    memstm *s = impl(This);
    if (!s->refs)
        fail("Release of an object without references");
    ULONG r = --s->refs;
    if (!r) {
        free(s->data);
        free(s);
        memstm_alive--;
    }
    return r;
}

/* Sets the size to n (n <= MEMSTM_CAP), new bytes zero. */
static HRESULT resize(memstm *s, uint64_t n)
{
    if (n > MEMSTM_CAP)
        return STG_E_MEDIUMFULL;
    if (n == s->size)
        return S_OK;
    if (!n) {
        free(s->data);
        s->data = NULL;
        s->size = 0;
        return S_OK;
    }
    unsigned char *d = realloc(s->data, (size_t)n);
    if (!d)
        return STG_E_INSUFFICIENTMEMORY;
    if (n > s->size)
        memset(d + s->size, 0, (size_t)(n - s->size));
    s->data = d;
    s->size = n;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE ms_Read(IStream *This, void *pv, ULONG cb, ULONG *pcbRead)
{
    memstm *s = impl(This);
    if (pcbRead)
        *pcbRead = 0;
    if (!pv && cb)
        return ret(STG_E_INVALIDPOINTER);
    uint64_t avail = s->pos < s->size ? s->size - s->pos : 0;
    ULONG n = avail < cb ? (ULONG)avail : cb;
    if (n)
        memcpy(pv, s->data + s->pos, n);
    /* the whole buffer is ours to fill: its tail too (with memset, which
     * ASan checks at once: a peer may ask for up to 32 MiB here) */
    if (cb > n)
        memset((unsigned char *)pv + n, 0, cb - n);
    s->pos += n;
    if (pcbRead)
        *pcbRead = n;
    return ret(n < cb ? S_FALSE : S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_Write(IStream *This, const void *pv, ULONG cb,
                                          ULONG *pcbWritten)
{
    memstm *s = impl(This);
    if (pcbWritten)
        *pcbWritten = 0;
    if (!pv && cb)
        return ret(STG_E_INVALIDPOINTER);
    volatile unsigned char sum = 0;
    for (ULONG i = 0; i < cb; i++)
        sum ^= ((const unsigned char *)pv)[i];
    if (!cb)
        return ret(S_OK);
    if (s->pos > MEMSTM_CAP || cb > MEMSTM_CAP - s->pos)
        return ret(STG_E_MEDIUMFULL); /* nothing written */
    uint64_t end = s->pos + cb;
    if (end > s->size) {
        HRESULT hr = resize(s, end);
        if (FAILED(hr))
            return ret(hr);
    }
    memcpy(s->data + s->pos, pv, cb);
    s->pos = end;
    if (pcbWritten)
        *pcbWritten = cb;
    return ret(S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_Seek(IStream *This, LARGE_INTEGER move, DWORD origin,
                                         ULARGE_INTEGER *plibNewPosition)
{
    memstm *s = impl(This);
    int64_t base;
    switch (origin) {
    case STREAM_SEEK_SET:
        base = 0;
        break;
    case STREAM_SEEK_CUR:
        base = (int64_t)s->pos;
        break;
    case STREAM_SEEK_END:
        base = (int64_t)s->size;
        break;
    default:
        return ret(STG_E_INVALIDFUNCTION);
    }
    /* positions are below 2^63 here: s->pos never exceeds INT64_MAX */
    if ((move.QuadPart < 0 && base + move.QuadPart < 0) ||
        (move.QuadPart > 0 && move.QuadPart > INT64_MAX - base))
        return ret(STG_E_INVALIDFUNCTION);
    s->pos = (uint64_t)(base + move.QuadPart);
    if (plibNewPosition)
        plibNewPosition->QuadPart = s->pos;
    return ret(S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_SetSize(IStream *This, ULARGE_INTEGER size)
{
    return ret(resize(impl(This), size.QuadPart));
}

static HRESULT STDMETHODCALLTYPE ms_CopyTo(IStream *This, IStream *pstm, ULARGE_INTEGER cb,
                                           ULARGE_INTEGER *pcbRead, ULARGE_INTEGER *pcbWritten)
{
    memstm *s = impl(This);
    if (pcbRead)
        pcbRead->QuadPart = 0;
    if (pcbWritten)
        pcbWritten->QuadPart = 0;
    if (!pstm)
        return ret(STG_E_INVALIDPOINTER);
    uint64_t avail = s->pos < s->size ? s->size - s->pos : 0;
    ULONG n = (ULONG)(avail < cb.QuadPart ? avail : cb.QuadPart); /* avail <= 64 KiB */
    ULONG done = 0;
    HRESULT hr = n ? IStream_Write(pstm, s->data + s->pos, n, &done) : S_OK;
    s->pos += n;
    if (pcbRead)
        pcbRead->QuadPart = n;
    if (pcbWritten)
        pcbWritten->QuadPart = done;
    return ret(hr);
}

static HRESULT STDMETHODCALLTYPE ms_Commit(IStream *This, DWORD flags)
{
    (void)This;
    (void)flags;
    return ret(S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_Revert(IStream *This)
{
    (void)This;
    return ret(S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_LockRegion(IStream *This, ULARGE_INTEGER offset,
                                               ULARGE_INTEGER cb, DWORD type)
{
    (void)This;
    (void)offset;
    (void)cb;
    (void)type;
    return ret(STG_E_INVALIDFUNCTION); /* no locking (grfLocksSupported 0) */
}

static HRESULT STDMETHODCALLTYPE ms_UnlockRegion(IStream *This, ULARGE_INTEGER offset,
                                                 ULARGE_INTEGER cb, DWORD type)
{
    (void)This;
    (void)offset;
    (void)cb;
    (void)type;
    return ret(STG_E_INVALIDFUNCTION);
}

static HRESULT STDMETHODCALLTYPE ms_Stat(IStream *This, STATSTG *st, DWORD flags)
{
    memstm *s = impl(This);
    if (!st)
        return ret(STG_E_INVALIDPOINTER);
    if (flags & ~(DWORD)(STATFLAG_NONAME | STATFLAG_NOOPEN))
        return ret(STG_E_INVALIDFLAG);
    memset(st, 0, sizeof(*st));
    if (!(flags & STATFLAG_NONAME)) {
        static const WCHAR name[] = {'f', 'z', 's', 't', 'm', 0};
        st->pwcsName = ShmCoTaskMemAlloc(sizeof(name));
        if (!st->pwcsName)
            return ret(STG_E_INSUFFICIENTMEMORY);
        memcpy(st->pwcsName, name, sizeof(name));
    }
    st->type = STGTY_STREAM;
    st->cbSize.QuadPart = s->size;
    st->mtime.dwLowDateTime = 1;
    st->grfMode = STGM_READWRITE;
    st->clsid = GUID_NULL;
    return ret(S_OK);
}

static HRESULT STDMETHODCALLTYPE ms_Clone(IStream *This, IStream **ppstm)
{
    memstm *s = impl(This);
    if (!ppstm)
        return ret(STG_E_INVALIDPOINTER);
    *ppstm = NULL;
    return ret(memstm_new(s->data, s->size, s->pos, ppstm));
}

static const IStreamVtbl memstm_vtbl = {
    ms_QueryInterface, ms_AddRef, ms_Release, ms_Read,       ms_Write,        ms_Seek, ms_SetSize,
    ms_CopyTo,         ms_Commit, ms_Revert,  ms_LockRegion, ms_UnlockRegion, ms_Stat, ms_Clone};

static HRESULT memstm_new(const unsigned char *data, uint64_t size, uint64_t pos, IStream **out)
{
    memstm *s = calloc(1, sizeof(*s));
    if (!s)
        return E_OUTOFMEMORY;
    s->iface.lpVtbl = &memstm_vtbl;
    s->refs = 1;
    s->pos = pos;
    if (size) {
        s->data = malloc((size_t)size);
        if (!s->data) {
            free(s);
            return E_OUTOFMEMORY;
        }
        memcpy(s->data, data, (size_t)size);
        s->size = size;
    }
    memstm_alive++;
    *out = &s->iface;
    return S_OK;
}

static void stream(uint8_t sel, unsigned char *frame, uint32_t n)
{
    const ShmInterfaceInfo *info =
        shmc_stream_ps_find(sel & 0x40 ? &IID_ISequentialStream : &IID_IStream);
    if (!info)
        fail("no stream table");
    uint32_t slot = (sel & 0x3fu) % (info->nmethods + 1);
    unsigned char init[200];
    for (size_t i = 0; i < sizeof(init); i++)
        init[i] = (unsigned char)(i * 7 + 1);
    IStream *stm;
    if (FAILED(memstm_new(init, sizeof(init), 0, &stm)))
        return; /* (out of memory) */
    stream_called = 0;
    last_hr = E_UNEXPECTED;
    ShmStubReply reply = {&rvtbl};
    HRESULT hr = ShmStubInvoke(info, stm, slot, frame, n, &marshaler, &reply);
    if (verbose()) {
        const char *name = slot < info->nmethods ? info->methods[slot].name : NULL;
        fprintf(stderr, "fuzz_stub: %s %s (slot %u): 0x%08x", info->name, name ? name : "-",
                (unsigned)slot, (unsigned)hr);
        if (stream_called)
            fprintf(stderr, ", object 0x%08x", (unsigned)last_hr);
        fprintf(stderr, "\n");
    }
    if (SUCCEEDED(hr)) {
        if (!stream_called || !reply_buf || reply_size < 4)
            fail("an answered call without a call or a reply");
        HRESULT mhr;
        memcpy(&mhr, reply_buf, 4);
        if (mhr != last_hr)
            fail("the reply's HRESULT is not the object's");
    }
    release_held();
    if (impl(stm)->refs != 1)
        fail("the object's references changed");
    IStream_Release(stm);
    if (memstm_alive)
        fail("an object (a clone) was not released");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > UINT32_MAX)
        return 0;
    uint32_t n = (uint32_t)(size - 1);
    unsigned char *frame = malloc(n ? n : 1);
    if (!frame)
        return 0;
    memcpy(frame, data + 1, n);
    if (data[0] & 0x80)
        stream(data[0], frame, n);
    else
        derived(data[0], frame, n);
    free(reply_buf);
    reply_buf = NULL;
    reply_size = 0;
    free(frame);
    return 0;
}
