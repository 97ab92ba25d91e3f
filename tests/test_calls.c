/*
 * test_calls.c - calls through real proxies between apartments of one
 * process (generated from tests/calls/calltest.idl): every kind of
 * argument, STA rules (the owner thread runs its calls one at a time, in
 * order; callbacks reach an STA that waits; the three ways to drive an
 * STA), MTA objects on runtime threads, object-returning methods, remote
 * QueryInterface, timeouts, disconnection and apartment ends.
 */
#define COBJMACROS
#include "alloc.h"
#include "callee.h"
#include "callfaults.h"
#include "calltest.h"
#include "framelimits.h"
#include "rt.h"
#include "shmcom/proxystub.h"
#include "tobj.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <errno.h>
#include <poll.h>
#endif

/* ---- set-up ------------------------------------------------------------------- */

typedef struct fixture {
    callee *obj;
    _Atomic int freed;
    IStream *stream;
    thost *host;
    ICallee *proxy;
    uint64_t host_tid;
    shmc_apt *apt; /* host_apt's answer, written by the host's thread */
    int callees;   /* live callees before it: a failed test's are not its own */
} fixture;

/* State a test shares with threads it starts lives on the heap, not on the
 * test's stack: a failed assert leaves the test (longjmp) while those
 * threads may still run, and they must not go on in a frame that is gone.
 * The test frees it once it has joined every thread that uses it; on a
 * failed assert the threads may still use it: it is leaked, not freed
 * under them. Zeroed; taken before any thread that uses it starts. */
static void *shared_state(size_t size)
{
    void *p = calloc(1, size);
    assert_non_null(p);
    return p;
}

static void record_tid(void *arg)
{
    *(uint64_t *)arg = shmc_plat_thread_self_id();
}

/* The test interfaces' proxies and stubs, registered once. */
static void register_calltest(void)
{
    static bool registered;
    if (!registered) {
        assert_hr(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo), S_OK);
        registered = true;
    }
}

/* An object in a host thread's apartment (coinit), and a proxy to it here
 * in an apartment of `mine`. */
static fixture *fixture_new(DWORD host_coinit, DWORD mine)
{
    register_calltest();
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_hr(ShmCoInitializeEx(NULL, mine), S_OK);
    f->callees = atomic_load(&live_callees);
    f->obj = callee_new(1, &f->freed);
    assert_hr(shmc_stream_create_heap(0, &f->stream), S_OK);
    f->host = thost_start(host_coinit, f->stream, &IID_ICallee, (IUnknown *)&f->obj->ICallee_iface,
                          MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(f->host), S_OK);
    thost_run(f->host, record_tid, &f->host_tid);
    tstream_rewind(f->stream);
    assert_hr(ShmCoUnmarshalInterface(f->stream, &IID_ICallee, (void **)&f->proxy), S_OK);
    assert_ptr_not_equal(f->proxy, &f->obj->ICallee_iface);
    return f;
}

/* Releases the proxy (if still held), checks the object went away, stops
 * the host and leaves the apartment. */
static void fixture_free(fixture *f)
{
    callee *obj = f->obj;
    ICallee_Release(&obj->ICallee_iface); /* ours, from creation */
    if (f->proxy)
        assert_int_equal(ICallee_Release(f->proxy), 0);
    thost_stop(f->host, false);
    assert_true(atomic_load(&f->freed));                      /* nothing kept it */
    assert_int_equal(atomic_load(&live_callees), f->callees); /* nor any child */

    IStream_Release(f->stream);
    ShmCoUninitialize();
    free(f);
}

/* ---- arguments -------------------------------------------------------------------- */

static void every_argument_kind(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    ICallee *p = f->proxy;
    assert_hr(ICallee_Null(p), S_OK);

    LONG sum = 0;
    assert_hr(ICallee_Add(p, 40, 2, &sum), S_OK);
    assert_int_equal(sum, 42);

    double total = 0;
    assert_hr(ICallee_Scalars(p, 200, -30000, 4000000000u, -5000000000LL, 0.5, 0.25f, 1, &total),
              S_OK);
    assert_true(total == 200.0 - 30000.0 + 4000000000.0 - 5000000000.0 + 0.5 + 0.25 + 1000.0);

    /* the object's own HRESULTs pass through unchanged, success codes too */
    assert_hr(ICallee_Fail(p, E_NOTIMPL), E_NOTIMPL);
    assert_hr(ICallee_Fail(p, (HRESULT)0x8BADF00Du), (HRESULT)0x8BADF00Du);
    assert_hr(ICallee_Fail(p, S_FALSE), S_FALSE);
    assert_hr(ICallee_Fail(p, RPC_E_DISCONNECTED), RPC_E_DISCONNECTED);

    char *copy = NULL;
    assert_hr(ICallee_Echo(p, "hello, apartment", &copy), S_OK);
    assert_string_equal(copy, "re: hello, apartment");
    ShmCoTaskMemFree(copy);
    assert_hr(ICallee_Echo(p, "", &copy), S_OK);
    assert_string_equal(copy, "re: ");
    ShmCoTaskMemFree(copy);

    LONG values[1000];
    hyper expect = 0;
    for (int i = 0; i < 1000; i++) {
        values[i] = i * 7 - 3000;
        expect += values[i];
    }
    hyper got = 0;
    assert_hr(ICallee_Sum(p, 1000, values, &got), S_OK);
    assert_int_equal(got, expect);
    assert_hr(ICallee_Sum(p, 0, values, &got), S_OK);
    assert_int_equal(got, 0);

    BYTE buf[3000];
    memset(buf, 0, sizeof(buf));
    assert_hr(ICallee_Fill(p, sizeof(buf), buf), S_OK);
    for (unsigned i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], (BYTE)(i * 3 + 1));

    LONG rev[5] = {1, 2, 3, 4, 5};
    assert_hr(ICallee_Reverse(p, 5, rev), S_OK);
    assert_int_equal(rev[0], 5);
    assert_int_equal(rev[4], 1);

    ULONG count = 0;
    LONG *made = NULL;
    assert_hr(ICallee_MakeArray(p, 300, &count, &made), S_OK);
    assert_int_equal(count, 300);
    assert_non_null(made);
    assert_int_equal(made[299], 299 * 299);
    ShmCoTaskMemFree(made);

    CT_POINT pt = {1, 2, 3000000000LL};
    CT_FRAME fr, moved;
    memset(&fr, 0, sizeof(fr));
    memset(&moved, 0, sizeof(moved));
    fr.width = 640;
    fr.height = 480;
    memcpy(fr.tag, "frame01", 8);
    fr.origin.x = 10;
    fr.origin.z = -1;
    assert_hr(ICallee_Move(p, pt, &fr, &moved), S_OK);
    assert_int_equal(moved.width, 640);
    assert_int_equal(moved.origin.x, 11);
    assert_int_equal(moved.origin.y, 2);
    assert_int_equal(moved.origin.z, 3000000000LL - 1);
    assert_int_equal(moved.tag[7], 'M');

    /* a NULL [ref] pointer is refused before any call */
    assert_hr(ICallee_Add(p, 1, 2, NULL), E_POINTER);
    fixture_free(f);
}

/* ---- STA rules --------------------------------------------------------------------- */

static void calls_run_on_the_sta_thread(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(f->proxy, &tid), S_OK);
    assert_int_equal((uint64_t)tid, f->host_tid);
    fixture_free(f);
}

typedef struct hammer {
    ICallee *proxy;
    IStream *stream;
    int id;
    HRESULT hr;
} hammer;

static void hammer_main(void *arg)
{
    hammer *h = arg;
    /* each worker thread is in the MTA and unmarshals its own proxy */
    ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    h->hr = ShmCoGetInterfaceAndReleaseStream(h->stream, &IID_ICallee, (void **)&h->proxy);
    for (LONG seq = 1; seq <= 300 && SUCCEEDED(h->hr); seq++) {
        LONG sum = 0;
        h->hr = ICallee_Add(h->proxy, h->id, seq, &sum);
        if (SUCCEEDED(h->hr) && sum != h->id + seq)
            h->hr = E_UNEXPECTED;
    }
    if (h->proxy)
        ICallee_Release(h->proxy);
    ShmCoUninitialize();
}

static void sta_runs_one_call_at_a_time_in_order(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    enum { N = 4 };
    hammer *h = shared_state(N * sizeof(*h));
    shmc_plat_thread t[N];
    for (int i = 0; i < N; i++) {
        h[i].proxy = NULL;
        h[i].id = i;
        assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_ICallee, (IUnknown *)f->proxy,
                                                           &h[i].stream),
                  S_OK);
    }
    for (int i = 0; i < N; i++)
        assert_hr(shmc_plat_thread_create(&t[i], hammer_main, &h[i]), S_OK);
    for (int i = 0; i < N; i++) {
        shmc_plat_thread_join(&t[i]);
        assert_hr(h[i].hr, S_OK);
    }
    free(h);
    assert_int_equal(atomic_load(&f->obj->max_in_flight), 1); /* one at a time */
    assert_false(f->obj->out_of_order);                       /* each caller in order */
    assert_int_equal(atomic_load(&f->obj->calls), N * 300);
    fixture_free(f);
}

static void callback_reaches_the_waiting_sta(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    callee *mine = callee_new(2, NULL);
    atomic_store(&notify_thread, 0);
    atomic_store(&notify_value, 0);
    /* the host calls back into this STA while it waits for the reply */
    assert_hr(ICallee_Call(f->proxy, &mine->ICallback_iface, 42), S_OK);
    assert_int_equal(atomic_load(&notify_value), 42);
    assert_int_equal(atomic_load(&notify_thread), shmc_plat_thread_self_id());
    assert_int_equal(atomic_load(&mine->refs), 1); /* the callback's proxy is gone */
    /* a NULL interface pointer travels as NULL */
    assert_hr(ICallee_Call(f->proxy, NULL, 1), E_POINTER);
    ICallee_Release(&mine->ICallee_iface);
    fixture_free(f);
}

