#!/usr/bin/env python3
"""make_corpus.py - writes the seed corpora of the fuzzers (tests/fuzz/corpus_*).

    python3 tests/fuzz/make_corpus.py [OUT_DIR]    (default: tests/fuzz)

Run it again after changing an input format (the layouts are described at
the top of each fuzz_*.c); the output is deterministic. corpus_parser holds
hand-written IDL files and is not touched. The runtime fuzzers' seeds name
live objects through tokens ("FZoxid#1", ...: tests/fuzz/fuzz_rt.h), which
the fuzzer replaces with the real ids before use.
"""
import os
import struct
import sys


def guid(text):
    p = text.split('-')
    return struct.pack('<IHH', int(p[0], 16), int(p[1], 16), int(p[2], 16)) + \
        bytes.fromhex(p[3] + p[4])


IID_IUNKNOWN = guid('00000000-0000-0000-c000-000000000046')
IID_ICALLBACK = guid('6d4a7e90-2b1c-4f3e-9a8d-1c2b3a4d5e01')
IID_ICALLEE = guid('6d4a7e90-2b1c-4f3e-9a8d-1c2b3a4d5e02')

NORMAL, TABLESTRONG, TABLEWEAK = 0, 1, 2
LOCAL, INPROC = 0, 3
# fuzz_rt.h: record k of object o is o * 5 + k
REC_IID = [IID_IUNKNOWN, IID_ICALLEE, IID_ICALLBACK, IID_ICALLEE, IID_ICALLEE]
REC_FLAGS = [TABLESTRONG, TABLESTRONG, TABLESTRONG, TABLEWEAK, NORMAL]
PEER_ENDPOINT = b'fzpeer'


def tok(field, k):
    return b'FZ' + field + b'#' + str(k).encode()


def record(k, ctx=INPROC, endpoint=b'', peer=False, iid=None, flags=None):
    """The objref of fuzz_rt's record k (objref.h), by tokens."""
    size = 160 if endpoint else 96
    who = b'FZPpid__FZPstart' if peer else b'FZpid___FZstart_'
    r = b'SHMR' + struct.pack('<HHII', 1, size, REC_FLAGS[k % 5] if flags is None else flags, ctx)
    r += REC_IID[k % 5] if iid is None else iid
    r += who + tok(b'oxid', k) + tok(b'oid_', k) + tok(b'ipdL', k) + tok(b'ipdH', k)
    r += tok(b'nonc', k) + struct.pack('<II', len(endpoint), 0)
    if endpoint:
        r += endpoint.ljust(64, b'\0')
    return r


def peer_record(iid, oid=0x77):
    """A record of an object of the peer process (fuzz_rt.h: fz_peer)."""
    r = b'SHMR' + struct.pack('<HHII', 1, 160, NORMAL, LOCAL) + iid + b'FZPpid__FZPstart'
    r += struct.pack('<QQ', 0x1234, oid) + b'peer-object-ipid' + struct.pack('<Q', 0x99)
    r += struct.pack('<II', len(PEER_ENDPOINT), 0) + PEER_ENDPOINT.ljust(64, b'\0')
    return r


def pad8(b):
    return b + b'\0' * (-len(b) % 8)


def ref(off, length):
    return struct.pack('<II', off, length)


NULL_REF = ref(0xFFFFFFFF, 0)


def write(out, name, files):
    d = os.path.join(out, 'corpus_' + name)
    os.makedirs(d, exist_ok=True)
    for old in os.listdir(d):
        os.remove(os.path.join(d, old))
    for fname, data in files.items():
        with open(os.path.join(d, fname), 'wb') as f:
            f.write(data)


# ---- fuzz_objref: ctl, sel, [iid], stream bytes -----------------------------------------------

