/*
 * fuzz_objref.c - libFuzzer target: the marshaled-record reader.
 * ShmCoUnmarshalInterface, ShmCoReleaseMarshalData and
 * ShmCoGetInterfaceAndReleaseStream read up to four records from a stream
 * that holds the input, with live objects behind real ids (fuzz_rt.h: an
 * input names them by tokens), in the MTA or in an STA.
 *
 * Input: ctl (2 bits per record: unmarshal, release, get-and-release,
 * unmarshal and marshal the result on), sel (bits 0-2: the IID asked for;
 * bit 3: read on the STA's thread; bits 4-5: NORMAL, TABLESTRONG,
 * TABLEWEAK or NORMAL|NOPING for marshaling on; bit 6: MSHCTX_LOCAL for
 * that), [16 bytes of IID when sel asks for one], then the stream's bytes.
 *
 * Any crash, sanitizer report or leak is a bug, and so is an object left
 * with more or fewer references than before the input (fz_end).
 */
#include "fuzz_rt.h"
#include "shstream.h"

#include <stdlib.h>
#include <string.h>

typedef struct job {
    uint8_t ctl, sel;
    const IID *riid;
    IStream *stream;
} job;

/* Uses what an unmarshal returned as the interface asked for, if known. */
static void use(const IID *riid, IUnknown *p)
{
    IUnknown *u = NULL;
    if (SUCCEEDED(IUnknown_QueryInterface(p, &IID_IUnknown, (void **)&u)) && u)
        IUnknown_Release(u);
    if (IsEqualIID(riid, &IID_ICallee)) {
        LONG tag;
        ICallee_GetTag((ICallee *)p, &tag);
    } else if (IsEqualIID(riid, &IID_ICallback)) {
        ICallback_Notify((ICallback *)p, 7);
    }
}

static void remarshal(const IID *riid, IUnknown *p, uint8_t sel)
{
    static const DWORD flags[4] = {MSHLFLAGS_NORMAL, MSHLFLAGS_TABLESTRONG, MSHLFLAGS_TABLEWEAK,
                                   MSHLFLAGS_NORMAL | MSHLFLAGS_NOPING};
    IStream *s;
    if (FAILED(shmc_stream_create_heap(0, &s)))
        abort();
    const IID *iid = IsEqualIID(riid, &GUID_NULL) ? &IID_IUnknown : riid;
    DWORD ctx = sel & 0x40 ? MSHCTX_LOCAL : MSHCTX_INPROC;
    if (SUCCEEDED(ShmCoMarshalInterface(s, iid, p, ctx, NULL, flags[sel >> 4 & 3]))) {
        LARGE_INTEGER zero;
        zero.QuadPart = 0;
        IStream_Seek(s, zero, STREAM_SEEK_SET, NULL);
        if (FAILED(ShmCoReleaseMarshalData(s)))
            abort(); /* a record we just wrote */
    }
    IStream_Release(s);
}

static void run(void *arg)
{
    job *j = arg;
    for (int k = 0; k < 4; k++) {
        IUnknown *p = NULL;
        HRESULT hr;
        switch ((j->ctl >> (2 * k)) & 3) {
        case 0:
            hr = ShmCoUnmarshalInterface(j->stream, j->riid, (void **)&p);
            break;
        case 1:
            hr = ShmCoReleaseMarshalData(j->stream);
            break;
        case 2:
            IStream_AddRef(j->stream); /* it releases one */
            hr = ShmCoGetInterfaceAndReleaseStream(j->stream, j->riid, (void **)&p);
            break;
        default:
            hr = ShmCoUnmarshalInterface(j->stream, j->riid, (void **)&p);
            if (SUCCEEDED(hr))
                remarshal(j->riid, p, j->sel);
            break;
        }
        if ((SUCCEEDED(hr) != (p != NULL)) && ((j->ctl >> (2 * k)) & 3) != 1)
            abort(); /* out pointer and result disagree */
        if (p) {
            use(j->riid, p);
            IUnknown_Release(p);
        }
        if (FAILED(hr))
            break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const IID *const iids[] = {&GUID_NULL,   &IID_IUnknown, &IID_ICallee,  &IID_ICallback,
                                      &IID_IStream, &IID_ICallee,  &IID_IUnknown, NULL};
    fz_setup();
    fz_in in = {data, size};
    job j;
    j.ctl = fz_u8(&in);
    uint8_t sel = j.sel = fz_u8(&in);
    IID given;
    j.riid = iids[sel & 7];
    if (!j.riid) {
        memset(&given, 0, sizeof(given));
        fz_bytes(&in, &given, sizeof(given));
        j.riid = &given;
    }
    unsigned char *bytes = malloc(in.n ? in.n : 1);
    memcpy(bytes, in.p, in.n);

    fz_begin();
    fz_patch(bytes, in.n);
    if (FAILED(shmc_stream_create_heap(0, &j.stream)))
        abort();
    ULONG written;
    if (FAILED(IStream_Write(j.stream, bytes, (ULONG)in.n, &written)))
        abort();
    LARGE_INTEGER zero;
    zero.QuadPart = 0;
    IStream_Seek(j.stream, zero, STREAM_SEEK_SET, NULL);
    if (sel & 8)
        fz_on_sta(run, &j);
    else
        run(&j);
    IStream_Release(j.stream);
    free(bytes);
    fz_end();
    return 0;
}
