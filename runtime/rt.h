/*
 * rt.h - the runtime's internal objects: apartments, calls, stub managers
 * (exported objects), proxy managers (imported objects) and the state of
 * the process and of each thread.
 *
 * Who owns what
 * -------------
 *   thread  --(inits)-->  apartment (an STA per thread, one MTA)
 *   apartment  owns  stub managers of the objects it exported, and
 *                     proxy managers of the objects it imported
 *   stub manager  holds the object (identity + one interface pointer per
 *                 interface stub) while it is connected
 *   proxy manager  holds references on the stub manager's interfaces
 *                  (held_refs per interface proxy)
 *   record (a marshaled interface in a stream) holds one strong reference
 *                 (NORMAL, TABLESTRONG) or one weak one (TABLEWEAK),
 *                 named by a random nonce the stub manager keeps
 *
 * Locking
 * -------
 *   rt.lock     every table and list below, stub managers' reference
 *               counts and records, proxy managers' interface lists,
 *               apartment membership. Never held while calling an object
 *               or waiting for a call.
 *   apt->qlock  the MTA's list of worker threads. (Incoming calls need no
 *               lock: see the inbox, apartment.c.)
 *   sm->lock    the interface pointers of a stub manager (so that a call on
 *               an MTA worker and a disconnect on another thread agree on
 *               whether the object is still there).
 * Objects are called (QueryInterface, Release, methods) only in their own
 * apartment: on the STA's thread, or on an MTA thread for MTA objects.
 */
#ifndef SHMCOM_RUNTIME_RT_H
#define SHMCOM_RUNTIME_RT_H

#include "alloc.h"
#include "hmap.h"
#include "platform.h"
#include "shmcom/proxystub.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct shmc_apt shmc_apt;
typedef struct shmc_call shmc_call;
typedef struct shmc_stubmgr shmc_stubmgr;
typedef struct shmc_ifstub shmc_ifstub;
typedef struct shmc_proxymgr shmc_proxymgr;
typedef struct shmc_ifproxy shmc_ifproxy;
typedef struct shmc_notifier shmc_notifier;
typedef struct shmc_conn shmc_conn;

typedef struct shmc_ipid {
    uint8_t b[16];
} shmc_ipid;

/* ---- notifiers ------------------------------------------------------------
 * An event count a thread sleeps on. Each thread has one for the replies to
 * its outgoing calls; an STA's is also its apartment's doorbell (incoming
 * calls ring it too), so one wait covers both.
 *
 * Nobody pays for a wake-up nobody needs: a thread about to sleep first
 * counts itself in `sleepers` (wait_prepare), re-checks its condition, and
 * only then sleeps (wait_commit); a notifier changes the condition, then
 * bumps the word and wakes only if someone counted itself. Spinning
 * threads watch their condition directly, so when both sides run, a call
 * costs no atomic read-modify-write on the notifier at all.
 *
 * Notifiers are never freed, only recycled (a pool), so a callee may still
 * notify a caller's notifier after the caller has moved on: the worst that
 * can happen is a spurious wake-up of whoever uses it now.
 *
 * Every thread that notifies reads `sleepers`, so a notifier has its cache
 * line(s) to itself: a neighbour written on every call (an object's
 * reference count, say) would move the line on every notification. */
struct shmc_notifier {
    _Alignas(SHMC_LINE) shmc_plat_wword word; /* bumped for every notification with sleepers */
    shmc_plat_waiter waiter;
    _Atomic uint32_t sleepers;
    shmc_notifier *next_free;
};

HRESULT shmc_notifier_get(shmc_notifier **out);
void shmc_notifier_put(shmc_notifier *n);
/* After changing the condition: wakes one sleeper, or all. */
void shmc_notifier_notify(shmc_notifier *n, bool all);
/* Counts the caller as a sleeper and returns the word to wait on. */
uint32_t shmc_notifier_wait_prepare(shmc_notifier *n);
/* The condition held after all: stop counting as a sleeper. */
void shmc_notifier_wait_cancel(shmc_notifier *n);
/* Sleeps (unless notified since prepare), then stops counting. S_FALSE on
 * timeout. */
HRESULT shmc_notifier_wait_commit(shmc_notifier *n, uint32_t seq, uint32_t timeout_ms);

/* ---- queue links ----------------------------------------------------------- */

typedef struct shmc_qnode {
    struct shmc_qnode *_Atomic next;
} shmc_qnode;

/* ---- apartments ------------------------------------------------------------ */

enum { SHMC_STA = 1, SHMC_MTA = 2 };

