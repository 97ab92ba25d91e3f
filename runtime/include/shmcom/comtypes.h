/*
 * shmcom/comtypes.h - the COM base types, constants and interfaces.
 *
 * On Windows this is the system's own <objbase.h>: shmcom adds nothing to
 * the COM names there. On POSIX it supplies the same names with the layout
 * and numeric values of the Windows x64 ABI, so that code written against
 * the Windows headers compiles unchanged and a vtable built by one side is
 * the vtable the other side expects:
 *
 *  - LONG/ULONG/DWORD/HRESULT are 32-bit; LONGLONG/ULONGLONG are 64-bit;
 *  - WCHAR/OLECHAR are 16-bit (UTF-16), as on Windows, not wchar_t;
 *  - GUID stores Data1..Data3 in native (little-endian) byte order;
 *  - STDMETHODCALLTYPE is empty (x64 has one calling convention).
 *
 * Interface method macros (IStream_Read(This, ...)) are defined only when
 * COBJMACROS is defined before this header, as with the Windows headers.
 */
#ifndef SHMCOM_COMTYPES_H
#define SHMCOM_COMTYPES_H

#if defined(_WIN32)

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <objbase.h>

#else /* POSIX */

#include "shmcom/export.h"
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- integer names used by MIDL headers ------------------------------- */

typedef unsigned char BYTE;
typedef short SHORT;
typedef unsigned short USHORT;
typedef unsigned short WORD;
typedef int INT;
typedef unsigned int UINT;
typedef int LONG;           /* 32-bit, as on Windows (LLP64) */
typedef unsigned int ULONG; /* 32-bit, as on Windows (LLP64) */
typedef unsigned int DWORD;
typedef int BOOL;
typedef long long LONGLONG;
typedef unsigned long long ULONGLONG;
typedef unsigned long long DWORDLONG;
typedef size_t SIZE_T;
typedef ptrdiff_t SSIZE_T;
typedef uintptr_t ULONG_PTR;
typedef intptr_t LONG_PTR;
typedef unsigned char boolean;
typedef char CHAR;
typedef unsigned char UCHAR;
typedef float FLOAT;
typedef double DOUBLE;
typedef void VOID;
typedef void *PVOID;
typedef void *LPVOID;
typedef const void *LPCVOID;
typedef uint16_t WCHAR; /* UTF-16 code unit, as on Windows */
typedef WCHAR OLECHAR;
typedef OLECHAR *LPOLESTR;
typedef const OLECHAR *LPCOLESTR;
typedef LONG HRESULT;
typedef LONG SCODE;

#ifndef __int64
#define __int64 long long
#endif
#ifndef hyper
#define hyper long long
#endif
typedef unsigned long long MIDL_uhyper;
typedef signed char small;

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
#define INFINITE 0xFFFFFFFFu

typedef union _LARGE_INTEGER {
    struct {
        DWORD LowPart;
        LONG HighPart;
    } u;
    LONGLONG QuadPart;
} LARGE_INTEGER;

typedef union _ULARGE_INTEGER {
    struct {
        DWORD LowPart;
        DWORD HighPart;
    } u;
    ULONGLONG QuadPart;
} ULARGE_INTEGER;

typedef struct _FILETIME {
    DWORD dwLowDateTime;
    DWORD dwHighDateTime;
} FILETIME;

/* ---- GUIDs ------------------------------------------------------------ */

typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;

typedef GUID IID;
typedef GUID CLSID;
typedef IID *LPIID;
typedef CLSID *LPCLSID;

#ifdef __cplusplus
#define REFGUID           const GUID &
#define REFIID            const IID &
#define REFCLSID          const CLSID &
#define IsEqualGUID(a, b) (!memcmp(&(a), &(b), sizeof(GUID)))
#else
#define REFGUID           const GUID *
#define REFIID            const IID *
#define REFCLSID          const CLSID *
#define IsEqualGUID(a, b) (!memcmp((a), (b), sizeof(GUID)))
#endif
#define IsEqualIID(a, b)   IsEqualGUID(a, b)
#define IsEqualCLSID(a, b) IsEqualGUID(a, b)

/* DEFINE_GUID declares a GUID; with INITGUID defined it also defines it. */
#ifdef __cplusplus
#define SHMCOM_EXTERN_C_ extern "C"
#else
#define SHMCOM_EXTERN_C_ extern
#endif
#ifdef INITGUID
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    SHMCOM_EXTERN_C_ const GUID name;                                \
    SHMCOM_EXTERN_C_ const GUID name = {l, w1, w2, {b1, b2, b3, b4, b5, b6, b7, b8}}
