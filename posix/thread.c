/*
 * thread.c - threads, thread-local storage, mutex and condition variable
 * on pthreads. Condition variables wait on CLOCK_MONOTONIC so that a
 * change of the wall clock cannot stretch or cut a timeout.
 */
#include "posix_impl.h"
#include "alloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

_Static_assert(sizeof(pthread_t) <= sizeof(((shmc_plat_thread *)0)->opaque), "thread");
_Static_assert(sizeof(pthread_key_t) <= sizeof(((shmc_plat_tls *)0)->opaque), "tls");
_Static_assert(sizeof(pthread_mutex_t) <= sizeof(((shmc_plat_mutex *)0)->opaque), "mutex");
_Static_assert(sizeof(pthread_cond_t) <= sizeof(((shmc_plat_cond *)0)->opaque), "cond");

typedef struct start_args {
    void (*fn)(void *);
    void *arg;
} start_args;

static void *thread_main(void *p)
{
    start_args a = *(start_args *)p;
    shmc_free(p);
    a.fn(a.arg);
    return NULL;
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
    pthread_t th;
    int rc = SHMC_ROUTE("pthread_create", pthread_create(&th, NULL, thread_main, a), errno);
    if (rc != 0) {
        shmc_free(a);
        return shmc_plat_hresult_from_os(rc);
    }
    memcpy(t->opaque, &th, sizeof(th));
    return S_OK;
}

void shmc_plat_thread_join(shmc_plat_thread *t)
{
    pthread_t th;
    memcpy(&th, t->opaque, sizeof(th));
    pthread_join(th, NULL);
    memset(t, 0, sizeof(*t));
}

void shmc_plat_thread_detach(shmc_plat_thread *t)
{
    pthread_t th;
    memcpy(&th, t->opaque, sizeof(th));
    pthread_detach(th);
    memset(t, 0, sizeof(*t));
}

uint64_t shmc_plat_thread_self_id(void)
{
    static SHMC_THREAD_LOCAL uint64_t tid;
    if (!tid)
        tid = (uint64_t)syscall(SYS_gettid);
    return tid;
}

void shmc_plat_thread_yield(void)
{
    sched_yield();
}

void shmc_plat_sleep_ms(uint32_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---- TLS --------------------------------------------------------------- */

HRESULT shmc_plat_tls_create(shmc_plat_tls *k, void (*dtor)(void *))
{
    pthread_key_t key;
    if (!k)
        return E_INVALIDARG;
    int rc = pthread_key_create(&key, dtor);
    if (rc != 0)
        return shmc_plat_hresult_from_os(rc);
    memcpy(k->opaque, &key, sizeof(key));
    return S_OK;
}

void shmc_plat_tls_destroy(shmc_plat_tls *k)
{
    pthread_key_t key;
    memcpy(&key, k->opaque, sizeof(key));
    pthread_key_delete(key);
}

void *shmc_plat_tls_get(const shmc_plat_tls *k)
{
    pthread_key_t key;
    memcpy(&key, k->opaque, sizeof(key));
    return pthread_getspecific(key);
}

HRESULT shmc_plat_tls_set(shmc_plat_tls *k, void *value)
{
    pthread_key_t key;
    memcpy(&key, k->opaque, sizeof(key));
    int rc = pthread_setspecific(key, value);
    return rc == 0 ? S_OK : shmc_plat_hresult_from_os(rc);
}

static SHMC_THREAD_LOCAL void *fast_tls;

void *shmc_plat_fast_tls_get(void)
{
    return fast_tls;
}

bool shmc_plat_fast_tls_set(void *value)
{
    fast_tls = value;
    return true;
}

/* ---- mutex and condition variable ------------------------------------- */

static pthread_mutex_t *mx(shmc_plat_mutex *m)
{
    return (pthread_mutex_t *)(void *)m->opaque;
}

static pthread_cond_t *cv(shmc_plat_cond *c)
{
    return (pthread_cond_t *)(void *)c->opaque;
}

void shmc_plat_mutex_init(shmc_plat_mutex *m)
{
    pthread_mutex_init(mx(m), NULL);
}

void shmc_plat_mutex_fini(shmc_plat_mutex *m)
{
    static const shmc_plat_mutex zero;
    if (memcmp(m, &zero, sizeof(zero)) != 0)
        pthread_mutex_destroy(mx(m));
    memset(m, 0, sizeof(*m));
}

void shmc_plat_mutex_lock(shmc_plat_mutex *m)
{
    pthread_mutex_lock(mx(m));
}

void shmc_plat_mutex_unlock(shmc_plat_mutex *m)
{
    pthread_mutex_unlock(mx(m));
}

void shmc_plat_cond_init(shmc_plat_cond *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(cv(c), &a);
    pthread_condattr_destroy(&a);
}

void shmc_plat_cond_fini(shmc_plat_cond *c)
{
    static const shmc_plat_cond zero;
    if (memcmp(c, &zero, sizeof(zero)) != 0)
        pthread_cond_destroy(cv(c));
    memset(c, 0, sizeof(*c));
}

HRESULT shmc_plat_cond_wait(shmc_plat_cond *c, shmc_plat_mutex *m, uint32_t timeout_ms)
{
    if (timeout_ms == SHMC_PLAT_INFINITE) {
        pthread_cond_wait(cv(c), mx(m));
        return S_OK;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    int rc = pthread_cond_timedwait(cv(c), mx(m), &ts);
    return rc == ETIMEDOUT ? S_FALSE : S_OK;
}

void shmc_plat_cond_signal(shmc_plat_cond *c)
{
    pthread_cond_signal(cv(c));
}

void shmc_plat_cond_broadcast(shmc_plat_cond *c)
{
    pthread_cond_broadcast(cv(c));
}

/* ---- once ----------------------------------------------------------------- */

_Static_assert(sizeof(pthread_once_t) <= sizeof(((shmc_plat_once *)0)->opaque), "once");
/* SHMC_PLAT_ONCE_INIT (all zero bytes) must be PTHREAD_ONCE_INIT. */
_Static_assert(PTHREAD_ONCE_INIT == 0, "pthread_once_t must start zeroed");

void shmc_plat_once_run(shmc_plat_once *once, void (*fn)(void))
{
    pthread_once((pthread_once_t *)(void *)once->opaque, fn);
}
