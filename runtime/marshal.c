/*
 * marshal.c - the standard marshaler's public functions: writing a record
 * for an interface pointer (ShmCoMarshalInterface), turning a record back
 * into a pointer (the object itself in its own apartment, a proxy
 * elsewhere), releasing a record unread, and the one-shot pair for handing
 * a pointer to another thread.
 *
 * Records live in IStreams (any IStream: ours, or CreateStreamOnHGlobal's
 * on Windows); inside calls they travel in frames, through the in-process
 * ShmItfMarshaler at the bottom of this file.
 */
#include "alloc.h"
#include "csprng.h"
#include "inproc.h"
#include "rt.h"
#include "shstream.h"
#include "xport.h"

#include <string.h>

/* ---- argument and apartment checks ------------------------------------------ */

static HRESULT check_flags(DWORD mshctx, DWORD mshlflags)
{
    DWORD kind = mshlflags & ~(DWORD)MSHLFLAGS_NOPING;
    if (kind != MSHLFLAGS_NORMAL && kind != MSHLFLAGS_TABLESTRONG && kind != MSHLFLAGS_TABLEWEAK)
        return E_INVALIDARG;
    switch (mshctx) {
    case MSHCTX_INPROC:
    case MSHCTX_CROSSCTX:
    case MSHCTX_LOCAL:
        return S_OK;
    case MSHCTX_NOSHAREDMEM:
    case MSHCTX_DIFFERENTMACHINE:
        return E_NOTIMPL; /* shmcom needs shared memory on one machine */
    default:
        return E_INVALIDARG;
    }
}

/* ---- marshaling ------------------------------------------------------------------ */

/* Marshals a proxy of ours: the record names the object, not the proxy,
 * and carries a reference of its own on the object. */
static HRESULT marshal_proxy(shmc_objref *rec, shmc_proxymgr *pm, REFIID riid, DWORD mshlflags)
{
    shmc_ifstub *ifs;
    HRESULT hr = shmc_proxymgr_get_ifstub(pm, riid, &ifs); /* +1 strong */
    if (FAILED(hr))
        return hr;
    shmc_record *r = shmc_calloc(1, sizeof(*r));
    uint64_t nonce = shmc_random_u64();
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_stubmgr *sm = ifs->mgr;
    if (!r || !nonce || !sm->connected) {
        hr = !sm->connected ? RPC_E_DISCONNECTED : E_OUTOFMEMORY;
        shmc_stubmgr_drop_refs_locked(sm, 1, false, &destroy);
        shmc_plat_mutex_unlock(&shmc_g.lock);
        shmc_free(r);
        shmc_ifstub_release(ifs);
        if (destroy)
            shmc_stubmgr_destroy(destroy);
        return hr;
    }
    DWORD kind = mshlflags & ~(DWORD)MSHLFLAGS_NOPING;
    if (kind == MSHLFLAGS_TABLEWEAK) {
        /* a weak record holds no strong reference: trade ours for a weak one */
        sm->weakrefs++;
        shmc_stubmgr_drop_refs_locked(sm, 1, false, &destroy);
    }
    r->nonce = nonce;
    r->mshlflags = kind;
    r->ifstub = ifs;
    r->next = sm->records;
    sm->records = r;
    rec->oxid = sm->apt->oxid;
    rec->oid = sm->oid;
    memcpy(rec->ipid, ifs->ipid.b, 16);
    rec->nonce = nonce;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_ifstub_release(ifs);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    return S_OK;
}

