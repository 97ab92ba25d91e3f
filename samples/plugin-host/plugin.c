/*
 * plugin.c - checksum-plugin, the plugin process that plugin-host starts.
 *
 *   checksum-plugin --stream NAME --id K [--crash-at N | --hang-at N]
 *
 * It opens the shared-memory stream NAME that the host created, unmarshals
 * the IHost the host put there, makes its IPlugin object and hands it to
 * the host with IHost::Register. Then it serves the host's calls until the
 * host lets go of the object (or the host's process ends, which releases
 * it too), and exits.
 *
 * --crash-at N and --hang-at N are the faults the host's demo asks for:
 * in the middle of its N-th ProcessItem call, the plugin aborts, or stops
 * answering for ever.
 */
#define COBJMACROS
#define CONST_VTABLE
#include "plugin.h"
#include "sample_os.h"
#include "work.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How many progress reports a plugin sends per item. */
#define PROGRESS_STEPS 8

static const char *me = "checksum-plugin";

/* Appends the decimal digits of v at *at. */
static void put_ulong(char **at, unsigned long v)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *(*at)++ = digits[--n];
}

/* The last words of the plugin made to crash or hang, written with fputs
 * rather than fprintf: under Valgrind 3.19, once in about seven runs,
 * memcheck reported accesses inside vfprintf's own stack frame as invalid
 * in this process, on these lines (the crash's, right before its abort(),
 * and the hang's, right before it sleeps until it is killed), and nowhere
 * else, nor under ASan. The cause is not known. */
static void say_last_words(unsigned long item, const char *doing)
{
    char line[128], *at = line;
    size_t len = strlen(me);
    memcpy(at, me, len);
    at += len;
    *at++ = ' ';
    put_ulong(&at, sample_self_pid());
    static const char colon[] = ": ", mid[] = " in the middle of item ";
    memcpy(at, colon, sizeof(colon) - 1);
    at += sizeof(colon) - 1;
    len = strlen(doing);
    memcpy(at, doing, len);
    at += len;
    memcpy(at, mid, sizeof(mid) - 1);
    at += sizeof(mid) - 1;
    put_ulong(&at, item);
    static const char end[] = ", as asked\n";
    memcpy(at, end, sizeof(end));
    fputs(line, stderr);
    fflush(stderr);
}

/* ---- the plugin object ------------------------------------------------------ */

typedef struct plugin {
    IPlugin IPlugin_iface;
    LONG refs;   /* only this process's STA thread touches the object */
    IHost *host; /* our site in the host (a proxy), for progress reports */
    ULONG calls; /* ProcessItem calls so far */
    ULONG crash_at, hang_at;
} plugin;

/* Set when the last reference to the plugin is gone: the host let go. */
static int plugin_released;

static plugin *impl_from_IPlugin(IPlugin *iface)
{
    return (plugin *)((char *)iface - offsetof(plugin, IPlugin_iface));
}

