/*
 * bench_calls.c - calls between apartments of one process, next to the
 * floors of the machine measured in the same run:
 *   - a two-thread spin ping-pong on a shared word (both threads running);
 *   - a two-thread futex ping-pong (each side sleeps, each bound to a CPU of
 *     its own: a cross-core wake-up), through the runtime's wait on a word
 *     of the process (Windows: WaitOnAddress);
 * and the ShmCoMarshalInterThreadInterfaceInStream +
 * ShmCoGetInterfaceAndReleaseStream pair. In the Windows build (under
 * Wine) the same calls through Wine's own ole32 are measured too, in the
 * same process.
 *
 *   bench_calls            the full run: prints the table
 *   bench_calls --quick    a few iterations of everything (a ctest smoke
 *                          test: it checks that the numbers come out and
 *                          never judges them)
 *   bench_calls --tsv      the same figures as lines for scripts
 *                          (benchtsv.h); combines with --quick
 *
 * "both running": calls back to back, so both sides spin and meet without
 * a system call. "callee asleep": the callee is told not to spin (it
 * sleeps as soon as it is idle) and the caller waits ASLEEP_GAP_US
 * (spinning, untimed) before each call, so that the callee really is
 * asleep in the kernel and every call has to wake it, as in the futex
 * ping-pong; the caller spins as usual. (Back to back, a callee that does
 * not spin is mostly still on its way to sleep when the next call comes:
 * that measures nothing of the wake-up.)
 * Every figure is the median of ROUNDS rounds (--tsv gives the fastest
 * and slowest round too). A round of null calls takes turns with the spin
 * floor, a few milliseconds each, and a call's ratio to the floor is the
 * median of the rounds' ratios: on a VM the placement of the two CPUs
 * (sibling threads of one core, or two cores) changes from second to
 * second, and the floor with it, by up to 3x; a floor measured seconds
 * away from the calls compares them with another machine.
 */
#define COBJMACROS
#include "benchobj.h"
#include "benchtsv.h"
#include "platform.h"
#include "rt.h"
#include "shmcom/shmcom.h"
#include "shstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#endif

#define ROUNDS          7
#define CHUNKS          5    /* turns of floor and null calls in a round */
#define ASLEEP_GAP_US   50.0 /* before each call with the callee asleep */
#define ASLEEP_GAP_TEXT "50 us"

static bool quick;
static int calls_per_round(void)
{
    return quick ? 50 : 20000;
}
static int asleep_calls(void)
{
    return quick ? 10 : 2000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A figure: the median of the rounds, the fastest and the slowest. */
typedef struct fig {
    double med, lo, hi;
} fig;

static fig median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    fig f = {v[n / 2], v[0], v[n - 1]};
    return f;
}

