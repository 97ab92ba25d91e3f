/*
 * callsobj.h - the object behind tests/idl/calls.idl (IDerived, with
 * ICalls and IBase, and an ICallback of its own) and the checks a caller
 * makes through an IDerived proxy, shared by the loopback test of the
 * generated proxies and stubs (test_proxystub) and the calls through the
 * runtime's real channel (test_idlcalls). The objects count their
 * references, and what reached them in a callsobj_counts that may live in
 * shared memory, so that a caller in another process reads it too.
 */
#ifndef SHMCOM_CALLSOBJ_H
#define SHMCOM_CALLSOBJ_H

#include "tsupport.h"

#include "base.h"
#include "calls.h"

#include <stdatomic.h>
#include <stdint.h>

/* What reached an object and its callback. Pointer-free: it may be in a
 * region that the object's process and the caller's both map. */
typedef struct callsobj_counts {
    _Atomic int32_t calls;    /* method calls that reached the object */
    _Atomic int32_t cb_calls; /* ICallback_Called on a callback counting here */
    _Atomic int32_t signed_n; /* the n of the last ICalls_Signed */
    _Atomic int32_t pad;
} callsobj_counts;

/* ICallback: Called(v) gives 2v. Not freed at zero references (the tests
 * check that the count comes back to 1). */
typedef struct callback {
    ICallback ICallback_iface;
    _Atomic int refs;
    _Atomic uint64_t thread; /* where the last Called ran */
    callsobj_counts *counts; /* &own, or what callback_init was given */
    callsobj_counts own;
} callback;

/* IDerived (and ICalls, IBase): what each method does is in callsobj.c.
 * Not freed at zero references either. */
typedef struct calls_obj {
    IDerived IDerived_iface;
    _Atomic int refs;
    callsobj_counts *counts; /* &own, or what callsobj_init was given */
    callsobj_counts own;
    callback cb;        /* what GetCallback and Fail return; counts in *counts */
    HRESULT nothing_hr; /* what Nothing returns */
} calls_obj;

/* An argument that makes a method fail after setting its [out]
 * parameters (callsobj.c says which). */
#define CALLSOBJ_FAIL (-7777)
/* The most Stream reads from the caller's stream. */
#define CALLSOBJ_STREAM_MAX 4096

/* One reference each; counts NULL: their own (the object's, for cb). */
void callback_init(callback *cb, callsobj_counts *counts);
void callsobj_init(calls_obj *o, callsobj_counts *counts);

/* An Item with every field set from id. */
Item callsobj_item(LONG id);
/* Wide strings the checks pass ("hei" with an accent, "yo"). */
extern const WCHAR callsobj_wide_hi[], callsobj_wide_yo[];

/*
 * Checks through p (a proxy for a calls_obj whose counts are `counts`),
 * each of a group of methods with values in both directions, the
 * object's failures passing through with [out] parameters NULL or zero
 * and [in, out] ones untouched, and [out] allocations freed with
 * ShmCoTaskMemFree. Each fails the test where a value is wrong.
 */
/* Ping, SwapPair (IBase, another file), Nothing, More (IDerived), and
 * QueryInterface for the bases through the proxy. */
void callsobj_check_simple(IDerived *p, callsobj_counts *counts);
/* Bases: every base type, and an enum. */
void callsobj_check_base_types(IDerived *p);
/* Structs (by value, const *, [out], [in, out]) and Fixed (fixed arrays,
 * GUID, REFIID). */
void callsobj_check_structs_and_fixed(IDerived *p);
/* Strings: char, WCHAR, LPCOLESTR in; char and WCHAR strings out. */
void callsobj_check_strings(IDerived *p, callsobj_counts *counts);
/* Arrays: size_is(n) in and out, [in, out] size_is(*pm) structs, 1 MiB
 * each way; Signed's negative count refused before any call. */
void callsobj_check_sized_arrays(IDerived *p, callsobj_counts *counts);
/* Alloc and AllocIn: size_is(, *pn) and size_is(, n) [out] arrays. */
void callsobj_check_callee_allocated(IDerived *p);
/* Fail: a callee that sets every [out] and fails: nothing comes back;
 * the same with S_OK: everything does, the callback a working proxy. */
void callsobj_check_method_failure(IDerived *p, callsobj_counts *counts);
/* Stream: the object reads and writes the caller's stream, and gives a
 * stream of its own, on which every IStream method is called. */
void callsobj_check_streams(IDerived *p, callsobj_counts *counts);

#endif /* SHMCOM_CALLSOBJ_H */
