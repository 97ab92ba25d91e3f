/*
 * bench_xproc.c - calls between processes (MSHCTX_LOCAL), next to the
 * floors of the machine measured in the same run, between the same two
 * processes:
 *   - a spin ping-pong on a shared word (both processes running);
 *   - a wait/wake ping-pong through the platform layer (futex on Linux,
 *     the named semaphores the runtime uses on Windows): each side sleeps,
 *     each bound to a CPU of its own (a cross-core wake-up, benchobj.h);
 *   - Windows only: the same ping-pong built from named events (under
 *     Wine every SetEvent and wait goes through wineserver);
 *   - a Unix-domain-socket request/reply of one byte (AF_UNIX; "n/a" where
 *     the system has none);
 *   - memcpy of 1 MiB and 16 MiB into a shared mapping (GB/s), and of
 *     16 MiB into a new region each time (what a frame larger than a call
 *     slot costs: the runtime sends it in a new bulk region).
 * The calls: a null call with the server running (calls back to back, the
 * server's receiver spins as by default) and with the server asleep (the
 * server sets shmc_tune.callee_spin_ns = 0, so its receiver sleeps as soon
 * as it is idle and every call wakes it; the client spins as usual), and
 * [in] arrays of 4 KiB, 1 MiB and 16 MiB.
 * A second table: how a call's time grows with its [in] array, from 0 B
 * to 64 MiB, beside memcpy of the same size into a warm shared mapping.
 *
 *   bench_xproc            the full run: prints the tables
 *   bench_xproc --quick    a few iterations of everything (a ctest smoke
 *                          test: it checks that the numbers come out and
 *                          never judges them)
 *   bench_xproc --tsv      the same figures as lines for scripts
 *                          (benchtsv.h); combines with --quick
 *   bench_xproc --child MAILBOX   the server process (started by the above)
 *
 * The parent re-runs its own executable as the child. They meet in a
 * mailbox region: the parent posts a command (a sequence number in a wait
 * word, the operation and its argument beside it), the child runs it and
 * posts the sequence number back. The child's main thread sleeps between
 * commands, so it costs nothing while the other rows run; its runtime
 * receiver threads serve the calls.
 *
 * Every figure is the median of ROUNDS rounds (3 with --quick, which also
 * leaves out the 64 MiB call), with the fastest and the slowest round
 * beside it; the rounds interleave all rows, so load from
 * elsewhere on the machine falls on floors and calls alike. The null calls
 * of a round take turns with the spin floor, a few milliseconds each, and
 * their ratio to it is the median of the rounds' ratios: on a VM the placement of the CPUs
 * (sibling threads of one core, or two cores) changes from second to
 * second, and the floor with it, by up to 3x. Every wait
 * has a timeout and checks that the other process still lives; on any
 * failure the child is killed and reaped and every name is removed.
 */
#define COBJMACROS
#ifdef _WIN32
#include <winsock2.h>
#include <afunix.h>
#include <windows.h>
#else
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#endif

#include "benchobj.h"
#include "benchtsv.h"
#include "platform.h"
#include "rt.h"
#include "shmcom/shmcom.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 9
#define CHUNKS 5 /* turns of spin floor and null calls in a round */
#define KiB    1024u
#define MiB    (1024u * 1024u)

static int n_rounds = ROUNDS; /* fewer with --quick */

/* The [in] array sizes of the second table; the largest is also the size
 * of the memcpy target and of the source buffer. */
static const uint32_t sweep_sizes[] = {0, 64, 4 * KiB, 64 * KiB, MiB, 4 * MiB, 16 * MiB, 64 * MiB};
#define N_SWEEP  (sizeof(sweep_sizes) / sizeof(sweep_sizes[0]))
#define BUF_SIZE (64 * MiB)
static size_t n_sweep = N_SWEEP; /* --quick leaves out the last (64 MiB, ~0.1 s a call) */

/* "Server asleep": the client leaves this much time between calls
 * (spinning, untimed), so that the server's receiver is asleep in the
 * kernel when each call comes. Back to back it often is not: it goes to
 * sleep in the microsecond after a reply, when the next request may
 * already be on its way (the "back to back" row shows that case). Short,
 * like the sleeps of the futex floor, because a longer idle lets the CPU
 * sleep deeper: with 500 us between calls a call cost about 3x more here. */
#define ASLEEP_GAP_US   50.0
#define ASLEEP_GAP_TEXT "50 us"

/* How long any one wait may take before the benchmark gives up. */
#define STUCK_NS (60ull * 1000000000ull)

static bool quick;

