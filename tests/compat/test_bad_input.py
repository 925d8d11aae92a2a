"""Scenario 10 (+ part of 11): hostile / malformed input over raw sockets.

After every case the broker must still be alive and serve a real client (produce + consume),
and it must exit 0 on SIGTERM at teardown (no crash; no leak under ASan).
"""
import os
import random
import socket
import struct

import pytest

import kproto
from kproto import array, i8, i16, i32, i64, kbytes, request, string
from kafka_harness import assert_broker_serves, confluent_produce, create_topic, unique_topic


@pytest.fixture
def b(make_broker):
    return make_broker()


def _closed(sock, timeout=10):
    try:
        return kproto.wait_closed(sock, timeout)
    finally:
        sock.close()


# ------------------------------------------------------------------ framing
def test_truncated_frame_then_close(b):
    s = kproto.connect(b.bootstrap)
    s.sendall(i32(100) + b"\x00\x12\x00\x00" + b"\x00" * 6)  # 10 of 100 bytes
    s.close()
    # truncated header, size says 2 bytes only
    s = kproto.connect(b.bootstrap)
    s.sendall(i32(2) + b"\x00\x12")
    assert _closed(s), "frame too short for a request header must close the connection"
    assert_broker_serves(b)


def test_truncated_frame_kept_open_does_not_block_others(b):
    s = kproto.connect(b.bootstrap)
    s.sendall(i32(1000) + b"\x00\x03\x00\x00")  # partial request, connection stays open
    try:
        assert_broker_serves(b)  # other connections are served meanwhile
    finally:
        s.close()
    assert_broker_serves(b)


@pytest.mark.parametrize("size", [0x7FFFFFFF, -1, -0x80000000, 0x40000000, 0],
                         ids=["2GiB", "minus1", "int-min", "1GiB", "zero"])
def test_absurd_size_prefix_closes(b, size):
    s = kproto.connect(b.bootstrap)
    s.sendall(struct.pack(">i", size) + b"\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00")
    assert _closed(s), "broker kept a connection open after size prefix %d" % size
    b.assert_alive()
    assert_broker_serves(b)


def test_garbage_bytes(b):
    rnd = random.Random(1234)
    for n in (1, 3, 7, 64, 4096):
        s = kproto.connect(b.bootstrap)
        s.sendall(bytes(rnd.getrandbits(8) for _ in range(n)))
        s.shutdown(socket.SHUT_WR)
        assert _closed(s)
    # garbage that looks like a sane frame: valid size, random header/body
    for _ in range(20):
        body = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(8, 200)))
        s = kproto.connect(b.bootstrap)
        s.sendall(i32(len(body)) + body)
        s.shutdown(socket.SHUT_WR)
        kproto.wait_closed(s, 10)
        s.close()
        b.assert_alive()
    assert_broker_serves(b)


def test_many_abrupt_disconnects(b):
    for i in range(50):
        s = kproto.connect(b.bootstrap)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
        s.sendall(kproto.request(3, 1, i, array([string("x")]))[: 3 + i % 20])
        s.close()
    assert_broker_serves(b)


# ------------------------------------------------------------------ versions / keys
def test_unknown_api_key_closes(b):
    s = kproto.connect(b.bootstrap)
    s.sendall(request(999, 0, 1, b""))
    assert _closed(s), "unknown api key 999 must close the connection"
    s = kproto.connect(b.bootstrap)
    s.sendall(request(-5, 0, 1, b""))
    assert _closed(s)
    assert_broker_serves(b)


@pytest.mark.parametrize("api_key,version", [(3, 99), (0, 100), (1, 99), (11, 77)],
                         ids=["metadata-v99", "produce-v100", "fetch-v99", "joingroup-v77"])
def test_unsupported_version_other_api_closes(b, api_key, version):
    s = kproto.connect(b.bootstrap)
    s.sendall(request(api_key, version, 5, b"\x00" * 16))
    assert _closed(s), "api %d v%d out of range must close the connection" % (api_key, version)
    assert_broker_serves(b)


def _api_ranges(keys):
    return {k: (lo, hi) for k, lo, hi in keys}


def test_api_versions_v4_gets_error_35_v0_body(b):
    s = kproto.connect(b.bootstrap)
    try:
        # v4 request with a flexible-style header and some body the broker must not parse
        s.sendall(request(18, 4, 4242, b"\x07garbage\x03x\x00", flexible=True))
        corr, body = kproto.recv_response(s)
        assert corr == 4242
        err, keys = kproto.api_versions_v0_parse(body)
        assert err == 35, "ApiVersions v4 -> error %d, expected 35 UNSUPPORTED_VERSION" % err
        ranges = _api_ranges(keys)
        assert 18 in ranges and ranges[18][0] == 0 and ranges[18][1] >= 3, ranges
        # the connection stays usable: v0 on the same socket
        s.sendall(request(18, 0, 4243, b""))
        corr, body = kproto.recv_response(s)
        assert corr == 4243
        err, keys = kproto.api_versions_v0_parse(body)
        assert err == 0
    finally:
        s.close()
    assert_broker_serves(b)


