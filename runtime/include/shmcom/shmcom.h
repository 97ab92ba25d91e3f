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
 * IsEqualGUID tests equality. Neither argument may be NULL.
 */
SHMCOM_API int ShmCompareGUID(REFGUID a, REFGUID b);

/* ---- apartments ----------------------------------------------------------
 *
 * A thread joins an apartment before it marshals or calls through proxies:
 * its own single-threaded apartment (COINIT_APARTMENTTHREADED: objects it
 * exports are called on this thread only, one call at a time, in arrival
 * order), or the process's one multithreaded apartment
 * (COINIT_MULTITHREADED: calls from other apartments run on runtime
 * threads). A thread that joined none is in the MTA implicitly while the
 * MTA exists (some thread joined it), as on Windows.
 *
 * ShmCoInitializeEx: S_OK when the thread joins, S_FALSE when it already
 * had joined the same kind (counted: call ShmCoUninitialize as often),
 * RPC_E_CHANGED_MODE for the other kind, E_INVALIDARG for a non-NULL
 * reserved or unknown flags. COINIT_DISABLE_OLE1DDE and
 * COINIT_SPEED_OVER_MEMORY are accepted and ignored.
 *
 * ShmCoUninitialize: the last one leaves the apartment. When an apartment
 * ends (an STA's thread leaves it; the last member leaves the MTA), the
 * objects it exported are released and their proxies elsewhere answer
 * RPC_E_DISCONNECTED, and the references its own proxies held are given
 * back; those proxies then answer CO_E_OBJNOTCONNECTED (Release still works).
 * A thread that exits without uninitializing is cleaned up the same way.
 */
SHMCOM_API HRESULT ShmCoInitializeEx(void *reserved, DWORD coinit);
SHMCOM_API void ShmCoUninitialize(void);

/*
 * ShmCoProcessCalls (STA only): runs the calls queued for the calling
 * thread's STA; if none is queued, waits up to timeout_ms (INFINITE: for
 * ever) for one and runs it. S_OK when it ran calls, S_FALSE on timeout,
 * CO_E_NOTINITIALIZED on a thread not initialized, CO_E_NOT_SUPPORTED on an
 * MTA thread (MTA calls run on runtime threads). An STA also runs its
 * incoming calls while it waits for the reply to a call of its own, so a
 * callback into it works.
 */
SHMCOM_API HRESULT ShmCoProcessCalls(DWORD timeout_ms);

/*
 * ShmCoGetApartmentWaitHandle (STA only): a handle an event loop can wait
 * on, ready while calls wait for this STA; then call ShmCoProcessCalls(0).
 * An fd (readable) on POSIX, an event HANDLE on Windows, owned by the
 * apartment: do not close it. Errors as ShmCoProcessCalls.
 */
SHMCOM_API HRESULT ShmCoGetApartmentWaitHandle(intptr_t *handle);

/*
 * ShmCoSetCallTimeout: the longest the calling thread's outgoing calls wait
 * for their reply (INFINITE, the default, waits for ever). A call that
 * takes longer returns RPC_E_TIMEOUT; its late reply is dropped and what it
 * carried is released. It bounds every wait of the thread for another
 * apartment or process (methods, QueryInterface and the last Release
 * through proxies, the runtime's messages when records are unmarshaled or
 * released), not the first connection to a process (about 10 s).
 */
SHMCOM_API HRESULT ShmCoSetCallTimeout(DWORD timeout_ms);