#define CHECK(call)                                                                 \
    do {                                                                            \
        HRESULT hr_ = (call);                                                       \
        if (FAILED(hr_)) {                                                          \
            fprintf(stderr, "%s:%d: %s failed 0x%08x\n", __FILE__, __LINE__, #call, \
                    (unsigned)hr_);                                                 \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static double now_us(void)
{
    return (double)shmc_plat_clock_ns() / 1000.0;
}

/* ---- floors ------------------------------------------------------------------ */

typedef struct pp {
    _Atomic uint32_t ping, pong;
    int rounds;
    int pong_cpu; /* futex_pong's CPU (bench_bind_other), or -1 */
    shmc_plat_wword wa, wb;
    shmc_plat_waiter a, b;
} pp;

static void spin_pong(void *arg)
{
    pp *p = arg;
    for (uint32_t i = 1; i <= (uint32_t)p->rounds; i++) {
        while (atomic_load_explicit(&p->ping, memory_order_acquire) != i)
            shmc_plat_cpu_relax();
        atomic_store_explicit(&p->pong, i, memory_order_release);
    }
}

/* n round trips of the spin floor: us per round trip (after WARM more, so
 * that the new thread is running and has been moved to the other CPU). */
#define WARM 2000
/* n round trips of the spin floor: us per round trip. */
static double floor_spin_round(int n)
{
    pp p;
    memset(&p, 0, sizeof(p));
    p.rounds = n + WARM;
    shmc_plat_thread t;
    CHECK(shmc_plat_thread_create(&t, spin_pong, &p));
    double t0 = 0;
    for (uint32_t i = 1; i <= (uint32_t)p.rounds; i++) {
        if (i == WARM + 1) /* timed once the thread runs, on a CPU of its own */
            t0 = now_us();
        atomic_store_explicit(&p.ping, i, memory_order_release);
        while (atomic_load_explicit(&p.pong, memory_order_acquire) != i)
            shmc_plat_cpu_relax();
    }
    double us = (now_us() - t0) / n;
    shmc_plat_thread_join(&t);
    return us;
}

static void futex_pong(void *arg)
{
    pp *p = arg;
    if (p->pong_cpu >= 0 && bench_bind_other(p->pong_cpu) < 0)
        fprintf(stderr, "bench_calls: the wait/wake floor's threads may share a CPU\n");
    for (uint32_t i = 1; i <= (uint32_t)p->rounds; i++) {
        while (atomic_load(&p->wa.value) != i)
            shmc_plat_wait(&p->a, i - 1, SHMC_PLAT_INFINITE);
        atomic_store(&p->wb.value, i);
        shmc_plat_wake(&p->b, false);
    }
}

static fig floor_futex(void)
{
    double r[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        pp *p = calloc(1, sizeof(*p));
        p->rounds = quick ? 20 : 2000;
        int mine = bench_bind_self(); /* a cross-core wake-up (benchobj.h) */
        p->pong_cpu = mine;
        CHECK(shmc_plat_waiter_open_local(&p->a, &p->wa));
        CHECK(shmc_plat_waiter_open_local(&p->b, &p->wb));
        shmc_plat_thread t;
        CHECK(shmc_plat_thread_create(&t, futex_pong, p));
        double t0 = now_us();
        for (uint32_t i = 1; i <= (uint32_t)p->rounds; i++) {
            atomic_store(&p->wa.value, i);
            shmc_plat_wake(&p->a, false);
            while (atomic_load(&p->wb.value) != i)
                shmc_plat_wait(&p->b, i - 1, SHMC_PLAT_INFINITE);
        }
        r[k] = (now_us() - t0) / p->rounds;
        shmc_plat_thread_join(&t);
        if (mine >= 0)
            bench_unbind();
        shmc_plat_waiter_close(&p->a);
        shmc_plat_waiter_close(&p->b);
        free(p);
    }
    return median(r, ROUNDS);
}

/* ---- an object in another apartment --------------------------------------------------- */

typedef struct server {
    DWORD coinit;
    IStream *stream;
    _Atomic int ready, stop;
    shmc_plat_thread thread;
} server;

static void server_main(void *arg)
{
    server *s = arg;
    CHECK(ShmCoInitializeEx(NULL, s->coinit));
    IBench *obj = bench_obj_new();
    CHECK(ShmCoMarshalInterface(s->stream, &IID_IBench, (IUnknown *)obj, MSHCTX_INPROC, NULL,
                                MSHLFLAGS_NORMAL));
    IBench_Release(obj);
    atomic_store(&s->ready, 1);
    bool sta = s->coinit & COINIT_APARTMENTTHREADED;
    while (!atomic_load(&s->stop)) {
        if (sta)
            ShmCoProcessCalls(50);
        else
            shmc_plat_sleep_ms(5);
    }
    ShmCoUninitialize();
}

static IBench *server_start(server *s, DWORD coinit)
{
    memset(s, 0, sizeof(*s));
    s->coinit = coinit;
    CHECK(shmc_stream_create_heap(0, &s->stream));
    CHECK(shmc_plat_thread_create(&s->thread, server_main, s));
    while (!atomic_load(&s->ready))
        shmc_plat_sleep_ms(1);
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    CHECK(IStream_Seek(s->stream, zero, STREAM_SEEK_SET, NULL));
    IBench *p = NULL;
    CHECK(ShmCoUnmarshalInterface(s->stream, &IID_IBench, (void **)&p));
    return p;
}

static void server_stop(server *s, IBench *proxy)
{
    IBench_Release(proxy);
    atomic_store(&s->stop, 1);
    shmc_plat_thread_join(&s->thread);
    IStream_Release(s->stream);
}

/* running: calls back to back; floor: the spin floor's round measured
 * right before each round of them, and ratio: each round's calls over its
 * floor (the median of those, so that both sides of a ratio ran on the
 * same placement of the machine's CPUs: on a VM it changes from second to
 * second, and with it the floor, by up to 3x); asleep: the callee asleep. */
typedef struct call_times {
    fig running, floor, ratio, asleep;
    double floors[ROUNDS];
} call_times;

static call_times time_null_calls(IBench *p)
{
    call_times t;
    double r[ROUNDS], ratio[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        /* the round in CHUNKS turns of floor, then calls, a few
         * milliseconds each: both meet the same placements */
        int n = calls_per_round() / CHUNKS;
        double fl_us = 0, call_us = 0;
        for (int c = 0; c < CHUNKS; c++) {
            fl_us += floor_spin_round(n);
            for (int i = 0; i < 200; i++) /* warm up (and let the spin budget settle) */
                CHECK(IBench_Null(p));
            HRESULT bad = S_OK; /* a failed call must not pass for a fast one */
            double t0 = now_us();
            for (int i = 0; i < n; i++) {
                HRESULT hr = IBench_Null(p);
                if (FAILED(hr))
                    bad = hr;
            }
            call_us += (now_us() - t0) / n;
            CHECK(bad);
        }
        t.floors[k] = fl_us / CHUNKS;
        r[k] = call_us / CHUNKS;
        ratio[k] = r[k] / t.floors[k];
    }
    t.running = median(r, ROUNDS);
    t.ratio = median(ratio, ROUNDS);
    double fl[ROUNDS];
    memcpy(fl, t.floors, sizeof(fl));
    t.floor = median(fl, ROUNDS);

    /* the callee sleeps as soon as a call is done (no spin), and has the
     * time to: every call wakes it. What a call costs when the callee is
     * not running. */
    uint32_t saved = atomic_load(&shmc_tune.callee_spin_ns);
    atomic_store(&shmc_tune.callee_spin_ns, 0);
    shmc_plat_sleep_ms(20); /* let the callee notice and go to sleep */
    for (int k = 0; k < ROUNDS; k++)
        CHECK(bench_null_after_gap(p, (uint32_t)asleep_calls(), ASLEEP_GAP_US, &r[k]));
    t.asleep = median(r, ROUNDS);
    atomic_store(&shmc_tune.callee_spin_ns, saved);
    return t;
}

static call_times bench_null(DWORD callee, DWORD caller)
{
    CHECK(ShmCoInitializeEx(NULL, caller));
    server s;
    IBench *p = server_start(&s, callee);
    call_times t = time_null_calls(p);
    server_stop(&s, p);
    ShmCoUninitialize();
    return t;
}

static fig bench_pair(void)
{
    CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED));
    server s;
    IBench *p = server_start(&s, COINIT_APARTMENTTHREADED);
    double r[ROUNDS];
    for (int k = 0; k < ROUNDS; k++) {
        int n = calls_per_round();
        double t0 = now_us();
        for (int i = 0; i < n; i++) {
            IStream *st;
            IBench *q;
            CHECK(ShmCoMarshalInterThreadInterfaceInStream(&IID_IBench, (IUnknown *)p, &st));
            CHECK(ShmCoGetInterfaceAndReleaseStream(st, &IID_IBench, (void **)&q));
            IBench_Release(q);
        }
        r[k] = (now_us() - t0) / n;
    }
    server_stop(&s, p);
    ShmCoUninitialize();
    return median(r, ROUNDS);
}