static double now_us(void)
{
    return (double)shmc_plat_clock_ns() / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A row: one figure per round. */
typedef struct row {
    double v[ROUNDS];
} row;

static void row_stats(const row *r, double *med, double *lo, double *hi)
{
    double s[ROUNDS];
    memcpy(s, r->v, sizeof(s));
    qsort(s, (size_t)n_rounds, sizeof(s[0]), cmp_double);
    *med = s[n_rounds / 2];
    *lo = s[0];
    *hi = s[n_rounds - 1];
}

static double row_median(const row *r)
{
    double med, lo, hi;
    row_stats(r, &med, &lo, &hi);
    return med;
}

/* ---- the mailbox ------------------------------------------------------------ */

enum {
    OP_SETUP = 1,   /* marshal the object into the stream */
    OP_SPIN_WORD,   /* arg round trips on word (odd: parent, even: child), spinning */
    OP_SPIN_PONG,   /* arg round trips on ping/pong, spinning */
    OP_WAIT_PONG,   /* arg round trips on fping/fpong, sleeping */
    OP_EVENT_PONG,  /* Windows: arg round trips on the named events */
    OP_SOCK_OPEN,   /* connect to the parent's socket */
    OP_SOCK_PONG,   /* arg one-byte round trips on the socket */
    OP_CALLEE_SPIN, /* shmc_tune.callee_spin_ns = arg */
    OP_STOP,        /* leave the apartment and exit */
};

/*
 * Hot words on cache lines of their own (128 bytes apart, so that the
 * adjacent-line prefetcher does not couple them either).
 *   parent_*, stream, sock_path, events,  written by the parent before the
 *   mc_name                               child starts; read-only after
 *   fresh_name                            parent, while the region exists
 *   (the names are there so that a child whose parent was killed can
 *   remove what the parent can no longer remove)
 *   cmd.value (seq), op, arg, floor_cpu   parent; op and arg before seq
 *   ack.value, status, default_spin       child; status before ack
 *   ping, fping                           parent during a ping-pong
 *   pong, fpong                           child during a ping-pong
 *   word                                  both, in turn (the spin floor)
 */
typedef struct mailbox {
    uint64_t parent_pid, parent_start;
    char stream[SHM_MAX_NAME + 1];
    char sock_path[108];
    char event_ping[64], event_pong[64];
    char mc_name[SHM_MAX_NAME + 1];
    char fresh_name[SHM_MAX_NAME + 1];
    _Atomic uint32_t op, arg;
    _Atomic int32_t status;
    _Atomic uint32_t default_spin;
    _Atomic int32_t floor_cpu; /* the parent's CPU in a wait floor (benchobj.h), or -1 */
    _Alignas(128) shmc_plat_wword cmd;
    _Alignas(128) shmc_plat_wword ack;
    _Alignas(128) _Atomic uint32_t ping;
    _Alignas(128) _Atomic uint32_t pong;
    _Alignas(128) shmc_plat_wword fping;
    _Alignas(128) shmc_plat_wword fpong;
    _Alignas(128) _Atomic uint32_t word;
} mailbox;

/* ---- what each process holds ------------------------------------------------------ */

#ifdef _WIN32
typedef SOCKET sock_t;
#define SOCK_NONE  INVALID_SOCKET
#define SEND_FLAGS 0
static int sock_error(void)
{
    return WSAGetLastError();
}
static void sock_close(sock_t s)
{
    closesocket(s);
}
#else
typedef int sock_t;
#define SOCK_NONE  (-1)
#define SEND_FLAGS MSG_NOSIGNAL
#include <errno.h>
static int sock_error(void)
{
    return errno;
}
static void sock_close(sock_t s)
{
    close(s);
}
#endif

static struct {
    bool is_child;
    shmc_plat_proc peer; /* parent: the child (we reap it); child: the parent */
    bool have_peer;
    shmc_plat_region mbr;
    mailbox *mb;
    char mb_name[SHM_MAX_NAME + 1];
    shmc_plat_waiter cmd, ack, fping, fpong;
    uint32_t seq; /* parent: the last command posted */
    IStream *stream;
    shmc_plat_region mc; /* parent: the memcpy target */
    char mc_name[SHM_MAX_NAME + 1];
    char fresh_name[SHM_MAX_NAME + 1];
    sock_t sock, listener;
    bool sock_bound;
    int sock_err; /* why there is no socket row */
#ifdef _WIN32
    HANDLE ev_ping, ev_pong;
    bool wsa;
#endif
} g = {.sock = SOCK_NONE, .listener = SOCK_NONE};

static void cleanup(void);

#if defined(__GNUC__)
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_xproc%s: ", g.is_child ? " (child)" : "");
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

/* The other process has exited (the parent reaps the child here). */
static bool peer_gone(void)
{
    return g.have_peer && shmc_plat_proc_wait(&g.peer, 0) == S_OK;
}

/* Child: the parent is gone without cleaning up (killed); removes the
 * names it made, which nobody else would. */
static void remove_parent_names(void)
{
    mailbox *mb = g.mb;
    char name[SHM_MAX_NAME + 1];
    const char *names[] = {mb->stream, mb->mc_name, mb->fresh_name};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        memcpy(name, names[i], sizeof(name));
        name[SHM_MAX_NAME] = 0;
        if (name[0])
            shmc_plat_region_unlink(name);
    }
    char path[sizeof(mb->sock_path)];
    memcpy(path, mb->sock_path, sizeof(path));
    path[sizeof(path) - 1] = 0;
    remove(path);
    shmc_plat_region_unlink(g.mb_name);
}

/* The other process has exited: the end of the benchmark. */
static void peer_died(const char *what)
{
    if (g.is_child) {
        remove_parent_names();
        fail("%s: the parent exited", what);
    }
    fail("%s: the child exited (code %d)", what, g.peer.exit_code);
}

/* Called now and then from every wait loop: gives up on a dead peer or
 * a wait that has lasted STUCK_NS. */
static void stuck_check(uint64_t start_ns, const char *what)
{
    if (peer_gone())
        peer_died(what);
    if (shmc_plat_clock_ns() - start_ns > STUCK_NS)
        fail("%s: no answer in %llu s", what, (unsigned long long)(STUCK_NS / 1000000000ull));
}

/* Spins until *w == v. */
static void spin_until(_Atomic uint32_t *w, uint32_t v, const char *what)
{
    uint64_t start = 0;
    for (unsigned k = 1; atomic_load_explicit(w, memory_order_acquire) != v; k++) {
        shmc_plat_cpu_relax();
        if ((k & 0xFFFF) == 0) {
            if (!start)
                start = shmc_plat_clock_ns();
            stuck_check(start, what);
        }
    }
}

/* Sleeps until ww->value == v (the waker stores v, then wakes). */
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

static void post(shmc_plat_waiter *w, uint32_t v)
{
    atomic_store(&w->word->value, v);
    shmc_plat_wake(w, false);
}

/* Removes every name and ends the child. Safe to call twice. */
static void cleanup(void)
{
    if (g.sock != SOCK_NONE)
        sock_close(g.sock);
    if (g.listener != SOCK_NONE)
        sock_close(g.listener);
    g.sock = g.listener = SOCK_NONE;
    if (g.sock_bound) {
        remove(g.mb->sock_path);
        g.sock_bound = false;
    }
#ifdef _WIN32
    if (g.ev_ping)
        CloseHandle(g.ev_ping);
    if (g.ev_pong)
        CloseHandle(g.ev_pong);
    g.ev_ping = g.ev_pong = NULL;
#endif
    if (g.have_peer) {
        if (!g.is_child && shmc_plat_proc_wait(&g.peer, 0) != S_OK) {
            shmc_plat_proc_kill(&g.peer);
            shmc_plat_proc_wait(&g.peer, 10000);
        }
        shmc_plat_proc_close(&g.peer);
        g.have_peer = false;
    }
    if (g.stream) {
        IStream_Release(g.stream); /* the creator's release removes its name */
        g.stream = NULL;
    }
    shmc_plat_waiter_close(&g.cmd);
    shmc_plat_waiter_close(&g.ack);
    shmc_plat_waiter_close(&g.fping);
    shmc_plat_waiter_close(&g.fpong);
    if (!g.is_child) {
        if (g.mb_name[0])
            shmc_plat_region_unlink(g.mb_name);
        if (g.mc_name[0])
            shmc_plat_region_unlink(g.mc_name);
        if (g.fresh_name[0])
            shmc_plat_region_unlink(g.fresh_name); /* if a round failed half-way */
        g.mb_name[0] = g.mc_name[0] = g.fresh_name[0] = 0;
    }
    shmc_plat_region_close(&g.mc);
    shmc_plat_region_close(&g.mbr);
    g.mb = NULL;
}

