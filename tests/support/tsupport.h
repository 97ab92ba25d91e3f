/*
 * tsupport.h - what every shmcom test file shares: cmocka, child processes
 * (the test re-runs its own executable with `--child NAME ARG`), unique
 * region names that are checked for leftovers, and HRESULT assertions.
 */
#ifndef SHMCOM_TSUPPORT_H
#define SHMCOM_TSUPPORT_H

#include "platform.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four headers above first */
#include <cmocka.h>
#include <stdio.h>

/* A child entry point: returns the process exit code. */
typedef int (*tsupport_child_fn)(const char *arg);

typedef struct tsupport_child {
    const char *name;
    tsupport_child_fn fn;
} tsupport_child;

/*
 * If argv asks for a child (`--child NAME [ARG]`), runs it and exits the
 * process with its code. Call first thing in main.
 */
void tsupport_dispatch_child(int argc, char **argv, const tsupport_child *children);

/* Starts this executable as child `name` with `arg` (may be NULL). */
void tsupport_spawn(shmc_plat_proc *p, const char *name, const char *arg);

/*
 * Waits up to timeout_ms for a child and returns its exit code; kills it
 * and fails the test if it does not exit in time.
 */
int tsupport_join(shmc_plat_proc *p, uint32_t timeout_ms);

/*
 * A fresh region name "tst-<tag>-<pid>-<n>", remembered so that
 * tsupport_check_names_gone() can verify it was removed.
 */
const char *tsupport_name(char *buf, size_t size, const char *tag);

/* Fails if any name handed out by tsupport_name still opens. */
void tsupport_check_names_gone(void **state);

/* Number of open file descriptors (POSIX) or handles (Windows). */
long tsupport_open_handles(void);

/*
 * Binds the calling thread to one CPU, `cpu` or (-1) the one it runs on,
 * and returns it; tsupport_unpin_self gives it back the CPUs it was
 * allowed before. -1 if the OS refused or does not say.
 */
int tsupport_pin_self(int cpu);
void tsupport_unpin_self(void);
/* How many CPUs the calling thread may run on (0 if the OS does not say). */
unsigned tsupport_allowed_cpus(void);

/* Milliseconds since an earlier shmc_plat_clock_ns() reading. */
double tsupport_ms_since(uint64_t start_ns);

/*
 * A time limit of a test, `ms` times SHMCOM_TEST_TIME_SCALE (an integer
 * from 1 to 100 in the environment; 1 if unset). The memcheck preset runs
 * every process under Valgrind, tens of times slower: a call timeout that
 * some calls must stay within, and the bounds around one that must fire,
 * all grow by the same factor, so a test asserts the same relations.
 */
uint32_t tsupport_ms(uint32_t ms);

/*
 * The verdict of a test that a thread moves off a CPU it shares with the
 * thread that waits for it (test_calls, test_xproc): attempts, each from
 * the waiter's CPU or not (the kernel may move the thread first, which
 * proves nothing), until one moved, TSUPPORT_MOVE_MISSES attempts made from
 * that CPU did not move, or TSUPPORT_MOVE_ATTEMPTS. A move passes; a miss
 * fails; a thread never left there is SKIPPED, not passed. `pinned` and
 * `called`: the set-up's binds and the calls all worked. `who` and `whose`
 * name the mover and the waiter in the messages.
 */
enum { TSUPPORT_MOVE_ATTEMPTS = 60, TSUPPORT_MOVE_MISSES = 3 };
void tsupport_judge_move(bool pinned, bool called, bool moved, int attempts, int misses,
                         const char *who, const char *whose);

/*
 * Skips the running test (cmocka reports it SKIPPED) if its name is in
 * SHMCOM_TEST_SKIP (names separated by commas) in the environment: what a
 * preset does not run, and says why where it sets the list (the tsan and
 * memcheck presets: frame_limits, see the top CMakeLists.txt).
 */
void tsupport_skip_if_listed(const char *test);

/* Streams (any IStream); each fails the test unless the call gives S_OK. */
uint64_t tsupport_stream_size(IStream *s);          /* Stat(STATFLAG_NONAME) */
uint64_t tsupport_stream_pos(IStream *s);           /* Seek(0, STREAM_SEEK_CUR) */
void tsupport_stream_seek(IStream *s, int64_t pos); /* Seek(pos, STREAM_SEEK_SET) */

/* HRESULT equality with both values named in the failure message. */
#define assert_hr(actual, expected) \
    tsupport_assert_hr((HRESULT)(actual), (HRESULT)(expected), #actual, __FILE__, __LINE__)
void tsupport_assert_hr(HRESULT actual, HRESULT expected, const char *expr, const char *file,
                        int line);

/* In a child: print why and return failure. */
#define CHILD_CHECK(cond)                                                                   \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "child: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            return 1;                                                                       \
        }                                                                                   \
    } while (0)

#endif /* SHMCOM_TSUPPORT_H */