/* Marshals an object of this apartment. */
static HRESULT marshal_object(shmc_objref *rec, shmc_apt *apt, REFIID riid, IUnknown *punk,
                              DWORD mshlflags)
{
    const ShmInterfaceInfo *info = NULL;
    if (!IsEqualIID(riid, &IID_IUnknown)) {
        info = shmc_registry_find(riid);
        if (!info) {
            /* the object may not even have it; say the more useful thing */
            void *probe = NULL;
            HRESULT hr = IUnknown_QueryInterface(punk, riid, &probe);
            if (FAILED(hr) || !probe)
                return E_NOINTERFACE;
            IUnknown_Release((IUnknown *)probe);
            return REGDB_E_IIDNOTREG;
        }
    }
    void *itf = NULL;
    IUnknown *identity = NULL;
    HRESULT hr = IUnknown_QueryInterface(punk, riid, &itf);
    if (FAILED(hr) || !itf)
        return E_NOINTERFACE;
    hr = IUnknown_QueryInterface(punk, &IID_IUnknown, (void **)&identity);
    if (FAILED(hr) || !identity) {
        IUnknown_Release((IUnknown *)itf);
        return FAILED(hr) ? hr : E_NOINTERFACE;
    }

    uint64_t idkey = shmc_hmap_mix((uintptr_t)identity);
    shmc_stubmgr *fresh_sm = shmc_calloc(1, sizeof(*fresh_sm));
    shmc_ifstub *fresh_ifs = shmc_calloc(1, sizeof(*fresh_ifs));
    shmc_record *r = shmc_calloc(1, sizeof(*r));
    uint64_t nonce = shmc_random_u64(), oid = shmc_random_u64();
    hr = E_OUTOFMEMORY;
    if (!fresh_sm || !fresh_ifs || !r || !nonce || !oid ||
        FAILED(shmc_random(fresh_ifs->ipid.b, sizeof(fresh_ifs->ipid.b))))
        goto fail;

    shmc_plat_mutex_lock(&shmc_g.lock);
    if (FAILED(shmc_hmap_reserve(&shmc_g.ipids, 1)))
        goto fail_locked;
    shmc_stubmgr *sm = shmc_hmap_get(&shmc_g.stub_by_identity, idkey);
    if (sm && (!sm->connected || sm->identity != identity))
        sm = NULL;
    if (!sm) {
        sm = fresh_sm;
        if (FAILED(shmc_hmap_put(&shmc_g.stub_by_identity, idkey, sm)))
            goto fail_locked;
        if (FAILED(shmc_hmap_put(&shmc_g.stub_by_oid, oid, sm))) {
            shmc_hmap_del(&shmc_g.stub_by_identity, idkey);
            goto fail_locked;
        }
        fresh_sm = NULL;
        atomic_init(&sm->refs, 1); /* the apartment list's */
        sm->apt = apt;
        shmc_apt_addref(apt);
        sm->oid = oid;
        sm->idkey = idkey;
        shmc_plat_mutex_init(&sm->lock);
        sm->identity = identity; /* the stub manager's reference */
        identity = NULL;
        sm->connected = true;
        sm->next = apt->stubs;
        apt->stubs = sm;
    }
    shmc_ifstub *ifs;
    for (ifs = sm->ifstubs; ifs; ifs = ifs->next) {
        if (IsEqualIID(&ifs->iid, riid))
            break;
    }
    if (!ifs) {
        ifs = fresh_ifs;
        fresh_ifs = NULL;
        atomic_init(&ifs->refs, 1);
        ifs->mgr = sm;
        ifs->iid = *riid;
        ifs->info = info;
        atomic_init(&ifs->itf, itf); /* the interface stub's reference */
        atomic_init(&ifs->busy, 0);
        itf = NULL;
        shmc_ipid_add_locked(ifs); /* cannot fail: room reserved above */
        ifs->next = sm->ifstubs;
        sm->ifstubs = ifs;
    }
    DWORD kind = mshlflags & ~(DWORD)MSHLFLAGS_NOPING;
    if (kind == MSHLFLAGS_TABLEWEAK)
        sm->weakrefs++;
    else
        sm->extrefs++;
    r->nonce = nonce;
    r->mshlflags = kind;
    r->ifstub = ifs;
    r->next = sm->records;
    sm->records = r;
    r = NULL;
    rec->oxid = sm->apt->oxid; /* the apartment that owns the stub manager */
    rec->oid = sm->oid;
    memcpy(rec->ipid, ifs->ipid.b, 16);
    rec->nonce = nonce;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    hr = S_OK;
    goto done;

fail_locked:
    shmc_plat_mutex_unlock(&shmc_g.lock);
fail:
done:
    shmc_free(fresh_sm);
    shmc_free(fresh_ifs);
    shmc_free(r);
    if (itf)
        IUnknown_Release((IUnknown *)itf);
    if (identity)
        IUnknown_Release(identity);
    return hr;
}

