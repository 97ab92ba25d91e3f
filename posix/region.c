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
 *
 * Every mapping is followed by a PROT_NONE guard page (map_fd), so that
 * running off the end of a region faults rather than touching whatever
 * lies next in the address space; and it is listed with sigbus.c, so that
 * a peer that truncates the object cannot kill us with SIGBUS.
 *
 * shmc_plat_region_create_init publishes a region only once it is
 * initialised: the object is made nameless (open(O_TMPFILE) in /dev/shm),
 * sized, mapped and filled, and then given its name with linkat() through
 * /proc/self/fd, which fails with EEXIST if the name is taken. An opener
 * never sees a half-made region, and a creator killed before the link
 * leaves no name behind (the kernel frees the nameless object). Where
 * O_TMPFILE is not supported it falls back to create + init.
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

/*
 * Maps `size` bytes of the object read-write, followed by one inaccessible
 * guard page: address space for both is reserved first (PROT_NONE), then
 * the object is mapped over the front. An access that runs off the end of
 * a region faults at once instead of reading or corrupting whatever the
 * kernel happened to map next.
 */
static HRESULT map_fd(shmc_plat_region *r, int fd, size_t size)
{
    size_t page = shmc_plat_page_size();
    if (size > SIZE_MAX - page)
        return E_OUTOFMEMORY;
    /* (this asks for address space only: whatever the errno, there is not
     * that much; Valgrind, for one, says EINVAL where the kernel says ENOMEM) */
    void *area = mmap(NULL, size + page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (area == MAP_FAILED)
        return E_OUTOFMEMORY;
    void *p =
        SHMC_ROUTE("mmap", mmap(area, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0),
                   MAP_FAILED);
    if (p == MAP_FAILED) {
        HRESULT hr = from_errno();
        munmap(area, size + page);
        return hr;
    }
    r->base = p;
    r->size = size;
    shmc_posix_sigbus_watch(p, size); /* a peer may truncate it (sigbus.c) */
    return S_OK;
}

static void unmap(shmc_plat_region *r)
{
    shmc_posix_sigbus_unwatch(r->base);
    munmap(r->base, r->size + shmc_plat_page_size()); /* with the guard page */
}

/* Checks the arguments of a create, leaving *r closed: the OS name and
 * the page-rounded size. */
static HRESULT create_args(shmc_plat_region *r, char osname[OS_NAME_MAX], const char *name,
                           size_t size, size_t *rounded)
{
    if (!r)
        return E_INVALIDARG;
    region_zero(r);
    HRESULT hr = os_name(osname, name);
    if (FAILED(hr))
        return hr;
    *rounded = shmc_plat__round_page(size);
    if (size == 0 || *rounded == 0 || (unsigned long long)*rounded > (unsigned long long)INT64_MAX)
        return E_INVALIDARG;
    return S_OK;
}

/* Owner-only mode (the umask may have cleared owner bits), size, mapping. */
static HRESULT size_and_map(shmc_plat_region *r, int fd, size_t rounded)
{
    if (SHMC_ROUTE("fchmod", fchmod(fd, S_IRUSR | S_IWUSR), -1) != 0)
        return from_errno();
    if (SHMC_ROUTE("ftruncate", ftruncate(fd, (off_t)rounded), -1) != 0)
        return from_errno();
    return map_fd(r, fd, rounded);
}

HRESULT shmc_plat_region_create(shmc_plat_region *r, const char *name, size_t size)
{
    char osname[OS_NAME_MAX];
    size_t rounded;

    HRESULT hr = create_args(r, osname, name, size, &rounded);
    if (FAILED(hr))
        return hr;
    int fd =
        SHMC_ROUTE("shm_open", shm_open(osname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600), -1);
    if (fd < 0)
        return from_errno(); /* EEXIST -> SHM_E_NAME_EXISTS */
    hr = size_and_map(r, fd, rounded);
    if (FAILED(hr)) {
        shm_unlink(osname);
        close(fd);
        region_zero(r);
        return hr;
    }
    close(fd);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;
}

HRESULT shmc_plat_region_create_init(shmc_plat_region *r, const char *name, size_t size,
                                     shmc_plat_region_init_fn init, void *ctx)
{
    char osname[OS_NAME_MAX], proc_path[64], path[sizeof(SHM_DIR) + OS_NAME_MAX];
    size_t rounded;

    HRESULT hr = create_args(r, osname, name, size, &rounded);
    if (FAILED(hr))
        return hr;
    int fd = SHMC_ROUTE("open", open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600), -1);
    if (fd < 0) {
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            return from_errno();
        /* no O_TMPFILE here: the name is visible before init runs */
        hr = shmc_plat_region_create(r, name, size);
        if (SUCCEEDED(hr) && init)
            init(r->base, r->size, ctx);
        return hr;
    }
    hr = size_and_map(r, fd, rounded);
    if (FAILED(hr))
        goto fail;
    if (init)
        init(r->base, r->size, ctx);
    snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", fd);
    snprintf(path, sizeof(path), "%s%s", SHM_DIR, osname);
    if (SHMC_ROUTE("linkat", linkat(AT_FDCWD, proc_path, AT_FDCWD, path, AT_SYMLINK_FOLLOW), -1) !=
        0) {
        hr = from_errno(); /* EEXIST -> SHM_E_NAME_EXISTS */
        goto fail;
    }
    close(fd);
    memcpy(r->name, name, strlen(name) + 1);
    return S_OK;

fail:
    if (r->base)
        unmap(r);
    close(fd); /* the nameless object goes with its last reference */
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
        unmap(r);
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

bool shmc_plat_region_names_persist(void)
{
    return true;
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
