/*
 * shmcom/proxystub.h - the contract between the code that shmidl generates
 * and the shmcom runtime. Users do not call these functions; the generated
 * FILE_p.c does, and the runtime's channel implements the other side.
 *
 * Generated code is tables plus thin typed thunks; one runtime engine
 * (ShmProxyInvoke on the caller's side, ShmStubInvoke on the object's)
 * reads the tables, builds and checks frames. So every bounds check on an
 * incoming frame lives in one place, which the tests and fuzzers hit.
 *
 * Frames
 * ------
 * A call is a request frame (the [in] arguments) and a reply frame (the
 * method's HRESULT and the [out] arguments). Each frame is a fixed part,
 * whose layout the compiler computed from fixed widths and natural
 * alignment (never from the C compiler's struct layout), followed by a
 * variable part:
 *
 *   request: | fixed part (ShmMethod.in_size bytes)   | variable part ... |
 *   reply:   | HRESULT | fixed part (up to out_size)  | variable part ... |
 *              0         4
 *
 * Every parameter has a slot in the fixed part of the frame(s) it travels
 * in (in_offset, out_offset; SHM_NO_SLOT when it does not travel there):
 *  - fixed data (SHM_PK_VALUE, SHM_PK_REF): the bytes themselves,
 *    elem_size * count of them;
 *  - variable data (strings, sized arrays, interface records): a
 *    ShmFrameRef {offset, length}, both in bytes, offset counted from the
 *    start of the frame (its byte 0), pointing into the variable part.
 *    A NULL pointer (allowed for interface pointers, and for the strings
 *    and arrays a callee allocates for [out]) is {SHM_NULL_REF, 0}.
 * All integers are little-endian, as the machines shmcom runs on.
 *
 * Variable data starts 8-aligned: every ShmFrameRef offset is a multiple
 * of 8 (relative to byte 0, so data is aligned in place when the frame
 * is), and the referred ranges do not overlap each other or the fixed
 * part. Bytes after the last of them are ignored. A receiver checks every
 * ShmFrameRef against the frame (inside the variable part, no overflow,
 * length a multiple of the element size, strings terminated with no
 * earlier NUL, counts matching their size_is parameter, no negative count
 * for a SHM_PF_SIGNED count) before it touches the data; a bad frame gives
 * RPC_E_INVALID_DATA and touches nothing outside it. Frames may sit in
 * memory another process can write: the engine copies what steers it
 * (refs, counts) into locals before checking and using them, and copies
 * strings before checking their terminator.
 *
 * When the method fails (FAILED(hr)), the stub frees or releases what the
 * callee returned in [out] parameters and the reply is the HRESULT alone
 * (out_size bytes, the [out] slots zero); the proxy then leaves [out]
 * pointers NULL and [out] data zeroed, as COM callers expect.
 */
#ifndef SHMCOM_PROXYSTUB_H
#define SHMCOM_PROXYSTUB_H

#include "shmcom/shmcom.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a table layout below changes; ShmCoRegisterProxyStubs
 * refuses tables of another version. */
#define SHM_PROXYSTUB_ABI 1

#define SHM_NO_SLOT  0xFFFFFFFFu
#define SHM_NULL_REF 0xFFFFFFFFu

/* Parameter kinds. */
enum {
    /* Fixed-size pointer-free data passed by value: base types, enums
     * (4 bytes), GUIDs and pointer-free structs, fixed arrays of them. */
    SHM_PK_VALUE = 1,
    /* A pointer to fixed-size pointer-free data: [in] const T *,
     * [out] T *, [in, out] T *, REFIID. Must not be NULL (E_POINTER). */
    SHM_PK_REF = 2,
    /* [string] char * / WCHAR * (elem_size 1 or 2). [in]: the caller's
     * string. [out]: a T ** that receives a string the caller frees with
     * ShmCoTaskMemFree. The length in the frame includes the terminator. */
    SHM_PK_STRING = 3,
    /* [size_is(n)] T *: [in] the caller's n elements; [out] the caller's
     * buffer of n elements that the callee fills; [in, out] both. n is the
     * value of the parameter size_param names (an integer passed by value,
     * or by pointer for [in, out]). */
    SHM_PK_ARRAY = 4,
    /* [out, size_is(, *pn)] T **: the callee allocates the array (with
     * ShmCoTaskMemAlloc) and sets *pn; the caller receives its own copy,
     * allocated with ShmCoTaskMemAlloc, and frees it. */
    SHM_PK_ARRAY_ALLOC = 5,
    /* An interface pointer: [in] IFoo * / [in, iid_is(r)] IUnknown *, or
     * [out] IFoo ** / [out, iid_is(r)] void **. Its record is written and
     * read by the ShmItfMarshaler of the call. */
    SHM_PK_INTERFACE = 6,
};

