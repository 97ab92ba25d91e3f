/*
 * test_wait.c - wait/wake on a shared word: between threads, between
 * processes (10,000 round trips, counted exactly), timeouts, and words a
 * hostile peer scribbled on. On Windows the words of one process wait on
 * their address (WaitOnAddress); the tests of such words run a second
 * time with that routed to fail, on the unnamed semaphore a local word
 * falls back to.
 */
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

/* No single wait in these tests should take this long; one that does
 * means a lost wake-up, and fails the test instead of hanging it. */
#define LOST_WAKEUP_MS 20000u

/* Waits until *word == want, or fails. */
static HRESULT wait_for(shmc_plat_waiter *w, uint32_t want)
{
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        uint32_t v = atomic_load(&w->word->value);
        if (v == want)
            return S_OK;
        HRESULT hr = shmc_plat_wait(w, v, LOST_WAKEUP_MS);
        if (FAILED(hr))
            return hr;
        if (tsupport_ms_since(start) > LOST_WAKEUP_MS)
            return S_FALSE;
    }
}

static void timeout_is_reported(void **state)
{
    (void)state;
    static shmc_plat_wword word;
    shmc_plat_waiter w;
    assert_hr(shmc_plat_waiter_open_local(&w, &word), S_OK);
    atomic_store(&word.value, 7);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_wait(&w, 7, 200), S_FALSE);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= 199.0); /* never early */
    assert_true(ms < 5000.0); /* and it does come back */
    assert_int_equal(atomic_load(&word.waiters), 0);
    /* timeout 0: a poll */
    assert_hr(shmc_plat_wait(&w, 7, 0), S_FALSE);
    shmc_plat_waiter_close(&w);
}

static void changed_value_returns_at_once(void **state)
{
    (void)state;
    static shmc_plat_wword word;
    shmc_plat_waiter w;
    assert_hr(shmc_plat_waiter_open_local(&w, &word), S_OK);
    atomic_store(&word.value, 1);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_wait(&w, 2, SHMC_PLAT_INFINITE), S_OK);
    assert_true(tsupport_ms_since(t0) < 5000.0);
    shmc_plat_waiter_close(&w);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct sleeper {
    shmc_plat_waiter *w;
    _Atomic int woke;
    HRESULT hr;
} sleeper;

static void sleeper_main(void *arg)
{
    sleeper *s = arg;
    s->hr = wait_for(s->w, 1);
    atomic_fetch_add(&s->woke, 1);
}

static void wake_all_wakes_every_thread(void **state)
{
    (void)state;
    enum { N = 4 };
    static shmc_plat_wword word;
    shmc_plat_waiter w;
    shmc_plat_thread t[N];
    sleeper s[N];
    atomic_store(&word.value, 0);
    assert_hr(shmc_plat_waiter_open_local(&w, &word), S_OK);
    for (int i = 0; i < N; i++) {
        s[i].w = &w;
        atomic_store(&s[i].woke, 0);
        s[i].hr = E_FAIL;
        assert_hr(shmc_plat_thread_create(&t[i], sleeper_main, &s[i]), S_OK);
    }
    /* Wait until all four have announced themselves, so that the wake
     * below really finds sleepers (or threads about to sleep). */
    uint64_t t0 = shmc_plat_clock_ns();
    while (atomic_load(&word.waiters) < N && tsupport_ms_since(t0) < LOST_WAKEUP_MS)
        shmc_plat_thread_yield();
    assert_int_equal(atomic_load(&word.waiters), N);
    atomic_store(&word.value, 1);
    shmc_plat_wake(&w, true);
    for (int i = 0; i < N; i++) {
        shmc_plat_thread_join(&t[i]);
        assert_hr(s[i].hr, S_OK);
        assert_int_equal(atomic_load(&s[i].woke), 1);
    }
    assert_int_equal(atomic_load(&word.waiters), 0);
    shmc_plat_waiter_close(&w);
}

typedef struct pingpong {
    shmc_plat_waiter *a, *b;
    uint32_t rounds;
    uint32_t seen;
    HRESULT hr;
} pingpong;

static void pong_thread(void *arg)
{
    pingpong *pp = arg;
    for (uint32_t i = 1; i <= pp->rounds; i++) {
        pp->hr = wait_for(pp->a, i);
        if (pp->hr != S_OK)
            return;
        pp->seen++;
        atomic_store(&pp->b->word->value, i);
        shmc_plat_wake(pp->b, false);
    }
}

