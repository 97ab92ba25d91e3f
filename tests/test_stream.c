/*
 * test_stream.c - IStream semantics, run over every kind of stream shmcom
 * makes (the heap stream; the shared-memory stream, created and opened),
 * and in the Windows build also over CreateStreamOnHGlobal's own stream:
 * the reference the others must match. A case that holds for the
 * reference is checked on the reference too, so the expectations here are
 * Windows COM's (as Wine implements them), not ours.
 *
 * The facts come from Microsoft's IStream documentation and Wine's
 * conformance tests for the HGLOBAL stream
 * (dlls/ole32/tests/hglobalstream.c). Deliberate differences, checked
 * only on shmcom's streams ("ours"):
 *  - positions and sizes are 64-bit (the HGLOBAL stream ignores the high
 *    32 bits of a move or a size);
 *  - bytes that growth exposes read as zeros (HGLOBAL: unspecified);
 *  - NULL buffers and bad flags give an error (HGLOBAL: crash or ignore);
 *  - a capacity: past it, STG_E_MEDIUMFULL and nothing written.
 */
#define COBJMACROS
#include "shstream.h"

#include "alloc.h"
#include "tsupport.h"

#include <stdlib.h>
#include <string.h>

/* ---- the streams under test --------------------------------------------- */

/* One stream made by a factory, and what it needs cleaned up. */
typedef struct inst {
    IStream *s;
    IStream *keep; /* the creator, held while a test uses an opener */
    char name[SHM_MAX_NAME + 1];
} inst;

typedef struct factory factory;
struct factory {
    const char *name;
    HRESULT (*make)(const factory *f, inst *out);
    bool reference;    /* COM's own stream: the expectations' source */
    uint64_t capacity; /* 0: grows until memory runs out */
    bool named;        /* Stat reports a name */
};

static HRESULT make_heap(const factory *f, inst *out)
{
    (void)f;
    return shmc_stream_create_heap(0, &out->s);
}

static HRESULT make_heap_reserved(const factory *f, inst *out)
{
    (void)f;
    return shmc_stream_create_heap(100, &out->s);
}

static HRESULT make_shared(const factory *f, inst *out)
{
    tsupport_name(out->name, sizeof(out->name), "stream");
    return ShmCreateStreamOnSharedMemory(out->name, f->capacity, 0, &out->s);
}

/* A stream created by one object and used through another that opened it. */
static HRESULT make_shared_opened(const factory *f, inst *out)
{
    tsupport_name(out->name, sizeof(out->name), "opened");
    HRESULT hr = ShmCreateStreamOnSharedMemory(out->name, f->capacity, 0, &out->keep);
    if (SUCCEEDED(hr))
        hr = ShmOpenStreamOnSharedMemory(out->name, 0, &out->s);
    return hr;
}

/* An unguessable name: Stat tells it. */
static HRESULT make_shared_anon(const factory *f, inst *out)
{
    STATSTG st;
    HRESULT hr = ShmCreateStreamOnSharedMemory(NULL, f->capacity, 0, &out->s);
    if (FAILED(hr))
        return hr;
    hr = IStream_Stat(out->s, &st, STATFLAG_DEFAULT);
    if (FAILED(hr) || !st.pwcsName)
        return FAILED(hr) ? hr : E_UNEXPECTED;
    size_t i = 0;
    for (; st.pwcsName[i] && i < SHM_MAX_NAME; i++)
        out->name[i] = (char)st.pwcsName[i];
    out->name[i] = '\0';
    ShmCoTaskMemFree(st.pwcsName);
    return S_OK;
}

#ifdef _WIN32
static HRESULT make_hglobal(const factory *f, inst *out)
{
    (void)f;
    return CreateStreamOnHGlobal(NULL, TRUE, &out->s);
}
#endif

#define BIG_CAPACITY (2u << 20)
static const factory factories[] = {
    {"heap", make_heap, false, 0, false},
    {"heap-reserved", make_heap_reserved, false, 0, false},
    {"shared", make_shared, false, BIG_CAPACITY, true},
    {"shared-opened", make_shared_opened, false, BIG_CAPACITY, true},
    {"shared-anon", make_shared_anon, false, BIG_CAPACITY, true},
    {"shared-small", make_shared, false, 1000, true}, /* not a page multiple */
#ifdef _WIN32
    {"hglobal", make_hglobal, true, 0, false},
#endif
};
#define N_FACTORIES (sizeof(factories) / sizeof(factories[0]))

/* Releases an instance: the stream must go with this Release, and a
 * shared stream's name with its creator. */
static void inst_done(inst *in)
{
    if (in->s)
        assert_int_equal(IStream_Release(in->s), 0);
    if (in->keep)
        assert_int_equal(IStream_Release(in->keep), 0);
    if (in->name[0]) {
        IStream *o = (IStream *)1;
        assert_hr(ShmOpenStreamOnSharedMemory(in->name, 0, &o), SHM_E_NAME_NOT_FOUND);
        assert_null(o);
    }
    memset(in, 0, sizeof(*in));
}

