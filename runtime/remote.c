/*
 * remote.c - objects of other processes: the runtime operations that keep
 * references right across processes (client and owner sides), the channel
 * through which proxies of remote objects make calls, and the marshaler
 * for interface pointers inside cross-process frames.
 *
 * The owner trusts nothing a connection sends: an operation names records
 * and interfaces by random ids (nonces, 128-bit IPIDs), and an interface
 * is usable by a connection only while the owner has credited that
 * connection with a reference on it. See docs/transport.md.
 */
#include "alloc.h"
#include "conn.h"
#include "csprng.h"
#include "framerel.h"
#include "inproc.h"
#include "psengine.h"

#include <string.h>

/* ---- the client side -------------------------------------------------------- */

void shmc_op_record_from(shmc_op_record *op, const shmc_objref *rec)
{
    memset(op, 0, sizeof(*op));
    op->oxid = rec->oxid;
    op->oid = rec->oid;
    op->nonce = rec->nonce;
    memcpy(op->ipid, rec->ipid, 16);
    op->iid = rec->iid;
    op->mshlflags = rec->mshlflags;
}

static bool record_endpoint(const shmc_objref *rec, char out[SHMC_XNAME_MAX])
{
    if (!rec->endpoint_len || rec->endpoint_len >= SHMC_XNAME_MAX)
        return false;
    memcpy(out, rec->endpoint, rec->endpoint_len);
    out[rec->endpoint_len] = '\0';
    return SUCCEEDED(shmc_plat_region_name_check(out));
}

HRESULT shmc_remote_unmarshal(const shmc_objref *rec, shmc_apt *apt, REFIID riid, void **ppv)
{
    char endpoint[SHMC_XNAME_MAX];
    *ppv = NULL;
    if (!record_endpoint(rec, endpoint))
        return CO_E_OBJNOTCONNECTED; /* nothing says how to reach its process */
    shmc_plat_procid owner = {rec->pid, rec->start_time};
    shmc_conn *conn;
    HRESULT hr = shmc_conn_get(endpoint, &owner, &conn);
    if (FAILED(hr))
        return hr == RPC_E_SERVER_DIED ? CO_E_OBJNOTCONNECTED : hr;
    shmc_op_record op;
    shmc_op_record_from(&op, rec);
    hr = shmc_conn_op(conn, SHMC_OP_CONSUME, &op, sizeof(op), NULL, 0);
    if (SUCCEEDED(hr))
        hr = shmc_proxymgr_connect_remote(apt, conn, rec->oxid, rec->oid, rec->ipid, &rec->iid,
                                          riid, ppv);
    shmc_conn_release(conn);
    return hr;
}

HRESULT shmc_remote_release_record(const shmc_objref *rec)
{
    char endpoint[SHMC_XNAME_MAX];
    if (!record_endpoint(rec, endpoint))
        return CO_E_OBJNOTCONNECTED;
    shmc_plat_procid owner = {rec->pid, rec->start_time};
    shmc_conn *conn;
    HRESULT hr = shmc_conn_get(endpoint, &owner, &conn);
    if (FAILED(hr))
        return S_OK; /* its owner is gone, and with it what the record held */
    shmc_op_record op;
    shmc_op_record_from(&op, rec);
    hr = shmc_conn_op(conn, SHMC_OP_RELEASE_RECORD, &op, sizeof(op), NULL, 0);
    shmc_conn_release(conn);
    return hr == CO_E_OBJNOTCONNECTED ? S_OK : hr; /* already spent: as in COM */
}

