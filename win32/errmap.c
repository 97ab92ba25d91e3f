/*
 * errmap.c - Win32 error codes to HRESULT, in one table. Codes with a COM
 * meaning get it; every other is HRESULT_FROM_WIN32(code), which keeps
 * the raw code in the low 16 bits for logs.
 */
#include "win_impl.h"

/* (WaitOnAddress: its use for a waiter opened on a local word, in
 * wait_sem.c; failed, the waiter takes a semaphore, as where Windows has
 * no WaitOnAddress) */
const char *const shmc_plat__routed_syscalls[] = {
    "CreateFileMappingW", "OpenFileMappingW",
    "MapViewOfFile",      "CreateSemaphoreW",
    "CreateProcessW",     "OpenProcess",
    "BCryptGenRandom",    "_beginthreadex",
    "WaitOnAddress",      NULL,
};

static const struct {
    DWORD err;
    HRESULT hr;
} errmap[] = {
    {ERROR_FILE_NOT_FOUND, SHM_E_NAME_NOT_FOUND}, {ERROR_ALREADY_EXISTS, SHM_E_NAME_EXISTS},
    {ERROR_ACCESS_DENIED, E_ACCESSDENIED},        {ERROR_NOT_ENOUGH_MEMORY, E_OUTOFMEMORY},
    {ERROR_OUTOFMEMORY, E_OUTOFMEMORY},           {ERROR_COMMITMENT_LIMIT, E_OUTOFMEMORY},
    {ERROR_INVALID_PARAMETER, E_INVALIDARG},      {ERROR_INVALID_HANDLE, E_HANDLE},
    {ERROR_CALL_NOT_IMPLEMENTED, E_NOTIMPL},
};

HRESULT shmc_plat_hresult_from_os(int native_error)
{
    if (native_error == 0)
        return E_FAIL; /* a caller lost the error; still an error */
    for (size_t i = 0; i < sizeof(errmap) / sizeof(errmap[0]); i++) {
        if (errmap[i].err == (DWORD)native_error)
            return errmap[i].hr;
    }
    return HRESULT_FROM_WIN32((DWORD)native_error);
}
