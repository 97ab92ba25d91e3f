/*
 * test_xproc.c - calls between processes (MSHCTX_LOCAL): a record written
 * into a shared-memory stream in one process and unmarshaled in another
 * gives a proxy whose calls run in the object's apartment over there.
 * Every argument kind, callbacks into a waiting STA, object-returning
 * methods, 64 MiB arrays, many client processes at once, and the faults:
 * a client or a server killed, a server that hangs, forged records, and a
 * peer that writes garbage into the connection.
 *
 * The test re-runs itself as child processes (tsupport). Parent and child
 * meet in a small "mailbox" region and a shared-memory stream that the
 * parent creates; the child's role and its arguments come in the mailbox.
 */
#define COBJMACROS
#include "callee.h"
#include "calltest.h"
#include "conn.h"
#include "objref.h"
#include "regionhdr.h"
#include "rt.h"
#include "tobj.h"

#include <stdlib.h>
#include <string.h>

/* ---- the mailbox ------------------------------------------------------------ */

enum { MB_MAX_RECORD = 512 };

typedef struct mailbox {
    _Atomic uint32_t phase;   /* child -> parent: how far it got */
    _Atomic uint32_t cmd;     /* parent -> child: go on / stop */
    _Atomic int32_t result;   /* child -> parent: a value it measured */
    _Atomic uint32_t waiting; /* child: calls now inside ICallee_Wait */
    uint32_t coinit;          /* the child's apartment */
    uint32_t mshlflags;       /* how a server child marshals */
    uint32_t threads, calls;  /* a client child's load */
    uint64_t child_pid;
    uint64_t tid;                  /* a server child's main thread */
    char stream[SHM_MAX_NAME + 1]; /* the records' stream */
} mailbox;

typedef struct xmb {
    shmc_plat_region region;
    mailbox *mb;
    IStream *stream; /* the parent created it; the child opened it */
    char name[SHM_MAX_NAME + 1];
} xmb;

/* Parent: a mailbox and the stream the records travel in. */
static void xmb_create(xmb *x, DWORD coinit, DWORD mshlflags)
{
    memset(x, 0, sizeof(*x));
    tsupport_name(x->name, sizeof(x->name), "xpm");
    assert_hr(shmc_plat_region_create(&x->region, x->name, sizeof(mailbox)), S_OK);
    x->mb = x->region.base;
    x->mb->coinit = coinit;
    x->mb->mshlflags = mshlflags;
    tsupport_name(x->mb->stream, sizeof(x->mb->stream), "xps");
    assert_hr(ShmCreateStreamOnSharedMemory(x->mb->stream, 64 * 1024, 0, &x->stream), S_OK);
}

static void xmb_free(xmb *x)
{
    IStream_Release(x->stream);
    shmc_plat_region_unlink(x->name);
    shmc_plat_region_close(&x->region);
}

/* Child: opens the parent's mailbox and stream. */
static bool xmb_open(xmb *x, const char *name)
{
    memset(x, 0, sizeof(*x));
    if (!name || FAILED(shmc_plat_region_open(&x->region, name)))
        return false;
    x->mb = x->region.base;
    char stream[SHM_MAX_NAME + 1];
    memcpy(stream, x->mb->stream, sizeof(stream));
    stream[SHM_MAX_NAME] = 0;
    if (FAILED(ShmOpenStreamOnSharedMemory(stream, 0, &x->stream))) {
        shmc_plat_region_close(&x->region);
        return false;
    }
    return true;
}

static void xmb_close(xmb *x)
{
    IStream_Release(x->stream);
    shmc_plat_region_close(&x->region);
}

/* Waits (polling) until *word >= value; false after timeout_ms. */
static bool await(_Atomic uint32_t *word, uint32_t value, uint32_t timeout_ms)
{
    uint64_t start = shmc_plat_clock_ns();
    while (atomic_load(word) < value) {
        if (tsupport_ms_since(start) > timeout_ms)
            return false;
        shmc_plat_sleep_ms(1);
    }
    return true;
}

/* ---- the children ---------------------------------------------------------- */

static xmb *child_mb; /* for the callee's Wait hook */

static void note_wait(bool entering)
{
    if (child_mb) {
        if (entering)
            atomic_fetch_add(&child_mb->mb->waiting, 1);
        else
            atomic_fetch_sub(&child_mb->mb->waiting, 1);
    }
}

