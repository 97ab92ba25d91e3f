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

#endif /* SHMCOM_BENCHOBJ_H */
