/*
 * call.c - one call from a proxy to an object in another apartment of this
 * process: queued on the target apartment, run there, its reply handed
 * back, and the waiting in between.
 *
 * A call is shared by the caller and the apartment that runs it, each
 * holding a reference. Its state moves PENDING -> RUNNING -> DONE, or to
 * ABANDONED when the caller gives up (call timeout): whichever side loses
 * that race cleans up, so a late reply is dropped (and whatever interface
 * references it carried are released) without the caller ever seeing it.
 *
 * Waiting: a caller first spins, watching its notifier, for a while that
 * adapts to how long its recent calls took (a hot callee answers within
 * the spin and nobody makes a system call); then it sleeps on the
 * notifier. An STA caller serves its own incoming calls whenever its
 * notifier rings (reentrancy: callbacks into it work while it waits).
 */
#include "alloc.h"
#include "framerel.h"
#include "inproc.h"
#include "rt.h"

#include <string.h>

/* Spin at most this long for a reply before sleeping; adapted per thread
 * between the bounds below. */
#define SPIN_NS_START 20000u
#define SPIN_NS_MIN   1000u
#define SPIN_NS_MAX   100000u

static _Thread_local uint32_t spin_ns = SPIN_NS_START;

HRESULT shmc_call_new(shmc_call **out, uint32_t kind)
{
    shmc_call *c = shmc_malloc(sizeof(*c));
    *out = c;
    if (!c)
        return E_OUTOFMEMORY;
    memset(c, 0, offsetof(shmc_call, req_inline));
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, SHMC_CALL_PENDING);
    c->kind = kind;
    return S_OK;
}

static void free_frames(shmc_call *c)
{
    if (c->req_heap)
        shmc_free(c->req);
    if (c->rep_heap)
        shmc_free(c->rep);
    c->req = c->rep = NULL;
    c->req_heap = c->rep_heap = false;
}

void shmc_call_release(shmc_call *c)
{
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    free_frames(c);
    if (c->ifstub)
        shmc_ifstub_release(c->ifstub);
    if (c->stubmgr)
        shmc_stubmgr_release(c->stubmgr);
    if (c->target)
        shmc_apt_release(c->target);
    shmc_notifier_release(c->notify);
    shmc_free(c);
}

/* ---- the caller's side -------------------------------------------------- */

static bool call_done(shmc_call *c)
{
    return atomic_load_explicit(&c->state, memory_order_acquire) == SHMC_CALL_DONE;
}

static void drop_call(shmc_call *c, bool ran);

HRESULT shmc_call_run(shmc_call *c)
{
    shmc_thread *th = shmc_thread_get();
    shmc_notifier *n = th ? shmc_thread_notifier(th) : NULL;
    if (!n) {
        drop_call(c, false);
        return E_OUTOFMEMORY;
    }

    shmc_notifier_addref(n);
    c->notify = n;
    shmc_apt *my_sta = th->inits && th->apt->model == SHMC_STA ? th->apt : NULL;

    atomic_fetch_add(&c->refs, 1); /* the callee's */
    if (!shmc_apt_enqueue(c->target, c)) {
        atomic_fetch_sub(&c->refs, 1);
        drop_call(c, false); /* never delivered: what it carries is ours */
        return RPC_E_DISCONNECTED;
    }

    uint64_t start = shmc_plat_clock_ns();
    uint64_t deadline =
        th->timeout_ms == INFINITE ? UINT64_MAX : start + (uint64_t)th->timeout_ms * 1000000u;
    bool single_cpu = shmc_plat_cpu_count() < 2;
    bool slept = false;
    for (;;) {
        uint32_t seq = atomic_load(&n->word.value);
        if (my_sta)
            shmc_apt_pump(my_sta); /* incoming calls, including callbacks */
        if (call_done(c))
            break;
        /* spin while the budget lasts, watching for any ring */
        if (!slept && !single_cpu) {
            bool rang = false;
            for (unsigned i = 1; !rang; i++) {
                shmc_plat_cpu_relax();
                rang = atomic_load_explicit(&n->word.value, memory_order_acquire) != seq;
                if ((i & 63) == 0 && shmc_plat_clock_ns() - start > spin_ns)
                    break;
            }
            if (rang)
                continue;
        }
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0) {
            uint32_t s = SHMC_CALL_PENDING;
            if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_ABANDONED))
                return RPC_E_TIMEOUT; /* never started: the callee drops it */
            s = SHMC_CALL_RUNNING;
            if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_ABANDONED))
                return RPC_E_TIMEOUT; /* the callee drops the late reply */
            break;                    /* it finished meanwhile: take the reply */
        }
        slept = true;
        shmc_plat_wait(&n->waiter, seq, left);
    }
    /* adapt: a reply that came while spinning earns a longer spin next time */
    if (slept)
        spin_ns = spin_ns / 2 > SPIN_NS_MIN ? spin_ns / 2 : SPIN_NS_MIN;
    else
        spin_ns = spin_ns * 2 < SPIN_NS_MAX ? spin_ns * 2 : SPIN_NS_MAX;
    return S_OK;
}

