/*
 * test_dlopen.c - a plugin host's way in: the shared library (libshmcom.so,
 * libshmcom.dll) loaded at run time with dlopen or LoadLibrary, not linked,
 * as a host loads a plugin that uses shmcom.
 *
 * It marshals a shared-memory stream from the MTA to an STA thread started
 * after the load, writes and reads it through the proxy there, and checks
 * the bytes in the MTA. On ELF the runtime's thread-local variables use
 * the initial-exec model (platform.h, SHMC_THREAD_LOCAL), whose block the
 * load must find room for in the static TLS glibc keeps; the thread that
 * loads the library existed before, the STA thread comes after.
 *
 * Then it unloads the library while a thread that used the runtime (whose
 * per-thread state has a destructor in the library: a pthread key, a
 * fiber-local slot on Windows) is still alive, and lets that thread end:
 * the library stays loaded (linked -z nodelete; the DLL pins itself), so
 * the destructor and the runtime's own threads never run unmapped code,
 * and a second load gives the same, working runtime.
 *
 * A plain program, not linked with the runtime. argv[1]: the library (a
 * path, or on Windows its file name next to this program).
 */
#define COBJMACROS
#include <shmcom/shmcom.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#include <windows.h>
typedef HMODULE lib_t;
typedef HANDLE thread_t;

static lib_t lib_open(const char *path)
{
    return LoadLibraryA(path);
}
static void *lib_sym(lib_t lib, const char *name)
{
    return (void *)(uintptr_t)GetProcAddress(lib, name);
}
static void lib_close(lib_t lib)
{
    FreeLibrary(lib);
}
/* The library, if it is still loaded (no reference taken). */
static lib_t lib_loaded(const char *path)
{
    return GetModuleHandleA(path);
}
static void lib_unref(lib_t lib)
{
    (void)lib;
}
static const char *lib_error(void)
{
    static char msg[64];
    snprintf(msg, sizeof(msg), "error %lu", (unsigned long)GetLastError());
    return msg;
}

typedef struct start {
    void (*fn)(void *);
    void *arg;
} start;
static DWORD WINAPI trampoline(void *p)
{
    start *s = p;
    s->fn(s->arg);
    return 0;
}
static bool thread_start(thread_t *t, start *s)
{
    *t = CreateThread(NULL, 0, trampoline, s, 0, NULL);
    return *t != NULL;
}
static void thread_join(thread_t t)
{
    WaitForSingleObject(t, INFINITE);
    CloseHandle(t);
}
static void nap(void)
{
    Sleep(1);
}
#else
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>
typedef void *lib_t;
typedef pthread_t thread_t;

static lib_t lib_open(const char *path)
{
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}
static void *lib_sym(lib_t lib, const char *name)
{
    return dlsym(lib, name);
}
static void lib_close(lib_t lib)
{
    dlclose(lib);
}
/* The library, if it is still loaded (a reference: lib_unref). */
static lib_t lib_loaded(const char *path)
{
    return dlopen(path, RTLD_NOW | RTLD_NOLOAD);
}
static void lib_unref(lib_t lib)
{
    dlclose(lib);
}
static const char *lib_error(void)
{
    const char *e = dlerror();
    return e ? e : "(no error)";
}

typedef struct start {
    void (*fn)(void *);
    void *arg;
} start;
static void *trampoline(void *p)
{
    start *s = p;
    s->fn(s->arg);
    return NULL;
}
static bool thread_start(thread_t *t, start *s)
{
    return pthread_create(t, NULL, trampoline, s) == 0;
}
static void thread_join(thread_t t)
{
    pthread_join(t, NULL);
}
static void nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}
#endif

typedef HRESULT (*init_fn)(void *, DWORD);
typedef void (*uninit_fn)(void);
typedef HRESULT (*create_fn)(const char *, ULONGLONG, DWORD, IStream **);
typedef HRESULT (*marshal_fn)(REFIID, IUnknown *, IStream **);
typedef HRESULT (*unmarshal_fn)(IStream *, REFIID, void **);

static struct {
    init_fn init;
    uninit_fn uninit;
    create_fn create;
    marshal_fn marshal;
    unmarshal_fn unmarshal;
} api;

/* IID_IStream (on Windows it comes from the system's uuid library, not
 * from shmcom: this program links neither) */
static const IID iid_stream = {0x0000000c, 0x0000, 0x0000, {0xc0, 0, 0, 0, 0, 0, 0, 0x46}};

static int failures;

#define CHECK(cond)                                                           \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond); \
            failures++;                                                       \
        }                                                                     \
    } while (0)

static const char text[] = "written through a proxy, from an STA";

