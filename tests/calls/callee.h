/*
 * callee.h - the test object behind tests/calls/calltest.idl: ICallee and
 * ICallback on one heap object that counts its references, its calls and
 * how many run at once, shared by the in-process and cross-process call
 * tests.
 */
#ifndef SHMCOM_CALLEE_H
#define SHMCOM_CALLEE_H

#include "calltest.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct callee {
    ICallee ICallee_iface;
    ICallback ICallback_iface;
    _Atomic int refs;
    LONG tag;
    _Atomic int *freed;
    _Atomic int in_flight, max_in_flight, calls;
    LONG last_seq[8];
    bool out_of_order;
} callee;

/* callees alive now (children included), to catch one that leaks */
extern _Atomic int live_callees;
/* where and with what the last ICallback_Notify on any callee ran */
extern _Atomic uint64_t notify_thread;
extern _Atomic LONG notify_value;

/* Called (if set) as ICallee_Wait starts (true) and ends (false). */
extern void (*callee_wait_hook)(bool entering);

/* A callee with one reference; *freed (may be NULL) becomes 1 when it is
 * freed. NULL when out of memory. */
callee *callee_new(LONG tag, _Atomic int *freed);

#endif /* SHMCOM_CALLEE_H */
