/*
 * fuzz_shmstream.c - libFuzzer target: the shared-memory stream's header
 * validation and its IStream operations (runtime/shmstream.c, shstream.c,
 * regionhdr.c) over memory whose header and bytes come from the input,
 * while the input also plays a peer that rewrites the header between
 * operations. The memory is a private buffer of exactly the "mapped" size
 * (shmc_stream_open_memory: the same checks as opening a region), so
 * AddressSanitizer sees any access past it; and while the streams run,
 * everything but the header and the data of the open stores is poisoned.
 *
 * Input: mapped size (2 bytes, + 64), ctl (bit 0: the owner is this
 * process; bit 1: the magic is right; bit 2: the data starts filled from
 * the input), 128 bytes of header, then operations on up to 4 streams
 * (open, clone, release, Read, Write, Seek, SetSize, CopyTo, Stat, ...,
 * and "the peer writes n bytes into the header").
 *
 * Besides crashes, leaks and sanitizer reports, these are bugs:
 *  - an operation writes outside the data of the stores over the memory
 *    ([data_offset, data_offset + capacity) of each) and the size word;
 *  - Read returns more than asked, or bytes other than the memory's at the
 *    stream's position; a Write that succeeded left other bytes there;
 *  - Stat reports a size past the capacity.
 */
#include "shstream.h"

#include <sanitizer/asan_interface.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NSTREAMS 4
#define MAX_OPS  64

typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static size_t take(fz_in *in, void *out, size_t n)
{
    if (n > in->n)
        n = in->n;
    memcpy(out, in->p, n);
    in->p += n;
    in->n -= n;
    return n;
}

static uint64_t take_u(fz_in *in, size_t bytes)
{
    unsigned char b[8] = {0};
    take(in, b, bytes);
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static unsigned char *mem, *shadow;
static size_t mapped;
static IStream *st[NSTREAMS];

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz: %s\n", what);
        abort();
    }
}

/* While the streams run, AddressSanitizer also sees a read or write
 * outside the header and the data of the open stores: the rest of the
 * memory is poisoned (the fuzzer's own checks unpoison it first). */
static void protect(void)
{
    if (mapped <= sizeof(shmc_stream_hdr))
        return;
    ASAN_POISON_MEMORY_REGION(mem + sizeof(shmc_stream_hdr), mapped - sizeof(shmc_stream_hdr));
    for (int i = 0; i < NSTREAMS; i++) {
        shmc_stream_store *s = st[i] ? shmc_stream_store_of(st[i]) : NULL;
        if (s && s->capacity)
            ASAN_UNPOISON_MEMORY_REGION(mem + s->data_offset, (size_t)s->capacity);
    }
}

static void expose(void)
{
    ASAN_UNPOISON_MEMORY_REGION(mem, mapped);
}

/* Every byte outside what the open stores may write is as it was. */
static void check_outside(void)
{
    expose();
    for (int i = 0; i < NSTREAMS; i++) {
        shmc_stream_store *s = st[i] ? shmc_stream_store_of(st[i]) : NULL;
        if (s && s->capacity)
            memcpy(shadow + s->data_offset, mem + s->data_offset, (size_t)s->capacity);
    }
    if (mapped >= offsetof(shmc_stream_hdr, size) + 8)
        memcpy(shadow + offsetof(shmc_stream_hdr, size), mem + offsetof(shmc_stream_hdr, size), 8);
    check(!memcmp(shadow, mem, mapped), "a stream wrote outside its data");
    protect();
}

static uint64_t pos_of(IStream *s)
{
    LARGE_INTEGER zero;
    ULARGE_INTEGER pos;
    zero.QuadPart = 0;
    check(IStream_Seek(s, zero, STREAM_SEEK_CUR, &pos) == S_OK, "Seek(0, CUR) failed");
    return pos.QuadPart;
}

static void release_all(void)
{
    for (int i = 0; i < NSTREAMS; i++) {
        if (st[i])
            IStream_Release(st[i]);
        st[i] = NULL;
    }
}

