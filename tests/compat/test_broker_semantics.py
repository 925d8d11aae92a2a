"""Broker semantics seen through the raw protocol, where the clients hide them: idempotent-producer state after a
restart, Fetch min_bytes long polling, retention and segment roll moving the log start offset."""
import socket
import threading
import time

import kproto
from kproto import array, i8, i16, i32, i64, kbytes, request, string
from kafka_harness import create_topic, unique_topic, wait_until


def _batch(values, producer_id=-1, epoch=-1, base_sequence=-1, ts0=None):
    from kafka.record.default_records import DefaultRecordBatchBuilder
    if ts0 is None:  # now: old timestamps would be (rightly) deleted by the 7-day time retention
        ts0 = int(time.time() * 1000)
    bb = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=producer_id,
                                   producer_epoch=epoch, base_sequence=base_sequence, batch_size=1 << 20)
    for i, v in enumerate(values):
        bb.append(i, timestamp=ts0 + i, key=None, value=v, headers=[])
    return bytes(bb.build())


def _produce(bootstrap, topic, partition, records, acks=-1, version=7):
    body = (string(None) + i16(acks) + i32(10000) +
            array([string(topic) + array([i32(partition) + kbytes(records)])]))
    s = kproto.connect(bootstrap)
    try:
        s.sendall(request(0, version, 5, body))
        corr, resp = kproto.recv_response(s)
    finally:
        s.close()
    assert corr == 5
    r = kproto.Reader(resp)
    (_t, parts), = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64(), r.i64()))))
    (_p, err, base, _append_time, log_start), = parts
    return err, base, log_start


def _init_producer_id(bootstrap):
    s = kproto.connect(bootstrap)
    try:
        s.sendall(request(22, 1, 9, string(None) + i32(60000)))
        corr, resp = kproto.recv_response(s)
    finally:
        s.close()
    r = kproto.Reader(resp)
    r.i32()  # throttle
    err, pid, epoch = r.i16(), r.i64(), r.i16()
    assert (corr, err) == (9, 0)
    return pid, epoch


def _list_offset(bootstrap, topic, partition, ts):
    body = i32(-1) + i8(0) + array([string(topic) + array([i32(partition) + i64(ts)])])
    s = kproto.connect(bootstrap)
    try:
        s.sendall(request(2, 2, 3, body))
        _corr, resp = kproto.recv_response(s)
    finally:
        s.close()
    r = kproto.Reader(resp)
    r.i32()
    (_t, parts), = r.array(lambda r: (r.string(), r.array(lambda r: (r.i32(), r.i16(), r.i64(), r.i64()))))
    (_p, err, _ts, offset), = parts
    assert err == 0
    return offset


def test_idempotent_state_survives_restart(make_broker):
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("idem"), 1)
    pid, epoch = _init_producer_id(b.bootstrap)
    first = _batch([b"a", b"b", b"c"], pid, epoch, 0)
    second = _batch([b"d", b"e"], pid, epoch, 3)
    assert _produce(b.bootstrap, topic, 0, first)[:2] == (0, 0)
    assert _produce(b.bootstrap, topic, 0, second)[:2] == (0, 3)
    b.restart()
    # the retried batch is acknowledged with its original offset and not written again
    assert _produce(b.bootstrap, topic, 0, second)[:2] == (0, 3)
    # a gap in the sequence is refused (OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert _produce(b.bootstrap, topic, 0, _batch([b"x"], pid, epoch, 9))[0] == 45
    # the next batch in sequence continues the log
    assert _produce(b.bootstrap, topic, 0, _batch([b"f"], pid, epoch, 5))[:2] == (0, 5)
    err, hw, records = kproto.fetch_v4(b.bootstrap, topic, 0, 0)
    assert (err, hw) == (0, 6)
    # producer ids are never handed out twice, even across restarts
    pid2, _ = _init_producer_id(b.bootstrap)
    assert pid2 != pid


def _fetch_async(bootstrap, topic, min_bytes, max_wait_ms, result):
    body = (i32(-1) + i32(max_wait_ms) + i32(min_bytes) + i32(1 << 20) + i8(0) +
            array([string(topic) + array([i32(0) + i64(0) + i32(1 << 20)])]))
    s = kproto.connect(bootstrap, timeout=30)
    try:
        s.sendall(request(1, 4, 41, body))
        _corr, resp = kproto.recv_response(s, timeout=30)
        result["answered_at"] = time.monotonic()
        r = kproto.Reader(resp)
        r.i32()
        (_t, parts), = r.array(lambda r: (r.string(), r.array(lambda r: (
            r.i32(), r.i16(), r.i64(), r.i64(), r.array(lambda r: (r.i64(), r.i64())), r.bytes_()))))
        (_p, err, hw, _lso, _ab, recs), = parts
        result["err"], result["hw"], result["bytes"] = err, hw, len(recs or b"")
    finally:
        s.close()


