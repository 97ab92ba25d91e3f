/*
 * xport.h - the cross-process transport (docs/transport.md): endpoint and
 * connection regions, their slots, and the runtime operations that travel
 * in them. Shared-memory layouts are drawn here and pinned with static
 * assertions: they are a contract between processes.
 */
#ifndef SHMCOM_RUNTIME_XPORT_H
#define SHMCOM_RUNTIME_XPORT_H

#include "bounds.h"
#include "objref.h"
#include "regionhdr.h"
#include "rt.h"

#define SHMC_REGION_KIND_ENDPOINT 2u
#define SHMC_REGION_KIND_CONN     3u
#define SHMC_REGION_KIND_BULK     4u
#define SHMC_XPORT_VERSION        3u

/* Names of our regions: "ep.<pid>.<16 hex>", "cn.<pid>.<16 hex>", ... */
#define SHMC_XNAME_MAX 48

/* ---- the endpoint region ----------------------------------------------------
 *
 *   offset size
 *        0   48  common region header (kind ENDPOINT, owner = the server)
 *       48    4  nslots      32
 *       52    4  sleepers    the listener counts itself before it sleeps
 *       56    8  bell        wait word: clients bump it after posting
 *      128 32x128 connect slots:
 *                 0  8 claim        0 free; else the claiming client's pid
 *                 8  4 posted       1 once the fields below are complete
 *                16  8 client_pid   \ the client's identity
 *                24  8 client_start /
 *                32 64 conn_name    its connection region's name, NUL-ended
 * (SHMC_EP_SLOTS, SHMC_CONN_SLOTS and the other bounds: bounds.h)
 */
typedef struct shmc_ep_slot {
    _Atomic uint64_t claim;
    _Atomic uint32_t posted;
    uint32_t reserved0;
    _Atomic uint64_t client_pid;
    _Atomic uint64_t client_start;
    char conn_name[64];
    uint8_t reserved1[32];
} shmc_ep_slot;

typedef struct shmc_ep_hdr {
    shmc_region_hdr common;
    _Atomic uint32_t nslots;
    _Atomic uint32_t sleepers;
    shmc_plat_wword bell;
    uint8_t reserved[64];
    shmc_ep_slot slots[SHMC_EP_SLOTS];
} shmc_ep_hdr;

_Static_assert(sizeof(shmc_ep_slot) == 128, "endpoint slot layout");
_Static_assert(offsetof(shmc_ep_hdr, nslots) == 48, "endpoint layout");
_Static_assert(offsetof(shmc_ep_hdr, bell) == 56, "endpoint layout");
_Static_assert(offsetof(shmc_ep_hdr, slots) == 128, "endpoint layout");

/* ---- the connection region --------------------------------------------------
 *
 *   offset size
 *        0   48  common region header (kind CONN, owner = the client)
 *       48    4  sleepers     receivers asleep on server_bell   \ the server's
 *       52    4  looking      receivers awake and about to look  / counts (a
 *                             for a request; the client wakes    | mirror: it
 *                             one only if none looks             / never reads them)
 *       56    4  state        NEW -> ACCEPTED (server) -> CLOSED (either)
 *       64    8  server_bell  wait word: the client bumps it to wake a receiver
 *       72    8  accept       wait word: the server bumps it on accepting
 *       80    8  server_pid   \ written by the server when it accepts
 *       88    8  server_start /
 *       96    4  nslots       16
 *      100    4  area         bytes of each slot's request and reply areas
 *     4096       slots, each SHMC_SLOT_STRIDE bytes:
 *                slot header (256), pad to 4096, request area, reply area,
 *                256 bytes of padding
 *
 * The padding puts the slots' headers 256 bytes apart within their pages
 * (slot i's at page offset 256 * i): a receiver looks at every slot's
 * first line, and lines at one page offset share a set of a CPU's first
 * cache, which holds a dozen of them.
 */
#define SHMC_SLOT_AREA   ((1u << 20) + 4096u)
#define SHMC_SLOT_HDR    4096u
#define SHMC_SLOT_STRIDE (SHMC_SLOT_HDR + 2u * SHMC_SLOT_AREA + 256u)
#define SHMC_CONN_SIZE   ((size_t)SHMC_SLOT_HDR + (size_t)SHMC_CONN_SLOTS * SHMC_SLOT_STRIDE)

