/*
 * call.c - one call from a proxy to an object in another apartment of this
 * process: queued on the target apartment, run there, its reply handed
 * back, and the waiting in between.
 *
 * Ownership instead of reference counts: the caller owns the call (it
 * made it, it frees it) unless it gives up waiting (call timeout), which
 * hands the call to the apartment that runs it. The state word decides who
 * won: PENDING -> DONE by the callee, or PENDING -> ABANDONED by the
 * caller, each by compare-and-swap. After DONE the callee does not touch
 * the call again, except to notify the caller's notifier, which it read
 * before (notifiers are never freed). After ABANDONED the caller does not
 * touch it again; the callee drops what it carries (interface records in
 * its request, if it did not run it, or in its reply) and frees it, so a
 * late reply leaks nothing. The callee does not mark a call it starts (it
 * only skips one it finds abandoned already): the caller spins on the
 * state's cache line, and a write into it before the reply would cost two
 * more transfers of the line.
 *
 * Waiting: a caller spins, watching the call's state (and, in an STA, its
 * own queue of incoming calls), for a while that adapts to how long its
 * recent calls took; then it sleeps on its notifier. When both sides run,
 * a call costs a few cache-line transfers and no system call. An STA
 * caller serves its incoming calls while it waits (reentrancy: callbacks
 * into it work).
 *
 * Watched calls: a call through the inbox moves two cache lines each way
 * (the inbox's and the call's line 0). A thread that completes a call (an
 * STA's, or an MTA worker) marks it WATCHED instead of DONE (the caller
 * owns it all the same) and keeps looking at its state while it waits for
 * work; a caller whose next call goes to that apartment again (its calls
 * are recycled, so it is often the same struct) fills it and sends it with
 * one compare-and-swap, WATCHED -> REQUEST, and the request and the reply
 * travel in line 0 alone. A watcher stops watching (WATCHED -> DONE by
 * CAS) when it watches another call, when it shuts down and, for an MTA
 * worker, before it takes calls from the inbox or sleeps; a REQUEST found
 * then is run (a worker queues it in the inbox), an ABANDONED_WATCHED one
 * dropped. It also stops when it sees the call taken back (another state).
 * A caller that gives up on a REQUEST leaves it ABANDONED_WATCHED, for the
 * watcher to drop, or for its completion CAS to fail. Since a watcher may
 * look at a call after its caller has moved on, calls are never freed (a
 * pool), and a watcher acts only on a call whose `watcher` is its
 * apartment. While a call is watched its caller writes line 0 only where
 * a field changes: each write would move the line.
 */
#include "alloc.h"
#include "framerel.h"
#include "inproc.h"
#include "rt.h"

#include <string.h>

/* How often a caller waiting on an MTA looks whether it has a worker. */
#define MTA_RECHECK_MS 100u

SHMC_THREAD_LOCAL shmc_hot shmc_hot_tls = {.reply_ns_avg = 20000u};

/* Each thread keeps its last call (shmc_hot.spare) and reuses it for
 * the next one; the others are recycled (never freed: see above). */
static shmc_plat_mutex pool_lock;
static shmc_call *pool;

_Static_assert(offsetof(shmc_call, rep_inline) + 4 <= SHMC_LINE,
               "the reply's HRESULT shares line 0 with the call's state");

void shmc_call_setup(void)
{
    shmc_plat_mutex_init(&pool_lock);
}

static void pool_put(shmc_call *c)
{
    shmc_plat_mutex_lock(&pool_lock);
    c->pool_next = pool;
    pool = c;
    shmc_plat_mutex_unlock(&pool_lock);
}

static shmc_call *pool_get(void)
{
    shmc_plat_mutex_lock(&pool_lock);
    shmc_call *c = pool;
    if (c)
        pool = c->pool_next;
    shmc_plat_mutex_unlock(&pool_lock);
    return c;
}

