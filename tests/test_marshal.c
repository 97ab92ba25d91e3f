/*
 * test_marshal.c - the standard marshaler's reference semantics between
 * apartments of one process, as COM defines them (Wine's
 * dlls/ole32/tests/marshal.c, checked against Windows, pins them down; these
 * tests are our own, written for the behaviours that apply to shmcom).
 * The objects count their references, and every scenario checks them, so a
 * leak or a double release shows where it happens. Where a scenario needs
 * a proxy that can be called (to see that it works, and on which thread),
 * the object is tests/calls' callee (ICallee).
 */
#define COBJMACROS
#include "alloc.h"
#include "callee.h"
#include "calltest.h"
#include "objref.h"
#include "tobj.h"

#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <poll.h>
#endif

/* An interface the test objects implement but that has no proxy/stub. */
static const IID IID_ITestNoPS = {
    0x1f7b1c2d, 0x3e4f, 0x4a5b, {0x8c, 0x9d, 0xae, 0xbf, 0xc0, 0xd1, 0xe2, 0xf3}};
/* One nobody implements. */
static const IID IID_ITestNobody = {
    0x2a2b2c2d, 0x1111, 0x2222, {0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x66, 0x66}};

static IStream *new_stream(void)
{
    IStream *s = NULL;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    return s;
}

/* ICallee and ICallback (tests/calls): proxies that can be called, to see
 * where a call runs; registered once. */
static void register_calltest(void)
{
    static bool registered;
    if (!registered) {
        assert_hr(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo), S_OK);
        registered = true;
    }
}

static void record_tid(void *arg)
{
    *(uint64_t *)arg = shmc_plat_thread_self_id();
}

/* The stream's seek pointer, or ~0 if it cannot say (for threads other than
 * the test's, where cmocka's assertions do not work). */
static ULONGLONG stream_pos(IStream *s)
{
    LARGE_INTEGER zero;
    ULARGE_INTEGER pos;
    zero.QuadPart = 0;
    return SUCCEEDED(IStream_Seek(s, zero, STREAM_SEEK_CUR, &pos)) ? pos.QuadPart : ~0ull;
}

static int setup_sta(void **state)
{
    (void)state;
    return ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED) == S_OK ? 0 : -1;
}

static int setup_mta(void **state)
{
    (void)state;
    return ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    ShmCoUninitialize();
    return 0;
}

/* ---- in the object's own apartment ----------------------------------------- */

static void normal_marshal_and_release(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    assert_true(tobj_refs(o) > 1); /* the stub holds it */
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
    assert_true(atomic_load(&freed));
}

static void normal_marshal_and_unmarshal_same_apartment(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    IUnknown *got = NULL;
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&got), S_OK);
    assert_ptr_equal(got, &o->IUnknown_iface); /* the object itself */
    assert_int_equal(tobj_refs(o), 2);         /* ours and the one returned */
    /* the record was honoured once */
    tstream_rewind(s);
    IUnknown *again = (IUnknown *)(uintptr_t)1;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&again), CO_E_OBJNOTCONNECTED);
    assert_null(again);
    IUnknown_Release(got);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
}

static void failed_unmarshal_consumes_the_record(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    void *got = (void *)1;
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ITestNobody, &got), E_NOINTERFACE);
    assert_null(got);
    assert_int_equal(tobj_refs(o), 1); /* nothing held any more */
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &got), CO_E_OBJNOTCONNECTED);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
}

static void marshal_errors(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, &IID_ITestNoPS);
    IStream *s = new_stream();
    IUnknown *u = &o->IUnknown_iface;
    void *out = (void *)1;
    ULONG size = 7;
    /* an interface the object lacks, and one it has without a proxy/stub */
    assert_hr(ShmCoMarshalInterface(s, &IID_ITestNobody, u, MSHCTX_INPROC, NULL, 0), E_NOINTERFACE);
    assert_hr(ShmCoMarshalInterface(s, &IID_ITestNoPS, u, MSHCTX_INPROC, NULL, 0),
              REGDB_E_IIDNOTREG);
    /* arguments */
    assert_hr(ShmCoMarshalInterface(NULL, &IID_IUnknown, u, MSHCTX_INPROC, NULL, 0), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterface(s, NULL, u, MSHCTX_INPROC, NULL, 0), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, NULL, MSHCTX_INPROC, NULL, 0), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, u, MSHCTX_INPROC, NULL, 3), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, u, 99, NULL, 0), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, u, MSHCTX_DIFFERENTMACHINE, NULL, 0),
              E_NOTIMPL);
    assert_hr(ShmCoUnmarshalInterface(NULL, &IID_IUnknown, &out), E_INVALIDARG);
    assert_null(out);
    assert_hr(ShmCoUnmarshalInterface(s, NULL, &out), E_INVALIDARG);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, NULL), E_INVALIDARG);
    assert_hr(ShmCoReleaseMarshalData(NULL), E_INVALIDARG);
    assert_hr(ShmCoGetMarshalSizeMax(NULL, &IID_IUnknown, u, MSHCTX_INPROC, NULL, 0), E_INVALIDARG);
    assert_hr(ShmCoGetMarshalSizeMax(&size, &IID_IUnknown, NULL, MSHCTX_INPROC, NULL, 0),
              E_INVALIDARG);
    assert_int_equal(size, 0);
    assert_hr(ShmCoGetMarshalSizeMax(&size, &IID_IUnknown, u, MSHCTX_INPROC, NULL, 0), S_OK);
    assert_true(size >= 96);
    /* nothing was written by the failures */
    STATSTG st;
    assert_hr(IStream_Stat(s, &st, STATFLAG_NONAME), S_OK);
    assert_int_equal(st.cbSize.QuadPart, 0);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    IUnknown_Release(u);
}

static void records_back_to_back(void **state)
{
    (void)state;
    tobj *a = tobj_new(NULL, NULL), *b = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    IUnknown *ga = NULL, *gb = NULL;
    ULARGE_INTEGER pos;
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &a->IUnknown_iface, MSHCTX_INPROC, NULL, 0),
              S_OK);
    assert_hr(IStream_Seek(s, zero, STREAM_SEEK_CUR, &pos), S_OK);
    ULONGLONG first_end = pos.QuadPart;
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &b->IUnknown_iface, MSHCTX_INPROC, NULL, 0),
              S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&ga), S_OK);
    assert_hr(IStream_Seek(s, zero, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos.QuadPart, first_end); /* left at the end of the record */
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&gb), S_OK);
    assert_ptr_equal(ga, &a->IUnknown_iface);
    assert_ptr_equal(gb, &b->IUnknown_iface);
    /* at the end of the stream: nothing more to read */
    void *none = (void *)1;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &none), STG_E_READFAULT);
    assert_null(none);
    assert_hr(ShmCoReleaseMarshalData(s), STG_E_READFAULT);
    IUnknown_Release(ga);
    IUnknown_Release(gb);
    assert_int_equal(tobj_refs(a), 1);
    assert_int_equal(tobj_refs(b), 1);
    IUnknown_Release(&a->IUnknown_iface);
    IUnknown_Release(&b->IUnknown_iface);
    IStream_Release(s);
}

/* Four NORMAL records back to back: a, b, a, b. */
typedef struct four_records {
    IStream *s;
    IUnknown *objs[4];
    ULONGLONG ends[4];
    HRESULT hr;
} four_records;

static void write_four_records(void *arg)
{
    four_records *f = arg;
    f->hr = S_OK;
    for (int i = 0; i < 4 && SUCCEEDED(f->hr); i++) {
        f->hr = ShmCoMarshalInterface(f->s, &IID_IUnknown, f->objs[i], MSHCTX_INPROC, NULL,
                                      MSHLFLAGS_NORMAL);
        f->ends[i] = stream_pos(f->s);
    }
}