/* Any interface of the proxy's object that this connection holds. */
static bool any_ipid(shmc_proxymgr *pm, uint8_t ipid[16])
{
    bool found = false;
    shmc_plat_mutex_lock(&shmc_g.lock);
    for (shmc_ifproxy *p = pm->ifproxies; p && !found; p = p->next) {
        if (p->held_refs) {
            memcpy(ipid, p->ipid, 16);
            found = true;
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return found;
}

HRESULT shmc_remote_qi(shmc_proxymgr *pm, REFIID riid, uint8_t ipid[16])
{
    shmc_op_ref op;
    memset(&op, 0, sizeof(op));
    if (!any_ipid(pm, op.ipid))
        return CO_E_OBJNOTCONNECTED;
    op.iid = *riid;
    return shmc_conn_op(pm->conn, SHMC_OP_QI, &op, sizeof(op), ipid, 16);
}

HRESULT shmc_remote_add_record(shmc_proxymgr *pm, REFIID riid, DWORD mshlflags, uint8_t ipid[16],
                               uint64_t *nonce)
{
    /* the interface asked for, as a reference of ours (QI if needed) */
    void *itf = NULL;
    HRESULT hr = IUnknown_QueryInterface(&pm->IUnknown_iface, riid, &itf);
    if (FAILED(hr))
        return hr;
    bool found = false;
    shmc_plat_mutex_lock(&shmc_g.lock);
    for (shmc_ifproxy *p = pm->ifproxies; p && !found; p = p->next) {
        if (IsEqualIID(&p->iid, riid)) {
            memcpy(ipid, p->ipid, 16);
            found = true;
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    bool borrowed = false;
    if (!found && IsEqualIID(riid, &IID_IUnknown)) {
        /* the proxy manager answers for IUnknown itself and has no
         * interface proxy for it: the record needs the owner's IUnknown
         * stub, which a remote QueryInterface gives with a reference of
         * this connection, held while the record is made */
        hr = shmc_remote_qi(pm, riid, ipid);
        if (FAILED(hr)) {
            IUnknown_Release((IUnknown *)itf);
            return hr;
        }
        found = borrowed = true;
    }
    if (found) {
        shmc_op_ref op;
        memset(&op, 0, sizeof(op));
        memcpy(op.ipid, ipid, 16);
        op.iid = *riid;
        op.mshlflags = mshlflags;
        hr = shmc_conn_op(pm->conn, SHMC_OP_ADD_RECORD, &op, sizeof(op), nonce, sizeof(*nonce));
        if (borrowed) {
            /* the record holds a reference of its own. Should this fail
             * (the server died, or hangs past the call timeout), the
             * reference stays counted for this connection, and the server
             * drops it with the connection's others when it ends */
            op.count = 1;
            (void)shmc_conn_op(pm->conn, SHMC_OP_RELEASE, &op, sizeof(op), NULL, 0);
        }
    } else {
        hr = E_NOINTERFACE;
    }
    IUnknown_Release((IUnknown *)itf);
    return hr;
}

void shmc_remote_release_refs(shmc_proxymgr *pm)
{
    for (;;) {
        shmc_op_ref op;
        memset(&op, 0, sizeof(op));
        shmc_plat_mutex_lock(&shmc_g.lock);
        shmc_ifproxy *p = pm->ifproxies;
        while (p && !p->held_refs)
            p = p->next;
        if (p) {
            memcpy(op.ipid, p->ipid, 16);
            op.count = p->held_refs;
            p->held_refs = 0;
        }
        shmc_plat_mutex_unlock(&shmc_g.lock);
        if (!p)
            return;
        if (!shmc_conn_dead(pm->conn)) /* a dead owner released them itself */
            shmc_conn_op(pm->conn, SHMC_OP_RELEASE, &op, sizeof(op), NULL, 0);
    }
}

/* ---- the channel of remote proxies ---------------------------------------------- */

static HRESULT rch_QueryInterface(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid,
                                  void **ppv)
{
    (void)from;
    shmc_proxymgr *pm = shmc_proxymgr_from_channel(ch);
    return IUnknown_QueryInterface(&pm->IUnknown_iface, riid, ppv);
}

static ULONG rch_AddRef(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)from;
    return IUnknown_AddRef(&shmc_proxymgr_from_channel(ch)->IUnknown_iface);
}

static ULONG rch_Release(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)from;
    return IUnknown_Release(&shmc_proxymgr_from_channel(ch)->IUnknown_iface);
}

/* Each thread keeps one call record for its remote calls (freed when the
 * thread ends). */
static SHMC_THREAD_LOCAL shmc_xcall *spare_xcall;

void shmc_remote_free_spare(void)
{
    shmc_free(spare_xcall);
    spare_xcall = NULL;
}

static HRESULT rch_GetBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame,
                             uint32_t size)
{
    (void)from;
    shmc_proxymgr *pm = shmc_proxymgr_from_channel(ch);
    if (frame->channel_data) { /* the engine's second request: a new size */
        shmc_xcall *x = frame->channel_data;
        HRESULT hr = shmc_xcall_resize(x, size);
        if (SUCCEEDED(hr)) {
            frame->request = x->request;
            frame->request_size = size;
        }
        return hr;
    }
    frame->request = NULL;
    HRESULT hr = shmc_proxymgr_check(pm);
    if (FAILED(hr))
        return hr;
    shmc_xcall *x = spare_xcall;
    if (x)
        spare_xcall = NULL;
    else if (!(x = shmc_malloc(sizeof(*x))))
        return E_OUTOFMEMORY;
    hr = shmc_xcall_begin(x, pm->conn, size);
    if (FAILED(hr)) {
        if (!spare_xcall)
            spare_xcall = x;
        else
            shmc_free(x);
        return hr;
    }
    frame->request = x->request;
    frame->request_size = size;
    frame->marshaler = &shmc_local_marshaler;
    frame->channel_data = x;
    return S_OK;
}

static HRESULT rch_SendReceive(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame)
{
    (void)ch;
    shmc_ifproxy *p = (shmc_ifproxy *)from;
    shmc_xcall *x = frame->channel_data;
    frame->reply = NULL;
    frame->reply_size = 0;
    const void *rep;
    uint32_t rep_len;
    HRESULT status;
    HRESULT hr = shmc_xcall_send(x, SHMC_OP_METHOD, frame->method, p->ipid, frame->request_size,
                                 &rep, &rep_len, &status);
    if (FAILED(hr)) {
        /* from SendReceive on the request's records are the channel's: a
         * server that died will never read them (those it consumed are
         * already spent, and released with its connection) */
        if (hr == RPC_E_SERVER_DIED && p->hdr.info)
            shmc_frame_release_records(p->hdr.info, frame->method, frame->request,
                                       frame->request_size, false, &shmc_local_marshaler);
        return hr;
    }
    if (FAILED(status)) {
        /* the server did not run the call: an [in] record it did not
         * consume (it could not reach this process to, or never read it)
         * would stay outstanding; releasing one it did consume does
         * nothing (only records of this call's own request are named) */
        if (p->hdr.info)
            shmc_frame_release_records(p->hdr.info, frame->method, frame->request,
                                       frame->request_size, false, &shmc_local_marshaler);
        return status;
    }
    frame->reply = rep;
    frame->reply_size = rep_len;
    return S_OK;
}

static void rch_FreeBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *frame)
{
    (void)ch;
    (void)from;
    shmc_xcall *x = frame->channel_data;
    if (!x)
        return;
    shmc_xcall_end(x); /* (a slot given up on stays with the server) */
    if (!spare_xcall)
        spare_xcall = x;
    else
        shmc_free(x);
    frame->channel_data = NULL;
    frame->request = NULL;
    frame->reply = NULL;
}

