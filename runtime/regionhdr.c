/*
 * regionhdr.c - writing and checking the common region header (see
 * regionhdr.h for the layout and who writes what when).
 */
#include "regionhdr.h"

void shmc_region_hdr_init(shmc_region_hdr *h, uint32_t kind, uint32_t version, uint32_t hdr_size,
                          const shmc_plat_procid *owner, uint64_t nonce)
{
    atomic_store_explicit(&h->kind, kind, memory_order_relaxed);
    atomic_store_explicit(&h->version, version, memory_order_relaxed);
    atomic_store_explicit(&h->owner_pid, owner->pid, memory_order_relaxed);
    atomic_store_explicit(&h->owner_start, owner->start_time, memory_order_relaxed);
    atomic_store_explicit(&h->nonce, nonce, memory_order_relaxed);
    atomic_store_explicit(&h->state, SHMC_REGION_LIVE, memory_order_relaxed);
    atomic_store_explicit(&h->hdr_size, hdr_size, memory_order_relaxed);
    atomic_store_explicit(&h->magic, SHMC_REGION_MAGIC, memory_order_release);
}

HRESULT shmc_region_hdr_read(const shmc_region_hdr *h, size_t mapped, shmc_region_info *info)
{
    /* the const is for callers; the atomics need a mutable lvalue to load */
    shmc_region_hdr *w = (shmc_region_hdr *)h;
    if (mapped < sizeof(*h))
        return STG_E_INVALIDHEADER;
    uint64_t magic = atomic_load_explicit(&w->magic, memory_order_acquire);
    if (magic == 0)
        return SHM_E_NAME_NOT_FOUND;
    if (magic != SHMC_REGION_MAGIC)
        return STG_E_INVALIDHEADER;
    info->kind = atomic_load_explicit(&w->kind, memory_order_relaxed);
    info->version = atomic_load_explicit(&w->version, memory_order_relaxed);
    info->state = atomic_load_explicit(&w->state, memory_order_acquire);
    info->hdr_size = atomic_load_explicit(&w->hdr_size, memory_order_relaxed);
    info->owner.pid = atomic_load_explicit(&w->owner_pid, memory_order_relaxed);
    info->owner.start_time = atomic_load_explicit(&w->owner_start, memory_order_relaxed);
    info->nonce = atomic_load_explicit(&w->nonce, memory_order_relaxed);
    if (info->hdr_size < sizeof(*h) || info->hdr_size > mapped || info->owner.pid == 0)
        return STG_E_INVALIDHEADER;
    return S_OK;
}

bool shmc_region_owner_dead(const shmc_plat_procid *owner)
{
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    if (owner->pid == self.pid && owner->start_time == self.start_time)
        return false;
    shmc_plat_proc p;
    HRESULT hr = shmc_plat_proc_open(&p, owner);
    if (hr == E_INVALIDARG)
        return true; /* a pid no process can have: nobody owns this */
    if (FAILED(hr))
        return false; /* cannot tell (out of handles...): assume alive */
    bool dead = p.exited;
    shmc_plat_proc_close(&p);
    return dead;
}
