/*
 * test_shmstream.c - what is particular to the shared-memory stream (its
 * IStream semantics are in test_stream.c): argument and name errors, the
 * name-lifetime rule, owner-only access, sharing with another process,
 * two processes writing disjoint ranges concurrently, a killed creator and
 * reclaim, headers with adversarial values (set in-process, and rewritten
 * by another process while this one works), and clean-up on every failure
 * path (OS faults, allocation failures).
 *
 * Runs alone (RUN_SERIAL): reclaim scans every region of the user, and a
 * concurrent test that creates a stream would reclaim what these tests
 * plant and then look for.
 */
#define COBJMACROS
#include "shstream.h"

#include "alloc.h"
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* ---- helpers ------------------------------------------------------------ */

static HRESULT set_size(IStream *s, uint64_t n)
{
    ULARGE_INTEGER u;
    u.QuadPart = n;
    return IStream_SetSize(s, u);
}

static void write_at(IStream *s, int64_t at, const void *p, ULONG n)
{
    ULONG done = 0;
    tsupport_stream_seek(s, at);
    assert_hr(IStream_Write(s, p, n, &done), S_OK);
    assert_int_equal(done, n);
}

static void read_at(IStream *s, int64_t at, void *p, ULONG n)
{
    ULONG done = 0;
    tsupport_stream_seek(s, at);
    assert_hr(IStream_Read(s, p, n, &done), S_OK);
    assert_int_equal(done, n);
}

static shmc_stream_hdr *hdr_of(IStream *s)
{
    shmc_stream_store *st = shmc_stream_store_of(s);
    assert_non_null(st);
    return st->hdr;
}

/* Opening must fail with `expected`, leaving the out pointer NULL. */
static void open_fails(const char *name, HRESULT expected)
{
    IStream *o = (IStream *)1;
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), expected);
    assert_null(o);
}

static void release_last(IStream *s)
{
    assert_int_equal(IStream_Release(s), 0);
}

/* A deterministic generator for the random parts of the tests. */
static uint64_t next_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* ---- a gate between processes: a small plain region --------------------- */

typedef struct gate {
    _Atomic uint32_t ready;   /* children that are ready */
    _Atomic uint32_t go;      /* the parent says start */
    _Atomic uint32_t stop;    /* the parent says stop */
    _Atomic uint64_t count;   /* what a child did */
    _Atomic uint64_t done[2]; /* two writers: the end of each one's last write */
} gate;

/* Waits (yielding, then sleeping a millisecond at a time) until *v >= want.
 * Bounded by a count of sleeps (about a minute), not by a clock. */
static bool wait_at_least(_Atomic uint32_t *v, uint32_t want)
{
    for (uint32_t i = 0; i < 1000 + 60000; i++) {
        if (atomic_load(v) >= want)
            return true;
        if (i < 1000)
            shmc_plat_thread_yield();
        else
            shmc_plat_sleep_ms(1);
    }
    return atomic_load(v) >= want;
}

/* Spins (yielding the CPU, never sleeping) until *v >= want, so that two
 * processes start within microseconds of each other. Bounded by a count. */
static bool spin_until(_Atomic uint32_t *v, uint32_t want)
{
    for (uint64_t i = 0; i < 100000000ull; i++) {
        if (atomic_load(v) >= want)
            return true;
        shmc_plat_thread_yield();
    }
    return false;
}

/* "stream:gate" for a child's argument. */
static void two_names(char *out, size_t size, const char *a, const char *b)
{
    snprintf(out, size, "%s:%s", a, b);
}

static bool split_names(const char *arg, char *a, char *b, size_t size)
{
    const char *colon = arg ? strchr(arg, ':') : NULL;
    if (!colon || (size_t)(colon - arg) >= size || strlen(colon + 1) >= size)
        return false;
    memcpy(a, arg, (size_t)(colon - arg));
    a[colon - arg] = '\0';
    strcpy(b, colon + 1);
    return true;
}

/* ---- arguments and names ------------------------------------------------ */

static void create_and_open_errors(void **state)
{
    (void)state;
    char name[64], missing[64];
    IStream *s = (IStream *)1, *o = NULL;
    long handles = tsupport_open_handles();
    tsupport_name(name, sizeof(name), "args");
    tsupport_name(missing, sizeof(missing), "args");

    assert_hr(ShmCreateStreamOnSharedMemory(name, 100, 0, NULL), E_INVALIDARG);
    assert_hr(ShmCreateStreamOnSharedMemory(name, 100, 1, &s), STG_E_INVALIDFLAG);
    assert_null(s);
    s = (IStream *)1;
    assert_hr(ShmCreateStreamOnSharedMemory(name, 100, 0x80000000u, &s), STG_E_INVALIDFLAG);
    assert_null(s);
    static const char *const bad[] = {"", "a/b", "../x", ".hidden", "-x", "a b", "a:b", "/abs"};
    char too_long[SHM_MAX_NAME + 2];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
        const char *n = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : too_long;
        s = (IStream *)1;
        assert_hr(ShmCreateStreamOnSharedMemory(n, 100, 0, &s), E_INVALIDARG);
        assert_null(s);
        open_fails(n, E_INVALIDARG);
    }
    /* capacities: 0 and unaddressable ones are bad arguments */
    static const ULONGLONG bad_sizes[] = {0, UINT64_MAX, (ULONGLONG)INT64_MAX,
                                          (ULONGLONG)INT64_MAX - 4096};
    for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
        s = (IStream *)1;
        assert_hr(ShmCreateStreamOnSharedMemory(name, bad_sizes[i], 0, &s), E_INVALIDARG);
        assert_null(s);
    }
    /* addressable in principle, but no OS gives a mapping that large */
    s = (IStream *)1;
    HRESULT hr = ShmCreateStreamOnSharedMemory(name, 1ull << 62, 0, &s);
    assert_true(FAILED(hr));
    assert_null(s);
#ifndef _WIN32
    assert_hr(hr, E_OUTOFMEMORY);
#endif
    open_fails(name, SHM_E_NAME_NOT_FOUND); /* nothing left by the failures */

    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, NULL), E_INVALIDARG);
    open_fails(NULL, E_INVALIDARG);
    open_fails(missing, SHM_E_NAME_NOT_FOUND);
    assert_hr(ShmCreateStreamOnSharedMemory(name, 100, 0, &s), S_OK);
    o = (IStream *)1;
    assert_hr(ShmOpenStreamOnSharedMemory(name, 2, &o), STG_E_INVALIDFLAG);
    assert_null(o);
    IStream *dup = (IStream *)1;
    assert_hr(ShmCreateStreamOnSharedMemory(name, 100, 0, &dup), SHM_E_NAME_EXISTS);
    assert_null(dup);
    /* the capacity is what was asked, not the page-rounded mapping */
    assert_hr(set_size(s, 100), S_OK);
    assert_hr(set_size(s, 101), STG_E_MEDIUMFULL);
    release_last(s);
    open_fails(name, SHM_E_NAME_NOT_FOUND);
    assert_int_equal(tsupport_open_handles(), handles);
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* NULL name: "anon-" and 32 hex digits (128 random bits); Stat reports it,
 * and it opens like any other. */
static void anonymous_names(void **state)
{
    (void)state;
    IStream *a = NULL, *b = NULL, *o = NULL;
    char names[2][SHM_MAX_NAME + 1];
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &a), S_OK);
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &b), S_OK);
    IStream *both[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        STATSTG st;
        assert_hr(IStream_Stat(both[k], &st, STATFLAG_DEFAULT), S_OK);
        assert_non_null(st.pwcsName);
        size_t i = 0;
        for (; st.pwcsName[i] && i < SHM_MAX_NAME; i++)
            names[k][i] = (char)st.pwcsName[i];
        names[k][i] = '\0';
        ShmCoTaskMemFree(st.pwcsName);
        assert_int_equal(strlen(names[k]), 5 + 32);
        assert_memory_equal(names[k], "anon-", 5);
        for (i = 5; i < 37; i++)
            assert_true(is_hex(names[k][i]));
    }
    assert_string_not_equal(names[0], names[1]);
    write_at(a, 0, "anon", 4);
    assert_hr(ShmOpenStreamOnSharedMemory(names[0], 0, &o), S_OK);
    char buf[4];
    read_at(o, 0, buf, 4);
    assert_memory_equal(buf, "anon", 4);
    release_last(o);
    release_last(a);
    release_last(b);
    open_fails(names[0], SHM_E_NAME_NOT_FOUND);
    open_fails(names[1], SHM_E_NAME_NOT_FOUND);
}

