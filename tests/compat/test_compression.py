"""Scenario 2: every codec each client offers, produced and read back by the same and another client.

Also asserts (raw Fetch v4) that the stored batches really carry the codec: librdkafka silently
disables gzip/snappy/lz4 if the broker does not advertise Produce v0 (reference §0).
"""
import json
import time

import pytest

import kproto
from kafka_harness import confluent_consume_assign, confluent_produce, create_topic, kcat, unique_topic

CODECS = ["gzip", "snappy", "lz4", "zstd"]
N = 50


def _values(codec):
    # compressible, distinct, varied sizes
    return [("%s-%04d-" % (codec, i)).encode() * (3 + i % 7) for i in range(N)]


def _kp_read(bootstrap, topic, count, timeout=30):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 0)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=200).items():
                out.extend(msgs)
        return out
    finally:
        c.close()


def _kcat_read(bootstrap, topic, count):
    r = kcat(["-b", bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", str(count), "-e", "-J"])
    return [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]


def _assert_codec_on_disk(bootstrap, topic, codec, count):
    err, hw, records = kproto.fetch_v4(bootstrap, topic, 0, 0)
    assert err == 0 and hw == count, (err, hw)
    hdrs = kproto.batch_headers(records)
    assert hdrs, "no batches returned"
    assert all(h["magic"] == 2 for h in hdrs)
    cid = kproto.CODEC_IDS[codec]
    codecs = {h["attributes"] & 7 for h in hdrs}
    # librdkafka sends a batch uncompressed when compressing does not shrink it (tiny batches)
    assert codecs <= {0, cid}, "batches stored with codec ids %r, expected %s (%d)" % (codecs, codec, cid)
    big = [h for h in hdrs if h["last_offset_delta"] >= 3]
    assert big and all(h["attributes"] & 7 == cid for h in big), \
        "multi-record batches not compressed with %s: %r (client silently disabled the codec?)" % (
            codec, [(h["base_offset"], h["last_offset_delta"], h["attributes"]) for h in hdrs])


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_codec(broker, codec):
    topic = create_topic(broker.bootstrap, unique_topic("z-c-" + codec), 1)
    vals = _values(codec)
    res = confluent_produce(broker.bootstrap, topic, [(b"k%d" % i, v, [("c", codec.encode())])
                                                      for i, v in enumerate(vals)],
                            partition=0, **{"compression.type": codec, "linger.ms": 100})
    assert [o for _, o in res] == list(range(N))
    _assert_codec_on_disk(broker.bootstrap, topic, codec, N)
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [(i, b"k%d" % i, v) for i, v in enumerate(vals)]
    assert got[0].headers() == [("c", codec.encode())]
    # from the middle of a compressed batch
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 17, N - 17)
    assert [m.offset() for m in got] == list(range(17, N))
    got = _kp_read(broker.bootstrap, topic, N)
    assert [(m.offset, m.key, m.value) for m in got] == [(i, b"k%d" % i, v) for i, v in enumerate(vals)]


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_codec(broker, codec):
    from kafka import KafkaProducer
    topic = create_topic(broker.bootstrap, unique_topic("z-kp-" + codec), 1)
    vals = _values(codec)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=100)
    try:
        futs = [p.send(topic, key=b"k%d" % i, value=v, partition=0) for i, v in enumerate(vals)]
        p.flush(30)
        assert [f.get(timeout=10).offset for f in futs] == list(range(N))
    finally:
        p.close(10)
    _assert_codec_on_disk(broker.bootstrap, topic, codec, N)
    got = _kp_read(broker.bootstrap, topic, N)
    assert [(m.offset, m.key, m.value) for m in got] == [(i, b"k%d" % i, v) for i, v in enumerate(vals)]
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [(m.offset(), m.key(), m.value()) for m in got] == [(i, b"k%d" % i, v) for i, v in enumerate(vals)]
    # kafka-python from an offset inside a compressed batch
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek(tp, 23)
        out = []
        deadline = time.monotonic() + 20
        while len(out) < N - 23 and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=200).items():
                out.extend(msgs)
        assert [m.offset for m in out] == list(range(23, N))
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_codec(broker, codec):
    topic = create_topic(broker.bootstrap, unique_topic("z-kcat-" + codec), 1)
    vals = [v.decode() for v in _values(codec)]
    kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-z", codec, "-X", "linger.ms=100"],
         input_bytes=("\n".join(vals) + "\n").encode())
    _assert_codec_on_disk(broker.bootstrap, topic, codec, N)
    got = _kcat_read(broker.bootstrap, topic, N)
    assert [(o["offset"], o["payload"]) for o in got] == list(enumerate(vals))
    got = _kp_read(broker.bootstrap, topic, N)
    assert [m.value.decode() for m in got] == vals
