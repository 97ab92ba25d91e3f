/*
 * tsupport.c - shared test helpers (see tsupport.h).
 */
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <dirent.h>
#endif
#ifdef __linux__
#include <sched.h>
#endif

void tsupport_dispatch_child(int argc, char **argv, const tsupport_child *children)
{
    if (argc < 3 || strcmp(argv[1], "--child") != 0) {
        /* a parent: SHMCOM_TEST_FILTER=pattern runs only the tests whose
         * names match it (cmocka's filter: '*' and '?' wildcards) */
        const char *filter = getenv("SHMCOM_TEST_FILTER");
        if (filter && *filter)
            cmocka_set_test_filter(filter);
        return;
    }
    for (const tsupport_child *c = children; c && c->name; c++) {
        if (!strcmp(c->name, argv[2])) {
            int rc = c->fn(argc > 3 ? argv[3] : NULL);
            fflush(stdout);
            fflush(stderr);
            exit(rc);
        }
    }
    fprintf(stderr, "no child named %s\n", argv[2]);
    exit(2);
}

/* HRESULT_FROM_WIN32(ERROR_INTERNAL_ERROR): what Wine's CreateProcess
 * gave, once, in test_killstress while other processes of the test were
 * being killed (2026-11-27; not reproduced in 32 runs after). A failure of
 * the host, not of the runtime: tsupport_spawn tries again, up to 3 times,
 * and says so. Any other failure fails the test at once. */
#define SPAWN_HOST_HICCUP ((HRESULT)0x8007054Fu)

void tsupport_spawn(shmc_plat_proc *p, const char *name, const char *arg)
{
    char exe[4096];
    assert_hr(shmc_plat_self_exe(exe, sizeof(exe)), S_OK);
    const char *argv[] = {exe, "--child", name, arg, NULL};
    HRESULT hr;
    for (int tries = 0; (hr = shmc_plat_proc_spawn(p, argv)) == SPAWN_HOST_HICCUP && tries < 3;
         tries++) {
        print_message("spawning %s failed with 0x%08x: trying again\n", name, (unsigned)hr);
        shmc_plat_sleep_ms(20);
    }
    assert_hr(hr, S_OK);
}

int tsupport_join(shmc_plat_proc *p, uint32_t timeout_ms)
{
    HRESULT hr = shmc_plat_proc_wait(p, timeout_ms);
    if (hr != S_OK) {
        shmc_plat_proc_kill(p);
        shmc_plat_proc_wait(p, 10000);
        shmc_plat_proc_close(p);
        fail_msg("child did not exit within %u ms (hr 0x%08x)", timeout_ms, (unsigned)hr);
    }
    int code = p->exit_code;
    shmc_plat_proc_close(p);
    return code;
}

#define MAX_NAMES 256
static char names[MAX_NAMES][SHM_MAX_NAME + 1];
static int n_names;

const char *tsupport_name(char *buf, size_t size, const char *tag)
{
    static unsigned counter;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    snprintf(buf, size, "tst-%s-%llu-%u", tag, (unsigned long long)self.pid, ++counter);
    if (n_names < MAX_NAMES)
        snprintf(names[n_names++], sizeof(names[0]), "%s", buf);
    return buf;
}

void tsupport_check_names_gone(void **state)
{
    (void)state;
    for (int i = 0; i < n_names; i++) {
        shmc_plat_region r;
        HRESULT hr = shmc_plat_region_open(&r, names[i]);
        if (SUCCEEDED(hr)) {
            shmc_plat_region_close(&r);
            fail_msg("region %s was left behind", names[i]);
        }
        assert_hr(hr, SHM_E_NAME_NOT_FOUND);
    }
}

long tsupport_open_handles(void)
{
#ifdef _WIN32
    DWORD n = 0;
    GetProcessHandleCount(GetCurrentProcess(), &n);
    return (long)n;
#else
    long n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
#endif
}

uint64_t tsupport_stream_size(IStream *s)
{
    STATSTG st;
    assert_hr(s->lpVtbl->Stat(s, &st, STATFLAG_NONAME), S_OK);
    return st.cbSize.QuadPart;
}

uint64_t tsupport_stream_pos(IStream *s)
{
    LARGE_INTEGER zero;
    ULARGE_INTEGER pos;
    zero.QuadPart = 0;
    pos.QuadPart = 0xCAFECAFECAFECAFEull;
    assert_hr(s->lpVtbl->Seek(s, zero, STREAM_SEEK_CUR, &pos), S_OK);
    return pos.QuadPart;
}