/* The calling thread becomes an STA with its wait handle (*h) and writes
 * a record of obj into stream; the first error, if any. (The thread is in
 * the STA either way: it uninitializes.) */
static HRESULT sta_with_handle(callee *obj, IStream *stream, intptr_t *h)
{
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    HRESULT hr = ShmCoGetApartmentWaitHandle(h);
    if (SUCCEEDED(hr))
        hr = ShmCoMarshalInterface(stream, &IID_ICallee, (IUnknown *)&obj->ICallee_iface,
                                   MSHCTX_INPROC, NULL, MSHLFLAGS_NORMAL);
    return hr;
}

/* An STA driven by an ordinary event loop through its wait handle. */
typedef struct loop_host {
    callee *obj;
    IStream *stream;
    _Atomic int ready, stop;
    _Atomic int dispatched;
    HRESULT hr;
    _Atomic int freed; /* obj's */
} loop_host;

static void event_loop_main(void *arg)
{
    loop_host *l = arg;
    intptr_t h = -1;
    l->hr = sta_with_handle(l->obj, l->stream, &h);
    atomic_store(&l->ready, 1);
    while (SUCCEEDED(l->hr) && !atomic_load(&l->stop)) {
#ifdef _WIN32
        DWORD rc = WaitForSingleObject((HANDLE)h, 10);
        bool ready = rc == WAIT_OBJECT_0;
#else
        struct pollfd p = {.fd = (int)h, .events = POLLIN};
        bool ready = poll(&p, 1, 10) > 0;
#endif
        if (ready && ShmCoProcessCalls(0) == S_OK)
            atomic_fetch_add(&l->dispatched, 1);
    }
    ShmCoUninitialize();
}

static void sta_driven_by_event_loop(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo);
    loop_host *l = shared_state(sizeof(*l));
    l->obj = callee_new(3, &l->freed);
    assert_hr(shmc_stream_create_heap(0, &l->stream), S_OK);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, event_loop_main, l), S_OK);
    while (!atomic_load(&l->ready))
        shmc_plat_sleep_ms(1);
    assert_hr(l->hr, S_OK);
    ICallee *p = NULL;
    tstream_rewind(l->stream);
    assert_hr(ShmCoUnmarshalInterface(l->stream, &IID_ICallee, (void **)&p), S_OK);
    for (LONG i = 0; i < 50; i++) {
        LONG tag = 0;
        assert_hr(ICallee_GetTag(p, &tag), S_OK);
        assert_int_equal(tag, 3);
    }
    assert_true(atomic_load(&l->dispatched) > 0); /* the loop ran them */
    assert_int_equal(ICallee_Release(p), 0);
    atomic_store(&l->stop, 1);
    shmc_plat_thread_join(&t);
    ICallee_Release(&l->obj->ICallee_iface);
    assert_true(atomic_load(&l->freed));
    IStream_Release(l->stream);
    free(l);
    ShmCoUninitialize();
}

/* ---- the three ways an STA receives calls, one by one -------------------------- */

/* Waits (at most 20 s, scaled) for a flag another thread raises; false if
 * it did not. Usable on any thread (it fails nothing itself). */
static bool wait_flag(_Atomic int *flag)
{
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(flag)) {
        if (tsupport_ms_since(t0) > tsupport_ms(20000))
            return false;
        shmc_plat_sleep_ms(1);
    }
    return true;
}

static void record_apt(void *arg)
{
    shmc_apt *apt = shmc_current_apt();
    shmc_apt_release(apt); /* (its thread keeps it while it is in it) */
    *(shmc_apt **)arg = apt;
}

/* The apartment of f's host, which lives as long as the host. (Recorded
 * in f, not here: thost_run may give up on a host that runs it later.) */
static shmc_apt *host_apt(fixture *f)
{
    f->apt = NULL;
    thost_run(f->host, record_apt, &f->apt);
    assert_non_null(f->apt);
    return f->apt;
}

/* How many calls wait in an apartment's inbox (rt.h: a stack of calls,
 * bit 0 the closed flag). Read only while its thread takes none: while it
 * is busy outside a pump or inside a call, the stack only grows. */
static unsigned inbox_count(shmc_apt *apt)
{
    unsigned n = 0;
    uintptr_t top = atomic_load(&apt->inbox) & ~(uintptr_t)1;
    for (shmc_qnode *q = (shmc_qnode *)top; q; q = atomic_load(&q->next))
        n++;
    return n;
}

/* Waits until n calls wait in the inbox of an apartment that takes none. */
static void wait_inbox(shmc_apt *apt, unsigned n)
{
    uint64_t t0 = shmc_plat_clock_ns();
    while (inbox_count(apt) < n) {
        if (tsupport_ms_since(t0) > tsupport_ms(20000))
            fail_msg("%u calls queued, not %u", inbox_count(apt), n);
        shmc_plat_sleep_ms(1);
    }
    assert_int_equal(inbox_count(apt), n);
}

/* A thread that joins the MTA and makes one call, ICallee_Add(id, seq), on
 * a proxy of the MTA. */
typedef struct one_call {
    ICallee *proxy;
    LONG id, seq, sum;
    HRESULT hr;
    _Atomic int done;
    shmc_plat_thread thread;
} one_call;

static void one_call_main(void *arg)
{
    one_call *c = arg;
    c->hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(c->hr)) {
        /* a call the runtime lost fails the test rather than hang its join */
        ShmCoSetCallTimeout(tsupport_ms(20000));
        c->hr = ICallee_Add(c->proxy, c->id, c->seq, &c->sum);
        ShmCoUninitialize();
    }
    atomic_store(&c->done, 1);
}

static void one_call_start(one_call *c, ICallee *proxy, LONG id, LONG seq)
{
    memset(c, 0, sizeof(*c));
    c->proxy = proxy;
    c->id = id;
    c->seq = seq;
    c->hr = E_FAIL;
    assert_hr(shmc_plat_thread_create(&c->thread, one_call_main, c), S_OK);
}

/* (a) The host's thread in ShmCoProcessCalls, run by thost_run (the host
 * pumps nothing else meanwhile). */
typedef struct process_calls {
    fixture *f;
    _Atomic int waiting, held, go;
    HRESULT first_hr, queued_hr;
    double first_ms;
    int queued_ran; /* the object's Add calls once the second returned */
} process_calls;

static void process_calls_on_host(void *arg)
{
    process_calls *p = arg;
    atomic_store(&p->waiting, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    p->first_hr = ShmCoProcessCalls(tsupport_ms(10000));
    p->first_ms = tsupport_ms_since(t0);
    /* then it keeps its thread, dispatching nothing, until told */
    atomic_store(&p->held, 1);
    if (wait_flag(&p->go)) {
        p->queued_hr = ShmCoProcessCalls(tsupport_ms(10000));
        p->queued_ran = atomic_load(&p->f->obj->calls);
    }
}

static void run_process_calls(void *arg)
{
    process_calls *p = arg;
    thost_run(p->f->host, process_calls_on_host, p);
}

/* (a) An STA asleep in ShmCoProcessCalls wakes for a call, runs it on its
 * thread and returns S_OK long before its timeout; calls that queued up
 * while it dispatched nothing are all run by the next ShmCoProcessCalls. */
static void sta_process_calls_dispatches(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    shmc_apt *apt = host_apt(f);
    enum { N = 3 };
    process_calls *p = shared_state(sizeof(*p));
    one_call *c = shared_state(N * sizeof(*c));
    p->f = f;
    p->first_hr = p->queued_hr = E_FAIL;
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, run_process_calls, p), S_OK);

    /* asleep in it: past its spin, a sleeper on its doorbell */
    assert_true(wait_flag(&p->waiting));
    uint64_t t0 = shmc_plat_clock_ns();
    while (atomic_load(&apt->bell->sleepers) == 0 && tsupport_ms_since(t0) < tsupport_ms(20000))
        shmc_plat_sleep_ms(1);
    assert_int_equal(atomic_load(&apt->bell->sleepers), 1);
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(f->proxy, &tid), S_OK);
    assert_int_equal((uint64_t)tid, f->host_tid); /* run by the host's thread */
    assert_true(wait_flag(&p->held));
    assert_hr(p->first_hr, S_OK);
    assert_true(p->first_ms < tsupport_ms(5000)); /* woken by the call, not its timeout */

    /* three callers wait for their replies while the host dispatches nothing */
    for (int i = 0; i < N; i++)
        one_call_start(&c[i], f->proxy, i, 1);
    wait_inbox(apt, N);
    for (int i = 0; i < N; i++)
        assert_false(atomic_load(&c[i].done));
    atomic_store(&p->go, 1);
    for (int i = 0; i < N; i++) {
        shmc_plat_thread_join(&c[i].thread);
        assert_hr(c[i].hr, S_OK);
        assert_int_equal(c[i].sum, i + 1);
    }
    shmc_plat_thread_join(&t);
    assert_hr(p->queued_hr, S_OK);
    assert_int_equal(p->queued_ran, N); /* all three, by that one ShmCoProcessCalls */
    free(c);
    free(p);
    assert_int_equal(atomic_load(&f->obj->calls), N);
    fixture_free(f);
}

/* ICallee_Wait's hook: keeps the STA in the call until released. */
static struct {
    _Atomic int entered, release;
} hold;

static void hold_hook(bool entering)
{
    if (!entering)
        return;
    atomic_store(&hold.entered, 1);
    wait_flag(&hold.release);
}

typedef struct holder {
    ICallee *proxy;
    HRESULT hr;
} holder;

static void holder_main(void *arg)
{
    holder *h = arg;
    h->hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(h->hr)) {
        ShmCoSetCallTimeout(tsupport_ms(20000)); /* (as one_call_main) */
        h->hr = ICallee_Wait(h->proxy, 0);
        ShmCoUninitialize();
    }
}

