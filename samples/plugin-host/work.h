/*
 * work.h - what a plugin computes for a work item, and what the host uses
 * to check the plugin's answer on its own.
 *
 * An item is `count` samples that the host makes from the item's id. A
 * plugin scrambles each sample `rounds` times and returns a checksum and a
 * histogram of the results; the host recomputes both and compares.
 */
#ifndef PLUGIN_HOST_WORK_H
#define PLUGIN_HOST_WORK_H

#include "plugin.h"

#include <string.h>

/* The samples of item `id`. */
static inline void work_make_samples(ULONG id, ULONG *samples, ULONG n)
{
    for (ULONG i = 0; i < n; i++) {
        ULONG x = id * 0x9E3779B9u + i * 0x85EBCA6Bu + 1;
        x ^= x >> 15;
        samples[i] = x * 0x2C1B3C6Du;
    }
}

/* One sample, scrambled `rounds` times (xorshift and a multiply). */
static inline ULONG work_scramble(ULONG x, ULONG rounds)
{
    for (ULONG r = 0; r < rounds; r++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x *= 0x9E3779B1u;
    }
    return x;
}

/* Folds samples [from, to) of an item into a result (FNV-1a over the
 * scrambled values, and their histogram). Start with work_begin. */
static inline void work_begin(WORK_RESULT *r, ULONG id)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->checksum = 0xCBF29CE484222325ull;
}

static inline void work_fold(WORK_RESULT *r, const ULONG *samples, ULONG from, ULONG to,
                             ULONG rounds)
{
    for (ULONG i = from; i < to; i++) {
        ULONG v = work_scramble(samples[i], rounds);
        r->checksum = (r->checksum ^ v) * 0x100000001B3ull;
        r->histogram[v >> 28]++;
        r->count++;
    }
}

#endif /* PLUGIN_HOST_WORK_H */
