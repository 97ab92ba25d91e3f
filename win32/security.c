/*
 * security.c - owner-only access for named objects, object names, and
 * UTF-8/UTF-16 conversion.
 *
 * Every named object (file mappings, semaphores) is created with a DACL
 * holding one ACE: GENERIC_ALL for the current user's SID. Other users
 * (and other logon sessions' services) get nothing. The descriptor is
 * built once per process; the user's SID cannot change under it.
 */
#include "win_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static INIT_ONCE sa_once = INIT_ONCE_STATIC_INIT;
static SECURITY_ATTRIBUTES sa;
static SECURITY_DESCRIPTOR sd;
static HRESULT sa_hr;
static unsigned char user_buf[256]; /* TOKEN_USER with its SID */
static unsigned char acl_buf[256];

static PSID user_sid(void)
{
    return ((TOKEN_USER *)(void *)user_buf)->User.Sid;
}

static BOOL CALLBACK build_sa(PINIT_ONCE once, PVOID param, PVOID *ctx)
{
    (void)once;
    (void)param;
    (void)ctx;
    HANDLE tok = NULL;
    DWORD len = 0;
    ACL *acl = (ACL *)(void *)acl_buf;

    sa_hr = E_FAIL;
    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
        sa_hr = shmc_win_last_error();
        return TRUE;
    }
    BOOL ok = GetTokenInformation(tok, TokenUser, user_buf, sizeof(user_buf), &len);
    CloseHandle(tok);
    if (!ok) {
        sa_hr = shmc_win_last_error();
        return TRUE;
    }
    DWORD acl_len = (DWORD)(sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) - sizeof(DWORD) +
                            GetLengthSid(user_sid()));
    if (acl_len > sizeof(acl_buf) || !InitializeAcl(acl, acl_len, ACL_REVISION) ||
        !AddAccessAllowedAce(acl, ACL_REVISION, GENERIC_ALL, user_sid()) ||
        !InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
        !SetSecurityDescriptorDacl(&sd, TRUE, acl, FALSE)) {
        sa_hr = acl_len > sizeof(acl_buf) ? E_UNEXPECTED : shmc_win_last_error();
        return TRUE;
    }
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = &sd;
    sa.bInheritHandle = FALSE;
    sa_hr = S_OK;
    return TRUE;
}

HRESULT shmc_win_owner_only(SECURITY_ATTRIBUTES **out)
{
    *out = NULL;
    InitOnceExecuteOnce(&sa_once, build_sa, NULL, NULL);
    if (FAILED(sa_hr))
        return sa_hr;
    *out = &sa;
    return S_OK;
}

HRESULT shmc_win_is_owner_only(HANDLE h, bool *owner_only)
{
    SECURITY_ATTRIBUTES *unused;
    *owner_only = false;
    HRESULT hr = shmc_win_owner_only(&unused); /* loads the user's SID */
    if (FAILED(hr))
        return hr;
    DWORD need = 0;
    GetKernelObjectSecurity(h, DACL_SECURITY_INFORMATION, NULL, 0, &need);
    if (need == 0)
        return shmc_win_last_error();
    PSECURITY_DESCRIPTOR psd = malloc(need);
    if (!psd)
        return E_OUTOFMEMORY;
    BOOL present = FALSE, defaulted = FALSE;
    ACL *dacl = NULL;
    if (!GetKernelObjectSecurity(h, DACL_SECURITY_INFORMATION, psd, need, &need) ||
        !GetSecurityDescriptorDacl(psd, &present, &dacl, &defaulted)) {
        hr = shmc_win_last_error();
        free(psd);
        return hr;
    }
    /* a NULL DACL grants everyone everything */
    bool only = present && dacl && dacl->AceCount > 0;
    for (WORD i = 0; only && i < dacl->AceCount; i++) {
        void *ace = NULL;
        if (!GetAce(dacl, i, &ace)) {
            only = false;
            break;
        }
        ACE_HEADER *head = ace;
        if (head->AceType == ACCESS_DENIED_ACE_TYPE)
            continue;
        if (head->AceType != ACCESS_ALLOWED_ACE_TYPE ||
            !EqualSid((PSID) & ((ACCESS_ALLOWED_ACE *)ace)->SidStart, user_sid()))
            only = false;
    }
    free(psd);
    *owner_only = only;
    return S_OK;
}

HRESULT shmc_win_object_name(WCHAR out[SHMC_WIN_NAME_MAX], const char *name, const char *suffix)
{
    char buf[SHMC_WIN_NAME_MAX];
    HRESULT hr = shmc_plat_region_name_check(name);
    if (FAILED(hr))
        return hr;
    int n = snprintf(buf, sizeof(buf), "Local\\shmcom-%s%s", name, suffix ? suffix : "");
    if (n <= 0 || n >= (int)sizeof(buf))
        return E_INVALIDARG;
    for (int i = 0; i <= n; i++)
        out[i] = (WCHAR)(unsigned char)buf[i]; /* ASCII by the name check */
    return S_OK;
}

WCHAR *shmc_win_utf16(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0)
        return NULL;
    WCHAR *w = malloc((size_t)n * sizeof(WCHAR));
    if (w && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

char *shmc_win_utf8(const WCHAR *w)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (n <= 0)
        return NULL;
    char *s = malloc((size_t)n);
    if (s && WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL) != n) {
        free(s);
        s = NULL;
    }
    return s;
}
