/*
 * test_attacker.c - a hostile peer, written as an attacker. This process
 * is the victim: it exports an object (in its MTA, or in an STA thread)
 * and hands a record of it to a child process that maps every region it
 * can reach through the runtime's internal headers (its connection's call
 * slots, the victim's endpoint, shared streams) and attacks:
 *
 *   frames_*     valid requests whose counts, offsets and lengths (and the
 *                slot header's lengths, kinds, methods, flags) another
 *                thread flips in a tight loop while the victim reads them
 *                (double fetch), on an MTA and on an STA object;
 *   slot_states  the slot state word rewritten while receivers serve the
 *                slot (a second receiver must never serve it at once);
 *   forged       records and IPIDs with one bit changed, and random ones;
 *   replay       records, IPIDs and releases used again after they were
 *                spent, and one record consumed by four connections at once;
 *   flood        every slot of four connections asking at once, garbage
 *                and surplus connection attempts; what the victim runs and
 *                keeps (threads, stub managers, records, objects) is
 *                sampled throughout and stays within docs/limits.md;
 *   replies      more than 65,536 calls returning new objects whose replies
 *                are never unmarshaled: the victim keeps 65,536 for the
 *                process (over all its connections), releases the rest at
 *                once;
 *   stranger     a process never handed a record finds the endpoint,
 *                connects and, told an object's ids (all but a record's
 *                nonce), cannot call it or take or release a reference;
 *   endpoint     the victim's endpoint header and connect slots scribbled
 *                on while clients connect;
 *   stream       a shared stream's header and bytes (and, on POSIX, its
 *                size) changed while the victim reads records from it;
 *   truncated    (POSIX) regions the victim maps cut short under it;
 *   hostile_server  the roles turned: this process calls a fake server
 *                that rewrites its replies after it has published them.
 *
 * Through every attack a well-behaved client child calls the object and
 * checks every answer. The victim must answer each bad request with an
 * error, keep serving the good client, never crash or hang (ASan checks
 * the victim too), and once the attacker is gone (it exits without
 * releasing anything, or is killed) hold exactly what it held before:
 * references, objects, stub managers, threads, handles, and no region of
 * the attacker left in /dev/shm.
 */
#define COBJMACROS
#include "callee.h"
#include "calltest.h"
#include "conn.h"
#include "objref.h"
#include "regionhdr.h"
#include "rt.h"
#include "shstream.h"
#include "tobj.h"
#include "xpeer.h"

#include <stdlib.h>
#include <string.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef _WIN32
#include <windows.h>
#endif
#ifndef _WIN32
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

/* How long anything may take before the test calls it a hang. */
#define HANG_MS 20000u

/* Fewer rounds where everything is slower. */
#if defined(_WIN32) || defined(__SANITIZE_ADDRESS__)
#define SLOW 1
#else
#define SLOW 0
#endif

static const ShmInterfaceInfo *callee_info(void)
{
    for (uint32_t i = 0; i < calltest_ProxyFileInfo.ninterfaces; i++)
        if (IsEqualIID(calltest_ProxyFileInfo.interfaces[i]->iid, &IID_ICallee))
            return calltest_ProxyFileInfo.interfaces[i];
    return NULL;
}

enum {
    M_NULL = 3,
    M_ADD,
    M_SCALARS,
    M_FAIL,
    M_ECHO,
    M_SUM,
    M_FILL,
    M_REVERSE,
    M_MAKEARRAY,
    M_MOVE,
    M_CALL,
    M_GETCHILD,
    M_GETTAG,
    M_QUERY,
    M_WAIT,
    M_GETTHREADID,
    M_GETCOUNT,
};

/* ---- the well-behaved client ---------------------------------------------------- */

typedef struct good_thread {
    ICallee *p;
    ICallback *cb;
    xpeer_mb *mb;
    uint64_t rng;
} good_thread;

static void good_main(void *arg)
{
    good_thread *g = arg;
    while (!atomic_load(&g->mb->stop)) {
        HRESULT hr = xpeer_good_call(g->p, g->cb, &g->rng, "good client");
        if (hr != S_OK) {
            if (atomic_fetch_add(&g->mb->wrong, 1) < 10)
                fprintf(stderr, "good client: a call failed: 0x%08x\n", (unsigned)hr);
        }
        atomic_fetch_add(&g->mb->calls, 1);
        if (hr == RPC_E_SERVER_DIED)
            break; /* the victim is gone: the test has failed already */
    }
}

/*
 * "good": unmarshals the table record in the mailbox's stream and calls
 * the object from two threads until told to stop, checking every answer
 * (a callback object of its own included). Exits 0 if none was wrong.
 */
static int child_good(const char *arg)
{
    xpeer x;
    CHILD_CHECK(xpeer_open(&x, arg));
    CHILD_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ICallee *p = NULL;
    CHILD_CHECK(ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p) == S_OK);
    callee *mine = callee_new(77, NULL);
    CHILD_CHECK(mine);
    good_thread g[2];
    shmc_plat_thread t[2];
    for (int i = 0; i < 2; i++) {
        g[i] = (good_thread){p, &mine->ICallback_iface, x.mb, 0x1234567ull + (uint64_t)i};
        CHILD_CHECK(shmc_plat_thread_create(&t[i], good_main, &g[i]) == S_OK);
    }
    atomic_store(&x.mb->ready, 1);
    for (int i = 0; i < 2; i++)
        shmc_plat_thread_join(&t[i]);
    if (atomic_load(&x.mb->wrong))
        return 1; /* (the victim may be gone: no more checks) */
    CHILD_CHECK(ICallee_Release(p) == 0);
    CHILD_CHECK(ICallee_Release(&mine->ICallee_iface) == 0); /* the victim let it go */
    ShmCoUninitialize();
    CHILD_CHECK(atomic_load(&live_callees) == 0);
    int wrong = (int)atomic_load(&x.mb->wrong);
    xpeer_close(&x);
    return wrong == 0 ? 0 : 1;
}

/* "good_once": a new client (its own connection): 300 checked calls. */
static int child_good_once(const char *arg)
{
    xpeer x;
    CHILD_CHECK(xpeer_open(&x, arg));
    CHILD_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ICallee *p = NULL;
    HRESULT hr = ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p);
    if (hr != S_OK)
        fprintf(stderr, "new client: unmarshal: 0x%08x\n", (unsigned)hr);
    CHILD_CHECK(hr == S_OK);
    callee *mine = callee_new(78, NULL);
    CHILD_CHECK(mine);
    uint64_t rng = 0xC0FFEE;
    for (int i = 0; i < 300; i++) {
        hr = xpeer_good_call(p, &mine->ICallback_iface, &rng, "new client");
        if (hr != S_OK)
            fprintf(stderr, "new client: call %d: 0x%08x\n", i, (unsigned)hr);
        CHILD_CHECK(hr == S_OK);
    }
    CHILD_CHECK(ICallee_Release(p) == 0);
    CHILD_CHECK(ICallee_Release(&mine->ICallee_iface) == 0);
    ShmCoUninitialize();
    xpeer_close(&x);
    return 0;
}

/* ---- the attacker's tools ------------------------------------------------------- */

typedef struct atk {
    xpeer x;
    ICallee *p; /* a real proxy, from the table record */
    shmc_conn *c;
    uint8_t ipid[16];
    shmc_objref rec; /* the table record */
    unsigned char raw[SHMC_OBJREF_MAX_SIZE];
    ULONG rawlen;
    uint64_t rng;
    uint64_t good_calls; /* the good client's count when we started */
} atk;

/* Ends the attacker at once, as if it were killed: nothing released, no
 * connection closed. (_Exit can hang under Wine while runtime threads are
 * busy: Windows ends the process the hard way.) */
_Noreturn static void die_now(int code)
{
    fflush(stdout);
    fflush(stderr);
#ifdef _WIN32
    TerminateProcess(GetCurrentProcess(), (UINT)code);
#endif
    _Exit(code);
}

#define ATK_CHECK(cond)                                                                        \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "attacker: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            die_now(1);                                                                        \
        }                                                                                      \
    } while (0)

static void atk_open(atk *a, const char *arg)
{
    memset(a, 0, sizeof(*a));
    ATK_CHECK(xpeer_open(&a->x, arg));
    ATK_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    ATK_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ATK_CHECK(IStream_Read(a->x.stream, a->raw, sizeof(a->raw), &a->rawlen) == S_OK);
    ATK_CHECK(shmc_objref_decode(a->raw, a->rawlen, &a->rec) == S_OK);
    tstream_rewind(a->x.stream);
    ATK_CHECK(ShmCoUnmarshalInterface(a->x.stream, &IID_ICallee, (void **)&a->p) == S_OK);
    ATK_CHECK(ICallee_Null(a->p) == S_OK);
    shmc_proxymgr *pm = shmc_proxymgr_from((IUnknown *)a->p);
    ATK_CHECK(pm && pm->conn);
    a->c = pm->conn;
    shmc_proxymgr_release_ref(pm);
    memcpy(a->ipid, ((shmc_ifproxy *)a->p)->ipid, 16);
    a->rng = a->x.mb->seed ? a->x.mb->seed : 0x5EED;
    a->good_calls = atomic_load(&a->x.mb->calls);
}

/* Ends an attack: waits until the good client was served some more
 * (calls in between the attacks), says so, and leaves as if killed:
 * nothing released, no connection closed. */
static void atk_exit(atk *a)
{
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(&a->x.mb->calls) < a->good_calls + 20) {
        ATK_CHECK(tsupport_ms_since(start) < HANG_MS); /* the good client is starved */
        shmc_plat_sleep_ms(1);
    }
    atomic_store(&a->x.mb->phase, 1);
    die_now(0);
}

/* Takes a slot of the connection out of the runtime's hands. */
static uint32_t atk_take_slot(shmc_conn *c)
{
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        uint32_t m = atomic_load(&c->free_mask);
        while (m) {
            uint32_t bit = m & (0u - m);
            if (atomic_compare_exchange_weak(&c->free_mask, &m, m & ~bit))
                return (uint32_t)__builtin_ctz(bit);
        }
        ATK_CHECK(tsupport_ms_since(start) < HANG_MS);
        shmc_plat_thread_yield();
    }
}

static void atk_give_slot(shmc_conn *c, uint32_t i)
{
    atomic_store(&shmc_conn_slot(c, i)->state, SHMC_SLOT_FREE);
    atomic_fetch_or(&c->free_mask, 1u << i);
}

static void atk_set(shmc_conn *c, uint32_t i, uint32_t kind, uint32_t method,
                    const uint8_t ipid[16], uint32_t req_len, uint32_t flags)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    atomic_store(&s->kind, kind);
    atomic_store(&s->method, method);
    atomic_store(&s->req_len, req_len);
    atomic_store(&s->flags, flags);
    memcpy(s->ipid, ipid, 16);
}

static void atk_ring(shmc_conn *c)
{
    atomic_fetch_add(&c->hdr->server_bell.value, 1);
    shmc_plat_wake(&c->server_bell, true);
}

static void atk_post(shmc_conn *c, uint32_t i)
{
    atomic_store(&shmc_conn_slot(c, i)->state, SHMC_SLOT_REQUEST);
    atk_ring(c);
}

/* Waits for the answer in slot i: true with its status; false if the
 * victim did not answer within HANG_MS. */
static bool atk_answer(shmc_conn *c, uint32_t i, HRESULT *status)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    uint64_t start = shmc_plat_clock_ns();
    for (unsigned k = 0;; k++) {
        if (atomic_load(&s->state) == SHMC_SLOT_REPLY)
            break;
        if ((k & 1023) == 1023) {
            if (tsupport_ms_since(start) > HANG_MS)
                return false;
            shmc_plat_thread_yield();
        }
    }
    *status = (HRESULT)atomic_load(&s->status);
    return true;
}

/* One request: posted, answered (or the attacker fails: the victim hangs). */
static HRESULT atk_request(shmc_conn *c, uint32_t i)
{
    HRESULT st = E_FAIL;
    atk_post(c, i);
    ATK_CHECK(atk_answer(c, i, &st));
    return st;
}

/* A runtime operation with a payload, in slot i. */
static HRESULT atk_op(shmc_conn *c, uint32_t i, uint32_t op, const void *in, uint32_t len)
{
    static const uint8_t none[16];
    memcpy(shmc_conn_req_area(c, i), in, len);
    atk_set(c, i, op, 0, none, len, 0);
    return atk_request(c, i);
}

/* ---- frames made by the real proxy engine ------------------------------------- */

/*
 * A channel that keeps the request of a call instead of sending it: the
 * generated proxy writes a real frame (with real interface records),
 * which the attacker then posts and mangles as it likes.
 */
typedef struct capture {
    ShmProxyChannel ch;
    ShmProxyHeader hdr; /* the proxy: ICallee methods through this channel */
    unsigned char *buf;
    uint32_t len;
} capture;

static HRESULT cap_QueryInterface(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid,
                                  void **ppv)
{
    (void)ch, (void)from, (void)riid;
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG cap_AddRef(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)ch, (void)from;
    return 1;
}

static HRESULT cap_GetBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call,
                             uint32_t size)
{
    (void)from;
    capture *cp = (capture *)ch;
    free(call->request);
    call->request = malloc(size ? size : 1);
    if (!call->request)
        return E_OUTOFMEMORY;
    call->request_size = size;
    call->marshaler = &shmc_local_marshaler;
    (void)cp;
    return S_OK;
}

static HRESULT cap_SendReceive(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call)
{
    (void)from;
    capture *cp = (capture *)ch;
    free(cp->buf);
    cp->buf = malloc(call->request_size ? call->request_size : 1);
    if (!cp->buf)
        return E_OUTOFMEMORY;
    memcpy(cp->buf, call->request, call->request_size);
    cp->len = call->request_size;
    return E_ABORT; /* kept, not sent */
}

static void cap_FreeBuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call)
{
    (void)ch, (void)from;
    free(call->request);
    call->request = NULL;
}

static const ShmProxyChannelVtbl capture_vtbl = {
    cap_QueryInterface, cap_AddRef, cap_AddRef, cap_GetBuffer, cap_SendReceive, cap_FreeBuffer};

/* A proxy whose calls land in cp->buf. */
static ICallee *capture_proxy(capture *cp)
{
    memset(cp, 0, sizeof(*cp));
    cp->ch.vtbl = &capture_vtbl;
    const ShmInterfaceInfo *info = callee_info();
    ATK_CHECK(info);
    cp->hdr.lpVtbl = info->proxy_vtbl;
    cp->hdr.info = info;
    cp->hdr.channel = &cp->ch;
    return (ICallee *)&cp->hdr;
}

/* ---- double fetch: frames rewritten while the victim reads them ---------------- */

/* A 32-bit word in shared memory that steers the victim, its good value
 * and bad ones to flip it to. */
typedef struct steer {
    _Atomic uint32_t *at;
    uint32_t good;
    uint32_t bad[4];
    unsigned nbad;
} steer;

#define MAX_STEER 256

typedef struct flipper {
    steer s[MAX_STEER];
    unsigned n;
    _Atomic bool stop;
    uint64_t flips;
    uint64_t rng;
} flipper;

static void steer_add(flipper *f, void *at, uint32_t good, uint32_t b0, uint32_t b1, uint32_t b2,
                      uint32_t b3)
{
    ATK_CHECK(f->n < MAX_STEER && (uintptr_t)at % 4 == 0);
    steer *s = &f->s[f->n++];
    s->at = at;
    s->good = good;
    s->bad[0] = b0, s->bad[1] = b1, s->bad[2] = b2, s->bad[3] = b3;
    s->nbad = 4;
}

/* Flips the steering words between bad and good values as fast as it can,
 * leaving each good again, so that the victim sees every mixture. */
static void flip_main(void *arg)
{
    flipper *f = arg;
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        uint64_t r = xpeer_rand(&f->rng);
        steer *s = &f->s[r % f->n];
        uint32_t bad = s->bad[(r >> 20) % s->nbad];
        for (unsigned k = 0; k < 1 + (r >> 40) % 16; k++) {
            atomic_store_explicit(s->at, bad, memory_order_relaxed);
            atomic_store_explicit(s->at, s->good, memory_order_relaxed);
        }
        f->flips++;
    }
}

/* One frame the attacker keeps posting, in a slot of its own. */
typedef struct job {
    uint32_t slot, method, len;
    unsigned char *frame; /* private copy */
    uint64_t ok, failed;
} job;

/* Makes the words of a posted frame that steer the victim flippable: the
 * counts of its arrays, the offsets and lengths of its variable parts;
 * and the slot header's kind, method, length, flags and IPID. */