HRESULT shmc_call_new(shmc_call **out, uint32_t kind)
{
    shmc_hot *h = shmc_hot_get();
    shmc_call *c = h->spare;
    if (c) {
        h->spare = NULL;
    } else if (!(c = pool_get())) {
        if (!(c = shmc_malloc_lines(sizeof(*c)))) {
            *out = NULL;
            return E_OUTOFMEMORY;
        }
        atomic_init(&c->link.next, NULL);
        atomic_init(&c->state, SHMC_CALL_DONE);
        atomic_init(&c->watcher, NULL);
        c->hr = S_OK;
        c->rep_size = c->req_size = c->method = 0;
        c->kind = (uint8_t)kind;
        c->req_heap = c->rep_heap = c->owns_refs = false;
        c->ifstub = NULL;
        c->notify = NULL;
        c->req_borrowed = false;
        c->reply_to = NULL;
        c->marshaler = NULL;
        atomic_init(&c->caller_cpu, -1);
        atomic_init(&c->callee_cpu, -1);
        /* a reply is written only where it differs (shmc_call_execute):
         * what it is compared with must be defined */
        memset(c->rep_inline, 0, sizeof(c->rep_inline));
    }
    /* Line 0 only where it changes (the callee writes hr and rep_size; the
     * state is shmc_call_run's): the call may be watched. */
    if (atomic_load_explicit(&c->state, memory_order_relaxed) != SHMC_CALL_WATCHED)
        atomic_store_explicit(&c->state, SHMC_CALL_PENDING, memory_order_relaxed);
    SHMC_SET_CHANGED(c->kind, (uint8_t)kind);
    SHMC_SET_CHANGED(c->req_size, 0);
    SHMC_SET_CHANGED(c->owns_refs, false);
    SHMC_SET_CHANGED(c->ifstub, NULL);
    c->target = NULL;
    c->stubmgr = NULL;
    c->qi_result = NULL;
    SHMC_SET_CHANGED(c->reply_to, NULL);
    SHMC_SET_CHANGED(c->marshaler, NULL);
    SHMC_SET_CHANGED(c->req_borrowed, false);
    *out = c;
    return S_OK;
}

static void call_clear(shmc_call *c)
{
    if (c->req_heap && !c->req_borrowed)
        shmc_free(c->req_ext);
    if (c->rep_heap)
        shmc_free(c->rep_ext);
    SHMC_SET_CHANGED(c->req_heap, false);
    SHMC_SET_CHANGED(c->rep_heap, false);
    if (c->owns_refs) {
        if (c->ifstub)
            shmc_ifstub_release(c->ifstub);
        if (c->stubmgr)
            shmc_stubmgr_release(c->stubmgr);
        if (c->target)
            shmc_apt_release(c->target);
    }
}

/* The call will outlive its caller's wait: it holds its own references. */
static void take_refs(shmc_call *c)
{
    if (c->owns_refs)
        return;
    c->owns_refs = true;
    if (c->ifstub)
        shmc_ifstub_addref(c->ifstub);
    if (c->stubmgr)
        atomic_fetch_add(&c->stubmgr->refs, 1);
    if (c->target)
        shmc_apt_addref(c->target);
}

void shmc_call_free(shmc_call *c)
{
    if (!c)
        return;
    call_clear(c);
    shmc_hot *h = shmc_hot_get();
    if (!h->spare)
        h->spare = c;
    else
        pool_put(c);
}

void shmc_call_free_spare(void)
{
    shmc_hot *h = shmc_hot_get();
    if (h->spare)
        pool_put(h->spare);
    h->spare = NULL;
}

/* ---- dropping what nobody will read ----------------------------------------- */

/* Releases what a call carries that nobody will read: interface records in
 * its request (it never ran) or in its reply (it ran too late). */
