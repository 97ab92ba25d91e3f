/*
 * endpoint.c - a process's endpoint: the region other processes find it
 * by (its name travels in every MSHCTX_LOCAL record), the listener thread
 * that accepts their connections, and the client side of connecting.
 *
 * See xport.h for the layout and docs/transport.md for the protocol. The
 * endpoint is created at the first LOCAL marshal and lives until the
 * process exits; its name is removed then (atexit), or, after a crash, by
 * the next run's reclaim of regions whose owner is dead.
 */
#include "alloc.h"
#include "conn.h"
#include "csprng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connect slot claimed and not posted for this long is freed, whoever
 * claimed it (a client posts within microseconds of its claim; a process
 * that wrote a claim and never posted must not keep the slot for ever). */
#define STALE_CLAIM_MS 3000u

static struct {
    shmc_plat_mutex lock; /* creation */
    HRESULT hr;           /* S_OK once made; the error otherwise */
    bool made;
    shmc_plat_region region;
    shmc_ep_hdr *hdr;
    shmc_plat_waiter bell;
    shmc_plat_thread listener;
    char name[SHMC_XNAME_MAX];
    /* the listener's: the header as we made it (restored if a peer
     * scribbles on it), and each slot's claim as last seen unposted */
    shmc_region_hdr as_made;
    uint64_t seen_claim[SHMC_EP_SLOTS];
    uint64_t seen_since[SHMC_EP_SLOTS];
} ep;

static shmc_plat_once ep_once = SHMC_PLAT_ONCE_INIT;

static void ep_lock_init(void)
{
    shmc_plat_mutex_init(&ep.lock);
}

HRESULT shmc_xport_random_name(char *out, size_t size, const char *kind)
{
    uint64_t r;
    HRESULT hr = shmc_random(&r, sizeof(r));
    if (FAILED(hr))
        return hr;
    snprintf(out, size, "%s.%llu.%016llx", kind, (unsigned long long)shmc_g.self.pid,
             (unsigned long long)r);
    return S_OK;
}

/* Copies a name from shared memory into private memory, NUL-ended, and
 * checks it. */
HRESULT shmc_xport_copy_name(char out[SHMC_XNAME_MAX], const char *shared, size_t field)
{
    size_t n = field < SHMC_XNAME_MAX ? field : SHMC_XNAME_MAX;
    memcpy(out, shared, n);
    out[SHMC_XNAME_MAX - 1] = '\0';
    if (n < SHMC_XNAME_MAX)
        out[n - 1] = '\0';
    return shmc_plat_region_name_check(out);
}

static void ep_init(void *base, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    shmc_ep_hdr *h = base;
    atomic_store_explicit(&h->nslots, SHMC_EP_SLOTS, memory_order_relaxed);
    shmc_region_hdr_init(&h->common, SHMC_REGION_KIND_ENDPOINT, SHMC_XPORT_VERSION,
                         sizeof(shmc_ep_hdr), &shmc_g.self, shmc_random_u64());
}

/* One posted connect slot, copied and checked: accept it. */
static void take_slot(shmc_ep_slot *s)
{
    uint64_t claim = atomic_load(&s->claim);
    if (!atomic_load_explicit(&s->posted, memory_order_acquire)) {
        /* claimed but never posted: free it if the claimer died */
        shmc_plat_procid id;
        if (claim && FAILED(shmc_plat_proc_query(claim, &id)))
            atomic_compare_exchange_strong(&s->claim, &claim, 0);
        return;
    }
    shmc_plat_procid client;
    client.pid = atomic_load(&s->client_pid);
    client.start_time = atomic_load(&s->client_start);
    char name[SHMC_XNAME_MAX];
    HRESULT hr = shmc_xport_copy_name(name, s->conn_name, sizeof(s->conn_name));
    /* the slot is ours to free now that it is copied */
    atomic_store(&s->posted, 0);
    atomic_store_explicit(&s->claim, 0, memory_order_release);
    if (SUCCEEDED(hr) && client.pid == claim && client.pid != shmc_g.self.pid)
        shmc_conn_accept(name, &client); /* failures: the client times out */
}

/* Any process of this user can write into the endpoint; one that broke
 * its header would make this process unreachable for new clients until it
 * exits. The header is ours and constant: put back what differs. */
#define RESTORE(field)                                                      \
    do {                                                                    \
        if (atomic_load_explicit(&h->common.field, memory_order_relaxed) != \
            atomic_load_explicit(&ep.as_made.field, memory_order_relaxed))  \
            atomic_store(&h->common.field, atomic_load(&ep.as_made.field)); \
    } while (0)

static void restore_header(shmc_ep_hdr *h)
{
    RESTORE(kind);
    RESTORE(version);
    RESTORE(owner_pid);
    RESTORE(owner_start);
    RESTORE(nonce);
    RESTORE(state);
    RESTORE(hdr_size);
    RESTORE(magic);
    if (atomic_load_explicit(&h->nslots, memory_order_relaxed) != SHMC_EP_SLOTS)
        atomic_store(&h->nslots, SHMC_EP_SLOTS);
}

/* Frees slot i if the same claim has stayed unposted for STALE_CLAIM_MS. */
static void check_claim(shmc_ep_slot *s, int i, uint64_t now_ms)
{
    uint64_t claim = atomic_load(&s->claim);
    if (!claim || atomic_load(&s->posted)) {
        ep.seen_claim[i] = 0;
        return;
    }
    if (claim != ep.seen_claim[i]) {
        ep.seen_claim[i] = claim;
        ep.seen_since[i] = now_ms;
    } else if (now_ms - ep.seen_since[i] >= STALE_CLAIM_MS) {
        atomic_compare_exchange_strong(&s->claim, &claim, 0);
        ep.seen_claim[i] = 0;
    }
}

