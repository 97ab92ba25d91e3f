/*
 * shared-frames - image frames through shared memory, the X server's
 * shared-image (MIT-SHM) pattern.
 *
 *   shared-frames [--frames N] [--width W] [--height H] [--no-compare]
 *   shared-frames --producer NAME ...   (started by the first form)
 *
 * This process is the display: it owns an IFrameSink (frames.idl) in its
 * main thread's STA, marshals it with MSHCTX_LOCAL into a small
 * shared-memory stream, and starts the producer process with that stream's
 * name. The producer creates a second shared-memory stream for its frames
 * (two slots: double buffering) and attaches it to the sink by name. For
 * each frame it writes a pointer-free FRAME_HEADER and the pixels into the
 * next slot, then calls IFrameSink::FrameReady(slot, sequence): only that
 * small call travels; the display reads the frame where it lies in the
 * shared stream (ShmGetStreamMemory: no copy) and checks it. When the call returns the display is
 * done with the slot's frame except to show it again, so the producer writes the next frame into
 * the other slot.
 *
 * For comparison (unless --no-compare) the producer then sends the same
 * frames through the call itself, as an [in] array: frames bigger than a
 * call slot (1 MiB) go through a bulk region that the runtime makes for
 * each call.
 *
 * The display prints frames per second and GB/s for both ways, and exits
 * with 0 when every frame arrived whole (checksums) and in order.
 */
#define COBJMACROS
#define CONST_VTABLE
#include "frames.h"
#include "sample_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS       2      /* double buffering */
#define HEADER_AREA 4096u  /* the header's room at the start of a slot */
#define PATTERNS    4      /* the producer's distinct images */
#define PRODUCER_MS 120000 /* the longest the producer may run */

static double start_ms;

/* ---- the frame checksum (producer and display) ------------------------------------ */

/* A Fletcher-style sum over 64-bit words: position-sensitive, and fast
 * enough not to hide the transport's speed. n is a multiple of 8. */
typedef struct checksum {
    ULONGLONG a, b;
} checksum;

static void checksum_add(checksum *c, const unsigned char *p, size_t n)
{
    ULONGLONG a = c->a, b = c->b;
    for (size_t i = 0; i < n; i += 8) {
        ULONGLONG w;
        memcpy(&w, p + i, 8);
        a += w;
        b += a;
    }
    c->a = a;
    c->b = b;
}

static ULONGLONG checksum_end(const checksum *c)
{
    return c->a ^ (c->b * 0x9E3779B97F4A7C15ull);
}

/* ---- the display's sink --------------------------------------------------------------- */

typedef struct path_stats {
    ULONG frames, bad;
    ULONGLONG bytes;
    double first_ms, last_ms; /* start of the first frame's call, end of the last */
} path_stats;

typedef struct frame_sink {
    IFrameSink IFrameSink_iface;
    LONG refs;                  /* in the display's STA: every call runs on its thread */
    IStream *frames;            /* the producer's stream, opened by name */
    const unsigned char *bytes; /* its bytes, in place (valid while `frames` lives) */
    ULONG slots;
    ULONGLONG slot_size;
    ULONG last_sequence;
    path_stats stream, call;
    int attached, detached;
} frame_sink;

static int sink_destroyed;

static frame_sink *impl_from_IFrameSink(IFrameSink *iface)
{
    return (frame_sink *)((char *)iface - offsetof(frame_sink, IFrameSink_iface));
}