def objref_corpus():
    c = {}
    for o in (0, 1):
        for k in range(5):
            n = o * 5 + k
            c['rec%d' % n] = bytes([0x00, 0]) + record(n) * 2
            c['rec%d_sta' % n] = bytes([0x00, 8]) + record(n) * 2
    c['release_then_unmarshal'] = bytes([0x01, 2]) + record(4) * 2
    c['get_and_release'] = bytes([0x02, 2]) + record(1)
    c['remarshal_sta'] = bytes([0x03, 8 | 2]) + record(1)
    c['remarshal_mta_in_sta'] = bytes([0x03, 8 | 0]) + record(6)
    c['local'] = bytes([0x00, 2]) + record(1, ctx=LOCAL, endpoint=b'ep.1.0000000000000000')
    c['peer'] = bytes([0x00, 2]) + peer_record(IID_ICALLEE)
    c['peer_sta'] = bytes([0x00, 8 | 2]) + peer_record(IID_ICALLEE)
    c['peer_release'] = bytes([0x01, 0]) + peer_record(IID_ICALLBACK)
    c['peer_remarshal_local'] = bytes([0x03, 0x40 | 2]) + peer_record(IID_ICALLEE)
    c['peer_remarshal_table'] = bytes([0x03, 0x10 | 2]) + peer_record(IID_ICALLEE)
    c['remarshal_weak_sta'] = bytes([0x03, 0x20 | 8 | 2]) + record(1)
    c['remarshal_local'] = bytes([0x03, 0x40 | 2]) + record(6)
    c['other_process'] = bytes([0x00, 0]) + record(1, ctx=LOCAL, endpoint=b'nobody')
    c['given_iid'] = bytes([0x00, 7]) + IID_ICALLBACK + record(1)
    c['short'] = bytes([0x00, 0]) + record(1)[:50]
    return c


# ---- fuzz_shmstream: mapped - 64, ctl, 128 bytes of header, operations -------------------------

def stream_hdr(cap, doff=4096, size=0, state=0, hdr_size=128):
    h = struct.pack('<QIIQQQII', 0x67726d4f434d4853, 1, 1, 0, 0, 7, state, hdr_size)
    return (h + struct.pack('<QQQ', cap, doff, size)).ljust(128, b'\0')


def st_seed(mapped, ctl, hdr, ops):
    return struct.pack('<HB', mapped - 64, ctl) + hdr + ops


def op_read(i, n):
    return bytes([0 | i << 5]) + struct.pack('<H', n)


def op_write(i, data):
    return bytes([1 | i << 5]) + struct.pack('<H', len(data)) + data


def op_seek(i, move, origin):
    return bytes([2 | i << 5]) + struct.pack('<qB', move, origin)


def op_setsize(i, size):
    return bytes([3 | i << 5, 1]) + struct.pack('<Q', size)


def op_copyto(i, j, cb):
    return bytes([4 | i << 5, j]) + struct.pack('<I', cb)


def op_poke(off, data):
    return bytes([7, off, len(data)]) + data


def shmstream_corpus():
    c = {}
    c['write_read'] = st_seed(8192, 1, stream_hdr(4096),
                              op_write(0, b'hello world') + op_seek(0, 0, 0) + op_read(0, 100) +
                              bytes([6, 0]))
    c['clone_copy'] = st_seed(8192, 1, stream_hdr(4096, size=16),
                              bytes([5, 1]) + op_write(1, b'abc') + op_copyto(0, 1, 100) +
                              op_setsize(1, 3) + bytes([11, 0, 0, 0, 0]))
    c['peer_size'] = st_seed(12288, 5, stream_hdr(8192, size=100),
                             op_read(0, 50) + op_poke(64, struct.pack('<Q', 1 << 40)) +
                             op_read(0, 10) + bytes([9]) + bytes([14, 2]))
    c['peer_geometry'] = st_seed(12288, 1, stream_hdr(8192),
                                 op_write(0, b'x' * 64) + op_poke(48, struct.pack('<Q', 12288)) +
                                 op_write(0, b'y') + op_poke(48, struct.pack('<Q', 8192)) +
                                 op_seek(0, -10, 2) + op_read(0, 20))
    c['seek_end'] = st_seed(8192, 1, stream_hdr(4096, size=4096),
                            op_seek(0, -1, 2) + op_read(0, 8) + op_seek(0, 1 << 62, 1) +
                            op_write(0, b'z') + op_setsize(0, 0) + bytes([13, 5, 12, 1]))
    c['closed'] = st_seed(8192, 1, stream_hdr(4096, state=1), op_read(0, 1))
    c['not_owner'] = st_seed(8192, 0, stream_hdr(4096), op_read(0, 1))
    c['small_map'] = st_seed(4096, 1, stream_hdr(4096), op_read(0, 10))
    c['bad_hdr'] = st_seed(8192, 3, stream_hdr(4096, doff=100, hdr_size=64), op_read(0, 10))
    return c


# ---- fuzz_xport ----------------------------------------------------------------------------

OP_METHOD, OP_CONSUME, OP_RELEASE_RECORD, OP_ADD_RECORD, OP_QI, OP_RELEASE = 1, 2, 3, 4, 5, 6
SEL_RAW, SEL_LAST = 10, 11
# ICallee's vtable slots
(M_NULL, M_ADD, M_SCALARS, M_FAIL, M_ECHO, M_SUM, M_FILL, M_REVERSE, M_MAKEARRAY, M_MOVE,
 M_CALL, M_GETCHILD, M_GETTAG, M_QUERY, M_WAIT, M_GETTHREADID, M_GETCOUNT) = range(3, 20)


