/*
 * parser.c - hand-written recursive descent over the MIDL subset of
 * docs/idl.md. Type names are resolved as they are read (MIDL requires a
 * declaration before use); base interfaces are resolved later by check.c,
 * so that a forward-declared base works. Every construct MIDL has and
 * shmidl does not is refused by name.
 */
#include "internal.h"

#include <string.h>

typedef struct parser {
    idl_ctx *c;
    idl_lexer lx;
    idl_token tok;
    const char *file;
    int is_main;
} parser;

static void next(parser *p)
{
    idl_lex_next(&p->lx, &p->tok);
}

static int is_punct(parser *p, const char *s)
{
    return p->tok.kind == TK_PUNCT && !strcmp(p->tok.text, s);
}

static int is_word(parser *p, const char *s)
{
    return p->tok.kind == TK_IDENT && !strcmp(p->tok.text, s);
}

static const char *describe(parser *p)
{
    switch (p->tok.kind) {
    case TK_EOF:
        return "end of file";
    case TK_STRING:
        return "a string";
    default:
        return idl_printf(p->c, "'%s'", p->tok.text);
    }
}

IDL_NORETURN static void expected(parser *p, const char *what)
{
    idl_error(p->c, p->tok.loc, "expected %s but found %s", what, describe(p));
}

static void expect_punct(parser *p, const char *s)
{
    if (!is_punct(p, s))
        expected(p, idl_printf(p->c, "'%s'", s));
    next(p);
}

static const char *expect_ident(parser *p, const char *what, idl_loc *loc)
{
    if (p->tok.kind != TK_IDENT)
        expected(p, what);
    const char *s = p->tok.text;
    if (loc)
        *loc = p->tok.loc;
    next(p);
    return s;
}

/* The token after the current one, without consuming anything. */
static idl_token peek(parser *p)
{
    idl_lexer save = p->lx;
    idl_token t;
    idl_lex_next(&save, &t);
    return t;
}

/* ---- constant expressions ------------------------------------------------- */

typedef struct cval {
    int64_t v;
    int is_unsigned;
} cval;

static cval expr(parser *p);

static cval primary(parser *p)
{
    cval r = {0, 0};
    idl_loc loc = p->tok.loc;
    if (p->tok.kind == TK_NUMBER) {
        if (p->tok.num > (uint64_t)INT64_MAX)
            idl_error(p->c, loc, "number too large");
        r.v = (int64_t)p->tok.num;
        r.is_unsigned = p->tok.num_unsigned;
        next(p);
        return r;
    }
    if (is_punct(p, "(")) {
        next(p);
        r = expr(p);
        expect_punct(p, ")");
        return r;
    }
    if (p->tok.kind == TK_IDENT) {
        idl_value *v = idl_sym_find(p->c, p->tok.text, SYM_VALUE);
        if (!v)
            idl_error(p->c, loc, "unknown constant '%s'", p->tok.text);
        if (v->is_string)
            idl_error(p->c, loc, "'%s' is a string constant", p->tok.text);
        r.v = v->value;
        r.is_unsigned = v->is_unsigned;
        next(p);
        return r;
    }
    expected(p, "a constant expression");
}

static cval unary(parser *p)
{
    if (is_punct(p, "-") || is_punct(p, "~") || is_punct(p, "+") || is_punct(p, "!")) {
        char op = p->tok.text[0];
        next(p);
        cval r = unary(p);
        /* two's complement arithmetic on uint64_t: defined for every value */
        if (op == '-')
            r.v = (int64_t)(0u - (uint64_t)r.v);
        else if (op == '~')
            r.v = (int64_t) ~(uint64_t)r.v;
        else if (op == '!')
            r.v = !r.v;
        return r;
    }
    return primary(p);
}

/* Binary operators by precedence, lowest first, as in C. */
static int prec(parser *p)
{
    if (p->tok.kind != TK_PUNCT)
        return 0;
    static const char *const ops[] = {"|", "^", "&", "<<", ">>", "+", "-", "*", "/", "%"};
    static const int levels[] = {1, 2, 3, 4, 4, 5, 5, 6, 6, 6};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(p->tok.text, ops[i]))
            return levels[i];
    return 0;
}