/*
 * "server": an object in an apartment of mb->coinit, marshaled for
 * another process into the stream (phase 1), served until it is freed
 * (then phase 2) or the parent says stop. Exits 0 if nothing leaked.
 */
static int child_server(const char *arg)
{
    xmb x;
    CHILD_CHECK(xmb_open(&x, arg));
    child_mb = &x;
    callee_wait_hook = note_wait;
    CHILD_CHECK(ShmCoInitializeEx(NULL, x.mb->coinit) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    x.mb->tid = shmc_plat_thread_self_id();
    _Atomic int freed = 0;
    callee *obj = callee_new(1, &freed);
    CHILD_CHECK(obj);
    CHILD_CHECK(ShmCoMarshalInterface(x.stream, &IID_ICallee, (IUnknown *)&obj->ICallee_iface,
                                      MSHCTX_LOCAL, NULL, x.mb->mshlflags) == S_OK);
    ICallee_Release(&obj->ICallee_iface); /* the record's reference keeps it */
    atomic_store(&x.mb->phase, 1);
    uint64_t start = shmc_plat_clock_ns();
    while (!atomic_load(&freed) && !atomic_load(&x.mb->cmd)) {
        if (x.mb->coinit == COINIT_APARTMENTTHREADED)
            ShmCoProcessCalls(20);
        else
            shmc_plat_sleep_ms(1);
        CHILD_CHECK(tsupport_ms_since(start) < 120000);
    }
    if (atomic_load(&x.mb->cmd) == 2) {
        /* a table record: the parent says when to let it go */
        tstream_rewind(x.stream);
        CHILD_CHECK(ShmCoReleaseMarshalData(x.stream) == S_OK);
        while (!atomic_load(&freed) && x.mb->coinit == COINIT_APARTMENTTHREADED)
            ShmCoProcessCalls(20);
    }
    CHILD_CHECK(atomic_load(&freed));
    atomic_store(&x.mb->phase, 2);
    ShmCoUninitialize();
    CHILD_CHECK(atomic_load(&live_callees) == 0);
    child_mb = NULL;
    xmb_close(&x);
    return 0;
}

/* A client's thread: `calls` Add calls, each answer checked. */
typedef struct load {
    ICallee *proxy;
    LONG id;
    uint32_t calls;
    _Atomic int errors;
} load;

static void load_main(void *arg)
{
    load *l = arg;
    for (uint32_t i = 1; i <= l->calls; i++) {
        LONG sum = 0;
        /* negative ids: the callee only counts; it checks order for 0..7 */
        if (ICallee_Add(l->proxy, -1 - l->id, (LONG)i, &sum) != S_OK || sum != (LONG)i - 1 - l->id)
            atomic_fetch_add(&l->errors, 1);
    }
}

/*
 * "client": unmarshals the stream's record (once per child: a table
 * record), then mb->threads MTA threads make mb->calls Add calls each
 * through the one proxy. Exits 0 if every answer was right.
 */
static int child_client(const char *arg)
{
    xmb x;
    CHILD_CHECK(xmb_open(&x, arg));
    CHILD_CHECK(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ICallee *p = NULL;
    CHILD_CHECK(ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p) == S_OK);
    uint32_t n = x.mb->threads;
    CHILD_CHECK(n >= 1 && n <= 16);
    load loads[16];
    shmc_plat_thread th[16];
    shmc_plat_procid self;
    shmc_plat_proc_self(&self);
    for (uint32_t i = 0; i < n; i++) {
        loads[i] = (load){p, (LONG)(self.pid % 100000) * 16 + (LONG)i, x.mb->calls, 0};
        CHILD_CHECK(shmc_plat_thread_create(&th[i], load_main, &loads[i]) == S_OK);
    }
    int errors = 0;
    for (uint32_t i = 0; i < n; i++) {
        shmc_plat_thread_join(&th[i]);
        errors += atomic_load(&loads[i].errors);
    }
    CHILD_CHECK(errors == 0);
    CHILD_CHECK(ICallee_Release(p) == 0);
    ShmCoUninitialize();
    xmb_close(&x);
    return 0;
}

/*
 * "holder": unmarshals the record, takes a child object and a second
 * interface through remote QI, says so (phase 1) and sleeps until killed.
 */
static int child_holder(const char *arg)
{
    xmb x;
    CHILD_CHECK(xmb_open(&x, arg));
    CHILD_CHECK(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED) == S_OK);
    CHILD_CHECK(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo) == S_OK);
    ICallee *p = NULL, *kid = NULL;
    ICallback *cb = NULL;
    CHILD_CHECK(ShmCoUnmarshalInterface(x.stream, &IID_ICallee, (void **)&p) == S_OK);
    CHILD_CHECK(ICallee_GetChild(p, 7, &kid) == S_OK);
    CHILD_CHECK(ICallee_QueryInterface(p, &IID_ICallback, (void **)&cb) == S_OK);
    CHILD_CHECK(ICallback_Notify(cb, 5) == S_OK);
    atomic_store(&x.mb->phase, 1);
    for (;;)
        shmc_plat_sleep_ms(1000); /* until killed */
}

