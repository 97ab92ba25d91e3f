/*
 * psengine.c - the proxy/stub engine: ShmProxyInvoke (the caller's side)
 * and ShmStubInvoke (the object's side) marshal every call from the
 * tables that shmidl generates (see <shmcom/proxystub.h>).
 *
 * Both sides treat the frame they receive as hostile: refs and counts are
 * copied into locals, checked with frame.c, and only then used; strings
 * are copied before their terminator is checked. Both sides own, per call,
 * an array of per-parameter work records, so that every failure path can
 * release exactly what was acquired:
 *   proxy: [in] interface records (until SendReceive), [out] copies
 *          allocated for the caller, [out] interfaces unmarshaled;
 *   stub:  the argument storage, [in] string and array copies, [in]
 *          interfaces unmarshaled, what the callee returned in [out]
 *          parameters, [out] interface records.
 */
#include "psengine.h"

#include "alloc.h"
#include "frame.h"
#include "bounds.h"

#include <string.h>

#define SMALL_PARAMS 16

static void *load_ptr(void *const *args, uint32_t i)
{
    void *p;
    memcpy(&p, args[i], sizeof(p));
    return p;
}

/* Stores a pointer into a T * the caller owns (e.g. a char ** target). */
static void store_ptr(void *target, void *value)
{
    memcpy(target, &value, sizeof(value));
}

static void release_itf(void *p)
{
    if (p) {
        IUnknown *u = p;
        u->lpVtbl->Release(u);
    }
}

/* Points f->fixed at a private copy of the frame's first fixed_size bytes:
 * in `local` if they fit, else in *heap (the caller frees it). A frame in
 * shared memory may change while it is read; every count, ref and value
 * is then read from the copy, so a word checked once is the word used. */
static HRESULT copy_fixed(shmc_frame *f, uint32_t fixed_size, unsigned char *local,
                          size_t local_size, unsigned char **heap)
{
    *heap = NULL;
    if (!fixed_size)
        return S_OK;
    unsigned char *dst = local;
    if (fixed_size > local_size) {
        dst = *heap = shmc_malloc(fixed_size);
        if (!dst)
            return E_OUTOFMEMORY;
    }
    memcpy(dst, f->base, fixed_size);
    f->fixed = dst;
    return S_OK;
}

static void string_bytes(const void *s, uint32_t elem, uint64_t *bytes)
{
    uint64_t n = 0;
    if (elem == 1) {
        const char *c = s;
        while (c[n])
            n++;
    } else {
        const unsigned char *c = s;
        while (c[2 * n] || c[2 * n + 1])
            n++;
    }
    *bytes = (n + 1) * elem;
}

/* ---- tables ------------------------------------------------------------ */

static int pow2_align(uint32_t a)
{
    return a == 1 || a == 2 || a == 4 || a == 8;
}

static int slot_size(const ShmParam *p, uint64_t *size, uint32_t *align)
{
    switch (p->kind) {
    case SHM_PK_VALUE:
    case SHM_PK_REF:
        if (!p->elem_size || !pow2_align(p->elem_align) || p->elem_size % p->elem_align ||
            !p->count)
            return 0;
        *size = (uint64_t)p->elem_size * p->count;
        *align = p->elem_align;
        return 1;
    case SHM_PK_STRING:
    case SHM_PK_ARRAY:
    case SHM_PK_ARRAY_ALLOC:
    case SHM_PK_INTERFACE:
        *size = 8;
        *align = 4;
        return 1;
    }
    return 0;
}

static int is_count_param(const ShmParam *c)
{
    return (c->kind == SHM_PK_VALUE || c->kind == SHM_PK_REF) && c->count == 1 &&
           (c->elem_size == 1 || c->elem_size == 2 || c->elem_size == 4 || c->elem_size == 8);
}

static HRESULT check_method(const ShmMethod *m)
{
    if (!m->call || (m->nparams && !m->params) || m->out_size < 4)
        return E_INVALIDARG;
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        uint64_t size;
        uint32_t align;
        if (!slot_size(p, &size, &align) || !(p->flags & (SHM_PF_IN | SHM_PF_OUT)))
            return E_INVALIDARG;
        int in = (p->flags & SHM_PF_IN) != 0, out = (p->flags & SHM_PF_OUT) != 0;
        int wants_in = in && p->kind != SHM_PK_ARRAY_ALLOC;
        if ((p->in_offset != SHM_NO_SLOT) != wants_in || (p->out_offset != SHM_NO_SLOT) != out)
            return E_INVALIDARG;
        if (p->kind == SHM_PK_VALUE && out)
            return E_INVALIDARG;
        if (p->kind == SHM_PK_STRING && (p->elem_size != 1 && p->elem_size != 2))
            return E_INVALIDARG;
        if ((p->kind == SHM_PK_STRING || p->kind == SHM_PK_INTERFACE) && in && out)
            return E_INVALIDARG;
        if ((p->kind == SHM_PK_ARRAY || p->kind == SHM_PK_ARRAY_ALLOC) &&
            (!p->elem_size || !pow2_align(p->elem_align) || p->elem_size % p->elem_align))
            return E_INVALIDARG;
        if (p->kind == SHM_PK_ARRAY_ALLOC && in)
            return E_INVALIDARG;
        if (wants_in && (p->in_offset % align || (uint64_t)p->in_offset + size > m->in_size))
            return E_INVALIDARG;
        if (out && (p->out_offset < 4 || p->out_offset % align ||
                    (uint64_t)p->out_offset + size > m->out_size))
            return E_INVALIDARG;
        /* no two slots of a frame overlap */
        for (uint32_t j = 0; j < i; j++) {
            const ShmParam *q = &m->params[j];
            uint64_t qs = 0;
            uint32_t qa = 0;
            slot_size(q, &qs, &qa);
            if (wants_in && q->in_offset != SHM_NO_SLOT && p->in_offset < q->in_offset + qs &&
                q->in_offset < p->in_offset + size)
                return E_INVALIDARG;
            if (out && q->out_offset != SHM_NO_SLOT && p->out_offset < q->out_offset + qs &&
                q->out_offset < p->out_offset + size)
                return E_INVALIDARG;
        }
        int sized = p->kind == SHM_PK_ARRAY || p->kind == SHM_PK_ARRAY_ALLOC;
        if (sized != (p->size_param != 0))
            return E_INVALIDARG;
        if (sized) {
            if (p->size_param > m->nparams || p->size_param == i + 1)
                return E_INVALIDARG;
            const ShmParam *c = &m->params[p->size_param - 1];
            if (!is_count_param(c))
                return E_INVALIDARG;
            if (p->kind == SHM_PK_ARRAY && !(c->flags & SHM_PF_IN))
                return E_INVALIDARG;
        }
        if (p->iid_param) {
            if (p->kind != SHM_PK_INTERFACE || p->iid_param > m->nparams)
                return E_INVALIDARG;
            const ShmParam *g = &m->params[p->iid_param - 1];
            if ((g->kind != SHM_PK_VALUE && g->kind != SHM_PK_REF) || g->elem_size != 16 ||
                g->count != 1 || g->flags & SHM_PF_OUT || !(g->flags & SHM_PF_IN))
                return E_INVALIDARG;
        } else if (p->kind == SHM_PK_INTERFACE && !p->iid) {
            return E_INVALIDARG;
        }
    }
    return S_OK;
}

