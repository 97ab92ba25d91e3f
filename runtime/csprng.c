/*
 * csprng.c - unguessable identifiers (IPIDs, object and apartment ids,
 * record nonces) without a system call each time.
 *
 * ChaCha20 in counter mode, keyed once per process from the OS generator
 * (shmc_plat_random). Each thread takes 64-byte blocks at a global atomic
 * block counter and serves requests from its block; the pid is part of the
 * ChaCha nonce, so a forked child that inherited the key still produces a
 * stream of its own. 256-bit key, so an IPID (128 bits) cannot be guessed
 * by a peer that has seen others.
 */
#include "csprng.h"

#include "platform.h"

#include <string.h>

static uint32_t key[8];
static HRESULT key_hr = E_UNEXPECTED;
static _Atomic uint64_t block_counter;
static shmc_plat_once key_once = SHMC_PLAT_ONCE_INIT;

static void load_key(void)
{
    key_hr = shmc_plat_random(key, sizeof(key));
}

static inline uint32_t rotl(uint32_t v, int n)
{
    return (v << n) | (v >> (32 - n));
}

#define QR(a, b, c, d)       \
    do {                     \
        a += b;              \
        d = rotl(d ^ a, 16); \
        c += d;              \
        b = rotl(b ^ c, 12); \
        a += b;              \
        d = rotl(d ^ a, 8);  \
        c += d;              \
        b = rotl(b ^ c, 7);  \
    } while (0)

static void chacha20_block(uint32_t out[16], uint64_t counter, uint64_t nonce)
{
    static const uint32_t sigma[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    uint32_t s[16], x[16];
    memcpy(s, sigma, sizeof(sigma));
    memcpy(s + 4, key, sizeof(key));
    s[12] = (uint32_t)counter;
    s[13] = (uint32_t)(counter >> 32);
    s[14] = (uint32_t)nonce;
    s[15] = (uint32_t)(nonce >> 32);
    memcpy(x, s, sizeof(x));
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + s[i];
}

typedef struct rng_tls {
    uint32_t block[16];
    unsigned used; /* bytes of block already handed out */
    uint64_t pid;
} rng_tls;

static SHMC_THREAD_LOCAL rng_tls tls_rng = {{0}, 64, 0};

HRESULT shmc_random(void *out, size_t n)
{
    shmc_plat_once_run(&key_once, load_key);
    if (FAILED(key_hr))
        return key_hr;
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    rng_tls *t = &tls_rng;
    if (t->pid != self.pid) { /* new thread, or a fork() child */
        t->pid = self.pid;
        t->used = 64;
    }
    unsigned char *p = out;
    while (n > 0) {
        if (t->used == 64) {
            uint64_t c = atomic_fetch_add_explicit(&block_counter, 1, memory_order_relaxed);
            chacha20_block(t->block, c, self.pid);
            t->used = 0;
        }
        size_t take = 64 - t->used;
        if (take > n)
            take = n;
        memcpy(p, (unsigned char *)t->block + t->used, take);
        /* erase what was handed out, so a later leak of this thread's
         * memory does not reveal identifiers already given away */
        memset((unsigned char *)t->block + t->used, 0, take);
        t->used += (unsigned)take;
        p += take;
        n -= take;
    }
    return S_OK;
}

uint64_t shmc_random_u64(void)
{
    uint64_t v = 0;
    while (v == 0) {
        if (FAILED(shmc_random(&v, sizeof(v))))
            return 0;
    }
    return v;
}
