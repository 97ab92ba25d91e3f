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
static inline void remote_kill(remote *r)
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
        cmocka_unit_test(tsupport_check_names_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
