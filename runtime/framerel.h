/*
 * framerel.h - releasing the interface records a frame carries when nobody
 * will read the frame (a call abandoned by its caller, a reply that came
 * too late), using only the method's tables from proxystub.h.
 */
#ifndef SHMCOM_RUNTIME_FRAMEREL_H
#define SHMCOM_RUNTIME_FRAMEREL_H

#include "shmcom/proxystub.h"

#include <stdbool.h>

/*
 * For each interface parameter that travels in this frame (the request if
 * !is_reply, else the reply), calls m->ReleaseMarshalData on its record.
 * The frame is checked like any incoming frame: records whose reference
 * points outside it are skipped. A reply's records are released only if
 * the reply's HRESULT is a success (a failed method sends none).
 */
void shmc_frame_release_records(const ShmInterfaceInfo *info, uint32_t method, const void *frame,
                                uint32_t size, bool is_reply, ShmItfMarshaler *m);

#endif /* SHMCOM_RUNTIME_FRAMEREL_H */
