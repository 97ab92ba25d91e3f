/*
 * sigbus.c - surviving a peer that cuts a region short.
 *
 * Any process of the same user can open a region by its name (or keep the
 * descriptor it made it with) and ftruncate it. Every page of a mapping
 * past the file's new end then raises SIGBUS when touched, in every
 * process that maps it: a peer could kill us by shrinking our endpoint, a
 * stream we read, or the connection and bulk regions it made. The core
 * already treats whatever a region holds as hostile; what it cannot
 * survive is the signal.
 *
 * So every mapping of a region is listed here (start, length), and a
 * SIGBUS handler, installed with the first mapping (and again with a later
 * one if another handler took its place meanwhile), replaces the faulting
 * page of a listed mapping with a private page of zeros (MAP_FIXED,
 * anonymous) and returns: the access is retried and reads zeros; writes go
 * to that private page, where no peer sees them. The region then looks to
 * us as if the peer had written zeros there, which every reader already
 * has to cope with. A fault anywhere else goes on to the handler that was
 * there before us, or to the default action.
 *
 * The list is read by the handler without a lock: chunks of entries that
 * are never freed, each entry a start and a length written atomically (a
 * mapping is listed before anyone can touch it and unlisted before it is
 * unmapped).
 */
#include "posix_impl.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define CHUNK_ENTRIES 256

typedef struct bus_entry {
    _Atomic uintptr_t start; /* 0: free */
    _Atomic size_t length;
} bus_entry;

typedef struct bus_chunk {
    bus_entry e[CHUNK_ENTRIES];
    struct bus_chunk *_Atomic next;
} bus_chunk;

static bus_chunk *_Atomic chunks;
static struct sigaction previous; /* what handled SIGBUS before us */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t page_size;

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    int saved = errno;
    uintptr_t a = (uintptr_t)si->si_addr;
    for (bus_chunk *c = atomic_load(&chunks); c; c = atomic_load(&c->next)) {
        for (int i = 0; i < CHUNK_ENTRIES; i++) {
            uintptr_t s = atomic_load(&c->e[i].start);
            if (s && a >= s && a - s < atomic_load(&c->e[i].length)) {
                /* the system call itself: async-signal-safe, and past any
                 * interceptor (sanitizers wrap mmap) */
                void *page = (void *)(a & ~(uintptr_t)(page_size - 1));
                void *p = (void *)syscall(SYS_mmap, page, page_size, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
                errno = saved;
                if (p != MAP_FAILED)
                    return; /* retried: it reads zeros now */
                goto not_ours;
            }
        }
    }
not_ours:
    errno = saved;
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uctx);
    } else if (previous.sa_handler == SIG_IGN || previous.sa_handler == SIG_DFL) {
        /* the default action: the fault happens again once we return */
        signal(SIGBUS, SIG_DFL);
    } else {
        previous.sa_handler(sig);
    }
}

/* Installs the handler unless it is there: at the first mapping, and
 * again at each later one if someone installed another handler meanwhile
 * (which then becomes the one faults not ours go to). */
static void install(void)
{
    pthread_mutex_lock(&install_lock);
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus)) {
        page_size = (size_t)sysconf(_SC_PAGESIZE);
        previous = cur; /* (before ours is in place: nothing reads it yet) */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, NULL);
    }
    pthread_mutex_unlock(&install_lock);
}

void shmc_posix_sigbus_watch(void *start, size_t length)
{
    install();
    for (;;) {
        bus_chunk *head = atomic_load(&chunks);
        for (bus_chunk *c = head; c; c = atomic_load(&c->next)) {
            for (int i = 0; i < CHUNK_ENTRIES; i++) {
                uintptr_t zero = 0;
                if (atomic_load_explicit(&c->e[i].start, memory_order_relaxed) == 0 &&
                    atomic_compare_exchange_strong(&c->e[i].start, &zero, (uintptr_t)1)) {
                    /* (1 is no mapping's start: the entry is ours, not yet live) */
                    atomic_store(&c->e[i].length, length);
                    atomic_store(&c->e[i].start, (uintptr_t)start);
                    return;
                }
            }
        }
        bus_chunk *fresh = calloc(1, sizeof(*fresh));
        if (!fresh)
            return; /* unlisted: a truncation would kill us, as before */
        atomic_store(&fresh->next, head);
        if (!atomic_compare_exchange_strong(&chunks, &head, fresh))
            free(fresh); /* another thread added one: look again */
    }
}

void shmc_posix_sigbus_unwatch(void *start)
{
    for (bus_chunk *c = atomic_load(&chunks); c; c = atomic_load(&c->next)) {
        for (int i = 0; i < CHUNK_ENTRIES; i++) {
            if (atomic_load(&c->e[i].start) == (uintptr_t)start) {
                atomic_store(&c->e[i].length, 0);
                atomic_store(&c->e[i].start, 0);
                return;
            }
        }
    }
}