/* ---- the name-lifetime rule --------------------------------------------- */

static void name_lives_until_creator_released(void **state)
{
    (void)state;
    char name[64], buf[16];
    IStream *a = NULL, *a2 = NULL, *b = NULL, *c = NULL;
    tsupport_name(name, sizeof(name), "life");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 8192, 0, &a), S_OK);
    write_at(a, 0, "abc", 3);
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &b), S_OK);
    assert_int_equal(tsupport_stream_pos(b), 0); /* its own pointer */
    assert_int_equal(tsupport_stream_pos(a), 3);
    read_at(b, 0, buf, 3);
    assert_memory_equal(buf, "abc", 3);

    /* a clone of the creator keeps the name alive */
    assert_hr(IStream_Clone(a, &a2), S_OK);
    release_last(a);
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &c), S_OK);
    release_last(c);
    release_last(a2);
    open_fails(name, SHM_E_NAME_NOT_FOUND);

    /* an opener keeps its bytes */
    write_at(b, 3, "def", 3);
    read_at(b, 0, buf, 6);
    assert_memory_equal(buf, "abcdef", 6);
    assert_hr(set_size(b, 5000), S_OK);
    assert_int_equal(tsupport_stream_size(b), 5000);

    /* Re-creating the name while an opener of the old region lives: POSIX
     * frees the name at once, Windows only with the last handle (see
     * docs/stream.md). Either way the opener's region is not the new one. */
    HRESULT hr = ShmCreateStreamOnSharedMemory(name, 8192, 0, &c);
#ifdef _WIN32
    assert_hr(hr, SHM_E_NAME_EXISTS);
    assert_null(c);
    release_last(b);
    assert_hr(ShmCreateStreamOnSharedMemory(name, 8192, 0, &c), S_OK);
#else
    assert_hr(hr, S_OK);
    assert_int_equal(tsupport_stream_size(c), 0);
    assert_int_equal(tsupport_stream_size(b), 5000);
    release_last(b);
#endif
    assert_int_equal(tsupport_stream_size(c), 0);
    release_last(c);
    open_fails(name, SHM_E_NAME_NOT_FOUND);
}

static void access_is_owner_only(void **state)
{
    (void)state;
    char name[64];
    IStream *s = NULL;
    shmc_plat_region r;
    unsigned mode = 0;
#ifndef _WIN32
    mode_t old = umask(0); /* a permissive umask must not widen access */
#endif
    tsupport_name(name, sizeof(name), "mode");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 4096, 0, &s), S_OK);
#ifndef _WIN32
    umask(old);
    char path[256];
    struct stat st;
    snprintf(path, sizeof(path), "/dev/shm/shmcom-%u-%s", (unsigned)geteuid(), name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_uid, geteuid());
#endif
    assert_hr(shmc_plat_region_open(&r, name), S_OK);
    assert_hr(shmc_plat_region_access(&r, &mode), S_OK);
    assert_int_equal(mode, 0600);
    shmc_plat_region_close(&r);
    release_last(s);
}

/* ---- another process ------------------------------------------------------ */

static int child_share(const char *name)
{
    IStream *s = NULL;
    STATSTG st;
    char buf[16];
    ULONG n = 0;
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    CHILD_CHECK(SUCCEEDED(ShmOpenStreamOnSharedMemory(name, 0, &s)));
    CHILD_CHECK(SUCCEEDED(IStream_Stat(s, &st, STATFLAG_DEFAULT)));
    CHILD_CHECK(st.type == STGTY_STREAM && st.cbSize.QuadPart == 6);
    CHILD_CHECK(st.pwcsName && st.pwcsName[0] == (OLECHAR)name[0]);
    ShmCoTaskMemFree(st.pwcsName);
    /* the same bytes, and a pointer of its own at 0 */
    CHILD_CHECK(IStream_Read(s, buf, sizeof(buf), &n) == S_OK && n == 6);
    CHILD_CHECK(!memcmp(buf, "parent", 6));
    CHILD_CHECK(IStream_Seek(s, zero, STREAM_SEEK_END, NULL) == S_OK);
    CHILD_CHECK(IStream_Write(s, "child", 5, &n) == S_OK && n == 5);
    ULARGE_INTEGER sz;
    sz.QuadPart = 1000;
    CHILD_CHECK(IStream_SetSize(s, sz) == S_OK);
    LARGE_INTEGER at;
    at.QuadPart = 500;
    CHILD_CHECK(IStream_Seek(s, at, STREAM_SEEK_SET, NULL) == S_OK);
    CHILD_CHECK(IStream_Write(s, "mid", 3, &n) == S_OK);
    CHILD_CHECK(IStream_Release(s) == 0);
    return 0;
}

static void another_process_sees_the_same_stream(void **state)
{
    (void)state;
    char name[64];
    unsigned char buf[1000];
    IStream *s = NULL;
    shmc_plat_proc child;
    tsupport_name(name, sizeof(name), "share");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 65536, 0, &s), S_OK);
    write_at(s, 0, "parent", 6);
    tsupport_spawn(&child, "share", name);
    assert_int_equal(tsupport_join(&child, 60000), 0);
    /* its size changes and its bytes, here */
    assert_int_equal(tsupport_stream_size(s), 1000);
    assert_int_equal(tsupport_stream_pos(s), 6); /* our pointer did not move */
    read_at(s, 0, buf, 1000);
    assert_memory_equal(buf, "parentchild", 11);
    assert_memory_equal(buf + 500, "mid", 3);
    for (int i = 11; i < 500; i++)
        assert_int_equal(buf[i], 0);
    release_last(s);
}

/* ---- the bytes in place (ShmGetStreamMemory) ------------------------------ */

static int child_inplace(const char *name)
{
    IStream *s = NULL;
    void *data = NULL;
    ULONGLONG cap = 0;
    CHILD_CHECK(SUCCEEDED(ShmOpenStreamOnSharedMemory(name, 0, &s)));
    CHILD_CHECK(ShmGetStreamMemory(s, &data, &cap) == S_OK && data && cap == 65536);
    /* the parent's Write, here in place; ours goes the other way */
    CHILD_CHECK(!memcmp(data, "written", 7));
    memcpy((unsigned char *)data + 60000, "in place", 8);
    memcpy((unsigned char *)data + cap - 1, "!", 1);
    ULARGE_INTEGER sz;
    sz.QuadPart = cap;
    CHILD_CHECK(IStream_SetSize(s, sz) == S_OK);
    CHILD_CHECK(IStream_Release(s) == 0);
    return 0;
}

