/*
 * emit_header.c - FILE.h: the C header, layout- and name-compatible with
 * what MIDL and widl emit for the same file (IFooVtbl, struct IFoo with
 * lpVtbl, IFoo_Method(This, ...) macros under COBJMACROS, IID_IFoo, the
 * typedefs), plus the declaration of FILE_ProxyFileInfo. The C++ class
 * form of interfaces is not emitted: C++ code uses the C structs.
 *
 * MIDL's `long` is spelled LONG (32 bits everywhere, unlike C's long on
 * LP64), and names that <shmcom/shmcom.h> does not define on POSIX
 * (LPSTR, byte, INT64) are spelled out.
 */
#include "internal.h"

#include <inttypes.h>
#include <string.h>

/* expand: spell pointer typedefs out, e.g. REFIID as const IID *: Windows
 * defines REFIID as const IID *const, whose top-level const the thunks
 * must not carry (their parameters' addresses go into a void *[]). */
static void put_spec(idl_ctx *c, idl_buf *b, idl_type *t, int is_const, int expand)
{
    if (is_const)
        idl_buf_puts(c, b, "const ");
    if (t->kind == TY_PTRALIAS && (!t->cname || expand)) {
        put_spec(c, b, t->ptr_target, t->ptr_target_const, 0);
        idl_buf_puts(c, b, " *");
        return;
    }
    idl_buf_puts(c, b, t->cname);
}

void idl_put_decl(idl_ctx *c, idl_buf *b, const idl_decltype *d, const char *name,
                  int drop_top_const)
{
    int spec_const = d->spec_const;
    if (drop_top_const && d->nptr == 0 && d->ndims == 0 && d->spec->kind != TY_PTRALIAS)
        spec_const = 0;
    put_spec(c, b, d->spec, spec_const, drop_top_const);
    int spelled_ptr = d->spec->kind == TY_PTRALIAS && (!d->spec->cname || drop_top_const);
    if ((!spelled_ptr && *name) || d->nptr)
        idl_buf_puts(c, b, " ");
    for (int i = 0; i < d->nptr; i++) {
        idl_buf_puts(c, b, "*");
        int top = i == d->nptr - 1;
        if ((d->ptr_const >> i & 1) && !(top && drop_top_const && d->ndims == 0))
            idl_buf_puts(c, b, " const ");
    }
    idl_buf_puts(c, b, name);
    for (int i = 0; i < d->ndims; i++)
        idl_buf_printf(c, b, "[%" PRIu32 "]", d->dims[i]);
}

int idl_all_methods(idl_iface *itf, idl_method **out, int max)
{
    int n = 0;
    if (itf->base)
        n = idl_all_methods(itf->base, out, max);
    for (int i = 0; i < itf->nmethods && n < max; i++)
        out[n++] = &itf->methods[i];
    return n;
}

static void put_const_value(idl_ctx *c, idl_buf *b, const idl_const *k)
{
    if (k->is_string) {
        idl_buf_printf(c, b, "\"%s\"", k->str);
        return;
    }
    if (k->is_unsigned)
        idl_buf_printf(c, b, "(%" PRIu64 "u%s)", (uint64_t)k->value,
                       (uint64_t)k->value > 0xFFFFFFFFu ? "ll" : "");
    else if (k->value == INT64_MIN)
        idl_buf_printf(c, b, "(-%" PRId64 "ll - 1)", INT64_MAX);
    else
        idl_buf_printf(c, b, "(%" PRId64 "%s)", k->value,
                       k->value > INT32_MAX || k->value < INT32_MIN ? "ll" : "");
}

static void emit_struct(idl_ctx *c, idl_buf *b, idl_struct *s, const char *typedef_name)
{
    if (typedef_name)
        idl_buf_puts(c, b, "typedef ");
    idl_buf_puts(c, b, "struct ");
    if (s->tag)
        idl_buf_printf(c, b, "%s ", s->tag);
    idl_buf_puts(c, b, "{\n");
    for (int i = 0; i < s->nfields; i++) {
        idl_buf_puts(c, b, "    ");
        idl_put_decl(c, b, &s->fields[i].type, s->fields[i].name, 0);
        idl_buf_puts(c, b, ";\n");
    }
    if (typedef_name)
        idl_buf_printf(c, b, "} %s;\n\n", typedef_name);
    else
        idl_buf_puts(c, b, "};\n\n");
}

static void emit_enum(idl_ctx *c, idl_buf *b, idl_enum *e)
{
    if (e->name)
        idl_buf_puts(c, b, "typedef ");
    idl_buf_puts(c, b, "enum ");
    if (e->tag)
        idl_buf_printf(c, b, "%s ", e->tag);
    idl_buf_puts(c, b, "{\n");
    for (int i = 0; i < e->nitems; i++)
        idl_buf_printf(c, b, "    %s = %" PRId64 "%s\n", e->items[i].name, e->items[i].value,
                       i + 1 < e->nitems ? "," : "");
    if (e->name)
        idl_buf_printf(c, b, "} %s;\n\n", e->name);
    else
        idl_buf_puts(c, b, "};\n\n");
}

static void put_params(idl_ctx *c, idl_buf *b, idl_iface *itf, idl_method *m)
{
    idl_buf_printf(c, b, "%s *This", itf->name);
    for (int i = 0; i < m->nparams; i++) {
        idl_buf_puts(c, b, ", ");
        idl_put_decl(c, b, &m->params[i].type, m->params[i].name, 0);
    }
}

