/*
 * reclaim.c - removing the names of regions whose creator has died.
 *
 * On POSIX a region's name lives until it is unlinked. A creator unlinks
 * its names when it is done with them; one that is killed cannot, and
 * its names stay in /dev/shm. Every shmcom region starts with the common
 * header (regionhdr.h), which names its creator (pid + start time), so
 * any later process of the same user can tell a stale name from a live
 * one and remove it:
 *
 *   for each of this user's regions:  open it (a mapping, not a copy),
 *     read the header once; unlink the name only if the header is valid
 *     and its owner is dead. Anything else - not shmcom's, owner alive,
 *     owner unknowable - is left alone.
 *
 * A region whose header was never published (a creator killed between
 * creating the name and writing the header: the kill stress leaves such
 * names) names no owner. The runtime's own regions carry their creator's
 * pid in their names ("ep.<pid>.<16 hex>", "cn.", "bk."): such a name is
 * stale if no process has that pid any more (a live one, even one that
 * only reuses the pid, keeps it: its creator may still be writing it; the
 * 64 random bits make sure nobody else creates that name again).
 *
 * Races. The check and the unlink are two steps: if, between them,
 * another reclaimer removed the same stale name and a new creator made a
 * region of that name, the unlink removes the new one. That takes a
 * creator reusing a dead process's name at the same microsecond as two
 * reclaimers; shmcom's own generated names are never reused.
 *
 * On Windows a named mapping dies with the last handle on it, so nothing
 * is ever stale and these functions have nothing to do.
 */
#include "regionhdr.h"

#include <string.h>

/* For a name of the runtime's own ("ep.", "cn." or "bk.", then a decimal
 * pid, a dot and 16 hex digits): true if no process has that pid. */
static bool name_creator_gone(const char *name)
{
    if (strncmp(name, "ep.", 3) != 0 && strncmp(name, "cn.", 3) != 0 &&
        strncmp(name, "bk.", 3) != 0)
        return false;
    const char *p = name + 3;
    uint64_t pid = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 10; p++, digits++)
        pid = pid * 10 + (uint64_t)(*p - '0');
    if (digits == 0 || *p != '.' || pid == 0)
        return false;
    p++;
    int hex = 0;
    for (; (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'); p++)
        hex++;
    if (hex != 16 || *p)
        return false;
    shmc_plat_procid id;
    return shmc_plat_proc_query(pid, &id) == SHM_E_NAME_NOT_FOUND;
}

/* Maps `name` and reads its header once: true if it is a valid shmcom
 * header whose owner is dead, or an unpublished one (never sized, or no
 * magic yet) of a runtime name whose creator is gone. Anything it cannot
 * open or judge: false. */
static bool owner_dead_at(const char *name)
{
    shmc_plat_region r;
    shmc_region_info info;
    HRESULT hr = shmc_plat_region_open(&r, name);
    if (hr == SHM_E_NAME_NOT_FOUND) /* there, but never sized (or gone now) */
        return name_creator_gone(name);
    if (FAILED(hr))
        return false;
    hr = shmc_region_hdr_read(r.base, r.size, &info);
    bool dead = SUCCEEDED(hr)                ? shmc_region_owner_dead(&info.owner)
                : hr == SHM_E_NAME_NOT_FOUND ? name_creator_gone(name) /* no magic yet */
                                             : false;
    shmc_plat_region_close(&r);
    return dead;
}

HRESULT shmc_reclaim_name(const char *name)
{
    HRESULT hr = shmc_plat_region_name_check(name);
    if (FAILED(hr))
        return hr;
    if (!shmc_plat_region_names_persist() || !owner_dead_at(name))
        return S_FALSE;
    hr = shmc_plat_region_unlink(name);
    if (hr == SHM_E_NAME_NOT_FOUND)
        return S_FALSE; /* another reclaimer was first */
    return FAILED(hr) ? hr : S_OK;
}

typedef struct scan {
    unsigned removed;
} scan;

static bool reclaim_one(const char *name, void *ctx)
{
    scan *sc = ctx;
    if (shmc_reclaim_name(name) == S_OK)
        sc->removed++;
    return true;
}

HRESULT shmc_reclaim_stale(unsigned *removed)
{
    scan sc = {0};
    if (removed)
        *removed = 0;
    if (!shmc_plat_region_names_persist())
        return S_FALSE;
    HRESULT hr = shmc_plat_region_list("", reclaim_one, &sc);
    if (removed)
        *removed = sc.removed;
    return FAILED(hr) ? hr : S_OK;
}

/* Monotonic time of the last scan (0: never), and the minimum gap. */
static _Atomic uint64_t last_scan_ns;
static _Atomic uint32_t interval_ms = SHMC_RECLAIM_INTERVAL_MS;

void shmc_reclaim_maybe(void)
{
    uint64_t now = shmc_plat_clock_ns() | 1u; /* never 0 */
    uint64_t last = atomic_load_explicit(&last_scan_ns, memory_order_relaxed);
    uint32_t gap = atomic_load_explicit(&interval_ms, memory_order_relaxed);
    if (last != 0 && (gap == SHMC_PLAT_INFINITE || now - last < (uint64_t)gap * 1000000u))
        return;
    /* one thread scans; the others go on */
    if (!atomic_compare_exchange_strong_explicit(&last_scan_ns, &last, now, memory_order_relaxed,
                                                 memory_order_relaxed))
        return;
    shmc_reclaim_stale(NULL);
}

void shmc_reclaim_maybe_reset(uint32_t new_interval_ms)
{
    atomic_store_explicit(&interval_ms, new_interval_ms, memory_order_relaxed);
    atomic_store_explicit(&last_scan_ns, 0, memory_order_relaxed);
}
