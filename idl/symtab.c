/*
 * symtab.c - names (types, struct and enum tags, constants), the types and
 * interfaces the compiler knows without an import, and imports.
 *
 * unknwn.idl, objidl.idl, wtypes.idl and wtypesbase.idl are built in: their
 * types (the Windows integer names, GUID, REFIID, LPOLESTR...) and the
 * interfaces IUnknown, ISequentialStream and IStream are always known, and
 * importing them reads nothing, so no Windows SDK is needed. Their C
 * definitions come from <shmcom/shmcom.h>.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned hash(const char *s, int ns)
{
    unsigned h = 2166136261u ^ (unsigned)ns;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % IDL_HASH_SIZE;
}

idl_sym *idl_sym_find_any(idl_ctx *c, const char *name, int ns)
{
    for (idl_sym *s = c->syms[hash(name, ns)]; s; s = s->next)
        if (s->ns == ns && !strcmp(s->name, name))
            return s;
    return NULL;
}

void *idl_sym_find(idl_ctx *c, const char *name, int ns)
{
    idl_sym *s = idl_sym_find_any(c, name, ns);
    return s ? s->ptr : NULL;
}

static idl_loc sym_loc(idl_sym *s)
{
    idl_loc none = {0, 0, 0};
    switch (s->ns) {
    case SYM_TYPE:
        return ((idl_type *)s->ptr)->loc;
    case SYM_STRUCT_TAG:
        return ((idl_struct *)s->ptr)->loc;
    case SYM_ENUM_TAG:
        return ((idl_enum *)s->ptr)->loc;
    case SYM_VALUE:
        return ((idl_value *)s->ptr)->loc;
    }
    return none;
}

void idl_sym_add(idl_ctx *c, const char *name, int ns, void *ptr, idl_loc loc)
{
    idl_sym *old = idl_sym_find_any(c, name, ns);
    if (old) {
        idl_loc prev = sym_loc(old);
        if (prev.file)
            idl_error(c, loc, "'%s' is already defined at %s:%d:%d", name, prev.file, prev.line,
                      prev.col);
        idl_error(c, loc, "'%s' is already defined (built in)", name);
    }
    idl_sym *s = idl_alloc(c, sizeof(*s));
    unsigned h = hash(name, ns);
    s->name = name;
    s->ns = ns;
    s->ptr = ptr;
    s->next = c->syms[h];
    c->syms[h] = s;
}

idl_type *idl_type_find(idl_ctx *c, const char *name)
{
    return idl_sym_find(c, name, SYM_TYPE);
}

void idl_add_iface(idl_ctx *c, idl_iface *itf)
{
    if (c->nifaces == c->ifaces_cap) {
        int cap = c->ifaces_cap ? c->ifaces_cap * 2 : 16;
        idl_iface **n = idl_alloc(c, sizeof(*n) * (size_t)cap);
        if (c->nifaces)
            memcpy(n, c->ifaces, sizeof(*n) * (size_t)c->nifaces);
        c->ifaces = n;
        c->ifaces_cap = cap;
    }
    c->ifaces[c->nifaces++] = itf;
}

/* ---- built-in types ------------------------------------------------------ */

typedef struct builtin {
    const char *name, *cname;
    idl_type_kind kind;
    uint32_t size;
    int is_int, is_signed, char_width;
} builtin;

