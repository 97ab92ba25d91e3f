/*
 * thread.c - threads (_beginthreadex, so the C runtime knows them), fiber
 * local storage (its callback is the destructor that runs when a thread
 * exits), slim reader/writer locks and condition variables.
 */
#include "win_impl.h"
#include "alloc.h"

#include <process.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(HANDLE) <= sizeof(((shmc_plat_thread *)0)->opaque), "thread");
_Static_assert(sizeof(DWORD) <= sizeof(((shmc_plat_tls *)0)->opaque), "tls");
_Static_assert(sizeof(SRWLOCK) <= sizeof(((shmc_plat_mutex *)0)->opaque), "mutex");
_Static_assert(sizeof(CONDITION_VARIABLE) <= sizeof(((shmc_plat_cond *)0)->opaque), "cond");
/* An FLS callback is `VOID NTAPI (PVOID)`; on x64 that is the C calling
 * convention, so the destructor is passed as is. */
_Static_assert(sizeof(void *) == 8, "the FLS callback cast assumes x64");

typedef struct start_args {
    void (*fn)(void *);
    void *arg;
} start_args;

static unsigned __stdcall thread_main(void *p)
{
    start_args a = *(start_args *)p;
    shmc_free(p);
    a.fn(a.arg);
    return 0;
}

HRESULT shmc_plat_thread_create(shmc_plat_thread *t, void (*fn)(void *), void *arg)
{
    if (!t)
        return E_INVALIDARG;
    memset(t, 0, sizeof(*t));
    if (!fn)
        return E_INVALIDARG;
    start_args *a = shmc_malloc(sizeof(*a)); /* (the fault hook counts it) */
    if (!a)
        return E_OUTOFMEMORY;
    a->fn = fn;
    a->arg = arg;
    uintptr_t h = SHMC_ROUTE("_beginthreadex", _beginthreadex(NULL, 0, thread_main, a, 0, NULL), 0);
    if (h == 0) {
        HRESULT hr = errno == EAGAIN ? E_OUTOFMEMORY : shmc_win_last_error();
        shmc_free(a);
        return hr;
    }
    HANDLE hh = (HANDLE)h;
    memcpy(t->opaque, &hh, sizeof(hh));
    return S_OK;
}

void shmc_plat_thread_join(shmc_plat_thread *t)
{
    HANDLE h;
    memcpy(&h, t->opaque, sizeof(h));
    WaitForSingleObject(h, INFINITE);
    CloseHandle(h);
    memset(t, 0, sizeof(*t));
}

void shmc_plat_thread_detach(shmc_plat_thread *t)
{
    HANDLE h;
    memcpy(&h, t->opaque, sizeof(h));
    CloseHandle(h); /* the thread runs on; its handle is not needed */
    memset(t, 0, sizeof(*t));
}

uint64_t shmc_plat_thread_self_id(void)
{
    return GetCurrentThreadId();
}

void shmc_plat_thread_yield(void)
{
    SwitchToThread();
}

void shmc_plat_sleep_ms(uint32_t ms)
{
    Sleep(ms);
}

/* ---- TLS --------------------------------------------------------------- */

HRESULT shmc_plat_tls_create(shmc_plat_tls *k, void (*dtor)(void *))
{
    if (!k)
        return E_INVALIDARG;
    DWORD idx = FlsAlloc((PFLS_CALLBACK_FUNCTION)(void (*)(void))dtor);
    if (idx == FLS_OUT_OF_INDEXES)
        return shmc_win_last_error();
    memcpy(k->opaque, &idx, sizeof(idx));
    return S_OK;
}

static DWORD key_of(const shmc_plat_tls *k)
{
    DWORD idx;
    memcpy(&idx, k->opaque, sizeof(idx));
    return idx;
}

void shmc_plat_tls_destroy(shmc_plat_tls *k)
{
    FlsFree(key_of(k));
}

void *shmc_plat_tls_get(const shmc_plat_tls *k)
{
    return FlsGetValue(key_of(k));
}

HRESULT shmc_plat_tls_set(shmc_plat_tls *k, void *value)
{
    return FlsSetValue(key_of(k), value) ? S_OK : shmc_win_last_error();
}

/* The fast slot: a TLS index, allocated on the first set (-1: none yet, or
 * none to be had). The first 64 slots of a thread are an array in its TEB
 * (TlsSlots, at gs:0x1480 on x64), which a read can take as it is; past
 * that, TlsGetValue, with the last error kept. */
static volatile LONG fast_slot = -1;
static INIT_ONCE fast_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK fast_slot_alloc(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    DWORD idx = TlsAlloc();
    if (idx != TLS_OUT_OF_INDEXES)
        InterlockedExchange(&fast_slot, (LONG)idx);
    return TRUE;
}

