/*
 * test_idlcalls.c - every method of tests/idl/calls.idl, which holds every
 * construct shmidl accepts (base types of every width, an enum, structs
 * by value and by pointer, fixed arrays, GUID and REFIID, char, WCHAR and
 * LPCOLESTR strings, size_is(n) and size_is(*pm) arrays in, out and in
 * both directions, callee-allocated size_is(, *pn) and size_is(, n)
 * arrays, an interface derived from one of another file, [in] and [out]
 * interface pointers, iid_is on both, IStream and ISequentialStream),
 * through the runtime's real channel: between apartments of this process
 * (an MTA caller and an STA object, an STA caller and an MTA object), and
 * between processes (MSHCTX_LOCAL, the object in a child, both pairs).
 * test_proxystub runs the same checks (calls/callsobj.c) through a
 * loopback channel; here the runtime's marshaler, transport and
 * apartments carry them. Then the rules of the runtime's own stream
 * proxies (streamps.c) that calls.idl does not reach.
 *
 * Every scenario ends with every reference given back: the objects count
 * theirs, and the object's process checks its own (a child exits 0 only
 * if its object and callback came back to the one reference it holds).
 */
#define COBJMACROS
#include "callsobj.h"
#include "psengine.h"
#include "rt.h"
#include "tobj.h"
#include "xpeer_mb.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(callsobj_counts) <= sizeof(((xpeer_mb *)0)->data),
               "an object's counts fit in the mailbox");

/* ---- set-up ------------------------------------------------------------------------ */

static HRESULT register_calls(void)
{
    HRESULT hr = ShmCoRegisterProxyStubs(&base_ProxyFileInfo);
    return FAILED(hr) ? hr : ShmCoRegisterProxyStubs(&calls_ProxyFileInfo);
}

/* The proxies and stubs of base.idl and calls.idl, registered once. */
static void register_once(void)
{
    static bool registered;
    if (!registered) {
        assert_hr(register_calls(), S_OK);
        registered = true;
    }
}

/* What a case that failed half way leaves behind, for its teardown. */
static struct {
    bool in_apartment;
    thost *host;
} left;

static void enter_apartment(DWORD coinit)
{
    assert_hr(ShmCoInitializeEx(NULL, coinit), S_OK);
    left.in_apartment = true;
}

static void leave_apartment(void)
{
    ShmCoUninitialize();
    left.in_apartment = false;
}

/* Kills the children still running, stops the host thread and leaves the
 * apartment, so that a failed case does not fail the next ones too. */
static int teardown(void **state)
{
    xpeer_teardown(state);
    if (left.host)
        thost_stop(left.host, false);
    left.host = NULL;
    if (left.in_apartment)
        leave_apartment();
    return 0;
}

/* Waits until *refs is `want`, serving this thread's apartment meanwhile
 * if it is an STA (a reference that another apartment or process gives
 * back may need it); fails the test after a generous bound. */
static void await_refs(_Atomic int *refs, int want)
{
    uint64_t t0 = shmc_plat_clock_ns();
    while (atomic_load(refs) != want) {
        if (tsupport_ms_since(t0) > tsupport_ms(20000))
            fail_msg("references: %d, expected %d", atomic_load(refs), want);
        if (FAILED(ShmCoProcessCalls(1)))
            shmc_plat_sleep_ms(1);
    }
}

/* ---- interface pointers ---------------------------------------------------------- */

/*
 * [in] and [out] interface pointers, iid_is on both, and IStream, through
 * p (a proxy for a calls_obj whose counts are `counts`), from this thread
 * (in an STA if sta): the object calls back into an object of this
 * apartment, returns its own callback, and queries what it is given.
 */
static callback own_cb; /* (not on the stack: a failed case leaves proxies to it) */