static cval binary(parser *p, int min_prec)
{
    cval l = unary(p);
    for (;;) {
        int pr = prec(p);
        if (pr == 0 || pr < min_prec)
            return l;
        const char *op = p->tok.text;
        idl_loc loc = p->tok.loc;
        next(p);
        cval r = binary(p, pr + 1);
        uint64_t a = (uint64_t)l.v, b = (uint64_t)r.v;
        int uns = l.is_unsigned || r.is_unsigned;
        switch (op[0]) {
        case '|':
            a |= b;
            break;
        case '^':
            a ^= b;
            break;
        case '&':
            a &= b;
            break;
        case '+':
            a += b;
            break;
        case '-':
            a -= b;
            break;
        case '*':
            a *= b;
            break;
        case '<':
        case '>':
            if (r.v < 0 || r.v > 63)
                idl_error(p->c, loc, "shift count out of range");
            if (op[0] == '<')
                a <<= b;
            else if (uns || l.v >= 0)
                a >>= b;
            else
                a = ~(~a >> b); /* arithmetic shift of a negative value */
            break;
        case '/':
        case '%':
            if (r.v == 0)
                idl_error(p->c, loc, "division by zero");
            if (uns) {
                a = op[0] == '/' ? a / b : a % b;
            } else {
                if (l.v == INT64_MIN && r.v == -1)
                    idl_error(p->c, loc, "overflow in constant expression");
                a = (uint64_t)(op[0] == '/' ? l.v / r.v : l.v % r.v);
            }
            break;
        }
        l.v = (int64_t)a;
        l.is_unsigned = uns;
    }
}

static cval expr(parser *p)
{
    return binary(p, 1);
}

/* ---- types ---------------------------------------------------------------- */

/* Names MIDL knows that shmidl refuses. */
static const char *const refused_types[] = {
    "BSTR",      "VARIANT",   "VARIANT_BOOL", "SAFEARRAY", "LPSAFEARRAY",    "DECIMAL",
    "CY",        "DATE",      "HANDLE",       "handle_t",  "error_status_t", "int3264",
    "__int3264", "LPVOID",    "SIZE_T",       "INT_PTR",   "UINT_PTR",       "LONG_PTR",
    "ULONG_PTR", "DWORD_PTR", "HWND",         "STATSTG",   "LARGE_INTEGER",  "ULARGE_INTEGER",
    "FILETIME",  "IDispatch", "ITypeInfo",    "IStorage",  "IMoniker",
};

static idl_type *named_type(parser *p, const char *name, idl_loc loc)
{
    idl_type *t = idl_type_find(p->c, name);
    if (t)
        return t;
    for (size_t i = 0; i < sizeof(refused_types) / sizeof(refused_types[0]); i++)
        if (!strcmp(name, refused_types[i]))
            idl_error(p->c, loc, "type '%s' is not supported by shmidl", name);
    idl_error(p->c, loc, "unknown type '%s'", name);
}

