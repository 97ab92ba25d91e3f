/*
 * conn.c - connections between processes: making one (client) and
 * accepting one (server), calls in slots (the client waits, the server's
 * receiver threads run them), watching the peer process, and closing when
 * it dies. Layouts in xport.h; protocol in docs/transport.md.
 *
 * Trust: the peer can write anything into the connection region at any
 * time. Each side reads a header field once into a local, checks it, and
 * uses only the local; frames are checked by the stub engine; a bad value
 * ends that call with an error, never anything worse.
 */
#include "alloc.h"
#include "conn.h"
#include "csprng.h"
#include "framerel.h"
#include "regionhdr.h"

#include <string.h>

/* How long an idle receiver sleeps at most before it looks at the
 * connection again (a backstop: whoever closes it rings the bell). */
#define RECEIVER_SLEEP_MS 500u
/* How often a watcher looks whether it should stop (the peer's death
 * itself is reported at once). */
#define WATCH_SLICE_MS 200u

static struct {
    shmc_plat_mutex lock;
    shmc_conn *list;        /* every live connection */
    shmc_hmap client_conns; /* peer identity -> our connection to it */
    /* peer identities a thread is connecting to now: the others wait for
     * its connection instead of making their own (a server refuses past
     * SHMC_MAX_CONNS_PER_CLIENT) */
    shmc_hmap connecting;
    shmc_plat_cond connected; /* broadcast when one is done */
} xp;

static shmc_plat_once xp_once = SHMC_PLAT_ONCE_INIT;

static void xp_setup(void)
{
    shmc_plat_mutex_init(&xp.lock);
    shmc_plat_cond_init(&xp.connected);
}

static uint64_t peer_key(const shmc_plat_procid *id)
{
    return shmc_hmap_mix(id->pid * 0x9E3779B97F4A7C15ull ^ id->start_time);
}

/* ---- lifetime ---------------------------------------------------------------- */

static void bulk_drop(shmc_plat_region *r);
static void ring_server(shmc_conn *c);

void shmc_conn_addref(shmc_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void conn_free(shmc_conn *c)
{
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        shmc_plat_waiter_close(&c->slot_wake[i]);
        bulk_drop(&c->bulk_out[i]);
        shmc_plat_region_close(&c->bulk_in[i]);
    }
    shmc_plat_waiter_close(&c->server_bell);
    if (!c->detached)
        shmc_plat_region_close(&c->region);
    shmc_plat_proc_close(&c->watch);
    if (c->acct && atomic_fetch_sub(&c->acct->refs, 1) == 1)
        shmc_free(c->acct);
    shmc_hmap_fini(&c->credits);
    shmc_plat_cond_fini(&c->slot_cond);
    shmc_plat_mutex_fini(&c->slot_lock);
    shmc_free(c);
}

void shmc_conn_release(shmc_conn *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        conn_free(c);
}

bool shmc_conn_dead(const shmc_conn *c)
{
    return atomic_load(&((shmc_conn *)c)->dead);
}

const char *shmc_conn_endpoint(const shmc_conn *c)
{
    return c->peer_endpoint;
}

const shmc_plat_procid *shmc_conn_peer(const shmc_conn *c)
{
    return &c->peer;
}

/* names connections for good (shmc_conn.gen) */
static _Atomic uint64_t conn_gens;
/* connections taken off the list so far (see "kept slots") */
static _Atomic uint32_t conn_deaths;

static shmc_conn *conn_new(bool is_client)
{
    shmc_conn *c = shmc_calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    atomic_init(&c->refs, 1);
    c->is_client = is_client;
    shmc_plat_mutex_init(&c->slot_lock);
    shmc_plat_cond_init(&c->slot_cond);
    atomic_init(&c->free_mask, (1u << SHMC_CONN_SLOTS) - 1);
    c->gen = atomic_fetch_add(&conn_gens, 1) + 1;
    c->reply_marshaler.vtbl = &shmc_reply_marshaler_vtbl;
    return c;
}

/* Opens the waiters of a mapped connection (both sides). */
static HRESULT open_waiters(shmc_conn *c)
{
    HRESULT hr =
        shmc_plat_waiter_open(&c->server_bell, &c->region, offsetof(shmc_conn_hdr, server_bell));
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS && SUCCEEDED(hr); i++) {
        size_t off =
            (size_t)((unsigned char *)shmc_conn_slot(c, i) - (unsigned char *)c->region.base) +
            offsetof(shmc_slot_hdr, wake);
        hr = shmc_plat_waiter_open(&c->slot_wake[i], &c->region, off);
    }
    return hr;
}

/* Wakes whoever waits on a slot's wake word. */
static void wake_slot(shmc_conn *c, uint32_t i)
{
    atomic_fetch_add(&c->slot_wake[i].word->value, 1);
    shmc_plat_wake(&c->slot_wake[i], true);
}

/* ---- the peer dies ------------------------------------------------------------ */

static void drop_credits(shmc_conn *c);

/* The peer is gone (died, or closed): mark the connection dead, wake
 * everything that waits on it, and (server) give back what it held. */
static void conn_peer_gone(shmc_conn *c)
{
    if (atomic_exchange(&c->dead, true))
        return;
    shmc_plat_mutex_lock(&xp.lock);
    for (shmc_conn **pp = &xp.list; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            atomic_fetch_add_explicit(&conn_deaths, 1, memory_order_release);
            break;
        }
    }
    if (c->is_client && shmc_hmap_get(&xp.client_conns, peer_key(&c->peer)) == c)
        shmc_hmap_del(&xp.client_conns, peer_key(&c->peer));
    shmc_plat_mutex_unlock(&xp.lock);
    atomic_store(&c->hdr->state, SHMC_CONN_CLOSED);
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++)
        wake_slot(c, i); /* callers waiting for replies see it dead */
    shmc_plat_mutex_lock(&c->slot_lock);
    shmc_plat_cond_broadcast(&c->slot_cond);
    shmc_plat_mutex_unlock(&c->slot_lock);
    atomic_fetch_add(&c->hdr->server_bell.value, 1); /* receivers stop */
    shmc_plat_wake(&c->server_bell, true);
    if (!c->is_client) {
        shmc_remote_revoke_made(c);
        drop_credits(c);
    }
    shmc_conn_release(c); /* the list's */
}

static void watcher_main(void *arg)
{
    shmc_conn *c = arg;
    while (!atomic_load(&c->closing) && !atomic_load(&c->dead)) {
        if (shmc_plat_proc_wait(&c->watch, WATCH_SLICE_MS) == S_OK) {
            /* a killed peer leaves names behind (its endpoint, bulk
             * regions it made): the survivor removes them, before anyone
             * learns of the death, so nothing is left once they do */
            shmc_reclaim_stale(NULL);
            conn_peer_gone(c);
            break;
        }
    }
    shmc_conn_release(c); /* the watcher's */
}

static HRESULT start_watcher(shmc_conn *c)
{
    HRESULT hr = shmc_plat_proc_open(&c->watch, &c->peer);
    if (FAILED(hr))
        return hr;
    if (c->watch.exited)
        return RPC_E_SERVER_DIED;
    shmc_conn_addref(c);
    shmc_plat_thread t;
    hr = shmc_plat_thread_create(&t, watcher_main, c);
    if (FAILED(hr)) {
        shmc_conn_release(c);
        return hr;
    }
    /* nobody joins it: it ends on its own (peer gone, or closing) and
     * holds its own reference on the connection */
    shmc_plat_thread_detach(&t);
    return S_OK;
}

/* ---- connecting (client) -------------------------------------------------------- */

static void conn_init(void *base, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    shmc_conn_hdr *h = base;
    atomic_store_explicit(&h->nslots, SHMC_CONN_SLOTS, memory_order_relaxed);
    atomic_store_explicit(&h->area, SHMC_SLOT_AREA, memory_order_relaxed);
    shmc_region_hdr_init(&h->common, SHMC_REGION_KIND_CONN, SHMC_XPORT_VERSION,
                         sizeof(shmc_conn_hdr), &shmc_g.self, shmc_random_u64());
}

HRESULT shmc_conn_connect_new(const char *endpoint, const shmc_plat_procid *peer, shmc_conn **out)
{
    char name[SHMC_XNAME_MAX];
    *out = NULL;
    shmc_conn *c = conn_new(true);
    if (!c)
        return E_OUTOFMEMORY;
    c->peer = *peer;
    memcpy(c->peer_endpoint, endpoint, strlen(endpoint) + 1);
    HRESULT hr = shmc_xport_random_name(name, sizeof(name), "cn");
    if (SUCCEEDED(hr))
        hr = shmc_plat_region_create_init(&c->region, name, SHMC_CONN_SIZE, conn_init, NULL);
    if (FAILED(hr)) {
        conn_free(c);
        return hr;
    }
    c->hdr = c->region.base;
    hr = open_waiters(c);
    if (SUCCEEDED(hr))
        hr = shmc_xport_post_connect(endpoint, peer, name);
    /* wait for the server to accept, watching that it stays alive */
    uint64_t deadline = shmc_plat_clock_ns() + (uint64_t)SHMC_ACCEPT_TIMEOUT_MS * 1000000u;
    shmc_plat_waiter accept = {0};
    if (SUCCEEDED(hr))
        hr = shmc_plat_waiter_open(&accept, &c->region, offsetof(shmc_conn_hdr, accept));
    if (SUCCEEDED(hr))
        hr = shmc_plat_proc_open(&c->watch, peer);
    while (SUCCEEDED(hr)) {
        uint32_t seq = atomic_load(&c->hdr->accept.value);
        uint32_t state = atomic_load(&c->hdr->state);
        if (state == SHMC_CONN_ACCEPTED)
            break;
        if (state == SHMC_CONN_CLOSED) {
            hr = RPC_E_SERVERCALL_REJECTED; /* it serves us too often already, or cannot now */
            break;
        }
        if (c->watch.exited || shmc_plat_proc_wait(&c->watch, 0) == S_OK) {
            hr = RPC_E_SERVER_DIED;
            break;
        }
        uint32_t left = shmc_plat_clock_ms_until(deadline);
        if (left == 0) {
            hr = RPC_E_SERVER_DIED; /* it does not answer */
            break;
        }
        shmc_plat_wait(&accept, seq, left < 50 ? left : 50);
    }
    shmc_plat_waiter_close(&accept);
    /* both sides have it mapped, or it failed: the name is not needed */
    shmc_plat_region_unlink(name);
    if (SUCCEEDED(hr) && (atomic_load(&c->hdr->server_pid) != peer->pid ||
                          atomic_load(&c->hdr->server_start) != peer->start_time))
        hr = RPC_E_INVALID_DATA; /* someone else answered */
    shmc_plat_proc_close(&c->watch);
    if (SUCCEEDED(hr)) {
        /* the caller's: once the watcher runs it may find the server gone
         * at once and drop the creation reference */
        shmc_conn_addref(c);
        hr = start_watcher(c);
    }
    if (FAILED(hr)) {
        /* a server that accepted it would serve it (and count it against
         * our 4) until we die: say we let it go, and wake its receivers */
        if (c->hdr && atomic_exchange(&c->hdr->state, SHMC_CONN_CLOSED) == SHMC_CONN_ACCEPTED &&
            c->server_bell.word)
            ring_server(c);
        atomic_store(&c->dead, true);
        conn_free(c); /* (no other thread has it) */
        /* a process that died before we could connect leaves its endpoint
         * name behind (no connection's watcher ever sees it die): ours to
         * remove now, rather than the next periodic reclaim's */
        if (hr == RPC_E_SERVER_DIED)
            shmc_reclaim_name(endpoint);
        return hr;
    }
    *out = c;
    return S_OK;
}