static void steer_frame(flipper *f, flipper *fc, atk *a, job *j, bool counts_may_grow)
{
    const ShmMethod *m = &callee_info()->methods[j->method];
    unsigned char *req = shmc_conn_req_area(a->c, j->slot);
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (p->in_offset == SHM_NO_SLOT)
            continue;
        if (p->kind == SHM_PK_STRING || p->kind == SHM_PK_ARRAY || p->kind == SHM_PK_INTERFACE) {
            uint32_t off, len;
            memcpy(&off, req + p->in_offset, 4);
            memcpy(&len, req + p->in_offset + 4, 4);
            steer_add(f, req + p->in_offset, off, off + 8, j->len, 0xFFFFFFF8u, SHM_NULL_REF);
            steer_add(f, req + p->in_offset + 4, len, len + 4, 0xFFFFFFFFu, len + 4096, 0);
        }
        if (p->size_param && (p->flags & SHM_PF_IN)) {
            const ShmParam *cp = &m->params[p->size_param - 1];
            uint32_t n;
            memcpy(&n, req + cp->in_offset, 4);
            if (counts_may_grow) {
                steer_add(f, req + cp->in_offset, n, n + 1, 0x3FFFFFFFu, 0xFFFFFFFFu, 0);
                steer_add(fc, req + cp->in_offset, n, n + 1, 0x3FFFFFFFu, n + 1, n + 2);
            } else {
                steer_add(f, req + cp->in_offset, n, n + 1, n + 64, 0, n ? n - 1 : 1);
                steer_add(fc, req + cp->in_offset, n, n + 1, n + 64, n + 1, n + 2);
            }
        }
        if (p->size_param && !(p->flags & SHM_PF_IN)) {
            /* an [out] array the stub allocates: what any caller may ask
             * for, so only small lies (a large count is the limits' work) */
            const ShmParam *cp = &m->params[p->size_param - 1];
            uint32_t n;
            memcpy(&n, req + cp->in_offset, 4);
            if (cp->in_offset != SHM_NO_SLOT) {
                steer_add(f, req + cp->in_offset, n, n + 1, n + 64, 0, n ? n - 1 : 1);
                steer_add(fc, req + cp->in_offset, n, n + 1, n + 64, n + 1, n + 2);
            }
        }
    }
    shmc_slot_hdr *s = shmc_conn_slot(a->c, j->slot);
    steer_add(f, &s->req_len, j->len, j->len >= 4 ? j->len - 4 : 1, SHMC_SLOT_AREA + 1, 0xFFFFFFFFu,
              0);
    steer_add(f, &s->kind, SHMC_OP_METHOD, SHMC_OP_CONSUME, SHMC_OP_QI, 99, 0);
    steer_add(f, &s->method, j->method, 1000, 2, M_NULL, 0xFFFFFFFFu);
    steer_add(f, &s->flags, 0, SHMC_SLOT_BULK_REQ, SHMC_SLOT_REP_HELD, 0xFFFFFFFFu,
              SHMC_SLOT_BULK_REQ | SHMC_SLOT_REP_HELD);
    uint32_t w0;
    memcpy(&w0, a->ipid, 4);
    steer_add(f, (void *)s->ipid, w0, w0 ^ 1u, w0 ^ 0x80000000u, 0, ~w0);
}

static void job_place(atk *a, job *j)
{
    shmc_slot_hdr *s = shmc_conn_slot(a->c, j->slot);
    unsigned char *req = shmc_conn_req_area(a->c, j->slot);
    memcpy(req, j->frame, j->len);
    /* what lies past the frame is not zero: a count the stub did not
     * check reads (and sums) it */
    memset(req + j->len, 0x01, 8192);
    atk_set(a->c, j->slot, SHMC_OP_METHOD, j->method, a->ipid, j->len, 0);
    memset(s->req_bulk, 0, sizeof(s->req_bulk));
    memcpy(s->req_bulk, "bk.1.0000000000000000", 21); /* no such region */
}

/* Captures the frame of one call made through the capture proxy. */
#define CAPTURE(j, slot_, method_, call)              \
    do {                                              \
        capture cp_;                                  \
        ICallee *fp_ = capture_proxy(&cp_);           \
        ATK_CHECK((call) == E_ABORT);                 \
        (void)fp_;                                    \
        (j)->slot = (slot_), (j)->method = (method_); \
        (j)->frame = cp_.buf, (j)->len = cp_.len;     \
    } while (0)

enum { SUM_BIG = 1000, SUM_SMALL = 60 };

/*
 * "frames": the victim's object is called with valid frames whose
 * steering words another thread flips all the time. Every request must be
 * answered; a Sum that succeeds must have summed exactly the elements the
 * frame declares (past them lie ones: a count read twice shows).
 */
static int child_frames(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    callee *cbobj = callee_new(5, NULL);
    ATK_CHECK(cbobj);
    job jobs[9];
    memset(jobs, 0, sizeof(jobs));
    unsigned nj = 0;
    LONG *ones = malloc(SUM_BIG * sizeof(LONG));
    ATK_CHECK(ones);
    for (int i = 0; i < SUM_BIG; i++)
        ones[i] = 1;
    hyper total;
    LONG rev[300];
    for (int i = 0; i < 300; i++)
        rev[i] = i;
    BYTE fill[200];
    char text[301];
    memset(text, 'x', 300);
    text[300] = 0;
    CT_POINT pt = {1, 2, 3};
    CT_FRAME fr, moved;
    memset(&fr, 0, sizeof(fr));
    ICallee *kid;
    void *q;
    char *copy;
    uint32_t s[9];
    for (int i = 0; i < 9; i++)
        s[i] = atk_take_slot(a.c);
    CAPTURE(&jobs[nj], s[nj], M_SUM, ICallee_Sum(fp_, SUM_BIG, ones, &total));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_SUM, ICallee_Sum(fp_, SUM_SMALL, ones, &total));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_REVERSE, ICallee_Reverse(fp_, 300, rev));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_FILL, ICallee_Fill(fp_, sizeof(fill), fill));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_ECHO, ICallee_Echo(fp_, text, &copy));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_MOVE, ICallee_Move(fp_, pt, &fr, &moved));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_CALL, ICallee_Call(fp_, &cbobj->ICallback_iface, 9));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_QUERY, ICallee_Query(fp_, &IID_ICallback, &q));
    nj++;
    CAPTURE(&jobs[nj], s[nj], M_GETCHILD, ICallee_GetChild(fp_, 12, &kid));
    nj++;
    free(ones);

    /* two flippers: one for every steering word, one for the counts alone
     * (the words most worth reading twice), each for half of the rounds */
    flipper *f = calloc(1, sizeof(*f)), *fc = calloc(1, sizeof(*fc));
    ATK_CHECK(f && fc);
    f->rng = a.rng;
    fc->rng = a.rng + 1;
    for (unsigned k = 0; k < nj; k++) {
        job_place(&a, &jobs[k]);
        /* Reverse's count may only be checked against its array; Fill's
         * is a legitimate size for its [out] array */
        steer_frame(f, fc, &a, &jobs[k], jobs[k].method != M_FILL);
    }
    /* the reply areas too, where the victim writes the records of the
     * objects it hands out and then notes them */
    for (unsigned k = 0; k < nj; k++) {
        if ((jobs[k].method != M_GETCHILD && jobs[k].method != M_QUERY) || getenv("NOREP"))
            continue;
        unsigned char *rep = shmc_conn_rep_area(a.c, jobs[k].slot);
        for (uint32_t off = 16; off < 16 + SHMC_OBJREF_BASE_SIZE; off += 4)
            steer_add(f, rep + off, 0, 0x5A5A5A5Au, 1, 0xFFFFFFFFu, off);
    }
    shmc_plat_thread t;
    ATK_CHECK(shmc_plat_thread_create(&t, flip_main, f) == S_OK);

    uint32_t rounds = (uint32_t)a.x.mb->arg[0];
    uint64_t sums_checked = 0;
    for (uint32_t r = 0; r < rounds; r++) {
        if (r == rounds / 2) {
            atomic_store(&f->stop, true);
            shmc_plat_thread_join(&t);
            ATK_CHECK(shmc_plat_thread_create(&t, flip_main, fc) == S_OK);
        }
        for (unsigned k = 0; k < nj; k++)
            atk_post(a.c, jobs[k].slot);
        for (unsigned k = 0; k < nj; k++) {
            HRESULT st = E_FAIL;
            ATK_CHECK(atk_answer(a.c, jobs[k].slot, &st));
            if (SUCCEEDED(st))
                jobs[k].ok++;
            else
                jobs[k].failed++;
            if (SUCCEEDED(st) && jobs[k].method == M_SUM &&
                atomic_load(&shmc_conn_slot(a.c, jobs[k].slot)->method) == M_SUM) {
                /* the reply: HRESULT, then the total at offset 8 */
                const unsigned char *rep = shmc_conn_rep_area(a.c, jobs[k].slot);
                HRESULT mhr;
                memcpy(&mhr, rep, 4);
                if (mhr == S_OK) {
                    hyper got;
                    memcpy(&got, rep + 8, 8);
                    hyper want = jobs[k].len > 4000 ? SUM_BIG : SUM_SMALL;
                    if (got != want) {
                        fprintf(stderr, "attacker: Sum of %lld elements gave %lld\n",
                                (long long)want, (long long)got);
                        ATK_CHECK(!"the victim used a count it did not check");
                    }
                    sums_checked++;
                }
            }
            atomic_store(&shmc_conn_slot(a.c, jobs[k].slot)->state, SHMC_SLOT_FREE);
        }
    }
    atomic_store(&fc->stop, true);
    shmc_plat_thread_join(&t);
    uint64_t ok = 0, failed = 0;
    for (unsigned k = 0; k < nj; k++) {
        ok += jobs[k].ok, failed += jobs[k].failed;
        free(jobs[k].frame);
    }
    atomic_store(&a.x.mb->counter[0], ok);
    atomic_store(&a.x.mb->counter[1], failed);
    atomic_store(&a.x.mb->counter[2], f->flips + fc->flips);
    atomic_store(&a.x.mb->counter[3], sums_checked);
    /* the object still answers right through our own connection */
    LONG sum = 0;
    ATK_CHECK(ICallee_Add(a.p, -5, 7, &sum) == S_OK && sum == 2);
    atk_exit(&a);
    return 1;
}

/* ---- the slot's state word rewritten under the receivers ------------------------ */

static void bulk_hdr_init(void *base, size_t size, void *ctx)
{
    (void)size, (void)ctx;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    shmc_region_hdr_init(base, SHMC_REGION_KIND_BULK, SHMC_XPORT_VERSION, SHMC_BULK_DATA, &self,
                         0x1234);
}

/* A bulk region of ours holding `len` bytes of frame (name in *r). */
static unsigned char *atk_bulk(shmc_plat_region *r, uint32_t len)
{
    char name[SHMC_XNAME_MAX];
    ATK_CHECK(shmc_xport_random_name(name, sizeof(name), "bk") == S_OK);
    ATK_CHECK(shmc_plat_region_create_init(r, name, (size_t)SHMC_BULK_DATA + len, bulk_hdr_init,
                                           NULL) == S_OK);
    return (unsigned char *)r->base + SHMC_BULK_DATA;
}

typedef struct state_flipper {
    shmc_conn *c;
    uint32_t slots[8];
    unsigned n;
    _Atomic bool stop;
    uint64_t rng, flips;
} state_flipper;

/* Rewrites the state words (and the flags the server reads with them):
 * a slot a receiver is serving is posted again, given up on, freed, ... */
static void state_flip_main(void *arg)
{
    state_flipper *f = arg;
    static const uint32_t states[] = {
        SHMC_SLOT_REQUEST, SHMC_SLOT_REQUEST, SHMC_SLOT_ABANDONED, SHMC_SLOT_ABANDONED_EARLY,
        SHMC_SLOT_FREE,    SHMC_SLOT_REPLY,   SHMC_SLOT_RUNNING};
    while (!atomic_load_explicit(&f->stop, memory_order_relaxed)) {
        uint64_t r = xpeer_rand(&f->rng);
        shmc_slot_hdr *s = shmc_conn_slot(f->c, f->slots[r % f->n]);
        atomic_store(&s->state, states[(r >> 8) % 7]);
        if ((r >> 16) % 4 == 0)
            atomic_fetch_xor(&s->flags, SHMC_SLOT_REP_HELD);
        if ((r >> 20) % 8 == 0)
            atk_ring(f->c);
        for (unsigned k = 0; k < (r >> 32) % 256; k++)
            shmc_plat_cpu_relax();
        f->flips++;
    }
}

/*
 * "slot_states": requests whose frames lie in bulk regions (and large
 * replies, which the victim writes into bulk regions of its own), posted
 * over and over while another thread rewrites the slots' state words, so
 * that a slot a receiver is serving is posted again, abandoned early or
 * late, freed... A second receiver must never serve a slot that one is
 * serving: they share what the victim keeps per slot (its mappings of the
 * bulk regions).
 */
static int child_slot_states(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    enum { N = 6, BIG = 300000 };
    LONG *vals = malloc(BIG * sizeof(LONG));
    ATK_CHECK(vals);
    for (int i = 0; i < BIG; i++)
        vals[i] = 1;
    BYTE *fill = malloc(3u << 19);
    ATK_CHECK(fill);
    hyper total;
    job jobs[N];
    shmc_plat_region bulks[N];
    memset(jobs, 0, sizeof(jobs));
    memset(bulks, 0, sizeof(bulks));
    state_flipper *f = calloc(1, sizeof(*f));
    ATK_CHECK(f);
    f->c = a.c;
    f->rng = a.rng;
    for (unsigned k = 0; k < N; k++) {
        uint32_t slot = atk_take_slot(a.c);
        shmc_slot_hdr *s = shmc_conn_slot(a.c, slot);
        f->slots[f->n++] = slot;
        if (k % 3 == 0) { /* a frame in a bulk region of ours */
            CAPTURE(&jobs[k], slot, M_SUM, ICallee_Sum(fp_, BIG, vals, &total));
            memcpy(atk_bulk(&bulks[k], jobs[k].len), jobs[k].frame, jobs[k].len);
            atk_set(a.c, slot, SHMC_OP_METHOD, M_SUM, a.ipid, jobs[k].len, SHMC_SLOT_BULK_REQ);
            memset(s->req_bulk, 0, sizeof(s->req_bulk));
            memcpy(s->req_bulk, bulks[k].name, strlen(bulks[k].name));
        } else if (k % 3 == 1) { /* a reply in a bulk region of the victim's */
            CAPTURE(&jobs[k], slot, M_FILL, ICallee_Fill(fp_, (3u << 19), fill));
            job_place(&a, &jobs[k]);
        } else {
            CAPTURE(&jobs[k], slot, M_SUM, ICallee_Sum(fp_, 1000, vals, &total));
            job_place(&a, &jobs[k]);
        }
    }
    free(vals);
    free(fill);
    shmc_plat_thread t;
    ATK_CHECK(shmc_plat_thread_create(&t, state_flip_main, f) == S_OK);
    uint64_t posts = a.x.mb->arg[0];
    for (uint64_t i = 0; i < posts; i++) {
        atk_post(a.c, f->slots[i % f->n]);
        for (unsigned k = 0; k < 64; k++)
            shmc_plat_cpu_relax();
    }
    atomic_store(&f->stop, true);
    shmc_plat_thread_join(&t);

    /* calm: every slot posted once more, cleanly; each must be answered
     * (once whatever still runs there is done) */
    uint64_t ok = 0;
    for (unsigned k = 0; k < N; k++) {
        uint32_t slot = f->slots[k];
        shmc_slot_hdr *s = shmc_conn_slot(a.c, slot);
        /* what a receiver may still be doing here ends with REPLY or FREE;
         * but RUNNING may also be the last thing the flipper wrote, with no
         * receiver there: after a while, post anyway */
        uint64_t start = shmc_plat_clock_ns();
        uint32_t st;
        while ((st = atomic_load(&s->state)) == SHMC_SLOT_RUNNING &&
               tsupport_ms_since(start) < 1000)
            shmc_plat_thread_yield();
        start = shmc_plat_clock_ns();
        /* a receiver still serving what was posted before finds the state
         * changed and drops its reply, setting FREE: then post again */
        atk_set(a.c, slot, SHMC_OP_METHOD, M_NULL, a.ipid, 0, 0);
        for (;;) {
            atk_post(a.c, slot);
            while ((st = atomic_load(&s->state)) != SHMC_SLOT_REPLY && st != SHMC_SLOT_FREE) {
                ATK_CHECK(tsupport_ms_since(start) < HANG_MS);
                shmc_plat_thread_yield();
            }
            if (st == SHMC_SLOT_REPLY)
                break;
        }
        if (SUCCEEDED((HRESULT)atomic_load(&s->status)))
            ok++;
        atk_give_slot(a.c, slot);
    }
    atomic_store(&a.x.mb->counter[0], posts);
    atomic_store(&a.x.mb->counter[1], f->flips);
    atomic_store(&a.x.mb->counter[2], ok);
    LONG sum = 0;
    ATK_CHECK(ICallee_Add(a.p, -5, 7, &sum) == S_OK && sum == 2);
    atk_exit(&a);
    return 1;
}

