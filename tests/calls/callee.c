/*
 * callee.c - the test object of callee.h. Add(a, b) checks that each
 * caller's (a) sequence numbers (b) arrive in order; GetChild(-ms) takes
 * its time first; GetCount reports how many Add calls it ran.
 */
#define COBJMACROS
#include "callee.h"
#include "platform.h"
#include "shmcom/shmcom.h"

#include <stdlib.h>
#include <string.h>

_Atomic int live_callees;

static callee *impl_from_ICallee(ICallee *iface)
{
    return (callee *)((char *)iface - offsetof(callee, ICallee_iface));
}

static callee *impl_from_ICallback(ICallback *iface)
{
    return (callee *)((char *)iface - offsetof(callee, ICallback_iface));
}

static void enter(callee *c)
{
    int n = atomic_fetch_add(&c->in_flight, 1) + 1;
    int m = atomic_load(&c->max_in_flight);
    while (n > m && !atomic_compare_exchange_weak(&c->max_in_flight, &m, n)) {}
    atomic_fetch_add(&c->calls, 1);
}

static void leave(callee *c)
{
    atomic_fetch_sub(&c->in_flight, 1);
}

static HRESULT STDMETHODCALLTYPE c_QueryInterface(ICallee *iface, REFIID riid, void **ppv)
{
    callee *c = impl_from_ICallee(iface);
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ICallee))
        *ppv = &c->ICallee_iface;
    else if (IsEqualIID(riid, &IID_ICallback))
        *ppv = &c->ICallback_iface;
    else {
        *ppv = NULL;
        return E_NOINTERFACE;
    }
    atomic_fetch_add(&c->refs, 1);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE c_AddRef(ICallee *iface)
{
    return (ULONG)atomic_fetch_add(&impl_from_ICallee(iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE c_Release(ICallee *iface)
{
    callee *c = impl_from_ICallee(iface);
    int left = atomic_fetch_sub(&c->refs, 1) - 1;
    if (left < 0)
        abort();
    if (left == 0) {
        if (c->freed)
            atomic_store(c->freed, 1);
        atomic_fetch_sub(&live_callees, 1);
        free(c);
    }
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE c_Null(ICallee *iface)
{
    (void)iface;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Add(ICallee *iface, LONG a, LONG b, LONG *sum)
{
    callee *c = impl_from_ICallee(iface);
    enter(c);
    /* a = caller id, b = its sequence number: each caller's calls in order */
    if (a >= 0 && a < 8) {
        if (b <= c->last_seq[a])
            c->out_of_order = true;
        c->last_seq[a] = b;
    }
    shmc_plat_thread_yield();           /* give a concurrent call a chance to overlap */
    *sum = (LONG)((ULONG)a + (ULONG)b); /* wraps: a hostile caller sends anything */
    leave(c);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Scalars(ICallee *iface, BYTE b, SHORT s, ULONG u, hyper h,
                                           double d, float f, boolean flag, double *total)
{
    (void)iface;
    *total = (double)b + s + (double)u + (double)h + d + f + (flag ? 1000.0 : 0.0);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Fail(ICallee *iface, HRESULT hr)
{
    (void)iface;
    return hr;
}

static HRESULT STDMETHODCALLTYPE c_Echo(ICallee *iface, const char *text, char **copy)
{
    (void)iface;
    size_t n = strlen(text) + 1;
    *copy = ShmCoTaskMemAlloc(n + 4);
    if (!*copy)
        return E_OUTOFMEMORY;
    memcpy(*copy, "re: ", 4);
    memcpy(*copy + 4, text, n);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Sum(ICallee *iface, ULONG n, const LONG *values, hyper *total)
{
    (void)iface;
    *total = 0;
    for (ULONG i = 0; i < n; i++)
        *total += values[i];
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Fill(ICallee *iface, ULONG n, BYTE *buffer)
{
    (void)iface;
    for (ULONG i = 0; i < n; i++)
        buffer[i] = (BYTE)(i * 3 + 1);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Reverse(ICallee *iface, ULONG n, LONG *values)
{
    (void)iface;
    for (ULONG i = 0; i < n / 2; i++) {
        LONG t = values[i];
        values[i] = values[n - 1 - i];
        values[n - 1 - i] = t;
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_MakeArray(ICallee *iface, ULONG n, ULONG *count, LONG **values)
{
    (void)iface;
    *values = ShmCoTaskMemAlloc(n * sizeof(LONG) + 1);
    if (!*values)
        return E_OUTOFMEMORY;
    for (ULONG i = 0; i < n; i++)
        (*values)[i] = (LONG)(i * i);
    *count = n;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Move(ICallee *iface, CT_POINT p, const CT_FRAME *f,
                                        CT_FRAME *moved)
{
    (void)iface;
    *moved = *f;
    moved->origin.x = (LONG)((ULONG)moved->origin.x + (ULONG)p.x); /* wrapping, as Add */
    moved->origin.y = (LONG)((ULONG)moved->origin.y + (ULONG)p.y);
    moved->origin.z = (hyper)((uint64_t)moved->origin.z + (uint64_t)p.z);
    moved->tag[7] = 'M';
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Call(ICallee *iface, ICallback *cb, LONG value)
{
    (void)iface;
    return cb ? ICallback_Notify(cb, value) : E_POINTER;
}

static HRESULT STDMETHODCALLTYPE c_GetChild(ICallee *iface, LONG tag, ICallee **child)
{
    (void)iface;
    if (tag < 0) /* take -tag ms first: a reply that may come too late */
        shmc_plat_sleep_ms((uint32_t)-tag);
    callee *c = callee_new(tag, NULL);
    if (!c)
        return E_OUTOFMEMORY;
    *child = &c->ICallee_iface;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_GetTag(ICallee *iface, LONG *tag)
{
    *tag = impl_from_ICallee(iface)->tag;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_Query(ICallee *iface, REFIID riid, void **ppv)
{
    return ICallee_QueryInterface(iface, riid, ppv);
}

void (*callee_wait_hook)(bool entering);

static HRESULT STDMETHODCALLTYPE c_Wait(ICallee *iface, ULONG ms)
{
    (void)iface;
    if (callee_wait_hook)
        callee_wait_hook(true);
    shmc_plat_sleep_ms(ms);
    if (callee_wait_hook)
        callee_wait_hook(false);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_GetThreadId(ICallee *iface, hyper *id)
{
    (void)iface;
    *id = (hyper)shmc_plat_thread_self_id();
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE c_GetCount(ICallee *iface, LONG *count)
{
    *count = atomic_load(&impl_from_ICallee(iface)->calls);
    return S_OK;
}

static const ICalleeVtbl callee_vtbl = {
    c_QueryInterface, c_AddRef, c_Release, c_Null,    c_Add,         c_Scalars,  c_Fail,
    c_Echo,           c_Sum,    c_Fill,    c_Reverse, c_MakeArray,   c_Move,     c_Call,
    c_GetChild,       c_GetTag, c_Query,   c_Wait,    c_GetThreadId, c_GetCount,
};

/* ICallback on the same object: Notify records where and what it got. */
_Atomic uint64_t notify_thread;
_Atomic LONG notify_value;

static HRESULT STDMETHODCALLTYPE cb_QueryInterface(ICallback *iface, REFIID riid, void **ppv)
{
    return c_QueryInterface(&impl_from_ICallback(iface)->ICallee_iface, riid, ppv);
}

static ULONG STDMETHODCALLTYPE cb_AddRef(ICallback *iface)
{
    return c_AddRef(&impl_from_ICallback(iface)->ICallee_iface);
}

static ULONG STDMETHODCALLTYPE cb_Release(ICallback *iface)
{
    return c_Release(&impl_from_ICallback(iface)->ICallee_iface);
}

static HRESULT STDMETHODCALLTYPE cb_Notify(ICallback *iface, LONG value)
{
    (void)iface;
    atomic_store(&notify_thread, shmc_plat_thread_self_id());
    atomic_store(&notify_value, value);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE cb_GetThreadId(ICallback *iface, hyper *id)
{
    (void)iface;
    *id = (hyper)shmc_plat_thread_self_id();
    return S_OK;
}

static const ICallbackVtbl callback_vtbl = {cb_QueryInterface, cb_AddRef, cb_Release, cb_Notify,
                                            cb_GetThreadId};

callee *callee_new(LONG tag, _Atomic int *freed)
{
    callee *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ICallee_iface.lpVtbl = &callee_vtbl;
    c->ICallback_iface.lpVtbl = &callback_vtbl;
    atomic_init(&c->refs, 1);
    c->tag = tag;
    c->freed = freed;
    atomic_fetch_add(&live_callees, 1);
    if (freed)
        atomic_store(freed, 0);
    return c;
}