struct shmc_apt {
    uint64_t oxid; /* random id, names the apartment in records */
    int model;
    uint64_t owner_tid; /* STA: the thread */
    /* under rt.lock */
    uint32_t members; /* threads initialized in it */
    bool dead;        /* shut down: no calls, no unmarshaling into it */
    shmc_apt *next;   /* rt.apts */
    shmc_stubmgr *stubs;
    shmc_proxymgr *proxies;
    shmc_hmap proxy_by_oid;
    shmc_notifier *bell; /* rung when a call is queued (STA: the owner's notifier) */
    /* STA: while its thread waits for a reply from another process it
     * sleeps on that call's slot word, which calls queued here bump too */
    _Atomic bool remote_waiting;
    shmc_plat_mutex remote_lock;
    shmc_plat_waiter *remote_wait; /* under remote_lock */
    shmc_plat_event event;         /* STA: set while calls are queued (lazily created) */
    _Atomic bool has_event;
    /* STA: how deep its thread is in the runtime's own waits (in
     * ShmCoProcessCalls, or waiting for the reply of a call it made),
     * which run calls as they come: callers leave the event alone
     * meanwhile (shmc_sta_enter); only that thread writes it */
    _Atomic uint32_t in_runtime;
    /* sets of the event: counted as they begin and once they are done;
     * the count done when the thread last cleared it (apartment.c) */
    _Atomic uint32_t event_sets_begun, event_sets_done;
    uint32_t event_sets_cleared;
    /* Incoming calls: a stack that producers push on with one
     * compare-and-swap and consumers take whole with another (see
     * apartment.c); bit 0 set: closed (shutting down), no new calls. Next
     * to it the MTA's count of workers not running a call minus the calls
     * waiting for one, which a producer decrements right after its push.
     * Both sides of every call touch this line. */
    _Alignas(SHMC_LINE) _Atomic uintptr_t inbox;
    _Atomic int32_t spare_workers; /* MTA */
    /* STA, its thread's: calls taken from the inbox, oldest first; the call
     * it watches (see call.c), and one such call found sent to it */
    _Alignas(SHMC_LINE) shmc_qnode *pending;
    shmc_call *watch;
    shmc_call *watch_ready;
    /* MTA workers, under qlock */
    shmc_plat_mutex qlock;
    uint32_t workers;
    _Atomic bool stopping;
    struct shmc_worker *worker_list;
    /* struct lifetime; on a line of its own (taken and dropped often) */
    _Alignas(SHMC_LINE) _Atomic uint32_t refs;
};

void shmc_apt_addref(shmc_apt *apt);
void shmc_apt_release(shmc_apt *apt);

/* ---- calls ---------------------------------------------------------------- */

enum {
    SHMC_CALL_METHOD = 1, /* a method of an interface stub */
    SHMC_CALL_QI,         /* QueryInterface on the object, for a proxy */
    SHMC_CALL_DESTROY,    /* release a disconnected stub manager's object */
};

enum {
    SHMC_CALL_PENDING = 0, /* queued in the inbox, or running */
    SHMC_CALL_DONE,
    SHMC_CALL_ABANDONED, /* the caller gave up (timeout): drop the reply */
    /* Done, as DONE, and the thread that ran it (in apartment `watcher`)
     * keeps looking at its state for the caller's next call (call.c). */
    SHMC_CALL_WATCHED,
    SHMC_CALL_REQUEST,           /* sent to its watcher, or running there */
    SHMC_CALL_ABANDONED_WATCHED, /* a REQUEST given up: the watcher drops it */
};

#define SHMC_CALL_INLINE 512 /* request/reply bytes kept in the call itself */

/*
 * A call, laid out for the two threads that share it. Line 0 is the
 * handoff line: everything the callee reads to run a method call and
 * everything it writes to complete it (the state, the result and the first
 * bytes of the reply), so that when both sides run, a call whose reply fits
 * there moves one cache line to the callee and back. Every line a thread
 * writes costs a transfer when the other one reads it next, and a write
 * into a line the other side is spinning on costs two: fields the callee
 * does not need for a method call live further on.
 *
 * Who writes what: the caller fills the call before it queues it and reads
 * it after DONE; in between only the callee writes (line 0, the reply, and
 * qi_result); the queue writes `link` (see apartment.c).
 */
struct shmc_call {
    /* ---- line 0 ---- */
    _Alignas(SHMC_LINE) shmc_qnode link; /* first: the queues' node */
    /* Who owns the call: its caller, until it gives up (ABANDONED), then
     * the apartment that runs it, which frees it. */
    _Atomic uint32_t state;
    HRESULT hr;                /* callee: the call's own result (transport, QI, ...) */
    uint32_t rep_size;         /* callee */
    uint32_t req_size;         /* caller */
    uint32_t method;           /* caller */
    uint8_t kind;              /* caller */
    bool req_heap;             /* caller: the request is at req_ext, not req_inline */
    bool rep_heap;             /* callee: the reply is at rep_ext, not rep_inline */
    bool owns_refs;            /* caller (see below) */
    shmc_ifstub *ifstub;       /* METHOD, QI (any interface of the object) */
    shmc_notifier *notify;     /* the caller's, notified when done (pooled) */
    shmc_apt *_Atomic watcher; /* callee: the apartment that set WATCHED */
    /* the reply starts in line 0 (its HRESULT and the first out bytes) */
    _Alignas(8) unsigned char rep_inline[SHMC_CALL_INLINE];
    /* ---- the rest: read by the callee only for QI, DESTROY or big frames ---- */
    /* What the call targets. Borrowed from the caller (whose proxy keeps
     * them alive while it waits) unless owns_refs: a caller that gives up
     * takes references first, since the call then outlives its wait. */
    shmc_apt *target;        /* the apartment that runs it */
    shmc_stubmgr *stubmgr;   /* DESTROY */
    shmc_ifstub *qi_result;  /* QI: the interface stub, with one extref (callee) */
    IID iid;                 /* QI: the interface asked for */
    void *req_ext, *rep_ext; /* heap frames (req_heap, rep_heap) */
    shmc_call *pool_next;    /* recycled calls (call.c) */
    /* a call a receiver of another process's connection runs on an STA:
     * a large request lies in the connection (req_heap with req_ext
     * borrowed: not freed), the stub writes its reply there (reply_to),
     * interface pointers travel as cross-process records (marshaler).
     * Written only when they change, read by the callee from a line that
     * then stays clean (a write would move it on every call). */
    bool req_borrowed;
    ShmStubReply *reply_to;
    ShmItfMarshaler *marshaler;
    _Alignas(8) unsigned char req_inline[SHMC_CALL_INLINE];
    /* ---- a line of its own, written only when a value changes ---- */
    /* the CPU each side ran on when it last handed the call over (-1: not
     * known): see shmc_cpu_shared */
    _Alignas(SHMC_LINE) _Atomic int32_t caller_cpu;
    _Atomic int32_t callee_cpu;
};