static void put_arg_names(idl_ctx *c, idl_buf *b, idl_method *m)
{
    idl_buf_puts(c, b, "This");
    for (int i = 0; i < m->nparams; i++)
        idl_buf_printf(c, b, ", %s", m->params[i].name);
}

static void emit_iface(idl_ctx *c, idl_buf *b, idl_iface *itf)
{
    int max = itf->nslots;
    idl_method **all = idl_alloc(c, sizeof(*all) * (size_t)max);
    int n = idl_all_methods(itf, all, max);
    const char *nm = itf->name;
    idl_buf_printf(c, b, "/* ---- %s ---- */\n\n", nm);
    idl_buf_printf(c, b, "extern const IID IID_%s;\n\n", nm);
    idl_buf_printf(c, b, "typedef struct %sVtbl {\n", nm);
    idl_buf_printf(c, b,
                   "    HRESULT (STDMETHODCALLTYPE *QueryInterface)(%s *This, REFIID riid, "
                   "void **ppvObject);\n",
                   nm);
    idl_buf_printf(c, b, "    ULONG (STDMETHODCALLTYPE *AddRef)(%s *This);\n", nm);
    idl_buf_printf(c, b, "    ULONG (STDMETHODCALLTYPE *Release)(%s *This);\n", nm);
    for (int i = 0; i < n; i++) {
        idl_buf_puts(c, b, "    ");
        idl_decltype ret = all[i]->ret;
        idl_put_decl(c, b, &ret, "", 0);
        idl_buf_printf(c, b, " (STDMETHODCALLTYPE *%s)(", all[i]->name);
        put_params(c, b, itf, all[i]);
        idl_buf_puts(c, b, ");\n");
    }
    idl_buf_printf(c, b, "} %sVtbl;\n\n", nm);
    idl_buf_printf(c, b, "struct %s {\n    CONST_VTBL %sVtbl *lpVtbl;\n};\n\n", nm, nm);
    idl_buf_puts(c, b, "#ifdef COBJMACROS\n");
    idl_buf_printf(c, b,
                   "#define %s_QueryInterface(This, riid, ppvObject) "
                   "(This)->lpVtbl->QueryInterface(This, riid, ppvObject)\n",
                   nm);
    idl_buf_printf(c, b, "#define %s_AddRef(This) (This)->lpVtbl->AddRef(This)\n", nm);
    idl_buf_printf(c, b, "#define %s_Release(This) (This)->lpVtbl->Release(This)\n", nm);
    for (int i = 0; i < n; i++) {
        idl_buf_printf(c, b, "#define %s_%s(", nm, all[i]->name);
        put_arg_names(c, b, all[i]);
        idl_buf_printf(c, b, ") (This)->lpVtbl->%s(", all[i]->name);
        put_arg_names(c, b, all[i]);
        idl_buf_puts(c, b, ")\n");
    }
    idl_buf_puts(c, b, "#endif\n\n");
}

void idl_emit_header(idl_ctx *c)
{
    idl_buf *b = &c->out_h;
    char *guard = idl_printf(c, "SHMIDL_%s_H", c->ident);
    for (char *s = guard; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
    idl_buf_printf(c, b, "/* generated by shmidl %s from %s.idl, do not edit */\n\n",
                   SHMIDL_VERSION, c->base);
    idl_buf_printf(c, b, "#ifndef %s\n#define %s\n\n", guard, guard);
    idl_buf_puts(c, b, "#include <shmcom/shmcom.h>\n");
    for (idl_item *it = c->items; it; it = it->next)
        if (it->kind == IT_IMPORT && !it->import_builtin)
            idl_buf_printf(c, b, "#include \"%s\"\n", it->text);
    idl_buf_puts(c, b, "\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    int any = 0;
    for (idl_item *it = c->items; it; it = it->next) {
        if (it->kind == IT_IFACE || it->kind == IT_IFACE_FWD) {
            idl_buf_printf(c, b, "typedef struct %s %s;\n", it->itf->name, it->itf->name);
            any = 1;
        }
    }
    if (any)
        idl_buf_puts(c, b, "\n");
    for (idl_item *it = c->items; it; it = it->next) {
        switch (it->kind) {
        case IT_CPPQUOTE:
            idl_buf_printf(c, b, "%s\n", it->text);
            break;
        case IT_CONST:
            idl_buf_printf(c, b, "#define %s ", it->cst->name);
            put_const_value(c, b, it->cst);
            idl_buf_puts(c, b, "\n\n");
            break;
        case IT_STRUCT:
            emit_struct(c, b, it->st, it->st_typedef);
            break;
        case IT_ENUM:
            emit_enum(c, b, it->en);
            break;
        case IT_ALIAS:
            idl_buf_puts(c, b, "typedef ");
            idl_put_decl(c, b, &it->alias->alias, it->alias->name, 0);
            idl_buf_puts(c, b, ";\n\n");
            break;
        case IT_IFACE:
            emit_iface(c, b, it->itf);
            break;
        default:
            break;
        }
    }
    idl_buf_printf(c, b,
                   "/* Pass to ShmCoRegisterProxyStubs to register this file's proxies and "
                   "stubs. */\n"
                   "extern const struct ShmProxyFileInfo %s_ProxyFileInfo;\n\n",
                   c->ident);
    idl_buf_puts(c, b, "#ifdef __cplusplus\n}\n#endif\n\n");
    idl_buf_printf(c, b, "#endif /* %s */\n", guard);
}