HRESULT shmc_marshal_record(shmc_objref *rec, REFIID riid, IUnknown *punk, DWORD mshctx,
                            DWORD mshlflags)
{
    memset(rec, 0, sizeof(*rec));
    HRESULT hr = check_flags(mshctx, mshlflags);
    if (FAILED(hr))
        return hr;
    hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    rec->mshlflags = mshlflags & ~(DWORD)MSHLFLAGS_NOPING;
    rec->mshctx = mshctx == MSHCTX_LOCAL ? MSHCTX_LOCAL : MSHCTX_INPROC;
    rec->iid = *riid;
    rec->pid = shmc_g.self.pid;
    rec->start_time = shmc_g.self.start_time;
    shmc_proxymgr *pm = shmc_proxymgr_from(punk);
    if (pm && pm->conn) {
        /* an object of another process: its owner makes the record */
        hr = shmc_proxymgr_check(pm);
        if (SUCCEEDED(hr))
            hr = shmc_remote_add_record(pm, riid, rec->mshlflags, rec->ipid, &rec->nonce);
        if (SUCCEEDED(hr)) {
            const shmc_plat_procid *owner = shmc_conn_peer(pm->conn);
            const char *ep = shmc_conn_endpoint(pm->conn);
            rec->pid = owner->pid;
            rec->start_time = owner->start_time;
            rec->oxid = pm->oxid;
            rec->oid = pm->oid;
            rec->endpoint_len = (uint32_t)strlen(ep);
            memcpy(rec->endpoint, ep, rec->endpoint_len);
        }
        shmc_proxymgr_release_ref(pm);
    } else if (pm) {
        hr = marshal_proxy(rec, pm, riid, mshlflags);
        shmc_proxymgr_release_ref(pm);
    } else {
        hr = marshal_object(rec, apt, riid, punk, mshlflags);
    }
    if (SUCCEEDED(hr) && rec->mshctx == MSHCTX_LOCAL && !rec->endpoint_len) {
        /* another process will need to find this one */
        char ep[SHMC_XNAME_MAX];
        hr = shmc_xport_endpoint(ep);
        if (SUCCEEDED(hr)) {
            rec->endpoint_len = (uint32_t)strlen(ep);
            memcpy(rec->endpoint, ep, rec->endpoint_len);
        } else {
            shmc_release_record(rec);
        }
    }
    shmc_apt_release(apt);
    if (FAILED(hr))
        memset(rec, 0, sizeof(*rec));
    return hr;
}

HRESULT ShmCoMarshalInterface(IStream *stream, REFIID riid, IUnknown *punk, DWORD mshctx,
                              void *reserved, DWORD mshlflags)
{
    (void)reserved; /* pvDestContext: nothing to say about the destination */
    if (!stream || !riid || !punk)
        return E_INVALIDARG;
    shmc_objref rec;
    HRESULT hr = shmc_marshal_record(&rec, riid, punk, mshctx, mshlflags);
    if (FAILED(hr))
        return hr;
    unsigned char buf[SHMC_OBJREF_MAX_SIZE];
    uint32_t size = shmc_objref_size(&rec);
    shmc_objref_encode(&rec, buf);
    ULONG written = 0;
    hr = IStream_Write(stream, buf, size, &written);
    if (SUCCEEDED(hr) && written != size)
        hr = STG_E_MEDIUMFULL;
    if (FAILED(hr))
        shmc_release_record(&rec); /* nobody will ever read it */
    return hr;
}

HRESULT ShmCoGetMarshalSizeMax(ULONG *size, REFIID riid, IUnknown *punk, DWORD mshctx,
                               void *reserved, DWORD mshlflags)
{
    (void)reserved;
    if (!size)
        return E_INVALIDARG;
    *size = 0;
    if (!riid || !punk)
        return E_INVALIDARG;
    HRESULT hr = check_flags(mshctx, mshlflags);
    if (FAILED(hr))
        return hr;
    hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    shmc_apt_release(apt);
    /* a record for another process's object carries its endpoint, whatever
     * the context: the larger size is the bound */
    *size = SHMC_OBJREF_MAX_SIZE;
    return S_OK;
}

/* ---- reading records -------------------------------------------------------------- */

static HRESULT read_record(IStream *stream, shmc_objref *rec)
{
    unsigned char buf[SHMC_OBJREF_MAX_SIZE];
    ULONG got = 0;
    uint32_t total;
    HRESULT hr = IStream_Read(stream, buf, SHMC_OBJREF_BASE_SIZE, &got);
    if (FAILED(hr))
        return hr;
    if (got != SHMC_OBJREF_BASE_SIZE)
        return STG_E_READFAULT;
    hr = shmc_objref_decode_head(buf, rec, &total);
    if (FAILED(hr))
        return hr;
    if (total > SHMC_OBJREF_BASE_SIZE) {
        uint32_t rest = total - SHMC_OBJREF_BASE_SIZE;
        hr = IStream_Read(stream, buf + SHMC_OBJREF_BASE_SIZE, rest, &got);
        if (FAILED(hr))
            return hr;
        if (got != rest)
            return STG_E_READFAULT;
        hr = shmc_objref_decode_tail(buf + SHMC_OBJREF_BASE_SIZE, rest, rec);
    }
    return hr;
}

