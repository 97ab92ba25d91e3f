/*
 * benchobj.c - see benchobj.h.
 */
#define COBJMACROS
#include "benchobj.h"

#include "tsupport.h"
#include "platform.h"

#include <stdatomic.h>
#include <stdlib.h>

typedef struct bench_obj {
    IBench IBench_iface;
    _Atomic int refs;
} bench_obj;

static HRESULT STDMETHODCALLTYPE b_QueryInterface(IBench *iface, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBench)) {
        *ppv = iface;
        IBench_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE b_AddRef(IBench *iface)
{
    return (ULONG)atomic_fetch_add(&((bench_obj *)iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE b_Release(IBench *iface)
{
    int left = atomic_fetch_sub(&((bench_obj *)iface)->refs, 1) - 1;
    if (left == 0)
        free(iface);
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE b_Null(IBench *iface)
{
    (void)iface;
    return S_OK;
}

/* Looks at the last byte only: the row measures the transport's copy. */
static HRESULT STDMETHODCALLTYPE b_Put(IBench *iface, ULONG n, const BYTE *data)
{
    (void)iface;
    return n && data[n - 1] == 0xEE ? S_FALSE : S_OK;
}

static HRESULT STDMETHODCALLTYPE b_Get(IBench *iface, ULONG n, BYTE *data)
{
    (void)iface;
    if (n)
        data[n - 1] = 1;
    return S_OK;
}

static const IBenchVtbl bench_vtbl = {b_QueryInterface, b_AddRef, b_Release, b_Null, b_Put, b_Get};

IBench *bench_obj_new(void)
{
    bench_obj *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->IBench_iface.lpVtbl = &bench_vtbl;
    atomic_init(&o->refs, 1);
    return &o->IBench_iface;
}

static double now_us(void)
{
    return (double)shmc_plat_clock_ns() / 1000.0;
}

HRESULT bench_null_after_gap(IBench *p, uint32_t n, double gap_us, double *us)
{
    *us = 0;
    for (uint32_t i = 0; i < 10; i++) {
        HRESULT hr = IBench_Null(p);
        if (FAILED(hr))
            return hr;
    }
    double sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        double until = now_us() + gap_us;
        while (now_us() < until)
            shmc_plat_cpu_relax();
        double t0 = now_us();
        HRESULT hr = IBench_Null(p);
        sum += now_us() - t0;
        if (FAILED(hr))
            return hr;
    }
    *us = n ? sum / n : 0;
    return S_OK;
}

int bench_bind_self(void)
{
    if (tsupport_allowed_cpus() < 2)
        return -1;
    return tsupport_pin_self(-1);
}

/* (CPU_SETSIZE on Linux) */
#define BENCH_MAX_CPUS 1024

int bench_bind_other(int mine)
{
    if (mine < 0)
        return -1;
    /* the lowest CPU other than `mine` the OS lets this thread run on. Not
     * judged by its affinity: a thread started by a bound one inherits the
     * one CPU it is bound to */
    for (int cpu = 0; cpu < BENCH_MAX_CPUS; cpu++)
        if (cpu != mine && tsupport_pin_self(cpu) == cpu)
            return cpu;
    return -1;
}

void bench_unbind(void)
{
    tsupport_unpin_self();
}