static void thread_ping_pong(void **state)
{
    (void)state;
    static shmc_plat_wword wa, wb;
    shmc_plat_waiter a, b;
    shmc_plat_thread t;
    atomic_store(&wa.value, 0);
    atomic_store(&wb.value, 0);
    assert_hr(shmc_plat_waiter_open_local(&a, &wa), S_OK);
    assert_hr(shmc_plat_waiter_open_local(&b, &wb), S_OK);
    pingpong pp = {&a, &b, 10000, 0, S_OK};
    assert_hr(shmc_plat_thread_create(&t, pong_thread, &pp), S_OK);
    for (uint32_t i = 1; i <= pp.rounds; i++) {
        atomic_store(&wa.value, i);
        shmc_plat_wake(&a, false);
        assert_hr(wait_for(&b, i), S_OK);
    }
    shmc_plat_thread_join(&t);
    assert_hr(pp.hr, S_OK);
    assert_int_equal(pp.seen, pp.rounds);
    shmc_plat_waiter_close(&a);
    shmc_plat_waiter_close(&b);
}

/* ---- processes ------------------------------------------------------------ */

/* Region layout for the process ping-pong. */
enum { OFF_A = 0, OFF_B = 8, OFF_COUNT = 16, OFF_ROUNDS = 24 };

static int child_pong(const char *name)
{
    shmc_plat_region r;
    shmc_plat_waiter a, b;
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&r, name)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_waiter_open(&a, &r, OFF_A)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_waiter_open(&b, &r, OFF_B)));
    _Atomic uint32_t *count = (_Atomic uint32_t *)((char *)r.base + OFF_COUNT);
    uint32_t rounds = atomic_load((_Atomic uint32_t *)((char *)r.base + OFF_ROUNDS));
    for (uint32_t i = 1; i <= rounds; i++) {
        /* exactly the next value: nothing skipped, nothing repeated */
        CHILD_CHECK(wait_for(&a, i) == S_OK);
        atomic_fetch_add(count, 1);
        atomic_store(&b.word->value, i);
        shmc_plat_wake(&b, false);
    }
    shmc_plat_waiter_close(&a);
    shmc_plat_waiter_close(&b);
    shmc_plat_region_close(&r);
    return 0;
}

