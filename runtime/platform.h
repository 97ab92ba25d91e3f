/*
 * platform.h - everything the shmcom core needs from the operating system.
 *
 * This is the one contract between the portable core (runtime/, which
 * includes only the C library and its own headers) and the two platform
 * layers that implement it: posix/ (Linux first) and win32/. Nothing else
 * includes an OS header; CI checks it (tests/check_includes.cmake).
 *
 * Conventions
 *  - Every fallible function returns an HRESULT. Errors the OS reports are
 *    mapped in one table per platform (posix/errmap.c, win32/errmap.c):
 *    POSIX errnos with a COM meaning get it (ENOENT -> SHM_E_NAME_NOT_FOUND,
 *    EACCES -> E_ACCESSDENIED, ENOMEM -> E_OUTOFMEMORY, ...), the others
 *    SHM_HRESULT_FROM_ERRNO(errno); Windows errors HRESULT_FROM_WIN32().
 *  - On failure, out parameters are left in their "closed" state (zeroed),
 *    so the matching close/fini function is always safe to call on them.
 *  - Objects are plain structs embedded by value. Their storage is opaque
 *    here, sized for both platforms and checked with static assertions in
 *    each implementation, so the core never sees an OS type.
 *  - "Timed out" is S_FALSE, never an error: the caller decides.
 *  - A timeout of SHMC_PLAT_INFINITE (0xFFFFFFFF ms) waits forever.
 */
#ifndef SHMCOM_RUNTIME_PLATFORM_H
#define SHMCOM_RUNTIME_PLATFORM_H

#include "shmcom/shmcom.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SHMC_PLAT_INFINITE 0xFFFFFFFFu

/* ======================================================================
 * Named shared-memory regions
 * ======================================================================
 *
 * A region is a named block of memory that every process of the same user
 * on this machine can map by name. The user-visible name (at most
 * SHM_MAX_NAME bytes of [A-Za-z0-9_.-], first character a letter, digit
 * or '_') is turned into the OS name here:
 *   POSIX:   "/shmcom-<uid>-<name>"   (shm_open, visible in /dev/shm)
 *   Windows: "Local\shmcom-<name>"    (a pagefile-backed file mapping)
 *
 * Access is owner-only: mode 0600 on POSIX (and open refuses an object
 * that is not owned by this user or grants group/other access); on
 * Windows a DACL that grants access to the creating user only.
 *
 * Sizes are rounded up to the page size, and an opener sees the rounded
 * size, so creator and opener agree on every platform.
 *
 * POSIX: each mapping is followed by an inaccessible guard page, so that
 * an access past the end of a region faults at once. (Windows places
 * views itself; there is no guard.)
 *
 * Lifetime of the name:
 *   POSIX:   the name lives until shmc_plat_region_unlink; mappings stay
 *            valid after it. A crashed creator leaves the name behind: the
 *            layer above records the owner and reclaims stale names.
 *   Windows: the name lives while any process holds a handle or view;
 *            shmc_plat_region_unlink is a no-op (nothing can outlive its
 *            processes, so nothing needs reclaiming).
 */

typedef struct shmc_plat_region {
    void *base;  /* start of the mapping, NULL when closed */
    size_t size; /* bytes mapped (page multiple) */
    char name[SHM_MAX_NAME + 1];
    alignas(8) unsigned char opaque[16]; /* fd or HANDLE */
} shmc_plat_region;

/* E_INVALIDARG unless name is a valid region name (see above). */
HRESULT shmc_plat_region_name_check(const char *name);

/*
 * Creates the region `name` of at least `size` bytes (zero-filled) and maps
 * it read-write. Fails with SHM_E_NAME_EXISTS if the name is in use (never
 * opens an existing one), E_INVALIDARG for a bad name or size 0, and the
 * mapped OS error otherwise. Never blocks.
 */
HRESULT shmc_plat_region_create(shmc_plat_region *r, const char *name, size_t size);

/*
 * What shmc_plat_region_create_init runs on the new mapping (zero-filled,
 * `size` bytes, page-rounded) before the region is published.
 */
typedef void (*shmc_plat_region_init_fn)(void *base, size_t size, void *ctx);

