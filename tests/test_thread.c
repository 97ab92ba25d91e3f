/*
 * test_thread.c - threads, thread-local storage (destructors run when a
 * thread exits; the fast slot), mutex and condition variable, monotonic clock, random
 * bytes, and the errno/Win32 error mapping.
 */
#include "tsupport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <windows.h>
#endif

static void set_flag(void *arg)
{
    atomic_store((_Atomic int *)arg, 1);
}

static void thread_runs_and_joins(void **state)
{
    (void)state;
    _Atomic int flag = 0;
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, set_flag, (void *)&flag), S_OK);
    shmc_plat_thread_join(&t);
    assert_int_equal(atomic_load(&flag), 1);
    assert_hr(shmc_plat_thread_create(&t, NULL, NULL), E_INVALIDARG);
    assert_hr(shmc_plat_thread_create(NULL, set_flag, NULL), E_INVALIDARG);
}

static void record_id(void *arg)
{
    *(uint64_t *)arg = shmc_plat_thread_self_id();
}

static void thread_ids_differ(void **state)
{
    (void)state;
    uint64_t other = 0, me = shmc_plat_thread_self_id();
    shmc_plat_thread t;
    assert_true(me != 0);
    assert_int_equal(shmc_plat_thread_self_id(), me);
    assert_hr(shmc_plat_thread_create(&t, record_id, &other), S_OK);
    shmc_plat_thread_join(&t);
    assert_true(other != 0);
    assert_true(other != me);
}

/* ---- TLS: the destructor runs on thread exit ---------------------------- */

static shmc_plat_tls tls_key;
static _Atomic int dtor_calls;
static void *_Atomic dtor_value;

static void tls_dtor(void *v)
{
    atomic_fetch_add(&dtor_calls, 1);
    atomic_store(&dtor_value, v);
}

static int tls_cell;

static void tls_thread(void *arg)
{
    (void)arg;
    if (shmc_plat_tls_get(&tls_key) != NULL)
        return; /* every thread starts with NULL */
    shmc_plat_tls_set(&tls_key, &tls_cell);
    /* exits without clearing: the destructor must run */
}

static void tls_null_thread(void *arg)
{
    (void)arg; /* never sets a value: no destructor call */
}

static void tls_destructor_runs_at_thread_exit(void **state)
{
    (void)state;
    shmc_plat_thread t;
    atomic_store(&dtor_calls, 0);
    assert_hr(shmc_plat_tls_create(&tls_key, tls_dtor), S_OK);
    assert_null(shmc_plat_tls_get(&tls_key));
    assert_hr(shmc_plat_thread_create(&t, tls_thread, NULL), S_OK);
    shmc_plat_thread_join(&t);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    assert_ptr_equal(atomic_load(&dtor_value), &tls_cell);
    assert_hr(shmc_plat_thread_create(&t, tls_null_thread, NULL), S_OK);
    shmc_plat_thread_join(&t);
    assert_int_equal(atomic_load(&dtor_calls), 1);
    /* this thread's value is its own */
    int mine;
    assert_hr(shmc_plat_tls_set(&tls_key, &mine), S_OK);
    assert_ptr_equal(shmc_plat_tls_get(&tls_key), &mine);
    assert_hr(shmc_plat_tls_set(&tls_key, NULL), S_OK);
    shmc_plat_tls_destroy(&tls_key);
    assert_hr(shmc_plat_tls_create(NULL, tls_dtor), E_INVALIDARG);
}

/* ---- mutex and condition variable ----------------------------------------- */

typedef struct box {
    shmc_plat_mutex m;
    shmc_plat_cond c;
    int value;
    int increments;
} box;

/* The fast slot: NULL until a thread sets it, each thread its own. */
typedef struct fast_check {
    void *before, *after;
    bool set;
} fast_check;

