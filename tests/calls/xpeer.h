/*
 * xpeer.h - what the adversarial cross-process tests share (test_attacker,
 * test_killstress): a mailbox region between the test process and the
 * children it re-runs itself as, well-behaved calls whose every result is
 * checked, and counts of what a process holds (stubs, objects, threads,
 * handles, regions of a dead process) to compare against a baseline.
 */
#ifndef SHMCOM_XPEER_H
#define SHMCOM_XPEER_H

#include "callee.h"
#include "calltest.h"
#include "tsupport.h"

#include <stdatomic.h>

#define XPEER_COUNTERS 16

/* The mailbox: the parent creates it, children open it by name. */
typedef struct xpeer_mb {
    _Atomic uint32_t phase;                   /* child -> parent: how far it got */
    _Atomic uint32_t stop;                    /* parent -> child: stop now */
    _Atomic uint32_t cmd;                     /* parent -> child: what to do next */
    _Atomic uint32_t ready;                   /* child -> parent: threads running */
    _Atomic uint32_t busy;                    /* attacker -> parent: attacking now */
    _Atomic uint32_t done;                    /* parent -> attacker: what it waited for is over */
    _Atomic uint64_t calls;                   /* a well-behaved client's calls, each checked */
    _Atomic uint64_t wrong;                   /* ... that failed or gave a wrong answer */
    _Atomic uint64_t died;                    /* ... that said RPC_E_SERVER_DIED (kill stress) */
    _Atomic uint64_t counter[XPEER_COUNTERS]; /* a child's own statistics */
    uint32_t coinit;                          /* the server's apartment */
    uint32_t threads;                         /* a client's threads */
    uint64_t seed;
    uint64_t arg[4];
    char stream[SHM_MAX_NAME + 1];  /* the records' stream */
    char stream2[SHM_MAX_NAME + 1]; /* another stream (to attack) */
} xpeer_mb;

typedef struct xpeer {
    shmc_plat_region region;
    xpeer_mb *mb;
    IStream *stream; /* created by the parent, opened by the child */
    char name[SHM_MAX_NAME + 1];
} xpeer;

/* Parent: a mailbox and a shared-memory stream of 64 KiB for records. */
void xpeer_create(xpeer *x);
void xpeer_free(xpeer *x);
/* Parent: starts a child (tsupport_spawn) that xpeer_teardown kills if
 * it is still there. */
void xpeer_spawn(shmc_plat_proc *p, const char *name, const char *arg);
/* A cmocka teardown: kills the children still running and, if the test
 * failed before xpeer_free, removes the names of its mailbox and streams. */
int xpeer_teardown(void **state);
/* Child: opens the parent's mailbox and stream; false on failure. */
bool xpeer_open(xpeer *x, const char *name);
void xpeer_close(xpeer *x);

/* Polls until *word >= value; false after timeout_ms. */
bool xpeer_await(_Atomic uint32_t *word, uint32_t value, uint32_t timeout_ms);

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