def req(kind, method, sel, frame, slot=0, early=False, bulk=False, raw_ipid=b'', abandon=False):
    ctl = slot << 4 | (1 if early else 0) | (2 if bulk else 0)
    sel |= 0x80 if abandon else 0
    return bytes([ctl, kind, method, sel]) + raw_ipid + struct.pack('<H', len(frame)) + frame


def op_record(k, nonce=None):
    return (tok(b'oxid', k) + tok(b'oid_', k) + (nonce or tok(b'nonc', k)) + tok(b'ipdL', k) +
            tok(b'ipdH', k) + REC_IID[k % 5] + struct.pack('<II', REC_FLAGS[k % 5], 0))


def op_ref(k, iid=IID_IUNKNOWN, count=0, flags=0):
    return tok(b'ipdL', k) + tok(b'ipdH', k) + iid + struct.pack('<II', count, flags)


def echo_frame(text):
    return pad8(ref(8, len(text) + 1)) + pad8(text + b'\0')


def sum_frame(values):
    fixed = pad8(struct.pack('<I', len(values)) + ref(16, 4 * len(values)))
    return fixed + b''.join(struct.pack('<i', v) for v in values)


def server(*reqs):
    return b'\0' + b''.join(reqs)


def xport_server_corpus():
    c = {}
    for sel, name in ((1, 'mta'), (6, 'sta')):
        c['null_' + name] = server(req(OP_METHOD, M_NULL, sel, b''))
        c['add_' + name] = server(req(OP_METHOD, M_ADD, sel, struct.pack('<ii', 2, 3)))
        c['echo_' + name] = server(req(OP_METHOD, M_ECHO, sel, echo_frame(b'hello')))
        c['sum_' + name] = server(req(OP_METHOD, M_SUM, sel, sum_frame([1, 2, 3])))
        c['fill_' + name] = server(req(OP_METHOD, M_FILL, sel, struct.pack('<I', 40)))
        c['reverse_' + name] = server(req(OP_METHOD, M_REVERSE, sel,
                                          pad8(struct.pack('<I', 2) + ref(16, 8)) +
                                          struct.pack('<ii', 1, 2)))
        c['makearray_' + name] = server(req(OP_METHOD, M_MAKEARRAY, sel, struct.pack('<I', 3)))
        c['move_' + name] = server(req(OP_METHOD, M_MOVE, sel, bytes(range(48))))
        c['getchild_' + name] = server(req(OP_METHOD, M_GETCHILD, sel, struct.pack('<i', 9)))
        c['query_' + name] = server(req(OP_METHOD, M_QUERY, sel, IID_ICALLBACK))
        cb = record(2)
        c['call_' + name] = server(req(OP_METHOD, M_CALL, sel,
                                       pad8(ref(16, len(cb)) + struct.pack('<i', 4)) + cb))
    c['call_normal_early'] = server(req(OP_METHOD, M_CALL, 1,
                                        pad8(ref(16, 96) + struct.pack('<i', 4)) +
                                        record(4, iid=IID_ICALLBACK), early=True))
    c['getchild_given_up'] = server(req(OP_METHOD, M_GETCHILD, 1, struct.pack('<i', 9),
                                        abandon=True))
    c['query_sta_given_up'] = server(req(OP_METHOD, M_QUERY, 6, IID_ICALLBACK, abandon=True))
    c['echo_bulk'] = server(req(OP_METHOD, M_ECHO, 1, echo_frame(b'in a bulk region'), bulk=True))
    c['notify'] = server(req(OP_METHOD, 3, 2, struct.pack('<i', 5)))
    c['consume_normal'] = server(req(OP_CONSUME, 0, 4, op_record(4)),
                                 req(OP_METHOD, M_GETTAG, 4, b''),
                                 req(OP_RELEASE, 0, 4, op_ref(4, count=1)))
    c['consume_sta_twice'] = server(req(OP_CONSUME, 0, 9, op_record(9)),
                                    req(OP_CONSUME, 0, 9, op_record(9), slot=3))
    c['release_record'] = server(req(OP_RELEASE_RECORD, 0, 4, op_record(4)))
    c['add_then_release_record'] = server(
        req(OP_ADD_RECORD, 0, 1, op_ref(1, flags=TABLESTRONG)),
        req(OP_RELEASE_RECORD, 0, 1, op_record(1, nonce=b'FZlast0_')[:40] +
            IID_ICALLEE + struct.pack('<II', TABLESTRONG, 0)))
    c['qi_then_call'] = server(req(OP_QI, 0, 1, op_ref(1, iid=IID_ICALLBACK)),
                               req(OP_METHOD, 3, SEL_LAST, struct.pack('<i', 7), slot=5))
    c['qi_sta'] = server(req(OP_QI, 0, 6, op_ref(6, iid=IID_ICALLBACK)))
    c['release_all'] = server(req(OP_RELEASE, 0, 1, op_ref(1, count=100)),
                              req(OP_METHOD, M_NULL, 1, b''))
    c['unknown_kind'] = server(req(9, 0, 1, b''))
    c['bad_method'] = server(req(OP_METHOD, 40, 1, b''))
    c['raw_ipid'] = server(req(OP_METHOD, M_NULL, SEL_RAW, b'', raw_ipid=b'not-a-real-ipid!'))
    return c


