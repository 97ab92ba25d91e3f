/*
 * test_killstress.c - peers killed at random points of a call stress.
 *
 * Each round starts a child that either calls this process's object
 * (several threads: scalars, arrays both ways and in bulk regions, strings,
 * [out] arrays and objects, remote QueryInterface, callbacks into an
 * object of its own) or serves an object that this process calls in the
 * same way; rounds alternate between the two. The child dies by SIGKILL /
 * TerminateProcess at a point a seeded generator picks: a delay in
 * microseconds after which this process kills it, or a number of calls
 * after which it kills itself.
 *
 * After each round the survivor (this process) must not be hung (every
 * wait is bounded by a generous watchdog that fails the test; no speed is
 * asserted), must not have crashed, must have had every call answered
 * with the right result or RPC_E_SERVER_DIED (or CO_E_OBJNOTCONNECTED for
 * an object whose process died before it was taken), and must be back to
 * its baseline: the object's references, live objects, stub managers,
 * interface stubs, threads, handles, and no region of the dead child in
 * /dev/shm.
 *
 *   SHMCOM_STRESS_SEED=n    rerun with that seed (printed at the start)
 *   SHMCOM_STRESS_ROUNDS=n  that many rounds (default: 300 natively, 100
 *                           under ASan, 60 under Wine; printed)
 */
#define COBJMACROS
#include "callee.h"
#include "calltest.h"
#include "regionhdr.h"
#include "rt.h"
#include "shstream.h"
#include "tobj.h"
#include "xpeer.h"

#include <stdlib.h>
#include <string.h>

/* The watchdog for everything a round waits for. */
#define WATCHDOG_MS 30000u

enum { MAX_THREADS = 4 };

/* What the parent tells a child (mb->cmd). */
enum {
    KILL_BY_PARENT = 0, /* the parent kills it */
    KILL_SELF = 1,      /* it kills itself after mb->arg[0] calls */
};

/* Kills the calling process at once, as SIGKILL / TerminateProcess does. */
static void kill_self(void)
{
    shmc_plat_procid me;
    shmc_plat_proc p;
    shmc_plat_proc_self(&me);
    if (SUCCEEDED(shmc_plat_proc_open(&p, &me)))
        shmc_plat_proc_kill(&p);
    abort(); /* (not reached) */
}

/* A calling thread: checked calls until the peer dies (or stop). */
typedef struct stress_thread {
    ICallee *p;
    ICallback *cb;
    xpeer_mb *mb;
    uint64_t rng;
    bool kill_at_count; /* (client child) kill the process at mb->arg[0] calls */
    _Atomic uint32_t *stop;
    uint64_t calls, died, wrong;
    _Atomic int done;
} stress_thread;

static bool peer_gone(HRESULT hr)
{
    return hr == RPC_E_SERVER_DIED || hr == CO_E_OBJNOTCONNECTED;
}

static void stress_main(void *arg)
{
    stress_thread *t = arg;
    ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    while (!atomic_load(t->stop)) {
        HRESULT hr = xpeer_good_call(t->p, t->cb, &t->rng, "stress");
        uint64_t n = atomic_fetch_add(&t->mb->calls, 1) + 1;
        if (t->kill_at_count && n == t->mb->arg[0])
            kill_self();
        t->calls++;
        if (peer_gone(hr)) {
            t->died++;
            break;
        }
        if (hr != S_OK) {
            t->wrong++;
            if (t->wrong < 5)
                fprintf(stderr, "stress: a call returned 0x%08x\n", (unsigned)hr);
        }
    }
    ShmCoUninitialize();
    atomic_store(&t->done, 1);
}

/* ---- children ---------------------------------------------------------------------- */

/*
 * "client": calls the parent's object (its table record in the mailbox
 * stream) from mb->threads threads, each with a callback object of its
 * own, until it is killed (by the parent, or by itself at call arg[0]).
 */
