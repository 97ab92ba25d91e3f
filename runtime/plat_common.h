/*
 * plat_common.h - helpers shared by the platform layers (posix/, win32/).
 * Not part of the contract the core uses; the core includes platform.h.
 */
#ifndef SHMCOM_RUNTIME_PLAT_COMMON_H
#define SHMCOM_RUNTIME_PLAT_COMMON_H

#include "platform.h"

/*
 * NULL-terminated list of the OS functions a platform layer routes through
 * the fault hook; each platform defines it.
 */
extern const char *const shmc_plat__routed_syscalls[];

/*
 * Called by a platform layer before the routed OS function `syscall`:
 * returns the native error to fail with, or 0 to make the real call.
 */
int shmc_plat__fault(const char *syscall);

/* Rounds size up to a multiple of the page size; 0 on overflow. */
static inline size_t shmc_plat__round_page(size_t size)
{
    size_t page = shmc_plat_page_size();
    if (size > SIZE_MAX - (page - 1))
        return 0;
    return (size + page - 1) & ~(page - 1);
}

#endif /* SHMCOM_RUNTIME_PLAT_COMMON_H */
