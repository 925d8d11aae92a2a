"""Scenarios 1, 3, 4, 11: produce/consume by assign, 1 MB records, many partitions, version probes."""
import hashlib
import json
import time

import pytest

from kafka_harness import (confluent_consume_assign, confluent_produce, create_topic, kcat, unique_group,
                      unique_topic, wait_until)

N = 20


def _records(n=N, prefix="r"):
    """(key, value, headers) with a null key, an empty value and varied headers mixed in."""
    out = []
    for i in range(n):
        key = None if i == 3 else ("%s-key-%d" % (prefix, i)).encode()
        value = b"" if i == 5 else ("%s-value-%d-" % (prefix, i)).encode() * (1 + i % 4)
        if i % 3 == 0:
            headers = [("h1", ("hv-%d" % i).encode()), ("h2", b"second"), ("h1", b"dup-key")]
        elif i % 3 == 1:
            headers = [("only", b"\x00\x01\xff")]
        else:
            headers = None
        out.append((key, value, headers))
    return out


def _hdrs(h):
    return [(k, bytes(v) if v is not None else None) for k, v in (h or [])]


# ---------------------------------------------------------------- confluent-kafka
def test_confluent_produce_consume_assign(broker):
    topic = create_topic(broker.bootstrap, unique_topic("pc-confluent"), 1)
    recs = _records()
    res = confluent_produce(broker.bootstrap, topic, recs, partition=0)
    assert res == [(0, i) for i in range(N)], "delivery (partition, offset) not 0..N-1: %r" % res

    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [m.offset() for m in got] == list(range(N))
    for m, (k, v, h) in zip(got, recs):
        assert m.topic() == topic and m.partition() == 0
        assert m.key() == k
        assert m.value() == v
        assert _hdrs(m.headers()) == _hdrs(h)

    got = confluent_consume_assign(broker.bootstrap, topic, 0, 7, N - 7)
    assert [m.offset() for m in got] == list(range(7, N))
    assert [m.value() for m in got] == [v for _, v, _ in recs[7:]]

    # Watermarks agree with what was written.
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_group()})
    try:
        assert c.get_watermark_offsets(__import__("confluent_kafka").TopicPartition(topic, 0), timeout=10) == (0, N)
    finally:
        c.close()


# ---------------------------------------------------------------- kafka-python
def _kp_consume_assign(bootstrap, topic, partition, offset, count, timeout=30, **extra):
    from kafka import KafkaConsumer, TopicPartition
    conf = dict(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                group_id=None)
    conf.update(extra)
    c = KafkaConsumer(**conf)
    try:
        tp = TopicPartition(topic, partition)
        c.assign([tp])
        c.seek(tp, offset)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            for _tp, msgs in c.poll(timeout_ms=200).items():
                out.extend(msgs)
        assert len(out) == count, "kafka-python got %d/%d from %s[%d]@%d" % (len(out), count, topic, partition,
                                                                            offset)
        return out
    finally:
        c.close()


def _kp_produce(bootstrap, topic, recs, partition=None, **extra):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=bootstrap, **extra)
    try:
        futs = [p.send(topic, key=k, value=v, headers=_hdrs(h) or None, partition=partition)
                for k, v, h in recs]
        p.flush(timeout=30)
        return [(f.get(timeout=30).partition, f.get(timeout=30).offset) for f in futs]
    finally:
        p.close(timeout=10)


def test_kafka_python_produce_consume_assign(broker):
    topic = unique_topic("pc-kpy")  # auto-created by kafka-python's Metadata v1 (broker default: 1 partition)
    recs = _records(prefix="kp")
    res = _kp_produce(broker.bootstrap, topic, recs, partition=0)
    assert res == [(0, i) for i in range(N)]

    got = _kp_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [m.offset for m in got] == list(range(N))
    for m, (k, v, h) in zip(got, recs):
        assert m.key == k
        assert m.value == v
        assert [(hk, bytes(hv)) for hk, hv in m.headers] == _hdrs(h)

    got = _kp_consume_assign(broker.bootstrap, topic, 0, 11, N - 11)
    assert [m.offset for m in got] == list(range(11, N))
    assert [m.value for m in got] == [v for _, v, _ in recs[11:]]

    # Cross-client: librdkafka reads what kafka-python wrote, and vice versa.
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [(m.key(), m.value(), _hdrs(m.headers())) for m in got] == [(k, v, _hdrs(h)) for k, v, h in recs]


def test_cross_confluent_to_kafka_python(broker):
    topic = create_topic(broker.bootstrap, unique_topic("pc-x"), 1)
    recs = _records(prefix="x")
    confluent_produce(broker.bootstrap, topic, recs, partition=0)
    got = _kp_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [(m.offset, m.key, m.value) for m in got] == [(i, k, v) for i, (k, v, _) in enumerate(recs)]


# ---------------------------------------------------------------- kcat
def _kcat_consume(bootstrap, topic, partition, offset, count, extra=()):
    r = kcat(["-b", bootstrap, "-C", "-t", topic, "-p", str(partition), "-o", str(offset), "-c", str(count),
              "-e", "-J", "-m", "20"] + list(extra))
    lines = [json.loads(l) for l in r.stdout.decode().splitlines() if l.strip()]
    return lines


