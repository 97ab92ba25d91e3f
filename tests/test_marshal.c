/*
 * test_marshal.c - the standard marshaler's reference semantics between
 * apartments of one process, as COM defines them (Wine's
 * dlls/ole32/tests/marshal.c, checked against Windows, pins them down; these
 * tests are our own, written for the behaviours that apply to shmcom).
 * The objects count their references, and every scenario checks them, so a
 * leak or a double release shows where it happens.
 */
#define COBJMACROS
#include "alloc.h"
#include "tobj.h"

#include <string.h>

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
        cmocka_unit_test_setup_teardown(garbage_is_rejected, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(disconnect_object, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(interthread_normal, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(interthread_normal, setup_mta, teardown),
        cmocka_unit_test_setup_teardown(proxy_marshal_and_unmarshal, setup_sta, teardown),
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
        cmocka_unit_test_setup_teardown(proxy_used_in_wrong_apartment, setup_sta, teardown),

        cmocka_unit_test_setup_teardown(interthread_stream_pair, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(allocation_failures, setup_sta, teardown),
        cmocka_unit_test_setup_teardown(every_allocation_fails_in_turn, setup_sta, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
