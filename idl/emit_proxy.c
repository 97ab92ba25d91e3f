/*
 * emit_proxy.c - FILE_p.c: the IIDs, static assertions that the C layout
 * of every struct is the one the frames use, and for each interface that
 * is not [local]: typed proxy thunks (which pass their arguments to
 * ShmProxyInvoke), stub call thunks (which call the object's method with
 * the arguments ShmStubInvoke unmarshaled), the parameter and method
 * tables with the offsets layout.c computed, the proxy vtable, and finally
 * FILE_ProxyFileInfo.
 *
 * The tables and thunks are the only per-interface code; framing and every
 * bounds check are in the runtime's engine (runtime/psengine.c).
 */
#include "internal.h"

#include <inttypes.h>
#include <string.h>

static const char *const kind_names[] = {"0",
                                         "SHM_PK_VALUE",
                                         "SHM_PK_REF",
                                         "SHM_PK_STRING",
                                         "SHM_PK_ARRAY",
                                         "SHM_PK_ARRAY_ALLOC",
                                         "SHM_PK_INTERFACE"};

static void put_flags(idl_ctx *c, idl_buf *b, int flags)
{
    static const char *const names[] = {"SHM_PF_IN", "SHM_PF_OUT", "SHM_PF_RETVAL",
                                        "SHM_PF_SIGNED"};
    int first = 1;
    for (int i = 0; i < 4; i++) {
        if (flags & (1 << i)) {
            idl_buf_printf(c, b, "%s%s", first ? "" : " | ", names[i]);
            first = 0;
        }
    }
    if (first)
        idl_buf_puts(c, b, "0");
}

static void put_slot(idl_ctx *c, idl_buf *b, uint32_t v)
{
    if (v == IDL_NO_SLOT)
        idl_buf_puts(c, b, "SHM_NO_SLOT");
    else
        idl_buf_printf(c, b, "%" PRIu32, v);
}

static void put_iid(idl_ctx *c, idl_buf *b, const uint8_t *u)
{
    idl_buf_printf(c, b,
                   "{0x%02x%02x%02x%02x, 0x%02x%02x, 0x%02x%02x, {0x%02x, 0x%02x, 0x%02x, 0x%02x, "
                   "0x%02x, 0x%02x, 0x%02x, 0x%02x}}",
                   u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
                   u[13], u[14], u[15]);
}

/* The C type of a parameter as a function receives it (arrays decay). */
static void put_param_ctype(idl_ctx *c, idl_buf *b, const idl_decltype *d)
{
    idl_decltype e = *d;
    if (d->ndims == 0) {
        idl_put_decl(c, b, &e, "", 1);
        return;
    }
    e.ndims = 0;
    if (d->ndims == 1) {
        e.nptr++;
        idl_put_decl(c, b, &e, "", 1);
        return;
    }
    idl_put_decl(c, b, &e, "(*)", 1);
    for (int i = 1; i < d->ndims; i++)
        idl_buf_printf(c, b, "[%" PRIu32 "]", d->dims[i]);
}

static int is_pointer_param(const idl_param *p)
{
    return p->kind != PK_VALUE;
}

static void emit_layout_asserts(idl_ctx *c, idl_buf *b)
{
    int any = 0;
    for (idl_item *it = c->items; it; it = it->next) {
        if (it->kind == IT_STRUCT) {
            idl_struct *s = it->st;
            const char *nm = it->st_typedef ? it->st_typedef : s->type->cname;
            idl_buf_printf(c, b,
                           "_Static_assert(sizeof(%s) == %" PRIu32 " && _Alignof(%s) == %" PRIu32
                           ", \"%s: C layout differs from the frame layout\");\n",
                           nm, s->size, nm, s->align, nm);
            for (int i = 0; i < s->nfields; i++)
                idl_buf_printf(c, b,
                               "_Static_assert(offsetof(%s, %s) == %" PRIu32
                               ", \"%s.%s: C layout differs from the frame layout\");\n",
                               nm, s->fields[i].name, s->fields[i].offset, nm, s->fields[i].name);
            any = 1;
        } else if (it->kind == IT_ENUM) {
            const char *nm = it->en->name ? it->en->name : it->en->type->cname;
            idl_buf_printf(
                c, b, "_Static_assert(sizeof(%s) == 4, \"%s: enums must be 4 bytes\");\n", nm, nm);
            any = 1;
        }
    }
    if (any)
        idl_buf_puts(c, b, "\n");
}