static void open_waiters(void)
{
    CHECK(shmc_plat_waiter_open(&g.cmd, &g.mbr, offsetof(mailbox, cmd)));
    CHECK(shmc_plat_waiter_open(&g.ack, &g.mbr, offsetof(mailbox, ack)));
    CHECK(shmc_plat_waiter_open(&g.fping, &g.mbr, offsetof(mailbox, fping)));
    CHECK(shmc_plat_waiter_open(&g.fpong, &g.mbr, offsetof(mailbox, fpong)));
}

#ifdef _WIN32
static void widen(WCHAR *out, const char *in, size_t cap)
{
    size_t i = 0;
    for (; in[i] && i + 1 < cap; i++)
        out[i] = (WCHAR)(unsigned char)in[i];
    out[i] = 0;
}
#endif

/* ---- the child: the server --------------------------------------------------------- */

static HRESULT child_setup(void)
{
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr))
        return hr;
    char stream[SHM_MAX_NAME + 1];
    memcpy(stream, g.mb->stream, sizeof(stream));
    stream[SHM_MAX_NAME] = 0;
    hr = ShmOpenStreamOnSharedMemory(stream, 0, &g.stream);
    if (FAILED(hr))
        return hr;
    IBench *obj = bench_obj_new();
    if (!obj)
        return E_OUTOFMEMORY;
    hr = ShmCoMarshalInterface(g.stream, &IID_IBench, (IUnknown *)obj, MSHCTX_LOCAL, NULL,
                               MSHLFLAGS_NORMAL);
    IBench_Release(obj); /* the record's reference keeps it */
    atomic_store(&g.mb->default_spin, atomic_load(&shmc_tune.callee_spin_ns));
    return hr;
}

static HRESULT child_spin_word(uint32_t n)
{
    for (uint32_t i = 1; i <= n; i++) {
        spin_until(&g.mb->word, 2 * i - 1, "spin ping-pong");
        atomic_store_explicit(&g.mb->word, 2 * i, memory_order_release);
    }
    return S_OK;
}

static HRESULT child_spin_pong(uint32_t n)
{
    for (uint32_t i = 1; i <= n; i++) {
        spin_until(&g.mb->ping, i, "spin ping-pong");
        atomic_store_explicit(&g.mb->pong, i, memory_order_release);
    }
    return S_OK;
}

/* The child's side of a wait floor: on a CPU other than the parent's. */
static bool child_bind(void)
{
    int32_t cpu = atomic_load(&g.mb->floor_cpu);
    if (cpu < 0)
        return false;
    if (bench_bind_other(cpu) < 0) {
        fprintf(stderr, "bench_xproc: the wait floor's processes may share a CPU\n");
        return false;
    }
    return true;
}

static HRESULT child_wait_pong(uint32_t n)
{
    bool bound = child_bind();
    for (uint32_t i = 1; i <= n; i++) {
        sleep_until(&g.fping, i, "wait/wake ping-pong");
        post(&g.fpong, i);
    }
    if (bound)
        bench_unbind();
    return S_OK;
}

#ifdef _WIN32
static HRESULT child_event_pong(uint32_t n)
{
    if (!g.ev_ping) {
        WCHAR name[64];
        widen(name, g.mb->event_ping, 64);
        g.ev_ping = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
        widen(name, g.mb->event_pong, 64);
        g.ev_pong = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name);
        if (!g.ev_ping || !g.ev_pong)
            return HRESULT_FROM_WIN32(GetLastError());
    }
    bool bound = child_bind();
    uint64_t start = shmc_plat_clock_ns();
    for (uint32_t i = 1; i <= n; i++) {
        while (WaitForSingleObject(g.ev_ping, 1000) != WAIT_OBJECT_0)
            stuck_check(start, "named events ping-pong");
        SetEvent(g.ev_pong);
    }
    if (bound)
        bench_unbind();
    return S_OK;
}
#endif

static HRESULT child_sock_open(void)
{
    g.sock = socket(AF_UNIX, SOCK_STREAM, 0);
    if (g.sock == SOCK_NONE)
        return E_FAIL;
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, g.mb->sock_path, sizeof(a.sun_path) - 1);
    if (connect(g.sock, (struct sockaddr *)&a, sizeof(a)) != 0)
        return E_FAIL;
    return S_OK;
}

static HRESULT child_sock_pong(uint32_t n)
{
    char b;
    for (uint32_t i = 1; i <= n; i++) {
        if (recv(g.sock, &b, 1, 0) != 1 || send(g.sock, &b, 1, SEND_FLAGS) != 1)
            return E_FAIL;
    }
    return S_OK;
}

static int child_main(const char *name)
{
    g.is_child = true;
    if (!name || FAILED(shmc_plat_region_open(&g.mbr, name)) || g.mbr.size < sizeof(mailbox)) {
        fprintf(stderr, "bench_xproc (child): no mailbox %s\n", name ? name : "(none)");
        return 1;
    }
    g.mb = g.mbr.base;
    snprintf(g.mb_name, sizeof(g.mb_name), "%s", name); /* removed only if the parent dies */
    shmc_plat_procid parent = {g.mb->parent_pid, g.mb->parent_start};
    CHECK(shmc_plat_proc_open(&g.peer, &parent));
    g.have_peer = true;
    open_waiters();
    CHECK(ShmCoRegisterProxyStubs(&bench_ProxyFileInfo));
#ifdef _WIN32
    WSADATA wsa;
    g.wsa = WSAStartup(MAKEWORD(2, 2), &wsa) == 0;
#endif
    uint32_t done = 0;
    bool stop = false;
    while (!stop) {
        uint32_t seq;
        /* no time limit here: only the parent's death ends this wait */
        while ((seq = atomic_load(&g.mb->cmd.value)) == done) {
            if (shmc_plat_wait(&g.cmd, done, 1000) != S_OK && peer_gone())
                peer_died("waiting for a command");
        }
        uint32_t op = atomic_load(&g.mb->op), arg = atomic_load(&g.mb->arg);
        HRESULT hr = E_INVALIDARG;
        switch (op) {
        case OP_SETUP:
            hr = child_setup();
            break;
        case OP_SPIN_WORD:
            hr = child_spin_word(arg);
            break;
        case OP_SPIN_PONG:
            hr = child_spin_pong(arg);
            break;
        case OP_WAIT_PONG:
            hr = child_wait_pong(arg);
            break;
#ifdef _WIN32
        case OP_EVENT_PONG:
            hr = child_event_pong(arg);
            break;
#endif
        case OP_SOCK_OPEN:
            hr = child_sock_open();
            break;
        case OP_SOCK_PONG:
            hr = child_sock_pong(arg);
            break;
        case OP_CALLEE_SPIN:
            atomic_store(&shmc_tune.callee_spin_ns, arg);
            hr = S_OK;
            break;
        case OP_STOP:
            if (g.stream)
                IStream_Release(g.stream);
            g.stream = NULL;
            ShmCoUninitialize();
            hr = S_OK;
            stop = true;
            break;
        }
        atomic_store(&g.mb->status, (int32_t)hr);
        post(&g.ack, seq);
        done = seq;
    }
    cleanup();
#ifdef _WIN32
    if (g.wsa)
        WSACleanup();
#endif
    return 0;
}

