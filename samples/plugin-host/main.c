/*
 * plugin-host - a host that runs its plugins in child processes and
 * survives the ones that crash or hang.
 *
 *   plugin-host [--plugins N] [--items M] [--samples S] [--rounds R]
 *               [--timeout-ms T] [--start-ms S] [--crash-plugin K] [--hang-plugin K]
 *
 * The host starts N processes of checksum-plugin (plugin.c). Each gets its
 * own IHost object (a "site": the host knows which plugin calls it by the
 * object it calls), marshaled with MSHCTX_LOCAL into a shared-memory
 * stream whose name is on the plugin's command line. The plugin unmarshals
 * its IHost and registers its IPlugin through it; the runtime marshals that
 * [in] interface pointer back to the host.
 *
 * Then the job runs: M work items (each S samples, pointer-free structs and
 * arrays) are shared out to the plugins, one worker thread per plugin
 * sending items to it through IPlugin::ProcessItem. Plugins report their
 * progress through IHost::Progress (a callback during the call) and return
 * a checksum and a histogram, which the host recomputes on its own.
 *
 * Faults: --crash-plugin K makes plugin K abort in the middle of its second
 * item: the host's call returns RPC_E_SERVER_DIED, the host restarts the
 * plugin and sends the item again. --hang-plugin K makes it stop answering:
 * the host's call timeout (ShmCoSetCallTimeout) ends the call with
 * RPC_E_TIMEOUT, and the host kills the plugin and restarts it. Either way
 * the job finishes with every item done once and checked.
 *
 * --start-ms S: how long a plugin may take to start and register (20 s;
 * longer where processes start slowly, as under Valgrind).
 *
 * Exit code: 0 when every item was processed and every result matched the
 * host's own computation, 1 otherwise.
 */
#define COBJMACROS
#define CONST_VTABLE
#include "plugin.h"
#include "sample_os.h"
#include "work.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PLUGINS  16
#define MAX_RESTARTS 3     /* per plugin, before the host gives up on it */
#define EXIT_MS      10000 /* how long a released plugin may take to exit */

typedef struct job job;
typedef struct slot slot;

/* ---- output ------------------------------------------------------------------- */

static double start_ms;

/* One line of output, whole (workers print at the same time). */
#if defined(__GNUC__)
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    printf("[%6.2f s] %s\n", (sample_now_ms() - start_ms) / 1000.0, line);
    fflush(stdout);
}

/* ---- the job and its plugins ------------------------------------------------ */

enum slot_state { SLOT_STARTING, SLOT_WORKING, SLOT_CHECKING, SLOT_RESTARTING, SLOT_DONE };

/* One plugin position. Its worker thread owns the plain fields; the
 * atomics are also written by the site (IHost calls, on the runtime's
 * threads) and read by the main thread for the progress line. */
struct slot {
    job *job;
    unsigned index; /* 1..N, as the user counts */
    sample_thread thread;
    sample_proc proc;     /* the plugin's current process */
    IPlugin *plugin;      /* proxy to its IPlugin (this process's MTA) */
    IHost *site;          /* our reference to its current site */
    unsigned incarnation; /* 1 for the first process, 2 after a restart... */
    unsigned restarts;
    unsigned long pid;
    const char *fault;     /* what the last restart was for */
    ULONG *samples;        /* the item being sent */
    _Atomic unsigned live; /* the incarnation whose reports count */
    _Atomic int state;
    _Atomic unsigned item; /* item being processed, + 1 (0: none) */
    _Atomic unsigned done; /* its progress, as last reported */
    _Atomic unsigned total;
    _Atomic uint64_t last_report_us; /* when that report came (since start) */
    _Atomic unsigned items_done;
};

struct job {
    unsigned plugins, items, samples, rounds, timeout_ms, start_ms, crash, hang;
    char plugin_exe[4096];
    slot slots[MAX_PLUGINS];
    _Atomic unsigned next_item; /* the next item nobody has taken */
    _Atomic unsigned items_done;
    _Atomic unsigned workers_done;
    _Atomic int failed;
    WORK_RESULT *got;      /* per item: the plugin's answer */
    WORK_RESULT *expected; /* per item: the host's own computation */
    unsigned *times_done;  /* per item: how often a result was accepted */
};