/* ---- records and IPIDs: forged, replayed ----------------------------------------- */

/* Unmarshals record r (through a private stream): the result, and *out
 * (which must be NULL on failure). */
static HRESULT try_unmarshal(const shmc_objref *r, ICallee **out)
{
    unsigned char buf[SHMC_OBJREF_MAX_SIZE];
    shmc_objref_encode(r, buf);
    IStream *st = NULL;
    ATK_CHECK(shmc_stream_create_heap(0, &st) == S_OK);
    ATK_CHECK(IStream_Write(st, buf, shmc_objref_size(r), NULL) == S_OK);
    tstream_rewind(st);
    *out = (ICallee *)(uintptr_t)1;
    HRESULT hr = ShmCoUnmarshalInterface(st, &IID_ICallee, (void **)out);
    IStream_Release(st);
    ATK_CHECK(SUCCEEDED(hr) ? *out != NULL : *out == NULL);
    return hr;
}

static HRESULT atk_ref_op(shmc_conn *c, uint32_t slot, uint32_t op, const uint8_t ipid[16],
                          const IID *iid, uint32_t count, uint32_t flags)
{
    shmc_op_ref ref;
    memset(&ref, 0, sizeof(ref));
    memcpy(ref.ipid, ipid, 16);
    if (iid)
        ref.iid = *iid;
    ref.count = count;
    ref.mshlflags = flags;
    return atk_op(c, slot, op, &ref, sizeof(ref));
}

static void flip_bit(void *p, unsigned bit)
{
    ((unsigned char *)p)[bit / 8] ^= (unsigned char)(1u << (bit % 8));
}

/*
 * "forged": the table record with one bit changed, in every field that
 * names something (unmarshaled, and sent straight as CONSUME and
 * RELEASE_RECORD); random records; method calls and reference operations
 * on IPIDs one bit off the real one. Nothing forged reaches the object or
 * changes its references; the real record still works.
 */
static int child_forged(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    uint32_t sl = atk_take_slot(a.c);
    uint64_t refused = 0;
    struct {
        size_t off, bits;
    } fields[] = {
        {offsetof(shmc_objref, iid), 128},       {offsetof(shmc_objref, oxid), 64},
        {offsetof(shmc_objref, oid), 64},        {offsetof(shmc_objref, ipid), 128},
        {offsetof(shmc_objref, nonce), 64},      {offsetof(shmc_objref, pid), 12},
        {offsetof(shmc_objref, start_time), 12}, {offsetof(shmc_objref, endpoint), 8 * 20},
    };
    for (unsigned fi = 0; fi < sizeof(fields) / sizeof(fields[0]); fi++) {
        for (unsigned b = 0; b < fields[fi].bits; b++) {
            shmc_objref bad = a.rec;
            flip_bit((unsigned char *)&bad + fields[fi].off, b);
            ICallee *q;
            HRESULT hr = try_unmarshal(&bad, &q);
            if (SUCCEEDED(hr) && fields[fi].off == offsetof(shmc_objref, endpoint)) {
                /* still the real process and object: the connection to
                 * that process is found by its identity, the endpoint name
                 * only says how to make a new one */
                ICallee_Release(q);
                continue;
            }
            if (SUCCEEDED(hr)) {
                fprintf(stderr, "attacker: field %u bit %u: unmarshaled\n", fi, b);
                ATK_CHECK(!"a forged record was honoured");
            }
            refused++;
            if (fields[fi].off == offsetof(shmc_objref, pid) ||
                fields[fi].off == offsetof(shmc_objref, start_time) ||
                fields[fi].off == offsetof(shmc_objref, endpoint))
                continue; /* (the connection to the real process is what follows) */
            shmc_op_record op;
            shmc_op_record_from(&op, &bad);
            ATK_CHECK(atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
            ATK_CHECK(atk_op(a.c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) ==
                      CO_E_OBJNOTCONNECTED);
        }
    }
    /* other flags: a table record is not a NORMAL or a weak one */
    static const uint32_t flags[] = {MSHLFLAGS_NORMAL, MSHLFLAGS_TABLEWEAK, 3, 0xFFFFFFFFu};
    for (unsigned k = 0; k < 4; k++) {
        shmc_op_record op;
        shmc_op_record_from(&op, &a.rec);
        op.mshlflags = flags[k];
        HRESULT hr = atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op));
        ATK_CHECK(hr == CO_E_OBJNOTCONNECTED || hr == CO_E_OBJNOTREG);
    }
    /* random records, some with the real object's ids */
    for (int k = 0; k < 2000; k++) {
        shmc_op_record op;
        shmc_op_record_from(&op, &a.rec);
        uint64_t r = xpeer_rand(&a.rng);
        if (k % 2)
            op.oid = xpeer_rand(&a.rng), op.oxid = xpeer_rand(&a.rng);
        op.nonce = r;
        if (k % 3)
            for (int i = 0; i < 16; i += 8) {
                uint64_t w = xpeer_rand(&a.rng);
                memcpy(op.ipid + i, &w, 8);
            }
        ATK_CHECK(atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        refused++;
    }
    /* IPIDs one bit off: no method, QueryInterface, record or release */
    for (unsigned b = 0; b < 128; b++) {
        uint8_t ipid[16];
        memcpy(ipid, a.ipid, 16);
        flip_bit(ipid, b);
        atk_set(a.c, sl, SHMC_OP_METHOD, M_NULL, ipid, 0, 0);
        ATK_CHECK(atk_request(a.c, sl) == RPC_E_DISCONNECTED);
        ATK_CHECK(atk_ref_op(a.c, sl, SHMC_OP_QI, ipid, &IID_ICallback, 0, 0) ==
                  CO_E_OBJNOTCONNECTED);
        ATK_CHECK(atk_ref_op(a.c, sl, SHMC_OP_ADD_RECORD, ipid, NULL, 0, MSHLFLAGS_NORMAL) ==
                  CO_E_OBJNOTCONNECTED);
        ATK_CHECK(atk_ref_op(a.c, sl, SHMC_OP_RELEASE, ipid, NULL, 0xFFFFFFFFu, 0) ==
                  CO_E_OBJNOTCONNECTED);
        refused += 4;
    }
    /* the real record and IPID still work */
    ICallee *q = NULL;
    ATK_CHECK(try_unmarshal(&a.rec, &q) == S_OK);
    LONG sum = 0;
    ATK_CHECK(ICallee_Add(q, -5, 7, &sum) == S_OK && sum == 2);
    atk_set(a.c, sl, SHMC_OP_METHOD, M_NULL, a.ipid, 0, 0);
    ATK_CHECK(atk_request(a.c, sl) == S_OK);
    atomic_store(&a.x.mb->counter[0], refused);
    atk_exit(&a);
    return 1;
}

typedef struct racer {
    shmc_conn *c;
    uint32_t slot;
    shmc_op_record op;
    _Atomic uint32_t *go;
    HRESULT hr;
} racer;

static void racer_main(void *arg)
{
    racer *r = arg;
    memcpy(shmc_conn_req_area(r->c, r->slot), &r->op, sizeof(r->op));
    static const uint8_t none[16];
    atk_set(r->c, r->slot, SHMC_OP_CONSUME, 0, none, sizeof(r->op), 0);
    while (!atomic_load(r->go))
        shmc_plat_cpu_relax();
    r->hr = atk_request(r->c, r->slot);
}

/* The reply of the GetChild request in slot `slot`: the child's record. */
static void child_record(shmc_conn *c, uint32_t slot, shmc_objref *rec, unsigned char *raw,
                         uint32_t *rawlen)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, slot);
    uint32_t len = atomic_load(&s->rep_len);
    ATK_CHECK(!(atomic_load(&s->rep_flags) & (SHMC_SLOT_REP_INLINE | SHMC_SLOT_BULK_REP)));
    const unsigned char *rep = shmc_conn_rep_area(c, slot);
    HRESULT mhr;
    uint32_t off, n;
    memcpy(&mhr, rep, 4);
    memcpy(&off, rep + 4, 4);
    memcpy(&n, rep + 8, 4);
    ATK_CHECK(mhr == S_OK && n <= SHMC_OBJREF_MAX_SIZE && off + n <= len);
    memcpy(raw, rep + off, n);
    *rawlen = n;
    ATK_CHECK(shmc_objref_decode(raw, n, rec) == S_OK);
}

/*
 * "replay": records and IPIDs used again after they were spent or
 * released: NORMAL records the victim made (stream2) consumed and then
 * replayed, released twice, consumed by four connections at once;
 * references given back and then used; objects returned by a method,
 * released, and their records and IPIDs replayed.
 */