/* ---- marshaling -------------------------------------------------------------
 *
 * As COM's functions of the same names (Microsoft's documentation and
 * Wine's conformance tests are the reference), in a runtime without
 * registry or class factories:
 *  - a record is read at the stream's position and leaves it at its end;
 *  - in the object's own apartment, unmarshaling gives the object itself;
 *    elsewhere a proxy (one identity per object and apartment);
 *  - MSHLFLAGS_NORMAL records are honoured once (then CO_E_OBJNOTCONNECTED);
 *    TABLESTRONG ones any number of times, keeping the object alive until
 *    ShmCoReleaseMarshalData; TABLEWEAK ones while someone else keeps the
 *    object alive (then CO_E_OBJNOTREG);
 *  - a failed unmarshal still consumes a NORMAL record.
 * Errors: E_INVALIDARG for NULL stream, IID, object or out pointer and for
 * unknown flags; CO_E_NOTINITIALIZED before ShmCoInitializeEx;
 * E_NOINTERFACE if the object lacks the interface; REGDB_E_IIDNOTREG if it
 * has it but no proxy/stub is registered for it; STG_E_READFAULT for a
 * stream that ends inside a record; RPC_E_INVALID_OBJREF for one that is
 * not a record; the stream's own errors. mshctx: MSHCTX_INPROC (or
 * MSHCTX_CROSSCTX) for another apartment of this process; MSHCTX_LOCAL for
 * another process of the same user on this machine (the record can also
 * be unmarshaled in this process); MSHCTX_NOSHAREDMEM and
 * MSHCTX_DIFFERENTMACHINE give E_NOTIMPL.
 * Across processes (docs/transport.md): unmarshaling a record whose
 * process has died, or that names no object it holds (forged, spent),
 * gives CO_E_OBJNOTCONNECTED; a process that already serves 4 connections
 * of ours refuses another with RPC_E_SERVERCALL_REJECTED. References a
 * process holds are released when it dies, and so are records made for it
 * that nobody took.
 */
SHMCOM_API HRESULT ShmCoMarshalInterface(IStream *stream, REFIID riid, IUnknown *punk, DWORD mshctx,
                                         void *reserved, DWORD mshlflags);
SHMCOM_API HRESULT ShmCoUnmarshalInterface(IStream *stream, REFIID riid, void **ppv);
SHMCOM_API HRESULT ShmCoReleaseMarshalData(IStream *stream);
SHMCOM_API HRESULT ShmCoGetMarshalSizeMax(ULONG *size, REFIID riid, IUnknown *punk, DWORD mshctx,
                                          void *reserved, DWORD mshlflags);
SHMCOM_API HRESULT ShmCoMarshalInterThreadInterfaceInStream(REFIID riid, IUnknown *punk,
                                                            IStream **stream);
SHMCOM_API HRESULT ShmCoGetInterfaceAndReleaseStream(IStream *stream, REFIID riid, void **ppv);

/*
 * ShmCoDisconnectObject: drops every reference the runtime holds on the
 * object (its stubs, its records); later calls through its proxies give
 * RPC_E_DISCONNECTED. S_OK also for an object never marshaled (or a
 * proxy, which is not affected); E_INVALIDARG for NULL;
 * CO_E_NOTINITIALIZED on a thread in no apartment.
 */
SHMCOM_API HRESULT ShmCoDisconnectObject(IUnknown *punk, DWORD reserved);

/*
 * ShmCoRegisterProxyStubs: makes the proxies and stubs of one IDL file
 * (FILE_ProxyFileInfo, generated by shmidl) available to this process. S_OK,
 * or S_FALSE if they all were registered already; RPC_E_VERSION_MISMATCH
 * for tables of another shmidl version; E_INVALIDARG for tables with a
 * missing pointer or too few slots (only those are checked: the layout in
 * the tables is trusted); E_OUTOFMEMORY (the interfaces before the failing
 * one stay registered). The tables are used in place and must stay valid
 * until the process exits. Registering an interface again replaces its
 * table for new proxies.
 */
typedef struct ShmProxyFileInfo ShmProxyFileInfo;
SHMCOM_API HRESULT ShmCoRegisterProxyStubs(const ShmProxyFileInfo *pfi);

/* ---- task memory --------------------------------------------------------
 *
 * The allocator for [out] data that a callee allocates and the caller
 * frees, as CoTaskMemAlloc/CoTaskMemFree (on Windows they are those).
 * ShmCoTaskMemAlloc(0) returns a unique pointer; NULL means out of memory.
 * ShmCoTaskMemFree(NULL) does nothing.
 */
SHMCOM_API void *ShmCoTaskMemAlloc(SIZE_T size);
SHMCOM_API void ShmCoTaskMemFree(void *p);