/* A method without parameters, in one step (psengine.h): the hot null
 * call's path from one call to the next is on the round trip's critical
 * path (docs/transport.md). */
static HRESULT rch_call_bare(ShmProxyChannel *ch, ShmProxyHeader *from, uint32_t method,
                             uint32_t size, uint32_t *reply_size, HRESULT *head)
{
    shmc_proxymgr *pm = shmc_proxymgr_from_channel(ch);
    *reply_size = 0;
    HRESULT hr = shmc_proxymgr_check(pm);
    if (FAILED(hr))
        return hr;
    shmc_xcall x; /* (no records: nothing outlives the call) */
    hr = shmc_xcall_begin(&x, pm->conn, size);
    if (FAILED(hr))
        return hr;
    if (size)
        memset(x.request, 0, size);
    const void *rep;
    uint32_t rep_len;
    HRESULT status;
    hr = shmc_xcall_send(&x, SHMC_OP_METHOD, method, ((shmc_ifproxy *)from)->ipid, size, &rep,
                         &rep_len, &status);
    if (SUCCEEDED(hr))
        hr = status;
    if (SUCCEEDED(hr)) {
        *reply_size = rep_len;
        if (rep_len >= 4)
            memcpy(head, rep, 4); /* (a copy: the reply is the peer's memory) */
    }
    shmc_xcall_end(&x);
    return hr;
}

