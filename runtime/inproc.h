/*
 * inproc.h - the in-process side of the marshaler: records written and read
 * from memory buffers (no stream), and the ShmItfMarshaler that the proxy
 * and stub engine uses for interface pointers in calls between apartments
 * of this process.
 */
#ifndef SHMCOM_RUNTIME_INPROC_H
#define SHMCOM_RUNTIME_INPROC_H

#include "objref.h"
#include "shmcom/proxystub.h"

extern ShmItfMarshaler shmc_inproc_marshaler;

/* Marshals punk as riid into rec (see ShmCoMarshalInterface). */
HRESULT shmc_marshal_record(shmc_objref *rec, REFIID riid, IUnknown *punk, DWORD mshctx,
                            DWORD mshlflags);
/* Unmarshals a validated record (see ShmCoUnmarshalInterface). */
HRESULT shmc_unmarshal_record(const shmc_objref *rec, REFIID riid, void **ppv);
/* Releases what a validated record holds (see ShmCoReleaseMarshalData). */
HRESULT shmc_release_record(const shmc_objref *rec);

#endif /* SHMCOM_RUNTIME_INPROC_H */
