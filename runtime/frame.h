/*
 * frame.h - reading frames that may be hostile: the one place where
 * offsets and lengths from a frame are checked (see <shmcom/proxystub.h>
 * for the frame layout). Every value is read once, with memcpy (frames
 * need not be aligned), into the caller's local, and checked there.
 */
#ifndef SHMCOM_RUNTIME_FRAME_H
#define SHMCOM_RUNTIME_FRAME_H

#include "shmcom/proxystub.h"

#include <stdint.h>

typedef struct shmc_frame {
    const unsigned char *base;
    /* the fixed part, where every count, ref and value is read from: base
     * itself, or a private copy of it when the frame lies in memory that
     * its sender can still write (so a word read twice reads the same) */
    const unsigned char *fixed;
    uint32_t size;
    uint32_t var_start; /* the fixed part's size rounded up to 8 */
} shmc_frame;

static inline uint64_t shmc_align8(uint64_t v)
{
    return (v + 7) & ~(uint64_t)7;
}

/* base and size describe the frame; fixed is its fixed part's size, which
 * the caller has checked against size. Reads the fixed part in place. */
void shmc_frame_init(shmc_frame *f, const void *base, uint32_t size, uint32_t fixed);

/* Reads the ShmFrameRef in the slot at `slot` (inside the fixed part, from
 * f->fixed). */
ShmFrameRef shmc_frame_ref(const shmc_frame *f, uint32_t slot);

static inline int shmc_frame_ref_is_null(ShmFrameRef r)
{
    return r.offset == SHM_NULL_REF;
}

/* 1 if r lies in the variable part: 8-aligned offset, no overflow, length a
 * multiple of elem (elem 0: any length). A NULL ref is not valid here. */
int shmc_frame_ref_ok(const shmc_frame *f, ShmFrameRef r, uint32_t elem);

/* 1 if r is exactly {SHM_NULL_REF, 0}. */
int shmc_frame_null_ok(ShmFrameRef r);

/* 1 if no two of the n non-NULL refs overlap. Sorts refs in place. */
int shmc_frame_refs_disjoint(ShmFrameRef *refs, uint32_t n);

/* Reads an integer of `size` bytes (1, 2, 4 or 8) as a count: 0 and *count
 * set on success; -1 when a signed value is negative. */
int shmc_read_count(const void *p, uint32_t size, int is_signed, uint64_t *count);

/* 1 if the string of `len` bytes (elements of `elem` bytes) ends with its
 * only NUL. Call it on a private copy, never on shared memory. */
int shmc_string_ok(const void *s, uint32_t len, uint32_t elem);

#endif /* SHMCOM_RUNTIME_FRAME_H */