#else
#define DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8) \
    SHMCOM_EXTERN_C_ const GUID name
#endif

/* ---- HRESULT ---------------------------------------------------------- */

#define SUCCEEDED(hr)        (((HRESULT)(hr)) >= 0)
#define FAILED(hr)           (((HRESULT)(hr)) < 0)
#define IS_ERROR(hr)         ((uint32_t)(hr) >> 31 == 1)
#define HRESULT_CODE(hr)     ((hr)&0xFFFF)
#define HRESULT_FACILITY(hr) (((hr) >> 16) & 0x1FFF)
#define HRESULT_SEVERITY(hr) (((hr) >> 31) & 0x1)
#define SEVERITY_SUCCESS     0
#define SEVERITY_ERROR       1
#define MAKE_HRESULT(sev, fac, code) \
    ((HRESULT)(((unsigned int)(sev) << 31) | ((unsigned int)(fac) << 16) | ((unsigned int)(code))))
#define FACILITY_NULL     0
#define FACILITY_RPC      1
#define FACILITY_DISPATCH 2
#define FACILITY_STORAGE  3
#define FACILITY_ITF      4
#define FACILITY_WIN32    7
#define FACILITY_WINDOWS  8
#define HRESULT_FROM_WIN32(x)           \
    ((HRESULT)(x) <= 0 ? ((HRESULT)(x)) \
                       : ((HRESULT)(((x)&0x0000FFFF) | (FACILITY_WIN32 << 16) | 0x80000000)))

/* Win32 error codes that shmcom reports through HRESULT_FROM_WIN32. */
#define ERROR_SUCCESS              0L
#define ERROR_FILE_NOT_FOUND       2L
#define ERROR_PATH_NOT_FOUND       3L
#define ERROR_TOO_MANY_OPEN_FILES  4L
#define ERROR_ACCESS_DENIED        5L
#define ERROR_INVALID_HANDLE       6L
#define ERROR_NOT_ENOUGH_MEMORY    8L
#define ERROR_OUTOFMEMORY          14L
#define ERROR_NOT_SUPPORTED        50L
#define ERROR_FILE_EXISTS          80L
#define ERROR_INVALID_PARAMETER    87L
#define ERROR_BROKEN_PIPE          109L
#define ERROR_DISK_FULL            112L
#define ERROR_INSUFFICIENT_BUFFER  122L
#define ERROR_INVALID_NAME         123L
#define ERROR_BUSY                 170L
#define ERROR_ALREADY_EXISTS       183L
#define ERROR_FILENAME_EXCED_RANGE 206L
#define ERROR_NO_MORE_ITEMS        259L
#define ERROR_TIMEOUT              1460L

#define S_OK    ((HRESULT)0x00000000)
#define S_FALSE ((HRESULT)0x00000001)
#define NOERROR S_OK

#define E_UNEXPECTED            ((HRESULT)0x8000FFFF)
#define E_NOTIMPL               ((HRESULT)0x80004001)
#define E_NOINTERFACE           ((HRESULT)0x80004002)
#define E_POINTER               ((HRESULT)0x80004003)
#define E_ABORT                 ((HRESULT)0x80004004)
#define E_FAIL                  ((HRESULT)0x80004005)
#define E_PENDING               ((HRESULT)0x8000000A)
#define E_ACCESSDENIED          ((HRESULT)0x80070005)
#define E_HANDLE                ((HRESULT)0x80070006)
#define E_OUTOFMEMORY           ((HRESULT)0x8007000E)
#define E_INVALIDARG            ((HRESULT)0x80070057)
#define E_NOT_SUFFICIENT_BUFFER ((HRESULT)0x8007007A)