enum { SHMC_CONN_NEW = 0, SHMC_CONN_ACCEPTED = 1, SHMC_CONN_CLOSED = 2 };

typedef struct shmc_conn_hdr {
    shmc_region_hdr common;
    _Atomic uint32_t sleepers;
    _Atomic uint32_t looking;
    _Atomic uint32_t state;
    uint32_t reserved0;
    shmc_plat_wword server_bell;
    shmc_plat_wword accept;
    _Atomic uint64_t server_pid;
    _Atomic uint64_t server_start;
    _Atomic uint32_t nslots;
    _Atomic uint32_t area;
} shmc_conn_hdr;

_Static_assert(offsetof(shmc_conn_hdr, sleepers) == 48, "connection layout");
_Static_assert(offsetof(shmc_conn_hdr, state) == 56, "connection layout");
_Static_assert(offsetof(shmc_conn_hdr, nslots) == 96, "connection layout");
_Static_assert(offsetof(shmc_conn_hdr, server_bell) == 64, "connection layout");
_Static_assert(offsetof(shmc_conn_hdr, accept) == 72, "connection layout");
_Static_assert(offsetof(shmc_conn_hdr, server_start) == 88, "connection layout");
_Static_assert(sizeof(shmc_conn_hdr) <= SHMC_SLOT_HDR, "connection layout");

/*
 * Slot header (at the start of each slot, 256 bytes). Everything a small
 * call needs is in its first cache line, so that a null call moves one
 * line each way, as a spin ping-pong does; and each side writes that line
 * once per call, in one burst (the client its request, the server its
 * reply): the other side spins on it, and every write into it costs a
 * transfer of the line. So the server does not mark a request it takes
 * (the state stays REQUEST until REPLY; it notes `taken` in the second
 * line instead), and the client does not mark the slot FREE after reading
 * a reply (REPLY is idle to the server too; the next request overwrites
 * it).
 *     0  4 state     FREE or REPLY (idle) -> REQUEST (client) -> REPLY
 *                    (server); REQUEST -> ABANDONED_EARLY (client, call
 *                    timeout) -> FREE (server, when it has dropped the
 *                    request, or the reply of a call it ran meanwhile).
 *                    RUNNING and ABANDONED are not written by this
 *                    version; a server that sets RUNNING (an older or
 *                    hostile one) is waited for, and given up on as
 *                    RUNNING -> ABANDONED
 *     4  4 flags     SHMC_SLOT_BULK_REQ, _REP_HELD    client, before REQUEST
 *     8  8 (reserved)
 *    16  4 kind      SHMC_OP_*                        client
 *    20  4 method    vtable slot (METHOD)             client
 *    24  4 req_len   bytes of the request frame       client
 *    28  4 rep_len   bytes of the reply frame         server, before REPLY
 *    32 16 ipid      the target interface (METHOD)    client
 *    48  4 status    the transport's HRESULT          server
 *    52  4 rep_flags SHMC_SLOT_BULK_REP, _REQ_KEPT,   server
 *                    _REP_INLINE
 *    56  8 inline    a reply of at most 8 bytes        server
 *    64 48 req_bulk  bulk region of the request       client
 *   128 48 rep_bulk  bulk region of the reply         server
 *   192  8 wake      wait word the client sleeps on for the reply: the
 *                    server bumps it after each REPLY, the client reads it
 *                    only when it goes to sleep
 *   200  4 taken     server: 1 while a receiver serves the request (a
 *                    client that goes to sleep wakes a receiver only for a
 *                    request nobody took); advisory
 * wake and taken, which the server writes on every call and the client
 * reads only when it sleeps, are not in the 128 bytes of the first line:
 * a CPU that reads a line may fetch the other line of its 128-byte pair
 * with it, and a write into a line the other side holds waits for it to
 * let go.
 */
enum {
    SHMC_SLOT_FREE = 0,
    SHMC_SLOT_REQUEST,
    SHMC_SLOT_RUNNING, /* not written by this version (see above) */
    SHMC_SLOT_REPLY,
    SHMC_SLOT_ABANDONED,       /* given up while RUNNING (not written by this version) */
    SHMC_SLOT_ABANDONED_EARLY, /* given up: the server drops the request's
                                  records, or the reply if it ran the call */
};

