/*
 * plat_common.c - the parts of the platform contract that are the same on
 * every OS: region name rules and the fault-injection table that the
 * platform layers consult before each routed system call.
 */
#include "plat_common.h"

#include <stdatomic.h>
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

/* Set by a test while no other thread calls the layer; counted by any
 * thread (atomics: background threads of the runtime may map regions and
 * start threads while a test fails them in turn). */
typedef struct fault {
    const char *_Atomic name;   /* points into the platform's routed table */
    _Atomic unsigned fail_from; /* 1-based call number that fails first; 0 = off */
    _Atomic unsigned calls;     /* calls since set */
    _Atomic unsigned hits;      /* calls failed since set */
    _Atomic int native_error;
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
        const char *has = atomic_load(&faults[i].name);
        if (has == routed) {
            slot = &faults[i];
            break;
        }
        if (!slot && !has)
            slot = &faults[i];
    }
    if (!slot)
        return E_OUTOFMEMORY;
    atomic_store(&slot->fail_from, 0);
    if (n == 0) {
        atomic_store(&slot->name, NULL);
        return S_OK;
    }
    atomic_store(&slot->calls, 0);
    atomic_store(&slot->hits, 0);
    atomic_store(&slot->native_error, native_error);
    atomic_store(&slot->name, routed);
    atomic_store(&slot->fail_from, n);
    return S_OK;
}

unsigned shmc_plat_fault_hits(const char *syscall)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        const char *name = atomic_load(&faults[i].name);
        if (name && syscall && !strcmp(name, syscall))
            return atomic_load(&faults[i].hits);
    }
    return 0;
}

void shmc_plat_fault_clear_all(void)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        atomic_store(&faults[i].fail_from, 0);
        atomic_store(&faults[i].name, NULL);
    }
}

int shmc_plat__fault(const char *syscall)
{
    for (int i = 0; i < MAX_FAULTS; i++) {
        fault *f = &faults[i];
        const char *name = atomic_load_explicit(&f->name, memory_order_relaxed);
        if (name && !strcmp(name, syscall)) {
            unsigned from = atomic_load_explicit(&f->fail_from, memory_order_relaxed);
            unsigned n = atomic_fetch_add_explicit(&f->calls, 1, memory_order_relaxed) + 1;
            if (from == 0 || n < from)
                return 0;
            atomic_fetch_add_explicit(&f->hits, 1, memory_order_relaxed);
            return atomic_load_explicit(&f->native_error, memory_order_relaxed);
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
