/*
 * region.c - named shared-memory regions on Windows: a pagefile-backed
 * file mapping named "Local\shmcom-<name>", owner-only DACL.
 *
 * CreateFileMappingW opens an existing mapping of the same name instead of
 * failing (and says so with ERROR_ALREADY_EXISTS); create turns that into
 * SHM_E_NAME_EXISTS and lets go of the other mapping untouched.
 *
 * The name lives as long as some process holds a handle or a view: it
 * cannot outlive its processes, so nothing needs reclaiming after a crash,
 * and unlink has nothing to do.
 *
 * opaque: the mapping HANDLE, kept open for the access check.
 */
#include "win_impl.h"

#include <string.h>

_Static_assert(sizeof(HANDLE) <= sizeof(((shmc_plat_region *)0)->opaque), "opaque");

static void set_handle(shmc_plat_region *r, HANDLE h)
{
    memcpy(r->opaque, &h, sizeof(h));
}

static HANDLE get_handle(const shmc_plat_region *r)
{
    HANDLE h;
    memcpy(&h, r->opaque, sizeof(h));
    return h;
}

static HRESULT map_view(shmc_plat_region *r, HANDLE h, size_t size)
{
    void *p = SHMC_ROUTE("MapViewOfFile", MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, size), NULL);
    if (!p)
        return shmc_win_last_error();
    if (size == 0) {
        /* an opener learns the size from the view (page-rounded, as the
         * creator's) */
        MEMORY_BASIC_INFORMATION mbi;
        if (VirtualQuery(p, &mbi, sizeof(mbi)) != sizeof(mbi)) {
            HRESULT hr = shmc_win_last_error();
            UnmapViewOfFile(p);
            return hr;
        }
        size = mbi.RegionSize;
    }
    r->base = p;
    r->size = size;
    return S_OK;
}

HRESULT shmc_plat_region_create(shmc_plat_region *r, const char *name, size_t size)
{
    WCHAR wname[SHMC_WIN_NAME_MAX];
    SECURITY_ATTRIBUTES *sa;
    HRESULT hr;

    if (!r)
        return E_INVALIDARG;
    memset(r, 0, sizeof(*r));
    hr = shmc_win_object_name(wname, name, NULL);
    if (FAILED(hr))
        return hr;
    size_t rounded = shmc_plat__round_page(size);
    if (size == 0 || rounded == 0)
        return E_INVALIDARG;
    hr = shmc_win_owner_only(&sa);
    if (FAILED(hr))
        return hr;
    unsigned long long sz = rounded;
    HANDLE h = SHMC_ROUTE("CreateFileMappingW",
                          CreateFileMappingW(INVALID_HANDLE_VALUE, sa, PAGE_READWRITE,
                                             (DWORD)(sz >> 32), (DWORD)sz, wname),
                          NULL);
    if (!h)
        return shmc_win_last_error();
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        CloseHandle(h);
        return SHM_E_NAME_EXISTS;
    }
    hr = map_view(r, h, rounded);
    if (FAILED(hr)) {
        CloseHandle(h);
        memset(r, 0, sizeof(*r));
        return hr;
    }
    set_handle(r, h);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;
}

HRESULT shmc_plat_region_create_init(shmc_plat_region *r, const char *name, size_t size,
                                     shmc_plat_region_init_fn init, void *ctx)
{
    /* A file mapping gets its name when it is created: openers may see the
     * zero-filled view before init has run (see platform.h). */
    HRESULT hr = shmc_plat_region_create(r, name, size);
    if (SUCCEEDED(hr) && init)
        init(r->base, r->size, ctx);
    return hr;
}

HRESULT shmc_plat_region_open(shmc_plat_region *r, const char *name)
{
    WCHAR wname[SHMC_WIN_NAME_MAX];
    if (!r)
        return E_INVALIDARG;
    memset(r, 0, sizeof(*r));
    HRESULT hr = shmc_win_object_name(wname, name, NULL);
    if (FAILED(hr))
        return hr;
    HANDLE h =
        SHMC_ROUTE("OpenFileMappingW", OpenFileMappingW(FILE_MAP_ALL_ACCESS, FALSE, wname), NULL);
    if (!h)
        return shmc_win_last_error(); /* ERROR_FILE_NOT_FOUND -> SHM_E_NAME_NOT_FOUND */
    hr = map_view(r, h, 0);
    if (FAILED(hr)) {
        CloseHandle(h);
        memset(r, 0, sizeof(*r));
        return hr;
    }
    set_handle(r, h);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;
}

void shmc_plat_region_close(shmc_plat_region *r)
{
    if (!r)
        return;
    if (r->base) {
        UnmapViewOfFile(r->base);
        CloseHandle(get_handle(r));
    }
    memset(r, 0, sizeof(*r));
}

HRESULT shmc_plat_region_unlink(const char *name)
{
    return shmc_plat_region_name_check(name); /* the name dies with its last handle */
}

bool shmc_plat_region_names_persist(void)
{
    return false;
}

HRESULT shmc_plat_region_list(const char *prefix, bool (*fn)(const char *name, void *ctx),
                              void *ctx)
{
    (void)ctx;
    if (!prefix || !fn)
        return E_INVALIDARG;
    return S_FALSE;
}

HRESULT shmc_plat_region_access(const shmc_plat_region *r, unsigned *mode)
{
    bool only;
    if (!r || !mode || !r->base)
        return E_INVALIDARG;
    *mode = 0;
    HRESULT hr = shmc_win_is_owner_only(get_handle(r), &only);
    if (FAILED(hr))
        return hr;
    *mode = only ? 0600 : 0666;
    return S_OK;
}