static int child_replay(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    IStream *s2 = NULL;
    char name[SHM_MAX_NAME + 1];
    memcpy(name, a.x.mb->stream2, sizeof(name));
    name[SHM_MAX_NAME] = 0;
    ATK_CHECK(ShmOpenStreamOnSharedMemory(name, 0, &s2) == S_OK);
    enum { NREC = 8 };
    shmc_objref recs[NREC];
    for (int i = 0; i < NREC; i++) {
        unsigned char raw[SHMC_OBJREF_MAX_SIZE];
        ATK_CHECK(IStream_Read(s2, raw, SHMC_OBJREF_MAX_SIZE, NULL) == S_OK);
        ATK_CHECK(shmc_objref_decode(raw, SHMC_OBJREF_MAX_SIZE, &recs[i]) == S_OK);
        ATK_CHECK(recs[i].mshlflags == MSHLFLAGS_NORMAL);
    }
    IStream_Release(s2);
    uint32_t sl = atk_take_slot(a.c);
    uint64_t refused = 0;
    shmc_op_record op;

    /* a NORMAL record is honoured once */
    ICallee *q = NULL;
    HRESULT hr0 = try_unmarshal(&recs[0], &q);
    if (hr0 != S_OK)
        fprintf(stderr, "attacker: the first record: 0x%08x\n", (unsigned)hr0);
    ATK_CHECK(hr0 == S_OK);
    ATK_CHECK(ICallee_Null(q) == S_OK);
    ICallee_Release(q);
    for (int k = 0; k < 3; k++) {
        ATK_CHECK(try_unmarshal(&recs[0], &q) == CO_E_OBJNOTCONNECTED);
        shmc_op_record_from(&op, &recs[0]);
        ATK_CHECK(atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        ATK_CHECK(atk_op(a.c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        refused += 3;
    }
    /* released unread, twice, then replayed */
    shmc_op_record_from(&op, &recs[1]);
    ATK_CHECK(atk_op(a.c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) == S_OK);
    ATK_CHECK(atk_op(a.c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
    ATK_CHECK(atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
    ATK_CHECK(try_unmarshal(&recs[1], &q) == CO_E_OBJNOTCONNECTED);
    refused += 3;

    /* one record, three more connections consuming it at once: one wins
     * (not the first connection: its references are given back below) */
    shmc_conn *conns[3] = {NULL, NULL, NULL};
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, a.rec.endpoint, a.rec.endpoint_len);
    ep[a.rec.endpoint_len] = 0;
    shmc_plat_procid owner = {a.rec.pid, a.rec.start_time};
    for (int i = 0; i < 3; i++)
        ATK_CHECK(shmc_conn_connect_new(ep, &owner, &conns[i]) == S_OK);
    for (int k = 2; k < 6; k++) {
        racer r[3];
        shmc_plat_thread t[3];
        _Atomic uint32_t go = 0;
        for (int i = 0; i < 3; i++) {
            r[i] = (racer){conns[i], atk_take_slot(conns[i]), {0}, &go, E_FAIL};
            shmc_op_record_from(&r[i].op, &recs[k]);
            ATK_CHECK(shmc_plat_thread_create(&t[i], racer_main, &r[i]) == S_OK);
        }
        atomic_store(&go, 1);
        int won = 0;
        for (int i = 0; i < 3; i++) {
            shmc_plat_thread_join(&t[i]);
            if (r[i].hr == S_OK)
                won++;
            else
                ATK_CHECK(r[i].hr == CO_E_OBJNOTCONNECTED);
            atk_give_slot(conns[i], r[i].slot);
        }
        ATK_CHECK(won == 1); /* (the winner's reference goes back when we die) */
        refused += 2;
    }

    /* references given back, then used: with every reference of the
     * connection on the object's IPID gone (the table proxy too), the IPID
     * names nothing it may use */
    atk_set(a.c, sl, SHMC_OP_METHOD, M_NULL, a.ipid, 0, 0);
    ATK_CHECK(atk_request(a.c, sl) == S_OK); /* (the receiver remembers that IPID now) */
    ATK_CHECK(ICallee_Release(a.p) == 0);
    a.p = NULL;
    for (int k = 0; k < 3; k++) {
        atk_set(a.c, sl, SHMC_OP_METHOD, M_NULL, a.ipid, 0, 0);
        ATK_CHECK(atk_request(a.c, sl) == RPC_E_DISCONNECTED);
        ATK_CHECK(atk_ref_op(a.c, sl, SHMC_OP_QI, a.ipid, &IID_ICallback, 0, 0) ==
                  CO_E_OBJNOTCONNECTED);
        ATK_CHECK(atk_ref_op(a.c, sl, SHMC_OP_ADD_RECORD, a.ipid, NULL, 0, MSHLFLAGS_NORMAL) ==
                  CO_E_OBJNOTCONNECTED);
        /* a release of what it no longer holds changes nothing */
        HRESULT hr = atk_ref_op(a.c, sl, SHMC_OP_RELEASE, a.ipid, NULL, 1000, 0);
        ATK_CHECK(hr == S_OK || hr == CO_E_OBJNOTCONNECTED);
        refused += 4;
    }

    /* objects handed out by a method, released, then their records and
     * IPIDs used again */
    ICallee *again = NULL;
    ATK_CHECK(try_unmarshal(&a.rec, &again) == S_OK); /* the table record */
    uint8_t ipid[16];
    memcpy(ipid, ((shmc_ifproxy *)again)->ipid, 16);
    job gc;
    CAPTURE(&gc, sl, M_GETCHILD, ICallee_GetChild(fp_, 31, &q));
    for (int k = 0; k < 50; k++) {
        memcpy(shmc_conn_req_area(a.c, sl), gc.frame, gc.len);
        atk_set(a.c, sl, SHMC_OP_METHOD, M_GETCHILD, ipid, gc.len, 0);
        ATK_CHECK(atk_request(a.c, sl) == S_OK);
        shmc_objref krec;
        unsigned char kraw[SHMC_OBJREF_MAX_SIZE];
        uint32_t klen;
        child_record(a.c, sl, &krec, kraw, &klen);
        ICallee *kid = NULL;
        ATK_CHECK(shmc_local_marshaler.vtbl->Unmarshal(&shmc_local_marshaler, &IID_ICallee, kraw,
                                                       klen, (void **)&kid) == S_OK);
        LONG tag = 0;
        ATK_CHECK(ICallee_GetTag(kid, &tag) == S_OK && tag == 31);
        ATK_CHECK(ICallee_Release(kid) == 0); /* the child is gone over there */
        shmc_op_record_from(&op, &krec);
        ATK_CHECK(atk_op(a.c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        ATK_CHECK(atk_op(a.c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        atk_set(a.c, sl, SHMC_OP_METHOD, M_GETTAG, krec.ipid, 0, 0);
        ATK_CHECK(atk_request(a.c, sl) == RPC_E_DISCONNECTED);
        /* giving back what it no longer holds changes nothing */
        HRESULT hr = atk_ref_op(a.c, sl, SHMC_OP_RELEASE, krec.ipid, NULL, 1, 0);
        ATK_CHECK(hr == S_OK || hr == CO_E_OBJNOTCONNECTED);
        refused += 4;
    }
    free(gc.frame);
    /* records 6 and 7 are left for the victim to release */
    atomic_store(&a.x.mb->counter[0], refused);
    atk_exit(&a);
    return 1;
}

/* ---- a stranger: a process never handed a record ------------------------------- */

#ifndef _WIN32
typedef struct ep_find {
    uint64_t owner_pid;
    char name[SHMC_XNAME_MAX];
    unsigned found;
} ep_find;

/* An endpoint region whose header names process f->owner_pid. */
static bool find_endpoint(const char *name, void *ctx)
{
    ep_find *f = ctx;
    shmc_plat_region r;
    shmc_region_info info;
    if (SUCCEEDED(shmc_plat_region_open(&r, name))) {
        if (SUCCEEDED(shmc_region_hdr_read(r.base, r.size, &info)) &&
            info.kind == SHMC_REGION_KIND_ENDPOINT && info.owner.pid == f->owner_pid &&
            strlen(name) < sizeof(f->name)) {
            memcpy(f->name, name, strlen(name) + 1);
            f->found++;
        }
        shmc_plat_region_close(&r);
    }
    return true;
}
#endif

/*
 * "stranger": a process of the same user that was never handed a record
 * of the object. It finds the victim's endpoint as anyone can (POSIX: in
 * the listing of /dev/shm, by the owner in its header; Windows, where
 * named mappings cannot be listed: its name from the mailbox), connects
 * (the victim serves any process of its user), and is told the object's
 * IPID, object id and apartment id (mb->arg) out of band: what a record
 * carries besides its nonce. Knowing them must not be enough. A method
 * call on an IPID the connection holds no reference on gets
 * RPC_E_DISCONNECTED; QueryInterface, a new record or a release on it
 * CO_E_OBJNOTCONNECTED; a record with the real ids and a guessed nonce
 * (counted up from 0, and random) is neither honoured nor released,
 * whether sent straight (CONSUME, RELEASE_RECORD) or unmarshaled through
 * the public functions. The parent checks that the object was never
 * called and that its records are intact.
 */
static int child_stranger(const char *arg)
{
    xpeer x;
    ATK_CHECK(xpeer_open(&x, arg));
    ATK_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    ATK_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    uint8_t ipid[16];
    memcpy(ipid, (const void *)&x.mb->arg[0], 8);
    memcpy(ipid + 8, (const void *)&x.mb->arg[1], 8);
    uint64_t oid = x.mb->arg[2], oxid = x.mb->arg[3], rng = 0x57A4;
    char told[SHMC_XNAME_MAX];
    memset(told, 0, sizeof(told));
    memcpy(told, x.mb->stream2, strnlen(x.mb->stream2, sizeof(told) - 1));
    char ep[SHMC_XNAME_MAX];
#ifndef _WIN32
    ep_find f;
    memset(&f, 0, sizeof(f));
    f.owner_pid = (uint64_t)getppid();
    ATK_CHECK(shmc_plat_region_list("ep.", find_endpoint, &f) == S_OK);
    ATK_CHECK(f.found == 1 && strcmp(f.name, told) == 0); /* found: the victim's */
    memcpy(ep, f.name, sizeof(ep));
#else
    memcpy(ep, told, sizeof(ep));
#endif
    shmc_plat_region epr;
    shmc_region_info info;
    ATK_CHECK(shmc_plat_region_open(&epr, ep) == S_OK);
    ATK_CHECK(shmc_region_hdr_read(epr.base, epr.size, &info) == S_OK);
    shmc_plat_region_close(&epr);
    shmc_plat_procid owner = info.owner;
    shmc_conn *c = NULL;
    ATK_CHECK(shmc_conn_connect_new(ep, &owner, &c) == S_OK);
    uint32_t sl = atk_take_slot(c);

    /* method calls with real frames: none reaches the object */
    job frames[5];
    memset(frames, 0, sizeof(frames));
    LONG sum;
    ICallee *kid;
    char *copy;
    CAPTURE(&frames[0], sl, M_NULL, ICallee_Null(fp_));
    CAPTURE(&frames[1], sl, M_ADD, ICallee_Add(fp_, 1, 2, &sum));
    CAPTURE(&frames[2], sl, M_GETCHILD, ICallee_GetChild(fp_, 7, &kid));
    CAPTURE(&frames[3], sl, M_WAIT, ICallee_Wait(fp_, 1));
    CAPTURE(&frames[4], sl, M_ECHO, ICallee_Echo(fp_, "stranger", &copy));
    uint64_t refused = 0;
    static const IID *const iids[] = {&IID_ICallee, &IID_ICallback, &IID_IUnknown};
    static const uint32_t flags[] = {MSHLFLAGS_NORMAL, MSHLFLAGS_TABLESTRONG, MSHLFLAGS_TABLEWEAK};
    for (int round = 0; round < 2; round++) {
        for (unsigned k = 0; k < 5; k++) {
            memcpy(shmc_conn_req_area(c, sl), frames[k].frame, frames[k].len);
            atk_set(c, sl, SHMC_OP_METHOD, frames[k].method, ipid, frames[k].len, 0);
            HRESULT hr = atk_request(c, sl);
            if (hr != RPC_E_DISCONNECTED)
                fprintf(stderr, "stranger: method %u: 0x%08x\n", frames[k].method, (unsigned)hr);
            ATK_CHECK(hr == RPC_E_DISCONNECTED);
            refused++;
        }
        for (unsigned k = 0; k < 3; k++) {
            ATK_CHECK(atk_ref_op(c, sl, SHMC_OP_QI, ipid, iids[k], 0, 0) == CO_E_OBJNOTCONNECTED);
            ATK_CHECK(atk_ref_op(c, sl, SHMC_OP_ADD_RECORD, ipid, NULL, 0, flags[k]) ==
                      CO_E_OBJNOTCONNECTED);
            refused += 2;
        }
        ATK_CHECK(atk_ref_op(c, sl, SHMC_OP_RELEASE, ipid, NULL, 1, 0) == CO_E_OBJNOTCONNECTED);
        refused++;
        if (round == 1)
            break;

        /* records with the real ids and guessed nonces: counted, random */
        shmc_op_record op;
        memset(&op, 0, sizeof(op));
        op.oxid = oxid;
        op.oid = oid;
        memcpy(op.ipid, ipid, 16);
        op.iid = IID_ICallee;
        for (unsigned k = 0; k < 3; k++) {
            op.mshlflags = flags[k];
            HRESULT want = flags[k] == MSHLFLAGS_TABLEWEAK ? CO_E_OBJNOTREG : CO_E_OBJNOTCONNECTED;
            for (unsigned n = 0; n < (SLOW ? 1000u : 3000u); n++) {
                op.nonce = n < 1000 ? n : xpeer_rand(&rng);
                ATK_CHECK(atk_op(c, sl, SHMC_OP_CONSUME, &op, sizeof(op)) == want);
                ATK_CHECK(atk_op(c, sl, SHMC_OP_RELEASE_RECORD, &op, sizeof(op)) ==
                          CO_E_OBJNOTCONNECTED);
                refused += 2;
            }
        }
        /* ... and through the public functions, as a record */
        shmc_objref rec;
        memset(&rec, 0, sizeof(rec));
        rec.mshlflags = MSHLFLAGS_TABLESTRONG;
        rec.mshctx = MSHCTX_LOCAL;
        rec.iid = IID_ICallee;
        rec.pid = owner.pid;
        rec.start_time = owner.start_time;
        rec.oxid = oxid;
        rec.oid = oid;
        memcpy(rec.ipid, ipid, 16);
        rec.endpoint_len = (uint32_t)strlen(ep);
        memcpy(rec.endpoint, ep, rec.endpoint_len);
        for (unsigned n = 0; n < 200; n++) {
            rec.mshlflags = n % 2 ? MSHLFLAGS_NORMAL : MSHLFLAGS_TABLESTRONG;
            rec.nonce = n < 100 ? n + 1 : xpeer_rand(&rng);
            ICallee *q;
            HRESULT hr = try_unmarshal(&rec, &q);
            if (hr != CO_E_OBJNOTCONNECTED)
                fprintf(stderr, "stranger: a guessed record: 0x%08x\n", (unsigned)hr);
            ATK_CHECK(hr == CO_E_OBJNOTCONNECTED);
            /* a release of a record nobody made does nothing (S_OK, as for
             * one already spent, in COM) */
            unsigned char buf[SHMC_OBJREF_MAX_SIZE];
            shmc_objref_encode(&rec, buf);
            IStream *st = NULL;
            ATK_CHECK(shmc_stream_create_heap(0, &st) == S_OK);
            ATK_CHECK(IStream_Write(st, buf, shmc_objref_size(&rec), NULL) == S_OK);
            tstream_rewind(st);
            ATK_CHECK(ShmCoReleaseMarshalData(st) == S_OK);
            IStream_Release(st);
            refused += 2;
        }
    }
    for (unsigned k = 0; k < 5; k++)
        free(frames[k].frame);
    atomic_store(&x.mb->counter[0], refused);
    /* the parent looks at the object now; then we leave as if killed */
    atomic_store(&x.mb->busy, 1);
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&x.mb->done)) {
        ATK_CHECK(tsupport_ms_since(start) < 6 * HANG_MS);
        shmc_plat_sleep_ms(1);
    }
    atomic_store(&x.mb->phase, 1);
    die_now(0);
}

/* ---- floods ------------------------------------------------------------------------ */

/* Waits (bounded) until the parent has done what it does while we attack. */
static void atk_until_done(atk *a)
{
    atomic_store(&a->x.mb->busy, 1);
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&a->x.mb->done)) {
        ATK_CHECK(tsupport_ms_since(start) < 6 * HANG_MS);
        shmc_plat_sleep_ms(1);
    }
}

/* Claims a connect slot of the endpoint `eh` (or NULL if none is free). */
static shmc_ep_slot *ep_claim(shmc_ep_hdr *eh, uint64_t as)
{
    for (int i = 0; i < SHMC_EP_SLOTS; i++) {
        uint64_t zero = 0;
        if (atomic_compare_exchange_strong(&eh->slots[i].claim, &zero, as))
            return &eh->slots[i];
    }
    return NULL;
}

/* Posts garbage into a connect slot: names that are no connection, or
 * another process's identity. */
static void ep_garbage(shmc_ep_hdr *eh, uint64_t *rng, const char *mailbox)
{
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    shmc_ep_slot *es = ep_claim(eh, self.pid);
    if (!es)
        return;
    uint64_t r = xpeer_rand(rng);
    static const char *names[] = {"cn.1.0000000000000000", "", "x/y", NULL};
    const char *n = names[r % 4] ? names[r % 4] : mailbox;
    atomic_store(&es->client_pid, (r >> 8) % 3 == 0 ? 1 : self.pid);
    atomic_store(&es->client_start, (r >> 12) % 3 == 0 ? r : self.start_time);
    memset(es->conn_name, 0, sizeof(es->conn_name));
    memcpy(es->conn_name, n, strlen(n));
    if ((r >> 16) % 5 == 0)
        memset(es->conn_name, 'z', sizeof(es->conn_name)); /* no NUL */
    atomic_store(&es->posted, 1);
    atomic_fetch_add(&eh->bell.value, 1);
}

typedef struct connflood {
    atk *a;
    shmc_ep_hdr *eh;
    _Atomic bool stop;
    uint64_t rejected, garbage;
} connflood;

/* More connections than the victim serves for one process (it holds the
 * most already), and garbage in the connect slots. */
static void connflood_main(void *arg)
{
    connflood *f = arg;
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, f->a->rec.endpoint, f->a->rec.endpoint_len);
    ep[f->a->rec.endpoint_len] = 0;
    shmc_plat_procid owner = {f->a->rec.pid, f->a->rec.start_time};
    uint64_t rng = 99;
    while (!atomic_load(&f->stop)) {
        shmc_conn *extra = NULL;
        HRESULT hr = shmc_conn_connect_new(ep, &owner, &extra);
        ATK_CHECK(hr == RPC_E_SERVERCALL_REJECTED);
        f->rejected++;
        for (int k = 0; k < 20; k++, f->garbage++)
            ep_garbage(f->eh, &rng, f->a->x.name);
    }
}

/*
 * "flood": every slot of four connections (the most the victim serves for
 * one process) posts again as soon as it is answered, with replies never
 * read, objects returned and never taken, calls that take their time (MTA
 * only: an STA runs one call at a time for everyone, as in COM); meanwhile
 * connections beyond the limit and garbage connect requests. A new client
 * must still get in and be served (the parent starts one), and the
 * attacker then leaves with all of it in flight.
 */
static int child_flood(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    bool mta = a.x.mb->coinit == COINIT_MULTITHREADED;
    shmc_conn *conns[4] = {a.c, NULL, NULL, NULL};
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, a.rec.endpoint, a.rec.endpoint_len);
    ep[a.rec.endpoint_len] = 0;
    shmc_plat_procid owner = {a.rec.pid, a.rec.start_time};
    for (int i = 1; i < 4; i++)
        ATK_CHECK(shmc_conn_connect_new(ep, &owner, &conns[i]) == S_OK);
    /* every connection needs a reference on the IPID to call it */
    shmc_op_record op;
    shmc_op_record_from(&op, &a.rec);
    for (int i = 1; i < 4; i++) {
        uint32_t sl = atk_take_slot(conns[i]);
        ATK_CHECK(atk_op(conns[i], sl, SHMC_OP_CONSUME, &op, sizeof(op)) == S_OK);
        atk_give_slot(conns[i], sl);
    }
    job frames[6];
    memset(frames, 0, sizeof(frames));
    LONG vals[1000] = {0};
    hyper total;
    ICallee *kid;
    char *copy;
    CAPTURE(&frames[0], 0, M_NULL, ICallee_Null(fp_));
    CAPTURE(&frames[1], 0, M_SUM, ICallee_Sum(fp_, 1000, vals, &total));
    CAPTURE(&frames[2], 0, M_GETCHILD, ICallee_GetChild(fp_, 3, &kid));
    CAPTURE(&frames[3], 0, M_ECHO, ICallee_Echo(fp_, "flood", &copy));
    CAPTURE(&frames[4], 0, M_WAIT, ICallee_Wait(fp_, 20));
    CAPTURE(&frames[5], 0, M_ADD, ICallee_Add(fp_, -3, 3, (LONG *)&total));
    unsigned nframes = mta ? 6 : 4;
    struct {
        shmc_conn *c;
        uint32_t slot;
    } slots[4 * SHMC_CONN_SLOTS];
    unsigned n = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t m;
        while ((m = atomic_load(&conns[i]->free_mask)) != 0) {
            uint32_t sl = atk_take_slot(conns[i]);
            job *f = &frames[n % nframes];
            memcpy(shmc_conn_req_area(conns[i], sl), f->frame, f->len);
            atk_set(conns[i], sl, SHMC_OP_METHOD, f->method, a.ipid, f->len, 0);
            slots[n].c = conns[i];
            slots[n++].slot = sl;
        }
    }
    shmc_plat_region epr;
    ATK_CHECK(shmc_plat_region_open(&epr, ep) == S_OK);
    connflood cf = {&a, epr.base, false, 0, 0};
    shmc_plat_thread t;
    ATK_CHECK(shmc_plat_thread_create(&t, connflood_main, &cf) == S_OK);
    atomic_store(&a.x.mb->busy, 1);
    uint64_t posts = 0, min_posts = a.x.mb->arg[0], start = shmc_plat_clock_ns();
    while (!atomic_load(&a.x.mb->done) || posts < min_posts) {
        ATK_CHECK(tsupport_ms_since(start) < 6 * HANG_MS);
        for (unsigned k = 0; k < n; k++) {
            shmc_slot_hdr *s = shmc_conn_slot(slots[k].c, slots[k].slot);
            uint32_t st = atomic_load(&s->state);
            if (st == SHMC_SLOT_REPLY || st == SHMC_SLOT_FREE) {
                atomic_store(&s->state, SHMC_SLOT_REQUEST);
                if (posts++ % 2)
                    atk_ring(slots[k].c);
            }
        }
        shmc_plat_thread_yield();
    }
    atomic_store(&cf.stop, true);
    shmc_plat_thread_join(&t);
    shmc_plat_region_close(&epr);
    atomic_store(&a.x.mb->counter[0], posts);
    atomic_store(&a.x.mb->counter[1], cf.rejected);
    atomic_store(&a.x.mb->counter[2], cf.garbage);
    atk_exit(&a); /* with every slot still asking */
    return 1;
}

/*
 * "replies": more than SHMC_CONN_MAX_MADE calls that return a new object
 * (GetChild), whose replies are never unmarshaled: the victim keeps a
 * record (and the object) for each of the first 65,536; past them the
 * call succeeds but the object in its reply is released at once, and its
 * record names nothing (docs/limits.md). The bound is per client process:
 * a second connection of ours is at the cap too. A record spent makes
 * room for exactly one more. Then we leave with 65,535 records
 * outstanding; the victim gives every object back.
 */
static int child_replies(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    const uint32_t max = SHMC_CONN_MAX_MADE;
    uint32_t sl = atk_take_slot(a.c), sl2 = atk_take_slot(a.c);
    job gc;
    ICallee *q;
    CAPTURE(&gc, sl, M_GETCHILD, ICallee_GetChild(fp_, 31, &q));
    shmc_objref rec, one;
    unsigned char raw[SHMC_OBJREF_MAX_SIZE], first_raw[SHMC_OBJREF_MAX_SIZE],
        one_raw[SHMC_OBJREF_MAX_SIZE];
    uint32_t len = 0, first_len = 0, one_len = 0;
    /* one GetChild in slot sl: its record (the method succeeded) */
#define GET_CHILD(c_, slot_, rec_, raw_, len_)                                 \
    do {                                                                       \
        memcpy(shmc_conn_req_area((c_), (slot_)), gc.frame, gc.len);           \
        atk_set((c_), (slot_), SHMC_OP_METHOD, M_GETCHILD, a.ipid, gc.len, 0); \
        HRESULT ghr_ = atk_request((c_), (slot_));                             \
        if (ghr_ != S_OK)                                                      \
            fprintf(stderr, "attacker: GetChild: 0x%08x\n", (unsigned)ghr_);   \
        ATK_CHECK(ghr_ == S_OK);                                               \
        child_record((c_), (slot_), (rec_), (raw_), (len_));                   \
    } while (0)
    for (uint32_t i = 0; i < max; i++) {
        GET_CHILD(a.c, sl, &rec, raw, &len);
        if (i == 0) {
            memcpy(first_raw, raw, len);
            first_len = len;
        }
        if (i % 1024 == 0)
            atomic_store(&a.x.mb->counter[0], i);
    }
    atomic_store(&a.x.mb->counter[0], max);
    /* past the cap: the call is answered, its object already gone */
    shmc_op_record op;
    uint32_t past = SLOW ? 100 : 300;
    for (uint32_t k = 0; k < past; k++) {
        GET_CHILD(a.c, sl, &rec, raw, &len);
        shmc_op_record_from(&op, &rec);
        ATK_CHECK(atk_op(a.c, sl2, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
        atk_set(a.c, sl2, SHMC_OP_METHOD, M_GETTAG, rec.ipid, 0, 0);
        ATK_CHECK(atk_request(a.c, sl2) == RPC_E_DISCONNECTED);
        if (k % 10 == 0) {
            ICallee *kid = (ICallee *)(uintptr_t)1;
            ATK_CHECK(shmc_local_marshaler.vtbl->Unmarshal(&shmc_local_marshaler, &IID_ICallee, raw,
                                                           len,
                                                           (void **)&kid) == CO_E_OBJNOTCONNECTED);
            ATK_CHECK(kid == NULL);
        }
        atomic_store(&a.x.mb->counter[1], k + 1);
    }
    /* the parent counts the objects alive now */
    atk_until_done(&a);

    /* per client process, not per connection: a second connection of
     * ours (with a reference of its own on the object) is at the cap too */
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, a.rec.endpoint, a.rec.endpoint_len);
    ep[a.rec.endpoint_len] = 0;
    shmc_plat_procid owner = {a.rec.pid, a.rec.start_time};
    shmc_conn *c2 = NULL;
    ATK_CHECK(shmc_conn_connect_new(ep, &owner, &c2) == S_OK);
    uint32_t sl3 = atk_take_slot(c2), sl4 = atk_take_slot(c2);
    shmc_op_record_from(&op, &a.rec);
    ATK_CHECK(atk_op(c2, sl4, SHMC_OP_CONSUME, &op, sizeof(op)) == S_OK);
    for (int k = 0; k < 3; k++) {
        GET_CHILD(c2, sl3, &rec, raw, &len);
        shmc_op_record_from(&op, &rec);
        HRESULT hr = atk_op(c2, sl4, SHMC_OP_CONSUME, &op, sizeof(op));
        if (hr != CO_E_OBJNOTCONNECTED)
            fprintf(stderr, "attacker: a second connection past the cap: 0x%08x\n", (unsigned)hr);
        ATK_CHECK(hr == CO_E_OBJNOTCONNECTED);
        /* nor a record of a proxy marshaled on */
        hr = atk_ref_op(c2, sl4, SHMC_OP_ADD_RECORD, a.ipid, NULL, 0, MSHLFLAGS_NORMAL);
        if (hr != RPC_E_OUT_OF_RESOURCES)
            fprintf(stderr, "attacker: ADD_RECORD past the cap: 0x%08x\n", (unsigned)hr);
        ATK_CHECK(hr == RPC_E_OUT_OF_RESOURCES);
    }

    /* a record spent makes room for exactly one more */
    ICallee *kid = NULL;
    LONG tag = 0;
    ATK_CHECK(shmc_local_marshaler.vtbl->Unmarshal(&shmc_local_marshaler, &IID_ICallee, first_raw,
                                                   first_len, (void **)&kid) == S_OK);
    ATK_CHECK(ICallee_GetTag(kid, &tag) == S_OK && tag == 31);
    ATK_CHECK(ICallee_Release(kid) == 0);
    GET_CHILD(a.c, sl, &one, one_raw, &one_len); /* kept */
    GET_CHILD(a.c, sl, &rec, raw, &len);         /* past the cap again */
    shmc_op_record_from(&op, &rec);
    ATK_CHECK(atk_op(a.c, sl2, SHMC_OP_CONSUME, &op, sizeof(op)) == CO_E_OBJNOTCONNECTED);
    kid = NULL;
    ATK_CHECK(shmc_local_marshaler.vtbl->Unmarshal(&shmc_local_marshaler, &IID_ICallee, one_raw,
                                                   one_len, (void **)&kid) == S_OK);
    ATK_CHECK(ICallee_GetTag(kid, &tag) == S_OK && tag == 31);
    ATK_CHECK(ICallee_Release(kid) == 0);
#undef GET_CHILD
    free(gc.frame);
    atomic_store(&a.x.mb->counter[2], 1);
    atk_exit(&a); /* with 65,535 records outstanding */
    return 1;
}

/* ---- the endpoint -------------------------------------------------------------------- */

/*
 * "endpoint": the victim's endpoint region: its header rewritten all the
 * time while this process connects (and lets go of) connections, garbage
 * posted into its connect slots, slots claimed and never posted in the
 * name of a process that lives on; and at the end the header left broken
 * (no magic, the wrong kind, CLOSED, no slots). Once the attacker is gone
 * a new client must get in (the parent starts one).
 */
static int child_endpoint(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, a.rec.endpoint, a.rec.endpoint_len);
    ep[a.rec.endpoint_len] = 0;
    shmc_plat_procid owner = {a.rec.pid, a.rec.start_time};
    shmc_plat_region epr;
    ATK_CHECK(shmc_plat_region_open(&epr, ep) == S_OK);
    shmc_ep_hdr *eh = epr.base;
    flipper *f = calloc(1, sizeof(*f));
    ATK_CHECK(f);
    f->rng = a.rng;
    uint32_t *w = (uint32_t *)(void *)eh;
    /* every 32-bit word of the common header and of the endpoint's own */
    for (unsigned i = 0; i < offsetof(shmc_ep_hdr, bell) / 4; i++)
        steer_add(f, &w[i], w[i], 0, ~w[i], w[i] ^ 1u, 0xFFFFFFFFu);
    shmc_plat_thread t;
    ATK_CHECK(shmc_plat_thread_create(&t, flip_main, f) == S_OK);
    uint64_t made = 0, failed = 0, rng = a.rng;
    for (int k = 0; k < (int)a.x.mb->arg[0]; k++) {
        shmc_conn *c = NULL;
        HRESULT hr = shmc_conn_connect_new(ep, &owner, &c);
        if (SUCCEEDED(hr)) {
            /* let it go: the victim's receivers see CLOSED and close it */
            made++;
            atomic_store(&c->hdr->state, SHMC_CONN_CLOSED);
            atk_ring(c);
        } else {
            failed++;
        }
        for (int g = 0; g < 5; g++)
            ep_garbage(eh, &rng, a.x.name);
    }
    atomic_store(&f->stop, true);
    shmc_plat_thread_join(&t);
    /* every slot held in the name of a process that lives on (init), never
     * posted */
    for (int k = 0; k < SHMC_EP_SLOTS; k++)
        ep_claim(eh, 1);
    /* and the header left broken */
    atomic_store(&eh->common.magic, 0);
    atomic_store(&eh->common.kind, 77);
    atomic_store(&eh->common.state, SHMC_REGION_CLOSED);
    atomic_store(&eh->common.owner_start, 12345);
    atomic_store(&eh->nslots, 0);
    shmc_plat_region_close(&epr);
    atomic_store(&a.x.mb->counter[0], made);
    atomic_store(&a.x.mb->counter[1], failed);
    atomic_store(&a.x.mb->counter[2], f->flips);
    atk_exit(&a);
    return 1;
}

/* ---- a shared stream ------------------------------------------------------------------- */

/*
 * "stream": the header and the bytes of a shared-memory stream the victim
 * reads records from (stream2), flipped all the time while it writes,
 * reads, unmarshals and releases records there (the parent's side).
 */
static int child_stream(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    char name[SHM_MAX_NAME + 1];
    memcpy(name, a.x.mb->stream2, sizeof(name));
    name[SHM_MAX_NAME] = 0;
    shmc_plat_region r;
    ATK_CHECK(shmc_plat_region_open(&r, name) == S_OK);
    shmc_stream_hdr *h = r.base;
    uint64_t off = atomic_load(&h->data_offset);
    ATK_CHECK(off >= sizeof(*h) && off + 4096 <= r.size);
    flipper *f = calloc(1, sizeof(*f));
    ATK_CHECK(f);
    f->rng = a.rng;
    uint32_t *w = (uint32_t *)(void *)h;
    for (unsigned i = 0; i < offsetof(shmc_stream_hdr, reserved) / 4; i++)
        steer_add(f, &w[i], w[i], 0, ~w[i], w[i] ^ 1u, w[i] + 4096);
    /* the first record's words: the signature, sizes, flags, ids */
    uint32_t *d = (uint32_t *)(void *)((unsigned char *)r.base + off);
    for (unsigned i = 0; i < SHMC_OBJREF_MAX_SIZE / 4; i += 1 + i % 3)
        steer_add(f, &d[i], 0, 0x524D4853u, 0xFFFFFFFFu, 160, 1);
    shmc_plat_thread t;
    ATK_CHECK(shmc_plat_thread_create(&t, flip_main, f) == S_OK);
    atk_until_done(&a);
    atomic_store(&f->stop, true);
    shmc_plat_thread_join(&t);
    atomic_store(&a.x.mb->counter[0], f->flips);
    shmc_plat_region_close(&r);
    atk_exit(&a);
    return 1;
}

/* ---- regions cut short (POSIX) --------------------------------------------------------- */

#ifndef _WIN32
/* Opens the object behind region `name` (as any process of the user can). */
static int open_object(const char *name, off_t *size)
{
    char os[128];
    snprintf(os, sizeof(os), "/shmcom-%u-%s", (unsigned)geteuid(), name);
    int fd = shm_open(os, O_RDWR, 0);
    ATK_CHECK(fd >= 0);
    struct stat st;
    ATK_CHECK(fstat(fd, &st) == 0 && st.st_size > 0);
    *size = st.st_size;
    return fd;
}

/*
 * "truncated": the objects behind regions the victim maps, cut to nothing
 * and grown back while it uses them: a bulk region holding a request the
 * victim is summing in place, its endpoint, and the stream it reads
 * records from (the parent's side). Pages past the end would kill the
 * victim with SIGBUS; it must read zeros there instead and go on.
 */
static int child_truncated(const char *arg)
{
    atk a;
    atk_open(&a, arg);
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, a.rec.endpoint, a.rec.endpoint_len);
    ep[a.rec.endpoint_len] = 0;
    char s2[SHM_MAX_NAME + 1];
    memcpy(s2, a.x.mb->stream2, sizeof(s2));
    s2[SHM_MAX_NAME] = 0;
    off_t ep_size, s2_size, bk_size;
    int fd_ep = open_object(ep, &ep_size), fd_s2 = open_object(s2, &s2_size);
    enum { BIG = 300000 };
    LONG *vals = malloc(BIG * sizeof(LONG));
    ATK_CHECK(vals);
    for (int i = 0; i < BIG; i++)
        vals[i] = 1;
    hyper total;
    job j;
    uint32_t sl = atk_take_slot(a.c);
    CAPTURE(&j, sl, M_SUM, ICallee_Sum(fp_, BIG, vals, &total));
    free(vals);
    shmc_plat_region bk;
    unsigned char *frame = atk_bulk(&bk, j.len);
    int fd_bk = open_object(bk.name, &bk_size);
    shmc_slot_hdr *s = shmc_conn_slot(a.c, sl);
    atomic_store(&a.x.mb->busy, 1);
    uint64_t answered = 0, summed = 0, rounds = a.x.mb->arg[0];
    for (uint64_t r = 0; r < rounds || !atomic_load(&a.x.mb->done); r++) {
        ATK_CHECK(r < 100 * rounds);
        memcpy(frame, j.frame, j.len);
        atk_set(a.c, sl, SHMC_OP_METHOD, M_SUM, a.ipid, j.len, SHMC_SLOT_BULK_REQ);
        memset(s->req_bulk, 0, sizeof(s->req_bulk));
        memcpy(s->req_bulk, bk.name, strlen(bk.name));
        atk_post(a.c, sl);
        for (uint64_t k = 0; k < xpeer_rand(&a.rng) % 20000; k++)
            shmc_plat_cpu_relax();
        ATK_CHECK(ftruncate(fd_bk, 0) == 0);
        HRESULT st;
        ATK_CHECK(atk_answer(a.c, sl, &st));
        answered++;
        if (st == S_OK)
            summed++;
        ATK_CHECK(ftruncate(fd_bk, bk_size) == 0);
        if (r % 8 == 0) {
            ATK_CHECK(ftruncate(fd_s2, 0) == 0);
            shmc_plat_sleep_ms(1);
            ATK_CHECK(ftruncate(fd_s2, s2_size) == 0);
        }
        if (r % 16 == 0) {
            ATK_CHECK(ftruncate(fd_ep, 0) == 0);
            shmc_plat_thread_yield();
            ATK_CHECK(ftruncate(fd_ep, ep_size) == 0);
        }
    }
    close(fd_ep);
    close(fd_s2);
    close(fd_bk);
    free(j.frame);
    atomic_store(&a.x.mb->counter[0], answered);
    atomic_store(&a.x.mb->counter[1], summed);
    atk_exit(&a);
    return 1;
}
#endif

/* ---- the roles turned: a hostile server ------------------------------------------- */

static void fake_ep_init(void *base, size_t size, void *ctx)
{
    (void)size, (void)ctx;
    shmc_ep_hdr *h = base;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    atomic_store(&h->nslots, SHMC_EP_SLOTS);
    shmc_region_hdr_init(&h->common, SHMC_REGION_KIND_ENDPOINT, SHMC_XPORT_VERSION,
                         sizeof(shmc_ep_hdr), &self, 0x4242);
}

typedef struct fake_reply {
    ShmStubReply iface;
    unsigned char *area, *inl;
    uint32_t len;
    bool inline_rep;
} fake_reply;

static HRESULT fr_GetBuffer(ShmStubReply *r, uint32_t size, void **buf)
{
    fake_reply *fr = (fake_reply *)r;
    fr->len = size;
    fr->inline_rep = size <= SHMC_SLOT_INLINE_MAX;
    if (fr->inline_rep)
        *buf = fr->inl;
    else if (size <= SHMC_SLOT_AREA)
        *buf = fr->area;
    else
        return E_OUTOFMEMORY; /* (no bulk regions here) */
    return S_OK;
}

static const ShmStubReplyVtbl fake_reply_vtbl = {fr_GetBuffer};

/* The words of a published reply in slot i that steer the client. */
static void steer_reply(flipper *f, shmc_conn *c, uint32_t i, uint32_t method, uint32_t len,
                        bool inline_rep)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    f->n = 0;
    steer_add(f, &s->rep_len, len, len + 8, SHMC_SLOT_AREA + 1, 0xFFFFFFFFu, len ? len - 4 : 4);
    uint32_t flags = inline_rep ? (uint32_t)SHMC_SLOT_REP_INLINE : 0u;
    steer_add(f, &s->rep_flags, flags, flags ^ SHMC_SLOT_REP_INLINE, SHMC_SLOT_BULK_REP,
              0xFFFFFFFFu, flags ^ SHMC_SLOT_REP_INLINE);
    steer_add(f, &s->status, S_OK, (uint32_t)E_FAIL, (uint32_t)RPC_E_INVALID_DATA, 1, 0x7FFFFFFF);
    if (inline_rep || method < 3 || method >= callee_info()->nmethods)
        return;
    const ShmMethod *m = &callee_info()->methods[method];
    unsigned char *rep = shmc_conn_rep_area(c, i);
    for (uint32_t k = 0; k < m->nparams; k++) {
        const ShmParam *p = &m->params[k];
        if (p->out_offset == SHM_NO_SLOT || p->out_offset + 8 > len)
            continue;
        if (p->kind == SHM_PK_STRING || p->kind == SHM_PK_ARRAY || p->kind == SHM_PK_ARRAY_ALLOC ||
            p->kind == SHM_PK_INTERFACE) {
            uint32_t off, n;
            memcpy(&off, rep + p->out_offset, 4);
            memcpy(&n, rep + p->out_offset + 4, 4);
            steer_add(f, rep + p->out_offset, off, off + 8, len, 0xFFFFFFF8u, 0);
            steer_add(f, rep + p->out_offset + 4, n, n + 4, 0xFFFFFFFFu, n + 4096, n ? n - 1 : 1);
        }
        if (p->kind == SHM_PK_ARRAY_ALLOC) {
            const ShmParam *cp = &m->params[p->size_param - 1];
            if (cp->out_offset != SHM_NO_SLOT) {
                uint32_t n;
                memcpy(&n, rep + cp->out_offset, 4);
                /* the count of an array the client allocates: one more
                 * than the array holds, or far more (the word most worth
                 * reading twice: flipped most often) */
                for (int w = 0; w < 8; w++)
                    steer_add(f, rep + cp->out_offset, n, n + 1, n + 1000, 0x3FFFFFFFu, n + 1000);
            }
        }
    }
}

