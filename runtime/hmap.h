/*
 * hmap.h - a hash map from 64-bit keys to pointers (open addressing,
 * linear probing, backward-shift deletion). Keys are expected to be well
 * mixed already or are mixed here; key 0 is reserved. Not thread-safe: the
 * owner's lock protects it.
 */
#ifndef SHMCOM_RUNTIME_HMAP_H
#define SHMCOM_RUNTIME_HMAP_H

#include "shmcom/shmcom.h"

#include <stddef.h>
#include <stdint.h>

typedef struct shmc_hmap_slot {
    uint64_t key; /* 0 = empty */
    void *value;
} shmc_hmap_slot;

typedef struct shmc_hmap {
    shmc_hmap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
} shmc_hmap;

/* NULL if absent. */
void *shmc_hmap_get(const shmc_hmap *m, uint64_t key);
/* Inserts or replaces. E_OUTOFMEMORY if the table could not grow;
 * E_INVALIDARG for key 0. */
HRESULT shmc_hmap_put(shmc_hmap *m, uint64_t key, void *value);
/* Makes room for n more keys, so that the next n puts cannot fail. */
HRESULT shmc_hmap_reserve(shmc_hmap *m, size_t n);
/* Removes and returns some value (NULL when empty). */
void *shmc_hmap_take_any(shmc_hmap *m);
/* Removes and returns the value, or NULL. */
void *shmc_hmap_del(shmc_hmap *m, uint64_t key);
void shmc_hmap_fini(shmc_hmap *m);

/* A 64-bit mix of a pointer or other poorly distributed key (never 0). */
uint64_t shmc_hmap_mix(uint64_t x);

#endif /* SHMCOM_RUNTIME_HMAP_H */
