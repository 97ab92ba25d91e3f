/*
 * proxymgr.c - proxy managers: an object of another apartment as this
 * apartment sees it. One per object and apartment, so every interface
 * proxy of an object answers QueryInterface(IID_IUnknown) with the same
 * identity. It counts the COM references of all its interface proxies
 * together, holds strong references on the object's interface stubs, and
 * is the channel (ShmProxyChannel) through which the proxy engine makes
 * calls.
 *
 * A proxy is bound to the apartment that unmarshaled it: used from
 * another one it answers RPC_E_WRONG_THREAD. AddRef and Release work from
 * anywhere (COM allows releasing a proxy from the wrong apartment, and so
 * do we); the last Release gives the references back to the object
 * synchronously.
 */
#include "alloc.h"
#include "inproc.h"
#include "rt.h"
#include "xport.h"

#include <stddef.h>
#include <string.h>

/* QueryInterface with this IID on one of our proxies yields its manager:
 * how ShmCoMarshalInterface recognizes a proxy, to marshal the object
 * behind it rather than the proxy. Never answered by anything else. */
static const IID IID_shmc_ProxyManager = {
    0x8b6f7a4e, 0x53c1, 0x4d2e, {0x9a, 0x10, 0x7d, 0x3e, 0x5b, 0x21, 0xc4, 0x6f}};

static shmc_proxymgr *impl_from_IUnknown(IUnknown *iface)
{
    return (shmc_proxymgr *)((char *)iface - offsetof(shmc_proxymgr, IUnknown_iface));
}

static shmc_proxymgr *impl_from_channel(ShmProxyChannel *ch)
{
    return (shmc_proxymgr *)((char *)ch - offsetof(shmc_proxymgr, channel));
}

shmc_proxymgr *shmc_proxymgr_from_channel(ShmProxyChannel *ch)
{
    return impl_from_channel(ch);
}

static void proxymgr_free(shmc_proxymgr *pm)
{
    shmc_ifproxy *p = pm->ifproxies;
    while (p) {
        shmc_ifproxy *next = p->next;
        if (p->target)
            shmc_ifstub_release(p->target);
        shmc_free(p);
        p = next;
    }
    if (pm->stubmgr)
        shmc_stubmgr_release(pm->stubmgr);
    if (pm->conn)
        shmc_conn_release(pm->conn);
    shmc_apt_release(pm->apt);
    shmc_free(pm);
}

static ULONG pm_addref(shmc_proxymgr *pm)
{
    return atomic_fetch_add(&pm->refs, 1) + 1;
}

/* A reference on a manager found in apt->proxy_by_oid, unless its last
 * one is being released: that release drops the count outside rt.lock
 * (pm_release), so a count read under the lock can reach 0 before an
 * AddRef that follows; the manager is then about to be freed, and must not
 * be handed out. Under rt.lock. */
static bool pm_tryref(shmc_proxymgr *pm)
{
    uint32_t n = atomic_load(&pm->refs);
    while (n) {
        if (atomic_compare_exchange_weak(&pm->refs, &n, n + 1))
            return true;
    }
    return false;
}