/* Parameter flags. */
enum {
    SHM_PF_IN = 1,
    SHM_PF_OUT = 2,
    SHM_PF_RETVAL = 4,
    /* A count (size_is) parameter of a signed type: a negative value is
     * refused (E_INVALIDARG from the proxy, RPC_E_INVALID_DATA from a frame)
     * instead of being read as a huge unsigned count. */
    SHM_PF_SIGNED = 8,
};

typedef struct ShmFrameRef {
    uint32_t offset;
    uint32_t length;
} ShmFrameRef;

typedef struct ShmParam {
    uint8_t kind;        /* SHM_PK_* */
    uint8_t flags;       /* SHM_PF_* */
    uint16_t size_param; /* ARRAY, ARRAY_ALLOC: index of the count parameter + 1; else 0 */
    uint16_t iid_param;  /* INTERFACE with iid_is: index of the REFIID parameter + 1; else 0 */
    uint16_t reserved;
    uint32_t elem_size;  /* VALUE, REF: size of one element; STRING: 1 or 2; ARRAY*: element size */
    uint32_t elem_align; /* its natural alignment (1, 2, 4 or 8) */
    uint32_t count;      /* VALUE, REF: number of elements (fixed arrays), else 1 */
    uint32_t in_offset;  /* slot in the request's fixed part, or SHM_NO_SLOT */
    uint32_t out_offset; /* slot in the reply's fixed part (>= 4), or SHM_NO_SLOT */
    const IID *iid;      /* INTERFACE without iid_is: the interface's IID */
} ShmParam;

/*
 * Calls the method on the real object: generated, one per method, e.g.
 *   static HRESULT IFoo_Bar_Call(void *itf, void **args)
 *   { IFoo *This = itf;
 *     return This->lpVtbl->Bar(This, *(LONG *)args[0], *(char **)args[1]); }
 * args[i] points at a value of the parameter's C type.
 */
typedef HRESULT (*ShmStubCall)(void *itf, void **args);

typedef struct ShmMethod {
    const char *name;
    const ShmParam *params;
    uint32_t nparams;
    uint32_t in_size;  /* size of the request's fixed part */
    uint32_t out_size; /* size of the reply's fixed part, HRESULT included (>= 4) */
    ShmStubCall call;
} ShmMethod;

typedef struct ShmInterfaceInfo {
    const IID *iid;
    const char *name;
    const IID *base_iid; /* &IID_IUnknown or the base interface's IID */
    uint32_t nmethods;   /* vtable slots, the three of IUnknown included */
    /* indexed by vtable slot; entries 0-2 (IUnknown) are unused: the
     * runtime implements QueryInterface, AddRef and Release itself */
    const ShmMethod *methods;
    const void *proxy_vtbl; /* the generated proxy vtable (an IFooVtbl) */
} ShmInterfaceInfo;

typedef struct ShmProxyFileInfo {
    uint32_t abi_version; /* SHM_PROXYSTUB_ABI */
    uint32_t ninterfaces;
    const ShmInterfaceInfo *const *interfaces;
    const char *file_name; /* the .idl file, for messages */
} ShmProxyFileInfo;

/* ---- interface pointers inside frames -------------------------------- */

/*
 * Writes and reads the records that stand for interface pointers in
 * frames. The runtime's channel supplies one per call (it knows the
 * destination: another apartment, another process); tests supply their
 * own.
 */
typedef struct ShmItfMarshaler ShmItfMarshaler;
// clang-format off
typedef struct ShmItfMarshalerVtbl {
    /* Marshals itf (non-NULL) as iid into a buffer allocated with
     * ShmCoTaskMemAlloc, which the caller frees. */
    HRESULT (*Marshal)(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **data,
                       uint32_t *size);
    /* Reads a record: returns the interface as iid in *ppv (AddRef'd).
     * Consumes the record whether it succeeds or not (no ReleaseMarshalData
     * follows). The record may come from a hostile frame: it is checked. */
    HRESULT (*Unmarshal)(ShmItfMarshaler *m, REFIID iid, const void *data, uint32_t size,
                         void **ppv);
    /* Releases what a record holds without reading it (a call failed after
     * the record was written). The proxy calls it for [in] records only if
     * the call fails before SendReceive: from SendReceive on, the request's
     * records belong to the channel and the stub. */
    void (*ReleaseMarshalData)(ShmItfMarshaler *m, const void *data, uint32_t size);
} ShmItfMarshalerVtbl;
// clang-format on

struct ShmItfMarshaler {
    const ShmItfMarshalerVtbl *vtbl;
};

/* ---- the caller's side: interface proxies ---------------------------- */

typedef struct ShmProxyChannel ShmProxyChannel;

/*
 * The first member of every interface proxy. `This` of a generated thunk
 * points at it.
 */
