/*
 * test_proxystub.c - generated proxies and stubs (tests/idl/calls.idl,
 * base.idl) end to end through a loopback channel in one thread:
 * proxy -> request frame -> ShmStubInvoke -> object -> reply frame -> proxy.
 * Interface pointers travel through a test marshaler whose records name
 * entries of a table, so that every record is accounted for; every object
 * counts its references, checked after every scenario. Hostile requests
 * and replies, and a failure of every allocation in turn, are run here too
 * (under ASan in the asan preset). The object and a caller's checks of
 * its values are calls/callsobj.c, which test_idlcalls runs through the
 * runtime's real channel.
 */
#define COBJMACROS
#include "alloc.h"
#include "psengine.h"
#include "tsupport.h"

#include "callsobj.h"
#include <shmcom/proxystub.h>

#include <stdlib.h>
#include <string.h>

/* ---- the test marshaler ------------------------------------------------------ */

#define REC_MAGIC   0x52454354u
#define MAX_ENTRIES 64

typedef struct rec {
    uint32_t magic, id, gen, pad;
} rec;

/* gen makes a record stale once its entry was taken, even if the entry is reused */
static struct {
    IUnknown *obj;
    IID iid;
    uint32_t gen;
} entries[MAX_ENTRIES];
static uint32_t next_gen;
static int outstanding;
static int unmarshal_fail; /* make the next Unmarshal fail */

static const ShmInterfaceInfo *find_info(REFIID iid);
static HRESULT make_proxy(const ShmInterfaceInfo *info, IUnknown *target, void **ppv);

static HRESULT m_marshal(ShmItfMarshaler *m, REFIID iid, IUnknown *itf, void **data, uint32_t *size)
{
    (void)m;
    int id = 0;
    while (id < MAX_ENTRIES && entries[id].obj)
        id++;
    assert_true(id < MAX_ENTRIES);
    IUnknown *obj;
    HRESULT hr = IUnknown_QueryInterface(itf, iid, (void **)&obj);
    if (FAILED(hr))
        return hr;
    rec *r = ShmCoTaskMemAlloc(sizeof(*r));
    if (!r) {
        IUnknown_Release(obj);
        return E_OUTOFMEMORY;
    }
    r->magic = REC_MAGIC;
    r->id = (uint32_t)id;
    r->gen = ++next_gen;
    r->pad = 0;
    entries[id].gen = r->gen;
    entries[id].obj = obj;
    entries[id].iid = *iid;
    outstanding++;
    *data = r;
    *size = sizeof(*r);
    return S_OK;
}

static int take_entry(const void *data, uint32_t size, IUnknown **obj, IID *iid)
{
    rec r;
    if (size != sizeof(r))
        return 0;
    memcpy(&r, data, sizeof(r));
    if (r.magic != REC_MAGIC || r.id >= MAX_ENTRIES || !entries[r.id].obj ||
        entries[r.id].gen != r.gen)
        return 0;
    *obj = entries[r.id].obj;
    *iid = entries[r.id].iid;
    entries[r.id].obj = NULL;
    outstanding--;
    return 1;
}

static HRESULT m_unmarshal(ShmItfMarshaler *m, REFIID iid, const void *data, uint32_t size,
                           void **ppv)
{
    (void)m;
    IUnknown *obj;
    IID riid;
    *ppv = NULL;
    if (!take_entry(data, size, &obj, &riid))
        return RPC_E_INVALID_OBJREF;
    HRESULT hr = S_OK;
    if (unmarshal_fail) {
        unmarshal_fail = 0;
        hr = E_FAIL;
    } else if (!IsEqualIID(iid, &riid)) {
        hr = E_NOINTERFACE;
    } else {
        /* a proxy when the interface has one, else the object itself */
        const ShmInterfaceInfo *info = find_info(iid);
        hr = info ? make_proxy(info, obj, ppv) : IUnknown_QueryInterface(obj, iid, ppv);
    }
    IUnknown_Release(obj); /* the record's reference */
    return hr;
}

static void m_release(ShmItfMarshaler *m, const void *data, uint32_t size)
{
    (void)m;
    IUnknown *obj;
    IID iid;
    if (take_entry(data, size, &obj, &iid))
        IUnknown_Release(obj);
}

static const ShmItfMarshalerVtbl marshaler_vtbl = {m_marshal, m_unmarshal, m_release};
static ShmItfMarshaler marshaler = {&marshaler_vtbl};

/* ---- the loopback channel and its proxies ----------------------------------------- */

typedef struct tproxy {
    ShmProxyHeader hdr;
    LONG refs;
    IUnknown *target; /* the object's interface for hdr.info->iid */
} tproxy;

static int live_proxies;
static HRESULT fail_getbuffer, fail_second_getbuffer, fail_sendreceive;
static int getbuffer_calls;
/* capture of the last request and reply; an injected reply replaces the stub's */
static unsigned char *last_request, *last_reply;
static uint32_t last_request_size, last_reply_size;
static const unsigned char *inject_reply;
static uint32_t inject_reply_size;
static HRESULT last_stub_hr;

