/*
 * bench_clients.c - how the calls one server process serves grow with the
 * number of client processes: 1 to 8 client processes each call a null
 * method of one MTA object in the server as fast as they can, and the
 * total number of calls per second is measured.
 *
 *   bench_clients            the full run: prints the table
 *   bench_clients --quick    1, 2 and 8 clients, one short round each (a
 *                            ctest smoke test: it checks that the numbers
 *                            come out and never judges them)
 *   bench_clients --tsv      the same figures as lines for scripts
 *                            (benchtsv.h); combines with --quick
 *   bench_clients --client MAILBOX INDEX   a client process
 *
 * This process is the server: it marshals the object once with
 * MSHLFLAGS_TABLESTRONG into a named shared-memory stream, from which every
 * client unmarshals its own proxy. For each number of clients it starts
 * that many copies of its own executable, waits until all have their proxy
 * (and made a few calls), then runs ROUNDS rounds: it posts a round
 * number in `go`, sleeps ROUND_MS, and posts the same number in `stop`;
 * each client calls until it sees `stop`, stores how many calls it made
 * and counts itself in `done`. Calls per second = all clients' calls /
 * the time from go to stop (the clients wake within microseconds of `go`,
 * so the round's edges cost well under 1% of it). The median round is
 * reported, with the fastest and the slowest.
 *
 * On 2 CPUs, more clients than CPUs compete with the server for them: the
 * figure then shows what the machine's scheduler and the transport's
 * spin-then-sleep do together, which is the point of measuring it.
 * Every wait has a timeout and checks that the other processes still
 * live; on any failure the clients are killed and every name removed.
 */
#define COBJMACROS
#include "benchobj.h"
#include "benchtsv.h"
#include "platform.h"
#include "shmcom/shmcom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS      5
#define ROUND_MS    200
#define MAX_CLIENTS 8
#define QUIT_ROUND  0xFFFFFFFFu

/* How long any one wait may take before the benchmark gives up. */
#define STUCK_NS (60ull * 1000000000ull)

static bool quick;

/*
 * The mailbox region. Hot words on lines of their own (128 bytes apart).
 *   parent_*, stream       written by the server before any client
 *                          starts; read-only after
 *   go.value               server: the round to run (QUIT_ROUND: exit)
 *   stop                   server: the last round that is over
 *   done.value             clients: atomic add 1 when ready, and after
 *                          each round once their count is stored
 *   calls[i].n             client i, before it counts itself in done
 */
typedef struct mailbox {
    uint64_t parent_pid, parent_start;
    char stream[SHM_MAX_NAME + 1];
    _Alignas(128) shmc_plat_wword go;
    _Alignas(128) _Atomic uint32_t stop;
    _Alignas(128) shmc_plat_wword done;
    struct {
        _Alignas(128) _Atomic uint64_t n;
    } calls[MAX_CLIENTS];
} mailbox;

static struct {
    bool is_client;
    shmc_plat_region mbr;
    mailbox *mb;
    char mb_name[SHM_MAX_NAME + 1];
    char stream_name[SHM_MAX_NAME + 1];
    shmc_plat_waiter go, done;
    shmc_plat_proc parent;            /* client: the server */
    shmc_plat_proc kids[MAX_CLIENTS]; /* server: the clients running */
    int n_kids;
    IStream *stream;
} g;

static void cleanup(void);

#if defined(__GNUC__)
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_clients%s: ", g.is_client ? " (client)" : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(stderr);
    cleanup();
    exit(1);
}

#define CHECK(call)                                                                    \
    do {                                                                               \
        HRESULT hr_ = (call);                                                          \
        if (FAILED(hr_))                                                               \
            fail("%s:%d: %s failed 0x%08x", __FILE__, __LINE__, #call, (unsigned)hr_); \
    } while (0)

static double now_us(void)
{
    return (double)shmc_plat_clock_ns() / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Server: kills and reaps every client still running; removes the names.
 * Client: closes what it opened. Safe to call twice. */
static void cleanup(void)
{
    for (int i = 0; i < g.n_kids; i++) {
        if (shmc_plat_proc_wait(&g.kids[i], 0) != S_OK) {
            shmc_plat_proc_kill(&g.kids[i]);
            shmc_plat_proc_wait(&g.kids[i], 10000);
        }
        shmc_plat_proc_close(&g.kids[i]);
    }
    g.n_kids = 0;
    if (g.is_client)
        shmc_plat_proc_close(&g.parent);
    if (g.stream) {
        IStream_Release(g.stream); /* the creator's release removes its name */
        g.stream = NULL;
    }
    shmc_plat_waiter_close(&g.go);
    shmc_plat_waiter_close(&g.done);
    if (!g.is_client) {
        if (g.mb_name[0])
            shmc_plat_region_unlink(g.mb_name);
        if (g.stream_name[0])
            shmc_plat_region_unlink(g.stream_name); /* if the stream was never made */
        g.mb_name[0] = g.stream_name[0] = 0;
    }
    shmc_plat_region_close(&g.mbr);
    g.mb = NULL;
}

/* Gives up if another process has exited or the wait has lasted too long. */
static void stuck_check(uint64_t start_ns, const char *what)
{
    if (g.is_client) {
        if (shmc_plat_proc_wait(&g.parent, 0) == S_OK)
            fail("%s: the server exited", what);
    } else {
        for (int i = 0; i < g.n_kids; i++)
            if (shmc_plat_proc_wait(&g.kids[i], 0) == S_OK)
                fail("%s: client %d exited (code %d)", what, i, g.kids[i].exit_code);
    }
    if (shmc_plat_clock_ns() - start_ns > STUCK_NS)
        fail("%s: no answer in %llu s", what, (unsigned long long)(STUCK_NS / 1000000000ull));
}

/* Sleeps until w's word differs from `from` (client) and returns it. */
static uint32_t sleep_while(shmc_plat_waiter *w, uint32_t from, const char *what)
{
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        uint32_t seen = atomic_load(&w->word->value);
        if (seen != from)
            return seen;
        if (shmc_plat_wait(w, seen, 1000) != S_OK)
            stuck_check(start, what);
    }
}

/* Sleeps until w's word is `v` (server). */
static void sleep_until(shmc_plat_waiter *w, uint32_t v, const char *what)
{
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        uint32_t seen = atomic_load(&w->word->value);
        if (seen == v)
            return;
        if (shmc_plat_wait(w, seen, 1000) != S_OK)
            stuck_check(start, what);
    }
}