#define CO_E_INIT_TLS                       ((HRESULT)0x80004006)
#define CO_E_INIT_SHARED_ALLOCATOR          ((HRESULT)0x80004007)
#define CO_E_INIT_MEMORY_ALLOCATOR          ((HRESULT)0x80004008)
#define CO_E_INIT_CLASS_CACHE               ((HRESULT)0x80004009)
#define CO_E_INIT_RPC_CHANNEL               ((HRESULT)0x8000400A)
#define CO_E_INIT_TLS_SET_CHANNEL_CONTROL   ((HRESULT)0x8000400B)
#define CO_E_INIT_TLS_CHANNEL_CONTROL       ((HRESULT)0x8000400C)
#define CO_E_INIT_UNACCEPTED_USER_ALLOCATOR ((HRESULT)0x8000400D)
#define CO_E_INIT_SCM_MUTEX_EXISTS          ((HRESULT)0x8000400E)
#define CO_E_INIT_SCM_FILE_MAPPING_EXISTS   ((HRESULT)0x8000400F)
#define CO_E_INIT_SCM_MAP_VIEW_OF_FILE      ((HRESULT)0x80004010)
#define CO_E_INIT_SCM_EXEC_FAILURE          ((HRESULT)0x80004011)
#define CO_E_INIT_ONLY_SINGLE_THREADED      ((HRESULT)0x80004012)
#define CO_E_CANT_REMOTE                    ((HRESULT)0x80004013)
#define CO_E_BAD_SERVER_NAME                ((HRESULT)0x80004014)
#define CO_E_WRONG_SERVER_IDENTITY          ((HRESULT)0x80004015)
#define CO_E_OLE1DDE_DISABLED               ((HRESULT)0x80004016)
#define CO_E_RUNAS_SYNTAX                   ((HRESULT)0x80004017)
#define CO_E_CREATEPROCESS_FAILURE          ((HRESULT)0x80004018)
#define CO_E_RUNAS_CREATEPROCESS_FAILURE    ((HRESULT)0x80004019)
#define CO_E_RUNAS_LOGON_FAILURE            ((HRESULT)0x8000401A)
#define CO_E_LAUNCH_PERMSSION_DENIED        ((HRESULT)0x8000401B)
#define CO_E_START_SERVICE_FAILURE          ((HRESULT)0x8000401C)
#define CO_E_REMOTE_COMMUNICATION_FAILURE   ((HRESULT)0x8000401D)
#define CO_E_SERVER_START_TIMEOUT           ((HRESULT)0x8000401E)
#define CO_E_CLSREG_INCONSISTENT            ((HRESULT)0x8000401F)
#define CO_E_IIDREG_INCONSISTENT            ((HRESULT)0x80004020)
#define CO_E_NOT_SUPPORTED                  ((HRESULT)0x80004021)
#define CO_E_RELOAD_DLL                     ((HRESULT)0x80004022)
#define CO_E_MSI_ERROR                      ((HRESULT)0x80004023)
#define REGDB_E_CLASSNOTREG                 ((HRESULT)0x80040154)
#define REGDB_E_IIDNOTREG                   ((HRESULT)0x80040155)
#define CO_E_FIRST                          ((HRESULT)0x800401F0)
#define CO_E_LAST                           ((HRESULT)0x800401FF)
#define CO_E_NOTINITIALIZED                 ((HRESULT)0x800401F0)
#define CO_E_ALREADYINITIALIZED             ((HRESULT)0x800401F1)
#define CO_E_CANTDETERMINECLASS             ((HRESULT)0x800401F2)
#define CO_E_CLASSSTRING                    ((HRESULT)0x800401F3)
#define CO_E_IIDSTRING                      ((HRESULT)0x800401F4)
#define CO_E_APPNOTFOUND                    ((HRESULT)0x800401F5)
#define CO_E_APPSINGLEUSE                   ((HRESULT)0x800401F6)
#define CO_E_ERRORINAPP                     ((HRESULT)0x800401F7)
#define CO_E_DLLNOTFOUND                    ((HRESULT)0x800401F8)
#define CO_E_ERRORINDLL                     ((HRESULT)0x800401F9)
#define CO_E_WRONGOSFORAPP                  ((HRESULT)0x800401FA)
#define CO_E_OBJNOTREG                      ((HRESULT)0x800401FB)
#define CO_E_OBJISREG                       ((HRESULT)0x800401FC)
#define CO_E_OBJNOTCONNECTED                ((HRESULT)0x800401FD)
#define CO_E_APPDIDNTREG                    ((HRESULT)0x800401FE)
#define CO_E_RELEASED                       ((HRESULT)0x800401FF)

