/*
 * proc.c - process identity, starting children, and death notification
 * (Linux: pidfd, with a /proc polling fallback for kernels before 5.3).
 *
 * Identity is (pid, start time): the start time is field 22 of
 * /proc/PID/stat (clock ticks since boot), which differs for a later
 * process that reuses the pid. A handle is opened with pidfd_open(pid)
 * first and the start time checked second: if the check matches, the
 * pidfd names our process (it was alive after the open); if not, ours is
 * gone, whatever the pidfd now names.
 *
 * opaque layout: int fd (pidfd or -1), at offset 0.
 */
#include "posix_impl.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

extern char **environ;

_Static_assert(sizeof(int) <= sizeof(((shmc_plat_proc *)0)->opaque), "opaque too small");

static bool force_polling;

/* The polling fallback looks at /proc this often. */
#define POLL_INTERVAL_MS 5

bool shmc_plat_proc_force_polling(bool on)
{
    bool was = force_polling;
    force_polling = on;
    return was;
}

static int *pidfd_of(shmc_plat_proc *p)
{
    return (int *)(void *)p->opaque;
}

static int pidfd_get(const shmc_plat_proc *p)
{
    int fd;
    memcpy(&fd, p->opaque, sizeof(fd));
    return fd;
}

HRESULT shmc_posix_proc_stat(long pid, uint64_t *start_time, char *state)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SHM_E_NAME_NOT_FOUND : shmc_plat_hresult_from_os(errno);
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return SHM_E_NAME_NOT_FOUND; /* the process went away while we read */
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so start after
     * the last ')'. Field 3 is the state, field 22 the start time. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return E_UNEXPECTED;
    p += 2;
    if (state)
        *state = *p;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return E_UNEXPECTED;
        p++;
    }
    char *end;
    unsigned long long st = strtoull(p, &end, 10);
    if (end == p)
        return E_UNEXPECTED;
    *start_time = st;
    return S_OK;
}

void shmc_plat_proc_self(shmc_plat_procid *id)
{
    /* Cached per pid (a fork() child recomputes); racing threads compute
     * the same value, so relaxed atomics are enough. */
    static _Atomic uint64_t cached_pid, cached_start;
    uint64_t pid = (uint64_t)getpid();
    if (atomic_load_explicit(&cached_pid, memory_order_acquire) != pid) {
        uint64_t st = 0;
        if (FAILED(shmc_posix_proc_stat((long)pid, &st, NULL)))
            st = 0;
        atomic_store_explicit(&cached_start, st, memory_order_relaxed);
        atomic_store_explicit(&cached_pid, pid, memory_order_release);
    }
    id->pid = pid;
    id->start_time = atomic_load_explicit(&cached_start, memory_order_relaxed);
}

HRESULT shmc_plat_proc_query(uint64_t pid, shmc_plat_procid *id)
{
    if (!id)
        return E_INVALIDARG;
    memset(id, 0, sizeof(*id));
    if (pid == 0 || pid > INT_MAX)
        return SHM_E_NAME_NOT_FOUND;
    uint64_t st;
    HRESULT hr = shmc_posix_proc_stat((long)pid, &st, NULL);
    if (FAILED(hr))
        return hr;
    id->pid = pid;
    id->start_time = st;
    return S_OK;
}

/* true if the process named by id no longer exists (or is a zombie). */
static bool identity_gone(const shmc_plat_procid *id)
{
    uint64_t st;
    char state = 0;
    if (FAILED(shmc_posix_proc_stat((long)id->pid, &st, &state)))
        return true;
    return st != id->start_time || state == 'Z' || state == 'X';
}

static void proc_zero(shmc_plat_proc *p)
{
    memset(p, 0, sizeof(*p));
    *pidfd_of(p) = -1;
}