/* ---- set-up -------------------------------------------------------------------- */

static void register_once(void)
{
    static bool registered;
    if (!registered) {
        assert_hr(ShmCoRegisterProxyStubs(&calltest_ProxyFileInfo), S_OK);
        registered = true;
    }
}

/* A server child (coinit) with its object marshaled into the stream. */
typedef struct remote {
    xmb x;
    shmc_plat_proc proc;
} remote;

static void remote_start(remote *r, DWORD coinit, DWORD mshlflags)
{
    xmb_create(&r->x, coinit, mshlflags);
    tsupport_spawn(&r->proc, "server", r->x.name);
    if (!await(&r->x.mb->phase, 1, 30000)) {
        shmc_plat_proc_kill(&r->proc);
        tsupport_join(&r->proc, 10000);
        fail_msg("the server child did not marshal its object");
    }
    tstream_rewind(r->x.stream);
}

/* Waits for the server child to see its object freed and exit cleanly. */
static void remote_finish(remote *r)
{
    assert_int_equal(tsupport_join(&r->proc, 30000), 0);
    assert_int_equal(atomic_load(&r->x.mb->phase), 2);
    xmb_free(&r->x);
}

/* Kills the server child and reaps it. */
static void remote_kill(remote *r)
{
    assert_hr(shmc_plat_proc_kill(&r->proc), S_OK);
    assert_hr(shmc_plat_proc_wait(&r->proc, 10000), S_OK);
    shmc_plat_proc_close(&r->proc);
}

/* ---- calls ------------------------------------------------------------------------- */

