/*
 * proc.c - process identity, starting children, death notification with a
 * process HANDLE (signalled when the process exits).
 *
 * Identity is (pid, creation time from GetProcessTimes). A handle opened
 * on a pid is checked against the expected creation time after it is
 * opened: a match means the handle names our process, and the handle
 * itself then keeps the pid from being reused.
 *
 * opaque: the process HANDLE.
 */
#include "win_impl.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(HANDLE) <= sizeof(((shmc_plat_proc *)0)->opaque), "opaque");

/* The exit code TerminateProcess gives a killed process: 128 + SIGKILL,
 * what a POSIX parent sees, so that callers need not care. */
#define KILLED_EXIT_CODE 137

static HANDLE handle_of(const shmc_plat_proc *p)
{
    HANDLE h;
    memcpy(&h, p->opaque, sizeof(h));
    return h;
}

static void set_handle(shmc_plat_proc *p, HANDLE h)
{
    memcpy(p->opaque, &h, sizeof(h));
}

bool shmc_plat_proc_force_polling(bool on)
{
    (void)on; /* a process handle always works */
    return false;
}

static uint64_t creation_time(HANDLE h)
{
    FILETIME c, e, k, u;
    if (!GetProcessTimes(h, &c, &e, &k, &u))
        return 0;
    return ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
}

void shmc_plat_proc_self(shmc_plat_procid *id)
{
    /* cached: GetProcessTimes goes to the wineserver under Wine; racing
     * threads compute the same value */
    static _Atomic uint64_t cached_start;
    uint64_t st = atomic_load_explicit(&cached_start, memory_order_relaxed);
    if (!st) {
        st = creation_time(GetCurrentProcess());
        atomic_store_explicit(&cached_start, st, memory_order_relaxed);
    }
    id->pid = GetCurrentProcessId();
    id->start_time = st;
}

HRESULT shmc_plat_proc_query(uint64_t pid, shmc_plat_procid *id)
{
    if (!id)
        return E_INVALIDARG;
    memset(id, 0, sizeof(*id));
    if (pid == 0 || pid > MAXDWORD)
        return SHM_E_NAME_NOT_FOUND;
    HANDLE h = SHMC_ROUTE("OpenProcess",
                          OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid), NULL);
    if (!h) {
        DWORD err = GetLastError();
        return err == ERROR_INVALID_PARAMETER ? SHM_E_NAME_NOT_FOUND
                                              : shmc_plat_hresult_from_os((int)err);
    }
    id->pid = pid;
    id->start_time = creation_time(h);
    CloseHandle(h);
    return S_OK;
}

HRESULT shmc_plat_proc_open(shmc_plat_proc *p, const shmc_plat_procid *id)
{
    if (!p)
        return E_INVALIDARG;
    memset(p, 0, sizeof(*p));
    if (!id || id->pid == 0 || id->pid > MAXDWORD)
        return E_INVALIDARG;
    p->id = *id;
    const DWORD rights = SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION;
    HANDLE h = SHMC_ROUTE("OpenProcess",
                          OpenProcess(rights | PROCESS_TERMINATE, FALSE, (DWORD)id->pid), NULL);
    if (!h && GetLastError() == ERROR_ACCESS_DENIED)
        h = OpenProcess(rights, FALSE, (DWORD)id->pid);
    if (!h) {
        DWORD err = GetLastError();
        if (err != ERROR_INVALID_PARAMETER) { /* not "no such process" */
            memset(p, 0, sizeof(*p));
            return shmc_plat_hresult_from_os((int)err);
        }
    } else if (creation_time(h) != id->start_time || WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
        CloseHandle(h); /* the pid now names another process, or ours is gone */
        h = NULL;
    }
    if (!h) {
        p->exited = true;
        p->exit_code = -1;
        return S_OK;
    }
    set_handle(p, h);
    return S_OK;
}

/* Appends one argument quoted the way CommandLineToArgvW and the C
 * runtime split it again. */
static size_t quote_arg(WCHAR *out, const WCHAR *arg)
{
    size_t n = 0;
    bool needs = arg[0] == 0 || wcspbrk(arg, L" \t\n\v\"") != NULL;
    if (!needs) {
        size_t len = wcslen(arg);
        if (out)
            memcpy(out, arg, len * sizeof(WCHAR));
        return len;
    }
    if (out)
        out[n] = L'"';
    n++;
    for (const WCHAR *s = arg;; s++) {
        size_t slashes = 0;
        while (*s == L'\\') {
            s++;
            slashes++;
        }
        size_t count = *s == 0 ? slashes * 2 : *s == L'"' ? slashes * 2 + 1 : slashes;
        for (size_t i = 0; i < count; i++) {
            if (out)
                out[n] = L'\\';
            n++;
        }
        if (*s == 0)
            break;
        if (out)
            out[n] = *s;
        n++;
    }
    if (out)
        out[n] = L'"';
    n++;
    return n;
}

