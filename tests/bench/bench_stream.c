/*
 * bench_stream.c - the shared-memory stream's bandwidth next to memcpy
 * into the same mapping, measured in the same run; plus what a heap
 * stream round trip costs (the unit of ShmCoMarshalInterThreadInterface-
 * InStream) and what a reclaim scan costs.
 *
 *   bench_stream            the full run: prints the tables
 *   bench_stream --quick    a few iterations of everything (a ctest smoke
 *                           test; it checks that the numbers come out, and
 *                           never judges them)
 *   bench_stream --tsv      the same figures as lines for scripts
 *                           (benchtsv.h); combines with --quick
 *
 * Each figure is the median of ROUNDS rounds; in each round the stream
 * and memcpy take turns on the same buffers and the same mapping, so that
 * both see the same caches and pages. Writes go to offset 0 of a stream
 * whose capacity is the size measured; reads come back from it.
 */
#define COBJMACROS
#include "benchtsv.h"
#include "shstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 7

static bool quick, tsv;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v; its median is then v[n / 2], its extremes v[0] and v[n - 1]. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return v[n / 2];
}

/* A row of GB/s (sorted): the fastest round is the highest. */
static void tsv_gbs(const char *op, const char *what, ULONG size, const double *v, const char *kind,
                    const char *label)
{
    char key[64];
    snprintf(key, sizeof(key), "%s.%s.%lu", what, op, (unsigned long)size);
    btsv_row(key, v[ROUNDS / 2], v[ROUNDS - 1], v[0], "GB/s", kind, label);
}

#define CHECK(call)                                                                 \
    do {                                                                            \
        HRESULT hr_ = (call);                                                       \
        if (FAILED(hr_)) {                                                          \
            fprintf(stderr, "%s:%d: %s failed 0x%08x\n", __FILE__, __LINE__, #call, \
                    (unsigned)hr_);                                                 \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static void seek0(IStream *s)
{
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    CHECK(IStream_Seek(s, zero, STREAM_SEEK_SET, NULL));
}

typedef struct run {
    IStream *s;
    unsigned char *map; /* the stream's data, in the mapping */
    unsigned char *buf; /* private memory */
    ULONG size;
    unsigned iters;
} run;

/* GB/s of `iters` operations of one kind. */
static double stream_write(run *r)
{
    uint64_t t0 = shmc_plat_clock_ns();
    for (unsigned i = 0; i < r->iters; i++) {
        ULONG n = 0;
        seek0(r->s);
        CHECK(IStream_Write(r->s, r->buf, r->size, &n));
        if (n != r->size)
            exit(1);
    }
    return (double)r->size * r->iters / (double)(shmc_plat_clock_ns() - t0);
}

static double stream_read(run *r)
{
    uint64_t t0 = shmc_plat_clock_ns();
    for (unsigned i = 0; i < r->iters; i++) {
        ULONG n = 0;
        seek0(r->s);
        CHECK(IStream_Read(r->s, r->buf, r->size, &n));
        if (n != r->size)
            exit(1);
    }
    return (double)r->size * r->iters / (double)(shmc_plat_clock_ns() - t0);
}

/* volatile function pointer: the compiler cannot drop or merge the copies */
static void *(*volatile copy)(void *, const void *, size_t) = memcpy;

static double memcpy_write(run *r)
{
    uint64_t t0 = shmc_plat_clock_ns();
    for (unsigned i = 0; i < r->iters; i++)
        copy(r->map, r->buf, r->size);
    return (double)r->size * r->iters / (double)(shmc_plat_clock_ns() - t0);
}

static double memcpy_read(run *r)
{
    uint64_t t0 = shmc_plat_clock_ns();
    for (unsigned i = 0; i < r->iters; i++)
        copy(r->buf, r->map, r->size);
    return (double)r->size * r->iters / (double)(shmc_plat_clock_ns() - t0);
}

static void bandwidth(void)
{
    static const ULONG sizes[] = {4u << 10, 64u << 10, 1u << 20, 16u << 20};
    if (!tsv) {
        printf("shared-memory stream vs memcpy into the same mapping (GB/s, median of %d)\n",
               ROUNDS);
        printf("%-8s %-6s %10s %10s %7s\n", "size", "op", "stream", "memcpy", "ratio");
    }
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        run r;
        r.size = sizes[k];
        /* about 256 MiB moved per measurement */
        r.iters = quick ? 2 : (unsigned)((256u << 20) / r.size);
        CHECK(ShmCreateStreamOnSharedMemory(NULL, r.size, 0, &r.s));
        shmc_stream_store *st = shmc_stream_store_of(r.s);
        r.map = st->data;
        r.buf = malloc(r.size);
        if (!r.buf)
            exit(1);
        memset(r.buf, 0x5a, r.size);
        /* fault the pages in on both sides before measuring */
        CHECK(IStream_Write(r.s, r.buf, r.size, NULL));
        memcpy(r.buf, r.map, r.size);

        double sw[ROUNDS], mw[ROUNDS], sr[ROUNDS], mr[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            sw[i] = stream_write(&r);
            mw[i] = memcpy_write(&r);
            sr[i] = stream_read(&r);
            mr[i] = memcpy_read(&r);
        }
        double w = median(sw, ROUNDS), wm = median(mw, ROUNDS);
        double rd = median(sr, ROUNDS), rm = median(mr, ROUNDS);
        char label[16];
        snprintf(label, sizeof(label), "%lu KiB", (unsigned long)(r.size >> 10));
        if (r.size >= (1u << 20))
            snprintf(label, sizeof(label), "%lu MiB", (unsigned long)(r.size >> 20));
        if (tsv) {
            char text[96], key[64], ref[64];
            snprintf(text, sizeof(text), "memcpy %s into the mapping", label);
            tsv_gbs("write", "memcpy", r.size, mw, "floor", text);
            snprintf(text, sizeof(text), "IStream_Write of %s into a shared-memory stream", label);
            tsv_gbs("write", "stream", r.size, sw, "call", text);
            snprintf(key, sizeof(key), "stream.write.%lu", (unsigned long)r.size);
            snprintf(ref, sizeof(ref), "memcpy.write.%lu", (unsigned long)r.size);
            btsv_ratio(key, ref, w / wm, "memcpy bandwidth");
            snprintf(text, sizeof(text), "memcpy %s out of the mapping", label);
            tsv_gbs("read", "memcpy", r.size, mr, "floor", text);
            snprintf(text, sizeof(text), "IStream_Read of %s from a shared-memory stream", label);
            tsv_gbs("read", "stream", r.size, sr, "call", text);
            snprintf(key, sizeof(key), "stream.read.%lu", (unsigned long)r.size);
            snprintf(ref, sizeof(ref), "memcpy.read.%lu", (unsigned long)r.size);
            btsv_ratio(key, ref, rd / rm, "memcpy bandwidth");
        } else {
            printf("%-8s %-6s %10.2f %10.2f %7.2f\n", label, "write", w, wm, w / wm);
            printf("%-8s %-6s %10.2f %10.2f %7.2f\n", label, "read", rd, rm, rd / rm);
        }
        free(r.buf);
        IStream_Release(r.s);
    }
}

/* What ShmCoMarshalInterThreadInterfaceInStream will pay for its stream:
 * create a heap stream, write a record, seek back, read it, release. */
static void heap_round_trip(void)
{
    static const ULONG sizes[] = {64, 1024};
    unsigned char rec[1024], back[1024];
    memset(rec, 1, sizeof(rec));
    if (!tsv)
        printf("\nheap stream: create, write, seek, read, release (ns, median of %d)\n", ROUNDS);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned iters = quick ? 2 : 200000;
        double ns[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            uint64_t t0 = shmc_plat_clock_ns();
            for (unsigned j = 0; j < iters; j++) {
                IStream *s;
                CHECK(shmc_stream_create_heap(sizes[k], &s));
                CHECK(IStream_Write(s, rec, sizes[k], NULL));
                seek0(s);
                CHECK(IStream_Read(s, back, sizes[k], NULL));
                IStream_Release(s);
            }
            ns[i] = (double)(shmc_plat_clock_ns() - t0) / iters;
        }
        double med = median(ns, ROUNDS);
        if (tsv) {
            char key[32], label[96];
            snprintf(key, sizeof(key), "heap.%lu", (unsigned long)sizes[k]);
            snprintf(label, sizeof(label),
                     "heap stream of %lu bytes: create, write, seek, read, release",
                     (unsigned long)sizes[k]);
            btsv_row(key, med, ns[0], ns[ROUNDS - 1], "ns", "call", label);
        } else {
            printf("%5lu bytes  %8.0f ns\n", (unsigned long)sizes[k], med);
        }
    }
}

