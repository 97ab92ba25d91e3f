/*
 * test_stream_ole32.c - Windows build only: shmcom's streams are real
 * IStreams to the system's COM. ole32's CoMarshalInterface writes a
 * marshaled interface into a shmcom stream (heap and shared-memory), and
 * CoUnmarshalInterface and CoReleaseMarshalData read it back: in the same
 * apartment (the original pointer comes back), from another apartment
 * through a stream opened by name (a proxy, whose calls reach the object).
 * (Calls go through IClassFactory::CreateInstance: Wine's proxy does not
 * forward LockServer.)
 * A test object counts its references and server locks, checked after
 * every scenario (as Wine's dlls/ole32/tests/marshal.c does), so that a
 * reference leaked or dropped through our stream shows where it happens.
 * And data moves between a shmcom stream and CreateStreamOnHGlobal's with
 * CopyTo, both ways.
 */
#define COBJMACROS
#include "shstream.h"

#include "tsupport.h"

#include <string.h>
#include <windows.h>

/* ---- a class factory that counts ----------------------------------------- */

typedef struct test_factory {
    IClassFactory IClassFactory_iface;
    LONG refs;
    LONG locks;
    LONG creates; /* CreateInstance calls that reached the object */
} test_factory;

static test_factory *impl_from_IClassFactory(IClassFactory *iface)
{
    return CONTAINING_RECORD(iface, test_factory, IClassFactory_iface);
}