/* Writes a field of a call's line 0 only if its value changes (see call.c:
 * a write moves the line when another thread is looking at it). */
#define SHMC_SET_CHANGED(field, value) \
    do {                               \
        if ((field) != (value))        \
            (field) = (value);         \
    } while (0)

static inline void *shmc_call_req(shmc_call *c)
{
    return c->req_heap ? c->req_ext : c->req_inline;
}

static inline void *shmc_call_rep(shmc_call *c)
{
    return c->rep_heap ? c->rep_ext : c->rep_inline;
}

/* Calls are never freed, only recycled (a pool), like notifiers: an STA
 * may still look at a call it watched after its caller has moved on. */
void shmc_call_setup(void);
HRESULT shmc_call_new(shmc_call **out, uint32_t kind);
/* Frees a call its caller owns (it keeps it as the thread's spare). */
void shmc_call_free(shmc_call *c);
void shmc_call_free_spare(void);
/*
 * Queues the call on its target apartment and waits for it (serving the
 * caller's STA meanwhile), at most the thread's call timeout. Returns the
 * transport's result: S_OK when the call ran (c->hr has its own result),
 * RPC_E_DISCONNECTED if the apartment is gone. RPC_E_TIMEOUT if the caller
 * gave up: the call then belongs to the callee, which frees it; the caller
 * must not touch it again. In every other case the caller still owns it.
 */
HRESULT shmc_call_run(shmc_call *c);
/* The results of shmc_call_run after which the call is the callee's:
 * RPC_E_TIMEOUT, and RPC_E_OUT_OF_RESOURCES when the target MTA has no
 * worker and can start none (out of memory or of threads). */
static inline bool shmc_call_given_up(HRESULT hr)
{
    return hr == RPC_E_TIMEOUT || hr == RPC_E_OUT_OF_RESOURCES;
}
/* How long a caller spins for a reply before sleeping, and what a reply
 * took (to adapt it): shmc_call_spin_budget and shmc_call_note_reply,
 * with the thread's shmc_hot below. */

/* ---- stub managers ---------------------------------------------------------- */

typedef struct shmc_record {
    uint64_t nonce;
    uint32_t mshlflags;
    shmc_ifstub *ifstub;
    struct shmc_record *next; /* the stub manager's records */
    /* Server side: the connection it was made for (a client's ADD_RECORD,
     * or an object in a reply), which counts it against its limit and
     * revokes it if it goes before the record is spent; else NULL. Linked
     * in that connection's list. Under rt.lock. */
    shmc_conn *made_for;
    struct shmc_record *made_prev, *made_next;
} shmc_record;

/* Frees a record taken out of its stub manager's list (and out of the
 * list of the connection it was made for). Under rt.lock. */
void shmc_record_free_locked(shmc_record *r);

struct shmc_ifstub {
    _Atomic uint32_t refs; /* struct lifetime */
    shmc_stubmgr *mgr;
    IID iid;
    shmc_ipid ipid;
    /* the interface, with the stub's reference: set before the stub is
     * published, taken out (exchanged for NULL) by whoever releases it */
    void *_Atomic itf;
    /* calls in flight, and SHMC_IFS_CLOSED once the stub let go of the
     * object (see shmc_ifstub_enter) */
    _Atomic uint32_t busy;
    /* 1 once a call entered through a hazard record (stubmgr.c): closing
     * then looks at those */
    _Atomic uint32_t hazarded;
    const ShmInterfaceInfo *info; /* NULL for IUnknown */
    shmc_ifstub *next;
};

#define SHMC_IFS_CLOSED 0x80000000u

struct shmc_stubmgr {
    _Atomic uint32_t refs; /* struct lifetime */
    shmc_apt *apt;         /* owner */
    uint64_t oid;
    uint64_t idkey; /* stub_by_identity key (the identity pointer, mixed) */
    /* under rt.lock */
    shmc_ifstub *ifstubs;
    uint32_t extrefs;  /* strong: NORMAL/TABLESTRONG records, proxies */
    uint32_t weakrefs; /* TABLEWEAK records */
    shmc_record *records;
    bool connected;     /* in the tables, reachable */
    shmc_stubmgr *next; /* apt->stubs */
    /* guards identity (calls do not take it: shmc_ifstub_enter) */
    shmc_plat_mutex lock;
    IUnknown *identity; /* under lock; NULL once disconnected */
};

void shmc_stubmgr_release(shmc_stubmgr *sm);
void shmc_ifstub_addref(shmc_ifstub *s);
void shmc_ifstub_release(shmc_ifstub *s);
/*
 * A call into the object through interface stub s: enter returns the
 * interface to call, or NULL once the stub is closed (disconnected); a
 * call that got one leaves once it no longer uses it. Closing (under the
 * stub manager's lock, shmc_stubmgr_release_object) lets go of the stub's
 * reference at once if no call is in flight, else the last call to leave
 * releases it, on its own thread. One atomic read-modify-write each way,
 * where a lock, an AddRef, an unlock and a Release were. The caller keeps
 * s alive from enter to leave.
 */
