/*
 * test_region.c - named shared-memory regions: create, open, share with a
 * child process, owner-only access, the three name errors, clean-up on
 * every failure path (fault injection), and no name left behind.
 */
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

static void create_open_share_bytes(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region a, b;
    tsupport_name(name, sizeof(name), "basic");
    assert_hr(shmc_plat_region_create(&a, name, 10000), S_OK);
    assert_non_null(a.base);
    assert_int_equal(a.size % shmc_plat_page_size(), 0);
    assert_true(a.size >= 10000);
    assert_string_equal(a.name, name);
    /* zero-filled */
    for (size_t i = 0; i < a.size; i++)
        assert_int_equal(((unsigned char *)a.base)[i], 0);

    assert_hr(shmc_plat_region_open(&b, name), S_OK);
    assert_int_equal(b.size, a.size); /* creator and opener agree */
    assert_ptr_not_equal(a.base, b.base);
    memcpy(a.base, "hello", 6);
    assert_string_equal((char *)b.base, "hello");
    ((char *)b.base)[b.size - 1] = 'z';
    assert_int_equal(((char *)a.base)[a.size - 1], 'z');

    shmc_plat_region_close(&b);
    assert_null(b.base);
    shmc_plat_region_close(&b); /* twice is fine */
    assert_hr(shmc_plat_region_unlink(name), S_OK);
    /* the creator's mapping stays valid after unlink */
    assert_string_equal((char *)a.base, "hello");
    shmc_plat_region_close(&a);
}

static void close_zeroed_is_safe(void **state)
{
    (void)state;
    shmc_plat_region r;
    memset(&r, 0, sizeof(r));
    shmc_plat_region_close(&r);
    shmc_plat_region_close(NULL);
}

static void name_errors_are_distinct(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region a, b;
    tsupport_name(name, sizeof(name), "errs");

    /* a missing name */
    memset(&b, 0x5a, sizeof(b));
    assert_hr(shmc_plat_region_open(&b, name), SHM_E_NAME_NOT_FOUND);
    assert_null(b.base); /* out parameter left closed */

    /* an existing name */
    assert_hr(shmc_plat_region_create(&a, name, 4096), S_OK);
    memset(&b, 0x5a, sizeof(b));
    assert_hr(shmc_plat_region_create(&b, name, 4096), SHM_E_NAME_EXISTS);
    assert_null(b.base);
    /* the failed create did not damage the existing region */
    memcpy(a.base, "kept", 5);
    assert_hr(shmc_plat_region_open(&b, name), S_OK);
    assert_string_equal((char *)b.base, "kept");
    shmc_plat_region_close(&b);

    /* malformed names */
    char too_long[SHM_MAX_NAME + 2];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    char longest[SHM_MAX_NAME + 1];
    memset(longest, 'b', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    static const char *const bad[] = {"",    "a/b",  "../x", ".hidden",           "-x",
                                      "a b", "a\\b", "x\ty", "\xc3\xa9t\xc3\xa9", "a:b",
                                      "a*",  "/abs"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_hr(shmc_plat_region_name_check(bad[i]), E_INVALIDARG);
        assert_hr(shmc_plat_region_create(&b, bad[i], 4096), E_INVALIDARG);
        assert_null(b.base);
        assert_hr(shmc_plat_region_open(&b, bad[i]), E_INVALIDARG);
        assert_hr(shmc_plat_region_unlink(bad[i]), E_INVALIDARG);
    }
    assert_hr(shmc_plat_region_name_check(NULL), E_INVALIDARG);
    assert_hr(shmc_plat_region_create(&b, NULL, 4096), E_INVALIDARG);
    assert_hr(shmc_plat_region_create(&b, too_long, 4096), E_INVALIDARG);
    assert_hr(shmc_plat_region_open(&b, too_long), E_INVALIDARG);
    assert_hr(shmc_plat_region_name_check(longest), S_OK);
    assert_hr(shmc_plat_region_name_check("A-b.c_9"), S_OK);
    assert_hr(shmc_plat_region_name_check("_x"), S_OK);

    /* size 0 and absurd sizes */
    char other[64];
    tsupport_name(other, sizeof(other), "errs");
    assert_hr(shmc_plat_region_create(&b, other, 0), E_INVALIDARG);
    assert_hr(shmc_plat_region_create(&b, other, SIZE_MAX), E_INVALIDARG);
    assert_hr(shmc_plat_region_open(&b, other), SHM_E_NAME_NOT_FOUND);
    assert_hr(shmc_plat_region_create(NULL, other, 4096), E_INVALIDARG);
    assert_hr(shmc_plat_region_open(NULL, other), E_INVALIDARG);

    shmc_plat_region_close(&a);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
#ifndef _WIN32
    assert_hr(shmc_plat_region_unlink(name), SHM_E_NAME_NOT_FOUND);
#endif
    assert_hr(shmc_plat_region_open(&b, name), SHM_E_NAME_NOT_FOUND);
}

/* ---- sharing with a child process ---------------------------------------- */

static int child_echo(const char *name)
{
    shmc_plat_region r;
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&r, name)));
    unsigned char *p = r.base;
    /* the parent filled byte i with i*7; answer with the complement */
    for (size_t i = 0; i < 65536; i++) {
        CHILD_CHECK(p[i] == (unsigned char)(i * 7));
        p[65536 + i] = (unsigned char)~p[i];
    }
    shmc_plat_region_close(&r);
    return 0;
}

