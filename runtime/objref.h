/*
 * objref.h - the marshaled interface record ("objref"): what
 * ShmCoMarshalInterface writes into a stream and ShmCoUnmarshalInterface
 * reads back, and what stands for an interface pointer inside a call frame.
 *
 *   offset size  field
 *        0    4  signature   'SHMR' (0x524D4853)
 *        4    2  version     1
 *        6    2  size        total bytes of this record: 96, or 160 with an
 *                            endpoint (MSHCTX_LOCAL)
 *        8    4  mshlflags   MSHLFLAGS_NORMAL / _TABLESTRONG / _TABLEWEAK
 *       12    4  mshctx      MSHCTX_INPROC / MSHCTX_LOCAL
 *       16   16  iid         the interface marshaled
 *       32    8  pid         the object's process: pid ...
 *       40    8  start_time  ... and start time (survives pid reuse)
 *       48    8  oxid        the object's apartment (random)
 *       56    8  oid         the object (random)
 *       64   16  ipid        the interface stub (128 random bits)
 *       80    8  nonce       this record (random); the object's process keeps
 *                            the nonces of the records it handed out, so a
 *                            NORMAL record is honoured once and a forged or
 *                            replayed one not at all
 *       88    4  endpoint_len  bytes of endpoint (0..64)
 *       92    4  reserved    0
 *       96   64  endpoint    (LOCAL only) how to reach the object's process
 *
 * All fields little-endian. A reader validates signature, version, size,
 * flags, context and lengths before using anything, and reports
 * STG_E_READFAULT for a short stream and RPC_E_INVALID_OBJREF for a
 * malformed record.
 */
#ifndef SHMCOM_RUNTIME_OBJREF_H
#define SHMCOM_RUNTIME_OBJREF_H

#include "shmcom/shmcom.h"

#include <stdint.h>

#define SHMC_OBJREF_SIGNATURE    0x524D4853u
#define SHMC_OBJREF_VERSION      1
#define SHMC_OBJREF_BASE_SIZE    96u
#define SHMC_OBJREF_ENDPOINT_MAX 64u
#define SHMC_OBJREF_MAX_SIZE     (SHMC_OBJREF_BASE_SIZE + SHMC_OBJREF_ENDPOINT_MAX)

typedef struct shmc_objref {
    uint32_t mshlflags;
    uint32_t mshctx;
    IID iid;
    uint64_t pid, start_time;
    uint64_t oxid, oid;
    uint8_t ipid[16];
    uint64_t nonce;
    uint32_t endpoint_len;
    char endpoint[SHMC_OBJREF_ENDPOINT_MAX];
} shmc_objref;

/* Size of the encoded record. */
uint32_t shmc_objref_size(const shmc_objref *r);
/* Encodes into buf (shmc_objref_size(r) bytes). */
void shmc_objref_encode(const shmc_objref *r, unsigned char *buf);
/*
 * Decodes and validates the first 96 bytes of a record; *total receives
 * the record's full size (96 or more), of which the caller must provide
 * the rest to shmc_objref_decode_tail. RPC_E_INVALID_OBJREF if malformed.
 */
HRESULT shmc_objref_decode_head(const unsigned char *buf, shmc_objref *r, uint32_t *total);
HRESULT shmc_objref_decode_tail(const unsigned char *tail, uint32_t len, shmc_objref *r);
/* Both at once from a buffer of len bytes. */
HRESULT shmc_objref_decode(const void *buf, uint32_t len, shmc_objref *r);

#endif /* SHMCOM_RUNTIME_OBJREF_H */