/* Calls of different callers run in the order they arrived: the STA is
 * held in a call while callers 1..N queue one call each, each queued (seen
 * in the inbox) before the next starts; the callee checks that the
 * sequence numbers they carry (one caller id for all) rise. */
static void sta_runs_callers_in_arrival_order(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    shmc_apt *apt = host_apt(f);
    memset(&hold, 0, sizeof(hold));
    enum { N = 6, ID = 7 };
    holder *h = shared_state(sizeof(*h));
    one_call *c = shared_state(N * sizeof(*c));
    h->proxy = f->proxy;
    h->hr = E_FAIL;
    callee_wait_hook = hold_hook;
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, holder_main, h), S_OK);
    assert_true(wait_flag(&hold.entered));
    assert_int_equal(inbox_count(apt), 0);

    for (int i = 0; i < N; i++) {
        one_call_start(&c[i], f->proxy, ID, i + 1);
        wait_inbox(apt, (unsigned)i + 1);
    }
    atomic_store(&hold.release, 1);
    for (int i = 0; i < N; i++) {
        shmc_plat_thread_join(&c[i].thread);
        assert_hr(c[i].hr, S_OK);
        assert_int_equal(c[i].sum, ID + i + 1);
    }
    shmc_plat_thread_join(&t);
    assert_hr(h->hr, S_OK);
    free(c);
    free(h);
    callee_wait_hook = NULL;
    assert_int_equal(atomic_load(&f->obj->calls), N);
    assert_false(f->obj->out_of_order); /* 1..N, in that order */
    assert_int_equal(f->obj->last_seq[ID], N);
    fixture_free(f);
}

/* (c) An event loop that serves an STA through its wait handle and notes,
 * for each of the first LOOP_CALLS calls, whether the handle became ready
 * for it, what ShmCoProcessCalls(0) said, and whether the handle was
 * still ready once it had run; then it serves until told to stop. */
enum { LOOP_CALLS = 9 };

typedef struct handle_loop {
    callee *obj;
    IStream *stream;
    _Atomic int waits_for; /* 1 + the calls it noted, once it waits for the next */
    _Atomic int stop, finished;
    HRESULT hr;
    bool ready_before_any;
    bool ready[LOOP_CALLS], ready_after[LOOP_CALLS];
    HRESULT processed[LOOP_CALLS];
    _Atomic int freed; /* obj's */
} handle_loop;

static bool handle_ready(intptr_t h, uint32_t ms)
{
#ifdef _WIN32
    return WaitForSingleObject((HANDLE)h, ms) == WAIT_OBJECT_0;
#else
    struct pollfd p = {.fd = (int)h, .events = POLLIN};
    int rc;
    while ((rc = poll(&p, 1, (int)ms)) < 0 && errno == EINTR) {}
    return rc > 0;
#endif
}

static void handle_loop_main(void *arg)
{
    handle_loop *l = arg;
    intptr_t h = -1;
    l->hr = sta_with_handle(l->obj, l->stream, &h);
    if (SUCCEEDED(l->hr)) {
        l->ready_before_any = handle_ready(h, 0);
        for (int i = 0; i < LOOP_CALLS; i++) {
            atomic_store(&l->waits_for, i + 1);
            l->ready[i] = handle_ready(h, tsupport_ms(10000));
            l->processed[i] = ShmCoProcessCalls(0);
            l->ready_after[i] = handle_ready(h, 0);
        }
        atomic_store(&l->waits_for, LOOP_CALLS + 1);
        while (!atomic_load(&l->stop)) {
            if (handle_ready(h, 10))
                ShmCoProcessCalls(0);
        }
    }
    ShmCoUninitialize();
    atomic_store(&l->finished, 1);
}

/* (c) The wait handle of an STA whose thread never spins for calls (a poll
 * with ShmCoProcessCalls(0) does not, and the idle spin is off) becomes
 * ready for every call, whether it comes through the inbox (a caller's
 * first call, or one after another caller's) or to the STA's watch of the
 * caller's last call, and is no longer ready once the call has run. */
static void sta_wait_handle_ready_for_each_call(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    register_calltest();
    uint32_t spin = atomic_load(&shmc_tune.callee_spin_ns);
    atomic_store(&shmc_tune.callee_spin_ns, 0u);
    handle_loop *l = shared_state(sizeof(*l));
    l->obj = callee_new(5, &l->freed);
    assert_hr(shmc_stream_create_heap(0, &l->stream), S_OK);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, handle_loop_main, l), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&l->waits_for) && !atomic_load(&l->finished) &&
           tsupport_ms_since(t0) < tsupport_ms(20000))
        shmc_plat_sleep_ms(1);
    assert_hr(l->hr, S_OK);
    ICallee *p = NULL;
    tstream_rewind(l->stream);
    assert_hr(ShmCoUnmarshalInterface(l->stream, &IID_ICallee, (void **)&p), S_OK);

    for (int i = 0; i < LOOP_CALLS; i++) {
        t0 = shmc_plat_clock_ns();
        while (atomic_load(&l->waits_for) < i + 1 && tsupport_ms_since(t0) < tsupport_ms(20000))
            shmc_plat_sleep_ms(1);
        if (atomic_load(&l->waits_for) != i + 1)
            break; /* it went on without this call: its notes below say why */
        /* an idle gap, so that the loop is asleep in its wait when the call
         * comes (the case under test); were it shorter, the handle would
         * only be found ready sooner */
        shmc_plat_sleep_ms(5);
        if (i % 3 == 2) { /* another caller's: through the inbox */
            one_call c;   /* (joined before anything is asserted: it may stay here) */
            one_call_start(&c, p, 100 + i, 1);
            shmc_plat_thread_join(&c.thread);
            assert_hr(c.hr, S_OK);
            assert_int_equal(c.sum, 101 + i);
        } else { /* ours: through the inbox after another's, else to the watch */
            LONG sum = 0;
            assert_hr(ICallee_Add(p, 100 + i, 1, &sum), S_OK);
            assert_int_equal(sum, 101 + i);
        }
    }
    assert_int_equal(ICallee_Release(p), 0);
    atomic_store(&l->stop, 1);
    shmc_plat_thread_join(&t);

    assert_false(l->ready_before_any);
    for (int i = 0; i < LOOP_CALLS; i++) {
        assert_true(l->ready[i]);         /* ready for the call */
        assert_hr(l->processed[i], S_OK); /* which was there to run */
        assert_false(l->ready_after[i]);  /* and no longer once it ran */
    }
    assert_int_equal(atomic_load(&l->obj->calls), LOOP_CALLS);
    atomic_store(&shmc_tune.callee_spin_ns, spin);
    ICallee_Release(&l->obj->ICallee_iface);
    assert_true(atomic_load(&l->freed));
    IStream_Release(l->stream);
    free(l);
    ShmCoUninitialize();
}

/* ---- MTA objects ------------------------------------------------------------------- */

/* (c) after (a): a call queued while the STA's thread ran another inside
 * ShmCoProcessCalls (its caller leaves the handle alone then) comes after
 * that pump's share of calls, so ShmCoProcessCalls returns with it still
 * waiting: the handle must be ready for it then, and clear once it ran. */
typedef struct late_loop {
    callee *obj;
    IStream *stream;
    shmc_apt *apt;
    intptr_t handle;
    _Atomic int ready, stop;
    HRESULT hr, first, second;
    bool ready_after_first, ready_after_second;
    _Atomic int freed;
} late_loop;

static void late_loop_main(void *arg)
{
    late_loop *l = arg;
    intptr_t h = -1;
    l->hr = sta_with_handle(l->obj, l->stream, &h);
    l->handle = h;
    record_apt(&l->apt);
    atomic_store(&l->ready, 1);
    if (SUCCEEDED(l->hr)) {
        l->first = ShmCoProcessCalls(tsupport_ms(20000)); /* the held call */
        l->ready_after_first = handle_ready(h, 0);
        l->second = ShmCoProcessCalls(0); /* the one queued meanwhile */
        l->ready_after_second = handle_ready(h, 0);
        while (!atomic_load(&l->stop)) /* (a test that failed: its calls) */
            ShmCoProcessCalls(10);
    }
    ShmCoUninitialize();
}

static void sta_wait_handle_set_for_call_left_behind(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    register_calltest();
    atomic_store(&shmc_tune.callee_spin_ns, 0u); /* (settle puts it back) */
    memset(&hold, 0, sizeof(hold));
    late_loop *l = shared_state(sizeof(*l));
    holder *hd = shared_state(sizeof(*hd));
    one_call *c = shared_state(sizeof(*c));
    l->obj = callee_new(8, &l->freed);
    assert_non_null(l->obj);
    assert_hr(shmc_stream_create_heap(0, &l->stream), S_OK);
    shmc_plat_thread t, th;
    assert_hr(shmc_plat_thread_create(&t, late_loop_main, l), S_OK);
    assert_true(wait_flag(&l->ready));
    assert_hr(l->hr, S_OK);
    tstream_rewind(l->stream);
    ICallee *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(l->stream, &IID_ICallee, (void **)&p), S_OK);

    callee_wait_hook = hold_hook;
    hd->proxy = p;
    hd->hr = E_FAIL;
    assert_hr(shmc_plat_thread_create(&th, holder_main, hd), S_OK);
    assert_true(wait_flag(&hold.entered)); /* the STA runs it, in ShmCoProcessCalls */
    one_call_start(c, p, 3, 1);
    wait_inbox(l->apt, 1); /* queued behind it */
    /* its caller left the handle alone: the STA's thread is in a wait of
     * the runtime's, which looks at the queue as it leaves */
    bool ready_while_inside = handle_ready(l->handle, 0);
    atomic_store(&hold.release, 1);
    shmc_plat_thread_join(&th);
    shmc_plat_thread_join(&c->thread);
    atomic_store(&l->stop, 1);
    shmc_plat_thread_join(&t);
    callee_wait_hook = NULL;

    assert_hr(hd->hr, S_OK);
    assert_hr(c->hr, S_OK);
    assert_int_equal(c->sum, 4);
    assert_false(ready_while_inside);
    assert_hr(l->first, S_OK);
    assert_true(l->ready_after_first); /* the call behind it waits */
    assert_hr(l->second, S_OK);
    assert_false(l->ready_after_second); /* and then it ran */
    assert_int_equal(ICallee_Release(p), 0);
    ICallee_Release(&l->obj->ICallee_iface);
    assert_true(atomic_load(&l->freed));
    IStream_Release(l->stream);
    free(c);
    free(hd);
    free(l);
    ShmCoUninitialize();
}

