/*
 * fuzz_xport.c - libFuzzer target: the cross-process transport's frame
 * readers (docs/transport.md), with the fuzzer playing the other process.
 * The first byte's bit 0 picks the side:
 *
 * Server (0): the code a receiver thread runs for one call slot
 * (shmc_conn_serve_one: the slot header's fields, the request frame in the
 * slot or in a bulk region, runtime operations, method calls through the
 * stub engine, interface records in frames, the reply), on a connection
 * over private memory whose client holds references on live objects
 * (fuzz_rt.h: an MTA and an STA object; the connection is credited with
 * them through CONSUME operations first). Then up to 8 requests, each:
 *   ctl     bit 0: posted as given up early (ABANDONED_EARLY); bit 1: the
 *           frame in a bulk region; bit 2: req_len given (else the frame's
 *           length); bit 3: flags given (else what bit 1 needs);
 *           bits 4-7: the slot
 *   kind, method  1 byte each
 *   ipid    1 byte: 0-9 record N's IPID, 10: 16 bytes follow, else the
 *           last reply's first 16 bytes; bit 7: the client gives up on the
 *           call while the object runs it (fz_abandon_in_call)
 *   [req_len 4] [flags 4] len 2, frame
 * Each request must be answered (or, given up, dropped), and the
 * connection gives back everything when it closes (fz_end's oracle).
 *
 * Client (1): a proxy of an object of the peer process makes one call;
 * the peer answers it, and the operations that follow, from the script
 * that makes up the rest of the input (fuzz_rt.h), so the client's reply
 * reading (the slot header, inline and bulk replies) and the proxy
 * engine's reply decoding see any bytes. A call that fails must leave its
 * [out] pointers NULL; every reference the peer credited must come back.
 *   ctl     bits 1-5: the method; bit 6: QueryInterface for ICallback
 *           first; bit 7: an ICallback argument for Call
 *   8 bytes of arguments; 1 byte: bit 0: a call timeout of 20 ms (for
 *   FZ_HOLD entries: the client gives up); then the script.
 *
 * Tokens in the input name real ids (fuzz_rt.h); the server side replaces
 * them in each request's frame (and given IPID) just before posting it,
 * so that "FZlast0_" is the reply before.
 */
#include "fuzz_rt.h"

#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FZ_VERBOSE=1 in the environment: each request's and call's result on
 * stderr (to check what a seed does) */
static int verbose;

