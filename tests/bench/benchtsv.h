/*
 * benchtsv.h - the machine-readable output of the benchmarks (--tsv),
 * which scripts/bench-report.sh reads. Without --tsv a benchmark prints
 * its table for people; with it, it prints only these lines instead.
 *
 * One record per line, fields separated by one tab, numbers in C's "%g"
 * form (a dot for the decimal point whatever the locale), "-" for a field
 * that has no value:
 *
 *   #shmcom-bench  1  PROGRAM  PLATFORM  CPUS  QUICK
 *       the first line: format version 1, the program's name, "windows"
 *       or "posix", the CPUs it saw, 1 if --quick (numbers too short to
 *       mean anything) else 0
 *   row  KEY  MEDIAN  FASTEST  SLOWEST  UNIT  KIND  LABEL
 *       one figure: the median over the rounds and the fastest and
 *       slowest round (for a rate, "fastest" is the highest); UNIT is us,
 *       ns, GB/s or calls/s; KIND is floor (what the machine does without
 *       shmcom), call (shmcom), or ref (another implementation, e.g. Wine's
 *       ole32); LABEL is free text to the end of the line
 *   ratio  KEY  REF  VALUE  TEXT
 *       row KEY compared with row REF: VALUE is what TEXT says it is
 *       ("x spin floor": KEY's time over REF's; "x memcpy bandwidth":
 *       KEY's bandwidth over REF's), so a reader prints "VALUE" "x" TEXT
 *
 * Keys are stable names made of [a-z0-9._]; a series is KEY.X with X a
 * number (a size in bytes, a count of clients), so that a reader can plot
 * it. Keys, kinds and units do not change meaning between versions of a
 * benchmark; a new figure gets a new key.
 */
#ifndef SHMCOM_BENCHTSV_H
#define SHMCOM_BENCHTSV_H

#include <stdio.h>

static inline void btsv_header(const char *program, unsigned cpus, int quick)
{
#ifdef _WIN32
    const char *platform = "windows";
#else
    const char *platform = "posix";
#endif
    printf("#shmcom-bench\t1\t%s\t%s\t%u\t%d\n", program, platform, cpus, quick ? 1 : 0);
}

static inline void btsv_row(const char *key, double med, double lo, double hi, const char *unit,
                            const char *kind, const char *label)
{
    printf("row\t%s\t%g\t%g\t%g\t%s\t%s\t%s\n", key, med, lo, hi, unit, kind, label);
}

static inline void btsv_ratio(const char *key, const char *ref, double value, const char *text)
{
    printf("ratio\t%s\t%s\t%g\t%s\n", key, ref, value, text);
}

#endif