def client(method, a=0, b=0, qi=False, cb=False, timeout=False, script=b''):
    ctl = 1 | method << 1 | (0x40 if qi else 0) | (0x80 if cb else 0)
    return bytes([ctl]) + struct.pack('<IIB', a, b, 1 if timeout else 0) + script


HOLD = 0x10


def answer(data, where=0, status=0, hold=False):
    """A script entry: the reply in the slot's area (0), inline (1) or in a bulk region (2)."""
    return bytes([where | (HOLD if hold else 0)]) + struct.pack('<iH', status, len(data)) + data


HONEST = bytes([3])


def xport_client_corpus():
    c = {}
    c['null'] = client(0)
    c['add'] = client(1, 2, 3, script=answer(struct.pack('<ii', 0, 5), where=1))
    c['scalars'] = client(2, 1, 2, script=answer(struct.pack('<iid', 0, 0, 3.5)))
    c['fail'] = client(3, 0x80004005, script=answer(struct.pack('<I', 0x80004005), where=1))
    c['echo'] = client(4, 0x6c6c6568, 0x6f, script=answer(pad8(struct.pack('<i', 0) +
                                                                ref(16, 6)) + b'hello\0'))
    c['sum'] = client(5, 3, script=answer(struct.pack('<iiq', 0, 0, 6)))
    c['sum_bulk'] = client(5, 0, 1, script=answer(struct.pack('<iiq', 0, 0, 0)))
    c['sum_bulk_kept'] = client(5, 0, 1, script=bytes([8]) + struct.pack('<iIH', 0, 2, 16) +
                                struct.pack('<iiq', 0, 0, 0))
    c['fill'] = client(6, 8, script=answer(pad8(struct.pack('<i', 0) + ref(16, 8)) + bytes(8)))
    c['fill_bulk'] = client(6, 4096, script=answer(pad8(struct.pack('<i', 0) + ref(16, 4096)) +
                                                   bytes(range(256)) * 16, where=2))
    c['reverse'] = client(7, 2, script=answer(pad8(struct.pack('<i', 0) + ref(16, 8)) + bytes(8)))
    c['makearray'] = client(8, 2, script=answer(struct.pack('<iI', 0, 2) + ref(16, 8) +
                                                struct.pack('<ii', 4, 5)))
    c['makearray_null'] = client(8, 0, script=answer(struct.pack('<iI', 0, 0) + NULL_REF))
    c['move'] = client(9, 1, 2, script=answer(struct.pack('<ii', 0, 0) + bytes(32)))
    c['call'] = client(10, 3, cb=True, script=answer(struct.pack('<i', 0), where=1))
    child = peer_record(IID_ICALLEE)
    c['getchild'] = client(11, 1, script=answer(pad8(struct.pack('<i', 0) + ref(16, 160)) + child) +
                           HONEST + HONEST)
    c['getchild_null'] = client(11, 1, script=answer(struct.pack('<i', 0) + NULL_REF))
    c['gettag'] = client(12, script=answer(struct.pack('<ii', 0, 42), where=1))
    c['query'] = client(13, 0, script=answer(pad8(struct.pack('<i', 0) + ref(16, 160)) +
                                             peer_record(IID_ICALLBACK, oid=0x78)))
    c['query_same_object'] = client(13, 1, script=answer(
        pad8(struct.pack('<i', 0) + ref(16, 160)) + peer_record(IID_ICALLEE, oid=0x2222)))
    c['wait'] = client(14, 1)
    c['threadid'] = client(15, script=answer(struct.pack('<iiq', 0, 0, 1)))
    c['count'] = client(16, script=answer(struct.pack('<ii', 0, 1), where=1))
    c['qi'] = client(0, qi=True)
    c['qi_scripted'] = client(0, qi=True, script=answer(b'FZ-peer-QI-ipid\0', where=0))
    c['server_error'] = client(1, script=answer(b'', status=-2147023170))
    c['late_child'] = client(11, 1, timeout=True, script=answer(
        pad8(struct.pack('<i', 0) + ref(16, 160)) + child, hold=True) + answer(b'', where=1))
    c['late_then_more'] = client(1, 2, 3, qi=True, timeout=True,
                                 script=bytes([3 | HOLD]) + answer(struct.pack('<ii', 0, 5), where=1))
    c['bad_inline'] = client(1, script=bytes([1 | 4]) + struct.pack('<iIH', 0, 64, 8) + bytes(8))
    return c