HRESULT shmc_conn_get(const char *endpoint, const shmc_plat_procid *peer, shmc_conn **out)
{
    *out = NULL;
    if (FAILED(shmc_plat_region_name_check(endpoint)))
        return RPC_E_INVALID_OBJREF;
    shmc_plat_once_run(&xp_once, xp_setup);
    uint64_t key = peer_key(peer);
    shmc_conn *c;
    shmc_plat_mutex_lock(&xp.lock);
    for (;;) {
        c = shmc_hmap_get(&xp.client_conns, key);
        if (c && (atomic_load(&c->dead) || c->peer.pid != peer->pid ||
                  c->peer.start_time != peer->start_time))
            c = NULL;
        if (c) {
            shmc_conn_addref(c);
            shmc_plat_mutex_unlock(&xp.lock);
            *out = c;
            return S_OK;
        }
        if (!shmc_hmap_get(&xp.connecting, key))
            break;
        /* another thread connects to it: use its connection (or, if it
         * fails, try in turn) */
        shmc_plat_cond_wait(&xp.connected, &xp.lock, 50);
    }
    /* (if it cannot be marked, connect anyway: a loser is closed below) */
    bool marked = SUCCEEDED(shmc_hmap_put(&xp.connecting, key, (void *)peer));
    shmc_plat_mutex_unlock(&xp.lock);

    HRESULT hr = shmc_conn_connect_new(endpoint, peer, &c);
    shmc_plat_mutex_lock(&xp.lock);
    if (marked) {
        shmc_hmap_del(&xp.connecting, key);
        shmc_plat_cond_broadcast(&xp.connected);
    }
    if (FAILED(hr)) {
        shmc_plat_mutex_unlock(&xp.lock);
        return hr;
    }
    shmc_conn *other = shmc_hmap_get(&xp.client_conns, peer_key(peer));
    if (other && !atomic_load(&other->dead)) {
        /* another thread connected meanwhile: use that one */
        shmc_conn_addref(other);
        shmc_plat_mutex_unlock(&xp.lock);
        atomic_store(&c->closing, true);
        conn_peer_gone(c);
        shmc_conn_release(c); /* ours */
        *out = other;
        return S_OK;
    }
    if (atomic_load(&c->dead)) {
        /* the watcher found the server gone already (and dropped the
         * creation reference): not listed */
        shmc_plat_mutex_unlock(&xp.lock);
        shmc_conn_release(c);
        return RPC_E_SERVER_DIED;
    }
    if (FAILED(shmc_hmap_put(&xp.client_conns, peer_key(peer), c))) {
        shmc_plat_mutex_unlock(&xp.lock);
        atomic_store(&c->closing, true);
        conn_peer_gone(c);
        shmc_conn_release(c);
        return E_OUTOFMEMORY;
    }
    c->next = xp.list; /* the list holds the creation reference */
    xp.list = c;
    shmc_plat_mutex_unlock(&xp.lock);
    *out = c; /* with the reference connect_new took for us */
    return S_OK;
}

/* ---- accepting (server) ---------------------------------------------------------- */

static bool receiver_start(shmc_conn *c, bool spare);

/* How many connections we serve for the process `client`. */
static uint32_t server_conns_of(const shmc_plat_procid *client)
{
    uint32_t n = 0;
    shmc_plat_mutex_lock(&xp.lock);
    for (shmc_conn *o = xp.list; o; o = o->next) {
        if (!o->is_client && o->peer.pid == client->pid && o->peer.start_time == client->start_time)
            n++;
    }
    shmc_plat_mutex_unlock(&xp.lock);
    return n;
}

/* The account of the process `client` (shmc_client_acct): the one its
 * other connections share, or a new one. With a reference; NULL if out of
 * memory. */
static shmc_client_acct *client_acct(const shmc_plat_procid *client)
{
    shmc_client_acct *a = NULL;
    shmc_plat_mutex_lock(&xp.lock);
    for (shmc_conn *o = xp.list; o && !a; o = o->next) {
        if (!o->is_client && o->acct && o->peer.pid == client->pid &&
            o->peer.start_time == client->start_time)
            a = o->acct;
    }
    if (a) {
        atomic_fetch_add(&a->refs, 1);
    } else if ((a = shmc_calloc(1, sizeof(*a))) != NULL) {
        atomic_init(&a->refs, 1);
    }
    shmc_plat_mutex_unlock(&xp.lock);
    return a;
}

/* Tells the client waiting on a connection region that we will not serve
 * it: it fails fast (RPC_E_SERVERCALL_REJECTED) instead of waiting for an
 * accept that never comes. */
static void refuse(shmc_plat_region *r)
{
    shmc_conn_hdr *h = r->base;
    atomic_store(&h->state, SHMC_CONN_CLOSED);
    shmc_plat_waiter accept;
    if (SUCCEEDED(shmc_plat_waiter_open(&accept, r, offsetof(shmc_conn_hdr, accept)))) {
        atomic_fetch_add(&accept.word->value, 1);
        shmc_plat_wake(&accept, true);
        shmc_plat_waiter_close(&accept);
    }
}

void shmc_conn_accept(const char *conn_name, const shmc_plat_procid *client)
{
    shmc_plat_once_run(&xp_once, xp_setup);
    shmc_plat_region region;
    HRESULT hr = shmc_plat_region_open(&region, conn_name);
    if (FAILED(hr))
        return; /* (the client times out) */
    shmc_conn_hdr *hdr = region.base;
    shmc_region_info info;
    hr = shmc_region_hdr_read(&hdr->common, region.size, &info);
    /* the region must be what the client said: a connection it owns, of
     * our layout, big enough for every slot */
    if (SUCCEEDED(hr) &&
        (info.kind != SHMC_REGION_KIND_CONN || info.version != SHMC_XPORT_VERSION ||
         info.owner.pid != client->pid || info.owner.start_time != client->start_time ||
         region.size < SHMC_CONN_SIZE || atomic_load(&hdr->nslots) != SHMC_CONN_SLOTS ||
         atomic_load(&hdr->area) != SHMC_SLOT_AREA || atomic_load(&hdr->state) != SHMC_CONN_NEW))
        hr = RPC_E_INVALID_DATA;
    if (FAILED(hr)) {
        shmc_plat_region_close(&region);
        return;
    }
    /* a client needs one connection (two while its threads race to
     * connect): a process that posts more is refused, so it cannot make us
     * start threads without end (one listener accepts: no race here); so
     * is one we cannot serve now (out of memory, of threads) */
    shmc_conn *c = NULL;
    if (server_conns_of(client) < SHMC_MAX_CONNS_PER_CLIENT)
        c = conn_new(false);
    /* what it may make us keep is bounded for the process, not per
     * connection: its connections share one account (one listener
     * accepts, so a connection of the process that is being accepted is
     * not missed here) */
    if (c && !(c->acct = client_acct(client))) {
        conn_free(c);
        c = NULL;
    }
    if (!c) {
        refuse(&region);
        shmc_plat_region_close(&region);
        return;
    }
    c->peer = *client;
    c->region = region;
    c->hdr = hdr;
    hr = open_waiters(c);
    if (FAILED(hr)) {
        refuse(&c->region);
        atomic_store(&c->dead, true);
        conn_free(c);
        return;
    }
    /* Ours until this function is done with it. Once the watcher runs it
     * may find the client gone at once (conn_peer_gone drops the creation
     * reference, which the list holds), and once the first receiver runs,
     * the client may close the connection: either can happen while we are
     * still here, and the last of the other references must not free it
     * under us. */
    shmc_conn_addref(c);
    hr = start_watcher(c);
    if (FAILED(hr)) {
        refuse(&c->region);
        atomic_store(&c->dead, true);
        conn_free(c); /* (no other thread has it) */
        /* a client that died while connecting leaves the connection's name
         * behind (it removes it once we accept): removed if so */
        shmc_reclaim_name(conn_name);
        return;
    }
    /* a connection nobody serves would hang its client's calls: the
     * first receiver runs before we accept */
    if (!receiver_start(c, false)) {
        refuse(&c->region);
        atomic_store(&c->closing, true); /* the watcher stops and lets go */
        if (!atomic_exchange(&c->dead, true))
            shmc_conn_release(c); /* the creation reference (the watcher did not drop it) */
        shmc_conn_release(c);     /* ours */
        return;
    }
    /* listed unless the watcher already found the client gone (it dropped
     * the creation reference then, and looks for it in the list no more) */
    shmc_plat_mutex_lock(&xp.lock);
    bool gone = atomic_load(&c->dead);
    if (!gone) {
        c->next = xp.list;
        xp.list = c;
    }
    shmc_plat_mutex_unlock(&xp.lock);

    if (!gone) {
        atomic_store(&c->hdr->server_pid, shmc_g.self.pid);
        atomic_store(&c->hdr->server_start, shmc_g.self.start_time);
        atomic_store(&c->hdr->state, SHMC_CONN_ACCEPTED);
        shmc_plat_waiter accept;
        if (SUCCEEDED(
                shmc_plat_waiter_open(&accept, &c->region, offsetof(shmc_conn_hdr, accept)))) {
            atomic_fetch_add(&accept.word->value, 1);
            shmc_plat_wake(&accept, true);
            shmc_plat_waiter_close(&accept);
        }
    }
    shmc_conn_release(c); /* ours */
}

