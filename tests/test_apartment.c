/*
 * test_apartment.c - joining and leaving apartments, the implicit MTA,
 * ShmCoProcessCalls and the STA's wait handle, per-thread call timeouts,
 * and what every marshaling function answers on a thread that is in no
 * apartment.
 */
#define COBJMACROS
#include "tobj.h"

#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <poll.h>
#endif

static void init_counts_and_modes(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_FALSE);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE), S_FALSE);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), RPC_E_CHANGED_MODE);
    ShmCoUninitialize();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), RPC_E_CHANGED_MODE);
    ShmCoUninitialize();
    ShmCoUninitialize(); /* the last one leaves */
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_FALSE);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), RPC_E_CHANGED_MODE);
    ShmCoUninitialize();
    ShmCoUninitialize();
    ShmCoUninitialize(); /* one too many: harmless */
}

static void init_argument_errors(void **state)
{
    (void)state;
    int dummy;
    assert_hr(ShmCoInitializeEx(&dummy, COINIT_MULTITHREADED), E_INVALIDARG);
    assert_hr(ShmCoInitializeEx(NULL, 0x100), E_INVALIDARG);
    assert_hr(ShmCoInitializeEx(NULL, 0x80000000u), E_INVALIDARG);
    /* none of those joined anything */
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    ShmCoUninitialize();
}

static void nothing_works_uninitialized(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    IStream *s = NULL;
    void *out = (void *)1;
    ULONG size = 5;
    intptr_t h = 5;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    assert_hr(ShmCoMarshalInterface(s, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL, 0),
              CO_E_NOTINITIALIZED);
    assert_hr(ShmCoUnmarshalInterface(s, &IID_IUnknown, &out), CO_E_NOTINITIALIZED);
    assert_null(out);
    assert_hr(ShmCoReleaseMarshalData(s), CO_E_NOTINITIALIZED);
    assert_hr(
        ShmCoGetMarshalSizeMax(&size, &IID_IUnknown, &o->IUnknown_iface, MSHCTX_INPROC, NULL, 0),
        CO_E_NOTINITIALIZED);
    assert_int_equal(size, 0);
    IStream *t = (IStream *)1;
    assert_hr(ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &t),
              CO_E_NOTINITIALIZED);
    assert_null(t);
    assert_hr(ShmCoDisconnectObject(&o->IUnknown_iface, 0), CO_E_NOTINITIALIZED);
    /* the one-shot pair's second half reads nothing but releases the
     * stream all the same, as COM does */
    unsigned char bytes[96] = {0};
    assert_hr(IStream_Write(s, bytes, sizeof(bytes), NULL), S_OK);
    tstream_rewind(s);
    IStream_AddRef(s); /* to see what it did with the stream */
    out = (void *)1;
    assert_hr(ShmCoGetInterfaceAndReleaseStream(s, &IID_IUnknown, &out), CO_E_NOTINITIALIZED);
    assert_null(out);
    assert_int_equal(tsupport_stream_pos(s), 0);
    assert_int_equal(IStream_AddRef(s), 2); /* ours, and the one below */
    IStream_Release(s);
    assert_hr(ShmCoProcessCalls(0), CO_E_NOTINITIALIZED);
    assert_hr(ShmCoGetApartmentWaitHandle(&h), CO_E_NOTINITIALIZED);
    assert_int_equal(h, -1);
    assert_int_equal(tobj_refs(o), 1);
    IStream_Release(s);
    IUnknown_Release(&o->IUnknown_iface);
}

/* ---- the implicit MTA ----------------------------------------------------------- */

static void implicit_mta_marshal(void *arg)
{
    tobj *o = arg;
    IStream *s = NULL;
    /* never initialized, but the MTA exists: this thread is in it */
    HRESULT hr = ShmCoMarshalInterThreadInterfaceInStream(&IID_IUnknown, &o->IUnknown_iface, &s);
    if (SUCCEEDED(hr)) {
        IUnknown *p = NULL;
        hr = ShmCoGetInterfaceAndReleaseStream(s, &IID_IUnknown, (void **)&p);
        if (SUCCEEDED(hr)) {
            if (p != &o->IUnknown_iface) /* same apartment: the object */
                hr = E_UNEXPECTED;
            IUnknown_Release(p);
        }
    }
    atomic_store(&o->refs, hr == S_OK ? tobj_refs(o) : -100);
}

static void implicit_mta(void **state)
{
    (void)state;
    tobj *o = tobj_new(NULL, NULL);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, implicit_mta_marshal, o), S_OK);
    shmc_plat_thread_join(&t);
    assert_int_equal(tobj_refs(o), 1);
    ShmCoUninitialize();
    IUnknown_Release(&o->IUnknown_iface);
}

/* ---- ShmCoProcessCalls and the wait handle ----------------------------------------- */

static void process_calls_rules(void **state)
{
    (void)state;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    assert_hr(ShmCoProcessCalls(0), CO_E_NOT_SUPPORTED);
    intptr_t h;
    assert_hr(ShmCoGetApartmentWaitHandle(&h), CO_E_NOT_SUPPORTED);
    ShmCoUninitialize();

    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    assert_hr(ShmCoProcessCalls(0), S_FALSE);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(ShmCoProcessCalls(100), S_FALSE);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= 99.0);
    assert_true(ms < 5000.0);
    assert_hr(ShmCoGetApartmentWaitHandle(NULL), E_INVALIDARG);
    intptr_t h1 = -1, h2 = -1;
    assert_hr(ShmCoGetApartmentWaitHandle(&h1), S_OK);
    assert_hr(ShmCoGetApartmentWaitHandle(&h2), S_OK);
    assert_true(h1 != -1);
    assert_int_equal(h1, h2); /* one per apartment */
#ifdef _WIN32
    assert_int_equal(WaitForSingleObject((HANDLE)h1, 0), WAIT_TIMEOUT); /* nothing pending */
#else
    struct pollfd p = {.fd = (int)h1, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
#endif
    ShmCoUninitialize();
}

static void call_timeout_setting(void **state)
{
    (void)state;
    /* a per-thread setting: allowed before initializing too */
    assert_hr(ShmCoSetCallTimeout(1000), S_OK);
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
}

static void sta_thread_exit(void *arg)
{
    (void)arg;
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    intptr_t h;
    ShmCoGetApartmentWaitHandle(&h);
    /* exits initialized twice: the runtime cleans up (LeakSanitizer checks) */
}

static void thread_exit_cleans_up(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        shmc_plat_thread t;
        assert_hr(shmc_plat_thread_create(&t, sta_thread_exit, NULL), S_OK);
        shmc_plat_thread_join(&t);
    }
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_counts_and_modes),       cmocka_unit_test(init_argument_errors),
        cmocka_unit_test(nothing_works_uninitialized), cmocka_unit_test(implicit_mta),
        cmocka_unit_test(process_calls_rules),         cmocka_unit_test(call_timeout_setting),
        cmocka_unit_test(thread_exit_cleans_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
