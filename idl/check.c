/*
 * check.c - semantic checks, and the classification of every parameter
 * into the kinds of <shmcom/proxystub.h> (value, ref, string, array,
 * callee-allocated array, interface). What the runtime engine can marshal
 * is decided here, so that generated code never meets a case the engine
 * does not handle.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

idl_type *idl_resolve(idl_type *t)
{
    while (t && t->kind == TY_ALIAS)
        t = t->alias.spec;
    return t;
}

int idl_is_data_type(idl_type *t)
{
    t = idl_resolve(t);
    return t->kind == TY_BASE || t->kind == TY_GUID || t->kind == TY_ENUM || t->kind == TY_STRUCT;
}

void idl_check_struct(idl_ctx *c, idl_struct *s)
{
    const char *sname = s->name ? s->name : s->tag;
    for (int i = 0; i < s->nfields; i++) {
        idl_field *f = &s->fields[i];
        idl_type *t = idl_resolve(f->type.spec);
        /* (an anonymous struct gets its typedef name after its body) */
        const char *of = sname ? idl_printf(c, " of struct '%s'", sname) : "";
        if (f->type.nptr || t->kind == TY_PTRALIAS)
            idl_error(c, f->loc, "field '%s'%s is a pointer: structs must be pointer-free", f->name,
                      of);
        if (t->kind == TY_INTERFACE)
            idl_error(c, f->loc, "field '%s'%s is an interface: structs must be pointer-free",
                      f->name, of);
        if (t->kind == TY_VOID)
            idl_error(c, f->loc, "field '%s' has type void", f->name);
    }
    idl_layout_struct(c, s);
}

/* ---- parameters ---------------------------------------------------------------- */

typedef struct ptype {
    idl_type *base; /* resolved, behind pointer aliases */
    int nptr;       /* pointers in total (declarator and pointer alias) */
    int implies_string;
} ptype;

static ptype param_type(const idl_decltype *d)
{
    ptype r;
    idl_type *t = idl_resolve(d->spec);
    r.nptr = d->nptr;
    r.implies_string = 0;
    if (t->kind == TY_PTRALIAS) {
        r.nptr += t->ptr_levels;
        r.implies_string = t->implies_string;
        t = idl_resolve(t->ptr_target);
    }
    r.base = t;
    return r;
}

static int find_param(idl_method *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name))
            return i;
    return -1;
}

static int is_integer(idl_type *t)
{
    return t->kind == TY_BASE && t->is_int;
}