static HRESULT STDMETHODCALLTYPE sink_QueryInterface(IFrameSink *iface, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IFrameSink)) {
        *ppv = iface;
        IFrameSink_AddRef(iface);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE sink_AddRef(IFrameSink *iface)
{
    return (ULONG)++impl_from_IFrameSink(iface)->refs;
}

static ULONG STDMETHODCALLTYPE sink_Release(IFrameSink *iface)
{
    frame_sink *s = impl_from_IFrameSink(iface);
    LONG left = --s->refs;
    if (left == 0) {
        if (s->frames)
            IStream_Release(s->frames);
        free(s);
        sink_destroyed = 1;
    }
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE sink_Attach(IFrameSink *iface, const char *name, ULONG slots,
                                             ULONGLONG slot_size)
{
    frame_sink *s = impl_from_IFrameSink(iface);
    if (s->frames)
        return E_UNEXPECTED;
    if (slots < 1 || slots > 64 || slot_size <= HEADER_AREA || slot_size > (1ull << 32))
        return E_INVALIDARG;
    HRESULT hr = ShmOpenStreamOnSharedMemory(name, 0, &s->frames);
    if (FAILED(hr))
        return hr;
    /* the stream must hold every slot it announced; its bytes are read
     * in place */
    STATSTG st;
    void *bytes = NULL;
    ULONGLONG capacity = 0;
    memset(&st, 0, sizeof(st));
    hr = IStream_Stat(s->frames, &st, STATFLAG_NONAME);
    if (SUCCEEDED(hr))
        hr = ShmGetStreamMemory(s->frames, &bytes, &capacity);
    if (SUCCEEDED(hr) && (st.cbSize.QuadPart < (ULONGLONG)slots * slot_size ||
                          capacity < (ULONGLONG)slots * slot_size))
        hr = E_INVALIDARG;
    if (FAILED(hr)) {
        IStream_Release(s->frames);
        s->frames = NULL;
        return hr;
    }
    s->bytes = bytes;
    s->slots = slots;
    s->slot_size = slot_size;
    s->attached = 1;
    printf("[%6.2f s] display: attached \"%s\", %lu slots of %.1f MiB\n",
           (sample_now_ms() - start_ms) / 1000.0, name, (unsigned long)slots,
           (double)slot_size / (1 << 20));
    fflush(stdout);
    return S_OK;
}

/* Checks a header from the producer against what a slot can hold. */
static HRESULT check_header(const FRAME_HEADER *h, ULONGLONG room)
{
    if (h->magic != FRAME_MAGIC || h->format != FRAME_BGRA8 || h->width == 0 || h->height == 0 ||
        h->stride % 8 != 0 || h->stride / 4 < h->width ||
        h->pixels_size != (ULONGLONG)h->stride * h->height || h->pixels_offset > room ||
        h->pixels_size > room - h->pixels_offset)
        return RPC_E_INVALID_DATA;
    return S_OK;
}

static void stats_frame(path_stats *p, double t0, ULONGLONG bytes, int ok)
{
    if (p->frames == 0)
        p->first_ms = t0;
    p->frames++;
    p->bytes += bytes;
    p->bad += !ok;
    p->last_ms = sample_now_ms();
}

static HRESULT STDMETHODCALLTYPE sink_FrameReady(IFrameSink *iface, ULONG slot, ULONG sequence)
{
    frame_sink *s = impl_from_IFrameSink(iface);
    double t0 = sample_now_ms();
    if (!s->frames)
        return E_UNEXPECTED;
    if (slot >= s->slots)
        return E_INVALIDARG;
    ULONGLONG base = (ULONGLONG)slot * s->slot_size;

    /* The header: copied out of the shared bytes once, then checked (the
     * producer could write anything into its stream, at any time); only
     * the copy steers what follows. */
    FRAME_HEADER h;
    const unsigned char *frame = s->bytes + base;
    memcpy(&h, frame, sizeof(h));
    HRESULT hr = check_header(&h, s->slot_size);
    if (SUCCEEDED(hr) && (h.sequence != sequence || sequence != s->last_sequence + 1))
        hr = RPC_E_INVALID_DATA; /* not the frame announced, or out of order */
    if (FAILED(hr)) {
        stats_frame(&s->stream, t0, 0, 0);
        return hr;
    }
    s->last_sequence = sequence;

    /* The pixels, where they lie: bounds from the checked copy, inside the
     * slot, inside the mapping. */
    checksum c = {0, 0};
    checksum_add(&c, frame + h.pixels_offset, (size_t)h.pixels_size);
    int ok = checksum_end(&c) == h.checksum;
    stats_frame(&s->stream, t0, h.pixels_size, ok);
    return ok ? S_OK : RPC_E_INVALID_DATA;
}

static HRESULT STDMETHODCALLTYPE sink_FrameInCall(IFrameSink *iface, const FRAME_HEADER *h,
                                                  ULONG size, const BYTE *pixels)
{
    frame_sink *s = impl_from_IFrameSink(iface);
    double t0 = sample_now_ms();
    /* the pixels are read where the runtime put them (the call's slot, or
     * its bulk region) */
    HRESULT hr = check_header(h, (ULONGLONG)h->pixels_offset + size);
    int ok = SUCCEEDED(hr) && h->pixels_size == size;
    if (ok) {
        checksum c = {0, 0};
        checksum_add(&c, pixels, size);
        ok = checksum_end(&c) == h->checksum;
    }
    stats_frame(&s->call, t0, size, ok);
    return ok ? S_OK : RPC_E_INVALID_DATA;
}

static HRESULT STDMETHODCALLTYPE sink_Detach(IFrameSink *iface)
{
    frame_sink *s = impl_from_IFrameSink(iface);
    if (!s->frames)
        return E_UNEXPECTED;
    IStream_Release(s->frames);
    s->frames = NULL;
    s->detached = 1;
    return S_OK;
}

static const IFrameSinkVtbl sink_vtbl = {
    sink_QueryInterface, sink_AddRef,      sink_Release, sink_Attach,
    sink_FrameReady,     sink_FrameInCall, sink_Detach,
};

/* ---- the producer ----------------------------------------------------------------------- */

typedef struct options {
    ULONG frames, width, height;
    int compare;
} options;

static int producer_fail(const char *what, HRESULT hr)
{
    fprintf(stderr, "producer: %s failed: %s\n", what, sample_hr(hr));
    return 1;
}

/* Draws pattern k: a diagonal gradient that moves with k. */
static void render(unsigned char *pixels, ULONG width, ULONG height, ULONG stride, ULONG k)
{
    for (ULONG y = 0; y < height; y++) {
        unsigned char *row = pixels + (size_t)y * stride;
        for (ULONG x = 0; x < width; x++) {
            row[4 * x + 0] = (unsigned char)(x + y + 16 * k); /* B */
            row[4 * x + 1] = (unsigned char)(y - 8 * k);      /* G */
            row[4 * x + 2] = (unsigned char)(x * 2 + k);      /* R */
            row[4 * x + 3] = 255;                             /* A */
        }
        memset(row + 4 * (size_t)width, 0, stride - 4 * (size_t)width);
    }
}

static int producer_main(const char *sink_name, const options *o)
{
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr))
        return producer_fail("ShmCoInitializeEx", hr);
    int rc = 1;
    IStream *s = NULL, *frames = NULL;
    IFrameSink *sink = NULL;
    unsigned char *images = NULL;
    if (FAILED(hr = ShmCoRegisterProxyStubs(&frames_ProxyFileInfo))) {
        producer_fail("ShmCoRegisterProxyStubs", hr);
        goto out;
    }
    if (FAILED(hr = ShmOpenStreamOnSharedMemory(sink_name, 0, &s))) {
        producer_fail("ShmOpenStreamOnSharedMemory", hr);
        goto out;
    }
    hr = ShmCoUnmarshalInterface(s, &IID_IFrameSink, (void **)&sink);
    IStream_Release(s);
    if (FAILED(hr)) {
        producer_fail("ShmCoUnmarshalInterface(IFrameSink)", hr);
        goto out;
    }

    /* The slots: a header, then the pixels at HEADER_AREA, rows 8-aligned,
     * each slot rounded up to whole pages. */
    ULONG stride = (o->width * 4 + 7) & ~7u;
    ULONGLONG pixels_size = (ULONGLONG)stride * o->height;
    ULONGLONG slot_size = (HEADER_AREA + pixels_size + 4095) & ~4095ull;
    if (FAILED(hr = ShmCreateStreamOnSharedMemory(NULL, SLOTS * slot_size, 0, &frames))) {
        producer_fail("ShmCreateStreamOnSharedMemory", hr);
        goto out;
    }
    char name[SHM_MAX_NAME + 1];
    ULARGE_INTEGER extent;
    extent.QuadPart = SLOTS * slot_size;
    if (FAILED(hr = sample_stream_name(frames, name, sizeof(name))) ||
        FAILED(hr = IStream_SetSize(frames, extent))) {
        producer_fail("preparing the frame stream", hr);
        goto out;
    }
    if (FAILED(hr = IFrameSink_Attach(sink, name, SLOTS, slot_size))) {
        producer_fail("IFrameSink::Attach", hr);
        goto out;
    }

    /* The images it shows, drawn once; each frame is one of them. */
    images = malloc((size_t)(PATTERNS * pixels_size));
    if (!images) {
        producer_fail("malloc", E_OUTOFMEMORY);
        goto out;
    }
    ULONGLONG sums[PATTERNS];
    for (ULONG k = 0; k < PATTERNS; k++) {
        render(images + k * pixels_size, o->width, o->height, stride, k);
        checksum c = {0, 0};
        checksum_add(&c, images + k * pixels_size, (size_t)pixels_size);
        sums[k] = checksum_end(&c);
    }

    /* Through the shared stream: write the frame into the next slot, then
     * say which slot is ready. */
    for (ULONG seq = 1; seq <= o->frames; seq++) {
        ULONG slot = (seq - 1) % SLOTS, k = (seq - 1) % PATTERNS;
        FRAME_HEADER h = {FRAME_MAGIC, seq,         o->width,    o->height, stride,
                          FRAME_BGRA8, HEADER_AREA, pixels_size, sums[k]};
        LARGE_INTEGER at;
        at.QuadPart = (LONGLONG)(slot * slot_size);
        hr = IStream_Seek(frames, at, STREAM_SEEK_SET, NULL);
        if (SUCCEEDED(hr))
            hr = IStream_Write(frames, &h, sizeof(h), NULL);
        at.QuadPart += HEADER_AREA;
        if (SUCCEEDED(hr))
            hr = IStream_Seek(frames, at, STREAM_SEEK_SET, NULL);
        if (SUCCEEDED(hr))
            hr = IStream_Write(frames, images + k * pixels_size, (ULONG)pixels_size, NULL);
        if (FAILED(hr)) {
            producer_fail("writing a frame", hr);
            goto out;
        }
        if (FAILED(hr = IFrameSink_FrameReady(sink, slot, seq))) {
            producer_fail("IFrameSink::FrameReady", hr);
            goto out;
        }
    }
    if (FAILED(hr = IFrameSink_Detach(sink))) {
        producer_fail("IFrameSink::Detach", hr);
        goto out;
    }

    /* The same frames through the call. */
    for (ULONG seq = 1; o->compare && seq <= o->frames; seq++) {
        ULONG k = (seq - 1) % PATTERNS;
        FRAME_HEADER h = {FRAME_MAGIC, seq, o->width,    o->height, stride,
                          FRAME_BGRA8, 0,   pixels_size, sums[k]};
        hr = IFrameSink_FrameInCall(sink, &h, (ULONG)pixels_size, images + k * pixels_size);
        if (FAILED(hr)) {
            producer_fail("IFrameSink::FrameInCall", hr);
            goto out;
        }
    }
    rc = 0;
out:
    free(images);
    if (sink)
        IFrameSink_Release(sink);
    if (frames)
        IStream_Release(frames);
    ShmCoUninitialize();
    return rc;
}