/* ---- the client's side of a call ---------------------------------------------------- */

/* Frees slots the server has let go of after we abandoned them; under
 * slot_lock. */
static void reclaim_abandoned(shmc_conn *c)
{
    uint32_t m = c->abandoned_mask;
    while (m) {
        uint32_t i = (uint32_t)__builtin_ctz(m);
        m &= m - 1;
        if (atomic_load(&shmc_conn_slot(c, i)->state) == SHMC_SLOT_FREE) {
            c->abandoned_mask &= ~(1u << i);
            atomic_fetch_or(&c->free_mask, 1u << i);
        }
    }
}

static void bulk_init(void *base, size_t size, void *ctx)
{
    (void)size;
    (void)ctx;
    shmc_region_hdr_init(base, SHMC_REGION_KIND_BULK, SHMC_XPORT_VERSION, SHMC_BULK_DATA,
                         &shmc_g.self, shmc_random_u64());
}

/* Lets go of a bulk region of ours: its name too, if the peer never
 * opened it (and so never removed it). */
static void bulk_drop(shmc_plat_region *r)
{
    if (r->base)
        shmc_plat_region_unlink(r->name);
    shmc_plat_region_close(r);
}

/* Room for `len` bytes of frame in the bulk region of ours kept for slot
 * i: the one there if it is big enough, else a new one. */
static HRESULT bulk_out_get(shmc_conn *c, uint32_t i, uint32_t len, unsigned char **data)
{
    shmc_plat_region *r = &c->bulk_out[i];
    if (!r->base || r->size < (size_t)SHMC_BULK_DATA + len) {
        bulk_drop(r);
        c->bulk_out_named[i] = true;
        char name[SHMC_XNAME_MAX];
        HRESULT hr = shmc_xport_random_name(name, sizeof(name), "bk");
        if (SUCCEEDED(hr))
            hr = shmc_plat_region_create_init(r, name, (size_t)SHMC_BULK_DATA + len, bulk_init,
                                              NULL);
        if (FAILED(hr)) {
            memset(r, 0, sizeof(*r));
            return hr;
        }
    }
    *data = (unsigned char *)r->base + SHMC_BULK_DATA;
    return S_OK;
}

/* The peer says it has our bulk region of slot i mapped: its name is not
 * needed any more. An honest peer removed it when it opened the region;
 * one that says so without having opened it must not make the name
 * outlive us (our process may end before we let the region go). */
static void bulk_out_held(shmc_conn *c, uint32_t i)
{
    if (c->bulk_out_named[i]) {
        shmc_plat_region_unlink(c->bulk_out[i].name);
        c->bulk_out_named[i] = false;
    }
}

/* The peer's bulk region `shared_name` (a field of the slot) holding `len`
 * bytes, mapped in *r: the one kept there if it has that name, else the
 * region opened, checked (a bulk region the peer made, big enough) and
 * its name removed. */
static HRESULT bulk_in_get(shmc_plat_region *r, const char *shared_name, size_t field, uint32_t len,
                           const shmc_plat_procid *owner, const unsigned char **data)
{
    char name[SHMC_XNAME_MAX];
    if (FAILED(shmc_xport_copy_name(name, shared_name, field)))
        return RPC_E_INVALID_DATA;
    if (!r->base || strcmp(r->name, name) != 0) {
        shmc_plat_region_close(r);
        HRESULT hr = shmc_plat_region_open(r, name);
        if (hr == E_OUTOFMEMORY)
            return hr; /* ours: no room to map it now */
        if (FAILED(hr))
            return RPC_E_INVALID_DATA;
        shmc_region_info info;
        hr = shmc_region_hdr_read(r->base, r->size, &info);
        if (FAILED(hr) || info.kind != SHMC_REGION_KIND_BULK || info.owner.pid != owner->pid ||
            info.owner.start_time != owner->start_time) {
            shmc_plat_region_close(r);
            return RPC_E_INVALID_DATA;
        }
        shmc_plat_region_unlink(name);
    }
    if (r->size < (size_t)SHMC_BULK_DATA + len)
        return RPC_E_INVALID_DATA; /* (kept: a later frame may fit) */
    *data = (const unsigned char *)r->base + SHMC_BULK_DATA;
    return S_OK;
}

/* After a call: a region larger than SHMC_BULK_KEEP_MAX is not kept. */
static void bulk_trim(shmc_plat_region *r, bool ours)
{
    if (r->base && r->size > SHMC_BULK_KEEP_MAX) {
        if (ours)
            bulk_drop(r);
        else
            shmc_plat_region_close(r);
    }
}

/* Takes a free slot without a lock, or -1. */
static int take_free_slot(shmc_conn *c)
{
    uint32_t m = atomic_load_explicit(&c->free_mask, memory_order_relaxed);
    while (m) {
        uint32_t bit = m & (0u - m);
        if (atomic_compare_exchange_weak(&c->free_mask, &m, m & ~bit))
            return __builtin_ctz(bit);
    }
    return -1;
}

/* Gives a slot back, waking a caller that waits for one. */
static void give_back_slot(shmc_conn *c, uint32_t i)
{
    atomic_fetch_or(&c->free_mask, 1u << i);
    if (atomic_load(&c->slot_waiters)) {
        shmc_plat_mutex_lock(&c->slot_lock);
        shmc_plat_cond_signal(&c->slot_cond);
        shmc_plat_mutex_unlock(&c->slot_lock);
    }
}

/*
 * Kept slots. Taking a slot and giving it back are a read-modify-write
 * each on the free mask, and each waits for the stores before it: a
 * tenth of a hot cross-process null call (in-run A/B: 12 ns of 0.27 us).
 * So where the OS has a process-wide barrier (shmc_hazards_enabled), a
 * thread keeps the slot of its last call while at least half of the
 * connection's slots are free, and takes it for its next call with a
 * plain store and load:
 *
 *   keeper:  c->keep_in[i] = 1; (compiler barrier) c->keeper[i] == th ?
 *   another: CAS c->keeper[i] th -> KEEP_REVOKED; process barrier;
 *            c->keep_in[i] == 0 ? the slot is its own (keeper[i] = 0)
 *                               : keeper[i] = KEEP_RETURN
 *
 * Either the other thread sees the keeper's call in, or the keeper sees
 * the slot taken back (the barrier ran a full one on the keeper's CPU
 * between). A keeper that finds KEEP_REVOKED waits the moment it takes
 * for the verdict; KEEP_RETURN leaves it the call in progress, after
 * which it gives the slot back. Slots are taken back only when none is
 * free (steal_kept_slot).
 *
 * A thread keeps one slot, on the connection it last called (it looks
 * every 64th call on another whether to move), and gives it back when it
 * ends (shmc_conn_thread_ends; the connection is looked up in the list,
 * as it may be gone). Its record names the connection by address and
 * gen, so a new connection at a freed one's address is not taken for it.
 * A call made inside a call (an STA's callback) takes a free slot.
 */
#define KEEP_REVOKED ((uintptr_t)1)
#define KEEP_RETURN  ((uintptr_t)2)

/* The keeper's wait for another thread's verdict on a slot it revoked. */
static uintptr_t keep_verdict(shmc_conn *c, uint32_t i)
{
    uintptr_t k;
    while ((k = atomic_load(&c->keeper[i])) == KEEP_REVOKED)
        shmc_plat_thread_yield();
    return k;
}

/* The slot this thread keeps on c, taken for a call (*kept: as the kept
 * slot; else it is this call's only, given back or kept anew at its end);
 * or -1. */
static int take_kept_slot(shmc_conn *c, shmc_thread *th, bool *kept)
{
    if (!th || th->keep_conn != c || th->keep_gen != c->gen || th->keep_in)
        return -1; /* none here, or a call inside a call on it */
    uint32_t i = th->keep_slot;
    atomic_store_explicit(&c->keep_in[i].in, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* the other half: steal_kept_slot's barrier */
    uintptr_t k = atomic_load_explicit(&c->keeper[i], memory_order_acquire);
    if (k == (uintptr_t)th) {
        th->keep_in = true;
        *kept = true;
        return (int)i;
    }
    if (k == KEEP_REVOKED)
        k = keep_verdict(c, i);
    th->keep_conn = NULL;
    /* taken back: the word we set may be another keeper's by now (left
     * set, it only makes a thread that takes back slots leave this one to
     * its keeper, once) */
    if (k != KEEP_RETURN)
        return -1;
    atomic_store_explicit(&c->keep_in[i].in, 0, memory_order_relaxed);
    atomic_store(&c->keeper[i], 0);
    *kept = false;
    return (int)i; /* ours still, as any slot taken from the free mask */
}

/* A call on the kept slot i is over: true if the thread keeps it still;
 * else *give says whether the slot is to be given back (it is not when
 * another thread took it back). */
static bool leave_kept_slot(shmc_conn *c, shmc_thread *th, uint32_t i, bool *give)
{
    th->keep_in = false;
    atomic_store_explicit(&c->keep_in[i].in, 0, memory_order_release);
    atomic_signal_fence(memory_order_seq_cst);
    uintptr_t k = atomic_load_explicit(&c->keeper[i], memory_order_acquire);
    if (k == (uintptr_t)th)
        return true;
    if (k == KEEP_REVOKED)
        k = keep_verdict(c, i);
    th->keep_conn = NULL;
    *give = k == KEEP_RETURN;
    if (*give)
        atomic_store(&c->keeper[i], 0);
    return false;
}

/* The thread stops keeping slot i while its call is in it (the call was
 * given up on: the slot stays with the server for now). */
static void drop_kept_slot(shmc_conn *c, shmc_thread *th, uint32_t i)
{
    uintptr_t k = (uintptr_t)th;
    if (!atomic_compare_exchange_strong(&c->keeper[i], &k, (uintptr_t)0)) {
        if (k == KEEP_REVOKED)
            keep_verdict(c, i); /* KEEP_RETURN: the call was in */
        atomic_store(&c->keeper[i], 0);
    }
    th->keep_conn = NULL;
    th->keep_in = false;
    atomic_store_explicit(&c->keep_in[i].in, 0, memory_order_release);
}

/* How many times a thread took back a slot another kept (tests). */
_Atomic uint32_t shmc_slot_takebacks;

/* Takes back a slot another thread keeps and is not calling in; or -1.
 * (One it is calling in gets KEEP_RETURN: it gives the slot back.) The
 * keeper is only compared, never read: it may have ended. */
static int steal_kept_slot(shmc_conn *c, shmc_thread *me)
{
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        uintptr_t k = atomic_load(&c->keeper[i]);
        if (k == 0 || k == KEEP_REVOKED || k == KEEP_RETURN || k == (uintptr_t)me)
            continue;
        if (!atomic_compare_exchange_strong(&c->keeper[i], &k, KEEP_REVOKED))
            continue;
        atomic_fetch_add_explicit(&shmc_slot_takebacks, 1, memory_order_relaxed);
        bool in = !shmc_plat_process_barrier() || atomic_load(&c->keep_in[i].in);
        atomic_store(&c->keeper[i], in ? KEEP_RETURN : (uintptr_t)0);
        if (!in)
            return (int)i;
    }
    return -1;
}