HRESULT shmc_ps_check_interface(const ShmInterfaceInfo *info)
{
    if (!info || !info->iid || !info->name || !info->base_iid || info->nmethods < 3 ||
        !info->methods || !info->proxy_vtbl)
        return E_INVALIDARG;
    for (uint32_t i = 3; i < info->nmethods; i++)
        if (FAILED(check_method(&info->methods[i])))
            return E_INVALIDARG;
    return S_OK;
}

/* ---- the caller's side ---------------------------------------------------- */

HRESULT ShmProxyQueryInterface(void *This, REFIID riid, void **ppv)
{
    if (!ppv)
        return E_POINTER;
    *ppv = NULL;
    ShmProxyHeader *h = This;
    if (!h || !riid)
        return E_INVALIDARG;
    return h->channel->vtbl->QueryInterface(h->channel, h, riid, ppv);
}

ULONG ShmProxyAddRef(void *This)
{
    ShmProxyHeader *h = This;
    return h->channel->vtbl->AddRef(h->channel, h);
}

ULONG ShmProxyRelease(void *This)
{
    ShmProxyHeader *h = This;
    return h->channel->vtbl->Release(h->channel, h);
}

typedef struct pwork {
    uint64_t count; /* ARRAY: elements; ARRAY_ALLOC: after the call */
    int count_ok;
    uint32_t len; /* [in] variable data, bytes */
    uint32_t off; /* its offset in the request */
    void *rec;    /* [in] interface record (task memory) */
    uint32_t rec_size;
    ShmFrameRef ref; /* [out] ref from the reply */
    void *copy;      /* [out] string or array copy for the caller */
    void *itf;       /* [out] interface unmarshaled for the caller */
    int consumed;    /* [out] record handed to Unmarshal */
} pwork;

static const IID *proxy_iid(const ShmParam *ps, uint32_t i, void **args)
{
    const ShmParam *p = &ps[i];
    if (!p->iid_param)
        return p->iid;
    uint32_t j = p->iid_param - 1u;
    if (ps[j].kind == SHM_PK_VALUE)
        return args[j];
    return load_ptr(args, j);
}

/* The count of a caller-allocated array from its size_is parameter. */
static HRESULT proxy_count(const ShmParam *ps, const ShmParam *p, void **args, uint64_t *count)
{
    uint32_t j = p->size_param - 1u;
    const ShmParam *c = &ps[j];
    const void *src = c->kind == SHM_PK_VALUE ? args[j] : load_ptr(args, j);
    if (!src)
        return E_POINTER;
    if (shmc_read_count(src, c->elem_size, (c->flags & SHM_PF_SIGNED) != 0, count))
        return E_INVALIDARG;
    if (*count * p->elem_size > UINT32_MAX || *count > UINT32_MAX)
        return E_INVALIDARG;
    return S_OK;
}

/* On failure: [out] pointers NULL, [out]-only data zeroed. */
static void clear_outs(const ShmMethod *m, void **args, pwork *w)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (!(p->flags & SHM_PF_OUT))
            continue;
        void *target = load_ptr(args, i);
        if (!target)
            continue;
        switch (p->kind) {
        case SHM_PK_REF:
            if (!(p->flags & SHM_PF_IN))
                memset(target, 0, (size_t)p->elem_size * p->count);
            break;
        case SHM_PK_ARRAY:
            if (!(p->flags & SHM_PF_IN) && w[i].count_ok)
                memset(target, 0, (size_t)(w[i].count * p->elem_size));
            break;
        default:
            store_ptr(target, NULL);
            break;
        }
    }
}

static void free_records(const ShmMethod *m, pwork *w, ShmItfMarshaler *mar, int release)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        if (w[i].rec) {
            if (release && mar)
                mar->vtbl->ReleaseMarshalData(mar, w[i].rec, w[i].rec_size);
            ShmCoTaskMemFree(w[i].rec);
            w[i].rec = NULL;
        }
    }
}

/* Checks the [in] arguments and sizes the request without interface
 * records. */