/* (c) with (a) and (b) on the same thread: an STA that has its wait
 * handle but also waits in ShmCoProcessCalls and for the replies of its
 * own calls, in turn, while other threads call it back to back.
 * While its thread is in such a wait, callers leave the handle alone (a
 * system call each, a request to wineserver under Wine) and the thread
 * makes the handle right as it leaves: no call may be lost (one would
 * show as a handle wait that ran out with calls in flight, or as a caller
 * timing out), and once all are done the handle must not be left ready. */
enum { MIXED_CALLERS = 4, MIXED_CALLS = 400 };

typedef struct mixed_loop {
    callee *obj;     /* the STA's */
    IStream *stream; /* its record */
    IStream *mta_stream;
    _Atomic int ready, stop, answered, finished;
    _Atomic int inflight;            /* calls the callers have made and not had back */
    _Atomic int lost, handle_waits;  /* handle waits that ran out with calls in flight; all */
    _Atomic int outgoing, processed; /* waits of each other kind it made */
    bool ready_when_idle;
    HRESULT hr;
    _Atomic int freed;
} mixed_loop;

typedef struct mixed_caller {
    mixed_loop *l;
    ICallee *proxy;
    LONG id;
    HRESULT hr;
    int done;
    shmc_plat_thread thread;
} mixed_caller;

static void mixed_loop_main(void *arg)
{
    mixed_loop *l = arg;
    intptr_t h = -1;
    ICallee *mta = NULL;
    l->hr = sta_with_handle(l->obj, l->stream, &h);
    ShmCoSetCallTimeout(tsupport_ms(20000));
    HRESULT got = ShmCoGetInterfaceAndReleaseStream(l->mta_stream, &IID_ICallee, (void **)&mta);
    l->mta_stream = NULL;
    if (SUCCEEDED(l->hr))
        l->hr = got;
    atomic_store(&l->ready, 1);
    for (unsigned k = 0; SUCCEEDED(l->hr) && !atomic_load(&l->stop); k++) {
        switch (k % 3) {
        case 0: /* the event loop's way */
            atomic_fetch_add(&l->handle_waits, 1);
            if (handle_ready(h, tsupport_ms(20000)))
                ShmCoProcessCalls(0);
            else if (atomic_load(&l->inflight))
                atomic_fetch_add(&l->lost, 1);
            break;
        case 1: /* (a): a short wait in the runtime */
            ShmCoProcessCalls(1);
            atomic_fetch_add(&l->processed, 1);
            break;
        default: { /* (b): a call of its own, to the MTA, while calls come */
            LONG tag = 0;
            if (FAILED(ICallee_GetTag(mta, &tag)) || tag != 7)
                l->hr = E_FAIL;
            atomic_fetch_add(&l->outgoing, 1);
            break;
        }
        }
    }
    /* the test's last call, made once every caller is done, may have come
     * as it stopped: it runs, and has its answer (whose caller has set the
     * handle, if it did, by then) */
    while (!atomic_load(&l->answered))
        ShmCoProcessCalls(1);
    if (SUCCEEDED(l->hr)) {
        /* nothing waits now: the handle is clear once it looked */
        ShmCoProcessCalls(0);
        l->ready_when_idle = handle_ready(h, 0);
    }
    if (mta)
        ICallee_Release(mta);
    ShmCoUninitialize();
    atomic_store(&l->finished, 1);
}

static void mixed_caller_main(void *arg)
{
    mixed_caller *c = arg;
    c->hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(c->hr))
        return;
    ShmCoSetCallTimeout(tsupport_ms(20000)); /* a lost call fails, not hangs */
    for (int i = 1; i <= MIXED_CALLS && SUCCEEDED(c->hr); i++) {
        LONG sum = 0;
        atomic_fetch_add(&c->l->inflight, 1);
        c->hr = ICallee_Add(c->proxy, c->id, i, &sum);
        atomic_fetch_sub(&c->l->inflight, 1);
        if (SUCCEEDED(c->hr) && sum != c->id + i)
            c->hr = E_UNEXPECTED;
        c->done = i;
    }
    ShmCoUninitialize();
}

/* One run of the above; with `idle_spin` false nobody spins for the next
 * call (the STA's waits end as soon as they ran a call, so it goes from
 * one kind of wait to the next all the time). */
static void run_mixed_loop(bool idle_spin, int callers)
{
    uint32_t spin = atomic_load(&shmc_tune.callee_spin_ns);
    if (!idle_spin)
        atomic_store(&shmc_tune.callee_spin_ns, 0u);
    register_calltest();
    mixed_loop *l = shared_state(sizeof(*l));
    mixed_caller *c = shared_state((size_t)callers * sizeof(*c));
    l->obj = callee_new(6, &l->freed);
    callee *mta_obj = callee_new(7, NULL);
    assert_non_null(l->obj);
    assert_non_null(mta_obj);
    assert_hr(shmc_stream_create_heap(0, &l->stream), S_OK);
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(
                  &IID_ICallee, (IUnknown *)&mta_obj->ICallee_iface, &l->mta_stream),
              S_OK);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, mixed_loop_main, l), S_OK);
    assert_true(wait_flag(&l->ready));
    assert_hr(l->hr, S_OK);
    tstream_rewind(l->stream);
    ICallee *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(l->stream, &IID_ICallee, (void **)&p), S_OK);
    for (int i = 0; i < callers; i++) {
        c[i].l = l;
        c[i].proxy = p;
        c[i].id = 1 + i; /* (callee keeps the order of ids below 8) */
        c[i].hr = E_FAIL;
        assert_hr(shmc_plat_thread_create(&c[i].thread, mixed_caller_main, &c[i]), S_OK);
    }
    for (int i = 0; i < callers; i++)
        shmc_plat_thread_join(&c[i].thread);
    /* the loop may be in a handle wait: a last call ends it */
    atomic_store(&l->stop, 1);
    LONG tag = 0;
    HRESULT last = ICallee_GetTag(p, &tag);
    atomic_store(&l->answered, 1);
    shmc_plat_thread_join(&t);
    assert_hr(last, S_OK);
    assert_int_equal(tag, 6);

    for (int i = 0; i < callers; i++) {
        assert_hr(c[i].hr, S_OK);
        assert_int_equal(c[i].done, MIXED_CALLS);
    }
    assert_hr(l->hr, S_OK);
    assert_int_equal(atomic_load(&l->lost), 0);
    assert_false(l->ready_when_idle);
    assert_false(l->obj->out_of_order); /* each caller's calls ran in its order */
    assert_int_equal(atomic_load(&l->obj->calls), callers * MIXED_CALLS); /* (not GetTag) */
    print_message("      %d callers, idle spin %s: %d handle waits, %d in ShmCoProcessCalls, %d "
                  "calls of its own\n",
                  callers, idle_spin ? "on" : "off", atomic_load(&l->handle_waits),
                  atomic_load(&l->processed), atomic_load(&l->outgoing));
    /* (how often it went from one kind of wait to the next is the
     * scheduler's: spinning for calls, or waiting for the MTA's answer, it
     * may take them all in a few waits; sta_wait_handle_set_for_call_left_behind
     * makes the case that matters most happen for certain) */
    assert_int_equal(ICallee_Release(p), 0);
    ICallee_Release(&l->obj->ICallee_iface);
    assert_true(atomic_load(&l->freed));
    ICallee_Release(&mta_obj->ICallee_iface);
    IStream_Release(l->stream);
    free(c);
    free(l);
    atomic_store(&shmc_tune.callee_spin_ns, spin);
}

static void sta_wait_handle_with_other_waits(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    register_calltest();
    run_mixed_loop(true, MIXED_CALLERS);
    run_mixed_loop(false, MIXED_CALLERS);
    /* one caller: no other call comes to set the handle for one that the
     * STA's thread left behind */
    run_mixed_loop(false, 1);
    ShmCoUninitialize();
}

static void mta_object_runs_on_runtime_threads(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(f->proxy, &tid), S_OK);
    assert_true((uint64_t)tid != shmc_plat_thread_self_id());
    assert_true((uint64_t)tid != f->host_tid); /* a worker, not the host */
    fixture_free(f);
}

typedef struct take_arg {
    IStream *stream;
    ICallee *got;
    HRESULT hr;
} take_arg;

static void take_from_stream(void *arg)
{
    take_arg *a = arg;
    a->hr = ShmCoGetInterfaceAndReleaseStream(a->stream, &IID_ICallee, (void **)&a->got);
}

static void mta_to_mta_is_direct(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo);
    callee *c = callee_new(4, NULL);
    take_arg *a =
        shared_state(sizeof(*a)); /* (thost_run may give up on a host that runs it later) */
    a->hr = E_FAIL;
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_ICallee, (IUnknown *)&c->ICallee_iface,
                                                       &a->stream),
              S_OK);
    /* another MTA thread gets the object itself, no proxy */
    thost *h = thost_start(COINIT_MULTITHREADED, NULL, NULL, NULL, 0);
    thost_run(h, take_from_stream, a);
    assert_hr(a->hr, S_OK);
    assert_ptr_equal(a->got, &c->ICallee_iface);
    ICallee_Release(a->got);
    thost_stop(h, false);
    free(a);
    assert_int_equal(ICallee_Release(&c->ICallee_iface), 0);
    ShmCoUninitialize();
}