/* The stub manager and record a record names, in this process; under
 * rt.lock. NULL if it no longer exists. */
static shmc_stubmgr *find_record_locked(const shmc_objref *rec, shmc_record **out,
                                        shmc_record ***link)
{
    *out = NULL;
    shmc_stubmgr *sm = shmc_stubmgr_find_oid(rec->oid);
    if (!sm || !sm->connected || sm->apt->oxid != rec->oxid)
        return NULL;
    for (shmc_record **pp = &sm->records; *pp; pp = &(*pp)->next) {
        shmc_record *r = *pp;
        if (r->nonce == rec->nonce && r->mshlflags == rec->mshlflags &&
            !memcmp(r->ifstub->ipid.b, rec->ipid, 16) && IsEqualIID(&r->ifstub->iid, &rec->iid)) {
            *out = r;
            if (link)
                *link = pp;
            return sm;
        }
    }
    return NULL;
}

static HRESULT gone_result(const shmc_objref *rec)
{
    /* what COM answers for a record whose object is gone */
    return rec->mshlflags == MSHLFLAGS_TABLEWEAK ? CO_E_OBJNOTREG : CO_E_OBJNOTCONNECTED;
}

static bool same_process(const shmc_objref *rec)
{
    return rec->pid == shmc_g.self.pid && rec->start_time == shmc_g.self.start_time;
}

HRESULT shmc_unmarshal_record(const shmc_objref *rec, REFIID riid, void **ppv)
{
    *ppv = NULL;
    HRESULT hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    if (!same_process(rec)) { /* an object of another process */
        hr = shmc_remote_unmarshal(rec, apt, IsEqualIID(riid, &GUID_NULL) ? &rec->iid : riid, ppv);
        shmc_apt_release(apt);
        return hr;
    }
    const IID *want = IsEqualIID(riid, &GUID_NULL) ? &rec->iid : riid;

    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_record *r, **link;
    shmc_stubmgr *sm = find_record_locked(rec, &r, &link);
    if (!sm) {
        shmc_plat_mutex_unlock(&shmc_g.lock);
        shmc_apt_release(apt);
        return gone_result(rec);
    }
    shmc_ifstub *ifs = r->ifstub;
    bool normal = r->mshlflags == MSHLFLAGS_NORMAL;
    if (normal) { /* honoured once */
        *link = r->next;
        shmc_record_free_locked(r);
    }
    atomic_fetch_add(&sm->refs, 1);
    shmc_ifstub_addref(ifs);

    if (sm->apt == apt) {
        /* Same apartment: the object itself. */
        shmc_plat_mutex_lock(&sm->lock);
        IUnknown *identity = sm->identity;
        if (identity)
            IUnknown_AddRef(identity);
        shmc_plat_mutex_unlock(&sm->lock);
        shmc_plat_mutex_unlock(&shmc_g.lock);
        hr = identity ? IUnknown_QueryInterface(identity, want, ppv) : CO_E_OBJNOTCONNECTED;
        if (FAILED(hr))
            *ppv = NULL;
        if (identity)
            IUnknown_Release(identity);
        if (normal) { /* the record's reference is spent */
            shmc_stubmgr *destroy = NULL;
            shmc_plat_mutex_lock(&shmc_g.lock);
            shmc_stubmgr_drop_refs_locked(sm, 1, false, &destroy);
            shmc_plat_mutex_unlock(&shmc_g.lock);
            if (destroy)
                shmc_stubmgr_destroy(destroy);
        }
    } else {
        /* Another apartment: a proxy that takes over the record's reference
         * (NORMAL) or one of its own (TABLE*). */
        shmc_plat_mutex_unlock(&shmc_g.lock);
        hr = shmc_proxymgr_connect(apt, sm, ifs, normal, want, ppv);
    }
    shmc_ifstub_release(ifs);
    shmc_stubmgr_release(sm);
    shmc_apt_release(apt);
    return hr;
}

