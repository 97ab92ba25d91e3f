/*
 * check_leftovers.c - runs after every other test (a CTest cleanup fixture)
 * and fails if any region a test created ("tst-..." names) is still in
 * /dev/shm: a test that crashed or forgot to unlink leaves it there.
 */
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

/* Test names are "tst-<tag>-<pid>-<n>": a region whose creator still runs
 * (another build's tests running at the same time) is not left behind. */
static bool creator_alive(const char *name)
{
    const char *last = strrchr(name, '-');
    if (!last || last == name)
        return false;
    const char *p = last - 1;
    while (p > name && *p != '-')
        p--;
    unsigned long long pid = strtoull(p + 1, NULL, 10);
    shmc_plat_procid id;
    return pid != 0 && SUCCEEDED(shmc_plat_proc_query(pid, &id));
}

static bool report(const char *name, void *ctx)
{
    int *count = ctx;
    if (creator_alive(name))
        return true;
    print_error("left behind: %s\n", name);
    (*count)++;
    return true;
}

static void no_test_region_left(void **state)
{
    (void)state;
    int count = 0;
    assert_hr(shmc_plat_region_list("tst-", report, &count), S_OK);
    assert_int_equal(count, 0);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_test_region_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
