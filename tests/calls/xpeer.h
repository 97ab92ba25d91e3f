/*
 * xpeer.h - what the adversarial cross-process tests share (test_attacker,
 * test_killstress): the mailbox of xpeer_mb.h, well-behaved calls whose
 * every result is checked, and counts of what a process holds (stubs,
 * objects, threads, handles, regions of a dead process) to compare
 * against a baseline.
 */
#ifndef SHMCOM_XPEER_H
#define SHMCOM_XPEER_H

#include "callee.h"
#include "calltest.h"
#include "tsupport.h"
#include "xpeer_mb.h"

#include <stdatomic.h>

/* A xorshift64* generator (never seeded with 0). */
uint64_t xpeer_rand(uint64_t *state);

/*
 * One call of a well-behaved client, chosen by *rng among every kind the
 * stress needs (scalars, [in] and [in, out] arrays, strings, [out] arrays
 * the callee allocates, structs, [out] objects and calls on them, remote
 * QueryInterface, a callback into `cb`), with its answer checked. S_OK if
 * it succeeded with the right answer; the call's error; or E_UNEXPECTED
 * for a success with a wrong answer (printed to stderr with `who`).
 */
HRESULT xpeer_good_call(ICallee *p, ICallback *cb, uint64_t *rng, const char *who);

/* ---- what a process holds ----------------------------------------------------- */

typedef struct xpeer_counts {
    long handles; /* open descriptors / handles */
    long threads; /* threads of this process */
    size_t stubs; /* stub managers (exported objects) */
    size_t ipids; /* interface stubs */
    int callees;  /* live test objects (callee.c) */
} xpeer_counts;

void xpeer_counts_take(xpeer_counts *c);
/*
 * Waits (bounded by timeout_ms, a watchdog, not a speed limit) until this
 * process holds what `base` says again (the same objects and stubs, no
 * more handles or threads); fails the test naming what differs if it does
 * not.
 */
void xpeer_counts_await(const xpeer_counts *base, uint32_t timeout_ms);

/* Number of threads of this process (-1 if it cannot tell). */
long xpeer_thread_count(void);

/* (POSIX) Number of regions whose header names process `pid` as creator;
 * 0 on Windows, where names die with their processes. */
unsigned xpeer_regions_of(uint64_t pid);

#endif /* SHMCOM_XPEER_H */
