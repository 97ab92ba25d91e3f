/*
 * main.c - the shmidl command line:
 *   shmidl [-I DIR]... [-o OUTDIR] [--probe] FILE.idl
 * A host program that uses the C library only (no getopt, no unistd).
 */
#include "shmidl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("Usage: shmidl [-I DIR]... [-o OUTDIR] [--depfile F] [--probe] FILE.idl\n"
          "Compiles FILE.idl (a MIDL subset, see docs/idl.md) into OUTDIR/FILE.h, a header\n"
          "compatible with MIDL's, and OUTDIR/FILE_p.c, the proxies and stubs for the shmcom\n"
          "runtime with the table FILE_ProxyFileInfo.\n"
          "\n"
          "  -I DIR        search DIR for imported files (after the importing file's folder)\n"
          "  -o OUTDIR     write the outputs into OUTDIR (default: the current folder)\n"
          "  --depfile F   also write F, the outputs' dependencies in make syntax\n"
          "  --probe       also write OUTDIR/FILE_probe.c, a program that prints the layout\n"
          "                of every struct and vtable, to compare with MIDL's header\n"
          "  -h, --help    show this help and exit\n"
          "  --version     show the version and exit\n"
          "\n"
          "Errors are reported as FILE:LINE:COL: error: message; the exit status is then 1\n"
          "and no output is written.\n",
          f);
}

int main(int argc, char **argv)
{
    shmidl_options o;
    memset(&o, 0, sizeof(o));
    o.file_imports = 1;
    o.outdir = ".";
    const char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    if (!dirs) {
        fputs("shmidl: error: out of memory\n", stderr);
        return 1;
    }
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--version")) {
            printf("shmidl %s\n", SHMIDL_VERSION);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--probe")) {
            o.emit_probe = 1;
        } else if (!strcmp(a, "--depfile")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shmidl: error: %s needs an argument\n", a);
                goto usage_error;
            }
            o.depfile = argv[++i];
        } else if (!strcmp(a, "-I") || !strcmp(a, "-o")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "shmidl: error: %s needs an argument\n", a);
                goto usage_error;
            }
            if (a[1] == 'I')
                dirs[o.n_include_dirs++] = argv[++i];
            else
                o.outdir = argv[++i];
        } else if (!strncmp(a, "-I", 2)) {
            dirs[o.n_include_dirs++] = a + 2;
        } else if (!strncmp(a, "-o", 2)) {
            o.outdir = a + 2;
        } else if (!strcmp(a, "--")) {
            if (i + 2 != argc || o.input) {
                fputs("shmidl: error: expected one input file\n", stderr);
                goto usage_error;
            }
            o.input = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "shmidl: error: unknown option '%s'\n", a);
            goto usage_error;
        } else {
            if (o.input) {
                fputs("shmidl: error: expected one input file\n", stderr);
                goto usage_error;
            }
            o.input = a;
        }
    }
    if (!o.input) {
        fputs("shmidl: error: no input file\n", stderr);
        goto usage_error;
    }
    o.include_dirs = dirs;
    rc = shmidl_run(&o, NULL);
    goto done;
usage_error:
    fputs("Try 'shmidl --help' for more information.\n", stderr);
    rc = 1;
done:
    free(dirs);
    return rc;
}