void *shmc_ifstub_enter(shmc_ifstub *s);
void shmc_ifstub_leave(shmc_ifstub *s);
/* Sets the hazard records up (at run-time set-up, and again in tests):
 * on where the OS has a process-wide memory barrier (stubmgr.c). */
#define SHMC_HAZARDS 64
void shmc_hazards_setup(void);
/* Tests: calls enter with the count from now on (until set up again). */
void shmc_hazards_disable(void);
/* Tests: whether calls enter through hazard records, and how many records
 * threads hold. */
bool shmc_hazards_enabled(void);
unsigned shmc_hazards_in_use(void);

/* ---- proxy managers ------------------------------------------------------- */

struct shmc_ifproxy {
    ShmProxyHeader hdr; /* first: `This` of the generated thunks */
    shmc_proxymgr *mgr;
    shmc_ifstub *target; /* in-process: the interface stub (struct ref) */
    uint8_t ipid[16];    /* another process's: the interface's IPID */
    /* target->mgr->apt, kept here so that a call reads nothing of the
     * callee's (its lines may share a line with what the callee writes) */
    shmc_apt *target_apt;
    IID iid;
    uint32_t held_refs; /* strong references held on the stub manager */
    shmc_ifproxy *next;
};

enum {
    SHMC_PM_CONNECTED = 0,
    SHMC_PM_DISCONNECTED, /* the object was disconnected: RPC_E_DISCONNECTED */
    SHMC_PM_APT_GONE,     /* our apartment ended: CO_E_OBJNOTCONNECTED */
};
/* (a proxy of an object in a process that died answers RPC_E_SERVER_DIED:
 * that is read from its connection) */

struct shmc_proxymgr {
    IUnknown IUnknown_iface; /* the identity */
    ShmProxyChannel channel;
    _Atomic uint32_t refs; /* COM references of all its interfaces */
    _Atomic uint32_t state;
    shmc_apt *apt;         /* the client apartment */
    shmc_stubmgr *stubmgr; /* in-process: the object (struct ref) */
    shmc_conn *conn;       /* another process's: the connection to it (a reference) */
    uint64_t oxid, oid;
    /* under rt.lock */
    shmc_ifproxy *ifproxies;
    bool listed; /* in apt->proxies */
    shmc_proxymgr *next;
};

/* ---- the process --------------------------------------------------------------- */

typedef struct shmc_thread {
    shmc_apt *apt;  /* joined with ShmCoInitializeEx, or NULL */
    uint32_t inits; /* ShmCoInitializeEx count */
    uint32_t timeout_ms;
    shmc_notifier *notifier; /* replies to this thread's calls (pooled) */
    bool worker;             /* a runtime thread of the MTA */
    /* its hazard record (stubmgr.c): an index, or SHMC_HAZARD_NONE_YET,
     * or SHMC_HAZARD_NONE (none to be had: it enters with the count) */
    int32_t hazard;
    uint32_t entered; /* shmc_ifstub_enter calls it is in (nested) */
    /* the slot of a connection it keeps between its calls (conn.c, "kept
     * slots"): keep_conn's address and gen name the connection; keep_in
     * says a call of this thread is in it */
    const void *keep_conn;
    uint64_t keep_gen;
    uint32_t keep_slot;
    uint32_t keep_ends;   /* calls ended on other connections (a look every 64) */
    uint32_t keep_deaths; /* connections gone when it last looked (conn.c) */
    bool keep_in;
    /* Windows: what its calls touch on every call (shmc_hot_get) */
    struct shmc_hot *hot;
} shmc_thread;

enum { SHMC_HAZARD_NONE_YET = -1, SHMC_HAZARD_NONE = -2 };
/* Gives back a thread's hazard record (its state's destructor). */
void shmc_hazard_free(shmc_thread *th);

typedef struct shmc_rt {
    shmc_plat_mutex lock;
    shmc_apt *apts;        /* every live apartment */
    shmc_apt *_Atomic mta; /* NULL when no thread is in the MTA; set under lock */
    shmc_hmap stub_by_oid;
    shmc_hmap stub_by_identity;
    shmc_hmap registry; /* IID hash -> registered interface list */
    shmc_hmap ipids;    /* IPID (first 8 bytes, mixed) -> interface stub */
    /* Bumped (under lock) whenever a reference a client process holds is
     * given back or a stub manager is taken out of the tables: what a
     * receiver remembers of its last lookup holds while it is unchanged.
     * A line away from the lock, which every thread takes. */
    _Alignas(SHMC_LINE) _Atomic uint64_t ref_gen;
    shmc_plat_tls tls;
    shmc_plat_procid self;
    HRESULT init_hr;
} shmc_rt;

extern shmc_rt shmc_g;

static inline void shmc_ref_gen_bump_locked(void)
{
    atomic_fetch_add_explicit(&shmc_g.ref_gen, 1, memory_order_release);
}

/*
 * How long waiting threads spin before they sleep. A caller spins while its
 * reply may be about to come (adapted per thread between 1 us and
 * caller_spin_max_ns); an idle STA or MTA worker spins callee_spin_ns for
 * the next call. On a single CPU nobody spins. Benchmarks change them to
 * measure both sides asleep.
 */
