/*
 * sample_os.c - see sample_os.h. One section per operating system.
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L
#endif

#define COBJMACROS
#include "sample_os.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thread's entry point and argument, for the OS's own signature. */
typedef struct thread_start {
    void (*fn)(void *);
    void *arg;
} thread_start;

#ifdef _WIN32

#include <windows.h>

/* ---- Windows ---------------------------------------------------------------- */

static WCHAR *utf16(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    WCHAR *w = n > 0 ? malloc((size_t)n * sizeof(WCHAR)) : NULL;
    if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

/* Appends one argument to a command line, quoted the way the C runtime
 * splits it again (backslashes double only before a quote). Returns the
 * characters it wrote (or would write, with out NULL). */
static size_t quote_arg(WCHAR *out, const WCHAR *arg)
{
    size_t n = 0;
    if (arg[0] && !wcspbrk(arg, L" \t\n\v\"")) {
        n = wcslen(arg);
        if (out)
            memcpy(out, arg, n * sizeof(WCHAR));
        return n;
    }
#define PUT(c)            \
    do {                  \
        if (out)          \
            out[n] = (c); \
        n++;              \
    } while (0)
    PUT(L'"');
    for (const WCHAR *s = arg;; s++) {
        size_t slashes = 0;
        while (*s == L'\\') {
            s++;
            slashes++;
        }
        size_t count = *s == 0 ? slashes * 2 : *s == L'"' ? slashes * 2 + 1 : slashes;
        for (size_t i = 0; i < count; i++)
            PUT(L'\\');
        if (*s == 0)
            break;
        PUT(*s);
    }
    PUT(L'"');
#undef PUT
    return n;
}

int sample_proc_start(sample_proc *p, const char *const argv[])
{
    memset(p, 0, sizeof(*p));
    size_t argc = 0, total = 1;
    while (argv[argc])
        argc++;
    WCHAR **wide = calloc(argc + 1, sizeof(*wide));
    WCHAR *cmd = NULL;
    int rc = -1;
    if (!wide)
        return -1;
    for (size_t i = 0; i < argc; i++) {
        if (!(wide[i] = utf16(argv[i])))
            goto out;
        total += quote_arg(NULL, wide[i]) + 1;
    }
    if (!(cmd = malloc(total * sizeof(WCHAR))))
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < argc; i++) {
        if (i)
            cmd[n++] = L' ';
        n += quote_arg(cmd + n, wide[i]);
    }
    cmd[n] = 0;
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    if (CreateProcessW(wide[0], cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
        CloseHandle(pi.hThread);
        p->handle = (intptr_t)pi.hProcess;
        p->pid = pi.dwProcessId;
        rc = 0;
    }
out:
    for (size_t i = 0; i < argc; i++)
        free(wide[i]);
    free(wide);
    free(cmd);
    return rc;
}

int sample_proc_wait(sample_proc *p, uint32_t timeout_ms)
{
    if (p->exited)
        return 1;
    if (!p->handle)
        return -1;
    DWORD rc = WaitForSingleObject((HANDLE)p->handle, timeout_ms);
    if (rc == WAIT_TIMEOUT)
        return 0;
    DWORD code = 0;
    if (rc != WAIT_OBJECT_0 || !GetExitCodeProcess((HANDLE)p->handle, &code))
        return -1;
    p->exited = 1;
    p->exit_code = (int)code;
    return 1;
}

void sample_proc_kill(sample_proc *p)
{
    if (!p->exited && p->handle)
        TerminateProcess((HANDLE)p->handle, 137); /* 128 + SIGKILL, as on POSIX */
}

void sample_proc_close(sample_proc *p)
{
    if (p->handle)
        CloseHandle((HANDLE)p->handle);
    p->handle = 0;
}

int sample_sibling_path(char *buf, size_t size, const char *name)
{
    WCHAR w[MAX_PATH * 4];
    DWORD n = GetModuleFileNameW(NULL, w, sizeof(w) / sizeof(w[0]));
    if (n == 0 || n >= sizeof(w) / sizeof(w[0]))
        return -1;
    int len = WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, (int)size, NULL, NULL);
    if (len <= 0)
        return -1;
    char *slash = strrchr(buf, '\\');
    char *fslash = strrchr(buf, '/');
    if (fslash > slash)
        slash = fslash;
    size_t dir = slash ? (size_t)(slash - buf + 1) : 0;
    if (dir + strlen(name) + 5 > size)
        return -1;
    snprintf(buf + dir, size - dir, "%s.exe", name);
    return 0;
}

unsigned long sample_self_pid(void)
{
    return GetCurrentProcessId();
}

static DWORD WINAPI thread_main(void *arg)
{
    thread_start s = *(thread_start *)arg;
    free(arg);
    s.fn(s.arg);
    return 0;
}