/* ---- Wine's own ole32, for comparison (Windows build only) ------------------------------ */

#ifdef _WIN32
typedef struct ole_server {
    IStream *marshaled;
    HANDLE ready;
    DWORD tid;
    HANDLE thread;
} ole_server;

static DWORD WINAPI ole_server_main(void *arg)
{
    ole_server *s = arg;
    MSG msg;
    CoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    IStream *obj = NULL;
    CreateStreamOnHGlobal(NULL, TRUE, &obj);
    CoMarshalInterThreadInterfaceInStream(&IID_ISequentialStream, (IUnknown *)obj, &s->marshaled);
    IStream_Release(obj);
    PeekMessageA(&msg, NULL, 0, 0, PM_NOREMOVE); /* make the queue */
    SetEvent(s->ready);
    while (GetMessageA(&msg, NULL, 0, 0) > 0)
        DispatchMessageA(&msg);
    CoUninitialize();
    return 0;
}

static void bench_ole32(fig *call_us, fig *pair_us)
{
    ole_server s;
    memset(&s, 0, sizeof(s));
    s.ready = CreateEventA(NULL, FALSE, FALSE, NULL);
    CoInitializeEx(NULL, COINIT_MULTITHREADED);
    s.thread = CreateThread(NULL, 0, ole_server_main, &s, 0, &s.tid);
    WaitForSingleObject(s.ready, INFINITE);
    ISequentialStream *p = NULL;
    CHECK(CoGetInterfaceAndReleaseStream(s.marshaled, &IID_ISequentialStream, (void **)&p));
    char b;
    ULONG got;
    double r[ROUNDS];
    int n = quick ? 10 : 2000;
    for (int k = 0; k < ROUNDS; k++) {
        HRESULT bad = S_OK;
        double t0 = now_us();
        for (int i = 0; i < n; i++) {
            HRESULT hr = ISequentialStream_Read(p, &b, 0, &got);
            if (FAILED(hr))
                bad = hr;
        }
        r[k] = (now_us() - t0) / n;
        CHECK(bad);
    }
    *call_us = median(r, ROUNDS);
    for (int k = 0; k < ROUNDS; k++) {
        double t0 = now_us();
        for (int i = 0; i < n; i++) {
            IStream *st;
            ISequentialStream *q;
            CHECK(
                CoMarshalInterThreadInterfaceInStream(&IID_ISequentialStream, (IUnknown *)p, &st));
            CHECK(CoGetInterfaceAndReleaseStream(st, &IID_ISequentialStream, (void **)&q));
            ISequentialStream_Release(q);
        }
        r[k] = (now_us() - t0) / n;
    }
    *pair_us = median(r, ROUNDS);
    ISequentialStream_Release(p);
    PostThreadMessageA(s.tid, WM_QUIT, 0, 0);
    WaitForSingleObject(s.thread, INFINITE);
    CloseHandle(s.thread);
    CloseHandle(s.ready);
    CoUninitialize();
}
#endif