/* One burst of flips, every word left good. */
static void flip_burst(flipper *f, unsigned bursts)
{
    for (unsigned b = 0; b < bursts && f->n; b++) {
        uint64_t r = xpeer_rand(&f->rng);
        steer *s = &f->s[r % f->n];
        uint32_t bad = s->bad[(r >> 20) % s->nbad];
        atomic_store_explicit(s->at, bad, memory_order_relaxed);
        atomic_store_explicit(s->at, s->good, memory_order_relaxed);
        f->flips++;
    }
}

/* What the hostile server's flipper thread rewrites: per slot, the words
 * of the reply published there (under the slot's lock). */
typedef struct fake_slots {
    shmc_conn *c;
    shmc_plat_mutex lock[SHMC_CONN_SLOTS];
    flipper f[SHMC_CONN_SLOTS];
} fake_slots;

/* Rewrites the replies while the victim reads them, for ever. */
static void reply_flip_main(void *arg)
{
    fake_slots *fs = arg;
    for (;;) {
        bool any = false;
        for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
            if (atomic_load(&shmc_conn_slot(fs->c, i)->state) != SHMC_SLOT_REPLY)
                continue;
            any = true;
            shmc_plat_mutex_lock(&fs->lock[i]);
            flip_burst(&fs->f[i], 32);
            shmc_plat_mutex_unlock(&fs->lock[i]);
        }
        if (!any)
            shmc_plat_cpu_relax();
    }
}