def test_api_versions_v3_table(b):
    """The points real clients depend on (reference §0/§2) are inside the advertised ranges."""
    s = kproto.connect(b.bootstrap)
    try:
        body = kproto.uvarint(len(b"compat") + 1) + b"compat" + kproto.uvarint(len(b"1.0") + 1) + b"1.0" + b"\x00"
        s.sendall(request(18, 3, 9, body, flexible=True))
        corr, resp = kproto.recv_response(s)
    finally:
        s.close()
    assert corr == 9
    r = kproto.Reader(resp)  # response header v0 even for v3: body starts right here
    assert r.i16() == 0

    def uv():
        n = shift = 0
        while True:
            c = r.take(1)[0]
            n |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                return n
    cnt = uv() - 1
    ranges = {}
    for _ in range(cnt):
        k, lo, hi = r.i16(), r.i16(), r.i16()
        assert uv() == 0  # no tagged fields per entry
        ranges[k] = (lo, hi)
    r.i32()
    assert uv() == 0
    assert r.remaining() == 0

    def has(k, *vs):
        lo, hi = ranges.get(k, (1, 0))
        return all(lo <= v <= hi for v in vs)
    assert has(0, 0, 3, 7), "Produce must include v0 (librdkafka compression) and v3..v7: %r" % (ranges.get(0),)
    assert has(1, 4, 10, 11), "Fetch 4, 10, 11: %r" % (ranges.get(1),)
    assert has(3, 0, 1, 4), "Metadata 0 (kafka-python probe), 1, 4: %r" % (ranges.get(3),)
    assert has(10, 0, 2), "FindCoordinator 0 and 2: %r" % (ranges.get(10),)
    assert has(11, 0, 2, 5) and has(14, 0, 3) and has(12, 0, 3) and has(13, 0, 1)
    assert has(8, 2, 7) and has(9, 1, 5) and has(2, 1, 2) and has(18, 0, 3) and has(19, 0, 4) and has(20, 0, 1)
    assert has(22, 0, 1), "InitProducerId 0..1 (idempotence)"


def test_pipelined_requests_answered_in_order(b):
    """kafka-python's probe: ApiVersions v0 and Metadata v0 in one write, answered in order."""
    s = kproto.connect(b.bootstrap)
    try:
        s.sendall(request(18, 0, 1, b"") + request(3, 0, 2, array([])) + request(18, 1, 3, b""))
        got = [kproto.recv_response(s)[0] for _ in range(3)]
    finally:
        s.close()
    assert got == [1, 2, 3]


# ------------------------------------------------------------------ produce validation
def _batch(values, base_offset=0):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    bb = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                   producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, v in enumerate(values):
        bb.append(i, timestamp=1_700_000_000_000 + i, key=None, value=v, headers=[])
    return bytearray(bb.build())


def _produce_v3(sock, corr, topic, partition, records, acks=-1):
    body = (string(None) + i16(acks) + i32(10000) +
            array([string(topic) + array([i32(partition) + kbytes(bytes(records))])]))
    sock.sendall(request(0, 3, corr, body))
    if acks == 0:
        return None
    c, resp = kproto.recv_response(sock)
    assert c == corr
    r = kproto.Reader(resp)
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    (_t, parts), = topics
    (_p, err, base, _ts), = parts
    return err, base


def test_produce_corrupt_crc_rejected(b):
    topic = create_topic(b.bootstrap, unique_topic("crc"), 1)
    confluent_produce(b.bootstrap, topic, [(None, b"before", None)], partition=0)
    s = kproto.connect(b.bootstrap)
    try:
        good = _batch([b"a", b"b"])
        bad = bytearray(good)
        bad[-1] ^= 0xFF  # payload byte flipped: CRC-32C no longer matches
        err, _ = _produce_v3(s, 11, topic, 0, bad)
        assert err == 2, "corrupted CRC -> error %d, expected 2 CORRUPT_MESSAGE" % err
        bad2 = bytearray(good)
        bad2[17] ^= 0x01  # the CRC field itself (offset 17..20)
        err, _ = _produce_v3(s, 12, topic, 0, bad2)
        assert err == 2
        # the connection carries on; a valid batch is appended right after 'before'
        err, base = _produce_v3(s, 13, topic, 0, good)
        assert (err, base) == (0, 1)
    finally:
        s.close()
    err, hw, _ = kproto.fetch_v4(b.bootstrap, topic, 0, 0)
    assert (err, hw) == (0, 3), "corrupt batches must not be appended"
    assert_broker_serves(b)


def test_produce_malformed_batches(b):
    """Truncated batch, bad magic, batchLength lying: an error code (or close), never an append or crash."""
    topic = create_topic(b.bootstrap, unique_topic("malf"), 1)
    good = _batch([b"x" * 50, b"y"])
    cases = {
        "truncated": good[:40],
        "length-lies": good[:8] + i32(0x7FFFFFF0) + good[12:],
        "magic-9": good[:16] + b"\x09" + good[17:],
        "negative-length": good[:8] + i32(-20) + good[12:],
        "record-count-huge": good[:57] + i32(0x7FFFFFFF) + good[61:],
    }
    for name, recs in cases.items():
        s = kproto.connect(b.bootstrap)
        try:
            try:
                err, _ = _produce_v3(s, 21, topic, 0, recs)
                assert err != 0, "%s batch accepted" % name
            except (ConnectionError, socket.timeout, OSError):
                pass  # closing the connection is acceptable
        finally:
            s.close()
        b.assert_alive()
    err, hw, _ = kproto.fetch_v4(b.bootstrap, topic, 0, 0)
    assert (err, hw) == (0, 0), "a malformed batch was appended"
    assert_broker_serves(b)


def test_produce_acks0_no_response(b):
    topic = create_topic(b.bootstrap, unique_topic("acks0"), 1)
    s = kproto.connect(b.bootstrap)
    try:
        _produce_v3(s, 31, topic, 0, _batch([b"q1"]), acks=0)
        # the next response on this connection must be for the next request (no reply to acks=0)
        s.sendall(request(18, 0, 32, b""))
        corr, _ = kproto.recv_response(s)
        assert corr == 32, "got a response with correlation id %d (acks=0 must not be answered)" % corr
    finally:
        s.close()
    err, hw, _ = kproto.fetch_v4(b.bootstrap, topic, 0, 0)
    assert (err, hw) == (0, 1)
