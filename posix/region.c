/*
 * region.c - named shared-memory regions on POSIX: shm_open + mmap.
 *
 * OS name: "/shmcom-<euid>-<name>". The uid keeps two users of one machine
 * from colliding in the shared /dev/shm namespace (and from squatting each
 * other's names); open refuses an object that another user owns or that
 * grants group/other access, so a region planted by someone else is never
 * mapped.
 *
 * Creation is shm_open(O_CREAT|O_EXCL, 0600), fchmod 0600 (the umask may
 * have cleared owner bits), ftruncate to the page-rounded size, mmap. The
 * file descriptor is closed once mapped: a mapping does not need it, and
 * a process with many connections should not run out of descriptors.
 *
 * Between shm_open and ftruncate the object exists with size 0; an opener
 * that sees size 0 reports SHM_E_NAME_NOT_FOUND ("not there yet"), which is
 * the truth from its point of view.
 */
#include "posix_impl.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_DIR "/dev/shm"

/* "/shmcom-" + uid (10 digits) + "-" + name + NUL */
#define OS_NAME_MAX (8 + 10 + 1 + SHM_MAX_NAME + 1)

static HRESULT os_name(char out[OS_NAME_MAX], const char *name)
{
    HRESULT hr = shmc_plat_region_name_check(name);
    if (FAILED(hr))
        return hr;
    int n = snprintf(out, OS_NAME_MAX, "/shmcom-%u-%s", (unsigned)geteuid(), name);
    return (n > 0 && n < OS_NAME_MAX) ? S_OK : E_INVALIDARG;
}

static HRESULT from_errno(void)
{
    return shmc_plat_hresult_from_os(errno);
}

static void region_zero(shmc_plat_region *r)
{
    memset(r, 0, sizeof(*r));
}

static HRESULT map_fd(shmc_plat_region *r, int fd, size_t size)
{
    void *p =
        SHMC_ROUTE("mmap", mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
    if (p == MAP_FAILED)
        return from_errno();
    r->base = p;
    r->size = size;
    return S_OK;
}

HRESULT shmc_plat_region_create(shmc_plat_region *r, const char *name, size_t size)
{
    char osname[OS_NAME_MAX];
    HRESULT hr;
    int fd = -1;

    if (!r)
        return E_INVALIDARG;
    region_zero(r);
    hr = os_name(osname, name);
    if (FAILED(hr))
        return hr;
    size_t rounded = shmc_plat__round_page(size);
    if (size == 0 || rounded == 0 || (unsigned long long)rounded > (unsigned long long)INT64_MAX)
        return E_INVALIDARG;

    fd = SHMC_ROUTE("shm_open", shm_open(osname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), -1);
    if (fd < 0)
        return from_errno(); /* EEXIST -> SHM_E_NAME_EXISTS */
    if (SHMC_ROUTE("fchmod", fchmod(fd, S_IRUSR | S_IWUSR), -1) != 0) {
        hr = from_errno();
        goto fail_unlink;
    }
    if (SHMC_ROUTE("ftruncate", ftruncate(fd, (off_t)rounded), -1) != 0) {
        hr = from_errno();
        goto fail_unlink;
    }
    hr = map_fd(r, fd, rounded);
    if (FAILED(hr))
        goto fail_unlink;
    close(fd);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;

fail_unlink:
    shm_unlink(osname);
    close(fd);
    region_zero(r);
    return hr;
}

HRESULT shmc_plat_region_open(shmc_plat_region *r, const char *name)
{
    char osname[OS_NAME_MAX];
    struct stat st;
    HRESULT hr;

    if (!r)
        return E_INVALIDARG;
    region_zero(r);
    hr = os_name(osname, name);
    if (FAILED(hr))
        return hr;
    int fd = SHMC_ROUTE("shm_open", shm_open(osname, O_RDWR | O_CLOEXEC, 0), -1);
    if (fd < 0)
        return from_errno(); /* ENOENT -> SHM_E_NAME_NOT_FOUND */
    if (SHMC_ROUTE("fstat", fstat(fd, &st), -1) != 0) {
        hr = from_errno();
        goto fail;
    }
    if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        hr = E_ACCESSDENIED;
        goto fail;
    }
    if (st.st_size <= 0) {
        hr = SHM_E_NAME_NOT_FOUND; /* created but not sized yet */
        goto fail;
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        hr = E_OUTOFMEMORY;
        goto fail;
    }
    hr = map_fd(r, fd, (size_t)st.st_size);
    if (FAILED(hr))
        goto fail;
    close(fd);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;

fail:
    close(fd);
    region_zero(r);
    return hr;
}

void shmc_plat_region_close(shmc_plat_region *r)
{
    if (!r)
        return;
    if (r->base)
        munmap(r->base, r->size);
    region_zero(r);
}

HRESULT shmc_plat_region_unlink(const char *name)
{
    char osname[OS_NAME_MAX];
    HRESULT hr = os_name(osname, name);
    if (FAILED(hr))
        return hr;
    if (SHMC_ROUTE("shm_unlink", shm_unlink(osname), -1) != 0)
        return from_errno();
    return S_OK;
}

HRESULT shmc_plat_region_list(const char *prefix, bool (*fn)(const char *name, void *ctx),
                              void *ctx)
{
    char head[32];
    if (!prefix || !fn)
        return E_INVALIDARG;
    int hl = snprintf(head, sizeof(head), "shmcom-%u-", (unsigned)geteuid());
    if (hl <= 0 || (size_t)hl >= sizeof(head))
        return E_UNEXPECTED;
    size_t pl = strlen(prefix);

    DIR *d = SHMC_ROUTE("opendir", opendir(SHM_DIR), NULL);
    if (!d)
        return from_errno();
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, head, (size_t)hl) != 0)
            continue;
        n += hl;
        if (strncmp(n, prefix, pl) != 0 || FAILED(shmc_plat_region_name_check(n)))
            continue;
        if (!fn(n, ctx))
            break;
    }
    closedir(d);
    return S_OK;
}

HRESULT shmc_plat_region_access(const shmc_plat_region *r, unsigned *mode)
{
    char osname[OS_NAME_MAX];
    struct stat st;
    if (!r || !mode || !r->base)
        return E_INVALIDARG;
    *mode = 0;
    HRESULT hr = os_name(osname, r->name);
    if (FAILED(hr))
        return hr;
    int fd = shm_open(osname, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return from_errno();
    int rc = fstat(fd, &st);
    int err = errno;
    close(fd);
    if (rc != 0)
        return shmc_plat_hresult_from_os(err);
    *mode = (unsigned)(st.st_mode & 07777);
    return S_OK;
}
