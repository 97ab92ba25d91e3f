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
 * worker threads, started when calls arrive and none is idle.
 */
#include "alloc.h"
#include "csprng.h"
#include "rt.h"

#include <string.h>

shmc_rt shmc_g;

static shmc_plat_once rt_once = SHMC_PLAT_ONCE_INIT;

static void thread_dtor(void *p);

static void rt_setup(void)
{
    shmc_plat_mutex_init(&shmc_g.lock);
    shmc_plat_proc_self(&shmc_g.self);
    shmc_g.init_hr = shmc_plat_tls_create(&shmc_g.tls, thread_dtor);
}

HRESULT shmc_rt_init(void)
{
    shmc_plat_once_run(&rt_once, rt_setup);
    return shmc_g.init_hr;
}

/* ---- notifiers ------------------------------------------------------------ */

HRESULT shmc_notifier_create(shmc_notifier **out)
{
    *out = NULL;
    shmc_notifier *n = shmc_calloc(1, sizeof(*n));
    if (!n)
        return E_OUTOFMEMORY;
    HRESULT hr = shmc_plat_waiter_open_local(&n->waiter, &n->word);
    if (FAILED(hr)) {
        shmc_free(n);
        return hr;
    }
    atomic_init(&n->refs, 1);
    *out = n;
    return S_OK;
}

void shmc_notifier_addref(shmc_notifier *n)
{
    atomic_fetch_add_explicit(&n->refs, 1, memory_order_relaxed);
}

void shmc_notifier_release(shmc_notifier *n)
{
    if (n && atomic_fetch_sub_explicit(&n->refs, 1, memory_order_acq_rel) == 1) {
        shmc_plat_waiter_close(&n->waiter);
        shmc_free(n);
    }
}

void shmc_notifier_ring(shmc_notifier *n, bool all)
{
    atomic_fetch_add(&n->word.value, 1);
    shmc_plat_wake(&n->waiter, all);
}

/* ---- threads ----------------------------------------------------------------- */

shmc_thread *shmc_thread_get(void)
{
    if (FAILED(shmc_rt_init()))
        return NULL;
    shmc_thread *th = shmc_plat_tls_get(&shmc_g.tls);
    if (th)
        return th;
    th = shmc_calloc(1, sizeof(*th));
    if (!th)
        return NULL;
    th->timeout_ms = INFINITE;
    if (FAILED(shmc_plat_tls_set(&shmc_g.tls, th))) {
        shmc_free(th);
        return NULL;
    }
    return th;
}

shmc_notifier *shmc_thread_notifier(shmc_thread *th)
{
    if (th->apt && th->apt->model == SHMC_STA)
        return th->apt->bell;
    if (!th->notifier && FAILED(shmc_notifier_create(&th->notifier)))
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
    shmc_plat_tls_set(&shmc_g.tls, NULL);
    shmc_notifier_release(th->notifier);
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
    shmc_notifier_release(apt->bell);
    shmc_plat_mutex_fini(&apt->qlock);
    shmc_free(apt);
}

