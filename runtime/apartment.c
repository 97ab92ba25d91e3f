/*
 * apartment.c - the process's runtime state, threads and apartments:
 * ShmCoInitializeEx/ShmCoUninitialize, the queue of incoming calls of each
 * apartment, how an STA receives them (ShmCoProcessCalls, while waiting
 * for its own calls, or from an event loop through its wait handle), the
 * MTA's worker threads, and apartment shutdown.
 *
 * An STA's incoming calls and the replies to its own outgoing calls both
 * ring one notifier, so the STA thread sleeps in one place and wakes for
 * either: that is what lets a callback reach an STA that is waiting for a
 * reply (reentrancy). MTA calls made by other apartments run on runtime
 * worker threads, started when calls arrive and none is spare.
 */
#include "conn.h"
#include "alloc.h"
#include "bounds.h"
#include "csprng.h"
#include "rt.h"

#include <string.h>

shmc_rt shmc_g;
shmc_tuning shmc_tune;

static shmc_plat_once rt_once = SHMC_PLAT_ONCE_INIT;

/* recycled notifiers (see rt.h: never freed) */
static shmc_plat_mutex pool_lock; /* set up with the runtime */
static shmc_notifier *pool;

static void thread_dtor(void *p);

/* How long a pause takes, in ns: timed once (200 of them, a few
 * microseconds). */
static uint64_t pause_ns(void)
{
    enum { N = 200 };
    uint64_t t0 = shmc_plat_clock_ns();
    for (int i = 0; i < N; i++)
        shmc_plat_cpu_relax();
    uint64_t per = (shmc_plat_clock_ns() - t0) / N;
    return per ? per : 1;
}

/* How many pauses of per ns take about ns: from 0 (a pause that long) to
 * max (a CPU whose pause is a few cycles gains little from counting
 * more). */
static uint32_t quiet_pauses(uint64_t per, uint32_t ns, uint32_t max)
{
    uint64_t n = (ns + per / 2) / per;
    return n > max ? max : (uint32_t)n;
}

static void rt_setup(void)
{
    shmc_plat_pin_module(); /* its threads and callbacks outlive an unload */
    shmc_plat_mutex_init(&shmc_g.lock);
    shmc_plat_mutex_init(&pool_lock);
    shmc_call_setup();
    shmc_plat_proc_self(&shmc_g.self);
    shmc_g.init_hr = shmc_plat_tls_create(&shmc_g.tls, thread_dtor);
    shmc_hazards_setup();
    shmc_remote_setup();
    /* spinning only pays when the other side runs on another CPU */
    bool multi = shmc_plat_cpu_count() > 1;
    atomic_store(&shmc_tune.caller_spin_max_ns, multi ? 100000u : 0u);
    atomic_store(&shmc_tune.callee_spin_ns, multi ? 50000u : 0u);
    uint64_t per = multi ? pause_ns() : 0;
    atomic_store(&shmc_tune.quiet_pauses, multi ? quiet_pauses(per, SHMC_QUIET_NS, 16) : 0u);
    atomic_store(&shmc_tune.quiet_max_pauses,
                 multi ? quiet_pauses(per, SHMC_QUIET_MAX_NS, 64) : 0u);
}

HRESULT shmc_rt_init(void)
{
    shmc_plat_once_run(&rt_once, rt_setup);
    return shmc_g.init_hr;
}

/* ---- notifiers ------------------------------------------------------------ */

HRESULT shmc_notifier_get(shmc_notifier **out)
{
    shmc_plat_mutex_lock(&pool_lock);
    shmc_notifier *n = pool;
    if (n)
        pool = n->next_free;
    shmc_plat_mutex_unlock(&pool_lock);
    if (!n) {
        n = shmc_calloc_lines(sizeof(*n));
        if (!n) {
            *out = NULL;
            return E_OUTOFMEMORY;
        }
        HRESULT hr = shmc_plat_waiter_open_local(&n->waiter, &n->word);
        if (FAILED(hr)) {
            shmc_free_lines(n);
            *out = NULL;
            return hr;
        }
    }
    n->next_free = NULL;
    *out = n;
    return S_OK;
}

void shmc_notifier_put(shmc_notifier *n)
{
    if (!n)
        return;
    shmc_plat_mutex_lock(&pool_lock);
    n->next_free = pool;
    pool = n;
    shmc_plat_mutex_unlock(&pool_lock);
}

void shmc_notifier_notify(shmc_notifier *n, bool all)
{
    /* the condition changed before this fence; a sleeper counted itself
     * before checking it: one of us sees the other */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&n->sleepers, memory_order_relaxed) == 0)
        return;
    atomic_fetch_add(&n->word.value, 1);
    shmc_plat_wake(&n->waiter, all);
}

uint32_t shmc_notifier_wait_prepare(shmc_notifier *n)
{
    uint32_t seq = atomic_load(&n->word.value);
    atomic_fetch_add(&n->sleepers, 1); /* seq_cst: before re-checking the condition */
    return seq;
}

void shmc_notifier_wait_cancel(shmc_notifier *n)
{
    atomic_fetch_sub(&n->sleepers, 1);
}

