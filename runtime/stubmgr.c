/*
 * stubmgr.c - stub managers: an exported object, its interface stubs, the
 * references other apartments hold on it, and the records (marshaled
 * interfaces) outstanding for it.
 *
 * Reference rules (COM's, as Wine's conformance tests pin them down):
 *  - a NORMAL or TABLESTRONG record, and every reference a proxy holds,
 *    is a strong reference (extrefs); a TABLEWEAK record a weak one;
 *  - the stub manager keeps the object while it is listed; it is
 *    destroyed when a release brings extrefs to 0 (even if weak records
 *    remain: TABLEWEAK does not keep an object alive once its strong users
 *    are gone), when the last weak record is released with no strong
 *    reference left, by ShmCoDisconnectObject, or when its apartment ends;
 *  - destroying takes it out of the tables at once (new calls and
 *    unmarshals fail) and releases the object in its own apartment.
 */
#include "alloc.h"
#include "csprng.h"
#include "rt.h"
#include "xport.h"

#include <string.h>

void shmc_ifstub_addref(shmc_ifstub *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void shmc_ifstub_release(shmc_ifstub *s)
{
    if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
        shmc_free(s);
}

/*
 * Calls into an interface stub. A call enters the stub (gets the
 * interface, unless the stub is closed) and leaves it when done; closing
 * lets go of the stub's reference at once if no call is in, else the last
 * call out does, on its own thread. A call is "in" one of two ways:
 *
 *  - counted in s->busy: an atomic add each way (any thread, always);
 *  - in a hazard record: where the OS has a process-wide barrier
 *    (shmc_plat_process_barrier), a thread that runs calls takes one of
 *    SHMC_HAZARDS records (a cache line each) and enters by storing the
 *    stub's address there and then reading s->busy, and leaves by storing
 *    NULL and reading s->busy again: plain stores and loads, where the
 *    count's read-modify-writes each wait for the stores before them (a
 *    cross-process call's reply among them: two of those on the way from
 *    a request to its reply were a tenth of a hot call).
 *
 * Whoever would release the interface because no call is in (the closer,
 * which sets SHMC_IFS_CLOSED first; the last counted call out of a closed
 * stub; a recorded call that finds the stub closed when it leaves) runs
 * the process-wide barrier and then reads the records: a thread whose
 * record store it does not see ran a full barrier before that store, so
 * its read of s->busy that follows sees CLOSED and it does not call. So
 * either the releaser sees the call in (and leaves the release to it), or
 * the call sees the stub closed. The exchange that takes the interface out
 * makes the release happen once. Calls a thread runs one inside another
 * (an STA's callbacks) use the count for the inner ones. The records are
 * read only for stubs a recorded call entered (s->hazarded, set by the
 * first one with a sequentially consistent store, before its record).
 */
typedef struct hazard {
    _Alignas(SHMC_LINE) shmc_ifstub *_Atomic in;
} hazard;

static hazard hazards[SHMC_HAZARDS];
static _Atomic uint64_t hazards_used; /* bit i: hazards[i] belongs to a thread */
static _Atomic bool hazards_on;
/* on since set-up, even if a test turned them off since: a call that
 * entered through a record leaves through it (without any, as on
 * Windows, calls do not look their thread up: a lookup of mingw-w64's
 * emulated TLS costs 14 ns under Wine) */
static _Atomic bool hazards_ever;

void shmc_hazards_setup(void)
{
    bool on = shmc_plat_process_barrier_setup();
    if (on)
        atomic_store(&hazards_ever, true);
    atomic_store(&hazards_on, on);
}

void shmc_hazards_disable(void)
{
    atomic_store(&hazards_on, false);
}

bool shmc_hazards_enabled(void)
{
    return atomic_load(&hazards_on);
}

unsigned shmc_hazards_in_use(void)
{
    return (unsigned)__builtin_popcountll(atomic_load(&hazards_used));
}

void shmc_hazard_free(shmc_thread *th)
{
    if (th->hazard >= 0)
        atomic_fetch_and(&hazards_used, ~(UINT64_C(1) << th->hazard));
    th->hazard = SHMC_HAZARD_NONE;
}

/* The calling thread's record, taken on its first use; NULL if none. */
static hazard *hazard_of(shmc_thread *th)
{
    if (!atomic_load_explicit(&hazards_on, memory_order_relaxed))
        return NULL;
    if (th->hazard >= 0)
        return &hazards[th->hazard];
    if (th->hazard == SHMC_HAZARD_NONE)
        return NULL;
    uint64_t used = atomic_load(&hazards_used);
    while (~used) {
        uint64_t bit = ~used & (used + 1); /* the lowest free one */
        if (atomic_compare_exchange_weak(&hazards_used, &used, used | bit)) {
            th->hazard = __builtin_ctzll(bit);
            return &hazards[th->hazard];
        }
    }
    th->hazard = SHMC_HAZARD_NONE; /* all taken: this thread counts */
    return NULL;
}

/* A closed stub nobody may be in any more, as far as a releaser can tell:
 * the stub's reference, if it is the one to take it out. */
static IUnknown *take_if_nobody_in(shmc_ifstub *s)
{
    if (atomic_load(&s->hazarded)) {
        if (!shmc_plat_process_barrier())
            return NULL; /* cannot tell: kept rather than pulled from under a call */
        if (atomic_load(&s->busy) != SHMC_IFS_CLOSED)
            return NULL; /* a counted call is in: it releases */
        for (uint32_t i = 0; i < SHMC_HAZARDS; i++)
            if (atomic_load(&hazards[i].in) == s)
                return NULL; /* a recorded call is in: it releases */
    }
    return atomic_exchange_explicit(&s->itf, NULL, memory_order_acq_rel);
}

static void release_if_nobody_in(shmc_ifstub *s)
{
    IUnknown *itf = take_if_nobody_in(s);
    if (itf)
        IUnknown_Release(itf);
}

void *shmc_ifstub_enter(shmc_ifstub *s)
{
    bool ever = atomic_load_explicit(&hazards_ever, memory_order_relaxed);
    shmc_thread *th = ever ? shmc_thread_get() : NULL;
    hazard *hz = th && th->entered++ == 0 ? hazard_of(th) : NULL;
    if (hz) {
        if (!atomic_load_explicit(&s->hazarded, memory_order_relaxed))
            atomic_store(&s->hazarded, 1); /* (sequentially consistent) */
        atomic_store_explicit(&hz->in, s, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the other half: the releaser's barrier */
        if (!(atomic_load(&s->busy) & SHMC_IFS_CLOSED))
            return atomic_load_explicit(&s->itf, memory_order_relaxed);
        atomic_store_explicit(&hz->in, NULL, memory_order_release);
        th->entered--;
        release_if_nobody_in(s); /* a releaser may have seen us in */
        return NULL;
    }
    uint32_t n = atomic_fetch_add_explicit(&s->busy, 1, memory_order_acquire);
    if (n & SHMC_IFS_CLOSED) {
        shmc_ifstub_leave(s);
        return NULL;
    }
    /* not closed with a call in flight: nobody takes the pointer out */
    return atomic_load_explicit(&s->itf, memory_order_relaxed);
}

void shmc_ifstub_leave(shmc_ifstub *s)
{
    bool ever = atomic_load_explicit(&hazards_ever, memory_order_relaxed);
    shmc_thread *th = ever ? shmc_thread_peek() : NULL;
    if (th && th->entered && --th->entered == 0 && th->hazard >= 0 &&
        atomic_load_explicit(&hazards[th->hazard].in, memory_order_relaxed) == s) {
        atomic_store_explicit(&hazards[th->hazard].in, NULL, memory_order_release);
        atomic_signal_fence(memory_order_seq_cst);
        if (atomic_load_explicit(&s->busy, memory_order_acquire) & SHMC_IFS_CLOSED)
            release_if_nobody_in(s);
        return;
    }
    uint32_t n = atomic_fetch_sub_explicit(&s->busy, 1, memory_order_acq_rel);
    if (n != (SHMC_IFS_CLOSED | 1u))
        return;
    /* the last counted call out of a closed stub: the stub's reference
     * (unless the closer, or another call that came in late, took it
     * already, or a recorded call is still in) */
    release_if_nobody_in(s);
}

/* Closes s (under its manager's lock): the stub's reference if no call is
 * in flight (the caller releases it, outside the locks), else NULL and the
 * last call to leave releases it. */
static IUnknown *ifstub_close(shmc_ifstub *s)
{
    uint32_t n = atomic_fetch_or_explicit(&s->busy, SHMC_IFS_CLOSED, memory_order_acq_rel);
    if (n & SHMC_IFS_CLOSED)
        return NULL; /* closed before */
    if (n != 0)
        return NULL; /* counted calls in flight: the last one out releases it */
    return take_if_nobody_in(s);
}

void shmc_stubmgr_release(shmc_stubmgr *sm)
{
    if (!sm || atomic_fetch_sub_explicit(&sm->refs, 1, memory_order_acq_rel) != 1)
        return;
    shmc_ifstub *s = sm->ifstubs;
    while (s) {
        shmc_ifstub *next = s->next;
        shmc_ifstub_release(s);
        s = next;
    }
    shmc_record *r = sm->records;
    while (r) {
        shmc_record *next = r->next;
        shmc_free(r);
        r = next;
    }
    shmc_apt_release(sm->apt);
    shmc_plat_mutex_fini(&sm->lock);
    shmc_free(sm);
}

/* ---- the IPID table: interface stubs by their random ids (cross-process
 * calls name their target by IPID) ---------------------------------------- */

static uint64_t ipid_key(const uint8_t ipid[16])
{
    uint64_t k;
    memcpy(&k, ipid, 8);
    return shmc_hmap_mix(k);
}

HRESULT shmc_ipid_add_locked(shmc_ifstub *ifs)
{
    return shmc_hmap_put(&shmc_g.ipids, ipid_key(ifs->ipid.b), ifs);
}

void shmc_ipid_del_locked(shmc_ifstub *ifs)
{
    uint64_t k = ipid_key(ifs->ipid.b);
    if (shmc_hmap_get(&shmc_g.ipids, k) == ifs)
        shmc_hmap_del(&shmc_g.ipids, k);
}

shmc_ifstub *shmc_ipid_find_locked(const uint8_t ipid[16])
{
    shmc_ifstub *s = shmc_hmap_get(&shmc_g.ipids, ipid_key(ipid));
    return s && !memcmp(s->ipid.b, ipid, 16) ? s : NULL;
}

shmc_stubmgr *shmc_stubmgr_find_oid(uint64_t oid)
{
    return shmc_hmap_get(&shmc_g.stub_by_oid, oid);
}

void shmc_stubmgr_unlist_locked(shmc_stubmgr *sm)
{
    if (!sm->connected)
        return;
    sm->connected = false;
    shmc_ref_gen_bump_locked();
    shmc_hmap_del(&shmc_g.stub_by_oid, sm->oid);
    if (shmc_hmap_get(&shmc_g.stub_by_identity, sm->idkey) == sm)
        shmc_hmap_del(&shmc_g.stub_by_identity, sm->idkey);
    for (shmc_stubmgr **pp = &sm->apt->stubs; *pp; pp = &(*pp)->next) {
        if (*pp == sm) {
            *pp = sm->next;
            break;
        }
    }
    sm->next = NULL;
    for (shmc_ifstub *s = sm->ifstubs; s; s = s->next)
        shmc_ipid_del_locked(s);
    /* outstanding records die with it: they can no longer be honoured */
    shmc_record *r = sm->records;
    while (r) {
        shmc_record *next = r->next;
        shmc_record_free_locked(r);
        r = next;
    }
    sm->records = NULL;
    sm->extrefs = sm->weakrefs = 0;
}

void shmc_stubmgr_drop_refs_locked(shmc_stubmgr *sm, uint32_t n, bool weak, shmc_stubmgr **destroy)
{
    if (!sm->connected || n == 0)
        return;
    bool last;
    if (weak) {
        sm->weakrefs = sm->weakrefs > n ? sm->weakrefs - n : 0;
        last = sm->weakrefs == 0 && sm->extrefs == 0;
    } else {
        sm->extrefs = sm->extrefs > n ? sm->extrefs - n : 0;
        last = sm->extrefs == 0;
    }
    if (!last)
        return;
    shmc_stubmgr_unlist_locked(sm);
    /* the list's reference now belongs to whoever destroys it */
    *destroy = sm;
}

void shmc_stubmgr_release_object(shmc_stubmgr *sm)
{
    enum { INLINE = 8 };
    void *inl[INLINE], **ptrs = inl;
    size_t n = 0, cap = INLINE;

    /* The interface list is stable once the stub manager is unlisted (no
     * interface stub is added to a disconnected one), but look under the
     * lock anyway: a QI may still be finishing on an MTA thread. */
    shmc_plat_mutex_lock(&shmc_g.lock);
    size_t count = 1;
    for (shmc_ifstub *s = sm->ifstubs; s; s = s->next)
        count++;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (count > cap) {
        void **heap = shmc_malloc(count * sizeof(*heap));
        if (heap) {
            ptrs = heap;
            cap = count;
        }
    }

    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_plat_mutex_lock(&sm->lock);
    bool more = false;
    for (shmc_ifstub *s = sm->ifstubs; s; s = s->next) {
        if (atomic_load_explicit(&s->busy, memory_order_relaxed) & SHMC_IFS_CLOSED)
            continue;
        if (n == cap) {
            more = true; /* no room to note what it releases: next round */
            continue;
        }
        IUnknown *itf = ifstub_close(s);
        if (itf)
            ptrs[n++] = itf;
    }
    IUnknown *identity = more ? NULL : sm->identity;
    if (!more)
        sm->identity = NULL;
    shmc_plat_mutex_unlock(&sm->lock);
    shmc_plat_mutex_unlock(&shmc_g.lock);

    for (size_t i = 0; i < n; i++)
        IUnknown_Release((IUnknown *)ptrs[i]);
    if (ptrs != inl)
        shmc_free(ptrs);
    if (more) /* out of memory for the list: release the rest in rounds */
        shmc_stubmgr_release_object(sm);
    else if (identity)
        IUnknown_Release(identity);
}

/* true if the calling thread runs code of `apt` (so its objects may be
 * called here). */
static bool thread_in(shmc_apt *apt)
{
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return false;
    if (th->apt == apt)
        return true;
    /* a thread in the implicit MTA may call MTA objects */
    return apt->model == SHMC_MTA && !th->inits && !th->apt;
}

void shmc_stubmgr_destroy(shmc_stubmgr *sm)
{
    if (!sm)
        return;
    if (thread_in(sm->apt)) {
        shmc_stubmgr_release_object(sm);
    } else {
        shmc_call *c;
        HRESULT hr = shmc_call_new(&c, SHMC_CALL_DESTROY);
        if (SUCCEEDED(hr)) {
            c->owns_refs = true;
            c->target = sm->apt;
            shmc_apt_addref(c->target);
            c->stubmgr = sm;
            atomic_fetch_add(&sm->refs, 1);
            hr = shmc_call_run(c);
            if (!shmc_call_given_up(hr)) /* else the call is the callee's */
                shmc_call_free(c);
        }
        if (hr == RPC_E_DISCONNECTED || hr == E_OUTOFMEMORY) {
            /* The apartment has ended (its thread will never call the
             * object again) or we cannot reach it: release here rather
             * than leak the object. */
            shmc_stubmgr_release_object(sm);
        }
        /* given up: the apartment releases it when it gets to it */
    }
    shmc_stubmgr_release(sm);
}

HRESULT shmc_stubmgr_qi(shmc_stubmgr *sm, REFIID iid, shmc_ifstub **out)
{
    *out = NULL;
    shmc_plat_mutex_lock(&sm->lock);
    IUnknown *identity = sm->identity;
    if (identity)
        IUnknown_AddRef(identity);
    shmc_plat_mutex_unlock(&sm->lock);
    if (!identity)
        return RPC_E_DISCONNECTED;

    const ShmInterfaceInfo *info = NULL;
    if (!IsEqualIID(iid, &IID_IUnknown)) {
        info = shmc_registry_find(iid);
        if (!info) {
            IUnknown_Release(identity);
            return E_NOINTERFACE; /* no proxy could use it */
        }
    }
    void *itf = NULL;
    HRESULT hr = IUnknown_QueryInterface(identity, iid, &itf);
    IUnknown_Release(identity);
    if (FAILED(hr) || !itf)
        return FAILED(hr) ? hr : E_NOINTERFACE;

    shmc_ifstub *fresh = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    if (!sm->connected) {
        shmc_plat_mutex_unlock(&shmc_g.lock);
        IUnknown_Release((IUnknown *)itf);
        return RPC_E_DISCONNECTED;
    }
    shmc_ifstub *s;
    for (s = sm->ifstubs; s; s = s->next) {
        if (IsEqualIID(&s->iid, iid))
            break;
    }
    if (!s) {
        fresh = shmc_calloc(1, sizeof(*fresh));
        if (!fresh || FAILED(shmc_random(fresh->ipid.b, sizeof(fresh->ipid.b)))) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            shmc_free(fresh);
            IUnknown_Release((IUnknown *)itf);
            return E_OUTOFMEMORY;
        }
        atomic_init(&fresh->refs, 1); /* the stub manager's list */
        fresh->mgr = sm;
        fresh->iid = *iid;
        fresh->info = info;
        atomic_init(&fresh->itf, itf);
        atomic_init(&fresh->busy, 0);
        itf = NULL;
        if (FAILED(shmc_hmap_reserve(&shmc_g.ipids, 1))) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            IUnknown_Release((IUnknown *)atomic_load(&fresh->itf));
            shmc_free(fresh);
            return E_OUTOFMEMORY;
        }
        shmc_ipid_add_locked(fresh);
        fresh->next = sm->ifstubs;
        sm->ifstubs = fresh;
        s = fresh;
    }
    sm->extrefs++;
    shmc_ifstub_addref(s);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (itf)
        IUnknown_Release((IUnknown *)itf);
    *out = s;
    return S_OK;
}

/* ---- ShmCoDisconnectObject ---------------------------------------------- */

HRESULT ShmCoDisconnectObject(IUnknown *punk, DWORD reserved)
{
    (void)reserved;
    if (!punk)
        return E_INVALIDARG;
    HRESULT hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        return shmc_current_apt_error();
    shmc_apt_release(apt);

    IUnknown *identity = NULL;
    hr = IUnknown_QueryInterface(punk, &IID_IUnknown, (void **)&identity);
    if (FAILED(hr) || !identity)
        return S_OK; /* nothing of it can have been exported */
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_stubmgr *sm = shmc_hmap_get(&shmc_g.stub_by_identity, shmc_hmap_mix((uintptr_t)identity));
    if (sm && sm->connected && sm->identity == identity)
        shmc_stubmgr_unlist_locked(sm); /* the list's reference is ours now */
    else
        sm = NULL;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    IUnknown_Release(identity);
    if (sm)
        shmc_stubmgr_destroy(sm);
    return S_OK;
}
