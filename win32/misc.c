/*
 * misc.c - monotonic clock (QueryPerformanceCounter), OS random bytes
 * (BCryptGenRandom), CPU count and page size.
 */
#include "win_impl.h"

#include <bcrypt.h>

uint64_t shmc_plat_clock_ns(void)
{
    static LARGE_INTEGER freq; /* constant after boot; racing writers agree */
    LARGE_INTEGER now;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    uint64_t f = (uint64_t)freq.QuadPart, c = (uint64_t)now.QuadPart;
    return c / f * 1000000000u + c % f * 1000000000u / f;
}

HRESULT shmc_plat_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    if (!buf && n)
        return E_INVALIDARG;
    while (n > 0) {
        ULONG chunk = n > 0x40000000u ? 0x40000000u : (ULONG)n;
        NTSTATUS st = SHMC_ROUTE("BCryptGenRandom",
                                 BCryptGenRandom(NULL, p, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG),
                                 (NTSTATUS)0xC0000001L /* STATUS_UNSUCCESSFUL */);
        if (st < 0)
            return HRESULT_FROM_NT(st);
        p += chunk;
        n -= chunk;
    }
    return S_OK;
}

unsigned shmc_plat_cpu_count(void)
{
    DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
    if (n == 0) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        n = si.dwNumberOfProcessors;
    }
    return n ? (unsigned)n : 1u;
}

int shmc_plat_current_cpu(void)
{
    PROCESSOR_NUMBER pn;
    GetCurrentProcessorNumberEx(&pn);
    return (int)pn.Group * 64 + (int)pn.Number;
}

/* Windows has one (FlushProcessWriteBuffers), but Wine 8, which the tests
 * of this build run under, implements it as a stub that does nothing
 * ("fixme:virtual:NtFlushProcessWriteBuffers stub"): the runtime cannot
 * tell the two apart, so it does without. */
bool shmc_plat_process_barrier_setup(void)
{
    return false;
}

bool shmc_plat_process_barrier(void)
{
    return false;
}

bool shmc_plat_thread_move_off_cpu(int cpu)
{
    HANDLE self = GetCurrentThread();
    GROUP_AFFINITY mask, away;
    if (cpu < 0 || !GetThreadGroupAffinity(self, &mask) || mask.Group != (WORD)(cpu / 64))
        return false;
    away = mask;
    away.Mask &= ~((KAFFINITY)1 << (cpu % 64));
    if (!away.Mask || !SetThreadGroupAffinity(self, &away, NULL))
        return false;
    SetThreadGroupAffinity(self, &mask, NULL); /* it stays where it went */
    return true;
}

size_t shmc_plat_page_size(void)
{
    static size_t page;
    if (!page) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        page = si.dwPageSize ? si.dwPageSize : 4096u;
    }
    return page;
}

/* An address inside this module, to name it by. */
static const char module_anchor;

void shmc_plat_pin_module(void)
{
    HMODULE self;
    /* (if it fails, the module is only as safe to unload as before. Under
     * Wine 8 the mingw-w64 DLL stayed loaded after FreeLibrary without
     * this too, its loader saying count -1: test_dlopen passes there
     * either way, and only Windows itself shows the difference) */
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                       (LPCWSTR)(const void *)&module_anchor, &self);
}
