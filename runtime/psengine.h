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

#endif /* SHMCOM_RUNTIME_PSENGINE_H */
