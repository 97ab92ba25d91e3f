/*
 * layout.c - sizes and alignments, computed from fixed widths and natural
 * alignment (never from the C compiler's layout, which the generated code
 * checks with static assertions instead), and the frame layout of every
 * method:
 *
 *   request: | [in] slots, in parameter order, each naturally aligned  | variable part
 *   reply:   | HRESULT | [out] slots, in parameter order               | variable part
 *
 * A slot holds fixed data (a value, or what a ref points at) or a
 * ShmFrameRef {u32 offset, u32 length} (4-aligned) for strings, sized
 * arrays and interface records. See <shmcom/proxystub.h>.
 */
#include "internal.h"

#define MAX_SIZE 0x7FFFFFFFu

static uint32_t align_up(idl_ctx *c, uint64_t v, uint32_t a, idl_loc loc)
{
    v = (v + a - 1) / a * a;
    if (v > MAX_SIZE)
        idl_error(c, loc, "type or frame larger than 2 GiB");
    return (uint32_t)v;
}

static void type_layout(idl_ctx *c, idl_type *t, idl_loc loc, uint32_t *size, uint32_t *align)
{
    t = idl_resolve(t);
    switch (t->kind) {
    case TY_BASE:
    case TY_GUID:
        *size = t->size;
        *align = t->align;
        return;
    case TY_ENUM:
        *size = *align = 4; /* MIDL enums are 32-bit in memory */
        return;
    case TY_STRUCT:
        *size = t->st->size;
        *align = t->st->align;
        return;
    default:
        idl_error(c, loc, "'%s' has no fixed size", t->name);
    }
}

void idl_data_layout(idl_ctx *c, const idl_decltype *d, idl_loc loc, uint32_t *size,
                     uint32_t *align)
{
    type_layout(c, d->spec, loc, size, align);
    uint64_t s = *size;
    for (int i = 0; i < d->ndims; i++) {
        s *= d->dims[i];
        if (s > MAX_SIZE)
            idl_error(c, loc, "type or frame larger than 2 GiB");
    }
    *size = (uint32_t)s;
}

void idl_layout_struct(idl_ctx *c, idl_struct *s)
{
    uint64_t off = 0;
    uint32_t align = 1;
    for (int i = 0; i < s->nfields; i++) {
        idl_field *f = &s->fields[i];
        idl_data_layout(c, &f->type, f->loc, &f->size, &f->align);
        off = align_up(c, off, f->align, f->loc);
        f->offset = (uint32_t)off;
        off += f->size;
        if (f->align > align)
            align = f->align;
    }
    s->size = align_up(c, off, align, s->loc);
    s->align = align;
}

void idl_layout_method(idl_ctx *c, idl_method *m)
{
    uint64_t in = 0, out = 4; /* the reply starts with the HRESULT */
    for (int i = 0; i < m->nparams; i++) {
        idl_param *p = &m->params[i];
        uint32_t size, align;
        p->count = 1;
        switch (p->kind) {
        case PK_VALUE:
        case PK_REF: {
            type_layout(c, p->elem, p->loc, &p->elem_size, &p->elem_align);
            uint64_t n = 1;
            for (int k = 0; k < p->type.ndims; k++)
                n *= p->type.dims[k];
            if (n * p->elem_size > MAX_SIZE)
                idl_error(c, p->loc, "type or frame larger than 2 GiB");
            p->count = (uint32_t)n;
            size = p->elem_size * p->count;
            align = p->elem_align;
            break;
        }
        case PK_STRING:
            p->elem_size = p->elem_align = (uint32_t)idl_resolve(p->elem)->char_width;
            size = 8;
            align = 4;
            break;
        case PK_ARRAY:
        case PK_ARRAY_ALLOC:
            type_layout(c, p->elem, p->loc, &p->elem_size, &p->elem_align);
            size = 8;
            align = 4;
            break;
        default: /* PK_INTERFACE */
            p->elem_size = p->elem_align = 0;
            size = 8;
            align = 4;
            break;
        }
        p->in_offset = p->out_offset = IDL_NO_SLOT;
        int in_slot = (p->flags & PF_IN) && p->kind != PK_ARRAY_ALLOC;
        int out_slot = (p->flags & PF_OUT) != 0;
        if (in_slot) {
            in = align_up(c, in, align, p->loc);
            p->in_offset = (uint32_t)in;
            in += size;
        }
        if (out_slot) {
            out = align_up(c, out, align, p->loc);
            p->out_offset = (uint32_t)out;
            out += size;
        }
        if (in > MAX_SIZE || out > MAX_SIZE)
            idl_error(c, p->loc, "type or frame larger than 2 GiB");
    }
    m->in_size = (uint32_t)in;
    m->out_size = (uint32_t)out;
}