static int is_base_word(const char *s)
{
    static const char *const words[] = {"char",  "small",   "short", "int",    "long",
                                        "hyper", "__int64", "float", "double", "boolean",
                                        "byte",  "wchar_t", "void"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (!strcmp(s, words[i]))
            return 1;
    return 0;
}

static idl_type *struct_by_tag(parser *p, int is_enum)
{
    idl_loc loc;
    const char *tag = expect_ident(p, is_enum ? "an enum tag" : "a struct tag", &loc);
    if (is_punct(p, "{"))
        idl_error(p->c, p->tok.loc, "%s definitions are allowed only at file level",
                  is_enum ? "enum" : "struct");
    if (is_enum) {
        idl_enum *e = idl_sym_find(p->c, tag, SYM_ENUM_TAG);
        if (!e)
            idl_error(p->c, loc, "unknown enum '%s'", tag);
        return e->type;
    }
    idl_struct *s = idl_sym_find(p->c, tag, SYM_STRUCT_TAG);
    if (!s)
        idl_error(p->c, loc, "unknown struct '%s'", tag);
    if (!s->complete)
        idl_error(p->c, loc, "struct '%s' is incomplete here", tag);
    return s->type;
}

/* [const] specifier [const] */
static void typespec(parser *p, idl_decltype *d, idl_loc *loc)
{
    memset(d, 0, sizeof(*d));
    if (is_word(p, "const")) {
        d->spec_const = 1;
        next(p);
    }
    *loc = p->tok.loc;
    if (p->tok.kind != TK_IDENT)
        expected(p, "a type");
    const char *w = p->tok.text;
    if (!strcmp(w, "struct") || !strcmp(w, "enum")) {
        next(p);
        d->spec = struct_by_tag(p, w[0] == 'e');
    } else if (!strcmp(w, "union")) {
        idl_error(p->c, *loc, "unions are not supported");
    } else if (!strcmp(w, "unsigned") || !strcmp(w, "signed")) {
        int uns = w[0] == 'u';
        next(p);
        const char *base = "int";
        if (p->tok.kind == TK_IDENT && is_base_word(p->tok.text)) {
            base = p->tok.text;
            if (!strcmp(base, "float") || !strcmp(base, "double") || !strcmp(base, "boolean") ||
                !strcmp(base, "byte") || !strcmp(base, "wchar_t") || !strcmp(base, "void"))
                idl_error(p->c, p->tok.loc, "'%s' cannot be applied to '%s'", w, base);
            next(p);
            if ((!strcmp(base, "short") || !strcmp(base, "long")) && is_word(p, "int"))
                next(p);
            if (!strcmp(base, "long") && is_word(p, "long"))
                idl_error(p->c, p->tok.loc, "'long long' is not a MIDL type; use hyper");
        }
        const char *name;
        if (uns)
            name = idl_printf(p->c, "unsigned %s", base);
        else if (!strcmp(base, "char"))
            name = "signed char";
        else
            name = base; /* signed short is short, and so on */
        d->spec = idl_type_find(p->c, name);
    } else if (!strcmp(w, "short") || !strcmp(w, "long")) {
        next(p);
        if (is_word(p, "int"))
            next(p);
        if (w[0] == 'l' && is_word(p, "long"))
            idl_error(p->c, p->tok.loc, "'long long' is not a MIDL type; use hyper");
        d->spec = idl_type_find(p->c, w);
    } else {
        next(p);
        d->spec = named_type(p, w, *loc);
    }
    if (is_word(p, "const")) {
        d->spec_const = 1;
        next(p);
    }
    if (d->spec->is_wchar_t)
        idl_error(p->c, *loc,
                  "'wchar_t' is not supported: it is 2 bytes on Windows and 4 on Linux; use "
                  "WCHAR or OLECHAR");
}

static uint32_t array_dim(parser *p)
{
    idl_loc loc = p->tok.loc;
    if (is_punct(p, "]"))
        idl_error(p->c, loc,
                  "conformant arrays ([]) are not supported; use [size_is] on a pointer");
    if (is_punct(p, "*"))
        idl_error(p->c, loc, "conformant arrays ([*]) are not supported");
    cval v = expr(p);
    if (v.v <= 0)
        idl_error(p->c, loc, "array size must be positive");
    if (v.v > 0x7FFFFFFF)
        idl_error(p->c, loc, "array too large");
    return (uint32_t)v.v;
}

/* ['*' [const]]... NAME ['[' N ']']... */
static const char *declarator(parser *p, idl_decltype *d, idl_loc *nameloc)
{
    while (is_punct(p, "*")) {
        if (d->nptr >= 8)
            idl_error(p->c, p->tok.loc, "too many levels of indirection");
        d->nptr++;
        next(p);
        if (is_word(p, "const")) {
            d->ptr_const |= 1 << (d->nptr - 1);
            next(p);
        }
    }
    if (is_punct(p, "("))
        idl_error(p->c, p->tok.loc, "function pointers are not supported");
    const char *name = expect_ident(p, "a name", nameloc);
    while (is_punct(p, "[")) {
        if (d->ndims == 4)
            idl_error(p->c, p->tok.loc, "more than 4 array dimensions");
        next(p);
        d->dims[d->ndims++] = array_dim(p);
        expect_punct(p, "]");
    }
    return name;
}

IDL_NORETURN static void refused_attr(parser *p, const char *where)
{
    idl_error(p->c, p->tok.loc, "attribute '%s' is not supported%s", p->tok.text, where);
}

static void no_attributes(parser *p, const char *where)
{
    if (is_punct(p, "[")) {
        next(p);
        if (p->tok.kind != TK_IDENT)
            expected(p, "an attribute");
        refused_attr(p, where);
    }
}

/* ---- declarations ------------------------------------------------------------ */

static idl_item *add_item(parser *p, idl_item_kind kind)
{
    idl_item *it = idl_alloc(p->c, sizeof(*it));
    it->kind = kind;
    if (p->is_main) {
        *p->c->items_tail = it;
        p->c->items_tail = &it->next;
    }
    return it;
}

static idl_type *new_type(parser *p, idl_type_kind kind, const char *name, const char *cname,
                          idl_loc loc)
{
    idl_type *t = idl_alloc(p->c, sizeof(*t));
    t->kind = kind;
    t->name = name;
    t->cname = cname;
    t->loc = loc;
    return t;
}

static void struct_body(parser *p, idl_struct *s)
{
    expect_punct(p, "{");
    int cap = 8;
    s->fields = idl_alloc(p->c, sizeof(idl_field) * (size_t)cap);
    while (!is_punct(p, "}")) {
        if (p->tok.kind == TK_EOF)
            expected(p, "'}'");
        no_attributes(p, " on struct fields");
        if (is_word(p, "struct") || is_word(p, "enum")) {
            idl_token t = peek(p);
            if (t.kind == TK_PUNCT && !strcmp(t.text, "{"))
                idl_error(p->c, p->tok.loc, "nested %s definitions are not supported", p->tok.text);
        }
        idl_decltype spec;
        idl_loc tloc;
        typespec(p, &spec, &tloc);
        for (;;) {
            idl_field f;
            memset(&f, 0, sizeof(f));
            f.type = spec;
            f.name = declarator(p, &f.type, &f.loc);
            for (int i = 0; i < s->nfields; i++)
                if (!strcmp(s->fields[i].name, f.name))
                    idl_error(p->c, f.loc, "duplicate field '%s'", f.name);
            if (s->nfields == cap) {
                idl_field *n = idl_alloc(p->c, sizeof(idl_field) * (size_t)cap * 2);
                memcpy(n, s->fields, sizeof(idl_field) * (size_t)cap);
                s->fields = n;
                cap *= 2;
            }
            s->fields[s->nfields++] = f;
            if (!is_punct(p, ","))
                break;
            next(p);
        }
        expect_punct(p, ";");
    }
    idl_loc close = p->tok.loc;
    next(p);
    if (s->nfields == 0)
        idl_error(p->c, close, "empty struct");
    s->complete = 1;
    idl_check_struct(p->c, s);
}

static idl_struct *new_struct(parser *p, const char *tag, idl_loc loc)
{
    idl_struct *s = idl_alloc(p->c, sizeof(*s));
    s->tag = tag;
    s->loc = loc;
    s->imported = !p->is_main;
    if (tag) {
        idl_sym_add(p->c, tag, SYM_STRUCT_TAG, s, loc);
        s->type = new_type(p, TY_STRUCT, tag, idl_printf(p->c, "struct %s", tag), loc);
        s->type->st = s;
    }
    return s;
}

static void enum_body(parser *p, idl_enum *e)
{
    expect_punct(p, "{");
    int cap = 8;
    e->items = idl_alloc(p->c, sizeof(idl_enumerator) * (size_t)cap);
    int64_t nextv = 0;
    while (!is_punct(p, "}")) {
        idl_enumerator it;
        it.name = expect_ident(p, "an enumerator", &it.loc);
        it.value = nextv;
        if (is_punct(p, "=")) {
            next(p);
            idl_loc vloc = p->tok.loc;
            cval v = expr(p);
            if (v.v < INT32_MIN || v.v > INT32_MAX)
                idl_error(p->c, vloc, "value of '%s' does not fit in 32 bits", it.name);
            it.value = v.v;
        } else if (nextv > INT32_MAX) {
            idl_error(p->c, it.loc, "value of '%s' does not fit in 32 bits", it.name);
        }
        nextv = it.value + 1;
        idl_value *val = idl_alloc(p->c, sizeof(*val));
        val->value = it.value;
        val->loc = it.loc;
        idl_sym_add(p->c, it.name, SYM_VALUE, val, it.loc);
        if (e->nitems == cap) {
            idl_enumerator *n = idl_alloc(p->c, sizeof(idl_enumerator) * (size_t)cap * 2);
            memcpy(n, e->items, sizeof(idl_enumerator) * (size_t)cap);
            e->items = n;
            cap *= 2;
        }
        e->items[e->nitems++] = it;
        if (!is_punct(p, ","))
            break;
        next(p);
    }
    idl_loc close = p->tok.loc;
    expect_punct(p, "}");
    if (e->nitems == 0)
        idl_error(p->c, close, "empty enum");
}

static idl_enum *new_enum(parser *p, const char *tag, idl_loc loc)
{
    idl_enum *e = idl_alloc(p->c, sizeof(*e));
    e->tag = tag;
    e->loc = loc;
    if (tag) {
        idl_sym_add(p->c, tag, SYM_ENUM_TAG, e, loc);
        e->type = new_type(p, TY_ENUM, tag, idl_printf(p->c, "enum %s", tag), loc);
        e->type->en = e;
    }
    return e;
}

/* typedef struct [tag] { ... } Name [, Name2]; typedef enum ...; typedef T Name; */
static void parse_typedef(parser *p)
{
    next(p); /* typedef */
    no_attributes(p, " on typedefs");
    idl_loc kwloc = p->tok.loc;
    idl_struct *st = NULL;
    idl_enum *en = NULL;
    idl_decltype spec;
    memset(&spec, 0, sizeof(spec));
    if (is_word(p, "struct") || is_word(p, "enum")) {
        int is_enum = p->tok.text[0] == 'e';
        /* a body follows the keyword, or the keyword and a tag */
        idl_lexer save = p->lx;
        idl_token t1, t2;
        idl_lex_next(&save, &t1);
        int body = t1.kind == TK_PUNCT && !strcmp(t1.text, "{");
        if (!body && t1.kind == TK_IDENT) {
            idl_lex_next(&save, &t2);
            body = t2.kind == TK_PUNCT && !strcmp(t2.text, "{");
        }
        if (body) {
            next(p);
            const char *tag = NULL;
            idl_loc tagloc = kwloc;
            if (p->tok.kind == TK_IDENT)
                tag = expect_ident(p, "a tag", &tagloc);
            if (is_enum) {
                en = new_enum(p, tag, tagloc);
                enum_body(p, en);
            } else {
                st = new_struct(p, tag, tagloc);
                struct_body(p, st);
            }
        } else {
            idl_loc l;
            typespec(p, &spec, &l);
        }
    } else if (is_word(p, "union")) {
        idl_error(p->c, kwloc, "unions are not supported");
    } else {
        idl_loc l;
        typespec(p, &spec, &l);
    }
    int first = 1;
    for (;;) {
        idl_decltype d;
        memset(&d, 0, sizeof(d));
        idl_loc nloc;
        const char *name = declarator(p, &d, &nloc);
        if (d.nptr)
            idl_error(p->c, nloc, "pointer typedefs are not supported");
        if (d.ndims)
            idl_error(p->c, nloc, "array typedefs are not supported");
        idl_type *t;
        if (first && st) {
            st->name = name;
            t = new_type(p, TY_STRUCT, name, name, nloc);
            t->st = st;
            if (!st->type)
                st->type = t;
            idl_item *it = add_item(p, IT_STRUCT);
            it->st = st;
            it->st_typedef = name;
        } else if (first && en) {
            en->name = name;
            t = new_type(p, TY_ENUM, name, name, nloc);
            t->en = en;
            if (!en->type)
                en->type = t;
            add_item(p, IT_ENUM)->en = en;
        } else {
            t = new_type(p, TY_ALIAS, name, name, nloc);
            if (st) {
                t->alias.spec = st->type;
            } else if (en) {
                t->alias.spec = en->type;
            } else {
                t->alias = spec;
                idl_type_kind k = idl_resolve(spec.spec)->kind;
                if (k == TY_INTERFACE || k == TY_VOID || k == TY_PTRALIAS)
                    idl_error(p->c, nloc, "typedef of '%s' is not supported", spec.spec->name);
            }
            add_item(p, IT_ALIAS)->alias = t;
        }
        idl_sym_add(p->c, name, SYM_TYPE, t, nloc);
        first = 0;
        if (!is_punct(p, ","))
            break;
        next(p);
    }
    expect_punct(p, ";");
}

/* struct tag { ... }; enum tag { ... }; at file level */
static void parse_tagged(parser *p)
{
    int is_enum = p->tok.text[0] == 'e';
    next(p);
    idl_loc loc;
    const char *tag = expect_ident(p, is_enum ? "an enum tag" : "a struct tag", &loc);
    if (!is_punct(p, "{"))
        expected(p, "'{'");
    if (is_enum) {
        idl_enum *e = new_enum(p, tag, loc);
        enum_body(p, e);
        add_item(p, IT_ENUM)->en = e;
    } else {
        idl_struct *s = new_struct(p, tag, loc);
        struct_body(p, s);
        add_item(p, IT_STRUCT)->st = s;
    }
    expect_punct(p, ";");
}

static void parse_const(parser *p)
{
    next(p); /* const */
    idl_const *k = idl_alloc(p->c, sizeof(*k));
    idl_loc tloc;
    typespec(p, &k->type, &tloc);
    k->name = declarator(p, &k->type, &k->loc);
    idl_type *t = idl_resolve(k->type.spec);
    int nptr = k->type.nptr + (t->kind == TY_PTRALIAS ? t->ptr_levels : 0);
    idl_type *target = t->kind == TY_PTRALIAS ? idl_resolve(t->ptr_target) : t;
    if (k->type.ndims)
        idl_error(p->c, k->loc, "array constants are not supported");
    if (nptr == 1 && target->kind == TY_BASE && target->char_width == 1)
        k->is_string = 1;
    else if (nptr || t->kind != TY_BASE || !t->is_int)
        idl_error(p->c, tloc, "constants of type '%s' are not supported", k->type.spec->name);
    expect_punct(p, "=");
    idl_loc vloc = p->tok.loc;
    if (k->is_string) {
        if (p->tok.kind != TK_STRING)
            expected(p, "a string");
        k->str = p->tok.raw;
        next(p);
    } else {
        if (p->tok.kind == TK_STRING)
            idl_error(p->c, vloc, "a string cannot initialize '%s'", k->type.spec->name);
        cval v = expr(p);
        k->value = v.v;
        k->is_unsigned = !t->is_signed;
        int64_t lo, hi;
        if (t->size == 8) {
            lo = t->is_signed ? INT64_MIN : 0;
            hi = INT64_MAX;
        } else {
            int bits = (int)t->size * 8;
            lo = t->is_signed ? -((int64_t)1 << (bits - 1)) : 0;
            hi = t->is_signed ? ((int64_t)1 << (bits - 1)) - 1 : ((int64_t)1 << bits) - 1;
        }
        if (v.v < lo || v.v > hi)
            idl_error(p->c, vloc, "value out of range for '%s'", k->type.spec->name);
    }
    expect_punct(p, ";");
    idl_value *val = idl_alloc(p->c, sizeof(*val));
    val->value = k->value;
    val->is_unsigned = k->is_unsigned;
    val->is_string = k->is_string;
    val->str = k->str;
    val->loc = k->loc;
    idl_sym_add(p->c, k->name, SYM_VALUE, val, k->loc);
    add_item(p, IT_CONST)->cst = k;
}

/* ---- interfaces ----------------------------------------------------------------- */

static int next_is_close(parser *p)
{
    idl_token t = peek(p);
    return t.kind == TK_PUNCT && !strcmp(t.text, ")");
}

static void size_is_attr(parser *p, idl_param *pa)
{
    if (pa->size_is.present)
        idl_error(p->c, p->tok.loc, "duplicate attribute 'size_is'");
    pa->size_is.present = 1;
    next(p);
    expect_punct(p, "(");
    if (is_punct(p, ",")) {
        pa->size_is.level = 1;
        next(p);
    }
    if (is_punct(p, "*")) {
        pa->size_is.deref = 1;
        next(p);
    }
    if (p->tok.kind != TK_IDENT || !next_is_close(p))
        idl_error(p->c, p->tok.loc,
                  "size_is supports a parameter name or *name only, not an expression");
    pa->size_is.name = expect_ident(p, "a parameter name", &pa->size_is.loc);
    expect_punct(p, ")");
}

static void flag_attr(parser *p, int *flag, idl_loc *loc)
{
    if (*flag)
        idl_error(p->c, p->tok.loc, "duplicate attribute '%s'", p->tok.text);
    *flag = 1;
    if (loc)
        *loc = p->tok.loc;
    next(p);
}

static void param_attrs(parser *p, idl_param *pa)
{
    if (!is_punct(p, "["))
        return;
    next(p);
    for (;;) {
        if (p->tok.kind != TK_IDENT)
            expected(p, "an attribute");
        if (is_word(p, "in")) {
            flag_attr(p, &pa->a_in, NULL);
        } else if (is_word(p, "out")) {
            flag_attr(p, &pa->a_out, &pa->a_out_loc);
        } else if (is_word(p, "retval")) {
            flag_attr(p, &pa->a_retval, &pa->a_retval_loc);
        } else if (is_word(p, "string")) {
            flag_attr(p, &pa->a_string, &pa->a_string_loc);
        } else if (is_word(p, "size_is")) {
            size_is_attr(p, pa);
        } else if (is_word(p, "iid_is")) {
            if (pa->iid_is)
                idl_error(p->c, p->tok.loc, "duplicate attribute 'iid_is'");
            next(p);
            expect_punct(p, "(");
            if (p->tok.kind != TK_IDENT || !next_is_close(p))
                idl_error(p->c, p->tok.loc, "iid_is supports a parameter name only");
            pa->iid_is = expect_ident(p, "a parameter name", &pa->iid_is_loc);
            expect_punct(p, ")");
        } else {
            refused_attr(p, " on parameters");
        }
        if (is_punct(p, "]"))
            break;
        expect_punct(p, ",");
    }
    next(p);
}

static void parse_params(parser *p, idl_method *m)
{
    expect_punct(p, "(");
    if (is_word(p, "void") && next_is_close(p)) {
        next(p);
        next(p);
        return;
    }
    if (is_punct(p, ")")) {
        next(p);
        return;
    }
    int cap = 4;
    m->params = idl_alloc(p->c, sizeof(idl_param) * (size_t)cap);
    for (;;) {
        idl_param pa;
        memset(&pa, 0, sizeof(pa));
        param_attrs(p, &pa);
        idl_loc tloc;
        typespec(p, &pa.type, &tloc);
        if (is_punct(p, ",") || is_punct(p, ")"))
            idl_error(p->c, p->tok.loc, "parameter needs a name");
        pa.name = declarator(p, &pa.type, &pa.loc);
        for (int i = 0; i < m->nparams; i++)
            if (!strcmp(m->params[i].name, pa.name))
                idl_error(p->c, pa.loc, "duplicate parameter '%s'", pa.name);
        if (m->nparams == 1024)
            idl_error(p->c, pa.loc, "more than 1024 parameters");
        if (m->nparams == cap) {
            idl_param *n = idl_alloc(p->c, sizeof(idl_param) * (size_t)cap * 2);
            memcpy(n, m->params, sizeof(idl_param) * (size_t)cap);
            m->params = n;
            cap *= 2;
        }
        m->params[m->nparams++] = pa;
        if (is_punct(p, ")"))
            break;
        expect_punct(p, ",");
    }
    next(p);
}

static void parse_methods(parser *p, idl_iface *itf)
{
    int cap = 8;
    itf->methods = idl_alloc(p->c, sizeof(idl_method) * (size_t)cap);
    while (!is_punct(p, "}")) {
        if (p->tok.kind == TK_EOF)
            expected(p, "'}'");
        if (is_word(p, "typedef") || is_word(p, "const") || is_word(p, "cpp_quote") ||
            is_word(p, "import"))
            idl_error(p->c, p->tok.loc,
                      "declarations inside an interface are not supported; move '%s' before "
                      "the interface",
                      p->tok.text);
        no_attributes(p, " on methods");
        idl_method m;
        memset(&m, 0, sizeof(m));
        idl_loc tloc;
        typespec(p, &m.ret, &tloc);
        while (is_punct(p, "*")) {
            m.ret.nptr++;
            next(p);
        }
        m.name = expect_ident(p, "a method name", &m.loc);
        parse_params(p, &m);
        expect_punct(p, ";");
        if (itf->nmethods == 4096)
            idl_error(p->c, m.loc, "more than 4096 methods");
        if (itf->nmethods == cap) {
            idl_method *n = idl_alloc(p->c, sizeof(idl_method) * (size_t)cap * 2);
            memcpy(n, itf->methods, sizeof(idl_method) * (size_t)cap);
            itf->methods = n;
            cap *= 2;
        }
        itf->methods[itf->nmethods++] = m;
    }
    next(p);
}

typedef struct iface_attrs {
    int any;
    idl_loc loc;
    int object, local, has_uuid;
    const char *uuid;
    idl_loc uuid_loc;
} iface_attrs;

static void parse_iface_attrs(parser *p, iface_attrs *a)
{
    a->any = 1;
    a->loc = p->tok.loc;
    next(p); /* [ */
    for (;;) {
        if (p->tok.kind != TK_IDENT)
            expected(p, "an attribute");
        if (is_word(p, "object")) {
            flag_attr(p, &a->object, NULL);
        } else if (is_word(p, "local")) {
            flag_attr(p, &a->local, NULL);
        } else if (is_word(p, "uuid")) {
            if (a->has_uuid)
                idl_error(p->c, p->tok.loc, "duplicate attribute 'uuid'");
            a->has_uuid = 1;
            /* read raw: 12345678-1234-... is no sequence of C tokens */
            a->uuid = idl_lex_uuid(&p->lx, &a->uuid_loc);
            next(p);
        } else if (is_word(p, "pointer_default")) {
            next(p);
            expect_punct(p, "(");
            if (!is_word(p, "unique") && !is_word(p, "ref") && !is_word(p, "ptr"))
                expected(p, "unique, ref or ptr");
            next(p);
            expect_punct(p, ")");
        } else if (is_word(p, "helpstring")) {
            /* documentation only */
            next(p);
            expect_punct(p, "(");
            if (p->tok.kind != TK_STRING)
                expected(p, "a string");
            next(p);
            expect_punct(p, ")");
        } else {
            refused_attr(p, " on interfaces");
        }
        if (is_punct(p, "]"))
            break;
        expect_punct(p, ",");
    }
    next(p);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static void parse_uuid(parser *p, idl_iface *itf, const char *text, idl_loc loc)
{
    static const int groups[] = {8, 4, 4, 4, 12}; /* hex digits */
    const char *s = text;
    int byte = 0;
    for (int g = 0; g < 5; g++) {
        for (int i = 0; i < groups[g]; i += 2) {
            int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
            if (hi < 0 || lo < 0)
                idl_error(p->c, loc, "malformed uuid '%s'", text);
            itf->uuid[byte++] = (uint8_t)(hi * 16 + lo);
            s += 2;
        }
        if (g < 4 && *s++ != '-')
            idl_error(p->c, loc, "malformed uuid '%s'", text);
    }
    if (*s)
        idl_error(p->c, loc, "malformed uuid '%s'", text);
    itf->has_uuid = 1;
    itf->uuid_text = text;
    itf->uuid_loc = loc;
}

static idl_iface *new_iface(parser *p, const char *name, idl_loc loc)
{
    idl_iface *itf = idl_alloc(p->c, sizeof(*itf));
    itf->name = name;
    itf->loc = loc;
    itf->imported = !p->is_main;
    idl_type *t = new_type(p, TY_INTERFACE, name, name, loc);
    t->itf = itf;
    idl_sym_add(p->c, name, SYM_TYPE, t, loc);
    idl_add_iface(p->c, itf);
    return itf;
}

static void parse_interface(parser *p, iface_attrs *a)
{
    idl_loc kwloc = p->tok.loc;
    next(p); /* interface */
    idl_loc loc;
    const char *name = expect_ident(p, "an interface name", &loc);
    idl_type *t = idl_type_find(p->c, name);
    if (t && (t->kind != TY_INTERFACE || (t->itf->defined && !is_punct(p, ";")))) {
        if (t->kind == TY_INTERFACE && t->builtin)
            idl_error(p->c, loc, "interface '%s' is built in", name);
        idl_sym_add(p->c, name, SYM_TYPE, NULL, loc); /* reports where it was defined */
    }
    if (is_punct(p, ";")) {
        next(p);
        if (a->any)
            idl_error(p->c, a->loc, "attributes on a forward declaration are not supported");
        idl_iface *itf = t ? t->itf : new_iface(p, name, loc);
        add_item(p, IT_IFACE_FWD)->itf = itf;
        return;
    }
    idl_iface *itf = t ? t->itf : new_iface(p, name, loc);
    if (t) {
        itf->loc = loc;
        t->loc = loc;
    }
    itf->defined = 1;
    itf->imported = !p->is_main;
    if (!a->any)
        idl_error(p->c, kwloc, "interface '%s' has no attributes; shmidl needs [object, uuid(...)]",
                  name);
    itf->a_object = a->object;
    itf->a_local = a->local;
    if (a->has_uuid)
        parse_uuid(p, itf, a->uuid, a->uuid_loc);
    if (is_punct(p, ":")) {
        next(p);
        itf->base_name = expect_ident(p, "a base interface", &itf->base_loc);
    }
    expect_punct(p, "{");
    parse_methods(p, itf);
    if (is_punct(p, ";"))
        next(p);
    add_item(p, IT_IFACE)->itf = itf;
}

/* ---- file level --------------------------------------------------------------- */

static const char *header_name(parser *p, const char *idl)
{
    size_t n = strlen(idl);
    if (n > 4 && !strcmp(idl + n - 4, ".idl"))
        n -= 4;
    return idl_printf(p->c, "%.*s.h", (int)n, idl);
}

static void parse_import(parser *p)
{
    next(p); /* import */
    for (;;) {
        if (p->tok.kind != TK_STRING)
            expected(p, "a file name in quotes");
        const char *name = p->tok.text;
        idl_loc loc = p->tok.loc;
        next(p);
        int builtin = idl_import(p->c, name, loc, p->file);
        idl_item *it = add_item(p, IT_IMPORT);
        it->text = header_name(p, name);
        it->import_builtin = builtin;
        if (!is_punct(p, ","))
            break;
        next(p);
    }
    expect_punct(p, ";");
}

static void parse_cpp_quote(parser *p)
{
    next(p);
    expect_punct(p, "(");
    if (p->tok.kind != TK_STRING)
        expected(p, "a string");
    const char *text = p->tok.text;
    next(p);
    expect_punct(p, ")");
    if (is_punct(p, ";"))
        next(p);
    add_item(p, IT_CPPQUOTE)->text = text;
}

static const char *const refused_words[] = {"library",   "coclass",     "dispinterface", "module",
                                            "importlib", "midl_pragma", "union"};

static void refuse_word(parser *p)
{
    if (p->tok.kind == TK_IDENT)
        for (size_t i = 0; i < sizeof(refused_words) / sizeof(refused_words[0]); i++)
            if (is_word(p, refused_words[i]))
                idl_error(p->c, p->tok.loc, "'%s' is not supported by shmidl", p->tok.text);
}

void idl_parse(idl_ctx *c, const char *file, const char *text, size_t len, int is_main)
{
    parser p;
    memset(&p, 0, sizeof(p));
    p.c = c;
    p.file = file;
    p.is_main = is_main;
    idl_lex_init(&p.lx, c, file, text, len);
    next(&p);
    while (p.tok.kind != TK_EOF) {
        if (is_punct(&p, ";")) {
            next(&p);
        } else if (is_word(&p, "import")) {
            parse_import(&p);
        } else if (is_word(&p, "cpp_quote")) {
            parse_cpp_quote(&p);
        } else if (is_word(&p, "typedef")) {
            parse_typedef(&p);
        } else if (is_word(&p, "const")) {
            parse_const(&p);
        } else if (is_word(&p, "struct") || is_word(&p, "enum")) {
            parse_tagged(&p);
        } else if (is_word(&p, "interface")) {
            iface_attrs a;
            memset(&a, 0, sizeof(a));
            parse_interface(&p, &a);
        } else if (is_punct(&p, "[")) {
            iface_attrs a;
            memset(&a, 0, sizeof(a));
            parse_iface_attrs(&p, &a);
            if (!is_word(&p, "interface")) {
                refuse_word(&p);
                expected(&p, "'interface'");
            }
            parse_interface(&p, &a);
        } else {
            refuse_word(&p);
            expected(&p, "a declaration");
        }
    }
}
