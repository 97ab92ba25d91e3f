/*
 * xpeer.c - see xpeer.h.
 */
#define COBJMACROS
#include "xpeer.h"

#include "regionhdr.h"
#include "rt.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#include <tlhelp32.h>
#else
#include <dirent.h>
#endif

uint64_t xpeer_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* ---- well-behaved calls --------------------------------------------------------- */

static HRESULT wrong(const char *who, const char *what, unsigned long long got,
                     unsigned long long want)
{
    fprintf(stderr, "%s: %s: got %llu, expected %llu\n", who, what, got, want);
    return E_UNEXPECTED;
}

HRESULT xpeer_good_call(ICallee *p, ICallback *cb, uint64_t *rng, const char *who)
{
    uint64_t r = xpeer_rand(rng);
    HRESULT hr;
    switch (r % 14) {
    case 0: {
        LONG a = -1 - (LONG)((r >> 8) % 100000), b = (LONG)((r >> 32) % 100000), sum = 0;
        if ((hr = ICallee_Add(p, a, b, &sum)) != S_OK)
            return hr;
        return sum == a + b ? S_OK : wrong(who, "Add", (unsigned long long)sum, a + b);
    }
    case 1:
    case 2: {
        /* now and then more than a slot holds: a bulk region */
        ULONG n = (r >> 8) % 16 == 0 ? 300000 + (ULONG)((r >> 16) % 1000) : (ULONG)(r >> 16) % 2000;
        LONG *v = malloc(((size_t)n + 1) * sizeof(LONG));
        if (!v)
            return E_OUTOFMEMORY;
        hyper want = 0, got = -1;
        for (ULONG i = 0; i < n; i++)
            want += v[i] = (LONG)(i * 2654435761u) >> 3;
        hr = ICallee_Sum(p, n, v, &got);
        free(v);
        if (hr != S_OK)
            return hr;
        return got == want ? S_OK : wrong(who, "Sum", (unsigned long long)got, want);
    }
    case 3: {
        LONG v[300];
        ULONG n = (ULONG)(r >> 8) % 300;
        for (ULONG i = 0; i < n; i++)
            v[i] = (LONG)i;
        if ((hr = ICallee_Reverse(p, n, v)) != S_OK)
            return hr;
        for (ULONG i = 0; i < n; i++)
            if (v[i] != (LONG)(n - 1 - i))
                return wrong(who, "Reverse", (unsigned long long)v[i], n - 1 - i);
        return S_OK;
    }
    case 4: {
        char text[64], *copy = NULL;
        int len = snprintf(text, sizeof(text), "echo %llx", (unsigned long long)r);
        if ((hr = ICallee_Echo(p, text, &copy)) != S_OK)
            return hr;
        bool ok = copy && strlen(copy) == (size_t)len + 4 && !memcmp(copy, "re: ", 4) &&
                  !strcmp(copy + 4, text);
        ShmCoTaskMemFree(copy);
        return ok ? S_OK : wrong(who, "Echo", 0, 1);
    }
    case 5: {
        ULONG n = (ULONG)(r >> 8) % 500, count = 7;
        LONG *made = NULL;
        if ((hr = ICallee_MakeArray(p, n, &count, &made)) != S_OK)
            return hr;
        HRESULT res = S_OK;
        if (count != n)
            res = wrong(who, "MakeArray count", count, n);
        for (ULONG i = 0; i < n && res == S_OK; i++)
            if (made[i] != (LONG)(i * i))
                res = wrong(who, "MakeArray value", (unsigned long long)made[i], i * i);
        ShmCoTaskMemFree(made);
        return res;
    }
    case 6: {
        CT_POINT pt = {(LONG)(r >> 40), 2, 3000000000LL};
        CT_FRAME fr, moved;
        memset(&fr, 0, sizeof(fr));
        memset(&moved, 0, sizeof(moved));
        fr.width = (ULONG)r;
        fr.origin.x = 5;
        if ((hr = ICallee_Move(p, pt, &fr, &moved)) != S_OK)
            return hr;
        if (moved.width != fr.width || moved.origin.x != (LONG)((ULONG)pt.x + 5u) ||
            moved.origin.z != pt.z || moved.tag[7] != 'M')
            return wrong(who, "Move", moved.width, fr.width);
        return S_OK;
    }
    case 7:
    case 8: {
        LONG tag = (LONG)((r >> 8) % 100000), got = -1;
        ICallee *kid = NULL;
        if ((hr = ICallee_GetChild(p, tag, &kid)) != S_OK)
            return hr;
        hr = ICallee_GetTag(kid, &got);
        ULONG left = ICallee_Release(kid);
        if (hr != S_OK)
            return hr;
        if (left != 0)
            return wrong(who, "child refs after release", left, 0);
        return got == tag ? S_OK : wrong(who, "GetTag", (unsigned long long)got, tag);
    }
    case 9: {
        ICallback *q = NULL;
        if ((hr = ICallee_QueryInterface(p, &IID_ICallback, (void **)&q)) != S_OK)
            return hr;
        hr = ICallback_Notify(q, (LONG)r);
        ICallback_Release(q);
        return hr;
    }
    case 10:
        /* a callback into the caller's own object */
        return cb ? ICallee_Call(p, cb, (LONG)(r >> 8)) : ICallee_Null(p);
    case 11: {
        BYTE buf[5000];
        ULONG n = (ULONG)(r >> 8) % sizeof(buf);
        if ((hr = ICallee_Fill(p, n, buf)) != S_OK)
            return hr;
        for (ULONG i = 0; i < n; i++)
            if (buf[i] != (BYTE)(i * 3 + 1))
                return wrong(who, "Fill", buf[i], (BYTE)(i * 3 + 1));
        return S_OK;
    }
    case 12: {
        double total = 0;
        if ((hr = ICallee_Scalars(p, 200, -30000, 4000000000u, -5000000000LL, 0.5, 0.25f, 1,
                                  &total)) != S_OK)
            return hr;
        double want = 200.0 - 30000.0 + 4000000000.0 - 5000000000.0 + 0.5 + 0.25 + 1000.0;
        return total == want ? S_OK : wrong(who, "Scalars", (unsigned long long)total, 0);
    }
    default:
        return ICallee_Null(p);
    }
}