static int open_pidfd(pid_t pid)
{
    if (force_polling)
        return -1;
    int fd = SHMC_ROUTE("pidfd_open", (int)syscall(SYS_pidfd_open, pid, 0), -1);
    if (fd >= 0) {
        int flags = fcntl(fd, F_GETFD);
        if (flags >= 0)
            fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    return fd;
}

HRESULT shmc_plat_proc_open(shmc_plat_proc *p, const shmc_plat_procid *id)
{
    if (!p)
        return E_INVALIDARG;
    proc_zero(p);
    if (!id || id->pid == 0 || id->pid > INT_MAX)
        return E_INVALIDARG;
    p->id = *id;
    int fd = open_pidfd((pid_t)id->pid);
    if (fd < 0 && !force_polling && (errno == EMFILE || errno == ENFILE || errno == ENOMEM)) {
        HRESULT hr = shmc_plat_hresult_from_os(errno);
        proc_zero(p);
        return hr;
    }
    /* ESRCH: gone (found below); ENOSYS, EPERM...: fall back to polling. */
    if (identity_gone(id)) {
        if (fd >= 0)
            close(fd);
        p->exited = true;
        p->exit_code = -1; /* not our child: no status to report */
        return S_OK;
    }
    *pidfd_of(p) = fd; /* -1: poll /proc instead */
    return S_OK;
}

HRESULT shmc_plat_proc_spawn(shmc_plat_proc *p, const char *const argv[])
{
    if (!p)
        return E_INVALIDARG;
    proc_zero(p);
    if (!argv || !argv[0])
        return E_INVALIDARG;
    pid_t pid;
    int rc = SHMC_ROUTE(
        "posix_spawn", posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ), errno);
    if (rc != 0)
        return shmc_plat_hresult_from_os(rc);
    p->is_child = true;
    p->id.pid = (uint64_t)pid;
    /* A child cannot be reaped before we wait for it, so its pid is ours. */
    *pidfd_of(p) = open_pidfd(pid);
    uint64_t st;
    if (SUCCEEDED(shmc_posix_proc_stat(pid, &st, NULL)))
        p->id.start_time = st;
    return S_OK;
}

static void record_status(shmc_plat_proc *p, int status)
{
    p->exited = true;
    if (WIFEXITED(status))
        p->exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        p->exit_code = 128 + WTERMSIG(status);
    else
        p->exit_code = -1;
}

/* Reaps a child if it has exited. true when it has. */
static bool try_reap(shmc_plat_proc *p)
{
    int status;
    pid_t r = waitpid((pid_t)p->id.pid, &status, WNOHANG);
    if (r == (pid_t)p->id.pid) {
        record_status(p, status);
        return true;
    }
    if (r < 0 && errno == ECHILD) { /* SIGCHLD ignored: reaped by the kernel */
        p->exited = true;
        p->exit_code = -1;
        return true;
    }
    return false;
}

static bool check_exited(shmc_plat_proc *p)
{
    if (p->exited)
        return true;
    if (p->is_child)
        return try_reap(p);
    if (identity_gone(&p->id)) {
        p->exited = true;
        p->exit_code = -1;
    }
    return p->exited;
}

HRESULT shmc_plat_proc_wait(shmc_plat_proc *p, uint32_t timeout_ms)
{
    if (!p || p->id.pid == 0)
        return E_INVALIDARG;
    uint64_t deadline = timeout_ms == SHMC_PLAT_INFINITE
                            ? UINT64_MAX
                            : shmc_plat_clock_ns() + (uint64_t)timeout_ms * 1000000u;
    int fd = pidfd_get(p);
    for (;;) {
        if (check_exited(p))
            return S_OK;
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0)
            return S_FALSE;
        if (fd >= 0) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int ms = left == SHMC_PLAT_INFINITE ? -1 : (left > INT_MAX ? INT_MAX : (int)left);
            int rc = poll(&pfd, 1, ms);
            if (rc < 0 && errno != EINTR)
                return shmc_plat_hresult_from_os(errno);
            if (rc > 0 && !p->is_child) {
                p->exited = true;
                p->exit_code = -1;
            }
            /* a child: loop to reap it (waitpid is ready once pidfd is) */
        } else {
            shmc_plat_sleep_ms(left < POLL_INTERVAL_MS ? left : POLL_INTERVAL_MS);
        }
    }
}

HRESULT shmc_plat_proc_kill(shmc_plat_proc *p)
{
    if (!p || p->id.pid == 0)
        return E_INVALIDARG;
    if (p->exited)
        return S_OK;
    int fd = pidfd_get(p);
    int rc;
    if (fd >= 0) /* cannot hit a process that reused the pid */
        rc = (int)syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
    else if (!p->is_child && identity_gone(&p->id))
        return S_OK;
    else
        rc = kill((pid_t)p->id.pid, SIGKILL);
    if (rc != 0 && errno != ESRCH)
        return shmc_plat_hresult_from_os(errno);
    return S_OK;
}

intptr_t shmc_plat_proc_pollable(const shmc_plat_proc *p)
{
    return p ? (intptr_t)pidfd_get(p) : -1;
}

void shmc_plat_proc_close(shmc_plat_proc *p)
{
    if (!p)
        return;
    int fd = pidfd_get(p);
    if (fd >= 0 && p->id.pid != 0)
        close(fd);
    proc_zero(p);
}

HRESULT shmc_plat_self_exe(char *buf, size_t size)
{
    if (!buf || size == 0)
        return E_INVALIDARG;
    ssize_t n = readlink("/proc/self/exe", buf, size);
    if (n < 0)
        return shmc_plat_hresult_from_os(errno);
    if ((size_t)n >= size) {
        buf[0] = '\0';
        return E_NOT_SUFFICIENT_BUFFER;
    }
    buf[n] = '\0';
    return S_OK;
}