typedef struct reply_sink {
    ShmStubReply base;
    void *buf;
    uint32_t size;
} reply_sink;

static HRESULT sink_getbuffer(ShmStubReply *r, uint32_t size, void **buf)
{
    reply_sink *s = (reply_sink *)r;
    s->buf = shmc_malloc(size);
    if (!s->buf)
        return E_OUTOFMEMORY;
    s->size = size;
    *buf = s->buf;
    return S_OK;
}
static const ShmStubReplyVtbl sink_vtbl = {sink_getbuffer};

static HRESULT ch_qi(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid, void **ppv);
static ULONG ch_addref(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)ch;
    return (ULONG)++((tproxy *)from)->refs;
}
static ULONG ch_release(ShmProxyChannel *ch, ShmProxyHeader *from)
{
    (void)ch;
    tproxy *p = (tproxy *)from;
    LONG r = --p->refs;
    if (r == 0) {
        IUnknown_Release(p->target);
        free(p);
        live_proxies--;
    }
    return (ULONG)r;
}

static HRESULT ch_getbuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call,
                            uint32_t size)
{
    (void)ch;
    (void)from;
    getbuffer_calls++;
    if (fail_getbuffer)
        return fail_getbuffer;
    if (call->request && fail_second_getbuffer)
        return fail_second_getbuffer;
    void *buf = shmc_malloc(size); /* exactly size: ASan sees any overrun */
    if (!buf)
        return E_OUTOFMEMORY;
    shmc_free(call->request);
    call->request = buf;
    call->request_size = size;
    call->marshaler = &marshaler;
    return S_OK;
}

static void keep(unsigned char **dst, uint32_t *dsize, const void *src, uint32_t size)
{
    free(*dst);
    *dst = malloc(size ? size : 1);
    memcpy(*dst, src, size);
    *dsize = size;
}

static HRESULT ch_sendreceive(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call)
{
    (void)ch;
    tproxy *p = (tproxy *)from;
    if (fail_sendreceive)
        return fail_sendreceive;
    keep(&last_request, &last_request_size, call->request, call->request_size);
    reply_sink sink = {{&sink_vtbl}, NULL, 0};
    HRESULT hr = ShmStubInvoke(p->hdr.info, p->target, call->method, call->request,
                               call->request_size, &marshaler, &sink.base);
    last_stub_hr = hr;
    if (FAILED(hr))
        return hr;
    keep(&last_reply, &last_reply_size, sink.buf, sink.size);
    if (inject_reply) {
        /* the reply the peer "sent" is replaced: its records are the test's to release */
        shmc_free(sink.buf);
        sink.buf = shmc_malloc(inject_reply_size);
        if (!sink.buf)
            return E_OUTOFMEMORY;
        memcpy(sink.buf, inject_reply, inject_reply_size);
        sink.size = inject_reply_size;
    }
    call->reply = sink.buf;
    call->reply_size = sink.size;
    return S_OK;
}

static void ch_freebuffer(ShmProxyChannel *ch, ShmProxyHeader *from, ShmCallFrame *call)
{
    (void)ch;
    (void)from;
    shmc_free(call->request);
    shmc_free((void *)call->reply);
    call->request = NULL;
    call->reply = NULL;
}

static const ShmProxyChannelVtbl channel_vtbl = {ch_qi,        ch_addref,      ch_release,
                                                 ch_getbuffer, ch_sendreceive, ch_freebuffer};
static ShmProxyChannel channel = {&channel_vtbl};

static const ShmInterfaceInfo *find_info(REFIID iid)
{
    const ShmProxyFileInfo *files[] = {&calls_ProxyFileInfo, &base_ProxyFileInfo};
    for (int f = 0; f < 2; f++)
        for (uint32_t i = 0; i < files[f]->ninterfaces; i++)
            if (IsEqualIID(files[f]->interfaces[i]->iid, iid))
                return files[f]->interfaces[i];
    return NULL;
}

static HRESULT make_proxy(const ShmInterfaceInfo *info, IUnknown *target, void **ppv)
{
    IUnknown *itf;
    HRESULT hr = IUnknown_QueryInterface(target, info->iid, (void **)&itf);
    if (FAILED(hr))
        return hr;
    tproxy *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->hdr.lpVtbl = info->proxy_vtbl;
    p->hdr.info = info;
    p->hdr.channel = &channel;
    p->refs = 1;
    p->target = itf;
    live_proxies++;
    *ppv = p;
    return S_OK;
}

static HRESULT ch_qi(ShmProxyChannel *ch, ShmProxyHeader *from, REFIID riid, void **ppv)
{
    (void)ch;
    tproxy *p = (tproxy *)from;
    const ShmInterfaceInfo *info = find_info(riid);
    if (info)
        return make_proxy(info, p->target, ppv);
    if (IsEqualIID(riid, &IID_IUnknown)) {
        ch_addref(ch, from);
        *ppv = p;
        return S_OK;
    }
    return E_NOINTERFACE;
}