static void child_sees_the_same_bytes(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r;
    shmc_plat_proc child;
    tsupport_name(name, sizeof(name), "child");
    assert_hr(shmc_plat_region_create(&r, name, 2 * 65536), S_OK);
    unsigned char *p = r.base;
    for (size_t i = 0; i < 65536; i++)
        p[i] = (unsigned char)(i * 7);
    tsupport_spawn(&child, "echo", name);
    assert_int_equal(tsupport_join(&child, 60000), 0);
    for (size_t i = 0; i < 65536; i++)
        assert_int_equal(p[65536 + i], (unsigned char)~(i * 7));
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

/* ---- owner-only access ------------------------------------------------------ */

static void owner_only_access(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r;
    unsigned mode = 0;
#ifndef _WIN32
    mode_t old = umask(0); /* a permissive umask must not widen access */
#endif
    tsupport_name(name, sizeof(name), "mode");
    assert_hr(shmc_plat_region_create(&r, name, 4096), S_OK);
#ifndef _WIN32
    umask(old);
#endif
    assert_hr(shmc_plat_region_access(&r, &mode), S_OK);
    assert_int_equal(mode, 0600);
#ifndef _WIN32
    /* what other users would see in /dev/shm */
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/shmcom-%u-%s", (unsigned)geteuid(), name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(st.st_mode & (S_IRWXG | S_IRWXO), 0);
#endif
    assert_hr(shmc_plat_region_access(NULL, &mode), E_INVALIDARG);
    assert_hr(shmc_plat_region_access(&r, NULL), E_INVALIDARG);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

#ifndef _WIN32
/* A region that grants group or other access was not made by shmcom (or was
 * tampered with): open refuses to map it. */
static void open_refuses_shared_mode(void **state)
{
    (void)state;
    char name[64], path[256];
    shmc_plat_region r, o;
    tsupport_name(name, sizeof(name), "wide");
    assert_hr(shmc_plat_region_create(&r, name, 4096), S_OK);
    snprintf(path, sizeof(path), "/dev/shm/shmcom-%u-%s", (unsigned)geteuid(), name);
    assert_int_equal(chmod(path, 0644), 0);
    assert_hr(shmc_plat_region_open(&o, name), E_ACCESSDENIED);
    assert_null(o.base);
    assert_int_equal(chmod(path, 0660), 0);
    assert_hr(shmc_plat_region_open(&o, name), E_ACCESSDENIED);
    assert_int_equal(chmod(path, 0600), 0);
    assert_hr(shmc_plat_region_open(&o, name), S_OK);
    shmc_plat_region_close(&o);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

/* The page after a mapping is inaccessible (platform.h): look it up in
 * /proc/self/maps, for the creator's mapping and the opener's. */
static bool guarded(const shmc_plat_region *r)
{
    unsigned long want = (unsigned long)((uintptr_t)r->base + r->size);
    char line[512];
    bool found = false;
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3)
            continue;
        if (lo <= want && want < hi && hi - want >= shmc_plat_page_size())
            found = !strcmp(perms, "---p");
    }
    fclose(f);
    return found;
}

static void mappings_have_a_guard_page(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r, o;
    tsupport_name(name, sizeof(name), "guard");
    assert_hr(shmc_plat_region_create(&r, name, 3 * 4096 + 1), S_OK);
    assert_hr(shmc_plat_region_open(&o, name), S_OK);
    assert_true(guarded(&r));
    assert_true(guarded(&o));
    shmc_plat_region_close(&o);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
    assert_hr(shmc_plat_region_create_init(&r, name, 5000, NULL, NULL), S_OK);
    assert_true(guarded(&r));
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

/* An object of that name with size 0 (creation under way) is not there yet. */
static void open_of_unsized_object(void **state)
{
    (void)state;
    char name[64], osname[256];
    shmc_plat_region r;
    tsupport_name(name, sizeof(name), "unsized");
    snprintf(osname, sizeof(osname), "/shmcom-%u-%s", (unsigned)geteuid(), name);
    int fd = shm_open(osname, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_hr(shmc_plat_region_open(&r, name), SHM_E_NAME_NOT_FOUND);
    close(fd);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}
#endif

/* ---- failure paths: every OS call that can fail is made to -------------- */

typedef struct fault_case {
    const char *syscall;
    int native_error;
    HRESULT expected;
    bool on_open; /* the fault hits open (else create) */
} fault_case;

static void failures_clean_up(void **state)
{
    (void)state;
#ifdef _WIN32
    static const fault_case cases[] = {
        {"CreateFileMappingW", 8 /* ERROR_NOT_ENOUGH_MEMORY */, E_OUTOFMEMORY, false},
        {"MapViewOfFile", 5 /* ERROR_ACCESS_DENIED */, E_ACCESSDENIED, false},
        {"OpenFileMappingW", 5, E_ACCESSDENIED, true},
        {"MapViewOfFile", 8, E_OUTOFMEMORY, true},
    };
#else
    static const fault_case cases[] = {
        {"shm_open", EMFILE, HRESULT_FROM_WIN32(ERROR_TOO_MANY_OPEN_FILES), false},
        {"fchmod", EPERM, E_ACCESSDENIED, false},
        {"ftruncate", ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL), false},
        {"mmap", ENOMEM, E_OUTOFMEMORY, false},
        {"shm_open", EACCES, E_ACCESSDENIED, true},
        {"fstat", EIO, SHM_HRESULT_FROM_ERRNO(EIO), true},
        {"mmap", ENOMEM, E_OUTOFMEMORY, true},
    };
#endif
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fault_case *c = &cases[i];
        char name[64];
        shmc_plat_region r, o;
        tsupport_name(name, sizeof(name), "fault");
        if (c->on_open)
            assert_hr(shmc_plat_region_create(&r, name, 8192), S_OK);
        long handles = tsupport_open_handles();
        assert_hr(shmc_plat_fault_set(c->syscall, 1, c->native_error), S_OK);
        if (c->on_open) {
            assert_hr(shmc_plat_region_open(&o, name), c->expected);
            assert_null(o.base);
        } else {
            assert_hr(shmc_plat_region_create(&r, name, 8192), c->expected);
            assert_null(r.base);
        }
        assert_int_equal(shmc_plat_fault_hits(c->syscall), 1);
        shmc_plat_fault_clear_all();
        assert_int_equal(shmc_plat_fault_hits(c->syscall), 0);
        assert_int_equal(tsupport_open_handles(), handles); /* nothing leaked */
        if (c->on_open) {
            /* the region itself is intact */
            assert_hr(shmc_plat_region_open(&o, name), S_OK);
            shmc_plat_region_close(&o);
            shmc_plat_region_close(&r);
            assert_hr(shmc_plat_region_unlink(name), S_OK);
        } else {
            /* a failed create leaves no name behind */
            assert_hr(shmc_plat_region_open(&o, name), SHM_E_NAME_NOT_FOUND);
        }
    }
    assert_hr(shmc_plat_fault_set("no_such_call", 1, 1), E_INVALIDARG);
    assert_hr(shmc_plat_fault_set(NULL, 1, 1), E_INVALIDARG);
}

/* The n-th call fails, earlier ones succeed. */
static void fault_counts_calls(void **state)
{
    (void)state;
    char n1[64], n2[64];
    shmc_plat_region a, b;
    tsupport_name(n1, sizeof(n1), "nth");
    tsupport_name(n2, sizeof(n2), "nth");
#ifdef _WIN32
    const char *call = "CreateFileMappingW";
    int err = 8;
#else
    const char *call = "shm_open";
    int err = ENOMEM;
#endif
    assert_hr(shmc_plat_fault_set(call, 2, err), S_OK);
    assert_hr(shmc_plat_region_create(&a, n1, 4096), S_OK);
    assert_hr(shmc_plat_region_create(&b, n2, 4096), E_OUTOFMEMORY);
    assert_hr(shmc_plat_fault_set(call, 0, 0), S_OK);
    assert_hr(shmc_plat_region_create(&b, n2, 4096), S_OK);
    shmc_plat_region_close(&a);
    shmc_plat_region_close(&b);
    assert_hr(shmc_plat_region_unlink(n1), S_OK);
    assert_hr(shmc_plat_region_unlink(n2), S_OK);
}

/* ---- listing (for reclaiming stale regions) -------------------------------- */

typedef struct seen {
    char prefix[64];
    int count;
    bool foreign;
} seen;

static bool count_name(const char *name, void *ctx)
{
    seen *s = ctx;
    if (strncmp(name, s->prefix, strlen(s->prefix)) != 0)
        s->foreign = true;
    s->count++;
    return true;
}

static void list_by_prefix(void **state)
{
    (void)state;
    shmc_plat_region r[3];
    char names[3][64];
    seen s = {{0}, 0, false};
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    snprintf(s.prefix, sizeof(s.prefix), "tst-list-%llu-", (unsigned long long)self.pid);
    for (int i = 0; i < 3; i++) {
        tsupport_name(names[i], sizeof(names[i]), "list");
        assert_hr(shmc_plat_region_create(&r[i], names[i], 4096), S_OK);
    }
    HRESULT hr = shmc_plat_region_list(s.prefix, count_name, &s);
#ifdef _WIN32
    assert_hr(hr, S_FALSE); /* Windows cannot list, and needs no reclaiming */
    assert_int_equal(s.count, 0);
#else
    assert_hr(hr, S_OK);
    assert_int_equal(s.count, 3);
    assert_false(s.foreign);
#endif
    for (int i = 0; i < 3; i++) {
        shmc_plat_region_close(&r[i]);
        assert_hr(shmc_plat_region_unlink(names[i]), S_OK);
    }
    s.count = 0;
    assert_true(SUCCEEDED(shmc_plat_region_list(s.prefix, count_name, &s)));
    assert_int_equal(s.count, 0);
    assert_hr(shmc_plat_region_list(NULL, count_name, &s), E_INVALIDARG);
    assert_hr(shmc_plat_region_list("x", NULL, &s), E_INVALIDARG);
}

/* ---- create with an initialiser: publish only what is ready ------------ */

typedef struct init_seen {
    const char *name;
    int calls;
    size_t size;
    HRESULT open_during_init;
} init_seen;

static void init_marker(void *base, size_t size, void *ctx)
{
    init_seen *rec = ctx;
    shmc_plat_region o;
    rec->calls++;
    rec->size = size;
    for (size_t i = 0; i < size; i++) {
        if (((unsigned char *)base)[i] != 0) {
            rec->size = 0; /* not zero-filled */
            break;
        }
    }
    /* can another opener find the name yet? */
    rec->open_during_init = shmc_plat_region_open(&o, rec->name);
    shmc_plat_region_close(&o);
    memcpy(base, "ready", 6);
}

static void create_init_publishes_initialised(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r, o;
    init_seen record = {name, 0, 0, S_OK};
    tsupport_name(name, sizeof(name), "init");
    assert_hr(shmc_plat_region_create_init(&r, name, 5000, init_marker, &record), S_OK);
    assert_int_equal(record.calls, 1);
    assert_int_equal(record.size, r.size); /* zero-filled, whole mapping */
    assert_int_equal(r.size % shmc_plat_page_size(), 0);
    assert_string_equal(r.name, name);
#ifdef _WIN32
    /* a mapping is named from the start (platform.h says so) */
    assert_hr(record.open_during_init, S_OK);
#else
    /* not findable before init returned */
    assert_hr(record.open_during_init, SHM_E_NAME_NOT_FOUND);
#endif
    assert_hr(shmc_plat_region_open(&o, name), S_OK);
    assert_string_equal((char *)o.base, "ready");
    unsigned mode = 0;
    assert_hr(shmc_plat_region_access(&r, &mode), S_OK);
    assert_int_equal(mode, 0600);
    shmc_plat_region_close(&o);

    /* the name is taken: an error, and the existing region is untouched */
    init_seen again = {name, 0, 0, S_OK};
    memcpy(r.base, "first", 6);
    assert_hr(shmc_plat_region_create_init(&o, name, 5000, init_marker, &again), SHM_E_NAME_EXISTS);
    assert_null(o.base);
    assert_string_equal((char *)r.base, "first");

    /* bad arguments, and no init function */
    assert_hr(shmc_plat_region_create_init(NULL, name, 10, init_marker, &again), E_INVALIDARG);
    assert_hr(shmc_plat_region_create_init(&o, "a/b", 10, init_marker, &again), E_INVALIDARG);
    assert_hr(shmc_plat_region_create_init(&o, NULL, 10, init_marker, &again), E_INVALIDARG);
    char other[64];
    tsupport_name(other, sizeof(other), "init");
    assert_hr(shmc_plat_region_create_init(&o, other, 0, init_marker, &again), E_INVALIDARG);
    assert_hr(shmc_plat_region_create_init(&o, other, 10, NULL, NULL), S_OK);
    shmc_plat_region_close(&o);
    assert_hr(shmc_plat_region_unlink(other), S_OK);

    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}

static void create_init_failures_clean_up(void **state)
{
    (void)state;
#ifdef _WIN32
    static const fault_case cases[] = {
        {"CreateFileMappingW", 8, E_OUTOFMEMORY, false},
        {"MapViewOfFile", 5, E_ACCESSDENIED, false},
    };
#else
    static const fault_case cases[] = {
        {"open", EMFILE, HRESULT_FROM_WIN32(ERROR_TOO_MANY_OPEN_FILES), false},
        {"fchmod", EPERM, E_ACCESSDENIED, false},
        {"ftruncate", ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL), false},
        {"mmap", ENOMEM, E_OUTOFMEMORY, false},
        {"linkat", ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL), false},
        {"linkat", EEXIST, SHM_E_NAME_EXISTS, false},
    };
