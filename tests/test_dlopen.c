/*
 * test_dlopen.c - a plugin host's way in: libshmcom.so loaded with dlopen
 * after the program started (not linked), as a host loads a plugin that
 * uses shmcom. The runtime's thread-local variables use the initial-exec
 * model (platform.h, SHMC_THREAD_LOCAL), whose block dlopen must find room
 * for in the static TLS that glibc keeps; threads started before and
 * after the load both get it. The program marshals a shared-memory stream
 * from the MTA to an STA thread started after the load, writes and reads
 * it through the proxy there, and checks the bytes in the MTA; after
 * dlclose the library is still loaded (it is linked -z nodelete) and works
 * again. A plain program, not linked with the runtime (argv[1]: the
 * library's path).
 */
#define COBJMACROS
#include <shmcom/shmcom.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

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
    const IID *iid_stream;
} api;

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
static void *sta_main(void *arg)
{
    IStream *carrier = arg;
    HRESULT hr = api.init(NULL, COINIT_APARTMENTTHREADED);
    CHECK(hr == S_OK);
    IStream *proxy = NULL;
    hr = api.unmarshal(carrier, api.iid_stream, (void **)&proxy);
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
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_dlopen PATH-OF-libshmcom.so\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    api.init = (init_fn)(uintptr_t)dlsym(lib, "ShmCoInitializeEx");
    api.uninit = (uninit_fn)(uintptr_t)dlsym(lib, "ShmCoUninitialize");
    api.create = (create_fn)(uintptr_t)dlsym(lib, "ShmCreateStreamOnSharedMemory");
    api.marshal = (marshal_fn)(uintptr_t)dlsym(lib, "ShmCoMarshalInterThreadInterfaceInStream");
    api.unmarshal = (unmarshal_fn)(uintptr_t)dlsym(lib, "ShmCoGetInterfaceAndReleaseStream");
    api.iid_stream = dlsym(lib, "IID_IStream");
    if (!api.init || !api.uninit || !api.create || !api.marshal || !api.unmarshal ||
        !api.iid_stream) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }

    /* this thread existed before the load: its TLS block is made now */
    CHECK(api.init(NULL, COINIT_MULTITHREADED) == S_OK);
    IStream *obj = NULL, *carrier = NULL;
    CHECK(api.create(NULL, 4096, 0, &obj) == S_OK && obj);
    if (obj)
        CHECK(api.marshal(api.iid_stream, (IUnknown *)obj, &carrier) == S_OK && carrier);
    if (carrier) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, sta_main, carrier) == 0);
        pthread_join(t, NULL);
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
    dlclose(lib);
    /* the library stays loaded (linked -z nodelete: its threads and
     * process-wide state may outlive the host's last call), and a host
     * that loads its plugin again gets a runtime that works */
    void *again = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
    CHECK(again != NULL);
    if (again) {
        CHECK(dlsym(again, "ShmCoInitializeEx") == (void *)(uintptr_t)api.init);
        CHECK(api.init(NULL, COINIT_MULTITHREADED) == S_OK);
        api.uninit();
        dlclose(again);
    }
    if (failures) {
        fprintf(stderr, "test_dlopen: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_dlopen: passed\n");
    return 0;
}