static void fast_thread(void *arg)
{
    fast_check *f = arg;
    f->before = shmc_plat_fast_tls_get();
    f->set = shmc_plat_fast_tls_set(f);
    f->after = shmc_plat_fast_tls_get();
}

static void fast_tls_is_per_thread(void **state)
{
    (void)state;
    int mine;
    assert_true(shmc_plat_fast_tls_set(&mine));
    assert_ptr_equal(shmc_plat_fast_tls_get(), &mine);
    fast_check f[3];
    shmc_plat_thread t[3];
    for (int i = 0; i < 3; i++) {
        memset(&f[i], 0xA5, sizeof(f[i]));
        assert_hr(shmc_plat_thread_create(&t[i], fast_thread, &f[i]), S_OK);
    }
    for (int i = 0; i < 3; i++) {
        shmc_plat_thread_join(&t[i]);
        assert_null(f[i].before); /* not this thread's */
        assert_true(f[i].set);
        assert_ptr_equal(f[i].after, &f[i]);
    }
    assert_ptr_equal(shmc_plat_fast_tls_get(), &mine); /* theirs did not touch it */
#ifdef _WIN32
    SetLastError(1234); /* a read leaves the thread's last error alone */
    assert_ptr_equal(shmc_plat_fast_tls_get(), &mine);
    assert_int_equal(GetLastError(), 1234);
#endif
    assert_true(shmc_plat_fast_tls_set(NULL));
    assert_null(shmc_plat_fast_tls_get());
}

static void box_add(void *arg)
{
    box *b = arg;
    for (int i = 0; i < 100000; i++) {
        shmc_plat_mutex_lock(&b->m);
        b->increments++;
        shmc_plat_mutex_unlock(&b->m);
    }
}

static void mutex_excludes(void **state)
{
    (void)state;
    box b;
    memset(&b, 0, sizeof(b));
    shmc_plat_mutex_init(&b.m);
    shmc_plat_thread t[4];
    for (int i = 0; i < 4; i++)
        assert_hr(shmc_plat_thread_create(&t[i], box_add, &b), S_OK);
    for (int i = 0; i < 4; i++)
        shmc_plat_thread_join(&t[i]);
    assert_int_equal(b.increments, 400000);
    shmc_plat_mutex_fini(&b.m);
    shmc_plat_mutex_fini(&b.m); /* fini is safe on zeroed memory */
}

static void box_signal(void *arg)
{
    box *b = arg;
    shmc_plat_mutex_lock(&b->m);
    b->value = 1;
    shmc_plat_cond_signal(&b->c);
    shmc_plat_mutex_unlock(&b->m);
}

static void cond_signal_and_timeout(void **state)
{
    (void)state;
    box b;
    memset(&b, 0, sizeof(b));
    shmc_plat_mutex_init(&b.m);
    shmc_plat_cond_init(&b.c);

    shmc_plat_mutex_lock(&b.m);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_cond_wait(&b.c, &b.m, 100), S_FALSE);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= 99.0);
    assert_true(ms < 5000.0);
    shmc_plat_mutex_unlock(&b.m);

    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, box_signal, &b), S_OK);
    shmc_plat_mutex_lock(&b.m);
    t0 = shmc_plat_clock_ns();
    while (b.value == 0 && tsupport_ms_since(t0) < 20000.0)
        shmc_plat_cond_wait(&b.c, &b.m, 20000);
    assert_int_equal(b.value, 1);
    shmc_plat_mutex_unlock(&b.m);
    shmc_plat_thread_join(&t);
    shmc_plat_cond_broadcast(&b.c); /* nobody waits: harmless */
    shmc_plat_cond_fini(&b.c);
    shmc_plat_mutex_fini(&b.m);
}

/* ---- once and pollable event ------------------------------------------------ */

static shmc_plat_once once_block = SHMC_PLAT_ONCE_INIT;
static _Atomic int once_calls;

