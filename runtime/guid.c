/*
 * guid.c - GUID formatting, parsing and ordering, and the IIDs of the base
 * interfaces on POSIX (Windows programs get them from uuid.lib).
 */
#include "shmcom/shmcom.h"

#include <stdbool.h>
#include <string.h>

#ifndef _WIN32
const GUID GUID_NULL = {0, 0, 0, {0, 0, 0, 0, 0, 0, 0, 0}};
const IID IID_IUnknown = {0x00000000, 0x0000, 0x0000, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
const IID IID_ISequentialStream = {
    0x0c733a30, 0x2a1c, 0x11ce, {0xad, 0xe5, 0x00, 0xaa, 0x00, 0x44, 0x77, 0x3d}};
const IID IID_IStream = {0x0000000c, 0x0000, 0x0000, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};
#endif

static const char hexdigits[] = "0123456789ABCDEF";

static char *put_hex(char *out, unsigned long long v, int digits)
{
    for (int i = digits - 1; i >= 0; i--) {
        out[i] = hexdigits[v & 0xF];
        v >>= 4;
    }
    return out + digits;
}

int ShmStringFromGUID2(REFGUID guid, char *buf, int cch_max)
{
    if (!guid || !buf || cch_max < SHM_GUID_STRING_CHARS)
        return 0;
    char *p = buf;
    *p++ = '{';
    p = put_hex(p, guid->Data1, 8);
    *p++ = '-';
    p = put_hex(p, guid->Data2, 4);
    *p++ = '-';
    p = put_hex(p, guid->Data3, 4);
    *p++ = '-';
    p = put_hex(p, guid->Data4[0], 2);
    p = put_hex(p, guid->Data4[1], 2);
    *p++ = '-';
    for (int i = 2; i < 8; i++)
        p = put_hex(p, guid->Data4[i], 2);
    *p++ = '}';
    *p = '\0';
    return SHM_GUID_STRING_CHARS;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads `digits` hex digits; false if any is not one. */
static bool get_hex(const char *s, int digits, unsigned long long *v)
{
    unsigned long long x = 0;
    for (int i = 0; i < digits; i++) {
        int d = hexval(s[i]);
        if (d < 0)
            return false;
        x = (x << 4) | (unsigned)d;
    }
    *v = x;
    return true;
}

HRESULT ShmIIDFromString(const char *text, IID *iid)
{
    /* {01234567-89AB-CDEF-0123-456789ABCDEF}
     * 0        9    14   19   24           37 */
    static const int dash_at[] = {9, 14, 19, 24};
    unsigned long long v;
    GUID g;

    if (!iid)
        return E_INVALIDARG;
    memset(iid, 0, sizeof(*iid));
    if (!text)
        return S_OK; /* as IIDFromString(NULL) */
    size_t len = 0;
    while (len < SHM_GUID_STRING_CHARS && text[len] != '\0')
        len++;
    if (len != SHM_GUID_STRING_CHARS - 1)
        return E_INVALIDARG;
    if (text[0] != '{' || text[37] != '}')
        return E_INVALIDARG;
    for (int i = 0; i < 4; i++) {
        if (text[dash_at[i]] != '-')
            return E_INVALIDARG;
    }
    if (!get_hex(text + 1, 8, &v))
        return E_INVALIDARG;
    g.Data1 = (uint32_t)v;
    if (!get_hex(text + 10, 4, &v))
        return E_INVALIDARG;
    g.Data2 = (uint16_t)v;
    if (!get_hex(text + 15, 4, &v))
        return E_INVALIDARG;
    g.Data3 = (uint16_t)v;
    for (int i = 0; i < 8; i++) {
        const char *s = i < 2 ? text + 20 + 2 * i : text + 25 + 2 * (i - 2);
        if (!get_hex(s, 2, &v))
            return E_INVALIDARG;
        g.Data4[i] = (uint8_t)v;
    }
    *iid = g;
    return S_OK;
}

int ShmCompareGUID(REFGUID a, REFGUID b)
{
    if (a->Data1 != b->Data1)
        return a->Data1 < b->Data1 ? -1 : 1;
    if (a->Data2 != b->Data2)
        return a->Data2 < b->Data2 ? -1 : 1;
    if (a->Data3 != b->Data3)
        return a->Data3 < b->Data3 ? -1 : 1;
    return memcmp(a->Data4, b->Data4, sizeof(a->Data4));
}
