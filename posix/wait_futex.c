/*
 * wait_futex.c - wait/wake on a shared word with the Linux futex.
 *
 * The waiter announces itself in word->waiters before it checks the value
 * and sleeps; the waker changes the value, then (after a full fence) reads
 * waiters and makes the FUTEX_WAKE system call only if someone announced
 * itself. The two sequentially consistent pairs (waiters++ then load
 * value; store value then load waiters) guarantee that at least one side
 * sees the other, so a wake-up is never lost and an idle wake costs no
 * system call.
 *
 * Shared words use the shared futex (keyed by the page, across processes);
 * words in private memory use FUTEX_PRIVATE_FLAG, which is cheaper.
 */
#include "posix_impl.h"

#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* opaque[0] of shmc_plat_waiter: 1 when the word is process-private. */

static int futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return (int)syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

HRESULT shmc_plat_waiter_open(shmc_plat_waiter *w, const shmc_plat_region *r, size_t offset)
{
    if (!w)
        return E_INVALIDARG;
    memset(w, 0, sizeof(*w));
    if (!r || !r->base || offset % 8 != 0 || offset > r->size ||
        r->size - offset < sizeof(shmc_plat_wword))
        return E_INVALIDARG;
    w->word = (shmc_plat_wword *)((unsigned char *)r->base + offset);
    return S_OK;
}

HRESULT shmc_plat_waiter_open_local(shmc_plat_waiter *w, shmc_plat_wword *word)
{
    if (!w)
        return E_INVALIDARG;
    memset(w, 0, sizeof(*w));
    if (!word || ((uintptr_t)word % 8) != 0)
        return E_INVALIDARG;
    w->word = word;
    w->opaque[0] = 1;
    return S_OK;
}

void shmc_plat_waiter_close(shmc_plat_waiter *w)
{
    if (w)
        memset(w, 0, sizeof(*w));
}

HRESULT shmc_plat_wait(shmc_plat_waiter *w, uint32_t expected, uint32_t timeout_ms)
{
    shmc_plat_wword *word = w->word;
    int op = FUTEX_WAIT | (w->opaque[0] ? FUTEX_PRIVATE_FLAG : 0);
    uint64_t deadline = 0;
    HRESULT hr = S_OK;

    if (timeout_ms != SHMC_PLAT_INFINITE)
        deadline = shmc_plat_clock_ns() + (uint64_t)timeout_ms * 1000000u;

    atomic_fetch_add(&word->waiters, 1);
    while (atomic_load(&word->value) == expected) {
        struct timespec ts, *pts = NULL;
        if (timeout_ms != SHMC_PLAT_INFINITE) {
            uint64_t now = shmc_plat_clock_ns();
            if (now >= deadline) {
                hr = S_FALSE;
                break;
            }
            uint64_t left = deadline - now;
            ts.tv_sec = (time_t)(left / 1000000000u);
            ts.tv_nsec = (long)(left % 1000000000u);
            pts = &ts;
        }
        if (futex(&word->value, op, expected, pts) == 0)
            break; /* woken, or spuriously: the caller re-checks */
        if (errno == EAGAIN)
            break; /* the value changed before we slept */
        if (errno == ETIMEDOUT) {
            hr = S_FALSE;
            break;
        }
        if (errno != EINTR) {
            hr = shmc_plat_hresult_from_os(errno);
            break;
        }
        /* EINTR: sleep again for what is left */
    }
    atomic_fetch_sub(&word->waiters, 1);
    return hr;
}

void shmc_plat_wake(shmc_plat_waiter *w, bool all)
{
    shmc_plat_wword *word = w->word;
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&word->waiters) == 0)
        return;
    int op = FUTEX_WAKE | (w->opaque[0] ? FUTEX_PRIVATE_FLAG : 0);
    futex(&word->value, op, all ? INT_MAX : 1, NULL);
}