/* ---- the object (callsobj.c) --------------------------------------------------------- */

static calls_obj obj;
static IDerived *proxy; /* a proxy for obj, made fresh by every test */

/* ---- fixtures ----------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    callsobj_init(&obj, NULL);
    fail_getbuffer = fail_second_getbuffer = fail_sendreceive = S_OK;
    inject_reply = NULL;
    unmarshal_fail = 0;
    assert_hr(
        make_proxy(find_info(&IID_IDerived), (IUnknown *)&obj.IDerived_iface, (void **)&proxy),
        S_OK);
    obj.own.calls = 0;
    return 0;
}

/* Every scenario ends with nothing held: no proxy, no record, no reference. */
static int teardown(void **state)
{
    (void)state;
    assert_int_equal(IDerived_Release(proxy), 0);
    assert_int_equal(live_proxies, 0);
    assert_int_equal(outstanding, 0);
    assert_int_equal(obj.refs, 1);
    assert_int_equal(obj.cb.refs, 1);
    free(last_request);
    free(last_reply);
    last_request = last_reply = NULL;
    shmc_alloc_fail_reset();
    return 0;
}

/* ---- tables ------------------------------------------------------------------------- */

static void tables(void **state)
{
    (void)state;
    assert_int_equal(calls_ProxyFileInfo.abi_version, SHM_PROXYSTUB_ABI);
    assert_int_equal(calls_ProxyFileInfo.ninterfaces, 3); /* ILocalOnly has no proxy */
    assert_string_equal(calls_ProxyFileInfo.file_name, "calls.idl");
    assert_int_equal(base_ProxyFileInfo.ninterfaces, 1);
    for (uint32_t i = 0; i < calls_ProxyFileInfo.ninterfaces; i++)
        assert_hr(shmc_ps_check_interface(calls_ProxyFileInfo.interfaces[i]), S_OK);
    assert_hr(shmc_ps_check_interface(base_ProxyFileInfo.interfaces[0]), S_OK);
    const ShmInterfaceInfo *d = find_info(&IID_IDerived);
    assert_string_equal(d->name, "IDerived");
    assert_true(IsEqualIID(d->base_iid, &IID_ICalls));
    assert_int_equal(d->nmethods, 21);
    assert_string_equal(d->methods[3].name, "Ping");
    assert_string_equal(d->methods[20].name, "More");
    /* IIDs as written in the IDL, in COM's byte order */
    static const IID expect = {
        0x6f1f3a10, 0x0000, 0x4000, {0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12}};
    assert_true(IsEqualIID(&IID_IDerived, &expect));
    /* a broken table is refused: overlapping slots, a slot past the fixed part */
    ShmMethod m = d->methods[3];
    ShmParam ps[2];
    memcpy(ps, m.params, sizeof(ps));
    m.params = ps;
    ShmMethod methods[4] = {d->methods[0], d->methods[1], d->methods[2], m};
    ShmInterfaceInfo bad = *d;
    bad.nmethods = 4;
    bad.methods = methods;
    assert_hr(shmc_ps_check_interface(&bad), S_OK);
    ps[1].out_offset = 2;
    assert_hr(shmc_ps_check_interface(&bad), E_INVALIDARG);
    ps[1].out_offset = m.out_size;
    assert_hr(shmc_ps_check_interface(&bad), E_INVALIDARG);
    ps[1].out_offset = 4;
    ps[0].elem_align = 3;
    assert_hr(shmc_ps_check_interface(&bad), E_INVALIDARG);
}

/* ---- calls ----------------------------------------------------------------------------- */

static void simple_and_inherited(void **state)
{
    (void)state;
    callsobj_check_simple(proxy, &obj.own);
    assert_int_equal(obj.own.calls, 10);
}

static void base_types(void **state)
{
    (void)state;
    callsobj_check_base_types(proxy);
}

static void structs_and_fixed_arrays(void **state)
{
    (void)state;
    callsobj_check_structs_and_fixed(proxy);
}

static void strings(void **state)
{
    (void)state;
    callsobj_check_strings(proxy, &obj.own);
}

static void sized_arrays(void **state)
{
    (void)state;
    callsobj_check_sized_arrays(proxy, &obj.own);
}

static void callee_allocated(void **state)
{
    (void)state;
    callsobj_check_callee_allocated(proxy);
}

static void method_failure(void **state)
{
    (void)state;
    callsobj_check_method_failure(proxy, &obj.own);
}

static void streams(void **state)
{
    (void)state;
    callsobj_check_streams(proxy, &obj.own);
}