static HRESULT proxy_prepare(const ShmMethod *m, void **args, pwork *w, uint64_t *size)
{
    const ShmParam *ps = m->params;
    HRESULT hr = S_OK;
    /* NULL [ref] pointers first: E_POINTER without a call */
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->kind == SHM_PK_VALUE || (p->kind == SHM_PK_INTERFACE && !(p->flags & SHM_PF_OUT)))
            continue;
        if (!load_ptr(args, i))
            return E_POINTER;
    }
    uint64_t total = shmc_align8(m->in_size);
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->kind == SHM_PK_ARRAY) {
            hr = proxy_count(ps, p, args, &w[i].count);
            if (FAILED(hr))
                return hr;
            w[i].count_ok = 1;
        }
        if (!(p->flags & SHM_PF_IN))
            continue;
        uint64_t len = 0;
        if (p->kind == SHM_PK_STRING)
            string_bytes(load_ptr(args, i), p->elem_size, &len);
        else if (p->kind == SHM_PK_ARRAY)
            len = w[i].count * p->elem_size;
        else
            continue;
        if (len > UINT32_MAX)
            return E_INVALIDARG;
        w[i].len = (uint32_t)len;
        w[i].off = (uint32_t)shmc_align8(total);
        total = w[i].off + len;
        if (total > SHMC_MAX_FRAME)
            return E_INVALIDARG;
    }
    /* the reply must be able to hold the caller's [out] arrays */
    uint64_t out = shmc_align8(m->out_size);
    for (uint32_t i = 0; i < m->nparams; i++)
        if (ps[i].kind == SHM_PK_ARRAY && (ps[i].flags & SHM_PF_OUT))
            out = shmc_align8(out) + w[i].count * ps[i].elem_size;
    if (out > SHMC_MAX_FRAME)
        return E_INVALIDARG;
    *size = total;
    return S_OK;
}

static void put_ref(unsigned char *frame, uint32_t slot, uint32_t off, uint32_t len)
{
    memcpy(frame + slot, &off, 4);
    memcpy(frame + slot + 4, &len, 4);
}

/* Zeroes frame[from, to) within the frame's size: the padding after a
 * piece of data, so that no stale bytes reach the peer (the data itself is
 * written once, not zeroed first). */
static void zero_pad(unsigned char *frame, uint32_t size, uint64_t from, uint64_t to)
{
    if (to > size)
        to = size;
    if (from < to)
        memset(frame + from, 0, (size_t)(to - from));
}

static void write_request(const ShmMethod *m, void **args, pwork *w, unsigned char *req,
                          uint32_t size)
{
    const ShmParam *ps = m->params;
    /* zero the fixed part and every gap: no stale bytes reach the peer */
    memset(req, 0, size < shmc_align8(m->in_size) ? size : (size_t)shmc_align8(m->in_size));
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->in_offset == SHM_NO_SLOT)
            continue;
        switch (p->kind) {
        case SHM_PK_VALUE:
            memcpy(req + p->in_offset, args[i], (size_t)p->elem_size * p->count);
            break;
        case SHM_PK_REF:
            memcpy(req + p->in_offset, load_ptr(args, i), (size_t)p->elem_size * p->count);
            break;
        case SHM_PK_STRING:
        case SHM_PK_ARRAY:
            put_ref(req, p->in_offset, w[i].off, w[i].len);
            memcpy(req + w[i].off, load_ptr(args, i), w[i].len);
            zero_pad(req, size, w[i].off + w[i].len, w[i].off + shmc_align8(w[i].len));
            break;
        case SHM_PK_INTERFACE:
            if (!w[i].rec) {
                put_ref(req, p->in_offset, SHM_NULL_REF, 0);
            } else {
                put_ref(req, p->in_offset, w[i].off, w[i].rec_size);
                memcpy(req + w[i].off, w[i].rec, w[i].rec_size);
                zero_pad(req, size, w[i].off + w[i].rec_size,
                         w[i].off + shmc_align8(w[i].rec_size));
            }
            break;
        }
    }
}

/* Checks the reply's [out] refs and counts (nothing is allocated yet). */
static HRESULT check_reply(const ShmMethod *m, void **args, pwork *w, const shmc_frame *f)
{
    const ShmParam *ps = m->params;
    ShmFrameRef onstack[SMALL_PARAMS];
    ShmFrameRef *refs =
        m->nparams <= SMALL_PARAMS ? onstack : shmc_malloc(sizeof(*refs) * m->nparams);
    if (!refs)
        return E_OUTOFMEMORY;
    uint32_t nrefs = 0;
    HRESULT hr = RPC_E_INVALID_DATA;
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->out_offset == SHM_NO_SLOT || p->kind == SHM_PK_REF)
            continue;
        ShmFrameRef r = shmc_frame_ref(f, p->out_offset);
        w[i].ref = r;
        switch (p->kind) {
        case SHM_PK_ARRAY:
            if (!shmc_frame_ref_ok(f, r, p->elem_size) || r.length != w[i].count * p->elem_size)
                goto done;
            break;
        case SHM_PK_STRING:
            if (shmc_frame_ref_is_null(r)) {
                if (!shmc_frame_null_ok(r))
                    goto done;
                continue;
            }
            if (!shmc_frame_ref_ok(f, r, p->elem_size) || r.length < p->elem_size)
                goto done;
            break;
        case SHM_PK_ARRAY_ALLOC: {
            uint32_t j = p->size_param - 1u;
            const ShmParam *c = &ps[j];
            const void *src;
            if (c->out_offset != SHM_NO_SLOT)
                src = f->fixed + c->out_offset;
            else
                src = c->kind == SHM_PK_VALUE ? args[j] : load_ptr(args, j);
            if (shmc_read_count(src, c->elem_size, (c->flags & SHM_PF_SIGNED) != 0, &w[i].count))
                goto done;
            if (shmc_frame_ref_is_null(r)) {
                if (!shmc_frame_null_ok(r) || w[i].count != 0)
                    goto done;
                continue;
            }
            if (w[i].count > UINT32_MAX || !shmc_frame_ref_ok(f, r, p->elem_size) ||
                r.length != w[i].count * p->elem_size)
                goto done;
            break;
        }
        case SHM_PK_INTERFACE:
            if (shmc_frame_ref_is_null(r)) {
                if (!shmc_frame_null_ok(r))
                    goto done;
                continue;
            }
            if (!shmc_frame_ref_ok(f, r, 0))
                goto done;
            break;
        }
        refs[nrefs++] = r;
    }
    hr = shmc_frame_refs_disjoint(refs, nrefs) ? S_OK : RPC_E_INVALID_DATA;
