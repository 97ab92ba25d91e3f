/*
 * callfaults.h - every allocation of a call through a real proxy fails in
 * turn (the runtime's fault hook, alloc.h), for each kind of argument:
 * strings, arrays each way, arrays the callee allocates, [out] objects,
 * [iid_is], [in] interfaces (a callback into this apartment), remote
 * QueryInterface. Shared by the in-process and the cross-process tests.
 */
#ifndef SHMCOM_CALLFAULTS_H
#define SHMCOM_CALLFAULTS_H

#include "calltest.h"

#include <stdbool.h>

/* For each kind of call, n = 1, 2, ... until the call no longer reaches
 * the n-th allocation: a failed call gives a clean error with its [out]
 * parameters NULL or zeroed, and the next plain call works. `mine` is an
 * object of the calling apartment (the [in] interface). `big` adds an
 * [in] and an [out] array larger than a call slot (bulk regions between
 * processes). Returns the number of failures injected (sites reached). */
unsigned long callfaults_check(ICallee *p, ICallback *mine, bool big);

/* Where the faults are injected: `arm` makes the n-th allocation from now
 * on, and every one after it, fail; `disarm` stops that and returns how
 * many failed. callfaults_check uses this process's hook; a cross-process
 * test passes one that arms the server process's. */
typedef struct callfaults_hook {
    void (*arm)(void *ctx, unsigned long n);
    unsigned long (*disarm)(void *ctx);
    void *ctx;
} callfaults_hook;

/* callfaults_check with the faults injected through `hook`. */
unsigned long callfaults_check_with(ICallee *p, ICallback *mine, bool big,
                                    const callfaults_hook *hook);

/* The same for the mappings of regions (the platform layer's system-call
 * hook, shmc_plat_fault_set): 40 MiB [in] and [out] arrays, whose frames
 * travel in new bulk regions that each side maps. */
unsigned long callfaults_regions(ICallee *p);

#endif /* SHMCOM_CALLFAULTS_H */