/* The STA thread: the proxy's calls go to the MTA's runtime threads. */
static void sta_main(void *arg)
{
    IStream *carrier = arg;
    HRESULT hr = api.init(NULL, COINIT_APARTMENTTHREADED);
    CHECK(hr == S_OK);
    IStream *proxy = NULL;
    hr = api.unmarshal(carrier, &iid_stream, (void **)&proxy);
    CHECK(hr == S_OK && proxy);
    if (proxy) {
        ULONG n = 0;
        CHECK(IStream_Write(proxy, text, sizeof(text), &n) == S_OK && n == sizeof(text));
        LARGE_INTEGER zero = {0};
        CHECK(IStream_Seek(proxy, zero, STREAM_SEEK_SET, NULL) == S_OK);
        char back[sizeof(text)] = {0};
        CHECK(IStream_Read(proxy, back, sizeof(back), &n) == S_OK && n == sizeof(text));
        CHECK(memcmp(back, text, sizeof(text)) == 0);
        CHECK(IStream_Release(proxy) == 0);
    }
    if (SUCCEEDED(hr))
        api.uninit();
}

/* A host thread that used the runtime and lives on past the unload. */
static struct {
    _Atomic int used, go;
} linger;

static void linger_main(void *arg)
{
    (void)arg;
    if (api.init(NULL, COINIT_MULTITHREADED) == S_OK)
        api.uninit(); /* (its runtime state stays until the thread ends) */
    atomic_store(&linger.used, 1);
    for (int i = 0; i < 20000 && !atomic_load(&linger.go); i++)
        nap();
}

static bool load_api(lib_t lib)
{
    api.init = (init_fn)(uintptr_t)lib_sym(lib, "ShmCoInitializeEx");
    api.uninit = (uninit_fn)(uintptr_t)lib_sym(lib, "ShmCoUninitialize");
    api.create = (create_fn)(uintptr_t)lib_sym(lib, "ShmCreateStreamOnSharedMemory");
    api.marshal = (marshal_fn)(uintptr_t)lib_sym(lib, "ShmCoMarshalInterThreadInterfaceInStream");
    api.unmarshal = (unmarshal_fn)(uintptr_t)lib_sym(lib, "ShmCoGetInterfaceAndReleaseStream");
    return api.init && api.uninit && api.create && api.marshal && api.unmarshal;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_dlopen LIBRARY\n");
        return 2;
    }
    lib_t lib = lib_open(argv[1]);
    if (!lib) {
        fprintf(stderr, "loading %s: %s\n", argv[1], lib_error());
        return 1;
    }
    if (!load_api(lib)) {
        fprintf(stderr, "a function is missing: %s\n", lib_error());
        return 1;
    }

    /* this thread existed before the load */
    CHECK(api.init(NULL, COINIT_MULTITHREADED) == S_OK);
    IStream *obj = NULL, *carrier = NULL;
    CHECK(api.create(NULL, 4096, 0, &obj) == S_OK && obj);
    if (obj)
        CHECK(api.marshal(&iid_stream, (IUnknown *)obj, &carrier) == S_OK && carrier);
    if (carrier) {
        thread_t t;
        start s = {sta_main, carrier};
        CHECK(thread_start(&t, &s));
        thread_join(t);
    }
    if (obj) {
        /* the bytes the STA wrote, read by the object's own apartment */
        LARGE_INTEGER zero = {0};
        CHECK(IStream_Seek(obj, zero, STREAM_SEEK_SET, NULL) == S_OK);
        char back[sizeof(text)] = {0};
        ULONG n = 0;
        CHECK(IStream_Read(obj, back, sizeof(back), &n) == S_OK && n == sizeof(text));
        CHECK(memcmp(back, text, sizeof(text)) == 0);
        CHECK(IStream_Release(obj) == 0);
    }
    api.uninit();

    /* unloaded while a thread that used it lives; then that thread ends */
    thread_t lt;
    start ls = {linger_main, NULL};
    bool lingering = thread_start(&lt, &ls);
    CHECK(lingering);
    while (lingering && !atomic_load(&linger.used))
        nap();
    init_fn first = api.init;
    lib_close(lib);
    atomic_store(&linger.go, 1);
    if (lingering)
        thread_join(lt); /* its runtime state's destructor runs here */

    lib_t again = lib_loaded(argv[1]);
    CHECK(again != NULL); /* still loaded */
    if (again) {
        lib_unref(again);
        lib = lib_open(argv[1]);
        CHECK(lib && load_api(lib) && api.init == first); /* the same runtime */
        if (lib) {
            CHECK(api.init(NULL, COINIT_MULTITHREADED) == S_OK);
            api.uninit();
            lib_close(lib);
        }
    }
    if (failures) {
        fprintf(stderr, "test_dlopen: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_dlopen: passed\n");
    return 0;
}