/*
 * Whatever a record's fate (released, unmarshaled for an interface the
 * object lacks, or read again once spent), the stream is left at its end,
 * so the record after it reads as if nothing had happened. Records of this
 * apartment's objects (host NULL), or of a host apartment's (proxies).
 */
static void record_positions(thost *h)
{
    tobj *a = tobj_new(NULL, NULL), *b = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    four_records f = {
        s,
        {&a->IUnknown_iface, &b->IUnknown_iface, &a->IUnknown_iface, &b->IUnknown_iface},
        {0},
        E_FAIL};
    if (h)
        thost_run(h, write_four_records, &f);
    else
        write_four_records(&f);
    assert_hr(f.hr, S_OK);
    void *got = (void *)1;
    IUnknown *ga = NULL, *gb = NULL;

    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK); /* the first a */
    assert_int_equal(tsupport_stream_pos(s), f.ends[0]);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ITestNobody, &got), E_NOINTERFACE); /* the first b */
    assert_null(got);
    assert_int_equal(tsupport_stream_pos(s), f.ends[1]);
    /* both spent now: read again, each is refused and passed over */
    tstream_rewind(s);
    got = (void *)1;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &got), CO_E_OBJNOTCONNECTED);
    assert_null(got);
    assert_int_equal(tsupport_stream_pos(s), f.ends[0]);
    got = (void *)1;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &got), CO_E_OBJNOTCONNECTED);
    assert_null(got);
    assert_int_equal(tsupport_stream_pos(s), f.ends[1]);
    /* and the records after them read fine */
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&ga), S_OK);
    assert_int_equal(tsupport_stream_pos(s), f.ends[2]);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&gb), S_OK);
    assert_int_equal(tsupport_stream_pos(s), f.ends[3]);
    if (h) {
        assert_ptr_not_equal(ga, &a->IUnknown_iface); /* proxies */
        assert_ptr_not_equal(gb, &b->IUnknown_iface);
    } else {
        assert_ptr_equal(ga, &a->IUnknown_iface);
        assert_ptr_equal(gb, &b->IUnknown_iface);
    }
    /* released and spent records again, by release: passed over as well */
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    assert_int_equal(tsupport_stream_pos(s), f.ends[0]);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    assert_int_equal(tsupport_stream_pos(s), f.ends[1]);
    IUnknown_Release(ga);
    IUnknown_Release(gb);
    assert_int_equal(tobj_refs(a), 1); /* every record's reference came back */
    assert_int_equal(tobj_refs(b), 1);
    IUnknown_Release(&a->IUnknown_iface);
    IUnknown_Release(&b->IUnknown_iface);
    IStream_Release(s);
}

static void record_positions_same_apartment(void **state)
{
    (void)state;
    record_positions(NULL);
}

static void record_positions_other_apartment(void **state)
{
    (void)state;
    thost *h = thost_start(COINIT_APARTMENTTHREADED, NULL, NULL, NULL, 0);
    record_positions(h);
    thost_stop(h, false);
}

/* ShmCoGetMarshalSizeMax bounds what ShmCoMarshalInterface then writes,
 * for every context and kind of record, of an object and of a proxy. */
static void marshal_size_max_bounds_records(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(NULL, NULL), *remote = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &remote->IUnknown_iface,
                           MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    IUnknown_Release(&remote->IUnknown_iface);
    IUnknown *proxy = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&proxy), S_OK);
    IUnknown *who[2] = {&o->IUnknown_iface, proxy};
    static const DWORD ctxs[] = {MSHCTX_INPROC, MSHCTX_CROSSCTX, MSHCTX_LOCAL};
    static const DWORD kinds[] = {MSHLFLAGS_NORMAL, MSHLFLAGS_TABLESTRONG, MSHLFLAGS_TABLEWEAK};
    for (unsigned w = 0; w < 2; w++) {
        for (unsigned c = 0; c < 3; c++) {
            for (unsigned k = 0; k < 3; k++) {
                ULONG max = 0;
                assert_hr(
                    ShmCoGetMarshalSizeMax(&max, &IID_IUnknown, who[w], ctxs[c], NULL, kinds[k]),
                    S_OK);
                ULARGE_INTEGER zero;
                zero.QuadPart = 0;
                assert_hr(IStream_SetSize(s, zero), S_OK);
                tstream_rewind(s);
                assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, who[w], ctxs[c], NULL, kinds[k]),
                          S_OK);
                uint64_t used = tsupport_stream_pos(s);
                if (used == 0 || used > max)
                    fail_msg("%s, context %u, flags %u: %llu bytes, bound %lu",
                             w ? "proxy" : "object", (unsigned)ctxs[c], (unsigned)kinds[k],
                             (unsigned long long)used, (unsigned long)max);
                tstream_rewind(s);
                assert_hr(ShmCoReleaseMarshalData(s), S_OK);
            }
        }
    }
    assert_int_equal(tobj_refs(o), 1);
    assert_false(atomic_load(&freed));
    assert_int_equal(IUnknown_Release(proxy), 0);
    assert_true(atomic_load(&freed)); /* no record kept it */
    IUnknown_Release(&o->IUnknown_iface);
    IStream_Release(s);
    thost_stop(h, false);
}

static void garbage_is_rejected(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    void *out = (void *)1;
    unsigned char junk[200];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    assert_hr(IStream_Write(s, junk, sizeof(junk), NULL), S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &out), RPC_E_INVALID_OBJREF);
    assert_null(out);
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), RPC_E_INVALID_OBJREF);

    /* a real record, damaged field by field: each damage is refused */
    for (unsigned at = 0; at < 96; at++) {
        IStream *t = new_stream();
        unsigned char rec[96];
        ULONG got;
        assert_hr(ShmCoMarshalInterface(t, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                        MSHLFLAGS_NORMAL),
                  S_OK);
        tstream_rewind(t);
        assert_hr(IStream_Read(t, rec, sizeof(rec), &got), S_OK);
        assert_int_equal(got, sizeof(rec));
        unsigned char bad[96];
        memcpy(bad, rec, sizeof(bad));
        bad[at] ^= 0x5a;
        IStream *u = new_stream();
        assert_hr(IStream_Write(u, bad, sizeof(bad), NULL), S_OK);
        tstream_rewind(u);
        HRESULT hr = ShmCoUnmarshalInterface(u, &IID_IUnknown, &out);
        /* identity fields (iid at 16..31 with IID_NULL-free riid) may make
         * it another valid-looking record of a gone object */
        if (hr == S_OK)
            fail_msg("byte %u damaged still unmarshaled", at);
        assert_null(out);
        IStream_Release(u);
        /* the real record still works, and is released */
        tstream_rewind(t);
        assert_hr(ShmCoReleaseMarshalData(t), S_OK);
        IStream_Release(t);
    }
    /* truncated */
    IStream *t = new_stream();
    assert_hr(ShmCoMarshalInterface(t, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL, 0),
              S_OK);
    ULARGE_INTEGER half;
    half.QuadPart = 50;
    assert_hr(IStream_SetSize(t, half), S_OK);
    tstream_rewind(t);
    assert_hr(ShmCoUnmarshalInterface(t, &IID_IUnknown, &out), STG_E_READFAULT);
    IStream_Release(t);
    /* the truncated record's reference is lost with it until the object
     * is disconnected: that is what the owner does with lost records */
    assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), S_OK);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
}