static void open_mailbox_waiters(void)
{
    CHECK(shmc_plat_waiter_open(&g.go, &g.mbr, offsetof(mailbox, go)));
    CHECK(shmc_plat_waiter_open(&g.done, &g.mbr, offsetof(mailbox, done)));
}

/* ---- a client ---------------------------------------------------------------------- */

static int client_main(const char *name, const char *index)
{
    g.is_client = true;
    int idx = index ? atoi(index) : -1;
    if (!name || idx < 0 || idx >= MAX_CLIENTS || FAILED(shmc_plat_region_open(&g.mbr, name)) ||
        g.mbr.size < sizeof(mailbox)) {
        fprintf(stderr, "bench_clients (client): no mailbox %s or bad index\n",
                name ? name : "(none)");
        return 1;
    }
    g.mb = g.mbr.base;
    shmc_plat_procid parent = {g.mb->parent_pid, g.mb->parent_start};
    CHECK(shmc_plat_proc_open(&g.parent, &parent));
    open_mailbox_waiters();
    char stream[SHM_MAX_NAME + 1];
    memcpy(stream, g.mb->stream, sizeof(stream));
    stream[SHM_MAX_NAME] = 0;

    CHECK(ShmCoRegisterProxyStubs(&bench_ProxyFileInfo));
    CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED));
    CHECK(ShmOpenStreamOnSharedMemory(stream, 0, &g.stream));
    IBench *p = NULL;
    CHECK(ShmCoUnmarshalInterface(g.stream, &IID_IBench, (void **)&p));
    IStream_Release(g.stream);
    g.stream = NULL;
    for (int i = 0; i < 100; i++) /* warm up */
        CHECK(IBench_Null(p));
    uint32_t round = atomic_load(&g.mb->go.value);
    atomic_fetch_add(&g.mb->done.value, 1);
    shmc_plat_wake(&g.done, false);

    for (;;) {
        round = sleep_while(&g.go, round, "waiting for a round");
        if (round == QUIT_ROUND)
            break;
        uint64_t n = 0;
        while (atomic_load_explicit(&g.mb->stop, memory_order_acquire) != round) {
            CHECK(IBench_Null(p));
            n++;
        }
        atomic_store(&g.mb->calls[idx].n, n);
        atomic_fetch_add(&g.mb->done.value, 1);
        shmc_plat_wake(&g.done, false);
    }
    IBench_Release(p);
    ShmCoUninitialize();
    cleanup();
    return 0;
}

/* ---- the server ------------------------------------------------------------------- */

typedef struct result {
    int clients;
    double med, lo, hi; /* calls per second: median, slowest round, fastest round */
} result;

/* Runs `rounds` rounds with n clients; `*done` counts what done.value
 * should reach. */