done:
    if (refs != onstack)
        shmc_free(refs);
    return hr;
}

/* Releases the reply's [out] interface records nobody consumed. */
static void release_reply_records(const ShmMethod *m, pwork *w, const shmc_frame *f,
                                  ShmItfMarshaler *mar)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (p->kind != SHM_PK_INTERFACE || p->out_offset == SHM_NO_SLOT || w[i].consumed ||
            shmc_frame_ref_is_null(w[i].ref) || !mar)
            continue;
        mar->vtbl->ReleaseMarshalData(mar, f->base + w[i].ref.offset, w[i].ref.length);
    }
}

static void undo_outs(const ShmMethod *m, pwork *w)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        ShmCoTaskMemFree(w[i].copy);
        w[i].copy = NULL;
        release_itf(w[i].itf);
        w[i].itf = NULL;
    }
}

/* Copies and unmarshals the [out] data of a checked reply, then hands it
 * to the caller. All or nothing. */
static HRESULT take_reply(const ShmMethod *m, void **args, pwork *w, const shmc_frame *f,
                          ShmItfMarshaler *mar)
{
    const ShmParam *ps = m->params;
    HRESULT hr = S_OK;
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->out_offset == SHM_NO_SLOT ||
            !(p->kind == SHM_PK_STRING || p->kind == SHM_PK_ARRAY_ALLOC) ||
            shmc_frame_ref_is_null(w[i].ref))
            continue;
        w[i].copy = ShmCoTaskMemAlloc(w[i].ref.length);
        if (!w[i].copy) {
            hr = E_OUTOFMEMORY;
            goto fail;
        }
        memcpy(w[i].copy, f->base + w[i].ref.offset, w[i].ref.length);
        if (p->kind == SHM_PK_STRING && !shmc_string_ok(w[i].copy, w[i].ref.length, p->elem_size)) {
            hr = RPC_E_INVALID_DATA;
            goto fail;
        }
    }
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->kind != SHM_PK_INTERFACE || p->out_offset == SHM_NO_SLOT ||
            shmc_frame_ref_is_null(w[i].ref))
            continue;
        if (!mar) {
            hr = RPC_E_INVALID_DATA;
            goto fail;
        }
        w[i].consumed = 1;
        hr = mar->vtbl->Unmarshal(mar, proxy_iid(ps, i, args), f->base + w[i].ref.offset,
                                  w[i].ref.length, &w[i].itf);
        if (FAILED(hr)) {
            w[i].itf = NULL;
            goto fail;
        }
    }
    /* commit: nothing fails from here on */
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->out_offset == SHM_NO_SLOT)
            continue;
        void *target = load_ptr(args, i);
        switch (p->kind) {
        case SHM_PK_REF:
            memcpy(target, f->fixed + p->out_offset, (size_t)p->elem_size * p->count);
            break;
        case SHM_PK_ARRAY:
            memcpy(target, f->base + w[i].ref.offset, w[i].ref.length);
            break;
        case SHM_PK_STRING:
        case SHM_PK_ARRAY_ALLOC:
            store_ptr(target, w[i].copy);
            w[i].copy = NULL;
            break;
        case SHM_PK_INTERFACE:
            store_ptr(target, w[i].itf);
            w[i].itf = NULL;
            break;
        }
    }
    return S_OK;
fail:
    /* the records nobody consumed still hold references on the other side */
    release_reply_records(m, w, f, mar);
    undo_outs(m, w);
    return hr;
}

/* The reply's own HRESULT, once the frame can be a reply of the method. */
static HRESULT reply_head(const ShmMethod *m, const void *reply, uint32_t reply_size, HRESULT *mhr)
{
    if (reply_size < 4 || !reply)
        return RPC_E_INVALID_DATA;
    memcpy(mhr, reply, 4);
    if (FAILED(*mhr))
        return *mhr;
    if (reply_size < m->out_size || reply_size > SHMC_MAX_FRAME)
        return RPC_E_INVALID_DATA;
    return S_OK;
}

static const ShmProxyChannelVtbl *bare_vtbl;
static shmc_ps_bare_fn bare_call;

void shmc_ps_set_bare_call(const ShmProxyChannelVtbl *vtbl, shmc_ps_bare_fn fn)
{
    bare_vtbl = vtbl;
    bare_call = fn;
}

/* A method without parameters: nothing to marshal, check, copy or undo.
 * The general path's bookkeeping would cost such a call (a null call,
 * most often a hot one) a fifth of its round trip between threads. */
