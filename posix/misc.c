/*
 * misc.c - monotonic clock, OS random bytes, CPU count and page size.
 */
#include "posix_impl.h"

#include <fcntl.h>
#include <sched.h>
#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#endif
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

uint64_t shmc_plat_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* For kernels without getrandom (before 3.17). */
static HRESULT random_from_urandom(unsigned char *p, size_t n)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return shmc_plat_hresult_from_os(errno);
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : EIO;
            close(fd);
            return shmc_plat_hresult_from_os(err);
        }
        p += r;
        n -= (size_t)r;
    }
    close(fd);
    return S_OK;
}

HRESULT shmc_plat_random(void *buf, size_t n)
{
    unsigned char *p = buf;
    if (!buf && n)
        return E_INVALIDARG;
    while (n > 0) {
        ssize_t r = SHMC_ROUTE("getrandom", getrandom(p, n, 0), -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOSYS)
                return random_from_urandom(p, n);
            return shmc_plat_hresult_from_os(errno);
        }
        p += r;
        n -= (size_t)r;
    }
    return S_OK;
}

unsigned shmc_plat_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return (unsigned)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

int shmc_plat_current_cpu(void)
{
#if defined(__linux__)
    return sched_getcpu(); /* the vDSO: a few ns; -1 on error */
#else
    return -1;
#endif
}

bool shmc_plat_process_barrier_setup(void)
{
#if defined(__linux__) && defined(SYS_membarrier)
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
           syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

bool shmc_plat_process_barrier(void)
{
#if defined(__linux__) && defined(SYS_membarrier)
    return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
#else
    return false;
#endif
}

bool shmc_plat_thread_move_off_cpu(int cpu)
{
#if defined(__linux__)
    cpu_set_t mask, away;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof(mask), &mask) != 0)
        return false;
    away = mask;
    CPU_CLR(cpu, &away);
    if (CPU_COUNT(&away) == 0 || sched_setaffinity(0, sizeof(away), &away) != 0)
        return false;
    sched_setaffinity(0, sizeof(mask), &mask); /* it stays where it went */
    return true;
#else
    (void)cpu;
    return false;
#endif
}

size_t shmc_plat_page_size(void)
{
    static _Atomic size_t page;
    size_t v = atomic_load_explicit(&page, memory_order_relaxed);
    if (!v) {
        long p = sysconf(_SC_PAGESIZE);
        v = p > 0 ? (size_t)p : 4096u;
        atomic_store_explicit(&page, v, memory_order_relaxed);
    }
    return v;
}

void shmc_plat_pin_module(void)
{
    /* libshmcom.so is linked -z nodelete (runtime/CMakeLists.txt) */
}