static void interfaces(void **state)
{
    (void)state;
    ICallback *cb = &obj.cb.ICallback_iface;
    /* [in] interface: the callee calls back through a proxy */
    assert_hr(IDerived_GiveCallback(proxy, cb, 8), S_OK);
    assert_int_equal(obj.own.cb_calls, 1);
    assert_hr(IDerived_GiveCallback(proxy, NULL, 8), S_FALSE);
    /* [out] interface: a proxy comes back */
    ICallback *got = NULL;
    assert_hr(IDerived_GetCallback(proxy, &got), S_OK);
    assert_ptr_not_equal(got, cb);
    LONG twice;
    assert_hr(ICallback_Called(got, 4, &twice), S_OK);
    assert_int_equal(twice, 8);
    assert_int_equal(obj.own.cb_calls, 2);
    /* [in] interface that is itself a proxy: marshaled again */
    assert_hr(IDerived_GiveCallback(proxy, got, 1), S_OK);
    ICallback_Release(got);
    /* iid_is */
    void *pv = NULL;
    assert_hr(IDerived_Query(proxy, (IUnknown *)cb, &IID_ICallback, &pv), S_OK);
    assert_non_null(pv);
    assert_hr(ICallback_Called((ICallback *)pv, 1, &twice), S_OK);
    IUnknown_Release((IUnknown *)pv);
    pv = (void *)1;
    /* the marshaler's QueryInterface fails for IDerived on a callback */
    assert_true(FAILED(IDerived_Query(proxy, (IUnknown *)cb, &IID_IDerived, &pv)));
    assert_null(pv);
    LONG n = 0;
    assert_hr(IDerived_PassIid(proxy, &IID_ICallback, (IUnknown *)cb, &n), S_OK);
    assert_int_equal(n, 1);
    assert_hr(IDerived_PassIid(proxy, NULL, (IUnknown *)cb, &n), E_POINTER);
    ISequentialStream *seq = (ISequentialStream *)1;
    assert_hr(IDerived_Stream(proxy, NULL, &seq), S_FALSE);
    assert_null(seq);
    /* an [in] record the stub cannot unmarshal: the error comes back, nothing leaks */
    unmarshal_fail = 1;
    assert_hr(IDerived_GiveCallback(proxy, cb, 8), E_FAIL);
    /* an [out] record the proxy cannot unmarshal */
    inject_reply = NULL;
    unmarshal_fail = 0;
}

static void out_unmarshal_failure(void **state)
{
    (void)state;
    ICallback *got = (ICallback *)1;
    /* the stub marshals, then the proxy's Unmarshal fails */
    obj.own.calls = 0;
    unmarshal_fail = 0;
    /* make the proxy side fail: flag it after the stub ran, via an injected copy */
    assert_hr(IDerived_GetCallback(proxy, &got), S_OK);
    ICallback_Release(got);
    /* replay the same reply: its record was consumed, so the proxy gets an error */
    unsigned char *copy = malloc(last_reply_size);
    memcpy(copy, last_reply, last_reply_size);
    inject_reply = copy;
    inject_reply_size = last_reply_size;
    got = (ICallback *)1;
    assert_hr(IDerived_GetCallback(proxy, &got), RPC_E_INVALID_OBJREF);
    assert_null(got);
    inject_reply = NULL;
    free(copy);
    /* the stub's fresh record was replaced by the injected one: release it */
    uint32_t off;
    memcpy(&off, last_reply + 4, 4);
    m_release(&marshaler, last_reply + off, sizeof(rec));
}

static void null_pointers_and_bad_slots(void **state)
{
    (void)state;
    int calls = obj.own.calls;
    assert_hr(IDerived_Ping(proxy, 1, NULL), E_POINTER);
    assert_hr(IDerived_SwapPair(proxy, NULL), E_POINTER);
    assert_hr(IDerived_Alloc(proxy, 1, NULL, NULL), E_POINTER);
    assert_hr(IDerived_GetCallback(proxy, NULL), E_POINTER);
    assert_hr(IDerived_Query(proxy, NULL, NULL, NULL), E_POINTER);
    assert_int_equal(obj.own.calls, calls);
    assert_int_equal(getbuffer_calls > 0, 1);
    /* slots that are not methods */
    reply_sink sink = {{&sink_vtbl}, NULL, 0};
    const ShmInterfaceInfo *info = find_info(&IID_IDerived);
    for (uint32_t slot = 0; slot < 3; slot++)
        assert_hr(ShmStubInvoke(info, &obj.IDerived_iface, slot, NULL, 0, &marshaler, &sink.base),
                  RPC_E_INVALIDMETHOD);
    assert_hr(ShmStubInvoke(info, &obj.IDerived_iface, 21, NULL, 0, &marshaler, &sink.base),
              RPC_E_INVALIDMETHOD);
    assert_hr(
        ShmStubInvoke(info, &obj.IDerived_iface, 0xFFFFFFFFu, NULL, 0, &marshaler, &sink.base),
        RPC_E_INVALIDMETHOD);
    assert_hr(ShmProxyInvoke(proxy, 2, NULL), RPC_E_INVALIDMETHOD);
    assert_hr(ShmProxyInvoke(proxy, 21, NULL), RPC_E_INVALIDMETHOD);
    assert_int_equal(obj.own.calls, calls);
}

