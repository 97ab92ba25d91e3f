/*
 * internal.h - what the stages of shmidl share: the arena, the error exit,
 * tokens, the AST and the output buffer.
 *
 * Stages, one per file: lexer.c (tokens), parser.c (recursive descent,
 * builds the AST and resolves type names as it goes, as MIDL requires
 * declaration before use), symtab.c (names, built-in types, imports),
 * check.c (semantic checks, parameter classification), layout.c (sizes,
 * alignments, frame offsets), emit_header.c, emit_proxy.c, emit_probe.c,
 * driver.c (runs the stages, writes the files).
 *
 * Every allocation comes from one arena that is freed at the end, and the
 * first error longjmps back to the driver: no stage has clean-up paths, and
 * the fuzzer can feed anything without leaks.
 */
#ifndef SHMIDL_INTERNAL_H
#define SHMIDL_INTERNAL_H

#include "shmidl.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- arena and errors ---------------------------------------------------- */

typedef struct idl_arena_block idl_arena_block;

typedef struct idl_loc {
    const char *file;
    int line, col;
} idl_loc;

typedef struct idl_buf {
    char *data;
    size_t len, cap;
} idl_buf;

typedef struct idl_ctx idl_ctx;

#if defined(__GNUC__)
#define IDL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define IDL_NORETURN     __attribute__((noreturn))
#else
#define IDL_PRINTF(f, a)
#define IDL_NORETURN
#endif

void *idl_alloc(idl_ctx *c, size_t size); /* zeroed */
char *idl_strdup(idl_ctx *c, const char *s);
char *idl_strndup(idl_ctx *c, const char *s, size_t n);
char *idl_printf(idl_ctx *c, const char *fmt, ...) IDL_PRINTF(2, 3);

/* Reports "FILE:LINE:COL: error: message" and unwinds to the driver. */
IDL_NORETURN void idl_error(idl_ctx *c, idl_loc loc, const char *fmt, ...) IDL_PRINTF(3, 4);
/* An error with no position (command line, file system). */
IDL_NORETURN void idl_error_noloc(idl_ctx *c, const char *fmt, ...) IDL_PRINTF(2, 3);

/* Growable text buffer (the emitters' output context). Allocated with
 * malloc, because the result outlives the arena. */
void idl_buf_put(idl_ctx *c, idl_buf *b, const char *s, size_t n);
void idl_buf_puts(idl_ctx *c, idl_buf *b, const char *s);
void idl_buf_printf(idl_ctx *c, idl_buf *b, const char *fmt, ...) IDL_PRINTF(3, 4);

/* ---- tokens ------------------------------------------------------------- */

typedef enum idl_tok_kind {
    TK_EOF,
    TK_IDENT,
    TK_NUMBER,
    TK_STRING,
    TK_PUNCT, /* text[0] (and text[1] for << >>) */
} idl_tok_kind;

typedef struct idl_token {
    idl_tok_kind kind;
    idl_loc loc;
    const char *text; /* identifier, punctuation, or the string's value */
    const char *raw;  /* TK_STRING: the text between the quotes as written */
    uint64_t num;     /* TK_NUMBER */
    int num_unsigned; /* a u/U suffix */
} idl_token;

typedef struct idl_lexer {
    idl_ctx *ctx;
    const char *file;
    const char *src, *end, *p;
    int line;
    const char *line_start;
} idl_lexer;

void idl_lex_init(idl_lexer *lx, idl_ctx *c, const char *file, const char *text, size_t len);
void idl_lex_next(idl_lexer *lx, idl_token *t);
/* Reads "(...)" of uuid(...) raw from the current position: the text between
 * the parentheses, trimmed, with any quotes removed. */
const char *idl_lex_uuid(idl_lexer *lx, idl_loc *loc);

/* ---- types and declarations -------------------------------------------- */

typedef enum idl_type_kind {
    TY_BASE,      /* a fixed-width number, boolean or char */
    TY_GUID,      /* GUID, IID, CLSID */
    TY_ENUM,      /* 4 bytes */
    TY_STRUCT,    /* pointer-free */
    TY_ALIAS,     /* typedef of another named type */
    TY_INTERFACE, /* only behind pointers */
    TY_VOID,
    TY_PTRALIAS, /* a built-in pointer typedef: LPSTR, REFIID, LPUNKNOWN... */
} idl_type_kind;

typedef struct idl_struct idl_struct;
typedef struct idl_enum idl_enum;
typedef struct idl_iface idl_iface;
typedef struct idl_type idl_type;