static void fail(const char *what)
{
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

/* ---- the server side ---------------------------------------------------------- */

static unsigned char *srv_mem;
static uint32_t srv_dirty[SHMC_CONN_SLOTS]; /* request bytes written per slot */
static char req_bulk[SHMC_XNAME_MAX];
static uint64_t bulk_seq;

static void bulk_hdr_init(void *base, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    shmc_region_hdr_init(base, SHMC_REGION_KIND_BULK, SHMC_XPORT_VERSION, SHMC_BULK_DATA, &fz_peer,
                         2);
}

static void drop_req_bulk(void)
{
    if (req_bulk[0])
        shmc_plat_region_unlink(req_bulk);
    req_bulk[0] = '\0';
}

/* Posts a request in slot i, has it served, and reads the answer as the
 * client would. Returns the server's status. */
static HRESULT post(shmc_conn *c, uint32_t i, uint32_t kind, uint32_t method,
                    const uint8_t ipid[16], const unsigned char *frame, uint32_t len,
                    uint32_t req_len, uint32_t flags, bool bulk, bool early, bool abandon)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    if (bulk) {
        drop_req_bulk();
        snprintf(req_bulk, sizeof(req_bulk), "fzsb.%llu.%llu", (unsigned long long)shmc_g.self.pid,
                 (unsigned long long)++bulk_seq);
        shmc_plat_region r;
        if (FAILED(shmc_plat_region_create_init(&r, req_bulk, SHMC_BULK_DATA + (size_t)len,
                                                bulk_hdr_init, NULL)))
            fail("cannot make a bulk region");
        memcpy((unsigned char *)r.base + SHMC_BULK_DATA, frame, len);
        shmc_plat_region_close(&r);
        memset(s->req_bulk, 0, sizeof(s->req_bulk));
        memcpy(s->req_bulk, req_bulk, strlen(req_bulk));
    } else {
        unsigned char *area = shmc_conn_req_area(c, i);
        ASAN_UNPOISON_MEMORY_REGION(area, SHMC_SLOT_AREA);
        memcpy(area, frame, len);
        if (srv_dirty[i] > len)
            memset(area + len, 0, srv_dirty[i] - len); /* no stale bytes */
        srv_dirty[i] = len;
        /* the server reads req_len bytes and not one more */
        if (req_len < SHMC_SLOT_AREA)
            ASAN_POISON_MEMORY_REGION(area + req_len, SHMC_SLOT_AREA - req_len);
    }
    atomic_store(&s->kind, kind);
    atomic_store(&s->method, method);
    atomic_store(&s->req_len, req_len);
    atomic_store(&s->flags, flags);
    memcpy(s->ipid, ipid, 16);
    atomic_store(&s->state, early ? SHMC_SLOT_ABANDONED_EARLY : SHMC_SLOT_REQUEST);
    if (abandon)
        atomic_store(&fz_abandon_in_call, &s->state);
    int served = shmc_conn_serve_one(c);
    atomic_store(&fz_abandon_in_call, NULL);
    ASAN_UNPOISON_MEMORY_REGION(shmc_conn_req_area(c, i), SHMC_SLOT_AREA);
    if (served != (early ? -1 : (int)i)) /* (one given up is dropped, not served) */
        fail("the server did not take the request");
    uint32_t st = atomic_load(&s->state);
    if (early || (abandon && st == SHMC_SLOT_FREE)) {
        if (st != SHMC_SLOT_FREE)
            fail("a request given up early was not dropped");
        if (verbose)
            fprintf(stderr, "server: kind %u method %u: given up\n", kind, method);
        return S_OK;
    }
    if (st != SHMC_SLOT_REPLY)
        fail("the server did not reply");
    uint32_t rep_len = atomic_load(&s->rep_len);
    HRESULT status = (HRESULT)atomic_load(&s->status);
    uint32_t rep_flags = atomic_load(&s->rep_flags);
    memset(fz_last_reply, 0, sizeof(fz_last_reply));
    uint32_t n = rep_len < 16 ? rep_len : 16;
    if (SUCCEEDED(status) && (rep_flags & SHMC_SLOT_REP_INLINE)) {
        if (rep_len > SHMC_SLOT_INLINE_MAX)
            fail("an inline reply too long");
        memcpy(fz_last_reply, s->inline_rep, n);
    } else if (SUCCEEDED(status) && (rep_flags & SHMC_SLOT_BULK_REP)) {
        char name[SHMC_XNAME_MAX];
        shmc_plat_region r;
        if (FAILED(shmc_xport_copy_name(name, s->rep_bulk, sizeof(s->rep_bulk))) ||
            FAILED(shmc_plat_region_open(&r, name)))
            fail("a bulk reply that does not open");
        if (r.size < (size_t)SHMC_BULK_DATA + rep_len)
            fail("a bulk reply region too small");
        memcpy(fz_last_reply, (unsigned char *)r.base + SHMC_BULK_DATA, n);
        shmc_plat_region_unlink(name);
        shmc_plat_region_close(&r);
    } else if (SUCCEEDED(status)) {
        if (rep_len > SHMC_SLOT_AREA)
            fail("a reply larger than the slot, not in a bulk region");
        memcpy(fz_last_reply, shmc_conn_rep_area(c, i), n);
    }
    atomic_store(&s->rep_flags, 0);
    atomic_store(&s->state, SHMC_SLOT_FREE); /* read: the slot is the client's again */
    if (verbose)
        fprintf(stderr, "server: kind %u method %u: 0x%08x, %u bytes\n", kind, method,
                (unsigned)status, rep_len);
    return status;
}