#define STG_E_INVALIDFUNCTION       ((HRESULT)0x80030001)
#define STG_E_FILENOTFOUND          ((HRESULT)0x80030002)
#define STG_E_PATHNOTFOUND          ((HRESULT)0x80030003)
#define STG_E_TOOMANYOPENFILES      ((HRESULT)0x80030004)
#define STG_E_ACCESSDENIED          ((HRESULT)0x80030005)
#define STG_E_INVALIDHANDLE         ((HRESULT)0x80030006)
#define STG_E_INSUFFICIENTMEMORY    ((HRESULT)0x80030008)
#define STG_E_INVALIDPOINTER        ((HRESULT)0x80030009)
#define STG_E_NOMOREFILES           ((HRESULT)0x80030012)
#define STG_E_DISKISWRITEPROTECTED  ((HRESULT)0x80030013)
#define STG_E_SEEKERROR             ((HRESULT)0x80030019)
#define STG_E_WRITEFAULT            ((HRESULT)0x8003001D)
#define STG_E_READFAULT             ((HRESULT)0x8003001E)
#define STG_E_SHAREVIOLATION        ((HRESULT)0x80030020)
#define STG_E_LOCKVIOLATION         ((HRESULT)0x80030021)
#define STG_E_FILEALREADYEXISTS     ((HRESULT)0x80030050)
#define STG_E_INVALIDPARAMETER      ((HRESULT)0x80030057)
#define STG_E_MEDIUMFULL            ((HRESULT)0x80030070)
#define STG_E_PROPSETMISMATCHED     ((HRESULT)0x800300F0)
#define STG_E_ABNORMALAPIEXIT       ((HRESULT)0x800300FA)
#define STG_E_INVALIDHEADER         ((HRESULT)0x800300FB)
#define STG_E_INVALIDNAME           ((HRESULT)0x800300FC)
#define STG_E_UNKNOWN               ((HRESULT)0x800300FD)
#define STG_E_UNIMPLEMENTEDFUNCTION ((HRESULT)0x800300FE)
#define STG_E_INVALIDFLAG           ((HRESULT)0x800300FF)
#define STG_E_INUSE                 ((HRESULT)0x80030100)
#define STG_E_NOTCURRENT            ((HRESULT)0x80030101)
#define STG_E_REVERTED              ((HRESULT)0x80030102)
#define STG_E_CANTSAVE              ((HRESULT)0x80030103)
#define STG_E_OLDFORMAT             ((HRESULT)0x80030104)
#define STG_E_OLDDLL                ((HRESULT)0x80030105)
#define STG_E_SHAREREQUIRED         ((HRESULT)0x80030106)
#define STG_E_NOTFILEBASEDSTORAGE   ((HRESULT)0x80030107)
#define STG_E_EXTANTMARSHALLINGS    ((HRESULT)0x80030108)
#define STG_S_CONVERTED             ((HRESULT)0x00030200)