/* ---- what a process holds --------------------------------------------------------- */

long xpeer_thread_count(void)
{
#ifdef _WIN32
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return -1;
    THREADENTRY32 te;
    te.dwSize = sizeof(te);
    long n = 0;
    DWORD self = GetCurrentProcessId();
    for (BOOL ok = Thread32First(snap, &te); ok; ok = Thread32Next(snap, &te))
        if (te.th32OwnerProcessID == self)
            n++;
    CloseHandle(snap);
    return n;
#else
    long n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
#endif
}

void xpeer_counts_take(xpeer_counts *c)
{
    memset(c, 0, sizeof(*c));
    c->handles = tsupport_open_handles();
    c->threads = xpeer_thread_count();
    shmc_plat_mutex_lock(&shmc_g.lock);
    c->stubs = shmc_g.stub_by_oid.count;
    c->ipids = shmc_g.ipids.count;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    c->callees = atomic_load(&live_callees);
}

/* Back to the baseline: the same objects and stubs, and no more handles
 * or threads. Fewer is fine: the baseline can count a thread (a receiver
 * or watcher of the case before, detached, on its way out) or a handle
 * that goes away later; what is leaked is more. */
static bool counts_back(const xpeer_counts *now, const xpeer_counts *base)
{
    return now->handles <= base->handles && now->threads <= base->threads &&
           now->stubs == base->stubs && now->ipids == base->ipids && now->callees == base->callees;
}

void xpeer_counts_await(const xpeer_counts *base, uint32_t timeout_ms)
{
    xpeer_counts now;
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        xpeer_counts_take(&now);
        if (counts_back(&now, base))
            return;
        if (tsupport_ms_since(start) > timeout_ms)
            break;
        shmc_plat_sleep_ms(2);
    }
    fail_msg("not back to the baseline after %u ms: handles %ld (was %ld), threads %ld (%ld), "
             "stub managers %zu (%zu), interface stubs %zu (%zu), objects %d (%d)",
             timeout_ms, now.handles, base->handles, now.threads, base->threads, now.stubs,
             base->stubs, now.ipids, base->ipids, now.callees, base->callees);
}

#ifndef _WIN32
typedef struct owned_scan {
    uint64_t pid;
    unsigned count;
} owned_scan;

static bool count_owned(const char *name, void *ctx)
{
    owned_scan *sc = ctx;
    shmc_plat_region r;
    shmc_region_info info;
    if (SUCCEEDED(shmc_plat_region_open(&r, name))) {
        if (SUCCEEDED(shmc_region_hdr_read(r.base, r.size, &info)) && info.owner.pid == sc->pid) {
            fprintf(stderr, "left behind by process %llu: %s\n", (unsigned long long)sc->pid, name);
            sc->count++;
        }
        shmc_plat_region_close(&r);
    }
    return true;
}
#endif

unsigned xpeer_regions_of(uint64_t pid)
{
#ifndef _WIN32
    owned_scan sc = {pid, 0};
    assert_hr(shmc_plat_region_list("", count_owned, &sc), S_OK);
    return sc.count;
#else
    (void)pid;
    return 0;
#endif
}