static HRESULT apt_create(int model, shmc_apt **out)
{
    *out = NULL;
    shmc_apt *apt = shmc_calloc(1, sizeof(*apt));
    if (!apt)
        return E_OUTOFMEMORY;
    HRESULT hr = shmc_notifier_create(&apt->bell);
    if (FAILED(hr)) {
        shmc_free(apt);
        return hr;
    }
    apt->oxid = shmc_random_u64();
    if (!apt->oxid) {
        shmc_notifier_release(apt->bell);
        shmc_free(apt);
        return E_FAIL;
    }
    atomic_init(&apt->refs, 1); /* the list's (rt.apts) */
    apt->model = model;
    shmc_plat_mutex_init(&apt->qlock);
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
    else if (shmc_g.mta && !shmc_g.mta->dead)
        apt = shmc_g.mta; /* the implicit MTA */
    if (apt)
        shmc_apt_addref(apt);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return apt;
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
        shmc_apt *mta = shmc_g.mta;
        if (!mta) {
            shmc_plat_mutex_unlock(&shmc_g.lock);
            hr = apt_create(SHMC_MTA, &fresh);
            if (FAILED(hr))
                return hr;
            shmc_plat_mutex_lock(&shmc_g.lock);
            mta = shmc_g.mta; /* another thread may have made it meanwhile */
            if (!mta) {
                mta = fresh;
                fresh = NULL;
                mta->next = shmc_g.apts;
                shmc_g.apts = mta;
                shmc_g.mta = mta;
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
    if (last && apt == shmc_g.mta)
        shmc_g.mta = NULL; /* a new MTA can start while this one ends */
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

/* ---- the queue of incoming calls --------------------------------------------- */

static void start_worker_locked(shmc_apt *apt);

bool shmc_apt_enqueue(shmc_apt *apt, shmc_call *c)
{
    shmc_plat_mutex_lock(&apt->qlock);
    if (apt->qclosed) {
        shmc_plat_mutex_unlock(&apt->qlock);
        return false;
    }
    c->next = NULL;
    if (apt->qtail)
        apt->qtail->next = c;
    else
        apt->qhead = c;
    apt->qtail = c;
    apt->qlen++;
    if (apt->has_event)
        shmc_plat_event_set(&apt->event);
    /* every queued call should find a worker: idle ones take one each */
    if (apt->model == SHMC_MTA && apt->qlen > apt->idle_workers)
        start_worker_locked(apt);
    shmc_plat_mutex_unlock(&apt->qlock);
    /* an STA has one sleeper; an MTA needs one idle worker per call */
    shmc_notifier_ring(apt->bell, apt->model == SHMC_STA);
    return true;
}

static shmc_call *dequeue(shmc_apt *apt)
{
    shmc_plat_mutex_lock(&apt->qlock);
    shmc_call *c = apt->qhead;
    if (c) {
        apt->qhead = c->next;
        if (!apt->qhead)
            apt->qtail = NULL;
        c->next = NULL;
        apt->qlen--;
    }
    /* level-triggered: the event stays set exactly while calls wait */
    if (!apt->qhead && apt->has_event)
        shmc_plat_event_reset(&apt->event);
    shmc_plat_mutex_unlock(&apt->qlock);
    return c;
}

unsigned shmc_apt_pump(shmc_apt *apt)
{
    unsigned n = 0;
    shmc_call *c;
    while ((c = dequeue(apt)) != NULL) {
        shmc_call_execute(c);
        n++;
    }
    return n;
}

/* ---- MTA workers ------------------------------------------------------------ */

typedef struct shmc_worker {
    shmc_plat_thread thread;
    shmc_apt *apt;
    struct shmc_worker *next;
} shmc_worker;

/* Idle workers keep this long for new calls before they end. */
#define WORKER_IDLE_MS 2000u
/* Spin this many rounds for a new call before sleeping. */
#define WORKER_SPIN 2000

/* At most this many MTA workers; further calls wait for a free one. */
#define MAX_WORKERS 64

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
    for (;;) {
        shmc_call *c = dequeue(apt);
        if (c) {
            shmc_call_execute(c);
            continue;
        }
        /* Idle. Counted as idle from here on, so that new calls ring this
         * worker instead of starting another. */
        shmc_plat_mutex_lock(&apt->qlock);
        if (apt->stopping) {
            shmc_plat_mutex_unlock(&apt->qlock);
            break;
        }
        apt->idle_workers++;
        uint32_t seq = atomic_load(&apt->bell->word.value);
        bool work = apt->qhead != NULL;
        shmc_plat_mutex_unlock(&apt->qlock);
        for (int i = 0; i < WORKER_SPIN && !work; i++) {
            shmc_plat_cpu_relax();
            work = atomic_load_explicit(&apt->bell->word.value, memory_order_relaxed) != seq;
        }
        if (!work)
            shmc_plat_wait(&apt->bell->waiter, seq, WORKER_IDLE_MS);
        shmc_plat_mutex_lock(&apt->qlock);
        apt->idle_workers--;
        bool stop = apt->stopping;
        shmc_plat_mutex_unlock(&apt->qlock);
        if (stop)
            break;
    }
    if (th) {
        th->apt = NULL;
        shmc_apt_release(apt);
    }
}

static void start_worker_locked(shmc_apt *apt)
{
    if (apt->stopping || apt->workers >= MAX_WORKERS)
        return;
    shmc_worker *w = shmc_calloc(1, sizeof(*w));
    if (!w)
        return; /* the calls wait for a busy worker instead */
    w->apt = apt;
    shmc_apt_addref(apt);
    if (FAILED(shmc_plat_thread_create(&w->thread, worker_main, w))) {
        shmc_apt_release(apt);
        shmc_free(w);
        return;
    }
    w->next = apt->worker_list;
    apt->worker_list = w;
    apt->workers++;
}

static void stop_workers(shmc_apt *apt)
{
    shmc_plat_mutex_lock(&apt->qlock);
    apt->stopping = true;
    shmc_worker *list = apt->worker_list;
    apt->worker_list = NULL;
    shmc_plat_mutex_unlock(&apt->qlock);
    shmc_notifier_ring(apt->bell, true);
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
    shmc_apt_addref(th->apt);
    *out = th->apt;
    return S_OK;
}

HRESULT ShmCoProcessCalls(DWORD timeout_ms)
{
    shmc_apt *apt;
    HRESULT hr = own_sta(&apt);
    if (FAILED(hr))
        return hr;
    uint64_t deadline = timeout_ms == INFINITE
                            ? UINT64_MAX
                            : shmc_plat_clock_ns() + (uint64_t)timeout_ms * 1000000u;
    hr = S_FALSE;
    for (;;) {
        uint32_t seq = atomic_load(&apt->bell->word.value);
        if (shmc_apt_pump(apt)) {
            hr = S_OK;
            break;
        }
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0)
            break;
        /* a short spin catches a caller that is about to send */
        bool rang = false;
        for (int i = 0; i < WORKER_SPIN && !rang; i++) {
            shmc_plat_cpu_relax();
            rang = atomic_load_explicit(&apt->bell->word.value, memory_order_relaxed) != seq;
        }
        if (!rang)
            shmc_plat_wait(&apt->bell->waiter, seq, left);
    }
    shmc_apt_release(apt);
    return hr;
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
    shmc_plat_mutex_lock(&apt->qlock);
    if (!apt->has_event) {
        hr = shmc_plat_event_init(&apt->event);
        if (SUCCEEDED(hr)) {
            apt->has_event = true;
            if (apt->qhead)
                shmc_plat_event_set(&apt->event);
        }
    }
    if (apt->has_event)
        *handle = shmc_plat_event_handle(&apt->event);
    shmc_plat_mutex_unlock(&apt->qlock);
    shmc_apt_release(apt);
    return hr;
}

/* ---- shutdown ---------------------------------------------------------------- */

void shmc_apt_shutdown(shmc_apt *apt)
{
    /* 1. Refuse new calls and new imports; take the apartment's objects out
     *    of the tables. */
    shmc_plat_mutex_lock(&apt->qlock);
    apt->qclosed = true;
    shmc_plat_mutex_unlock(&apt->qlock);

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
        size_t n = 0;
        shmc_plat_mutex_lock(&shmc_g.lock);
        while (apt->proxies && n < BATCH) {
            shmc_proxymgr *pm = apt->proxies;
            apt->proxies = pm->next;
            pm->listed = false;
            shmc_proxymgr_apt_gone_locked(pm, destroy, &n, BATCH);
        }
        bool more = apt->proxies != NULL;
        shmc_plat_mutex_unlock(&shmc_g.lock);
        for (size_t i = 0; i < n; i++)
            shmc_stubmgr_destroy(destroy[i]);
        if (!more)
            break;
    }

    /* 4. MTA: stop the workers; fail what is still queued. */

    if (apt->model == SHMC_MTA)
        stop_workers(apt);
    shmc_apt_pump(apt); /* the stubs are gone: every call fails cleanly */

    shmc_apt_release(apt); /* rt.apts's */
}
