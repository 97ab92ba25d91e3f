/*
 * shmcom/shmcom.h - the one header a shmcom user includes.
 *
 * shmcom marshals COM interface pointers between apartments of one process
 * and between processes of one machine, through shared memory. The COM
 * types and values come from <objbase.h> on Windows and from
 * <shmcom/comtypes.h> (same layout, same values) elsewhere.
 *
 * Every function returns an HRESULT unless stated otherwise; a failing call
 * leaves its out parameters NULL (or zeroed) and holds no resources.
 */
#ifndef SHMCOM_SHMCOM_H
#define SHMCOM_SHMCOM_H

#include "shmcom/comtypes.h"
#include "shmcom/export.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMCOM_VERSION_MAJOR  0
#define SHMCOM_VERSION_MINOR  1
#define SHMCOM_VERSION_PATCH  0
#define SHMCOM_VERSION_STRING "0.1.0"

/* ---- shmcom's own HRESULTs ---------------------------------------------
 *
 * Named shared-memory objects report these on every platform:
 *   SHM_E_NAME_NOT_FOUND  open of a name nobody created (or already removed)
 *   SHM_E_NAME_EXISTS     create of a name that is in use
 *   E_INVALIDARG          a malformed name (empty, too long, bad characters)
 *
 * An operating-system error with no COM equivalent is reported in
 * shmcom's own facility, with the raw errno (POSIX) in the low 16 bits:
 * SHM_HRESULT_FROM_ERRNO(e). On Windows raw errors are reported as
 * HRESULT_FROM_WIN32(GetLastError()).
 */
#define SHM_E_NAME_NOT_FOUND HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND) /* 0x80070002 */
#define SHM_E_NAME_EXISTS    HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS) /* 0x800700B7 */
#define SHM_FACILITY_ERRNO   0x5C4
#define SHM_HRESULT_FROM_ERRNO(e)                                                 \
    ((HRESULT)(0x80000000u | 0x20000000u | ((unsigned)SHM_FACILITY_ERRNO << 16) | \
               ((unsigned)(e)&0xFFFFu)))
#define SHM_HRESULT_IS_ERRNO(hr) \
    ((((unsigned)(hr)) & 0xFFFF0000u) == (unsigned)SHM_HRESULT_FROM_ERRNO(0))

/* Longest name accepted for a named shared-memory object, in bytes. */
#define SHM_MAX_NAME 128

/* ---- GUID helpers ------------------------------------------------------ */

/* Length of "{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}" with its NUL. */
#define SHM_GUID_STRING_CHARS 39

/*
 * Formats a GUID as "{01234567-89AB-CDEF-0123-456789ABCDEF}" (upper case,
 * registry format) into buf. Returns the characters written including the
 * terminating NUL (39), or 0 when guid or buf is NULL or cch_max < 39, as
 * StringFromGUID2 does.
 */
SHMCOM_API int ShmStringFromGUID2(REFGUID guid, char *buf, int cch_max);

/*
 * Parses the registry format ("{...}", hex digits in either case). NULL text
 * gives GUID_NULL and S_OK, as IIDFromString does. Malformed text (wrong
 * length, missing braces or dashes, a non-hex digit, trailing characters)
 * gives E_INVALIDARG and sets *iid to GUID_NULL; iid == NULL gives
 * E_INVALIDARG.
 */
SHMCOM_API HRESULT ShmIIDFromString(const char *text, IID *iid);

/*
 * Total order over GUIDs (Data1, Data2, Data3, then Data4 bytes, as
 * numbers): negative, zero or positive like memcmp. For sorted tables;
 * IsEqualGUID tests equality.
 */
SHMCOM_API int ShmCompareGUID(REFGUID a, REFGUID b);

/* ---- task memory --------------------------------------------------------
 *
 * The allocator for [out] data that a callee allocates and the caller
 * frees, as CoTaskMemAlloc/CoTaskMemFree (on Windows they are those).
 * ShmCoTaskMemAlloc(0) returns a unique pointer; NULL means out of memory.
 * ShmCoTaskMemFree(NULL) does nothing.
 */
SHMCOM_API void *ShmCoTaskMemAlloc(SIZE_T size);
SHMCOM_API void ShmCoTaskMemFree(void *p);

/* ---- HRESULT names ----------------------------------------------------- */

/*
 * The symbolic name of an HRESULT that COM or shmcom defines
 * ("RPC_E_SERVER_DIED", "S_OK"), or NULL for one it does not know. The
 * string is static.
 */
SHMCOM_API const char *ShmHresultName(HRESULT hr);

#ifdef __cplusplus
}
#endif

#endif /* SHMCOM_SHMCOM_H */
