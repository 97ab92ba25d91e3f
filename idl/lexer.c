/*
 * lexer.c - turns IDL text into tokens. Positions are 1-based lines and
 * columns counted in bytes. Comments are skipped; an unterminated comment
 * or string is an error at its start, never a scan past the end.
 */
#include "internal.h"

#include <string.h>

void idl_lex_init(idl_lexer *lx, idl_ctx *c, const char *file, const char *text, size_t len)
{
    lx->ctx = c;
    lx->file = file;
    lx->src = lx->p = text;
    lx->end = text + len;
    lx->line = 1;
    lx->line_start = text;
}

static idl_loc here(idl_lexer *lx)
{
    idl_loc l = {lx->file, lx->line, (int)(lx->p - lx->line_start) + 1};
    return l;
}

static int is_alpha(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static int is_hex(int ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int hex_value(int ch)
{
    if (is_digit(ch))
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return ch - 'A' + 10;
}

static void newline(idl_lexer *lx)
{
    lx->line++;
    lx->line_start = lx->p;
}

/* Skips white space and comments. */
static void skip_space(idl_lexer *lx)
{
    for (;;) {
        if (lx->p >= lx->end)
            return;
        char ch = *lx->p;
        if (ch == '\n') {
            lx->p++;
            newline(lx);
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            lx->p++;
        } else if (ch == '/' && lx->p + 1 < lx->end && lx->p[1] == '/') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else if (ch == '/' && lx->p + 1 < lx->end && lx->p[1] == '*') {
            idl_loc start = here(lx);
            lx->p += 2;
            for (;;) {
                if (lx->p >= lx->end)
                    idl_error(lx->ctx, start, "unterminated comment");
                if (*lx->p == '*' && lx->p + 1 < lx->end && lx->p[1] == '/') {
                    lx->p += 2;
                    break;
                }
                if (*lx->p++ == '\n')
                    newline(lx);
            }
        } else {
            return;
        }
    }
}

static void lex_number(idl_lexer *lx, idl_token *t)
{
    const char *s = lx->p;
    uint64_t v = 0;
    int overflow = 0;
    if (s[0] == '0' && s + 1 < lx->end && (s[1] == 'x' || s[1] == 'X')) {
        lx->p += 2;
        if (lx->p >= lx->end || !is_hex(*lx->p))
            idl_error(lx->ctx, t->loc, "malformed number");
        while (lx->p < lx->end && is_hex(*lx->p)) {
            if (v >> 60)
                overflow = 1;
            v = v * 16 + (uint64_t)hex_value(*lx->p++);
        }
    } else if (s[0] == '0') {
        lx->p++;
        while (lx->p < lx->end && is_digit(*lx->p)) {
            if (*lx->p > '7')
                idl_error(lx->ctx, t->loc, "malformed octal number");
            if (v >> 61)
                overflow = 1;
            v = v * 8 + (uint64_t)(*lx->p++ - '0');
        }
    } else {
        while (lx->p < lx->end && is_digit(*lx->p)) {
            uint64_t d = (uint64_t)(*lx->p++ - '0');
            if (v > (UINT64_MAX - d) / 10)
                overflow = 1;
            v = v * 10 + d;
        }
    }
    if (lx->p < lx->end && (*lx->p == '.' || *lx->p == 'e' || *lx->p == 'E'))
        idl_error(lx->ctx, t->loc, "floating-point numbers are not supported");
    int u = 0, l = 0;
    while (lx->p < lx->end && (*lx->p == 'u' || *lx->p == 'U' || *lx->p == 'l' || *lx->p == 'L')) {
        if (*lx->p == 'u' || *lx->p == 'U')
            u++;
        else
            l++;
        lx->p++;
    }
    if (u > 1 || l > 2 || (lx->p < lx->end && (is_alpha(*lx->p) || is_digit(*lx->p))))
        idl_error(lx->ctx, t->loc, "malformed number");
    if (overflow)
        idl_error(lx->ctx, t->loc, "number too large");
    t->kind = TK_NUMBER;
    t->num = v;
    t->num_unsigned = u;
    t->text = idl_strndup(lx->ctx, s, (size_t)(lx->p - s));
}

/* A string's value keeps escape sequences as written, except \" and \\,
 * which become " and \ (what MIDL and widl do for cpp_quote). */
static void lex_string(idl_lexer *lx, idl_token *t)
{
    lx->p++; /* " */
    const char *start = lx->p;
    size_t n = 0;
    for (;;) {
        if (lx->p >= lx->end || *lx->p == '\n')
            idl_error(lx->ctx, t->loc, "unterminated string");
        if (*lx->p == '"')
            break;
        if (*lx->p == '\\') {
            if (lx->p + 1 >= lx->end || lx->p[1] == '\n')
                idl_error(lx->ctx, t->loc, "unterminated string");
            lx->p++;
        }
        if (*lx->p == 0)
            idl_error(lx->ctx, t->loc, "NUL character in a string");
        lx->p++;
        n++;
    }
    const char *endq = lx->p;
    lx->p++; /* " */
    char *v = idl_alloc(lx->ctx, n + 1), *o = v;
    for (const char *s = start; s < endq; s++) {
        if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
            s++;
        else if (*s == '\\')
            *o++ = *s++;
        *o++ = *s;
    }
    *o = 0;
    t->kind = TK_STRING;
    t->text = v;
    t->raw = idl_strndup(lx->ctx, start, (size_t)(endq - start));
}

void idl_lex_next(idl_lexer *lx, idl_token *t)
{
    skip_space(lx);
    memset(t, 0, sizeof(*t));
    t->loc = here(lx);
    if (lx->p >= lx->end) {
        t->kind = TK_EOF;
        t->text = "end of file";
        return;
    }
    unsigned char ch = (unsigned char)*lx->p;
    if (is_alpha(ch)) {
        const char *s = lx->p;
        while (lx->p < lx->end && (is_alpha(*lx->p) || is_digit(*lx->p)))
            lx->p++;
        t->kind = TK_IDENT;
        t->text = idl_strndup(lx->ctx, s, (size_t)(lx->p - s));
        return;
    }
    if (is_digit(ch)) {
        lex_number(lx, t);
        return;
    }
    if (ch == '"') {
        lex_string(lx, t);
        return;
    }
    if (ch == '#')
        idl_error(lx->ctx, t->loc, "preprocessor directives are not supported");
    if (ch == '\'')
        idl_error(lx->ctx, t->loc, "character constants are not supported");
    if ((ch == '<' || ch == '>') && lx->p + 1 < lx->end && lx->p[1] == (char)ch) {
        t->kind = TK_PUNCT;
        t->text = ch == '<' ? "<<" : ">>";
        lx->p += 2;
        return;
    }
    static const char punct[] = "{}()[];,:=*<>+-/%&|^~!.?";
    if (ch && strchr(punct, ch)) {
        static const char *const one[] = {"{", "}", "(", ")", "[", "]", ";", ",",
                                          ":", "=", "*", "<", ">", "+", "-", "/",
                                          "%", "&", "|", "^", "~", "!", ".", "?"};
        t->kind = TK_PUNCT;
        t->text = one[strchr(punct, ch) - punct];
        lx->p++;
        return;
    }
    if (ch >= 0x21 && ch < 0x7f)
        idl_error(lx->ctx, t->loc, "unexpected character '%c'", ch);
    idl_error(lx->ctx, t->loc, "unexpected character 0x%02x", ch);
}

const char *idl_lex_uuid(idl_lexer *lx, idl_loc *loc)
{
    skip_space(lx);
    if (lx->p >= lx->end || *lx->p != '(') {
        idl_loc l = here(lx);
        idl_error(lx->ctx, l, "expected '(' after 'uuid'");
    }
    lx->p++;
    skip_space(lx);
    *loc = here(lx);
    const char *s = lx->p;
    while (lx->p < lx->end && *lx->p != ')' && *lx->p != '\n')
        lx->p++;
    if (lx->p >= lx->end || *lx->p != ')')
        idl_error(lx->ctx, *loc, "unterminated uuid(...)");
    const char *e = lx->p;
    lx->p++; /* ) */
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"') {
        s++;
        e--;
    }
    return idl_strndup(lx->ctx, s, (size_t)(e - s));
}
