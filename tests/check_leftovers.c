/*
 * check_leftovers.c - runs after every other test (a CTest cleanup fixture)
 * and fails if a region whose creator is gone is still in /dev/shm:
 *  - a test's own ("tst-..." names): a test that crashed or forgot to
 *    unlink leaves it there;
 *  - the runtime's: endpoints ("ep."), connections ("cn."), bulk regions
 *    ("bk."), unnamed streams ("anon-"), any region with shmcom's header.
 *    A process removes what it made as it goes and when it ends, and the
 *    survivor of a crash removes what the dead one left (docs/transport.md,
 *    "Failures"); a name only nobody could know of (a process killed
 *    before anyone connected to it) is for the periodic reclaim, which the
 *    tests that make such names run themselves.
 * Regions of live processes are left alone: another build's tests may be
 * running at the same time.
 */
#include "regionhdr.h"
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

/* The runtime's names carry their creator's pid ("ep.<pid>.<16 hex>",
 * "cn.", "bk."): true if no process has that pid. */
static bool name_pid_gone(const char *name)
{
    if (strncmp(name, "ep.", 3) != 0 && strncmp(name, "cn.", 3) != 0 &&
        strncmp(name, "bk.", 3) != 0)
        return false;
    char *end = NULL;
    unsigned long long pid = strtoull(name + 3, &end, 10);
    shmc_plat_procid id;
    return pid != 0 && end && *end == '.' && shmc_plat_proc_query(pid, &id) == SHM_E_NAME_NOT_FOUND;
}

/* A region of the runtime's (or any with shmcom's header) whose creator is
 * gone: the header names a dead owner, or, without a header (never sized,
 * not yet published), its name carries a dead pid. */
static bool runtime_region_stale(const char *name)
{
    shmc_plat_region r;
    shmc_region_info info;
    HRESULT hr = shmc_plat_region_open(&r, name);
    if (hr == SHM_E_NAME_NOT_FOUND) /* there, but never sized (or gone now) */
        return name_pid_gone(name);
    if (FAILED(hr))
        return false;
    hr = shmc_region_hdr_read(r.base, r.size, &info);
    bool stale = SUCCEEDED(hr) ? shmc_region_owner_dead(&info.owner) : name_pid_gone(name);
    shmc_plat_region_close(&r);
    return stale;
}

static bool stale(const char *name)
{
    return strncmp(name, "tst-", 4) == 0 ? !creator_alive(name) : runtime_region_stale(name);
}

enum { MAX_SEEN = 64 };

typedef struct scan {
    unsigned count;
    char names[MAX_SEEN][SHM_MAX_NAME + 1];
} scan;

static bool note(const char *name, void *ctx)
{
    scan *sc = ctx;
    if (stale(name) && sc->count < MAX_SEEN)
        snprintf(sc->names[sc->count++], SHM_MAX_NAME + 1, "%s", name);
    return true;
}

static bool seen(const scan *sc, const char *name)
{
    for (unsigned i = 0; i < sc->count; i++)
        if (strcmp(sc->names[i], name) == 0)
            return true;
    return false;
}

static void no_region_left(void **state)
{
    (void)state;
    static scan first, then;
    assert_hr(shmc_plat_region_list("", note, &first), S_OK);
    /* the survivor of a process killed a moment ago (another build's tests)
     * may not have removed its names yet: left behind is what is still
     * there, its creator gone, two seconds later */
    if (first.count) {
        shmc_plat_sleep_ms(2000);
        assert_hr(shmc_plat_region_list("", note, &then), S_OK);
    }
    int left = 0;
    for (unsigned i = 0; i < then.count; i++) {
        if (seen(&first, then.names[i])) {
            print_error("left behind: %s\n", then.names[i]);
            left++;
        }
    }
    assert_int_equal(left, 0);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_region_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
