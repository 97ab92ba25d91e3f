/*
 * event.c - a pollable event for event loops: an eventfd whose counter is
 * non-zero (readable) while the event is set.
 */
#include "posix_impl.h"

#include <string.h>
#include <sys/eventfd.h>
#include <poll.h>
#include <unistd.h>

/* opaque: int fd + 1 (so that a zeroed event holds no descriptor) */

static int fd_of(const shmc_plat_event *e)
{
    int v;
    memcpy(&v, e->opaque, sizeof(v));
    return v - 1;
}

HRESULT shmc_plat_event_init(shmc_plat_event *e)
{
    memset(e, 0, sizeof(*e));
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return shmc_plat_hresult_from_os(errno);
    int v = fd + 1;
    memcpy(e->opaque, &v, sizeof(v));
    return S_OK;
}

void shmc_plat_event_fini(shmc_plat_event *e)
{
    int fd = fd_of(e);
    if (fd >= 0)
        close(fd);
    memset(e, 0, sizeof(*e));
}

void shmc_plat_event_set(shmc_plat_event *e)
{
    uint64_t one = 1;
    /* EAGAIN only if the counter would overflow: it is set already */
    while (write(fd_of(e), &one, sizeof(one)) < 0 && errno == EINTR) {}
}

void shmc_plat_event_reset(shmc_plat_event *e)
{
    uint64_t v;
    while (read(fd_of(e), &v, sizeof(v)) < 0 && errno == EINTR) {}
}

HRESULT shmc_plat_event_wait(shmc_plat_event *e, uint32_t timeout_ms)
{
    struct pollfd p = {.fd = fd_of(e), .events = POLLIN};
    uint64_t deadline = shmc_plat_clock_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        int ms = -1;
        if (timeout_ms != SHMC_PLAT_INFINITE) {
            uint32_t left = shmc_plat_clock_ms_until(deadline);
            ms = left > 0x7FFFFFFF ? 0x7FFFFFFF : (int)left;
        }
        int rc = poll(&p, 1, ms);
        if (rc > 0)
            return S_OK;
        if (rc == 0)
            return S_FALSE;
        if (errno != EINTR)
            return shmc_plat_hresult_from_os(errno);
    }
}

intptr_t shmc_plat_event_handle(const shmc_plat_event *e)
{
    return fd_of(e);
}
