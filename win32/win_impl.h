/*
 * win_impl.h - private to the Windows platform layer: the fault-injection
 * wrapper, UTF-8/UTF-16 helpers and the owner-only security attributes.
 */
#ifndef SHMCOM_WIN_IMPL_H
#define SHMCOM_WIN_IMPL_H

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include "plat_common.h"

/*
 * SHMC_ROUTE(name, call, fail_value): unless a test asked `name` to fail,
 * evaluates `call`; otherwise sets the last error to the injected code and
 * yields fail_value, as the real function would.
 */
#define SHMC_ROUTE(name, call, fail_value) (shmc_win_inject(name) ? (fail_value) : (call))

static inline int shmc_win_inject(const char *name)
{
    int err = shmc_plat__fault(name);
    if (err)
        SetLastError((DWORD)err);
    return err;
}

static inline HRESULT shmc_win_last_error(void)
{
    return shmc_plat_hresult_from_os((int)GetLastError());
}

/*
 * Security attributes whose DACL grants GENERIC_ALL to the current user
 * only, for every named object shmcom creates. Built once per process.
 */
HRESULT shmc_win_owner_only(SECURITY_ATTRIBUTES **sa);

/* true if the object's DACL grants access to the current user only. */
HRESULT shmc_win_is_owner_only(HANDLE h, bool *owner_only);

/* "Local\shmcom-<name><suffix>" as UTF-16 (names are ASCII, checked). */
#define SHMC_WIN_NAME_MAX (16 + SHM_MAX_NAME + 32)
HRESULT shmc_win_object_name(WCHAR out[SHMC_WIN_NAME_MAX], const char *name, const char *suffix);

/* UTF-8 <-> UTF-16; the result is malloc'ed. */
WCHAR *shmc_win_utf16(const char *s);
char *shmc_win_utf8(const WCHAR *s);

#endif /* SHMCOM_WIN_IMPL_H */