static void once_fn(void)
{
    shmc_plat_sleep_ms(20); /* racers must wait for it, not skip it */
    atomic_fetch_add(&once_calls, 1);
}

static void once_racer(void *arg)
{
    shmc_plat_once_run(&once_block, once_fn);
    *(int *)arg = atomic_load(&once_calls);
}

static void once_runs_once(void **state)
{
    (void)state;
    shmc_plat_thread t[4];
    int seen[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_hr(shmc_plat_thread_create(&t[i], once_racer, &seen[i]), S_OK);
    for (int i = 0; i < 4; i++)
        shmc_plat_thread_join(&t[i]);
    shmc_plat_once_run(&once_block, once_fn);
    assert_int_equal(atomic_load(&once_calls), 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(seen[i], 1); /* nobody returned before it ran */
}

static void setter(void *arg)
{
    shmc_plat_sleep_ms(30);
    shmc_plat_event_set(arg);
}

static void event_set_reset_wait(void **state)
{
    (void)state;
    shmc_plat_event e, zero;
    memset(&zero, 0, sizeof(zero));
    shmc_plat_event_fini(&zero); /* zeroed: safe */
    assert_hr(shmc_plat_event_init(&e), S_OK);
    assert_true(shmc_plat_event_handle(&e) != -1);
    assert_hr(shmc_plat_event_wait(&e, 0), S_FALSE);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_event_wait(&e, 50), S_FALSE);
    assert_true(tsupport_ms_since(t0) >= 49.0);
    shmc_plat_event_set(&e);
    shmc_plat_event_set(&e); /* twice: still just set */
    assert_hr(shmc_plat_event_wait(&e, 0), S_OK);
    assert_hr(shmc_plat_event_wait(&e, 0), S_OK); /* level-triggered */
    shmc_plat_event_reset(&e);
    assert_hr(shmc_plat_event_wait(&e, 0), S_FALSE);
    shmc_plat_event_reset(&e); /* reset on a clear event */
    assert_hr(shmc_plat_event_wait(&e, 0), S_FALSE);
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, setter, &e), S_OK);
    assert_hr(shmc_plat_event_wait(&e, 20000), S_OK);
    shmc_plat_thread_join(&t);
    shmc_plat_event_fini(&e);
}

/* ---- clock, random, machine facts ----------------------------------------- */

static void clock_is_monotonic(void **state)
{
    (void)state;
    uint64_t prev = shmc_plat_clock_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = shmc_plat_clock_ns();
        assert_true(now >= prev);
        prev = now;
    }
    uint64_t t0 = shmc_plat_clock_ns();
    shmc_plat_sleep_ms(50);
    assert_true(tsupport_ms_since(t0) >= 49.0);
}

static void random_bytes(void **state)
{
    (void)state;
    unsigned char a[32], b[32];
    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    assert_hr(shmc_plat_random(a, sizeof(a)), S_OK);
    assert_hr(shmc_plat_random(b, sizeof(b)), S_OK);
    /* 256 random bits twice: equal only if the generator is broken */
    assert_memory_not_equal(a, b, sizeof(a));
    static const unsigned char zero[32];
    assert_memory_not_equal(a, zero, sizeof(a));
    /* large requests are filled completely (getrandom returns at most 32 MiB
     * per call, BCryptGenRandom takes a ULONG): count the bytes still zero */
    size_t n = 1 << 20;
    unsigned char *big = calloc(1, n);
    assert_non_null(big);
    assert_hr(shmc_plat_random(big, n), S_OK);
    size_t zeros = 0;
    for (size_t i = 0; i < n; i++)
        zeros += big[i] == 0;
    assert_true(zeros < n / 128); /* about n/256 expected */
    free(big);
    assert_hr(shmc_plat_random(NULL, 0), S_OK);
    assert_hr(shmc_plat_random(NULL, 4), E_INVALIDARG);
}

