/*
 * plat_common.c - the parts of the platform contract that are the same on
 * every OS: region name rules and the fault-injection table that the
 * platform layers consult before each routed system call.
 */
#include "plat_common.h"

#include <string.h>

HRESULT shmc_plat_region_name_check(const char *name)
{
    if (!name)
        return E_INVALIDARG;
    size_t len = 0;
    while (len <= SHM_MAX_NAME && name[len] != '\0')
        len++;
    if (len == 0 || len > SHM_MAX_NAME)
        return E_INVALIDARG;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (alnum || c == '_')
            continue;
        if (i > 0 && (c == '.' || c == '-'))
            continue;
        return E_INVALIDARG;
    }
    return S_OK;
}

/* ---- fault injection ------------------------------------------------- */

typedef struct fault {
    const char *name;   /* points into the platform's routed table */
    unsigned fail_from; /* 1-based call number that fails first; 0 = off */
    unsigned calls;
    int native_error;
} fault;

#define MAX_FAULTS 8
static fault faults[MAX_FAULTS];

HRESULT shmc_plat_fault_set(const char *syscall, unsigned n, int native_error)
{
    if (!syscall)
        return E_INVALIDARG;
    const char *routed = NULL;
    for (const char *const *p = shmc_plat__routed_syscalls; *p; p++) {
        if (!strcmp(*p, syscall)) {
            routed = *p;
            break;
        }
    }
    if (!routed)
        return E_INVALIDARG;
    fault *slot = NULL;
    for (int i = 0; i < MAX_FAULTS; i++) {
        if (faults[i].name == routed) {
            slot = &faults[i];
            break;
        }
        if (!slot && !faults[i].name)
            slot = &faults[i];
    }
    if (!slot)
        return E_OUTOFMEMORY;
    if (n == 0) {
        memset(slot, 0, sizeof(*slot));
        return S_OK;
    }
    slot->name = routed;
    slot->fail_from = n;
    slot->calls = 0;
    slot->native_error = native_error;
    return S_OK;
}

void shmc_plat_fault_clear_all(void)
{
    memset(faults, 0, sizeof(faults));
}

int shmc_plat__fault(const char *syscall)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        fault *f = &faults[i];
        if (f->name && !strcmp(f->name, syscall)) {
            f->calls++;
            return f->calls >= f->fail_from ? f->native_error : 0;
        }
    }
    return 0;
}

uint32_t shmc_plat_clock_ms_until(uint64_t deadline_ns)
{
    uint64_t now = shmc_plat_clock_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms >= SHMC_PLAT_INFINITE ? SHMC_PLAT_INFINITE - 1 : (uint32_t)ms;
}