def _kcat_headers(obj):
    h = obj.get("headers") or []
    return [(h[i], h[i + 1]) for i in range(0, len(h), 2)]


def test_kcat_produce_consume_assign(broker):
    topic = create_topic(broker.bootstrap, unique_topic("pc-kcat"), 1)
    lines = ["kkey-%d:kval-%d" % (i, i) for i in range(N)]
    kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", ":", "-H", "hk=hv", "-H", "h2=x"],
         input_bytes=("\n".join(lines) + "\n").encode())
    got = _kcat_consume(broker.bootstrap, topic, 0, "beginning", N)
    assert [o["offset"] for o in got] == list(range(N))
    assert [o["key"] for o in got] == ["kkey-%d" % i for i in range(N)]
    assert [o["payload"] for o in got] == ["kval-%d" % i for i in range(N)]
    assert all(_kcat_headers(o) == [("hk", "hv"), ("h2", "x")] for o in got), got[0]

    got = _kcat_consume(broker.bootstrap, topic, 0, 13, N - 13)
    assert [o["offset"] for o in got] == list(range(13, N))
    assert [o["payload"] for o in got] == ["kval-%d" % i for i in range(13, N)]

    # Another client reads kcat's records with the same keys and headers.
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, N)
    assert [(m.key(), m.value()) for m in got] == [(b"kkey-%d" % i, b"kval-%d" % i) for i in range(N)]
    assert _hdrs(got[0].headers()) == [("hk", b"hv"), ("h2", b"x")]


def test_kcat_metadata_list(broker):
    topic = create_topic(broker.bootstrap, unique_topic("pc-kcatL"), 3)
    r = kcat(["-b", broker.bootstrap, "-L", "-J", "-t", topic])
    md = json.loads(r.stdout)
    assert [b["name"] for b in md["brokers"]] == [broker.bootstrap]
    ts = [t for t in md["topics"] if t["topic"] == topic]
    assert len(ts) == 1 and sorted(p["partition"] for p in ts[0]["partitions"]) == [0, 1, 2]


# ---------------------------------------------------------------- scenario 3: ~1 MB records
BIG = 1_000_000


def _big_values(n=3):
    return [bytes([65 + i]) * 17 + hashlib.sha256(b"%d" % i).digest() * ((BIG - 17) // 32) +
            b"z" * ((BIG - 17) % 32) for i in range(n)]


def test_big_records_confluent(broker):
    topic = create_topic(broker.bootstrap, unique_topic("big-c"), 1)
    vals = _big_values()
    assert all(len(v) == BIG for v in vals)
    res = confluent_produce(broker.bootstrap, topic, [(b"k%d" % i, v, None) for i, v in enumerate(vals)],
                            partition=0, **{"message.max.bytes": 2_000_000, "linger.ms": 0})
    assert [r[1] for r in res] == [0, 1, 2]
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, 3,
                                   **{"fetch.message.max.bytes": 1_048_576})
    assert [m.value() == v for m, v in zip(got, vals)] == [True] * 3


def test_big_records_kafka_python(broker):
    topic = unique_topic("big-kp")
    vals = _big_values()
    res = _kp_produce(broker.bootstrap, topic, [(b"k%d" % i, v, None) for i, v in enumerate(vals)], partition=0,
                      max_request_size=2_000_000)
    assert [r[1] for r in res] == [0, 1, 2]
    got = _kp_consume_assign(broker.bootstrap, topic, 0, 0, 3)
    assert [m.value == v for m, v in zip(got, vals)] == [True] * 3
    # and librdkafka reads kafka-python's big batches
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 1, 2)
    assert [m.value() == v for m, v in zip(got, vals[1:])] == [True] * 2


def test_big_records_kcat(broker, tmp_path):
    topic = create_topic(broker.bootstrap, unique_topic("big-kcat"), 1)
    val = _big_values(1)[0].replace(b"\n", b"n")
    f = tmp_path / "big.bin"
    f.write_bytes(val)
    kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-X", "message.max.bytes=2000000", str(f)])
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 0, 1)
    assert got[0].value() == val
    r = kcat(["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "1", "-e",
              "-f", "%S\\n"])
    assert r.stdout.decode().strip() == str(BIG)


# ---------------------------------------------------------------- scenario 4: many partitions
NPART = 16


def _murmur_partition(key, n):
    from kafka.partitioner.default import murmur2
    return (murmur2(key) & 0x7FFFFFFF) % n


def test_many_partitions_confluent(broker):
    topic = create_topic(broker.bootstrap, unique_topic("many-c"), NPART)
    keys = [b"key-%d" % i for i in range(200)]
    recs = [(k, b"val-" + k, None) for k in keys]
    res = confluent_produce(broker.bootstrap, topic, recs, partitioner="murmur2_random")
    expected = [_murmur_partition(k, NPART) for k in keys]
    assert [p for p, _ in res] == expected, "librdkafka murmur2 placement differs from Java-compatible murmur2"
    assert len(set(expected)) == NPART
    by_part = {}
    for (p, o), k in zip(res, keys):
        by_part.setdefault(p, []).append((o, k))
    for p, lst in by_part.items():
        assert [o for o, _ in lst] == list(range(len(lst))), "partition %d offsets %r" % (p, lst)
        got = confluent_consume_assign(broker.bootstrap, topic, p, 0, len(lst))
        assert [m.key() for m in got] == [k for _, k in lst]
        assert all(m.partition() == p for m in got)