static void stream_memory_in_place(void **state)
{
    (void)state;
    char name[64];
    IStream *s = NULL, *c = NULL, *o = NULL;
    void *data = NULL, *cdata = NULL, *odata = NULL;
    ULONGLONG cap = 0, ocap = 0;
    unsigned char buf[8];
    shmc_plat_proc child;
    tsupport_name(name, sizeof(name), "inplace");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 65536, 0, &s), S_OK);
    assert_hr(ShmGetStreamMemory(s, &data, &cap), S_OK);
    assert_non_null(data);
    assert_int_equal(cap, 65536);
    /* capacity is optional */
    assert_hr(ShmGetStreamMemory(s, &cdata, NULL), S_OK);
    assert_ptr_equal(cdata, data);
    /* a Write shows in place, and a store in place shows to Read */
    write_at(s, 0, "written", 7);
    assert_memory_equal(data, "written", 7);
    memcpy(data, "W", 1);
    read_at(s, 0, buf, 7);
    assert_memory_equal(buf, "Written", 7);
    memcpy(data, "w", 1);
    /* a clone maps nothing new; another open has its own view of the
     * same bytes */
    assert_hr(IStream_Clone(s, &c), S_OK);
    assert_hr(ShmGetStreamMemory(c, &cdata, NULL), S_OK);
    assert_ptr_equal(cdata, data);
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), S_OK);
    assert_hr(ShmGetStreamMemory(o, &odata, &ocap), S_OK);
    assert_int_equal(ocap, 65536);
    assert_memory_equal(odata, "written", 7);
    /* another process, in place both ways; the whole capacity is there
     * whatever the size was */
    tsupport_spawn(&child, "inplace", name);
    assert_int_equal(tsupport_join(&child, 60000), 0);
    assert_int_equal(tsupport_stream_size(s), 65536);
    read_at(s, 60000, buf, 8);
    assert_memory_equal(buf, "in place", 8);
    assert_int_equal(((unsigned char *)odata)[65535], '!');
    /* A header rewritten by another process steers nothing here: the
     * geometry is the one validated at create/open. (The header is the
     * page before the data.) */
    shmc_stream_hdr *h = (shmc_stream_hdr *)((unsigned char *)data - shmc_plat_page_size());
    uint64_t saved = atomic_load(&h->capacity);
    atomic_store(&h->capacity, UINT64_MAX / 2);
    assert_hr(ShmGetStreamMemory(o, &odata, &ocap), S_OK);
    assert_int_equal(ocap, 65536);
    assert_hr(IStream_Read(o, buf, 1, NULL), STG_E_INVALIDHEADER);
    atomic_store(&h->capacity, saved);
    assert_hr(IStream_Read(o, buf, 1, NULL), S_OK);
    assert_int_equal(IStream_Release(o), 0);
    assert_int_equal(IStream_Release(c), 0); /* a clone is an object of its own */
    release_last(s);
}

static void stream_memory_errors(void **state)
{
    (void)state;
    char name[64];
    IStream *s = NULL, *heap = NULL;
    void *data = (void *)1;
    ULONGLONG cap = 1;
    tsupport_name(name, sizeof(name), "inplace-err");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 4096, 0, &s), S_OK);
    assert_hr(ShmGetStreamMemory(NULL, &data, &cap), E_INVALIDARG);
    assert_null(data);
    assert_int_equal(cap, 0);
    cap = 1;
    assert_hr(ShmGetStreamMemory(s, NULL, &cap), E_INVALIDARG);
    assert_int_equal(cap, 0);
    assert_hr(ShmGetStreamMemory(NULL, NULL, NULL), E_INVALIDARG);
    /* a heap stream moves when it grows: it has no fixed memory to give */
    assert_hr(shmc_stream_create_heap(0, &heap), S_OK);
    data = (void *)1;
    cap = 1;
    assert_hr(ShmGetStreamMemory(heap, &data, &cap), E_INVALIDARG);
    assert_null(data);
    assert_int_equal(cap, 0);
    assert_int_equal(IStream_Release(heap), 0);
    /* another implementation of IStream (only its vtable is looked at) */
    static const IStreamVtbl foreign_vtbl;
    IStream foreign = {&foreign_vtbl};
    data = (void *)1;
    assert_hr(ShmGetStreamMemory(&foreign, &data, NULL), E_INVALIDARG);
    assert_null(data);
    release_last(s);
}

/* Two processes, WRITES writes each (the issue asks for 10,000; a lost
 * update's window is nanoseconds wide, and at 100,000 a build that stores
 * the size instead of raising it fails nine runs in ten), to interleaved
 * slots: every write
 * extends the stream past the other's last write, so the size word is
 * fought over all the time. Each writer publishes the end of every write
 * it completed; after each of its own writes it reads the other's last
 * published end P and then the size S: S must cover its own write and P
 * (the size never shrinks here). A lost update (a stale, smaller size
 * stored over a larger one) shows at once to the writer that made it. At
 * the end every slot holds what its writer put there. */
enum { WRITES = 100000, SLOT = 16 };

typedef struct slot {
    uint32_t writer;
    uint32_t index;
    uint64_t check;
} slot;

static uint64_t slot_check(uint32_t writer, uint32_t index)
{
    return ((uint64_t)writer << 32 | index) * 0x9E3779B97F4A7C15ull;
}

/* The size now covers `mine` and what the other writer last published
 * (read first: its publication follows its size update). */
static bool size_covers(IStream *s, gate *gt, uint32_t writer, uint64_t mine)
{
    LARGE_INTEGER zero;
    ULARGE_INTEGER size;
    zero.QuadPart = 0;
    uint64_t other = atomic_load(&gt->done[1 - writer]);
    if (IStream_Seek(s, zero, STREAM_SEEK_END, &size) != S_OK)
        return false;
    return size.QuadPart >= mine && size.QuadPart >= other;
}

/* Returns 0 or the line of the failed check. */
static int write_slots(IStream *s, gate *gt, uint32_t writer)
{
    uint64_t mine = 0; /* end of my last completed write */
    for (uint32_t k = 0; k < WRITES; k++) {
        uint64_t at = ((uint64_t)k * 2 + writer) * SLOT;
        slot rec = {writer, k, slot_check(writer, k)};
        ULONG n = 0;
        LARGE_INTEGER li;
        li.QuadPart = (LONGLONG)at;
        if (!size_covers(s, gt, writer, mine)) /* nobody took it back meanwhile */
            return __LINE__;
        if (IStream_Seek(s, li, STREAM_SEEK_SET, NULL) != S_OK)
            return __LINE__;
        if (IStream_Write(s, &rec, sizeof(rec), &n) != S_OK || n != sizeof(rec))
            return __LINE__;
        mine = at + SLOT;
        if (!size_covers(s, gt, writer, mine))
            return __LINE__;
        atomic_store(&gt->done[writer], mine);
    }
    return 0;
}

static int child_writer(const char *arg)
{
    char name[64], gname[64];
    IStream *s = NULL;
    shmc_plat_region g;
    CHILD_CHECK(split_names(arg, name, gname, sizeof(name)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&g, gname)));
    gate *gt = g.base;
    CHILD_CHECK(SUCCEEDED(ShmOpenStreamOnSharedMemory(name, 0, &s)));
    atomic_fetch_add(&gt->ready, 1);
    CHILD_CHECK(spin_until(&gt->go, 1));
    int line = write_slots(s, gt, 1);
    if (line)
        fprintf(stderr, "child: write_slots failed at line %d\n", line);
    CHILD_CHECK(line == 0);
    CHILD_CHECK(IStream_Release(s) == 0);
    shmc_plat_region_close(&g);
    return 0;
}

static void two_processes_write_disjoint_ranges(void **state)
{
    (void)state;
    char name[64], gname[64], arg[160];
    IStream *s = NULL;
    shmc_plat_region g;
    shmc_plat_proc child;
    tsupport_name(name, sizeof(name), "race");
    tsupport_name(gname, sizeof(gname), "gate");
    assert_hr(ShmCreateStreamOnSharedMemory(name, 2 * WRITES * SLOT, 0, &s), S_OK);
    assert_hr(shmc_plat_region_create(&g, gname, sizeof(gate)), S_OK);
    gate *gt = g.base;
    two_names(arg, sizeof(arg), name, gname);
    tsupport_spawn(&child, "writer", arg);
    /* spin rather than sleep: a sleeper is woken on the spinner's CPU and
     * runs its whole loop before the other gets going */
    assert_true(spin_until(&gt->ready, 1));
    atomic_store(&gt->go, 1);
    assert_int_equal(write_slots(s, gt, 0), 0);
    assert_int_equal(tsupport_join(&child, 120000), 0);

    assert_int_equal(tsupport_stream_size(s), 2 * WRITES * SLOT);
    slot *all = malloc(2 * WRITES * SLOT);
    assert_non_null(all);
    read_at(s, 0, all, 2 * WRITES * SLOT);
    for (uint32_t k = 0; k < WRITES; k++) {
        for (uint32_t w = 0; w < 2; w++) {
            const slot *r = &all[k * 2 + w];
            assert_int_equal(r->writer, w);
            assert_int_equal(r->index, k);
            assert_true(r->check == slot_check(w, k));
        }
    }
    free(all);
    release_last(s);
    shmc_plat_region_close(&g);
    assert_hr(shmc_plat_region_unlink(gname), S_OK);
}