static void server(fz_in *in)
{
    if (!srv_mem)
        srv_mem = fz_conn_memory();
    memset(srv_mem, 0, SHMC_SLOT_HDR);
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++)
        memset(srv_mem + SHMC_SLOT_HDR + (size_t)i * SHMC_SLOT_STRIDE, 0, sizeof(shmc_slot_hdr));
    shmc_conn_hdr *h = (shmc_conn_hdr *)srv_mem;
    atomic_store(&h->state, SHMC_CONN_ACCEPTED);
    shmc_conn *c;
    if (FAILED(shmc_conn_new_detached(srv_mem, SHMC_CONN_SIZE, false, &fz_peer, NULL, &c)))
        fail("cannot make the server's connection");

    /* the client holds references on the objects, as after unmarshaling */
    static const int credited[] = {FZ_REC_UNKNOWN, FZ_REC_CALLEE, FZ_REC_CALLBACK,
                                   FZ_REC_PER_OBJ + FZ_REC_CALLEE,
                                   FZ_REC_PER_OBJ + FZ_REC_CALLBACK};
    for (size_t k = 0; k < sizeof(credited) / sizeof(credited[0]); k++) {
        const shmc_objref *r = &fz_rec[credited[k]];
        shmc_op_record op;
        shmc_op_record_from(&op, r);
        if (FAILED(post(c, 0, SHMC_OP_CONSUME, 0, r->ipid, (const unsigned char *)&op, sizeof(op),
                        sizeof(op), 0, false, false, false)))
            fail("CONSUME of a live record failed");
    }

    unsigned char frame[65536];
    for (int k = 0; k < 8 && in->n; k++) {
        uint8_t ctl = fz_u8(in);
        uint32_t kind = fz_u8(in), method = fz_u8(in);
        uint8_t sel = fz_u8(in);
        bool abandon = (sel & 0x80) != 0;
        sel &= 0x7F;
        uint8_t ipid[16];
        if (sel < FZ_NRECS)
            memcpy(ipid, fz_rec[sel].ipid, 16);
        else if (sel == FZ_NRECS)
            fz_bytes(in, ipid, 16);
        else
            memcpy(ipid, fz_last_reply, 16);
        uint32_t req_len = (ctl & 4) ? fz_u32(in) : 0;
        uint32_t flags = (ctl & 8) ? fz_u32(in) : ((ctl & 2) ? (uint32_t)SHMC_SLOT_BULK_REQ : 0u);
        uint32_t len = fz_u16(in);
        len = (uint32_t)fz_bytes(in, frame, len);
        /* tokens now: "FZlast0_" names the reply before this request */
        fz_patch(frame, len);
        if (sel == FZ_NRECS)
            fz_patch(ipid, 16);
        if (!(ctl & 4))
            req_len = len;
        post(c, ctl >> 4, kind, method, ipid, frame, len, req_len, flags, (ctl & 2) != 0,
             (ctl & 1) != 0, abandon);
    }
    shmc_conn_close_detached(c);
    drop_req_bulk();
}

/* ---- the client side ---------------------------------------------------------- */

static const IID *const query_iids[4] = {&IID_ICallback, &IID_ICallee, &IID_IUnknown, &IID_IStream};

/* One call through the proxy; checks that a failed call set its [out]
 * pointers to NULL. */