typedef struct shmc_tuning {
    _Atomic uint32_t caller_spin_max_ns;
    _Atomic uint32_t callee_spin_ns;
    /* see shmc_handoff_quiet: in pauses (calibrated at set-up from
     * SHMC_QUIET_NS and SHMC_QUIET_MAX_NS) */
    _Atomic uint32_t quiet_pauses, quiet_max_pauses;
    /* tests: how long a spare receiver (conn.c) takes to get to its first
     * sleep, as a thread may on a loaded machine (0: no delay) */
    _Atomic uint32_t spare_delay_ms;
    /* tests: the most bytes one call of a stream proxy's Read or Write
     * moves (streamps.c; 0: 64 MiB) */
    _Atomic uint32_t stream_chunk;
} shmc_tuning;
extern shmc_tuning shmc_tune;

/*
 * After a thread hands a call's line to the other side (a caller its
 * request, a callee its reply), it leaves the line alone for a moment
 * before it spins on it. The other side reads the line, works 100-200 ns
 * (a stub, a proxy's bookkeeping) and writes it back; a spinner that reads
 * it meanwhile takes it back each time, and the write that ends the work
 * then waits for one more transfer. A ping-pong writes right after it
 * reads and never meets that. Measured on the 2-CPU VM: the in-process
 * null call from 0.53 to 0.38 us with 4 pauses (about 90 ns) on each side.
 *
 * How long the other side takes depends on the call and on both sides'
 * code, so each thread adapts its quiet, per role (caller, callee), to
 * what it finds at its first look after it: the answer there already (the
 * quiet was long enough, perhaps too long) shortens it by an eighth of a
 * pause; no answer yet (the look came too early, and cost a transfer)
 * lengthens it by half a pause. It settles where about 4 looks in 5 find
 * the answer, since a look too early costs more than one a little late.
 * It starts at SHMC_QUIET_NS and stays under SHMC_QUIET_MAX_NS, so that a
 * thread whose peer takes its time (an application's own work between
 * calls) does not make the quick calls wait long for it.
 *
 * The pauses are counted, not timed (a clock read costs as much); their
 * length comes from timing the pause once, at set-up. No quiet on a
 * single CPU.
 */
#define SHMC_QUIET_NS     80u
#define SHMC_QUIET_MAX_NS 320u

typedef struct shmc_quiet {
    uint32_t eighths; /* of a pause */
    bool started;     /* eighths is set */
    bool pending;     /* quiet done: the next look tells whether it was long enough */
} shmc_quiet;

static inline void shmc_handoff_quiet(shmc_quiet *q)
{
    uint32_t base = atomic_load_explicit(&shmc_tune.quiet_pauses, memory_order_relaxed);
    if (!base)
        return;
    if (!q->started) {
        q->eighths = base * 8;
        q->started = true;
    }
    for (uint32_t n = q->eighths / 8; n; n--)
        shmc_plat_cpu_relax();
    q->pending = true;
}

/* The first look at the line after the quiet: found the other side's
 * answer, or not. Later looks do not count. */
static inline void shmc_quiet_looked(shmc_quiet *q, bool found)
{
    if (!q->pending)
        return;
    q->pending = false;
    if (found) {
        if (q->eighths)
            q->eighths--;
        return;
    }
    uint32_t max = atomic_load_explicit(&shmc_tune.quiet_max_pauses, memory_order_relaxed) * 8;
    q->eighths = q->eighths + 4 > max ? max : q->eighths + 4;
}

/*
 * The CPU a thread runs on, as far as it knows: asked of the OS again on
 * every SHMC_CPU_ASK_EVERY-th use, and on the first use after its spin
 * yielded or ran out (it may have moved then, and when two spinners share
 * a CPU, every wait yields). Asking costs a few ns natively, but about
 * 280 ns under Wine (GetCurrentProcessorNumberEx is a system call there),
 * more than a null call's whole budget if both sides asked on every call.
 */
#define SHMC_CPU_ASK_EVERY 64u

typedef struct shmc_cpu_known {
    int cpu;
    uint32_t uses;
    bool stale;
} shmc_cpu_known;

/*
 * What a thread's calls touch on every call, in one thread-local object
 * (call.c): under mingw-w64, whose gcc has no native TLS, each function
 * that touches a _Thread_local calls __emutls_get_address once per object
 * (14 ns under Wine: 15 of them made a fifth of a null call between
 * apartments there); natively it is a load relative to a register either
 * way.
 */
typedef struct shmc_hot {
    shmc_cpu_known cpu; /* shmc_cpu_current */
    /* the hand-off quiets: a caller's after sending a watched call, a
     * callee's after replying to one (call.c, apartment.c); a client's
     * after a request, a receiver's after a reply (conn.c) */
    shmc_quiet caller_quiet, callee_quiet, client_quiet, receiver_quiet;
    uint64_t reply_ns_avg; /* recent reply time (shmc_call_spin_budget) */
    shmc_call *spare;      /* the thread's last call record (call.c) */
    uint64_t moved_at;     /* its last move off a CPU (call.c) */
    bool moved_once;
} shmc_hot;
extern SHMC_THREAD_LOCAL shmc_hot shmc_hot_tls;

/* The calling thread's shmc_hot: shmc_hot_tls; on Windows, where that is
 * emulated TLS, the one in its runtime state (shmc_thread.hot), reached
 * through the platform's fast slot, once it has that state. */
static inline shmc_hot *shmc_hot_get(void)
{
#if defined(_WIN32)
    shmc_thread *th = shmc_plat_fast_tls_get();
    if (th && th->hot)
        return th->hot;
#endif
    return &shmc_hot_tls;
}