/* ---- a killed creator, and reclaim ---------------------------------------- */

/* Creates a stream, writes "alive", says so, and waits to be killed. */
static int child_creator(const char *arg)
{
    char name[64], gname[64];
    IStream *s = NULL;
    shmc_plat_region g;
    CHILD_CHECK(split_names(arg, name, gname, sizeof(name)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&g, gname)));
    gate *gt = g.base;
    CHILD_CHECK(SUCCEEDED(ShmCreateStreamOnSharedMemory(name, 4096, 0, &s)));
    CHILD_CHECK(IStream_Write(s, "alive", 5, NULL) == S_OK);
    atomic_fetch_add(&gt->ready, 1);
    for (int i = 0; i < 600 && !atomic_load(&gt->stop); i++)
        shmc_plat_sleep_ms(100);
    IStream_Release(s);
    shmc_plat_region_close(&g);
    return 0;
}

typedef struct creator {
    char name[64], gname[64];
    shmc_plat_region g;
    shmc_plat_proc p;
} creator;

static void creator_start(creator *c)
{
    char arg[160];
    tsupport_name(c->name, sizeof(c->name), "killed");
    tsupport_name(c->gname, sizeof(c->gname), "gate");
    assert_hr(shmc_plat_region_create(&c->g, c->gname, sizeof(gate)), S_OK);
    two_names(arg, sizeof(arg), c->name, c->gname);
    tsupport_spawn(&c->p, "creator", arg);
    assert_true(wait_at_least(&((gate *)c->g.base)->ready, 1));
}

static void creator_kill(creator *c)
{
    assert_hr(shmc_plat_proc_kill(&c->p), S_OK);
    assert_int_equal(tsupport_join(&c->p, 60000), 137);
    shmc_plat_region_close(&c->g);
    assert_hr(shmc_plat_region_unlink(c->gname), S_OK);
}

static bool region_exists(const char *name)
{
    shmc_plat_region r;
    HRESULT hr = shmc_plat_region_open(&r, name);
    shmc_plat_region_close(&r);
    return SUCCEEDED(hr);
}

static void killed_creator_leaves_nothing_behind(void **state)
{
    (void)state;
    creator c;
    IStream *o = NULL, *again = NULL;
    char buf[8];
    creator_start(&c);
    assert_hr(ShmOpenStreamOnSharedMemory(c.name, 0, &o), S_OK); /* the owner lives */
    read_at(o, 0, buf, 5);
    assert_memory_equal(buf, "alive", 5);
    creator_kill(&c);

    /* the opener keeps working on its bytes */
    write_at(o, 5, "!", 1);
    read_at(o, 0, buf, 6);
    assert_memory_equal(buf, "alive!", 6);
    /* and the name is dead to Open on both platforms */
    open_fails(c.name, SHM_E_NAME_NOT_FOUND);

    unsigned removed = 99;
#ifdef _WIN32
    assert_hr(shmc_reclaim_stale(&removed), S_FALSE); /* nothing to do */
    assert_int_equal(removed, 0);
    release_last(o);
    assert_false(region_exists(c.name)); /* it died with its last handle */
#else
    assert_true(region_exists(c.name)); /* SIGKILL left the name in /dev/shm */
    assert_hr(shmc_reclaim_stale(&removed), S_OK);
    assert_true(removed >= 1);
    assert_false(region_exists(c.name));
    release_last(o);
#endif
    /* the name can be created again */
    assert_hr(ShmCreateStreamOnSharedMemory(c.name, 4096, 0, &again), S_OK);
    assert_int_equal(tsupport_stream_size(again), 0);
    release_last(again);
    assert_false(region_exists(c.name));
}

/* Create of a name that a killed creator left behind reclaims it. */
static void create_takes_over_a_dead_name(void **state)
{
    (void)state;
    creator c;
    IStream *s = NULL;
    creator_start(&c);
    creator_kill(&c);
    assert_hr(ShmCreateStreamOnSharedMemory(c.name, 4096, 0, &s), S_OK);
    assert_int_equal(tsupport_stream_size(s), 0); /* a new stream, not the old bytes */
    release_last(s);
    assert_false(region_exists(c.name));
}

/* Reclaim removes nothing that lives. */
static void reclaim_leaves_live_streams(void **state)
{
    (void)state;
    creator c;
    IStream *o = NULL;
    unsigned removed;
    creator_start(&c);
    assert_true(SUCCEEDED(shmc_reclaim_stale(&removed)));
    assert_hr(shmc_reclaim_name(c.name), S_FALSE);
    assert_hr(ShmOpenStreamOnSharedMemory(c.name, 0, &o), S_OK);
    release_last(o);
    creator_kill(&c);
    assert_true(SUCCEEDED(shmc_reclaim_stale(&removed)));
    assert_false(region_exists(c.name));
}

/* A plain region with the header `h` copied in (or left zero). */
static void plant(shmc_plat_region *r, char *name, const shmc_region_hdr *h)
{
    tsupport_name(name, 64, "plant");
    assert_hr(shmc_plat_region_create(r, name, 8192), S_OK);
    if (h)
        memcpy(r->base, h, sizeof(*h));
}

static void make_hdr(shmc_region_hdr *h, uint64_t pid, uint64_t start)
{
    shmc_plat_procid owner = {pid, start};
    memset(h, 0, sizeof(*h));
    shmc_region_hdr_init(h, SHMC_REGION_KIND_STREAM, SHMC_STREAM_VERSION,
                         (uint32_t)sizeof(shmc_stream_hdr), &owner, 42);
}

#ifndef _WIN32
/* What reclaim removes and what it leaves, with planted headers. */
static void reclaim_judges_headers(void **state)
{
    (void)state;
    enum { ZERO, GARBAGE, SELF, IMPOSSIBLE_PID, REUSED_PID, NOT_OWNER_ONLY, N };
    static const bool stale[N] = {false, false, false, true, true, false};
    char names[N][64], path[256];
    shmc_plat_region r[N];
    shmc_region_hdr h;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);

    plant(&r[ZERO], names[ZERO], NULL); /* not published (or not ours) */
    memset(&h, 0xA5, sizeof(h));
    plant(&r[GARBAGE], names[GARBAGE], &h);
    make_hdr(&h, self.pid, self.start_time);
    plant(&r[SELF], names[SELF], &h);
    make_hdr(&h, 1ull << 40, 1); /* no process can have that pid */
    plant(&r[IMPOSSIBLE_PID], names[IMPOSSIBLE_PID], &h);
    make_hdr(&h, self.pid, self.start_time + 1); /* our pid, another process */
    plant(&r[REUSED_PID], names[REUSED_PID], &h);
    make_hdr(&h, 1ull << 40, 1);
    plant(&r[NOT_OWNER_ONLY], names[NOT_OWNER_ONLY], &h);
    snprintf(path, sizeof(path), "/dev/shm/shmcom-%u-%s", (unsigned)geteuid(),
             names[NOT_OWNER_ONLY]);
    assert_int_equal(chmod(path, 0640), 0); /* not ours to judge: open refuses it */

    assert_hr(shmc_reclaim_name(names[REUSED_PID]), S_OK);
    assert_hr(shmc_reclaim_name(names[REUSED_PID]), S_FALSE); /* gone already */
    assert_hr(shmc_reclaim_name(names[SELF]), S_FALSE);
    assert_hr(shmc_reclaim_name("no/such"), E_INVALIDARG);
    unsigned removed = 0;
    assert_hr(shmc_reclaim_stale(&removed), S_OK);
    assert_true(removed >= 1); /* IMPOSSIBLE_PID, and any other stale region */
    assert_hr(shmc_reclaim_stale(NULL), S_OK);
    assert_int_equal(chmod(path, 0600), 0); /* so that it can be looked at */
    for (int i = 0; i < N; i++) {
        assert_int_equal(region_exists(names[i]), !stale[i]);
        shmc_plat_region_close(&r[i]);
        if (!stale[i])
            assert_hr(shmc_plat_region_unlink(names[i]), S_OK);
    }
}