static ULONG pm_release(shmc_proxymgr *pm)
{
    uint32_t left = atomic_fetch_sub(&pm->refs, 1) - 1;
    if (left)
        return left;
    /* The last reference: give the object its references back. */
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    if (pm->listed) {
        pm->listed = false;
        if (shmc_hmap_get(&pm->apt->proxy_by_oid, pm->oid) == pm)
            shmc_hmap_del(&pm->apt->proxy_by_oid, pm->oid);
        for (shmc_proxymgr **pp = &pm->apt->proxies; *pp; pp = &(*pp)->next) {
            if (*pp == pm) {
                *pp = pm->next;
                break;
            }
        }
    }
    if (atomic_load(&pm->state) != SHMC_PM_APT_GONE && !pm->conn) {
        for (shmc_ifproxy *p = pm->ifproxies; p; p = p->next) {
            shmc_stubmgr_drop_refs_locked(p->target->mgr, p->held_refs, false, &destroy);
            p->held_refs = 0;
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (pm->conn)
        shmc_remote_release_refs(pm); /* synchronous: the owner releases them */
    if (destroy)
        shmc_stubmgr_destroy(destroy); /* synchronous, in the object's apartment */
    proxymgr_free(pm);
    return 0;
}

void shmc_proxymgr_apt_gone_locked(shmc_proxymgr *pm, shmc_stubmgr **destroy, size_t *n, size_t cap)
{
    (void)cap; /* one object per proxy manager: at most one to destroy */
    if (shmc_hmap_get(&pm->apt->proxy_by_oid, pm->oid) == pm)
        shmc_hmap_del(&pm->apt->proxy_by_oid, pm->oid);
    atomic_store(&pm->state, SHMC_PM_APT_GONE);
    if (pm->conn)
        return; /* the apartment's shutdown releases these by message */
    shmc_stubmgr *d = NULL;
    for (shmc_ifproxy *p = pm->ifproxies; p; p = p->next) {
        shmc_stubmgr_drop_refs_locked(p->target->mgr, p->held_refs, false, &d);
        p->held_refs = 0;
    }
    if (d)
        destroy[(*n)++] = d;
}

/* ---- interface proxies ------------------------------------------------------ */

/* Finds the interface proxy for iid; under rt.lock. */
static shmc_ifproxy *find_ifproxy(shmc_proxymgr *pm, REFIID iid)
{
    for (shmc_ifproxy *p = pm->ifproxies; p; p = p->next) {
        if (IsEqualIID(&p->iid, iid))
            return p;
    }
    return NULL;
}

/* Adds (or merges into) the interface proxy for ifs, taking over one
 * strong reference on it; under rt.lock. */
static HRESULT add_ifproxy_locked(shmc_proxymgr *pm, shmc_ifstub *ifs, shmc_ifproxy **out)
{
    shmc_ifproxy *p = find_ifproxy(pm, &ifs->iid);
    if (!p) {
        p = shmc_calloc(1, sizeof(*p));
        if (!p)
            return E_OUTOFMEMORY;
        if (ifs->info) {
            p->hdr.lpVtbl = ifs->info->proxy_vtbl;
            p->hdr.info = ifs->info;
        }
        p->hdr.channel = &pm->channel;
        p->mgr = pm;
        p->target = ifs;
        p->target_apt = ifs->mgr->apt;
        shmc_ifstub_addref(ifs);
        p->iid = ifs->iid;
        p->next = pm->ifproxies;
        pm->ifproxies = p;
    }
    p->held_refs++;
    *out = p;
    return S_OK;
}

/* The pointer the application sees for an interface proxy. */
static void *ifproxy_ptr(shmc_ifproxy *p)
{
    if (IsEqualIID(&p->iid, &IID_IUnknown))
        return &p->mgr->IUnknown_iface;
    return &p->hdr;
}

/* The caller's apartment, checked against the proxy's (on every call: no
 * lock, no reference; only pointers compared). */
static HRESULT check_apartment(shmc_proxymgr *pm)
{
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return E_OUTOFMEMORY;
    shmc_apt *cur = th->apt ? th->apt : atomic_load(&shmc_g.mta); /* joined, or implicit MTA */
    if (!cur)
        return CO_E_NOTINITIALIZED;
    return cur == pm->apt ? S_OK : RPC_E_WRONG_THREAD;
}

static HRESULT check_state(shmc_proxymgr *pm)
{
    switch (atomic_load(&pm->state)) {
    case SHMC_PM_CONNECTED:
        /* the object's process died: every call fails at once */
        return pm->conn && shmc_conn_dead(pm->conn) ? RPC_E_SERVER_DIED : S_OK;
    case SHMC_PM_APT_GONE:
        return CO_E_OBJNOTCONNECTED;
    default:
        return RPC_E_DISCONNECTED;
    }
}

HRESULT shmc_proxymgr_check(shmc_proxymgr *pm)
{
    /* a proxy whose apartment ended says so to anyone */
    HRESULT hr = check_state(pm);
    return FAILED(hr) ? hr : check_apartment(pm);
}

/* Adds (or merges into) the interface proxy of a remote interface, taking
 * over one reference on it; under rt.lock. */
static HRESULT add_remote_ifproxy_locked(shmc_proxymgr *pm, const uint8_t ipid[16], REFIID iid,
                                         const ShmInterfaceInfo *info, shmc_ifproxy **out)
{
    shmc_ifproxy *p = find_ifproxy(pm, iid);
    if (!p) {
        p = shmc_calloc(1, sizeof(*p));
        if (!p)
            return E_OUTOFMEMORY;
        if (info) {
            p->hdr.lpVtbl = info->proxy_vtbl;
            p->hdr.info = info;
        }
        p->hdr.channel = &pm->channel;
        p->mgr = pm;
        p->iid = *iid;
        memcpy(p->ipid, ipid, 16);
        p->next = pm->ifproxies;
        pm->ifproxies = p;
    } else if (memcmp(p->ipid, ipid, 16) != 0) {
        return RPC_E_INVALID_DATA; /* the owner names one interface two ways */
    }
    p->held_refs++;
    *out = p;
    return S_OK;
}

/* Gives back one reference on a remote interface we could not keep. */
static void remote_give_back(shmc_conn *conn, const uint8_t ipid[16])
{
    shmc_op_ref op;
    memset(&op, 0, sizeof(op));
    memcpy(op.ipid, ipid, 16);
    op.count = 1;
    shmc_conn_op(conn, SHMC_OP_RELEASE, &op, sizeof(op), NULL, 0);
}

/* QueryInterface through a proxy of another process's object. */
static HRESULT pm_remote_qi(shmc_proxymgr *pm, REFIID riid, void **ppv)
{
    HRESULT hr = shmc_proxymgr_check(pm);
    if (FAILED(hr))
        return hr;
    const ShmInterfaceInfo *info = shmc_registry_find(riid);
    if (!info)
        return E_NOINTERFACE; /* no proxy for it here */
    uint8_t ipid[16];
    hr = shmc_remote_qi(pm, riid, ipid);
    if (FAILED(hr))
        return hr;
    shmc_ifproxy *p;
    shmc_plat_mutex_lock(&shmc_g.lock);
    hr = add_remote_ifproxy_locked(pm, ipid, riid, info, &p);
    if (SUCCEEDED(hr)) {
        pm_addref(pm);
        *ppv = ifproxy_ptr(p);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (FAILED(hr))
        remote_give_back(pm->conn, ipid);
    return hr;
}

static HRESULT pm_query_interface(shmc_proxymgr *pm, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    *ppv = NULL;
    if (!riid)
        return E_INVALIDARG;
    if (IsEqualIID(riid, &IID_shmc_ProxyManager)) { /* the runtime's own, from any thread */
        pm_addref(pm);
        *ppv = pm;
        return S_OK;
    }
    /* as COM's proxies: only in the apartment that unmarshaled the proxy,
     * even for what is answered here (a thread in no apartment too gets
     * RPC_E_WRONG_THREAD, as from Windows NT on); a proxy whose apartment
     * ended answers what it knows to anyone */
    if (atomic_load(&pm->state) != SHMC_PM_APT_GONE) {
        HRESULT hr = check_apartment(pm);
        if (FAILED(hr))
            return hr == CO_E_NOTINITIALIZED ? RPC_E_WRONG_THREAD : hr;
    }
    if (IsEqualIID(riid, &IID_IUnknown)) {
        pm_addref(pm);
        *ppv = &pm->IUnknown_iface;
        return S_OK;
    }
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_ifproxy *p = find_ifproxy(pm, riid);
    if (p) {
        pm_addref(pm);
        *ppv = ifproxy_ptr(p);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (p)
        return S_OK;

    if (pm->conn)
        return pm_remote_qi(pm, riid, ppv);

    /* Not known yet: ask the object, in its apartment. */
    shmc_ifstub *ifs;
    HRESULT hr = shmc_proxymgr_get_ifstub(pm, riid, &ifs);
    if (FAILED(hr))
        return hr;
    shmc_plat_mutex_lock(&shmc_g.lock);
    hr = add_ifproxy_locked(pm, ifs, &p);
    if (SUCCEEDED(hr)) {
        pm_addref(pm);
        *ppv = ifproxy_ptr(p);
    }
    shmc_stubmgr *destroy = NULL;
    if (FAILED(hr)) /* give the reference the QI took back */
        shmc_stubmgr_drop_refs_locked(ifs->mgr, 1, false, &destroy);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_ifstub_release(ifs);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    return hr;
}

HRESULT shmc_proxymgr_get_ifstub(shmc_proxymgr *pm, REFIID riid, shmc_ifstub **out)
{
    *out = NULL;
    /* a proxy whose apartment ended says so to anyone */
    HRESULT hr = check_state(pm);
    if (FAILED(hr))
        return hr;
    hr = check_apartment(pm);
    if (FAILED(hr))
        return hr;
    if (!IsEqualIID(riid, &IID_IUnknown) && !shmc_registry_find(riid))
        return E_NOINTERFACE; /* no proxy for it here */

    /* Known already: one more strong reference on it. */
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_stubmgr *sm = pm->stubmgr;
    if (!sm->connected) {
        shmc_plat_mutex_unlock(&shmc_g.lock);
        atomic_store(&pm->state, SHMC_PM_DISCONNECTED);
        return RPC_E_DISCONNECTED;
    }
    for (shmc_ifstub *s = sm->ifstubs; s; s = s->next) {
        if (IsEqualIID(&s->iid, riid)) {
            sm->extrefs++;
            shmc_ifstub_addref(s);
            shmc_plat_mutex_unlock(&shmc_g.lock);
            *out = s;
            return S_OK;
        }
    }
    shmc_ifstub *any = sm->ifstubs;
    shmc_ifstub_addref(any);
    shmc_plat_mutex_unlock(&shmc_g.lock);

    /* Remote QueryInterface, run in the object's apartment. */
    shmc_call *c;
    hr = shmc_call_new(&c, SHMC_CALL_QI);
    if (FAILED(hr)) {
        shmc_ifstub_release(any);
        return hr;
    }
    c->owns_refs = true;
    c->target = sm->apt;
    shmc_apt_addref(c->target);
    c->ifstub = any;
    c->iid = *riid;
    hr = shmc_call_run(c);
    if (shmc_call_given_up(hr))
        return hr; /* the call is the callee's now: it drops the result */
    if (SUCCEEDED(hr))
        hr = c->hr;
    if (SUCCEEDED(hr)) {
        *out = c->qi_result;
        c->qi_result = NULL;
    }
    shmc_call_free(c);
    if (hr == RPC_E_DISCONNECTED)
        atomic_store(&pm->state, SHMC_PM_DISCONNECTED);
    return hr;
}

/* ---- the identity ------------------------------------------------------------- */

static HRESULT STDMETHODCALLTYPE identity_QueryInterface(IUnknown *iface, REFIID riid, void **ppv)
{
    return pm_query_interface(impl_from_IUnknown(iface), riid, ppv);
}

static ULONG STDMETHODCALLTYPE identity_AddRef(IUnknown *iface)
{
    return pm_addref(impl_from_IUnknown(iface));
}

static ULONG STDMETHODCALLTYPE identity_Release(IUnknown *iface)
{
    return pm_release(impl_from_IUnknown(iface));
}

static const IUnknownVtbl identity_vtbl = {identity_QueryInterface, identity_AddRef,
                                           identity_Release};

shmc_proxymgr *shmc_proxymgr_from(IUnknown *punk)
{
    void *pm = NULL;
    if (FAILED(IUnknown_QueryInterface(punk, &IID_shmc_ProxyManager, &pm)) || !pm)
        return NULL;
    /* Only our managers answer that IID; still, check that it is one. */
    shmc_proxymgr *m = pm;
    if (m->IUnknown_iface.lpVtbl != &identity_vtbl)
        return NULL;
    return m; /* with a reference */
}

void shmc_proxymgr_release_ref(shmc_proxymgr *pm)
{
    pm_release(pm);
}

/* ---- the channel: how the proxy engine makes calls ------------------------------ */

static HRESULT ch_QueryInterface(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid, void **ppv)
{
    (void)from;
    return pm_query_interface(impl_from_channel(ch), riid, ppv);
}

static ULONG ch_AddRef(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)from;
    return pm_addref(impl_from_channel(ch));
}

static ULONG ch_Release(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)from;
    return pm_release(impl_from_channel(ch));
}

static HRESULT ch_GetBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame,
                            uint32_t size)
{
    shmc_proxymgr *pm = impl_from_channel(ch);
    shmc_ifproxy *p = (shmc_ifproxy *)from;
    if (frame->channel_data) {
        /* the engine asks again, with the size of its interface records:
         * a new request buffer for the same call */
        shmc_call *c = frame->channel_data;
        void *buf = size <= SHMC_CALL_INLINE ? c->req_inline : shmc_malloc(size);
        if (!buf)
            return E_OUTOFMEMORY; /* the first buffer stays */
        if (c->req_heap)
            shmc_free(c->req_ext);
        c->req_heap = buf != c->req_inline;
        if (c->req_heap)
            c->req_ext = buf;
        c->req_size = size;
        frame->request = buf;
        frame->request_size = size;
        return S_OK;
    }
    frame->request = NULL;
    HRESULT hr = check_state(pm);

    if (FAILED(hr))
        return hr;
    hr = check_apartment(pm);
    if (FAILED(hr))
        return hr;

    shmc_call *c;
    hr = shmc_call_new(&c, SHMC_CALL_METHOD);
    if (FAILED(hr))
        return hr;
    if (size > SHMC_CALL_INLINE) {
        c->req_ext = shmc_malloc(size);
        if (!c->req_ext) {
            shmc_call_free(c);
            return E_OUTOFMEMORY;
        }
        c->req_heap = true;
    }
    /* line 0 only where it changes (see call.c: the call may be watched) */
    SHMC_SET_CHANGED(c->req_size, size);
    SHMC_SET_CHANGED(c->method, frame->method);
    /* borrowed: the proxy keeps them alive while the caller waits */
    SHMC_SET_CHANGED(c->ifstub, p->target);
    c->target = p->target_apt;
    frame->request = shmc_call_req(c);
    frame->request_size = size;
    frame->marshaler = &shmc_inproc_marshaler;
    frame->channel_data = c;
    return S_OK;
}

static HRESULT ch_SendReceive(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame)
{
    (void)from;
    shmc_proxymgr *pm = impl_from_channel(ch);
    shmc_call *c = frame->channel_data;
    frame->reply = NULL;
    frame->reply_size = 0;
    HRESULT hr = shmc_call_run(c);
    if (shmc_call_given_up(hr)) {
        frame->channel_data = NULL; /* the call is the callee's now */
        return hr;
    }
    if (SUCCEEDED(hr))
        hr = c->hr;
    if (FAILED(hr)) {
        if (hr == RPC_E_DISCONNECTED)
            atomic_store(&pm->state, SHMC_PM_DISCONNECTED);
        return hr;
    }
    frame->reply = c->rep_size ? shmc_call_rep(c) : NULL;
    frame->reply_size = c->rep_size;
    return S_OK;
}

static void ch_FreeBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame)
{
    (void)ch;
    (void)from;
    shmc_call_free(frame->channel_data);
    frame->channel_data = NULL;
    frame->request = NULL;
    frame->reply = NULL;
}

