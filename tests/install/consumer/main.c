/* Uses public functions and exported data (IID_IStream) of an installed
 * shmcom, and a shared-memory stream through its IStream vtable; prints
 * the IID as the install check expects it. */
#define COBJMACROS
#include <shmcom/shmcom.h>

#include <stdio.h>
#include <string.h>

static int stream_round_trip(void)
{
    IStream *s = NULL, *o = NULL;
    STATSTG st;
    char name[SHM_MAX_NAME + 1], buf[8] = {0};
    ULONG n = 0;
    size_t i;
    if (ShmCreateStreamOnSharedMemory(NULL, 4096, 0, &s) != S_OK)
        return 1;
    if (IStream_Write(s, "hello", 5, NULL) != S_OK ||
        IStream_Stat(s, &st, STATFLAG_DEFAULT) != S_OK)
        return 1;
    for (i = 0; st.pwcsName[i] && i < SHM_MAX_NAME; i++)
        name[i] = (char)st.pwcsName[i];
    name[i] = '\0';
    ShmCoTaskMemFree(st.pwcsName);
    if (ShmOpenStreamOnSharedMemory(name, 0, &o) != S_OK ||
        IStream_Read(o, buf, sizeof(buf), &n) != S_OK || n != 5 || memcmp(buf, "hello", 5))
        return 1;
    IStream_Release(o);
    IStream_Release(s);
    return ShmOpenStreamOnSharedMemory(name, 0, &o) == SHM_E_NAME_NOT_FOUND ? 0 : 1;
}

int main(void)
{
    char buf[SHM_GUID_STRING_CHARS];
    IID iid;
    if (ShmStringFromGUID2(&IID_IStream, buf, sizeof(buf)) != 39)
        return 1;
    if (ShmIIDFromString(buf, &iid) != S_OK || !IsEqualIID(&iid, &IID_IStream))
        return 1;
    if (stream_round_trip() != 0)
        return 1;
    printf("%s %s\n", buf, ShmHresultName(RPC_E_SERVER_DIED));
    return 0;
}
