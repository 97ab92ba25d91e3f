/*
 * driver.c - runs the stages and writes the outputs. Each output is written
 * to a fresh temporary file beside its final name and renamed into place
 * only when all of them were written, so an error never leaves a partial
 * or half-updated output.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void idl_arena_free(idl_ctx *c);

static const char *base_name(idl_ctx *c, const char *path)
{
    const char *s = path;
    for (const char *p = path; *p; p++)
        if (*p == '/' || *p == '\\')
            s = p + 1;
    size_t n = strlen(s);
    if (n > 4 && !strcmp(s + n - 4, ".idl"))
        n -= 4;
    return idl_strndup(c, s, n);
}

static const char *identifier(idl_ctx *c, const char *base)
{
    char *id = idl_printf(c, "%s%s", (base[0] >= '0' && base[0] <= '9') ? "_" : "", base);
    for (char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            *p = '_';
    return id;
}

typedef struct outfile {
    const char *final;
    char *tmp;
    const idl_buf *buf;
} outfile;

/* A temporary name that nobody uses: "wx" (C11) refuses an existing file. */
static FILE *open_temp(idl_ctx *c, outfile *o)
{
    unsigned long seed =
        (unsigned long)time(NULL) ^ (unsigned long)clock() ^ (unsigned long)(size_t)o;
    for (int i = 0; i < 100; i++) {
        o->tmp =
            idl_printf(c, "%s.%lx.tmp", o->final, (seed + (unsigned long)i * 7919u) & 0xFFFFFFu);
        FILE *f = fopen(o->tmp, "wbx");
        if (f)
            return f;
    }
    o->tmp = NULL;
    return NULL;
}

static void remove_temps(outfile *o, int n)
{
    for (int i = 0; i < n; i++)
        if (o[i].tmp)
            remove(o[i].tmp);
}

static void write_outputs(idl_ctx *c, outfile *o, int n)
{
    for (int i = 0; i < n; i++) {
        FILE *f = open_temp(c, &o[i]);
        if (!f) {
            remove_temps(o, i);
            idl_error_noloc(c, "cannot write %s", o[i].final);
        }
        size_t len = o[i].buf->len;
        int bad = fwrite(o[i].buf->data, 1, len, f) != len;
        bad |= fclose(f) != 0;
        if (bad) {
            remove_temps(o, i + 1);
            idl_error_noloc(c, "cannot write %s", o[i].final);
        }
    }
    for (int i = 0; i < n; i++) {
        /* rename() does not replace an existing file on Windows */
        if (rename(o[i].tmp, o[i].final) != 0 &&
            (remove(o[i].final), rename(o[i].tmp, o[i].final) != 0)) {
            for (int j = 0; j < i; j++)
                remove(o[j].final); /* never leave a mismatched pair */
            remove_temps(o + i, n - i);
            idl_error_noloc(c, "cannot write %s", o[i].final);
        }
        o[i].tmp = NULL;
    }
}

/* Make syntax: spaces and '#' escaped, '$' doubled. */
static void put_dep_path(idl_ctx *c, idl_buf *b, const char *path, int space)
{
    if (space)
        idl_buf_puts(c, b, " ");
    for (const char *p = path; *p; p++) {
        if (*p == ' ' || *p == '#' || *p == '\\')
            idl_buf_puts(c, b, "\\");
        if (*p == '$')
            idl_buf_puts(c, b, "$");
        idl_buf_put(c, b, p, 1);
    }
}

static void run(idl_ctx *c)
{
    const shmidl_options *o = c->opts;
    if (!o->input || !*o->input)
        idl_error_noloc(c, "no input file");
    c->main_file = o->input;
    c->base = base_name(c, o->input);
    if (!*c->base)
        idl_error_noloc(c, "%s: no file name", o->input);
    c->ident = identifier(c, c->base);
    c->items_tail = &c->items;
    idl_symtab_init(c);
    idl_note_main_file(c, o->input);
    const char *text = o->text;
    size_t len = o->text_len;
    if (!text) {
        text = idl_read_file(c, o->input, &len);
        if (!text)
            idl_error_noloc(c, "cannot open %s", o->input);
    }
    idl_parse(c, o->input, text, len, 1);
    idl_check(c);
    idl_emit_header(c);
    idl_emit_proxy(c);
    if (o->emit_probe)
        idl_emit_probe(c);
    if (o->outdir) {
        const char *dir = *o->outdir ? o->outdir : ".";
        outfile files[4] = {
            {idl_printf(c, "%s/%s.h", dir, c->base), NULL, &c->out_h},
            {idl_printf(c, "%s/%s_p.c", dir, c->base), NULL, &c->out_p},
            {idl_printf(c, "%s/%s_probe.c", dir, c->base), NULL, &c->out_probe},
            {NULL, NULL, NULL},
        };
        if (!o->emit_probe)
            files[2] = files[3];
        int n = o->emit_probe ? 3 : 2;
        idl_buf dep = {0, 0, 0};
        if (o->depfile) {
            put_dep_path(c, &dep, files[0].final, 0);
            put_dep_path(c, &dep, files[1].final, 1);
            idl_buf_puts(c, &dep, ":");
            /* the files list is newest first: print the input first */
            int nf = 0;
            for (idl_file *f = c->files; f; f = f->next)
                nf++;
            for (int i = nf - 1; i >= 0; i--) {
                idl_file *f = c->files;
                for (int k = 0; k < i; k++)
                    f = f->next;
                put_dep_path(c, &dep, f->path, 1);
            }
            idl_buf_puts(c, &dep, "\n");
            c->out_dep = dep;
            files[n].final = o->depfile;
            files[n].buf = &c->out_dep;
            n++;
        }
        write_outputs(c, files, n);
    }
}

static char *take(idl_buf *b, size_t *len)
{
    *len = b->len;
    char *p = b->data;
    b->data = NULL;
    return p;
}

int shmidl_run(const shmidl_options *opts, shmidl_output *out)
{
    idl_ctx *c = calloc(1, sizeof(*c));
    jmp_buf jb;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!c) {
        if (opts->diag)
            opts->diag(opts->diag_ud, "shmidl: error: out of memory");
        else
            fprintf(stderr, "shmidl: error: out of memory\n");
        return 1;
    }
    c->opts = opts;
    c->jmp = &jb;
    int rc = 0;
    if (setjmp(jb) == 0) {
        run(c);
        if (out) {
            char *base = malloc(strlen(c->base) + 1);
            if (base) {
                strcpy(base, c->base);
                out->base = base;
                out->header = take(&c->out_h, &out->header_len);
                out->proxy = take(&c->out_p, &out->proxy_len);
                out->probe = take(&c->out_probe, &out->probe_len);
            } else {
                rc = 1;
            }
        }
    } else {
        rc = 1;
    }
    free(c->out_h.data);
    free(c->out_p.data);
    free(c->out_probe.data);
    free(c->out_dep.data);
    idl_arena_free(c);
    free(c);
    return rc;
}

void shmidl_output_free(shmidl_output *out)
{
    if (!out)
        return;
    free(out->header);
    free(out->proxy);
    free(out->probe);
    free(out->base);
    memset(out, 0, sizeof(*out));
}