#define RPC_E_CALL_REJECTED               ((HRESULT)0x80010001)
#define RPC_E_CALL_CANCELED               ((HRESULT)0x80010002)
#define RPC_E_CANTPOST_INSENDCALL         ((HRESULT)0x80010003)
#define RPC_E_CANTCALLOUT_INASYNCCALL     ((HRESULT)0x80010004)
#define RPC_E_CANTCALLOUT_INEXTERNALCALL  ((HRESULT)0x80010005)
#define RPC_E_CONNECTION_TERMINATED       ((HRESULT)0x80010006)
#define RPC_E_SERVER_DIED                 ((HRESULT)0x80010007)
#define RPC_E_CLIENT_DIED                 ((HRESULT)0x80010008)
#define RPC_E_INVALID_DATAPACKET          ((HRESULT)0x80010009)
#define RPC_E_CANTTRANSMIT_CALL           ((HRESULT)0x8001000A)
#define RPC_E_CLIENT_CANTMARSHAL_DATA     ((HRESULT)0x8001000B)
#define RPC_E_CLIENT_CANTUNMARSHAL_DATA   ((HRESULT)0x8001000C)
#define RPC_E_SERVER_CANTMARSHAL_DATA     ((HRESULT)0x8001000D)
#define RPC_E_SERVER_CANTUNMARSHAL_DATA   ((HRESULT)0x8001000E)
#define RPC_E_INVALID_DATA                ((HRESULT)0x8001000F)
#define RPC_E_INVALID_PARAMETER           ((HRESULT)0x80010010)
#define RPC_E_CANTCALLOUT_AGAIN           ((HRESULT)0x80010011)
#define RPC_E_SERVER_DIED_DNE             ((HRESULT)0x80010012)
#define RPC_E_SYS_CALL_FAILED             ((HRESULT)0x80010100)
#define RPC_E_OUT_OF_RESOURCES            ((HRESULT)0x80010101)
#define RPC_E_ATTEMPTED_MULTITHREAD       ((HRESULT)0x80010102)
#define RPC_E_NOT_REGISTERED              ((HRESULT)0x80010103)
#define RPC_E_FAULT                       ((HRESULT)0x80010104)
#define RPC_E_SERVERFAULT                 ((HRESULT)0x80010105)
#define RPC_E_CHANGED_MODE                ((HRESULT)0x80010106)
#define RPC_E_INVALIDMETHOD               ((HRESULT)0x80010107)
#define RPC_E_DISCONNECTED                ((HRESULT)0x80010108)
#define RPC_E_RETRY                       ((HRESULT)0x80010109)
#define RPC_E_SERVERCALL_RETRYLATER       ((HRESULT)0x8001010A)
#define RPC_E_SERVERCALL_REJECTED         ((HRESULT)0x8001010B)
#define RPC_E_INVALID_CALLDATA            ((HRESULT)0x8001010C)
#define RPC_E_CANTCALLOUT_ININPUTSYNCCALL ((HRESULT)0x8001010D)
#define RPC_E_WRONG_THREAD                ((HRESULT)0x8001010E)
#define RPC_E_THREAD_NOT_INIT             ((HRESULT)0x8001010F)
#define RPC_E_VERSION_MISMATCH            ((HRESULT)0x80010110)
#define RPC_E_INVALID_HEADER              ((HRESULT)0x80010111)
#define RPC_E_INVALID_EXTENSION           ((HRESULT)0x80010112)
#define RPC_E_INVALID_IPID                ((HRESULT)0x80010113)
#define RPC_E_INVALID_OBJECT              ((HRESULT)0x80010114)
#define RPC_S_CALLPENDING                 ((HRESULT)0x80010115)
#define RPC_S_WAITONTIMER                 ((HRESULT)0x80010116)
#define RPC_E_CALL_COMPLETE               ((HRESULT)0x80010117)
#define RPC_E_UNSECURE_CALL               ((HRESULT)0x80010118)
#define RPC_E_TOO_LATE                    ((HRESULT)0x80010119)
#define RPC_E_NO_GOOD_SECURITY_PACKAGES   ((HRESULT)0x8001011A)
#define RPC_E_ACCESS_DENIED               ((HRESULT)0x8001011B)
#define RPC_E_REMOTE_DISABLED             ((HRESULT)0x8001011C)
#define RPC_E_INVALID_OBJREF              ((HRESULT)0x8001011D)
#define RPC_E_NO_CONTEXT                  ((HRESULT)0x8001011E)
#define RPC_E_TIMEOUT                     ((HRESULT)0x8001011F)
#define RPC_E_NO_SYNC                     ((HRESULT)0x80010120)
#define RPC_E_FULLSIC_REQUIRED            ((HRESULT)0x80010121)
#define RPC_E_INVALID_STD_NAME            ((HRESULT)0x80010122)
#define RPC_E_UNEXPECTED                  ((HRESULT)0x8001FFFF)

/* ---- enumerations ----------------------------------------------------- */

typedef enum tagMSHLFLAGS {
    MSHLFLAGS_NORMAL = 0,
    MSHLFLAGS_TABLESTRONG = 1,
    MSHLFLAGS_TABLEWEAK = 2,
    MSHLFLAGS_NOPING = 4
} MSHLFLAGS;

typedef enum tagMSHCTX {
    MSHCTX_LOCAL = 0,
    MSHCTX_NOSHAREDMEM = 1,
    MSHCTX_DIFFERENTMACHINE = 2,
    MSHCTX_INPROC = 3,
    MSHCTX_CROSSCTX = 4
} MSHCTX;

typedef enum tagCOINIT {
    COINIT_APARTMENTTHREADED = 0x2,
    COINIT_MULTITHREADED = 0x0,
    COINIT_DISABLE_OLE1DDE = 0x4,
    COINIT_SPEED_OVER_MEMORY = 0x8
} COINIT;

typedef enum tagSTREAM_SEEK {
    STREAM_SEEK_SET = 0,
    STREAM_SEEK_CUR = 1,
    STREAM_SEEK_END = 2
} STREAM_SEEK;