/* A type as written in a declaration: a named type, qualifiers, pointer
 * levels and array dimensions on the declarator. */
typedef struct idl_decltype {
    idl_type *spec;
    int spec_const;
    int nptr;      /* '*' written after the specifier */
    int ptr_const; /* bit i: const after the (i+1)-th '*' */
    int ndims;     /* array dimensions on the name */
    uint32_t dims[4];
} idl_decltype;

struct idl_type {
    idl_type_kind kind;
    const char *name;  /* as written in IDL */
    const char *cname; /* as spelled in the generated C */
    idl_loc loc;
    int builtin;
    /* TY_BASE */
    uint32_t size, align;
    int is_int, is_signed;
    int char_width; /* 1 or 2 if [string] may apply to a pointer to it */
    int is_wchar_t; /* refused: its size is not the same everywhere */
    /* TY_ENUM, TY_STRUCT, TY_INTERFACE */
    idl_enum *en;
    idl_struct *st;
    idl_iface *itf;
    /* TY_ALIAS: the aliased declared type (no pointers) */
    idl_decltype alias;
    /* TY_PTRALIAS: target type, pointer levels, const target, implied [string] */
    idl_type *ptr_target;
    int ptr_levels, ptr_target_const, implies_string;
};

typedef struct idl_field {
    const char *name;
    idl_loc loc;
    idl_decltype type;
    uint32_t offset, size, align;
} idl_field;

struct idl_struct {
    const char *tag;  /* may be NULL */
    const char *name; /* typedef name, or NULL for `struct tag` only */
    idl_loc loc;
    idl_field *fields;
    int nfields;
    idl_type *type; /* `struct tag` (or the typedef if there is no tag) */
    int complete;
    int imported;
    uint32_t size, align;
};

typedef struct idl_enumerator {
    const char *name;
    idl_loc loc;
    int64_t value;
} idl_enumerator;

struct idl_enum {
    const char *tag;
    const char *name;
    idl_loc loc;
    idl_enumerator *items;
    int nitems;
    idl_type *type;
};

/* size_is(...) as written: size_is(n), size_is(*n), size_is(, n), size_is(, *n) */
typedef struct idl_sizeis {
    int present;
    int level; /* 0: the first pointer, 1: the second (size_is(, ...)) */
    int deref; /* *name */
    const char *name;
    idl_loc loc;
} idl_sizeis;

/* Parameter kinds and flags: the values of SHM_PK_* and SHM_PF_* in
 * <shmcom/proxystub.h> (the compiler does not include runtime headers). */
enum {
    PK_VALUE = 1,
    PK_REF = 2,
    PK_STRING = 3,
    PK_ARRAY = 4,
    PK_ARRAY_ALLOC = 5,
    PK_INTERFACE = 6,
};
enum { PF_IN = 1, PF_OUT = 2, PF_RETVAL = 4, PF_SIGNED = 8 };
#define IDL_NO_SLOT 0xFFFFFFFFu

typedef struct idl_param {
    const char *name;
    idl_loc loc;
    idl_decltype type;
    int a_in, a_out, a_retval, a_string;
    idl_loc a_string_loc, a_retval_loc, a_out_loc;
    idl_sizeis size_is;
    const char *iid_is;
    idl_loc iid_is_loc;
    /* set by check.c */
    int kind, flags;
    int size_param; /* index + 1, or 0 */
    int iid_param;  /* index + 1, or 0 */
    idl_type *elem; /* the element type (data kinds) */
    idl_iface *itf; /* PK_INTERFACE without iid_is: its interface */
    /* set by layout.c */
    uint32_t elem_size, elem_align, count;
    uint32_t in_offset, out_offset;
} idl_param;

typedef struct idl_method {
    const char *name;
    idl_loc loc;
    idl_decltype ret;
    idl_param *params;
    int nparams;
    uint32_t in_size, out_size; /* layout.c */
} idl_method;

struct idl_iface {
    const char *name;
    idl_loc loc;
    int defined;  /* a body was seen (else only `interface IFoo;`) */
    int imported; /* defined in an imported file */
    int builtin;  /* IUnknown, ISequentialStream, IStream */
    int a_object, a_local, has_uuid;
    uint8_t uuid[16]; /* in the order of a GUID's text */
    const char *uuid_text;
    idl_loc uuid_loc;
    const char *base_name;
    idl_loc base_loc;
    idl_iface *base;
    idl_method *methods;
    int nmethods;
    int checked; /* check.c: 1 in progress, 2 done */
    int nslots;  /* vtable slots, IUnknown's included */
};