static inline int shmc_cpu_current(void)
{
    shmc_cpu_known *k = &shmc_hot_get()->cpu;
    if (k->stale || k->uses++ % SHMC_CPU_ASK_EVERY == 0) {
        k->cpu = shmc_plat_current_cpu();
        k->stale = false;
    }
    return k->cpu;
}

/* The thread may have moved: the next shmc_cpu_current asks the OS. */
static inline void shmc_cpu_forget(void)
{
    shmc_hot_get()->cpu.stale = true;
}

/* The caller's spin budget: twice the recent reply time (an exponential
 * average per thread), so a callee that answers within the budget is met
 * without a system call on either side; replies slower than the maximum
 * are waited for asleep after a minimal spin (SHMC_SPIN_NS_MIN). */
#define SHMC_SPIN_NS_MIN 1000u

static inline uint32_t shmc_call_spin_budget(void)
{
    uint32_t spin_max = atomic_load_explicit(&shmc_tune.caller_spin_max_ns, memory_order_relaxed);
    if (spin_max == 0)
        return 0;
    uint64_t avg = shmc_hot_get()->reply_ns_avg;
    if (avg > spin_max)
        return SHMC_SPIN_NS_MIN; /* slow callee: do not burn a CPU for it */
    uint64_t b = 2 * avg;
    return b < SHMC_SPIN_NS_MIN ? SHMC_SPIN_NS_MIN : b > spin_max ? spin_max : (uint32_t)b;
}

/* A reply took ns (63/64 old, 1/64 new). */
static inline void shmc_call_note_reply(uint64_t ns)
{
    shmc_hot *h = shmc_hot_get();
    h->reply_ns_avg = (h->reply_ns_avg * 63 + ns) / 64;
}

/*
 * A spin-wait, for a thread that waits for another to change a word. It
 * pauses (PAUSE/YIELD) between looks for the first SHMC_SPIN_PAUSE_NS;
 * after that it gives its CPU away (sched_yield, SwitchToThread) between
 * looks until the budget is spent. When the machine has more runnable
 * threads than CPUs, the thread it waits for may be queued on its own CPU
 * behind it: a spin that only paused would hold it off for the whole budget
 * (measured: 2 client processes and a server on 2 CPUs made 18 k calls/s
 * with pause-only spins). With a CPU to spare, a yield returns at once.
 *
 *     shmc_spin sp;
 *     shmc_spin_begin(&sp, budget_ns);
 *     while (!ready())
 *         if (!shmc_spin_next(&sp))
 *             break;   // budget spent: go to sleep
 *
 * While it pauses, the clock is read only every SHMC_SPIN_UNTIMED looks (a
 * read costs as much as a look, and when both sides run, the change
 * usually comes sooner), first at the end of the first such run: the
 * budget counts from there, a microsecond late at most. Once it yields, it
 * reads the clock after every yield.
 */
#define SHMC_SPIN_UNTIMED  64u
#define SHMC_SPIN_PAUSE_NS 4000u

typedef struct shmc_spin {
    uint64_t start;  /* 0 until the clock is first read */
    uint32_t budget; /* ns; 0: no spin at all */
    uint32_t looks;
    bool yielding;
} shmc_spin;

static inline void shmc_spin_begin(shmc_spin *sp, uint32_t budget_ns)
{
    sp->start = 0;
    sp->budget = budget_ns;
    sp->looks = 0;
    sp->yielding = false;
}

/* The partner of the spin waits behind it on its CPU (shmc_cpu_shared):
 * the spin gives the CPU away between looks from the first one on. */
static inline void shmc_spin_behind(shmc_spin *sp)
{
    sp->yielding = true;
}

/* Call after a look that found nothing: waits a little and returns true to
 * look again, or false once the budget is spent (and at once if it is 0). */
static inline bool shmc_spin_next(shmc_spin *sp)
{
    if (!sp->budget)
        return false;
    uint32_t n = ++sp->looks;
    if (sp->yielding) {
        shmc_plat_thread_yield();
        shmc_cpu_forget(); /* it may have moved */
    } else {
        shmc_plat_cpu_relax();
    }
    /* yielding, the clock is read after every yield: a yield may give the
     * CPU away for a whole time slice (and, under Valgrind, which runs one
     * thread at a time, to every other thread in turn), so that counting
     * yields would overrun the budget by many slices */
    if (!sp->yielding && n % SHMC_SPIN_UNTIMED != 0)
        return true;
    uint64_t now = shmc_plat_clock_ns();
    if (!sp->start) {
        sp->start = now;
        return true;
    }
    uint64_t spent = now - sp->start;
    if (spent >= sp->budget) {
        shmc_cpu_forget(); /* it sleeps next, and may wake elsewhere */
        return false;
    }
    if (spent >= SHMC_SPIN_PAUSE_NS)
        sp->yielding = true;
    return true;
}

/*
 * A caller's spin ended with the reply: how long it waited, for its spin
 * budget (shmc_call_note_reply). The clock is read only if the spin read
 * it: a reply that came within the spin's first SHMC_SPIN_UNTIMED looks
 * (about a microsecond) counts as 0, so a hot call reads no clock at all.
 * (A read costs as much as a null call's own bookkeeping. Read on every
 * 8th call, as before, rather than every 64th, it made a hot
 * cross-process null call 23 ns longer on average, in-run A/B: the calls
 * that read it looked later, which upset the hand-off quiet's adaptation
 * for the others.) The time is short by the untimed looks: the budget is
 * at least SHMC_SPIN_NS_MIN anyway.
 */
static inline uint64_t shmc_spin_waited_ns(const shmc_spin *sp)
{
    return sp->start ? shmc_plat_clock_ns() - sp->start : 0;
}