HRESULT ShmCoUnmarshalInterface(IStream *stream, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_INVALIDARG;
    *ppv = NULL;
    if (!stream || !riid)
        return E_INVALIDARG;
    HRESULT hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    shmc_apt_release(apt);
    shmc_objref rec;
    hr = read_record(stream, &rec);
    if (FAILED(hr))
        return hr;
    return shmc_unmarshal_record(&rec, riid, ppv);
}

HRESULT shmc_release_record(const shmc_objref *rec)
{
    if (!same_process(rec))
        return shmc_remote_release_record(rec);
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_record *r, **link;
    shmc_stubmgr *sm = find_record_locked(rec, &r, &link);
    if (sm) {
        bool weak = r->mshlflags == MSHLFLAGS_TABLEWEAK;
        *link = r->next;
        shmc_record_free_locked(r);
        shmc_stubmgr_drop_refs_locked(sm, 1, weak, &destroy);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    /* a record already spent or released: nothing left to do, as in COM */
    return S_OK;
}

HRESULT ShmCoReleaseMarshalData(IStream *stream)
{
    if (!stream)
        return E_INVALIDARG;
    HRESULT hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    shmc_apt_release(apt);
    shmc_objref rec;
    hr = read_record(stream, &rec);
    if (FAILED(hr))
        return hr;
    return shmc_release_record(&rec);
}

/* ---- the one-shot pair ---------------------------------------------------------- */

HRESULT ShmCoMarshalInterThreadInterfaceInStream(REFIID riid, IUnknown *punk, IStream **stream)
{
    if (!stream)
        return E_INVALIDARG;
    *stream = NULL;
    if (!riid || !punk)
        return E_INVALIDARG;
    IStream *s;
    HRESULT hr = shmc_stream_create_heap(0, &s);
    if (FAILED(hr))
        return hr;
    hr = ShmCoMarshalInterface(s, riid, punk, MSHCTX_INPROC, NULL, MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr)) {
        LARGE_INTEGER zero;
        zero.QuadPart = 0;
        hr = IStream_Seek(s, zero, STREAM_SEEK_SET, NULL);
    }
    if (FAILED(hr)) {
        IStream_Release(s);
        return hr;
    }
    *stream = s;
    return S_OK;
}

HRESULT ShmCoGetInterfaceAndReleaseStream(IStream *stream, REFIID riid, void **ppv)
{
    /* the stream is released whatever happens, as COM does */
    HRESULT hr = E_INVALIDARG;
    if (ppv)
        *ppv = NULL;
    if (stream && riid && ppv)
        hr = ShmCoUnmarshalInterface(stream, riid, ppv);
    if (stream)
        IStream_Release(stream);
    return hr;
}

/* ---- interface pointers inside calls ---------------------------------------------- */

static HRESULT im_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **data,
                          uint32_t *size)
{
    (void)m;
    *data = NULL;
    *size = 0;
    shmc_objref rec;
    HRESULT hr = shmc_marshal_record(&rec, iid, itf, MSHCTX_INPROC, MSHLFLAGS_NORMAL);
    if (FAILED(hr))
        return hr;
    uint32_t n = shmc_objref_size(&rec);
    unsigned char *buf = ShmCoTaskMemAlloc(n);
    if (!buf) {
        shmc_release_record(&rec);
        return E_OUTOFMEMORY;
    }
    shmc_objref_encode(&rec, buf);
    *data = buf;
    *size = n;
    return S_OK;
}

static HRESULT im_unmarshal(ShmItfMarshaler *m, REFIID iid, const void *data, uint32_t size,
                            void **ppv)
{
    (void)m;
    *ppv = NULL;
    shmc_objref rec;
    HRESULT hr = shmc_objref_decode(data, size, &rec);
    if (FAILED(hr))
        return hr;
    return shmc_unmarshal_record(&rec, iid, ppv);
}

static void im_release(ShmItfMarshaler *m, const void *data, uint32_t size)
{
    (void)m;
    shmc_objref rec;
    if (SUCCEEDED(shmc_objref_decode(data, size, &rec)))
        shmc_release_record(&rec);
}

static const ShmItfMarshalerVtbl inproc_marshaler_vtbl = {im_marshal, im_unmarshal, im_release};

ShmItfMarshaler shmc_inproc_marshaler = {&inproc_marshaler_vtbl};
