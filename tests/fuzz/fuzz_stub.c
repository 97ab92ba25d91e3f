/*
 * fuzz_stub.c - libFuzzer target: ShmStubInvoke's frame decoding over the
 * interfaces of tests/idl/calls.idl. The first byte picks the method, the
 * rest is the request frame, in a buffer of exactly its size. The object
 * accepts anything; the marshaler refuses every record. A bad frame must
 * give an error and touch nothing outside it (ASan), and nothing may leak.
 */
#define COBJMACROS
#include "calls.h"
#include <shmcom/proxystub.h>

#include <stdlib.h>
#include <string.h>

static HRESULT m_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **d, uint32_t *s)
{
    (void)m;
    (void)iid;
    (void)itf;
    (void)d;
    (void)s;
    return E_FAIL;
}
static HRESULT m_unmarshal(ShmItfMarshaler *m, REFIID iid, const void *d, uint32_t s, void **ppv)
{
    (void)m;
    (void)iid;
    /* read the record as a real marshaler would: all of it */
    volatile unsigned char sum = 0;
    for (uint32_t i = 0; i < s; i++)
        sum ^= ((const unsigned char *)d)[i];
    *ppv = NULL;
    return RPC_E_INVALID_OBJREF;
}
static void m_release(ShmItfMarshaler *m, const void *d, uint32_t s)
{
    (void)m;
    volatile unsigned char sum = 0;
    for (uint32_t i = 0; i < s; i++)
        sum ^= ((const unsigned char *)d)[i];
}
static const ShmItfMarshalerVtbl mvtbl = {m_marshal, m_unmarshal, m_release};
static ShmItfMarshaler marshaler = {&mvtbl};

static void *reply_buf;
static HRESULT r_get(ShmStubReply *r, uint32_t size, void **buf)
{
    (void)r;
    reply_buf = malloc(size ? size : 1);
    *buf = reply_buf;
    return reply_buf ? S_OK : E_OUTOFMEMORY;
}
static const ShmStubReplyVtbl rvtbl = {r_get};

/* The object: every method of IDerived touches all of its arguments. */
static HRESULT STDMETHODCALLTYPE anything(void)
{
    return S_OK;
}

/* A generic call thunk replaces the generated ones: the fuzzer checks the
 * engine, not the object. It reads every [in] byte and writes every
 * caller-allocated [out] byte the engine handed over. */
static const ShmMethod *cur;
static HRESULT touch(void *itf, void **args)
{
    (void)itf;
    for (uint32_t i = 0; i < cur->nparams; i++) {
        const ShmParam *p = &cur->params[i];
        volatile unsigned char sum = 0;
        if (p->kind == SHM_PK_VALUE) {
            for (uint32_t k = 0; k < p->elem_size * p->count; k++)
                sum ^= ((unsigned char *)args[i])[k];
            continue;
        }
        void *ptr;
        memcpy(&ptr, args[i], sizeof(ptr));
        if (p->kind == SHM_PK_REF) {
            for (uint32_t k = 0; k < p->elem_size * p->count; k++)
                ((unsigned char *)ptr)[k] ^= 1;
        } else if (p->kind == SHM_PK_STRING && (p->flags & SHM_PF_IN)) {
            size_t n = 0;
            while (((char *)ptr)[n] || (p->elem_size == 2 && ((char *)ptr)[n + 1]))
                n += p->elem_size;
        }
    }
    return S_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ShmMethod methods[64];
    static ShmInterfaceInfo info;
    const ShmInterfaceInfo *real = NULL;
    for (uint32_t i = 0; i < calls_ProxyFileInfo.ninterfaces; i++)
        if (IsEqualIID(calls_ProxyFileInfo.interfaces[i]->iid, &IID_IDerived))
            real = calls_ProxyFileInfo.interfaces[i];
    if (!real || size < 1 || real->nmethods > 64)
        return 0;
    info = *real;
    memcpy(methods, real->methods, sizeof(ShmMethod) * real->nmethods);
    for (uint32_t i = 3; i < real->nmethods; i++)
        methods[i].call = touch;
    info.methods = methods;
    uint32_t slot = data[0] % (real->nmethods + 1);
    cur = slot < real->nmethods ? &methods[slot] : NULL;
    size_t n = size - 1;
    unsigned char *frame = malloc(n ? n : 1);
    memcpy(frame, data + 1, n);
    ShmStubReply reply = {&rvtbl};
    static int obj;
    (void)anything;
    HRESULT hr = ShmStubInvoke(&info, &obj, slot, frame, (uint32_t)n, &marshaler, &reply);
    (void)hr;
    free(reply_buf);
    reply_buf = NULL;
    free(frame);
    return 0;
}