static void print_tsv(fig spin, fig futex, call_times mta_sta, call_times sta_mta, fig pair)
{
    btsv_header("bench_calls", shmc_plat_cpu_count(), quick);
    btsv_row("floor.spin", spin.med, spin.lo, spin.hi, "us", "floor", "spin ping-pong, 2 threads");
    btsv_row("floor.wait", futex.med, futex.lo, futex.hi, "us", "floor",
             "wait/wake ping-pong, 2 threads on 2 CPUs (futex; Windows: WaitOnAddress)");
    btsv_row("null.mta_sta.running", mta_sta.running.med, mta_sta.running.lo, mta_sta.running.hi,
             "us", "call", "null call MTA->STA, both running");
    btsv_ratio("null.mta_sta.running", "floor.spin", mta_sta.ratio.med, "spin floor");
    btsv_row("null.mta_sta.asleep", mta_sta.asleep.med, mta_sta.asleep.lo, mta_sta.asleep.hi, "us",
             "call", "null call MTA->STA, callee asleep (" ASLEEP_GAP_TEXT " between calls)");
    btsv_ratio("null.mta_sta.asleep", "floor.wait", mta_sta.asleep.med / futex.med,
               "wait/wake floor");
    btsv_row("null.sta_mta.running", sta_mta.running.med, sta_mta.running.lo, sta_mta.running.hi,
             "us", "call", "null call STA->MTA, both running");
    btsv_ratio("null.sta_mta.running", "floor.spin", sta_mta.ratio.med, "spin floor");
    btsv_row("null.sta_mta.asleep", sta_mta.asleep.med, sta_mta.asleep.lo, sta_mta.asleep.hi, "us",
             "call", "null call STA->MTA, callee asleep (" ASLEEP_GAP_TEXT " between calls)");
    btsv_ratio("null.sta_mta.asleep", "floor.wait", sta_mta.asleep.med / futex.med,
               "wait/wake floor");
    btsv_row("pair", pair.med, pair.lo, pair.hi, "us", "call",
             "marshal + unmarshal pair (InterThread, proxy)");
#ifdef _WIN32
    fig ole_call, ole_pair;
    bench_ole32(&ole_call, &ole_pair);
    btsv_row("ole32.null.mta_sta", ole_call.med, ole_call.lo, ole_call.hi, "us", "ref",
             "Wine ole32 null call MTA->STA");
    btsv_ratio("null.mta_sta.running", "ole32.null.mta_sta", mta_sta.running.med / ole_call.med,
               "Wine ole32");
    btsv_row("ole32.pair", ole_pair.med, ole_pair.lo, ole_pair.hi, "us", "ref",
             "Wine ole32 marshal + unmarshal pair");
    btsv_ratio("pair", "ole32.pair", pair.med / ole_pair.med, "Wine ole32");
#endif
}