/* Names with a space are the multi-word base types the parser assembles. */
static const builtin builtins[] = {
    {"char", "char", TY_BASE, 1, 1, 1, 1},
    {"unsigned char", "unsigned char", TY_BASE, 1, 1, 0, 1},
    {"signed char", "signed char", TY_BASE, 1, 1, 1, 1},
    {"small", "signed char", TY_BASE, 1, 1, 1, 0},
    {"unsigned small", "unsigned char", TY_BASE, 1, 1, 0, 0},
    {"byte", "BYTE", TY_BASE, 1, 1, 0, 1},
    {"short", "short", TY_BASE, 2, 1, 1, 0},
    {"unsigned short", "unsigned short", TY_BASE, 2, 1, 0, 2},
    {"int", "int", TY_BASE, 4, 1, 1, 0},
    {"unsigned int", "unsigned int", TY_BASE, 4, 1, 0, 0},
    {"long", "LONG", TY_BASE, 4, 1, 1, 0},
    {"unsigned long", "ULONG", TY_BASE, 4, 1, 0, 0},
    {"hyper", "hyper", TY_BASE, 8, 1, 1, 0},
    {"unsigned hyper", "MIDL_uhyper", TY_BASE, 8, 1, 0, 0},
    {"__int64", "__int64", TY_BASE, 8, 1, 1, 0},
    {"unsigned __int64", "unsigned __int64", TY_BASE, 8, 1, 0, 0},
    {"float", "float", TY_BASE, 4, 0, 0, 0},
    {"double", "double", TY_BASE, 8, 0, 0, 0},
    {"boolean", "boolean", TY_BASE, 1, 0, 0, 0},
    {"wchar_t", "wchar_t", TY_BASE, 2, 1, 0, 2},
    {"void", "void", TY_VOID, 0, 0, 0, 0},
    {"BYTE", "BYTE", TY_BASE, 1, 1, 0, 1},
    {"CHAR", "CHAR", TY_BASE, 1, 1, 1, 1},
    {"UCHAR", "UCHAR", TY_BASE, 1, 1, 0, 1},
    {"SHORT", "SHORT", TY_BASE, 2, 1, 1, 0},
    {"USHORT", "USHORT", TY_BASE, 2, 1, 0, 2},
    {"WORD", "WORD", TY_BASE, 2, 1, 0, 0},
    {"WCHAR", "WCHAR", TY_BASE, 2, 1, 0, 2},
    {"OLECHAR", "OLECHAR", TY_BASE, 2, 1, 0, 2},
    {"INT", "INT", TY_BASE, 4, 1, 1, 0},
    {"UINT", "UINT", TY_BASE, 4, 1, 0, 0},
    {"LONG", "LONG", TY_BASE, 4, 1, 1, 0},
    {"ULONG", "ULONG", TY_BASE, 4, 1, 0, 0},
    {"DWORD", "DWORD", TY_BASE, 4, 1, 0, 0},
    {"BOOL", "BOOL", TY_BASE, 4, 1, 1, 0},
    {"HRESULT", "HRESULT", TY_BASE, 4, 1, 1, 0},
    {"SCODE", "SCODE", TY_BASE, 4, 1, 1, 0},
    {"FLOAT", "FLOAT", TY_BASE, 4, 0, 0, 0},
    {"DOUBLE", "DOUBLE", TY_BASE, 8, 0, 0, 0},
    {"LONGLONG", "LONGLONG", TY_BASE, 8, 1, 1, 0},
    {"ULONGLONG", "ULONGLONG", TY_BASE, 8, 1, 0, 0},
    {"DWORDLONG", "DWORDLONG", TY_BASE, 8, 1, 0, 0},
    {"GUID", "GUID", TY_GUID, 16, 0, 0, 0},
    {"IID", "IID", TY_GUID, 16, 0, 0, 0},
    {"CLSID", "CLSID", TY_GUID, 16, 0, 0, 0},
};

/* Pointer typedefs of wtypes.idl. cname NULL: spelled out in C (the name
 * is not defined by shmcom's POSIX headers). */
typedef struct builtin_ptr {
    const char *name, *cname, *target;
    int target_const, implies_string;
} builtin_ptr;

static const builtin_ptr builtin_ptrs[] = {
    {"REFIID", "REFIID", "IID", 1, 0},
    {"REFGUID", "REFGUID", "GUID", 1, 0},
    {"REFCLSID", "REFCLSID", "CLSID", 1, 0},
    {"LPSTR", NULL, "char", 0, 1},
    {"LPCSTR", NULL, "char", 1, 1},
    {"LPWSTR", NULL, "WCHAR", 0, 1},
    {"LPCWSTR", NULL, "WCHAR", 1, 1},
    {"LPOLESTR", "LPOLESTR", "OLECHAR", 0, 1},
    {"LPCOLESTR", "LPCOLESTR", "OLECHAR", 1, 1},
    {"LPUNKNOWN", "LPUNKNOWN", "IUnknown", 0, 0},
    {"LPSTREAM", "LPSTREAM", "IStream", 0, 0},
};