static HRESULT proxy_invoke_bare(ShmProxyHeader *h, const ShmMethod *m, uint32_t method)
{
    ShmProxyChannel *ch = h->channel;
    uint32_t size = (uint32_t)shmc_align8(m->in_size);
    HRESULT mhr = S_OK;
    if (ch->vtbl == bare_vtbl && bare_call) {
        /* the remote channel's one step (a hot null call's) */
        uint32_t reply_size = 0;
        HRESULT head = S_OK;
        HRESULT hr = bare_call(ch, h, method, size, &reply_size, &head);
        if (SUCCEEDED(hr))
            hr = reply_head(m, reply_size >= 4 ? &head : NULL, reply_size, &mhr);
        return FAILED(hr) ? hr : mhr;
    }
    ShmCallFrame call;
    memset(&call, 0, sizeof(call));
    call.method = method;
    HRESULT hr = ch->vtbl->GetBuffer(ch, h, &call, size);
    if (FAILED(hr))
        return hr;
    if (size)
        memset(call.request, 0, size);
    hr = ch->vtbl->SendReceive(ch, h, &call);
    if (SUCCEEDED(hr))
        hr = reply_head(m, call.reply, call.reply_size, &mhr);
    ch->vtbl->FreeBuffer(ch, h, &call);
    return FAILED(hr) ? hr : mhr;
}

HRESULT ShmProxyInvoke(void *This, uint32_t method, void **args)
{
    ShmProxyHeader *h = This;
    if (!h || !h->info || !h->channel)
        return E_POINTER;
    const ShmInterfaceInfo *info = h->info;
    if (method < 3 || method >= info->nmethods || !info->methods[method].call)
        return RPC_E_INVALIDMETHOD;
    const ShmMethod *m = &info->methods[method];
    if (!m->nparams)
        return proxy_invoke_bare(h, m, method);
    ShmProxyChannel *ch = h->channel;
    pwork onstack[SMALL_PARAMS];
    pwork *w = onstack;
    if (m->nparams > SMALL_PARAMS) {
        w = shmc_calloc(m->nparams, sizeof(*w));
        if (!w) {
            memset(onstack, 0, sizeof(onstack));
            /* counts unknown: clear only what needs no count */
            for (uint32_t i = 0; i < m->nparams; i++) {
                const ShmParam *p = &m->params[i];
                if ((p->flags & SHM_PF_OUT) && p->kind != SHM_PK_ARRAY && p->kind != SHM_PK_REF &&
                    load_ptr(args, i))
                    store_ptr(load_ptr(args, i), NULL);
            }
            return E_OUTOFMEMORY;
        }
    } else {
        /* only the records in use: a null call clears nothing */
        memset(onstack, 0, m->nparams * sizeof(*onstack));
    }
    ShmCallFrame call;
    memset(&call, 0, sizeof(call));
    call.method = method;
    int have_buffer = 0;
    uint64_t size = 0;

    HRESULT hr = proxy_prepare(m, args, w, &size);
    if (FAILED(hr))
        goto fail;
    hr = ch->vtbl->GetBuffer(ch, h, &call, (uint32_t)size);
    if (FAILED(hr))
        goto fail;
    have_buffer = 1;
    int records = 0;
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (p->kind != SHM_PK_INTERFACE || (p->flags & SHM_PF_OUT) || !load_ptr(args, i))
            continue;
        if (!call.marshaler) {
            hr = E_UNEXPECTED;
            goto fail;
        }
        hr = call.marshaler->vtbl->Marshal(call.marshaler, proxy_iid(m->params, i, args),
                                           load_ptr(args, i), &w[i].rec, &w[i].rec_size);
        if (FAILED(hr)) {
            w[i].rec = NULL;
            goto fail;
        }
        w[i].off = (uint32_t)shmc_align8(size);
        size = w[i].off + (uint64_t)w[i].rec_size;
        if (size > SHMC_MAX_FRAME) {
            hr = E_INVALIDARG;
            goto fail;
        }
        records = 1;
    }
    if (records) {
        hr = ch->vtbl->GetBuffer(ch, h, &call, (uint32_t)size);
        if (FAILED(hr))
            goto fail;
    }
    write_request(m, args, w, call.request, (uint32_t)size);
    free_records(m, w, call.marshaler, 0);
    hr = ch->vtbl->SendReceive(ch, h, &call);
    if (FAILED(hr))
        goto fail;

    shmc_frame f;
    HRESULT mhr;
    hr = reply_head(m, call.reply, call.reply_size, &mhr);
    if (FAILED(hr))
        goto fail;
    shmc_frame_init(&f, call.reply, call.reply_size, m->out_size);
    _Alignas(16) unsigned char fsmall[128];
    unsigned char *fheap;
    hr = copy_fixed(&f, m->out_size, fsmall, sizeof(fsmall), &fheap);
    if (SUCCEEDED(hr))
        hr = check_reply(m, args, w, &f);
    if (SUCCEEDED(hr))
        hr = take_reply(m, args, w, &f, call.marshaler);
    shmc_free(fheap);
    if (FAILED(hr))
        goto fail;
    ch->vtbl->FreeBuffer(ch, h, &call);
    if (w != onstack)
        shmc_free(w);
    return mhr;

fail:
    free_records(m, w, call.marshaler, 1);
    if (have_buffer)
        ch->vtbl->FreeBuffer(ch, h, &call);
    clear_outs(m, args, w);
    if (w != onstack)
        shmc_free(w);
    return hr;
}

/* ---- the object's side ------------------------------------------------------ */

typedef struct swork {
    void *ptr;       /* what the callee receives for pointer kinds; args[i] = &ptr */
    void *inner;     /* [out] pointer target the callee fills (string, array, interface) */
    void *owned;     /* stub allocation to free: copies, [out] buffers */
    uint64_t count;  /* ARRAY: before the call; ARRAY_ALLOC: after */
    ShmFrameRef ref; /* [in] ref from the request */
    int unmarshaled; /* [in] interface: Unmarshal was called */
    uint32_t off, len;
    void *rec; /* [out] interface record (task memory) */
    uint32_t rec_size;
} swork;