void tsupport_stream_seek(IStream *s, int64_t pos)
{
    LARGE_INTEGER li;
    li.QuadPart = pos;
    assert_hr(s->lpVtbl->Seek(s, li, STREAM_SEEK_SET, NULL), S_OK);
}

double tsupport_ms_since(uint64_t start_ns)
{
    return (double)(shmc_plat_clock_ns() - start_ns) / 1e6;
}

void tsupport_judge_move(bool pinned, bool called, bool moved, int attempts, int misses,
                         const char *who, const char *whose)
{
    assert_true(pinned);
    assert_true(called);
    if (moved) {
        if (attempts > 1)
            print_message("moved on attempt %d\n", attempts);
        return;
    }
    if (misses)
        fail_msg("the %s called from the %s's CPU %d times and never moved", who, whose, misses);
    print_message("the %s was never left on the %s's CPU in %d attempts\n", who, whose, attempts);
    skip();
}

void tsupport_skip_if_listed(const char *test)
{
    const char *list = getenv("SHMCOM_TEST_SKIP");
    size_t n = strlen(test);
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !memcmp(p, test, n)) {
            print_message("%s: not run here (SHMCOM_TEST_SKIP)\n", test);
            skip();
        }
        p = end ? end + 1 : p + len;
    }
}

uint32_t tsupport_ms(uint32_t ms)
{
    const char *v = getenv("SHMCOM_TEST_TIME_SCALE");
    unsigned long scale = v ? strtoul(v, NULL, 10) : 1;
    if (scale < 1 || scale > 100)
        scale = 1;
    return ms * (uint32_t)scale;
}

void tsupport_assert_hr(HRESULT actual, HRESULT expected, const char *expr, const char *file,
                        int line)
{
    if (actual == expected)
        return;
    const char *an = ShmHresultName(actual), *en = ShmHresultName(expected);
    print_error("%s = 0x%08x (%s), expected 0x%08x (%s)\n", expr, (unsigned)actual, an ? an : "?",
                (unsigned)expected, en ? en : "?");
    _fail(file, line);
}

/* ---- CPU affinity ------------------------------------------------------------- */

#ifdef _WIN32
static _Thread_local GROUP_AFFINITY pinned_from;

int tsupport_pin_self(int cpu)
{
    PROCESSOR_NUMBER pn;
    GetCurrentProcessorNumberEx(&pn);
    if (cpu >= 0) {
        pn.Group = (WORD)(cpu / 64);
        pn.Number = (BYTE)(cpu % 64);
    }
    GROUP_AFFINITY one;
    memset(&one, 0, sizeof(one));
    one.Group = pn.Group;
    one.Mask = (KAFFINITY)1 << pn.Number;
    if (!GetThreadGroupAffinity(GetCurrentThread(), &pinned_from) ||
        !SetThreadGroupAffinity(GetCurrentThread(), &one, NULL))
        return -1;
    return (int)pn.Group * 64 + (int)pn.Number;
}

void tsupport_unpin_self(void)
{
    SetThreadGroupAffinity(GetCurrentThread(), &pinned_from, NULL);
}

unsigned tsupport_allowed_cpus(void)
{
    GROUP_AFFINITY mask;
    if (!GetThreadGroupAffinity(GetCurrentThread(), &mask))
        return 0;
    unsigned n = 0;
    for (KAFFINITY m = mask.Mask; m; m &= m - 1)
        n++;
    return n;
}

#elif defined(__linux__)
static _Thread_local cpu_set_t pinned_from;

int tsupport_pin_self(int cpu)
{
    if (cpu < 0)
        cpu = sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(pinned_from), &pinned_from))
        return -1;
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof(one), &one) ? -1 : cpu;
}

void tsupport_unpin_self(void)
{
    sched_setaffinity(0, sizeof(pinned_from), &pinned_from);
}

unsigned tsupport_allowed_cpus(void)
{
    cpu_set_t mask;
    return sched_getaffinity(0, sizeof(mask), &mask) ? 0u : (unsigned)CPU_COUNT(&mask);
}

#else
int tsupport_pin_self(int cpu)
{
    (void)cpu;
    return -1;
}

void tsupport_unpin_self(void)
{
}

unsigned tsupport_allowed_cpus(void)
{
    return 0;
}

#endif