/* A runtime region whose creator was killed before it wrote the header
 * (or even sized the region) is judged by the pid in its name. */
static void reclaim_judges_unpublished_runtime_names(void **state)
{
    (void)state;
    enum { DEAD_BK, DEAD_UNSIZED_EP, LIVE_CN, MALFORMED, NOT_RUNTIME, N };
    static const bool stale[N] = {true, true, false, false, false};
    char names[N][64], path[128];
    shmc_plat_region r[N];
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    uint64_t rnd = shmc_plat_clock_ns();
    /* 999999999: above any pid_max, so no process has it */
    snprintf(names[DEAD_BK], 64, "bk.999999999.%016llx", (unsigned long long)rnd);
    snprintf(names[DEAD_UNSIZED_EP], 64, "ep.999999999.%016llx", (unsigned long long)rnd + 1);
    snprintf(names[LIVE_CN], 64, "cn.%llu.%016llx", (unsigned long long)self.pid,
             (unsigned long long)rnd + 2);
    snprintf(names[MALFORMED], 64, "bk.999999999.%llx", (unsigned long long)rnd + 3);
    snprintf(names[NOT_RUNTIME], 64, "tst-999999999.%016llx", (unsigned long long)rnd + 4);
    for (int i = 0; i < N; i++) {
        if (i == DEAD_UNSIZED_EP) { /* created, never sized: what shm_open leaves */
            snprintf(path, sizeof(path), "/shmcom-%u-%.63s", (unsigned)geteuid(), names[i]);
            int fd = shm_open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
            assert_true(fd >= 0);
            close(fd);
            memset(&r[i], 0, sizeof(r[i]));
        } else {
            assert_hr(shmc_plat_region_create(&r[i], names[i], 8192), S_OK); /* all zero */
            shmc_plat_region_close(&r[i]);
        }
    }
    assert_hr(shmc_reclaim_name(names[DEAD_BK]), S_OK);
    assert_hr(shmc_reclaim_name(names[LIVE_CN]), S_FALSE);
    unsigned removed = 0;
    assert_hr(shmc_reclaim_stale(&removed), S_OK);
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "/dev/shm/shmcom-%u-%.63s", (unsigned)geteuid(), names[i]);
        bool exists = access(path, F_OK) == 0;
        if (exists == stale[i])
            fail_msg("%s: %s", names[i], exists ? "left behind" : "removed");
        if (exists)
            assert_hr(shmc_plat_region_unlink(names[i]), S_OK);
    }
}

/* Creators scan for stale regions, but not every time. */
static void create_reclaims_now_and_then(void **state)
{
    (void)state;
    char a[64], b[64];
    shmc_plat_region ra, rb;
    shmc_region_hdr h;
    IStream *s = NULL;
    make_hdr(&h, 1ull << 40, 1);

    shmc_reclaim_maybe_reset(SHMC_PLAT_INFINITE); /* the next create scans, then none */
    plant(&ra, a, &h);
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &s), S_OK);
    release_last(s);
    assert_false(region_exists(a));

    plant(&rb, b, &h);
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &s), S_OK);
    release_last(s);
    assert_true(region_exists(b)); /* no second scan */

    shmc_reclaim_maybe_reset(SHMC_RECLAIM_INTERVAL_MS);
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &s), S_OK);
    release_last(s);
    assert_false(region_exists(b));
    shmc_plat_region_close(&ra);
    shmc_plat_region_close(&rb);
}
#else
static void reclaim_has_nothing_to_do(void **state)
{
    (void)state;
    char a[64];
    shmc_plat_region ra;
    shmc_region_hdr h;
    unsigned removed = 7;
    make_hdr(&h, 1ull << 40, 1);
    plant(&ra, a, &h);
    assert_hr(shmc_reclaim_stale(&removed), S_FALSE);
    assert_int_equal(removed, 0);
    assert_hr(shmc_reclaim_name(a), S_FALSE);
    assert_true(region_exists(a));       /* we hold it; it dies with us */
    open_fails(a, SHM_E_NAME_NOT_FOUND); /* its owner is dead */
    shmc_plat_region_close(&ra);
    assert_false(region_exists(a));
}
#endif

/* ---- adversarial headers, set in-process ---------------------------------- */

typedef struct mutation {
    const char *what;
    size_t offset; /* of the field in the stream header */
    int width;     /* 4 or 8 */
    uint64_t value;
    HRESULT on_open;
} mutation;

#define FIELD(f)  offsetof(shmc_stream_hdr, f)
#define RFIELD(f) (offsetof(shmc_stream_hdr, region) + offsetof(shmc_region_hdr, f))

/* CAP fills its mapping exactly (data_offset + CAP is a page multiple on
 * 4 KiB pages); AVAIL is what the mapping holds. */
enum { CAP = 8192 };

static uint64_t load_field(shmc_stream_hdr *h, size_t off, int width)
{
    unsigned char *p = (unsigned char *)h + off;
    if (width == 4)
        return atomic_load((_Atomic uint32_t *)(void *)p);
    return atomic_load((_Atomic uint64_t *)(void *)p);
}

static void store_field(shmc_stream_hdr *h, size_t off, int width, uint64_t v)
{
    unsigned char *p = (unsigned char *)h + off;
    if (width == 4)
        atomic_store((_Atomic uint32_t *)(void *)p, (uint32_t)v);
    else
        atomic_store((_Atomic uint64_t *)(void *)p, v);
}

static const mutation mutations[] = {
    {"magic 0", RFIELD(magic), 8, 0, SHM_E_NAME_NOT_FOUND},
    {"wrong magic", RFIELD(magic), 8, 0x1122334455667788ull, STG_E_INVALIDHEADER},
    {"kind", RFIELD(kind), 4, 2, STG_E_INVALIDHEADER},
    {"version", RFIELD(version), 4, SHMC_STREAM_VERSION + 1, STG_E_INVALIDHEADER},
    {"hdr_size small", RFIELD(hdr_size), 4, 64, STG_E_INVALIDHEADER},
    {"hdr_size huge", RFIELD(hdr_size), 4, 0xFFFFFFFFu, STG_E_INVALIDHEADER},
    {"capacity 0", FIELD(capacity), 8, 0, STG_E_INVALIDHEADER},
    {"capacity past the mapping", FIELD(capacity), 8, 1ull << 20, STG_E_INVALIDHEADER},
    {"capacity negative-looking", FIELD(capacity), 8, 0x8000000000000000ull, STG_E_INVALIDHEADER},
    {"capacity all ones", FIELD(capacity), 8, UINT64_MAX, STG_E_INVALIDHEADER},
    {"data_offset 0", FIELD(data_offset), 8, 0, STG_E_INVALIDHEADER},
    {"data_offset unaligned", FIELD(data_offset), 8, 4097, STG_E_INVALIDHEADER},
    {"data_offset past the mapping", FIELD(data_offset), 8, 1ull << 30, STG_E_INVALIDHEADER},
    {"data_offset all ones", FIELD(data_offset), 8, UINT64_MAX, STG_E_INVALIDHEADER},
    {"size capacity+1", FIELD(size), 8, CAP + 1, STG_E_INVALIDHEADER},
    {"size past the mapping", FIELD(size), 8, 1ull << 32, STG_E_INVALIDHEADER},
    {"size negative-looking", FIELD(size), 8, 0x8000000000000000ull, STG_E_INVALIDHEADER},
    {"size near UINT64_MAX", FIELD(size), 8, UINT64_MAX - 3, STG_E_INVALIDHEADER},
};
#define N_MUTATIONS (sizeof(mutations) / sizeof(mutations[0]))