static int child_client(const char *arg)
{
    xpeer x;
    CHILD_CHECK(xpeer_open(&x, arg));
    CHILD_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ICallee *p = NULL;
    CHILD_CHECK(ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p) == S_OK);
    uint32_t n = x.mb->threads;
    CHILD_CHECK(n >= 1 && n <= MAX_THREADS);
    stress_thread st[MAX_THREADS];
    shmc_plat_thread th[MAX_THREADS];
    _Atomic uint32_t stop = 0;
    for (uint32_t i = 0; i < n; i++) {
        callee *cb = callee_new(100 + (LONG)i, NULL);
        CHILD_CHECK(cb);
        memset(&st[i], 0, sizeof(st[i]));
        st[i].p = p;
        st[i].cb = &cb->ICallback_iface;
        st[i].mb = x.mb;
        st[i].rng = x.mb->seed * 31 + i;
        st[i].kill_at_count = x.mb->cmd == KILL_SELF;
        st[i].stop = &stop;
        CHILD_CHECK(shmc_plat_thread_create(&th[i], stress_main, &st[i]) == S_OK);
    }
    atomic_store(&x.mb->ready, 1);
    for (uint32_t i = 0; i < n; i++)
        shmc_plat_thread_join(&th[i]);
    /* the parent outlives us: we only get here if it died */
    return 3;
}

/*
 * "server": an object in an apartment of mb->coinit, marshaled NORMAL into
 * stream2 (at its start), served until the process is killed (by the
 * parent, or by itself once the parent counted arg[0] calls).
 */
static int child_server(const char *arg)
{
    xpeer x;
    CHILD_CHECK(xpeer_open(&x, arg));
    bool sta = x.mb->coinit == COINIT_APARTMENTTHREADED;
    CHILD_CHECK(ShmCoInitializeEx(NULL, x.mb->coinit) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    char name[SHM_MAX_NAME + 1];
    memcpy(name, x.mb->stream2, sizeof(name));
    name[SHM_MAX_NAME] = 0;
    IStream *s2 = NULL;
    CHILD_CHECK(ShmOpenStreamOnSharedMemory(name, 0, &s2) == S_OK);
    callee *obj = callee_new(1, NULL);
    CHILD_CHECK(obj);
    CHILD_CHECK(ShmCoMarshalInterface(s2, &IID_ICallee, (IUnknown *)&obj->ICallee_iface,
                                      MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL) == S_OK);
    atomic_store(&x.mb->ready, 1);
    bool self = x.mb->cmd == KILL_SELF;
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        if (self && atomic_load(&x.mb->calls) >= x.mb->arg[0])
            kill_self();
        if (sta)
            ShmCoProcessCalls(1);
        else
            shmc_plat_thread_yield();
        CHILD_CHECK(tsupport_ms_since(start) < 120000); /* orphaned: go */
    }
}

/* ---- the survivor ------------------------------------------------------------------ */

typedef struct survivor {
    xpeer x;
    callee *obj;  /* exported, in the MTA (client-killing rounds) */
    int obj_refs; /* its references with nothing but the table record */
    IStream *s2;  /* server children write their records here */
    xpeer_counts base;
    uint64_t seed;
} survivor;

/* The round's kill: a delay, or a number of calls (mb->cmd, mb->arg[0]). */
typedef struct kill_plan {
    bool self;
    uint64_t calls;    /* self: after this many calls */
    uint32_t delay_us; /* parent: after this long ... */
    bool from_spawn;   /* ... counted from the spawn (else from ready) */
} kill_plan;

static void plan_kill(kill_plan *k, uint64_t *rng)
{
    uint64_t r = xpeer_rand(rng);
    memset(k, 0, sizeof(*k));
    k->self = r % 2;
    k->calls = 1 + (r >> 8) % 400;
    k->delay_us = (uint32_t)((r >> 20) % 30000);
    k->from_spawn = !k->self && (r >> 40) % 8 == 0; /* (a self-kill needs calls) */
}