static void call(ICallee *p, uint32_t method, fz_in *args, bool with_cb)
{
    HRESULT hr = S_OK;
    void *out = NULL;
    LONG l;
    hyper hy;
    double d;
    uint32_t a = fz_u32(args), b = fz_u32(args);
    switch (method) {
    case 0:
        hr = ICallee_Null(p);
        break;
    case 1:
        hr = ICallee_Add(p, (LONG)a, (LONG)b, &l);
        break;
    case 2:
        hr = ICallee_Scalars(p, (BYTE)a, (SHORT)b, a, (hyper)b, 1.5, 2.5f, (boolean)(a & 1), &d);
        break;
    case 3:
        hr = ICallee_Fail(p, (HRESULT)a);
        break;
    case 4: {
        char text[9];
        memcpy(text, &a, 4);
        memcpy(text + 4, &b, 4);
        text[8] = '\0';
        char *copy = (char *)1;
        hr = ICallee_Echo(p, text, &copy);
        out = copy;
        break;
    }
    case 5: {
        /* b odd: a request larger than a slot (it goes in a bulk region) */
        static LONG v[(SHMC_SLOT_AREA + 4096) / sizeof(LONG)];
        ULONG n = b & 1 ? (ULONG)(sizeof(v) / sizeof(v[0])) - (a & 255) : a % 65;
        hr = ICallee_Sum(p, n, v, &hy);
        break;
    }
    case 6: {
        static BYTE buf[4096];
        hr = ICallee_Fill(p, a % 4097, buf);
        break;
    }
    case 7: {
        LONG v[64];
        memset(v, 0, sizeof(v));
        hr = ICallee_Reverse(p, a % 65, v);
        break;
    }
    case 8: {
        ULONG count = 0;
        LONG *values = (LONG *)1;
        hr = ICallee_MakeArray(p, a, &count, &values);
        out = values;
        break;
    }
    case 9: {
        CT_POINT pt = {(LONG)a, (LONG)b, 3};
        CT_FRAME f, moved;
        memset(&f, 0, sizeof(f));
        hr = ICallee_Move(p, pt, &f, &moved);
        break;
    }
    case 10: {
        ICallback *cb = NULL;
        if (with_cb) {
            /* the MTA object, marshaled for another process */
            IUnknown *u = NULL;
            shmc_unmarshal_record(&fz_rec[FZ_REC_CALLBACK], &IID_ICallback, (void **)&u);
            cb = (ICallback *)u;
        }
        hr = ICallee_Call(p, cb, (LONG)a);
        if (cb)
            ICallback_Release(cb);
        break;
    }
    case 11: {
        ICallee *child = (ICallee *)1;
        hr = ICallee_GetChild(p, (LONG)a, &child);
        out = child;
        break;
    }
    case 12:
        hr = ICallee_GetTag(p, &l);
        break;
    case 13: {
        void *ppv = (void *)1;
        hr = ICallee_Query(p, query_iids[a & 3], &ppv);
        out = ppv;
        break;
    }
    case 14:
        hr = ICallee_Wait(p, a);
        break;
    case 15:
        hr = ICallee_GetThreadId(p, &hy);
        break;
    default:
        hr = ICallee_GetCount(p, &l);
        break;
    }
    if (verbose)
        fprintf(stderr, "client: method %u: 0x%08x\n", method, (unsigned)hr);
    if (FAILED(hr) && out)
        fail("a failed call left an [out] pointer set");
    if (!out)
        return;
    if (method == 4 || method == 8)
        ShmCoTaskMemFree(out);
    else
        IUnknown_Release((IUnknown *)out);
}

static void client(uint8_t ctl, fz_in *in)
{
    fz_in args = {in->p, in->n < 8 ? in->n : 8};
    in->p += args.n;
    in->n -= args.n;
    uint8_t more = fz_u8(in);
    fz_peer_script(in->p, in->n);
    uint32_t method = (ctl >> 1) & 31;
    bool bulk_request = method == 5 && args.n > 4 && (args.p[4] & 1); /* Sum, b odd */
    if (!bulk_request)
        fz_poison_req_bulk(true);
    if (more & 1) {
        ShmCoSetCallTimeout(20); /* for the script's FZ_HOLD entries */
        atomic_store(&fz_peer_may_hold, true);
    }

    shmc_apt *apt = shmc_current_apt();
    if (!apt)
        fail("not in an apartment");
    static const uint8_t ipid[16] = "FZ-peer-callee!";
    fz_peer_credit(ipid);
    ICallee *p = NULL;
    HRESULT hr = shmc_proxymgr_connect_remote(apt, fz_client, 0x1111, 0x2222, ipid, &IID_ICallee,
                                              &IID_ICallee, (void **)&p);
    shmc_apt_release(apt);
    if (FAILED(hr))
        fail("no proxy of the peer's object");
    if (ctl & 0x40) {
        ICallback *cb = NULL;
        if (SUCCEEDED(ICallee_QueryInterface(p, &IID_ICallback, (void **)&cb))) {
            ICallback_Notify(cb, 1);
            ICallback_Release(cb);
        } else if (cb) {
            fail("a failed QueryInterface left its pointer set");
        }
    }
    call(p, method, &args, (ctl & 0x80) != 0);
    ShmCoSetCallTimeout(INFINITE);
    atomic_store(&fz_peer_may_hold, false);
    ICallee_Release(p);
    fz_poison_req_bulk(false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_setup();
    verbose = getenv("FZ_VERBOSE") != NULL;
    if (size < 1)
        return 0;
    unsigned char *bytes = malloc(size);
    memcpy(bytes, data, size);
    fz_begin();
    fz_in in = {bytes + 1, size - 1};
    if (bytes[0] & 1) {
        fz_patch(bytes, size);
        client(bytes[0], &in);
    } else {
        server(&in); /* (patches each request as it comes) */
    }
    fz_end();
    free(bytes);
    return 0;
}