static void check_interfaces(IDerived *p, callsobj_counts *counts, bool sta)
{
    callback_init(&own_cb, NULL);
    ICallback *cb = &own_cb.ICallback_iface;
    uint64_t self = shmc_plat_thread_self_id();

    /* [in] interface: the object calls back into this apartment while this
     * thread waits for the reply: on this thread in an STA, on a thread of
     * the runtime in the MTA */
    int calls = counts->calls;
    assert_hr(IDerived_GiveCallback(p, cb, 8), S_OK);
    assert_int_equal(own_cb.own.cb_calls, 1);
    if (sta)
        assert_int_equal(atomic_load(&own_cb.thread), self);
    else
        assert_int_not_equal(atomic_load(&own_cb.thread), self);
    assert_hr(IDerived_GiveCallback(p, NULL, 8), S_FALSE);
    assert_int_equal(counts->calls, calls + 2);
    /* borrowed: the object's apartment gave its proxy back */
    await_refs(&own_cb.refs, 1);

    /* [out] interface: a working proxy to the object's own callback */
    ICallback *got = NULL;
    assert_hr(IDerived_GetCallback(p, &got), S_OK);
    assert_non_null(got);
    assert_ptr_not_equal(got, cb);
    int cb_calls = counts->cb_calls;
    LONG twice = 0;
    assert_hr(ICallback_Called(got, 4, &twice), S_OK);
    assert_int_equal(twice, 8);
    assert_int_equal(counts->cb_calls, cb_calls + 1);
    /* handed back as an [in] interface, the proxy reaches the callback */
    assert_hr(IDerived_GiveCallback(p, got, 1), S_OK);
    assert_int_equal(counts->cb_calls, cb_calls + 2);
    assert_int_equal(own_cb.own.cb_calls, 1);
    assert_int_equal(ICallback_Release(got), 0);

    /* iid_is on [out] void **: the object queries this apartment's object
     * (through a proxy, calling back here) and returns what it got, which
     * comes back as the object itself, not as a proxy */
    void *pv = NULL;
    assert_hr(IDerived_Query(p, (IUnknown *)cb, &IID_ICallback, &pv), S_OK);
    assert_ptr_equal(pv, cb);
    IUnknown_Release((IUnknown *)pv);
    /* the object's own proxy, marshaled as IUnknown: there, the object
     * itself, which gives another interface; here, a proxy of the same
     * identity as p */
    ICalls *calls_itf = NULL;
    assert_hr(IDerived_Query(p, (IUnknown *)p, &IID_ICalls, (void **)&calls_itf), S_OK);
    assert_non_null(calls_itf);
    IUnknown *u1 = NULL, *u2 = NULL;
    assert_hr(IDerived_QueryInterface(p, &IID_IUnknown, (void **)&u1), S_OK);
    assert_hr(ICalls_QueryInterface(calls_itf, &IID_IUnknown, (void **)&u2), S_OK);
    assert_ptr_equal(u1, u2);
    IUnknown_Release(u1);
    IUnknown_Release(u2);
    assert_hr(ICalls_Nothing(calls_itf), S_OK);
    ICalls_Release(calls_itf);
    /* the object's QueryInterface fails: [out] NULL; a NULL [in]
     * interface reaches the object, whose own error comes back */
    calls = counts->calls;
    pv = (void *)1;
    assert_hr(IDerived_Query(p, (IUnknown *)cb, &IID_IDerived, &pv), E_NOINTERFACE);
    assert_null(pv);
    pv = (void *)1;
    assert_hr(IDerived_Query(p, NULL, &IID_ICallback, &pv), E_POINTER);
    assert_null(pv);
    assert_int_equal(counts->calls, calls + 2);
    /* NULL [out] and REFIID: refused before any call */
    assert_hr(IDerived_Query(p, (IUnknown *)cb, &IID_ICallback, NULL), E_POINTER);
    assert_hr(IDerived_Query(p, (IUnknown *)cb, NULL, &pv), E_POINTER);
    assert_int_equal(counts->calls, calls + 2);

    /* iid_is on an [in] interface: marshaled as the interface piid names */
    LONG n = 0;
    assert_hr(IDerived_PassIid(p, &IID_ICallback, (IUnknown *)cb, &n), S_OK);
    assert_int_equal(n, 1);
    n = 0;
    assert_hr(IDerived_PassIid(p, &IID_IUnknown, (IUnknown *)p, &n), S_OK);
    assert_int_equal(n, 1);
    assert_int_equal(counts->calls, calls + 4);
    /* ... which this object lacks, or for which no proxy is registered:
     * the call is not made, [out] zeroed */
    n = 5;
    assert_true(FAILED(IDerived_PassIid(p, &IID_IDerived, (IUnknown *)cb, &n)));
    assert_int_equal(n, 0);
    _Atomic int freed = 0;
    tobj *local = tobj_new(&freed, &IID_ILocalOnly);
    assert_non_null(local);
    n = 5;
    assert_hr(IDerived_PassIid(p, &IID_ILocalOnly, &local->IUnknown_iface, &n), REGDB_E_IIDNOTREG);
    assert_int_equal(n, 0);
    assert_hr(IDerived_PassIid(p, NULL, (IUnknown *)cb, &n), E_POINTER);
    assert_int_equal(counts->calls, calls + 4);
    assert_int_equal(tobj_refs(local), 1);
    IUnknown_Release(&local->IUnknown_iface);
    assert_true(atomic_load(&freed));

    /* IStream: a NULL one reaches the object */
    ISequentialStream *seq = (ISequentialStream *)1;
    assert_hr(IDerived_Stream(p, NULL, &seq), S_FALSE);
    assert_null(seq);
    assert_int_equal(counts->calls, calls + 5);

    await_refs(&own_cb.refs, 1);
}