/* ---- the callee's side ----------------------------------------------------- */

typedef struct reply_builder {
    ShmStubReply iface;
    shmc_call *call;
} reply_builder;

static HRESULT reply_get_buffer(ShmStubReply *r, uint32_t size, void **buf)
{
    shmc_call *c = ((reply_builder *)r)->call;
    *buf = NULL;
    if (c->rep_heap) {
        shmc_free(c->rep);
        c->rep_heap = false;
    }
    if (size <= SHMC_CALL_INLINE) {
        c->rep = c->rep_inline;
    } else {
        c->rep = shmc_malloc(size);
        if (!c->rep)
            return E_OUTOFMEMORY;
        c->rep_heap = true;
    }
    c->rep_size = size;
    *buf = c->rep;
    return S_OK;
}

static const ShmStubReplyVtbl reply_vtbl = {reply_get_buffer};

static void exec_method(shmc_call *c)
{
    shmc_ifstub *ifs = c->ifstub;
    shmc_stubmgr *sm = ifs->mgr;
    void *itf;
    shmc_plat_mutex_lock(&sm->lock);
    itf = ifs->itf;
    if (itf) /* the object stays alive through the call */
        IUnknown_AddRef((IUnknown *)itf);
    shmc_plat_mutex_unlock(&sm->lock);
    if (!itf) {
        c->hr = RPC_E_DISCONNECTED;
        drop_call(c, false); /* the stub never saw the request */
        return;
    }
    reply_builder rb = {{&reply_vtbl}, c};
    shmc_thread *th = shmc_thread_get();
    bool nested = th ? th->in_dispatch : false;
    if (th)
        th->in_dispatch = true;
    c->hr = ShmStubInvoke(ifs->info, itf, c->method, c->req, c->req_size, &shmc_inproc_marshaler,
                          &rb.iface);
    if (th)
        th->in_dispatch = nested;
    IUnknown_Release((IUnknown *)itf);
}

/* Releases what a call that nobody will read carries: interface records in
 * its request (it never ran) or in its reply (it ran too late). */
static void drop_call(shmc_call *c, bool ran)
{
    if (c->kind == SHMC_CALL_METHOD && c->ifstub->info) {
        if (!ran)
            shmc_frame_release_records(c->ifstub->info, c->method, c->req, c->req_size, false,
                                       &shmc_inproc_marshaler);
        else if (SUCCEEDED(c->hr) && c->rep)
            shmc_frame_release_records(c->ifstub->info, c->method, c->rep, c->rep_size, true,
                                       &shmc_inproc_marshaler);
    } else if (c->kind == SHMC_CALL_QI && ran && c->qi_result) {
        shmc_stubmgr *destroy = NULL;
        shmc_plat_mutex_lock(&shmc_g.lock);
        shmc_stubmgr_drop_refs_locked(c->qi_result->mgr, 1, false, &destroy);
        shmc_plat_mutex_unlock(&shmc_g.lock);
        shmc_ifstub_release(c->qi_result);
        c->qi_result = NULL;
        if (destroy)
            shmc_stubmgr_destroy(destroy);
    } else if (c->kind == SHMC_CALL_DESTROY && !ran) {
        shmc_stubmgr_release_object(c->stubmgr); /* must happen regardless */
    }
}

void shmc_call_execute(shmc_call *c)
{
    uint32_t s = SHMC_CALL_PENDING;
    if (!atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_RUNNING)) {
        drop_call(c, false); /* abandoned before it started */
        shmc_call_release(c);
        return;
    }
    switch (c->kind) {
    case SHMC_CALL_METHOD:
        exec_method(c);
        break;
    case SHMC_CALL_QI:
        c->hr = shmc_stubmgr_qi(c->ifstub->mgr, &c->iid, &c->qi_result);
        break;
    case SHMC_CALL_DESTROY:
        shmc_stubmgr_release_object(c->stubmgr);
        c->hr = S_OK;
        break;
    default:
        c->hr = E_UNEXPECTED;
        break;
    }
    s = SHMC_CALL_RUNNING;
    if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_DONE))
        shmc_notifier_ring(c->notify, true);
    else
        drop_call(c, true); /* the caller timed out: nobody reads the reply */
    shmc_call_release(c);
}
