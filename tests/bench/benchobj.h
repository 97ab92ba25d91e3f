/*
 * benchobj.h - the object the call benchmarks call (IBench of bench.idl):
 * Null does nothing, Put and Get touch only the last byte of their array,
 * so that a row measures the transport, not the object.
 */
#ifndef SHMCOM_BENCHOBJ_H
#define SHMCOM_BENCHOBJ_H

#include "bench.h"

/* A new object with one reference, or NULL when out of memory. */
IBench *bench_obj_new(void);

/* n null calls through p, each after waiting gap_us (spinning, untimed),
 * so that a callee that sleeps when idle is asleep in the kernel when the
 * call comes: *us is their mean time (after 10 calls back to back to warm
 * up). Returns the first failure of a call, else S_OK. */
HRESULT bench_null_after_gap(IBench *p, uint32_t n, double gap_us, double *us);

#endif /* SHMCOM_BENCHOBJ_H */
