/*
 * callfaults.c - see callfaults.h.
 */
#define COBJMACROS
#include "callfaults.h"

#include "alloc.h"
#include "tsupport.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#define MAP_CALL  "MapViewOfFile"
#define MAP_ERROR 8 /* ERROR_NOT_ENOUGH_MEMORY */
#else
#define MAP_CALL  "mmap"
#define MAP_ERROR ENOMEM
#endif

enum {
    K_ECHO,
    K_SUM,
    K_FILL,
    K_REVERSE,
    K_MAKEARRAY,
    K_GETCHILD,
    K_QUERY,
    K_CALL,
    K_QI,
    K_SUM_BIG,
    K_FILL_BIG,
    K_COUNT
};

#define BIG (3u << 20) /* bytes: past a slot's 1 MiB area */

static const char *const names[K_COUNT] = {
    "Echo",  "Sum",  "Fill", "Reverse",   "MakeArray",  "GetChild",
    "Query", "Call", "QI",   "Sum 3 MiB", "Fill 3 MiB",
};

/* One call of kind k: S_OK with its results checked and freed, or the
 * failure with its [out] parameters checked. An object it gets (GetChild)
 * is handed to *kid, to be called once nothing is armed to fail: its own
 * calls may reach the armed allocation (a receiver that serves it may
 * have to allocate), and the test is of the call that made it. */
static HRESULT run(ICallee *p, ICallback *mine, int k, unsigned char *buf, ICallee **kid_out)
{
    HRESULT hr = E_FAIL;
    switch (k) {
    case K_ECHO: {
        char *copy = (char *)buf;
        hr = ICallee_Echo(p, "every allocation", &copy);
        if (SUCCEEDED(hr)) {
            assert_string_equal(copy, "re: every allocation");
            ShmCoTaskMemFree(copy);
        } else {
            assert_null(copy);
        }
        break;
    }
    case K_SUM:
    case K_SUM_BIG: {
        ULONG n = k == K_SUM ? 100 : BIG / sizeof(LONG);
        memset(buf, 0, (size_t)n * sizeof(LONG));
        ((LONG *)buf)[n - 1] = 5;
        hyper total = 9;
        hr = ICallee_Sum(p, n, (const LONG *)buf, &total);
        assert_int_equal(total, SUCCEEDED(hr) ? 5 : 0);
        break;
    }
    case K_FILL:
    case K_FILL_BIG: {
        ULONG n = k == K_FILL ? 300 : BIG;
        memset(buf, 0xEE, n);
        hr = ICallee_Fill(p, n, buf);
        assert_int_equal(buf[n - 1], SUCCEEDED(hr) ? (BYTE)((n - 1) * 3 + 1) : 0);
        break;
    }
    case K_REVERSE: {
        LONG v[4] = {1, 2, 3, 4};
        hr = ICallee_Reverse(p, 4, v);
        if (SUCCEEDED(hr))
            assert_true(v[0] == 4 && v[3] == 1);
        break;
    }
    case K_MAKEARRAY: {
        ULONG count = 7;
        LONG *made = (LONG *)buf;
        hr = ICallee_MakeArray(p, 50, &count, &made);
        if (SUCCEEDED(hr)) {
            assert_int_equal(count, 50);
            assert_int_equal(made[49], 49 * 49);
            ShmCoTaskMemFree(made);
        } else {
            assert_null(made);
            assert_int_equal(count, 0);
        }
        break;
    }
    case K_GETCHILD: {
        ICallee *kid = (ICallee *)buf;
        hr = ICallee_GetChild(p, 9, &kid);
        if (SUCCEEDED(hr)) {
            assert_non_null(kid);
            *kid_out = kid;
        } else {
            assert_null(kid);
        }
        break;
    }
    case K_QUERY: {
        ICallback *cb = (ICallback *)buf;
        hr = ICallee_Query(p, &IID_ICallback, (void **)&cb);
        if (SUCCEEDED(hr))
            ICallback_Release(cb);
        else
            assert_null(cb);
        break;
    }
    case K_CALL:
        hr = ICallee_Call(p, mine, 11);
        break;
    case K_QI: {
        ICallback *cb = (ICallback *)buf;
        hr = ICallee_QueryInterface(p, &IID_ICallback, (void **)&cb);
        if (SUCCEEDED(hr))
            ICallback_Release(cb);
        else
            assert_null(cb);
        break;
    }
    }
    return hr;
}

static void local_arm(void *ctx, unsigned long n)
{
    (void)ctx;
    shmc_alloc_fail_at(n);
}

static unsigned long local_disarm(void *ctx)
{
    (void)ctx;
    unsigned long hits = shmc_alloc_fail_hits();
    shmc_alloc_fail_reset();
    return hits;
}

unsigned long callfaults_check(ICallee *p, ICallback *mine, bool big)
{
    const callfaults_hook local = {local_arm, local_disarm, NULL};
    return callfaults_check_with(p, mine, big, &local);
}