/* Whether the thread keeps slot i of c after a call on it. */
static bool keep_slot(shmc_conn *c, shmc_thread *th, uint32_t i)
{
    if (!th || c->detached || !shmc_hazards_enabled() || atomic_load(&c->dead) || th->keep_in ||
        __builtin_popcount(atomic_load_explicit(&c->free_mask, memory_order_relaxed)) <
            SHMC_CONN_SLOTS / 2)
        return false;
    if (th->keep_conn == c && th->keep_gen == c->gen)
        return false; /* it keeps another here (this call's was taken back) */
    if (th->keep_conn) {
        /* it keeps one elsewhere: it moves its keep here if that
         * connection may have gone (one did since it looked), else on
         * every 64th call here */
        uint32_t deaths = atomic_load_explicit(&conn_deaths, memory_order_acquire);
        if (deaths == th->keep_deaths && ++th->keep_ends % 64 != 0)
            return false;
        shmc_conn_thread_ends(th); /* (gives it back, if it is still there) */
    }
    th->keep_deaths = atomic_load_explicit(&conn_deaths, memory_order_acquire);
    atomic_store_explicit(&c->keep_in[i].in, 0, memory_order_relaxed);
    atomic_store(&c->keeper[i], (uintptr_t)th);
    th->keep_conn = c;
    th->keep_gen = c->gen;
    th->keep_slot = i;
    return true;
}

void shmc_conn_thread_ends(shmc_thread *th)
{
    if (!th->keep_conn)
        return; /* (one kept means a connection was made: xp is set up) */
    shmc_plat_mutex_lock(&xp.lock);
    shmc_conn *c = xp.list;
    while (c && (c != th->keep_conn || c->gen != th->keep_gen))
        c = c->next;
    if (c) { /* still there (the list's reference keeps it while we look) */
        uint32_t i = th->keep_slot;
        uintptr_t k = (uintptr_t)th;
        if (!atomic_compare_exchange_strong(&c->keeper[i], &k, (uintptr_t)0) && k == KEEP_REVOKED)
            k = keep_verdict(c, i);
        if (k == (uintptr_t)th || k == KEEP_RETURN) {
            atomic_store(&c->keeper[i], 0);
            give_back_slot(c, i);
        }
    }
    shmc_plat_mutex_unlock(&xp.lock);
    th->keep_conn = NULL;
}

HRESULT shmc_xcall_begin(shmc_xcall *x, shmc_conn *c, uint32_t size)
{
    memset(x, 0, sizeof(*x));
    x->slot = -1;
    x->conn = c;
    /* (no thread lookup where no slot is kept: see shmc_hazards_enabled) */
    shmc_thread *th = shmc_hazards_enabled() ? shmc_thread_peek() : NULL;
    int i = take_kept_slot(c, th, &x->kept);
    if (i < 0)
        i = take_free_slot(c);
    if (i < 0)
        i = steal_kept_slot(c, th);
    if (i < 0) {
        /* all slots busy: calls queue here, within the call timeout */
        shmc_thread *cur = shmc_thread_get();
        uint32_t timeout = cur ? cur->timeout_ms : INFINITE;
        uint64_t deadline =
            timeout == INFINITE ? UINT64_MAX : shmc_plat_clock_ns() + (uint64_t)timeout * 1000000u;
        shmc_plat_mutex_lock(&c->slot_lock);
        atomic_fetch_add(&c->slot_waiters, 1);
        for (;;) {
            if (atomic_load(&c->dead)) {
                i = -1;
                break;
            }
            reclaim_abandoned(c);
            if ((i = take_free_slot(c)) >= 0 || (i = steal_kept_slot(c, th)) >= 0)
                break;
            uint32_t left = deadline == UINT64_MAX ? 50 : shmc_plat_clock_ms_until(deadline);
            if (left == 0) {
                i = -2;
                break;
            }
            shmc_plat_cond_wait(&c->slot_cond, &c->slot_lock, left < 50 ? left : 50);
        }
        atomic_fetch_sub(&c->slot_waiters, 1);
        shmc_plat_mutex_unlock(&c->slot_lock);
        if (i < 0)
            return i == -1 ? RPC_E_SERVER_DIED : RPC_E_TIMEOUT;
    }
    x->slot = (int)i;
    if (atomic_load(&c->dead)) {
        shmc_xcall_end(x);
        return RPC_E_SERVER_DIED;
    }
    HRESULT hr = shmc_xcall_resize(x, size);
    if (FAILED(hr))
        shmc_xcall_end(x);
    return hr;
}

HRESULT shmc_xcall_resize(shmc_xcall *x, uint32_t size)
{
    uint32_t i = (uint32_t)x->slot;
    if (size <= SHMC_SLOT_AREA) {
        x->request = shmc_conn_req_area(x->conn, i);
        x->req_cap = SHMC_SLOT_AREA;
        x->bulk_req = false;
        return S_OK;
    }
    unsigned char *data;
    HRESULT hr = bulk_out_get(x->conn, i, size, &data);
    if (FAILED(hr))
        return hr;
    x->request = data;
    x->req_cap = size;
    x->bulk_req = true;
    return S_OK;
}

/* Wakes a receiver of the connection. */
static void ring_server(shmc_conn *c)
{
    atomic_fetch_add(&c->hdr->server_bell.value, 1);
    shmc_plat_wake(&c->server_bell, false);
}

/* An STA waiting for a reply is woken by calls queued for it too: it
 * registers the slot's waiter with its apartment while it sleeps. */
static void sta_register(shmc_apt *sta, shmc_plat_waiter *w)
{
    shmc_plat_mutex_lock(&sta->remote_lock);
    sta->remote_wait = w;
    atomic_store(&sta->remote_waiting, true);
    shmc_plat_mutex_unlock(&sta->remote_lock);
}

static void sta_unregister(shmc_apt *sta)
{
    shmc_plat_mutex_lock(&sta->remote_lock);
    atomic_store(&sta->remote_waiting, false);
    sta->remote_wait = NULL;
    shmc_plat_mutex_unlock(&sta->remote_lock);
}