static void process_ping_pong(void **state)
{
    (void)state;
    enum { ROUNDS = 10000 };
    char name[64];
    shmc_plat_region r;
    shmc_plat_waiter a, b;
    shmc_plat_proc child;
    tsupport_name(name, sizeof(name), "pingpong");
    assert_hr(shmc_plat_region_create(&r, name, 4096), S_OK);
    atomic_store((_Atomic uint32_t *)((char *)r.base + OFF_ROUNDS), ROUNDS);
    assert_hr(shmc_plat_waiter_open(&a, &r, OFF_A), S_OK);
    assert_hr(shmc_plat_waiter_open(&b, &r, OFF_B), S_OK);
    tsupport_spawn(&child, "pong", name);
    for (uint32_t i = 1; i <= ROUNDS; i++) {
        atomic_store(&a.word->value, i);
        shmc_plat_wake(&a, false);
        HRESULT hr = wait_for(&b, i);
        if (hr != S_OK) {
            shmc_plat_proc_kill(&child);
            tsupport_join(&child, 10000);
            fail_msg("round %u: 0x%08x", i, (unsigned)hr);
        }
    }
    assert_int_equal(tsupport_join(&child, 60000), 0);
    assert_int_equal(atomic_load((_Atomic uint32_t *)((char *)r.base + OFF_COUNT)), ROUNDS);
    assert_int_equal(atomic_load(&b.word->value), ROUNDS);
    shmc_plat_waiter_close(&a);
    shmc_plat_waiter_close(&b);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

/* ---- hostile and invalid words --------------------------------------------- */

static void scribbled_waiter_count_is_harmless(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r;
    shmc_plat_waiter w;
    tsupport_name(name, sizeof(name), "scribble");
    assert_hr(shmc_plat_region_create(&r, name, 4096), S_OK);
    assert_hr(shmc_plat_waiter_open(&w, &r, 64), S_OK);
    static const uint32_t junk[] = {0xFFFFFFFFu, 0x80000000u, 1000000u, 1u};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        atomic_store(&w.word->waiters, junk[i]);
        shmc_plat_wake(&w, true); /* claims of sleepers that do not exist */
        shmc_plat_wake(&w, false);
        /* a later wait may wake spuriously but never sleeps past its time */
        uint64_t t0 = shmc_plat_clock_ns();
        HRESULT hr = shmc_plat_wait(&w, atomic_load(&w.word->value), 50);
        assert_true(hr == S_OK || hr == S_FALSE);
        assert_true(tsupport_ms_since(t0) < 5000.0);
    }
    shmc_plat_waiter_close(&w);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

static void waiter_open_checks_bounds(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r;
    shmc_plat_waiter w;
    tsupport_name(name, sizeof(name), "bounds");
    assert_hr(shmc_plat_region_create(&r, name, 4096), S_OK);
    assert_hr(shmc_plat_waiter_open(&w, &r, 4), E_INVALIDARG);          /* misaligned */
    assert_hr(shmc_plat_waiter_open(&w, &r, r.size), E_INVALIDARG);     /* past the end */
    assert_hr(shmc_plat_waiter_open(&w, &r, r.size - 4), E_INVALIDARG); /* straddles */
    assert_hr(shmc_plat_waiter_open(&w, &r, SIZE_MAX - 7), E_INVALIDARG);
    assert_hr(shmc_plat_waiter_open(&w, NULL, 0), E_INVALIDARG);
    assert_hr(shmc_plat_waiter_open(NULL, &r, 0), E_INVALIDARG);
    assert_hr(shmc_plat_waiter_open(&w, &r, r.size - 8), S_OK); /* the last word */
    shmc_plat_waiter_close(&w);
    shmc_plat_waiter_close(&w);
    assert_hr(shmc_plat_waiter_open_local(&w, NULL), E_INVALIDARG);
    assert_hr(shmc_plat_waiter_open_local(&w, (shmc_plat_wword *)((char *)r.base + 4)),
              E_INVALIDARG);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

/* ---- Windows: WaitOnAddress, and the semaphore where it is missing -------------- */

#if defined(_WIN32)
#include <windows.h>

/* The local-word tests again on the fallback: every local waiter opened
 * from here on takes a semaphore. */
static int setup_no_woa(void **state)
{
    (void)state;
    return shmc_plat_fault_set("WaitOnAddress", 1, ERROR_PROC_NOT_FOUND) == S_OK ? 0 : -1;
}

static int teardown_no_woa(void **state)
{
    (void)state;
    shmc_plat_fault_clear_all();
    return 0;
}

/* The HANDLE a waiter holds (NULL: none). */
static HANDLE waiter_handle(const shmc_plat_waiter *w)
{
    HANDLE h;
    memcpy(&h, w->opaque, sizeof(h));
    return h;
}

/* A local waiter holds no kernel object (an apartment, a thread and a
 * detached connection's 17 each have one), unless WaitOnAddress is
 * missing: then each holds its semaphore until it is closed. (Wine's
 * GetProcessHandleCount says 0 whatever is open, so the handle is looked
 * at in the waiter.) */
static void local_waiters_hold_no_handle(void **state)
{
    (void)state;
    enum { N = 64 };
    static shmc_plat_wword words[N];
    shmc_plat_waiter w[N];
    HANDLE h[N];
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            assert_int_equal(setup_no_woa(NULL), 0);
        for (int i = 0; i < N; i++) {
            assert_hr(shmc_plat_waiter_open_local(&w[i], &words[i]), S_OK);
            h[i] = waiter_handle(&w[i]);
            DWORD flags;
            if (pass == 0)
                assert_null(h[i]);
            else
                assert_true(h[i] && GetHandleInformation(h[i], &flags));
        }
        /* each works: a value that changed returns at once, one that did
         * not times out */
        for (int i = 0; i < N; i++) {
            atomic_store(&words[i].value, 1);
            assert_hr(shmc_plat_wait(&w[i], 0, SHMC_PLAT_INFINITE), S_OK);
            assert_hr(shmc_plat_wait(&w[i], 1, 0), S_FALSE);
            atomic_store(&words[i].value, 0);
        }
        for (int i = 0; i < N; i++) {
            shmc_plat_waiter_close(&w[i]);
            assert_null(waiter_handle(&w[i]));
        }
        if (pass == 1) {
            assert_int_equal(shmc_plat_fault_hits("WaitOnAddress"), N);
            DWORD flags;
            for (int i = 0; i < N; i++)
                assert_false(GetHandleInformation(h[i], &flags)); /* closed */
            teardown_no_woa(NULL);
        }
    }
}

#define NO_WOA(fn) cmocka_unit_test_setup_teardown(fn, setup_no_woa, teardown_no_woa)
#endif

static const tsupport_child children[] = {
    {"pong", child_pong},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(timeout_is_reported),
        cmocka_unit_test(changed_value_returns_at_once),
        cmocka_unit_test(wake_all_wakes_every_thread),
        cmocka_unit_test(thread_ping_pong),
        cmocka_unit_test(process_ping_pong),
        cmocka_unit_test(scribbled_waiter_count_is_harmless),
        cmocka_unit_test(waiter_open_checks_bounds),
#if defined(_WIN32)
        cmocka_unit_test(local_waiters_hold_no_handle),
        NO_WOA(timeout_is_reported),
        NO_WOA(changed_value_returns_at_once),
        NO_WOA(wake_all_wakes_every_thread),
        NO_WOA(thread_ping_pong),
#endif
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
