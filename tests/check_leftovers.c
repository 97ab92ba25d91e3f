/*
 * check_leftovers.c - runs after every other test (a CTest cleanup fixture)
 * and fails if any region a test created ("tst-..." names) is still in
 * /dev/shm: a test that crashed or forgot to unlink leaves it there.
 */
#include "tsupport.h"

#include <string.h>

static bool report(const char *name, void *ctx)
{
    int *count = ctx;
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
