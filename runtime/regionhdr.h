/*
 * regionhdr.h - the header that every shmcom-owned shared-memory region
 * starts with, whatever it holds (a stream, later the transport's rings).
 *
 *   offset size  field        written by / when
 *   ------ ----  -----------  ------------------------------------------
 *      0     8   magic        creator, once, LAST (release): the header
 *                             is valid from the moment it reads
 *                             SHMC_REGION_MAGIC; 0 means "not yet"
 *      8     4   kind         creator, before magic: SHMC_REGION_KIND_*
 *     12     4   version      creator, before magic: layout of that kind
 *     16     8   owner_pid    creator, before magic: its process identity
 *     24     8   owner_start    (shmc_plat_procid: pid + start time)
 *     32     8   nonce        creator, before magic: random; tells two
 *                             regions that had the same name apart (for
 *                             peers that reconnect by name; diagnostics)
 *     40     4   state        creator: SHMC_REGION_LIVE, then CLOSED at
 *                             the end of its use of the name (release)
 *     44     4   hdr_size     creator, before magic: bytes of the kind's
 *                             whole header (this prefix included)
 *     48         the kind's own header continues here
 *
 * Every field is an atomic of its own width, read with one load into a
 * local: another process (a buggy or hostile one of the same user) can
 * write any of them at any time. Nothing here is trusted after the check
 * that reads it; kinds keep private copies of what they validated.
 *
 * Owner identity and state serve two purposes:
 *  - the name-lifetime rule: an opener treats a CLOSED region, or one
 *    whose owner has died, as gone (SHM_E_NAME_NOT_FOUND), the same on
 *    POSIX and Windows;
 *  - reclaim (reclaim.c): on POSIX a name outlives a creator that was
 *    killed; shmc_reclaim_stale() finds regions whose owner is dead and
 *    removes their names.
 */
#ifndef SHMCOM_RUNTIME_REGIONHDR_H
#define SHMCOM_RUNTIME_REGIONHDR_H

#include "platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "SHMCOMrg" read as a little-endian 64-bit word. */
#define SHMC_REGION_MAGIC UINT64_C(0x67726d4f434d4853)

/* What a region holds. */
#define SHMC_REGION_KIND_STREAM 1u

/* state */
#define SHMC_REGION_LIVE   0u
#define SHMC_REGION_CLOSED 1u

typedef struct shmc_region_hdr {
    _Atomic uint64_t magic;
    _Atomic uint32_t kind;
    _Atomic uint32_t version;
    _Atomic uint64_t owner_pid;
    _Atomic uint64_t owner_start;
    _Atomic uint64_t nonce;
    _Atomic uint32_t state;
    _Atomic uint32_t hdr_size;
} shmc_region_hdr;

/* The layout is a contract between processes (and builds): pin it. */
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8, "u64");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && _Alignof(_Atomic uint32_t) == 4, "u32");
_Static_assert(offsetof(shmc_region_hdr, magic) == 0, "layout");
_Static_assert(offsetof(shmc_region_hdr, kind) == 8, "layout");
_Static_assert(offsetof(shmc_region_hdr, version) == 12, "layout");
_Static_assert(offsetof(shmc_region_hdr, owner_pid) == 16, "layout");
_Static_assert(offsetof(shmc_region_hdr, owner_start) == 24, "layout");
_Static_assert(offsetof(shmc_region_hdr, nonce) == 32, "layout");
_Static_assert(offsetof(shmc_region_hdr, state) == 40, "layout");
_Static_assert(offsetof(shmc_region_hdr, hdr_size) == 44, "layout");
_Static_assert(sizeof(shmc_region_hdr) == 48, "layout");

/* One validated snapshot of a region header (private memory). */
typedef struct shmc_region_info {
    uint32_t kind;
    uint32_t version;
    uint32_t state;
    uint32_t hdr_size;
    shmc_plat_procid owner;
    uint64_t nonce;
} shmc_region_info;

/*
 * Fills the header of a region that nobody can use yet (zero-filled, and
 * either not yet named or not yet published by magic): the owner (the
 * creating process, from shmc_plat_proc_self), state LIVE, and magic last
 * with release order, so that a reader that sees the magic (acquire) sees
 * the rest.
 */
void shmc_region_hdr_init(shmc_region_hdr *h, uint32_t kind, uint32_t version, uint32_t hdr_size,
                          const shmc_plat_procid *owner, uint64_t nonce);

/*
 * Reads the common header of a region of `mapped` bytes once into *info
 * and checks it:
 *   SHM_E_NAME_NOT_FOUND  magic still 0: the creator has not published it;
 *   STG_E_INVALIDHEADER   another magic, hdr_size outside [48, mapped], or
 *                         an owner pid of 0;
 *   S_OK                  otherwise. kind, version and state are for the
 *                         caller to judge.
 */
HRESULT shmc_region_hdr_read(const shmc_region_hdr *h, size_t mapped, shmc_region_info *info);

/*
 * true if the process `owner` has exited, its pid now names another
 * process, or the pid is one no process can have. Answers false when it
 * cannot tell (the OS refused to look): a region is never reclaimed on a
 * guess.
 */
bool shmc_region_owner_dead(const shmc_plat_procid *owner);

/* ---- reclaim (reclaim.c) ------------------------------------------------ */

/*
 * Removes the names of this user's shmcom regions whose creator process
 * has died (POSIX; a killed creator leaves its name in /dev/shm). Regions
 * that are not shmcom's (no valid header), not yet published, or whose
 * owner lives are left alone. *removed (may be NULL) counts the names
 * removed. S_OK; S_FALSE on Windows, where named mappings die with their
 * processes and cannot be listed, so there is nothing to do; an error
 * only if the list of regions cannot be read.
 */
HRESULT shmc_reclaim_stale(unsigned *removed);

/*
 * The same for one name: S_OK if `name` was a shmcom region of a dead
 * creator and its name was removed, S_FALSE if it was left alone
 * (alive, not shmcom's, not found; always on Windows).
 */
HRESULT shmc_reclaim_name(const char *name);

/*
 * What creators call: runs shmc_reclaim_stale() on the first call in a
 * process and then at most once per SHMC_RECLAIM_INTERVAL_MS, so that
 * creating many streams does not scan /dev/shm each time.
 */
#define SHMC_RECLAIM_INTERVAL_MS 10000u
void shmc_reclaim_maybe(void);

/*
 * For tests: forgets the last scan, so that the next shmc_reclaim_maybe()
 * scans, and sets the minimum time between scans after that
 * (SHMC_PLAT_INFINITE: none until the next reset).
 */
void shmc_reclaim_maybe_reset(uint32_t interval_ms);

#endif /* SHMCOM_RUNTIME_REGIONHDR_H */