static void disconnect_object(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    void *out;
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_TABLESTRONG),
              S_OK);
    assert_true(tobj_refs(o) > 1);
    assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), S_OK);
    assert_int_equal(tobj_refs(o), 1);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &out), CO_E_OBJNOTCONNECTED);
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);                   /* nothing left to release */
    assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), S_OK); /* again: fine */
    assert_hr(ShmCoDisconnectObject(NULL, 0), E_INVALIDARG);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
}

/* ---- between apartments ---------------------------------------------------- */

typedef struct rel_arg {
    IStream *s;
    HRESULT hr;
} rel_arg;

static void release_data_on_host(void *p)
{
    rel_arg *a = p;
    tstream_rewind(a->s);
    a->hr = ShmCoReleaseMarshalData(a->s);
}

static void interthread_normal(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface,
                           MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    IUnknown_Release(&o->IUnknown_iface); /* the host's stub keeps it */
    assert_true(tobj_refs(o) >= 1);
    IUnknown *p = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p), S_OK);
    assert_ptr_not_equal(p, &o->IUnknown_iface); /* a proxy */
    /* one identity */
    IUnknown *p2 = NULL;
    assert_hr(IUnknown_QueryInterface(p, &IID_IUnknown, (void **)&p2), S_OK);
    assert_ptr_equal(p, p2);
    IUnknown_Release(p2);
    /* an interface that the object lacks, through the proxy */
    void *none = (void *)1;
    assert_hr(IUnknown_QueryInterface(p, &IID_ITestNobody, &none), E_NOINTERFACE);
    assert_null(none);
    assert_false(atomic_load(&freed));
    /* the last proxy release gives the object back, synchronously */
    assert_int_equal(IUnknown_Release(p), 0);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    thost_stop(h, false);
}

/* NORMAL data read twice in another apartment (Wine's marshal.c,
 * test_normal_marshal_and_unmarshal_twice): the first read makes a proxy,
 * the second is refused, and takes nothing from the first. */
static void normal_unmarshal_twice_between_apartments(void **state)
{
    (void)state;
    register_calltest();
    _Atomic int freed;
    callee *obj = callee_new(1, &freed);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_ICallee,
                           (IUnknown *)&obj->ICallee_iface, MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    uint64_t host_tid = 0;
    thost_run(h, record_tid, &host_tid);
    ICallee_Release(&obj->ICallee_iface); /* the host's stub keeps it */
    ICallee *p1 = NULL, *p2 = (ICallee *)1;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&p1), S_OK);
    assert_ptr_not_equal(p1, &obj->ICallee_iface); /* a proxy */
    int refs = atomic_load(&obj->refs);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&p2), CO_E_OBJNOTCONNECTED);
    assert_null(p2);
    assert_int_equal(atomic_load(&obj->refs), refs); /* neither taken nor given back */
    assert_false(atomic_load(&freed));
    /* the first proxy still reaches the object, in its apartment */
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(p1, &tid), S_OK);
    assert_int_equal((uint64_t)tid, host_tid);
    assert_false(atomic_load(&freed));
    assert_int_equal(ICallee_Release(p1), 0);
    assert_true(atomic_load(&freed)); /* with the one proxy, synchronously */
    IStream_Release(s);
    thost_stop(h, false);
}

static void proxy_marshal_and_unmarshal(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p = NULL, *p2 = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p), S_OK);
    /* marshal the proxy six times: the records name the object */
    tstream_rewind(s);
    for (int i = 0; i < 6; i++)
        assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, p, MSHCTX_INPROC, NULL, 0), S_OK);
    IUnknown_Release(p); /* the records keep the object alive */
    assert_false(atomic_load(&freed));
    tstream_rewind(s);
    for (int i = 0; i < 6; i++) {
        assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p2), S_OK);
        IUnknown_Release(p2);
        if (i < 5)
            assert_false(atomic_load(&freed));
    }
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    thost_stop(h, false);
}

typedef struct home_arg {
    IStream *s;
    ICallee *got;
    HRESULT hr;
} home_arg;

static void unmarshal_on_host(void *arg)
{
    home_arg *a = arg;
    a->hr = ShmCoUnmarshalInterface(a->s, &IID_ICallee, (void **)&a->got);
}

static void release_on_host(void *arg)
{
    home_arg *a = arg;
    if (a->got)
        ICallee_Release(a->got);
    a->got = NULL;
}

typedef struct third_arg {
    IStream *s; /* a one-shot stream */
    DWORD coinit;
    HRESULT hr, call_hr;
    bool is_object;
    uint64_t call_tid;
    ULONG left;
} third_arg;

static void third_apartment_main(void *arg)
{
    third_arg *a = arg;
    ICallee *p = NULL;
    ShmCoInitializeEx(NULL, a->coinit);
    a->hr = ShmCoGetInterfaceAndReleaseStream(a->s, &IID_ICallee, (void **)&p);
    if (SUCCEEDED(a->hr)) {
        hyper tid = 0;
        a->call_hr = ICallee_GetThreadId(p, &tid);
        a->call_tid = (uint64_t)tid;
        a->left = ICallee_Release(p);
    }
    ShmCoUninitialize();
}

/* A record made from a proxy names the object: read in the object's own
 * apartment it gives the object itself; read in a third apartment, a proxy
 * whose calls run on the object's thread, not through this apartment. */
static void remarshaled_proxy_names_the_object(DWORD mine)
{
    register_calltest();
    _Atomic int freed;
    callee *obj = callee_new(1, &freed);
    IStream *s = new_stream(), *s2 = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_ICallee,
                           (IUnknown *)&obj->ICallee_iface, MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    uint64_t host_tid = 0;
    thost_run(h, record_tid, &host_tid);
    ICallee_Release(&obj->ICallee_iface);
    ICallee *p = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&p), S_OK);
    assert_ptr_not_equal(p, &obj->ICallee_iface);

    /* back home: the original pointer */
    assert_hr(ShmCoMarshalInterface(s2, &IID_ICallee, (IUnknown *)p, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    tstream_rewind(s2);
    home_arg ha = {s2, NULL, E_FAIL};
    thost_run(h, unmarshal_on_host, &ha);
    assert_hr(ha.hr, S_OK);
    assert_ptr_equal(ha.got, &obj->ICallee_iface);
    thost_run(h, release_on_host, &ha);
    /* read there, the record was spent */
    tstream_rewind(s2);
    thost_run(h, unmarshal_on_host, &ha);
    assert_hr(ha.hr, CO_E_OBJNOTCONNECTED);
    assert_null(ha.got);

    /* a third apartment (an STA, then the MTA): calls run on the host */
    static const DWORD third[] = {COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED};
    for (int i = 0; i < 2; i++) {
        third_arg ta = {NULL, third[i], E_FAIL, E_FAIL, false, 0, 99};
        assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_ICallee, (IUnknown *)p, &ta.s),
                  S_OK);
        shmc_plat_thread t;
        assert_hr(shmc_plat_thread_create(&t, third_apartment_main, &ta), S_OK);
        shmc_plat_thread_join(&t);
        assert_hr(ta.hr, S_OK);
        assert_hr(ta.call_hr, S_OK);
        assert_int_equal(ta.call_tid, host_tid);
        /* its own proxy manager, released; or, the MTA being this thread's
         * apartment too, the one p belongs to */
        assert_int_equal(ta.left, third[i] == COINIT_MULTITHREADED && mine == third[i] ? 1 : 0);
        assert_false(atomic_load(&freed));
    }
    assert_int_equal(ICallee_Release(p), 0);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    IStream_Release(s2);
    thost_stop(h, false);
}

static void remarshaled_proxy_names_the_object_sta(void **state)
{
    (void)state;
    remarshaled_proxy_names_the_object(COINIT_APARTMENTTHREADED);
}