/*
 * Creates the region `name` as shmc_plat_region_create does (same errors),
 * running init(base, size, ctx) first, if it is not NULL, so that the
 * region's header is in place when others can find it:
 *   POSIX:   the name appears only after init has returned (the object is
 *            made nameless and linked under its name afterwards): openers
 *            never see it half-made, and a creator killed during init
 *            leaves no name. (A kernel without O_TMPFILE gets create +
 *            init, as on Windows.)
 *   Windows: a mapping cannot be named later, so the name exists while
 *            init runs and an opener may map the zero-filled region
 *            meanwhile; nothing outlives a killed creator anyway.
 * Either way a reader must treat an all-zero header as "not there yet".
 * init may run and the name then turn out to be taken (SHM_E_NAME_EXISTS,
 * and the mapping is discarded), so it must only write into the mapping.
 */
HRESULT shmc_plat_region_create_init(shmc_plat_region *r, const char *name, size_t size,
                                     shmc_plat_region_init_fn init, void *ctx);

/*
 * Opens and maps the existing region `name`. Fails with
 * SHM_E_NAME_NOT_FOUND if there is none, E_ACCESSDENIED if it is not
 * owner-only or not ours, E_INVALIDARG for a bad name.
 */
HRESULT shmc_plat_region_open(shmc_plat_region *r, const char *name);

/* Unmaps and closes. Safe on a zeroed or already closed region. */
void shmc_plat_region_close(shmc_plat_region *r);

/*
 * Removes the name (POSIX: shm_unlink; Windows: nothing to do). Existing
 * mappings stay valid. SHM_E_NAME_NOT_FOUND if there was no such name.
 */
HRESULT shmc_plat_region_unlink(const char *name);

/*
 * true if a region's name outlives the processes that use it until it is
 * unlinked (POSIX), false if it dies with the last handle (Windows). The
 * layer above reclaims names only where they persist.
 */
bool shmc_plat_region_names_persist(void);

/*
 * Lists the names of this user's regions that start with `prefix`, calling
 * fn(name, ctx) for each; fn returns false to stop. Used to reclaim regions
 * of dead processes. On Windows named mappings cannot be listed and die
 * with their processes: S_FALSE and no calls.
 */
HRESULT shmc_plat_region_list(const char *prefix, bool (*fn)(const char *name, void *ctx),
                              void *ctx);

/*
 * The mode bits of a POSIX region (for tests and diagnostics), or the
 * Windows equivalent: 0600 if the DACL grants access to the owner only.
 */
HRESULT shmc_plat_region_access(const shmc_plat_region *r, unsigned *mode);

/* ======================================================================
 * Wait and wake on a word in shared memory
 * ======================================================================
 *
 * A futex: shmc_plat_wait sleeps while *value == expected; shmc_plat_wake
 * wakes sleepers after the value changed. It works between processes that
 * map the same region and between threads of one process.
 *
 * The shared word is a shmc_plat_wword (8 bytes, 8-aligned, inside a
 * region): `value` is the caller's 32-bit word; `waiters` belongs to this
 * layer, which counts sleepers there so that wake costs no system call
 * when nobody sleeps. Both halves may be scribbled on by a hostile peer:
 * that can cause spurious wakeups, never a crash or a sleep past the
 * timeout.
 *
 * The handle (shmc_plat_waiter) binds a word to the OS object that sleeps
 * on it: on Linux nothing (futex on the address); on Windows a named
 * semaphore derived from the region name and the word's offset, because
 * WaitOnAddress does not work between processes. A word in the process's
 * own memory (shmc_plat_waiter_open_local) needs none: on Windows it waits
 * on its address with WaitOnAddress (where that is missing, before Windows
 * 8, on an unnamed semaphore).
 *
 * Rules for callers: change `value` (with any atomic store) before calling
 * wake; loop on your own condition around wait, because wait may return
 * early (a spurious wakeup returns S_OK).
 */

typedef struct shmc_plat_wword {
    alignas(8) _Atomic uint32_t value;

    _Atomic uint32_t waiters; /* owned by the platform layer */
} shmc_plat_wword;

typedef struct shmc_plat_waiter {
    shmc_plat_wword *word;
    alignas(8) unsigned char opaque[8]; /* Windows: semaphore HANDLE, or NULL */
} shmc_plat_waiter;

/*
 * Binds `w` to the word at byte `offset` of region `r` (8-aligned, inside
 * the region). E_INVALIDARG if it is not. On Windows this creates or
 * opens the named semaphore (owner-only).
 */
HRESULT shmc_plat_waiter_open(shmc_plat_waiter *w, const shmc_plat_region *r, size_t offset);