/* The scan that creators run now and then (throttled, regionhdr.h). */
static void reclaim_scan(void)
{
    enum { LIVE = 100 };
    IStream *s[LIVE];
    int n = quick ? 2 : LIVE;
    for (int i = 0; i < n; i++)
        CHECK(ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &s[i]));
    double us[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t t0 = shmc_plat_clock_ns();
        HRESULT hr = shmc_reclaim_stale(NULL);
        us[i] = (double)(shmc_plat_clock_ns() - t0) / 1e3;
        if (FAILED(hr))
            exit(1);
    }
    double med = median(us, ROUNDS);
    if (tsv) {
        char label[96];
        snprintf(label, sizeof(label), "reclaim scan with %d live streams of this user%s", n,
                 shmc_plat_region_names_persist() ? "" : " (nothing to scan on this platform)");
        btsv_row("reclaim", med, us[0], us[ROUNDS - 1], "us", "call", label);
    } else {
        printf("\nreclaim scan with %d live streams of this user: %.0f us%s\n", n, med,
               shmc_plat_region_names_persist() ? "" : " (nothing to scan on this platform)");
    }
    for (int i = 0; i < n; i++)
        IStream_Release(s[i]);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--tsv"))
            tsv = true;
        else {
            fprintf(stderr, "usage: bench_stream [--quick] [--tsv]\n");
            return 2;
        }
    }
    if (tsv)
        btsv_header("bench_stream", shmc_plat_cpu_count(), quick);
    bandwidth();
    heap_round_trip();
    reclaim_scan();
    return 0;
}
