/*
 * fuzz_rt.c - see fuzz_rt.h.
 */
#include "fuzz_rt.h"

#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

shmc_objref fz_rec[FZ_NRECS];
shmc_plat_procid fz_peer;
unsigned char fz_last_reply[16];

static void die(const char *what, HRESULT hr)
{
    fprintf(stderr, "fuzz set-up: %s failed: 0x%08lx\n", what, (unsigned long)(uint32_t)hr);
    abort();
}

/* ---- the objects ------------------------------------------------------------ */

/* Wait(FZ_JOB) runs the job fz_on_sta posted (on the STA object's thread). */
#define FZ_JOB 0x6A6F62u

typedef struct fz_obj {
    ICallee ICallee_iface;
    ICallback ICallback_iface;
    _Atomic int refs;
    LONG tag;
    bool child;
} fz_obj;

static _Atomic int children; /* GetChild objects alive */
static void (*job_fn)(void *);
static void *job_arg;

_Atomic(_Atomic uint32_t *) fz_abandon_in_call;

/* Every method starts here (see fz_abandon_in_call). */
static void entered(void)
{
    _Atomic uint32_t *state = atomic_exchange(&fz_abandon_in_call, NULL);
    uint32_t st = SHMC_SLOT_RUNNING;
    if (state)
        atomic_compare_exchange_strong(state, &st, SHMC_SLOT_ABANDONED);
}

static fz_obj *from_callee(ICallee *iface)
{
    return (fz_obj *)((char *)iface - offsetof(fz_obj, ICallee_iface));
}

static fz_obj *from_callback(ICallback *iface)
{
    return (fz_obj *)((char *)iface - offsetof(fz_obj, ICallback_iface));
}

static HRESULT STDMETHODCALLTYPE o_QueryInterface(ICallee *iface, REFIID riid, void **ppv)
{
    fz_obj *o = from_callee(iface);
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ICallee))
        *ppv = &o->ICallee_iface;
    else if (IsEqualIID(riid, &IID_ICallback))
        *ppv = &o->ICallback_iface;
    else {
        *ppv = NULL;
        return E_NOINTERFACE;
    }
    atomic_fetch_add(&o->refs, 1);
    return S_OK;
}

