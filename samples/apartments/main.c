/*
 * apartments - a GUI-style thread owns an object; worker threads call it.
 *
 *   apartments [--workers N] [--posts M]
 *
 * The main thread plays a GUI thread: it enters a single-threaded
 * apartment (STA) and owns a status view object (view.idl). The view's
 * state is plain memory without locks: in an STA, every call to the object
 * runs on the owning thread, one at a time, in the order it arrived.
 *
 * N worker threads (in the multithreaded apartment) each get a proxy to the
 * view (ShmCoMarshalInterThreadInterfaceInStream on the GUI thread,
 * ShmCoGetInterfaceAndReleaseStream on the worker) and post M progress
 * reports through it, then ask the view how many of theirs it saw.
 *
 * The GUI thread never blocks in shmcom: it runs an ordinary event loop
 * (poll on POSIX, MsgWaitForMultipleObjects on Windows) over the
 * apartment's wait handle (ShmCoGetApartmentWaitHandle), its own event
 * source (a pipe, or the thread's message queue, through which workers say
 * they are done) and a 100 ms timer that "repaints" the view. When the
 * handle is ready it calls ShmCoProcessCalls(0), which runs the calls that
 * wait and returns at once.
 *
 * Exit code 0 when every post arrived, in order, on the GUI thread, and
 * the view was released in the end.
 */
#define COBJMACROS
#define CONST_VTABLE
#ifdef _WIN32
#include <windows.h>
#else
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#endif

#include "sample_os.h"
#include "view.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 16
#define TICK_MS     100

static double start_ms;

/* 1 on the GUI thread only: lets the view check where its calls run. */
static _Thread_local int on_gui_thread;

/* ---- the view: owned by the GUI thread's STA ------------------------------------ */

typedef struct view {
    IStatusView IStatusView_iface;
    _Atomic LONG refs;
    /* Only ever touched on the GUI thread: no locks. */
    ULONG workers;
    ULONG count[MAX_WORKERS];
    ULONG last_step[MAX_WORKERS];
    double sum[MAX_WORKERS];
    ULONG posts;
    ULONG out_of_order; /* a worker's steps arrived in another order */
    ULONG off_thread;   /* a call ran on another thread than the GUI's */
} view;

static int view_destroyed;

static view *impl_from_IStatusView(IStatusView *iface)
{
    return (view *)((char *)iface - offsetof(view, IStatusView_iface));
}

