/*
 * conn.h - a connection between this process and another (private
 * memory): the mapped connection region and what each side keeps about it.
 * Internal to the transport (endpoint.c, conn.c, remote.c).
 */
#ifndef SHMCOM_RUNTIME_CONN_H
#define SHMCOM_RUNTIME_CONN_H

#include "xport.h"

/* What a server keeps for one client process, whichever of its
 * connections (up to SHMC_MAX_CONNS_PER_CLIENT) asked for it: how many
 * records it made for that process and are not spent yet, which
 * SHMC_CONN_MAX_MADE bounds for the process (bounds.h). Shared by the
 * server's connections of the process, freed with the last of them. */
typedef struct shmc_client_acct {
    _Atomic uint32_t refs; /* the connections that share it */
    uint32_t nmade;        /* under rt.lock */
} shmc_client_acct;

/* What the server keeps per interface a connection holds references on. */
typedef struct shmc_conn_ref {
    shmc_ifstub *ifs; /* a struct reference */
    uint32_t count;   /* strong references the connection holds */
} shmc_conn_ref;

/*
 * The interface stub a receiver called last, with references on it and on
 * its stub manager, and the reference generation it was looked up in. The
 * next call naming the same IPID uses it without the lookup (the runtime
 * lock, a hash probe, two reference counts) while no client reference was
 * given back and no stub manager was taken out since (shmc_g.ref_gen): a
 * client that calls one object back to back costs the receiver one read
 * of a line nobody writes then. (conn.c)
 */
typedef struct shmc_ifs_cache {
    uint8_t ipid[16];
    shmc_ifstub *ifs;
    uint64_t gen;
} shmc_ifs_cache;

struct shmc_conn {
    _Atomic uint32_t refs;
    bool is_client; /* we made it to call the peer; else we serve it */
    bool detached;  /* over the caller's memory, no threads (fuzzers) */
    shmc_plat_region region;
    shmc_conn_hdr *hdr;
    shmc_plat_procid peer;
    char peer_endpoint[SHMC_XNAME_MAX];          /* client: the server's endpoint */
    _Atomic bool dead;                           /* the peer died or closed */
    shmc_plat_waiter server_bell;                /* the client wakes receivers here */
    shmc_plat_waiter slot_wake[SHMC_CONN_SLOTS]; /* the server wakes callers here */
    shmc_plat_proc watch;                        /* the peer (the watcher thread waits on it) */
    _Atomic bool closing;                        /* tell the watcher to stop */
    shmc_conn *next;                             /* the transport's list */

    /* client: which slots are free (only the client hands them out) */
    shmc_plat_mutex slot_lock;
    shmc_plat_cond slot_cond;
    _Atomic uint32_t free_mask;    /* slots free for a new call (no lock) */
    _Atomic uint32_t slot_waiters; /* callers waiting for a free slot */
    uint32_t abandoned_mask;       /* slots given up on, until the server frees
                                      them (under slot_lock) */
    /* slots kept by a thread between its calls (conn.c, "kept slots"):
     * per slot, 0, the keeper (its shmc_thread), or KEEP_REVOKED /
     * KEEP_RETURN while another thread takes it back; and a number that
     * names this connection for good (a thread's record of what it keeps
     * may outlive it) */
    _Atomic uintptr_t keeper[SHMC_CONN_SLOTS];
    struct {
        _Atomic uint32_t in; /* the keeper's call is in the slot */
        char pad[SHMC_LINE - sizeof(uint32_t)];
    } keep_in[SHMC_CONN_SLOTS]; /* (each written on every call: lines apart) */
    uint64_t gen;

    /* server */
    _Atomic uint32_t receivers;
    /* slots a receiver is serving (bit i: slot i), whatever the client
     * writes into their state words meanwhile (conn.c, claim_slot) */
    _Atomic uint32_t serving;
    /* slots a receiver watches (bit i: slot i): the one that replied there
     * last and looks for the next request in it. Other receivers leave
     * them alone, so that a hot call's slot is read by its client and one
     * receiver only (conn.c, receiver_main) */
    _Atomic uint32_t watched;
    /* receivers asleep (the header has a mirror for the client; those
     * awake and about to look are counted there alone, conn.c) */
    _Atomic uint32_t sleeping;
    /* the marshaler of this connection's stubs (shmc_reply_marshaler_vtbl) */
    ShmItfMarshaler reply_marshaler;
    /* records made for the client (ADD_RECORD, objects in replies) through
     * this connection and not spent yet, revoked when it goes (under
     * rt.lock; shmc_record.made_for); counted in the client's account,
     * which its other connections share */
    shmc_record *made;
    shmc_client_acct *acct;
    shmc_hmap credits; /* ipid (first 8 bytes) -> shmc_conn_ref */
    /* bulk regions kept per slot (xport.h): ours (client: requests;
     * server: replies) and the peer's, mapped (client: replies; server:
     * requests). Only the side that runs the slot's call touches them. */
    shmc_plat_region bulk_out[SHMC_CONN_SLOTS];
    shmc_plat_region bulk_in[SHMC_CONN_SLOTS];
    /* our region's name may still exist: the peer has not yet said it has
     * the region mapped (then we remove the name, see conn.c) */
    bool bulk_out_named[SHMC_CONN_SLOTS];
    /* what shmc_conn_serve_one remembers between calls (detached) */
    shmc_ifs_cache detached_cache;
};