HRESULT shmc_xcall_send(shmc_xcall *x, uint32_t kind, uint32_t method, const uint8_t ipid[16],
                        uint32_t req_len, const void **reply, uint32_t *reply_len, HRESULT *status)
{
    shmc_conn *c = x->conn;
    uint32_t i = (uint32_t)x->slot;
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    *reply = NULL;
    *reply_len = 0;
    *status = E_FAIL;
    if (atomic_load(&c->dead))
        return RPC_E_SERVER_DIED;

    /* the request: fields first, REQUEST last (release) */
    atomic_store_explicit(&s->kind, kind, memory_order_relaxed);
    atomic_store_explicit(&s->method, method, memory_order_relaxed);
    atomic_store_explicit(&s->req_len, req_len, memory_order_relaxed);
    if (ipid)
        memcpy(s->ipid, ipid, 16);
    uint32_t flags = 0;
    if (x->bulk_req) {
        flags |= SHMC_SLOT_BULK_REQ;
        memset(s->req_bulk, 0, sizeof(s->req_bulk));
        memcpy(s->req_bulk, c->bulk_out[i].name, strlen(c->bulk_out[i].name));
    }
    if (c->bulk_in[i].base)
        flags |= SHMC_SLOT_REP_HELD; /* the server may reuse that reply region */
    atomic_store_explicit(&s->flags, flags, memory_order_relaxed);
    int cpu = shmc_cpu_current();
    shmc_cpu_publish(&s->client_cpu, cpu);
    atomic_store_explicit(&s->state, SHMC_SLOT_REQUEST, memory_order_release);
    /* wake a receiver if some sleep and none is about to look (the
     * receiver that replied last in this slot, or any other); right away,
     * while the line is most likely still in this CPU's cache: later, the
     * look at the hint would be a look at the line while the receiver
     * works on it (see shmc_handoff_quiet) */
    atomic_thread_fence(memory_order_seq_cst);
    bool rang = false; /* a receiver wakes for this request */
    bool watched = atomic_load_explicit(&s->rep_flags, memory_order_relaxed) & SHMC_SLOT_LOOKING;
    if (!watched && atomic_load_explicit(&c->hdr->sleepers, memory_order_relaxed) &&
        !atomic_load_explicit(&c->hdr->looking, memory_order_relaxed)) {
        ring_server(c);
        rang = true;
    }
    /* the receiver that watches the slot waits behind this thread on its
     * CPU (rt.h): move, or give the CPU away at once */
    bool shared = watched && shmc_caller_behind(
                                 cpu, atomic_load_explicit(&s->server_cpu, memory_order_relaxed),
                                 &s->client_cpu);

    shmc_thread *th = shmc_thread_get();
    shmc_apt *my_sta = th && th->inits && th->apt->model == SHMC_STA ? th->apt : NULL;
    uint32_t timeout = th ? th->timeout_ms : INFINITE;
    uint64_t deadline = 0; /* set once the call has to sleep (shmc_spin_deadline) */
    if (!shared)
        shmc_handoff_quiet(&shmc_hot_get()->client_quiet);
    bool counted = shmc_sta_enter(my_sta); /* it runs its incoming calls as it waits */
    shmc_spin sp;
    shmc_spin_begin(&sp, shmc_call_spin_budget());
    if (shared)
        shmc_spin_behind(&sp);
    shmc_quiet_looked(&shmc_hot_get()->client_quiet,
                      atomic_load_explicit(&s->state, memory_order_relaxed) == SHMC_SLOT_REPLY);
    while (atomic_load_explicit(&s->state, memory_order_acquire) != SHMC_SLOT_REPLY &&
           !atomic_load(&c->dead) && !(my_sta && shmc_apt_has_calls(my_sta)) &&
           shmc_spin_next(&sp)) {}
    for (;;) {
        if (my_sta)
            shmc_apt_pump(my_sta); /* callbacks into this STA */
        if (atomic_load_explicit(&s->state, memory_order_acquire) == SHMC_SLOT_REPLY)
            break;
        if (atomic_load(&c->dead)) {
            if (counted)
                shmc_sta_leave(my_sta);
            return RPC_E_SERVER_DIED;
        }
        uint32_t seq = atomic_load(&s->wake.value);
        if (my_sta)
            sta_register(my_sta, &c->slot_wake[i]);
        if (atomic_load_explicit(&s->state, memory_order_acquire) == SHMC_SLOT_REPLY ||
            atomic_load(&c->dead) || (my_sta && shmc_apt_has_calls(my_sta))) {
            if (my_sta)
                sta_unregister(my_sta);
            continue;
        }
        if (!deadline)
            deadline = shmc_spin_deadline(&sp, timeout);
        uint32_t left =
            deadline == UINT64_MAX ? SHMC_PLAT_INFINITE : shmc_plat_clock_ms_until(deadline);
        if (left == 0) {
            if (my_sta)
                sta_unregister(my_sta);
            uint32_t st = SHMC_SLOT_REQUEST;
            bool gave_up =
                atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_ABANDONED_EARLY) ||
                (st == SHMC_SLOT_RUNNING &&
                 atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_ABANDONED));
            if (gave_up) {
                /* the server frees the slot when (if) it finishes; what it
                 * keeps of the slot's bulk regions is unknown now: ours are
                 * let go (its mappings stay valid) */
                bulk_drop(&c->bulk_out[i]);
                shmc_plat_region_close(&c->bulk_in[i]);
                if (x->kept) {
                    drop_kept_slot(c, shmc_thread_peek(), i);
                    x->kept = false;
                }
                shmc_plat_mutex_lock(&c->slot_lock);
                c->abandoned_mask |= 1u << i;
                shmc_plat_mutex_unlock(&c->slot_lock);
                x->slot = -1;
                if (counted)
                    shmc_sta_leave(my_sta);
                return RPC_E_TIMEOUT;
            }
            continue; /* the reply came meanwhile */
        }
        /* not taken yet and nobody was woken for it: make sure a receiver
         * wakes (the one that was looking may have taken another call) */
        if (!rang && atomic_load(&s->state) == SHMC_SLOT_REQUEST && !atomic_load(&s->taken) &&
            atomic_load(&c->hdr->sleepers)) {
            ring_server(c);
            rang = true;
        }
        shmc_plat_wait(&c->slot_wake[i], seq, left);
        if (my_sta)
            sta_unregister(my_sta);
    }
    if (counted)
        shmc_sta_leave(my_sta);
    shmc_call_note_reply(shmc_spin_waited_ns(&sp));

    /* the reply: each field read once, checked, then used */
    uint32_t rep_len = atomic_load(&s->rep_len);
    HRESULT server_hr = (HRESULT)atomic_load(&s->status);
    uint32_t rep_flags = atomic_load(&s->rep_flags);
    *status = server_hr;
    if (x->bulk_req && !(rep_flags & SHMC_SLOT_BULK_REQ_KEPT))
        bulk_drop(&c->bulk_out[i]); /* the server did not keep it: a new one next time */
    else if (x->bulk_req)
        bulk_out_held(c, i);
    if (FAILED(server_hr))
        return S_OK; /* the server's answer is the error */
    if (rep_len > SHMC_MAX_FRAME) {
        *status = RPC_E_INVALID_DATA; /* no stub makes one: nothing is mapped for it */
        return S_OK;
    }
    if (rep_flags & SHMC_SLOT_REP_INLINE) {
        if (rep_len > SHMC_SLOT_INLINE_MAX) {
            *status = RPC_E_INVALID_DATA;
            return S_OK;
        }
        *reply = s->inline_rep;
    } else if (rep_flags & SHMC_SLOT_BULK_REP) {
        const unsigned char *data;
        HRESULT hr =
            bulk_in_get(&c->bulk_in[i], s->rep_bulk, sizeof(s->rep_bulk), rep_len, &c->peer, &data);
        if (FAILED(hr)) {
            *status = hr;
            return S_OK;
        }
        *reply = data;
    } else {
        if (rep_len > SHMC_SLOT_AREA) {
            *status = RPC_E_INVALID_DATA;
            return S_OK;
        }
        *reply = shmc_conn_rep_area(c, i);
    }
    *reply_len = rep_len;
    return S_OK;
}

void shmc_xcall_end(shmc_xcall *x)
{
    shmc_conn *c = x->conn;
    if (!c)
        return;
    if (x->slot >= 0) {
        uint32_t i = (uint32_t)x->slot;
        bulk_trim(&c->bulk_out[i], true);
        bulk_trim(&c->bulk_in[i], false);
        /* after REPLY (or before sending) the slot is ours again. A slot
         * left in REPLY stays so (the server takes it for idle, as FREE)
         * until our next request overwrites it: a FREE now would be one
         * more write into the line both sides read, whose transfer the
         * next call would wait for. */
        shmc_slot_hdr *s = shmc_conn_slot(c, i);
        uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (st != SHMC_SLOT_REPLY && st != SHMC_SLOT_FREE)
            atomic_store_explicit(&s->state, SHMC_SLOT_FREE, memory_order_release);
        shmc_thread *th = x->kept || shmc_hazards_enabled() ? shmc_thread_peek() : NULL;
        bool give = true;
        if (x->kept) {
            if (!leave_kept_slot(c, th, i, &give) && give)
                give_back_slot(c, i);
        } else if (!keep_slot(c, th, i)) {
            give_back_slot(c, i);
        }
    }
    memset(x, 0, sizeof(*x));
    x->slot = -1;
}

HRESULT shmc_conn_op(shmc_conn *c, uint32_t op, const void *in, uint32_t in_len, void *out,
                     uint32_t out_len)
{
    shmc_xcall x;
    HRESULT hr = shmc_xcall_begin(&x, c, in_len);
    if (FAILED(hr))
        return hr;
    memcpy(x.request, in, in_len);
    const void *rep;
    uint32_t rep_len;
    HRESULT status;
    hr = shmc_xcall_send(&x, op, 0, NULL, in_len, &rep, &rep_len, &status);
    if (SUCCEEDED(hr)) {
        hr = status;
        if (SUCCEEDED(hr) && out_len) {
            if (rep_len != out_len)
                hr = RPC_E_INVALID_DATA;
            else
                memcpy(out, rep, out_len);
        }
    }
    shmc_xcall_end(&x); /* (an abandoned slot stays with the server) */
    return hr;
}

/* ---- the server's side: receivers ---------------------------------------------------- */

/* Where a stub (or an operation) writes its reply: the slot's reply area,
 * or a bulk region for a large one. */
typedef struct slot_reply {
    ShmStubReply iface;
    shmc_conn *conn;
    uint32_t slot;
    uint32_t len;
    bool bulk, inline_rep;
    char bulk_name[SHMC_XNAME_MAX];
    /* an inline reply is built here and copied into the slot's first line
     * with the rest of the answer, in one burst (the client spins there) */
    _Alignas(8) unsigned char stage[SHMC_SLOT_INLINE_MAX];
} slot_reply;

static HRESULT slot_reply_get_buffer(ShmStubReply *r, uint32_t size, void **buf)
{
    slot_reply *sr = (slot_reply *)r;
    shmc_conn *c = sr->conn;
    *buf = NULL;
    sr->bulk = false;
    sr->inline_rep = size <= SHMC_SLOT_INLINE_MAX;
    sr->len = size;
    if (sr->inline_rep) {
        *buf = sr->stage;
        return S_OK;
    }
    if (size <= SHMC_SLOT_AREA) {
        *buf = shmc_conn_rep_area(c, sr->slot);
        return S_OK;
    }
    unsigned char *data;
    HRESULT hr = bulk_out_get(c, sr->slot, size, &data);
    if (FAILED(hr))
        return hr;
    sr->bulk = true;
    memcpy(sr->bulk_name, c->bulk_out[sr->slot].name, sizeof(sr->bulk_name));
    *buf = data;
    return S_OK;
}

static const ShmStubReplyVtbl slot_reply_vtbl = {slot_reply_get_buffer};

/* Where the reply was written. */
static const void *slot_reply_data(const slot_reply *sr)
{
    if (sr->inline_rep)
        return sr->stage;
    return sr->bulk ? (unsigned char *)sr->conn->bulk_out[sr->slot].base + SHMC_BULK_DATA
                    : shmc_conn_rep_area(sr->conn, sr->slot);
}

/* The interface stub named by ipid if the client holds a reference on it
 * and its object is still connected, with a struct reference; under the
 * runtime lock. */
static shmc_ifstub *held_ifstub_locked(shmc_conn *c, const uint8_t ipid[16]);

static void cache_clear(shmc_ifs_cache *k)
{
    shmc_ifstub *ifs = k->ifs;
    if (!ifs)
        return;
    k->ifs = NULL;
    shmc_stubmgr *sm = ifs->mgr;
    shmc_ifstub_release(ifs);
    shmc_stubmgr_release(sm);
}