static result run_clients(int n, int rounds, const char *exe, uint32_t *round, uint32_t *done)
{
    char idx[16];
    for (int i = 0; i < n; i++) {
        snprintf(idx, sizeof(idx), "%d", i);
        const char *argv[] = {exe, "--client", g.mb_name, idx, NULL};
        CHECK(shmc_plat_proc_spawn(&g.kids[i], argv));
        g.n_kids = i + 1;
    }
    *done += (uint32_t)n;
    sleep_until(&g.done, *done, "clients starting");

    double rate[ROUNDS];
    uint32_t ms = quick ? 10 : ROUND_MS;
    for (int k = 0; k < rounds; k++) {
        ++*round;
        for (int i = 0; i < n; i++)
            atomic_store(&g.mb->calls[i].n, 0);
        double t0 = now_us();
        atomic_store(&g.mb->go.value, *round);
        shmc_plat_wake(&g.go, true);
        shmc_plat_sleep_ms(ms);
        atomic_store_explicit(&g.mb->stop, *round, memory_order_release);
        double t1 = now_us();
        *done += (uint32_t)n;
        sleep_until(&g.done, *done, "clients ending a round");
        uint64_t total = 0;
        for (int i = 0; i < n; i++)
            total += atomic_load(&g.mb->calls[i].n);
        rate[k] = (double)total / ((t1 - t0) / 1e6);
    }

    atomic_store(&g.mb->go.value, QUIT_ROUND);
    shmc_plat_wake(&g.go, true);
    for (int i = 0; i < n; i++) {
        if (shmc_plat_proc_wait(&g.kids[i], 30000) != S_OK)
            fail("client %d did not exit", i);
        if (g.kids[i].exit_code != 0)
            fail("client %d exited with code %d", i, g.kids[i].exit_code);
    }
    for (int i = 0; i < n; i++)
        shmc_plat_proc_close(&g.kids[i]);
    g.n_kids = 0;
    /* the next clients start from round QUIT_ROUND: begin again at 0 */
    *round = 0;
    atomic_store(&g.mb->go.value, 0);
    atomic_store(&g.mb->stop, 0);

    qsort(rate, (size_t)rounds, sizeof(rate[0]), cmp_double);
    result r = {n, rate[rounds / 2], rate[0], rate[rounds - 1]};
    return r;
}

static int server_main(bool tsv)
{
    static const int counts_full[] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const int counts_quick[] = {1, 2, 8};
    const int *counts = quick ? counts_quick : counts_full;
    int n_counts = quick ? 3 : 8, rounds = quick ? 1 : ROUNDS;

    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    unsigned long long pid = (unsigned long long)self.pid;
    /* "tst-" names: check_leftovers reports any a crashed run leaves */
    snprintf(g.mb_name, sizeof(g.mb_name), "tst-bcl-%llu-1", pid);
    snprintf(g.stream_name, sizeof(g.stream_name), "tst-bcl-%llu-2", pid);
    CHECK(shmc_plat_region_create(&g.mbr, g.mb_name, sizeof(mailbox)));
    g.mb = g.mbr.base;
    g.mb->parent_pid = self.pid;
    g.mb->parent_start = self.start_time;
    memcpy(g.mb->stream, g.stream_name, sizeof(g.stream_name));
    open_mailbox_waiters();

    CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED));
    CHECK(ShmCreateStreamOnSharedMemory(g.stream_name, 64 * 1024, 0, &g.stream));
    IBench *obj = bench_obj_new();
    if (!obj)
        fail("out of memory");
    CHECK(ShmCoMarshalInterface(g.stream, &IID_IBench, (IUnknown *)obj, MSHCTX_LOCAL, NULL,
                                MSHLFLAGS_TABLESTRONG));

    char exe[4096];
    CHECK(shmc_plat_self_exe(exe, sizeof(exe)));
    result res[MAX_CLIENTS];
    uint32_t round = 0, done = 0;
    for (int c = 0; c < n_counts; c++)
        res[c] = run_clients(counts[c], rounds, exe, &round, &done);

    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    CHECK(IStream_Seek(g.stream, zero, STREAM_SEEK_SET, NULL));
    CHECK(ShmCoReleaseMarshalData(g.stream));
    IBench_Release(obj);
    ShmCoUninitialize();
    cleanup();

    double one = res[0].med;
    if (tsv) {
        btsv_header("bench_clients", shmc_plat_cpu_count(), quick);
        for (int c = 0; c < n_counts; c++) {
            char key[32], label[96];
            snprintf(key, sizeof(key), "clients.%d", res[c].clients);
            snprintf(label, sizeof(label), "null calls per second, %d client process%s in all",
                     res[c].clients, res[c].clients == 1 ? "" : "es");
            btsv_row(key, res[c].med, res[c].hi, res[c].lo, "calls/s", "call", label);
            if (c > 0)
                btsv_ratio(key, "clients.1", res[c].med / one, "1 client");
        }
        return 0;
    }
    printf("null calls per second from client processes to one MTA object in a server process\n"
           "(median of %d rounds of %d ms%s, %u CPUs)\n",
           rounds, quick ? 10 : ROUND_MS, quick ? ", --quick: too short to mean anything" : "",
           shmc_plat_cpu_count());
    printf("%-8s %12s  %-25s %14s  %s\n", "clients", "calls/s", "slowest..fastest",
           "us/call/client", "ratio");
    for (int c = 0; c < n_counts; c++) {
        printf("%-8d %12.0f  %11.0f..%-11.0f  %14.3f", res[c].clients, res[c].med, res[c].lo,
               res[c].hi, res[c].clients * 1e6 / res[c].med);
        if (c > 0)
            printf("  %5.2fx 1 client", res[c].med / one);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--client"))
        return client_main(argc > 2 ? argv[2] : NULL, argc > 3 ? argv[3] : NULL);
    bool tsv = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--tsv"))
            tsv = true;
        else {
            fprintf(stderr, "usage: bench_clients [--quick] [--tsv]\n");
            return 2;
        }
    }
    CHECK(ShmCoRegisterProxyStubs(&bench_ProxyFileInfo));
    return server_main(tsv);
}
