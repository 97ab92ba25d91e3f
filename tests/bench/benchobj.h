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

/* The wait/wake floors are a cross-core wake-up: each side of the
 * ping-pong bound to a CPU of its own. Unbound, a kernel may keep both on
 * one CPU, where a round trip is two context switches and wakes no idle
 * CPU (4.5 us against 46 us on one KVM host), which is not what a call to
 * a sleeping callee on another CPU costs.
 * bench_bind_self binds the calling thread to the CPU it runs on and
 * returns that CPU; bench_bind_other binds it to a CPU other than `mine`
 * and returns it; both give -1 and leave the thread unbound where there is
 * one CPU or the OS refuses. bench_unbind undoes either. */
int bench_bind_self(void);
int bench_bind_other(int mine);
void bench_unbind(void);

#endif /* SHMCOM_BENCHOBJ_H */