static HRESULT STDMETHODCALLTYPE tf_QueryInterface(IClassFactory *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IClassFactory)) {
        *ppv = iface;
        IClassFactory_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL; /* IMarshal, IExternalConnection, ...: standard marshaling */
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE tf_AddRef(IClassFactory *iface)
{
    return (ULONG)InterlockedIncrement(&impl_from_IClassFactory(iface)->refs);
}

static ULONG STDMETHODCALLTYPE tf_Release(IClassFactory *iface)
{
    return (ULONG)InterlockedDecrement(&impl_from_IClassFactory(iface)->refs);
}

/* Answers with an error of its own, so that a caller can tell that the
 * call reached the object (and was not refused by a proxy). */
static HRESULT STDMETHODCALLTYPE tf_CreateInstance(IClassFactory *iface, IUnknown *outer,
                                                   REFIID riid, void **ppv)
{
    (void)outer;
    (void)riid;
    InterlockedIncrement(&impl_from_IClassFactory(iface)->creates);
    *ppv = NULL;
    return CLASS_E_CLASSNOTAVAILABLE;
}

static HRESULT STDMETHODCALLTYPE tf_LockServer(IClassFactory *iface, BOOL lock)
{
    InterlockedAdd(&impl_from_IClassFactory(iface)->locks, lock ? 1 : -1);
    return S_OK;
}

static const IClassFactoryVtbl tf_vtbl = {
    tf_QueryInterface, tf_AddRef, tf_Release, tf_CreateInstance, tf_LockServer,
};

static void tf_init(test_factory *f)
{
    f->IClassFactory_iface.lpVtbl = &tf_vtbl;
    f->refs = 1; /* the test's own */
    f->locks = 0;
    f->creates = 0;
}

/* ---- helpers ---------------------------------------------------------------- */

typedef HRESULT (*make_fn)(IStream **out, char *name, size_t size);

static HRESULT make_heap(IStream **out, char *name, size_t size)
{
    (void)size;
    name[0] = '\0';
    return shmc_stream_create_heap(0, out);
}

static HRESULT make_shared(IStream **out, char *name, size_t size)
{
    tsupport_name(name, size, "ole32");
    return ShmCreateStreamOnSharedMemory(name, 64 << 10, 0, out);
}

static const make_fn makers[] = {make_heap, make_shared};

static int setup_mta(void **state)
{
    (void)state;
    return FAILED(CoInitializeEx(NULL, COINIT_MULTITHREADED)) ? -1 : 0;
}

static int teardown_mta(void **state)
{
    (void)state;
    CoUninitialize();
    return 0;
}

/* ---- same apartment ---------------------------------------------------------- */

/* Marshal into our stream, rewind, unmarshal: the original pointer back,
 * and with both released every reference is accounted for. */
static void marshal_unmarshal_same_apartment(void **state)
{
    (void)state;
    static const DWORD contexts[] = {MSHCTX_INPROC, MSHCTX_LOCAL};
    for (size_t m = 0; m < 2; m++) {
        for (size_t c = 0; c < 2; c++) {
            test_factory f;
            IStream *s = NULL;
            IClassFactory *back = NULL;
            char name[64];
            ULONG max = 0;
            tf_init(&f);
            assert_hr(makers[m](&s, name, sizeof(name)), S_OK);
            IUnknown *unk = (IUnknown *)&f.IClassFactory_iface;
            assert_hr(CoGetMarshalSizeMax(&max, &IID_IClassFactory, unk, contexts[c], NULL,
                                          MSHLFLAGS_NORMAL),
                      S_OK);
            assert_hr(
                CoMarshalInterface(s, &IID_IClassFactory, unk, contexts[c], NULL, MSHLFLAGS_NORMAL),
                S_OK);
            uint64_t written = tsupport_stream_size(s);
            assert_true(written > 0 && written <= max);
            assert_true(f.refs > 1); /* the stub holds the object */
            tsupport_stream_seek(s, 0);
            assert_hr(CoUnmarshalInterface(s, &IID_IClassFactory, (void **)&back), S_OK);
            assert_ptr_equal(back, &f.IClassFactory_iface); /* same apartment */
            assert_int_equal(tsupport_stream_size(s), written);
            assert_hr(IClassFactory_LockServer(back, TRUE), S_OK);
            assert_int_equal(f.locks, 1);
            IClassFactory_LockServer(back, FALSE);
            IClassFactory_Release(back);
            assert_int_equal(f.refs, 1); /* the marshal's references are gone */
            assert_int_equal(IStream_Release(s), 0);
        }
    }
}

/* Marshal, then release the data unread: the object's references return. */
static void release_marshal_data(void **state)
{
    (void)state;
    for (size_t m = 0; m < 2; m++) {
        test_factory f;
        IStream *s = NULL;
        char name[64];
        tf_init(&f);
        assert_hr(makers[m](&s, name, sizeof(name)), S_OK);
        IUnknown *unk = (IUnknown *)&f.IClassFactory_iface;
        assert_hr(
            CoMarshalInterface(s, &IID_IClassFactory, unk, MSHCTX_INPROC, NULL, MSHLFLAGS_NORMAL),
            S_OK);
        assert_true(f.refs > 1);
        tsupport_stream_seek(s, 0);
        assert_hr(CoReleaseMarshalData(s), S_OK);
        assert_int_equal(f.refs, 1);
        /* a table-strong marshal survives unmarshals until released */
        tsupport_stream_seek(s, 0);
        assert_hr(IStream_SetSize(s, (ULARGE_INTEGER){.QuadPart = 0}), S_OK);
        assert_hr(CoMarshalInterface(s, &IID_IClassFactory, unk, MSHCTX_INPROC, NULL,
                                     MSHLFLAGS_TABLESTRONG),
                  S_OK);
        for (int i = 0; i < 2; i++) {
            IClassFactory *back = NULL;
            tsupport_stream_seek(s, 0);
            assert_hr(CoUnmarshalInterface(s, &IID_IClassFactory, (void **)&back), S_OK);
            assert_ptr_equal(back, &f.IClassFactory_iface);
            IClassFactory_Release(back);
            assert_true(f.refs > 1); /* the table still holds it */
        }
        tsupport_stream_seek(s, 0);
        assert_hr(CoReleaseMarshalData(s), S_OK);
        assert_int_equal(f.refs, 1);
        assert_int_equal(IStream_Release(s), 0);
    }
}

/* ---- another apartment ------------------------------------------------------ */

typedef struct sta_args {
    const char *name; /* the shared stream to open, or NULL: use `stream` */
    IStream *stream;
    IClassFactory *original;
    HRESULT hr_init, hr_open, hr_unmarshal, hr_call;
    bool got_proxy;
} sta_args;

/* An STA thread: opens the stream (by name when it is a shared one),
 * unmarshals, and calls through what it got. */
static void sta_thread(void *arg)
{
    sta_args *a = arg;
    IStream *s = a->stream;
    IClassFactory *cf = NULL;
    a->hr_init = CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(a->hr_init))
        return;
    a->hr_open = S_OK;
    if (a->name)
        a->hr_open = ShmOpenStreamOnSharedMemory(a->name, 0, &s);
    else
        IStream_AddRef(s);
    if (SUCCEEDED(a->hr_open)) {
        a->hr_unmarshal = CoUnmarshalInterface(s, &IID_IClassFactory, (void **)&cf);
        if (SUCCEEDED(a->hr_unmarshal)) {
            IUnknown *unk = NULL;
            a->got_proxy = cf != a->original;
            a->hr_call = IClassFactory_CreateInstance(cf, NULL, &IID_IUnknown, (void **)&unk);
            IClassFactory_CreateInstance(cf, NULL, &IID_IUnknown, (void **)&unk);
            IClassFactory_Release(cf);
        }
        IStream_Release(s);
    }
    CoUninitialize();
}

