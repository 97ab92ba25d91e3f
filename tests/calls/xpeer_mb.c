/*
 * xpeer_mb.c - see xpeer_mb.h.
 */
#define COBJMACROS
#include "xpeer_mb.h"

#include <string.h>

/* The mailbox a test is using (copied: the xpeer may be on the stack of a
 * test that failed), and the children it started, for xpeer_teardown. */
static struct {
    xpeer_mb *mb; /* (the region stays mapped after a failure) */
    char name[SHM_MAX_NAME + 1];
} current;
static shmc_plat_proc children[8];
static int nchildren;

void xpeer_spawn(shmc_plat_proc *p, const char *name, const char *arg)
{
    tsupport_spawn(p, name, arg);
    children[nchildren++ % 8] = *p; /* (the last 8) */
}

int xpeer_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < nchildren && i < 8; i++) {
        shmc_plat_proc p;
        if (SUCCEEDED(shmc_plat_proc_open(&p, &children[i].id))) {
            shmc_plat_proc_kill(&p); /* (gone already: nothing happens) */
            /* and gone before the next test takes its baseline */
            shmc_plat_proc_wait(&p, tsupport_ms(10000));
            shmc_plat_proc_close(&p);
        }
    }
    nchildren = 0;
    if (current.mb) { /* a test failed half way: leave no names behind */
        atomic_store(&current.mb->stop, 1);
        if (current.mb->stream2[0])
            shmc_plat_region_unlink(current.mb->stream2);
        shmc_plat_region_unlink(current.mb->stream);
        shmc_plat_region_unlink(current.name);
        current.mb = NULL;
    }
    return 0;
}

void xpeer_create(xpeer *x)
{
    memset(x, 0, sizeof(*x));
    tsupport_name(x->name, sizeof(x->name), "xpm");
    assert_hr(shmc_plat_region_create(&x->region, x->name, sizeof(xpeer_mb)), S_OK);
    x->mb = x->region.base;
    tsupport_name(x->mb->stream, sizeof(x->mb->stream), "xps");
    assert_hr(ShmCreateStreamOnSharedMemory(x->mb->stream, 64 * 1024, 0, &x->stream), S_OK);
    current.mb = x->mb;
    memcpy(current.name, x->name, sizeof(current.name));
}

void xpeer_free(xpeer *x)
{
    current.mb = NULL;
    IStream_Release(x->stream);
    shmc_plat_region_unlink(x->name);
    shmc_plat_region_close(&x->region);
}

bool xpeer_open(xpeer *x, const char *name)
{
    memset(x, 0, sizeof(*x));
    if (!name || FAILED(shmc_plat_region_open(&x->region, name)))
        return false;
    x->mb = x->region.base;
    char stream[SHM_MAX_NAME + 1];
    memcpy(stream, x->mb->stream, sizeof(stream));
    stream[SHM_MAX_NAME] = 0;
    if (FAILED(ShmOpenStreamOnSharedMemory(stream, 0, &x->stream))) {
        shmc_plat_region_close(&x->region);
        return false;
    }
    return true;
}

void xpeer_close(xpeer *x)
{
    IStream_Release(x->stream);
    shmc_plat_region_close(&x->region);
}

bool xpeer_await(_Atomic uint32_t *word, uint32_t value, uint32_t timeout_ms)
{
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(word) < value) {
        if (tsupport_ms_since(start) > timeout_ms)
            return false;
        shmc_plat_sleep_ms(1);
    }
    return true;
}