typedef enum tagSTATFLAG {
    STATFLAG_DEFAULT = 0,
    STATFLAG_NONAME = 1,
    STATFLAG_NOOPEN = 2
} STATFLAG;

typedef enum tagSTGTY {
    STGTY_STORAGE = 1,
    STGTY_STREAM = 2,
    STGTY_LOCKBYTES = 3,
    STGTY_PROPERTY = 4
} STGTY;

typedef enum tagLOCKTYPE { LOCK_WRITE = 1, LOCK_EXCLUSIVE = 2, LOCK_ONLYONCE = 4 } LOCKTYPE;

typedef enum tagSTGC {
    STGC_DEFAULT = 0,
    STGC_OVERWRITE = 1,
    STGC_ONLYIFCURRENT = 2,
    STGC_DANGEROUSLYCOMMITMERELYTODISKCACHE = 4,
    STGC_CONSOLIDATE = 8
} STGC;

#define STGM_DIRECT           0x00000000L
#define STGM_TRANSACTED       0x00010000L
#define STGM_SIMPLE           0x08000000L
#define STGM_READ             0x00000000L
#define STGM_WRITE            0x00000001L
#define STGM_READWRITE        0x00000002L
#define STGM_SHARE_DENY_NONE  0x00000040L
#define STGM_SHARE_DENY_READ  0x00000030L
#define STGM_SHARE_DENY_WRITE 0x00000020L
#define STGM_SHARE_EXCLUSIVE  0x00000010L
#define STGM_CREATE           0x00001000L

typedef struct tagSTATSTG {
    LPOLESTR pwcsName;
    DWORD type;
    ULARGE_INTEGER cbSize;
    FILETIME mtime;
    FILETIME ctime;
    FILETIME atime;
    DWORD grfMode;
    DWORD grfLocksSupported;
    CLSID clsid;
    DWORD grfStateBits;
    DWORD reserved;
} STATSTG;

/* ---- interfaces ------------------------------------------------------- */

#define STDMETHODCALLTYPE
#define STDMETHODVCALLTYPE
#define STDAPICALLTYPE
#define WINAPI
#ifdef CONST_VTABLE /* as in the Windows headers: vtables const on request */
#define CONST_VTBL const
#else
#define CONST_VTBL
#endif
#define interface struct

typedef struct IUnknown IUnknown;
typedef struct ISequentialStream ISequentialStream;
typedef struct IStream IStream;
typedef IUnknown *LPUNKNOWN;
typedef IStream *LPSTREAM;

typedef struct IUnknownVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(IUnknown *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(IUnknown *This);
    ULONG(STDMETHODCALLTYPE *Release)(IUnknown *This);
} IUnknownVtbl;

struct IUnknown {
    CONST_VTBL IUnknownVtbl *lpVtbl;
};

typedef struct ISequentialStreamVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)
    (ISequentialStream *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(ISequentialStream *This);
    ULONG(STDMETHODCALLTYPE *Release)(ISequentialStream *This);
    HRESULT(STDMETHODCALLTYPE *Read)(ISequentialStream *This, void *pv, ULONG cb, ULONG *pcbRead);
    HRESULT(STDMETHODCALLTYPE *Write)
    (ISequentialStream *This, const void *pv, ULONG cb, ULONG *pcbWritten);
} ISequentialStreamVtbl;

struct ISequentialStream {
    CONST_VTBL ISequentialStreamVtbl *lpVtbl;
};