/* ---- interfaces in and out ----------------------------------------------------------- */

static void object_returning_method(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    ICallee *child = NULL;
    assert_hr(ICallee_GetChild(f->proxy, 7, &child), S_OK);
    assert_non_null(child);
    LONG tag = 0;
    assert_hr(ICallee_GetTag(child, &tag), S_OK);
    assert_int_equal(tag, 7);
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(child, &tid), S_OK);
    assert_int_equal((uint64_t)tid, f->host_tid); /* lives in the host's STA */
    assert_int_equal(ICallee_Release(child), 0);
    fixture_free(f);
}

static void iid_is_and_remote_qi(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    ICallback *cb = NULL;
    assert_hr(ICallee_Query(f->proxy, &IID_ICallback, (void **)&cb), S_OK);
    assert_non_null(cb);
    hyper tid = 0;
    assert_hr(ICallback_GetThreadId(cb, &tid), S_OK);
    assert_int_equal((uint64_t)tid, f->host_tid);
    /* one identity for every interface proxy of the object */
    IUnknown *u1 = NULL, *u2 = NULL;
    assert_hr(ICallback_QueryInterface(cb, &IID_IUnknown, (void **)&u1), S_OK);
    assert_hr(ICallee_QueryInterface(f->proxy, &IID_IUnknown, (void **)&u2), S_OK);
    assert_ptr_equal(u1, u2);
    IUnknown_Release(u1);
    IUnknown_Release(u2);
    ICallback *cb2 = NULL;
    assert_hr(ICallee_QueryInterface(f->proxy, &IID_ICallback, (void **)&cb2), S_OK);
    assert_ptr_equal(cb, cb2); /* the same interface proxy */
    ICallback_Release(cb2);
    ICallback_Release(cb);
    /* unknown interfaces, by iid_is and by QueryInterface */
    static const IID nobody = {0x99, 1, 2, {3, 4, 5, 6, 7, 8, 9, 10}};
    void *none = (void *)1;
    assert_hr(ICallee_Query(f->proxy, &nobody, &none), E_NOINTERFACE);
    assert_null(none);
    none = (void *)1;
    assert_hr(ICallee_QueryInterface(f->proxy, &nobody, &none), E_NOINTERFACE);
    assert_null(none);
    fixture_free(f);
}

/* QueryInterface through a proxy for interfaces that have a proxy and a
 * stub here (ICallee, ICallback) but that the object lacks: the proxy
 * cannot answer alone, so the object itself is asked, in its apartment,
 * and its E_NOINTERFACE comes back; nothing is kept, and the proxy goes on
 * with the same identity. (iid_is_and_remote_qi asks for an IID nobody
 * registered, which the proxy refuses without asking.) */
static void remote_qi_for_missing_interface(DWORD host_coinit, DWORD mine)
{
    register_calltest();
    assert_hr(ShmCoInitializeEx(NULL, mine), S_OK);
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL); /* IUnknown alone */
    assert_non_null(o);
    IStream *s = NULL;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    thost *h = thost_start(host_coinit, s, &IID_IUnknown, &o->IUnknown_iface, MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    tstream_rewind(s);
    IUnknown *proxy = NULL;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&proxy), S_OK);
    assert_ptr_not_equal(proxy, &o->IUnknown_iface);

    int refs = tobj_refs(o);
    const IID *missing[] = {&IID_ICallee, &IID_ICallback};
    for (int i = 0; i < 2; i++) {
        int refused = atomic_load(&o->refused);
        void *out = (void *)1;
        assert_hr(IUnknown_QueryInterface(proxy, missing[i], &out), E_NOINTERFACE);
        assert_null(out);
        assert_int_equal(atomic_load(&o->refused), refused + 1); /* the object was asked */
        assert_true(IsEqualIID(&o->last_refused, missing[i]));
        assert_int_equal(tobj_refs(o), refs); /* and nothing kept */
    }
    IUnknown *u = NULL;
    assert_hr(IUnknown_QueryInterface(proxy, &IID_IUnknown, (void **)&u), S_OK);
    assert_ptr_equal(u, proxy); /* the same identity */
    IUnknown_Release(u);
    assert_int_equal(tobj_refs(o), refs);

    assert_int_equal(IUnknown_Release(proxy), 0);
    IUnknown_Release(&o->IUnknown_iface);
    thost_stop(h, false);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    ShmCoUninitialize();
}

static void remote_qi_for_missing_interface_sta(void **state)
{
    (void)state;
    remote_qi_for_missing_interface(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
}

static void remote_qi_for_missing_interface_mta(void **state)
{
    (void)state;
    remote_qi_for_missing_interface(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
}

static void proxy_passed_to_third_apartment(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    hammer h = {NULL, NULL, 5, E_FAIL};
    assert_hr(
        ShmCoMarshalInterThreadInterfaceInStream(&IID_ICallee, (IUnknown *)f->proxy, &h.stream),
        S_OK);
    ICallee_Release(f->proxy); /* the record keeps the object */
    f->proxy = NULL;
    assert_false(atomic_load(&f->freed));
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, hammer_main, &h), S_OK);
    shmc_plat_thread_join(&t);
    assert_hr(h.hr, S_OK);
    assert_int_equal(f->obj->last_seq[5], 300);
    fixture_free(f);
}

/* ---- failures ----------------------------------------------------------------------- */

static void timeout_and_late_reply(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    assert_hr(ShmCoSetCallTimeout(tsupport_ms(50)), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    /* (the host stays in the call for 1.5 s: a loaded machine has until
     * then to return it at its timeout rather than at its end) */
    assert_hr(ICallee_Wait(f->proxy, tsupport_ms(1500)), RPC_E_TIMEOUT);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= tsupport_ms(49));
    assert_true(ms < tsupport_ms(1400));
    /* a late [out] interface is released when its reply is dropped */
    ICallee *child = (ICallee *)1;
    assert_hr(ICallee_GetChild(f->proxy, -(LONG)tsupport_ms(300), &child), RPC_E_TIMEOUT);
    assert_null(child);
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
    /* the proxy still works, once the host is free again */
    LONG sum = 0;
    assert_hr(ICallee_Add(f->proxy, 8, 1, &sum), S_OK);
    assert_int_equal(sum, 9);
    fixture_free(f); /* checks that nothing (the late child) is kept */
}

/* The host keeps its thread (no pumping) until told to go on. */
typedef struct busy_host {
    fixture *f;
    _Atomic int started, release;
} busy_host;

static void busy_on_host(void *arg)
{
    busy_host *b = arg;
    atomic_store(&b->started, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&b->release) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
}

static void run_busy_host(void *arg)
{
    busy_host *b = arg;
    thost_run(b->f->host, busy_on_host, b);
}

/* A call to an STA that ran the caller's previous call is sent through the
 * STA's watch of that call (call.c), not its inbox: the same timeouts,
 * whether the call is given up while it runs or before the host looks. */
static void watched_call_timeouts(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    LONG sum = 0;
    assert_hr(ICallee_Add(f->proxy, 1, 2, &sum), S_OK); /* the host now watches our call */
    assert_hr(ShmCoSetCallTimeout(tsupport_ms(50)), S_OK);
    assert_hr(ICallee_Wait(f->proxy, tsupport_ms(300)), RPC_E_TIMEOUT); /* given up while it runs */
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
    assert_hr(ICallee_Add(f->proxy, 2, 3, &sum), S_OK); /* watched again, once the host is free */
    assert_int_equal(sum, 5);

    /* given up before the host looks: it is busy outside any call */
    busy_host *b = shared_state(sizeof(*b));
    b->f = f;
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, run_busy_host, b), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&b->started) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
    assert_true(atomic_load(&b->started));
    assert_hr(ShmCoSetCallTimeout(tsupport_ms(50)), S_OK);
    ICallee *child = (ICallee *)1;
    assert_hr(ICallee_GetChild(f->proxy, 4, &child), RPC_E_TIMEOUT);
    assert_null(child);
    atomic_store(&b->release, 1);
    shmc_plat_thread_join(&t);
    free(b);
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
    assert_hr(ICallee_Add(f->proxy, 8, 1, &sum), S_OK); /* the host dropped it and goes on */
    assert_int_equal(sum, 9);
    fixture_free(f); /* nothing kept: no child was made */
}

/* The same for an MTA object: the worker that ran the last call watches it
 * while it spins (it stops before it takes other calls or sleeps). */
static void watched_call_timeouts_mta(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
    LONG sum = 0;
    assert_hr(ICallee_Add(f->proxy, 1, 2, &sum), S_OK); /* a worker now watches our call */
    assert_hr(ShmCoSetCallTimeout(tsupport_ms(50)), S_OK);
    assert_hr(ICallee_Wait(f->proxy, tsupport_ms(300)), RPC_E_TIMEOUT); /* given up while it runs */
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
    for (LONG i = 0; i < 1000; i++) { /* another worker, then the same again */
        assert_hr(ICallee_Add(f->proxy, i, 1, &sum), S_OK);
        assert_int_equal(sum, i + 1);
    }
    fixture_free(f);
}

static void disconnect_on_host(void *arg)
{
    fixture *f = arg;
    ShmCoDisconnectObject((IUnknown *)&f->obj->ICallee_iface, 0);
}

static void disconnected_object(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    thost_run(f->host, disconnect_on_host, f);
    assert_int_equal(atomic_load(&f->obj->refs), 1); /* only our own */
    assert_hr(ICallee_Null(f->proxy), RPC_E_DISCONNECTED);
    LONG sum = 5;
    assert_hr(ICallee_Add(f->proxy, 1, 1, &sum), RPC_E_DISCONNECTED);
    assert_int_equal(sum, 0); /* [out] zeroed on failure */
    fixture_free(f);
}