/* ---- the parent: commands ------------------------------------------------------------- */

static void command_post(uint32_t op, uint32_t arg)
{
    atomic_store(&g.mb->op, op);
    atomic_store(&g.mb->arg, arg);
    post(&g.cmd, ++g.seq);
}

/* Waits for the child to finish the last command; returns its result. */
static HRESULT command_wait(void)
{
    sleep_until(&g.ack, g.seq, "command");
    return (HRESULT)atomic_load(&g.mb->status);
}

static HRESULT command(uint32_t op, uint32_t arg)
{
    command_post(op, arg);
    return command_wait();
}

/* ---- the parent: floors --------------------------------------------------------------- */

/* Every ping-pong makes one untimed round trip first (the child wakes up
 * to take the command), then times n. */
/* The spin floor: one word both processes write in turn (the line moves
 * with each write, and each read that sees the change is followed by a
 * write: the exchange a call's slot line makes). */
static double floor_spin(uint32_t n)
{
    mailbox *mb = g.mb;
    atomic_store(&mb->word, 0);
    command_post(OP_SPIN_WORD, n + 1);
    double t0 = 0;
    for (uint32_t i = 1; i <= n + 1; i++) {
        if (i == 2)
            t0 = now_us();
        atomic_store_explicit(&mb->word, 2 * i - 1, memory_order_release);
        spin_until(&mb->word, 2 * i, "spin ping-pong");
    }
    double us = (now_us() - t0) / n;
    CHECK(command_wait());
    return us;
}

/* The same with two words on lines of their own, each written by one side:
 * every write then has to take the line back from a reader first, about
 * twice the floor's time. For comparison only. */
static double floor_spin_lines(uint32_t n)
{
    mailbox *mb = g.mb;
    atomic_store(&mb->ping, 0);
    atomic_store(&mb->pong, 0);
    command_post(OP_SPIN_PONG, n + 1);
    double t0 = 0;
    for (uint32_t i = 1; i <= n + 1; i++) {
        if (i == 2)
            t0 = now_us();
        atomic_store_explicit(&mb->ping, i, memory_order_release);
        spin_until(&mb->pong, i, "spin ping-pong");
    }
    double us = (now_us() - t0) / n;
    CHECK(command_wait());
    return us;
}

static double floor_wait(uint32_t n)
{
    atomic_store(&g.mb->fping.value, 0);
    atomic_store(&g.mb->fpong.value, 0);
    int mine = bench_bind_self(); /* a cross-core wake-up (benchobj.h) */
    atomic_store(&g.mb->floor_cpu, mine);
    command_post(OP_WAIT_PONG, n + 1);
    double t0 = 0;
    for (uint32_t i = 1; i <= n + 1; i++) {
        if (i == 2)
            t0 = now_us();
        post(&g.fping, i);
        sleep_until(&g.fpong, i, "wait/wake ping-pong");
    }
    double us = (now_us() - t0) / n;
    CHECK(command_wait());
    if (mine >= 0)
        bench_unbind();
    atomic_store(&g.mb->floor_cpu, -1);
    return us;
}

#ifdef _WIN32
static void events_make(void)
{
    WCHAR name[64];
    widen(name, g.mb->event_ping, 64);
    g.ev_ping = CreateEventW(NULL, FALSE, FALSE, name);
    widen(name, g.mb->event_pong, 64);
    g.ev_pong = CreateEventW(NULL, FALSE, FALSE, name);
    if (!g.ev_ping || !g.ev_pong)
        fail("CreateEventW failed (%lu)", (unsigned long)GetLastError());
}

static double floor_events(uint32_t n)
{
    int mine = bench_bind_self(); /* a cross-core wake-up (benchobj.h) */
    atomic_store(&g.mb->floor_cpu, mine);
    command_post(OP_EVENT_PONG, n + 1);
    uint64_t start = shmc_plat_clock_ns();
    double t0 = 0;
    for (uint32_t i = 1; i <= n + 1; i++) {
        if (i == 2)
            t0 = now_us();
        SetEvent(g.ev_ping);
        while (WaitForSingleObject(g.ev_pong, 1000) != WAIT_OBJECT_0)
            stuck_check(start, "named events ping-pong");
    }
    double us = (now_us() - t0) / n;
    CHECK(command_wait());
    if (mine >= 0)
        bench_unbind();
    atomic_store(&g.mb->floor_cpu, -1);
    return us;
}
#endif

/* Connects a Unix-domain socket to the child; false (and why in
 * g.sock_err) where the system cannot. */
static bool sock_setup(void)
{
    g.listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (g.listener == SOCK_NONE) {
        g.sock_err = sock_error();
        return false;
    }
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, g.mb->sock_path, sizeof(a.sun_path) - 1);
    remove(g.mb->sock_path);
    if (bind(g.listener, (struct sockaddr *)&a, sizeof(a)) != 0) {
        g.sock_err = sock_error();
        return false;
    }
    g.sock_bound = true;
    if (listen(g.listener, 1) != 0) {
        g.sock_err = sock_error();
        return false;
    }
    if (FAILED(command(OP_SOCK_OPEN, 0))) {
        g.sock_err = -1;
        return false;
    }
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(g.listener, &rd);
    struct timeval tv = {10, 0};
    if (select((int)g.listener + 1, &rd, NULL, NULL, &tv) != 1) {
        g.sock_err = -2;
        return false;
    }
    g.sock = accept(g.listener, NULL, NULL);
    if (g.sock == SOCK_NONE) {
        g.sock_err = sock_error();
        return false;
    }
    sock_close(g.listener);
    g.listener = SOCK_NONE;
    remove(g.mb->sock_path); /* both ends are connected: the name has done its job */
    g.sock_bound = false;
    return true;
}