unsigned long callfaults_check_with(ICallee *p, ICallback *mine, bool big,
                                    const callfaults_hook *hook)
{
    unsigned char *buf = malloc(BIG);
    assert_non_null(buf);
    unsigned long all = 0;
    uint64_t trace_start = shmc_plat_clock_ns();
    for (int k = 0; k < (big ? K_COUNT : K_SUM_BIG); k++) {
        unsigned long sites = 0;
        for (unsigned long n = 1;; n++) {
            if (getenv("CALLFAULTS_TRACE"))
                fprintf(stderr, "%s %lu %.0f\n", names[k], n, tsupport_ms_since(trace_start));
            hook->arm(hook->ctx, n);
            ICallee *kid = NULL;
            HRESULT hr = run(p, mine, k, buf, &kid);
            unsigned long hits = hook->disarm(hook->ctx);
            if (kid) {
                LONG tag = 0;
                assert_hr(ICallee_GetTag(kid, &tag), S_OK);
                assert_int_equal(tag, 9);
                assert_int_equal(ICallee_Release(kid), 0);
            }
            if (!hits) {
                if (hr != S_OK)
                    fail_msg("%s: 0x%08x without a failed allocation", names[k], (unsigned)hr);
                break; /* past the last allocation */
            }
            sites++;
            /* what a failed allocation may give: out of memory, from the
             * runtime or from the object (whose own allocations fail too
             * in-process), the server saying so about its reply, an MTA
             * that could start no thread for the call, or (a callback)
             * this process refusing the server's connection back to it */
            if (FAILED(hr) && hr != E_OUTOFMEMORY && hr != RPC_E_SERVER_CANTMARSHAL_DATA &&
                hr != RPC_E_OUT_OF_RESOURCES && hr != RPC_E_SERVERCALL_REJECTED)
                fail_msg("%s, allocation %lu failed: 0x%08x", names[k], n, (unsigned)hr);
            /* nobody over there holds the callback after the call */
            ICallback_AddRef(mine);
            ULONG refs = ICallback_Release(mine);
            if (refs != 1) {
                shmc_plat_sleep_ms(1000);
                ICallback_AddRef(mine);
                ULONG later = ICallback_Release(mine);
                fail_msg("%s, allocation %lu failed (0x%08x): the callback has %u references (%u a "
                         "second later)",
                         names[k], n, (unsigned)hr, (unsigned)refs, (unsigned)later);
            }
            HRESULT next = ICallee_Null(p);
            if (next != S_OK)
                fail_msg("%s, allocation %lu failed: the next call gave 0x%08x", names[k], n,
                         (unsigned)next);
            if (n > 100000)
                fail_msg("%s: the hook is still reached after %lu", names[k], n);
        }
        all += sites; /* (0 for a small call between apartments: calls are pooled) */
    }
    free(buf);
    return all;
}

unsigned long callfaults_regions(ICallee *p)
{
    /* past what a slot keeps (32 MiB of bulk region): a new region each
     * call, on each side */
    const ULONG size = 40u << 20;
    unsigned char *buf = malloc(size);
    assert_non_null(buf);
    unsigned long all = 0;
    for (int k = 0; k < 2; k++) {
        for (unsigned n = 1;; n++) {
            assert_hr(shmc_plat_fault_set(MAP_CALL, n, MAP_ERROR), S_OK);
            HRESULT hr;
            if (k == 0) {
                hyper total = 9;
                memset(buf, 0, size);
                ((LONG *)buf)[size / sizeof(LONG) - 1] = 3;
                hr = ICallee_Sum(p, size / sizeof(LONG), (const LONG *)buf, &total);
                assert_int_equal(total, SUCCEEDED(hr) ? 3 : 0);
            } else {
                memset(buf, 0xEE, size);
                hr = ICallee_Fill(p, size, buf);
                assert_int_equal(buf[size - 1], SUCCEEDED(hr) ? (BYTE)((size - 1) * 3 + 1) : 0);
            }
            unsigned hits = shmc_plat_fault_hits(MAP_CALL);
            shmc_plat_fault_clear_all();
            const char *what = k == 0 ? "Sum 40 MiB" : "Fill 40 MiB";
            if (!hits) {
                if (hr != S_OK)
                    fail_msg("%s: 0x%08x without a failed mapping", what, (unsigned)hr);
                break;
            }
            all++;
            if (hr != S_OK && hr != E_OUTOFMEMORY)
                fail_msg("%s, mapping %u failed: 0x%08x", what, n, (unsigned)hr);
            HRESULT next = ICallee_Null(p);
            if (next != S_OK)
                fail_msg("%s, mapping %u failed: the next call gave 0x%08x", what, n,
                         (unsigned)next);
            if (n > 1000)
                fail_msg("%s: the hook is still reached after %u", what, n);
        }
    }
    free(buf);
    return all;
}