/* Busy-waits the microseconds (sleeping the whole milliseconds). */
static void wait_us(uint64_t start_ns, uint32_t us)
{
    uint64_t until = start_ns + (uint64_t)us * 1000u;
    while (shmc_plat_clock_ns() + 2000000u < until)
        shmc_plat_sleep_ms(1);
    while (shmc_plat_clock_ns() < until)
        shmc_plat_cpu_relax();
}

/* Waits for the child to be ready or gone (bounded). */
static void await_ready(survivor *s, shmc_plat_proc *child)
{
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&s->x.mb->ready) && shmc_plat_proc_wait(child, 0) != S_OK) {
        if (tsupport_ms_since(start) > WATCHDOG_MS)
            fail_msg("the child neither got ready nor died");
        shmc_plat_sleep_ms(1);
    }
}

/* Kills (per the plan) and reaps the child; its exit must be the kill's. */
static void finish_child(survivor *s, shmc_plat_proc *child, const kill_plan *k, uint64_t t0)
{
    if (!k->self) {
        if (!k->from_spawn)
            t0 = shmc_plat_clock_ns();
        wait_us(t0, k->delay_us);
        assert_hr(shmc_plat_proc_kill(child), S_OK);
    }
    HRESULT hr = shmc_plat_proc_wait(child, WATCHDOG_MS);
    if (hr != S_OK) {
        shmc_plat_proc_kill(child);
        shmc_plat_proc_wait(child, 10000);
        fail_msg("the child did not die (self-kill after %llu calls; %llu made)",
                 (unsigned long long)k->calls, (unsigned long long)atomic_load(&s->x.mb->calls));
    }
    int code = child->exit_code;
    shmc_plat_proc_close(child);
    /* killed (128 + SIGKILL; TerminateProcess gives the same), not a
     * child's own check failing nor a crash */
    if (code != 137)
        fail_msg("the child exited with %d instead of being killed", code);
}

/* What the round is doing, for failure messages. */
static char round_desc[160];

/* After a round: back to the baseline, nothing of the dead child left. */
static void check_baseline(survivor *s, uint64_t pid)
{
    uint64_t t_base = shmc_plat_clock_ns();
    xpeer_counts_await(&s->base, WATCHDOG_MS);
    if (getenv("SHMCOM_STRESS_VERBOSE"))
        print_message("  baseline after %.1f ms\n", tsupport_ms_since(t_base));
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(&s->obj->refs) != s->obj_refs) {
        if (tsupport_ms_since(start) > WATCHDOG_MS)
            fail_msg("the object holds %d references, not %d", atomic_load(&s->obj->refs),
                     s->obj_refs);
        shmc_plat_sleep_ms(1);
    }
    if (xpeer_regions_of(pid) != 0)
        fail_msg("%s: the dead child left regions behind", round_desc);
}

/* A child killed while it starts may die before this process has a
 * connection to it, whose watcher would remove the names it left (its
 * endpoint, a connection region not yet accepted): nobody here can know of
 * them. They are the periodic reclaim's (shmc_reclaim_maybe, which any
 * shmcom process runs when it creates regions): run it now. */
static void reclaim_unseen(void)
{
    assert_true(SUCCEEDED(shmc_reclaim_stale(NULL)));
}

/* A round that kills the client: our object must get back every reference
 * the dead client held. */
static void round_kill_client(survivor *s, uint64_t *rng, const kill_plan *k)
{
    atomic_store(&s->x.mb->ready, 0);
    atomic_store(&s->x.mb->calls, 0);
    s->x.mb->threads = 1 + (uint32_t)(xpeer_rand(rng) % 3);
    s->x.mb->seed = xpeer_rand(rng);
    s->x.mb->cmd = k->self ? KILL_SELF : KILL_BY_PARENT;
    s->x.mb->arg[0] = k->calls;
    shmc_plat_proc child;
    uint64_t t0 = shmc_plat_clock_ns();
    xpeer_spawn(&child, "client", s->x.name);
    uint64_t pid = child.id.pid;
    if (!k->from_spawn)
        await_ready(s, &child);
    finish_child(s, &child, k, t0);
    if (k->from_spawn)
        reclaim_unseen();
    check_baseline(s, pid);
}