static HRESULT STDMETHODCALLTYPE plugin_QueryInterface(IPlugin *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IPlugin)) {
        *ppv = iface;
        IPlugin_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE plugin_AddRef(IPlugin *iface)
{
    return (ULONG)++impl_from_IPlugin(iface)->refs;
}

static ULONG STDMETHODCALLTYPE plugin_Release(IPlugin *iface)
{
    plugin *p = impl_from_IPlugin(iface);
    LONG left = --p->refs;
    if (left == 0) {
        free(p);
        plugin_released = 1;
    }
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE plugin_GetInfo(IPlugin *iface, char **name, ULONG *pid)
{
    (void)iface;
    *name = ShmCoTaskMemAlloc(strlen(me) + 1);
    if (!*name)
        return E_OUTOFMEMORY;
    strcpy(*name, me);
    *pid = (ULONG)sample_self_pid();
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE plugin_ProcessItem(IPlugin *iface, const WORK_ITEM *item, ULONG n,
                                                    const ULONG *samples, WORK_RESULT *result)
{
    plugin *p = impl_from_IPlugin(iface);
    if (item->count != n)
        return E_INVALIDARG;
    p->calls++;
    /* Progress reports are calls out of this STA, during which the host's
     * calls can come in, its last Release too (if it gave up on this call):
     * hold the object until we are done with it. */
    IPlugin_AddRef(iface);
    work_begin(result, item->id);
    for (ULONG step = 0; step < PROGRESS_STEPS; step++) {
        ULONG from = (ULONG)((uint64_t)n * step / PROGRESS_STEPS);
        ULONG to = (ULONG)((uint64_t)n * (step + 1) / PROGRESS_STEPS);
        work_fold(result, samples, from, to, item->rounds);
        /* A progress report is a call into the host while the host's call
         * into us is still running: a callback. A failed report does not
         * stop the work (the host may be gone; the reply will say so). */
        IHost_Progress(p->host, item->id, step + 1, PROGRESS_STEPS);
        if (step + 1 == PROGRESS_STEPS / 2 && p->calls == p->crash_at) {
            say_last_words(item->id, "crashing");
            abort();
        }
        if (step + 1 == PROGRESS_STEPS / 2 && p->calls == p->hang_at) {
            say_last_words(item->id, "hanging");
            for (;;)
                sample_sleep_ms(1000);
        }
    }
    IPlugin_Release(iface);
    return S_OK;
}

static const IPluginVtbl plugin_vtbl = {
    plugin_QueryInterface, plugin_AddRef, plugin_Release, plugin_GetInfo, plugin_ProcessItem,
};

/* ---- main ----------------------------------------------------------------------- */

static int usage(void)
{
    fprintf(stderr, "usage: %s --stream NAME --id K [--crash-at N | --hang-at N]\n", me);
    return 2;
}

static int fail(const char *what, HRESULT hr)
{
    fprintf(stderr, "%s %lu: %s failed: %s\n", me, sample_self_pid(), what, sample_hr(hr));
    return 1;
}

int main(int argc, char **argv)
{
    const char *stream_name = NULL;
    unsigned long id = 0, crash_at = 0, hang_at = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--stream"))
            stream_name = argv[i + 1];
        else if (!strcmp(argv[i], "--id"))
            id = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--crash-at"))
            crash_at = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--hang-at"))
            hang_at = strtoul(argv[i + 1], NULL, 10);
        else
            return usage();
    }
    if (!stream_name || !id || argc % 2 == 0)
        return usage();

    /*
     * The plugin lives in a single-threaded apartment: every call the host
     * makes runs on this thread, one at a time, inside ShmCoProcessCalls
     * below. So the plugin's code needs no locks (its reference count is
     * a plain integer), as a plugin author would expect. An MTA would run
     * calls on the runtime's threads instead, concurrently, and the main
     * thread would have nothing to do but wait.
     */
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(hr))
        return fail("ShmCoInitializeEx", hr);
    int rc = 1;
    IStream *stream = NULL;
    IHost *host = NULL;
    if (FAILED(hr = ShmCoRegisterProxyStubs(&plugin_ProxyFileInfo))) {
        fail("ShmCoRegisterProxyStubs", hr);
        goto uninit;
    }

    /* The host's site: its record waits in the stream the host named. */
    if (FAILED(hr = ShmOpenStreamOnSharedMemory(stream_name, 0, &stream))) {
        fail("ShmOpenStreamOnSharedMemory", hr);
        goto uninit;
    }
    hr = ShmCoUnmarshalInterface(stream, &IID_IHost, (void **)&host);
    IStream_Release(stream);
    if (FAILED(hr)) {
        fail("ShmCoUnmarshalInterface(IHost)", hr);
        goto uninit;
    }

    plugin *p = calloc(1, sizeof(*p));
    if (!p) {
        fail("calloc", E_OUTOFMEMORY);
        goto release_host;
    }
    p->IPlugin_iface.lpVtbl = &plugin_vtbl;
    p->refs = 1;
    p->host = host;
    p->crash_at = (ULONG)crash_at;
    p->hang_at = (ULONG)hang_at;

    /* An [in] interface pointer is marshaled by the runtime: the host gets
     * a proxy to our object and keeps it; our own reference goes. */
    hr = IHost_Register(host, &p->IPlugin_iface);
    IPlugin_Release(&p->IPlugin_iface);
    if (FAILED(hr)) {
        fail("IHost::Register", hr);
        goto release_host;
    }

    /* Serve until the host lets go of the plugin. If the host's process
     * dies, the runtime releases what it held, which ends the loop too. */
    while (!plugin_released) {
        hr = ShmCoProcessCalls(1000);
        if (FAILED(hr)) {
            fail("ShmCoProcessCalls", hr);
            goto release_host;
        }
    }
    rc = 0;
release_host:
    IHost_Release(host);
uninit:
    ShmCoUninitialize();
    return rc;
}