/*
 * Bulk regions are kept per slot for the next large frame (up to
 * SHMC_BULK_KEEP_MAX bytes of region), so that a stream of large calls
 * does not make, fault in and free a region each time:
 *  - a request region the server has mapped is reused by the client only
 *    if the server said so in its reply (SHMC_SLOT_BULK_REQ_KEPT);
 *  - a reply region is reused by the server only if the client says in
 *    the next request that it still has it mapped (SHMC_SLOT_REP_HELD).
 * Names are removed by the side that opens a region; a region that was
 * never opened is removed by its maker when it lets it go, or when the
 * peer says it keeps (holds) it: a peer that says so without having
 * opened it cannot make the name outlive the maker.
 */
enum {
    SHMC_SLOT_BULK_REQ = 1,      /* flags: the request is in req_bulk */
    SHMC_SLOT_REP_HELD = 2,      /* flags: the client still maps the last reply region */
    SHMC_SLOT_BULK_REP = 1,      /* rep_flags: the reply is in rep_bulk */
    SHMC_SLOT_BULK_REQ_KEPT = 2, /* rep_flags: the server keeps the request region */
    SHMC_SLOT_REP_INLINE = 4,    /* rep_flags: the reply is in inline_rep */
    /* rep_flags: the receiver that replied here will look for the next
     * request before it sleeps (it clears this first): a client that posts
     * in this slot and sees it needs no wake-up and no look at the
     * connection header, so a hot call touches only this line */
    SHMC_SLOT_LOOKING = 8,
};
#define SHMC_BULK_KEEP_MAX (SHMC_BULK_KEEP_MAX_DATA + SHMC_BULK_DATA)

typedef struct shmc_slot_hdr {
    _Atomic uint32_t state;
    _Atomic uint32_t flags;
    /* the CPU each side ran on at its last hand-off (rt.h, shmc_cpu_shared;
     * what the peer writes here only decides whether we spin) */
    _Atomic int32_t client_cpu, server_cpu;
    _Atomic uint32_t kind;
    _Atomic uint32_t method;
    _Atomic uint32_t req_len;
    _Atomic uint32_t rep_len;
    uint8_t ipid[16];
    _Atomic int32_t status;
    _Atomic uint32_t rep_flags;
    unsigned char inline_rep[8];
    char req_bulk[SHMC_XNAME_MAX];
    uint8_t reserved1[16];
    char rep_bulk[SHMC_XNAME_MAX];
    uint8_t reserved2[16];
    shmc_plat_wword wake;
    _Atomic uint32_t taken;
} shmc_slot_hdr;

/* A reply this small travels in the slot header's first line. */
#define SHMC_SLOT_INLINE_MAX 8u

_Static_assert(offsetof(shmc_slot_hdr, wake) == 192, "slot layout");
_Static_assert(offsetof(shmc_slot_hdr, taken) == 200, "slot layout");
_Static_assert(offsetof(shmc_slot_hdr, ipid) == 32, "slot layout");
_Static_assert(offsetof(shmc_slot_hdr, inline_rep) == 56, "slot layout");
_Static_assert(offsetof(shmc_slot_hdr, req_bulk) == 64, "slot layout");
_Static_assert(offsetof(shmc_slot_hdr, rep_bulk) == 128, "slot layout");
_Static_assert(sizeof(shmc_slot_hdr) <= 256, "slot layout");

/* The bulk region: the common header, then the frame at SHMC_BULK_DATA. */
#define SHMC_BULK_DATA 4096u

/* ---- runtime operations (slot kind) -------------------------------------- */

enum {
    SHMC_OP_METHOD = 1,
    SHMC_OP_CONSUME,        /* in: shmc_op_record; out: - */
    SHMC_OP_RELEASE_RECORD, /* in: shmc_op_record; out: - */
    SHMC_OP_ADD_RECORD,     /* in: shmc_op_ref (flags); out: nonce (8 bytes) */
    SHMC_OP_QI,             /* in: shmc_op_ref (iid); out: ipid (16 bytes) */
    SHMC_OP_RELEASE,        /* in: shmc_op_ref (count); out: - */
};

/* A record, as CONSUME and RELEASE_RECORD send it. */
typedef struct shmc_op_record {
    uint64_t oxid, oid, nonce;
    uint8_t ipid[16];
    GUID iid;
    uint32_t mshlflags;
    uint32_t reserved;
} shmc_op_record;

/* An interface reference the connection holds, and an argument. */
typedef struct shmc_op_ref {
    uint8_t ipid[16];
    GUID iid;           /* QI: the interface asked for */
    uint32_t count;     /* RELEASE: references given back */
    uint32_t mshlflags; /* ADD_RECORD */
} shmc_op_ref;