/* Every method of calls.idl through p, checked in both directions; each
 * of the calls that every_method makes reaches the object once. */
enum { EVERY_METHOD_CALLS = 44 };
static void every_method(IDerived *p, callsobj_counts *counts, bool sta)
{
    callsobj_check_simple(p, counts);
    callsobj_check_base_types(p);
    callsobj_check_structs_and_fixed(p);
    callsobj_check_strings(p, counts);
    callsobj_check_sized_arrays(p, counts);
    callsobj_check_callee_allocated(p);
    callsobj_check_method_failure(p, counts);
    callsobj_check_streams(p, counts);
    check_interfaces(p, counts, sta);
}

/* ---- between apartments ---------------------------------------------------------- */

static calls_obj obj; /* in a host thread's apartment */

/* obj in a host thread's apartment (host), called from this thread in an
 * apartment of `mine`. */
static void between_apartments(DWORD host, DWORD mine)
{
    register_once();
    callsobj_init(&obj, NULL);
    enter_apartment(mine);
    IStream *stream = NULL;
    assert_hr(shmc_stream_create_heap(0, &stream), S_OK);
    thost *h =
        thost_start(host, stream, &IID_IDerived, (IUnknown *)&obj.IDerived_iface, MSHLFLAGS_NORMAL);
    left.host = h;
    assert_hr(thost_marshal_hr(h), S_OK);
    tstream_rewind(stream);
    IDerived *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(stream, &IID_IDerived, (void **)&p), S_OK);
    assert_ptr_not_equal(p, &obj.IDerived_iface);

    every_method(p, obj.counts, mine == COINIT_APARTMENTTHREADED);
    assert_int_equal(obj.counts->calls, EVERY_METHOD_CALLS);

    /* the last proxy gives every reference back at once */
    assert_int_equal(IDerived_Release(p), 0);
    assert_int_equal(atomic_load(&obj.refs), 1);
    assert_int_equal(atomic_load(&obj.cb.refs), 1);
    thost_stop(h, false);
    left.host = NULL;
    IStream_Release(stream);
    leave_apartment();
}

static void mta_caller_sta_object(void **state)
{
    (void)state;
    between_apartments(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
}

static void sta_caller_mta_object(void **state)
{
    (void)state;
    between_apartments(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
}

/* ---- between processes ----------------------------------------------------------- */

/*
 * "server": a calls_obj that counts into the mailbox, in an apartment of
 * mb->coinit, marshaled for another process into the stream (phase 1),
 * served until the parent says stop and every reference but ours came
 * back. Exits 0 if the object and its callback hold one reference each.
 */
static int child_server(const char *arg)
{
    xpeer x;
    CHILD_CHECK(xpeer_open(&x, arg));
    bool sta = x.mb->coinit == COINIT_APARTMENTTHREADED;
    CHILD_CHECK(ShmCoInitializeEx(NULL, x.mb->coinit) == S_OK);
    CHILD_CHECK(register_calls() == S_OK);
    calls_obj o;
    callsobj_init(&o, (callsobj_counts *)x.mb->data);
    CHILD_CHECK(ShmCoMarshalInterface(x.stream, &IID_IDerived, (IUnknown *)&o.IDerived_iface,
                                      MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL) == S_OK);
    atomic_store(&x.mb->phase, 1);
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&x.mb->stop) || atomic_load(&o.refs) > 1 || atomic_load(&o.cb.refs) > 1) {
        if (sta)
            ShmCoProcessCalls(1);
        else
            shmc_plat_sleep_ms(1);
        CHILD_CHECK(tsupport_ms_since(start) < tsupport_ms(120000));
    }
    CHILD_CHECK(atomic_load(&o.refs) == 1);
    CHILD_CHECK(atomic_load(&o.cb.refs) == 1);
    ShmCoUninitialize();
    xpeer_close(&x);
    return 0;
}