static double floor_sock(uint32_t n)
{
    command_post(OP_SOCK_PONG, n + 1);
    char b = 1;
    double t0 = 0;
    for (uint32_t i = 1; i <= n + 1; i++) {
        if (i == 2)
            t0 = now_us();
        if (send(g.sock, &b, 1, SEND_FLAGS) != 1 || recv(g.sock, &b, 1, 0) != 1)
            fail("socket ping-pong: error %d", sock_error());
    }
    double us = (now_us() - t0) / n;
    CHECK(command_wait());
    return us;
}

/* GB/s of memcpy of `size` bytes into the (warm) shared mapping. */
static double floor_memcpy(const unsigned char *src, uint32_t size, uint32_t iters)
{
    double t0 = now_us();
    for (uint32_t i = 0; i < iters; i++)
        memcpy(g.mc.base, src, size);
    return (double)size * iters / (now_us() - t0) / 1000.0;
}

/* volatile function pointer: the compiler cannot drop or merge the copies */
static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

/* µs per memcpy of `size` bytes into the (warm) shared mapping. */
static double time_memcpy(const unsigned char *src, uint32_t size, uint32_t iters)
{
    double t0 = now_us();
    for (uint32_t i = 0; i < iters; i++)
        copy(g.mc.base, src, size);
    return (now_us() - t0) / iters;
}

/* GB/s of memcpy of `size` bytes into a new region each time (create, copy,
 * unmap, remove the name): a bulk frame's cost, without the call. */
static double floor_memcpy_fresh(const unsigned char *src, uint32_t size, uint32_t iters)
{
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    double t0 = now_us();
    for (uint32_t i = 0; i < iters; i++) {
        shmc_plat_region r;
        snprintf(g.fresh_name, sizeof(g.fresh_name), "tst-bxp-%llu-%u",
                 (unsigned long long)self.pid, 100 + i);
        memcpy(g.mb->fresh_name, g.fresh_name, sizeof(g.fresh_name));
        CHECK(shmc_plat_region_create(&r, g.fresh_name, (size_t)size + 4096));
        /* (the name first: a run killed during the copy leaves nothing) */
        shmc_plat_region_unlink(g.fresh_name);
        memcpy((unsigned char *)r.base + 4096, src, size);
        shmc_plat_region_close(&r);
        g.fresh_name[0] = 0;
        g.mb->fresh_name[0] = 0;
    }
    return (double)size * iters / (now_us() - t0) / 1000.0;
}

/* ---- the parent: calls ---------------------------------------------------------------- */

static double time_null(IBench *p, uint32_t n)
{
    for (uint32_t i = 0; i < n / 10 + 10; i++) /* warm up: the server wakes, spin budgets settle */
        CHECK(IBench_Null(p));
    double t0 = now_us();
    for (uint32_t i = 0; i < n; i++)
        CHECK(IBench_Null(p));
    return (now_us() - t0) / n;
}

/* µs per null call when the server has had time to fall asleep before
 * each: the client waits gap_us (spinning, untimed) between calls. */
static double time_null_gap(IBench *p, uint32_t n, double gap_us)
{
    double us;
    CHECK(bench_null_after_gap(p, n, gap_us, &us));
    return us;
}

/* µs per [in] array call of `size` bytes. */
static double time_put(IBench *p, const BYTE *buf, uint32_t size, uint32_t n)
{
    CHECK(IBench_Put(p, size, buf)); /* warm up */
    double t0 = now_us();
    for (uint32_t i = 0; i < n; i++)
        CHECK(IBench_Put(p, size, buf));
    return (now_us() - t0) / n;
}

static void print_row(const char *label, const row *r, bool gbs, uint32_t bytes, const char *note)
{
    double med, lo, hi;
    row_stats(r, &med, &lo, &hi);
    printf("%-52s %9.3f  %9.3f..%-9.3f", label, med, lo, hi);
    if (gbs)
        printf(" %7.2f", bytes / med / 1000.0);
    else
        printf(" %7s", "");
    printf("  %s\n", note ? note : "");
}

/* A memcpy row is in GB/s: print its µs per copy beside it. */
static void print_gbs_row(const char *label, const row *r, uint32_t bytes, const char *note)
{
    row us;
    for (int k = 0; k < n_rounds; k++)
        us.v[k] = bytes / r->v[k] / 1000.0;
    print_row(label, &us, true, bytes, note);
}

/* Sets up the mailbox, the memcpy target, the child and its object, the
 * socket; returns the proxy. */
