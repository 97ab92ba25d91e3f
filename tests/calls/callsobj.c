/*
 * callsobj.c - see callsobj.h.
 */
#define COBJMACROS
#include "callsobj.h"

#include <stdlib.h>
#include <string.h>

/* ---- the objects ------------------------------------------------------------------ */

/*
 * What the methods do: Ping(x) gives 2x + 1 (S_FALSE for x < 0); SwapPair
 * swaps; Bases checks every value against what callsobj_check_base_types
 * passes and gives f + d; Structs copies `in` to *pout with id + 1 if
 * *pin equals it, doubles pio->id and negates pio->w.h; Fixed gives
 * b = 10a, adds 1 to w[0].h, doubles w[1].d, gives g with Data1 + 1 and
 * checks riid2 is IID_ICallback; Strings gives "<a>" and w followed by
 * ole; Arrays gives out = 3 in and adds 100 to each io's id; Alloc gives
 * `want` items with ids 0, 7, 14...; AllocIn gives 1, 2, ... n; Fail sets
 * every [out] and returns hr; GiveCallback calls cb (S_FALSE for NULL);
 * GetCallback gives the object's callback; Query and PassIid query the
 * [in] interface; Stream reads the caller's stream, writes "!" at its
 * end and gives a shared-memory stream of its own that holds what it read
 * in angle brackets (S_FALSE for NULL); More gives strlen(name).
 * Ping(CALLSOBJ_FAIL), a SwapPair whose a is CALLSOBJ_FAIL, Strings and
 * More of "fail" and Arrays whose in[0] is CALLSOBJ_FAIL fail with E_FAIL
 * after setting their [out] parameters, as a sloppy callee would.
 */

