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
 * The remote channel's parameterless call in one step (remote.c), which
 * the engine uses for a method without parameters on that channel instead
 * of GetBuffer, SendReceive and FreeBuffer: `size` zero bytes of request.
 * Returns the transport's result (as SendReceive); on S_OK *reply_size is
 * the reply's size and, if it is at least 4, *head its first 4 bytes.
 */
extern const ShmProxyChannelVtbl shmc_remote_channel_vtbl;
HRESULT shmc_remote_call_bare(ShmProxyChannel *ch, ShmProxyHeader *from, uint32_t method,
                              uint32_t size, uint32_t *reply_size, HRESULT *head);

#endif /* SHMCOM_RUNTIME_PSENGINE_H */
