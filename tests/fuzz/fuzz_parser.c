/*
 * fuzz_parser.c - libFuzzer target: the whole compiler (lexer, parser,
 * checks, layout, emitters) on arbitrary input, in memory. Imports other
 * than the built-in ones are refused (no file is read). Any crash, leak,
 * hang or sanitizer report is a bug: every input must end in output or in
 * one "FILE:LINE:COL: error:" line.
 */
#include "shmidl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int lines;

static void count(void *ud, const char *line)
{
    (void)ud;
    if (strncmp(line, "fuzz.idl:", 9) && strncmp(line, "shmidl: error:", 14))
        abort(); /* every message names the position */
    lines++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    shmidl_options o;
    memset(&o, 0, sizeof(o));
    o.input = "fuzz.idl";
    o.text = (const char *)data;
    o.text_len = size;
    o.emit_probe = 1;
    o.diag = count;
    shmidl_output out;
    lines = 0;
    int rc = shmidl_run(&o, &out);
    if ((rc == 0) != (lines == 0) || (rc == 0 && (!out.header || !out.proxy)))
        abort();
    shmidl_output_free(&out);
    return 0;
}
