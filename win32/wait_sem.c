/*
 * wait_sem.c - wait/wake on a word: a named semaphore between processes,
 * the word's own address (WaitOnAddress) within one.
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
 * A word in the process's own memory (shmc_plat_waiter_open_local: an
 * apartment's bell, a caller's wait for its reply) waits on its address
 * with WaitOnAddress (Windows 8 on; looked up at run time), with the same
 * count of waiters in front of it. It needs no kernel object, and under
 * Wine it is a futex in the process, where a semaphore is a request to
 * wineserver: a thread woken that way comes in half the time (test
 * programs, 2 threads on 2 CPUs: a ping-pong of 36 us against 48-65 us).
 * Where the lookup fails (Windows 7; tests route "WaitOnAddress" to fail)
 * such a word gets an unnamed semaphore, as a shared one does.
 *
 * opaque: the semaphore HANDLE; NULL for a word waited on by address.
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

/* WaitOnAddress and its two wakes, from kernelbase.dll (where Windows 8
 * and Wine export them), looked up once. */
typedef BOOL(WINAPI *woa_wait_fn)(volatile VOID *addr, PVOID compare, SIZE_T size, DWORD ms);
typedef VOID(WINAPI *woa_wake_fn)(PVOID addr);

static struct {
    woa_wait_fn wait;
    woa_wake_fn wake_one, wake_all;
} woa;
static shmc_plat_once woa_once = SHMC_PLAT_ONCE_INIT;

static void woa_lookup(void)
{
    HMODULE k = GetModuleHandleW(L"kernelbase.dll");
    if (!k)
        return;
    /* (through a plain function type: FARPROC is not the callee's) */
    woa_wait_fn wait = (woa_wait_fn)(void (*)(void))GetProcAddress(k, "WaitOnAddress");
    woa_wake_fn one = (woa_wake_fn)(void (*)(void))GetProcAddress(k, "WakeByAddressSingle");
    woa_wake_fn all = (woa_wake_fn)(void (*)(void))GetProcAddress(k, "WakeByAddressAll");
    if (wait && one && all) {
        woa.wake_one = one;
        woa.wake_all = all;
        woa.wait = wait;
    }
}

/* Whether a local word waits on its address (else on a semaphore). */
static bool woa_usable(void)
{
    shmc_plat_once_run(&woa_once, woa_lookup);
    return woa.wait && !shmc_win_inject("WaitOnAddress");
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
    if (woa_usable()) {
        w->word = word; /* (no handle: opaque stays NULL) */
        return S_OK;
    }
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
    HANDLE sem = sem_of(w);
    if (!sem) {
        /* WaitOnAddress compares first, as a futex does, and may come back
         * for no reason: it waits again, for what is left, while the value
         * is unchanged (every waker changes it first) */
        uint64_t deadline = timeout_ms == SHMC_PLAT_INFINITE
                                ? UINT64_MAX
                                : shmc_plat_clock_ns() + (uint64_t)timeout_ms * 1000000u;
        uint32_t ms = timeout_ms;
        for (;;) {
            uint32_t cmp = expected;
            if (!woa.wait((volatile VOID *)&word->value, &cmp, sizeof(cmp), ms)) {
                DWORD err = GetLastError();
                hr = err == ERROR_TIMEOUT ? S_FALSE : shmc_plat_hresult_from_os((int)err);
                break;
            }
            if (atomic_load(&word->value) != expected)
                break;
            if (deadline != UINT64_MAX && (ms = shmc_plat_clock_ms_until(deadline)) == 0) {
                hr = S_FALSE;
                break;
            }
        }
    } else if (atomic_load(&word->value) == expected) {
        DWORD rc = WaitForSingleObject(sem, timeout_ms);
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
    HANDLE sem = sem_of(w);
    if (!sem) {
        (all ? woa.wake_all : woa.wake_one)((PVOID)&word->value);
        return;
    }
    if (!all)
        n = 1;
    else if (n > WAKE_ALL_MAX) /* the count may be a hostile peer's */
        n = WAKE_ALL_MAX;
    ReleaseSemaphore(sem, (LONG)n, NULL); /* past the maximum: no harm */
}