/*
 * Binds `w` to a word in this process's private memory (threads only).
 */
HRESULT shmc_plat_waiter_open_local(shmc_plat_waiter *w, shmc_plat_wword *word);

/* Releases the OS object. Safe on a zeroed waiter. */
void shmc_plat_waiter_close(shmc_plat_waiter *w);

/*
 * Blocks while word->value == expected, for at most timeout_ms. Returns
 * S_OK when woken or the value differs (possibly spuriously), S_FALSE on
 * timeout, an error only if the OS refuses the wait.
 */
HRESULT shmc_plat_wait(shmc_plat_waiter *w, uint32_t expected, uint32_t timeout_ms);

/* Wakes one sleeper (all == false) or every sleeper. Never blocks. */
void shmc_plat_wake(shmc_plat_waiter *w, bool all);

/* ======================================================================
 * Processes
 * ======================================================================
 *
 * A process is named by its pid and its start time (an opaque 64-bit
 * value the OS records when the process starts): together they survive pid
 * reuse. shmc_plat_proc is a handle on a live process that reports its
 * death: a pidfd on Linux (kernel 5.3+; otherwise /proc is polled every
 * few milliseconds), a process HANDLE on Windows.
 */

typedef struct shmc_plat_procid {
    uint64_t pid;
    uint64_t start_time;
} shmc_plat_procid;

typedef struct shmc_plat_proc {
    shmc_plat_procid id;
    bool is_child; /* started by shmc_plat_proc_spawn: we reap it */
    bool exited;
    int exit_code; /* valid once exited: the status, or 128+signal */
    alignas(8) unsigned char opaque[24];
} shmc_plat_proc;

/* This process's identity. Never fails. */
void shmc_plat_proc_self(shmc_plat_procid *id);

/*
 * The start time of process `pid`, or an error if there is none
 * (SHM_E_NAME_NOT_FOUND). Used to turn a bare pid into an identity.
 */
HRESULT shmc_plat_proc_query(uint64_t pid, shmc_plat_procid *id);

/*
 * Opens a handle on a process that another part of the program learned
 * about (e.g. from a peer's header). If the process with that identity has
 * already exited (or the pid is now someone else), the call succeeds and
 * the handle reports exit at once: dead is an answer, not an error.
 */
HRESULT shmc_plat_proc_open(shmc_plat_proc *p, const shmc_plat_procid *id);

/*
 * Starts `argv[0]` with arguments argv[1..] (NULL-terminated), inheriting
 * the environment and the standard handles. argv[0] is a path.
 */
HRESULT shmc_plat_proc_spawn(shmc_plat_proc *p, const char *const argv[]);

/*
 * Waits up to timeout_ms for the process to exit. S_OK if it has exited
 * (for a child, exit_code is then set and the child is reaped), S_FALSE
 * on timeout.
 */
HRESULT shmc_plat_proc_wait(shmc_plat_proc *p, uint32_t timeout_ms);

/* Kills the process at once (SIGKILL, TerminateProcess). */
HRESULT shmc_plat_proc_kill(shmc_plat_proc *p);

/*
 * A handle an event loop can wait on: readable (POSIX fd) or signalled
 * (Windows HANDLE) when the process has exited. -1 / NULL when the layer
 * falls back to polling (then call shmc_plat_proc_wait with timeout 0).
 */
intptr_t shmc_plat_proc_pollable(const shmc_plat_proc *p);

/* Closes the handle (a child that was not waited for is left running). */
void shmc_plat_proc_close(shmc_plat_proc *p);

/*
 * The path of the running executable, for re-running it as a child.
 * E_NOT_SUFFICIENT_BUFFER if it does not fit.
 */
HRESULT shmc_plat_self_exe(char *buf, size_t size);

/* ======================================================================
 * Threads, thread-local storage, locks
 * ====================================================================== */

typedef struct shmc_plat_thread {
    alignas(8) unsigned char opaque[16];
} shmc_plat_thread;

/* Starts fn(arg) on a new thread. */
HRESULT shmc_plat_thread_create(shmc_plat_thread *t, void (*fn)(void *), void *arg);

/* Waits for the thread to end and releases it. */
void shmc_plat_thread_join(shmc_plat_thread *t);

/* Lets the thread end on its own: nobody will join it. */
void shmc_plat_thread_detach(shmc_plat_thread *t);