static void channel_errors(void **state)
{
    (void)state;
    char *a = (char *)1;
    WCHAR *w = (WCHAR *)1;
    fail_getbuffer = RPC_E_DISCONNECTED;
    assert_hr(IDerived_Strings(proxy, "a", callsobj_wide_hi, callsobj_wide_yo, &a, &w),
              RPC_E_DISCONNECTED);
    assert_null(a);
    assert_null(w);
    fail_getbuffer = S_OK;
    fail_sendreceive = RPC_E_SERVER_DIED;
    LONG y = 3;
    assert_hr(IDerived_Ping(proxy, 1, &y), RPC_E_SERVER_DIED);
    assert_int_equal(y, 0);
    fail_sendreceive = S_OK;
    /* the second GetBuffer (for [in] interface records) fails: records released */
    fail_second_getbuffer = RPC_E_TIMEOUT;
    assert_hr(IDerived_GiveCallback(proxy, &obj.cb.ICallback_iface, 1), RPC_E_TIMEOUT);
    fail_second_getbuffer = S_OK;
    assert_int_equal(obj.own.calls, 0);
}

/* ---- hostile requests ----------------------------------------------------------- */

enum {
    SLOT_NOTHING = 5,
    SLOT_STRINGS = 9,
    SLOT_ARRAYS = 10,
    SLOT_ALLOC = 11,
    SLOT_SIGNED = 13,
    SLOT_GIVE = 15,
    SLOT_QUERY = 17
};

/* Calls the stub with a copy of the frame in a buffer of exactly its size. */
static HRESULT stub_call(uint32_t slot, const unsigned char *req, uint32_t size)
{
    unsigned char *copy = malloc(size ? size : 1);
    memcpy(copy, req, size);
    reply_sink sink = {{&sink_vtbl}, NULL, 0};
    HRESULT hr = ShmStubInvoke(find_info(&IID_IDerived), &obj.IDerived_iface, slot, copy, size,
                               &marshaler, &sink.base);
    shmc_free(sink.buf);
    free(copy);
    return hr;
}

static void put32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* frame with one 32-bit field replaced, expected to be refused */
static void expect_bad(uint32_t slot, const unsigned char *req, uint32_t size, uint32_t at,
                       uint32_t value)
{
    unsigned char *m = malloc(size);
    memcpy(m, req, size);
    put32(m + at, value);
    int calls = obj.own.calls;
    HRESULT hr = stub_call(slot, m, size);
    if (hr != RPC_E_INVALID_DATA)
        fail_msg("slot %u, field at %u = 0x%x: hr 0x%08x", slot, at, value, (unsigned)hr);
    assert_int_equal(obj.own.calls, calls);
    free(m);
}