static const IID *stub_iid(const ShmMethod *m, uint32_t i, swork *w, void **args)
{
    const ShmParam *p = &m->params[i];
    if (!p->iid_param)
        return p->iid;
    uint32_t j = p->iid_param - 1u;
    return m->params[j].kind == SHM_PK_VALUE ? args[j] : w[j].ptr;
}

/* The request's steering values: refs and counts, checked. */
static HRESULT check_request(const ShmMethod *m, const shmc_frame *f, swork *w)
{
    const ShmParam *ps = m->params;
    ShmFrameRef onstack[SMALL_PARAMS];
    ShmFrameRef *refs =
        m->nparams <= SMALL_PARAMS ? onstack : shmc_malloc(sizeof(*refs) * m->nparams);
    if (!refs)
        return E_OUTOFMEMORY;
    uint32_t nrefs = 0;
    HRESULT hr = RPC_E_INVALID_DATA;
    /* the reply must be able to hold the [out] arrays asked for, or the
     * peer could make us allocate up to 4 GiB per array for nothing */
    uint64_t out = shmc_align8(m->out_size);
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->kind == SHM_PK_ARRAY) {
            const ShmParam *c = &ps[p->size_param - 1u];
            if (shmc_read_count(f->fixed + c->in_offset, c->elem_size,
                                (c->flags & SHM_PF_SIGNED) != 0, &w[i].count))
                goto done;
            if (w[i].count > UINT32_MAX || w[i].count * p->elem_size > UINT32_MAX)
                goto done;
            if (p->flags & SHM_PF_OUT) {
                out = shmc_align8(out) + w[i].count * p->elem_size;
                if (out > SHMC_MAX_FRAME)
                    goto done;
            }
        }
        if (p->in_offset == SHM_NO_SLOT || p->kind == SHM_PK_VALUE || p->kind == SHM_PK_REF)
            continue;
        ShmFrameRef r = shmc_frame_ref(f, p->in_offset);
        w[i].ref = r;
        if (p->kind == SHM_PK_INTERFACE && shmc_frame_ref_is_null(r)) {
            if (!shmc_frame_null_ok(r))
                goto done;
            continue;
        }
        uint32_t elem = p->kind == SHM_PK_INTERFACE ? 0 : p->elem_size;
        if (!shmc_frame_ref_ok(f, r, elem))
            goto done;
        if (p->kind == SHM_PK_STRING && r.length < p->elem_size)
            goto done;
        if (p->kind == SHM_PK_ARRAY && r.length != w[i].count * p->elem_size)
            goto done;
        refs[nrefs++] = r;
    }
    hr = shmc_frame_refs_disjoint(refs, nrefs) ? S_OK : RPC_E_INVALID_DATA;
done:
    if (refs != onstack)
        shmc_free(refs);
    return hr;
}

/* Frees what the stub allocated and releases the [in] interfaces. */
static void stub_cleanup(const ShmMethod *m, swork *w)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        shmc_free(w[i].owned);
        w[i].owned = NULL;
        if (m->params[i].kind == SHM_PK_INTERFACE && !(m->params[i].flags & SHM_PF_OUT)) {
            release_itf(w[i].ptr);
            w[i].ptr = NULL;
        }
    }
}

/* Frees or releases what the callee returned in [out] parameters. */
static void free_callee_outs(const ShmMethod *m, swork *w)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (!(p->flags & SHM_PF_OUT))
            continue;
        if (p->kind == SHM_PK_STRING || p->kind == SHM_PK_ARRAY_ALLOC)
            ShmCoTaskMemFree(w[i].inner);
        else if (p->kind == SHM_PK_INTERFACE)
            release_itf(w[i].inner);
        else
            continue;
        w[i].inner = NULL;
    }
}

static void free_out_records(const ShmMethod *m, swork *w, ShmItfMarshaler *mar, int release)
{
    for (uint32_t i = 0; i < m->nparams; i++) {
        if (!w[i].rec)
            continue;
        if (release && mar)
            mar->vtbl->ReleaseMarshalData(mar, w[i].rec, w[i].rec_size);
        ShmCoTaskMemFree(w[i].rec);
        w[i].rec = NULL;
    }
}

/* Builds the arguments: storage for values and fixed data, copies of
 * strings (checked on the copy), arrays in place or copied, [out] targets. */