static void classify(idl_ctx *c, idl_method *m, int idx)
{
    idl_param *pa = &m->params[idx];
    ptype pt = param_type(&pa->type);
    int in = pa->a_in || !pa->a_out; /* no direction is [in], as in MIDL */
    int out = pa->a_out;
    pa->flags = (in ? PF_IN : 0) | (out ? PF_OUT : 0) | (pa->a_retval ? PF_RETVAL : 0);
    int is_string = pa->a_string || pt.implies_string;
    idl_type *b = pt.base;

    if (b->kind == TY_VOID && pt.nptr == 0)
        idl_error(c, pa->loc, "parameter '%s' has type void", pa->name);
    if (pa->a_string && !(b->kind == TY_BASE && b->char_width && pt.nptr >= 1))
        idl_error(c, pa->a_string_loc,
                  "[string] applies to pointers to char, byte, WCHAR or OLECHAR only");
    if (pa->a_retval) {
        if (!out)
            idl_error(c, pa->a_retval_loc, "[retval] parameter '%s' must be [out]", pa->name);
        if (idx != m->nparams - 1)
            idl_error(c, pa->a_retval_loc, "[retval] parameter '%s' must be the last one",
                      pa->name);
    }
    if (pa->iid_is && !(b->kind == TY_INTERFACE || b->kind == TY_VOID))
        idl_error(c, pa->iid_is_loc, "[iid_is] applies to interface pointers only");
    if (pa->size_is.present && is_string)
        idl_error(c, pa->size_is.loc, "[string] together with [size_is] is not supported");

    if (pa->type.ndims) {
        if (pt.nptr)
            idl_error(c, pa->loc, "arrays of pointers are not supported");
        if (!idl_is_data_type(b))
            idl_error(c, pa->loc, "arrays of '%s' are not supported", b->name);
        if (pa->size_is.present)
            idl_error(c, pa->size_is.loc, "[size_is] on a fixed array is not supported");
        /* a fixed array parameter is a pointer in C: passed by reference */
        pa->kind = PK_REF;
        pa->elem = b;
        return;
    }
    if (pt.nptr == 0) {
        if (b->kind == TY_INTERFACE)
            idl_error(c, pa->loc, "interface '%s' must be passed by pointer", b->name);
        if (out)
            idl_error(c, pa->a_out_loc, "[out] parameter '%s' must be a pointer", pa->name);
        if (pa->size_is.present)
            idl_error(c, pa->size_is.loc, "[size_is] applies to pointers only");
        pa->kind = PK_VALUE;
        pa->elem = b;
        if (is_integer(b) && b->is_signed)
            pa->flags |= PF_SIGNED;
        return;
    }
    if (b->kind == TY_INTERFACE || (b->kind == TY_VOID && pa->iid_is)) {
        if (pt.nptr == 1) {
            if (b->kind == TY_VOID)
                idl_error(c, pa->loc, "[iid_is] on 'void *' is not supported; use IUnknown *");
            if (out)
                idl_error(c, pa->a_out_loc,
                          "[out] interface pointer '%s' needs two levels of indirection "
                          "(%s **)",
                          pa->name, b->name);
        } else if (pt.nptr == 2) {
            if (in && out)
                idl_error(c, pa->loc, "[in, out] interface pointers are not supported");
            if (!out)
                idl_error(c, pa->loc, "[in] '%s **' is not supported; pass '%s *'", b->name,
                          b->name);
        } else {
            idl_error(c, pa->loc, "too many levels of indirection for an interface pointer");
        }
        if (pa->size_is.present)
            idl_error(c, pa->size_is.loc, "arrays of interface pointers are not supported");
        pa->kind = PK_INTERFACE;
        pa->itf = b->kind == TY_INTERFACE ? b->itf : NULL;
        if (pa->itf && !pa->itf->defined)
            idl_error(c, pa->loc, "interface '%s' is declared but never defined", b->name);
        if (pa->itf && pa->itf->a_local && !pa->iid_is)
            idl_error(c, pa->loc, "interface '%s' is [local]: it cannot be marshaled", b->name);
        return;
    }
    if (b->kind == TY_VOID) {
        if (pt.nptr == 2 && out)
            idl_error(c, pa->loc, "[out] 'void **' parameter '%s' needs [iid_is]", pa->name);
        idl_error(c, pa->loc,
                  "'void *' parameters are not supported (use [size_is] with a byte array)");
    }
    if (is_string) {
        if (!(b->kind == TY_BASE && b->char_width))
            idl_error(c, pa->loc, "[string] applies to pointers to char or WCHAR only");
        if (pt.nptr == 1) {
            if (out)
                idl_error(c, pa->loc,
                          "[out] string '%s' must be a pointer to a pointer (char **); "
                          "caller-allocated string buffers are not supported",
                          pa->name);
        } else if (pt.nptr == 2) {
            if (in && out)
                idl_error(c, pa->loc, "[in, out] strings are not supported");
            if (!out)
                idl_error(c, pa->loc, "[in] string '%s' must be a single pointer", pa->name);
        } else {
            idl_error(c, pa->loc, "too many levels of indirection for a string");
        }
        pa->kind = PK_STRING;
        pa->elem = b;
        return;
    }
    if (!idl_is_data_type(b))
        idl_error(c, pa->loc, "pointers to '%s' are not supported", b->name);
    if (pa->size_is.present) {
        if (pt.nptr == 1) {
            if (pa->size_is.level != 0)
                idl_error(c, pa->size_is.loc,
                          "size_is(, ...) describes a second pointer level; '%s' has one",
                          pa->name);
            pa->kind = PK_ARRAY;
        } else if (pt.nptr == 2) {
            if (pa->size_is.level != 1)
                idl_error(c, pa->size_is.loc,
                          "'%s' is a pointer to an array the callee allocates: write "
                          "size_is(, ...)",
                          pa->name);
            if (!out || in)
                idl_error(c, pa->loc, "callee-allocated array '%s' must be [out] only", pa->name);
            pa->kind = PK_ARRAY_ALLOC;
        } else {
            idl_error(c, pa->loc, "too many levels of indirection for an array");
        }
        pa->elem = b;
        return;
    }
    if (pt.nptr > 1)
        idl_error(c, pa->loc,
                  "pointers to pointers are supported only for [out] interfaces, strings and "
                  "arrays");
    pa->kind = PK_REF;
    pa->elem = b;
}