/* The deadline of a call whose spin (sp) has ended without the reply, for
 * a timeout in ms (INFINITE: UINT64_MAX): counted from the spin's first
 * clock read, or from now if it took none (a microsecond late at most). */
static inline uint64_t shmc_spin_deadline(const shmc_spin *sp, uint32_t timeout_ms)
{
    if (timeout_ms == INFINITE)
        return UINT64_MAX;
    return (sp->start ? sp->start : shmc_plat_clock_ns()) + (uint64_t)timeout_ms * 1000000u;
}

/*
 * Two threads that spin for each other (a caller for the reply to a call
 * it sent to a watcher, a watcher for its caller's next call) need two
 * CPUs. Each says, in a word of the call, which CPU it ran on when it last
 * handed the call over; before it spins, a thread compares the CPU it runs
 * on with its partner's word. The same: the partner is not running (this
 * thread is, there). A spin would hold it off for the whole pause phase of
 * shmc_spin, and then the two would trade yields, 1-15 us a call, for as
 * long as the kernel leaves them there: seconds, on the 2-CPU VM, while the
 * other CPU idled (measured with a third program that briefly took that
 * CPU now and then). The kernel moves neither: a thread that ran a moment
 * ago is not taken by the load balancer, and when the LLC is busy (two
 * spinners on two CPUs are 100%) a wake-up is not placed on an idle CPU
 * either, so sleeping instead would not help.
 *
 * So the caller moves itself to another CPU (shmc_plat_thread_move_off_cpu:
 * its affinity stays what it was), at most once every SHMC_MOVE_GAP_NS, and
 * both spin apart again from the next call. A watcher (or a caller that
 * could not move) that finds its partner behind it gives its CPU away at
 * its first look instead of pausing (shmc_spin_behind). Only the caller
 * moves: two threads moving away from each other's old CPUs could meet on
 * the other one.
 *
 * The partner's word may be stale: a partner that moved since is taken for
 * one that shares this CPU (a move or a yield too many, once), or the
 * other way round (the spin as before, once: the partner corrects its word
 * at its next hand-off).
 */
#define SHMC_MOVE_GAP_NS 1000000u

/* How many times a caller moved off a CPU it shared (tests, benchmarks). */
extern _Atomic uint32_t shmc_cpu_moves;
/* How many times a thread took back a connection slot another kept
 * (conn.c, "kept slots"; tests). */
extern _Atomic uint32_t shmc_slot_takebacks;

static inline bool shmc_cpu_shared(int mine, int32_t theirs)
{
    return mine >= 0 && mine == theirs;
}

/* A thread's word for shmc_cpu_shared, written only when it changes (the
 * partner reads the line on every call). */
static inline void shmc_cpu_publish(_Atomic int32_t *word, int cpu)
{
    if (atomic_load_explicit(word, memory_order_relaxed) != cpu)
        atomic_store_explicit(word, cpu, memory_order_relaxed);
}

/* A caller that sent a call on `cpu` to a watcher whose word says
 * `partner` (call.c): if that is its own CPU, it moves (at most once every
 * SHMC_MOVE_GAP_NS) and says where it went in its word `mine`. true if the
 * watcher still waits behind it: no quiet, and a shmc_spin_behind spin. */
bool shmc_caller_behind(int cpu, int32_t partner, _Atomic int32_t *mine);

/* shmc_spin_begin for a watcher whose caller's word says `partner` (-1:
 * it watches nothing): a spin behind the caller if that is its own CPU. */
static inline void shmc_spin_begin_watching(shmc_spin *sp, uint32_t budget_ns, int32_t partner)
{
    shmc_spin_begin(sp, budget_ns);
    if (partner >= 0 && shmc_cpu_shared(shmc_cpu_current(), partner))
        shmc_spin_behind(sp);
}

/* Sets the runtime up once; returns its set-up result. */
HRESULT shmc_rt_init(void);
/* The calling thread's state, created on first use (NULL: out of memory). */
shmc_thread *shmc_thread_get(void);
/* The calling thread's state if it has one (NULL otherwise). */
shmc_thread *shmc_thread_peek(void);
/*
 * The apartment the calling thread is in: the one it joined, or the MTA
 * if it joined none and the MTA exists (the implicit MTA). Returns it with
 * a reference, or NULL (CO_E_NOTINITIALIZED).
 */
shmc_apt *shmc_current_apt(void);
/* Why shmc_current_apt gave NULL: E_OUTOFMEMORY if the thread's state
 * could not be allocated, else CO_E_NOTINITIALIZED. */
HRESULT shmc_current_apt_error(void);
/* The notifier of the calling thread (its STA's doorbell in an STA). */
shmc_notifier *shmc_thread_notifier(shmc_thread *th);

/* Runs every call queued on `apt`; returns how many ran. */
unsigned shmc_apt_pump(shmc_apt *apt);
/* true if calls wait in the apartment's queue (a cheap peek). */
bool shmc_apt_has_calls(shmc_apt *apt);
/* Queues a call on its apartment (false if the apartment refuses it). */
bool shmc_apt_enqueue(shmc_apt *apt, shmc_call *c);
/* MTA: starts a worker if it has none (the start failed when calls were
 * queued: out of memory, or of threads); false if it still has none. A
 * caller waiting on an MTA calls it now and then, and gives up
 * (RPC_E_OUT_OF_RESOURCES) rather than wait for ever. */