int sample_thread_start(sample_thread *t, void (*fn)(void *), void *arg)
{
    thread_start *s = malloc(sizeof(*s));
    if (!s)
        return -1;
    s->fn = fn;
    s->arg = arg;
    HANDLE h = CreateThread(NULL, 0, thread_main, s, 0, NULL);
    if (!h) {
        free(s);
        return -1;
    }
    t->handle = (intptr_t)h;
    return 0;
}

void sample_thread_join(sample_thread *t)
{
    WaitForSingleObject((HANDLE)t->handle, INFINITE);
    CloseHandle((HANDLE)t->handle);
    t->handle = 0;
}

double sample_now_ms(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;
    if (!freq.QuadPart)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart * 1000.0 / (double)freq.QuadPart;
}

void sample_sleep_ms(uint32_t ms)
{
    Sleep(ms);
}

#else /* POSIX */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- POSIX ------------------------------------------------------------------- */

int sample_proc_start(sample_proc *p, const char *const argv[])
{
    memset(p, 0, sizeof(*p));
    pid_t pid;
    if (posix_spawn(&pid, argv[0], NULL, NULL, (char *const *)argv, environ) != 0)
        return -1;
    p->handle = pid;
    p->pid = (unsigned long)pid;
    return 0;
}

int sample_proc_wait(sample_proc *p, uint32_t timeout_ms)
{
    if (p->handle <= 0)
        return p->exited ? 1 : -1; /* waitpid(0 or -1) would wait for any child */
    /* waitpid has no timeout: look every millisecond (a pidfd would do
     * better on Linux; this works on every POSIX system) */
    double start = sample_now_ms();
    while (!p->exited) {
        int status;
        pid_t r = waitpid((pid_t)p->handle, &status, WNOHANG);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r == (pid_t)p->handle) {
            p->exited = 1;
            p->exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                           : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                                 : -1;
            break;
        }
        if (timeout_ms != UINT32_MAX && sample_now_ms() - start >= timeout_ms)
            return 0;
        sample_sleep_ms(1);
    }
    return 1;
}

void sample_proc_kill(sample_proc *p)
{
    if (!p->exited && p->handle > 0) /* not yet reaped, so the pid is still ours */
        kill((pid_t)p->handle, SIGKILL);
}

void sample_proc_close(sample_proc *p)
{
    p->handle = 0;
}

int sample_sibling_path(char *buf, size_t size, const char *name)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n <= 0 || (size_t)n >= size - 1)
        return -1;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    size_t dir = slash ? (size_t)(slash - buf + 1) : 0;
    if (dir + strlen(name) + 1 > size)
        return -1;
    snprintf(buf + dir, size - dir, "%s", name);
    return 0;
}

unsigned long sample_self_pid(void)
{
    return (unsigned long)getpid();
}

static void *thread_main(void *arg)
{
    thread_start s = *(thread_start *)arg;
    free(arg);
    s.fn(s.arg);
    return NULL;
}

int sample_thread_start(sample_thread *t, void (*fn)(void *), void *arg)
{
    thread_start *s = malloc(sizeof(*s));
    pthread_t th;
    if (!s)
        return -1;
    s->fn = fn;
    s->arg = arg;
    if (pthread_create(&th, NULL, thread_main, s) != 0) {
        free(s);
        return -1;
    }
    t->handle = (intptr_t)th;
    return 0;
}

void sample_thread_join(sample_thread *t)
{
    pthread_join((pthread_t)t->handle, NULL);
    t->handle = 0;
}

double sample_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void sample_sleep_ms(uint32_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

#endif

/* ---- shmcom helpers ------------------------------------------------------------ */

HRESULT sample_stream_name(IStream *stream, char *buf, size_t size)
{
    STATSTG st;
    memset(&st, 0, sizeof(st));
    HRESULT hr = IStream_Stat(stream, &st, STATFLAG_DEFAULT);
    if (FAILED(hr))
        return hr;
    size_t i = 0;
    for (; st.pwcsName && st.pwcsName[i] && i + 1 < size; i++)
        buf[i] = (char)st.pwcsName[i]; /* ASCII by construction */
    buf[i] = '\0';
    hr = st.pwcsName && st.pwcsName[i] == 0 ? S_OK : E_NOT_SUFFICIENT_BUFFER;
    ShmCoTaskMemFree(st.pwcsName);
    return hr;
}

const char *sample_hr(HRESULT hr)
{
    static _Thread_local char buf[16];
    const char *name = ShmHresultName(hr);
    if (name)
        return name;
    snprintf(buf, sizeof(buf), "0x%08lx", (unsigned long)(uint32_t)hr);
    return buf;
}
