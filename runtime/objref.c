/*
 * objref.c - encoding and validating marshaled interface records (see
 * objref.h for the layout). Decoding works on a private copy of the bytes,
 * field by field, so it is the same whether the record came from a heap
 * stream or from memory another process can write.
 */
#include "objref.h"

#include <string.h>

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put_guid(unsigned char *p, const GUID *g)
{
    put32(p, (uint32_t)g->Data1);
    put16(p + 4, g->Data2);
    put16(p + 6, g->Data3);
    memcpy(p + 8, g->Data4, 8);
}

static void get_guid(const unsigned char *p, GUID *g)
{
    g->Data1 = get32(p);
    g->Data2 = get16(p + 4);
    g->Data3 = get16(p + 6);
    memcpy(g->Data4, p + 8, 8);
}

uint32_t shmc_objref_size(const shmc_objref *r)
{
    return r->endpoint_len ? SHMC_OBJREF_MAX_SIZE : SHMC_OBJREF_BASE_SIZE;
}

void shmc_objref_encode(const shmc_objref *r, unsigned char *b)
{
    uint32_t size = shmc_objref_size(r);
    memset(b, 0, size);
    put32(b, SHMC_OBJREF_SIGNATURE);
    put16(b + 4, SHMC_OBJREF_VERSION);
    put16(b + 6, (uint16_t)size);
    put32(b + 8, r->mshlflags);
    put32(b + 12, r->mshctx);
    put_guid(b + 16, &r->iid);
    put64(b + 32, r->pid);
    put64(b + 40, r->start_time);
    put64(b + 48, r->oxid);
    put64(b + 56, r->oid);
    memcpy(b + 64, r->ipid, 16);
    put64(b + 80, r->nonce);
    put32(b + 88, r->endpoint_len);
    if (r->endpoint_len)
        memcpy(b + 96, r->endpoint, r->endpoint_len);
}

HRESULT shmc_objref_decode_head(const unsigned char *b, shmc_objref *r, uint32_t *total)
{
    memset(r, 0, sizeof(*r));
    *total = 0;
    if (get32(b) != SHMC_OBJREF_SIGNATURE || get16(b + 4) != SHMC_OBJREF_VERSION)
        return RPC_E_INVALID_OBJREF;
    uint32_t size = get16(b + 6);
    r->mshlflags = get32(b + 8);
    r->mshctx = get32(b + 12);
    get_guid(b + 16, &r->iid);
    r->pid = get64(b + 32);
    r->start_time = get64(b + 40);
    r->oxid = get64(b + 48);
    r->oid = get64(b + 56);
    memcpy(r->ipid, b + 64, 16);
    r->nonce = get64(b + 80);
    r->endpoint_len = get32(b + 88);
    uint32_t flags = r->mshlflags & ~(uint32_t)MSHLFLAGS_NOPING;
    if (flags != MSHLFLAGS_NORMAL && flags != MSHLFLAGS_TABLESTRONG && flags != MSHLFLAGS_TABLEWEAK)
        return RPC_E_INVALID_OBJREF;
    if (r->mshctx != MSHCTX_INPROC && r->mshctx != MSHCTX_LOCAL)
        return RPC_E_INVALID_OBJREF;
    if (r->endpoint_len > SHMC_OBJREF_ENDPOINT_MAX || get32(b + 92) != 0)
        return RPC_E_INVALID_OBJREF;
    uint32_t want = r->endpoint_len ? SHMC_OBJREF_MAX_SIZE : SHMC_OBJREF_BASE_SIZE;
    if (size != want || !r->oxid || !r->oid || !r->nonce)
        return RPC_E_INVALID_OBJREF;
    *total = size;
    return S_OK;
}

HRESULT shmc_objref_decode_tail(const unsigned char *tail, uint32_t len, shmc_objref *r)
{
    if (len != SHMC_OBJREF_MAX_SIZE - SHMC_OBJREF_BASE_SIZE)
        return RPC_E_INVALID_OBJREF;
    memcpy(r->endpoint, tail, r->endpoint_len);
    /* the rest of the endpoint field must be zero: one encoding per record */
    for (uint32_t i = r->endpoint_len; i < len; i++) {
        if (tail[i])
            return RPC_E_INVALID_OBJREF;
    }
    return S_OK;
}

HRESULT shmc_objref_decode(const void *buf, uint32_t len, shmc_objref *r)
{
    unsigned char copy[SHMC_OBJREF_MAX_SIZE];
    uint32_t total;
    memset(r, 0, sizeof(*r));
    if (!buf || len < SHMC_OBJREF_BASE_SIZE)
        return RPC_E_INVALID_OBJREF;
    /* one copy: the bytes may be in memory another process can write */
    memcpy(copy, buf, len < sizeof(copy) ? len : sizeof(copy));
    HRESULT hr = shmc_objref_decode_head(copy, r, &total);
    if (FAILED(hr))
        return hr;
    if (total != len)
        return RPC_E_INVALID_OBJREF;
    if (total > SHMC_OBJREF_BASE_SIZE)
        return shmc_objref_decode_tail(copy + SHMC_OBJREF_BASE_SIZE, total - SHMC_OBJREF_BASE_SIZE,
                                       r);
    return S_OK;
}