/*
 * "hostile_server": a server written by hand. It makes an endpoint of its
 * own and a record naming it (and an object of its: the stub engine runs
 * the calls on a real callee), accepts the connection the victim makes,
 * answers everything, and once it has published a reply rewrites it
 * (counts, offsets, lengths, the reply's length, flags and status) while
 * the victim reads it. Runs until killed.
 */
static int child_hostile_server(const char *arg)
{
    xpeer x;
    ATK_CHECK(xpeer_open(&x, arg));
    ATK_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    ATK_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    callee *obj = callee_new(9, NULL);
    ATK_CHECK(obj);
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    shmc_objref rec;
    memset(&rec, 0, sizeof(rec));
    rec.mshlflags = MSHLFLAGS_NORMAL;
    rec.mshctx = MSHCTX_LOCAL;
    rec.iid = IID_ICallee;
    rec.pid = self.pid;
    rec.start_time = self.start_time;
    uint64_t rng = 0xBADC0DE;
    rec.oxid = xpeer_rand(&rng);
    rec.oid = xpeer_rand(&rng);
    rec.nonce = xpeer_rand(&rng);
    for (int i = 0; i < 16; i += 8) {
        uint64_t w = xpeer_rand(&rng);
        memcpy(rec.ipid + i, &w, 8);
    }
    char epname[SHMC_XNAME_MAX];
    ATK_CHECK(shmc_xport_random_name(epname, sizeof(epname), "ep") == S_OK);
    shmc_plat_region epr;
    ATK_CHECK(shmc_plat_region_create_init(&epr, epname, sizeof(shmc_ep_hdr), fake_ep_init, NULL) ==
              S_OK);
    shmc_ep_hdr *eh = epr.base;
    rec.endpoint_len = (uint32_t)strlen(epname);
    memcpy(rec.endpoint, epname, rec.endpoint_len);
    unsigned char raw[SHMC_OBJREF_MAX_SIZE];
    shmc_objref_encode(&rec, raw);
    ATK_CHECK(IStream_Write(x.stream, raw, shmc_objref_size(&rec), NULL) == S_OK);
    atomic_store(&x.mb->busy, 1);

    /* accept one connection */
    shmc_conn *c = calloc(1, sizeof(*c));
    ATK_CHECK(c);
    uint64_t start = shmc_plat_clock_ns();
    for (bool accepted = false; !accepted;) {
        ATK_CHECK(tsupport_ms_since(start) < HANG_MS);
        for (int i = 0; i < SHMC_EP_SLOTS && !accepted; i++) {
            shmc_ep_slot *es = &eh->slots[i];
            if (!atomic_load(&es->posted))
                continue;
            char name[SHMC_XNAME_MAX];
            ATK_CHECK(shmc_xport_copy_name(name, es->conn_name, sizeof(es->conn_name)) == S_OK);
            ATK_CHECK(shmc_plat_region_open(&c->region, name) == S_OK);
            c->hdr = c->region.base;
            atomic_store(&c->hdr->server_pid, self.pid);
            atomic_store(&c->hdr->server_start, self.start_time);
            atomic_store(&c->hdr->state, SHMC_CONN_ACCEPTED);
            shmc_plat_waiter w;
            ATK_CHECK(shmc_plat_waiter_open(&w, &c->region, offsetof(shmc_conn_hdr, accept)) ==
                      S_OK);
            atomic_fetch_add(&w.word->value, 1);
            shmc_plat_wake(&w, true);
            shmc_plat_waiter_close(&w);
            atomic_store(&es->posted, 0);
            atomic_store(&es->claim, 0);
            accepted = true;
        }
        shmc_plat_thread_yield();
    }
    shmc_plat_waiter wake[SHMC_CONN_SLOTS];
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        size_t off =
            (size_t)((unsigned char *)shmc_conn_slot(c, i) - (unsigned char *)c->region.base) +
            offsetof(shmc_slot_hdr, wake);
        ATK_CHECK(shmc_plat_waiter_open(&wake[i], &c->region, off) == S_OK);
    }
    fake_slots *fs = calloc(1, sizeof(*fs));
    ATK_CHECK(fs);
    fs->c = c;
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        shmc_plat_mutex_init(&fs->lock[i]);
        fs->f[i].rng = i + 1;
    }
    shmc_plat_thread ft;
    ATK_CHECK(shmc_plat_thread_create(&ft, reply_flip_main, fs) == S_OK);

    /* serve, and rewrite what was published, until killed (or orphaned) */
    uint64_t served = 0;
    start = shmc_plat_clock_ns();
    for (unsigned loops = 1;; loops++) {
        if ((loops & 0xFFFF) == 0 &&
            (atomic_load(&x.mb->stop) || tsupport_ms_since(start) > 10 * HANG_MS))
            die_now(4);
        for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
            shmc_slot_hdr *s = shmc_conn_slot(c, i);
            uint32_t st = atomic_load(&s->state);
            if (st != SHMC_SLOT_REQUEST)
                continue;
            atomic_store(&s->state, SHMC_SLOT_RUNNING);
            shmc_plat_mutex_lock(&fs->lock[i]);
            fs->f[i].n = 0; /* the flipper leaves this slot alone until it is answered */
            shmc_plat_mutex_unlock(&fs->lock[i]);
            uint32_t kind = atomic_load(&s->kind), method = atomic_load(&s->method);
            uint32_t req_len = atomic_load(&s->req_len);
            HRESULT status = S_OK;
            fake_reply fr = {{&fake_reply_vtbl}, shmc_conn_rep_area(c, i), s->inline_rep, 0, true};
            if (kind == SHMC_OP_METHOD && req_len <= SHMC_SLOT_AREA &&
                !memcmp(s->ipid, rec.ipid, 16)) {
                status = ShmStubInvoke(callee_info(), &obj->ICallee_iface, method,
                                       shmc_conn_req_area(c, i), req_len, &shmc_local_marshaler,
                                       &fr.iface);
            } else if (kind == SHMC_OP_QI) {
                status = E_NOINTERFACE;
            } else if (kind == SHMC_OP_ADD_RECORD || kind == SHMC_OP_METHOD) {
                status = RPC_E_DISCONNECTED;
            }
            if (FAILED(status))
                fr.len = 0;
            atomic_store(&s->rep_len, fr.len);
            atomic_store(&s->status, (int32_t)status);
            atomic_store(&s->rep_flags,
                         fr.inline_rep && fr.len ? (uint32_t)SHMC_SLOT_REP_INLINE : 0u);
            shmc_plat_mutex_lock(&fs->lock[i]);
            steer_reply(&fs->f[i], c, i, kind == SHMC_OP_METHOD && SUCCEEDED(status) ? method : 0,
                        fr.len, fr.inline_rep && fr.len);
            shmc_plat_mutex_unlock(&fs->lock[i]);
            atomic_store(&s->state, SHMC_SLOT_REPLY);
            atomic_fetch_add(&s->wake.value, 1);
            shmc_plat_wake(&wake[i], true);
            served++;
            atomic_store(&x.mb->counter[0], served);
        }
    }
}

/* ---- the victim ------------------------------------------------------------------- */

/* An STA thread that owns the object and serves its calls. */
typedef struct sta_host {
    shmc_plat_thread thread;
    IUnknown *obj;
    IStream *stream;
    DWORD flags;
    HRESULT hr;
    _Atomic int ready, stop;
} sta_host;

/* Makes the object's ICallback interface stub now, in its apartment, so
 * that the baseline has it (a remote QueryInterface would make it later,
 * and it stays as long as the object is exported). */
static HRESULT warm_ifstubs(IUnknown *obj)
{
    IStream *s = NULL;
    HRESULT hr = shmc_stream_create_heap(0, &s);
    if (SUCCEEDED(hr))
        hr = ShmCoMarshalInterface(s, &IID_ICallback, obj, MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr)) {
        LARGE_INTEGER zero;
        zero.QuadPart = 0;
        IStream_Seek(s, zero, STREAM_SEEK_SET, NULL);
        hr = ShmCoReleaseMarshalData(s);
    }
    if (s)
        IStream_Release(s);
    return hr;
}

static void sta_main(void *arg)
{
    sta_host *h = arg;
    ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    h->hr = ShmCoMarshalInterface(h->stream, &IID_ICallee, h->obj, MSHCTX_LOCAL, NULL, h->flags);
    if (SUCCEEDED(h->hr))
        h->hr = warm_ifstubs(h->obj);
    atomic_store(&h->ready, 1);
    while (!atomic_load(&h->stop))
        ShmCoProcessCalls(5);
    ShmCoUninitialize();
}

typedef struct victim {
    xpeer x;
    callee *obj;
    _Atomic int freed;
    sta_host *sta; /* NULL: the object lives in this thread's MTA */
    int refs;      /* the object's references with nothing but the table record */
    xpeer_counts base;
    shmc_plat_proc good;
    bool good_running;
    IStream *s2; /* a second shared stream (mb->stream2), or NULL */
} victim;

static void register_once(void)
{
    static bool registered;
    if (!registered) {
        assert_hr(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo), S_OK);
        registered = true;
    }
}

/* ---- what the victim holds, sampled while it is attacked ------------------------- */

/* Records outstanding in this process (every stub manager's list). */
static size_t records_now(void)
{
    size_t n = 0;
    shmc_plat_mutex_lock(&shmc_g.lock);
    for (size_t i = 0; i < shmc_g.stub_by_oid.cap; i++) {
        if (!shmc_g.stub_by_oid.slots[i].key)
            continue;
        const shmc_stubmgr *sm = shmc_g.stub_by_oid.slots[i].value;
        for (const shmc_record *r = sm->records; r; r = r->next)
            n++;
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return n;
}

/* A thread that samples what this process holds, every 5 milliseconds
 * from before the attacker starts until it is gone, and keeps the most of
 * each it saw. */
typedef struct sampler {
    shmc_plat_thread thread;
    _Atomic bool stop;
    bool running;
    xpeer_mb *mb;
    xpeer_counts max;
    size_t base_records, max_records;
    uint64_t samples, busy_samples; /* all, and while the attacker ran */
} sampler;

static sampler samp; /* (static: the teardown of a failed test stops it) */
/* from the attacker's start until it is gone (victim_attack) */
static _Atomic bool attacker_running;

static void sampler_main(void *arg)
{
    sampler *s = arg;
    while (!atomic_load(&s->stop)) {
        bool busy = atomic_load(&attacker_running);
        xpeer_counts c;
        xpeer_counts_take(&c);
        size_t r = records_now();
        if (c.threads > s->max.threads)
            s->max.threads = c.threads;
        if (c.stubs > s->max.stubs)
            s->max.stubs = c.stubs;
        if (c.ipids > s->max.ipids)
            s->max.ipids = c.ipids;
        if (c.callees > s->max.callees)
            s->max.callees = c.callees;
        if (r > s->max_records)
            s->max_records = r;
        s->samples++;
        if (busy)
            s->busy_samples++;
        shmc_plat_sleep_ms(5); /* (a sample holds the runtime's lock a while) */
    }
}

static void sampler_start(victim *v)
{
    memset(&samp, 0, sizeof(samp));
    samp.mb = v->x.mb;
    samp.base_records = records_now();
    assert_hr(shmc_plat_thread_create(&samp.thread, sampler_main, &samp), S_OK);
    samp.running = true;
}

static void sampler_stop(void)
{
    if (samp.running) {
        atomic_store(&samp.stop, true);
        shmc_plat_thread_join(&samp.thread);
        samp.running = false;
    }
}

/*
 * What a server may run and keep for one client process (docs/limits.md):
 * 4 connections, each with 16 receiver threads and the thread that
 * watches the client process; 65,536 records outstanding (objects in
 * replies it has not unmarshaled). Besides these the victim runs a
 * thread or two of its own for the clients it calls back (the watchers
 * of its connections to them) and, calling into an STA, nothing more:
 * THREADS_SLACK. GOOD_SLACK: what a well-behaved client (two threads)
 * holds in passing: the objects and records of calls in flight, which it
 * unmarshals and releases at once.
 */
#define THREADS_PER_CLIENT (SHMC_MAX_CONNS_PER_CLIENT * (SHMC_CONN_SLOTS + 1))
#define THREADS_SLACK      4
#define GOOD_SLACK         8

/* Stops the sampler; the most it saw stayed within the bounds for
 * `clients` client processes, of which one (the attacker) may have made
 * up to `made` records. */
static void assert_bounded(const victim *v, const char *what, unsigned clients, size_t made)
{
    sampler_stop();
    print_message("%s: %llu samples (%llu during the attack): threads %ld (base %ld, bound %ld), "
                  "stub managers %llu (%llu), interface stubs %llu (%llu), records %llu (%llu, "
                  "bound %llu), objects %d (%d)\n",
                  what, (unsigned long long)samp.samples, (unsigned long long)samp.busy_samples,
                  samp.max.threads, v->base.threads,
                  v->base.threads + (long)(clients * THREADS_PER_CLIENT) + THREADS_SLACK,
                  (unsigned long long)samp.max.stubs, (unsigned long long)v->base.stubs,
                  (unsigned long long)samp.max.ipids, (unsigned long long)v->base.ipids,
                  (unsigned long long)samp.max_records, (unsigned long long)samp.base_records,
                  (unsigned long long)(samp.base_records + made + GOOD_SLACK * (clients - 1)),
                  samp.max.callees, v->base.callees);
    assert_true(samp.busy_samples >= 3);
    assert_true(samp.max.threads <=
                v->base.threads + (long)(clients * THREADS_PER_CLIENT) + THREADS_SLACK);
    /* every object made for a client is held by a record or a reference of
     * that client: the attacker's by records only */
    size_t held = made + GOOD_SLACK * (clients - 1);
    assert_true(samp.max_records <= samp.base_records + held);
    assert_true(samp.max.stubs <= v->base.stubs + held);
    assert_true(samp.max.ipids <= v->base.ipids + 2 * held); /* (ICallback too, by QI) */
    assert_true(samp.max.callees <= v->base.callees + (int)held);
}

/* The object, marshaled TABLESTRONG into the mailbox's stream (so that
 * both the good client and the attacker can take it), in an MTA or an
 * STA; the baseline of what this process holds. */
/* This thread is in the MTA for a test (for the teardown of one that
 * failed half way). */
static bool in_mta;

static int attack_teardown(void **state)
{
    sampler_stop();
    xpeer_teardown(state);
    if (in_mta)
        ShmCoUninitialize();
    in_mta = false;
    return 0;
}

static void victim_start(victim *v, DWORD coinit)
{
    memset(v, 0, sizeof(*v));
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    in_mta = true;
    xpeer_create(&v->x);
    v->x.mb->coinit = coinit;
    v->obj = callee_new(1, &v->freed);
    assert_non_null(v->obj);
    if (coinit == COINIT_APARTMENTTHREADED) {
        v->sta = calloc(1, sizeof(*v->sta));
        assert_non_null(v->sta);
        v->sta->obj = (IUnknown *)&v->obj->ICallee_iface;
        v->sta->stream = v->x.stream;
        v->sta->flags = MSHLFLAGS_TABLESTRONG;
        assert_hr(shmc_plat_thread_create(&v->sta->thread, sta_main, v->sta), S_OK);
        assert_true(xpeer_await((_Atomic uint32_t *)&v->sta->ready, 1, HANG_MS));
        assert_hr(v->sta->hr, S_OK);
    } else {
        assert_hr(ShmCoMarshalInterface(v->x.stream, &IID_ICallee,
                                        (IUnknown *)&v->obj->ICallee_iface, MSHCTX_LOCAL, NULL,
                                        MSHLFLAGS_TABLESTRONG),
                  S_OK);
        assert_hr(warm_ifstubs((IUnknown *)&v->obj->ICallee_iface), S_OK);
    }
    tstream_rewind(v->x.stream);
    v->refs = atomic_load(&v->obj->refs);
    xpeer_counts_take(&v->base);
}

/* The well-behaved client, started and calling. */
static void victim_good_start(victim *v)
{
    atomic_store(&v->x.mb->stop, 0);
    atomic_store(&v->x.mb->ready, 0);
    xpeer_spawn(&v->good, "good", v->x.name);
    v->good_running = true;
    assert_true(xpeer_await(&v->x.mb->ready, 1, HANG_MS));
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(&v->x.mb->calls) < 50) {
        assert_true(tsupport_ms_since(start) < HANG_MS);
        shmc_plat_sleep_ms(1);
    }
}