def test_fetch_waits_for_min_bytes(make_broker):
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("minb"), 1)
    result = {}
    t = threading.Thread(target=_fetch_async, args=(b.bootstrap, topic, 2000, 20000, result))
    t.start()
    small = _batch([b"s"])
    assert len(small) < 2000
    _produce(b.bootstrap, topic, 0, small)
    produced_small_at = time.monotonic()
    # the parked fetch must not answer with fewer than min_bytes: give it a moment to (wrongly) answer
    t.join(timeout=1.0)
    assert "answered_at" not in result, "fetch answered with %s bytes < min_bytes" % result.get("bytes")
    big = _batch([b"x" * 3000])
    _produce(b.bootstrap, topic, 0, big)
    t.join(timeout=20)
    assert not t.is_alive(), "fetch did not answer once min_bytes were available"
    assert result["err"] == 0 and result["hw"] == 2
    assert result["bytes"] == len(small) + len(big)
    assert result["answered_at"] - produced_small_at < 15, "answered only at max_wait"


def test_fetch_answers_at_max_wait_when_idle(make_broker):
    b = make_broker()
    topic = create_topic(b.bootstrap, unique_topic("idle"), 1)
    result = {}
    started = time.monotonic()
    _fetch_async(b.bootstrap, topic, 1, 300, result)
    waited = result["answered_at"] - started
    assert result["err"] == 0 and result["bytes"] == 0
    assert 0.25 <= waited < 10, "long poll of 300 ms answered after %.3f s" % waited


def test_retention_by_size_advances_log_start(make_broker):
    # tiny segments, keep at most ~2 of them, retention checked every 100 ms
    b = make_broker(**{"broker.segment_bytes": "4096", "broker.retention_bytes": "8192",
                       "broker.retention_check_interval_ms": "100"})
    topic = create_topic(b.bootstrap, unique_topic("ret"), 1)
    for i in range(40):
        err, base, _ = _produce(b.bootstrap, topic, 0, _batch([bytes([65 + i % 26]) * 500]))
        assert (err, base) == (0, i)
    start = wait_until(lambda: _list_offset(b.bootstrap, topic, 0, -2) or None, timeout=20,
                       msg="log start offset to advance")
    assert 0 < start < 40
    assert _list_offset(b.bootstrap, topic, 0, -1) == 40
    # below the log start: OFFSET_OUT_OF_RANGE; at it: data
    assert kproto.fetch_v4(b.bootstrap, topic, 0, 0)[0] == 1
    err, hw, recs = kproto.fetch_v4(b.bootstrap, topic, 0, start)
    assert (err, hw) == (0, 40) and kproto.batch_headers(recs)[0]["base_offset"] == start
    # retention survives a restart: the deleted segments stay deleted
    b.restart()
    assert _list_offset(b.bootstrap, topic, 0, -2) >= start


def test_retention_by_time_uses_record_timestamps(make_broker):
    b = make_broker(**{"broker.segment_bytes": "4096", "broker.retention_ms": "3600000",
                       "broker.retention_check_interval_ms": "100"})
    topic = create_topic(b.bootstrap, unique_topic("rett"), 1)
    now = int(time.time() * 1000)
    for i in range(20):  # two hours old: past the one-hour retention
        _produce(b.bootstrap, topic, 0, _batch([b"o" * 500], ts0=now - 7_200_000))
    for i in range(20):  # fresh
        _produce(b.bootstrap, topic, 0, _batch([b"n" * 500], ts0=now))
    # whole segments go: those holding only old records (7 batches of ~570 B fit in 4 KiB)
    start = wait_until(lambda: _list_offset(b.bootstrap, topic, 0, -2) or None, timeout=20,
                       msg="expired segments to be deleted")
    assert 7 <= start <= 20, "log start %d: expired segments kept or fresh records deleted" % start
    err, hw, recs = kproto.fetch_v4(b.bootstrap, topic, 0, 20)
    assert (err, hw) == (0, 40)
    assert [h["base_offset"] for h in kproto.batch_headers(recs)] == list(range(20, 40))


def test_list_offsets_by_timestamp(make_broker):
    b = make_broker(**{"broker.retention_ms": "-1"})
    topic = create_topic(b.bootstrap, unique_topic("ts"), 1)
    for i in range(10):
        _produce(b.bootstrap, topic, 0, _batch([b"v%d" % i], ts0=1_000_000 + 1000 * i))
    assert _list_offset(b.bootstrap, topic, 0, 1_000_000) == 0
    assert _list_offset(b.bootstrap, topic, 0, 1_004_500) == 5
    assert _list_offset(b.bootstrap, topic, 0, 1_009_000) == 9
    assert _list_offset(b.bootstrap, topic, 0, 2_000_000) == -1