/* ---- the display ------------------------------------------------------------------------ */

static void print_path(const char *what, const path_stats *p, ULONG expected)
{
    double s = (p->last_ms - p->first_ms) / 1000.0;
    if (p->frames == 0 || s <= 0) {
        printf("  %s: no frames\n", what);
        return;
    }
    printf("  %s: %lu frames in %.2f s: %.0f frames/s, %.2f GB/s; %lu/%lu whole and in order\n",
           what, (unsigned long)p->frames, s, p->frames / s, (double)p->bytes / s / 1e9,
           (unsigned long)(p->frames - p->bad), (unsigned long)expected);
}

static int display_main(const options *o)
{
    HRESULT hr = ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED);
    if (SUCCEEDED(hr))
        hr = ShmCoRegisterProxyStubs(&frames_ProxyFileInfo);
    if (FAILED(hr)) {
        fprintf(stderr, "shared-frames: set-up failed: %s\n", sample_hr(hr));
        return 1;
    }
    int ok = 0;
    IStream *s = NULL;
    sample_proc proc;
    memset(&proc, 0, sizeof(proc));
    frame_sink *snk = calloc(1, sizeof(*snk));
    if (!snk) {
        fprintf(stderr, "shared-frames: out of memory\n");
        goto out;
    }
    snk->IFrameSink_iface.lpVtbl = &sink_vtbl;
    snk->refs = 1;
    IUnknown *unk = (IUnknown *)&snk->IFrameSink_iface;

    char name[SHM_MAX_NAME + 1], exe[4096], frames[16], width[16], height[16];
    ULONG size = 0;
    hr = ShmCoGetMarshalSizeMax(&size, &IID_IFrameSink, unk, MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr))
        hr = ShmCreateStreamOnSharedMemory(NULL, size, 0, &s);
    if (SUCCEEDED(hr))
        hr = ShmCoMarshalInterface(s, &IID_IFrameSink, unk, MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL);
    if (SUCCEEDED(hr))
        hr = sample_stream_name(s, name, sizeof(name));
    if (FAILED(hr)) {
        fprintf(stderr, "shared-frames: marshaling the sink failed: %s\n", sample_hr(hr));
        goto out;
    }
    snprintf(frames, sizeof(frames), "%lu", (unsigned long)o->frames);
    snprintf(width, sizeof(width), "%lu", (unsigned long)o->width);
    snprintf(height, sizeof(height), "%lu", (unsigned long)o->height);
    const char *argv[] = {
        exe,       "--producer", name,       "--frames", frames,
        "--width", width,        "--height", height,     o->compare ? NULL : "--no-compare",
        NULL};
    if (sample_sibling_path(exe, sizeof(exe), "shared-frames") != 0 ||
        sample_proc_start(&proc, argv) != 0) {
        fprintf(stderr, "shared-frames: cannot start the producer\n");
        goto out;
    }
    printf("shared-frames: %lux%lu BGRA frames (%.1f MiB each), %lu of them, from producer pid "
           "%lu\n",
           (unsigned long)o->width, (unsigned long)o->height,
           o->width * 4.0 * o->height / (1 << 20), (unsigned long)o->frames, proc.pid);
    fflush(stdout);

    /* The display's loop: its STA runs the sink's calls as they come, and
     * says how it goes twice a second, until the producer has exited. */
    double last = sample_now_ms();
    ULONG last_frames = 0;
    while (sample_proc_wait(&proc, 0) == 0) {
        if (sample_now_ms() - start_ms > PRODUCER_MS) {
            fprintf(stderr, "shared-frames: the producer takes too long; killing it\n");
            sample_proc_kill(&proc);
            sample_proc_wait(&proc, 10000);
            break;
        }
        hr = ShmCoProcessCalls(20);
        if (FAILED(hr)) {
            fprintf(stderr, "shared-frames: ShmCoProcessCalls: %s\n", sample_hr(hr));
            break;
        }
        double now = sample_now_ms();
        ULONG n = snk->stream.frames + snk->call.frames;
        if (now - last >= 500 && n > last_frames) {
            printf("[%6.2f s] display: %lu frames, %.0f frames/s\n", (now - start_ms) / 1000.0,
                   (unsigned long)n, (n - last_frames) * 1000.0 / (now - last));
            fflush(stdout);
            last = now;
            last_frames = n;
        }
    }
    ShmCoProcessCalls(0); /* what the producer's last moments left */

    printf("\nsummary:\n");
    print_path("through the shared stream (FrameReady)", &snk->stream, o->frames);
    if (o->compare)
        print_path("through the call ([in] array)       ", &snk->call, o->frames);
    printf("  producer exited with code %d\n", proc.exit_code);
    ok = proc.exited && proc.exit_code == 0 && snk->detached && snk->stream.frames == o->frames &&
         snk->stream.bad == 0 && (!o->compare || snk->call.frames == o->frames) &&
         snk->call.bad == 0;
