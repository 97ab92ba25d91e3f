/*
 * fuzz_rt.h - what the runtime fuzzers (fuzz_objref, fuzz_xport) share: a
 * runtime with two exported objects behind records whose ids are real, and
 * tokens through which an input names those ids.
 *
 * The objects: one in the MTA (the fuzzer's own thread is in the MTA) and
 * one in an STA of its own thread. Each implements ICallee and ICallback
 * of tests/calls/calltest.idl, bounded (no method sleeps), and counts its
 * references. Records (shmc_objref) of both are kept for the whole run
 * (TABLESTRONG for IUnknown, ICallee and ICallback, TABLEWEAK for ICallee)
 * and made afresh for every input (NORMAL, ICallee): fz_begin/fz_end.
 *
 * An input may release (revoke) the records it names; fz_begin makes them
 * again, and an anchor record no token names keeps each object exported.
 *
 * Tokens: an input names an id by an 8-byte token, replaced before use by
 * the id's 8 bytes (little-endian), anywhere in the bytes (fz_patch):
 *   "FZpid___" "FZstart_"  this process's identity
 *   "FZPpid__" "FZPstart"  the peer the transport fuzzer plays (FZ_PEER)
 *   "FZoxid#N" "FZoid_#N" "FZnonc#N" "FZipdL#N" "FZipdH#N"
 *                          record N (the digit '0'..'9', FZ_REC_*): its
 *                          apartment, object, nonce, IPID (low, high half)
 *   "FZlast0_" "FZlast8_"  bytes 0-7 and 8-15 of the last reply (fuzz_xport)
 * tests/fuzz/fuzz.dict lists them for libFuzzer.
 *
 * The oracle (fz_end): after every input, each object has exactly the
 * references it had before it, and no child object (GetChild) is alive.
 */
#ifndef SHMCOM_FUZZ_RT_H
#define SHMCOM_FUZZ_RT_H

#include "calltest.h"
#include "conn.h"
#include "inproc.h"
#include "rt.h"

#include <stddef.h>
#include <stdint.h>

enum {
    FZ_OBJ_MTA = 0,
    FZ_OBJ_STA = 1,
};

/* Records of object o (FZ_OBJ_*): record number o * 5 + FZ_REC_*. */
enum {
    FZ_REC_UNKNOWN = 0, /* TABLESTRONG, IUnknown */
    FZ_REC_CALLEE,      /* TABLESTRONG, ICallee */
    FZ_REC_CALLBACK,    /* TABLESTRONG, ICallback */
    FZ_REC_WEAK,        /* TABLEWEAK, ICallee */
    FZ_REC_NORMAL,      /* NORMAL, ICallee: a new one for every input */
    FZ_REC_PER_OBJ,
    FZ_NRECS = 2 * FZ_REC_PER_OBJ,
};

/* The records (valid between fz_begin and fz_end for the NORMAL ones). */
extern shmc_objref fz_rec[FZ_NRECS];

/* The identity of the peer process the transport fuzzer plays: this
 * process's pid with another start time (so its records are not ours). */
extern shmc_plat_procid fz_peer;
/* The last reply's first 16 bytes (fuzz_xport sets them). */
extern unsigned char fz_last_reply[16];

/*
 * The peer: a thread that plays the process fz_peer, reachable as the
 * endpoint FZ_PEER_ENDPOINT through a client connection in private memory
 * (fz_client, shmc_conn_new_detached). A record naming fz_peer (tokens
 * "FZPpid__" "FZPstart", that endpoint) unmarshals through it. The peer
 * answers every request posted in the connection's slots: from the script
 * that fz_peer_script gave while it lasts, then as an honest server would
 * (S_OK and the payload an operation expects; a method gets an empty
 * reply). Script entries (each field little-endian):
 *   ctl     bits 0-1: where the reply goes: the slot's reply area, inline
 *           in the slot header, a bulk region, or the honest answer (no
 *           more fields); bit 2: rep_len given (else the data's length);
 *           bit 3: rep_flags given (else what `where` needs); bit 4
 *           (FZ_HOLD): answer only once the client gave up
 *   status  4 bytes; [rep_len 4 bytes]; [rep_flags 4 bytes]
 *   len     2 bytes, then that many bytes of reply
 * When every operation of an input got the honest answer in time, fz_end
 * also checks that the client gave back every reference the peer credited
 * it (CONSUME, QI) and no more.
 */
#define FZ_PEER_ENDPOINT "fzpeer"
/* Script entry ctl bit 4: the peer holds the request (RUNNING) until the
 * client gives up on it (its call timeout), then answers anyway, late;
 * only while fz_peer_may_hold (the client has a call timeout). */
#define FZ_HOLD 0x10
extern _Atomic bool fz_peer_may_hold;
extern shmc_conn *fz_client;
void fz_peer_script(const uint8_t *p, size_t n);
/* Poisons (or unpoisons) the field after the inline reply in every slot
 * of fz_client, so that reading an inline reply past its 8 bytes is seen;
 * only while the client sends no request in a bulk region (which names
 * its region there). */
void fz_poison_req_bulk(bool poison);
/* Tells the peer it credited the client one reference on ipid (a proxy
 * made without asking it: shmc_proxymgr_connect_remote). */
void fz_peer_credit(const uint8_t ipid[16]);

/* If set, the next method call of one of the objects, on whatever thread,
 * first gives up on this slot as a client whose call timed out would
 * (RUNNING -> ABANDONED), so the server finishes a call nobody waits for. */
extern _Atomic(_Atomic uint32_t *) fz_abandon_in_call;

/* SHMC_CONN_SIZE bytes of zeroed private memory for a connection (never
 * freed), followed by an inaccessible page. */
unsigned char *fz_conn_memory(void);

/* Sets everything up once (aborts on failure); the calling thread joins
 * the MTA. */
void fz_setup(void);

/* Makes this input's NORMAL records. */
void fz_begin(void);
/* Releases them, then checks the oracle; aborts with a message if it
 * fails. */
void fz_end(void);

/* Replaces every token in buf (see above). */
void fz_patch(unsigned char *buf, size_t len);

/* Runs fn(arg) on the STA object's thread, in its apartment. */
void fz_on_sta(void (*fn)(void *), void *arg);

/* A little-endian reader over the input that yields zeros when it runs
 * out. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

uint8_t fz_u8(fz_in *in);
uint16_t fz_u16(fz_in *in);
uint32_t fz_u32(fz_in *in);
uint64_t fz_u64(fz_in *in);
/* Up to n bytes (fewer if the input ends): returns how many. */
size_t fz_bytes(fz_in *in, void *out, size_t n);

#endif /* SHMCOM_FUZZ_RT_H */