/* A number that names the calling thread while it runs (never 0). */
uint64_t shmc_plat_thread_self_id(void);

/* Gives up the CPU. */
void shmc_plat_thread_yield(void);

/* Sleeps at least ms milliseconds (tests and back-off only). */
void shmc_plat_sleep_ms(uint32_t ms);

/*
 * A thread-local slot with a destructor that runs when a thread that set a
 * non-NULL value exits (also threads that never told shmcom they leave).
 */
typedef struct shmc_plat_tls {
    alignas(8) unsigned char opaque[8];
} shmc_plat_tls;

HRESULT shmc_plat_tls_create(shmc_plat_tls *k, void (*dtor)(void *));
void shmc_plat_tls_destroy(shmc_plat_tls *k);
void *shmc_plat_tls_get(const shmc_plat_tls *k);
HRESULT shmc_plat_tls_set(shmc_plat_tls *k, void *value);

/*
 * The storage class of the runtime's thread-local variables. On ELF the
 * initial-exec model: in libshmcom.so a variable is then read at a fixed
 * offset from the thread pointer, not through a call to __tls_get_addr
 * (which made a hot null call between processes 10 ns longer, 0.143 ->
 * 0.153 us). A dlopen of the library takes its thread-local block (under
 * 256 bytes) from the surplus static TLS that glibc keeps for such
 * libraries (about 1 KiB by default, docs/limits.md): tests/test_dlopen.c
 * loads it so. tests/check_tls.cmake checks that no access goes through
 * __tls_get_addr.
 */
#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define SHMC_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define SHMC_THREAD_LOCAL _Thread_local
#endif

/*
 * One more per-thread pointer, without a destructor, that is cheap to
 * read: the runtime keeps a copy of its thread state there. Windows keeps
 * it in a TLS slot read straight from the thread's TEB (a _Thread_local is
 * mingw-w64's emulated TLS there, 14 ns a lookup under Wine, and
 * TlsGetValue would reset the thread's last error); POSIX in a
 * _Thread_local. NULL until the thread sets it; set returns false if it
 * could not (no TLS slot left: then get stays NULL).
 */
void *shmc_plat_fast_tls_get(void);
bool shmc_plat_fast_tls_set(void *value);

/* A non-recursive mutex; init never fails, fini is safe on zeroed memory. */
typedef struct shmc_plat_mutex {
    alignas(8) unsigned char opaque[64];
} shmc_plat_mutex;

void shmc_plat_mutex_init(shmc_plat_mutex *m);
void shmc_plat_mutex_fini(shmc_plat_mutex *m);
void shmc_plat_mutex_lock(shmc_plat_mutex *m);
void shmc_plat_mutex_unlock(shmc_plat_mutex *m);

/* A condition variable on the monotonic clock. */
typedef struct shmc_plat_cond {
    alignas(8) unsigned char opaque[64];
} shmc_plat_cond;

void shmc_plat_cond_init(shmc_plat_cond *c);
void shmc_plat_cond_fini(shmc_plat_cond *c);
/* S_OK when signalled (or spuriously), S_FALSE on timeout. */
HRESULT shmc_plat_cond_wait(shmc_plat_cond *c, shmc_plat_mutex *m, uint32_t timeout_ms);
void shmc_plat_cond_signal(shmc_plat_cond *c);
void shmc_plat_cond_broadcast(shmc_plat_cond *c);

/*
 * Runs fn exactly once per process, however many threads call with the same
 * control block at once; the others wait until it has run. A control block
 * is static storage initialised with SHMC_PLAT_ONCE_INIT.
 */
typedef struct shmc_plat_once {
    alignas(8) unsigned char opaque[16];
} shmc_plat_once;
#define SHMC_PLAT_ONCE_INIT \
    {                       \
        {                   \
            0               \
        }                   \
    }
void shmc_plat_once_run(shmc_plat_once *once, void (*fn)(void));

/*
 * An event an ordinary event loop can wait on: an eventfd (readable while
 * set) on Linux, a manual-reset event HANDLE on Windows. In-process only.
 * set/reset never block; set on a set event and reset on a clear one do
 * nothing.
 */
typedef struct shmc_plat_event {
    alignas(8) unsigned char opaque[8];
} shmc_plat_event;

