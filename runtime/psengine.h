/*
 * psengine.h - internal entry points of the proxy/stub engine.
 */
#ifndef SHMCOM_RUNTIME_PSENGINE_H
#define SHMCOM_RUNTIME_PSENGINE_H

#include "shmcom/proxystub.h"

/*
 * Checks that a generated interface table is self-consistent: slots inside
 * the fixed parts and not overlapping, element sizes and alignments sane,
 * size_is and iid_is naming parameters of the right kind. The engine
 * trusts tables; the registry calls this before accepting them, and the
 * tests call it on every generated table. S_OK or E_INVALIDARG.
 */
HRESULT shmc_ps_check_interface(const ShmInterfaceInfo *info);

/*
 * A channel's call of a method without parameters in one step, which the
 * engine then uses instead of GetBuffer, SendReceive and FreeBuffer:
 * `size` zero bytes of request. Returns the transport's result (as
 * SendReceive); on S_OK *reply_size is the reply's size and, if it is at
 * least 4, *head its first 4 bytes. The remote channel (remote.c) sets
 * its own at run-time set-up (the engine is also built without it, for
 * the fuzzers).
 */
typedef HRESULT (*shmc_ps_bare_fn)(ShmProxyChannel *ch, ShmProxyHeader *from, uint32_t method,
                                   uint32_t size, uint32_t *reply_size, HRESULT *head);
void shmc_ps_set_bare_call(const ShmProxyChannelVtbl *vtbl, shmc_ps_bare_fn fn);

#endif /* SHMCOM_RUNTIME_PSENGINE_H */
