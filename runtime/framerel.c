/*
 * framerel.c - see framerel.h.
 */
#include "framerel.h"

#include <string.h>

void shmc_frame_release_records(const ShmInterfaceInfo *info, uint32_t method, const void *frame,
                                uint32_t size, bool is_reply, ShmItfMarshaler *m)
{
    if (!info || !frame || method < 3 || method >= info->nmethods)
        return;
    const ShmMethod *md = &info->methods[method];
    const unsigned char *f = frame;
    if (is_reply) {
        HRESULT hr;
        if (size < sizeof(hr))
            return;
        memcpy(&hr, f, sizeof(hr));
        if (FAILED(hr))
            return;
    }
    for (uint32_t i = 0; i < md->nparams; i++) {
        const ShmParam *p = &md->params[i];
        if (p->kind != SHM_PK_INTERFACE)
            continue;
        uint32_t slot = is_reply ? p->out_offset : p->in_offset;
        if (slot == SHM_NO_SLOT || slot > size || size - slot < sizeof(ShmFrameRef))
            continue;
        ShmFrameRef ref;
        memcpy(&ref, f + slot, sizeof(ref)); /* copied once: the frame may change */
        if (ref.offset == SHM_NULL_REF || ref.length == 0)
            continue;
        if (ref.offset > size || size - ref.offset < ref.length)
            continue;
        m->vtbl->ReleaseMarshalData(m, f + ref.offset, ref.length);
    }
}