typedef struct idl_const {
    const char *name;
    idl_loc loc;
    idl_decltype type;
    int is_string;
    int64_t value;
    int is_unsigned;
    const char *str;
} idl_const;

typedef enum idl_item_kind {
    IT_CPPQUOTE,
    IT_IMPORT,
    IT_CONST,
    IT_STRUCT,
    IT_ENUM,
    IT_ALIAS,
    IT_IFACE_FWD,
    IT_IFACE,
} idl_item_kind;

typedef struct idl_item {
    idl_item_kind kind;
    struct idl_item *next;
    const char *text;   /* IT_CPPQUOTE: the quoted text; IT_IMPORT: header name */
    int import_builtin; /* IT_IMPORT of unknwn.idl etc. */
    idl_const *cst;
    idl_struct *st;
    const char *st_typedef; /* IT_STRUCT: the typedef name (if any) */
    idl_enum *en;
    idl_type *alias;
    idl_iface *itf;
} idl_item;

/* ---- context -------------------------------------------------------------- */

typedef struct idl_sym {
    const char *name;
    int ns; /* SYM_* */
    void *ptr;
    struct idl_sym *next;
} idl_sym;

enum { SYM_TYPE, SYM_STRUCT_TAG, SYM_ENUM_TAG, SYM_VALUE };
/* SYM_VALUE points at an idl_value */
typedef struct idl_value {
    int64_t value;
    int is_unsigned;
    int is_string;
    const char *str;
    idl_loc loc;
} idl_value;

#define IDL_HASH_SIZE 1024

typedef struct idl_file {
    const char *path;
    struct idl_file *next;
} idl_file;

struct idl_ctx {
    const shmidl_options *opts;
    jmp_buf *jmp;
    idl_arena_block *arena;
    idl_sym *syms[IDL_HASH_SIZE];
    idl_file *files; /* every file read (imports are read once) */
    int import_depth;
    idl_item *items; /* the main file's top-level items, in order */
    idl_item **items_tail;
    idl_iface **ifaces; /* every interface, imported and built-in too */
    int nifaces, ifaces_cap;
    const char *base;  /* output base name */
    const char *ident; /* base with non-identifier characters as '_' */
    const char *main_file;
    idl_iface *iunknown;
    idl_buf out_h, out_p, out_probe, out_dep;
};

/* symtab.c */
void idl_symtab_init(idl_ctx *c);
void *idl_sym_find(idl_ctx *c, const char *name, int ns);
idl_sym *idl_sym_find_any(idl_ctx *c, const char *name, int ns);
void idl_sym_add(idl_ctx *c, const char *name, int ns, void *ptr, idl_loc loc);
idl_type *idl_type_find(idl_ctx *c, const char *name);
void idl_add_iface(idl_ctx *c, idl_iface *itf);
/* Loads and parses an import; returns 1 if it is a built-in one. */
int idl_import(idl_ctx *c, const char *name, idl_loc loc, const char *from_file);
/* Reads a file into the arena; returns NULL if it does not open. */
char *idl_read_file(idl_ctx *c, const char *path, size_t *len);
idl_iface *idl_iunknown(idl_ctx *c);

/* parser.c */
void idl_note_main_file(idl_ctx *c, const char *path);
void idl_parse(idl_ctx *c, const char *file, const char *text, size_t len, int is_main);

/* check.c */
void idl_check(idl_ctx *c);
/* Checks a struct's fields and lays it out; called when its body ends. */
void idl_check_struct(idl_ctx *c, idl_struct *s);
/* The type behind aliases (never TY_ALIAS). */
idl_type *idl_resolve(idl_type *t);
int idl_is_data_type(idl_type *t);

/* layout.c */
void idl_layout_struct(idl_ctx *c, idl_struct *s);
void idl_layout_method(idl_ctx *c, idl_method *m);
/* Size and alignment of a declared type without pointers. */
void idl_data_layout(idl_ctx *c, const idl_decltype *d, idl_loc loc, uint32_t *size,
                     uint32_t *align);

/* emitters */
void idl_emit_header(idl_ctx *c);
void idl_emit_proxy(idl_ctx *c);
void idl_emit_probe(idl_ctx *c);
/* C text of a declared type with a declarator name (may be "" for a cast). */
void idl_put_decl(idl_ctx *c, idl_buf *b, const idl_decltype *d, const char *name,
                  int drop_top_const);
/* The interface's methods in vtable order, the bases' first. */
int idl_all_methods(idl_iface *itf, idl_method **out, int max);

#endif /* SHMIDL_INTERNAL_H */