const ShmProxyChannelVtbl shmc_remote_channel_vtbl = {
    rch_QueryInterface, rch_AddRef, rch_Release, rch_GetBuffer, rch_SendReceive, rch_FreeBuffer,
};

void shmc_remote_setup(void)
{
    shmc_ps_set_bare_call(&shmc_remote_channel_vtbl, rch_call_bare);
}

/* ---- interface pointers in cross-process frames ---------------------------------- */

static HRESULT lm_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **data,
                          uint32_t *size)
{
    (void)m;
    *data = NULL;
    *size = 0;
    shmc_objref rec;
    HRESULT hr = shmc_marshal_record(&rec, iid, itf, MSHCTX_LOCAL, MSHLFLAGS_NORMAL);
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

static HRESULT lm_unmarshal(ShmItfMarshaler *m, REFIID iid, const void *data, uint32_t size,
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

static void lm_release(ShmItfMarshaler *m, const void *data, uint32_t size)
{
    (void)m;
    shmc_objref rec;
    if (SUCCEEDED(shmc_objref_decode(data, size, &rec)))
        shmc_release_record(&rec);
}

static const ShmItfMarshalerVtbl local_marshaler_vtbl = {lm_marshal, lm_unmarshal, lm_release};

ShmItfMarshaler shmc_local_marshaler = {&local_marshaler_vtbl};

/* ---- the owner's side -------------------------------------------------------------- */

/* The record an operation names, in this process; under rt.lock. */
static shmc_stubmgr *find_record_locked(const shmc_op_record *op, shmc_record ***link)
{
    shmc_stubmgr *sm = shmc_stubmgr_find_oid(op->oid);
    if (!sm || !sm->connected || sm->apt->oxid != op->oxid)
        return NULL;
    for (shmc_record **pp = &sm->records; *pp; pp = &(*pp)->next) {
        shmc_record *r = *pp;
        if (r->nonce == op->nonce && r->mshlflags == op->mshlflags &&
            !memcmp(r->ifstub->ipid.b, op->ipid, 16) && IsEqualIID(&r->ifstub->iid, &op->iid)) {
            *link = pp;
            return sm;
        }
    }
    return NULL;
}

static HRESULT serve_consume(shmc_conn *c, const shmc_op_record *op, shmc_op_done *done)
{
    HRESULT hr;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_record **link;
    shmc_stubmgr *sm = find_record_locked(op, &link);
    if (!sm) {
        shmc_plat_mutex_unlock(&shmc_g.lock);
        return op->mshlflags == MSHLFLAGS_TABLEWEAK ? CO_E_OBJNOTREG : CO_E_OBJNOTCONNECTED;
    }
    shmc_record *r = *link;
    shmc_ifstub *ifs = r->ifstub;
    bool normal = r->mshlflags == MSHLFLAGS_NORMAL;
    if (!normal)
        sm->extrefs++; /* a table record gives a new reference each time */
    hr = shmc_conn_credit_locked(c, ifs, 1);
    if (SUCCEEDED(hr)) {
        done->credited = true;
        memcpy(done->ipid, ifs->ipid.b, 16);
    }
    shmc_stubmgr *destroy = NULL;
    if (normal) {
        /* honoured once: its reference moves to the connection; or, if
         * that failed, goes (the reader consumed the record whatever
         * happened, and sends no RELEASE_RECORD for it) */
        *link = r->next;
        shmc_record_free_locked(r);
        if (FAILED(hr))
            shmc_stubmgr_drop_refs_locked(sm, 1, false, &destroy);
    } else if (FAILED(hr)) {
        sm->extrefs--;
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy); /* in the object's apartment */
    return hr;
}

static HRESULT serve_release_record(const shmc_op_record *op)
{
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_record **link;
    shmc_stubmgr *sm = find_record_locked(op, &link);
    if (sm) {
        shmc_record *r = *link;
        bool weak = r->mshlflags == MSHLFLAGS_TABLEWEAK;
        *link = r->next;
        shmc_record_free_locked(r);
        shmc_stubmgr_drop_refs_locked(sm, 1, weak, &destroy);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    return sm ? S_OK : CO_E_OBJNOTCONNECTED;
}

void shmc_record_free_locked(shmc_record *r)
{
    shmc_conn *c = r->made_for;
    if (c) {
        if (r->made_prev)
            r->made_prev->made_next = r->made_next;
        else
            c->made = r->made_next;
        if (r->made_next)
            r->made_next->made_prev = r->made_prev;
        c->acct->nmade--;
    }
    shmc_free(r);
}

/* Counts a record (in its stub manager's list) as made for the client;
 * under rt.lock. RPC_E_OUT_OF_RESOURCES past SHMC_CONN_MAX_MADE for the
 * client process (all its connections together). */
static HRESULT note_made_locked(shmc_conn *c, shmc_record *r)
{
    if (r->made_for)
        return S_OK; /* (a record travels in one reply only) */
    if (c->acct->nmade >= SHMC_CONN_MAX_MADE)
        return RPC_E_OUT_OF_RESOURCES;
    r->made_for = c;
    r->made_prev = NULL;
    r->made_next = c->made;
    if (c->made)
        c->made->made_prev = r;
    c->made = r;
    c->acct->nmade++;
    return S_OK;
}

void shmc_remote_revoke_made(shmc_conn *c)
{
    for (;;) {
        shmc_stubmgr *destroy = NULL;
        shmc_plat_mutex_lock(&shmc_g.lock);
        if (!c->made) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            return;
        }
        /* every record of that object made for c, in one walk of its list */
        shmc_stubmgr *sm = c->made->ifstub->mgr;
        uint32_t strong = 0, weak = 0;
        for (shmc_record **pp = &sm->records; *pp;) {
            shmc_record *r = *pp;
            if (r->made_for != c) {
                pp = &r->next;
                continue;
            }
            if (r->mshlflags == MSHLFLAGS_TABLEWEAK)
                weak++;
            else
                strong++;
            *pp = r->next;
            shmc_record_free_locked(r);
        }
        shmc_stubmgr_drop_refs_locked(sm, strong, false, &destroy);
        shmc_stubmgr_drop_refs_locked(sm, weak, true, &destroy);
        shmc_plat_mutex_unlock(&shmc_g.lock);
        if (destroy)
            shmc_stubmgr_destroy(destroy); /* in the object's apartment */
    }
}

/* Notes a record we made for the client's reply (its private encoding)
 * as made for it. */
static void note_reply_record(shmc_conn *c, const void *data, uint32_t size)
{
    shmc_objref rec;
    if (FAILED(shmc_objref_decode(data, size, &rec)) || rec.pid != shmc_g.self.pid ||
        rec.start_time != shmc_g.self.start_time)
        return; /* not ours (a proxy's record names its own owner) */
    shmc_plat_mutex_lock(&shmc_g.lock);
    /* a record that cannot be noted is revoked now rather than leaked */
    shmc_stubmgr *destroy = NULL;
    shmc_stubmgr *sm = shmc_stubmgr_find_oid(rec.oid);
    shmc_record **link = sm ? &sm->records : NULL;
    while (link && *link && (*link)->nonce != rec.nonce)
        link = &(*link)->next; /* (a reply's record is new: near the head) */
    if (link && *link && (atomic_load(&c->dead) || FAILED(note_made_locked(c, *link)))) {
        shmc_record *r = *link;
        bool weak = r->mshlflags == MSHLFLAGS_TABLEWEAK;
        *link = r->next;
        shmc_record_free_locked(r);
        shmc_stubmgr_drop_refs_locked(sm, 1, weak, &destroy);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
}

static HRESULT rm_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **data,
                          uint32_t *size)
{
    shmc_conn *c = (shmc_conn *)((char *)m - offsetof(shmc_conn, reply_marshaler));
    HRESULT hr = lm_marshal(m, iid, itf, data, size);
    if (SUCCEEDED(hr))
        note_reply_record(c, *data, *size);
    return hr;
}

const ShmItfMarshalerVtbl shmc_reply_marshaler_vtbl = {rm_marshal, lm_unmarshal, lm_release};

static HRESULT serve_add_record(shmc_conn *c, const shmc_op_ref *op, shmc_op_done *done)
{
    uint32_t flags = op->mshlflags & ~(uint32_t)MSHLFLAGS_NOPING;
    if (flags != MSHLFLAGS_NORMAL && flags != MSHLFLAGS_TABLESTRONG && flags != MSHLFLAGS_TABLEWEAK)
        return E_INVALIDARG;
    shmc_ifstub *ifs = shmc_conn_lookup_ipid(c, op->ipid); /* only what it holds */
    if (!ifs)
        return CO_E_OBJNOTCONNECTED;
    shmc_record *r = shmc_calloc(1, sizeof(*r));
    uint64_t n = shmc_random_u64();
    HRESULT hr = S_OK;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_stubmgr *sm = ifs->mgr;
    if (!r || !n)
        hr = E_OUTOFMEMORY;
    else if (!sm->connected)
        hr = CO_E_OBJNOTCONNECTED;
    if (SUCCEEDED(hr) && atomic_load(&c->dead))
        hr = RPC_E_DISCONNECTED; /* its records were revoked already */
    if (SUCCEEDED(hr))
        hr = note_made_locked(c, r);
    if (SUCCEEDED(hr)) {
        if (flags == MSHLFLAGS_TABLEWEAK)
            sm->weakrefs++;
        else
            sm->extrefs++;
        r->nonce = n;
        r->mshlflags = flags;
        r->ifstub = ifs;
        r->next = sm->records;
        sm->records = r;
        r = NULL;
        done->made = true;
        done->nonce = n;
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    shmc_free(r);
    shmc_ifstub_release(ifs);
    return hr;
}

static HRESULT serve_qi(shmc_conn *c, const shmc_op_ref *op, shmc_op_done *done)
{
    shmc_ifstub *ifs = shmc_conn_lookup_ipid(c, op->ipid);
    if (!ifs)
        return CO_E_OBJNOTCONNECTED;
    shmc_stubmgr *sm = ifs->mgr;
    shmc_ifstub *got = NULL;
    HRESULT hr;
    if (sm->apt->model == SHMC_MTA) {
        hr = shmc_stubmgr_qi(sm, &op->iid, &got); /* receivers are MTA threads */
    } else {
        shmc_call *call;
        hr = shmc_call_new(&call, SHMC_CALL_QI);
        if (SUCCEEDED(hr)) {
            call->owns_refs = true;
            call->target = sm->apt;
            shmc_apt_addref(call->target);
            call->ifstub = ifs;
            shmc_ifstub_addref(ifs);
            call->iid = op->iid;
            hr = shmc_call_run(call);
            if (SUCCEEDED(hr))
                hr = call->hr;
            if (SUCCEEDED(hr)) {
                got = call->qi_result;
                call->qi_result = NULL;
            }
            if (!shmc_call_given_up(hr))
                shmc_call_free(call);
        }
    }
    shmc_ifstub_release(ifs);
    if (FAILED(hr))
        return hr;
    /* the QI's reference (extrefs) now belongs to the connection */
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    hr = shmc_conn_credit_locked(c, got, 1);
    if (FAILED(hr))
        shmc_stubmgr_drop_refs_locked(got->mgr, 1, false, &destroy);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (SUCCEEDED(hr)) {
        done->credited = true;
        memcpy(done->ipid, got->ipid.b, 16);
    }
    shmc_ifstub_release(got);
    if (destroy)
        shmc_stubmgr_destroy(destroy);
    return hr;
}

static HRESULT serve_release(shmc_conn *c, const shmc_op_ref *op)
{
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    HRESULT hr = shmc_conn_debit_locked(c, op->ipid, op->count, &destroy);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy); /* synchronous, in the object's apartment */
    return hr;
}

HRESULT shmc_remote_serve_op(shmc_conn *c, uint32_t op, const void *in, uint32_t in_len, void *out,
                             uint32_t out_cap, uint32_t *out_len, shmc_op_done *done)
{
    *out_len = 0;
    memset(done, 0, sizeof(*done));
    /* a private copy: the request lies in memory the client can change */
    union {
        shmc_op_record rec;
        shmc_op_ref ref;
    } a;
    switch (op) {
    case SHMC_OP_CONSUME:
    case SHMC_OP_RELEASE_RECORD:
        if (in_len != sizeof(a.rec))
            return RPC_E_INVALID_DATA;
        memcpy(&a.rec, in, sizeof(a.rec));
        return op == SHMC_OP_CONSUME ? serve_consume(c, &a.rec, done)
                                     : serve_release_record(&a.rec);
    case SHMC_OP_ADD_RECORD:
    case SHMC_OP_QI:
    case SHMC_OP_RELEASE:
        if (in_len != sizeof(a.ref))
            return RPC_E_INVALID_DATA;
        memcpy(&a.ref, in, sizeof(a.ref));
        if (op == SHMC_OP_RELEASE)
            return serve_release(c, &a.ref);
        if (op == SHMC_OP_ADD_RECORD) {
            HRESULT hr = serve_add_record(c, &a.ref, done);
            if (SUCCEEDED(hr) && out_cap >= sizeof(done->nonce)) {
                memcpy(out, &done->nonce, sizeof(done->nonce));
                *out_len = sizeof(done->nonce);
            }
            return hr;
        } else {
            HRESULT hr = serve_qi(c, &a.ref, done);
            if (SUCCEEDED(hr) && out_cap >= 16) {
                memcpy(out, done->ipid, 16);
                *out_len = 16;
            }
            return hr;
        }
    default:
        return RPC_E_INVALIDMETHOD;
    }
}

void shmc_remote_undo_op(shmc_conn *c, const shmc_op_done *done)
{
    /* an operation credits a reference or makes a record, not both */
    shmc_stubmgr *destroy = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    if (done->credited) {
        shmc_conn_debit_locked(c, done->ipid, 1, &destroy);
    } else if (done->made) {
        /* still made for this connection (not revoked, nor its stub
         * manager gone): taken out of its stub manager's records */
        shmc_record *r = c->made;
        while (r && r->nonce != done->nonce)
            r = r->made_next;
        if (r) {
            shmc_stubmgr *sm = r->ifstub->mgr;
            for (shmc_record **pp = &sm->records; *pp; pp = &(*pp)->next)
                if (*pp == r) {
                    *pp = r->next;
                    break;
                }
            bool weak = r->mshlflags == MSHLFLAGS_TABLEWEAK;
            shmc_record_free_locked(r);
            shmc_stubmgr_drop_refs_locked(sm, 1, weak, &destroy);
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (destroy)
        shmc_stubmgr_destroy(destroy); /* in the object's apartment */
}