static const ShmProxyChannelVtbl channel_vtbl = {
    ch_QueryInterface, ch_AddRef, ch_Release, ch_GetBuffer, ch_SendReceive, ch_FreeBuffer,
};

/* ---- unmarshaling into this apartment --------------------------------------------- */

HRESULT shmc_proxymgr_connect(shmc_apt *apt, shmc_stubmgr *sm, shmc_ifstub *ifs, bool transfer_ref,
                              REFIID riid, void **ppv)
{
    *ppv = NULL;
    shmc_proxymgr *fresh = shmc_calloc(1, sizeof(*fresh));
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_proxymgr *pm = shmc_hmap_get(&apt->proxy_by_oid, sm->oid);
    /* a manager on its way out (no references left) is not reused; one
     * that is reused gets the caller's reference at once */
    if (pm && (pm->stubmgr != sm || !pm_tryref(pm)))
        pm = NULL;
    shmc_proxymgr *reused = pm;
    HRESULT hr = S_OK;
    bool created = false;
    if (!pm) {
        if (!fresh || FAILED(shmc_hmap_put(&apt->proxy_by_oid, sm->oid, fresh))) {
            hr = E_OUTOFMEMORY;
            goto fail_locked;
        }
        pm = fresh;
        fresh = NULL;
        pm->IUnknown_iface.lpVtbl = &identity_vtbl;
        pm->channel.vtbl = &channel_vtbl;
        atomic_init(&pm->state, SHMC_PM_CONNECTED);
        pm->apt = apt;
        shmc_apt_addref(apt);
        pm->stubmgr = sm;
        atomic_fetch_add(&sm->refs, 1);
        pm->oxid = sm->apt->oxid;
        pm->oid = sm->oid;
        pm->listed = true;
        pm->next = apt->proxies;
        apt->proxies = pm;
        created = true;
    }
    if (!transfer_ref)
        sm->extrefs++;
    shmc_ifproxy *p;
    hr = add_ifproxy_locked(pm, ifs, &p);
    if (FAILED(hr)) {
        if (!transfer_ref)
            sm->extrefs--;
        if (created) { /* take the empty manager back out */
            shmc_hmap_del(&apt->proxy_by_oid, pm->oid);
            apt->proxies = pm->next;
            pm->listed = false;
            fresh = pm; /* freed below, with its references */
            shmc_apt_release(pm->apt);
            atomic_fetch_sub(&sm->refs, 1);
        }
        goto fail_locked;
    }
    if (created)
        pm_addref(pm); /* the caller's */
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_free(fresh);

    if (IsEqualIID(riid, &ifs->iid)) {
        *ppv = ifproxy_ptr(p);
        return S_OK;
    }
    hr = pm_query_interface(pm, riid, ppv);
    pm_release(pm); /* the interface we came in on */
    return hr;

fail_locked : {
    /* the record's reference is given back: unmarshal consumes it anyway */
    shmc_stubmgr *destroy = NULL;
    if (transfer_ref)
        shmc_stubmgr_drop_refs_locked(sm, 1, false, &destroy);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_free(fresh);
    if (reused)
        pm_release(reused);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    return hr;
}
}