/* The interface stub the client names, if it holds a reference on it:
 * kept in k (do not release it), or NULL. */
static shmc_ifstub *cache_lookup(shmc_conn *c, shmc_ifs_cache *k, const uint8_t ipid[16])
{
    if (k->ifs && k->gen == atomic_load_explicit(&shmc_g.ref_gen, memory_order_acquire) &&
        memcmp(k->ipid, ipid, 16) == 0)
        return k->ifs;
    cache_clear(k);
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_ifstub *ifs = held_ifstub_locked(c, ipid);
    if (ifs) {
        atomic_fetch_add(&ifs->mgr->refs, 1);
        k->gen = atomic_load_explicit(&shmc_g.ref_gen, memory_order_relaxed);
    }
    shmc_plat_mutex_unlock(&shmc_g.lock);
    if (ifs) {
        memcpy(k->ipid, ipid, 16);
        k->ifs = ifs;
    }
    return ifs;
}

/* Runs a method call for the connection on the object's apartment. */
static HRESULT serve_method(shmc_conn *c, shmc_ifs_cache *k, const uint8_t ipid[16],
                            uint32_t method, const void *req, uint32_t req_len, slot_reply *reply)
{
    shmc_ifstub *ifs = cache_lookup(c, k, ipid);
    if (!ifs)
        return RPC_E_DISCONNECTED; /* not an interface this client holds */
    HRESULT hr;
    shmc_apt *apt = ifs->mgr->apt;
    if (!ifs->info) {
        hr = RPC_E_INVALIDMETHOD; /* IUnknown has no methods to call */
    } else if (apt->model == SHMC_MTA) {
        /* receivers are runtime threads: MTA objects run right here */
        void *itf = shmc_ifstub_enter(ifs);
        if (itf) {
            hr = ShmStubInvoke(ifs->info, itf, method, req, req_len, &c->reply_marshaler,
                               &reply->iface);
            /* out of the stub before the reply: once a call has returned,
             * the server is done with the object (a disconnect then
             * releases it at once) */
            shmc_ifstub_leave(ifs);
        } else {
            hr = RPC_E_DISCONNECTED;
        }
    } else {
        /* an STA object: its thread runs the call, we wait */
        shmc_call *call;
        hr = shmc_call_new(&call, SHMC_CALL_METHOD);
        if (SUCCEEDED(hr)) {
            call->owns_refs = true;
            call->ifstub = ifs;
            shmc_ifstub_addref(ifs);
            call->target = apt;
            shmc_apt_addref(apt);
            call->method = method;
            if (req_len <= SHMC_CALL_INLINE) {
                memcpy(call->req_inline, req, req_len); /* (what the stub reads anyway) */
            } else {
                call->req_ext = (void *)req; /* borrowed: it stays in the slot */
                call->req_heap = true;
                call->req_borrowed = true;
            }
            call->req_size = req_len;
            call->reply_to = &reply->iface;
            call->marshaler = &c->reply_marshaler;
            hr = shmc_call_run(call);
            if (SUCCEEDED(hr))
                hr = call->hr;
            if (!shmc_call_given_up(hr))
                shmc_call_free(call);
        }
    }
    return hr;
}

/* Before serving slot i: the reply region we kept for it stays only if
 * the client says it still has it mapped (else it is let go, and removed
 * if it never opened it). */
static void check_kept_reply(shmc_conn *c, uint32_t i, uint32_t flags)
{
    shmc_plat_region *r = &c->bulk_out[i];
    if (r->base && (!(flags & SHMC_SLOT_REP_HELD) || r->size > SHMC_BULK_KEEP_MAX))
        bulk_drop(r);
    else if (r->base)
        bulk_out_held(c, i);
}

/* The request frame of slot i: in the slot, or in the client's bulk
 * region (mapped and kept in bulk_in[i]). */
static HRESULT request_frame(shmc_conn *c, uint32_t i, uint32_t flags, uint32_t req_len,
                             const unsigned char **req)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    if (req_len > SHMC_MAX_FRAME)
        return RPC_E_INVALID_DATA; /* no proxy makes one: nothing is mapped for it */
    if (flags & SHMC_SLOT_BULK_REQ)
        return bulk_in_get(&c->bulk_in[i], s->req_bulk, sizeof(s->req_bulk), req_len, &c->peer,
                           req);
    if (req_len > SHMC_SLOT_AREA)
        return RPC_E_INVALID_DATA;
    *req = shmc_conn_req_area(c, i);
    return S_OK;
}

static void count_looking(shmc_conn *c, int d);
static void end_serving(shmc_conn *c, uint32_t i);

/* Slot i is watched by the receiver that replies there (see
 * receiver_main); written only when it changes, the hot case. The
 * receiver keeps the slot's serving bit meanwhile. */
static void watch(shmc_conn *c, uint32_t i)
{
    if (!(atomic_load_explicit(&c->watched, memory_order_relaxed) & (1u << i)))
        atomic_fetch_or(&c->watched, 1u << i);
}

/* Stores value into an atomic field of the slot only if it differs. */
#define SET_CHANGED_ATOMIC(field, value)                                    \
    do {                                                                    \
        if (atomic_load_explicit((field), memory_order_relaxed) != (value)) \
            atomic_store_explicit((field), (value), memory_order_relaxed);  \
    } while (0)

/* One claimed slot: read, check, run, answer. true if the reply went out
 * with SHMC_SLOT_LOOKING set: we watch the slot then, and keep its bit in
 * c->serving until we stop (unhint). `relook`: the receiver stopped
 * counting itself looking when it claimed the slot, and counts itself
 * again once the reply is out. */
static bool serve_slot(shmc_conn *c, shmc_ifs_cache *k, uint32_t i, bool relook)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    uint32_t kind = atomic_load(&s->kind);
    uint32_t method = atomic_load(&s->method);
    uint32_t req_len = atomic_load(&s->req_len);
    uint32_t flags = atomic_load(&s->flags);
    uint8_t ipid[16];
    memcpy(ipid, s->ipid, 16);
    check_kept_reply(c, i, flags);
    slot_reply reply = {{&slot_reply_vtbl}, c, i, 0, false, false, {0}, {0}};
    const unsigned char *req = NULL;
    shmc_op_done done; /* a runtime operation's (set by shmc_remote_serve_op) */
    HRESULT status = request_frame(c, i, flags, req_len, &req);
    if (SUCCEEDED(status)) {
        if (kind == SHMC_OP_METHOD) {
            status = serve_method(c, k, ipid, method, req, req_len, &reply);
        } else {
            void *out;
            status = slot_reply_get_buffer(&reply.iface, 64, &out);
            uint32_t out_len = 0;
            if (SUCCEEDED(status))
                status = shmc_remote_serve_op(c, kind, req, req_len, out, 64, &out_len, &done);
            reply.len = out_len;
        }
    }
    /* a large request region is not kept; a kept one is reused by the
     * client only if we say we have it */
    bulk_trim(&c->bulk_in[i], false);
    uint32_t rep_flags =
        (flags & SHMC_SLOT_BULK_REQ) && c->bulk_in[i].base ? (uint32_t)SHMC_SLOT_BULK_REQ_KEPT : 0u;

    /* what is not in the slot's first line first (not taken); then the
     * answer into the first line in one burst, fields first, REPLY last
     * (each pause in it lets the spinning client take the line away, and
     * back costs a transfer). Counting itself looking again waits until
     * after REPLY: a read-modify-write waits for the writes before it, and
     * the client waits for the reply. */
    if (SUCCEEDED(status) && reply.bulk) {
        memset(s->rep_bulk, 0, sizeof(s->rep_bulk));
        memcpy(s->rep_bulk, reply.bulk_name, strlen(reply.bulk_name));
    }
    atomic_store_explicit(&s->taken, 0, memory_order_relaxed);
    /* each field written only if it changes: a call like the last one
     * (the common case) then writes the line once, with REPLY (a write a
     * while before that one lets the spinning client take the line back,
     * and the compare-and-swap waits for it once more). What we compare
     * with may be what the client wrote: it only decides whether we
     * write, and the client gets what it asked for. */
    SET_CHANGED_ATOMIC(&s->rep_len, SUCCEEDED(status) ? reply.len : 0u);
    SET_CHANGED_ATOMIC(&s->status, (int32_t)status);
    if (SUCCEEDED(status) && reply.bulk) {
        rep_flags |= SHMC_SLOT_BULK_REP;
    } else if (SUCCEEDED(status) && reply.inline_rep) {
        if (memcmp(s->inline_rep, reply.stage, reply.len) != 0)
            memcpy(s->inline_rep, reply.stage, reply.len);
        rep_flags |= SHMC_SLOT_REP_INLINE;
    }
    SET_CHANGED_ATOMIC(&s->rep_flags, rep_flags | SHMC_SLOT_LOOKING);
    shmc_cpu_publish(&s->server_cpu, shmc_cpu_current());
    watch(c, i);
    uint32_t st = SHMC_SLOT_REQUEST;
    if (atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_REPLY)) {
        if (relook)
            count_looking(c, 1);
        shmc_handoff_quiet(&shmc_hot_get()->receiver_quiet);
        wake_slot(c, i);
        return true; /* serving it still: we watch it */
    }
    if (relook)
        count_looking(c, 1);
    /* the client gave up: nobody reads the reply; release what it carries,
     * and take back what an operation gave it */
    if (SUCCEEDED(status) && kind != SHMC_OP_METHOD)
        shmc_remote_undo_op(c, &done);
    if (SUCCEEDED(status) && kind == SHMC_OP_METHOD && reply.len) {
        shmc_ifstub *ifs = shmc_conn_lookup_ipid(c, ipid);
        if (ifs) {
            shmc_frame_release_records(ifs->info, method, slot_reply_data(&reply), reply.len, true,
                                       &shmc_local_marshaler);
            shmc_ifstub_release(ifs);
        }
    }
    /* and it let go of the slot's bulk regions: so do we */
    bulk_drop(&c->bulk_out[i]);
    shmc_plat_region_close(&c->bulk_in[i]);
    atomic_fetch_and(&s->rep_flags, ~(uint32_t)SHMC_SLOT_LOOKING);
    atomic_fetch_and(&c->watched, ~(1u << i));
    atomic_store_explicit(&s->state, SHMC_SLOT_FREE, memory_order_release);
    end_serving(c, i);
    return false;
}