static void unmarshal_in_another_apartment(void **state)
{
    (void)state;
    for (size_t m = 0; m < 2; m++) {
        test_factory f;
        IStream *s = NULL;
        char name[64];
        shmc_plat_thread t;
        tf_init(&f);
        assert_hr(makers[m](&s, name, sizeof(name)), S_OK);
        IUnknown *unk = (IUnknown *)&f.IClassFactory_iface;
        assert_hr(
            CoMarshalInterface(s, &IID_IClassFactory, unk, MSHCTX_INPROC, NULL, MSHLFLAGS_NORMAL),
            S_OK);
        /* the heap stream is handed over; the shared one opened by name,
         * with its own seek pointer at 0 */
        sta_args a = {name[0] ? name : NULL,
                      s,
                      &f.IClassFactory_iface,
                      E_FAIL,
                      E_FAIL,
                      E_FAIL,
                      E_FAIL,
                      false};
        if (!name[0])
            tsupport_stream_seek(s, 0);
        assert_hr(shmc_plat_thread_create(&t, sta_thread, &a), S_OK);
        shmc_plat_thread_join(&t);
        assert_hr(a.hr_init, S_OK);
        assert_hr(a.hr_open, S_OK);
        assert_hr(a.hr_unmarshal, S_OK);
        assert_true(a.got_proxy); /* another apartment: a proxy, not the object */
        assert_hr(a.hr_call, CLASS_E_CLASSNOTAVAILABLE); /* the object's answer */
        assert_int_equal(f.creates, 2);                  /* both calls reached it */
        /* the proxy went with its apartment: the references returned */
        assert_int_equal(f.refs, 1);
        assert_int_equal(IStream_Release(s), 0);
    }
}

/* ---- data between our stream and COM's ---------------------------------------- */

static void copy_to_and_from_hglobal(void **state)
{
    (void)state;
    for (size_t m = 0; m < 2; m++) {
        IStream *ours = NULL, *com = NULL;
        char name[64], buf[64] = {0};
        ULARGE_INTEGER cb, r, w;
        ULONG n;
        assert_hr(makers[m](&ours, name, sizeof(name)), S_OK);
        assert_hr(CreateStreamOnHGlobal(NULL, TRUE, &com), S_OK);
        assert_hr(IStream_Write(ours, "from shmcom", 11, NULL), S_OK);
        tsupport_stream_seek(ours, 0);
        cb.QuadPart = 100;
        assert_hr(IStream_CopyTo(ours, com, cb, &r, &w), S_OK);
        assert_int_equal(r.QuadPart, 11);
        assert_int_equal(w.QuadPart, 11);
        assert_hr(IStream_Write(com, ", from COM", 10, NULL), S_OK);
        tsupport_stream_seek(com, 0);
        assert_hr(IStream_SetSize(ours, (ULARGE_INTEGER){.QuadPart = 0}), S_OK);
        tsupport_stream_seek(ours, 0);
        assert_hr(IStream_CopyTo(com, ours, cb, &r, &w), S_OK); /* COM writes into ours */
        assert_int_equal(w.QuadPart, 21);
        tsupport_stream_seek(ours, 0);
        assert_hr(IStream_Read(ours, buf, sizeof(buf), &n), S_OK);
        assert_int_equal(n, 21);
        assert_memory_equal(buf, "from shmcom, from COM", 21);
        assert_int_equal(IStream_Release(com), 0);
        assert_int_equal(IStream_Release(ours), 0);
    }
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(marshal_unmarshal_same_apartment, setup_mta, teardown_mta),
        cmocka_unit_test_setup_teardown(release_marshal_data, setup_mta, teardown_mta),
        cmocka_unit_test_setup_teardown(unmarshal_in_another_apartment, setup_mta, teardown_mta),
        cmocka_unit_test_setup_teardown(copy_to_and_from_hglobal, setup_mta, teardown_mta),
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