bool shmc_apt_check_workers(shmc_apt *apt);
/* Runs one incoming call in this thread (which is in apt, c->target). If
 * `spare_workers` is given, it is incremented just before the caller is
 * told, so an MTA worker counts as spare again before a new call can
 * arrive. */
/* With may_watch (the thread watches the calls it completes), returns
 * true if it left c WATCHED: the thread watches it from then on. */
bool shmc_call_execute(shmc_apt *apt, shmc_call *c, _Atomic int32_t *spare_workers, bool may_watch);
/* Drops and recycles a call given up before it ran (its watcher's job). */
void shmc_call_drop_unrun(shmc_call *c);
/* Tells the apartment that a call it watches was sent to it (or given up). */
void shmc_apt_ring(shmc_apt *apt);
/* The STA's own thread enters and leaves a wait of the runtime's that runs
 * incoming calls (nested: counted); leaving the outermost, it makes the
 * STA's event (ShmCoGetApartmentWaitHandle) say whether calls wait
 * (apartment.c). Only an STA with an event counts (its thread makes the
 * event, and only it writes the depth): shmc_sta_enter says whether it
 * counted, and only then is shmc_sta_leave called. An event made during
 * a wait (by a call the wait runs) finds the depth at 0, as no wait of an
 * STA without an event counts: the callers set it until the thread's next
 * wait. */
void shmc_sta_leave(shmc_apt *sta);

static inline bool shmc_sta_enter(shmc_apt *sta)
{
    if (!sta || !atomic_load_explicit(&sta->has_event, memory_order_relaxed))
        return false;
    atomic_store_explicit(&sta->in_runtime,
                          atomic_load_explicit(&sta->in_runtime, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return true;
}

/* Tables and objects (stubmgr.c, proxymgr.c). */
shmc_stubmgr *shmc_stubmgr_find_oid(uint64_t oid);
/* Drops n strong references; collects the stub manager to destroy if it
 * was the last. Under rt.lock. */
void shmc_stubmgr_drop_refs_locked(shmc_stubmgr *sm, uint32_t n, bool weak, shmc_stubmgr **destroy);
/* Takes the stub manager out of the tables (it stays allocated); under rt.lock. */
void shmc_stubmgr_unlist_locked(shmc_stubmgr *sm);
/* Releases the object of an unlisted stub manager, in its apartment
 * (here if this thread is in it, else by a call to it), and drops the
 * struct reference the caller held. */
void shmc_stubmgr_destroy(shmc_stubmgr *sm);
/* Releases the object's pointers; must run in sm->apt. */
void shmc_stubmgr_release_object(shmc_stubmgr *sm);

/* Runs in the object's apartment: QI for iid, finds or makes the interface
 * stub and adds one strong reference for the caller. */
HRESULT shmc_stubmgr_qi(shmc_stubmgr *sm, REFIID iid, shmc_ifstub **out);

/* The proxy/stub table for iid: a registered one, else the runtime's own
 * (ISequentialStream, IStream); NULL if there is none. */
const ShmInterfaceInfo *shmc_registry_find(REFIID iid);
/* The runtime's own tables (streamps.c): ISequentialStream and IStream. */
const ShmInterfaceInfo *shmc_stream_ps_find(REFIID iid);

/* Apartment shutdown: disconnects its stubs, releases its proxies. */
void shmc_apt_shutdown(shmc_apt *apt);
/* Proxy managers of an apartment that ends (proxymgr.c). */
void shmc_proxymgr_apt_gone_locked(shmc_proxymgr *pm, shmc_stubmgr **destroy, size_t *ndestroy,
                                   size_t cap);

/* The proxy manager behind an interface proxy or identity of ours, with a
 * reference, or NULL if punk is not one of our proxies. */
shmc_proxymgr *shmc_proxymgr_from(IUnknown *punk);
void shmc_proxymgr_release_ref(shmc_proxymgr *pm);

/* Remote proxy managers (remote.c). */
HRESULT shmc_remote_qi(shmc_proxymgr *pm, REFIID riid, uint8_t ipid[16]);
void shmc_remote_release_refs(shmc_proxymgr *pm);
/* Frees the thread's cached remote call record (at thread end). */
void shmc_remote_free_spare(void);
/* remote.c: run-time set-up of the remote channel. */
void shmc_remote_setup(void);
HRESULT shmc_remote_add_record(shmc_proxymgr *pm, REFIID riid, DWORD mshlflags, uint8_t ipid[16],
                               uint64_t *nonce);

/* Unmarshal helpers (proxymgr.c). */
HRESULT shmc_proxymgr_connect(shmc_apt *apt, shmc_stubmgr *sm, shmc_ifstub *ifs, bool transfer_ref,
                              REFIID riid, void **ppv);
HRESULT shmc_proxymgr_get_ifstub(shmc_proxymgr *pm, REFIID riid, shmc_ifstub **out);
/* An imported object of another process: finds or makes the proxy
 * manager for (conn, oid) in apt and takes over one reference on ipid/iid
 * (already credited by the owner). */
HRESULT shmc_proxymgr_connect_remote(shmc_apt *apt, shmc_conn *conn, uint64_t oxid, uint64_t oid,
                                     const uint8_t ipid[16], REFIID iid, REFIID riid, void **ppv);
/* Checks a proxy can be used by this thread (apartment, state, peer). */
HRESULT shmc_proxymgr_check(shmc_proxymgr *pm);
shmc_proxymgr *shmc_proxymgr_from_channel(ShmProxyChannel *ch);

#endif /* SHMCOM_RUNTIME_RT_H */