typedef struct builtin_iface {
    const char *name;
    uint8_t uuid[16];
} builtin_iface;

static const builtin_iface builtin_ifaces[] = {
    {"IUnknown", {0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46}},
    {"ISequentialStream",
     {0x0c, 0x73, 0x3a, 0x30, 0x2a, 0x1c, 0x11, 0xce, 0xad, 0xe5, 0x00, 0xaa, 0x00, 0x44, 0x77,
      0x3d}},
    {"IStream", {0, 0, 0, 0x0c, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0x46}},
};

idl_iface *idl_iunknown(idl_ctx *c)
{
    return c->iunknown;
}

void idl_symtab_init(idl_ctx *c)
{
    idl_loc none = {NULL, 0, 0};
    for (size_t i = 0; i < sizeof(builtins) / sizeof(builtins[0]); i++) {
        const builtin *b = &builtins[i];
        idl_type *t = idl_alloc(c, sizeof(*t));
        t->kind = b->kind;
        t->name = b->name;
        t->cname = b->cname;
        t->builtin = 1;
        t->size = b->size;
        t->align = b->kind == TY_GUID ? 4 : b->size;
        t->is_int = b->is_int;
        t->is_signed = b->is_signed;
        t->char_width = b->char_width;
        t->is_wchar_t = !strcmp(b->name, "wchar_t");
        idl_sym_add(c, b->name, SYM_TYPE, t, none);
    }
    for (size_t i = 0; i < sizeof(builtin_ifaces) / sizeof(builtin_ifaces[0]); i++) {
        idl_iface *itf = idl_alloc(c, sizeof(*itf));
        itf->name = builtin_ifaces[i].name;
        itf->defined = itf->builtin = itf->a_object = itf->has_uuid = 1;
        memcpy(itf->uuid, builtin_ifaces[i].uuid, 16);
        itf->nslots = 3;
        itf->checked = 2;
        idl_type *t = idl_alloc(c, sizeof(*t));
        t->kind = TY_INTERFACE;
        t->name = t->cname = itf->name;
        t->builtin = 1;
        t->itf = itf;
        idl_sym_add(c, itf->name, SYM_TYPE, t, none);
        idl_add_iface(c, itf);
        if (i == 0)
            c->iunknown = itf;
    }
    for (size_t i = 0; i < sizeof(builtin_ptrs) / sizeof(builtin_ptrs[0]); i++) {
        const builtin_ptr *b = &builtin_ptrs[i];
        idl_type *t = idl_alloc(c, sizeof(*t));
        t->kind = TY_PTRALIAS;
        t->name = b->name;
        t->cname = b->cname;
        t->builtin = 1;
        t->ptr_target = idl_type_find(c, b->target);
        t->ptr_levels = 1;
        t->ptr_target_const = b->target_const;
        t->implies_string = b->implies_string;
        idl_sym_add(c, b->name, SYM_TYPE, t, none);
    }
}

/* ---- imports ------------------------------------------------------------- */

static const char *const builtin_imports[] = {"unknwn.idl", "objidl.idl", "wtypes.idl",
                                              "wtypesbase.idl"};
static const char *const refused_imports[] = {
    "oaidl.idl",  "ocidl.idl", "oleidl.idl", "objidlbase.idl", "propidl.idl", "servprov.idl",
    "urlmon.idl", "msxml.idl", "docobj.idl", "shobjidl.idl",   "mshtml.idl",  "comcat.idl"};

char *idl_read_file(idl_ctx *c, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            idl_error_noloc(c, "out of memory");
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        if (cap > ((size_t)1 << 30)) {
            free(buf);
            fclose(f);
            idl_error_noloc(c, "%s: file too large", path);
        }
        char *nb = realloc(buf, cap * 2);
        if (!nb)
            free(buf);
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        idl_error_noloc(c, "%s: read error", path);
    }
    char *text = idl_alloc(c, n + 1);
    memcpy(text, buf, n);
    free(buf);
    *len = n;
    return text;
}