static void remarshaled_proxy_names_the_object_mta(void **state)
{
    (void)state;
    remarshaled_proxy_names_the_object(COINIT_MULTITHREADED);
}

static void proxy_marshal_tableweak(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p = NULL, *p2 = (IUnknown *)1;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p), S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, p, MSHCTX_INPROC, NULL, MSHLFLAGS_TABLEWEAK),
              S_OK);
    IUnknown_Release(p); /* a weak record does not keep it */
    assert_true(atomic_load(&freed));
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p2), CO_E_OBJNOTREG);
    assert_null(p2);
    IStream_Release(s);
    thost_stop(h, false);
}

static void tableweak_twice(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface,
                           MSHLFLAGS_TABLEWEAK);
    IUnknown_Release(&o->IUnknown_iface);
    assert_false(atomic_load(&freed)); /* the stub holds it for now */
    IUnknown *p1 = NULL, *p2 = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p1), S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p2), S_OK);
    assert_ptr_equal(p1, p2); /* one proxy manager per object and apartment */
    IUnknown_Release(p1);
    assert_false(atomic_load(&freed));
    IUnknown_Release(p2);
    assert_true(atomic_load(&freed)); /* weak: strong users gone, object gone */
    IStream_Release(s);
    thost_stop(h, false);
}

static void tableweak_release_data(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface,
                           MSHLFLAGS_TABLEWEAK);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p1 = NULL, *p2 = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p1), S_OK);
    rel_arg ra = {s, E_FAIL};
    thost_run(h, release_data_on_host, &ra);
    assert_hr(ra.hr, S_OK);
    assert_false(atomic_load(&freed)); /* p1 keeps it */
    /* the record is gone: it no longer unmarshals */
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p2), CO_E_OBJNOTREG);
    IUnknown_Release(p1);
    assert_true(atomic_load(&freed));

    /* weak record released with no proxy: the object goes at once */
    o = tobj_new(&freed, NULL);
    IStream *s2 = new_stream();
    thost *h2 = thost_start(COINIT_APARTMENTTHREADED, s2, &IID_IUnknown, &o->IUnknown_iface,
                            MSHLFLAGS_TABLEWEAK);
    IUnknown_Release(&o->IUnknown_iface);
    ra.s = s2;
    thost_run(h2, release_data_on_host, &ra);
    assert_hr(ra.hr, S_OK);
    assert_true(atomic_load(&freed));
    tstream_rewind(s2);
    assert_hr(ShmCoUnmarshalInterface(s2, &IID_IUnknown, (void **)&p2), CO_E_OBJNOTREG);
    IStream_Release(s);
    IStream_Release(s2);
    thost_stop(h, false);
    thost_stop(h2, false);
}

static void tablestrong_twice(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface,
                           MSHLFLAGS_TABLESTRONG);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p1 = NULL, *p2 = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p1), S_OK);
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p2), S_OK);
    IUnknown_Release(p1);
    IUnknown_Release(p2);
    assert_false(atomic_load(&freed)); /* strong: the record keeps it */
    rel_arg ra = {s, E_FAIL};
    thost_run(h, release_data_on_host, &ra);
    assert_hr(ra.hr, S_OK);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    thost_stop(h, false);
}

static void release_data_from_other_apartment(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    tstream_rewind(s);
    /* released here, the object is released in its own apartment */
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    assert_true(atomic_load(&freed));
    void *p = (void *)1;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &p), CO_E_OBJNOTCONNECTED);
    assert_null(p);
    IStream_Release(s);
    thost_stop(h, false);
}

/* An object another apartment exported, marshaled again here (from its
 * raw pointer): the record names the apartment that owns its stub
 * manager, so it unmarshals (to a proxy into that apartment) and its
 * reference comes back. */
static void remarshal_from_other_apartment(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream(), *s2 = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    assert_hr(thost_marshal_hr(h), S_OK);
    assert_hr(ShmCoMarshalInterface(s2, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    IUnknown_Release(&o->IUnknown_iface); /* the records hold it now */
    IUnknown *p = NULL;
    tstream_rewind(s2);
    assert_hr(ShmCoUnmarshalInterface(s2, &IID_IUnknown, (void **)&p), S_OK);
    assert_ptr_not_equal(p, &o->IUnknown_iface); /* a proxy into the host's apartment */
    assert_int_equal(IUnknown_Release(p), 0);
    assert_false(atomic_load(&freed)); /* the host's record still holds it */
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    IStream_Release(s2);
    thost_stop(h, false);
}

static void stub_apartment_shutdown(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, &IID_ITestNoPS);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p), S_OK);
    thost_stop(h, false); /* the object's apartment ends */
    assert_true(atomic_load(&freed));
    /* the proxy is disconnected; releasing it still works */
    void *none = (void *)1;
    HRESULT hr = IUnknown_QueryInterface(p, &IID_ITestNobody, &none);
    assert_true(hr == RPC_E_DISCONNECTED || hr == E_NOINTERFACE);
    assert_null(none);
    assert_int_equal(IUnknown_Release(p), 0);
    IStream_Release(s);
}

typedef struct client_arg {
    IStream *s;
    _Atomic int *freed;
    HRESULT unmarshal_hr, qi_after_hr;
    bool freed_after_uninit;
    ULONG release_result;
} client_arg;

static void client_shutdown_thread(void *arg)
{
    client_arg *a = arg;
    IUnknown *p = NULL;
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    a->unmarshal_hr = ShmCoUnmarshalInterface(a->s, &IID_IUnknown, (void **)&p);
    if (FAILED(a->unmarshal_hr)) {
        ShmCoUninitialize();
        return;
    }
    ShmCoUninitialize(); /* gives the references back */
    a->freed_after_uninit = atomic_load(a->freed);
    /* the proxy is dead for calls but can be released */
    void *none = (void *)1;
    a->qi_after_hr = IUnknown_QueryInterface(p, &IID_ITestNoPS, &none);
    if (none)
        a->qi_after_hr = E_UNEXPECTED;
    a->release_result = IUnknown_Release(p);
}

static void proxy_apartment_shutdown(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, &IID_ITestNoPS);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    client_arg a = {s, &freed, E_FAIL, E_FAIL, false, 99};
    tstream_rewind(s);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, client_shutdown_thread, &a), S_OK);
    shmc_plat_thread_join(&t);
    assert_hr(a.unmarshal_hr, S_OK);
    assert_true(a.freed_after_uninit); /* released at the client's uninitialize */
    assert_hr(a.qi_after_hr, CO_E_OBJNOTCONNECTED);
    assert_int_equal(a.release_result, 0);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    thost_stop(h, false);
}

typedef struct exit_arg {
    IStream *s;
    IUnknown *proxy;
} exit_arg;

static void client_exits_without_uninit(void *arg)
{
    exit_arg *a = arg;
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    tstream_rewind(a->s);
    ShmCoUnmarshalInterface(a->s, &IID_IUnknown, (void **)&a->proxy);
    /* exits holding the proxy, apartment still joined */
}

static void no_uninitialize_client(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    shmc_plat_thread t;
    exit_arg ea = {s, NULL};
    assert_hr(shmc_plat_thread_create(&t, client_exits_without_uninit, &ea), S_OK);
    shmc_plat_thread_join(&t);
    assert_non_null(ea.proxy);
    assert_true(atomic_load(&freed)); /* cleaned up at thread exit */
    /* the dead apartment's proxy can still be released, from anywhere */
    assert_int_equal(IUnknown_Release(ea.proxy), 0);

    IStream_Release(s);
    thost_stop(h, false);
}