/* What an attack needs of the victim besides the usual course. */
typedef struct attack_spec {
    const char *name;
    DWORD coinit;
    uint64_t arg0;
    void (*before)(victim *v); /* before the attacker starts */
    void (*during)(victim *v); /* once the attacker says it is busy */
    void (*after)(victim *v);  /* once the attacker is gone */
} attack_spec;

/* Runs attacker child spec->name to its end (a watchdog, not a speed
 * limit); returns its pid. The good client must have been served
 * meanwhile. */
static uint64_t victim_attack(victim *v, const attack_spec *spec)
{
    shmc_plat_proc child;
    atomic_store(&v->x.mb->phase, 0);
    atomic_store(&v->x.mb->busy, 0);
    atomic_store(&v->x.mb->done, 0);
    uint64_t calls_before = atomic_load(&v->x.mb->calls);
    atomic_store(&attacker_running, true);
    xpeer_spawn(&child, spec->name, v->x.name);
    uint64_t pid = child.id.pid;
    if (spec->during) {
        uint64_t start = shmc_plat_clock_ns();
        while (!atomic_load(&v->x.mb->busy)) {
            if (shmc_plat_proc_wait(&child, 0) == S_OK || tsupport_ms_since(start) > 3 * HANG_MS)
                break; /* (its exit code tells) */
            shmc_plat_sleep_ms(1);
        }
        if (atomic_load(&v->x.mb->busy))
            spec->during(v);
        atomic_store(&v->x.mb->done, 1);
    }
    int code = tsupport_join(&child, 240000);
    atomic_store(&attacker_running, false);
    assert_int_equal(code, 0);
    assert_int_equal(atomic_load(&v->x.mb->phase), 1);
    uint64_t served = atomic_load(&v->x.mb->calls) - calls_before;
    print_message("attack %s: good client served %llu calls meanwhile\n", spec->name,
                  (unsigned long long)served);
    assert_true(served >= 20);
    return pid;
}

/* Starts a new client and waits for it: it must connect and be served. */
static void victim_new_client(victim *v)
{
    shmc_plat_proc c;
    xpeer_spawn(&c, "good_once", v->x.name);
    assert_int_equal(tsupport_join(&c, 120000), 0);
}

/* Stops the good client: none of its answers was wrong. */
static void victim_good_stop(victim *v)
{
    atomic_store(&v->x.mb->stop, 1);
    assert_int_equal(tsupport_join(&v->good, 60000), 0);
    v->good_running = false;
    assert_int_equal(atomic_load(&v->x.mb->wrong), 0);
}

/* After the attacker `pid` is gone: everything is back to the baseline,
 * nothing of it is left in /dev/shm, and the object goes away once its
 * table record is released. */
static void victim_finish(victim *v, uint64_t attacker_pid)
{
    xpeer_counts_await(&v->base, HANG_MS);
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(&v->obj->refs) != v->refs && tsupport_ms_since(start) < HANG_MS)
        shmc_plat_sleep_ms(1);
    assert_int_equal(atomic_load(&v->obj->refs), v->refs);
    if (attacker_pid)
        assert_int_equal(xpeer_regions_of(attacker_pid), 0);
    tstream_rewind(v->x.stream);
    assert_hr(ShmCoReleaseMarshalData(v->x.stream), S_OK);
    if (v->s2) {
        IStream_Release(v->s2);
        v->s2 = NULL;
    }
    if (v->sta) {
        atomic_store(&v->sta->stop, 1);
        shmc_plat_thread_join(&v->sta->thread);
        free(v->sta);
    }
    assert_int_equal(ICallee_Release(&v->obj->ICallee_iface), 0);
    assert_true(atomic_load(&v->freed));
    xpeer_free(&v->x);
    ShmCoUninitialize();
    in_mta = false;
}

/* The usual course: victim, good client, attack, checks. */
static void run_spec(const attack_spec *spec)
{
    victim v;
    victim_start(&v, spec->coinit);
    v.x.mb->arg[0] = spec->arg0;
    v.x.mb->seed = 0xA77AC4ull;
    if (spec->before)
        spec->before(&v);
    victim_good_start(&v);
    uint64_t pid = victim_attack(&v, spec);
    if (spec->after)
        spec->after(&v);
    victim_good_stop(&v);
    print_message("attack %s: counters %llu %llu %llu %llu\n", spec->name,
                  (unsigned long long)atomic_load(&v.x.mb->counter[0]),
                  (unsigned long long)atomic_load(&v.x.mb->counter[1]),
                  (unsigned long long)atomic_load(&v.x.mb->counter[2]),
                  (unsigned long long)atomic_load(&v.x.mb->counter[3]));
    victim_finish(&v, pid);
}

static void run_attack(const char *name, DWORD coinit, uint64_t arg0)
{
    attack_spec spec = {name, coinit, arg0, NULL, NULL, NULL};
    run_spec(&spec);
}

/* A second shared stream, for the attacker (mb->stream2). */
static void make_stream2(victim *v)
{
    tsupport_name(v->x.mb->stream2, sizeof(v->x.mb->stream2), "xs2");
    assert_hr(ShmCreateStreamOnSharedMemory(v->x.mb->stream2, 64 * 1024, 0, &v->s2), S_OK);
}

enum { NREPLAY = 8 };