static IBench *parent_setup(unsigned char **buf_out, uint32_t *default_spin)
{
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    unsigned long long pid = (unsigned long long)self.pid;
    /* "tst-" names: check_leftovers reports any a crashed run leaves */
    snprintf(g.mb_name, sizeof(g.mb_name), "tst-bxp-%llu-1", pid);
    CHECK(shmc_plat_region_create(&g.mbr, g.mb_name, sizeof(mailbox)));
    g.mb = g.mbr.base;
    g.mb->parent_pid = self.pid;
    g.mb->parent_start = self.start_time;
    atomic_store(&g.mb->floor_cpu, -1);
    snprintf(g.mb->stream, sizeof(g.mb->stream), "tst-bxp-%llu-2", pid);
    snprintf(g.mb->event_ping, sizeof(g.mb->event_ping), "Local\\shmcom-bxp-%llu-ping", pid);
    snprintf(g.mb->event_pong, sizeof(g.mb->event_pong), "Local\\shmcom-bxp-%llu-pong", pid);
#ifdef _WIN32
    char tmp[MAX_PATH + 1];
    DWORD tl = GetTempPathA(sizeof(tmp), tmp);
    if (tl == 0 || tl > 60)
        snprintf(tmp, sizeof(tmp), ".\\");
    snprintf(g.mb->sock_path, sizeof(g.mb->sock_path), "%sshmcom-bxp-%llu.sock", tmp, pid);
    WSADATA wsa;
    g.wsa = WSAStartup(MAKEWORD(2, 2), &wsa) == 0;
    events_make();
#else
    snprintf(g.mb->sock_path, sizeof(g.mb->sock_path), "/tmp/shmcom-bxp-%llu.sock", pid);
#endif
    open_waiters();
    CHECK(ShmCreateStreamOnSharedMemory(g.mb->stream, 64 * 1024, 0, &g.stream));
    snprintf(g.mc_name, sizeof(g.mc_name), "tst-bxp-%llu-3", pid);
    memcpy(g.mb->mc_name, g.mc_name, sizeof(g.mc_name));
    CHECK(shmc_plat_region_create(&g.mc, g.mc_name, BUF_SIZE));
    /* only this process maps it: its name goes at once, so that a run
     * killed with the child (Ctrl-C reaches both) leaves no 64 MiB behind */
    shmc_plat_region_unlink(g.mc_name);
    g.mc_name[0] = 0;
    g.mb->mc_name[0] = 0;
    unsigned char *buf = malloc(BUF_SIZE);
    if (!buf)
        fail("out of memory");
    for (uint32_t i = 0; i < BUF_SIZE; i++)
        buf[i] = (unsigned char)(i * 7);
    memcpy(g.mc.base, buf, BUF_SIZE); /* every page of the target mapped */
    *buf_out = buf;

    char exe[4096];
    CHECK(shmc_plat_self_exe(exe, sizeof(exe)));
    const char *argv[] = {exe, "--child", g.mb_name, NULL};
    CHECK(shmc_plat_proc_spawn(&g.peer, argv));
    g.have_peer = true;

    /* the server: an MTA object, marshaled for this process */
    CHECK(command(OP_SETUP, 0));
    /* the child has the mailbox mapped (it answered): its name has done its
     * job (and a run killed from here on leaves it nowhere) */
    shmc_plat_region_unlink(g.mb_name);
    g.mb_name[0] = 0;
    *default_spin = atomic_load(&g.mb->default_spin);
    CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED));
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    CHECK(IStream_Seek(g.stream, zero, STREAM_SEEK_SET, NULL));
    IBench *p = NULL;
    CHECK(ShmCoUnmarshalInterface(g.stream, &IID_IBench, (void **)&p));
    return p;
}

/* Lets the object go, stops the child and checks it exited cleanly. */
static void parent_teardown(IBench *p, unsigned char *buf)
{
    IBench_Release(p);
    ShmCoUninitialize();
    CHECK(command(OP_STOP, 0));
    if (shmc_plat_proc_wait(&g.peer, 30000) != S_OK)
        fail("the child did not exit");
    int code = g.peer.exit_code;
    shmc_plat_proc_close(&g.peer);
    g.have_peer = false;
    if (code != 0)
        fail("the child exited with code %d", code);
    cleanup();
    free(buf);
#ifdef _WIN32
    if (g.wsa)
        WSACleanup();
#endif
}

/* --only KIND SECONDS: one kind of call in a loop, for a profiler
 * (perf record follows the child too). */
static int parent_only(const char *kind, double seconds)
{
    unsigned char *buf;
    uint32_t default_spin;
    IBench *p = parent_setup(&buf, &default_spin);
    if (!strcmp(kind, "asleep"))
        CHECK(command(OP_CALLEE_SPIN, 0));
    double end = now_us() + seconds * 1e6, us = 0;
    while (now_us() < end) {
        if (!strcmp(kind, "null")) {
            /* with the spin floor beside it, in turns (see above) */
            double spin = 0;
            us = 0;
            for (int c = 0; c < CHUNKS; c++) {
                spin += floor_spin(20000 / CHUNKS) / CHUNKS;
                us += time_null(p, 20000 / CHUNKS) / CHUNKS;
            }
            printf("null: %.3f us per call, spin floor %.3f us: %.2fx\n", us, spin, us / spin);
            continue;
        }
        if (!strcmp(kind, "asleep"))
            us = time_null_gap(p, 2000, ASLEEP_GAP_US);
        else if (!strcmp(kind, "put1m"))
            us = time_put(p, buf, MiB, 200);
        else if (!strcmp(kind, "put16m"))
            us = time_put(p, buf, 16 * MiB, 10);
        else if (!strncmp(kind, "put:", 4) && strtoul(kind + 4, NULL, 10) <= 64 * KiB)
            us = time_put(p, buf, (uint32_t)strtoul(kind + 4, NULL, 10), 20000);
        else
            fail("--only null|asleep|put1m|put16m|put:BYTES (at most 65536) SECONDS");
        printf("%s: %.3f us per call\n", kind, us);
    }
    if (!strcmp(kind, "asleep"))
        CHECK(command(OP_CALLEE_SPIN, default_spin));
    parent_teardown(p, buf);
    return 0;
}

static void size_label(char *out, size_t cap, uint32_t size)
{
    if (size >= MiB && size % MiB == 0)
        snprintf(out, cap, "%u MiB", size / MiB);
    else if (size >= KiB && size % KiB == 0)
        snprintf(out, cap, "%u KiB", size / KiB);
    else
        snprintf(out, cap, "%u B", size);
}

/* The rows of one run, each one figure per round. */
typedef struct results {
    row spin, spin_lines, wait, events, sock, mc4k, mc1m, mc16m, fresh16m, hot, asleep, b2b;
    row hot_ratio;     /* each round's null call over its spin floor */
    row call[N_SWEEP]; /* µs per Put of sweep_sizes[i] */
    row mc[N_SWEEP];   /* µs per memcpy of sweep_sizes[i] */
    bool have_sock;
} results;

/* The [in] rows of the first table are rows of the sweep. */
#define SWEEP_4K  2
#define SWEEP_1M  4
#define SWEEP_16M 6