/* ---- a disconnect while a call runs --------------------------------------------
 * The object is held by its stub alone (we let ours go). A disconnect while
 * a call runs on it lets the object go once that call is over, not under
 * it: in an STA by the object's own method (the hook), in the MTA from
 * another thread while the call waits in the hook. */

static struct {
    callee *obj;
    _Atomic int *freed;
    _Atomic int entered, go, freed_during;
    _Atomic HRESULT hr;
    bool from_hook;
} inflight;

static void inflight_disconnect(void)
{
    atomic_store(&inflight.hr, ShmCoDisconnectObject((IUnknown *)&inflight.obj->ICallee_iface, 0));
    atomic_store(&inflight.freed_during, atomic_load(inflight.freed));
}

static void inflight_hook(bool entering)
{
    if (!entering)
        return;
    if (inflight.from_hook) {
        inflight_disconnect();
        return;
    }
    atomic_store(&inflight.entered, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&inflight.go) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
}

static void inflight_other_thread(void *arg)
{
    (void)arg;
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&inflight.entered) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
    if (SUCCEEDED(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED))) {
        inflight_disconnect();
        ShmCoUninitialize();
    }
    atomic_store(&inflight.go, 1);
}

static void disconnect_while_call_runs(DWORD host)
{
    fixture *f = fixture_new(host, COINIT_APARTMENTTHREADED);
    memset(&inflight, 0, sizeof(inflight));
    inflight.obj = f->obj;
    inflight.freed = &f->freed;
    inflight.hr = E_FAIL;
    inflight.freed_during = -1;
    inflight.from_hook = host == COINIT_APARTMENTTHREADED;
    ICallee_Release(&f->obj->ICallee_iface); /* the stub holds it alone now */
    assert_int_equal(atomic_load(&f->freed), 0);

    callee_wait_hook = inflight_hook;
    shmc_plat_thread t;
    if (!inflight.from_hook)
        assert_hr(shmc_plat_thread_create(&t, inflight_other_thread, NULL), S_OK);
    HRESULT wait_hr = ICallee_Wait(f->proxy, 0);
    /* (joined before the call's result is judged: left running, the thread
     * would disconnect the next test's object through `inflight`) */
    if (!inflight.from_hook)
        shmc_plat_thread_join(&t);
    callee_wait_hook = NULL;

    assert_hr(wait_hr, S_OK); /* it was running: it ends normally */
    assert_hr(atomic_load(&inflight.hr), S_OK);
    assert_int_equal(atomic_load(&inflight.freed_during), 0); /* not under the running call */
    assert_int_equal(atomic_load(&f->freed), 1);              /* but once it was over */
    assert_hr(ICallee_Null(f->proxy), RPC_E_DISCONNECTED);

    assert_int_equal(ICallee_Release(f->proxy), 0);
    thost_stop(f->host, false);
    assert_int_equal(atomic_load(&live_callees), f->callees);
    IStream_Release(f->stream);
    ShmCoUninitialize();
    free(f);
}

static void disconnect_while_call_runs_sta(void **state)
{
    (void)state;
    disconnect_while_call_runs(COINIT_APARTMENTTHREADED);
}

static void disconnect_while_call_runs_mta(void **state)
{
    (void)state;
    disconnect_while_call_runs(COINIT_MULTITHREADED);
}

/* The same where calls enter stubs with the count (as under Wine, where
 * there is no process-wide barrier), not through hazard records. */
static int hazards_off(void **state)
{
    (void)state;
    assert_hr(shmc_rt_init(), S_OK); /* (which sets them up) */
    shmc_hazards_disable();
    return 0;
}

static int settle(void **state);

static int hazards_back(void **state)
{
    shmc_hazards_setup();
    return settle(state);
}

static void disconnect_while_counted_call_runs_sta(void **state)
{
    (void)state;
    assert_false(shmc_hazards_enabled());
    disconnect_while_call_runs(COINIT_APARTMENTTHREADED);
}

static void disconnect_while_counted_call_runs_mta(void **state)
{
    (void)state;
    assert_false(shmc_hazards_enabled());
    disconnect_while_call_runs(COINIT_MULTITHREADED);
}

/* A thread that runs calls into stubs takes a hazard record on its first
 * (where the OS has a process-wide barrier: Linux); threads beyond the
 * records' number enter with the count; a thread's record comes back when
 * it ends. Every call works either way. */
static void hazard_records_run_out_and_come_back(void **state)
{
    (void)state;
    assert_hr(shmc_rt_init(), S_OK);
#if defined(__linux__)
    assert_true(shmc_hazards_enabled()); /* membarrier: Linux 4.14 */
#elif defined(_WIN32)
    assert_false(shmc_hazards_enabled()); /* (see win32/misc.c) */
#endif
    register_calltest();
    enum { HOSTS = SHMC_HAZARDS + 3 };
    static struct {
        callee *obj;
        _Atomic int freed;
        IStream *stream;
        thost *host;
        ICallee *proxy;
    } h[HOSTS];
    memset(h, 0, sizeof(h));
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    unsigned before = shmc_hazards_in_use();
    int callees = atomic_load(&live_callees); /* (as fixture's) */
    for (int i = 0; i < HOSTS; i++) {
        h[i].obj = callee_new(i, &h[i].freed);
        assert_hr(shmc_stream_create_heap(0, &h[i].stream), S_OK);
        h[i].host = thost_start(COINIT_APARTMENTTHREADED, h[i].stream, &IID_ICallee,
                                (IUnknown *)&h[i].obj->ICallee_iface, MSHLFLAGS_NORMAL);
        assert_hr(thost_marshal_hr(h[i].host), S_OK);
        tstream_rewind(h[i].stream);
        assert_hr(ShmCoUnmarshalInterface(h[i].stream, &IID_ICallee, (void **)&h[i].proxy), S_OK);
        LONG tag = -1;
        assert_hr(ICallee_GetTag(h[i].proxy, &tag), S_OK); /* run on host i's thread */
        assert_int_equal(tag, i);
    }
    unsigned held = shmc_hazards_in_use();
    if (shmc_hazards_enabled())
        assert_int_equal(held, SHMC_HAZARDS); /* every record taken, 3+ threads counted */
    else
        assert_int_equal(held, before);
    for (int i = 0; i < HOSTS; i++) {
        assert_hr(ICallee_Null(h[i].proxy), S_OK); /* again, either way */
        assert_int_equal(ICallee_Release(h[i].proxy), 0);
        ICallee_Release(&h[i].obj->ICallee_iface);
        thost_stop(h[i].host, false);
        assert_int_equal(atomic_load(&h[i].freed), 1);
        IStream_Release(h[i].stream);
    }
    assert_int_equal(shmc_hazards_in_use(), before); /* the hosts' records came back */
    assert_int_equal(atomic_load(&live_callees), callees);
    ShmCoUninitialize();
}

static void server_apartment_ends(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    thost_stop(f->host, false);
    f->host = thost_start(COINIT_APARTMENTTHREADED, NULL, NULL, NULL, 0); /* for fixture_free */
    assert_hr(ICallee_Null(f->proxy), RPC_E_DISCONNECTED);
    fixture_free(f);
}

static void client_apartment_ends(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    ShmCoUninitialize();
    assert_hr(ICallee_Null(f->proxy), CO_E_OBJNOTCONNECTED);
    assert_int_equal(ICallee_Release(f->proxy), 0);
    f->proxy = NULL;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK); /* for fixture_free */
    fixture_free(f);
}

typedef struct wrong {
    ICallee *proxy;
    HRESULT uninit_hr, sta_hr;
    HRESULT uninit_qi_hr, sta_qi_hr; /* QueryInterface for ICallee, which the proxy has */
} wrong;

static void wrong_apartment_main(void *arg)
{
    wrong *w = arg;
    void *out = (void *)1;
    w->uninit_hr = ICallee_Null(w->proxy);
    w->uninit_qi_hr = ICallee_QueryInterface(w->proxy, &IID_ICallee, &out);
    if (out)
        w->uninit_qi_hr = E_FAIL; /* *ppv must be NULL on failure */
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    w->sta_hr = ICallee_Null(w->proxy);
    out = (void *)1;
    w->sta_qi_hr = ICallee_QueryInterface(w->proxy, &IID_ICallee, &out);
    if (out)
        w->sta_qi_hr = E_FAIL;
    ShmCoUninitialize();
}

static void used_from_the_wrong_apartment(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    wrong w = {f->proxy, E_FAIL, E_FAIL, E_FAIL, E_FAIL};
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, wrong_apartment_main, &w), S_OK);
    shmc_plat_thread_join(&t);
    assert_hr(w.uninit_hr, CO_E_NOTINITIALIZED);
    assert_hr(w.sta_hr, RPC_E_WRONG_THREAD);
    assert_hr(w.uninit_qi_hr, RPC_E_WRONG_THREAD);
    assert_hr(w.sta_qi_hr, RPC_E_WRONG_THREAD);
    assert_hr(ICallee_Null(f->proxy), S_OK); /* fine from its own */
    fixture_free(f);
}

/* Every allocation of a call fails in turn, on both sides: a clean error,
 * nothing leaked, the proxy usable afterwards. */
static void allocation_failures_in_calls(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    for (unsigned long n = 1; n <= 40; n++) {
        char *copy = NULL;
        ICallee *child = NULL;
        shmc_alloc_fail_at(n);
        HRESULT h1 = ICallee_Echo(f->proxy, "allocations", &copy);
        shmc_alloc_fail_reset();
        if (SUCCEEDED(h1))
            ShmCoTaskMemFree(copy);
        else
            assert_null(copy);
        shmc_alloc_fail_at(n);
        HRESULT h2 = ICallee_GetChild(f->proxy, 9, &child);
        shmc_alloc_fail_reset();
        if (SUCCEEDED(h2))
            ICallee_Release(child);
        else
            assert_null(child);
    }
    assert_hr(ICallee_Null(f->proxy), S_OK);
    fixture_free(f);
}