/* replay: NORMAL records of the object for the attacker to spend */
static void replay_before(victim *v)
{
    make_stream2(v);
    for (int i = 0; i < NREPLAY; i++)
        assert_hr(ShmCoMarshalInterface(v->s2, &IID_ICallee, (IUnknown *)&v->obj->ICallee_iface,
                                        MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
                  S_OK);
}

/* ... and the owner releases them all afterwards: the spent ones are
 * already gone (released twice, nothing happens), the others give their
 * references back */
static void replay_after(victim *v)
{
    for (int i = 0; i < NREPLAY; i++) {
        tsupport_stream_seek(v->s2, (int64_t)i * SHMC_OBJREF_MAX_SIZE);
        assert_hr(ShmCoReleaseMarshalData(v->s2), S_OK);
    }
}

static void flood_during(victim *v)
{
    victim_new_client(v);
}

/* flood: sampled from before the attacker came until it is gone: three
 * clients (the good one, the attacker, the new one) */
static void flood_after(victim *v)
{
    assert_bounded(v, "flood", 3, SHMC_CONN_MAX_MADE);
}

/* replies: the attacker's 65,536 objects are alive (records it has not
 * unmarshaled), those past them are gone already */
static void replies_during(victim *v)
{
    int alive = atomic_load(&live_callees) - v->base.callees;
    print_message("replies: %llu made, %llu past the cap; objects alive %d\n",
                  (unsigned long long)atomic_load(&v->x.mb->counter[0]),
                  (unsigned long long)atomic_load(&v->x.mb->counter[1]), alive);
    assert_true(alive >= (int)SHMC_CONN_MAX_MADE);
    assert_true(alive <= (int)SHMC_CONN_MAX_MADE + GOOD_SLACK);
}

static void replies_after(victim *v)
{
    assert_int_equal(atomic_load(&v->x.mb->counter[2]), 1); /* it got to the end */
    assert_bounded(v, "replies", 2, SHMC_CONN_MAX_MADE);
}

static bool stream_hr_ok(HRESULT hr)
{
    return hr == S_OK || hr == STG_E_INVALIDHEADER || hr == STG_E_READFAULT ||
           hr == STG_E_MEDIUMFULL || hr == STG_E_SEEKERROR || hr == STG_E_INVALIDFUNCTION ||
           hr == RPC_E_INVALID_OBJREF || hr == CO_E_OBJNOTCONNECTED || hr == CO_E_OBJNOTREG ||
           hr == E_NOINTERFACE || hr == RPC_E_INVALID_DATA;
}

/* stream: records written into the stream the attacker scribbles on, read
 * back, unmarshaled or released; each also kept privately and released
 * from there afterwards, so that a record the attacker destroyed still
 * gives its reference back */
static void stream_during(victim *v)
{
    IUnknown *obj = (IUnknown *)&v->obj->ICallee_iface;
    uint64_t rng = 7, ok = 0, refused = 0;
    int n = SLOW ? 4000 : 20000;
    for (int i = 0; i < n; i++) {
        IStream *heap = NULL;
        unsigned char rec[SHMC_OBJREF_MAX_SIZE];
        ULONG got = 0;
        assert_hr(shmc_stream_create_heap(0, &heap), S_OK);
        assert_hr(
            ShmCoMarshalInterface(heap, &IID_ICallee, obj, MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
            S_OK);
        tstream_rewind(heap);
        assert_hr(IStream_Read(heap, rec, sizeof(rec), &got), S_OK);
        assert_int_equal(got, sizeof(rec));
        tsupport_stream_seek(v->s2, 0);
        HRESULT hr = IStream_Write(v->s2, rec, sizeof(rec), NULL);
        assert_true(stream_hr_ok(hr));
        tsupport_stream_seek(v->s2, 0);
        uint64_t r = xpeer_rand(&rng);
        if (r % 2) {
            ICallee *p = (ICallee *)(uintptr_t)1;
            hr = ShmCoUnmarshalInterface(v->s2, &IID_ICallee, (void **)&p);
            if (hr == S_OK) {
                assert_ptr_equal(p, &v->obj->ICallee_iface);
                ICallee_Release(p);
                ok++;
            } else {
                if (!stream_hr_ok(hr))
                    fail_msg("unmarshal from a scribbled stream: 0x%08x", (unsigned)hr);
                assert_null(p);
                refused++;
            }
        } else {
            hr = ShmCoReleaseMarshalData(v->s2);
            assert_true(stream_hr_ok(hr));
        }
        /* whatever the stream did: our own copy of the record is released */
        tstream_rewind(heap);
        assert_hr(ShmCoReleaseMarshalData(heap), S_OK);
        IStream_Release(heap);
        /* and the stream's other operations */
        STATSTG st;
        ULARGE_INTEGER u, rd, wr;
        LARGE_INTEGER li;
        switch ((r >> 8) % 4) {
        case 0:
            hr = IStream_Stat(v->s2, &st, STATFLAG_NONAME);
            break;
        case 1:
            u.QuadPart = (r >> 16) % 70000;
            hr = IStream_SetSize(v->s2, u);
            break;
        case 2:
            li.QuadPart = 0;
            hr = IStream_Seek(v->s2, li, STREAM_SEEK_END, &u);
            break;
        default: {
            IStream *sink = NULL;
            assert_hr(shmc_stream_create_heap(0, &sink), S_OK);
            tsupport_stream_seek(v->s2, 0);
            u.QuadPart = 4096;
            hr = IStream_CopyTo(v->s2, sink, u, &rd, &wr);
            IStream_Release(sink);
            break;
        }
        }
        assert_true(stream_hr_ok(hr));
    }
    print_message("stream: %llu records read back, %llu refused\n", (unsigned long long)ok,
                  (unsigned long long)refused);
    assert_true(ok > 0);
}

static uint64_t frame_rounds(void)
{
    return SLOW ? 1500 : 3000;
}

static void frames_mta(void **state)
{
    (void)state;
    run_attack("frames", COINIT_MULTITHREADED, frame_rounds());
}

static void frames_sta(void **state)
{
    (void)state;
    run_attack("frames", COINIT_APARTMENTTHREADED, frame_rounds());
}

static void slot_states(void **state)
{
    (void)state;
    run_attack("slot_states", COINIT_MULTITHREADED, SLOW ? 50000 : 200000);
}

static void forged(void **state)
{
    (void)state;
    run_attack("forged", COINIT_MULTITHREADED, 0);
}

static void replay(void **state)
{
    (void)state;
    attack_spec spec = {"replay", COINIT_APARTMENTTHREADED, 0, replay_before, NULL, replay_after};
    run_spec(&spec);
}

/* flood: what the victim runs and keeps is sampled all along and stays
 * within the bounds of docs/limits.md */
static void flood_mta(void **state)
{
    (void)state;
    attack_spec spec = {"flood",       COINIT_MULTITHREADED, 20000,
                        sampler_start, flood_during,         flood_after};
    run_spec(&spec);
}

static void flood_sta(void **state)
{
    (void)state;
    attack_spec spec = {"flood",    COINIT_APARTMENTTHREADED, 20000, sampler_start, flood_during,
                        flood_after};
    run_spec(&spec);
}

/* Objects in replies never unmarshaled (child "replies"), in the MTA and
 * in an STA (where the object past the cap is released on the STA's
 * thread, in the middle of its call). */
static void replies_mta(void **state)
{
    (void)state;
    attack_spec spec = {"replies",     COINIT_MULTITHREADED, 0,
                        sampler_start, replies_during,       replies_after};
    run_spec(&spec);
}

static void replies_sta(void **state)
{
    (void)state;
    attack_spec spec = {"replies",     COINIT_APARTMENTTHREADED, 0,
                        sampler_start, replies_during,           replies_after};
    run_spec(&spec);
}

static int wait_calls;

static void count_wait(bool entering)
{
    if (entering)
        wait_calls++;
}

/*
 * A process that was never handed a record (child "stranger") knows an
 * object's ids, all but a record's nonce, finds this process's endpoint
 * and connects: it can neither call the object nor take or release a
 * reference on it. The object is exported with two records outstanding
 * (TABLESTRONG and NORMAL), kept here; no client runs meanwhile, so that
 * anything that reached an object would show (an Add in its call count, a
 * GetChild in the objects alive, a Wait in the hook, a QueryInterface in
 * the interface stubs).
 */
static void stranger(void **state)
{
    (void)state;
    victim v;
    victim_start(&v, COINIT_MULTITHREADED);
    _Atomic int hidden_freed = 0;
    callee *hidden = callee_new(2, &hidden_freed);
    assert_non_null(hidden);
    IStream *s = NULL;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    assert_hr(ShmCoMarshalInterface(s, &IID_ICallee, (IUnknown *)&hidden->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_TABLESTRONG),
              S_OK);
    assert_hr(ShmCoMarshalInterface(s, &IID_ICallee, (IUnknown *)&hidden->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
              S_OK);
    unsigned char raw[SHMC_OBJREF_MAX_SIZE];
    shmc_objref rec;
    tstream_rewind(s);
    assert_hr(IStream_Read(s, raw, sizeof(raw), NULL), S_OK);
    assert_hr(shmc_objref_decode(raw, sizeof(raw), &rec), S_OK);
    memcpy((void *)&v.x.mb->arg[0], rec.ipid, 8);
    memcpy((void *)&v.x.mb->arg[1], rec.ipid + 8, 8);
    v.x.mb->arg[2] = rec.oid;
    v.x.mb->arg[3] = rec.oxid;
    char ep[SHMC_XNAME_MAX];
    assert_hr(shmc_xport_endpoint(ep), S_OK);
    assert_true(strlen(ep) < sizeof(v.x.mb->stream2));
    memcpy(v.x.mb->stream2, ep, strlen(ep) + 1);
    int refs = atomic_load(&hidden->refs);
    xpeer_counts before;
    xpeer_counts_take(&before);
    wait_calls = 0;
    callee_wait_hook = count_wait;

    shmc_plat_proc child;
    xpeer_spawn(&child, "stranger", v.x.name);
    uint64_t pid = child.id.pid;
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&v.x.mb->busy)) {
        if (shmc_plat_proc_wait(&child, 0) == S_OK || tsupport_ms_since(start) > 6 * HANG_MS)
            break; /* (its exit code tells) */
        shmc_plat_sleep_ms(1);
    }
    /* nothing reached an object, nothing was made or taken */
    xpeer_counts now;
    xpeer_counts_take(&now);
    int calls = atomic_load(&hidden->calls), now_refs = atomic_load(&hidden->refs),
        waits = wait_calls;
    atomic_store(&v.x.mb->done, 1);
    assert_int_equal(tsupport_join(&child, 6 * HANG_MS), 0);
    assert_int_equal(atomic_load(&v.x.mb->phase), 1);
    callee_wait_hook = NULL;
    print_message("stranger: %llu operations refused\n",
                  (unsigned long long)atomic_load(&v.x.mb->counter[0]));
    assert_int_equal(calls, 0);
    assert_int_equal(waits, 0);
    assert_int_equal(now_refs, refs);
    assert_int_equal(now.callees, before.callees);
    assert_int_equal(now.stubs, before.stubs);
    assert_int_equal(now.ipids, before.ipids);

    /* its records are intact: the table one releases, the normal one is
     * honoured (here, in the object's apartment: the object itself) */
    tstream_rewind(s);
    assert_hr(ShmCoReleaseMarshalData(s), S_OK);
    ICallee *got = NULL;
    assert_hr(ShmCoUnmarshalInterface(s, &IID_ICallee, (void **)&got), S_OK);
    assert_ptr_equal(got, &hidden->ICallee_iface);
    ICallee_Release(got);
    IStream_Release(s);
    assert_int_equal(atomic_load(&hidden->refs), 1);
    assert_int_equal(ICallee_Release(&hidden->ICallee_iface), 0);
    assert_true(atomic_load(&hidden_freed));
    victim_new_client(&v); /* a client with a record is served */
    victim_finish(&v, pid);
}

/* endpoint: the victim puts its header back (a new client that came
 * before that would find no endpoint: the test waits for it, bounded), and
 * frees the slots claimed and never posted; then a new client gets in */
static void endpoint_after(victim *v)
{
    char name[SHMC_XNAME_MAX];
    assert_hr(shmc_xport_endpoint(name), S_OK);
    shmc_plat_region r;
    assert_hr(shmc_plat_region_open(&r, name), S_OK);
    shmc_region_info info;
    uint64_t start = shmc_plat_clock_ns();
    while (FAILED(shmc_region_hdr_read(r.base, r.size, &info)) ||
           info.kind != SHMC_REGION_KIND_ENDPOINT || info.state != SHMC_REGION_LIVE ||
           info.owner.pid != shmc_g.self.pid || info.owner.start_time != shmc_g.self.start_time) {
        assert_true(tsupport_ms_since(start) < HANG_MS);
        shmc_plat_sleep_ms(5);
    }
    shmc_plat_region_close(&r);
    victim_new_client(v);
}

static void endpoint(void **state)
{
    (void)state;
    attack_spec spec = {"endpoint", COINIT_MULTITHREADED, 40, NULL, NULL, endpoint_after};
    run_spec(&spec);
}

#ifndef _WIN32
/* truncated: the victim uses its stream as usual while the attacker cuts
 * it short (records read back now and then, or none: both are fine) */
static void truncated_during(victim *v)
{
    IUnknown *obj = (IUnknown *)&v->obj->ICallee_iface;
    uint64_t read_back = 0;
    for (int i = 0; i < (SLOW ? 2000 : 10000); i++) {
        IStream *heap = NULL;
        unsigned char rec[SHMC_OBJREF_MAX_SIZE];
        assert_hr(shmc_stream_create_heap(0, &heap), S_OK);
        assert_hr(
            ShmCoMarshalInterface(heap, &IID_ICallee, obj, MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
            S_OK);
        tstream_rewind(heap);
        assert_hr(IStream_Read(heap, rec, sizeof(rec), NULL), S_OK);
        tsupport_stream_seek(v->s2, 0);
        assert_true(stream_hr_ok(IStream_Write(v->s2, rec, sizeof(rec), NULL)));
        tsupport_stream_seek(v->s2, 0);
        ICallee *p = NULL;
        HRESULT hr = ShmCoUnmarshalInterface(v->s2, &IID_ICallee, (void **)&p);
        assert_true(stream_hr_ok(hr));
        if (hr == S_OK) {
            assert_ptr_equal(p, &v->obj->ICallee_iface);
            ICallee_Release(p);
            read_back++;
        }
        tstream_rewind(heap);
        assert_hr(ShmCoReleaseMarshalData(heap), S_OK);
        IStream_Release(heap);
    }
    print_message("truncated: %llu records read back\n", (unsigned long long)read_back);
}

static void truncated(void **state)
{
    (void)state;
    attack_spec spec = {"truncated",  COINIT_MULTITHREADED, 200,
                        make_stream2, truncated_during,     NULL};
    run_spec(&spec);
}
#endif

typedef struct caller {
    ICallee *p;
    _Atomic uint32_t *stop;
    uint32_t calls;
    bool until_died;
    uint64_t ok, failed, wrong, died;
    _Atomic int done;
} caller;

/* Bytes usable at a block ShmCoTaskMemAlloc returned (0: cannot tell). */
static size_t usable(void *p)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
    return malloc_usable_size(p);
#else
    (void)p;
    return 0; /* (ASan checks every access itself) */
#endif
}

/* Calls the hostile server's object. A hostile server may answer anything
 * consistent, so what is checked is what the proxy hands over: a failure
 * leaves the [out] parameters empty; a success gives no more elements than
 * were allocated, strings that end within their block, and nothing
 * written past the caller's own buffers. */
static void caller_main(void *arg)
{
    caller *cl = arg;
    ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    ShmCoSetCallTimeout(HANG_MS);
    uint64_t rng = (uintptr_t)cl;
    for (uint32_t k = 0; cl->until_died || k < cl->calls; k++) {
        if (atomic_load(cl->stop))
            break;
        uint64_t r = xpeer_rand(&rng);
        HRESULT hr;
        bool right = true;
        switch (r % 8 > 6 ? 0 : r % 8) {
        case 0: {
            ULONG n = (ULONG)(r >> 8) % 700, count = 7;
            LONG *v = NULL;
            hr = ICallee_MakeArray(cl->p, n, &count, &v);
            if (hr == S_OK) {
                size_t u = count ? usable(v) : 0;
                right = !count || (v && (!u || u >= (size_t)count * sizeof(LONG)));
                volatile LONG sink = 0;
                for (ULONG i = 0; i < count && right; i++)
                    sink += v[i]; /* ASan: every element is the caller's */
                (void)sink;
                ShmCoTaskMemFree(v);
            } else {
                right = !v && count == 0;
            }
            break;
        }
        case 1: {
            char *copy = NULL;
            hr = ICallee_Echo(cl->p, "from the victim", &copy);
            if (hr == S_OK) {
                size_t u = copy ? usable(copy) : 0;
                right = copy && (!u || strnlen(copy, u) < u);
                right = right && strlen(copy) < 1u << 20;
            } else {
                right = !copy;
            }
            ShmCoTaskMemFree(copy);
            break;
        }
        case 2: {
            BYTE b[600 + 16];
            ULONG n = (ULONG)(r >> 8) % 600;
            memset(b + n, 0xEE, 16);
            hr = ICallee_Fill(cl->p, n, b);
            for (ULONG i = n; i < n + 16 && right; i++)
                right = b[i] == 0xEE;
            break;
        }
        case 3: {
            LONG v[64 + 4];
            for (int i = 0; i < 68; i++)
                v[i] = i < 64 ? i : -7;
            hr = ICallee_Reverse(cl->p, 64, v);
            for (int i = 64; i < 68 && right; i++)
                right = v[i] == -7;
            break;
        }
        case 4: {
            LONG sum = 5;
            hr = ICallee_Add(cl->p, 1000, 2, &sum);
            right = hr == S_OK || sum == 0;
            break;
        }
        case 6:
            /* a method without parameters (the proxy engine's bare path) */
            hr = ICallee_Null(cl->p);
            break;
        default: {
            ICallee *kid = (ICallee *)(uintptr_t)1;
            hr = ICallee_GetChild(cl->p, 6, &kid);
            if (hr == S_OK) {
                LONG tag = 0;
                right = kid != NULL;
                if (kid) {
                    ICallee_GetTag(kid, &tag);
                    ICallee_Release(kid);
                }
            } else {
                right = !kid;
            }
            break;
        }
        }
        if (!right) {
            cl->wrong++;
            fprintf(stderr, "victim: a bad result from call %u (0x%08x)\n", (unsigned)(r % 8),
                    (unsigned)hr);
        }
        if (hr == S_OK)
            cl->ok++;
        else
            cl->failed++;
        if (hr == RPC_E_SERVER_DIED) {
            cl->died++;
            break;
        }
    }
    ShmCoUninitialize();
    atomic_store(&cl->done, 1);
}

/* Runs n callers of p to their end (bounded by a watchdog). */
static void run_callers(caller *cl, int n, ICallee *p, _Atomic uint32_t *stop, uint32_t calls,
                        bool until_died, void (*meanwhile)(void *), void *arg)
{
    shmc_plat_thread t[4];
    for (int i = 0; i < n; i++) {
        memset(&cl[i], 0, sizeof(cl[i]));
        cl[i].p = p, cl[i].stop = stop, cl[i].calls = calls, cl[i].until_died = until_died;
        assert_hr(shmc_plat_thread_create(&t[i], caller_main, &cl[i]), S_OK);
    }
    if (meanwhile)
        meanwhile(arg);
    uint64_t start = shmc_plat_clock_ns();
    for (int i = 0; i < n; i++) {
        while (!atomic_load(&cl[i].done)) {
            if (tsupport_ms_since(start) > 6 * HANG_MS)
                fail_msg("a caller of the hostile server hangs");
            shmc_plat_sleep_ms(1);
        }
        shmc_plat_thread_join(&t[i]);
    }
}

static void kill_after_a_while(void *arg)
{
    shmc_plat_sleep_ms(100);
    assert_hr(shmc_plat_proc_kill(arg), S_OK);
}

/* The roles turned: this process calls a hostile server (child
 * "hostile_server") that rewrites its replies while we read them, then
 * kills it with calls running. Every answer is an error or right; then
 * every call says RPC_E_SERVER_DIED, and nothing of it stays here. */
static void hostile_server(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    in_mta = true;
    xpeer x;
    xpeer_create(&x);
    xpeer_counts base;
    xpeer_counts_take(&base);
    shmc_plat_proc child;
    xpeer_spawn(&child, "hostile_server", x.name);
    uint64_t pid = child.id.pid;
    assert_true(xpeer_await(&x.mb->busy, 1, HANG_MS));
    /* the flipper rewrites every reply, the unmarshal's own operation's
     * too: an unmarshal may be refused (with an error, and nothing made);
     * the record is read again then (this server takes it any number of
     * times). Once in CI (TSan): RPC_E_INVALID_DATA. */
    ICallee *p = NULL;
    HRESULT hr = E_FAIL;
    for (int tries = 0; tries < 100 && FAILED(hr); tries++) {
        tstream_rewind(x.stream);
        p = (ICallee *)(uintptr_t)1;
        hr = ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p);
        if (FAILED(hr))
            assert_null(p);
    }
    assert_hr(hr, S_OK);
    caller cl[3];
    _Atomic uint32_t stop = 0;
    run_callers(cl, 3, p, &stop, SLOW ? 1500 : 6000, false, NULL, NULL);
    uint64_t ok = 0, failed = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl[i].wrong, 0);
        ok += cl[i].ok, failed += cl[i].failed;
    }
    print_message("hostile server: %llu calls right, %llu refused; %llu served there\n",
                  (unsigned long long)ok, (unsigned long long)failed,
                  (unsigned long long)atomic_load(&x.mb->counter[0]));
    assert_true(ok > 0);
    /* killed with calls running */
    run_callers(cl, 3, p, &stop, 0, true, kill_after_a_while, &child);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cl[i].wrong, 0);
        assert_int_equal(cl[i].died, 1);
    }
    assert_hr(ICallee_Null(p), RPC_E_SERVER_DIED);
    ICallee_Release(p);
    assert_hr(shmc_plat_proc_wait(&child, HANG_MS), S_OK);
    shmc_plat_proc_close(&child);
    xpeer_counts_await(&base, HANG_MS);
    assert_int_equal(xpeer_regions_of(pid), 0);
    xpeer_free(&x);
    ShmCoUninitialize();
    in_mta = false;
}

static void stream(void **state)
{
    (void)state;
    attack_spec spec = {"stream", COINIT_MULTITHREADED, 0, make_stream2, stream_during, NULL};
    run_spec(&spec);
}

int main(int argc, char **argv)
{
    static const tsupport_child children[] = {
        {"good", child_good},
        {"frames", child_frames},
        {"slot_states", child_slot_states},
        {"good_once", child_good_once},
        {"forged", child_forged},
        {"replay", child_replay},
        {"flood", child_flood},
        {"replies", child_replies},
        {"stranger", child_stranger},
        {"endpoint", child_endpoint},
        {"stream", child_stream},
        {"hostile_server", child_hostile_server},
#ifndef _WIN32
        {"truncated", child_truncated},
#endif
        {NULL, NULL},
    };
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(frames_mta, attack_teardown),
        cmocka_unit_test_teardown(frames_sta, attack_teardown),
        cmocka_unit_test_teardown(slot_states, attack_teardown),
        cmocka_unit_test_teardown(forged, attack_teardown),
        cmocka_unit_test_teardown(replay, attack_teardown),
        cmocka_unit_test_teardown(flood_mta, attack_teardown),
        cmocka_unit_test_teardown(flood_sta, attack_teardown),
        cmocka_unit_test_teardown(replies_mta, attack_teardown),
        cmocka_unit_test_teardown(replies_sta, attack_teardown),
        cmocka_unit_test_teardown(stranger, attack_teardown),
        cmocka_unit_test_teardown(endpoint, attack_teardown),
        cmocka_unit_test_teardown(stream, attack_teardown),
        cmocka_unit_test_teardown(hostile_server, attack_teardown),
#ifndef _WIN32
        cmocka_unit_test_teardown(truncated, attack_teardown),
#endif
        cmocka_unit_test(tsupport_check_names_gone),
    };
    /* SHMCOM_TEST_ONLY=name[,name...] runs those tests (and the leftover
     * check) */
    const char *only = getenv("SHMCOM_TEST_ONLY");
    struct CMUnitTest chosen[sizeof(tests) / sizeof(tests[0])];
    size_t n = 0;
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
        bool want = !only || i + 1 == sizeof(tests) / sizeof(tests[0]);
        for (const char *o = only; o && *o && !want;
             o += strcspn(o, ",") + (o[strcspn(o, ",")] != 0))
            want = strlen(tests[i].name) == strcspn(o, ",") &&
                   !strncmp(o, tests[i].name, strcspn(o, ","));
        if (want)
            chosen[n++] = tests[i];
    }
    return _cmocka_run_group_tests("test_attacker", chosen, n, NULL, NULL);
}