_Static_assert(sizeof(shmc_op_record) == 64, "operation layout");

/* The operation that names record rec (CONSUME, RELEASE_RECORD). */
void shmc_op_record_from(shmc_op_record *op, const shmc_objref *rec);
_Static_assert(sizeof(shmc_op_ref) == 40, "operation layout");

/* ---- connections (private memory) ------------------------------------------ */

typedef struct shmc_conn shmc_conn;

/* The process's endpoint name, creating the endpoint (and its listener)
 * on first use. */
HRESULT shmc_xport_endpoint(char name[SHMC_XNAME_MAX]);

/* The connection to the process that owns `endpoint` (identity `peer`):
 * the cached one, or a new one (connecting may take a round trip). With a
 * reference. RPC_E_SERVER_DIED if that process is gone;
 * CO_E_OBJNOTCONNECTED if its endpoint does not exist. */
HRESULT shmc_conn_get(const char *endpoint, const shmc_plat_procid *peer, shmc_conn **out);
void shmc_conn_addref(shmc_conn *c);
void shmc_conn_release(shmc_conn *c);
bool shmc_conn_dead(const shmc_conn *c);
const char *shmc_conn_endpoint(const shmc_conn *c);
const shmc_plat_procid *shmc_conn_peer(const shmc_conn *c);

/* A runtime operation through the connection, waiting for the answer:
 * in/in_len is the payload, out/out_len (may be NULL/0) receives the
 * answer's payload. Returns the transport's result, or the owner's. */
HRESULT shmc_conn_op(shmc_conn *c, uint32_t op, const void *in, uint32_t in_len, void *out,
                     uint32_t out_len);

/* The channel of a proxy manager whose object is in another process. */
extern const ShmProxyChannelVtbl shmc_remote_channel_vtbl;

/* The marshaler for interface pointers in cross-process frames: records
 * with MSHCTX_LOCAL. */
extern ShmItfMarshaler shmc_local_marshaler;

/* Server side: the interface stub an IPID names, if this connection holds
 * a reference on it (with a struct reference), else NULL. */
shmc_ifstub *shmc_conn_lookup_ipid(shmc_conn *c, const uint8_t ipid[16]);

/* Server side, under rt.lock: credits n strong references on ifs to the
 * connection (they are released when the connection closes). */
HRESULT shmc_conn_credit_locked(shmc_conn *c, shmc_ifstub *ifs, uint32_t n);
/* Server side, under rt.lock: takes n references back from the
 * connection; collects the stub manager to destroy if that was the last. */
HRESULT shmc_conn_debit_locked(shmc_conn *c, const uint8_t ipid[16], uint32_t n,
                               shmc_stubmgr **destroy);

/* The global IPID table (under rt.lock). */
HRESULT shmc_ipid_add_locked(shmc_ifstub *ifs);
void shmc_ipid_del_locked(shmc_ifstub *ifs);
shmc_ifstub *shmc_ipid_find_locked(const uint8_t ipid[16]);

/* Remote records (marshal.c). */
HRESULT shmc_remote_unmarshal(const shmc_objref *rec, shmc_apt *apt, REFIID riid, void **ppv);
HRESULT shmc_remote_release_record(const shmc_objref *rec);

/* What a runtime operation gave the client that only its answer tells
 * it of: a reference credited to the connection (QI, CONSUME), a record
 * made for it (ADD_RECORD). */
typedef struct shmc_op_done {
    bool credited, made;
    uint8_t ipid[16]; /* credited: the interface */
    uint64_t nonce;   /* made: the record's */
} shmc_op_done;

/* Server side: a runtime operation from a connection, in the receiver
 * thread (remote.c). Writes at most out_cap bytes of answer, and what it
 * gave in *done. */
HRESULT shmc_remote_serve_op(shmc_conn *c, uint32_t op, const void *in, uint32_t in_len, void *out,
                             uint32_t out_cap, uint32_t *out_len, shmc_op_done *done);
/* Server side: takes back what an operation gave (*done) when its client
 * gave up before the answer: nobody will ever name that reference or
 * record, which would otherwise stay until the connection closes. */
void shmc_remote_undo_op(shmc_conn *c, const shmc_op_done *done);

#endif /* SHMCOM_RUNTIME_XPORT_H */