/* Every allocation of every kind of call fails in turn (callfaults.c), on
 * both sides (the hook counts every thread's): an STA calling an STA and
 * an MTA object. */
static void every_allocation_fails_in_turn(DWORD host)
{
    fixture *f = fixture_new(host, COINIT_APARTMENTTHREADED);
    callee *mine = callee_new(2, NULL);
    assert_true(callfaults_check(f->proxy, &mine->ICallback_iface, true) > 0);
    assert_int_equal(ICallee_Release(&mine->ICallee_iface), 0); /* nothing kept it */
    fixture_free(f);
}

static void every_allocation_fails_in_turn_sta(void **state)
{
    (void)state;
    every_allocation_fails_in_turn(COINIT_APARTMENTTHREADED);
}

static void every_allocation_fails_in_turn_mta(void **state)
{
    (void)state;
    every_allocation_fails_in_turn(COINIT_MULTITHREADED);
}

/* The largest frame between apartments (bounds.h): a call at the limit
 * goes through, one past is refused where it is made. */
static void frame_limits(void **state)
{
    (void)state;
    tsupport_skip_if_listed("frame_limits");
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED);
    framelimits_check(f->proxy);
    fixture_free(f);
}

/* ---- registration ------------------------------------------------------------------ */

/* ShmCoRegisterProxyStubs: repeated, replaced, foreign and broken tables.
 * (The tables are used in place: the copies are static.) */
/* The hand-off quiet (rt.h) adapts to what the first look after it
 * finds, within its bounds, and is nothing on a single CPU. */
static void handoff_quiet_adapts(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK); /* (calibrated it) */
    uint32_t base = atomic_load(&shmc_tune.quiet_pauses);
    uint32_t max = atomic_load(&shmc_tune.quiet_max_pauses);
    assert_true(base <= max);
    atomic_store(&shmc_tune.quiet_pauses, 4u);
    atomic_store(&shmc_tune.quiet_max_pauses, 6u);

    shmc_quiet q;
    memset(&q, 0, sizeof(q));
    shmc_quiet_looked(&q, false); /* no quiet before it: nothing to learn */
    assert_false(q.started);
    shmc_handoff_quiet(&q);
    assert_int_equal(q.eighths, 4 * 8); /* starts at the calibrated quiet */
    shmc_quiet_looked(&q, true);        /* the answer was there: a little shorter */
    assert_int_equal(q.eighths, 4 * 8 - 1);
    shmc_quiet_looked(&q, false); /* only the first look after a quiet counts */
    assert_int_equal(q.eighths, 4 * 8 - 1);
    shmc_handoff_quiet(&q);
    shmc_quiet_looked(&q, false); /* too early: half a pause longer */
    assert_int_equal(q.eighths, 4 * 8 + 3);
    for (int i = 0; i < 20; i++) {
        shmc_handoff_quiet(&q);
        shmc_quiet_looked(&q, false);
    }
    assert_int_equal(q.eighths, 6 * 8); /* at most the maximum */
    for (int i = 0; i < 100; i++) {
        shmc_handoff_quiet(&q);
        shmc_quiet_looked(&q, true);
    }
    assert_int_equal(q.eighths, 0); /* down to nothing */
    shmc_handoff_quiet(&q);
    shmc_quiet_looked(&q, false);
    assert_int_equal(q.eighths, 4);

    /* one CPU: no quiet, nothing learned */
    atomic_store(&shmc_tune.quiet_pauses, 0u);
    shmc_quiet one;
    memset(&one, 0, sizeof(one));
    shmc_handoff_quiet(&one);
    assert_false(one.pending);
    shmc_quiet_looked(&one, false);
    assert_int_equal(one.eighths, 0);

    atomic_store(&shmc_tune.quiet_pauses, base);
    atomic_store(&shmc_tune.quiet_max_pauses, max);
    ShmCoUninitialize();
}

/* ---- two spinners on one CPU (rt.h, shmc_cpu_shared) ------------------------------ */

static _Atomic int pin_to = -1, pinned_at = -1;

/* ICallee_Wait's hook: binds the thread that runs it to pin_to, or (-1)
 * gives it its CPUs back */
static void pin_callee(bool entering)
{
    if (!entering)
        return;
    int cpu = atomic_load(&pin_to);
    if (cpu >= 0) {
        atomic_store(&pinned_at, tsupport_pin_self(cpu));
    } else {
        tsupport_unpin_self();
        atomic_store(&pinned_at, -1);
    }
    shmc_cpu_forget(); /* what the runtime knew of this thread's CPU */
}

/* The thread that runs f's calls (the one that watches the last call)
 * binds itself to cpu, or (-1) gets its CPUs back. */
static void pin_callee_to(fixture *f, int cpu)
{
    atomic_store(&pin_to, cpu);
    callee_wait_hook = pin_callee;
    assert_hr(ICallee_Wait(f->proxy, 0), S_OK);
    callee_wait_hook = NULL;
    assert_int_equal(atomic_load(&pinned_at), cpu);
}

/* What a thread knows of its CPU (rt.h, shmc_cpu_current) is asked of the
 * OS again after shmc_cpu_forget, and at least every SHMC_CPU_ASK_EVERY
 * uses without it. */
static void thread_cpu_is_asked_again(void **state)
{
    (void)state;
    if (shmc_plat_cpu_count() < 2)
        skip(); /* nowhere else to go */
    int a = tsupport_pin_self(-1);
    assert_true(a >= 0);
    tsupport_unpin_self();
    int b = tsupport_pin_self(a == 0 ? 1 : 0);
    if (b < 0) {
        tsupport_unpin_self();
        skip(); /* this process may not run on that CPU */
    }
    assert_int_equal(shmc_plat_current_cpu(), b); /* moved there */
    shmc_cpu_forget();
    assert_int_equal(shmc_cpu_current(), b);
    tsupport_unpin_self();
    assert_int_equal(tsupport_pin_self(a), a);
    assert_int_equal(shmc_plat_current_cpu(), a);
    int last = -1;
    for (unsigned i = 0; i < SHMC_CPU_ASK_EVERY; i++)
        last = shmc_cpu_current(); /* b for a while (not asked), then a */
    assert_int_equal(last, a);
    tsupport_unpin_self();
    shmc_cpu_forget();
}

/* A caller that finds the watcher of its call waiting on the CPU it runs
 * on moves to another CPU rather than spin where the watcher cannot run.
 * An attempt shows it only if the caller is still on the watcher's CPU
 * when it calls: the kernel may move it first once it is unbound (under
 * Wine, unbinding goes through wineserver, and the caller, woken from
 * that, is mostly put on the idle CPU). Such an attempt proves nothing
 * either way: tsupport_judge_move says how the attempts are judged. It
 * cleans up before it judges, so that a failure leaves the next tests a
 * process in order. */
static void caller_moves_off_a_shared_cpu(DWORD host_coinit, DWORD mine)
{
    if (shmc_plat_cpu_count() < 2)
        skip(); /* nobody spins on one CPU */
    fixture *f = fixture_new(host_coinit, mine);
    uint32_t spin = atomic_load(&shmc_tune.callee_spin_ns);
    atomic_store(&shmc_tune.callee_spin_ns, 4000000000u); /* the watcher watches on */
    bool moved = false, pinned = true, called = true;
    int attempts = 0, misses = 0;
    for (; attempts < TSUPPORT_MOVE_ATTEMPTS && !moved && misses < TSUPPORT_MOVE_MISSES && pinned &&
           called;
         attempts++) {
        int cpu = tsupport_pin_self(-1);
        pinned = cpu >= 0;
        if (!pinned)
            break;
        shmc_cpu_forget();
        pin_callee_to(f, cpu); /* the watcher says it is on cpu */
        /* a thread moves at most once a millisecond, and tries at most
         * that often: this thread may have tried in vain, bound, just now */
        shmc_plat_sleep_ms(2);
        tsupport_unpin_self(); /* the caller may go elsewhere, and is still on cpu */
        uint32_t moves = atomic_load(&shmc_cpu_moves);
        bool there = shmc_plat_current_cpu() == cpu;
        hyper tid = 0;
        called = ICallee_GetThreadId(f->proxy, &tid) == S_OK;
        /* (where it runs after the call is the kernel's: woken by the
         * callee, it may be put back on cpu) */
        moved = atomic_load(&shmc_cpu_moves) == moves + 1;
        if (!moved && there)
            misses++;
        pin_callee_to(f, -1);
    }
    atomic_store(&shmc_tune.callee_spin_ns, spin);
    fixture_free(f);
    tsupport_judge_move(pinned, called, moved, attempts, misses, "caller", "watcher");
}