def test_many_partitions_kafka_python(broker):
    topic = create_topic(broker.bootstrap, unique_topic("many-kp"), NPART)
    keys = [b"kp-%d" % i for i in range(160)]
    res = _kp_produce(broker.bootstrap, topic, [(k, k[::-1], None) for k in keys])
    assert [p for p, _ in res] == [_murmur_partition(k, NPART) for k in keys]
    # consume all 16 partitions at once with one kafka-python consumer
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    try:
        tps = [TopicPartition(topic, p) for p in range(NPART)]
        c.assign(tps)
        c.seek_to_beginning()
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(keys) and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=200).items():
                got.extend((tp.partition, m.offset, m.key) for m in msgs)
    finally:
        c.close()
    assert sorted(got) == sorted((p, o, k) for (p, o), k in zip(res, keys))


# ---------------------------------------------------------------- scenario 11: probes, ListOffsets by time
def test_kafka_python_version_probe(broker):
    from kafka import KafkaConsumer, KafkaProducer
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    try:
        v = p.config["api_version"]
        assert v >= (0, 11), "kafka-python inferred broker %r (< 0.11 means no magic-2 records)" % (v,)
    finally:
        p.close(timeout=5)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        assert c.config["api_version"] >= (0, 11)
        topic = create_topic(broker.bootstrap, unique_topic("probe"), 2)
        wait_until(lambda: topic in c.topics(), timeout=10, msg="kafka-python sees topic")
        assert c.partitions_for_topic(topic) == {0, 1}
    finally:
        c.close()


def test_offsets_for_times(broker):
    from confluent_kafka import Consumer, TopicPartition
    topic = create_topic(broker.bootstrap, unique_topic("times"), 1)
    base = int(time.time() * 1000) - 100_000
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(10):
        p.produce(topic, value=b"t%d" % i, partition=0, timestamp=base + i * 1000)
        p.flush(10)  # one batch per record so batch max-timestamps differ
    assert len(p) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_group()})
    try:
        r = c.offsets_for_times([TopicPartition(topic, 0, base + 3500)], timeout=10)
        assert r[0].error is None and r[0].offset == 4, r
        r = c.offsets_for_times([TopicPartition(topic, 0, base)], timeout=10)
        assert r[0].offset == 0, r
        r = c.offsets_for_times([TopicPartition(topic, 0, base + 9000)], timeout=10)
        assert r[0].offset == 9, r
        r = c.offsets_for_times([TopicPartition(topic, 0, base + 60_000)], timeout=10)
        assert r[0].offset == -1, r  # no record at/after ts -> OFFSET_END
    finally:
        c.close()
    # kafka-python uses ListOffsets v1 and also returns the record's timestamp.
    from kafka import KafkaConsumer, TopicPartition as KTP
    kc = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        tp = KTP(topic, 0)
        r = kc.offsets_for_times({tp: base + 6001})[tp]
        assert (r.offset, r.timestamp) == (7, base + 7000)
        assert kc.offsets_for_times({tp: base + 60_000})[tp] is None
        assert kc.beginning_offsets([tp])[tp] == 0
        assert kc.end_offsets([tp])[tp] == 10
    finally:
        kc.close()
    # confluent consumption shows the producer-set CreateTime
    got = confluent_consume_assign(broker.bootstrap, topic, 0, 2, 1)
    assert got[0].timestamp() == (1, base + 2000)  # TIMESTAMP_CREATE_TIME


def _sent_versions(stderr):
    import re
    return re.findall(r"Sent (\w+)Request \(v(\d+)", stderr)


def test_librdkafka_version_selection(broker):
    """kcat -d protocol: the version sequence librdkafka 2.0.2 picks against the advertised table (reference §1.4)."""
    topic = create_topic(broker.bootstrap, unique_topic("vers"), 1)
    r = kcat(["-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-d", "protocol,broker"], input_bytes=b"a\nb\n")
    err = r.stderr.decode("utf-8", "replace")
    sent = _sent_versions(err)
    assert ("ApiVersion", "3") in sent and ("Produce", "7") in sent, sent
    assert not [s for s in sent if s[0] == "ApiVersion" and s[1] != "3"], "ApiVersions fallback happened: %r" % sent
    assert "broker.version.fallback" not in err and "ApiVersionRequest failed" not in err
    r = kcat(["-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "2", "-e",
              "-d", "protocol"])
    sent = _sent_versions(r.stderr.decode("utf-8", "replace"))
    assert ("Fetch", "11") in sent and ("Metadata", "4") in sent, sent
    assert r.stdout.decode().split() == ["a", "b"]