out:
    if (s)
        IStream_Release(s);
    if (proc.handle)
        sample_proc_close(&proc);
    if (snk) {
        ULONG left = IFrameSink_Release(&snk->IFrameSink_iface);
        if (left != 0) {
            printf("  the sink still has %lu references\n", (unsigned long)left);
            ok = 0;
        }
    }
    ShmCoUninitialize();
    printf("shared-frames: %s\n", ok ? "PASS" : "FAILED");
    return ok ? 0 : 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: shared-frames [--frames N] [--width W] [--height H] [--no-compare]\n");
    return 2;
}

int main(int argc, char **argv)
{
    options o = {240, 1920, 1080, 1};
    const char *producer = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-compare")) {
            o.compare = 0;
            continue;
        }
        if (i + 1 >= argc)
            return usage();
        unsigned long n = strtoul(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--producer"))
            producer = argv[i + 1];
        else if (!strcmp(argv[i], "--frames"))
            o.frames = (ULONG)n;
        else if (!strcmp(argv[i], "--width"))
            o.width = (ULONG)n;
        else if (!strcmp(argv[i], "--height"))
            o.height = (ULONG)n;
        else
            return usage();
        i++;
    }
    /* a frame must fit an [in] array's ULONG size, with room to spare */
    if (o.frames < 1 || o.width < 1 || o.height < 1 || o.width > 16384 || o.height > 16384)
        return usage();
    start_ms = sample_now_ms();
    return producer ? producer_main(producer, &o) : display_main(&o);
}