static void machine_facts(void **state)
{
    (void)state;
    assert_true(shmc_plat_cpu_count() >= 1);
    size_t page = shmc_plat_page_size();
    assert_true(page >= 4096);
    assert_int_equal(page & (page - 1), 0);
}

/* shmc_plat_current_cpu says where the thread runs; move_off_cpu refuses
 * what it cannot do, and leaves the thread's affinity as it was. */
static void current_cpu_and_move_off(void **state)
{
    (void)state;
    int cpu = tsupport_pin_self(-1);
    if (cpu < 0)
        skip();                                       /* the OS does not say where threads run */
    assert_int_equal(shmc_plat_current_cpu(), cpu);   /* bound there */
    assert_false(shmc_plat_thread_move_off_cpu(cpu)); /* nowhere else it may go */
    assert_int_equal(tsupport_allowed_cpus(), 1);     /* still bound */
    assert_int_equal(shmc_plat_current_cpu(), cpu);   /* there */
    tsupport_unpin_self();
    unsigned allowed = tsupport_allowed_cpus();
    assert_false(shmc_plat_thread_move_off_cpu(-1));
    assert_false(shmc_plat_thread_move_off_cpu(1 << 20)); /* no such CPU */
    assert_int_equal(tsupport_allowed_cpus(), allowed);
    if (allowed >= 2)
        assert_true(shmc_plat_thread_move_off_cpu(shmc_plat_current_cpu()));
    else
        assert_false(shmc_plat_thread_move_off_cpu(shmc_plat_current_cpu()));
    assert_int_equal(tsupport_allowed_cpus(), allowed); /* as it was */
}

static void os_errors_map(void **state)
{
    (void)state;
#ifdef _WIN32
    assert_hr(shmc_plat_hresult_from_os(2), SHM_E_NAME_NOT_FOUND);
    assert_hr(shmc_plat_hresult_from_os(183), SHM_E_NAME_EXISTS);
    assert_hr(shmc_plat_hresult_from_os(5), E_ACCESSDENIED);
    assert_hr(shmc_plat_hresult_from_os(8), E_OUTOFMEMORY);
    assert_hr(shmc_plat_hresult_from_os(87), E_INVALIDARG);
    assert_hr(shmc_plat_hresult_from_os(1234), HRESULT_FROM_WIN32(1234));
#else
    assert_hr(shmc_plat_hresult_from_os(ENOENT), SHM_E_NAME_NOT_FOUND);
    assert_hr(shmc_plat_hresult_from_os(EEXIST), SHM_E_NAME_EXISTS);
    assert_hr(shmc_plat_hresult_from_os(EACCES), E_ACCESSDENIED);
    assert_hr(shmc_plat_hresult_from_os(ENOMEM), E_OUTOFMEMORY);
    assert_hr(shmc_plat_hresult_from_os(EINVAL), E_INVALIDARG);
    /* without a COM meaning: the raw errno stays readable */
    HRESULT hr = shmc_plat_hresult_from_os(EXDEV);
    assert_true(FAILED(hr));
    assert_true(SHM_HRESULT_IS_ERRNO(hr));
    assert_int_equal(HRESULT_CODE(hr), EXDEV);
#endif
    assert_true(FAILED(shmc_plat_hresult_from_os(0))); /* a lost errno is still an error */
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_runs_and_joins),
        cmocka_unit_test(thread_ids_differ),
        cmocka_unit_test(tls_destructor_runs_at_thread_exit),
        cmocka_unit_test(fast_tls_is_per_thread),
        cmocka_unit_test(mutex_excludes),
        cmocka_unit_test(cond_signal_and_timeout),
        cmocka_unit_test(once_runs_once),
        cmocka_unit_test(event_set_reset_wait),
        cmocka_unit_test(clock_is_monotonic),
        cmocka_unit_test(current_cpu_and_move_off),
        cmocka_unit_test(random_bytes),
        cmocka_unit_test(machine_facts),
        cmocka_unit_test(os_errors_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