static void listener_main(void *arg)
{
    (void)arg;
    shmc_ep_hdr *h = ep.hdr;
    for (;;) {
        uint32_t seq = atomic_load(&h->bell.value);
        restore_header(h);
        uint64_t now_ms = shmc_plat_clock_ns() / 1000000u;
        for (int i = 0; i < SHMC_EP_SLOTS; i++) {
            if (atomic_load_explicit(&h->slots[i].claim, memory_order_relaxed))
                take_slot(&h->slots[i]);
            check_claim(&h->slots[i], i, now_ms);
        }
        /* sleep until a client posts (it bumps the bell when we sleep);
         * wake now and then to free slots of clients that died mid-claim */
        atomic_fetch_add(&h->sleepers, 1);
        bool work = false;
        for (int i = 0; i < SHMC_EP_SLOTS && !work; i++)
            work = atomic_load(&h->slots[i].posted) != 0;
        if (!work)
            shmc_plat_wait(&ep.bell, seq, 1000);
        atomic_fetch_sub(&h->sleepers, 1);
    }
}

static void ep_at_exit(void)
{
    /* the name goes with the process; mappings others hold stay valid */
    if (ep.made)
        shmc_plat_region_unlink(ep.name);
}

HRESULT shmc_xport_endpoint(char name[SHMC_XNAME_MAX])
{
    shmc_plat_once_run(&ep_once, ep_lock_init);
    shmc_plat_mutex_lock(&ep.lock);
    if (!ep.made) {
        /* a crashed earlier run may have left names behind */
        shmc_reclaim_maybe();
        HRESULT hr = shmc_xport_random_name(ep.name, sizeof(ep.name), "ep");
        if (SUCCEEDED(hr))
            hr = shmc_plat_region_create_init(&ep.region, ep.name, sizeof(shmc_ep_hdr), ep_init,
                                              NULL);
        if (SUCCEEDED(hr)) {
            ep.hdr = ep.region.base;
            memcpy(&ep.as_made, &ep.hdr->common, sizeof(ep.as_made)); /* nobody else has it yet */
            hr = shmc_plat_waiter_open(&ep.bell, &ep.region, offsetof(shmc_ep_hdr, bell));
            if (SUCCEEDED(hr))
                hr = shmc_plat_thread_create(&ep.listener, listener_main, NULL);
            if (FAILED(hr)) {
                shmc_plat_waiter_close(&ep.bell);
                shmc_plat_region_close(&ep.region);
                shmc_plat_region_unlink(ep.name);
            }
        }
        if (FAILED(hr)) {
            shmc_plat_mutex_unlock(&ep.lock);
            name[0] = '\0';
            return hr;
        }
        ep.made = true;
        atexit(ep_at_exit);
    }
    memcpy(name, ep.name, SHMC_XNAME_MAX);
    shmc_plat_mutex_unlock(&ep.lock);
    return S_OK;
}

/* ---- the client side of connecting ------------------------------------------- */

HRESULT shmc_xport_post_connect(const char *endpoint, const shmc_plat_procid *server,
                                const char *conn_name)
{
    shmc_plat_region r;
    HRESULT hr = shmc_plat_region_open(&r, endpoint);
    if (hr == SHM_E_NAME_NOT_FOUND)
        return CO_E_OBJNOTCONNECTED;
    if (FAILED(hr))
        return hr;
    shmc_region_info info;
    shmc_ep_hdr *h = r.base;
    hr = shmc_region_hdr_read(&h->common, r.size, &info);
    if (SUCCEEDED(hr) &&
        (info.kind != SHMC_REGION_KIND_ENDPOINT || info.version != SHMC_XPORT_VERSION ||
         r.size < sizeof(shmc_ep_hdr) || info.owner.pid != server->pid ||
         info.owner.start_time != server->start_time))
        hr = CO_E_OBJNOTCONNECTED; /* not the process the record names */
    if (FAILED(hr)) {
        shmc_plat_region_close(&r);
        return hr == SHM_E_NAME_NOT_FOUND ? CO_E_OBJNOTCONNECTED : hr;
    }
    shmc_plat_waiter bell;
    hr = shmc_plat_waiter_open(&bell, &r, offsetof(shmc_ep_hdr, bell));
    if (FAILED(hr)) {
        shmc_plat_region_close(&r);
        return hr;
    }
    /* claim a free slot; a full table waits a little for the listener */
    uint64_t deadline = shmc_plat_clock_ns() + (uint64_t)SHMC_ACCEPT_TIMEOUT_MS * 1000000u;
    shmc_ep_slot *s = NULL;
    while (!s) {
        for (int i = 0; i < SHMC_EP_SLOTS && !s; i++) {
            uint64_t zero = 0;
            if (atomic_compare_exchange_strong(&h->slots[i].claim, &zero, shmc_g.self.pid))
                s = &h->slots[i];
        }
        if (!s) {
            if (shmc_plat_clock_ns() > deadline) {
                hr = RPC_E_SERVER_DIED; /* nobody takes connections there */
                break;
            }
            shmc_plat_sleep_ms(1);
        }
    }
    if (s) {
        atomic_store(&s->client_pid, shmc_g.self.pid);
        atomic_store(&s->client_start, shmc_g.self.start_time);
        memset(s->conn_name, 0, sizeof(s->conn_name));
        memcpy(s->conn_name, conn_name, strlen(conn_name));
        atomic_store_explicit(&s->posted, 1, memory_order_release);
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load(&h->sleepers)) {
            atomic_fetch_add(&h->bell.value, 1);
            shmc_plat_wake(&bell, false);
        }
    }
    shmc_plat_waiter_close(&bell);
    shmc_plat_region_close(&r);
    return hr;
}