static void no_uninitialize_server(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_MULTITHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    IUnknown *p = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p), S_OK);
    thost_stop(h, true); /* the MTA's only member exits without uninitializing */
    assert_true(atomic_load(&freed));
    assert_int_equal(IUnknown_Release(p), 0);
    IStream_Release(s);
}

/* Waits up to ms for an apartment's wait handle to become ready. */
static bool wait_handle_ready(intptr_t handle, uint32_t ms)
{
#ifdef _WIN32
    return WaitForSingleObject((HANDLE)handle, ms) == WAIT_OBJECT_0;
#else
    struct pollfd p = {.fd = (int)handle, .events = POLLIN};
    return poll(&p, 1, (int)ms) == 1;
#endif
}

typedef struct sta_server {
    IStream *s;
    callee *obj;
    bool hold_call; /* exit while a call waits for the thread */
    HRESULT marshal_hr;
    uint64_t tid;
    bool call_was_waiting;
    _Atomic int ready, leave, left;
} sta_server;

/* An STA that exports an object, serves it until told to leave, then exits
 * without ShmCoUninitialize, holding the object. */
static void sta_server_main(void *arg)
{
    sta_server *sv = arg;
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    sv->tid = shmc_plat_thread_self_id();
    sv->marshal_hr = ShmCoMarshalInterface(sv->s, &IID_ICallee, (IUnknown *)&sv->obj->ICallee_iface,
                                           MSHCTX_INPROC, NULL, MSHLFLAGS_NORMAL);
    atomic_store(&sv->ready, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&sv->leave) && tsupport_ms_since(t0) < 20000)
        ShmCoProcessCalls(5);
    atomic_store(&sv->left, 1); /* serves no more */
    intptr_t wh;
    if (sv->hold_call && SUCCEEDED(ShmCoGetApartmentWaitHandle(&wh)))
        sv->call_was_waiting = wait_handle_ready(wh, 20000); /* a call arrived: not taken */
}

typedef struct late_call {
    ICallee *proxy;
    HRESULT hr;
} late_call;

static void late_call_main(void *arg)
{
    late_call *l = arg;
    ShmCoSetCallTimeout(tsupport_ms(20000)); /* if the apartment is never cleaned up */
    l->hr = ICallee_Null(l->proxy);          /* in the implicit MTA */
}

/*
 * The STA variant of no_uninitialize_server: the thread that owns an
 * exported object exits without uninitializing. Its apartment ends at the
 * exit, without a hang: the object is released, a call that was waiting for
 * the thread (hold_call, with this thread in the MTA) and later calls
 * through the proxy fail with RPC_E_DISCONNECTED, and the proxy releases.
 */
static void sta_server_exits_initialized(bool hold_call)
{
    register_calltest();
    /* a server that was not cleaned up would never answer: fail, not hang */
    assert_hr(ShmCoSetCallTimeout(tsupport_ms(20000)), S_OK);
    _Atomic int freed;
    IStream *s = new_stream();
    sta_server sv = {s, callee_new(1, &freed), hold_call, E_FAIL, 0, false, 0, 0, 0};
    shmc_plat_thread server, caller;
    assert_hr(shmc_plat_thread_create(&server, sta_server_main, &sv), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&sv.ready) && tsupport_ms_since(t0) < 20000)
        shmc_plat_sleep_ms(1);
    assert_hr(sv.marshal_hr, S_OK);
    ICallee_Release(&sv.obj->ICallee_iface); /* the server's stub keeps it */
    ICallee *p = NULL;
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&p), S_OK);
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(p, &tid), S_OK);
    assert_int_equal((uint64_t)tid, sv.tid);
    atomic_store(&sv.leave, 1);
    late_call lc = {p, E_FAIL};
    if (hold_call) {
        t0 = shmc_plat_clock_ns();
        while (!atomic_load(&sv.left) && tsupport_ms_since(t0) < 20000)
            shmc_plat_sleep_ms(1);
        assert_hr(shmc_plat_thread_create(&caller, late_call_main, &lc), S_OK);
    }
    shmc_plat_thread_join(&server); /* exits, still in its apartment */
    if (hold_call) {
        shmc_plat_thread_join(&caller);
        assert_true(sv.call_was_waiting);
        assert_hr(lc.hr, RPC_E_DISCONNECTED);
    }
    assert_true(atomic_load(&freed)); /* released at the exit */
    assert_hr(ICallee_Null(p), RPC_E_DISCONNECTED);
    assert_hr(ICallee_GetThreadId(p, &tid), RPC_E_DISCONNECTED);
    assert_int_equal(ICallee_Release(p), 0);
    IStream_Release(s);
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
}

static void no_uninitialize_sta_server(void **state)
{
    (void)state;
    sta_server_exits_initialized(false);
}

static void no_uninitialize_sta_server_call_waiting(void **state)
{
    (void)state;
    sta_server_exits_initialized(true);
}

typedef struct wrong_arg {
    IUnknown *proxy;
    HRESULT qi_hr[4]; /* new interface, IUnknown: in no apartment, then in another STA */
    bool outs_null;
} wrong_arg;

static void wrong_thread_main(void *p)
{
    wrong_arg *a = p;
    void *out[4] = {(void *)1, (void *)1, (void *)1, (void *)1};
    /* QueryInterface through a proxy, even for IUnknown (answered without
     * a call), from anywhere but the proxy's apartment: RPC_E_WRONG_THREAD,
     * in no apartment too (Windows NT's proxies, as Wine's marshal tests
     * note in test_proxy_used_in_wrong_thread) */
    a->qi_hr[0] = IUnknown_QueryInterface(a->proxy, &IID_ITestNoPS, &out[0]);
    a->qi_hr[1] = IUnknown_QueryInterface(a->proxy, &IID_IUnknown, &out[1]);
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    a->qi_hr[2] = IUnknown_QueryInterface(a->proxy, &IID_ITestNoPS, &out[2]);
    a->qi_hr[3] = IUnknown_QueryInterface(a->proxy, &IID_IUnknown, &out[3]);
    a->outs_null = !out[0] && !out[1] && !out[2] && !out[3];
    IUnknown_Release(a->proxy); /* releasing from the wrong apartment works */
    ShmCoUninitialize();
}

static void proxy_used_in_wrong_apartment(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, &IID_ITestNoPS);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, s, &IID_IUnknown, &o->IUnknown_iface, 0);
    IUnknown_Release(&o->IUnknown_iface);
    wrong_arg a = {NULL, {E_FAIL, E_FAIL, E_FAIL, E_FAIL}, false};
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&a.proxy), S_OK);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, wrong_thread_main, &a), S_OK);
    shmc_plat_thread_join(&t);
    for (int i = 0; i < 4; i++)
        assert_hr(a.qi_hr[i], RPC_E_WRONG_THREAD);
    assert_true(a.outs_null);
    assert_true(atomic_load(&freed));
    IStream_Release(s);
    thost_stop(h, false);
}

typedef struct mta_wrong {
    ICallee *proxy;
    DWORD joins;               /* the apartment the thread joins */
    HRESULT before, before_qi; /* before it joins (the implicit MTA, if one exists) */
    HRESULT joined, joined_qi; /* once it joined */
    uint64_t tid_before;
} mta_wrong;

static HRESULT qi_callback(ICallee *p)
{
    /* ICallback: registered, implemented, not asked for yet: a round trip */
    void *out = (void *)1;
    HRESULT hr = ICallee_QueryInterface(p, &IID_ICallback, &out);
    if (SUCCEEDED(hr))
        IUnknown_Release((IUnknown *)out);
    else if (out)
        hr = E_UNEXPECTED; /* *ppv must be NULL on failure */
    return hr;
}

