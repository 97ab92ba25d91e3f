/*
 * test_comtypes.c - the COM base types have the Windows x64 layout and the
 * COM constants their Windows values. The expected numbers below are facts
 * of the Windows ABI (winerror.h, objidl.h, wtypes.h); in the mingw build
 * the same checks run against the system's own headers.
 */
#define COBJMACROS
#include "tsupport.h"

#include <stddef.h>

#define check_size(type, n)       assert_int_equal(sizeof(type), n)
#define check_off(type, field, n) assert_int_equal(offsetof(type, field), n)
#define check_val(name, v)        assert_int_equal((unsigned long long)(unsigned)(name), v##ull)

static void integer_types(void **state)
{
    (void)state;
    check_size(BYTE, 1);
    check_size(boolean, 1);
    check_size(SHORT, 2);
    check_size(USHORT, 2);
    check_size(WCHAR, 2);
    check_size(OLECHAR, 2);
    check_size(INT, 4);
    check_size(UINT, 4);
    check_size(LONG, 4);
    check_size(ULONG, 4);
    check_size(DWORD, 4);
    check_size(BOOL, 4);
    check_size(HRESULT, 4);
    check_size(LONGLONG, 8);
    check_size(ULONGLONG, 8);
    check_size(hyper, 8);
    check_size(SIZE_T, 8);
    check_size(void *, 8);
    /* signedness */
    assert_true((LONG)-1 < 0);
    assert_true((ULONG)-1 > 0);
    assert_true((DWORD)-1 > 0);
    assert_true((HRESULT)0x80000000u < 0);
    assert_true((LONGLONG)-1 < 0);
    assert_true((ULONGLONG)-1 > 0);
    assert_int_equal(INFINITE, 0xFFFFFFFFu);
}

static void struct_layouts(void **state)
{
    (void)state;
    check_size(GUID, 16);
    check_off(GUID, Data1, 0);
    check_off(GUID, Data2, 4);
    check_off(GUID, Data3, 6);
    check_off(GUID, Data4, 8);
    assert_int_equal(_Alignof(GUID), 4);

    check_size(LARGE_INTEGER, 8);
    check_size(ULARGE_INTEGER, 8);
    assert_int_equal(_Alignof(LARGE_INTEGER), 8);
    check_off(LARGE_INTEGER, u.LowPart, 0);
    check_off(LARGE_INTEGER, u.HighPart, 4);
    check_off(ULARGE_INTEGER, u.HighPart, 4);

    check_size(FILETIME, 8);
    assert_int_equal(_Alignof(FILETIME), 4);

    check_size(STATSTG, 80);
    check_off(STATSTG, pwcsName, 0);
    check_off(STATSTG, type, 8);
    check_off(STATSTG, cbSize, 16);
    check_off(STATSTG, mtime, 24);
    check_off(STATSTG, ctime, 32);
    check_off(STATSTG, atime, 40);
    check_off(STATSTG, grfMode, 48);
    check_off(STATSTG, grfLocksSupported, 52);
    check_off(STATSTG, clsid, 56);
    check_off(STATSTG, grfStateBits, 72);
    check_off(STATSTG, reserved, 76);
}

static void vtable_layouts(void **state)
{
    (void)state;
    check_size(IUnknown, 8);
    check_size(IUnknownVtbl, 24);
    check_off(IUnknownVtbl, QueryInterface, 0);
    check_off(IUnknownVtbl, AddRef, 8);
    check_off(IUnknownVtbl, Release, 16);

    check_size(ISequentialStreamVtbl, 40);
    check_off(ISequentialStreamVtbl, Read, 24);
    check_off(ISequentialStreamVtbl, Write, 32);

    check_size(IStreamVtbl, 112);
    check_off(IStreamVtbl, QueryInterface, 0);
    check_off(IStreamVtbl, Read, 24);
    check_off(IStreamVtbl, Write, 32);
    check_off(IStreamVtbl, Seek, 40);
    check_off(IStreamVtbl, SetSize, 48);
    check_off(IStreamVtbl, CopyTo, 56);
    check_off(IStreamVtbl, Commit, 64);
    check_off(IStreamVtbl, Revert, 72);
    check_off(IStreamVtbl, LockRegion, 80);
    check_off(IStreamVtbl, UnlockRegion, 88);
    check_off(IStreamVtbl, Stat, 96);
    check_off(IStreamVtbl, Clone, 104);
}