static void hostile_requests(void **state)
{
    (void)state;
    char *a;
    WCHAR *w;
    assert_hr(IDerived_Strings(proxy, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w), S_OK);
    ShmCoTaskMemFree(a);
    ShmCoTaskMemFree(w);
    uint32_t size = last_request_size;
    unsigned char *req = malloc(size);
    memcpy(req, last_request, size);
    /* layout: refs of a, w, ole at 0, 8, 16; data from 24, 8-aligned */
    assert_int_equal(get32(req), 24);
    assert_int_equal(get32(req + 4), 4);
    int calls = obj.own.calls;
    assert_hr(stub_call(SLOT_STRINGS, req, size), S_OK);
    assert_int_equal(obj.own.calls, calls + 1);
    /* truncated: every prefix */
    for (uint32_t n = 0; n < size; n++) {
        assert_hr(stub_call(SLOT_STRINGS, req, n), RPC_E_INVALID_DATA);
        assert_int_equal(obj.own.calls, calls + 1);
    }
    uint32_t w_off = get32(req + 8), ole_off = get32(req + 16);
    expect_bad(SLOT_STRINGS, req, size, 0, 8);                 /* into the fixed part */
    expect_bad(SLOT_STRINGS, req, size, 0, 25);                /* misaligned */
    expect_bad(SLOT_STRINGS, req, size, 0, size);              /* out of range */
    expect_bad(SLOT_STRINGS, req, size, 0, 0xFFFFFFF8u);       /* offset + length wraps */
    expect_bad(SLOT_STRINGS, req, size, 0, SHM_NULL_REF);      /* NULL string */
    expect_bad(SLOT_STRINGS, req, size, 4, 0xFFFFFFFFu);       /* oversized */
    expect_bad(SLOT_STRINGS, req, size, 4, 0);                 /* no terminator room */
    expect_bad(SLOT_STRINGS, req, size, 4, 3);                 /* terminator cut off */
    expect_bad(SLOT_STRINGS, req, size, 8, 24);                /* overlaps a's data */
    expect_bad(SLOT_STRINGS, req, size, 16, w_off);            /* overlaps w's data */
    expect_bad(SLOT_STRINGS, req, size, 12, 7);                /* odd length for WCHARs */
    expect_bad(SLOT_STRINGS, req, size, 24, 0x00006261u);      /* "ab" and a NUL inside */
    expect_bad(SLOT_STRINGS, req, size, 24, 0x64636261u);      /* "abcd": no terminator */
    expect_bad(SLOT_STRINGS, req, size, ole_off, 0x00000079u); /* wide NUL too early */
    free(req);

    /* sized arrays: counts must match the refs' lengths */
    LONG in[3] = {1, 2, 3}, out[3];
    Item io[1] = {callsobj_item(0)};
    ULONG m1 = 1;
    assert_hr(IDerived_Arrays(proxy, 3, in, out, &m1, io), S_OK);
    size = last_request_size;
    req = malloc(size);
    memcpy(req, last_request, size);
    calls = obj.own.calls;
    assert_hr(stub_call(SLOT_ARRAYS, req, size), S_OK);
    for (uint32_t n = 0; n < size; n++)
        assert_hr(stub_call(SLOT_ARRAYS, req, n), RPC_E_INVALID_DATA);
    assert_int_equal(obj.own.calls, calls + 1);
    expect_bad(SLOT_ARRAYS, req, size, 0, 4);           /* n no longer matches in's length */
    expect_bad(SLOT_ARRAYS, req, size, 0, 0xFFFFFFFFu); /* huge count */
    expect_bad(SLOT_ARRAYS, req, size, 12, 2);          /* *pm no longer matches io's length */
    expect_bad(SLOT_ARRAYS, req, size, 8, 13);          /* in's length not a multiple of 4 */
    expect_bad(SLOT_ARRAYS, req, size, 20, 0);          /* io's length 0 for a count of 1 */
    free(req);

    /* a negative signed count */
    BYTE data[2] = {1, 2};
    assert_hr(IDerived_Signed(proxy, 2, data), S_OK);
    size = last_request_size;
    req = malloc(size);
    memcpy(req, last_request, size);
    expect_bad(SLOT_SIGNED, req, size, 0, 0xFFFFFFFFu);
    free(req);

    /* interface records: a NULL ref must be exactly {NULL, 0}; a record the marshaler does
     * not know is its error, and the object is not called */
    assert_hr(IDerived_GiveCallback(proxy, NULL, 1), S_FALSE);
    size = last_request_size;
    req = malloc(size);
    memcpy(req, last_request, size);
    assert_hr(stub_call(SLOT_GIVE, req, size), S_OK);
    expect_bad(SLOT_GIVE, req, size, 4, 8);
    free(req);
    /* (Query does not call back, so the last request is its own) */
    void *pv;
    assert_hr(IDerived_Query(proxy, (IUnknown *)&obj.cb.ICallback_iface, &IID_ICallback, &pv),
              S_OK);
    IUnknown_Release((IUnknown *)pv);
    size = last_request_size;
    req = malloc(size);
    memcpy(req, last_request, size); /* its record was consumed by the real call */
    calls = obj.own.calls;
    assert_hr(stub_call(SLOT_QUERY, req, size), RPC_E_INVALID_OBJREF);
    assert_int_equal(obj.own.calls, calls);
    expect_bad(SLOT_QUERY, req, size, 4, size); /* record past the end */
    expect_bad(SLOT_QUERY, req, size, 0, 8);    /* record over the riid slot */
    free(req);
}

/* ---- a method without parameters ---------------------------------------------------- */

/* A reply sink whose buffer cannot be had. */
static HRESULT sink_getbuffer_fails(ShmStubReply *r, uint32_t size, void **buf)
{
    (void)r;
    (void)size;
    *buf = NULL;
    return E_OUTOFMEMORY;
}
static const ShmStubReplyVtbl failing_sink_vtbl = {sink_getbuffer_fails};

/* Nothing(void) takes the engine's short path on both sides: the same
 * frames, checks and errors as the general one. */
