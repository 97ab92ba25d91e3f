/*
 * ast.c - the arena every AST node lives in, the error exit, and the
 * growable output buffers.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct idl_arena_block {
    idl_arena_block *next;
    size_t used, cap;
    /* max_align_t keeps every allocation aligned for any type */
    _Alignas(max_align_t) unsigned char data[];
};

#define ARENA_BLOCK 65536

IDL_NORETURN static void out_of_memory(idl_ctx *c)
{
    idl_error_noloc(c, "out of memory");
}

void *idl_alloc(idl_ctx *c, size_t size)
{
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size)
        out_of_memory(c);
    idl_arena_block *b = c->arena;
    if (!b || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            out_of_memory(c);
        b->next = c->arena;
        b->used = 0;
        b->cap = cap;
        c->arena = b;
    }
    void *p = b->data + b->used;
    b->used += need;
    memset(p, 0, size);
    return p;
}

void idl_arena_free(idl_ctx *c);
void idl_arena_free(idl_ctx *c)
{
    while (c->arena) {
        idl_arena_block *n = c->arena->next;
        free(c->arena);
        c->arena = n;
    }
}

char *idl_strndup(idl_ctx *c, const char *s, size_t n)
{
    char *p = idl_alloc(c, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *idl_strdup(idl_ctx *c, const char *s)
{
    return idl_strndup(c, s, strlen(s));
}

IDL_PRINTF(2, 0) static char *vformat(idl_ctx *c, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *p = idl_alloc(c, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *idl_printf(idl_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = vformat(c, fmt, ap);
    va_end(ap);
    return p;
}

static void report(idl_ctx *c, const char *line)
{
    if (c->opts->diag)
        c->opts->diag(c->opts->diag_ud, line);
    else
        fprintf(stderr, "%s\n", line);
}

/* The message is formatted into a fixed buffer: on the out-of-memory path
 * the arena cannot be used. */
IDL_PRINTF(3, 0)
static void report_v(idl_ctx *c, const char *prefix, const char *fmt, va_list ap)
{
    char msg[1024];
    size_t n = strlen(prefix);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    memcpy(msg, prefix, n);
    vsnprintf(msg + n, sizeof(msg) - n, fmt, ap);
    report(c, msg);
}

void idl_error(idl_ctx *c, idl_loc loc, const char *fmt, ...)
{
    char prefix[512];
    snprintf(prefix, sizeof(prefix), "%s:%d:%d: error: ", loc.file ? loc.file : "<input>", loc.line,
             loc.col);
    va_list ap;
    va_start(ap, fmt);
    report_v(c, prefix, fmt, ap);
    va_end(ap);
    longjmp(*c->jmp, 1);
}

void idl_error_noloc(idl_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(c, "shmidl: error: ", fmt, ap);
    va_end(ap);
    longjmp(*c->jmp, 1);
}

void idl_buf_put(idl_ctx *c, idl_buf *b, const char *s, size_t n)
{
    if (b->cap - b->len <= n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2)
                out_of_memory(c);
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d)
            out_of_memory(c);
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = 0;
}

void idl_buf_puts(idl_ctx *c, idl_buf *b, const char *s)
{
    idl_buf_put(c, b, s, strlen(s));
}

void idl_buf_printf(idl_ctx *c, idl_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        idl_buf_put(c, b, small, (size_t)n);
        return;
    }
    va_start(ap, fmt);
    char *p = vformat(c, fmt, ap);
    va_end(ap);
    idl_buf_put(c, b, p, (size_t)n);
}