static HRESULT STDMETHODCALLTYPE view_QueryInterface(IStatusView *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IStatusView)) {
        *ppv = iface;
        IStatusView_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE view_AddRef(IStatusView *iface)
{
    return (ULONG)atomic_fetch_add(&impl_from_IStatusView(iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE view_Release(IStatusView *iface)
{
    view *v = impl_from_IStatusView(iface);
    LONG left = atomic_fetch_sub(&v->refs, 1) - 1;
    if (left == 0) {
        free(v);
        view_destroyed = 1;
    }
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE view_Post(IStatusView *iface, ULONG worker, ULONG step,
                                           double value)
{
    view *v = impl_from_IStatusView(iface);
    if (!on_gui_thread)
        v->off_thread++;
    if (worker >= v->workers)
        return E_INVALIDARG;
    if (step != v->last_step[worker] + 1)
        v->out_of_order++;
    v->last_step[worker] = step;
    v->count[worker]++;
    v->sum[worker] += value;
    v->posts++;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE view_GetCount(IStatusView *iface, ULONG worker, ULONG *count,
                                               double *sum)
{
    view *v = impl_from_IStatusView(iface);
    if (!on_gui_thread)
        v->off_thread++;
    if (worker >= v->workers)
        return E_INVALIDARG;
    *count = v->count[worker];
    *sum = v->sum[worker];
    return S_OK;
}

static const IStatusViewVtbl view_vtbl = {
    view_QueryInterface, view_AddRef, view_Release, view_Post, view_GetCount,
};

/* "Repaints" the view: one line with what it shows. Runs on the GUI thread,
 * so it reads the view's state directly. */
static void repaint(const view *v)
{
    char line[512];
    int n = snprintf(line, sizeof(line), "[%6.2f s] repaint: %6lu posts |",
                     (sample_now_ms() - start_ms) / 1000.0, (unsigned long)v->posts);
    for (ULONG w = 0; w < v->workers && n > 0 && (size_t)n < sizeof(line); w++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, " w%lu %lu |", (unsigned long)w,
                      (unsigned long)v->count[w]);
    printf("%s\n", line);
    fflush(stdout);
}

/* ---- the GUI thread's own event source ------------------------------------------------ */

/* Workers tell the GUI thread they are done the way a GUI program's
 * threads would: a message to the thread's queue on Windows, a byte down a
 * pipe on POSIX. */
#ifdef _WIN32
#define WM_WORKER_DONE (WM_APP + 1)
static DWORD gui_thread_id;

static int gui_events_init(void)
{
    MSG msg;
    /* makes the thread's message queue, so PostThreadMessage works */
    PeekMessageW(&msg, NULL, 0, 0, PM_NOREMOVE);
    gui_thread_id = GetCurrentThreadId();
    return 0;
}

static void gui_events_post_done(ULONG worker)
{
    PostThreadMessageW(gui_thread_id, WM_WORKER_DONE, (WPARAM)worker, 0);
}
#else
static int gui_pipe[2] = {-1, -1};

static int gui_events_init(void)
{
    return pipe(gui_pipe);
}

static void gui_events_post_done(ULONG worker)
{
    unsigned char b = (unsigned char)worker;
    while (write(gui_pipe[1], &b, 1) < 0 && errno == EINTR) {}
}
#endif

/* ---- workers ------------------------------------------------------------------------------ */

typedef struct worker {
    ULONG id;
    ULONG posts;
    IStream *stream; /* the view, marshaled for this worker */
    sample_thread thread;
    HRESULT hr; /* the first failure */
    double us_per_call;
    ULONG seen; /* what the view says it saw of ours */
    double seen_sum, sent_sum;
} worker;

static void worker_main(void *arg)
{
    worker *w = arg;
    IStatusView *v = NULL;
    ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    /* The proxy: calls through it run on the GUI thread. */
    w->hr = ShmCoGetInterfaceAndReleaseStream(w->stream, &IID_IStatusView, (void **)&v);
    w->stream = NULL;
    if (SUCCEEDED(w->hr)) {
        double t0 = sample_now_ms();
        for (ULONG step = 1; step <= w->posts && SUCCEEDED(w->hr); step++) {
            double value = (double)(w->id * 1000 + step % 1000) / 8.0;
            w->sent_sum += value;
            w->hr = IStatusView_Post(v, w->id, step, value);
        }
        w->us_per_call = (sample_now_ms() - t0) * 1000.0 / w->posts;
        if (SUCCEEDED(w->hr))
            w->hr = IStatusView_GetCount(v, w->id, &w->seen, &w->seen_sum);
        IStatusView_Release(v);
    }
    ShmCoUninitialize();
    gui_events_post_done(w->id);
}

/* ---- the GUI thread ----------------------------------------------------------------------- */

typedef struct loop_stats {
    unsigned wakeups; /* the apartment's handle was ready */
    unsigned ticks;   /* repaints */
    unsigned done;    /* "worker done" events */
} loop_stats;

/* Waits up to timeout_ms for the apartment's handle or a GUI event; sets
 * *calls when calls wait, and adds the workers that said they are done. */
static int wait_events(intptr_t apt, DWORD timeout_ms, int *calls, loop_stats *st)
{
    *calls = 0;
#ifdef _WIN32
    HANDLE h = (HANDLE)apt;
    DWORD rc = MsgWaitForMultipleObjects(1, &h, FALSE, timeout_ms, QS_ALLINPUT);
    if (rc == WAIT_OBJECT_0) {
        *calls = 1;
    } else if (rc == WAIT_OBJECT_0 + 1) {
        MSG msg;
        while (PeekMessageW(&msg, NULL, 0, 0, PM_REMOVE)) {
            if (msg.message == WM_WORKER_DONE) {
                st->done++;
            } else {
                TranslateMessage(&msg);
                DispatchMessageW(&msg);
            }
        }
    } else if (rc != WAIT_TIMEOUT) {
        return -1;
    }
#else
    struct pollfd fds[2] = {{(int)apt, POLLIN, 0}, {gui_pipe[0], POLLIN, 0}};
    int n = poll(fds, 2, (int)timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    if (fds[0].revents & POLLIN)
        *calls = 1;
    if (fds[1].revents & POLLIN) {
        unsigned char buf[MAX_WORKERS];
        ssize_t k = read(gui_pipe[0], buf, sizeof(buf));
        if (k > 0)
            st->done += (unsigned)k;
    }
#endif
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: apartments [--workers N] [--posts M]\n");
    return 2;
}

int main(int argc, char **argv)
{
    ULONG nworkers = 4, posts = 20000;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return usage();
        unsigned long n = strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--workers"))
            nworkers = (ULONG)n;
        else if (!strcmp(argv[i], "--posts"))
            posts = (ULONG)n;
        else
            return usage();
    }
    if (nworkers < 1 || nworkers > MAX_WORKERS || posts < 1)
        return usage();
    start_ms = sample_now_ms();

    /* The GUI thread: an STA, and the apartment's handle for the loop. */
    intptr_t apt = 0;
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (SUCCEEDED(hr))
        hr = ShmCoRegisterProxyStubs(&view_ProxyFileInfo);
    if (SUCCEEDED(hr))
        hr = ShmCoGetApartmentWaitHandle(&apt);
    if (FAILED(hr) || gui_events_init() != 0) {
        fprintf(stderr, "apartments: set-up failed: %s\n", sample_hr(hr));
        return 1;
    }
    on_gui_thread = 1;

    view *v = calloc(1, sizeof(*v));
    if (!v)
        return 1;
    v->IStatusView_iface.lpVtbl = &view_vtbl;
    atomic_init(&v->refs, 1);
    v->workers = nworkers;
    printf("apartments: the GUI thread (an STA) owns a view; %lu worker threads (MTA) post %lu "
           "reports each through proxies\n",
           (unsigned long)nworkers, (unsigned long)posts);

    static worker workers[MAX_WORKERS];
    ULONG started = 0;
    for (ULONG i = 0; i < nworkers; i++) {
        worker *w = &workers[i];
        w->id = i;
        w->posts = posts;
        hr = ShmCoMarshalInterThreadInterfaceInStream(
            &IID_IStatusView, (IUnknown *)&v->IStatusView_iface, &w->stream);
        if (FAILED(hr) || sample_thread_start(&w->thread, worker_main, w) != 0) {
            fprintf(stderr, "apartments: cannot start worker %lu: %s\n", (unsigned long)i,
                    sample_hr(hr));
            if (w->stream)
                IStream_Release(w->stream); /* (leaks the record's reference) */
            break;
        }
        started++;
    }

    /* The event loop: calls when the apartment's handle is ready, a
     * repaint every TICK_MS, until every worker said it is done. */
    loop_stats st = {0, 0, 0};
    double next_tick = sample_now_ms() + TICK_MS;
    int loop_failed = 0;
    while (st.done < started) {
        double now = sample_now_ms();
        DWORD timeout = now >= next_tick ? 0 : (DWORD)(next_tick - now) + 1;
        int calls = 0;
        if (wait_events(apt, timeout, &calls, &st) != 0) {
            loop_failed = 1;
            break;
        }
        if (calls) {
            st.wakeups++;
            hr = ShmCoProcessCalls(0); /* runs what waits; never blocks */
            if (FAILED(hr)) {
                fprintf(stderr, "apartments: ShmCoProcessCalls: %s\n", sample_hr(hr));
                loop_failed = 1;
                break;
            }
        }
        if (sample_now_ms() >= next_tick) {
            repaint(v);
            st.ticks++;
            next_tick += TICK_MS;
            if (next_tick <= sample_now_ms()) /* fell behind: no catching up */
                next_tick = sample_now_ms() + TICK_MS;
        }
    }
    double elapsed_ms = sample_now_ms() - start_ms;
    for (ULONG i = 0; i < started; i++)
        sample_thread_join(&workers[i].thread);
    repaint(v);

    /* The summary, and the checks. */
    ULONG total = nworkers * posts;
    int ok = !loop_failed && started == nworkers && v->posts == total && v->off_thread == 0 &&
             v->out_of_order == 0;
    double us = 0;
    int confirmed = 1;
    for (ULONG i = 0; i < started; i++) {
        worker *w = &workers[i];
        us += w->us_per_call / started;
        if (FAILED(w->hr)) {
            printf("  worker %lu: a call failed: %s\n", (unsigned long)i, sample_hr(w->hr));
            confirmed = 0;
        } else if (w->seen != posts || w->seen_sum != w->sent_sum) {
            printf("  worker %lu: the view saw %lu of its %lu posts\n", (unsigned long)i,
                   (unsigned long)w->seen, (unsigned long)posts);
            confirmed = 0;
        }
    }
    printf("\nsummary: %lu posts from %lu workers in %.2f s, %.1f us per call (worker -> GUI "
           "thread)\n",
           (unsigned long)v->posts, (unsigned long)started, elapsed_ms / 1000.0, us);
    printf("  event loop: %u wake-ups by the apartment's handle (%.1f calls each), %u repaints, "
           "%u worker-done events\n",
           st.wakeups, st.wakeups ? (double)v->posts / st.wakeups : 0.0, st.ticks, st.done);
    printf("  calls that ran on another thread than the GUI's: %lu; posts out of order: %lu\n",
           (unsigned long)v->off_thread, (unsigned long)v->out_of_order);
    printf("  every worker's posts confirmed by IStatusView::GetCount: %s\n",
           confirmed ? "yes" : "no");
    ok = ok && confirmed;
    IStatusView_Release(&v->IStatusView_iface);
    printf("  view released: %s\n", view_destroyed ? "yes" : "NO (a reference leaked)");
    ok = ok && view_destroyed;
    ShmCoUninitialize();
    printf("apartments: %s\n", ok ? "PASS" : "FAILED");
    return ok ? 0 : 1;
}