/* A round that kills the server: our calls end with RPC_E_SERVER_DIED, and
 * our callback objects get back what the dead server held. */
static void round_kill_server(survivor *s, uint64_t *rng, const kill_plan *k)
{
    atomic_store(&s->x.mb->ready, 0);
    atomic_store(&s->x.mb->calls, 0);
    s->x.mb->coinit = xpeer_rand(rng) % 2 ? COINIT_APARTMENTTHREADED : COINIT_MULTITHREADED;
    s->x.mb->cmd = k->self ? KILL_SELF : KILL_BY_PARENT;
    s->x.mb->arg[0] = k->calls;
    /* (what the last server wrote is left for this one to overwrite: a
     * server that dies first leaves that dead one's record, which must
     * unmarshal to an error) */
    shmc_plat_proc child;
    uint64_t t0 = shmc_plat_clock_ns();
    xpeer_spawn(&child, "server", s->x.name);
    uint64_t pid = child.id.pid;
    if (k->from_spawn) {
        finish_child(s, &child, k, t0);
        reclaim_unseen();
        check_baseline(s, pid);
        return;
    }
    await_ready(s, &child);
    tsupport_stream_seek(s->s2, 0);
    ICallee *p = NULL;
    HRESULT hr = ShmCoUnmarshalInterface(s->s2, &IID_ICallee, (void **)&p);
    if (hr != S_OK) {
        /* only if it died first (a self-kill does not come before a call) */
        if (!peer_gone(hr) && hr != RPC_E_INVALID_OBJREF && hr != STG_E_READFAULT)
            fail_msg("unmarshal: 0x%08x", (unsigned)hr);
        assert_null(p);
        k = &(kill_plan){false, 0, 0, false};
        finish_child(s, &child, k, t0);
        check_baseline(s, pid);
        return;
    }
    uint32_t n = 1 + (uint32_t)(xpeer_rand(rng) % 3);
    stress_thread st[MAX_THREADS];
    shmc_plat_thread th[MAX_THREADS];
    callee *cbs[MAX_THREADS];
    _Atomic uint32_t stop = 0;
    for (uint32_t i = 0; i < n; i++) {
        cbs[i] = callee_new(200 + (LONG)i, NULL);
        assert_non_null(cbs[i]);
        memset(&st[i], 0, sizeof(st[i]));
        st[i].p = p;
        st[i].cb = &cbs[i]->ICallback_iface;
        st[i].mb = s->x.mb;
        st[i].rng = xpeer_rand(rng);
        st[i].stop = &stop;
        assert_hr(shmc_plat_thread_create(&th[i], stress_main, &st[i]), S_OK);
    }
    if (!k->self)
        t0 = shmc_plat_clock_ns();
    finish_child(s, &child, k, t0);
    /* every caller hears of the death, within the watchdog */
    uint64_t start = shmc_plat_clock_ns();
    for (uint32_t i = 0; i < n; i++) {
        while (!atomic_load(&st[i].done)) {
            if (tsupport_ms_since(start) > WATCHDOG_MS)
                fail_msg("a caller of the dead server hangs");
            shmc_plat_sleep_ms(1);
        }
        shmc_plat_thread_join(&th[i]);
        assert_int_equal(st[i].wrong, 0);
        assert_int_equal(st[i].died, 1);
    }
    assert_hr(ICallee_Null(p), RPC_E_SERVER_DIED);
    assert_int_equal(ICallee_Release(p), 0);
    for (uint32_t i = 0; i < n; i++) {
        /* what the dead server held of it is given back */
        start = shmc_plat_clock_ns();
        while (atomic_load(&cbs[i]->refs) != 1) {
            if (tsupport_ms_since(start) > WATCHDOG_MS)
                fail_msg("a callback object keeps %d references", atomic_load(&cbs[i]->refs));
            shmc_plat_sleep_ms(1);
        }
        assert_int_equal(ICallee_Release(&cbs[i]->ICallee_iface), 0);
    }
    check_baseline(s, pid);
}