static void open_into(int i)
{
    if (st[i])
        IStream_Release(st[i]);
    st[i] = NULL;
    HRESULT hr = shmc_stream_open_memory(mem, mapped, &st[i]);
    check(SUCCEEDED(hr) == (st[i] != NULL), "open: result and stream disagree");
    if (SUCCEEDED(hr)) {
        shmc_stream_store *s = shmc_stream_store_of(st[i]);
        check(s->data_offset >= sizeof(shmc_stream_hdr) &&
                  s->data_offset + s->capacity <= (uint64_t)mapped,
              "open accepted a geometry outside the memory");
    }
}

static void op(fz_in *in)
{
    static unsigned char buf[65536], src[4096];
    uint8_t code = (uint8_t)take_u(in, 1);
    int i = code >> 5 & 3;
    IStream *s = st[i];
    shmc_stream_store *store = s ? shmc_stream_store_of(s) : NULL;
    HRESULT hr;
    switch (code & 15) {
    case 0: { /* Read */
        ULONG cb = (ULONG)take_u(in, 2), got = 12345;
        if (!s)
            break;
        uint64_t pos = pos_of(s);
        hr = IStream_Read(s, buf, cb, &got);
        if (hr == S_OK) {
            check(got <= cb, "Read returned more than asked");
            check(!memcmp(buf, mem + store->data_offset + pos, got),
                  "Read returned other bytes than the stream's");
            check(pos_of(s) == pos + got, "Read moved the pointer wrongly");
        } else {
            check(got == 0, "a failed Read reports bytes");
        }
        break;
    }
    case 1: { /* Write */
        ULONG cb = (ULONG)(take_u(in, 2) % (sizeof(src) + 1)), put = 12345;
        size_t n = take(in, src, cb);
        memset(src + n, 0xA5, cb - n);
        if (!s)
            break;
        uint64_t pos = pos_of(s);
        hr = IStream_Write(s, src, cb, &put);
        /* (a size word found corrupt after the copy: the bytes are there) */
        check(SUCCEEDED(hr) || hr == STG_E_INVALIDHEADER || put == 0,
              "a failed Write reports bytes");
        if (put) {
            check(put == cb, "Write wrote part");
            check(!memcmp(mem + store->data_offset + pos, src, cb), "Write left other bytes");
        }
        break;
    }
    case 2: { /* Seek */
        LARGE_INTEGER move;
        move.QuadPart = (LONGLONG)take_u(in, 8);
        DWORD origin = (DWORD)take_u(in, 1) % 4;
        ULARGE_INTEGER pos;
        if (s)
            IStream_Seek(s, move, origin, &pos);
        break;
    }
    case 3: { /* SetSize, small or any */
        ULARGE_INTEGER size;
        uint8_t kind = (uint8_t)take_u(in, 1);
        size.QuadPart = take_u(in, kind & 1 ? 8 : 2);
        if (s)
            IStream_SetSize(s, size);
        break;
    }
    case 4: { /* CopyTo another stream (or itself) */
        int j = (int)take_u(in, 1) % NSTREAMS;
        ULARGE_INTEGER cb, r, w;
        cb.QuadPart = take_u(in, 4);
        if (s && st[j]) {
            hr = IStream_CopyTo(s, st[j], cb, &r, &w);
            check(r.QuadPart <= cb.QuadPart && w.QuadPart <= r.QuadPart,
                  "CopyTo reports more than it could");
        }
        break;
    }
    case 5: { /* Clone into a free place */
        int j = (int)take_u(in, 1) % NSTREAMS;
        if (s && !st[j]) {
            hr = IStream_Clone(s, &st[j]);
            check(SUCCEEDED(hr) == (st[j] != NULL), "Clone: result and stream disagree");
        }
        break;
    }
    case 6: { /* Stat */
        DWORD flags = (DWORD)take_u(in, 1);
        STATSTG stat;
        if (!s)
            break;
        hr = IStream_Stat(s, &stat, flags);
        if (SUCCEEDED(hr)) {
            check(stat.cbSize.QuadPart <= store->capacity, "Stat: a size past the capacity");
            ShmCoTaskMemFree(stat.pwcsName);
        }
        break;
    }
    case 7:
    case 8: { /* the peer writes into the header (and the page after it) */
        size_t off = (size_t)take_u(in, code & 1 ? 2 : 1) % mapped;
        size_t n = (size_t)take_u(in, 1) % 9;
        if (n > mapped - off)
            n = mapped - off;
        expose();
        take(in, mem + off, n);
        memcpy(shadow + off, mem + off, n);
        break;
    }
    case 9:
        open_into(i);
        break;
    case 10:
        if (s)
            IStream_Release(s);
        st[i] = NULL;
        break;
    case 11: {
        ULARGE_INTEGER a, b;
        a.QuadPart = take_u(in, 2);
        b.QuadPart = take_u(in, 2);
        if (s) {
            check(IStream_Commit(s, 0) == S_OK && IStream_Revert(s) == S_OK,
                  "Commit/Revert failed");
            check(IStream_LockRegion(s, a, b, 1) == STG_E_INVALIDFUNCTION &&
                      IStream_UnlockRegion(s, a, b, 1) == S_OK,
                  "Lock/UnlockRegion");
        }
        break;
    }
    case 12: { /* QueryInterface */
        static const IID other = {0x12345678, 0x9abc, 0xdef0, {1, 2, 3, 4, 5, 6, 7, 8}};
        static const IID *const iids[4] = {&IID_IUnknown, &IID_IStream, &IID_ISequentialStream,
                                           &other};
        void *p = NULL;
        const IID *iid = iids[take_u(in, 1) & 3];
        if (!s)
            break;
        hr = IStream_QueryInterface(s, iid, &p);
        check(SUCCEEDED(hr) == (p != NULL), "QueryInterface: result and pointer disagree");
        if (p)
            IUnknown_Release((IUnknown *)p);
        break;
    }
    case 13: { /* NULL buffers */
        ULONG cb = (ULONG)take_u(in, 1), n = 1;
        if (!s)
            break;
        hr = IStream_Read(s, NULL, cb, &n);
        check(n == 0 && (!cb || hr == STG_E_INVALIDPOINTER), "Read into NULL");
        n = 1;
        hr = IStream_Write(s, NULL, cb, &n);
        check(n == 0 && (!cb || hr == STG_E_INVALIDPOINTER), "Write from NULL");
        break;
    }
    default: { /* a second object over the memory, at another place */
        int j = (int)take_u(in, 1) % NSTREAMS;
        if (j != i)
            open_into(j);
        break;
    }
    }
    check_outside();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    mapped = (size_t)take_u(&in, 2) + 64;
    uint8_t ctl = (uint8_t)take_u(&in, 1);
    mem = malloc(mapped);
    shadow = malloc(mapped);
    memset(mem, 0, mapped);
    take(&in, mem, mapped < sizeof(shmc_stream_hdr) ? mapped : sizeof(shmc_stream_hdr));
    shmc_stream_hdr *h = (shmc_stream_hdr *)mem;
    if (mapped >= sizeof(shmc_stream_hdr)) {
        if (ctl & 1) {
            shmc_plat_procid self;
            shmc_plat_proc_self(&self);
            atomic_store(&h->region.owner_pid, self.pid);
            atomic_store(&h->region.owner_start, self.start_time);
        }
        if (ctl & 2)
            atomic_store(&h->region.magic, SHMC_REGION_MAGIC);
    }
    if ((ctl & 4) && mapped > sizeof(shmc_stream_hdr)) {
        /* the rest from the input, repeated */
        size_t have = in.n < 256 ? in.n : 256;
        for (size_t k = sizeof(shmc_stream_hdr); have && k < mapped; k++)
            mem[k] = in.p[(k - sizeof(shmc_stream_hdr)) % have];
    }
    memcpy(shadow, mem, mapped);
    open_into(0);
    check_outside(); /* (and poisons what the streams must not touch) */
    for (int k = 0; k < MAX_OPS && in.n; k++)
        op(&in);
    release_all();
    expose();
    free(mem);
    free(shadow);
    return 0;
}