HRESULT shmc_proxymgr_connect_remote(shmc_apt *apt, shmc_conn *conn, uint64_t oxid, uint64_t oid,
                                     const uint8_t ipid[16], REFIID iid, REFIID riid, void **ppv)
{
    *ppv = NULL;
    const ShmInterfaceInfo *info = NULL;
    if (!IsEqualIID(iid, &IID_IUnknown) && !(info = shmc_registry_find(iid))) {
        remote_give_back(conn, ipid); /* no proxy for it here */
        return E_NOINTERFACE;
    }
    shmc_proxymgr *fresh = shmc_calloc(1, sizeof(*fresh));
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_proxymgr *pm = shmc_hmap_get(&apt->proxy_by_oid, oid);
    if (pm && (pm->conn != conn || pm->oxid != oxid || !pm_tryref(pm)))
        pm = NULL; /* (a reused one has the caller's reference now) */
    HRESULT hr = S_OK;
    bool created = false;
    if (!pm) {
        if (!fresh || FAILED(shmc_hmap_put(&apt->proxy_by_oid, oid, fresh))) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            shmc_free(fresh);
            remote_give_back(conn, ipid);
            return E_OUTOFMEMORY;
        }
        pm = fresh;
        fresh = NULL;
        pm->IUnknown_iface.lpVtbl = &identity_vtbl;
        pm->channel.vtbl = &shmc_remote_channel_vtbl;
        atomic_init(&pm->state, SHMC_PM_CONNECTED);
        pm->apt = apt;
        shmc_apt_addref(apt);
        pm->conn = conn;
        shmc_conn_addref(conn);
        pm->oxid = oxid;
        pm->oid = oid;
        pm->listed = true;
        pm->next = apt->proxies;
        apt->proxies = pm;
        created = true;
    }
    shmc_ifproxy *p;
    hr = add_remote_ifproxy_locked(pm, ipid, iid, info, &p);
    if (FAILED(hr) && created) {
        shmc_hmap_del(&apt->proxy_by_oid, oid);
        apt->proxies = pm->next;
        pm->listed = false;
    }
    if (SUCCEEDED(hr) && created)
        pm_addref(pm); /* the caller's */
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_free(fresh);
    if (FAILED(hr)) {
        if (created)
            proxymgr_free(pm);
        else
            pm_release(pm);
        remote_give_back(conn, ipid);
        return hr;
    }
    if (IsEqualIID(riid, iid)) {
        *ppv = ifproxy_ptr(p);
        return S_OK;
    }
    hr = pm_query_interface(pm, riid, ppv);
    pm_release(pm); /* the interface we came in on */
    return hr;
}
