/*
 * test_alloc.c - the task allocator and the runtime allocator's fault hook.
 */
#include "alloc.h"
#include "tsupport.h"

#include <string.h>

static void task_mem(void **state)
{
    (void)state;
    unsigned char *p = ShmCoTaskMemAlloc(100);
    assert_non_null(p);
    memset(p, 0xab, 100);
    ShmCoTaskMemFree(p);
    void *z1 = ShmCoTaskMemAlloc(0), *z2 = ShmCoTaskMemAlloc(0);
    assert_non_null(z1); /* a unique pointer, as CoTaskMemAlloc(0) */
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2);
    ShmCoTaskMemFree(z1);
    ShmCoTaskMemFree(z2);
    ShmCoTaskMemFree(NULL);
    assert_null(ShmCoTaskMemAlloc((SIZE_T)-1)); /* impossible: NULL, no crash */
}

static void nothing(void *arg)
{
    (void)arg;
}

static void fail_hook_counts_and_fails(void **state)
{
    (void)state;
    shmc_alloc_fail_at(0);
    void *a = shmc_malloc(8), *b = shmc_calloc(2, 8);
    assert_int_equal(shmc_alloc_fail_at(2), 2); /* counted two, now fail the 2nd */
    void *c = shmc_malloc(8);
    assert_non_null(c);
    assert_int_equal(shmc_alloc_fail_hits(), 0);
    assert_null(shmc_malloc(8));
    assert_null(shmc_calloc(1, 1));
    assert_null(ShmCoTaskMemAlloc(1));
    void *r = shmc_malloc(1);
    assert_null(r);
    assert_int_equal(shmc_alloc_fail_hits(), 4);
    /* a thread's start goes through it too */
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, nothing, NULL), E_OUTOFMEMORY);
    assert_int_equal(shmc_alloc_fail_hits(), 5);
    shmc_alloc_fail_reset();
    assert_int_equal(shmc_alloc_fail_at(1), 0); /* (reset cleared the count) */
    assert_int_equal(shmc_alloc_fail_hits(), 0);
    shmc_alloc_fail_reset();
    r = shmc_realloc(c, 64);
    assert_non_null(r);
    shmc_free(a);
    shmc_free(b);
    shmc_free(r);
    shmc_free(NULL);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(task_mem),
        cmocka_unit_test(fail_hook_counts_and_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