static void print_table(const results *r)
{
    double m_wait = row_median(&r->wait);
    double m_hot = row_median(&r->hot), m_asleep = row_median(&r->asleep);
    char note[128];
    printf("shmcom calls between two processes (median of %d rounds%s, %u CPUs)\n", n_rounds,
           quick ? ", --quick: too short to mean anything" : "", shmc_plat_cpu_count());
    printf("%-52s %9s  %-20s %7s  %s\n", "", "us/op", "fastest..slowest", "GB/s", "ratio");
    print_row("floor: spin ping-pong on a shared word", &r->spin, false, 0, NULL);
    print_row("(spin ping-pong, two words on lines of their own)", &r->spin_lines, false, 0, NULL);
#ifdef _WIN32
    print_row("floor: wait/wake ping-pong (named semaphores)", &r->wait, false, 0, NULL);
    print_row("floor: named events ping-pong", &r->events, false, 0, NULL);
#else
    print_row("floor: wait/wake ping-pong (futex)", &r->wait, false, 0, NULL);
#endif
    if (r->have_sock) {
        snprintf(note, sizeof(note), "%.1fx a null call (both running)",
                 row_median(&r->sock) / m_hot);
        print_row("floor: Unix socket request/reply, 1 byte", &r->sock, false, 0, note);
    } else {
        printf("%-52s %9s  (AF_UNIX: error %d)\n", "floor: Unix socket request/reply, 1 byte",
               "n/a", g.sock_err);
    }
    print_gbs_row("floor: memcpy 4 KiB into a shared mapping", &r->mc4k, 4 * KiB, NULL);
    print_gbs_row("floor: memcpy 1 MiB into a shared mapping", &r->mc1m, MiB, NULL);
    print_gbs_row("floor: memcpy 16 MiB into a shared mapping", &r->mc16m, 16 * MiB, NULL);
    print_gbs_row("floor: memcpy 16 MiB into a new region each time", &r->fresh16m, 16 * MiB, NULL);
    snprintf(note, sizeof(note), "%5.2fx spin floor", row_median(&r->hot_ratio));
    print_row("null call, both running", &r->hot, false, 0, note);
    snprintf(note, sizeof(note), "%5.2fx wait/wake floor", m_asleep / m_wait);
#ifdef _WIN32
    {
        size_t l = strlen(note);
        snprintf(note + l, sizeof(note) - l, ", %.2fx named events",
                 m_asleep / row_median(&r->events));
    }
#endif
    print_row("null call, server asleep (" ASLEEP_GAP_TEXT " between calls)", &r->asleep, false, 0,
              note);
    snprintf(note, sizeof(note), "%5.2fx wait/wake floor", row_median(&r->b2b) / m_wait);
    print_row("null call back to back, server not spinning", &r->b2b, false, 0, note);
    const row *put1m = &r->call[SWEEP_1M], *put16m = &r->call[SWEEP_16M];
    print_row("[in] 4 KiB array", &r->call[SWEEP_4K], true, 4 * KiB, NULL);
    snprintf(note, sizeof(note), "%5.2fx memcpy bandwidth",
             MiB / row_median(put1m) / 1000.0 / row_median(&r->mc1m));
    print_row("[in] 1 MiB array", put1m, true, MiB, note);
    snprintf(note, sizeof(note), "%5.2fx memcpy bandwidth, %.2fx new-region memcpy",
             16 * MiB / row_median(put16m) / 1000.0 / row_median(&r->mc16m),
             16 * MiB / row_median(put16m) / 1000.0 / row_median(&r->fresh16m));
    print_row("[in] 16 MiB array", put16m, true, 16 * MiB, note);

    printf("\n[in] array call against its size, beside memcpy of the same size into a warm\n"
           "shared mapping (median of %d rounds)\n",
           n_rounds);
    printf("%-8s %12s  %-24s %12s %9s %9s  %s\n", "size", "call us", "fastest..slowest",
           "memcpy us", "call GB/s", "mcpy GB/s", "call / memcpy");
    for (size_t i = 0; i < n_sweep; i++) {
        double med, lo, hi, mc = row_median(&r->mc[i]);
        char label[16];
        row_stats(&r->call[i], &med, &lo, &hi);
        size_label(label, sizeof(label), sweep_sizes[i]);
        printf("%-8s %12.3f  %11.3f..%-11.3f %12.4f", label, med, lo, hi, mc);
        if (sweep_sizes[i])
            printf(" %9.2f %9.2f  %6.2fx\n", sweep_sizes[i] / med / 1000.0,
                   sweep_sizes[i] / mc / 1000.0, med / mc);
        else
            printf("\n");
    }
}

static void tsv_row(const char *key, const row *r, const char *unit, const char *kind,
                    const char *label)
{
    double med, lo, hi;
    row_stats(r, &med, &lo, &hi);
    btsv_row(key, med, lo, hi, unit, kind, label);
}

/* A memcpy row is in GB/s: its fastest round is its highest. */
static void tsv_gbs_row(const char *key, const row *r, const char *label)
{
    double med, lo, hi;
    row_stats(r, &med, &lo, &hi);
    btsv_row(key, med, hi, lo, "GB/s", "floor", label);
}

static void print_tsv(const results *r)
{
    double m_wait = row_median(&r->wait);
    double m_hot = row_median(&r->hot), m_asleep = row_median(&r->asleep);
    btsv_header("bench_xproc", shmc_plat_cpu_count(), quick);
    tsv_row("floor.spin", &r->spin, "us", "floor", "spin ping-pong on a shared word, 2 processes");
    tsv_row("floor.spin_lines", &r->spin_lines, "us", "floor",
            "spin ping-pong, two words on lines of their own, 2 processes");
    /* one label on both platforms: the report puts them side by side */
    tsv_row("floor.wait", &r->wait, "us", "floor",
            "wait/wake ping-pong, 2 processes on 2 CPUs (futex; Windows: named semaphores)");
#ifdef _WIN32
    tsv_row("floor.events", &r->events, "us", "floor",
            "named events ping-pong, 2 processes on 2 CPUs");
#endif
    if (r->have_sock) {
        tsv_row("floor.socket", &r->sock, "us", "floor", "Unix socket request/reply, 1 byte");
        btsv_ratio("floor.socket", "null.running", row_median(&r->sock) / m_hot,
                   "a null call (both running)");
    }
    tsv_gbs_row("memcpy.4096", &r->mc4k, "memcpy 4 KiB into a shared mapping");
    tsv_gbs_row("memcpy.1048576", &r->mc1m, "memcpy 1 MiB into a shared mapping");
    tsv_gbs_row("memcpy.16777216", &r->mc16m, "memcpy 16 MiB into a shared mapping");
    tsv_gbs_row("memcpy_new.16777216", &r->fresh16m, "memcpy 16 MiB into a new region each time");
    tsv_row("null.running", &r->hot, "us", "call", "null call, both running");
    btsv_ratio("null.running", "floor.spin", row_median(&r->hot_ratio), "spin floor");
    tsv_row("null.asleep", &r->asleep, "us", "call",
            "null call, server asleep (" ASLEEP_GAP_TEXT " between calls)");
    btsv_ratio("null.asleep", "floor.wait", m_asleep / m_wait, "wait/wake floor");
#ifdef _WIN32
    btsv_ratio("null.asleep", "floor.events", m_asleep / row_median(&r->events),
               "named events floor");
#endif
    tsv_row("null.b2b", &r->b2b, "us", "call", "null call back to back, server not spinning");
    btsv_ratio("null.b2b", "floor.wait", row_median(&r->b2b) / m_wait, "wait/wake floor");
    static const struct {
        int sweep;
        const char *key, *mc_key, *label;
    } puts_[] = {
        {SWEEP_4K, "put.4096", "memcpy.4096", "[in] 4 KiB array"},
        {SWEEP_1M, "put.1048576", "memcpy.1048576", "[in] 1 MiB array"},
        {SWEEP_16M, "put.16777216", "memcpy.16777216", "[in] 16 MiB array"},
    };
    for (size_t i = 0; i < sizeof(puts_) / sizeof(puts_[0]); i++) {
        const row *c = &r->call[puts_[i].sweep];
        const row *m = puts_[i].sweep == SWEEP_4K   ? &r->mc4k
                       : puts_[i].sweep == SWEEP_1M ? &r->mc1m
                                                    : &r->mc16m;
        double bytes = sweep_sizes[puts_[i].sweep];
        tsv_row(puts_[i].key, c, "us", "call", puts_[i].label);
        btsv_ratio(puts_[i].key, puts_[i].mc_key, bytes / row_median(c) / 1000.0 / row_median(m),
                   "memcpy bandwidth");
        if (puts_[i].sweep == SWEEP_16M)
            btsv_ratio(puts_[i].key, "memcpy_new.16777216",
                       bytes / row_median(c) / 1000.0 / row_median(&r->fresh16m),
                       "new-region memcpy bandwidth");
    }
    for (size_t i = 0; i < n_sweep; i++) {
        char key[64], mkey[64], label[96], size[16];
        size_label(size, sizeof(size), sweep_sizes[i]);
        snprintf(key, sizeof(key), "size.call.%u", sweep_sizes[i]);
        snprintf(mkey, sizeof(mkey), "size.memcpy.%u", sweep_sizes[i]);
        snprintf(label, sizeof(label), "call with a %s [in] array", size);
        tsv_row(key, &r->call[i], "us", "call", label);
        snprintf(label, sizeof(label), "memcpy %s into a warm shared mapping", size);
        tsv_row(mkey, &r->mc[i], "us", "floor", label);
        if (sweep_sizes[i])
            btsv_ratio(key, mkey, row_median(&r->call[i]) / row_median(&r->mc[i]), "memcpy time");
    }
}