static void caller_moves_off_a_shared_cpu_sta_mta(void **state)
{
    (void)state;
    caller_moves_off_a_shared_cpu(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
}

static void caller_moves_off_a_shared_cpu_mta_sta(void **state)
{
    (void)state;
    caller_moves_off_a_shared_cpu(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
}

/* Caller and watcher bound to one CPU: neither can move, each gives the
 * CPU away to the other at once, and the calls go through. */
static void calls_on_one_shared_cpu(DWORD host_coinit, DWORD mine)
{
    if (shmc_plat_cpu_count() < 2)
        skip(); /* nobody spins on one CPU */
    fixture *f = fixture_new(host_coinit, mine);
    int cpu = tsupport_pin_self(-1);
    assert_true(cpu >= 0);
    shmc_cpu_forget();
    pin_callee_to(f, cpu);
    uint32_t moves = atomic_load(&shmc_cpu_moves);
    LONG before = 0, after = 0;
    assert_hr(ICallee_GetCount(f->proxy, &before), S_OK);
    for (LONG i = 0; i < 1000; i++) {
        LONG sum = 0;
        assert_hr(ICallee_Add(f->proxy, 100, i, &sum), S_OK);
        assert_int_equal(sum, 100 + i);
        assert_int_equal(shmc_plat_current_cpu(), cpu);
    }
    assert_hr(ICallee_GetCount(f->proxy, &after), S_OK);
    assert_int_equal(after - before, 1000);                /* each ran once */
    assert_int_equal(atomic_load(&shmc_cpu_moves), moves); /* nowhere to go */
    pin_callee_to(f, -1);
    tsupport_unpin_self();
    fixture_free(f);
}

static void calls_on_one_shared_cpu_sta_mta(void **state)
{
    (void)state;
    calls_on_one_shared_cpu(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
}

static void calls_on_one_shared_cpu_mta_sta(void **state)
{
    (void)state;
    calls_on_one_shared_cpu(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
}

static void register_proxy_stubs_results(void **state)
{
    (void)state;
    const ShmProxyFileInfo *good = &calltest_ProxyFileInfo;
    assert_true(good->ninterfaces >= 1);
    assert_true(SUCCEEDED(ShmCoRegisterProxyStubs(good))); /* S_OK unless a test did it */
    assert_hr(ShmCoRegisterProxyStubs(good), S_FALSE);     /* nothing new */
    assert_hr(ShmCoRegisterProxyStubs(NULL), E_INVALIDARG);
    static ShmProxyFileInfo other;
    other = *good;
    other.abi_version = SHM_PROXYSTUB_ABI + 1;
    assert_hr(ShmCoRegisterProxyStubs(&other), RPC_E_VERSION_MISMATCH);
    other = *good;
    other.interfaces = NULL;
    assert_hr(ShmCoRegisterProxyStubs(&other), E_INVALIDARG);
    other.ninterfaces = 0; /* an empty file adds nothing */
    assert_hr(ShmCoRegisterProxyStubs(&other), S_FALSE);

    /* a good copy next to a broken table: refused whole */
    static ShmInterfaceInfo copy, broken;
    static const ShmInterfaceInfo *list[2];
    copy = *good->interfaces[0];
    broken = copy;
    broken.proxy_vtbl = NULL;
    list[0] = &copy;
    list[1] = &broken;
    other = *good;
    other.ninterfaces = 2;
    other.interfaces = list;
    assert_hr(ShmCoRegisterProxyStubs(&other), E_INVALIDARG);
    broken = copy;
    broken.iid = &IID_IUnknown; /* the runtime's own */
    assert_hr(ShmCoRegisterProxyStubs(&other), E_INVALIDARG);
    broken = copy;
    broken.nmethods = 2;
    assert_hr(ShmCoRegisterProxyStubs(&other), E_INVALIDARG);
    assert_hr(ShmCoRegisterProxyStubs(good), S_FALSE); /* the copy was not taken */

    /* another table for a registered interface replaces it */
    other.ninterfaces = 1;
    assert_hr(ShmCoRegisterProxyStubs(&other), S_OK);
    assert_hr(ShmCoRegisterProxyStubs(good), S_OK); /* and back */
    assert_hr(ShmCoRegisterProxyStubs(good), S_FALSE);
}

/* ---- the call timeout is the calling thread's ------------------------------------- */

typedef struct timeout_thread {
    ICallee *proxy; /* of the MTA: these threads are in it implicitly */
    DWORD set_ms;   /* 0: the thread keeps the default */
    ULONG wait_ms;  /* how long the host holds its call */
    _Atomic int set, go;
    HRESULT hr;
} timeout_thread;

static void timeout_thread_main(void *arg)
{
    timeout_thread *t = arg;
    if (t->set_ms)
        ShmCoSetCallTimeout(t->set_ms);
    atomic_store(&t->set, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&t->go) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
    t->hr = ICallee_Wait(t->proxy, t->wait_ms);
}

static void start_timeout_thread(shmc_plat_thread *th, timeout_thread *t, bool go)
{
    atomic_store(&t->go, go);
    assert_hr(shmc_plat_thread_create(th, timeout_thread_main, t), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&t->set) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
    assert_true(atomic_load(&t->set));
}

/* ShmCoSetCallTimeout sets the calling thread's limit and no one else's;
 * a thread that never set one waits for ever (INFINITE): here for calls
 * the host holds 300 ms and 1.5 s, while another thread's limit is 50 ms. */
static void call_timeout_is_per_thread(void **state)
{
    (void)state;
    fixture *f = fixture_new(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    timeout_thread *abc = shared_state(3 * sizeof(*abc));
    timeout_thread *a = &abc[0], *b = &abc[1], *c = &abc[2];
    for (int i = 0; i < 3; i++) {
        abc[i].proxy = f->proxy;
        abc[i].hr = E_FAIL;
    }
    a->set_ms = tsupport_ms(50); /* b and c keep the default */
    a->wait_ms = b->wait_ms = tsupport_ms(300);
    c->wait_ms = tsupport_ms(1500);
    shmc_plat_thread ta, tb, tc;
    start_timeout_thread(&ta, a, false); /* A set 50 ms, and waits */
    start_timeout_thread(&tb, b, true);
    shmc_plat_thread_join(&tb);
    assert_hr(b->hr, S_OK);
    start_timeout_thread(&tc, c, true);
    shmc_plat_thread_join(&tc);
    assert_hr(c->hr, S_OK);
    /* and A's own limit is still 50 ms */
    atomic_store(&a->go, 1);
    shmc_plat_thread_join(&ta);
    assert_hr(a->hr, RPC_E_TIMEOUT);
    free(abc);
    fixture_free(f);
}

/* After every test: one that failed half-way may have left a hook on the
 * callee, a host held in a call, its spin changed, or this thread in its
 * apartment, and the tests after it would then fail for that (or hang)
 * instead of running. After a test that passed this changes nothing a test
 * relies on. (Threads a failed test started are not stopped here: it
 * fails, and they end once their calls return or with the program; what
 * they use is on the heap, see shared_state.) */
static uint32_t default_callee_spin;

static int settle(void **state)
{
    (void)state;
    callee_wait_hook = NULL;
    /* a host a failed test held in a call goes on (each test that holds
     * one resets these first), and so do the callers queued behind it */
    atomic_store(&hold.release, 1);
    atomic_store(&inflight.go, 1);
    atomic_store(&shmc_tune.callee_spin_ns, default_callee_spin);
    shmc_thread *th = shmc_thread_peek();
    while (th && th->inits)
        ShmCoUninitialize();
    return 0;
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    default_callee_spin = atomic_load(&shmc_tune.callee_spin_ns);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(every_argument_kind, settle),
        cmocka_unit_test_teardown(handoff_quiet_adapts, settle),
        cmocka_unit_test_teardown(calls_run_on_the_sta_thread, settle),
        cmocka_unit_test_teardown(sta_runs_one_call_at_a_time_in_order, settle),
        cmocka_unit_test_teardown(callback_reaches_the_waiting_sta, settle),
        cmocka_unit_test_teardown(sta_driven_by_event_loop, settle),
        cmocka_unit_test_teardown(sta_process_calls_dispatches, settle),
        cmocka_unit_test_teardown(sta_runs_callers_in_arrival_order, settle),
        cmocka_unit_test_teardown(sta_wait_handle_ready_for_each_call, settle),
        cmocka_unit_test_teardown(sta_wait_handle_set_for_call_left_behind, settle),
        cmocka_unit_test_teardown(sta_wait_handle_with_other_waits, settle),
        cmocka_unit_test_teardown(mta_object_runs_on_runtime_threads, settle),
        cmocka_unit_test_teardown(mta_to_mta_is_direct, settle),
        cmocka_unit_test_teardown(object_returning_method, settle),
        cmocka_unit_test_teardown(iid_is_and_remote_qi, settle),
        cmocka_unit_test_teardown(remote_qi_for_missing_interface_sta, settle),
        cmocka_unit_test_teardown(remote_qi_for_missing_interface_mta, settle),
        cmocka_unit_test_teardown(proxy_passed_to_third_apartment, settle),
        cmocka_unit_test_teardown(timeout_and_late_reply, settle),
        cmocka_unit_test_teardown(watched_call_timeouts, settle),
        cmocka_unit_test_teardown(watched_call_timeouts_mta, settle),
        cmocka_unit_test_teardown(disconnected_object, settle),
        cmocka_unit_test_teardown(disconnect_while_call_runs_sta, settle),
        cmocka_unit_test_teardown(disconnect_while_call_runs_mta, settle),
        cmocka_unit_test_setup_teardown(disconnect_while_counted_call_runs_sta, hazards_off,
                                        hazards_back),
        cmocka_unit_test_setup_teardown(disconnect_while_counted_call_runs_mta, hazards_off,
                                        hazards_back),
        cmocka_unit_test_teardown(hazard_records_run_out_and_come_back, settle),
        cmocka_unit_test_teardown(server_apartment_ends, settle),
        cmocka_unit_test_teardown(client_apartment_ends, settle),
        cmocka_unit_test_teardown(used_from_the_wrong_apartment, settle),
        cmocka_unit_test_teardown(allocation_failures_in_calls, settle),
        cmocka_unit_test_teardown(frame_limits, settle),
        cmocka_unit_test_teardown(every_allocation_fails_in_turn_sta, settle),
        cmocka_unit_test_teardown(every_allocation_fails_in_turn_mta, settle),
        cmocka_unit_test_teardown(register_proxy_stubs_results, settle),
        cmocka_unit_test_teardown(thread_cpu_is_asked_again, settle),
        cmocka_unit_test_teardown(caller_moves_off_a_shared_cpu_sta_mta, settle),
        cmocka_unit_test_teardown(caller_moves_off_a_shared_cpu_mta_sta, settle),
        cmocka_unit_test_teardown(calls_on_one_shared_cpu_sta_mta, settle),
        cmocka_unit_test_teardown(calls_on_one_shared_cpu_mta_sta, settle),
        cmocka_unit_test_teardown(call_timeout_is_per_thread, settle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