typedef struct IStreamVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(IStream *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(IStream *This);
    ULONG(STDMETHODCALLTYPE *Release)(IStream *This);
    HRESULT(STDMETHODCALLTYPE *Read)(IStream *This, void *pv, ULONG cb, ULONG *pcbRead);
    HRESULT(STDMETHODCALLTYPE *Write)(IStream *This, const void *pv, ULONG cb, ULONG *pcbWritten);
    HRESULT(STDMETHODCALLTYPE *Seek)
    (IStream *This, LARGE_INTEGER dlibMove, DWORD dwOrigin, ULARGE_INTEGER *plibNewPosition);
    HRESULT(STDMETHODCALLTYPE *SetSize)(IStream *This, ULARGE_INTEGER libNewSize);
    HRESULT(STDMETHODCALLTYPE *CopyTo)
    (IStream *This, IStream *pstm, ULARGE_INTEGER cb, ULARGE_INTEGER *pcbRead,
     ULARGE_INTEGER *pcbWritten);
    HRESULT(STDMETHODCALLTYPE *Commit)(IStream *This, DWORD grfCommitFlags);
    HRESULT(STDMETHODCALLTYPE *Revert)(IStream *This);
    HRESULT(STDMETHODCALLTYPE *LockRegion)
    (IStream *This, ULARGE_INTEGER libOffset, ULARGE_INTEGER cb, DWORD dwLockType);
    HRESULT(STDMETHODCALLTYPE *UnlockRegion)
    (IStream *This, ULARGE_INTEGER libOffset, ULARGE_INTEGER cb, DWORD dwLockType);
    HRESULT(STDMETHODCALLTYPE *Stat)(IStream *This, STATSTG *pstatstg, DWORD grfStatFlag);
    HRESULT(STDMETHODCALLTYPE *Clone)(IStream *This, IStream **ppstm);
} IStreamVtbl;

struct IStream {
    CONST_VTBL IStreamVtbl *lpVtbl;
};

/* Defined by the shmcom library; on Windows they come from uuid.lib. */
SHMCOM_API extern const GUID GUID_NULL;
#define IID_NULL  GUID_NULL
SHMCOM_API extern const IID IID_IUnknown;
SHMCOM_API extern const IID IID_ISequentialStream;
SHMCOM_API extern const IID IID_IStream;

#ifdef COBJMACROS
#define IUnknown_QueryInterface(This, riid, ppv) (This)->lpVtbl->QueryInterface(This, riid, ppv)
#define IUnknown_AddRef(This)                    (This)->lpVtbl->AddRef(This)
#define IUnknown_Release(This)                   (This)->lpVtbl->Release(This)

#define ISequentialStream_QueryInterface(This, riid, ppv) \
    (This)->lpVtbl->QueryInterface(This, riid, ppv)
#define ISequentialStream_AddRef(This)                (This)->lpVtbl->AddRef(This)
#define ISequentialStream_Release(This)               (This)->lpVtbl->Release(This)
#define ISequentialStream_Read(This, pv, cb, pcbRead) (This)->lpVtbl->Read(This, pv, cb, pcbRead)
#define ISequentialStream_Write(This, pv, cb, pcbWritten) \
    (This)->lpVtbl->Write(This, pv, cb, pcbWritten)

#define IStream_QueryInterface(This, riid, ppv) (This)->lpVtbl->QueryInterface(This, riid, ppv)
#define IStream_AddRef(This)                    (This)->lpVtbl->AddRef(This)
#define IStream_Release(This)                   (This)->lpVtbl->Release(This)
#define IStream_Read(This, pv, cb, pcbRead)     (This)->lpVtbl->Read(This, pv, cb, pcbRead)
#define IStream_Write(This, pv, cb, pcbWritten) (This)->lpVtbl->Write(This, pv, cb, pcbWritten)
#define IStream_Seek(This, dlibMove, dwOrigin, plibNewPosition) \
    (This)->lpVtbl->Seek(This, dlibMove, dwOrigin, plibNewPosition)
#define IStream_SetSize(This, libNewSize) (This)->lpVtbl->SetSize(This, libNewSize)
#define IStream_CopyTo(This, pstm, cb, pcbRead, pcbWritten) \
    (This)->lpVtbl->CopyTo(This, pstm, cb, pcbRead, pcbWritten)
#define IStream_Commit(This, grfCommitFlags) (This)->lpVtbl->Commit(This, grfCommitFlags)
#define IStream_Revert(This)                 (This)->lpVtbl->Revert(This)
#define IStream_LockRegion(This, libOffset, cb, dwLockType) \
    (This)->lpVtbl->LockRegion(This, libOffset, cb, dwLockType)
#define IStream_UnlockRegion(This, libOffset, cb, dwLockType) \
    (This)->lpVtbl->UnlockRegion(This, libOffset, cb, dwLockType)
#define IStream_Stat(This, pstatstg, grfStatFlag) (This)->lpVtbl->Stat(This, pstatstg, grfStatFlag)
#define IStream_Clone(This, ppstm)                (This)->lpVtbl->Clone(This, ppstm)
#endif /* COBJMACROS */

#ifdef __cplusplus
}
#endif

#endif /* POSIX */

#endif /* SHMCOM_COMTYPES_H */