HRESULT shmc_notifier_wait_commit(shmc_notifier *n, uint32_t seq, uint32_t timeout_ms)
{
    HRESULT hr = shmc_plat_wait(&n->waiter, seq, timeout_ms);
    atomic_fetch_sub(&n->sleepers, 1);
    return hr;
}

/* ---- threads ----------------------------------------------------------------- */

/* The platform's TLS slot owns the thread's state (its destructor cleans
 * up); this copy saves a call to it, and the runtime's once, on every
 * call between apartments. On Windows the copy is in the platform's fast
 * slot: a _Thread_local there is mingw-w64's emulated TLS (14 ns a lookup
 * under Wine, three lookups a call). */
#if defined(_WIN32)
static shmc_thread *cur_thread_get(void)
{
    return shmc_plat_fast_tls_get();
}

static void cur_thread_set(shmc_thread *th)
{
    shmc_plat_fast_tls_set(th); /* (if it cannot, the lookups take the slow way) */
}
#else
static SHMC_THREAD_LOCAL shmc_thread *cur_thread;

static shmc_thread *cur_thread_get(void)
{
    return cur_thread;
}

static void cur_thread_set(shmc_thread *th)
{
    cur_thread = th;
}
#endif

shmc_thread *shmc_thread_peek(void)
{
    return cur_thread_get();
}

shmc_thread *shmc_thread_get(void)
{
    shmc_thread *th = cur_thread_get();
    if (th)
        return th;
    if (FAILED(shmc_rt_init()))
        return NULL;
    th = shmc_plat_tls_get(&shmc_g.tls);
    if (!th) {
        th = shmc_calloc(1, sizeof(*th));
        if (!th)
            return NULL;
        th->timeout_ms = INFINITE;
        th->hazard = SHMC_HAZARD_NONE_YET;
#if defined(_WIN32)
        /* (without it, the thread's calls use shmc_hot_tls) */
        if ((th->hot = shmc_calloc(1, sizeof(*th->hot))))
            th->hot->reply_ns_avg = shmc_hot_tls.reply_ns_avg;
#endif
        if (FAILED(shmc_plat_tls_set(&shmc_g.tls, th))) {
            shmc_free(th->hot);
            shmc_free(th);
            return NULL;
        }
    }
    cur_thread_set(th);
    return th;
}

shmc_notifier *shmc_thread_notifier(shmc_thread *th)
{
    if (th->apt && th->apt->model == SHMC_STA)
        return th->apt->bell;
    if (!th->notifier && FAILED(shmc_notifier_get(&th->notifier)))
        return NULL;
    return th->notifier;
}

static void leave_apartment(shmc_thread *th);

/* A thread that exits without uninitializing leaves its apartment here. */
static void thread_dtor(void *p)
{
    shmc_thread *th = p;
    /* the runtime may run in this destructor and look the state up again */
    shmc_plat_tls_set(&shmc_g.tls, th);
    if (th->inits) {
        th->inits = 0;
        leave_apartment(th);
    }
    shmc_call_free_spare(); /* (th->hot's, on Windows) */
    shmc_plat_tls_set(&shmc_g.tls, NULL);
    cur_thread_set(NULL);
    shmc_call_free_spare(); /* (shmc_hot_tls's) */
    shmc_remote_free_spare();
    shmc_notifier_put(th->notifier);
    shmc_conn_thread_ends(th); /* (its kept slot) */
    shmc_hazard_free(th);
    shmc_free(th->hot);
    shmc_free(th);
}

/* ---- apartments ------------------------------------------------------------- */

void shmc_apt_addref(shmc_apt *apt)
{
    atomic_fetch_add_explicit(&apt->refs, 1, memory_order_relaxed);
}