/* What only Open looks at (operations use private copies). */
static const mutation open_only[] = {
    {"closed", RFIELD(state), 4, SHMC_REGION_CLOSED, SHM_E_NAME_NOT_FOUND},
    {"state garbage", RFIELD(state), 4, 77, SHM_E_NAME_NOT_FOUND},
    {"owner pid 0", RFIELD(owner_pid), 8, 0, STG_E_INVALIDHEADER},
    {"owner pid impossible", RFIELD(owner_pid), 8, 1ull << 40, SHM_E_NAME_NOT_FOUND},
    {"owner reused pid", RFIELD(owner_start), 8, 12345, SHM_E_NAME_NOT_FOUND},
};

/* Open validates: each bad value gives its error and no stream. */
static void open_validates_the_header(void **state)
{
    (void)state;
    char name[64];
    IStream *s = NULL, *o = NULL;
    tsupport_name(name, sizeof(name), "hostile");
    assert_hr(ShmCreateStreamOnSharedMemory(name, CAP, 0, &s), S_OK);
    assert_hr(set_size(s, 100), S_OK);
    shmc_stream_hdr *h = hdr_of(s);
    long handles = tsupport_open_handles();
    for (size_t k = 0; k < N_MUTATIONS + sizeof(open_only) / sizeof(open_only[0]); k++) {
        const mutation *m = k < N_MUTATIONS ? &mutations[k] : &open_only[k - N_MUTATIONS];
        uint64_t saved = load_field(h, m->offset, m->width);
        store_field(h, m->offset, m->width, m->value);
        print_message("open with %s\n", m->what);
        open_fails(name, m->on_open);
        store_field(h, m->offset, m->width, saved);
        assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), S_OK);
        release_last(o);
    }
    assert_int_equal(tsupport_open_handles(), handles); /* failed opens unmapped */
    release_last(s);
}

/* The fuzzers' entry point: a store over the caller's memory is checked
 * exactly as a region opened by name, and never frees that memory. */
static void open_memory_checks_as_open(void **state)
{
    (void)state;
    size_t page = shmc_plat_page_size();
    size_t size = page + CAP;
    unsigned char *mem = malloc(size);
    assert_non_null(mem);
    memset(mem, 0, size);
    shmc_stream_hdr *h = (shmc_stream_hdr *)mem;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    shmc_stream_hdr_init(h, CAP, page, &self, 1);

    IStream *s = (IStream *)1;
    assert_hr(shmc_stream_open_memory(NULL, size, &s), E_INVALIDARG);
    assert_null(s);
    assert_hr(shmc_stream_open_memory(mem, size, NULL), E_INVALIDARG);
    for (size_t k = 0; k < N_MUTATIONS + sizeof(open_only) / sizeof(open_only[0]); k++) {
        const mutation *m = k < N_MUTATIONS ? &mutations[k] : &open_only[k - N_MUTATIONS];
        uint64_t saved = load_field(h, m->offset, m->width);
        store_field(h, m->offset, m->width, m->value);
        print_message("open memory with %s\n", m->what);
        s = (IStream *)1;
        assert_hr(shmc_stream_open_memory(mem, size, &s), m->on_open);
        assert_null(s);
        store_field(h, m->offset, m->width, saved);
    }
    /* a mapping one byte short of the data: too small */
    assert_hr(shmc_stream_open_memory(mem, size - 1, &s), STG_E_INVALIDHEADER);

    assert_hr(shmc_stream_open_memory(mem, size, &s), S_OK);
    write_at(s, 10, "abc", 3);
    assert_memory_equal(mem + page + 10, "abc", 3);
    assert_int_equal(load_field(h, FIELD(size), 8), 13);
    STATSTG st;
    assert_hr(IStream_Stat(s, &st, STATFLAG_DEFAULT), S_OK);
    assert_null(st.pwcsName); /* no name */
    assert_int_equal(st.cbSize.QuadPart, 13);
    IStream *c;
    assert_hr(IStream_Clone(s, &c), S_OK);
    IStream_Release(s);
    char buf[3];
    read_at(c, 10, buf, 3);
    assert_memory_equal(buf, "abc", 3);
    IStream_Release(c);
    /* still the caller's, and its header as the stream left it */
    assert_int_equal(load_field(h, RFIELD(state), 4), SHMC_REGION_LIVE);
    free(mem);
}

/* Every operation that depends on the header checks it: a bad value gives
 * STG_E_INVALIDHEADER and changes nothing; restored, all works again. */
static void check_ops_fail(IStream *s, const char *what)
{
    char buf[64];
    ULONG n = 77;
    ULARGE_INTEGER u, r, w;
    LARGE_INTEGER li;
    STATSTG st;
    IStream *heap = NULL, *c = NULL;
    print_message("operations with %s\n", what);
    uint64_t pos = tsupport_stream_pos(s); /* Seek CUR needs no header */
    assert_hr(IStream_Read(s, buf, sizeof(buf), &n), STG_E_INVALIDHEADER);
    assert_int_equal(n, 0);
    n = 77;
    assert_hr(IStream_Write(s, "zz", 2, &n), STG_E_INVALIDHEADER);
    assert_int_equal(n, 0);
    li.QuadPart = 0;
    u.QuadPart = 0xCAFE;
    assert_hr(IStream_Seek(s, li, STREAM_SEEK_END, &u), STG_E_INVALIDHEADER);
    assert_int_equal(u.QuadPart, pos);
    assert_hr(set_size(s, 10), STG_E_INVALIDHEADER);
    memset(&st, 0x55, sizeof(st));
    assert_hr(IStream_Stat(s, &st, STATFLAG_DEFAULT), STG_E_INVALIDHEADER);
    assert_null(st.pwcsName);
    assert_hr(shmc_stream_create_heap(0, &heap), S_OK);
    u.QuadPart = 10;
    assert_hr(IStream_CopyTo(s, heap, u, &r, &w), STG_E_INVALIDHEADER);
    assert_int_equal(r.QuadPart, 0);
    assert_int_equal(w.QuadPart, 0);
    assert_hr(IStream_Write(heap, "abc", 3, NULL), S_OK);
    tsupport_stream_seek(heap, 0);
    assert_hr(IStream_CopyTo(heap, s, u, &r, &w), STG_E_INVALIDHEADER); /* as a destination */
    assert_int_equal(w.QuadPart, 0);
    release_last(heap);
    assert_hr(IStream_Clone(s, &c), S_OK); /* touches no shared memory */
    assert_hr(IStream_Read(c, buf, sizeof(buf), &n), STG_E_INVALIDHEADER);
    release_last(c);
    assert_int_equal(tsupport_stream_pos(s), pos);
}

