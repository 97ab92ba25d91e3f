/*
 * hmap.c - see hmap.h.
 */
#include "hmap.h"

#include "alloc.h"

#include <stdbool.h>
#include <string.h>

uint64_t shmc_hmap_mix(uint64_t x)
{
    /* splitmix64 finaliser */
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x ? x : 1;
}

static size_t home(const shmc_hmap *m, uint64_t key)
{
    return (size_t)(key * 0x9E3779B97F4A7C15ull >> 7) & (m->cap - 1);
}

void *shmc_hmap_get(const shmc_hmap *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = home(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key)
            return m->slots[i].value;
        if (m->slots[i].key == 0)
            return NULL;
    }
}

static HRESULT grow(shmc_hmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    shmc_hmap_slot *ns = shmc_calloc(ncap, sizeof(*ns));
    if (!ns)
        return E_OUTOFMEMORY;
    shmc_hmap old = *m;
    m->slots = ns;
    m->cap = ncap;
    m->count = 0;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key)
            shmc_hmap_put(m, old.slots[i].key, old.slots[i].value); /* cannot fail */
    }
    shmc_free(old.slots);
    return S_OK;
}

HRESULT shmc_hmap_reserve(shmc_hmap *m, size_t n)
{
    while ((m->count + n) * 4 > m->cap * 3) {
        HRESULT hr = grow(m);
        if (FAILED(hr))
            return hr;
    }
    return S_OK;
}

void *shmc_hmap_take_any(shmc_hmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key)
            return shmc_hmap_del(m, m->slots[i].key);
    }
    return NULL;
}

HRESULT shmc_hmap_put(shmc_hmap *m, uint64_t key, void *value)
{
    if (!key)
        return E_INVALIDARG;
    if ((m->count + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        HRESULT hr = grow(m);
        if (FAILED(hr))
            return hr;
    }
    for (size_t i = home(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key) {
            m->slots[i].value = value;
            return S_OK;
        }
        if (m->slots[i].key == 0) {
            m->slots[i].key = key;
            m->slots[i].value = value;
            m->count++;
            return S_OK;
        }
    }
}

void *shmc_hmap_del(shmc_hmap *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1, i = home(m, key);
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0)
            return NULL;
        i = (i + 1) & mask;
    }
    void *value = m->slots[i].value;
    /* backward-shift: move later members of the probe run into the hole */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t h = home(m, m->slots[j].key);
        /* slot j may move to the hole if its home is not in (hole, j] */
        bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}

void shmc_hmap_fini(shmc_hmap *m)
{
    shmc_free(m->slots);
    memset(m, 0, sizeof(*m));
}