static void mta_wrong_main(void *arg)
{
    mta_wrong *w = arg;
    hyper tid = 0;
    w->before = ICallee_GetThreadId(w->proxy, &tid);
    w->tid_before = (uint64_t)tid;
    w->before_qi = qi_callback(w->proxy);
    ShmCoInitializeEx(NULL, w->joins);
    w->joined = ICallee_Null(w->proxy);
    w->joined_qi = qi_callback(w->proxy);
    ShmCoUninitialize();
}

/* A host apartment's object, a proxy to it here, and a thread that uses the
 * proxy before and after it joins `joins`. */
static mta_wrong use_from_other_thread(DWORD host, DWORD joins, uint64_t *host_tid,
                                       _Atomic int *freed, thost **hp, ICallee **pp)
{
    register_calltest();
    callee *obj = callee_new(1, freed);
    IStream *s = new_stream();
    thost *h =
        thost_start(host, s, &IID_ICallee, (IUnknown *)&obj->ICallee_iface, MSHLFLAGS_NORMAL);
    assert_hr(thost_marshal_hr(h), S_OK);
    thost_run(h, record_tid, host_tid);
    ICallee_Release(&obj->ICallee_iface);
    mta_wrong w = {NULL, joins, E_FAIL, E_FAIL, E_FAIL, E_FAIL, 0};
    tstream_rewind(s);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&w.proxy), S_OK);
    assert_ptr_not_equal(w.proxy, &obj->ICallee_iface);
    IStream_Release(s);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, mta_wrong_main, &w), S_OK);
    shmc_plat_thread_join(&t);
    *hp = h;
    *pp = w.proxy;
    return w;
}

/* A proxy unmarshaled in an STA belongs to it: MTA threads, implicit or
 * joined, get RPC_E_WRONG_THREAD, also when the object lives in the MTA. */
static void sta_proxy_used_from_the_mta(void **state)
{
    (void)state;
    static const DWORD hosts[] = {COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED};
    for (int i = 0; i < 2; i++) {
        _Atomic int freed;
        uint64_t host_tid = 0;
        thost *h;
        ICallee *p;
        mta_wrong w =
            use_from_other_thread(hosts[i], COINIT_MULTITHREADED, &host_tid, &freed, &h, &p);
        if (hosts[i] == COINIT_MULTITHREADED) {
            /* the MTA exists: the thread is in it before it joins */
            assert_hr(w.before, RPC_E_WRONG_THREAD);
        } else {
            assert_hr(w.before, CO_E_NOTINITIALIZED); /* in no apartment */
        }
        assert_hr(w.before_qi, RPC_E_WRONG_THREAD);
        assert_hr(w.joined, RPC_E_WRONG_THREAD);
        assert_hr(w.joined_qi, RPC_E_WRONG_THREAD);
        /* from its own apartment it works */
        assert_hr(ICallee_Null(p), S_OK);
        assert_hr(qi_callback(p), S_OK);
        assert_int_equal(ICallee_Release(p), 0);
        assert_true(atomic_load(&freed));
        thost_stop(h, false);
    }
}

/* A proxy unmarshaled in the MTA belongs to the MTA: any MTA thread may use
 * it (an implicit member too), an STA thread gets RPC_E_WRONG_THREAD. */
static void mta_proxy_used_from_an_sta(void **state)
{
    (void)state;
    _Atomic int freed;
    uint64_t host_tid = 0;
    thost *h;
    ICallee *p;
    mta_wrong w = use_from_other_thread(COINIT_APARTMENTTHREADED, COINIT_APARTMENTTHREADED,
                                        &host_tid, &freed, &h, &p);
    assert_hr(w.before, S_OK); /* the implicit MTA */
    assert_int_equal(w.tid_before, host_tid);
    assert_hr(w.before_qi, S_OK);
    assert_hr(w.joined, RPC_E_WRONG_THREAD);
    assert_hr(w.joined_qi, RPC_E_WRONG_THREAD);
    assert_hr(ICallee_Null(p), S_OK);
    assert_int_equal(ICallee_Release(p), 0);
    assert_true(atomic_load(&freed));
    thost_stop(h, false);
}

static void interthread_stream_pair(void **state)
{
    (void)state;
    _Atomic int freed;
    tobj *o = tobj_new(&freed, NULL);
    IStream *s = NULL;
    IUnknown *p = NULL;
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &s),
              S_OK);
    assert_non_null(s);
    assert_hr(ShmCoGetInterfaceAndReleaseStream(s, &IID_IUnknown, (void **)&p), S_OK);
    assert_ptr_equal(p, &o->IUnknown_iface); /* same apartment */
    IUnknown_Release(p);
    assert_int_equal(tobj_refs(o), 1);
    /* errors */
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, NULL),
              E_INVALIDARG);
    s = (IStream *)1;
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, NULL, &s), E_INVALIDARG);
    assert_null(s);
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_ITestNobody, &o->IUnknown_iface, &s),
              E_NOINTERFACE);
    assert_null(s);
    assert_hr(ShmCoGetInterfaceAndReleaseStream(NULL, &IID_IUnknown, (void **)&p), E_INVALIDARG);
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &s),
              S_OK);
    assert_hr(ShmCoGetInterfaceAndReleaseStream(s, &IID_IUnknown, NULL), E_INVALIDARG);
    /* that released the stream (as COM does) but not the record:
     * disconnect cleans it */

    assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), S_OK);
    assert_int_equal(tobj_refs(o), 1);
    IUnknown_Release(&o->IUnknown_iface);
    assert_true(atomic_load(&freed));
}

/* Every allocation of marshal and unmarshal fails in turn: a clean error,
 * nothing leaked (ASan), the object's references back where they were. */
static void allocation_failures(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, NULL, NULL, NULL, 0);
    for (unsigned long n = 1;; n++) {
        ULARGE_INTEGER zero;
        zero.QuadPart = 0;
        assert_hr(IStream_SetSize(s, zero), S_OK);
        tstream_rewind(s);
        shmc_alloc_fail_at(n);
        HRESULT hr = ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC,
                                           NULL, MSHLFLAGS_NORMAL);
        shmc_alloc_fail_reset();
        if (FAILED(hr)) {
            assert_true(hr == E_OUTOFMEMORY || hr == STG_E_MEDIUMFULL);
            assert_int_equal(tobj_refs(o), 1);
            continue;
        }
        /* marshal made it; now fail the unmarshal's n-th allocation */
        tstream_rewind(s);
        IUnknown *p = NULL;
        shmc_alloc_fail_at(n);
        hr = ShmCoUnmarshalInterface(s, &IID_IUnknown, (void **)&p);
        shmc_alloc_fail_reset();
        if (SUCCEEDED(hr))
            IUnknown_Release(p);
        else
            assert_null(p);
        assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), S_OK);
        assert_int_equal(tobj_refs(o), 1);
        if (n > 64)
            break; /* past every allocation of both */
    }
    IStream_Release(s);
    thost_stop(h, false);
    IUnknown_Release(&o->IUnknown_iface);
}

/* ---- every allocation fails in turn ------------------------------------------ */

/* What an operation may answer when an allocation failed under it. */
static void assert_out_of_memory(HRESULT hr, unsigned long n)
{
    if (hr != E_OUTOFMEMORY && hr != STG_E_MEDIUMFULL && hr != STG_E_INSUFFICIENTMEMORY)
        fail_msg("allocation %lu failed: 0x%08x", n, (unsigned)hr);
}

static void empty_stream(IStream *s)
{
    ULARGE_INTEGER zero;
    zero.QuadPart = 0;
    assert_hr(IStream_SetSize(s, zero), S_OK);
    tstream_rewind(s);
}