typedef struct ShmProxyHeader {
    const void *lpVtbl; /* the generated proxy vtable */
    const ShmInterfaceInfo *info;
    ShmProxyChannel *channel;
} ShmProxyHeader;

/* One call as the engine and the channel see it. */
typedef struct ShmCallFrame {
    uint32_t method; /* vtable slot */
    void *request;   /* GetBuffer: request_size writable bytes */
    uint32_t request_size;
    const void *reply; /* SendReceive: the reply frame (possibly hostile memory) */
    uint32_t reply_size;
    ShmItfMarshaler *marshaler; /* GetBuffer: for interface pointers in this call */
    void *channel_data;         /* the channel's own */
} ShmCallFrame;

// clang-format off
typedef struct ShmProxyChannelVtbl {
    /* IUnknown of the proxy: identity and reference counting belong to the
     * object's proxy manager, which knows all interface proxies. */
    HRESULT (*QueryInterface)(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid, void **ppv);
    ULONG (*AddRef)(ShmProxyChannel *ch, ShmProxyHeader *from);
    ULONG (*Release)(ShmProxyChannel *ch, ShmProxyHeader *from);
    /* Gives the call a request buffer of `size` bytes and a marshaler.
     * Fails (RPC_E_DISCONNECTED, RPC_E_WRONG_THREAD, ...) if no call can be
     * made; then nothing is to be freed.
     * The proxy calls it a second time for the same call, before
     * SendReceive, when [in] interface pointers are marshaled: their records'
     * sizes are known only once the marshaler (from the first call) wrote
     * them. The second call replaces the request buffer with one of the new
     * size (the old contents need not be kept) and keeps the marshaler; if
     * it fails, the first buffer stays and FreeBuffer still ends the call. */
    HRESULT (*GetBuffer)(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call,
                         uint32_t size);
    /* Sends the request and waits for the reply. On S_OK, call->reply and
     * reply_size describe the reply until FreeBuffer. On failure
     * (RPC_E_SERVER_DIED, RPC_E_TIMEOUT, ...) there is no reply. */
    HRESULT (*SendReceive)(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call);
    /* Ends the call: releases the request and the reply. */
    void (*FreeBuffer)(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call);
} ShmProxyChannelVtbl;
// clang-format on

struct ShmProxyChannel {
    const ShmProxyChannelVtbl *vtbl;
};

/* The IUnknown entries of every generated proxy vtable forward here. */
SHMCOM_API HRESULT ShmProxyQueryInterface(void *This, REFIID riid, void **ppv);
SHMCOM_API ULONG ShmProxyAddRef(void *This);
SHMCOM_API ULONG ShmProxyRelease(void *This);

/*
 * Every other generated proxy method: args[i] points at the i-th
 * parameter (after This) as the thunk received it. Marshals the [in]
 * arguments, makes the call through the channel, unmarshals the [out]
 * arguments and returns the method's HRESULT, or the channel's error.
 * On any failure the [out] pointers are left NULL (and [out] data zeroed),
 * and whatever was allocated or unmarshaled for the call is released.
 */
SHMCOM_API HRESULT ShmProxyInvoke(void *This, uint32_t method, void **args);

/* ---- the object's side: stubs ---------------------------------------- */

/* Where the stub engine puts the reply. */
typedef struct ShmStubReply ShmStubReply;
typedef struct ShmStubReplyVtbl {
    /* A buffer of `size` writable bytes for the reply frame, valid until
     * the channel sends it. */
    HRESULT (*GetBuffer)(ShmStubReply *r, uint32_t size, void **buf);
} ShmStubReplyVtbl;

struct ShmStubReply {
    const ShmStubReplyVtbl *vtbl;
};

/*
 * Dispatches one request to the object: checks the frame against the
 * method's table, unmarshals the [in] arguments, calls the method through
 * its ShmStubCall, and writes the reply (the method's HRESULT and the [out]
 * arguments) into a buffer from `reply`.
 *   itf      the object's interface pointer for info->iid
 *   method   the vtable slot
 * Returns S_OK when the method was called and the reply written (whatever
 * HRESULT the method returned, which the reply carries); RPC_E_INVALIDMETHOD
 * for a slot that is not a method; RPC_E_INVALID_DATA for a bad frame (the
 * method is not called); E_OUTOFMEMORY; or a marshaler's error. On failure
 * no reply was written and everything the call unmarshaled is released.
 */
SHMCOM_API HRESULT ShmStubInvoke(const ShmInterfaceInfo *info, void *itf, uint32_t method,
                                 const void *request, uint32_t request_size,
                                 ShmItfMarshaler *marshaler, ShmStubReply *reply);

#ifdef __cplusplus
}
#endif

#endif /* SHMCOM_PROXYSTUB_H */