HRESULT shmc_plat_event_init(shmc_plat_event *e);
void shmc_plat_event_fini(shmc_plat_event *e); /* safe on a zeroed event */
void shmc_plat_event_set(shmc_plat_event *e);
void shmc_plat_event_reset(shmc_plat_event *e);
/* S_OK once set, S_FALSE on timeout. */
HRESULT shmc_plat_event_wait(shmc_plat_event *e, uint32_t timeout_ms);
/* The fd (POSIX) or HANDLE (Windows) to hand to an event loop. */
intptr_t shmc_plat_event_handle(const shmc_plat_event *e);

/* ======================================================================
 * Clock, random bytes, machine facts
 * ====================================================================== */

/* Monotonic time in nanoseconds (arbitrary epoch, never goes back). */
uint64_t shmc_plat_clock_ns(void);

/* Milliseconds left until a monotonic deadline, rounded up; 0 if past.
 * Never returns SHMC_PLAT_INFINITE. */
uint32_t shmc_plat_clock_ms_until(uint64_t deadline_ns);

/*
 * Fills buf with n bytes from the OS's cryptographic generator
 * (getrandom, BCryptGenRandom). Blocks only while the OS seeds itself.
 */
HRESULT shmc_plat_random(void *buf, size_t n);

/*
 * Keeps the module that holds the runtime (its shared library, or the
 * program it is linked into) loaded until the process exits, so that the
 * runtime's threads and its thread-exit callbacks (the destructor of
 * shmc_plat_tls_create) never run code a host unloaded (dlclose,
 * FreeLibrary). Called once, when the runtime sets itself up. Windows pins
 * the module; on ELF the library is linked -z nodelete and this does
 * nothing. tests/test_dlopen.c checks both.
 */
void shmc_plat_pin_module(void);

/* Number of CPUs this process may run on (at least 1). */
unsigned shmc_plat_cpu_count(void);

/* The CPU the calling thread runs on (a hint: it may move at any time), or
 * -1 where the OS does not say. */
int shmc_plat_current_cpu(void);

/* Moves the calling thread off the CPU it runs on, to another its
 * affinity allows, and leaves its affinity as it was; false where it could
 * not (one CPU allowed, or no such call). */
bool shmc_plat_thread_move_off_cpu(int cpu);

/*
 * A process-wide memory barrier: when it returns, every other thread of
 * the process has run a full memory barrier since it was called (Linux:
 * membarrier, private expedited). It lets the threads that run often pair
 * a plain store with a plain load where both sides would otherwise need a
 * barrier, the rare side paying for both. setup registers the process
 * (once, at set-up); both return false where there is no such call (then
 * the runtime does not rely on it).
 */
bool shmc_plat_process_barrier_setup(void);
bool shmc_plat_process_barrier(void);

/* Size of a page (the unit regions are rounded to). */
size_t shmc_plat_page_size(void);

/* A spin-wait hint to the CPU (x86 PAUSE, ARM YIELD). */
static inline void shmc_plat_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* A hint to start fetching the cache line at p for reading (no effect
 * where the compiler has no such builtin). */
static inline void shmc_plat_prefetch(const void *p)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}

/* ======================================================================
 * Errors and test hooks
 * ====================================================================== */

/* Maps a native error (errno or GetLastError value) to an HRESULT. */
HRESULT shmc_plat_hresult_from_os(int native_error);

/*
 * Fault injection for tests, in the manner of SQLite's system-call table:
 * the n-th call (counting from 1) of the OS function `syscall` made
 * through this layer, and every one after it until reset, fails with the
 * native error `native_error` (an errno, or a Win32 error code). n == 0
 * clears the hook. E_INVALIDARG for a name this layer does not route
 * (see the table at the top of each platform file).
 * Other threads may call the layer while a test sets or clears it (they
 * see the old setting or the new one).
 */
HRESULT shmc_plat_fault_set(const char *syscall, unsigned n, int native_error);
void shmc_plat_fault_clear_all(void);
/* How many calls of `syscall` the hook has failed since it was set (0 if
 * none, or if it is not set): a test that fails n = 1, 2, ... in turn
 * stops when an operation completes without a failed call. Calls may come
 * from any thread while it is set. */
unsigned shmc_plat_fault_hits(const char *syscall);

/*
 * For tests: force the /proc polling fallback instead of pidfd (POSIX);
 * no effect on Windows. Returns the previous setting.
 */
bool shmc_plat_proc_force_polling(bool on);

#ifdef __cplusplus
}
#endif

#endif /* SHMCOM_RUNTIME_PLATFORM_H */