static int parent_main(bool tsv)
{
    const uint32_t n_spin = quick ? 100 : 20000, n_wait = quick ? 20 : 2000;
    const uint32_t n_sock = quick ? 20 : 2000, n_hot = quick ? 50 : 20000;
    const uint32_t n_asleep = quick ? 10 : 1000, n_16m = quick ? 2 : 12;
    const uint32_t mc_bytes = quick ? 32 * MiB : 256 * MiB;
    /* calls per round for each sweep size (4 KiB, 1 MiB and 16 MiB as the
     * first table always had them) */
    static const uint32_t n_call[N_SWEEP] = {5000, 5000, 5000, 2000, 200, 50, 12, 4};
    static const uint32_t n_call_quick[N_SWEEP] = {20, 20, 20, 10, 3, 2, 2, 1};
    if (quick)
        n_rounds = 3;

    unsigned char *buf;
    uint32_t default_spin;
    IBench *p = parent_setup(&buf, &default_spin);
    static results r; /* zeroed */
    r.have_sock = sock_setup();

    for (int k = 0; k < n_rounds; k++) {
        r.spin_lines.v[k] = floor_spin_lines(n_spin);
        r.wait.v[k] = floor_wait(n_wait);
#ifdef _WIN32
        r.events.v[k] = floor_events(n_wait);
#endif
        if (r.have_sock)
            r.sock.v[k] = floor_sock(n_sock);
        r.mc4k.v[k] = floor_memcpy(buf, 4 * KiB, mc_bytes / (4 * KiB));
        r.mc1m.v[k] = floor_memcpy(buf, MiB, mc_bytes / MiB);
        r.mc16m.v[k] = floor_memcpy(buf, 16 * MiB, mc_bytes / (16 * MiB));
        r.fresh16m.v[k] = floor_memcpy_fresh(buf, 16 * MiB, n_16m);

        /* the spin floor and the null calls take turns, a few
         * milliseconds each: both meet the same placements */
        r.spin.v[k] = r.hot.v[k] = 0;
        for (int c = 0; c < CHUNKS; c++) {
            r.spin.v[k] += floor_spin(n_spin / CHUNKS) / CHUNKS;
            r.hot.v[k] += time_null(p, n_hot / CHUNKS) / CHUNKS;
        }
        CHECK(command(OP_CALLEE_SPIN, 0));
        r.asleep.v[k] = time_null_gap(p, n_asleep, ASLEEP_GAP_US);
        r.b2b.v[k] = time_null(p, n_asleep);
        CHECK(command(OP_CALLEE_SPIN, default_spin));

        for (size_t i = 0; i < n_sweep; i++) {
            uint32_t size = sweep_sizes[i];
            r.call[i].v[k] = time_put(p, buf, size, quick ? n_call_quick[i] : n_call[i]);
            /* about mc_bytes copied, at least a few times, at most 2^20 */
            uint32_t n_mc = size ? mc_bytes / size : 1u << 20;
            n_mc = n_mc < 4 ? 4 : n_mc > (1u << 20) ? 1u << 20 : n_mc;
            r.mc[i].v[k] = time_memcpy(buf, size, n_mc);
        }
    }
    for (int k = 0; k < n_rounds; k++)
        r.hot_ratio.v[k] = r.hot.v[k] / r.spin.v[k];
    parent_teardown(p, buf);
    if (tsv)
        print_tsv(&r);
    else
        print_table(&r);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return child_main(argc > 2 ? argv[2] : NULL);
    bool tsv = false;
    const char *only = NULL;
    double only_s = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = true;
            n_sweep = N_SWEEP - 1;
        } else if (!strcmp(argv[i], "--tsv"))
            tsv = true;
        else if (!strcmp(argv[i], "--only") && i + 2 < argc) {
            only = argv[++i];
            only_s = atof(argv[++i]);
        } else {
            fprintf(stderr,
                    "usage: bench_xproc [--quick] [--tsv]\n"
                    "       bench_xproc --only null|asleep|put1m|put16m|put:BYTES SECONDS\n");
            return 2;
        }
    }
    CHECK(ShmCoRegisterProxyStubs(&bench_ProxyFileInfo));
    if (only)
        return parent_only(only, only_s);
    return parent_main(tsv);
}