/* endpoint.c */
HRESULT shmc_xport_random_name(char *out, size_t size, const char *kind);
HRESULT shmc_xport_copy_name(char out[SHMC_XNAME_MAX], const char *shared, size_t field);
HRESULT shmc_xport_post_connect(const char *endpoint, const shmc_plat_procid *server,
                                const char *conn_name);

/* remote.c: the server revokes the records a client that went away asked
 * for and nobody took (a proxy marshaled for a third process that never
 * unmarshaled it; table records it made). */
void shmc_remote_revoke_made(shmc_conn *c);
/* remote.c: what a connection's stubs marshal with on the server (its
 * reply_marshaler): the local marshaler, which also notes every record it
 * makes for a reply (an object the method returns) as made for the
 * client, so that it is revoked if the client dies before it takes it.
 * The record is noted from its private copy, before the reply goes into
 * the slot: read back from there, it could be what the client wrote. */
extern const ShmItfMarshalerVtbl shmc_reply_marshaler_vtbl;

/* conn.c: a new connection to the process that owns `endpoint`, outside
 * the cache shmc_conn_get keeps (what shmc_conn_get uses; tests use it to
 * open more than one). RPC_E_SERVERCALL_REJECTED if the server already
 * serves SHMC_MAX_CONNS_PER_CLIENT connections of this process. *out
 * holds two references: the creation one, which conn_peer_gone drops when
 * the server goes (its watcher already runs), and the caller's. */
HRESULT shmc_conn_connect_new(const char *endpoint, const shmc_plat_procid *peer, shmc_conn **out);

/* conn.c: the server accepts a connection posted to its endpoint. */
void shmc_conn_accept(const char *conn_name, const shmc_plat_procid *client);

/* The slot i of a connection. */
static inline shmc_slot_hdr *shmc_conn_slot(shmc_conn *c, uint32_t i)
{
    return (shmc_slot_hdr *)((unsigned char *)c->region.base + SHMC_SLOT_HDR +
                             (size_t)i * SHMC_SLOT_STRIDE);
}

static inline unsigned char *shmc_conn_req_area(shmc_conn *c, uint32_t i)
{
    return (unsigned char *)shmc_conn_slot(c, i) + SHMC_SLOT_HDR;
}

static inline unsigned char *shmc_conn_rep_area(shmc_conn *c, uint32_t i)
{
    return shmc_conn_req_area(c, i) + SHMC_SLOT_AREA;
}

/* conn.c: the client's side of one call in a slot. */
typedef struct shmc_xcall {
    shmc_conn *conn;
    int slot;         /* -1: none (yet, or given up on) */
    bool kept;        /* the slot is the one this thread keeps */
    bool bulk_req;    /* the request is in the slot's bulk region */
    uint32_t req_cap; /* bytes writable at the request pointer */
    void *request;
} shmc_xcall;

/* Takes a free slot of the connection (waits while all are busy, within
 * the thread's call timeout) and makes room for a request of `size`. The
 * caller holds a reference on the connection until shmc_xcall_end. */
HRESULT shmc_xcall_begin(shmc_xcall *x, shmc_conn *c, uint32_t size);
/* Makes room for a request of `size` (the engine's second GetBuffer). */
HRESULT shmc_xcall_resize(shmc_xcall *x, uint32_t size);
/* Posts the request and waits for the reply: S_OK with *reply, *reply_len
 * (valid until shmc_xcall_end) and the server's transport status in
 * *status; RPC_E_SERVER_DIED, RPC_E_TIMEOUT (the slot is abandoned). */
HRESULT shmc_xcall_send(shmc_xcall *x, uint32_t kind, uint32_t method, const uint8_t ipid[16],
                        uint32_t req_len, const void **reply, uint32_t *reply_len, HRESULT *status);
/* Ends the call: gives the slot back (unless it was given up on), or
 * keeps it for the thread's next call. */
void shmc_xcall_end(shmc_xcall *x);
/* A thread ends: the slot it keeps goes back to its connection. */
void shmc_conn_thread_ends(struct shmc_thread *th);

/*
 * conn.c, for the fuzzers (tests/fuzz/fuzz_xport.c), which play the peer
 * themselves: a connection over `size` (>= SHMC_CONN_SIZE) bytes of the
 * caller's memory at `base`, laid out as a connection region, with no
 * watcher and no receiver thread. A client connection (is_client) is the
 * one shmc_conn_get returns for (`endpoint`, `peer`) from then on, as if
 * it had connected; a server connection serves `peer` only through
 * shmc_conn_serve_one. With a reference for the caller, which
 * shmc_conn_close_detached drops after closing it as if the peer had gone
 * (a server's connection then gives back what the peer held). The memory
 * must outlive every reference (proxies hold some); it is never unmapped.
 * Its wait words are this process's (shmc_plat_waiter_open_local): a
 * thread that plays the peer wakes the connection's own waiters
 * (server_bell, slot_wake), as another waiter on the same word would not
 * reach them on Windows.
 */
HRESULT shmc_conn_new_detached(void *base, size_t size, bool is_client,
                               const shmc_plat_procid *peer, const char *endpoint, shmc_conn **out);
void shmc_conn_close_detached(shmc_conn *c);
/* Server side: as a receiver thread, in this thread: drops the requests
 * given up early, then takes one slot holding a request and serves it.
 * Returns that slot, or -1 if no slot held one. */
int shmc_conn_serve_one(shmc_conn *c);

#endif /* SHMCOM_RUNTIME_CONN_H */