static WCHAR *build_command_line(const char *const argv[])
{
    size_t total = 1, argc = 0;
    WCHAR **wide = NULL;
    WCHAR *cmd = NULL;
    while (argv[argc])
        argc++;
    wide = calloc(argc, sizeof(*wide));
    if (!wide)
        return NULL;
    for (size_t i = 0; i < argc; i++) {
        wide[i] = shmc_win_utf16(argv[i]);
        if (!wide[i])
            goto out;
        total += quote_arg(NULL, wide[i]) + 1;
    }
    cmd = malloc(total * sizeof(WCHAR));
    if (!cmd)
        goto out;
    size_t n = 0;
    for (size_t i = 0; i < argc; i++) {
        if (i)
            cmd[n++] = L' ';
        n += quote_arg(cmd + n, wide[i]);
    }
    cmd[n] = 0;
out:
    for (size_t i = 0; i < argc; i++)
        free(wide[i]);
    free(wide);
    return cmd;
}

HRESULT shmc_plat_proc_spawn(shmc_plat_proc *p, const char *const argv[])
{
    if (!p)
        return E_INVALIDARG;
    memset(p, 0, sizeof(*p));
    if (!argv || !argv[0])
        return E_INVALIDARG;
    WCHAR *app = shmc_win_utf16(argv[0]);
    WCHAR *cmd = build_command_line(argv);
    if (!app || !cmd) {
        free(app);
        free(cmd);
        return E_OUTOFMEMORY;
    }
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    BOOL ok =
        SHMC_ROUTE("CreateProcessW",
                   CreateProcessW(app, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi), FALSE);
    DWORD err = GetLastError();
    free(app);
    free(cmd);
    if (!ok)
        return shmc_plat_hresult_from_os((int)err);
    CloseHandle(pi.hThread);
    p->is_child = true;
    p->id.pid = pi.dwProcessId;
    p->id.start_time = creation_time(pi.hProcess);
    set_handle(p, pi.hProcess);
    return S_OK;
}

HRESULT shmc_plat_proc_wait(shmc_plat_proc *p, uint32_t timeout_ms)
{
    if (!p || p->id.pid == 0)
        return E_INVALIDARG;
    if (p->exited)
        return S_OK;
    HANDLE h = handle_of(p);
    DWORD rc = WaitForSingleObject(h, timeout_ms);
    if (rc == WAIT_TIMEOUT)
        return S_FALSE;
    if (rc != WAIT_OBJECT_0)
        return shmc_win_last_error();
    p->exited = true;
    p->exit_code = -1;
    DWORD code;
    if (p->is_child && GetExitCodeProcess(h, &code))
        p->exit_code = (int)code;
    return S_OK;
}

HRESULT shmc_plat_proc_kill(shmc_plat_proc *p)
{
    if (!p || p->id.pid == 0)
        return E_INVALIDARG;
    if (p->exited)
        return S_OK;
    if (!TerminateProcess(handle_of(p), KILLED_EXIT_CODE)) {
        DWORD err = GetLastError();
        /* already exiting: done */
        if (WaitForSingleObject(handle_of(p), 0) == WAIT_OBJECT_0)
            return S_OK;
        return shmc_plat_hresult_from_os((int)err);
    }
    return S_OK;
}

intptr_t shmc_plat_proc_pollable(const shmc_plat_proc *p)
{
    if (!p || !handle_of(p))
        return -1;
    return (intptr_t)handle_of(p);
}

void shmc_plat_proc_close(shmc_plat_proc *p)
{
    if (!p)
        return;
    HANDLE h = handle_of(p);
    if (h)
        CloseHandle(h);
    memset(p, 0, sizeof(*p));
}

HRESULT shmc_plat_self_exe(char *buf, size_t size)
{
    WCHAR w[32768];
    if (!buf || size == 0)
        return E_INVALIDARG;
    DWORD n = GetModuleFileNameW(NULL, w, sizeof(w) / sizeof(w[0]));
    if (n == 0 || n >= sizeof(w) / sizeof(w[0]))
        return shmc_win_last_error();
    char *s = shmc_win_utf8(w);
    if (!s)
        return E_OUTOFMEMORY;
    size_t len = strlen(s);
    if (len >= size) {
        free(s);
        buf[0] = '\0';
        return E_NOT_SUFFICIENT_BUFFER;
    }
    memcpy(buf, s, len + 1);
    free(s);
    return S_OK;
}
