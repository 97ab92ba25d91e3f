/*
 * tobj.h - test objects that count their references (as Wine's marshal
 * tests do), so a leaked or double-released reference shows where it
 * happens, and host threads that own objects in an apartment of their own.
 */
#ifndef SHMCOM_TOBJ_H
#define SHMCOM_TOBJ_H

#include "shstream.h"
#include "tsupport.h"

/* A heap object whose IUnknown counts references; it answers
 * QueryInterface for IUnknown and for the IIDs given at creation (with the
 * same pointer). Freed at zero references; `freed` then becomes true. It
 * counts the QueryInterface calls it refused and keeps the IID of the last
 * one (written by the thread that asked: read it once that call is over). */
typedef struct tobj {
    IUnknown IUnknown_iface;
    _Atomic int refs;
    const IID *iids[4];
    _Atomic int *freed_flag;
    _Atomic int refused;
    IID last_refused;
} tobj;

tobj *tobj_new(_Atomic int *freed_flag, const IID *extra_iid);
int tobj_refs(tobj *o);

/* A thread that joins an apartment (COINIT_*), marshals `object` as `iid`
 * into `stream` with `flags`, then serves its apartment (ShmCoProcessCalls
 * for an STA) and runs commands until told to stop. */
typedef struct thost thost;
thost *thost_start(DWORD coinit, IStream *stream, REFIID iid, IUnknown *object, DWORD flags);
/* The result of the host's marshal. */
HRESULT thost_marshal_hr(thost *h);
/* Runs fn(arg) on the host thread (in its apartment) and waits for it. */
void thost_run(thost *h, void (*fn)(void *), void *arg);
/* Stops the thread: uninitializes (unless skip_uninit) and joins it. */
void thost_stop(thost *h, bool skip_uninit);

/* Seeks a stream back to its start. */
void tstream_rewind(IStream *s);

#endif /* SHMCOM_TOBJ_H */