static void drop_call(shmc_call *c, bool ran)
{
    ShmItfMarshaler *m = c->marshaler ? c->marshaler : &shmc_inproc_marshaler;
    if (c->kind == SHMC_CALL_METHOD && c->ifstub->info) {
        if (!ran)
            shmc_frame_release_records(c->ifstub->info, c->method, shmc_call_req(c), c->req_size,
                                       false, m);
        else if (SUCCEEDED(c->hr) && c->rep_size && !c->reply_to)
            shmc_frame_release_records(c->ifstub->info, c->method, shmc_call_rep(c), c->rep_size,
                                       true, m);
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

/* ---- the caller's side -------------------------------------------------- */

static bool call_done(shmc_call *c)
{
    uint32_t s = atomic_load_explicit(&c->state, memory_order_seq_cst);
    return s == SHMC_CALL_DONE || s == SHMC_CALL_WATCHED;
}

/* true if the caller should stop spinning: the reply came, or (STA) calls
 * for it arrived. */
static bool wake_condition(shmc_call *c, shmc_apt *my_sta)
{
    return call_done(c) || (my_sta && shmc_apt_has_calls(my_sta));
}

_Atomic uint32_t shmc_cpu_moves;

static bool move_off_cpu(int cpu)
{
    shmc_hot *h = shmc_hot_get();
    uint64_t now = shmc_plat_clock_ns();
    if (h->moved_once && now - h->moved_at < SHMC_MOVE_GAP_NS)
        return false;
    h->moved_at = now;
    h->moved_once = true;
    if (!shmc_plat_thread_move_off_cpu(cpu))
        return false;
    shmc_cpu_forget();
    atomic_fetch_add_explicit(&shmc_cpu_moves, 1, memory_order_relaxed);
    return true;
}

bool shmc_caller_behind(int cpu, int32_t partner, _Atomic int32_t *mine)
{
    if (!shmc_cpu_shared(cpu, partner))
        return false;
    if (!move_off_cpu(cpu))
        return true;
    shmc_cpu_publish(mine, shmc_cpu_current()); /* its watcher runs where it ran */
    return false;
}

static HRESULT wait_reply(shmc_call *c, shmc_thread *th, shmc_notifier *n, shmc_apt *my_sta,
                          bool shared, uint32_t budget);

HRESULT shmc_call_run(shmc_call *c)
{
    shmc_thread *th = shmc_thread_get();
    shmc_notifier *n = th ? shmc_thread_notifier(th) : NULL;
    if (!n) {
        drop_call(c, false);
        return E_OUTOFMEMORY;
    }
    SHMC_SET_CHANGED(c->notify, n);
    shmc_apt *my_sta = th->inits && th->apt->model == SHMC_STA ? th->apt : NULL;
    int cpu = shmc_cpu_current();
    shmc_cpu_publish(&c->caller_cpu, cpu);
    bool shared = false;

    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    if (s == SHMC_CALL_WATCHED &&
        atomic_load_explicit(&c->watcher, memory_order_relaxed) == c->target &&
        atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_REQUEST)) {
        shmc_apt_ring(c->target); /* sent: its watcher sees the state */
        shared = shmc_caller_behind(cpu, atomic_load_explicit(&c->callee_cpu, memory_order_relaxed),
                                    &c->caller_cpu);
        if (!shared)
            shmc_handoff_quiet(&shmc_hot_get()->caller_quiet);
    } else {
        /* not watched by the target (or no longer): take it back (a
         * watcher's CAS WATCHED -> DONE may race with this; either way
         * the call is ours), and queue it */
        atomic_store_explicit(&c->state, SHMC_CALL_PENDING, memory_order_relaxed);
        if (!shmc_apt_enqueue(c->target, c)) {
            drop_call(c, false); /* never delivered: what it carries is ours */
            return RPC_E_DISCONNECTED;
        }
    }

    uint32_t budget = shmc_call_spin_budget();
    bool counted = shmc_sta_enter(my_sta); /* it runs its incoming calls as it waits */
    HRESULT hr = wait_reply(c, th, n, my_sta, shared, budget);
    if (counted)
        shmc_sta_leave(my_sta);
    return hr;
}

/* shmc_call_run's wait for the reply (incoming calls of the caller's STA,
 * my_sta, run meanwhile). */
static HRESULT wait_reply(shmc_call *c, shmc_thread *th, shmc_notifier *n, shmc_apt *my_sta,
                          bool shared, uint32_t budget)
{
    uint64_t deadline = 0; /* set once the call has to sleep (shmc_spin_deadline) */
    uint32_t s;

    /* spin: both sides running meet here */
    shmc_spin sp;
    shmc_spin_begin(&sp, budget);
    if (shared)
        shmc_spin_behind(&sp);
    bool ready = wake_condition(c, my_sta);
    shmc_quiet_looked(&shmc_hot_get()->caller_quiet, ready);
    while (!ready && shmc_spin_next(&sp))
        ready = wake_condition(c, my_sta);
    for (;;) {
        if (my_sta)
            shmc_apt_pump(my_sta); /* incoming calls, callbacks included */
        if (call_done(c))
            break;
        uint32_t seq = shmc_notifier_wait_prepare(n);
        if (wake_condition(c, my_sta)) {
            shmc_notifier_wait_cancel(n);
            continue;
        }
        if (!deadline)
            deadline = shmc_spin_deadline(&sp, th->timeout_ms);
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0) {
            shmc_notifier_wait_cancel(n);
            take_refs(c); /* before the call can become the callee's */
            s = SHMC_CALL_PENDING;
            if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_ABANDONED))
                return RPC_E_TIMEOUT; /* the callee drops it, or its late reply */
            if (s == SHMC_CALL_REQUEST &&
                atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_ABANDONED_WATCHED)) {
                shmc_apt_ring(c->target); /* its watcher drops it */
                return RPC_E_TIMEOUT;
            }
            break; /* it finished meanwhile: take the reply */
        }
        if (c->target->model == SHMC_MTA) {
            /* an MTA that could start no worker for the call would leave
             * it queued for ever: look now and then, and give up (as on a
             * timeout: whoever runs it later drops it) if it has none */
            if (shmc_notifier_wait_commit(n, seq, left < MTA_RECHECK_MS ? left : MTA_RECHECK_MS) ==
                    S_FALSE &&
                !call_done(c) && !shmc_apt_check_workers(c->target)) {
                take_refs(c);
                s = SHMC_CALL_PENDING;
                if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_ABANDONED))
                    return RPC_E_OUT_OF_RESOURCES;
            }
            continue;
        }
        shmc_notifier_wait_commit(n, seq, left);
    }
    /* The callee is done with the call: claim line 0 now (the callee wrote
     * it last), so that its transfer overlaps the reading of the reply and
     * the making of the next call rather than stalling that call's push;
     * unless it is watched: then the next call goes through line 0 alone. */
    if (atomic_load_explicit(&c->state, memory_order_relaxed) == SHMC_CALL_DONE)
        atomic_store_explicit(&c->link.next, NULL, memory_order_relaxed);
    shmc_call_note_reply(shmc_spin_waited_ns(&sp)); /* (the spin budget) */
    return S_OK;
}