/* ---- the site: one IHost per plugin process --------------------------------------- */

typedef struct site {
    IHost IHost_iface;
    _Atomic LONG refs;
    slot *slot;
    unsigned incarnation;
    _Atomic(IPlugin *) plugin; /* what the plugin registered, until taken */
} site;

/* Sites alive: all gone at the end, or a reference leaked somewhere. */
static _Atomic int live_sites;

static site *impl_from_IHost(IHost *iface)
{
    return (site *)((char *)iface - offsetof(site, IHost_iface));
}

static HRESULT STDMETHODCALLTYPE site_QueryInterface(IHost *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IHost)) {
        *ppv = iface;
        IHost_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE site_AddRef(IHost *iface)
{
    return (ULONG)atomic_fetch_add(&impl_from_IHost(iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE site_Release(IHost *iface)
{
    site *s = impl_from_IHost(iface);
    LONG left = atomic_fetch_sub(&s->refs, 1) - 1;
    if (left == 0) {
        /* a plugin that registered after the host gave up on it */
        IPlugin *late = atomic_exchange(&s->plugin, NULL);
        if (late)
            IPlugin_Release(late);
        free(s);
        atomic_fetch_sub(&live_sites, 1);
    }
    return (ULONG)left;
}

/* Runs on one of the runtime's threads (the host is in the MTA). */
static HRESULT STDMETHODCALLTYPE site_Register(IHost *iface, IPlugin *plugin)
{
    site *s = impl_from_IHost(iface);
    if (!plugin)
        return E_POINTER;
    IPlugin *none = NULL;
    IPlugin_AddRef(plugin); /* the proxy lives on after the call: keep it */
    if (!atomic_compare_exchange_strong(&s->plugin, &none, plugin)) {
        IPlugin_Release(plugin);
        return E_UNEXPECTED; /* registered already */
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE site_Progress(IHost *iface, ULONG item, ULONG done, ULONG total)
{
    site *s = impl_from_IHost(iface);
    slot *sl = s->slot;
    /* only the current process's reports about the current item count */
    if (atomic_load(&sl->live) == s->incarnation && atomic_load(&sl->item) == item + 1) {
        atomic_store(&sl->done, done);
        atomic_store(&sl->total, total);
        atomic_store(&sl->last_report_us, (uint64_t)((sample_now_ms() - start_ms) * 1000.0));
    }
    return S_OK;
}

static const IHostVtbl site_vtbl = {
    site_QueryInterface, site_AddRef, site_Release, site_Register, site_Progress,
};

static site *site_new(slot *sl)
{
    site *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->IHost_iface.lpVtbl = &site_vtbl;
    atomic_init(&s->refs, 1);
    s->slot = sl;
    s->incarnation = sl->incarnation;
    atomic_fetch_add(&live_sites, 1);
    return s;
}

/* ---- starting and stopping a plugin ------------------------------------------------ */

/* Starts a plugin process for the slot and waits until it has registered.
 * 0 on success (sl->plugin, sl->site, sl->proc set). */
static int plugin_start(slot *sl)
{
    job *j = sl->job;
    IStream *stream = NULL;
    HRESULT hr;
    char name[SHM_MAX_NAME + 1], id[16], fault_at[16] = "";
    int rc = -1;

    sl->incarnation++;
    atomic_store(&sl->live, sl->incarnation);
    site *s = site_new(sl);
    if (!s)
        return -1;

    /* A stream just big enough for one record, under a fresh unguessable
     * name; the plugin finds it by the name on its command line. */
    ULONG size = 0;
    hr = ShmCoGetMarshalSizeMax(&size, &IID_IHost, (IUnknown *)&s->IHost_iface, MSHCTX_LOCAL, NULL,
                                MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr))
        hr = ShmCreateStreamOnSharedMemory(NULL, size, 0, &stream);
    if (SUCCEEDED(hr))
        hr = ShmCoMarshalInterface(stream, &IID_IHost, (IUnknown *)&s->IHost_iface, MSHCTX_LOCAL,
                                   NULL, MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr))
        hr = sample_stream_name(stream, name, sizeof(name));
    if (FAILED(hr)) {
        say("plugin %u: cannot marshal its IHost: %s", sl->index, sample_hr(hr));
        goto out;
    }

    /* The faults the user asked for happen in the first process only. */
    snprintf(id, sizeof(id), "%u", sl->index);
    const char *argv[] = {j->plugin_exe, "--stream", name, "--id", id, NULL, NULL, NULL};
    if (sl->incarnation == 1 && (sl->index == j->crash || sl->index == j->hang)) {
        snprintf(fault_at, sizeof(fault_at), "2"); /* its second item */
        argv[5] = sl->index == j->crash ? "--crash-at" : "--hang-at";
        argv[6] = fault_at;
    }
    if (sample_proc_start(&sl->proc, argv) != 0) {
        say("plugin %u: cannot start %s", sl->index, j->plugin_exe);
        goto out;
    }

    /* Wait for IHost::Register, or for the process to end first. */
    double t0 = sample_now_ms();
    while (!atomic_load(&s->plugin)) {
        if (sample_proc_wait(&sl->proc, 0) != 0) {
            say("plugin %u: pid %lu exited with code %d before it registered", sl->index,
                sl->proc.pid, sl->proc.exit_code);
            goto close;
        }
        if (sample_now_ms() - t0 > j->start_ms) {
            say("plugin %u: pid %lu did not register within %u ms", sl->index, sl->proc.pid,
                j->start_ms);
            sample_proc_kill(&sl->proc);
            sample_proc_wait(&sl->proc, EXIT_MS);
            goto close;
        }
        sample_sleep_ms(1);
    }
    sl->plugin = atomic_exchange(&s->plugin, NULL);
    sl->site = &s->IHost_iface;
    s = NULL;

    char *plugin_name = NULL;
    ULONG pid = 0;
    hr = IPlugin_GetInfo(sl->plugin, &plugin_name, &pid);
    if (FAILED(hr)) {
        say("plugin %u: GetInfo failed: %s", sl->index, sample_hr(hr));
        goto out;
    }
    sl->pid = pid;
    say("plugin %u: %s started, pid %lu", sl->index, plugin_name, (unsigned long)pid);
    ShmCoTaskMemFree(plugin_name);
    rc = 0;
    goto out;
close:
    sample_proc_close(&sl->proc);
out:
    if (stream) {
        /* The record's reference, if the plugin never took it. (Once the
         * plugin has unmarshaled it, this finds it used up.) */
        if (rc != 0) {
            LARGE_INTEGER zero = {0};
            IStream_Seek(stream, zero, STREAM_SEEK_SET, NULL);
            ShmCoReleaseMarshalData(stream);
        }
        IStream_Release(stream); /* the name goes; the plugin has opened it */
    }
    if (s)
        IHost_Release(&s->IHost_iface);
    return rc;
}

/* Lets go of the slot's plugin; its process exits when it sees that. kill:
 * end the process first (it hangs). */
static void plugin_stop(slot *sl, int kill)
{
    if (kill)
        sample_proc_kill(&sl->proc);
    if (sl->plugin) {
        IPlugin_Release(sl->plugin); /* also fine on a proxy to a dead process */
        sl->plugin = NULL;
    }
    if (sl->site) {
        IHost_Release(sl->site);
        sl->site = NULL;
    }
    if (!sl->proc.handle)
        return; /* no process (it never started, or is reaped already) */
    if (sample_proc_wait(&sl->proc, EXIT_MS) == 0) {
        say("plugin %u: pid %lu did not exit; killing it", sl->index, sl->proc.pid);
        sample_proc_kill(&sl->proc);
        sample_proc_wait(&sl->proc, EXIT_MS);
    }
    if (sl->proc.exit_code != 0)
        say("plugin %u: pid %lu exited with code %d", sl->index, sl->proc.pid, sl->proc.exit_code);
    sample_proc_close(&sl->proc);
}

/* ---- a worker: one per plugin --------------------------------------------------------- */

static void check_result(slot *sl, unsigned item, const WORK_RESULT *r)
{
    job *j = sl->job;
    WORK_RESULT *e = &j->expected[item];
    work_begin(e, item);
    work_fold(e, sl->samples, 0, j->samples, j->rounds);
    j->got[item] = *r;
    j->times_done[item]++;
    if (memcmp(e, r, sizeof(*e)) != 0) {
        say("plugin %u: item %u: WRONG result (checksum %016llx, expected %016llx)", sl->index,
            item, (unsigned long long)r->checksum, (unsigned long long)e->checksum);
        atomic_store(&j->failed, 1);
    }
}

static void worker_main(void *arg)
{
    slot *sl = arg;
    job *j = sl->job;
    HRESULT hr;

    /* The host is in the multithreaded apartment: the proxies that the
     * runtime makes for it (the plugins' IPlugin, from IHost::Register on
     * the runtime's threads) work on every thread of the process, and the
     * sites' methods run on the runtime's threads while workers wait. */
    ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    ShmCoSetCallTimeout(j->timeout_ms); /* for this thread's calls */
    if (plugin_start(sl) != 0) {
        atomic_store(&j->failed, 1);
        plugin_stop(sl, 1);
        goto out;
    }
    atomic_store(&sl->state, SLOT_WORKING);

    unsigned item = 0, attempt = 0;
    for (;;) {
        if (attempt == 0) {
            item = atomic_fetch_add(&j->next_item, 1);
            if (item >= j->items)
                break;
        }
        attempt++;
        WORK_ITEM wi = {item, attempt, j->samples, j->rounds};
        WORK_RESULT r;
        work_make_samples(item, sl->samples, j->samples);
        atomic_store(&sl->done, 0);
        atomic_store(&sl->item, item + 1);
        if (attempt > 1)
            say("plugin %u: item %u again (attempt %u)", sl->index, item, attempt);
        hr = IPlugin_ProcessItem(sl->plugin, &wi, j->samples, sl->samples, &r);
        double now_ms = sample_now_ms() - start_ms;
        if (SUCCEEDED(hr)) {
            atomic_store(&sl->state, SLOT_CHECKING);
            check_result(sl, item, &r);
            atomic_store(&sl->state, SLOT_WORKING);
            atomic_store(&sl->item, 0);
            atomic_fetch_add(&sl->items_done, 1);
            atomic_fetch_add(&j->items_done, 1);
            attempt = 0;
            continue;
        }
        if (hr == RPC_E_SERVER_DIED) {
            double since = now_ms - (double)atomic_load(&sl->last_report_us) / 1000.0;
            say("plugin %u: item %u failed: RPC_E_SERVER_DIED (the plugin process died; "
                "the call returned %.1f ms after its last progress report)",
                sl->index, item, since);
            sl->fault = "crashed";
        } else if (hr == RPC_E_TIMEOUT) {
            say("plugin %u: item %u failed: RPC_E_TIMEOUT (no answer within %u ms); "
                "killing pid %lu",
                sl->index, item, j->timeout_ms, sl->pid);
            sl->fault = "hung";
        } else {
            atomic_store(&sl->item, 0);
            say("plugin %u: item %u failed: %s", sl->index, item, sample_hr(hr));
            atomic_store(&j->failed, 1);
            break;
        }
        atomic_store(&sl->item, 0);
        atomic_store(&sl->state, SLOT_RESTARTING);
        plugin_stop(sl, hr == RPC_E_TIMEOUT);
        if (++sl->restarts > MAX_RESTARTS) {
            say("plugin %u: restarted %u times already; giving up", sl->index, MAX_RESTARTS);
            atomic_store(&j->failed, 1);
            goto out;
        }
        say("plugin %u: restarting it (restart %u)", sl->index, sl->restarts);
        if (plugin_start(sl) != 0) {
            atomic_store(&j->failed, 1);
            plugin_stop(sl, 1);
            goto out;
        }
        atomic_store(&sl->state, SLOT_WORKING);
    }
    plugin_stop(sl, 0);
out:
    atomic_store(&sl->state, SLOT_DONE);
    ShmCoUninitialize();
    atomic_fetch_add(&j->workers_done, 1);
}

/* ---- main ----------------------------------------------------------------------------- */

/* One line: how far the job is, and what each plugin does (unless it is
 * what the last line said, less than a second ago). */
static void print_progress(job *j)
{
    static char last[512];
    static double last_ms;
    char line[512];
    int n = snprintf(line, sizeof(line), "%3u/%u items |", atomic_load(&j->items_done), j->items);
    for (unsigned i = 0; i < j->plugins && n > 0 && (size_t)n < sizeof(line); i++) {
        slot *sl = &j->slots[i];
        unsigned item = atomic_load(&sl->item), done = atomic_load(&sl->done),
                 total = atomic_load(&sl->total);
        size_t room = sizeof(line) - (size_t)n;
        switch (atomic_load(&sl->state)) {
        case SLOT_STARTING:
            n += snprintf(line + n, room, " #%u starting |", sl->index);
            break;
        case SLOT_RESTARTING:
            n += snprintf(line + n, room, " #%u restarting |", sl->index);
            break;
        case SLOT_DONE:
            n += snprintf(line + n, room, " #%u done |", sl->index);
            break;
        case SLOT_CHECKING:
            n += snprintf(line + n, room, " #%u item %u checking |", sl->index, item - 1);
            break;
        default:
            if (item)
                n += snprintf(line + n, room, " #%u item %u %3u%% |", sl->index, item - 1,
                              total ? done * 100 / total : 0);
            else
                n += snprintf(line + n, room, " #%u idle |", sl->index);
        }
    }
    if (strcmp(line, last) != 0 || sample_now_ms() - last_ms >= 1000) {
        say("%s", line);
        memcpy(last, line, sizeof(last));
        last_ms = sample_now_ms();
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: plugin-host [--plugins N] [--items M] [--samples S] [--rounds R]\n"
                    "                   [--timeout-ms T] [--start-ms S] [--crash-plugin K]\n"
                    "                   [--hang-plugin K]\n"
                    "                   [--plugin-exe PATH]\n");
    return 2;
}

static int parse_args(job *j, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[i + 1];
        unsigned long n = strtoul(v, NULL, 10);
        if (!strcmp(argv[i], "--plugins"))
            j->plugins = (unsigned)n;
        else if (!strcmp(argv[i], "--items"))
            j->items = (unsigned)n;
        else if (!strcmp(argv[i], "--samples"))
            j->samples = (unsigned)n;
        else if (!strcmp(argv[i], "--rounds"))
            j->rounds = (unsigned)n;
        else if (!strcmp(argv[i], "--timeout-ms"))
            j->timeout_ms = (unsigned)n;
        else if (!strcmp(argv[i], "--start-ms"))
            j->start_ms = (unsigned)n;
        else if (!strcmp(argv[i], "--crash-plugin"))
            j->crash = (unsigned)n;
        else if (!strcmp(argv[i], "--hang-plugin"))
            j->hang = (unsigned)n;
        else if (!strcmp(argv[i], "--plugin-exe"))
            snprintf(j->plugin_exe, sizeof(j->plugin_exe), "%s", v);
        else
            return -1;
    }
    if (j->plugins < 1 || j->plugins > MAX_PLUGINS || j->items < 1 || j->samples < 1 ||
        j->samples > (1u << 26) || j->timeout_ms < 1 || j->start_ms < 1 || j->crash > j->plugins ||
        j->hang > j->plugins)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static job job_; /* big: not on the stack */
    job *j = &job_;
    j->plugins = 3;
    j->items = 48;
    j->samples = 65536;
    j->rounds = 128;
    j->timeout_ms = 2000;
    j->start_ms = 20000;
    if (parse_args(j, argc, argv) != 0)
        return usage();
    if (!j->plugin_exe[0] &&
        sample_sibling_path(j->plugin_exe, sizeof(j->plugin_exe), "checksum-plugin") != 0) {
        fprintf(stderr, "plugin-host: cannot find checksum-plugin next to this program\n");
        return 1;
    }
    start_ms = sample_now_ms();

    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(hr))
        hr = ShmCoRegisterProxyStubs(&plugin_ProxyFileInfo);
    if (FAILED(hr)) {
        fprintf(stderr, "plugin-host: cannot set up shmcom: %s\n", sample_hr(hr));
        return 1;
    }
    j->got = calloc(j->items, sizeof(*j->got));
    j->expected = calloc(j->items, sizeof(*j->expected));
    j->times_done = calloc(j->items, sizeof(*j->times_done));
    if (!j->got || !j->expected || !j->times_done) {
        fprintf(stderr, "plugin-host: out of memory\n");
        return 1;
    }

    say("plugin-host: %u plugin processes, %u items of %u samples (%.0f KiB each), "
        "call timeout %u ms",
        j->plugins, j->items, j->samples, j->samples * 4.0 / 1024, j->timeout_ms);
    if (j->crash)
        say("plugin %u will crash in the middle of its second item (--crash-plugin)", j->crash);
    if (j->hang)
        say("plugin %u will hang in the middle of its second item (--hang-plugin)", j->hang);

    unsigned started = 0;
    for (unsigned i = 0; i < j->plugins; i++) {
        slot *sl = &j->slots[i];
        sl->job = j;
        sl->index = i + 1;
        sl->samples = malloc((size_t)j->samples * sizeof(ULONG));
        if (!sl->samples || sample_thread_start(&sl->thread, worker_main, sl) != 0) {
            atomic_store(&j->failed, 1);
            break;
        }
        started++;
    }

    /* Progress every quarter second while the workers run. */
    double last = sample_now_ms();
    while (atomic_load(&j->workers_done) < started) {
        sample_sleep_ms(10);
        if (sample_now_ms() - last >= 250) {
            print_progress(j);
            last = sample_now_ms();
        }
    }
    double elapsed_s = (sample_now_ms() - start_ms) / 1000.0;
    for (unsigned i = 0; i < started; i++)
        sample_thread_join(&j->slots[i].thread);

    /* The plugins' references to their sites go when they exit (at once
     * for a plugin that released them, by the runtime's clean-up for one
     * that died): wait for that, bounded. */
    double t0 = sample_now_ms();
    while (atomic_load(&live_sites) > 0 && sample_now_ms() - t0 < 5000)
        sample_sleep_ms(1);

    /* The summary: every item once, every result as the host computed it. */
    unsigned done = 0, wrong = 0, restarts = 0;
    ULONGLONG sum_got = 0, sum_expected = 0;
    for (unsigned i = 0; i < j->items; i++) {
        if (j->times_done[i] == 1)
            done++;
        if (memcmp(&j->got[i], &j->expected[i], sizeof(WORK_RESULT)) != 0)
            wrong++;
        sum_got = sum_got * 31 + j->got[i].checksum;
        sum_expected = sum_expected * 31 + j->expected[i].checksum;
    }
    for (unsigned i = 0; i < started; i++)
        restarts += j->slots[i].restarts;
    printf("\nsummary: %u/%u items done in %.2f s by %u plugin processes (%u restart%s)\n", done,
           j->items, elapsed_s, j->plugins, restarts, restarts == 1 ? "" : "s");
    for (unsigned i = 0; i < started; i++) {
        slot *sl = &j->slots[i];
        printf("  plugin %u: %3u items", sl->index, atomic_load(&sl->items_done));
        if (sl->restarts)
            printf(", restarted %u time%s (it %s)", sl->restarts, sl->restarts == 1 ? "" : "s",
                   sl->fault);
        printf("\n");
        free(sl->samples);
    }
    int ok = !atomic_load(&j->failed) && done == j->items && wrong == 0;
    printf("  job checksum %016llx, host's own %016llx: %s\n", (unsigned long long)sum_got,
           (unsigned long long)sum_expected,
           sum_got == sum_expected && wrong == 0 ? "match" : "MISMATCH");
    printf("  host objects still alive: %d\n", atomic_load(&live_sites));
    ok = ok && atomic_load(&live_sites) == 0;
    printf("plugin-host: %s\n", ok ? "PASS" : "FAILED");

    free(j->got);
    free(j->expected);
    free(j->times_done);
    ShmCoUninitialize();
    return ok ? 0 : 1;
}