static HRESULT STDMETHODCALLTYPE cb_qi(ICallback *This, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_ICallback)) {
        *ppv = This;
        ICallback_AddRef(This);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE cb_addref(ICallback *This)
{
    return (ULONG)atomic_fetch_add(&((callback *)This)->refs, 1) + 1;
}
static ULONG STDMETHODCALLTYPE cb_release(ICallback *This)
{
    return (ULONG)atomic_fetch_sub(&((callback *)This)->refs, 1) - 1;
}
static HRESULT STDMETHODCALLTYPE cb_called(ICallback *This, LONG value, LONG *twice)
{
    callback *cb = (callback *)This;
    cb->counts->cb_calls++;
    cb->thread = shmc_plat_thread_self_id();
    *twice = value * 2;
    return S_OK;
}
static const ICallbackVtbl cb_vtbl = {cb_qi, cb_addref, cb_release, cb_called};

static calls_obj *impl(IDerived *This)
{
    return (calls_obj *)This;
}

static HRESULT STDMETHODCALLTYPE o_qi(IDerived *This, REFIID riid, void **ppv)
{
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IBase) ||
        IsEqualIID(riid, &IID_ICalls) || IsEqualIID(riid, &IID_IDerived)) {
        *ppv = This;
        IDerived_AddRef(This);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE o_addref(IDerived *This)
{
    return (ULONG)atomic_fetch_add(&impl(This)->refs, 1) + 1;
}
static ULONG STDMETHODCALLTYPE o_release(IDerived *This)
{
    return (ULONG)atomic_fetch_sub(&impl(This)->refs, 1) - 1;
}
static HRESULT STDMETHODCALLTYPE o_ping(IDerived *This, LONG x, LONG *y)
{
    impl(This)->counts->calls++;
    *y = x * 2 + 1;
    if (x == CALLSOBJ_FAIL)
        return E_FAIL; /* having set its [out] */
    return x < 0 ? S_FALSE : S_OK;
}
static HRESULT STDMETHODCALLTYPE o_swap(IDerived *This, Pair *p)
{
    impl(This)->counts->calls++;
    LONG t = p->a;
    p->a = p->b;
    p->b = t;
    return t == CALLSOBJ_FAIL ? E_FAIL : S_OK;
}
static HRESULT STDMETHODCALLTYPE o_nothing(IDerived *This)
{
    impl(This)->counts->calls++;
    return impl(This)->nothing_hr;
}
static HRESULT STDMETHODCALLTYPE o_bases(IDerived *This, char c, BYTE y, signed char sm,
                                         unsigned char usm, short s, unsigned short us, int i,
                                         unsigned int ui, LONG l, ULONG ul, hyper h, MIDL_uhyper uh,
                                         __int64 i64, unsigned __int64 u64, float f, double d,
                                         boolean b, BOOL B, DWORD dw, ULONGLONG ull, HRESULT hr,
                                         Color col, double *sum)
{
    impl(This)->counts->calls++;
    int ok = c == 'x' && y == 0xFE && sm == -100 && usm == 200 && s == -30000 && us == 60000 &&
             i == -2000000000 && ui == 4000000000u && l == -123456 && ul == 0xDEADBEEF &&
             h == -1234567890123LL && uh == 0xFEDCBA9876543210ULL && i64 == INT64_MIN &&
             u64 == UINT64_MAX && f == 1.5f && d == -2.25 && b == 1 && B == 7 &&
             dw == 0x80000000u && ull == 42 && hr == E_FAIL && col == BLUE;
    *sum = ok ? (double)f + d : -1;
    return ok ? S_OK : E_INVALIDARG;
}
static HRESULT STDMETHODCALLTYPE o_structs(IDerived *This, Item in, const Item *pin, Item *pout,
                                           Item *pio)
{
    impl(This)->counts->calls++;
    if (memcmp(&in, pin, sizeof(in)))
        return E_INVALIDARG;
    *pout = in;
    pout->id++;
    pio->id *= 2;
    pio->w.h = -pio->w.h;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_fixed(IDerived *This, LONG a[4], LONG b[4], Wide w[2], GUID g,
                                         GUID *pg, REFIID riid2)
{
    impl(This)->counts->calls++;
    for (int i = 0; i < 4; i++)
        b[i] = a[i] * 10;
    w[0].h += 1;
    w[1].d *= 2;
    *pg = g;
    pg->Data1++;
    return IsEqualIID(riid2, &IID_ICallback) ? S_OK : E_INVALIDARG;
}
static size_t wlen(const WCHAR *w)
{
    size_t n = 0;
    while (w[n])
        n++;
    return n;
}
static HRESULT STDMETHODCALLTYPE o_strings(IDerived *This, const char *a, const WCHAR *w,
                                           LPCOLESTR ole, char **pa, WCHAR **pw)
{
    impl(This)->counts->calls++;
    size_t n = strlen(a), m = wlen(w), k = wlen(ole);
    *pa = ShmCoTaskMemAlloc(n + 3);
    *pw = ShmCoTaskMemAlloc((m + k + 1) * sizeof(WCHAR));
    if (!*pa || !*pw) {
        ShmCoTaskMemFree(*pa);
        ShmCoTaskMemFree(*pw);
        *pa = NULL;
        *pw = NULL;
        return E_OUTOFMEMORY;
    }
    (*pa)[0] = '<';
    memcpy(*pa + 1, a, n);
    (*pa)[n + 1] = '>';
    (*pa)[n + 2] = 0;
    memcpy(*pw, w, m * sizeof(WCHAR));
    memcpy(*pw + m, ole, (k + 1) * sizeof(WCHAR));
    return strcmp(a, "fail") ? S_OK : E_FAIL;
}
static HRESULT STDMETHODCALLTYPE o_arrays(IDerived *This, ULONG n, const LONG *in, LONG *out,
                                          ULONG *pm, Item *io)
{
    impl(This)->counts->calls++;
    for (ULONG i = 0; i < n; i++)
        out[i] = in[i] * 3;
    for (ULONG i = 0; i < *pm; i++)
        io[i].id += 100;
    return n && in[0] == CALLSOBJ_FAIL ? E_FAIL : S_OK;
}
static HRESULT STDMETHODCALLTYPE o_alloc(IDerived *This, LONG want, ULONG *pn, Item **items)
{
    impl(This)->counts->calls++;
    if (want < 0)
        return E_INVALIDARG;
    if (want == 0) {
        *pn = 0;
        *items = NULL;
        return S_OK;
    }
    *items = ShmCoTaskMemAlloc(sizeof(Item) * (size_t)want);
    if (!*items)
        return E_OUTOFMEMORY;
    memset(*items, 0, sizeof(Item) * (size_t)want);
    for (LONG i = 0; i < want; i++)
        (*items)[i].id = i * 7;
    *pn = (ULONG)want;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_allocin(IDerived *This, short n, BYTE **bytes)
{
    impl(This)->counts->calls++;
    *bytes = ShmCoTaskMemAlloc((size_t)n);
    if (!*bytes)
        return E_OUTOFMEMORY;
    for (short i = 0; i < n; i++)
        (*bytes)[i] = (BYTE)(i + 1);
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_signed(IDerived *This, LONG n, const BYTE *data)
{
    impl(This)->counts->calls++;
    impl(This)->counts->signed_n = n;
    (void)data;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_fail(IDerived *This, HRESULT hr, LONG *value, char **s,
                                        ULONG *pn, LONG **arr, ICallback **cb)
{
    /* a sloppy callee: sets every [out] even though it fails */
    impl(This)->counts->calls++;
    *value = 99;
    *s = ShmCoTaskMemAlloc(4);
    if (*s)
        memcpy(*s, "bad", 4);
    *pn = 3;
    *arr = ShmCoTaskMemAlloc(3 * sizeof(LONG));
    for (LONG i = 0; *arr && i < 3; i++)
        (*arr)[i] = 7 * (i + 1);
    *cb = &impl(This)->cb.ICallback_iface;
    ICallback_AddRef(*cb);
    return hr;
}
static HRESULT STDMETHODCALLTYPE o_give(IDerived *This, ICallback *cb, LONG value)
{
    impl(This)->counts->calls++;
    LONG twice = 0;
    if (!cb)
        return S_FALSE;
    HRESULT hr = ICallback_Called(cb, value, &twice);
    return FAILED(hr) ? hr : (twice == value * 2 ? S_OK : E_FAIL);
}
static HRESULT STDMETHODCALLTYPE o_get(IDerived *This, ICallback **cb)
{
    impl(This)->counts->calls++;
    *cb = &impl(This)->cb.ICallback_iface;
    ICallback_AddRef(*cb);
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_query(IDerived *This, IUnknown *unk, REFIID riid, void **ppv)
{
    impl(This)->counts->calls++;
    *ppv = NULL;
    if (!unk)
        return E_POINTER;
    return IUnknown_QueryInterface(unk, riid, ppv);
}
static HRESULT STDMETHODCALLTYPE o_passiid(IDerived *This, const IID *piid, IUnknown *unk, LONG *n)
{
    impl(This)->counts->calls++;
    void *p;
    if (!unk || FAILED(IUnknown_QueryInterface(unk, piid, &p)))
        return E_NOINTERFACE;
    IUnknown_Release((IUnknown *)p);
    *n = 1;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE o_stream(IDerived *This, IStream *stm, ISequentialStream **seq)
{
    impl(This)->counts->calls++;
    *seq = NULL;
    if (!stm)
        return S_FALSE;
    /* what the caller's stream holds, from its start; then a mark at its
     * end (NULL counts and positions, as COM allows) */
    STATSTG st;
    HRESULT hr = IStream_Stat(stm, &st, STATFLAG_NONAME);
    if (FAILED(hr))
        return hr;
    char buf[CALLSOBJ_STREAM_MAX + 2];
    if (st.pwcsName || st.cbSize.QuadPart > CALLSOBJ_STREAM_MAX)
        return E_INVALIDARG;
    ULONG n = (ULONG)st.cbSize.QuadPart, got = 0;
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    hr = IStream_Seek(stm, zero, STREAM_SEEK_SET, NULL);
    if (SUCCEEDED(hr))
        hr = IStream_Read(stm, buf + 1, n, &got);
    if (SUCCEEDED(hr) && got != n)
        hr = E_FAIL;
    if (SUCCEEDED(hr))
        hr = IStream_Seek(stm, zero, STREAM_SEEK_END, NULL);
    if (SUCCEEDED(hr))
        hr = IStream_Write(stm, "!", 1, NULL);
    if (FAILED(hr))
        return hr;
    /* a stream of its own, "<what it read>", from its start */
    IStream *own;
    hr = ShmCreateStreamOnSharedMemory(NULL, 1 << 16, 0, &own);
    if (FAILED(hr))
        return hr;
    buf[0] = '<';
    buf[n + 1] = '>';
    hr = IStream_Write(own, buf, n + 2, NULL);
    if (SUCCEEDED(hr))
        hr = IStream_Seek(own, zero, STREAM_SEEK_SET, NULL);
    if (SUCCEEDED(hr))
        hr = IStream_QueryInterface(own, &IID_ISequentialStream, (void **)seq);
    IStream_Release(own);
    return hr;
}
static HRESULT STDMETHODCALLTYPE o_more(IDerived *This, const char *name, ULONG *len)
{
    impl(This)->counts->calls++;
    *len = (ULONG)strlen(name);
    return strcmp(name, "fail") ? S_OK : E_FAIL;
}

static const IDerivedVtbl obj_vtbl = {
    o_qi,      o_addref, o_release, o_ping,   o_swap,    o_nothing, o_bases,
    o_structs, o_fixed,  o_strings, o_arrays, o_alloc,   o_allocin, o_signed,
    o_fail,    o_give,   o_get,     o_query,  o_passiid, o_stream,  o_more};

void callback_init(callback *cb, callsobj_counts *counts)
{
    memset(cb, 0, sizeof(*cb));
    cb->ICallback_iface.lpVtbl = &cb_vtbl;
    atomic_init(&cb->refs, 1);
    cb->counts = counts ? counts : &cb->own;
}

void callsobj_init(calls_obj *o, callsobj_counts *counts)
{
    memset(o, 0, sizeof(*o));
    o->IDerived_iface.lpVtbl = &obj_vtbl;
    atomic_init(&o->refs, 1);
    o->counts = counts ? counts : &o->own;
    callback_init(&o->cb, o->counts);
}

/* ---- what a caller checks ------------------------------------------------------------ */

const WCHAR callsobj_wide_hi[] = {'h', 0x00e9, 'i', 0};
const WCHAR callsobj_wide_yo[] = {'y', 'o', 0};

Item callsobj_item(LONG id)
{
    Item it;
    memset(&it, 0, sizeof(it));
    it.id = id;
    it.color = GREEN;
    it.pair.a = id + 1;
    it.pair.b = id + 2;
    it.w.c = 'w';
    it.w.h = 0x1122334455667788LL;
    it.w.s = -5;
    it.w.d = 3.5;
    it.w.b = 1;
    it.w.f = 0.25f;
    it.w.g = IID_ICallback;
    it.w.tail[2] = 9;
    return it;
}

void callsobj_check_simple(IDerived *p, callsobj_counts *counts)
{
    int calls = counts->calls;
    LONG y = 0;
    assert_hr(IDerived_Ping(p, 20, &y), S_OK); /* from the imported base */
    assert_int_equal(y, 41);
    assert_hr(IDerived_Ping(p, -1, &y), S_FALSE); /* success codes pass through */
    assert_int_equal(y, -1);
    Pair pair = {1, 2};
    assert_hr(IDerived_SwapPair(p, &pair), S_OK);
    assert_int_equal(pair.a, 2);
    assert_int_equal(pair.b, 1);
    assert_hr(IDerived_Nothing(p), S_OK);
    ULONG len = 0;
    assert_hr(IDerived_More(p, "seven!!", &len), S_OK);
    assert_int_equal(len, 7);
    assert_int_equal(counts->calls, calls + 5);
    /* QueryInterface through the proxy: each base's own proxy works */
    ICalls *c = NULL;
    assert_hr(IDerived_QueryInterface(p, &IID_ICalls, (void **)&c), S_OK);
    assert_hr(ICalls_Nothing(c), S_OK);
    ICalls_Release(c);
    IBase *b = NULL;
    assert_hr(IDerived_QueryInterface(p, &IID_IBase, (void **)&b), S_OK);
    assert_hr(IBase_Ping(b, 3, &y), S_OK);
    assert_int_equal(y, 7);
    IBase_Release(b);
    assert_int_equal(counts->calls, calls + 7);
    /* the object's failures: [out] zeroed, [in, out] as passed */
    y = 5;
    assert_hr(IDerived_Ping(p, CALLSOBJ_FAIL, &y), E_FAIL);
    assert_int_equal(y, 0);
    Pair fail = {CALLSOBJ_FAIL, 3};
    assert_hr(IDerived_SwapPair(p, &fail), E_FAIL);
    assert_int_equal(fail.a, CALLSOBJ_FAIL);
    assert_int_equal(fail.b, 3);
    len = 5;
    assert_hr(IDerived_More(p, "fail", &len), E_FAIL);
    assert_int_equal(len, 0);
    assert_int_equal(counts->calls, calls + 10);
    void *none = (void *)1;
    assert_hr(IDerived_QueryInterface(p, &IID_IStream, &none), E_NOINTERFACE);
    assert_null(none);
    assert_hr(IDerived_QueryInterface(p, &IID_IStream, NULL), E_POINTER);
    /* a NULL [out] pointer: refused before any call */
    assert_hr(IDerived_Ping(p, 1, NULL), E_POINTER);
    assert_hr(IDerived_SwapPair(p, NULL), E_POINTER);
    assert_int_equal(counts->calls, calls + 10);
}

void callsobj_check_base_types(IDerived *p)
{
    double sum = 0;
    assert_hr(IDerived_Bases(p, 'x', 0xFE, -100, 200, -30000, 60000, -2000000000, 4000000000u,
                             -123456, 0xDEADBEEF, -1234567890123LL, 0xFEDCBA9876543210ULL,
                             INT64_MIN, UINT64_MAX, 1.5f, -2.25, 1, 7, 0x80000000u, 42, E_FAIL,
                             BLUE, &sum),
              S_OK);
    assert_true(sum == -0.75);
    /* the object's failure passes through, and [out] data comes back zeroed */
    sum = 5;
    assert_hr(IDerived_Bases(p, 'y', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, S_OK,
                             RED, &sum),
              E_INVALIDARG);
    assert_true(sum == 0);
}

void callsobj_check_structs_and_fixed(IDerived *p)
{
    Item in = callsobj_item(10), out, io = callsobj_item(3);
    assert_hr(IDerived_Structs(p, in, &in, &out, &io), S_OK);
    Item expect = in;
    expect.id = 11;
    assert_memory_equal(&out, &expect, sizeof(out));
    assert_int_equal(io.id, 6);
    assert_true(io.w.h == -0x1122334455667788LL);
    assert_int_equal(io.pair.b, 5);
    /* the object's failure (the two [in] copies differ): [out] zeroed,
     * [in, out] as passed */
    Item other = callsobj_item(11), before = io;
    memset(&out, 0x55, sizeof(out));
    assert_hr(IDerived_Structs(p, in, &other, &out, &io), E_INVALIDARG);
    Item zero;
    memset(&zero, 0, sizeof(zero));
    assert_memory_equal(&out, &zero, sizeof(out));
    assert_memory_equal(&io, &before, sizeof(io));

    LONG a[4] = {1, 2, 3, 4}, b[4] = {0};
    Wide w[2];
    memset(w, 0, sizeof(w));
    w[0].h = 5;
    w[1].d = 1.25;
    GUID g = IID_IDerived, pg;
    assert_hr(IDerived_Fixed(p, a, b, w, g, &pg, &IID_ICallback), S_OK);
    assert_int_equal(b[0], 10);
    assert_int_equal(b[3], 40);
    assert_true(w[0].h == 6 && w[1].d == 2.5);
    g.Data1++;
    assert_true(IsEqualIID(&pg, &g));
    /* the object's failure: [out] fixed data zeroed, [in, out] untouched */
    memset(b, 0x55, sizeof(b));
    memset(&pg, 0x55, sizeof(pg));
    assert_hr(IDerived_Fixed(p, a, b, w, g, &pg, &IID_IUnknown), E_INVALIDARG);
    assert_int_equal(b[0], 0);
    assert_int_equal(b[3], 0);
    GUID null_guid;
    memset(&null_guid, 0, sizeof(null_guid));
    assert_memory_equal(&pg, &null_guid, sizeof(pg));
    assert_true(w[0].h == 6 && w[1].d == 2.5);
}

void callsobj_check_strings(IDerived *p, callsobj_counts *counts)
{
    char *a = NULL;
    WCHAR *w = NULL;
    assert_hr(IDerived_Strings(p, "abc", callsobj_wide_hi, callsobj_wide_yo, &a, &w), S_OK);
    assert_string_equal(a, "<abc>");
    static const WCHAR expect[] = {'h', 0x00e9, 'i', 'y', 'o', 0};
    assert_memory_equal(w, expect, sizeof(expect));
    ShmCoTaskMemFree(a);
    ShmCoTaskMemFree(w);
    static const WCHAR empty[] = {0};
    assert_hr(IDerived_Strings(p, "", empty, empty, &a, &w), S_OK);
    assert_string_equal(a, "<>");
    assert_int_equal(w[0], 0);
    ShmCoTaskMemFree(a);
    ShmCoTaskMemFree(w);
    /* the object fails having allocated both: nothing comes back (its
     * strings were freed on its side) */
    a = (char *)1;
    w = (WCHAR *)1;
    assert_hr(IDerived_Strings(p, "fail", callsobj_wide_hi, callsobj_wide_yo, &a, &w), E_FAIL);
    assert_null(a);
    assert_null(w);
    /* NULL [in] strings and NULL [out] targets: E_POINTER, no call */
    int calls = counts->calls;
    a = (char *)1;
    assert_hr(IDerived_Strings(p, NULL, callsobj_wide_hi, callsobj_wide_yo, &a, &w), E_POINTER);
    assert_null(a);
    assert_null(w);
    assert_hr(IDerived_Strings(p, "x", callsobj_wide_hi, callsobj_wide_yo, NULL, &w), E_POINTER);
    assert_int_equal(counts->calls, calls);
}

void callsobj_check_sized_arrays(IDerived *p, callsobj_counts *counts)
{
    LONG in[5] = {1, -2, 3, -4, 5}, out[5];
    Item io[2] = {callsobj_item(1), callsobj_item(2)};
    ULONG m = 2;
    assert_hr(IDerived_Arrays(p, 5, in, out, &m, io), S_OK);
    assert_int_equal(out[4], 15);
    assert_int_equal(out[1], -6);
    assert_int_equal(io[0].id, 101);
    assert_int_equal(io[1].id, 102);
    assert_int_equal(io[1].pair.a, 3);
    assert_true(io[1].w.h == 0x1122334455667788LL);
    assert_int_equal(m, 2);
    /* the object's failure: out zeroed, io and m as passed */
    in[0] = CALLSOBJ_FAIL;
    assert_hr(IDerived_Arrays(p, 5, in, out, &m, io), E_FAIL);
    for (int i = 0; i < 5; i++)
        assert_int_equal(out[i], 0);
    assert_int_equal(io[0].id, 101);
    assert_int_equal(io[1].id, 102);
    assert_int_equal(m, 2);
    m = 0;
    assert_hr(IDerived_Arrays(p, 0, in, out, &m, io), S_OK);
    assert_int_equal(io[0].id, 101);
    /* 1 MiB each way */
    ULONG big = 1 << 18;
    LONG *bin = malloc(big * sizeof(LONG)), *bout = malloc(big * sizeof(LONG));
    assert_non_null(bin);
    assert_non_null(bout);
    for (ULONG i = 0; i < big; i++)
        bin[i] = (LONG)i;
    assert_hr(IDerived_Arrays(p, big, bin, bout, &m, io), S_OK);
    assert_int_equal(bout[0], 0);
    assert_int_equal(bout[big - 1], (LONG)(big - 1) * 3);
    free(bin);
    free(bout);
    int calls = counts->calls;
    assert_hr(IDerived_Arrays(p, 5, NULL, out, &m, io), E_POINTER);
    assert_hr(IDerived_Arrays(p, 5, in, out, NULL, io), E_POINTER);
    /* a signed count that is negative: refused before any call */
    BYTE data[4] = {0};
    assert_hr(IDerived_Signed(p, -1, data), E_INVALIDARG);
    assert_int_equal(counts->calls, calls);
    assert_hr(IDerived_Signed(p, 4, data), S_OK);
    assert_int_equal(counts->signed_n, 4);
}

void callsobj_check_callee_allocated(IDerived *p)
{
    ULONG n = 99;
    Item *items = (Item *)1;
    assert_hr(IDerived_Alloc(p, 7, &n, &items), S_OK);
    assert_int_equal(n, 7);
    assert_int_equal(items[0].id, 0);
    assert_int_equal(items[6].id, 42);
    ShmCoTaskMemFree(items);
    assert_hr(IDerived_Alloc(p, 0, &n, &items), S_OK);
    assert_int_equal(n, 0);
    assert_null(items);
    n = 5;
    items = (Item *)1;
    assert_hr(IDerived_Alloc(p, -1, &n, &items), E_INVALIDARG);
    assert_int_equal(n, 0);
    assert_null(items);
    BYTE *bytes = NULL;
    assert_hr(IDerived_AllocIn(p, 3, &bytes), S_OK);
    assert_int_equal(bytes[0], 1);
    assert_int_equal(bytes[2], 3);
    ShmCoTaskMemFree(bytes);
    bytes = (BYTE *)1;
    assert_true(FAILED(IDerived_AllocIn(p, -3, &bytes))); /* the callee cannot allocate */
    assert_null(bytes);
}

void callsobj_check_method_failure(IDerived *p, callsobj_counts *counts)
{
    LONG value = 5;
    char *s = (char *)1;
    ULONG n = 5;
    LONG *arr = (LONG *)1;
    ICallback *cb = (ICallback *)1;
    assert_hr(IDerived_Fail(p, E_ACCESSDENIED, &value, &s, &n, &arr, &cb), E_ACCESSDENIED);
    assert_int_equal(value, 0);
    assert_null(s);
    assert_int_equal(n, 0);
    assert_null(arr);
    assert_null(cb);
    /* the callee's [out] allocations and reference were freed by the stub
     * (the object's owner and ASan check it) */
    assert_hr(IDerived_Fail(p, S_OK, &value, &s, &n, &arr, &cb), S_OK);
    assert_int_equal(value, 99);
    assert_string_equal(s, "bad");
    assert_int_equal(n, 3);
    assert_non_null(arr);
    assert_int_equal(arr[0], 7);
    assert_int_equal(arr[2], 21);
    assert_non_null(cb);
    int cb_calls = counts->cb_calls;
    LONG twice = 0;
    assert_hr(ICallback_Called(cb, 21, &twice), S_OK); /* through a proxy */
    assert_int_equal(twice, 42);
    assert_int_equal(counts->cb_calls, cb_calls + 1);
    ICallback_Release(cb);
    ShmCoTaskMemFree(s);
    ShmCoTaskMemFree(arr);
}

/* Reads a stream from its start: its size and its first bytes. */
static ULONG stream_text(IStream *s, char *text, ULONG size)
{
    STATSTG st;
    assert_hr(IStream_Stat(s, &st, STATFLAG_NONAME), S_OK);
    assert_null(st.pwcsName);
    tsupport_stream_seek(s, 0);
    ULONG got = 0;
    memset(text, 0, size);
    assert_hr(IStream_Read(s, text, size, &got), S_OK);
    assert_true(got == st.cbSize.QuadPart || got == size);
    return (ULONG)st.cbSize.QuadPart;
}

void callsobj_check_streams(IDerived *p, callsobj_counts *counts)
{
    int calls = counts->calls;
    IStream *mine = NULL;
    assert_hr(ShmCreateStreamOnSharedMemory(NULL, 1 << 16, 0, &mine), S_OK);
    assert_hr(IStream_Write(mine, "hello", 5, NULL), S_OK);
    /* the object reads this stream and marks its end (its seek pointer
     * is this stream's: it moved), and gives a stream of its own */
    ISequentialStream *seq = NULL;
    assert_hr(IDerived_Stream(p, mine, &seq), S_OK);
    assert_non_null(seq);
    assert_int_equal(tsupport_stream_pos(mine), 6);
    char text[32];
    assert_int_equal(stream_text(mine, text, sizeof(text)), 6);
    assert_string_equal(text, "hello!");
    memset(text, 0, sizeof(text));
    ULONG got = 0;
    assert_hr(ISequentialStream_Read(seq, text, sizeof(text), &got), S_OK);
    assert_int_equal(got, 7);
    assert_string_equal(text, "<hello>");

    /* every IStream method of the object's stream */
    IStream *stm = NULL;
    assert_hr(ISequentialStream_QueryInterface(seq, &IID_IStream, (void **)&stm), S_OK);
    LARGE_INTEGER move;
    ULARGE_INTEGER pos;
    move.QuadPart = 1;
    pos.QuadPart = 99;
    assert_hr(IStream_Seek(stm, move, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos.QuadPart, 1);
    memset(text, 0, sizeof(text));
    assert_hr(IStream_Read(stm, text, 5, NULL), S_OK); /* a NULL count */
    assert_string_equal(text, "hello");
    ULONG done = 0;
    assert_hr(IStream_Write(stm, "HEL", 3, &done), S_OK);
    assert_int_equal(done, 3);
    STATSTG st;
    assert_hr(IStream_Stat(stm, &st, STATFLAG_DEFAULT), S_OK);
    assert_int_equal(st.type, STGTY_STREAM);
    assert_int_equal(st.cbSize.QuadPart, 9);
    /* its name (ShmCreateStreamOnSharedMemory's for NULL), for the caller to free */
    assert_non_null(st.pwcsName);
    static const OLECHAR anon[] = {'a', 'n', 'o', 'n', '-'};
    assert_memory_equal(st.pwcsName, anon, sizeof(anon));
    ShmCoTaskMemFree(st.pwcsName);
    assert_hr(IStream_Stat(stm, &st, STATFLAG_NONAME), S_OK);
    assert_null(st.pwcsName);
    memset(&st, 0x55, sizeof(st));
    assert_hr(IStream_Stat(stm, &st, 0x100), STG_E_INVALIDFLAG);
    assert_null(st.pwcsName);
    assert_int_equal(st.cbSize.QuadPart, 0);
    assert_hr(IStream_Stat(stm, NULL, STATFLAG_NONAME), STG_E_INVALIDPOINTER);
    ULARGE_INTEGER size, cb, r, w;
    size.QuadPart = 4;
    assert_hr(IStream_SetSize(stm, size), S_OK);
    assert_hr(IStream_Stat(stm, &st, STATFLAG_NONAME), S_OK);
    assert_int_equal(st.cbSize.QuadPart, 4);
    assert_hr(IStream_Commit(stm, STGC_DEFAULT), S_OK);
    assert_hr(IStream_Revert(stm), S_OK);
    size.QuadPart = 0;
    cb.QuadPart = 1;
    assert_hr(IStream_LockRegion(stm, size, cb, LOCK_WRITE), STG_E_INVALIDFUNCTION);
    assert_hr(IStream_UnlockRegion(stm, size, cb, LOCK_WRITE), S_OK);
    move.QuadPart = 7;
    assert_hr(IStream_Seek(stm, move, 7, NULL), STG_E_SEEKERROR); /* no such origin */
    move.QuadPart = 0;
    assert_hr(IStream_Seek(stm, move, STREAM_SEEK_SET, NULL), S_OK);
    /* a clone: its own seek pointer over the same bytes */
    IStream *clone = NULL;
    assert_hr(IStream_Clone(stm, &clone), S_OK);
    memset(text, 0, sizeof(text));
    assert_hr(IStream_Read(clone, text, sizeof(text), &got), S_OK);
    assert_int_equal(got, 4);
    assert_string_equal(text, "<hel");
    assert_int_equal(tsupport_stream_pos(stm), 0);
    IStream_Release(clone);
    assert_hr(IStream_Clone(stm, NULL), STG_E_INVALIDPOINTER);
    /* CopyTo into this stream (the object's stream calls back here) */
    cb.QuadPart = 4;
    r.QuadPart = w.QuadPart = 99;
    assert_hr(IStream_CopyTo(stm, mine, cb, &r, &w), S_OK);
    assert_int_equal(r.QuadPart, 4);
    assert_int_equal(w.QuadPart, 4);
    assert_hr(IStream_CopyTo(stm, mine, cb, NULL, NULL), S_OK); /* (at the end: nothing) */
    assert_hr(IStream_CopyTo(stm, NULL, cb, &r, &w), STG_E_INVALIDPOINTER);
    assert_int_equal(stream_text(mine, text, sizeof(text)), 10);
    assert_string_equal(text, "hello!<hel");
    /* NULL buffers: with bytes to move, refused; without, fine */
    got = done = 99;
    assert_hr(IStream_Read(stm, NULL, 5, &got), STG_E_INVALIDPOINTER);
    assert_int_equal(got, 0);
    assert_hr(IStream_Write(stm, NULL, 5, &done), STG_E_INVALIDPOINTER);
    assert_int_equal(done, 0);
    assert_hr(IStream_Read(stm, NULL, 0, &got), S_OK);
    assert_hr(ISequentialStream_Write(seq, NULL, 0, NULL), S_OK);

    IStream_Release(stm);
    ISequentialStream_Release(seq);
    IStream_Release(mine);
    assert_int_equal(counts->calls, calls + 1);
}