int main(int argc, char **argv)
{
    bool tsv = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--tsv"))
            tsv = true;
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else {
            fprintf(stderr, "usage: bench_calls [--quick] [--tsv] [--only mta-sta|sta-mta]\n");
            return 2;
        }
    }
    CHECK(ShmCoRegisterProxyStubs(&bench_ProxyFileInfo));
    if (only) { /* for profiling one figure */
        DWORD callee = !strcmp(only, "sta-mta") ? COINIT_MULTITHREADED : COINIT_APARTMENTTHREADED;
        DWORD caller =
            callee == COINIT_MULTITHREADED ? COINIT_APARTMENTTHREADED : COINIT_MULTITHREADED;
        for (int i = 0; i < 5; i++) {
            call_times t = bench_null(callee, caller);
            printf("%s: running %.3f us, asleep %.3f us, %.2fx the spin floor beside it\n", only,
                   t.running.med, t.asleep.med, t.ratio.med);
        }
        return 0;
    }
    fig futex = floor_futex();
    call_times mta_sta = bench_null(COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED);
    call_times sta_mta = bench_null(COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED);
    /* the spin floor: every round measured beside the calls */
    double floors[2 * ROUNDS];
    memcpy(floors, mta_sta.floors, sizeof(mta_sta.floors));
    memcpy(floors + ROUNDS, sta_mta.floors, sizeof(sta_mta.floors));
    fig spin = median(floors, 2 * ROUNDS);
    fig pair = bench_pair();
    if (tsv) {
        print_tsv(spin, futex, mta_sta, sta_mta, pair);
        return 0;
    }

    printf("shmcom calls between apartments (median of %d rounds%s, %u CPUs)\n", ROUNDS,
           quick ? ", --quick: too short to mean anything" : "", shmc_plat_cpu_count());
    printf("%-62s %10s  %s\n", "", "us/op", "ratio");
    printf("%-62s %10.3f\n", "floor: spin ping-pong, 2 threads", spin.med);
#ifdef _WIN32
    printf("%-62s %10.3f\n", "floor: WaitOnAddress ping-pong, 2 threads on 2 CPUs", futex.med);
#else
    printf("%-62s %10.3f\n", "floor: futex ping-pong, 2 threads on 2 CPUs", futex.med);
#endif
    printf("%-62s %10.3f  %5.2fx spin floor\n", "null call MTA->STA, both running",
           mta_sta.running.med, mta_sta.ratio.med);
    printf("%-62s %10.3f  %5.2fx wait/wake floor\n",
           "null call MTA->STA, callee asleep (" ASLEEP_GAP_TEXT " between calls)",
           mta_sta.asleep.med, mta_sta.asleep.med / futex.med);
    printf("%-62s %10.3f  %5.2fx spin floor\n", "null call STA->MTA, both running",
           sta_mta.running.med, sta_mta.ratio.med);
    printf("%-62s %10.3f  %5.2fx wait/wake floor\n",
           "null call STA->MTA, callee asleep (" ASLEEP_GAP_TEXT " between calls)",
           sta_mta.asleep.med, sta_mta.asleep.med / futex.med);
    printf("%-62s %10.3f\n", "marshal + unmarshal pair (InterThread, proxy)", pair.med);
#ifdef _WIN32
    fig ole_call, ole_pair;
    bench_ole32(&ole_call, &ole_pair);
    printf("%-62s %10.3f  shmcom %.1fx faster\n", "Wine ole32 null call MTA->STA", ole_call.med,
           ole_call.med / mta_sta.running.med);
    printf("%-62s %10.3f  shmcom %.1fx faster\n", "Wine ole32 marshal + unmarshal pair",
           ole_pair.med, ole_pair.med / pair.med);
#endif
    return 0;
}
