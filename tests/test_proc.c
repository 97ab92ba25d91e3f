/*
 * test_proc.c - process identity, children, and death notification: a
 * killed process is reported dead within 1 s to a handle that watches it
 * (as a server watches a client it did not start), with pidfd and with the
 * polling fallback; pid reuse is not mistaken for life.
 */
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <errno.h>
#include <poll.h>
#endif

static int child_exit42(const char *arg)
{
    (void)arg;
    return 42;
}

/* Blocks until killed (gives up after a minute so that it never lingers). */
static int child_sleep(const char *arg)
{
    (void)arg;
    for (int i = 0; i < 600; i++)
        shmc_plat_sleep_ms(100);
    return 0;
}

static void self_identity(void **state)
{
    (void)state;
    shmc_plat_procid a, b, q;
    shmc_plat_proc_self(&a);
    shmc_plat_proc_self(&b);
    assert_true(a.pid != 0);
    assert_true(a.start_time != 0);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_hr(shmc_plat_proc_query(a.pid, &q), S_OK);
    assert_memory_equal(&a, &q, sizeof(a));
    assert_hr(shmc_plat_proc_query(a.pid, NULL), E_INVALIDARG);
    assert_hr(shmc_plat_proc_query(0, &q), SHM_E_NAME_NOT_FOUND);
}

static void child_exit_code(void **state)
{
    (void)state;
    shmc_plat_proc p;
    tsupport_spawn(&p, "exit42", NULL);
    assert_true(p.is_child);
    assert_true(p.id.pid != 0);
    assert_hr(shmc_plat_proc_wait(&p, 60000), S_OK);
    assert_true(p.exited);
    assert_int_equal(p.exit_code, 42);
    /* waiting again is fine and says the same */
    assert_hr(shmc_plat_proc_wait(&p, 0), S_OK);
    assert_int_equal(p.exit_code, 42);
    shmc_plat_proc_close(&p);
}

static void wait_times_out_on_a_live_process(void **state)
{
    (void)state;
    shmc_plat_proc p;
    tsupport_spawn(&p, "sleep", NULL);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_proc_wait(&p, 150), S_FALSE);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= 149.0);
    assert_true(ms < 5000.0);
    assert_false(p.exited);
    assert_hr(shmc_plat_proc_wait(&p, 0), S_FALSE);
    assert_hr(shmc_plat_proc_kill(&p), S_OK);
    assert_hr(shmc_plat_proc_wait(&p, 10000), S_OK);
    assert_int_equal(p.exit_code, 137); /* 128 + SIGKILL, the same on Windows */
    shmc_plat_proc_close(&p);
}

/* The parent kills a child; a second handle, opened from the child's
 * identity alone, must report the death within one second. */
static void watch_kill(bool polling)
{
    shmc_plat_proc child, watch;
    bool was = shmc_plat_proc_force_polling(polling);
    tsupport_spawn(&child, "sleep", NULL);
    shmc_plat_procid id;
    assert_hr(shmc_plat_proc_query(child.id.pid, &id), S_OK);
    assert_memory_equal(&id, &child.id, sizeof(id));
    assert_hr(shmc_plat_proc_open(&watch, &id), S_OK);
    assert_false(watch.exited);
    assert_false(watch.is_child);
    assert_hr(shmc_plat_proc_wait(&watch, 0), S_FALSE);
#ifndef _WIN32
    if (polling)
        assert_int_equal(shmc_plat_proc_pollable(&watch), -1);
    else
#endif
        assert_true(shmc_plat_proc_pollable(&watch) != -1);

    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(shmc_plat_proc_kill(&child), S_OK);
    assert_hr(shmc_plat_proc_wait(&watch, 1000), S_OK);
    double ms = tsupport_ms_since(t0);
    print_message("death reported after %.2f ms (%s)\n", ms, polling ? "polling" : "handle");
    assert_true(ms <= 1000.0);
    assert_true(watch.exited);

    assert_hr(shmc_plat_proc_wait(&child, 10000), S_OK);
    assert_int_equal(child.exit_code, 137);
    shmc_plat_proc_close(&watch);
    shmc_plat_proc_close(&child);
    shmc_plat_proc_force_polling(was);

    /* the same identity, now dead (its pid may even be reused): dead at once */
    assert_hr(shmc_plat_proc_open(&watch, &id), S_OK);
    assert_true(watch.exited);
    assert_hr(shmc_plat_proc_wait(&watch, 0), S_OK);
    shmc_plat_proc_close(&watch);
}

static void killed_child_reported_within_1s(void **state)
{
    (void)state;
    watch_kill(false);
}

static void killed_child_reported_within_1s_polling(void **state)
{
    (void)state;
    watch_kill(true);
}