static void operations_check_the_header(void **state)
{
    (void)state;
    char name[64], buf[CAP];
    IStream *s = NULL, *o = NULL;
    tsupport_name(name, sizeof(name), "hostile");
    assert_hr(ShmCreateStreamOnSharedMemory(name, CAP, 0, &s), S_OK);
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), S_OK);
    write_at(s, 0, "0123456789", 10);
    tsupport_stream_seek(s, 3);
    shmc_stream_hdr *h = hdr_of(s);
    for (size_t k = 0; k < N_MUTATIONS; k++) {
        const mutation *m = &mutations[k];
        uint64_t saved = load_field(h, m->offset, m->width);
        store_field(h, m->offset, m->width, m->value);
        check_ops_fail(s, m->what);
        check_ops_fail(o, m->what);
        store_field(h, m->offset, m->width, saved);
        read_at(o, 0, buf, 10);
        assert_memory_equal(buf, "0123456789", 10);
        assert_int_equal(tsupport_stream_size(s), 10);
    }
    /* a size that a peer raised to the capacity is honoured, and reads as
     * zeros past what was written */
    store_field(h, FIELD(size), 8, CAP);
    read_at(o, 0, buf, CAP);
    assert_memory_equal(buf, "0123456789", 10);
    for (int i = 10; i < CAP; i++)
        assert_int_equal(buf[i], 0);
    release_last(o);
    release_last(s);
}

/* ---- adversarial headers, rewritten by another process -------------------- */

/* Rewrites the header with random and adversarial values until told to
 * stop (or a bound on iterations is reached); now and then it puts the
 * good values back, so that the other side also sees working states. */
static int child_scribble(const char *arg)
{
    char name[64], gname[64];
    shmc_plat_region r, g;
    CHILD_CHECK(split_names(arg, name, gname, sizeof(name)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&g, gname)));
    CHILD_CHECK(SUCCEEDED(shmc_plat_region_open(&r, name)));
    gate *gt = g.base;
    shmc_stream_hdr *h = r.base;
    shmc_stream_hdr good;
    memcpy(&good, h, sizeof(good)); /* nobody writes it before we start */
    const uint64_t cap = atomic_load(&good.capacity), mapped = r.size;
    const uint64_t nasty[] = {0,          1,          cap - 1,        cap,        cap + 1,
                              mapped,     mapped + 1, 1ull << 31,     1ull << 32, INT64_MAX,
                              1ull << 63, UINT64_MAX, UINT64_MAX - 1, 4095,       4097};
    static const size_t fields8[] = {RFIELD(magic), FIELD(capacity), FIELD(data_offset),
                                     FIELD(size)};
    static const size_t fields4[] = {RFIELD(kind), RFIELD(version), RFIELD(hdr_size)};
    uint64_t x = 0x9E3779B97F4A7C15ull;
    atomic_store(&gt->ready, 1);
    uint64_t i = 0;
    for (; i < 1000000000ull && !atomic_load(&gt->stop); i++) {
        uint64_t rnd = next_rand(&x);
        uint64_t v = (rnd >> 8) % 4 == 0 ? next_rand(&x) : nasty[(rnd >> 16) % 15];
        switch (rnd % 8) {
        case 0: /* the good header back */
        case 1:
            store_field(h, FIELD(capacity), 8, atomic_load(&good.capacity));
            store_field(h, FIELD(data_offset), 8, atomic_load(&good.data_offset));
            store_field(h, RFIELD(magic), 8, SHMC_REGION_MAGIC);
            store_field(h, RFIELD(kind), 4, SHMC_REGION_KIND_STREAM);
            store_field(h, RFIELD(version), 4, SHMC_STREAM_VERSION);
            store_field(h, RFIELD(hdr_size), 4, sizeof(shmc_stream_hdr));
            store_field(h, FIELD(size), 8, v % (cap + 1));
            break;
        case 2:
        case 3:
        case 4:
            store_field(h, FIELD(size), 8, v); /* the one that matters most */
            break;
        case 5:
        case 6:
            store_field(h, fields8[(rnd >> 24) % 4], 8, v);
            break;
        default:
            store_field(h, fields4[(rnd >> 24) % 3], 4, v);
            break;
        }
    }
    atomic_store(&gt->count, i);
    shmc_plat_region_close(&r);
    shmc_plat_region_close(&g);
    return 0;
}

static bool allowed(HRESULT hr)
{
    return hr == S_OK || hr == STG_E_INVALIDHEADER || hr == STG_E_MEDIUMFULL ||
           hr == STG_E_SEEKERROR;
}

/* One random operation on s; checks what it returns. Counts, among the
 * operations that read the header, those that succeeded (*ok) and those
 * that found it bad (*bad). */
static void random_op(IStream *s, IStream *sink, uint64_t *x, unsigned *ok, unsigned *bad)
{
    bool reads_header = true;
    uint64_t r = next_rand(x);
    ULONG cb = (ULONG)((r >> 16) % 9000), n = 0xFFFFFFFFu;
    HRESULT hr;
    LARGE_INTEGER li;
    ULARGE_INTEGER u, rd, wr;
    STATSTG st;
    switch (r % 8) {
    case 0:
    case 1: {
        unsigned char *buf = malloc(cb ? cb : 1); /* exact size: ASan sees overruns */
        assert_non_null(buf);
        hr = IStream_Read(s, buf, cb, &n);
        assert_true(n <= cb);
        if (FAILED(hr))
            assert_int_equal(n, 0);
        free(buf);
        break;
    }
    case 2:
    case 3: {
        unsigned char *buf = malloc(cb ? cb : 1);
        assert_non_null(buf);
        memset(buf, (int)r, cb ? cb : 1);
        hr = IStream_Write(s, buf, cb, &n);
        assert_true(n == 0 || n == cb);
        free(buf);
        break;
    }
    case 4:
        li.QuadPart = (LONGLONG)((r >> 20) % (CAP + 200)) - ((r & 0x100) ? 100 : 0);
        reads_header = (r >> 8) % 4 == STREAM_SEEK_END;
        hr = IStream_Seek(s, li, (DWORD)((r >> 8) % 4), &u);
        assert_true(u.QuadPart <= (uint64_t)INT64_MAX);
        break;
    case 5:
        u.QuadPart = (r >> 20) % (2 * CAP);
        hr = IStream_SetSize(s, u);
        break;
    case 6:
        hr = IStream_Stat(s, &st, (r & 0x100) ? STATFLAG_DEFAULT : STATFLAG_NONAME);
        if (SUCCEEDED(hr)) {
            assert_true(st.cbSize.QuadPart <= CAP);
            ShmCoTaskMemFree(st.pwcsName);
        } else {
            assert_null(st.pwcsName);
        }
        break;
    default:
        if (r & 0x100) {
            u.QuadPart = cb;
            tsupport_stream_seek(sink, 0);
            hr = IStream_CopyTo(s, sink, u, &rd, &wr);
            assert_true(rd.QuadPart <= cb && wr.QuadPart <= rd.QuadPart);
        } else {
            IStream *c = NULL;
            unsigned char buf[64];
            assert_hr(IStream_Clone(s, &c), S_OK);
            hr = IStream_Read(c, buf, sizeof(buf), &n);
            assert_true(n <= sizeof(buf));
            release_last(c);
        }
        break;
    }
    if (!allowed(hr))
        fail_msg("operation %u returned 0x%08x", (unsigned)(r % 8), (unsigned)hr);
    if (reads_header && hr == S_OK)
        (*ok)++;
    if (hr == STG_E_INVALIDHEADER)
        (*bad)++;
}