typedef struct ctx {
    const factory *f;
    inst in;
    IStream *s; /* in.s */
} ctx;

static int setup(void **state)
{
    const factory *f = *state;
    ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return -1;
    c->f = f;
    HRESULT hr = f->make(f, &c->in);
    if (FAILED(hr)) {
        print_error("%s: make failed 0x%08x\n", f->name, (unsigned)hr);
        free(c);
        return -1;
    }
    c->s = c->in.s;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    c->in.s = c->s; /* a case may have swapped it (clone outliving the original) */
    inst_done(&c->in);
    free(c);
    return 0;
}

#define CTX(state) ((ctx *)*(state))
#define OURS(c)    (!(c)->f->reference)

/* ---- helpers ------------------------------------------------------------ */

static void set_size(IStream *s, uint64_t n)
{
    ULARGE_INTEGER u;
    u.QuadPart = n;
    assert_hr(IStream_SetSize(s, u), S_OK);
}

static void write_all(IStream *s, const void *p, ULONG n)
{
    ULONG done = 0xdead;
    assert_hr(IStream_Write(s, p, n, &done), S_OK);
    assert_int_equal(done, n);
}

/* Seek with every out value poisoned first, returning hr and *pos. */
static HRESULT seek(IStream *s, int64_t move, DWORD origin, uint64_t *pos)
{
    LARGE_INTEGER li;
    ULARGE_INTEGER out;
    li.QuadPart = move;
    out.QuadPart = 0xCAFECAFECAFECAFEull;
    HRESULT hr = IStream_Seek(s, li, origin, &out);
    *pos = out.QuadPart;
    return hr;
}

static const char data[] = "Test String";

/* ---- cases -------------------------------------------------------------- */

static void empty_stream(void **state)
{
    IStream *s = CTX(state)->s;
    char buf[8] = "xxxxxxx";
    ULONG got = 77;
    assert_int_equal(tsupport_stream_size(s), 0);
    assert_int_equal(tsupport_stream_pos(s), 0);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 0);
    assert_int_equal(buf[0], 'x');
}

/* Wine: SetSize, Write, Seek 0, Read more than there is: S_OK, not S_FALSE. */
static void write_then_read_back(void **state)
{
    IStream *s = CTX(state)->s;
    char buf[128];
    ULONG got = 0;
    set_size(s, sizeof(data));
    write_all(s, data, sizeof(data));
    assert_int_equal(tsupport_stream_pos(s), sizeof(data));
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));
    assert_int_equal(tsupport_stream_size(s), sizeof(data));
    /* NULL counts are allowed */
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Write(s, "X", 1, NULL), S_OK);
    tsupport_stream_seek(s, 0);
    memset(buf, 0, sizeof(buf));
    assert_hr(IStream_Read(s, buf, 4, NULL), S_OK);
    assert_memory_equal(buf, "Xest", 4);
    assert_int_equal(tsupport_stream_pos(s), 4);
}

static void read_past_end(void **state)
{
    IStream *s = CTX(state)->s;
    char buf[16];
    ULONG got = 0;
    write_all(s, "0123456789", 10);
    tsupport_stream_seek(s, 7);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK); /* fewer bytes */
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "789", 3);
    assert_int_equal(tsupport_stream_pos(s), 10);
    got = 99;
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK); /* at the end */
    assert_int_equal(got, 0);
    assert_int_equal(tsupport_stream_pos(s), 10);
    if (OURS(CTX(state))) { /* the HGLOBAL stream reads garbage there (Wine) */
        tsupport_stream_seek(s, 1000);
        got = 99;
        assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK); /* past it */
        assert_int_equal(got, 0);
        assert_int_equal(tsupport_stream_pos(s), 1000);
    }
    assert_int_equal(tsupport_stream_size(s), 10);
}

/* Writing past the end grows the stream; a zero-byte write does not. */
static void write_past_end(void **state)
{
    IStream *s = CTX(state)->s;
    unsigned char buf[32];
    ULONG n = 5;
    tsupport_stream_seek(s, 20);
    assert_hr(IStream_Write(s, data, 0, &n), S_OK);
    assert_int_equal(n, 0);
    assert_int_equal(tsupport_stream_size(s), 0); /* no fill bytes for an empty write */
    write_all(s, "ab", 2);
    assert_int_equal(tsupport_stream_size(s), 22);
    assert_int_equal(tsupport_stream_pos(s), 22);
    tsupport_stream_seek(s, 0);
    memset(buf, 0x5a, sizeof(buf));
    assert_hr(IStream_Read(s, buf, sizeof(buf), &n), S_OK);
    assert_int_equal(n, 22);
    assert_memory_equal(buf + 20, "ab", 2);
    if (OURS(CTX(state))) {
        for (int i = 0; i < 20; i++)
            assert_int_equal(buf[i], 0); /* the gap reads as zeros */
    }
}