#endif
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[64];
        shmc_plat_region r, o;
        init_seen record = {name, 0, 0, S_OK};
        tsupport_name(name, sizeof(name), "initfault");
        long handles = tsupport_open_handles();
        assert_hr(shmc_plat_fault_set(cases[i].syscall, 1, cases[i].native_error), S_OK);
        assert_hr(shmc_plat_region_create_init(&r, name, 8192, init_marker, &record),
                  cases[i].expected);
        shmc_plat_fault_clear_all();
        assert_null(r.base);
        assert_int_equal(tsupport_open_handles(), handles);               /* nothing leaked */
        assert_hr(shmc_plat_region_open(&o, name), SHM_E_NAME_NOT_FOUND); /* no name left */
    }
}

#ifndef _WIN32
/* Without O_TMPFILE: create, then init (the name is visible meanwhile). */
static void create_init_falls_back(void **state)
{
    (void)state;
    char name[64];
    shmc_plat_region r, o;
    init_seen record = {name, 0, 0, S_OK};
    tsupport_name(name, sizeof(name), "initfb");
    assert_hr(shmc_plat_fault_set("open", 1, EOPNOTSUPP), S_OK);
    assert_hr(shmc_plat_region_create_init(&r, name, 100, init_marker, &record), S_OK);
    shmc_plat_fault_clear_all();
    assert_int_equal(record.calls, 1);
    assert_hr(record.open_during_init, S_OK);
    assert_hr(shmc_plat_region_open(&o, name), S_OK);
    assert_string_equal((char *)o.base, "ready");
    shmc_plat_region_close(&o);
    shmc_plat_region_close(&r);
    assert_hr(shmc_plat_region_unlink(name), S_OK);
}
#endif

static const tsupport_child children[] = {
    {"echo", child_echo},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_open_share_bytes),
        cmocka_unit_test(close_zeroed_is_safe),
        cmocka_unit_test(name_errors_are_distinct),
        cmocka_unit_test(child_sees_the_same_bytes),
        cmocka_unit_test(owner_only_access),
#ifndef _WIN32
        cmocka_unit_test(open_refuses_shared_mode),
        cmocka_unit_test(open_of_unsized_object),
        cmocka_unit_test(mappings_have_a_guard_page),
#endif
        cmocka_unit_test(failures_clean_up),
        cmocka_unit_test(fault_counts_calls),
        cmocka_unit_test(list_by_prefix),
        cmocka_unit_test(create_init_publishes_initialised),
        cmocka_unit_test(create_init_failures_clean_up),
#ifndef _WIN32
        cmocka_unit_test(create_init_falls_back),
#endif
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
