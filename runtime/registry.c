/*
 * registry.c - which interfaces this process can make proxies and stubs
 * for: the tables shmidl generates, registered with
 * ShmCoRegisterProxyStubs, and the runtime's own for the streams
 * (streamps.c). Looked up by IID when an interface is marshaled,
 * unmarshaled or queried through a proxy.
 */
#include "alloc.h"
#include "rt.h"

#include <string.h>

/* Registered interfaces with the same IID hash chain through this. */
typedef struct reg_entry {
    const ShmInterfaceInfo *info;
    struct reg_entry *next;
} reg_entry;

static uint64_t iid_key(REFIID iid)
{
    uint64_t a, b;
    memcpy(&a, iid, 8);
    memcpy(&b, (const unsigned char *)iid + 8, 8);
    return shmc_hmap_mix(a ^ shmc_hmap_mix(b));
}

const ShmInterfaceInfo *shmc_registry_find(REFIID iid)
{
    const ShmInterfaceInfo *found = NULL;
    shmc_plat_mutex_lock(&shmc_g.lock);
    for (reg_entry *e = shmc_hmap_get(&shmc_g.registry, iid_key(iid)); e; e = e->next) {
        if (IsEqualIID(e->info->iid, iid)) {
            found = e->info;
            break;
        }
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return found ? found : shmc_stream_ps_find(iid);
}

/* A table the engine can rely on: counts and pointers where they must be. */
static bool info_ok(const ShmInterfaceInfo *info)
{
    if (!info || !info->iid || !info->proxy_vtbl || info->nmethods < 3 || !info->methods)
        return false;
    if (IsEqualIID(info->iid, &IID_IUnknown))
        return false; /* the runtime's own */
    for (uint32_t m = 3; m < info->nmethods; m++) {
        const ShmMethod *md = &info->methods[m];
        if (!md->call || (md->nparams && !md->params) || md->out_size < sizeof(HRESULT))
            return false;
    }
    return true;
}

HRESULT ShmCoRegisterProxyStubs(const ShmProxyFileInfo *pfi)
{
    if (!pfi)
        return E_INVALIDARG;
    if (pfi->abi_version != SHM_PROXYSTUB_ABI)
        return RPC_E_VERSION_MISMATCH;
    if (pfi->ninterfaces && !pfi->interfaces)
        return E_INVALIDARG;
    for (uint32_t i = 0; i < pfi->ninterfaces; i++) {
        if (!info_ok(pfi->interfaces[i]))
            return E_INVALIDARG;
    }
    HRESULT hr = shmc_rt_init();
    if (FAILED(hr))
        return hr;
    bool added = false;
    shmc_plat_mutex_lock(&shmc_g.lock);
    for (uint32_t i = 0; i < pfi->ninterfaces && SUCCEEDED(hr); i++) {
        const ShmInterfaceInfo *info = pfi->interfaces[i];
        uint64_t key = iid_key(info->iid);
        reg_entry *head = shmc_hmap_get(&shmc_g.registry, key), *e;
        for (e = head; e; e = e->next) {
            if (IsEqualIID(e->info->iid, info->iid))
                break;
        }
        if (e) {
            /* registered again: the newer table serves new proxies and
             * stubs; existing ones keep theirs (static data stays valid) */
            added |= e->info != info;
            e->info = info;
            continue;
        }
        e = shmc_malloc(sizeof(*e));
        if (!e) {
            hr = E_OUTOFMEMORY;
            break;
        }
        e->info = info;
        e->next = head;
        if (FAILED(shmc_hmap_put(&shmc_g.registry, key, e))) {
            shmc_free(e);
            hr = E_OUTOFMEMORY;
            break;
        }
        added = true;
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (FAILED(hr))
        return hr;
    return added ? S_OK : S_FALSE;
}