typedef struct unmarshal_job {
    IStream *stream;
    IUnknown *got;
    HRESULT hr;
    bool pair; /* ShmCoGetInterfaceAndReleaseStream */
    unsigned long hits;
    unsigned long fail_at; /* 0: no hook */
} unmarshal_job;

/* On the host's thread (another apartment): unmarshal, a proxy. */
static void unmarshal_there(void *arg)
{
    unmarshal_job *j = arg;
    j->got = NULL;
    if (j->fail_at)
        shmc_alloc_fail_at(j->fail_at);
    j->hr = j->pair ? ShmCoGetInterfaceAndReleaseStream(j->stream, &IID_IUnknown, (void **)&j->got)
                    : ShmCoUnmarshalInterface(j->stream, &IID_IUnknown, (void **)&j->got);
    j->hits = shmc_alloc_fail_hits();
    shmc_alloc_fail_reset();
}

static void release_there(void *arg)
{
    unmarshal_job *j = arg;
    if (j->got)
        IUnknown_Release(j->got);
    j->got = NULL;
}

/*
 * Every allocation of marshaling, unmarshaling (a proxy in another
 * apartment) and releasing a record, and of the one-shot pair, fails in
 * turn, n = 1, 2, ... until the operation no longer reaches the n-th: each
 * failure is a clean E_OUTOFMEMORY with the object's references back where
 * they were (nothing left to disconnect), nothing leaks (LeakSanitizer in
 * the asan build), and the next operation works. MSHCTX_INPROC and
 * MSHCTX_LOCAL (its first use makes the process's endpoint: a region and a
 * listener thread, whose allocations fail here too).
 */
static void every_allocation_fails_in_turn(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = new_stream();
    thost *h = thost_start(COINIT_APARTMENTTHREADED, NULL, NULL, NULL, 0);
    static const DWORD ctxs[] = {MSHCTX_LOCAL, MSHCTX_INPROC};
    for (unsigned c = 0; c < 2; c++) {
        /* marshal */
        unsigned long sites = 0;
        for (unsigned long n = 1;; n++) {
            empty_stream(s);
            shmc_alloc_fail_at(n);
            HRESULT hr = ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, ctxs[c], NULL,
                                               MSHLFLAGS_NORMAL);
            unsigned long hits = shmc_alloc_fail_hits();
            shmc_alloc_fail_reset();
            if (FAILED(hr)) {
                assert_out_of_memory(hr, n);
                assert_true(hits > 0);
                assert_int_equal(tobj_refs(o), 1);
                sites++;
                continue;
            }
            tstream_rewind(s);
            assert_hr(ShmCoReleaseMarshalData(s), S_OK);
            assert_int_equal(tobj_refs(o), 1);
            if (!hits)
                break; /* past the last allocation */
        }
        assert_true(sites > 0);

        /* unmarshal in another apartment: a proxy */
        sites = 0;
        for (unsigned long n = 1;; n++) {
            empty_stream(s);
            assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, ctxs[c], NULL,
                                            MSHLFLAGS_NORMAL),
                      S_OK);
            tstream_rewind(s);
            unmarshal_job j = {s, NULL, E_FAIL, false, 0, n};
            thost_run(h, unmarshal_there, &j);
            if (FAILED(j.hr)) {
                assert_out_of_memory(j.hr, n);
                assert_null(j.got);
                sites++;
            } else {
                assert_non_null(j.got);
                thost_run(h, release_there, &j);
            }
            /* either way the record is spent and its reference gone */
            assert_int_equal(tobj_refs(o), 1);
            if (!j.hits)
                break;
        }
        assert_true(sites > 0);

        /* release unread: needs no allocation at all */
        empty_stream(s);
        assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, ctxs[c], NULL,
                                        MSHLFLAGS_NORMAL),
                  S_OK);
        tstream_rewind(s);
        shmc_alloc_fail_at(1);
        assert_hr(ShmCoReleaseMarshalData(s), S_OK);
        assert_int_equal(shmc_alloc_fail_hits(), 0);
        shmc_alloc_fail_reset();
        assert_int_equal(tobj_refs(o), 1);
    }

    /* the one-shot pair, each half in turn */
    unsigned long sites = 0, sites2 = 0;
    for (unsigned long n = 1;; n++) {
        IStream *pair = NULL;
        shmc_alloc_fail_at(n);
        HRESULT hr =
            ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &pair);
        unsigned long hits = shmc_alloc_fail_hits();
        shmc_alloc_fail_reset();
        if (FAILED(hr)) {
            assert_out_of_memory(hr, n);
            assert_null(pair);
            assert_int_equal(tobj_refs(o), 1);
            sites++;
            continue;
        }
        unmarshal_job j = {pair, NULL, E_FAIL, true, 0, 0};
        thost_run(h, unmarshal_there, &j);
        assert_hr(j.hr, S_OK);
        thost_run(h, release_there, &j);
        assert_int_equal(tobj_refs(o), 1);
        if (!hits)
            break;
    }
    for (unsigned long n = 1;; n++) {
        IStream *pair = NULL;
        assert_hr(
            ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &pair),
            S_OK);
        unmarshal_job j = {pair, NULL, E_FAIL, true, 0, n};
        thost_run(h, unmarshal_there, &j); /* releases the stream, whatever happens */
        if (FAILED(j.hr)) {
            assert_out_of_memory(j.hr, n);
            assert_null(j.got);
            sites2++;
        } else {
            thost_run(h, release_there, &j);
        }
        assert_int_equal(tobj_refs(o), 1);
        if (!j.hits)
            break;
    }
    assert_true(sites > 0 && sites2 > 0);

    /* and everything still works */
    empty_stream(s);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL,
                                    MSHLFLAGS_NORMAL),
              S_OK);
    tstream_rewind(s);
    unmarshal_job j = {s, NULL, E_FAIL, false, 0, 0};
    thost_run(h, unmarshal_there, &j);
    assert_hr(j.hr, S_OK);
    thost_run(h, release_there, &j);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    thost_stop(h, false);
    assert_int_equal(IUnknown_Release(&o->IUnknown_iface), 0);
}

/* ---- object references are unguessable -------------------------------------- */

enum { NREFS = 1000 };

/* Bit b of a little-endian byte string. */
static unsigned bit_of(const uint8_t *p, unsigned b)
{
    return (p[b / 8] >> (b % 8)) & 1u;
}

/*
 * The ids of `nbits` bits of n records, kept per bit position: cols[b] is
 * a bitset over the records (record r at bit r of it).
 */
typedef struct bitcols {
    uint64_t cols[128][(NREFS + 63) / 64];
} bitcols;

static void bitcols_fill(bitcols *bc, uint8_t (*ids)[16], unsigned nbits)
{
    memset(bc, 0, sizeof(*bc));
    for (unsigned r = 0; r < NREFS; r++)
        for (unsigned b = 0; b < nbits; b++)
            bc->cols[b][r / 64] |= (uint64_t)bit_of(ids[r], b) << (r % 64);
}

static unsigned popcount64(uint64_t v)
{
    unsigned n = 0;
    for (; v; v &= v - 1)
        n++;
    return n;
}

/* Records (of 1000) that have bit b set, or (other >= 0) on which bits b
 * and `other` agree. */
static unsigned bitcols_count(const bitcols *bc, unsigned b, int other)
{
    unsigned n = 0;
    for (unsigned w = 0; w < (NREFS + 63) / 64; w++) {
        uint64_t v = other < 0 ? bc->cols[b][w] : ~(bc->cols[b][w] ^ bc->cols[other][w]);
        if (w == NREFS / 64)
            v &= (1ull << (NREFS % 64)) - 1; /* (the last word's unused bits) */
        n += popcount64(v);
    }
    return n;
}