static void header_rewritten_by_another_process(void **state)
{
    (void)state;
    enum { MIN_OPS = 20000, MAX_OPS = 50 * MIN_OPS };
    char name[64], gname[64], arg[160];
    IStream *s = NULL, *o = NULL, *sink = NULL;
    shmc_plat_region g;
    shmc_plat_proc child;
    shmc_stream_hdr good;
    tsupport_name(name, sizeof(name), "scribble");
    tsupport_name(gname, sizeof(gname), "gate");
    assert_hr(ShmCreateStreamOnSharedMemory(name, CAP, 0, &s), S_OK);
    assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), S_OK);
    assert_hr(shmc_stream_create_heap(0, &sink), S_OK);
    write_at(s, 0, "before", 6);
    memcpy(&good, hdr_of(s), sizeof(good));
    assert_hr(shmc_plat_region_create(&g, gname, sizeof(gate)), S_OK);
    gate *gt = g.base;
    two_names(arg, sizeof(arg), name, gname);
    tsupport_spawn(&child, "scribble", arg);
    assert_true(wait_at_least(&gt->ready, 1));

    /* both views, the creator's and an opener's; until both outcomes were
     * seen a good number of times, within a bound on iterations */
    uint64_t x = 0x2545F4914F6CDD1Dull;
    unsigned ok = 0, bad = 0, ops = 0;
    while (ops < MAX_OPS && (ops < MIN_OPS || ok < 100 || bad < 100)) {
        random_op((ops & 1) ? o : s, sink, &x, &ok, &bad);
        ops++;
    }
    atomic_store(&gt->stop, 1);
    assert_int_equal(tsupport_join(&child, 60000), 0);
    print_message("%u operations: %u read a good header, %u a bad one; %llu scribbles\n", ops, ok,
                  bad, (unsigned long long)atomic_load(&gt->count));
    assert_true(ok >= 100);
    assert_true(bad >= 100);
    assert_true(atomic_load(&gt->count) > 0);

    /* the good header back: everything works again */
    memcpy(hdr_of(s), &good, sizeof(good));
    assert_hr(set_size(s, 0), S_OK);
    write_at(s, 0, "after", 5);
    char buf[5];
    read_at(o, 0, buf, 5);
    assert_memory_equal(buf, "after", 5);
    release_last(sink);
    release_last(o);
    release_last(s);
    shmc_plat_region_close(&g);
    assert_hr(shmc_plat_region_unlink(gname), S_OK);
}

/* ---- failure paths ---------------------------------------------------------- */

typedef struct fault_case {
    const char *syscall;
    int native_error;
    HRESULT expected;
    bool on_open;
} fault_case;

static void os_failures_clean_up(void **state)
{
    (void)state;
#ifdef _WIN32
    static const fault_case cases[] = {
        {"CreateFileMappingW", 8 /* ERROR_NOT_ENOUGH_MEMORY */, E_OUTOFMEMORY, false},
        {"MapViewOfFile", 5 /* ERROR_ACCESS_DENIED */, E_ACCESSDENIED, false},
        {"BCryptGenRandom", 1, (HRESULT)0xD0000001, false},
        {"OpenFileMappingW", 5, E_ACCESSDENIED, true},
        {"MapViewOfFile", 8, E_OUTOFMEMORY, true},
    };
#else
    static const fault_case cases[] = {
        {"open", EMFILE, HRESULT_FROM_WIN32(ERROR_TOO_MANY_OPEN_FILES), false},
        {"fchmod", EPERM, E_ACCESSDENIED, false},
        {"ftruncate", ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL), false},
        {"mmap", ENOMEM, E_OUTOFMEMORY, false},
        {"linkat", ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL), false},
        {"getrandom", EIO, SHM_HRESULT_FROM_ERRNO(EIO), false},
        {"shm_open", EACCES, E_ACCESSDENIED, true},
        {"fstat", EIO, SHM_HRESULT_FROM_ERRNO(EIO), true},
        {"mmap", ENOMEM, E_OUTOFMEMORY, true},
    };
#endif
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const fault_case *c = &cases[i];
        char name[64];
        IStream *s = NULL, *o = (IStream *)1;
        tsupport_name(name, sizeof(name), "fault");
        if (c->on_open)
            assert_hr(ShmCreateStreamOnSharedMemory(name, 4096, 0, &s), S_OK);
        long handles = tsupport_open_handles();
        assert_hr(shmc_plat_fault_set(c->syscall, 1, c->native_error), S_OK);
        if (c->on_open)
            assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), c->expected);
        else
            assert_hr(ShmCreateStreamOnSharedMemory(name, 4096, 0, &o), c->expected);
        shmc_plat_fault_clear_all();
        assert_null(o);
        assert_int_equal(tsupport_open_handles(), handles);
        if (c->on_open) {
            assert_hr(ShmOpenStreamOnSharedMemory(name, 0, &o), S_OK); /* intact */
            release_last(o);
            release_last(s);
        }
        assert_false(region_exists(name)); /* a failed create leaves no name */
    }
}

/* Every allocation of create and open fails in turn. */
static void allocation_failures_clean_up(void **state)
{
    (void)state;
    char name[64], other[64];
    IStream *s = NULL, *o = NULL;
    tsupport_name(name, sizeof(name), "alloc");
    tsupport_name(other, sizeof(other), "alloc");
    long handles = tsupport_open_handles();

    shmc_alloc_fail_at(0);
    assert_hr(ShmCreateStreamOnSharedMemory(other, 4096, 0, &s), S_OK);
    unsigned long creates = shmc_alloc_fail_at(0);
    assert_hr(ShmOpenStreamOnSharedMemory(other, 0, &o), S_OK);
    unsigned long opens = shmc_alloc_fail_at(0);
    release_last(o);
    assert_true(creates >= 2 && opens >= 2);
    for (unsigned long i = 1; i <= creates; i++) {
        IStream *t = (IStream *)1;
        shmc_alloc_fail_at(i);
        assert_hr(ShmCreateStreamOnSharedMemory(name, 4096, 0, &t), E_OUTOFMEMORY);
        shmc_alloc_fail_reset();
        assert_null(t);
        assert_false(region_exists(name));
    }
    for (unsigned long i = 1; i <= opens; i++) {
        IStream *t = (IStream *)1;
        shmc_alloc_fail_at(i);
        assert_hr(ShmOpenStreamOnSharedMemory(other, 0, &t), E_OUTOFMEMORY);
        shmc_alloc_fail_reset();
        assert_null(t);
    }
    /* Stat's name is allocated for the caller */
    STATSTG st;
    memset(&st, 0x55, sizeof(st));
    shmc_alloc_fail_at(1);
    assert_hr(IStream_Stat(s, &st, STATFLAG_DEFAULT), STG_E_INSUFFICIENTMEMORY);
    shmc_alloc_fail_reset();
    assert_null(st.pwcsName);
    assert_hr(IStream_Stat(s, &st, STATFLAG_NONAME), S_OK);
    /* Clone */
    IStream *c = (IStream *)1;
    shmc_alloc_fail_at(1);
    assert_hr(IStream_Clone(s, &c), E_OUTOFMEMORY);
    shmc_alloc_fail_reset();
    assert_null(c);
    release_last(s);
    assert_int_equal(tsupport_open_handles(), handles);
}

static const tsupport_child children[] = {
    {"share", child_share},     {"inplace", child_inplace},   {"writer", child_writer},
    {"creator", child_creator}, {"scribble", child_scribble}, {NULL, NULL},
};

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_and_open_errors),
        cmocka_unit_test(anonymous_names),
        cmocka_unit_test(name_lives_until_creator_released),
        cmocka_unit_test(access_is_owner_only),
        cmocka_unit_test(another_process_sees_the_same_stream),
        cmocka_unit_test(stream_memory_in_place),
        cmocka_unit_test(stream_memory_errors),
        cmocka_unit_test(two_processes_write_disjoint_ranges),
        cmocka_unit_test(killed_creator_leaves_nothing_behind),
        cmocka_unit_test(create_takes_over_a_dead_name),
        cmocka_unit_test(reclaim_leaves_live_streams),
#ifndef _WIN32
        cmocka_unit_test(reclaim_judges_headers),
        cmocka_unit_test(reclaim_judges_unpublished_runtime_names),
        cmocka_unit_test(create_reclaims_now_and_then),
#else
        cmocka_unit_test(reclaim_has_nothing_to_do),
#endif
        cmocka_unit_test(open_validates_the_header),
        cmocka_unit_test(open_memory_checks_as_open),
        cmocka_unit_test(operations_check_the_header),
        cmocka_unit_test(header_rewritten_by_another_process),
        cmocka_unit_test(os_failures_clean_up),
        cmocka_unit_test(allocation_failures_clean_up),
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
