/*
 * xpeer_mb.h - the mailbox between a cross-process test and the children
 * it re-runs itself as (a small region both map, and a shared-memory
 * stream for records), starting children that a cmocka teardown kills if
 * a test failed half way, and polling waits. Nothing here knows a test
 * interface: test_attacker and test_killstress (through xpeer.h) and
 * test_idlcalls share it.
 */
#ifndef SHMCOM_XPEER_MB_H
#define SHMCOM_XPEER_MB_H

#include "tsupport.h"

#include <shmcom/shmcom.h>
#include <stdatomic.h>
#include <stdbool.h>

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
    /* a test's own pointer-free record (e.g. what an object in a child
     * counts), laid out by that test */
    _Alignas(8) unsigned char data[64];
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

#endif /* SHMCOM_XPEER_MB_H */