/* The fraction of 1000 records is within 0.35..0.65. */
static bool balanced(unsigned count)
{
    return count >= 350 && count <= 650;
}

/*
 * 128 random bits per interface reference (issue 6, Security): the IPIDs
 * of 1000 objects marshaled with MSHCTX_LOCAL, and the nonces and object
 * ids of their records, decoded from the records themselves (objref.h).
 * All distinct; and checks that a counter, or a generator with fewer
 * random bits spread over the 128, fails, but that random bits pass
 * except with a probability nobody will see:
 *   - each of the 128 IPID bits (and the 64 of each nonce and object id)
 *     is set in 35%..65% of the 1000 records. For independent fair bits
 *     the count is Binomial(1000, 1/2), outside 350..650 with probability
 *     8.6e-22 (exact sum; Hoeffding's bound: 2 exp(-2 * 1000 * 0.15^2) =
 *     5.7e-20), so 2.2e-19 for all 256 positions;
 *   - every two IPID bit positions agree in 35%..65% of the records (a
 *     generator whose 32 random bits are repeated, or spread by a fixed
 *     function, fails here): each pair is that binomial again, 8128 pairs,
 *     7.0e-18;
 *   - consecutive IPIDs differ in at least 20 of their 128 bits: the
 *     distance of two random ones is Binomial(128, 1/2), under 20 with
 *     probability 7.8e-17; 999 pairs, 7.8e-14.
 * Together below 1e-13 for a real generator. A counter fails all three
 * (its high bits never change; consecutive values differ in a bit or two).
 */
static void references_are_unguessable(void **state)
{
    (void)state;
    static uint8_t ipids[NREFS][16], nonces[NREFS][16], oids[NREFS][16];
    static bitcols bc;
    tobj *objs[NREFS];
    IStream *s = new_stream();
    for (unsigned i = 0; i < NREFS; i++) {
        objs[i] = tobj_new(NULL, NULL);
        assert_non_null(objs[i]);
        assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &objs[i]->IUnknown_iface, MSHCTX_LOCAL,
                                        NULL, MSHLFLAGS_NORMAL),
                  S_OK);
    }
    assert_int_equal(tsupport_stream_size(s), (uint64_t)NREFS * SHMC_OBJREF_MAX_SIZE);
    tstream_rewind(s);
    for (unsigned i = 0; i < NREFS; i++) {
        unsigned char raw[SHMC_OBJREF_MAX_SIZE];
        ULONG got = 0;
        assert_hr(IStream_Read(s, raw, sizeof(raw), &got), S_OK);
        assert_int_equal(got, sizeof(raw));
        shmc_objref rec;
        assert_hr(shmc_objref_decode(raw, got, &rec), S_OK);
        assert_int_equal(rec.mshctx, MSHCTX_LOCAL);
        memcpy(ipids[i], rec.ipid, 16);
        memset(nonces[i], 0, 16);
        memset(oids[i], 0, 16);
        for (unsigned k = 0; k < 8; k++) {
            nonces[i][k] = (uint8_t)(rec.nonce >> (8 * k));
            oids[i][k] = (uint8_t)(rec.oid >> (8 * k));
        }
    }
    /* distinct (a pair in 1000 random 64-bit values: 2.7e-14) */
    for (unsigned i = 0; i < NREFS; i++)
        for (unsigned j = 0; j < i; j++) {
            if (!memcmp(ipids[i], ipids[j], 16))
                fail_msg("records %u and %u have one IPID", j, i);
            if (!memcmp(nonces[i], nonces[j], 8))
                fail_msg("records %u and %u have one nonce", j, i);
            if (!memcmp(oids[i], oids[j], 8))
                fail_msg("objects %u and %u have one object id", j, i);
        }
    /* every bit position about half set */
    static const struct {
        const char *what;
        uint8_t (*ids)[16];
        unsigned bits;
    } sets[] = {{"IPID", ipids, 128}, {"nonce", nonces, 64}, {"object id", oids, 64}};
    for (unsigned k = 0; k < 3; k++) {
        bitcols_fill(&bc, sets[k].ids, sets[k].bits);
        for (unsigned b = 0; b < sets[k].bits; b++) {
            unsigned n = bitcols_count(&bc, b, -1);
            if (!balanced(n))
                fail_msg("%s bit %u is set in %u of %u records", sets[k].what, b, n, NREFS);
        }
    }
    /* IPID bits independent of each other, pair by pair */
    bitcols_fill(&bc, ipids, 128);
    for (unsigned b = 0; b < 128; b++)
        for (unsigned o = 0; o < b; o++) {
            unsigned n = bitcols_count(&bc, b, (int)o);
            if (!balanced(n))
                fail_msg("IPID bits %u and %u agree in %u of %u records", o, b, n, NREFS);
        }
    /* and far apart from one to the next */
    for (unsigned i = 1; i < NREFS; i++) {
        unsigned d = 0;
        for (unsigned k = 0; k < 16; k++)
            d += popcount64(ipids[i][k] ^ ipids[i - 1][k]);
        if (d < 20)
            fail_msg("IPIDs %u and %u differ in %u bits", i - 1, i, d);
    }
    tstream_rewind(s);
    for (unsigned i = 0; i < NREFS; i++) {
        assert_hr(ShmCoReleaseMarshalData(s), S_OK);
        assert_int_equal(tobj_refs(objs[i]), 1);
        assert_int_equal(IUnknown_Release(&objs[i]->IUnknown_iface), 0);
    }
    IStream_Release(s);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(normal_marshal_and_release, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(normal_marshal_and_unmarshal_same_apartment, setup_sta,
                                        teardown),
        cmocka_unit_test_setup_teardown(failed_unmarshal_consumes_the_record, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(marshal_errors, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(records_back_to_back, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(record_positions_same_apartment, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(record_positions_other_apartment, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(record_positions_other_apartment, setup_mta, teardown),
        cmocka_unit_test_setup_teardown(marshal_size_max_bounds_records, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(garbage_is_rejected, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(disconnect_object, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(interthread_normal, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(interthread_normal, setup_mta, teardown),
        cmocka_unit_test_setup_teardown(normal_unmarshal_twice_between_apartments, setup_sta,
                                        teardown),
        cmocka_unit_test_setup_teardown(normal_unmarshal_twice_between_apartments, setup_mta,
                                        teardown),
        cmocka_unit_test_setup_teardown(proxy_marshal_and_unmarshal, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(remarshaled_proxy_names_the_object_sta, setup_sta,
                                        teardown),
        cmocka_unit_test_setup_teardown(remarshaled_proxy_names_the_object_mta, setup_mta,
                                        teardown),
        cmocka_unit_test_setup_teardown(proxy_marshal_tableweak, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(tableweak_twice, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(tableweak_release_data, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(tablestrong_twice, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(release_data_from_other_apartment, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(remarshal_from_other_apartment, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(stub_apartment_shutdown, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(proxy_apartment_shutdown, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(no_uninitialize_client, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(no_uninitialize_server, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(no_uninitialize_sta_server, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(no_uninitialize_sta_server, setup_mta, teardown),
        cmocka_unit_test_setup_teardown(no_uninitialize_sta_server_call_waiting, setup_mta,
                                        teardown),
        cmocka_unit_test_setup_teardown(proxy_used_in_wrong_apartment, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(sta_proxy_used_from_the_mta, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(mta_proxy_used_from_an_sta, setup_mta, teardown),

        cmocka_unit_test_setup_teardown(interthread_stream_pair, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(every_allocation_fails_in_turn, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(references_are_unguessable, setup_sta, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