static void hresult_values(void **state)
{
    (void)state;
    check_val(S_OK, 0x00000000);
    check_val(S_FALSE, 0x00000001);
    check_val(E_UNEXPECTED, 0x8000FFFF);
    check_val(E_NOTIMPL, 0x80004001);
    check_val(E_NOINTERFACE, 0x80004002);
    check_val(E_POINTER, 0x80004003);
    check_val(E_ABORT, 0x80004004);
    check_val(E_FAIL, 0x80004005);
    check_val(E_ACCESSDENIED, 0x80070005);
    check_val(E_HANDLE, 0x80070006);
    check_val(E_OUTOFMEMORY, 0x8007000E);
    check_val(E_INVALIDARG, 0x80070057);
    check_val(E_PENDING, 0x8000000A);

    check_val(STG_E_INVALIDFUNCTION, 0x80030001);
    check_val(STG_E_FILENOTFOUND, 0x80030002);
    check_val(STG_E_ACCESSDENIED, 0x80030005);
    check_val(STG_E_INSUFFICIENTMEMORY, 0x80030008);
    check_val(STG_E_INVALIDPOINTER, 0x80030009);
    check_val(STG_E_SEEKERROR, 0x80030019);
    check_val(STG_E_WRITEFAULT, 0x8003001D);
    check_val(STG_E_READFAULT, 0x8003001E);
    check_val(STG_E_LOCKVIOLATION, 0x80030021);
    check_val(STG_E_INVALIDPARAMETER, 0x80030057);
    check_val(STG_E_MEDIUMFULL, 0x80030070);
    check_val(STG_E_INVALIDHEADER, 0x800300FB);
    check_val(STG_E_INVALIDNAME, 0x800300FC);
    check_val(STG_E_INVALIDFLAG, 0x800300FF);
    check_val(STG_E_REVERTED, 0x80030102);

    check_val(RPC_E_CALL_REJECTED, 0x80010001);
    check_val(RPC_E_SERVER_DIED, 0x80010007);
    check_val(RPC_E_CLIENT_DIED, 0x80010008);
    check_val(RPC_E_INVALID_DATAPACKET, 0x80010009);
    check_val(RPC_E_INVALID_DATA, 0x8001000F);
    check_val(RPC_E_INVALID_PARAMETER, 0x80010010);
    check_val(RPC_E_SERVER_DIED_DNE, 0x80010012);
    check_val(RPC_E_SYS_CALL_FAILED, 0x80010100);
    check_val(RPC_E_OUT_OF_RESOURCES, 0x80010101);
    check_val(RPC_E_CHANGED_MODE, 0x80010106);
    check_val(RPC_E_INVALIDMETHOD, 0x80010107);
    check_val(RPC_E_DISCONNECTED, 0x80010108);
    check_val(RPC_E_WRONG_THREAD, 0x8001010E);
    check_val(RPC_E_INVALID_HEADER, 0x80010111);
    check_val(RPC_E_INVALID_IPID, 0x80010113);
    check_val(RPC_E_INVALID_OBJREF, 0x8001011D);
    check_val(RPC_E_TIMEOUT, 0x8001011F);
    check_val(RPC_E_UNEXPECTED, 0x8001FFFF);

    check_val(CO_E_NOTINITIALIZED, 0x800401F0);
    check_val(CO_E_ALREADYINITIALIZED, 0x800401F1);
    check_val(CO_E_IIDSTRING, 0x800401F4);
    check_val(CO_E_OBJNOTREG, 0x800401FB);
    check_val(CO_E_OBJNOTCONNECTED, 0x800401FD);
    check_val(CO_E_RELEASED, 0x800401FF);
    check_val(CO_E_NOT_SUPPORTED, 0x80004021);

    check_val(HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND), 0x80070002);
    check_val(HRESULT_FROM_WIN32(ERROR_ALREADY_EXISTS), 0x800700B7);
    check_val(HRESULT_FROM_WIN32(0), 0);
    check_val(MAKE_HRESULT(SEVERITY_ERROR, FACILITY_RPC, 0x10F), 0x8001010F);
    assert_int_equal(HRESULT_CODE(RPC_E_TIMEOUT), 0x11F);
    assert_int_equal(HRESULT_FACILITY(E_INVALIDARG), FACILITY_WIN32);
    assert_true(SUCCEEDED(S_FALSE));
    assert_true(FAILED(E_FAIL));
    assert_false(FAILED(S_OK));
    /* IS_ERROR and HRESULT_SEVERITY look at bit 31 alone, whatever the
     * width of long (64 bits on Linux) */
    assert_true(IS_ERROR(E_FAIL));
    assert_true(IS_ERROR(RPC_E_SERVER_DIED));
    assert_false(IS_ERROR(S_OK));
    assert_false(IS_ERROR(S_FALSE));
    assert_false(IS_ERROR(0x7FFFFFFF));
    assert_int_equal(HRESULT_SEVERITY(E_FAIL), SEVERITY_ERROR);
    assert_int_equal(HRESULT_SEVERITY(S_FALSE), SEVERITY_SUCCESS);
}