/* Resolves size_is and iid_is once every parameter is classified. */
static void link_params(idl_ctx *c, idl_method *m, int idx)
{
    idl_param *pa = &m->params[idx];
    if (pa->size_is.present) {
        int j = find_param(m, pa->size_is.name);
        if (j < 0)
            idl_error(c, pa->size_is.loc, "size_is: no parameter named '%s'", pa->size_is.name);
        if (j == idx)
            idl_error(c, pa->size_is.loc, "size_is: '%s' cannot size itself", pa->name);
        idl_param *n = &m->params[j];
        ptype nt = param_type(&n->type);
        if (!is_integer(nt.base) || n->type.ndims || n->kind == PK_STRING)
            idl_error(c, pa->size_is.loc, "size_is: parameter '%s' is not an integer", n->name);
        if (pa->size_is.deref && n->kind != PK_REF)
            idl_error(c, pa->size_is.loc, "size_is: '%s' is not a pointer", n->name);
        if (!pa->size_is.deref && n->kind != PK_VALUE)
            idl_error(c, pa->size_is.loc, "size_is: '%s' is a pointer; write *%s", n->name,
                      n->name);
        if (pa->kind == PK_ARRAY && !(n->flags & PF_IN))
            idl_error(c, pa->size_is.loc,
                      "size_is: '%s' must be [in]: the caller's buffer size is needed before "
                      "the call",
                      n->name);
        if (nt.base->is_signed)
            n->flags |= PF_SIGNED;
        pa->size_param = j + 1;
    }
    if (pa->iid_is) {
        int j = find_param(m, pa->iid_is);
        if (j < 0)
            idl_error(c, pa->iid_is_loc, "iid_is: no parameter named '%s'", pa->iid_is);
        idl_param *n = &m->params[j];
        ptype nt = param_type(&n->type);
        /* MIDL and widl want a pointer (REFIID, const IID *) too */
        if (nt.base->kind != TY_GUID || n->type.ndims || n->kind != PK_REF)
            idl_error(c, pa->iid_is_loc, "iid_is: parameter '%s' is not a pointer to an IID",
                      n->name);
        if (!(n->flags & PF_IN) || (n->flags & PF_OUT))
            idl_error(c, pa->iid_is_loc, "iid_is: parameter '%s' must be [in] only", n->name);
        pa->iid_param = j + 1;
    }
}

static void check_local_param(idl_ctx *c, idl_param *pa)
{
    /* [local] interfaces get a header only: any parameter the header can
     * spell is fine, but attributes must still make sense */
    ptype pt = param_type(&pa->type);
    if (pt.base->kind == TY_VOID && pt.nptr == 0)
        idl_error(c, pa->loc, "parameter '%s' has type void", pa->name);
    if (pt.base->kind == TY_INTERFACE && pt.nptr == 0)
        idl_error(c, pa->loc, "interface '%s' must be passed by pointer", pt.base->name);
    if (pa->a_out && pt.nptr == 0 && pa->type.ndims == 0)
        idl_error(c, pa->a_out_loc, "[out] parameter '%s' must be a pointer", pa->name);
}

static int is_hresult(const idl_decltype *d)
{
    return d->nptr == 0 && d->spec->builtin && !strcmp(d->spec->name, "HRESULT");
}

/* ---- interfaces ------------------------------------------------------------------- */

static void check_iface(idl_ctx *c, idl_iface *itf);