static HRESULT stub_args(const ShmMethod *m, const shmc_frame *f, swork *w, void **args,
                         unsigned char *store)
{
    const ShmParam *ps = m->params;
    size_t pos = 0;
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        args[i] = &w[i].ptr;
        switch (p->kind) {
        case SHM_PK_VALUE:
        case SHM_PK_REF: {
            size_t n = (size_t)p->elem_size * p->count;
            unsigned char *d = store + pos;
            pos += (size_t)shmc_align8(n);
            if (p->in_offset != SHM_NO_SLOT)
                memcpy(d, f->fixed + p->in_offset, n);
            else
                memset(d, 0, n);
            if (p->kind == SHM_PK_VALUE)
                args[i] = d;
            else
                w[i].ptr = d;
            break;
        }
        case SHM_PK_STRING:
            if (p->flags & SHM_PF_OUT) {
                w[i].ptr = &w[i].inner;
                break;
            }
            w[i].owned = shmc_malloc(w[i].ref.length);
            if (!w[i].owned)
                return E_OUTOFMEMORY;
            memcpy(w[i].owned, f->base + w[i].ref.offset, w[i].ref.length);
            if (!shmc_string_ok(w[i].owned, w[i].ref.length, p->elem_size))
                return RPC_E_INVALID_DATA;
            w[i].ptr = w[i].owned;
            break;
        case SHM_PK_ARRAY: {
            size_t n = (size_t)(w[i].count * p->elem_size);
            const unsigned char *src = p->flags & SHM_PF_IN ? f->base + w[i].ref.offset : NULL;
            if (src && !(p->flags & SHM_PF_OUT) && (uintptr_t)src % p->elem_align == 0) {
                /* [in] pointer-free data, bounds checked: passed in place */
                w[i].ptr = (void *)(uintptr_t)src;
                break;
            }
            w[i].owned = src ? shmc_malloc(n) : shmc_calloc(1, n);
            if (!w[i].owned)
                return E_OUTOFMEMORY;
            if (src)
                memcpy(w[i].owned, src, n);
            w[i].ptr = w[i].owned;
            break;
        }
        case SHM_PK_ARRAY_ALLOC:
            w[i].ptr = &w[i].inner;
            break;
        case SHM_PK_INTERFACE:
            w[i].ptr = p->flags & SHM_PF_OUT ? (void *)&w[i].inner : NULL;
            break;
        }
    }
    return S_OK;
}

static HRESULT stub_unmarshal(const ShmMethod *m, const shmc_frame *f, swork *w, void **args,
                              ShmItfMarshaler *mar)
{
    HRESULT hr = S_OK;
    uint32_t i;
    for (i = 0; i < m->nparams; i++) {
        const ShmParam *p = &m->params[i];
        if (p->kind != SHM_PK_INTERFACE || (p->flags & SHM_PF_OUT) ||
            shmc_frame_ref_is_null(w[i].ref))
            continue;
        if (!mar) {
            hr = RPC_E_INVALID_DATA;
            break;
        }
        w[i].unmarshaled = 1;
        void *itf = NULL;
        hr = mar->vtbl->Unmarshal(mar, stub_iid(m, i, w, args), f->base + w[i].ref.offset,
                                  w[i].ref.length, &itf);
        if (FAILED(hr))
            break;
        w[i].ptr = itf;
    }
    if (FAILED(hr) && mar) {
        /* the records not read yet still hold references */
        for (uint32_t j = i + 1; j < m->nparams; j++) {
            const ShmParam *p = &m->params[j];
            if (p->kind == SHM_PK_INTERFACE && !(p->flags & SHM_PF_OUT) &&
                !shmc_frame_ref_is_null(w[j].ref))
                mar->vtbl->ReleaseMarshalData(mar, f->base + w[j].ref.offset, w[j].ref.length);
        }
    }
    return hr;
}

/* Sizes the reply of a successful call and marshals the [out] interfaces. */
static HRESULT stub_size_reply(const ShmMethod *m, swork *w, void **args, ShmItfMarshaler *mar,
                               uint64_t *size)
{
    const ShmParam *ps = m->params;
    uint64_t total = shmc_align8(m->out_size);
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (!(p->flags & SHM_PF_OUT))
            continue;
        uint64_t len;
        switch (p->kind) {
        case SHM_PK_STRING:
            if (!w[i].inner)
                continue;
            string_bytes(w[i].inner, p->elem_size, &len);
            break;
        case SHM_PK_ARRAY:
            len = w[i].count * p->elem_size;
            break;
        case SHM_PK_ARRAY_ALLOC: {
            uint32_t j = p->size_param - 1u;
            const ShmParam *c = &ps[j];
            const void *src = c->kind == SHM_PK_VALUE ? args[j] : w[j].ptr;
            if (shmc_read_count(src, c->elem_size, (c->flags & SHM_PF_SIGNED) != 0, &w[i].count) ||
                w[i].count > UINT32_MAX || (!w[i].inner && w[i].count))
                return RPC_E_SERVER_CANTMARSHAL_DATA; /* the callee broke the contract */
            if (!w[i].inner)
                continue;
            len = w[i].count * p->elem_size;
            break;
        }
        case SHM_PK_INTERFACE: {
            if (!w[i].inner)
                continue;
            if (!mar)
                return RPC_E_SERVER_CANTMARSHAL_DATA;
            HRESULT hr = mar->vtbl->Marshal(mar, stub_iid(m, i, w, args), w[i].inner, &w[i].rec,
                                            &w[i].rec_size);
            if (FAILED(hr)) {
                w[i].rec = NULL;
                return hr;
            }
            len = w[i].rec_size;
            break;
        }
        default:
            continue;
        }
        if (len > SHMC_MAX_FRAME)
            return RPC_E_SERVER_CANTMARSHAL_DATA;
        w[i].off = (uint32_t)shmc_align8(total);
        w[i].len = (uint32_t)len;
        total = w[i].off + len;
        if (total > SHMC_MAX_FRAME)
            return RPC_E_SERVER_CANTMARSHAL_DATA;
    }
    *size = total;
    return S_OK;
}

static void write_reply(const ShmMethod *m, swork *w, HRESULT mhr, unsigned char *rep,
                        uint32_t size)
{
    const ShmParam *ps = m->params;
    size_t fixed = (size_t)shmc_align8(m->out_size);
    memset(rep, 0, fixed < size ? fixed : size);
    memcpy(rep, &mhr, 4);
    for (uint32_t i = 0; i < m->nparams; i++) {
        const ShmParam *p = &ps[i];
        if (p->out_offset == SHM_NO_SLOT)
            continue;
        const void *data = NULL;
        switch (p->kind) {
        case SHM_PK_REF:
            memcpy(rep + p->out_offset, w[i].ptr, (size_t)p->elem_size * p->count);
            continue;
        case SHM_PK_ARRAY:
            data = w[i].ptr;
            break;
        case SHM_PK_STRING:
        case SHM_PK_ARRAY_ALLOC:
            data = w[i].inner;
            break;
        case SHM_PK_INTERFACE:
            data = w[i].rec;
            break;
        }
        if (!data) {
            put_ref(rep, p->out_offset, SHM_NULL_REF, 0);
            continue;
        }
        put_ref(rep, p->out_offset, w[i].off, w[i].len);
        memcpy(rep + w[i].off, data, w[i].len);
        zero_pad(rep, size, w[i].off + w[i].len, w[i].off + shmc_align8(w[i].len));
    }
}