static void every_argument_kind(DWORD server_coinit)
{
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    remote r;
    remote_start(&r, server_coinit, MSHLFLAGS_NORMAL);
    ICallee *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(r.x.stream, &IID_ICallee, (void **)&p), S_OK);

    assert_hr(ICallee_Null(p), S_OK);
    LONG sum = 0;
    assert_hr(ICallee_Add(p, 40, 2, &sum), S_OK);
    assert_int_equal(sum, 42);
    double total = 0;
    assert_hr(ICallee_Scalars(p, 200, -30000, 4000000000u, -5000000000LL, 0.5, 0.25f, 1, &total),
              S_OK);
    assert_true(total == 200.0 - 30000.0 + 4000000000.0 - 5000000000.0 + 0.5 + 0.25 + 1000.0);
    assert_hr(ICallee_Fail(p, E_NOTIMPL), E_NOTIMPL);
    assert_hr(ICallee_Fail(p, S_FALSE), S_FALSE);
    assert_hr(ICallee_Fail(p, RPC_E_SERVER_DIED), RPC_E_SERVER_DIED);

    char *copy = NULL;
    assert_hr(ICallee_Echo(p, "hello, process", &copy), S_OK);
    assert_string_equal(copy, "re: hello, process");
    ShmCoTaskMemFree(copy);

    LONG values[1000];
    hyper expect = 0;
    for (int i = 0; i < 1000; i++) {
        values[i] = i * 7 - 3000;
        expect += values[i];
    }
    hyper got = 0;
    assert_hr(ICallee_Sum(p, 1000, values, &got), S_OK);
    assert_int_equal(got, expect);

    BYTE buf[3000] = {0};
    assert_hr(ICallee_Fill(p, sizeof(buf), buf), S_OK);
    for (unsigned i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], (BYTE)(i * 3 + 1));

    LONG rev[5] = {1, 2, 3, 4, 5};
    assert_hr(ICallee_Reverse(p, 5, rev), S_OK);
    assert_int_equal(rev[0], 5);
    assert_int_equal(rev[4], 1);

    ULONG count = 0;
    LONG *made = NULL;
    assert_hr(ICallee_MakeArray(p, 300, &count, &made), S_OK);
    assert_int_equal(count, 300);
    assert_int_equal(made[299], 299 * 299);
    ShmCoTaskMemFree(made);

    CT_POINT pt = {1, 2, 3000000000LL};
    CT_FRAME fr, moved;
    memset(&fr, 0, sizeof(fr));
    memset(&moved, 0, sizeof(moved));
    fr.width = 640;
    memcpy(fr.tag, "frame01", 8);
    fr.origin.z = -1;
    assert_hr(ICallee_Move(p, pt, &fr, &moved), S_OK);
    assert_int_equal(moved.width, 640);
    assert_int_equal(moved.origin.x, 1);
    assert_int_equal(moved.origin.z, 3000000000LL - 1);
    assert_int_equal(moved.tag[7], 'M');

    /* the calls ran in the server's apartment: its STA thread, or one of
     * its runtime threads for an MTA object (never this process) */
    hyper tid = 0;
    assert_hr(ICallee_GetThreadId(p, &tid), S_OK);
    if (server_coinit == COINIT_APARTMENTTHREADED)
        assert_int_equal((uint64_t)tid, r.x.mb->tid);

    /* a callback: this STA's object, called back while this thread waits */
    callee *mine = callee_new(2, NULL);
    atomic_store(&notify_thread, 0);
    atomic_store(&notify_value, 0);
    assert_hr(ICallee_Call(p, &mine->ICallback_iface, 42), S_OK);
    assert_int_equal(atomic_load(&notify_value), 42);
    assert_int_equal(atomic_load(&notify_thread), shmc_plat_thread_self_id());
    assert_int_equal(ICallee_Release(&mine->ICallee_iface), 0); /* the server let it go */

    /* [out] interfaces: objects made over there, each its own proxy */
    ICallee *kid = NULL, *kid2 = NULL;
    assert_hr(ICallee_GetChild(p, 9, &kid), S_OK);
    assert_hr(ICallee_GetChild(p, 10, &kid2), S_OK);
    LONG tag = 0;
    assert_hr(ICallee_GetTag(kid, &tag), S_OK);
    assert_int_equal(tag, 9);
    assert_hr(ICallee_GetTag(kid2, &tag), S_OK);
    assert_int_equal(tag, 10);
    assert_hr(ICallee_GetTag(p, &tag), S_OK);
    assert_int_equal(tag, 1);

    /* remote QueryInterface, and [iid_is] */
    ICallback *cb = NULL;
    assert_hr(ICallee_QueryInterface(kid, &IID_ICallback, (void **)&cb), S_OK);
    hyper cb_tid = 0;
    assert_hr(ICallback_GetThreadId(cb, &cb_tid), S_OK);
    IUnknown *unk1 = NULL, *unk2 = NULL;
    assert_hr(ICallee_QueryInterface(kid, &IID_IUnknown, (void **)&unk1), S_OK);
    assert_hr(ICallback_QueryInterface(cb, &IID_IUnknown, (void **)&unk2), S_OK);
    assert_ptr_equal(unk1, unk2); /* one identity per remote object */
    IUnknown_Release(unk1);
    IUnknown_Release(unk2);
    IUnknown *none = (IUnknown *)&tag;
    assert_hr(ICallee_QueryInterface(kid, &IID_IStream, (void **)&none), E_NOINTERFACE);
    assert_null(none);
    ICallback *cb2 = NULL;
    assert_hr(ICallee_Query(kid2, &IID_ICallback, (void **)&cb2), S_OK);
    assert_hr(ICallback_Notify(cb2, 3), S_OK);
    ICallback_Release(cb2);

    assert_int_equal(ICallback_Release(cb), 1); /* kid still holds the object */
    assert_int_equal(ICallee_Release(kid), 0);
    assert_int_equal(ICallee_Release(kid2), 0);

    /* a NULL [ref] pointer is refused before any call */
    assert_hr(ICallee_Add(p, 1, 2, NULL), E_POINTER);
    assert_int_equal(ICallee_Release(p), 0);
    remote_finish(&r); /* the server saw every object freed: nothing leaked */
    ShmCoUninitialize();
    assert_int_equal(atomic_load(&live_callees), 0);
}

static void every_argument_kind_sta_server(void **state)
{
    (void)state;
    every_argument_kind(COINIT_APARTMENTTHREADED);
}

