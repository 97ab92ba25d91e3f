/*
 * tobj.c - see tobj.h.
 */
#define COBJMACROS
#include "tobj.h"

#include <stdlib.h>
#include <string.h>

static tobj *impl_from(IUnknown *iface)
{
    return (tobj *)iface;
}

static HRESULT STDMETHODCALLTYPE tobj_qi(IUnknown *iface, REFIID riid, void **ppv)
{
    tobj *o = impl_from(iface);
    if (!ppv)
        return E_POINTER;
    bool ok = IsEqualIID(riid, &IID_IUnknown);
    for (int i = 0; i < 4 && !ok && o->iids[i]; i++)
        ok = IsEqualIID(riid, o->iids[i]);
    if (!ok) {
        *ppv = NULL;
        o->last_refused = *riid;
        atomic_fetch_add(&o->refused, 1);
        return E_NOINTERFACE;
    }
    *ppv = iface;
    IUnknown_AddRef(iface);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE tobj_addref(IUnknown *iface)
{
    return (ULONG)atomic_fetch_add(&impl_from(iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE tobj_release(IUnknown *iface)
{
    tobj *o = impl_from(iface);
    int left = atomic_fetch_sub(&o->refs, 1) - 1;
    if (left < 0) {
        fprintf(stderr, "tobj: released more often than referenced\n");
        abort();
    }
    if (left == 0) {
        if (o->freed_flag)
            atomic_store(o->freed_flag, 1);
        free(o);
    }
    return (ULONG)left;
}

static const IUnknownVtbl tobj_vtbl = {tobj_qi, tobj_addref, tobj_release};

tobj *tobj_new(_Atomic int *freed_flag, const IID *extra_iid)
{
    tobj *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->IUnknown_iface.lpVtbl = &tobj_vtbl;
    atomic_init(&o->refs, 1);
    o->iids[0] = extra_iid;
    o->freed_flag = freed_flag;
    if (freed_flag)
        atomic_store(freed_flag, 0);
    return o;
}

int tobj_refs(tobj *o)
{
    return atomic_load(&o->refs);
}

/* ---- host threads ------------------------------------------------------- */

struct thost {
    shmc_plat_thread thread;
    DWORD coinit;
    IStream *stream;
    IID iid;
    IUnknown *object;
    DWORD flags;
    HRESULT marshal_hr;
    _Atomic int ready;
    _Atomic int stop;
    bool skip_uninit;
    void (*_Atomic cmd)(void *);
    void *cmd_arg;
    _Atomic int cmd_done;
};

static void host_main(void *arg)
{
    thost *h = arg;
    ShmCoInitializeEx(NULL, h->coinit);
    h->marshal_hr = h->stream ? ShmCoMarshalInterface(h->stream, &h->iid, h->object, MSHCTX_INPROC,
                                                      NULL, h->flags)
                              : S_OK;
    atomic_store(&h->ready, 1);
    bool sta = h->coinit & COINIT_APARTMENTTHREADED;
    while (!atomic_load(&h->stop)) {
        if (sta)
            ShmCoProcessCalls(5);
        else
            shmc_plat_sleep_ms(1);
        void (*fn)(void *) = atomic_load(&h->cmd);
        if (fn) {
            fn(h->cmd_arg);
            atomic_store(&h->cmd, NULL);
            atomic_store(&h->cmd_done, 1);
        }
    }
    if (!h->skip_uninit)
        ShmCoUninitialize();
}

thost *thost_start(DWORD coinit, IStream *stream, REFIID iid, IUnknown *object, DWORD flags)
{
    thost *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    h->coinit = coinit;
    h->stream = stream;
    h->iid = iid ? *iid : IID_IUnknown;
    h->object = object;
    h->flags = flags;
    assert_hr(shmc_plat_thread_create(&h->thread, host_main, h), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&h->ready)) {
        if (tsupport_ms_since(t0) > 20000)
            fail_msg("host thread did not start");
        shmc_plat_sleep_ms(1);
    }
    return h;
}

HRESULT thost_marshal_hr(thost *h)
{
    return h->marshal_hr;
}

void thost_run(thost *h, void (*fn)(void *), void *arg)
{
    atomic_store(&h->cmd_done, 0);
    h->cmd_arg = arg;
    atomic_store(&h->cmd, fn);
    uint64_t t0 = shmc_plat_clock_ns();
    while (!atomic_load(&h->cmd_done)) {
        if (tsupport_ms_since(t0) > 20000)
            fail_msg("host thread did not run the command");
        /* an STA caller must serve its own apartment meanwhile */
        if (FAILED(ShmCoProcessCalls(1)))
            shmc_plat_sleep_ms(1);
    }
}

void thost_stop(thost *h, bool skip_uninit)
{
    h->skip_uninit = skip_uninit;
    atomic_store(&h->stop, 1);
    shmc_plat_thread_join(&h->thread);
    free(h);
}

void tstream_rewind(IStream *s)
{
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    assert_hr(IStream_Seek(s, zero, STREAM_SEEK_SET, NULL), S_OK);
}