void shmc_apt_release(shmc_apt *apt)
{
    if (!apt || atomic_fetch_sub_explicit(&apt->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (apt->has_event)
        shmc_plat_event_fini(&apt->event);
    shmc_hmap_fini(&apt->proxy_by_oid);
    shmc_notifier_put(apt->bell);
    shmc_plat_mutex_fini(&apt->qlock);
    shmc_plat_mutex_fini(&apt->remote_lock);
    shmc_free_lines(apt);
}

static HRESULT apt_create(int model, shmc_apt **out)
{
    *out = NULL;
    shmc_apt *apt = shmc_calloc_lines(sizeof(*apt));
    if (!apt)
        return E_OUTOFMEMORY;
    HRESULT hr = shmc_notifier_get(&apt->bell);
    if (FAILED(hr)) {
        shmc_free_lines(apt);
        return hr;
    }
    apt->oxid = shmc_random_u64();
    if (!apt->oxid) {
        shmc_notifier_put(apt->bell);
        shmc_free_lines(apt);
        return E_FAIL;
    }
    atomic_init(&apt->refs, 1); /* the list's (rt.apts) */
    apt->model = model;
    shmc_plat_mutex_init(&apt->qlock);
    shmc_plat_mutex_init(&apt->remote_lock);
    atomic_init(&apt->inbox, 0);
    *out = apt;
    return S_OK;
}

shmc_apt *shmc_current_apt(void)
{
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return NULL;
    shmc_apt *apt = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    if (th->apt)
        apt = th->apt; /* joined, or an MTA worker */
    else if (atomic_load(&shmc_g.mta) && !atomic_load(&shmc_g.mta)->dead)
        apt = atomic_load(&shmc_g.mta); /* the implicit MTA */
    if (apt)
        shmc_apt_addref(apt);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return apt;
}

HRESULT shmc_current_apt_error(void)
{
    return shmc_thread_get() ? CO_E_NOTINITIALIZED : E_OUTOFMEMORY;
}

HRESULT ShmCoInitializeEx(void *reserved, DWORD coinit)
{
    if (reserved)
        return E_INVALIDARG;
    if (coinit &
        ~(DWORD)(COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE | COINIT_SPEED_OVER_MEMORY))
        return E_INVALIDARG;
    int model = (coinit & COINIT_APARTMENTTHREADED) ? SHMC_STA : SHMC_MTA;
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return FAILED(shmc_g.init_hr) ? shmc_g.init_hr : E_OUTOFMEMORY;
    if (th->inits) {
        if (th->apt->model != model)
            return RPC_E_CHANGED_MODE;
        th->inits++;
        return S_FALSE;
    }
    if (th->worker) /* a runtime thread of the MTA: it stays there */
        return model == SHMC_MTA ? S_FALSE : RPC_E_CHANGED_MODE;

    shmc_apt *fresh = NULL;
    HRESULT hr;
    if (model == SHMC_STA) {
        hr = apt_create(SHMC_STA, &fresh);
        if (FAILED(hr))
            return hr;
        fresh->owner_tid = shmc_plat_thread_self_id();
        fresh->members = 1;
        shmc_plat_mutex_lock(&shmc_g.lock);
        fresh->next = shmc_g.apts;
        shmc_g.apts = fresh;
        shmc_apt_addref(fresh); /* the thread's */
        th->apt = fresh;
        shmc_plat_mutex_unlock(&shmc_g.lock);
    } else {
        shmc_plat_mutex_lock(&shmc_g.lock);
        shmc_apt *mta = atomic_load(&shmc_g.mta);
        if (!mta) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            hr = apt_create(SHMC_MTA, &fresh);
            if (FAILED(hr))
                return hr;
            shmc_plat_mutex_lock(&shmc_g.lock);
            mta = atomic_load(&shmc_g.mta); /* another thread may have made it meanwhile */
            if (!mta) {
                mta = fresh;
                fresh = NULL;
                mta->next = shmc_g.apts;
                shmc_g.apts = mta;
                atomic_store(&shmc_g.mta, mta);
            }
        }
        mta->members++;
        shmc_apt_addref(mta);
        th->apt = mta;
        shmc_plat_mutex_unlock(&shmc_g.lock);
        shmc_apt_release(fresh); /* lost the race: unused */
    }
    th->inits = 1;
    return S_OK;
}

static void leave_apartment(shmc_thread *th)
{
    shmc_apt *apt = th->apt;
    bool last;
    shmc_plat_mutex_lock(&shmc_g.lock);
    last = --apt->members == 0;
    if (last && apt == atomic_load(&shmc_g.mta))
        atomic_store(&shmc_g.mta, NULL); /* a new MTA can start while this one ends */
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (last)
        shmc_apt_shutdown(apt);
    th->apt = NULL;
    shmc_apt_release(apt); /* the thread's */
}

void ShmCoUninitialize(void)
{
    if (FAILED(shmc_rt_init()))
        return;
    shmc_thread *th = shmc_plat_tls_get(&shmc_g.tls);
    if (!th || th->inits == 0)
        return;
    if (--th->inits == 0)
        leave_apartment(th);
}

HRESULT ShmCoSetCallTimeout(DWORD timeout_ms)
{
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return E_OUTOFMEMORY;
    th->timeout_ms = timeout_ms;
    return S_OK;
}

/* ---- the queue of incoming calls ---------------------------------------------
 *
 * Producers push a call on `inbox`, a stack, with one compare-and-swap;
 * consumers take the whole stack with another. When both sides run, a call
 * moves the inbox's line to its caller and back and the call's line 0 to
 * the callee and back, and nothing else: nobody writes a line the other
 * side spins on except to hand something over (a queue with a stub node,
 * such as Vyukov's, also moves its tail and stub lines on every call that
 * empties it; a list under a lock moves the lock's line as well).
 *
 * STA: its thread takes the stack when its own list `pending` is empty and
 * appends it there reversed, so calls run one at a time in the order their
 * pushes took effect.
 * MTA: a worker takes the stack, runs the oldest call and pushes the others
 * back for other workers. `spare_workers` counts the workers not running a
 * call minus the calls in the inbox: a producer decrements it after its
 * push and starts a worker if no spare one was left; a worker increments it
 * when it has run a call (before it tells the caller, so that the caller's
 * next call finds it spare). Taking a call changes neither side of the
 * difference, so a worker's take writes nothing but the inbox, and a worker
 * is started exactly when every worker is busy or spoken for: a producer
 * that read an idle count could start one needlessly whenever a worker took
 * the call between the push and the read.
 *
 * Shutdown sets bit 0 of the inbox, which a producer's compare-and-swap
 * sees: no call is pushed after that, and what was pushed before is still
 * taken and run (it fails cleanly once the objects are gone). */

static void start_worker(shmc_apt *apt);

#define INBOX_CLOSED ((uintptr_t)1) /* calls are line-aligned: bit 0 is free */

static shmc_qnode *inbox_list(uintptr_t v)
{
    return (shmc_qnode *)(v & ~INBOX_CLOSED);
}

/* Pushes first..last (linked through next), unless the inbox is closed and
 * the calls are new (`back`: calls taken earlier, given back). */
static bool inbox_push(shmc_apt *apt, shmc_qnode *first, shmc_qnode *last, bool back)
{
    uintptr_t top = atomic_load_explicit(&apt->inbox, memory_order_relaxed);
    do {
        if ((top & INBOX_CLOSED) && !back)
            return false;
        atomic_store_explicit(&last->next, inbox_list(top), memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&apt->inbox, &top,
                                                    (uintptr_t)first | (top & INBOX_CLOSED),
                                                    memory_order_seq_cst, memory_order_relaxed));
    return true;
}

/* Takes every call pushed, newest first; a closed inbox stays closed. */
static shmc_qnode *inbox_take(shmc_apt *apt)
{
    uintptr_t top = atomic_load_explicit(&apt->inbox, memory_order_seq_cst);
    /* the newest call's line 0 is read next: its transfer overlaps the
     * compare-and-swap's instead of following it */
    if (inbox_list(top))
        shmc_plat_prefetch(inbox_list(top));
    while (inbox_list(top) &&
           !atomic_compare_exchange_weak_explicit(&apt->inbox, &top, top & INBOX_CLOSED,
                                                  memory_order_seq_cst, memory_order_relaxed))
        ;
    return inbox_list(top);
}

/* STA: moves what was pushed into `pending` (empty), oldest first. */
static void sta_take(shmc_apt *apt)
{
    shmc_qnode *top = inbox_take(apt);
    if (!top)
        return;
    shmc_qnode *oldest = top;
    if (atomic_load_explicit(&top->next, memory_order_relaxed)) {
        /* several: reverse them (one alone is left untouched: its line
         * stays clean until the call completes) */
        shmc_qnode *prev = NULL, *n = top;
        while (n) {
            shmc_qnode *next = atomic_load_explicit(&n->next, memory_order_relaxed);
            atomic_store_explicit(&n->next, prev, memory_order_relaxed);
            prev = n;
            n = next;
        }
        oldest = prev;
    }
    apt->pending = oldest;
}

/* ---- watched calls (see call.c) ---------------------------------------------
 *
 * `watch` and `watch_ready` belong to the STA's thread. A call sent to it
 * through its watch is run before the calls taken from the inbox with it:
 * they were sent by other threads, in no order with it. */

/* A watched call that was sent (REQUEST) goes to watch_ready. */
static void sta_ready(shmc_apt *apt, shmc_call *c)
{
    if (!apt->watch_ready) {
        apt->watch_ready = c;
        return;
    }
    /* not expected (one call is watched at a time), but possible: first */
    atomic_store_explicit(&c->link.next, apt->pending, memory_order_relaxed);
    apt->pending = &c->link;
}

/* The watched call is in another state than WATCHED: sent, given up, or
 * taken back by its caller. Its `watcher` is stable in the first two (only
 * a completion writes it) and says whether it concerns us. */
static void sta_unwatched(shmc_apt *apt, shmc_call *c, uint32_t s)
{
    if (atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        return;
    if (s == SHMC_CALL_REQUEST)
        sta_ready(apt, c);
    else if (s == SHMC_CALL_ABANDONED_WATCHED)
        shmc_call_drop_unrun(c);
}

static void sta_check_watch(shmc_apt *apt)
{
    shmc_call *w = apt->watch;
    if (!w)
        return;
    uint32_t s = atomic_load_explicit(&w->state, memory_order_seq_cst);
    shmc_quiet_looked(&shmc_hot_get()->callee_quiet, s != SHMC_CALL_WATCHED);
    if (s == SHMC_CALL_WATCHED)
        return; /* the idle case: a read of a line this thread holds */
    apt->watch = NULL;
    sta_unwatched(apt, w, s);
}

/* Stops watching c: back to DONE, unless it was sent or given up since. */
static void sta_unwatch(shmc_apt *apt, shmc_call *c)
{
    if (atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        return; /* another apartment's now */
    uint32_t s = SHMC_CALL_WATCHED;
    if (!atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_DONE))
        sta_unwatched(apt, c, s);
}

/* Watching a call needs an open inbox: shutdown stops it. */
static bool apt_may_watch(shmc_apt *apt)
{
    return !(atomic_load_explicit(&apt->inbox, memory_order_relaxed) & INBOX_CLOSED);
}

static void sta_watch(shmc_apt *apt, shmc_call *c)
{
    shmc_call *old = apt->watch;
    apt->watch = c;
    if (old && old != c)
        sta_unwatch(apt, old);
}

/* An STA waiting for a reply from another process sleeps on that call's
 * word: bump it too (checked after the call was made visible, as the STA
 * registers before it looks at its calls). */
static void ring_remote_wait(shmc_apt *apt)
{
    if (atomic_load(&apt->remote_waiting)) {
        shmc_plat_mutex_lock(&apt->remote_lock);
        shmc_plat_waiter *w = apt->remote_wait;
        if (w) {
            atomic_fetch_add(&w->word->value, 1);
            shmc_plat_wake(w, true);
        }
        shmc_plat_mutex_unlock(&apt->remote_lock);
    }
}

/*
 * The event of an STA (ShmCoGetApartmentWaitHandle) is set while calls
 * wait for it. Setting and clearing it are system calls (under Wine,
 * requests to wineserver, tens of microseconds each), and an event loop
 * only waits on it while the STA's thread is outside the runtime. So:
 *  - a caller that queues a call sets it only if that thread is not in a
 *    wait of the runtime's (in_runtime == 0), which runs the call anyway;
 *  - that thread, leaving its outermost such wait, sets the event if calls
 *    wait (those that came after its last look); else it clears it, then
 *    looks once more, unless no set began or ended since it last cleared.
 * Caller: queue, then load in_runtime; the thread: in_runtime = 0, then
 * look at the queue; all sequentially consistent, so a caller that saw
 * the thread in has its call seen by the thread's look as it leaves.
 * Every set is counted as it begins and again once done: a set that lands
 * after a clear (its caller was slow to make it, and its call has run) is
 * either still counted as begun only, or done after the count the clear
 * noted; either way the next leave clears it. (An event loop woken by such
 * a set finds nothing to run: ShmCoProcessCalls(0) then clears it.)
 * An STA without an event counts nothing (shmc_sta_enter): its calls pay
 * one load for all this.
 */
static void sta_set_event(shmc_apt *apt)
{
    atomic_fetch_add(&apt->event_sets_begun, 1);
    shmc_plat_event_set(&apt->event);
    atomic_fetch_add(&apt->event_sets_done, 1);
}

/* A call was queued for the STA (or sent to its watch). */
static void sta_call_queued(shmc_apt *apt)
{
    /* seq_cst: see ShmCoGetApartmentWaitHandle and above */
    if (atomic_load(&apt->has_event) && atomic_load(&apt->in_runtime) == 0)
        sta_set_event(apt);
}

void shmc_sta_leave(shmc_apt *sta)
{
    uint32_t depth = atomic_load_explicit(&sta->in_runtime, memory_order_relaxed) - 1;
    atomic_store(&sta->in_runtime, depth); /* seq_cst: before the look below */
    if (depth)
        return;
    if (shmc_apt_has_calls(sta)) {
        sta_set_event(sta);
        return;
    }
    /* (done first: begun is never behind it) */
    uint32_t done = atomic_load(&sta->event_sets_done);
    uint32_t begun = atomic_load(&sta->event_sets_begun);
    if (done == sta->event_sets_cleared && begun == done)
        return; /* clear since this thread cleared it, and no set under way */
    sta->event_sets_cleared = done;
    shmc_plat_event_reset(&sta->event);
    if (shmc_apt_has_calls(sta))
        sta_set_event(sta);
}

void shmc_apt_ring(shmc_apt *apt)
{
    /* an MTA worker that watches a call never sleeps: nobody to wake */
    if (apt->model != SHMC_STA)
        return;
    sta_call_queued(apt);
    shmc_notifier_notify(apt->bell, true); /* an STA has one sleeper */
    ring_remote_wait(apt);
}

static shmc_call *sta_next(shmc_apt *apt)
{
    shmc_qnode *n = apt->pending;
    if (n)
        apt->pending = atomic_load_explicit(&n->next, memory_order_relaxed);
    return (shmc_call *)n;
}

/* One call for an MTA thread. */
static shmc_qnode *mta_take(shmc_apt *apt)
{
    if (!inbox_list(atomic_load_explicit(&apt->inbox, memory_order_relaxed)))
        return NULL; /* the common idle case, without a write */
    shmc_qnode *top = inbox_take(apt);
    if (!top)
        return NULL;
    shmc_qnode *prev = NULL, *oldest = top, *n;
    while ((n = atomic_load_explicit(&oldest->next, memory_order_relaxed)) != NULL) {
        prev = oldest;
        oldest = n;
    }
    if (prev) { /* the others go back, to the workers spare for them */
        inbox_push(apt, top, prev, true);
        shmc_notifier_notify(apt->bell, true);
    }
    return oldest;
}

bool shmc_apt_has_calls(shmc_apt *apt)
{
    if (apt->model == SHMC_STA &&
        (apt->pending || apt->watch_ready ||
         (apt->watch &&
          atomic_load_explicit(&apt->watch->state, memory_order_seq_cst) != SHMC_CALL_WATCHED)))
        return true; /* (a watched call in another state: for the pump to look at) */
    return inbox_list(atomic_load_explicit(&apt->inbox, memory_order_seq_cst));
}

bool shmc_apt_enqueue(shmc_apt *apt, shmc_call *c)
{
    if (!inbox_push(apt, &c->link, &c->link, false))
        return false;
    if (apt->model == SHMC_STA) {
        sta_call_queued(apt);
        shmc_notifier_notify(apt->bell, true); /* an STA has one sleeper */
        ring_remote_wait(apt);
        return true;
    }
    if (atomic_fetch_sub(&apt->spare_workers, 1) <= 0)
        start_worker(apt);
    shmc_notifier_notify(apt->bell, false); /* one idle worker per call */
    return true;
}

unsigned shmc_apt_pump(shmc_apt *apt)
{
    unsigned n = 0;
    shmc_call *c;
    if (apt->model == SHMC_MTA) {
        while ((c = (shmc_call *)mta_take(apt)) != NULL) {
            shmc_call_execute(apt, c, &apt->spare_workers, false); /* one call less waits */
            n++;
        }
        return n;
    }
    /* STA: the calls queued by now (a nested pump may run some of them),
     * not those that arrive meanwhile, so that a caller calling back to
     * back cannot keep an event loop inside ShmCoProcessCalls */
    if (!apt->pending && !apt->watch_ready) {
        sta_check_watch(apt);
        sta_take(apt);
    }
    for (;;) {
        c = apt->watch_ready;
        if (c)
            apt->watch_ready = NULL;
        else if (!(c = sta_next(apt)))
            break;
        if (shmc_call_execute(apt, c, NULL, apt_may_watch(apt)))
            sta_watch(apt, c);
        n++;
    }
    return n; /* (the event: shmc_sta_leave) */
}

/* Closes the queue: calls pushed from now on are refused; an STA stops
 * watching (a call sent through its watch meanwhile is run, failing
 * cleanly once the objects are gone). */
static void close_queue(shmc_apt *apt)
{
    atomic_fetch_or(&apt->inbox, INBOX_CLOSED);
    if (apt->model == SHMC_STA && apt->watch) {
        shmc_call *w = apt->watch;
        apt->watch = NULL;
        sta_unwatch(apt, w);
    }
}

/* ---- MTA workers ------------------------------------------------------------ */

typedef struct shmc_worker {
    shmc_plat_thread thread;
    shmc_apt *apt;
    struct shmc_worker *next;
} shmc_worker;

/* Idle workers sleep at most this long before they look around again. */
#define WORKER_IDLE_MS 2000u

/* ---- a worker's watched call (see call.c) ------------------------------------
 *
 * A worker watches the call it completed last while it spins; it stops
 * before it takes calls from the inbox (it is busy then), before it sleeps
 * (a caller rings nobody for a sent call) and when the apartment shuts
 * down. A call sent to it meanwhile goes to the inbox, like a new call. */

static void worker_unwatch(shmc_apt *apt, shmc_call **watch)
{
    shmc_call *c = *watch;
    *watch = NULL;
    if (atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        return;
    uint32_t s = SHMC_CALL_WATCHED;
    if (atomic_compare_exchange_strong(&c->state, &s, SHMC_CALL_DONE) ||
        atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        return;
    if (s == SHMC_CALL_REQUEST) {
        inbox_push(apt, &c->link, &c->link, true);
        if (atomic_fetch_sub(&apt->spare_workers, 1) <= 0)
            start_worker(apt);
        shmc_notifier_notify(apt->bell, false);
    } else if (s == SHMC_CALL_ABANDONED_WATCHED) {
        shmc_call_drop_unrun(c);
    }
}

/* The watched call if it was sent to this worker (then it is no longer
 * watched); drops one given up. */
static shmc_call *worker_check_watch(shmc_apt *apt, shmc_call **watch)
{
    shmc_call *c = *watch;
    uint32_t s = atomic_load_explicit(&c->state, memory_order_acquire);
    shmc_quiet_looked(&shmc_hot_get()->callee_quiet, s != SHMC_CALL_WATCHED);
    if (s == SHMC_CALL_WATCHED)
        return NULL;
    *watch = NULL;
    if (atomic_load_explicit(&c->watcher, memory_order_relaxed) != apt)
        return NULL; /* taken back by its caller, and maybe sent elsewhere */
    if (s == SHMC_CALL_REQUEST)
        return c;
    if (s == SHMC_CALL_ABANDONED_WATCHED)
        shmc_call_drop_unrun(c);
    return NULL;
}

static void worker_main(void *arg)
{
    shmc_worker *w = arg;
    shmc_apt *apt = w->apt;
    shmc_thread *th = shmc_thread_get();
    if (th) {
        /* a runtime thread of the MTA, not a member: it does not keep the
         * MTA alive, and ShmCoUninitialize does nothing on it */
        th->apt = apt;
        th->worker = true;
        shmc_apt_addref(apt);
    }
    /* counted spare by start_worker; execute counts it spare again before
     * it tells the caller, so that the caller's next call does not start
     * another worker */
    shmc_notifier *bell = apt->bell;
    shmc_call *watch = NULL;
    while (!atomic_load(&apt->stopping)) {
        shmc_call *c = NULL;
        if (watch && (c = worker_check_watch(apt, &watch)) != NULL) {
            atomic_fetch_sub(&apt->spare_workers, 1); /* busy, with no call from the inbox */
        } else if (inbox_list(atomic_load_explicit(&apt->inbox, memory_order_relaxed))) {
            if (watch)
                worker_unwatch(apt, &watch);
            c = (shmc_call *)mta_take(apt);
        }
        if (c) {
            if (shmc_call_execute(apt, c, &apt->spare_workers, apt_may_watch(apt)))
                watch = c;
            continue;
        }
        if (watch && !apt_may_watch(apt))
            worker_unwatch(apt, &watch); /* shutting down */
        /* spin for the next call, then sleep until the bell rings (giving
         * the CPU away at once if the watched call's caller waits behind
         * this thread on it: rt.h) */
        shmc_spin sp;
        shmc_spin_begin_watching(
            &sp, atomic_load_explicit(&shmc_tune.callee_spin_ns, memory_order_relaxed),
            watch ? atomic_load_explicit(&watch->caller_cpu, memory_order_relaxed) : -1);
        bool work;
        while (!(work = shmc_apt_has_calls(apt) || atomic_load(&apt->stopping) ||
                        (watch && atomic_load_explicit(&watch->state, memory_order_relaxed) !=
                                      SHMC_CALL_WATCHED)) &&
               shmc_spin_next(&sp)) {}
        if (work)
            continue;
        if (watch) {
            worker_unwatch(apt, &watch); /* no sleeping while watching */
            continue;
        }
        uint32_t seq = shmc_notifier_wait_prepare(bell);
        if (shmc_apt_has_calls(apt) || atomic_load(&apt->stopping))
            shmc_notifier_wait_cancel(bell);
        else
            shmc_notifier_wait_commit(bell, seq, WORKER_IDLE_MS);
    }
    if (watch)
        worker_unwatch(apt, &watch);
    atomic_fetch_sub(&apt->spare_workers, 1);
    if (th) {
        th->apt = NULL;
        shmc_apt_release(apt);
    }
}

static void start_worker(shmc_apt *apt)
{
    shmc_worker *w = shmc_calloc(1, sizeof(*w));
    if (!w)
        return; /* the call waits for a busy worker instead */
    w->apt = apt;
    shmc_apt_addref(apt);
    shmc_plat_mutex_lock(&apt->qlock);
    atomic_fetch_add(&apt->spare_workers, 1); /* before it can run a call */
    bool ok = !atomic_load(&apt->stopping) && apt->workers < SHMC_MTA_MAX_WORKERS &&
              SUCCEEDED(shmc_plat_thread_create(&w->thread, worker_main, w));
    if (ok) {
        w->next = apt->worker_list;
        apt->worker_list = w;
        apt->workers++;
    } else {
        atomic_fetch_sub(&apt->spare_workers, 1);
    }
    shmc_plat_mutex_unlock(&apt->qlock);
    if (!ok) {
        shmc_apt_release(apt);
        shmc_free(w);
    }
}

bool shmc_apt_check_workers(shmc_apt *apt)
{
    shmc_plat_mutex_lock(&apt->qlock);
    bool none = apt->workers == 0 && !atomic_load(&apt->stopping);
    shmc_plat_mutex_unlock(&apt->qlock);
    if (!none)
        return true;
    start_worker(apt);
    shmc_notifier_notify(apt->bell, false);
    shmc_plat_mutex_lock(&apt->qlock);
    none = apt->workers == 0 && !atomic_load(&apt->stopping);
    shmc_plat_mutex_unlock(&apt->qlock);
    return !none;
}

static void stop_workers(shmc_apt *apt)
{
    shmc_plat_mutex_lock(&apt->qlock);
    atomic_store(&apt->stopping, true);
    shmc_worker *list = apt->worker_list;
    apt->worker_list = NULL;
    shmc_plat_mutex_unlock(&apt->qlock);
    atomic_fetch_add(&apt->bell->sleepers, 1); /* make the notification wake them */
    shmc_notifier_notify(apt->bell, true);
    atomic_fetch_sub(&apt->bell->sleepers, 1);
    while (list) {
        shmc_worker *next = list->next;
        shmc_plat_thread_join(&list->thread);
        shmc_apt_release(list->apt);
        shmc_free(list);
        list = next;
    }
}

/* ---- STA entry points ------------------------------------------------------- */

/* The calling thread's STA with a reference, or an error. */
static HRESULT own_sta(shmc_apt **out)
{
    *out = NULL;
    shmc_thread *th = shmc_thread_get();
    if (!th)
        return E_OUTOFMEMORY;
    if (!th->inits) {
        /* an uninitialized thread in the implicit MTA is not an STA */
        return CO_E_NOTINITIALIZED;
    }
    if (th->apt->model != SHMC_STA)
        return CO_E_NOT_SUPPORTED;
    *out = th->apt; /* lives while this thread is in it: no reference */
    return S_OK;
}

static HRESULT process_calls(shmc_apt *apt, DWORD timeout_ms);

HRESULT ShmCoProcessCalls(DWORD timeout_ms)
{
    shmc_apt *apt;
    HRESULT hr = own_sta(&apt);
    if (FAILED(hr))
        return hr;
    bool counted = shmc_sta_enter(apt);
    hr = process_calls(apt, timeout_ms);
    if (counted)
        shmc_sta_leave(apt);
    return hr;
}

static HRESULT process_calls(shmc_apt *apt, DWORD timeout_ms)
{
    if (shmc_apt_pump(apt))
        return S_OK;
    if (timeout_ms == 0)
        return S_FALSE; /* a poll: no spin (an event loop that polls must not stall in it) */
    /* a short spin catches a caller that is about to send; its clock read
     * (after the first looks) starts the timeout too, a microsecond late
     * at most */
    shmc_spin sp;
    shmc_call *w = apt->watch;
    shmc_spin_begin_watching(&sp,
                             atomic_load_explicit(&shmc_tune.callee_spin_ns, memory_order_relaxed),
                             w ? atomic_load_explicit(&w->caller_cpu, memory_order_relaxed) : -1);
    while (shmc_spin_next(&sp)) {
        if (shmc_apt_pump(apt))
            return S_OK;
    }
    uint64_t deadline = UINT64_MAX;
    if (timeout_ms != INFINITE)
        deadline = (sp.start ? sp.start : shmc_plat_clock_ns()) + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0)
            return S_FALSE;
        uint32_t seq = shmc_notifier_wait_prepare(apt->bell);
        if (shmc_apt_has_calls(apt))
            shmc_notifier_wait_cancel(apt->bell);
        else
            shmc_notifier_wait_commit(apt->bell, seq, left);
        if (shmc_apt_pump(apt))
            return S_OK;
    }
}

HRESULT ShmCoGetApartmentWaitHandle(intptr_t *handle)
{
    if (!handle)
        return E_INVALIDARG;
    *handle = -1;
    shmc_apt *apt;
    HRESULT hr = own_sta(&apt);
    if (FAILED(hr))
        return hr;
    /* only the STA's own thread gets here: no race on creating it */
    if (!atomic_load(&apt->has_event)) {
        hr = shmc_plat_event_init(&apt->event);
        if (FAILED(hr))
            return hr;
        /* seq_cst, as the producers' push (or send to the watch) and
         * their look at has_event after it: either this look at the queue
         * sees their call, or they see the event and set it. A release
         * store may pass the look (x86 reorders a store with a later
         * load), and a call pushed in between left the event unset. */
        atomic_store(&apt->has_event, true);
        if (shmc_apt_has_calls(apt))
            sta_set_event(apt);
    }
    *handle = shmc_plat_event_handle(&apt->event);
    return S_OK;
}

/* ---- shutdown ---------------------------------------------------------------- */

void shmc_apt_shutdown(shmc_apt *apt)
{
    /* 1. Refuse new calls and new imports; take the apartment's objects out
     *    of the tables. */
    close_queue(apt);

    shmc_plat_mutex_lock(&shmc_g.lock);
    apt->dead = true;
    shmc_stubmgr *list = apt->stubs, *stubs = NULL;
    apt->stubs = NULL;
    while (list) {
        shmc_stubmgr *next = list->next;
        shmc_stubmgr_unlist_locked(list); /* clears list->next */
        list->next = stubs;
        stubs = list;
        list = next;
    }
    /* unlink from rt.apts */
    for (shmc_apt **pp = &shmc_g.apts; *pp; pp = &(*pp)->next) {
        if (*pp == apt) {
            *pp = apt->next;
            break;
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);

    /* 2. Release our objects (we are in the apartment). */
    while (stubs) {
        shmc_stubmgr *next = stubs->next;
        shmc_stubmgr_release_object(stubs);
        shmc_stubmgr_release(stubs); /* the apartment list's */
        stubs = next;
    }

    /* 3. Fail the calls queued for us, so that nobody waits on us while we
     *    wait below; then release what our proxies hold on other
     *    apartments' objects (the queue is closed: nothing new arrives). */
    shmc_apt_pump(apt);
    for (;;) {
        enum { BATCH = 16 };
        shmc_stubmgr *destroy[BATCH];
        shmc_proxymgr *remote[BATCH];
        size_t n = 0, nr = 0;
        shmc_plat_mutex_lock(&shmc_g.lock);
        while (apt->proxies && n < BATCH && nr < BATCH) {
            shmc_proxymgr *pm = apt->proxies;
            apt->proxies = pm->next;
            pm->listed = false;
            shmc_proxymgr_apt_gone_locked(pm, destroy, &n, BATCH);
            /* another process's object: its references go back by message,
             * outside the lock (a manager already at zero does it itself) */
            uint32_t refs = atomic_load(&pm->refs);
            while (pm->conn && refs && !atomic_compare_exchange_weak(&pm->refs, &refs, refs + 1)) {}
            if (pm->conn && refs)
                remote[nr++] = pm;
        }
        bool more = apt->proxies != NULL;
        shmc_plat_mutex_unlock(&shmc_g.lock);
        for (size_t i = 0; i < n; i++)
            shmc_stubmgr_destroy(destroy[i]);
        for (size_t i = 0; i < nr; i++) {
            shmc_remote_release_refs(remote[i]);
            IUnknown_Release(&remote[i]->IUnknown_iface);
        }
        if (!more)
            break;
    }

    /* 4. MTA: stop the workers; fail what is still queued. */

    if (apt->model == SHMC_MTA)
        stop_workers(apt);
    shmc_apt_pump(apt); /* the stubs are gone: every call fails cleanly */

    shmc_apt_release(apt); /* rt.apts's */
}