/* The slot's bit in c->serving: taken by the receiver that serves slot i
 * (false if another one does), and given back when it is done. */
static bool begin_serving(shmc_conn *c, uint32_t i)
{
    return !(atomic_fetch_or(&c->serving, 1u << i) & (1u << i));
}

static void end_serving(shmc_conn *c, uint32_t i)
{
    atomic_fetch_and(&c->serving, ~(1u << i));
}

/* A request its client gave up on before any receiver took it: release
 * the interface records it carries, and free the slot. */
static void drop_early(shmc_conn *c, uint32_t i)
{
    shmc_slot_hdr *s = shmc_conn_slot(c, i);
    uint32_t kind = atomic_load(&s->kind);
    uint32_t method = atomic_load(&s->method);
    uint32_t req_len = atomic_load(&s->req_len);
    uint32_t flags = atomic_load(&s->flags);
    uint8_t ipid[16];
    memcpy(ipid, s->ipid, 16);
    const unsigned char *req;
    if (kind == SHMC_OP_METHOD && SUCCEEDED(request_frame(c, i, flags, req_len, &req))) {
        shmc_ifstub *ifs = shmc_conn_lookup_ipid(c, ipid);
        if (ifs) {
            shmc_frame_release_records(ifs->info, method, req, req_len, false,
                                       &shmc_local_marshaler);
            shmc_ifstub_release(ifs);
        }
    }
    bulk_drop(&c->bulk_out[i]);
    shmc_plat_region_close(&c->bulk_in[i]);
    atomic_store_explicit(&s->state, SHMC_SLOT_FREE, memory_order_release);
}

/* A request's frame in the slot's request area was just written by the
 * client, on another CPU: its first lines are asked for as soon as the
 * request is seen, so that they come while the receiver looks the
 * request's fields over (a call with a few arguments: 0.65 to 0.58 us).
 * A prefetch reads nothing into the program: what the client wrote there
 * is read, copied and checked later as before. */
static void prefetch_request(shmc_conn *c, uint32_t i)
{
    uint32_t len = atomic_load_explicit(&shmc_conn_slot(c, i)->req_len, memory_order_relaxed);
    const unsigned char *area = shmc_conn_req_area(c, i);
    for (uint32_t off = 0; off < len && off < 2 * SHMC_LINE; off += SHMC_LINE)
        __builtin_prefetch(area + off);
}

/* Claims a slot with a request, or -1. The state word alone does not
 * make a slot ours: the client can write REQUEST again while a receiver
 * serves it. What we keep per slot (its bulk regions) is used by one
 * receiver at a time, the one that set the slot's bit in c->serving: the
 * receiver that serves the slot, or watches it (`mine`, whose bit it kept
 * from its last reply there: its next request is ours without a write). */
static int claim_slot(shmc_conn *c, int mine)
{
    if (mine >= 0) {
        shmc_slot_hdr *s = shmc_conn_slot(c, (uint32_t)mine);
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        shmc_quiet_looked(&shmc_hot_get()->receiver_quiet, st == SHMC_SLOT_REQUEST);
        if (st == SHMC_SLOT_REQUEST) {
            prefetch_request(c, (uint32_t)mine);
            atomic_store_explicit(&s->taken, 1, memory_order_relaxed);
            return mine;
        }
        if (st == SHMC_SLOT_ABANDONED_EARLY &&
            atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_RUNNING))
            drop_early(c, (uint32_t)mine); /* (and we go on watching it) */
    }
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        if ((int)i == mine)
            continue;
        shmc_slot_hdr *s = shmc_conn_slot(c, i);
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st != SHMC_SLOT_ABANDONED_EARLY && st != SHMC_SLOT_REQUEST)
            continue;
        if (!begin_serving(c, i))
            continue; /* another receiver serves it: it is not a new request */
        /* ours to serve from here (the serving bit): a request is taken
         * without a write into the line the client spins on; the state
         * stays REQUEST until our REPLY, whose compare-and-swap finds out
         * whether the client gave up meanwhile */
        st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == SHMC_SLOT_REQUEST) {
            prefetch_request(c, i);
            atomic_store_explicit(&s->taken, 1, memory_order_relaxed);
            return (int)i;
        }
        if (st == SHMC_SLOT_ABANDONED_EARLY &&
            atomic_compare_exchange_strong(&s->state, &st, SHMC_SLOT_RUNNING))
            drop_early(c, i);
        end_serving(c, i);
    }
    return -1;
}

/* A request a receiver could claim: one in a slot no receiver serves or
 * watches but us (a client that posts into a slot being served gets it
 * claimed once that receiver is done, by that receiver: the others need
 * not spin on it). */
static bool has_request(shmc_conn *c, int mine)
{
    uint32_t skip = atomic_load_explicit(&c->serving, memory_order_relaxed);
    if (mine >= 0)
        skip &= ~(1u << mine);
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS; i++) {
        if (!(skip & (1u << i)) && atomic_load_explicit(&shmc_conn_slot(c, i)->state,
                                                        memory_order_acquire) == SHMC_SLOT_REQUEST)
            return true;
    }
    return false;
}

/* has_request for a receiver that spins: one that watches a slot looks at
 * that slot every time, and at the others every SHMC_SCAN_EVERY-th look
 * (*looks counts them). A look at all the slots reads a line of each, and
 * it is the watched slot's line a hot call's next request comes in: the
 * sooner the receiver sees it, the sooner the reply. A request elsewhere
 * is seen a few pauses later. */
#define SHMC_SCAN_EVERY 8u

static bool spin_look(shmc_conn *c, int mine, uint32_t *looks)
{
    if (mine >= 0 && ++*looks % SHMC_SCAN_EVERY != 0)
        return atomic_load_explicit(&shmc_conn_slot(c, (uint32_t)mine)->state,
                                    memory_order_acquire) == SHMC_SLOT_REQUEST;
    return has_request(c, mine);
}

/* The receivers' counts, and their mirror in the header for the client. */
static void count_looking(shmc_conn *c, int d)
{
    atomic_fetch_add(&c->hdr->looking, (uint32_t)d);
}

static void count_sleeping(shmc_conn *c, int d)
{
    atomic_fetch_add(&c->sleeping, (uint32_t)d);
    atomic_fetch_add(&c->hdr->sleepers, (uint32_t)d);
}

/* Clears the SHMC_SLOT_LOOKING this receiver set (a seq_cst
 * read-modify-write: ordered before its next look for requests). */
static void unhint(shmc_conn *c, int *hinted)
{
    if (*hinted >= 0) {
        uint32_t i = (uint32_t)*hinted;
        atomic_fetch_and(&c->watched, ~(1u << i));
        atomic_fetch_and(&shmc_conn_slot(c, i)->rep_flags, ~(uint32_t)SHMC_SLOT_LOOKING);
        end_serving(c, i); /* the slot is anybody's again */
        *hinted = -1;
    }
}

/* A receiver counted asleep waits on the server bell until it rings, a
 * request is there, or the connection dies or closes. A wake-up for none
 * of those (RECEIVER_SLEEP_MS's) waits again, still counted asleep:
 * counted looking for a moment, it could make the watcher of a hot call,
 * which spins only while it is the one receiver looking, sleep instead. */
static void sleep_on_bell(shmc_conn *c, uint32_t seq)
{
    while (!has_request(c, -1) && !atomic_load(&c->dead) &&
           atomic_load(&c->hdr->state) != SHMC_CONN_CLOSED &&
           atomic_load(&c->hdr->server_bell.value) == seq)
        shmc_plat_wait(&c->server_bell, seq, RECEIVER_SLEEP_MS);
}

/*
 * A receiver thread. Idle, it spins for a while (only one receiver of a
 * connection spins at a time: more would only take CPUs from the callers)
 * and then sleeps on the server bell. A receiver counts as "looking" from
 * just after it published a reply until it sleeps or takes a request in
 * another slot than the one it watches, so a client that posts a request
 * then sees that someone will find it and does not wake anybody. (The
 * client of the slot it replied in does not need the count: the reply
 * itself says SHMC_SLOT_LOOKING. A client that posts elsewhere right
 * before the count rings once more than needed.)
 *
 * The receiver that replied in a slot watches it (SHMC_SLOT_LOOKING for
 * the client, c->watched for the other receivers) and keeps its serving
 * bit until it stops: it takes the slot's next request without a write,
 * and no other receiver reads the slot's line meanwhile. A third thread
 * reading the line a hot call moves between client and receiver would
 * make each side's write wait for one more transfer. Another receiver
 * does not spin while one watches a slot: the watcher, idle, looks at
 * every slot; busy, it no longer counts as looking, and a client that
 * posts elsewhere rings.
 *
 * A spare (receiver_start) is counted asleep and sleeps before it looks.
 */