def xport_corpus():
    c = {'s_' + k: v for k, v in xport_server_corpus().items()}
    c.update({'c_' + k: v for k, v in xport_client_corpus().items()})
    return c


# ---- fuzz_stub: sel (method slot; 0x80: IStream, 0xC0: ISequentialStream), request frame ------

STM, SEQ = 0x80, 0xC0
(S_READ, S_WRITE, S_SEEK, S_SETSIZE, S_COPYTO, S_COMMIT, S_REVERT, S_LOCK, S_UNLOCK, S_STAT,
 S_CLONE) = range(3, 14)


def stream_seeds():
    """Valid request frames of runtime/streamps.c's tables (their layouts are there)."""
    c = {}
    for itf, pre in ((STM, 'stm'), (SEQ, 'seq')):
        c[pre + '_read'] = bytes([itf | S_READ]) + struct.pack('<I', 16)
        c[pre + '_read_past_end'] = bytes([itf | S_READ]) + struct.pack('<I', 300)
        c[pre + '_read_0'] = bytes([itf | S_READ]) + struct.pack('<I', 0)
        data = b'written by the fuzzer'
        c[pre + '_write'] = bytes([itf | S_WRITE]) + pad8(ref(16, len(data)) +
                                                          struct.pack('<I', len(data))) + data
        c[pre + '_write_0'] = bytes([itf | S_WRITE]) + pad8(ref(16, 0) + struct.pack('<I', 0))
    c['stm_seek_set'] = bytes([STM | S_SEEK]) + struct.pack('<qI', 100, 0)
    c['stm_seek_end'] = bytes([STM | S_SEEK]) + struct.pack('<qI', -8, 2)
    c['stm_seek_bad'] = bytes([STM | S_SEEK]) + struct.pack('<qI', -1, 1)
    c['stm_setsize'] = bytes([STM | S_SETSIZE]) + struct.pack('<Q', 1000)
    c['stm_setsize_full'] = bytes([STM | S_SETSIZE]) + struct.pack('<Q', (64 << 10) + 1)
    c['stm_copyto_null'] = bytes([STM | S_COPYTO]) + NULL_REF + struct.pack('<Q', 50)
    c['stm_copyto_rec'] = bytes([STM | S_COPYTO]) + ref(16, 8) + struct.pack('<Q', 50) + b'SHMR\0\0\0\0'
    c['stm_commit'] = bytes([STM | S_COMMIT]) + struct.pack('<I', 0)
    c['stm_revert'] = bytes([STM | S_REVERT])
    c['stm_lock'] = bytes([STM | S_LOCK]) + struct.pack('<QQI', 0, 10, 1)
    c['stm_unlock'] = bytes([STM | S_UNLOCK]) + struct.pack('<QQI', 0, 10, 1)
    c['stm_stat'] = bytes([STM | S_STAT]) + struct.pack('<I', 0)
    c['stm_stat_noname'] = bytes([STM | S_STAT]) + struct.pack('<I', 1)
    c['stm_clone'] = bytes([STM | S_CLONE])
    return c


def stub_corpus():
    c = {}
    for m in range(3, 24):
        c['zero_%d' % m] = bytes([m]) + bytes(64)
        c['nullrefs_%d' % m] = bytes([m]) + b'\xff\xff\xff\xff\0\0\0\0' * 8
    c.update(stream_seeds())
    return c


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    write(out, 'objref', objref_corpus())
    write(out, 'shmstream', shmstream_corpus())
    write(out, 'xport', xport_corpus())
    write(out, 'stub', stub_corpus())


if __name__ == '__main__':
    main()