static void pollable_handle_signals_death(void **state)
{
    (void)state;
    shmc_plat_proc child, watch;
    tsupport_spawn(&child, "sleep", NULL);
    assert_hr(shmc_plat_proc_open(&watch, &child.id), S_OK);
    intptr_t h = shmc_plat_proc_pollable(&watch);
    assert_true(h != -1 && h != 0);
#ifdef _WIN32
    assert_int_equal(WaitForSingleObject((HANDLE)h, 0), WAIT_TIMEOUT);
    assert_hr(shmc_plat_proc_kill(&child), S_OK);
    assert_int_equal(WaitForSingleObject((HANDLE)h, 10000), WAIT_OBJECT_0);
#else
    struct pollfd pfd = {.fd = (int)h, .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_hr(shmc_plat_proc_kill(&child), S_OK);
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    assert_true(pfd.revents & POLLIN);
#endif
    assert_hr(shmc_plat_proc_wait(&watch, 0), S_OK);
    assert_hr(shmc_plat_proc_wait(&child, 10000), S_OK);
    shmc_plat_proc_close(&watch);
    shmc_plat_proc_close(&child);
}

static void wrong_start_time_is_dead(void **state)
{
    (void)state;
    shmc_plat_proc p;
    shmc_plat_procid id;
    shmc_plat_proc_self(&id);
    id.start_time ^= 0x5a5a; /* this pid, but another process's life */
    assert_hr(shmc_plat_proc_open(&p, &id), S_OK);
    assert_true(p.exited);
    assert_hr(shmc_plat_proc_wait(&p, 0), S_OK);
    shmc_plat_proc_close(&p);

    /* our own identity is alive */
    shmc_plat_proc_self(&id);
    assert_hr(shmc_plat_proc_open(&p, &id), S_OK);
    assert_false(p.exited);
    assert_hr(shmc_plat_proc_wait(&p, 0), S_FALSE);
    shmc_plat_proc_close(&p);
}

static void argument_errors(void **state)
{
    (void)state;
    shmc_plat_proc p;
    shmc_plat_procid id = {0, 0};
    const char *none[] = {NULL};
    const char *missing[] = {"/no/such/dir/shmcom-no-such-program.exe", NULL};
    char tiny[4];

    assert_hr(shmc_plat_proc_spawn(&p, NULL), E_INVALIDARG);
    assert_hr(shmc_plat_proc_spawn(&p, none), E_INVALIDARG);
    assert_hr(shmc_plat_proc_spawn(NULL, missing), E_INVALIDARG);
    HRESULT hr = shmc_plat_proc_spawn(&p, missing);
    assert_true(FAILED(hr));
    assert_int_equal(p.id.pid, 0);
    shmc_plat_proc_close(&p);

    assert_hr(shmc_plat_proc_open(&p, NULL), E_INVALIDARG);
    assert_hr(shmc_plat_proc_open(&p, &id), E_INVALIDARG);
    assert_hr(shmc_plat_proc_open(NULL, &id), E_INVALIDARG);

    memset(&p, 0, sizeof(p));
    assert_hr(shmc_plat_proc_wait(&p, 0), E_INVALIDARG);
    assert_hr(shmc_plat_proc_kill(&p), E_INVALIDARG);
    assert_hr(shmc_plat_proc_wait(NULL, 0), E_INVALIDARG);
    shmc_plat_proc_close(&p); /* zeroed: safe */
    shmc_plat_proc_close(NULL);

    assert_hr(shmc_plat_self_exe(tiny, sizeof(tiny)), E_NOT_SUFFICIENT_BUFFER);
    assert_hr(shmc_plat_self_exe(NULL, 10), E_INVALIDARG);
}

static void spawn_failure_is_clean(void **state)
{
    (void)state;
    char exe[4096];
    shmc_plat_proc p;
    assert_hr(shmc_plat_self_exe(exe, sizeof(exe)), S_OK);
    const char *argv[] = {exe, "--child", "exit42", NULL};
    long handles = tsupport_open_handles();
#ifdef _WIN32
    assert_hr(shmc_plat_fault_set("CreateProcessW", 1, 8), S_OK);
    assert_hr(shmc_plat_proc_spawn(&p, argv), E_OUTOFMEMORY);
#else
    assert_hr(shmc_plat_fault_set("posix_spawn", 1, EAGAIN), S_OK);
    assert_hr(shmc_plat_proc_spawn(&p, argv), SHM_HRESULT_FROM_ERRNO(EAGAIN));
#endif
    shmc_plat_fault_clear_all();
    assert_int_equal(p.id.pid, 0);
    assert_int_equal(tsupport_open_handles(), handles);

#ifndef _WIN32
    /* pidfd_open refused (an old kernel, say): the handle still works, by
     * polling /proc */
    assert_hr(shmc_plat_fault_set("pidfd_open", 1, ENOSYS), S_OK);
    assert_hr(shmc_plat_proc_spawn(&p, argv), S_OK);
    shmc_plat_fault_clear_all();
    assert_int_equal(shmc_plat_proc_pollable(&p), -1);
    assert_hr(shmc_plat_proc_wait(&p, 60000), S_OK);
    assert_int_equal(p.exit_code, 42);
    shmc_plat_proc_close(&p);
#endif
}

static const tsupport_child children[] = {
    {"exit42", child_exit42},
    {"sleep", child_sleep},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(self_identity),
        cmocka_unit_test(child_exit_code),
        cmocka_unit_test(wait_times_out_on_a_live_process),
        cmocka_unit_test(killed_child_reported_within_1s),
        cmocka_unit_test(killed_child_reported_within_1s_polling),
        cmocka_unit_test(pollable_handle_signals_death),
        cmocka_unit_test(wrong_start_time_is_dead),
        cmocka_unit_test(argument_errors),
        cmocka_unit_test(spawn_failure_is_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