/* ---- the callee's side ----------------------------------------------------- */

/* Small replies are built in the callee's own memory and copied into the
 * call with its result and state, in one burst at the end: the caller spins
 * on line 0, and each write into it a while before the last one moves the
 * line to the caller and back once more. */
#define REPLY_STAGE 64

typedef struct reply_builder {
    ShmStubReply iface;
    shmc_call *call;
    uint32_t size; /* of the reply, once a buffer was given */
    bool replied, staged;
    _Alignas(8) unsigned char stage[REPLY_STAGE];
} reply_builder;

static HRESULT reply_get_buffer(ShmStubReply *r, uint32_t size, void **buf)
{
    reply_builder *rb = (reply_builder *)r;
    shmc_call *c = rb->call;
    *buf = NULL;
    rb->replied = false;
    if (c->rep_heap) {
        shmc_free(c->rep_ext);
        c->rep_heap = false;
    }
    rb->staged = size <= REPLY_STAGE;
    if (rb->staged) {
        memset(rb->stage, 0, size); /* compared whole, padding included */
        *buf = rb->stage;
    } else if (size > SHMC_CALL_INLINE) {
        c->rep_ext = shmc_malloc(size);
        if (!c->rep_ext)
            return E_OUTOFMEMORY;
        c->rep_heap = true;
        *buf = c->rep_ext;
    } else {
        *buf = c->rep_inline;
    }
    rb->replied = true;
    rb->size = size;
    return S_OK;
}