static void bare_method(void **state)
{
    (void)state;
    assert_hr(IDerived_Nothing(proxy), S_OK);
    assert_int_equal(obj.own.calls, 1);
    assert_int_equal(last_request_size, 0);
    assert_int_equal(last_reply_size, 8); /* the HRESULT, padded */
    assert_int_equal(get32(last_reply), S_OK);
    assert_int_equal(get32(last_reply + 4), 0);
    /* the object's own results come back; a failure in a bare HRESULT */
    obj.nothing_hr = S_FALSE;
    assert_hr(IDerived_Nothing(proxy), S_FALSE);
    assert_int_equal(last_reply_size, 8);
    obj.nothing_hr = E_NOTIMPL;
    assert_hr(IDerived_Nothing(proxy), E_NOTIMPL);
    assert_int_equal(last_reply_size, 4);
    assert_int_equal(get32(last_reply), (uint32_t)E_NOTIMPL);
    obj.nothing_hr = S_OK;
    assert_int_equal(obj.own.calls, 3);

    /* the channel's errors, without a call */
    fail_getbuffer = RPC_E_DISCONNECTED;
    assert_hr(IDerived_Nothing(proxy), RPC_E_DISCONNECTED);
    fail_getbuffer = S_OK;
    fail_sendreceive = RPC_E_SERVER_DIED;
    assert_hr(IDerived_Nothing(proxy), RPC_E_SERVER_DIED);
    fail_sendreceive = S_OK;
    assert_int_equal(obj.own.calls, 3);

    /* replies from a hostile peer: too short for an HRESULT, or one that
     * fails (then nothing else is read); a longer one is only read as far
     * as the method's reply goes */
    unsigned char rep[16];
    memset(rep, 0, sizeof(rep));
    for (uint32_t n = 0; n < 4; n++) {
        inject_reply = rep;
        inject_reply_size = n;
        assert_hr(IDerived_Nothing(proxy), RPC_E_INVALID_DATA);
    }
    put32(rep, (uint32_t)E_ACCESSDENIED);
    inject_reply_size = 4;
    assert_hr(IDerived_Nothing(proxy), E_ACCESSDENIED);
    put32(rep, (uint32_t)S_FALSE);
    put32(rep + 4, 0xdeadbeefu);
    inject_reply_size = sizeof(rep);
    assert_hr(IDerived_Nothing(proxy), S_FALSE);
    inject_reply = NULL;

    /* the stub: a request may carry more than the method reads; a reply
     * buffer it cannot get is the call's error (the method ran) */
    static const unsigned char extra[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int calls = obj.own.calls;
    assert_hr(stub_call(SLOT_NOTHING, extra, sizeof(extra)), S_OK);
    assert_int_equal(obj.own.calls, calls + 1);
    ShmStubReply failing = {&failing_sink_vtbl};
    assert_hr(ShmStubInvoke(find_info(&IID_IDerived), &obj.IDerived_iface, SLOT_NOTHING, NULL, 0,
                            &marshaler, &failing),
              E_OUTOFMEMORY);
    assert_int_equal(obj.own.calls, calls + 2);
    /* and what it checks before the short path: the method and the size */
    assert_hr(ShmStubInvoke(find_info(&IID_IDerived), &obj.IDerived_iface, SLOT_NOTHING, NULL, 8,
                            &marshaler, &failing),
              E_INVALIDARG);
    assert_int_equal(obj.own.calls, calls + 2);
}

/* ---- hostile replies ------------------------------------------------------------------ */

static void expect_bad_reply(const unsigned char *rep, uint32_t size, HRESULT expect)
{
    inject_reply = rep;
    inject_reply_size = size;
    char *a = (char *)1;
    WCHAR *w = (WCHAR *)1;
    assert_hr(IDerived_Strings(proxy, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w), expect);
    assert_null(a);
    assert_null(w);
    inject_reply = NULL;
}

static void hostile_replies(void **state)
{
    (void)state;
    char *a;
    WCHAR *w;
    assert_hr(IDerived_Strings(proxy, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w), S_OK);
    ShmCoTaskMemFree(a);
    ShmCoTaskMemFree(w);
    uint32_t size = last_reply_size;
    unsigned char *rep = malloc(size);
    memcpy(rep, last_reply, size);
    /* hr at 0, refs of pa and pw at 4 and 12, data from 24 */
    assert_int_equal(get32(rep + 4), 24);
    for (uint32_t n = 0; n < size; n++)
        expect_bad_reply(rep, n, RPC_E_INVALID_DATA);
    unsigned char *m = malloc(size);
    static const struct {
        uint32_t at, value;
    } bad[] = {{4, 16},  {4, 26}, {8, 0xFFFFFFF0u},  {4, 0xFFFFFFF8u},
               {12, 24}, {16, 3}, {24, 0x00003c00u}, {28, 0x4141u}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(m, rep, size);
        put32(m + bad[i].at, bad[i].value);
        print_message("reply field at %u = 0x%x\n", bad[i].at, bad[i].value);
        expect_bad_reply(m, size, RPC_E_INVALID_DATA);
    }
    /* a NULL [out] string is fine */
    memcpy(m, rep, size);
    put32(m + 4, SHM_NULL_REF);
    put32(m + 8, 0);
    inject_reply = m;
    inject_reply_size = size;
    a = (char *)1;
    assert_hr(IDerived_Strings(proxy, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w), S_OK);
    assert_null(a);
    ShmCoTaskMemFree(w);
    /* a failure HRESULT ends it: [out] pointers NULL */
    memcpy(m, rep, size);
    put32(m, (uint32_t)E_NOTIMPL);
    expect_bad_reply(m, size, E_NOTIMPL);
    free(m);
    free(rep);

    /* callee-allocated array: the count must match */
    ULONG n;
    Item *items;
    assert_hr(IDerived_Alloc(proxy, 2, &n, &items), S_OK);
    ShmCoTaskMemFree(items);
    size = last_reply_size;
    rep = malloc(size);
    memcpy(rep, last_reply, size);
    m = malloc(size);
    static const struct {
        uint32_t at, value;
    } bad2[] = {{4, 3}, {4, 0xFFFFFFFFu}, {12, 8}, {8, SHM_NULL_REF}};
    for (size_t i = 0; i < sizeof(bad2) / sizeof(bad2[0]); i++) {
        memcpy(m, rep, size);
        put32(m + bad2[i].at, bad2[i].value);
        inject_reply = m;
        inject_reply_size = size;
        n = 7;
        items = (Item *)1;
        assert_hr(IDerived_Alloc(proxy, 2, &n, &items), RPC_E_INVALID_DATA);
        assert_int_equal(n, 0);
        assert_null(items);
    }
    inject_reply = NULL;
    free(m);
    free(rep);
}

/* ---- allocation failures ---------------------------------------------------------------- */

static HRESULT sc_strings(void)
{
    char *a;
    WCHAR *w;
    HRESULT hr = IDerived_Strings(proxy, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w);
    if (SUCCEEDED(hr)) {
        assert_string_equal(a, "<abc>");
        ShmCoTaskMemFree(a);
        ShmCoTaskMemFree(w);
    } else {
        assert_null(a);
        assert_null(w);
    }
    return hr;
}
static HRESULT sc_arrays(void)
{
    LONG in[40] = {0}, out[40];
    Item io[2] = {callsobj_item(1), callsobj_item(2)};
    ULONG m = 2;
    return IDerived_Arrays(proxy, 40, in, out, &m, io);
}
static HRESULT sc_alloc(void)
{
    ULONG n;
    Item *items;
    HRESULT hr = IDerived_Alloc(proxy, 3, &n, &items);
    if (SUCCEEDED(hr))
        ShmCoTaskMemFree(items);
    else
        assert_null(items);
    return hr;
}
static HRESULT sc_give(void)
{
    return IDerived_GiveCallback(proxy, &obj.cb.ICallback_iface, 2);
}
static HRESULT sc_get(void)
{
    ICallback *cb;
    HRESULT hr = IDerived_GetCallback(proxy, &cb);
    if (SUCCEEDED(hr))
        ICallback_Release(cb);
    else
        assert_null(cb);
    return hr;
}
static HRESULT sc_query(void)
{
    void *pv;
    HRESULT hr = IDerived_Query(proxy, (IUnknown *)&obj.cb.ICallback_iface, &IID_ICallback, &pv);
    if (SUCCEEDED(hr))
        IUnknown_Release((IUnknown *)pv);
    else
        assert_null(pv);
    return hr;
}
static HRESULT sc_fail(void)
{
    LONG v;
    char *s;
    ULONG n;
    LONG *arr;
    ICallback *cb;
    HRESULT hr = IDerived_Fail(proxy, S_OK, &v, &s, &n, &arr, &cb);
    if (SUCCEEDED(hr)) {
        ShmCoTaskMemFree(s);
        ShmCoTaskMemFree(arr);
        if (cb)
            ICallback_Release(cb);
    }
    return hr;
}

typedef HRESULT (*scenario_fn)(void);

static void every_allocation_fails(void **state)
{
    (void)state;
    static const scenario_fn scenarios[] = {sc_strings, sc_arrays, sc_alloc, sc_give,
                                            sc_get,     sc_query,  sc_fail};
    for (size_t s = 0; s < sizeof(scenarios) / sizeof(scenarios[0]); s++) {
        shmc_alloc_fail_at(0);
        assert_hr(scenarios[s](), S_OK);
        unsigned long n = shmc_alloc_fail_at(0);
        assert_true(n >= 2);
        int failed = 0;
        for (unsigned long k = 1; k <= n; k++) {
            shmc_alloc_fail_at(k);
            HRESULT hr = scenarios[s]();
            shmc_alloc_fail_reset();
            if (FAILED(hr))
                failed++;
            if (k == 1)
                assert_true(FAILED(hr));
            assert_int_equal(live_proxies, 1);
            assert_int_equal(outstanding, 0);
            assert_int_equal(obj.refs, 2); /* ours and the proxy's */
            assert_int_equal(obj.cb.refs, 1);
        }
        assert_true(failed >= 1);
    }
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tables, setup, teardown),
        cmocka_unit_test_setup_teardown(simple_and_inherited, setup, teardown),
        cmocka_unit_test_setup_teardown(base_types, setup, teardown),
        cmocka_unit_test_setup_teardown(structs_and_fixed_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(strings, setup, teardown),
        cmocka_unit_test_setup_teardown(sized_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(callee_allocated, setup, teardown),
        cmocka_unit_test_setup_teardown(method_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(streams, setup, teardown),
        cmocka_unit_test_setup_teardown(interfaces, setup, teardown),
        cmocka_unit_test_setup_teardown(out_unmarshal_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(null_pointers_and_bad_slots, setup, teardown),
        cmocka_unit_test_setup_teardown(channel_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(bare_method, setup, teardown),
        cmocka_unit_test_setup_teardown(every_allocation_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