/* "a/./b/../c" -> "a/c"; keeps leading "..". Only '/' and '\' separate. */
static char *normalize(idl_ctx *c, const char *path)
{
    size_t n = strlen(path);
    char *out = idl_alloc(c, n + 1);
    const char **parts = idl_alloc(c, sizeof(char *) * (n + 1));
    size_t *lens = idl_alloc(c, sizeof(size_t) * (n + 1));
    size_t np = 0;
    int absolute = path[0] == '/' || path[0] == '\\';
    const char *s = path;
    while (*s) {
        while (*s == '/' || *s == '\\')
            s++;
        const char *e = s;
        while (*e && *e != '/' && *e != '\\')
            e++;
        size_t l = (size_t)(e - s);
        if (l == 0)
            break;
        if (l == 1 && s[0] == '.') {
            /* skip */
        } else if (l == 2 && s[0] == '.' && s[1] == '.' && np > 0 &&
                   !(lens[np - 1] == 2 && !strncmp(parts[np - 1], "..", 2))) {
            np--;
        } else {
            parts[np] = s;
            lens[np++] = l;
        }
        s = e;
    }
    char *o = out;
    if (absolute)
        *o++ = '/';
    for (size_t i = 0; i < np; i++) {
        if (i)
            *o++ = '/';
        memcpy(o, parts[i], lens[i]);
        o += lens[i];
    }
    *o = 0;
    return out;
}

static int seen_file(idl_ctx *c, const char *norm)
{
    for (idl_file *f = c->files; f; f = f->next)
        if (!strcmp(f->path, norm))
            return 1;
    return 0;
}

static void add_file(idl_ctx *c, const char *norm)
{
    idl_file *f = idl_alloc(c, sizeof(*f));
    f->path = norm;
    f->next = c->files;
    c->files = f;
}

static char *join(idl_ctx *c, const char *dir, size_t dirlen, const char *name)
{
    if (dirlen == 0)
        return idl_strdup(c, name);
    return idl_printf(c, "%.*s/%s", (int)dirlen, dir, name);
}

int idl_import(idl_ctx *c, const char *name, idl_loc loc, const char *from_file)
{
    for (size_t i = 0; i < sizeof(builtin_imports) / sizeof(builtin_imports[0]); i++)
        if (!strcmp(name, builtin_imports[i]))
            return 1;
    for (size_t i = 0; i < sizeof(refused_imports) / sizeof(refused_imports[0]); i++)
        if (!strcmp(name, refused_imports[i]))
            idl_error(c, loc,
                      "import of '%s' is not supported (shmidl knows unknwn.idl, objidl.idl, "
                      "wtypes.idl and wtypesbase.idl)",
                      name);
    if (!*name)
        idl_error(c, loc, "empty import name");
    if (c->import_depth >= 32)
        idl_error(c, loc, "imports nested too deeply");
    char *found = NULL;
    size_t len = 0;
    char *text = NULL;
    if (c->opts->file_imports) {
        int absolute = name[0] == '/' || name[0] == '\\' || (name[0] && name[1] == ':');
        const char *slash = NULL;
        for (const char *s = from_file; *s; s++)
            if (*s == '/' || *s == '\\')
                slash = s;
        size_t ndirs = c->opts->n_include_dirs + 1;
        for (size_t i = 0; i < ndirs && !text; i++) {
            char *cand;
            if (absolute)
                cand = idl_strdup(c, name);
            else if (i == 0)
                cand = join(c, from_file, slash ? (size_t)(slash - from_file) : 0, name);
            else
                cand = join(c, c->opts->include_dirs[i - 1], strlen(c->opts->include_dirs[i - 1]),
                            name);
            found = normalize(c, cand);
            if (seen_file(c, found))
                return 0; /* imported once, as MIDL does */
            text = idl_read_file(c, found, &len);
            if (absolute)
                break;
        }
    }
    if (!text)
        idl_error(c, loc, "cannot find import '%s'", name);
    add_file(c, found);
    c->import_depth++;
    idl_parse(c, found, text, len, 0);
    c->import_depth--;
    return 0;
}

void idl_note_main_file(idl_ctx *c, const char *path)
{
    add_file(c, normalize(c, path));
}