static void seek_each_origin(void **state)
{
    IStream *s = CTX(state)->s;
    uint64_t pos;
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    write_all(s, data, sizeof(data));
    /* NULL position pointer */
    assert_hr(IStream_Seek(s, zero, STREAM_SEEK_CUR, NULL), S_OK);
    assert_hr(seek(s, 0, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos, sizeof(data));
    assert_hr(seek(s, 0, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos, 0);
    assert_hr(seek(s, 0, STREAM_SEEK_END, &pos), S_OK);
    assert_int_equal(pos, sizeof(data));
    assert_hr(seek(s, -2, STREAM_SEEK_END, &pos), S_OK);
    assert_int_equal(pos, sizeof(data) - 2);
    assert_hr(seek(s, 3, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos, 3);
    assert_hr(seek(s, 4, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos, 7);
    assert_hr(seek(s, -7, STREAM_SEEK_CUR, &pos), S_OK); /* exactly to the start */
    assert_int_equal(pos, 0);
    /* past the end is fine, as on Windows */
    assert_hr(seek(s, 100, STREAM_SEEK_END, &pos), S_OK);
    assert_int_equal(pos, sizeof(data) + 100);
    assert_hr(seek(s, 0x7FFFFFFF, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos, 0x7FFFFFFF);
    assert_hr(seek(s, 9, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos, 0x80000008u);
    assert_int_equal(tsupport_stream_size(s), sizeof(data)); /* seeking changes no size */
}

/* Before the start, or an unknown origin: STG_E_SEEKERROR, the pointer
 * stays where it was, and the out parameter still reports it (Wine). */
static void seek_errors_keep_the_pointer(void **state)
{
    IStream *s = CTX(state)->s;
    uint64_t pos;
    write_all(s, data, sizeof(data));
    const int64_t here = sizeof(data);
    assert_hr(seek(s, 123, STREAM_SEEK_END + 1, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, here);
    assert_hr(seek(s, 0, 0xFFFFFFFFu, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, here);
    assert_hr(seek(s, -here - 1, STREAM_SEEK_CUR, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, here);
    assert_hr(seek(s, -1, STREAM_SEEK_SET, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, here);
    assert_hr(seek(s, -here - 1, STREAM_SEEK_END, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, here);
    assert_int_equal(tsupport_stream_pos(s), here);
    LARGE_INTEGER li;
    li.QuadPart = -1000;
    assert_hr(IStream_Seek(s, li, STREAM_SEEK_CUR, NULL), STG_E_SEEKERROR);
    assert_int_equal(tsupport_stream_pos(s), here);
}

/* Ours: 64-bit positions, and no wrap-around (Windows 8 and later refuse
 * an overflowing seek too; older versions wrapped at 32 bits). */
static void seek_is_64_bit(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    uint64_t pos;
    char buf[4];
    ULONG got = 9;
    assert_hr(seek(s, 0x100000000ll, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos, 0x100000000ull);
    assert_hr(seek(s, 5, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos, 0x100000005ull);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 0);
    assert_hr(seek(s, INT64_MAX, STREAM_SEEK_SET, &pos), S_OK);
    assert_int_equal(pos, (uint64_t)INT64_MAX);
    assert_hr(seek(s, 1, STREAM_SEEK_CUR, &pos), STG_E_SEEKERROR); /* would overflow */
    assert_int_equal(pos, (uint64_t)INT64_MAX);
    assert_hr(seek(s, INT64_MIN, STREAM_SEEK_CUR, &pos), STG_E_SEEKERROR);
    assert_hr(seek(s, -INT64_MAX, STREAM_SEEK_CUR, &pos), S_OK);
    assert_int_equal(pos, 0);
    assert_hr(seek(s, INT64_MIN, STREAM_SEEK_END, &pos), STG_E_SEEKERROR);
    assert_int_equal(pos, 0);
    assert_hr(seek(s, INT64_MAX, STREAM_SEEK_END, &pos), S_OK); /* size 0 */
    assert_int_equal(pos, (uint64_t)INT64_MAX);
    /* a write that far cannot fit anywhere */
    ULONG n = 7;
    HRESULT hr = IStream_Write(s, "x", 1, &n);
    assert_true(hr == STG_E_MEDIUMFULL || hr == E_OUTOFMEMORY);
    assert_int_equal(n, 0);
    assert_int_equal(tsupport_stream_size(s), 0);
}

static void set_size_grows_and_shrinks(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    unsigned char buf[128];
    ULONG got;
    write_all(s, "hello", 5);
    set_size(s, 100);
    assert_int_equal(tsupport_stream_size(s), 100);
    assert_int_equal(tsupport_stream_pos(s), 5); /* SetSize moves no pointer */
    tsupport_stream_seek(s, 0);
    memset(buf, 0x5a, sizeof(buf));
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 100);
    assert_memory_equal(buf, "hello", 5);
    if (OURS(c)) {
        for (int i = 5; i < 100; i++)
            assert_int_equal(buf[i], 0); /* grown zero-filled */
    }
    set_size(s, 3);
    assert_int_equal(tsupport_stream_size(s), 3);
    assert_int_equal(tsupport_stream_pos(s), 100); /* past the end now: fine */
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "hel", 3);
    /* grow again: what the shrink cut off does not come back */
    set_size(s, 8);
    tsupport_stream_seek(s, 0);
    memset(buf, 0x5a, sizeof(buf));
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 8);
    if (OURS(c)) {
        for (int i = 3; i < 8; i++)
            assert_int_equal(buf[i], 0);
    }
    set_size(s, 8); /* same size */
    set_size(s, 0);
    assert_int_equal(tsupport_stream_size(s), 0);
}

static void stat_reports_stream_and_size(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    STATSTG st;
    write_all(s, data, sizeof(data));
    memset(&st, 0x55, sizeof(st));
    assert_hr(IStream_Stat(s, &st, STATFLAG_DEFAULT), S_OK);
    assert_int_equal(st.type, STGTY_STREAM);
    assert_int_equal(st.cbSize.QuadPart, sizeof(data));
    assert_true(IsEqualGUID(&st.clsid, &GUID_NULL));
    assert_int_equal(st.grfStateBits, 0);
    if (c->f->named) {
        /* the name, only when asked */
        assert_non_null(st.pwcsName);
        size_t i = 0;
        for (; c->in.name[i]; i++)
            assert_int_equal(st.pwcsName[i], (OLECHAR)c->in.name[i]);
        assert_int_equal(st.pwcsName[i], 0);
        ShmCoTaskMemFree(st.pwcsName);
    } else {
        assert_null(st.pwcsName);
    }
    memset(&st, 0x55, sizeof(st));
    assert_hr(IStream_Stat(s, &st, STATFLAG_NONAME), S_OK);
    assert_null(st.pwcsName);
    assert_int_equal(st.type, STGTY_STREAM);
    assert_int_equal(st.cbSize.QuadPart, sizeof(data));
    if (OURS(c)) {
        assert_hr(IStream_Stat(s, NULL, STATFLAG_DEFAULT), STG_E_INVALIDPOINTER);
        memset(&st, 0x55, sizeof(st));
        assert_hr(IStream_Stat(s, &st, 0x100), STG_E_INVALIDFLAG);
        assert_null(st.pwcsName); /* nothing to free on failure */
        assert_hr(IStream_Stat(s, &st, STATFLAG_NOOPEN), S_OK);
        if (st.pwcsName)
            ShmCoTaskMemFree(st.pwcsName);
    }
}

/* Wine's test_copyto and test_IStream_Clone: a clone starts at the
 * original's position, moves on its own, sees the same bytes and size,
 * and outlives the original. */
static void clone_has_its_own_pointer(void **state)
{
    IStream *s = CTX(state)->s, *c2 = NULL, *c3 = NULL;
    char buf[32];
    ULONG got;
    assert_hr(IStream_Clone(s, &c2), S_OK); /* at 0, before any write */
    write_all(s, "Hello World!", 13);
    assert_int_equal(tsupport_stream_pos(s), 13);
    assert_int_equal(tsupport_stream_pos(c2), 0);
    assert_int_equal(tsupport_stream_size(c2), 13);
    assert_hr(IStream_Read(c2, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 13);
    assert_string_equal(buf, "Hello World!");
    tsupport_stream_seek(s, 6);
    assert_hr(IStream_Clone(s, &c3), S_OK);
    assert_int_equal(tsupport_stream_pos(c3), 6); /* where the original was */
    assert_hr(IStream_Read(c3, buf, 5, &got), S_OK);
    assert_memory_equal(buf, "World", 5);
    assert_int_equal(tsupport_stream_pos(s), 6);
    set_size(s, 0x8000);
    assert_int_equal(tsupport_stream_size(c2), 0x8000);
    assert_int_equal(tsupport_stream_size(c3), 0x8000);
    assert_int_equal(tsupport_stream_pos(c2), 13);
    /* writes through a clone show through the original */
    tsupport_stream_seek(c3, 0);
    write_all(c3, "J", 1);
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, buf, 5, &got), S_OK);
    assert_memory_equal(buf, "Jello", 5);
    assert_int_equal(IStream_Release(c3), 0);
    /* the clone outlives the original */
    assert_int_equal(IStream_Release(s), 0);
    CTX(state)->s = NULL;
    set_size(c2, 0x10);
    tsupport_stream_seek(c2, 0);
    assert_hr(IStream_Read(c2, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 0x10);
    assert_memory_equal(buf, "Jello", 5);
    CTX(state)->s = c2;
}

/* A destination stream that records its calls: Write reports `report`
 * bytes written (Wine's test stream reports 5) and returns `hr`. */
typedef struct rec_stream {
    IStream IStream_iface;
    int writes;
    unsigned long bytes;
    ULONG report;
    HRESULT hr;
    int fail_after; /* writes that succeed before hr is returned; -1: never */
    unsigned char last[16];
} rec_stream;

static rec_stream *rec_of(IStream *i)
{
    return (rec_stream *)(void *)i;
}

static HRESULT STDMETHODCALLTYPE rec_QueryInterface(IStream *i, REFIID riid, void **ppv)
{
    (void)i;
    (void)riid;
    *ppv = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE rec_AddRef(IStream *i)
{
    (void)i;
    return 2;
}
static ULONG STDMETHODCALLTYPE rec_Release(IStream *i)
{
    (void)i;
    return 1;
}
static HRESULT STDMETHODCALLTYPE rec_Read(IStream *i, void *pv, ULONG cb, ULONG *pcb)
{
    (void)i;
    (void)pv;
    (void)cb;
    (void)pcb;
    fail_msg("CopyTo must not read its destination");
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Write(IStream *i, const void *pv, ULONG cb, ULONG *pcb)
{
    rec_stream *r = rec_of(i);
    if (r->fail_after >= 0 && r->writes >= r->fail_after) {
        r->writes++;
        if (pcb)
            *pcb = 0;
        return r->hr;
    }
    r->writes++;
    r->bytes += cb;
    memcpy(r->last, pv, cb < sizeof(r->last) ? cb : sizeof(r->last));
    if (pcb)
        *pcb = r->report ? r->report : cb;
    return S_OK;
}
static HRESULT STDMETHODCALLTYPE rec_Seek(IStream *i, LARGE_INTEGER m, DWORD o, ULARGE_INTEGER *p)
{
    (void)i;
    (void)m;
    (void)o;
    (void)p;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_SetSize(IStream *i, ULARGE_INTEGER n)
{
    (void)i;
    (void)n;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_CopyTo(IStream *i, IStream *d, ULARGE_INTEGER cb,
                                            ULARGE_INTEGER *r, ULARGE_INTEGER *w)
{
    (void)i;
    (void)d;
    (void)cb;
    (void)r;
    (void)w;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Commit(IStream *i, DWORD f)
{
    (void)i;
    (void)f;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Revert(IStream *i)
{
    (void)i;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Lock(IStream *i, ULARGE_INTEGER o, ULARGE_INTEGER cb, DWORD t)
{
    (void)i;
    (void)o;
    (void)cb;
    (void)t;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Stat(IStream *i, STATSTG *st, DWORD f)
{
    (void)i;
    (void)st;
    (void)f;
    return E_NOTIMPL;
}
static HRESULT STDMETHODCALLTYPE rec_Clone(IStream *i, IStream **pp)
{
    (void)i;
    *pp = NULL;
    return E_NOTIMPL;
}
static const IStreamVtbl rec_vtbl = {
    rec_QueryInterface, rec_AddRef, rec_Release, rec_Read, rec_Write, rec_Seek, rec_SetSize,
    rec_CopyTo,         rec_Commit, rec_Revert,  rec_Lock, rec_Lock,  rec_Stat, rec_Clone,
};

static void rec_init(rec_stream *r)
{
    memset(r, 0, sizeof(*r));
    r->IStream_iface.lpVtbl = &rec_vtbl;
    r->fail_after = -1;
}

/* Wine's test_copyto: the destination's reported count is what CopyTo
 * reports as written; the read count is what it read. */
static void copy_to_reports_counts(void **state)
{
    IStream *s = CTX(state)->s;
    static const char hello[] = "Hello";
    ULARGE_INTEGER cb, nread, nwritten;
    rec_stream dest;
    rec_init(&dest);
    dest.report = 5;
    write_all(s, hello, sizeof(hello));
    tsupport_stream_seek(s, 0);
    cb.QuadPart = sizeof(hello);
    assert_hr(IStream_CopyTo(s, &dest.IStream_iface, cb, &nread, &nwritten), S_OK);
    assert_int_equal(nread.QuadPart, sizeof(hello));
    assert_int_equal(nwritten.QuadPart, 5);
    assert_int_equal(dest.writes, 1);
    assert_memory_equal(dest.last, hello, sizeof(hello));
    assert_int_equal(tsupport_stream_pos(s), sizeof(hello)); /* the source advanced */
    /* at the end: nothing to copy */
    assert_hr(IStream_CopyTo(s, &dest.IStream_iface, cb, &nread, &nwritten), S_OK);
    assert_int_equal(nread.QuadPart, 0);
    assert_int_equal(nwritten.QuadPart, 0);
    /* NULL counts are allowed */
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_CopyTo(s, &dest.IStream_iface, cb, NULL, NULL), S_OK);
    assert_hr(IStream_CopyTo(s, NULL, cb, &nread, &nwritten), STG_E_INVALIDPOINTER);
}

/* Between two streams of the same kind: both pointers advance, a count
 * past the end copies what there is; large copies cross chunk edges. */
static void copy_to_another_stream(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s, *d = NULL;
    ULARGE_INTEGER cb, nread, nwritten;
    enum { N = 70000 };
    unsigned char *src = malloc(N), *back = malloc(N);
    assert_non_null(src);
    assert_non_null(back);
    for (int i = 0; i < N; i++)
        src[i] = (unsigned char)(i * 31 + 7);
    write_all(s, src, N);
    inst other;
    memset(&other, 0, sizeof(other));
    assert_hr(c->f->make(c->f, &other), S_OK);
    d = other.s;
    write_all(d, "head", 4);
    tsupport_stream_seek(s, 10);
    cb.QuadPart = 50000;
    assert_hr(IStream_CopyTo(s, d, cb, &nread, &nwritten), S_OK);
    assert_int_equal(nread.QuadPart, 50000);
    assert_int_equal(nwritten.QuadPart, 50000);
    assert_int_equal(tsupport_stream_pos(s), 50010);
    assert_int_equal(tsupport_stream_pos(d), 50004);
    cb.QuadPart = UINT64_MAX; /* the rest */
    assert_hr(IStream_CopyTo(s, d, cb, &nread, &nwritten), S_OK);
    assert_int_equal(nread.QuadPart, N - 50010);
    assert_int_equal(nwritten.QuadPart, N - 50010);
    assert_int_equal(tsupport_stream_size(d), 4 + N - 10);
    tsupport_stream_seek(d, 4);
    ULONG got = 0;
    assert_hr(IStream_Read(d, back, N, &got), S_OK);
    assert_int_equal(got, N - 10);
    assert_memory_equal(back, src + 10, N - 10);
    inst_done(&other);
    free(src);
    free(back);
}

/* Onto itself (overlapping ranges): well defined, chunk by chunk. */
static void copy_to_itself(void **state)
{
    IStream *s = CTX(state)->s, *c2 = NULL;
    ULARGE_INTEGER cb, nread, nwritten;
    write_all(s, "abcdef", 6);
    assert_hr(IStream_Clone(s, &c2), S_OK);
    tsupport_stream_seek(c2, 0);
    tsupport_stream_seek(s, 2);
    cb.QuadPart = 6;
    assert_hr(IStream_CopyTo(c2, s, cb, &nread, &nwritten), S_OK);
    assert_int_equal(nread.QuadPart, 6);
    assert_int_equal(nwritten.QuadPart, 6);
    char buf[16] = {0};
    ULONG got;
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, buf, sizeof(buf), &got), S_OK);
    assert_int_equal(got, 8);
    assert_memory_equal(buf, "ababcdef", 8);
    assert_int_equal(IStream_Release(c2), 0);
}

/* The destination fails: its error comes back, with the counts so far. */
static void copy_to_failing_destination(void **state)
{
    IStream *s = CTX(state)->s;
    ULARGE_INTEGER cb, nread, nwritten;
    rec_stream dest;
    enum { N = 100000 };
    unsigned char *buf = calloc(1, N);
    assert_non_null(buf);
    write_all(s, buf, N);
    tsupport_stream_seek(s, 0);
    rec_init(&dest);
    dest.fail_after = 1;
    dest.hr = STG_E_MEDIUMFULL;
    cb.QuadPart = N;
    assert_hr(IStream_CopyTo(s, &dest.IStream_iface, cb, &nread, &nwritten), STG_E_MEDIUMFULL);
    assert_int_equal(dest.writes, 2);
    assert_true(nwritten.QuadPart > 0);
    assert_true(nread.QuadPart > nwritten.QuadPart); /* the failed chunk was read */
    assert_true(nread.QuadPart < N);
    assert_int_equal(tsupport_stream_pos(s), nread.QuadPart);
    free(buf);
}

static void commit_revert_lock(void **state)
{
    IStream *s = CTX(state)->s;
    ULARGE_INTEGER off, len;
    off.QuadPart = 0;
    len.QuadPart = 10;
    assert_hr(IStream_Commit(s, STGC_DEFAULT), S_OK);
    assert_hr(IStream_Commit(s, STGC_OVERWRITE), S_OK);
    assert_hr(IStream_Revert(s), S_OK);
    assert_hr(IStream_LockRegion(s, off, len, LOCK_WRITE), STG_E_INVALIDFUNCTION);
    assert_hr(IStream_LockRegion(s, off, len, LOCK_EXCLUSIVE), STG_E_INVALIDFUNCTION);
    assert_hr(IStream_UnlockRegion(s, off, len, LOCK_WRITE), S_OK);
}

static void query_interface_and_refs(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    void *p = (void *)1;
    static const IID other = {0x12345678, 0x1234, 0x5678, {1, 2, 3, 4, 5, 6, 7, 8}};
    assert_hr(IStream_QueryInterface(s, &IID_IUnknown, &p), S_OK);
    assert_ptr_equal(p, s);
    assert_hr(IStream_QueryInterface(s, &IID_ISequentialStream, &p), S_OK);
    assert_ptr_equal(p, s);
    assert_hr(IStream_QueryInterface(s, &IID_IStream, &p), S_OK);
    assert_ptr_equal(p, s);
    p = (void *)1;
    assert_hr(IStream_QueryInterface(s, &other, &p), E_NOINTERFACE);
    assert_null(p);
    assert_int_equal(IStream_AddRef(s), 5); /* 1 + three QIs + this one */
    for (ULONG want = 4; want >= 1; want--)
        assert_int_equal(IStream_Release(s), want);
    if (OURS(c))
        assert_hr(IStream_QueryInterface(s, &IID_IStream, NULL), E_POINTER);
}

/* Ours: NULL buffers are refused (the docs' STG_E_INVALIDPOINTER), except
 * for zero bytes, which the HGLOBAL stream accepts too. */
static void null_buffers(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    ULONG n = 7;
    write_all(s, "abc", 3);
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, NULL, 2, &n), STG_E_INVALIDPOINTER);
    assert_int_equal(n, 0);
    assert_int_equal(tsupport_stream_pos(s), 0);
    n = 7;
    assert_hr(IStream_Write(s, NULL, 2, &n), STG_E_INVALIDPOINTER);
    assert_int_equal(n, 0);
    assert_hr(IStream_Read(s, NULL, 0, &n), S_OK);
    assert_hr(IStream_Write(s, NULL, 0, &n), S_OK);
    assert_int_equal(tsupport_stream_size(s), 3);
    assert_hr(IStream_Clone(s, NULL), STG_E_INVALIDPOINTER);
}

/* A stream with a capacity: past it STG_E_MEDIUMFULL, and nothing is
 * written (not even the part that would fit). */
static void capacity_is_a_hard_limit(void **state)
{
    ctx *c = CTX(state);
    IStream *s = c->s;
    uint64_t cap = c->f->capacity;
    ULARGE_INTEGER u;
    ULONG n = 99;
    unsigned char *buf = malloc((size_t)cap + 16);
    assert_non_null(buf);
    memset(buf, 0xa5, (size_t)cap + 16);
    u.QuadPart = cap + 1;
    assert_hr(IStream_SetSize(s, u), STG_E_MEDIUMFULL);
    u.QuadPart = UINT64_MAX;
    assert_hr(IStream_SetSize(s, u), STG_E_MEDIUMFULL);
    assert_int_equal(tsupport_stream_size(s), 0);
    tsupport_stream_seek(s, (int64_t)cap - 10);
    assert_hr(IStream_Write(s, buf, 11, &n), STG_E_MEDIUMFULL);
    assert_int_equal(n, 0);
    assert_int_equal(tsupport_stream_size(s), 0);
    assert_int_equal(tsupport_stream_pos(s), cap - 10);
    write_all(s, buf, 10); /* exactly to the capacity: fine */
    assert_int_equal(tsupport_stream_size(s), cap);
    n = 99;
    assert_hr(IStream_Write(s, buf, 1, &n), STG_E_MEDIUMFULL);
    assert_int_equal(n, 0);
    /* the bytes before the failed write's start were never touched */
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, buf, (ULONG)cap, &n), S_OK);
    assert_int_equal(n, cap);
    for (uint64_t i = 0; i < cap - 10; i++)
        assert_int_equal(buf[i], 0);
    set_size(s, cap);
    set_size(s, 1);
    tsupport_stream_seek(s, 0);
    write_all(s, buf, 1);
    free(buf);
}

static void large_round_trip(void **state)
{
    IStream *s = CTX(state)->s;
    enum { N = 1 << 20 };
    unsigned char *a = malloc(N), *b = malloc(N);
    ULONG got = 0;
    assert_non_null(a);
    assert_non_null(b);
    for (int i = 0; i < N; i++)
        a[i] = (unsigned char)(i ^ (i >> 8));
    for (int off = 0; off < N; off += 4096)
        write_all(s, a + off, 4096);
    assert_int_equal(tsupport_stream_size(s), N);
    tsupport_stream_seek(s, 0);
    assert_hr(IStream_Read(s, b, N, &got), S_OK);
    assert_int_equal(got, N);
    assert_memory_equal(a, b, N);
    free(a);
    free(b);
}

/* ---- the table: every case over every stream ---------------------------- */

/* Which streams a case applies to. A case that does not apply is not
 * registered for that stream at all (rather than counted as skipped). */
enum {
    ALL = 0,
    OURS_ONLY = 1, /* a deliberate difference from the HGLOBAL stream */
    BOUNDED = 2,   /* streams with a capacity */
    BIG = 4,       /* needs more room than the small shared stream has */
};

typedef struct named_case {
    const char *name;
    CMUnitTestFunction fn;
    unsigned applies;
} named_case;

#define CASE(f, a) \
    {              \
#f, f, a   \
    }
static const named_case cases[] = {
    CASE(empty_stream, ALL),
    CASE(write_then_read_back, ALL),
    CASE(read_past_end, ALL),
    CASE(write_past_end, ALL),
    CASE(seek_each_origin, ALL),
    CASE(seek_errors_keep_the_pointer, ALL),
    CASE(seek_is_64_bit, OURS_ONLY), /* HGLOBAL drops the high 32 bits */
    CASE(set_size_grows_and_shrinks, ALL),
    CASE(stat_reports_stream_and_size, ALL),
    CASE(clone_has_its_own_pointer, BIG),
    CASE(copy_to_reports_counts, ALL),
    CASE(copy_to_another_stream, BIG),
    CASE(copy_to_itself, ALL),
    CASE(copy_to_failing_destination, BIG),
    CASE(commit_revert_lock, ALL),
    CASE(query_interface_and_refs, ALL),
    CASE(null_buffers, OURS_ONLY), /* HGLOBAL dereferences them */
    CASE(capacity_is_a_hard_limit, OURS_ONLY | BOUNDED),
    CASE(large_round_trip, BIG),
};

static bool applies(const named_case *c, const factory *f)
{
    if ((c->applies & OURS_ONLY) && f->reference)
        return false;
    if ((c->applies & BOUNDED) && f->capacity == 0)
        return false;
    if ((c->applies & BIG) && f->capacity != 0 && f->capacity < BIG_CAPACITY)
        return false;
    return true;
}
#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* ---- heap stream only --------------------------------------------------- */

/* Sizes it cannot allocate give E_OUTOFMEMORY, as the HGLOBAL stream's do;
 * nothing changes. */
static void heap_out_of_memory(void **state)
{
    (void)state;
    IStream *s = NULL, *c = (IStream *)1;
    ULARGE_INTEGER u;
    ULONG n = 9;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    write_all(s, "abc", 3);
    u.QuadPart = 1ull << 62;
    assert_hr(IStream_SetSize(s, u), E_OUTOFMEMORY);
    assert_int_equal(tsupport_stream_size(s), 3);

    /* growth by Write fails cleanly when the allocator does */
    unsigned char big[4096] = {1};
    shmc_alloc_fail_at(1);
    assert_hr(IStream_Write(s, big, sizeof(big), &n), E_OUTOFMEMORY);
    assert_int_equal(n, 0);
    assert_hr(IStream_Clone(s, &c), E_OUTOFMEMORY);
    assert_null(c);
    u.QuadPart = 5000;
    assert_hr(IStream_SetSize(s, u), E_OUTOFMEMORY);
    shmc_alloc_fail_reset();
    assert_int_equal(tsupport_stream_size(s), 3);
    assert_int_equal(tsupport_stream_pos(s), 3);
    write_all(s, big, sizeof(big));
    assert_int_equal(tsupport_stream_size(s), 3 + sizeof(big));
    assert_int_equal(IStream_Release(s), 0);
}

/* Every allocation of create fails in turn: an error, NULL, no leak
 * (AddressSanitizer's leak check runs over the whole program). */
static void heap_create_allocation_failures(void **state)
{
    (void)state;
    IStream *s = NULL;
    for (size_t reserve = 0; reserve <= 64; reserve += 64) {
        shmc_alloc_fail_at(0);
        assert_hr(shmc_stream_create_heap(reserve, &s), S_OK);
        unsigned long count = shmc_alloc_fail_at(0);
        assert_int_equal(IStream_Release(s), 0);
        assert_true(count >= 2);
        for (unsigned long i = 1; i <= count; i++) {
            s = (IStream *)1;
            shmc_alloc_fail_at(i);
            assert_hr(shmc_stream_create_heap(reserve, &s), E_OUTOFMEMORY);
            shmc_alloc_fail_reset();
            assert_null(s);
        }
    }
    assert_hr(shmc_stream_create_heap(0, NULL), E_INVALIDARG);
    s = (IStream *)1;
    assert_hr(shmc_stream_create_heap(SIZE_MAX, &s), E_OUTOFMEMORY);
    assert_null(s);
}

/* The heap stream is one of ours; COM's is not. */
static void store_of_recognises_ours(void **state)
{
    (void)state;
    IStream *s = NULL;
    assert_hr(shmc_stream_create_heap(0, &s), S_OK);
    assert_non_null(shmc_stream_store_of(s));
    assert_null(shmc_stream_store_of(NULL));
    rec_stream r;
    rec_init(&r);
    assert_null(shmc_stream_store_of(&r.IStream_iface));
    assert_int_equal(IStream_Release(s), 0);
}

/* The stream header's atomics are lock-free at run time too (the static
 * assertions check the compiler's promise; this checks the library's). */
static void header_atomics_lock_free(void **state)
{
    (void)state;
    shmc_stream_hdr h;
    memset(&h, 0, sizeof(h));
    assert_true(atomic_is_lock_free(&h.size));
    assert_true(atomic_is_lock_free(&h.region.magic));
    assert_true(atomic_is_lock_free(&h.region.state));
}

int main(int argc, char **argv)
{
    tsupport_dispatch_child(argc, argv, NULL);
    static struct CMUnitTest tests[N_CASES * N_FACTORIES + 8];
    static char names[N_CASES * N_FACTORIES][96];
    size_t n = 0;
    for (size_t f = 0; f < N_FACTORIES; f++) {
        for (size_t i = 0; i < N_CASES; i++) {
            if (!applies(&cases[i], &factories[f]))
                continue;
            snprintf(names[n], sizeof(names[n]), "%s[%s]", cases[i].name, factories[f].name);
            tests[n].name = names[n];
            tests[n].test_func = cases[i].fn;
            tests[n].setup_func = setup;
            tests[n].teardown_func = teardown;
            tests[n].initial_state = (void *)&factories[f];
            n++;
        }
    }
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(heap_out_of_memory),
        cmocka_unit_test(heap_create_allocation_failures),
        cmocka_unit_test(store_of_recognises_ours),
        cmocka_unit_test(header_atomics_lock_free),
    };
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
        tests[n++] = extra[i];
    return _cmocka_run_group_tests("test_stream", tests, n, NULL, NULL);
}