/* ---- shared-memory streams ----------------------------------------------
 *
 * A full IStream over a named shared-memory region (a file mapping on
 * Windows, shm_open + mmap on POSIX). Every process that opens the name
 * sees the same bytes and the same size; each IStream object (each open,
 * each Clone) has its own 64-bit seek pointer. The methods behave as those
 * of CreateStreamOnHGlobal's stream (Read past the end returns fewer
 * bytes; a seek before the start or with an unknown origin gives
 * STG_E_SEEKERROR and leaves the pointer; SetSize grows zero-filled and
 * shrinks; Stat gives STGTY_STREAM, the size, and the name unless
 * STATFLAG_NONAME; Commit, Revert, UnlockRegion return S_OK and
 * LockRegion STG_E_INVALIDFUNCTION), except that sizes and positions are
 * 64-bit and the stream never grows past its capacity: a Write or SetSize
 * past it fails with STG_E_MEDIUMFULL and writes nothing. A header that
 * another process corrupted gives STG_E_INVALIDHEADER, never an access
 * outside the region. Details: docs/stream.md.
 *
 * Name lifetime (the same on POSIX and Windows): a name lives until the
 * stream that created it and all its clones are released, or the
 * creating process dies; from then on an open of the name fails with
 * SHM_E_NAME_NOT_FOUND, while streams opened before keep working on the
 * same bytes until they are released. A killed creator's name is removed
 * by the next process of the same user that creates a stream.
 *
 * Regions are owner-only: mode 0600 on POSIX, a DACL that grants access to
 * the creating user only on Windows. Names: at most SHM_MAX_NAME bytes of
 * [A-Za-z0-9_.-], the first a letter, digit or '_'.
 */

/*
 * Creates a stream of capacity `max_size` bytes (its size is 0) under
 * `name`, or under a new unguessable name when `name` is NULL (Stat
 * reports it). On success *ppstm holds the stream with one reference.
 *   E_INVALIDARG          ppstm NULL; a malformed name; max_size 0, or so
 *                         large that the region could not be addressed
 *   STG_E_INVALIDFLAG     flags is not 0 (no flags are defined yet)
 *   SHM_E_NAME_EXISTS     a live region of that name exists
 *   E_OUTOFMEMORY         no memory, or the OS refused a region that size
 *   other                 an OS failure, mapped as in platform.h
 * On failure *ppstm (if ppstm is not NULL) is NULL and no name is left.
 */
SHMCOM_API HRESULT ShmCreateStreamOnSharedMemory(const char *name, ULONGLONG max_size, DWORD flags,
                                                 IStream **ppstm);

/*
 * Opens the stream that another stream object (in any process of the same
 * user) created under `name`; the new object's seek pointer is at 0.
 *   E_INVALIDARG          ppstm NULL; name NULL or malformed
 *   STG_E_INVALIDFLAG     flags is not 0
 *   SHM_E_NAME_NOT_FOUND  no such name, or its creator has released it or
 *                         died (see the name lifetime above)
 *   STG_E_INVALIDHEADER   the region is not a shmcom stream, or its header
 *                         is inconsistent (corrupt)
 *   E_ACCESSDENIED        the region belongs to another user or is not
 *                         owner-only
 *   E_OUTOFMEMORY, other  as for create
 * On failure *ppstm (if ppstm is not NULL) is NULL.
 */
SHMCOM_API HRESULT ShmOpenStreamOnSharedMemory(const char *name, DWORD flags, IStream **ppstm);

/*
 * The bytes of a shared-memory stream, in place: *data points at the
 * stream's byte 0 in this process's mapping and *capacity (if capacity is
 * not NULL) is the stream's capacity, the max_size it was created with.
 * Every byte of [*data, *data + *capacity) stays addressable while
 * `stream` (or a clone of it) holds a reference, whatever the stream's
 * size, so a reader may use pointer-free data where it lies instead of
 * copying it out with Read: the X server's shared-image pattern.
 *
 * The bytes are shared: another process may change them at any moment.
 * Copy what steers the reader (headers, lengths, offsets) into locals
 * and check it before use, as with any shared memory. The size is not
 * returned: it can change at once; use IStream_Stat or Seek when it
 * matters. This is shmcom's counterpart of GetHGlobalFromStream.
 *   E_INVALIDARG   stream or data NULL; stream is not a shared-memory
 *                  stream of shmcom (for example a stream of
 *                  ShmCoMarshalInterThreadInterfaceInStream, or another
 *                  implementation of IStream)
 * On failure *data (if data is not NULL) is NULL and *capacity (if not
 * NULL) is 0.
 */
SHMCOM_API HRESULT ShmGetStreamMemory(IStream *stream, void **data, ULONGLONG *capacity);

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
