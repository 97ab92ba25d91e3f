/*
 * posix_impl.h - private to the POSIX platform layer: how the opaque
 * storage of platform.h objects is used here, and the fault-injection
 * wrapper for routed system calls.
 */
#ifndef SHMCOM_POSIX_IMPL_H
#define SHMCOM_POSIX_IMPL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "plat_common.h"

#include <errno.h>

/*
 * SHMC_ROUTE(name, call, fail_value): unless a test asked `name` to fail,
 * evaluates `call`; otherwise sets errno to the injected error and yields
 * fail_value, as the real function would.
 */
#define SHMC_ROUTE(name, call, fail_value) (shmc_posix_inject(name) ? (fail_value) : (call))

static inline int shmc_posix_inject(const char *name)
{
    int err = shmc_plat__fault(name);
    if (err)
        errno = err;
    return err;
}

/* sigbus.c: lists a mapping of a region (and unlists it before it is
 * unmapped), so that a page a peer truncated away reads as zeros instead of
 * killing the process with SIGBUS. */
void shmc_posix_sigbus_watch(void *start, size_t length);
void shmc_posix_sigbus_unwatch(void *start);

/* Reads the start time (field 22 of /proc/PID/stat) and the state letter. */
HRESULT shmc_posix_proc_stat(long pid, uint64_t *start_time, char *state);

#endif /* SHMCOM_POSIX_IMPL_H */