/* A method without parameters (see proxy_invoke_bare): the call, and its
 * HRESULT back, in a reply of the size the general path gives it. */
static HRESULT stub_invoke_bare(const ShmMethod *m, void *itf, ShmStubReply *reply)
{
    void *noargs[1] = {NULL};
    HRESULT mhr = m->call(itf, noargs);
    uint32_t size = FAILED(mhr) ? m->out_size : (uint32_t)shmc_align8(m->out_size);
    void *buf = NULL;
    HRESULT hr = reply->vtbl->GetBuffer(reply, size, &buf);
    if (SUCCEEDED(hr) && !buf)
        hr = E_UNEXPECTED;
    if (FAILED(hr))
        return hr;
    write_reply(m, NULL, mhr, buf, size);
    return S_OK;
}

HRESULT ShmStubInvoke(const ShmInterfaceInfo *info, void *itf, uint32_t method, const void *request,
                      uint32_t request_size, ShmItfMarshaler *marshaler, ShmStubReply *reply)
{
    if (!info || !itf || !reply || (!request && request_size))
        return E_INVALIDARG;
    if (method < 3 || method >= info->nmethods || !info->methods[method].call)
        return RPC_E_INVALIDMETHOD;
    const ShmMethod *m = &info->methods[method];
    if (request_size < m->in_size || request_size > SHMC_MAX_FRAME)
        return RPC_E_INVALID_DATA;
    if (!m->nparams)
        return stub_invoke_bare(m, itf, reply);
    shmc_frame f;
    shmc_frame_init(&f, request, request_size, m->in_size);

    swork wsmall[SMALL_PARAMS];
    void *asmall[SMALL_PARAMS];
    swork *w = wsmall;
    void **args = asmall;
    /* argument storage: values and fixed data, each 8-aligned */
    _Alignas(16) unsigned char ssmall[256];
    unsigned char *store = ssmall;
    uint64_t store_size = 0;
    for (uint32_t i = 0; i < m->nparams; i++)
        if (m->params[i].kind == SHM_PK_VALUE || m->params[i].kind == SHM_PK_REF)
            store_size += shmc_align8((uint64_t)m->params[i].elem_size * m->params[i].count);
    if (store_size > SIZE_MAX / 2)
        return E_OUTOFMEMORY;
    HRESULT hr = E_OUTOFMEMORY;
    if (m->nparams > SMALL_PARAMS) {
        w = shmc_calloc(m->nparams, sizeof(*w));
        args = shmc_calloc(m->nparams, sizeof(*args));
        if (!w || !args)
            goto out_work;
    } else {
        memset(wsmall, 0, m->nparams * sizeof(*wsmall)); /* the records in use */
    }
    if (store_size > sizeof(ssmall)) {
        store = shmc_malloc((size_t)store_size);
        if (!store)
            goto out_work;
    }

    _Alignas(16) unsigned char fsmall[256];
    unsigned char *fheap;
    hr = copy_fixed(&f, m->in_size, fsmall, sizeof(fsmall), &fheap);
    if (FAILED(hr))
        goto out_store;
    hr = check_request(m, &f, w);
    if (FAILED(hr))
        goto out_fixed;
    hr = stub_args(m, &f, w, args, store);
    if (FAILED(hr))
        goto out_args;
    hr = stub_unmarshal(m, &f, w, args, marshaler);
    if (FAILED(hr))
        goto out_args;

    HRESULT mhr = m->call(itf, args);

    /* the [in] interfaces were the callee's to AddRef if it keeps them */
    for (uint32_t i = 0; i < m->nparams; i++) {
        if (m->params[i].kind == SHM_PK_INTERFACE && !(m->params[i].flags & SHM_PF_OUT)) {
            release_itf(w[i].ptr);
            w[i].ptr = NULL;
        }
    }
    uint64_t size = m->out_size;
    if (FAILED(mhr)) {
        free_callee_outs(m, w);
    } else {
        hr = stub_size_reply(m, w, args, marshaler, &size);
        if (FAILED(hr)) {
            free_out_records(m, w, marshaler, 1);
            free_callee_outs(m, w);
            goto out_args;
        }
    }
    void *buf = NULL;
    hr = reply->vtbl->GetBuffer(reply, (uint32_t)size, &buf);
    if (SUCCEEDED(hr) && !buf)
        hr = E_UNEXPECTED;
    if (FAILED(hr)) {
        free_out_records(m, w, marshaler, 1);
        free_callee_outs(m, w);
        goto out_args;
    }
    write_reply(m, w, mhr, buf, (uint32_t)size);
    /* the records now hold the [out] interfaces; the data was copied */
    free_out_records(m, w, marshaler, 0);
    free_callee_outs(m, w);
    hr = S_OK;

out_args:
    stub_cleanup(m, w);
out_fixed:
    shmc_free(fheap);
out_store:
    if (store != ssmall)
        shmc_free(store);
out_work:
    if (w != wsmall)
        shmc_free(w);
    if (args != asmall)
        shmc_free(args);
    return hr;
}