static void resolve_base(idl_ctx *c, idl_iface *itf)
{
    if (!itf->base_name) {
        if (itf != c->iunknown)
            idl_error(c, itf->loc, "interface '%s' needs a base interface (IUnknown or another)",
                      itf->name);
        return;
    }
    idl_type *t = idl_type_find(c, itf->base_name);
    if (!t)
        idl_error(c, itf->base_loc, "unknown base interface '%s'", itf->base_name);
    if (t->kind != TY_INTERFACE)
        idl_error(c, itf->base_loc, "'%s' is not an interface", itf->base_name);
    idl_iface *b = t->itf;
    if (b->builtin && b != c->iunknown)
        idl_error(c, itf->base_loc,
                  "cannot inherit from '%s': shmidl knows its IID, not its methods; inherit "
                  "from IUnknown or an interface defined in IDL",
                  b->name);
    if (!b->defined)
        idl_error(c, itf->base_loc, "base interface '%s' is declared but never defined", b->name);
    itf->base = b;
}

static void check_iface(idl_ctx *c, idl_iface *itf)
{
    if (itf->checked == 2)
        return;
    if (itf->checked == 1) {
        /* the cycle goes through itf: name it from there */
        char chain[512];
        size_t n = (size_t)snprintf(chain, sizeof(chain), "%s", itf->name);
        idl_iface *i = itf->base;
        for (int k = 0; i && k < 64 && n < sizeof(chain); k++, i = i->base) {
            n += (size_t)snprintf(chain + n, sizeof(chain) - n, " -> %s", i->name);
            if (i == itf)
                break;
        }
        idl_error(c, itf->base_loc, "inheritance cycle: %s", chain);
    }
    itf->checked = 1;
    if (!itf->a_object)
        idl_error(c, itf->loc,
                  "interface '%s' lacks the [object] attribute; RPC interfaces are not "
                  "supported",
                  itf->name);
    if (!itf->has_uuid)
        idl_error(c, itf->loc, "interface '%s' has no [uuid]", itf->name);
    resolve_base(c, itf);
    if (itf->base) {
        check_iface(c, itf->base);
        if (itf->base->a_local && !itf->a_local)
            idl_error(c, itf->base_loc,
                      "'%s' cannot derive from [local] interface '%s', which has no proxy",
                      itf->name, itf->base->name);
    }
    int nslots = itf->base ? itf->base->nslots : 3;
    for (int i = 0; i < itf->nmethods; i++) {
        idl_method *m = &itf->methods[i];
        for (int j = 0; j < i; j++)
            if (!strcmp(itf->methods[j].name, m->name))
                idl_error(c, m->loc, "duplicate method '%s' in interface '%s'", m->name, itf->name);
        for (idl_iface *b = itf->base; b; b = b->base) {
            if (b == c->iunknown) {
                if (!strcmp(m->name, "QueryInterface") || !strcmp(m->name, "AddRef") ||
                    !strcmp(m->name, "Release"))
                    idl_error(c, m->loc, "method '%s' is already defined by base IUnknown",
                              m->name);
                break;
            }
            for (int j = 0; j < b->nmethods; j++)
                if (!strcmp(b->methods[j].name, m->name))
                    idl_error(c, m->loc, "method '%s' is already defined by base '%s'", m->name,
                              b->name);
        }
        if (itf->a_local) {
            for (int j = 0; j < m->nparams; j++)
                check_local_param(c, &m->params[j]);
            continue;
        }
        if (!is_hresult(&m->ret))
            idl_error(c, m->loc, "method '%s' must return HRESULT", m->name);
        for (int j = 0; j < m->nparams; j++)
            classify(c, m, j);
        for (int j = 0; j < m->nparams; j++)
            link_params(c, m, j);
        idl_layout_method(c, m);
    }
    itf->nslots = nslots + itf->nmethods;
    itf->checked = 2;
}

void idl_check(idl_ctx *c)
{
    for (int i = 0; i < c->nifaces; i++) {
        idl_iface *itf = c->ifaces[i];
        if (itf->builtin)
            continue;
        if (!itf->defined) {
            if (!itf->imported)
                continue; /* a forward declaration may stay one if only the header needs it */
            continue;
        }
        check_iface(c, itf);
    }
    for (int i = 0; i < c->nifaces; i++) {
        idl_iface *a = c->ifaces[i];
        if (!a->defined || a->builtin)
            continue;
        for (int j = 0; j < i; j++) {
            idl_iface *b = c->ifaces[j];
            if (b->defined && !memcmp(a->uuid, b->uuid, 16))
                idl_error(c, a->uuid_loc, "uuid of '%s' is the same as that of '%s'", a->name,
                          b->name);
        }
    }
}