static void enum_values(void **state)
{
    (void)state;
    check_val(MSHLFLAGS_NORMAL, 0);
    check_val(MSHLFLAGS_TABLESTRONG, 1);
    check_val(MSHLFLAGS_TABLEWEAK, 2);
    check_val(MSHLFLAGS_NOPING, 4);
    check_val(MSHCTX_LOCAL, 0);
    check_val(MSHCTX_NOSHAREDMEM, 1);
    check_val(MSHCTX_DIFFERENTMACHINE, 2);
    check_val(MSHCTX_INPROC, 3);
    check_val(MSHCTX_CROSSCTX, 4);
    check_val(COINIT_MULTITHREADED, 0);
    check_val(COINIT_APARTMENTTHREADED, 2);
    check_val(COINIT_DISABLE_OLE1DDE, 4);
    check_val(COINIT_SPEED_OVER_MEMORY, 8);
    check_val(STREAM_SEEK_SET, 0);
    check_val(STREAM_SEEK_CUR, 1);
    check_val(STREAM_SEEK_END, 2);
    check_val(STATFLAG_DEFAULT, 0);
    check_val(STATFLAG_NONAME, 1);
    check_val(STATFLAG_NOOPEN, 2);
    check_val(STGTY_STORAGE, 1);
    check_val(STGTY_STREAM, 2);
    check_val(STGTY_LOCKBYTES, 3);
    check_val(STGTY_PROPERTY, 4);
    check_val(LOCK_WRITE, 1);
    check_val(LOCK_EXCLUSIVE, 2);
    check_val(LOCK_ONLYONCE, 4);
    check_val(STGC_DEFAULT, 0);
    check_val(STGM_READWRITE, 2);
}