/* The object in a child process, in an apartment of `server`, called from
 * this thread in an apartment of `mine`. */
static void between_processes(DWORD server, DWORD mine)
{
    register_once();
    enter_apartment(mine);
    xpeer x;
    xpeer_create(&x);
    x.mb->coinit = server;
    shmc_plat_proc child;
    xpeer_spawn(&child, "server", x.name);
    assert_true(xpeer_await(&x.mb->phase, 1, tsupport_ms(30000)));
    tstream_rewind(x.stream);
    IDerived *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(x.stream, &IID_IDerived, (void **)&p), S_OK);
    callsobj_counts *counts = (callsobj_counts *)x.mb->data;

    every_method(p, counts, mine == COINIT_APARTMENTTHREADED);
    assert_int_equal(counts->calls, EVERY_METHOD_CALLS);

    assert_int_equal(IDerived_Release(p), 0);
    atomic_store(&x.mb->stop, 1);
    assert_int_equal(tsupport_join(&child, tsupport_ms(30000)), 0);
    xpeer_free(&x);
    leave_apartment();
}

static void mta_caller_sta_object_in_another_process(void **state)
{
    (void)state;
    between_processes(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
}

static void sta_caller_mta_object_in_another_process(void **state)
{
    (void)state;
    between_processes(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
}

/* ---- the stream proxies' own rules ------------------------------------------------ */

/* An ISequentialStream over 64 bytes that counts its calls, and lies
 * about its counts when told to. */
typedef struct tseq {
    ISequentialStream ISequentialStream_iface;
    _Atomic int refs;
    _Atomic int reads, writes;
    _Atomic int lie;
    unsigned char data[64];
    ULONG pos, size;
} tseq;

static HRESULT STDMETHODCALLTYPE tseq_QueryInterface(ISequentialStream *This, REFIID riid,
                                                     void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ISequentialStream)) {
        *ppv = This;
        ISequentialStream_AddRef(This);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE tseq_AddRef(ISequentialStream *This)
{
    return (ULONG)atomic_fetch_add(&((tseq *)This)->refs, 1) + 1;
}
static ULONG STDMETHODCALLTYPE tseq_Release(ISequentialStream *This)
{
    return (ULONG)atomic_fetch_sub(&((tseq *)This)->refs, 1) - 1;
}
static HRESULT STDMETHODCALLTYPE tseq_Read(ISequentialStream *This, void *pv, ULONG cb,
                                           ULONG *pcbRead)
{
    tseq *t = (tseq *)This;
    t->reads++;
    ULONG n = t->size - t->pos < cb ? t->size - t->pos : cb;
    memcpy(pv, t->data + t->pos, n);
    t->pos += n;
    *pcbRead = n + (t->lie ? 1 : 0);
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE tseq_Write(ISequentialStream *This, const void *pv, ULONG cb,
                                            ULONG *pcbWritten)
{
    tseq *t = (tseq *)This;
    t->writes++;
    ULONG n = sizeof(t->data) - t->pos < cb ? (ULONG)sizeof(t->data) - t->pos : cb;
    memcpy(t->data + t->pos, pv, n);
    t->pos += n;
    t->size = t->pos > t->size ? t->pos : t->size;
    *pcbWritten = n + (t->lie ? 1 : 0);
    return S_OK;
}
static const ISequentialStreamVtbl tseq_vtbl = {tseq_QueryInterface, tseq_AddRef, tseq_Release,
                                                tseq_Read, tseq_Write};

static tseq seq_obj;

static int chunks_back(void **state)
{
    atomic_store(&shmc_tune.stream_chunk, 0);
    return teardown(state);
}

/* Through a proxy, a Read or Write larger than a chunk (64 MiB; 16 bytes
 * here) is several calls, stopping at the first short count; a count
 * above what was asked for is refused, and nothing of it comes back. */
static void stream_proxy_chunks_and_counts(void **state)
{
    (void)state;
    memset(&seq_obj, 0, sizeof(seq_obj));
    seq_obj.ISequentialStream_iface.lpVtbl = &tseq_vtbl;
    seq_obj.refs = 1;
    for (int i = 0; i < 40; i++)
        seq_obj.data[i] = (unsigned char)(i + 1);
    seq_obj.size = 40;
    atomic_store(&shmc_tune.stream_chunk, 16);
    enter_apartment(COINIT_MULTITHREADED);
    IStream *stream = NULL;
    assert_hr(shmc_stream_create_heap(0, &stream), S_OK);
    left.host = thost_start(COINIT_APARTMENTTHREADED, stream, &IID_ISequentialStream,
                            (IUnknown *)&seq_obj.ISequentialStream_iface, MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(left.host), S_OK);
    tstream_rewind(stream);
    ISequentialStream *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(stream, &IID_ISequentialStream, (void **)&p), S_OK);
    assert_ptr_not_equal(p, &seq_obj.ISequentialStream_iface);

    unsigned char buf[64];
    ULONG got = 0;
    memset(buf, 0, sizeof(buf));
    assert_hr(ISequentialStream_Read(p, buf, 40, &got), S_OK);
    assert_int_equal(got, 40);
    assert_int_equal(seq_obj.reads, 3); /* 16 + 16 + 8 */
    assert_memory_equal(buf, seq_obj.data, 40);
    /* at the end: one call, short */
    assert_hr(ISequentialStream_Read(p, buf, 40, &got), S_OK);
    assert_int_equal(got, 0);
    assert_int_equal(seq_obj.reads, 4);
    /* a short count in the second chunk ends it there */
    seq_obj.pos = 20;
    assert_hr(ISequentialStream_Read(p, buf, 64, &got), S_OK);
    assert_int_equal(got, 20);
    assert_int_equal(seq_obj.reads, 6);
    assert_memory_equal(buf, seq_obj.data + 20, 20);

    unsigned char in[48];
    for (int i = 0; i < 48; i++)
        in[i] = (unsigned char)(100 + i);
    seq_obj.pos = 0;
    ULONG done = 0;
    assert_hr(ISequentialStream_Write(p, in, 48, &done), S_OK);
    assert_int_equal(done, 48);
    assert_int_equal(seq_obj.writes, 3);
    assert_memory_equal(seq_obj.data, in, 48);
    assert_int_equal(seq_obj.size, 48);

    /* a stream that says it moved a byte more than it was asked for */
    seq_obj.lie = 1;
    seq_obj.pos = 0;
    memset(buf, 0x55, sizeof(buf));
    got = 99;
    assert_hr(ISequentialStream_Read(p, buf, 10, &got), RPC_E_INVALID_DATA);
    assert_int_equal(got, 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(buf[10], 0x55);
    done = 99;
    assert_hr(ISequentialStream_Write(p, in, 10, &done), RPC_E_INVALID_DATA);
    assert_int_equal(done, 0);
    seq_obj.lie = 0;

    assert_int_equal(ISequentialStream_Release(p), 0);
    assert_int_equal(atomic_load(&seq_obj.refs), 1);
    thost_stop(left.host, false);
    left.host = NULL;
    IStream_Release(stream);
    leave_apartment();
}

/* The runtime's tables for the streams pass the engine's checks, and a
 * process that registered nothing finds them. */
static void stream_tables(void **state)
{
    (void)state;
    const ShmInterfaceInfo *seq = shmc_registry_find(&IID_ISequentialStream);
    const ShmInterfaceInfo *stm = shmc_registry_find(&IID_IStream);
    assert_non_null(seq);
    assert_non_null(stm);
    assert_hr(shmc_ps_check_interface(seq), S_OK);
    assert_hr(shmc_ps_check_interface(stm), S_OK);
    assert_int_equal(seq->nmethods, 5);
    assert_int_equal(stm->nmethods, 14);
    assert_true(IsEqualIID(stm->base_iid, &IID_ISequentialStream));
    assert_string_equal(stm->methods[12].name, "Stat");
    assert_null(shmc_registry_find(&IID_ILocalOnly));
}

int main(int argc, char **argv)
{
    static const tsupport_child children[] = {
        {"server", child_server},
        {NULL, NULL},
    };
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(mta_caller_sta_object, teardown),
        cmocka_unit_test_teardown(sta_caller_mta_object, teardown),
        cmocka_unit_test_teardown(mta_caller_sta_object_in_another_process, teardown),
        cmocka_unit_test_teardown(sta_caller_mta_object_in_another_process, teardown),
        cmocka_unit_test_teardown(stream_proxy_chunks_and_counts, chunks_back),
        cmocka_unit_test(stream_tables),
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