static void every_argument_kind_mta_server(void **state)
{
    (void)state;
    every_argument_kind(COINIT_MULTITHREADED);
}

/* ---- faults ---------------------------------------------------------------------- */

/* The record at the start of a stream, decoded. */
static void read_record(IStream *stream, shmc_objref *rec, unsigned char *raw, ULONG *len)
{
    tstream_rewind(stream);
    assert_hr(IStream_Read(stream, raw, MB_MAX_RECORD, len), S_OK);
    assert_hr(shmc_objref_decode(raw, *len, rec), S_OK);
    tstream_rewind(stream);
}

#ifndef _WIN32
typedef struct owned_scan {
    uint64_t pid;
    unsigned count;
} owned_scan;

static bool count_owned(const char *name, void *ctx)
{
    owned_scan *sc = ctx;
    shmc_plat_region r;
    shmc_region_info info;
    if (SUCCEEDED(shmc_plat_region_open(&r, name))) {
        if (SUCCEEDED(shmc_region_hdr_read(r.base, r.size, &info)) && info.owner.pid == sc->pid)
            sc->count++;
        shmc_plat_region_close(&r);
    }
    return true;
}
#endif

/* Nothing of a dead process is left: its endpoint's name no longer opens
 * (both systems), and (POSIX) no region names it as its creator. */
static void assert_nothing_left_of(const shmc_objref *rec)
{
    char ep[SHMC_OBJREF_ENDPOINT_MAX + 1];
    memcpy(ep, rec->endpoint, rec->endpoint_len);
    ep[rec->endpoint_len] = 0;
    shmc_plat_region r;
    assert_hr(shmc_plat_region_open(&r, ep), SHM_E_NAME_NOT_FOUND);
#ifndef _WIN32
    owned_scan sc = {rec->pid, 0};
    assert_hr(shmc_plat_region_list("", count_owned, &sc), S_OK);
    assert_int_equal(sc.count, 0);
#endif
}

typedef struct pending {
    ICallee *proxy;
    ULONG ms;
    HRESULT hr;
    uint64_t returned_ns;
} pending;

static void pending_main(void *arg)
{
    pending *w = arg;
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    w->hr = ICallee_Wait(w->proxy, w->ms);
    w->returned_ns = shmc_plat_clock_ns();
    ShmCoUninitialize();
}

/* A server killed while a call runs: the call returns RPC_E_SERVER_DIED
 * within a second, every later call fails at once the same way, the
 * proxies release, and nothing of the server is left. */
static void server_killed_during_call(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    remote r;
    remote_start(&r, COINIT_MULTITHREADED, MSHLFLAGS_NORMAL);
    shmc_objref rec;
    unsigned char raw[MB_MAX_RECORD];
    ULONG len;
    read_record(r.x.stream, &rec, raw, &len);
    ICallee *p = NULL, *kid = NULL;
    assert_hr(ShmCoUnmarshalInterface(r.x.stream, &IID_ICallee, (void **)&p), S_OK);
    assert_hr(ICallee_GetChild(p, 3, &kid), S_OK);

    pending w = {p, 60000, E_FAIL, 0};
    shmc_plat_thread t;
    assert_hr(shmc_plat_thread_create(&t, pending_main, &w), S_OK);
    assert_true(await(&r.x.mb->waiting, 1, 30000)); /* the call runs over there */
    uint64_t killed = shmc_plat_clock_ns();
    remote_kill(&r);
    shmc_plat_thread_join(&t);
    assert_hr(w.hr, RPC_E_SERVER_DIED);
    double ms = (double)(w.returned_ns - killed) / 1e6;
    print_message("the call in progress returned %.2f ms after the kill\n", ms);
    assert_true(ms < 1000.0);

    /* later calls: at once, the same way, through every proxy */
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(ICallee_Null(p), RPC_E_SERVER_DIED);
    LONG tag;
    assert_hr(ICallee_GetTag(kid, &tag), RPC_E_SERVER_DIED);
    ICallback *cb = NULL;
    assert_hr(ICallee_QueryInterface(kid, &IID_ICallback, (void **)&cb), RPC_E_SERVER_DIED);
    assert_null(cb);
    assert_true(tsupport_ms_since(t0) < 1000.0);
    assert_int_equal(ICallee_Release(kid), 0);
    assert_int_equal(ICallee_Release(p), 0);
    /* its record names an object that is no more (as of an apartment
     * that ended) */
    tstream_rewind(r.x.stream);
    assert_hr(IStream_Write(r.x.stream, raw, len, NULL), S_OK);
    tstream_rewind(r.x.stream);
    p = (ICallee *)&t;
    assert_hr(ShmCoUnmarshalInterface(r.x.stream, &IID_ICallee, (void **)&p), CO_E_OBJNOTCONNECTED);
    assert_null(p);
    assert_nothing_left_of(&rec);
    xmb_free(&r.x);
    ShmCoUninitialize();
}