static const ShmStubReplyVtbl reply_vtbl = {reply_get_buffer};

/* Runs a method call. The interface stub is the caller's (borrowed, or
 * the call's own if the caller gave up): it may go as soon as the caller
 * has its reply, so the call leaves it before the reply goes out. */
static HRESULT exec_method(shmc_call *c, reply_builder *rb)
{
    shmc_ifstub *ifs = c->ifstub;
    void *itf = shmc_ifstub_enter(ifs);
    if (!itf) {
        drop_call(c, false); /* the stub never saw the request */
        return RPC_E_DISCONNECTED;
    }
    HRESULT hr = ShmStubInvoke(ifs->info, itf, c->method, shmc_call_req(c), c->req_size,
                               c->marshaler ? c->marshaler : &shmc_inproc_marshaler,
                               c->reply_to ? c->reply_to : &rb->iface);
    shmc_ifstub_leave(ifs);
    return hr;
}

/* The callee recycles a call its caller gave up on. */
static void destroy_abandoned(shmc_call *c)
{
    call_clear(c);
    pool_put(c);
}

void shmc_call_drop_unrun(shmc_call *c)
{
    drop_call(c, false);
    destroy_abandoned(c);
}

bool shmc_call_execute(shmc_apt *apt, shmc_call *c, _Atomic int32_t *spare_workers, bool may_watch)
{
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire); /* PENDING, REQUEST */
    if (s == SHMC_CALL_ABANDONED || s == SHMC_CALL_ABANDONED_WATCHED) {
        shmc_call_drop_unrun(c); /* abandoned before it started */
        if (spare_workers)
            atomic_fetch_add(spare_workers, 1);
        return false;
    }

    /* line 0 is read from here on, and written only at the end */
    shmc_notifier *n = c->notify;
    reply_builder rb;
    rb.iface.vtbl = &reply_vtbl;
    rb.call = c;
    rb.size = 0;
    rb.replied = rb.staged = false;
    HRESULT hr;
    switch (c->kind) {
    case SHMC_CALL_METHOD:
        hr = exec_method(c, &rb);
        break;
    case SHMC_CALL_QI:
        hr = shmc_stubmgr_qi(c->ifstub->mgr, &c->iid, &c->qi_result);
        break;
    case SHMC_CALL_DESTROY:
        shmc_stubmgr_release_object(c->stubmgr);
        hr = S_OK;
        break;
    default:
        hr = E_UNEXPECTED;
        break;
    }
    bool watch = may_watch;
    if (watch)
        shmc_cpu_publish(&c->callee_cpu, shmc_cpu_current());
    /* the burst: reply, result, watcher, state */
    if (rb.replied && rb.staged && memcmp(c->rep_inline, rb.stage, rb.size) != 0)
        memcpy(c->rep_inline, rb.stage, rb.size);
    SHMC_SET_CHANGED(c->rep_size, rb.replied ? rb.size : 0); /* no older reply is read */
    SHMC_SET_CHANGED(c->hr, hr);
    if (watch && atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        atomic_store_explicit(&c->watcher, apt, memory_order_relaxed);
    if (spare_workers)
        atomic_fetch_add(spare_workers, 1);
    bool watched = false;
    if (atomic_compare_exchange_strong(&c->state, &s, watch ? SHMC_CALL_WATCHED : SHMC_CALL_DONE)) {
        shmc_notifier_notify(n, true); /* c belongs to its caller from here */
        watched = watch;
        if (watched)
            shmc_handoff_quiet(
                &shmc_hot_get()->callee_quiet); /* before it looks at the line again */
    } else {
        drop_call(c, true); /* the caller timed out: nobody reads the reply */
        destroy_abandoned(c);
    }
    return watched;
}
