/*
 * shstream.h - internal: one IStream implementation over a "store", a
 * byte range described by a stream header. Two kinds of store use it:
 *
 *   heap     private memory that grows on demand (heapstream.c), like
 *            CreateStreamOnHGlobal; for handing marshaled data between
 *            threads of one process, where a region per call would cost
 *            far too much;
 *   shared   a named shared-memory region of fixed capacity
 *            (shmstream.c: ShmCreateStreamOnSharedMemory and
 *            ShmOpenStreamOnSharedMemory), whose header other processes
 *            can read and write.
 *
 * Stream header (in the region, or in the heap store's private memory):
 *
 *   offset size  field        notes
 *   ------ ----  -----------  -------------------------------------------
 *      0    48   region       shmc_region_hdr (regionhdr.h), kind STREAM
 *     48     8   capacity     max size in bytes; written once at creation
 *     56     8   data_offset  where the bytes start, from the region base:
 *                             sizeof(header) rounded up to the page size;
 *                             written once at creation
 *     64     8   size         current size; every writer that extends the
 *                             stream raises it with a CAS (max), so two
 *                             processes writing disjoint ranges never lose
 *                             an update; on its own cache line because
 *                             writers hammer it
 *     72    56   reserved     zero
 *    128         (end; data at data_offset)
 *
 * Invariants (each operation re-establishes them from a fresh snapshot):
 *   size <= capacity <= avail, where avail is the number of data bytes this
 *   process can address (its own mapping length minus data_offset, or the
 *   heap allocation), known privately. Every byte touched lies in
 *   [data, data + max(pos + n, size)) with that bound <= capacity.
 *   Bytes in [size, avail) are zero unless a writer is filling them right
 *   now, so growing the stream (SetSize, or a Write past the end) exposes
 *   zeros without clearing anything, and two writers never clear each
 *   other's bytes. Shrinking clears [new size, old size).
 *
 * Hostile memory: each operation loads the header fields it depends on
 * once (magic, kind, version, header size, capacity, data_offset: must
 * equal the values validated at open, kept privately; size: must be <=
 * the private capacity) and uses only those locals. A header that fails the check
 * gives STG_E_INVALIDHEADER and the operation touches nothing.
 *
 * Threads: an IStream object (its seek pointer) is used by one thread at a
 * time, as COM's memory stream. Objects over one shared store may be used
 * concurrently from any thread or process. A heap store may be used by one
 * thread at a time, whatever object it goes through (growth moves it).
 */
#ifndef SHMCOM_RUNTIME_SHSTREAM_H
#define SHMCOM_RUNTIME_SHSTREAM_H

#include "regionhdr.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SHMC_STREAM_VERSION 1u

typedef struct shmc_stream_hdr {
    shmc_region_hdr region;
    _Atomic uint64_t capacity;
    _Atomic uint64_t data_offset;
    _Atomic uint64_t size;
    uint8_t reserved[56];
} shmc_stream_hdr;

_Static_assert(offsetof(shmc_stream_hdr, region) == 0, "layout");
_Static_assert(offsetof(shmc_stream_hdr, capacity) == 48, "layout");
_Static_assert(offsetof(shmc_stream_hdr, data_offset) == 56, "layout");
_Static_assert(offsetof(shmc_stream_hdr, size) == 64, "layout");
_Static_assert(offsetof(shmc_stream_hdr, reserved) == 72, "layout");
_Static_assert(sizeof(shmc_stream_hdr) == 128, "layout");

typedef struct shmc_stream_store shmc_stream_store;

typedef struct shmc_stream_store_ops {
    /*
     * Makes data bytes [0, need) addressable, need <= capacity, keeping
     * the bytes beyond the size zero. E_OUTOFMEMORY if it cannot. NULL for
     * a store whose capacity is addressable from the start.
     */
    HRESULT (*reserve)(shmc_stream_store *s, uint64_t need);
    /* The last IStream object over the store was released. */
    void (*destroy)(shmc_stream_store *s);
} shmc_stream_store_ops;

/*
 * What the IStream objects over one byte range share. Everything here is
 * private memory, set before the first object exists; only `refs`, and
 * for a heap store `data`/`avail` (by reserve), change later.
 */
struct shmc_stream_store {
    const shmc_stream_store_ops *ops;
    _Atomic uint32_t refs;       /* IStream objects over this store */
    shmc_stream_hdr *hdr;        /* shared (hostile) or private */
    unsigned char *data;         /* first data byte */
    uint64_t avail;              /* data bytes addressable at `data` */
    uint64_t capacity;           /* validated copy of hdr->capacity */
    uint64_t data_offset;        /* validated copy of hdr->data_offset */
    char name[SHM_MAX_NAME + 1]; /* what Stat reports; "" for none */
};

/*
 * Fills a stream header that nobody else can see yet: region header of
 * kind STREAM owned by `owner`, capacity, data_offset, size 0; magic last
 * (release).
 */
void shmc_stream_hdr_init(shmc_stream_hdr *h, uint64_t capacity, uint64_t data_offset,
                          const shmc_plat_procid *owner, uint64_t nonce);

/*
 * Makes a new IStream object over `store` with its seek pointer at `pos`,
 * taking one reference on the store. On failure (E_OUTOFMEMORY) *out is
 * NULL and the store's count is unchanged.
 */
HRESULT shmc_stream_new(shmc_stream_store *store, uint64_t pos, IStream **out);

/*
 * The store behind `stream` if it is one of ours (our vtable), else NULL.
 * For tests and for the runtime's fast paths.
 */
shmc_stream_store *shmc_stream_store_of(IStream *stream);

/*
 * A heap stream: empty, growing on demand in private memory, with room
 * for `reserve` bytes allocated up front (0: allocate on first write).
 * Semantics as CreateStreamOnHGlobal's stream (see docs/stream.md); a
 * size it cannot allocate gives E_OUTOFMEMORY, as that stream does.
 * E_INVALIDARG if out is NULL; E_OUTOFMEMORY. *out is NULL on failure.
 */
HRESULT shmc_stream_create_heap(size_t reserve, IStream **out);

/*
 * A shared store over `size` bytes of the caller's memory at `base`, as if
 * it were a region just mapped by ShmOpenStreamOnSharedMemory: the header
 * is validated the same way (same results, minus the name's), and every
 * operation re-checks it. The memory stays the caller's and must outlive
 * the stream and its clones; it is never unmapped or freed here. For the
 * fuzzers (tests/fuzz/fuzz_shmstream.c), which put any bytes there.
 * E_INVALIDARG for a NULL base or out; *out is NULL on failure.
 */
HRESULT shmc_stream_open_memory(void *base, size_t size, IStream **out);

#endif /* SHMCOM_RUNTIME_SHSTREAM_H */
