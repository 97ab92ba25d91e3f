/*
 * sample_os.h - the little the samples need from the operating system
 * besides shmcom: start, wait for and kill a child process, threads, a
 * monotonic clock, and a few helpers around shmcom's public API.
 *
 * shmcom's own platform layer is internal to the library, so a program
 * that uses shmcom brings its own; this is the smallest one that serves the
 * samples (posix_spawn and waitpid on POSIX, CreateProcessW and
 * WaitForSingleObject on Windows). Functions return 0 on success and -1 on
 * failure unless stated otherwise.
 */
#ifndef SAMPLE_OS_H
#define SAMPLE_OS_H

#include <shmcom/shmcom.h>

#include <stddef.h>
#include <stdint.h>

/* ---- child processes ---------------------------------------------------- */

typedef struct sample_proc {
    intptr_t handle;   /* pid_t on POSIX, process HANDLE on Windows */
    unsigned long pid; /* the process id, for messages */
    int exited;        /* 1 once sample_proc_wait saw it end */
    int exit_code;     /* then: its exit code (POSIX: 128 + signal if killed) */
} sample_proc;

/* Starts argv[0] (a path) with the arguments argv[1..] (NULL-terminated). */
int sample_proc_start(sample_proc *p, const char *const argv[]);

/* Waits up to timeout_ms for the process to end: 1 when it has (exit_code
 * holds its code), 0 when it still runs, -1 on error. */
int sample_proc_wait(sample_proc *p, uint32_t timeout_ms);

/* Ends the process at once (SIGKILL, TerminateProcess); wait for it after. */
void sample_proc_kill(sample_proc *p);

/* Releases what the handle holds (a process that still runs goes on). */
void sample_proc_close(sample_proc *p);

/* The path of the program `name` in the folder of this program (".exe"
 * appended on Windows). */
int sample_sibling_path(char *buf, size_t size, const char *name);

/* This process's id. */
unsigned long sample_self_pid(void);

/* ---- threads, clock ------------------------------------------------------- */

typedef struct sample_thread {
    intptr_t handle;
} sample_thread;

int sample_thread_start(sample_thread *t, void (*fn)(void *), void *arg);
void sample_thread_join(sample_thread *t);

/* Milliseconds from an arbitrary origin, monotonic, with sub-ms resolution. */
double sample_now_ms(void);
void sample_sleep_ms(uint32_t ms);

/* ---- shmcom helpers ------------------------------------------------------- */

/* The name of a shared-memory stream (what IStream_Stat reports), as a C
 * string; names are ASCII ([A-Za-z0-9_.-]). */
HRESULT sample_stream_name(IStream *stream, char *buf, size_t size);

/* "RPC_E_SERVER_DIED", or "0x8001xxxx" for an HRESULT without a name (in a
 * per-thread buffer that the thread's next call overwrites). */
const char *sample_hr(HRESULT hr);

#endif /* SAMPLE_OS_H */
