/*
 * frame.c - the bounds checks on incoming frames (requests at the stub,
 * replies at the proxy). See frame.h.
 */
#include "frame.h"

#include <string.h>

void shmc_frame_init(shmc_frame *f, const void *base, uint32_t size, uint32_t fixed)
{
    f->base = base;
    f->fixed = base;
    f->size = size;
    uint64_t v = shmc_align8(fixed);
    f->var_start = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

ShmFrameRef shmc_frame_ref(const shmc_frame *f, uint32_t slot)
{
    ShmFrameRef r;
    memcpy(&r.offset, f->fixed + slot, 4);
    memcpy(&r.length, f->fixed + slot + 4, 4);
    return r;
}

int shmc_frame_ref_ok(const shmc_frame *f, ShmFrameRef r, uint32_t elem)
{
    if (r.offset == SHM_NULL_REF || r.offset % 8 != 0 || r.offset < f->var_start)
        return 0;
    if ((uint64_t)r.offset + r.length > f->size)
        return 0;
    return elem == 0 || r.length % elem == 0;
}

int shmc_frame_null_ok(ShmFrameRef r)
{
    return r.offset == SHM_NULL_REF && r.length == 0;
}

int shmc_frame_refs_disjoint(ShmFrameRef *refs, uint32_t n)
{
    /* insertion sort: a method has a handful of variable-size arguments */
    for (uint32_t i = 1; i < n; i++) {
        ShmFrameRef k = refs[i];
        uint32_t j = i;
        while (j > 0 && refs[j - 1].offset > k.offset) {
            refs[j] = refs[j - 1];
            j--;
        }
        refs[j] = k;
    }
    for (uint32_t i = 1; i < n; i++) {
        if (refs[i].offset == refs[i - 1].offset && refs[i].length && refs[i - 1].length)
            return 0;
        if ((uint64_t)refs[i - 1].offset + refs[i - 1].length > refs[i].offset)
            return 0;
    }
    return 1;
}

int shmc_read_count(const void *p, uint32_t size, int is_signed, uint64_t *count)
{
    switch (size) {
    case 1: {
        uint8_t v;
        memcpy(&v, p, 1);
        if (is_signed && (v & 0x80u))
            return -1;
        *count = v;
        return 0;
    }
    case 2: {
        uint16_t v;
        memcpy(&v, p, 2);
        if (is_signed && (v & 0x8000u))
            return -1;
        *count = v;
        return 0;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, p, 4);
        if (is_signed && (v & 0x80000000u))
            return -1;
        *count = v;
        return 0;
    }
    case 8: {
        uint64_t v;
        memcpy(&v, p, 8);
        if (is_signed && (v >> 63))
            return -1;
        *count = v;
        return 0;
    }
    }
    return -1;
}

int shmc_string_ok(const void *s, uint32_t len, uint32_t elem)
{
    const unsigned char *p = s;
    if (elem == 0 || len < elem || len % elem)
        return 0;
    uint32_t n = len / elem;
    for (uint32_t i = 0; i < n; i++) {
        int nul = elem == 1 ? p[i] == 0 : (p[2 * i] == 0 && p[2 * i + 1] == 0);
        if (nul != (i == n - 1))
            return 0;
    }
    return 1;
}