void *shmc_plat_fast_tls_get(void)
{
    LONG idx = fast_slot;
    if (idx < 0)
        return NULL;
    if (idx < 64)
        return (void *)__readgsqword(0x1480 + 8 * (DWORD)idx);
    DWORD err = GetLastError();
    void *value = TlsGetValue((DWORD)idx);
    SetLastError(err);
    return value;
}

bool shmc_plat_fast_tls_set(void *value)
{
    InitOnceExecuteOnce(&fast_once, fast_slot_alloc, NULL, NULL);
    LONG idx = fast_slot;
    return idx >= 0 && TlsSetValue((DWORD)idx, value);
}

/* ---- lock and condition variable ---------------------------------------- */

static SRWLOCK *lock_of(shmc_plat_mutex *m)
{
    return (SRWLOCK *)(void *)m->opaque;
}

static CONDITION_VARIABLE *cv_of(shmc_plat_cond *c)
{
    return (CONDITION_VARIABLE *)(void *)c->opaque;
}

void shmc_plat_mutex_init(shmc_plat_mutex *m)
{
    memset(m, 0, sizeof(*m));
    InitializeSRWLock(lock_of(m));
}

void shmc_plat_mutex_fini(shmc_plat_mutex *m)
{
    memset(m, 0, sizeof(*m)); /* an SRW lock holds no resources */
}

void shmc_plat_mutex_lock(shmc_plat_mutex *m)
{
    AcquireSRWLockExclusive(lock_of(m));
}

void shmc_plat_mutex_unlock(shmc_plat_mutex *m)
{
    ReleaseSRWLockExclusive(lock_of(m));
}

void shmc_plat_cond_init(shmc_plat_cond *c)
{
    memset(c, 0, sizeof(*c));
    InitializeConditionVariable(cv_of(c));
}

void shmc_plat_cond_fini(shmc_plat_cond *c)
{
    memset(c, 0, sizeof(*c));
}

HRESULT shmc_plat_cond_wait(shmc_plat_cond *c, shmc_plat_mutex *m, uint32_t timeout_ms)
{
    if (SleepConditionVariableSRW(cv_of(c), lock_of(m), timeout_ms, 0))
        return S_OK;
    return GetLastError() == ERROR_TIMEOUT ? S_FALSE : shmc_win_last_error();
}

void shmc_plat_cond_signal(shmc_plat_cond *c)
{
    WakeConditionVariable(cv_of(c));
}

void shmc_plat_cond_broadcast(shmc_plat_cond *c)
{
    WakeAllConditionVariable(cv_of(c));
}

/* ---- once ----------------------------------------------------------------- */

_Static_assert(sizeof(INIT_ONCE) <= sizeof(((shmc_plat_once *)0)->opaque), "once");

static BOOL CALLBACK once_trampoline(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)ctx;
    void (*fn)(void);
    memcpy(&fn, &param, sizeof(fn));
    fn();
    return TRUE;
}

void shmc_plat_once_run(shmc_plat_once *once, void (*fn)(void))
{
    /* INIT_ONCE_STATIC_INIT is all zero bytes, as SHMC_PLAT_ONCE_INIT */
    void *param;
    memcpy(&param, &fn, sizeof(param));
    InitOnceExecuteOnce((PINIT_ONCE)(void *)once->opaque, once_trampoline, param, NULL);
}

/* ---- pollable event -------------------------------------------------------- */

static HANDLE event_of(const shmc_plat_event *e)
{
    HANDLE h;
    memcpy(&h, e->opaque, sizeof(h));
    return h;
}

HRESULT shmc_plat_event_init(shmc_plat_event *e)
{
    memset(e, 0, sizeof(*e));
    HANDLE h = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!h)
        return shmc_win_last_error();
    memcpy(e->opaque, &h, sizeof(h));
    return S_OK;
}

void shmc_plat_event_fini(shmc_plat_event *e)
{
    HANDLE h = event_of(e);
    if (h)
        CloseHandle(h);
    memset(e, 0, sizeof(*e));
}

void shmc_plat_event_set(shmc_plat_event *e)
{
    SetEvent(event_of(e));
}

void shmc_plat_event_reset(shmc_plat_event *e)
{
    ResetEvent(event_of(e));
}

HRESULT shmc_plat_event_wait(shmc_plat_event *e, uint32_t timeout_ms)
{
    DWORD rc = WaitForSingleObject(event_of(e), timeout_ms);
    if (rc == WAIT_OBJECT_0)
        return S_OK;
    if (rc == WAIT_TIMEOUT)
        return S_FALSE;
    return shmc_win_last_error();
}

intptr_t shmc_plat_event_handle(const shmc_plat_event *e)
{
    return (intptr_t)event_of(e);
}
