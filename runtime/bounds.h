/*
 * bounds.h - every bound on what a caller or a peer process can make the
 * runtime allocate or start, in one place. docs/limits.md lists each with
 * what happens past it and the HRESULT a caller sees; the tests check
 * each at the limit and one past it.
 *
 * Some of these are also sizes of shared-memory layouts (xport.h pins
 * them with static assertions): changing one changes the transport's
 * layout, and SHMC_XPORT_VERSION with it.
 */
#ifndef SHMCOM_RUNTIME_BOUNDS_H
#define SHMCOM_RUNTIME_BOUNDS_H

#include <stddef.h>

/* ---- calls (in-process and cross-process alike) ------------------------ */

/*
 * The largest request or reply frame of one call: the fixed part, the
 * [in] or [out] arrays and strings, interface records, all together.
 *  - a caller whose [in] data (or the room its [out] arrays need in the
 *    reply) passes it: E_INVALIDARG, nothing sent;
 *  - a callee whose reply would pass it ([out] strings, arrays it
 *    allocates): RPC_E_SERVER_CANTMARSHAL_DATA, what it returned is freed;
 *  - a frame from a peer that passes it, or a request that asks for more
 *    [out] array room than a reply can hold: RPC_E_INVALID_DATA, before
 *    anything is allocated or mapped for it.
 */
#define SHMC_MAX_FRAME (256u << 20)

/* MTA worker threads of a process; further calls wait for a free one.
 * A call that finds the MTA with no worker, and none can be started, gives
 * up with RPC_E_OUT_OF_RESOURCES. */
#define SHMC_MTA_MAX_WORKERS 64u

/* ---- cross-process transport --------------------------------------------- */

/* Call slots of a connection: calls one client process has in flight to
 * one server at once (and receiver threads the server runs for it). The
 * 17th concurrent call waits for a free slot, within its call timeout
 * (RPC_E_TIMEOUT). Part of the connection region's layout. */
#define SHMC_CONN_SLOTS 16

/* Connect slots of an endpoint: connections being set up at once. A
 * client that finds them all taken retries for SHMC_ACCEPT_TIMEOUT_MS.
 * Part of the endpoint region's layout. */
#define SHMC_EP_SLOTS 32

/* How long a client waits for a server to take its connection. */
#define SHMC_ACCEPT_TIMEOUT_MS 10000u

/* Connections a server serves for one client process (a client needs one,
 * two while its threads race to connect); the next is refused with
 * RPC_E_SERVERCALL_REJECTED. */
#define SHMC_MAX_CONNS_PER_CLIENT 4u

/* Records a server keeps outstanding for one client process, all its
 * connections together: those the client asked it to make (a proxy
 * marshaled on for a third process) and the objects in replies the client
 * has not unmarshaled yet. The next one is refused with
 * RPC_E_OUT_OF_RESOURCES (an object in a reply past it is released at
 * once, and the client's unmarshal of it fails). */
#define SHMC_CONN_MAX_MADE 65536u

/* Bulk regions (frames larger than a slot's area) are kept for a slot's
 * next large frame up to this size; larger ones are let go after the call. */
#define SHMC_BULK_KEEP_MAX_DATA ((size_t)32u << 20)

#endif /* SHMCOM_RUNTIME_BOUNDS_H */