static void iid_values(void **state)
{
    (void)state;
    static const GUID unk = {0, 0, 0, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
    static const GUID seq = {
        0x0c733a30, 0x2a1c, 0x11ce, {0xad, 0xe5, 0x00, 0xaa, 0x00, 0x44, 0x77, 0x3d}};
    static const GUID stm = {0x0000000c, 0, 0, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
    static const GUID zero;
    assert_true(IsEqualGUID(&IID_IUnknown, &unk));
    assert_true(IsEqualGUID(&IID_ISequentialStream, &seq));
    assert_true(IsEqualGUID(&IID_IStream, &stm));
    assert_true(IsEqualGUID(&GUID_NULL, &zero));
    assert_false(IsEqualIID(&IID_IUnknown, &IID_IStream));
    /* Data1..3 are stored little-endian, as on Windows (x86-64). */
    const unsigned char *b = (const unsigned char *)&IID_IStream;
    assert_int_equal(b[0], 0x0c);
    assert_int_equal(b[8], 0xC0);
    assert_int_equal(b[15], 0x46);
}

/* A minimal object written against the COM declarations: the macros
 * dispatch through the vtable slots declared above. */
typedef struct counter {
    IUnknown IUnknown_iface;
    ULONG refs;
} counter;

static HRESULT STDMETHODCALLTYPE counter_qi(IUnknown *iface, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown)) {
        *ppv = iface;
        IUnknown_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE counter_addref(IUnknown *iface)
{
    return ++((counter *)iface)->refs;
}

static ULONG STDMETHODCALLTYPE counter_release(IUnknown *iface)
{
    return --((counter *)iface)->refs;
}

static const IUnknownVtbl counter_vtbl = {counter_qi, counter_addref, counter_release};

static void object_macros(void **state)
{
    (void)state;
    counter c = {{&counter_vtbl}, 1};
    void *p = (void *)1;
    assert_hr(IUnknown_QueryInterface(&c.IUnknown_iface, &IID_IUnknown, &p), S_OK);
    assert_ptr_equal(p, &c.IUnknown_iface);
    assert_int_equal(c.refs, 2);
    assert_hr(IUnknown_QueryInterface(&c.IUnknown_iface, &IID_IStream, &p), E_NOINTERFACE);
    assert_null(p);
    assert_int_equal(IUnknown_Release(&c.IUnknown_iface), 1);
}

static void hresult_names(void **state)
{
    (void)state;
    assert_string_equal(ShmHresultName(S_OK), "S_OK");
    assert_string_equal(ShmHresultName(RPC_E_SERVER_DIED), "RPC_E_SERVER_DIED");
    assert_string_equal(ShmHresultName(E_INVALIDARG), "E_INVALIDARG");
    assert_string_equal(ShmHresultName(SHM_E_NAME_EXISTS), "SHM_E_NAME_EXISTS");
    assert_string_equal(ShmHresultName(STG_E_MEDIUMFULL), "STG_E_MEDIUMFULL");
    assert_null(ShmHresultName((HRESULT)0x8BADF00Du));
}

static void shmcom_values(void **state)
{
    (void)state;
    check_val(SHM_E_NAME_NOT_FOUND, 0x80070002);
    check_val(SHM_E_NAME_EXISTS, 0x800700B7);
    HRESULT e = SHM_HRESULT_FROM_ERRNO(11);
    assert_true(FAILED(e));
    assert_true(SHM_HRESULT_IS_ERRNO(e));
    assert_int_equal(HRESULT_CODE(e), 11);
    assert_false(SHM_HRESULT_IS_ERRNO(E_FAIL));
    /* all three region errors are distinct */
    assert_true(SHM_E_NAME_NOT_FOUND != SHM_E_NAME_EXISTS);
    assert_true(SHM_E_NAME_NOT_FOUND != E_INVALIDARG);
    assert_true(SHM_E_NAME_EXISTS != E_INVALIDARG);
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(integer_types),  cmocka_unit_test(struct_layouts),
        cmocka_unit_test(vtable_layouts), cmocka_unit_test(hresult_values),
        cmocka_unit_test(enum_values),    cmocka_unit_test(iid_values),
        cmocka_unit_test(object_macros),  cmocka_unit_test(hresult_names),
        cmocka_unit_test(shmcom_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
