/* Uses what shmidl generated from hello.idl with an installed shmcom: the
 * header's types and IID, and the proxy/stub table the program would
 * register. Prints what the install check expects. */
#include "hello.h"

#include <shmcom/proxystub.h>
#include <stdio.h>

int main(void)
{
    char iid[SHM_GUID_STRING_CHARS];
    const ShmProxyFileInfo *info = &hello_ProxyFileInfo;
    if (info->abi_version != SHM_PROXYSTUB_ABI || info->ninterfaces != 1)
        return 1;
    const ShmInterfaceInfo *itf = info->interfaces[0];
    ShmStringFromGUID2(itf->iid, iid, (int)sizeof(iid));
    printf("%s %s %u %u\n", itf->name, iid, (unsigned)itf->nmethods, (unsigned)sizeof(Greeting));
    return 0;
}