/* A server that hangs: the call timeout ends the wait with RPC_E_TIMEOUT;
 * the late reply is dropped (with what it carries) and the connection
 * goes on working. */
static void server_hangs_call_times_out(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    remote r;
    remote_start(&r, COINIT_MULTITHREADED, MSHLFLAGS_NORMAL);
    ICallee *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(r.x.stream, &IID_ICallee, (void **)&p), S_OK);
    assert_hr(ShmCoSetCallTimeout(200), S_OK);
    uint64_t t0 = shmc_plat_clock_ns();
    assert_hr(ICallee_Wait(p, 1500), RPC_E_TIMEOUT);
    double ms = tsupport_ms_since(t0);
    assert_true(ms >= 190.0 && ms < 1400.0);
    /* a late reply that carries an object: the server releases it */
    ICallee *kid = (ICallee *)&t0;
    assert_hr(ICallee_GetChild(p, -1000, &kid), RPC_E_TIMEOUT);
    assert_null(kid);
    /* meanwhile other calls go through */
    assert_hr(ICallee_Null(p), S_OK);
    assert_hr(ShmCoSetCallTimeout(INFINITE), S_OK);
    /* after the late replies, every slot is usable again */
    for (int i = 0; i < 40; i++) {
        LONG sum = 0;
        assert_hr(ICallee_Add(p, 1, i + 1, &sum), S_OK);
        assert_int_equal(sum, i + 2);
    }
    assert_hr(ICallee_Wait(p, 1200), S_OK); /* after the hung ones ended */
    assert_int_equal(ICallee_Release(p), 0);
    remote_finish(&r); /* the late child object was freed over there */
    ShmCoUninitialize();
}

/* A client killed while it holds proxies (an object, a child object, a
 * second interface): the server releases all it held within a second, and
 * the objects only it held are destroyed. */
static void client_killed_releases_its_references(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_APARTMENTTHREADED), S_OK);
    xmb x;
    xmb_create(&x, COINIT_APARTMENTTHREADED, MSHLFLAGS_NORMAL);
    _Atomic int freed = 0;
    callee *obj = callee_new(1, &freed);
    assert_hr(ShmCoMarshalInterface(x.stream, &IID_ICallee, (IUnknown *)&obj->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_NORMAL),
              S_OK);
    ICallee_Release(&obj->ICallee_iface); /* the record's reference keeps it */
    shmc_plat_proc child;
    tsupport_spawn(&child, "holder", x.name);
    uint64_t t0 = shmc_plat_clock_ns();
    while (atomic_load(&x.mb->phase) < 1) { /* serve it while it calls in */
        ShmCoProcessCalls(10);
        assert_true(tsupport_ms_since(t0) < 30000);
    }
    assert_false(atomic_load(&freed));
    assert_int_equal(atomic_load(&live_callees), 2); /* the object and its child */
    assert_hr(shmc_plat_proc_kill(&child), S_OK);
    uint64_t killed = shmc_plat_clock_ns();
    /* the destruction runs in the object's apartment: this STA */
    while (atomic_load(&live_callees) && tsupport_ms_since(killed) < 5000)
        ShmCoProcessCalls(5);
    double ms = tsupport_ms_since(killed);
    print_message("the dead client's objects were freed %.2f ms after the kill\n", ms);
    assert_true(atomic_load(&freed));
    assert_int_equal(atomic_load(&live_callees), 0);
    assert_true(ms < 1000.0);
    assert_hr(shmc_plat_proc_wait(&child, 10000), S_OK);
    shmc_plat_proc_close(&child);
    xmb_free(&x);
    ShmCoUninitialize();
}

/* 8 client processes of 4 threads each call one MTA object 100,000 times
 * in total: nothing lost, nothing duplicated. */