static void receiver_run(shmc_conn *c, bool spare)
{
    int hinted = -1; /* the slot whose SHMC_SLOT_LOOKING we set */
    shmc_ifs_cache k = {{0}, NULL, 0};
    if (spare) {
        /* counted looking instead until its first sleep, it would stop
         * the watcher that started it from spinning for its client's next
         * call (which spins only while it is the one receiver looking): a
         * whole call's wake-up, for the time a thread takes to start
         * (milliseconds, loaded) */
        uint32_t delay = atomic_load_explicit(&shmc_tune.spare_delay_ms, memory_order_relaxed);
        if (delay)
            shmc_plat_sleep_ms(delay); /* tests: a spare slow to get there */
        sleep_on_bell(c, atomic_load(&c->hdr->server_bell.value));
        count_sleeping(c, -1);
    }
    count_looking(c, 1);
    while (!atomic_load(&c->dead)) {
        int i = claim_slot(c, hinted);
        if (i >= 0) {
            /* the hint stays on a slot it serves again: the reply rewrites
             * it, and the client of that slot waits for the reply rather
             * than posting (clearing it would move the line the client
             * spins on, once more, for nothing) */
            bool own = i == hinted;
            if (!own)
                unhint(c, &hinted);
            hinted = -1;
            /* The request in the slot it watches is a hot call's next one
             * (most often): it stays counted looking while it serves it,
             * as the read-modify-writes of the count would hold up the
             * reply. A client that posts elsewhere meanwhile may then not
             * ring at once; if the call takes its time, it rings when it
             * stops spinning (its request is not taken). */
            if (!own)
                count_looking(c, -1);
            /* keep a receiver asleep, to be rung for a request while the
             * others are busy, so that a call that takes its time never
             * holds up the next one for longer than that client spins (up
             * to one receiver per slot). A receiver counts itself asleep
             * before its last look for requests, and awake before it
             * takes one: the last of them to take a request finds none
             * asleep. */
            if (atomic_load(&c->sleeping) == 0)
                receiver_start(c, true);
            if (serve_slot(c, &k, (uint32_t)i, !own))
                hinted = i;
            continue;
        }
        uint32_t spin = atomic_load_explicit(&shmc_tune.callee_spin_ns, memory_order_relaxed);
        bool work = false;
        /* (the client can write that count: a wrong one only makes us
         * spin, or sleep until rung, when we would not); not while another
         * receiver watches a slot (see above) */
        if (spin && atomic_load(&c->hdr->looking) == 1 &&
            (hinted >= 0 || !atomic_load_explicit(&c->watched, memory_order_relaxed))) {
            shmc_spin sp;
            shmc_spin_begin_watching(
                &sp, spin,
                hinted < 0 ? -1
                           : atomic_load_explicit(&shmc_conn_slot(c, (uint32_t)hinted)->client_cpu,
                                                  memory_order_relaxed));
            uint32_t looks = 0;
            while (!(work = spin_look(c, hinted, &looks) || atomic_load(&c->dead)) &&
                   (hinted >= 0 || !atomic_load_explicit(&c->watched, memory_order_relaxed)) &&
                   shmc_spin_next(&sp)) {}
        }
        if (work)
            continue;
        if (atomic_load(&c->hdr->state) == SHMC_CONN_CLOSED) {
            /* the client let this connection go (one it made twice) */
            atomic_store(&c->closing, true);
            conn_peer_gone(c);
            break;
        }
        /* sleep: counted first, then the last look (the client posts, then
         * reads the counts; one of us sees the other) */
        uint32_t seq = atomic_load(&c->hdr->server_bell.value);
        unhint(c, &hinted);
        cache_clear(&k); /* what it holds is let go while it sleeps */
        count_sleeping(c, 1);
        count_looking(c, -1);
        sleep_on_bell(c, seq);
        count_looking(c, 1);
        count_sleeping(c, -1);
    }
    unhint(c, &hinted);
    cache_clear(&k);
    count_looking(c, -1);
    atomic_fetch_sub(&c->receivers, 1);
    shmc_conn_release(c);
    /* the call it kept for its next STA request (a receiver has no
     * apartment state whose destructor would put it back) */
    shmc_call_free_spare();
}

static void receiver_main(void *arg)
{
    receiver_run(arg, false);
}

static void spare_receiver_main(void *arg)
{
    receiver_run(arg, true);
}

/* false if no receiver could be started (one more is only wanted: the
 * others go on serving). A spare is counted asleep from here on, so that
 * the next claim does not start another, and sleeps until rung. */
static bool receiver_start(shmc_conn *c, bool spare)
{
    if (atomic_fetch_add(&c->receivers, 1) >= SHMC_CONN_SLOTS) {
        atomic_fetch_sub(&c->receivers, 1);
        return false;
    }
    shmc_conn_addref(c);
    if (spare)
        count_sleeping(c, 1);
    shmc_plat_thread t;
    if (FAILED(shmc_plat_thread_create(&t, spare ? spare_receiver_main : receiver_main, c))) {
        if (spare)
            count_sleeping(c, -1);
        atomic_fetch_sub(&c->receivers, 1);
        shmc_conn_release(c);
        return false;
    }
    shmc_plat_thread_detach(&t);
    return true;
}

/* ---- what a client holds (server) ------------------------------------------------------- */

static uint64_t ipid_key(const uint8_t ipid[16])
{
    uint64_t k;
    memcpy(&k, ipid, 8);
    return shmc_hmap_mix(k);
}

HRESULT shmc_conn_credit_locked(shmc_conn *c, shmc_ifstub *ifs, uint32_t n)
{
    /* the client went away while one of its calls ran: its credits have
     * been given back (after `dead` was set, under this lock); no new ones */
    if (atomic_load(&c->dead))
        return RPC_E_DISCONNECTED;
    uint64_t key = ipid_key(ifs->ipid.b);
    shmc_conn_ref *r = shmc_hmap_get(&c->credits, key);
    if (r && r->ifs != ifs)
        return E_UNEXPECTED; /* two IPIDs sharing 64 bits: refuse */
    if (!r) {
        r = shmc_calloc(1, sizeof(*r));
        if (!r || FAILED(shmc_hmap_put(&c->credits, key, r))) {
            shmc_free(r);
            return E_OUTOFMEMORY;
        }
        r->ifs = ifs;
        shmc_ifstub_addref(ifs);
        atomic_fetch_add(&ifs->mgr->refs, 1);
    }
    r->count += n;
    return S_OK;
}

HRESULT shmc_conn_debit_locked(shmc_conn *c, const uint8_t ipid[16], uint32_t n,
                               shmc_stubmgr **destroy)
{
    uint64_t key = ipid_key(ipid);
    shmc_conn_ref *r = shmc_hmap_get(&c->credits, key);
    if (!r || memcmp(r->ifs->ipid.b, ipid, 16) != 0)
        return CO_E_OBJNOTCONNECTED;
    if (n > r->count)
        n = r->count; /* a client cannot give back more than it has */
    r->count -= n;
    shmc_ref_gen_bump_locked();
    shmc_stubmgr_drop_refs_locked(r->ifs->mgr, n, false, destroy);
    return S_OK;
}

static shmc_ifstub *held_ifstub_locked(shmc_conn *c, const uint8_t ipid[16])
{
    shmc_conn_ref *r = shmc_hmap_get(&c->credits, ipid_key(ipid));
    if (!r || !r->count || !r->ifs->mgr->connected || memcmp(r->ifs->ipid.b, ipid, 16) != 0)
        return NULL;
    shmc_ifstub_addref(r->ifs);
    return r->ifs;
}

shmc_ifstub *shmc_conn_lookup_ipid(shmc_conn *c, const uint8_t ipid[16])
{
    shmc_plat_mutex_lock(&shmc_g.lock);
    shmc_ifstub *ifs = held_ifstub_locked(c, ipid);
    shmc_plat_mutex_unlock(&shmc_g.lock);
    return ifs;
}

/* The client is gone: every reference it held is given back. */
static void drop_credits(shmc_conn *c)
{
    for (;;) {
        shmc_stubmgr *destroy = NULL;
        shmc_conn_ref *r = NULL;
        shmc_plat_mutex_lock(&shmc_g.lock);
        r = shmc_hmap_take_any(&c->credits);
        if (r) {
            shmc_ref_gen_bump_locked();
            shmc_stubmgr_drop_refs_locked(r->ifs->mgr, r->count, false, &destroy);
        }
        shmc_plat_mutex_unlock(&shmc_g.lock);
        if (!r)
            break;
        if (destroy)
            shmc_stubmgr_destroy(destroy); /* in the object's apartment */
        shmc_stubmgr_release(r->ifs->mgr);
        shmc_ifstub_release(r->ifs);
        shmc_free(r);
    }
}

/* ---- detached connections (fuzzers) ------------------------------------------------------ */

HRESULT shmc_conn_new_detached(void *base, size_t size, bool is_client,
                               const shmc_plat_procid *peer, const char *endpoint, shmc_conn **out)
{
    *out = NULL;
    if (!base || size < SHMC_CONN_SIZE || (uintptr_t)base % 8 != 0 ||
        (is_client && (!endpoint || FAILED(shmc_plat_region_name_check(endpoint)))))
        return E_INVALIDARG;
    shmc_plat_once_run(&xp_once, xp_setup);
    shmc_conn *c = conn_new(is_client);
    if (!c)
        return E_OUTOFMEMORY;
    c->detached = true;
    c->peer = *peer;
    if (is_client)
        memcpy(c->peer_endpoint, endpoint, strlen(endpoint) + 1);
    else if (!(c->acct = client_acct(peer))) {
        conn_free(c);
        return E_OUTOFMEMORY;
    }
    c->region.base = base;
    c->region.size = size;
    c->hdr = base;
    /* one process plays both sides: its threads' waiters do */
    HRESULT hr = shmc_plat_waiter_open_local(&c->server_bell, &c->hdr->server_bell);
    for (uint32_t i = 0; i < SHMC_CONN_SLOTS && SUCCEEDED(hr); i++)
        hr = shmc_plat_waiter_open_local(&c->slot_wake[i], &shmc_conn_slot(c, i)->wake);
    if (FAILED(hr)) {
        conn_free(c);
        return hr;
    }
    shmc_plat_mutex_lock(&xp.lock);
    if (is_client) {
        shmc_conn *other = shmc_hmap_get(&xp.client_conns, peer_key(peer));
        if (other || FAILED(shmc_hmap_put(&xp.client_conns, peer_key(peer), c))) {
            shmc_plat_mutex_unlock(&xp.lock);
            conn_free(c);
            return other ? E_INVALIDARG : E_OUTOFMEMORY;
        }
    }
    c->next = xp.list; /* the list holds the creation reference */
    xp.list = c;
    shmc_conn_addref(c);
    shmc_plat_mutex_unlock(&xp.lock);
    *out = c;
    return S_OK;
}

void shmc_conn_close_detached(shmc_conn *c)
{
    cache_clear(&c->detached_cache);
    atomic_store(&c->closing, true);
    conn_peer_gone(c);
    shmc_conn_release(c);
}

int shmc_conn_serve_one(shmc_conn *c)
{
    int i = claim_slot(c, -1);
    if (i < 0)
        return -1;
    int hinted = serve_slot(c, &c->detached_cache, (uint32_t)i, true) ? i : -1;
    /* and stops looking, as a receiver that goes to sleep */
    unhint(c, &hinted);
    count_looking(c, -1);
    return i;
}