static ULONG STDMETHODCALLTYPE o_AddRef(ICallee *iface)
{
    return (ULONG)atomic_fetch_add(&from_callee(iface)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE o_Release(ICallee *iface)
{
    fz_obj *o = from_callee(iface);
    int left = atomic_fetch_sub(&o->refs, 1) - 1;
    if (left < 0) {
        fprintf(stderr, "fuzz: an object was released once too often\n");
        abort();
    }
    if (left == 0) {
        if (!o->child) {
            fprintf(stderr, "fuzz: a long-lived object was freed\n");
            abort();
        }
        atomic_fetch_sub(&children, 1);
        free(o);
    }
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE o_Null(ICallee *iface)
{
    (void)iface;
    entered();
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Add(ICallee *iface, LONG a, LONG b, LONG *sum)
{
    (void)iface;
    entered();
    *sum = (LONG)((ULONG)a + (ULONG)b);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Scalars(ICallee *iface, BYTE b, SHORT s, ULONG u, hyper h,
                                           double d, float f, boolean flag, double *total)
{
    (void)iface;
    entered();
    *total = (double)b + s + (double)u + (double)h + d + f + (flag ? 1.0 : 0.0);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Fail(ICallee *iface, HRESULT hr)
{
    (void)iface;
    entered();
    return hr;
}

static HRESULT STDMETHODCALLTYPE o_Echo(ICallee *iface, const char *text, char **copy)
{
    (void)iface;
    entered();
    size_t n = strlen(text) + 1;
    *copy = ShmCoTaskMemAlloc(n);
    if (!*copy)
        return E_OUTOFMEMORY;
    memcpy(*copy, text, n);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Sum(ICallee *iface, ULONG n, const LONG *values, hyper *total)
{
    (void)iface;
    entered();
    uint64_t t = 0;
    for (ULONG i = 0; i < n; i++)
        t += (uint64_t)(int64_t)values[i];
    *total = (hyper)t;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Fill(ICallee *iface, ULONG n, BYTE *buffer)
{
    (void)iface;
    entered();
    memset(buffer, 0x5A, n); /* (megabytes under the sanitizers: keep it cheap) */
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Reverse(ICallee *iface, ULONG n, LONG *values)
{
    (void)iface;
    entered();
    for (ULONG i = 0; i < n / 2; i++) {
        LONG t = values[i];
        values[i] = values[n - 1 - i];
        values[n - 1 - i] = t;
    }
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_MakeArray(ICallee *iface, ULONG n, ULONG *count, LONG **values)
{
    (void)iface;
    entered();
    if (n > 1u << 20)
        return E_OUTOFMEMORY; /* what a real object would say, sooner */
    *values = ShmCoTaskMemAlloc((size_t)n * sizeof(LONG));
    if (!*values)
        return E_OUTOFMEMORY;
    for (ULONG i = 0; i < n; i++)
        (*values)[i] = (LONG)i;
    *count = n;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Move(ICallee *iface, CT_POINT p, const CT_FRAME *f,
                                        CT_FRAME *moved)
{
    (void)iface;
    entered();
    *moved = *f;
    moved->origin.x = (LONG)((ULONG)moved->origin.x + (ULONG)p.x);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Call(ICallee *iface, ICallback *cb, LONG value)
{
    (void)iface;
    entered();
    return cb ? ICallback_Notify(cb, value) : E_POINTER;
}

static fz_obj *obj_new(LONG tag, bool child);

static HRESULT STDMETHODCALLTYPE o_GetChild(ICallee *iface, LONG tag, ICallee **child)
{
    (void)iface;
    entered();
    fz_obj *c = obj_new(tag, true);
    if (!c)
        return E_OUTOFMEMORY;
    *child = &c->ICallee_iface;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_GetTag(ICallee *iface, LONG *tag)
{
    entered();
    *tag = from_callee(iface)->tag;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_Query(ICallee *iface, REFIID riid, void **ppv)
{
    entered();
    return o_QueryInterface(iface, riid, ppv);
}

static HRESULT STDMETHODCALLTYPE o_Wait(ICallee *iface, ULONG ms)
{
    (void)iface;
    entered();
    if (ms == FZ_JOB && job_fn) {
        void (*fn)(void *) = job_fn;
        job_fn = NULL;
        fn(job_arg);
    }
    return S_OK; /* never sleeps: a fuzzer's input must not hang */
}

static HRESULT STDMETHODCALLTYPE o_GetThreadId(ICallee *iface, hyper *id)
{
    (void)iface;
    entered();
    *id = (hyper)shmc_plat_thread_self_id();
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE o_GetCount(ICallee *iface, LONG *count)
{
    entered();
    *count = atomic_load(&from_callee(iface)->refs);
    return S_OK;
}

static const ICalleeVtbl callee_vtbl = {
    o_QueryInterface, o_AddRef, o_Release, o_Null,    o_Add,         o_Scalars,  o_Fail,
    o_Echo,           o_Sum,    o_Fill,    o_Reverse, o_MakeArray,   o_Move,     o_Call,
    o_GetChild,       o_GetTag, o_Query,   o_Wait,    o_GetThreadId, o_GetCount,
};

static HRESULT STDMETHODCALLTYPE cb_QueryInterface(ICallback *iface, REFIID riid, void **ppv)
{
    return o_QueryInterface(&from_callback(iface)->ICallee_iface, riid, ppv);
}

static ULONG STDMETHODCALLTYPE cb_AddRef(ICallback *iface)
{
    return o_AddRef(&from_callback(iface)->ICallee_iface);
}

static ULONG STDMETHODCALLTYPE cb_Release(ICallback *iface)
{
    return o_Release(&from_callback(iface)->ICallee_iface);
}

static HRESULT STDMETHODCALLTYPE cb_Notify(ICallback *iface, LONG value)
{
    entered();
    from_callback(iface)->tag = value;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE cb_GetThreadId(ICallback *iface, hyper *id)
{
    (void)iface;
    entered();
    *id = (hyper)shmc_plat_thread_self_id();
    return S_OK;
}

static const ICallbackVtbl callback_vtbl = {cb_QueryInterface, cb_AddRef, cb_Release, cb_Notify,
                                            cb_GetThreadId};

static fz_obj *obj_new(LONG tag, bool child)
{
    fz_obj *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->ICallee_iface.lpVtbl = &callee_vtbl;
    o->ICallback_iface.lpVtbl = &callback_vtbl;
    atomic_init(&o->refs, 1);
    o->tag = tag;
    o->child = child;
    if (child)
        atomic_fetch_add(&children, 1);
    return o;
}

/* ---- the peer ------------------------------------------------------------------ */

shmc_conn *fz_client;
static unsigned char *client_mem;
static shmc_plat_waiter peer_bell, peer_wake[SHMC_CONN_SLOTS];

/* the script, set by the fuzzer's thread between inputs; read by the peer
 * between a request and its reply (the slot's state orders them) */
static const uint8_t *script;
static size_t script_len;

/* references the peer credited the client, by IPID */
#define PEER_REFS 64
static struct {
    uint8_t ipid[16];
    int64_t count;
} credits[PEER_REFS];
static bool peer_scripted_op; /* an operation got a scripted answer */
static bool peer_late;        /* an answer came after the client gave up */
static bool peer_over_release;
static uint64_t peer_seq;
static char peer_bulk[SHMC_XNAME_MAX]; /* the last bulk region the peer made */

_Atomic bool fz_peer_may_hold;

void fz_peer_script(const uint8_t *p, size_t n)
{
    script = p;
    script_len = n;
}

static void credit(const uint8_t ipid[16], int64_t n)
{
    int free_i = -1;
    for (int i = 0; i < PEER_REFS; i++) {
        if (credits[i].count && !memcmp(credits[i].ipid, ipid, 16)) {
            credits[i].count += n;
            if (credits[i].count < 0) {
                peer_over_release = true;
                credits[i].count = 0;
            }
            return;
        }
        if (!credits[i].count && free_i < 0)
            free_i = i;
    }
    if (n < 0) {
        peer_over_release = true; /* gives back what it was never given */
        return;
    }
    if (free_i < 0) {
        fprintf(stderr, "fuzz: the peer credited more than %d interfaces\n", PEER_REFS);
        abort();
    }
    memcpy(credits[free_i].ipid, ipid, 16);
    credits[free_i].count = n;
}

void fz_poison_req_bulk(bool poison)
{
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        shmc_slot_hdr *s = shmc_conn_slot(fz_client, i);
        if (poison)
            ASAN_POISON_MEMORY_REGION(s->req_bulk, sizeof(s->req_bulk));
        else
            ASAN_UNPOISON_MEMORY_REGION(s->req_bulk, sizeof(s->req_bulk));
    }
}

void fz_peer_credit(const uint8_t ipid[16])
{
    credit(ipid, 1);
}

static void bulk_hdr_init(void *base, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    shmc_region_hdr_init(base, SHMC_REGION_KIND_BULK, SHMC_XPORT_VERSION, SHMC_BULK_DATA, &fz_peer,
                         1);
}

static void drop_peer_bulk(void)
{
    if (peer_bulk[0])
        shmc_plat_region_unlink(peer_bulk);
    peer_bulk[0] = '\0';
}

/* A bulk region of the peer's holding the reply; its name goes into the
 * slot. */
static void put_bulk(shmc_slot_hdr *s, const uint8_t *data, size_t len)
{
    drop_peer_bulk();
    snprintf(peer_bulk, sizeof(peer_bulk), "fzbk.%llu.%llu", (unsigned long long)shmc_g.self.pid,
             (unsigned long long)++peer_seq);
    shmc_plat_region r;
    if (FAILED(shmc_plat_region_create_init(&r, peer_bulk, SHMC_BULK_DATA + len, bulk_hdr_init,
                                            NULL))) {
        peer_bulk[0] = '\0';
        return;
    }
    memcpy((unsigned char *)r.base + SHMC_BULK_DATA, data, len);
    shmc_plat_region_close(&r);
    memset(s->rep_bulk, 0, sizeof(s->rep_bulk));
    memcpy(s->rep_bulk, peer_bulk, strlen(peer_bulk));
}

static uint32_t take32(void)
{
    fz_in in = {script, script_len};
    uint32_t v = fz_u32(&in);
    script = in.p;
    script_len = in.n;
    return v;
}

/* Answers the request in slot i (which the peer has set RUNNING). */
static void peer_answer(uint32_t i)
{
    shmc_slot_hdr *s = shmc_conn_slot(fz_client, i);
    uint32_t kind = atomic_load(&s->kind);
    uint32_t req_len = atomic_load(&s->req_len);
    const unsigned char *req = shmc_conn_req_area(fz_client, i);
    unsigned char honest[64];
    uint32_t honest_len = 0;
    HRESULT honest_status = S_OK;
    /* what an honest server would answer (requests in the slot only) */
    if (req_len > SHMC_SLOT_AREA || (atomic_load(&s->flags) & SHMC_SLOT_BULK_REQ)) {
        honest_status = RPC_E_INVALID_DATA;
    } else if (kind == SHMC_OP_METHOD) {
        memset(honest, 0, 4);
        honest_len = 4;
    } else if (kind == SHMC_OP_ADD_RECORD) {
        uint64_t nonce = ++peer_seq;
        memcpy(honest, &nonce, 8);
        honest_len = 8;
    } else if (kind == SHMC_OP_QI) {
        memcpy(honest, "FZ-peer-QI-ipid", 16);
        honest[15] = (unsigned char)peer_seq++;
        honest_len = 16;
    } else if (kind < SHMC_OP_CONSUME || kind > SHMC_OP_RELEASE) {
        honest_status = RPC_E_INVALIDMETHOD;
    }

    uint8_t ctl = 3;
    if (script_len) {
        ctl = script[0];
        script++;
        script_len--;
    }
    if ((ctl & FZ_HOLD) && atomic_load(&fz_peer_may_hold)) {
        /* until the client gives up (its call timeout); bounded: an input
         * never waits for long */
        uint64_t start = shmc_plat_clock_ns();
        while (atomic_load(&s->state) == SHMC_SLOT_RUNNING &&
               shmc_plat_clock_ns() - start < 2000000000ull)
            shmc_plat_sleep_ms(1);
    }
    uint32_t where = ctl & 3, rep_len, rep_flags = 0;
    HRESULT status;
    const uint8_t *data;
    size_t len;
    if (where == 3) {
        status = honest_status;
        data = honest;
        len = honest_len;
        rep_len = honest_len;
        where = honest_len <= SHMC_SLOT_INLINE_MAX ? 1 : 0;
        rep_flags = where == 1 ? SHMC_SLOT_REP_INLINE : 0;
        if (SUCCEEDED(status) && kind == SHMC_OP_CONSUME && req_len == sizeof(shmc_op_record)) {
            shmc_op_record op;
            memcpy(&op, req, sizeof(op));
            credit(op.ipid, 1);
        } else if (SUCCEEDED(status) && kind == SHMC_OP_QI) {
            credit(honest, 1);
        } else if (SUCCEEDED(status) && kind == SHMC_OP_RELEASE && req_len == sizeof(shmc_op_ref)) {
            shmc_op_ref op;
            memcpy(&op, req, sizeof(op));
            credit(op.ipid, -(int64_t)op.count);
        }
    } else {
        if (kind != SHMC_OP_METHOD)
            peer_scripted_op = true;
        status = (HRESULT)take32();
        rep_len = (ctl & 4) ? take32() : 0;
        rep_flags = (ctl & 8) ? take32()
                              : (where == 1   ? SHMC_SLOT_REP_INLINE
                                 : where == 2 ? SHMC_SLOT_BULK_REP
                                              : 0u);
        fz_in in = {script, script_len};
        len = fz_u16(&in);
        if (len > in.n)
            len = in.n;
        data = in.p;
        script = in.p + len;
        script_len = in.n - len;
        if (!(ctl & 4))
            rep_len = (uint32_t)len;
    }
    /* the client may read rep_len bytes of the reply and not one more:
     * the rest of the area (or of the inline bytes) is poisoned until the
     * peer's next answer in this slot */
    unsigned char *area = shmc_conn_rep_area(fz_client, i);
    ASAN_UNPOISON_MEMORY_REGION(area, SHMC_SLOT_AREA);
    ASAN_UNPOISON_MEMORY_REGION(s->inline_rep, sizeof(s->inline_rep));
    if (where == 0) {
        memcpy(area, data, len < SHMC_SLOT_AREA ? len : SHMC_SLOT_AREA);
    } else if (where == 1) {
        memcpy(s->inline_rep, data, len < 8 ? len : 8);
    } else {
        put_bulk(s, data, len);
    }
    if (rep_len < SHMC_SLOT_AREA)
        ASAN_POISON_MEMORY_REGION(area + rep_len, SHMC_SLOT_AREA - rep_len);
    if (rep_len < sizeof(s->inline_rep))
        ASAN_POISON_MEMORY_REGION(s->inline_rep + rep_len, sizeof(s->inline_rep) - rep_len);
    atomic_store(&s->rep_len, rep_len);
    atomic_store(&s->status, (int32_t)status);
    atomic_store(&s->rep_flags, rep_flags);
    uint32_t st = SHMC_SLOT_RUNNING;
    if (!atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_REPLY)) {
        peer_late = true;
        atomic_store(&s->state, SHMC_SLOT_FREE); /* given up on: the server frees it */
        return;
    }
    atomic_fetch_add(&s->wake.value, 1);
    shmc_plat_wake(&peer_wake[i], true);
}

static void peer_main(void *arg)
{
    (void)arg;
    shmc_conn_hdr *h = (shmc_conn_hdr *)client_mem;
    for (;;) {
        uint32_t seq = atomic_load(&h->server_bell.value);
        bool served = false;
        for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
            shmc_slot_hdr *s = shmc_conn_slot(fz_client, i);
            uint32_t st = atomic_load(&s->state);
            if (st == SHMC_SLOT_ABANDONED_EARLY &&
                atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_FREE))
                served = peer_late = true;
            else if (st == SHMC_SLOT_REQUEST &&
                     atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_RUNNING)) {
                peer_answer(i);
                served = true;
            }
        }
        if (!served)
            shmc_plat_wait(&peer_bell, seq, 100);
    }
}

unsigned char *fz_conn_memory(void)
{
    /* mapped, not allocated: the fuzzers fail allocations past 32 MiB */
    size_t page = shmc_plat_page_size();
    size_t size = (SHMC_CONN_SIZE + page - 1) / page * page;
    unsigned char *p =
        mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mapping a connection's memory", E_OUTOFMEMORY);
    mprotect(p + size, page, PROT_NONE); /* a guard page, as a region has */
    return p;
}

static void peer_setup(void)
{
    client_mem = fz_conn_memory();
    shmc_conn_hdr *h = (shmc_conn_hdr *)client_mem;
    atomic_store(&h->state, SHMC_CONN_ACCEPTED);
    atomic_store(&h->sleepers, 1); /* so that the client rings the bell */
    HRESULT hr = shmc_conn_new_detached(client_mem, SHMC_CONN_SIZE, true, &fz_peer,
                                        FZ_PEER_ENDPOINT, &fz_client);
    if (FAILED(hr))
        die("the client connection", hr);
    hr = shmc_plat_waiter_open_local(&peer_bell, &h->server_bell);
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS && SUCCEEDED(hr); i++)
        hr = shmc_plat_waiter_open_local(&peer_wake[i], &shmc_conn_slot(fz_client, i)->wake);
    if (FAILED(hr))
        die("the peer's waiters", hr);
    shmc_plat_thread t;
    hr = shmc_plat_thread_create(&t, peer_main, NULL);
    if (FAILED(hr))
        die("the peer thread", hr);
    shmc_plat_thread_detach(&t);
}

/* What fz_end checks of the peer. */
static void peer_check(void)
{
    drop_peer_bulk();
    script = NULL;
    script_len = 0;
    bool checked = !peer_scripted_op && !peer_late;
    peer_scripted_op = peer_late = false;
    if (checked && peer_over_release) {
        fprintf(stderr, "fuzz: the client gave the peer back more references than it had\n");
        abort();
    }
    peer_over_release = false;
    for (int i = 0; i < PEER_REFS; i++) {
        if (checked && credits[i].count) {
            fprintf(stderr, "fuzz: the client keeps %lld references of the peer's\n",
                    (long long)credits[i].count);
            abort();
        }
        credits[i].count = 0;
    }
}

/* ---- set-up ------------------------------------------------------------------ */

static fz_obj *objs[2];
static int baseline[2];
static ICallee *sta_proxy; /* the MTA's proxy of the STA object: runs jobs */

static const IID *const rec_iid[FZ_REC_PER_OBJ] = {&IID_IUnknown, &IID_ICallee, &IID_ICallback,
                                                   &IID_ICallee, &IID_ICallee};
static const DWORD rec_flags[FZ_REC_PER_OBJ] = {MSHLFLAGS_TABLESTRONG, MSHLFLAGS_TABLESTRONG,
                                                MSHLFLAGS_TABLESTRONG, MSHLFLAGS_TABLEWEAK,
                                                MSHLFLAGS_NORMAL};

/* Marshals object o's record r, in the calling thread's apartment (the
 * object's). */
static void make_record(int o, int r)
{
    HRESULT hr =
        shmc_marshal_record(&fz_rec[o * FZ_REC_PER_OBJ + r], rec_iid[r],
                            (IUnknown *)&objs[o]->ICallee_iface, MSHCTX_INPROC, rec_flags[r]);
    if (FAILED(hr))
        die("marshaling a record", hr);
}

/* A TABLESTRONG record of each object that no token names: an input can
 * release (revoke) every record it can name, but the objects stay
 * exported (fz_begin makes the revoked ones again). */
static shmc_objref anchor[2];

/* true if the record is still outstanding (not spent or revoked) */
static bool record_alive(const shmc_objref *rec)
{
    bool alive = false;
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_stubmgr *sm = shmc_stubmgr_find_oid(rec->oid);
    for (shmc_record *r = sm ? sm->records : NULL; r && !alive; r = r->next)
        alive = r->nonce == rec->nonce;
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return alive;
}

static void make_anchor(int o)
{
    HRESULT hr = shmc_marshal_record(&anchor[o], &IID_IUnknown, (IUnknown *)&objs[o]->ICallee_iface,
                                     MSHCTX_INPROC, MSHLFLAGS_TABLESTRONG);
    if (FAILED(hr))
        die("marshaling an anchor record", hr);
}

/* Makes again the long-lived records of object o that an input revoked. */
static void remake_records(int o)
{
    for (int r = 0; r < FZ_REC_NORMAL; r++)
        if (!record_alive(&fz_rec[o * FZ_REC_PER_OBJ + r]))
            make_record(o, r);
}

static void remake_sta_records(void *arg)
{
    (void)arg;
    remake_records(FZ_OBJ_STA);
}

static shmc_plat_event sta_ready;

static void sta_main(void *arg)
{
    (void)arg;
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (FAILED(hr))
        die("the STA", hr);
    objs[FZ_OBJ_STA] = obj_new(1, false);
    if (!objs[FZ_OBJ_STA])
        die("the STA object", E_OUTOFMEMORY);
    make_anchor(FZ_OBJ_STA);
    for (int r = 0; r < FZ_REC_NORMAL; r++)
        make_record(FZ_OBJ_STA, r);
    shmc_plat_event_set(&sta_ready);
    for (;;)
        ShmCoProcessCalls(INFINITE);
}

void fz_setup(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    /* nothing in a fuzzer's input may make us wait long */
    atomic_store(&shmc_tune.callee_spin_ns, 0);
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr))
        die("ShmCoInitializeEx", hr);
    /* no call timeout: a call that hangs is libFuzzer's -timeout finding */
    hr = ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo);
    if (FAILED(hr))
        die("ShmCoRegisterProxyStubs", hr);
    fz_peer = shmc_g.self;
    fz_peer.start_time ^= 0x5A5A5A5Au; /* another process, as far as records go */
    objs[FZ_OBJ_MTA] = obj_new(0, false);
    if (!objs[FZ_OBJ_MTA])
        die("the MTA object", E_OUTOFMEMORY);
    make_anchor(FZ_OBJ_MTA);
    for (int r = 0; r < FZ_REC_NORMAL; r++)
        make_record(FZ_OBJ_MTA, r);

    hr = shmc_plat_event_init(&sta_ready);
    if (FAILED(hr))
        die("an event", hr);
    shmc_plat_thread t;
    hr = shmc_plat_thread_create(&t, sta_main, NULL);
    if (FAILED(hr))
        die("the STA thread", hr);
    shmc_plat_thread_detach(&t);
    shmc_plat_event_wait(&sta_ready, SHMC_PLAT_INFINITE);
    /* a second TABLESTRONG unmarshal of the STA object's ICallee: a proxy
     * here for running jobs there */
    hr = shmc_unmarshal_record(&fz_rec[FZ_OBJ_STA * FZ_REC_PER_OBJ + FZ_REC_CALLEE], &IID_ICallee,
                               (void **)&sta_proxy);
    if (FAILED(hr))
        die("the STA's proxy", hr);
    peer_setup();
    for (int o = 0; o < 2; o++)
        baseline[o] = atomic_load(&objs[o]->refs);
}

void fz_on_sta(void (*fn)(void *), void *arg)
{
    job_fn = fn;
    job_arg = arg;
    HRESULT hr = ICallee_Wait(sta_proxy, FZ_JOB);
    if (FAILED(hr) || job_fn)
        die("a job on the STA", FAILED(hr) ? hr : E_FAIL);
}

/* NORMAL records of the STA object are made there, a batch at a time (a
 * record holds a reference on the stub manager, not on the object: the
 * oracle does not see the ones waiting here) */
#define STA_BATCH 64
static shmc_objref sta_normal[STA_BATCH];
static int sta_normal_left;

static void make_sta_normals(void *arg)
{
    (void)arg;
    for (int i = 0; i < STA_BATCH; i++) {
        make_record(FZ_OBJ_STA, FZ_REC_NORMAL);
        sta_normal[i] = fz_rec[FZ_OBJ_STA * FZ_REC_PER_OBJ + FZ_REC_NORMAL];
    }
    sta_normal_left = STA_BATCH;
}

void fz_begin(void)
{
    /* what the last input released (ShmCoReleaseMarshalData of a table
     * record revokes it, as in COM) */
    remake_records(FZ_OBJ_MTA);
    for (int r = 0; r < FZ_REC_NORMAL; r++) {
        if (!record_alive(&fz_rec[FZ_OBJ_STA * FZ_REC_PER_OBJ + r])) {
            fz_on_sta(remake_sta_records, NULL);
            break;
        }
    }
    make_record(FZ_OBJ_MTA, FZ_REC_NORMAL);
    if (!sta_normal_left)
        fz_on_sta(make_sta_normals, NULL);
    fz_rec[FZ_OBJ_STA * FZ_REC_PER_OBJ + FZ_REC_NORMAL] = sta_normal[--sta_normal_left];
    memset(fz_last_reply, 0, sizeof(fz_last_reply));
}

void fz_end(void)
{
    /* releasing a record already spent does nothing */
    for (int o = 0; o < 2; o++) {
        shmc_objref *r = &fz_rec[o * FZ_REC_PER_OBJ + FZ_REC_NORMAL];
        shmc_release_record(r);
        memset(r, 0, sizeof(*r));
    }
    peer_check();
    /* a thread that ran a call lets go of the object it called just after
     * its caller has the reply: wait (boundedly) for that */
    uint64_t start = shmc_plat_clock_ns();
    for (;;) {
        int refs[2], n = atomic_load(&children);
        bool settled = n == 0, under = false;
        for (int o = 0; o < 2; o++) {
            refs[o] = atomic_load(&objs[o]->refs);
            settled = settled && refs[o] == baseline[o];
            under = under || refs[o] < baseline[o];
        }
        if (settled)
            return;
        if (under || shmc_plat_clock_ns() - start > 5000000000ull) {
            fprintf(stderr,
                    "fuzz: after the input the objects have %d (MTA) and %d (STA) references, "
                    "%d and %d before; %d child objects are alive\n",
                    refs[0], refs[1], baseline[0], baseline[1], n);
            abort();
        }
        shmc_plat_thread_yield();
    }
}

/* ---- tokens --------------------------------------------------------------------- */

static bool token_value(const unsigned char *t, uint64_t *v)
{
    if (!memcmp(t, "FZpid___", 8))
        *v = shmc_g.self.pid;
    else if (!memcmp(t, "FZstart_", 8))
        *v = shmc_g.self.start_time;
    else if (!memcmp(t, "FZPpid__", 8))
        *v = fz_peer.pid;
    else if (!memcmp(t, "FZPstart", 8))
        *v = fz_peer.start_time;
    else if (!memcmp(t, "FZlast0_", 8))
        memcpy(v, fz_last_reply, 8);
    else if (!memcmp(t, "FZlast8_", 8))
        memcpy(v, fz_last_reply + 8, 8);
    else if (t[6] == '#' && t[7] >= '0' && t[7] < '0' + FZ_NRECS) {
        const shmc_objref *r = &fz_rec[t[7] - '0'];
        if (!memcmp(t + 2, "oxid", 4))
            *v = r->oxid;
        else if (!memcmp(t + 2, "oid_", 4))
            *v = r->oid;
        else if (!memcmp(t + 2, "nonc", 4))
            *v = r->nonce;
        else if (!memcmp(t + 2, "ipdL", 4))
            memcpy(v, r->ipid, 8);
        else if (!memcmp(t + 2, "ipdH", 4))
            memcpy(v, r->ipid + 8, 8);
        else
            return false;
    } else {
        return false;
    }
    return true;
}

void fz_patch(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i + 8 <= len; i++) {
        uint64_t v;
        if (buf[i] != 'F' || buf[i + 1] != 'Z' || !token_value(buf + i, &v))
            continue;
        for (int k = 0; k < 8; k++)
            buf[i + k] = (unsigned char)(v >> (8 * k));
        i += 7;
    }
}

/* ---- input reader --------------------------------------------------------------- */

size_t fz_bytes(fz_in *in, void *out, size_t n)
{
    if (n > in->n)
        n = in->n;
    memcpy(out, in->p, n);
    in->p += n;
    in->n -= n;
    return n;
}

uint8_t fz_u8(fz_in *in)
{
    uint8_t v = 0;
    fz_bytes(in, &v, 1);
    return v;
}

uint16_t fz_u16(fz_in *in)
{
    unsigned char b[2] = {0};
    fz_bytes(in, b, 2);
    return (uint16_t)(b[0] | b[1] << 8);
}

uint32_t fz_u32(fz_in *in)
{
    unsigned char b[4] = {0};
    fz_bytes(in, b, 4);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

uint64_t fz_u64(fz_in *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}