static void many_clients_one_object(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    xmb x;
    xmb_create(&x, COINIT_MULTITHREADED, MSHLFLAGS_TABLESTRONG);
    x.mb->threads = 4;
    x.mb->calls = 100000 / 32;
    _Atomic int freed = 0;
    callee *obj = callee_new(1, &freed);
    assert_hr(ShmCoMarshalInterface(x.stream, &IID_ICallee, (IUnknown *)&obj->ICallee_iface,
                                    MSHCTX_LOCAL, NULL, MSHLFLAGS_TABLESTRONG),
              S_OK);
    enum { N = 8 };
    shmc_plat_proc kids[N];
    for (int i = 0; i < N; i++)
        tsupport_spawn(&kids[i], "client", x.name);
    for (int i = 0; i < N; i++)
        assert_int_equal(tsupport_join(&kids[i], 240000), 0);
    assert_int_equal(atomic_load(&obj->calls), 100000);
    assert_int_equal(atomic_load(&obj->in_flight), 0);
    print_message("at most %d calls ran at once\n", atomic_load(&obj->max_in_flight));
    /* the clients' references went back; the table record still holds it */
    assert_false(atomic_load(&freed));
    tstream_rewind(x.stream);
    assert_hr(ShmCoReleaseMarshalData(x.stream), S_OK);
    assert_int_equal(ICallee_Release(&obj->ICallee_iface), 0);
    assert_true(atomic_load(&freed));
    xmb_free(&x);
    ShmCoUninitialize();
}

/* 64 MiB [in] and [out] arrays (they travel in bulk regions). */
static void huge_arrays(void **state)
{
    (void)state;
    register_once();
    assert_hr(ShmCoInitializeEx(NULL, COINIT_MULTITHREADED), S_OK);
    remote r;
    remote_start(&r, COINIT_MULTITHREADED, MSHLFLAGS_NORMAL);
    ICallee *p = NULL;
    assert_hr(ShmCoUnmarshalInterface(r.x.stream, &IID_ICallee, (void **)&p), S_OK);
    const ULONG n = 16u << 20; /* LONGs: 64 MiB */
    LONG *values = malloc((size_t)n * sizeof(LONG));
    assert_non_null(values);
    hyper expect = 0;
    for (ULONG i = 0; i < n; i++) {
        values[i] = (LONG)(i % 1000003) - 500000;
        expect += values[i];
    }
    hyper got = 0;
    assert_hr(ICallee_Sum(p, n, values, &got), S_OK);
    assert_int_equal(got, expect);
    BYTE *buf = (BYTE *)values;
    memset(buf, 0, (size_t)n * sizeof(LONG));
    assert_hr(ICallee_Fill(p, n * (ULONG)sizeof(LONG), buf), S_OK);
    for (size_t i = 0; i < (size_t)n * sizeof(LONG); i += 4093)
        assert_int_equal(buf[i], (BYTE)(i * 3 + 1));
    assert_int_equal(buf[(size_t)n * sizeof(LONG) - 1],
                     (BYTE)(((size_t)n * sizeof(LONG) - 1) * 3 + 1));
    /* [in, out]: both ways in one call */
    for (ULONG i = 0; i < n; i++)
        values[i] = (LONG)i;
    assert_hr(ICallee_Reverse(p, n, values), S_OK);
    assert_int_equal(values[0], (LONG)n - 1);
    assert_int_equal(values[n - 1], 0);
    free(values);
    /* and one a callee allocates */
    ULONG count = 0;
    LONG *made = NULL;
    assert_hr(ICallee_MakeArray(p, n, &count, &made), S_OK);
    assert_int_equal(count, n);
    assert_int_equal(made[n - 1], (LONG)((n - 1) * (n - 1)));
    ShmCoTaskMemFree(made);
    /* small calls after big ones still take the slots */
    assert_hr(ICallee_Null(p), S_OK);
    assert_int_equal(ICallee_Release(p), 0);
    remote_finish(&r);
    ShmCoUninitialize();
}

int main(int argc, char **argv)
{
    static const tsupport_child children[] = {
        {"server", child_server},
        {"client", child_client},
        {"holder", child_holder},
        {NULL, NULL},
    };
    tsupport_dispatch_child(argc, argv, children);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_argument_kind_sta_server),
        cmocka_unit_test(every_argument_kind_mta_server),
        cmocka_unit_test(huge_arrays),
        cmocka_unit_test(server_hangs_call_times_out),
        cmocka_unit_test(server_killed_during_call),
        cmocka_unit_test(client_killed_releases_its_references),
        cmocka_unit_test(many_clients_one_object),
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
