/* Uses public functions and exported data (IID_IStream) of an installed
 * shmcom; prints the IID as the install check expects it. */
#include <shmcom/shmcom.h>

#include <stdio.h>

int main(void)
{
    char buf[SHM_GUID_STRING_CHARS];
    IID iid;
    if (ShmStringFromGUID2(&IID_IStream, buf, sizeof(buf)) != 39)
        return 1;
    if (ShmIIDFromString(buf, &iid) != S_OK || !IsEqualIID(&iid, &IID_IStream))
        return 1;
    printf("%s %s\n", buf, ShmHresultName(RPC_E_SERVER_DIED));
    return 0;
}