static void emit_proxy_thunk(idl_ctx *c, idl_buf *b, idl_iface *itf, idl_method *m, int slot)
{
    idl_buf_puts(c, b, "static ");
    idl_put_decl(c, b, &m->ret, "", 0);
    idl_buf_printf(c, b, " STDMETHODCALLTYPE %s_%s_Proxy(%s *This", itf->name, m->name, itf->name);
    for (int i = 0; i < m->nparams; i++) {
        idl_buf_puts(c, b, ", ");
        idl_put_decl(c, b, &m->params[i].type, m->params[i].name, 1);
    }
    idl_buf_puts(c, b, ")\n{\n");
    if (m->nparams == 0) {
        idl_buf_printf(c, b, "    return ShmProxyInvoke(This, %d, NULL);\n}\n\n", slot);
        return;
    }
    idl_buf_printf(c, b, "    void *args[%d];\n", m->nparams);
    for (int i = 0; i < m->nparams; i++)
        idl_buf_printf(c, b, "    args[%d] = &%s;\n", i, m->params[i].name);
    idl_buf_printf(c, b, "    return ShmProxyInvoke(This, %d, args);\n}\n\n", slot);
}

static void emit_call_thunk(idl_ctx *c, idl_buf *b, idl_iface *itf, idl_method *m)
{
    idl_buf_printf(c, b, "static HRESULT %s_%s_Call(void *itf, void **args)\n{\n", itf->name,
                   m->name);
    idl_buf_printf(c, b, "    %s *This = (%s *)itf;\n", itf->name, itf->name);
    if (m->nparams == 0)
        idl_buf_puts(c, b, "    (void)args;\n");
    idl_buf_printf(c, b, "    return This->lpVtbl->%s(This", m->name);
    for (int i = 0; i < m->nparams; i++) {
        const idl_param *p = &m->params[i];
        idl_buf_puts(c, b, ",\n        ");
        /* pointers are stored by the engine as void *: read them as such */
        if (is_pointer_param(p)) {
            idl_buf_puts(c, b, "(");
            put_param_ctype(c, b, &p->type);
            idl_buf_printf(c, b, ")*(void **)args[%d]", i);
        } else {
            idl_buf_puts(c, b, "*(");
            put_param_ctype(c, b, &p->type);
            idl_buf_printf(c, b, " *)args[%d]", i);
        }
    }
    idl_buf_puts(c, b, ");\n}\n\n");
}

static void emit_params(idl_ctx *c, idl_buf *b, idl_iface *itf, idl_method *m)
{
    if (m->nparams == 0)
        return;
    idl_buf_printf(c, b, "static const ShmParam %s_%s_Params[] = {\n", itf->name, m->name);
    for (int i = 0; i < m->nparams; i++) {
        const idl_param *p = &m->params[i];
        idl_buf_printf(c, b, "    /* %s */\n    {%s, ", p->name, kind_names[p->kind]);
        put_flags(c, b, p->flags);
        idl_buf_printf(c, b, ", %d, %d, 0, %" PRIu32 ", %" PRIu32 ", %" PRIu32 ", ", p->size_param,
                       p->iid_param, p->elem_size, p->elem_align, p->count);
        put_slot(c, b, p->in_offset);
        idl_buf_puts(c, b, ", ");
        put_slot(c, b, p->out_offset);
        if (p->kind == PK_INTERFACE && !p->iid_param)
            idl_buf_printf(c, b, ", &IID_%s},\n", p->itf->name);
        else
            idl_buf_puts(c, b, ", NULL},\n");
    }
    idl_buf_puts(c, b, "};\n\n");
}

