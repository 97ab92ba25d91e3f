/*
 * wait_sem.c - wait/wake on a shared word with a named semaphore.
 *
 * WaitOnAddress works inside one process only, so each shared word gets a
 * semaphore named after its region and offset ("Local\shmcom-<region>-w<hex
 * offset>"), which every process that maps the region can open.
 *
 * The protocol is the futex one (see posix/wait_futex.c): a waiter counts
 * itself in word->waiters, re-checks the value and sleeps on the
 * semaphore; a waker changes the value, fences, reads waiters and releases
 * one permit (or one per counted waiter). A waiter that counted itself but
 * saw the value change leaves without taking its permit; that permit makes
 * some later wait return early, which callers tolerate (they loop). The
 * semaphore's maximum bounds how many such permits a hostile peer can pile
 * up.
 *
 * opaque: the semaphore HANDLE.
 */
#include "win_impl.h"

#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(HANDLE) <= sizeof(((shmc_plat_waiter *)0)->opaque), "opaque");

#define SEM_MAX      (1L << 20)
#define WAKE_ALL_MAX 1024u

static HANDLE sem_of(const shmc_plat_waiter *w)
{
    HANDLE h;
    memcpy(&h, w->opaque, sizeof(h));
    return h;
}

static HRESULT open_sem(shmc_plat_waiter *w, shmc_plat_wword *word, const WCHAR *name,
                        SECURITY_ATTRIBUTES *sa)
{
    HANDLE h = SHMC_ROUTE("CreateSemaphoreW", CreateSemaphoreW(sa, 0, SEM_MAX, name), (HANDLE)NULL);
    if (!h)
        return shmc_win_last_error();
    w->word = word;
    memcpy(w->opaque, &h, sizeof(h));
    return S_OK;
}

HRESULT shmc_plat_waiter_open(shmc_plat_waiter *w, const shmc_plat_region *r, size_t offset)
{
    WCHAR wname[SHMC_WIN_NAME_MAX];
    SECURITY_ATTRIBUTES *sa;
    char suffix[32];
    if (!w)
        return E_INVALIDARG;
    memset(w, 0, sizeof(*w));
    if (!r || !r->base || offset % 8 != 0 || offset > r->size ||
        r->size - offset < sizeof(shmc_plat_wword))
        return E_INVALIDARG;
    snprintf(suffix, sizeof(suffix), "-w%llx", (unsigned long long)offset);
    HRESULT hr = shmc_win_object_name(wname, r->name, suffix);
    if (FAILED(hr))
        return hr;
    hr = shmc_win_owner_only(&sa);
    if (FAILED(hr))
        return hr;
    return open_sem(w, (shmc_plat_wword *)((unsigned char *)r->base + offset), wname, sa);
}

HRESULT shmc_plat_waiter_open_local(shmc_plat_waiter *w, shmc_plat_wword *word)
{
    if (!w)
        return E_INVALIDARG;
    memset(w, 0, sizeof(*w));
    if (!word || ((uintptr_t)word % 8) != 0)
        return E_INVALIDARG;
    return open_sem(w, word, NULL, NULL);
}

void shmc_plat_waiter_close(shmc_plat_waiter *w)
{
    if (!w)
        return;
    HANDLE h = sem_of(w);
    if (h)
        CloseHandle(h);
    memset(w, 0, sizeof(*w));
}

HRESULT shmc_plat_wait(shmc_plat_waiter *w, uint32_t expected, uint32_t timeout_ms)
{
    shmc_plat_wword *word = w->word;
    HRESULT hr = S_OK;
    atomic_fetch_add(&word->waiters, 1);
    if (atomic_load(&word->value) == expected) {
        DWORD rc = WaitForSingleObject(sem_of(w), timeout_ms);
        if (rc == WAIT_TIMEOUT)
            hr = S_FALSE;
        else if (rc != WAIT_OBJECT_0)
            hr = shmc_win_last_error();
    }
    atomic_fetch_sub(&word->waiters, 1);
    return hr;
}

void shmc_plat_wake(shmc_plat_waiter *w, bool all)
{
    shmc_plat_wword *word = w->word;
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t n = atomic_load(&word->waiters);
    if (n == 0)
        return;
    if (!all)
        n = 1;
    else if (n > WAKE_ALL_MAX) /* the count may be a hostile peer's */
        n = WAKE_ALL_MAX;
    ReleaseSemaphore(sem_of(w), (LONG)n, NULL); /* past the maximum: no harm */
}
