/*
 * errmap.c - errno to HRESULT, in one table. An errno with a COM meaning
 * gets the COM code; any other keeps its raw value in shmcom's facility,
 * SHM_HRESULT_FROM_ERRNO(errno), so logs can still show it.
 */
#include "posix_impl.h"

#include <string.h>

const char *const shmc_plat__routed_syscalls[] = {
    "shm_open",   "ftruncate",   "fchmod",         "fstat",     "mmap", "shm_unlink", "opendir",
    "pidfd_open", "posix_spawn", "pthread_create", "getrandom", "open", "linkat",     NULL,
};

static const struct {
    int err;
    HRESULT hr;
} errmap[] = {
    {ENOENT, SHM_E_NAME_NOT_FOUND},
    {EEXIST, SHM_E_NAME_EXISTS},
    {EACCES, E_ACCESSDENIED},
    {EPERM, E_ACCESSDENIED},
    {ENOMEM, E_OUTOFMEMORY},
    {EINVAL, E_INVALIDARG},
    {EMFILE, HRESULT_FROM_WIN32(ERROR_TOO_MANY_OPEN_FILES)},
    {ENFILE, HRESULT_FROM_WIN32(ERROR_TOO_MANY_OPEN_FILES)},
    {ENAMETOOLONG, HRESULT_FROM_WIN32(ERROR_FILENAME_EXCED_RANGE)},
    {ENOSPC, HRESULT_FROM_WIN32(ERROR_DISK_FULL)},
    {EBUSY, HRESULT_FROM_WIN32(ERROR_BUSY)},
    {ENOSYS, E_NOTIMPL},
    {ETIMEDOUT, HRESULT_FROM_WIN32(ERROR_TIMEOUT)},
};

HRESULT shmc_plat_hresult_from_os(int native_error)
{
    if (native_error == 0)
        return E_FAIL; /* a caller lost errno; still an error */
    for (size_t i = 0; i < sizeof(errmap) / sizeof(errmap[0]); i++) {
        if (errmap[i].err == native_error)
            return errmap[i].hr;
    }
    return SHM_HRESULT_FROM_ERRNO(native_error);
}
