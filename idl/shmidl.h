/*
 * shmidl.h - the IDL-lite compiler as a library. The command-line program
 * (main.c) is a thin layer over shmidl_run(); the tests and the fuzzer call
 * it in-process.
 *
 * The compiler reads one .idl file (and the files it imports), checks it
 * and produces two texts: a C header (FILE.h) that is layout- and
 * name-compatible with what MIDL and widl emit, and the proxy/stub file
 * (FILE_p.c) of tables and thunks for the shmcom runtime
 * (<shmcom/proxystub.h>). It stops at the first error, which it reports as
 * "FILE:LINE:COL: error: message".
 */
#ifndef SHMIDL_H
#define SHMIDL_H

#include <stddef.h>

#define SHMIDL_VERSION "0.1.0"

/* Receives one diagnostic line (without the newline). */
typedef void (*shmidl_diag_fn)(void *ud, const char *line);

typedef struct shmidl_options {
    /* The input file's path; its base name names the outputs. */
    const char *input;
    /* If non-NULL, the input's text (text_len bytes, need not be
     * NUL-terminated) instead of reading `input` from disk. */
    const char *text;
    size_t text_len;
    /* Directories searched for imports after the importing file's own. */
    const char *const *include_dirs;
    size_t n_include_dirs;
    /* Zero: imports other than the built-in ones are refused (the fuzzer
     * must not read files). */
    int file_imports;
    /* Where FILE.h and FILE_p.c (and FILE_probe.c) are written; NULL writes
     * nothing (the texts are still returned in shmidl_output). */
    const char *outdir;
    /* Also produce FILE_probe.c: a program that prints the layout of every
     * struct and vtable, for comparison with MIDL's or widl's header. */
    int emit_probe;
    /* If non-NULL, a make-style dependency file written with the outputs:
     * the outputs depend on the input and every file it imported. */
    const char *depfile;
    /* Diagnostics; NULL prints them to stderr. */
    shmidl_diag_fn diag;
    void *diag_ud;
} shmidl_options;

typedef struct shmidl_output {
    char *header; /* FILE.h */
    size_t header_len;
    char *proxy; /* FILE_p.c */
    size_t proxy_len;
    char *probe; /* FILE_probe.c, or NULL */
    size_t probe_len;
    char *base; /* FILE: the input's base name without ".idl" */
} shmidl_output;

/*
 * Compiles opts->input. Returns 0 on success, 1 on an error in the input
 * or in writing the outputs (reported through opts->diag). On success and
 * when out is non-NULL, out holds the generated texts (free them with
 * shmidl_output_free); on failure out is zeroed. Output files are written
 * to temporary names and renamed into place only when everything
 * succeeded, so a failure leaves no partial output.
 */
int shmidl_run(const shmidl_options *opts, shmidl_output *out);
void shmidl_output_free(shmidl_output *out);

#endif /* SHMIDL_H */