static uint64_t env_u64(const char *name, uint64_t fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : fallback;
}

static void kill_stress(void **state)
{
    (void)state;
    survivor s;
    memset(&s, 0, sizeof(s));
    uint64_t seed = 0;
    assert_hr(shmc_plat_random(&seed, sizeof(seed)), S_OK);
    seed = env_u64("SHMCOM_STRESS_SEED", seed % 1000000000u);
#if defined(_WIN32)
    uint64_t rounds = 60;
#elif defined(__SANITIZE_ADDRESS__)
    uint64_t rounds = 100;
#else
    uint64_t rounds = 300;
#endif
    rounds = env_u64("SHMCOM_STRESS_ROUNDS", rounds);
    print_message("kill stress: seed %llu, %llu rounds (SHMCOM_STRESS_SEED=%llu reruns it)\n",
                  (unsigned long long)seed, (unsigned long long)rounds, (unsigned long long)seed);
    fflush(stdout);

    assert_hr(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo), S_OK);
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    xpeer_create(&s.x);
    tsupport_name(s.x.mb->stream2, sizeof(s.x.mb->stream2), "ks2");
    assert_hr(ShmCreateStreamOnSharedMemory(s.x.mb->stream2, 4096, 0, &s.s2), S_OK);
    s.obj = callee_new(1, NULL);
    assert_non_null(s.obj);
    assert_hr(ShmCoMarshalInterface(s.x.stream, &IID_ICallee, (IUnknown *)&s.obj->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_TABLESTRONG),
              S_OK);
    /* interface stubs a client makes by remote QueryInterface stay with
     * the object: made now, so that the baseline has them */
    IStream *warm = NULL;
    assert_hr(shmc_stream_create_heap(0, &warm), S_OK);
    assert_hr(ShmCoMarshalInterface(warm, &IID_ICallback, (IUnknown *)&s.obj->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
              S_OK);
    tstream_rewind(warm);
    assert_hr(ShmCoReleaseMarshalData(warm), S_OK);
    IStream_Release(warm);
    s.obj_refs = atomic_load(&s.obj->refs);
    xpeer_counts_take(&s.base);

    uint64_t rng = seed ^ 0x5DEECE66Dull;
    uint64_t start = shmc_plat_clock_ns(), calls = 0;
    unsigned by_self = 0, from_spawn = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        kill_plan k;
        plan_kill(&k, &rng);
        snprintf(round_desc, sizeof(round_desc), "round %llu: %s killed %s %llu %s\n",
                 (unsigned long long)r, r % 2 ? "server" : "client",
                 k.self ? "by itself after" : "after",
                 (unsigned long long)(k.self ? k.calls : k.delay_us),
                 k.self         ? "calls"
                 : k.from_spawn ? "us from its start"
                                : "us from ready");
        if (getenv("SHMCOM_STRESS_VERBOSE"))
            print_message("%s", round_desc);
        by_self += k.self;
        from_spawn += !k.self && k.from_spawn;
        if (r % 2 == 0)
            round_kill_client(&s, &rng, &k);
        else
            round_kill_server(&s, &rng, &k);
        calls += atomic_load(&s.x.mb->calls);
    }
    print_message("kill stress: %llu rounds in %.1f s, %llu calls; %u self-kills, %u kills "
                  "during start-up\n",
                  (unsigned long long)rounds, tsupport_ms_since(start) / 1000.0,
                  (unsigned long long)calls, by_self, from_spawn);

    tstream_rewind(s.x.stream);
    assert_hr(ShmCoReleaseMarshalData(s.x.stream), S_OK);
    assert_int_equal(ICallee_Release(&s.obj->ICallee_iface), 0);
    IStream_Release(s.s2);
    xpeer_free(&s.x);
    ShmCoUninitialize();
}

int main(int argc, char **argv)
{
    static const tsupport_child children[] = {
        {"client", child_client},
        {"server", child_server},
        {NULL, NULL},
    };
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(kill_stress, xpeer_teardown),
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