static void emit_iface(idl_ctx *c, idl_buf *b, idl_iface *itf)
{
    const char *nm = itf->name;
    int max = itf->nslots;
    idl_method **all = idl_alloc(c, sizeof(*all) * (size_t)max);
    int n = idl_all_methods(itf, all, max);

    idl_buf_printf(c, b, "/* ---- %s ---- */\n\n", nm);
    idl_buf_printf(c, b,
                   "static HRESULT STDMETHODCALLTYPE %s_QueryInterface_Proxy(%s *This, REFIID "
                   "riid, void **ppvObject)\n{\n    return ShmProxyQueryInterface(This, riid, "
                   "ppvObject);\n}\n\n",
                   nm, nm);
    idl_buf_printf(c, b,
                   "static ULONG STDMETHODCALLTYPE %s_AddRef_Proxy(%s *This)\n{\n    return "
                   "ShmProxyAddRef(This);\n}\n\n",
                   nm, nm);
    idl_buf_printf(c, b,
                   "static ULONG STDMETHODCALLTYPE %s_Release_Proxy(%s *This)\n{\n    return "
                   "ShmProxyRelease(This);\n}\n\n",
                   nm, nm);
    for (int i = 0; i < n; i++) {
        emit_proxy_thunk(c, b, itf, all[i], 3 + i);
        emit_call_thunk(c, b, itf, all[i]);
        emit_params(c, b, itf, all[i]);
    }
    idl_buf_printf(c, b, "static const ShmMethod %s_Methods[] = {\n", nm);
    for (int i = 0; i < 3; i++)
        idl_buf_puts(c, b, "    {NULL, NULL, 0, 0, 0, NULL}, /* IUnknown: the runtime's */\n");
    for (int i = 0; i < n; i++) {
        idl_method *m = all[i];
        if (m->nparams)
            idl_buf_printf(
                c, b, "    {\"%s\", %s_%s_Params, %d, %" PRIu32 ", %" PRIu32 ", %s_%s_Call},\n",
                m->name, nm, m->name, m->nparams, m->in_size, m->out_size, nm, m->name);
        else
            idl_buf_printf(c, b, "    {\"%s\", NULL, 0, %" PRIu32 ", %" PRIu32 ", %s_%s_Call},\n",
                           m->name, m->in_size, m->out_size, nm, m->name);
    }
    idl_buf_puts(c, b, "};\n\n");
    idl_buf_printf(c, b, "static const %sVtbl %s_ProxyVtbl = {\n", nm, nm);
    idl_buf_printf(c, b,
                   "    %s_QueryInterface_Proxy,\n    %s_AddRef_Proxy,\n    %s_Release_Proxy,\n",
                   nm, nm, nm);
    for (int i = 0; i < n; i++)
        idl_buf_printf(c, b, "    %s_%s_Proxy,\n", nm, all[i]->name);
    idl_buf_puts(c, b, "};\n\n");
    idl_buf_printf(c, b,
                   "static const ShmInterfaceInfo %s_Info = {\n    &IID_%s,\n    \"%s\",\n    "
                   "&IID_%s,\n    %d,\n    %s_Methods,\n    &%s_ProxyVtbl,\n};\n\n",
                   nm, nm, nm, itf->base->name, itf->nslots, nm, nm);
}

void idl_emit_proxy(idl_ctx *c)
{
    idl_buf *b = &c->out_p;
    idl_buf_printf(c, b, "/* generated by shmidl %s from %s.idl, do not edit */\n\n",
                   SHMIDL_VERSION, c->base);
    idl_buf_printf(c, b,
                   "#include \"%s.h\"\n\n#include <shmcom/proxystub.h>\n\n#include <stddef.h>\n\n",
                   c->base);
    int nproxied = 0;
    for (idl_item *it = c->items; it; it = it->next) {
        if (it->kind != IT_IFACE)
            continue;
        idl_buf_printf(c, b, "const IID IID_%s = ", it->itf->name);
        put_iid(c, b, it->itf->uuid);
        idl_buf_puts(c, b, ";\n");
        if (!it->itf->a_local)
            nproxied++;
    }
    idl_buf_puts(c, b, "\n");
    emit_layout_asserts(c, b);
    for (idl_item *it = c->items; it; it = it->next)
        if (it->kind == IT_IFACE && !it->itf->a_local)
            emit_iface(c, b, it->itf);
    if (nproxied) {
        idl_buf_printf(c, b, "static const ShmInterfaceInfo *const %s_Interfaces[] = {\n",
                       c->ident);
        for (idl_item *it = c->items; it; it = it->next)
            if (it->kind == IT_IFACE && !it->itf->a_local)
                idl_buf_printf(c, b, "    &%s_Info,\n", it->itf->name);
        idl_buf_puts(c, b, "};\n\n");
    }
    idl_buf_printf(c, b,
                   "const ShmProxyFileInfo %s_ProxyFileInfo = {\n    SHM_PROXYSTUB_ABI,\n    %d,\n "
                   "   %s%s,\n    \"%s.idl\",\n};\n",
                   c->ident, nproxied, nproxied ? c->ident : "NULL", nproxied ? "_Interfaces" : "",
                   c->base);
}
